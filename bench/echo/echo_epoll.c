/*
 * echo_epoll: the hand-written baseline of the echo benchmark. A plain
 * single-threaded epoll server for the varint-framed echo protocol, written
 * the way a careful engineer would without a library:
 *   - level-triggered epoll, one read per readiness (the kernel re-reports
 *     what is left, so no extra read just to see EAGAIN);
 *   - one growable read buffer per connection;
 *   - the complete frames of a read are echoed with one send() straight
 *     from the read buffer (no copy); only what the kernel refuses is
 *     copied into a per-connection output buffer, and reading stops until it
 *     drains (backpressure).
 * Frames are checked (length prefix valid, body <= 65536) and a bad one
 * closes the connection.
 *
 * Usage: echo_epoll [--host ADDR] [--port N]; prints "listening PORT" on
 * stdout, then serves until SIGINT/SIGTERM.
 */
#define _GNU_SOURCE
#include "frame.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY 65536
#define READ_BUFFER 16384

struct conn {
	int fd;
	uint8_t *in;            /* received bytes not yet echoed          */
	size_t in_len, in_cap;
	uint8_t *out;           /* echo bytes the kernel has not taken    */
	size_t out_len, out_off;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c->in);
	free(c->out);
	free(c);
}

/* Watch for input when nothing is pending, for output otherwise. */
static int conn_watch(int ep, struct conn *c)
{
	struct epoll_event ev = { .events = c->out_len ? EPOLLOUT : EPOLLIN, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what is pending; returns 0, or -1 to close the connection. */
static int conn_flush(int ep, struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return conn_watch(ep, c);
}

/* Read once, echo every complete frame; returns 0, or -1 to close. */
static int conn_read(int ep, struct conn *c)
{
	ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN))
		return -1;
	if (n < 0)
		return 0;
	c->in_len += (size_t)n;

	size_t done = 0, hdr, body;
	int rc;
	while ((rc = bench_frame_parse(c->in + done, c->in_len - done, MAX_BODY, &hdr, &body)) == 1
	       && done + hdr + body <= c->in_len)
		done += hdr + body;
	if (rc < 0)
		return -1;
	if (rc == 1 && hdr + body > c->in_cap) { /* a frame larger than the buffer */
		uint8_t *bigger = realloc(c->in, hdr + body);
		if (!bigger)
			return -1;
		c->in = bigger;
		c->in_cap = hdr + body;
	}
	if (done == 0)
		return 0;

	ssize_t sent = send(c->fd, c->in, done, MSG_NOSIGNAL);
	if (sent < 0 && errno != EAGAIN)
		return -1;
	size_t taken = sent < 0 ? 0 : (size_t)sent;
	if (taken < done) {
		c->out = malloc(done - taken);
		if (!c->out)
			return -1;
		memcpy(c->out, c->in + taken, done - taken);
		c->out_len = done - taken;
		if (conn_watch(ep, c) < 0)
			return -1;
	}
	memmove(c->in, c->in + done, c->in_len - done);
	c->in_len -= done;
	return 0;
}

static void accept_all(int ep, int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or EMFILE: try again on the next readiness */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = calloc(1, sizeof(*c));
		if (c)
			c->in = malloc(READ_BUFFER);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (!c || !c->in || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			if (c)
				free(c->in);
			free(c);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->in_cap = READ_BUFFER;
	}
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
	}
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: wake epoll_wait */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	socklen_t alen = sizeof(addr);
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1 || lfd < 0
	    || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0
	    || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0
	    || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		perror("echo_epoll: listen");
		return 1;
	}
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
		perror("echo_epoll: epoll");
		return 1;
	}
	printf("listening %u\n", ntohs(addr.sin_port));
	fflush(stdout);

	struct epoll_event events[256];
	while (!stopping) {
		int n = epoll_wait(ep, events, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			if (!c) {
				accept_all(ep, lfd);
				continue;
			}
			int rc = c->out_len ? conn_flush(ep, c) : conn_read(ep, c);
			if (rc < 0 || (events[i].events & EPOLLERR))
				conn_close(c);
		}
	}
	/* Connections still open at exit are reclaimed by the kernel. */
	close(ep);
	close(lfd);
	return 0;
}
