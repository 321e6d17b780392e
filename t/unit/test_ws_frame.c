/* test_ws_frame.c - the RFC 6455 server-side frame reader and encoder.
 *
 * Every reader case is run with the input split every way worth trying
 * (whole, one byte at a time, every cut into two pieces, fixed chunk sizes)
 * and all runs must give the same events, because the network may deliver
 * a frame in any pieces.  Test names follow the RFC corner they cover.
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"
#include "tap.h"

#define FIN 0x80
#define FIN_CONT FIN	/* FIN | WS_OP_CONT, the opcode being 0 */
#define RSV1 0x40
#define RSV2 0x20
#define RSV3 0x10
#define BIG (1u << 17)	/* room for a 65536-byte payload and its header */

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static const uint8_t MASK_A[4] = { 0x37, 0xfa, 0x21, 0x3d };	/* RFC 6455 5.7 */
static const uint8_t MASK_B[4] = { 0xa1, 0x5c, 0x03, 0xee };

/* ---- building client frames ---------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len;
};

static void buf_init(struct buf *b)
{
	b->p = malloc(4 * BIG);
	b->len = 0;
	if (b->p == NULL)
		abort();
}

enum len_form { LEN_MIN = 0, LEN_16 = 16, LEN_64 = 64 };

/* A frame header with byte 0 as given; masked when mask != NULL.  The
 * length is written in the form asked (minimal by default). */
static void put_header(struct buf *b, uint8_t b0, uint64_t len, const uint8_t *mask,
		       enum len_form form)
{
	uint8_t mbit = mask ? 0x80 : 0;

	b->p[b->len++] = b0;
	if (form == LEN_MIN && len <= 125) {
		b->p[b->len++] = (uint8_t)(mbit | len);
	} else if (form != LEN_64 && len <= 0xFFFF) {
		b->p[b->len++] = mbit | 126;
		b->p[b->len++] = (uint8_t)(len >> 8);
		b->p[b->len++] = (uint8_t)len;
	} else {
		b->p[b->len++] = mbit | 127;
		for (int i = 7; i >= 0; i--)
			b->p[b->len++] = (uint8_t)(len >> (8 * i));
	}
	if (mask) {
		memcpy(b->p + b->len, mask, 4);
		b->len += 4;
	}
}

static void put_frame_form(struct buf *b, uint8_t b0, const uint8_t *payload, size_t len,
			   const uint8_t *mask, enum len_form form)
{
	put_header(b, b0, len, mask, form);
	for (size_t i = 0; i < len; i++)
		b->p[b->len++] = payload[i] ^ (mask ? mask[i & 3] : 0);
}

static void put_frame(struct buf *b, uint8_t b0, const uint8_t *payload, size_t len)
{
	put_frame_form(b, b0, payload, len, MASK_A, LEN_MIN);
}

/* ---- running the reader ------------------------------------------------ */

struct rec {
	enum ws_event_type type;
	uint8_t opcode;
	uint16_t code;
	uint64_t size;
	uint8_t payload[WS_CONTROL_MAX];
	size_t payload_len;
	const char *reason;
	size_t at;		/* input bytes consumed when it was reported */
};

#define MAX_EVENTS 32

struct run {
	struct rec ev[MAX_EVENTS];
	size_t n;
	int contract_broken;	/* WS_EV_NONE without consuming everything, ... */
};

/* Feed the input in pieces whose sizes are given by cut(): the reader is
 * called in a loop on each piece like a real caller does. */
typedef size_t (*cut_fn)(size_t piece_no, size_t offset, size_t total, size_t arg);

static void run_reader(struct run *run, const uint8_t *in, size_t len, uint64_t max,
		       cut_fn cut, size_t arg)
{
	struct ws_reader r;
	size_t off = 0, piece_no = 0;

	memset(run, 0, sizeof(*run));
	ws_reader_init(&r, max);
	while (off < len) {
		size_t piece = cut(piece_no++, off, len, arg);
		const uint8_t *p = in + off;

		if (piece == 0 || piece > len - off)
			piece = len - off;
		off += piece;
		while (piece > 0) {
			struct ws_event ev;
			size_t used = ws_reader_feed(&r, p, piece, &ev);
			struct rec *rc;

			if (used > piece)
				run->contract_broken = 1;
			if (ev.type == WS_EV_NONE) {
				if (used != piece)
					run->contract_broken = 1;
				break;
			}
			if (run->n == MAX_EVENTS) {
				run->contract_broken = 1;
				return;
			}
			rc = &run->ev[run->n++];
			rc->type = ev.type;
			rc->opcode = ev.opcode;
			rc->code = ev.code;
			rc->size = ev.size;
			rc->reason = ev.reason;
			rc->payload_len = ev.payload_len;
			if (ev.payload_len > WS_CONTROL_MAX ||
			    (ev.payload_len > 0 && ev.payload == NULL))
				run->contract_broken = 1;
			else if (ev.payload_len > 0)
				memcpy(rc->payload, ev.payload, ev.payload_len);
			rc->at = off - piece + used;
			if (ev.type == WS_EV_ERROR) {
				/* Sticky: nothing more is consumed, same code. */
				struct ws_event again;

				if (ws_reader_feed(&r, p, piece, &again) != 0 ||
				    again.type != WS_EV_ERROR || again.code != ev.code ||
				    again.reason == NULL || ev.reason == NULL)
					run->contract_broken = 1;
				return;
			}
			p += used;
			piece -= used;
		}
	}
}

