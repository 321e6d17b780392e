#include "autoconfig.h"

#include "ws_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "auth_jwt.h"
#include "clock.h"
#include "config.h"
#include "delivery.h"
#include "envelope.h"
#include "history.h"
#include "log.h"
#include "notifyd.h"
#include "peer_table.h"
#include "presence.h"
#include "sse.h"
#include "stats.h"
#include "utf8.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_handshake.h"

#define WS_CLOSE_GRACE_MS 2000	/* how long a closing peer gets to answer or read */
#define WS_MARKS 4		/* age checkpoints of unsent bytes */
/* More pings than this while one pong waits is a flood, not a keep-alive:
 * a client pings again only after it got its pong, or after seconds. */
#define WS_PINGS_PER_PONG_MAX 100
/* How long a resume waits for this instance to read up to an id another
 * instance gave out, before calling it another stream's. */
#define WS_RESUME_WAIT_MS 5000
#define WS_SSE_RETRY_MS 2000	/* EventSource's wait before it reconnects */
#define WS_SSE_ORIGIN_MAX 1000	/* longer origins get no CORS header */
#define WS_SSE_HEAD_MAX (WS_SSE_ORIGIN_MAX + 300)

/* Where a notifyd.v2 connection stands with live delivery. */
enum ws_resume {
	WR_LIVE = 0,		/* takes every new message */
	WR_WAITING,		/* the history is warming up, or behind the client's
				 * id: nothing sent yet */
	WR_REPLAYING		/* sending from the history; live ones are found there */
};

enum ws_state {
	WS_OPEN = 0,
	WS_CLOSING,		/* we sent close; waiting for the peer's, or the deadline */
	WS_FLUSHING		/* nothing more to read: free once the output is written */
};

struct ws_mark {
	uint64_t end;		/* stream offset where the bytes of this mark end */
	uint64_t t_ms;		/* when the first of them was queued */
};

/* A pong that waits for the output to drain: one at most, a newer ping's
 * payload replaces it (RFC 6455 5.5.3 allows answering the latest only). */
struct ws_pong {
	uint32_t coalesced;	/* pings answered by this one pong */
	uint8_t len;
	uint8_t payload[WS_CONTROL_MAX];
};

struct ws_conn {
	struct conn_links links;	/* first: the registry casts to it */
	struct gateway *gw;
	struct evhttp_connection *evcon;
	struct bufferevent *bev;
	struct peer *peer;		/* this address's slot in gw->peers */
	struct ws_pong *pong;		/* allocated when first needed */
	uint64_t id;
	uint64_t bytes_queued;		/* stream offset of the end of the output */
	uint64_t next_ping_ms;
	uint64_t ping_sent_ms;		/* 0: no ping outstanding */
	uint64_t deadline_ms;		/* WS_CLOSING / WS_FLUSHING: free at this time */
	uint64_t expires_ms;		/* the token's end (0: none): close with 1008 */
	uint64_t opened_wall_ms;	/* for the admin API */
	time_t iat;			/* the token's iat (0: none), for revocations */
	char *jti;			/* the token's jti (NULL: none) */
	struct ws_mark marks[WS_MARKS];
	uint8_t nmarks;
	uint8_t state;
	bool tls;			/* bytes go through OpenSSL: no direct send */
	bool pong_pending;		/* pong holds an answer not yet queued */
	bool read_paused;		/* output over ws_send_queue_max: not reading */
	uint8_t format;			/* enum msg_format: raw, notifyd.v2, or SSE (_Z: compressed) */
	bool z_text;			/* the compressed message being read is text */
	struct ws_inflater *inflater;	/* permessage-deflate agreed: the client's messages */
	struct utf8_validator z_utf8;	/* ... and the UTF-8 of an inflated text message */
	uint8_t resume;			/* enum ws_resume */
	char *since;			/* WR_WAITING: the id to resume after (NULL: none) */
	uint64_t replay_after;		/* WR_REPLAYING: offset of the last one sent */
	uint64_t wait_until_ms;		/* waiting for an id ahead of us: until then */
	uint64_t replayed;
	uint32_t direct_pass;		/* dispatcher pass of the last direct send */
	size_t pass_backlog;		/* unsent bytes when that pass began */
	uint16_t close_sent;		/* 0: none yet */
	uint16_t close_received;	/* 0: none yet */
	struct ws_reader reader;
};

static void ws_conn_readcb(struct bufferevent *bev, void *arg);
static void ws_conn_replay(struct ws_conn *c);
static void ws_conn_writecb(struct bufferevent *bev, void *arg);
static void ws_conn_eventcb(struct bufferevent *bev, short what, void *arg);

static const char *ws_conn_peer(const struct ws_conn *c, char *buf, size_t len)
{
	char *addr = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(c->evcon, &addr, &port);
	snprintf(buf, len, "%s:%u", addr != NULL ? addr : "?", (unsigned)port);
	return buf;
}

/* The takeover leaves EV_WRITE off when the 101 went out at once (arming it
 * costs two epoll_ctl calls and a loop turn per connection); turn it on
 * the first time something is queued.  Once on it stays on: libevent only
 * removes the write event, not the flag, when the output drains. */
static void ws_conn_want_write(struct ws_conn *c)
{
	if (!(bufferevent_get_enabled(c->bev) & EV_WRITE))
		bufferevent_enable(c->bev, EV_WRITE);
}

static void ws_conn_mark(struct ws_conn *c, uint64_t now_ms);

/* Small control frames are copied; only notifications are shared.  They
 * age like notifications: ws_send_timeout covers every byte we queue. */
