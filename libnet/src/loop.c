/*
 * The runtime and its loops (the seeds' IocpCore).
 *
 * A loop turn:
 *   1. run posted tasks (cross-thread sends, accepted sockets, stops);
 *   2. run due timers;
 *   3. flush: submit one gathered send per session with queued bytes,
 *      re-post starved receives, finish sessions whose last op completed;
 *   4. the engine's run(): submit, wait for completions (until the next timer,
 *      or not at all if a task is already queued), dispatch them.
 * Steps 1-3 come before the wait so that everything a turn produced goes to
 * the kernel in the same io_uring_enter (or the same pass of syscalls).
 *
 * Stopping: net_runtime_stop() posts a stop to each loop; a stopping loop
 * stops its services, and exits once no session is left open and no op is
 * in flight.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local struct net_loop *current_loop;

uint64_t net__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool net__on_loop(const struct net_loop *loop)
{
	return current_loop == loop;
}

struct net_loop *net_loop_current(void)
{
	return current_loop;
}

unsigned net_loop_index(const struct net_loop *loop)
{
	return loop->index;
}

struct net_runtime *net_loop_runtime(struct net_loop *loop)
{
	return loop->rt;
}

uint64_t net_loop_now(const struct net_loop *loop)
{
	return loop->now_ms;
}

/* ---- paged pointer arrays ---------------------------------------------------- */

int net__pages_reserve(struct net__pages *a, size_t n)
{
	while (a->page_count * NET__PAGE_PTRS < n) {
		void ***pages = realloc(a->pages, (a->page_count + 1) * sizeof(*pages));

		if (!pages)
			return -ENOMEM;
		a->pages = pages;
		/* Not zeroed: a page becomes resident as it is filled. */
		pages[a->page_count] = malloc(NET__PAGE_PTRS * sizeof(void *));
		if (!pages[a->page_count])
			return -ENOMEM;
		a->page_count++;
	}
	return 0;
}

void net__pages_free(struct net__pages *a)
{
	for (size_t i = 0; i < a->page_count; i++)
		free(a->pages[i]);
	free(a->pages);
	a->pages = NULL;
	a->page_count = 0;
}

/* ---- engine choice -------------------------------------------------------- */

static const struct net__engine *const engines[] = {
#ifdef _WIN32
	&net__engine_iocp,
#else
	&net__engine_uring,
	&net__engine_epoll,
#endif
};

static int pick_engine(const char *wanted, const struct net__engine **out)
{
	if (!wanted || !*wanted)
		wanted = getenv("RINGGATE_ENGINE");
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		const struct net__engine *e = engines[i];

		if (wanted && *wanted && strcmp(wanted, e->name) != 0)
			continue;
		if (e->probe() == 0) {
			*out = e;
			return 0;
		}
		/* A forced engine that does not work here is an error, not a
		 * silent fallback: the caller asked for it by name. */
		if (wanted && *wanted)
			return -ENOTSUP;
	}
	return wanted && *wanted ? -EINVAL : -ENOTSUP;
}

/* ---- posting ---------------------------------------------------------------- */

/*
 * Wakes happen under post_lock: the loop marks itself stopped under the same
 * lock before its engine is torn down, so a wake never touches a freed
 * engine.
 */
void net__loop_wake(struct net_loop *loop)
{
	pthread_mutex_lock(&loop->post_lock);
	if (!loop->stopped)
		net__engine_wake(loop);
	pthread_mutex_unlock(&loop->post_lock);
}

int net__loop_post_task(struct net_loop *loop, struct net__task *task, size_t bytes,
			bool bounded)
{
	int err = 0;

	task->next = NULL;
	task->bytes = bytes;
	pthread_mutex_lock(&loop->post_lock);
	if (loop->stopped)
		err = -NET_ESHUTDOWN;
	else if (bounded && loop->post_bytes + bytes > loop->rt->cfg.post_queue_max)
		err = -ENOBUFS;
	if (err) {
		pthread_mutex_unlock(&loop->post_lock);
		return err;
	}
	loop->post_bytes += bytes;
	if (loop->post_tail)
		loop->post_tail->next = task;
	else
		loop->post_head = task;
	loop->post_tail = task;
	/* One wake-up per batch: only the poster that flips the flag pays for
	 * the wake; the loop clears it before draining. */
	if (!atomic_exchange(&loop->wake_pending, true) && !net__on_loop(loop))
		net__engine_wake(loop);
	pthread_mutex_unlock(&loop->post_lock);
	return 0;
}

struct plain_task {
	struct net__task task;
	net_task_fn fn;
	void *arg;
};

static void run_plain_task(struct net_loop *loop, void *arg)
{
	struct plain_task *pt = arg;
	net_task_fn fn = pt->fn;
	void *fn_arg = pt->arg;

	free(pt);
	fn(loop, fn_arg);
}

