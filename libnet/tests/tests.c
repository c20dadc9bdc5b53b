/*
 * libnet's test cases, one table. Run: libnet_tests <case> (CTest runs
 * each case once per engine with RINGGATE_ENGINE set), or
 * libnet_tests --list. The peer side of a test is either libnet itself
 * (echo ping-pong, reconnect) or a plain blocking socket, so the library is
 * checked against a client that does exactly what the test says, byte by
 * byte.
 */
#include "test_util.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#ifdef _WIN32
#include <net/net_iocp.h>
#else
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

/* What the server-side callbacks saw; shared by the cases. */
static struct {
	atomic_int connected;
	atomic_int disconnected;
	atomic_int last_reason;
	atomic_ulong frames;
	_Atomic(struct net_session *) session; /* the last connected one, ref'd */
} seen;

static void record_connected(struct net_session *s)
{
	net_session_ref(s);
	atomic_store(&seen.session, s);
	atomic_fetch_add(&seen.connected, 1);
}

static void record_disconnected(struct net_session *s, enum net_reason reason)
{
	(void)s;
	atomic_store(&seen.last_reason, reason);
	atomic_fetch_add(&seen.disconnected, 1);
}

static int echo_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	atomic_fetch_add(&seen.frames, 1);
	return net_session_send_frame(s, body, len);
}

static const struct net_session_ops echo_ops = {
	.on_connected = record_connected,
	.on_frame = echo_frame,
	.on_disconnected = record_disconnected,
};

static struct net_server *start_server(struct net_runtime *rt, const struct net_session_config *sc,
				       unsigned max_sessions)
{
	struct net_server_config cfg = { .host = "127.0.0.1", .max_sessions = max_sessions };
	struct net_server *srv;

	cfg.session = *sc;
	CHECK_OK(net_server_start(rt, &cfg, &srv));
	return srv;
}

static struct net_server *start_echo(struct net_runtime *rt)
{
	struct net_session_config sc = { .ops = &echo_ops };

	return start_server(rt, &sc, 0);
}

static void release_seen_session(void)
{
	struct net_session *s = atomic_exchange(&seen.session, NULL);

	if (s)
		net_session_unref(s);
}

static struct net_stats stats_of(struct net_runtime *rt)
{
	struct net_stats st;

	net_runtime_stats(rt, &st);
	return st;
}

/* ---- framing --------------------------------------------------------------- */

static void test_frame_parse(void)
{
	uint8_t buf[16];
	size_t hdr, body, n;

	/* Round trip of the varint encoder over edge values. */
	const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384, 65536, UINT32_MAX };
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		n = net_varint_encode(values[i], buf);
		CHECK(net_frame_parse(buf, n, UINT32_MAX, &hdr, &body) == 1);
		CHECK(hdr == n && body == values[i]);
		/* Every strict prefix needs more bytes. */
		for (size_t k = 0; k < n; k++)
			CHECK(net_frame_parse(buf, k, UINT32_MAX, &hdr, &body) == 0);
	}
	/* Oversize is decided from the prefix alone. */
	n = net_varint_encode(65537, buf);
	CHECK(net_frame_parse(buf, n, 65536, &hdr, &body) == -EMSGSIZE);
	/* A partial prefix that already proves the size is refused early. */
	n = net_varint_encode((1u << 30) | 0x1fffff, buf);
	CHECK(net_frame_parse(buf, n - 1, 65536, &hdr, &body) == -EMSGSIZE);
	/* Six continuation bytes: malformed. */
	memset(buf, 0x80, 6);
	CHECK(net_frame_parse(buf, 6, UINT32_MAX, &hdr, &body) == -EBADMSG);
	/* Overlong zero (0x80 0x00) is a valid protobuf varint for 0. */
	buf[0] = 0x80;
	buf[1] = 0x00;
	CHECK(net_frame_parse(buf, 2, 10, &hdr, &body) == 1 && hdr == 2 && body == 0);
}

/* ---- timers ---------------------------------------------------------------- */

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

static void test_timers(void)
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

static void test_timer_ties(void)
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

static void test_timer_zero_rearm(void)
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

/* ---- echo ping-pong (the seeds' test) --------------------------------------- */

#define PINGPONG_SESSIONS 100
#define PINGPONG_ROUNDS 200
static const char hello[] = "Hello World!";

static struct {
	atomic_int done;
	atomic_int bad;
	atomic_ulong trips;
} pp;

static void pp_connected(struct net_session *s)
{
	CHECK_OK(net_session_send_frame(s, hello, sizeof(hello) - 1));
}

static int pp_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	unsigned *rounds = net_session_user(s);

	if (len != sizeof(hello) - 1 || memcmp(body, hello, len) != 0) {
		atomic_fetch_add(&pp.bad, 1);
		return -EPROTO;
	}
	atomic_fetch_add(&pp.trips, 1);
	if (++*rounds == PINGPONG_ROUNDS) {
		atomic_fetch_add(&pp.done, 1);
		return 0;
	}
	return net_session_send_frame(s, hello, sizeof(hello) - 1);
}

static const struct net_session_ops pp_ops = { .on_connected = pp_connected, .on_frame = pp_frame };

static void test_echo_pingpong(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_server *srv = start_echo(rt);
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.port = net_server_port(srv),
		.sessions = PINGPONG_SESSIONS,
		.session = { .ops = &pp_ops, .user_size = sizeof(unsigned) },
	};
	struct net_client *cli;
	struct net_stats st;

	CHECK_OK(net_client_start(rt, &cc, &cli));
	WAIT_UNTIL(atomic_load(&pp.done) == PINGPONG_SESSIONS || atomic_load(&pp.bad), 20000);
	CHECK(atomic_load(&pp.bad) == 0);
	CHECK(atomic_load(&pp.done) == PINGPONG_SESSIONS);
	CHECK(atomic_load(&pp.trips) == (unsigned long)PINGPONG_SESSIONS * PINGPONG_ROUNDS);
	CHECK(net_client_connected_count(cli) == PINGPONG_SESSIONS);
	st = stats_of(rt);
	CHECK(st.connected == PINGPONG_SESSIONS && st.accepted == PINGPONG_SESSIONS);
	CHECK(st.frames_in == 2ull * PINGPONG_SESSIONS * PINGPONG_ROUNDS);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* ---- framing over real sockets ---------------------------------------------- */

