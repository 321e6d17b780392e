/* ws_handshake.c - the server side of the RFC 6455 opening handshake.
 *
 * The checks run in a fixed order and the version comes last: 426 tells a
 * client "this would work with version 13", which is only true of a request
 * that is otherwise a well-formed upgrade.  Anything else malformed is 400,
 * whatever its version says.
 */
#include "autoconfig.h"

#include "ws_handshake.h"

#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "text.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_B64_LEN 24	/* base64 of the 16-byte nonce */
/* Longer keys are never valid; the bound keeps the hash input on the stack. */
#define WS_KEY_MAX 256

/* HTTP strips optional whitespace around a field value; a parser that left
 * some must not change the answer, so check and accept both use this. */
static const char *ws_trim(const char *s, size_t *len)
{
	size_t n;

	n = strlen(s);
	text_trim(&s, &n, TEXT_OWS);
	*len = n;
	return s;
}

/* 16 bytes are 22 base64 digits and "==": that shape, and nothing else,
 * decodes to exactly 16 bytes.  Non-zero bits in the last digit's padding
 * are tolerated, as RFC 4648 3.5 allows. */
static bool ws_key_valid(const char *key)
{
	size_t len;
	const char *k;

	if (key == NULL)
		return false;
	k = ws_trim(key, &len);
	if (len != WS_KEY_B64_LEN || k[22] != '=' || k[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (text_b64_value((unsigned char)k[i], false) < 0)
			return false;
	return true;
}

/* why may be NULL for a caller that needs only the status. */
static int ws_refuse(const char **why, int status, const char *text)
{
	if (why != NULL)
		*why = text;
	return status;
}

int ws_handshake_check(const struct ws_upgrade_request *rq, const char **why)
{
	const char *version;
	size_t vlen;

	if (!rq->is_get)
		return ws_refuse(why, 400, "WebSocket upgrade must use GET");
	if (rq->http_major < 1 || (rq->http_major == 1 && rq->http_minor < 1))
		return ws_refuse(why, 400, "WebSocket upgrade needs HTTP/1.1");
	if (!ws_header_has_token(rq->upgrade, "websocket"))
		return ws_refuse(why, 400, "Upgrade header must contain websocket");
	if (!ws_header_has_token(rq->connection, "Upgrade"))
		return ws_refuse(why, 400, "Connection header must contain Upgrade");
	if (!ws_key_valid(rq->key))
		return ws_refuse(why, 400, "Sec-WebSocket-Key must be base64 of 16 bytes");
	if (rq->version == NULL)
		return ws_refuse(why, 426, "Sec-WebSocket-Version missing, 13 expected");
	version = ws_trim(rq->version, &vlen);
	if (vlen != 2 || memcmp(version, "13", 2) != 0)
		return ws_refuse(why, 426, "unsupported Sec-WebSocket-Version, 13 expected");
	return ws_refuse(why, 0, NULL);
}

int ws_handshake_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char buf[WS_KEY_MAX + sizeof(WS_GUID)];
	unsigned char md[SHA_DIGEST_LENGTH];
	const char *k;
	size_t klen;

	if (key == NULL)
		return -1;
	k = ws_trim(key, &klen);
	if (klen > WS_KEY_MAX)
		return -1;
	memcpy(buf, k, klen);
	memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
	if (SHA1(buf, klen + sizeof(WS_GUID) - 1, md) == NULL)
		return -1;
	if (EVP_EncodeBlock((unsigned char *)out, md, SHA_DIGEST_LENGTH) != WS_ACCEPT_LEN)
		return -1;
	return 0;
}

/* Appends n bytes at *o; false when they do not fit (with the final NUL). */
static bool ws_put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (n >= outlen - *o)
		return false;
	memcpy(out + *o, s, n);
	*o += n;
	return true;
}

#define WS_PUT_LIT(lit) ws_put(out, outlen, &o, lit, sizeof(lit) - 1)

size_t ws_handshake_response(char *out, size_t outlen, const char *key, const char *subprotocol)
{
	return ws_handshake_response_ext(out, outlen, key, subprotocol, NULL);
}

size_t ws_handshake_response_ext(char *out, size_t outlen, const char *key, const char *subprotocol,
    const char *extensions)
{
	char accept[WS_ACCEPT_LEN + 1];
	size_t o = 0;
	bool ok;

	if (outlen == 0 || ws_handshake_accept(key, accept) < 0)
		return 0;
	/* Built by hand: printf-style formatting of a few constant lines was a
	 * visible share of the cost of a connection. */
	ok = WS_PUT_LIT("HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: ") &&
	    ws_put(out, outlen, &o, accept, WS_ACCEPT_LEN) &&
	    WS_PUT_LIT("\r\n");
	if (ok && subprotocol != NULL && *subprotocol != '\0')
		ok = WS_PUT_LIT("Sec-WebSocket-Protocol: ") &&
		    ws_put(out, outlen, &o, subprotocol, strlen(subprotocol)) &&
		    WS_PUT_LIT("\r\n");
	if (ok && extensions != NULL && *extensions != '\0')
		ok = WS_PUT_LIT("Sec-WebSocket-Extensions: ") &&
		    ws_put(out, outlen, &o, extensions, strlen(extensions)) &&
		    WS_PUT_LIT("\r\n");
	ok = ok && WS_PUT_LIT("\r\n");
	if (!ok)
		return 0;
	out[o] = '\0';
	return o;
}

#undef WS_PUT_LIT

bool ws_header_has_token(const char *value, const char *token)
{
	const char *item;
	size_t tlen, n;

	if (value == NULL || token == NULL)
		return false;
	tlen = strlen(token);
	if (tlen == 0)
		return false;
	while (text_list_next(&value, &item, &n))
		if (n == tlen && strncasecmp(item, token, tlen) == 0)
			return true;
	return false;
}

bool ws_origin_allowed(const char *origin, const char *const *allowed, size_t n)
{
	size_t olen;
	const char *o;

	if (origin == NULL)
		return true;
	o = ws_trim(origin, &olen);
	for (size_t i = 0; i < n; i++) {
		const char *a = allowed[i];

		if (a == NULL)
			continue;
		if (strcmp(a, "*") == 0)
			return true;
		if (strlen(a) == olen && strncasecmp(a, o, olen) == 0)
			return true;
	}
	return false;
}
