/* loop_fixture.h - the event loop of notifyd, without a broker, for the unit
 * tests of the modules that run on it (http_gate, http_server, http_push,
 * ws_conn, dispatch).
 *
 * fx_start() builds what main.c builds for the loop thread: a real
 * event_base, the configuration through the config module's own parser (the
 * text of a config file), a struct gateway, the HTTP server listening on a
 * free port of 127.0.0.1, the dispatcher and the push handler, and the real
 * queues between threads.  The threads themselves (consumer, workers,
 * publisher) are not started: the test plays them through the queues,
 * pushing ready items (built by worker_prepare(), as a worker would),
 * reading acks and push jobs, answering push results.
 *
 * Clients are raw non-blocking sockets registered on the same event_base,
 * so that one thread runs both sides: FX_WAIT() turns the loop until a
 * condition holds or a deadline passes (no fixed sleeps).  Everything a
 * client receives is kept in its buffer; the readers below take HTTP
 * answers and WebSocket frames off its front.
 */
#ifndef NOTIFYD_T_LOOP_FIXTURE_H
#define NOTIFYD_T_LOOP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"
#include "delivery.h"
#include "notifyd.h"
#include "stats.h"
#include "xqueue.h"

struct event;
struct fx_client;

struct fx {
	struct config cfg;
	struct stats stats;
	struct gateway gw;
	struct xqueue readyq;	/* workers -> loop: the test pushes here */
	struct xqueue ackq;	/* loop -> consumer: the test reads here */
	struct xqueue pushq;	/* loop -> publisher: the test reads here */
	struct xqueue resultq;	/* publisher -> loop: the test answers here */
	uint16_t port;
	struct event *wake;
	struct fx_client *clients;
};

/* Start the loop's modules with the configuration text conf ("key = value"
 * lines over the defaults; listen_address and listen_port are the
 * fixture's).  Returns 0, or -1 after printing why as a TAP comment. */
int fx_start(struct fx *f, const char *conf);

/* Free everything, as main.c does at exit (clients included). */
void fx_stop(struct fx *f);

/* One turn of the loop, waiting at most until end_ms (clock_now_ms()).
 * Returns false once end_ms has passed. */
bool fx_step(struct fx *f, uint64_t end_ms);

/* Turn the loop until cond holds or ms milliseconds have passed. */
#define FX_WAIT(f, ms, cond) do { \
		uint64_t fx_end_ = clock_now_ms() + (ms); \
		while (!(cond) && fx_step((f), fx_end_)) \
			continue; \
	} while (0)

/* Turn the loop for ms milliseconds: only to show that something does
 * NOT happen (a positive result never depends on it). */
void fx_run_for(struct fx *f, unsigned ms);

/* ---- raw clients ---------------------------------------------------- */

struct fx_client {
	struct fx *f;
	struct fx_client *next;
	int fd;
	struct event *ev;
	unsigned char *in;	/* received, not yet taken (NUL after) */
	size_t len;
	unsigned char *buf;	/* in = buf + off */
	size_t off, cap;
	bool eof;		/* the server closed (or reset) the connection */
	bool paused;		/* not reading: the kernel's buffers fill up */
};

/* Connect to the fixture's port.  rcvbuf > 0 sets SO_RCVBUF first (a small
 * one makes a slow reader quickly).  NULL on failure. */
struct fx_client *fx_connect(struct fx *f, int rcvbuf);

/* Send all n bytes (turning the loop while the socket is full).  Returns
 * 0, or -1 when the connection is gone or it took longer than 5 s. */
int fx_send(struct fx_client *c, const void *p, size_t n);
int fx_sends(struct fx_client *c, const char *s);

/* Stop or resume reading from the socket. */
void fx_pause(struct fx_client *c, bool paused);

/* Wait until the server has closed the connection. */
bool fx_wait_eof(struct fx_client *c, unsigned ms);

/* Close and free (also done by fx_stop for every client left). */
void fx_close(struct fx_client *c);

/* Wait until what was received contains text. */
bool fx_wait_text(struct fx_client *c, const char *text, unsigned ms);

