/*
 * rg/calls.h: server-to-server calls that always end.
 *
 * A table of outstanding requests on an internal link. Each call gets a
 * non-zero id (sent as request_id), a deadline and a callback; the callback
 * runs exactly once, with one of:
 *   0            the reply arrived (reply points to the decoded message,
 *                valid only during the callback),
 *   -ETIMEDOUT   rg_calls_expire() passed its deadline first,
 *   -ENOTCONN    the link went down (rg_calls_fail_all(c, -ENOTCONN)),
 *   -ECANCELED   the table was destroyed.
 * A reply that comes after the timeout finds no entry and is dropped
 * (rg_calls_complete returns false).
 *
 * A table is not thread-safe: it belongs to one thread (the one that sends
 * the requests and handles the replies). Callbacks may add new calls to the
 * same table; entries are unlinked before their callback runs.
 */
#ifndef RG_CALLS_H
#define RG_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rg_calls;

/* status: 0 (reply), -ETIMEDOUT, -ENOTCONN or -ECANCELED; reply is NULL
 * unless status == 0. */
typedef void (*rg_call_fn)(void *ctx, int status, const void *reply);

/* A new, empty table, or NULL when out of memory. */
struct rg_calls *rg_calls_create(void);

/*
 * Register a call ending at deadline_ms (rg_now_ms() clock). Returns its id
 * (never 0, never reused by this table), or 0 when out of memory (then fn
 * will not run).
 */
uint64_t rg_calls_add(struct rg_calls *c, uint64_t deadline_ms, rg_call_fn fn, void *ctx);

/* Deliver the reply for id: runs its callback with status 0 and returns
 * true; false if id is unknown (never issued, expired or already done). */
bool rg_calls_complete(struct rg_calls *c, uint64_t id, const void *reply);

/* Forget id without running its callback: for a request that could not
 * be sent after all (the caller reports that failure itself). Returns
 * false if id is unknown. */
bool rg_calls_cancel(struct rg_calls *c, uint64_t id);

/* End every call whose deadline is <= now_ms with -ETIMEDOUT, earliest
 * first. */
void rg_calls_expire(struct rg_calls *c, uint64_t now_ms);

/* End every call pending now with status (e.g. -ENOTCONN when the link
 * drops). Calls added by these callbacks stay pending. */
void rg_calls_fail_all(struct rg_calls *c, int status);

/* Calls not yet ended. */
size_t rg_calls_pending(const struct rg_calls *c);

/* End what is pending with -ECANCELED, then free the table. NULL is fine. */
void rg_calls_destroy(struct rg_calls *c);

#endif /* RG_CALLS_H */
