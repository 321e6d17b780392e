/* test_http_server.c - the routes on a real loop (no broker): /health from
 * the broker state the loop holds, /metrics, 404s, every refusal of a
 * WebSocket upgrade with its status, and POST /push up to and back from
 * the publisher's queues (the test plays the publisher thread). */
#include "autoconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "loop_fixture.h"
#include "mq_publisher.h"
#include "tap.h"

#define KEY "server-test-push-key-01"
#define SECRET "0123456789abcdef0123456789abcdef"

static int get(struct fx *f, const char *path, struct fx_resp *r)
{
	char req[512];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
	return fx_request(f, req, r);
}

static void test_routes(struct fx *f)
{
	static const struct {
		enum broker_state state;
		bool draining;
		const char *error;
		int status;
		const char *has[3];
	} health[] = {
		{ BROKER_CONNECTING, false, "", 503, { "\"status\":\"unavailable\"", "\"state\":\"connecting\"",
		  "\"last_error\":null" } },
		{ BROKER_CONSUMING, false, "", 200, { "\"status\":\"ok\"", "\"state\":\"consuming\"", "\"connections\":0" } },
		{ BROKER_RECONNECTING, false, "amqp.example: refused", 503, { "\"state\":\"reconnecting\"",
		  "\"last_error\":\"see the log\"", "\"status\":\"unavailable\"" } },
		{ BROKER_CONSUMING, true, "", 503, { "\"status\":\"draining\"", "\"state\":\"consuming\"", "" } },
	};
	struct fx_resp r;

	for (size_t i = 0; i < sizeof(health) / sizeof(health[0]); i++) {
		f->gw.broker.state = health[i].state;
		f->gw.draining = health[i].draining;
		snprintf(f->gw.broker.error, sizeof(f->gw.broker.error), "%s", health[i].error);
		get(f, "/health", &r);
		ok(r.status == health[i].status && fx_has_header(&r, "Content-Type", "application/json") &&
		    strstr(r.body, health[i].has[0]) && strstr(r.body, health[i].has[1]) &&
		    strstr(r.body, health[i].has[2]), "/health, broker %s%s: %d (%s)",
		    broker_state_name(health[i].state), health[i].draining ? ", draining" : "",
		    health[i].status, fx_show(r.body));
	}
	f->gw.broker.state = BROKER_CONNECTING;
	f->gw.draining = false;
	f->gw.broker.error[0] = '\0';

	get(f, "/metrics", &r);
	ok(r.status == 200 && fx_has_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8") &&
	    strstr(r.body, "notifyd_build_info{version=") != NULL && strstr(r.body, "notifyd_broker_up 0") != NULL,
	    "/metrics: Prometheus text");
	ok(get(f, "/nope", &r) == 404 && strcmp(r.body, "{\"error\":\"not found\"}\n") == 0, "unknown path: 404 in JSON");
	ok(get(f, "/", &r) == 404, "/ without demo = on: 404");
	fx_request(f, "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer 0123456789abcdef0\r\n\r\n", &r);
	ok(r.status == 403 && strstr(r.body, "push is disabled"), "/push with no push_keys: 403 (%s)", fx_show(r.body));
}

/* Upgrades the server must refuse, and with what (auth = none). */
static const struct {
	const char *name;
	const char *method, *query;
	const char *key;	/* NULL: none */
	const char *version;	/* NULL: none */
	const char *extra;	/* header lines added */
	int status;
	const char *why;
} upgrades[] = {
	{ "POST", "POST", "userId=a", FX_WS_KEY, "13", "", 400, "must use GET" },
	{ "no Sec-WebSocket-Key", "GET", "userId=a", NULL, "13", "", 400, "Sec-WebSocket-Key" },
	{ "a key of 15 bytes", "GET", "userId=a", "AAAAAAAAAAAAAAAAAAAA", "13", "", 400, "Sec-WebSocket-Key" },
	{ "version 8", "GET", "userId=a", FX_WS_KEY, "8", "", 426, "13 expected" },
	{ "no version", "GET", "userId=a", FX_WS_KEY, NULL, "", 426, "13 expected" },
	{ "a foreign Origin", "GET", "userId=a", FX_WS_KEY, "13", "Origin: https://evil.example\r\n", 403,
	  "origin not allowed" },
	{ "no userId", "GET", "x=1", FX_WS_KEY, "13", "", 400, "missing or invalid userId" },
	{ "a userId with a control character", "GET", "userId=a%01b", FX_WS_KEY, "13", "", 400,
	  "missing or invalid userId" },
	{ "a malformed query", "GET", "userId=a&%zz", FX_WS_KEY, "13", "", 400, "" },
	{ "a third connection of one user (max_connections_per_user = 2)", "GET", "userId=full", FX_WS_KEY, "13",
	  "", 503, "too many connections for this user" },
};

