/* Unit tests for xqueue: FIFO order, growth, and the eventfd that is
 * readable exactly while something was pushed that the receiver has not
 * drained (a stale wake-up would spin a poll loop; a missing one strands
 * items); the spread of pop_next receivers (a busy one is not joined by
 * another for a short queue, is for a long one, and nothing is stranded). */
#include "autoconfig.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "xqueue.h"

#define STRESS_ITEMS 200000

static int readable(const struct xqueue *q)
{
	struct pollfd p = { .fd = xqueue_fd(q), .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void *producer(void *arg)
{
	struct xqueue *q = arg;

	for (uint64_t i = 0; i < STRESS_ITEMS; i++)
		if (xqueue_push(q, &i) < 0)
			break;
	return NULL;
}

/* A poll(2) receiver against a producer thread: everything arrives, in
 * order, and the receiver never waits on a queue that holds items. */
static void stress(void)
{
	struct xqueue q;
	pthread_t t;
	uint64_t expect = 0, buf[100];
	int in_order = 1, stranded = 0;
	time_t end = time(NULL) + 60;

	if (!ok(xqueue_init(&q, "stress", sizeof(uint64_t), true) == 0, "stress: init"))
		return;
	pthread_create(&t, NULL, producer, &q);
	while (expect < STRESS_ITEMS && time(NULL) < end) {
		struct pollfd p = { .fd = xqueue_fd(&q), .events = POLLIN };
		size_t n;

		if (poll(&p, 1, 1000) == 0) {
			/* A second without a wake-up while the producer runs:
			 * only a lost signal explains items left behind. */
			pthread_mutex_lock(&q.mu);
			stranded += q.count > 0;
			pthread_mutex_unlock(&q.mu);
			continue;
		}
		n = xqueue_drain(&q, buf, 100);
		for (size_t i = 0; i < n; i++)
			in_order &= buf[i] == expect++;
	}
	pthread_join(t, NULL);
	ok(expect == STRESS_ITEMS, "stress: %llu of %d items received", (unsigned long long)expect,
	    STRESS_ITEMS);
	ok(in_order, "stress: in push order");
	ok(stranded == 0, "stress: never idle with items queued (%d times)", stranded);
	ok(!readable(&q), "stress: not readable once everything was taken");
	xqueue_destroy(&q);
}

#define HOLD UINT64_MAX	/* a receiver that takes it keeps it until released */
#define RECEIVERS 3

struct recv_state {
	struct xqueue *q;
	atomic_bool *release;
	atomic_uint_fast64_t *taken;	/* items taken, all receivers */
	atomic_uint_fast64_t *sum;	/* of their values (HOLD excepted) */
	atomic_uint_fast64_t mine;	/* items this receiver took */
	struct xqueue_receiver rcv;
};

static void nap_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void recv_init(struct recv_state *r, struct xqueue *q, atomic_bool *release,
    atomic_uint_fast64_t *taken, atomic_uint_fast64_t *sum)
{
	r->q = q;
	r->release = release;
	r->taken = taken;
	r->sum = sum;
	atomic_init(&r->mine, 0);
	xqueue_receiver_init(&r->rcv);
}

static uint64_t mine(struct recv_state *r)
{
	return atomic_load(&r->mine);
}

static void *receiver(void *arg)
{
	struct recv_state *r = arg;
	uint64_t v;

	while (xqueue_pop_next(r->q, &v, &r->rcv)) {
		atomic_fetch_add(&r->mine, 1);
		if (v == HOLD) {
			while (!atomic_load(r->release))
				nap_ms(1);
		} else {
			atomic_fetch_add(r->sum, v);
		}
		atomic_fetch_add(r->taken, 1);
	}
	return NULL;
}

/* Wait (at most 5 s) until n items were taken. */
static int taken_reaches(atomic_uint_fast64_t *taken, uint64_t n)
{
	for (int i = 0; i < 5000 && atomic_load(taken) < n; i++)
		nap_ms(1);
	return atomic_load(taken) >= n;
}

/* A queue and n pop_next receivers (asleep once rig_start returns). */
struct rig {
	struct xqueue q;
	atomic_bool release;
	atomic_uint_fast64_t taken, sum;
	struct recv_state r[RECEIVERS];
	pthread_t t[RECEIVERS];
	int n;
};

static int rig_start(struct rig *g, const char *name, int n, size_t spread,
    size_t (*weigh)(const void *), bool release)
{
	if (!ok(xqueue_init(&g->q, name, sizeof(uint64_t), false) == 0, "%s: init", name))
		return -1;
	xqueue_set_spread(&g->q, spread, weigh);
	atomic_init(&g->release, release);
	atomic_init(&g->taken, 0);
	atomic_init(&g->sum, 0);
	g->n = n;
	for (int i = 0; i < n; i++) {
		recv_init(&g->r[i], &g->q, &g->release, &g->taken, &g->sum);
		pthread_create(&g->t[i], NULL, receiver, &g->r[i]);
	}
	nap_ms(100);
	return 0;
}

static void rig_stop(struct rig *g)
{
	xqueue_close(&g->q);
	for (int i = 0; i < g->n; i++) {
		pthread_join(g->t[i], NULL);
		xqueue_receiver_destroy(&g->r[i].rcv);
	}
}

static uint64_t rig_mine(struct rig *g)
{
	return mine(&g->r[0]) + mine(&g->r[1]);
}

static void rig_push(struct rig *g, uint64_t v)
{
	xqueue_push(&g->q, &v);
}

/* One receiver takes HOLD and keeps it: it is busy from now on. */
static void rig_hold(struct rig *g)
{
	rig_push(g, HOLD);
	for (int i = 0; i < 5000 && rig_mine(g) == 0; i++)
		nap_ms(1);
}

/* What is left after the close: pop_wait takes it in order, then says 0,
 * and counts nobody busy (it does not come back). */
static void leftovers(void)
{
	struct xqueue q;
	uint64_t in[3] = { 7, 8, 9 }, got = 0, v;
	int n = 0;

	if (!ok(xqueue_init(&q, "leftovers", sizeof(uint64_t), false) == 0, "leftovers: init"))
		return;
	xqueue_push_n(&q, in, 3);
	xqueue_close(&q);
	while (xqueue_pop_wait(&q, &v)) {
		got = got * 10 + v;
		n++;
	}
	ok(n == 3 && got == 789, "leftovers: taken in order after the close, then 0");
	ok(q.busy == 0, "leftovers: nobody left busy");
	xqueue_destroy(&q);
}

/* Two receivers asleep, spread 2: one takes HOLD and keeps it (busy); two
 * more items wake nobody (it will take them), a third wakes the other. */
static void spread(void)
{
	struct rig g;

	if (rig_start(&g, "spread", 2, 2, NULL, false) < 0)
		return;
	rig_hold(&g);
	ok(rig_mine(&g) == 1, "spread: one receiver holds the first item");
	rig_push(&g, 1);
	rig_push(&g, 2);
	nap_ms(200);
	ok(rig_mine(&g) == 1, "spread: 2 items behind a busy receiver wake nobody (%llu taken)",
	    (unsigned long long)rig_mine(&g));
	rig_push(&g, 3);
	ok(taken_reaches(&g.taken, 3), "spread: a third wakes the other receiver, which takes all three");
	ok(atomic_load(&g.sum) == 6 && (mine(&g.r[0]) == 3 || mine(&g.r[1]) == 3),
	    "spread: 1+2+3 taken by the one that was asleep (%llu/%llu)",
	    (unsigned long long)mine(&g.r[0]), (unsigned long long)mine(&g.r[1]));
	atomic_store(&g.release, true);
	ok(taken_reaches(&g.taken, 4), "spread: the held item is let go");
	rig_stop(&g);
	xqueue_destroy(&g.q);
}

static size_t weigh_value(const void *item)
{
	uint64_t v;

	memcpy(&v, item, sizeof(v));
	return v == HOLD ? 1 : (size_t)v;
}

/* The same by weight: spread 100, items weighing their value. */
static void spread_weighted(void)
{
	struct rig g;

	if (rig_start(&g, "weighted", 2, 100, weigh_value, false) < 0)
		return;
	rig_hold(&g);
	rig_push(&g, 60);
	nap_ms(200);
	ok(rig_mine(&g) == 1, "weighted: 60 behind a busy receiver wakes nobody");
	rig_push(&g, 50);
	ok(taken_reaches(&g.taken, 2) && atomic_load(&g.sum) == 110,
	    "weighted: 110 wakes the other, which takes both");
	atomic_store(&g.release, true);
	ok(taken_reaches(&g.taken, 3), "weighted: the held item is let go");
	rig_stop(&g);
	ok(g.q.weight == 0, "weighted: nothing left weighs anything");
	xqueue_destroy(&g.q);
}

/* A trickle (each item taken before the next is pushed) goes to one
 * receiver: the last one to fall asleep is the one woken. */
static void trickle(void)
{
	struct rig g;
	int steady = 1;

	if (rig_start(&g, "trickle", 2, 2, NULL, true) < 0)
		return;
	for (uint64_t v = 1; v <= 50; v++) {
		rig_push(&g, v);
		steady &= taken_reaches(&g.taken, v);
		nap_ms(1);	/* it is back asleep */
	}
	ok(steady && atomic_load(&g.sum) == 50 * 51 / 2, "trickle: 50 items taken one by one");
	ok(mine(&g.r[0]) == 50 || mine(&g.r[1]) == 50, "trickle: all by one receiver (%llu/%llu)",
	    (unsigned long long)mine(&g.r[0]), (unsigned long long)mine(&g.r[1]));
	rig_stop(&g);
	xqueue_destroy(&g.q);
}

/* A producer and pop_next receivers with a spread: every item is taken
 * once, and none is left queued while every receiver sleeps. */
static void spread_stress(void)
{
	struct rig g;
	pthread_t p;
	uint64_t want = (uint64_t)STRESS_ITEMS * (STRESS_ITEMS - 1) / 2;

	if (rig_start(&g, "spread stress", RECEIVERS, 4, NULL, true) < 0)
		return;
	pthread_create(&p, NULL, producer, &g.q);
	pthread_join(p, NULL);
	ok(taken_reaches(&g.taken, STRESS_ITEMS), "spread stress: %llu of %d taken without a close",
	    (unsigned long long)atomic_load(&g.taken), STRESS_ITEMS);
	ok(atomic_load(&g.sum) == want, "spread stress: each exactly once");
	rig_stop(&g);
	ok(g.q.busy == 0 && g.q.sleepers == NULL, "spread stress: nobody busy or asleep after the close");
	xqueue_destroy(&g.q);
}

int main(void)
{
	struct xqueue q;
	int v, out[8];
	size_t n;

	ok(xqueue_init(&q, "t", sizeof(int), true) == 0, "init with an eventfd");
	ok(!readable(&q), "a new queue is not readable");
	ok(xqueue_drain(&q, out, 8) == 0, "draining an empty queue takes nothing");
	ok(!readable(&q), "... and leaves it unreadable");
	v = 1;
	xqueue_push(&q, &v);
	ok(readable(&q), "readable after a push");
	v = 2;
	xqueue_push(&q, &v);
	v = 3;
	xqueue_push(&q, &v);
	n = xqueue_drain(&q, out, 2);
	ok(n == 2 && out[0] == 1 && out[1] == 2, "drain with max 2 takes the first two in order");
	ok(readable(&q), "readable again: one is left behind");
	n = xqueue_drain(&q, out, 8);
	ok(n == 1 && out[0] == 3, "the one left behind comes next");
	ok(!readable(&q), "not readable when empty");
	ok(xqueue_drain(&q, out, 8) == 0 && !readable(&q), "a second drain changes nothing");
	for (v = 0; v < 1000; v++)
		xqueue_push(&q, &v);
	{
		int all = 1, got = 0, buf[64];

		while ((n = xqueue_drain(&q, buf, 64)) > 0)
			for (size_t i = 0; i < n; i++)
				all &= buf[i] == got++;
		ok(got == 1000 && all, "1000 items through a grown ring, in order");
	}
	ok(!readable(&q), "not readable after the ring was emptied");
	{
		int many[300], all = 1, got = 0, buf[64];
		uint64_t count;

		for (int i = 0; i < 300; i++)
			many[i] = i;
		ok(xqueue_push_n(&q, many, 300) == 300, "push_n takes 300 at once (the ring grows)");
		count = 0;
		if (read(xqueue_fd(&q), &count, sizeof(count)) != (ssize_t)sizeof(count))
			count = 0;
		ok(count == 1, "with one wake-up (eventfd counter %llu)", (unsigned long long)count);
		ok(write(xqueue_fd(&q), &count, sizeof(count)) == (ssize_t)sizeof(count), "(counter put back)");
		while ((n = xqueue_drain(&q, buf, 64)) > 0)
			for (size_t i = 0; i < n; i++)
				all &= buf[i] == got++;
		ok(got == 300 && all, "and they come out in order");
		ok(xqueue_push_n(&q, many, 0) == 0 && !readable(&q), "push_n of nothing wakes nobody");
	}
	xqueue_close(&q);
	ok(readable(&q), "close wakes the receiver");
	v = 9;
	ok(xqueue_push(&q, &v) < 0, "push after close is refused");
	ok(xqueue_push_n(&q, out, 3) == 0, "push_n after close takes nothing");
	ok(xqueue_drain(&q, out, 8) == 0 && !readable(&q), "drain after close clears the wake-up");
	xqueue_destroy(&q);
	stress();
	leftovers();
	spread();
	spread_weighted();
	trickle();
	spread_stress();
	return done_testing();
}
