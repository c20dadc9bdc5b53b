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
 *
 * Sessions keep a bare heap node (struct net__tnode) instead of a timer:
 * when it fires, net__session_deadline() is called.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

static bool due_before(const struct net__tnode *a, const struct net__tnode *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

/* The heap lives in a paged array (struct net__pages): growing it never
 * copies it. */
static struct net__tnode *heap_at(const struct net_loop *loop, size_t i)
{
	return *net__page_at(&loop->timers, i);
}

static void heap_set(struct net_loop *loop, size_t i, struct net__tnode *n)
{
	*net__page_at(&loop->timers, i) = n;
	n->heap_index = (uint32_t)i;
}

static void sift_up(struct net_loop *loop, size_t i)
{
	struct net__tnode *n = heap_at(loop, i);

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!due_before(n, heap_at(loop, parent)))
			break;
		heap_set(loop, i, heap_at(loop, parent));
		i = parent;
	}
	heap_set(loop, i, n);
}

static void sift_down(struct net_loop *loop, size_t i)
{
	struct net__tnode *n = heap_at(loop, i);

	for (;;) {
		size_t child = 2 * i + 1;

		if (child >= loop->timer_count)
			break;
		if (child + 1 < loop->timer_count &&
		    due_before(heap_at(loop, child + 1), heap_at(loop, child)))
			child++;
		if (!due_before(heap_at(loop, child), n))
			break;
		heap_set(loop, i, heap_at(loop, child));
		i = child;
	}
	heap_set(loop, i, n);
}

static void heap_remove(struct net_loop *loop, struct net__tnode *n)
{
	size_t i = n->heap_index;
	struct net__tnode *last = heap_at(loop, --loop->timer_count);

	n->heap_index = NET__TIMER_IDLE;
	if (last == n)
		return;
	heap_set(loop, i, last);
	sift_down(loop, i);
	sift_up(loop, last->heap_index);
}

/*
 * Every node reserves its heap slot when it is made, so that arming one
 * never allocates and so never fails: a deadline cannot be lost to OOM.
 */
static int reserve_slot(struct net_loop *loop)
{
	int err;

	if (loop->timer_reserved >= NET__TIMER_IDLE)
		return -ENOMEM;
	err = net__pages_reserve(&loop->timers, loop->timer_reserved + 1);
	if (err)
		return err;
	loop->timer_reserved++;
	return 0;
}

int net__tnode_init(struct net__tnode *n, struct net_loop *loop, bool is_session)
{
	int err = reserve_slot(loop);

	if (err)
		return err;
	n->due = 0;
	n->seq = 0;
	n->heap_index = NET__TIMER_IDLE;
	n->is_session = is_session;
	return 0;
}

void net__tnode_start(struct net_loop *loop, struct net__tnode *n, uint64_t timeout_ms)
{
	if (n->heap_index != NET__TIMER_IDLE)
		heap_remove(loop, n);
	n->due = loop->now_ms + timeout_ms;
	n->seq = loop->timer_seq++;
	heap_set(loop, loop->timer_count++, n);
	sift_up(loop, n->heap_index);
}

void net__tnode_stop(struct net_loop *loop, struct net__tnode *n)
{
	if (n->heap_index != NET__TIMER_IDLE)
		heap_remove(loop, n);
}

int net__timer_init(struct net_timer *t, struct net_loop *loop, net_timer_fn fn, void *arg)
{
	int err = net__tnode_init(&t->node, loop, false);

	if (err)
		return err;
	t->loop = loop;
	t->repeat = 0;
	t->fn = fn;
	t->arg = arg;
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
	t->repeat = repeat_ms;
	net__tnode_start(t->loop, &t->node, timeout_ms);
}

void net_timer_stop(struct net_timer *t)
{
	net__tnode_stop(t->loop, &t->node);
}

bool net_timer_active(const struct net_timer *t)
{
	return net__tnode_active(&t->node);
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
	due = heap_at(loop, 0)->due;
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

	while (loop->timer_count > 0 && heap_at(loop, 0)->due <= loop->now_ms &&
	       heap_at(loop, 0)->seq < pass_seq) {
		struct net__tnode *n = heap_at(loop, 0);
		struct net_timer *t;

		heap_remove(loop, n);
		if (n->is_session) {
			net__session_deadline(NET__CONTAINER_OF(n, struct net_session, deadline));
			continue;
		}
		t = NET__CONTAINER_OF(n, struct net_timer, node);
		if (t->repeat)
			net_timer_start(t, t->repeat, t->repeat);
		/* Last: the callback may stop, restart or destroy the timer. */
		t->fn(t, t->arg);
	}
}
