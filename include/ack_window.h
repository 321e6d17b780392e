/* ack_window.h - which delivery tags of one channel may be acked, and how.
 *
 * Promises: given the tags the broker delivered (increasing, from 1 on a new
 * channel) and, in any order, the verdict on each (ACK once its frames are
 * written, REJECT when the message is invalid), ack_window_collect() yields
 * the fewest frames that settle them: one basic.ack with multiple=1 over the
 * longest contiguous run of settled tags from the oldest, individual
 * basic.reject frames (sent as soon as known, before any multiple ack that
 * covers them), and individual acks for tags beyond a gap once half the
 * window waits behind it, so a slow message does not starve the prefetch.
 * A tag is never settled twice.  Pure: no I/O, no threads.  The window
 * itself is a seq_window; this is the batching policy over it.
 */
#ifndef NOTIFYD_ACK_WINDOW_H
#define NOTIFYD_ACK_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "seq_window.h"

enum ack_kind { ACK_ACK = 1, ACK_REJECT = 2 };

struct ack_action {
	uint64_t tag;
	uint8_t kind;		/* enum ack_kind */
	uint8_t multiple;	/* 1: every outstanding tag <= tag */
};

struct ack_window {
	struct seq_window tags;	/* base: lowest tag not settled at the broker */
	size_t waiting;		/* ACK verdicts beyond a gap, not yet sent */
	size_t pressure;	/* waiting count that triggers individual acks */
	int flushing;		/* individual acks under way (may span calls) */
};

/* pressure: how many acks may wait behind an unsettled tag before they are
 * sent one by one (e.g. prefetch / 2).  Returns 0 or -1 (out of memory). */
int ack_window_init(struct ack_window *w, size_t pressure);
void ack_window_free(struct ack_window *w);

/* A new channel: forget everything, tags start again at 1. */
void ack_window_reset(struct ack_window *w);

/* The broker delivered tag (must be >= next).  Returns 0 or -1 (no memory). */
int ack_window_delivered(struct ack_window *w, uint64_t tag);

/* The verdict on a delivered tag.  Returns 0, or -1 for a tag that is not
 * outstanding (unknown, or settled already): the caller drops it. */
int ack_window_settle(struct ack_window *w, uint64_t tag, enum ack_kind kind);

/* Frames to send now, in order, at most max.  Call until it returns less
 * than max. */
size_t ack_window_collect(struct ack_window *w, struct ack_action *out, size_t max);

/* Delivered but not yet settled at the broker. */
uint64_t ack_window_outstanding(const struct ack_window *w);

#endif
