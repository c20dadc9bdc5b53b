/*
 * admin.c: the admin HTTP server and libnet's figures as metrics (see
 * rg/admin.h).
 *
 * A connection's life, all on the admin runtime's one loop:
 *
 *   connected --bytes--> (head incomplete: wait; past the cap: 431)
 *                 |
 *                 '--head complete--> parse --> one response queued,
 *                                               answered = true
 *                                               --> disconnect (flushes it)
 *
 * Bytes after the head, or after the answer, are consumed and ignored: the
 * connection is closing. Deadlines (RG_ADMIN_REQUEST_TIMEOUT_MS): libnet's
 * idle timeout ends a client that connects and says nothing, and its
 * partial-input deadline (frame_timeout_ms, which counts from the first
 * unconsumed byte and is not reset by more bytes) ends one that trickles a
 * head byte by byte. max_sessions bounds how many may try at once, and
 * max_sessions_per_addr how many of those one address may hold, so a
 * slowloris from one host cannot take every slot from the scraper.
 * The HTTP parsing is only what a scraper (Prometheus, curl, urllib)
 * sends: a request line "METHOD TARGET HTTP/1.x" and headers that we skip.
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/admin.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rg/log.h"

#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_SEND_QUEUE_MAX (16u << 20)

struct rg_admin {
	struct net_runtime *rt;
	struct net_server *server;
	struct rg_metrics *metrics;
};

/* The user area of an admin connection. */
struct admin_conn {
	bool answered;
};

/* Queue a whole response: status line, headers, body. */
static void respond(struct net_session *s, const char *status, const char *content_type,
		    const char *body, size_t body_len)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, content_type, body_len);

	if (net_session_send(s, head, (size_t)n) == 0 && body_len > 0)
		(void)net_session_send(s, body, body_len); /* failing: it is closing anyway */
}

static void respond_text(struct net_session *s, const char *status, const char *text)
{
	respond(s, status, "text/plain; charset=utf-8", text, strlen(text));
}

static void serve_metrics(struct net_session *s)
{
	struct rg_admin *a = net_session_service_user(s);
	char *body;
	size_t len;

	if (rg_metrics_render(a->metrics, &body, &len) < 0) {
		respond_text(s, "500 Internal Server Error", "out of memory\n");
		return;
	}
	respond(s, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body, len);
	free(body);
}

/* Where the request head ends (just past the blank line), or 0. Clients
 * should send CRLF; a bare LF is accepted as HTTP/1.1 allows. */
