/* wsload - WebSocket load client for notifyd, nchan and RabbitMQ Web-STOMP.
 *
 * Opens N WebSocket connections (libevent bufferevents, our own minimal
 * RFC 6455 client: handshake, unmasked server frames, masked client
 * frames), spread over source addresses 127.0.0.x so that the ephemeral
 * port range is no limit, assigns them to users, and measures the connect
 * rate, the server's RSS per connection (VmRSS of --server-pids before and
 * after), and for every message received: latency from the publisher's
 * timestamp, loss, duplicates and order violations per connection (that is,
 * per user), and for broadcasts the time until every connection had it.
 *
 * Protocols: plain WebSocket text frames (notifyd, nchan) or STOMP 1.2 over
 * WebSocket (Web-STOMP: CONNECT, SUBSCRIBE /exchange/notifications/user.<id>
 * and .../broadcast, MESSAGE frames), or Server-Sent Events (--sse: GET
 * with Accept: text/event-stream over HTTP/1.1, close-delimited or chunked;
 * every unnamed event's data lines are one message, named events such as
 * notifyd's "hello" and ":" comments are counted apart).
 *
 * --deflate offers permessage-deflate (RFC 7692, client_no_context_takeover)
 * and inflates what arrives (raw inflate of the payload + 00 00 ff ff), so
 * that latency includes the inflate and rx_wire_bytes (frame headers and
 * payloads as received, counted while the run is on) against
 * rx_payload_bytes (the messages after inflating) show what compression
 * saved.  Without server_no_context_takeover in the answer a connection
 * keeps its own inflater; with it, one per process serves all.
 *
 * With --procs P the connections are shared by P forked processes (each can
 * hold about RLIMIT_NOFILE sockets); the parent merges their results and
 * prints one JSON line on stdout.
 *
 * Sequence: connect all -> (settle) -> read server RSS -> write --ready-file
 * -> receive until the expected messages arrived, --idle-exit seconds pass
 * without a message, or --duration ends -> print results.
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define PROG "wsload"
#define MAX_FRAME (1u << 20)
#define NSTATUS 600

enum proto { PROTO_WS, PROTO_STOMP, PROTO_SSE };
enum cstate { C_IDLE, C_HANDSHAKE, C_STOMP_CONNECT, C_STOMP_SUB, C_READY, C_DONE };

/* SSE over chunked transfer coding: where the de-chunker is. */
enum chunk_state { CH_SIZE, CH_DATA, CH_CRLF };

struct win {
	int64_t last;		/* highest sequence seen, -1 none */
	uint64_t bits;		/* bit d: last - d seen */
};

struct conn {
	struct bufferevent *bev;
	uint32_t idx;		/* global connection number */
	uint32_t user;
	uint8_t state;
	struct win uni, bc;
	uint64_t unique;	/* unique messages received */
	unsigned char *frag;	/* continuation buffer */
	size_t frag_len;
	uint32_t in_seen;	/* input bytes already counted in rx_wire_bytes */
	uint8_t deflate;	/* permessage-deflate agreed */
	uint8_t frag_z;		/* the fragmented message in frag is compressed */
	uint8_t chunked;	/* SSE: Transfer-Encoding: chunked */
	uint8_t chunk_state;
	uint32_t chunk_left;
	z_stream *zs;		/* own inflater: the server keeps its context */
	struct evbuffer *sse;	/* SSE: the de-chunked stream (chunked only) */
};

struct opts {
	enum proto proto;
	const char *target;
	const char *host;
	int port;
	const char *path;
	long conns;
	long users;		/* 0: derived */
	long per_user;		/* 0: not used */
	long src_base, src_count;
	long concurrency;
	double connect_timeout, stall_timeout;
	long procs;
	int sub_user, sub_bcast;
	const char *login, *passcode, *vhost, *exchange;
	const char *server_pids;
	double settle;
	const char *ready_file;
	double hold;
	long expect_unicast, expect_bcast, unicast_users;
	double duration;
	double idle_exit;
	const char *label;
	const char *user_prefix;
	const char *jwt_secret;	/* HS256 tokens, sent as Authorization: Bearer */
	int sse;		/* --sse: Server-Sent Events instead of WebSocket */
	int deflate;		/* --deflate: offer permessage-deflate */
};

/* What one process sends back to the parent. */
struct result {
	uint64_t wanted, connected, failed, closed_after_ready, server_close;
	uint64_t first_start_ns, last_ready_ns;	/* realtime */
	uint64_t received, unique, dups, order, old, parse_errors, stomp_errors, pings;
	uint64_t uni_unique, bc_unique;
	uint64_t rx_wire_bytes, rx_payload_bytes, rx_msgs_z, deflate_agreed, inflate_errors;
	uint64_t sse_named, sse_comments;
	uint64_t min_ts, first_rx, last_rx;	/* realtime ns */
	uint64_t expected;
	uint64_t cpu_ns;	/* user + system time of the process */
	uint64_t status[NSTATUS];
	char first_error[256];
	struct hist uni, bc;
};

static struct opts o;
static struct event_base *base;
static struct sockaddr_in dst;
static struct conn *conns;		/* this process's connections */
static size_t nconns;			/* how many this process owns */
static size_t next_start, inflight, nready;
static struct result *R;
static uint32_t *bc_count;		/* per broadcast seq: connections that got it */
static uint64_t *bc_maxlat;		/* per broadcast seq: slowest delivery */
static int phase;			/* 0 connecting, 1 waiting for go, 2 running */
static uint64_t run_start_mono, last_rx_mono, last_progress_mono;
static int to_parent = -1, from_parent = -1;
static struct event *tick_ev, *go_ev;
static unsigned rng_state = 0x9e3779b9u;

static unsigned rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

static void set_error(const char *prefix, const char *a)
{
	if (R->first_error[0] == '\0')
		snprintf(R->first_error, sizeof(R->first_error), "%s%s", prefix, a);
}

static void user_name(char *buf, size_t len, uint32_t u)
{
	snprintf(buf, len, "%s%u", o.user_prefix, u);
}

static uint64_t expected_for_user(uint32_t u)
{
	uint64_t e = (uint64_t)o.expect_bcast;
	long uu = o.unicast_users;

	if (o.expect_unicast > 0 && uu > 0 && (long)u < uu)
		e += (uint64_t)(o.expect_unicast / uu) + ((long)u < o.expect_unicast % uu ? 1 : 0);
	return e;
}

/* ---- sending ------------------------------------------------------------ */