static void ws_conn_put_frame(struct ws_conn *c, enum ws_opcode op, const uint8_t *payload, size_t len)
{
	uint8_t buf[WS_SERVER_HEADER_MAX + WS_CONTROL_MAX];
	size_t h = ws_frame_header_encode(buf, op, len);

	memcpy(buf + h, payload, len);
	if (evbuffer_add(bufferevent_get_output(c->bev), buf, h + len) == 0) {
		c->bytes_queued += h + len;
		ws_conn_want_write(c);
		ws_conn_mark(c, clock_now_ms());
	}
}

/* A whole frame (or event) of ours, copied. */
static void ws_conn_put_text(struct ws_conn *c, const uint8_t *frame, size_t len)
{
	if (len > 0 && evbuffer_add(bufferevent_get_output(c->bev), frame, len) == 0) {
		c->bytes_queued += len;
		ws_conn_want_write(c);
		ws_conn_mark(c, clock_now_ms());
	}
}

static void ws_conn_fail(struct ws_conn *c, uint16_t code, const char *reason);

/* Answer a ping.  With nothing queued the pong goes out now; otherwise it
 * waits for the output to drain, and a newer ping only replaces its
 * payload, so a client that pings without reading holds one pong, not one
 * per ping; one that keeps pinging is closed with 1008. */
static void ws_conn_pong(struct ws_conn *c, const uint8_t *payload, size_t len)
{
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 && !c->pong_pending) {
		ws_conn_put_frame(c, WS_OP_PONG, payload, len);
		return;
	}
	if (c->pong == NULL && (c->pong = calloc(1, sizeof(*c->pong))) == NULL)
		return;		/* a pong may be skipped; the peer's ping timeout decides */
	if (!c->pong_pending) {
		c->pong->coalesced = 0;
	} else {
		stats_add(&c->gw->stats->pongs_coalesced, 1);
		if (++c->pong->coalesced > WS_PINGS_PER_PONG_MAX) {
			ws_conn_fail(c, WS_CLOSE_POLICY, "too many pings");
			return;
		}
	}
	memcpy(c->pong->payload, payload, len);
	c->pong->len = (uint8_t)len;
	c->pong_pending = true;
}

static void ws_conn_send_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	uint8_t payload[WS_CONTROL_MAX] = { 0 };
	size_t n = 0;

	if (c->close_sent != 0)
		return;
	c->pong_pending = false;	/* nothing may follow a close */
	/* 1005 means the peer's close had no code: echo an empty one. */
	if (code != WS_CLOSE_NO_STATUS)
		n = ws_close_payload_encode(payload, code, reason);
	ws_conn_put_frame(c, WS_OP_CLOSE, payload, n);
	c->close_sent = code == WS_CLOSE_NO_STATUS ? WS_CLOSE_NORMAL : code;
}

/* Our side of a connection that is gone. */
static void ws_conn_forget(struct ws_conn *c)
{
	struct gateway *gw = c->gw;

	if (c->resume == WR_WAITING)
		gw->resumes_waiting--;
	if (gw->presence != NULL && c->links.user != NULL && c->links.user->nconns == 1)
		presence_local_down(gw->presence, c->links.user->id, c->links.user->id_len, clock_now_ms());
	registry_detach(&gw->reg, &c->links);
	peer_release(gw->peers, c->peer);
	stats_add(&gw->stats->ws_closed, 1);
	free(c->pong);
	free(c->since);
	free(c->jti);
	ws_inflater_free(c->inflater);
	free(c);
}

void ws_conn_free(struct ws_conn *c, const char *why)
{
	uint16_t code = c->close_received ? c->close_received : c->close_sent;

	/* The quoting and the peer's text cost more than the rest of a close. */
	if (log_enabled(LOG_LVL_INFO)) {
		char peer[80], uq[TARGET_ID_MAX * 2 + 8];

		log_info(c->format == MSG_SSE ? "sse_close" : "ws_close",
		    "conn=%llu user=%s addr=%s code=%u sent=%u received=%u why=%s",
		    (unsigned long long)c->id,
		    log_quote(uq, sizeof(uq), c->links.user->id, c->links.user->id_len),
		    ws_conn_peer(c, peer, sizeof(peer)), code ? code : WS_CLOSE_ABNORMAL,
		    c->close_sent, c->close_received, why);
	}
	/* evhttp would call us back from its own free: we are already going. */
	evhttp_connection_set_closecb(c->evcon, NULL, NULL);
	/* Frees the bufferevent, which releases every shared frame still in the
	 * output buffer: those deliveries count as "connection gone". */
	evhttp_connection_free(c->evcon);
	ws_conn_forget(c);
}

/* evhttp frees its connections in evhttp_free(): keep our side consistent. */
static void ws_conn_evcon_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	ws_conn_forget(arg);
}

static void ws_conn_resume(struct ws_conn *c, const char *since);

/* Hold c (nothing sent) until ws_conn_resume_waiting() serves it; since is
 * copied.  Returns 0, -1 when out of memory (c is not held). */
static int ws_conn_wait(struct ws_conn *c, const char *since)
{
	if (since != NULL && (c->since = strdup(since)) == NULL)
		return -1;
	c->resume = WR_WAITING;
	c->gw->resumes_waiting++;
	return 0;
}

/* Take the connection of req over from evhttp for user, writing resp
 * (the 101, or SSE's 200 and its head) first, and start delivery in fmt. */
