/* control.c - the control plane on the event loop (see control.h).
 *
 * Every control message is one JSON object with "type", and "instance" and
 * "boot" naming its sender (boot: random per start, so that a restart is
 * told apart from a heartbeat).  Types: hello (heartbeat; "sync": send me
 * your state), bye, users (presence gossip, [user, up|linger|gone, since]
 * in batches), rule (a ban or a revocation in force, for an instance that
 * starts), disconnect, revoke, presence (a question, with reply_to).
 */
#include "autoconfig.h"

#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/rand.h>

#include "clock.h"
#include "config.h"
#include "control_msg.h"
#include "conn_registry.h"
#include "log.h"
#include "mq_control.h"
#include "notifyd.h"
#include "presence.h"
#include "sessions.h"
#include "stats.h"
#include "target.h"
#include "ws_conn.h"
#include "xqueue.h"

#define CONTROL_TICK_MS 100
#define CONTROL_SWEEP_MS 1000
#define CONTROL_IN_BATCH 64
#define CONTROL_BODY_MAX (1024 * 1024)
#define CONTROL_SNAPSHOT_USERS 500	/* users per gossip message */
#define CONTROL_HELD_MAX 1024		/* sends held in one pass before they cross */

/* A command waiting for the broker's confirm. */
struct pending {
	TAILQ_ENTRY(pending) link;
	uint64_t id, deadline_ms;
	control_done_fn done;
	void *arg;
};

/* A cluster question waiting for answers. */
struct question {
	TAILQ_ENTRY(question) link;
	char corr[CTL_CORR_MAX];
	uint64_t deadline_ms;
	cJSON *answers;			/* array, this instance's first */
	cJSON *waiting;			/* array of names not heard from yet */
	uint32_t asked;
	control_answer_fn done;
	void *arg;
};

struct control {
	struct gateway *gw;
	const struct config *cfg;
	struct xqueue *outq, *inq;
	struct event *in_ev, *tick_ev, *flush_ev;
	cJSON *gossip;			/* users not told yet (a "users" list) */
	struct ctl_out *held;		/* sends of this loop pass, in order */
	size_t nheld, held_cap;
	char boot[PRESENCE_BOOT_MAX];
	uint64_t next_id;
	uint64_t next_beat_ms, next_sweep_ms;
	bool link_up;
	uint64_t clash_log_ms;
	TAILQ_HEAD(pending_list, pending) pending;
	TAILQ_HEAD(question_list, question) questions;
};

const char *control_instance(const struct control *c)
{
	return c->cfg->instance_name;
}

/* ---- out ------------------------------------------------------------------ */

/* Hand the held sends to the control thread: one lock and one wake-up for
 * all of them. */
static void control_push_held(struct control *c)
{
	size_t n = xqueue_push_n(c->outq, c->held, c->nheld);

	for (size_t i = n; i < c->nheld; i++) {
		free(c->held[i].body);
		stats_add(&c->gw->stats->control_dropped, 1);
	}
	c->nheld = 0;
}

/* Sends wait for the end of the loop pass (flush_ev) and cross together:
 * a connect storm with events on wakes the control thread once per pass,
 * not once per new user. */
static void control_hold(struct control *c, const struct ctl_out *o)
{
	if (c->nheld == CONTROL_HELD_MAX)
		control_push_held(c);
	if (c->nheld == c->held_cap) {
		size_t ncap = c->held_cap != 0 ? 2 * c->held_cap : 64;
		struct ctl_out *n = realloc(c->held, ncap * sizeof(*n));

		if (n == NULL) {
			free(o->body);
			stats_add(&c->gw->stats->control_dropped, 1);
			return;
		}
		c->held = n;
		c->held_cap = ncap;
	}
	c->held[c->nheld++] = *o;
	if (!event_pending(c->flush_ev, EV_TIMEOUT, NULL))
		event_active(c->flush_ev, EV_TIMEOUT, 0);
}

static void control_send(struct control *c, enum ctl_out_kind kind, uint64_t id, const char *rk,
    const char *corr, cJSON *msg)
{
	struct ctl_out o = { .id = id, .kind = kind };

	o.body = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	if (o.body == NULL) {
		stats_add(&c->gw->stats->control_dropped, 1);
		return;
	}
	o.len = strlen(o.body);
	if (rk != NULL)
		snprintf(o.routing_key, sizeof(o.routing_key), "%s", rk);
	if (corr != NULL)
		snprintf(o.correlation_id, sizeof(o.correlation_id), "%s", corr);
	control_hold(c, &o);
}

