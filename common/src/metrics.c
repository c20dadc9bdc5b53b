/*
 * metrics.c: the metrics registry and its Prometheus text rendering (see
 * rg/metrics.h).
 *
 * Invariants:
 * - The registry's list only grows, under `lock`; metrics are freed only by
 *   rg_metrics_destroy. So a metric pointer handed out stays valid, and
 *   updates need no lock: each value is one relaxed atomic.
 * - Rendering holds `lock` (collectors run under it too), so two scrapes
 *   never interleave their collectors' writes.
 * - A histogram's count is not stored: it is the sum of its buckets, read
 *   once per render, so _count always equals the +Inf bucket even while
 *   observations race the scrape.
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/metrics.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rg/log.h" /* RG_PRINTF */

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

static const char *const type_names[] = { "counter", "gauge", "histogram" };

/* The common head of every metric; the public handles point at the
 * type-specific structs, which start with it. */
struct metric {
	struct metric *next;          /* registration order */
	enum metric_type type;
	char *name;
	char *labels;                 /* "" when none */
	char *help;
};

struct rg_counter {
	struct metric head;
	_Atomic uint64_t value;
};

struct rg_gauge {
	struct metric head;
	_Atomic int64_t value;
};

struct rg_histogram {
	struct metric head;
	struct rg_buckets layout;
	_Atomic uint64_t sum;         /* in observed units */
	_Atomic uint64_t *buckets;    /* layout.count + 1 (+Inf), not cumulative */
};

struct collector {
	struct collector *next;
	void (*fn)(void *arg);
	void *arg;
	void (*release)(void *arg);
};

struct rg_metrics {
	pthread_mutex_t lock;
	struct metric *first, **last;
	struct collector *collectors;
	atomic_bool failed;
};

/* ---- registry -------------------------------------------------------------- */

struct rg_metrics *rg_metrics_create(void)
{
	struct rg_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	m->last = &m->first;
	return m;
}

static void metric_free(struct metric *mt)
{
	free(mt->name);
	free(mt->labels);
	free(mt->help);
	if (mt->type == METRIC_HISTOGRAM)
		free(((struct rg_histogram *)mt)->buckets);
	free(mt);
}

void rg_metrics_destroy(struct rg_metrics *m)
{
	if (!m)
		return;
	while (m->first) {
		struct metric *next = m->first->next;

		metric_free(m->first);
		m->first = next;
	}
	while (m->collectors) {
		struct collector *next = m->collectors->next;

		if (m->collectors->release)
			m->collectors->release(m->collectors->arg);
		free(m->collectors);
		m->collectors = next;
	}
	pthread_mutex_destroy(&m->lock);
	free(m);
}

bool rg_metrics_ok(const struct rg_metrics *m)
{
	return !atomic_load((atomic_bool *)&m->failed);
}

static bool name_valid(const char *name)
{
	if (!name || !*name || (*name >= '0' && *name <= '9'))
		return false;
	for (const char *p = name; *p; p++) {
		char ch = *p;

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == ':'))
			return false;
	}
	return true;
}

/* Why `name` cannot take a new (type, labels) member, under the lock. */
static bool name_conflicts(const struct rg_metrics *m, enum metric_type type,
			   const char *name, const char *labels)
{
	for (const struct metric *mt = m->first; mt; mt = mt->next) {
		if (strcmp(mt->name, name) != 0)
			continue;
		if (mt->type != type || strcmp(mt->labels, labels) == 0)
			return true;
	}
	return false;
}

/* Fill in head, check and append; frees mt and returns false on failure. */
static bool metric_add(struct rg_metrics *m, struct metric *mt, enum metric_type type,
		       const char *name, const char *labels, const char *help)
{
	bool ok;

	mt->type = type;
	mt->name = strdup(name ? name : "");
	mt->labels = strdup(labels ? labels : "");
	mt->help = strdup(help ? help : "");
	ok = name_valid(name) && mt->name && mt->labels && mt->help;
	pthread_mutex_lock(&m->lock);
	if (ok && !name_conflicts(m, type, mt->name, mt->labels)) {
		*m->last = mt;
		m->last = &mt->next;
	} else {
		ok = false;
	}
	pthread_mutex_unlock(&m->lock);
	if (!ok) {
		atomic_store(&m->failed, true);
		metric_free(mt);
	}
	return ok;
}

