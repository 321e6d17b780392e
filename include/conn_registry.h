/* conn_registry.h - every open WebSocket connection, and by user.
 *
 * Promises: O(1) attach/detach, lookup of a user's connections by id in
 * expected O(1), and iteration over all connections for a broadcast.  The
 * registry does not own connections: a connection embeds struct conn_links
 * as its first member and detaches itself before it is freed.  A user entry
 * lives exactly as long as it has connections.  Event-loop thread only.
 */
#ifndef NOTIFYD_CONN_REGISTRY_H
#define NOTIFYD_CONN_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <sys/queue.h>

struct user_entry;

struct conn_links {
	LIST_ENTRY(conn_links) all;	/* every connection */
	LIST_ENTRY(conn_links) mates;	/* connections of the same user */
	struct user_entry *user;	/* NULL: not attached */
};

LIST_HEAD(conn_list, conn_links);

struct user_entry {
	struct user_entry *hnext;
	struct conn_list conns;		/* linked through mates */
	uint32_t nconns;
	uint32_t hash;
	size_t id_len;
	char id[];			/* NUL-terminated */
};

struct conn_registry {
	struct user_entry **buckets;
	size_t nbuckets;
	size_t nusers;
	size_t nconns;
	struct conn_list all;		/* linked through all */
};

int registry_init(struct conn_registry *r);
void registry_free(struct conn_registry *r);

/* Add l to the registry under user id.  Returns 0, -1 when out of memory. */
int registry_attach(struct conn_registry *r, struct conn_links *l, const char *id, size_t len);
void registry_detach(struct conn_registry *r, struct conn_links *l);

struct user_entry *registry_find(const struct conn_registry *r, const char *id, size_t len);

static inline size_t registry_count(const struct conn_registry *r)
{
	return r->nconns;
}

static inline size_t registry_users(const struct conn_registry *r)
{
	return r->nusers;
}

/* Open connections of user id (0 when none). */
static inline uint32_t registry_user_count(const struct conn_registry *r, const char *id, size_t len)
{
	const struct user_entry *u = registry_find(r, id, len);

	return u != NULL ? u->nconns : 0;
}

#endif
