#include "autoconfig.h"

#include "delivery.h"

#include <stdlib.h>

#include "ack_window.h"
#include "clock.h"
#include "stats.h"
#include "xqueue.h"

void msg_observe_written(const struct msg *m, uint64_t now_ns)
{
	struct stats *st = m->owner->stats;

	if (m->nparts == 0) {
		stats_observe_latency(st, now_ns - m->t_recv_ns);
		return;
	}
	for (const struct msg *p = m->parts; p != NULL; p = p->parts)
		stats_observe_latency(st, now_ns - p->t_recv_ns);
}

/* The last reference to a single notification is gone: ack it, unless a
 * frame of it was dropped unwritten (the broker keeps it and redelivers). */
static void msg_settle(struct msg_sink *k, struct msg *m)
{
	struct ack_item a;

	if (!m->abandoned) {
		a.tag = m->tag;
		a.gen = m->gen;
		a.kind = ACK_ACK;
		if (m->targets == 0)
			stats_add(&k->stats->undelivered, 1);
		/* A closed queue means we are past shutdown: the broker keeps
		 * the message, which is what an unacked delivery is for. */
		(void)xqueue_push(k->ackq, &a);
	}
	k->in_flight--;
	free(m);
}

void msg_release(const void *data, size_t len, void *arg)
{
	struct msg *m = arg;
	struct msg_sink *k = m->owner;

	(void)len;
	if (data != NULL && k->abandoning)
		m->abandoned = true;
	else if (data != NULL)
		msg_observe_written(m, clock_now_ns());
	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (m->nparts == 0) {
		msg_settle(k, m);
		return;
	}
	for (struct msg *p = m->parts, *next; p != NULL; p = next) {
		next = p->parts;
		p->targets = m->targets;
		p->abandoned = m->abandoned;
		msg_settle(k, p);
	}
	free(m);
}
