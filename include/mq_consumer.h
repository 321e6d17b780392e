/* mq_consumer.h - the broker connection and the thread that owns it.
 *
 * Promises: one thread, the only one that touches the rabbitmq-c connection
 * (it is not thread-safe).  It declares the exchange (or checks it
 * passively), its durable queue with the contract's bindings, sets the
 * prefetch and consumes.  Each delivery becomes a job on jobq, numbered in
 * arrival order.  Verdicts come back on ackq (the loop's acks, the workers'
 * rejects) and are sent as few frames as ack_window allows, tagged with the
 * connection generation so that none is ever sent on a newer channel (which
 * would close it with 406).  Lost connections are retried with exponential
 * backoff and jitter; every change of state is posted to statusq.
 * The thread never blocks longer than a fraction of the heartbeat interval,
 * so the library keeps the heartbeats going.
 */
#ifndef NOTIFYD_MQ_CONSUMER_H
#define NOTIFYD_MQ_CONSUMER_H

#include "config.h"
#include "stats.h"

struct xqueue;
struct mq_consumer;

/* The header of an instance's start marker in the stream (its value: a
 * nonce); a marker is a position, never a notification. */
#define MQ_MARKER_HEADER "x-notifyd-marker"

enum consumer_command {
	CONSUMER_RUN = 0,
	CONSUMER_STOP_CONSUMING,	/* cancel, settle what was taken, report drained */
	CONSUMER_FINISH			/* send the last acks, close, end the thread */
};

struct mq_consumer *mq_consumer_start(const struct config *cfg, struct stats *stats,
    struct xqueue *jobq, struct xqueue *ackq, struct xqueue *statusq);

/* From the loop thread: a command is a flag plus a wake-up of the thread. */
void mq_consumer_command(struct mq_consumer *c, enum consumer_command cmd);

/* After CONSUMER_FINISH: wait for the thread and free everything. */
void mq_consumer_join(struct mq_consumer *c);

#endif
