/* loop_fixture.c - see loop_fixture.h. */
#include "autoconfig.h"

#include "loop_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "ack_window.h"
#include "auth_jwt.h"
#include "dispatch.h"
#include "history.h"
#include "http_push.h"
#include "http_server.h"
#include "log.h"
#include "loop_base.h"
#include "mq_publisher.h"
#include "peer_table.h"
#include "worker_pool.h"
#include "ws_conn.h"

/* ---- the loop ------------------------------------------------------- */

static void fx_on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

bool fx_step(struct fx *f, uint64_t end_ms)
{
	uint64_t now = clock_now_ms();
	struct timeval tv;

	if (now >= end_ms)
		return false;
	tv.tv_sec = (time_t)((end_ms - now) / 1000);
	tv.tv_usec = (suseconds_t)((end_ms - now) % 1000) * 1000;
	evtimer_add(f->wake, &tv);
	event_base_loop(f->gw.base, EVLOOP_ONCE);
	return true;
}

void fx_run_for(struct fx *f, unsigned ms)
{
	uint64_t end = clock_now_ms() + ms;

	while (fx_step(f, end))
		continue;
}

/* A port nobody listens on now.  The server binds it with SO_REUSEADDR
 * right after; fx_start tries again if someone was quicker. */
static uint16_t fx_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd < 0)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int fx_config(struct fx *f, const char *conf)
{
	char path[] = "/tmp/notifyd-loop-fixture-XXXXXX";
	char err[512];
	size_t len = strlen(conf);
	int fd = mkstemp(path), rc;

	if (fd < 0 || write(fd, conf, len) != (ssize_t)len) {
		printf("# cannot write a temporary config file\n");
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		return -1;
	}
	close(fd);
	rc = config_defaults(&f->cfg) < 0 ? -1 : config_load_file(&f->cfg, path, err, sizeof(err));
	unlink(path);
	if (rc == 0)
		rc = config_set(&f->cfg, "listen_address", "127.0.0.1", err, sizeof(err));
	if (rc == 0)
		rc = config_finish(&f->cfg, err, sizeof(err));
	if (rc < 0)
		printf("# config: %s\n", err);
	return rc;
}


static enum log_level fx_log_level(void)
{
	const char *v = getenv("TEST_NOTIFYD_LOG_LEVEL");

	if (v == NULL)
		return LOG_LVL_ERROR;
	if (strcmp(v, "debug") == 0)
		return LOG_LVL_DEBUG;
	if (strcmp(v, "info") == 0)
		return LOG_LVL_INFO;
	return strcmp(v, "warn") == 0 ? LOG_LVL_WARN : LOG_LVL_ERROR;
}

int fx_start(struct fx *f, const char *conf)
{
	char err[512] = "";
	struct gateway *gw = &f->gw;

	memset(f, 0, sizeof(*f));
	signal(SIGPIPE, SIG_IGN);
	log_init(fx_log_level(), 0, NULL);
	if (fx_config(f, conf) < 0)
		return -1;
	gw->cfg = &f->cfg;
	gw->stats = &f->stats;
	gw->ackq = &f->ackq;
	gw->started_ms = clock_now_ms();
	gw->base = loop_base_new();
	gw->peers = peer_table_new();
	if (gw->base == NULL || gw->peers == NULL || registry_init(&gw->reg) < 0 ||
	    xqueue_init(&f->readyq, "ready", sizeof(struct ready), true) < 0 ||
	    xqueue_init(&f->ackq, "acks", sizeof(struct ack_item), true) < 0 ||
	    xqueue_init(&f->pushq, "push_jobs", sizeof(struct push_job), true) < 0 ||
	    xqueue_init(&f->resultq, "push_results", sizeof(struct push_result), true) < 0 ||
	    (f->wake = evtimer_new(gw->base, fx_on_wake, f)) == NULL) {
		printf("# cannot allocate the loop or its queues\n");
		return -1;
	}
	if (f->cfg.auth == CONFIG_AUTH_JWT) {
		/* As main.c builds the verifier. */
		struct auth_jwt_config ac = {
			.alg = f->cfg.jwt_algorithm, .secret = f->cfg.jwt_secret, .key_file = f->cfg.jwt_key_file,
			.issuer = f->cfg.jwt_issuer, .audience = f->cfg.jwt_audience,
			.user_claim = f->cfg.jwt_user_claim, .leeway_s = f->cfg.jwt_leeway_s,
			.require_exp = f->cfg.jwt_require_exp,
		};

		gw->auth = auth_jwt_new(&ac, err, sizeof(err));
		if (gw->auth == NULL) {
			printf("# auth_jwt_new: %s\n", err);
			return -1;
		}
	}
	for (int attempt = 0; attempt < 20 && gw->http == NULL; attempt++) {
		char port[8];

		f->port = fx_free_port();
		snprintf(port, sizeof(port), "%u", (unsigned)f->port);
		if (f->port == 0 || config_set(&f->cfg, "listen_port", port, err, sizeof(err)) < 0)
			continue;
		gw->http = http_server_start(gw, err, sizeof(err));
	}
	if (gw->http == NULL) {
		printf("# http_server_start: %s\n", err);
		return -1;
	}
	if (f->cfg.amqp_source == CONFIG_SOURCE_STREAM && f->cfg.history_max_bytes > 0) {
		gw->hist = history_new(f->cfg.history_max_bytes, (uint64_t)f->cfg.history_max_age_s * 1000u);
		if (gw->hist == NULL) {
			printf("# cannot allocate the history\n");
			return -1;
		}
	}
	gw->dispatch = dispatch_new(gw, &f->readyq);
	gw->push = http_push_new(gw, &f->pushq, &f->resultq);
	if (gw->dispatch == NULL || gw->push == NULL) {
		printf("# cannot start the dispatcher or the push handler\n");
		return -1;
	}
	return 0;
}

