/*
 * keepalive.h: heartbeats and dead-peer detection for one internal link,
 * on the link's loop thread.
 *
 * A timer checks the link a few times per heartbeat interval: when nothing
 * has been heard for dead_ms the link is disconnected (NET_REASON_IDLE_
 * TIMEOUT; a client service then redials), otherwise a heartbeat is sent
 * every interval_ms through the link's own send function (each link type
 * has its own envelope). The rule itself is rg_heartbeat's.
 */
#ifndef GAMESRV_KEEPALIVE_H
#define GAMESRV_KEEPALIVE_H

#include <net/net.h>
#include <rg/heartbeat.h>

/* Send one heartbeat frame on s; returns 0 or a negative errno. */
typedef int (*keepalive_send_fn)(struct net_session *s);

struct keepalive {
	struct net_session *session;
	struct net_timer *timer;
	struct rg_heartbeat hb;
	keepalive_send_fn send;
	const char *peer_role;         /* "gateway" / "dbproxy", for logs */
};

/*
 * Start watching s (call from on_connected). Returns 0 or a negative
 * errno (then nothing is armed). Loop thread.
 */
int keepalive_start(struct keepalive *k, struct net_session *s, uint32_t interval_ms,
		    uint32_t dead_ms, keepalive_send_fn send, const char *peer_role);

/* A frame arrived: the peer is alive. Loop thread. */
void keepalive_heard(struct keepalive *k);

/* Stop watching (call from on_disconnected; harmless if never started). */
void keepalive_stop(struct keepalive *k);

#endif /* GAMESRV_KEEPALIVE_H */
