/* http_gate.h - every client connection from accept until it becomes a
 * WebSocket or closes: the limits evhttp does not have.
 *
 * Promises:
 * - Each request, headers and body, must arrive whole within
 *   handshake_timeout of the connection's accept or of the answer to the
 *   request before it, and its answer must be written within
 *   push_timeout + handshake_timeout; a connection past its deadline is
 *   closed.
 * - The head of a request is read by the gate before evhttp sees any of it.
 *   Framing that two parsers could read differently is answered 400
 *   (http_head.h); a body is let through only when the admit callback
 *   accepted the path, method and credentials; otherwise the gate answers
 *   (JSON error, Connection: close) without reading the body, and without
 *   "100 Continue".  A pipelined request is not served: the connection
 *   closes after the answer to the one before it.
 * - Counts connections per address (peer_table, max_connections_per_ip:
 *   503 at once) and connections not (yet) WebSocket (max_http_connections:
 *   the oldest one still sending a request is closed to make room).
 * - Holds no reference to a connection: its descriptor is freed the moment
 *   evhttp frees it (the gate learns it through evhttp's close callback).
 * Event-loop thread only.
 */
#ifndef NOTIFYD_HTTP_GATE_H
#define NOTIFYD_HTTP_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct config;
struct event_base;
struct evhttp_request;
struct http_head;
struct peer;
struct peer_table;
struct stats;
struct http_gate;

/* Why a request's body is not wanted. */
struct gate_refusal {
	int status;
	const char *why;
	const char *header;	/* one extra "Name: value" line, or NULL */
};

/* Called with the head of each request that carries a body.  Returns 0 to
 * let the body through, or fills r and returns its status. */
typedef int (*http_gate_admit_fn)(void *arg, const struct http_head *h, const char *addr,
    struct gate_refusal *r);

struct http_gate *http_gate_new(struct event_base *base, const struct config *cfg, struct stats *st,
    struct peer_table *peers, http_gate_admit_fn admit, void *admit_arg);

/* After evhttp has freed its connections (evhttp_free). */
void http_gate_free(struct http_gate *g);

/* A connection was accepted: bev is what evhttp's bevcb returns for it. */
void http_gate_watch(struct http_gate *g, struct bufferevent *bev);

/* A route's handler has req, whole: its answer has a deadline from now.
 * Returns true when req's body passed the admit callback (its credentials
 * need no second look). */
bool http_gate_begin(struct http_gate *g, struct evhttp_request *req);

/* req's connection becomes a WebSocket: the gate lets go of it and hands
 * over its address slot (NULL if it had none), which the new owner gives
 * back with peer_release() when the connection closes. */
struct peer *http_gate_release(struct http_gate *g, struct evhttp_request *req);

/* Close connections past their deadline.  Called on a periodic tick. */
void http_gate_tick(struct http_gate *g, uint64_t now_ms);

#endif