static void upgrade_request(char *buf, size_t len, size_t i)
{
	char key[96] = "", version[64] = "";

	if (upgrades[i].key != NULL)
		snprintf(key, sizeof(key), "Sec-WebSocket-Key: %s\r\n", upgrades[i].key);
	if (upgrades[i].version != NULL)
		snprintf(version, sizeof(version), "Sec-WebSocket-Version: %s\r\n", upgrades[i].version);
	snprintf(buf, len, "%s /ws?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\n%s%s%s\r\n", upgrades[i].method, upgrades[i].query, key, version,
	    upgrades[i].extra);
}

static void test_upgrades(struct fx *f)
{
	struct fx_client *w1 = fx_ws_open(f, "full", 0), *w2 = fx_ws_open(f, "full", 0), *w3;
	struct fx_resp r;
	char req[1024];

	ok(w1 != NULL && w2 != NULL, "two connections of one user are accepted");
	for (size_t i = 0; i < sizeof(upgrades) / sizeof(upgrades[0]); i++) {
		uint64_t rejected = stats_get(&f->stats.ws_rejected);

		upgrade_request(req, sizeof(req), i);
		fx_request(f, req, &r);
		ok(r.status == upgrades[i].status && strstr(r.body, upgrades[i].why) != NULL &&
		    stats_get(&f->stats.ws_rejected) == rejected + 1, "upgrade with %s: %d %s (%d %s)",
		    upgrades[i].name, upgrades[i].status, upgrades[i].why, r.status, fx_show(r.body));
		if (upgrades[i].status == 426)
			ok(fx_has_header(&r, "Sec-WebSocket-Version", "13"), "426 names the version: 13");
	}
	ok(stats_get(&f->stats.limit_hits[LIMIT_PER_USER]) == 1, "the per-user refusal counts as a limit hit");

	w3 = fx_ws_open(f, "other", 0);
	fx_ws_request(req, sizeof(req), "userId=b", "Origin: https://app.example\r\n");
	fx_request(f, req, &r);
	ok(w3 != NULL && r.status == 503 && strstr(r.body, "connection limit reached") &&
	    fx_has_header(&r, "Connection", "close") && stats_get(&f->stats.limit_hits[LIMIT_CONNECTIONS]) == 1,
	    "over max_connections: 503, Connection: close, counted (%d %s)", r.status, fx_show(r.body));
	fx_close(w3);
	FX_WAIT(f, 3000, registry_count(&f->gw.reg) == 2);

	f->gw.draining = true;
	fx_request(f, req, &r);
	ok(r.status == 503 && strstr(r.body, "shutting down") && fx_has_header(&r, "Connection", "close"),
	    "upgrade while draining: 503, Connection: close");
	f->gw.draining = false;
	w3 = fx_connect(f, 0);
	fx_sends(w3, req);
	ok(fx_read_response(w3, &r, 3000) == 101, "an allowed Origin is let in");
	ok(registry_count(&f->gw.reg) == 3, "no refused upgrade was registered");
}

/* base64url of in[0..n), unpadded, appended to out. */
static void b64url_cat(char *out, const void *in, size_t n)
{
	char *o = out + strlen(out);
	int len = EVP_EncodeBlock((unsigned char *)o, in, (int)n);

	for (int i = 0; i < len; i++)
		o[i] = o[i] == '+' ? '-' : o[i] == '/' ? '_' : o[i];
	while (len > 0 && o[len - 1] == '=')
		o[--len] = '\0';
}

