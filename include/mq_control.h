/* mq_control.h - the control plane's broker link: commands and gossip
 * between instances, presence questions and answers, events to the
 * backend.  Its own thread and its own connection ("control"), so that
 * neither the consumer nor /push's publisher waits for it.
 *
 * Promises: declares the durable fanout exchange amqp_control_exchange and
 * a server-named, exclusive, auto-delete queue bound to it, consumed without
 * acks: a control message reaches the instances running when it is
 * published, and an instance that is gone leaves nothing behind.  The
 * channel also consumes amq.rabbitmq.reply-to (direct reply-to), so a
 * question published with CTL_OUT_ASK comes back as CTL_IN_REPLY items.
 * When events_exchange is set it is declared (durable topic).  Publishes in
 * confirm mode: every ctl_out with id != 0 gets exactly one CTL_IN_CONFIRM
 * (ok, or a reason: broker down, nack, connection lost, shutting down).
 * Items without an id that cannot be published are counted in
 * stats->control_dropped and logged, never retried.  Every change of the
 * link's state is posted as CTL_IN_LINK.  Bodies are malloc'd by the sender
 * and owned by whoever takes the item off the queue.  Reconnects with
 * backoff like the consumer.
 *
 * Details: the link starts down; LINK ok follows each complete setup, LINK
 * not ok (why: the broker's error, or "shutting down") only a LINK ok.  An
 * instance receives its own COMMANDs and ASKs.  Deliveries over 1 MiB are
 * dropped and logged.  An events_exchange that exists with another type
 * (or may not be declared) is logged once per connection, and EVENTs then
 * fail with "events_exchange unusable".
 */
#ifndef NOTIFYD_MQ_CONTROL_H
#define NOTIFYD_MQ_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "stats.h"

struct xqueue;
struct mq_control;

#define CTL_NAME_MAX 256	/* exchange, routing key, reply-to: AMQP shortstr */
#define CTL_CORR_MAX 64

enum ctl_out_kind {
	CTL_OUT_COMMAND = 0,	/* to the control exchange (every instance, this one too) */
	CTL_OUT_ASK,		/* to the control exchange, reply_to amq.rabbitmq.reply-to */
	CTL_OUT_ANSWER,		/* to the default exchange, routing key = a question's reply_to */
	CTL_OUT_EVENT		/* to events_exchange, persistent */
};

struct ctl_out {
	uint64_t id;			/* != 0: a CTL_IN_CONFIRM with this id follows */
	enum ctl_out_kind kind;
	char routing_key[CTL_NAME_MAX];	/* ANSWER: the reply_to; EVENT: the event's key */
	char correlation_id[CTL_CORR_MAX];	/* ASK and ANSWER */
	char *body;			/* JSON, malloc'd; freed by the control thread */
	size_t len;
};

enum ctl_in_kind {
	CTL_IN_COMMAND = 0,	/* a message from the control exchange */
	CTL_IN_REPLY,		/* an answer to one of our questions */
	CTL_IN_CONFIRM,		/* the fate of a ctl_out with an id */
	CTL_IN_LINK		/* the link went up (ok) or down */
};

struct ctl_in {
	enum ctl_in_kind kind;
	uint64_t id;			/* CONFIRM */
	bool ok;			/* CONFIRM: confirmed; LINK: up */
	char why[96];			/* CONFIRM not ok, LINK down */
	char reply_to[CTL_NAME_MAX];	/* COMMAND: set when the sender asks */
	char correlation_id[CTL_CORR_MAX];	/* COMMAND (a question) and REPLY */
	char *body;			/* COMMAND and REPLY, malloc'd, NUL-terminated */
	size_t len;
};

/* Frees what an item holds (not the item). */
void ctl_out_clear(struct ctl_out *o);
void ctl_in_clear(struct ctl_in *i);

/* outq: loop -> control thread (struct ctl_out, eventfd);
 * inq: control thread -> loop (struct ctl_in, eventfd). */
struct mq_control *mq_control_start(const struct config *cfg, struct stats *st,
    struct xqueue *outq, struct xqueue *inq);

/* Publishes what is already on outq if the link is up (bounded by a short
 * wait for confirms), fails the rest with "shutting down", closes the
 * connection, joins the thread, frees. */
void mq_control_stop(struct mq_control *c);

#endif
