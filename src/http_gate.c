#include "autoconfig.h"

#include "http_gate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "config.h"
#include "http_head.h"
#include "http_reply.h"
#include "log.h"
#include "peer_table.h"
#include "stats.h"

#define GATE_BUCKETS 4096
#define GATE_HEAD_MAX 8192	/* evhttp's max_headers_size is set to the same */
#define GATE_LINGER_MS 1000	/* a refused client's body is read and dropped this long */
#define GATE_EVICT_SCAN 16	/* armed entries looked at for one eviction */

enum gate_state {
	G_NEW = 0,	/* accepted; evhttp's connection not known yet */
	G_HEAD,		/* reading a request head (staged until whole) */
	G_BODY,		/* passing an admitted body to evhttp */
	G_WAIT,		/* evhttp has the request: a handler is answering it */
	G_REFUSING	/* ours: the answer is being written, then we close */
};

struct gate_conn {
	TAILQ_ENTRY(gate_conn) q;	/* g->newborn while G_NEW, then g->armed while a deadline runs */
	struct gate_conn *hnext;	/* g->bucket, by bev */
	struct http_gate *g;
	struct bufferevent *bev;
	struct evhttp_connection *evcon;
	struct evbuffer_cb_entry *cbent;
	struct gate_stage *stage;	/* an incomplete head, hidden from evhttp */
	struct peer *peer;
	uint64_t deadline_ms;
	uint64_t body_left;
	uint8_t state;
	bool armed;
	bool busy;			/* inside our own input callback */
	bool admitted;			/* this request's body passed the admit callback */
};

/* The bytes of a head that has not ended yet, flat, so that each new byte
 * is copied once and searched once (a client trickling a byte at a time
 * must not cost a rescan of everything before it). */
struct gate_stage {
	size_t len, cap, scanned;
	char buf[];
};

TAILQ_HEAD(gate_list, gate_conn);

struct http_gate {
	struct event_base *base;
	const struct config *cfg;
	struct stats *stats;
	struct peer_table *peers;
	http_gate_admit_fn admit;
	void *admit_arg;
	struct event *adopt_ev;
	struct gate_list newborn;
	struct gate_list armed;		/* deadline order: every deadline is now + a constant */
	size_t n;
	struct gate_conn *bucket[GATE_BUCKETS];
};

static void gate_on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

static size_t gate_slot(const struct bufferevent *bev)
{
	return ((uintptr_t)bev >> 4) % GATE_BUCKETS;
}

static struct gate_conn *gate_find(struct http_gate *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon != NULL ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct gate_conn *gc;

	if (bev == NULL)
		return NULL;
	for (gc = g->bucket[gate_slot(bev)]; gc != NULL; gc = gc->hnext)
		if (gc->bev == bev)
			return gc;
	return NULL;
}

static const char *gate_addr(const struct gate_conn *gc)
{
	return gc->peer != NULL ? peer_addr(gc->peer) : "?";
}

static void gate_disarm(struct gate_conn *gc)
{
	if (gc->armed) {
		TAILQ_REMOVE(&gc->g->armed, gc, q);
		gc->armed = false;
	}
}

static void gate_arm(struct gate_conn *gc, uint64_t deadline_ms)
{
	gate_disarm(gc);
	gc->deadline_ms = deadline_ms;
	TAILQ_INSERT_TAIL(&gc->g->armed, gc, q);
	gc->armed = true;
}

static void gate_count(struct http_gate *g)
{
	atomic_store_explicit(&g->stats->http_connections, g->n, memory_order_relaxed);
}

/* Stop watching the input: the connection is no longer an HTTP request
 * stream of ours to read (refused, WebSocket, or going away). */
static void gate_unhook(struct gate_conn *gc)
{
	if (gc->cbent != NULL) {
		evbuffer_remove_cb_entry(bufferevent_get_input(gc->bev), gc->cbent);
		gc->cbent = NULL;
	}
	free(gc->stage);
	gc->stage = NULL;
}

