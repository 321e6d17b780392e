/* utf8.c - incremental UTF-8 validation (RFC 3629).
 *
 * Instead of a table-driven DFA the validator keeps the number of
 * continuation bytes still due and the range the next one must fall in.
 * Every rule RFC 3629 adds over "lead byte + n continuations" (no overlong
 * forms, no surrogates, nothing above U+10FFFF) constrains only the first
 * continuation byte, so a range check on that byte is enough to reject each
 * impossible sequence at the earliest byte that proves it impossible.
 */
#include "autoconfig.h"

#include "utf8.h"

enum {
	UTF8_S_BOUNDARY = 0,
	UTF8_S_INSIDE = 1,
	UTF8_S_REJECT = 2
};

void utf8_init(struct utf8_validator *v)
{
	v->state = UTF8_S_BOUNDARY;
	v->need = 0;
	v->lo = 0x80;
	v->hi = 0xBF;
}

/* Sets how many continuation bytes a lead byte announces and the range of
 * the first one; returns 0 for a byte that can never start a sequence
 * (a stray continuation, C0/C1 which could only be overlong, F5..FF). */
static int utf8_lead(struct utf8_validator *v, uint8_t b)
{
	v->lo = 0x80;
	v->hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF) {
		v->need = 1;
	} else if (b >= 0xE0 && b <= 0xEF) {
		v->need = 2;
		if (b == 0xE0)
			v->lo = 0xA0;	/* below: overlong, fits in 2 bytes */
		else if (b == 0xED)
			v->hi = 0x9F;	/* above: U+D800..DFFF surrogates */
	} else if (b >= 0xF0 && b <= 0xF4) {
		v->need = 3;
		if (b == 0xF0)
			v->lo = 0x90;	/* below: overlong, fits in 3 bytes */
		else if (b == 0xF4)
			v->hi = 0x8F;	/* above: beyond U+10FFFF */
	} else {
		return 0;
	}
	return 1;
}

enum utf8_result utf8_feed(struct utf8_validator *v, const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (v->state == UTF8_S_REJECT)
		return UTF8_INVALID;
	while (i < n) {
		uint8_t b = p[i++];

		if (v->need == 0) {
			if (b < 0x80)
				continue;
			if (!utf8_lead(v, b))
				goto reject;
			continue;
		}
		if (b < v->lo || b > v->hi)
			goto reject;
		v->need--;
		v->lo = 0x80;
		v->hi = 0xBF;
	}
	v->state = v->need ? UTF8_S_INSIDE : UTF8_S_BOUNDARY;
	return v->need ? UTF8_PARTIAL : UTF8_OK;

reject:
	v->state = UTF8_S_REJECT;
	return UTF8_INVALID;
}

int utf8_valid(const uint8_t *p, size_t n)
{
	struct utf8_validator v;

	utf8_init(&v);
	return utf8_feed(&v, p, n) == UTF8_OK;
}