struct rg_counter *rg_metrics_counter(struct rg_metrics *m, const char *name,
				      const char *labels, const char *help)
{
	struct rg_counter *c = calloc(1, sizeof(*c));

	if (!c) {
		atomic_store(&m->failed, true);
		return NULL;
	}
	c->head.type = METRIC_COUNTER;
	return metric_add(m, &c->head, METRIC_COUNTER, name, labels, help) ? c : NULL;
}

struct rg_gauge *rg_metrics_gauge(struct rg_metrics *m, const char *name,
				  const char *labels, const char *help)
{
	struct rg_gauge *g = calloc(1, sizeof(*g));

	if (!g) {
		atomic_store(&m->failed, true);
		return NULL;
	}
	g->head.type = METRIC_GAUGE;
	return metric_add(m, &g->head, METRIC_GAUGE, name, labels, help) ? g : NULL;
}

struct rg_histogram *rg_metrics_histogram(struct rg_metrics *m, const char *name,
					  const char *labels, const char *help,
					  struct rg_buckets buckets)
{
	struct rg_histogram *h = calloc(1, sizeof(*h));

	/* Bounds must fit in 64 bits and be distinct when shown. */
	if (!h || buckets.first == 0 || buckets.count == 0 || buckets.count > 48 ||
	    (buckets.first >> (64 - buckets.count)) != 0 || !(buckets.scale > 0)) {
		free(h);
		atomic_store(&m->failed, true);
		return NULL;
	}
	h->head.type = METRIC_HISTOGRAM;
	h->layout = buckets;
	h->buckets = calloc(buckets.count + 1, sizeof(*h->buckets));
	if (!h->buckets) {
		free(h);
		atomic_store(&m->failed, true);
		return NULL;
	}
	return metric_add(m, &h->head, METRIC_HISTOGRAM, name, labels, help) ? h : NULL;
}

