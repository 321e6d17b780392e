/* xqueue.h - the one way threads hand things to each other: a queue plus a wake-up.
 *
 * Promises: a FIFO of fixed-size elements (copied in and out, so a crossing
 * needs no allocation per item) guarded by one mutex.  The receiver is woken
 * either by a condition variable of its own (xqueue_pop_next, for worker
 * threads: one more is woken only for a backlog, the warmest first) or by
 * an eventfd that is readable exactly while the queue holds something the
 * receiver has not been told about (xqueue_fd, for an event loop or a
 * poll(2) loop); the receiver then takes everything with xqueue_drain,
 * which costs no system call when nothing was pushed.  Pushing never blocks on a full
 * queue: the ring grows (callers bound the depth by other means, e.g. the
 * AMQP prefetch).  xqueue_close() wakes every waiter for shutdown.
 */
#ifndef NOTIFYD_XQUEUE_H
#define NOTIFYD_XQUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct xqueue {
	pthread_mutex_t mu;
	unsigned char *ring;
	size_t elem, cap, head, count;
	int efd;		/* -1 when receivers wait on their own condition variables */
	bool signalled;		/* efd's counter is non-zero (it is read only under mu) */
	struct xqueue_receiver *sleepers; /* pop_next receivers asleep, last in first */
	unsigned busy;		/* pop_next receivers holding an item */
	size_t spread;		/* work per busy receiver before another is woken */
	size_t weight;		/* work queued: weigh() of each item, or 1 each */
	size_t (*weigh)(const void *item);
	bool closed;
	const char *name;	/* for logs: what crosses here */
};

/* A thread that takes items again and again (a worker): its own wake-up,
 * so that the queue can choose whom to wake. */
struct xqueue_receiver {
	pthread_cond_t cond;
	struct xqueue_receiver *next;	/* in q->sleepers */
	bool asleep;			/* in q->sleepers, not woken yet */
	bool busy;			/* holds an item it took */
};

void xqueue_receiver_init(struct xqueue_receiver *r);
void xqueue_receiver_destroy(struct xqueue_receiver *r);

/* with_fd: create the eventfd.  Returns 0 or -1 (errno set). */
int xqueue_init(struct xqueue *q, const char *name, size_t elem_size, bool with_fd);
void xqueue_destroy(struct xqueue *q);

/* Copy one element in; wakes the receiver.  Returns 0, -1 if out of memory
 * or closed. */
int xqueue_push(struct xqueue *q, const void *item);

/* Copy n elements in, in order, under one lock and with one wake-up.
 * Returns the number copied: fewer than n only when out of memory or
 * closed (the rest were not taken). */
size_t xqueue_push_n(struct xqueue *q, const void *items, size_t n);

/* Block until an element is available and copy it to out: returns 1, or 0
 * when the queue is closed and empty.  For a receiver that takes once (what
 * is left after the close, say); one that comes back uses pop_next. */
int xqueue_pop_wait(struct xqueue *q, void *out);

/* The same for receiver r, which comes back for more.  While a receiver
 * is busy it will take what is queued when it comes back, so a push wakes
 * another only when more than q->spread work per busy receiver waits; and
 * the one woken is the last to fall asleep.  A trickle, or a burst that one
 * thread clears in a moment, is then taken by one thread, in order, warm;
 * a backlog still spreads over all of them. */
int xqueue_pop_next(struct xqueue *q, void *out, struct xqueue_receiver *r);

/* Work per busy pop_next receiver before a push wakes another (default 0:
 * any item queued wakes one), measured by weigh (NULL: 1 per item).  Set
 * before anything is pushed. */
static inline void xqueue_set_spread(struct xqueue *q, size_t spread, size_t (*weigh)(const void *item))
{
	q->spread = spread;
	q->weigh = weigh;
}

/* Copy out up to max elements without blocking; clears the eventfd, and sets
 * it again when elements are left behind (max reached).  Returns the number
 * copied. */
size_t xqueue_drain(struct xqueue *q, void *out, size_t max);

int xqueue_fd(const struct xqueue *q);
void xqueue_close(struct xqueue *q);

#endif