/* An HS256 token of claims signed with secret, into out. */
static void hs256(char *out, const char *claims, const char *secret)
{
	static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	out[0] = '\0';
	b64url_cat(out, hdr, strlen(hdr));
	strcat(out, ".");
	b64url_cat(out, claims, strlen(claims));
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, strlen(out), mac, &maclen);
	strcat(out, ".");
	b64url_cat(out, mac, maclen);
}

static void test_jwt(void)
{
	struct fx f;
	struct fx_resp r;
	struct fx_client *c;
	struct fx_frame fr;
	char claims[128], token[512], q[600], req[1024];
	struct {
		const char *query, *secret;	/* secret NULL: the query alone */
		const char *user, *why;
		int status;
	} rows[] = {
		{ "userId=ivy", NULL, "", "missing token", 401 },
		{ "token=abc.def.ghi", NULL, "", "malformed", 401 },
		{ "token=", "another secret, 32 bytes long...", "", "bad signature", 401 },
		{ "token=", SECRET, "&userId=jim", "userId does not match the token", 401 },
		{ "token=", SECRET, "&userId=ivy", "", 101 },
	};

	/* Sweeps every 50 ms (ws_send_timeout / 4): the expiry is seen soon. */
	if (fx_start(&f, "auth = jwt\njwt_secret = " SECRET "\njwt_leeway = 0\nws_send_timeout = 200ms\n") < 0) {
		ok(0, "fixture for auth = jwt");
		fx_stop(&f);
		return;
	}
	/* Valid for 1 to 2 s more: the rows take milliseconds. */
	snprintf(claims, sizeof(claims), "{\"sub\":\"ivy\",\"exp\":%lld}", (long long)time(NULL) + 2);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		token[0] = '\0';
		if (rows[i].secret != NULL)
			hs256(token, claims, rows[i].secret);
		snprintf(q, sizeof(q), "%s%s%s", rows[i].query, token, rows[i].user);
		fx_ws_request(req, sizeof(req), q, NULL);
		c = fx_connect(&f, 0);
		fx_sends(c, req);
		fx_read_response(c, &r, 3000);
		ok(r.status == rows[i].status && strstr(r.body, rows[i].why) != NULL, "auth = jwt, %s%s%s: %d %s (%d %s)",
		    rows[i].query, rows[i].secret != NULL ? "(a token)" : "", rows[i].user, rows[i].status, rows[i].why, r.status, fx_show(r.body));
		if (r.status != 101) {
			fx_close(c);
			c = NULL;
		}
	}
	ok(registry_user_count(&f.gw.reg, "ivy", 3) == 1, "the token's subject is the user");
	memset(&fr, 0, sizeof(fr));
	ok(c != NULL && fx_ws_read(c, &fr, 4000) && fr.opcode == 0x8 && fr.code == 1008 &&
	    strcmp((char *)fr.payload + 2, "token expired") == 0, "closed with 1008 when the token expires");
	fx_frame_free(&fr);
	fx_stop(&f);

	if (fx_start(&f, "ip_connect_rate = 2\n") < 0) {
		ok(0, "fixture for ip_connect_rate");
		fx_stop(&f);
		return;
	}
	c = fx_ws_open(&f, "a", 0);
	ok(c != NULL && fx_ws_open(&f, "a", 0) != NULL, "ip_connect_rate = 2: two upgrades at once");
	fx_ws_request(req, sizeof(req), "userId=a", NULL);
	fx_request(&f, req, &r);
	ok(r.status == 503 && strstr(r.body, "new connections from this address") &&
	    stats_get(&f.stats.limit_hits[LIMIT_IP_RATE]) == 1, "a third: 503, counted (%s)", fx_show(r.body));
	fx_stop(&f);
}

/* The publisher's end: the next job on pushq. */
static bool take_job(struct fx *f, struct push_job *j)
{
	size_t n = 0;

	FX_WAIT(f, 3000, (n = xqueue_drain(&f->pushq, j, 1)) == 1);
	return n == 1;
}

