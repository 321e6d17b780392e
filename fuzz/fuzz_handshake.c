/* fuzz_handshake.c - libFuzzer target for the WebSocket opening handshake.
 *
 * Input: byte 0 gives the method and HTTP version, byte 1 says which
 * headers are absent (NULL); the rest is split on NUL bytes into
 *   Upgrade, Connection, Sec-WebSocket-Key, Sec-WebSocket-Version, Origin,
 *   a token to look for, then up to 8 allowed origins.
 * Every field is its own heap string of exactly its size, so ASan sees any
 * read past its end.  Each function's answer is compared with a small
 * reference written here from the contract in ws_handshake.h (and RFC 6455
 * 4.2.1), and ws_handshake_accept's output is checked for shape and for
 * not depending on the blanks around the key.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_handshake.c src/ws_handshake.c $(pkg-config --cflags --libs openssl)
 * Run:   ./fuzz_handshake -max_len=2048 fuzz/corpus/handshake  (or scripts/fuzz handshake)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { F_UPGRADE, F_CONNECTION, F_KEY, F_VERSION, F_ORIGIN, F_TOKEN, F_ALLOWED, F_MAX = F_ALLOWED + 8 };

/* ---- reference ---------------------------------------------------------- */

static bool ref_blank(char c)
{
	return c == ' ' || c == '\t';
}

static char ref_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool ref_eq_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (ref_lower(a[i]) != ref_lower(b[i]))
			return false;
	return true;
}

/* s without the blanks at its ends: start and length. */
static const char *ref_trim(const char *s, size_t n, size_t *out)
{
	while (n > 0 && ref_blank(*s)) {
		s++;
		n--;
	}
	while (n > 0 && ref_blank(s[n - 1]))
		n--;
	*out = n;
	return s;
}

static bool ref_has_token(const char *value, const char *token)
{
	size_t vlen, tlen, start = 0;

	if (value == NULL || token == NULL || *token == '\0')
		return false;
	vlen = strlen(value);
	tlen = strlen(token);
	for (size_t i = 0; i <= vlen; i++) {
		if (i == vlen || value[i] == ',') {
			size_t n;
			const char *item = ref_trim(value + start, i - start, &n);

			if (ref_eq_nocase(item, n, token, tlen))
				return true;
			start = i + 1;
		}
	}
	return false;
}