/* A message of ours, with its sender. */
static cJSON *control_msg(const struct control *c, const char *type)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "type", type);
	cJSON_AddStringToObject(m, "instance", c->cfg->instance_name);
	cJSON_AddStringToObject(m, "boot", c->boot);
	return m;
}

static void control_hello(struct control *c, bool sync)
{
	cJSON *m = control_msg(c, "hello");

	if (sync)
		cJSON_AddBoolToObject(m, "sync", true);
	control_send(c, CTL_OUT_COMMAND, 0, NULL, NULL, m);
}

static const char *const gossip_names[] = { "up", "linger", "gone" };

/* Gossip goes out in batches ("users" messages): one per loop pass, or
 * per CONTROL_SNAPSHOT_USERS users, so that a connect storm costs the
 * broker a message per pass, not per user. */
static void control_flush_gossip(struct control *c)
{
	cJSON *m;

	if (c->gossip == NULL || cJSON_GetArraySize(c->gossip) == 0)
		return;
	m = control_msg(c, "users");
	cJSON_AddItemToObject(m, "users", c->gossip);
	c->gossip = NULL;
	control_send(c, CTL_OUT_COMMAND, 0, NULL, NULL, m);
}

static void control_on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;

	(void)fd;
	(void)what;
	control_flush_gossip(c);
	control_push_held(c);
}

static void control_gossip(void *arg, enum presence_gossip type, const char *user, size_t len, uint64_t since_ms)
{
	struct control *c = arg;
	cJSON *u = cJSON_CreateArray();

	(void)len;
	if (c->gossip == NULL)
		c->gossip = cJSON_CreateArray();
	cJSON_AddItemToArray(u, cJSON_CreateString(user));
	cJSON_AddItemToArray(u, cJSON_CreateString(gossip_names[type]));
	cJSON_AddItemToArray(u, cJSON_CreateNumber((double)since_ms));
	cJSON_AddItemToArray(c->gossip, u);
	if (cJSON_GetArraySize(c->gossip) >= CONTROL_SNAPSHOT_USERS)
		control_flush_gossip(c);
	else if (!event_pending(c->flush_ev, EV_TIMEOUT, NULL))
		event_active(c->flush_ev, EV_TIMEOUT, 0);
}

static cJSON *control_event_msg(const struct control *c, const char *type, const char *user)
{
	cJSON *m = cJSON_CreateObject();

	cJSON_AddStringToObject(m, "type", type);
	cJSON_AddStringToObject(m, "user", user);
	cJSON_AddStringToObject(m, "instance", c->cfg->instance_name);
	cJSON_AddNumberToObject(m, "time", (double)clock_wall_ms());
	return m;
}

static void control_event(void *arg, const char *type, const char *user, size_t len)
{
	struct control *c = arg;

	(void)len;
	stats_add(&c->gw->stats->events_published, 1);
	control_send(c, CTL_OUT_EVENT, 0, type, NULL, control_event_msg(c, type, user));
}

static void control_undelivered(void *arg, const struct presence_message *u)
{
	struct control *c = arg;
	cJSON *m = control_event_msg(c, "undelivered", u->user);
	char *body = malloc(u->body_len + 1);
	char *rk = malloc(u->rk_len + 1);

	if (body == NULL || rk == NULL) {
		free(body);
		free(rk);
		cJSON_Delete(m);
		stats_add(&c->gw->stats->control_dropped, 1);
		return;
	}
	/* The body is a JSON object (the workers checked): embedded as it
	 * was published, not re-encoded. */
	memcpy(body, u->body, u->body_len);
	body[u->body_len] = '\0';
	memcpy(rk, u->routing_key, u->rk_len);
	rk[u->rk_len] = '\0';
	cJSON_AddStringToObject(m, "routing_key", rk);
	if (u->id != NULL)
		cJSON_AddStringToObject(m, "id", u->id);
	cJSON_AddItemToObject(m, "body", cJSON_CreateRaw(body));
	free(body);
	free(rk);
	stats_add(&c->gw->stats->events_published, 1);
	control_send(c, CTL_OUT_EVENT, 0, "undelivered", NULL, m);
}

