/* test_auth_jwt.c - JWT verification: algorithms, claims, hostile tokens,
 * key loading and the Sec-WebSocket-Protocol convention.
 *
 * Good tokens are made by libjwt itself; hostile ones are built by hand
 * (header and payload JSON as written, HMAC by OpenSSL) so that they can say
 * what libjwt would never produce.  Keys are generated here with OpenSSL and
 * the public halves written to a temporary directory that is removed at the
 * end. */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "auth_jwt.h"
#include "tap.h"

#define NOW ((time_t)1700000000)
#define SECRET32 "0123456789abcdef0123456789abcdef"
#define SECRET48 SECRET32 "0123456789abcdef"
#define SECRET64 SECRET48 "0123456789abcdef"
#define TOK_MAX (AUTH_JWT_TOKEN_MAX * 2)

struct keys {
	char dir[64];
	char rsa_pub[128], rsa_small_pub[128], ec256_pub[128], ec384_pub[128], ec521_pub[128];
	char rsa_priv_file[128], cert[128], garbage[128], missing[128];
	char *rsa_priv, *ec256_priv, *ec384_priv, *ec521_priv;
	char *rsa_pub_pem;	/* the public PEM text, for algorithm confusion */
};

/* ---- helpers ---------------------------------------------------------- */

static void b64url(const unsigned char *in, size_t n, char *out)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t i = 0, o = 0;

	for (; i + 2 < n; i += 3) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
		out[o++] = tbl[v & 63];
	}
	if (n - i == 1) {
		unsigned long v = (unsigned long)in[i] << 16;

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8;

		out[o++] = tbl[v >> 18];
		out[o++] = tbl[(v >> 12) & 63];
		out[o++] = tbl[(v >> 6) & 63];
	}
	out[o] = '\0';
}

/* "header.payload" from JSON text; returns its length. */
static size_t hand_unsigned(char *out, const char *header, const char *payload)
{
	size_t n;

	b64url((const unsigned char *)header, strlen(header), out);
	strcat(out, ".");
	n = strlen(out);
	b64url((const unsigned char *)payload, strlen(payload), out + n);
	return strlen(out);
}

/* A token signed with HMAC md and key, whatever its header says. */
static void hand_token(char *out, const char *header, const char *payload,
		       const EVP_MD *md, const void *key, size_t keylen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t n = hand_unsigned(out, header, payload);

	HMAC(md, key, (int)keylen, (const unsigned char *)out, n, mac, &maclen);
	out[n++] = '.';
	b64url(mac, maclen, out + n);
}

/* A token with a literal signature segment. */
static void hand_token_sig(char *out, const char *header, const char *payload, const char *sig)
{
	size_t n = hand_unsigned(out, header, payload);

	out[n++] = '.';
	strcpy(out + n, sig);
}

static void hs256(char *out, const char *header, const char *payload)
{
	hand_token(out, header, payload, EVP_sha256(), SECRET32, strlen(SECRET32));
}

/* A token signed RS256 with the private key priv_pem, whatever its header
 * and payload say.  Returns 0, or -1 (reported) on failure. */
static int rs256(char *out, const char *header, const char *payload, const char *priv_pem)
{
	unsigned char sig[1024];
	size_t siglen = sizeof(sig), n = hand_unsigned(out, header, payload);
	BIO *b = BIO_new_mem_buf(priv_pem, -1);
	EVP_PKEY *pkey = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int rc = -1;

	if (pkey != NULL && ctx != NULL &&
	    EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)out, n) == 1) {
		out[n++] = '.';
		b64url(sig, siglen, out + n);
		rc = 0;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	BIO_free(b);
	if (rc != 0)
		ok(0, "sign an RS256 token by hand");
	return rc;
}

/* A token as libjwt makes it.  Returns 0, or -1 (reported) on failure. */
static int lib_token(char *out, jwt_alg_t alg, const char *key, const char *grants)
{
	jwt_t *j = NULL;
	char *s;
	int rc = -1;

	if (jwt_new(&j) != 0 || jwt_add_grants_json(j, grants) != 0 ||
	    jwt_set_alg(j, alg, (const unsigned char *)key, (int)strlen(key)) != 0)
		goto done;
	s = jwt_encode_str(j);
	if (s != NULL && strlen(s) < TOK_MAX) {
		strcpy(out, s);
		rc = 0;
	}
	free(s);
done:
	jwt_free(j);
	if (rc != 0)
		ok(0, "libjwt made a %s token", jwt_alg_str(alg));
	return rc;
}

static struct auth_jwt *hs_verifier(const char *alg, const char *secret)
{
	struct auth_jwt_config c = { .alg = alg, .secret = secret, .leeway_s = 30,
				     .require_exp = true };
	char err[256];
	struct auth_jwt *a = auth_jwt_new(&c, err, sizeof(err));

	if (a == NULL)
		ok(0, "verifier %s: %s", alg, err);
	return a;
}

static struct auth_jwt *key_verifier(const char *alg, const char *key_file)
{
	struct auth_jwt_config c = { .alg = alg, .key_file = key_file, .leeway_s = 30,
				     .require_exp = true };
	char err[512];
	struct auth_jwt *a = auth_jwt_new(&c, err, sizeof(err));

	if (a == NULL)
		ok(0, "verifier %s: %s", alg, err);
	return a;
}

static int verify(const struct auth_jwt *a, const char *tok, struct auth_jwt_identity *id,
		  const char **why)
{
	return auth_jwt_verify(a, tok, strlen(tok), NOW, id, why);
}

/* Expect err (and its reason) from tok. */
static void expect(const struct auth_jwt *a, const char *tok, int err, const char *what)
{
	struct auth_jwt_identity id;
	const char *why = NULL;
	int rc;

	memset(&id, 'x', sizeof(id));
	rc = verify(a, tok, &id, &why);
	ok(rc == err && why != NULL && strcmp(why, auth_jwt_strerror(err)) == 0 &&
	   (err == AUTH_JWT_OK || (id.user[0] == '\0' && id.user_len == 0 && id.exp == 0)),
	   "%s: %s (got %d %s)", what, auth_jwt_strerror(err), rc, why ? why : "(null)");
}

/* Expect success with user and exp. */
static void expect_user(const struct auth_jwt *a, const char *tok, const char *user,
			time_t exp, const char *what)
{
	struct auth_jwt_identity id;
	const char *why = NULL;
	int rc = verify(a, tok, &id, &why);

	ok(rc == AUTH_JWT_OK && strcmp(id.user, user) == 0 && id.user_len == strlen(user) &&
	   id.exp == exp, "%s: user \"%s\" exp %lld (got %d %s, \"%s\", %lld)", what, user,
	   (long long)exp, rc, why ? why : "(null)", rc == 0 ? id.user : "", (long long)id.exp);
}

/* ---- keys --------------------------------------------------------------- */

static char *pem_of(EVP_PKEY *pkey, int private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *s = NULL;
	long n;

	if (b == NULL)
		return NULL;
	if ((private ? PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL)
		     : PEM_write_bio_PUBKEY(b, pkey)) == 1 &&
	    (n = BIO_get_mem_data(b, &data)) > 0 && (s = malloc((size_t)n + 1)) != NULL) {
		memcpy(s, data, (size_t)n);
		s[n] = '\0';
	}
	BIO_free(b);
	return s;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL)
		return -1;
	rc = fputs(text, f) < 0 ? -1 : 0;
	return fclose(f) != 0 ? -1 : rc;
}

