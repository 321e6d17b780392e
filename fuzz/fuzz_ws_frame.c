/* fuzz_ws_frame.c - libFuzzer target for the WebSocket frame reader.
 *
 * Input: byte 0 chooses max_message (low nibble) and how the split pattern
 * is drawn (high nibble), byte 1 seeds the piece sizes and, in its low bit,
 * turns permessage-deflate on (ws_reader_enable_deflate: RSV1 allowed on
 * the first frame of a data message, the payload of such a message handed
 * to a callback that fails it with 1007 once it passes (byte 1 >> 1) * 8
 * bytes, 127 meaning never); the rest is the byte stream a client sends.  The stream is fed three ways:
 *   1. in pieces drawn from the pattern (each copied into a buffer of
 *      exactly its size, so ASan sees a read past the piece), with some
 *      empty feeds in between;
 *   2. whole;
 *   3. one byte at a time;
 * and an independent model of RFC 6455's rules, written from the RFC and
 * not from ws_frame.c, computes the events the stream must give.  Every
 * feed is checked against ws_frame.h's promises (consumed <= n, WS_EV_NONE
 * only when all was consumed, sticky errors, close codes, control payloads
 * <= 125, message size <= max_message), and the four event lists must agree:
 * type, code, opcode, size, control payload, compressed flag and compressed
 * payload (as the callback saw it) and the stream offset where the event
 * ends.  The one allowed difference is the offset of a 1007 error, since
 * invalid UTF-8 in a text payload (or the callback's refusal) may be
 * reported at the end of the chunk being validated.
 * The same bytes also drive the encoders: ws_close_payload_encode (code and
 * reason from the input), ws_frame_header_encode and
 * ws_frame_header_encode_rsv1, whose output, masked as a client would, must
 * read back through the reader.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_ws_frame.c src/ws_frame.c src/utf8.c
 * Run:   ./fuzz_ws_frame -max_len=4096 fuzz/corpus/ws_frame  (or scripts/fuzz ws_frame)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t fz_max_table[16] = {
	0, 1, 2, 7, 125, 126, 127, 128, 200, 1000, 4095, 65535, 65536,
	UINT64_C(1) << 32, UINT64_C(0x7FFFFFFFFFFFFFFF), UINT64_MAX
};

/* ---- event lists ------------------------------------------------------ */

struct fz_ev {
	enum ws_event_type type;
	uint8_t opcode;
	uint16_t code;
	uint64_t size;
	size_t payload_len;
	uint32_t hash;		/* FNV-1a of the control payload (close: reason), or of
				 * a compressed message's payload */
	bool compressed;
	size_t end;		/* stream offset just past the event's last byte */
};

/* permessage-deflate, as the input asks */
struct fz_pmd {
	bool on;
	uint64_t limit;		/* callback refuses a message past this many bytes */
	uint32_t hash;		/* of the message in progress, as the callback saw it */
	uint64_t seen;
};

#define FZ_HASH_INIT 2166136261u