static void ws_send(struct conn *c, int opcode, const void *data, size_t len)
{
	unsigned char h[14];
	size_t hl = 0;
	unsigned char mask[4];
	unsigned char tmp[1024];
	unsigned r = rnd();
	struct evbuffer *out = bufferevent_get_output(c->bev);

	h[hl++] = (unsigned char)(0x80 | opcode);
	if (len < 126) {
		h[hl++] = (unsigned char)(0x80 | len);
	} else if (len < 65536) {
		h[hl++] = 0x80 | 126;
		h[hl++] = (unsigned char)(len >> 8);
		h[hl++] = (unsigned char)len;
	} else {
		h[hl++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
	}
	memcpy(mask, &r, 4);
	memcpy(h + hl, mask, 4);
	hl += 4;
	evbuffer_add(out, h, hl);
	for (size_t off = 0; off < len; off += sizeof(tmp)) {
		size_t n = len - off < sizeof(tmp) ? len - off : sizeof(tmp);

		for (size_t i = 0; i < n; i++)
			tmp[i] = ((const unsigned char *)data)[off + i] ^ mask[(off + i) & 3];
		evbuffer_add(out, tmp, n);
	}
}

static void stomp_send(struct conn *c, const char *frame)
{
	ws_send(c, 0x1, frame, strlen(frame) + 1);	/* includes the NUL */
}

/* ---- connection life ---------------------------------------------------- */

static void start_more(void);

static void conn_free(struct conn *c)
{
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	free(c->frag);
	c->frag = NULL;
	if (c->zs != NULL) {
		inflateEnd(c->zs);
		free(c->zs);
		c->zs = NULL;
	}
	if (c->sse != NULL) {
		evbuffer_free(c->sse);
		c->sse = NULL;
	}
	c->state = C_DONE;
}

static void conn_became_ready(struct conn *c)
{
	c->state = C_READY;
	last_progress_mono = now_mono_ns();
	nready++;
	inflight--;
	R->connected++;
	R->last_ready_ns = now_real_ns();
	start_more();
}

static void conn_failed(struct conn *c, int status, const char *why)
{
	int was_ready = c->state == C_READY;

	if (c->state == C_DONE)
		return;
	if (was_ready) {
		R->closed_after_ready++;
		nready--;
		set_error("closed after ready: ", why);
	} else {
		last_progress_mono = now_mono_ns();
		inflight--;
		R->failed++;
		if (status > 0 && status < NSTATUS)
			R->status[status]++;
		set_error("connect failed: ", why);
	}
	conn_free(c);
	if (!was_ready)
		start_more();
}

/* The handshake was answered with another status than the one wanted:
 * failed, with the status as its reason.  Returns -1. */
static int conn_refused(struct conn *c, int status)
{
	char why[80];

	snprintf(why, sizeof(why), "HTTP status %d", status);
	conn_failed(c, status, why);
	return -1;
}

/* ---- receiving ---------------------------------------------------------- */

static void win_note(struct win *w, int64_t s, struct conn *c, int *is_new)
{
	*is_new = 0;
	if (s > w->last) {
		int64_t shift = s - w->last;

		w->bits = shift >= 64 ? 0 : w->bits << shift;
		w->bits |= 1;
		w->last = s;
		*is_new = 1;
	} else if (s == w->last) {
		R->dups++;
	} else {
		int64_t d = w->last - s;

		if (d >= 64) {
			R->old++;	/* far out of order: counted as unique, cannot tell */
			R->order++;
			*is_new = 1;
		} else if (w->bits & (1ull << d)) {
			R->dups++;
		} else {
			w->bits |= 1ull << d;
			R->order++;
			*is_new = 1;
		}
	}
	(void)c;
}

static void on_message(struct conn *c, const char *p, size_t len)
{
	struct body_fields f = body_parse(p, len);
	uint64_t now = now_real_ns();
	uint64_t lat;
	int is_new;

	R->received++;
	if (!f.ok) {
		R->parse_errors++;
		return;
	}
	last_rx_mono = now_mono_ns();
	if (R->first_rx == 0)
		R->first_rx = now;
	R->last_rx = now;
	if (f.ts < R->min_ts)
		R->min_ts = f.ts;
	lat = now > f.ts ? now - f.ts : 0;
	if (f.broadcast) {
		win_note(&c->bc, f.seq, c, &is_new);
		if (!is_new)
			return;
		R->bc_unique++;
		hist_add(&R->bc, lat);
		if (f.seq >= 0 && f.seq < o.expect_bcast) {
			bc_count[f.seq]++;
			if (lat > bc_maxlat[f.seq])
				bc_maxlat[f.seq] = lat;
		}
	} else {
		win_note(&c->uni, f.seq, c, &is_new);
		if (!is_new)
			return;
		R->uni_unique++;
		hist_add(&R->uni, lat);
	}
	R->unique++;
	c->unique++;
}

static void stomp_subscribe(struct conn *c)
{
	char frame[512], user[160];
	int n = 0;

	user_name(user, sizeof(user), c->user);
	if (o.sub_user) {
		snprintf(frame, sizeof(frame), "SUBSCRIBE\nid:s%d\ndestination:/exchange/%s/user.%s\nack:auto\n%s\n",
		    n, o.exchange, user, o.sub_bcast ? "" : "receipt:r\n");
		stomp_send(c, frame);
		n++;
	}
	if (o.sub_bcast) {
		snprintf(frame, sizeof(frame), "SUBSCRIBE\nid:s%d\ndestination:/exchange/%s/broadcast\nack:auto\nreceipt:r\n\n",
		    n, o.exchange);
		stomp_send(c, frame);
	}
	c->state = C_STOMP_SUB;
}

/* One WebSocket text message of a STOMP connection: one or more frames. */
static void on_stomp(struct conn *c, const char *p, size_t len)
{
	const char *end = p + len;

	while (p < end) {
		const char *nul, *hdr_end;
		size_t flen;

		while (p < end && (*p == '\n' || *p == '\r'))	/* heart-beats */
			p++;
		if (p >= end)
			break;
		nul = memchr(p, '\0', (size_t)(end - p));
		flen = nul != NULL ? (size_t)(nul - p) : (size_t)(end - p);
		if (flen >= 8 && memcmp(p, "MESSAGE\n", 8) == 0) {
			hdr_end = memmem(p, flen, "\n\n", 2);
			if (hdr_end != NULL)
				on_message(c, hdr_end + 2, (size_t)(p + flen - (hdr_end + 2)));
			else
				R->parse_errors++;
		} else if (flen >= 10 && memcmp(p, "CONNECTED\n", 10) == 0) {
			if (c->state == C_STOMP_CONNECT)
				stomp_subscribe(c);
		} else if (flen >= 8 && memcmp(p, "RECEIPT\n", 8) == 0) {
			if (c->state == C_STOMP_SUB)
				conn_became_ready(c);
		} else if (flen >= 6 && memcmp(p, "ERROR\n", 6) == 0) {
			char msg[200];
			size_t n = flen < sizeof(msg) - 1 ? flen : sizeof(msg) - 1;

			memcpy(msg, p, n);
			msg[n] = '\0';
			for (size_t i = 0; i < n; i++)
				if (msg[i] == '\n')
					msg[i] = ' ';
			R->stomp_errors++;
			set_error("STOMP ", msg);
		} else {
			R->parse_errors++;
		}
		p += flen + 1;
	}
}

static void on_text(struct conn *c, const char *p, size_t len)
{
	if (o.proto == PROTO_STOMP)
		on_stomp(c, p, len);
	else
		on_message(c, p, len);
}

/* permessage-deflate: the message's payload + 00 00 ff ff, raw inflate
 * (RFC 7692 7.2.2).  One inflater per process, reset per message, when the
 * server compresses each message alone (server_no_context_takeover); the
 * connection's own otherwise.  Returns 0, or -1 (the error is counted). */
static z_stream *shared_zs;
static unsigned char *zbuf;
static size_t zcap;

static z_stream *new_inflater(void)
{
	z_stream *z = calloc(1, sizeof(*z));

	if (z == NULL || inflateInit2(z, -15) != Z_OK) {
		free(z);
		return NULL;
	}
	return z;
}

static int inflate_message(struct conn *c, const unsigned char *p, size_t len, const char **out, size_t *olen)
{
	static const unsigned char tail[4] = { 0x00, 0x00, 0xff, 0xff };
	z_stream *z = c->zs;
	size_t have = 0;
	int rc = Z_OK;

	if (z == NULL) {
		if (shared_zs == NULL)
			shared_zs = new_inflater();
		z = shared_zs;
		if (z == NULL)
			return -1;
		inflateReset(z);
	}
	if (zbuf == NULL) {
		zcap = 65536;
		zbuf = malloc(zcap);
		if (zbuf == NULL)
			return -1;
	}
	for (int part = 0; part < 2; part++) {
		z->next_in = (unsigned char *)(part == 0 ? p : tail);
		z->avail_in = (uInt)(part == 0 ? len : sizeof(tail));
		while (z->avail_in > 0) {
			if (have == zcap) {
				unsigned char *nb;

				if (zcap >= MAX_FRAME * 4u)
					return -1;
				nb = realloc(zbuf, zcap * 2);
				if (nb == NULL)
					return -1;
				zbuf = nb;
				zcap *= 2;
			}
			z->next_out = zbuf + have;
			z->avail_out = (uInt)(zcap - have);
			rc = inflate(z, Z_SYNC_FLUSH);
			have = zcap - z->avail_out;
			if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
				return -1;
			if (rc == Z_STREAM_END)
				break;
			if (rc == Z_BUF_ERROR && z->avail_out > 0)
				break;	/* no progress possible */
		}
	}
	*out = (const char *)zbuf;
	*olen = have;
	return 0;
}

/* A whole data message, compressed or not. */
static void on_data_message(struct conn *c, const unsigned char *p, size_t len, int compressed)
{
	if (compressed) {
		const char *m;
		size_t mlen;

		R->rx_msgs_z++;
		if (!c->deflate || inflate_message(c, p, len, &m, &mlen) != 0) {
			R->inflate_errors++;
			set_error("", c->deflate ? "inflate failed" : "RSV1 without permessage-deflate");
			return;
		}
		if (phase == 2)
			R->rx_payload_bytes += mlen;
		on_text(c, m, mlen);
		return;
	}
	if (phase == 2)
		R->rx_payload_bytes += len;
	on_text(c, (const char *)p, len);
}

/* ---- Server-Sent Events -------------------------------------------------- */

/* A line (p, n) of field name (with its colon): its value, one leading
 * space dropped, in (v, vn).  Returns 0 for a line of another field. */
static int sse_field(const char *p, size_t n, const char *name, const char **v, size_t *vn)
{
	size_t k = strlen(name);

	if (n < k || memcmp(p, name, k) != 0)
		return 0;
	*v = p + k;
	*vn = n - k;
	if (*vn > 0 && **v == ' ') {
		(*v)++;
		(*vn)--;
	}
	return 1;
}

/* One event (the lines before a blank line): unnamed (or "message") with
 * data is a notification; the data lines joined by \n. */
static void sse_event(struct conn *c, const char *p, size_t len)
{
	static char *data;
	static size_t cap;
	size_t dlen = 0;
	int named = 0, has_data = 0;
	const char *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char *v;
		size_t vn;

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0 && p[0] == ':') {
			R->sse_comments++;
		} else if (sse_field(p, n, "data:", &v, &vn)) {
			if (dlen + vn + 1 > cap) {
				size_t nc = (dlen + vn + 1) * 2;
				char *nd = realloc(data, nc);

				if (nd == NULL) {
					R->parse_errors++;
					return;
				}
				data = nd;
				cap = nc;
			}
			if (has_data)
				data[dlen++] = '\n';
			memcpy(data + dlen, v, vn);
			dlen += vn;
			has_data = 1;
		} else if (sse_field(p, n, "event:", &v, &vn)) {
			named = !(vn == 7 && memcmp(v, "message", 7) == 0);
		}
		p = nl != NULL ? nl + 1 : end;
	}
	if (named) {
		R->sse_named++;
		return;
	}
	if (has_data) {
		if (phase == 2)
			R->rx_payload_bytes += dlen;
		on_message(c, data, dlen);
	}
}