static int write_pub(EVP_PKEY *pkey, const char *path)
{
	char *pem = pem_of(pkey, 0);
	int rc = pem == NULL ? -1 : write_file(path, pem);

	free(pem);
	return rc;
}

/* A self-signed certificate for pkey, written as PEM. */
static int write_cert(EVP_PKEY *pkey, const char *path)
{
	X509 *x = X509_new();
	FILE *f = NULL;
	int rc = -1;

	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 3600) == NULL ||
	    X509_set_pubkey(x, pkey) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				       (const unsigned char *)"test", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto done;
	f = fopen(path, "w");
	if (f != NULL && PEM_write_X509(f, x) == 1)
		rc = 0;
done:
	if (f != NULL && fclose(f) != 0)
		rc = -1;
	X509_free(x);
	return rc;
}

static int make_keys(struct keys *k)
{
	EVP_PKEY *rsa = NULL, *rsa_small = NULL, *ec256 = NULL, *ec384 = NULL, *ec521 = NULL;
	int rc = -1;

	memset(k, 0, sizeof(*k));
	strcpy(k->dir, "/tmp/test_auth_jwt.XXXXXX");
	if (mkdtemp(k->dir) == NULL)
		return -1;
	snprintf(k->rsa_pub, sizeof(k->rsa_pub), "%s/rsa.pub", k->dir);
	snprintf(k->rsa_small_pub, sizeof(k->rsa_small_pub), "%s/rsa1024.pub", k->dir);
	snprintf(k->ec256_pub, sizeof(k->ec256_pub), "%s/ec256.pub", k->dir);
	snprintf(k->ec384_pub, sizeof(k->ec384_pub), "%s/ec384.pub", k->dir);
	snprintf(k->ec521_pub, sizeof(k->ec521_pub), "%s/ec521.pub", k->dir);
	snprintf(k->rsa_priv_file, sizeof(k->rsa_priv_file), "%s/rsa.key", k->dir);
	snprintf(k->cert, sizeof(k->cert), "%s/rsa.crt", k->dir);
	snprintf(k->garbage, sizeof(k->garbage), "%s/garbage.pem", k->dir);
	snprintf(k->missing, sizeof(k->missing), "%s/does-not-exist.pem", k->dir);

	rsa = EVP_RSA_gen(2048);
	rsa_small = EVP_RSA_gen(1024);
	ec256 = EVP_EC_gen("P-256");
	ec384 = EVP_EC_gen("P-384");
	ec521 = EVP_EC_gen("P-521");
	if (rsa == NULL || rsa_small == NULL || ec256 == NULL || ec384 == NULL || ec521 == NULL)
		goto done;
	k->rsa_priv = pem_of(rsa, 1);
	k->rsa_pub_pem = pem_of(rsa, 0);
	k->ec256_priv = pem_of(ec256, 1);
	k->ec384_priv = pem_of(ec384, 1);
	k->ec521_priv = pem_of(ec521, 1);
	if (k->rsa_priv == NULL || k->rsa_pub_pem == NULL || k->ec256_priv == NULL ||
	    k->ec384_priv == NULL || k->ec521_priv == NULL ||
	    write_pub(rsa, k->rsa_pub) != 0 || write_pub(rsa_small, k->rsa_small_pub) != 0 ||
	    write_pub(ec256, k->ec256_pub) != 0 || write_pub(ec384, k->ec384_pub) != 0 ||
	    write_pub(ec521, k->ec521_pub) != 0 || write_file(k->rsa_priv_file, k->rsa_priv) != 0 ||
	    write_cert(rsa, k->cert) != 0 ||
	    write_file(k->garbage, "-----BEGIN PUBLIC KEY-----\nnot base64 at all\n"
				   "-----END PUBLIC KEY-----\n") != 0)
		goto done;
	rc = 0;
done:
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec256);
	EVP_PKEY_free(ec384);
	EVP_PKEY_free(ec521);
	return rc;
}

static void free_keys(struct keys *k)
{
	const char *files[] = { k->rsa_pub, k->rsa_small_pub, k->ec256_pub, k->ec384_pub,
				k->ec521_pub, k->rsa_priv_file, k->cert, k->garbage };

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i][0] != '\0')
			unlink(files[i]);
	if (k->dir[0] != '\0')
		rmdir(k->dir);
	free(k->rsa_priv);
	free(k->rsa_pub_pem);
	free(k->ec256_priv);
	free(k->ec384_priv);
	free(k->ec521_priv);
}

/* ---- tests -------------------------------------------------------------- */

#define GOOD_CLAIMS "{\"sub\":\"alice\",\"exp\":1700000600,\"iat\":1700000000}"

static void test_hmac_algs(void)
{
	static const struct { const char *name; jwt_alg_t alg; const char *secret; } algs[] = {
		{ "HS256", JWT_ALG_HS256, SECRET32 },
		{ "HS384", JWT_ALG_HS384, SECRET48 },
		{ "HS512", JWT_ALG_HS512, SECRET64 },
	};
	char tok[TOK_MAX];

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct auth_jwt *a = hs_verifier(algs[i].name, algs[i].secret);

		if (a == NULL || lib_token(tok, algs[i].alg, algs[i].secret, GOOD_CLAIMS) != 0) {
			auth_jwt_free(a);
			continue;
		}
		expect_user(a, tok, "alice", 1700000600, algs[i].name);
		auth_jwt_free(a);
	}
}

static void test_key_algs(const struct keys *k)
{
	const struct { const char *name; jwt_alg_t alg; const char *priv, *pub; } algs[] = {
		{ "RS256", JWT_ALG_RS256, k->rsa_priv, k->rsa_pub },
		{ "RS384", JWT_ALG_RS384, k->rsa_priv, k->rsa_pub },
		{ "RS512", JWT_ALG_RS512, k->rsa_priv, k->rsa_pub },
		{ "ES256", JWT_ALG_ES256, k->ec256_priv, k->ec256_pub },
		{ "ES384", JWT_ALG_ES384, k->ec384_priv, k->ec384_pub },
		{ "ES512", JWT_ALG_ES512, k->ec521_priv, k->ec521_pub },
	};
	char tok[TOK_MAX], name[64];

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct auth_jwt *a = key_verifier(algs[i].name, algs[i].pub);

		if (a == NULL || lib_token(tok, algs[i].alg, algs[i].priv, GOOD_CLAIMS) != 0) {
			auth_jwt_free(a);
			continue;
		}
		expect_user(a, tok, "alice", 1700000600, algs[i].name);
		/* The signature is the last segment: change a character in it. */
		tok[strlen(tok) - 5] ^= tok[strlen(tok) - 5] == 'A' ? 'B' ^ 'A' : 'A' ^ tok[strlen(tok) - 5];
		snprintf(name, sizeof(name), "%s with a changed signature", algs[i].name);
		expect(a, tok, AUTH_JWT_BAD_SIGNATURE, name);
		ok(ERR_peek_error() == 0, "%s: no OpenSSL error left in the queue", name);
		auth_jwt_free(a);
	}

	/* Another key of the right type. */
	{
		struct auth_jwt *a = key_verifier("ES384", k->ec384_pub);

		if (a != NULL && lib_token(tok, JWT_ALG_ES256, k->ec256_priv, GOOD_CLAIMS) == 0)
			expect(a, tok, AUTH_JWT_BAD_ALG, "ES256 token against ES384");
		auth_jwt_free(a);
	}
	/* A certificate holds the public key as well. */
	{
		struct auth_jwt *a = key_verifier("RS256", k->cert);

		if (a != NULL && lib_token(tok, JWT_ALG_RS256, k->rsa_priv, GOOD_CLAIMS) == 0)
			expect_user(a, tok, "alice", 1700000600, "RS256 key from a certificate");
		auth_jwt_free(a);
	}
}

