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

/* Two receivers asleep, spread 2: one takes HOLD and keeps it (busy); two
 * more items wake nobody (it will take them), a third wakes the other. */
static void spread(void)
{
	struct xqueue q;
	atomic_bool release = false;
	atomic_uint_fast64_t taken = 0, sum = 0;
	struct recv_state r[2];
	pthread_t t[2];
	uint64_t v = HOLD;

	if (!ok(xqueue_init(&q, "spread", sizeof(uint64_t), false) == 0, "spread: init"))
		return;
	xqueue_set_spread(&q, 2, NULL);
	for (int i = 0; i < 2; i++) {
		recv_init(&r[i], &q, &release, &taken, &sum);
		pthread_create(&t[i], NULL, receiver, &r[i]);
	}
	nap_ms(100);	/* both asleep in pop_next */
	xqueue_push(&q, &v);
	for (int i = 0; i < 5000 && mine(&r[0]) + mine(&r[1]) == 0; i++)
		nap_ms(1);
	ok(mine(&r[0]) + mine(&r[1]) == 1, "spread: one receiver holds the first item");
	v = 1;
	xqueue_push(&q, &v);
	v = 2;
	xqueue_push(&q, &v);
	nap_ms(200);
	ok(mine(&r[0]) + mine(&r[1]) == 1, "spread: 2 items behind a busy receiver wake nobody (%llu taken)",
	    (unsigned long long)(mine(&r[0]) + mine(&r[1])));
	v = 3;
	xqueue_push(&q, &v);
	ok(taken_reaches(&taken, 3), "spread: a third wakes the other receiver, which takes all three");
	ok(atomic_load(&sum) == 6 && (mine(&r[0]) == 3 || mine(&r[1]) == 3),
	    "spread: 1+2+3 taken by the one that was asleep (%llu/%llu)",
	    (unsigned long long)mine(&r[0]), (unsigned long long)mine(&r[1]));
	atomic_store(&release, true);
	ok(taken_reaches(&taken, 4), "spread: the held item is let go");
	xqueue_close(&q);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		xqueue_receiver_destroy(&r[i].rcv);
	}
	xqueue_destroy(&q);
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
	struct xqueue q;
	atomic_bool release = false;
	atomic_uint_fast64_t taken = 0, sum = 0;
	struct recv_state r[2];
	pthread_t t[2];
	uint64_t v = HOLD;

	if (!ok(xqueue_init(&q, "weighted", sizeof(uint64_t), false) == 0, "weighted: init"))
		return;
	xqueue_set_spread(&q, 100, weigh_value);
	for (int i = 0; i < 2; i++) {
		recv_init(&r[i], &q, &release, &taken, &sum);
		pthread_create(&t[i], NULL, receiver, &r[i]);
	}
	nap_ms(100);
	xqueue_push(&q, &v);
	for (int i = 0; i < 5000 && mine(&r[0]) + mine(&r[1]) == 0; i++)
		nap_ms(1);
	v = 60;
	xqueue_push(&q, &v);
	nap_ms(200);
	ok(mine(&r[0]) + mine(&r[1]) == 1, "weighted: 60 behind a busy receiver wakes nobody");
	v = 50;
	xqueue_push(&q, &v);
	ok(taken_reaches(&taken, 2) && atomic_load(&sum) == 110, "weighted: 110 wakes the other, which takes both");
	atomic_store(&release, true);
	ok(taken_reaches(&taken, 3), "weighted: the held item is let go");
	xqueue_close(&q);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		xqueue_receiver_destroy(&r[i].rcv);
	}
	ok(q.weight == 0, "weighted: nothing left weighs anything");
	xqueue_destroy(&q);
}

/* A trickle (each item taken before the next is pushed) goes to one
 * receiver: the last one to fall asleep is the one woken. */
static void trickle(void)
{
	struct xqueue q;
	atomic_bool release = true;
	atomic_uint_fast64_t taken = 0, sum = 0;
	struct recv_state r[2];
	pthread_t t[2];
	int steady = 1;

	if (!ok(xqueue_init(&q, "trickle", sizeof(uint64_t), false) == 0, "trickle: init"))
		return;
	xqueue_set_spread(&q, 2, NULL);
	for (int i = 0; i < 2; i++) {
		recv_init(&r[i], &q, &release, &taken, &sum);
		pthread_create(&t[i], NULL, receiver, &r[i]);
	}
	nap_ms(100);
	for (uint64_t v = 1; v <= 50; v++) {
		xqueue_push(&q, &v);
		steady &= taken_reaches(&taken, v);
		nap_ms(1);	/* it is back asleep */
	}
	ok(steady && atomic_load(&sum) == 50 * 51 / 2, "trickle: 50 items taken one by one");
	ok(mine(&r[0]) == 50 || mine(&r[1]) == 50, "trickle: all by one receiver (%llu/%llu)",
	    (unsigned long long)mine(&r[0]), (unsigned long long)mine(&r[1]));
	xqueue_close(&q);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		xqueue_receiver_destroy(&r[i].rcv);
	}
	xqueue_destroy(&q);
}

/* Producers and pop_next receivers with a spread: every item is taken
 * once, and none is left queued while every receiver sleeps. */
static void spread_stress(void)
{
	struct xqueue q;
	atomic_bool release = true;
	atomic_uint_fast64_t taken = 0, sum = 0;
	struct recv_state r[RECEIVERS];
	pthread_t t[RECEIVERS], p;
	uint64_t want = (uint64_t)STRESS_ITEMS * (STRESS_ITEMS - 1) / 2;

	if (!ok(xqueue_init(&q, "spread", sizeof(uint64_t), false) == 0, "spread stress: init"))
		return;
	xqueue_set_spread(&q, 4, NULL);
	for (int i = 0; i < RECEIVERS; i++) {
		recv_init(&r[i], &q, &release, &taken, &sum);
		pthread_create(&t[i], NULL, receiver, &r[i]);
	}
	pthread_create(&p, NULL, producer, &q);
	pthread_join(p, NULL);
	ok(taken_reaches(&taken, STRESS_ITEMS), "spread stress: %llu of %d taken without a close",
	    (unsigned long long)atomic_load(&taken), STRESS_ITEMS);
	ok(atomic_load(&sum) == want, "spread stress: each exactly once");
	xqueue_close(&q);
	for (int i = 0; i < RECEIVERS; i++) {
		pthread_join(t[i], NULL);
		xqueue_receiver_destroy(&r[i].rcv);
	}
	ok(q.busy == 0 && q.sleepers == NULL, "spread stress: nobody busy or asleep after the close");
	xqueue_destroy(&q);
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
	spread();
	spread_weighted();
	trickle();
	spread_stress();
	return done_testing();
}
