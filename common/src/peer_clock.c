/*
 * peer_clock.c: request ages from the peer's clock stamps (see
 * rg/peer_clock.h).
 */
#include "rg/peer_clock.h"

void rg_peer_clock_init(struct rg_peer_clock *pc)
{
	pc->known = false;
	pc->base_ms = 0;
	pc->seen_ms = 0;
}

/* Learn from one stamp; returns the age of the request it came with. */
static uint64_t age_of(struct rg_peer_clock *pc, uint64_t sent_ms, uint64_t now_ms)
{
	int64_t diff = (int64_t)(now_ms - sent_ms); /* distance + transit */

	if (pc->known) {
		/* Whole milliseconds of drift allowance since the mark moved;
		 * until one has built up, seen_ms stays, so none is lost. */
		uint64_t creep = (now_ms - pc->seen_ms) * RG_PEER_CLOCK_DRIFT_PPM / 1000000;

		if (creep > 0) {
			pc->base_ms += (int64_t)creep;
			pc->seen_ms = now_ms;
		}
	}
	if (!pc->known || diff < pc->base_ms) {
		pc->known = true;
		pc->base_ms = diff;
		pc->seen_ms = now_ms;
	}
	return (uint64_t)(diff - pc->base_ms);
}

uint64_t rg_peer_clock_deadline(struct rg_peer_clock *pc, uint64_t sent_ms,
				uint32_t deadline_ms, uint64_t now_ms)
{
	uint64_t age = sent_ms != 0 ? age_of(pc, sent_ms, now_ms) : 0;
	uint64_t deadline = now_ms + deadline_ms;

	if (deadline_ms == 0)
		return 0;
	return deadline > age + 1 ? deadline - age : 1;
}
