/* ws_frame.h - RFC 6455 frame codec for the server side, with no I/O.
 *
 * Promises: ws_reader turns the bytes a client sends into events (a complete
 * control frame, the end of a data message, or a protocol error with the
 * close code to send).  It enforces everything a server must: masking,
 * minimal rules on lengths (64-bit length with top bit clear), RSV bits zero
 * (but RSV1 on the first frame of a data message once permessage-deflate is
 * enabled: ws_reader_enable_deflate), known opcodes, control frames FIN and
 * <= 125 bytes, continuation only inside
 * a message and no new data frame inside one, UTF-8 of text messages across
 * fragments, close payload (code validity, UTF-8 reason) and a maximum message
 * size.  Data payloads are unmasked, validated and discarded: clients have
 * nothing to say to notifyd besides control frames, so nothing is buffered
 * but a control frame's 125 bytes.  The payload of a compressed message is
 * handed, unmasked, to the caller's callback instead, and its UTF-8 is the
 * caller's to check once inflated.
 * The encoder builds unmasked server frames.
 */
#ifndef NOTIFYD_WS_FRAME_H
#define NOTIFYD_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "utf8.h"

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA
};

enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_NO_STATUS = 1005,	/* never sent: "close frame had no code" */
	WS_CLOSE_ABNORMAL = 1006,	/* never sent: "no close frame at all" */
	WS_CLOSE_INVALID_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
	WS_CLOSE_TRY_AGAIN = 1013
};

#define WS_CONTROL_MAX 125
#define WS_HEADER_MAX 14	/* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_SERVER_HEADER_MAX 10	/* server frames are not masked */

/* A close code a peer may put on the wire (RFC 6455 7.4, IANA registry):
 * 1000-1003, 1007-1011, 1012-1014, 3000-4999. */
bool ws_close_code_valid(uint16_t code);

/* Header of an unmasked, FIN server frame carrying payload_len bytes.
 * Writes at most WS_SERVER_HEADER_MAX bytes; returns how many. */
size_t ws_frame_header_encode(uint8_t *out, enum ws_opcode op, uint64_t payload_len);

/* The length of the header of an unmasked frame that begins at frame (as
 * ws_frame_header_encode() writes them). */
static inline size_t ws_frame_server_header_len(const uint8_t *frame)
{
	uint8_t l = frame[1] & 0x7f;

	return l == 127 ? 10 : l == 126 ? 4 : 2;
}

/* ws_frame_header_encode with RSV1 set: the frame of a message compressed with
 * permessage-deflate (RFC 7692 section 6: "Per-Message Compressed"). */
size_t ws_frame_header_encode_rsv1(uint8_t *out, enum ws_opcode op, uint64_t payload_len);

/* Payload of a close frame: 2-byte code (network order) and the reason,
 * truncated to fit 125 bytes at a UTF-8 boundary.  Returns its length. */
size_t ws_close_payload_encode(uint8_t out[WS_CONTROL_MAX], uint16_t code, const char *reason);

enum ws_event_type {
	WS_EV_NONE = 0,		/* all input consumed, need more bytes */
	WS_EV_MESSAGE,		/* a data message ended: opcode, size */
	WS_EV_PING,		/* payload, payload_len */
	WS_EV_PONG,		/* payload, payload_len */
	WS_EV_CLOSE,		/* code (WS_CLOSE_NO_STATUS if the frame had none), reason */
	WS_EV_ERROR		/* code: the close code to send (1002, 1007, 1009) */
};

struct ws_event {
	enum ws_event_type type;
	uint8_t opcode;			/* WS_EV_MESSAGE: WS_OP_TEXT or WS_OP_BINARY */
	uint16_t code;			/* WS_EV_CLOSE, WS_EV_ERROR */
	uint64_t size;			/* WS_EV_MESSAGE: total payload bytes */
	const uint8_t *payload;		/* points into the reader; valid until the next feed */
	size_t payload_len;
	const char *reason;		/* WS_EV_ERROR: short static text for logs */
	bool compressed;		/* WS_EV_MESSAGE: its first frame had RSV1 */
};

/* Receives the unmasked payload of a compressed message (opcode: WS_OP_TEXT
 * or WS_OP_BINARY), in pieces of any size down to 1 byte, never 0.  Returns
 * 0 to go on, or the close code to fail the connection with (the reader
 * then reports WS_EV_ERROR with that code and *reason, or a generic text
 * when *reason is left NULL).  p is valid during the call only. */
typedef uint16_t (*ws_reader_compressed_cb)(void *arg, uint8_t opcode, const uint8_t *p,
    size_t n, const char **reason);

struct ws_reader {
	uint64_t max_message;		/* bytes; a larger message is WS_EV_ERROR 1009 */
	/* frame in progress */
	uint8_t hdr[WS_HEADER_MAX];
	uint8_t hdr_len;		/* bytes of hdr collected */
	uint8_t opcode;
	bool fin;
	bool in_payload;
	uint8_t mask[4];
	uint8_t mask_pos;
	uint64_t remaining;		/* payload bytes still to come in this frame */
	/* data message in progress (opcode 0: none) */
	uint8_t msg_opcode;
	uint64_t msg_size;
	struct utf8_validator utf8;
	/* control frame payload */
	uint8_t ctl[WS_CONTROL_MAX];
	uint8_t ctl_len;
	bool failed;			/* sticky after WS_EV_ERROR */
	uint16_t fail_code;
	/* permessage-deflate */
	bool deflate;			/* negotiated: RSV1 allowed as RFC 7692 says */
	bool msg_compressed;		/* the message in progress is compressed */
	ws_reader_compressed_cb on_compressed;
	void *cb_arg;
};

void ws_reader_init(struct ws_reader *r, uint64_t max_message);

/* permessage-deflate was negotiated: call after ws_reader_init, before the
 * first feed.  RSV1 is then allowed on the first frame of a text or binary
 * message and makes the message compressed; RSV1 on a continuation or a
 * control frame, and RSV2/RSV3 anywhere, stay 1002 (RFC 7692 section 6).  A
 * compressed message's payload goes to cb (NULL: skipped), is not checked
 * as UTF-8, and max_message bounds its compressed size; its WS_EV_MESSAGE
 * has compressed set and comes after the last call to cb.  Uncompressed
 * messages are read as before. */
void ws_reader_enable_deflate(struct ws_reader *r, ws_reader_compressed_cb cb, void *arg);

/* Consume up to n bytes of p.  Stops right after the first event, so a caller
 * loops: consumed = ws_reader_feed(...); handle ev; p += consumed; ...
 * Returns the number of bytes consumed; ev->type is WS_EV_NONE when all n
 * bytes were consumed without completing an event.  After WS_EV_ERROR every
 * later call consumes nothing and returns WS_EV_ERROR again. */
size_t ws_reader_feed(struct ws_reader *r, const uint8_t *p, size_t n, struct ws_event *ev);

#endif
