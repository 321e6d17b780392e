#include "autoconfig.h"

#include "delivery.h"

#include <stdlib.h>
#include <string.h>

#include "ack_window.h"
#include "clock.h"
#include "envelope.h"
#include "history.h"
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
		if (m->targets == 0 && !m->quiet)
			stats_add(&k->stats->undelivered, 1);
		/* A closed queue means we are past shutdown: the broker keeps
		 * the message, which is what an unacked delivery is for. */
		(void)xqueue_push(k->ackq, &a);
	}
	k->in_flight--;
	msg_free(m);
}

void msg_free(struct msg *m)
{
	for (struct msg *p = m->nparts > 0 ? m->parts : NULL, *next; p != NULL; p = next) {
		next = p->parts;
		msg_free(p);
	}
	hist_entry_unref(m->entry);
	free(m->v2_own);
	free(m);
}

/* The body of a single msg: its frame after the header. */
static const uint8_t *msg_body(const struct msg *m, size_t *len)
{
	size_t h = m->frame[1] & 0x7f;

	h = h == 127 ? 10 : h == 126 ? 4 : 2;
	*len = m->frame_len - h;
	return m->frame + h;
}

int msg_v2_frame(struct msg *m)
{
	size_t len = 0, off = 0;

	if (m->v2 != NULL)
		return 0;
	if (m->entry != NULL && m->nparts == 0) {
		m->v2 = m->entry->frame;
		m->v2_len = m->entry->frame_len;
		return 0;
	}
	/* A batch: its parts' frames back to back, as for the raw frames. */
	for (struct msg *p = m->nparts > 0 ? m->parts : m; p != NULL; p = m->nparts > 0 ? p->parts : NULL) {
		size_t blen;

		if (p->entry != NULL) {
			len += p->entry->frame_len;
		} else {
			(void)msg_body(p, &blen);
			len += envelope_message_len(0, blen);
		}
	}
	m->v2_own = malloc(len);
	if (m->v2_own == NULL)
		return -1;
	for (struct msg *p = m->nparts > 0 ? m->parts : m; p != NULL; p = m->nparts > 0 ? p->parts : NULL) {
		size_t blen;
		const uint8_t *body;

		if (p->entry != NULL) {
			memcpy(m->v2_own + off, p->entry->frame, p->entry->frame_len);
			off += p->entry->frame_len;
			continue;
		}
		body = msg_body(p, &blen);
		envelope_message_write(m->v2_own + off, NULL, 0, body, blen);
		off += envelope_message_len(0, blen);
	}
	m->v2 = m->v2_own;
	m->v2_len = len;
	return 0;
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
	m->parts = NULL;
	m->nparts = 0;
	msg_free(m);
}
