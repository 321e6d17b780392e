/* presence.c - instances, their users, online/offline and undelivered
 * decisions (see presence.h).
 *
 * A user's places: one record per instance that announced it (this one
 * included), each connected or lingering since a time.  The records of a
 * user hang off one strmap entry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence.h"
#include "strmap.h"

#define PRESENCE_SILENT_BEATS 3
#define PRESENCE_MAX_INSTANCES 1024

enum place_state { PLACE_CONNECTED = 0, PLACE_LINGERING };

struct place {
	struct place *next;
	uint16_t inst;			/* index in p->inst */
	uint8_t state;
	uint64_t since_ms;		/* when the state began (the sender's clock) */
	uint64_t deadline_ms;		/* this instance lingering: offline at */
};

struct instance {
	char name[PRESENCE_NAME_MAX];
	char boot[PRESENCE_BOOT_MAX];
	uint64_t last_ms;
	bool live;
};

struct presence {
	struct presence_out out;
	uint32_t linger_ms, heartbeat_ms;
	struct strmap users;		/* user -> struct place list */
	struct instance *inst;		/* [0] is this instance */
	size_t ninst;
};

struct presence *presence_new(const char *self, const struct presence_out *out, uint32_t linger_ms,
    uint32_t heartbeat_ms)
{
	struct presence *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->inst = calloc(1, sizeof(*p->inst));
	if (p->inst == NULL || strmap_init(&p->users) < 0) {
		free(p->inst);
		free(p);
		return NULL;
	}
	p->out = *out;
	p->linger_ms = linger_ms;
	p->heartbeat_ms = heartbeat_ms;
	snprintf(p->inst[0].name, sizeof(p->inst[0].name), "%s", self);
	p->inst[0].live = true;
	p->ninst = 1;
	return p;
}

static bool presence_free_places(void *arg, struct strmap_entry *e)
{
	struct place *pl = e->value, *next;

	(void)arg;
	for (; pl != NULL; pl = next) {
		next = pl->next;
		free(pl);
	}
	return true;
}

void presence_free(struct presence *p)
{
	if (p == NULL)
		return;
	strmap_each(&p->users, presence_free_places, NULL);
	strmap_free(&p->users);
	free(p->inst);
	free(p);
}

static struct place *place_of(struct strmap_entry *e, uint16_t inst)
{
	for (struct place *pl = e != NULL ? e->value : NULL; pl != NULL; pl = pl->next)
		if (pl->inst == inst)
			return pl;
	return NULL;
}

/* Unlink and free a place; the user's entry goes with its last place. */
static void place_drop(struct presence *p, struct strmap_entry *e, struct place *pl)
{
	struct place **pp = (struct place **)&e->value;

	while (*pp != NULL && *pp != pl)
		pp = &(*pp)->next;
	if (*pp != NULL)
		*pp = pl->next;
	free(pl);
	if (e->value == NULL)
		strmap_remove(&p->users, e);
}

static struct place *place_add(struct presence *p, const char *user, size_t len, uint16_t inst,
    struct strmap_entry **ep)
{
	bool created;
	struct strmap_entry *e = strmap_get(&p->users, user, len, &created);
	struct place *pl;

	*ep = e;
	if (e == NULL)
		return NULL;
	pl = place_of(e, inst);
	if (pl != NULL)
		return pl;
	pl = calloc(1, sizeof(*pl));
	if (pl == NULL) {
		if (created)
			strmap_remove(&p->users, e);
		return NULL;
	}
	pl->inst = inst;
	pl->next = e->value;
	e->value = pl;
	return pl;
}

static bool instance_live(const struct presence *p, uint16_t i, uint64_t now_ms)
{
	if (i == 0)
		return true;
	return p->inst[i].live &&
	    now_ms - p->inst[i].last_ms <= (uint64_t)p->heartbeat_ms * PRESENCE_SILENT_BEATS;
}

/* Any place of another live instance in state (or any state: -1). */
static bool presence_elsewhere(const struct presence *p, const struct strmap_entry *e, int state,
    uint64_t now_ms)
{
	for (const struct place *pl = e != NULL ? e->value : NULL; pl != NULL; pl = pl->next)
		if (pl->inst != 0 && (state < 0 || pl->state == state) && instance_live(p, pl->inst, now_ms))
			return true;
	return false;
}

static void presence_event(struct presence *p, const char *type, const char *user, size_t len)
{
	if (p->out.event != NULL)
		p->out.event(p->out.arg, type, user, len);
}

