/*
 * writer: the threads that change the database, with group commit.
 *
 * Network threads queue writes (struct dbp_write) into a bounded FIFO; a
 * writer thread takes up to batch_max of them at a time and applies them
 * in one transaction (dbp_store_apply_batch), so one fsync covers the
 * whole batch. Only after COMMIT has returned does it call each write's
 * done() callback, oldest first: an acknowledgement sent from done() means
 * the write is durable (at the store's sync level; see docs/storage.md).
 *
 * A pool (dbp_writer_start_pool, a server backend) runs one such queue and
 * thread per write connection, "lanes" that commit side by side; SQLite
 * has one writer per file, so one lane.
 *
 * Order: each player's writes go to one lane (by player id; a create by
 * its name), and a lane is one queue and one thread, so writes for one
 * player are applied in the order they were queued, that is the order
 * they arrived on a link.
 *
 * Push-back: a full queue refuses the write at once (-EAGAIN) instead of
 * blocking the caller's network loop; dbproxy answers DB_BUSY.
 *
 * Failures: a write that cannot apply for its own reason (no such player,
 * name taken, overflow, deadline passed while queued) gets that result and
 * the batch goes on. A database failure (I/O, disk full) or a failed COMMIT
 * rolls the whole batch back and every write in it gets the error: nothing
 * of a batch is acknowledged unless all of it is durable.
 *
 * Database down (a server backend): a batch that finds the connection
 * lost gets -ENOTCONN as a whole, and from then on submits are refused
 * with -ENOTCONN at once (dbproxy answers DB_UNAVAILABLE, never making a
 * caller wait) while the thread retries the connection
 * (dbp_store_reconnect's capped backoff) until it is back:
 *
 *   up --(a batch fails -ENOTCONN)--> down --(dbp_store_reconnect 0)--> up
 *      run_batch                          writer_main, every RETRY_POLL_MS
 */
#ifndef DBP_WRITER_H
#define DBP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "rg/metrics.h"

#include "queue.h"
#include "store.h"

/* struct dbp_write, the unit of work, is in store.h: the backends apply it. */

/* Counters for logs and benchmarks; read with dbp_writer_stats(). */
struct dbp_writer_stats {
	uint64_t writes;          /* writes that reached done()               */
	uint64_t commits;         /* transactions committed                   */
	uint64_t failed_batches;  /* transactions rolled back                 */
	uint64_t busy_refusals;   /* submits refused because the queue was full */
	uint64_t unavailable;     /* writes answered -ENOTCONN (database down) */
	uint64_t reconnects;      /* times the connection came back           */
	/* Leases (docs/storage.md "Leases"), as committed: */
	uint64_t fenced;          /* writes refused DBP_FENCED (save, add_gold,
				     adopt)                                   */
	uint64_t leases_taken;    /* logins that took a lease (creates too)   */
	uint64_t leases_held;     /* lease takes refused DBP_LEASE_HELD       */
	uint64_t leases_renewed;  /* leases extended by renewals              */
	uint64_t leases_lost;     /* players a renewal answered lost          */
	uint64_t adopts;          /* leases moved on by an adopt              */
	bool up;                  /* every lane reaches the database (as last
				     seen)                                    */
};

struct dbp_writer;

/*
 * Start the writer thread on an open write connection. From now until
 * dbp_writer_stop() returns, only the writer thread uses st; the caller
 * still owns it and closes it afterwards. queue_max bounds the queue,
 * batch_max the writes per transaction (1 = one transaction per write).
 * Returns 0 and sets *out, or a negative errno. Any thread.
 */
int dbp_writer_start(struct dbp_store *st, size_t queue_max, size_t batch_max,
		    struct dbp_writer **out /* OUT */);

/*
 * dbp_writer_start with one lane per store (nstores write connections to
 * one database, each used only by its lane's thread until stop). The
 * queue_max bound is split over the lanes. Returns 0 or a negative errno.
 */
int dbp_writer_start_pool(struct dbp_store *const *stores, size_t nstores, size_t queue_max,
			  size_t batch_max, struct dbp_writer **out /* OUT */);

/*
 * Queue a write. Returns 0 (done() will be called exactly once), -EAGAIN
 * when the queue is full, -ENOTCONN while the database is down, or
 * -ESHUTDOWN once stopping has begun; on error done() is not called and
 * the caller keeps w. Any thread.
 */
int dbp_writer_submit(struct dbp_writer *wr, struct dbp_write *w);

/*
 * The number of lanes, and the lane a player's writes go to (0 ..
 * lanes - 1). A write about several players (DBP_WRITE_RENEW_LEASES) goes
 * to the lane of its first: the caller splits such a request so that each
 * write's players share a lane, so that a transaction never locks rows of
 * another lane's players (no deadlock between lanes) and each player's
 * writes stay in order. Any thread.
 */
size_t dbp_writer_lanes(const struct dbp_writer *wr);
size_t dbp_writer_lane_of_player(const struct dbp_writer *wr, uint64_t player_id);

/*
 * Record each batch's size and its BEGIN..COMMIT time (nanoseconds) in
 * these histograms (either may be NULL). Call before the first
 * dbp_writer_submit: the writer thread reads them without a lock.
 */
void dbp_writer_observe(struct dbp_writer *wr, struct rg_histogram *batch_sizes,
		       struct rg_histogram *commit_ns);

/* Writes queued and not yet taken by the writer thread. Any thread. */
size_t dbp_writer_queued(struct dbp_writer *wr);

/* A snapshot of the counters. Any thread. */
void dbp_writer_stats(struct dbp_writer *wr, struct dbp_writer_stats *out /* OUT */);

/*
 * Refuse new writes, apply and commit everything already queued (calling
 * every done()), join the thread and free the writer; the final counters
 * go to *final unless it is NULL. Not from done().
 */
void dbp_writer_stop(struct dbp_writer *wr, struct dbp_writer_stats *final /* OUT */);

#endif /* DBP_WRITER_H */
