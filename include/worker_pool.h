/* worker_pool.h - threads that turn broker deliveries into ready frames.
 *
 * Promises: each delivery taken from jobq is checked (size, UTF-8, a JSON
 * object, no content-encoding, a target from the routing key or the body)
 * and either becomes a msg with its text frame built once, pushed to readyq,
 * or is rejected: its reject goes straight to ackq and an empty ready item
 * keeps the sequence without holes.  Every job yields exactly one ready item.
 * The envelope is destroyed here.  Workers share nothing but the queues and
 * the atomic stats.  A steady flow runs on one worker; another is woken
 * only when work queues up behind the busy ones (xqueue_pop_next).
 */
#ifndef NOTIFYD_WORKER_POOL_H
#define NOTIFYD_WORKER_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "stats.h"

struct xqueue;
struct worker_pool;
struct job;
struct msg;

struct worker_pool *worker_pool_start(unsigned nthreads, struct xqueue *jobq,
    struct xqueue *readyq, struct xqueue *ackq, struct stats *stats, uint64_t max_message);

/* Returns once every thread has finished (the caller closed jobq first). */
void worker_pool_join(struct worker_pool *wp);

/* The check and build a worker does, exposed for tests: returns the msg (refs
 * 1) or NULL with *reason set. */
struct msg *worker_prepare(const struct job *j, uint64_t max_message, enum reject_reason *reason);

#endif
