/*
 * rg/peer_clock.h: how old a request from a peer is, without synchronized
 * clocks.
 *
 * Each internal request carries the sender's monotonic clock (sent_ms)
 * and what is left of its deadline (deadline_ms, proto/internal.proto).
 * The receiver cannot subtract clocks of two processes (or hosts) directly,
 * but it can learn their distance: receive time - sent_ms is that distance
 * plus the time in transit, so its smallest value over the link is the
 * distance plus the quickest transit seen. A request whose difference is
 * larger spent the excess in transit: in socket buffers or queues, say
 * while the receiver was stopped. The age is never overestimated, so no
 * work is dropped that still had time; it can be underestimated by the
 * quickest transit (well under a millisecond on a LAN), so work may be
 * done that far past the sender's deadline.
 *
 * Monotonic clocks of two hosts may run at slightly different rates: the
 * smallest difference is let rise by RG_PEER_CLOCK_DRIFT_PPM of the time
 * since it was last seen, so a drift cannot make fresh requests look old.
 *
 * One struct per link (a new link, perhaps to a restarted peer, starts
 * afresh), owned by the thread that handles the link's frames.
 */
#ifndef RG_PEER_CLOCK_H
#define RG_PEER_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* The clock-rate difference allowed for (crystals are within ~50 ppm). */
#define RG_PEER_CLOCK_DRIFT_PPM 200

struct rg_peer_clock {
	bool known;        /* one stamped request seen                     */
	int64_t base_ms;   /* smallest receive - sent_ms seen (with drift) */
	uint64_t seen_ms;  /* local time base_ms was last updated          */
};

/* A link that has seen nothing yet. */
void rg_peer_clock_init(struct rg_peer_clock *pc);

/*
 * A request stamped sent_ms (the peer's monotonic ms) arrived at now_ms
 * (ours) with deadline_ms left when it was sent. Learns from the stamp and
 * returns the request's deadline on our clock (now_ms - its age +
 * deadline_ms, at least 1, so a passed one is in the past), or 0 when
 * deadline_ms is 0 (no deadline). sent_ms 0 (an unstamped sender) counts
 * as age 0.
 */
uint64_t rg_peer_clock_deadline(struct rg_peer_clock *pc, uint64_t sent_ms,
				uint32_t deadline_ms, uint64_t now_ms);

#endif /* RG_PEER_CLOCK_H */
