/* mq_control against a real broker: the URL in TEST_AMQP_URL (skipped
 * without one, e.g. t/lib/broker.sh start DIR; . DIR/env;
 * TEST_AMQP_URL=$AMQP_URL).  Two instances on one control exchange: a
 * command reaches both, a question comes back answered through direct
 * reply-to, confirms arrive once, events reach a queue bound to the events
 * exchange; a third instance whose events exchange has the wrong type keeps
 * working without events; a lost channel is reconnected; a broker that is
 * down fails items at once; stop is clean (ASan checks the memory). */
#include "autoconfig.h"

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

#include "clock.h"
#include "config.h"
#include "log.h"
#include "mq_control.h"
#include "stats.h"
#include "tap.h"
#include "xqueue.h"

#define GOT_MAX 1024
#define WAIT_MS 10000

struct node {
	const char *name;
	struct config cfg;
	struct stats st;
	struct xqueue out, in;
	struct mq_control *ctl;
	struct ctl_in got[GOT_MAX];
	bool used[GOT_MAX];
	size_t n;
};

static struct node *node_start(const char *name, const char *url, const char *control,
    const char *events)
{
	struct node *n = calloc(1, sizeof(*n));
	char err[256];

	if (n == NULL)
		return NULL;
	n->name = name;
	config_defaults(&n->cfg);
	if (config_set(&n->cfg, "amqp_url", url, err, sizeof(err)) < 0 ||
	    config_set(&n->cfg, "amqp_control_exchange", control, err, sizeof(err)) < 0 ||
	    config_set(&n->cfg, "events_exchange", events, err, sizeof(err)) < 0 ||
	    config_set(&n->cfg, "amqp_heartbeat", "1s", err, sizeof(err)) < 0 ||
	    config_set(&n->cfg, "amqp_reconnect_min", "100ms", err, sizeof(err)) < 0 ||
	    config_set(&n->cfg, "amqp_reconnect_max", "1s", err, sizeof(err)) < 0) {
		printf("# %s: config: %s\n", name, err);
		exit(1);
	}
	if (xqueue_init(&n->out, "ctl_out", sizeof(struct ctl_out), true) < 0 ||
	    xqueue_init(&n->in, "ctl_in", sizeof(struct ctl_in), true) < 0)
		exit(1);
	n->ctl = mq_control_start(&n->cfg, &n->st, &n->out, &n->in);
	return n;
}

/* Take what arrived on n's inq, waiting at most ms for something. */
static void node_pump(struct node *n, int ms)
{
	struct pollfd p = { .fd = xqueue_fd(&n->in), .events = POLLIN };

	if (ms > 0 && poll(&p, 1, ms) <= 0)
		return;
	while (n->n < GOT_MAX && xqueue_drain(&n->in, &n->got[n->n], 1) == 1)
		n->n++;
}

typedef bool (*match_fn)(const struct ctl_in *i, const void *arg);

/* The first item not taken yet that matches, waiting up to ms; NULL. */
static struct ctl_in *node_wait(struct node *n, match_fn m, const void *arg, int ms)
{
	uint64_t end = clock_now_ms() + (uint64_t)ms;

	for (;;) {
		for (size_t i = 0; i < n->n; i++) {
			if (!n->used[i] && m(&n->got[i], arg)) {
				n->used[i] = true;
				return &n->got[i];
			}
		}
		if (clock_now_ms() >= end)
			return NULL;
		node_pump(n, 50);
	}
}

static size_t node_count(struct node *n, match_fn m, const void *arg)
{
	size_t k = 0;

	node_pump(n, 0);
	for (size_t i = 0; i < n->n; i++)
		k += m(&n->got[i], arg);
	return k;
}

static void node_free(struct node *n)
{
	node_pump(n, 0);
	for (size_t i = 0; i < n->n; i++)
		ctl_in_clear(&n->got[i]);
	xqueue_destroy(&n->out);
	xqueue_destroy(&n->in);
	config_free(&n->cfg);
	free(n);
}

