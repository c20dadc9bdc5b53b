/*
 * test_admin.c: the admin HTTP server (rg/admin.h) against a plain socket
 * client on loopback: what each kind of request gets, and libnet's figures
 * moving with traffic. Each case is one CTest test: `test_admin <case>`.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "rg/admin.h"
#include "rg/metrics.h"

struct fixture {
	struct rg_metrics *metrics;
	struct rg_admin *admin;
};

static void start(struct fixture *f)
{
	struct rg_admin_config cfg = { .host = "127.0.0.1", .port = 0 };

	f->metrics = rg_metrics_create();
	CHECK(f->metrics);
	rg_counter_add(rg_metrics_counter(f->metrics, "demo_total", NULL, "A demo"), 42);
	cfg.metrics = f->metrics;
	CHECK(rg_admin_start(&cfg, &f->admin) == 0);
	CHECK(rg_admin_port(f->admin) != 0);
}

static void stop(struct fixture *f)
{
	rg_admin_stop(f->admin);
	rg_metrics_destroy(f->metrics);
}

/* Connect to 127.0.0.1:port from loopback address `from` (127.0.0.x). */
static int dial_from(uint16_t port, uint32_t from)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(from) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	CHECK(bind(fd, (struct sockaddr *)&src, sizeof(src)) == 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	/* A bound on every read: a server that never answers fails the case. */
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	return fd;
}

static int dial(uint16_t port)
{
	return dial_from(port, INADDR_LOOPBACK);
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n > 0);
		data += n;
		len -= (size_t)n;
	}
}

/* Read until the server closes; returns a malloc'ed NUL-terminated text. */
static char *read_all(int fd)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap + 1);

	CHECK(buf);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			CHECK(buf);
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			break;
		CHECK(n >= 0); /* -1 with EAGAIN: the read timed out */
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
}

/* One request on its own connection; the whole response. */
static char *exchange(const struct fixture *f, const char *request, size_t len)
{
	int fd = dial(rg_admin_port(f->admin));

	send_all(fd, request, len);
	return read_all(fd);
}

/* One request from loopback address `from`; the whole response. */
static char *exchange_from(const struct fixture *f, uint32_t from, const char *request)
{
	int fd = dial_from(rg_admin_port(f->admin), from);

	send_all(fd, request, strlen(request));
	return read_all(fd);
}

static char *get(const struct fixture *f, const char *request)
{
	return exchange(f, request, strlen(request));
}

static void admin_metrics(void)
{
	struct fixture f;
	char *r;

	start(&f);
	r = get(&f, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(r, "\r\nContent-Type: text/plain; version=0.0.4"));
	CHECK(strstr(r, "\r\nConnection: close\r\n"));
	CHECK(strstr(r, "\r\n\r\n# HELP demo_total A demo\n# TYPE demo_total counter\n"
			"demo_total 42\n"));
	{
		/* Content-Length is the body's length exactly. */
		const char *cl = strstr(r, "Content-Length: ");
		const char *body = strstr(r, "\r\n\r\n") + 4;

		CHECK(cl && strtoul(cl + 16, NULL, 10) == strlen(body));
	}
	free(r);
	/* A query string is ignored; HTTP/1.0 and bare LFs are fine. */
	r = get(&f, "GET /metrics?x=1 HTTP/1.0\n\n");
	CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(r, "demo_total 42\n"));
	free(r);
	stop(&f);
}

static void admin_not_found(void)
{
	struct fixture f;
	char *r;

	start(&f);
	r = get(&f, "GET / HTTP/1.1\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
	free(r);
	r = get(&f, "GET /metricsx HTTP/1.1\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 404 ", 13) == 0);
	free(r);
	stop(&f);
}

static void admin_bad_method(void)
{
	struct fixture f;
	char *r;

	start(&f);
	r = get(&f, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 405 ", 13) == 0);
	free(r);
	stop(&f);
}

static void admin_bad_request(void)
{
	static const char *const bad[] = {
		"GARBAGE\r\n\r\n",
		"GET /metrics\r\n\r\n",
		"GET /metrics SPDY/3\r\n\r\n",
		"GET metrics HTTP/1.1\r\n\r\n",
		"GET /metrics HTTP/1.1 extra\r\n\r\n",
		"\r\n\r\n",
	};
	struct fixture f;
	char *r;

	start(&f);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = get(&f, bad[i]);
		if (strncmp(r, "HTTP/1.1 400 ", 13) != 0) {
			fprintf(stderr, "request %zu got: %.40s\n", i, r);
			CHECK(false);
		}
		free(r);
	}
	/* A NUL in the request line. */
	r = exchange(&f, "GET /met\0rics HTTP/1.1\r\n\r\n", 26);
	CHECK(strncmp(r, "HTTP/1.1 400 ", 13) == 0);
	free(r);
	stop(&f);
}

