/*
 * hmap.h: a small chained hash map from byte-string keys to pointers, for
 * the game thread's indexes (clients by (link, session), players by name).
 *
 * The map does not copy keys: each entry keeps the key pointer it was
 * given, which must point into the value object and stay unchanged while
 * the entry exists (the usual intrusive-index contract). Not thread-safe:
 * one owner thread.
 */
#ifndef GAMESRV_HMAP_H
#define GAMESRV_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct gs_hmap_entry;

struct gs_hmap {
	struct gs_hmap_entry **buckets;
	size_t bucket_count; /* power of two, or 0 before the first insert */
	size_t count;
};

/* An empty map; allocates nothing until the first insert. */
void gs_hmap_init(struct gs_hmap *m);

/* Free the map's own memory (not the values). */
void gs_hmap_fini(struct gs_hmap *m);

/* The value stored under key[0..len), or NULL. */
void *gs_hmap_get(const struct gs_hmap *m, const void *key, size_t len);

/* Store value under key (not already present). Returns 0 or -ENOMEM. */
int gs_hmap_put(struct gs_hmap *m, const void *key, size_t len, void *value);

/* Remove the entry under key; returns its value, or NULL if absent. */
void *gs_hmap_remove(struct gs_hmap *m, const void *key, size_t len);

#endif /* GAMESRV_HMAP_H */
