#include "autoconfig.h"

#include "mq_consumer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ack_window.h"
#include "broker_status.h"
#include "clock.h"
#include "delivery.h"
#include "log.h"
#include "mq_link.h"
#include "xqueue.h"

#define CHANNEL MQ_LINK_CHANNEL
#define ACK_BATCH 512
/* How long a verdict may wait for others before its ack frame goes out.
 * A verdict then wakes this thread only when no deadline is set yet: at
 * 1,000 msg/s one wake-up and one basic.ack per 4 ms instead of one per
 * message (measured in scripts/bench: wake-ups per message).  Far below
 * anything a broker or a client can notice; the prefetch is protected
 * apart (consumer_credit_short). */
#define ACK_LINGER_NS (4 * 1000000ull)

struct mq_consumer {
	const struct config *cfg;
	struct stats *stats;
	struct xqueue *jobq, *ackq, *statusq;
	int ctl_fd;
	atomic_int command;
	pthread_t thread;

	/* Everything below belongs to the consumer thread alone. */
	struct mq_link link;
	amqp_connection_state_t conn;	/* link.conn while connected, else NULL */
	uint32_t gen;
	uint64_t seq;
	struct ack_window win;
	size_t unsent;			/* verdicts settled in win, frames not sent yet */
	uint64_t ack_due_ns;		/* held verdicts, and those of deliveries in
					 * flight, go out by then (0: none due) */
	amqp_bytes_t consumer_tag;
	bool cancelled, drained_posted;
	/* Stream source: where we are in the stream, and the start marker
	 * that separates what was published before this start (history only)
	 * from what is delivered live. */
	bool stream;
	bool have_offset;		/* next_offset is known */
	bool warm;			/* this start's marker not seen yet */
	uint64_t next_offset;
	char marker[40];		/* nonce of the marker we wait for */
	enum broker_state state;
	char error[200];
	struct mq_backoff backoff;
};

static void consumer_post(struct mq_consumer *c, enum broker_state st)
{
	struct broker_status s;

	memset(&s, 0, sizeof(s));
	c->state = st;
	s.state = st;
	s.cancelled = c->cancelled;
	s.drained = c->drained_posted;
	snprintf(s.error, sizeof(s.error), "%s", c->error);
	(void)xqueue_push(c->statusq, &s);
}

static int consumer_rpc_ok(struct mq_consumer *c, const char *what)
{
	if (mq_link_rpc_ok(&c->link, what))
		return 1;
	snprintf(c->error, sizeof(c->error), "%s", c->link.error);
	return 0;
}

static void queue_arg(amqp_table_t *t, const char *key, amqp_field_value_t v)
{
	t->entries[t->num_entries].key = amqp_cstring_bytes(key);
	t->entries[t->num_entries++].value = v;
}

/* Declare this instance's queue with its dead-letter exchange and its
 * bounds: it goes when unused for amqp_queue_expires (an instance that is
 * gone for good, or a container whose host name changes on every deploy,
 * would otherwise leave a queue bound to every notification, growing until
 * the broker's alarms block every publisher), and drops its oldest beyond
 * amqp_queue_max_bytes.  A queue declared before with other arguments (by
 * an older notifyd) makes the broker answer 406: then take it as it is,
 * and say how to get the bounds.  Returns 0, -1 with c->error set. */
