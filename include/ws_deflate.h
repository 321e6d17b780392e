/* ws_deflate.h - RFC 7692 permessage-deflate without I/O: the offer, one
 * compression per message shared by every connection, and a bounded
 * inflater per connection.
 *
 * Promises:
 * - ws_deflate_negotiate picks the first acceptable permessage-deflate offer
 *   of a Sec-WebSocket-Extensions header and writes the answer.  The answer
 *   always holds server_no_context_takeover, and our compressed messages use
 *   one window (config.server_window_bits) that every agreed offer allows,
 *   so one compressed payload is valid on every connection.  An offer we
 *   cannot accept (unknown, duplicate or invalid parameter, a window we do
 *   not compress with) is skipped, as RFC 7692 section 5 says; a header
 *   that breaks the grammar of RFC 6455 section 9.1 is reported apart.
 * - ws_deflate_message compresses one payload with no context kept between
 *   messages, and says when the result would not be smaller.
 * - A ws_inflater never produces more than its cap + 1 bytes of one message
 *   (a deflate bomb costs its input and nothing more), keeps the client's
 *   window across messages unless client_no_context_takeover was agreed
 *   (and then holds no zlib memory between messages), and reports a message
 *   too big apart from invalid data.
 * Nothing here is shared between threads: a ws_deflater belongs to one
 * thread, a ws_inflater to one connection.
 */
#ifndef NOTIFYD_WS_DEFLATE_H
#define NOTIFYD_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Our policy, shared by the negotiation and the compressor: they must agree
 * on server_window_bits, so both take this struct. */
struct ws_deflate_config {
	/* 9..15: the window our compressor uses.  An offer whose
	 * server_max_window_bits is smaller is declined: the payload is
	 * compressed once for all connections.  zlib cannot write a raw
	 * deflate stream with a 256-byte window, so an offer of 8 is always
	 * declined (answering 9 to it would break the client's limit). */
	uint8_t server_window_bits;
	/* 9..15: the window we ask a client to compress with, when its offer
	 * lets us choose (client_max_window_bits); smaller saves our
	 * inflater's memory.  Without that parameter a client may use 15. */
	uint8_t client_window_bits;
	/* Ask every client to reset its context at each message, so that an
	 * idle connection holds no inflate window (about 40 KiB at 15 bits).
	 * Never done when the caller passes the Safari guard. */
	bool client_no_context_takeover;
	int level;			/* zlib level 1..9 */
};

/* server 15, client 15, client_no_context_takeover asked, level 6. */
void ws_deflate_config_default(struct ws_deflate_config *cfg);

/* The longest answer, every parameter with a two-digit value, is 128
 * bytes; room for it and the NUL. */
#define WS_DEFLATE_RESPONSE_MAX 160

/* What one connection agreed. */
struct ws_deflate_params {
	/* The client keeps no context between its messages: our inflater
	 * may drop its window at the end of each one. */
	bool client_no_context_takeover;
	/* 8..15: the largest window the client may compress with. */
	uint8_t client_window_bits;
	/* 8..15: the largest window our payloads may use towards this
	 * client (15 unless it limited us); never below the config's. */
	uint8_t server_window_bits;
	/* The Sec-WebSocket-Extensions value to answer, NUL-terminated;
	 * "" when nothing was agreed. */
	char response[WS_DEFLATE_RESPONSE_MAX];
	size_t response_len;
};

enum ws_deflate_offer {
	WS_DEFLATE_NONE = 0,		/* no acceptable offer: answer without the header */
	WS_DEFLATE_AGREED = 1,		/* *out filled: send out->response */
	WS_DEFLATE_MALFORMED = -1	/* the header breaks RFC 6455 9.1: answer 400 */
};

/* values: the n Sec-WebSocket-Extensions headers of the request, as found
 * (evhttp keeps repeated headers apart: pass them all, in order; NULL items
 * are skipped).  Offers are considered in order and the first acceptable
 * permessage-deflate offer wins.
 * refuse_client_no_context_takeover: the caller's guard for clients known to
 * mishandle client_no_context_takeover (Safari 15.0-15.3, by User-Agent):
 * offers carrying it are declined, and it is never asked for.
 * Parameter names are matched exactly (lower case, as RFC 7692 writes
 * them); a quoted value counts as its unescaped text.
 * WS_DEFLATE_MALFORMED: the whole header is refused, even when it holds an
 * acceptable offer: RFC 6455 4.2.1 asks for 400 on any violation of the
 * handshake's grammar (Node's ws and python websockets do so); *out is then
 * as for WS_DEFLATE_NONE.  A caller that prefers to go on without
 * compression may treat it as WS_DEFLATE_NONE. */
