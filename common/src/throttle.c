/*
 * throttle.c: token buckets and a bounded, locked table of per-key
 * throttles (see rg/throttle.h).
 *
 * The table is a chained hash of malloc'ed entries. Room is made only when
 * a new key needs it: one pass drops every entry that is worth nothing
 * (both buckets full again, no failures remembered), so the cost of a
 * sweep is paid once per max_keys / 2 or so new keys, not per call.
 */
#include "rg/throttle.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	struct rg_bucket attempts;
	struct rg_bucket quota;
	uint32_t failures;        /* in a row                           */
	uint64_t failed_ms;       /* the last failure                   */
	uint64_t until_ms;        /* backoff: no attempt before this    */
	char key[];
};

struct rg_throttle {
	pthread_mutex_t lock;
	struct rg_throttle_config cfg;
	size_t count;
	size_t mask;
	struct entry **heads;
};

/* Top the bucket up to now; returns its capacity in units. */
static uint64_t refill(struct rg_bucket *b, uint32_t rate, uint32_t period_ms, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)rate * period_ms;

	if (!b->started) {
		b->units = cap;
		b->started = true;
	} else if (now_ms > b->at_ms) {
		uint64_t elapsed = now_ms - b->at_ms;

		/* Past a whole period the bucket is full whatever it held. */
		b->units = elapsed >= period_ms ? cap : b->units + elapsed * rate;
		if (b->units > cap)
			b->units = cap;
	}
	b->at_ms = now_ms;
	return cap;
}

bool rg_bucket_take(struct rg_bucket *b, uint32_t rate, uint32_t period_ms, uint64_t now_ms,
		    uint64_t *wait_ms)
{
	if (rate == 0)
		return true;
	refill(b, rate, period_ms, now_ms);
	if (b->units >= period_ms) {
		b->units -= period_ms;
		return true;
	}
	if (wait_ms)
		*wait_ms = (period_ms - b->units + rate - 1) / rate;
	return false;
}

/* True when the bucket has a token now (nothing taken). */
static bool bucket_peek(struct rg_bucket *b, uint32_t rate, uint32_t period_ms, uint64_t now_ms)
{
	if (rate == 0)
		return true;
	refill(b, rate, period_ms, now_ms);
	return b->units >= period_ms;
}

/* True when the bucket holds all it can: it may as well not exist. */
static bool bucket_full(struct rg_bucket *b, uint32_t rate, uint32_t period_ms, uint64_t now_ms)
{
	if (rate == 0)
		return true;
	return refill(b, rate, period_ms, now_ms) == b->units;
}

/* Failures older than RG_BACKOFF_FORGET_MS no longer count. */
static void forget_old(struct entry *e, uint64_t now_ms)
{
	if (e->failures && now_ms - e->failed_ms >= RG_BACKOFF_FORGET_MS) {
		e->failures = 0;
		e->until_ms = 0;
	}
}

static bool worthless(const struct rg_throttle *t, struct entry *e, uint64_t now_ms)
{
	const struct rg_throttle_config *c = &t->cfg;

	forget_old(e, now_ms);
	return e->failures == 0 &&
	       bucket_full(&e->attempts, c->attempt_rate, c->attempt_period_ms, now_ms) &&
	       bucket_full(&e->quota, c->quota_rate, c->quota_period_ms, now_ms);
}

static size_t hash_key(const struct rg_throttle *t, const char *key)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return (size_t)h & t->mask;
}

/* Drop every entry worth nothing. Lock held. */
static void sweep(struct rg_throttle *t, uint64_t now_ms)
{
	for (size_t i = 0; i <= t->mask; i++) {
		struct entry **at = &t->heads[i];

		while (*at) {
			struct entry *e = *at;

			if (worthless(t, e, now_ms)) {
				*at = e->next;
				free(e);
				t->count--;
			} else {
				at = &e->next;
			}
		}
	}
}

/* The entry of key; with add, a new one if absent (NULL when no room or
 * no memory). Lock held. */
static struct entry *find(struct rg_throttle *t, const char *key, uint64_t now_ms, bool add)
{
	size_t h = hash_key(t, key), len;
	struct entry *e;

