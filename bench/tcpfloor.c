/* tcpfloor - the kernel's floor for "one broadcast reaches N connections".
 *
 * No WebSocket, no broker, no event library: the parent accepts N loopback
 * TCP connections and, for each broadcast, writes one small message to every
 * socket with one send() each, split over --threads sender threads; a forked
 * child (the receiver, like wsload) holds the N client sockets in one epoll
 * and reads.  Reach-all is the time from the broadcast's start (a
 * CLOCK_REALTIME timestamp in the message) until the last socket had it.
 * Whatever a gateway does on top of this, it cannot be faster on this box:
 * this is the floor under the broadcast reach-all rows.
 *
 * Output: one JSON line shaped like wsload's ({"connected":N,"bcast_all":
 * {"broadcasts":R,"complete":C,"p50_ms":..,"p99_ms":..,"max_ms":..}}), so
 * scripts/bench records it as the "bare" column of a broadcast scenario.
 *
 * usage: tcpfloor [-n N] [--threads T] [--rounds R] [--interval-ms MS]
 *                 [--size BYTES] [--timeout S]
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAX_THREADS 16
#define MAX_SIZE 4096
#define SOURCES 200	/* 127.0.0.2 .. 127.0.0.201, as wsload */

struct floor_opts {
	int n, threads, rounds, interval_ms, size, timeout_s;
};

struct sender {
	pthread_t th;
	const int *fds;
	int lo, hi;
	const uint8_t *msg;
	size_t len;
	int errors;
};

static void fail(const char *what)
{
	die("tcpfloor", what);
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;

	for (int i = s->lo; i < s->hi; i++)
		if (send(s->fds[i], s->msg, s->len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)s->len)
			s->errors++;
	return NULL;
}

/* The receiver: connect N sockets, then per round read until every socket
 * had the round's message; write one uint64 reach-all (ns) per round to out. */
static int receiver(const struct floor_opts *o, const struct sockaddr_in *srv, int ready_fd, int out_fd)
{
	int ep = epoll_create1(0), one = 1;
	int *got = calloc((size_t)o->n, sizeof(int));
	int *cfd = calloc((size_t)o->n, sizeof(int));
	struct epoll_event evs[512];
	uint8_t buf[MAX_SIZE * 4];

	if (ep < 0 || got == NULL || cfd == NULL)
		fail("receiver setup");
	for (int i = 0; i < o->n; i++) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct epoll_event ev = { .events = EPOLLIN };

		src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % SOURCES));
		if (fd < 0)
			fail("socket");
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (const struct sockaddr *)&src, sizeof(src)) < 0 ||
		    connect(fd, (const struct sockaddr *)srv, sizeof(*srv)) < 0)
			fail("connect");
		cfd[i] = fd;
		ev.data.u32 = (uint32_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			fail("epoll_ctl");
	}
	if (write(ready_fd, "r", 1) != 1)
		fail("ready");
	for (int r = 0; r < o->rounds; r++) {
		int have = 0;
		uint64_t ts = 0, last = 0;

		while (have < o->n) {
			int k = epoll_wait(ep, evs, 512, o->timeout_s * 1000);

			if (k <= 0)
				return 1;	/* the parent reports the missing rounds */
			for (int e = 0; e < k; e++) {
				int idx = (int)evs[e].data.u32;
				ssize_t m = read(cfd[idx], buf, sizeof(buf));

				if (m >= 8 && got[idx] == r) {
					memcpy(&ts, buf, 8);
					got[idx] = r + 1;
					have++;
				}
			}
		}
		last = now_real_ns();
		last -= ts;
		if (write(out_fd, &last, sizeof(last)) != sizeof(last))
			fail("result");
	}
	return 0;
}

#define SYNOPSIS "[-n N] [--threads T] [--rounds R] [--interval-ms MS] [--size BYTES] [--timeout S]"

