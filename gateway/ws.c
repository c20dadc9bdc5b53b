/*
 * gateway/ws.c: the WebSocket port. Browsers connect here for the world
 * page (a few static files) and then for the game itself, over RFC 6455.
 *
 * A connection's states, and the function that performs each transition:
 *
 *   HTTP --(GET of a page file: answered)----------------> done (closing)
 *     |  --(bad head, 404, handshake deadline: HTTP error)-> done
 *     |  (http_request)
 *     v  GET /ws, good upgrade: 101, a wslay context, gw_client_open
 *   OPEN --(binary message)--> gw_client_message: one ClientMessage each
 *     |   (close frame either way, a protocol error, the partial-message
 *     v    deadline: ws_flush disconnects once our close frame is out)
 *   gone: on_disconnected -> gw_client_gone (if OPEN), wslay freed
 *
 * The frame layer is libwslay's (masking, fragmentation with interleaved
 * control frames, ping/pong, close codes, UTF-8 of text, the maximum
 * message size, checked from each frame header before its payload is
 * buffered). It does no I/O: its recv callback reads the bytes libnet
 * handed to on_recv, its send callback queues on the libnet session.
 *
 * Deadlines (one timer per connection): the request head must be whole
 * within --ws-handshake-timeout-ms of the connect (else 408); and while a
 * frame or a fragmented message is incomplete, some frame must complete
 * every --frame-timeout-ms (else close 1008), like a TCP client's partial
 * frame. Everything else - rates, idle kicks, the
 * limits per address, max-clients - is the TCP listener's, shared through
 * gw_clients_limits and client_side.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include <rg/log.h>
#include <rg/ws_feed.h>

#include "gateway.h"
#include "http.h"

/* Largest page file loaded; the page is a few files of tens of KiB. */
#define WEB_FILE_MAX (4u << 20)

/* The page's files: URL path, file under --web-dir, content type. A fixed
 * list, so no request can name any other file (no traversal to guard). */
static const struct {
	const char *url, *file, *type;
} web_files[] = {
	{ "/", "index.html", "text/html; charset=utf-8" },
	{ "/app.js", "app.js", "text/javascript; charset=utf-8" },
	{ "/protobuf.min.js", "node_modules/protobufjs/dist/protobuf.min.js",
	  "text/javascript; charset=utf-8" },
	/* The page loads the wire contract itself, from the same sources. */
	{ "/client.proto", "../proto/client.proto", "text/plain; charset=utf-8" },
};
#define WEB_FILE_COUNT (sizeof(web_files) / sizeof(web_files[0]))

/* The page's files as loaded at start; read-only while the loops run. */
struct gw_web {
	uint8_t *body[WEB_FILE_COUNT]; /* NULL: missing (404) */
	size_t len[WEB_FILE_COUNT];
};

enum ws_state { WS_HTTP = 0, WS_OPEN, WS_DONE };

/* A WebSocket connection's state: after the gw_client in the user area. */
struct ws_conn {
	struct net_session *s;
	struct gateway *gw;
	enum ws_state state;
	struct net_timer *deadline;    /* head, then partial-message deadline */
	wslay_event_context_ptr ctx;   /* OPEN only                           */
	struct rg_ws_feed in;          /* on_recv's bytes, for the recv hook;
					  in.total: bytes handed to wslay     */
	bool in_recv;                  /* inside wslay_event_recv: no sends   */
	bool close_wanted;             /* the client side closes it: 1000     */
	bool closing;                  /* our close frame is out: disconnecting */
	uint64_t framed;               /* bytes in frames wholly read         */
	uint64_t frame_bytes;          /* the frame being read, header too    */
	uint64_t msg_bytes;            /* payload of the data message so far  */
	bool fragmented;               /* a data message awaits continuation  */
};

static struct ws_conn *ws_of(struct net_session *s)
{
	return (struct ws_conn *)((char *)net_session_user(s) + gw_client_area_size());
}

/* ---- HTTP answers -------------------------------------------------------- */

