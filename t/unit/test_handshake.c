/* test_handshake.c - RFC 6455 section 4.2 opening handshake, server side. */
#include "autoconfig.h"

#include <string.h>

#include "ws_handshake.h"
#include "tap.h"

#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="

static struct ws_upgrade_request good_request(void)
{
	struct ws_upgrade_request rq = {
		.is_get = true,
		.http_major = 1,
		.http_minor = 1,
		.upgrade = "websocket",
		.connection = "Upgrade",
		.key = RFC_KEY,
		.version = "13",
	};

	return rq;
}

static void check(const char *name, const struct ws_upgrade_request *rq, int want)
{
	const char *why = "untouched";
	int got = ws_handshake_check(rq, &why);

	ok(got == want && (want == 0 ? why == NULL : why != NULL && why[0] != '\0'),
	   "handshake_%s -> %d (got %d: %s)", name, want, got, why ? why : "-");
}

static void test_accept(void)
{
	static const struct { const char *key, *accept; } cases[] = {
		{ RFC_KEY, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" },	/* RFC 6455 1.3 */
		{ "x3JJHMbDL1EzLkh9GBhXDw==", "HSmrc0sMlYUkAGmm5OPpG2HaGWk=" },
		{ "AAAAAAAAAAAAAAAAAAAAAA==", "ICX+Yqv66kxgM0FcWaLWlFLwTAI=" },
	};
	char out[WS_ACCEPT_LEN + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 'X', sizeof(out));
		ok(ws_handshake_accept(cases[i].key, out) == 0 &&
		   strlen(out) == WS_ACCEPT_LEN && strcmp(out, cases[i].accept) == 0,
		   "accept(\"%s\") = \"%s\"", cases[i].key, cases[i].accept);
	}
	ok(ws_handshake_accept(NULL, out) == -1, "accept(NULL) fails");
	ok(ws_handshake_accept(" " RFC_KEY "\t", out) == 0 &&
	   strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
	   "accept ignores whitespace around the key, as the check does");
}

static void test_check(void)
{
	struct ws_upgrade_request rq;

	rq = good_request();
	check("rfc_example_request", &rq, 0);

	rq = good_request();
	rq.is_get = false;
	check("post_is_400", &rq, 400);

	rq = good_request();
	rq.http_minor = 0;
	check("http_1_0_is_400", &rq, 400);
	rq = good_request();
	rq.http_major = 0;
	rq.http_minor = 9;
	check("http_0_9_is_400", &rq, 400);
	rq = good_request();
	rq.http_minor = 2;
	check("http_1_2_accepted", &rq, 0);
	rq = good_request();
	rq.http_major = 2;
	rq.http_minor = 0;
	check("http_2_0_accepted_as_later_than_1_1", &rq, 0);

	rq = good_request();
	rq.upgrade = NULL;
	check("no_upgrade_header_is_400", &rq, 400);
	rq = good_request();
	rq.upgrade = "WebSocket";
	check("upgrade_websocket_case_insensitive", &rq, 0);
	rq = good_request();
	rq.upgrade = "h2c, WEBSOCKET";
	check("upgrade_list_containing_websocket", &rq, 0);
	rq = good_request();
	rq.upgrade = "websockets";
	check("upgrade_websockets_is_400", &rq, 400);
	rq = good_request();
	rq.upgrade = "h2c";
	check("upgrade_h2c_is_400", &rq, 400);

	rq = good_request();
	rq.connection = NULL;
	check("no_connection_header_is_400", &rq, 400);
	rq = good_request();
	rq.connection = "keep-alive, Upgrade";
	check("connection_keep_alive_upgrade_list (Firefox)", &rq, 0);
	rq = good_request();
	rq.connection = "upgrade";
	check("connection_upgrade_lowercase", &rq, 0);
	rq = good_request();
	rq.connection = "keep-alive";
	check("connection_keep_alive_only_is_400", &rq, 400);
	rq = good_request();
	rq.connection = "Upgrade-Insecure-Requests";
	check("connection_token_prefix_is_not_a_match", &rq, 400);

	rq = good_request();
	rq.key = NULL;
	check("no_key_is_400", &rq, 400);
	rq = good_request();
	rq.key = "";
	check("empty_key_is_400", &rq, 400);
	rq = good_request();
	rq.key = "dGhlIHNhbXBsZSBub25jZQ";
	check("key_without_padding_is_400", &rq, 400);
	rq = good_request();
	rq.key = "dGhlIHNhbXBsZSBub25jZQ=";
	check("key_with_one_pad_char_is_400", &rq, 400);
	rq = good_request();
	rq.key = "dGhlIHNhbXBsZSBub25j*Q==";
	check("key_with_non_base64_char_is_400", &rq, 400);
	rq = good_request();
	rq.key = "dGhlIHNhbXBsZSBub25jZQ=A";
	check("key_with_data_after_padding_is_400", &rq, 400);
	rq = good_request();
	rq.key = "AAAAAAAAAAAAAAAAAAAA";
	check("key_of_15_bytes_is_400", &rq, 400);
	rq = good_request();
	rq.key = "AAAAAAAAAAAAAAAAAAAAAAA=";
	check("key_of_17_bytes_is_400", &rq, 400);
	rq = good_request();
	rq.key = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=";
	check("key_of_20_bytes_is_400", &rq, 400);
	rq = good_request();
	rq.key = "x3JJHMbDL1EzLkh9GBhXDw==";
	check("key_other_16_bytes", &rq, 0);
	rq = good_request();
	rq.key = "  " RFC_KEY " ";
	check("key_with_surrounding_whitespace", &rq, 0);

	rq = good_request();
	rq.version = NULL;
	check("no_version_is_426", &rq, 426);
	rq = good_request();
	rq.version = "8";
	check("version_8_is_426", &rq, 426);
	rq = good_request();
	rq.version = "130";
	check("version_130_is_426", &rq, 426);
	rq = good_request();
	rq.version = "13, 8";
	check("version_list_is_426", &rq, 426);
	rq = good_request();
	rq.version = "";
	check("version_empty_is_426", &rq, 426);
	rq = good_request();
	rq.version = "8";
	rq.key = NULL;
	check("bad_version_and_no_key_is_400 (426 only for an otherwise valid upgrade)",
	      &rq, 400);
	rq = good_request();
	rq.version = NULL;
	rq.is_get = false;
	check("no_version_on_a_post_is_400", &rq, 400);

	rq = good_request();
	ok(ws_handshake_check(&rq, NULL) == 0, "handshake_check accepts why == NULL");
	rq.version = "7";
	ok(ws_handshake_check(&rq, NULL) == 426, "handshake_check with why == NULL still answers 426");
}