static void test_split_and_batched_frames(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	int fd = test_connect(net_server_port(srv));
	uint8_t wire[4096], frame[10 + 300], got[300];
	size_t wire_len = 0, frame_len;

	/* One frame, written one byte at a time. */
	for (int i = 0; i < 300; i++)
		frame[10 + i] = (uint8_t)(i * 7);
	frame_len = net_varint_encode(300, frame);
	memmove(frame + frame_len, frame + 10, 300);
	frame_len += 300;
	for (size_t i = 0; i < frame_len; i++) {
		CHECK(test_write_all(fd, frame + i, 1) == 0);
		if (i % 50 == 0)
			test_sleep_ms(1);
	}
	CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 300);
	for (int i = 0; i < 300; i++)
		CHECK(got[i] == (uint8_t)(i * 7));

	/* Many frames (including an empty one) in one write. */
	for (int i = 0; i < 100; i++) {
		uint8_t body[3] = { (uint8_t)i, (uint8_t)(i + 1), (uint8_t)(i + 2) };
		size_t len = (size_t)(i % 4);

		wire_len += net_varint_encode(len, wire + wire_len);
		memcpy(wire + wire_len, body, len);
		wire_len += len;
	}
	CHECK(test_write_all(fd, wire, wire_len) == 0);
	for (int i = 0; i < 100; i++) {
		long n = test_read_frame(fd, got, sizeof(got), 3000);

		CHECK(n == i % 4);
		for (long k = 0; k < n; k++)
			CHECK(got[k] == (uint8_t)(i + k));
	}
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

static void expect_cut(const uint8_t *bytes, size_t len, enum net_reason reason)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &echo_ops, .max_frame = 1024 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));

	CHECK(test_write_all(fd, bytes, len) == 0);
	/* The server closes without waiting for a body it will never take. */
	CHECK(test_read_until_eof(fd, 3000) == 0);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == (int)reason);
	CHECK(atomic_load(&seen.frames) == 0);
	CHECK(stats_of(rt).disconnects[reason] == 1);
	release_seen_session();
	net_runtime_destroy(rt);
}

static void test_oversize_frame(void)
{
	uint8_t hdr[10];
	size_t n = net_varint_encode(1 << 20, hdr);

	expect_cut(hdr, n, NET_REASON_FRAME_TOO_LARGE);
}

static void test_bad_varint(void)
{
	const uint8_t bad[6] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };

	expect_cut(bad, sizeof(bad), NET_REASON_BAD_FRAME);
}

/* ---- send ordering from many threads ----------------------------------------- */

#define SENDER_THREADS 4
#define SENDS_PER_THREAD 5000

struct sender {
	struct net_runtime *rt;
	struct net_session *s;
	int index;
};

static void *sender_main(void *arg)
{
	struct sender *sd = arg;
	net_session_id id = net_session_get_id(sd->s);

	for (uint32_t seq = 0; seq < SENDS_PER_THREAD; seq++) {
		uint32_t body[8] = { (uint32_t)sd->index, seq };
		int err;

		/* Half the threads use the session pointer, half the id. */
		for (int k = 2; k < 8; k++)
			body[k] = seq * 31u + (uint32_t)k;
		do {
			err = sd->index % 2 ? net_session_send_frame(sd->s, body, sizeof(body))
					    : net_send_to(sd->rt, id, body, sizeof(body));
		} while (err == -ENOMEM);
		CHECK(err == 0);
	}
	return NULL;
}