static void test_alg_attacks(const struct keys *k)
{
	struct auth_jwt *hs = hs_verifier("HS256", SECRET32);
	struct auth_jwt *rs = key_verifier("RS256", k->rsa_pub);
	char tok[TOK_MAX], payload[128];
	jwt_t *j = NULL;

	if (hs == NULL || rs == NULL)
		goto done;

	/* The classic: {"alg":"none"} and an empty signature. */
	b64url((const unsigned char *)GOOD_CLAIMS, strlen(GOOD_CLAIMS), payload);
	snprintf(tok, sizeof(tok), "eyJhbGciOiJub25lIn0.%s.", payload);
	expect(hs, tok, AUTH_JWT_MALFORMED, "alg none, empty signature (HS256)");
	expect(rs, tok, AUTH_JWT_MALFORMED, "alg none, empty signature (RS256)");
	/* Sanity of the premise: libjwt alone, without a key, accepts it. */
	ok(jwt_decode(&j, tok, NULL, 0) == 0 && j != NULL && jwt_get_alg(j) == JWT_ALG_NONE,
	   "libjwt without a key accepts alg none (why a key is always passed)");
	jwt_free(j);
	snprintf(tok, sizeof(tok), "eyJhbGciOiJub25lIn0.%s.c2lnbmF0dXJl", payload);
	expect(hs, tok, AUTH_JWT_BAD_ALG, "alg none with a signature");
	hand_token_sig(tok, "{\"alg\":\"NONE\"}", GOOD_CLAIMS, "AAAA");
	expect(hs, tok, AUTH_JWT_BAD_ALG, "alg NONE");

	/* Same secret, stronger hash: still not the configured algorithm. */
	if (lib_token(tok, JWT_ALG_HS512, SECRET32 SECRET32, GOOD_CLAIMS) == 0) {
		struct auth_jwt *hs64 = hs_verifier("HS256", SECRET32 SECRET32);

		if (hs64 != NULL)
			expect(hs64, tok, AUTH_JWT_BAD_ALG, "HS512 token against HS256 (same secret)");
		auth_jwt_free(hs64);
	}
	/* Algorithm confusion: HMAC keyed with the RSA public key PEM. */
	hand_token(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha256(),
		   k->rsa_pub_pem, strlen(k->rsa_pub_pem));
	expect(rs, tok, AUTH_JWT_BAD_ALG, "HS256 signed with the RSA public PEM, RS256 config");
	ok(jwt_decode(&j, tok, (const unsigned char *)k->rsa_pub_pem,
		      (int)strlen(k->rsa_pub_pem)) == 0,
	   "libjwt alone accepts that confused token (why alg is checked)");
	jwt_free(j);
	/* An RS256 token against an HS256 config. */
	if (lib_token(tok, JWT_ALG_RS256, k->rsa_priv, GOOD_CLAIMS) == 0)
		expect(hs, tok, AUTH_JWT_BAD_ALG, "RS256 token against HS256");

	/* alg spelled differently: libjwt compares case-insensitively. */
	hand_token(tok, "{\"alg\":\"hs256\"}", GOOD_CLAIMS, EVP_sha256(), SECRET32, strlen(SECRET32));
	expect(hs, tok, AUTH_JWT_BAD_ALG, "alg \"hs256\"");
	hand_token(tok, "{\"typ\":\"JWT\"}", GOOD_CLAIMS, EVP_sha256(), SECRET32, strlen(SECRET32));
	expect(hs, tok, AUTH_JWT_MALFORMED, "no alg in the header");
	hand_token(tok, "{\"alg\":256}", GOOD_CLAIMS, EVP_sha256(), SECRET32, strlen(SECRET32));
	expect(hs, tok, AUTH_JWT_MALFORMED, "alg not a string");
	/* cJSON would read the first alg, libjwt's jansson the last. */
	hs256(tok, "{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "duplicate alg in the header");
	hs256(tok, "{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "duplicate alg in the header, other order");
	hs256(tok, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "crit header");
	hs256(tok, "[\"HS256\"]", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "header is an array");
	hs256(tok, "{\"alg\":\"HS256\"} x", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "junk after the header object");
	hs256(tok, "{\"alg\":\"HS256\"}\n", GOOD_CLAIMS);
	expect_user(hs, tok, "alice", 1700000600, "blank after the header object");
	hs256(tok, "{\"alg\":\"HS256\",\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,"
		   "\"h\":1,\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "header with 17 members");
	/* libjwt 1.10.2 refuses any typ but "JWT" (RFC 9068 uses at+jwt). */
	hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "typ at+jwt (libjwt 1.10.2 would refuse it anyway)");
	hs256(tok, "{\"alg\":\"HS256\",\"typ\":1}", GOOD_CLAIMS);
	expect(hs, tok, AUTH_JWT_MALFORMED, "typ not a string");
	hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", GOOD_CLAIMS);
	expect_user(hs, tok, "alice", 1700000600, "typ \"jwt\" (case-insensitive, RFC 7515 4.1.9)");
	hs256(tok, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}", GOOD_CLAIMS);
	expect_user(hs, tok, "alice", 1700000600, "hand-built HS256 with typ and kid");
	/* Signed with another secret. */
	hand_token(tok, "{\"alg\":\"HS256\"}", GOOD_CLAIMS, EVP_sha256(), SECRET48, strlen(SECRET48));
	expect(hs, tok, AUTH_JWT_BAD_SIGNATURE, "HS256 signed with another secret");
done:
	auth_jwt_free(hs);
	auth_jwt_free(rs);
}

static void test_shape(void)
{
	struct auth_jwt *a = hs_verifier("HS256", SECRET32);
	struct auth_jwt_identity id;
	const char *why = NULL;
	char tok[TOK_MAX], *big;
	size_t n;

	if (a == NULL)
		return;
	hs256(tok, "{\"alg\":\"HS256\"}", GOOD_CLAIMS);
	expect_user(a, tok, "alice", 1700000600, "baseline hand-built token");
	n = strlen(tok);

	expect(a, "", AUTH_JWT_MALFORMED, "empty string");
	ok(auth_jwt_verify(a, NULL, 0, NOW, &id, &why) == AUTH_JWT_MALFORMED, "NULL token");
	ok(auth_jwt_verify(NULL, tok, n, NOW, &id, &why) == AUTH_JWT_MALFORMED, "NULL verifier");
	expect(a, "garbage", AUTH_JWT_MALFORMED, "garbage");
	expect(a, "a.b.c", AUTH_JWT_MALFORMED, "1-character segments");
	expect(a, "..", AUTH_JWT_MALFORMED, "two dots");
	expect(a, "eyJhbGciOiJIUzI1NiJ9.e30", AUTH_JWT_MALFORMED, "two segments");
	expect(a, "\xff\xfe.\x01.\x7f", AUTH_JWT_MALFORMED, "binary");

	/* The token followed by other bytes, which len leaves out. */
	memcpy(tok + n, "garbage", 8);
	ok(auth_jwt_verify(a, tok, n, NOW, &id, &why) == AUTH_JWT_OK && strcmp(id.user, "alice") == 0,
	   "token not NUL-terminated, len honoured");
	tok[n] = '\0';
	ok(auth_jwt_verify(a, tok, n - 1, NOW, &id, &why) != AUTH_JWT_OK, "one byte short");

	{
		char four[TOK_MAX + 16];
		int rc;

		snprintf(four, sizeof(four), "%s.AAAA", tok);
		expect(a, four, AUTH_JWT_MALFORMED, "4 parts");
		snprintf(four, sizeof(four), "%s.", tok);
		expect(a, four, AUTH_JWT_MALFORMED, "trailing dot");
		snprintf(four, sizeof(four), "%s=", tok);
		expect(a, four, AUTH_JWT_MALFORMED, "padding '=' on the signature");
		snprintf(four, sizeof(four), "%sA", tok);
		expect(a, four, AUTH_JWT_BAD_SIGNATURE, "one more base64url digit in the signature");
		snprintf(four, sizeof(four), " %s", tok);
		expect(a, four, AUTH_JWT_MALFORMED, "leading blank");
		snprintf(four, sizeof(four), "%s\n", tok);
		expect(a, four, AUTH_JWT_MALFORMED, "trailing newline");
		strcpy(four, tok);
		four[3] = '+';
		expect(a, four, AUTH_JWT_MALFORMED, "'+' (base64, not base64url)");
		strcpy(four, tok);
		four[n - 3] = '/';
		expect(a, four, AUTH_JWT_MALFORMED, "'/' in the signature");
		memcpy(four, tok, n + 1);
		four[n - 3] = '\0';
		rc = auth_jwt_verify(a, four, n, NOW, &id, &why);
		ok(rc == AUTH_JWT_MALFORMED, "NUL inside the token: %s", why);
	}
	/* 5 base64 digits can never be a whole number of bytes. */
	expect(a, "eyJhbGciOiJIUzI1NiJ9.eyJzd.AAAA", AUTH_JWT_MALFORMED, "segment of 4n+1 digits");

	/* Huge: refused on its length, before anything looks at it. */
	big = malloc(1024 * 1024 + 1);
	if (big != NULL) {
		memset(big, 'A', 1024 * 1024);
		big[100] = '.';
		big[200] = '.';
		big[1024 * 1024] = '\0';
		expect(a, big, AUTH_JWT_MALFORMED, "1 MiB token");
		ok(auth_jwt_verify(a, tok, AUTH_JWT_TOKEN_MAX + 1, NOW, &id, &why) == AUTH_JWT_MALFORMED,
		   "token of AUTH_JWT_TOKEN_MAX + 1 bytes");
		free(big);
	}
	/* A valid token just under the cap passes; the same just over does not. */
	{
		char payload[AUTH_JWT_TOKEN_MAX], what[64];
		size_t fill = AUTH_JWT_TOKEN_MAX / 4 * 3 - 200;

		for (int over = 0; over <= 1; over++) {
			int m = snprintf(payload, sizeof(payload), "{\"sub\":\"bob\",\"exp\":1700000600,\"x\":\"");
			size_t len;

			for (; (size_t)m < fill; m++)
				payload[m] = 'y';
			strcpy(payload + m, "\"}");
			hs256(tok, "{\"alg\":\"HS256\"}", payload);
			len = strlen(tok);
			snprintf(what, sizeof(what), "valid token of %zu bytes", len);
			if (over)
				expect(a, tok, AUTH_JWT_MALFORMED, what);
			else
				expect_user(a, tok, "bob", 1700000600, what);
			fill += AUTH_JWT_TOKEN_MAX - len + 3;
		}
	}
	auth_jwt_free(a);
}

static void test_times(void)
{
	struct auth_jwt *a = hs_verifier("HS256", SECRET32);
	struct auth_jwt_config c = { .alg = "HS256", .secret = SECRET32, .require_exp = false };
	char err[256], tok[TOK_MAX];
	struct auth_jwt *noexp = auth_jwt_new(&c, err, sizeof(err));

	if (a == NULL || noexp == NULL)
		goto done;
	/* leeway is 30 s in a, 0 in noexp */
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1699999000}");
	expect(a, tok, AUTH_JWT_EXPIRED, "expired long ago");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1699999980}");
	expect_user(a, tok, "a", 1699999980, "expired 20 s ago, leeway 30 s");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1699999970}");
	expect(a, tok, AUTH_JWT_EXPIRED, "expired 30 s ago, leeway 30 s");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000000}");
	expect(noexp, tok, AUTH_JWT_EXPIRED, "exp == now, leeway 0");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000001}");
	expect_user(noexp, tok, "a", 1700000001, "exp == now + 1, leeway 0");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000000.5}");
	expect_user(noexp, tok, "a", 1700000001, "fractional exp, rounded up");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1e300}");
	expect_user(noexp, tok, "a", (time_t)253402300799, "exp far away, clamped");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":-1}");
	expect(a, tok, AUTH_JWT_EXPIRED, "negative exp");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":\"1800000000\"}");
	expect(a, tok, AUTH_JWT_MALFORMED, "exp as a string");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":null}");
	expect(a, tok, AUTH_JWT_MALFORMED, "exp null");

	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\"}");
	expect(a, tok, AUTH_JWT_MISSING_EXP, "no exp, exp required");
	expect_user(noexp, tok, "a", 0, "no exp, exp not required");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"EXP\":1}");
	expect_user(noexp, tok, "a", 0, "\"EXP\" is not exp");

	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000600,\"nbf\":1700000100}");
	expect(a, tok, AUTH_JWT_NOT_YET_VALID, "nbf 100 s ahead");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000600,\"nbf\":1700000020}");
	expect_user(a, tok, "a", 1700000600, "nbf 20 s ahead, leeway 30 s");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000600,\"nbf\":1700000031}");
	expect(a, tok, AUTH_JWT_NOT_YET_VALID, "nbf 31 s ahead, leeway 30 s");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"nbf\":1700000000}");
	expect_user(noexp, tok, "a", 0, "nbf == now, leeway 0");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"nbf\":1700000000.5}");
	expect(noexp, tok, AUTH_JWT_NOT_YET_VALID, "fractional nbf just ahead");
	/* jwt_get_grant_int() would read a real as 0, i.e. long past. */
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"nbf\":18e8}");
	expect(noexp, tok, AUTH_JWT_NOT_YET_VALID, "nbf written as a real");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"nbf\":\"0\"}");
	expect(noexp, tok, AUTH_JWT_MALFORMED, "nbf as a string");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"iat\":1800000000}");
	expect_user(noexp, tok, "a", 0, "iat in the future is not checked");
