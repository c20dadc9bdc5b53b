/*
 * writer.c: the group-commit writer thread (see writer.h).
 *
 * The thread's life: pop a batch (blocks while the queue is empty) ->
 * drop the writes whose deadline passed -> dbp_store_apply_batch (one
 * transaction) -> done() for each, oldest first -> pop again. While the
 * database is down it pops with a timeout and tries to reconnect between
 * pops. dbp_writer_stop() closes the queue; the pop then hands out what is
 * left and finally reports the end, so every accepted write is applied
 * (or answered -ENOTCONN) before stop returns.
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

/* How often a writer whose database is down asks the store to reconnect;
 * the store's own backoff decides when an attempt is really made. */
#define RETRY_POLL_MS 50

struct dbp_writer {
	struct dbp_store *store;
	struct dbp_queue queue;
	size_t batch_max;
	struct dbp_write **live;  /* a batch's writes still within deadline */
	pthread_t thread;
	struct rg_histogram *batch_sizes;   /* dbp_writer_observe, or NULL */
	struct rg_histogram *commit_ns;

	atomic_bool up;           /* submits are refused while false      */
	_Atomic uint64_t writes;
	_Atomic uint64_t commits;
	_Atomic uint64_t failed_batches;
	_Atomic uint64_t busy_refusals;
	_Atomic uint64_t unavailable;
	_Atomic uint64_t reconnects;
};

/* The thread's view of the connection changed; log and count it once. */
static void set_up(struct dbp_writer *wr, bool up)
{
	if (atomic_exchange(&wr->up, up) == up)
		return;
	if (up) {
		atomic_fetch_add(&wr->reconnects, 1);
		RG_INFO("writer: the database is back");
	} else {
		RG_WARN("writer: the database is unreachable: writes are answered unavailable "
			"until it is back");
	}
}

/* Apply and commit one batch; every write's result is set on return. */
static void run_batch(struct dbp_writer *wr, struct dbp_qnode *batch)
{
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
			wr->live[n++] = w;
	}
	err = dbp_store_apply_batch(wr->store, wr->live, n, (int64_t)rg_wall_ms());
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
		set_up(wr, false);
	} else {
		RG_ERROR("writer: batch rolled back: %s", strerror(-err));
	}
	for (size_t i = 0; i < n; i++)
		wr->live[i]->result = err;
}

static void *writer_main(void *arg)
{
	struct dbp_writer *wr = arg;
	struct dbp_qnode *batch;
	bool ended = false;

	while (!ended) {
		bool up = atomic_load(&wr->up);
		uint64_t size = 0;

		if (!up) {
			up = dbp_store_reconnect(wr->store) == 0;
			set_up(wr, up);
		}
		batch = dbp_queue_pop_timed(&wr->queue, wr->batch_max, up ? -1 : RETRY_POLL_MS,
					    &ended);
		if (!batch)
			continue;
		for (struct dbp_qnode *n = batch; n; n = n->next)
			size++;
		rg_histogram_observe(wr->batch_sizes, size);
		run_batch(wr, batch);
		while (batch) {
			struct dbp_qnode *next = batch->next;
			struct dbp_write *w = RG_CONTAINER_OF(batch, struct dbp_write, node);

			atomic_fetch_add(&wr->writes, 1);
			w->done(w); /* may free w */
			batch = next;
		}
	}
	return NULL;
}

int dbp_writer_start(struct dbp_store *st, size_t queue_max, size_t batch_max,
		    struct dbp_writer **out)
{
	struct dbp_writer *wr;
	int err;

	if (batch_max == 0)
		return -EINVAL;
	wr = calloc(1, sizeof *wr);
	if (!wr)
		return -ENOMEM;
	wr->store = st;
	wr->batch_max = batch_max;
	atomic_init(&wr->up, dbp_store_up(st));
	err = -ENOMEM;
	wr->live = calloc(batch_max, sizeof *wr->live);
	if (!wr->live)
		goto out_free;
	err = dbp_queue_init(&wr->queue, queue_max);
	if (err)
		goto out_free;
	err = -pthread_create(&wr->thread, NULL, writer_main, wr);
	if (err)
		goto out_queue;
	*out = wr;
	return 0;

out_queue:
	dbp_queue_destroy(&wr->queue);
out_free:
	free(wr->live);
	free(wr);
	return err;
}

int dbp_writer_submit(struct dbp_writer *wr, struct dbp_write *w)
{
	int err;

	if (!atomic_load(&wr->up)) {
		/* Queued, it would only wait to fail: say so now. */
		atomic_fetch_add(&wr->unavailable, 1);
		return -ENOTCONN;
	}
	w->result = 0;
	err = dbp_queue_push(&wr->queue, &w->node);
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
	return dbp_queue_length(&wr->queue);
}

void dbp_writer_stats(struct dbp_writer *wr, struct dbp_writer_stats *out)
{
	out->writes = atomic_load(&wr->writes);
	out->commits = atomic_load(&wr->commits);
	out->failed_batches = atomic_load(&wr->failed_batches);
	out->busy_refusals = atomic_load(&wr->busy_refusals);
	out->unavailable = atomic_load(&wr->unavailable);
	out->reconnects = atomic_load(&wr->reconnects);
	out->up = atomic_load(&wr->up);
}

void dbp_writer_stop(struct dbp_writer *wr, struct dbp_writer_stats *final)
{
	dbp_queue_close(&wr->queue);
	pthread_join(wr->thread, NULL);
	if (final)
		dbp_writer_stats(wr, final);
	dbp_queue_destroy(&wr->queue);
	free(wr->live);
	free(wr);
}
