/* test_ws_conn.c - WebSocket connections after the upgrade, on a real loop
 * (no broker): the takeover (a frame sent with the handshake), pings and
 * pongs both ways, pong coalescing and the 1008 for a ping flood, protocol
 * errors with their close codes, the close handshake from either side,
 * and slow readers closed with 1013 (queue full, send timeout) without
 * holding back anyone's acks. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "loop_fixture.h"
#include "tap.h"
#include "ws_conn.h"

static int pings(struct fx_client *c, unsigned from, unsigned n)
{
	uint8_t *buf = malloc((size_t)n * 20), *o = buf;
	int rc;

	for (unsigned i = from; i < from + n; i++) {
		char p[12];
		int len = snprintf(p, sizeof(p), "p%u", i);

		o += fx_ws_encode(o, 0x9, true, p, (size_t)len);
	}
	rc = fx_send(c, buf, (size_t)(o - buf));	/* one write: one read */
	free(buf);
	return rc;
}

static void test_takeover(struct fx *f)
{
	struct fx_client *c = fx_connect(f, 0);
	uint8_t req[1024], ping[125];
	struct fx_resp r;
	struct fx_frame fr;
	int n = fx_ws_request((char *)req, sizeof(req), "userId=alice", NULL);

	/* The first frame may come in the same segment as the upgrade. */
	n += (int)fx_ws_encode(req + n, 0x9, true, "early", 5);
	fx_send(c, req, (size_t)n);
	fx_read_response(c, &r, 3000);
	ok(r.status == 101 && fx_has_header(&r, "Sec-WebSocket-Accept", FX_WS_ACCEPT) &&
	    fx_has_header(&r, "Upgrade", "websocket"), "upgrade: 101 with the accept key");
	ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0xA && strcmp((char *)fr.payload, "early") == 0 && !fr.masked,
	    "a ping sent with the handshake is answered");
	fx_frame_free(&fr);
	ok(registry_count(&f->gw.reg) == 1 && stats_get(&f->stats.ws_opened) == 1 &&
	    stats_get(&f->stats.http_connections) == 0, "registered; no longer an HTTP connection of the gate");

	/* Data frames from clients are read and dropped; pings of any size
	 * are echoed. */
	fx_ws_send(c, 0x1, "hello", 5);
	for (size_t i = 0; i < 3; i++) {
		size_t len = i == 0 ? 0 : i == 1 ? 1 : 125;

		memset(ping, 'a' + (int)i, sizeof(ping));
		fx_ws_send(c, 0x9, ping, len);
		ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0xA && fr.fin && fr.len == len &&
		    memcmp(fr.payload, ping, len) == 0, "a ping of %zu bytes: a pong with its payload", len);
		fx_frame_free(&fr);
	}
	fx_close(c);
	FX_WAIT(f, 3000, registry_count(&f->gw.reg) == 0);
	ok(registry_count(&f->gw.reg) == 0 && stats_get(&f->stats.ws_closed) == 1, "a client gone is forgotten");
}

static void test_pong_coalescing(struct fx *f)
{
	struct fx_client *c = fx_ws_open(f, "bob", 0);
	uint64_t before = stats_get(&f->stats.pongs_coalesced);
	unsigned npongs = 0, last = 0;
	struct fx_frame fr;

	/* 50 pings at once: the first pong goes out, the others wait for it
	 * and are answered by one pong with the latest payload. */
	pings(c, 0, 50);
	while (last != 49 && fx_ws_read(c, &fr, 3000)) {
		if (fr.opcode == 0xA) {
			last = (unsigned)strtoul((char *)fr.payload + 1, NULL, 10);
			npongs += npongs == 0 && last != 0 ? 100 : 1;	/* the first must be p0 */
		}
		fx_frame_free(&fr);
	}
	ok(last == 49 && npongs >= 2 && npongs < 50, "50 pings at once: %u pongs, the last for the last ping", npongs);
	ok(npongs + (stats_get(&f->stats.pongs_coalesced) - before) == 50,
	    "each ping has its own pong or is counted as coalesced");
	pings(c, 50, 1);
	ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0xA && strcmp((char *)fr.payload, "p50") == 0,
	    "the connection stays open");
	fx_frame_free(&fr);

	/* A flood: more than 100 pings behind one pong. */
	pings(c, 100, 150);
	npongs = 0;
	while (fx_ws_read(c, &fr, 3000) && fr.opcode == 0xA) {
		npongs++;
		fx_frame_free(&fr);
	}
	ok(fr.opcode == 0x8 && fr.code == 1008 && strstr((char *)fr.payload + 2, "too many pings") != NULL,
	    "150 pings at once: closed with 1008 (after %u pongs)", npongs);
	fx_frame_free(&fr);
	ok(fx_wait_eof(c, 3000), "then the connection is closed");
	fx_close(c);
}

