/*
 * Per-address admission for servers: how many live sessions one peer IP
 * may hold, and how many new connections per second it may open (a token
 * bucket whose burst equals its rate). Owned by the server's accepting
 * loop, so it needs no lock; sessions closing on other loops post their
 * release to it. Entries for addresses with no live session and a full
 * bucket are swept periodically, so the table tracks the addresses that
 * matter now, not every address ever seen.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct net__addr_entry {
	struct net__addr_entry *next;
	struct net__addr addr;        /* port 0: the key is the host */
	unsigned live;
	double tokens;
	uint64_t refill_ms;
};

static size_t hash(const struct net__addr *a)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < sizeof(a->bytes); i++)
		h = (h ^ a->bytes[i]) * 1099511628211ull;
	return (size_t)(h ^ a->family);
}

static bool same_host(const struct net__addr *a, const struct net__addr *b)
{
	return a->family == b->family && memcmp(a->bytes, b->bytes, sizeof(a->bytes)) == 0;
}

static struct net__addr_entry **slot_of(struct net__addr_limits *l, const struct net__addr *a)
{
	struct net__addr_entry **p = &l->buckets[hash(a) & (l->bucket_count - 1)];

	while (*p && !same_host(&(*p)->addr, a))
		p = &(*p)->next;
	return p;
}

static void grow(struct net__addr_limits *l)
{
	size_t count = l->bucket_count * 2;
	struct net__addr_entry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < l->bucket_count; i++) {
		while (l->buckets[i]) {
			struct net__addr_entry *e = l->buckets[i];
			size_t b = hash(&e->addr) & (count - 1);

			l->buckets[i] = e->next;
			e->next = buckets[b];
			buckets[b] = e;
		}
	}
	free(l->buckets);
	l->buckets = buckets;
	l->bucket_count = count;
}

int net__addr_limits_init(struct net__addr_limits *l, unsigned max_live, unsigned rate)
{
	memset(l, 0, sizeof(*l));
	l->max_live = max_live;
	l->rate = rate;
	l->bucket_count = 64;
	l->buckets = calloc(l->bucket_count, sizeof(*l->buckets));
	return l->buckets ? 0 : -ENOMEM;
}

static void refill(const struct net__addr_limits *l, struct net__addr_entry *e, uint64_t now_ms)
{
	e->tokens += (double)(now_ms - e->refill_ms) * l->rate / 1000.0;
	if (e->tokens > l->rate)
		e->tokens = l->rate;
	e->refill_ms = now_ms;
}

bool net__addr_admit(struct net__addr_limits *l, const struct net__addr *a, uint64_t now_ms)
{
	struct net__addr_entry **p = slot_of(l, a);
	struct net__addr_entry *e = *p;

	if (!e) {
		/* Out of memory under a flood: refuse rather than admit blind. */
		e = calloc(1, sizeof(*e));
		if (!e)
			return false;
		e->addr = *a;
		e->addr.port = 0;
		e->tokens = l->rate;
		e->refill_ms = now_ms;
		*p = e;
		if (++l->entry_count > l->bucket_count)
			grow(l);
	}
	if (l->rate) {
		refill(l, e, now_ms);
		if (e->tokens < 1.0)
			return false;
	}
	if (l->max_live && e->live >= l->max_live)
		return false;
	if (l->rate)
		e->tokens -= 1.0;
	e->live++;
	return true;
}

void net__addr_release(struct net__addr_limits *l, const struct net__addr *a)
{
	struct net__addr_entry *e = *slot_of(l, a);

	if (e && e->live)
		e->live--;
}

void net__addr_sweep(struct net__addr_limits *l, uint64_t now_ms)
{
	for (size_t i = 0; i < l->bucket_count; i++) {
		struct net__addr_entry **p = &l->buckets[i];

		while (*p) {
			struct net__addr_entry *e = *p;

			if (l->rate)
				refill(l, e, now_ms);
			if (e->live == 0 && (!l->rate || e->tokens >= l->rate)) {
				*p = e->next;
				free(e);
				l->entry_count--;
			} else {
				p = &e->next;
			}
		}
	}
}

void net__addr_limits_free(struct net__addr_limits *l)
{
	for (size_t i = 0; l->buckets && i < l->bucket_count; i++) {
		while (l->buckets[i]) {
			struct net__addr_entry *e = l->buckets[i];

			l->buckets[i] = e->next;
			free(e);
		}
	}
	free(l->buckets);
	l->buckets = NULL;
}
