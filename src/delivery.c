#include "autoconfig.h"

#include "delivery.h"

#include <stdlib.h>
#include <string.h>

#include "ack_window.h"
#include "clock.h"
#include "envelope.h"
#include "history.h"
#include "sse.h"
#include "stats.h"
#include "ws_frame.h"
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
	for (int i = 0; i < MSG_FORMATS - 1; i++)
		free(m->alt[i].own);
	free(m);
}

/* The body of a single msg: its frame after the header. */
static const uint8_t *msg_body(const struct msg *m, size_t *len)
{
	size_t h = ws_frame_server_header_len(m->frame);

	*len = m->frame_len - h;
	return m->frame + h;
}

/* One part in format f: its length, and its bytes written to dst unless
 * dst is NULL. */
static size_t part_bytes(const struct msg *p, enum msg_format f, uint8_t *dst)
{
	const char *id = p->entry != NULL ? p->entry->id : NULL;
	size_t blen, n;
	const uint8_t *body = msg_body(p, &blen);

	if (f == MSG_SSE)
		return dst != NULL ? sse_event_write(dst, NULL, id, body, blen) : sse_event_len(NULL, id, body, blen);
	if (p->entry != NULL) {
		if (dst != NULL)
			memcpy(dst, p->entry->frame, p->entry->frame_len);
		return p->entry->frame_len;
	}
	n = envelope_message_len(0, blen);
	if (dst != NULL)
		envelope_message_write(dst, "", 0, body, blen);
	return n;
}

const uint8_t *msg_bytes(struct msg *m, enum msg_format f, size_t *len)
{
	struct msg *first = m->nparts > 0 ? m->parts : m;
	size_t total = 0, off = 0;

	if (f == MSG_RAW) {
		*len = m->frame_len;
		return m->frame;
	}
	if (m->alt[f - 1].p != NULL) {
		*len = m->alt[f - 1].len;
		return m->alt[f - 1].p;
	}
	if (f == MSG_V2 && m->nparts == 0 && m->entry != NULL) {
		/* Built by the worker, shared with the history. */
		m->alt[f - 1].p = m->entry->frame;
		m->alt[f - 1].len = m->entry->frame_len;
		*len = m->entry->frame_len;
		return m->entry->frame;
	}
	for (struct msg *p = first; p != NULL; p = m->nparts > 0 ? p->parts : NULL)
		total += part_bytes(p, f, NULL);
	m->alt[f - 1].own = malloc(total > 0 ? total : 1);
	if (m->alt[f - 1].own == NULL)
		return NULL;
	for (struct msg *p = first; p != NULL; p = m->nparts > 0 ? p->parts : NULL)
		off += part_bytes(p, f, m->alt[f - 1].own + off);
	m->alt[f - 1].p = m->alt[f - 1].own;
	m->alt[f - 1].len = total;
	*len = total;
	return m->alt[f - 1].p;
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
