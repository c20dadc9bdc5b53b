/*
 * libnet tests. Backpressure: a slow consumer cut off, PAUSE, and cross-
 * thread sends that meet the cap.
 */
#include "cases.h"

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

void test_slow_consumer_cut_off(void)
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

void test_pause_backpressure(void)
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
void test_send_to_overflow_disconnects(void)
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
