/*
 * Log-bucket histogram; see histogram.h for the bucket layout.
 *
 * Index of a value v >= 2^S (S = HIST_SUB_BITS): let m be the index of its
 * highest set bit, shift = m - S + 1 and top = v >> shift, which lies in
 * [2^(S-1), 2^S). Then index = 2^S + (shift - 1) * 2^(S-1) + top - 2^(S-1).
 * Values below 2^S index themselves. The two ranges meet without a gap
 * (v = 2^S gives index 2^S), and the bucket holding v spans 2^shift values,
 * which is at most v / 2^(S-1).
 */
#include "histogram.h"

#include <string.h>

void hist_reset(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v)
{
	if (v < HIST_SUB_COUNT)
		return (unsigned)v;
	/* GCC/Clang builtin: one instruction where a loop would be 64. */
	unsigned msb = 63u - (unsigned)__builtin_clzll(v);
	unsigned shift = msb - HIST_SUB_BITS + 1;
	unsigned top = (unsigned)(v >> shift);
	return HIST_SUB_COUNT + (shift - 1) * HIST_HALF_COUNT + (top - HIST_HALF_COUNT);
}

/* The highest value that lands in bucket i. */
static uint64_t bucket_high(unsigned i)
{
	if (i < HIST_SUB_COUNT)
		return i;
	unsigned j = i - HIST_SUB_COUNT;
	unsigned shift = j / HIST_HALF_COUNT + 1;
	uint64_t top = HIST_HALF_COUNT + j % HIST_HALF_COUNT;
	/* The last bucket ends at UINT64_MAX; avoid shifting past 64 bits. */
	if (shift == 64 - HIST_SUB_BITS && top == HIST_SUB_COUNT - 1)
		return UINT64_MAX;
	return ((top + 1) << shift) - 1;
}

void hist_record(struct hist *h, uint64_t value)
{
	if (h->count == 0 || value < h->min)
		h->min = value;
	if (value > h->max)
		h->max = value;
	h->count++;
	h->sum += (double)value;
	h->counts[bucket_of(value)]++;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		dst->counts[i] += src->counts[i];
}

uint64_t hist_percentile(const struct hist *h, double percent)
{
	if (h->count == 0)
		return 0;
	if (percent > 100.0)
		percent = 100.0;
	/* The rank of the wanted value, 1-based, at least 1. */
	uint64_t rank = (uint64_t)(percent / 100.0 * (double)h->count + 0.5);
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t high = bucket_high(i);
			return high < h->max ? high : h->max;
		}
	}
	return h->max;
}

double hist_mean(const struct hist *h)
{
	return h->count ? h->sum / (double)h->count : 0.0;
}