/* Drop every trace of gc (the connection itself is someone else's). */
static void gate_forget(struct gate_conn *gc)
{
	struct http_gate *g = gc->g;
	struct gate_conn **pp = &g->bucket[gate_slot(gc->bev)];

	while (*pp != gc)
		pp = &(*pp)->hnext;
	*pp = gc->hnext;
	if (gc->state == G_NEW)
		TAILQ_REMOVE(&g->newborn, gc, q);
	else
		gate_disarm(gc);
	peer_release(g->peers, gc->peer);
	g->n--;
	gate_count(g);
	free(gc);
}

/* evhttp is freeing the connection: the descriptor closes right after. */
static void gate_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct gate_conn *gc = arg;

	(void)evcon;
	gate_unhook(gc);
	gate_forget(gc);
}

/* Close now.  Frees gc (through gate_on_close). */
static void gate_close(struct gate_conn *gc)
{
	evhttp_connection_free(gc->evcon);
}

/* ---- answering refused requests ourselves ---------------------------- */

static void gate_refuse_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void gate_refuse_written(struct bufferevent *bev, void *arg)
{
	struct gate_conn *gc = arg;

	/* The answer is out.  Over TCP, say we are done and read what the
	 * client still sends until it closes or the linger ends, so that our
	 * close does not reset the connection under an answer it has not read;
	 * over TLS there is no half-close to offer: close now. */
	if (bufferevent_openssl_get_ssl(bev) != NULL || shutdown(bufferevent_getfd(bev), SHUT_WR) < 0)
		gate_close(gc);
}

static void gate_refuse_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	gate_close(arg);
}

/* Answer status with a JSON error and close, without evhttp: it has seen no
 * byte of this request, and never will.  Never frees gc: the callers go on
 * using it; the close comes from the callbacks or the deadline. */
static void gate_refuse(struct gate_conn *gc, int status, const char *why, const char *header)
{
	struct http_gate *g = gc->g;
	struct bufferevent *bev = gc->bev;
	char body[HTTP_ERROR_BODY_MAX], head[512];
	size_t bn;
	int hn;

	stats_add(&g->stats->http_refused, 1);
	log_info("http_refused", "status=%d why=\"%s\" addr=%s", status, why, gate_addr(gc));
	gate_unhook(gc);
	gc->state = G_REFUSING;
	gate_arm(gc, clock_now_ms() + (g->cfg->handshake_timeout_ms < GATE_LINGER_MS ?
	    g->cfg->handshake_timeout_ms : GATE_LINGER_MS));
	bn = http_error_body(body, sizeof(body), why);
	hn = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
	    "Connection: close\r\nContent-Length: %zu\r\n%s%s\r\n",
	    status, http_reason(status), bn, header != NULL ? header : "", header != NULL ? "\r\n" : "");
	bufferevent_setcb(bev, gate_refuse_read, gate_refuse_written, gate_refuse_event, gc);
	evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
	/* Out of memory: nothing to say, the deadline closes it. */
	if (bufferevent_write(bev, head, (size_t)hn) == 0)
		bufferevent_write(bev, body, bn);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* ---- reading heads -------------------------------------------------- */

/* A whole head of len bytes starts buf (which may hold more). */
static void gate_on_head(struct gate_conn *gc, struct evbuffer *buf, size_t len)
{
	struct http_gate *g = gc->g;
	struct gate_refusal r = { 0, NULL, NULL };
	struct http_head h;
	const char *why = NULL;
	const char *p = (const char *)evbuffer_pullup(buf, (ev_ssize_t)len);
	size_t after;

	if (p == NULL) {
		gate_refuse(gc, 500, "out of memory", NULL);
		return;
	}
	if (http_head_parse(p, len, &h, &why) != HTTP_HEAD_OK) {
		gate_refuse(gc, 400, why, NULL);
		return;
	}
	if (!http_head_has_body(&h)) {
		gc->state = G_WAIT;
		gate_disarm(gc);
		return;
	}
	if (g->admit(g->admit_arg, &h, gate_addr(gc), &r) != 0) {
		gate_refuse(gc, r.status, r.why, r.header);
		return;
	}
	/* Admitted (the callback refuses chunked bodies: only a length lets us
	 * know where a body ends without decoding it). */
	gc->admitted = true;
	after = evbuffer_get_length(buf) - len;
	if (after >= (uint64_t)h.content_length) {
		gc->state = G_WAIT;
		gate_disarm(gc);
	} else {
		gc->state = G_BODY;
		gc->body_left = (uint64_t)h.content_length - after;
	}
}

