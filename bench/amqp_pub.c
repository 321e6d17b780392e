/* amqp_pub - publish benchmark notifications to RabbitMQ with rabbitmq-c.
 *
 * Publishes --count messages to the exchange (default "notifications"),
 * either to routing keys user.<i> round robin over --users users (message
 * k goes to user k % U with per-user sequence k / U) or to "broadcast"
 * (sequence k), at a fixed --rate (token bucket: every --tick-ms the
 * messages due are sent as one batch) or as fast as possible (--rate 0).
 * Each body is the JSON of bench_common.h with the send time (CLOCK_REALTIME
 * ns).  Prints one JSON line: published, seconds, achieved rate, the largest
 * backlog behind schedule.
 */
#include "bench_amqp.h"

#include <signal.h>

#define PROG "amqp_pub"

#define SYNOPSIS "--url URL [options]"

int main(int argc, char **argv)
{
	const char *url = NULL, *exchange = "notifications", *prefix = "", *label = "", *delq = NULL;
	int no_declare = 0, declare_only = 0, bcast = 0, persistent = 0, typical = 0;
	long users = 1000, count = 10000, pad_len = 0;
	double rate = 0, tick_ms = 1;
	const struct bench_opt opts[] = {
		OPT("url", 'u', OPT_STR, &url, "URL", NULL),
		OPT("exchange", 'x', OPT_STR, &exchange, "X", "(notifications)"),
		OPT("no-declare", 0, OPT_FLAG, &no_declare, NULL, "do not declare the exchange (topic, durable)"),
		OPT("declare-only", 0, OPT_FLAG, &declare_only, NULL, "declare the exchange and exit"),
		OPT("delete-queue", 0, OPT_STR, &delq, "Q", "delete queue Q (if it exists) and exit"),
		OPT("users", 'U', OPT_LONG, &users, "U", "round robin over user.0 .. user.(U-1) (1000)"),
		OPT("user-prefix", 0, OPT_STR, &prefix, "P", "user ids are P<i>"),
		OPT("broadcast", 'b', OPT_FLAG, &bcast, NULL, "routing key \"broadcast\""),
		OPT("rate", 'r', OPT_DOUBLE, &rate, "R", "messages per second, 0 = as fast as possible (0)"),
		OPT("count", 'n', OPT_LONG, &count, "M", "messages to send (10000)"),
		OPT("tick-ms", 0, OPT_DOUBLE, &tick_ms, "T", "token bucket tick (1)"),
		OPT("pad", 0, OPT_LONG, &pad_len, "BYTES", "extra body bytes (0)"),
		OPT("typical", 0, OPT_FLAG, &typical, NULL, "the pad is typical notification JSON, not 'x's"),
		OPT("persistent", 0, OPT_FLAG, &persistent, NULL, "delivery mode 2 (default transient)"),
		OPT("label", 0, OPT_STR, &label, "S", NULL),
		OPT_END
	};
	amqp_connection_state_t conn;
	amqp_basic_properties_t props;
	char *pad, body[65536 + 512], user[160], rk[200];
	uint64_t t0, next_tick, tick_ns, max_behind = 0, late_ticks = 0;
	long sent = 0;
	int rc = 0;

	bench_options(PROG, SYNOPSIS, opts, argc, argv);
	if (url == NULL || users < 1 || pad_len > 65536 || tick_ms <= 0)
		bench_usage(PROG, SYNOPSIS, opts);
	signal(SIGPIPE, SIG_IGN);
	conn = amqp_open_url(PROG, url);
	if (delq != NULL) {
		amqp_queue_delete_ok_t *ok = amqp_queue_delete(conn, 1, amqp_cstring_bytes(delq), 0, 0);

		amqp_reply_ok(PROG, amqp_get_rpc_reply(conn), "queue.delete");
		printf("{\"tool\":\"amqp_pub\",\"deleted\":\"%s\",\"messages\":%ld}\n", delq,
		    ok != NULL ? (long)ok->message_count : -1L);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
		return ok != NULL ? 0 : 1;
	}
	if (!no_declare)
		amqp_declare_exchange(PROG, conn, exchange);
	if (declare_only) {
		amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
		printf("{\"tool\":\"amqp_pub\",\"declared\":\"%s\"}\n", exchange);
		return 0;
	}
	pad = typical ? make_typical_pad(pad_len) : make_pad(pad_len);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.content_type = amqp_cstring_bytes("application/json");
	props.delivery_mode = persistent ? 2 : 1;

	tick_ns = (uint64_t)(tick_ms * 1e6);
	t0 = now_mono_ns();
	next_tick = t0;
	while (sent < count) {
		long due;

		if (rate > 0) {
			uint64_t now = now_mono_ns();

			due = (long)((double)(now - t0) * rate / 1e9) + 1;
			if (due > count)
				due = count;
			if (due - sent > (long)max_behind)
				max_behind = (uint64_t)(due - sent);
		} else {
			due = count;
		}
		while (sent < due) {
			int n, st;

			if (bcast) {
				n = body_format(body, sizeof(body), NULL, sent, sent, now_real_ns(), pad);
				snprintf(rk, sizeof(rk), "broadcast");
			} else {
				long u = sent % users;

				snprintf(user, sizeof(user), "%s%ld", prefix, u);
				n = body_format(body, sizeof(body), user, sent / users, sent, now_real_ns(), pad);
				snprintf(rk, sizeof(rk), "user.%s", user);
			}
			st = amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(rk),
			    0, 0, &props, (amqp_bytes_t){ .len = (size_t)n, .bytes = body });
			if (st != AMQP_STATUS_OK) {
				fprintf(stderr, "amqp_pub: publish failed: %s\n", amqp_error_string2(st));
				rc = 1;
				goto out;
			}
			sent++;
		}
		if (rate > 0 && sent < count) {
			uint64_t now = now_mono_ns();

			next_tick += tick_ns;
			if (next_tick > now)
				sleep_until_mono_ns(next_tick);
			else {
				late_ticks++;
				if (now - next_tick > 100 * tick_ns)
					next_tick = now;	/* do not try to catch up forever */
			}
		}
	}
out:
	{
		double secs = (double)(now_mono_ns() - t0) / 1e9;

		amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
		printf("{\"tool\":\"amqp_pub\",\"label\":\"%s\",\"broadcast\":%s,\"users\":%ld,\"rate_wanted\":%.1f,"
		    "\"published\":%ld,\"seconds\":%.4f,\"rate\":%.1f,\"max_behind\":%" PRIu64 ",\"late_ticks\":%" PRIu64
		    ",\"ok\":%s}\n", label, bcast ? "true" : "false", users, rate, sent, secs,
		    secs > 0 ? (double)sent / secs : 0, max_behind, late_ticks, rc == 0 ? "true" : "false");
	}
	return rc;
}
