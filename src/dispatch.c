#include "autoconfig.h"

#include "dispatch.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "delivery.h"
#include "history.h"
#include "log.h"
#include "notifyd.h"
#include "presence.h"
#include "seq_window.h"
#include "stats.h"
#include "ws_conn.h"
#include "ws_deflate.h"
#include "xqueue.h"

#define READY_BATCH 64

struct dispatch {
	struct gateway *gw;
	struct xqueue *readyq;
	struct event *ready_ev;
	struct event *sweep_ev;
	/* Reorder buffer: workers finish out of order; notifications leave in
	 * the order the broker delivered them (base: the next seq to leave). */
	struct seq_window reorder;
	struct msg_sink sink;		/* where written msgs are settled */
	/* Wake-up number: a connection's first frame of a pass may be written
	 * straight to its idle socket, the rest of the pass is queued and
	 * written with one writev per connection (a send() per frame cost 5x
	 * the broadcast throughput); unicasts to many users all go direct. */
	uint32_t pass;
	/* Broadcasts of this pass not written yet, linked through parts. */
	struct msg *run, *run_tail;
	size_t run_bytes, run_max;
};

/* A unicast that reached nobody here: presence decides whether it reached
 * nobody anywhere and whether this instance says so.  A user still
 * replaying is connected: the history gives it the message. */
static void dispatch_undelivered(struct dispatch *d, const struct msg *m)
{
	char rk[TARGET_ID_MAX + 8];
	struct presence_message pm = { .user = m->target.id, .len = m->target.id_len, .routing_key = m->rk,
	    .id = m->entry != NULL ? m->entry->id : NULL };

	if (m->rk == NULL) {
		pm.rk_len = (size_t)snprintf(rk, sizeof(rk), "user.%s", m->target.id);
		pm.routing_key = rk;
	} else {
		pm.rk_len = strlen(m->rk);
	}
	pm.body = msg_body(m, &pm.body_len);
	presence_undelivered(d->gw->presence, &pm,
	    registry_find(&d->gw->reg, m->target.id, m->target.id_len) != NULL, clock_now_ms());
}

static void dispatch_write(struct dispatch *d, struct msg *m)
{
	uint64_t now = clock_now_ms();
	uint32_t n;

	m->owner = &d->sink;
	if (m->target.kind == TARGET_USER)
		n = ws_conn_send_user(d->gw, m->target.id, m->target.id_len, m, now, d->pass);
	else
		n = ws_conn_send_all(d->gw, m, now, d->pass);
	m->targets = n;
	if (n == 0 && m->target.kind == TARGET_USER && d->gw->presence != NULL)
		dispatch_undelivered(d, m);
	stats_add(&d->gw->stats->delivered, (uint64_t)n * (m->nparts != 0 ? m->nparts : 1));
	msg_release(NULL, 0, m);	/* the dispatcher's own reference */
}

/* Write the broadcasts held back in this pass: one alone as itself, more
 * as one batch, so that each connection takes one reference and one write
 * for all of them instead of one per broadcast (the per-delivery cost of a
 * burst of broadcasts is then the copy here, once, not per connection). */
static void dispatch_flush_run(struct dispatch *d)
{
	struct msg *b, *first = d->run;
	size_t len = 0, off = 0;
	uint32_t k = 0;

	if (first == NULL)
		return;
	d->run = NULL;
	d->run_bytes = 0;
	for (struct msg *p = first; p != NULL; p = p->parts) {
		len += p->frame_len;
		k++;
	}
	b = k > 1 ? malloc(sizeof(*b) + len) : NULL;
	if (b == NULL) {
		/* One, or no memory for a batch: each on its own, in order. */
		for (struct msg *p = first, *next; p != NULL; p = next) {
			next = p->parts;
			p->parts = NULL;
			dispatch_write(d, p);
		}
		return;
	}
	/* The batch's own tag and gen are never acked: its parts are. */
	msg_init(b, first->gen, first->tag, first->t_recv_ns, &first->target, len);
	b->owner = &d->sink;
	b->parts = first;
	b->nparts = k;
	stats_add(&d->gw->stats->broadcast_batches, 1);
	for (struct msg *p = first; p != NULL; p = p->parts) {
		memcpy(b->frame + off, p->frame, p->frame_len);
		off += p->frame_len;
	}
	dispatch_write(d, b);
}

/* Messages leave in seq order; a broadcast waits for the end of the pass
 * (or the next unicast) to be written together with the ones after it.
 * A stream message enters the history first, in the same order, so that a
 * connection still replaying (which the fan-out skips) finds it there. */
static void dispatch_fan_out(struct dispatch *d, struct msg *m)
{
	if (m->entry != NULL && d->gw->hist != NULL)
		(void)history_add(d->gw->hist, m->entry, m->target.id, m->target.id_len, clock_now_ms());
	if (msg_quiet(m)) {
		m->owner = &d->sink;
		if (m->phase == PHASE_MARK && d->gw->hist != NULL) {
			/* Everything published before this start is in the
			 * history now: serve the clients that waited for it. */
			history_set_live(d->gw->hist);
			ws_conn_resume_waiting(d->gw);
		}
		msg_release(NULL, 0, m);
		return;
	}
	if (m->target.kind == TARGET_USER) {
		dispatch_flush_run(d);
		dispatch_write(d, m);
		return;
	}
	if (d->run != NULL && d->run_bytes + m->frame_len > d->run_max)
		dispatch_flush_run(d);
	m->parts = NULL;
	*(d->run != NULL ? &d->run_tail->parts : &d->run) = m;
	d->run_tail = m;
	d->run_bytes += m->frame_len;
}