/* Frames no server may accept: the close code it must send. */
static const struct {
	const char *name;
	uint8_t op;
	bool fin, masked;
	size_t len;		/* payload: len bytes of fill */
	uint8_t fill;
	uint16_t code;
} bad_frames[] = {
	{ "an unmasked frame", 0x1, true, false, 2, 'a', 1002 },
	{ "a reserved opcode", 0x3, true, true, 1, 'a', 1002 },
	{ "a ping without FIN", 0x9, false, true, 1, 'a', 1002 },
	{ "a control frame over 125 bytes", 0x9, true, true, 126, 'a', 1002 },
	{ "a continuation with no message", 0x0, true, true, 1, 'a', 1002 },
	{ "text that is not UTF-8", 0x1, true, true, 3, 0xff, 1007 },
	{ "a message over ws_max_message_size", 0x2, true, true, 2000, 'a', 1009 },
	{ "a close with code 771", 0x8, true, true, 2, 0x03, 1002 },	/* 0x0303 = 771 */
};

static void test_protocol_errors(struct fx *f)
{
	for (size_t i = 0; i < sizeof(bad_frames) / sizeof(bad_frames[0]); i++) {
		struct fx_client *c = fx_ws_open(f, "carol", 0);
		uint8_t *pl = malloc(bad_frames[i].len), *buf = malloc(bad_frames[i].len + 14);
		size_t n;
		struct fx_frame fr;

		memset(pl, bad_frames[i].fill, bad_frames[i].len);
		n = fx_ws_encode(buf, bad_frames[i].op, bad_frames[i].fin, pl, bad_frames[i].len);
		if (!bad_frames[i].masked) {
			/* Drop the mask bit and the key; the payload stays as it is. */
			buf[1] &= 0x7f;
			memmove(buf + 2, buf + 6, n - 6);
			memcpy(buf + 2, pl, bad_frames[i].len);
			n -= 4;
		}
		memset(&fr, 0, sizeof(fr));
		if (c != NULL && fx_send(c, buf, n) == 0)
			fx_ws_read(c, &fr, 3000);
		ok(fr.opcode == 0x8 && fr.code == bad_frames[i].code,
		    "%s: closed with %u (got %u)", bad_frames[i].name, bad_frames[i].code, fr.code);
		ok(c != NULL && fx_wait_eof(c, 3000), "%s: then disconnected", bad_frames[i].name);
		fx_frame_free(&fr);
		if (c != NULL)
			fx_close(c);
		free(pl);
		free(buf);
	}
}

static void test_close(struct fx *f)
{
	static const uint8_t bye[] = { 0x03, 0xe8, 'b', 'y', 'e' };	/* 1000 "bye" */
	struct fx_client *c = fx_ws_open(f, "dave", 0);
	uint64_t closed = stats_get(&f->stats.ws_closed);
	struct fx_frame fr;

	fx_ws_send(c, 0x8, bye, sizeof(bye));
	ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0x8 && fr.code == 1000 && fr.len == 2,
	    "client closes with 1000: the server echoes 1000");
	fx_frame_free(&fr);
	ok(fx_wait_eof(c, 3000), "and closes the TCP connection first");
	FX_WAIT(f, 3000, stats_get(&f->stats.ws_closed) == closed + 1);
	ok(stats_get(&f->stats.ws_closed) == closed + 1 && registry_user_count(&f->gw.reg, "dave", 4) == 0,
	    "counted closed, deregistered");
	fx_close(c);

	c = fx_ws_open(f, "dave", 0);
	fx_ws_send(c, 0x8, "", 0);
	ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0x8 && fr.len == 0 && fx_wait_eof(c, 3000),
	    "a close without a code: answered with an empty close");
	fx_frame_free(&fr);
	fx_close(c);

	/* The server's side: shutdown says 1001, the client answers. */
	c = fx_ws_open(f, "dave", 0);
	ws_conn_close_all(&f->gw, 1001, "going away");
	ok(fx_ws_read(c, &fr, 3000) && fr.opcode == 0x8 && fr.code == 1001 &&
	    strcmp((char *)fr.payload + 2, "going away") == 0, "ws_conn_close: 1001 with its reason");
	fx_frame_free(&fr);
	pings(c, 0, 1);
	fx_ws_send(c, 0x8, bye, 2);
	ok(fx_wait_eof(c, 3000) && c->len == 0, "the client's close ends it; a ping after our close got no pong");
	fx_close(c);
}

/* ws_ping_interval 300ms, ws_pong_timeout 200ms. */
static void test_keepalive(void)
{
	struct fx f;
	struct fx_client *a, *b;
	struct fx_frame fr;
	unsigned answered = 0;

	if (fx_start(&f, "ws_ping_interval = 300ms\nws_pong_timeout = 200ms\n") < 0) {
		ok(0, "fixture for keepalive");
		fx_stop(&f);
		return;
	}
	a = fx_ws_open(&f, "erin", 0);
	b = fx_ws_open(&f, "erin", 0);
	/* a answers every ping; b never does. */
	for (uint64_t end = clock_now_ms() + 3000; answered < 3 && clock_now_ms() < end;) {
		if (!fx_ws_read(a, &fr, 3000))
			break;
		if (fr.opcode == 0x9 && fr.len == 8) {
			fx_ws_send(a, 0xA, fr.payload, fr.len);
			answered++;
		}
		fx_frame_free(&fr);
	}
	ok(answered == 3, "the server pings every ws_ping_interval (8-byte payload)");
	ok(b->eof && !a->eof, "a peer that does not answer in ws_pong_timeout is dropped; one that answers is not");
	ok(registry_user_count(&f.gw.reg, "erin", 4) == 1, "only the silent one was deregistered");
	fx_stop(&f);
}

