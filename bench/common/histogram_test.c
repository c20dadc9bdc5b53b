/*
 * histogram_test: the log-bucket histogram keeps every value within its
 * stated precision (1/128), reports exact extremes, and merges.
 */
#include "histogram.h"

#include <stdio.h>
#include <stdlib.h>

static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			failures++;                                            \
		}                                                              \
	} while (0)

/* Percentile p of 1..n is about p/100*n; allow the bucket width. */
static void check_near(uint64_t got, double want)
{
	double err = (double)got - want;
	if (err < 0)
		err = -err;
	if (err > want / 128.0 + 1.0) {
		fprintf(stderr, "percentile %llu, want about %.0f\n", (unsigned long long)got, want);
		failures++;
	}
}

int main(void)
{
	static struct hist h, other;
	hist_reset(&h);
	CHECK(hist_percentile(&h, 50) == 0);

	for (uint64_t v = 1; v <= 1000000; v++)
		hist_record(&h, v);
	CHECK(h.count == 1000000 && h.min == 1 && h.max == 1000000);
	check_near(hist_percentile(&h, 50), 500000);
	check_near(hist_percentile(&h, 99), 990000);
	check_near(hist_percentile(&h, 99.9), 999000);
	CHECK(hist_percentile(&h, 100) == 1000000);
	check_near((uint64_t)hist_mean(&h), 500000.5);

	/* Small values are exact; huge ones do not overflow the buckets. */
	hist_reset(&other);
	for (uint64_t v = 0; v < 200; v++)
		hist_record(&other, v);
	CHECK(hist_percentile(&other, 50) == 99 || hist_percentile(&other, 50) == 100);
	hist_record(&other, UINT64_MAX);
	CHECK(hist_percentile(&other, 100) == UINT64_MAX);

	hist_merge(&h, &other);
	CHECK(h.count == 1000201 && h.min == 0 && h.max == UINT64_MAX);

	if (failures)
		return 1;
	puts("histogram_test: ok");
	return 0;
}
