#include "autoconfig.h"

#include "http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/crypto.h>

#include "admission.h"
#include "auth_jwt.h"
#include "clock.h"
#include "config.h"
#include "client_js.h"
#include "demo_page.h"
#include "dispatch.h"
#include "http_admin.h"
#include "http_gate.h"
#include "http_head.h"
#include "http_push.h"
#include "http_reply.h"
#include "ip_rate.h"
#include "metrics.h"
#include "log.h"
#include "notifyd.h"
#include "peer_table.h"
#include "sessions.h"
#include "target.h"
#include "tls.h"
#include "ws_conn.h"
#include "ws_deflate.h"
#include "ws_handshake.h"

#define HTTP_MAX_HEADERS 8192	/* the same as the gate's */
#define HTTP_AUTH_MAX 1024	/* a longer Authorization is no push key */

struct listener {
	struct http_server *hs;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	bool tls;
};

struct http_server {
	struct gateway *gw;
	struct listener lis[2];		/* [0] listen_port, [1] tls_port when set */
	int nlis;
	SSL_CTX *ssl_ctx;
	struct ip_rate *ip_rate;
	struct http_gate *gate;
	struct http_admin *admin;
	struct event *tick_ev;
};

static void http_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *hs = arg;
	uint64_t now = clock_now_ms();

	(void)fd;
	(void)what;
	http_gate_tick(hs->gate, now);
	ip_rate_expire(hs->ip_rate, now, 10000);
	for (int i = 0; i < hs->nlis; i++)
		if (hs->lis[i].bound != NULL)
			evconnlistener_enable(evhttp_bound_socket_get_listener(hs->lis[i].bound));
}

static struct bufferevent *http_bevcb(struct event_base *base, void *arg)
{
	struct listener *l = arg;
	struct http_server *hs = l->hs;
	struct bufferevent *bev;

	if (l->tls) {
		SSL *ssl = SSL_new(hs->ssl_ctx);

		if (ssl == NULL)
			return NULL;
		bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		if (bev != NULL)
			/* Clients that hang up without close_notify are normal. */
			bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev != NULL)
		http_gate_watch(hs->gate, bev);
	return bev;
}

/* The admin API's POSTs: a small body, after a good admin key. */
static int http_admit_admin(struct http_server *hs, const struct http_head *h, const char *auth,
    const char *addr, struct gate_refusal *r)
{
	if (!http_head_method_is(h, "POST"))
		*r = (struct gate_refusal){ 405, "method not allowed: use POST", "Allow: POST" };
	else if (h->chunked)
		*r = (struct gate_refusal){ 411, "Content-Length required", NULL };
	else if ((r->status = http_admin_admit(hs->admin, auth, addr, clock_now_ms(), &r->why, &r->header)) != 0)
		return r->status;
	else if (h->content_length > HTTP_ADMIN_BODY_MAX)
		*r = (struct gate_refusal){ 413, "request body larger than 4096 bytes", NULL };
	else
		return 0;
	return r->status;
}

/* Which requests may send a body, decided on the head alone (http_gate):
 * POST /push with a good key and a declared length within push_max_body. */