static void send_out(struct node *n, enum ctl_out_kind kind, uint64_t id, const char *rk,
    const char *corr, const char *body, size_t len)
{
	struct ctl_out o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.id = id;
	snprintf(o.routing_key, sizeof(o.routing_key), "%s", rk);
	snprintf(o.correlation_id, sizeof(o.correlation_id), "%s", corr);
	o.body = malloc(len + 1);
	memcpy(o.body, body, len);
	o.len = len;
	if (xqueue_push(&n->out, &o) < 0)
		ctl_out_clear(&o);
}

static void send_str(struct node *n, enum ctl_out_kind kind, uint64_t id, const char *rk,
    const char *corr, const char *body)
{
	send_out(n, kind, id, rk, corr, body, strlen(body));
}

static bool is_link_up(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_LINK && i->ok;
}

static bool is_link_down(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_LINK && !i->ok;
}

static bool is_confirm(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_CONFIRM && i->id == *(const uint64_t *)arg;
}

static bool is_command(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_COMMAND && i->body != NULL && strcmp(i->body, arg) == 0;
}

static bool is_big_command(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_COMMAND && i->len > 1024 * 1024;
}

static bool is_reply(const struct ctl_in *i, const void *arg)
{
	return i->kind == CTL_IN_REPLY && strcmp(i->correlation_id, arg) == 0;
}

static struct ctl_in *wait_confirm(struct node *n, uint64_t id)
{
	return node_wait(n, is_confirm, &id, WAIT_MS);
}

/* ---- a plain rabbitmq-c connection, for what the test itself declares ---- */

static amqp_connection_state_t plain_open(const char *url)
{
	struct amqp_connection_info info;
	char *u = strdup(url);
	amqp_connection_state_t conn = amqp_new_connection();
	amqp_socket_t *sock = amqp_tcp_socket_new(conn);
	amqp_rpc_reply_t r;

	if (u == NULL || amqp_parse_url(u, &info) != AMQP_STATUS_OK ||
	    amqp_socket_open(sock, info.host, info.port) != AMQP_STATUS_OK) {
		free(u);
		amqp_destroy_connection(conn);
		return NULL;
	}
	r = amqp_login(conn, info.vhost[0] ? info.vhost : "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
	    info.user, info.password);
	free(u);
	amqp_channel_open(conn, 1);
	if (r.reply_type != AMQP_RESPONSE_NORMAL || amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
		amqp_destroy_connection(conn);
		return NULL;
	}
	return conn;
}

static bool plain_ok(amqp_connection_state_t conn)
{
	return amqp_get_rpc_reply(conn).reply_type == AMQP_RESPONSE_NORMAL;
}

/* basic.get from queue until a message comes (true, *msg filled) or ms pass. */
static bool plain_get(amqp_connection_state_t conn, const char *queue, amqp_message_t *msg, int ms)
{
	uint64_t end = clock_now_ms() + (uint64_t)ms;

	while (clock_now_ms() < end) {
		amqp_rpc_reply_t r = amqp_basic_get(conn, 1, amqp_cstring_bytes(queue), 1);

		if (r.reply_type != AMQP_RESPONSE_NORMAL)
			return false;
		if (r.reply.id == AMQP_BASIC_GET_OK_METHOD)
			return amqp_read_message(conn, 1, msg, 0).reply_type == AMQP_RESPONSE_NORMAL;
		usleep(50000);
	}
	return false;
}

static bool bytes_eq(amqp_bytes_t b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.bytes, s, b.len) == 0;
}

/* ---- the checks ---- */

