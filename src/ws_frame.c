/* ws_frame.c - RFC 6455 frame codec for the server side, with no I/O.
 *
 * The reader consumes one byte of header at a time and checks each rule at
 * the byte that makes it decidable, so the events (and the point where an
 * error is reported) do not depend on how the input was split by the
 * network.  Payload is handled in runs, carrying the mask position across
 * calls.
 */
#include "autoconfig.h"

#include "ws_frame.h"

#include <string.h>

/* Unmasked data is validated through a small stack buffer: the input is
 * const and nothing may be allocated. */
#define WS_UNMASK_CHUNK 256
#define WS_RSV1 0x40
#define WS_RSV_ALL 0x70

bool ws_close_code_valid(uint16_t code)
{
	/* 1004 is reserved, 1005/1006 are never sent and 1015 (TLS failure)
	 * is reserved for reporting, so none may appear on the wire. */
	return (code >= 1000 && code <= 1003) ||
	       (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

static size_t ws_header_encode(uint8_t *out, uint8_t flags, enum ws_opcode op,
			       uint64_t payload_len)
{
	out[0] = (uint8_t)(0x80 | flags | ((unsigned)op & 0x0F));
	if (payload_len <= 125) {
		out[1] = (uint8_t)payload_len;
		return 2;
	}
	if (payload_len <= 0xFFFF) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		return 4;
	}
	/* The top bit must stay clear: a peer rejects it as a protocol error. */
	payload_len &= UINT64_C(0x7FFFFFFFFFFFFFFF);
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
	return 10;
}

size_t ws_frame_header_encode(uint8_t *out, enum ws_opcode op, uint64_t payload_len)
{
	return ws_header_encode(out, 0, op, payload_len);
}

size_t ws_frame_header_encode_rsv1(uint8_t *out, enum ws_opcode op, uint64_t payload_len)
{
	return ws_header_encode(out, WS_RSV1, op, payload_len);
}

size_t ws_close_payload_encode(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason)
{
	struct utf8_validator v;
	size_t keep = 0;

	out[0] = (uint8_t)(code >> 8);
	out[1] = (uint8_t)code;
	if (reason == NULL)
		return 2;
	/* Keep the longest prefix that ends on a complete code point, so a
	 * cut (or a caller's bad string) never makes the peer fail the
	 * connection with 1007 over our own close frame. */
	utf8_init(&v);
	for (size_t i = 0; i < WS_CONTROL_MAX - 2 && reason[i] != '\0'; i++) {
		enum utf8_result res = utf8_feed(&v, (const uint8_t *)reason + i, 1);

		if (res == UTF8_INVALID)
			break;
		if (res == UTF8_OK)
			keep = i + 1;
	}
	memcpy(out + 2, reason, keep);
	return 2 + keep;
}

void ws_reader_init(struct ws_reader *r, uint64_t max_message)
{
	memset(r, 0, sizeof(*r));
	r->max_message = max_message;
	utf8_init(&r->utf8);
}

void ws_reader_enable_deflate(struct ws_reader *r, ws_reader_compressed_cb cb, void *arg)
{
	r->deflate = true;
	r->on_compressed = cb;
	r->cb_arg = arg;
}

static bool ws_opcode_is_control(uint8_t op)
{
	return (op & 0x08) != 0;
}

/* RFC 7692 section 6: with permessage-deflate, RSV1 (and it alone) may be set on
 * the first frame of a data message; a continuation or control frame
 * carrying it fails the connection like any reserved bit. */
static bool ws_reader_rsv_ok(const struct ws_reader *r, uint8_t b)
{
	uint8_t op = b & 0x0F;

	return (b & WS_RSV_ALL) == 0 ||
	       (r->deflate && (b & WS_RSV_ALL) == WS_RSV1 && (op == WS_OP_TEXT || op == WS_OP_BINARY));
}

static bool ws_opcode_known(uint8_t op)
{
	return op == WS_OP_CONT || op == WS_OP_TEXT || op == WS_OP_BINARY ||
	       op == WS_OP_CLOSE || op == WS_OP_PING || op == WS_OP_PONG;
}

static void ws_reader_fail(struct ws_reader *r, struct ws_event *ev,
			   uint16_t code, const char *reason)
{
	r->failed = true;
	r->fail_code = code;
	ev->type = WS_EV_ERROR;
	ev->code = code;
	ev->reason = reason;
}

/* Bytes of extended length that the 7-bit length field announces. */
static uint8_t ws_ext_len_bytes(uint8_t len7)
{
	return len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
}

static uint64_t ws_reader_payload_len(const struct ws_reader *r)
{
	uint8_t len7 = r->hdr[1] & 0x7F;
	uint64_t len = 0;

	if (len7 < 126)
		return len7;
	for (uint8_t i = 0; i < ws_ext_len_bytes(len7); i++)
		len = (len << 8) | r->hdr[2 + i];
	return len;
}

/* The first header byte: everything about the opcode and the message state
 * is decidable here.  Returns false after reporting an error. */
static bool ws_reader_check_byte0(struct ws_reader *r, struct ws_event *ev)
{
	uint8_t b = r->hdr[0];

	r->fin = (b & 0x80) != 0;
	r->opcode = b & 0x0F;
	if (!ws_reader_rsv_ok(r, b)) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "reserved bits set");
		return false;
	}
	if (!ws_opcode_known(r->opcode)) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "unknown opcode");
		return false;
	}
	if (ws_opcode_is_control(r->opcode)) {
		if (!r->fin) {
			ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "fragmented control frame");
			return false;
		}
	} else if (r->opcode == WS_OP_CONT) {
		if (r->msg_opcode == 0) {
			ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "continuation without a message");
			return false;
		}
	} else if (r->msg_opcode != 0) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "new message inside a fragmented one");
		return false;
	}
	return true;
}

