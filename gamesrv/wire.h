/*
 * wire.h: sending protobuf-c messages as varint-delimited frames from the
 * game thread: packed into that thread's reusable buffer and handed to
 * net_send_to, which copies it to the session's loop. (On a link's own
 * loop thread, rg_link_send packs straight into the send queue.)
 */
#ifndef GAMESRV_WIRE_H
#define GAMESRV_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <protobuf-c/protobuf-c.h>

/* A growable pack buffer owned by one thread. Zero-initialise it. */
struct gs_wire_buf {
	uint8_t *data;
	size_t cap;
};

/* Pack m into b and queue it as one frame for session id. Returns 0, or a
 * negative errno (-ENOMEM, or net_send_to's). The owner thread of b. */
int gs_wire_send_to(struct net_runtime *rt, net_session_id id, struct gs_wire_buf *b,
		 const ProtobufCMessage *m);

/* Make b hold at least len bytes. Returns 0 or -ENOMEM. */
int gs_wire_buf_reserve(struct gs_wire_buf *b, size_t len);

/* Free b's memory. */
void gs_wire_buf_fini(struct gs_wire_buf *b);

#endif /* GAMESRV_WIRE_H */
