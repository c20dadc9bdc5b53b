/*
 * libnet tests. Windows only: IOCP socket reuse and its run-time fallback.
 */
#include "cases.h"

#ifdef _WIN32
#include <net/net_iocp.h>
#endif

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
static const char hello[] = "Hello World!";
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
void test_iocp_socket_reuse(void)
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
void test_iocp_reuse_fallback(void)
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
