/* httpload - keep-alive HTTP POST load for notifyd's POST /push and nchan's
 * publisher location.
 *
 * Opens --conns keep-alive connections (libevent bufferevents, a minimal
 * HTTP/1.1 client: Content-Length or chunked responses), and POSTs --count
 * benchmark bodies (bench_common.h: user_id round robin over --users, or
 * "broadcast":true) to --path, where {u} is replaced by the user id (nchan:
 * /pub/{u}).  With --rate R requests are issued on a token bucket (1 ms
 * ticks) to any connection that has room (--pipeline requests in flight
 * each); with --rate 0 every connection keeps --pipeline requests in flight.
 * Prints one JSON line: statuses, completed per second, latency (request
 * written to response read).
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#define PROG "httpload"
#define NSTATUS 600
#define MAXPIPE 64

struct hconn {
	struct bufferevent *bev;
	int idx;
	int inflight;
	uint64_t sent_at[MAXPIPE];	/* ring, mono ns */
	int head;
	/* response parsing */
	int have_headers;
	int status;
	long content_length;	/* -1: chunked */
	int close_after;
	long chunk_left;	/* chunked: bytes left in the current chunk, -1 reading size */
	int up;
};

static struct {
	const char *host, *path, *prefix, *label;
	int port;
	long conns, pipeline, users, count, pad_len;
	int typical;
	int bcast, affinity;
	double rate, duration;
	char headers[4096];
} o;

static struct event_base *base;
static struct sockaddr_in dst;
static struct hconn *hc;
static long issued, completed, okc, errors, reconnects, connected;
static uint64_t status_count[NSTATUS];
static struct hist lat;
static uint64_t t_first_send, t_last_done;	/* mono */
static uint64_t t0_mono;
static int running;
static char *pad;
static long rr;			/* next connection to try */
static struct event *tick_ev;
static char first_error[200];

static void conn_open(struct hconn *c);
static void pump(void);

static void set_error(const char *s)
{
	if (first_error[0] == '\0')
		snprintf(first_error, sizeof(first_error), "%s", s);
}

static void send_request(struct hconn *c)
{
	char body[65536 + 512], user[160], path[600], head[1024 + 4096];
	int n, hn;
	long k = issued++;
	struct evbuffer *out = bufferevent_get_output(c->bev);

	if (o.bcast) {
		n = body_format(body, sizeof(body), NULL, k, k, now_real_ns(), pad);
		snprintf(user, sizeof(user), "broadcast");
	} else {
		long u = k % o.users;

		snprintf(user, sizeof(user), "%s%ld", o.prefix, u);
		n = body_format(body, sizeof(body), user, k / o.users, k, now_real_ns(), pad);
	}
	path_for_user(path, sizeof(path), o.path, user);
	hn = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
	    "Content-Length: %d\r\n%s\r\n", path, o.host, o.port, n, o.headers);
	evbuffer_add(out, head, (size_t)hn);
	evbuffer_add(out, body, (size_t)n);
	c->sent_at[(c->head + c->inflight) % MAXPIPE] = now_mono_ns();
	if (t_first_send == 0)
		t_first_send = c->sent_at[(c->head + c->inflight) % MAXPIPE];
	c->inflight++;
}

static void response_done(struct hconn *c)
{
	uint64_t now = now_mono_ns();

	if (c->inflight > 0) {
		hist_add(&lat, now - c->sent_at[c->head]);
		c->head = (c->head + 1) % MAXPIPE;
		c->inflight--;
	}
	completed++;
	if (c->status > 0 && c->status < NSTATUS)
		status_count[c->status]++;
	if (c->status >= 200 && c->status < 300)
		okc++;
	else {
		char b[64];

		snprintf(b, sizeof(b), "HTTP status %d", c->status);
		set_error(b);
	}
	t_last_done = now;
	c->have_headers = 0;
}

static void conn_lost(struct hconn *c, const char *why)
{
	/* Requests in flight on it are lost: count them as errors. */
	errors += c->inflight;
	completed += c->inflight;
	c->inflight = 0;
	c->head = 0;
	c->have_headers = 0;
	set_error(why);
	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->up)
		connected--;
	c->up = 0;
	if (running && issued < o.count) {
		reconnects++;
		conn_open(c);
	}
}

