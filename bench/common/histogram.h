/*
 * A log-bucket latency histogram in the manner of HdrHistogram: exact below
 * 2^HIST_SUB_BITS, then 2^(HIST_SUB_BITS-1) linear sub-buckets per power of
 * two, so any recorded value is known to within 1/128 (0.8%) of itself.
 * Recording is one bit scan and one increment: cheap enough for every
 * message of a load generator, and percentiles come from counts, never from
 * a sorted sample, so p99.9 over a billion messages costs nothing extra.
 *
 * Values are unsigned 64-bit (the bench programs record nanoseconds).
 * A histogram is a plain struct with no heap memory: zero it with
 * hist_reset(), add another with hist_merge(). Not thread-safe: one per
 * thread, merged at the end.
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB_BITS 8
#define HIST_SUB_COUNT (1u << HIST_SUB_BITS)      /* exact values 0..255   */
#define HIST_HALF_COUNT (HIST_SUB_COUNT / 2)      /* sub-buckets per octave */
/* Octaves above the exact range: shifts 1 .. 64 - HIST_SUB_BITS. */
#define HIST_BUCKETS (HIST_SUB_COUNT + (64 - HIST_SUB_BITS) * HIST_HALF_COUNT)

struct hist {
	uint64_t count;              /* values recorded                    */
	uint64_t min, max;           /* exact extremes (min valid if count) */
	double sum;                  /* for the mean                       */
	uint64_t counts[HIST_BUCKETS];
};

/* Empty the histogram. */
void hist_reset(struct hist *h);

/* Record one value. */
void hist_record(struct hist *h, uint64_t value);

/* Add every value of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The value at or below which `percent` (0..100) of the recorded values
 * lie, reported as the highest value of its bucket (never above max), as
 * HdrHistogram does; 0 for an empty histogram.
 */
uint64_t hist_percentile(const struct hist *h, double percent);

/* Mean of the recorded values; 0 when empty. */
double hist_mean(const struct hist *h);

#endif /* BENCH_HISTOGRAM_H */
