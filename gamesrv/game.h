/*
 * game.h: the game thread - the only thread that touches game state.
 *
 * It takes events from the network loops' queue (game.c), applies the
 * game's rules (play.c: login, move, chat, earn, ping, logout, kicks and
 * saves; rules.c and world.c below them), talks to dbproxy through db_link
 * and to clients through gate_out, and runs a fixed tick for time-driven
 * work (call deadlines, save retries, autosave). It never touches a
 * socket: all output goes through libnet's any-thread functions.
 *
 * Life: gs_game_init -> gs_game_start -> (events...) -> gs_game_stop (pushes the
 * shutdown event and joins: the thread kicks and saves every online
 * player, waits for the replies up to drain_ms, then exits) -> gs_game_fini.
 */
#ifndef GAMESRV_GAME_H
#define GAMESRV_GAME_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>

#include "bundle.h"
#include "db_link.h"
#include "gate_link.h"
#include "metrics.h"
#include "queue.h"
#include "rules.h"
#include "stream.h"
#include "world.h"

struct gs_game_config {
	uint32_t tick_ms;          /* the fixed tick                          */
	uint32_t call_deadline_ms; /* deadline of each dbproxy call           */
	uint32_t drain_ms;         /* how long shutdown waits for saves       */
	uint32_t autosave_ms;      /* save moved players this often; 0 = off  */
	struct gs_zone_bounds zone;   /* the first zone (new players start here) */
	const struct gs_zone_bounds *more_zones; /* and these (copied)            */
	size_t more_zone_count;
	struct gs_interest_config interest; /* who sees whom; off: broadcast   */
	struct gs_stream_config resume;     /* grace_ms 0: no resume            */
	const struct rg_link_key *link_key; /* resume tokens' key (may be NULL:
					       a random one)                 */
	struct gs_metrics *metrics;/* updated by the game thread; NULL: none  */
	unsigned dbproxy_count;    /* dbproxy links (db_link.h); 0 = 1        */
	uint32_t shard;            /* this shard's id; 0 = 1                  */
	const struct gs_zone_shard *zone_shards; /* zones of other shards than 1 */
	size_t zone_shard_count;
	uint32_t lease_ms;         /* a lease's length; 0 = the default       */
};

/* One recipient of a push: a client session on a gateway link. */
struct gs_game_target {
	net_session_id link;
	uint64_t session;
	uint64_t msg_no;           /* its number of the push (0: resume off) */
};

struct gs_save_call;
struct handoff_call;

struct gs_game {
	struct gs_game_config cfg;
	struct gs_game_queue *queue;
	struct gs_world world;
	struct gs_db_link db;
	struct gs_gate_out out;
	struct gs_bundle views;       /* cfg.interest.enabled: the views        */
	struct gs_streams streams;    /* players' sessions, kept for resumes    */
	pthread_t thread;
	bool thread_started;
	bool draining;
	uint64_t drain_deadline_ms;
	struct gs_save_call *save_retries;   /* play.c: refused as busy, resent
					     by a later tick                */
	struct gs_player *autosave_at;       /* play.c: where the autosave pass
					     goes on (pinned), NULL: start  */
	uint64_t autosave_credit;         /* play.c: players to visit, times
					     autosave_ms                    */
	uint64_t autosave_last_ms;        /* play.c: the last autosave step */
	struct gs_game_target *targets;   /* scratch for broadcasts          */
	uint64_t *target_sessions;
	uint64_t *target_msg_nos;
	size_t targets_cap;
	size_t renewals_out;              /* lease.c: DbRenewLeases in flight  */
	uint64_t renew_at_ms;             /* lease.c: the next renewal        */
	uint64_t fence_check_ms;          /* lease.c: no lease ends before    */
	struct handoff_call *handoffs;    /* play.c: handoffs waiting for
					     their HandoffResult            */
};

/* Set up the game state (not running). Returns 0, -EINVAL for a bad zone,
 * -ENOMEM. Main thread. */
int gs_game_init(struct gs_game *g, const struct gs_game_config *cfg, struct net_runtime *rt,
	      struct gs_game_queue *q);

/* Start the game thread. Returns 0 or a negative errno. Main thread. */
int gs_game_start(struct gs_game *g);

/*
 * Drain and stop: queue the shutdown event and wait for the game thread to
 * finish (every player kicked and saved, or drain_ms passed). Returns the
 * number of saves and calls still unanswered when it gave up (0 = clean;
 * a count, not exact when busy saves were waiting for a retry).
 * Main thread; the runtime must still be running so saves can go out.
 */
size_t gs_game_stop(struct gs_game *g);

/*
 * Apply one event from the queue (a client request, a client or link gone,
 * a dbproxy reply or link change, the shutdown): the game thread's whole
 * dispatch. The caller still owns and frees ev. Game thread only; public so
 * that fuzz/ can drive the game without the thread (fuzz/fuzz_gamesrv.c).
 */
void gs_game_handle_event(struct gs_game *g, struct gs_game_event *ev);

/* Free the game state (after gs_game_stop, or if never started). */
void gs_game_fini(struct gs_game *g);

#endif /* GAMESRV_GAME_H */
