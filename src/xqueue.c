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
	pthread_cond_init(&q->cond, NULL);
	return 0;
}

void xqueue_destroy(struct xqueue *q)
{
	if (q->ring == NULL)
		return;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cond);
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
	}
	/* The receiver drains everything it finds, so pushes made while it is
	 * already signalled ride on the same wake-up. */
	if (i > 1 && q->efd < 0)
		pthread_cond_broadcast(&q->cond);
	else if (i > 0 && q->efd < 0)
		pthread_cond_signal(&q->cond);
	else if (i > 0)
		xqueue_signal(q);
	pthread_mutex_unlock(&q->mu);
	return i;
}

int xqueue_push(struct xqueue *q, const void *item)
{
	return xqueue_push_n(q, item, 1) == 1 ? 0 : -1;
}

int xqueue_pop_wait(struct xqueue *q, void *out)
{
	pthread_mutex_lock(&q->mu);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->cond, &q->mu);
	if (q->count == 0) {
		pthread_mutex_unlock(&q->mu);
		return 0;
	}
	memcpy(out, q->ring + q->head * q->elem, q->elem);
	q->head = (q->head + 1) % q->cap;
	q->count--;
	pthread_mutex_unlock(&q->mu);
	return 1;
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
	pthread_cond_broadcast(&q->cond);
	xqueue_signal(q);
	pthread_mutex_unlock(&q->mu);
}