static int http_admit(void *arg, const struct http_head *h, const char *addr, struct gate_refusal *r)
{
	static const char *const bodyless[] = { "/ws", "/sse", "/health", "/metrics", "/", "/index.html",
		"/notifyd.js" };
	struct http_server *hs = arg;
	char auth[HTTP_AUTH_MAX];
	const char *a = NULL;

	if (h->authorization != NULL) {
		a = "";
		if (h->authorization_len < sizeof(auth)) {
			memcpy(auth, h->authorization, h->authorization_len);
			auth[h->authorization_len] = '\0';
			a = auth;
		}
	}
	if (http_admin_owns(h->path, h->path_len))
		return http_admit_admin(hs, h, a, addr, r);
	if (!http_head_path_is(h, "/push")) {
		*r = (struct gate_refusal){ 404, "not found", NULL };
		for (size_t i = 0; i < sizeof(bodyless) / sizeof(bodyless[0]); i++)
			if (http_head_path_is(h, bodyless[i]))
				*r = (struct gate_refusal){ 413, "this path takes no request body", NULL };
		return r->status;
	}
	if (!http_head_method_is(h, "POST"))
		*r = (struct gate_refusal){ 405, "method not allowed: use POST", "Allow: POST" };
	else if (h->chunked)
		*r = (struct gate_refusal){ 411, "Content-Length required", NULL };
	else if ((r->status = http_push_admit(hs->gw->push, a, addr, clock_now_ms())) != 0) {
		http_push_refusal(hs->gw->push, r->status, &r->why, &r->header);	/* counts it */
		return r->status;
	} else if ((uint64_t)h->content_length > hs->gw->cfg->push_max_body)
		*r = (struct gate_refusal){ 413, "request body larger than push_max_body", NULL };
	else
		return 0;
	stats_add(&hs->gw->stats->push_status[stats_push_index(r->status)], 1);
	return r->status;
}

static const char *hdr(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* Every Sec-WebSocket-Protocol header of the request joined with ", "
 * (evhttp_find_header returns only the first).  The usual single header is
 * returned as it is; only several are joined, into *joined (malloc'd, the
 * caller frees it; *oom when that failed).  NULL when there is none, or
 * when they would not fit in max bytes (ignored, as ever). */
static const char *joined_protocols(struct evhttp_request *req, size_t max, char **joined, bool *oom)
{
	struct evkeyval *kv, *first = NULL;
	size_t total = 0, o = 0;
	int n = 0;

	*joined = NULL;
	*oom = false;
	for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		if (strcasecmp(kv->key, "Sec-WebSocket-Protocol") != 0)
			continue;
		if (first == NULL)
			first = kv;
		total += (n++ > 0 ? 2 : 0) + strlen(kv->value);
	}
	if (total + 3 > max)
		return NULL;
	if (n <= 1)
		return first != NULL ? first->value : NULL;
	*joined = malloc(total + 1);
	if (*joined == NULL) {
		*oom = true;
		return NULL;
	}
	for (kv = first; kv != NULL; kv = kv->next.tqe_next) {
		size_t len;

		if (strcasecmp(kv->key, "Sec-WebSocket-Protocol") != 0)
			continue;
		if (o > 0) {
			memcpy(*joined + o, ", ", 2);
			o += 2;
		}
		len = strlen(kv->value);
		memcpy(*joined + o, kv->value, len);
		o += len;
	}
	(*joined)[o] = '\0';
	return *joined;
}

/* The most Sec-WebSocket-Protocol bytes looked at: a token and change. */
#define WS_PROTOCOLS_MAX (2 * AUTH_JWT_TOKEN_MAX + 256)

/* auth = none: the subprotocol to echo, as with a token (a bearer item is
 * not looked at). */
static void ws_subprotocol(struct evhttp_request *req, char *chosen, size_t chosen_len)
{
	char *joined;
	bool oom;
	const char *protos = joined_protocols(req, WS_PROTOCOLS_MAX, &joined, &oom);

	chosen[0] = '\0';
	if (protos != NULL) {
		char token[AUTH_JWT_TOKEN_MAX + 1];

		(void)auth_jwt_from_subprotocol(protos, chosen, chosen_len, token, sizeof(token));
	}
	free(joined);
}

/* auth = jwt: find the token (subprotocol, ?token=, Authorization: Bearer),
 * verify it, check a userId given beside it.  Returns 0 with *id filled, or
 * the status to refuse with (401, or 500 out of memory) and *whyp. */
