/*
 * rg/throttle.h: throttles for expensive requests (logins: one password
 * hash costs tens of milliseconds on purpose).
 *
 * - struct rg_bucket: a token bucket, `rate` tokens per `period_ms`, holding
 *   at most `rate` (so `rate` is the burst too). Not locked.
 * - struct rg_throttle: a bounded table of string keys (a client address,
 *   an account name), each with
 *     an attempt bucket (attempt_rate per attempt_period_ms),
 *     a quota bucket (quota_rate per quota_period_ms) that the caller
 *     peeks before and takes after the costly thing happened (an account
 *     was created), and
 *     a failure backoff: after `free_failures` failures in a row, each
 *     further attempt waits RG_BACKOFF_FIRST_MS, doubling per failure up to
 *     RG_BACKOFF_MAX_MS; a success clears it. A key that keeps quiet for
 *     RG_BACKOFF_FORGET_MS is forgotten with its failures.
 *   A rate or free_failures of 0 turns that part off. One mutex guards
 *   the table: any thread may call it.
 *
 * The table holds at most max_keys keys. A key whose buckets are full and
 * that has no failures is worth nothing and is dropped when room is
 * needed; when every key still matters, a new key cannot be tracked:
 * rg_throttle_attempt says -ENOSPC and the caller decides (the gateway
 * answers SERVER_BUSY rather than let an untracked address through).
 * All times are the caller's monotonic milliseconds (rg_now_ms()).
 */
#ifndef RG_THROTTLE_H
#define RG_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RG_BACKOFF_FIRST_MS 1000u
#define RG_BACKOFF_MAX_MS 60000u
#define RG_BACKOFF_FORGET_MS (15u * 60u * 1000u)

/* A token is period_ms units and the bucket gains `rate` units a
 * millisecond, so slow rates (100 an hour) refill exactly, in integers. */
struct rg_bucket {
	uint64_t units;           /* tokens x period_ms              */
	uint64_t at_ms;           /* when units was last topped up   */
	bool started;             /* false: full (never used)        */
};

/* Take one token: true, or false (none taken) with *wait_ms (may be NULL)
 * set to how long until one is there. rate 0: always true. */
bool rg_bucket_take(struct rg_bucket *b, uint32_t rate, uint32_t period_ms, uint64_t now_ms,
		    uint64_t *wait_ms /* OUT, may be NULL */);

struct rg_throttle_config {
	uint32_t attempt_rate;        /* attempts per attempt_period_ms; 0: any */
	uint32_t attempt_period_ms;
	uint32_t quota_rate;          /* quota uses per quota_period_ms; 0: any */
	uint32_t quota_period_ms;
	uint32_t free_failures;       /* failures before the backoff; 0: none   */
	size_t max_keys;              /* >= 1                                   */
};

struct rg_throttle;

/* Make an empty table. Returns 0 and sets *out, or -ENOMEM / -EINVAL. */
int rg_throttle_create(const struct rg_throttle_config *cfg, struct rg_throttle **out /* OUT */);

/* Free the table. NULL is fine. */
void rg_throttle_destroy(struct rg_throttle *t);

/*
 * An attempt by key at now_ms. Returns 0 (allowed: an attempt token was
 * taken), -EAGAIN (over the attempt rate), -EBUSY (in failure backoff) or
 * -ENOSPC (the table is full of keys that matter, or no memory for a new
 * one); for -EAGAIN and -EBUSY
 * *wait_ms says how long until an attempt may succeed. With quota_ok
 * (may be NULL) also says whether the key has a quota token now.
 */
int rg_throttle_attempt(struct rg_throttle *t, const char *key, uint64_t now_ms,
			uint64_t *wait_ms /* OUT */, bool *quota_ok /* OUT, may be NULL */);

/* True when key is in failure backoff now (*wait_ms: for how long). A
 * check without an attempt: it takes nothing and adds no key. */
bool rg_throttle_backing_off(struct rg_throttle *t, const char *key, uint64_t now_ms,
			     uint64_t *wait_ms /* OUT */);

/* The attempt by key failed (a wrong password): count it. */
void rg_throttle_failed(struct rg_throttle *t, const char *key, uint64_t now_ms);

/* The attempt by key succeeded: clear its failures; with used_quota, take
 * a quota token if one is left (uses racing past the quota stop at empty).
 * A key not in the table is left out (nothing to clear). */
void rg_throttle_succeeded(struct rg_throttle *t, const char *key, uint64_t now_ms,
			   bool used_quota);

/* Keys tracked now (a snapshot; tests and metrics). */
size_t rg_throttle_keys(struct rg_throttle *t);

#endif /* RG_THROTTLE_H */
