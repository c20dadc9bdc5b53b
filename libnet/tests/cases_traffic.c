/*
 * libnet tests. Traffic: the seeds' echo ping-pong, ordered sends from
 * many threads, a tiny io_uring ring, and the bound on cross-thread posts.
 */
#include "cases.h"

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

void test_echo_pingpong(void)
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

void test_send_order_threads(void)
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
 * A frame sealer sees every frame of its session once, in the order the
 * frames enter the send queue, whichever thread sent them: the test's
 * sealer flips the body's bits and appends a per-session counter, and the
 * reader finds the counters 0, 1, 2, ... with frames of two sending
 * threads (send_order_threads' senders: net_send_to, net_session_send_frame)
 * and of the loop (echoes) interleaved. Raw bytes would bypass the seal: refused, and a posted one
 * ends the session.
 */
#define SEALED_ECHOES 100

static void test_seal(struct net_session *s, uint8_t *out, const uint8_t *body, size_t len)
{
	uint32_t *counter = net_session_user(s);

	for (size_t i = 0; i < len; i++)
		out[i] = body[i] ^ 0xa5;
	memcpy(out + len, counter, sizeof(*counter));
	(*counter)++;
}

static const struct net_frame_sealer test_sealer = { .overhead = 4, .seal = test_seal };

static void sealed_connected(struct net_session *s)
{
	record_connected(s);
	net_session_set_sealer(s, &test_sealer);
	/* On the loop a raw send is refused at once, nothing queued. */
	CHECK(net_session_send(s, "raw", 3) == -EPERM);
}

static const struct net_session_ops sealed_ops = {
	.on_connected = sealed_connected,
	.on_frame = echo_frame,
	.on_disconnected = record_disconnected,
};

void test_frame_sealer(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_session_config sc = { .ops = &sealed_ops, .user_size = sizeof(uint32_t),
					 .send_queue_max = 16u << 20 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	struct sender senders[2];
	pthread_t threads[2];
	uint32_t next[2] = { 0 }, echoes = 0;
	uint8_t got[64];
	uint32_t body[8];

	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	for (int i = 0; i < 2; i++) {
		senders[i] = (struct sender){ rt, atomic_load(&seen.session), i };
		CHECK(pthread_create(&threads[i], NULL, sender_main, &senders[i]) == 0);
	}
	for (uint32_t i = 0; i < SEALED_ECHOES; i++) {
		uint8_t frame[8] = { 3, 'e', 'c', (uint8_t)i };

		CHECK(test_write_all(fd, frame, 4) == 0);
	}
	for (uint32_t n = 0; n < 2 * SENDS_PER_THREAD + SEALED_ECHOES; n++) {
		long len = test_read_frame(fd, got, sizeof(got), 10000);
		uint32_t counter;

		CHECK(len >= 4);
		memcpy(&counter, got + len - 4, sizeof(counter));
		CHECK(counter == n); /* the wire order is the seal order */
		for (long k = 0; k < len - 4; k++)
			got[k] ^= 0xa5;
		if (len - 4 == 3) { /* an echo, sealed on the loop */
			CHECK(got[0] == 'e' && got[1] == 'c' && got[2] == (uint8_t)echoes);
			echoes++;
			continue;
		}
		CHECK(len - 4 == sizeof(body));
		memcpy(body, got, sizeof(body));
		CHECK(body[0] < 2 && body[1] == next[body[0]]);
		CHECK(body[7] == body[1] * 31u + 7u);
		next[body[0]]++;
	}
	CHECK(echoes == SEALED_ECHOES);
	for (int i = 0; i < 2; i++)
		pthread_join(threads[i], NULL);
	/* From another thread a raw send is posted; on the loop it would go
	 * out unsealed, so the session is ended instead. */
	CHECK_OK(net_session_send(atomic_load(&seen.session), "raw", 3));
	CHECK(test_read_frame(fd, got, sizeof(got), 5000) < 0);
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

void test_tiny_ring(void)
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

void test_post_queue_bound(void)
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
	/* A control message still goes through the full queue. */
	CHECK_OK(net_loop_post_control(loop, nothing, NULL));
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

/*
 * One connection's ping-pong: every echo arrives, in order. On epoll the
 * echo a loop turn queues is sent at the start of the next run(), without
 * a zero-timeout epoll_wait before it: one wait per round trip, plus
 * stray wake-ups. An engine that waits again before each send makes two
 * per trip (599 for 300 before this was fixed), which the bound refuses.
 */
#define WAIT_TRIPS 300

void test_pingpong_waits(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	int fd = test_connect(net_server_port(srv));
	uint64_t waits0;
	uint8_t frame[17], body[16];

	WAIT_UNTIL(atomic_load(&seen.session) != NULL, 3000);
	CHECK(atomic_load(&seen.session) != NULL);
	test_sleep_ms(50); /* let the accept's turns settle */
	waits0 = stats_of(rt).waits;
	for (uint32_t i = 0; i < WAIT_TRIPS; i++) {
		/* Header and body in one write: one receive per trip. */
		frame[0] = sizeof(body);
		for (size_t k = 0; k < sizeof(body); k++)
			frame[1 + k] = (uint8_t)(i * 7 + k);
		CHECK(test_write_all(fd, frame, sizeof(frame)) == 0);
		CHECK(test_read_frame(fd, body, sizeof(body), 5000) == sizeof(body));
		CHECK(memcmp(body, frame + 1, sizeof(body)) == 0);
	}
	if (strcmp(net_runtime_engine(rt), "epoll") == 0) {
		uint64_t waits = stats_of(rt).waits - waits0;

		printf("epoll_wait calls for %d round trips: %llu\n", WAIT_TRIPS,
		       (unsigned long long)waits);
		CHECK(waits < WAIT_TRIPS * 3 / 2);
	}
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}