static int consumer_declare_queue(struct mq_consumer *c, const char *name)
{
	const struct config *cfg = c->cfg;
	amqp_table_entry_t qarg[3];
	amqp_table_t qargs = { 0, qarg };
	amqp_rpc_reply_t r;
	/* Referenced by qargs until the declare: not in the block below. */
	// cppcheck-suppress variableScope
	char age[24];

	if (c->stream) {

		/* One durable log shared by every instance; retention by age
		 * ("<n>s", the broker's unit syntax) and size. */
		queue_arg(&qargs, "x-queue-type", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8,
		    .value.bytes = amqp_cstring_bytes("stream") });
		snprintf(age, sizeof(age), "%us", (unsigned)cfg->amqp_stream_max_age_s);
		if (cfg->amqp_stream_max_age_s > 0)
			queue_arg(&qargs, "x-max-age", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8,
			    .value.bytes = amqp_cstring_bytes(age) });
		if (cfg->amqp_stream_max_bytes > 0)
			queue_arg(&qargs, "x-max-length-bytes", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_I64,
			    .value.i64 = (int64_t)cfg->amqp_stream_max_bytes });
	} else {
		if (cfg->amqp_dead_letter_exchange[0] != '\0')
			queue_arg(&qargs, "x-dead-letter-exchange", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8,
			    .value.bytes = amqp_cstring_bytes(cfg->amqp_dead_letter_exchange) });
		if (cfg->amqp_queue_expires_ms > 0)
			queue_arg(&qargs, "x-expires", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_I64,
			    .value.i64 = (int64_t)cfg->amqp_queue_expires_ms });
		if (cfg->amqp_queue_max_bytes > 0)
			queue_arg(&qargs, "x-max-length-bytes", (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_I64,
			    .value.i64 = (int64_t)cfg->amqp_queue_max_bytes });
	}
	amqp_queue_declare(c->conn, CHANNEL, amqp_cstring_bytes(name), 0, 1, 0, 0, qargs);
	r = amqp_get_rpc_reply(c->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.id != AMQP_CHANNEL_CLOSE_METHOD ||
	    ((const amqp_channel_close_t *)r.reply.decoded)->reply_code != AMQP_PRECONDITION_FAILED) {
		mq_link_set_error(&c->link, "queue.declare", r);
		snprintf(c->error, sizeof(c->error), "%s", c->link.error);
		return -1;
	}
	if (c->stream)
		log_warn("queue_arguments_differ", "queue=%s hint=\"the stream exists with other arguments: "
		    "it is used as it is, with its own retention\"", name);
	else
		log_warn("queue_arguments_differ", "queue=%s hint=\"the queue exists with other arguments: it "
		    "is used as it is, without amqp_queue_expires and amqp_queue_max_bytes; delete it while no "
		    "notifyd consumes it to have them\"", name);
	if (mq_link_reopen_channel(&c->link) < 0) {
		snprintf(c->error, sizeof(c->error), "%s", c->link.error);
		return -1;
	}
	amqp_queue_declare(c->conn, CHANNEL, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
	return consumer_rpc_ok(c, "queue.declare (passive)") ? 0 : -1;
}

/* Stream, first start (or not live yet): publish a marker and wait for its
 * confirm.  Everything before it in the stream was published before this
 * start: history only, never delivered live again; everything after is
 * live.  Other instances see it as a position, nobody's message.  Returns
 * 0, -1 with c->error set. */
static int consumer_publish_marker(struct mq_consumer *c, const char *stream)
{
	amqp_basic_properties_t props;
	amqp_table_entry_t h[1];
	struct mq_link_frame f;
	struct timeval tv = { 10, 0 };
	uint64_t deadline = clock_now_ns() + 10000000000ull;

	amqp_confirm_select(c->conn, CHANNEL);
	if (!consumer_rpc_ok(c, "confirm.select"))
		return -1;
	snprintf(c->marker, sizeof(c->marker), "%d-%llx-%u", (int)getpid(),
	    (unsigned long long)clock_now_ns(), c->gen);
	h[0].key = amqp_cstring_bytes(MQ_MARKER_HEADER);
	h[0].value = (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8,
	    .value.bytes = amqp_cstring_bytes(c->marker) };
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.headers = (amqp_table_t){ 1, h };
	props.delivery_mode = 2;
	if (amqp_basic_publish(c->conn, CHANNEL, amqp_empty_bytes, amqp_cstring_bytes(stream), 0, 0,
	    &props, amqp_cstring_bytes("{}")) != AMQP_STATUS_OK) {
		snprintf(c->error, sizeof(c->error), "marker publish failed");
		return -1;
	}
	for (;;) {
		mq_link_next_frame(&c->link, &tv, &f);
		if (f.ev == LINK_CONFIRM_ACK)
			return 0;
		if (f.ev == LINK_FATAL || f.ev == LINK_CONFIRM_NACK || clock_now_ns() > deadline) {
			snprintf(c->error, sizeof(c->error), "start marker not confirmed: %.150s",
			    f.ev == LINK_FATAL ? c->link.error : "nack or timeout");
			return -1;
		}
	}
}