done:
	auth_jwt_free(a);
	auth_jwt_free(noexp);
}

static void test_iss_aud(void)
{
	struct auth_jwt_config c = { .alg = "HS256", .secret = SECRET32, .issuer = "https://idp",
				     .audience = "notifyd", .require_exp = false };
	char err[256], tok[TOK_MAX];
	struct auth_jwt *a = auth_jwt_new(&c, err, sizeof(err));
	static const struct { const char *payload; int want; const char *what; } cases[] = {
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":\"notifyd\"}", AUTH_JWT_OK,
		  "iss and aud (string) match" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":[\"other\",\"notifyd\"]}", AUTH_JWT_OK,
		  "aud array holds ours" },
		{ "{\"sub\":\"u\",\"iss\":\"https://evil\",\"aud\":\"notifyd\"}", AUTH_JWT_BAD_ISSUER,
		  "wrong iss" },
		{ "{\"sub\":\"u\",\"iss\":\"https://IDP\",\"aud\":\"notifyd\"}", AUTH_JWT_BAD_ISSUER,
		  "iss differs in case" },
		{ "{\"sub\":\"u\",\"aud\":\"notifyd\"}", AUTH_JWT_BAD_ISSUER, "no iss" },
		{ "{\"sub\":\"u\",\"iss\":[\"https://idp\"],\"aud\":\"notifyd\"}", AUTH_JWT_BAD_ISSUER,
		  "iss as an array" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":\"other\"}", AUTH_JWT_BAD_AUDIENCE,
		  "wrong aud (string)" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":[\"other\",\"notifyd2\"]}",
		  AUTH_JWT_BAD_AUDIENCE, "wrong aud (array)" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":[]}", AUTH_JWT_BAD_AUDIENCE,
		  "empty aud array" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":[[\"notifyd\"]]}", AUTH_JWT_BAD_AUDIENCE,
		  "aud nested array" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":{\"notifyd\":1}}", AUTH_JWT_BAD_AUDIENCE,
		  "aud object" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\"}", AUTH_JWT_BAD_AUDIENCE, "no aud" },
		{ "{\"sub\":\"u\",\"iss\":\"https://idp\",\"aud\":\"notifyd\\u0000x\"}",
		  AUTH_JWT_BAD_SIGNATURE, "aud with \\u0000 (refused by libjwt's jansson)" },
	};

	if (a == NULL) {
		ok(0, "verifier with iss and aud: %s", err);
		return;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hs256(tok, "{\"alg\":\"HS256\"}", cases[i].payload);
		if (cases[i].want == AUTH_JWT_OK)
			expect_user(a, tok, "u", 0, cases[i].what);
		else
			expect(a, tok, cases[i].want, cases[i].what);
	}
	auth_jwt_free(a);

	/* Not configured: not checked. */
	a = hs_verifier("HS256", SECRET32);
	if (a != NULL) {
		hs256(tok, "{\"alg\":\"HS256\"}",
		      "{\"sub\":\"u\",\"exp\":1700000600,\"iss\":\"x\",\"aud\":[1,2]}");
		expect_user(a, tok, "u", 1700000600, "iss and aud ignored when not configured");
	}
	auth_jwt_free(a);
}

