/* fuzz_target.c - libFuzzer target for the notification routing rules.
 *
 * Each input is used as:
 *   1. a routing key (an exact-size heap copy, not NUL-terminated);
 *   2. a JSON body, parsed with cJSON_ParseWithLength from an exact-size
 *      copy, and scanned by target_has_escaped_nul;
 *   3. the inside of three bodies built around it, {"user_id":"INPUT"},
 *      {"user_id":INPUT} and {"broadcast":INPUT}, which random bytes reach
 *      far more often than a whole valid object.
 * Results are compared with a reference written here from target.h's
 * contract (no C0, DEL, C1, U+2028 or U+2029 in an id), with its own UTF-8
 * decoder, and every TARGET_USER result must
 * hold a valid id of 1..TARGET_ID_MAX bytes, NUL-terminated at id_len.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_target.c src/target.c src/utf8.c $(pkg-config --cflags --libs libcjson)
 * Run:   ./fuzz_target -max_len=4096 fuzz/corpus/target  (or scripts/fuzz target)
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reference ---------------------------------------------------------- */

/* RFC 3629 by decoding: each sequence must be complete, not overlong, not a
 * surrogate and not above U+10FFFF. */
static bool ref_utf8(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint32_t cp, min;
		size_t len;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xE0) == 0xC0) {
			len = 2;
			cp = s[i] & 0x1F;
			min = 0x80;
		} else if ((s[i] & 0xF0) == 0xE0) {
			len = 3;
			cp = s[i] & 0x0F;
			min = 0x800;
		} else if ((s[i] & 0xF8) == 0xF0) {
			len = 4;
			cp = s[i] & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += len;
	}
	return true;
}

static bool ref_id_valid(const char *id, size_t len)
{
	if (len == 0 || len > TARGET_ID_MAX)
		return false;
	const uint8_t *u = (const uint8_t *)id;

	for (size_t i = 0; i < len; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f)
			return false;
		/* C1 controls U+0080..U+009F are C2 80..C2 9F; U+2028/U+2029
		 * are E2 80 A8/A9. */
		if (u[i] == 0xC2 && i + 1 < len && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
			return false;
		if (u[i] == 0xE2 && i + 2 < len && u[i + 1] == 0x80 && (u[i + 2] == 0xA8 || u[i + 2] == 0xA9))
			return false;
	}
	return ref_utf8(u, len);
}

/* What a result must be: kind, rc and, for a user, the id. */
struct expect {
	enum target_kind kind;
	int rc;
	const char *id;
	size_t id_len;
	char buf[32];
};

static void expect_user(struct expect *x, const char *id, size_t len)
{
	if (ref_id_valid(id, len)) {
		x->kind = TARGET_USER;
		x->rc = TARGET_OK;
		x->id = id;
		x->id_len = len;
	} else {
		x->kind = TARGET_NONE;
		x->rc = TARGET_BAD_ID;
	}
}

static void ref_routing_key(const char *key, size_t len, struct expect *x)
{
	memset(x, 0, sizeof(*x));
	if (len == 9 && memcmp(key, "broadcast", 9) == 0)
		x->kind = TARGET_BROADCAST;
	else if (len >= 5 && memcmp(key, "user.", 5) == 0)
		expect_user(x, key + 5, len - 5);
}

static void ref_body(const cJSON *obj, struct expect *x)
{
	const cJSON *uid, *bc;

	memset(x, 0, sizeof(*x));
	x->rc = TARGET_BAD_FIELD;
	if (!cJSON_IsObject(obj))
		return;
	uid = cJSON_GetObjectItemCaseSensitive(obj, "user_id");
	if (uid != NULL) {
		if (cJSON_IsString(uid)) {
			expect_user(x, uid->valuestring, strlen(uid->valuestring));
		} else if (cJSON_IsNumber(uid)) {
			double v = uid->valuedouble;

			/* an integer within +-(2^53 - 1), named in plain decimal */
			if (v >= -9007199254740991.0 && v <= 9007199254740991.0 &&
			    (double)(int64_t)v == v) {
				snprintf(x->buf, sizeof(x->buf), "%" PRId64, (int64_t)v);
				expect_user(x, x->buf, strlen(x->buf));
			}
		}
		return;
	}
	bc = cJSON_GetObjectItemCaseSensitive(obj, "broadcast");
	if (bc == NULL || cJSON_IsFalse(bc)) {
		x->rc = TARGET_MISSING;
	} else if (cJSON_IsTrue(bc)) {
		x->rc = TARGET_OK;
		x->kind = TARGET_BROADCAST;
	}
}

static bool ref_escaped_nul(const char *s, size_t n)
{
	for (size_t i = 0; i + 6 <= n; i++)
		if (memcmp(s + i, "\\u0000", 6) == 0)
			return true;
	return false;
}

/* ---- checks ------------------------------------------------------------- */

static void check(const struct target *t, int rc, const struct expect *x)
{
	const char *name = target_strerror(rc);

	if (name == NULL || strcmp(name, "unknown_target_error") == 0)
		abort();
	if (rc != x->rc || t->kind != x->kind)
		abort();
	if (t->kind == TARGET_USER) {
		if (t->id_len < 1 || t->id_len > TARGET_ID_MAX || t->id[t->id_len] != '\0' ||
		    !target_id_valid(t->id, t->id_len))
			abort();
		if (t->id_len != x->id_len || memcmp(t->id, x->id, x->id_len) != 0)
			abort();
	}
	if (rc != TARGET_OK && t->kind != TARGET_NONE)
		abort();
}

static void fuzz_body(const char *json, size_t len)
{
	/* exact size, so ASan sees cJSON or the scan read past the end */
	char *copy = malloc(len ? len : 1);
	struct target t;
	struct expect x;
	cJSON *obj;

	if (copy == NULL)
		abort();
	memcpy(copy, json, len);
	if (target_has_escaped_nul(copy, len) != ref_escaped_nul(copy, len))
		abort();
	obj = cJSON_ParseWithLength(copy, len);
	if (obj != NULL) {
		int rc = target_from_body(obj, &t);

		ref_body(obj, &x);
		check(&t, rc, &x);
		cJSON_Delete(obj);
	}
	free(copy);
}

/* prefix + input + suffix as one body */
static void fuzz_wrapped(const char *pre, const uint8_t *data, size_t size, const char *post)
{
	size_t a = strlen(pre), b = strlen(post);
	char *body = malloc(a + size + b);

	if (body == NULL)
		abort();
	memcpy(body, pre, a);
	memcpy(body + a, data, size);
	memcpy(body + a + size, post, b);
	fuzz_body(body, a + size + b);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *key = malloc(size ? size : 1);
	struct target t;
	struct expect x;
	int rc;

	if (key == NULL)
		abort();
	memcpy(key, data, size);
	rc = target_from_routing_key(key, size, &t);
	ref_routing_key(key, size, &x);
	check(&t, rc, &x);
	free(key);

	fuzz_body((const char *)data, size);
	fuzz_wrapped("{\"user_id\":\"", data, size, "\"}");
	fuzz_wrapped("{\"user_id\":", data, size, "}");
	fuzz_wrapped("{\"broadcast\":", data, size, "}");
	return 0;
}