/* Append what in holds to the stage.  Returns false when the head would
 * pass GATE_HEAD_MAX (*too_large) or memory runs out. */
static bool gate_stage_add(struct gate_conn *gc, struct evbuffer *in, bool *too_large)
{
	size_t n = evbuffer_get_length(in), len = gc->stage != NULL ? gc->stage->len : 0;
	struct gate_stage *st = gc->stage;

	*too_large = len + n > GATE_HEAD_MAX + 4;
	if (*too_large)
		return false;
	if (st == NULL || st->cap < len + n) {
		size_t cap = st != NULL ? st->cap : 512;

		while (cap < len + n)
			cap *= 2;
		st = realloc(st, sizeof(*st) + cap);
		if (st == NULL)
			return false;
		if (gc->stage == NULL)
			st->len = st->scanned = 0;
		st->cap = cap;
		gc->stage = st;
	}
	evbuffer_remove(in, st->buf + st->len, n);
	st->len += n;
	return true;
}

/* New bytes while reading a head.  An incomplete head is moved aside, so
 * that evhttp, which reads headers line by line as they come, sees the
 * whole head at once or nothing of it. */
static void gate_read_head(struct gate_conn *gc)
{
	struct evbuffer *in = bufferevent_get_input(gc->bev);
	struct gate_stage *st;
	size_t end, from;
	bool too_large = false;

	if (gc->stage == NULL) {
		/* Most heads come whole in one read: look in place. */
		size_t len = evbuffer_get_length(in);
		const char *p;

		if (len > GATE_HEAD_MAX + 4)
			len = GATE_HEAD_MAX + 4;
		p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		end = p != NULL ? http_head_end(p, len) : 0;
		if (end > 0 && end <= GATE_HEAD_MAX) {
			gate_on_head(gc, in, end);
			return;
		}
		if (end > GATE_HEAD_MAX || len > GATE_HEAD_MAX) {
			gate_refuse(gc, 431, "request header too large", NULL);
			return;
		}
	}
	if (!gate_stage_add(gc, in, &too_large)) {
		gate_refuse(gc, too_large ? 431 : 500, too_large ? "request header too large" : "out of memory",
		    NULL);
		return;
	}
	st = gc->stage;
	/* The end (a LF, then LF or CR LF) may straddle what was searched. */
	from = st->scanned > 2 ? st->scanned - 2 : 0;
	end = http_head_end(st->buf + from, st->len - from);
	st->scanned = st->len;
	if (end == 0)
		return;
	end += from;
	if (end > GATE_HEAD_MAX) {
		gate_refuse(gc, 431, "request header too large", NULL);
		return;
	}
	/* in is empty: all of it was staged. */
	if (evbuffer_add(in, st->buf, st->len) < 0) {
		gate_refuse(gc, 500, "out of memory", NULL);
		return;
	}
	free(gc->stage);
	gc->stage = NULL;
	gate_on_head(gc, in, end);
}

static void gate_on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct gate_conn *gc = arg;

	(void)buf;
	/* Our own moves call us back; evhttp's reads only delete. */
	if (gc->busy || info->n_added == 0)
		return;
	gc->busy = true;
	switch (gc->state) {
	case G_HEAD:
		gate_read_head(gc);
		break;
	case G_BODY:
		if (info->n_added >= gc->body_left) {
			gc->state = G_WAIT;
			gate_disarm(gc);
		} else {
			gc->body_left -= info->n_added;
		}
		break;
	default:
		break;
	}
	gc->busy = false;
}

/* ---- the connection's life ------------------------------------------ */

/* Make room for one more connection: close the oldest one still sending a
 * request.  Returns false when there is none to close. */
static bool gate_evict(struct http_gate *g, const struct gate_conn *keep)
{
	struct gate_conn *gc = TAILQ_FIRST(&g->armed);

	for (int looked = 0; gc != NULL && looked < GATE_EVICT_SCAN; looked++, gc = TAILQ_NEXT(gc, q)) {
		if (gc != keep && (gc->state == G_HEAD || gc->state == G_BODY)) {
			stats_add(&g->stats->limit_hits[LIMIT_HTTP_CONNECTIONS], 1);
			log_warn("http_evicted", "addr=%s max=%u", gate_addr(gc), g->cfg->max_http_connections);
			gate_close(gc);
			return true;
		}
	}
	return false;
}

