#include "autoconfig.h"

#include "mq_control.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mq_link.h"
#include "seq_window.h"
#include "xqueue.h"

#define CHANNEL MQ_LINK_CHANNEL
#define OUT_BATCH 64
#define BODY_MAX (1024u * 1024u)	/* larger deliveries are dropped */
#define STOP_WAIT_MS 1000		/* mq_control_stop: wait this long for confirms */
#define DROP_LOG_MS 10000		/* at most one control_dropped line this often */
#define REPLY_TO "amq.rabbitmq.reply-to"
/* Consumer tags on our channel: which consumer a delivery is for. */
#define TAG_CONTROL "notifyd.control"
#define TAG_REPLY "notifyd.reply"

/* A published item waiting for its confirm. */
struct sent {
	uint64_t seq;			/* on the current channel */
	uint64_t id;			/* the ctl_out's */
};

struct mq_control {
	const struct config *cfg;
	struct stats *stats;
	struct xqueue *outq, *inq;
	int ctl_fd;
	atomic_bool stop;
	pthread_t thread;

	/* The control thread's alone (mq_control_stop's after the join). */
	struct mq_link link;
	bool connected;			/* set up, LINK ok posted */
	bool events_ok;			/* events_exchange declared on this connection */
	bool closing;			/* shutting down: deliveries are not posted */
	char queue[CTL_NAME_MAX];	/* the server-named queue */
	struct seq_window confirms;	/* publish seqs of the channel, from 1 */
	struct sent *sent;		/* ring, in seq order */
	size_t shead, scount, scap;
	struct mq_backoff backoff;
	uint64_t retry_at;		/* next connection attempt (ms) */
	uint64_t serviced_ms;		/* last call in with nothing to read */
	uint64_t drops;			/* items without an id dropped, not logged yet */
	const char *drop_why;		/* the last one's reason */
	uint64_t drop_log_at;		/* no control_dropped line before */
};

void ctl_out_clear(struct ctl_out *o)
{
	free(o->body);
	o->body = NULL;
	o->len = 0;
}

void ctl_in_clear(struct ctl_in *i)
{
	free(i->body);
	i->body = NULL;
	i->len = 0;
}

/* Hand an item to the loop; its body is freed if that fails (the loop is
 * gone or memory is). */
static void control_post(struct mq_control *c, struct ctl_in *in)
{
	if (xqueue_push(c->inq, in) < 0)
		ctl_in_clear(in);
}

static void control_post_link(struct mq_control *c, bool ok, const char *why)
{
	struct ctl_in in;

	memset(&in, 0, sizeof(in));
	in.kind = CTL_IN_LINK;
	in.ok = ok;
	snprintf(in.why, sizeof(in.why), "%s", why);
	control_post(c, &in);
}

/* The fate of one item: a CONFIRM when it has an id, else a drop counted
 * (and logged later, once for a burst) when it failed. */
static void control_settle(struct mq_control *c, uint64_t id, bool ok, const char *why)
{
	struct ctl_in in;

	if (id == 0) {
		if (!ok) {
			stats_add(&c->stats->control_dropped, 1);
			c->drops++;
			c->drop_why = why;
		}
		return;
	}
	memset(&in, 0, sizeof(in));
	in.kind = CTL_IN_CONFIRM;
	in.id = id;
	in.ok = ok;
	if (!ok)
		snprintf(in.why, sizeof(in.why), "%s", why);
	control_post(c, &in);
}

/* One warn line for the drops since the last one: at once after a quiet
 * spell, then at most every DROP_LOG_MS while they go on (a broker down
 * for minutes would otherwise log every heartbeat of the control plane). */
static void control_log_drops(struct mq_control *c, bool force)
{
	uint64_t now = clock_now_ms();

	if (c->drops == 0 || (!force && now < c->drop_log_at))
		return;
	log_warn("control_dropped", "count=%llu why=\"%s\"", (unsigned long long)c->drops, c->drop_why);
	c->drops = 0;
	c->drop_log_at = now + DROP_LOG_MS;
}