static void control_snapshot_rule(void *arg, const struct session_rule *r)
{
	struct control *c = arg;
	cJSON *m = control_msg(c, "rule");

	cJSON_AddStringToObject(m, "kind", control_rule_name(r->kind));
	cJSON_AddStringToObject(m, "key", r->key);
	cJSON_AddNumberToObject(m, "before", (double)r->before);
	cJSON_AddNumberToObject(m, "until", (double)r->until);
	control_send(c, CTL_OUT_COMMAND, 0, NULL, NULL, m);
}

/* Our users and the rules in force, for instances that know nothing of
 * us yet. */
static void control_snapshot(struct control *c)
{
	/* Older news first, then our heartbeat: gossip from an instance not
	 * yet heard of is ignored. */
	control_flush_gossip(c);
	control_hello(c, false);
	presence_each_local(c->gw->presence, control_gossip, c);
	control_flush_gossip(c);
	sessions_each(c->gw->sessions, time(NULL), control_snapshot_rule, c);
}

/* ---- commands -------------------------------------------------------------- */

void control_command(struct control *c, cJSON *cmd, control_done_fn done, void *arg)
{
	struct pending *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		cJSON_Delete(cmd);
		done(arg, false, "out of memory");
		return;
	}
	p->id = ++c->next_id;
	p->deadline_ms = clock_now_ms() + c->cfg->push_timeout_ms;
	p->done = done;
	p->arg = arg;
	TAILQ_INSERT_TAIL(&c->pending, p, link);
	cJSON_AddStringToObject(cmd, "instance", c->cfg->instance_name);
	cJSON_AddStringToObject(cmd, "boot", c->boot);
	control_send(c, CTL_OUT_COMMAND, p->id, NULL, NULL, cmd);
}

static void control_confirmed(struct control *c, uint64_t id, bool ok, const char *why)
{
	struct pending *p;

	for (p = TAILQ_FIRST(&c->pending); p != NULL; p = TAILQ_NEXT(p, link)) {
		if (p->id == id) {
			TAILQ_REMOVE(&c->pending, p, link);
			p->done(p->arg, ok, why);
			free(p);
			return;
		}
	}
}

struct revoke_match {
	const char *jti;	/* NULL: every connection of the user */
};

static bool control_match_revoked(void *arg, const struct ws_conn_info *i)
{
	const struct revoke_match *r = arg;

	if (r->jti != NULL)
		return strcmp(i->jti, r->jti) == 0;
	return true;
}

static void control_apply_disconnect(struct control *c, const struct control_msg *m)
{
	const char *reason = m->has_reason ? m->reason : m->code == CLOSE_LOGGED_OUT ? "logged out" : "banned";
	size_t ulen = strlen(m->user);
	uint32_t n;
	char uq[TARGET_ID_MAX * 2 + 8], rq[CONTROL_REASON_MAX * 4 + 8];

	if (!m->has_user)
		return;
	if (m->block_s > 0) {
		struct session_rule r = { .kind = SESSION_BAN, .key = m->user, .len = ulen,
		    .until = time(NULL) + (time_t)m->block_s };

		(void)sessions_add(c->gw->sessions, &r);
	}
	n = ws_conn_close_matching(c->gw, m->user, ulen, NULL, NULL, m->code, reason);
	stats_add(&c->gw->stats->disconnected, n);
	log_info("user_disconnect", "user=%s code=%u closed=%u block_s=%u reason=%s from=%s",
	    log_quote(uq, sizeof(uq), m->user, ulen), (unsigned)m->code, n, m->block_s,
	    log_quote(rq, sizeof(rq), reason, strlen(reason)), m->instance);
}

static void control_apply_revoke(struct control *c, const struct control_msg *m)
{
	time_t now = time(NULL);
	struct session_rule r = { .until = m->until != 0 ? m->until : now + (time_t)c->cfg->revocation_max_age_s };
	struct revoke_match match = { .jti = NULL };
	const char *user = NULL;
	uint32_t n;
	char kq[SESSION_KEY_MAX * 2 + 8];

	if (m->has_user) {
		r.kind = SESSION_REVOKE_USER;
		r.key = user = m->user;
		r.before = m->before != 0 ? m->before : now;
	} else if (m->has_jti) {
		r.kind = SESSION_REVOKE_JTI;
		r.key = match.jti = m->jti;
	} else {
		return;
	}
	r.len = strlen(r.key);
	(void)sessions_add(c->gw->sessions, &r);
	n = ws_conn_close_matching(c->gw, user, user != NULL ? r.len : 0, control_match_revoked, &match,
	    CLOSE_REVOKED, "revoked");
	stats_add(&c->gw->stats->disconnected, n);
	log_info("token_revoke", "%s=%s closed=%u until=%lld from=%s", user != NULL ? "user" : "jti",
	    log_quote(kq, sizeof(kq), r.key, r.len), n, (long long)r.until, m->instance);
}

