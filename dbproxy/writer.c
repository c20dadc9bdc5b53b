/*
 * writer.c: the group-commit writer threads (see writer.h).
 *
 * A writer is a pool of lanes, one per write connection: each lane is a
 * queue, a thread and a store. A write goes to the lane of its player
 * (lane_of), so one player's writes stay in one FIFO and are applied in
 * order; lanes commit side by side on a server backend.
 *
 * A lane thread's life: pop a batch (blocks while the queue is empty) ->
 * drop the writes whose deadline passed -> dbp_store_apply_batch (one
 * transaction) -> done() for each, oldest first -> pop again. While its
 * database connection is down it pops with a timeout and tries to
 * reconnect between pops. dbp_writer_stop() closes the queues; a pop then
 * hands out what is left and finally reports the end, so every accepted
 * write is applied (or answered -ENOTCONN) before stop returns.
 */
#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rg/clock.h"
#include "rg/log.h"

/* How often a lane whose database is down asks the store to reconnect;
 * the store's own backoff decides when an attempt is really made. */
#define RETRY_POLL_MS 50

struct lane {
	struct dbp_writer *wr;
	struct dbp_store *store;
	struct dbp_queue queue;
	struct dbp_write **live;  /* a batch's writes still within deadline */
	pthread_t thread;
	bool started;
	unsigned index;
	atomic_bool up;           /* submits are refused while false      */
};

struct dbp_writer {
	size_t batch_max;
	struct rg_histogram *batch_sizes;   /* dbp_writer_observe, or NULL */
	struct rg_histogram *commit_ns;

	_Atomic uint64_t writes;
	_Atomic uint64_t commits;
	_Atomic uint64_t failed_batches;
	_Atomic uint64_t busy_refusals;
	_Atomic uint64_t unavailable;
	_Atomic uint64_t reconnects;
	_Atomic uint64_t fenced, leases_taken, leases_held, leases_renewed, leases_lost, adopts;

	size_t nlanes;
	struct lane lanes[];
};

size_t dbp_writer_lanes(const struct dbp_writer *wr)
{
	return wr->nlanes;
}

size_t dbp_writer_lane_of_player(const struct dbp_writer *wr, uint64_t player_id)
{
	return player_id % wr->nlanes;
}

/* The lane of a write: by player, so a player's writes keep their order.
 * A create has no id yet (its name stands in); epochs go anywhere; a
 * renewal goes by its first player (the caller keeps one renewal's players
 * in one lane: dbp_writer_lane_of_player). */
static struct lane *lane_of(struct dbp_writer *wr, const struct dbp_write *w)
{
	uint64_t key = 0;

	switch (w->kind) {
	case DBP_WRITE_ADD_GOLD:
		key = w->add_gold.player_id;
		break;
	case DBP_WRITE_SAVE_POSITION:
		key = w->save.player_id;
		break;
	case DBP_WRITE_TAKE_LEASE:
		key = w->take.player_id;
		break;
	case DBP_WRITE_ADOPT:
		key = w->adopt.player_id;
		break;
	case DBP_WRITE_RENEW_LEASES:
		key = w->renew.n ? w->renew.player_ids[0] : 0;
		break;
	case DBP_WRITE_CREATE_PLAYER:
		for (const char *c = w->create.name; *c; c++)
			key = key * 31 + (unsigned char)*c;
		break;
	case DBP_WRITE_NEW_EPOCH:
		break;
	}
	return &wr->lanes[dbp_writer_lane_of_player(wr, key)];
}

/* The lane's view of its connection changed; log and count it once. */
static void set_up(struct lane *ln, bool up)
{
	if (atomic_exchange(&ln->up, up) == up)
		return;
	if (up) {
		atomic_fetch_add(&ln->wr->reconnects, 1);
		RG_INFO("writer %u: the database is back", ln->index);
	} else {
		RG_WARN("writer %u: the database is unreachable: writes are answered unavailable "
			"until it is back", ln->index);
	}
}

