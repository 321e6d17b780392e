/* auth_jwt.c - who a WebSocket client is, from a JSON Web Token.
 *
 * libjwt 1.10.2 verifies signatures and nothing else, and even that only
 * when it is handed a key: without one it accepts any token as alg "none".
 * It also takes the algorithm from the token itself, so an HS256 token whose
 * HMAC key is our RSA public key PEM verifies against that PEM.  Hence four
 * layers, of which 2 and 4 each refuse both attacks on their own:
 *   1. shape: a bounded length, exactly three base64url segments;
 *   2. the header, decoded and parsed here, must name exactly the configured
 *      algorithm (libjwt compares alg case-insensitively and takes the last
 *      of duplicate members, so duplicates are refused outright);
 *   3. the signature is checked with the configured algorithm and key:
 *      RSA and EC by jwt_decode(), which always gets our key, never a zero
 *      length (which would make it skip the signature); HMAC by us, before
 *      jwt_decode() (libjwt's HMAC() path costs several times the hash), and
 *      jwt_decode() then gets no key on purpose and only parses;
 *   4. after decoding, libjwt's view of the algorithm must still be the
 *      configured one (jwt_get_alg(), or for HMAC its header's alg).
 * Claims are judged on libjwt's own parse (jansson), re-serialized by
 * jwt_get_grants_json() and read back with cJSON, so what was verified and
 * what is checked are one document: jansson has already refused invalid
 * UTF-8 and "\u0000" in strings, so the text cJSON reads has neither.
 * jansson silently keeps the last of duplicate members, and another reader
 * of the same token may keep the first: {"sub":"a","sub":"b"} must not be
 * b here and a elsewhere.  So one rule for the header and the claims: a
 * member name twice at the top level makes the token malformed.
 */
#include "autoconfig.h"

#include "auth_jwt.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "text.h"

/* A PEM public key or certificate is a few KiB; anything far larger is not
 * what the operator meant to point at. */
#define AUTH_JWT_KEY_FILE_MAX (64 * 1024)
#define AUTH_JWT_RSA_BITS_MIN 2048
/* exp values past this (year 9999) are reported as this, so that adding to
 * the result cannot overflow a time_t. */
#define AUTH_JWT_EXP_MAX ((time_t)253402300799)
#define AUTH_JWT_HEADER_MEMBERS_MAX 16

enum auth_jwt_family { FAMILY_HMAC, FAMILY_RSA, FAMILY_EC };

struct auth_jwt_alg {
	const char *name;
	jwt_alg_t id;
	enum auth_jwt_family family;
	size_t secret_min;	/* HMAC: RFC 7518 3.2, a key as long as the hash */
	int curve_nid;		/* EC: RFC 7518 3.4, the curve is fixed by the alg */
	const char *digest;	/* HMAC: the hash, as OpenSSL names it */
};

static const struct auth_jwt_alg auth_jwt_algs[] = {
	{ "HS256", JWT_ALG_HS256, FAMILY_HMAC, 32, NID_undef, "SHA256" },
	{ "HS384", JWT_ALG_HS384, FAMILY_HMAC, 48, NID_undef, "SHA384" },
	{ "HS512", JWT_ALG_HS512, FAMILY_HMAC, 64, NID_undef, "SHA512" },
	{ "RS256", JWT_ALG_RS256, FAMILY_RSA, 0, NID_undef, NULL },
	{ "RS384", JWT_ALG_RS384, FAMILY_RSA, 0, NID_undef, NULL },
	{ "RS512", JWT_ALG_RS512, FAMILY_RSA, 0, NID_undef, NULL },
	{ "ES256", JWT_ALG_ES256, FAMILY_EC, 0, NID_X9_62_prime256v1, NULL },
	{ "ES384", JWT_ALG_ES384, FAMILY_EC, 0, NID_secp384r1, NULL },
	{ "ES512", JWT_ALG_ES512, FAMILY_EC, 0, NID_secp521r1, NULL },
};