static void test_push(void)
{
	static const char body[] = "[{\"user_id\":\"1\"},{\"broadcast\":true}]";
	static const struct {
		const char *req;
		int status;
		const char *why, *header;
	} refused[] = {
		{ "POST /push HTTP/1.1\r\nHost: x\r\n\r\n", 401, "push key", "WWW-Authenticate" },
		{ "GET /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY "\r\n\r\n", 405, "use POST", "Allow" },
		{ "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-wrong-wrong\r\n\r\n", 429,
		  "too many failed", "Retry-After" },
		{ "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY "\r\n\r\n", 429, "too many failed",
		  "Retry-After" },
	};
	struct push_result res = { .status = 202, .count = 2 };
	struct fx f;
	struct fx_client *c;
	struct fx_resp r;
	struct push_job j;
	char req[512];

	if (fx_start(&f, "push_keys = " KEY "\npush_auth_fail_rate = 1\npush_timeout = 300ms\n") < 0) {
		ok(0, "fixture for /push");
		fx_stop(&f);
		return;
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		fx_request(&f, refused[i].req, &r);
		ok(r.status == refused[i].status && strstr(r.body, refused[i].why) != NULL &&
		    fx_has_header(&r, refused[i].header, NULL), "/push without a body: %d %s, with %s (%d %s)",
		    refused[i].status, refused[i].why, refused[i].header, r.status, fx_show(r.body));
	}
	ok(stats_get(&f.stats.push_status[PUSH_401]) == 1 && stats_get(&f.stats.push_status[PUSH_405]) == 1 &&
	    stats_get(&f.stats.push_status[PUSH_429]) == 2, "each answer counted by status");
	fx_stop(&f);

	if (fx_start(&f, "push_keys = " KEY "\npush_timeout = 300ms\n") < 0) {
		ok(0, "fixture for /push");
		fx_stop(&f);
		return;
	}
	c = fx_connect(&f, 0);
	snprintf(req, sizeof(req), "POST /push HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " KEY "\r\n"
	    "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
	fx_sends(c, req);
	ok(take_job(&f, &j) && j.raw_len == strlen(body) && memcmp(j.raw, body, j.raw_len) == 0,
	    "the body goes to the publisher as it came");
	res.id = j.id;
	push_job_free(&j);
	xqueue_push(&f.resultq, &res);
	fx_read_response(c, &r, 3000);
	ok(r.status == 202 && strcmp(r.body, "{\"status\":\"queued\",\"count\":2}\n") == 0 &&
	    stats_get(&f.stats.push_messages) == 2, "confirmed: 202 with the count (%s)", fx_show(r.body));

	/* The publisher refuses the body. */
	fx_sends(c, req);
	take_job(&f, &j);
	res = (struct push_result){ .id = j.id, .status = 400, .why = "invalid target" };
	push_job_free(&j);
	xqueue_push(&f.resultq, &res);
	fx_read_response(c, &r, 3000);
	ok(r.status == 400 && strstr(r.body, "invalid target"), "refused by the publisher: its status and why");

	/* Never confirmed: 503 at push_timeout; a late result is dropped. */
	fx_sends(c, req);
	take_job(&f, &j);
	res = (struct push_result){ .id = j.id, .status = 202, .count = 2 };
	push_job_free(&j);
	fx_read_response(c, &r, 3000);
	ok(r.status == 503 && strstr(r.body, "did not confirm in time"), "no confirm in push_timeout: 503 (%s)",
	    fx_show(r.body));
	xqueue_push(&f.resultq, &res);
	fx_run_for(&f, 30);
	ok(c->len == 0 && stats_get(&f.stats.push_status[PUSH_202]) == 1, "a result after the timeout is dropped");

	f.gw.draining = true;
	fx_sends(c, req);
	ok(fx_read_response(c, &r, 3000) == 503 && strstr(r.body, "shutting down"), "while draining: 503");
	fx_stop(&f);
}

int main(void)
{
	struct fx f;

	if (fx_start(&f, "max_connections_per_user = 2\nmax_connections = 3\nallowed_origins = https://app.example\n") == 0) {
		test_routes(&f);
		test_upgrades(&f);
	} else {
		ok(0, "fixture");
	}
	fx_stop(&f);
	test_jwt();
	test_push();
	return done_testing();
}
