/* metrics.c: gamesrv's metrics registry (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>

#include <rg/admin.h>

int gs_metrics_create(struct net_runtime *rt, struct gs_metrics **out)
{
	static const char *const call_labels[GS_DB_CALLS] = {
		[GS_DB_LOGIN] = "call=\"login\"",
		[GS_DB_SAVE] = "call=\"save\"",
		[GS_DB_ADD_GOLD] = "call=\"add_gold\"",
		[GS_DB_NEW_EPOCH] = "call=\"new_epoch\"",
		[GS_DB_RENEW] = "call=\"renew\"",
		[GS_DB_ADOPT] = "call=\"adopt\"",
	};
	static const char *const result_labels[2] = { "result=\"ok\"", "result=\"failed\"" };
	struct gs_metrics *m = calloc(1, sizeof(*m));
	struct rg_metrics *r;

	if (!m)
		return -ENOMEM;
	m->registry = r = rg_metrics_create();
	if (!r) {
		free(m);
		return -ENOMEM;
	}
	m->db_link_up = rg_metrics_gauge(r, "ringgate_gamesrv_dbproxy_link_up", NULL,
					 "1 while a dbproxy link is up (Hello answered)");
	m->db_links_up = rg_metrics_gauge(r, "ringgate_gamesrv_dbproxy_links_up", NULL,
					  "dbproxy links up, of those --dbproxies lists");
	m->db_reconnects = rg_metrics_counter(r, "ringgate_gamesrv_dbproxy_reconnects_total", NULL,
					      "Times the dbproxy link came back up after the first");
	m->players_online = rg_metrics_gauge(r, "ringgate_gamesrv_players_online", NULL,
					     "Players logged in");
	m->tick_seconds = rg_metrics_histogram(r, "ringgate_gamesrv_tick_seconds", NULL,
					       "Time the game tick's work took",
					       RG_BUCKETS_SECONDS);
	m->world_updates = rg_metrics_counter(r, "ringgate_gamesrv_world_updates_total", NULL,
					      "WorldUpdate pushes sent (one per client per tick at most)");
	m->entries_held = rg_metrics_counter(
		r, "ringgate_gamesrv_update_entries_held_total", NULL,
		"Entered/moved entries a client's budget held back to a later tick (coalesced)");
	for (int i = 0; i < GS_DB_CALLS; i++)
		m->db_call_seconds[i] = rg_metrics_histogram(
			r, "ringgate_gamesrv_db_call_seconds", call_labels[i],
			"dbproxy call to its reply, by call", RG_BUCKETS_SECONDS);
	m->requests_expired = rg_metrics_counter(
		r, "ringgate_gamesrv_requests_expired_total", NULL,
		"Client requests dropped unapplied: their deadline passed before they were handled");
	m->players_detached = rg_metrics_gauge(
		r, "ringgate_gamesrv_players_detached", NULL,
		"Players whose connection went, kept in the world for a resume");
	m->resumes = rg_metrics_counter(r, "ringgate_gamesrv_resumes_total", NULL,
					"Sessions resumed on a new connection");
	m->resumes_refused = rg_metrics_counter(
		r, "ringgate_gamesrv_resumes_refused_total", NULL,
		"Resumes answered RESUME_EXPIRED or BAD_REQUEST");
	m->resume_replayed = rg_metrics_counter(r, "ringgate_gamesrv_resume_replayed_total", NULL,
						"Messages replayed by resumes");
	m->resume_kept_bytes = rg_metrics_gauge(r, "ringgate_gamesrv_resume_kept_bytes", NULL,
						"Bytes of messages kept for resumes, all sessions");
	m->resume_evicted = rg_metrics_counter(
		r, "ringgate_gamesrv_resume_evicted_total", NULL,
		"Kept messages dropped, oldest first, for the per-session or total bound");
	for (int i = 0; i < 2; i++) {
		m->handoffs_out[i] = rg_metrics_counter(r, "ringgate_gamesrv_handoffs_out_total",
							result_labels[i],
							"Players handed to another shard, by result");
		m->handoffs_in[i] = rg_metrics_counter(
			r, "ringgate_gamesrv_handoffs_in_total", result_labels[i],
			"Players taken over from another shard, by result");
	}
	m->redirects = rg_metrics_counter(
		r, "ringgate_gamesrv_redirects_total", NULL,
		"Logins sent on to the shard that holds the player's lease");
	m->fenced_writes = rg_metrics_counter(
		r, "ringgate_gamesrv_fenced_writes_total", NULL,
		"Writes the database refused as fenced (another shard holds the player)");
	m->self_fenced = rg_metrics_counter(
		r, "ringgate_gamesrv_self_fenced_total", NULL,
		"Players dropped because their lease could not be renewed in time");
	m->leases_lost = rg_metrics_counter(
		r, "ringgate_gamesrv_leases_lost_total", NULL,
		"Players a lease renewal found held by another owner");
	rg_metrics_add_net(r, rt);
	if (!rg_metrics_ok(r)) {
		gs_metrics_destroy(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void gs_metrics_destroy(struct gs_metrics *m)
{
	if (!m)
		return;
	rg_metrics_destroy(m->registry);
	free(m);
}
