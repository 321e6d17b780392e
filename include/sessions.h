/* sessions.h - who may not come back: bans of users and revocations of
 * tokens, as the control plane spreads them to every instance.
 *
 * Promises: a ban refuses a user's new connections until it ends.  A
 * revocation of a token id (jti) refuses tokens carrying it until it ends;
 * a revocation of a user refuses that user's tokens issued before it (iat
 * earlier than "before", or no iat at all) until it ends, so that a fresh
 * login works at once.  A newer entry for the same key replaces the older
 * one only if it reaches further.  Entries end by themselves: checks ignore
 * ended ones and sessions_expire() frees them.  Times are wall-clock
 * seconds (tokens carry wall-clock times).  Event-loop thread only.
 */
#ifndef NOTIFYD_SESSIONS_H
#define NOTIFYD_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct sessions;

#define SESSION_KEY_MAX 128	/* bytes of a user id or jti */

enum session_refusal { SESSION_OK = 0, SESSION_BANNED, SESSION_REVOKED };

enum session_kind { SESSION_BAN = 0, SESSION_REVOKE_USER, SESSION_REVOKE_JTI };

struct session_rule {
	enum session_kind kind;
	const char *key;	/* a user id or a jti */
	size_t len;
	time_t before;		/* SESSION_REVOKE_USER: tokens issued before this */
	time_t until;		/* the rule's end */
};

struct sessions *sessions_new(void);
void sessions_free(struct sessions *s);

/* Add or extend a rule.  Returns 0, -1 out of memory. */
int sessions_add(struct sessions *s, const struct session_rule *r);

/* May this user, with this token (jti "" / iat 0: none or no token), connect
 * at now?  *until gets the end of the rule that refuses. */
enum session_refusal sessions_check(const struct sessions *s, const char *user, size_t len,
    const char *jti, time_t iat, time_t now, time_t *until);

/* Free what ended before now. */
void sessions_expire(struct sessions *s, time_t now);

/* Every rule in force, for an instance that starts (fn's rule lives only
 * during the call). */
void sessions_each(const struct sessions *s, time_t now,
    void (*fn)(void *arg, const struct session_rule *r), void *arg);

size_t sessions_count(const struct sessions *s);

const char *session_refusal_name(enum session_refusal r);

#endif