static void test_user(void)
{
	struct auth_jwt *a = hs_verifier("HS256", SECRET32);
	struct auth_jwt_config c = { .alg = "HS256", .secret = SECRET32, .user_claim = "uid",
				     .require_exp = false };
	char err[256], tok[TOK_MAX], payload[1024], max[TARGET_ID_MAX + 2];
	struct auth_jwt *uid = auth_jwt_new(&c, err, sizeof(err));

	if (a == NULL || uid == NULL)
		goto done;
#define P(s) "{\"exp\":1700000600," s "}"
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"iss\":\"x\""));
	expect(a, tok, AUTH_JWT_NO_USER, "missing sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"SUB\":\"a\""));
	expect(a, tok, AUTH_JWT_NO_USER, "\"SUB\" is not sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":12345"));
	expect_user(a, tok, "12345", 1700000600, "integer sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":-7"));
	expect_user(a, tok, "-7", 1700000600, "negative integer sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":0"));
	expect_user(a, tok, "0", 1700000600, "sub 0");
	/* One rule for integer ids, the body's (target_from_number): exact
	 * within +-(2^53 - 1), plain decimal. */
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":9007199254740991"));
	expect_user(a, tok, "9007199254740991", 1700000600, "integer sub 2^53 - 1");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":-9007199254740991"));
	expect_user(a, tok, "-9007199254740991", 1700000600, "integer sub -(2^53 - 1)");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":9007199254740993"));
	expect(a, tok, AUTH_JWT_BAD_USER, "integer sub above 2^53 (a body could not name that user exactly)");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":9223372036854775807"));
	expect(a, tok, AUTH_JWT_BAD_USER, "integer sub INT64_MAX");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":99999999999999999999"));
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "integer sub beyond 64 bits (refused by jansson)");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":5.0"));
	expect_user(a, tok, "5", 1700000600, "sub 5.0 is user 5, as in a body");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":1e3"));
	expect_user(a, tok, "1000", 1700000600, "sub 1e3 is user 1000, as in a body");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":2.5"));
	expect(a, tok, AUTH_JWT_BAD_USER, "a fraction is no user");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":true"));
	expect(a, tok, AUTH_JWT_BAD_USER, "boolean sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":null"));
	expect(a, tok, AUTH_JWT_BAD_USER, "null sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":[\"a\"]"));
	expect(a, tok, AUTH_JWT_BAD_USER, "array sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"\""));
	expect(a, tok, AUTH_JWT_BAD_USER, "empty sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"a\\u0001b\""));
	expect(a, tok, AUTH_JWT_BAD_USER, "sub with U+0001");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"a\\nb\""));
	expect(a, tok, AUTH_JWT_BAD_USER, "sub with a newline");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"a\\u007fb\""));
	expect(a, tok, AUTH_JWT_BAD_USER, "sub with DEL");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"admin\\u0000x\""));
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "sub with \\u0000 (refused by jansson, not cut to admin)");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"j\\u00fcrgen\""));
	expect_user(a, tok, "j\xC3\xBCrgen", 1700000600, "escaped non-ASCII sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"\xF0\x9F\x98\x80\""));
	expect_user(a, tok, "\xF0\x9F\x98\x80", 1700000600, "raw UTF-8 sub");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"\xC0\x80\""));
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "overlong UTF-8 in sub (refused by jansson)");
	hs256(tok, "{\"alg\":\"HS256\"}", P("\"sub\":\"\\ud800\""));
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "lone surrogate escape in sub (refused by jansson)");

	memset(max, 'm', sizeof(max));
	max[TARGET_ID_MAX] = '\0';
	snprintf(payload, sizeof(payload), P("\"sub\":\"%s\""), max);
	hs256(tok, "{\"alg\":\"HS256\"}", payload);
	expect_user(a, tok, max, 1700000600, "sub of TARGET_ID_MAX bytes");
	max[TARGET_ID_MAX] = 'm';
	max[TARGET_ID_MAX + 1] = '\0';
	snprintf(payload, sizeof(payload), P("\"sub\":\"%s\""), max);
	hs256(tok, "{\"alg\":\"HS256\"}", payload);
	expect(a, tok, AUTH_JWT_BAD_USER, "sub of TARGET_ID_MAX + 1 bytes");

	/* Duplicate members: test_token_table(). */
	hs256(tok, "{\"alg\":\"HS256\"}", "[\"sub\",\"a\"]");
	expect(a, tok, AUTH_JWT_MALFORMED, "claims are an array");
	hs256(tok, "{\"alg\":\"HS256\"}", "\"sub\"");
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "claims are a string (refused by jansson)");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"a\",\"exp\":1700000600");
	expect(a, tok, AUTH_JWT_BAD_SIGNATURE, "claims not JSON (libjwt says only EINVAL)");

	/* Another claim name. */
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"s\",\"uid\":\"u42\"}");
	expect_user(uid, tok, "u42", 0, "user_claim uid");
	hs256(tok, "{\"alg\":\"HS256\"}", "{\"sub\":\"s\"}");
	expect(uid, tok, AUTH_JWT_NO_USER, "user_claim uid, only sub present");
