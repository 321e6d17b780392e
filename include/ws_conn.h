/* ws_conn.h - one client connection after the upgrade, on the event loop:
 * WebSocket (plain or notifyd.v2), or an SSE event stream, which shares
 * everything here but the framing.
 *
 * Promises: takes the connection over from evhttp in place (libevent 2.1 has
 * no detach call; see shared/libraries.md), reads client frames through
 * ws_reader (answering pings, honouring the close handshake, failing the
 * connection with the right close code), pings on ws_ping_interval and drops
 * a peer that does not answer within ws_pong_timeout.
 * Writing: a notification's frame is referenced, not copied, into the
 * output buffer; the reference is released when libevent has written it to
 * the socket or freed the buffer, which is what lets the dispatcher ack.
 * A client whose unsent bytes would pass ws_send_queue_max, or whose oldest
 * unsent frame is older than ws_send_timeout, is closed with 1013: it gets
 * nothing new, its pending frames are released within a grace period, and
 * it never slows anyone else.  Everything a client makes us write counts
 * too: at most one pong waits (a newer ping replaces it), reading stops
 * while the output is over ws_send_queue_max, and ws_send_timeout applies
 * to control frames as to notifications.
 * Freed only by itself (peer gone, close done, sweep deadline) or by
 * ws_conn_free(); never while the caller iterates, since send and close only
 * mark state.
 */
#ifndef NOTIFYD_WS_CONN_H
#define NOTIFYD_WS_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conn_registry.h"

struct evhttp_request;
struct gateway;
struct msg;
struct peer;
struct ws_conn;
struct ws_deflate_params;

/* What a token says about the connection it opened (auth = jwt). */
struct ws_token {
	uint64_t expires_ms;	/* monotonic end, 0: never (close with 1008) */
	time_t iat;		/* 0: none */
	const char *jti;	/* NULL or "": none (copied) */
};

/* A connection as the admin API and revocations see it. */
struct ws_conn_info {
	uint64_t id;
	const char *transport;	/* "websocket" or "sse" */
	const char *format;	/* "raw", "notifyd.v2" or "sse" */
	bool compressed;
	uint64_t since_ms;	/* wall clock, when it opened */
	const char *address;	/* the client's address */
	const char *jti;	/* "" when none */
	time_t iat;
};

/* Answer 101 and take over the connection of req for user id.  key is the
 * client's Sec-WebSocket-Key (already validated); subprotocol, when not
 * NULL or "", is echoed in Sec-WebSocket-Protocol, and AUTH_JWT_SUBPROTOCOL_V2
 * makes this a notifyd.v2 connection (see envelope.h): it says hello, or
 * with since (the last id the client saw, else NULL) first replays what
 * it missed from gw->hist and says whether it could; deflate (NULL: none)
 * is the permessage-deflate agreement: notifications go compressed (once
 * per message, for every such connection) and the client's compressed
 * messages are inflated within ws_max_message_size; expires_ms (monotonic,
 * 0: never) is when the token runs out and the connection is closed with
 * 1008.  peer (may be NULL) is the address's slot in gw->peers: the
 * connection gives it back when it closes, and also when NULL is returned.
 * Returns the connection, or NULL (nothing was answered). */
struct ws_conn *ws_conn_upgrade(struct gateway *gw, struct evhttp_request *req,
    const char *key, const char *user, size_t user_len, const char *subprotocol,
    const struct ws_deflate_params *deflate, const char *since, const struct ws_token *tok,
    struct peer *peer);

/* The same for GET /sse: answer 200 with a text/event-stream (and
 * Access-Control-Allow-Origin: allow_origin when not NULL) and deliver
 * every notification as an event, with its id when there are ids; since
 * (the client's Last-Event-ID, else NULL) resumes as for notifyd.v2 and
 * the outcome is a "recovered" event.  Keep-alive comments every
 * ws_ping_interval; closing is hanging up once the output is written. */
struct ws_conn *ws_conn_open_sse(struct gateway *gw, struct evhttp_request *req,
    const char *user, size_t user_len, const char *allow_origin, const char *since,
    const struct ws_token *tok, struct peer *peer);

/* Queue msg's frame.  pass numbers the dispatcher's wake-ups: the first
 * frame a connection gets in a pass is written to the socket right away
 * when nothing is queued ahead of it; later ones of the same pass are
 * queued, so that libevent writes a backlog with one writev per connection.
 * Returns 1 when queued or written, 0 when the connection takes no more
 * data (closing, or it just overflowed and is being closed). */
int ws_conn_send(struct ws_conn *c, struct msg *m, uint64_t now_ms, uint32_t pass);

/* Start the close handshake with code (e.g. 1001 at shutdown).  An SSE
 * stream closed with an application code (4000-4999) first gets an
 * "event: disconnect" with {"code","reason"}, which tells a client not to
 * come back. */
void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);

/* Timers: pings, pong and close deadlines, the age of unsent frames.  May
 * free c. */
void ws_conn_sweep(struct ws_conn *c, uint64_t now_ms);

/* Close the TCP connection now. */
void ws_conn_free(struct ws_conn *c, const char *why);

/* The same over every connection (gw->reg), or every one of user id.
 * Send returns how many connections took m. */
uint32_t ws_conn_send_user(struct gateway *gw, const char *id, size_t len, struct msg *m,
    uint64_t now_ms, uint32_t pass);
uint32_t ws_conn_send_all(struct gateway *gw, struct msg *m, uint64_t now_ms, uint32_t pass);
void ws_conn_sweep_all(struct gateway *gw, uint64_t now_ms);
void ws_conn_close_all(struct gateway *gw, uint16_t code, const char *reason);

/* Visit the connections of user (NULL: every one). */
void ws_conn_each(struct gateway *gw, const char *user, size_t len,
    void (*fn)(void *arg, const struct ws_conn_info *i), void *arg);
/* Close those of user (NULL: every one) that match (NULL: all of them);
 * returns how many. */
uint32_t ws_conn_close_matching(struct gateway *gw, const char *user, size_t len,
    bool (*match)(void *arg, const struct ws_conn_info *i), void *arg, uint16_t code, const char *reason);
void ws_conn_free_all(struct gateway *gw, const char *why);
/* Serve the notifyd.v2 and SSE connections that wait for the history: for
 * the warm-up of a start to end, or to reach an id another instance gave
 * out (at most 5 s, then it is "unknown_epoch").  Cheap when none waits;
 * called after the history grows and from the sweep. */
void ws_conn_resume_waiting(struct gateway *gw);


#endif
