/* peer_table.h - open connections per client address.
 *
 * Promises: a connection takes a slot for its address when accepted and
 * gives it back when it closes, whatever it became (plain HTTP or
 * WebSocket), so that max_connections_per_ip counts every descriptor an
 * address holds.  An address's entry lives exactly as long as it has
 * connections.  Event-loop thread only.
 */
#ifndef NOTIFYD_PEER_TABLE_H
#define NOTIFYD_PEER_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct peer;
struct peer_table;

#define PEER_ADDR_MAX 46	/* INET6_ADDRSTRLEN */

struct peer_table *peer_table_new(void);

/* Frees the table; every slot must have been released. */
void peer_table_free(struct peer_table *t);

enum peer_result { PEER_OK = 0, PEER_FULL, PEER_NOMEM };

/* Take a slot for the address of sa (IPv4-mapped IPv6 counts as IPv4),
 * unless the address already holds max (0: no limit).  *out is the slot on
 * PEER_OK, NULL otherwise; addr (PEER_ADDR_MAX bytes) gets the printable
 * address either way. */
enum peer_result peer_acquire(struct peer_table *t, const struct sockaddr *sa, uint32_t max,
    struct peer **out, char *addr);

/* Give the slot back (NULL is ignored). */
void peer_release(struct peer_table *t, struct peer *p);

const char *peer_addr(const struct peer *p);
uint32_t peer_count(const struct peer *p);

/* Addresses with at least one connection. */
size_t peer_table_size(const struct peer_table *t);

#endif