#undef P
done:
	auth_jwt_free(a);
	auth_jwt_free(uid);
}

/* Hand-built HS256 tokens, header and claims as written, and what they
 * give.  Two rules: a member name twice at the top level of the header or
 * the claims makes the token malformed, whatever the values and however
 * the names are spelled (jansson keeps the last of duplicates, another
 * reader of the same token may keep the first: {"sub":"a","sub":"b"} was
 * user b here); a user id holds no C0 or C1 control character, DEL, U+2028
 * or U+2029. */
static void test_token_table(void)
{
#define H "{\"alg\":\"HS256\"}"
#define C(s) "{\"exp\":1700000600," s "}"
	static const struct {
		const char *header, *claims;
		int want;
		const char *user;	/* when want is AUTH_JWT_OK */
		const char *what;
	} cases[] = {
		{ H, C("\"sub\":\"a\""), AUTH_JWT_OK, "a", "baseline" },
		/* the header */
		{ "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", C("\"sub\":\"a\""), AUTH_JWT_MALFORMED, NULL,
		  "header: alg twice, same value" },
		{ "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", C("\"sub\":\"a\""),
		  AUTH_JWT_MALFORMED, NULL, "header: typ twice" },
		{ "{\"alg\":\"HS256\",\"kid\":\"1\",\"kid\":\"2\"}", C("\"sub\":\"a\""),
		  AUTH_JWT_MALFORMED, NULL, "header: kid twice" },
		{ "{\"alg\":\"HS256\",\"a\\u006cg\":\"HS256\"}", C("\"sub\":\"a\""), AUTH_JWT_MALFORMED,
		  NULL, "header: alg and a\\u006cg (the same name escaped)" },
		{ "{\"alg\":\"HS256\",\"Alg\":\"none\"}", C("\"sub\":\"a\""), AUTH_JWT_OK, "a",
		  "header: alg and Alg are two names" },
		/* the claims */
		{ H, C("\"sub\":\"a\",\"sub\":\"b\""), AUTH_JWT_MALFORMED, NULL, "claims: sub a then b" },
		{ H, C("\"sub\":\"b\",\"sub\":\"a\""), AUTH_JWT_MALFORMED, NULL, "claims: sub b then a" },
		{ H, C("\"sub\":\"a\",\"sub\":\"a\""), AUTH_JWT_MALFORMED, NULL, "claims: sub twice, same value" },
		{ H, C("\"sub\":\"a\",\"s\\u0075b\":\"b\""), AUTH_JWT_MALFORMED, NULL,
		  "claims: sub and s\\u0075b" },
		{ H, "{\"sub\":\"a\",\"exp\":1,\"exp\":1700000600}", AUTH_JWT_MALFORMED, NULL,
		  "claims: an expired exp, then a valid one" },
		{ H, C("\"sub\":\"a\",\"nbf\":1,\"nbf\":1"), AUTH_JWT_MALFORMED, NULL, "claims: nbf twice" },
		{ H, C("\"sub\":\"a\",\"x\":1,\"x\":1"), AUTH_JWT_MALFORMED, NULL,
		  "claims: a claim nobody reads, twice" },
		{ H, C("\"sub\":\"a\",\"Sub\":\"b\""), AUTH_JWT_OK, "a", "claims: sub and Sub are two names" },
		{ H, C("\"sub\":\"a\",\"ctx\":{\"k\":1,\"k\":2}"), AUTH_JWT_OK, "a",
		  "claims: a duplicate inside a nested object is the claim's business" },
		{ H, C("\"sub\":\"a\",\"aud\":[\"x\",\"x\"]"), AUTH_JWT_OK, "a",
		  "claims: a repeated array element is no duplicate member" },
		/* the user id */
		{ H, C("\"sub\":\"a\\u0080b\""), AUTH_JWT_BAD_USER, NULL, "sub with U+0080 (C1)" },
		{ H, C("\"sub\":\"a\\u0085b\""), AUTH_JWT_BAD_USER, NULL, "sub with U+0085 NEL (C1)" },
		{ H, C("\"sub\":\"a\\u009fb\""), AUTH_JWT_BAD_USER, NULL, "sub with U+009F (C1)" },
		{ H, C("\"sub\":\"a\xC2\x85" "b\""), AUTH_JWT_BAD_USER, NULL, "sub with a raw NEL" },
		{ H, C("\"sub\":\"a\\u2028b\""), AUTH_JWT_BAD_USER, NULL, "sub with U+2028" },
		{ H, C("\"sub\":\"a\\u2029b\""), AUTH_JWT_BAD_USER, NULL, "sub with U+2029" },
		{ H, C("\"sub\":\"a\\u00a0b\""), AUTH_JWT_OK, "a\xC2\xA0" "b", "sub with U+00A0 (no control)" },
		{ H, C("\"sub\":\"a\\u202fb\""), AUTH_JWT_OK, "a\xE2\x80\xAF" "b", "sub with U+202F" },
	};
	struct auth_jwt *a = hs_verifier("HS256", SECRET32);
	char tok[TOK_MAX], many[4096];
	size_t n;

	if (a == NULL)
		return;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		hs256(tok, cases[i].header, cases[i].claims);
		if (cases[i].want == AUTH_JWT_OK)
			expect_user(a, tok, cases[i].user, 1700000600, cases[i].what);
		else
			expect(a, tok, cases[i].want, cases[i].what);
	}
	/* Many members, the duplicate far apart: sorted, not n^2. */
	n = (size_t)snprintf(many, sizeof(many), "{\"sub\":\"a\",\"exp\":1700000600");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, ",\"c%d\":%d", i, i);
	snprintf(many + n, sizeof(many) - n, "}");
	hs256(tok, H, many);
	expect_user(a, tok, "a", 1700000600, "302 distinct claims");
	snprintf(many + n, sizeof(many) - n, ",\"c0\":0}");
	hs256(tok, H, many);
	expect(a, tok, AUTH_JWT_MALFORMED, "302 claims, the first one again at the end");
	auth_jwt_free(a);