static size_t cut_whole(size_t no, size_t off, size_t total, size_t arg)
{
	return total;
}

static size_t cut_fixed(size_t no, size_t off, size_t total, size_t arg)
{
	return arg;
}

static size_t cut_at(size_t no, size_t off, size_t total, size_t arg)
{
	return no == 0 ? arg : total - off;
}

/* Deterministic pseudo-random piece sizes 1..arg, seeded by the offset. */
static size_t cut_random(size_t no, size_t off, size_t total, size_t arg)
{
	uint32_t x = (uint32_t)(off * 2654435761u + no * 40503u + 12345u);

	x ^= x >> 13;
	x *= 0x5bd1e995u;
	x ^= x >> 15;
	return 1 + x % arg;
}

static int rec_equal(const struct rec *a, const struct rec *b)
{
	if (a->type != b->type || a->opcode != b->opcode || a->code != b->code ||
	    a->size != b->size || a->payload_len != b->payload_len ||
	    memcmp(a->payload, b->payload, a->payload_len) != 0)
		return 0;
	/* Where an error is reported inside a data payload depends on the
	 * reader's chunking; every other event comes right after its byte. */
	return a->type == WS_EV_ERROR || a->at == b->at;
}

static int run_equal(const struct run *a, const struct run *b)
{
	if (a->n != b->n || a->contract_broken || b->contract_broken)
		return 0;
	for (size_t i = 0; i < a->n; i++)
		if (!rec_equal(&a->ev[i], &b->ev[i]))
			return 0;
	return 1;
}

/* Runs the input whole and then split in many ways; returns the whole run
 * in *out and whether every split agreed with it. */
static int run_all_splits(struct run *out, const uint8_t *in, size_t len, uint64_t max,
			  char *why, size_t whylen)
{
	static struct run other;
	static const size_t fixed[] = { 1, 2, 3, 4, 5, 7, 13, 64, 1000 };
	size_t stride = len > 600 ? len / 97 + 1 : 1;

	run_reader(out, in, len, max, cut_whole, 0);
	why[0] = '\0';
	if (out->contract_broken) {
		snprintf(why, whylen, "feed contract broken on whole input");
		return 0;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		run_reader(&other, in, len, max, cut_fixed, fixed[i]);
		if (!run_equal(out, &other)) {
			snprintf(why, whylen, "differs fed %zu bytes at a time", fixed[i]);
			return 0;
		}
	}
	/* Every cut into two near the start (all header positions), then
	 * strided through long payloads. */
	for (size_t c = 1; c < len; c += (c < 32 ? 1 : stride)) {
		run_reader(&other, in, len, max, cut_at, c);
		if (!run_equal(out, &other)) {
			snprintf(why, whylen, "differs when cut at %zu", c);
			return 0;
		}
	}
	for (size_t k = 2; k < 40; k += 3) {
		run_reader(&other, in, len, max, cut_random, k);
		if (!run_equal(out, &other)) {
			snprintf(why, whylen, "differs with random pieces up to %zu", k);
			return 0;
		}
	}
	return 1;
}

/* Shorthand for the common shapes of expectation. */
struct want {
	enum ws_event_type type;
	uint8_t opcode;
	uint16_t code;
	uint64_t size;
	const char *payload;	/* NULL: don't check */
	size_t payload_len;
};

#define W_MSG(op, sz) { WS_EV_MESSAGE, (op), 0, (sz), NULL, 0 }
#define W_PING(lit) { WS_EV_PING, 0, 0, 0, (lit), sizeof(lit) - 1 }
#define W_PONG(lit) { WS_EV_PONG, 0, 0, 0, (lit), sizeof(lit) - 1 }
#define W_CLOSE(c, lit) { WS_EV_CLOSE, 0, (c), 0, (lit), sizeof(lit) - 1 }
#define W_ERR(c) { WS_EV_ERROR, 0, (c), 0, NULL, 0 }
#define W_ANY(type, c) { (type), 0, (c), 0, NULL, 0 }	/* payload checked apart */

static int want_match(const struct run *run, const struct want *w, size_t nw,
		      char *why, size_t whylen)
{
	if (run->n != nw) {
		snprintf(why, whylen, "%zu events, want %zu", run->n, nw);
		return 0;
	}
	for (size_t i = 0; i < nw; i++) {
		const struct rec *e = &run->ev[i];

		if (e->type != w[i].type || e->code != w[i].code ||
		    (w[i].type == WS_EV_MESSAGE &&
		     (e->opcode != w[i].opcode || e->size != w[i].size)) ||
		    (w[i].payload != NULL &&
		     (e->payload_len != w[i].payload_len ||
		      memcmp(e->payload, w[i].payload, w[i].payload_len) != 0))) {
			snprintf(why, whylen, "event %zu: type %d code %u size %llu len %zu",
				 i, (int)e->type, e->code, (unsigned long long)e->size,
				 e->payload_len);
			return 0;
		}
	}
	return 1;
}

static struct run last;

/* One TAP line: the events match and every way of splitting agrees. */
static int expect(const char *name, const struct buf *b, uint64_t max,
		  const struct want *w, size_t nw)
{
	char why[160] = "";
	int good = run_all_splits(&last, b->p, b->len, max, why, sizeof(why)) &&
		   want_match(&last, w, nw, why, sizeof(why));

	return ok(good, "%s%s%s", name, why[0] ? ": " : "", why);
}

