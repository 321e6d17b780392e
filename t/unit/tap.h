/* tap.h - the Test Anything Protocol for the C unit tests, header only.
 * ok(cond, fmt, ...) prints one line per check; done_testing() prints the
 * plan and returns the exit status (1 when any check failed). */
#ifndef NOTIFYD_TAP_H
#define NOTIFYD_TAP_H

#include <stdarg.h>
#include <stdio.h>

struct tap { int n, failed; };
static struct tap tap_state;

__attribute__((format(printf, 2, 3)))
static inline int ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_state.n++;
	if (!cond)
		tap_state.failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_state.n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static inline int done_testing(void)
{
	printf("1..%d\n", tap_state.n);
	return tap_state.failed ? 1 : 0;
}

#endif
