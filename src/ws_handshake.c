/* ws_handshake.c - the server side of the RFC 6455 opening handshake.
 *
 * The checks run in a fixed order and the version comes last: 426 tells a
 * client "this would work with version 13", which is only true of a request
 * that is otherwise a well-formed upgrade.  Anything else malformed is 400,
 * whatever its version says.
 */
#include "autoconfig.h"

#include "ws_handshake.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_B64_LEN 24	/* base64 of the 16-byte nonce */
/* Longer keys are never valid; the bound keeps the hash input on the stack. */
#define WS_KEY_MAX 256

static bool ws_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* HTTP strips optional whitespace around a field value; a parser that left
 * some must not change the answer, so check and accept both use this. */
static const char *ws_trim(const char *s, size_t *len)
{
	size_t n;

	while (ws_is_ows(*s))
		s++;
	n = strlen(s);
	while (n > 0 && ws_is_ows(s[n - 1]))
		n--;
	*len = n;
	return s;
}

static int ws_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
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
		if (ws_b64_value(k[i]) < 0)
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

/* SHA-1 (FIPS 180-4) of one short message.  Here it is no security
 * primitive, only the RFC 6455 accept transform; OpenSSL 3's one-shot SHA1()
 * fetches the digest implementation anew on every call, which cost more than
 * the hash itself in a connect storm. */
static uint32_t ws_rol(uint32_t x, int n)
{
	return (x << n) | (x >> (32 - n));
}

/* One round group: a rolling 16-word schedule and no per-round branch. */
#define WS_SHA1_W(i) (w[(i) & 15] = ws_rol(w[((i) + 13) & 15] ^ w[((i) + 8) & 15] ^ \
	w[((i) + 2) & 15] ^ w[(i) & 15], 1))
#define WS_SHA1_ROUND(f, k, wi) do { \
		uint32_t t = ws_rol(a, 5) + (f) + e + (k) + (wi); \
		e = d; d = c; c = ws_rol(b, 30); b = a; a = t; \
	} while (0)

static void ws_sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[16], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		    (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
	for (i = 0; i < 16; i++)
		WS_SHA1_ROUND((b & c) | (~b & d), 0x5a827999u, w[i]);
	for (; i < 20; i++)
		WS_SHA1_ROUND((b & c) | (~b & d), 0x5a827999u, WS_SHA1_W(i));
	for (; i < 40; i++)
		WS_SHA1_ROUND(b ^ c ^ d, 0x6ed9eba1u, WS_SHA1_W(i));
	for (; i < 60; i++)
		WS_SHA1_ROUND((b & c) | (b & d) | (c & d), 0x8f1bbcdcu, WS_SHA1_W(i));
	for (; i < 80; i++)
		WS_SHA1_ROUND(b ^ c ^ d, 0xca62c1d6u, WS_SHA1_W(i));
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

#undef WS_SHA1_W
#undef WS_SHA1_ROUND

/* msg is at most WS_KEY_MAX + the GUID: the padded copy fits on the stack. */
static void ws_sha1(const unsigned char *msg, size_t len, unsigned char md[20])
{
	unsigned char buf[((WS_KEY_MAX + sizeof(WS_GUID) + 8) / 64 + 1) * 64];
	uint32_t h[5] = { 0x67452301u, 0xefcdab89u, 0x98badcfeu, 0x10325476u, 0xc3d2e1f0u };
	size_t total = (len + 8) / 64 * 64 + 64;
	uint64_t bits = (uint64_t)len * 8;

	memcpy(buf, msg, len);
	buf[len] = 0x80;
	memset(buf + len + 1, 0, total - len - 1);
	for (int i = 0; i < 8; i++)
		buf[total - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (size_t o = 0; o < total; o += 64)
		ws_sha1_block(h, buf + o);
	for (int i = 0; i < 5; i++) {
		md[4 * i] = (unsigned char)(h[i] >> 24);
		md[4 * i + 1] = (unsigned char)(h[i] >> 16);
		md[4 * i + 2] = (unsigned char)(h[i] >> 8);
		md[4 * i + 3] = (unsigned char)h[i];
	}
}

/* Standard base64 with padding: 20 bytes give WS_ACCEPT_LEN characters. */
static void ws_b64_encode20(const unsigned char in[20], char out[WS_ACCEPT_LEN + 1])
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0, i;

	for (i = 0; i + 3 <= 20; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = tab[v & 63];
	}
	/* 20 = 6 * 3 + 2: two bytes left, one '=' */
	{
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = tab[v >> 18];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = tab[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

int ws_handshake_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	unsigned char buf[WS_KEY_MAX + sizeof(WS_GUID)];
	unsigned char md[20];
	const char *k;
	size_t klen;

	if (key == NULL)
		return -1;
	k = ws_trim(key, &klen);
	if (klen > WS_KEY_MAX)
		return -1;
	memcpy(buf, k, klen);
	memcpy(buf + klen, WS_GUID, sizeof(WS_GUID) - 1);
	ws_sha1(buf, klen + sizeof(WS_GUID) - 1, md);
	ws_b64_encode20(md, out);
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
	ok = ok && WS_PUT_LIT("\r\n");
	if (!ok)
		return 0;
	out[o] = '\0';
	return o;
}

#undef WS_PUT_LIT

bool ws_header_has_token(const char *value, const char *token)
{
	size_t tlen;

	if (value == NULL || token == NULL)
		return false;
	tlen = strlen(token);
	if (tlen == 0)
		return false;
	while (*value != '\0') {
		const char *end = strchr(value, ',');
		size_t n = end ? (size_t)(end - value) : strlen(value);

		while (n > 0 && ws_is_ows(*value)) {
			value++;
			n--;
		}
		while (n > 0 && ws_is_ows(value[n - 1]))
			n--;
		if (n == tlen && strncasecmp(value, token, tlen) == 0)
			return true;
		if (end == NULL)
			break;
		value = end + 1;
	}
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
