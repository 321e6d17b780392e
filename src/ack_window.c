#include "autoconfig.h"

#include "ack_window.h"

#include <string.h>

/* Tag states in the seq_window; ACK_DUE and SENT are settled, so the
 * window's prefix moves over them (a REJECT_DUE is sent, and becomes SENT,
 * before any multiple ack that would cover it). */
enum {
	ST_PENDING = 1,	/* delivered, no verdict yet */
	ST_REJECT_DUE,	/* verdict REJECT, not sent */
	ST_ACK_DUE,	/* verdict ACK, not sent */
	ST_SENT		/* settled at the broker by an individual frame */
};

int ack_window_init(struct ack_window *w, size_t pressure)
{
	memset(w, 0, sizeof(*w));
	if (seq_window_init(&w->tags, 1024, false, ST_ACK_DUE, 1) < 0)
		return -1;
	w->pressure = pressure > 0 ? pressure : 1;
	return 0;
}

void ack_window_free(struct ack_window *w)
{
	seq_window_free(&w->tags);
}

void ack_window_reset(struct ack_window *w)
{
	seq_window_reset(&w->tags, 1);
	w->waiting = 0;
	w->flushing = 0;
}

int ack_window_delivered(struct ack_window *w, uint64_t tag)
{
	if (tag < w->tags.next)
		return -1;
	if (tag > w->tags.next) {
		/* Tags skipped on the wire (not expected on one channel) have
		 * nothing to settle; mark them so the contiguous run can pass. */
		if (seq_window_reserve(&w->tags, tag) < 0)
			return -1;
		for (uint64_t t = w->tags.next; t < tag; t++)
			(void)seq_window_add(&w->tags, t, ST_SENT, NULL);
	}
	return seq_window_add(&w->tags, tag, ST_PENDING, NULL) < 0 ? -1 : 0;
}

int ack_window_settle(struct ack_window *w, uint64_t tag, enum ack_kind kind)
{
	if (seq_window_state(&w->tags, tag) != ST_PENDING)
		return -1;
	return seq_window_set(&w->tags, tag, kind == ACK_REJECT ? ST_REJECT_DUE : ST_ACK_DUE);
}

size_t ack_window_collect(struct ack_window *w, struct ack_action *out, size_t max)
{
	struct seq_window *tw = &w->tags;
	size_t n = 0;
	uint64_t t, last_ack = 0;
	uint8_t st;

	if (max == 0)
		return 0;
	/* Rejects first: a multiple ack sent before them would settle them as
	 * acked. */
	for (t = seq_window_find(tw, tw->base, ST_REJECT_DUE); t < tw->next;
	    t = seq_window_find(tw, t + 1, ST_REJECT_DUE)) {
		if (n == max)
			return n;
		out[n++] = (struct ack_action){ .tag = t, .kind = ACK_REJECT, .multiple = 0 };
		(void)seq_window_set(tw, t, ST_SENT);
	}
	/* The run below frees its slots, so its one ack must fit now. */
	if (n == max)
		return n;
	while (seq_window_pop(tw, &t, &st, NULL))
		if (st == ST_ACK_DUE)
			last_ack = t;
	if (last_ack != 0)
		out[n++] = (struct ack_action){ .tag = last_ack, .kind = ACK_ACK, .multiple = 1 };
	w->waiting = 0;
	for (t = seq_window_find(tw, tw->base, ST_ACK_DUE); t < tw->next;
	    t = seq_window_find(tw, t + 1, ST_ACK_DUE))
		w->waiting++;
	if (w->waiting >= w->pressure)
		w->flushing = 1;
	if (w->flushing) {
		for (t = seq_window_find(tw, tw->base, ST_ACK_DUE); t < tw->next && n < max;
		    t = seq_window_find(tw, t + 1, ST_ACK_DUE)) {
			out[n++] = (struct ack_action){ .tag = t, .kind = ACK_ACK, .multiple = 0 };
			(void)seq_window_set(tw, t, ST_SENT);
			w->waiting--;
		}
		if (w->waiting == 0)
			w->flushing = 0;
	}
	return n;
}

uint64_t ack_window_outstanding(const struct ack_window *w)
{
	return seq_window_span(&w->tags);
}
