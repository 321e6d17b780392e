/* amqp_drain - the baseline: a bare rabbitmq-c consumer.
 *
 * Declares a queue like notifyd's (durable, bound to the exchange with
 * user.* and broadcast), sets the same prefetch, consumes with manual acks
 * ("multiple", every --ack-every messages or whenever the socket has nothing
 * more buffered) and measures how fast it drains the broker and the latency
 * from the publisher's timestamp.  It does nothing with a message but parse
 * its body: the most any consumer of that broker can do.  Prints one JSON
 * line.
 */
#include "bench_amqp.h"

#include <signal.h>
#include <sys/time.h>

#define PROG "amqp_drain"

static volatile sig_atomic_t stop;

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

#define SYNOPSIS "--url URL --queue Q [options]"

int main(int argc, char **argv)
{
	const char *url = NULL, *queue = NULL, *exchange = "notifications", *binds = "user.*,broadcast";
	const char *ready = NULL, *label = "";
	long prefetch = 512, ack_every = 0, expect = 0;
	double duration = 60, idle_exit = 3;
	int del = 0, rc = 0;
	const struct bench_opt opts[] = {
		OPT("url", 'u', OPT_STR, &url, "URL", NULL),
		OPT("queue", 'q', OPT_STR, &queue, "Q", NULL),
		OPT("exchange", 'x', OPT_STR, &exchange, "X", "(notifications)"),
		OPT("bind", 'b', OPT_STR, &binds, "LIST", "binding keys (user.*,broadcast)"),
		OPT("prefetch", 'p', OPT_LONG, &prefetch, "N", "basic.qos prefetch count (512, as notifyd)"),
		OPT("ack-every", 'k', OPT_LONG, &ack_every, "K", "ack (multiple) at least every K messages (prefetch/4)"),
		OPT("expect", 'n', OPT_LONG, &expect, "M", "stop after M messages"),
		OPT("duration", 'd', OPT_DOUBLE, &duration, "S", "stop after S seconds (60)"),
		OPT("idle-exit", 'i', OPT_DOUBLE, &idle_exit, "S",
		    "stop after S seconds without a message once one came (3)"),
		OPT("ready-file", 'r', OPT_STR, &ready, "PATH", "created once consuming"),
		OPT("delete-queue", 0, OPT_FLAG, &del, NULL, "delete the queue before leaving"),
		OPT("label", 0, OPT_STR, &label, "S", NULL),
		OPT_END
	};
	amqp_connection_state_t conn;
	struct hist lat;
	uint64_t n = 0, unacked = 0, last_tag = 0, first_rx = 0, last_rx = 0, min_ts = UINT64_MAX;
	uint64_t parse_errors = 0, t_start, last_rx_mono = 0;
	char list[1024], *save = NULL, *tok;

	bench_options(PROG, SYNOPSIS, opts, argc, argv);
	if (url == NULL || queue == NULL || prefetch < 1 || prefetch > 65535)
		bench_usage(PROG, SYNOPSIS, opts);
	if (ack_every <= 0)
		ack_every = prefetch / 4 > 0 ? prefetch / 4 : 1;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	hist_init(&lat);

	conn = amqp_open_url(PROG, url);
	amqp_declare_exchange(PROG, conn, exchange);
	amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
	if (!amqp_reply_ok(PROG, amqp_get_rpc_reply(conn), "queue.declare"))
		return 1;
	snprintf(list, sizeof(list), "%s", binds);
	for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		amqp_queue_bind(conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
		    amqp_cstring_bytes(tok), amqp_empty_table);
		if (!amqp_reply_ok(PROG, amqp_get_rpc_reply(conn), "queue.bind"))
			return 1;
	}
	amqp_basic_qos(conn, 1, 0, (uint16_t)prefetch, 0);
	if (!amqp_reply_ok(PROG, amqp_get_rpc_reply(conn), "basic.qos"))
		return 1;
	amqp_basic_consume(conn, 1, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
	if (!amqp_reply_ok(PROG, amqp_get_rpc_reply(conn), "basic.consume"))
		return 1;
	touch_file(ready, "ready\n");

	t_start = now_mono_ns();
	while (!stop) {
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		struct timeval tv = { 0, 100000 };
		uint64_t now;

		/* Ack what we have when nothing more is waiting in our buffer. */
		if (unacked > 0 && (unacked >= (uint64_t)ack_every ||
		    (!amqp_data_in_buffer(conn) && !amqp_frames_enqueued(conn)))) {
			if (amqp_basic_ack(conn, 1, last_tag, 1) != 0) {
				fprintf(stderr, "amqp_drain: ack failed\n");
				rc = 1;
				break;
			}
			unacked = 0;
		}
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		now = now_mono_ns();
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			struct body_fields f = body_parse(env.message.body.bytes, env.message.body.len);
			uint64_t rt = now_real_ns();

			if (f.ok) {
				hist_add(&lat, rt > f.ts ? rt - f.ts : 0);
				if (f.ts < min_ts)
					min_ts = f.ts;
			} else {
				parse_errors++;
			}
			if (first_rx == 0)
				first_rx = rt;
			last_rx = rt;
			last_rx_mono = now;
			last_tag = env.delivery_tag;
			unacked++;
			n++;
			amqp_destroy_envelope(&env);
			if (expect > 0 && n >= (uint64_t)expect)
				break;
		} else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_TIMEOUT) {
			/* nothing this time */
		} else {
			amqp_reply_ok(PROG, r, "consume");
			rc = 1;
			break;
		}
		if ((double)(now - t_start) / 1e9 >= duration)
			break;
		if (last_rx_mono != 0 && (double)(now - last_rx_mono) / 1e9 >= idle_exit)
			break;
	}
	if (unacked > 0)
		amqp_basic_ack(conn, 1, last_tag, 1);
	if (del) {
		amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
		amqp_get_rpc_reply(conn);
	}
	amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
	{
		double rxspan = last_rx > first_rx ? (double)(last_rx - first_rx) / 1e9 : 0;
		double span = min_ts != UINT64_MAX && last_rx > min_ts ? (double)(last_rx - min_ts) / 1e9 : 0;

		printf("{\"tool\":\"amqp_drain\",\"label\":\"%s\",\"prefetch\":%ld,\"ack_every\":%ld,"
		    "\"received\":%" PRIu64 ",\"expected\":%ld,\"lost\":%ld,\"parse_errors\":%" PRIu64 ","
		    "\"rx_span_s\":%.4f,\"e2e_span_s\":%.4f,\"rx_rate\":%.1f,\"e2e_rate\":%.1f,",
		    label, prefetch, ack_every, n, expect, expect > (long)n ? expect - (long)n : 0, parse_errors,
		    rxspan, span, rxspan > 0 ? (double)n / rxspan : 0, span > 0 ? (double)n / span : 0);
		hist_json(stdout, "lat_unicast", &lat);
		printf(",\"ok\":%s}\n", rc == 0 ? "true" : "false");
	}
	return rc;
}
