/* ip_rate.h - events per second per client address (token bucket): new
 * connections, failed authentications.
 *
 * Promises: each address may have `rate` events per second with a burst of
 * `rate`; the table forgets addresses idle for a few seconds, so its size
 * follows the active clients, not history.  Pure (the caller passes the
 * time); one thread.
 */
#ifndef NOTIFYD_IP_RATE_H
#define NOTIFYD_IP_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ip_rate;

/* rate 0: no limit (ip_rate_allow always true). */
struct ip_rate *ip_rate_new(uint32_t rate);
void ip_rate_free(struct ip_rate *r);

/* May addr (a printable address) open a connection at now_ms?  Takes a
 * token when it may. */
bool ip_rate_allow(struct ip_rate *r, const char *addr, uint64_t now_ms);

/* Would ip_rate_allow() allow addr at now_ms?  Takes nothing and adds no
 * entry: to refuse an address that used up its budget (of failures, say)
 * before doing the work whose failure would be counted. */
bool ip_rate_peek(const struct ip_rate *r, const char *addr, uint64_t now_ms);

/* Drop entries idle since before now_ms - idle_ms.  Returns how many remain. */
size_t ip_rate_expire(struct ip_rate *r, uint64_t now_ms, uint64_t idle_ms);

#endif
