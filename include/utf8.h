/* utf8.h - incremental UTF-8 validation (RFC 3629).
 *
 * Promises: rejects overlong forms, UTF-16 surrogates (U+D800..DFFF) and code
 * points above U+10FFFF, and reports an impossible byte as soon as it is seen
 * (RFC 6455 section 8.1 "fail fast").  State carries across calls, so a code
 * point may be split between two WebSocket fragments.  No allocation.
 */
#ifndef NOTIFYD_UTF8_H
#define NOTIFYD_UTF8_H

#include <stddef.h>
#include <stdint.h>

struct utf8_validator {
	uint32_t state;		/* 0: at a code point boundary */
	uint32_t need;		/* continuation bytes still expected */
	uint32_t lo, hi;	/* allowed range of the next continuation byte */
};

enum utf8_result {
	UTF8_INVALID = -1,	/* an impossible sequence was seen: give up */
	UTF8_OK = 0,		/* everything fed so far is complete and valid */
	UTF8_PARTIAL = 1	/* valid so far, but a code point is unfinished */
};

void utf8_init(struct utf8_validator *v);

/* Feed n more bytes.  Once UTF8_INVALID is returned every later call returns
 * it too, until utf8_init(). */
enum utf8_result utf8_feed(struct utf8_validator *v, const uint8_t *p, size_t n);

/* Whole-buffer check: 1 if p[0..n) is complete, valid UTF-8, else 0. */
int utf8_valid(const uint8_t *p, size_t n);

#endif
