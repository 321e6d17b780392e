/* sessions.c - bans and revocations (see sessions.h).  Three tables keyed
 * by user or jti; an entry is only its times. */
#include <stdlib.h>
#include <string.h>

#include "sessions.h"
#include "strmap.h"

struct session_times {
	time_t before, until;
};

struct sessions {
	struct strmap table[3];	/* by enum session_kind */
};

struct sessions *sessions_new(void)
{
	struct sessions *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	for (int k = 0; k < 3; k++) {
		if (strmap_init(&s->table[k]) < 0) {
			sessions_free(s);
			return NULL;
		}
	}
	return s;
}

static bool sessions_free_value(void *arg, struct strmap_entry *e)
{
	(void)arg;
	free(e->value);
	return true;
}

void sessions_free(struct sessions *s)
{
	if (s == NULL)
		return;
	for (int k = 0; k < 3; k++) {
		if (s->table[k].bucket != NULL)
			strmap_each(&s->table[k], sessions_free_value, NULL);
		strmap_free(&s->table[k]);
	}
	free(s);
}

int sessions_add(struct sessions *s, const struct session_rule *r)
{
	bool created;
	struct strmap_entry *e = strmap_get(&s->table[r->kind], r->key, r->len, &created);
	struct session_times *t;

	if (e == NULL)
		return -1;
	if (created) {
		e->value = calloc(1, sizeof(struct session_times));
		if (e->value == NULL) {
			strmap_remove(&s->table[r->kind], e);
			return -1;
		}
	}
	t = e->value;
	if (r->until > t->until)
		t->until = r->until;
	if (r->before > t->before)
		t->before = r->before;
	return 0;
}

static const struct session_times *sessions_rule(const struct sessions *s, enum session_kind k,
    const char *key, size_t len, time_t now)
{
	const struct strmap_entry *e;

	if (len == 0)
		return NULL;
	e = strmap_find(&s->table[k], key, len);
	if (e == NULL || ((const struct session_times *)e->value)->until <= now)
		return NULL;
	return e->value;
}

enum session_refusal sessions_check(const struct sessions *s, const char *user, size_t len,
    const char *jti, time_t iat, time_t now, time_t *until)
{
	const struct session_times *t;

	if ((t = sessions_rule(s, SESSION_BAN, user, len, now)) != NULL) {
		*until = t->until;
		return SESSION_BANNED;
	}
	t = sessions_rule(s, SESSION_REVOKE_USER, user, len, now);
	if (t != NULL && iat < t->before) {
		*until = t->until;
		return SESSION_REVOKED;
	}
	if (jti != NULL && (t = sessions_rule(s, SESSION_REVOKE_JTI, jti, strlen(jti), now)) != NULL) {
		*until = t->until;
		return SESSION_REVOKED;
	}
	return SESSION_OK;
}

struct sessions_walk {
	struct strmap *m;
	enum session_kind kind;
	time_t now;
	void (*fn)(void *arg, const struct session_rule *r);
	void *arg;
};

static bool sessions_visit(void *arg, struct strmap_entry *e)
{
	struct sessions_walk *w = arg;
	const struct session_times *t = e->value;

	if (t->until <= w->now) {
		if (w->fn == NULL) {
			free(e->value);
			strmap_remove(w->m, e);
		}
	} else if (w->fn != NULL) {
		struct session_rule r = { .kind = w->kind, .key = e->key, .len = e->len,
		    .before = t->before, .until = t->until };

		w->fn(w->arg, &r);
	}
	return true;
}

void sessions_expire(struct sessions *s, time_t now)
{
	for (int k = 0; k < 3; k++) {
		struct sessions_walk w = { .m = &s->table[k], .kind = (enum session_kind)k, .now = now };

		strmap_each(&s->table[k], sessions_visit, &w);
	}
}

void sessions_each(const struct sessions *s, time_t now,
    void (*fn)(void *arg, const struct session_rule *r), void *arg)
{
	/* The walk never removes with fn set: the cast only feeds the shared
	 * visitor. */
	struct sessions *m = (struct sessions *)s;

	for (int k = 0; k < 3; k++) {
		struct sessions_walk w = { .m = &m->table[k], .kind = (enum session_kind)k, .now = now,
		    .fn = fn, .arg = arg };

		strmap_each(&m->table[k], sessions_visit, &w);
	}
}

size_t sessions_count(const struct sessions *s)
{
	return s->table[0].count + s->table[1].count + s->table[2].count;
}

const char *session_refusal_name(enum session_refusal r)
{
	switch (r) {
	case SESSION_BANNED:
		return "banned";
	case SESSION_REVOKED:
		return "revoked";
	default:
		return "ok";
	}
}