static int post_plain(struct net_loop *loop, net_task_fn fn, void *arg, bool bounded)
{
	struct plain_task *pt = malloc(sizeof(*pt));
	int err;

	if (!pt)
		return -ENOMEM;
	pt->task.fn = run_plain_task;
	pt->task.arg = pt;
	pt->fn = fn;
	pt->arg = arg;
	err = net__loop_post_task(loop, &pt->task, sizeof(*pt), bounded);
	if (err)
		free(pt);
	return err;
}

int net_loop_post(struct net_loop *loop, net_task_fn fn, void *arg)
{
	return post_plain(loop, fn, arg, true);
}

int net_loop_post_control(struct net_loop *loop, net_task_fn fn, void *arg)
{
	return post_plain(loop, fn, arg, false);
}

static bool run_posted(struct net_loop *loop)
{
	struct net__task *task;

	atomic_store(&loop->wake_pending, false);
	pthread_mutex_lock(&loop->post_lock);
	task = loop->post_head;
	loop->post_head = loop->post_tail = NULL;
	/* The batch leaves the queue now and is run (and freed) below. */
	loop->post_bytes = 0;
	pthread_mutex_unlock(&loop->post_lock);
	if (!task)
		return false;
	while (task) {
		struct net__task *next = task->next;

		task->fn(loop, task->arg);
		task = next;
	}
	return true;
}

/* ---- the loop thread ---------------------------------------------------- */

static void stop_services_on_loop(struct net_loop *loop)
{
	struct net__service *svc;

	pthread_mutex_lock(&loop->rt->lock);
	svc = loop->rt->services;
	pthread_mutex_unlock(&loop->rt->lock);
	for (; svc; svc = svc->next)
		net__service_stop_on_loop(svc, loop);
}

/*
 * Idle: no open session and no accept in flight. A cancelled multishot
 * accept still holds the listening socket until it completes; leaving
 * before that could keep the port bound after the process exits.
 */
static bool loop_idle(const struct net_loop *loop)
{
	if (loop->listener_ops)
		return false;
	for (uint32_t i = 0; i < loop->slot_count; i++) {
		enum net__session_state st = net__slot(loop, i)->state;

		if (st != NET__S_FREE && st != NET__S_CLOSED)
			return false;
	}
	return true;
}

static void loop_turn_prologue(struct net_loop *loop)
{
	loop->now_ms = net__now_ms();
	run_posted(loop);
	net__timers_run(loop);
	net__loop_flush(loop);
}

static void *loop_thread(void *arg)
{
	struct net_loop *loop = arg;
	struct net_runtime *rt = loop->rt;
	bool services_stopped = false;
	int err;

	current_loop = loop;
	loop->now_ms = net__now_ms();
	err = net__engine_init(loop);
	pthread_mutex_lock(&rt->lock);
	if (err && !rt->start_error)
		rt->start_error = err;
	rt->loops_ready++;
	pthread_cond_broadcast(&rt->cond);
	pthread_mutex_unlock(&rt->lock);
	if (err)
		return NULL;

	for (;;) {
		int timeout;

		loop_turn_prologue(loop);
		if (atomic_load(&loop->stopping)) {
			if (!services_stopped) {
				stop_services_on_loop(loop);
				services_stopped = true;
				net__loop_flush(loop);
			}
			if (loop_idle(loop))
				break;
		}
		timeout = atomic_load(&loop->wake_pending) ? 0 : net__timers_next_timeout(loop);
		net__engine_run(loop, timeout);
	}

	/* Refuse new posts, then run what slipped in before the refusal
	 * (their owners expect them to run or be refused, never lost). */
	pthread_mutex_lock(&loop->post_lock);
	loop->stopped = true;
	pthread_mutex_unlock(&loop->post_lock);
	run_posted(loop);
	net__engine_fini(loop);
	current_loop = NULL;
	return NULL;
}

/* ---- runtime ------------------------------------------------------------ */

int net_runtime_create(const struct net_runtime_config *cfg, struct net_runtime **out)
{
	struct net_runtime *rt = calloc(1, sizeof(*rt));
	long cores;
	int err;

	if (!rt)
		return -ENOMEM;
	if (cfg)
		rt->cfg = *cfg;
	if (!rt->cfg.recv_buffers)
		rt->cfg.recv_buffers = 512;
	if (!rt->cfg.recv_buffer_size)
		rt->cfg.recv_buffer_size = 16384;
	if (!rt->cfg.post_queue_max)
		rt->cfg.post_queue_max = 64u << 20;
	rt->loop_count = rt->cfg.loops;
	if (!rt->loop_count) {
#ifdef _WIN32
		SYSTEM_INFO si;

		GetSystemInfo(&si);
		cores = (long)si.dwNumberOfProcessors;
#else
		cores = sysconf(_SC_NPROCESSORS_ONLN);
#endif
		rt->loop_count = cores > 0 ? (unsigned)cores : 1;
	}
	if (rt->loop_count > NET_LOOPS_MAX) {
		err = -EINVAL;
		goto out_free;
	}
	err = pick_engine(rt->cfg.engine, &rt->engine);
	if (err)
		goto out_free;
	rt->loops = calloc(rt->loop_count, sizeof(*rt->loops));
	if (!rt->loops) {
		err = -ENOMEM;
		goto out_free;
	}
	pthread_mutex_init(&rt->lock, NULL);
	pthread_cond_init(&rt->cond, NULL);
	for (unsigned i = 0; i < rt->loop_count; i++) {
		struct net_loop *loop = &rt->loops[i];

		loop->rt = rt;
		loop->index = i;
		loop->engine = rt->engine;
		loop->now_ms = net__now_ms();
		pthread_mutex_init(&loop->post_lock, NULL);
	}
	*out = rt;
	return 0;

out_free:
	free(rt);
	return err;
}