static void test_send_order_threads(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_session_config sc = { .ops = &echo_ops, .send_queue_max = 64u << 20 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	struct sender senders[SENDER_THREADS];
	pthread_t threads[SENDER_THREADS];
	uint32_t next[SENDER_THREADS] = { 0 };

	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	for (int i = 0; i < SENDER_THREADS; i++) {
		senders[i] = (struct sender){ rt, atomic_load(&seen.session), i };
		CHECK(pthread_create(&threads[i], NULL, sender_main, &senders[i]) == 0);
	}
	for (int n = 0; n < SENDER_THREADS * SENDS_PER_THREAD; n++) {
		uint32_t body[8];

		CHECK(test_read_frame(fd, body, sizeof(body), 10000) == sizeof(body));
		CHECK(body[0] < SENDER_THREADS);
		/* Each thread's frames arrive whole and in its own order. */
		CHECK(body[1] == next[body[0]]);
		for (int k = 2; k < 8; k++)
			CHECK(body[k] == body[1] * 31u + (uint32_t)k);
		next[body[0]]++;
	}
	for (int i = 0; i < SENDER_THREADS; i++)
		pthread_join(threads[i], NULL);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

/*
 * io_uring with a two-entry submission queue: nearly every loop turn fills
 * it (sends, receives, cross-thread wake-ups, and at stop one cancel per
 * session), so the full-queue paths run. Nothing may be lost: every echo
 * arrives, every frame of every thread arrives in order, and stop returns.
 * On other engines the knob is ignored and the cases simply run again.
 */
#ifndef _WIN32
/*
 * And the kernel refuses half of the submissions libnet makes to free the
 * full queue (as io_uring_enter may, for lack of memory or while
 * completions overflow): libnet_tests is linked with
 * --wrap=io_uring_submit, and this case turns the refusals on.
 */
struct io_uring;
int __real_io_uring_submit(struct io_uring *ring);
int __wrap_io_uring_submit(struct io_uring *ring);
static atomic_bool submit_faults;
static atomic_uint submit_calls;

int __wrap_io_uring_submit(struct io_uring *ring)
{
	if (atomic_load(&submit_faults) && atomic_fetch_add(&submit_calls, 1) % 2 == 0)
		return -EBUSY;
	return __real_io_uring_submit(ring);
}
#endif

static void test_tiny_ring(void)
{
	CHECK(putenv("RINGGATE_URING_ENTRIES=2") == 0);
#ifndef _WIN32
	atomic_store(&submit_faults, true);
#endif
	test_echo_pingpong();
	test_send_order_threads();
}

/*
 * The queue of work posted to a loop from other threads is bounded in
 * bytes: while the loop is busy, cross-thread sends and tasks past
 * post_queue_max fail with -ENOBUFS (nothing queued), control posts such as
 * a disconnect still go through, and what was accepted all arrives.
 */
static atomic_bool loop_blocked, loop_release;

static void block_loop(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
	atomic_store(&loop_blocked, true);
	while (!atomic_load(&loop_release))
		test_sleep_ms(1);
}

static void nothing(struct net_loop *loop, void *arg)
{
	(void)loop;
	(void)arg;
}

static void test_post_queue_bound(void)
{
	struct net_runtime_config rc = { .loops = 1, .post_queue_max = 64 * 1024 };
	struct net_runtime *rt = test_runtime_cfg(&rc);
	struct net_server *srv = start_echo(rt);
	struct net_loop *loop = net_runtime_loop(rt, 0);
	int fd = test_connect(net_server_port(srv));
	uint32_t body[256] = { 0 };
	unsigned accepted = 0;
	int err = 0;

	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	CHECK_OK(net_loop_post(loop, block_loop, NULL));
	WAIT_UNTIL(atomic_load(&loop_blocked), 3000);
	/* 1 KiB frames: the bound is met after about 64 of them. */
	while (accepted < 10000) {
		body[0] = accepted;
		err = net_session_send_frame(atomic_load(&seen.session), body, sizeof(body));
		if (err)
			break;
		accepted++;
	}
	CHECK(err == -ENOBUFS);
	CHECK(accepted > 32 && accepted <= 64);
	CHECK(net_send_to(rt, net_session_get_id(atomic_load(&seen.session)), body, sizeof(body)) ==
	      -ENOBUFS);
	/* Tasks are bounded too: the rest of the room fills up. */
	for (int i = 0; i < 10000 && (err = net_loop_post(loop, nothing, NULL)) == 0; i++)
		;
	CHECK(err == -ENOBUFS);
	atomic_store(&loop_release, true);
	/* Every accepted frame arrives, in order. */
	for (unsigned i = 0; i < accepted; i++) {
		CHECK(test_read_frame(fd, body, sizeof(body), 5000) == sizeof(body));
		CHECK(body[0] == i);
	}
	/* Drained: posting works again, and so does a disconnect. */
	WAIT_UNTIL(net_loop_post(loop, nothing, NULL) == 0, 3000);
	CHECK_OK(net_disconnect_id(rt, net_session_get_id(atomic_load(&seen.session)), NET_REASON_LOCAL));
	CHECK(test_read_until_eof(fd, 3000) == 0);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* ---- connect, backoff, reconnect -------------------------------------------- */

static atomic_int dialed;

static void dial_connected(struct net_session *s)
{
	(void)s;
	atomic_fetch_add(&dialed, 1);
}

static int ignore_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	(void)s;
	(void)body;
	(void)len;
	return 0;
}

static const struct net_session_ops dial_ops = {
	.on_connected = dial_connected,
	.on_frame = ignore_frame,
};

/* A port nobody listens on: bind one, note it, close it. */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void test_reconnect_backoff(void)
{
	struct net_runtime *rt = test_runtime(1);
	uint16_t port = free_port();
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.port = port,
		.backoff_min_ms = 20,
		.backoff_max_ms = 160,
		.session = { .ops = &dial_ops },
	};
	struct net_server_config sc = { .host = "127.0.0.1", .port = port, .session = { .ops = &echo_ops } };
	struct net_client *cli;
	struct net_server *srv;
	unsigned long long t0 = test_now_ms();
	uint64_t failed;

	CHECK_OK(net_client_start(rt, &cc, &cli));
	/* Backoff 20, 40, 80, 160, 160 ... (+-25%): about 4-8 dials in 700 ms
	 * rather than hundreds. */
	WAIT_UNTIL(stats_of(rt).connect_failed >= 4, 3000);
	failed = stats_of(rt).connect_failed;
	CHECK(failed >= 4);
	test_sleep_ms(700 - (test_now_ms() - t0 < 700 ? (unsigned)(test_now_ms() - t0) : 700));
	failed = stats_of(rt).connect_failed;
	CHECK(failed >= 4 && failed <= 12);
	CHECK(atomic_load(&dialed) == 0);
	CHECK_OK(net_server_start(rt, &sc, &srv));
	WAIT_UNTIL(atomic_load(&dialed) == 1, 3000);
	CHECK(atomic_load(&dialed) == 1);
	CHECK(net_client_connected_count(cli) == 1);
	/* The server drops the link: the client redials by itself. */
	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK_OK(net_disconnect_id(rt, net_session_get_id(atomic_load(&seen.session)), NET_REASON_LOCAL));
	WAIT_UNTIL(atomic_load(&dialed) == 2, 3000);
	CHECK(atomic_load(&dialed) == 2);
	release_seen_session();
	net_runtime_destroy(rt);
}

/*
 * A dial whose connect timer fires in the same turn as its successful
 * connect completes: the dial won, so the session is connected with no
 * error (a stale -ETIMEDOUT made a later reset read as a timeout). Many
 * dials with a 1 ms timeout make that race happen.
 */
static atomic_int race_connects, race_stale;

static void race_connected(struct net_session *s)
{
	atomic_fetch_add(&race_connects, 1);
	if (net_session_error(s) != 0)
		atomic_fetch_add(&race_stale, 1);
	net_session_disconnect(s, NET_REASON_LOCAL);
}

static void test_connect_timeout_race(void)
{
	static const struct net_session_ops ops = { .on_connected = race_connected, .on_frame = ignore_frame };
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.port = net_server_port(srv),
		.sessions = 32,
		.backoff_min_ms = 1,
		.backoff_max_ms = 2,
		.connect_timeout_ms = 1,
		.session = { .ops = &ops },
	};
	struct net_client *cli;
	struct net_stats st;

	CHECK_OK(net_client_start(rt, &cc, &cli));
	WAIT_UNTIL(atomic_load(&race_stale) > 0, 2000);
	st = stats_of(rt);
	fprintf(stderr, "connected %d, failed %llu, with a stale error %d\n", atomic_load(&race_connects),
		(unsigned long long)st.connect_failed, atomic_load(&race_stale));
	CHECK(atomic_load(&race_connects) > 0);
	CHECK(atomic_load(&race_stale) == 0);
	net_client_stop(cli);
	release_seen_session();
	net_runtime_destroy(rt);
}

/*
 * A config names exactly one receive hook (with both, one would silently
 * be ignored), and net_session_peer writes into the caller's buffer.
 */
static long consume_all(struct net_session *s, const uint8_t *data, size_t len)
{
	(void)s;
	(void)data;
	return (long)len;
}

