#include "autoconfig.h"

#include "http_server.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "config.h"
#include "demo_page.h"
#include "dispatch.h"
#include "http_push.h"
#include "http_reply.h"
#include "metrics.h"
#include "log.h"
#include "notifyd.h"
#include "target.h"
#include "ws_conn.h"
#include "ws_handshake.h"

#define HTTP_MAX_HEADERS 8192

struct http_server {
	struct gateway *gw;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
};

static void http_error(struct evhttp_request *req, int code, const char *msg)
{
	http_reply_error(req, code, msg);
}

static const char *hdr(struct evhttp_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req), name);
}

/* A page served by notifyd itself (the demo) is always welcome: its Origin
 * is scheme://Host of this very request, which another site cannot forge. */
static int same_origin(struct evhttp_request *req)
{
	const char *origin = hdr(req, "Origin"), *host = hdr(req, "Host");
	const char *rest;

	if (origin == NULL || host == NULL)
		return 0;
	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return 0;
	return strcasecmp(rest, host) == 0;
}

static void http_on_ws(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	struct gateway *gw = hs->gw;
	const struct config *cfg = gw->cfg;
	struct ws_upgrade_request up;
	struct evkeyvalq params;
	const char *why = NULL, *query, *user;
	int code;

	up.is_get = evhttp_request_get_command(req) == EVHTTP_REQ_GET;
	up.http_major = req->major;
	up.http_minor = req->minor;
	up.upgrade = hdr(req, "Upgrade");
	up.connection = hdr(req, "Connection");
	up.key = hdr(req, "Sec-WebSocket-Key");
	up.version = hdr(req, "Sec-WebSocket-Version");
	code = ws_handshake_check(&up, &why);
	if (code != 0) {
		if (code == 426)
			evhttp_add_header(evhttp_request_get_output_headers(req), "Sec-WebSocket-Version", "13");
		stats_add(&gw->stats->ws_rejected, 1);
		log_info("ws_handshake_refused", "status=%d why=\"%s\"", code, why ? why : "");
		http_error(req, code, why ? why : "malformed upgrade");
		return;
	}
	if (!same_origin(req) && !ws_origin_allowed(hdr(req, "Origin"),
	    (const char *const *)cfg->allowed_origins.item, cfg->allowed_origins.n)) {
		stats_add(&gw->stats->ws_rejected, 1);
		log_info("ws_handshake_refused", "status=403 why=origin");
		http_error(req, 403, "origin not allowed");
		return;
	}
	if (gw->draining) {
		stats_add(&gw->stats->ws_rejected, 1);
		http_error(req, 503, "server shutting down");
		return;
	}
	if (gw->reg.nconns >= cfg->max_connections) {
		stats_add(&gw->stats->ws_rejected, 1);
		log_warn("ws_limit_reached", "limit=connections max=%u", cfg->max_connections);
		http_error(req, 503, "connection limit reached");
		return;
	}
	query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	params.tqh_first = NULL;
	params.tqh_last = &params.tqh_first;
	if (query != NULL && evhttp_parse_query_str(query, &params) < 0) {
		evhttp_clear_headers(&params);
		stats_add(&gw->stats->ws_rejected, 1);
		http_error(req, 400, "malformed query string");
		return;
	}
	/* auth = none is the only mode so far: the user names itself. */
	user = evhttp_find_header(&params, "userId");
	if (user == NULL)
		user = evhttp_find_header(&params, "user_id");
	if (user == NULL || !target_id_valid(user, strlen(user))) {
		evhttp_clear_headers(&params);
		stats_add(&gw->stats->ws_rejected, 1);
		http_error(req, 400, "missing or invalid userId");
		return;
	}
	if (ws_conn_upgrade(gw, req, up.key, user, strlen(user)) == NULL)
		http_error(req, 500, "cannot accept the connection");
	evhttp_clear_headers(&params);
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

	for (int i = 0; i < REJECT_REASON_COUNT; i++)
		rejected += stats_get(&st->rejected[i]);
	if (gw->broker.error[0] != '\0')
		log_quote(err, sizeof(err), gw->broker.error, sizeof(gw->broker.error));
	else
		snprintf(err, sizeof(err), "null");
	n = snprintf(body, sizeof(body),
	    "{\"status\":\"%s\",\"version\":\"%s\",\"uptime_s\":%llu,"
	    "\"broker\":{\"state\":\"%s\",\"last_error\":%s,\"reconnects\":%llu},"
	    "\"connections\":%zu,\"users\":%zu,\"in_flight\":%llu,"
	    "\"messages\":{\"consumed\":%llu,\"delivered\":%llu,\"undelivered\":%llu,"
	    "\"rejected\":%llu,\"acked\":%llu}}\n",
	    up ? "ok" : (gw->draining ? "draining" : "unavailable"), PACKAGE_VERSION,
	    (unsigned long long)((notifyd_now_ms() - gw->started_ms) / 1000),
	    broker_state_name(gw->broker.state), err,
	    (unsigned long long)stats_get(&st->broker_reconnects),
	    gw->reg.nconns, gw->reg.nusers,
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

	if (hs->gw->draining) {
		stats_add(&hs->gw->stats->push_status[PUSH_503], 1);
		http_error(req, 503, "server shutting down");
		return;
	}
	http_push_handle(hs->gw->push, req);
}

static void http_on_metrics(struct evhttp_request *req, void *arg)
{
	struct http_server *hs = arg;
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		http_error(req, 500, "out of memory");
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

	if (hs->gw->cfg->demo && path != NULL && (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)) {
		http_reply_body(req, 200, "text/html; charset=utf-8", demo_page_html, demo_page_len);
		return;
	}
	http_error(req, 404, "not found");
}

struct http_server *http_server_start(struct gateway *gw, char *err, size_t errlen)
{
	const struct config *cfg = gw->cfg;
	struct http_server *hs = calloc(1, sizeof(*hs));
	struct addrinfo hints, *ai = NULL;
	struct evconnlistener *lis;
	struct timeval tv;
	char port[8];
	int rc;

	if (hs == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	hs->gw = gw;
	hs->http = evhttp_new(gw->base);
	if (hs->http == NULL) {
		snprintf(err, errlen, "evhttp_new failed");
		free(hs);
		return NULL;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", (unsigned)cfg->listen_port);
	rc = getaddrinfo(cfg->listen_address, port, &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "listen_address %s: %s", cfg->listen_address, gai_strerror(rc));
		http_server_free(hs);
		return NULL;
	}
	/* Our own listener for a deep backlog: reconnect storms come in waves. */
	lis = evconnlistener_new_bind(gw->base, NULL, NULL,
	    LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 4096,
	    ai->ai_addr, (int)ai->ai_addrlen);
	freeaddrinfo(ai);
	if (lis == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", cfg->listen_address,
		    (unsigned)cfg->listen_port, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		http_server_free(hs);
		return NULL;
	}
	hs->bound = evhttp_bind_listener(hs->http, lis);
	if (hs->bound == NULL) {
		evconnlistener_free(lis);
		snprintf(err, errlen, "evhttp_bind_listener failed");
		http_server_free(hs);
		return NULL;
	}
	/* Bounds the header phase: a client that trickles its request is
	 * dropped when this runs out. */
	tv.tv_sec = cfg->handshake_timeout_ms / 1000;
	tv.tv_usec = (cfg->handshake_timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(hs->http, &tv);
	evhttp_set_max_headers_size(hs->http, HTTP_MAX_HEADERS);
	/* Above push_max_body we answer 413 in JSON ourselves; evhttp's own
	 * (HTML) 413 only meets bodies far beyond it. */
	evhttp_set_max_body_size(hs->http, (ev_ssize_t)(cfg->push_max_body * 4 + 4096));
	evhttp_set_allowed_methods(hs->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
	    EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_cb(hs->http, "/ws", http_on_ws, hs);
	evhttp_set_cb(hs->http, "/health", http_on_health, hs);
	evhttp_set_cb(hs->http, "/push", http_on_push, hs);
	evhttp_set_cb(hs->http, "/metrics", http_on_metrics, hs);
	evhttp_set_gencb(hs->http, http_on_other, hs);
	log_info("http_listening", "address=%s port=%u", cfg->listen_address, (unsigned)cfg->listen_port);
	return hs;
}

void http_server_stop_listening(struct http_server *hs)
{
	if (hs != NULL && hs->bound != NULL) {
		evhttp_del_accept_socket(hs->http, hs->bound);
		hs->bound = NULL;
	}
}

void http_server_free(struct http_server *hs)
{
	if (hs == NULL)
		return;
	if (hs->http != NULL)
		evhttp_free(hs->http);
	free(hs);
}