int rg_metrics_on_collect(struct rg_metrics *m, void (*fn)(void *arg), void *arg,
			  void (*release)(void *arg))
{
	struct collector *c = calloc(1, sizeof(*c));

	if (!c) {
		atomic_store(&m->failed, true);
		if (release)
			release(arg);
		return -ENOMEM;
	}
	c->fn = fn;
	c->arg = arg;
	c->release = release;
	pthread_mutex_lock(&m->lock);
	c->next = m->collectors;
	m->collectors = c;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* ---- updates ---------------------------------------------------------------- */

void rg_counter_add(struct rg_counter *c, uint64_t n)
{
	if (c)
		atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

void rg_counter_set(struct rg_counter *c, uint64_t value)
{
	if (c)
		atomic_store_explicit(&c->value, value, memory_order_relaxed);
}

uint64_t rg_counter_value(const struct rg_counter *c)
{
	return c ? atomic_load_explicit((_Atomic uint64_t *)&c->value, memory_order_relaxed)
		 : 0;
}

void rg_gauge_set(struct rg_gauge *g, int64_t value)
{
	if (g)
		atomic_store_explicit(&g->value, value, memory_order_relaxed);
}

void rg_gauge_add(struct rg_gauge *g, int64_t delta)
{
	if (g)
		atomic_fetch_add_explicit(&g->value, delta, memory_order_relaxed);
}

int64_t rg_gauge_value(const struct rg_gauge *g)
{
	return g ? atomic_load_explicit((_Atomic int64_t *)&g->value, memory_order_relaxed)
		 : 0;
}

void rg_histogram_observe(struct rg_histogram *h, uint64_t value)
{
	unsigned i = 0;
	uint64_t bound;

	if (!h)
		return;
	/* Bounds double, so at most `count` steps; buckets are few. */
	for (bound = h->layout.first; i < h->layout.count && value > bound; bound <<= 1)
		i++;
	atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

uint64_t rg_histogram_count(const struct rg_histogram *h)
{
	uint64_t n = 0;

	if (!h)
		return 0;
	for (unsigned i = 0; i <= h->layout.count; i++)
		n += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
	return n;
}

/* ---- rendering ---------------------------------------------------------------- */

/* A growing text buffer; `failed` sticks after the first allocation failure. */
struct text {
	char *data;
	size_t len, cap;
	bool failed;
};

static void text_printf(struct text *t, const char *fmt, ...) RG_PRINTF(2, 3);

static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->failed = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n + 1;
		char *data = realloc(t->data, cap);

		if (!data) {
			t->failed = true;
			return;
		}
		t->data = data;
		t->cap = cap;
	}
}

/* "{labels}" , "{labels,extra}", "{extra}" or "" */
static void text_labels(struct text *t, const char *labels, const char *extra)
{
	if (!*labels && !extra)
		return;
	text_printf(t, "{%s%s%s}", labels, *labels && extra ? "," : "", extra ? extra : "");
}

/* Help text may not hold a newline or an unescaped backslash. */
static void text_help(struct text *t, const struct metric *mt)
{
	text_printf(t, "# HELP %s ", mt->name);
	for (const char *p = mt->help; *p; p++) {
		if (*p == '\\')
			text_printf(t, "\\\\");
		else if (*p == '\n')
			text_printf(t, "\\n");
		else
			text_printf(t, "%c", *p);
	}
	text_printf(t, "\n# TYPE %s %s\n", mt->name, type_names[mt->type]);
}

static void render_histogram(struct text *t, const struct rg_histogram *h)
{
	const struct metric *mt = &h->head;
	uint64_t cumulative = 0, bound = h->layout.first;
	char le[64];

	for (unsigned i = 0; i <= h->layout.count; i++, bound <<= 1) {
		cumulative += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
		if (i < h->layout.count)
			snprintf(le, sizeof(le), "le=\"%.6g\"", (double)bound / h->layout.scale);
		else
			snprintf(le, sizeof(le), "le=\"+Inf\"");
		text_printf(t, "%s_bucket", mt->name);
		text_labels(t, mt->labels, le);
		text_printf(t, " %llu\n", (unsigned long long)cumulative);
	}
	text_printf(t, "%s_sum", mt->name);
	text_labels(t, mt->labels, NULL);
	text_printf(t, " %.9g\n",
		    (double)atomic_load_explicit((_Atomic uint64_t *)&h->sum, memory_order_relaxed) /
			    h->layout.scale);
	text_printf(t, "%s_count", mt->name);
	text_labels(t, mt->labels, NULL);
	text_printf(t, " %llu\n", (unsigned long long)cumulative);
}

static void render_one(struct text *t, const struct metric *mt)
{
	switch (mt->type) {
	case METRIC_COUNTER:
		text_printf(t, "%s", mt->name);
		text_labels(t, mt->labels, NULL);
		text_printf(t, " %llu\n",
			    (unsigned long long)rg_counter_value((const struct rg_counter *)mt));
		break;
	case METRIC_GAUGE:
		text_printf(t, "%s", mt->name);
		text_labels(t, mt->labels, NULL);
		text_printf(t, " %lld\n",
			    (long long)rg_gauge_value((const struct rg_gauge *)mt));
		break;
	case METRIC_HISTOGRAM:
		render_histogram(t, (const struct rg_histogram *)mt);
		break;
	}
}

/* True when a metric before `mt` has its name: its family was rendered. */
static bool family_done(const struct rg_metrics *m, const struct metric *mt)
{
	for (const struct metric *p = m->first; p != mt; p = p->next)
		if (strcmp(p->name, mt->name) == 0)
			return true;
	return false;
}

int rg_metrics_render(struct rg_metrics *m, char **out, size_t *out_len)
{
	struct text t = { .cap = 4096 };

	t.data = malloc(t.cap);
	if (!t.data)
		return -ENOMEM;
	t.data[0] = '\0';
	pthread_mutex_lock(&m->lock);
	for (struct collector *c = m->collectors; c; c = c->next)
		c->fn(c->arg);
	/* Families are few (tens), so the quadratic grouping is cheap and
	 * keeps registration order, which is the order people read. */
	for (const struct metric *mt = m->first; mt; mt = mt->next) {
		if (family_done(m, mt))
			continue;
		text_help(&t, mt);
		for (const struct metric *member = mt; member; member = member->next)
			if (strcmp(member->name, mt->name) == 0)
				render_one(&t, member);
	}
	pthread_mutex_unlock(&m->lock);
	if (t.failed) {
		free(t.data);
		return -ENOMEM;
	}
	*out = t.data;
	*out_len = t.len;
	return 0;
}
