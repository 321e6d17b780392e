/* http_admin.c - the admin API (see http_admin.h). */
#include "autoconfig.h"

#include "http_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "config.h"
#include "control.h"
#include "http_reply.h"
#include "ip_rate.h"
#include "keyring.h"
#include "log.h"
#include "notifyd.h"
#include "sessions.h"
#include "target.h"

#define ADMIN_FAIL_IDLE_MS 2000

struct http_admin {
	struct gateway *gw;
	struct keyring *keys;
	struct ip_rate *fails;		/* failed keys per address */
	uint64_t fails_sweep_ms;
};

struct http_admin *http_admin_new(struct gateway *gw)
{
	struct http_admin *ha = calloc(1, sizeof(*ha));

	if (ha == NULL)
		return NULL;
	ha->gw = gw;
	ha->keys = keyring_new(&gw->cfg->admin_keys);
	ha->fails = ip_rate_new(gw->cfg->push_auth_fail_rate);
	if (ha->keys == NULL || ha->fails == NULL) {
		http_admin_free(ha);
		return NULL;
	}
	return ha;
}

void http_admin_free(struct http_admin *ha)
{
	if (ha == NULL)
		return;
	keyring_free(ha->keys);
	ip_rate_free(ha->fails);
	free(ha);
}

int http_admin_set_keys(struct http_admin *ha, const struct config_list *keys)
{
	return keyring_set(ha->keys, keys);
}

static bool prefix(const char *path, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && memcmp(path, p, n) == 0;
}

bool http_admin_owns(const char *path, size_t len)
{
	return prefix(path, len, "/users/") || (len == 9 && prefix(path, len, "/presence")) ||
	    (len == 7 && prefix(path, len, "/revoke"));
}

int http_admin_admit(struct http_admin *ha, const char *authorization, const char *addr, uint64_t now_ms,
    const char **why, const char **header)
{
	*header = NULL;
	if (addr == NULL)
		addr = "?";
	if (keyring_count(ha->keys) == 0) {
		*why = "the admin API is disabled: no admin_keys configured";
		return 403;
	}
	if (now_ms >= ha->fails_sweep_ms) {
		ip_rate_expire(ha->fails, now_ms, ADMIN_FAIL_IDLE_MS);
		ha->fails_sweep_ms = now_ms + 1000;
	}
	if (!ip_rate_peek(ha->fails, addr, now_ms)) {
		*why = "too many failed admin authentications from this address";
		*header = "Retry-After: 1";
		return 429;
	}
	if (keyring_ok(ha->keys, authorization))
		return 0;
	(void)ip_rate_allow(ha->fails, addr, now_ms);
	log_warn("admin_auth_failed", "addr=%s", addr);
	*why = "missing or wrong admin key";
	*header = "WWW-Authenticate: Bearer";
	return 401;
}

static void admin_reply(struct evhttp_request *req, int status, cJSON *body)
{
	char *text = cJSON_PrintUnformatted(body);

	cJSON_Delete(body);
	if (text == NULL) {
		http_reply_error(req, 500, "out of memory");
		return;
	}
	http_reply_json(req, status, text, strlen(text));
	free(text);
}

static void admin_refuse(struct evhttp_request *req, int status, const char *why, const char *header)
{
	if (header != NULL) {
		const char *colon = strchr(header, ':');
		char name[32];

		snprintf(name, sizeof(name), "%.*s", (int)(colon - header), header);
		evhttp_add_header(evhttp_request_get_output_headers(req), name, colon + 2);
	}
	http_reply_error(req, status, why);
}

/* ---- answers that wait ------------------------------------------------------ */

static void admin_command_done(void *arg, bool ok, const char *why)
{
	struct evhttp_request *req = arg;
	cJSON *b;

	if (!ok) {
		http_reply_error(req, 503, why != NULL ? why : "broker unavailable");
		return;
	}
	b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "status", "confirmed");
	admin_reply(req, 200, b);
}