struct auth_jwt {
	const struct auth_jwt_alg *alg;
	unsigned char *key;	/* HMAC secret, or a normalized PEM public key */
	size_t key_len;
	char *issuer;		/* NULL: not checked */
	char *audience;		/* NULL: not checked */
	char *user_claim;
	EVP_MAC_CTX *hmac;	/* HMAC: keyed once here, duplicated per token
				 * (only ever read, so threads may share it) */
	uint32_t leeway_s;
	bool require_exp;
};

static const char *const auth_jwt_reasons[] = {
	"ok",
	"malformed token",
	"bad signature",
	"algorithm not allowed",
	"token expired",
	"token not yet valid",
	"wrong issuer",
	"wrong audience",
	"missing user claim",
	"invalid user claim",
	"missing exp claim",
	"internal error",
};

const char *auth_jwt_strerror(int err)
{
	if (err > 0 || err <= -(int)(sizeof(auth_jwt_reasons) / sizeof(auth_jwt_reasons[0])))
		return "unknown error";
	return auth_jwt_reasons[-err];
}

__attribute__((format(printf, 3, 4)))
static void auth_jwt_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool auth_jwt_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static const struct auth_jwt_alg *auth_jwt_find_alg(const char *name)
{
	for (size_t i = 0; i < sizeof(auth_jwt_algs) / sizeof(auth_jwt_algs[0]); i++)
		if (strcmp(auth_jwt_algs[i].name, name) == 0)
			return &auth_jwt_algs[i];
	return NULL;
}

/* NULL for NULL or "", so "not configured" has a single representation. */
static int auth_jwt_dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (auth_jwt_empty(s))
		return 0;
	*out = strdup(s);
	return *out == NULL ? -1 : 0;
}

void auth_jwt_free(struct auth_jwt *a)
{
	if (a == NULL)
		return;
	if (a->key != NULL) {
		OPENSSL_cleanse(a->key, a->key_len);
		free(a->key);
	}
	/* Frees (and wipes) its copy of the key. */
	EVP_MAC_CTX_free(a->hmac);
	free(a->issuer);
	free(a->audience);
	free(a->user_claim);
	free(a);
}

/* One byte more than the limit is asked for, to tell "exactly at the
 * limit" from "larger". */
static char *auth_jwt_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(AUTH_JWT_KEY_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		auth_jwt_errf(err, errlen, "jwt_key_file %s: out of memory", path);
		return NULL;
	}
	n = fread(buf, 1, AUTH_JWT_KEY_FILE_MAX + 1, f);
	if (ferror(f)) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: read error", path);
		goto fail;
	}
	if (n > AUTH_JWT_KEY_FILE_MAX) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: larger than %d bytes, not a PEM key",
			      path, AUTH_JWT_KEY_FILE_MAX);
		goto fail;
	}
	fclose(f);
	*len = n;
	return buf;
fail:
	fclose(f);
	free(buf);
	return NULL;
}

/* A public key, or the key of a certificate.  Private keys are not tried:
 * one that is encrypted would make OpenSSL prompt on the terminal, and a
 * verifier has no business holding one. */
static EVP_PKEY *auth_jwt_parse_pem(const char *pem, size_t len)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if (len > INT_MAX)
		return NULL;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return NULL;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pkey == NULL && BIO_reset(bio) == 1) {
		X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);

		if (cert != NULL) {
			pkey = X509_get_pubkey(cert);
			X509_free(cert);
		}
	}
	BIO_free(bio);
	return pkey;
}

static int auth_jwt_check_pkey(const struct auth_jwt_alg *alg, EVP_PKEY *pkey, const char *path,
			       char *err, size_t errlen)
{
	char group[64];
	int nid;

	if (alg->family == FAMILY_RSA) {
		/* RS* is PKCS #1 v1.5, which a key restricted to RSA-PSS
		 * cannot verify. */
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
			auth_jwt_errf(err, errlen, "jwt_key_file %s: %s needs an RSA key",
				      path, alg->name);
			return -1;
		}
		if (EVP_PKEY_get_bits(pkey) < AUTH_JWT_RSA_BITS_MIN) {
			auth_jwt_errf(err, errlen, "jwt_key_file %s: RSA key of %d bits, %s needs at least %d",
				      path, EVP_PKEY_get_bits(pkey), alg->name, AUTH_JWT_RSA_BITS_MIN);
			return -1;
		}
		return 0;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: %s needs an EC key", path, alg->name);
		return -1;
	}
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = EC_curve_nist2nid(group);
	if (nid != alg->curve_nid) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: EC key on curve %s, %s needs %s",
			      path, group, alg->name, OBJ_nid2sn(alg->curve_nid));
		return -1;
	}
	return 0;
}