static struct ws_conn *ws_conn_take(struct gateway *gw, struct evhttp_request *req, const char *user,
    size_t user_len, const char *resp, size_t len, enum msg_format fmt, const char *since,
    const struct ws_token *tok, struct peer *peer)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct evbuffer *out;
	struct ws_conn *c;
	size_t sent = 0;
	uint64_t now = clock_now_ms();

	c = evcon != NULL && len > 0 ? calloc(1, sizeof(*c)) : NULL;
	if (c != NULL && tok != NULL && tok->jti != NULL && tok->jti[0] != '\0' &&
	    (c->jti = strdup(tok->jti)) == NULL) {
		free(c);
		c = NULL;
	}
	if (c == NULL || registry_attach(&gw->reg, &c->links, user, user_len) < 0) {
		if (c != NULL)
			free(c->jti);
		free(c);
		peer_release(gw->peers, peer);
		return NULL;
	}
	if (gw->presence != NULL && c->links.user->nconns == 1)
		presence_local_up(gw->presence, user, user_len, now);
	c->gw = gw;
	c->evcon = evcon;
	c->peer = peer;
	c->id = ++gw->next_conn_id;
	c->next_ping_ms = now + gw->cfg->ws_ping_interval_ms;
	if (tok != NULL) {
		c->expires_ms = tok->expires_ms;
		c->iat = tok->iat;
	}
	c->opened_wall_ms = clock_wall_ms();
	c->format = (uint8_t)fmt;
	ws_reader_init(&c->reader, gw->cfg->ws_max_message_size);

	/* The takeover: from here on the bytes are ours, never evhttp's.  The
	 * 101 is written by us too, not by evhttp_send_reply_start(): evhttp's
	 * header list, printf formatting and Date header cost more than the
	 * rest of the upgrade.  evhttp keeps the request (state "writing") and
	 * frees it with the connection, as it did after a reply start. */
	bev = evhttp_connection_get_bufferevent(evcon);
	out = bufferevent_get_output(bev);
	c->bev = bev;
	c->tls = bufferevent_openssl_get_ssl(bev) != NULL;
	bufferevent_setcb(bev, ws_conn_readcb, ws_conn_writecb, ws_conn_eventcb, c);
	bufferevent_set_timeouts(bev, NULL, NULL);
	bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
	/* Nothing queued ahead (evhttp has answered nothing): hand the 101 to
	 * the kernel now, as ws_conn_send does with a frame, instead of arming
	 * a write event for one writev a loop turn later.  A hard error is left
	 * to libevent, which meets it again on the queued rest. */
	if (!c->tls && evbuffer_get_length(out) == 0) {
		ssize_t n = send(bufferevent_getfd(bev), resp, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			sent = (size_t)n;
	}
	if (sent < len && evbuffer_add(out, resp + sent, len - sent) < 0) {
		/* Out of memory with part of the 101 possibly sent: no other
		 * answer is possible; the sweep hangs up at the deadline. */
		c->state = WS_FLUSHING;
		c->deadline_ms = now + WS_CLOSE_GRACE_MS;
		sent = len;
	}
	bufferevent_enable(bev, sent < len ? EV_READ | EV_WRITE : EV_READ);
	evhttp_connection_set_closecb(evcon, ws_conn_evcon_closed, c);
	/* Stream offsets count the 101, whether sent or still queued; unsent,
	 * it ages like any frame. */
	c->bytes_queued = len;
	if (sent < len)
		ws_conn_mark(c, now);

	stats_add(&gw->stats->ws_opened, 1);
	if (fmt == MSG_SSE)
		stats_add(&gw->stats->sse_opened, 1);
	if (log_enabled(LOG_LVL_INFO)) {
		char addr[80], uq[TARGET_ID_MAX * 2 + 8];

		log_info(fmt == MSG_SSE ? "sse_open" : "ws_open", "conn=%llu user=%s addr=%s conns=%zu",
		    (unsigned long long)c->id, log_quote(uq, sizeof(uq), user, user_len),
		    ws_conn_peer(c, addr, sizeof(addr)), registry_count(&gw->reg));
	}

	if (fmt != MSG_RAW && fmt != MSG_RAW_Z && c->state == WS_OPEN) {
		if (gw->hist != NULL && !history_live(gw->hist)) {
			/* Starting: the clients wait for the history to be
			 * complete, then are served in ws_conn_resume_waiting(). */
			if (ws_conn_wait(c, since) < 0)
				ws_conn_close(c, WS_CLOSE_INTERNAL, "out of memory");
		} else {
			ws_conn_resume(c, since);
		}
	}
	/* Headers are no longer needed (since may be one of them); a
	 * connection may live for months. */
	evhttp_clear_headers(evhttp_request_get_input_headers(req));

	/* A client may send its first frame together with the handshake. */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		ws_conn_readcb(bev, c);
	return c;
}

/* The payload of a compressed message, as the reader unmasks it. */
static int ws_conn_inflated(void *arg, const uint8_t *p, size_t n)
{
	struct ws_conn *c = arg;

	return c->z_text && utf8_feed(&c->z_utf8, p, n) == UTF8_INVALID;
}

static uint16_t ws_conn_on_compressed(void *arg, uint8_t opcode, const uint8_t *p, size_t n,
    const char **reason)
{
	struct ws_conn *c = arg;
	enum ws_inflate_result rc;

	c->z_text = opcode == WS_OP_TEXT;
	rc = ws_inflate_feed(c->inflater, p, n, ws_conn_inflated, c);
	if (rc == WS_INFLATE_STOPPED) {
		*reason = "invalid UTF-8";
		return WS_CLOSE_INVALID_DATA;
	}
	return ws_inflate_close_code(rc, reason);
}

