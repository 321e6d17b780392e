/* fuzz_admission.c - libFuzzer target for the origin rules and the Bearer
 * framing (admission.h).
 *
 * The input is split at its first NUL into an Origin and a Host.  Checked
 * against the contract: an origin that is accepted with an empty allowed
 * list must be scheme://Host exactly (case aside) with Host an IP literal
 * or localhost; one accepted with "*" is any origin; admission_bearer()
 * returns NULL or a non-empty suffix of its input that follows
 * "Bearer " and spaces.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_admission.c src/admission.c src/ws_handshake.c $(pkg-config --cflags --libs openssl)
 * Run:   ./fuzz_admission -max_len=512 fuzz/corpus/admission  (or scripts/fuzz admission)
 */
#include "autoconfig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admission.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *origin, *host, *rest;
	const char *t;
	static const char *const star[] = { "*" };

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	buf[size + 1] = '\0';
	origin = buf;
	host = buf + strlen(buf) + 1;	/* "" when there was no NUL */
	if (admission_origin_ok(origin, host, NULL, 0)) {
		rest = strncasecmp(origin, "http://", 7) == 0 ? origin + 7 :
		    strncasecmp(origin, "https://", 8) == 0 ? origin + 8 : NULL;
		if (rest == NULL || strcasecmp(rest, host) != 0 || !admission_host_is_local_literal(host)) {
			fprintf(stderr, "accepted origin %s for host %s\n", origin, host);
			abort();
		}
	}
	if (!admission_origin_ok(origin, host, star, 1))
		abort();
	t = admission_bearer(origin);
	if (t != NULL) {
		const char *p = origin + 7;

		if (strncasecmp(origin, "Bearer ", 7) != 0 || *t == '\0' || *t == ' ')
			abort();
		while (*p == ' ')
			p++;
		if (p != t)
			abort();
	}
	free(buf);
	return 0;
}
