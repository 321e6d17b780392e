/* http_head.h - the head of one HTTP/1.x request, read before evhttp does.
 *
 * Promises: pure (no I/O, no allocation).  http_head_end() finds where a
 * head ends, accepting CRLF or bare LF line ends as evhttp does.
 * http_head_parse() reads the request line and the few headers that decide
 * whether a body may follow, and refuses (HTTP_HEAD_BAD, with a reason) every
 * head whose body framing two parsers could read differently: more than one
 * Content-Length (even equal ones), a Content-Length that is not 1*DIGIT,
 * Content-Length together with Transfer-Encoding, any Transfer-Encoding but a
 * single "chunked", obsolete line folding, whitespace before a colon, a
 * header line without a colon, control characters.  Pointers in the result
 * point into the caller's buffer.
 */
#ifndef NOTIFYD_HTTP_HEAD_H
#define NOTIFYD_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_head {
	const char *method;
	size_t method_len;
	const char *path;		/* the request target up to '?' or '#' */
	size_t path_len;
	int version_minor;		/* HTTP/1.x */
	int64_t content_length;		/* -1: no Content-Length header */
	bool chunked;			/* Transfer-Encoding: chunked */
	bool expect_continue;		/* Expect: 100-continue */
	const char *authorization;	/* value, trimmed; NULL when absent */
	size_t authorization_len;
};

enum http_head_result { HTTP_HEAD_OK = 0, HTTP_HEAD_BAD };

/* Length of the head in p[0..len) including the empty line that ends it,
 * or 0 when that line has not arrived yet. */
size_t http_head_end(const char *p, size_t len);

/* Parse the head p[0..len) (as measured by http_head_end).  On HTTP_HEAD_BAD
 * *why says what was wrong, for a 400. */
enum http_head_result http_head_parse(const char *p, size_t len, struct http_head *h, const char **why);

/* Does the request carry a body? */
static inline bool http_head_has_body(const struct http_head *h)
{
	return h->chunked || h->content_length > 0;
}

/* Is the method exactly m (case-sensitive, as RFC 9110 says)? */
bool http_head_method_is(const struct http_head *h, const char *m);

/* Is the path exactly p (no decoding: a refusal is the safe answer to an
 * encoded one)? */
bool http_head_path_is(const struct http_head *h, const char *p);

#endif