#define EXPECT(name, b, max, ...) do { \
	const struct want w_[] = { __VA_ARGS__ }; \
	expect((name), (b), (max), w_, sizeof(w_) / sizeof(w_[0])); \
} while (0)

#define NOMAX UINT64_MAX

/* ---- reader tests ------------------------------------------------------ */

static void test_rfc_examples(struct buf *b)
{
	static const uint8_t hello_masked[] = {
		0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
	};

	b->len = 0;
	memcpy(b->p, hello_masked, sizeof(hello_masked));
	b->len = sizeof(hello_masked);
	EXPECT("frame_recv_rfc_5_7_masked_hello", b, NOMAX, W_MSG(WS_OP_TEXT, 5));
	ok(last.n == 1 && last.ev[0].at == sizeof(hello_masked),
	   "frame_recv_rfc_5_7: event right after the last payload byte");

	b->len = 0;
	put_frame_form(b, FIN | WS_OP_TEXT, S("Hello"), NULL, LEN_MIN);
	EXPECT("frame_recv_unmasked_text_is_1002 (RFC 5.1)", b, NOMAX,
	       W_ERR(WS_CLOSE_PROTOCOL));
	ok(last.n == 1 && last.ev[0].at == 2 && last.ev[0].reason &&
	   strcmp(last.ev[0].reason, "unmasked frame") == 0,
	   "frame_recv_unmasked: reported at the second byte, reason \"unmasked frame\"");

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("Hel"));
	put_frame(b, FIN_CONT, S("lo"));
	EXPECT("frame_recv_rfc_5_7_fragmented_hello", b, NOMAX, W_MSG(WS_OP_TEXT, 5));

	b->len = 0;
	put_frame(b, FIN | WS_OP_PING, S("Hello"));
	put_frame_form(b, FIN | WS_OP_PONG, S("Hello"), MASK_B, LEN_MIN);
	EXPECT("frame_recv_ping_and_pong_payload_unmasked", b, NOMAX,
	       W_PING("Hello"), W_PONG("Hello"));

	b->len = 0;
	put_frame(b, FIN | WS_OP_PING, S(""));
	EXPECT("frame_recv_empty_ping", b, NOMAX, W_PING(""));
}

static void test_lengths(struct buf *b)
{
	static uint8_t data[65537];
	static const struct { uint64_t len; enum len_form form; size_t hdr; } cases[] = {
		{ 0, LEN_MIN, 6 },
		{ 125, LEN_MIN, 6 },		/* largest 7-bit */
		{ 126, LEN_MIN, 8 },		/* smallest 16-bit */
		{ 65535, LEN_MIN, 8 },		/* largest 16-bit */
		{ 65536, LEN_MIN, 14 },		/* smallest 64-bit */
		{ 5, LEN_16, 8 },		/* non-minimal, accepted */
		{ 5, LEN_64, 14 },		/* non-minimal, accepted */
		{ 300, LEN_64, 14 },
	};

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)('a' + i % 26);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char name[96];

		for (int op = WS_OP_TEXT; op <= WS_OP_BINARY; op++) {
			b->len = 0;
			put_frame_form(b, (uint8_t)(FIN | op), data, (size_t)cases[i].len, MASK_B,
				       cases[i].form);
			snprintf(name, sizeof(name), "frame_recv_%s_len_%llu%s",
				 op == WS_OP_TEXT ? "text" : "binary",
				 (unsigned long long)cases[i].len,
				 cases[i].form == LEN_16 ? "_in_16bit_form" :
				 cases[i].form == LEN_64 ? "_in_64bit_form" : "");
			EXPECT(name, b, NOMAX, W_MSG(op, cases[i].len));
			ok(b->len == cases[i].hdr + cases[i].len && last.n == 1 &&
			   last.ev[0].at == b->len, "%s: header of %zu bytes, all consumed",
			   name, cases[i].hdr);
		}
	}

	b->len = 0;
	put_header(b, FIN | WS_OP_BINARY, 0, MASK_A, LEN_64);
	b->p[2] = 0x80;		/* length 2^63 */
	EXPECT("frame_recv_64bit_length_top_bit_set_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
	ok(last.n == 1 && last.ev[0].at == 10,
	   "frame_recv_64bit_length_top_bit: reported before the mask key arrives");

	b->len = 0;
	put_header(b, FIN | WS_OP_BINARY, UINT64_C(0x7FFFFFFFFFFFFFFF), MASK_A, LEN_64);
	EXPECT("frame_recv_64bit_length_2^63-1_is_too_big_not_1002", b, UINT64_C(1) << 40,
	       W_ERR(WS_CLOSE_TOO_BIG));
}

