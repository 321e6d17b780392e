#include "autoconfig.h"

#include "mq_link.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_RABBITMQ_C_AMQP_H
#include <rabbitmq-c/ssl_socket.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#endif

#include "log.h"

#define CONNECT_TIMEOUT_S 5

void mq_link_set_error(struct mq_link *l, const char *what, amqp_rpc_reply_t r)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(l->error, sizeof(l->error), "%s: ok", what);
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(l->error, sizeof(l->error), "%s: missing reply", what);
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(l->error, sizeof(l->error), "%s: %s", what, amqp_error_string2(r.library_error));
		l->alive = false;
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			const amqp_connection_close_t *m = r.reply.decoded;

			snprintf(l->error, sizeof(l->error), "%s: connection closed %u %.*s", what,
			    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
			l->alive = false;
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			const amqp_channel_close_t *m = r.reply.decoded;

			snprintf(l->error, sizeof(l->error), "%s: channel closed %u %.*s", what,
			    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else {
			snprintf(l->error, sizeof(l->error), "%s: server method 0x%08x", what, r.reply.id);
		}
		break;
	}
}

int mq_link_rpc_ok(struct mq_link *l, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(l->conn);

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 1;
	mq_link_set_error(l, what, r);
	return 0;
}

static amqp_socket_t *link_tls_socket(struct mq_link *l, const struct config *cfg)
{
	amqp_socket_t *sock = amqp_ssl_socket_new(l->conn);
	int st;

	if (sock == NULL) {
		snprintf(l->error, sizeof(l->error), "cannot create a TLS socket");
		return NULL;
	}
	amqp_ssl_socket_set_verify_peer(sock, cfg->amqp_verify_peer);
	amqp_ssl_socket_set_verify_hostname(sock, cfg->amqp_verify_peer);
	if (cfg->amqp_ca_file[0] != '\0') {
		st = amqp_ssl_socket_set_cacert(sock, cfg->amqp_ca_file);
		if (st != AMQP_STATUS_OK) {
			snprintf(l->error, sizeof(l->error), "amqp_ca_file %s: %s", cfg->amqp_ca_file,
			    amqp_error_string2(st));
			return NULL;
		}
	}
	if (cfg->amqp_cert_file[0] != '\0') {
		st = amqp_ssl_socket_set_key(sock, cfg->amqp_cert_file, cfg->amqp_key_file);
		if (st != AMQP_STATUS_OK) {
			snprintf(l->error, sizeof(l->error), "amqp_cert_file/amqp_key_file: %s",
			    amqp_error_string2(st));
			return NULL;
		}
	}
	return sock;
}