/* Open the connection and set up the exchange, queue, bindings, QoS and
 * the consumer.  Returns 0, -1 with c->error set. */
static int consumer_connect(struct mq_consumer *c)
{
	const struct config *cfg = c->cfg;
	amqp_basic_consume_ok_t *ok;
	const char *keys[2 + CONFIG_LIST_MAX];
	const char *name = c->stream ? cfg->amqp_stream : cfg->amqp_queue;
	amqp_table_entry_t carg[1];
	amqp_table_t cargs = { 0, carg };
	char from[24];
	size_t nkeys = 0;

	if (mq_link_open(&c->link, cfg, "consumer") < 0) {
		snprintf(c->error, sizeof(c->error), "%s", c->link.error);
		return -1;
	}
	c->conn = c->link.conn;
	amqp_exchange_declare(c->conn, CHANNEL, amqp_cstring_bytes(cfg->amqp_exchange),
	    amqp_cstring_bytes("topic"), !cfg->amqp_exchange_declare, 1, 0, 0, amqp_empty_table);
	if (!consumer_rpc_ok(c, "exchange.declare"))
		return -1;
	if (consumer_declare_queue(c, name) < 0)
		return -1;
	keys[nkeys++] = "user.*";
	keys[nkeys++] = "broadcast";
	for (size_t i = 0; i < cfg->amqp_bindings.n; i++)
		keys[nkeys++] = cfg->amqp_bindings.item[i];
	for (size_t i = 0; i < nkeys; i++) {
		amqp_queue_bind(c->conn, CHANNEL, amqp_cstring_bytes(name),
		    amqp_cstring_bytes(cfg->amqp_exchange), amqp_cstring_bytes(keys[i]),
		    amqp_empty_table);
		if (!consumer_rpc_ok(c, "queue.bind"))
			return -1;
	}
	amqp_basic_qos(c->conn, CHANNEL, 0, (uint16_t)cfg->amqp_prefetch, 0);
	if (!consumer_rpc_ok(c, "basic.qos"))
		return -1;
	if (c->stream) {
		/* Back after a lost connection: on from where we were.  A start
		 * with history: the last history_max_age first, as warm-up. */
		amqp_field_value_t v;

		if (c->have_offset) {
			v = (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_I64, .value.i64 = (int64_t)c->next_offset };
		} else {
			if (c->warm)
				snprintf(from, sizeof(from), "%us", (unsigned)cfg->history_max_age_s);
			else
				snprintf(from, sizeof(from), "next");
			v = (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(from) };
		}
		queue_arg(&cargs, "x-stream-offset", v);
		if (c->warm && consumer_publish_marker(c, name) < 0)
			return -1;
	}
	ok = amqp_basic_consume(c->conn, CHANNEL, amqp_cstring_bytes(name),
	    amqp_empty_bytes, 0, 0, 0, cargs);
	if (ok == NULL || !consumer_rpc_ok(c, "basic.consume"))
		return -1;
	c->consumer_tag = amqp_bytes_malloc_dup(ok->consumer_tag);
	if (c->stream)
		log_info("broker_consuming", "stream=%s prefetch=%u generation=%u from=%s%s",
		    name, cfg->amqp_prefetch, c->gen,
		    c->have_offset ? "offset:" : (c->warm ? "age:" : ""),
		    c->have_offset ? (snprintf(from, sizeof(from), "%llu",
		    (unsigned long long)c->next_offset), from) : from);
	else
		log_info("broker_consuming", "queue=%s prefetch=%u generation=%u",
		    name, cfg->amqp_prefetch, c->gen);
	c->error[0] = '\0';
	return 0;
}