static void test_max_message(struct buf *b)
{
	static uint8_t data[200];

	memset(data, 'x', sizeof(data));
	b->len = 0;
	put_frame(b, FIN | WS_OP_TEXT, data, 100);
	EXPECT("frame_recv_message_of_exactly_max_message", b, 100, W_MSG(WS_OP_TEXT, 100));

	b->len = 0;
	put_frame(b, FIN | WS_OP_TEXT, data, 101);
	EXPECT("frame_recv_too_large_payload_is_1009", b, 100, W_ERR(WS_CLOSE_TOO_BIG));
	ok(last.n == 1 && last.ev[0].at == 2,
	   "frame_recv_too_large_payload: reported when the length is read, not after the payload");

	b->len = 0;
	put_header(b, FIN | WS_OP_BINARY, 70000, MASK_A, LEN_MIN);
	EXPECT("frame_recv_too_large_64bit_header_only", b, 65536, W_ERR(WS_CLOSE_TOO_BIG));
	ok(last.n == 1 && last.ev[0].at == 10,
	   "frame_recv_too_large_64bit: reported at the last length byte");

	b->len = 0;
	put_frame(b, WS_OP_BINARY, data, 40);
	put_frame(b, WS_OP_CONT, data, 40);
	put_frame(b, FIN_CONT, data, 20);
	EXPECT("frame_recv_fragmented_message_of_exactly_max", b, 100, W_MSG(WS_OP_BINARY, 100));

	b->len = 0;
	put_frame(b, WS_OP_BINARY, data, 40);
	put_frame(b, WS_OP_CONT, data, 40);
	put_header(b, FIN_CONT, 21, MASK_A, LEN_MIN);
	EXPECT("frame_recv_fragmented_too_large_is_1009_at_the_fragment_header", b, 100,
	       W_ERR(WS_CLOSE_TOO_BIG));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, data, 60);
	put_frame(b, FIN | WS_OP_PING, data, 60);	/* control frames don't count */
	put_frame(b, FIN_CONT, data, 40);
	put_frame(b, FIN | WS_OP_TEXT, data, 100);	/* the size restarts per message */
	EXPECT("frame_recv_size_limit_per_message_ignoring_control_frames", b, 100,
	       W_ANY(WS_EV_PING, 0), W_MSG(WS_OP_TEXT, 100), W_MSG(WS_OP_TEXT, 100));
	ok(last.n == 3 && last.ev[0].payload_len == 60, "  (ping payload of 60 bytes)");

	b->len = 0;
	put_frame(b, WS_OP_TEXT, data, 60);
	put_header(b, WS_OP_CONT, UINT64_C(0x7FFFFFFFFFFFFFFF), MASK_A, LEN_64);
	EXPECT("frame_recv_fragment_length_2^63-1_after_60_bytes_exceeds_2^63", b,
	       UINT64_C(1) << 63,
	       W_ERR(WS_CLOSE_TOO_BIG));

	b->len = 0;
	put_frame(b, FIN | WS_OP_BINARY, S(""));
	put_frame(b, FIN | WS_OP_BINARY, S("x"));
	EXPECT("frame_recv_max_message_0_allows_only_empty_messages", b, 0,
	       W_MSG(WS_OP_BINARY, 0), W_ERR(WS_CLOSE_TOO_BIG));
}