enum ws_deflate_offer ws_deflate_negotiate(const struct ws_deflate_config *cfg,
    const char *const *values, size_t n, bool refuse_client_no_context_takeover,
    struct ws_deflate_params *out);

/* ---- compression: once per message, shared by every connection ------- */

struct ws_deflater;

/* NULL when out of memory.  The level and window come from cfg (clamped to
 * their ranges). */
struct ws_deflater *ws_deflater_new(const struct ws_deflate_config *cfg);
void ws_deflater_free(struct ws_deflater *d);

/* The window it compresses with: a payload suits a connection whose
 * params.server_window_bits is at least this (always so when both come
 * from the same config). */
uint8_t ws_deflater_window_bits(const struct ws_deflater *d);

enum ws_deflate_result {
	WS_DEFLATE_OK = 0,		/* *out (malloc'd, the caller frees it), *outlen */
	WS_DEFLATE_NOT_SMALLER = 1,	/* send the payload as it is */
	WS_DEFLATE_ERROR = -1		/* out of memory (or zlib failed): send it as it is */
};

/* Largest payload compressed; a larger one is WS_DEFLATE_NOT_SMALLER. */
#define WS_DEFLATE_INPUT_MAX (UINT64_C(1) << 30)

/* The payload of one compressed message (RFC 7692 7.2.1): raw deflate,
 * flushed with Z_SYNC_FLUSH, without the trailing 00 00 ff ff; nothing of
 * earlier messages is referenced.  Frame it with RSV1 set
 * (ws_frame_header_encode_rsv1).  Gives up as soon as the output reaches
 * len bytes.  The deflater keeps a scratch buffer as large as the largest
 * payload compressed so far. */
enum ws_deflate_result ws_deflate_message(struct ws_deflater *d, const void *in, size_t len,
    uint8_t **out, size_t *outlen);

/* ---- decompression: one inflater per connection ------------------------ */

struct ws_inflater;

/* Receives the inflated bytes of a message in pieces; returns 0 to go on,
 * anything else to stop (ws_inflate_* then return WS_INFLATE_STOPPED). */
typedef int (*ws_inflate_sink)(void *arg, const uint8_t *p, size_t n);

enum ws_inflate_result {
	WS_INFLATE_OK = 0,
	WS_INFLATE_TOO_BIG = -1,	/* over the cap: close 1009 */
	WS_INFLATE_BAD_DATA = -2,	/* not valid deflate data: close 1007 */
	WS_INFLATE_NO_MEMORY = -3,	/* close 1011 */
	WS_INFLATE_STOPPED = -4		/* the sink said stop: its own reason */
};

/* An inflater for a connection that agreed p, refusing any message that
 * inflates to more than max_message bytes.  Holds no zlib memory until a
 * compressed message arrives.  NULL when out of memory. */
struct ws_inflater *ws_inflater_new(const struct ws_deflate_params *p, uint64_t max_message);
void ws_inflater_free(struct ws_inflater *f);

/* The payload of a compressed message, in any pieces (fragments, reads). */
enum ws_inflate_result ws_inflate_feed(struct ws_inflater *f, const uint8_t *p, size_t n,
    ws_inflate_sink sink, void *arg);

/* The message is complete: appends 00 00 ff ff (RFC 7692 7.2.2), checks
 * that the data ended between deflate blocks, and gets ready for the next
 * message.  *size (may be NULL) receives the message's inflated size.
 * After any error the inflater refuses everything (the connection is being
 * failed anyway). */
enum ws_inflate_result ws_inflate_finish(struct ws_inflater *f, ws_inflate_sink sink, void *arg,
    uint64_t *size);

/* The close code for a result (RFC 6455 7.4.1): 1009, 1007, 1011; 0 for OK
 * and STOPPED.  *why (may be NULL) gets a short static text for logs.
 * RFC 7692 names no code for undecodable data; 1007 ("data not consistent
 * with the type of the message") is what Node's ws sends and what the
 * Autobahn suite accepts. */
uint16_t ws_inflate_close_code(enum ws_inflate_result rc, const char **why);

#endif