/* Apply and commit one batch; every write's result is set on return. */
static void run_batch(struct lane *ln, struct dbp_qnode *batch)
{
	struct dbp_writer *wr = ln->wr;
	uint64_t started_ns = rg_now_ns();
	uint64_t now_ms = rg_now_ms();
	size_t n = 0;
	int err;

	for (struct dbp_qnode *q = batch; q; q = q->next) {
		struct dbp_write *w = RG_CONTAINER_OF(q, struct dbp_write, node);

		w->result = 0;
		if (w->deadline_ms && now_ms > w->deadline_ms)
			w->result = -ETIMEDOUT;
		else
			ln->live[n++] = w;
	}
	err = dbp_store_apply_batch(ln->store, ln->live, n, (int64_t)rg_wall_ms());
	if (!err) {
		if (n) {
			atomic_fetch_add(&wr->commits, 1);
			rg_histogram_observe(wr->commit_ns, rg_now_ns() - started_ns);
		}
		return;
	}
	/* The batch is lost as a whole: nobody may be told "done". */
	atomic_fetch_add(&wr->failed_batches, 1);
	if (err == -ENOTCONN) {
		atomic_fetch_add(&wr->unavailable, n);
		set_up(ln, false);
	} else {
		RG_ERROR("writer %u: batch rolled back: %s", ln->index, strerror(-err));
	}
	for (size_t i = 0; i < n; i++)
		ln->live[i]->result = err;
}

/* Count a write's lease outcome (before done(), which may free it). */
static void count_lease(struct dbp_writer *wr, const struct dbp_write *w)
{
	if (w->result == DBP_FENCED)
		atomic_fetch_add(&wr->fenced, 1);
	else if (w->result == DBP_LEASE_HELD)
		atomic_fetch_add(&wr->leases_held, 1);
	else if (w->result != 0)
		return;
	else if (w->kind == DBP_WRITE_TAKE_LEASE ||
		 (w->kind == DBP_WRITE_CREATE_PLAYER && w->create.lease.owner))
		atomic_fetch_add(&wr->leases_taken, 1);
	else if (w->kind == DBP_WRITE_ADOPT)
		atomic_fetch_add(&wr->adopts, 1);
	else if (w->kind == DBP_WRITE_RENEW_LEASES) {
		atomic_fetch_add(&wr->leases_renewed, w->renew.n - w->nlost);
		atomic_fetch_add(&wr->leases_lost, w->nlost);
	}
}

static void *lane_main(void *arg)
{
	struct lane *ln = arg;
	struct dbp_writer *wr = ln->wr;
	struct dbp_qnode *batch;
	bool ended = false;

	while (!ended) {
		bool up = atomic_load(&ln->up);
		uint64_t size = 0;

		if (!up) {
			up = dbp_store_reconnect(ln->store) == 0;
			set_up(ln, up);
		}
		batch = dbp_queue_pop_timed(&ln->queue, wr->batch_max, up ? -1 : RETRY_POLL_MS,
					    &ended);
		if (!batch)
			continue;
		for (struct dbp_qnode *n = batch; n; n = n->next)
			size++;
		rg_histogram_observe(wr->batch_sizes, size);
		run_batch(ln, batch);
		while (batch) {
			struct dbp_qnode *next = batch->next;
			struct dbp_write *w = RG_CONTAINER_OF(batch, struct dbp_write, node);

			atomic_fetch_add(&wr->writes, 1);
			count_lease(wr, w);
			w->done(w); /* may free w */
			batch = next;
		}
	}
	return NULL;
}

/* Close the queues, join the started threads, free everything. */
static void writer_free(struct dbp_writer *wr)
{
	for (size_t i = 0; i < wr->nlanes; i++) {
		if (wr->lanes[i].live)
			dbp_queue_close(&wr->lanes[i].queue);
	}
	for (size_t i = 0; i < wr->nlanes; i++) {
		struct lane *ln = &wr->lanes[i];

		if (ln->started)
			pthread_join(ln->thread, NULL);
		if (ln->live)
			dbp_queue_destroy(&ln->queue);
		free(ln->live);
	}
	free(wr);
}