/* Send an HTTP response (head and body) and close after it. */
static void http_respond(struct ws_conn *ws, int status, const char *type, const char *extra,
			 const uint8_t *body, size_t len)
{
	char head[512];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n"
			 "%sConnection: close\r\n\r\n",
			 status, gw_http_reason(status), type, len, extra);

	ws->state = WS_DONE;
	if (net_session_send(ws->s, head, (size_t)n) == 0 && len)
		net_session_send(ws->s, body, len);
	net_session_disconnect(ws->s, NET_REASON_LOCAL);
}

/* Answer an error status with a one-line text body, and close. */
static void http_error(struct ws_conn *ws, int status, const char *why)
{
	char body[160];
	int n = snprintf(body, sizeof(body), "%d %s: %s\n", status, gw_http_reason(status), why);

	RG_INFO("web client %s: HTTP %d (%s)", NET_SESSION_PEER(ws->s), status, why);
	http_respond(ws, status, "text/plain; charset=utf-8",
		     status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n" : "",
		     (const uint8_t *)body, (size_t)n);
}

static void serve_file(struct ws_conn *ws, const char *path)
{
	const struct gw_web *web = ws->gw->web;

	for (size_t i = 0; i < WEB_FILE_COUNT; i++) {
		if (strcmp(path, web_files[i].url) != 0)
			continue;
		if (!web || !web->body[i])
			break;
		http_respond(ws, 200, web_files[i].type, "", web->body[i], web->len[i]);
		return;
	}
	http_error(ws, 404, "no such page");
}

/* ---- the frame layer (wslay hooks) ---------------------------------------- */

static ssize_t wslay_recv_hook(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
			       int flags, void *user)
{
	(void)flags;
	return rg_ws_feed_read(ctx, &((struct ws_conn *)user)->in, buf, len);
}