/* libjwt re-reads the PEM at every verification; handing it our own
 * re-encoding of the one key we checked means a certificate works too and
 * whatever else the file holds is never seen by libjwt. */
static int auth_jwt_load_key(struct auth_jwt *a, const char *path, char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	BIO *out = NULL;
	char *pem, *data;
	size_t len;
	long n;
	int rc = -1;

	pem = auth_jwt_read_file(path, &len, err, errlen);
	if (pem == NULL)
		return -1;
	pkey = auth_jwt_parse_pem(pem, len);
	if (pkey == NULL) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: no PEM public key (BEGIN PUBLIC KEY) "
			      "or certificate; a private key does not belong here", path);
		goto done;
	}
	if (auth_jwt_check_pkey(a->alg, pkey, path, err, errlen) != 0)
		goto done;
	out = BIO_new(BIO_s_mem());
	if (out == NULL || PEM_write_bio_PUBKEY(out, pkey) != 1) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: cannot re-encode the key", path);
		goto done;
	}
	n = BIO_get_mem_data(out, &data);
	if (n <= 0 || n > INT_MAX || (a->key = malloc((size_t)n)) == NULL) {
		auth_jwt_errf(err, errlen, "jwt_key_file %s: out of memory", path);
		goto done;
	}
	memcpy(a->key, data, (size_t)n);
	a->key_len = (size_t)n;
	rc = 0;
done:
	BIO_free(out);
	EVP_PKEY_free(pkey);
	free(pem);
	/* The queue is per thread and TLS code on this thread reads it. */
	ERR_clear_error();
	return rc;
}

static int auth_jwt_load_secret(struct auth_jwt *a, const char *secret, char *err, size_t errlen)
{
	size_t len = secret == NULL ? 0 : strlen(secret);

	if (len < a->alg->secret_min) {
		auth_jwt_errf(err, errlen, "jwt_secret: %s needs a secret of at least %zu bytes, got %zu",
			      a->alg->name, a->alg->secret_min, len);
		return -1;
	}
	if (len > INT_MAX) {
		auth_jwt_errf(err, errlen, "jwt_secret: too long");
		return -1;
	}
	a->key = malloc(len);
	if (a->key == NULL) {
		auth_jwt_errf(err, errlen, "jwt_secret: out of memory");
		return -1;
	}
	memcpy(a->key, secret, len);
	a->key_len = len;
	return 0;
}

/* libjwt's HMAC check (HMAC(), i.e. EVP_Q_mac) fetches the MAC and the
 * digest, builds and frees a context, and base64-encodes through two BIOs
 * for every token: most of the cost of a connection with auth = jwt.  So
 * the keyed context is built once, and a token's MAC is a copy, an update
 * and a final. */
static int auth_jwt_hmac_init(struct auth_jwt *a, char *err, size_t errlen)
{
	OSSL_PARAM params[2];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

	if (mac != NULL) {
		a->hmac = EVP_MAC_CTX_new(mac);
		EVP_MAC_free(mac);	/* the context keeps its own reference */
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)a->alg->digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (a->hmac == NULL || EVP_MAC_init(a->hmac, a->key, a->key_len, params) != 1) {
		ERR_clear_error();
		auth_jwt_errf(err, errlen, "jwt_secret: cannot set up HMAC-%s", a->alg->digest);
		return -1;
	}
	return 0;
}

struct auth_jwt *auth_jwt_new(const struct auth_jwt_config *cfg, char *err, size_t errlen)
{
	const struct auth_jwt_alg *alg;
	struct auth_jwt *a;