/* The events complete in buf; what is left waits for more bytes. */
static void sse_events(struct conn *c, struct evbuffer *buf)
{
	for (;;) {
		struct evbuffer_ptr pos = evbuffer_search(buf, "\n\n", 2, NULL);
		size_t n;
		unsigned char *p;

		if (pos.pos < 0) {
			if (evbuffer_get_length(buf) > MAX_FRAME)
				conn_failed(c, 0, "SSE event too long");
			return;
		}
		n = (size_t)pos.pos + 2;
		p = evbuffer_pullup(buf, (ev_ssize_t)n);
		if (p == NULL) {
			conn_failed(c, 0, "out of memory");
			return;
		}
		sse_event(c, (const char *)p, n - 1);
		evbuffer_drain(buf, n);
		if (c->state == C_DONE)
			return;
	}
}

/* Transfer-Encoding: chunked into c->sse. Returns -1 when the stream ended. */
static int sse_dechunk(struct conn *c, struct evbuffer *in)
{
	for (;;) {
		size_t avail = evbuffer_get_length(in);

		if (c->chunk_state == CH_DATA) {
			size_t n = avail < c->chunk_left ? avail : c->chunk_left;

			if (n == 0)
				return 0;
			evbuffer_remove_buffer(in, c->sse, n);
			c->chunk_left -= (uint32_t)n;
			if (c->chunk_left == 0)
				c->chunk_state = CH_CRLF;
		} else if (c->chunk_state == CH_CRLF) {
			if (avail < 2)
				return 0;
			evbuffer_drain(in, 2);
			c->chunk_state = CH_SIZE;
		} else {
			struct evbuffer_ptr pos = evbuffer_search(in, "\r\n", 2, NULL);
			char line[32];
			size_t n;
			unsigned long sz;

			if (pos.pos < 0)
				return avail > 64 ? -1 : 0;
			n = (size_t)pos.pos < sizeof(line) - 1 ? (size_t)pos.pos : sizeof(line) - 1;
			evbuffer_copyout(in, line, n);
			line[n] = '\0';
			evbuffer_drain(in, (size_t)pos.pos + 2);
			sz = strtoul(line, NULL, 16);
			if (sz == 0)
				return -1;	/* last chunk: the stream ended */
			c->chunk_left = (uint32_t)sz;
			c->chunk_state = CH_DATA;
		}
	}
}

