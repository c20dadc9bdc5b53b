/* metrics.c: dbproxy's metrics registry (see metrics.h). */
#include "metrics.h"

#include <errno.h>
#include <stdlib.h>

#include "rg/admin.h"

struct dbp_metrics {
	struct rg_metrics *registry;
	struct dbp_writer *writer;
	struct rg_gauge *queue_depth, *backend_up;
	struct rg_counter *writes, *commits, *failed_batches, *busy_refusals;
	struct rg_counter *unavailable, *reconnects;
	struct rg_counter *fenced, *leases_taken, *leases_held, *leases_renewed, *leases_lost;
	struct rg_counter *adopts;
};

static void collect(void *arg)
{
	struct dbp_metrics *m = arg;
	struct dbp_writer_stats st;

	rg_gauge_set(m->queue_depth, (int64_t)dbp_writer_queued(m->writer));
	dbp_writer_stats(m->writer, &st);
	rg_counter_set(m->writes, st.writes);
	rg_counter_set(m->commits, st.commits);
	rg_counter_set(m->failed_batches, st.failed_batches);
	rg_counter_set(m->busy_refusals, st.busy_refusals);
	rg_gauge_set(m->backend_up, st.up);
	rg_counter_set(m->unavailable, st.unavailable);
	rg_counter_set(m->reconnects, st.reconnects);
	rg_counter_set(m->fenced, st.fenced);
	rg_counter_set(m->leases_taken, st.leases_taken);
	rg_counter_set(m->leases_held, st.leases_held);
	rg_counter_set(m->leases_renewed, st.leases_renewed);
	rg_counter_set(m->leases_lost, st.leases_lost);
	rg_counter_set(m->adopts, st.adopts);
}

int dbp_metrics_create(struct net_runtime *rt, struct dbp_writer *wr,
			   struct dbp_metrics **out)
{
	struct dbp_metrics *m = calloc(1, sizeof(*m));
	struct rg_metrics *r;
	struct rg_histogram *batch_size, *commit_seconds;

	if (!m)
		return -ENOMEM;
	m->writer = wr;
	m->registry = r = rg_metrics_create();
	if (!r) {
		free(m);
		return -ENOMEM;
	}
	batch_size = rg_metrics_histogram(r, "ringgate_dbproxy_batch_size", NULL,
					  "Writes per group commit", RG_BUCKETS_SIZES);
	commit_seconds = rg_metrics_histogram(r, "ringgate_dbproxy_commit_seconds", NULL,
					      "Time from BEGIN to COMMIT of one batch",
					      RG_BUCKETS_SECONDS);
	m->queue_depth = rg_metrics_gauge(r, "ringgate_dbproxy_write_queue_depth", NULL,
					  "Writes queued for the writer thread");
	m->writes = rg_metrics_counter(r, "ringgate_dbproxy_writes_total", NULL,
				       "Writes applied and answered");
	m->commits = rg_metrics_counter(r, "ringgate_dbproxy_commits_total", NULL,
					"Transactions committed");
	m->failed_batches = rg_metrics_counter(r, "ringgate_dbproxy_failed_batches_total", NULL,
					       "Transactions rolled back");
	m->busy_refusals = rg_metrics_counter(r, "ringgate_dbproxy_busy_refusals_total", NULL,
					      "Writes refused because the queue was full");
	m->backend_up = rg_metrics_gauge(r, "ringgate_dbproxy_backend_up", NULL,
					 "1 while the database is reachable (SQLite: always)");
	m->unavailable = rg_metrics_counter(r, "ringgate_dbproxy_unavailable_total", NULL,
					    "Writes answered unavailable: the database was down");
	m->reconnects = rg_metrics_counter(r, "ringgate_dbproxy_backend_reconnects_total", NULL,
					   "Times the database connection came back");
	m->fenced = rg_metrics_counter(r, "ringgate_dbproxy_fenced_writes_total", NULL,
				       "Writes refused DB_FENCED: their lease epoch was not the "
				       "player's");
	m->leases_taken = rg_metrics_counter(r, "ringgate_dbproxy_leases_taken_total", NULL,
					     "Logins that took a player's lease");
	m->leases_held = rg_metrics_counter(r, "ringgate_dbproxy_lease_held_total", NULL,
					    "Logins answered DB_LEASE_HELD: another live owner "
					    "held the lease");
	m->leases_renewed = rg_metrics_counter(r, "ringgate_dbproxy_leases_renewed_total", NULL,
					       "Leases extended by renewals");
	m->leases_lost = rg_metrics_counter(r, "ringgate_dbproxy_leases_lost_total", NULL,
					    "Players a renewal answered lost");
	m->adopts = rg_metrics_counter(r, "ringgate_dbproxy_adopts_total", NULL,
				       "Leases moved to another shard by an adopt");
	rg_metrics_add_net(r, rt);
	if (rg_metrics_on_collect(r, collect, m, NULL) < 0 || !rg_metrics_ok(r)) {
		dbp_metrics_destroy(m);
		return -ENOMEM;
	}
	dbp_writer_observe(wr, batch_size, commit_seconds);
	*out = m;
	return 0;
}

struct rg_metrics *dbp_metrics_registry(struct dbp_metrics *m)
{
	return m->registry;
}

void dbp_metrics_destroy(struct dbp_metrics *m)
{
	if (!m)
		return;
	rg_metrics_destroy(m->registry);
	free(m);
}
