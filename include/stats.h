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

/* HTTP statuses of POST /push, as metrics labels. */
enum push_status_idx { PUSH_202 = 0, PUSH_400, PUSH_401, PUSH_403, PUSH_405, PUSH_413, PUSH_429, PUSH_503,
	PUSH_OTHER, PUSH_STATUS_COUNT };

/* Outcomes of a notifyd.v2 resume (the first four match enum hist_outcome). */
enum ws_recovery { WS_RECOVERED = 0, WS_RECOVERY_TOO_OLD, WS_RECOVERY_UNKNOWN_EPOCH,
	WS_RECOVERY_MALFORMED, WS_RECOVERY_UNAVAILABLE, WS_RECOVERY_COUNT };

enum limit_kind { LIMIT_CONNECTIONS = 0, LIMIT_PER_USER, LIMIT_IP_RATE, LIMIT_HANDSHAKE,
	LIMIT_PER_IP, LIMIT_HTTP_CONNECTIONS, LIMIT_KIND_COUNT };

/* Upper bounds (seconds) of the delivery latency histogram buckets; +Inf is
 * implicit. */
#define STATS_LATENCY_BUCKETS 14

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
	atomic_uint_fast64_t ws_opened;		/* every client connection, SSE included */
	atomic_uint_fast64_t sse_opened;
	atomic_uint_fast64_t ws_closed;
	atomic_uint_fast64_t ws_rejected;	/* handshakes answered with an error */
	atomic_uint_fast64_t bytes_out;
	atomic_uint_fast64_t deflate_in;	/* payload bytes compressed (once per message) */
	atomic_uint_fast64_t deflate_out;	/* what they became */
	atomic_uint_fast64_t broadcast_batches;	/* runs of broadcasts written as one */
	atomic_uint_fast64_t push_status[PUSH_STATUS_COUNT];
	atomic_uint_fast64_t push_messages;	/* notifications confirmed by the broker */
	atomic_uint_fast64_t limit_hits[LIMIT_KIND_COUNT];
	atomic_uint_fast64_t http_connections;	/* gauge: connections not (yet) WebSocket */
	atomic_uint_fast64_t http_refused;	/* requests answered by the gate, body unread */
	atomic_uint_fast64_t pongs_coalesced;	/* pings answered by a pong already pending */
	atomic_uint_fast64_t recoveries[WS_RECOVERY_COUNT]; /* notifyd.v2 resumes, by outcome */
	atomic_uint_fast64_t control_dropped;	/* control messages without an id not published */
	atomic_uint_fast64_t events_published;	/* events handed to the control link (online, offline, undelivered) */
	atomic_uint_fast64_t disconnected;	/* connections closed by disconnect or revoke */
	/* broker delivery -> frame written, per frame */
	atomic_uint_fast64_t latency_bucket[STATS_LATENCY_BUCKETS + 1];
	atomic_uint_fast64_t latency_sum_us;
	atomic_uint_fast64_t latency_count;
};


extern const double stats_latency_bounds[STATS_LATENCY_BUCKETS];

enum push_status_idx stats_push_index(int status);
const char *stats_push_label(enum push_status_idx i);
const char *stats_limit_name(enum limit_kind k);
const char *stats_recovery_name(enum ws_recovery r);

/* Record one frame's time from broker delivery to socket, in ns. */
void stats_observe_latency(struct stats *s, uint64_t ns);

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