void fx_stop(struct fx *f)
{
	struct gateway *gw = &f->gw;
	struct ready r[64];
	struct push_job j;
	size_t n;

	while (f->clients != NULL)
		fx_close(f->clients);
	if (gw->push != NULL)
		http_push_fail_all(gw->push, "server shutting down");
	http_server_free(gw->http);
	http_push_free(gw->push);
	dispatch_free(gw->dispatch);
	if (f->wake != NULL)
		event_free(f->wake);
	if (gw->base != NULL)
		event_base_free(gw->base);
	registry_free(&gw->reg);
	history_free(gw->hist);
	if (gw->peers != NULL)
		peer_table_free(gw->peers);
	auth_jwt_free(gw->auth);
	/* What no thread took: ready msgs never dispatched, push jobs never
	 * published. */
	if (f->readyq.ring != NULL)
		while ((n = xqueue_drain(&f->readyq, r, 64)) > 0)
			for (size_t i = 0; i < n; i++)
				if (r[i].msg != NULL)
					msg_free(r[i].msg);
	if (f->pushq.ring != NULL)
		while (xqueue_drain(&f->pushq, &j, 1) == 1)
			push_job_free(&j);
	xqueue_destroy(&f->readyq);
	xqueue_destroy(&f->ackq);
	xqueue_destroy(&f->pushq);
	xqueue_destroy(&f->resultq);
	config_free(&f->cfg);
}

/* ---- raw clients ---------------------------------------------------- */

/* Room for 64k more after what is unread. */
static bool fx_client_room(struct fx_client *c)
{
	const size_t want = 65536;

	/* Move the unread bytes to the front when that costs no more than
	 * what it frees. */
	if (c->off > 0 && c->off >= c->len && c->cap - c->off - c->len < want) {
		memmove(c->buf, c->buf + c->off, c->len);
		c->off = 0;
	}
	if (c->cap - c->off - c->len < want) {
		size_t cap = c->cap ? c->cap * 2 : want;
		unsigned char *p;

		while (cap - c->off - c->len < want)
			cap *= 2;
		p = realloc(c->buf, cap + 1);
		if (p == NULL)
			return false;
		c->buf = p;
		c->cap = cap;
	}
	c->in = c->buf + c->off;
	return true;
}