int dbp_writer_start_pool(struct dbp_store *const *stores, size_t nstores, size_t queue_max,
			  size_t batch_max, struct dbp_writer **out)
{
	/* The bound is the writer's: split over the lanes, rounding up. */
	size_t lane_max = nstores ? (queue_max + nstores - 1) / nstores : 0;
	struct dbp_writer *wr;
	int err = 0;

	if (batch_max == 0 || nstores == 0 || queue_max == 0)
		return -EINVAL;
	wr = calloc(1, sizeof *wr + nstores * sizeof wr->lanes[0]);
	if (!wr)
		return -ENOMEM;
	wr->batch_max = batch_max;
	wr->nlanes = nstores;
	for (size_t i = 0; i < nstores && !err; i++) {
		struct lane *ln = &wr->lanes[i];

		ln->wr = wr;
		ln->store = stores[i];
		ln->index = (unsigned)i;
		atomic_init(&ln->up, dbp_store_up(stores[i]));
		ln->live = calloc(batch_max, sizeof *ln->live);
		if (!ln->live) {
			err = -ENOMEM;
			break;
		}
		err = dbp_queue_init(&ln->queue, lane_max);
		if (err) {
			free(ln->live);
			ln->live = NULL;
		}
	}
	for (size_t i = 0; i < nstores && !err; i++) {
		err = -pthread_create(&wr->lanes[i].thread, NULL, lane_main, &wr->lanes[i]);
		wr->lanes[i].started = err == 0;
	}
	if (err) {
		writer_free(wr);
		return err;
	}
	*out = wr;
	return 0;
}

int dbp_writer_start(struct dbp_store *st, size_t queue_max, size_t batch_max,
		    struct dbp_writer **out)
{
	return dbp_writer_start_pool(&st, 1, queue_max, batch_max, out);
}

int dbp_writer_submit(struct dbp_writer *wr, struct dbp_write *w)
{
	struct lane *ln = lane_of(wr, w);
	int err;

	if (!atomic_load(&ln->up)) {
		/* Queued, it would only wait to fail: say so now. */
		atomic_fetch_add(&wr->unavailable, 1);
		return -ENOTCONN;
	}
	w->result = 0;
	err = dbp_queue_push(&ln->queue, &w->node);
	if (err == -EAGAIN)
		atomic_fetch_add(&wr->busy_refusals, 1);
	return err;
}

void dbp_writer_observe(struct dbp_writer *wr, struct rg_histogram *batch_sizes,
		       struct rg_histogram *commit_ns)
{
	wr->batch_sizes = batch_sizes;
	wr->commit_ns = commit_ns;
}

size_t dbp_writer_queued(struct dbp_writer *wr)
{
	size_t queued = 0;

	for (size_t i = 0; i < wr->nlanes; i++)
		queued += dbp_queue_length(&wr->lanes[i].queue);
	return queued;
}

void dbp_writer_stats(struct dbp_writer *wr, struct dbp_writer_stats *out)
{
	out->writes = atomic_load(&wr->writes);
	out->commits = atomic_load(&wr->commits);
	out->failed_batches = atomic_load(&wr->failed_batches);
	out->busy_refusals = atomic_load(&wr->busy_refusals);
	out->unavailable = atomic_load(&wr->unavailable);
	out->reconnects = atomic_load(&wr->reconnects);
	out->fenced = atomic_load(&wr->fenced);
	out->leases_taken = atomic_load(&wr->leases_taken);
	out->leases_held = atomic_load(&wr->leases_held);
	out->leases_renewed = atomic_load(&wr->leases_renewed);
	out->leases_lost = atomic_load(&wr->leases_lost);
	out->adopts = atomic_load(&wr->adopts);
	out->up = true;
	for (size_t i = 0; i < wr->nlanes; i++)
		out->up = out->up && atomic_load(&wr->lanes[i].up);
}

void dbp_writer_stop(struct dbp_writer *wr, struct dbp_writer_stats *final)
{
	for (size_t i = 0; i < wr->nlanes; i++)
		dbp_queue_close(&wr->lanes[i].queue);
	for (size_t i = 0; i < wr->nlanes; i++) {
		pthread_join(wr->lanes[i].thread, NULL);
		wr->lanes[i].started = false;
	}
	if (final)
		dbp_writer_stats(wr, final);
	writer_free(wr);
}
