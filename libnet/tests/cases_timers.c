/*
 * libnet tests. Timers: order, ties, repeat, stop, self-destroy, and re-
 * arming from a callback.
 */
#include "cases.h"

static struct {
	atomic_int order[8];
	atomic_int fired;
	atomic_int repeats;
	struct net_timer *first, *last, *stopped, *repeating;
	atomic_bool freed;
} timers;

static void timer_fired(struct net_timer *t, void *arg)
{
	int id = (int)(intptr_t)arg;

	(void)t;
	timers.order[atomic_fetch_add(&timers.fired, 1)] = id;
}

static void timer_self_destroy(struct net_timer *t, void *arg)
{
	timer_fired(t, arg);
	net_timer_destroy(t);
}

static void timer_repeat(struct net_timer *t, void *arg)
{
	(void)arg;
	if (atomic_fetch_add(&timers.repeats, 1) + 1 == 5)
		net_timer_stop(t);
}

static void start_timers(struct net_loop *loop, void *arg)
{
	struct net_timer *a, *b, *c;

	(void)arg;
	CHECK_OK(net_timer_create(loop, timer_fired, (void *)(intptr_t)3, &a));
	CHECK_OK(net_timer_create(loop, timer_fired, (void *)(intptr_t)1, &b));
	timers.last = a;
	timers.first = b;
	CHECK_OK(net_timer_create(loop, timer_self_destroy, (void *)(intptr_t)2, &c));
	CHECK_OK(net_timer_create(loop, timer_fired, (void *)(intptr_t)9, &timers.stopped));
	CHECK_OK(net_timer_create(loop, timer_repeat, NULL, &timers.repeating));
	net_timer_start(a, 60, 0);
	net_timer_start(b, 20, 0);
	net_timer_start(c, 40, 0);
	net_timer_start(timers.stopped, 30, 0);
	net_timer_stop(timers.stopped);
	CHECK(!net_timer_active(timers.stopped));
	net_timer_start(timers.repeating, 5, 5);
}

static void free_timers(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	net_timer_destroy(timers.first);
	net_timer_destroy(timers.last);
	net_timer_destroy(timers.stopped);
	net_timer_destroy(timers.repeating);
	atomic_store(&timers.freed, true);
}

void test_timers(void)
{
	struct net_runtime *rt = test_runtime(1);

	CHECK_OK(net_loop_post(net_runtime_loop(rt, 0), start_timers, NULL));
	WAIT_UNTIL(atomic_load(&timers.fired) == 3 && atomic_load(&timers.repeats) == 5, 3000);
	test_sleep_ms(50); /* a stopped timer must stay quiet */
	CHECK(atomic_load(&timers.fired) == 3);
	CHECK(timers.order[0] == 1 && timers.order[1] == 2 && timers.order[2] == 3);
	CHECK(atomic_load(&timers.repeats) == 5);
	CHECK_OK(net_loop_post(net_runtime_loop(rt, 0), free_timers, NULL));
	WAIT_UNTIL(atomic_load(&timers.freed), 3000);
	CHECK(atomic_load(&timers.freed));
	net_runtime_destroy(rt);
}

/*
 * Timers due at the same millisecond fire in arming order, and re-arming
 * moves a timer to the back of its millisecond.
 */
#define TIE_TIMERS 16
static struct {
	struct net_timer *t[TIE_TIMERS];
	atomic_int order[TIE_TIMERS];
	atomic_int fired;
	atomic_bool freed;
} ties;

static void tie_fired(struct net_timer *t, void *arg)
{
	(void)t;
	ties.order[atomic_fetch_add(&ties.fired, 1)] = (int)(intptr_t)arg;
}

static void start_ties(struct net_loop *loop, void *arg)
{
	(void)arg;
	for (int i = 0; i < TIE_TIMERS; i++)
		CHECK_OK(net_timer_create(loop, tie_fired, (void *)(intptr_t)i, &ties.t[i]));
	/* All in one callback: the same cached now_ms, the same due. */
	for (int i = 0; i < TIE_TIMERS; i++)
		net_timer_start(ties.t[i], 20, 0);
	net_timer_start(ties.t[3], 20, 0);
}

static void free_ties(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	for (int i = 0; i < TIE_TIMERS; i++)
		net_timer_destroy(ties.t[i]);
	atomic_store(&ties.freed, true);
}

void test_timer_ties(void)
{
	struct net_runtime *rt = test_runtime(1);
	int expect = 0;

	CHECK_OK(net_loop_post(net_runtime_loop(rt, 0), start_ties, NULL));
	WAIT_UNTIL(atomic_load(&ties.fired) == TIE_TIMERS, 3000);
	CHECK(atomic_load(&ties.fired) == TIE_TIMERS);
	for (int i = 0; i < TIE_TIMERS - 1; i++, expect++) {
		if (expect == 3)
			expect++;
		CHECK(ties.order[i] == expect);
	}
	CHECK(ties.order[TIE_TIMERS - 1] == 3);
	CHECK_OK(net_loop_post(net_runtime_loop(rt, 0), free_ties, NULL));
	WAIT_UNTIL(atomic_load(&ties.freed), 3000);
	net_runtime_destroy(rt);
}

/*
 * A timer that re-arms itself with 0 ms from its own callback runs once
 * per loop turn, not forever within one: posted tasks (and so stop) still
 * run, and it fires a bounded number of times.
 */
static struct {
	struct net_timer *t;
	atomic_ulong fires;
	atomic_bool task_ran;
	atomic_bool freed;
} spin;

static void spin_fired(struct net_timer *t, void *arg)
{
	(void)arg;
	atomic_fetch_add(&spin.fires, 1);
	net_timer_start(t, 0, 0);
}

static void start_spin(struct net_loop *loop, void *arg)
{
	(void)arg;
	CHECK_OK(net_timer_create(loop, spin_fired, NULL, &spin.t));
	net_timer_start(spin.t, 0, 0);
}

static void mark_task_ran(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	atomic_store(&spin.task_ran, true);
}

static void free_spin(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	net_timer_destroy(spin.t);
	atomic_store(&spin.freed, true);
}

void test_timer_zero_rearm(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_loop *loop = net_runtime_loop(rt, 0);

	CHECK_OK(net_loop_post(loop, start_spin, NULL));
	WAIT_UNTIL(atomic_load(&spin.fires) > 10, 3000);
	CHECK(atomic_load(&spin.fires) > 10);
	CHECK_OK(net_loop_post(loop, mark_task_ran, NULL));
	WAIT_UNTIL(atomic_load(&spin.task_ran), 3000);
	CHECK(atomic_load(&spin.task_ran));
	CHECK_OK(net_loop_post(loop, free_spin, NULL));
	WAIT_UNTIL(atomic_load(&spin.freed), 3000);
	CHECK(atomic_load(&spin.freed));
	net_runtime_destroy(rt);
}
