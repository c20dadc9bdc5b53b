/* Helpers for libnet's tests: a runtime on the chosen engine, a blocking
 * socket peer for the side of a test that is not libnet, and the
 * server-side callbacks most cases share (cases.h). */
#include "cases.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

void test_sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

unsigned long long test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
}

struct net_runtime *test_runtime(unsigned loops)
{
	struct net_runtime_config cfg = { .loops = loops };

	return test_runtime_cfg(&cfg);
}

struct net_runtime *test_runtime_cfg(const struct net_runtime_config *want)
{
	struct net_runtime_config cfg = *want;
	struct net_runtime *rt;
	int err;

	cfg.engine = NULL; /* RINGGATE_ENGINE decides */
	err = net_runtime_create(&cfg, &rt);

	if (err == -ENOTSUP) {
		fprintf(stderr, "engine %s not usable here: skipped\n", getenv("RINGGATE_ENGINE"));
		exit(TEST_SKIP);
	}
	CHECK_OK(err);
	CHECK_OK(net_runtime_start(rt));
	fprintf(stderr, "engine: %s, loops: %u\n", net_runtime_engine(rt), net_runtime_loop_count(rt));
	return rt;
}

int test_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, (const void *)&one, sizeof(one));
	return fd;
}

int test_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int wait_readable(int fd, unsigned long long deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned long long now = test_now_ms();

	if (now >= deadline)
		return -1;
	return poll(&pfd, 1, (int)(deadline - now)) == 1 ? 0 : -1;
}

int test_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms)
{
	unsigned long long deadline = test_now_ms() + timeout_ms;
	char *p = buf;

	while (len) {
		ssize_t n;

		if (wait_readable(fd, deadline) < 0)
			return -1;
		n = recv(fd, p, len, 0);
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

long test_read_until_eof(int fd, unsigned timeout_ms)
{
	unsigned long long deadline = test_now_ms() + timeout_ms;
	char buf[65536];
	long total = 0;

	for (;;) {
		ssize_t n;

		if (wait_readable(fd, deadline) < 0)
			return -1;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return total;
		total += n;
	}
}

bool test_peer_closed(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&pfd, 1, 0) == 1 && recv(fd, &c, 1, MSG_PEEK) == 0;
}

int test_write_frame(int fd, const void *body, size_t len)
{
	uint8_t hdr[10];
	size_t hdr_len = net_varint_encode(len, hdr);

	if (test_write_all(fd, hdr, hdr_len) < 0)
		return -1;
	return test_write_all(fd, body, len);
}

long test_read_frame(int fd, void *buf, size_t cap, unsigned timeout_ms)
{
	uint8_t hdr[NET_VARINT_MAX];
	size_t have = 0, hdr_len, body_len;

	for (;;) {
		int rc;

		if (have == sizeof(hdr) || test_read_exact(fd, hdr + have, 1, timeout_ms) < 0)
			return -1;
		have++;
		rc = net_frame_parse(hdr, have, cap, &hdr_len, &body_len);
		if (rc < 0)
			return -1;
		if (rc == 1)
			break;
	}
	if (test_read_exact(fd, buf, body_len, timeout_ms) < 0)
		return -1;
	return (long)body_len;
}

/* ---- what the cases share (cases.h) ------------------------------------------ */

struct test_seen seen;

void record_connected(struct net_session *s)
{
	net_session_ref(s);
	atomic_store(&seen.session, s);
	atomic_fetch_add(&seen.connected, 1);
}

void record_disconnected(struct net_session *s, enum net_reason reason)
{
	(void)s;
	atomic_store(&seen.last_reason, reason);
	atomic_fetch_add(&seen.disconnected, 1);
}

int echo_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	atomic_fetch_add(&seen.frames, 1);
	return net_session_send_frame(s, body, len);
}

const struct net_session_ops echo_ops = {
	.on_connected = record_connected,
	.on_frame = echo_frame,
	.on_disconnected = record_disconnected,
};

struct net_server *start_server(struct net_runtime *rt, const struct net_session_config *sc,
				unsigned max_sessions)
{
	struct net_server_config cfg = { .host = "127.0.0.1", .max_sessions = max_sessions };
	struct net_server *srv;

	cfg.session = *sc;
	CHECK_OK(net_server_start(rt, &cfg, &srv));
	return srv;
}

struct net_server *start_echo(struct net_runtime *rt)
{
	struct net_session_config sc = { .ops = &echo_ops };

	return start_server(rt, &sc, 0);
}

void release_seen_session(void)
{
	struct net_session *s = atomic_exchange(&seen.session, NULL);

	if (s)
		net_session_unref(s);
}

struct net_stats stats_of(struct net_runtime *rt)
{
	struct net_stats st;

	net_runtime_stats(rt, &st);
	return st;
}

int ignore_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	(void)s;
	(void)body;
	(void)len;
	return 0;
}
