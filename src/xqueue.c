#include "autoconfig.h"

#include "xqueue.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int xqueue_init(struct xqueue *q, const char *name, size_t elem_size, bool with_fd)
{
	memset(q, 0, sizeof(*q));
	q->name = name;
	q->elem = elem_size;
	q->cap = 64;
	q->efd = -1;
	q->ring = malloc(q->cap * elem_size);
	if (q->ring == NULL)
		return -1;
	if (with_fd) {
		q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->efd < 0) {
			free(q->ring);
			q->ring = NULL;
			return -1;
		}
	}
	pthread_mutex_init(&q->mu, NULL);
	return 0;
}

void xqueue_destroy(struct xqueue *q)
{
	if (q->ring == NULL)
		return;
	pthread_mutex_destroy(&q->mu);
	if (q->efd >= 0)
		close(q->efd);
	free(q->ring);
	q->ring = NULL;
}

static int xqueue_grow(struct xqueue *q)
{
	size_t ncap = q->cap * 2;
	unsigned char *n = malloc(ncap * q->elem);

	if (n == NULL)
		return -1;
	/* Unroll the ring so the new one starts at index 0. */
	for (size_t i = 0; i < q->count; i++)
		memcpy(n + i * q->elem, q->ring + ((q->head + i) % q->cap) * q->elem, q->elem);
	free(q->ring);
	q->ring = n;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

/* Under mu, so that efd's counter and signalled always agree: a receiver
 * that sees nothing signalled need not read the eventfd. */
static void xqueue_signal(struct xqueue *q)
{
	uint64_t one = 1;

	if (q->efd < 0 || q->signalled)
		return;
	while (write(q->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	q->signalled = true;
}

void xqueue_receiver_init(struct xqueue_receiver *r)
{
	pthread_cond_init(&r->cond, NULL);
	r->next = NULL;
	r->asleep = false;
	r->busy = false;
}

void xqueue_receiver_destroy(struct xqueue_receiver *r)
{
	pthread_cond_destroy(&r->cond);
}

/* Under mu: wake the receiver that fell asleep last (its cache is warm).
 * It counts as busy from now unless the queue is closing: a push made
 * before it runs must not wake another one. */
static void xqueue_rouse(struct xqueue *q)
{
	struct xqueue_receiver *r = q->sleepers;

	q->sleepers = r->next;
	r->asleep = false;
	if (!q->closed) {
		r->busy = true;
		q->busy++;
	}
	pthread_cond_signal(&r->cond);
}

/* Under mu, after items were queued: wake receivers for them.  Busy
 * receivers come back for what is queued, so nobody else is woken for a
 * queue they will take soon enough. */
static void xqueue_wake(struct xqueue *q)
{
	size_t woken = 0;

	while (q->sleepers != NULL &&
	    (q->spread > 0 ? q->weight > q->spread * q->busy : q->count > woken)) {
		xqueue_rouse(q);
		woken++;
	}
}

static size_t xqueue_weigh(const struct xqueue *q, const void *item)
{
	return q->weigh != NULL ? q->weigh(item) : 1;
}

size_t xqueue_push_n(struct xqueue *q, const void *items, size_t n)
{
	size_t i;

	pthread_mutex_lock(&q->mu);
	for (i = 0; i < n && !q->closed; i++) {
		if (q->count == q->cap && xqueue_grow(q) < 0)
			break;
		memcpy(q->ring + ((q->head + q->count) % q->cap) * q->elem,
		    (const unsigned char *)items + i * q->elem, q->elem);
		q->count++;
		q->weight += xqueue_weigh(q, (const unsigned char *)items + i * q->elem);
	}
	/* The receiver drains everything it finds, so pushes made while it is
	 * already signalled ride on the same wake-up. */
	if (i > 0 && q->efd >= 0)
		xqueue_signal(q);
	else if (i > 0)
		xqueue_wake(q);
	pthread_mutex_unlock(&q->mu);
	return i;
}

int xqueue_push(struct xqueue *q, const void *item)
{
	return xqueue_push_n(q, item, 1) == 1 ? 0 : -1;
}

/* Under mu: r holds nothing (any more). */
static void xqueue_idle(struct xqueue *q, struct xqueue_receiver *r)
{
	if (r->busy) {
		q->busy--;
		r->busy = false;
	}
}

/* Under mu: wait for an item (or the close) and take it; 1 or 0.  r is
 * busy when it returns 1. */
static int xqueue_next_locked(struct xqueue *q, void *out, struct xqueue_receiver *r)
{
	xqueue_idle(q, r);
	while (q->count == 0 && !q->closed) {
		/* Woken for an item another receiver took meanwhile: idle again. */
		xqueue_idle(q, r);
		r->asleep = true;
		r->next = q->sleepers;
		q->sleepers = r;
		/* Woken means taken off q->sleepers (by a push or the close). */
		while (r->asleep)
			pthread_cond_wait(&r->cond, &q->mu);
	}
	if (q->count == 0) {
		xqueue_idle(q, r);
		return 0;
	}
	memcpy(out, q->ring + q->head * q->elem, q->elem);
	q->head = (q->head + 1) % q->cap;
	q->count--;
	q->weight -= xqueue_weigh(q, out);
	if (!r->busy) {
		q->busy++;
		r->busy = true;
	}
	/* One of many: what is left beyond the busy ones' share needs
	 * someone else. */
	xqueue_wake(q);
	return 1;
}

int xqueue_pop_next(struct xqueue *q, void *out, struct xqueue_receiver *r)
{
	int rc;

	pthread_mutex_lock(&q->mu);
	rc = xqueue_next_locked(q, out, r);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int xqueue_pop_wait(struct xqueue *q, void *out)
{
	struct xqueue_receiver r;
	int rc;

	xqueue_receiver_init(&r);
	pthread_mutex_lock(&q->mu);
	rc = xqueue_next_locked(q, out, &r);
	/* Not coming back: what it leaves queued is someone else's. */
	xqueue_idle(q, &r);
	xqueue_wake(q);
	pthread_mutex_unlock(&q->mu);
	xqueue_receiver_destroy(&r);
	return rc;
}

size_t xqueue_drain(struct xqueue *q, void *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	if (q->signalled) {
		uint64_t v;

		while (read(q->efd, &v, sizeof(v)) < 0 && errno == EINTR)
			;
		q->signalled = false;
	}
	while (n < max && q->count > 0) {
		memcpy((unsigned char *)out + n * q->elem, q->ring + q->head * q->elem, q->elem);
		q->head = (q->head + 1) % q->cap;
		q->count--;
		q->weight -= xqueue_weigh(q, (unsigned char *)out + n * q->elem);
		n++;
	}
	/* Leftovers (max reached) must not be stranded without a wake-up. */
	if (q->count > 0)
		xqueue_signal(q);
	pthread_mutex_unlock(&q->mu);
	return n;
}

int xqueue_fd(const struct xqueue *q)
{
	return q->efd;
}

void xqueue_close(struct xqueue *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = true;
	while (q->sleepers != NULL)
		xqueue_rouse(q);
	xqueue_signal(q);
	pthread_mutex_unlock(&q->mu);
}