static void control_apply_rule(struct control *c, const struct control_msg *m)
{
	struct session_rule r = { .kind = m->rule, .key = m->jti, .len = strlen(m->jti), .before = m->before,
	    .until = m->until };

	(void)sessions_add(c->gw->sessions, &r);
}

/* ---- presence questions ----------------------------------------------------- */

static void control_add_conn(void *arg, const struct ws_conn_info *i)
{
	cJSON *list = arg, *o = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "id", (double)i->id);
	cJSON_AddStringToObject(o, "transport", i->transport);
	cJSON_AddStringToObject(o, "format", i->format);
	cJSON_AddBoolToObject(o, "compressed", i->compressed);
	cJSON_AddNumberToObject(o, "since", (double)i->since_ms);
	cJSON_AddStringToObject(o, "address", i->address);
	cJSON_AddItemToArray(list, o);
}

cJSON *control_local_answer(struct control *c, const char *user)
{
	cJSON *a = cJSON_CreateObject();

	cJSON_AddStringToObject(a, "instance", c->cfg->instance_name);
	if (user != NULL) {
		cJSON *list = cJSON_CreateArray();

		cJSON_AddStringToObject(a, "user", user);
		ws_conn_each(c->gw, user, strlen(user), control_add_conn, list);
		cJSON_AddItemToObject(a, "connections", list);
	} else {
		cJSON_AddNumberToObject(a, "users", (double)registry_users(&c->gw->reg));
		cJSON_AddNumberToObject(a, "connections", (double)registry_count(&c->gw->reg));
	}
	return a;
}

static void control_question_done(struct control *c, struct question *q)
{
	struct control_answers a = { .answers = q->answers, .missing = q->waiting, .asked = q->asked };

	TAILQ_REMOVE(&c->questions, q, link);
	q->done(q->arg, &a);
	cJSON_Delete(q->answers);
	cJSON_Delete(q->waiting);
	free(q);
}

static void control_add_name(void *arg, const struct presence_instance *i)
{
	if (!i->self)
		cJSON_AddItemToArray(arg, cJSON_CreateString(i->name));
}

void control_ask(struct control *c, const char *user, control_answer_fn done, void *arg)
{
	struct question *q = calloc(1, sizeof(*q));
	cJSON *m;

	if (q == NULL) {
		struct control_answers none = { 0 };

		done(arg, &none);
		return;
	}
	q->done = done;
	q->arg = arg;
	q->answers = cJSON_CreateArray();
	q->waiting = cJSON_CreateArray();
	cJSON_AddItemToArray(q->answers, control_local_answer(c, user));
	presence_each_instance(c->gw->presence, clock_now_ms(), control_add_name, q->waiting);
	q->asked = 1 + (uint32_t)cJSON_GetArraySize(q->waiting);
	q->deadline_ms = clock_now_ms() + c->cfg->presence_timeout_ms;
	snprintf(q->corr, sizeof(q->corr), "%s-%llu", c->boot, (unsigned long long)++c->next_id);
	TAILQ_INSERT_TAIL(&c->questions, q, link);
	if (cJSON_GetArraySize(q->waiting) == 0) {
		control_question_done(c, q);
		return;
	}
	m = control_msg(c, "presence");
	if (user != NULL)
		cJSON_AddStringToObject(m, "user", user);
	control_send(c, CTL_OUT_ASK, 0, NULL, q->corr, m);
}

static void control_on_reply(struct control *c, const struct ctl_in *in)
{
	struct question *q;
	const cJSON *from;
	cJSON *a, *name;
	int i = 0;

	for (q = TAILQ_FIRST(&c->questions); q != NULL; q = TAILQ_NEXT(q, link))
		if (strcmp(q->corr, in->correlation_id) == 0)
			break;
	if (q == NULL)
		return;		/* late: the answer went out without it */
	a = cJSON_Parse(in->body);
	from = cJSON_GetObjectItemCaseSensitive(a, "instance");
	if (!cJSON_IsObject(a) || !cJSON_IsString(from)) {
		cJSON_Delete(a);
		return;
	}
	cJSON_ArrayForEach(name, q->waiting) {
		if (strcmp(name->valuestring, from->valuestring) == 0) {
			cJSON_DeleteItemFromArray(q->waiting, i);
			break;
		}
		i++;
	}
	cJSON_AddItemToArray(q->answers, a);
	if (cJSON_GetArraySize(q->waiting) == 0)
		control_question_done(c, q);
}