static void consumer_disconnect(struct mq_consumer *c)
{
	mq_link_close(&c->link);
	c->conn = NULL;
	amqp_bytes_free(c->consumer_tag);
	c->consumer_tag = amqp_empty_bytes;
	/* Deliveries of this connection can no longer be acked: the broker
	 * requeues them.  Verdicts that arrive later are dropped by gen. */
	c->gen++;
	ack_window_reset(&c->win);
	c->unsent = 0;
	c->ack_due_ns = 0;
}

/* Half the prefetch unsettled at the broker: acks go out at once and every
 * verdict wakes the thread, so that the broker never stops delivering for
 * want of credit. */
static bool consumer_credit_short(const struct mq_consumer *c)
{
	return ack_window_outstanding(&c->win) >= (c->cfg->amqp_prefetch + 1) / 2;
}

/* Take the verdicts that came back and send them: at once when force (the
 * linger deadline passed, credit is short, or the thread is shutting
 * down), else once an eighth of the prefetch has gathered.  While
 * deliveries stream in, one basic.ack with multiple=1 then settles dozens
 * of messages: fewer frames for the broker, which shares the machine, and
 * fewer sends for us.  Returns 0, -1 when the socket failed. */
static int consumer_flush_acks(struct mq_consumer *c, bool force)
{
	struct ack_item items[ACK_BATCH];
	struct ack_action acts[ACK_BATCH];
	size_t n, k;
	size_t every = (c->cfg->amqp_prefetch + 7) / 8;

	while ((n = xqueue_drain(c->ackq, items, ACK_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (items[i].gen != c->gen || c->conn == NULL ||
			    ack_window_settle(&c->win, items[i].tag, items[i].kind) < 0) {
				stats_add(&c->stats->ack_stale, 1);
				continue;
			}
			c->unsent++;
			if (items[i].kind == ACK_ACK)
				stats_add(&c->stats->acked, 1);
		}
		if (n < ACK_BATCH)
			break;
	}
	if (c->unsent > 0 && c->ack_due_ns == 0)
		c->ack_due_ns = clock_now_ns() + ACK_LINGER_NS;
	if (c->unsent == 0 || c->conn == NULL || (!force && c->unsent < every))
		return 0;
	c->unsent = 0;
	c->ack_due_ns = 0;
	do {
		k = ack_window_collect(&c->win, acts, ACK_BATCH);
		for (size_t i = 0; i < k; i++) {
			int st;

			/* A stream has no reject (the broker closes the
			 * connection with 540): an ack there is only credit. */
			if (acts[i].kind == ACK_REJECT && !c->stream) {
				st = amqp_basic_reject(c->conn, CHANNEL, acts[i].tag, 0);
			} else {
				st = amqp_basic_ack(c->conn, CHANNEL, acts[i].tag, acts[i].multiple);
			}
			if (st != AMQP_STATUS_OK) {
				snprintf(c->error, sizeof(c->error), "ack: %s", amqp_error_string2(st));
				c->link.alive = false;
				return -1;
			}
		}
	} while (k == ACK_BATCH);
	return 0;
}

/* A frame that is not a delivery arrived.  Returns 0 to go on, -1 to
 * reconnect. */
static int consumer_other_frame(struct mq_consumer *c)
{
	struct mq_link_frame f;

	mq_link_next_frame(&c->link, NULL, &f);
	if (f.ev == LINK_FATAL || f.ev == LINK_CANCELLED) {
		snprintf(c->error, sizeof(c->error), "%s", c->link.error);
		return -1;
	}
	return 0;
}

static const amqp_field_value_t *header(const amqp_envelope_t *env, const char *name)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	size_t n = strlen(name);

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++)
		if (p->headers.entries[i].key.len == n && memcmp(p->headers.entries[i].key.bytes, name, n) == 0)
			return &p->headers.entries[i].value;
	return NULL;
}