static bool ref_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* base64 of exactly 16 bytes: 22 digits and "==" (RFC 6455 4.2.1 item 5). */
static bool ref_key_ok(const char *key)
{
	size_t n;
	const char *k;

	if (key == NULL)
		return false;
	k = ref_trim(key, strlen(key), &n);
	if (n != 24 || k[22] != '=' || k[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!ref_b64(k[i]))
			return false;
	return true;
}

static int ref_check(const struct ws_upgrade_request *rq)
{
	size_t n;
	const char *v;

	if (!rq->is_get || rq->http_major < 1 || (rq->http_major == 1 && rq->http_minor < 1) ||
	    !ref_has_token(rq->upgrade, "websocket") || !ref_has_token(rq->connection, "upgrade") ||
	    !ref_key_ok(rq->key))
		return 400;
	if (rq->version == NULL)
		return 426;
	v = ref_trim(rq->version, strlen(rq->version), &n);
	return n == 2 && v[0] == '1' && v[1] == '3' ? 0 : 426;
}

static bool ref_origin_allowed(const char *origin, char *const *allowed, size_t n_allowed)
{
	size_t n;
	const char *o;

	if (origin == NULL)
		return true;
	o = ref_trim(origin, strlen(origin), &n);
	for (size_t i = 0; i < n_allowed; i++) {
		if (allowed[i] == NULL)
			continue;
		if (strcmp(allowed[i], "*") == 0 ||
		    ref_eq_nocase(allowed[i], strlen(allowed[i]), o, n))
			return true;
	}
	return false;
}

/* ---- checks ------------------------------------------------------------- */

/* A key yields a 28-character base64 answer, the same with or without
 * blanks around it; only an over-long key may fail. */
static void check_accept(const char *key)
{
	char out[WS_ACCEPT_LEN + 1], again[WS_ACCEPT_LEN + 1];
	size_t n, klen;
	const char *k;
	char *padded;

	if (key == NULL) {
		if (ws_handshake_accept(NULL, out) != -1)
			abort();
		return;
	}
	k = ref_trim(key, strlen(key), &klen);
	if (ws_handshake_accept(key, out) != 0) {
		if (klen <= 60)	/* any key a client sends must work */
			abort();
		return;
	}
	n = strlen(out);
	if (n != WS_ACCEPT_LEN || out[WS_ACCEPT_LEN - 1] != '=')
		abort();
	for (size_t i = 0; i < WS_ACCEPT_LEN - 1; i++)
		if (!ref_b64(out[i]))
			abort();
	padded = malloc(klen + 5);
	if (padded == NULL)
		abort();
	padded[0] = ' ';
	padded[1] = '\t';
	memcpy(padded + 2, k, klen);
	memcpy(padded + 2 + klen, " \t", 3);
	if (ws_handshake_accept(padded, again) != 0 || memcmp(out, again, sizeof(out)) != 0)
		abort();
	free(padded);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int majors[4] = { 1, 1, 0, 2 };
	char *field[F_MAX] = { 0 };
	size_t nfields = 0, start = 2;
	struct ws_upgrade_request rq;
	const char *why = NULL;
	int status;
	bool allowed;

	if (size < 2)
		return 0;
	for (size_t i = 2; i <= size && nfields < F_MAX; i++) {
		if (i == size || data[i] == '\0') {
			field[nfields] = malloc(i - start + 1);
			if (field[nfields] == NULL)
				abort();
			memcpy(field[nfields], data + start, i - start);
			field[nfields][i - start] = '\0';
			nfields++;
			start = i + 1;
		}
	}
	/* byte 1: bit n makes field n absent, as a missing header is */
	for (size_t i = 0; i <= F_TOKEN; i++) {
		if (data[1] & (1u << i)) {
			free(field[i]);
			field[i] = NULL;
		}
	}

	memset(&rq, 0, sizeof(rq));
	rq.is_get = (data[0] & 1) == 0;
	rq.http_major = majors[(data[0] >> 1) & 3];
	rq.http_minor = (data[0] >> 3) & 3;
	rq.upgrade = field[F_UPGRADE];
	rq.connection = field[F_CONNECTION];
	rq.key = field[F_KEY];
	rq.version = field[F_VERSION];

	status = ws_handshake_check(&rq, &why);
	if (status != ref_check(&rq))
		abort();
	if (status != 0 && (why == NULL || *why == '\0'))
		abort();
	if (ws_handshake_check(&rq, NULL) != status)
		abort();
	check_accept(field[F_KEY]);
	check_accept(field[F_UPGRADE]);

	if (ws_header_has_token(field[F_UPGRADE], field[F_TOKEN]) !=
	    ref_has_token(field[F_UPGRADE], field[F_TOKEN]))
		abort();
	if (ws_header_has_token(field[F_CONNECTION], field[F_TOKEN]) !=
	    ref_has_token(field[F_CONNECTION], field[F_TOKEN]))
		abort();

	allowed = ws_origin_allowed(field[F_ORIGIN], (const char *const *)(field + F_ALLOWED),
				    nfields > F_ALLOWED ? nfields - F_ALLOWED : 0);
	if (allowed != ref_origin_allowed(field[F_ORIGIN], field + F_ALLOWED,
					  nfields > F_ALLOWED ? nfields - F_ALLOWED : 0))
		abort();
	if (ws_origin_allowed(NULL, NULL, 0) != true)
		abort();

	for (size_t i = 0; i < F_MAX; i++)
		free(field[i]);
	return 0;
}