/* The end of a compressed message: the rest of its inflated bytes, and
 * its UTF-8 complete.  Returns 0 or the close code. */
static uint16_t ws_conn_compressed_end(struct ws_conn *c, const char **reason)
{
	enum ws_inflate_result rc = ws_inflate_finish(c->inflater, ws_conn_inflated, c, NULL);
	uint16_t code = 0;

	if (rc == WS_INFLATE_STOPPED || (rc == WS_INFLATE_OK && c->z_text &&
	    utf8_feed(&c->z_utf8, NULL, 0) != UTF8_OK)) {
		*reason = "invalid UTF-8";
		code = WS_CLOSE_INVALID_DATA;
	} else if (rc != WS_INFLATE_OK) {
		code = ws_inflate_close_code(rc, reason);
	}
	utf8_init(&c->z_utf8);
	return code;
}

struct ws_conn *ws_conn_upgrade(struct gateway *gw, struct evhttp_request *req,
    const char *key, const char *user, size_t user_len, const char *subprotocol,
    const struct ws_deflate_params *deflate, const char *since, const struct ws_token *tok,
    struct peer *peer)
{
	char resp[WS_RESPONSE_MAX];
	bool v2 = subprotocol != NULL && strcmp(subprotocol, AUTH_JWT_SUBPROTOCOL_V2) == 0;
	struct ws_inflater *inflater = NULL;
	enum msg_format fmt = v2 ? MSG_V2 : MSG_RAW;
	struct ws_conn *c;
	size_t len;

	if (deflate != NULL) {
		inflater = ws_inflater_new(deflate, gw->cfg->ws_max_message_size);
		if (inflater == NULL)
			deflate = NULL;	/* out of memory: go on without it */
		else
			fmt = v2 ? MSG_V2_Z : MSG_RAW_Z;
	}
	len = ws_handshake_response_ext(resp, sizeof(resp), key, subprotocol,
	    deflate != NULL ? deflate->response : NULL);
	c = ws_conn_take(gw, req, user, user_len, resp, len, fmt, since, tok, peer);
	if (c == NULL) {
		ws_inflater_free(inflater);
		return NULL;
	}
	if (inflater != NULL) {
		c->inflater = inflater;
		utf8_init(&c->z_utf8);
		ws_reader_enable_deflate(&c->reader, ws_conn_on_compressed, c);
	}
	return c;
}

struct ws_conn *ws_conn_open_sse(struct gateway *gw, struct evhttp_request *req,
    const char *user, size_t user_len, const char *allow_origin, const char *since,
    const struct ws_token *tok, struct peer *peer)
{
	char resp[WS_SSE_HEAD_MAX];
	int n;

	/* Close-delimited (no chunked coding to undo) and never cached or
	 * buffered by a proxy (X-Accel-Buffering: nginx); retry: how long
	 * EventSource waits before it reconnects. */
	if (allow_origin != NULL && strlen(allow_origin) > WS_SSE_ORIGIN_MAX)
		allow_origin = NULL;
	n = snprintf(resp, sizeof(resp),
	    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
	    "X-Accel-Buffering: no\r\nConnection: close\r\n%s%s%s\r\nretry: %u\n\n",
	    allow_origin != NULL ? "Access-Control-Allow-Origin: " : "",
	    allow_origin != NULL ? allow_origin : "", allow_origin != NULL ? "\r\nVary: Origin\r\n" : "",
	    (unsigned)WS_SSE_RETRY_MS);
	if (n <= 0 || (size_t)n >= sizeof(resp)) {
		peer_release(gw->peers, peer);
		return NULL;
	}
	return ws_conn_take(gw, req, user, user_len, resp, (size_t)n, MSG_SSE, since, tok, peer);
}

/* Protocol error or the like: say why and hang up once that is written. */
static void ws_conn_fail(struct ws_conn *c, uint16_t code, const char *reason)
{
	log_info("ws_fail", "conn=%llu code=%u reason=\"%s\"", (unsigned long long)c->id, code, reason);
	ws_conn_send_close(c, code, reason);
	c->state = WS_FLUSHING;
	c->deadline_ms = clock_now_ms() + WS_CLOSE_GRACE_MS;
	bufferevent_disable(c->bev, EV_READ);
}

/* {"code":N,"reason":"..."}: the reason cut as a close frame's would be,
 * escaped for JSON (it is the admin's text). */
static void ws_conn_sse_disconnect(struct ws_conn *c, uint16_t code, const char *reason)
{
	uint8_t cut[WS_CONTROL_MAX];
	size_t n = ws_close_payload_encode(cut, code, reason) - 2;
	char json[48 + 6 * WS_CONTROL_MAX], *o = json;
	uint8_t f[sizeof(json) + 64];
	size_t len;

	o += sprintf(o, "{\"code\":%u,\"reason\":\"", (unsigned)code);
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = cut[2 + i];

		if (ch == '"' || ch == '\\')
			o += sprintf(o, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			o += sprintf(o, "\\u%04x", ch);
		else
			*o++ = (char)ch;
	}
	o += sprintf(o, "\"}");
	len = sse_event_write(f, "disconnect", NULL, (const uint8_t *)json, (size_t)(o - json));
	ws_conn_put_text(c, f, len);
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	if (c->state != WS_OPEN)
		return;
	c->deadline_ms = clock_now_ms() + WS_CLOSE_GRACE_MS;
	if (c->format == MSG_SSE) {
		/* An event stream has no close message: hang up once what is
		 * queued is written (deferred: the caller may be iterating). */
		if (code >= 4000 && code <= 4999)
			ws_conn_sse_disconnect(c, code, reason);
		c->close_sent = code;
		c->state = WS_FLUSHING;
		bufferevent_disable(c->bev, EV_READ);
		/* With output queued, the write callback comes when it is
		 * written; a trigger now would hang up before that. */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
		return;
	}
	ws_conn_send_close(c, code, reason);
	c->state = WS_CLOSING;
}

