/* fuzz_control.c - libFuzzer target for what other instances (and
 * backends) send on the control exchange: control_msg_parse(), and the
 * bookkeeping it feeds, presence.c and sessions.c.
 *
 * The input is a sequence of messages separated by newlines, applied in
 * order to one presence table and one rule set the way control.c applies
 * them (as instance "m"), with a clock that moves by the message's length.
 * Checked against control_msg.h's contract:
 *   - a parsed message's strings are NUL-terminated within their buffers,
 *     a user id passes target_id_valid(), the code is 4000 or 4001, the
 *     block at most a year;
 *   - presence never counts more live instances than it was told of plus
 *     itself, and sessions never refuse a user nobody named;
 * and, by ASan and LeakSanitizer, no overflow and no leak.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_control.c src/control_msg.c src/presence.c src/sessions.c src/strmap.c
 *   src/target.c src/utf8.c -lcjson
 * Run:   ./fuzz_control -max_len=4096 fuzz/corpus/control  (or scripts/fuzz control)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_msg.h"
#include "presence.h"
#include "sessions.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void no_gossip(void *arg, enum presence_gossip t, const char *u, size_t n, uint64_t s)
{
	(void)arg;
	(void)t;
	(void)s;
	if (strlen(u) != n)
		abort();
}

static void no_event(void *arg, const char *type, const char *u, size_t n)
{
	(void)arg;
	(void)type;
	if (strlen(u) != n)
		abort();
}

static void bounded(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

static void apply(struct presence *p, struct sessions *s, const struct control_msg *m, uint64_t now,
    size_t *heard)
{
	char user[TARGET_ID_MAX + 1];
	enum presence_gossip st;
	uint64_t since;
	int rc;

	bounded(m->instance, sizeof(m->instance));
	bounded(m->boot, sizeof(m->boot));
	bounded(m->user, sizeof(m->user));
	bounded(m->jti, sizeof(m->jti));
	bounded(m->reason, sizeof(m->reason));
	if ((m->has_user && !target_id_valid(m->user, strlen(m->user))) ||
	    (m->code != 4000 && m->code != 4001) || m->block_s > CONTROL_SPAN_MAX)
		abort();
	switch (m->type) {
	case CM_HELLO:
		if (presence_heard(p, m->instance, m->boot, now))
			(*heard)++;
		break;
	case CM_BYE:
		presence_bye(p, m->instance, m->boot);
		break;
	case CM_UP:
	case CM_LINGER:
	case CM_GONE:
		if (m->has_user)
			presence_remote(p, m->instance, m->boot, (enum presence_gossip)(m->type - CM_UP), m->user,
			    strlen(m->user), m->since_ms, now);
		break;
	case CM_USERS:
		for (int i = 0; (rc = control_msg_user(m, i, user, &st, &since)) >= 0; i++) {
			if (rc > 0 && !target_id_valid(user, strlen(user)))
				abort();
			if (rc > 0)
				presence_remote(p, m->instance, m->boot, st, user, strlen(user), since, now);
		}
		break;
	case CM_RULE: {
		struct session_rule r = { .kind = m->rule, .key = m->jti, .len = strlen(m->jti),
		    .before = m->before, .until = m->until };

		(void)sessions_add(s, &r);
		break;
	}
	case CM_DISCONNECT:
		if (m->has_user) {
			presence_local_up(p, m->user, strlen(m->user), now);
			presence_local_down(p, m->user, strlen(m->user), now);
		}
		break;
	case CM_REVOKE:
		if (m->has_jti) {
			struct session_rule r = { .kind = SESSION_REVOKE_JTI, .key = m->jti, .len = strlen(m->jti),
			    .until = m->until };

			(void)sessions_add(s, &r);
		}
		break;
	default:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct presence_out out = { .gossip = no_gossip, .event = no_event };
	struct presence *p = presence_new("m", &out, 500, 1000);
	struct sessions *s = sessions_new();
	uint64_t now = 1000;
	size_t heard = 0, off = 0;
	time_t until;

	if (p == NULL || s == NULL)
		abort();
	while (off < size) {
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t n = nl != NULL ? (size_t)(nl - (data + off)) : size - off;
		char *text = malloc(n + 1);	/* exact size: reading past it is caught */
		struct control_msg m;

		if (text == NULL)
			abort();
		memcpy(text, data + off, n);
		text[n] = '\0';
		if (control_msg_parse(text, n, &m) == 0) {
			apply(p, s, &m, now, &heard);
			control_msg_free(&m);
		}
		free(text);
		now += n;
		presence_sweep(p, now);
		sessions_expire(s, (time_t)(now / 1000));
		off += n + 1;
	}
	if (presence_live_instances(p, now) > heard + 1)
		abort();
	if (sessions_check(s, "never-named-\x01", 13, NULL, 0, 0, &until) != SESSION_OK)
		abort();
	presence_free(p);
	sessions_free(s);
	return 0;
}