static int ws_authenticate(struct http_server *hs, struct evhttp_request *req,
    const struct evkeyvalq *params, const char *user_param, struct auth_jwt_identity *id,
    char *chosen, size_t chosen_len, struct ws_token *tok, const char **whyp)
{
	const struct config *cfg = hs->gw->cfg;
	/* On the stack: two large heap blocks per connection cost more than
	 * the rest of this function.  Only the part written is wiped. */
	char token[AUTH_JWT_TOKEN_MAX + 1];
	char *joined;
	const char *why = NULL, *t, *protos;
	size_t tlen = 0;
	bool oom;
	time_t now = time(NULL);
	int rc, status = 401;

	token[0] = '\0';
	protos = joined_protocols(req, WS_PROTOCOLS_MAX, &joined, &oom);
	if (oom) {
		why = auth_jwt_strerror(AUTH_JWT_INTERNAL);
		status = 500;
		goto out;
	}
	if (protos != NULL) {
		why = auth_jwt_from_subprotocol(protos, chosen, chosen_len, token, sizeof(token));
		if (why != NULL)
			goto out;
	} else if (chosen_len > 0) {
		chosen[0] = '\0';
	}
	t = token;
	tlen = strlen(token);
	if (tlen == 0) {
		t = evhttp_find_header(params, "token");
		if (t == NULL)
			t = admission_bearer(hdr(req, "Authorization"));
		if (t == NULL || *t == '\0') {
			why = "missing token";
			goto out;
		}
		if (strlen(t) > AUTH_JWT_TOKEN_MAX) {
			why = auth_jwt_strerror(AUTH_JWT_MALFORMED);
			goto out;
		}
	}
	rc = auth_jwt_verify(hs->gw->auth, t, strlen(t), now, id, &why);
	if (rc != AUTH_JWT_OK) {
		if (why == NULL)
			why = auth_jwt_strerror(rc);
		if (rc == AUTH_JWT_INTERNAL)
			status = 500;
		goto out;
	}
	if (user_param != NULL && strcmp(user_param, id->user) != 0) {
		why = "userId does not match the token";
		goto out;
	}
	tok->expires_ms = 0;
	tok->iat = id->iat;
	tok->jti = id->jti;
	if (id->exp != 0 && cfg->jwt_close_on_expiry) {
		/* The leeway that let the token in also keeps it alive. */
		time_t end = id->exp + (time_t)cfg->jwt_leeway_s;

		tok->expires_ms = clock_now_ms() + (end > now ? (uint64_t)(end - now) * 1000u : 0);
	}
	why = NULL;
out:
	OPENSSL_cleanse(token, tlen + 1);
	free(joined);
	*whyp = why;
	return why == NULL ? 0 : status;
}

/* The headers the upgrade looks at, in one walk over the list instead of
 * one evhttp_find_header() each; like it, the first of repeated ones. */
static void ws_headers(struct evhttp_request *req, struct ws_upgrade_request *up,
    const char **origin, const char **host)
{
	const struct {
		const char *name;
		const char **slot;
	} want[] = {
		{ "Host", host }, { "Origin", origin }, { "Upgrade", &up->upgrade },
		{ "Connection", &up->connection }, { "Sec-WebSocket-Key", &up->key },
		{ "Sec-WebSocket-Version", &up->version },
	};
	const struct evkeyval *kv;

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		*want[i].slot = NULL;
	for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv != NULL; kv = kv->next.tqe_next)
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
			if (*want[i].slot == NULL && strcasecmp(kv->key, want[i].name) == 0) {
				*want[i].slot = kv->value;
				break;
			}
}

/* Why an upgrade is refused.  One row each, so that every refusal is
 * counted, logged and answered the same way. */
enum ws_refusal {
	WR_HANDSHAKE = 0, WR_ORIGIN, WR_DRAINING, WR_CONNECTIONS, WR_IP_RATE, WR_QUERY, WR_AUTH,
	WR_USER, WR_PER_USER, WR_SINCE, WR_INTERNAL, WR_BANNED, WR_REVOKED
};

