#include "autoconfig.h"

#include "ip_rate.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

#define IP_BUCKETS 4096
#define IP_MAX 64	/* longest printable IPv6 with zone, generously */

struct ip_entry {
	struct ip_entry *next;
	uint64_t last_ms;
	double tokens;
	char addr[IP_MAX];
};

struct ip_rate {
	uint32_t rate;
	size_t n;
	struct ip_entry *bucket[IP_BUCKETS];
};

struct ip_rate *ip_rate_new(uint32_t rate)
{
	struct ip_rate *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->rate = rate;
	return r;
}

void ip_rate_free(struct ip_rate *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		struct ip_entry *e = r->bucket[i];

		while (e != NULL) {
			struct ip_entry *n = e->next;

			free(e);
			e = n;
		}
	}
	free(r);
}

static struct ip_entry *ip_find(struct ip_entry *e, const char *addr)
{
	for (; e != NULL; e = e->next)
		if (strncmp(e->addr, addr, IP_MAX) == 0)
			return e;
	return NULL;
}

/* The tokens of e at now_ms, refilled at rate per second up to the burst. */
static double ip_tokens(const struct ip_rate *r, const struct ip_entry *e, uint64_t now_ms)
{
	double t = e->tokens;

	if (now_ms > e->last_ms) {
		t += (double)(now_ms - e->last_ms) * r->rate / 1000.0;
		if (t > r->rate)
			t = r->rate;
	}
	return t;
}

bool ip_rate_peek(const struct ip_rate *r, const char *addr, uint64_t now_ms)
{
	const struct ip_entry *e;

	if (r == NULL || r->rate == 0)
		return true;
	e = ip_find(r->bucket[hash_bytes(addr, strlen(addr)) % IP_BUCKETS], addr);
	return e == NULL || ip_tokens(r, e, now_ms) >= 1.0;
}

bool ip_rate_allow(struct ip_rate *r, const char *addr, uint64_t now_ms)
{
	struct ip_entry **b, *e;

	if (r == NULL || r->rate == 0)
		return true;
	b = &r->bucket[hash_bytes(addr, strlen(addr)) % IP_BUCKETS];
	e = ip_find(*b, addr);
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return true;	/* no memory to remember: do not punish */
		strncpy(e->addr, addr, IP_MAX - 1);
		e->tokens = r->rate;
		e->last_ms = now_ms;
		e->next = *b;
		*b = e;
		r->n++;
	} else if (now_ms > e->last_ms) {
		e->tokens = ip_tokens(r, e, now_ms);
		e->last_ms = now_ms;
	}
	if (e->tokens < 1.0)
		return false;
	e->tokens -= 1.0;
	return true;
}

size_t ip_rate_expire(struct ip_rate *r, uint64_t now_ms, uint64_t idle_ms)
{
	/* Nothing tracked (the usual case with ip_connect_rate = 0): skip the
	 * scan of every bucket. */
	if (r == NULL || r->n == 0)
		return 0;
	for (size_t i = 0; i < IP_BUCKETS; i++) {
		struct ip_entry **pp = &r->bucket[i];

		while (*pp != NULL) {
			struct ip_entry *e = *pp;

			if (e->last_ms + idle_ms < now_ms) {
				*pp = e->next;
				free(e);
				r->n--;
			} else {
				pp = &e->next;
			}
		}
	}
	return r->n;
}