/* The connection behind gc->bev is evhttp's now: learn which, so that
 * evhttp tells us when it frees it, and apply the per-address limit. */
static void gate_adopt(struct http_gate *g, struct gate_conn *gc)
{
	const struct config *cfg = g->cfg;
	bufferevent_data_cb rcb = NULL;
	void *arg = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[PEER_ADDR_MAX];
	enum peer_result pr;

	TAILQ_REMOVE(&g->newborn, gc, q);
	gc->state = G_HEAD;
	/* evhttp's read callback takes its connection as argument: libevent
	 * 2.1 has no other way to get from a new connection to it (2.2 adds
	 * evhttp_set_newreqcb).  A NULL callback means evhttp has freed the
	 * connection already (bufferevent_free clears the callbacks). */
	bufferevent_getcb(gc->bev, &rcb, NULL, NULL, &arg);
	if (rcb == NULL || arg == NULL ||
	    evhttp_connection_get_bufferevent((struct evhttp_connection *)arg) != gc->bev) {
		struct bufferevent *bev = gc->bev;

		gate_forget(gc);
		bufferevent_decref(bev);
		return;
	}
	gc->evcon = arg;
	evhttp_connection_set_closecb(gc->evcon, gate_on_close, gc);
	/* From here on evhttp's close callback keeps gc honest: hold nothing,
	 * so that a client that resets frees its descriptor at once. */
	bufferevent_decref(gc->bev);
	gc->cbent = evbuffer_add_cb(bufferevent_get_input(gc->bev), gate_on_input, gc);
	gate_arm(gc, gc->deadline_ms);
	if (getpeername(bufferevent_getfd(gc->bev), (struct sockaddr *)&ss, &sl) < 0) {
		/* Reset before we looked (ENOTCONN): give the descriptor back. */
		gate_close(gc);
		return;
	}
	pr = peer_acquire(g->peers, (struct sockaddr *)&ss, cfg->max_connections_per_ip, &gc->peer, addr);
	if (pr == PEER_FULL) {
		stats_add(&g->stats->limit_hits[LIMIT_PER_IP], 1);
		log_warn("http_limit_reached", "limit=per_ip addr=%s max=%u", addr, cfg->max_connections_per_ip);
		gate_refuse(gc, 503, "too many connections from this address", "Retry-After: 1");
		return;
	}
	if (gc->cbent == NULL) {
		gate_refuse(gc, 500, "out of memory", NULL);
		return;
	}
	if (g->n > cfg->max_http_connections && !gate_evict(g, gc)) {
		stats_add(&g->stats->limit_hits[LIMIT_HTTP_CONNECTIONS], 1);
		log_warn("http_limit_reached", "limit=http_connections max=%u", cfg->max_http_connections);
		gate_refuse(gc, 503, "too many connections", "Retry-After: 1");
	}
}

static void gate_on_adopt(evutil_socket_t fd, short what, void *arg)
{
	struct http_gate *g = arg;

	(void)fd;
	(void)what;
	while (!TAILQ_EMPTY(&g->newborn))
		gate_adopt(g, TAILQ_FIRST(&g->newborn));
}

void http_gate_watch(struct http_gate *g, struct bufferevent *bev)
{
	struct gate_conn *gc = calloc(1, sizeof(*gc));

	if (gc == NULL)
		return;		/* unguarded, still served */
	/* Until adopted, our reference keeps bev alive whatever evhttp does. */
	bufferevent_incref(bev);
	gc->g = g;
	gc->bev = bev;
	gc->state = G_NEW;
	gc->deadline_ms = clock_now_ms() + g->cfg->handshake_timeout_ms;
	gc->hnext = g->bucket[gate_slot(bev)];
	g->bucket[gate_slot(bev)] = gc;
	TAILQ_INSERT_TAIL(&g->newborn, gc, q);
	g->n++;
	gate_count(g);
	/* evhttp sets up its connection after this returns; the adoption runs
	 * before the loop polls again, so before any byte is read. */
	event_active(g->adopt_ev, EV_TIMEOUT, 0);
}

