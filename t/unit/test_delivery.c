/* Unit tests for delivery: a msg's references, and how the last release
 * settles it into its sink (an ack, or nothing when abandoned), alone and
 * as parts of a broadcast batch.  No broker, no event loop: the sink's
 * queue is a real xqueue, read back here. */
#include "autoconfig.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ack_window.h"
#include "delivery.h"
#include "stats.h"
#include "tap.h"
#include "xqueue.h"

static struct msg *new_msg(struct msg_sink *k, uint64_t tag, enum target_kind kind)
{
	struct target t;
	struct msg *m = calloc(1, sizeof(*m) + 16);

	memset(&t, 0, sizeof(t));
	t.kind = kind;
	msg_init(m, 1, tag, 0, &t, 16);
	m->owner = k;
	k->in_flight++;
	return m;
}

/* A writer's reference, as ws_conn takes one before evbuffer_add_reference. */
static void take(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	m->targets++;
}

static size_t acks(struct xqueue *q, uint64_t *tags, size_t max)
{
	struct ack_item a[16];
	size_t n = xqueue_drain(q, a, 16);

	for (size_t i = 0; i < n && i < max; i++)
		tags[i] = a[i].kind == ACK_ACK ? a[i].tag : 0;
	return n;
}

int main(void)
{
	struct xqueue q;
	struct stats st;
	struct msg_sink k;
	uint64_t tags[16];
	struct msg *m, *b, *p1, *p2;

	memset(&st, 0, sizeof(st));
	if (xqueue_init(&q, "acks", sizeof(struct ack_item), true) < 0)
		return 1;
	memset(&k, 0, sizeof(k));
	k.ackq = &q;
	k.stats = &st;

	m = new_msg(&k, 7, TARGET_USER);
	msg_release(NULL, 0, m);	/* the dispatcher's own, no writer */
	ok(acks(&q, tags, 16) == 1 && tags[0] == 7, "no target: acked when the dispatcher lets go");
	ok(stats_get(&st.undelivered) == 1 && k.in_flight == 0, "counted undelivered, nothing in flight");

	m = new_msg(&k, 8, TARGET_USER);
	take(m);
	take(m);
	msg_release(NULL, 0, m);
	ok(acks(&q, tags, 16) == 0, "two writers hold it: no ack yet");
	msg_release(m->frame, m->frame_len, m);
	ok(acks(&q, tags, 16) == 0 && k.in_flight == 1, "one writer done: still no ack");
	msg_release(m->frame, m->frame_len, m);
	ok(acks(&q, tags, 16) == 1 && tags[0] == 8, "the last writer's release acks it");
	ok(stats_get(&st.latency_count) == 2 && stats_get(&st.undelivered) == 1,
	    "each written frame counted in the latency histogram; delivered is not undelivered");

	m = new_msg(&k, 9, TARGET_USER);
	take(m);
	msg_release(NULL, 0, m);
	k.abandoning = true;
	msg_release(m->frame, m->frame_len, m);
	ok(acks(&q, tags, 16) == 0 && k.in_flight == 0, "released unwritten at shutdown: not acked (the broker keeps it)");
	k.abandoning = false;

	/* A batch: two broadcasts written as one block, the batch holding the
	 * only reference to each part. */
	p1 = new_msg(&k, 10, TARGET_BROADCAST);
	p2 = new_msg(&k, 11, TARGET_BROADCAST);
	b = calloc(1, sizeof(*b) + 32);
	msg_init(b, 1, 0, 0, &p1->target, 32);
	b->owner = &k;
	b->parts = p1;
	p1->parts = p2;
	b->nparts = 2;
	take(b);
	take(b);
	msg_release(NULL, 0, b);
	msg_release(b->frame, b->frame_len, b);
	ok(acks(&q, tags, 16) == 0, "batch: one of two writers done, no part acked");
	msg_release(b->frame, b->frame_len, b);
	ok(acks(&q, tags, 16) == 2 && tags[0] == 10 && tags[1] == 11, "batch: both parts acked, in order");
	ok(k.in_flight == 0 && stats_get(&st.latency_count) == 2 + 2 * 2,
	    "batch: nothing in flight; each part's latency counted per writer");

	xqueue_destroy(&q);
	return done_testing();
}
