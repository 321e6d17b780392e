/* test_utf8.c - the incremental UTF-8 validator against RFC 3629's corner
 * cases, and exhaustively against an independent reference decoder. */
#include "autoconfig.h"

#include <stdint.h>
#include <string.h>

#include "utf8.h"
#include "tap.h"

#define S(lit) (const uint8_t *)(lit), sizeof(lit) - 1

/* Reference: decode the structure first, then judge the code point.  A
 * different formulation from utf8.c's per-lead ranges on purpose. */
static int ref_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t b = p[i];
		size_t len;
		uint32_t cp, min;

		if (b < 0x80) {
			i++;
			continue;
		} else if ((b & 0xE0) == 0xC0) {
			len = 2, cp = b & 0x1F, min = 0x80;
		} else if ((b & 0xF0) == 0xE0) {
			len = 3, cp = b & 0x0F, min = 0x800;
		} else if ((b & 0xF8) == 0xF0) {
			len = 4, cp = b & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

/* Index of the byte at which a byte-by-byte feed first says INVALID, or -1. */
static long invalid_at(const uint8_t *p, size_t n)
{
	struct utf8_validator v;

	utf8_init(&v);
	for (size_t i = 0; i < n; i++)
		if (utf8_feed(&v, p + i, 1) == UTF8_INVALID)
			return (long)i;
	return -1;
}

static enum utf8_result feed_all(const uint8_t *p, size_t n)
{
	struct utf8_validator v;

	utf8_init(&v);
	return utf8_feed(&v, p, n);
}

static void test_valid_boundaries(void)
{
	static const struct { const char *name; const char *s; } cases[] = {
		{ "empty", "" },
		{ "ASCII", "Hello, world" },
		{ "U+007F DEL (last 1-byte)", "\x7F" },
		{ "U+0080 (first 2-byte)", "\xC2\x80" },
		{ "U+07FF (last 2-byte)", "\xDF\xBF" },
		{ "U+0800 (first 3-byte)", "\xE0\xA0\x80" },
		{ "U+D7FF (last before surrogates)", "\xED\x9F\xBF" },
		{ "U+E000 (first after surrogates)", "\xEE\x80\x80" },
		{ "U+FFFD replacement char", "\xEF\xBF\xBD" },
		{ "U+FFFF (last 3-byte, noncharacter is valid UTF-8)", "\xEF\xBF\xBF" },
		{ "U+10000 (first 4-byte)", "\xF0\x90\x80\x80" },
		{ "U+10FFFF (last code point)", "\xF4\x8F\xBF\xBF" },
		{ "mixed text", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80!" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;
		size_t n = strlen(cases[i].s);

		ok(utf8_valid(p, n) == 1 && feed_all(p, n) == UTF8_OK,
		   "valid: %s", cases[i].name);
	}
	ok(utf8_valid(S("a\0b")) == 1, "valid: NUL is a code point (U+0000)");
}

/* Each impossible sequence must be reported at the first byte that proves
 * it impossible (RFC 6455 8.1, fail fast), not at the end of the input. */
static void test_invalid_fail_fast(void)
{
	static const struct { const char *name; const char *s; long at; } cases[] = {
		{ "lone continuation 80", "\x80", 0 },
		{ "lone continuation BF", "\xBF", 0 },
		{ "overlong C0 80 (NUL)", "\xC0\x80", 0 },
		{ "overlong C1 BF", "\xC1\xBF", 0 },
		{ "overlong E0 80 80", "\xE0\x80\x80", 1 },
		{ "overlong E0 9F BF (U+07FF)", "\xE0\x9F\xBF", 1 },
		{ "overlong F0 80 80 80", "\xF0\x80\x80\x80", 1 },
		{ "overlong F0 8F BF BF (U+FFFF)", "\xF0\x8F\xBF\xBF", 1 },
		{ "surrogate ED A0 80 (U+D800)", "\xED\xA0\x80", 1 },
		{ "surrogate ED BF BF (U+DFFF)", "\xED\xBF\xBF", 1 },
		{ "surrogate pair CESU-8 ED A0 BD ED B2 A9", "\xED\xA0\xBD\xED\xB2\xA9", 1 },
		{ "above U+10FFFF: F4 90 80 80", "\xF4\x90\x80\x80", 1 },
		{ "F5 lead", "\xF5\x80\x80\x80", 0 },
		{ "F8 5-byte lead", "\xF8\x88\x80\x80\x80", 0 },
		{ "FE", "\xFE", 0 },
		{ "FF", "\xFF", 0 },
		{ "2-byte lead then ASCII", "\xC2" "A", 1 },
		{ "3-byte lead, 1 cont, then ASCII", "\xE2\x82" "A", 2 },
		{ "4-byte lead, 2 cont, then new lead", "\xF0\x9F\x98\xC3\xA9", 3 },
		{ "valid prefix then FF", "abc\xC3\xA9\xFF", 5 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const uint8_t *p = (const uint8_t *)cases[i].s;
		size_t n = strlen(cases[i].s);
		long at = invalid_at(p, n);

		ok(utf8_valid(p, n) == 0 && feed_all(p, n) == UTF8_INVALID &&
		   at == cases[i].at,
		   "invalid: %s (reported at byte %ld, want %ld)", cases[i].name, at, cases[i].at);
	}
}

static void test_partial(void)
{
	ok(feed_all(S("\xC3")) == UTF8_PARTIAL && !utf8_valid(S("\xC3")),
	   "unfinished 2-byte sequence is PARTIAL, not valid as a whole");
	ok(feed_all(S("ab\xE2\x82")) == UTF8_PARTIAL, "unfinished 3-byte sequence is PARTIAL");
	ok(feed_all(S("\xF0\x9F\x98")) == UTF8_PARTIAL, "unfinished 4-byte sequence is PARTIAL");
	ok(feed_all(S("\xF4\x8F")) == UTF8_PARTIAL, "F4 8F (still could be <= U+10FFFF) is PARTIAL");
	ok(feed_all(S("\xED\x9F")) == UTF8_PARTIAL, "ED 9F (still could be U+D7FF) is PARTIAL");
}

static void test_split_code_point(void)
{
	static const uint8_t s[] = "x\xF0\x9F\x98\x80y\xE2\x82\xAC\xC3\xA9";
	size_t n = sizeof(s) - 1;
	int bad = 0;

	/* Every two- and three-way split must agree with the whole, and the
	 * middle results must say PARTIAL exactly when a cut is inside a
	 * code point. */
	for (size_t a = 0; a <= n; a++) {
		for (size_t b = a; b <= n; b++) {
			struct utf8_validator v;
			enum utf8_result r1, r2, r3;

			utf8_init(&v);
			r1 = utf8_feed(&v, s, a);
			r2 = utf8_feed(&v, s + a, b - a);
			r3 = utf8_feed(&v, s + b, n - b);
			if (r1 != (ref_valid(s, a) ? UTF8_OK : UTF8_PARTIAL) ||
			    r2 != (ref_valid(s, b) ? UTF8_OK : UTF8_PARTIAL) || r3 != UTF8_OK)
				bad++;
		}
	}
	ok(bad == 0, "code points split across feeds at every position (%d wrong)", bad);
}

static void test_sticky(void)
{
	struct utf8_validator v;
	enum utf8_result r;

	utf8_init(&v);
	r = utf8_feed(&v, S("\xC0"));
	ok(r == UTF8_INVALID, "C0 is invalid");
	ok(utf8_feed(&v, S("abc")) == UTF8_INVALID, "INVALID sticks through later valid input");
	ok(utf8_feed(&v, NULL, 0) == UTF8_INVALID, "INVALID sticks through an empty feed");
	utf8_init(&v);
	ok(utf8_feed(&v, S("abc")) == UTF8_OK, "utf8_init clears INVALID");
	ok(v.state == 0, "state is 0 at a code point boundary, as the header documents");
	utf8_feed(&v, S("\xE2"));
	ok(v.state != 0, "state is not 0 inside a code point");
}

/* Exhaustive against the reference for every 1-, 2- and 3-byte input, and
 * for 4-byte inputs starting F0..F7 with a sampled last byte. */
static void test_exhaustive(void)
{
	uint8_t b[4];
	long bad = 0, inc_bad = 0;

	for (unsigned x = 0; x < 256; x++) {
		b[0] = (uint8_t)x;
		bad += utf8_valid(b, 1) != ref_valid(b, 1);
		for (unsigned y = 0; y < 256; y++) {
			b[1] = (uint8_t)y;
			bad += utf8_valid(b, 2) != ref_valid(b, 2);
			for (unsigned z = 0; z < 256; z++) {
				struct utf8_validator v;
				enum utf8_result r = UTF8_OK;

				b[2] = (uint8_t)z;
				bad += utf8_valid(b, 3) != ref_valid(b, 3);
				utf8_init(&v);
				for (int k = 0; k < 3; k++)
					r = utf8_feed(&v, b + k, 1);
				inc_bad += (r == UTF8_OK) != ref_valid(b, 3);
			}
		}
	}
	ok(bad == 0, "all 1-, 2- and 3-byte inputs agree with the reference (%ld differ)", bad);
	ok(inc_bad == 0, "byte-by-byte feeding agrees for all 3-byte inputs (%ld differ)", inc_bad);

	bad = 0;
	for (unsigned w = 0xF0; w < 0xF8; w++)
		for (unsigned x = 0x70; x < 0xD0; x++)
			for (unsigned y = 0x70; y < 0xD0; y++)
				for (unsigned z = 0x78; z < 0xC8; z += 7) {
					b[0] = (uint8_t)w, b[1] = (uint8_t)x;
					b[2] = (uint8_t)y, b[3] = (uint8_t)z;
					bad += utf8_valid(b, 4) != ref_valid(b, 4);
				}
	ok(bad == 0, "4-byte inputs F0..F7 agree with the reference (%ld differ)", bad);
}

int main(void)
{
	test_valid_boundaries();
	test_invalid_fail_fast();
	test_partial();
	test_split_code_point();
	test_sticky();
	test_exhaustive();
	return done_testing();
}
