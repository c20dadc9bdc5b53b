/*
 * rg/metrics.h: counters, gauges and histograms, rendered as Prometheus
 * text exposition (format 0.0.4) for a process's admin port (rg/admin.h).
 *
 * A registry owns its metrics; registering returns a pointer that stays
 * valid until rg_metrics_destroy(). Updates are lock-free relaxed atomics,
 * so any thread may update any metric at any time; a scrape reads each
 * value once and may see one update and not another that happened at the
 * same moment (Prometheus expects no more).
 *
 * A metric is named once per label set: several metrics may share a name
 * with different `labels` (`call="login"`), and they are rendered together
 * as one family under one # HELP / # TYPE. Labels are passed preformatted
 * (`k="v",k2="v2"`) and are constants in ringgate, so they are not escaped.
 *
 * Histograms have fixed log buckets: upper bounds first, 2*first, 4*first,
 * ... (count of them), then +Inf. They observe integers in a unit of their
 * own (nanoseconds, writes) and render bounds and sums divided by `scale`
 * (1e9 turns nanoseconds into Prometheus's seconds).
 *
 * Update functions take NULL and do nothing, so code that may run without
 * a registry (benchmarks, unit tests) needs no test of its own.
 */
#ifndef RG_METRICS_H
#define RG_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rg_metrics;
struct rg_counter;
struct rg_gauge;
struct rg_histogram;

/* Log bucket layout of a histogram. */
struct rg_buckets {
	uint64_t first;   /* the first upper bound, in observed units (> 0) */
	unsigned count;   /* bounds: first * 2^0 .. first * 2^(count-1)    */
	double scale;     /* rendered value = observed / scale             */
};

/* Durations observed in nanoseconds: 10 us .. ~21 s, shown in seconds. */
#define RG_BUCKETS_SECONDS ((struct rg_buckets){ 10000, 22, 1e9 })
/* Sizes observed as counts: 1 .. 4096. */
#define RG_BUCKETS_SIZES ((struct rg_buckets){ 1, 13, 1.0 })

/* A new, empty registry, or NULL when out of memory. Any thread. */
struct rg_metrics *rg_metrics_create(void);

/* Free the registry and every metric in it. NULL is fine. No thread may
 * use its metrics any more. */
void rg_metrics_destroy(struct rg_metrics *m);

/*
 * Register a metric. name: [a-zA-Z_:][a-zA-Z0-9_:]* (counters should end
 * in _total); labels: NULL or preformatted `k="v",...`; help: one line.
 * The strings are copied. Returns the metric, or NULL for a bad name, a
 * name already used by another type, a duplicate (name, labels), or out
 * of memory; every such failure is also remembered (rg_metrics_ok), so a
 * process may register everything and check once. Any thread.
 */
struct rg_counter *rg_metrics_counter(struct rg_metrics *m, const char *name,
				      const char *labels, const char *help);
struct rg_gauge *rg_metrics_gauge(struct rg_metrics *m, const char *name,
				  const char *labels, const char *help);
struct rg_histogram *rg_metrics_histogram(struct rg_metrics *m, const char *name,
					  const char *labels, const char *help,
					  struct rg_buckets buckets);

/* False once any registration has failed. */
bool rg_metrics_ok(const struct rg_metrics *m);

/*
 * fn(arg) runs at the start of every render, before any value is read, to
 * copy figures kept elsewhere (libnet's stats, a queue's length) into
 * metrics. It runs on the rendering thread with the registry locked: it
 * may update metrics but not register or render. release(arg), unless
 * release is NULL, runs at rg_metrics_destroy (or at once if this fails).
 * Returns 0 or -ENOMEM.
 */
int rg_metrics_on_collect(struct rg_metrics *m, void (*fn)(void *arg), void *arg,
			  void (*release)(void *arg));

/* Counters only go up; set is for mirroring a counter kept elsewhere. */
void rg_counter_add(struct rg_counter *c, uint64_t n);
void rg_counter_set(struct rg_counter *c, uint64_t value);
uint64_t rg_counter_value(const struct rg_counter *c);

void rg_gauge_set(struct rg_gauge *g, int64_t value);
void rg_gauge_add(struct rg_gauge *g, int64_t delta);
int64_t rg_gauge_value(const struct rg_gauge *g);

/* Record one observation of value (in the histogram's own unit). */
void rg_histogram_observe(struct rg_histogram *h, uint64_t value);

/* Observations so far. */
uint64_t rg_histogram_count(const struct rg_histogram *h);

/*
 * Render every metric as Prometheus text (0.0.4): *out is a malloc'ed,
 * NUL-terminated buffer of *out_len bytes that the caller frees. Runs the
 * collectors first. Returns 0 or -ENOMEM. Any thread.
 */
int rg_metrics_render(struct rg_metrics *m, char **out /* OUT */, size_t *out_len /* OUT */);

#endif /* RG_METRICS_H */
