/* heartbeat.c: the liveness rule of internal links (see rg/heartbeat.h). */
#include "rg/heartbeat.h"

void rg_heartbeat_init(struct rg_heartbeat *hb, uint64_t interval_ms,
		       uint64_t dead_ms, uint64_t now_ms)
{
	hb->interval_ms = interval_ms;
	hb->dead_ms = dead_ms;
	hb->last_heard_ms = now_ms;
	hb->last_sent_ms = now_ms;
}

void rg_heartbeat_heard(struct rg_heartbeat *hb, uint64_t now_ms)
{
	if (now_ms > hb->last_heard_ms)
		hb->last_heard_ms = now_ms;
}

bool rg_heartbeat_due(struct rg_heartbeat *hb, uint64_t now_ms)
{
	if (now_ms < hb->last_sent_ms + hb->interval_ms)
		return false;
	hb->last_sent_ms = now_ms;
	return true;
}

bool rg_heartbeat_dead(const struct rg_heartbeat *hb, uint64_t now_ms)
{
	return now_ms > hb->last_heard_ms + hb->dead_ms;
}
