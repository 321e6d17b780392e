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
#include "ws_deflate.h"
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
		if (m->targets == 0 && !msg_quiet(m))
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
	free(m->rk);
	for (int i = 0; i < MSG_FORMATS - 1; i++)
		free(m->alt[i].own);
	free(m);
}

const uint8_t *msg_body(const struct msg *m, size_t *len)
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

/* Append n bytes to the growing block *buf of *cap bytes, *used taken. */
static int append(uint8_t **buf, size_t *cap, size_t *used, const void *p, size_t n)
{
	if (*used + n > *cap) {
		size_t c = (*used + n) * 2;
		uint8_t *b = realloc(*buf, c);

		if (b == NULL)
			return -1;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *used, p, n);
	*used += n;
	return 0;
}

/* The _Z formats: each part's frame of the base format compressed once, as
 * its own message (RSV1), or as it is when that does not make it smaller
 * (or it is under deflate_min).  Without anything compressed, a single
 * msg's base frame is shared rather than copied. */
static const uint8_t *msg_bytes_z(struct msg *m, enum msg_format f, size_t *len)
{
	const struct msg_sink *k = m->owner;
	enum msg_format base = f == MSG_RAW_Z ? MSG_RAW : MSG_V2;
	uint8_t *buf = NULL, hdr[WS_SERVER_HEADER_MAX];
	size_t cap = 0, used = 0;
	bool any = false;

	for (struct msg *p = m->nparts > 0 ? m->parts : m; p != NULL; p = m->nparts > 0 ? p->parts : NULL) {
		size_t bl, h, zl = 0;
		const uint8_t *b = msg_bytes(p, base, &bl);
		uint8_t *z = NULL;
		int rc = -1;

		if (b == NULL)
			goto fail;
		h = ws_frame_server_header_len(b);
		if (k != NULL && k->deflater != NULL && bl - h >= k->deflate_min)
			rc = (int)ws_deflate_message(k->deflater, b + h, bl - h, &z, &zl);
		if (rc == WS_DEFLATE_OK) {
			size_t hl = ws_frame_header_encode_rsv1(hdr, WS_OP_TEXT, zl);

			stats_add(&k->stats->deflate_in, bl - h);
			stats_add(&k->stats->deflate_out, zl);
			rc = append(&buf, &cap, &used, hdr, hl) < 0 || append(&buf, &cap, &used, z, zl) < 0 ? -1 : 0;
			free(z);
			any = true;
			if (rc < 0)
				goto fail;
		} else if (append(&buf, &cap, &used, b, bl) < 0) {
			goto fail;
		}
	}
	if (!any && m->nparts == 0) {
		free(buf);
		m->alt[f - 1].p = msg_bytes(m, base, &m->alt[f - 1].len);
	} else {
		m->alt[f - 1].own = buf;
		m->alt[f - 1].p = buf;
		m->alt[f - 1].len = used;
	}
	*len = m->alt[f - 1].len;
	return m->alt[f - 1].p;
fail:
	free(buf);
	return NULL;
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
	if (f == MSG_RAW_Z || f == MSG_V2_Z)
		return msg_bytes_z(m, f, len);
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