/* Returns 1 if c was freed. */
static int ws_conn_on_event(struct ws_conn *c, const struct ws_event *ev)
{
	switch (ev->type) {
	case WS_EV_MESSAGE:
		if (ev->compressed) {
			const char *why = NULL;
			uint16_t code = ws_conn_compressed_end(c, &why);

			if (code != 0) {
				ws_conn_fail(c, code, why != NULL ? why : "bad compressed message");
				return 0;
			}
		}
		/* Clients have nothing to tell us in data frames: validated
		 * by the reader, then dropped. */
		log_debug("ws_message_ignored", "conn=%llu opcode=%u size=%llu",
		    (unsigned long long)c->id, ev->opcode, (unsigned long long)ev->size);
		return 0;
	case WS_EV_PING:
		if (c->state != WS_FLUSHING && c->close_sent == 0)
			ws_conn_pong(c, ev->payload, ev->payload_len);
		return 0;
	case WS_EV_PONG:
		c->ping_sent_ms = 0;
		return 0;
	case WS_EV_CLOSE:
		c->close_received = ev->code;
		if (c->close_sent == 0)
			ws_conn_send_close(c, ev->code, "");
		/* Handshake complete; the server closes TCP first (RFC 6455 7.1.1). */
		c->state = WS_FLUSHING;
		c->deadline_ms = clock_now_ms() + WS_CLOSE_GRACE_MS;
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
			ws_conn_free(c, "close_handshake");
			return 1;
		}
		return 0;
	case WS_EV_ERROR:
		ws_conn_fail(c, ev->code, ev->reason != NULL ? ev->reason : "protocol error");
		return 0;
	case WS_EV_NONE:
		break;
	}
	return 0;
}

static void ws_conn_readcb(struct bufferevent *bev, void *arg)
{
	struct ws_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);

	if (c->format == MSG_SSE) {
		/* An event stream's client has nothing more to say. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (c->state != WS_FLUSHING && evbuffer_get_length(in) > 0) {
		struct evbuffer_iovec v;
		struct ws_event ev;
		size_t used;

		/* What a client makes us write (pongs, a close) is bounded by
		 * what it reads: past the limit, stop reading until it has. */
		if (evbuffer_get_length(out) > c->gw->cfg->ws_send_queue_max) {
			c->read_paused = true;
			bufferevent_disable(bev, EV_READ);
			return;
		}

		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0)
			break;
		used = ws_reader_feed(&c->reader, v.iov_base, v.iov_len, &ev);
		evbuffer_drain(in, used);
		if (ev.type != WS_EV_NONE && ws_conn_on_event(c, &ev))
			return;
	}
	if (c->state == WS_FLUSHING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void ws_conn_writecb(struct bufferevent *bev, void *arg)
{
	struct ws_conn *c = arg;

	/* Called when the output buffer is empty. */
	c->nmarks = 0;
	if (c->state == WS_FLUSHING) {
		ws_conn_free(c, c->close_received ? "close_handshake" :
		    c->format == MSG_SSE ? "closed" : "failed");
		return;
	}
	if (c->pong_pending) {
		c->pong_pending = false;
		ws_conn_put_frame(c, WS_OP_PONG, c->pong->payload, c->pong->len);
	}
	if (c->resume == WR_REPLAYING && c->state == WS_OPEN)
		ws_conn_replay(c);
	if (c->read_paused) {
		c->read_paused = false;
		bufferevent_enable(bev, EV_READ);
		ws_conn_readcb(bev, c);
	}
}

static void ws_conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct ws_conn *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		ws_conn_free(c, (what & BEV_EVENT_EOF) ? "eof" : "socket_error");
}

static void ws_conn_mark(struct ws_conn *c, uint64_t now_ms)
{
	/* Coarse checkpoints keep the struct small; an age is overestimated by
	 * at most a quarter of ws_send_timeout, i.e. we close a little early. */
	uint64_t gran = c->gw->cfg->ws_send_timeout_ms / WS_MARKS;

	if (c->nmarks > 0 && (c->nmarks == WS_MARKS ||
	    now_ms - c->marks[c->nmarks - 1].t_ms < gran)) {
		c->marks[c->nmarks - 1].end = c->bytes_queued;
		return;
	}
	c->marks[c->nmarks].end = c->bytes_queued;
	c->marks[c->nmarks].t_ms = now_ms;
	c->nmarks++;
}

/* Keep only the rest of the frame being written (the first chain of the
 * output ends on a frame boundary: every frame is added whole), as a copy,
 * and let go of every shared frame behind it: their deliveries are acked now
 * instead of when this client finally reads or is dropped, and the client
 * still sees whole frames followed by the close. */
