/*
 * rg/heartbeat.h: liveness bookkeeping for one internal link.
 *
 * Both ends of an internal link send a Heartbeat every interval_ms and
 * treat a link from which nothing (heartbeat or any other frame) arrived
 * for dead_ms as dead: they disconnect it, and the dialing side redials.
 * This struct holds only the clock arithmetic, so each process keeps the
 * same rule; sending and disconnecting stay with the caller. Owned by the
 * thread that runs the link's callbacks; all times are rg_now_ms() or
 * net_loop_now() milliseconds (one clock per link, consistently).
 */
#ifndef RG_HEARTBEAT_H
#define RG_HEARTBEAT_H

#include <stdbool.h>
#include <stdint.h>

struct rg_heartbeat {
	uint64_t interval_ms;
	uint64_t dead_ms;
	uint64_t last_heard_ms;
	uint64_t last_sent_ms;
};

/* Start tracking a link that connected at now_ms. */
void rg_heartbeat_init(struct rg_heartbeat *hb, uint64_t interval_ms,
		       uint64_t dead_ms, uint64_t now_ms);

/* A frame (any frame) arrived at now_ms. */
void rg_heartbeat_heard(struct rg_heartbeat *hb, uint64_t now_ms);

/* True when a Heartbeat should be sent now; records it as sent. */
bool rg_heartbeat_due(struct rg_heartbeat *hb, uint64_t now_ms);

/* True when the peer has been silent for more than dead_ms. */
bool rg_heartbeat_dead(const struct rg_heartbeat *hb, uint64_t now_ms);

#endif /* RG_HEARTBEAT_H */
