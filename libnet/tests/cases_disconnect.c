/*
 * libnet tests. Disconnects: flushing, the graceful close while the peer
 * sends, the abortive close, peer closes, session reuse.
 */
#include "cases.h"

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

void test_disconnect_server_side_flushes(void)
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

/* How queue_then_close closes: gracefully, or net_session_abort. */
static void (*close_queued)(struct net_session *, enum net_reason) = net_session_disconnect;

static int queue_then_close(struct net_session *s, const uint8_t *body, size_t len)
{
	static uint8_t big[GRACEFUL_BYTES];

	(void)body;
	(void)len;
	memset(big, 'g', sizeof(big));
	CHECK_OK(net_session_send(s, big, sizeof(big)));
	close_queued(s, NET_REASON_LOCAL);
	return 0;
}

void test_disconnect_while_peer_sends(void)
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

/*
 * net_session_abort, for a peer judged dead: with a queue the peer does
 * not read and an EOF it never sends, the session still closes at once,
 * not at the flush deadline (10 s here) that a graceful close waits for.
 */
void test_abort_skips_flush(void)
{
	static const struct net_session_ops ops = {
		.on_connected = record_connected,
		.on_frame = queue_then_close,
		.on_disconnected = record_disconnected,
	};
	struct net_session_config sc = { .ops = &ops, .send_queue_max = 2 * GRACEFUL_BYTES,
					 .flush_timeout_ms = 10000 };
	struct net_runtime *rt;
	struct net_server *srv;
	unsigned long long t0;
	int fd;

	close_queued = net_session_abort; /* before the loop thread starts */
	rt = test_runtime(1);
	srv = start_server(rt, &sc, 0);
	fd = test_connect(net_server_port(srv));
	t0 = test_now_ms();
	CHECK(test_write_frame(fd, "bye", 3) == 0);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 8000);
	CHECK(atomic_load(&seen.disconnected) == 1);
	CHECK(test_now_ms() - t0 < 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_LOCAL);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

void test_disconnect_client_side(void)
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
void test_send_then_close(void)
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

void test_session_reuse(void)
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
