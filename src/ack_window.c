#include "autoconfig.h"

#include "ack_window.h"

#include <stdlib.h>
#include <string.h>

enum {
	ST_FREE = 0,	/* outside the window, or nothing left to do */
	ST_PENDING,	/* delivered, no verdict yet */
	ST_ACK_DUE,	/* verdict ACK, not sent */
	ST_REJECT_DUE,	/* verdict REJECT, not sent */
	ST_SENT		/* settled at the broker by an individual frame */
};

#define SLOT(w, t) ((w)->state[(t) & (w)->mask])

int ack_window_init(struct ack_window *w, size_t pressure)
{
	memset(w, 0, sizeof(*w));
	w->mask = 1023;
	w->state = calloc(w->mask + 1, 1);
	if (w->state == NULL)
		return -1;
	w->pressure = pressure > 0 ? pressure : 1;
	ack_window_reset(w);
	return 0;
}

void ack_window_free(struct ack_window *w)
{
	free(w->state);
	w->state = NULL;
}

void ack_window_reset(struct ack_window *w)
{
	memset(w->state, 0, w->mask + 1);
	w->base = 1;
	w->next = 1;
	w->waiting = 0;
	w->flushing = 0;
}

static int ack_window_grow(struct ack_window *w, uint64_t need)
{
	size_t ncap = (w->mask + 1) * 2;
	uint8_t *n;

	while (ncap < need)
		ncap *= 2;
	n = calloc(ncap, 1);
	if (n == NULL)
		return -1;
	for (uint64_t t = w->base; t < w->next; t++)
		n[t & (ncap - 1)] = SLOT(w, t);
	free(w->state);
	w->state = n;
	w->mask = ncap - 1;
	return 0;
}

int ack_window_delivered(struct ack_window *w, uint64_t tag)
{
	if (tag < w->next)
		return -1;
	if (tag - w->base + 1 > w->mask + 1 && ack_window_grow(w, tag - w->base + 1) < 0)
		return -1;
	/* Tags skipped on the wire (not expected on one channel) have nothing
	 * to settle; mark them so the contiguous run can pass them. */
	for (uint64_t t = w->next; t < tag; t++)
		SLOT(w, t) = ST_SENT;
	SLOT(w, tag) = ST_PENDING;
	w->next = tag + 1;
	return 0;
}

int ack_window_settle(struct ack_window *w, uint64_t tag, enum ack_kind kind)
{
	if (tag < w->base || tag >= w->next || SLOT(w, tag) != ST_PENDING)
		return -1;
	SLOT(w, tag) = kind == ACK_REJECT ? ST_REJECT_DUE : ST_ACK_DUE;
	return 0;
}

size_t ack_window_collect(struct ack_window *w, struct ack_action *out, size_t max)
{
	size_t n = 0;
	uint64_t last_ack = 0;

	if (max == 0)
		return 0;
	/* Rejects first: a multiple ack sent before them would settle them as
	 * acked. */
	for (uint64_t t = w->base; t < w->next; t++) {
		if (SLOT(w, t) != ST_REJECT_DUE)
			continue;
		if (n == max)
			return n;
		out[n++] = (struct ack_action){ .tag = t, .kind = ACK_REJECT, .multiple = 0 };
		SLOT(w, t) = ST_SENT;
	}
	/* The run below frees its slots, so its one ack must fit now. */
	if (n == max)
		return n;
	while (w->base < w->next) {
		uint8_t s = SLOT(w, w->base);

		if (s == ST_ACK_DUE)
			last_ack = w->base;
		else if (s != ST_SENT)
			break;
		SLOT(w, w->base) = ST_FREE;
		w->base++;
	}
	if (last_ack != 0)
		out[n++] = (struct ack_action){ .tag = last_ack, .kind = ACK_ACK, .multiple = 1 };
	w->waiting = 0;
	for (uint64_t t = w->base; t < w->next; t++)
		if (SLOT(w, t) == ST_ACK_DUE)
			w->waiting++;
	if (w->waiting >= w->pressure)
		w->flushing = 1;
	if (w->flushing) {
		for (uint64_t t = w->base; t < w->next && n < max; t++) {
			if (SLOT(w, t) != ST_ACK_DUE)
				continue;
			out[n++] = (struct ack_action){ .tag = t, .kind = ACK_ACK, .multiple = 0 };
			SLOT(w, t) = ST_SENT;
			w->waiting--;
		}
		if (w->waiting == 0)
			w->flushing = 0;
	}
	return n;
}

uint64_t ack_window_outstanding(const struct ack_window *w)
{
	return w->next - w->base;
}