static void test_config_and_peer(void)
{
	static const struct net_session_ops both = { .on_recv = consume_all, .on_frame = ignore_frame };
	static const struct net_session_ops neither = { .on_connected = record_connected };
	struct net_runtime *rt = test_runtime(1);
	struct net_server_config cfg = { .host = "127.0.0.1", .session = { .ops = &both } };
	struct net_client_config cc = { .host = "127.0.0.1", .port = 1, .session = { .ops = &both } };
	struct net_server *srv;
	struct net_client *cli;
	char peer[NET_PEER_STRLEN], small[6];
	int fd;

	CHECK(net_server_start(rt, &cfg, &srv) == -EINVAL);
	CHECK(net_client_start(rt, &cc, &cli) == -EINVAL);
	cfg.session.ops = &neither;
	CHECK(net_server_start(rt, &cfg, &srv) == -EINVAL);
	srv = start_echo(rt);
	fd = test_connect(net_server_port(srv));
	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	CHECK(net_session_peer(atomic_load(&seen.session), peer, sizeof(peer)) == peer);
	CHECK(strncmp(peer, "127.0.0.1:", 10) == 0 && strlen(peer) > 10);
	/* Too small: cut, still terminated. */
	net_session_peer(atomic_load(&seen.session), small, sizeof(small));
	CHECK(strcmp(small, "127.0") == 0);
	CHECK(strcmp(NET_SESSION_PEER(atomic_load(&seen.session)), peer) == 0);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* ---- disconnects ---------------------------------------------------------- */

static int reply_then_close(struct net_session *s, const uint8_t *body, size_t len)
{
	static uint8_t big[200000];

	(void)body;
	(void)len;
	memset(big, 'x', sizeof(big));
	CHECK_OK(net_session_send(s, big, sizeof(big)));
	net_session_disconnect(s, NET_REASON_LOCAL);
	/* After disconnect, sends are refused. */
	CHECK(net_session_send(s, "y", 1) == -ENOTCONN);
	return 0;
}

static const struct net_session_ops closer_ops = {
	.on_connected = record_connected,
	.on_frame = reply_then_close,
	.on_disconnected = record_disconnected,
};

static void test_disconnect_server_side_flushes(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &closer_ops };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));

	CHECK(test_write_frame(fd, "bye", 3) == 0);
	/* Everything queued before the disconnect arrives, then EOF. */
	CHECK(test_read_until_eof(fd, 5000) == 200000);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_LOCAL);
	release_seen_session();
	net_runtime_destroy(rt);
}

/*
 * A graceful disconnect with a large queue, while the peer keeps sending:
 * every queued byte arrives, then a clean EOF. Closing both directions (or
 * closing with the peer's bytes unread) made Linux reset the connection
 * and drop most of the queue.
 */
#define GRACEFUL_BYTES (1u << 20)

static int queue_then_close(struct net_session *s, const uint8_t *body, size_t len)
{
	static uint8_t big[GRACEFUL_BYTES];

	(void)body;
	(void)len;
	memset(big, 'g', sizeof(big));
	CHECK_OK(net_session_send(s, big, sizeof(big)));
	net_session_disconnect(s, NET_REASON_LOCAL);
	return 0;
}

static void test_disconnect_while_peer_sends(void)
{
	static const struct net_session_ops ops = {
		.on_connected = record_connected,
		.on_frame = queue_then_close,
		.on_disconnected = record_disconnected,
	};
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &ops, .send_queue_max = 2 * GRACEFUL_BYTES };
	struct net_server *srv = start_server(rt, &sc, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(net_server_port(srv)) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 32 * 1024;

	/* A small receive window keeps most of the queue on the server's
	 * side, where a reset would throw it away. */
	CHECK(fd >= 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, (const void *)&rcvbuf, sizeof(rcvbuf)) == 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(test_write_frame(fd, "bye", 3) == 0);
	test_sleep_ms(100);
	/* A heartbeat that reaches the server after its disconnect began. */
	CHECK(test_write_all(fd, "0123456789", 10) == 0);
	test_sleep_ms(100);
	CHECK(test_read_until_eof(fd, 5000) == (long)GRACEFUL_BYTES);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_LOCAL);
	release_seen_session();
	net_runtime_destroy(rt);
}

static void test_disconnect_client_side(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	int fd = test_connect(net_server_port(srv));
	struct net_session *s;

	WAIT_UNTIL(atomic_load(&seen.connected) == 1, 3000);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_PEER_CLOSED);
	CHECK(net_server_session_count(srv) == 0);
	/* A held reference keeps the object valid; a send to it (posted from
	 * this thread) is dropped and counted, not delivered. */
	s = atomic_load(&seen.session);
	CHECK(!net_session_connected(s));
	CHECK_OK(net_session_send_frame(s, "x", 1));
	WAIT_UNTIL(stats_of(rt).sends_dropped == 1, 3000);
	CHECK(stats_of(rt).sends_dropped == 1);
	release_seen_session();
	net_runtime_destroy(rt);
}

static int count_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	(void)s;
	(void)body;
	(void)len;
	atomic_fetch_add(&seen.frames, 1);
	return 0;
}

/* Data and FIN in one breath: both must arrive, every time (an
 * edge-triggered engine gets one edge for the two). */
static void test_send_then_close(void)
{
	static const struct net_session_ops counter_ops = {
		.on_frame = count_frame,
		.on_disconnected = record_disconnected,
	};
	struct net_runtime *rt = test_runtime(2);
	struct net_session_config sc = { .ops = &counter_ops };
	struct net_server *srv = start_server(rt, &sc, 0);

	for (int i = 0; i < 200; i++) {
		int fd = test_connect(net_server_port(srv));

		CHECK(test_write_frame(fd, "last words", 10) == 0);
		close(fd);
	}
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 200, 10000);
	CHECK(atomic_load(&seen.disconnected) == 200);
	CHECK(atomic_load(&seen.frames) == 200);
	CHECK(stats_of(rt).disconnects[NET_REASON_PEER_CLOSED] == 200);
	net_runtime_destroy(rt);
}

static void test_session_reuse(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	net_session_id first_id = 0;
	char got[8];

	for (int i = 0; i < 20; i++) {
		int fd = test_connect(net_server_port(srv));

		CHECK(test_write_frame(fd, "ping", 4) == 0);
		CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 4);
		if (i == 0)
			first_id = net_session_get_id(atomic_load(&seen.session));
		release_seen_session();
		close(fd);
		WAIT_UNTIL(atomic_load(&seen.disconnected) == i + 1, 3000);
		CHECK(atomic_load(&seen.disconnected) == i + 1);
	}
	/* Sequential connections reuse the same pooled session... */
	CHECK(stats_of(rt).reused >= 19);
	CHECK(stats_of(rt).accepted == 20);
	/* ...and a stale id from the first connection reaches nobody. */
	CHECK_OK(net_send_to(rt, first_id, "late", 4));
	WAIT_UNTIL(stats_of(rt).sends_dropped == 1, 3000);
	CHECK(stats_of(rt).sends_dropped == 1);
	net_runtime_destroy(rt);
}

