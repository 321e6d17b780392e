#include "autoconfig.h"

#include "seq_window.h"

#include <stdlib.h>
#include <string.h>

/* Slots outside [base, next) are kept at state 0 and item NULL: growth then
 * copies only the window, and a slot is free the moment base passes it. */

int seq_window_init(struct seq_window *w, size_t cap, bool items, uint8_t settled,
    uint64_t first)
{
	size_t c = 16;

	memset(w, 0, sizeof(*w));
	while (c < cap && c <= SIZE_MAX / 4 / sizeof(void *))
		c *= 2;
	w->mask = c - 1;
	w->settled = settled > 0 ? settled : 1;
	w->state = calloc(c, 1);
	if (items)
		w->item = calloc(c, sizeof(*w->item));
	if (w->state == NULL || (items && w->item == NULL)) {
		seq_window_free(w);
		return -1;
	}
	w->base = first;
	w->next = first;
	return 0;
}

void seq_window_free(struct seq_window *w)
{
	free(w->state);
	free(w->item);
	w->state = NULL;
	w->item = NULL;
}

void seq_window_reset(struct seq_window *w, uint64_t first)
{
	memset(w->state, 0, w->mask + 1);
	if (w->item != NULL)
		memset(w->item, 0, (w->mask + 1) * sizeof(*w->item));
	w->base = first;
	w->next = first;
}

int seq_window_reserve(struct seq_window *w, uint64_t last)
{
	uint64_t span;
	size_t ncap = (w->mask + 1) * 2;
	uint8_t *ns;
	void **ni = NULL;

	if (last < w->base || last - w->base <= w->mask)
		return 0;
	span = last - w->base;
	/* A span this large is a corrupt seq, not a window to hold. */
	if (span >= SIZE_MAX / 4 / sizeof(void *))
		return SEQ_WINDOW_NOMEM;
	while (ncap <= span)
		ncap *= 2;
	ns = calloc(ncap, 1);
	if (w->item != NULL)
		ni = calloc(ncap, sizeof(*ni));
	if (ns == NULL || (w->item != NULL && ni == NULL)) {
		free(ns);
		free(ni);
		return SEQ_WINDOW_NOMEM;
	}
	for (uint64_t s = w->base; s < w->next; s++) {
		ns[s & (ncap - 1)] = w->state[s & w->mask];
		if (ni != NULL)
			ni[s & (ncap - 1)] = w->item[s & w->mask];
	}
	free(w->state);
	free(w->item);
	w->state = ns;
	w->item = ni;
	w->mask = ncap - 1;
	return 0;
}

uint64_t seq_window_find(const struct seq_window *w, uint64_t from, uint8_t state)
{
	if (from < w->base)
		from = w->base;
	while (from < w->next) {
		size_t i = from & w->mask;
		size_t run = w->mask + 1 - i;	/* to the end of the ring */
		const uint8_t *hit;

		if (run > w->next - from)
			run = (size_t)(w->next - from);
		hit = memchr(w->state + i, state, run);
		if (hit != NULL)
			return from + (uint64_t)(hit - (w->state + i));
		from += run;
	}
	return w->next;
}