static void ws_conn_release_unsent(struct ws_conn *c)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer *keep = evbuffer_new();
	struct evbuffer_iovec v;
	size_t pending = evbuffer_get_length(out);

	if (keep == NULL || pending == 0)
		goto done;
	if (evbuffer_peek(out, -1, NULL, &v, 1) >= 1 && v.iov_len > 0)
		evbuffer_add(keep, v.iov_base, v.iov_len);
	/* A socket bufferevent keeps the start of its output frozen outside
	 * its own write callback (libevent does what we do here around each
	 * write); an OpenSSL one does not, so unfreeze only when refused. */
	if (evbuffer_drain(out, pending) < 0) {
		evbuffer_unfreeze(out, 1);
		if (evbuffer_drain(out, pending) < 0) {
			evbuffer_freeze(out, 1);
			goto done;
		}
		evbuffer_freeze(out, 1);
	}
	evbuffer_add_buffer(out, keep);
	c->bytes_queued -= pending - evbuffer_get_length(out);
done:
	if (keep != NULL)
		evbuffer_free(keep);
	c->nmarks = 0;
}

static void ws_conn_slow(struct ws_conn *c, const char *why, size_t pending)
{
	uint64_t grace = (uint64_t)c->gw->cfg->ws_send_timeout_ms * 2;

	log_warn("ws_slow_client", "conn=%llu why=%s pending_bytes=%zu",
	    (unsigned long long)c->id, why, pending);
	stats_add(&c->gw->stats->slow_disconnects, 1);
	ws_conn_release_unsent(c);
	ws_conn_close(c, WS_CLOSE_TRY_AGAIN, "client reads too slowly");
	/* Nothing shared is held any more, only this client's socket and at
	 * most one frame: a slow reader gets twice ws_send_timeout to read the
	 * frames it has and the close, then its slot is given back. */
	if (grace < WS_CLOSE_GRACE_MS)
		grace = WS_CLOSE_GRACE_MS;
	if (grace > 30000)
		grace = 30000;
	c->deadline_ms = clock_now_ms() + grace;
}