/* Returns 1 when a whole response was consumed, 0 when more is needed, -1 on error. */
static int parse_one(struct hconn *c, struct evbuffer *in)
{
	if (!c->have_headers) {
		struct evbuffer_ptr pos = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		size_t hl;
		char *h, *line, *save = NULL;

		if (pos.pos < 0)
			return evbuffer_get_length(in) > 65536 ? -1 : 0;
		hl = (size_t)pos.pos + 4;
		h = malloc(hl + 1);
		if (h == NULL)
			return -1;
		evbuffer_remove(in, h, hl);
		h[hl] = '\0';
		c->status = 0;
		c->content_length = 0;
		c->close_after = 0;
		c->chunk_left = -2;	/* not chunked */
		if (sscanf(h, "HTTP/1.%*d %d", &c->status) != 1) {
			free(h);
			return -1;
		}
		for (line = strtok_r(h, "\r\n", &save); line != NULL; line = strtok_r(NULL, "\r\n", &save)) {
			if (strncasecmp(line, "Content-Length:", 15) == 0)
				c->content_length = strtol(line + 15, NULL, 10);
			else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0 && strcasestr(line, "chunked"))
				c->chunk_left = -1;
			else if (strncasecmp(line, "Connection:", 11) == 0 && strcasestr(line, "close"))
				c->close_after = 1;
		}
		free(h);
		c->have_headers = 1;
	}
	if (c->chunk_left == -2) {
		if ((long)evbuffer_get_length(in) < c->content_length)
			return 0;
		evbuffer_drain(in, (size_t)c->content_length);
		return 1;
	}
	for (;;) {		/* chunked */
		if (c->chunk_left == -1) {
			struct evbuffer_ptr pos = evbuffer_search(in, "\r\n", 2, NULL);
			char line[32];
			size_t n;
			long sz;

			if (pos.pos < 0)
				return 0;
			n = (size_t)pos.pos < sizeof(line) - 1 ? (size_t)pos.pos : sizeof(line) - 1;
			evbuffer_copyout(in, line, n);
			line[n] = '\0';
			evbuffer_drain(in, (size_t)pos.pos + 2);
			sz = strtol(line, NULL, 16);
			if (sz == 0) {
				c->chunk_left = -3;	/* trailer: expect CRLF */
			} else {
				c->chunk_left = sz + 2;	/* data + CRLF */
			}
		}
		if (c->chunk_left == -3) {
			struct evbuffer_ptr pos = evbuffer_search(in, "\r\n", 2, NULL);

			if (pos.pos < 0)
				return 0;
			evbuffer_drain(in, (size_t)pos.pos + 2);
			if (pos.pos == 0)
				return 1;
			continue;	/* a trailer header line */
		}
		if ((long)evbuffer_get_length(in) < c->chunk_left)
			return 0;
		evbuffer_drain(in, (size_t)c->chunk_left);
		c->chunk_left = -1;
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct hconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		int r = parse_one(c, in);

		if (r < 0) {
			conn_lost(c, "bad HTTP response");
			return;
		}
		if (r == 0)
			break;
		response_done(c);
		if (c->close_after) {
			conn_lost(c, "server closed the connection");
			return;
		}
	}
	pump();
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct hconn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->up = 1;
		connected++;
		pump();
		return;
	}
	conn_lost(c, what & BEV_EVENT_EOF ? "EOF" : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void conn_open(struct hconn *c)
{
	int one = 1;

	c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		set_error("bufferevent_socket_new");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&dst, sizeof(dst)) != 0) {
		set_error("connect failed");
		bufferevent_free(c->bev);
		c->bev = NULL;
		return;
	}
	setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Issue what is due on connections that have room.  With --affinity the
 * k-th request must go to connection (user % conns) (broadcasts: 0), so
 * that one user's messages are never published out of order; the sender
 * then waits for that connection (head-of-line) rather than using another. */