static void check_command_and_question(struct node *a, struct node *b)
{
	const char *cmd = "{\"t\":\"cmd-1\"}", *ask = "{\"t\":\"ask-1\"}", *answer = "{\"t\":\"answer-1\"}";
	struct ctl_in *i, *q;
	char reply_to[CTL_NAME_MAX];

	send_str(a, CTL_OUT_COMMAND, 1, "", "", cmd);
	i = wait_confirm(a, 1);
	ok(i != NULL && i->ok, "a COMMAND with an id is confirmed (why=%s)", i ? i->why : "none");
	i = node_wait(a, is_command, cmd, WAIT_MS);
	ok(i != NULL && i->reply_to[0] == '\0' && i->len == strlen(cmd), "the sender receives its own COMMAND");
	i = node_wait(b, is_command, cmd, WAIT_MS);
	ok(i != NULL && i->reply_to[0] == '\0', "the other instance receives the COMMAND");

	send_str(a, CTL_OUT_ASK, 0, "", "q-1", ask);
	q = node_wait(b, is_command, ask, WAIT_MS);
	ok(q != NULL && strncmp(q->reply_to, "amq.rabbitmq.reply-to.", 22) == 0 &&
	    strcmp(q->correlation_id, "q-1") == 0, "an ASK reaches the other instance as a COMMAND with "
	    "reply_to and correlation_id (reply_to=%s)", q ? q->reply_to : "none");
	i = node_wait(a, is_command, ask, WAIT_MS);
	ok(i != NULL && i->reply_to[0] != '\0', "the asker receives its own question too");
	if (q == NULL)
		return;
	snprintf(reply_to, sizeof(reply_to), "%s", q->reply_to);
	send_str(b, CTL_OUT_ANSWER, 2, reply_to, "q-1", answer);
	i = wait_confirm(b, 2);
	ok(i != NULL && i->ok, "the ANSWER is confirmed (why=%s)", i ? i->why : "none");
	i = node_wait(a, is_reply, "q-1", WAIT_MS);
	ok(i != NULL && i->body != NULL && strcmp(i->body, answer) == 0 && i->body[i->len] == '\0',
	    "the answer comes back to the asker as a REPLY with its correlation_id");
	ok(node_count(b, is_reply, "q-1") == 0, "and only to the asker");
}

