/* strmap.c - chained hash table of strings (see strmap.h). */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "strmap.h"

#define STRMAP_MIN 64

int strmap_init(struct strmap *m)
{
	m->bucket = calloc(STRMAP_MIN, sizeof(*m->bucket));
	m->nbuckets = STRMAP_MIN;
	m->count = 0;
	return m->bucket != NULL ? 0 : -1;
}

void strmap_free(struct strmap *m)
{
	for (size_t i = 0; i < m->nbuckets && m->bucket != NULL; i++) {
		struct strmap_entry *e = m->bucket[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->bucket);
	m->bucket = NULL;
	m->nbuckets = m->count = 0;
}

struct strmap_entry *strmap_find(const struct strmap *m, const char *key, size_t len)
{
	uint32_t h = hash_bytes(key, len);

	for (struct strmap_entry *e = m->bucket[h & (m->nbuckets - 1)]; e != NULL; e = e->next)
		if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
			return e;
	return NULL;
}

/* Doubling keeps chains short; a failed allocation only leaves them longer. */
static void strmap_grow(struct strmap *m)
{
	size_t n = m->nbuckets * 2;
	struct strmap_entry **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct strmap_entry *e = m->bucket[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->bucket);
	m->bucket = b;
	m->nbuckets = n;
}

struct strmap_entry *strmap_get(struct strmap *m, const char *key, size_t len, bool *created)
{
	struct strmap_entry *e = strmap_find(m, key, len);

	*created = false;
	if (e != NULL)
		return e;
	e = malloc(sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	e->hash = hash_bytes(key, len);
	e->len = len;
	e->value = NULL;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	if (m->count >= m->nbuckets)
		strmap_grow(m);
	e->next = m->bucket[e->hash & (m->nbuckets - 1)];
	m->bucket[e->hash & (m->nbuckets - 1)] = e;
	m->count++;
	*created = true;
	return e;
}

void strmap_remove(struct strmap *m, struct strmap_entry *e)
{
	struct strmap_entry **pp = &m->bucket[e->hash & (m->nbuckets - 1)];

	while (*pp != NULL && *pp != e)
		pp = &(*pp)->next;
	if (*pp == NULL)
		return;
	*pp = e->next;
	m->count--;
	free(e);
}

void strmap_each(struct strmap *m, bool (*fn)(void *arg, struct strmap_entry *e), void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct strmap_entry *e = m->bucket[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			if (!fn(arg, e))
				return;
		}
	}
}