static const struct {
	const char *name;	/* reason= in the log line */
	int status;		/* 0: the caller's */
	int limit;		/* enum limit_kind counted, -1: none */
	const char *why;	/* the answer's error, NULL: the caller's */
} ws_refusals[] = {
	[WR_HANDSHAKE] = { "handshake", 0, -1, NULL },
	[WR_ORIGIN] = { "origin", 403, -1, "origin not allowed" },
	[WR_DRAINING] = { "draining", 503, -1, "server shutting down" },
	[WR_CONNECTIONS] = { "max_connections", 503, LIMIT_CONNECTIONS, "connection limit reached" },
	[WR_IP_RATE] = { "ip_connect_rate", 503, LIMIT_IP_RATE, "too many new connections from this address" },
	[WR_QUERY] = { "query", 400, -1, "malformed query string" },
	[WR_AUTH] = { "auth", 0, -1, NULL },
	[WR_USER] = { "user", 400, -1, "missing or invalid userId" },
	[WR_PER_USER] = { "max_connections_per_user", 503, LIMIT_PER_USER, "too many connections for this user" },
	[WR_SINCE] = { "since", 400, -1, "since needs the subprotocol " AUTH_JWT_SUBPROTOCOL_V2 },
	[WR_INTERNAL] = { "internal", 500, -1, "cannot accept the connection" },
	[WR_BANNED] = { "banned", 403, -1, "this user is blocked for now" },
	[WR_REVOKED] = { "revoked", 403, -1, "this token was revoked" },
};

static void ws_refuse(struct http_server *hs, struct evhttp_request *req, enum ws_refusal r, int status,
    const char *why, const char *user)
{
	struct stats *st = hs->gw->stats;
	char uq[TARGET_ID_MAX * 2 + 8], wq[256];
	char *addr = NULL;
	ev_uint16_t port = 0;

	if (ws_refusals[r].status != 0)
		status = ws_refusals[r].status;
	if (ws_refusals[r].why != NULL)
		why = ws_refusals[r].why;
	stats_add(&st->ws_rejected, 1);
	if (ws_refusals[r].limit >= 0)
		stats_add(&st->limit_hits[ws_refusals[r].limit], 1);
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr, &port);
	if (status == 426)
		evhttp_add_header(evhttp_request_get_output_headers(req), "Sec-WebSocket-Version", "13");
	if (status >= 500)
		/* Not the gate's any more, or about to be busy: do not keep it. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	/* A limit reached is the operator's business: warn. */
	log_event(ws_refusals[r].limit >= 0 ? LOG_LVL_WARN : LOG_LVL_INFO, "ws_refused", "status=%d reason=%s why=%s addr=%s user=%s",
	    status, ws_refusals[r].name, log_quote(wq, sizeof(wq), why, strlen(why)),
	    addr != NULL ? addr : "?", user != NULL ? log_quote(uq, sizeof(uq), user, strlen(user)) : "-");
	http_reply_error(req, status, why);
}

/* Safari 15.0 to 15.3 offer client_no_context_takeover and then do not
 * honour it (uWebSockets keeps the same guard): never agree to it with
 * them, and never ask them for it. */
static bool ws_safari_15_0_to_3(const char *ua)
{
	const char *v;

	if (ua == NULL || strstr(ua, "Safari/") == NULL || strstr(ua, "Chrome/") != NULL ||
	    strstr(ua, "Chromium/") != NULL || (v = strstr(ua, "Version/15.")) == NULL)
		return false;
	v += strlen("Version/15.");
	return v[0] >= '0' && v[0] <= '3' && (v[1] < '0' || v[1] > '9');
}

#define WS_EXTENSIONS_MAX 8	/* Sec-WebSocket-Extensions headers looked at */

/* permessage-deflate (RFC 7692): the first acceptable offer, into *p.
 * Returns 1 agreed, 0 not, -1 a header that breaks the grammar (400). */
static int ws_negotiate_deflate(struct http_server *hs, struct evhttp_request *req,
    struct ws_deflate_params *p)
{
	const char *values[WS_EXTENSIONS_MAX];
	size_t n = 0;
	const struct evkeyval *kv;
	enum ws_deflate_offer rc;

	if (!hs->gw->deflate_on)
		return 0;
	for (kv = evhttp_request_get_input_headers(req)->tqh_first; kv != NULL && n < WS_EXTENSIONS_MAX;
	    kv = kv->next.tqe_next)
		if (strcasecmp(kv->key, "Sec-WebSocket-Extensions") == 0)
			values[n++] = kv->value;
	if (n == 0)
		return 0;
	rc = ws_deflate_negotiate(&hs->gw->deflate, values, n, ws_safari_15_0_to_3(hdr(req, "User-Agent")), p);
	return rc == WS_DEFLATE_AGREED ? 1 : rc == WS_DEFLATE_MALFORMED ? -1 : 0;
}

