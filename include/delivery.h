/* delivery.h - what crosses between threads on the way from broker to socket.
 *
 *   consumer thread --job--> workers --ready--> event loop --ack_item--> consumer
 *                                    \--ack_item (reject)-----------------^
 *
 * A job owns its AMQP envelope until a worker destroys it.  A msg is built
 * once per notification (frame header and payload in one block) and shared
 * by every connection it is written to; its reference count is the number
 * of writers still holding it plus one for the dispatcher while it fans out.
 * When the count reaches zero every target writer has handed the frame to
 * the kernel (or its connection is gone) and the delivery is acked.
 * Consecutive broadcasts of one dispatcher pass travel as one batch msg:
 * their frames back to back in one block, written to each connection as
 * one piece; the batch holds the only reference to each part, and acks
 * them all when its own count reaches zero.
 * The life of a msg ends in delivery.c: msg_release() is the one way a
 * reference is given back (a writer's, through libevent's evbuffer
 * cleanup, or the dispatcher's own), and the last one settles the msg into
 * its sink: an ack on the consumer's queue, or nothing at all when a frame
 * was abandoned unwritten at shutdown (the broker then keeps it).
 */
#ifndef NOTIFYD_DELIVERY_H
#define NOTIFYD_DELIVERY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/amqp.h>
#else
#include <amqp.h>
#endif

#include "target.h"

struct hist_entry;
struct xqueue;
struct stats;
struct ws_deflater;

/* Where settled msgs go: one per event loop, owned by its dispatcher. */
struct msg_sink {
	struct xqueue *ackq;	/* to the consumer thread */
	struct stats *stats;
	struct ws_deflater *deflater;	/* for the _Z formats (NULL: none) */
	uint64_t deflate_min;		/* smaller payloads are not compressed */
	uint64_t in_flight;	/* msgs taken from the workers, not yet settled */
	bool abandoning;	/* shutdown gave up on connections: frames
				 * released unwritten are not acked */
};

/* Where a delivery stands in a stream source (amqp_source = stream). */
enum stream_phase {
	PHASE_QUEUE = 0,	/* not from a stream: no id */
	PHASE_WARM,		/* published before this instance started: history only */
	PHASE_MARK,		/* this instance's start marker: live from here */
	PHASE_LIVE		/* delivered to the connections and kept in history */
};

struct job {
	uint64_t seq;		/* order of arrival across connections, from 1 */
	uint64_t offset;	/* stream offset (phase != PHASE_QUEUE) */
	uint8_t phase;		/* enum stream_phase */
	bool anchor;		/* a start marker: a position, nobody's message */
	bool gap;		/* offsets before this one were lost to retention */
	uint64_t tag;		/* delivery tag on the channel of generation gen */
	uint32_t gen;		/* broker connection generation */
	bool redelivered;
	uint64_t t_recv_ns;	/* CLOCK_MONOTONIC when the consumer got it */
	amqp_envelope_t env;
};

/* The shapes of a notification on the wire: the raw text frame (frame[]),
 * the notifyd.v2 envelope frame, a text/event-stream event; the two frames
 * compressed once (RSV1, RFC 7692) for every connection that agreed to it,
 * or left as they are when that would not make them smaller. */
enum msg_format { MSG_RAW = 0, MSG_V2, MSG_SSE,
	MSG_RAW_Z, MSG_V2_Z,	/* the same frames compressed (permessage-deflate) */
	MSG_FORMATS };

struct msg {
	atomic_uint refs;
	uint32_t gen;
	uint64_t tag;
	uint64_t t_recv_ns;
	uint32_t targets;	/* connections it was queued to */
	bool abandoned;		/* a frame was dropped unwritten at shutdown: no ack */
	struct msg_sink *owner;
	struct msg *parts;	/* batch: its first part; a part: the next one */
	uint32_t nparts;	/* batch: how many parts; 0 for a single msg */
	uint8_t phase;		/* enum stream_phase of its job */
	struct target target;
	struct hist_entry *entry; /* stream: its id and notifyd.v2 frame, shared with history */
	char *rk;		/* a unicast's routing key when not "user.<id>" (NULL: that) */
	/* The other formats, built once, when a connection first needs one. */
	struct {
		const uint8_t *p;	/* NULL until built; may point into entry */
		uint8_t *own;		/* what we allocated for it */
		size_t len;
	} alt[MSG_FORMATS - 1];
	size_t frame_len;
	uint8_t frame[];	/* unmasked text frame: header then the body */
};

/* A fresh msg for delivery tag of generation gen, one reference held (the
 * dispatcher's), no parts; the caller fills frame[0..frame_len). */
static inline void msg_init(struct msg *m, uint32_t gen, uint64_t tag, uint64_t t_recv_ns,
    const struct target *t, size_t frame_len)
{
	atomic_init(&m->refs, 1);
	m->gen = gen;
	m->tag = tag;
	m->t_recv_ns = t_recv_ns;
	m->targets = 0;
	m->abandoned = false;
	m->owner = NULL;
	m->parts = NULL;
	m->nparts = 0;
	m->phase = PHASE_QUEUE;
	m->target = *t;
	m->entry = NULL;
	m->rk = NULL;
	for (int i = 0; i < MSG_FORMATS - 1; i++) {
		m->alt[i].p = NULL;
		m->alt[i].own = NULL;
		m->alt[i].len = 0;
	}
	m->frame_len = frame_len;
}

/* History only, never written nor counted undelivered: what was published
 * before this start, and the start markers (anchors: nobody's message). */
static inline bool msg_quiet(const struct msg *m)
{
	return m->phase == PHASE_WARM || m->phase == PHASE_MARK ||
	    (m->phase != PHASE_QUEUE && m->target.kind == TARGET_NONE);
}

/* The body of a single msg as published: its frame after the header. */
const uint8_t *msg_body(const struct msg *m, size_t *len);

/* Free a msg (and its parts) that will never be written nor settled. */
void msg_free(struct msg *m);

/* The bytes of m (every part of a batch, back to back) in format f, built
 * the first time a connection needs them (event loop).  NULL when out of
 * memory. */
const uint8_t *msg_bytes(struct msg *m, enum msg_format f, size_t *len);

/* evbuffer_ref_cleanup_cb for a msg referenced into an output buffer
 * (data set: that writer handed the frame to the kernel, or its connection
 * went away); called with data NULL by the dispatcher for its own
 * reference.  The last release settles the msg, or every part of a batch. */
void msg_release(const void *data, size_t len, void *arg);

/* A writer handed m's frame to the kernel at now_ns: count its latency
 * (every part of a batch). */
void msg_observe_written(const struct msg *m, uint64_t now_ns);

struct ready {
	uint64_t seq;
	struct msg *msg;	/* NULL: the delivery was rejected, only the seq moves on */
	uint64_t offset;	/* the job's stream position, as in struct job */
	uint8_t phase;
	bool gap;
};

struct ack_item {
	uint64_t tag;
	uint32_t gen;
	uint8_t kind;		/* enum ack_kind */
};

#endif