/* A stream delivery: its offset (the broker's x-stream-offset header), a
 * gap when offsets jumped (retention removed what we had not read yet),
 * and the phase: before our marker, our marker, after it.  Returns -1 for
 * an offset already seen. */
static int consumer_stream_position(struct mq_consumer *c, const amqp_envelope_t *env, struct job *j)
{
	const amqp_field_value_t *off = header(env, "x-stream-offset");
	const amqp_field_value_t *mark = header(env, MQ_MARKER_HEADER);
	uint64_t o;

	if (off == NULL || (off->kind != AMQP_FIELD_KIND_I64 && off->kind != AMQP_FIELD_KIND_U64) ||
	    off->value.i64 < 0) {
		/* Not from a stream after all: deliver it without an id. */
		j->phase = PHASE_QUEUE;
		return 0;
	}
	o = (uint64_t)off->value.i64;
	if (c->have_offset && o < c->next_offset)
		return -1;
	if (c->have_offset && o > c->next_offset) {
		j->gap = true;
		log_warn("stream_gap", "expected=%llu got=%llu hint=\"retention removed messages before "
		    "they were read: ids before this one cannot be resumed\"",
		    (unsigned long long)c->next_offset, (unsigned long long)o);
	}
	c->have_offset = true;
	c->next_offset = o + 1;
	j->offset = o;
	j->anchor = mark != NULL;
	if (!c->warm) {
		j->phase = PHASE_LIVE;
	} else if (mark != NULL && (mark->kind == AMQP_FIELD_KIND_UTF8 || mark->kind == AMQP_FIELD_KIND_BYTES) &&
	    mark->value.bytes.len == strlen(c->marker) &&
	    memcmp(mark->value.bytes.bytes, c->marker, mark->value.bytes.len) == 0) {
		j->phase = PHASE_MARK;
		c->warm = false;
		log_info("stream_live", "offset=%llu", (unsigned long long)o);
	} else {
		j->phase = PHASE_WARM;
	}
	return 0;
}