static bool ws_reader_check_byte1(struct ws_reader *r, struct ws_event *ev)
{
	uint8_t b = r->hdr[1];

	if (!(b & 0x80)) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "unmasked frame");
		return false;
	}
	if (ws_opcode_is_control(r->opcode) && (b & 0x7F) > WS_CONTROL_MAX) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "control frame too long");
		return false;
	}
	return true;
}

/* Once the length is known: reject an impossible one, and a message that
 * would grow past the limit before any of its payload arrives. */
static bool ws_reader_check_len(struct ws_reader *r, struct ws_event *ev)
{
	uint64_t len = ws_reader_payload_len(r);

	if (len >> 63) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "64-bit length with top bit set");
		return false;
	}
	r->remaining = len;
	if (ws_opcode_is_control(r->opcode))
		return true;
	/* msg_size never exceeds max_message, so this cannot wrap. */
	if (len > r->max_message - r->msg_size) {
		ws_reader_fail(r, ev, WS_CLOSE_TOO_BIG, "message too big");
		return false;
	}
	return true;
}

/* The header is complete: commit the message state it implies. */
static void ws_reader_start_payload(struct ws_reader *r, uint8_t hdr_need)
{
	memcpy(r->mask, r->hdr + hdr_need - 4, 4);
	r->mask_pos = 0;
	r->in_payload = true;
	if (ws_opcode_is_control(r->opcode)) {
		r->ctl_len = 0;
		return;
	}
	if (r->opcode != WS_OP_CONT) {
		r->msg_opcode = r->opcode;
		r->msg_size = 0;
		r->msg_compressed = (r->hdr[0] & WS_RSV1) != 0;
		utf8_init(&r->utf8);
	}
	r->msg_size += r->remaining;
}

static void ws_reader_close_event(struct ws_reader *r, struct ws_event *ev)
{
	uint16_t code;

	if (r->ctl_len == 0) {
		ev->type = WS_EV_CLOSE;
		ev->code = WS_CLOSE_NO_STATUS;
		ev->payload = r->ctl;
		ev->payload_len = 0;
		return;
	}
	if (r->ctl_len == 1) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "close payload of 1 byte");
		return;
	}
	code = (uint16_t)((r->ctl[0] << 8) | r->ctl[1]);
	if (!ws_close_code_valid(code)) {
		ws_reader_fail(r, ev, WS_CLOSE_PROTOCOL, "invalid close code");
		return;
	}
	if (!utf8_valid(r->ctl + 2, r->ctl_len - 2u)) {
		ws_reader_fail(r, ev, WS_CLOSE_INVALID_DATA, "close reason not UTF-8");
		return;
	}
	ev->type = WS_EV_CLOSE;
	ev->code = code;
	ev->payload = r->ctl + 2;
	ev->payload_len = r->ctl_len - 2u;
}

/* The frame's payload is all in: produce its event, if it has one. */
static void ws_reader_end_frame(struct ws_reader *r, struct ws_event *ev)
{
	r->in_payload = false;
	r->hdr_len = 0;
	switch (r->opcode) {
	case WS_OP_PING:
	case WS_OP_PONG:
		ev->type = r->opcode == WS_OP_PING ? WS_EV_PING : WS_EV_PONG;
		ev->payload = r->ctl;
		ev->payload_len = r->ctl_len;
		return;
	case WS_OP_CLOSE:
		ws_reader_close_event(r, ev);
		return;
	default:
		break;
	}
	if (!r->fin)
		return;
	if (r->msg_opcode == WS_OP_TEXT && !r->msg_compressed && r->utf8.state != 0) {
		ws_reader_fail(r, ev, WS_CLOSE_INVALID_DATA, "text ends inside a UTF-8 sequence");
		return;
	}
	ev->type = WS_EV_MESSAGE;
	ev->opcode = r->msg_opcode;
	ev->size = r->msg_size;
	ev->compressed = r->msg_compressed;
	r->msg_opcode = 0;
	r->msg_size = 0;
	r->msg_compressed = false;
	utf8_init(&r->utf8);
}

