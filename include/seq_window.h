/* seq_window.h - a window over increasing 64-bit sequence numbers.
 *
 * Promises: for each seq in [base, next), a state (0: not added; 1..255 the
 * caller's) and optionally a pointer.  Seqs are added at or above base, in
 * any order, each once; room grows on demand.  base moves only by
 * seq_window_pop(), over a contiguous prefix of settled states (>= the
 * threshold given at init).  Pure: no I/O, no threads, no globals.
 */
#ifndef NOTIFYD_SEQ_WINDOW_H
#define NOTIFYD_SEQ_WINDOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { SEQ_WINDOW_REFUSED = -1, SEQ_WINDOW_NOMEM = -2 };

struct seq_window {
	uint64_t base;		/* lowest seq still held */
	uint64_t next;		/* one past the highest seq added */
	uint8_t *state;		/* per seq, at seq & mask */
	void **item;		/* likewise, or NULL when not asked for */
	size_t mask;		/* capacity - 1; capacity is a power of two */
	uint8_t settled;	/* states >= this may be popped */
};

/* cap: initial room (rounded up to a power of two); items: keep a pointer
 * per seq; settled: 1..255.  Seqs start at first.  Returns 0 or -1. */
int seq_window_init(struct seq_window *w, size_t cap, bool items, uint8_t settled,
    uint64_t first);
void seq_window_free(struct seq_window *w);

/* Forget every seq (items are not freed) and start again at first. */
void seq_window_reset(struct seq_window *w, uint64_t first);

/* Make room for every seq up to last (>= base), so that adding them cannot
 * fail for memory.  Returns 0 or SEQ_WINDOW_NOMEM. */
int seq_window_reserve(struct seq_window *w, uint64_t last);

/* The first held seq >= from whose state is state (1..255), or next when
 * none is: a memchr over the ring, for scans that look for a rare state. */
uint64_t seq_window_find(const struct seq_window *w, uint64_t from, uint8_t state);

/* The state of seq: 0 when not held (outside the window, or not added). */
static inline uint8_t seq_window_state(const struct seq_window *w, uint64_t seq)
{
	return seq >= w->base && seq < w->next ? w->state[seq & w->mask] : 0;
}

/* The item of a held seq, or NULL. */
static inline void *seq_window_item(const struct seq_window *w, uint64_t seq)
{
	return w->item != NULL && seq_window_state(w, seq) != 0 ? w->item[seq & w->mask] : NULL;
}

/* Seqs between base and next, added or not. */
static inline uint64_t seq_window_span(const struct seq_window *w)
{
	return w->next - w->base;
}

/* The operations below run per message: inline. */

/* Add seq with state (1..255) and item.  Returns 0, SEQ_WINDOW_REFUSED when
 * seq is below base or already added, or SEQ_WINDOW_NOMEM. */
static inline int seq_window_add(struct seq_window *w, uint64_t seq, uint8_t state, void *item)
{
	uint64_t base = w->base;
	size_t i;

	if (seq < base || seq == UINT64_MAX || state == 0)
		return SEQ_WINDOW_REFUSED;
	if (seq - base > w->mask) {
		/* Beyond the ring, so beyond next: never added. */
		if (seq_window_reserve(w, seq) < 0)
			return SEQ_WINDOW_NOMEM;
	} else if (seq < w->next && w->state[seq & w->mask] != 0) {
		return SEQ_WINDOW_REFUSED;
	}
	i = seq & w->mask;
	if (w->item != NULL)
		w->item[i] = item;
	w->state[i] = state;
	if (seq >= w->next)
		w->next = seq + 1;
	return 0;
}

/* Change the state (1..255) of an added seq.  Returns 0, or
 * SEQ_WINDOW_REFUSED for a seq not held. */
static inline int seq_window_set(struct seq_window *w, uint64_t seq, uint8_t state)
{
	if (state == 0 || seq_window_state(w, seq) == 0)
		return SEQ_WINDOW_REFUSED;
	w->state[seq & w->mask] = state;
	return 0;
}

/* The seq at base, if settled: removed, its seq, state and item stored
 * (any pointer may be NULL), returns true.  Else false. */
static inline bool seq_window_pop(struct seq_window *w, uint64_t *seq, uint8_t *state, void **item)
{
	uint64_t base = w->base;
	size_t i = base & w->mask;
	uint8_t st;
	void *it = NULL;

	/* No base == next test: a slot outside the window holds state 0. */
	st = w->state[i];
	if (st < w->settled)
		return false;
	if (w->item != NULL) {
		it = w->item[i];
		w->item[i] = NULL;
	}
	w->state[i] = 0;
	w->base = base + 1;
	if (seq != NULL)
		*seq = base;
	if (state != NULL)
		*state = st;
	if (item != NULL)
		*item = it;
	return true;
}

#endif