static void fx_client_read(evutil_socket_t fd, short what, void *arg)
{
	struct fx_client *c = arg;

	(void)what;
	for (;;) {
		ssize_t n;

		if (!fx_client_room(c))
			return;
		n = recv(fd, c->in + c->len, c->cap - c->off - c->len, 0);
		if (n > 0) {
			c->len += (size_t)n;
			c->in[c->len] = '\0';
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		/* 0: the server closed; < 0: it reset. */
		c->eof = true;
		event_del(c->ev);
		return;
	}
}

struct fx_client *fx_connect(struct fx *f, int rcvbuf)
{
	struct fx_client *c = calloc(1, sizeof(*c));
	struct sockaddr_in sa;
	int one = 1;

	if (c == NULL)
		return NULL;
	c->f = f;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(f->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd >= 0 && rcvbuf > 0)
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (c->fd >= 0)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Blocking connect: the kernel completes it from the listen backlog,
	 * with no help from the loop. */
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0 ||
	    (c->ev = event_new(f->gw.base, c->fd, EV_READ | EV_PERSIST, fx_client_read, c)) == NULL ||
	    event_add(c->ev, NULL) < 0) {
		printf("# fx_connect: %s\n", strerror(errno));
		if (c->ev != NULL)
			event_free(c->ev);
		if (c->fd >= 0)
			close(c->fd);
		free(c);
		return NULL;
	}
	c->next = f->clients;
	f->clients = c;
	return c;
}

int fx_send(struct fx_client *c, const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t end = clock_now_ms() + 5000;

	while (n > 0) {
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);

		if (w > 0) {
			b += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		/* Full: let the server read. */
		if (!fx_step(c->f, clock_now_ms() + 10 < end ? clock_now_ms() + 10 : end))
			return -1;
	}
	return 0;
}

int fx_sends(struct fx_client *c, const char *s)
{
	return fx_send(c, s, strlen(s));
}

void fx_pause(struct fx_client *c, bool paused)
{
	if (c->paused == paused)
		return;
	c->paused = paused;
	if (c->eof)
		return;
	if (paused)
		event_del(c->ev);
	else
		event_add(c->ev, NULL);
}

bool fx_wait_eof(struct fx_client *c, unsigned ms)
{
	FX_WAIT(c->f, ms, c->eof);
	return c->eof;
}

bool fx_wait_text(struct fx_client *c, const char *text, unsigned ms)
{
	FX_WAIT(c->f, ms, c->len > 0 && strstr((const char *)c->in, text) != NULL);
	return c->len > 0 && strstr((const char *)c->in, text) != NULL;
}

void fx_close(struct fx_client *c)
{
	struct fx_client **pp = &c->f->clients;

	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	event_free(c->ev);
	close(c->fd);
	free(c->buf);
	free(c);
}

void fx_consume(struct fx_client *c, size_t n)
{
	if (n > c->len)
		n = c->len;
	c->len -= n;
	c->off = c->len > 0 ? c->off + n : 0;
	if (c->buf != NULL) {
		c->in = c->buf + c->off;
		c->in[c->len] = '\0';
	}
}

/* ---- HTTP ----------------------------------------------------------- */

/* Bytes of the head at the front of the buffer (0: not whole yet). */
static size_t fx_head_len(const struct fx_client *c)
{
	const char *e = c->len > 0 ? strstr((const char *)c->in, "\r\n\r\n") : NULL;

	return e != NULL ? (size_t)(e - (const char *)c->in) + 4 : 0;
}

bool fx_has_header(const struct fx_resp *r, const char *name, const char *value)
{
	size_t nl = strlen(name);

	for (const char *line = strstr(r->head, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
		const char *v;
		size_t vl;

		line += 2;
		if (strncasecmp(line, name, nl) != 0 || line[nl] != ':')
			continue;
		v = line + nl + 1;
		while (*v == ' ')
			v++;
		vl = strcspn(v, "\r");
		if (value == NULL || (strlen(value) == vl && strncmp(v, value, vl) == 0))
			return true;
	}
	return false;
}

/* One whole answer at the front of c->in: its length, 0 when not yet. */
static size_t fx_parse_response(struct fx_client *c, struct fx_resp *r)
{
	size_t hl = fx_head_len(c), cl = 0;
	const char *p;

	if (hl == 0 || hl >= sizeof(r->head))
		return 0;
	memcpy(r->head, c->in, hl);
	r->head[hl] = '\0';
	r->status = 0;
	if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1)
		return 0;
	for (p = r->head; (p = strstr(p, "\r\n")) != NULL; ) {
		p += 2;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			cl = strtoul(p + 15, NULL, 10);
	}
	if (r->status == 100 || r->status == 101)
		cl = 0;
	if (c->len < hl + cl || cl >= sizeof(r->body))
		return 0;
	memcpy(r->body, c->in + hl, cl);
	r->body[cl] = '\0';
	r->body_len = cl;
	return hl + cl;
}

