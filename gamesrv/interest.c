/*
 * interest.c: the spatial grid and the views (see interest.h for the
 * rules and the entity life cycle).
 *
 * Cost of a refresh: one pass over the observer's view (leave test and
 * moved scan) plus one over the 3x3 cells around it (enter test), so a
 * tick costs what the players see, not the square of the zone's
 * population. "Already in the view" is tested with a stamp written into
 * each viewed entity (mark), not a search.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "interest.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "array.h"

/* The hash key of a cell; zeroed before filling, since hmap hashes bytes. */
struct cell_key {
	uint32_t zone;
	uint32_t pad;
	int64_t cx, cy;
};

struct gs_aoi_cell {
	struct cell_key key;
	struct gs_aoi_entity *members;
	size_t count;
};

static struct cell_key key_of(const struct gs_aoi *a, uint32_t zone, float x, float y)
{
	struct cell_key k;

	memset(&k, 0, sizeof(k));
	k.zone = zone;
	k.cx = (int64_t)floor((double)x / a->radius);
	k.cy = (int64_t)floor((double)y / a->radius);
	return k;
}

static bool within(const struct gs_aoi_entity *o, const struct gs_aoi_entity *e, float r)
{
	double dx = (double)e->x - o->x, dy = (double)e->y - o->y;

	return dx * dx + dy * dy <= (double)r * r;
}

int gs_aoi_init(struct gs_aoi *a, float radius, float hysteresis)
{
	memset(a, 0, sizeof(*a));
	if (!(radius > 0) || !isfinite(radius) || !(hysteresis >= 0) || !isfinite(hysteresis))
		return -EINVAL;
	a->radius = radius;
	a->leave_radius = radius + hysteresis;
	gs_hmap_init(&a->cells);
	return 0;
}

static void chat_unref(struct gs_aoi_chat *c)
{
	if (--c->refs > 0)
		return;
	free(c->name);
	free(c->text);
	free(c);
}

static void entity_unref(struct gs_aoi *a, struct gs_aoi_entity *e)
{
	if (--e->refs > 0)
		return;
	if (e->all_prev)
		e->all_prev->all_next = e->all_next;
	else
		a->all = e->all_next;
	if (e->all_next)
		e->all_next->all_prev = e->all_prev;
	free(e->view);
	free(e->chat);
	free(e);
}

/* Take e out of its cell, freeing the cell when it empties. */
static void cell_unlink(struct gs_aoi *a, struct gs_aoi_entity *e)
{
	struct gs_aoi_cell *c = e->cell;

	if (e->cell_prev)
		e->cell_prev->cell_next = e->cell_next;
	else
		c->members = e->cell_next;
	if (e->cell_next)
		e->cell_next->cell_prev = e->cell_prev;
	e->cell_prev = e->cell_next = NULL;
	e->cell = NULL;
	if (--c->count == 0) {
		gs_hmap_remove(&a->cells, &c->key, sizeof(c->key));
		free(c);
	}
}

static void cell_link(struct gs_aoi_cell *c, struct gs_aoi_entity *e)
{
	e->cell = c;
	e->cell_prev = NULL;
	e->cell_next = c->members;
	if (c->members)
		c->members->cell_prev = e;
	c->members = e;
	c->count++;
}

