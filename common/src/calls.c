/*
 * calls.c: the table of outstanding internal calls (see rg/calls.h).
 *
 * Each pending call is one heap-allocated entry, reachable two ways:
 *   - by id, through an open hash table of singly linked buckets
 *     (power-of-two size, grown when the load passes 1);
 *   - by deadline, through a binary min-heap of entry pointers; each entry
 *     remembers its heap index so a completed call leaves the heap in
 *     O(log n).
 * Invariant: an entry is in both structures or in neither; it is unlinked
 * from both before its callback runs, so callbacks may freely add calls.
 */
#include "rg/calls.h"

#include <errno.h>
#include <stdlib.h>

struct call {
	uint64_t id;
	uint64_t deadline_ms;
	rg_call_fn fn;
	void *ctx;
	size_t heap_index;
	struct call *bucket_next;
};

struct rg_calls {
	uint64_t next_id;
	struct call **buckets;
	size_t bucket_count; /* power of two */
	struct call **heap;
	size_t heap_len;
	size_t heap_cap;
};

#define INITIAL_BUCKETS 64

struct rg_calls *rg_calls_create(void)
{
	struct rg_calls *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->buckets = calloc(INITIAL_BUCKETS, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->bucket_count = INITIAL_BUCKETS;
	c->next_id = 1;
	return c;
}

static size_t bucket_of(const struct rg_calls *c, uint64_t id)
{
	/* Ids are sequential, so the low bits already spread evenly. */
	return (size_t)(id & (c->bucket_count - 1));
}

/* ---- heap by deadline ---------------------------------------------------- */

static bool earlier(const struct call *a, const struct call *b)
{
	if (a->deadline_ms != b->deadline_ms)
		return a->deadline_ms < b->deadline_ms;
	return a->id < b->id; /* equal deadlines end in issue order */
}

static void heap_set(struct rg_calls *c, size_t i, struct call *e)
{
	c->heap[i] = e;
	e->heap_index = i;
}

static void heap_sift_up(struct rg_calls *c, size_t i)
{
	struct call *e = c->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!earlier(e, c->heap[parent]))
			break;
		heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	heap_set(c, i, e);
}

static void heap_sift_down(struct rg_calls *c, size_t i)
{
	struct call *e = c->heap[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= c->heap_len)
			break;
		if (child + 1 < c->heap_len && earlier(c->heap[child + 1], c->heap[child]))
			child++;
		if (!earlier(c->heap[child], e))
			break;
		heap_set(c, i, c->heap[child]);
		i = child;
	}
	heap_set(c, i, e);
}

static void heap_remove(struct rg_calls *c, struct call *e)
{
	size_t i = e->heap_index;
	struct call *last = c->heap[--c->heap_len];

	if (last == e)
		return;
	heap_set(c, i, last);
	heap_sift_up(c, i);
	heap_sift_down(c, last->heap_index);
}

/* ---- hash by id ---------------------------------------------------------- */

static int hash_grow(struct rg_calls *c)
{
	size_t new_count = c->bucket_count * 2;
	struct call **nb = calloc(new_count, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	for (size_t i = 0; i < c->bucket_count; i++) {
		struct call *e = c->buckets[i];

		while (e) {
			struct call *next = e->bucket_next;
			size_t b = (size_t)(e->id & (new_count - 1));

			e->bucket_next = nb[b];
			nb[b] = e;
			e = next;
		}
	}
	free(c->buckets);
	c->buckets = nb;
	c->bucket_count = new_count;
	return 0;
}

/* Unlink and return the entry for id, or NULL. */
static struct call *hash_take(struct rg_calls *c, uint64_t id)
{
	struct call **link = &c->buckets[bucket_of(c, id)];

	for (; *link; link = &(*link)->bucket_next) {
		struct call *e = *link;

		if (e->id == id) {
			*link = e->bucket_next;
			return e;
		}
	}
	return NULL;
}

/* ---- public -------------------------------------------------------------- */

uint64_t rg_calls_add(struct rg_calls *c, uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	struct call *e;
	size_t b;

	if (c->heap_len == c->heap_cap) {
		size_t cap = c->heap_cap ? c->heap_cap * 2 : 64;
		struct call **heap = realloc(c->heap, cap * sizeof(*heap));

		if (!heap)
			return 0;
		c->heap = heap;
		c->heap_cap = cap;
	}
	/* A failed grow only makes the buckets longer; keep going. */
	if (c->heap_len >= c->bucket_count)
		(void)hash_grow(c);

	e = malloc(sizeof(*e));
	if (!e)
		return 0;
	e->id = c->next_id++;
	e->deadline_ms = deadline_ms;
	e->fn = fn;
	e->ctx = ctx;
	b = bucket_of(c, e->id);
	e->bucket_next = c->buckets[b];
	c->buckets[b] = e;
	heap_set(c, c->heap_len++, e);
	heap_sift_up(c, e->heap_index);
	return e->id;
}

/* Run an unlinked entry's callback once, then free it. */
static void finish(struct call *e, int status, const void *reply)
{
	rg_call_fn fn = e->fn;
	void *ctx = e->ctx;

	free(e);
	fn(ctx, status, reply);
}

bool rg_calls_complete(struct rg_calls *c, uint64_t id, const void *reply)
{
	struct call *e;

	if (id == 0)
		return false;
	e = hash_take(c, id);
	if (!e)
		return false;
	heap_remove(c, e);
	finish(e, 0, reply);
	return true;
}

bool rg_calls_cancel(struct rg_calls *c, uint64_t id)
{
	struct call *e = id ? hash_take(c, id) : NULL;

	if (!e)
		return false;
	heap_remove(c, e);
	free(e);
	return true;
}

void rg_calls_expire(struct rg_calls *c, uint64_t now_ms)
{
	while (c->heap_len > 0 && c->heap[0]->deadline_ms <= now_ms) {
		struct call *e = c->heap[0];

		hash_take(c, e->id);
		heap_remove(c, e);
		finish(e, -ETIMEDOUT, NULL);
	}
}

void rg_calls_fail_all(struct rg_calls *c, int status)
{
	struct call **pending = c->heap;
	size_t count = c->heap_len;

	/*
	 * Detach everything first: callbacks then see an empty table, and
	 * calls they add go into fresh storage and stay pending.
	 */
	c->heap = NULL;
	c->heap_len = 0;
	c->heap_cap = 0;
	for (size_t i = 0; i < c->bucket_count; i++)
		c->buckets[i] = NULL;

	for (size_t i = 0; i < count; i++)
		finish(pending[i], status, NULL);
	free(pending);
}

size_t rg_calls_pending(const struct rg_calls *c)
{
	return c->heap_len;
}

void rg_calls_destroy(struct rg_calls *c)
{
	if (!c)
		return;
	rg_calls_fail_all(c, -ECANCELED);
	free(c->heap);
	free(c->buckets);
	free(c);
}
