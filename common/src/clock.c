/* clock.c: millisecond views of CLOCK_MONOTONIC and CLOCK_REALTIME, and a
 * nanosecond one of CLOCK_MONOTONIC for latency histograms. */
#define _POSIX_C_SOURCE 200809L
#include "rg/clock.h"

#include <time.h>

static uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	/* Cannot fail for these two clocks on Linux. */
	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t rg_now_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

uint64_t rg_wall_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

uint64_t rg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
