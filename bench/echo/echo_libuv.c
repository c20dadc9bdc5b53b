/*
 * echo_libuv: the libuv baseline of the echo benchmark, written the way
 * libuv's documentation recommends for a fast server:
 *   - alloc_cb hands libuv the free tail of one growable read buffer per
 *     connection, so a read lands where the frame parser looks;
 *   - the complete frames of a read are echoed with uv_try_write straight
 *     from that buffer; only what the kernel refuses is copied into a
 *     uv_write request, and reading stops until it completes.
 * Frames are checked (length prefix valid, body <= 65536) and a bad one
 * closes the connection.
 *
 * Usage: echo_libuv [--host ADDR] [--port N]; prints "listening PORT" on
 * stdout, then serves until SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs pthread_rwlock_t */
#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAX_BODY 65536
#define READ_BUFFER 16384

struct conn {
	uv_tcp_t tcp;           /* first: the handle's address is the conn's */
	uint8_t *in;            /* received bytes not yet echoed             */
	size_t in_len, in_cap;
};

struct pending_write {
	uv_write_t req;
	struct conn *conn;
	uint8_t bytes[];        /* the copy of what uv_try_write left over   */
};

static void on_closed(uv_handle_t *h)
{
	struct conn *c = (struct conn *)h;
	free(c->in);
	free(c);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = (struct conn *)h;
	(void)suggested;
	*buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
	struct pending_write *w = (struct pending_write *)req;
	struct conn *c = w->conn;
	free(w);
	if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

/* Echo in[0..len): try at once, queue a copy of the rest. 0 or -1. */
static int conn_echo(struct conn *c, size_t len)
{
	uv_buf_t buf = uv_buf_init((char *)c->in, (unsigned)len);
	int sent = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
	if (sent < 0 && sent != UV_EAGAIN)
		return -1;
	size_t taken = sent < 0 ? 0 : (size_t)sent;
	if (taken == len)
		return 0;
	struct pending_write *w = malloc(sizeof(*w) + len - taken);
	if (!w)
		return -1;
	w->conn = c;
	memcpy(w->bytes, c->in + taken, len - taken);
	buf = uv_buf_init((char *)w->bytes, (unsigned)(len - taken));
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) < 0) {
		free(w);
		return -1;
	}
	uv_read_stop((uv_stream_t *)&c->tcp); /* backpressure until it drains */
	return 0;
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = (struct conn *)stream;
	(void)buf;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	c->in_len += (size_t)nread;

	size_t done = 0, hdr, body;
	int rc;
	while ((rc = bench_frame_parse(c->in + done, c->in_len - done, MAX_BODY, &hdr, &body)) == 1
	       && done + hdr + body <= c->in_len)
		done += hdr + body;
	if (rc < 0)
		goto fail;
	if (rc == 1 && hdr + body > c->in_cap) { /* a frame larger than the buffer */
		uint8_t *bigger = realloc(c->in, hdr + body);
		if (!bigger)
			goto fail;
		c->in = bigger;
		c->in_cap = hdr + body;
	}
	if (done == 0)
		return;
	if (conn_echo(c, done) < 0)
		goto fail;
	memmove(c->in, c->in + done, c->in_len - done);
	c->in_len -= done;
	return;
fail:
	conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	if (status < 0)
		return;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->in = malloc(READ_BUFFER);
	c->in_cap = READ_BUFFER;
	uv_tcp_init(server->loop, &c->tcp);
	if (!c->in || uv_accept(server, (uv_stream_t *)&c->tcp) < 0
	    || uv_tcp_nodelay(&c->tcp, 1) < 0
	    || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
		conn_close(c);
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (h->type == UV_TCP && h->data == NULL)
		conn_close((struct conn *)h);
	else if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	(void)signum;
	uv_walk(sig->loop, close_any, NULL);
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
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t server;
	uv_signal_t sigint, sigterm;
	struct sockaddr_in addr;
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	uv_tcp_init(loop, &server);
	server.data = &server; /* marks the listener apart from connections */
	if (uv_ip4_addr(host, port, &addr) < 0
	    || uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0) < 0
	    || uv_listen((uv_stream_t *)&server, 4096, on_connection) < 0
	    || uv_tcp_getsockname(&server, (struct sockaddr *)&bound, &len) < 0) {
		fprintf(stderr, "echo_libuv: cannot listen on %s:%d\n", host, port);
		return 1;
	}
	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	printf("listening %u\n", ntohs(((struct sockaddr_in *)&bound)->sin_port));
	fflush(stdout);

	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	return 0;
}
