/*
 * Timers: one binary min-heap per loop, keyed on the due time and then on
 * the arming order, so timers due at the same millisecond fire in the order
 * they were armed. Start and stop are O(log n) and each timer remembers its
 * heap index, so a timer per session stays cheap at 100k sessions. Sessions
 * use lazy re-arming for idle timeouts (the timer checks last activity when
 * it fires) so traffic does not touch the heap at all.
 *
 * A pass runs only the timers that were armed before it began (libuv's
 * two-phase run): a callback that re-arms its timer with 0 ms, or arms
 * another one already due, waits for the next loop turn, so I/O, posted
 * tasks and stop still get their turn between fires.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

static bool due_before(const struct net_timer *a, const struct net_timer *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(struct net_loop *loop, size_t i, struct net_timer *t)
{
	loop->timers[i] = t;
	t->heap_index = i;
}

static void sift_up(struct net_loop *loop, size_t i)
{
	struct net_timer *t = loop->timers[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!due_before(t, loop->timers[parent]))
			break;
		heap_set(loop, i, loop->timers[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void sift_down(struct net_loop *loop, size_t i)
{
	struct net_timer *t = loop->timers[i];

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= loop->timer_count)
			break;
		if (child + 1 < loop->timer_count &&
		    due_before(loop->timers[child + 1], loop->timers[child]))
			child++;
		if (!due_before(loop->timers[child], t))
			break;
		heap_set(loop, i, loop->timers[child]);
		i = child;
	}
	heap_set(loop, i, t);
}

static void heap_remove(struct net_loop *loop, struct net_timer *t)
{
	size_t i = t->heap_index;
	struct net_timer *last = loop->timers[--loop->timer_count];

	t->heap_index = NET__TIMER_IDLE;
	if (last == t)
		return;
	heap_set(loop, i, last);
	sift_down(loop, i);
	sift_up(loop, last->heap_index);
}

/*
 * Every timer reserves its heap slot when it is made, so that arming one
 * never allocates and so never fails: a deadline cannot be lost to OOM.
 */
static int reserve_slot(struct net_loop *loop)
{
	if (loop->timer_reserved == loop->timer_cap) {
		size_t cap = loop->timer_cap ? loop->timer_cap * 2 : 64;
		struct net_timer **heap = realloc(loop->timers, cap * sizeof(*heap));

		if (!heap)
			return -ENOMEM;
		loop->timers = heap;
		loop->timer_cap = cap;
	}
	loop->timer_reserved++;
	return 0;
}

int net__timer_init(struct net_timer *t, struct net_loop *loop, net_timer_fn fn, void *arg)
{
	int err = reserve_slot(loop);

	if (err)
		return err;
	t->loop = loop;
	t->due = 0;
	t->repeat = 0;
	t->fn = fn;
	t->arg = arg;
	t->heap_index = NET__TIMER_IDLE;
	return 0;
}

int net_timer_create(struct net_loop *loop, net_timer_fn fn, void *arg, struct net_timer **out)
{
	struct net_timer *t = malloc(sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	err = net__timer_init(t, loop, fn, arg);
	if (err) {
		free(t);
		return err;
	}
	*out = t;
	return 0;
}

void net_timer_start(struct net_timer *t, uint64_t timeout_ms, uint64_t repeat_ms)
{
	struct net_loop *loop = t->loop;

	if (t->heap_index != NET__TIMER_IDLE)
		heap_remove(loop, t);
	t->due = loop->now_ms + timeout_ms;
	t->seq = loop->timer_seq++;
	t->repeat = repeat_ms;
	heap_set(loop, loop->timer_count++, t);
	sift_up(loop, t->heap_index);
}

void net_timer_stop(struct net_timer *t)
{
	if (t->heap_index != NET__TIMER_IDLE)
		heap_remove(t->loop, t);
}

bool net_timer_active(const struct net_timer *t)
{
	return t->heap_index != NET__TIMER_IDLE;
}

void net_timer_destroy(struct net_timer *t)
{
	if (!t)
		return;
	net_timer_stop(t);
	t->loop->timer_reserved--;
	free(t);
}

int net__timers_next_timeout(struct net_loop *loop)
{
	uint64_t due;

	if (loop->timer_count == 0)
		return -1;
	due = loop->timers[0]->due;
	if (due <= loop->now_ms)
		return 0;
	return due - loop->now_ms > INT32_MAX ? INT32_MAX : (int)(due - loop->now_ms);
}

void net__timers_run(struct net_loop *loop)
{
	/* Armed from here on: next turn. A timer armed during the pass has
	 * due >= now_ms, so it sorts after every older timer that is due:
	 * the first one met ends the pass. */
	uint64_t pass_seq = loop->timer_seq;

	while (loop->timer_count > 0 && loop->timers[0]->due <= loop->now_ms &&
	       loop->timers[0]->seq < pass_seq) {
		struct net_timer *t = loop->timers[0];

		heap_remove(loop, t);
		if (t->repeat)
			net_timer_start(t, t->repeat, t->repeat);
		/* Last: the callback may stop, restart or destroy the timer. */
		t->fn(t, t->arg);
	}
}
