#include "autoconfig.h"

#include "worker_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ack_window.h"
#include "delivery.h"
#include "history.h"
#include "log.h"
#include "msg_id.h"
#include "target.h"
#include "ws_frame.h"
#include "xqueue.h"

/* A job's work in bytes: its body (parsed, copied) plus a fixed part
 * (routing, frame, hand-off) worth a small message or two. */
#define JOB_BASE_WEIGHT 512
/* Work waiting per busy worker before another wakes: some 60 small jobs
 * or one large body, a few hundred microseconds of work (bench/README). */
#define WORKER_SPREAD (32 * 1024)

struct worker_pool {
	struct xqueue *jobq, *readyq, *ackq;
	struct stats *stats;
	uint64_t max_message;
	unsigned n;
	struct worker *w;
};

/* One thread of the pool: its own wake-up, so that a trickle of jobs is
 * taken by the same warm thread (xqueue_pop_next). */
struct worker {
	struct worker_pool *wp;
	struct xqueue_receiver rcv;
	pthread_t thread;
};

static int content_encoded(const amqp_basic_properties_t *p)
{
	if (!(p->_flags & AMQP_BASIC_CONTENT_ENCODING_FLAG) || p->content_encoding.len == 0)
		return 0;
	/* "identity" is no encoding at all. */
	return !(p->content_encoding.len == 8 &&
	    strncasecmp(p->content_encoding.bytes, "identity", 8) == 0);
}

/* The msg of a delivery that passed the checks (or a marker), with its
 * stream entry: id, notifyd.v2 frame, history. */
static struct msg *worker_msg(const struct job *j, const struct target *t, enum hist_kind kind,
    enum reject_reason *reason)
{
	const amqp_bytes_t body = j->env.message.body;
	const amqp_bytes_t rk = j->env.routing_key;
	uint8_t hdr[WS_SERVER_HEADER_MAX];
	size_t h = ws_frame_header_encode(hdr, WS_OP_TEXT, body.len);
	struct msg *m = malloc(sizeof(*m) + h + body.len);

	if (m == NULL) {
		/* Not the message's fault: leave it to redelivery. */
		*reason = REJECT_REASON_COUNT;
		return NULL;
	}
	msg_init(m, j->gen, j->tag, j->t_recv_ns, t, h + body.len);
	memcpy(m->frame, hdr, h);
	memcpy(m->frame + h, body.bytes, body.len);
	m->phase = j->phase;
	if (j->phase != PHASE_QUEUE) {
		m->entry = hist_entry_new(j->offset, msg_id_check(rk.bytes, rk.len, body.bytes, body.len),
		    kind, body.bytes, body.len);
		if (m->entry == NULL) {
			free(m);
			*reason = REJECT_REASON_COUNT;
			return NULL;
		}
	}
	return m;
}

struct msg *worker_prepare(const struct job *j, uint64_t max_message, enum reject_reason *reason)
{
	const amqp_bytes_t body = j->env.message.body;
	const amqp_bytes_t rk = j->env.routing_key;
	const char *text = body.bytes;
	struct target t;
	struct msg *m;
	cJSON *root;
	bool rk_decided;
	int rc;

