/* test_http_gate.c - the gate in front of evhttp, on a real loop (no broker):
 * heads whose framing two parsers could read differently (400), heads too
 * large (431), bodies refused on the head alone without "100 Continue",
 * admitted bodies passed on, pipelining, the request deadlines, the
 * max_http_connections eviction and the per-address limit. */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop_fixture.h"
#include "mq_publisher.h"
#include "tap.h"

#define KEY "gate-test-push-key-0123"
#define AUTH "Authorization: Bearer " KEY "\r\n"

static const char base_conf[] =
    "push_keys = " KEY "\n"
    "push_max_body = 1k\n"
    "push_timeout = 30s\n";

/* Answered by the gate itself, from the head alone. */
static const struct {
	const char *name;
	const char *req;
	int status;
	const char *why;	/* in the JSON error */
	const char *header;	/* an extra header line of the answer, or NULL */
} refusals[] = {
	{ "two Content-Length, even equal", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", 400, "Content-Length", NULL },
	{ "Content-Length not digits", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Content-Length: +2\r\n\r\n{}", 400, "Content-Length", NULL },
	{ "Content-Length beside Transfer-Encoding", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", 400, "", NULL },
	{ "a coding other than chunked", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Transfer-Encoding: gzip, chunked\r\n\r\n", 400, "", NULL },
	{ "a folded header line", "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, "", NULL },
	{ "a space before the colon", "GET /health HTTP/1.1\r\nHost : x\r\n\r\n", 400, "", NULL },
	{ "a header line without colon", "GET /health HTTP/1.1\r\nHost x\r\n\r\n", 400, "", NULL },
	{ "a body on a path that takes none", "POST /health HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	  "Content-Length: 5\r\n\r\n", 413, "this path takes no request body", NULL },
	{ "a body on an unknown path", "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	  404, "not found", NULL },
	{ "/push without a key", "POST /push HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
	  "Content-Length: 2\r\n\r\n", 401, "push key", "WWW-Authenticate: Bearer" },
	{ "/push with a wrong key", "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope-nope-nope-nope\r\n"
	  "Content-Length: 2\r\n\r\n{}", 401, "push key", "WWW-Authenticate: Bearer" },
	{ "/push with a body, not POST", "PUT /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Content-Length: 2\r\n\r\n{}", 405, "use POST", "Allow: POST" },
	{ "/push chunked", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 411, "Content-Length required", NULL },
	{ "/push longer than push_max_body", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
	  "Expect: 100-continue\r\nContent-Length: 1025\r\n\r\n", 413, "push_max_body", NULL },
};

static bool header_line(const struct fx_resp *r, const char *line)
{
	char name[64];
	const char *colon = strchr(line, ':');

	snprintf(name, sizeof(name), "%.*s", (int)(colon - line), line);
	return fx_has_header(r, name, colon + 2);
}

static void test_refusals(struct fx *f)
{
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct fx_client *c = fx_connect(f, 0);
		uint64_t before = stats_get(&f->stats.http_refused);
		struct fx_resp r;

		if (c == NULL || fx_sends(c, refusals[i].req) < 0) {
			ok(0, "%s: sent", refusals[i].name);
			continue;
		}
		fx_read_response(c, &r, 3000);
		ok(r.status == refusals[i].status && strstr(r.body, "{\"error\":\"") == r.body &&
		    strstr(r.body, refusals[i].why) != NULL, "%s: %d %s (%d %s)", refusals[i].name,
		    refusals[i].status, refusals[i].why, r.status, fx_show(r.body));
		ok(fx_has_header(&r, "Connection", "close") && !r.got_continue &&
		    (refusals[i].header == NULL || header_line(&r, refusals[i].header)),
		    "%s: Connection: close, no 100 Continue%s%s", refusals[i].name,
		    refusals[i].header != NULL ? ", " : "", refusals[i].header != NULL ? refusals[i].header : "");
		ok(fx_wait_eof(c, 3000) && stats_get(&f->stats.http_refused) == before + 1,
		    "%s: closed after the answer, counted as refused", refusals[i].name);
		fx_close(c);
	}
}

/* A head of about size bytes: GET /health with padding headers. */
static char *big_head(size_t size)
{
	char *h = malloc(size + 64);
	size_t n = (size_t)sprintf(h, "GET /health HTTP/1.1\r\nHost: x\r\n");

	while (n + 64 < size)
		n += (size_t)sprintf(h + n, "X-Pad: %048u\r\n", (unsigned)n);
	strcpy(h + n, "\r\n");
	return h;
}

/* Send s in pieces of step bytes, turning the loop between them. */
static int trickle(struct fx_client *c, const char *s, size_t step)
{
	for (size_t n = strlen(s), o = 0; o < n; o += step) {
		if (fx_send(c, s + o, n - o < step ? n - o : step) < 0)
			return -1;
		fx_step(c->f, clock_now_ms() + 1);
	}
	return 0;
}

static void test_heads(struct fx *f)
{
	static const struct {
		size_t size, step;
		int status;
	} rows[] = {
		{ 7000, 0, 503 }, { 7000, 1, 503 }, { 7000, 333, 503 },
		{ 9000, 0, 431 }, { 9000, 1000, 431 }, { 20000, 4096, 431 },
	};
	struct fx_resp r;
	struct fx_client *c;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *h = big_head(rows[i].size);

		c = fx_connect(f, 0);
		if (c != NULL && (rows[i].step == 0 ? fx_sends(c, h) : trickle(c, h, rows[i].step)) == 0)
			fx_read_response(c, &r, 3000);
		ok(c != NULL && r.status == rows[i].status, "a head of %zu bytes sent in pieces of %zu (0: whole): %d (%d %s)",
		    strlen(h), rows[i].step, rows[i].status,
		    r.status, fx_show(r.body));
		if (c != NULL)
			fx_close(c);
		free(h);
	}

	/* The end of the head split across reads: "\r\n" then "\r\n". */
	c = fx_connect(f, 0);
	fx_sends(c, "GET /health HTTP/1.1\r\nHost: x\r\n");
	fx_run_for(f, 20);
	fx_sends(c, "\r\n");
	ok(fx_read_response(c, &r, 3000) == 503 && strstr(r.body, "\"status\":\"unavailable\"") != NULL,
	    "an end of head split across reads is found: /health answers");

	/* Pipelined: answered once, then closed.  (The answer does not say
	 * "Connection: close": the gate adds it once the answer is written,
	 * where it only makes evhttp close.) */
	fx_sends(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	ok(fx_read_response(c, &r, 3000) == 503 && strstr(r.body, "unavailable") != NULL,
	    "pipelined requests: the first is answered");
	ok(fx_wait_eof(c, 3000) && c->len == 0, "pipelined requests: then closed, the second not served");
	fx_close(c);
}

/* A job the loop handed to the publisher (the test's end of pushq). */
static bool take_job(struct fx *f, struct push_job *j)
{
	size_t n = 0;

	FX_WAIT(f, 3000, (n = xqueue_drain(&f->pushq, j, 1)) == 1);
	return n == 1;
}

static void test_admitted_body(struct fx *f)
{
	static const char body[] = "{\"user_id\":\"7\",\"message\":\"slow body\"}";
	struct fx_client *c = fx_connect(f, 0);
	struct push_result res = { .status = 202, .count = 1 };
	struct push_job j;
	struct fx_resp r;
	char head[256];
	bool got;

	snprintf(head, sizeof(head), "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH "Expect: 100-continue\r\n"
	    "Content-Length: %zu\r\n\r\n", strlen(body));
	fx_sends(c, head);
	/* evhttp answers an admitted Expect before the body comes. */
	ok(fx_wait_text(c, "HTTP/1.1 100 Continue\r\n\r\n", 3000), "admitted: 100 Continue");
	fx_consume(c, c->len);
	fx_send(c, body, 10);
	fx_run_for(f, 20);
	ok(xqueue_drain(&f->pushq, &j, 1) == 0, "admitted: nothing handed on before the whole body");
	fx_sends(c, body + 10);
	got = take_job(f, &j);
	ok(got && j.raw_len == strlen(body) && memcmp(j.raw, body, j.raw_len) == 0,
	    "admitted: the whole body reaches the publisher's queue");
	res.id = got ? j.id : 0;
	if (got)
		push_job_free(&j);
	xqueue_push(&f->resultq, &res);
	fx_read_response(c, &r, 3000);
	ok(r.status == 202 && !fx_has_header(&r, "Connection", "close"),
	    "admitted: answered 202 once confirmed, connection kept (%d)", r.status);
	fx_close(c);
}

/* handshake_timeout = 300ms: each request must arrive whole in time. */
static void test_deadlines(void)
{
	static const struct {
		const char *name, *send;
	} rows[] = {
		{ "nothing sent", "" },
		{ "a head never ended", "GET /health HTTP/1.1\r\nHost: x\r\n" },
		{ "an admitted body never ended", "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH
		  "Content-Length: 10\r\n\r\n{\"a\":" },
		{ "idle after an answer", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n" },
	};
	struct fx f;

	if (fx_start(&f, "push_keys = " KEY "\nhandshake_timeout = 300ms\n") < 0) {
		ok(0, "fixture for deadlines");
		fx_stop(&f);
		return;
	}
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fx_client *c = fx_connect(&f, 0);
		uint64_t hits = stats_get(&f.stats.limit_hits[LIMIT_HANDSHAKE]), t0 = clock_now_ms(), dt;
		struct fx_resp r;
		bool answered = i == 3;

		fx_sends(c, rows[i].send);
		if (answered) {
			answered = fx_read_response(c, &r, 2000) == 503;
			t0 = clock_now_ms();
		}
		fx_wait_eof(c, 3000);
		dt = clock_now_ms() - t0;
		/* Not before the deadline (less the time the answer took to be
		 * read, for the last row); checked every 250 ms. */
		ok(c->eof && dt >= 250 && (i != 3 || answered), "%s: closed after %llu ms (deadline 300)",
		    rows[i].name, (unsigned long long)dt);
		ok(stats_get(&f.stats.limit_hits[LIMIT_HANDSHAKE]) == hits + 1, "%s: counted as a handshake limit hit",
		    rows[i].name);
		fx_close(c);
	}
	fx_stop(&f);
}

static bool gauge_is(struct fx *f, uint64_t n)
{
	FX_WAIT(f, 3000, stats_get(&f->stats.http_connections) == n);
	return stats_get(&f->stats.http_connections) == n;
}

static void test_http_connections(void)
{
	struct fx f;
	struct fx_client *a, *b, *c;
	struct fx_resp r;
	struct push_job j;

	if (fx_start(&f, "push_keys = " KEY "\nmax_http_connections = 2\npush_timeout = 30s\n") < 0) {
		ok(0, "fixture for max_http_connections");
		fx_stop(&f);
		return;
	}
	a = fx_connect(&f, 0);
	ok(gauge_is(&f, 1), "http_connections counts an accepted connection");
	b = fx_connect(&f, 0);
	gauge_is(&f, 2);
	c = fx_connect(&f, 0);
	ok(fx_wait_eof(a, 3000) && !b->eof, "over max_http_connections: the oldest one still sending is closed");
	fx_sends(c, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
	ok(fx_read_response(c, &r, 3000) == 503 && strstr(r.body, "unavailable") != NULL &&
	    stats_get(&f.stats.limit_hits[LIMIT_HTTP_CONNECTIONS]) == 1,
	    "the newcomer is served; the eviction counted");
	fx_close(a);
	fx_close(b);
	fx_close(c);
	gauge_is(&f, 0);

	/* Nobody left to evict: both are waiting for their answer. */
	a = fx_connect(&f, 0);
	fx_sends(a, "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: 2\r\n\r\n{}");
	b = fx_connect(&f, 0);
	fx_sends(b, "POST /push HTTP/1.1\r\nHost: x\r\n" AUTH "Content-Length: 2\r\n\r\n{}");
	take_job(&f, &j);
	push_job_free(&j);
	take_job(&f, &j);
	push_job_free(&j);
	c = fx_connect(&f, 0);
	fx_read_response(c, &r, 3000);
	ok(r.status == 503 && strstr(r.body, "too many connections") != NULL &&
	    fx_has_header(&r, "Retry-After", "1") && fx_wait_eof(c, 3000),
	    "no connection to evict: 503 too many connections, Retry-After: 1, closed (%d %s)", r.status, fx_show(r.body));
	ok(!a->eof && !b->eof && stats_get(&f.stats.limit_hits[LIMIT_HTTP_CONNECTIONS]) == 2,
	    "requests being answered are not evicted; the refusal counted");
	fx_stop(&f);
}

static void test_per_ip(void)
{
	struct fx f;
	struct fx_client *a, *b, *c, *w;
	struct fx_resp r;

	if (fx_start(&f, "max_connections_per_ip = 2\n") < 0) {
		ok(0, "fixture for max_connections_per_ip");
		fx_stop(&f);
		return;
	}
	a = fx_connect(&f, 0);
	b = fx_connect(&f, 0);
	c = fx_connect(&f, 0);
	fx_read_response(c, &r, 3000);
	ok(r.status == 503 && strstr(r.body, "from this address") != NULL && fx_has_header(&r, "Retry-After", "1") &&
	    fx_wait_eof(c, 3000) && stats_get(&f.stats.limit_hits[LIMIT_PER_IP]) == 1,
	    "a third connection from one address: 503 at once, closed, counted (%d %s)", r.status, fx_show(r.body));
	fx_close(c);
	fx_close(a);
	gauge_is(&f, 1);
	ok(fx_request(&f, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 503 && strstr(r.body, "unavailable"),
	    "a closed connection gives its slot back");
	/* A WebSocket keeps its slot: b and w are two. */
	w = fx_ws_open(&f, "u1", 0);
	ok(w != NULL && !b->eof && gauge_is(&f, 1), "an upgraded connection leaves the http_connections gauge");
	ok(fx_request(&f, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 503 && strstr(r.body, "from this address"),
	    "a WebSocket still counts for its address");
	fx_stop(&f);
}

int main(void)
{
	struct fx f;

	if (fx_start(&f, base_conf) == 0) {
		test_refusals(&f);
		test_heads(&f);
		test_admitted_body(&f);
	} else {
		ok(0, "fixture");
	}
	fx_stop(&f);
	test_deadlines();
	test_http_connections();
	test_per_ip();
	return done_testing();
}