static ssize_t wslay_send_hook(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
			       int flags, void *user)
{
	struct ws_conn *ws = user;

	(void)flags;
	/* libnet takes every byte or fails (its queue bound disconnects). */
	if (net_session_send(ws->s, data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* Stop reading and close with code: the peer broke a rule. */
static void ws_refuse(struct ws_conn *ws, uint16_t code, const char *why)
{
	RG_INFO("ws client %s: %s; closing (%u)", NET_SESSION_PEER(ws->s), why, (unsigned)code);
	wslay_event_queue_close(ws->ctx, code, (const uint8_t *)why, strlen(why));
	wslay_event_shutdown_read(ws->ctx);
}

/*
 * A frame header was read. Sizes are judged here, before any payload is
 * buffered (wslay's own bound only counts payload as it arrives): a data
 * message past --max-frame is 1009, a control frame over 125 bytes or
 * fragmented is 1002. Note the frame's size on the wire too, so that
 * "in.total != framed" says a frame is partly here (a client frame is masked
 * and its length minimally encoded; one that is not is closed anyway).
 */
static void wslay_frame_start_hook(wslay_event_context_ptr ctx,
				   const struct wslay_event_on_frame_recv_start_arg *arg, void *user)
{
	struct ws_conn *ws = user;
	uint64_t len = arg->payload_length;

	(void)ctx;
	ws->frame_bytes = 2 + 4 + len + (len > 65535 ? 8 : len >= 126 ? 2 : 0);
	if (arg->opcode & 0x8) {
		if (len > 125 || !arg->fin)
			ws_refuse(ws, WSLAY_CODE_PROTOCOL_ERROR,
				  "control frame over 125 bytes or fragmented");
		else if (arg->opcode != WSLAY_CONNECTION_CLOSE)
			gw_client_admit_control(ws->s); /* a ping flood meets the rate */
		return;
	}
	if (arg->opcode != WSLAY_CONTINUATION_FRAME)
		ws->msg_bytes = 0;
	ws->msg_bytes += len;
	ws->fragmented = !arg->fin;
	if (ws->msg_bytes > (uint64_t)ws->gw->cfg.max_frame)
		ws_refuse(ws, WSLAY_CODE_MESSAGE_TOO_BIG, "message over --max-frame");
}

static void wslay_frame_end_hook(wslay_event_context_ptr ctx, void *user)
{
	struct ws_conn *ws = user;

	(void)ctx;
	ws->framed += ws->frame_bytes;
	ws->frame_bytes = 0;
}

static void wslay_msg_hook(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct ws_conn *ws = user;

	switch (arg->opcode) {
	case WSLAY_BINARY_FRAME:
		gw_client_message(ws->s, arg->msg, arg->msg_length);
		break;
	case WSLAY_TEXT_FRAME:
		RG_INFO("ws client %s sent a text message; closing (1003)",
			NET_SESSION_PEER(ws->s));
		wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA,
					(const uint8_t *)"binary messages only", 20);
		break;
	case WSLAY_CONNECTION_CLOSE:
		/* wslay has queued the answering close frame. */
		RG_DEBUG("ws client %s closed (%u)", NET_SESSION_PEER(ws->s),
			 (unsigned)arg->status_code);
		break;
	default:
		break; /* ping (wslay answers it) and pong */
	}
}

static const struct wslay_event_callbacks wslay_hooks = {
	.recv_callback = wslay_recv_hook,
	.send_callback = wslay_send_hook,
	.on_frame_recv_start_callback = wslay_frame_start_hook,
	.on_frame_recv_end_callback = wslay_frame_end_hook,
	.on_msg_recv_callback = wslay_msg_hook,
};

/* Hand wslay's queued frames to libnet; once our close frame is out, close
 * the connection (the peer's answer, if any, is read and dropped). */
static void ws_flush(struct ws_conn *ws)
{
	int rc;

	if (ws->in_recv || !ws->ctx || ws->closing)
		return; /* on_recv flushes after wslay_event_recv returns */
	rc = wslay_event_send(ws->ctx);
	/* wslay sends control frames ahead of data: a close the client side
	 * asked for (after a Kicked, an Error) is queued once the data is out. */
	if (rc == 0 && ws->close_wanted && !wslay_event_get_close_sent(ws->ctx)) {
		wslay_event_queue_close(ws->ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
		rc = wslay_event_send(ws->ctx);
	}
	if (rc != 0) {
		ws->closing = true;
	} else if (wslay_event_get_close_sent(ws->ctx) && !wslay_event_want_write(ws->ctx)) {
		uint16_t code = wslay_event_get_status_code_sent(ws->ctx);

		if (code != WSLAY_CODE_NORMAL_CLOSURE && code != WSLAY_CODE_GOING_AWAY)
			RG_INFO("ws client %s: closed with code %u", NET_SESSION_PEER(ws->s),
				(unsigned)code);
		ws->closing = true;
	}
	if (ws->closing) {
		net_timer_stop(ws->deadline);
		net_session_disconnect(ws->s, NET_REASON_LOCAL);
	}
}

/* Feed bytes to wslay: every message it completes goes to the client
 * side; then send what it queued (pongs, close frames, our replies). */
static long ws_feed(struct ws_conn *ws, const uint8_t *data, size_t len)
{
	uint32_t frame_timeout = (uint32_t)ws->gw->cfg.frame_timeout_ms;
	uint64_t framed = ws->framed;
	int rc;

	rg_ws_feed_set(&ws->in, data, len);
	ws->in_recv = true;
	rc = wslay_event_recv(ws->ctx);
	ws->in_recv = false;
	rg_ws_feed_set(&ws->in, NULL, 0);
	if (rc != 0) {
		/* The frame layer gave up (a frame it cannot take): it has queued
		 * its own close frame (without a code) when it could. */
		RG_INFO("ws client %s: frame layer failed (wslay %d); closing",
			NET_SESSION_PEER(ws->s), rc);
		wslay_event_queue_close(ws->ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
	}
	ws_flush(ws);
	if (ws->closing)
		return (long)len;
	if (ws->in.total != ws->framed || ws->fragmented) {
		/* The deadline runs from the last frame completed, so a client
		 * streaming big messages whose reads end mid-frame is not cut. */
		if (frame_timeout && (!net_timer_active(ws->deadline) || ws->framed != framed))
			net_timer_start(ws->deadline, frame_timeout, 0);
	} else {
		net_timer_stop(ws->deadline);
	}
	return (long)len;
}

/* ---- the client transport ------------------------------------------------- */

static int ws_send(struct net_session *s, const uint8_t *msg, size_t len)
{
	struct ws_conn *ws = ws_of(s);
	struct wslay_event_msg m = { WSLAY_BINARY_FRAME, msg, len };

	if (!ws->ctx || wslay_event_queue_msg(ws->ctx, &m) != 0)
		return -ENOTCONN; /* closing: a close frame was queued */
	ws_flush(ws);
	return 0;
}

static int ws_send_shared(struct net_session *s, struct net_buf *msg, const uint8_t *suffix,
			  size_t suffix_len)
{
	size_t len;
	const uint8_t *body = net_buf_body(msg, &len);
	uint8_t *joined;
	int err;

	if (suffix_len == 0)
		return ws_send(s, body, len);
	/* One WebSocket message; wslay copies it when queueing anyway. */
	joined = malloc(len + suffix_len);
	if (!joined)
		return -ENOMEM;
	memcpy(joined, body, len);
	memcpy(joined + len, suffix, suffix_len);
	err = ws_send(s, joined, len + suffix_len);
	free(joined);
	return err;
}

static void ws_close(struct net_session *s)
{
	struct ws_conn *ws = ws_of(s);

	ws->close_wanted = true;
	ws_flush(ws);
}

static const struct gw_transport ws_transport = {
	.send = ws_send,
	.send_shared = ws_send_shared,
	.close = ws_close,
};

/* ---- session callbacks ------------------------------------------------------ */

/* A whole request head: serve a file, refuse, or upgrade. Returns the
 * bytes consumed (the head, and after an upgrade the frames behind it). */
static long http_request(struct ws_conn *ws, const uint8_t *data, size_t len, long head_len,
			 const struct gw_http_request *req)
{
	char accept[GW_WS_ACCEPT_LEN], head[160];
	int status, n, err;

	if (strcmp(req->path, GW_WS_PATH) != 0) {
		if (req->upgrade_websocket)
			http_error(ws, 404, "the WebSocket endpoint is " GW_WS_PATH);
		else
			serve_file(ws, req->path);
		return (long)len;
	}
	status = gw_ws_accept(req, accept);
	if (status != 0) {
		http_error(ws, status, status == 426 ? "WebSocket version 13 upgrade required"
						     : "bad WebSocket upgrade request");
		return (long)len;
	}
	err = wslay_event_context_server_init(&ws->ctx, &wslay_hooks, ws);
	if (err != 0) {
		ws->ctx = NULL;
		http_error(ws, 503, "out of memory");
		return (long)len;
	}
	wslay_event_config_set_max_recv_msg_length(ws->ctx, (uint64_t)ws->gw->cfg.max_frame);
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
	if (net_session_send(ws->s, head, (size_t)n) < 0)
		return (long)len;
	net_timer_stop(ws->deadline);
	ws->state = WS_OPEN;
	RG_DEBUG("ws client %s upgraded to WebSocket", NET_SESSION_PEER(ws->s));
	gw_client_open(ws->s, &ws_transport);
	if (!net_session_connected(ws->s) || (size_t)head_len == len)
		return (long)len;
	return head_len + ws_feed(ws, data + head_len, len - (size_t)head_len);
}

static void on_deadline(struct net_timer *timer, void *arg)
{
	struct ws_conn *ws = arg;

	(void)timer;
	if (ws->closing)
		return;
	if (ws->state == WS_HTTP) {
		http_error(ws, 408, "the request head did not come in time");
	} else if (ws->state == WS_OPEN) {
		RG_WARN("ws client %s disconnected: a message not completed within "
			"--frame-timeout-ms %ld", NET_SESSION_PEER(ws->s),
			ws->gw->cfg.frame_timeout_ms);
		wslay_event_queue_close(ws->ctx, WSLAY_CODE_POLICY_VIOLATION,
					(const uint8_t *)"message too slow", 16);
		ws_flush(ws);
	}
}

static void ws_on_connected(struct net_session *s)
{
	struct ws_conn *ws = ws_of(s);
	int err;

	ws->s = s;
	ws->gw = net_session_service_user(s);
	err = net_timer_create(net_session_loop(s), on_deadline, ws, &ws->deadline);
	if (err < 0) {
		RG_WARN("web client %s: no timer (%s); closing", NET_SESSION_PEER(s),
			net_strerror(err));
		ws->state = WS_DONE;
		net_session_disconnect(s, NET_REASON_LOCAL);
		return;
	}
	net_timer_start(ws->deadline, (uint64_t)ws->gw->cfg.ws_handshake_timeout_ms, 0);
}

static long ws_on_recv(struct net_session *s, const uint8_t *data, size_t len)
{
	struct ws_conn *ws = ws_of(s);
	struct gw_http_request req;
	long head_len;

	switch (ws->state) {
	case WS_HTTP:
		head_len = gw_http_parse(data, len, &req);
		if (head_len == 0)
			return 0; /* more to come, under the handshake deadline */
		if (head_len < 0) {
			http_error(ws, (int)-head_len, "malformed request");
			return (long)len;
		}
		return http_request(ws, data, len, head_len, &req);
	case WS_OPEN:
		return ws_feed(ws, data, len);
	default:
		return (long)len;
	}
}

static void ws_on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct ws_conn *ws = ws_of(s);

	if (ws->deadline)
		net_timer_destroy(ws->deadline);
	if (ws->state == WS_OPEN)
		gw_client_gone(s, reason);
	if (ws->ctx)
		wslay_event_context_free(ws->ctx);
}

static const struct net_session_ops ws_ops = {
	.on_connected = ws_on_connected,
	.on_recv = ws_on_recv,
	.on_disconnected = ws_on_disconnected,
};

/* ---- the page's files and the listener's config ----------------------------- */

/* Read a whole file of at most WEB_FILE_MAX bytes; NULL when it cannot. */
static uint8_t *read_file(const char *path, size_t *out_len /* OUT */)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf, *shrunk;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(WEB_FILE_MAX);
	n = buf ? fread(buf, 1, WEB_FILE_MAX, f) : 0;
	if (!buf || ferror(f) || n == WEB_FILE_MAX || n == 0) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*out_len = n;
	shrunk = realloc(buf, n);
	return shrunk ? shrunk : buf;
}

int gw_ws_config(struct gateway *gw, struct net_server_config *out)
{
	struct gw_web *web;
	unsigned missing = 0;

	gw_clients_limits(gw, out);
	out->port = (uint16_t)gw->cfg.ws_port;
	out->host = gw->cfg.host;
	out->session.ops = &ws_ops;
	out->session.user_size = gw_client_area_size() + sizeof(struct ws_conn);
	/* Our own deadlines answer a slow head with 408 (libnet's would cut it
	 * off silently), and wslay holds partial frames, not libnet. */
	out->session.frame_timeout_ms = 0;
	out->session.recv_buffer_max = 2 * GW_HTTP_HEAD_MAX + (size_t)gw->cfg.max_frame;

	web = calloc(1, sizeof(*web));
	if (!web)
		return -ENOMEM;
	for (size_t i = 0; i < WEB_FILE_COUNT; i++) {
		char path[4096];

		if (snprintf(path, sizeof(path), "%s/%s", gw->cfg.web_dir, web_files[i].file) >=
		    (int)sizeof(path))
			continue;
		web->body[i] = read_file(path, &web->len[i]);
		if (!web->body[i]) {
			RG_WARN("world page: cannot read %s; %s answers 404 (--web-dir %s; "
				"tools/install-deps.sh installs web/node_modules)", path,
				web_files[i].url, gw->cfg.web_dir);
			missing++;
		}
	}
	gw->web = web;
	if (missing == 0)
		RG_DEBUG("world page: %zu files from %s", WEB_FILE_COUNT, gw->cfg.web_dir);
	return 0;
}

void gw_ws_fini(struct gateway *gw)
{
	if (!gw->web)
		return;
	for (size_t i = 0; i < WEB_FILE_COUNT; i++)
		free(gw->web->body[i]);
	free(gw->web);
	gw->web = NULL;
}
