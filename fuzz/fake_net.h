/*
 * fake_net: libnet's public API (net/net.h) without sockets or threads, the
 * test seam of the process fuzz targets.
 *
 * A process's own files (gateway's client side, gamesrv's links, dbproxy's
 * service) are compiled unchanged and linked against this instead of
 * libnet. Their net_server_start / net_client_start calls register
 * services here; the fuzz target then opens sessions on them, feeds frame
 * bodies to their on_frame callback, advances a fake clock for their
 * timers, and reads back every frame they sent. Everything runs on the
 * calling thread, in an order libnet also allows:
 *
 *   - callbacks never nest: a send or disconnect inside a callback is only
 *     recorded; fake_net_settle() then runs posted tasks and delivers
 *     on_disconnected for sessions that began to disconnect;
 *   - sent frames (net_session_send_frame, net_session_reserve_frame,
 *     net_send_to) are kept, copied, in one outbox in send order, tagged
 *     with the session they were sent on;
 *   - one loop (index 0); session ids follow libnet's layout (slot |
 *     loop << 24 | generation << 32), never 0, never reused.
 *
 * Every function of net/net.h is defined here, so libnet itself is never
 * linked in (the process libraries list it, but no member is pulled): when
 * net.h gains a function that a process calls, add it here too, or the
 * fuzz targets fail to link (duplicate or missing symbols).
 *
 * One fake world exists at a time: net_runtime_create() starts it and
 * net_runtime_destroy() frees everything in it (sessions, timers, tasks,
 * the outbox). Not thread-safe; fuzz targets are single-threaded.
 */
#ifndef RINGGATE_FUZZ_FAKE_NET_H
#define RINGGATE_FUZZ_FAKE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>

/* One frame a process sent. */
struct fake_sent {
	net_session_id session;   /* the session it was sent on              */
	unsigned service;         /* that session's service (registration
				     order of net_server/client_start)        */
	bool framed;              /* false: raw bytes from net_session_send  */
	uint8_t *bytes;
	size_t len;
};

/* Services registered so far (net_server_start + net_client_start). */
unsigned fake_net_service_count(void);

/*
 * Open a session on service i (a client connecting to a server, or a
 * client service's dial completing): on_connected runs, then the world
 * settles. Returns the session, or NULL when the service is stopped or the
 * session was disconnected at once (its on_disconnected has run).
 */
struct net_session *fake_net_connect(unsigned service);

/* Look a live session up by id; NULL when it has gone. */
struct net_session *fake_net_find(net_session_id id);

/*
 * Deliver one frame body to a live session's on_frame (nothing when it is
 * disconnecting), disconnecting it with NET_REASON_APP_ERROR on a negative
 * return as libnet does, then settle. Bodies longer than the session's
 * max frame (net_session_set_max_frame, else the service's max_frame) are
 * refused as libnet would (NET_REASON_FRAME_TOO_LARGE).
 * Returns on_frame's result, or -ENOTCONN / -EMSGSIZE.
 */
int fake_net_frame(net_session_id id, const uint8_t *body, size_t len);

/*
 * Deliver raw bytes to a live session of an on_recv service: they join the
 * bytes it left unconsumed, and on_recv sees them all, as libnet does
 * (past the service's recv_buffer_max: NET_REASON_RECV_OVERFLOW; a negative
 * return: NET_REASON_APP_ERROR), then settle. Returns 0 or a negative code.
 */
int fake_net_recv(net_session_id id, const uint8_t *data, size_t len);

/* The peer closes the session (NET_REASON_PEER_CLOSED), then settle. */
void fake_net_close(net_session_id id);

/* Advance the fake clock by ms, fire due timers (each at most once per
 * call), then settle. */
void fake_net_advance(uint64_t ms);

/* Run posted tasks and finish pending disconnects until nothing is left. */
void fake_net_settle(void);

/* Take the outbox: *count frames, oldest first; the caller frees it with
 * fake_net_free_sent(). */
struct fake_sent *fake_net_take_sent(size_t *count /* OUT */);
void fake_net_free_sent(struct fake_sent *sent, size_t count);

/*
 * The end of a process target's run: stop rt as the process's shutdown
 * does (net_runtime_stop: every session told NET_REASON_SHUTDOWN, then
 * settled) and drop the outbox unread. Returns the sessions still open,
 * which must be 0 (the targets FUZZ_CHECK it): stopping the runtime ends
 * them all, so one left is a session the process holds on to.
 */
size_t fake_net_stop(struct net_runtime *rt);

#endif /* RINGGATE_FUZZ_FAKE_NET_H */
