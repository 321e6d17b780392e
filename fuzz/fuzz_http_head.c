/* fuzz_http_head.c - libFuzzer target for the request head reader that
 * stands in front of evhttp (http_gate).
 *
 * Each input is a head.  Checked against a reference written here from
 * http_head.h's contract:
 *   - http_head_end() is the first empty line (CRLF or bare LF), or 0;
 *   - whenever http_head_parse() accepts, the framing is unambiguous as a
 *     second reader sees it: at most one Content-Length, all digits, the
 *     same value; at most one Transfer-Encoding, exactly "chunked"; never
 *     both; no header name with whitespace before its colon; no folded
 *     line;
 *   - every pointer in the result lies inside the input.
 * The input is an exact-size heap copy, so reading past it is caught.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_http_head.c src/http_head.c
 * Run:   ./fuzz_http_head -max_len=4096 fuzz/corpus/http_head  (or scripts/fuzz http_head)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t ref_end(const char *p, size_t n)
{
	size_t start = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		/* the line [start, i) without a trailing CR; the first line never ends the head */
		if (start > 0 && (i == start || (i == start + 1 && p[start] == '\r')))
			return i + 1;
		start = i + 1;
	}
	return 0;
}

static bool inside(const char *p, size_t n, const char *q, size_t qn)
{
	return q >= p && q + qn <= p + n;
}

struct ref {
	int ncl, nte;
	bool cl_digits, te_chunked, space_before_colon, folded;
	long long cl;
};

static void ref_scan(const char *p, size_t n, struct ref *r)
{
	size_t start = 0;
	bool first = true;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++) {
		size_t len, nl;
		const char *line = p + start, *colon, *v, *e;

		if (p[i] != '\n')
			continue;
		len = i - start;
		start = i + 1;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (first) {
			first = false;
			continue;
		}
		if (len == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t')
			r->folded = true;
		colon = memchr(line, ':', len);
		if (colon == NULL)
			continue;
		nl = (size_t)(colon - line);
		if (nl > 0 && (line[nl - 1] == ' ' || line[nl - 1] == '\t'))
			r->space_before_colon = true;
		for (v = colon + 1, e = line + len; v < e && (*v == ' ' || *v == '\t'); v++)
			;
		while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (nl == 14 && strncasecmp(line, "content-length", 14) == 0) {
			r->ncl++;
			r->cl_digits = e > v;
			r->cl = 0;
			for (const char *d = v; d < e; d++) {
				if (*d < '0' || *d > '9')
					r->cl_digits = false;
				else if (r->cl < 100000000000000000LL)
					r->cl = r->cl * 10 + (*d - '0');
			}
		} else if (nl == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
			r->nte++;
			r->te_chunked = e - v == 7 && strncasecmp(v, "chunked", 7) == 0;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *p = malloc(size ? size : 1);
	struct http_head h;
	struct ref r;
	const char *why = NULL;
	size_t end;

	if (p == NULL)
		return 0;
	memcpy(p, data, size);
	end = http_head_end(p, size);
	if (end != ref_end(p, size)) {
		fprintf(stderr, "http_head_end %zu, reference %zu\n", end, ref_end(p, size));
		abort();
	}
	if (end == 0)
		end = size;	/* parse what there is, as a truncated head */
	if (http_head_parse(p, end, &h, &why) == HTTP_HEAD_OK) {
		ref_scan(p, end, &r);
		if (r.ncl > 1 || r.nte > 1 || (r.ncl && r.nte) || (r.ncl && !r.cl_digits) ||
		    (r.nte && !r.te_chunked) || r.space_before_colon || r.folded) {
			fprintf(stderr, "accepted an ambiguous head: ncl=%d nte=%d digits=%d chunked=%d sp=%d fold=%d\n",
			    r.ncl, r.nte, r.cl_digits, r.te_chunked, r.space_before_colon, r.folded);
			abort();
		}
		if ((r.ncl == 1 && r.cl < 100000000000000000LL && h.content_length != r.cl) ||
		    (r.ncl == 0 && h.content_length != -1) || h.chunked != (r.nte == 1)) {
			fprintf(stderr, "framing differs: cl=%lld ref=%lld chunked=%d\n",
			    (long long)h.content_length, r.cl, h.chunked);
			abort();
		}
		if (!inside(p, end, h.method, h.method_len) || h.method_len == 0 ||
		    !inside(p, end, h.path, h.path_len) ||
		    (h.authorization != NULL && !inside(p, end, h.authorization, h.authorization_len)))
			abort();
	} else if (why == NULL || why[0] == '\0') {
		abort();
	}
	free(p);
	return 0;
}