int mq_link_open(struct mq_link *l, const struct config *cfg, const char *role)
{
	struct amqp_connection_info info;
	struct timeval tv = { CONNECT_TIMEOUT_S, 0 };
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	amqp_table_entry_t prop[2], cap[2];
	amqp_table_t props;
	char name[128], host[64];
	char *url = strdup(cfg->amqp_url);
	const char *vhost;
	int st;

	memset(l, 0, sizeof(*l));
	if (url == NULL) {
		snprintf(l->error, sizeof(l->error), "out of memory");
		return -1;
	}
	amqp_default_connection_info(&info);
	if (amqp_parse_url(url, &info) != AMQP_STATUS_OK) {
		snprintf(l->error, sizeof(l->error), "amqp_url cannot be parsed");
		goto fail;
	}
	/* "amqp://host/" names the vhost "", which no broker has: the
	 * contract's default URL means "/". */
	vhost = (info.vhost == NULL || *info.vhost == '\0') ? "/" : info.vhost;
	l->conn = amqp_new_connection();
	if (l->conn == NULL) {
		snprintf(l->error, sizeof(l->error), "out of memory");
		goto fail;
	}
	sock = info.ssl ? link_tls_socket(l, cfg) : amqp_tcp_socket_new(l->conn);
	if (sock == NULL) {
		if (l->error[0] == '\0')
			snprintf(l->error, sizeof(l->error), "cannot create a socket");
		goto fail;
	}
	st = amqp_socket_open_noblock(sock, info.host, info.port, &tv);
	if (st != AMQP_STATUS_OK) {
		snprintf(l->error, sizeof(l->error), "connect %s:%d: %s", info.host, info.port,
		    amqp_error_string2(st));
		goto fail;
	}
	l->alive = true;
	amqp_set_handshake_timeout(l->conn, &tv);
	amqp_set_rpc_timeout(l->conn, &tv);
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "?");
	host[sizeof(host) - 1] = '\0';
	snprintf(name, sizeof(name), "notifyd %s %s pid %d", role, host, (int)getpid());
	/* The broker tells only clients that ask: blocked publishers must
	 * answer 503 instead of hanging, and a deleted queue must be noticed. */
	cap[0].key = amqp_cstring_bytes("connection.blocked");
	cap[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	cap[0].value.value.boolean = 1;
	cap[1].key = amqp_cstring_bytes("consumer_cancel_notify");
	cap[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	cap[1].value.value.boolean = 1;
	prop[0].key = amqp_cstring_bytes("connection_name");
	prop[0].value.kind = AMQP_FIELD_KIND_UTF8;
	prop[0].value.value.bytes = amqp_cstring_bytes(name);
	prop[1].key = amqp_cstring_bytes("capabilities");
	prop[1].value.kind = AMQP_FIELD_KIND_TABLE;
	prop[1].value.value.table.num_entries = 2;
	prop[1].value.value.table.entries = cap;
	props.num_entries = 2;
	props.entries = prop;
	r = amqp_login_with_properties(l->conn, vhost, 0, 131072, (int)cfg->amqp_heartbeat_s,
	    &props, AMQP_SASL_METHOD_PLAIN, info.user, info.password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		mq_link_set_error(l, "login", r);
		l->alive = false;
		goto fail;
	}
	amqp_channel_open(l->conn, MQ_LINK_CHANNEL);
	if (!mq_link_rpc_ok(l, "channel.open"))
		goto fail;
	free(url);
	return 0;
fail:
	free(url);
	mq_link_close(l);
	return -1;
}

void mq_link_close(struct mq_link *l)
{
	if (l->conn == NULL)
		return;
	if (l->alive) {
		struct timeval tv = { 1, 0 };

		amqp_set_rpc_timeout(l->conn, &tv);
		amqp_channel_close(l->conn, MQ_LINK_CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(l->conn, AMQP_REPLY_SUCCESS);
	}
	amqp_destroy_connection(l->conn);
	l->conn = NULL;
	l->alive = false;
	l->blocked = false;
}

void mq_link_next_frame(struct mq_link *l, struct timeval *timeout, struct mq_link_frame *f)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t fr;
	int st = amqp_simple_wait_frame_noblock(l->conn, &fr, timeout != NULL ? timeout : &zero);

	f->ev = LINK_NONE;
	f->tag = 0;
	f->multiple = false;
	if (st == AMQP_STATUS_TIMEOUT)
		return;
	if (st != AMQP_STATUS_OK) {
		snprintf(l->error, sizeof(l->error), "read: %s", amqp_error_string2(st));
		l->alive = false;
		f->ev = LINK_FATAL;
		return;
	}
	if (fr.frame_type != AMQP_FRAME_METHOD)
		return;
	switch (fr.payload.method.id) {
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *m = fr.payload.method.decoded;
		amqp_channel_close_ok_t okm;

		snprintf(l->error, sizeof(l->error), "channel closed by broker: %u %.*s",
		    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		amqp_send_method(l->conn, MQ_LINK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &okm);
		f->ev = LINK_FATAL;
		return;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *m = fr.payload.method.decoded;
		amqp_connection_close_ok_t okm;

		snprintf(l->error, sizeof(l->error), "connection closed by broker: %u %.*s",
		    m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		amqp_send_method(l->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &okm);
		l->alive = false;
		f->ev = LINK_FATAL;
		return;
	}
	case AMQP_BASIC_CANCEL_METHOD:
		snprintf(l->error, sizeof(l->error), "consumer cancelled by the broker");
		f->ev = LINK_CANCELLED;
		return;
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *m = fr.payload.method.decoded;

		f->ev = LINK_CONFIRM_ACK;
		f->tag = m->delivery_tag;
		f->multiple = m->multiple != 0;
		return;
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *m = fr.payload.method.decoded;

		f->ev = LINK_CONFIRM_NACK;
		f->tag = m->delivery_tag;
		f->multiple = m->multiple != 0;
		return;
	}
	case AMQP_BASIC_RETURN_METHOD: {
		amqp_message_t msg;

		if (amqp_read_message(l->conn, fr.channel, &msg, 0).reply_type == AMQP_RESPONSE_NORMAL)
			amqp_destroy_message(&msg);
		f->ev = LINK_RETURNED;
		return;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD:
		l->blocked = true;
		log_warn("broker_blocked", "why=\"resource alarm: publishing is paused\"");
		return;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		l->blocked = false;
		log_info("broker_unblocked", "why=\"resource alarm cleared\"");
		return;
	default:
		return;
	}
}

int mq_link_reopen_channel(struct mq_link *l)
{
	amqp_channel_close_ok_t close_ok = { 0 };

	amqp_send_method(l->conn, MQ_LINK_CHANNEL, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
	amqp_channel_open(l->conn, MQ_LINK_CHANNEL);
	return mq_link_rpc_ok(l, "channel.open") ? 0 : -1;
}

void mq_link_cork(struct mq_link *l, bool on)
{
	int fd = amqp_get_sockfd(l->conn), v = on;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
}

void mq_link_confirm(struct seq_window *w, const struct mq_link_frame *f)
{
	uint8_t v = f->ev == LINK_CONFIRM_NACK ? MQ_CONFIRM_NACK : MQ_CONFIRM_ACK;

	if (seq_window_state(w, f->tag) == 0)
		return;
	if (f->multiple) {
		for (uint64_t s = seq_window_find(w, w->base, MQ_CONFIRM_WAIT); s <= f->tag;
		    s = seq_window_find(w, s + 1, MQ_CONFIRM_WAIT))
			(void)seq_window_set(w, s, v);
	} else {
		(void)seq_window_set(w, f->tag, v);
	}
}

void mq_backoff_init(struct mq_backoff *b, const struct config *cfg, unsigned int seed)
{
	b->min_ms = cfg->amqp_reconnect_min_ms;
	b->max_ms = cfg->amqp_reconnect_max_ms;
	b->delay_ms = b->min_ms;
	b->seed = seed;
}

void mq_backoff_reset(struct mq_backoff *b)
{
	b->delay_ms = b->min_ms;
}

uint32_t mq_backoff_next(struct mq_backoff *b)
{
	uint32_t d = b->delay_ms;
	uint32_t wait = d / 2 + (uint32_t)(rand_r(&b->seed) % (d / 2 + 1));

	b->delay_ms = d > b->max_ms / 2 ? b->max_ms : d * 2;
	return wait;
}