static void test_header_rules(struct buf *b)
{
	static const struct { const char *name; uint8_t b0; } rsv[] = {
		{ "frame_recv_rsv1_is_1002", FIN | RSV1 | WS_OP_TEXT },
		{ "frame_recv_rsv2_is_1002", FIN | RSV2 | WS_OP_BINARY },
		{ "frame_recv_rsv3_is_1002", FIN | RSV3 | WS_OP_PING },
	};

	for (size_t i = 0; i < sizeof(rsv) / sizeof(rsv[0]); i++) {
		b->len = 0;
		put_frame(b, rsv[i].b0, S("x"));
		EXPECT(rsv[i].name, b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
		ok(last.n == 1 && last.ev[0].at == 1 && last.ev[0].reason &&
		   strcmp(last.ev[0].reason, "reserved bits set") == 0,
		   "%s: at the first byte, reason \"reserved bits set\"", rsv[i].name);
	}

	for (int op = 0; op < 16; op++) {
		char name[64];

		if (op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY ||
		    op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG)
			continue;
		b->len = 0;
		put_frame(b, (uint8_t)(FIN | op), S(""));
		snprintf(name, sizeof(name), "frame_recv_reserved_opcode_0x%X_is_1002", op);
		EXPECT(name, b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
	}

	b->len = 0;
	put_frame(b, WS_OP_PING, S("x"));
	EXPECT("frame_recv_fragmented_ping_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
	b->len = 0;
	put_frame(b, WS_OP_CLOSE, S(""));
	EXPECT("frame_recv_fragmented_close_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
	b->len = 0;
	put_frame(b, WS_OP_PONG, S(""));
	EXPECT("frame_recv_fragmented_pong_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));

	{
		static uint8_t data[126];

		memset(data, 'p', sizeof(data));
		b->len = 0;
		put_frame(b, FIN | WS_OP_PING, data, 125);
		EXPECT("frame_recv_ping_of_125_bytes", b, NOMAX, W_ANY(WS_EV_PING, 0));
		ok(last.n == 1 && last.ev[0].payload_len == 125 &&
		   memcmp(last.ev[0].payload, data, 125) == 0, "  (all 125 bytes delivered)");
		b->len = 0;
		put_frame(b, FIN | WS_OP_PING, data, 126);
		EXPECT("frame_recv_too_large_ping_126_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
		ok(last.n == 1 && last.ev[0].at == 2, "  (reported at the length byte)");
		b->len = 0;
		put_frame_form(b, FIN | WS_OP_PONG, data, 5, MASK_A, LEN_16);
		EXPECT("frame_recv_control_with_16bit_length_is_1002", b, NOMAX,
		       W_ERR(WS_CLOSE_PROTOCOL));
		b->len = 0;
		put_frame(b, FIN | WS_OP_CLOSE, data, 126);
		EXPECT("frame_recv_too_large_close_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
	}
}

static void test_fragmentation(struct buf *b)
{
	b->len = 0;
	put_frame(b, FIN_CONT, S("x"));
	EXPECT("frame_recv_continuation_without_message_is_1002", b, NOMAX,
	       W_ERR(WS_CLOSE_PROTOCOL));

	b->len = 0;
	put_frame(b, FIN | WS_OP_TEXT, S("a"));
	put_frame(b, WS_OP_CONT, S("x"));
	EXPECT("frame_recv_continuation_after_finished_message_is_1002", b, NOMAX,
	       W_MSG(WS_OP_TEXT, 1), W_ERR(WS_CLOSE_PROTOCOL));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("a"));
	put_frame(b, FIN | WS_OP_TEXT, S("b"));
	EXPECT("frame_recv_text_inside_fragmented_message_is_1002", b, NOMAX,
	       W_ERR(WS_CLOSE_PROTOCOL));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("a"));
	put_frame(b, FIN | WS_OP_BINARY, S("b"));
	EXPECT("frame_recv_binary_inside_fragmented_text_is_1002", b, NOMAX,
	       W_ERR(WS_CLOSE_PROTOCOL));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("Hel"));
	put_frame_form(b, FIN | WS_OP_PING, S("ping!"), MASK_B, LEN_MIN);
	put_frame(b, WS_OP_CONT, S("l"));
	put_frame_form(b, FIN | WS_OP_PONG, S(""), MASK_B, LEN_MIN);
	put_frame_form(b, FIN | WS_OP_CLOSE, S("\x03\xe8" "bye"), MASK_B, LEN_MIN);
	put_frame(b, FIN_CONT, S("o"));
	EXPECT("frame_recv_interleaved_ctrl_frame", b, NOMAX,
	       W_PING("ping!"), W_PONG(""), W_CLOSE(1000, "bye"), W_MSG(WS_OP_TEXT, 5));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("a\xE2"));
	put_frame(b, FIN | WS_OP_PING, S("p"));
	put_frame(b, WS_OP_CONT, S("\x82"));
	put_frame(b, FIN_CONT, S("\xAC" "b"));
	EXPECT("frame_recv_text_code_point_split_across_fragments", b, NOMAX,
	       W_PING("p"), W_MSG(WS_OP_TEXT, 5));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("\xF0\x9F"));
	put_frame(b, WS_OP_CONT, S(""));
	put_frame(b, WS_OP_CONT, S("\x98"));
	put_frame(b, FIN_CONT, S("\x80"));
	EXPECT("frame_recv_4byte_code_point_over_3_fragments_and_an_empty_one", b, NOMAX,
	       W_MSG(WS_OP_TEXT, 4));

	b->len = 0;
	put_frame(b, WS_OP_BINARY, S(""));
	put_frame(b, FIN_CONT, S(""));
	put_frame(b, FIN | WS_OP_TEXT, S(""));
	EXPECT("frame_recv_empty_fragments_and_empty_text", b, NOMAX,
	       W_MSG(WS_OP_BINARY, 0), W_MSG(WS_OP_TEXT, 0));

	b->len = 0;
	put_frame(b, FIN | WS_OP_TEXT, S("one"));
	put_frame(b, FIN | WS_OP_BINARY, S("three"));
	put_frame(b, FIN | WS_OP_PING, S(""));
	EXPECT("frame_recv_several_frames_in_one_buffer_one_event_per_call", b, NOMAX,
	       W_MSG(WS_OP_TEXT, 3), W_MSG(WS_OP_BINARY, 5), W_PING(""));
	ok(last.n == 3 && last.ev[0].at == 9 && last.ev[1].at == 20 && last.ev[2].at == 26,
	   "frame_recv_several_frames: each call stops right after its event");
}

static void test_text_utf8(struct buf *b)
{
	static const struct { const char *name; const char *s; } bad[] = {
		{ "frame_recv_text_overlong_C0_80_is_1007", "\xC0\x80" },
		{ "frame_recv_text_overlong_E0_80_80_is_1007", "\xE0\x80\x80" },
		{ "frame_recv_text_overlong_F0_80_80_80_is_1007", "\xF0\x80\x80\x80" },
		{ "frame_recv_text_surrogate_ED_A0_80_is_1007", "\xED\xA0\x80" },
		{ "frame_recv_text_above_10FFFF_F4_90_80_80_is_1007", "\xF4\x90\x80\x80" },
		{ "frame_recv_text_FF_is_1007", "ok\xFF" },
	};
	static uint8_t data[300];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b->len = 0;
		put_frame(b, FIN | WS_OP_TEXT, (const uint8_t *)bad[i].s, strlen(bad[i].s));
		EXPECT(bad[i].name, b, NOMAX, W_ERR(WS_CLOSE_INVALID_DATA));
		b->len = 0;
		put_frame(b, FIN | WS_OP_BINARY, (const uint8_t *)bad[i].s, strlen(bad[i].s));
		EXPECT("  same bytes in a binary message are not validated", b, NOMAX,
		       W_MSG(WS_OP_BINARY, strlen(bad[i].s)));
	}

	/* Fail fast: the error comes before the rest of the frame, and
	 * before the final fragment. */
	memset(data, 'a', sizeof(data));
	data[10] = 0xC0;
	b->len = 0;
	put_frame(b, WS_OP_TEXT, data, sizeof(data));
	b->len -= 250;		/* only 50 payload bytes have arrived */
	EXPECT("frame_recv_text_invalid_utf8_fails_fast_mid_frame", b, NOMAX,
	       W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("\xED"));
	put_frame(b, WS_OP_CONT, S("\xA0"));
	EXPECT("frame_recv_text_surrogate_split_across_fragments_fails_at_2nd", b, NOMAX,
	       W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, FIN | WS_OP_TEXT, S("a\xE2\x82"));
	EXPECT("frame_recv_text_unfinished_code_point_at_fin_is_1007", b, NOMAX,
	       W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("\xE2\x82"));
	put_frame(b, FIN_CONT, S(""));
	EXPECT("frame_recv_text_unfinished_code_point_at_empty_final_fragment_is_1007", b,
	       NOMAX, W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("\xE2\x82"));
	expect("frame_recv_text_unfinished_code_point_before_fin_is_no_error_yet", b, NOMAX,
	       NULL, 0);

	b->len = 0;
	put_frame(b, WS_OP_BINARY, S("\xE2\x82"));
	put_frame(b, FIN_CONT, S(""));
	put_frame(b, FIN | WS_OP_TEXT, S("\xAC"));
	EXPECT("frame_recv_utf8_state_does_not_leak_from_binary_into_text", b, NOMAX,
	       W_MSG(WS_OP_BINARY, 2), W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("\xE2\x82"));
	put_frame(b, FIN | WS_OP_PING, S("\xFF\xC0"));
	put_frame(b, FIN_CONT, S("\xAC"));
	EXPECT("frame_recv_ping_payload_is_not_fed_to_the_text_validator", b, NOMAX,
	       W_PING("\xFF\xC0"), W_MSG(WS_OP_TEXT, 3));

	/* Long text with multi-byte characters everywhere, so that pieces of
	 * every size cut code points and mask words at every offset. */
	b->len = 0;
	for (size_t i = 0; i + 4 <= sizeof(data); i += 4)
		memcpy(data + i, i % 8 ? "\xE2\x82\xAC" "a" : "\xF0\x9F\x98\x80", 4);
	put_frame_form(b, WS_OP_TEXT, data, 150, MASK_B, LEN_16);
	put_frame(b, FIN_CONT, data + 150, 150);
	EXPECT("frame_recv_long_multibyte_text_fragmented_mid_code_point", b, NOMAX,
	       W_MSG(WS_OP_TEXT, 300));
}

static void test_mask(struct buf *b)
{
	static const uint8_t zero[4] = { 0, 0, 0, 0 };
	static const uint8_t ones[4] = { 0xff, 0xff, 0xff, 0xff };

	b->len = 0;
	put_frame_form(b, FIN | WS_OP_PING, S("abcdefg"), zero, LEN_MIN);
	put_frame_form(b, FIN | WS_OP_PING, S("abcdefg"), ones, LEN_MIN);
	EXPECT("frame_recv_mask_key_all_zero_and_all_ones", b, NOMAX,
	       W_PING("abcdefg"), W_PING("abcdefg"));

	/* A fresh mask position for each frame: a 3-byte text frame leaves
	 * the position at 3, the ping after it must still unmask from 0. */
	b->len = 0;
	put_frame(b, WS_OP_TEXT, S("abc"));
	put_frame_form(b, FIN | WS_OP_PING, S("12345"), MASK_B, LEN_MIN);
	put_frame(b, FIN_CONT, S("de"));
	EXPECT("frame_recv_mask_position_restarts_each_frame", b, NOMAX,
	       W_PING("12345"), W_MSG(WS_OP_TEXT, 5));

	b->len = 0;
	put_frame(b, FIN | WS_OP_BINARY, S("odd"));
	put_frame(b, FIN | WS_OP_PONG, S("pong"));
	EXPECT("frame_recv_mask_position_after_skipped_binary_payload", b, NOMAX,
	       W_MSG(WS_OP_BINARY, 3), W_PONG("pong"));
}

static void test_close(struct buf *b)
{
	static const struct { uint16_t code; int valid; } codes[] = {
		{ 0, 0 }, { 999, 0 }, { 1000, 1 }, { 1001, 1 }, { 1002, 1 }, { 1003, 1 },
		{ 1004, 0 }, { 1005, 0 }, { 1006, 0 }, { 1007, 1 }, { 1008, 1 },
		{ 1009, 1 }, { 1010, 1 }, { 1011, 1 }, { 1012, 1 }, { 1013, 1 },
		{ 1014, 1 }, { 1015, 0 }, { 1016, 0 }, { 1100, 0 }, { 2000, 0 },
		{ 2999, 0 }, { 3000, 1 }, { 3999, 1 }, { 4000, 1 }, { 4999, 1 },
		{ 5000, 0 }, { 65535, 0 },
	};
	static uint8_t reason[130];

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		uint8_t pl[2] = { (uint8_t)(codes[i].code >> 8), (uint8_t)codes[i].code };
		char name[64];

		ok(ws_close_code_valid(codes[i].code) == (codes[i].valid != 0),
		   "ws_close_code_valid(%u) is %s", codes[i].code,
		   codes[i].valid ? "true" : "false");
		b->len = 0;
		put_frame(b, FIN | WS_OP_CLOSE, pl, 2);
		snprintf(name, sizeof(name), "frame_recv_close_code_%u_%s", codes[i].code,
			 codes[i].valid ? "accepted" : "is_1002");
		if (codes[i].valid) {
			EXPECT(name, b, NOMAX, W_CLOSE(codes[i].code, ""));
		} else {
			EXPECT(name, b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));
		}
	}

	{
		int bad = 0;

		for (unsigned c = 0; c <= 0xFFFF; c++) {
			bool want = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
				    (c >= 3000 && c <= 4999);

			bad += ws_close_code_valid((uint16_t)c) != want;
		}
		ok(bad == 0, "ws_close_code_valid over all 65536 codes (%d wrong)", bad);
	}

	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, S(""));
	EXPECT("frame_recv_close_empty_is_1005_no_status", b, NOMAX,
	       W_CLOSE(WS_CLOSE_NO_STATUS, ""));

	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, S("\x03"));
	EXPECT("frame_recv_close_1byte_payload_is_1002", b, NOMAX, W_ERR(WS_CLOSE_PROTOCOL));

	/* The ping leaves 03 E8 (1000) in the control buffer: a 1-byte
	 * close must not be read as a code from stale bytes. */
	b->len = 0;
	put_frame(b, FIN | WS_OP_PING, S("\x03\xe8"));
	put_frame(b, FIN | WS_OP_CLOSE, S("\x03"));
	EXPECT("frame_recv_close_1byte_payload_after_ping_is_1002", b, NOMAX,
	       W_PING("\x03\xe8"), W_ERR(WS_CLOSE_PROTOCOL));

	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, S("\x03\xe9" "going \xE2\x82\xAC"));
	EXPECT("frame_recv_close_with_utf8_reason", b, NOMAX,
	       W_CLOSE(1001, "going \xE2\x82\xAC"));

	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, S("\x0b\xb8" "bad \xED\xA0\x80"));
	EXPECT("frame_recv_close_reason_invalid_utf8_is_1007", b, NOMAX,
	       W_ERR(WS_CLOSE_INVALID_DATA));

	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, S("\x0b\xb8" "cut \xE2\x82"));
	EXPECT("frame_recv_close_reason_unfinished_utf8_is_1007", b, NOMAX,
	       W_ERR(WS_CLOSE_INVALID_DATA));

	memset(reason, 'r', sizeof(reason));
	reason[0] = 0x0f;
	reason[1] = 0xa0;	/* 4000 */
	b->len = 0;
	put_frame(b, FIN | WS_OP_CLOSE, reason, 125);
	EXPECT("frame_recv_close_with_123_byte_reason", b, NOMAX, W_ANY(WS_EV_CLOSE, 4000));
	ok(last.n == 1 && last.ev[0].payload_len == 123 && last.ev[0].payload[0] == 'r',
	   "  (reason of 123 bytes delivered)");
}