/* Settle everything still on outq with why (the link is not coming back). */
static void control_fail_queue(struct mq_control *c, const char *why)
{
	struct ctl_out items[OUT_BATCH];
	size_t n;

	while ((n = xqueue_drain(c->outq, items, OUT_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			control_settle(c, items[i].id, false, why);
			ctl_out_clear(&items[i]);
		}
	}
}

/* The broker's words in a log value. */
static const char *control_quoted_error(const struct mq_control *c, char *buf, size_t len)
{
	return log_quote(buf, len, c->link.error, strlen(c->link.error));
}

/* Fail what waits for a confirm (its channel is gone: the confirms never
 * come, the messages may or may not have been routed), say the link is
 * down, close. */
static void control_disconnect(struct mq_control *c, const char *items_why, const char *link_why)
{
	while (c->scount > 0) {
		struct sent s = c->sent[c->shead];

		c->shead = (c->shead + 1) % c->scap;
		c->scount--;
		control_settle(c, s.id, false, items_why);
	}
	if (c->connected)
		control_post_link(c, false, link_why);
	mq_link_close(&c->link);
	c->connected = false;
	c->events_ok = false;
}

/* The link failed (link.error says how): down, and the next attempt after
 * the backoff. */
static void control_lost(struct mq_control *c)
{
	uint32_t wait = mq_backoff_next(&c->backoff);
	char q[240];

	log_warn("control_lost", "error=%s retry_ms=%u", control_quoted_error(c, q, sizeof(q)), wait);
	control_disconnect(c, "broker connection lost", c->link.error);
	c->retry_at = clock_now_ms() + wait;
}

/* Declare events_exchange when set.  One that exists with another type (or
 * that we may not declare) closes the channel: then events are dropped on
 * this connection and the rest goes on.  Returns -1 when the link failed. */
static int control_declare_events(struct mq_control *c)
{
	const char *ex = c->cfg->events_exchange;
	amqp_rpc_reply_t r;
	char q[240];

	c->events_ok = false;
	if (ex == NULL || ex[0] == '\0')
		return 0;
	amqp_exchange_declare(c->link.conn, CHANNEL, amqp_cstring_bytes(ex), amqp_cstring_bytes("topic"),
	    0, 1, 0, 0, amqp_empty_table);
	r = amqp_get_rpc_reply(c->link.conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL) {
		c->events_ok = true;
		return 0;
	}
	mq_link_set_error(&c->link, "exchange.declare (events_exchange)", r);
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
		return -1;
	log_warn("events_exchange_unusable", "exchange=%s error=%s hint=\"events are dropped: declare it "
	    "as a durable topic exchange, or name another events_exchange\"", ex,
	    control_quoted_error(c, q, sizeof(q)));
	return mq_link_reopen_channel(&c->link);
}

/* Open the connection and set everything up; the link is up (and said so)
 * only when all of it worked.  Returns 0, or -1 with link.error set and
 * nothing left open. */
static int control_connect(struct mq_control *c)
{
	const struct config *cfg = c->cfg;
	amqp_connection_state_t conn;
	amqp_queue_declare_ok_t *q;

	if (mq_link_open(&c->link, cfg, "control") < 0)
		return -1;
	conn = c->link.conn;
	/* First: a refused declare closes the channel, and with it any
	 * consumer already on it. */
	if (control_declare_events(c) < 0)
		goto fail;
	amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(cfg->amqp_control_exchange),
	    amqp_cstring_bytes("fanout"), 0, 1, 0, 0, amqp_empty_table);
	if (!mq_link_rpc_ok(&c->link, "exchange.declare (amqp_control_exchange)"))
		goto fail;
	q = amqp_queue_declare(conn, CHANNEL, amqp_empty_bytes, 0, 0, 1, 1, amqp_empty_table);
	if (q == NULL || !mq_link_rpc_ok(&c->link, "queue.declare"))
		goto fail;
	snprintf(c->queue, sizeof(c->queue), "%.*s", (int)q->queue.len, (const char *)q->queue.bytes);
	amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(c->queue),
	    amqp_cstring_bytes(cfg->amqp_control_exchange), amqp_empty_bytes, amqp_empty_table);
	if (!mq_link_rpc_ok(&c->link, "queue.bind"))
		goto fail;
	if (amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(TAG_CONTROL),
	    0, 1, 1, amqp_empty_table) == NULL || !mq_link_rpc_ok(&c->link, "basic.consume (control)"))
		goto fail;
	/* Direct reply-to: the broker accepts reply_to amq.rabbitmq.reply-to
	 * only on a channel that consumes it. */
	if (amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(REPLY_TO), amqp_cstring_bytes(TAG_REPLY),
	    0, 1, 0, amqp_empty_table) == NULL || !mq_link_rpc_ok(&c->link, "basic.consume (" REPLY_TO ")"))
		goto fail;
	amqp_confirm_select(conn, CHANNEL);
	if (!mq_link_rpc_ok(&c->link, "confirm.select"))
		goto fail;
	seq_window_reset(&c->confirms, 1);
	c->connected = true;
	log_info("control_ready", "exchange=%s queue=%s events_exchange=%s", cfg->amqp_control_exchange,
	    c->queue, c->events_ok ? cfg->events_exchange : "-");
	control_post_link(c, true, "");
	return 0;