/* ---- in ---------------------------------------------------------------------- */

/* Another instance's news about its users. */
static void control_on_users(struct control *c, const struct control_msg *m, uint64_t now)
{
	char user[TARGET_ID_MAX + 1];
	enum presence_gossip st;
	uint64_t since;
	int rc;

	for (int i = 0; (rc = control_msg_user(m, i, user, &st, &since)) >= 0; i++)
		if (rc > 0)
			presence_remote(c->gw->presence, m->instance, m->boot, st, user, strlen(user), since, now);
}

static void control_on_peer(struct control *c, const struct control_msg *m, const struct ctl_in *in,
    uint64_t now)
{
	switch (m->type) {
	case CM_HELLO:
		if (presence_heard(c->gw->presence, m->instance, m->boot, now) || m->sync) {
			log_info("instance_seen", "instance=%s sync=%s", m->instance, m->sync ? "yes" : "no");
			control_snapshot(c);
		}
		break;
	case CM_BYE:
		presence_bye(c->gw->presence, m->instance, m->boot);
		log_info("instance_gone", "instance=%s why=bye", m->instance);
		break;
	case CM_USERS:
		control_on_users(c, m, now);
		break;
	case CM_UP:
	case CM_LINGER:
	case CM_GONE:
		if (m->has_user)
			presence_remote(c->gw->presence, m->instance, m->boot,
			    m->type == CM_UP ? GOSSIP_UP : m->type == CM_LINGER ? GOSSIP_LINGER : GOSSIP_GONE,
			    m->user, strlen(m->user), m->since_ms, now);
		break;
	case CM_RULE:
		control_apply_rule(c, m);
		break;
	case CM_PRESENCE:
		if (in->reply_to[0] != '\0')
			control_send(c, CTL_OUT_ANSWER, 0, in->reply_to, in->correlation_id,
			    control_local_answer(c, m->has_user ? m->user : NULL));
		break;
	default:
		break;
	}
}

static void control_on_message(struct control *c, const struct ctl_in *in)
{
	struct control_msg m;
	uint64_t now = clock_now_ms();
	bool self, namesake;

	if (control_msg_parse(in->body, in->len, &m) < 0) {
		log_warn("control_malformed", "size=%zu", in->len);
		return;
	}
	namesake = strcmp(m.instance, c->cfg->instance_name) == 0;
	self = namesake && strcmp(m.boot, c->boot) == 0;
	switch (m.type) {
	case CM_DISCONNECT:
		control_apply_disconnect(c, &m);
		break;
	case CM_REVOKE:
		control_apply_revoke(c, &m);
		break;
	default:
		if (self)
			break;	/* our own gossip and questions come back too */
		if (namesake) {
			if (now >= c->clash_log_ms) {
				log_warn("instance_name_clash", "instance=%s: another process uses this instance_name",
				    m.instance);
				c->clash_log_ms = now + 60000;
			}
			break;
		}
		control_on_peer(c, &m, in, now);
		break;
	}
	control_msg_free(&m);
}

static void control_on_link(struct control *c, bool up, const char *why)
{
	c->link_up = up;
	if (up) {
		/* Whatever was said while we were away is lost: ask again. */
		control_hello(c, true);
		control_snapshot(c);
		c->next_beat_ms = clock_now_ms() + c->cfg->control_heartbeat_ms;
	} else {
		log_warn("control_link_down", "why=\"%s\"", why);
	}
}