	if (cfg == NULL || auth_jwt_empty(cfg->alg)) {
		auth_jwt_errf(err, errlen, "jwt_algorithm: not set");
		return NULL;
	}
	alg = auth_jwt_find_alg(cfg->alg);
	if (alg == NULL) {
		auth_jwt_errf(err, errlen, "jwt_algorithm: \"%s\" is not one of HS256 HS384 HS512 "
			      "RS256 RS384 RS512 ES256 ES384 ES512", cfg->alg);
		return NULL;
	}
	/* Both set means the operator is unsure which one is used: say so
	 * rather than silently ignore one. */
	if (alg->family == FAMILY_HMAC && !auth_jwt_empty(cfg->key_file)) {
		auth_jwt_errf(err, errlen, "jwt_key_file: not used by %s (it takes jwt_secret)", alg->name);
		return NULL;
	}
	if (alg->family != FAMILY_HMAC && !auth_jwt_empty(cfg->secret)) {
		auth_jwt_errf(err, errlen, "jwt_secret: not used by %s (it takes jwt_key_file)", alg->name);
		return NULL;
	}
	if (alg->family != FAMILY_HMAC && auth_jwt_empty(cfg->key_file)) {
		auth_jwt_errf(err, errlen, "jwt_key_file: %s needs a PEM public key file", alg->name);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		auth_jwt_errf(err, errlen, "out of memory");
		return NULL;
	}
	a->alg = alg;
	a->leeway_s = cfg->leeway_s;
	a->require_exp = cfg->require_exp;
	if (auth_jwt_dup_opt(cfg->issuer, &a->issuer) != 0 ||
	    auth_jwt_dup_opt(cfg->audience, &a->audience) != 0 ||
	    (a->user_claim = strdup(auth_jwt_empty(cfg->user_claim) ? "sub" : cfg->user_claim)) == NULL) {
		auth_jwt_errf(err, errlen, "out of memory");
		goto fail;
	}
	if (alg->family == FAMILY_HMAC) {
		if (auth_jwt_load_secret(a, cfg->secret, err, errlen) != 0 ||
		    auth_jwt_hmac_init(a, err, errlen) != 0)
			goto fail;
	} else if (auth_jwt_load_key(a, cfg->key_file, err, errlen) != 0) {
		goto fail;
	}
	return a;
fail:
	auth_jwt_free(a);
	return NULL;
}

/* ---- verification ---------------------------------------------------- */

/* Unpadded base64url (RFC 7515 2).  out must hold n * 3 / 4 bytes.  The
 * caller has already checked the alphabet and that n % 4 != 1. */
static size_t auth_jwt_b64url_decode(const char *in, size_t n, unsigned char *out)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 6) | (uint32_t)text_b64_value((unsigned char)in[i], true);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return o;
}

/* Exactly three segments of base64url.  libjwt's decoder silently stops at
 * the first character it does not know, and copies each segment onto the
 * stack with alloca(): nothing reaches it that is not well formed and
 * bounded.  Every algorithm we accept signs, so no segment may be empty. */
static int auth_jwt_split(const char *tok, size_t len, size_t dot[2])
{
	size_t ndots = 0, start = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tok[i];

		if (c == '.') {
			if (ndots == 2)
				return -1;
			dot[ndots++] = i;
			if (i == start || (i - start) % 4 == 1)
				return -1;
			start = i + 1;
		} else if (text_b64_value(c, true) < 0) {
			return -1;
		}
	}
	if (ndots != 2 || len == start || (len - start) % 4 == 1)
		return -1;
	return 0;
}

