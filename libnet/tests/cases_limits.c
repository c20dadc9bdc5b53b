/*
 * libnet tests. Limits: idle and partial-frame deadlines, 4 GiB sends,
 * per-address and total session limits, EMFILE.
 */
#include "cases.h"

#ifndef _WIN32
#include <sys/mman.h>
#include <sys/resource.h>
#endif

void test_idle_timeout(void)
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
void test_frame_timeout(void)
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

void test_send_too_large(void)
{
	static const struct net_session_ops ops = {
		.on_connected = huge_connected,
		.on_frame = echo_frame,
		.on_disconnected = record_disconnected,
	};
	struct net_session_config sc = { .ops = &ops, .send_queue_max = SIZE_MAX / 2 };
	struct net_runtime *rt;
	struct net_server *srv;
	int fd;

	/* Mapped before the loop thread starts, which then reads it. */
	huge = mmap(NULL, HUGE_SEND + 16, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(huge != MAP_FAILED);
	rt = test_runtime(1);
	srv = start_server(rt, &sc, 0);
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
#endif /* !_WIN32 */

void test_per_address_limits(void)
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

void test_max_sessions(void)
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
void test_accept_emfile(void)
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