fail:
	mq_link_close(&c->link);
	c->events_ok = false;
	return -1;
}

static int control_sent_grow(struct mq_control *c)
{
	size_t ncap = c->scap ? c->scap * 2 : 64;
	struct sent *n = malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -1;
	for (size_t i = 0; i < c->scount; i++)
		n[i] = c->sent[(c->shead + i) % c->scap];
	free(c->sent);
	c->sent = n;
	c->shead = 0;
	c->scap = ncap;
	return 0;
}

/* Publish one item, or settle it at once when it cannot be.  Returns -1
 * when the link failed (the item is settled; link.error says how). */
static int control_publish(struct mq_control *c, const struct ctl_out *o)
{
	const struct config *cfg = c->cfg;
	size_t rk_len = strnlen(o->routing_key, sizeof(o->routing_key));
	size_t corr_len = strnlen(o->correlation_id, sizeof(o->correlation_id));
	amqp_bytes_t rk = { rk_len, (void *)o->routing_key };
	amqp_bytes_t body = { o->body != NULL ? o->len : 0, o->body };
	const char *exchange = cfg->amqp_control_exchange, *why = NULL;
	amqp_basic_properties_t props;
	int st;

	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	if (o->kind == CTL_OUT_ASK || o->kind == CTL_OUT_ANSWER) {
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
		props.correlation_id = (amqp_bytes_t){ corr_len, (void *)o->correlation_id };
	}
	switch (o->kind) {
	case CTL_OUT_COMMAND:
		rk = amqp_empty_bytes;
		break;
	case CTL_OUT_ASK:
		rk = amqp_empty_bytes;
		props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
		props.reply_to = amqp_cstring_bytes(REPLY_TO);
		break;
	case CTL_OUT_ANSWER:
		exchange = "";
		if (rk_len == 0)
			why = "answer without a reply_to";
		break;
	case CTL_OUT_EVENT:
		exchange = cfg->events_exchange != NULL ? cfg->events_exchange : "";
		props._flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
		props.delivery_mode = 2;
		if (exchange[0] == '\0')
			why = "events are off (no events_exchange)";
		else if (c->connected && !c->events_ok)
			why = "events_exchange unusable";
		break;
	default:
		why = "unknown kind";
		break;
	}
	if (rk_len == sizeof(o->routing_key) || corr_len == sizeof(o->correlation_id))
		why = "routing_key or correlation_id without its NUL";
	if (why == NULL && !c->connected)
		why = "broker unavailable";
	if (why == NULL && c->link.blocked)
		why = "broker is blocking publishers (resource alarm)";
	if (why == NULL && ((c->scount == c->scap && control_sent_grow(c) < 0) ||
	    seq_window_reserve(&c->confirms, c->confirms.next) < 0))
		why = "out of memory";
	if (why != NULL) {
		control_settle(c, o->id, false, why);
		return 0;
	}
	st = amqp_basic_publish(c->link.conn, CHANNEL, amqp_cstring_bytes(exchange), rk, 0, 0, &props, body);
	if (st != AMQP_STATUS_OK) {
		snprintf(c->link.error, sizeof(c->link.error), "publish: %s", amqp_error_string2(st));
		c->link.alive = false;
		control_settle(c, o->id, false, "broker connection lost");
		return -1;
	}
	c->sent[(c->shead + c->scount) % c->scap] = (struct sent){ c->confirms.next, o->id };
	c->scount++;
	(void)seq_window_add(&c->confirms, c->confirms.next, MQ_CONFIRM_WAIT, NULL);
	return 0;
}

/* Publish (or settle) everything on outq. */
static void control_drain(struct mq_control *c)
{
	struct ctl_out items[OUT_BATCH];
	size_t n;
	bool corked = false;

	while ((n = xqueue_drain(c->outq, items, OUT_BATCH)) > 0) {
		if (c->connected && !corked && n > 1) {
			mq_link_cork(&c->link, true);
			corked = true;
		}
		for (size_t i = 0; i < n; i++) {
			/* After a failure the rest find the link down. */
			if (control_publish(c, &items[i]) < 0) {
				control_lost(c);
				corked = false;
			}
			ctl_out_clear(&items[i]);
		}
		if (n < OUT_BATCH)
			break;
	}
	if (corked)
		mq_link_cork(&c->link, false);
}