/* ---- backpressure --------------------------------------------------------- */

static void push_timer(struct net_timer *t, void *arg)
{
	static uint8_t chunk[8192];
	struct net_session *s = arg;

	if (net_session_send(s, chunk, sizeof(chunk)) != 0) {
		net_timer_destroy(t);
		net_session_unref(s);
	}
}

static void start_pushing(struct net_session *s)
{
	struct net_timer *t;

	record_connected(s);
	net_session_ref(s);
	CHECK_OK(net_timer_create(net_session_loop(s), push_timer, s, &t));
	net_timer_start(t, 1, 1);
}

static const struct net_session_ops pusher_ops = {
	.on_connected = start_pushing,
	.on_frame = ignore_frame,
	.on_disconnected = record_disconnected,
};

static void test_slow_consumer_cut_off(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = {
		.ops = &pusher_ops, .send_queue_max = 256 * 1024, .socket_send_buffer = 64 * 1024,
	};
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	struct net_stats st;

	/* This client never reads. */
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 10000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SEND_OVERFLOW);
	st = stats_of(rt);
	CHECK(st.disconnects[NET_REASON_SEND_OVERFLOW] == 1);
	/* Bounded: the queue never grew past the cap. */
	CHECK(st.send_queue_high_water <= 256 * 1024);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

struct flood {
	int fd;
	size_t frames;
};

static void *flood_main(void *arg)
{
	struct flood *f = arg;
	uint8_t body[1000];

	memset(body, 'p', sizeof(body));
	for (size_t i = 0; i < f->frames; i++)
		CHECK(test_write_frame(f->fd, body, sizeof(body)) == 0);
	return NULL;
}

static void test_pause_backpressure(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = {
		.ops = &echo_ops,
		.send_queue_max = 64 * 1024,
		.backpressure = NET_BACKPRESSURE_PAUSE,
	};
	struct net_server *srv = start_server(rt, &sc, 0);
	struct flood f = { test_connect(net_server_port(srv)), 20000 };
	pthread_t writer;
	uint8_t got[1000];

	/* The client writes 20 MB of requests and reads nothing for a while:
	 * the server must stop reading rather than queue the replies. */
	CHECK(pthread_create(&writer, NULL, flood_main, &f) == 0);
	WAIT_UNTIL(stats_of(rt).recv_paused > 0, 5000);
	CHECK(stats_of(rt).recv_paused > 0);
	test_sleep_ms(200);
	CHECK(stats_of(rt).send_queue_high_water <= 64 * 1024);
	CHECK(atomic_load(&seen.disconnected) == 0);
	/* Now it reads: every reply arrives, nothing was dropped. */
	for (size_t i = 0; i < f.frames; i++) {
		CHECK(test_read_frame(f.fd, got, sizeof(got), 10000) == sizeof(got));
		CHECK(got[0] == 'p' && got[999] == 'p');
	}
	pthread_join(writer, NULL);
	CHECK(atomic_load(&seen.disconnected) == 0);
	close(f.fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

/*
 * A PAUSE session whose queue is at its cap while another thread keeps
 * sending to it with net_send_to (a stalled peer server): the first frame
 * that cannot be queued disconnects the session (SEND_OVERFLOW) instead
 * of vanishing, so the peer receives an unbroken prefix of the stream and
 * then EOF, never a stream with a hole in it.
 */
static void test_send_to_overflow_disconnects(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_session_config sc = {
		.ops = &echo_ops,
		.send_queue_max = 64 * 1024,
		.socket_send_buffer = 16 * 1024,
		.backpressure = NET_BACKPRESSURE_PAUSE,
	};
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0), rcvbuf = 16 * 1024;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(net_server_port(srv)) };
	uint32_t body[256] = { 0 }, sent = 0, next = 0;
	net_session_id id;

	CHECK(fd >= 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, (const void *)&rcvbuf, sizeof(rcvbuf)) == 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	id = net_session_get_id(atomic_load(&seen.session));
	/* The peer does not read: far more than the cap, from this thread. */
	for (; sent < 2000 && atomic_load(&seen.disconnected) == 0; sent++) {
		int err;

		body[0] = sent;
		err = net_send_to(rt, id, body, sizeof(body));
		if (err)
			break;
		test_sleep_ms(sent % 64 == 0);
	}
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 5000);
	CHECK(atomic_load(&seen.disconnected) == 1);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SEND_OVERFLOW);
	CHECK(stats_of(rt).disconnects[NET_REASON_SEND_OVERFLOW] == 1);
	/* What arrived is every frame up to the overflow, in order. */
	for (;;) {
		long n = test_read_frame(fd, body, sizeof(body), 3000);

		if (n < 0)
			break;
		CHECK(n == sizeof(body) && body[0] == next);
		next++;
	}
	CHECK(next > 0 && next < sent);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* ---- limits ------------------------------------------------------------------ */

static void test_idle_timeout(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &echo_ops, .idle_timeout_ms = 150 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	char got[4];

	/* Traffic keeps it alive past the timeout... */
	for (int i = 0; i < 5; i++) {
		test_sleep_ms(60);
		CHECK(test_write_frame(fd, "beat", 4) == 0);
		CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 4);
	}
	CHECK(atomic_load(&seen.disconnected) == 0);
	/* ...silence ends it. */
	CHECK(test_read_until_eof(fd, 3000) == 0);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_IDLE_TIMEOUT);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* A slowloris: a frame begun and trickled a byte at a time. Each byte
 * defeats an idle timeout; the partial-frame deadline does not care. */
static void test_frame_timeout(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = {
		.ops = &echo_ops, .idle_timeout_ms = 1000, .frame_timeout_ms = 300,
	};
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	uint8_t frame[10 + 100];
	size_t n = net_varint_encode(100, frame);
	unsigned long long start;
	char got[4];

	/* Whole frames sent slowly are fine. */
	for (int i = 0; i < 3; i++) {
		test_sleep_ms(150);
		CHECK(test_write_frame(fd, "slow", 4) == 0);
		CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 4);
	}
	memset(frame + n, 's', 100);
	start = test_now_ms();
	for (size_t i = 0; i < n + 100 && test_now_ms() - start < 3000; i++) {
		if (test_write_all(fd, frame + i, 1) < 0 || test_peer_closed(fd))
			break;
		test_sleep_ms(50);
	}
	CHECK(test_read_until_eof(fd, 3000) >= 0);
	/* Cut near the deadline, long before the idle timeout could. */
	CHECK(test_now_ms() - start < 900);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_FRAME_TIMEOUT);
	release_seen_session();
	net_runtime_destroy(rt);
}

