/*
 * libnet tests. Dialing: backoff and redial, the connect-timeout race, and
 * config checks.
 */
#include "cases.h"

static atomic_int dialed;

static void dial_connected(struct net_session *s)
{
	(void)s;
	atomic_fetch_add(&dialed, 1);
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

void test_reconnect_backoff(void)
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

void test_connect_timeout_race(void)
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

void test_config_and_peer(void)
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