static void test_tokens(void)
{
	ok(!ws_header_has_token(NULL, "Upgrade"), "has_token(NULL) is false");
	ok(!ws_header_has_token("", "Upgrade"), "has_token(\"\") is false");
	ok(!ws_header_has_token("Upgrade", ""), "empty token never matches");
	ok(!ws_header_has_token(", ,", ""), "empty token does not match empty items");
	ok(ws_header_has_token("Upgrade", "upgrade"), "case-insensitive");
	ok(ws_header_has_token(" ,\tkeep-alive ,  UPGRADE\t, ", "Upgrade"),
	   "list with whitespace and empty items");
	ok(ws_header_has_token("close,upgrade", "Upgrade"), "last item, no spaces");
	ok(!ws_header_has_token("Upgrade2, Upgrad", "Upgrade"), "no prefix or suffix matches");
	ok(!ws_header_has_token("keep alive", "keep"), "space inside an item is not a separator");
}

static void test_origin(void)
{
	static const char *const allowed[] = {
		"https://app.example.com", "http://localhost:3000"
	};
	static const char *const any[] = { "https://x.example", "*" };

	ok(ws_origin_allowed(NULL, NULL, 0), "no Origin header: allowed even with an empty list");
	ok(ws_origin_allowed(NULL, allowed, 2), "no Origin header: allowed");
	ok(!ws_origin_allowed("https://app.example.com", NULL, 0),
	   "an Origin with an empty list is refused");
	ok(ws_origin_allowed("https://app.example.com", allowed, 2), "exact origin allowed");
	ok(ws_origin_allowed("HTTPS://App.Example.COM", allowed, 2),
	   "origin compared case-insensitively");
	ok(ws_origin_allowed("http://localhost:3000", allowed, 2), "second entry allowed");
	ok(!ws_origin_allowed("http://localhost:3001", allowed, 2), "other port refused");
	ok(!ws_origin_allowed("http://app.example.com", allowed, 2), "other scheme refused");
	ok(!ws_origin_allowed("https://app.example.com.evil.test", allowed, 2),
	   "suffix attack refused");
	ok(!ws_origin_allowed("https://app.example.co", allowed, 2), "prefix refused");
	ok(!ws_origin_allowed("https://evil.test/https://app.example.com", allowed, 2),
	   "embedded allowed origin refused");
	ok(!ws_origin_allowed("null", allowed, 2), "opaque origin \"null\" refused");
	ok(!ws_origin_allowed("", allowed, 2), "empty Origin refused");
	ok(ws_origin_allowed("https://anything.test", any, 2), "\"*\" allows any origin");
	ok(ws_origin_allowed("null", any, 2), "\"*\" allows even \"null\"");
}

/* The 101 notifyd writes itself: exact bytes, with and without a
 * subprotocol, and refusal (0) when it does not fit. */
static void test_response(void)
{
	static const char want[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
	static const char want_proto[] = "HTTP/1.1 101 Switching Protocols\r\n"
	    "Upgrade: websocket\r\n"
	    "Connection: Upgrade\r\n"
	    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	    "Sec-WebSocket-Protocol: notifyd.v1\r\n\r\n";
	char out[WS_RESPONSE_MAX];
	size_t n;

	n = ws_handshake_response(out, sizeof(out), RFC_KEY, NULL);
	ok(n == sizeof(want) - 1 && strcmp(out, want) == 0, "101 without subprotocol, byte for byte");
	n = ws_handshake_response(out, sizeof(out), RFC_KEY, "");
	ok(n == sizeof(want) - 1 && strcmp(out, want) == 0, "empty subprotocol: no Sec-WebSocket-Protocol");
	n = ws_handshake_response(out, sizeof(out), RFC_KEY, "notifyd.v1");
	ok(n == sizeof(want_proto) - 1 && strcmp(out, want_proto) == 0, "101 with subprotocol, byte for byte");
	ok(ws_handshake_response(out, sizeof(want) - 1, RFC_KEY, NULL) == 0,
	    "no room for the final NUL: refused");
	ok(ws_handshake_response(out, sizeof(want), RFC_KEY, NULL) == sizeof(want) - 1,
	    "exactly enough room: accepted");
	ok(ws_handshake_response(out, 0, RFC_KEY, NULL) == 0, "zero-length buffer: refused");
	ok(ws_handshake_response(out, sizeof(out), NULL, NULL) == 0, "no key: refused");
}

int main(void)
{
	test_accept();
	test_response();
	test_check();
	test_tokens();
	test_origin();
	return done_testing();
}