static void check_event(struct node *a, amqp_connection_state_t p, const char *events)
{
	const char *ev = "{\"t\":\"online\",\"user\":\"u1\"}";
	amqp_queue_declare_ok_t *q;
	amqp_message_t msg;
	char queue[256];
	struct ctl_in *i;
	bool got;

	q = amqp_queue_declare(p, 1, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (!ok(q != NULL && plain_ok(p), "test queue declared"))
		return;
	snprintf(queue, sizeof(queue), "%.*s", (int)q->queue.len, (const char *)q->queue.bytes);
	amqp_queue_bind(p, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(events),
	    amqp_cstring_bytes("user.#"), amqp_empty_table);
	ok(plain_ok(p), "test queue bound to the events exchange (a durable topic exchange)");

	send_str(a, CTL_OUT_EVENT, 3, "user.online", "", ev);
	i = wait_confirm(a, 3);
	ok(i != NULL && i->ok, "an EVENT is confirmed (why=%s)", i ? i->why : "none");
	got = plain_get(p, queue, &msg, WAIT_MS);
	ok(got, "the EVENT reaches the bound queue");
	if (got) {
		const amqp_basic_properties_t *pr = &msg.properties;

		ok(msg.body.len == strlen(ev) && memcmp(msg.body.bytes, ev, msg.body.len) == 0, "with its body");
		ok((pr->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && pr->delivery_mode == 2, "persistent");
		ok((pr->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) && bytes_eq(pr->content_type, "application/json"),
		    "content_type application/json");
		amqp_destroy_message(&msg);
	}
}

/* A queue that refuses everything (x-overflow reject-publish, length 0)
 * makes the broker nack what is routed to it. */
static void check_nack(struct node *a, amqp_connection_state_t p, const char *events)
{
	amqp_table_entry_t arg[2] = {
		{ .key = amqp_cstring_bytes("x-max-length"),
		  .value = { .kind = AMQP_FIELD_KIND_I64, .value.i64 = 0 } },
		{ .key = amqp_cstring_bytes("x-overflow"),
		  .value = { .kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("reject-publish") } },
	};
	amqp_table_t args = { 2, arg };
	amqp_queue_declare_ok_t *q;
	char queue[256];
	struct ctl_in *i;

	q = amqp_queue_declare(p, 1, amqp_empty_bytes, 0, 0, 1, 1, args);
	if (!ok(q != NULL && plain_ok(p), "a queue that rejects every publish"))
		return;
	snprintf(queue, sizeof(queue), "%.*s", (int)q->queue.len, (const char *)q->queue.bytes);
	amqp_queue_bind(p, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(events),
	    amqp_cstring_bytes("nack.#"), amqp_empty_table);
	ok(plain_ok(p), "bound to the events exchange");
	send_str(a, CTL_OUT_EVENT, 16, "nack.me", "", "{}");
	i = wait_confirm(a, 16);
	ok(i != NULL && !i->ok && strcmp(i->why, "broker refused the message (nack)") == 0,
	    "a nacked EVENT fails (why=%s)", i ? i->why : "none");
	send_str(a, CTL_OUT_EVENT, 0, "nack.me", "", "{}");
	send_str(a, CTL_OUT_EVENT, 17, "user.x", "", "{}");
	i = wait_confirm(a, 17);
	ok(i != NULL && i->ok, "the next one is confirmed");
	ok(stats_get(&a->st.control_dropped) == 1, "a nacked one without an id is counted dropped");
	ok(node_count(a, is_link_down, NULL) == 0, "a nack does not cost the link");
}

/* Heartbeats of 1 s: idle for several, the link stays up (the thread calls
 * into rabbitmq-c often enough to send ours and read the broker's). */
static void check_idle(struct node *a, struct node *b)
{
	struct ctl_in *i;

	usleep(3500 * 1000);
	ok(node_count(a, is_link_down, NULL) == 0 && node_count(b, is_link_down, NULL) == 0,
	    "idle for 3.5 heartbeats: the links stay up");
	send_str(a, CTL_OUT_COMMAND, 13, "", "", "{\"t\":\"after-idle\"}");
	i = wait_confirm(a, 13);
	ok(i != NULL && i->ok, "and work");
	ok(node_wait(b, is_command, "{\"t\":\"after-idle\"}", WAIT_MS) != NULL, "both ways");
}

/* An answer to a reply_to nobody consumes any more (the asker went away,
 * or it is garbage) is confirmed and lost: it does not cost the link. */
static void check_stale_answer(struct node *b)
{
	struct ctl_in *i;

	send_str(b, CTL_OUT_ANSWER, 14, "amq.rabbitmq.reply-to.bogus", "q-x", "{}");
	i = wait_confirm(b, 14);
	ok(i != NULL && i->ok, "an ANSWER to a bogus reply_to is confirmed (why=%s)", i ? i->why : "none");
	send_str(b, CTL_OUT_ANSWER, 15, "no-such-queue", "q-x", "{}");
	i = wait_confirm(b, 15);
	ok(i != NULL && i->ok, "an ANSWER to a queue that does not exist is confirmed (why=%s)", i ? i->why : "none");
	ok(node_count(b, is_link_down, NULL) == 0, "the link stayed up");
}

/* A body over 1 MiB is published but not handed on by the receivers. */
static void check_large(struct node *a, struct node *b)
{
	size_t len = 1024 * 1024 + 1;
	char *big = malloc(len);
	struct ctl_in *i;

	memset(big, 'x', len);
	big[0] = '"';
	big[len - 1] = '"';
	send_out(a, CTL_OUT_COMMAND, 6, "", "", big, len);
	free(big);
	i = wait_confirm(a, 6);
	ok(i != NULL && i->ok, "a 1 MiB + 1 COMMAND is published and confirmed");
	send_str(a, CTL_OUT_COMMAND, 7, "", "", "{\"t\":\"after-big\"}");
	i = node_wait(b, is_command, "{\"t\":\"after-big\"}", WAIT_MS);
	ok(i != NULL, "the next COMMAND arrives");
	ok(node_count(b, is_big_command, NULL) == 0 && node_count(a, is_big_command, NULL) == 0,
	    "the oversized one was dropped by the receivers");
	(void)wait_confirm(a, 7);
}

/* events_exchange exists as a fanout exchange: a warning, events fail, the
 * control plane works. */
static void check_wrong_events_type(struct node *c)
{
	struct ctl_in *i;
	uint64_t end;

	send_str(c, CTL_OUT_EVENT, 4, "user.online", "", "{}");
	i = wait_confirm(c, 4);
	ok(i != NULL && !i->ok && strcmp(i->why, "events_exchange unusable") == 0,
	    "events_exchange of another type: an EVENT fails (why=%s)", i ? i->why : "none");
	send_str(c, CTL_OUT_EVENT, 0, "user.online", "", "{}");
	send_str(c, CTL_OUT_EVENT, 0, "user.online", "", "{}");
	end = clock_now_ms() + WAIT_MS;
	while (stats_get(&c->st.control_dropped) < 2 && clock_now_ms() < end)
		usleep(20000);
	ok(stats_get(&c->st.control_dropped) == 2, "EVENTs without an id count in control_dropped (%llu)",
	    (unsigned long long)stats_get(&c->st.control_dropped));
	send_str(c, CTL_OUT_COMMAND, 5, "", "", "{\"t\":\"c-works\"}");
	i = wait_confirm(c, 5);
	ok(i != NULL && i->ok, "the control plane works without events");
	i = node_wait(c, is_command, "{\"t\":\"c-works\"}", WAIT_MS);
	ok(i != NULL, "and receives");
	ok(node_count(c, is_link_down, NULL) == 0, "the link never went down");
}

/* The events exchange is deleted under A: the publish closes the channel,
 * the item fails, the link goes down and comes back (declaring it again). */
static void check_reconnect(struct node *a, struct node *b, amqp_connection_state_t p, const char *events)
{
	struct ctl_in *i;
	const char *cmd = "{\"t\":\"after-reconnect\"}";

	amqp_exchange_delete(p, 1, amqp_cstring_bytes(events), 0);
	ok(plain_ok(p), "events exchange deleted under the instance");
	send_str(a, CTL_OUT_EVENT, 8, "user.online", "", "{}");
	i = wait_confirm(a, 8);
	ok(i != NULL && !i->ok && strcmp(i->why, "broker connection lost") == 0,
	    "the EVENT fails with the channel (why=%s)", i ? i->why : "none");
	i = node_wait(a, is_link_down, NULL, WAIT_MS);
	ok(i != NULL && i->why[0] != '\0', "LINK down is posted (why=%s)", i ? i->why : "none");
	i = node_wait(a, is_link_up, NULL, WAIT_MS);
	ok(i != NULL, "LINK up again after the reconnect");
	send_str(a, CTL_OUT_COMMAND, 9, "", "", cmd);
	i = wait_confirm(a, 9);
	ok(i != NULL && i->ok, "publishing works after the reconnect");
	ok(node_wait(b, is_command, cmd, WAIT_MS) != NULL, "and the other instance receives");
	amqp_exchange_declare(p, 1, amqp_cstring_bytes(events), amqp_cstring_bytes("topic"), 1, 0, 0, 0,
	    amqp_empty_table);
	ok(plain_ok(p), "the events exchange was declared again by the reconnect");
}

static void check_unavailable(void)
{
	struct node *d = node_start("d", "amqp://guest:guest@127.0.0.1:1/", "notifyd.test.none", "");
	struct ctl_in *i;
	uint64_t t0;

	send_str(d, CTL_OUT_COMMAND, 11, "", "", "{}");
	i = wait_confirm(d, 11);
	ok(i != NULL && !i->ok && strcmp(i->why, "broker unavailable") == 0,
	    "no broker: a COMMAND fails at once (why=%s)", i ? i->why : "none");
	send_str(d, CTL_OUT_COMMAND, 0, "", "", "{}");
	t0 = clock_now_ms();
	while (stats_get(&d->st.control_dropped) < 1 && clock_now_ms() - t0 < WAIT_MS)
		usleep(20000);
	ok(stats_get(&d->st.control_dropped) == 1, "no broker: one without an id is counted dropped");
	send_str(d, CTL_OUT_COMMAND, 12, "", "", "{}");
	t0 = clock_now_ms();
	mq_control_stop(d->ctl);
	ok(clock_now_ms() - t0 < 2000, "stop without a broker is quick (%llu ms)",
	    (unsigned long long)(clock_now_ms() - t0));
	i = wait_confirm(d, 12);
	ok(i != NULL && !i->ok, "an item queued just before stop gets its CONFIRM (why=%s)", i ? i->why : "none");
	ok(node_count(d, is_link_up, NULL) == 0 && node_count(d, is_link_down, NULL) == 0,
	    "no LINK items when the link never came up");
	node_free(d);
}

static void check_stop(struct node *a)
{
	uint64_t id = 10, t0;
	struct ctl_in *i;
	int once = 1, all_ok = 1;

	for (uint64_t k = 100; k < 400; k++)
		send_str(a, k % 2 ? CTL_OUT_COMMAND : CTL_OUT_EVENT, k, "user.burst", "", "{\"t\":\"burst\"}");
	send_str(a, CTL_OUT_COMMAND, 10, "", "", "{\"t\":\"last\"}");
	t0 = clock_now_ms();
	mq_control_stop(a->ctl);
	a->ctl = NULL;
	ok(clock_now_ms() - t0 < 2500, "stop takes %llu ms", (unsigned long long)(clock_now_ms() - t0));
	node_pump(a, 0);
	ok(node_count(a, is_confirm, &id) == 1, "an item queued before stop gets exactly one CONFIRM");
	i = node_wait(a, is_confirm, &id, 0);
	ok(i != NULL && i->ok, "published and confirmed before closing (why=%s)", i ? i->why : "none");
	i = node_wait(a, is_link_down, NULL, 0);
	ok(i != NULL && strcmp(i->why, "shutting down") == 0, "LINK down \"shutting down\" posted");
	for (uint64_t k = 100; k < 400; k++) {
		once &= node_count(a, is_confirm, &k) == 1;
		i = node_wait(a, is_confirm, &k, 0);
		all_ok &= i != NULL && i->ok;
	}
	ok(once, "300 items queued before stop: exactly one CONFIRM each");
	ok(all_ok, "all published and confirmed during the stop");
}

int main(void)
{
	const char *url = getenv("TEST_AMQP_URL");
	char control[96], control2[96], events[96], fanout[96];
	amqp_connection_state_t p;
	struct node *a, *b, *c;

	/* The TAP driver takes an exit status of 77 for an error: a skip is
	 * the "1..0 # SKIP" plan. */
	if (url == NULL || url[0] == '\0') {
		printf("1..0 # SKIP TEST_AMQP_URL not set (a broker to test against)\n");
		return 0;
	}
	log_init(LOG_LVL_INFO, 0, NULL);
	snprintf(control, sizeof(control), "notifyd.test.control.%d", (int)getpid());
	snprintf(control2, sizeof(control2), "notifyd.test.control2.%d", (int)getpid());
	snprintf(events, sizeof(events), "notifyd.test.events.%d", (int)getpid());
	snprintf(fanout, sizeof(fanout), "notifyd.test.fanout.%d", (int)getpid());
	p = plain_open(url);
	if (p == NULL) {
		printf("Bail out! cannot connect to %s\n", url);
		return 1;
	}
	amqp_exchange_declare(p, 1, amqp_cstring_bytes(fanout), amqp_cstring_bytes("fanout"), 0, 0, 0, 0,
	    amqp_empty_table);
	ok(plain_ok(p), "a fanout exchange to misuse as events_exchange");

	a = node_start("a", url, control, events);
	b = node_start("b", url, control, events);
	c = node_start("c", url, control2, fanout);
	ok(a->ctl != NULL && b->ctl != NULL && c->ctl != NULL, "three instances started");
	ok(node_wait(a, is_link_up, NULL, WAIT_MS) != NULL, "a: LINK up");
	ok(node_wait(b, is_link_up, NULL, WAIT_MS) != NULL, "b: LINK up");
	ok(node_wait(c, is_link_up, NULL, WAIT_MS) != NULL, "c: LINK up despite the events exchange");

	check_command_and_question(a, b);
	check_stale_answer(b);
	check_idle(a, b);
	check_event(a, p, events);
	check_nack(a, p, events);
	check_large(a, b);
	check_wrong_events_type(c);
	check_reconnect(a, b, p, events);
	check_unavailable();
	check_stop(a);
	mq_control_stop(b->ctl);
	mq_control_stop(c->ctl);
	ok(stats_get(&a->st.control_dropped) == 1 && stats_get(&b->st.control_dropped) == 0,
	    "a dropped only the nacked one, b nothing");

	node_free(a);
	node_free(b);
	node_free(c);
	amqp_exchange_delete(p, 1, amqp_cstring_bytes(control), 0);
	amqp_exchange_delete(p, 1, amqp_cstring_bytes(control2), 0);
	amqp_exchange_delete(p, 1, amqp_cstring_bytes(events), 0);
	amqp_exchange_delete(p, 1, amqp_cstring_bytes(fanout), 0);
	amqp_channel_close(p, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(p, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(p);
	return done_testing();
}