static bool slow_seen(struct fx *f)
{
	return stats_get(&f->stats.slow_disconnects) > 0;
}

/* A reader that stops reading (s, small receive buffer) beside one that
 * reads (r): s is closed with 1013, r gets everything, every delivery is
 * acked, and s can still read whole frames then the close. */
static void test_slow(const char *name, const char *conf)
{
	struct fx f;
	struct fx_client *s, *r;
	struct fx_frame fr;
	uint64_t seq = 1;
	size_t pushed, acked = 0, got_r = 0, got_s = 0;
	bool in_order = true;
	struct ack_item a[64];

	if (fx_start(&f, conf) < 0) {
		ok(0, "%s: fixture", name);
		fx_stop(&f);
		return;
	}
	s = fx_ws_open(&f, "frank", 4096);
	r = fx_ws_open(&f, "frank", 0);
	fx_pause(s, true);
	pushed = fx_fill(&f, "user.frank", 32768, &seq, 400, &acked, slow_seen);
	FX_WAIT(&f, 3000, slow_seen(&f));
	ok(stats_get(&f.stats.slow_disconnects) == 1, "%s: the slow reader is found (%zu messages of 32k)",
	    name, pushed);
	for (uint64_t end = clock_now_ms() + 5000; acked < pushed && fx_step(&f, end);)
		acked += fx_acks(&f, a, 64);
	ok(acked == pushed && dispatch_in_flight(f.gw.dispatch) == 0,
	    "%s: every delivery acked though the slow reader has not read them (%zu of %zu)", name, acked, pushed);
	while (got_r < pushed && fx_ws_read(r, &fr, 3000)) {
		got_r += fr.opcode == 0x1 && fr.len == 32768 && fx_body_n(fr.payload) == got_r + 1;
		fx_frame_free(&fr);
	}
	ok(got_r == pushed, "%s: the other connection of the user got all %zu, in order", name, got_r);

	fx_pause(s, false);
	while (fx_ws_read(s, &fr, 3000) && fr.opcode == 0x1) {
		got_s++;
		in_order = in_order && fr.len == 32768 && fx_body_n(fr.payload) == got_s;
		fx_frame_free(&fr);
	}
	ok(fr.opcode == 0x8 && fr.code == 1013 && in_order && got_s < pushed,
	    "%s: the slow reader reads %zu whole frames, then close 1013 (got %u)", name, got_s, fr.code);
	fx_frame_free(&fr);
	fx_ws_send(s, 0x8, "\x03\xf5", 2);
	ok(fx_wait_eof(s, 3000) && !r->eof, "%s: its close ends it; the other stays", name);
	fx_stop(&f);
}

/* A client that reads everything at once is not slow, whatever one
 * dispatcher pass brings it: the frames after the first of a pass are
 * queued until the pass ends, and ws_send_queue_max must not count them
 * (64k here: 4 notifications of 30k in one pass; closed with 1013 before). */
static void test_burst(void)
{
	struct fx f;
	struct fx_client *c;
	struct fx_frame fr;
	unsigned got = 0;

	if (fx_start(&f, "ws_send_queue_max = 64k\n") < 0 || (c = fx_ws_open(&f, "hana", 0)) == NULL) {
		ok(0, "fixture for a burst");
		fx_stop(&f);
		return;
	}
	for (unsigned i = 1; i <= 4; i++) {
		char *b = fx_body(i, 30000);

		fx_ready(&f, i, i, "user.hana", b);
		free(b);
	}
	while (got < 4 && fx_ws_read(c, &fr, 3000) && fr.opcode == 0x1 && fx_body_n(fr.payload) == got + 1) {
		got++;
		fx_frame_free(&fr);
	}
	fx_frame_free(&fr);
	ok(got == 4 && stats_get(&f.stats.slow_disconnects) == 0,
	    "a reader that keeps up gets a burst of 4 x 30k with ws_send_queue_max = 64k (%u, then close %u)",
	    got, fr.code);
	fx_stop(&f);
}

int main(void)
{
	struct fx f;

	if (fx_start(&f, "ws_max_message_size = 1k\n") == 0) {
		test_takeover(&f);
		test_pong_coalescing(&f);
		test_protocol_errors(&f);
		test_close(&f);
	} else {
		ok(0, "fixture");
	}
	fx_stop(&f);
	test_keepalive();
	test_slow("queue full", "ws_send_queue_max = 64k\nws_send_timeout = 30s\n");
	test_slow("send timeout", "ws_send_queue_max = 64M\nws_send_timeout = 300ms\n");
	test_burst();
	return done_testing();
}
