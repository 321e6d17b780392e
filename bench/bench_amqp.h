/* bench_amqp.h - open a rabbitmq-c connection from an amqp:// URL (header only). */
#ifndef BENCH_AMQP_H
#define BENCH_AMQP_H

#include "bench_common.h"

#if defined(__has_include)
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#endif

static inline int amqp_reply_ok(const char *prog, amqp_rpc_reply_t r, const char *what)
{
	char buf[256];

	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		return 1;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		fprintf(stderr, "%s: %s: %s\n", prog, what, amqp_error_string2(r.library_error));
		return 0;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			snprintf(buf, sizeof(buf), "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
			fprintf(stderr, "%s: %s: connection closed: %u %s\n", prog, what, m->reply_code, buf);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			snprintf(buf, sizeof(buf), "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
			fprintf(stderr, "%s: %s: channel closed: %u %s\n", prog, what, m->reply_code, buf);
		} else {
			fprintf(stderr, "%s: %s: server exception 0x%08x\n", prog, what, r.reply.id);
		}
		return 0;
	default:
		fprintf(stderr, "%s: %s: no reply\n", prog, what);
		return 0;
	}
}

/* Connects, logs in and opens channel 1; exits on failure. */
static inline amqp_connection_state_t amqp_open_url(const char *prog, const char *url_in)
{
	struct amqp_connection_info ci;
	amqp_connection_state_t conn;
	amqp_socket_t *sock;
	char *url = strdup(url_in);
	int rc;

	if (url == NULL || amqp_parse_url(url, &ci) != AMQP_STATUS_OK) {
		fprintf(stderr, "%s: bad AMQP URL %s\n", prog, url_in);
		exit(2);
	}
	conn = amqp_new_connection();
	sock = amqp_tcp_socket_new(conn);
	if (sock == NULL) {
		fprintf(stderr, "%s: cannot create socket\n", prog);
		exit(1);
	}
	rc = amqp_socket_open(sock, ci.host, ci.port);
	if (rc != AMQP_STATUS_OK) {
		fprintf(stderr, "%s: cannot connect to %s:%d: %s\n", prog, ci.host, ci.port, amqp_error_string2(rc));
		exit(1);
	}
	/* "amqp://host:port/" names the default vhost "/", as notifyd reads it. */
	if (ci.vhost == NULL || ci.vhost[0] == '\0')
		ci.vhost = "/";
	if (!amqp_reply_ok(prog, amqp_login(conn, ci.vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
	    ci.user, ci.password), "login"))
		exit(1);
	amqp_channel_open(conn, 1);
	if (!amqp_reply_ok(prog, amqp_get_rpc_reply(conn), "channel.open"))
		exit(1);
	free(url);
	return conn;
}

static inline void amqp_declare_exchange(const char *prog, amqp_connection_state_t conn, const char *ex)
{
	/* Same arguments as notifyd: topic, durable, not auto-delete. */
	amqp_exchange_declare(conn, 1, amqp_cstring_bytes(ex), amqp_cstring_bytes("topic"), 0, 1, 0, 0,
	    amqp_empty_table);
	if (!amqp_reply_ok(prog, amqp_get_rpc_reply(conn), "exchange.declare"))
		exit(1);
}

#endif
