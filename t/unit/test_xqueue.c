/* Unit tests for xqueue: FIFO order, growth, and the eventfd that is
 * readable exactly while something was pushed that the receiver has not
 * drained (a stale wake-up would spin a poll loop; a missing one strands
 * items). */
#include "autoconfig.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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
	return done_testing();
}