/* Consume until the connection fails (-1) or we are told to finish (0). */
static int consumer_session(struct mq_consumer *c)
{
	int poll_ms = 1000;

	if (c->cfg->amqp_heartbeat_s > 0 && (int)c->cfg->amqp_heartbeat_s * 250 < poll_ms)
		poll_ms = (int)c->cfg->amqp_heartbeat_s * 250;
	for (;;) {
		int cmd = atomic_load(&c->command);
		amqp_envelope_t env;
		amqp_rpc_reply_t res;
		struct timeval zero = { 0, 0 };

		if (cmd >= CONSUMER_STOP_CONSUMING && !c->cancelled) {
			amqp_basic_cancel(c->conn, CHANNEL, c->consumer_tag);
			if (!consumer_rpc_ok(c, "basic.cancel"))
				return -1;
			c->cancelled = true;
			log_info("broker_cancelled", "outstanding=%llu",
			    (unsigned long long)ack_window_outstanding(&c->win));
			consumer_post(c, c->state);
		}
		if (consumer_flush_acks(c, c->cancelled || consumer_credit_short(c) ||
		    (c->ack_due_ns != 0 && clock_now_ns() >= c->ack_due_ns)) < 0)
			return -1;
		if (c->cancelled && !c->drained_posted && ack_window_outstanding(&c->win) == 0 &&
		    !amqp_data_in_buffer(c->conn) && !amqp_frames_enqueued(c->conn)) {
			c->drained_posted = true;
			consumer_post(c, c->state);
		}
		if (cmd == CONSUMER_FINISH)
			return 0;
		amqp_maybe_release_buffers(c->conn);
		if (!amqp_data_in_buffer(c->conn) && !amqp_frames_enqueued(c->conn)) {
			struct pollfd pfd[3];
			uint64_t now = clock_now_ns();
			int wait_ms = poll_ms;
			bool urgent = c->cancelled || consumer_credit_short(c);

			/* About to wait: held verdicts go out if their time has
			 * come; the others wait for the deadline, which bounds the
			 * wait.  New verdicts need to wake us only when no
			 * deadline will. */
			if (consumer_flush_acks(c, urgent || (c->ack_due_ns != 0 && now >= c->ack_due_ns)) < 0)
				return -1;
			if (c->ack_due_ns != 0 && c->ack_due_ns <= now)
				c->ack_due_ns = 0;	/* verdicts still out: the first one wakes us */
			if (c->ack_due_ns != 0 && c->ack_due_ns > now &&
			    (c->ack_due_ns - now) / 1000000u + 1 < (uint64_t)wait_ms)
				wait_ms = (int)((c->ack_due_ns - now) / 1000000u + 1);
			pfd[0] = (struct pollfd){ .fd = amqp_get_sockfd(c->conn), .events = POLLIN };
			pfd[1] = (struct pollfd){ .fd = xqueue_fd(c->ackq),
			    .events = (c->ack_due_ns == 0 || urgent) ? POLLIN : 0 };
			pfd[2] = (struct pollfd){ .fd = c->ctl_fd, .events = POLLIN };
			if (poll(pfd, 3, wait_ms) < 0 && errno != EINTR) {
				snprintf(c->error, sizeof(c->error), "poll: %s", strerror(errno));
				return -1;
			}
			if (pfd[2].revents & POLLIN) {
				uint64_t v;

				(void)read(c->ctl_fd, &v, sizeof(v));
			}
			/* Verdicts first: they free prefetch room. */
			if (!(pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
			    (pfd[1].revents & POLLIN || pfd[2].revents & POLLIN))
				continue;
		}
		/* Also services heartbeats when nothing arrived. */
		res = amqp_consume_message(c->conn, &env, &zero, 0);
		if (res.reply_type == AMQP_RESPONSE_NORMAL) {
			struct job j;

			memset(&j, 0, sizeof(j));
			if (c->stream && consumer_stream_position(c, &env, &j) < 0) {
				/* Seen already (a resume starts at its chunk): credit only. */
				if (ack_window_delivered(&c->win, env.delivery_tag) == 0 &&
				    ack_window_settle(&c->win, env.delivery_tag, ACK_ACK) == 0)
					c->unsent++;
				amqp_destroy_envelope(&env);
				continue;
			}
			j.seq = ++c->seq;
			j.tag = env.delivery_tag;
			j.gen = c->gen;
			j.redelivered = env.redelivered != 0;
			j.t_recv_ns = clock_now_ns();
			j.env = env;
			stats_add(&c->stats->consumed, 1);
			if (j.redelivered)
				stats_add(&c->stats->redelivered, 1);
			/* Its verdict will come soon: a deadline instead of a
			 * wake-up for it. */
			if (c->ack_due_ns == 0)
				c->ack_due_ns = j.t_recv_ns + ACK_LINGER_NS;
			if (ack_window_delivered(&c->win, j.tag) < 0 || xqueue_push(c->jobq, &j) < 0) {
				/* Out of memory or shutting down: unacked, so the
				 * broker keeps it; but the sequence must not stall. */
				amqp_destroy_envelope(&j.env);
				snprintf(c->error, sizeof(c->error), "cannot queue delivery");
				return -1;
			}
			continue;
		}
		if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
			if (res.library_error == AMQP_STATUS_TIMEOUT)
				continue;
			if (res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
				if (consumer_other_frame(c) < 0)
					return -1;
				continue;
			}
		}
		mq_link_set_error(&c->link, "consume", res);
		c->link.alive = false;
		snprintf(c->error, sizeof(c->error), "%s", c->link.error);
		return -1;
	}
}

