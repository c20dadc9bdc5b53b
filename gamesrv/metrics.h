/*
 * metrics.h: what gamesrv shows on its admin port (rg/metrics.h), beyond
 * libnet's own figures:
 *
 *   ringgate_gamesrv_dbproxy_link_up             1 while a dbproxy has answered Hello
 *   ringgate_gamesrv_dbproxy_links_up            dbproxy links up (of --dbproxies)
 *   ringgate_gamesrv_dbproxy_reconnects_total    link ups after the first
 *   ringgate_gamesrv_players_online              players logged in
 *   ringgate_gamesrv_tick_seconds                time the tick's work took
 *   ringgate_gamesrv_db_call_seconds{call=}      dbproxy call -> its reply
 *                                                (login, save, add_gold, new_epoch,
 *                                                renew, adopt)
 *   ringgate_gamesrv_requests_expired_total      client requests dropped unapplied:
 *                                                their deadline passed first
 *   ringgate_gamesrv_players_detached            players whose connection went,
 *                                                waiting for a resume (stream.h)
 *   ringgate_gamesrv_resumes_total               sessions resumed
 *   ringgate_gamesrv_resumes_refused_total       resumes answered RESUME_EXPIRED
 *                                                or BAD_REQUEST
 *   ringgate_gamesrv_resume_replayed_total       messages replayed by resumes
 *   ringgate_gamesrv_resume_kept_bytes           bytes kept for resumes, all sessions
 *   ringgate_gamesrv_resume_evicted_total        kept messages dropped for the bounds
 *   ringgate_gamesrv_handoffs_out_total{result=} players handed to another shard
 *                                                (ok, failed: refused or no answer)
 *   ringgate_gamesrv_handoffs_in_total{result=}  players taken over from another shard
 *                                                (ok, failed)
 *   ringgate_gamesrv_redirects_total             logins sent on to the shard holding
 *                                                the player's lease (Redirect)
 *   ringgate_gamesrv_fenced_writes_total         writes the database refused as fenced
 *                                                (DB_FENCED: another shard had the player)
 *   ringgate_gamesrv_self_fenced_total           players dropped because their lease could
 *                                                not be renewed in time
 *   ringgate_gamesrv_leases_lost_total           players a lease renewal found taken by
 *                                                another owner
 *
 * The game thread updates all of them (relaxed atomics); the admin
 * server's thread reads them. Only calls answered by dbproxy are timed:
 * timeouts and link-down failures are not latencies.
 */
#ifndef GAMESRV_METRICS_H
#define GAMESRV_METRICS_H

#include <net/net.h>
#include <rg/metrics.h>

enum gs_db_call {
	GS_DB_LOGIN,
	GS_DB_SAVE,
	GS_DB_ADD_GOLD,
	GS_DB_NEW_EPOCH,
	GS_DB_RENEW,
	GS_DB_ADOPT,
	GS_DB_CALLS
};

struct gs_metrics {
	struct rg_metrics *registry;
	struct rg_gauge *db_link_up;
	struct rg_gauge *db_links_up;
	struct rg_counter *db_reconnects;
	struct rg_gauge *players_online;
	struct rg_histogram *tick_seconds;
	struct rg_counter *world_updates;   /* WorldUpdates sent             */
	struct rg_counter *entries_held;    /* entered/moved held back by the
					       per-client budget             */
	struct rg_histogram *db_call_seconds[GS_DB_CALLS];
	struct rg_counter *requests_expired;
	struct rg_gauge *players_detached;
	struct rg_counter *resumes;
	struct rg_counter *resumes_refused;
	struct rg_counter *resume_replayed;
	struct rg_gauge *resume_kept_bytes;
	struct rg_counter *resume_evicted;
	struct rg_counter *handoffs_out[2]; /* [0] ok, [1] failed          */
	struct rg_counter *handoffs_in[2];
	struct rg_counter *redirects;
	struct rg_counter *fenced_writes;
	struct rg_counter *self_fenced;
	struct rg_counter *leases_lost;
};

/* Create the registry with every metric above plus rt's libnet figures.
 * Returns 0 and sets *out, or -ENOMEM. Main thread. */
int gs_metrics_create(struct net_runtime *rt, struct gs_metrics **out /* OUT */);

/* Free it once nothing updates it (game thread joined, admin stopped).
 * NULL is fine. */
void gs_metrics_destroy(struct gs_metrics *m);

#endif /* GAMESRV_METRICS_H */