static void sse_read(struct conn *c, struct evbuffer *in)
{
	if (!c->chunked) {
		sse_events(c, in);
		return;
	}
	if (sse_dechunk(c, in) < 0) {
		conn_failed(c, 0, "SSE stream ended");
		return;
	}
	sse_events(c, c->sse);
}

/* Returns -1 when the connection was freed. */
static int parse_frames(struct conn *c, struct evbuffer *in)
{
	for (;;) {
		unsigned char h[14];
		size_t avail = evbuffer_get_length(in), hl = 2;
		uint64_t plen;
		int opcode, fin, masked, rsv1;
		unsigned char *p;

		if (avail < 2)
			return 0;
		evbuffer_copyout(in, h, avail < sizeof(h) ? avail : sizeof(h));
		fin = h[0] & 0x80;
		rsv1 = (h[0] & 0x40) != 0;
		opcode = h[0] & 0x0f;
		masked = h[1] & 0x80;
		plen = h[1] & 0x7f;
		if (plen == 126) {
			if (avail < 4)
				return 0;
			plen = ((uint64_t)h[2] << 8) | h[3];
			hl = 4;
		} else if (plen == 127) {
			if (avail < 10)
				return 0;
			plen = 0;
			for (int i = 0; i < 8; i++)
				plen = (plen << 8) | h[2 + i];
			hl = 10;
		}
		if (masked)
			hl += 4;
		if (plen > MAX_FRAME) {
			conn_failed(c, 0, "frame too large");
			return -1;
		}
		if (avail < hl + plen)
			return 0;
		p = evbuffer_pullup(in, (ev_ssize_t)(hl + plen));
		if (p == NULL) {
			conn_failed(c, 0, "out of memory");
			return -1;
		}
		if (masked)
			for (uint64_t i = 0; i < plen; i++)
				p[hl + i] ^= p[hl - 4 + (i & 3)];
		switch (opcode) {
		case 0x1:
		case 0x2:
			if (fin) {
				on_data_message(c, p + hl, plen, rsv1);
			} else {
				c->frag_z = (uint8_t)rsv1;
				free(c->frag);
				c->frag = malloc(plen ? plen : 1);
				if (c->frag == NULL) {
					conn_failed(c, 0, "out of memory");
					return -1;
				}
				memcpy(c->frag, p + hl, plen);
				c->frag_len = plen;
			}
			break;
		case 0x0: {
			unsigned char *nf;

			if (c->frag == NULL || c->frag_len + plen > MAX_FRAME) {
				conn_failed(c, 0, "bad continuation");
				return -1;
			}
			nf = realloc(c->frag, c->frag_len + plen + 1);
			if (nf == NULL) {
				conn_failed(c, 0, "out of memory");
				return -1;
			}
			c->frag = nf;
			memcpy(c->frag + c->frag_len, p + hl, plen);
			c->frag_len += plen;
			if (fin) {
				on_data_message(c, c->frag, c->frag_len, c->frag_z);
				free(c->frag);
				c->frag = NULL;
				c->frag_len = 0;
			}
			break;
		}
		case 0x8: {
			char why[64];
			unsigned code = plen >= 2 ? (unsigned)(p[hl] << 8 | p[hl + 1]) : 1005;

			ws_send(c, 0x8, p + hl, plen >= 2 ? 2 : 0);
			R->server_close++;
			snprintf(why, sizeof(why), "server closed with %u", code);
			evbuffer_drain(in, hl + plen);
			conn_failed(c, 0, why);
			return -1;
		}
		case 0x9:
			R->pings++;
			ws_send(c, 0xA, p + hl, plen);
			break;
		case 0xA:
			break;
		default:
			conn_failed(c, 0, "unknown opcode");
			return -1;
		}
		evbuffer_drain(in, hl + plen);
		if (c->state == C_DONE)
			return -1;
	}
}

static int parse_handshake(struct conn *c, struct evbuffer *in)
{
	struct evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	char line[64];
	int status = 0;
	size_t n;

	if (pos.pos < 0) {
		if (evbuffer_get_length(in) > 16384) {
			conn_failed(c, 0, "handshake response too long");
			return -1;
		}
		return 0;
	}
	n = evbuffer_copyout(in, line, sizeof(line) - 1);
	line[n] = '\0';
	if (sscanf(line, "HTTP/1.%*d %d", &status) != 1)
		status = 0;
	if (o.proto == PROTO_SSE || o.deflate) {
		/* The headers, lower-cased, for what was agreed. */
		char hdrs[16385];
		size_t hn = (size_t)pos.pos < sizeof(hdrs) - 1 ? (size_t)pos.pos : sizeof(hdrs) - 1;

		evbuffer_copyout(in, hdrs, hn);
		hdrs[hn] = '\0';
		for (size_t i = 0; i < hn; i++)
			if (hdrs[i] >= 'A' && hdrs[i] <= 'Z')
				hdrs[i] = (char)(hdrs[i] - 'A' + 'a');
		if (o.proto == PROTO_SSE) {
			if (status != 200)
				return conn_refused(c, status);
			evbuffer_drain(in, (size_t)pos.pos + 4);
			if (strstr(hdrs, "\r\ntransfer-encoding: chunked") != NULL) {
				c->chunked = 1;
				c->chunk_state = CH_SIZE;
				c->sse = evbuffer_new();
				if (c->sse == NULL) {
					conn_failed(c, 0, "out of memory");
					return -1;
				}
			}
			conn_became_ready(c);
			return 0;
		}
		if (status == 101 && strstr(hdrs, "\r\nsec-websocket-extensions:") != NULL &&
		    strstr(hdrs, "permessage-deflate") != NULL) {
			c->deflate = 1;
			R->deflate_agreed++;
			if (strstr(hdrs, "server_no_context_takeover") == NULL) {
				c->zs = new_inflater();
				if (c->zs == NULL) {
					conn_failed(c, 0, "inflateInit2");
					return -1;
				}
			}
		}
	}
	if (status != 101)
		return conn_refused(c, status);
	evbuffer_drain(in, (size_t)pos.pos + 4);
	if (o.proto == PROTO_STOMP) {
		char frame[512];

		snprintf(frame, sizeof(frame), "CONNECT\naccept-version:1.2\nhost:%s\nlogin:%s\npasscode:%s\n"
		    "heart-beat:0,0\n\n", o.vhost, o.login, o.passcode);
		stomp_send(c, frame);
		c->state = C_STOMP_CONNECT;
	} else {
		conn_became_ready(c);
	}
	return 0;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->state == C_HANDSHAKE) {
		if (parse_handshake(c, in) < 0 || c->state == C_HANDSHAKE)
			return;
		c->in_seen = 0;
	}
	/* Bytes as received (frames or the event stream), while the run is on. */
	if (phase == 2)
		R->rx_wire_bytes += evbuffer_get_length(in) - c->in_seen;
	if (o.proto == PROTO_SSE)
		sse_read(c, in);
	else if (parse_frames(c, in) < 0)
		return;
	if (c->state != C_DONE)
		c->in_seen = (uint32_t)evbuffer_get_length(in);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[96];

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF)
		snprintf(why, sizeof(why), "EOF");
	else
		snprintf(why, sizeof(why), "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	conn_failed(c, 0, why);
}