/* A user's connections on every instance, with where each is. */
static void admin_cluster_user(cJSON *b, const struct control_answers *a, const char *user)
{
	cJSON *conns = cJSON_AddArrayToObject(b, "connections");
	const cJSON *ans;

	cJSON_AddStringToObject(b, "user", user);
	cJSON_ArrayForEach(ans, a->answers) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(ans, "instance");
		const cJSON *one;

		cJSON_ArrayForEach(one, cJSON_GetObjectItemCaseSensitive(ans, "connections")) {
			cJSON *d = cJSON_Duplicate(one, true);

			cJSON_AddStringToObject(d, "instance", cJSON_IsString(name) ? name->valuestring : "?");
			cJSON_AddItemToArray(conns, d);
		}
	}
	cJSON_AddBoolToObject(b, "online", cJSON_GetArraySize(conns) > 0);
}

/* Users and connections per instance, and their sums (a user connected to
 * two instances counts twice in "users"). */
static void admin_cluster_counts(cJSON *b, const struct control_answers *a)
{
	cJSON *per = cJSON_AddArrayToObject(b, "instances");
	const cJSON *ans;
	double users = 0, conns = 0;

	cJSON_ArrayForEach(ans, a->answers) {
		const cJSON *u = cJSON_GetObjectItemCaseSensitive(ans, "users");
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(ans, "connections");

		cJSON_AddItemToArray(per, cJSON_Duplicate(ans, true));
		users += cJSON_IsNumber(u) ? u->valuedouble : 0;
		conns += cJSON_IsNumber(c) ? c->valuedouble : 0;
	}
	cJSON_AddNumberToObject(b, "users", users);
	cJSON_AddNumberToObject(b, "connections", conns);
}

static void admin_cluster_done(void *arg, const struct control_answers *a)
{
	struct evhttp_request *req = arg;
	const cJSON *first, *user;
	cJSON *b, *inst;

	if (a->answers == NULL) {
		http_reply_error(req, 500, "out of memory");
		return;
	}
	first = cJSON_GetArrayItem(a->answers, 0);
	user = cJSON_GetObjectItemCaseSensitive(first, "user");
	b = cJSON_CreateObject();
	if (cJSON_IsString(user))
		admin_cluster_user(b, a, user->valuestring);
	else
		admin_cluster_counts(b, a);
	inst = cJSON_AddObjectToObject(b, "cluster");
	cJSON_AddNumberToObject(inst, "asked", a->asked);
	cJSON_AddNumberToObject(inst, "answered", cJSON_GetArraySize(a->answers));
	cJSON_AddItemToObject(inst, "missing", cJSON_Duplicate(a->missing, true));
	admin_reply(req, 200, b);
}

/* ---- requests ------------------------------------------------------------------ */

static bool admin_cluster_scope(struct evhttp_request *req, bool *bad)
{
	const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq params = { NULL, NULL };
	const char *scope;
	bool cluster = false;

	*bad = false;
	params.tqh_last = &params.tqh_first;
	if (query == NULL)
		return false;
	if (evhttp_parse_query_str(query, &params) < 0) {
		*bad = true;
		return false;
	}
	scope = evhttp_find_header(&params, "scope");
	if (scope != NULL && strcmp(scope, "cluster") == 0)
		cluster = true;
	else if (scope != NULL && strcmp(scope, "local") != 0)
		*bad = true;
	evhttp_clear_headers(&params);
	return cluster;
}

/* The request body as a JSON object; an empty body is {}.  NULL with *why. */
static cJSON *admin_body(struct evhttp_request *req, const char **why)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	char buf[HTTP_ADMIN_BODY_MAX + 1];
	cJSON *b;

	if (len > HTTP_ADMIN_BODY_MAX) {
		*why = "body larger than 4096 bytes";
		return NULL;
	}
	if (len == 0)
		return cJSON_CreateObject();
	evbuffer_copyout(in, buf, len);
	buf[len] = '\0';
	b = cJSON_ParseWithLength(buf, len);
	if (!cJSON_IsObject(b)) {
		cJSON_Delete(b);
		*why = "body is not a JSON object";
		return NULL;
	}
	return b;
}