static int auth_jwt_cmp_names(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* Are obj's member names (as cJSON decoded them: "s\u0075b" is "sub") all
 * distinct, and at most max of them?  Sorted, so that a claims object of a
 * thousand members costs n log n, not n^2.  -1: out of memory. */
static int auth_jwt_unique_members(const cJSON *obj, size_t max)
{
	const char **names;
	size_t n = 0, i;
	int rc = 1;

	for (const cJSON *m = obj->child; m != NULL; m = m->next) {
		if (m->string == NULL || ++n > max)
			return 0;
	}
	if (n < 2)
		return 1;
	names = malloc(n * sizeof(*names));
	if (names == NULL)
		return -1;
	i = 0;
	for (const cJSON *m = obj->child; m != NULL; m = m->next)
		names[i++] = m->string;
	qsort(names, n, sizeof(*names), auth_jwt_cmp_names);
	for (i = 1; i < n && rc == 1; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = 0;
	free(names);
	return rc;
}

/* Parses a base64url segment (already checked by auth_jwt_split) as one
 * JSON object with distinct top-level member names, at most max of them,
 * followed by nothing but blanks (libjwt must not find more there).
 * Returns the tree, or NULL with *rc MALFORMED or INTERNAL. */
static cJSON *auth_jwt_parse_segment(const char *seg, size_t n, size_t max, int *rc)
{
	char buf[AUTH_JWT_TOKEN_MAX / 4 * 3 + 3];
	const char *end = NULL;
	size_t len = auth_jwt_b64url_decode(seg, n, (unsigned char *)buf);
	cJSON *obj;
	int unique;

	*rc = AUTH_JWT_MALFORMED;
	buf[len] = '\0';
	obj = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
	while (obj != NULL && end < buf + len &&
	       (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (!cJSON_IsObject(obj) || end != buf + len) {
		cJSON_Delete(obj);
		return NULL;
	}
	unique = auth_jwt_unique_members(obj, max);
	if (unique != 1) {
		if (unique < 0)
			*rc = AUTH_JWT_INTERNAL;
		cJSON_Delete(obj);
		return NULL;
	}
	*rc = AUTH_JWT_OK;
	return obj;
}

/* Judges the JOSE header before any cryptography, so that alg "none",
 * another algorithm or a critical extension get their own answer and never
 * cost a signature check. */
static int auth_jwt_check_header(const struct auth_jwt *a, const char *seg, size_t n)
{
	const cJSON *alg, *typ;
	cJSON *hdr;
	int rc;

	/* A JOSE header has a handful of members: more is not a header. */
	hdr = auth_jwt_parse_segment(seg, n, AUTH_JWT_HEADER_MEMBERS_MAX, &rc);
	if (hdr == NULL)
		return rc;
	alg = cJSON_GetObjectItemCaseSensitive(hdr, "alg");
	typ = cJSON_GetObjectItemCaseSensitive(hdr, "typ");
	if (!cJSON_IsString(alg))
		rc = AUTH_JWT_MALFORMED;
	else if (strcmp(alg->valuestring, a->alg->name) != 0)
		rc = AUTH_JWT_BAD_ALG;
	/* RFC 7515 4.1.11: an extension we must understand; we know none. */
	else if (cJSON_GetObjectItemCaseSensitive(hdr, "crit") != NULL)
		rc = AUTH_JWT_MALFORMED;
	/* libjwt 1.10.2 refuses any other typ (even RFC 9068 "at+jwt") with
	 * the same error as a bad signature: say what it really is. */
	else if (typ != NULL && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0))
		rc = AUTH_JWT_MALFORMED;
	cJSON_Delete(hdr);
	return rc;
}

/* RFC 7519 NumericDate: any JSON number, fractions allowed.  Returns 1 and
 * *v when present, 0 when absent, -1 when not a number. */
static int auth_jwt_numeric_date(const cJSON *claims, const char *name, double *v)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, name);

	if (item == NULL)
		return 0;
	if (!cJSON_IsNumber(item))
		return -1;
	*v = item->valuedouble;
	return 1;
}

/* Rounded up: a token with exp 10.5 is still valid at second 10. */
static time_t auth_jwt_exp_time(double exp)
{
	time_t t;

	if (exp >= (double)AUTH_JWT_EXP_MAX)
		return AUTH_JWT_EXP_MAX;
	if (exp <= 1.0)
		return 1;
	t = (time_t)exp;
	if ((double)t < exp)
		t++;
	return t;
}

static int auth_jwt_check_times(const struct auth_jwt *a, const cJSON *claims, time_t now,
				struct auth_jwt_identity *out)
{
	double nowd = (double)now, leeway = (double)a->leeway_s, exp, nbf, iat;
	int r;

	r = auth_jwt_numeric_date(claims, "exp", &exp);
	if (r < 0)
		return AUTH_JWT_MALFORMED;
	if (r == 0 && a->require_exp)
		return AUTH_JWT_MISSING_EXP;
	/* RFC 7519 4.1.4: now must be before exp.  Written so that a NaN,
	 * should one ever get here, counts as expired. */
	if (r > 0) {
		if (!(nowd < exp + leeway))
			return AUTH_JWT_EXPIRED;
		out->exp = auth_jwt_exp_time(exp);
	}
	r = auth_jwt_numeric_date(claims, "nbf", &nbf);
	if (r < 0)
		return AUTH_JWT_MALFORMED;
	/* RFC 7519 4.1.5: now must be at or after nbf. */
	if (r > 0 && !(nowd + leeway >= nbf))
		return AUTH_JWT_NOT_YET_VALID;
	/* iat only matters to a revocation of "every token issued before":
	 * an unusable one reads as absent (issued at the dawn of time). */
	if (auth_jwt_numeric_date(claims, "iat", &iat) > 0 && iat > 0 && iat < (double)AUTH_JWT_EXP_MAX)
		out->iat = (time_t)iat;
	return AUTH_JWT_OK;
}

static void auth_jwt_set_jti(const cJSON *claims, struct auth_jwt_identity *out)
{
	const cJSON *jti = cJSON_GetObjectItemCaseSensitive(claims, "jti");
	size_t n;

	if (!cJSON_IsString(jti))
		return;
	n = strlen(jti->valuestring);
	if (n == 0 || n > AUTH_JWT_JTI_MAX)
		return;
	memcpy(out->jti, jti->valuestring, n + 1);
}

/* RFC 7519 4.1.3: aud is one string, or an array of them. */
static bool auth_jwt_aud_ok(const cJSON *aud, const char *want)
{
	const cJSON *el;

	if (cJSON_IsString(aud))
		return strcmp(aud->valuestring, want) == 0;
	if (!cJSON_IsArray(aud))
		return false;
	cJSON_ArrayForEach(el, aud)
		if (cJSON_IsString(el) && strcmp(el->valuestring, want) == 0)
			return true;
	return false;
}

static int auth_jwt_check_iss_aud(const struct auth_jwt *a, const cJSON *claims)
{
	const cJSON *iss = cJSON_GetObjectItemCaseSensitive(claims, "iss");

	if (a->issuer != NULL && (!cJSON_IsString(iss) || strcmp(iss->valuestring, a->issuer) != 0))
		return AUTH_JWT_BAD_ISSUER;
	if (a->audience != NULL &&
	    !auth_jwt_aud_ok(cJSON_GetObjectItemCaseSensitive(claims, "aud"), a->audience))
		return AUTH_JWT_BAD_AUDIENCE;
	return AUTH_JWT_OK;
}

static int auth_jwt_set_user(struct auth_jwt_identity *out, const char *id, size_t len)
{
	if (!target_id_valid(id, len))
		return AUTH_JWT_BAD_USER;
	memcpy(out->user, id, len);
	out->user[len] = '\0';
	out->user_len = len;
	return AUTH_JWT_OK;
}

/* A numeric user claim follows the body's rule for user_id
 * (target_from_number): a user a token can name is one a notification can
 * reach, and the other way round. */
static int auth_jwt_check_user(const struct auth_jwt *a, const cJSON *claims,
			       struct auth_jwt_identity *out)
{
	const cJSON *item = cJSON_GetObjectItemCaseSensitive(claims, a->user_claim);

	if (item == NULL)
		return AUTH_JWT_NO_USER;
	if (cJSON_IsString(item))
		return auth_jwt_set_user(out, item->valuestring, strlen(item->valuestring));
	if (cJSON_IsNumber(item)) {
		struct target t;

		if (target_from_number(item->valuedouble, &t) != TARGET_OK)
			return AUTH_JWT_BAD_USER;
		return auth_jwt_set_user(out, t.id, t.id_len);
	}
	return AUTH_JWT_BAD_USER;
}

/* The payload segment as sent, for what jansson's parse no longer shows:
 * duplicate member names.  Only after the signature: an unsigned token
 * costs no parse.  Any number of members (the token's length bounds them). */
static int auth_jwt_check_payload_members(const char *seg, size_t n)
{
	cJSON *obj;
	int rc;

	obj = auth_jwt_parse_segment(seg, n, AUTH_JWT_TOKEN_MAX, &rc);
	cJSON_Delete(obj);
	return rc;
}

static int auth_jwt_check_claims(const struct auth_jwt *a, jwt_t *jwt, const char *payload,
				 size_t payload_len, time_t now, struct auth_jwt_identity *out)
{
	cJSON *claims;
	char *text;
	int rc;

	rc = auth_jwt_check_payload_members(payload, payload_len);
	if (rc != AUTH_JWT_OK)
		return rc;
	text = jwt_get_grants_json(jwt, NULL);
	if (text == NULL)
		return AUTH_JWT_INTERNAL;
	claims = cJSON_Parse(text);
	free(text);
	/* jansson accepts a top-level array, and nests deeper than cJSON. */
	if (!cJSON_IsObject(claims)) {
		cJSON_Delete(claims);
		return AUTH_JWT_MALFORMED;
	}
	rc = auth_jwt_check_times(a, claims, now, out);
	if (rc == AUTH_JWT_OK)
		rc = auth_jwt_check_iss_aud(a, claims);
	if (rc == AUTH_JWT_OK)
		rc = auth_jwt_check_user(a, claims, out);
	if (rc == AUTH_JWT_OK)
		auth_jwt_set_jti(claims, out);
	cJSON_Delete(claims);
	return rc;
}

/* libjwt's own reading of the header (jansson) names alg exactly so. */
static bool auth_jwt_header_alg_is(jwt_t *jwt, const char *name)
{
	const char *alg = jwt_get_header(jwt, "alg");

	return alg != NULL && strcmp(alg, name) == 0;
}

/* Unpadded base64url of n bytes into out ((n + 2) / 3 * 4 + 1 bytes);
 * returns the length.  The same text libjwt compares against (RFC 7515 2). */
static size_t auth_jwt_b64url_encode(const unsigned char *in, size_t n, char *out)
{
	int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	size_t o = len > 0 ? (size_t)len : 0;

	while (o > 0 && out[o - 1] == '=')
		o--;
	for (size_t i = 0; i < o; i++)
		if (out[i] == '+')
			out[i] = '-';
		else if (out[i] == '/')
			out[i] = '_';
	return o;
}

/* The signature of token[0..signed_len) ("header.payload") against its
 * third segment sig[0..sig_len), compared as libjwt does, as base64url
 * text, and in constant time (CVE-2024-25189). */
static int auth_jwt_hmac_check(const struct auth_jwt *a, const char *token, size_t signed_len,
			       const char *sig, size_t sig_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	char want[(EVP_MAX_MD_SIZE + 2) / 3 * 4 + 1];
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(a->hmac);
	size_t n = 0, wlen;
	int rc = AUTH_JWT_OK;

	if (ctx == NULL ||
	    EVP_MAC_update(ctx, (const unsigned char *)token, signed_len) != 1 ||
	    EVP_MAC_final(ctx, mac, &n, sizeof(mac)) != 1)
		rc = AUTH_JWT_INTERNAL;
	EVP_MAC_CTX_free(ctx);
	if (rc != AUTH_JWT_OK) {
		ERR_clear_error();
		return rc;
	}
	wlen = auth_jwt_b64url_encode(mac, n, want);
	/* The length is the algorithm's, no secret. */
	if (wlen != sig_len || CRYPTO_memcmp(want, sig, wlen) != 0)
		rc = AUTH_JWT_BAD_SIGNATURE;
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

static int auth_jwt_verify_inner(const struct auth_jwt *a, const char *token, size_t len,
				 time_t now, struct auth_jwt_identity *out)
{
	char buf[AUTH_JWT_TOKEN_MAX + 1];
	jwt_t *jwt = NULL;
	size_t dot[2];
	int rc;

	if (a == NULL || token == NULL || len == 0 || len > AUTH_JWT_TOKEN_MAX)
		return AUTH_JWT_MALFORMED;
	if (auth_jwt_split(token, len, dot) != 0)
		return AUTH_JWT_MALFORMED;
	rc = auth_jwt_check_header(a, token, dot[0]);
	if (rc != AUTH_JWT_OK)
		return rc;

	/* HMAC: the signature is checked here, with the configured hash and
	 * key whatever the token says, before libjwt parses anything. */
	if (a->hmac != NULL) {
		rc = auth_jwt_hmac_check(a, token, dot[1], token + dot[1] + 1, len - dot[1] - 1);
		if (rc != AUTH_JWT_OK)
			return rc;
	}
	memcpy(buf, token, len);
	buf[len] = '\0';
	/* RSA, EC: key_len is never 0 here (auth_jwt_new saw to it): libjwt
	 * would take that as "no key" and skip the signature.  HMAC: exactly
	 * that, on purpose; it was checked above, so libjwt only parses (and
	 * then reports alg "none": its header's alg is compared instead). */
	if (a->hmac != NULL)
		rc = jwt_decode(&jwt, buf, NULL, 0);
	else
		rc = jwt_decode(&jwt, buf, a->key, (int)a->key_len);
	/* A failed RSA or EC check leaves errors in this thread's OpenSSL
	 * queue, where the next SSL_get_error() on this thread would find
	 * them and misjudge an unrelated TLS connection. */
	ERR_clear_error();
	if (rc != 0 || jwt == NULL) {
		jwt_free(jwt);
		return rc == ENOMEM ? AUTH_JWT_INTERNAL : AUTH_JWT_BAD_SIGNATURE;
	}
	if (a->hmac != NULL ? !auth_jwt_header_alg_is(jwt, a->alg->name) : jwt_get_alg(jwt) != a->alg->id)
		rc = AUTH_JWT_BAD_ALG;
	else
		rc = auth_jwt_check_claims(a, jwt, token + dot[0] + 1, dot[1] - dot[0] - 1, now, out);
	jwt_free(jwt);
	return rc;
}

int auth_jwt_verify(const struct auth_jwt *a, const char *token, size_t len, time_t now,
		    struct auth_jwt_identity *out, const char **why)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = auth_jwt_verify_inner(a, token, len, now, out);
	if (rc != AUTH_JWT_OK)
		memset(out, 0, sizeof(*out));
	if (why != NULL)
		*why = auth_jwt_strerror(rc);
	return rc;
}

/* ---- Sec-WebSocket-Protocol ------------------------------------------ */

const char *auth_jwt_from_subprotocol(const char *header, char *chosen, size_t chosen_len,
				      char *token, size_t token_len)
{
	static const char v1[] = AUTH_JWT_SUBPROTOCOL, v2[] = AUTH_JWT_SUBPROTOCOL_V2;
	static const char prefix[] = AUTH_JWT_BEARER_PREFIX;
	const char *p = header, *bearer = NULL, *item, *proto = NULL;
	size_t bearer_len = 0, nbearer = 0, n;
	bool offered = false;

	if (chosen != NULL && chosen_len > 0)
		chosen[0] = '\0';
	if (token != NULL && token_len > 0)
		token[0] = '\0';
	while (text_list_next(&p, &item, &n)) {
		if (n == sizeof(v2) - 1 && memcmp(item, v2, n) == 0) {
			offered = true;
			proto = v2;	/* the richer one wins, wherever it is listed */
		} else if (n == sizeof(v1) - 1 && memcmp(item, v1, n) == 0) {
			offered = true;
			if (proto == NULL)
				proto = v1;
		} else if (n >= sizeof(prefix) - 1 && memcmp(item, prefix, sizeof(prefix) - 1) == 0) {
			nbearer++;
			bearer = item + sizeof(prefix) - 1;
			bearer_len = n - (sizeof(prefix) - 1);
		}
	}
	if (offered && chosen != NULL && chosen_len > strlen(proto))
		memcpy(chosen, proto, strlen(proto) + 1);
	if (nbearer == 0)
		return NULL;
	if (nbearer > 1)
		return "several bearer subprotocols";
	if (bearer_len == 0)
		return "empty bearer token";
	if (!offered)
		return "bearer subprotocol without " AUTH_JWT_SUBPROTOCOL " or " AUTH_JWT_SUBPROTOCOL_V2;
	if (chosen == NULL || chosen_len <= strlen(proto))
		return "internal error";
	if (token == NULL || bearer_len >= token_len)
		return "token too long";
	memcpy(token, bearer, bearer_len);
	token[bearer_len] = '\0';
	return NULL;
}