const char *net_runtime_engine(const struct net_runtime *rt)
{
	return rt->engine->name;
}

unsigned net_runtime_loop_count(const struct net_runtime *rt)
{
	return rt->loop_count;
}

struct net_loop *net_runtime_loop(struct net_runtime *rt, unsigned i)
{
	return i < rt->loop_count ? &rt->loops[i] : NULL;
}

int net_runtime_start(struct net_runtime *rt)
{
	unsigned started = 0;
	int err = 0;

	pthread_mutex_lock(&rt->lock);
	if (rt->started) {
		pthread_mutex_unlock(&rt->lock);
		return -EALREADY;
	}
	rt->started = true;
	pthread_mutex_unlock(&rt->lock);

	for (; started < rt->loop_count; started++) {
		struct net_loop *loop = &rt->loops[started];

		err = -pthread_create(&loop->thread, NULL, loop_thread, loop);
		if (err)
			break;
	}
	pthread_mutex_lock(&rt->lock);
	while (rt->loops_ready < started)
		pthread_cond_wait(&rt->cond, &rt->lock);
	if (!err)
		err = rt->start_error;
	pthread_mutex_unlock(&rt->lock);
	if (err) {
		/* Loops that did start are told to stop and joined. */
		for (unsigned i = 0; i < started; i++) {
			atomic_store(&rt->loops[i].stopping, true);
			net__loop_wake(&rt->loops[i]);
		}
		for (unsigned i = 0; i < started; i++)
			pthread_join(rt->loops[i].thread, NULL);
		rt->loop_count = started;
		rt->started = false;
	}
	return err;
}

void net_runtime_stop(struct net_runtime *rt)
{
	if (!rt->started)
		return;
	for (unsigned i = 0; i < rt->loop_count; i++) {
		atomic_store(&rt->loops[i].stopping, true);
		net__loop_wake(&rt->loops[i]);
	}
	for (unsigned i = 0; i < rt->loop_count; i++)
		pthread_join(rt->loops[i].thread, NULL);
	rt->started = false;
}

void net_runtime_destroy(struct net_runtime *rt)
{
	if (!rt)
		return;
	net_runtime_stop(rt);
	for (unsigned i = 0; i < rt->loop_count; i++) {
		struct net_loop *loop = &rt->loops[i];

		net__loop_free_sessions(loop);
		net__pages_free(&loop->timers);
		pthread_mutex_destroy(&loop->post_lock);
	}
	while (rt->services) {
		struct net__service *svc = rt->services;

		rt->services = svc->next;
		net__service_free(svc);
	}
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->lock);
	free(rt->loops);
	free(rt);
}

void net_runtime_stats(struct net_runtime *rt, struct net_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < rt->loop_count; i++) {
		const struct net__counters *c = &rt->loops[i].stats;

		out->accepted += NET__LOAD(c->accepted);
		out->rejected += NET__LOAD(c->rejected);
		out->rejected_addr += NET__LOAD(c->rejected_addr);
		out->accept_errors += NET__LOAD(c->accept_errors);
		out->connected += NET__LOAD(c->connected);
		out->connect_failed += NET__LOAD(c->connect_failed);
		out->reused += NET__LOAD(c->reused);
		out->sessions_open += NET__LOAD(c->sessions_open);
		for (int r = 0; r < NET_REASON_COUNT; r++)
			out->disconnects[r] += NET__LOAD(c->disconnects[r]);
		out->bytes_in += NET__LOAD(c->bytes_in);
		out->bytes_out += NET__LOAD(c->bytes_out);
		out->frames_in += NET__LOAD(c->frames_in);
		out->frames_out += NET__LOAD(c->frames_out);
		out->sends_dropped += NET__LOAD(c->sends_dropped);
		if (NET__LOAD(c->send_queue_high_water) > out->send_queue_high_water)
			out->send_queue_high_water = NET__LOAD(c->send_queue_high_water);
		out->recv_paused += NET__LOAD(c->recv_paused);
		out->waits += NET__LOAD(c->waits);
	}
}
