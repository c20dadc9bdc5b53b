/*
 * test_interest.c: unit tests of the area-of-interest grid (interest.h):
 * entering and leaving a view with hysteresis, at cell borders (negative
 * coordinates included), across zones, the newest position of a mover
 * reported once, players leaving the game, and chat delivery. Each case
 * is one CTest test: `test_gamesrv_interest <case>`. Run under ASan, the
 * cases also check that every entity and chat line is freed.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "interest.h"

#define R 10.0f /* view radius = cell size */
#define H 2.0f  /* hysteresis: leave beyond 12 */

/* The delta of one refresh, with the entered candidates added to the view
 * and the moved entries marked sent (what bundle.c does without a budget). */
struct seen {
	size_t entered, left, moved;
	uint64_t entered_id, left_id, moved_id;
	float moved_x;
};

static struct seen refresh(struct gs_aoi *a, struct gs_aoi_entity *o)
{
	struct gs_aoi_delta d;
	struct seen s;

	memset(&s, 0, sizeof(s));
	CHECK(gs_aoi_view_refresh(a, o, &d) == 0);
	s.left = d.left_count;
	if (d.left_count)
		s.left_id = d.left[0];
	s.moved = d.moved_count;
	if (d.moved_count) {
		s.moved_id = o->view[d.moved[0]].e->id;
		s.moved_x = o->view[d.moved[0]].e->x;
	}
	for (size_t i = 0; i < d.moved_count; i++)
		gs_aoi_view_sent(o, d.moved[i]);
	s.entered = d.entered_count;
	if (d.entered_count)
		s.entered_id = d.entered[0]->id;
	for (size_t i = 0; i < d.entered_count; i++)
		CHECK(gs_aoi_view_add(o, d.entered[i]) == 0);
	return s;
}

static void enter_leave_hysteresis(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *o, *e;
	struct seen s;

	CHECK(gs_aoi_init(&a, R, H) == 0);
	o = gs_aoi_entity_add(&a, 1, NULL, 1, 0, 0);
	e = gs_aoi_entity_add(&a, 2, NULL, 1, 10.5f, 0); /* beyond R */
	CHECK(o && e);
	s = refresh(&a, o);
	CHECK(s.entered == 0 && s.left == 0);
	CHECK(gs_aoi_entity_move(&a, e, 1, 10, 0) == 0); /* on the edge: inside */
	s = refresh(&a, o);
	CHECK(s.entered == 1 && s.entered_id == 2 && s.moved == 0);
	CHECK(gs_aoi_view_has(o, e));
	/* Out past R but within R + H: stays, reported as moved. */
	CHECK(gs_aoi_entity_move(&a, e, 1, 11.5f, 0) == 0);
	s = refresh(&a, o);
	CHECK(s.left == 0 && s.entered == 0 && s.moved == 1 && s.moved_x == 11.5f);
	CHECK(gs_aoi_entity_move(&a, e, 1, 12, 0) == 0); /* exactly R + H: stays */
	s = refresh(&a, o);
	CHECK(s.left == 0 && s.moved == 1);
	/* Walking the band between R and R + H flickers nothing. */
	for (int i = 0; i < 5; i++) {
		CHECK(gs_aoi_entity_move(&a, e, 1, i % 2 ? 10.2f : 11.8f, 0) == 0);
		s = refresh(&a, o);
		CHECK(s.left == 0 && s.entered == 0 && s.moved == 1);
	}
	CHECK(gs_aoi_entity_move(&a, e, 1, 12.1f, 0) == 0);
	s = refresh(&a, o);
	CHECK(s.left == 1 && s.left_id == 2 && !gs_aoi_view_has(o, e));
	/* Coming back inside R + H but not R: still unseen. */
	CHECK(gs_aoi_entity_move(&a, e, 1, 11, 0) == 0);
	s = refresh(&a, o);
	CHECK(s.entered == 0 && s.left == 0);
	CHECK(gs_aoi_entity_move(&a, e, 1, 9, 0) == 0);
	s = refresh(&a, o);
	CHECK(s.entered == 1);
	/* Nothing changed: nothing reported. */
	s = refresh(&a, o);
	CHECK(s.entered == 0 && s.left == 0 && s.moved == 0);
	gs_aoi_fini(&a);
}

