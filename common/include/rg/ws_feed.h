/*
 * rg/ws_feed.h: libwslay's recv callback over bytes already in memory.
 * Both ends of ringgate's WebSocket (the gateway's port, the bot's
 * --transport ws) sit on libnet sessions in on_recv mode: wslay reads what
 * on_recv was handed, and "would block" at its end. Header-only, for code
 * that links libwslay (the common library does not); include it after
 * <wslay/wslay.h>.
 */
#ifndef RG_WS_FEED_H
#define RG_WS_FEED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

/* The bytes of one on_recv call, as wslay reads them. */
struct rg_ws_feed {
	const uint8_t *data;
	size_t len, off;
	uint64_t total;     /* bytes read over the connection's life */
};

/* Point the feed at on_recv's data[0..len) (valid during that call). */
static inline void rg_ws_feed_set(struct rg_ws_feed *f, const uint8_t *data, size_t len)
{
	f->data = data;
	f->len = len;
	f->off = 0;
}

/* A wslay recv_callback's body: copy up to len bytes into buf and return
 * how many, or -1 with WSLAY_ERR_WOULDBLOCK set once the feed is empty. */
static inline ssize_t rg_ws_feed_read(wslay_event_context_ptr ctx, struct rg_ws_feed *f,
				      uint8_t *buf, size_t len)
{
	size_t n = f->len - f->off;

	if (n == 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(buf, f->data + f->off, n);
	f->off += n;
	f->total += n;
	return (ssize_t)n;
}

#endif /* RG_WS_FEED_H */