/* GET /ws and GET /sse: the same admission (origin, limits, credentials),
 * then a WebSocket upgrade or an event stream. */
static void http_on_client(struct http_server *hs, struct evhttp_request *req, bool sse)
{
	struct gateway *gw = hs->gw;
	const struct config *cfg = gw->cfg;
	struct ws_upgrade_request up;
	struct evkeyvalq params;
	const char *why = NULL, *query, *user, *origin, *host, *since;
	char *peer = NULL;
	ev_uint16_t peer_port = 0;
	struct auth_jwt_identity ident;
	char chosen[32] = "";
	struct ws_token tok = { 0 };
	enum session_refusal refused = SESSION_OK;
	time_t refused_until = 0;
	struct ws_conn *c;
	struct ws_deflate_params deflate;
	int code, z = 0;

	http_gate_begin(hs->gate, req);
	up.is_get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
	up.http_major = req->major;
	up.http_minor = req->minor;
	ws_headers(req, &up, &origin, &host);
	if (sse && !up.is_get) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
		ws_refuse(hs, req, WR_HANDSHAKE, 405, "method not allowed: use GET", NULL);
		return;
	}
	code = sse ? 0 : ws_handshake_check(&up, &why);
	if (code == 0 && !sse && (z = ws_negotiate_deflate(hs, req, &deflate)) < 0) {
		code = 400;
		why = "malformed Sec-WebSocket-Extensions";
	}
	if (code != 0) {
		ws_refuse(hs, req, WR_HANDSHAKE, code, why != NULL ? why : "malformed upgrade", NULL);
		return;
	}
	if (!admission_origin_ok(origin, host, (const char *const *)cfg->allowed_origins.item,
	    cfg->allowed_origins.n)) {
		ws_refuse(hs, req, WR_ORIGIN, 0, NULL, NULL);
		return;
	}
	if (sse && origin != NULL) {
		/* An allowed page may read why it was refused (401, 503...). */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Access-Control-Allow-Origin", origin);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Vary", "Origin");
	}
	if (gw->draining) {
		ws_refuse(hs, req, WR_DRAINING, 0, NULL, NULL);
		return;
	}
	if (registry_count(&gw->reg) >= cfg->max_connections) {
		ws_refuse(hs, req, WR_CONNECTIONS, 0, NULL, NULL);
		return;
	}
	evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &peer_port);
	if (!ip_rate_allow(hs->ip_rate, peer != NULL ? peer : "?", clock_now_ms())) {
		ws_refuse(hs, req, WR_IP_RATE, 0, NULL, NULL);
		return;
	}
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	params.tqh_first = NULL;
	params.tqh_last = &params.tqh_first;
	if (query != NULL && evhttp_parse_query_str(query, &params) < 0) {
		evhttp_clear_headers(&params);
		ws_refuse(hs, req, WR_QUERY, 0, NULL, NULL);
		return;
	}
	user = evhttp_find_header(&params, "userId");
	if (user == NULL)
		user = evhttp_find_header(&params, "user_id");
	if (cfg->auth == CONFIG_AUTH_JWT) {
		code = ws_authenticate(hs, req, &params, user, &ident, chosen, sizeof(chosen), &tok, &why);
		if (code != 0) {
			evhttp_clear_headers(&params);
			ws_refuse(hs, req, WR_AUTH, code, why, NULL);
			return;
		}
		user = ident.user;
	} else if (user == NULL || !target_id_valid(user, strlen(user))) {
		/* auth = none: the user names itself. */
		evhttp_clear_headers(&params);
		ws_refuse(hs, req, WR_USER, 0, NULL, NULL);
		return;
	} else if (!sse) {
		ws_subprotocol(req, chosen, sizeof(chosen));
	}
	/* Where to resume: EventSource sends Last-Event-ID itself when it
	 * reconnects; a first connect can only say it in the query. */
	if (sse) {
		since = hdr(req, "Last-Event-ID");
		if (since == NULL)
			since = evhttp_find_header(&params, "last_event_id");
	} else {
		since = evhttp_find_header(&params, "since");
		if (since != NULL && strcmp(chosen, AUTH_JWT_SUBPROTOCOL_V2) != 0) {
			ws_refuse(hs, req, WR_SINCE, 0, NULL, user);	/* user may point into params */
			evhttp_clear_headers(&params);
			return;
		}
	}
	if (gw->sessions != NULL)
		refused = sessions_check(gw->sessions, user, strlen(user), tok.jti, tok.iat, time(NULL),
		    &refused_until);
	if (refused != SESSION_OK) {
		char retry[24];

		snprintf(retry, sizeof(retry), "%lld", (long long)(refused_until - time(NULL) + 1));
		if (refused == SESSION_BANNED)
			evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", retry);
		ws_refuse(hs, req, refused == SESSION_BANNED ? WR_BANNED : WR_REVOKED, 0, NULL, user);
		evhttp_clear_headers(&params);
		return;
	}
	if (cfg->max_connections_per_user > 0 &&
	    registry_user_count(&gw->reg, user, strlen(user)) >= cfg->max_connections_per_user) {
		ws_refuse(hs, req, WR_PER_USER, 0, NULL, user);
		evhttp_clear_headers(&params);
		return;
	}
	if (sse)
		c = ws_conn_open_sse(gw, req, user, strlen(user), origin, since, &tok,
		    http_gate_release(hs->gate, req));
	else
		c = ws_conn_upgrade(gw, req, up.key, user, strlen(user), chosen, z > 0 ? &deflate : NULL, since,
		    &tok, http_gate_release(hs->gate, req));
	if (c == NULL)
		ws_refuse(hs, req, WR_INTERNAL, 0, NULL, user);
	evhttp_clear_headers(&params);
}