int fx_read_response(struct fx_client *c, struct fx_resp *r, unsigned ms)
{
	uint64_t end = clock_now_ms() + ms;
	bool cont = false;
	size_t n;

	memset(r, 0, sizeof(*r));
	for (;;) {
		n = fx_parse_response(c, r);
		if (n > 0 && r->status == 100) {
			cont = true;
			fx_consume(c, n);
			continue;
		}
		/* eof: everything the server sent was read before it. */
		if (n > 0 || c->eof || !fx_step(c->f, end))
			break;
	}
	r->got_continue = cont;
	if (n == 0) {
		r->status = 0;
		return 0;
	}
	fx_consume(c, n);
	return r->status;
}

const char *fx_show(const char *s)
{
	static char buf[2][124];
	static int turn;
	char *o = buf[turn ^= 1];
	size_t n = 0;

	for (; s != NULL && *s != '\0' && n < 120; s++)
		o[n++] = (unsigned char)*s < 0x20 ? ' ' : *s;
	o[n] = '\0';
	return o;
}

int fx_request(struct fx *f, const char *raw, struct fx_resp *r)
{
	struct fx_client *c = fx_connect(f, 0);
	int status = 0;

	memset(r, 0, sizeof(*r));
	if (c == NULL)
		return 0;
	if (fx_sends(c, raw) == 0)
		status = fx_read_response(c, r, 3000);
	fx_close(c);
	return status;
}

/* ---- WebSocket ------------------------------------------------------ */

int fx_ws_request(char *buf, size_t len, const char *query, const char *extra)
{
	return snprintf(buf, len, "GET /ws?%s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: " FX_WS_KEY "\r\nSec-WebSocket-Version: 13\r\n"
	    "%s\r\n", query, extra != NULL ? extra : "");
}

struct fx_client *fx_ws_open(struct fx *f, const char *user, int rcvbuf)
{
	struct fx_client *c = fx_connect(f, rcvbuf);
	struct fx_resp r;
	char q[300], req[1024];

	if (c == NULL)
		return NULL;
	snprintf(q, sizeof(q), "userId=%s", user);
	fx_ws_request(req, sizeof(req), q, NULL);
	if (fx_sends(c, req) < 0 || fx_read_response(c, &r, 3000) != 101 ||
	    !fx_has_header(&r, "Sec-WebSocket-Accept", FX_WS_ACCEPT)) {
		printf("# upgrade for %s failed: %d %s\n", user, r.status, r.body);
		fx_close(c);
		return NULL;
	}
	return c;
}

size_t fx_ws_encode(uint8_t *out, uint8_t opcode, bool fin, const void *payload, size_t len)
{
	static const uint8_t mask[4] = { 0x12, 0x34, 0x56, 0x78 };
	const uint8_t *p = payload;
	size_t h = 0;

	out[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (len < 126) {
		out[h++] = (uint8_t)(0x80 | len);
	} else if (len < 65536) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(len >> 8);
		out[h++] = (uint8_t)len;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			out[h++] = (uint8_t)((uint64_t)len >> (8 * i));
	}
	memcpy(out + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < len; i++)
		out[h + i] = p[i] ^ mask[i % 4];
	return h + len;
}

int fx_ws_send(struct fx_client *c, uint8_t opcode, const void *payload, size_t len)
{
	uint8_t *buf = malloc(len + 14);
	int rc;

	if (buf == NULL)
		return -1;
	rc = fx_send(c, buf, fx_ws_encode(buf, opcode, true, payload, len));
	free(buf);
	return rc;
}

/* A whole frame at the front of the buffer: fills fr, returns its length. */
static size_t fx_parse_frame(const struct fx_client *c, struct fx_frame *fr)
{
	const uint8_t *p = c->in;
	size_t h = 2, len;

	if (c->len < 2)
		return 0;
	len = p[1] & 0x7f;
	if (len == 126) {
		if (c->len < 4)
			return 0;
		len = (size_t)p[2] << 8 | p[3];
		h = 4;
	} else if (len == 127) {
		if (c->len < 10)
			return 0;
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | p[i];
		h = 10;
	}
	fr->masked = (p[1] & 0x80) != 0;
	if (fr->masked)
		h += 4;
	if (c->len < h + len)
		return 0;
	fr->opcode = p[0] & 0x0f;
	fr->fin = (p[0] & 0x80) != 0;
	fr->len = len;
	fr->payload = malloc(len + 1);
	if (fr->payload == NULL)
		return 0;
	memcpy(fr->payload, p + h, len);
	fr->payload[len] = '\0';
	fr->code = fr->opcode == 0x8 && len >= 2 ? (uint16_t)(fr->payload[0] << 8 | fr->payload[1]) : 0;
	return h + len;
}

