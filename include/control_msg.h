/* control_msg.h - the control plane's messages, read from JSON.
 *
 * Promises: control_msg_parse() accepts one JSON object with "type",
 * "instance" and "boot" strings and fills only fields that pass their
 * rules; everything else reads as absent (or the message as malformed):
 * user ids follow target_id_valid(), a jti is 1..SESSION_KEY_MAX bytes,
 * a close code is 4000 or 4001, a reason at most 123 bytes, times and
 * durations are clamped to what time_t and a year allow (a number from the
 * wire is never converted out of range).  The "users" list of a snapshot
 * is read entry by entry with control_msg_user().  Pure (no I/O); the
 * message owns its parse tree until control_msg_free().
 */
#ifndef NOTIFYD_CONTROL_MSG_H
#define NOTIFYD_CONTROL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "presence.h"
#include "sessions.h"
#include "target.h"

struct cJSON;

/* Close codes of a disconnect (RFC 6455 leaves 4000-4999 to applications). */
#define CLOSE_LOGGED_OUT 4000
#define CLOSE_REVOKED 4001

enum control_type {
	CM_HELLO = 0, CM_BYE, CM_UP, CM_LINGER, CM_GONE, CM_USERS, CM_RULE, CM_DISCONNECT, CM_REVOKE,
	CM_PRESENCE, CM_TYPE_COUNT
};

#define CONTROL_REASON_MAX 123		/* a close frame's reason */
#define CONTROL_SPAN_MAX (366 * 86400)	/* a block, or how far "until" may reach */

struct control_msg {
	enum control_type type;
	char instance[PRESENCE_NAME_MAX];
	char boot[PRESENCE_BOOT_MAX];
	bool has_user, has_jti, has_reason;
	char user[TARGET_ID_MAX + 1];
	char jti[SESSION_KEY_MAX + 1];	/* revoke; rule: its key */
	char reason[CONTROL_REASON_MAX + 1];
	uint16_t code;			/* disconnect: 4000 (default) or 4001 */
	uint32_t block_s;		/* disconnect: 0..CONTROL_SPAN_MAX */
	time_t before, until;		/* revoke, rule (until 0: not given) */
	uint64_t since_ms;		/* up, linger, gone */
	bool sync;			/* hello: send me your state */
	enum session_kind rule;		/* rule */
	struct cJSON *root;
	const struct cJSON *users;	/* users: the list */
};

/* Returns 0, or -1 when the text is not a control message (m is then
 * empty and needs no free). */
int control_msg_parse(const char *text, size_t len, struct control_msg *m);
void control_msg_free(struct control_msg *m);

/* Entry i of a "users" list: 1 with a valid user (NUL-terminated in
 * user), its state and since; 0 when entry i is unusable; -1 past
 * the end. */
int control_msg_user(const struct control_msg *m, int i, char user[TARGET_ID_MAX + 1],
    enum presence_gossip *state, uint64_t *since_ms);

const char *control_rule_name(enum session_kind k);

#endif
