/* test_target.c - routing rules: routing key first, then the body. */
#include "autoconfig.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "target.h"
#include "tap.h"

#define KEY(lit) (lit), sizeof(lit) - 1

static void test_id_valid(void)
{
	char max[TARGET_ID_MAX + 2];

	memset(max, 'u', sizeof(max));
	ok(target_id_valid("123", 3), "id \"123\" valid");
	ok(target_id_valid("a", 1), "1-byte id valid");
	ok(target_id_valid(max, TARGET_ID_MAX), "id of %d bytes valid", TARGET_ID_MAX);
	ok(!target_id_valid(max, TARGET_ID_MAX + 1), "id of %d bytes invalid", TARGET_ID_MAX + 1);
	ok(!target_id_valid("", 0), "empty id invalid");
	ok(!target_id_valid(NULL, 0), "NULL id invalid");
	ok(target_id_valid("j\xC3\xBCrgen", 7), "UTF-8 id valid");
	ok(target_id_valid("\xF0\x9F\x98\x80", 4), "4-byte code point id valid");
	ok(!target_id_valid("\xC3", 1), "truncated UTF-8 id invalid");
	ok(!target_id_valid("a\xC0\x80", 3), "overlong NUL in id invalid");
	ok(!target_id_valid("a\xED\xA0\x80", 4), "surrogate in id invalid");
	ok(!target_id_valid("a\0b", 3), "NUL byte in id invalid");
	ok(!target_id_valid("a\nb", 3), "newline in id invalid");
	ok(!target_id_valid("a\tb", 3), "tab in id invalid");
	ok(!target_id_valid("\x1f", 1), "0x1F in id invalid");
	ok(!target_id_valid("a\x7f", 2), "DEL in id invalid");
	/* C1 controls (U+0080..U+009F) and the line/paragraph separators end
	 * a line for some log readers and JavaScript parsers. */
	{
		static const struct { const char *id; int valid; const char *what; } c1[] = {
			{ "a\xC2\x80", 0, "U+0080 (first C1)" },
			{ "a\xC2\x85" "b", 0, "U+0085 NEL" },
			{ "\xC2\x9F", 0, "U+009F (last C1)" },
			{ "a\xE2\x80\xA8" "b", 0, "U+2028 LINE SEPARATOR" },
			{ "a\xE2\x80\xA9", 0, "U+2029 PARAGRAPH SEPARATOR" },
			{ "\xC2\xA0", 1, "U+00A0 (after C1)" },
			{ "\xC2\x7F", 0, "0xC2 before DEL (not UTF-8)" },
			{ "\xE2\x80\xA7", 1, "U+2027 (before U+2028)" },
			{ "\xE2\x80\xAA", 1, "U+202A (after U+2029)" },
			{ "\xE2\x80", 0, "U+2028 cut short (not UTF-8)" },
			{ "\xC3\x85", 1, "U+00C5 (second byte like NEL's, other lead)" },
		};

		for (size_t i = 0; i < sizeof(c1) / sizeof(c1[0]); i++)
			ok(target_id_valid(c1[i].id, strlen(c1[i].id)) == c1[i].valid, "%s in id %s", c1[i].what,
			   c1[i].valid ? "valid" : "invalid");
	}
	ok(target_id_valid(" a b ", 5), "spaces in id valid (not control characters)");
	ok(target_id_valid("a.b", 3), "dot in id valid");
	{
		char cut[TARGET_ID_MAX + 1];

		/* 127 bytes then a 2-byte character: 129 bytes is too long even
		 * though it is 128 code points at most. */
		memset(cut, 'u', 127);
		memcpy(cut + 127, "\xC3\xBC", 2);
		ok(!target_id_valid(cut, 129), "129-byte id with a trailing 2-byte char invalid");
		ok(target_id_valid(cut + 1, 128), "128-byte id ending in a 2-byte char valid");
	}
}