static void test_sticky_error(struct buf *b)
{
	struct ws_reader r;
	struct ws_event ev;
	size_t used;

	b->len = 0;
	put_frame_form(b, FIN | WS_OP_TEXT, S("x"), NULL, LEN_MIN);
	put_frame(b, FIN | WS_OP_TEXT, S("fine"));
	ws_reader_init(&r, NOMAX);
	used = ws_reader_feed(&r, b->p, b->len, &ev);
	ok(ev.type == WS_EV_ERROR && ev.code == WS_CLOSE_PROTOCOL && used <= 2,
	   "reader_error: unmasked frame fails at once (used %zu)", used);
	used = ws_reader_feed(&r, b->p + used, b->len - used, &ev);
	ok(used == 0 && ev.type == WS_EV_ERROR && ev.code == WS_CLOSE_PROTOCOL,
	   "reader_error_is_sticky: a later valid frame is not consumed");
	ok(ws_reader_feed(&r, NULL, 0, &ev) == 0 && ev.type == WS_EV_ERROR,
	   "reader_error_is_sticky: even for an empty feed");

	ws_reader_init(&r, NOMAX);
	ok(ws_reader_feed(&r, NULL, 0, &ev) == 0 && ev.type == WS_EV_NONE,
	   "reader_empty_feed_is_WS_EV_NONE");
}

