#include "autoconfig.h"

#include "peer_table.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hash.h"

#define PEER_BUCKETS 4096

struct peer {
	struct peer *next;
	uint32_t count;
	uint32_t hash;
	char addr[PEER_ADDR_MAX];
};

struct peer_table {
	size_t n;
	struct peer *bucket[PEER_BUCKETS];
};

struct peer_table *peer_table_new(void)
{
	return calloc(1, sizeof(struct peer_table));
}

void peer_table_free(struct peer_table *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < PEER_BUCKETS; i++)
		while (t->bucket[i] != NULL) {
			struct peer *p = t->bucket[i];

			t->bucket[i] = p->next;
			free(p);
		}
	free(t);
}

static bool peer_format(const struct sockaddr *sa, char *addr)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		return inet_ntop(AF_INET, &s4->sin_addr, addr, PEER_ADDR_MAX) != NULL;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], addr, PEER_ADDR_MAX) != NULL;
		return inet_ntop(AF_INET6, &s6->sin6_addr, addr, PEER_ADDR_MAX) != NULL;
	}
	return false;
}

enum peer_result peer_acquire(struct peer_table *t, const struct sockaddr *sa, uint32_t max,
    struct peer **out, char *addr)
{
	struct peer *p;
	uint32_t h;

	*out = NULL;
	if (!peer_format(sa, addr))
		strcpy(addr, "?");
	h = hash_bytes(addr, strlen(addr));
	for (p = t->bucket[h % PEER_BUCKETS]; p != NULL; p = p->next)
		if (p->hash == h && strcmp(p->addr, addr) == 0)
			break;
	if (p != NULL) {
		if (max > 0 && p->count >= max)
			return PEER_FULL;
		p->count++;
		*out = p;
		return PEER_OK;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return PEER_NOMEM;
	p->hash = h;
	p->count = 1;
	memcpy(p->addr, addr, sizeof(p->addr));
	p->next = t->bucket[h % PEER_BUCKETS];
	t->bucket[h % PEER_BUCKETS] = p;
	t->n++;
	*out = p;
	return PEER_OK;
}

void peer_release(struct peer_table *t, struct peer *p)
{
	struct peer **pp;

	if (p == NULL || --p->count > 0)
		return;
	for (pp = &t->bucket[p->hash % PEER_BUCKETS]; *pp != p; pp = &(*pp)->next)
		;
	*pp = p->next;
	t->n--;
	free(p);
}

const char *peer_addr(const struct peer *p)
{
	return p->addr;
}

uint32_t peer_count(const struct peer *p)
{
	return p->count;
}

size_t peer_table_size(const struct peer_table *t)
{
	return t->n;
}