int ws_conn_send(struct ws_conn *c, struct msg *m, uint64_t now_ms, uint32_t pass)
{
	bool direct = c->direct_pass != pass;
	struct evbuffer *out;
	size_t pending, sent = 0, len;
	const uint8_t *frame;

	/* Not live yet: a replaying client finds this one in the history. */
	if (c->state != WS_OPEN || c->resume != WR_LIVE)
		return 0;
	if ((frame = msg_bytes(m, c->format, &len)) == NULL)
		return 0;
	out = bufferevent_get_output(c->bev);
	pending = evbuffer_get_length(out);
	/* What the client left unread from earlier passes decides; frames of
	 * this pass are written with one writev when it ends, so a burst is
	 * not a slow reader (a pass takes at most READY_BATCH frames, shared,
	 * not copied).  One frame is always accepted by an idle writer. */
	if (direct)
		c->pass_backlog = pending;
	if (c->pass_backlog > 0 && c->pass_backlog + len > c->gw->cfg->ws_send_queue_max) {
		ws_conn_slow(c, "queue_full", pending);
		return 0;
	}
	c->bytes_queued += len;
	/* Counted as sent: each connection's own format (raw, enveloped,
	 * compressed, an event). */
	stats_add(&c->gw->stats->bytes_out, len);
	/* Nothing queued ahead: hand the frame to the kernel now.  One send()
	 * instead of arming a write event, waiting a loop turn, writev() and
	 * disarming; and the frame counts as written at once. */
	c->direct_pass = pass;
	if (direct && pending == 0 && !c->tls) {
		ssize_t n = send(bufferevent_getfd(c->bev), frame, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n == (ssize_t)len) {
			msg_observe_written(m, clock_now_ns());
			return 1;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return 1;	/* the socket is gone: libevent reports it next */
		if (n > 0)
			sent = (size_t)n;
	}
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	if (evbuffer_add_reference(out, frame + sent, len - sent, msg_release, m) < 0) {
		msg_release(frame, len, m);
		return 0;
	}
	ws_conn_want_write(c);
	ws_conn_mark(c, now_ms);
	return 1;
}

void ws_conn_sweep(struct ws_conn *c, uint64_t now_ms)
{
	const struct config *cfg = c->gw->cfg;
	size_t pending;
	uint64_t written;

	if (c->state != WS_OPEN) {
		if (now_ms >= c->deadline_ms)
			ws_conn_free(c, c->state == WS_CLOSING ? "close_timeout" : "flush_timeout");
		return;
	}
	if (c->expires_ms != 0 && now_ms >= c->expires_ms) {
		log_info("ws_token_expired", "conn=%llu", (unsigned long long)c->id);
		ws_conn_close(c, WS_CLOSE_POLICY, "token expired");
		return;
	}
	if (c->ping_sent_ms != 0 && now_ms - c->ping_sent_ms >= cfg->ws_pong_timeout_ms) {
		ws_conn_free(c, "pong_timeout");
		return;
	}
	pending = evbuffer_get_length(bufferevent_get_output(c->bev));
	written = c->bytes_queued - pending;
	while (c->nmarks > 0 && c->marks[0].end <= written) {
		memmove(&c->marks[0], &c->marks[1], (size_t)(c->nmarks - 1) * sizeof(c->marks[0]));
		c->nmarks--;
	}
	if (c->nmarks > 0 && now_ms - c->marks[0].t_ms >= cfg->ws_send_timeout_ms) {
		ws_conn_slow(c, "send_timeout", pending);
		return;
	}
	if (now_ms >= c->next_ping_ms && c->format == MSG_SSE) {
		/* A comment: proxies see traffic; a dead peer shows as an error
		 * on a later write. */
		ws_conn_put_text(c, (const uint8_t *)SSE_KEEPALIVE, sizeof(SSE_KEEPALIVE) - 1);
		c->next_ping_ms = now_ms + cfg->ws_ping_interval_ms;
	} else if (now_ms >= c->next_ping_ms) {
		uint8_t payload[8];
		uint64_t v = now_ms;

		for (int i = 7; i >= 0; i--, v >>= 8)
			payload[i] = (uint8_t)v;
		ws_conn_put_frame(c, WS_OP_PING, payload, sizeof(payload));
		if (c->ping_sent_ms == 0)
			c->ping_sent_ms = now_ms;
		c->next_ping_ms = now_ms + cfg->ws_ping_interval_ms;
	}
}

/* ---- notifyd.v2: ids, resuming ------------------------------------------ */

static const char *ws_conn_newest_id(const struct ws_conn *c)
{
	const struct hist_entry *e = c->gw->hist != NULL ? history_newest(c->gw->hist) : NULL;

	return e != NULL ? e->id : NULL;
}

/* Live from here: say so, with the position the client keeps.  Over SSE
 * as named events, hello and recovered, carrying the same JSON and the id
 * (EventSource keeps it as its last event id). */
static void ws_conn_go_live(struct ws_conn *c, const char *reason, bool recovered)
{
	uint8_t f[ENVELOPE_STATUS_MAX + MSG_ID_MAX + 64];
	const char *id = ws_conn_newest_id(c);
	size_t n = 0;

	c->resume = WR_LIVE;
	if (c->format != MSG_SSE) {
		n = !recovered ? envelope_hello(f, id) : envelope_recovered(f, reason, c->replayed, id);
	} else {
		char json[ENVELOPE_STATUS_MAX];
		size_t j = !recovered ? envelope_hello_json(json, id) : envelope_recovered_json(json, reason, c->replayed, id);
		if (j > 0)
			n = sse_event_write(f, !recovered ? "hello" : "recovered", id, (const uint8_t *)json, j);
	}
	ws_conn_put_text(c, f, n);
}

static void ws_conn_recovery_done(struct ws_conn *c, enum ws_recovery outcome, const char *reason)
{
	stats_add(&c->gw->stats->recoveries[outcome], 1);
	log_info("ws_recovery", "conn=%llu outcome=%s replayed=%llu", (unsigned long long)c->id,
	    reason != NULL ? reason : "recovered", (unsigned long long)c->replayed);
	ws_conn_go_live(c, reason, true);
}

static bool ws_conn_replay_one(void *arg, struct hist_entry *e)
{
	struct ws_conn *c = arg;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (c->format == MSG_SSE) {
		/* Copied: a resume is rare, its events are built per client. */
		size_t blen, n;
		const uint8_t *body = envelope_message_body(e->frame, e->frame_len, strlen(e->id), &blen);
		struct evbuffer_iovec v;

		n = sse_event_len(NULL, e->id, body, blen);
		if (evbuffer_reserve_space(out, (ev_ssize_t)n, &v, 1) < 1)
			return false;
		v.iov_len = sse_event_write(v.iov_base, NULL, e->id, body, blen);
		evbuffer_commit_space(out, &v, 1);
		c->bytes_queued += n;
	} else {
		hist_entry_ref(e);
		if (evbuffer_add_reference(out, e->frame, e->frame_len, hist_entry_release, e) < 0) {
			hist_entry_unref(e);
			return false;
		}
		c->bytes_queued += e->frame_len;
	}
	c->replayed++;
	/* Half the queue per turn: the rest when the client has read it. */
	return evbuffer_get_length(out) < c->gw->cfg->ws_send_queue_max / 2;
}

static void ws_conn_replay(struct ws_conn *c)
{
	enum hist_replay r = history_replay(c->gw->hist, c->links.user->id, c->links.user->id_len,
	    &c->replay_after, ws_conn_replay_one, c);

	ws_conn_want_write(c);
	ws_conn_mark(c, clock_now_ms());
	if (r == HIST_REPLAY_DONE)
		ws_conn_recovery_done(c, WS_RECOVERED, NULL);
	else if (r == HIST_REPLAY_LOST)
		ws_conn_recovery_done(c, WS_RECOVERY_TOO_OLD, hist_outcome_name(HIST_TOO_OLD));
}

/* A notifyd.v2 client once the history can serve it: resume after since,
 * or say hello. */
static void ws_conn_resume(struct ws_conn *c, const char *since)
{
	struct history *h = c->gw->hist;
	enum hist_outcome o;

	if (since == NULL) {
		ws_conn_go_live(c, NULL, false);
		return;
	}
	if (h == NULL) {
		ws_conn_recovery_done(c, WS_RECOVERY_UNAVAILABLE, "unavailable");
		return;
	}
	if (history_ahead(h, since, strlen(since))) {
		/* Maybe given out by an instance that has read further. */
		uint64_t now = clock_now_ms();

		if (c->wait_until_ms == 0)
			c->wait_until_ms = now + WS_RESUME_WAIT_MS;
		if (now < c->wait_until_ms && ws_conn_wait(c, since) == 0)
			return;
	}
	o = history_since(h, since, strlen(since), c->links.user->id, c->links.user->id_len,
	    &c->replay_after);
	if (o != HIST_RESUMABLE) {
		ws_conn_recovery_done(c, (enum ws_recovery)o, hist_outcome_name(o));
		return;
	}
	c->resume = WR_REPLAYING;
	ws_conn_replay(c);
}

static struct ws_conn *ws_conn_from_links(struct conn_links *l)
{
	return (struct ws_conn *)(void *)l;
}

uint32_t ws_conn_send_user(struct gateway *gw, const char *id, size_t len, struct msg *m,
    uint64_t now_ms, uint32_t pass)
{
	struct user_entry *u = registry_find(&gw->reg, id, len);
	uint32_t n = 0;

	struct conn_links *l;

	if (u == NULL)
		return 0;
	for (l = LIST_FIRST(&u->conns); l != NULL; l = LIST_NEXT(l, mates))
		n += (uint32_t)ws_conn_send(ws_conn_from_links(l), m, now_ms, pass);
	return n;
}

uint32_t ws_conn_send_all(struct gateway *gw, struct msg *m, uint64_t now_ms, uint32_t pass)
{
	struct conn_links *l;
	uint32_t n = 0;

	for (l = LIST_FIRST(&gw->reg.all); l != NULL; l = LIST_NEXT(l, all))
		n += (uint32_t)ws_conn_send(ws_conn_from_links(l), m, now_ms, pass);
	return n;
}

void ws_conn_sweep_all(struct gateway *gw, uint64_t now_ms)
{
	struct conn_links *l = LIST_FIRST(&gw->reg.all);

	while (l != NULL) {
		struct conn_links *next = LIST_NEXT(l, all);	/* sweep may free l */

		ws_conn_sweep(ws_conn_from_links(l), now_ms);
		l = next;
	}
}

void ws_conn_close_all(struct gateway *gw, uint16_t code, const char *reason)
{
	struct conn_links *l;

	for (l = LIST_FIRST(&gw->reg.all); l != NULL; l = LIST_NEXT(l, all))
		ws_conn_close(ws_conn_from_links(l), code, reason);
}

static void ws_conn_describe(const struct ws_conn *c, struct ws_conn_info *i, char *addr, size_t alen)
{
	char *a = NULL;
	ev_uint16_t port = 0;

	evhttp_connection_get_peer(c->evcon, &a, &port);
	snprintf(addr, alen, "%s", a != NULL ? a : "?");
	i->id = c->id;
	i->transport = c->format == MSG_SSE ? "sse" : "websocket";
	i->format = c->format == MSG_SSE ? "sse" : (c->format == MSG_V2 || c->format == MSG_V2_Z) ? "notifyd.v2" : "raw";
	i->compressed = c->format == MSG_RAW_Z || c->format == MSG_V2_Z;
	i->since_ms = c->opened_wall_ms;
	i->address = addr;
	i->jti = c->jti != NULL ? c->jti : "";
	i->iat = c->iat;
}

void ws_conn_each(struct gateway *gw, const char *user, size_t len,
    void (*fn)(void *arg, const struct ws_conn_info *i), void *arg)
{
	struct user_entry *u = user != NULL ? registry_find(&gw->reg, user, len) : NULL;
	struct conn_links *l;
	struct ws_conn_info info;
	char addr[PEER_ADDR_MAX + 1];

	if (user != NULL && u == NULL)
		return;
	for (l = u != NULL ? LIST_FIRST(&u->conns) : LIST_FIRST(&gw->reg.all); l != NULL;
	    l = u != NULL ? LIST_NEXT(l, mates) : LIST_NEXT(l, all)) {
		const struct ws_conn *c = ws_conn_from_links(l);

		if (c->state != WS_OPEN)
			continue;
		ws_conn_describe(c, &info, addr, sizeof(addr));
		fn(arg, &info);
	}
}

uint32_t ws_conn_close_matching(struct gateway *gw, const char *user, size_t len,
    bool (*match)(void *arg, const struct ws_conn_info *i), void *arg, uint16_t code, const char *reason)
{
	struct user_entry *u = user != NULL ? registry_find(&gw->reg, user, len) : NULL;
	struct conn_links *l;
	struct ws_conn_info info;
	char addr[PEER_ADDR_MAX + 1];
	uint32_t n = 0;

	if (user != NULL && u == NULL)
		return 0;
	/* ws_conn_close only marks state: the lists stay as they are. */
	for (l = u != NULL ? LIST_FIRST(&u->conns) : LIST_FIRST(&gw->reg.all); l != NULL;
	    l = u != NULL ? LIST_NEXT(l, mates) : LIST_NEXT(l, all)) {
		struct ws_conn *c = ws_conn_from_links(l);

		if (c->state != WS_OPEN)
			continue;
		ws_conn_describe(c, &info, addr, sizeof(addr));
		if (match != NULL && !match(arg, &info))
			continue;
		ws_conn_close(c, code, reason);
		n++;
	}
	return n;
}

void ws_conn_resume_waiting(struct gateway *gw)
{
	struct conn_links *l;

	if (gw->resumes_waiting == 0 || (gw->hist != NULL && !history_live(gw->hist)))
		return;
	for (l = LIST_FIRST(&gw->reg.all); l != NULL && gw->resumes_waiting > 0; l = LIST_NEXT(l, all)) {
		struct ws_conn *c = ws_conn_from_links(l);
		char *since = c->since;

		if (c->resume != WR_WAITING)
			continue;
		c->since = NULL;
		c->resume = WR_LIVE;
		gw->resumes_waiting--;
		if (c->state == WS_OPEN)
			ws_conn_resume(c, since);	/* may wait again */
		free(since);
	}
}

void ws_conn_free_all(struct gateway *gw, const char *why)
{
	while (!LIST_EMPTY(&gw->reg.all))
		ws_conn_free(ws_conn_from_links(LIST_FIRST(&gw->reg.all)), why);
}