static int parse_opts(int argc, char **argv, struct floor_opts *o)
{
	const struct bench_opt opts[] = {
		OPT(NULL, 'n', OPT_INT, &o->n, "N", "connections (10000)"),
		OPT("threads", 0, OPT_INT, &o->threads, "T", "sender threads (1, at most 16)"),
		OPT("rounds", 0, OPT_INT, &o->rounds, "R", "broadcasts (10)"),
		OPT("interval-ms", 0, OPT_INT, &o->interval_ms, "MS", "between broadcasts (200)"),
		OPT("size", 0, OPT_INT, &o->size, "BYTES", "message size (100, 8 to 4096)"),
		OPT("timeout", 0, OPT_INT, &o->timeout_s, "S", "longest wait for a round (30)"),
		OPT_END
	};

	bench_options("tcpfloor", SYNOPSIS, opts, argc, argv);
	if (o->n < 1 || o->threads < 1 || o->threads > MAX_THREADS || o->rounds < 1 ||
	    o->size < 8 || o->size > MAX_SIZE || o->interval_ms < 0 || o->timeout_s < 1) {
		fprintf(stderr, "tcpfloor: option out of range\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct floor_opts o = { .n = 10000, .threads = 1, .rounds = 10, .interval_ms = 200,
		.size = 100, .timeout_s = 30 };
	struct sockaddr_in srv = { .sin_family = AF_INET };
	socklen_t sl = sizeof(srv);
	struct sender snd[MAX_THREADS];
	uint8_t msg[MAX_SIZE];
	int ls, one = 1, ready[2], res[2], *fds, complete = 0, send_errors = 0;
	struct hist h;
	pid_t child;

	if (parse_opts(argc, argv, &o) < 0)
		return 2;
	(void)raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (const struct sockaddr *)&srv, sizeof(srv)) < 0 || listen(ls, 4096) < 0 ||
	    getsockname(ls, (struct sockaddr *)&srv, &sl) < 0)
		fail("listen");
	if (pipe(ready) < 0 || pipe(res) < 0)
		fail("pipe");
	child = fork();
	if (child < 0)
		fail("fork");
	if (child == 0) {
		close(ls);
		close(ready[0]);
		close(res[0]);
		_exit(receiver(&o, &srv, ready[1], res[1]));
	}
	close(ready[1]);
	close(res[1]);
	fds = calloc((size_t)o.n, sizeof(int));
	if (fds == NULL)
		fail("calloc");
	for (int i = 0; i < o.n; i++) {
		fds[i] = accept(ls, NULL, NULL);
		if (fds[i] < 0)
			fail("accept");
		(void)setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	{
		char c;

		if (read(ready[0], &c, 1) != 1)
			fail("receiver not ready");
	}
	hist_init(&h);
	memset(msg, 'x', sizeof(msg));
	for (int r = 0; r < o.rounds; r++) {
		uint64_t ts = now_real_ns(), reach;

		memcpy(msg, &ts, 8);
		for (int t = 0; t < o.threads; t++) {
			snd[t] = (struct sender){ .fds = fds, .lo = (int)((long)o.n * t / o.threads),
				.hi = (int)((long)o.n * (t + 1) / o.threads), .msg = msg, .len = (size_t)o.size };
			if (pthread_create(&snd[t].th, NULL, sender_main, &snd[t]) != 0)
				fail("pthread_create");
		}
		for (int t = 0; t < o.threads; t++) {
			pthread_join(snd[t].th, NULL);
			send_errors += snd[t].errors;
		}
		if (read(res[0], &reach, sizeof(reach)) != sizeof(reach))
			break;	/* the receiver timed out */
		hist_add(&h, reach);
		complete++;
		sleep_until_mono_ns(now_mono_ns() + (uint64_t)o.interval_ms * 1000000u);
	}
	for (int i = 0; i < o.n; i++)
		close(fds[i]);
	waitpid(child, NULL, 0);
	printf("{\"tool\":\"tcpfloor\",\"connected\":%d,\"threads\":%d,\"size\":%d,\"send_errors\":%d,"
	    "\"bcast_all\":{\"broadcasts\":%d,\"complete\":%d,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"max_ms\":%.4f}}\n",
	    o.n, o.threads, o.size, send_errors, o.rounds, complete, hist_quantile(&h, 0.5) / 1e6,
	    hist_quantile(&h, 0.99) / 1e6, hist_quantile(&h, 1.0) / 1e6);
	return complete == o.rounds ? 0 : 1;
}