static void control_on_in(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	struct ctl_in in[CONTROL_IN_BATCH];
	size_t n;

	(void)fd;
	(void)what;
	while ((n = xqueue_drain(c->inq, in, CONTROL_IN_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			switch (in[i].kind) {
			case CTL_IN_COMMAND:
				if (in[i].body != NULL && in[i].len <= CONTROL_BODY_MAX)
					control_on_message(c, &in[i]);
				break;
			case CTL_IN_REPLY:
				if (in[i].body != NULL)
					control_on_reply(c, &in[i]);
				break;
			case CTL_IN_CONFIRM:
				control_confirmed(c, in[i].id, in[i].ok, in[i].why);
				break;
			case CTL_IN_LINK:
				control_on_link(c, in[i].ok, in[i].why);
				break;
			}
			ctl_in_clear(&in[i]);
		}
		if (n < CONTROL_IN_BATCH)
			break;
	}
}

static void control_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	uint64_t now = clock_now_ms();
	struct pending *p;
	struct question *q;

	(void)fd;
	(void)what;
	while ((p = TAILQ_FIRST(&c->pending)) != NULL && p->deadline_ms <= now) {
		TAILQ_REMOVE(&c->pending, p, link);
		p->done(p->arg, false, "broker did not confirm in time");
		free(p);
	}
	while ((q = TAILQ_FIRST(&c->questions)) != NULL && q->deadline_ms <= now)
		control_question_done(c, q);
	if (now >= c->next_beat_ms) {
		if (c->link_up)
			control_hello(c, false);
		c->next_beat_ms = now + c->cfg->control_heartbeat_ms;
	}
	if (now >= c->next_sweep_ms) {
		presence_sweep(c->gw->presence, now);
		sessions_expire(c->gw->sessions, time(NULL));
		c->next_sweep_ms = now + CONTROL_SWEEP_MS;
	}
}

/* ---- life --------------------------------------------------------------------- */

struct control *control_new(struct gateway *gw, struct xqueue *outq, struct xqueue *inq)
{
	struct control *c = calloc(1, sizeof(*c));
	struct timeval tick = { 0, CONTROL_TICK_MS * 1000 };
	struct presence_out out = { .gossip = control_gossip };
	unsigned char rnd[8];

	if (c == NULL)
		return NULL;
	c->gw = gw;
	c->cfg = gw->cfg;
	c->outq = outq;
	c->inq = inq;
	TAILQ_INIT(&c->pending);
	TAILQ_INIT(&c->questions);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(c->boot + 2 * i, 3, "%02x", rnd[i]);
	out.arg = c;
	if (gw->cfg->events_exchange[0] != '\0') {
		out.event = control_event;
		out.undelivered = control_undelivered;
	}
	gw->presence = presence_new(gw->cfg->instance_name, &out, gw->cfg->events_offline_delay_ms,
	    gw->cfg->control_heartbeat_ms);
	gw->sessions = sessions_new();
	c->in_ev = event_new(gw->base, xqueue_fd(inq), EV_READ | EV_PERSIST, control_on_in, c);
	c->tick_ev = event_new(gw->base, -1, EV_PERSIST, control_on_tick, c);
	c->flush_ev = event_new(gw->base, -1, 0, control_on_flush, c);
	if (gw->presence == NULL || gw->sessions == NULL || c->in_ev == NULL || c->tick_ev == NULL ||
	    c->flush_ev == NULL ||
	    event_add(c->in_ev, NULL) < 0 || event_add(c->tick_ev, &tick) < 0) {
		control_free(c);
		return NULL;
	}
	gw->control = c;
	return c;
}

void control_goodbye(struct control *c)
{
	if (c != NULL && c->link_up) {
		control_flush_gossip(c);
		control_send(c, CTL_OUT_COMMAND, 0, NULL, NULL, control_msg(c, "bye"));
	}
	if (c != NULL)
		control_push_held(c);
}

void control_free(struct control *c)
{
	struct pending *p;
	struct question *q;

	if (c == NULL)
		return;
	while ((p = TAILQ_FIRST(&c->pending)) != NULL) {
		TAILQ_REMOVE(&c->pending, p, link);
		p->done(p->arg, false, "shutting down");
		free(p);
	}
	while ((q = TAILQ_FIRST(&c->questions)) != NULL)
		control_question_done(c, q);
	/* What the link posted that nobody took (its thread has stopped). */
	{
		struct ctl_in in;

		while (xqueue_drain(c->inq, &in, 1) == 1)
			ctl_in_clear(&in);
	}
	if (c->in_ev != NULL)
		event_free(c->in_ev);
	if (c->tick_ev != NULL)
		event_free(c->tick_ev);
	if (c->flush_ev != NULL)
		event_free(c->flush_ev);
	cJSON_Delete(c->gossip);
	/* Sent after the link stopped (connections closed at shutdown): they
	 * never cross, as any send that could not. */
	for (size_t i = 0; i < c->nheld; i++)
		free(c->held[i].body);
	stats_add(&c->gw->stats->control_dropped, c->nheld);
	free(c->held);
	presence_free(c->gw->presence);
	sessions_free(c->gw->sessions);
	c->gw->presence = NULL;
	c->gw->sessions = NULL;
	if (c->gw->control == c)
		c->gw->control = NULL;
	free(c);
}