static void control_confirm(struct mq_control *c, const struct mq_link_frame *f)
{
	uint64_t s;
	uint8_t st;

	mq_link_confirm(&c->confirms, f);
	/* Settled in seq order: the ring's head is the window's base. */
	while (seq_window_pop(&c->confirms, &s, &st, NULL)) {
		struct sent x;

		if (c->scount == 0 || c->sent[c->shead].seq != s)
			continue;
		x = c->sent[c->shead];
		c->shead = (c->shead + 1) % c->scap;
		c->scount--;
		control_settle(c, x.id, st == MQ_CONFIRM_ACK, "broker refused the message (nack)");
	}
}

static bool bytes_is(amqp_bytes_t b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && memcmp(b.bytes, s, n) == 0;
}

static void copy_short(char *dst, size_t size, amqp_bytes_t b)
{
	size_t n = b.len < size - 1 ? b.len : size - 1;

	if (n > 0)
		memcpy(dst, b.bytes, n);
	dst[n] = '\0';
}

/* A delivery from one of our consumers becomes a COMMAND or a REPLY. */
static void control_delivery(struct mq_control *c, const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	size_t len = env->message.body.len;
	struct ctl_in in;

	if (c->closing)
		return;
	memset(&in, 0, sizeof(in));
	if (bytes_is(env->consumer_tag, TAG_CONTROL)) {
		in.kind = CTL_IN_COMMAND;
	} else if (bytes_is(env->consumer_tag, TAG_REPLY)) {
		in.kind = CTL_IN_REPLY;
	} else {
		log_debug("control_unknown_consumer", "len=%zu", len);
		return;
	}
	if (len > BODY_MAX) {
		log_warn("control_too_large", "kind=%s bytes=%zu max=%u", in.kind == CTL_IN_REPLY ? "reply" :
		    "command", len, BODY_MAX);
		return;
	}
	in.body = malloc(len + 1);
	if (in.body == NULL) {
		log_warn("control_in_dropped", "kind=%s bytes=%zu why=\"out of memory\"",
		    in.kind == CTL_IN_REPLY ? "reply" : "command", len);
		return;
	}
	if (len > 0)
		memcpy(in.body, env->message.body.bytes, len);
	in.body[len] = '\0';
	in.len = len;
	if (p->_flags & AMQP_BASIC_REPLY_TO_FLAG)
		copy_short(in.reply_to, sizeof(in.reply_to), p->reply_to);
	if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
		copy_short(in.correlation_id, sizeof(in.correlation_id), p->correlation_id);
	control_post(c, &in);
}

/* Handle every frame rabbitmq-c holds, plus one read from the socket when
 * poll said it is readable.  service: call in even with nothing to read,
 * for the heartbeats rabbitmq-c only sends from inside its calls.  Returns
 * -1 when the link failed (link.error set). */
static int control_read(struct mq_control *c, bool readable, bool service)
{
	amqp_connection_state_t conn = c->link.conn;

	for (;;) {
		struct timeval zero = { 0, 0 };
		struct mq_link_frame f;
		amqp_envelope_t env;
		amqp_rpc_reply_t r;

		if (!amqp_data_in_buffer(conn) && !amqp_frames_enqueued(conn)) {
			if (!readable && !service)
				return 0;
			readable = false;
			service = false;
			c->serviced_ms = clock_now_ms();
		}
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &zero, 0);
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			control_delivery(c, &env);
			amqp_destroy_envelope(&env);
			continue;
		}
		if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && r.library_error == AMQP_STATUS_TIMEOUT)
			continue;
		if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
		    r.library_error != AMQP_STATUS_UNEXPECTED_STATE) {
			mq_link_set_error(&c->link, "consume", r);
			c->link.alive = false;
			return -1;
		}
		/* Not a delivery: confirms, closes, blocked/unblocked. */
		mq_link_next_frame(&c->link, NULL, &f);
		switch (f.ev) {
		case LINK_FATAL:
		case LINK_CANCELLED:
			return -1;
		case LINK_CONFIRM_ACK:
		case LINK_CONFIRM_NACK:
			control_confirm(c, &f);
			break;
		default:
			break;
		}
	}
}

static bool control_buffered(const struct mq_control *c)
{
	return amqp_data_in_buffer(c->link.conn) || amqp_frames_enqueued(c->link.conn);
}

/* Stopping: publish what the loop queued before, wait (briefly) for the
 * confirms, fail the rest, close. */
