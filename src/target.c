/* target.c - who a notification is for, from its routing key or its body.
 *
 * cJSON keeps only the double value of a number, not its text, so an
 * integer user_id is judged by value: any number that is integral and
 * within +-(2^53 - 1) is accepted and rewritten in plain decimal ("1e3" and
 * "1000.0" both name user "1000", "-0" names "0").  Fractions, values out
 * of range and non-numbers are the wrong type (TARGET_BAD_FIELD); only a
 * string can break the id rules (TARGET_BAD_ID).
 */
#include "autoconfig.h"

#include "target.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "utf8.h"

/* Largest magnitude where every integer is a double, per the contract. */
#define TARGET_INT_LIMIT 9007199254740991.0	/* 2^53 - 1: every integer up to it is exact in a double */

/* In valid UTF-8, 0xC2 and 0xE2 only ever lead a sequence, so the C1
 * controls (U+0080..U+009F: C2 80..C2 9F) and the line and paragraph
 * separators (U+2028, U+2029: E2 80 A8, E2 80 A9) are found bytewise.
 * Both end a line for some log readers and JavaScript parsers. */
int target_id_valid(const char *id, size_t len)
{
	const unsigned char *p = (const unsigned char *)id;

	if (id == NULL || len == 0 || len > TARGET_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7f)
			return 0;
		if (p[i] == 0xC2 && i + 1 < len && p[i + 1] <= 0x9F)
			return 0;
		if (p[i] == 0xE2 && i + 2 < len && p[i + 1] == 0x80 && (p[i + 2] == 0xA8 || p[i + 2] == 0xA9))
			return 0;
	}
	return utf8_valid(p, len);
}

static void target_reset(struct target *t)
{
	t->kind = TARGET_NONE;
	t->id_len = 0;
	t->id[0] = '\0';
}

static int target_set_user(struct target *t, const char *id, size_t len)
{
	if (!target_id_valid(id, len))
		return TARGET_BAD_ID;
	memcpy(t->id, id, len);
	t->id[len] = '\0';
	t->id_len = len;
	t->kind = TARGET_USER;
	return TARGET_OK;
}

int target_from_routing_key(const char *key, size_t len, struct target *t)
{
	static const char user_prefix[] = "user.";
	static const char broadcast[] = "broadcast";

	target_reset(t);
	if (len == sizeof(broadcast) - 1 && memcmp(key, broadcast, len) == 0) {
		t->kind = TARGET_BROADCAST;
		return TARGET_OK;
	}
	if (len >= sizeof(user_prefix) - 1 &&
	    memcmp(key, user_prefix, sizeof(user_prefix) - 1) == 0)
		return target_set_user(t, key + sizeof(user_prefix) - 1,
				       len - (sizeof(user_prefix) - 1));
	return TARGET_OK;
}

int target_from_number(double v, struct target *t)
{
	char buf[32];
	int64_t n;
	int len;

	/* Written so that NaN fails too. */
	if (!(v >= -TARGET_INT_LIMIT && v <= TARGET_INT_LIMIT))
		return TARGET_BAD_FIELD;
	n = (int64_t)v;
	if ((double)n != v)
		return TARGET_BAD_FIELD;
	len = snprintf(buf, sizeof(buf), "%" PRId64, n);
	if (len <= 0 || (size_t)len >= sizeof(buf))
		return TARGET_BAD_FIELD;
	return target_set_user(t, buf, (size_t)len);
}

int target_from_body(const struct cJSON *obj, struct target *t)
{
	const cJSON *uid, *bc;

	target_reset(t);
	if (obj == NULL || !cJSON_IsObject(obj))
		return TARGET_BAD_FIELD;
	uid = cJSON_GetObjectItemCaseSensitive(obj, "user_id");
	if (uid != NULL) {
		if (cJSON_IsString(uid) && uid->valuestring != NULL)
			return target_set_user(t, uid->valuestring, strlen(uid->valuestring));
		if (cJSON_IsNumber(uid))
			return target_from_number(uid->valuedouble, t);
		return TARGET_BAD_FIELD;
	}
	bc = cJSON_GetObjectItemCaseSensitive(obj, "broadcast");
	if (bc == NULL || cJSON_IsFalse(bc))
		return TARGET_MISSING;
	if (!cJSON_IsTrue(bc))
		return TARGET_BAD_FIELD;
	t->kind = TARGET_BROADCAST;
	return TARGET_OK;
}

const char *target_strerror(int err)
{
	switch (err) {
	case TARGET_OK:
		return "ok";
	case TARGET_BAD_ID:
		return "bad_user_id";
	case TARGET_MISSING:
		return "no_target";
	case TARGET_BAD_FIELD:
		return "bad_target_field";
	case TARGET_NOT_UTF8:
		return "invalid_utf8";
	case TARGET_NOT_JSON:
		return "not_json";
	default:
		return "unknown_target_error";
	}
}

int target_has_escaped_nul(const char *json, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++)
		if (json[i] == '\\' && json[i + 1] == 'u' && json[i + 2] == '0' &&
		    json[i + 3] == '0' && json[i + 4] == '0' && json[i + 5] == '0')
			return 1;
	return 0;
}

int target_json_has_raw_control(const char *json, size_t len)
{
	int in_string = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)json[i];

		if (!in_string) {
			if (c == '"')
				in_string = 1;
			continue;
		}
		if (c == '\\')
			i++;		/* the escaped character, whatever it is */
		else if (c == '"')
			in_string = 0;
		else if (c < 0x20)
			return 1;
	}
	return 0;
}

static int target_only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
			return 0;
	return 1;
}

cJSON *target_parse_json(const char *text, size_t len, int *err)
{
	const char *end = NULL;
	cJSON *root;

	*err = TARGET_NOT_JSON;
	if (len == 0)
		return NULL;
	if (!utf8_valid((const uint8_t *)text, len)) {
		*err = TARGET_NOT_UTF8;
		return NULL;
	}
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (root == NULL || end == NULL || !target_only_space(end, text + len) ||
	    target_json_has_raw_control(text, len)) {
		cJSON_Delete(root);
		return NULL;
	}
	*err = TARGET_OK;
	return root;
}