static void admin_head_too_large(void)
{
	struct fixture f;
	size_t len = RG_ADMIN_HEADER_MAX + 100;
	char *req = malloc(len), *r;
	int fd;

	start(&f);
	CHECK(req);
	memcpy(req, "GET /metrics HTTP/1.1\r\nX-Long: ", 31);
	memset(req + 31, 'a', len - 31);
	fd = dial(rg_admin_port(f.admin));
	/* The server may close before taking it all: a failed send is fine. */
	(void)send(fd, req, len, MSG_NOSIGNAL);
	r = read_all(fd);
	CHECK(strncmp(r, "HTTP/1.1 431 ", 13) == 0);
	free(r);
	free(req);
	stop(&f);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void admin_split_request(void)
{
	static const char request[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct fixture f;
	char *r;
	int fd;

	start(&f);
	fd = dial(rg_admin_port(f.admin));
	/* Byte by byte: the head is only served once complete. */
	for (size_t i = 0; i < sizeof(request) - 1; i++) {
		send_all(fd, request + i, 1);
		if (i % 8 == 0)
			sleep_ms(2);
	}
	r = read_all(fd);
	CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && strstr(r, "demo_total 42\n"));
	free(r);
	stop(&f);
}

/* Milliseconds on the monotonic clock. */
static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request trickled a byte a second (each byte would reset an idle
 * timer) is cut off at the request deadline, unanswered. */
static void admin_request_deadline(void)
{
	static const char request[] = "GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";

	_Static_assert(sizeof(request) > RG_ADMIN_REQUEST_TIMEOUT_MS / 1000 + 4, "too short");
	struct fixture f;
	long long began;
	bool closed = false;
	int fd;

	start(&f);
	fd = dial(rg_admin_port(f.admin));
	began = mono_ms();
	/* Bounded: past the deadline and a margin, it has failed. */
	for (size_t i = 0; i < RG_ADMIN_REQUEST_TIMEOUT_MS / 1000 + 4 && !closed; i++) {
		char c;

		/* A close shows as a failed send or as EOF on a peek. */
		if (send(fd, request + i, 1, MSG_NOSIGNAL) != 1 ||
		    recv(fd, &c, 1, MSG_DONTWAIT) == 0)
			closed = true;
		else
			sleep_ms(1000);
	}
	CHECK(closed);
	CHECK(mono_ms() - began <= RG_ADMIN_REQUEST_TIMEOUT_MS + 2000);
	close(fd);
	stop(&f);
}

/* Slow connections from one address take at most RG_ADMIN_MAX_PER_ADDR
 * slots: a scrape from another address is still answered at once. */
static void admin_per_addr_cap(void)
{
	enum { HOLDERS = 64 };
	int holders[HOLDERS];
	struct fixture f;
	char *r;

	start(&f);
	for (int i = 0; i < HOLDERS; i++) {
		holders[i] = dial(rg_admin_port(f.admin));
		send_all(holders[i], "G", 1);
	}
	sleep_ms(200); /* let the server see them all */
	r = exchange_from(&f, INADDR_LOOPBACK + 1, "GET /metrics HTTP/1.1\r\n\r\n");
	CHECK(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(r);
	for (int i = 0; i < HOLDERS; i++)
		close(holders[i]);
	stop(&f);
}

/* The value of an unlabelled sample `name` in a scrape, or -1. */
static long long sample(const char *text, const char *name)
{
	char key[128];
	const char *at;

	snprintf(key, sizeof(key), "\n%s ", name);
	at = strstr(text, key);
	return at ? strtoll(at + strlen(key), NULL, 10) : -1;
}

static int on_frame_echo(struct net_session *s, const uint8_t *body, size_t len)
{
	return net_session_send_frame(s, body, len);
}

/* A libnet runtime's figures show up and move with its traffic. */
static void admin_net_figures(void)
{
	static const struct net_session_ops echo_ops = { .on_frame = on_frame_echo };
	struct net_server_config srv_cfg = { .host = "127.0.0.1", .session = { .ops = &echo_ops } };
	struct net_runtime_config rt_cfg = { .loops = 1 };
	struct net_runtime *rt;
	struct net_server *srv;
	struct fixture f;
	char *before, *after;
	uint8_t frame[] = { 3, 'a', 'b', 'c' }, echo[4];
	int fd;

	start(&f);
	CHECK(net_runtime_create(&rt_cfg, &rt) == 0);
	CHECK(net_server_start(rt, &srv_cfg, &srv) == 0);
	CHECK(net_runtime_start(rt) == 0);
	CHECK(rg_metrics_add_net(f.metrics, rt) == 0 && rg_metrics_ok(f.metrics));

	before = get(&f, "GET /metrics HTTP/1.1\r\n\r\n");
	CHECK(sample(before, "ringgate_net_frames_in_total") == 0);
	CHECK(strstr(before, "ringgate_net_disconnects_total{reason=\"peer_closed\"} 0\n"));
	fd = dial(net_server_port(srv));
	send_all(fd, (const char *)frame, sizeof(frame));
	{
		ssize_t n;

		while ((n = recv(fd, echo, sizeof(echo), MSG_WAITALL)) < 0 && errno == EINTR)
			;
		CHECK(n == (ssize_t)sizeof(echo));
	}
	close(fd);
	/* The close is seen by the loop a moment later: poll, bounded. */
	for (int i = 0;; i++) {
		after = get(&f, "GET /metrics HTTP/1.1\r\n\r\n");
		if (strstr(after, "ringgate_net_disconnects_total{reason=\"peer_closed\"} 1\n") &&
		    sample(after, "ringgate_net_sessions_open") == 0)
			break;
		CHECK(i < 500);
		free(after);
		sleep_ms(10);
	}
	CHECK(sample(after, "ringgate_net_frames_in_total") == 1);
	CHECK(sample(after, "ringgate_net_frames_out_total") == 1);
	CHECK(sample(after, "ringgate_net_sessions_accepted_total") == 1);
	CHECK(sample(after, "ringgate_net_bytes_in_total") == 4);
	free(before);
	free(after);
	/* The admin server goes first: its collector reads rt. */
	stop(&f);
	net_runtime_stop(rt);
	net_runtime_destroy(rt);
}

/*
 * The options' rule (rg_admin_start_logged): --admin-port 0 alone is off;
 * with --admin-port-file it is any free port, written to the file once
 * the server listens there; an unwritable file stops the start.
 */
static void admin_port_file(void)
{
	struct rg_common_config c = { .admin_host = "127.0.0.1", .admin_port = 0,
				      .admin_port_file = "" };
	struct fixture f = { .metrics = rg_metrics_create() };
	char path[64], text[16] = { 0 }, *reply;
	FILE *file;

	CHECK(f.metrics);
	CHECK(rg_admin_start_logged(f.metrics, &c, &f.admin) == 0 && !f.admin);
	snprintf(path, sizeof(path), "/tmp/rg-test-admin-port-%ld", (long)getpid());
	c.admin_port_file = path;
	CHECK(rg_admin_start_logged(f.metrics, &c, &f.admin) == 0 && f.admin);
	file = fopen(path, "r");
	CHECK(file && fgets(text, sizeof(text), file));
	fclose(file);
	unlink(path);
	CHECK(strtol(text, NULL, 10) == rg_admin_port(f.admin) && rg_admin_port(f.admin) != 0);
	reply = get(&f, "GET /metrics HTTP/1.1\r\n\r\n");
	CHECK(strncmp(reply, "HTTP/1.1 200 ", 13) == 0);
	free(reply);
	rg_admin_stop(f.admin);
	c.admin_port_file = "/nonexistent-dir/admin-port";
	CHECK(rg_admin_start_logged(f.metrics, &c, &f.admin) == -ENOENT && !f.admin);
	rg_metrics_destroy(f.metrics);
}

static const struct test_case cases[] = {
	{ "admin_metrics", admin_metrics },
	{ "admin_not_found", admin_not_found },
	{ "admin_bad_method", admin_bad_method },
	{ "admin_bad_request", admin_bad_request },
	{ "admin_head_too_large", admin_head_too_large },
	{ "admin_split_request", admin_split_request },
	{ "admin_net_figures", admin_net_figures },
	{ "admin_request_deadline", admin_request_deadline },
	{ "admin_per_addr_cap", admin_per_addr_cap },
	{ "admin_port_file", admin_port_file },
	{ NULL, NULL },
};

TEST_MAIN(cases)
