/* mq_publisher.h - publishing for POST /push, on its own thread and its
 * own broker connection (a broker that blocks publishers must not stall the
 * consumer, and rabbitmq-c connections belong to one thread).
 *
 * Promises: every push_job that comes in on pushq gets exactly one
 * push_result on resultq: 202 once the broker confirmed every message of the
 * job (publisher confirms), 503 with a reason when the broker is down,
 * blocked (resource alarm), refused a message (basic.nack) or the connection
 * dropped before the confirms arrived, or 400/413 when push_body_parse()
 * refuses the body.  Messages are persistent JSON.  The job's memory is
 * freed here.  Reconnects with backoff like the consumer.
 */
#ifndef NOTIFYD_MQ_PUBLISHER_H
#define NOTIFYD_MQ_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "push_body.h"

struct xqueue;
struct mq_publisher;

struct push_result {
	uint64_t id;
	uint16_t status;			/* 202; 400 or 413 (the body); 503 */
	uint32_t count;				/* messages confirmed */
	char why[96];
};

struct mq_publisher *mq_publisher_start(const struct config *cfg, struct xqueue *pushq,
    struct xqueue *resultq);

/* Fails what is pending, closes the connection, joins the thread, frees. */
void mq_publisher_stop(struct mq_publisher *p);

#endif
