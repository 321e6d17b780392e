/* hash.h - FNV-1a over bytes: the one string hash of the hash tables
 * (users, addresses).  Not for anything an attacker must not predict
 * collisions of beyond a bucket's walk: the tables it serves are bounded
 * by the limits on connections and addresses. */
#ifndef NOTIFYD_HASH_H
#define NOTIFYD_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_SEED 2166136261u

/* Continue a hash over more bytes (start from HASH_SEED). */
static inline uint32_t hash_bytes_more(uint32_t h, const void *p, size_t len)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < len; i++) {
		h ^= s[i];
		h *= 16777619u;
	}
	return h;
}

static inline uint32_t hash_bytes(const void *p, size_t len)
{
	return hash_bytes_more(HASH_SEED, p, len);
}

#endif
