/* fuzz_msg_id.c - libFuzzer target for the id a resuming client sends
 * (?since=): msg_id_parse() and history_since() behind it.
 *
 * Checked against a reference written here from msg_id.h's contract:
 *   - an id is accepted exactly when it is 1..19 decimal digits without a
 *     leading zero (or "0"), at most INT64_MAX, '-', 8 lower-case hex
 *     digits;
 *   - an accepted id formats back to the same bytes (one spelling);
 *   - history_since() on a small history answers RESUMABLE only for the
 *     id of an entry this user may see, and never reads past the input.
 * The input is an exact-size heap copy, so reading past it is caught.
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -I<build> -Iinclude
 *   fuzz/fuzz_msg_id.c src/msg_id.c src/history.c src/envelope.c src/ws_frame.c src/utf8.c
 * Run:   ./fuzz_msg_id -max_len=64 fuzz/corpus/msg_id  (or scripts/fuzz msg_id)
 */
#include "autoconfig.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "msg_id.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ref_valid(const char *s, size_t n)
{
	size_t d = 0;
	static const char max[] = "9223372036854775807";

	while (d < n && s[d] >= '0' && s[d] <= '9')
		d++;
	if (d == 0 || d > 19 || (d > 1 && s[0] == '0'))
		return false;
	if (d == 19 && memcmp(s, max, 19) > 0)
		return false;
	if (n != d + 9 || s[d] != '-')
		return false;
	for (size_t i = d + 1; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static struct history *fixture(void)
{
	static const char *const users[] = { "alice", "bob" };
	struct history *h = history_new(1 << 20, 3600000);

	/* Offsets 100..139: alice, bob, broadcasts, an anchor; check = offset. */
	for (uint64_t o = 100; h != NULL && o < 140; o++) {
		enum hist_kind k = o % 10 == 0 ? HIST_ANCHOR : o % 3 == 0 ? HIST_BROADCAST : HIST_USER;
		struct hist_entry *e = hist_entry_new(o, (uint32_t)o, k, "{}", 2);

		if (e == NULL)
			abort();
		history_add(h, e, users[o % 2], 5 - (o % 2 * 2), 1000);
		hist_entry_unref(e);
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct history *h;
	char *s = malloc(size ? size : 1);
	char back[MSG_ID_MAX];
	uint64_t off = 0, after = 0;
	uint32_t check = 0;
	int rc;
	enum hist_outcome o;

	if (h == NULL && (h = fixture()) == NULL)
		abort();
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	rc = msg_id_parse(s, size, &off, &check);
	if ((rc == 0) != ref_valid(s, size))
		abort();
	if (rc == 0 && (msg_id_format(back, off, check) != size || memcmp(back, s, size) != 0))
		abort();
	o = history_since(h, s, size, "alice", 5, &after);
	if (o >= HIST_OUTCOMES || (o == HIST_MALFORMED) != (rc != 0))
		abort();
	if (o == HIST_RESUMABLE) {
		/* Only ids of what alice could have seen: hers (even offsets),
		 * broadcasts and anchors, with the right check. */
		bool anchor = off % 10 == 0, bcast = !anchor && off % 3 == 0;

		if (off < 100 || off >= 140 || check != off || after != off || (!anchor && !bcast && off % 2 != 0))
			abort();
	}
	free(s);
	return 0;
}