static void http_on_ws(struct evhttp_request *req, void *arg)
{
	http_on_client(arg, req, false);
}

static void http_on_sse(struct evhttp_request *req, void *arg)
{
	http_on_client(arg, req, true);
}

static void http_on_health(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	struct gateway *gw = hs->gw;
	struct stats *st = gw->stats;
	char body[2048], err[400];
	uint64_t rejected = 0;
	bool up = gw->broker.state == BROKER_CONSUMING && !gw->draining;
	int n;

	http_gate_begin(hs->gate, req);
	for (int i = 0; i < REJECT_REASON_COUNT; i++)
		rejected += stats_get(&st->rejected[i]);
	/* The error text names hosts and TLS details: anyone can ask. */
	if (gw->broker.error[0] != '\0' && gw->cfg->health_show_errors)
		log_quote(err, sizeof(err), gw->broker.error, sizeof(gw->broker.error));
	else if (gw->broker.error[0] != '\0')
		snprintf(err, sizeof(err), "\"see the log\"");
	else
		snprintf(err, sizeof(err), "null");
	n = snprintf(body, sizeof(body),
	    "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_s\":%llu,"
	    "\"broker\":{\"state\":\"%s\",\"last_error\":%s,\"reconnects\":%llu},"
	    "\"connections\":%zu,\"users\":%zu,\"in_flight\":%llu,"
	    "\"messages\":{\"consumed\":%llu,\"delivered\":%llu,\"undelivered\":%llu,"
	    "\"rejected\":%llu,\"acked\":%llu}}\n",
	    up ? "ok" : (gw->draining ? "draining" : "unavailable"), PACKAGE_VERSION,
	    (unsigned long long)((clock_now_ms() - gw->started_ms) / 1000),
	    broker_state_name(gw->broker.state), err,
	    (unsigned long long)stats_get(&st->broker_reconnects),
	    registry_count(&gw->reg), registry_users(&gw->reg),
	    (unsigned long long)dispatch_in_flight(gw->dispatch),
	    (unsigned long long)stats_get(&st->consumed),
	    (unsigned long long)stats_get(&st->delivered),
	    (unsigned long long)stats_get(&st->undelivered),
	    (unsigned long long)rejected,
	    (unsigned long long)stats_get(&st->acked));
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	http_reply_json(req, up ? 200 : 503, body, (size_t)n);
}

