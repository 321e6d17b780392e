/* dispatch.h - the event loop's side of delivery: order, fan-out, acks.
 *
 * Promises: takes prepared notifications from the workers (by queue and
 * eventfd), puts them back in the order the broker delivered them (workers
 * finish out of order), and writes each to every open connection of its
 * target, sharing one frame (consecutive broadcasts of one wake-up share one
 * block, written as one piece).  When the last writer releases a frame (or it
 * had no target connection) the delivery's ack goes to the consumer thread's
 * queue (msg_release(), delivery.c).  Also owns the sweep timer that drives
 * ws_conn_sweep().  Event-loop thread only.
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

/* Shutdown gave up on the connections: frames they release from now on
 * were not written, and their deliveries are not acked. */
void dispatch_abandon(struct dispatch *d);

/* Messages taken from workers but not yet acked (for drain decisions). */
uint64_t dispatch_in_flight(const struct dispatch *d);

#endif
