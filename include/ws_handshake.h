/* ws_handshake.h - the server side of the RFC 6455 opening handshake, with no I/O.
 *
 * Promises: decides whether an HTTP request is a valid WebSocket upgrade and,
 * if not, which status the contract prescribes (400 malformed, 426 wrong
 * version); computes Sec-WebSocket-Accept; checks an Origin against an
 * allowlist.  Header values are given as found (NULL when absent).
 */
#ifndef NOTIFYD_WS_HANDSHAKE_H
#define NOTIFYD_WS_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#define WS_ACCEPT_LEN 28	/* base64 of a 20-byte SHA-1 */

struct ws_upgrade_request {
	bool is_get;
	int http_major, http_minor;
	const char *upgrade;		/* Upgrade: */
	const char *connection;		/* Connection: */
	const char *key;		/* Sec-WebSocket-Key: */
	const char *version;		/* Sec-WebSocket-Version: */
};

/* 0 when the request is a valid upgrade; otherwise the HTTP status to answer
 * (400 or 426) and *why a short static explanation for the JSON error. */
int ws_handshake_check(const struct ws_upgrade_request *rq, const char **why);

/* out receives WS_ACCEPT_LEN characters and a NUL.  Returns 0, -1 on failure. */
int ws_handshake_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* The whole 101 answer to a checked upgrade: status line (HTTP/1.1, the
 * highest version we speak), Upgrade, Connection, Sec-WebSocket-Accept for
 * key, Sec-WebSocket-Protocol when subprotocol is neither NULL nor "", and
 * the blank line.  subprotocol must be a token (no CR/LF): ours are
 * constants.  Returns its length (out is NUL-terminated), 0 when key is
 * unusable or out too small (WS_RESPONSE_MAX always suffices for a
 * subprotocol up to 64 bytes). */
#define WS_RESPONSE_MAX 448	/* with an extension answer of up to 160 bytes */
size_t ws_handshake_response(char *out, size_t outlen, const char *key, const char *subprotocol);
/* The same with Sec-WebSocket-Extensions: extensions when neither NULL nor
 * "" (a token list of ours, no CR/LF). */
size_t ws_handshake_response_ext(char *out, size_t outlen, const char *key, const char *subprotocol,
    const char *extensions);

/* Does the comma-separated header value contain token (case-insensitive,
 * optional whitespace around items)? */
bool ws_header_has_token(const char *value, const char *token);

/* Origin check.  allowed holds n exact origins ("https://app.example.com",
 * compared case-insensitively) or "*" which allows any.  A request without an
 * Origin header (not a browser) is always allowed; with one, it must match. */
bool ws_origin_allowed(const char *origin, const char *const *allowed, size_t n);

#endif