static void http_on_push(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	bool admitted = http_gate_begin(hs->gate, req);

	if (hs->gw->draining) {
		stats_add(&hs->gw->stats->push_status[PUSH_503], 1);
		http_reply_error(req, 503, "server shutting down");
		return;
	}
	http_push_handle(hs->gw->push, req, admitted);
}

static void http_on_metrics(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	struct evbuffer *b = evbuffer_new();

	http_gate_begin(hs->gate, req);
	if (b == NULL) {
		http_reply_error(req, 500, "out of memory");
		return;
	}
	metrics_render(hs->gw, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void http_on_other(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	bool admitted = http_gate_begin(hs->gate, req);

	if (path != NULL && http_admin_owns(path, strlen(path))) {
		http_admin_handle(hs->admin, req, admitted);
		return;
	}

	if (path != NULL && strcmp(path, "/notifyd.js") == 0) {
		/* A module script from another origin needs CORS; it is public. */
		evhttp_add_header(evhttp_request_get_output_headers(req), "Access-Control-Allow-Origin", "*");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "max-age=300");
		http_reply_body(req, 200, "text/javascript; charset=utf-8", notifyd_js, notifyd_js_len);
		return;
	}
	if (hs->gw->cfg->demo && path != NULL && (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)) {
		http_reply_body(req, 200, "text/html; charset=utf-8", demo_page_html, demo_page_len);
		return;
	}
	http_reply_error(req, 404, "not found");
}

/* Out of descriptors (EMFILE) or the like: a listening socket stays
 * readable, so pause accepting instead of spinning; the tick turns it
 * back on. */
static void listener_on_error(struct evconnlistener *lis, void *arg)
{
	int e = EVUTIL_SOCKET_ERROR();

	(void)arg;
	log_warn("http_accept_failed", "error=\"%s\" pause_ms=250", evutil_socket_error_to_string(e));
	evconnlistener_disable(lis);
}

static void listener_set_limits(struct listener *l, const struct config *cfg)
{
	/* No evhttp timeout: the gate's deadlines cover every request.  An
	 * evhttp timeout would also outlive the upgrade: libevent 2.1 keeps a
	 * persistent event's timeout through event_add(ev, NULL), so the
	 * first frame of a WebSocket re-armed it and an idle client's reads
	 * stopped after handshake_timeout (then its pongs went unread). */
	evhttp_set_max_headers_size(l->http, HTTP_MAX_HEADERS);
	/* The gate answers 413 in JSON from the Content-Length, before the body;
	 * evhttp's own limit is only a second fence. */
	evhttp_set_max_body_size(l->http, (ev_ssize_t)cfg->push_max_body);
	evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_bevcb(l->http, http_bevcb, l);
	evhttp_set_cb(l->http, "/ws", http_on_ws, l->hs);
	evhttp_set_cb(l->http, "/sse", http_on_sse, l->hs);
	evhttp_set_cb(l->http, "/health", http_on_health, l->hs);
	evhttp_set_cb(l->http, "/push", http_on_push, l->hs);
	evhttp_set_cb(l->http, "/metrics", http_on_metrics, l->hs);
	evhttp_set_gencb(l->http, http_on_other, l->hs);
}

static int listener_open(struct http_server *hs, struct listener *l, uint16_t port, bool tls,
    char *err, size_t errlen)
{
	const struct config *cfg = hs->gw->cfg;
	struct addrinfo hints, *ai = NULL;
	struct evconnlistener *lis;
	char portstr[8];
	int rc;

	l->hs = hs;
	l->tls = tls;
	l->http = evhttp_new(hs->gw->base);
	if (l->http == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	rc = getaddrinfo(cfg->listen_address, portstr, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen_address %s: %s", cfg->listen_address, gai_strerror(rc));
		return -1;
	}
	/* Our own listener for a deep backlog: reconnect storms come in waves. */
	lis = evconnlistener_new_bind(hs->gw->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC |
	    (cfg->listen_reuseport ? LEV_OPT_REUSEABLE_PORT : 0), 4096,
	    ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (lis == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->listen_address,
		    (unsigned)port, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		return -1;
	}
	evconnlistener_set_error_cb(lis, listener_on_error);
	l->bound = evhttp_bind_listener(l->http, lis);
	if (l->bound == NULL) {
		evconnlistener_free(lis);
		snprintf(err, errlen, "evhttp_bind_listener failed");
		return -1;
	}
	listener_set_limits(l, cfg);
	log_info("http_listening", "address=%s port=%u tls=%s", cfg->listen_address,
	    (unsigned)port, tls ? "on" : "off");
	return 0;
}

struct http_server *http_server_start(struct gateway *gw, char *err, size_t errlen)
{
	const struct config *cfg = gw->cfg;
	struct http_server *hs = calloc(1, sizeof(*hs));
	struct timeval tick = { 0, 250000 };
	bool tls = cfg->tls_cert_file[0] != '\0';

	if (hs == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hs->gw = gw;
	hs->ip_rate = ip_rate_new(cfg->ip_connect_rate);
	hs->gate = http_gate_new(gw->base, cfg, gw->stats, gw->peers, http_admit, hs);
	hs->tick_ev = event_new(gw->base, -1, EV_PERSIST, http_on_tick, hs);
	hs->admin = http_admin_new(gw);
	if (hs->ip_rate == NULL || hs->gate == NULL || hs->tick_ev == NULL || hs->admin == NULL ||
	    event_add(hs->tick_ev, &tick) < 0) {
		snprintf(err, errlen, "out of memory");
		http_server_free(hs);
		return NULL;
	}
	if (tls) {
		hs->ssl_ctx = tls_server_ctx_new(cfg->tls_cert_file, cfg->tls_key_file, err, errlen);
		if (hs->ssl_ctx == NULL) {
			http_server_free(hs);
			return NULL;
		}
	}
	/* tls_port 0: the main port speaks TLS; otherwise a second listener. */
	hs->nlis = 1;
	if (listener_open(hs, &hs->lis[0], cfg->listen_port, tls && cfg->tls_port == 0, err, errlen) < 0 ||
	    (tls && cfg->tls_port != 0 &&
	    (hs->nlis = 2, listener_open(hs, &hs->lis[1], cfg->tls_port, true, err, errlen)) < 0)) {
		http_server_free(hs);
		return NULL;
	}
	return hs;
}

int http_server_reload_tls(struct http_server *hs, const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx;

	if (hs->ssl_ctx == NULL)
		return 0;
	ctx = tls_server_ctx_new(cert, key, err, errlen);
	if (ctx == NULL)
		return -1;
	/* Connections in progress keep their own reference to the old one. */
	SSL_CTX_free(hs->ssl_ctx);
	hs->ssl_ctx = ctx;
	return 1;
}

int http_server_set_admin_keys(struct http_server *hs, const struct config_list *keys)
{
	return http_admin_set_keys(hs->admin, keys);
}

void http_server_stop_listening(struct http_server *hs)
{
	if (hs == NULL)
		return;
	for (int i = 0; i < hs->nlis; i++) {
		struct listener *l = &hs->lis[i];

		if (l->bound != NULL) {
			evhttp_del_accept_socket(l->http, l->bound);
			l->bound = NULL;
		}
	}
}

void http_server_free(struct http_server *hs)
{
	if (hs == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		struct listener *l = &hs->lis[i];

		if (l->http != NULL)
			evhttp_free(l->http);
	}
	http_gate_free(hs->gate);
	http_admin_free(hs->admin);
	if (hs->tick_ev != NULL)
		event_free(hs->tick_ev);
	ip_rate_free(hs->ip_rate);
	if (hs->ssl_ctx != NULL)
		SSL_CTX_free(hs->ssl_ctx);
	free(hs);
}