static void control_shutdown(struct mq_control *c, int poll_ms)
{
	uint64_t end = clock_now_ms() + STOP_WAIT_MS;

	c->closing = true;
	if (c->connected)
		control_drain(c);
	while (c->connected && c->scount > 0) {
		struct pollfd pfd = { .fd = amqp_get_sockfd(c->link.conn), .events = POLLIN };
		uint64_t now = clock_now_ms();
		int ms = (int)(end > now ? end - now : 0), ready = 1;

		if (ms == 0)
			break;
		if (!control_buffered(c))
			ready = poll(&pfd, 1, ms < poll_ms ? ms : poll_ms);
		if (ready < 0 && errno != EINTR)
			break;
		if (control_read(c, ready > 0, ready == 0) < 0) {
			char q[240];

			log_warn("control_lost", "error=%s", control_quoted_error(c, q, sizeof(q)));
			control_disconnect(c, "broker connection lost", c->link.error);
		}
	}
	control_fail_queue(c, "shutting down");
	control_disconnect(c, "shutting down", "shutting down");
	control_log_drops(c, true);
}

static void *control_main(void *arg)
{
	struct mq_control *c = arg;
	int poll_ms = 1000;

	/* A quarter of the heartbeat: rabbitmq-c sends ours only from inside
	 * its calls. */
	if (c->cfg->amqp_heartbeat_s > 0 && (int)c->cfg->amqp_heartbeat_s * 250 < poll_ms)
		poll_ms = (int)c->cfg->amqp_heartbeat_s * 250;
	while (!atomic_load(&c->stop)) {
		struct pollfd pfd[3];
		int nfd = 0, timeout = poll_ms, ready;
		uint64_t now = clock_now_ms();

		if (!c->connected && now >= c->retry_at) {
			if (control_connect(c) == 0) {
				mq_backoff_reset(&c->backoff);
			} else {
				uint32_t wait = mq_backoff_next(&c->backoff);
				char q[240];

				log_warn("control_unavailable", "error=%s retry_ms=%u",
				    control_quoted_error(c, q, sizeof(q)), wait);
				c->retry_at = clock_now_ms() + wait;
			}
			now = clock_now_ms();
		}
		pfd[nfd++] = (struct pollfd){ .fd = xqueue_fd(c->outq), .events = POLLIN };
		pfd[nfd++] = (struct pollfd){ .fd = c->ctl_fd, .events = POLLIN };
		if (c->connected) {
			pfd[nfd++] = (struct pollfd){ .fd = amqp_get_sockfd(c->link.conn), .events = POLLIN };
			/* Frames rabbitmq-c already took off the socket make no
			 * POLLIN. */
			if (control_buffered(c))
				timeout = 0;
		} else if (c->retry_at > now && c->retry_at - now < (uint64_t)timeout) {
			timeout = (int)(c->retry_at - now) + 1;
		}
		ready = poll(pfd, (nfds_t)nfd, timeout);
		if (ready < 0 && errno != EINTR) {
			log_error("control_poll", "error=\"%s\"", strerror(errno));
			break;
		}
		if (ready > 0 && (pfd[0].revents & POLLIN))
			control_drain(c);
		if (c->connected) {
			bool readable = nfd == 3 && ready > 0 && (pfd[2].revents & (POLLIN | POLLERR | POLLHUP));
			bool service = ready == 0 || clock_now_ms() - c->serviced_ms >= (uint64_t)poll_ms;

			if (control_read(c, readable, service) < 0)
				control_lost(c);
		}
		control_log_drops(c, false);
	}
	control_shutdown(c, poll_ms);
	return NULL;
}

struct mq_control *mq_control_start(const struct config *cfg, struct stats *st,
    struct xqueue *outq, struct xqueue *inq)
{
	struct mq_control *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cfg = cfg;
	c->stats = st;
	c->outq = outq;
	c->inq = inq;
	mq_backoff_init(&c->backoff, cfg, (unsigned int)(clock_now_ns() ^ ((uint64_t)getpid() << 8)));
	atomic_init(&c->stop, false);
	c->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->ctl_fd < 0 || seq_window_init(&c->confirms, 256, false, MQ_CONFIRM_ACK, 1) < 0 ||
	    pthread_create(&c->thread, NULL, control_main, c) != 0) {
		if (c->ctl_fd >= 0)
			close(c->ctl_fd);
		seq_window_free(&c->confirms);
		free(c);
		return NULL;
	}
	(void)pthread_setname_np(c->thread, "nd-control");
	return c;
}

void mq_control_stop(struct mq_control *c)
{
	uint64_t one = 1;

	if (c == NULL)
		return;
	atomic_store(&c->stop, true);
	while (write(c->ctl_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(c->thread, NULL);
	/* Items the loop queued after the thread's last look. */
	control_fail_queue(c, "shutting down");
	control_log_drops(c, true);
	close(c->ctl_fd);
	seq_window_free(&c->confirms);
	free(c->sent);
	free(c);
}
