/*
 * hmap.c: chained hash map (see hmap.h). FNV-1a hashes the key bytes; the
 * table doubles when the load passes 1, so chains stay short.
 */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct gs_hmap_entry {
	struct gs_hmap_entry *next;
	uint64_t hash;
	const void *key;
	size_t len;
	void *value;
};

static uint64_t hash_bytes(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void gs_hmap_init(struct gs_hmap *m)
{
	m->buckets = NULL;
	m->bucket_count = 0;
	m->count = 0;
}

void gs_hmap_fini(struct gs_hmap *m)
{
	for (size_t i = 0; i < m->bucket_count; i++) {
		struct gs_hmap_entry *e = m->buckets[i];

		while (e) {
			struct gs_hmap_entry *next = e->next;

			free(e);
			e = next;
		}
	}
	free(m->buckets);
	gs_hmap_init(m);
}

/* The link that points at key's entry (or at the NULL ending its chain). */
static struct gs_hmap_entry **find_link(const struct gs_hmap *m, uint64_t hash,
				     const void *key, size_t len)
{
	struct gs_hmap_entry **link = &m->buckets[hash & (m->bucket_count - 1)];

	for (; *link; link = &(*link)->next) {
		const struct gs_hmap_entry *e = *link;

		if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0)
			break;
	}
	return link;
}

void *gs_hmap_get(const struct gs_hmap *m, const void *key, size_t len)
{
	struct gs_hmap_entry *e;

	if (m->count == 0)
		return NULL;
	e = *find_link(m, hash_bytes(key, len), key, len);
	return e ? e->value : NULL;
}

static int grow(struct gs_hmap *m)
{
	size_t count = m->bucket_count ? m->bucket_count * 2 : 16;
	struct gs_hmap_entry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < m->bucket_count; i++) {
		struct gs_hmap_entry *e = m->buckets[i];

		while (e) {
			struct gs_hmap_entry *next = e->next;
			size_t b = e->hash & (count - 1);

			e->next = buckets[b];
			buckets[b] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = buckets;
	m->bucket_count = count;
	return 0;
}

int gs_hmap_put(struct gs_hmap *m, const void *key, size_t len, void *value)
{
	struct gs_hmap_entry *e;
	size_t b;

	if (m->count >= m->bucket_count && grow(m) < 0 && m->bucket_count == 0)
		return -ENOMEM; /* a failed later grow only lengthens chains */
	e = malloc(sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->hash = hash_bytes(key, len);
	e->key = key;
	e->len = len;
	e->value = value;
	b = e->hash & (m->bucket_count - 1);
	e->next = m->buckets[b];
	m->buckets[b] = e;
	m->count++;
	return 0;
}

void *gs_hmap_remove(struct gs_hmap *m, const void *key, size_t len)
{
	struct gs_hmap_entry **link;
	struct gs_hmap_entry *e;
	void *value;

	if (m->count == 0)
		return NULL;
	link = find_link(m, hash_bytes(key, len), key, len);
	e = *link;
	if (!e)
		return NULL;
	*link = e->next;
	value = e->value;
	free(e);
	m->count--;
	return value;
}
