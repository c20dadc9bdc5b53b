/*
 * interest.h: area of interest - which entities each player sees - kept
 * through a uniform spatial grid, not a scan of the zone.
 *
 * An entity is one online player as the others see it: (zone, x, y) and a
 * move counter. It sits in one grid cell: cells are squares of side
 * `radius`, keyed by (zone, floor(x / radius), floor(y / radius)) in a hash
 * map, so an empty part of the world costs nothing and the entities within
 * `radius` of a point are all in the 3x3 cells around it.
 *
 * Each entity is also an observer with a view: the set of other entities
 * it currently sees, each with the move counter it was last told about.
 * gs_aoi_view_refresh computes, once per tick, what changed:
 *   - an entity enters the view when it is in the same zone within
 *     `radius`;
 *   - it leaves only beyond `radius + hysteresis` (or on changing zone or
 *     leaving the game), so one walking along the edge does not flicker;
 *   - it "moved" when its move counter differs from the one last sent: a
 *     mover that moved three times since then is reported once, at its
 *     newest position, and one not reported this time (budget) stays
 *     pending, coalesced, for the next refresh.
 *
 * Life of an entity: gs_aoi_entity_add (live, in the grid) -> gs_aoi_entity_remove
 * (gone: out of the grid; views that hold it report it as left at their
 * next refresh) -> freed when the last view has let go (reference count:
 * one for being live, one per view holding it). Game thread only.
 */
#ifndef GAMESRV_INTEREST_H
#define GAMESRV_INTEREST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hmap.h"

struct gs_aoi_cell;

/* A chat line waiting in observers' queues; shared, reference-counted. */
struct gs_aoi_chat {
	unsigned refs;
	uint64_t player_id;
	char *name;
	char *text;
};

/* One entity in an observer's view. */
struct gs_aoi_view_entry {
	struct gs_aoi_entity *e;      /* holds a reference                        */
	uint32_t sent_seq;         /* e->move_seq the observer was told about  */
};

struct gs_aoi_entity {
	uint64_t id;               /* the player id                            */
	void *owner;               /* the player; NULL once gone               */
	uint32_t zone;
	float x, y;
	uint32_t move_seq;         /* bumped by every gs_aoi_entity_move          */
	unsigned refs;
	bool gone;
	uint32_t mark;             /* scratch of gs_aoi_view_refresh              */
	struct gs_aoi_cell *cell;     /* live: the cell it is listed in           */
	struct gs_aoi_entity *cell_prev, *cell_next;
	struct gs_aoi_entity *all_prev, *all_next; /* every allocated entity      */
	/* As an observer: */
	struct gs_aoi_view_entry *view;
	size_t view_count, view_cap;
	size_t cursor;             /* where the next "moved" scan starts       */
	struct gs_aoi_chat **chat;    /* lines for this observer, oldest first    */
	size_t chat_count, chat_cap;
};

/* What one refresh found; the arrays are the aoi's scratch, valid until
 * the next refresh. */
struct gs_aoi_delta {
	const uint64_t *left;      /* ids gone from the view (already removed) */
	size_t left_count;
	struct gs_aoi_entity *const *entered; /* candidates, not yet in the view  */
	size_t entered_count;
	const size_t *moved;       /* indexes into the observer's view         */
	size_t moved_count;
};

struct gs_aoi {
	float radius;              /* enter within this distance               */
	float leave_radius;        /* leave beyond this one (radius+hysteresis)*/
	struct gs_hmap cells;         /* cell key -> struct gs_aoi_cell              */
	struct gs_aoi_entity *all;
	uint32_t stamp;
	uint64_t *left_buf;
	size_t left_cap;
	struct gs_aoi_entity **entered_buf;
	size_t entered_cap;
	size_t *moved_buf;
	size_t moved_cap;
};

/* Set up an empty grid. radius > 0 and finite, hysteresis >= 0. Returns 0
 * or -EINVAL. */
int gs_aoi_init(struct gs_aoi *a, float radius, float hysteresis);

/* Free every cell, entity, view and queued chat line. */
void gs_aoi_fini(struct gs_aoi *a);

/* A new live entity at (zone, x, y) with an empty view, or NULL (ENOMEM). */
struct gs_aoi_entity *gs_aoi_entity_add(struct gs_aoi *a, uint64_t id, void *owner, uint32_t zone,
				  float x, float y);

/* Move e (to another zone too). Returns 0 or -ENOMEM (a new cell could not
 * be made: e stays where it was, its move counter unchanged). */
int gs_aoi_entity_move(struct gs_aoi *a, struct gs_aoi_entity *e, uint32_t zone, float x, float y);

/* e leaves the game: out of the grid, its own view and chat queue
 * released; the views holding it report it at their next refresh. e may be
 * freed on return. */
void gs_aoi_entity_remove(struct gs_aoi *a, struct gs_aoi_entity *e);

/*
 * Compute o's changes since its last refresh (see the top of the file):
 * left entries are removed from the view now; entered candidates are
 * only listed - the caller adds those it sends with gs_aoi_view_add - and
 * moved entries are listed starting at o->cursor (round robin, so a budget
 * that cuts the list starves nobody) - the caller marks those it sends
 * with gs_aoi_view_sent. Returns 0 or -ENOMEM (the scratch could not grow:
 * nothing changed).
 */
int gs_aoi_view_refresh(struct gs_aoi *a, struct gs_aoi_entity *o, struct gs_aoi_delta *out /* OUT */);

/* Mark o's view entry idx (from a delta's moved list) as sent at the
 * entity's current position. */
void gs_aoi_view_sent(struct gs_aoi_entity *o, size_t idx);

/* Set where o's next moved scan starts (an index into its view). */
void gs_aoi_view_set_cursor(struct gs_aoi_entity *o, size_t idx);

/* Put e (a live entity, not yet in it) into o's view as sent at its
 * current position. Returns 0 or -ENOMEM. Invalidates view indexes only by
 * appending. */
int gs_aoi_view_add(struct gs_aoi_entity *o, struct gs_aoi_entity *e);

/* Empty o's view and chat queue without reporting anything (a new client
 * took the player over and is told its view afresh). */
void gs_aoi_view_reset(struct gs_aoi *a, struct gs_aoi_entity *o);

/* True when e is in o's view. O(view). */
bool gs_aoi_view_has(const struct gs_aoi_entity *o, const struct gs_aoi_entity *e);

/*
 * Queue a chat line said by `speaker` for every live entity in its view.
 * Returns the number of recipients, or -ENOMEM (then nobody got it).
 */
int gs_aoi_chat_post(struct gs_aoi_entity *speaker, const char *name, const char *text);

/* Drop the oldest n of o's queued chat lines (after they were sent). */
void gs_aoi_chat_consume(struct gs_aoi_entity *o, size_t n);

/* Drop all of o's queued chat lines. */
void gs_aoi_chat_clear(struct gs_aoi_entity *o);

#endif /* GAMESRV_INTEREST_H */
