#include "autoconfig.h"

#include "conn_registry.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"

int registry_init(struct conn_registry *r)
{
	memset(r, 0, sizeof(*r));
	LIST_INIT(&r->all);
	r->nbuckets = 1024;
	r->buckets = calloc(r->nbuckets, sizeof(*r->buckets));
	return r->buckets == NULL ? -1 : 0;
}

void registry_free(struct conn_registry *r)
{
	for (size_t i = 0; r->buckets != NULL && i < r->nbuckets; i++) {
		struct user_entry *u = r->buckets[i];

		while (u != NULL) {
			struct user_entry *n = u->hnext;

			free(u);
			u = n;
		}
	}
	free(r->buckets);
	r->buckets = NULL;
}

/* Keep chains short as users come: double when the load factor passes 1. */
static void registry_grow(struct conn_registry *r)
{
	size_t nb = r->nbuckets * 2;
	struct user_entry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return;		/* longer chains, still correct */
	for (size_t i = 0; i < r->nbuckets; i++) {
		struct user_entry *u = r->buckets[i];

		while (u != NULL) {
			struct user_entry *n = u->hnext;
			size_t j = u->hash & (nb - 1);

			u->hnext = b[j];
			b[j] = u;
			u = n;
		}
	}
	free(r->buckets);
	r->buckets = b;
	r->nbuckets = nb;
}

struct user_entry *registry_find(const struct conn_registry *r, const char *id, size_t len)
{
	uint32_t h = hash_bytes(id, len);

	for (struct user_entry *u = r->buckets[h & (r->nbuckets - 1)]; u != NULL; u = u->hnext)
		if (u->hash == h && u->id_len == len && memcmp(u->id, id, len) == 0)
			return u;
	return NULL;
}

int registry_attach(struct conn_registry *r, struct conn_links *l, const char *id, size_t len)
{
	struct user_entry *u = registry_find(r, id, len);

	if (u == NULL) {
		size_t b;

		u = malloc(sizeof(*u) + len + 1);
		if (u == NULL)
			return -1;
		LIST_INIT(&u->conns);
		u->nconns = 0;
		u->hash = hash_bytes(id, len);
		u->id_len = len;
		memcpy(u->id, id, len);
		u->id[len] = '\0';
		b = u->hash & (r->nbuckets - 1);
		u->hnext = r->buckets[b];
		r->buckets[b] = u;
		if (++r->nusers > r->nbuckets)
			registry_grow(r);
	}
	l->user = u;
	LIST_INSERT_HEAD(&u->conns, l, mates);
	u->nconns++;
	LIST_INSERT_HEAD(&r->all, l, all);
	r->nconns++;
	return 0;
}

void registry_detach(struct conn_registry *r, struct conn_links *l)
{
	struct user_entry *u = l->user;

	if (u == NULL)
		return;
	LIST_REMOVE(l, mates);
	if (--u->nconns == 0) {
		struct user_entry **pp = &r->buckets[u->hash & (r->nbuckets - 1)];

		while (*pp != u)
			pp = &(*pp)->hnext;
		*pp = u->hnext;
		free(u);
		r->nusers--;
	}
	LIST_REMOVE(l, all);
	r->nconns--;
	l->user = NULL;
}
