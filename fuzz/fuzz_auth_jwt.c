/* fuzz_auth_jwt.c - libFuzzer target for auth_jwt.
 *
 * Each input is used three ways against one HS256 verifier:
 *   1. as the token itself, bytes as given (what a client controls);
 *   2. split at the first newline into header and payload JSON, which are
 *      encoded and signed with the verifier's secret: random bytes almost
 *      never carry a valid HMAC, and this is how the fuzzer reaches the
 *      claim checks behind the signature;
 *   3. as a Sec-WebSocket-Protocol header value.
 * Besides the sanitizers, it aborts when a result breaks the promises of
 * auth_jwt.h.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_auth_jwt.c src/auth_jwt.c src/target.c src/utf8.c
 *   $(pkg-config --cflags --libs libjwt libcjson openssl)
 * Run:   ./fuzz_auth_jwt -max_len=12000 -max_total_time=60 fuzz/corpus/auth_jwt
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth_jwt.h"
#include "target.h"

#define FUZZ_SECRET "fuzz-secret-fuzz-secret-fuzz-sec"	/* 32 bytes */
#define FUZZ_NOW ((time_t)1700000000)
#define FUZZ_MAX (AUTH_JWT_TOKEN_MAX + 64)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Built per input: cheap for HS256, and no state survives between runs. */
static struct auth_jwt *fuzz_verifier(void)
{
	struct auth_jwt_config cfg = {
		.alg = "HS256", .secret = FUZZ_SECRET, .issuer = "https://idp",
		.audience = "notifyd", .leeway_s = 30, .require_exp = false,
	};
	char err[256];
	struct auth_jwt *a = auth_jwt_new(&cfg, err, sizeof(err));

	if (a == NULL)
		abort();
	return a;
}

static size_t fuzz_b64url(const uint8_t *in, size_t n, char *out)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = tbl[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = tbl[(acc << (6 - bits)) & 63];
	return o;
}

static void fuzz_check(const struct auth_jwt *a, const char *tok, size_t len)
{
	struct auth_jwt_identity id;
	const char *why = NULL;
	int rc = auth_jwt_verify(a, tok, len, FUZZ_NOW, &id, &why);

	if (why == NULL || strcmp(why, auth_jwt_strerror(rc)) != 0)
		abort();
	if (rc == AUTH_JWT_OK) {
		if (!target_id_valid(id.user, id.user_len) || strlen(id.user) != id.user_len ||
		    id.exp < 0)
			abort();
	} else if (rc > 0 || id.user[0] != '\0' || id.user_len != 0 || id.exp != 0) {
		abort();
	}
}

static void fuzz_signed(const struct auth_jwt *a, const uint8_t *data, size_t size)
{
	char tok[FUZZ_MAX * 2];
	const uint8_t *nl = memchr(data, '\n', size);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t hlen, n;

	if (nl == NULL || size > FUZZ_MAX / 2)
		return;
	hlen = (size_t)(nl - data);
	n = fuzz_b64url(data, hlen, tok);
	tok[n++] = '.';
	n += fuzz_b64url(nl + 1, size - hlen - 1, tok + n);
	if (HMAC(EVP_sha256(), FUZZ_SECRET, (int)strlen(FUZZ_SECRET), (const unsigned char *)tok, n,
		 mac, &maclen) == NULL)
		abort();
	tok[n++] = '.';
	n += fuzz_b64url(mac, maclen, tok + n);
	fuzz_check(a, tok, n);
}

static void fuzz_subprotocol(const struct auth_jwt *a, const uint8_t *data, size_t size)
{
	char chosen[32], token[AUTH_JWT_TOKEN_MAX + 1];
	char *header = malloc(size + 1);
	const char *why;

	if (header == NULL)
		return;
	memcpy(header, data, size);
	header[size] = '\0';
	why = auth_jwt_from_subprotocol(header, chosen, sizeof(chosen), token, sizeof(token));
	if (why == NULL && token[0] != '\0' &&
	    ((strcmp(chosen, AUTH_JWT_SUBPROTOCOL) != 0 && strcmp(chosen, AUTH_JWT_SUBPROTOCOL_V2) != 0) ||
	     strstr(header, token) == NULL))
		abort();
	if (why == NULL && token[0] != '\0')
		fuzz_check(a, token, strlen(token));
	free(header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_jwt *a = fuzz_verifier();
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *tok = malloc(size ? size : 1);

	if (tok != NULL) {
		memcpy(tok, data, size);
		fuzz_check(a, tok, size);
		free(tok);
	}
	fuzz_signed(a, data, size);
	fuzz_subprotocol(a, data, size);
	auth_jwt_free(a);
	return 0;
}