	if (j->anchor) {
		/* A start marker: a position in the stream for ids, nobody's
		 * message; its body is not looked at. */
		t.kind = TARGET_NONE;
		t.id_len = 0;
		t.id[0] = '\0';
		return worker_msg(j, &t, HIST_ANCHOR, reason);
	}
	if (body.len > max_message) {
		*reason = REJECT_TOO_LARGE;
		return NULL;
	}
	if (content_encoded(&j->env.message.properties)) {
		*reason = REJECT_CONTENT_ENCODING;
		return NULL;
	}
	rc = target_from_routing_key(rk.bytes, rk.len, &t);
	if (rc != TARGET_OK) {
		*reason = REJECT_BAD_TARGET;
		return NULL;
	}
	root = target_parse_json(text, body.len, &rc);
	if (root == NULL) {
		*reason = rc == TARGET_NOT_UTF8 ? REJECT_INVALID_UTF8 : REJECT_NOT_JSON;
		return NULL;
	}
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		*reason = REJECT_NOT_OBJECT;
		return NULL;
	}
	rk_decided = t.kind != TARGET_NONE;
	if (t.kind == TARGET_NONE) {
		if (target_has_escaped_nul(text, body.len)) {
			cJSON_Delete(root);
			*reason = REJECT_BAD_TARGET;
			return NULL;
		}
		rc = target_from_body(root, &t);
		if (rc != TARGET_OK) {
			cJSON_Delete(root);
			*reason = rc == TARGET_MISSING ? REJECT_NO_TARGET : REJECT_BAD_TARGET;
			return NULL;
		}
	}
	cJSON_Delete(root);
	m = worker_msg(j, &t, t.kind == TARGET_USER ? HIST_USER : HIST_BROADCAST, reason);
	/* The body named the user: keep the routing key for an undelivered
	 * event (one from the key is "user.<id>" again). */
	if (m != NULL && t.kind == TARGET_USER && !rk_decided &&
	    (m->rk = strndup(rk.len > 0 ? (const char *)rk.bytes : "", rk.len)) == NULL) {
		msg_free(m);
		*reason = REJECT_REASON_COUNT;
		return NULL;
	}
	return m;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_pool *wp = w->wp;
	struct job j;

	while (xqueue_pop_next(wp->jobq, &j, &w->rcv)) {
		enum reject_reason why = REJECT_REASON_COUNT;
		struct msg *m = worker_prepare(&j, wp->max_message, &why);
		struct ready r = { .seq = j.seq, .msg = m, .offset = j.offset, .phase = j.phase, .gap = j.gap };

		if (m == NULL && why < REJECT_REASON_COUNT) {
			struct ack_item a = { .tag = j.tag, .gen = j.gen, .kind = ACK_REJECT };
			char rk[96];

			stats_add(&wp->stats->rejected[why], 1);
			log_warn("message_rejected", "tag=%llu reason=%s routing_key=%s size=%zu",
			    (unsigned long long)j.tag, stats_reject_name(why),
			    log_quote(rk, sizeof(rk), j.env.routing_key.bytes, j.env.routing_key.len),
			    j.env.message.body.len);
			(void)xqueue_push(wp->ackq, &a);
		}
		amqp_destroy_envelope(&j.env);
		if (xqueue_push(wp->readyq, &r) < 0)
			msg_free(m);	/* shutting down: unacked, the broker keeps it */
	}
	return NULL;
}

static size_t job_weight(const void *item)
{
	const struct job *j = item;

	return JOB_BASE_WEIGHT + j->env.message.body.len;
}

struct worker_pool *worker_pool_start(unsigned nthreads, struct xqueue *jobq,
    struct xqueue *readyq, struct xqueue *ackq, struct stats *stats, uint64_t max_message)
{
	struct worker_pool *wp = calloc(1, sizeof(*wp));

	if (wp == NULL)
		return NULL;
	wp->w = calloc(nthreads, sizeof(*wp->w));
	if (wp->w == NULL) {
		free(wp);
		return NULL;
	}
	wp->jobq = jobq;
	wp->readyq = readyq;
	wp->ackq = ackq;
	wp->stats = stats;
	wp->max_message = max_message;
	/* One worker takes a trickle of jobs in order; a second one joins
	 * when work queues up behind it.  Waking a second worker for every
	 * job (or for a burst of a few small ones) made them finish out of
	 * order, the dispatcher waiting for the slower one, and cost CPU
	 * and tail latency: see bench/README. */
	xqueue_set_spread(jobq, WORKER_SPREAD, job_weight);
	for (unsigned i = 0; i < nthreads; i++) {
		struct worker *w = &wp->w[i];
		char name[32];	/* over 15 characters: left unnamed */

		w->wp = wp;
		xqueue_receiver_init(&w->rcv);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			xqueue_receiver_destroy(&w->rcv);
			break;
		}
		snprintf(name, sizeof(name), "nd-worker%u", i + 1);
		(void)pthread_setname_np(w->thread, name);
		wp->n++;
	}
	if (wp->n == 0) {
		free(wp->w);
		free(wp);
		return NULL;
	}
	return wp;
}

void worker_pool_join(struct worker_pool *wp)
{
	if (wp == NULL)
		return;
	for (unsigned i = 0; i < wp->n; i++) {
		pthread_join(wp->w[i].thread, NULL);
		xqueue_receiver_destroy(&wp->w[i].rcv);
	}
	free(wp->w);
	free(wp);
}
