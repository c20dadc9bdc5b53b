/*
 * rg/clock.h: the two clocks ringgate uses. Deadlines, ticks and heartbeats
 * use the monotonic clock (never jumps); only values shown to people or
 * sent to clients as "server time" use the wall clock.
 */
#ifndef RG_CLOCK_H
#define RG_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds. Any thread. */
uint64_t rg_now_ms(void);

/* CLOCK_MONOTONIC in nanoseconds: for measuring durations (rg/metrics.h
 * histograms). Any thread. */
uint64_t rg_now_ns(void);

/* CLOCK_REALTIME in milliseconds since the Unix epoch. Any thread. */
uint64_t rg_wall_ms(void);

#endif /* RG_CLOCK_H */