static void cell_borders(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *o, *e, *far;
	struct seen s;

	CHECK(gs_aoi_init(&a, R, H) == 0);
	/* Diagonal neighbours across a corner of four cells. */
	o = gs_aoi_entity_add(&a, 1, NULL, 1, 9.99f, 9.99f);   /* cell (0, 0)   */
	e = gs_aoi_entity_add(&a, 2, NULL, 1, 10.01f, 10.01f); /* cell (1, 1)   */
	far = gs_aoi_entity_add(&a, 3, NULL, 1, 20.5f, 9.99f); /* (2, 0): 10.51 */
	CHECK(o && e && far);
	s = refresh(&a, o);
	CHECK(s.entered == 1 && s.entered_id == 2);
	/* Around the origin, where floor() of negatives matters. */
	CHECK(gs_aoi_entity_move(&a, o, 1, -0.01f, -0.01f) == 0); /* cell (-1, -1) */
	CHECK(gs_aoi_entity_move(&a, e, 1, 0.01f, 0.01f) == 0);   /* cell (0, 0)   */
	s = refresh(&a, o);
	CHECK(s.entered == 0 && s.left == 0 && s.moved == 1 && s.moved_id == 2);
	CHECK(gs_aoi_entity_move(&a, far, 1, -9.9f, -1) == 0);    /* cell (-1, -1) */
	s = refresh(&a, o);
	CHECK(s.entered == 1 && s.entered_id == 3);
	/* e crosses cells while in view, three times in one tick: one moved
	 * entry, at the newest position. */
	CHECK(gs_aoi_entity_move(&a, e, 1, 5, 0.5f) == 0);
	CHECK(gs_aoi_entity_move(&a, e, 1, -5, 0.5f) == 0);
	CHECK(gs_aoi_entity_move(&a, e, 1, 8, -3) == 0);
	s = refresh(&a, o);
	CHECK(s.moved == 1 && s.moved_id == 2 && s.moved_x == 8 && s.left == 0);
	/* The observer moves away across several cells: both leave at once. */
	CHECK(gs_aoi_entity_move(&a, o, 1, 100, 100) == 0);
	s = refresh(&a, o);
	CHECK(s.left == 2 && s.entered == 0 && o->view_count == 0);
	gs_aoi_fini(&a);
}

static void zones_apart(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *o, *e;
	struct seen s;

	CHECK(gs_aoi_init(&a, R, H) == 0);
	o = gs_aoi_entity_add(&a, 1, NULL, 1, 0, 0);
	e = gs_aoi_entity_add(&a, 2, NULL, 2, 0, 0); /* same spot, other zone */
	CHECK(o && e);
	s = refresh(&a, o);
	CHECK(s.entered == 0);
	CHECK(gs_aoi_entity_move(&a, e, 1, 1, 1) == 0);
	s = refresh(&a, o);
	CHECK(s.entered == 1);
	CHECK(gs_aoi_entity_move(&a, e, 2, 1, 1) == 0); /* travels away */
	s = refresh(&a, o);
	CHECK(s.left == 1 && s.left_id == 2);
	CHECK(gs_aoi_entity_move(&a, o, 2, 0, 0) == 0); /* follows */
	s = refresh(&a, o);
	CHECK(s.entered == 1 && s.entered_id == 2);
	gs_aoi_fini(&a);
}

static void leave_game(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *o1, *o2, *e;
	struct seen s;

	CHECK(gs_aoi_init(&a, R, H) == 0);
	o1 = gs_aoi_entity_add(&a, 1, NULL, 1, 0, 0);
	o2 = gs_aoi_entity_add(&a, 2, NULL, 1, 1, 0);
	e = gs_aoi_entity_add(&a, 3, NULL, 1, 0, 1);
	CHECK(o1 && o2 && e);
	CHECK(refresh(&a, o1).entered == 2);
	CHECK(refresh(&a, o2).entered == 2);
	CHECK(refresh(&a, e).entered == 2);
	gs_aoi_entity_remove(&a, e); /* still held by two views */
	s = refresh(&a, o1);
	CHECK(s.left == 1 && s.left_id == 3);
	s = refresh(&a, o2); /* the last holder: e is freed (ASan checks) */
	CHECK(s.left == 1 && s.left_id == 3);
	/* A new entity with the same id (a new login) enters afresh. */
	e = gs_aoi_entity_add(&a, 3, NULL, 1, 0, 1);
	CHECK(e);
	s = refresh(&a, o1);
	CHECK(s.entered == 1 && s.entered_id == 3);
	gs_aoi_fini(&a); /* frees entities still held by views too */
}

