/* Unit tests for peer_table: open connections per client address. */
#include "autoconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "peer_table.h"
#include "tap.h"

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
	return ss;
}

int main(void)
{
	struct peer_table *t = peer_table_new();
	struct sockaddr_storage a = v4("10.0.0.1"), b = v4("10.0.0.2"), m = v6("::ffff:10.0.0.1"), s6 = v6("2001:db8::1");
	struct peer *p[4], *q, *x;
	char addr[PEER_ADDR_MAX];

	for (int i = 0; i < 3; i++)
		ok(peer_acquire(t, (struct sockaddr *)&a, 3, &p[i], addr) == PEER_OK && p[i] != NULL,
		    "slot %d of 3 for 10.0.0.1", i + 1);
	ok(strcmp(addr, "10.0.0.1") == 0 && strcmp(peer_addr(p[0]), "10.0.0.1") == 0, "printable address");
	ok(peer_acquire(t, (struct sockaddr *)&a, 3, &x, addr) == PEER_FULL && x == NULL, "the fourth is refused");
	ok(peer_acquire(t, (struct sockaddr *)&m, 3, &x, addr) == PEER_FULL && strcmp(addr, "10.0.0.1") == 0,
	    "IPv4-mapped IPv6 is the same address");
	ok(peer_acquire(t, (struct sockaddr *)&b, 3, &q, addr) == PEER_OK, "another address has its own count");
	ok(peer_acquire(t, (struct sockaddr *)&s6, 0, &x, addr) == PEER_OK && strcmp(addr, "2001:db8::1") == 0,
	    "IPv6, no limit");
	ok(peer_table_size(t) == 3 && peer_count(p[0]) == 3, "three addresses, 3 on the first");
	peer_release(t, p[0]);
	ok(peer_acquire(t, (struct sockaddr *)&a, 3, &p[3], addr) == PEER_OK, "a released slot can be taken again");
	peer_release(t, p[1]);
	peer_release(t, p[2]);
	peer_release(t, p[3]);
	peer_release(t, q);
	peer_release(t, x);
	peer_release(t, NULL);
	ok(peer_table_size(t) == 0, "an address with no connection is forgotten");
	peer_table_free(t);
	return done_testing();
}