/* A socket connected from a chosen loopback address. */
static int connect_from(const char *src, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK(inet_pton(AF_INET, src, &sa.sin_addr) == 1);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	return fd;
}

static bool echoes(int fd)
{
	char got[2];

	return test_write_frame(fd, "hi", 2) == 0 && test_read_frame(fd, got, 2, 3000) == 2;
}

#ifndef _WIN32
/*
 * A send of 4 GiB or more (possible with send_queue_max that high) is
 * refused with -EMSGSIZE on every path, rather than queued with its size
 * cut to 32 bits. The bytes are a read-only mapping of zero pages, so the
 * case costs no memory once the check is there.
 */
#define HUGE_SEND ((size_t)1 << 32)
static const uint8_t *huge;
static atomic_int huge_checked;

static void huge_connected(struct net_session *s)
{
	int err = 0;

	record_connected(s);
	CHECK(net_session_send(s, huge, HUGE_SEND) == -EMSGSIZE);
	CHECK(net_session_send_frame(s, huge, HUGE_SEND - 2) == -EMSGSIZE);
	CHECK(net_session_reserve_frame(s, HUGE_SEND, &err) == NULL && err == -EMSGSIZE);
	CHECK(net_send_to(net_loop_runtime(net_session_loop(s)), net_session_get_id(s), huge,
			  HUGE_SEND) == -EMSGSIZE);
	/* Refused, not queued: the session still works. */
	CHECK(net_session_send_queued(s) == 0 && net_session_connected(s));
	atomic_store(&huge_checked, 1);
}

static void test_send_too_large(void)
{
	static const struct net_session_ops ops = {
		.on_connected = huge_connected,
		.on_frame = echo_frame,
		.on_disconnected = record_disconnected,
	};
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &ops, .send_queue_max = SIZE_MAX / 2 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd;

	huge = mmap(NULL, HUGE_SEND + 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(huge != MAP_FAILED);
	fd = test_connect(net_server_port(srv));
	WAIT_UNTIL(atomic_load(&huge_checked), 5000);
	CHECK(atomic_load(&huge_checked));
	/* From another thread too. */
	CHECK(net_session_send(atomic_load(&seen.session), huge, HUGE_SEND) == -EMSGSIZE);
	CHECK(echoes(fd));
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
	munmap((void *)huge, HUGE_SEND + 16);
}
#else
#define test_send_too_large not_on_windows
#endif

static void test_per_address_limits(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_server_config cfg = {
		.host = "127.0.0.1",
		.max_sessions_per_addr = 2,
		.accepts_per_addr_per_sec = 4,
		.session = { .ops = &echo_ops },
	};
	struct net_server *srv;
	int a, b, c, d, e;
	uint16_t port;

	CHECK_OK(net_server_start(rt, &cfg, &srv));
	port = net_server_port(srv);
	/* Two live sessions per host... */
	a = connect_from("127.0.0.2", port);
	b = connect_from("127.0.0.2", port);
	CHECK(echoes(a) && echoes(b));
	c = connect_from("127.0.0.2", port);
	CHECK(test_read_until_eof(c, 3000) == 0);
	CHECK(stats_of(rt).rejected_addr == 1);
	/* ...another host is not affected... */
	d = connect_from("127.0.0.3", port);
	CHECK(echoes(d));
	/* ...and a slot freed is a slot offered again. */
	close(a);
	WAIT_UNTIL(net_server_session_count(srv) == 2, 3000);
	test_sleep_ms(300); /* a token back (4/s) */
	e = connect_from("127.0.0.2", port);
	CHECK(echoes(e));
	close(b);
	close(c);
	close(d);
	close(e);
	WAIT_UNTIL(net_server_session_count(srv) == 0, 3000);
	/* A burst from one host: 4 tokens, the rest refused. */
	{
		int fds[10], served = 0;
		uint64_t before = stats_of(rt).rejected_addr;

		test_sleep_ms(1100); /* the bucket refills */
		for (int i = 0; i < 10; i++)
			fds[i] = connect_from("127.0.0.4", port);
		for (int i = 0; i < 10; i++) {
			served += echoes(fds[i]);
			close(fds[i]);
		}
		/* 2 at a time may live; the burst is held to the bucket. */
		CHECK(served >= 1 && served <= 4);
		CHECK(stats_of(rt).rejected_addr - before >= 6);
	}
	release_seen_session();
	net_runtime_destroy(rt);
}

static void test_max_sessions(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_session_config sc = { .ops = &echo_ops };
	struct net_server *srv = start_server(rt, &sc, 2);
	int a = test_connect(net_server_port(srv));
	int b = test_connect(net_server_port(srv));
	int c;

	WAIT_UNTIL(atomic_load(&seen.connected) == 2, 3000);
	release_seen_session();
	c = test_connect(net_server_port(srv));
	CHECK(test_read_until_eof(c, 3000) == 0);
	CHECK(stats_of(rt).rejected == 1);
	CHECK(net_server_session_count(srv) == 2);
	close(c);
	/* A slot freed is a slot offered again. */
	close(a);
	WAIT_UNTIL(net_server_session_count(srv) == 1, 3000);
	WAIT_UNTIL(stats_of(rt).rejected == 1 && atomic_load(&seen.disconnected) == 1, 3000);
	c = test_connect(net_server_port(srv));
	CHECK(test_write_frame(c, "ok", 2) == 0);
	{
		char got[2];

		CHECK(test_read_frame(c, got, sizeof(got), 3000) == 2);
	}
	close(b);
	close(c);
	release_seen_session();
	net_runtime_destroy(rt);
}

#ifndef _WIN32
/*
 * Out of descriptors: accepts fail with EMFILE. The listener must back off
 * (a handful of retries, not a spinning loop) and take the waiting
 * connections once descriptors are free again.
 */
static void test_accept_emfile(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	struct rlimit lim;
	int fds[6], *filler, fillers = 0;
	uint64_t errors;
	char got[4];

	/* Fill the descriptor table up to its limit (io_uring takes the limit
	 * when an accept is armed, so the limit itself must not move), then
	 * free two slots: two accepts fit, the rest fail with EMFILE. The
	 * clients' sockets exist first; connect() needs no descriptor. */
	for (int i = 0; i < 6; i++)
		CHECK((fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	CHECK(getrlimit(RLIMIT_NOFILE, &lim) == 0);
	CHECK((filler = malloc(sizeof(*filler) * lim.rlim_cur)) != NULL);
	while ((filler[fillers] = dup(fds[0])) >= 0)
		fillers++;
	CHECK(errno == EMFILE && fillers > 2);
	close(filler[--fillers]);
	close(filler[--fillers]);
	for (int i = 0; i < 6; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(net_server_port(srv)) };

		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		CHECK(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) == 0);
	}
	WAIT_UNTIL(stats_of(rt).accept_errors > 0, 3000);
	errors = stats_of(rt).accept_errors;
	CHECK(errors > 0);
	test_sleep_ms(500);
	/* ~100 ms between retries: a few more errors, not thousands. */
	CHECK(stats_of(rt).accept_errors - errors <= 10);
	CHECK(stats_of(rt).accepted == 2);
	while (fillers > 0)
		close(filler[--fillers]);
	free(filler);
	/* Every waiting client is served once descriptors are back. */
	for (int i = 0; i < 6; i++) {
		CHECK(test_write_frame(fds[i], "emfi", 4) == 0);
		CHECK(test_read_frame(fds[i], got, sizeof(got), 5000) == 4);
		close(fds[i]);
	}
	CHECK(stats_of(rt).accepted == 6);
	release_seen_session();
	net_runtime_destroy(rt);
}
#endif /* !_WIN32 */

static void test_runtime_stop_drains(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_server *srv = start_echo(rt);
	int fds[10];

	for (int i = 0; i < 10; i++)
		fds[i] = test_connect(net_server_port(srv));
	WAIT_UNTIL(atomic_load(&seen.connected) == 10, 3000);
	release_seen_session();
	net_runtime_stop(rt);
	CHECK(atomic_load(&seen.disconnected) == 10);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SHUTDOWN);
	for (int i = 0; i < 10; i++) {
		CHECK(test_read_until_eof(fds[i], 3000) == 0);
		close(fds[i]);
	}
	net_runtime_destroy(rt);
}

