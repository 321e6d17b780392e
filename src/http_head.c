#include "autoconfig.h"

#include "http_head.h"

#include <string.h>
#include <strings.h>

#include "text.h"

size_t http_head_end(const char *p, size_t len)
{
	const char *nl = p, *end = p + len;

	while ((nl = memchr(nl, '\n', (size_t)(end - nl))) != NULL) {
		nl++;
		if (nl < end && *nl == '\n')
			return (size_t)(nl + 1 - p);
		if (nl + 1 < end && nl[0] == '\r' && nl[1] == '\n')
			return (size_t)(nl + 2 - p);
	}
	return 0;
}

/* RFC 9110 tchar */
static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* One line of p starting at *at: [*line, *line + *n) without its CR LF. */
static bool next_line(const char *p, size_t len, size_t *at, const char **line, size_t *n)
{
	const char *s = p + *at, *nl = memchr(s, '\n', len - *at);

	if (nl == NULL)
		return false;
	*line = s;
	*n = (size_t)(nl - s);
	if (*n > 0 && s[*n - 1] == '\r')
		(*n)--;
	*at = (size_t)(nl + 1 - p);
	return true;
}

/* Case-insensitive equality of s[0..n) and want: header names, and the
 * values that RFC 9110 compares that way. */
static bool ci_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static enum http_head_result request_line(const char *l, size_t n, struct http_head *h, const char **why)
{
	const char *sp1 = memchr(l, ' ', n), *sp2, *t;

	*why = "malformed request line";
	if (sp1 == NULL || sp1 == l)
		return HTTP_HEAD_BAD;
	for (t = l; t < sp1; t++)
		if (!is_tchar((unsigned char)*t))
			return HTTP_HEAD_BAD;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(l + n - sp1 - 1));
	if (sp2 == NULL || sp2 == sp1 + 1)
		return HTTP_HEAD_BAD;
	for (t = sp1 + 1; t < sp2; t++)
		if ((unsigned char)*t <= ' ' || *t == 0x7f)
			return HTTP_HEAD_BAD;
	if ((size_t)(l + n - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
	    sp2[8] < '0' || sp2[8] > '9')
		return HTTP_HEAD_BAD;
	h->method = l;
	h->method_len = (size_t)(sp1 - l);
	h->path = sp1 + 1;
	for (t = h->path; t < sp2 && *t != '?' && *t != '#'; t++)
		;
	h->path_len = (size_t)(t - h->path);
	h->version_minor = sp2[8] - '0';
	return HTTP_HEAD_OK;
}

static enum http_head_result content_length(const char *v, size_t n, struct http_head *h, const char **why)
{
	int64_t cl = 0;

	if (h->content_length >= 0) {
		*why = "more than one Content-Length";
		return HTTP_HEAD_BAD;
	}
	/* 18 digits cannot overflow int64_t. */
	if (n == 0 || n > 18) {
		*why = "invalid Content-Length";
		return HTTP_HEAD_BAD;
	}
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9') {
			*why = "invalid Content-Length";
			return HTTP_HEAD_BAD;
		}
		cl = cl * 10 + (v[i] - '0');
	}
	h->content_length = cl;
	return HTTP_HEAD_OK;
}

enum http_head_result http_head_parse(const char *p, size_t len, struct http_head *h, const char **why)
{
	const char *line, *colon, *v;
	size_t at = 0, n;
	int te = 0;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	if (!next_line(p, len, &at, &line, &n)) {
		*why = "incomplete request";
		return HTTP_HEAD_BAD;
	}
	if (request_line(line, n, h, why) != HTTP_HEAD_OK)
		return HTTP_HEAD_BAD;
	while (next_line(p, len, &at, &line, &n) && n > 0) {
		if (text_in(line[0], TEXT_OWS)) {
			*why = "obsolete header line folding";
			return HTTP_HEAD_BAD;
		}
		colon = memchr(line, ':', n);
		if (colon == NULL || colon == line) {
			*why = "malformed header line";
			return HTTP_HEAD_BAD;
		}
		for (const char *t = line; t < colon; t++)
			if (!is_tchar((unsigned char)*t)) {
				*why = "malformed header name";
				return HTTP_HEAD_BAD;
			}
		for (const char *t = colon + 1; t < line + n; t++)
			if (((unsigned char)*t < ' ' && *t != '\t') || *t == 0x7f) {
				*why = "control character in a header";
				return HTTP_HEAD_BAD;
			}
		v = colon + 1;
		size_t vn = (size_t)(line + n - v);

		text_trim(&v, &vn, TEXT_OWS);
		n = (size_t)(colon - line);
		if (ci_is(line, n, "Content-Length")) {
			if (content_length(v, vn, h, why) != HTTP_HEAD_OK)
				return HTTP_HEAD_BAD;
		} else if (ci_is(line, n, "Transfer-Encoding")) {
			if (te++ > 0 || !ci_is(v, vn, "chunked")) {
				*why = "unsupported Transfer-Encoding";
				return HTTP_HEAD_BAD;
			}
			h->chunked = true;
		} else if (ci_is(line, n, "Expect")) {
			h->expect_continue = ci_is(v, vn, "100-continue");
		} else if (ci_is(line, n, "Authorization") && h->authorization == NULL) {
			/* evhttp_find_header() also takes the first one. */
			h->authorization = v;
			h->authorization_len = vn;
		}
	}
	if (h->chunked && h->content_length >= 0) {
		*why = "both Content-Length and Transfer-Encoding";
		return HTTP_HEAD_BAD;
	}
	return HTTP_HEAD_OK;
}

bool http_head_method_is(const struct http_head *h, const char *m)
{
	return strlen(m) == h->method_len && memcmp(h->method, m, h->method_len) == 0;
}

bool http_head_path_is(const struct http_head *h, const char *p)
{
	return strlen(p) == h->path_len && memcmp(h->path, p, h->path_len) == 0;
}