void presence_local_up(struct presence *p, const char *user, size_t len, uint64_t now_ms)
{
	struct strmap_entry *e;
	struct place *pl;
	bool was_here;

	e = strmap_find(&p->users, user, len);
	pl = place_of(e, 0);
	was_here = pl != NULL;		/* lingering here: a reload, no event */
	if (!was_here && !presence_elsewhere(p, e, -1, now_ms))
		presence_event(p, "online", user, len);
	if (pl == NULL && (pl = place_add(p, user, len, 0, &e)) == NULL)
		return;
	pl->state = PLACE_CONNECTED;
	pl->since_ms = now_ms;
	pl->deadline_ms = 0;
	p->out.gossip(p->out.arg, GOSSIP_UP, user, len, now_ms);
}

void presence_local_down(struct presence *p, const char *user, size_t len, uint64_t now_ms)
{
	struct strmap_entry *e = strmap_find(&p->users, user, len);
	struct place *pl = place_of(e, 0);

	if (pl == NULL)
		return;
	pl->state = PLACE_LINGERING;
	pl->since_ms = now_ms;
	pl->deadline_ms = now_ms + p->linger_ms;
	p->out.gossip(p->out.arg, GOSSIP_LINGER, user, len, now_ms);
	if (p->linger_ms == 0)
		presence_sweep(p, now_ms);
}

static int instance_find(const struct presence *p, const char *name)
{
	for (size_t i = 1; i < p->ninst; i++)
		if (strcmp(p->inst[i].name, name) == 0)
			return (int)i;
	return -1;
}

struct forget {
	struct presence *p;
	uint16_t inst;
};

static bool presence_forget_one(void *arg, struct strmap_entry *e)
{
	struct forget *f = arg;
	struct place *pl = place_of(e, f->inst);

	if (pl != NULL)
		place_drop(f->p, e, pl);
	return true;
}

/* Everything instance i announced is void (gone, or restarted). */
static void presence_forget(struct presence *p, uint16_t i)
{
	struct forget f = { .p = p, .inst = i };

	strmap_each(&p->users, presence_forget_one, &f);
}

bool presence_heard(struct presence *p, const char *name, const char *boot, uint64_t now_ms)
{
	int i = instance_find(p, name);
	bool fresh;

	if (strcmp(name, p->inst[0].name) == 0)
		return false;
	if (i < 0) {
		struct instance *grown;

		for (i = 1; i < (int)p->ninst && p->inst[i].live; i++)
			;
		if (i == (int)p->ninst) {
			if (p->ninst >= PRESENCE_MAX_INSTANCES)
				return false;
			grown = realloc(p->inst, (p->ninst + 1) * sizeof(*p->inst));
			if (grown == NULL)
				return false;
			p->inst = grown;
			p->ninst++;
		}
		memset(&p->inst[i], 0, sizeof(p->inst[i]));
		snprintf(p->inst[i].name, sizeof(p->inst[i].name), "%s", name);
	}
	fresh = !p->inst[i].live || strcmp(p->inst[i].boot, boot) != 0 ||
	    !instance_live(p, (uint16_t)i, now_ms);
	if (fresh) {
		presence_forget(p, (uint16_t)i);
		snprintf(p->inst[i].boot, sizeof(p->inst[i].boot), "%s", boot);
	}
	p->inst[i].live = true;
	p->inst[i].last_ms = now_ms;
	return fresh;
}

void presence_bye(struct presence *p, const char *name, const char *boot)
{
	int i = instance_find(p, name);

	if (i < 0 || strcmp(p->inst[i].boot, boot) != 0)
		return;
	presence_forget(p, (uint16_t)i);
	p->inst[i].live = false;
}

void presence_remote(struct presence *p, const char *name, const char *boot, enum presence_gossip type,
    const char *user, size_t len, uint64_t since_ms, uint64_t now_ms)
{
	int i = instance_find(p, name);
	struct strmap_entry *e;
	struct place *pl, *mine;

	/* Gossip before the first heartbeat: the heartbeat that follows
	 * would wipe it, so the sender's snapshot answers for it. */
	if (i < 0 || !p->inst[i].live || strcmp(p->inst[i].boot, boot) != 0)
		return;
	p->inst[i].last_ms = now_ms;
	if (type == GOSSIP_GONE) {
		e = strmap_find(&p->users, user, len);
		if ((pl = place_of(e, (uint16_t)i)) != NULL)
			place_drop(p, e, pl);
		return;
	}
	pl = place_add(p, user, len, (uint16_t)i, &e);
	if (pl == NULL)
		return;
	pl->state = type == GOSSIP_UP ? PLACE_CONNECTED : PLACE_LINGERING;
	pl->since_ms = since_ms;
	mine = place_of(e, 0);
	/* Two lingers: the later one decides offline, the other stands down. */
	if (type == GOSSIP_LINGER && mine != NULL && mine->state == PLACE_LINGERING &&
	    (since_ms > mine->since_ms || (since_ms == mine->since_ms && strcmp(name, p->inst[0].name) > 0))) {
		p->out.gossip(p->out.arg, GOSSIP_GONE, user, len, now_ms);
		place_drop(p, e, mine);
	}
}