static void dispatch_accept(struct dispatch *d, const struct ready *r)
{
	void *m;
	int rc;

	if (r->msg != NULL)
		d->sink.in_flight++;
	/* Order does not matter for a gap: it only makes older ids too old. */
	if (r->gap && d->gw->hist != NULL)
		history_gap(d->gw->hist, r->offset);
	rc = seq_window_add(&d->reorder, r->seq, 1, r->msg);
	if (rc < 0) {
		/* Cannot happen with one consumer; never drop a message over it. */
		if (rc == SEQ_WINDOW_NOMEM)
			log_error("dispatch_out_of_memory", "seq=%llu", (unsigned long long)r->seq);
		else
			log_error(r->seq < d->reorder.base ? "dispatch_seq_behind" : "dispatch_seq_twice",
			    "seq=%llu next=%llu", (unsigned long long)r->seq,
			    (unsigned long long)d->reorder.base);
		if (r->msg != NULL)
			dispatch_fan_out(d, r->msg);
		return;
	}
	while (seq_window_pop(&d->reorder, NULL, NULL, &m))
		if (m != NULL)
			dispatch_fan_out(d, m);
}

static void dispatch_on_ready(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;
	struct ready batch[READY_BATCH];
	size_t n;

	(void)fd;
	(void)what;
	d->pass++;
	/* One batch per wake-up: xqueue_drain re-arms the eventfd when more
	 * wait, so a burst of broadcasts takes turns with /health, new
	 * connections and writes instead of holding the loop for seconds. */
	n = xqueue_drain(d->readyq, batch, READY_BATCH);
	for (size_t i = 0; i < n; i++)
		dispatch_accept(d, &batch[i]);
	dispatch_flush_run(d);
	/* After the history grew: resumes waiting for an id may go on. */
	ws_conn_resume_waiting(d->gw);
}

static void dispatch_on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct dispatch *d = arg;

	(void)fd;
	(void)what;
	ws_conn_sweep_all(d->gw, clock_now_ms());
	if (d->gw->hist != NULL)
		history_expire(d->gw->hist, clock_now_ms());
	ws_conn_resume_waiting(d->gw);	/* and those whose wait ran out */
}

struct dispatch *dispatch_new(struct gateway *gw, struct xqueue *readyq)
{
	const struct config *cfg = gw->cfg;
	struct dispatch *d = calloc(1, sizeof(*d));
	uint32_t sweep_ms = 1000;
	struct timeval tv;

	if (d == NULL)
		return NULL;
	d->gw = gw;
	d->readyq = readyq;
	d->sink.ackq = gw->ackq;
	d->sink.stats = gw->stats;
	if (cfg->ws_deflate) {
		ws_deflate_config_default(&gw->deflate);
		d->sink.deflater = ws_deflater_new(&gw->deflate);
		d->sink.deflate_min = cfg->ws_deflate_min_size;
		/* Without a compressor, agree to nothing. */
		gw->deflate_on = d->sink.deflater != NULL;
	}
	/* A batch is taken whole by an idle connection, so keep it well inside
	 * what a connection may queue. */
	d->run_max = cfg->ws_send_queue_max / 4;
	if (d->run_max > 65536)
		d->run_max = 65536;
	if (seq_window_init(&d->reorder, 1024, true, 1, 1) < 0) {
		free(d);
		return NULL;
	}
	/* The sweep is the clock of every per-connection deadline: run it
	 * often enough that none is late by more than a fraction of itself. */
	if (cfg->ws_send_timeout_ms / 4 < sweep_ms)
		sweep_ms = cfg->ws_send_timeout_ms / 4;
	if (cfg->ws_pong_timeout_ms / 4 < sweep_ms)
		sweep_ms = cfg->ws_pong_timeout_ms / 4;
	if (sweep_ms < 50)
		sweep_ms = 50;
	tv.tv_sec = sweep_ms / 1000;
	tv.tv_usec = (sweep_ms % 1000) * 1000;
	d->ready_ev = event_new(gw->base, xqueue_fd(readyq), EV_READ | EV_PERSIST, dispatch_on_ready, d);
	d->sweep_ev = event_new(gw->base, -1, EV_PERSIST, dispatch_on_sweep, d);
	if (d->ready_ev == NULL || d->sweep_ev == NULL ||
	    event_add(d->ready_ev, NULL) < 0 || event_add(d->sweep_ev, &tv) < 0) {
		dispatch_free(d);
		return NULL;
	}
	return d;
}

void dispatch_free(struct dispatch *d)
{
	if (d == NULL)
		return;
	if (d->ready_ev != NULL)
		event_free(d->ready_ev);
	if (d->sweep_ev != NULL)
		event_free(d->sweep_ev);
	ws_deflater_free(d->sink.deflater);
	/* Messages still waiting for an earlier seq, or for the end of a pass,
	 * are not acked: the broker redelivers them. */
	for (struct msg *p = d->run, *next; p != NULL; p = next) {
		next = p->parts;
		p->parts = NULL;
		msg_free(p);
	}
	for (uint64_t s = d->reorder.base; s < d->reorder.next; s++) {
		struct msg *m = seq_window_item(&d->reorder, s);

		if (m != NULL)
			msg_free(m);
	}
	seq_window_free(&d->reorder);
	free(d);
}

void dispatch_abandon(struct dispatch *d)
{
	d->sink.abandoning = true;
}

uint64_t dispatch_in_flight(const struct dispatch *d)
{
	return d->sink.in_flight;
}