static void admin_disconnect(struct http_admin *ha, struct evhttp_request *req, const char *user)
{
	const char *why = NULL, *reason = "logout", *message = NULL;
	cJSON *b = admin_body(req, &why), *cmd, *v;
	double block = 0;
	int code = CLOSE_LOGGED_OUT;
	bool revoke = false;

	if (b == NULL) {
		http_reply_error(req, 400, why);
		return;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(b, "reason")) != NULL) {
		if (!cJSON_IsString(v) || (strcmp(v->valuestring, "logout") != 0 &&
		    strcmp(v->valuestring, "ban") != 0 && strcmp(v->valuestring, "revoke") != 0))
			why = "reason must be \"logout\", \"ban\" or \"revoke\"";
		else
			reason = v->valuestring;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(b, "message")) != NULL) {
		if (!cJSON_IsString(v) || strlen(v->valuestring) > 123)
			why = "message must be a string of at most 123 bytes";
		else
			message = v->valuestring;
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(b, "block")) != NULL) {
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 366.0 * 86400)
			why = "block must be a number of seconds from 0 to 31622400";
		else
			block = v->valuedouble;
	}
	if (why != NULL) {
		cJSON_Delete(b);
		http_reply_error(req, 400, why);
		return;
	}
	if (strcmp(reason, "logout") != 0)
		code = CLOSE_REVOKED;
	revoke = strcmp(reason, "revoke") == 0;
	cmd = cJSON_CreateObject();
	if (revoke) {
		/* Every token of the user issued until now; the close reason is
		 * "revoked" whatever the message, as for a token id. */
		cJSON_AddStringToObject(cmd, "type", "revoke");
		cJSON_AddStringToObject(cmd, "user", user);
		cJSON_AddNumberToObject(cmd, "before", (double)time(NULL));
		cJSON_AddNumberToObject(cmd, "until", (double)(time(NULL) + (time_t)ha->gw->cfg->revocation_max_age_s));
	} else {
		cJSON_AddStringToObject(cmd, "type", "disconnect");
		cJSON_AddStringToObject(cmd, "user", user);
		cJSON_AddNumberToObject(cmd, "code", code);
		cJSON_AddStringToObject(cmd, "reason", message != NULL ? message : code == CLOSE_LOGGED_OUT ?
		    "logged out" : "banned");
		if (block > 0)
			cJSON_AddNumberToObject(cmd, "block", block);
	}
	cJSON_Delete(b);
	control_command(ha->gw->control, cmd, admin_command_done, req);
}

static void admin_revoke(struct http_admin *ha, struct evhttp_request *req)
{
	const char *why = NULL;
	cJSON *b = admin_body(req, &why), *cmd, *v;
	const cJSON *jti, *user;
	time_t now = time(NULL);
	double until = (double)(now + (time_t)ha->gw->cfg->revocation_max_age_s);

	if (b == NULL) {
		http_reply_error(req, 400, why);
		return;
	}
	jti = cJSON_GetObjectItemCaseSensitive(b, "jti");
	user = cJSON_GetObjectItemCaseSensitive(b, "user");
	if ((jti == NULL) == (user == NULL))
		why = "give exactly one of jti and user";
	else if (jti != NULL && (!cJSON_IsString(jti) || jti->valuestring[0] == '\0' ||
	    strlen(jti->valuestring) > SESSION_KEY_MAX))
		why = "jti must be a string of 1 to 128 bytes";
	else if (user != NULL && (!cJSON_IsString(user) ||
	    !target_id_valid(user->valuestring, strlen(user->valuestring))))
		why = "invalid user id";
	if ((v = cJSON_GetObjectItemCaseSensitive(b, "until")) != NULL) {
		if (!cJSON_IsNumber(v) || v->valuedouble <= (double)now ||
		    v->valuedouble > (double)now + 366.0 * 86400)
			why = "until must be a future Unix time within a year";
		else
			until = v->valuedouble;
	}
	if (why != NULL) {
		cJSON_Delete(b);
		http_reply_error(req, 400, why);
		return;
	}
	cmd = cJSON_CreateObject();
	cJSON_AddStringToObject(cmd, "type", "revoke");
	if (jti != NULL)
		cJSON_AddStringToObject(cmd, "jti", jti->valuestring);
	else
		cJSON_AddStringToObject(cmd, "user", user->valuestring);
	cJSON_AddNumberToObject(cmd, "before", (double)now);
	cJSON_AddNumberToObject(cmd, "until", until);
	cJSON_Delete(b);
	control_command(ha->gw->control, cmd, admin_command_done, req);
}