static size_t head_end(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (data[i] != '\n')
			continue;
		if (data[i + 1] == '\n')
			return i + 2;
		if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Answer the request whose head is data[0..len). */
static void serve(struct net_session *s, const uint8_t *data, size_t len)
{
	char line[512];
	char method[16], target[400], version[16], extra;
	size_t n = 0;

	while (n < len && data[n] != '\r' && data[n] != '\n')
		n++;
	if (n >= sizeof(line) || memchr(data, '\0', n)) {
		respond_text(s, "400 Bad Request", "bad request line\n");
		return;
	}
	memcpy(line, data, n);
	line[n] = '\0';
	if (sscanf(line, "%15s %399s %15s %c", method, target, version, &extra) != 3 ||
	    strncmp(version, "HTTP/1.", 7) != 0 || target[0] != '/') {
		respond_text(s, "400 Bad Request", "bad request line\n");
		return;
	}
	if (strcmp(method, "GET") != 0) {
		respond_text(s, "405 Method Not Allowed", "only GET is served here\n");
		return;
	}
	target[strcspn(target, "?")] = '\0'; /* a scraper's query is ignored */
	if (strcmp(target, "/metrics") != 0) {
		respond_text(s, "404 Not Found", "try /metrics\n");
		return;
	}
	serve_metrics(s);
}

static long on_recv(struct net_session *s, const uint8_t *data, size_t len)
{
	struct admin_conn *conn = net_session_user(s);
	size_t end;

	if (conn->answered)
		return (long)len;
	end = head_end(data, len < RG_ADMIN_HEADER_MAX ? len : RG_ADMIN_HEADER_MAX);
	if (end == 0 && len < RG_ADMIN_HEADER_MAX)
		return 0; /* wait for the rest of the head */
	conn->answered = true;
	if (end == 0)
		respond_text(s, "431 Request Header Fields Too Large", "request head too large\n");
	else
		serve(s, data, end);
	net_session_disconnect(s, NET_REASON_LOCAL);
	return (long)len;
}

static const struct net_session_ops admin_ops = {
	.on_recv = on_recv,
};

int rg_admin_start(const struct rg_admin_config *cfg, struct rg_admin **out)
{
	struct net_runtime_config rt_cfg = { .loops = 1 };
	struct net_server_config srv_cfg = {
		.host = cfg->host ? cfg->host : "127.0.0.1",
		.port = cfg->port,
		.max_sessions = ADMIN_MAX_CONNECTIONS,
		.max_sessions_per_addr = RG_ADMIN_MAX_PER_ADDR,
		.session = {
			.ops = &admin_ops,
			.user_size = sizeof(struct admin_conn),
			/* Room past the cap, so on_recv sees the cap passed and
			 * answers 431 before libnet would cut the session off. */
			.recv_buffer_max = 2 * RG_ADMIN_HEADER_MAX,
			.send_queue_max = ADMIN_SEND_QUEUE_MAX,
			.idle_timeout_ms = RG_ADMIN_REQUEST_TIMEOUT_MS,
			.frame_timeout_ms = RG_ADMIN_REQUEST_TIMEOUT_MS,
			.backpressure = NET_BACKPRESSURE_DISCONNECT,
		},
	};
	struct rg_admin *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->metrics = cfg->metrics;
	srv_cfg.session.service_user = a;
	err = net_runtime_create(&rt_cfg, &a->rt);
	if (err < 0)
		goto out_free;
	err = net_server_start(a->rt, &srv_cfg, &a->server);
	if (err < 0)
		goto out_destroy;
	err = net_runtime_start(a->rt);
	if (err < 0)
		goto out_destroy;
	*out = a;
	return 0;

out_destroy:
	net_runtime_destroy(a->rt);
out_free:
	free(a);
	return err;
}

int rg_admin_start_logged(struct rg_metrics *m, const struct rg_common_config *c,
			  struct rg_admin **out)
{
	struct rg_admin_config cfg = { .host = c->admin_host, .port = (uint16_t)c->admin_port,
				       .metrics = m };
	bool has_file = c->admin_port_file && c->admin_port_file[0];
	int err;

	*out = NULL;
	/* 0 has always meant "off"; a port file is what asks for "any". */
	if (c->admin_port == 0 && !has_file)
		return 0;
	if (c->admin_port < 0 || c->admin_port > 65535) {
		RG_ERROR("--admin-port %ld is not a port", c->admin_port);
		return -EINVAL;
	}
	err = rg_admin_start(&cfg, out);
	if (err < 0) {
		RG_ERROR("cannot serve metrics on --admin-host %s --admin-port %ld: %s",
			 c->admin_host, c->admin_port, net_strerror(err));
		return err;
	}
	RG_INFO("metrics at http://%s:%u/metrics", c->admin_host, (unsigned)rg_admin_port(*out));
	err = rg_port_file_write(c->admin_port_file, rg_admin_port(*out));
	if (err < 0) {
		rg_admin_stop(*out);
		*out = NULL;
	}
	return err;
}

uint16_t rg_admin_port(const struct rg_admin *a)
{
	return net_server_port(a->server);
}

void rg_admin_stop(struct rg_admin *a)
{
	if (!a)
		return;
	net_runtime_stop(a->rt);
	net_runtime_destroy(a->rt);
	free(a);
}

/* ---- libnet's figures --------------------------------------------------------- */

/* What one net_stats field becomes. */
struct net_field {
	const char *name;
	const char *help;
	size_t offset;                 /* into struct net_stats */
	bool gauge;
};

#define NET_FIELD(field, metric, is_gauge, text) \
	{ "ringgate_net_" metric, text, offsetof(struct net_stats, field), is_gauge }

static const struct net_field net_fields[] = {
	NET_FIELD(sessions_open, "sessions_open", true, "Live sessions"),
	NET_FIELD(accepted, "sessions_accepted_total", false, "Sessions accepted"),
	NET_FIELD(reused, "sessions_reused_total", false, "Sessions served from the pool"),
	NET_FIELD(rejected, "sessions_rejected_total", false,
		  "Accepts closed at the max_sessions limit"),
	NET_FIELD(rejected_addr, "sessions_rejected_per_addr_total", false,
		  "Accepts closed by the per-address count or rate limits"),
	NET_FIELD(accept_errors, "accept_errors_total", false, "Accept failures"),
	NET_FIELD(connected, "dials_connected_total", false, "Dials that connected"),
	NET_FIELD(connect_failed, "dials_failed_total", false, "Dials that failed or timed out"),
	NET_FIELD(frames_in, "frames_in_total", false, "Frames received"),
	NET_FIELD(frames_out, "frames_out_total", false, "Frames sent"),
	NET_FIELD(bytes_in, "bytes_in_total", false, "Bytes received"),
	NET_FIELD(bytes_out, "bytes_out_total", false, "Bytes sent"),
	NET_FIELD(sends_dropped, "sends_dropped_total", false,
		  "Sends by id to sessions that had gone"),
	NET_FIELD(send_queue_high_water, "send_queue_high_water_bytes", true,
		  "Largest send queue seen on any session"),
	NET_FIELD(recv_paused, "recv_paused_total", false,
		  "Times PAUSE backpressure stopped reading from a peer"),
};

#define NET_FIELD_COUNT (sizeof(net_fields) / sizeof(net_fields[0]))

struct net_figures {
	struct net_runtime *rt;
	struct rg_counter *counters[NET_FIELD_COUNT];
	struct rg_gauge *gauges[NET_FIELD_COUNT];
	struct rg_counter *disconnects[NET_REASON_COUNT];
	struct rg_counter *cutoffs;
};

static void collect_net(void *arg)
{
	struct net_figures *f = arg;
	struct net_stats st;

	net_runtime_stats(f->rt, &st);
	for (size_t i = 0; i < NET_FIELD_COUNT; i++) {
		uint64_t v;

		memcpy(&v, (const char *)&st + net_fields[i].offset, sizeof(v));
		if (net_fields[i].gauge)
			rg_gauge_set(f->gauges[i], (int64_t)v);
		else
			rg_counter_set(f->counters[i], v);
	}
	for (unsigned r = 0; r < NET_REASON_COUNT; r++)
		rg_counter_set(f->disconnects[r], st.disconnects[r]);
	rg_counter_set(f->cutoffs, st.disconnects[NET_REASON_SEND_OVERFLOW]);
}

int rg_metrics_add_net(struct rg_metrics *m, struct net_runtime *rt)
{
	struct net_figures *f = calloc(1, sizeof(*f));
	char labels[64];

	if (!f)
		return -ENOMEM;
	f->rt = rt;
	for (size_t i = 0; i < NET_FIELD_COUNT; i++) {
		if (net_fields[i].gauge)
			f->gauges[i] = rg_metrics_gauge(m, net_fields[i].name, NULL,
							net_fields[i].help);
		else
			f->counters[i] = rg_metrics_counter(m, net_fields[i].name, NULL,
							    net_fields[i].help);
	}
	for (unsigned r = 0; r < NET_REASON_COUNT; r++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", net_reason_str(r));
		f->disconnects[r] = rg_metrics_counter(m, "ringgate_net_disconnects_total", labels,
						       "Sessions ended, by reason");
	}
	f->cutoffs = rg_metrics_counter(m, "ringgate_net_send_cutoffs_total", NULL,
					"Sessions cut off because their send queue passed the cap");
	return rg_metrics_on_collect(m, collect_net, f, free);
}