#undef H
#undef C
}

/* The same rule on the other road: RSA, where libjwt checks the
 * signature. */
static void test_duplicates_rs256(const struct keys *k)
{
	struct auth_jwt *rs = key_verifier("RS256", k->rsa_pub);
	char tok[TOK_MAX];

	if (rs == NULL)
		return;
	if (rs256(tok, "{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"exp\":1700000600}", k->rsa_priv) == 0)
		expect_user(rs, tok, "a", 1700000600, "RS256 signed by hand");
	if (rs256(tok, "{\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1700000600}",
		  k->rsa_priv) == 0)
		expect(rs, tok, AUTH_JWT_MALFORMED, "RS256: sub twice");
	if (rs256(tok, "{\"alg\":\"RS256\",\"alg\":\"RS256\"}", "{\"sub\":\"a\",\"exp\":1700000600}",
		  k->rsa_priv) == 0)
		expect(rs, tok, AUTH_JWT_MALFORMED, "RS256: alg twice");
	auth_jwt_free(rs);
}

static void expect_config_error(const struct auth_jwt_config *c, const char *needle,
				const char *what)
{
	char err[512] = "";
	struct auth_jwt *a = auth_jwt_new(c, err, sizeof(err));

	ok(a == NULL && strstr(err, needle) != NULL &&
	   (c == NULL || c->secret == NULL || c->secret[0] == '\0' || strstr(err, c->secret) == NULL),
	   "config error, %s: \"%s\"", what, err);
	auth_jwt_free(a);
}

static void test_config(const struct keys *k)
{
	struct auth_jwt_config c;
	char err[512];
	struct auth_jwt *a;

	expect_config_error(NULL, "jwt_algorithm", "no config");
#define CFG(...) (c = (struct auth_jwt_config){ __VA_ARGS__ }, &c)
	expect_config_error(CFG(.secret = SECRET32), "jwt_algorithm", "no alg");
	expect_config_error(CFG(.alg = "HS257", .secret = SECRET32), "HS257", "unknown alg");
	expect_config_error(CFG(.alg = "none", .secret = SECRET32), "none", "alg none");
	expect_config_error(CFG(.alg = "hs256", .secret = SECRET32), "hs256", "lower-case alg");
	expect_config_error(CFG(.alg = "PS256", .key_file = k->rsa_pub), "PS256",
			    "PS256 (not in libjwt 1.10.2)");
	expect_config_error(CFG(.alg = "EdDSA", .key_file = k->rsa_pub), "EdDSA", "EdDSA");
	expect_config_error(CFG(.alg = "HS256"), "at least 32 bytes", "HS256 without a secret");
	expect_config_error(CFG(.alg = "HS256", .secret = "0123456789abcdef0123456789abcde"),
			    "at least 32 bytes, got 31", "HS256 with 31 bytes");
	expect_config_error(CFG(.alg = "HS384", .secret = SECRET32), "at least 48 bytes",
			    "HS384 with 32 bytes");
	expect_config_error(CFG(.alg = "HS512", .secret = SECRET48), "at least 64 bytes",
			    "HS512 with 48 bytes");
	expect_config_error(CFG(.alg = "HS256", .secret = SECRET32, .key_file = k->rsa_pub),
			    "jwt_key_file", "HS256 with a key file");
	expect_config_error(CFG(.alg = "RS256", .secret = SECRET32, .key_file = k->rsa_pub),
			    "jwt_secret", "RS256 with a secret");
	expect_config_error(CFG(.alg = "RS256"), "jwt_key_file", "RS256 without a key file");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->missing), "No such file",
			    "missing key file");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->dir), "jwt_key_file",
			    "key file is a directory");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->garbage), "no PEM public key",
			    "garbage key file");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->rsa_priv_file), "private key",
			    "private key file");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->rsa_small_pub), "1024 bits",
			    "RSA 1024");
	expect_config_error(CFG(.alg = "RS256", .key_file = k->ec256_pub), "needs an RSA key",
			    "EC key for RS256");
	expect_config_error(CFG(.alg = "ES256", .key_file = k->rsa_pub), "needs an EC key",
			    "RSA key for ES256");
	expect_config_error(CFG(.alg = "ES256", .key_file = k->ec384_pub), "secp384r1",
			    "P-384 key for ES256");
	expect_config_error(CFG(.alg = "ES512", .key_file = k->ec256_pub), "prime256v1",
			    "P-256 key for ES512");
	ok(ERR_peek_error() == 0, "no OpenSSL error left after failed loads");

	a = auth_jwt_new(CFG(.alg = "HS256", .secret = SECRET32, .issuer = "", .audience = "",
			     .user_claim = ""), err, sizeof(err));
	ok(a != NULL, "empty issuer, audience and user_claim mean unset / sub");
	auth_jwt_free(a);
	auth_jwt_free(NULL);
	ok(1, "auth_jwt_free(NULL)");
#undef CFG

	ok(strcmp(auth_jwt_strerror(AUTH_JWT_OK), "ok") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_MALFORMED), "malformed token") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_BAD_SIGNATURE), "bad signature") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_BAD_ALG), "algorithm not allowed") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_EXPIRED), "token expired") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_NOT_YET_VALID), "token not yet valid") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_BAD_ISSUER), "wrong issuer") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_BAD_AUDIENCE), "wrong audience") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_NO_USER), "missing user claim") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_BAD_USER), "invalid user claim") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_MISSING_EXP), "missing exp claim") == 0 &&
	   strcmp(auth_jwt_strerror(AUTH_JWT_INTERNAL), "internal error") == 0,
	   "auth_jwt_strerror names every error");
	ok(strcmp(auth_jwt_strerror(1), "unknown error") == 0 &&
	   strcmp(auth_jwt_strerror(-12), "unknown error") == 0 &&
	   strcmp(auth_jwt_strerror(-2147483647 - 1), "unknown error") == 0,
	   "auth_jwt_strerror of an unknown code");
}

/* The key is loaded once: replacing the file does not change a verifier. */
static void test_key_is_loaded_once(const struct keys *k)
{
	char tmp[160], tok[TOK_MAX];
	struct auth_jwt *a;

	snprintf(tmp, sizeof(tmp), "%s/swap.pub", k->dir);
	if (write_file(tmp, k->rsa_pub_pem) != 0) {
		ok(0, "write %s", tmp);
		return;
	}
	a = key_verifier("RS256", tmp);
	unlink(tmp);
	if (a != NULL && lib_token(tok, JWT_ALG_RS256, k->rsa_priv, GOOD_CLAIMS) == 0)
		expect_user(a, tok, "alice", 1700000600, "key file removed after load");
	auth_jwt_free(a);
}

struct thread_arg {
	const struct auth_jwt *a;
	const char *tok;
	int failures;
};