static void test_routing_key(void)
{
	struct target t;
	char longkey[5 + TARGET_ID_MAX + 1];

	memset(&t, 0x55, sizeof(t));
	ok(target_from_routing_key(KEY("user.123"), &t) == TARGET_OK && t.kind == TARGET_USER &&
	   t.id_len == 3 && strcmp(t.id, "123") == 0, "routing key user.123 -> user \"123\"");
	ok(target_from_routing_key(KEY("broadcast"), &t) == TARGET_OK &&
	   t.kind == TARGET_BROADCAST, "routing key broadcast -> broadcast");
	ok(target_from_routing_key(KEY("orders.new"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "other routing key -> look at the body");
	ok(target_from_routing_key(KEY(""), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "empty routing key (default exchange) -> look at the body");
	ok(target_from_routing_key(KEY("user"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "routing key \"user\" -> look at the body");
	ok(target_from_routing_key(KEY("user."), &t) == TARGET_BAD_ID && t.kind == TARGET_NONE,
	   "routing key \"user.\" (empty id) -> TARGET_BAD_ID");
	ok(target_from_routing_key(KEY("user.a\x01"), &t) == TARGET_BAD_ID,
	   "routing key with a control char in the id -> TARGET_BAD_ID");
	ok(target_from_routing_key(KEY("user.\xFF"), &t) == TARGET_BAD_ID,
	   "routing key with invalid UTF-8 in the id -> TARGET_BAD_ID");
	ok(target_from_routing_key(KEY("user.a\xC2\x85"), &t) == TARGET_BAD_ID,
	   "routing key with NEL (C1) in the id -> TARGET_BAD_ID");
	ok(target_from_routing_key(KEY("user.a\xE2\x80\xA8"), &t) == TARGET_BAD_ID,
	   "routing key with U+2028 in the id -> TARGET_BAD_ID");
	ok(target_from_routing_key(KEY("broadcasts"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "\"broadcasts\" is not broadcast");
	ok(target_from_routing_key(KEY("broadcast.x"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "\"broadcast.x\" is not broadcast");
	ok(target_from_routing_key(KEY("Broadcast"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "routing keys are case-sensitive (\"Broadcast\")");
	ok(target_from_routing_key(KEY("USER.1"), &t) == TARGET_OK && t.kind == TARGET_NONE,
	   "routing keys are case-sensitive (\"USER.1\")");
	ok(target_from_routing_key(KEY("user.a.b"), &t) == TARGET_OK && t.kind == TARGET_USER &&
	   strcmp(t.id, "a.b") == 0, "user.a.b -> user \"a.b\" (the id is all after \"user.\")");
	ok(target_from_routing_key("user.42xyz", 7, &t) == TARGET_OK && t.id_len == 2 &&
	   strcmp(t.id, "42") == 0, "the key length is honoured (not NUL-terminated)");
	ok(target_from_routing_key("broadcastX", 9, &t) == TARGET_OK &&
	   t.kind == TARGET_BROADCAST, "broadcast with a length shorter than the buffer");

	memcpy(longkey, "user.", 5);
	memset(longkey + 5, '9', TARGET_ID_MAX + 1);
	ok(target_from_routing_key(longkey, 5 + TARGET_ID_MAX, &t) == TARGET_OK &&
	   t.kind == TARGET_USER && t.id_len == TARGET_ID_MAX && t.id[TARGET_ID_MAX] == '\0',
	   "user.<128 bytes> accepted and NUL-terminated");
	ok(target_from_routing_key(longkey, 5 + TARGET_ID_MAX + 1, &t) == TARGET_BAD_ID,
	   "user.<129 bytes> -> TARGET_BAD_ID");
}

/* Parses json, runs target_from_body and checks the result; want_id NULL
 * for a result that is not a user. */
static void body(const char *json, int want_err, enum target_kind want_kind,
		 const char *want_id)
{
	cJSON *obj = cJSON_Parse(json);
	struct target t;
	int err;

	if (obj == NULL) {
		ok(0, "body %s: test JSON does not parse", json);
		return;
	}
	memset(&t, 0x55, sizeof(t));
	err = target_from_body(obj, &t);
	ok(err == want_err && t.kind == want_kind &&
	   (want_id == NULL || (t.id_len == strlen(want_id) && strcmp(t.id, want_id) == 0)),
	   "body %s -> %s%s%s (got %s, kind %d, id \"%s\")", json, target_strerror(want_err),
	   want_id ? " user " : "", want_id ? want_id : "", target_strerror(err), (int)t.kind,
	   t.kind == TARGET_USER ? t.id : "");
	cJSON_Delete(obj);
}

static void test_body(void)
{
	body("{\"user_id\":\"123\",\"title\":\"Hi\"}", TARGET_OK, TARGET_USER, "123");
	body("{\"broadcast\":true,\"message\":\"x\"}", TARGET_OK, TARGET_BROADCAST, NULL);
	body("{\"user_id\":\"u\",\"broadcast\":true}", TARGET_OK, TARGET_USER, "u");
	body("{\"broadcast\":true,\"user_id\":\"u\"}", TARGET_OK, TARGET_USER, "u");
	body("{\"user_id\":\"u\",\"broadcast\":\"yes\"}", TARGET_OK, TARGET_USER, "u");
	body("{\"message\":\"x\"}", TARGET_MISSING, TARGET_NONE, NULL);
	body("{}", TARGET_MISSING, TARGET_NONE, NULL);
	body("{\"broadcast\":false}", TARGET_MISSING, TARGET_NONE, NULL);
	body("{\"broadcast\":1}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"broadcast\":\"true\"}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"broadcast\":null}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"User_Id\":\"1\"}", TARGET_MISSING, TARGET_NONE, NULL);
	body("{\"Broadcast\":true}", TARGET_MISSING, TARGET_NONE, NULL);

	/* Strings */
	body("{\"user_id\":\"\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"a\\nb\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"a\\u007fb\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"a\\u0085b\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"a\\u2028b\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"a\\u2029\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"\\u00fc\"}", TARGET_OK, TARGET_USER, "\xC3\xBC");
	body("{\"user_id\":\"\xFF\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"\xED\xA0\x80\"}", TARGET_BAD_ID, TARGET_NONE, NULL);
	body("{\"user_id\":\"" "0123456789012345678901234567890123456789"
	     "0123456789012345678901234567890123456789"
	     "0123456789012345678901234567890123456789" "01234567" "\"}",
	     TARGET_OK, TARGET_USER, NULL);
	body("{\"user_id\":\"" "0123456789012345678901234567890123456789"
	     "0123456789012345678901234567890123456789"
	     "0123456789012345678901234567890123456789" "012345678" "\"}",
	     TARGET_BAD_ID, TARGET_NONE, NULL);

	/* Integers, in [-(2^53 - 1), 2^53 - 1], rewritten in plain decimal;
	 * beyond, a double cannot tell 2^53 + 1 from 2^53: refused */
	body("{\"user_id\":123}", TARGET_OK, TARGET_USER, "123");
	body("{\"user_id\":0}", TARGET_OK, TARGET_USER, "0");
	body("{\"user_id\":-0}", TARGET_OK, TARGET_USER, "0");
	body("{\"user_id\":-42}", TARGET_OK, TARGET_USER, "-42");
	body("{\"user_id\":9007199254740992}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":9007199254740993}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":-9007199254740992}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":-9007199254740991}", TARGET_OK, TARGET_USER, "-9007199254740991");
	body("{\"user_id\":9007199254740991}", TARGET_OK, TARGET_USER, "9007199254740991");
	body("{\"user_id\":18014398509481984}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":-18014398509481984}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":1e300}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":1e400}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":3.5}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":-0.5}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":1e-3}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	/* cJSON keeps no number text: an integral value is accepted however
	 * it was written (the decision documented in target.c). */
	body("{\"user_id\":1e3}", TARGET_OK, TARGET_USER, "1000");
	body("{\"user_id\":1000.0}", TARGET_OK, TARGET_USER, "1000");

	/* Wrong types */
	body("{\"user_id\":null}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":null,\"broadcast\":true}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":true}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":[\"1\"]}", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("{\"user_id\":{\"id\":1}}", TARGET_BAD_FIELD, TARGET_NONE, NULL);

	/* Not an object */
	body("[{\"user_id\":\"1\"}]", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("\"user_id\"", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	body("42", TARGET_BAD_FIELD, TARGET_NONE, NULL);
	{
		struct target t;

		ok(target_from_body(NULL, &t) == TARGET_BAD_FIELD && t.kind == TARGET_NONE,
		   "body NULL -> bad field");
	}
}

static void test_strerror(void)
{
	const int errs[] = { TARGET_OK, TARGET_BAD_ID, TARGET_MISSING, TARGET_BAD_FIELD };
	int distinct = 1;

	for (size_t i = 0; i < 4; i++)
		for (size_t j = i + 1; j < 4; j++)
			if (strcmp(target_strerror(errs[i]), target_strerror(errs[j])) == 0)
				distinct = 0;
	ok(distinct, "target_strerror names each error differently");
	ok(target_strerror(-99) != NULL && target_strerror(-99)[0] != '\0',
	   "target_strerror of an unknown value is still a name");
	{
		int label_safe = 1;

		for (size_t i = 0; i < 4; i++)
			for (const char *p = target_strerror(errs[i]); *p; p++)
				if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
					label_safe = 0;
		ok(label_safe, "target_strerror names are safe metric label values");
	}
}

static int raw_control(const char *s)
{
	return target_json_has_raw_control(s, strlen(s));
}

static void test_raw_control(void)
{
	ok(raw_control("{\"a\":\"x\ny\"}"), "raw newline inside a string");
	ok(raw_control("{\"a\":\"x\001y\"}"), "raw 0x01 inside a string");
	ok(!raw_control("{\n\t\"a\" : \"x\"\r\n}"), "whitespace between tokens is fine");
	ok(!raw_control("{\"a\":\"x\\ny\\\"z\"}"), "escaped newline and quote are fine");
	ok(!raw_control("\"ends with a backslash\\"), "a trailing backslash reads nothing past the end");
}

static int parse_err(const char *text, size_t len)
{
	int err = 12345;
	cJSON *root = target_parse_json(text, len, &err);

	cJSON_Delete(root);
	return root != NULL ? (err == TARGET_OK ? 1 : -100) : err;
}

static void test_parse_json(void)
{
	ok(parse_err(KEY("{\"a\":1}")) == 1, "an object parses");
	ok(parse_err(KEY("[1,2] \r\n\t ")) == 1, "white space after the value is fine");
	ok(parse_err(KEY("\"s\"")) == 1, "a string parses (the caller wants an object)");
	ok(parse_err("", 0) == TARGET_NOT_JSON, "empty: not JSON");
	ok(parse_err(KEY("   ")) == TARGET_NOT_JSON, "only white space: not JSON");
	ok(parse_err(KEY("{\"a\":1} x")) == TARGET_NOT_JSON, "trailing garbage: not JSON");
	ok(parse_err(KEY("{\"a\":1}{}")) == TARGET_NOT_JSON, "two values: not JSON");
	ok(parse_err(KEY("{\"a\":1")) == TARGET_NOT_JSON, "truncated: not JSON");
	ok(parse_err(KEY("{\"a\":\"x\ny\"}")) == TARGET_NOT_JSON, "raw newline in a string: not JSON");
	ok(parse_err(KEY("{\"a\":\"\xff\"}")) == TARGET_NOT_UTF8, "0xFF: not UTF-8");
	ok(parse_err(KEY("{\"a\":\"\xC0\x80\"}")) == TARGET_NOT_UTF8, "overlong NUL: not UTF-8");
	ok(parse_err(KEY("{\"a\":\"\\u0000\"}")) == 1, "escaped NUL parses (the caller decides)");
	ok(parse_err("{\"a\":1}\0", 8) == TARGET_NOT_JSON, "a NUL byte after the value: not JSON");
}

int main(void)
{
	test_raw_control();
	test_parse_json();
	test_id_valid();
	test_routing_key();
	test_body();
	test_strerror();
	return done_testing();
}
