/* wsfloor - the floor under the connect-storm rows: the least a WebSocket
 * server can do per connection on this box.
 *
 * One thread, one epoll, no event library, no HTTP parser: accept, read the
 * request up to the blank line, find Sec-WebSocket-Key, answer 101 with its
 * Sec-WebSocket-Accept (SHA-1 and base64, RFC 6455 4.2.2), then keep the
 * socket until the peer closes it.  No routing, no limits, no logging, no
 * token check.  wsload's connect rate against it is what the box allows
 * with the load tool on the same cores; scripts/bench records it as the
 * "bare" column of the storm rows.
 *
 * usage: wsfloor --port P [--ready-file F] [--duration S]
 * Prints one JSON line on exit ({"accepted":N,"upgraded":N,"bad":N}).
 */
#include "bench_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#define REQ_MAX 2048
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct peer {
	uint16_t len;
	uint8_t upgraded;
	char *buf;		/* REQ_MAX bytes while the request is read */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* The value of header name (case-insensitive) in req, trimmed; NULL if absent. */
static const char *find_header(char *req, const char *name, size_t *vlen)
{
	size_t nlen = strlen(name);

	for (char *line = strstr(req, "\r\n"); line != NULL; line = strstr(line, "\r\n")) {
		line += 2;
		if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
			char *v = line + nlen + 1, *e;

			while (*v == ' ' || *v == '\t')
				v++;
			e = strstr(v, "\r\n");
			if (e == NULL)
				return NULL;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*vlen = (size_t)(e - v);
			return v;
		}
	}
	return NULL;
}

/* 1: answered 101; 0: need more bytes; -1: close. */
static int serve(int fd, struct peer *p)
{
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
	char resp[sizeof(head) + 64], kbuf[128];
	unsigned char sha[SHA_DIGEST_LENGTH];
	const char *key;
	size_t klen, off;
	ssize_t n;

	n = read(fd, p->buf + p->len, REQ_MAX - 1u - p->len);
	if (n <= 0)
		return n < 0 && (errno == EAGAIN || errno == EINTR) ? 0 : -1;
	p->len = (uint16_t)(p->len + n);
	p->buf[p->len] = '\0';
	if (strstr(p->buf, "\r\n\r\n") == NULL)
		return p->len >= REQ_MAX - 1 ? -1 : 0;
	key = find_header(p->buf, "Sec-WebSocket-Key", &klen);
	if (key == NULL || klen == 0 || klen + sizeof(WS_GUID) > sizeof(kbuf))
		return -1;
	memcpy(kbuf, key, klen);
	memcpy(kbuf + klen, WS_GUID, sizeof(WS_GUID) - 1);
	SHA1((const unsigned char *)kbuf, klen + sizeof(WS_GUID) - 1, sha);
	memcpy(resp, head, sizeof(head) - 1);
	off = sizeof(head) - 1;
	off += (size_t)EVP_EncodeBlock((unsigned char *)resp + off, sha, SHA_DIGEST_LENGTH);
	memcpy(resp + off, "\r\n\r\n", 4);
	off += 4;
	if (send(fd, resp, off, MSG_NOSIGNAL) != (ssize_t)off)
		return -1;
	return 1;
}

int main(int argc, char **argv)
{
	const char *ready_file = NULL;
	double duration = 600;
	int port = 0, ls, ep, one = 1;
	long maxfd;
	struct peer *peers;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct epoll_event ev = { .events = EPOLLIN }, evs[256];
	uint64_t accepted = 0, upgraded = 0, bad = 0, end;
	const struct bench_opt opts[] = {
		OPT("port", 0, OPT_INT, &port, "P", "listen on 127.0.0.1:P"),
		OPT("ready-file", 0, OPT_STR, &ready_file, "F", "created once listening"),
		OPT("duration", 0, OPT_DOUBLE, &duration, "S", "exit after S seconds (600)"),
		OPT_END
	};

	bench_options("wsfloor", "--port P [--ready-file F] [--duration S]", opts, argc, argv);
	if (port <= 0 || port > 65535)
		die("wsfloor", "--port is required");
	maxfd = raise_nofile();
	if (maxfd <= 0)
		maxfd = 1024;
	peers = calloc((size_t)maxfd, sizeof(*peers));
	if (peers == NULL)
		die("wsfloor", "out of memory");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ls, (const struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 4096) < 0)
		die("wsfloor", strerror(errno));
	ep = epoll_create1(0);
	ev.data.fd = ls;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) < 0)
		die("wsfloor", strerror(errno));
	if (touch_file(ready_file, NULL) != 0)
		die("wsfloor", "cannot write the ready file");
	end = now_mono_ns() + (uint64_t)(duration * 1e9);
	while (!stop && now_mono_ns() < end) {
		int n = epoll_wait(ep, evs, 256, 200);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd, rc;

			if (fd == ls) {
				int c;

				while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					if (c >= maxfd || (peers[c].buf = malloc(REQ_MAX)) == NULL) {
						close(c);
						continue;
					}
					peers[c].len = 0;
					peers[c].upgraded = 0;
					(void)setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0) {
						free(peers[c].buf);
						peers[c].buf = NULL;
						close(c);
						continue;
					}
					accepted++;
				}
				continue;
			}
			if (peers[fd].upgraded) {
				char sink[512];
				ssize_t m = read(fd, sink, sizeof(sink));

				rc = m > 0 || (m < 0 && errno == EAGAIN) ? 0 : -1;	/* frames are ignored */
			} else {
				rc = serve(fd, &peers[fd]);
				if (rc == 1) {
					peers[fd].upgraded = 1;
					free(peers[fd].buf);
					peers[fd].buf = NULL;
					upgraded++;
					rc = 0;
				} else if (rc < 0) {
					bad++;
				}
			}
			if (rc < 0) {
				free(peers[fd].buf);
				peers[fd].buf = NULL;
				peers[fd].upgraded = 0;
				close(fd);	/* also leaves the epoll set */
			}
		}
	}
	printf("{\"tool\":\"wsfloor\",\"accepted\":%" PRIu64 ",\"upgraded\":%" PRIu64 ",\"bad\":%" PRIu64 "}\n",
	    accepted, upgraded, bad);
	return 0;
}