/* Sleep for the backoff delay, unless told to finish.  Returns 1 if told to. */
static int consumer_backoff(struct mq_consumer *c, uint32_t delay_ms)
{
	struct pollfd pfd = { .fd = c->ctl_fd, .events = POLLIN };
	uint64_t end = clock_now_ns() + (uint64_t)delay_ms * 1000000u;

	for (;;) {
		uint64_t now = clock_now_ns();
		int cmd = atomic_load(&c->command);

		if (cmd == CONSUMER_FINISH)
			return 1;
		if (cmd == CONSUMER_STOP_CONSUMING && !c->drained_posted) {
			/* Nothing taken can be settled any more: nothing to drain. */
			c->cancelled = true;
			c->drained_posted = true;
			consumer_post(c, c->state);
		}
		/* Verdicts for a lost channel are dropped here, counted stale. */
		(void)consumer_flush_acks(c, true);
		if (now >= end)
			return 0;
		if (poll(&pfd, 1, (int)((end - now) / 1000000u) + 1) > 0) {
			uint64_t v;

			(void)read(c->ctl_fd, &v, sizeof(v));
		}
	}
}

static void *consumer_main(void *arg)
{
	struct mq_consumer *c = arg;
	bool first = true;
	uint32_t wait;

	for (;;) {
		if (atomic_load(&c->command) >= CONSUMER_STOP_CONSUMING) {
			if (consumer_backoff(c, 100))
				break;
			continue;
		}
		consumer_post(c, first ? BROKER_CONNECTING : BROKER_RECONNECTING);
		if (consumer_connect(c) == 0) {
			int rc;

			if (!first)
				stats_add(&c->stats->broker_reconnects, 1);
			mq_backoff_reset(&c->backoff);
			consumer_post(c, BROKER_CONSUMING);
			rc = consumer_session(c);
			if (rc == 0) {
				(void)consumer_flush_acks(c, true);
				consumer_disconnect(c);
				break;
			}
		}
		first = false;
		wait = mq_backoff_next(&c->backoff);
		log_warn("broker_lost", "error=\"%s\" retry_ms=%u generation=%u", c->error, wait, c->gen);
		consumer_disconnect(c);
		consumer_post(c, BROKER_RECONNECTING);
		if (consumer_backoff(c, wait))
			break;
	}
	consumer_post(c, BROKER_STOPPED);
	return NULL;
}

struct mq_consumer *mq_consumer_start(const struct config *cfg, struct stats *stats,
    struct xqueue *jobq, struct xqueue *ackq, struct xqueue *statusq)
{
	struct mq_consumer *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->cfg = cfg;
	c->stats = stats;
	c->jobq = jobq;
	c->ackq = ackq;
	c->statusq = statusq;
	c->gen = 1;
	c->stream = cfg->amqp_source == CONFIG_SOURCE_STREAM;
	/* Without a history there is nothing to warm: live from "next". */
	c->warm = c->stream && cfg->history_max_bytes > 0;
	mq_backoff_init(&c->backoff, cfg, (unsigned int)(clock_now_ns() ^ (uint64_t)getpid()));
	c->consumer_tag = amqp_empty_bytes;
	atomic_init(&c->command, CONSUMER_RUN);
	c->ctl_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->ctl_fd < 0 || ack_window_init(&c->win, cfg->amqp_prefetch / 2) < 0) {
		if (c->ctl_fd >= 0)
			close(c->ctl_fd);
		free(c);
		return NULL;
	}
	if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
		ack_window_free(&c->win);
		close(c->ctl_fd);
		free(c);
		return NULL;
	}
	/* Named for top -H and the benchmark's per-thread rows. */
	(void)pthread_setname_np(c->thread, "nd-consumer");
	return c;
}

void mq_consumer_command(struct mq_consumer *c, enum consumer_command cmd)
{
	uint64_t one = 1;

	atomic_store(&c->command, cmd);
	while (write(c->ctl_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void mq_consumer_join(struct mq_consumer *c)
{
	if (c == NULL)
		return;
	pthread_join(c->thread, NULL);
	ack_window_free(&c->win);
	close(c->ctl_fd);
	free(c);
}
