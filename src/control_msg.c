/* control_msg.c - reading control messages (see control_msg.h). */
#include "autoconfig.h"

#include "control_msg.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char *const type_names[CM_TYPE_COUNT] = {
	[CM_HELLO] = "hello", [CM_BYE] = "bye", [CM_UP] = "up", [CM_LINGER] = "linger", [CM_GONE] = "gone",
	[CM_USERS] = "users", [CM_RULE] = "rule", [CM_DISCONNECT] = "disconnect", [CM_REVOKE] = "revoke",
	[CM_PRESENCE] = "presence",
};

static const char *const rule_names[] = { "ban", "revoke_user", "revoke_jti" };

const char *control_rule_name(enum session_kind k)
{
	return (unsigned)k < sizeof(rule_names) / sizeof(rule_names[0]) ? rule_names[k] : "?";
}

static const char *str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A string into a buffer: true when present, fitting and not empty. */
static bool copy(const cJSON *o, const char *name, char *dst, size_t cap)
{
	const char *s = str(o, name);
	size_t n;

	if (s == NULL || (n = strlen(s)) == 0 || n >= cap)
		return false;
	memcpy(dst, s, n + 1);
	return true;
}

/* A number within [lo, hi], else dflt (NaN included). */
static double num(const cJSON *o, const char *name, double lo, double hi, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
		return dflt;
	return v->valuedouble;
}

/* Unix times up to year 9999: far inside time_t, and beyond any token. */
#define TIME_MAX 253402300799.0

static bool user_ok(const char *s)
{
	return s != NULL && target_id_valid(s, strlen(s));
}

int control_msg_parse(const char *text, size_t len, struct control_msg *m)
{
	const char *type;
	int t;

	memset(m, 0, sizeof(*m));
	m->root = cJSON_ParseWithLength(text, len);
	type = str(m->root, "type");
	for (t = 0; type != NULL && t < CM_TYPE_COUNT; t++)
		if (strcmp(type, type_names[t]) == 0)
			break;
	if (!cJSON_IsObject(m->root) || type == NULL || t == CM_TYPE_COUNT ||
	    !copy(m->root, "instance", m->instance, sizeof(m->instance)) ||
	    !copy(m->root, "boot", m->boot, sizeof(m->boot))) {
		control_msg_free(m);
		return -1;
	}
	m->type = (enum control_type)t;
	m->has_user = user_ok(str(m->root, "user")) && copy(m->root, "user", m->user, sizeof(m->user));
	m->has_jti = copy(m->root, "jti", m->jti, sizeof(m->jti));
	m->has_reason = copy(m->root, "reason", m->reason, sizeof(m->reason));
	m->code = num(m->root, "code", 0, 65535, CLOSE_LOGGED_OUT) == CLOSE_REVOKED ? CLOSE_REVOKED : CLOSE_LOGGED_OUT;
	m->block_s = (uint32_t)num(m->root, "block", 0, CONTROL_SPAN_MAX, 0);
	m->before = (time_t)num(m->root, "before", 0, TIME_MAX, 0);
	m->until = (time_t)num(m->root, "until", 0, TIME_MAX, 0);
	m->since_ms = (uint64_t)num(m->root, "since", 0, TIME_MAX * 1000.0, 0);
	m->sync = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m->root, "sync"));
	if (m->type == CM_USERS) {
		m->users = cJSON_GetObjectItemCaseSensitive(m->root, "users");
		if (!cJSON_IsArray(m->users))
			m->users = NULL;
	}
	if (m->type == CM_RULE) {
		const char *kind = str(m->root, "kind");
		size_t k;

		for (k = 0; kind != NULL && k < sizeof(rule_names) / sizeof(rule_names[0]); k++)
			if (strcmp(kind, rule_names[k]) == 0)
				break;
		if (kind == NULL || k == sizeof(rule_names) / sizeof(rule_names[0]) ||
		    !copy(m->root, "key", m->jti, sizeof(m->jti)) ||
		    (k != SESSION_REVOKE_JTI && !user_ok(m->jti))) {
			control_msg_free(m);
			return -1;
		}
		m->rule = (enum session_kind)k;
	}
	return 0;
}

void control_msg_free(struct control_msg *m)
{
	cJSON_Delete(m->root);
	m->root = NULL;
	m->users = NULL;
}

int control_msg_user(const struct control_msg *m, int i, char user[TARGET_ID_MAX + 1],
    enum presence_gossip *state, uint64_t *since_ms)
{
	const cJSON *e = m->users != NULL ? cJSON_GetArrayItem(m->users, i) : NULL;
	const cJSON *name, *st, *since;
	size_t n;

	if (e == NULL)
		return -1;
	name = cJSON_GetArrayItem(e, 0);
	st = cJSON_GetArrayItem(e, 1);
	since = cJSON_GetArrayItem(e, 2);
	if (!cJSON_IsString(name) || !user_ok(name->valuestring) || !cJSON_IsString(st) ||
	    !cJSON_IsNumber(since) || !(since->valuedouble >= 0 && since->valuedouble <= TIME_MAX * 1000.0))
		return 0;
	if (strcmp(st->valuestring, "up") == 0)
		*state = GOSSIP_UP;
	else if (strcmp(st->valuestring, "linger") == 0)
		*state = GOSSIP_LINGER;
	else if (strcmp(st->valuestring, "gone") == 0)
		*state = GOSSIP_GONE;
	else
		return 0;
	n = strlen(name->valuestring);
	memcpy(user, name->valuestring, n + 1);
	*since_ms = (uint64_t)since->valuedouble;
	return 1;
}
