/* clock.h - the one clock: CLOCK_MONOTONIC, for deadlines and latencies.
 * Any thread.  Its own module so that nobody includes the loop's header
 * (or main.c's) for the time.
 */
#ifndef NOTIFYD_CLOCK_H
#define NOTIFYD_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_now_ms(void)
{
	return clock_now_ns() / 1000000u;
}

/* Wall-clock milliseconds since the epoch: only for what is shown to people
 * or compared with tokens and other hosts, never for deadlines. */
static inline uint64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#endif