/* The cell under key, made if missing. NULL on ENOMEM. */
static struct gs_aoi_cell *cell_get(struct gs_aoi *a, const struct cell_key *key)
{
	struct gs_aoi_cell *c = gs_hmap_get(&a->cells, key, sizeof(*key));

	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->key = *key;
	if (gs_hmap_put(&a->cells, &c->key, sizeof(c->key), c) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void gs_aoi_fini(struct gs_aoi *a)
{
	struct gs_aoi_entity *e = a->all;

	/* Every entity is on the list whatever its count: free them all. */
	while (e) {
		struct gs_aoi_entity *next = e->all_next;

		gs_aoi_chat_clear(e);
		if (e->cell)
			cell_unlink(a, e);
		free(e->view);
		free(e->chat);
		free(e);
		e = next;
	}
	gs_hmap_fini(&a->cells);
	free(a->left_buf);
	free(a->entered_buf);
	free(a->moved_buf);
	memset(a, 0, sizeof(*a));
}

struct gs_aoi_entity *gs_aoi_entity_add(struct gs_aoi *a, uint64_t id, void *owner, uint32_t zone,
				  float x, float y)
{
	struct cell_key key = key_of(a, zone, x, y);
	struct gs_aoi_entity *e = calloc(1, sizeof(*e));
	struct gs_aoi_cell *c;

	if (!e)
		return NULL;
	c = cell_get(a, &key);
	if (!c) {
		free(e);
		return NULL;
	}
	e->id = id;
	e->owner = owner;
	e->zone = zone;
	e->x = x;
	e->y = y;
	e->refs = 1;
	cell_link(c, e);
	e->all_next = a->all;
	if (a->all)
		a->all->all_prev = e;
	a->all = e;
	return e;
}

int gs_aoi_entity_move(struct gs_aoi *a, struct gs_aoi_entity *e, uint32_t zone, float x, float y)
{
	struct cell_key key = key_of(a, zone, x, y);

	if (memcmp(&key, &e->cell->key, sizeof(key)) != 0) {
		struct gs_aoi_cell *c = cell_get(a, &key);

		if (!c)
			return -ENOMEM;
		cell_unlink(a, e);
		cell_link(c, e);
	}
	e->zone = zone;
	e->x = x;
	e->y = y;
	e->move_seq++;
	return 0;
}

/* Let go of every view entry of o (references dropped, freeing gone
 * entities whose last holder o was). */
static void view_release(struct gs_aoi *a, struct gs_aoi_entity *o)
{
	for (size_t i = 0; i < o->view_count; i++)
		entity_unref(a, o->view[i].e);
	o->view_count = 0;
	o->cursor = 0;
}

void gs_aoi_entity_remove(struct gs_aoi *a, struct gs_aoi_entity *e)
{
	cell_unlink(a, e);
	e->gone = true;
	e->owner = NULL;
	view_release(a, e);
	gs_aoi_chat_clear(e);
	entity_unref(a, e);
}

void gs_aoi_view_reset(struct gs_aoi *a, struct gs_aoi_entity *o)
{
	view_release(a, o);
	gs_aoi_chat_clear(o);
}

int gs_aoi_view_refresh(struct gs_aoi *a, struct gs_aoi_entity *o, struct gs_aoi_delta *out)
{
	struct cell_key key = key_of(a, o->zone, o->x, o->y);
	size_t nl = 0, ne = 0, nm = 0;

	memset(out, 0, sizeof(*out));
	/* Room for the worst case first, so that a failure changes nothing. */
	if (array_grow((void **)&a->left_buf, &a->left_cap, o->view_count, sizeof(uint64_t)) < 0 ||
	    array_grow((void **)&a->moved_buf, &a->moved_cap, o->view_count, sizeof(size_t)) < 0)
		return -ENOMEM;
	if (++a->stamp == 0) { /* wrapped: no entity may carry the new stamp */
		for (struct gs_aoi_entity *e = a->all; e; e = e->all_next)
			e->mark = 0;
		a->stamp = 1;
	}

	/* Leave test: gone, another zone, or beyond the leave radius. */
	for (size_t i = 0; i < o->view_count;) {
		struct gs_aoi_entity *e = o->view[i].e;

		if (e->gone || e->zone != o->zone || !within(o, e, a->leave_radius)) {
			a->left_buf[nl++] = e->id;
			o->view[i] = o->view[--o->view_count];
			entity_unref(a, e);
			continue;
		}
		e->mark = a->stamp;
		i++;
	}
	/* Moved scan, round robin from the cursor. */
	if (o->cursor >= o->view_count)
		o->cursor = 0;
	for (size_t k = 0, i = o->cursor; k < o->view_count; k++) {
		if (o->view[i].sent_seq != o->view[i].e->move_seq)
			a->moved_buf[nm++] = i;
		if (++i == o->view_count)
			i = 0;
	}
	/* Enter test over the 3x3 cells around o. */
	for (int64_t dx = -1; dx <= 1; dx++) {
		for (int64_t dy = -1; dy <= 1; dy++) {
			struct cell_key k = key;
			struct gs_aoi_cell *c;

			k.cx += dx;
			k.cy += dy;
			c = gs_hmap_get(&a->cells, &k, sizeof(k));
			if (!c)
				continue;
			for (struct gs_aoi_entity *e = c->members; e; e = e->cell_next) {
				if (e == o || e->mark == a->stamp || !within(o, e, a->radius))
					continue;
				if (array_grow((void **)&a->entered_buf, &a->entered_cap, ne + 1,
					 sizeof(*a->entered_buf)) < 0)
					goto out; /* report what fits; the rest next time */
				a->entered_buf[ne++] = e;
			}
		}
	}
out:
	out->left = a->left_buf;
	out->left_count = nl;
	out->entered = a->entered_buf;
	out->entered_count = ne;
	out->moved = a->moved_buf;
	out->moved_count = nm;
	return 0;
}

void gs_aoi_view_sent(struct gs_aoi_entity *o, size_t idx)
{
	o->view[idx].sent_seq = o->view[idx].e->move_seq;
}

void gs_aoi_view_set_cursor(struct gs_aoi_entity *o, size_t idx)
{
	o->cursor = idx;
}

int gs_aoi_view_add(struct gs_aoi_entity *o, struct gs_aoi_entity *e)
{
	if (array_grow((void **)&o->view, &o->view_cap, o->view_count + 1, sizeof(*o->view)) < 0)
		return -ENOMEM;
	o->view[o->view_count].e = e;
	o->view[o->view_count].sent_seq = e->move_seq;
	o->view_count++;
	e->refs++;
	return 0;
}

bool gs_aoi_view_has(const struct gs_aoi_entity *o, const struct gs_aoi_entity *e)
{
	for (size_t i = 0; i < o->view_count; i++)
		if (o->view[i].e == e)
			return true;
	return false;
}

int gs_aoi_chat_post(struct gs_aoi_entity *speaker, const char *name, const char *text)
{
	struct gs_aoi_chat *line;
	int n = 0;

	for (size_t i = 0; i < speaker->view_count; i++) {
		struct gs_aoi_entity *r = speaker->view[i].e;

		if (!r->gone && array_grow((void **)&r->chat, &r->chat_cap, r->chat_count + 1,
				     sizeof(*r->chat)) < 0)
			return -ENOMEM;
	}
	line = calloc(1, sizeof(*line));
	if (!line)
		return -ENOMEM;
	line->name = strdup(name);
	line->text = strdup(text);
	if (!line->name || !line->text) {
		free(line->name);
		free(line->text);
		free(line);
		return -ENOMEM;
	}
	line->player_id = speaker->id;
	line->refs = 1; /* ours, until every recipient holds one */
	for (size_t i = 0; i < speaker->view_count; i++) {
		struct gs_aoi_entity *r = speaker->view[i].e;

		if (r->gone)
			continue;
		r->chat[r->chat_count++] = line;
		line->refs++;
		n++;
	}
	chat_unref(line);
	return n;
}

void gs_aoi_chat_consume(struct gs_aoi_entity *o, size_t n)
{
	if (n == 0)
		return; /* o->chat may be NULL: no memmove from it */
	for (size_t i = 0; i < n; i++)
		chat_unref(o->chat[i]);
	memmove(o->chat, o->chat + n, (o->chat_count - n) * sizeof(*o->chat));
	o->chat_count -= n;
}

void gs_aoi_chat_clear(struct gs_aoi_entity *o)
{
	gs_aoi_chat_consume(o, o->chat_count);
}
