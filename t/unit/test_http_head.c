/* Unit tests for http_head: where a request head ends, and which heads
 * frame their body unambiguously. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "http_head.h"
#include "tap.h"

struct end_case {
	const char *in;
	size_t end;
	const char *what;
};

static const struct end_case ends[] = {
	{ "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27, "CRLF head" },
	{ "GET / HTTP/1.1\nHost: x\n\n", 24, "bare LF head (evhttp reads it too)" },
	{ "GET / HTTP/1.1\r\nHost: x\n\r\n", 26, "mixed line ends" },
	{ "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY", 27, "bytes after the head are not counted" },
	{ "GET / HTTP/1.1\r\nHost: x\r\n", 0, "no empty line yet" },
	{ "GET / HTTP/1.1\r\nHost: x\r\n\r", 0, "half of the last CRLF" },
	{ "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 26, "a lone CR inside a line is not a line end" },
	{ "", 0, "nothing" },
};

struct parse_case {
	const char *in;
	int ok;			/* 1: HTTP_HEAD_OK */
	long long cl;		/* expected content_length when ok */
	int chunked;
	const char *what;
};

#define H(x) "POST /push HTTP/1.1\r\nHost: h\r\n" x "\r\n"

static const struct parse_case parses[] = {
	{ H(""), 1, -1, 0, "no body headers" },
	{ H("Content-Length: 12\r\n"), 1, 12, 0, "one Content-Length" },
	{ H("content-length:7\r\n"), 1, 7, 0, "header names are case-insensitive, OWS optional" },
	{ H("Content-Length: 007 \r\n"), 1, 7, 0, "leading zeros and trailing OWS" },
	{ H("Transfer-Encoding: chunked\r\n"), 1, -1, 1, "chunked" },
	{ H("Transfer-Encoding: CHUNKED\r\n"), 1, -1, 1, "chunked, any case" },
	{ H("Content-Length: 5\r\nContent-Length: 6\r\n"), 0, 0, 0, "two different Content-Length" },
	{ H("Content-Length: 5\r\nContent-Length: 5\r\n"), 0, 0, 0, "two equal Content-Length" },
	{ H("Content-Length: 5, 5\r\n"), 0, 0, 0, "a list in Content-Length" },
	{ H("Content-Length: +5\r\n"), 0, 0, 0, "a sign" },
	{ H("Content-Length: -1\r\n"), 0, 0, 0, "negative" },
	{ H("Content-Length: 0x10\r\n"), 0, 0, 0, "hex" },
	{ H("Content-Length:\r\n"), 0, 0, 0, "empty" },
	{ H("Content-Length: 9999999999999999999\r\n"), 0, 0, 0, "19 digits (overflow)" },
	{ H("Content-Length: 999999999999999999\r\n"), 1, 999999999999999999LL, 0, "18 digits" },
	{ H("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 0, 0, 0, "both framings" },
	{ H("Transfer-Encoding: gzip, chunked\r\n"), 0, 0, 0, "a coding other than chunked" },
	{ H("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 0, 0, 0, "two Transfer-Encoding" },
	{ H("Content-Length : 5\r\n"), 0, 0, 0, "space before the colon" },
	{ H("X-A: 1\r\n Content-Length: 5\r\n"), 0, 0, 0, "obsolete line folding" },
	{ H("NoColon\r\n"), 0, 0, 0, "a line without a colon" },
	{ H(": empty name\r\n"), 0, 0, 0, "an empty header name" },
	{ H("X-A: a\001b\r\n"), 0, 0, 0, "a control character in a value" },
	{ H("X-A: a\tb\r\n"), 1, -1, 0, "HTAB in a value is fine" },
	{ "GET /ws HTTP/1.0\r\n\r\n", 1, -1, 0, "HTTP/1.0" },
	{ "GET /ws HTTP/2.0\r\n\r\n", 0, 0, 0, "HTTP/2.0 in a request line" },
	{ "GET /ws\r\n\r\n", 0, 0, 0, "no version" },
	{ "GET  /ws HTTP/1.1\r\n\r\n", 0, 0, 0, "two spaces" },
	{ "G(T /ws HTTP/1.1\r\n\r\n", 0, 0, 0, "a method with a non-token character" },
	{ "\r\nGET /ws HTTP/1.1\r\n\r\n", 0, 0, 0, "an empty line before the request line" },
};

int main(void)
{
	struct http_head h;
	const char *why;

	for (size_t i = 0; i < sizeof(ends) / sizeof(ends[0]); i++) {
		size_t e = http_head_end(ends[i].in, strlen(ends[i].in));

		ok(e == ends[i].end, "end: %s (%zu, want %zu)", ends[i].what, e, ends[i].end);
	}
	for (size_t i = 0; i < sizeof(parses) / sizeof(parses[0]); i++) {
		const struct parse_case *c = &parses[i];
		int r = http_head_parse(c->in, strlen(c->in), &h, &why) == HTTP_HEAD_OK;

		if (c->ok)
			ok(r && h.content_length == c->cl && h.chunked == (c->chunked != 0),
			    "parse: %s (ok=%d cl=%lld chunked=%d)", c->what, r, (long long)h.content_length, h.chunked);
		else
			ok(!r && why != NULL && why[0] != '\0', "parse refuses: %s (%s)", c->what, r ? "accepted" : why);
	}

	ok(http_head_parse(H("Authorization: Bearer abc \r\nAuthorization: Bearer def\r\n"),
	    strlen(H("Authorization: Bearer abc \r\nAuthorization: Bearer def\r\n")), &h, &why) == HTTP_HEAD_OK &&
	    h.authorization_len == 10 && memcmp(h.authorization, "Bearer abc", 10) == 0,
	    "the first Authorization, trimmed, as evhttp_find_header() gives it");
	ok(http_head_parse(H("Expect: 100-continue\r\n"), strlen(H("Expect: 100-continue\r\n")), &h, &why) ==
	    HTTP_HEAD_OK && h.expect_continue, "Expect: 100-continue");
	{
		const char *r = "PUT /push?x=1#f HTTP/1.1\r\n\r\n";

		ok(http_head_parse(r, strlen(r), &h, &why) == HTTP_HEAD_OK && http_head_path_is(&h, "/push") &&
		    http_head_method_is(&h, "PUT") && !http_head_method_is(&h, "put") && h.version_minor == 1,
		    "path without the query, method case-sensitive");
		r = "GET /pu%73h HTTP/1.1\r\n\r\n";
		ok(http_head_parse(r, strlen(r), &h, &why) == HTTP_HEAD_OK && !http_head_path_is(&h, "/push"),
		    "an encoded path is not decoded (the gate then refuses its body)");
	}
	ok(!http_head_has_body(&h), "no length, no chunked: no body");
	return done_testing();
}