static uint32_t fz_hash_more(uint32_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

struct fz_log {
	struct fz_ev *ev;
	size_t n, cap;
};

static uint32_t fz_hash(const uint8_t *p, size_t n)
{
	return fz_hash_more(FZ_HASH_INIT, p, n);
}

static void fz_log_push(struct fz_log *log, const struct fz_ev *e)
{
	if (log->n == log->cap) {
		size_t cap = log->cap ? 2 * log->cap : 16;
		struct fz_ev *ev = realloc(log->ev, cap * sizeof(*ev));

		if (ev == NULL)
			abort();
		log->ev = ev;
		log->cap = cap;
	}
	log->ev[log->n++] = *e;
}

/* Two logs must agree event by event (see the top of the file). */
static void fz_log_compare(const struct fz_log *a, const struct fz_log *b)
{
	if (a->n != b->n)
		abort();
	for (size_t i = 0; i < a->n; i++) {
		const struct fz_ev *x = &a->ev[i], *y = &b->ev[i];

		if (x->type != y->type || x->code != y->code || x->opcode != y->opcode ||
		    x->size != y->size || x->payload_len != y->payload_len || x->hash != y->hash ||
		    x->compressed != y->compressed)
			abort();
		if (x->end != y->end && !(x->type == WS_EV_ERROR && x->code == WS_CLOSE_INVALID_DATA))
			abort();
	}
}

/* ---- the reader under test -------------------------------------------- */

struct fz_split {
	int kind;		/* 0 whole, 1 one byte, 2 drawn */
	unsigned pattern;	/* high nibble of byte 0 */
	uint32_t rng;
};

static uint32_t fz_rand(struct fz_split *s)
{
	/* xorshift32; a zero state would stay zero */
	uint32_t x = s->rng ? s->rng : 0x9E3779B9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	s->rng = x;
	return x;
}

/* The size of the next piece, 0 (an empty feed) allowed. */
static size_t fz_next_piece(struct fz_split *s, size_t left)
{
	size_t n;

	if (s->kind == 0)
		return left;
	if (s->kind == 1)
		return 1;
	if (fz_rand(s) % 16 == 0)
		return 0;
	switch (s->pattern & 3) {
	case 0:		/* a fixed size */
		n = 1 + (s->pattern >> 2) * 3;
		break;
	case 1:		/* small pieces: cuts inside headers */
		n = 1 + fz_rand(s) % 8;
		break;
	case 2:		/* any size up to a long payload */
		n = 1 + fz_rand(s) % 300;
		break;
	default:	/* mostly big, sometimes one byte */
		n = fz_rand(s) % 4 == 0 ? 1 : 1 + fz_rand(s) % 1500;
		break;
	}
	return n < left ? n : left;
}

static void fz_check_event(const struct ws_event *ev, uint64_t max_message)
{
	switch (ev->type) {
	case WS_EV_NONE:
		break;
	case WS_EV_MESSAGE:
		if (ev->opcode != WS_OP_TEXT && ev->opcode != WS_OP_BINARY)
			abort();
		if (ev->size > max_message)
			abort();
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
		if (ev->payload_len > WS_CONTROL_MAX || (ev->payload_len && ev->payload == NULL))
			abort();
		break;
	case WS_EV_CLOSE:
		if (ev->payload_len > WS_CONTROL_MAX - 2 || (ev->payload_len && ev->payload == NULL))
			abort();
		if (ev->code == WS_CLOSE_NO_STATUS) {
			if (ev->payload_len != 0)
				abort();
		} else if (!ws_close_code_valid(ev->code)) {
			abort();
		}
		break;
	case WS_EV_ERROR:
		if (ev->code != WS_CLOSE_PROTOCOL && ev->code != WS_CLOSE_INVALID_DATA &&
		    ev->code != WS_CLOSE_TOO_BIG)
			abort();
		if (ev->reason == NULL)
			abort();
		break;
	default:
		abort();
	}
}

static void fz_record(struct fz_log *log, const struct ws_event *ev, size_t end,
		      struct fz_pmd *pmd)
{
	struct fz_ev e;

	memset(&e, 0, sizeof(e));
	e.type = ev->type;
	e.end = end;
	switch (ev->type) {
	case WS_EV_MESSAGE:
		e.opcode = ev->opcode;
		e.size = ev->size;
		e.compressed = ev->compressed;
		if (ev->compressed) {
			if (!pmd->on || pmd->seen != ev->size)
				abort();
			e.hash = pmd->hash;
			e.payload_len = (size_t)pmd->seen;
		}
		pmd->hash = FZ_HASH_INIT;
		pmd->seen = 0;
		break;
	case WS_EV_PING:
	case WS_EV_PONG:
	case WS_EV_CLOSE:
		e.code = ev->type == WS_EV_CLOSE ? ev->code : 0;
		e.payload_len = ev->payload_len;
		e.hash = fz_hash(ev->payload, ev->payload_len);
		break;
	case WS_EV_ERROR:
		e.code = ev->code;
		break;
	default:
		abort();
	}
	fz_log_push(log, &e);
}

/* After an error every feed, empty or not, must repeat it and consume nothing. */
static void fz_check_sticky(struct ws_reader *r, const uint8_t *rest, size_t n, uint16_t code)
{
	static const uint8_t ping[6] = { 0x89, 0x80, 0, 0, 0, 0 };
	const uint8_t *feeds[3] = { rest, ping, ping };
	size_t lens[3] = { n, sizeof(ping), 0 };

	for (int i = 0; i < 3; i++) {
		struct ws_event ev;
		size_t used = ws_reader_feed(r, feeds[i], lens[i], &ev);

		if (used != 0 || ev.type != WS_EV_ERROR || ev.code != code)
			abort();
	}
}

/* The callback of a deflate reader: hashes what it is given, and refuses a
 * message once it has seen more than the limit. */
static uint16_t fz_on_compressed(void *arg, uint8_t opcode, const uint8_t *p, size_t n,
				 const char **reason)
{
	struct fz_pmd *pmd = arg;

	if (n == 0 || (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY))
		abort();
	pmd->hash = fz_hash_more(pmd->hash, p, n);
	pmd->seen += n;
	if (pmd->seen > pmd->limit) {
		*reason = "over the fuzzer's limit";
		return WS_CLOSE_INVALID_DATA;
	}
	return 0;
}

static void fz_run(const uint8_t *d, size_t n, uint64_t max, struct fz_split *sp,
		   struct fz_log *log, struct fz_pmd pmd)
{
	struct ws_reader r;
	size_t off = 0;
	uint8_t *copy = NULL;

	pmd.hash = FZ_HASH_INIT;
	pmd.seen = 0;
	ws_reader_init(&r, max);
	if (pmd.on)
		ws_reader_enable_deflate(&r, fz_on_compressed, &pmd);
	while (off < n) {
		size_t piece = fz_next_piece(sp, n - off);
		const uint8_t *p;
		size_t left = piece;
		bool failed = false;

		/* An exact-size heap copy: a read past the piece is a bug even
		 * when more input follows it in memory. */
		free(copy);
		copy = malloc(piece ? piece : 1);
		if (copy == NULL)
			abort();
		memcpy(copy, d + off, piece);
		p = copy;
		do {
			struct ws_event ev;
			size_t used = ws_reader_feed(&r, p, left, &ev);

			if (used > left)
				abort();
			if (ev.type == WS_EV_NONE && used != left)
				abort();
			/* a live reader produces an event only on a byte it took */
			if (ev.type != WS_EV_NONE && used == 0)
				abort();
			fz_check_event(&ev, max);
			p += used;
			left -= used;
			off += used;
			if (ev.type != WS_EV_NONE)
				fz_record(log, &ev, off, &pmd);
			if (ev.type == WS_EV_ERROR) {
				fz_check_sticky(&r, d + off, n - off, ev.code);
				failed = true;
				break;
			}
		} while (left > 0);
		if (failed)
			break;
	}
	free(copy);
}

/* ---- the model ---------------------------------------------------------- */

/* UTF-8 per RFC 3629, failing at the first byte after which no valid
 * completion exists.  The code points a prefix can still become form one
 * range: fill the missing continuation bytes with 0x80 and with 0xBF. */
struct fz_utf8 {
	uint8_t seq[4];
	unsigned have, want;
	bool bad;
};

static uint32_t fz_utf8_decode(const uint8_t *s, unsigned have, unsigned want, uint8_t fill)
{
	static const uint8_t lead_mask[5] = { 0, 0, 0x1F, 0x0F, 0x07 };
	uint32_t cp = s[0] & lead_mask[want];

	for (unsigned i = 1; i < want; i++)
		cp = (cp << 6) | ((i < have ? s[i] : fill) & 0x3F);
	return cp;
}

static bool fz_utf8_possible(const struct fz_utf8 *u)
{
	static const uint32_t lo_of[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	static const uint32_t hi_of[5] = { 0, 0, 0x7FF, 0xFFFF, 0x10FFFF };
	uint32_t lo = fz_utf8_decode(u->seq, u->have, u->want, 0x80);
	uint32_t hi = fz_utf8_decode(u->seq, u->have, u->want, 0xBF);

	if (lo < lo_of[u->want])
		lo = lo_of[u->want];
	if (hi > hi_of[u->want])
		hi = hi_of[u->want];
	if (lo > hi)
		return false;
	/* nothing but surrogates left */
	return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static bool fz_utf8_byte(struct fz_utf8 *u, uint8_t b)
{
	if (u->bad)
		return false;
	if (u->want == 0) {
		if (b < 0x80)
			return true;
		if (b >= 0xC0 && b <= 0xDF)
			u->want = 2;
		else if (b >= 0xE0 && b <= 0xEF)
			u->want = 3;
		else if (b >= 0xF0 && b <= 0xF7)
			u->want = 4;
		else
			return !(u->bad = true);
	} else if ((b & 0xC0) != 0x80) {
		return !(u->bad = true);
	}
	u->seq[u->have++] = b;
	if (!fz_utf8_possible(u))
		return !(u->bad = true);
	if (u->have == u->want)
		u->have = u->want = 0;
	return true;
}

static bool fz_close_code_ok(unsigned c)
{
	/* RFC 6455 7.4.1 and the IANA registry: 1004-1006 and 1015 are not
	 * for the wire, 1016-2999 are unassigned, 5000+ do not exist. */
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

static void fz_model_event(struct fz_log *log, enum ws_event_type type, uint16_t code,
			   size_t end)
{
	struct fz_ev e;

	memset(&e, 0, sizeof(e));
	e.type = type;
	e.code = code;
	e.end = end;
	fz_log_push(log, &e);
}

/* The events the whole stream d[0..n) must give, from RFC 6455 section 5
 * and, with pmd->on, RFC 7692 section 6. */
static void fz_model(const uint8_t *d, size_t n, uint64_t max, struct fz_log *log,
		     const struct fz_pmd *pmd)
{
	uint8_t msg_op = 0;		/* data message in progress */
	bool msg_z = false;		/* ... and it is compressed */
	uint32_t z_hash = FZ_HASH_INIT;
	uint64_t z_seen = 0;
	uint64_t msg_size = 0;
	struct fz_utf8 text;
	size_t i = 0;

	memset(&text, 0, sizeof(text));
	while (i < n) {
		uint8_t b0 = d[i], op = b0 & 0x0F, b1, len7, ctl_buf[WS_CONTROL_MAX];
		bool fin = (b0 & 0x80) != 0, control = (op & 0x08) != 0;
		/* RSV1 alone, on a text or binary frame, once negotiated */
		bool rsv_ok = (b0 & 0x70) == 0 ||
		    (pmd->on && (b0 & 0x70) == 0x40 && (op == 1 || op == 2));
		size_t ext, hdr_end, avail;
		uint64_t len = 0;
		const uint8_t *mask;

		/* Each rule fails at the byte that decides it. */
		if (!rsv_ok || !(op <= 2 || (op >= 8 && op <= 10)) || (control && !fin) ||
		    (op == 0 && msg_op == 0) || ((op == 1 || op == 2) && msg_op != 0)) {
			fz_model_event(log, WS_EV_ERROR, WS_CLOSE_PROTOCOL, i + 1);
			return;
		}
		if (i + 1 >= n)
			return;
		b1 = d[i + 1];
		len7 = b1 & 0x7F;
		if (!(b1 & 0x80) || (control && len7 > 125)) {
			fz_model_event(log, WS_EV_ERROR, WS_CLOSE_PROTOCOL, i + 2);
			return;
		}
		ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
		if (i + 2 + ext > n)
			return;
		if (ext == 0)
			len = len7;
		for (size_t k = 0; k < ext; k++)
			len = (len << 8) | d[i + 2 + k];
		if (len >> 63) {
			fz_model_event(log, WS_EV_ERROR, WS_CLOSE_PROTOCOL, i + 2 + ext);
			return;
		}
		if (!control && len > max - (op == 0 ? msg_size : 0)) {
			fz_model_event(log, WS_EV_ERROR, WS_CLOSE_TOO_BIG, i + 2 + ext);
			return;
		}
		hdr_end = i + 2 + ext + 4;
		if (hdr_end > n)
			return;
		mask = d + hdr_end - 4;
		if (!control) {
			if (op != 0) {
				msg_op = op;
				msg_size = 0;
				msg_z = (b0 & 0x40) != 0;
				z_hash = FZ_HASH_INIT;
				z_seen = 0;
				memset(&text, 0, sizeof(text));
			}
			msg_size += len;
		}
		avail = n - hdr_end < len ? n - hdr_end : (size_t)len;
		for (size_t k = 0; k < avail; k++) {
			uint8_t b = d[hdr_end + k] ^ mask[k & 3];

			if (control) {
				ctl_buf[k] = b;
			} else if (msg_z) {
				z_hash = fz_hash_more(z_hash, &b, 1);
				if (++z_seen > pmd->limit) {
					fz_model_event(log, WS_EV_ERROR, WS_CLOSE_INVALID_DATA,
						       hdr_end + k + 1);
					return;
				}
			} else if (msg_op == 1 && !fz_utf8_byte(&text, b)) {
				/* where it is reported is not compared */
				fz_model_event(log, WS_EV_ERROR, WS_CLOSE_INVALID_DATA, hdr_end + k + 1);
				return;
			}
		}
		if (avail < len)
			return;
		i = hdr_end + avail;
		if (op == 9 || op == 10) {
			struct fz_ev e;

			memset(&e, 0, sizeof(e));
			e.type = op == 9 ? WS_EV_PING : WS_EV_PONG;
			e.payload_len = avail;
			e.hash = fz_hash(ctl_buf, avail);
			e.end = i;
			fz_log_push(log, &e);
		} else if (op == 8) {
			struct fz_ev e;
			struct fz_utf8 reason;

			memset(&e, 0, sizeof(e));
			memset(&reason, 0, sizeof(reason));
			e.type = WS_EV_CLOSE;
			e.end = i;
			e.code = WS_CLOSE_NO_STATUS;
			e.hash = fz_hash(ctl_buf, 0);
			if (avail == 1 || (avail >= 2 && !fz_close_code_ok((unsigned)(ctl_buf[0] << 8 | ctl_buf[1])))) {
				fz_model_event(log, WS_EV_ERROR, WS_CLOSE_PROTOCOL, i);
				return;
			}
			if (avail >= 2) {
				bool ok = true;

				for (size_t k = 2; k < avail && ok; k++)
					ok = fz_utf8_byte(&reason, ctl_buf[k]);
				if (!ok || reason.want != 0) {
					fz_model_event(log, WS_EV_ERROR, WS_CLOSE_INVALID_DATA, i);
					return;
				}
				e.code = (uint16_t)(ctl_buf[0] << 8 | ctl_buf[1]);
				e.payload_len = avail - 2;
				e.hash = fz_hash(ctl_buf + 2, avail - 2);
			}
			fz_log_push(log, &e);
		} else if (fin) {
			struct fz_ev e;

			if (msg_op == 1 && !msg_z && text.want != 0) {
				fz_model_event(log, WS_EV_ERROR, WS_CLOSE_INVALID_DATA, i);
				return;
			}
			memset(&e, 0, sizeof(e));
			e.type = WS_EV_MESSAGE;
			e.opcode = msg_op;
			e.size = msg_size;
			e.end = i;
			e.compressed = msg_z;
			if (msg_z) {
				e.hash = z_hash;
				e.payload_len = (size_t)z_seen;
			}
			fz_log_push(log, &e);
			msg_op = 0;
			msg_size = 0;
			msg_z = false;
		}
	}
}

/* ---- the encoders ------------------------------------------------------- */

/* A server header turned into a client's: mask bit and key added. */
static size_t fz_client_frame(uint8_t *out, const uint8_t *hdr, size_t hlen,
			      const uint8_t *payload, size_t plen)
{
	static const uint8_t mask[4] = { 0x5a, 0xa5, 0x3c, 0xc3 };

	memcpy(out, hdr, hlen);
	out[1] |= 0x80;
	memcpy(out + hlen, mask, 4);
	for (size_t i = 0; i < plen; i++)
		out[hlen + 4 + i] = payload[i] ^ mask[i & 3];
	return hlen + 4 + plen;
}

/* ws_close_payload_encode keeps the longest prefix of the reason that ends
 * on a code point, before any invalid byte, within 123 bytes; its output
 * framed as a client would send it reads back as the same close. */
static void fz_encoders(const uint8_t *d, size_t n)
{
	uint8_t pl[WS_CONTROL_MAX], hdr[WS_SERVER_HEADER_MAX];
	uint8_t frame[WS_SERVER_HEADER_MAX + 4 + WS_CONTROL_MAX];
	char reason[200];
	struct fz_utf8 u;
	struct ws_reader r;
	struct ws_event ev;
	uint16_t code;
	uint64_t len = 0, want_len;
	size_t rlen, plen, hlen, keep = 0, flen;

	if (n < 2)
		return;
	code = (uint16_t)(d[0] << 8 | d[1]);
	rlen = n - 2 < sizeof(reason) - 1 ? n - 2 : sizeof(reason) - 1;
	memcpy(reason, d + 2, rlen);
	reason[rlen] = '\0';
	memset(&u, 0, sizeof(u));
	for (size_t i = 0; i < WS_CONTROL_MAX - 2 && reason[i] != '\0'; i++) {
		if (!fz_utf8_byte(&u, (uint8_t)reason[i]))
			break;
		if (u.want == 0)
			keep = i + 1;
	}
	plen = ws_close_payload_encode(pl, code, reason);
	if (plen != 2 + keep || pl[0] != (uint8_t)(code >> 8) || pl[1] != (uint8_t)code ||
	    memcmp(pl + 2, reason, keep) != 0)
		abort();
	if (ws_close_payload_encode(pl, code, NULL) != 2)
		abort();
	plen = ws_close_payload_encode(pl, code, reason);
	hlen = ws_frame_header_encode(hdr, WS_OP_CLOSE, plen);
	if (hlen != 2 || hdr[0] != 0x88 || hdr[1] != plen)
		abort();
	flen = fz_client_frame(frame, hdr, hlen, pl, plen);
	ws_reader_init(&r, 0);
	if (ws_reader_feed(&r, frame, flen, &ev) != flen)
		abort();
	if (ws_close_code_valid(code)) {
		if (ev.type != WS_EV_CLOSE || ev.code != code || ev.payload_len != keep ||
		    memcmp(ev.payload, reason, keep) != 0)
			abort();
	} else if (ev.type != WS_EV_ERROR || ev.code != WS_CLOSE_PROTOCOL) {
		abort();
	}

	/* a header of every size class, read back by the reader */
	for (size_t i = 0; i < 8 && i < n; i++)
		len = (len << 8) | d[i];
	len >>= d[n - 1] & 63;
	hlen = ws_frame_header_encode(hdr, WS_OP_BINARY, len);
	want_len = len & UINT64_C(0x7FFFFFFFFFFFFFFF);
	if (hlen != (len <= 125 ? 2u : len <= 0xFFFF ? 4u : 10u) || hdr[0] != 0x82)
		abort();
	flen = fz_client_frame(frame, hdr, hlen, NULL, 0);
	ws_reader_init(&r, UINT64_MAX);
	if (ws_reader_feed(&r, frame, flen, &ev) != flen)
		abort();
	if (want_len == 0 ? ev.type != WS_EV_MESSAGE || ev.size != 0 : ev.type != WS_EV_NONE ||
	    r.remaining != want_len)
		abort();

	/* the same with RSV1: one bit apart, and a compressed message to a
	 * deflate reader, its payload (the reason bytes) given to the callback */
	{
		uint8_t h1[WS_SERVER_HEADER_MAX];
		size_t h1len = ws_frame_header_encode_rsv1(h1, WS_OP_BINARY, len);
		struct fz_pmd pmd = { true, UINT64_MAX, FZ_HASH_INIT, 0 };
		size_t blen = rlen < WS_CONTROL_MAX ? rlen : WS_CONTROL_MAX;

		if (h1len != hlen || h1[0] != (hdr[0] | 0x40) || memcmp(h1 + 1, hdr + 1, hlen - 1) != 0)
			abort();
		hlen = ws_frame_header_encode_rsv1(hdr, WS_OP_TEXT, blen);
		flen = fz_client_frame(frame, hdr, hlen, (const uint8_t *)reason, blen);
		ws_reader_init(&r, UINT64_MAX);
		ws_reader_enable_deflate(&r, fz_on_compressed, &pmd);
		if (ws_reader_feed(&r, frame, flen, &ev) != flen || ev.type != WS_EV_MESSAGE ||
		    !ev.compressed || ev.opcode != WS_OP_TEXT || ev.size != blen || pmd.seen != blen ||
		    pmd.hash != fz_hash((const uint8_t *)reason, blen))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_log model = { 0 }, drawn = { 0 }, whole = { 0 }, bytes = { 0 };
	struct fz_split sp;
	struct fz_pmd pmd;
	uint64_t max;

	if (size < 2)
		return 0;
	fz_encoders(data, size);
	max = fz_max_table[data[0] & 0x0F];
	memset(&sp, 0, sizeof(sp));
	sp.pattern = data[0] >> 4;
	sp.rng = 0x01000193u * (uint32_t)(data[1] + 1);
	memset(&pmd, 0, sizeof(pmd));
	pmd.on = (data[1] & 1) != 0;
	pmd.limit = (data[1] >> 1) == 127 ? UINT64_MAX : (uint64_t)(data[1] >> 1) * 8;
	data += 2;
	size -= 2;

	fz_model(data, size, max, &model, &pmd);
	sp.kind = 2;
	fz_run(data, size, max, &sp, &drawn, pmd);
	sp.kind = 0;
	fz_run(data, size, max, &sp, &whole, pmd);
	sp.kind = 1;
	fz_run(data, size, max, &sp, &bytes, pmd);

	fz_log_compare(&whole, &model);
	fz_log_compare(&whole, &drawn);
	fz_log_compare(&whole, &bytes);

	free(model.ev);
	free(drawn.ev);
	free(whole.ev);
	free(bytes.ev);
	return 0;
}