/* Drop the first n received bytes. */
void fx_consume(struct fx_client *c, size_t n);

/* ---- HTTP ----------------------------------------------------------- */

#define FX_HEAD_MAX 4096
#define FX_BODY_MAX 16384

struct fx_resp {
	int status;		/* 0: no complete answer */
	bool got_continue;	/* an interim "100 Continue" came first */
	char head[FX_HEAD_MAX];	/* status line and headers, NUL-terminated */
	char body[FX_BODY_MAX];	/* NUL-terminated */
	size_t body_len;
};

/* Wait for one whole answer (head and Content-Length body) and take it off
 * the client's buffer.  Returns its status, or 0 (timeout, or closed first). */
int fx_read_response(struct fx_client *c, struct fx_resp *r, unsigned ms);

/* s made printable on one line (at most 120 bytes), for diagnostics; two
 * static buffers in turn. */
const char *fx_show(const char *s);

/* Connect, send raw, read the answer, close.  Returns the status or 0. */
int fx_request(struct fx *f, const char *raw, struct fx_resp *r);

/* Does the head have the line "name: value" (name case-insensitive)?
 * value NULL: any value. */
bool fx_has_header(const struct fx_resp *r, const char *name, const char *value);

/* ---- WebSocket ------------------------------------------------------ */

#define FX_WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define FX_WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* The upgrade request for query ("userId=u"), extra header lines (each
 * ending in \r\n) added; into buf. */
int fx_ws_request(char *buf, size_t len, const char *query, const char *extra);

/* Connect and upgrade as user (auth = none); NULL unless the answer was a
 * 101 with the right Sec-WebSocket-Accept. */
struct fx_client *fx_ws_open(struct fx *f, const char *user, int rcvbuf);

/* Send one masked frame with FIN set. */
int fx_ws_send(struct fx_client *c, uint8_t opcode, const void *payload, size_t len);
/* Encode it into out (at least len + 14 bytes); returns its length. */
size_t fx_ws_encode(uint8_t *out, uint8_t opcode, bool fin, const void *payload, size_t len);

struct fx_frame {
	uint8_t opcode;
	bool fin;
	bool masked;		/* a server must never mask */
	uint16_t code;		/* close: the code (0: none) */
	size_t len;
	uint8_t *payload;	/* malloc'd copy, NUL-terminated; fx_frame_free() */
};

/* Wait for one whole frame and take it off the buffer.  Returns 1, or 0
 * when none came within ms (or the connection closed first). */
int fx_ws_read(struct fx_client *c, struct fx_frame *fr, unsigned ms);
void fx_frame_free(struct fx_frame *fr);

/* ---- the other threads' ends of the queues --------------------------- */

/* What a worker does with a delivery: build the msg with worker_prepare()
 * from routing key and body, push it with seq.  Returns 0, -1 when the
 * worker would have rejected it. */
int fx_ready(struct fx *f, uint64_t seq, uint64_t tag, const char *routing_key, const char *body);
/* A rejected delivery: only its seq moves on. */
int fx_ready_rejected(struct fx *f, uint64_t seq);

/* A JSON object of about size bytes (at least 40) numbered n:
 * {"n":N,"pad":"xx..."}; malloc'd.  fx_body_n() reads N back (0: none). */
char *fx_body(unsigned n, size_t size);
unsigned fx_body_n(const uint8_t *payload);

/* Push messages of size bytes for routing_key (seq and tag from *seq,
 * counted up) one at a time, until stop(f) holds once the loop has taken
 * the last one, or max messages.  Acks taken meanwhile are added to *acked.
 * Returns how many messages were pushed. */
size_t fx_fill(struct fx *f, const char *routing_key, size_t size, uint64_t *seq, size_t max,
    size_t *acked, bool (*stop)(struct fx *f));

/* Take the acks the loop has queued (at most max). */
size_t fx_acks(struct fx *f, struct ack_item *out, size_t max);

/* Wait until n acks have come (appended to out from *have). */
bool fx_wait_acks(struct fx *f, struct ack_item *out, size_t *have, size_t n, unsigned ms);

#endif
