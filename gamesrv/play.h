/*
 * play.h: the game's request handlers, as game.c's event loop calls them.
 * Game thread only.
 */
#ifndef GAMESRV_PLAY_H
#define GAMESRV_PLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "game.h"
#include "internal.pb-c.h"

/* Handle one client request that came over gateway link `link`: validate
 * it, apply it, and answer (now, or when its dbproxy call ends). A request
 * whose deadline_ms (rg_now_ms() clock; 0: none) has passed is dropped
 * unapplied: the gateway has answered it TIMEOUT. */
void gs_play_request(struct gs_game *g, net_session_id link, uint64_t deadline_ms,
		  const Ringgate__Internal__ClientRequest *req);

/* The gateway's HandoffResult for a handoff this shard started (over
 * link): ok, the player is the target's (dropped here unsaved); not ok,
 * it plays on here (the move is answered SERVICE_UNAVAILABLE). One for no
 * handoff in flight is ignored. */
void gs_play_handoff_result(struct gs_game *g, net_session_id link,
			 const Ringgate__Internal__HandoffResult *hr);

/* A client session ended (ClientGone, link down, drain, kick): its player,
 * if it had one, leaves the game and is saved (c is freed); with resume on
 * and not draining, it stays in the game, detached, for the grace period
 * instead (c stays, under its old key; stream.h). A login still out will
 * be answered to nobody. */
void gs_play_client_gone(struct gs_game *g, struct gs_client *c);

/* Drop an ONLINE player unsaved (its lease is lost, fenced or about to
 * end): its zone is told it left, its connection (unless detached) is
 * kicked with code and text, and the line "lease: player <id> offline
 * epoch <E> (<reason>)" is logged. A frozen player (in a handoff, offline
 * here already) only forgets its lease: the handoff ends it. A leaving
 * one is left alone (its last save meets the fence). p may be freed on
 * return unless the caller pins it. */
void gs_play_drop(struct gs_game *g, struct gs_player *p, Ringgate__Client__ErrorCode code,
		  const char *text, const char *reason);

/* Time-driven work at a tick: resend saves refused as busy once due (and
 * held ones once the dbproxy link is back), end the grace period of
 * detached players whose time is up, the tick's share of the
 * autosave pass (every online player that moved is saved about once per
 * autosave_ms, spread evenly over it), and under interest management each
 * client's WorldUpdate. */
void gs_play_tick(struct gs_game *g, uint64_t now_ms);

/* True while refused saves wait for their resend (the drain waits too). */
bool gs_play_saves_waiting(const struct gs_game *g);

/* End the saves still waiting with -ECANCELED (before gs_db_link_fini). */
void gs_play_fini(struct gs_game *g);

#endif /* GAMESRV_PLAY_H */
