/* control.h - the control plane on the event loop: what instances tell
 * each other through the broker (mq_control.h carries it), and what
 * follows here.
 *
 * Promises:
 * - A command (disconnect, revoke) goes to every instance, this one
 *   included, and is applied when it comes back from the broker: one path
 *   for local and remote requests.  Its sender learns once whether the
 *   broker confirmed it (or not within push_timeout).
 * - Disconnect closes the user's connections here with its code (4000
 *   logged out, 4001 banned or revoked) and reason; a block refuses the
 *   user for that long (sessions.h).  Revoke closes the matching
 *   connections with 4001 and refuses their tokens.
 * - A heartbeat every control_heartbeat keeps the instance table (and
 *   presence.h's view) alive; an instance seen for the first time, or one
 *   that reconnected to the broker, gets every other instance's users and
 *   rules.
 * - A cluster question asks every live instance, waits at most
 *   presence_timeout and reports who answered and who did not.
 * - Events to the backend (events_exchange) are published here.
 * Owns gw->presence and gw->sessions.  Event-loop thread only.
 */
#ifndef NOTIFYD_CONTROL_H
#define NOTIFYD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control_msg.h"

struct cJSON;
struct control;
struct gateway;
struct xqueue;

struct control *control_new(struct gateway *gw, struct xqueue *outq, struct xqueue *inq);
/* Say goodbye to the other instances (at shutdown, before the link stops). */
void control_goodbye(struct control *c);
void control_free(struct control *c);

/* The fate of a command: ok once the broker confirmed it. */
typedef void (*control_done_fn)(void *arg, bool ok, const char *why);

/* Publish a command (takes cmd).  done is called exactly once, later. */
void control_command(struct control *c, struct cJSON *cmd, control_done_fn done, void *arg);

/* The answer to a cluster question: the instances' answers (an array,
 * this one's first), and the names of those that did not answer. */
struct control_answers {
	const struct cJSON *answers;
	const struct cJSON *missing;
	uint32_t asked;			/* live instances, this one included */
};
typedef void (*control_answer_fn)(void *arg, const struct control_answers *a);

/* Ask every instance about user (NULL: counts only).  done is called
 * exactly once, later. */
void control_ask(struct control *c, const char *user, control_answer_fn done, void *arg);

/* This instance's answer: {"instance","users","connections"} or, for a
 * user, {"instance","user","connections":[...]}.  Caller frees. */
struct cJSON *control_local_answer(struct control *c, const char *user);

const char *control_instance(const struct control *c);

#endif
