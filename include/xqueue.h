/* xqueue.h - the one way threads hand things to each other: a queue plus a wake-up.
 *
 * Promises: a FIFO of fixed-size elements (copied in and out, so a crossing
 * needs no allocation per item) guarded by one mutex.  The receiver is woken
 * either by a condition variable (xqueue_pop_wait, for worker threads) or by
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
	pthread_cond_t cond;
	unsigned char *ring;
	size_t elem, cap, head, count;
	int efd;		/* -1 when the receiver uses the condition variable */
	bool signalled;		/* efd's counter is non-zero (it is read only under mu) */
	bool closed;
	const char *name;	/* for logs: what crosses here */
};

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
 * when the queue is closed and empty. */
int xqueue_pop_wait(struct xqueue *q, void *out);

/* Copy out up to max elements without blocking; clears the eventfd, and sets
 * it again when elements are left behind (max reached).  Returns the number
 * copied. */
size_t xqueue_drain(struct xqueue *q, void *out, size_t max);

int xqueue_fd(const struct xqueue *q);
void xqueue_close(struct xqueue *q);

#endif
