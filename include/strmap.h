/* strmap.h - a string-keyed table for the control plane's small sets
 * (bans, revocations, other instances' users).
 *
 * Promises: keys are copied (any bytes, with a length); values are the
 * caller's and never freed here.  Lookup, insert and removal in expected
 * O(1), the table doubling as it fills.  Iteration visits every entry once
 * and allows removing the entry being visited.  One thread only.
 */
#ifndef NOTIFYD_STRMAP_H
#define NOTIFYD_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap_entry {
	struct strmap_entry *next;
	uint32_t hash;
	size_t len;
	void *value;
	char key[];		/* NUL-terminated */
};

struct strmap {
	struct strmap_entry **bucket;
	size_t nbuckets, count;
};

int strmap_init(struct strmap *m);
/* Frees the entries, not their values. */
void strmap_free(struct strmap *m);

struct strmap_entry *strmap_find(const struct strmap *m, const char *key, size_t len);
/* The entry for key, created with value NULL if absent (*created says
 * which).  NULL when out of memory. */
struct strmap_entry *strmap_get(struct strmap *m, const char *key, size_t len, bool *created);
void strmap_remove(struct strmap *m, struct strmap_entry *e);

/* Visit every entry; fn may remove the entry it is given.  Stops when fn
 * returns false. */
void strmap_each(struct strmap *m, bool (*fn)(void *arg, struct strmap_entry *e), void *arg);

#endif
