#include "autoconfig.h"

#include "admission.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "ws_handshake.h"

bool admission_host_is_local_literal(const char *host)
{
	char buf[80];
	const char *end;
	size_t n;
	unsigned char a[16];

	if (host[0] == '[') {
		end = strchr(host, ']');
		if (end == NULL || (size_t)(end - host - 1) >= sizeof(buf))
			return false;
		memcpy(buf, host + 1, (size_t)(end - host - 1));
		buf[end - host - 1] = '\0';
		return inet_pton(AF_INET6, buf, a) == 1;
	}
	end = strchr(host, ':');
	n = end != NULL ? (size_t)(end - host) : strlen(host);
	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, host, n);
	buf[n] = '\0';
	return strcasecmp(buf, "localhost") == 0 || inet_pton(AF_INET, buf, a) == 1;
}

/* A page served by notifyd itself (the demo): its Origin is scheme://Host
 * of this very request. */
static bool same_origin(const char *origin, const char *host)
{
	const char *rest;

	if (host == NULL || !admission_host_is_local_literal(host))
		return false;
	if (strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else
		return false;
	return strcasecmp(rest, host) == 0;
}

bool admission_origin_ok(const char *origin, const char *host, const char *const *allowed, size_t n)
{
	if (origin == NULL)
		return true;
	return same_origin(origin, host) || ws_origin_allowed(origin, allowed, n);
}

const char *admission_bearer(const char *authorization)
{
	const char *t;

	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return NULL;
	for (t = authorization + 7; *t == ' '; t++)
		;
	return *t != '\0' ? t : NULL;
}