static void pump(void)
{
	long due;

	if (!running)
		return;
	if (o.rate > 0) {
		due = (long)((double)(now_mono_ns() - t0_mono) * o.rate / 1e9) + 1;
		if (due > o.count)
			due = o.count;
	} else {
		due = o.count;
	}
	if (o.affinity) {
		while (issued < due) {
			struct hconn *c = &hc[o.bcast ? 0 : (issued % o.users) % o.conns];

			if (!c->up || c->inflight >= o.pipeline)
				return;
			send_request(c);
		}
		return;
	}
	for (long tries = 0; issued < due && tries < o.conns; ) {
		struct hconn *c = &hc[rr];

		if (c->up && c->inflight < o.pipeline) {
			send_request(c);
			rr = (rr + 1) % o.conns;
			tries = 0;
		} else {
			rr = (rr + 1) % o.conns;
			tries++;
		}
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t now = now_mono_ns();

	(void)fd;
	(void)what;
	(void)arg;
	if (!running) {
		if (connected == o.conns || (double)(now - t0_mono) / 1e9 > 5) {
			running = 1;
			t0_mono = now_mono_ns();
		} else {
			return;
		}
	}
	pump();
	now = now_mono_ns();
	if (completed >= o.count || (double)(now - t0_mono) / 1e9 >= o.duration)
		event_base_loopbreak(base);
}

static void add_header(const char *prog, const char *arg, void *dst)
{
	char *h = dst;
	size_t hl = strlen(h);

	if (hl + strlen(arg) + 3 >= sizeof(o.headers))
		die(prog, "too many headers");
	snprintf(h + hl, sizeof(o.headers) - hl, "%s\r\n", arg);
}

#define SYNOPSIS "--port N --path TEMPLATE [options]"

static const struct bench_opt opts[] = {
	OPT("host", 'H', OPT_STR, &o.host, "ADDR", "IPv4 server address (127.0.0.1)"),
	OPT("port", 'P', OPT_INT, &o.port, "N", NULL),
	OPT("path", 'a', OPT_STR, &o.path, "TEMPLATE", "e.g. /push or /pub/{u} ({u}: user id, or \"broadcast\")"),
	OPT("conns", 'c', OPT_LONG, &o.conns, "C", "keep-alive connections (32)"),
	OPT("pipeline", 'd', OPT_LONG, &o.pipeline, "D", "requests in flight per connection (1, at most 64)"),
	OPT("affinity", 0, OPT_FLAG, &o.affinity, NULL, "user u always on connection u % C, broadcasts on 0: "
	    "keeps each channel's publishes in order"),
	OPT("users", 'U', OPT_LONG, &o.users, "U", "round robin over user ids 0..U-1 (1000)"),
	OPT("user-prefix", 0, OPT_STR, &o.prefix, "P", NULL),
	OPT("broadcast", 'b', OPT_FLAG, &o.bcast, NULL, "broadcast bodies"),
	OPT("rate", 'r', OPT_DOUBLE, &o.rate, "R", "requests per second, 0 = as fast as the connections go (0)"),
	OPT("count", 'n', OPT_LONG, &o.count, "M", "requests (10000)"),
	OPT("duration", 0, OPT_DOUBLE, &o.duration, "S", "stop after S seconds anyway (60)"),
	OPT_WITH(add_header, "header", 0, o.headers, "'H: V'", "extra request header (repeatable)"),
	OPT("pad", 0, OPT_LONG, &o.pad_len, "BYTES", NULL),
	OPT("typical", 0, OPT_FLAG, &o.typical, NULL, "the pad is typical notification JSON, not 'x's"),
	OPT("label", 0, OPT_STR, &o.label, "S", NULL),
	OPT_END
};

int main(int argc, char **argv)
{
	struct timeval tv = { 0, 1000 };

	o.host = "127.0.0.1";
	o.port = 8081;
	o.path = NULL;
	o.prefix = "";
	o.label = "";
	o.conns = 32;
	o.pipeline = 1;
	o.users = 1000;
	o.count = 10000;
	o.duration = 60;
	bench_options(PROG, SYNOPSIS, opts, argc, argv);
	if (o.path == NULL || o.conns < 1 || o.pipeline < 1 || o.pipeline > MAXPIPE ||
	    o.users < 1 || o.pad_len > 65536)
		bench_usage(PROG, SYNOPSIS, opts);
	ipv4_dst(PROG, &dst, o.host, o.port);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	pad = o.typical ? make_typical_pad(o.pad_len) : make_pad(o.pad_len);
	hist_init(&lat);
	base = event_base_new();
	hc = calloc((size_t)o.conns, sizeof(*hc));
	if (base == NULL || hc == NULL)
		die(PROG, "out of memory");
	t0_mono = now_mono_ns();
	for (long i = 0; i < o.conns; i++) {
		hc[i].idx = (int)i;
		conn_open(&hc[i]);
	}
	tick_ev = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick_ev, &tv);
	event_base_dispatch(base);
	{
		double secs = t_last_done > t_first_send ? (double)(t_last_done - t_first_send) / 1e9 : 0;
		int first = 1;

		printf("{\"tool\":\"httpload\",\"label\":\"%s\",\"path\":\"%s\",\"conns\":%ld,\"pipeline\":%ld,"
		    "\"affinity\":%s,", o.label, o.path, o.conns, o.pipeline, o.affinity ? "true" : "false");
		printf(
		    "\"rate_wanted\":%.1f,\"count\":%ld,\"issued\":%ld,\"completed\":%ld,\"ok\":%ld,\"errors\":%ld,"
		    "\"reconnects\":%ld,\"status\":{", o.rate, o.count,
		    issued, completed, okc, errors, reconnects);
		for (int i = 0; i < NSTATUS; i++)
			if (status_count[i]) {
				printf("%s\"%d\":%" PRIu64, first ? "" : ",", i, status_count[i]);
				first = 0;
			}
		printf("},\"seconds\":%.4f,\"ok_rate\":%.1f,", secs, secs > 0 ? (double)okc / secs : 0);
		hist_json(stdout, "lat", &lat);
		printf(",\"first_error\":\"");
		for (const char *s = first_error; *s; s++)
			if (*s == '"' || *s == '\\')
				printf("\\%c", *s);
			else if ((unsigned char)*s >= 0x20)
				putchar(*s);
		printf("\"}\n");
	}
	return okc == o.count ? 0 : 1;
}