/*
 * A server started while the runtime drains (here: a session still
 * flushing to a peer that does not read) must not keep the stop waiting:
 * it either fails with -NET_ESHUTDOWN or never listens.
 */
static void queue_big_reply(struct net_session *s)
{
	static uint8_t big[4 << 20];

	record_connected(s);
	CHECK_OK(net_session_send(s, big, sizeof(big)));
}

static const struct net_session_ops big_reply_ops = {
	.on_connected = queue_big_reply,
	.on_frame = ignore_frame,
	.on_disconnected = record_disconnected,
};

static atomic_bool stop_returned;

static void *stop_main(void *arg)
{
	net_runtime_stop(arg);
	atomic_store(&stop_returned, true);
	return NULL;
}

static void test_server_start_while_stopping(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = {
		.ops = &big_reply_ops,
		.send_queue_max = 8u << 20,
		.socket_send_buffer = 64 * 1024,
		.flush_timeout_ms = 1500,
	};
	struct net_server *srv = start_server(rt, &sc, 0), *late;
	struct net_server_config late_cfg = { .host = "127.0.0.1", .session = { .ops = &echo_ops } };
	int fd = test_connect(net_server_port(srv));
	pthread_t stopper;
	int err;

	/* The peer never reads: the stop waits for the flush deadline. */
	WAIT_UNTIL(atomic_load(&seen.connected) == 1, 3000);
	release_seen_session();
	CHECK(pthread_create(&stopper, NULL, stop_main, rt) == 0);
	test_sleep_ms(300);
	CHECK(!atomic_load(&stop_returned));
	err = net_server_start(rt, &late_cfg, &late);
	CHECK(err == 0 || err == -NET_ESHUTDOWN);
	WAIT_UNTIL(atomic_load(&stop_returned), 6000);
	CHECK(atomic_load(&stop_returned));
	pthread_join(stopper, NULL);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SHUTDOWN);
	close(fd);
	net_runtime_destroy(rt);
}

/* ---- engine choice ----------------------------------------------------------- */

#ifndef _WIN32

/* Make io_uring_setup fail with EPERM in this process, as a container's
 * seccomp profile or kernel.io_uring_disabled=2 would. */
static void forbid_io_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

static void test_engine_fallback(void)
{
	struct net_runtime_config forced = { .loops = 1, .engine = "uring" };
	struct net_runtime_config bogus = { .loops = 1, .engine = "bogus" };
	struct net_runtime *rt;

	CHECK(net_runtime_create(&bogus, &rt) == -EINVAL);
	forbid_io_uring();
	/* Forced by name, a broken engine is an error, not a quiet switch. */
	CHECK(net_runtime_create(&forced, &rt) == -ENOTSUP);
	/* Left to choose, libnet falls back to epoll and still works. */
	unsetenv("RINGGATE_ENGINE");
	rt = test_runtime(1);
	CHECK(strcmp(net_runtime_engine(rt), "epoll") == 0);
	net_runtime_destroy(rt);
	test_echo_pingpong();
}
#else
/* Linux mechanisms (RLIMIT_NOFILE, seccomp against io_uring) with no
 * Windows counterpart: these cases are skipped there. */
static void not_on_windows(void)
{
	fprintf(stderr, "a Linux-only case: skipped on Windows\n");
	exit(77);
}
#define test_accept_emfile not_on_windows
#define test_engine_fallback not_on_windows
#endif /* !_WIN32 */

#ifdef _WIN32
/*
 * IOCP socket reuse (issue 7): a client that, after each echo, hangs up or
 * has the server hang up (in turns: the engine reuses a socket only on the
 * side that did not close first), and redials at once, so sockets are
 * disconnected and needed again all the time. Where the engine's self-test found reuse
 * working (real Windows), DisconnectEx'd sockets go back to ConnectEx and
 * AcceptEx; where it did not (Wine), no socket is reused and every one is
 * new: that fallback is what this checks there. Every echo is exact.
 */
#define REUSE_ROUNDS 30
static atomic_int reuse_echoes;

static void reuse_connected(struct net_session *s)
{
	CHECK_OK(net_session_send_frame(s, hello, sizeof(hello) - 1));
}

static const char bye[] = "bye";

static int reuse_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	if (len != sizeof(hello) - 1 || memcmp(body, hello, len) != 0)
		return -EPROTO;
	if (atomic_fetch_add(&reuse_echoes, 1) % 2)
		return net_session_send_frame(s, bye, sizeof(bye) - 1);
	net_session_disconnect(s, NET_REASON_LOCAL);
	return 0;
}