/* ---- encoder tests ----------------------------------------------------- */

static void test_header_encode(void)
{
	static const struct {
		uint64_t len;
		size_t n;
		uint8_t bytes[10];
	} cases[] = {
		{ 0, 2, { 0x81, 0 } },
		{ 125, 2, { 0x81, 125 } },
		{ 126, 4, { 0x81, 126, 0x00, 0x7e } },
		{ 65535, 4, { 0x81, 126, 0xff, 0xff } },
		{ 65536, 10, { 0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 } },
		{ UINT64_C(0x0123456789abcdef), 10,
		  { 0x81, 127, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef } },
	};
	uint8_t out[WS_SERVER_HEADER_MAX + 4];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n;

		memset(out, 0xAA, sizeof(out));
		n = ws_frame_header_encode(out, WS_OP_TEXT, cases[i].len);
		ok(n == cases[i].n && memcmp(out, cases[i].bytes, n) == 0 &&
		   out[n] == 0xAA,
		   "ws_frame_header_encode(TEXT, %llu): %zu bytes, FIN, unmasked, %s length",
		   (unsigned long long)cases[i].len, cases[i].n,
		   n == 2 ? "7-bit" : n == 4 ? "16-bit" : "64-bit");
	}

	ok(ws_frame_header_encode(out, WS_OP_CLOSE, 2) == 2 && out[0] == 0x88 && out[1] == 2,
	   "ws_frame_header_encode(CLOSE, 2) is 88 02");
	ok(ws_frame_header_encode(out, WS_OP_PING, 0) == 2 && out[0] == 0x89 && out[1] == 0,
	   "ws_frame_header_encode(PING, 0) is 89 00");
	ok(ws_frame_header_encode(out, WS_OP_BINARY, 300) == 4 && out[0] == 0x82,
	   "ws_frame_header_encode(BINARY, 300) is 82 7E 01 2C");

	/* Round trip through the reader: set the mask bit and add a zero key
	 * to what the encoder wrote, and the reader must see the length. */
	{
		static const uint64_t lens[] = { 0, 125, 126, 65535, 65536, 70000 };
		static uint8_t frame[70000 + WS_HEADER_MAX];
		int bad = 0;

		memset(frame, 'z', sizeof(frame));
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct ws_reader r;
			struct ws_event ev;
			size_t n = ws_frame_header_encode(frame, WS_OP_BINARY, lens[i]);
			size_t total, used;

			frame[1] |= 0x80;
			memset(frame + n, 0, 4);
			total = n + 4 + (size_t)lens[i];
			ws_reader_init(&r, NOMAX);
			used = ws_reader_feed(&r, frame, total, &ev);
			if (used != total || ev.type != WS_EV_MESSAGE || ev.size != lens[i])
				bad++;
		}
		ok(bad == 0, "ws_frame_header_encode lengths round-trip through ws_reader");
	}
}

