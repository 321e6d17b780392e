/* keyring.h - a set of secret API keys (push_keys, admin_keys) and the one
 * way to check a bearer token against them.
 *
 * Promises: only SHA-256 digests of the keys are kept; a check compares
 * every key in full through digests of equal length, so its time does not
 * depend on the content of the token nor on which key matches.  Replacing
 * the keys (SIGHUP) is all or nothing.  One thread.
 */
#ifndef NOTIFYD_KEYRING_H
#define NOTIFYD_KEYRING_H

#include <stdbool.h>
#include <stddef.h>

struct config_list;
struct keyring;

struct keyring *keyring_new(const struct config_list *keys);
void keyring_free(struct keyring *k);

/* Returns 0, or -1 (out of memory: the old keys stay). */
int keyring_set(struct keyring *k, const struct config_list *keys);

size_t keyring_count(const struct keyring *k);

/* Does "Bearer <key>" (authorization, may be NULL) hold one of the keys? */
bool keyring_ok(struct keyring *k, const char *authorization);

#endif