static const struct net_session_ops reuse_ops = {
	.on_connected = reuse_connected,
	.on_frame = reuse_frame,
};

/* The server side: echo, and hang up when asked to. */
static int echo_or_hang_up(struct net_session *s, const uint8_t *body, size_t len)
{
	if (len == sizeof(bye) - 1 && memcmp(body, bye, len) == 0) {
		net_session_disconnect(s, NET_REASON_LOCAL);
		return 0;
	}
	return net_session_send_frame(s, body, len);
}

static const struct net_session_ops hang_up_ops = { .on_frame = echo_or_hang_up };

/* A client on `loops` loops whose connections end after each echo and
 * redial, against a server on the same runtime; the counters afterwards. */
static struct net_iocp_counters hangup_rounds(unsigned loops)
{
	struct net_runtime *rt = test_runtime(loops);
	struct net_session_config sc = { .ops = &hang_up_ops };
	struct net_server *srv = start_server(rt, &sc, 0);
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.port = net_server_port(srv),
		.sessions = loops,
		.backoff_min_ms = 1,
		.backoff_max_ms = 2,
		.session = { .ops = &reuse_ops },
	};
	struct net_client *cli;
	struct net_iocp_counters c;

	CHECK_OK(net_client_start(rt, &cc, &cli));
	WAIT_UNTIL(atomic_load(&reuse_echoes) >= REUSE_ROUNDS, 20000);
	CHECK(atomic_load(&reuse_echoes) >= REUSE_ROUNDS);
	net_runtime_destroy(rt);
	net_iocp_counters(&c);
	fprintf(stderr,
		"reuse works: accept %d connect %d; accepts fresh %llu reused %llu; connects "
		"fresh %llu reused %llu; DisconnectEx %llu; shutdown+close %llu; fallbacks %llu\n",
		c.accept_reuse_works, c.connect_reuse_works, (unsigned long long)c.accept_fresh,
		(unsigned long long)c.accept_reused, (unsigned long long)c.connect_fresh,
		(unsigned long long)c.connect_reused, (unsigned long long)c.disconnect_reuse,
		(unsigned long long)c.shutdown_close, (unsigned long long)c.reuse_fallbacks);
	CHECK(c.accept_fresh + c.accept_reused >= REUSE_ROUNDS);
	CHECK(c.connect_fresh + c.connect_reused >= REUSE_ROUNDS);
	return c;
}

/* The self-test's verdict holds: reuse where it works, none where not. */
static void iocp_socket_reuse(void)
{
	struct net_iocp_counters c = hangup_rounds(1);

	CHECK(c.connect_reuse_works ? c.connect_reused > 0 : c.connect_reused == 0);
	CHECK(c.accept_reuse_works ? c.accept_reused > 0 : c.accept_reused == 0);
	CHECK(c.reuse_fallbacks == 0);
	if (!c.connect_reuse_works && !c.accept_reuse_works)
		CHECK(c.disconnect_reuse == 0 && c.shutdown_close >= 2 * REUSE_ROUNDS);
}

/*
 * The run-time fallback: RINGGATE_IOCP_REUSE=on skips the self-test, so
 * dialed sockets are DisconnectEx'd, pooled and handed to the next
 * ConnectEx. On Wine that ConnectEx is refused (WSAEISCONN): the engine
 * must turn connect reuse off and dial on a new socket, losing no
 * connection. On Windows the reused sockets just connect. Two loops keep
 * accepted sockets out of reuse (the core deals them to other loops).
 */
static void iocp_reuse_fallback(void)
{
	struct net_iocp_counters c;

	CHECK(putenv("RINGGATE_IOCP_REUSE=on") == 0);
	c = hangup_rounds(2);
	CHECK(c.disconnect_reuse > 0 && c.accept_reused == 0);
	if (c.reuse_fallbacks) {
		/* At most one per loop: each may have taken a socket before the
		 * first refusal turned reuse off. */
		CHECK(c.reuse_fallbacks <= 2 && !c.connect_reuse_works);
	} else {
		CHECK(c.connect_reused > 0 && c.connect_reuse_works);
	}
}
#endif /* _WIN32 */

/* ---- the table ----------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "frame_parse", test_frame_parse },
	{ "timers", test_timers },
	{ "timer_ties", test_timer_ties },
	{ "timer_zero_rearm", test_timer_zero_rearm },
	{ "echo_pingpong", test_echo_pingpong },
	{ "split_and_batched_frames", test_split_and_batched_frames },
	{ "oversize_frame", test_oversize_frame },
	{ "bad_varint", test_bad_varint },
	{ "send_order_threads", test_send_order_threads },
	{ "tiny_ring", test_tiny_ring },
	{ "config_and_peer", test_config_and_peer },
	{ "post_queue_bound", test_post_queue_bound },
	{ "connect_timeout_race", test_connect_timeout_race },
	{ "reconnect_backoff", test_reconnect_backoff },
	{ "disconnect_server_side_flushes", test_disconnect_server_side_flushes },
	{ "disconnect_while_peer_sends", test_disconnect_while_peer_sends },
	{ "disconnect_client_side", test_disconnect_client_side },
	{ "send_then_close", test_send_then_close },
	{ "session_reuse", test_session_reuse },
	{ "slow_consumer_cut_off", test_slow_consumer_cut_off },
	{ "pause_backpressure", test_pause_backpressure },
	{ "send_to_overflow_disconnects", test_send_to_overflow_disconnects },
	{ "send_too_large", test_send_too_large },
	{ "idle_timeout", test_idle_timeout },
	{ "max_sessions", test_max_sessions },
	{ "frame_timeout", test_frame_timeout },
	{ "per_address_limits", test_per_address_limits },
	{ "accept_emfile", test_accept_emfile },
	{ "runtime_stop_drains", test_runtime_stop_drains },
	{ "server_start_while_stopping", test_server_start_while_stopping },
	{ "engine_fallback", test_engine_fallback },
#ifdef _WIN32
	/* Registered by CMakeLists.txt on Windows only (it scans for test_*). */
	{ "iocp_socket_reuse", iocp_socket_reuse },
	{ "iocp_reuse_fallback", iocp_reuse_fallback },
#endif
};

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	for (size_t i = 0; argc == 2 && i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strcmp(argv[1], cases[i].name) == 0) {
			cases[i].run();
			printf("%s: passed\n", cases[i].name);
			return 0;
		}
	}
	fprintf(stderr, "usage: libnet_tests --list | <case>\n");
	return 2;
}
