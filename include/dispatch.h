/* dispatch.h - the event loop's side of delivery: order, fan-out, acks.
 *
 * Promises: takes prepared notifications from the workers (by queue and
 * eventfd), puts them back in the order the broker delivered them (workers
 * finish out of order), and writes each to every open connection of its
 * target, sharing one frame (consecutive broadcasts of one wake-up share one
 * block, written as one piece).  When the last writer releases a frame (or it
 * had no target connection) the delivery's ack goes to the consumer thread's
 * queue.  Also owns the sweep timer that drives ws_conn_sweep().
 * Event-loop thread only, except dispatch_msg_release's caller (libevent,
 * on the loop thread).
 */
#ifndef NOTIFYD_DISPATCH_H
#define NOTIFYD_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

struct gateway;
struct msg;
struct xqueue;

struct dispatch *dispatch_new(struct gateway *gw, struct xqueue *readyq);
void dispatch_free(struct dispatch *d);

/* A writer handed m's frame to the kernel at now_ns: count its latency
 * (every part of a batch). */
void dispatch_observe_written(const struct msg *m, uint64_t now_ns);

/* evbuffer_ref_cleanup_cb for a msg referenced into an output buffer. */
void dispatch_msg_release(const void *data, size_t len, void *arg);

/* Messages taken from workers but not yet acked (for drain decisions). */
uint64_t dispatch_in_flight(const struct dispatch *d);

#endif
