/*
 * ws.c: the bot's WebSocket transport (--transport ws), for the gateway's
 * WebSocket port (docs/protocol.md, "WebSocket"): the HTTP upgrade, then
 * one masked binary message per ClientMessage out and one ServerMessage per
 * binary message in. Frames are libwslay's client side; this file feeds it
 * the bytes libnet's on_recv hands over and queues what it writes.
 *
 * A session's states: upgrade sent (on_connected) -> 101 read: player.c's
 * bot_session_ready sends the login -> messages go to bot_session_message.
 * Anything else from the gateway (another status, a bad frame, a close) is
 * the end of the session, counted by player.c as for TCP.
 */
#define _DEFAULT_SOURCE /* arc4random_buf */
#include "bot.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wslay/wslay.h>

#include <rg/ws_feed.h>

/* A WebSocket session's state, allocated by bot_ws_open. */
struct bot_ws {
	wslay_event_context_ptr ctx;    /* once upgraded                  */
	struct rg_ws_feed in;           /* on_recv's bytes, for the hook  */
	int failed;                     /* a message handler's error      */
};

static ssize_t recv_hook(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
			 void *user)
{
	(void)flags;
	return rg_ws_feed_read(ctx, &((struct bot_session *)user)->ws->in, buf, len);
}

static ssize_t send_hook(wslay_event_context_ptr ctx, const uint8_t *data, size_t len,
			 int flags, void *user)
{
	(void)flags;
	if (net_session_send(((struct bot_session *)user)->s, data, len) < 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

static int genmask_hook(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
	(void)ctx;
	(void)user;
	arc4random_buf(buf, len);
	return 0;
}

static void msg_hook(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
		     void *user)
{
	struct bot_session *bs = user;

	(void)ctx;
	if (arg->opcode == WSLAY_BINARY_FRAME && !bs->ws->failed)
		bs->ws->failed = bot_session_message(bs, arg->msg, arg->msg_length);
	else if (arg->opcode == WSLAY_TEXT_FRAME)
		bs->ws->failed = -EPROTO;
}

static const struct wslay_event_callbacks hooks = {
	.recv_callback = recv_hook,
	.send_callback = send_hook,
	.genmask_callback = genmask_hook,
	.on_msg_recv_callback = msg_hook,
};

int bot_ws_open(struct bot_session *bs, const char *host, long port)
{
	char head[256];
	int n;

	bs->ws = calloc(1, sizeof(*bs->ws));
	if (!bs->ws)
		return -ENOMEM;
	/* A fixed key: the bot checks the status, not the accept hash. */
	n = snprintf(head, sizeof(head),
		     "GET /ws HTTP/1.1\r\nHost: %s:%ld\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		     "Sec-WebSocket-Version: 13\r\n\r\n", host, port);
	return net_session_send(bs->s, head, (size_t)n);
}

long bot_ws_recv(struct bot_session *bs, const uint8_t *data, size_t len)
{
	struct bot_ws *ws = bs->ws;
	size_t used = 0;

	if (!ws->ctx) {
		const uint8_t *end = NULL;

		for (size_t i = 3; i < len && !end; i++)
			if (memcmp(data + i - 3, "\r\n\r\n", 4) == 0)
				end = data + i + 1;
		if (!end)
			return len > 4096 ? -EPROTO : 0;
		if (len < 12 || memcmp(data, "HTTP/1.1 101", 12) != 0)
			return -EPROTO;
		if (wslay_event_context_client_init(&ws->ctx, &hooks, bs) != 0)
			return -ENOMEM;
		used = (size_t)(end - data);
		bot_session_ready(bs);
	}
	rg_ws_feed_set(&ws->in, data + used, len - used);
	if (wslay_event_recv(ws->ctx) != 0 || ws->failed)
		return ws->failed ? ws->failed : -EPROTO;
	if (!wslay_event_want_read(ws->ctx))
		return -ECONNRESET; /* the gateway closed (a kick, a shutdown) */
	if (wslay_event_send(ws->ctx) != 0)
		return -EPROTO;
	return (long)len;
}

int bot_ws_send(struct bot_session *bs, const uint8_t *msg, size_t len)
{
	struct wslay_event_msg m = { WSLAY_BINARY_FRAME, msg, len };

	if (!bs->ws->ctx || wslay_event_queue_msg(bs->ws->ctx, &m) != 0)
		return -ENOTCONN;
	return wslay_event_send(bs->ws->ctx) == 0 ? 0 : -ENOTCONN;
}

void bot_ws_free(struct bot_session *bs)
{
	if (!bs->ws)
		return;
	if (bs->ws->ctx)
		wslay_event_context_free(bs->ws->ctx);
	free(bs->ws);
	bs->ws = NULL;
}