static size_t b64url(char *out, const unsigned char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o2 = 0, i;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o2++] = tab[v >> 18 & 63];
		out[o2++] = tab[v >> 12 & 63];
		out[o2++] = tab[v >> 6 & 63];
		out[o2++] = tab[v & 63];
	}
	if (n - i == 1) {
		out[o2++] = tab[in[i] >> 2];
		out[o2++] = tab[(in[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

		out[o2++] = tab[v >> 10 & 63];
		out[o2++] = tab[v >> 4 & 63];
		out[o2++] = tab[(v & 15) << 2];
	}
	out[o2] = '\0';
	return o2;
}

/* "Authorization: Bearer <HS256 token for user>\r\n", signed here, once per
 * connection, as an application server would have done it. */
static void jwt_header(char *out, size_t len, const char *user)
{
	char claims[256], tok[600];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t n;

	snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"exp\":%llu}", user,
	    (unsigned long long)(now_real_ns() / 1000000000u + 3600));
	/* {"alg":"HS256","typ":"JWT"} */
	n = (size_t)snprintf(tok, sizeof(tok), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.");
	n += b64url(tok + n, (const unsigned char *)claims, strlen(claims));
	HMAC(EVP_sha256(), o.jwt_secret, (int)strlen(o.jwt_secret), (const unsigned char *)tok, n, mac,
	    &maclen);
	tok[n++] = '.';
	b64url(tok + n, mac, maclen);
	snprintf(out, len, "Authorization: Bearer %s\r\n", tok);
}

static void conn_start(struct conn *c)
{
	struct sockaddr_in src;
	char req[1600], user[160], path[600], auth[700] = "";
	int fd, one = 1;
	unsigned char key[16];
	char key64[32];
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (R->first_start_ns == 0)
		R->first_start_ns = now_real_ns();
	inflight++;
	c->state = C_HANDSHAKE;
	c->uni.last = c->bc.last = -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		c->state = C_IDLE;
		conn_failed(c, 0, strerror(errno));
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	memset(&src, 0, sizeof(src));
	src.sin_family = AF_INET;
	src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(o.src_base + (long)(c->idx % (uint32_t)o.src_count)));
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		close(fd);
		conn_failed(c, 0, strerror(errno));
		return;
	}
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		conn_failed(c, 0, "bufferevent_socket_new");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ);

	user_name(user, sizeof(user), c->user);
	path_for_user(path, sizeof(path), o.path, user);
	for (int i = 0; i < 16; i += 4) {
		unsigned r = rnd();

		memcpy(key + i, &r, 4);
	}
	{
		int k = 0, i;

		for (i = 0; i + 2 < 16; i += 3) {
			uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];

			key64[k++] = b64[v >> 18 & 63];
			key64[k++] = b64[v >> 12 & 63];
			key64[k++] = b64[v >> 6 & 63];
			key64[k++] = b64[v & 63];
		}
		/* one byte left: 16 = 5*3 + 1 */
		key64[k++] = b64[key[15] >> 2];
		key64[k++] = b64[(key[15] & 3) << 4];
		key64[k++] = '=';
		key64[k++] = '=';
		key64[k] = '\0';
	}
	if (o.jwt_secret != NULL)
		jwt_header(auth, sizeof(auth), user);
	if (o.proto == PROTO_SSE)
		snprintf(req, sizeof(req),
		    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n%s\r\n",
		    path, o.host, o.port, auth);
	else
	snprintf(req, sizeof(req),
	    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	    "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s\r\n",
	    path, o.host, o.port, key64,
	    o.proto == PROTO_STOMP ? "Sec-WebSocket-Protocol: v12.stomp, v11.stomp, v10.stomp\r\n" : "",
	    o.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n" : "", auth);
	bufferevent_write(c->bev, req, strlen(req));
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		conn_failed(c, 0, strerror(errno));
		return;
	}
}

static void start_more(void)
{
	static int busy;

	if (busy)
		return;	/* a failing start calls us again: the loop below goes on */
	busy = 1;
	while (phase == 0 && next_start < nconns && inflight < (size_t)o.concurrency)
		conn_start(&conns[next_start++]);
	busy = 0;
}

/* ---- phases ------------------------------------------------------------- */

static uint64_t total_unique_expected(void)
{
	return R->expected;
}