static void ws_unmask(struct ws_reader *r, uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		dst[i] = src[i] ^ r->mask[r->mask_pos];
		r->mask_pos = (r->mask_pos + 1) & 3;
	}
}

/* Compressed payload goes, unmasked, to the caller's callback.  False
 * after reporting the error it returned; *done then counts the bytes of p
 * taken so far. */
static bool ws_reader_compressed(struct ws_reader *r, const uint8_t *p, size_t n,
				 struct ws_event *ev, size_t *done)
{
	uint8_t buf[WS_UNMASK_CHUNK];

	if (r->on_compressed == NULL) {
		/* nobody reads it: keep only the mask position */
		r->mask_pos = (uint8_t)((r->mask_pos + n) & 3);
		return true;
	}
	for (size_t off = 0; off < n; ) {
		size_t k = n - off;
		const char *why = NULL;
		uint16_t code;

		if (k > sizeof(buf))
			k = sizeof(buf);
		ws_unmask(r, buf, p + off, k);
		off += k;
		code = r->on_compressed(r->cb_arg, r->msg_opcode, buf, k, &why);
		if (code != 0) {
			ws_reader_fail(r, ev, code, why != NULL ? why : "compressed payload refused");
			*done = off;
			return false;
		}
	}
	return true;
}

/* Takes up to n payload bytes of the current frame; returns how many. */
static size_t ws_reader_payload(struct ws_reader *r, const uint8_t *p, size_t n,
				struct ws_event *ev)
{
	size_t take = n;

	if (take > r->remaining)
		take = (size_t)r->remaining;
	if (ws_opcode_is_control(r->opcode)) {
		ws_unmask(r, r->ctl + r->ctl_len, p, take);
		r->ctl_len = (uint8_t)(r->ctl_len + take);
	} else if (r->msg_compressed) {
		if (!ws_reader_compressed(r, p, take, ev, &take))
			return take;
	} else if (r->msg_opcode == WS_OP_TEXT) {
		uint8_t buf[WS_UNMASK_CHUNK];

		for (size_t done = 0; done < take; ) {
			size_t k = take - done;

			if (k > sizeof(buf))
				k = sizeof(buf);
			ws_unmask(r, buf, p + done, k);
			done += k;
			if (utf8_feed(&r->utf8, buf, k) == UTF8_INVALID) {
				ws_reader_fail(r, ev, WS_CLOSE_INVALID_DATA, "invalid UTF-8 in text");
				return done;
			}
		}
	} else {
		/* Binary data is skipped without unmasking, as nothing reads
		 * it; the mask position is kept true all the same. */
		r->mask_pos = (uint8_t)((r->mask_pos + take) & 3);
	}
	r->remaining -= take;
	if (r->remaining == 0)
		ws_reader_end_frame(r, ev);
	return take;
}

size_t ws_reader_feed(struct ws_reader *r, const uint8_t *p, size_t n, struct ws_event *ev)
{
	size_t i = 0;

	memset(ev, 0, sizeof(*ev));
	if (r->failed) {
		ev->type = WS_EV_ERROR;
		ev->code = r->fail_code;
		ev->reason = "reader failed earlier";
		return 0;
	}
	while (i < n && ev->type == WS_EV_NONE) {
		uint8_t need;

		if (r->in_payload) {
			i += ws_reader_payload(r, p + i, n - i, ev);
			continue;
		}
		r->hdr[r->hdr_len++] = p[i++];
		if (r->hdr_len == 1) {
			ws_reader_check_byte0(r, ev);
			continue;
		}
		if (r->hdr_len == 2 && !ws_reader_check_byte1(r, ev))
			continue;
		need = (uint8_t)(2 + ws_ext_len_bytes(r->hdr[1] & 0x7F));
		if (r->hdr_len == need && !ws_reader_check_len(r, ev))
			continue;
		need += 4;
		if (r->hdr_len < need)
			continue;
		ws_reader_start_payload(r, need);
		if (r->remaining == 0)
			ws_reader_end_frame(r, ev);
	}
	return i;
}
