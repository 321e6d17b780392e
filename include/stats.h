/* stats.h - counters that several threads bump and /health (and later
 * /metrics) read.  Relaxed atomics: each counter is exact on its own; a
 * reader may see two counters from slightly different instants.
 */
#ifndef NOTIFYD_STATS_H
#define NOTIFYD_STATS_H

#include <stdatomic.h>
#include <stdint.h>

enum reject_reason {
	REJECT_NOT_JSON = 0,
	REJECT_NOT_OBJECT,
	REJECT_INVALID_UTF8,
	REJECT_TOO_LARGE,
	REJECT_NO_TARGET,
	REJECT_BAD_TARGET,
	REJECT_CONTENT_ENCODING,
	REJECT_REASON_COUNT
};

struct stats {
	atomic_uint_fast64_t consumed;		/* deliveries taken from the broker */
	atomic_uint_fast64_t redelivered;	/* of which had the redelivered flag */
	atomic_uint_fast64_t delivered;		/* frames handed to the kernel */
	atomic_uint_fast64_t undelivered;	/* messages with no target connection */
	atomic_uint_fast64_t rejected[REJECT_REASON_COUNT];
	atomic_uint_fast64_t acked;		/* deliveries acked (not frames) */
	atomic_uint_fast64_t ack_stale;		/* acks dropped: their channel is gone */
	atomic_uint_fast64_t broker_reconnects;
	atomic_uint_fast64_t slow_disconnects;	/* closed with 1013 */
	atomic_uint_fast64_t ws_opened;
	atomic_uint_fast64_t ws_closed;
	atomic_uint_fast64_t ws_rejected;	/* handshakes answered with an error */
	atomic_uint_fast64_t bytes_out;
};

const char *stats_reject_name(enum reject_reason r);

static inline void stats_add(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t stats_get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