static void chat_to_view(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *speaker, *near, *away;

	CHECK(gs_aoi_init(&a, R, H) == 0);
	speaker = gs_aoi_entity_add(&a, 1, NULL, 1, 0, 0);
	near = gs_aoi_entity_add(&a, 2, NULL, 1, 3, 4);
	away = gs_aoi_entity_add(&a, 3, NULL, 1, 50, 50);
	CHECK(speaker && near && away);
	CHECK(refresh(&a, speaker).entered == 1);
	CHECK(gs_aoi_chat_post(speaker, "alice", "hello") == 1);
	CHECK(gs_aoi_chat_post(speaker, "alice", "again") == 1);
	CHECK(near->chat_count == 2 && away->chat_count == 0);
	CHECK(strcmp(near->chat[0]->text, "hello") == 0 && near->chat[0]->player_id == 1);
	CHECK(strcmp(near->chat[1]->text, "again") == 0);
	gs_aoi_chat_clear(near);
	CHECK(near->chat_count == 0);
	CHECK(gs_aoi_chat_post(speaker, "alice", "left in a queue") == 1);
	gs_aoi_entity_remove(&a, near); /* its queue is released */
	CHECK(gs_aoi_chat_post(speaker, "alice", "to nobody") == 0);
	gs_aoi_fini(&a);
}

/* A budget that sends one moved entry per refresh (bundle.c's cut) while
 * everyone keeps moving: the movers take turns (round robin from the
 * cursor), each sent at its newest position. */
static void held_back_round_robin(void)
{
	struct gs_aoi a;
	struct gs_aoi_entity *o, *m[3];
	struct gs_aoi_delta d;
	uint64_t sent[3] = { 0 };

	CHECK(gs_aoi_init(&a, R, H) == 0);
	o = gs_aoi_entity_add(&a, 1, NULL, 1, 0, 0);
	for (int i = 0; i < 3; i++)
		CHECK((m[i] = gs_aoi_entity_add(&a, 10 + (uint64_t)i, NULL, 1, (float)i, 1)) != NULL);
	CHECK(refresh(&a, o).entered == 3);
	for (int round = 0; round < 3; round++) {
		for (int step = 0; step < 2; step++)
			for (int i = 0; i < 3; i++)
				CHECK(gs_aoi_entity_move(&a, m[i], 1, (float)i,
						      (float)round + 0.5f * (float)step) == 0);
		CHECK(gs_aoi_view_refresh(&a, o, &d) == 0);
		CHECK(d.moved_count == 3);
		struct gs_aoi_entity *e = o->view[d.moved[0]].e;
		CHECK(e->y == (float)round + 0.5f); /* the newest position */
		sent[e->id - 10]++;
		gs_aoi_view_sent(o, d.moved[0]);
		gs_aoi_view_set_cursor(o, d.moved[1]);
	}
	CHECK(sent[0] == 1 && sent[1] == 1 && sent[2] == 1);
	CHECK(gs_aoi_view_refresh(&a, o, &d) == 0 && d.moved_count == 2); /* still held */
	gs_aoi_fini(&a);
}

static void bad_config(void)
{
	struct gs_aoi a;

	CHECK(gs_aoi_init(&a, 0, 1) < 0);
	CHECK(gs_aoi_init(&a, 10, -1) < 0);
	CHECK(gs_aoi_init(&a, 1.0f / 0.0f, 1) < 0);
}

static const struct test_case cases[] = {
	{ "enter_leave_hysteresis", enter_leave_hysteresis },
	{ "cell_borders", cell_borders },
	{ "zones_apart", zones_apart },
	{ "leave_game", leave_game },
	{ "chat_to_view", chat_to_view },
	{ "held_back_round_robin", held_back_round_robin },
	{ "bad_config", bad_config },
	{ NULL, NULL },
};

TEST_MAIN(cases)
