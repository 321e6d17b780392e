/* admission.h - who may come in, decided on strings alone: the browser
 * origin rules and the credentials' framing.  Pure (no I/O, no
 * allocation), so that the rules are unit-tested and fuzzed apart from
 * the HTTP server that asks.
 *
 * Promises:
 * - admission_origin_ok(): no Origin (not a browser) is welcome; otherwise
 *   the origin must be listed in allowed ("*" for any), or be notifyd's own
 *   (scheme://Host of the same request) when Host is an IP address or
 *   localhost: a DNS name could be re-pointed at us by its owner (DNS
 *   rebinding), making a page of theirs "same origin".
 * - admission_bearer(): the token of "Bearer <token>" (scheme
 *   case-insensitive, spaces after it skipped), NULL for anything else or
 *   an empty token.
 */
#ifndef NOTIFYD_ADMISSION_H
#define NOTIFYD_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

bool admission_origin_ok(const char *origin, const char *host, const char *const *allowed, size_t n);

/* Is host (a Host header: name or address, optional port) an IP address
 * or localhost? */
bool admission_host_is_local_literal(const char *host);

const char *admission_bearer(const char *authorization);

#endif