int fx_ws_read(struct fx_client *c, struct fx_frame *fr, unsigned ms)
{
	uint64_t end = clock_now_ms() + ms;
	size_t n;

	memset(fr, 0, sizeof(*fr));
	while ((n = fx_parse_frame(c, fr)) == 0) {
		if (c->eof || !fx_step(c->f, end))
			return 0;
	}
	fx_consume(c, n);
	return 1;
}

void fx_frame_free(struct fx_frame *fr)
{
	free(fr->payload);
	fr->payload = NULL;
}

/* ---- the other threads' ends of the queues --------------------------- */

int fx_ready(struct fx *f, uint64_t seq, uint64_t tag, const char *routing_key, const char *body)
{
	struct job j;
	struct ready r;
	enum reject_reason why = REJECT_REASON_COUNT;

	/* Queue mode: no stream offset, phase PHASE_QUEUE (0). */
	memset(&j, 0, sizeof(j));
	memset(&r, 0, sizeof(r));
	j.seq = seq;
	j.tag = tag;
	j.gen = 1;
	j.t_recv_ns = clock_now_ns();
	j.env.routing_key.bytes = (void *)(uintptr_t)routing_key;
	j.env.routing_key.len = strlen(routing_key);
	j.env.message.body.bytes = (void *)(uintptr_t)body;
	j.env.message.body.len = strlen(body);
	r.seq = seq;
	r.msg = worker_prepare(&j, f->cfg.max_message_size, &why);
	if (r.msg == NULL) {
		printf("# worker_prepare refused %s: %s\n", routing_key, stats_reject_name(why));
		return -1;
	}
	if (xqueue_push(&f->readyq, &r) < 0) {
		msg_free(r.msg);
		return -1;
	}
	return 0;
}

int fx_ready_rejected(struct fx *f, uint64_t seq)
{
	struct ready r = { .seq = seq, .msg = NULL };

	return xqueue_push(&f->readyq, &r);
}

size_t fx_acks(struct fx *f, struct ack_item *out, size_t max)
{
	return xqueue_drain(&f->ackq, out, max);
}

bool fx_wait_acks(struct fx *f, struct ack_item *out, size_t *have, size_t n, unsigned ms)
{
	uint64_t end = clock_now_ms() + ms;

	for (;;) {
		*have += fx_acks(f, out + *have, n - *have);
		if (*have >= n || !fx_step(f, end))
			return *have >= n;
	}
}

char *fx_body(unsigned n, size_t size)
{
	char *b = malloc(size + 48);
	int h;

	if (b == NULL)
		return NULL;
	h = sprintf(b, "{\"n\":%u,\"pad\":\"", n);
	for (; (size_t)h + 2 < size; h++)
		b[h] = (char)('a' + h % 26);
	strcpy(b + h, "\"}");
	return b;
}

unsigned fx_body_n(const uint8_t *payload)
{
	const char *p = strstr((const char *)payload, "{\"n\":");

	return p == (const char *)payload ? (unsigned)strtoul(p + 5, NULL, 10) : 0;
}

size_t fx_fill(struct fx *f, const char *routing_key, size_t size, uint64_t *seq, size_t max,
    size_t *acked, bool (*stop)(struct fx *f))
{
	struct ack_item a[64];
	size_t pushed = 0, got = 0;
	uint64_t before = dispatch_in_flight(f->gw.dispatch);

	while (pushed < max) {
		/* One at a time: each is the first frame of a dispatcher pass. */
		size_t round = 1;

		for (size_t i = 0; i < round; i++, pushed++, (*seq)++) {
			char *b = fx_body((unsigned)*seq, size);
			int rc = b != NULL ? fx_ready(f, *seq, *seq, routing_key, b) : -1;

			free(b);
			if (rc < 0)
				return pushed;
		}
		/* Taken: every msg pushed is acked or in flight. */
		for (uint64_t end = clock_now_ms() + 3000;;) {
			size_t n = fx_acks(f, a, 64);

			got += n;
			if (n == 0 && (got + dispatch_in_flight(f->gw.dispatch) >= before + pushed ||
			    !fx_step(f, end)))
				break;
		}
		if (stop(f))
			break;
	}
	*acked += got;
	return pushed;
}