static void finish(void)
{
	event_base_loopbreak(base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	static uint64_t connect_deadline;
	uint64_t now = now_mono_ns();

	(void)fd;
	(void)what;
	(void)arg;
	if (connect_deadline == 0)
		connect_deadline = now + (uint64_t)(o.connect_timeout * 1e9);
	if (last_progress_mono == 0)
		last_progress_mono = now;
	if (phase == 0) {
		/* Done, out of time, or stuck (a server at its limit that
		 * neither accepts nor refuses): stop connecting. */
		if ((next_start >= nconns && inflight == 0) || now >= connect_deadline ||
		    (double)(now - last_progress_mono) / 1e9 >= o.stall_timeout) {
			/* Give up on the stragglers (phase 1: nothing new starts). */
			phase = 1;
			for (size_t i = 0; i < next_start; i++) {
				struct conn *c = &conns[i];

				if (c->state != C_READY && c->state != C_DONE)
					conn_failed(c, 0, "connect timeout");
			}
			R->failed += nconns - next_start;
			if (write(to_parent, "R", 1) != 1)
				exit(1);
		}
		return;
	}
	if (phase == 2) {
		double el = (double)(now - run_start_mono) / 1e9;
		int want_msgs = o.expect_unicast > 0 || o.expect_bcast > 0;

		if (want_msgs && R->unique >= total_unique_expected())
			finish();
		else if (el >= o.duration)
			finish();
		else if (!want_msgs && el >= o.hold)
			finish();
		else if (want_msgs && last_rx_mono != 0 && (double)(now - last_rx_mono) / 1e9 >= o.idle_exit)
			finish();
	}
}

static void on_go(evutil_socket_t fd, short what, void *arg)
{
	char b;

	(void)what;
	(void)arg;
	if (read(fd, &b, 1) != 1) {
		finish();	/* parent gone */
		return;
	}
	phase = 2;
	run_start_mono = now_mono_ns();
}

static void child_run(long p)
{
	struct timeval tv = { 0, 20000 };
	size_t cap = 0;

	signal(SIGPIPE, SIG_IGN);
	rng_state ^= (unsigned)(getpid() * 2654435761u) ^ (unsigned)now_mono_ns();
	if (rng_state == 0)
		rng_state = 1;
	R = calloc(1, sizeof(*R));
	if (R == NULL)
		exit(1);
	hist_init(&R->uni);
	hist_init(&R->bc);
	R->min_ts = UINT64_MAX;
	cap = (size_t)((o.conns + o.procs - 1) / o.procs);
	conns = calloc(cap ? cap : 1, sizeof(*conns));
	if (o.expect_bcast > 0) {
		bc_count = calloc((size_t)o.expect_bcast, sizeof(*bc_count));
		bc_maxlat = calloc((size_t)o.expect_bcast, sizeof(*bc_maxlat));
	}
	if (conns == NULL || (o.expect_bcast > 0 && (bc_count == NULL || bc_maxlat == NULL)))
		exit(1);
	for (long i = p; i < o.conns; i += o.procs) {
		struct conn *c = &conns[nconns++];

		c->idx = (uint32_t)i;
		c->user = (uint32_t)(o.per_user > 0 ? i / o.per_user : i % o.users);
		R->expected += expected_for_user(c->user);
	}
	R->wanted = nconns;
	base = event_base_new();
	if (base == NULL)
		exit(1);
	tick_ev = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	go_ev = event_new(base, from_parent, EV_READ, on_go, NULL);
	event_add(tick_ev, &tv);
	event_add(go_ev, NULL);
	start_more();
	event_base_dispatch(base);
	/* Expected counts only for connections that are still up. */
	R->expected = 0;
	for (size_t i = 0; i < nconns; i++)
		if (conns[i].state == C_READY)
			R->expected += expected_for_user(conns[i].user);
	if (R->min_ts == UINT64_MAX)
		R->min_ts = 0;
	{
		struct rusage ru;

		if (getrusage(RUSAGE_SELF, &ru) == 0)
			R->cpu_ns = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
			    (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
	}
	{
		const char *b = (const char *)R;
		size_t left = sizeof(*R);

		if (write(to_parent, "D", 1) != 1)
			exit(1);
		while (left > 0) {
			ssize_t w = write(to_parent, b, left);

			if (w <= 0)
				exit(1);
			b += w;
			left -= (size_t)w;
		}
		for (long i = 0; i < o.expect_bcast; i += 4096) {
			size_t n = (size_t)(o.expect_bcast - i < 4096 ? o.expect_bcast - i : 4096);

			if (write(to_parent, bc_count + i, n * sizeof(*bc_count)) < 0 ||
			    write(to_parent, bc_maxlat + i, n * sizeof(*bc_maxlat)) < 0)
				exit(1);
		}
	}
	/* Leave without closing each socket: the kernel does it at exit. */
	_exit(0);
}

static int read_full(int fd, void *buf, size_t len)
{
	char *b = buf;

	while (len > 0) {
		ssize_t r = read(fd, b, len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		len -= (size_t)r;
	}
	return 0;
}

#define SYNOPSIS "[options]"

static const char *proto_name, *stomp_subs;

static const struct bench_opt opts[] = {
	OPT("target", 0, OPT_STR, &o.target, "notifyd|nchan|webstomp", "presets for --proto and --path"),
	OPT("proto", 0, OPT_STR, &proto_name, "ws|stomp|sse",
	    "plain WebSocket text frames, STOMP over WebSocket, or Server-Sent Events"),
	OPT("sse", 0, OPT_FLAG, &o.sse, NULL, "Server-Sent Events (--proto sse): notifyd /sse?userId={u}, nchan /sub/{u}"),
	OPT("deflate", 0, OPT_FLAG, &o.deflate, NULL,
	    "offer permessage-deflate (client_no_context_takeover) and inflate what arrives"),
	OPT("host", 0, OPT_STR, &o.host, "ADDR", "server (IPv4), default 127.0.0.1"),
	OPT("port", 0, OPT_INT, &o.port, "N", NULL),
	OPT("path", 0, OPT_STR, &o.path, "TEMPLATE", "request path; {u} is replaced by the user id"),
	OPT("conns", 'n', OPT_LONG, &o.conns, "N", "connections (default 1000)"),
	OPT("users", 0, OPT_LONG, &o.users, "U", "users; connection i belongs to user i % U (default N)"),
	OPT("per-user", 0, OPT_LONG, &o.per_user, "K", "K connections per user instead (connection i -> user i / K)"),
	OPT("user-prefix", 0, OPT_STR, &o.user_prefix, "S", "prefix of user ids (default none)"),
	OPT("src-base", 0, OPT_LONG, &o.src_base, "B", "source addresses 127.0.0.B .. 127.0.0.(B+C-1) (2, 200)"),
	OPT("src-count", 0, OPT_LONG, &o.src_count, "C", NULL),
	OPT("concurrency", 'c', OPT_LONG, &o.concurrency, "C", "handshakes in flight (default 1000)"),
	OPT("connect-timeout", 0, OPT_DOUBLE, &o.connect_timeout, "S",
	    "give up on connections not ready after S s (default 120)"),
	OPT("stall-timeout", 0, OPT_DOUBLE, &o.stall_timeout, "S",
	    "... or when none got ready or failed for S s (default 20)"),
	OPT("procs", 'j', OPT_LONG, &o.procs, "P", "processes sharing the connections (default 1)"),
	OPT("stomp-subs", 0, OPT_STR, &stomp_subs, "LIST", "user,broadcast (default both)"),
	OPT("stomp-login", 0, OPT_STR, &o.login, "L", "(guest)"),
	OPT("stomp-passcode", 0, OPT_STR, &o.passcode, "P", "(guest)"),
	OPT("stomp-vhost", 0, OPT_STR, &o.vhost, "V", "(/)"),
	OPT("exchange", 0, OPT_STR, &o.exchange, "X", "STOMP destination exchange (notifications)"),
	OPT("server-pids", 0, OPT_STR, &o.server_pids, "LIST",
	    "pids whose VmRSS is summed before and after connecting"),
	OPT("settle", 0, OPT_DOUBLE, &o.settle, "S", "wait after connecting before reading RSS (default 1)"),
	OPT("ready-file", 0, OPT_STR, &o.ready_file, "PATH", "created when connected (and RSS read)"),
	OPT("hold", 0, OPT_DOUBLE, &o.hold, "S", "with nothing expected: stay connected S s (default 0)"),
	OPT("expect-unicast", 0, OPT_LONG, &o.expect_unicast, "M",
	    "unicast messages the publisher sends round robin"),
	OPT("unicast-users", 0, OPT_LONG, &o.unicast_users, "U",
	    "users the publisher cycles through (default: users)"),
	OPT("expect-bcast", 0, OPT_LONG, &o.expect_bcast, "B", "broadcasts the publisher sends (seq 0..B-1)"),
	OPT("duration", 0, OPT_DOUBLE, &o.duration, "S", "longest run after ready (default 60)"),
	OPT("idle-exit", 0, OPT_DOUBLE, &o.idle_exit, "S", "stop after S s without a message (default 3)"),
	OPT("label", 0, OPT_STR, &o.label, "S", "copied into the JSON output"),
	OPT("jwt-secret", 0, OPT_STR, &o.jwt_secret, "S",
	    "send an HS256 token (sub = user id) as Authorization: Bearer"),
	OPT_END
};

/* --target's presets for what --proto and --path did not set. */
static void apply_target(void)
{
	static const struct {
		const char *target;
		enum proto proto;
		const char *path;
	} presets[] = {
		{ "notifyd", PROTO_WS, "/ws?userId={u}" },
		{ "nchan", PROTO_WS, "/sub/{u}" },
		{ "webstomp", PROTO_STOMP, "/ws" },
	};
	size_t i = 0;

	while (i < sizeof(presets) / sizeof(presets[0]) && strcmp(o.target, presets[i].target) != 0)
		i++;
	if (i == sizeof(presets) / sizeof(presets[0]))
		bench_usage(PROG, SYNOPSIS, opts);
	if (o.sse && proto_name == NULL)
		proto_name = "sse";
	if (proto_name == NULL)
		o.proto = presets[i].proto;
	else if (strcmp(proto_name, "ws") == 0)
		o.proto = PROTO_WS;
	else if (strcmp(proto_name, "stomp") == 0)
		o.proto = PROTO_STOMP;
	else if (strcmp(proto_name, "sse") == 0)
		o.proto = PROTO_SSE;
	else
		bench_usage(PROG, SYNOPSIS, opts);
	if (o.proto == PROTO_SSE && (o.deflate || strcmp(o.target, "webstomp") == 0))
		bench_usage(PROG, SYNOPSIS, opts);
	/* SSE: notifyd's /sse; nchan's location serves EventSource beside
	 * WebSocket, told apart by Accept: text/event-stream. */
	if (o.path == NULL)
		o.path = o.proto == PROTO_SSE && strcmp(o.target, "notifyd") == 0 ? "/sse?userId={u}" : presets[i].path;
	if (stomp_subs != NULL) {
		o.sub_user = strstr(stomp_subs, "user") != NULL;
		o.sub_bcast = strstr(stomp_subs, "broadcast") != NULL;
	}
}

int main(int argc, char **argv)
{
	int (*to_child)[2], (*from_child)[2];
	pid_t *pids;
	struct result *tot, *r;
	uint32_t *bcc = NULL, *tmpc = NULL;
	uint64_t *bcm = NULL, *tmpm = NULL;
	long rss_before, rss_after = -1;
	long nofile;
	uint64_t go_real = 0;

	o.host = "127.0.0.1";
	o.port = 8081;
	o.target = "notifyd";
	o.conns = 1000;
	o.src_base = 2;
	o.src_count = 200;
	o.concurrency = 1000;
	o.connect_timeout = 120;
	o.stall_timeout = 20;
	o.procs = 1;
	o.sub_user = o.sub_bcast = 1;
	o.login = o.passcode = "guest";
	o.vhost = "/";
	o.exchange = "notifications";
	o.settle = 1;
	o.duration = 60;
	o.idle_exit = 3;
	o.label = "";
	o.user_prefix = "";
	bench_options(PROG, SYNOPSIS, opts, argc, argv);
	apply_target();
	if (o.conns < 1 || o.procs < 1 || o.procs > 64 || o.src_count < 1 ||
	    o.src_base < 1 || o.src_base + o.src_count > 255 || o.concurrency < 1 ||
	    (o.proto == PROTO_STOMP && !o.sub_user && !o.sub_bcast))
		bench_usage(PROG, SYNOPSIS, opts);
	if (o.users == 0)
		o.users = o.per_user > 0 ? (o.conns + o.per_user - 1) / o.per_user : o.conns;
	if (o.unicast_users == 0)
		o.unicast_users = o.users;
	ipv4_dst(PROG, &dst, o.host, o.port);
	nofile = raise_nofile();
	if (nofile > 0 && (o.conns + o.procs - 1) / o.procs + 64 > nofile)
		fprintf(stderr, "wsload: warning: %ld connections per process, open files limited to %ld; "
		    "use --procs\n", (o.conns + o.procs - 1) / o.procs, nofile);
	signal(SIGPIPE, SIG_IGN);

	rss_before = rss_kb_of(o.server_pids);
	to_child = calloc((size_t)o.procs, sizeof(*to_child));
	from_child = calloc((size_t)o.procs, sizeof(*from_child));
	pids = calloc((size_t)o.procs, sizeof(*pids));
	if (to_child == NULL || from_child == NULL || pids == NULL)
		die(PROG, "out of memory");
	for (long p = 0; p < o.procs; p++) {
		if (pipe(to_child[p]) != 0 || pipe(from_child[p]) != 0)
			die(PROG, "pipe failed");
		fflush(NULL);
		pids[p] = fork();
		if (pids[p] < 0)
			die(PROG, "fork failed");
		if (pids[p] == 0) {
			for (long q = 0; q < p; q++) {
				close(to_child[q][1]);
				close(from_child[q][0]);
			}
			close(to_child[p][1]);
			close(from_child[p][0]);
			from_parent = to_child[p][0];
			to_parent = from_child[p][1];
			child_run(p);
		}
		close(to_child[p][0]);
		close(from_child[p][1]);
	}
	/* Wait until every process has connected (or given up). */
	for (long p = 0; p < o.procs; p++) {
		char b = 0;

		if (read_full(from_child[p][0], &b, 1) != 0 || b != 'R')
			fprintf(stderr, "wsload: process %ld failed while connecting\n", p);
	}
	if (o.server_pids != NULL) {
		usleep((useconds_t)(o.settle * 1e6));
		rss_after = rss_kb_of(o.server_pids);
	}
	go_real = now_real_ns();
	for (long p = 0; p < o.procs; p++)
		if (write(to_child[p][1], "G", 1) != 1)
			fprintf(stderr, "wsload: process %ld gone\n", p);
	touch_file(o.ready_file, "ready\n");

	tot = calloc(1, sizeof(*tot));
	r = calloc(1, sizeof(*r));
	if (o.expect_bcast > 0) {
		bcc = calloc((size_t)o.expect_bcast, sizeof(*bcc));
		bcm = calloc((size_t)o.expect_bcast, sizeof(*bcm));
		tmpc = calloc(4096, sizeof(*tmpc));
		tmpm = calloc(4096, sizeof(*tmpm));
	}
	if (tot == NULL || r == NULL || (o.expect_bcast > 0 && (!bcc || !bcm || !tmpc || !tmpm)))
		die(PROG, "out of memory");
	hist_init(&tot->uni);
	hist_init(&tot->bc);
	tot->min_ts = UINT64_MAX;
	int missing = 0;
	for (long p = 0; p < o.procs; p++) {
		char b = 0;

		if (read_full(from_child[p][0], &b, 1) != 0 || b != 'D' ||
		    read_full(from_child[p][0], r, sizeof(*r)) != 0) {
			fprintf(stderr, "wsload: no result from process %ld\n", p);
			missing++;
			continue;
		}
		for (long i = 0; i < o.expect_bcast; i += 4096) {
			size_t n = (size_t)(o.expect_bcast - i < 4096 ? o.expect_bcast - i : 4096);

			if (read_full(from_child[p][0], tmpc, n * sizeof(*tmpc)) != 0 ||
			    read_full(from_child[p][0], tmpm, n * sizeof(*tmpm)) != 0) {
				missing++;
				break;
			}
			for (size_t j = 0; j < n; j++) {
				bcc[i + (long)j] += tmpc[j];
				if (tmpm[j] > bcm[i + (long)j])
					bcm[i + (long)j] = tmpm[j];
			}
		}
		tot->wanted += r->wanted;
		tot->connected += r->connected;
		tot->failed += r->failed;
		tot->closed_after_ready += r->closed_after_ready;
		tot->server_close += r->server_close;
		if (r->first_start_ns && (tot->first_start_ns == 0 || r->first_start_ns < tot->first_start_ns))
			tot->first_start_ns = r->first_start_ns;
		if (r->last_ready_ns > tot->last_ready_ns)
			tot->last_ready_ns = r->last_ready_ns;
		tot->received += r->received;
		tot->unique += r->unique;
		tot->uni_unique += r->uni_unique;
		tot->bc_unique += r->bc_unique;
		tot->dups += r->dups;
		tot->order += r->order;
		tot->old += r->old;
		tot->parse_errors += r->parse_errors;
		tot->stomp_errors += r->stomp_errors;
		tot->pings += r->pings;
		tot->deflate_agreed += r->deflate_agreed;
		tot->rx_wire_bytes += r->rx_wire_bytes;
		tot->rx_payload_bytes += r->rx_payload_bytes;
		tot->rx_msgs_z += r->rx_msgs_z;
		tot->inflate_errors += r->inflate_errors;
		tot->sse_named += r->sse_named;
		tot->sse_comments += r->sse_comments;
		tot->expected += r->expected;
		tot->cpu_ns += r->cpu_ns;
		if (r->min_ts && r->min_ts < tot->min_ts)
			tot->min_ts = r->min_ts;
		if (r->first_rx && (tot->first_rx == 0 || r->first_rx < tot->first_rx))
			tot->first_rx = r->first_rx;
		if (r->last_rx > tot->last_rx)
			tot->last_rx = r->last_rx;
		for (int i = 0; i < NSTATUS; i++)
			tot->status[i] += r->status[i];
		if (tot->first_error[0] == '\0')
			memcpy(tot->first_error, r->first_error, sizeof(tot->first_error));
		hist_merge(&tot->uni, &r->uni);
		hist_merge(&tot->bc, &r->bc);
	}
	for (long p = 0; p < o.procs; p++)
		waitpid(pids[p], NULL, 0);
	if (tot->min_ts == UINT64_MAX)
		tot->min_ts = 0;

	/* ---- report ---- */
	{
		double cs = tot->last_ready_ns > tot->first_start_ns ?
		    (double)(tot->last_ready_ns - tot->first_start_ns) / 1e9 : 0;
		double span = tot->last_rx > tot->min_ts && tot->min_ts ? (double)(tot->last_rx - tot->min_ts) / 1e9 : 0;
		double rxspan = tot->last_rx > tot->first_rx ? (double)(tot->last_rx - tot->first_rx) / 1e9 : 0;
		struct hist all_reached;
		uint64_t complete = 0;
		long lost = (long)tot->expected - (long)tot->unique;
		int first = 1;

		hist_init(&all_reached);
		uint64_t open_at_end = tot->connected - tot->closed_after_ready;

		for (long i = 0; i < o.expect_bcast; i++)
			if (bcc[i] >= open_at_end && open_at_end > 0) {
				complete++;
				hist_add(&all_reached, bcm[i]);
			}
		printf("{\"tool\":\"wsload\",\"label\":\"%s\",\"target\":\"%s\",\"proto\":\"%s\",\"procs\":%ld,"
		    "\"conns_wanted\":%ld,\"users\":%ld,\"connected\":%" PRIu64 ",\"failed\":%" PRIu64
		    ",\"closed_after_ready\":%" PRIu64 ",\"server_closes\":%" PRIu64 ",",
		    o.label, o.target, o.proto == PROTO_STOMP ? "stomp" : o.proto == PROTO_SSE ? "sse" : "ws", o.procs,
		    o.conns, o.users,
		    tot->connected, tot->failed, tot->closed_after_ready, tot->server_close);
		printf("\"fail_status\":{");
		for (int i = 0; i < NSTATUS; i++)
			if (tot->status[i]) {
				printf("%s\"%d\":%" PRIu64, first ? "" : ",", i, tot->status[i]);
				first = 0;
			}
		printf("},\"connect_s\":%.4f,\"connect_rate\":%.1f,", cs, cs > 0 ? (double)tot->connected / cs : 0);
		printf("\"rss_before_kb\":%ld,\"rss_after_kb\":%ld,\"rss_per_conn_kb\":%.3f,",
		    rss_before, rss_after,
		    rss_before >= 0 && rss_after >= 0 && tot->connected > 0 ?
		    (double)(rss_after - rss_before) / (double)tot->connected : -1.0);
		printf("\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ",\"unique\":%" PRIu64 ",\"unicast\":%" PRIu64
		    ",\"bcast\":%" PRIu64 ",\"lost\":%ld,\"dups\":%" PRIu64 ",\"order_violations\":%" PRIu64
		    ",\"far_out_of_order\":%" PRIu64 ",\"parse_errors\":%" PRIu64 ",\"stomp_errors\":%" PRIu64
		    ",\"pings\":%" PRIu64 ",",
		    tot->expected, tot->received, tot->unique, tot->uni_unique, tot->bc_unique, lost < 0 ? 0 : lost,
		    tot->dups, tot->order, tot->old, tot->parse_errors, tot->stomp_errors, tot->pings);
		printf("\"rx_span_s\":%.4f,\"e2e_span_s\":%.4f,\"rx_rate\":%.1f,\"e2e_rate\":%.1f,",
		    rxspan, span, rxspan > 0 ? (double)tot->unique / rxspan : 0,
		    span > 0 ? (double)tot->unique / span : 0);
		printf("\"go_real_ns\":%" PRIu64 ",\"client_cpu_s\":%.3f,", go_real, (double)tot->cpu_ns / 1e9);
		printf("\"deflate_offered\":%s,\"deflate_agreed\":%" PRIu64 ",\"rx_wire_bytes\":%" PRIu64
		    ",\"rx_payload_bytes\":%" PRIu64 ",\"rx_msgs_compressed\":%" PRIu64 ",\"inflate_errors\":%" PRIu64
		    ",\"sse_named_events\":%" PRIu64 ",\"sse_comments\":%" PRIu64 ",",
		    o.deflate ? "true" : "false", tot->deflate_agreed, tot->rx_wire_bytes, tot->rx_payload_bytes,
		    tot->rx_msgs_z, tot->inflate_errors, tot->sse_named, tot->sse_comments);
		hist_json(stdout, "lat_unicast", &tot->uni);
		printf(",");
		hist_json(stdout, "lat_bcast", &tot->bc);
		printf(",\"bcast_all\":{\"broadcasts\":%ld,\"complete\":%" PRIu64 ",\"p50_ms\":%.4f,"
		    "\"p99_ms\":%.4f,\"max_ms\":%.4f},",
		    o.expect_bcast, complete, hist_quantile(&all_reached, 0.5) / 1e6,
		    hist_quantile(&all_reached, 0.99) / 1e6, (double)all_reached.max / 1e6);
		printf("\"first_error\":\"");
		for (const char *s = tot->first_error; *s; s++)
			if (*s == '"' || *s == '\\')
				printf("\\%c", *s);
			else if ((unsigned char)*s >= 0x20)
				putchar(*s);
		printf("\",\"missing_procs\":%d}\n", missing);
	}
	return missing ? 1 : 0;
}