static void *verify_many(void *p)
{
	struct thread_arg *t = p;
	struct auth_jwt_identity id;

	for (int i = 0; i < 100; i++)
		if (auth_jwt_verify(t->a, t->tok, strlen(t->tok), NOW, &id, NULL) != AUTH_JWT_OK ||
		    strcmp(id.user, "alice") != 0)
			t->failures++;
	return NULL;
}

static void test_threads(const struct keys *k)
{
	struct auth_jwt *hs = hs_verifier("HS256", SECRET32);
	struct auth_jwt *es = key_verifier("ES256", k->ec256_pub);
	char hs_tok[TOK_MAX], es_tok[TOK_MAX];
	struct thread_arg args[4];
	pthread_t th[4];
	int started = 0, failures = 0;

	if (hs == NULL || es == NULL || lib_token(hs_tok, JWT_ALG_HS256, SECRET32, GOOD_CLAIMS) != 0 ||
	    lib_token(es_tok, JWT_ALG_ES256, k->ec256_priv, GOOD_CLAIMS) != 0)
		goto done;
	for (int i = 0; i < 4; i++) {
		args[i] = (struct thread_arg){ i % 2 ? hs : es, i % 2 ? hs_tok : es_tok, 0 };
		if (pthread_create(&th[i], NULL, verify_many, &args[i]) == 0)
			started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		failures += args[i].failures;
	}
	ok(started == 4 && failures == 0, "4 threads x 100 verifications on shared verifiers (%d failed)",
	   failures);
done:
	auth_jwt_free(hs);
	auth_jwt_free(es);
}

static void expect_proto(const char *header, const char *want_why, const char *want_chosen,
			 const char *want_token, const char *what)
{
	char chosen[32], token[AUTH_JWT_TOKEN_MAX + 1];
	const char *why = auth_jwt_from_subprotocol(header, chosen, sizeof(chosen), token, sizeof(token));

	ok(((why == NULL && want_why == NULL) ||
	    (why != NULL && want_why != NULL && strcmp(why, want_why) == 0)) &&
	   strcmp(chosen, want_chosen) == 0 && strcmp(token, want_token) == 0,
	   "subprotocol, %s (got %s, \"%s\", \"%.20s\")", what, why ? why : "NULL", chosen, token);
}

static void test_subprotocol(void)
{
	char chosen[32], small[4], token[AUTH_JWT_TOKEN_MAX + 1], tok[TOK_MAX], header[TOK_MAX + 32];
	struct auth_jwt *a;
	struct auth_jwt_identity id;
	const char *why;

	expect_proto(NULL, NULL, "", "", "no header");
	expect_proto("", NULL, "", "", "empty header");
	expect_proto("chat, superchat", NULL, "", "", "other protocols only");
	expect_proto("notifyd.v1", NULL, "notifyd.v1", "", "notifyd.v1 alone");
	expect_proto("notifyd.v1, bearer.aaa.bbb.ccc", NULL, "notifyd.v1", "aaa.bbb.ccc",
		     "notifyd.v1 and a token");
	expect_proto("bearer.aaa.bbb.ccc,notifyd.v1", NULL, "notifyd.v1", "aaa.bbb.ccc",
		     "token first, no blank");
	expect_proto(" chat ,\tnotifyd.v1\t, , bearer.x.y.z ,", NULL, "notifyd.v1", "x.y.z",
		     "blanks, empty items and another protocol");
	expect_proto("bearer.aaa.bbb.ccc", "bearer subprotocol without notifyd.v1 or notifyd.v2", "", "",
		     "token without notifyd.v1");
	expect_proto("notifyd.v2", NULL, "notifyd.v2", "", "notifyd.v2 alone");
	expect_proto("notifyd.v1, notifyd.v2, bearer.x.y.z", NULL, "notifyd.v2", "x.y.z",
		     "notifyd.v2 preferred wherever it is listed");
	expect_proto("notifyd.v2, bearer.x.y.z", NULL, "notifyd.v2", "x.y.z", "a token beside notifyd.v2");
	expect_proto("notifyd.v20, notifyd.v, NOTIFYD.V2", NULL, "", "", "near misses of notifyd.v2");
	expect_proto("notifyd.v1, bearer.a.b.c, bearer.d.e.f", "several bearer subprotocols",
		     "notifyd.v1", "", "two tokens");
	expect_proto("notifyd.v1, bearer.", "empty bearer token", "notifyd.v1", "", "empty token");
	expect_proto("notifyd.v1, Bearer.a.b.c", NULL, "notifyd.v1", "",
		     "\"Bearer.\" is another protocol (names are case-sensitive)");
	expect_proto("notifyd.v10, notifyd.v, NOTIFYD.V1", NULL, "", "", "near misses of notifyd.v1");
	expect_proto("notifyd.v10, bearer.a.b.c", "bearer subprotocol without notifyd.v1 or notifyd.v2", "", "",
		     "token with notifyd.v10");
	expect_proto("notifyd.v1, bearertoken", NULL, "notifyd.v1", "", "\"bearer\" without a dot");

	/* Too long for the caller's buffer. */
	memcpy(header, "notifyd.v1, bearer.", 19);
	memset(header + 19, 'A', AUTH_JWT_TOKEN_MAX + 1);
	header[19 + AUTH_JWT_TOKEN_MAX + 1] = '\0';
	expect_proto(header, "token too long", "notifyd.v1", "", "token longer than the buffer");
	header[19 + AUTH_JWT_TOKEN_MAX] = '\0';
	why = auth_jwt_from_subprotocol(header, chosen, sizeof(chosen), token, sizeof(token));
	ok(why == NULL && strlen(token) == AUTH_JWT_TOKEN_MAX, "token of AUTH_JWT_TOKEN_MAX fits");
	why = auth_jwt_from_subprotocol("notifyd.v1, bearer.a.b.c", small, sizeof(small), token,
					sizeof(token));
	ok(why != NULL && small[0] == '\0', "chosen buffer too small: %s", why ? why : "NULL");

	/* End to end, as a browser would send it. */
	a = hs_verifier("HS256", SECRET32);
	if (a != NULL && lib_token(tok, JWT_ALG_HS256, SECRET32, GOOD_CLAIMS) == 0) {
		snprintf(header, sizeof(header), "notifyd.v1, bearer.%s", tok);
		why = auth_jwt_from_subprotocol(header, chosen, sizeof(chosen), token, sizeof(token));
		ok(why == NULL && auth_jwt_verify(a, token, strlen(token), NOW, &id, &why) == AUTH_JWT_OK &&
		   strcmp(id.user, "alice") == 0 && strcmp(chosen, "notifyd.v1") == 0,
		   "token from Sec-WebSocket-Protocol verifies");
	}
	auth_jwt_free(a);
}

int main(void)
{
	struct keys k;

	if (make_keys(&k) != 0) {
		ok(0, "generate test keys in %s", k.dir);
		free_keys(&k);
		return done_testing();
	}
	test_hmac_algs();
	test_key_algs(&k);
	test_alg_attacks(&k);
	test_shape();
	test_times();
	test_iss_aud();
	test_user();
	test_token_table();
	test_duplicates_rs256(&k);
	test_config(&k);
	test_key_is_loaded_once(&k);
	test_threads(&k);
	test_subprotocol();
	free_keys(&k);
	return done_testing();
}