	for (e = t->heads[h]; e; e = e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e) {
		forget_old(e, now_ms);
		return e;
	}
	if (!add)
		return NULL;
	if (t->count >= t->cfg.max_keys)
		sweep(t, now_ms);
	if (t->count >= t->cfg.max_keys)
		return NULL;
	len = strlen(key) + 1;
	e = calloc(1, sizeof(*e) + len);
	if (!e)
		return NULL;
	memcpy(e->key, key, len);
	e->next = t->heads[h];
	t->heads[h] = e;
	t->count++;
	return e;
}

int rg_throttle_create(const struct rg_throttle_config *cfg, struct rg_throttle **out)
{
	struct rg_throttle *t;
	size_t heads = 64;

	if (cfg->max_keys == 0 || (cfg->attempt_rate && !cfg->attempt_period_ms) ||
	    (cfg->quota_rate && !cfg->quota_period_ms))
		return -EINVAL;
	while (heads < cfg->max_keys / 2 && heads < ((size_t)1 << 20))
		heads <<= 1;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->heads = calloc(heads, sizeof(*t->heads));
	if (!t->heads || pthread_mutex_init(&t->lock, NULL) != 0) {
		free(t->heads);
		free(t);
		return -ENOMEM;
	}
	t->cfg = *cfg;
	t->mask = heads - 1;
	*out = t;
	return 0;
}

void rg_throttle_destroy(struct rg_throttle *t)
{
	if (!t)
		return;
	for (size_t i = 0; i <= t->mask; i++) {
		while (t->heads[i]) {
			struct entry *e = t->heads[i];

			t->heads[i] = e->next;
			free(e);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t->heads);
	free(t);
}

int rg_throttle_attempt(struct rg_throttle *t, const char *key, uint64_t now_ms,
			uint64_t *wait_ms, bool *quota_ok)
{
	const struct rg_throttle_config *c = &t->cfg;
	struct entry *e;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	e = find(t, key, now_ms, true);
	if (!e) {
		rc = -ENOSPC;
	} else if (e->until_ms > now_ms) {
		/* Checked first: waiting out a backoff costs no tokens. */
		*wait_ms = e->until_ms - now_ms;
		rc = -EBUSY;
	} else if (!rg_bucket_take(&e->attempts, c->attempt_rate, c->attempt_period_ms, now_ms,
				   wait_ms)) {
		rc = -EAGAIN;
	} else if (quota_ok) {
		*quota_ok = bucket_peek(&e->quota, c->quota_rate, c->quota_period_ms, now_ms);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

bool rg_throttle_backing_off(struct rg_throttle *t, const char *key, uint64_t now_ms,
			     uint64_t *wait_ms)
{
	struct entry *e;
	bool backing_off = false;

	pthread_mutex_lock(&t->lock);
	e = find(t, key, now_ms, false);
	if (e && e->until_ms > now_ms) {
		*wait_ms = e->until_ms - now_ms;
		backing_off = true;
	}
	pthread_mutex_unlock(&t->lock);
	return backing_off;
}

void rg_throttle_failed(struct rg_throttle *t, const char *key, uint64_t now_ms)
{
	uint32_t free_failures = t->cfg.free_failures;
	struct entry *e;

	if (free_failures == 0)
		return;
	pthread_mutex_lock(&t->lock);
	e = find(t, key, now_ms, true); /* NULL: no room; it goes untracked */
	if (e) {
		e->failures++;
		e->failed_ms = now_ms;
		if (e->failures >= free_failures) {
			uint32_t doublings = e->failures - free_failures;
			uint64_t delay = (uint64_t)RG_BACKOFF_FIRST_MS << (doublings < 16 ? doublings : 16);

			e->until_ms = now_ms + (delay < RG_BACKOFF_MAX_MS ? delay : RG_BACKOFF_MAX_MS);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

void rg_throttle_succeeded(struct rg_throttle *t, const char *key, uint64_t now_ms,
			   bool used_quota)
{
	const struct rg_throttle_config *c = &t->cfg;
	struct entry *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, key, now_ms, false);
	if (e) {
		e->failures = 0;
		e->until_ms = 0;
		if (used_quota)
			(void)rg_bucket_take(&e->quota, c->quota_rate, c->quota_period_ms, now_ms,
					     NULL);
	}
	pthread_mutex_unlock(&t->lock);
}

size_t rg_throttle_keys(struct rg_throttle *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->count;
	pthread_mutex_unlock(&t->lock);
	return n;
}