struct sweep {
	struct presence *p;
	uint64_t now_ms;
};

static bool presence_sweep_one(void *arg, struct strmap_entry *e)
{
	struct sweep *s = arg;
	struct presence *p = s->p;
	struct place *pl = place_of(e, 0);

	if (pl == NULL || pl->state != PLACE_LINGERING || pl->deadline_ms > s->now_ms)
		return true;
	if (!presence_elsewhere(p, e, PLACE_CONNECTED, s->now_ms))
		presence_event(p, "offline", e->key, e->len);
	p->out.gossip(p->out.arg, GOSSIP_GONE, e->key, e->len, s->now_ms);
	place_drop(p, e, pl);
	return true;
}

void presence_sweep(struct presence *p, uint64_t now_ms)
{
	struct sweep s = { .p = p, .now_ms = now_ms };

	for (size_t i = 1; i < p->ninst; i++) {
		if (p->inst[i].live && !instance_live(p, (uint16_t)i, now_ms)) {
			presence_forget(p, (uint16_t)i);
			p->inst[i].live = false;
		}
	}
	strmap_each(&p->users, presence_sweep_one, &s);
}

/* The first live instance by name is the one that reports. */
static bool presence_reporter(const struct presence *p, uint64_t now_ms)
{
	for (size_t i = 1; i < p->ninst; i++)
		if (instance_live(p, (uint16_t)i, now_ms) && strcmp(p->inst[i].name, p->inst[0].name) < 0)
			return false;
	return true;
}

void presence_undelivered(const struct presence *p, const struct presence_message *m,
    bool connected_here, uint64_t now_ms)
{
	if (connected_here || p->out.undelivered == NULL)
		return;
	if (presence_elsewhere(p, strmap_find(&p->users, m->user, m->len), PLACE_CONNECTED, now_ms))
		return;
	if (presence_reporter(p, now_ms))
		p->out.undelivered(p->out.arg, m);
}

uint32_t presence_remote_instances(const struct presence *p, const char *user, size_t len)
{
	uint32_t n = 0;
	const struct strmap_entry *e = strmap_find(&p->users, user, len);

	for (const struct place *pl = e != NULL ? e->value : NULL; pl != NULL; pl = pl->next)
		if (pl->inst != 0 && pl->state == PLACE_CONNECTED)
			n++;
	return n;
}

static int instance_cmp(const void *a, const void *b)
{
	return strcmp(((const struct presence_instance *)a)->name, ((const struct presence_instance *)b)->name);
}

void presence_each_instance(const struct presence *p, uint64_t now_ms,
    void (*fn)(void *arg, const struct presence_instance *i), void *arg)
{
	struct presence_instance *v = calloc(p->ninst, sizeof(*v));
	size_t n = 0;

	if (v == NULL)
		return;
	for (size_t i = 0; i < p->ninst; i++) {
		if (!instance_live(p, (uint16_t)i, now_ms))
			continue;
		v[n].name = p->inst[i].name;
		v[n].last_ms = i == 0 ? now_ms : p->inst[i].last_ms;
		v[n].self = i == 0;
		n++;
	}
	qsort(v, n, sizeof(*v), instance_cmp);
	for (size_t i = 0; i < n; i++)
		fn(arg, &v[i]);
	free(v);
}

size_t presence_live_instances(const struct presence *p, uint64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ninst; i++)
		n += instance_live(p, (uint16_t)i, now_ms);
	return n;
}

struct each_local {
	void (*fn)(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since_ms);
	void *arg;
};

static bool presence_local_one(void *arg, struct strmap_entry *e)
{
	struct each_local *l = arg;
	const struct place *pl = place_of(e, 0);

	if (pl != NULL)
		l->fn(l->arg, pl->state == PLACE_CONNECTED ? GOSSIP_UP : GOSSIP_LINGER, e->key, e->len, pl->since_ms);
	return true;
}

void presence_each_local(const struct presence *p,
    void (*fn)(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since_ms),
    void *arg)
{
	struct each_local l = { .fn = fn, .arg = arg };

	strmap_each((struct strmap *)&p->users, presence_local_one, &l);
}