/* "/users/<id>" or "/users/<id>/disconnect": the id, decoded (caller
 * frees), and whether the action was named. */
static char *admin_user_path(const char *path, bool *disconnect, bool *bad)
{
	const char *id = path + strlen("/users/"), *slash = strchr(id, '/');
	size_t n = slash != NULL ? (size_t)(slash - id) : strlen(id);
	char *raw, *user;
	size_t len = 0;

	*bad = false;
	*disconnect = false;
	if (slash != NULL) {
		if (strcmp(slash, "/disconnect") != 0)
			return NULL;
		*disconnect = true;
	}
	raw = strndup(id, n);
	if (raw == NULL)
		return NULL;
	user = evhttp_uridecode(raw, 0, &len);
	free(raw);
	if (user == NULL || len != strlen(user) || !target_id_valid(user, len)) {
		free(user);
		*bad = true;
		return NULL;
	}
	return user;
}

/* A user's connections, or the counts (user NULL), here or everywhere. */
static void admin_presence(struct http_admin *ha, struct evhttp_request *req, const char *user)
{
	bool bad, cluster = admin_cluster_scope(req, &bad);

	if (bad)
		http_reply_error(req, 400, "scope must be local or cluster");
	else if (cluster)
		control_ask(ha->gw->control, user, admin_cluster_done, req);
	else
		admin_reply(req, 200, control_local_answer(ha->gw->control, user));
}

static void admin_method(struct evhttp_request *req, const char *allow)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
	http_reply_error(req, 405, strcmp(allow, "GET") == 0 ? "use GET" : "use POST");
}

void http_admin_handle(struct http_admin *ha, struct evhttp_request *req, bool admitted)
{
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	bool get = cmd == EVHTTP_REQ_GET, post = cmd == EVHTTP_REQ_POST, bad, disconnect;
	char *peer = NULL, *user;
	ev_uint16_t port = 0;

	if (!admitted) {
		const char *why, *header;
		int status;

		evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer, &port);
		status = http_admin_admit(ha, evhttp_find_header(evhttp_request_get_input_headers(req),
		    "Authorization"), peer, clock_now_ms(), &why, &header);
		if (status != 0) {
			admin_refuse(req, status, why, header);
			return;
		}
	}
	if (ha->gw->control == NULL) {
		http_reply_error(req, 503, "the control plane is not running");
		return;
	}
	if (strcmp(path, "/presence") == 0) {
		if (!get)
			admin_method(req, "GET");
		else
			admin_presence(ha, req, NULL);
		return;
	}
	if (strcmp(path, "/revoke") == 0) {
		if (!post)
			admin_method(req, "POST");
		else
			admin_revoke(ha, req);
		return;
	}
	user = admin_user_path(path, &disconnect, &bad);
	if (user == NULL) {
		http_reply_error(req, bad ? 400 : 404, bad ? "invalid user id" : "not found");
		return;
	}
	if (disconnect) {
		if (!post)
			admin_method(req, "POST");
		else
			admin_disconnect(ha, req, user);
	} else if (!get) {
		admin_method(req, "GET");
	} else {
		admin_presence(ha, req, user);
	}
	free(user);
}
