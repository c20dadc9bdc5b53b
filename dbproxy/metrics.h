/*
 * metrics.h: what dbproxy shows on its admin port (rg/metrics.h), beyond
 * libnet's own figures:
 *
 *   ringgate_dbproxy_batch_size            writes per group commit (histogram)
 *   ringgate_dbproxy_commit_seconds        BEGIN .. COMMIT of a batch (histogram)
 *   ringgate_dbproxy_write_queue_depth     writes queued for the writer now
 *   ringgate_dbproxy_writes_total, _commits_total, _failed_batches_total,
 *   ringgate_dbproxy_busy_refusals_total   the writer's counters
 *   ringgate_dbproxy_backend_up            1 while the database is reachable
 *   ringgate_dbproxy_unavailable_total     writes answered DB_UNAVAILABLE
 *   ringgate_dbproxy_backend_reconnects_total  times the database came back
 *   ringgate_dbproxy_fenced_writes_total   writes refused DB_FENCED
 *   ringgate_dbproxy_leases_taken_total, _lease_held_total,
 *   ringgate_dbproxy_leases_renewed_total, _leases_lost_total,
 *   ringgate_dbproxy_adopts_total          the leases (docs/storage.md)
 *
 * The writer thread observes the histograms; the rest is read from the
 * writer at each scrape, so the admin server must stop before the writer.
 */
#ifndef DBP_METRICS_H
#define DBP_METRICS_H

#include "net/net.h"
#include "rg/metrics.h"

#include "writer.h"

struct dbp_metrics;

/*
 * Create the registry for rt and wr and hook the writer's histograms in
 * (dbp_writer_observe: before the first write is submitted). Returns 0 and
 * sets *out, or -ENOMEM. Main thread.
 */
int dbp_metrics_create(struct net_runtime *rt, struct dbp_writer *wr,
			   struct dbp_metrics **out /* OUT */);

/* The registry, for the admin server. */
struct rg_metrics *dbp_metrics_registry(struct dbp_metrics *m);

/* Free once the writer has stopped and the admin server is gone. NULL is fine. */
void dbp_metrics_destroy(struct dbp_metrics *m);

#endif /* DBP_METRICS_H */
