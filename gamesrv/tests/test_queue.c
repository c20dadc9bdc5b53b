/*
 * test_queue.c: unit tests of the game queue's bounds (issue 11 item 13):
 * requests are counted, in number and in bytes, from push until the game
 * thread releases them, not until it takes them. Each case is one CTest
 * test: `test_gamesrv_queue <case>`.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "queue.h"

/* A request event whose decoded message took `bytes` of its budget. */
static struct gs_game_event *request(size_t bytes)
{
	struct gs_game_event *ev = gs_game_event_new(GS_GAME_EV_CLIENT_REQUEST, 1, 1u << 20);
	Ringgate__Internal__GateToGame *msg;

	CHECK(ev != NULL);
	msg = ev->budget.allocator.alloc(ev->budget.allocator.allocator_data, sizeof(*msg));
	CHECK(msg != NULL);
	ringgate__internal__gate_to_game__init(msg);
	ev->gate_msg = msg;
	/* The rest of a decode of that size (the budget counts what was
	 * allocated; freeing a piece early does not lower it). */
	if (bytes > sizeof(*msg)) {
		void *body = ev->budget.allocator.alloc(ev->budget.allocator.allocator_data,
							 bytes - sizeof(*msg));

		CHECK(body != NULL);
		ev->budget.allocator.free(ev->budget.allocator.allocator_data, body);
	}
	return ev;
}

/* Release every event of a taken list. */
static void release_all(struct gs_game_queue *q, struct gs_game_event *ev)
{
	while (ev) {
		struct gs_game_event *next = ev->next;

		gs_game_queue_release(q, ev);
		ev = next;
	}
}

/*
 * 64 KiB requests into a 1 MiB queue: about 15 fit. Taking them does not
 * make room (the game thread still holds them); releasing does. Before the
 * fix a take reset the count, so a slow game thread could hold any number.
 */
static void bytes_bounded_until_release(void)
{
	struct gs_game_queue q;
	struct gs_game_event *ev, *taken;
	size_t accepted = 0;

	CHECK(gs_game_queue_init(&q, 1000, 1u << 20) == 0);
	for (;;) {
		ev = request(64u << 10);
		if (gs_game_queue_push(&q, ev) < 0)
			break;
		accepted++;
	}
	CHECK(accepted >= 14 && accepted <= 16);
	CHECK(q.bytes <= q.max_bytes);
	taken = gs_game_queue_take(&q, 0);
	CHECK(taken != NULL);
	/* Still held by the game thread: refused (the caller answers it). */
	CHECK(gs_game_queue_push(&q, ev) == -ENOBUFS);
	/* Life-cycle events are never refused, and count in bytes too. */
	{
		struct gs_game_event *gone = gs_game_event_new(GS_GAME_EV_CLIENT_GONE, 1, 0);

		CHECK(gone != NULL);
		CHECK(gs_game_queue_push(&q, gone) == 0);
		CHECK(q.bytes > q.max_bytes - (64u << 10));
		release_all(&q, gs_game_queue_take(&q, 0));
	}
	release_all(&q, taken);
	CHECK(q.bytes == 0 && q.requests == 0);
	CHECK(gs_game_queue_push(&q, ev) == 0);
	release_all(&q, gs_game_queue_take(&q, 0));
	CHECK(q.bytes == 0);
	gs_game_queue_fini(&q);
}

/* The count bound holds the same way: max_requests held, not queued. */
static void count_bounded_until_release(void)
{
	struct gs_game_queue q;
	struct gs_game_event *taken, *ev;

	CHECK(gs_game_queue_init(&q, 3, 1u << 30) == 0);
	for (int i = 0; i < 3; i++)
		CHECK(gs_game_queue_push(&q, request(100)) == 0);
	taken = gs_game_queue_take(&q, 0);
	ev = request(100);
	CHECK(gs_game_queue_push(&q, ev) == -ENOBUFS);
	release_all(&q, taken);
	CHECK(gs_game_queue_push(&q, ev) == 0);
	/* Left queued: fini frees it. */
	gs_game_queue_fini(&q);
}

static const struct test_case cases[] = {
	{ "bytes_bounded_until_release", bytes_bounded_until_release },
	{ "count_bounded_until_release", count_bounded_until_release },
	{ NULL, NULL },
};

TEST_MAIN(cases)