static void test_close_payload_encode(void)
{
	uint8_t out[WS_CONTROL_MAX];
	char reason[200];
	size_t n;

	n = ws_close_payload_encode(out, 1001, NULL);
	ok(n == 2 && out[0] == 0x03 && out[1] == 0xe9,
	   "ws_close_payload_encode(1001, NULL): code only, network order");
	n = ws_close_payload_encode(out, 1000, "");
	ok(n == 2 && out[0] == 0x03 && out[1] == 0xe8, "ws_close_payload_encode(1000, \"\")");
	n = ws_close_payload_encode(out, 4000, "bye");
	ok(n == 5 && out[0] == 0x0f && out[1] == 0xa0 && memcmp(out + 2, "bye", 3) == 0,
	   "ws_close_payload_encode(4000, \"bye\")");

	memset(reason, 'a', sizeof(reason));
	reason[123] = '\0';
	ok(ws_close_payload_encode(out, 1000, reason) == 125,
	   "close_payload_encode: 123-byte reason fits exactly in 125");
	reason[123] = 'a';
	reason[150] = '\0';
	ok(ws_close_payload_encode(out, 1000, reason) == 125,
	   "close_payload_encode: 150-byte ASCII reason is cut to 123");

	static const struct { size_t pad; const char *ch; size_t want; } cut[] = {
		{ 121, "\xC3\xA9", 125 },	/* 2-byte char ends exactly at 123 */
		{ 122, "\xC3\xA9", 124 },	/* straddles: dropped whole */
		{ 120, "\xE2\x82\xAC", 125 },
		{ 121, "\xE2\x82\xAC", 123 },
		{ 122, "\xE2\x82\xAC", 124 },
		{ 119, "\xF0\x9F\x98\x80", 125 },
		{ 120, "\xF0\x9F\x98\x80", 122 },
		{ 122, "\xF0\x9F\x98\x80", 124 },
	};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		size_t cl = strlen(cut[i].ch);

		memset(reason, 'a', cut[i].pad);
		memcpy(reason + cut[i].pad, cut[i].ch, cl);
		memcpy(reason + cut[i].pad + cl, "tail", 5);
		n = ws_close_payload_encode(out, 1000, reason);
		ok(n == cut[i].want && utf8_valid(out + 2, n - 2),
		   "close_payload_encode_truncates_at_utf8_boundary: %zu x 'a' + %zu-byte char -> %zu (got %zu)",
		   cut[i].pad, cl, cut[i].want, n);
	}

	n = ws_close_payload_encode(out, 1000, "ok\xFF" "rest");
	ok(n == 4 && memcmp(out + 2, "ok", 2) == 0,
	   "close_payload_encode: a reason that is not UTF-8 stops before the bad byte");

	/* What we send must be what a peer accepts. */
	{
		struct ws_reader r;
		struct ws_event ev;
		uint8_t frame[WS_HEADER_MAX + WS_CONTROL_MAX];
		size_t h;

		memset(reason, 'a', 122);
		memcpy(reason + 122, "\xE2\x82\xAC", 4);
		n = ws_close_payload_encode(out, 1000, reason);
		h = ws_frame_header_encode(frame, WS_OP_CLOSE, n);
		frame[1] |= 0x80;
		memset(frame + h, 0, 4);
		memcpy(frame + h + 4, out, n);
		ws_reader_init(&r, NOMAX);
		ws_reader_feed(&r, frame, h + 4 + n, &ev);
		ok(ev.type == WS_EV_CLOSE && ev.code == 1000 && ev.payload_len == 122,
		   "close_payload_encode output is accepted by ws_reader");
	}
}

int main(void)
{
	struct buf b;

	buf_init(&b);
	test_rfc_examples(&b);
	test_lengths(&b);
	test_max_message(&b);
	test_header_rules(&b);
	test_fragmentation(&b);
	test_text_utf8(&b);
	test_mask(&b);
	test_close(&b);
	test_sticky_error(&b);
	test_header_encode();
	test_close_payload_encode();
	free(b.p);
	return done_testing();
}