static void gate_on_complete(struct evhttp_request *req, void *arg)
{
	struct gate_conn *gc = arg;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);

	/* Bytes after the request were sent before its answer: pipelining,
	 * which we do not serve (the gate would have to read them in place). */
	if (evcon != NULL && evbuffer_get_length(bufferevent_get_input(evhttp_connection_get_bufferevent(evcon))) > 0)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	gc->state = G_HEAD;
	gate_arm(gc, clock_now_ms() + gc->g->cfg->handshake_timeout_ms);
}

bool http_gate_begin(struct http_gate *g, struct evhttp_request *req)
{
	struct gate_conn *gc = gate_find(g, req);
	bool admitted;

	if (gc == NULL || gc->state == G_NEW || gc->state == G_REFUSING)
		return false;
	admitted = gc->admitted;
	gc->admitted = false;
	gc->state = G_WAIT;
	/* The answer (after the broker's confirm, for /push) must be written
	 * by then, or the client is not reading it. */
	gate_arm(gc, clock_now_ms() + g->cfg->push_timeout_ms + g->cfg->handshake_timeout_ms);
	evhttp_request_set_on_complete_cb(req, gate_on_complete, gc);
	return admitted;
}

struct peer *http_gate_release(struct http_gate *g, struct evhttp_request *req)
{
	struct gate_conn *gc = gate_find(g, req);
	struct peer *p;

	if (gc == NULL || gc->state == G_NEW)
		return NULL;
	p = gc->peer;
	gc->peer = NULL;
	evhttp_connection_set_closecb(gc->evcon, NULL, NULL);
	gate_unhook(gc);
	gate_forget(gc);
	return p;
}

void http_gate_tick(struct http_gate *g, uint64_t now_ms)
{
	while (!TAILQ_EMPTY(&g->armed) && TAILQ_FIRST(&g->armed)->deadline_ms <= now_ms) {
		struct gate_conn *gc = TAILQ_FIRST(&g->armed);

		if (gc->state == G_WAIT) {
			/* A handler may hold the request (POST /push waits for the
			 * broker): freeing the connection would free it under the
			 * handler.  Shut the socket: evhttp meets the error at its
			 * next write and cleans up with the handler's knowledge. */
			log_info("http_answer_timeout", "addr=%s", gate_addr(gc));
			gate_disarm(gc);
			shutdown(bufferevent_getfd(gc->bev), SHUT_RDWR);
			continue;
		}
		if (gc->state != G_REFUSING) {
			stats_add(&g->stats->limit_hits[LIMIT_HANDSHAKE], 1);
			log_info("http_request_timeout", "addr=%s state=%s timeout_ms=%u", gate_addr(gc),
			    gc->state == G_BODY ? "body" : "head", g->cfg->handshake_timeout_ms);
		}
		gate_close(gc);
	}
}

struct http_gate *http_gate_new(struct event_base *base, const struct config *cfg, struct stats *st,
    struct peer_table *peers, http_gate_admit_fn admit, void *admit_arg)
{
	struct http_gate *g = calloc(1, sizeof(*g));

	if (g == NULL)
		return NULL;
	g->base = base;
	g->cfg = cfg;
	g->stats = st;
	g->peers = peers;
	g->admit = admit;
	g->admit_arg = admit_arg;
	TAILQ_INIT(&g->newborn);
	TAILQ_INIT(&g->armed);
	g->adopt_ev = event_new(base, -1, 0, gate_on_adopt, g);
	if (g->adopt_ev == NULL) {
		free(g);
		return NULL;
	}
	return g;
}

void http_gate_free(struct http_gate *g)
{
	if (g == NULL)
		return;
	/* evhttp_free() closed every adopted connection (and told us); only
	 * the ones accepted in this very loop pass may be left. */
	while (!TAILQ_EMPTY(&g->newborn)) {
		struct gate_conn *gc = TAILQ_FIRST(&g->newborn);
		struct bufferevent *bev = gc->bev;

		gate_forget(gc);
		bufferevent_decref(bev);
	}
	event_free(g->adopt_ev);
	free(g);
}
