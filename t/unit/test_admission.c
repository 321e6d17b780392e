/* Unit tests for admission: origin rules (allowed list, notifyd's own
 * origin only under an address or localhost) and the Bearer framing. */
#include "autoconfig.h"

#include <stdio.h>
#include <string.h>

#include "admission.h"
#include "tap.h"

struct origin_case {
	const char *origin, *host;
	int ok;
	const char *what;
};

static const char *const allowed[] = { "https://app.example.com", "http://LOCALHOST:3000" };

static const struct origin_case origins[] = {
	{ NULL, "x", 1, "no Origin: not a browser" },
	{ "https://app.example.com", "gw.example.com", 1, "listed" },
	{ "HTTPS://APP.EXAMPLE.COM", "gw.example.com", 1, "listed, any case" },
	{ "  https://app.example.com ", "gw.example.com", 1, "listed, surrounding whitespace" },
	{ "https://app.example.com.evil.net", "gw.example.com", 0, "a suffix of a listed origin" },
	{ "https://evil.net", "gw.example.com", 0, "not listed" },
	{ "http://localhost:3000", "gw", 1, "listed with a port" },
	{ "http://127.0.0.1:8081", "127.0.0.1:8081", 1, "own origin by IPv4 address" },
	{ "https://[::1]:8443", "[::1]:8443", 1, "own origin by IPv6 address" },
	{ "http://localhost:8081", "localhost:8081", 1, "own origin by localhost" },
	{ "http://gw.example.com", "gw.example.com", 0, "own origin by a DNS name: DNS rebinding" },
	{ "http://127.0.0.1:8081", "127.0.0.1:9999", 0, "another port is another origin" },
	{ "ws://127.0.0.1:8081", "127.0.0.1:8081", 0, "not http(s)" },
	{ "http://127.0.0.1:8081", NULL, 0, "no Host" },
	{ "null", "127.0.0.1", 0, "the opaque origin" },
	{ "http://127.0.0.1.evil.net", "127.0.0.1.evil.net", 0, "an address-looking name" },
};

struct bearer_case {
	const char *in, *token;
	const char *what;
};

static const struct bearer_case bearers[] = {
	{ "Bearer abc", "abc", "plain" },
	{ "bearer abc", "abc", "scheme in any case" },
	{ "BEARER   abc", "abc", "several spaces" },
	{ "Bearer ", NULL, "empty token" },
	{ "Bearer    ", NULL, "only spaces" },
	{ "Bearerabc", NULL, "no space" },
	{ "Basic YWJj", NULL, "another scheme" },
	{ "", NULL, "empty header" },
	{ NULL, NULL, "no header" },
};

int main(void)
{
	for (size_t i = 0; i < sizeof(origins) / sizeof(origins[0]); i++) {
		const struct origin_case *c = &origins[i];

		ok(admission_origin_ok(c->origin, c->host, allowed, 2) == (c->ok != 0), "origin: %s", c->what);
	}
	ok(admission_origin_ok("https://anything.example", "h", (const char *const[]){ "*" }, 1),
	    "\"*\" allows any origin");
	ok(!admission_origin_ok("https://app.example.com", "h", allowed, 0), "an empty list allows no browser");
	for (size_t i = 0; i < sizeof(bearers) / sizeof(bearers[0]); i++) {
		const struct bearer_case *c = &bearers[i];
		const char *t = admission_bearer(c->in);

		ok(c->token == NULL ? t == NULL : (t != NULL && strcmp(t, c->token) == 0), "bearer: %s", c->what);
	}
	ok(admission_host_is_local_literal("10.1.2.3") && admission_host_is_local_literal("[fe80::1]:1") &&
	    !admission_host_is_local_literal("[fe80::1") && !admission_host_is_local_literal(":80") &&
	    !admission_host_is_local_literal("example.com"), "local literal hosts");
	return done_testing();
}
