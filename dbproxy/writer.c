/*
 * writer.c: the group-commit writer thread (see writer.h).
 *
 * The thread's life: pop a batch (blocks while the queue is empty) ->
 * BEGIN -> apply each write -> COMMIT (or ROLLBACK) -> done() for each,
 * oldest first -> pop again. dbp_writer_stop() closes the queue; the pop
 * then hands out what is left and finally NULL, which ends the thread, so
 * every accepted write is applied and answered before stop returns.
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

struct dbp_writer {
	struct dbp_store *store;
	struct dbp_queue queue;
	size_t batch_max;
	pthread_t thread;
	struct rg_histogram *batch_sizes;   /* dbp_writer_observe, or NULL */
	struct rg_histogram *commit_ns;

	_Atomic uint64_t writes;
	_Atomic uint64_t commits;
	_Atomic uint64_t failed_batches;
	_Atomic uint64_t busy_refusals;
};

/* Results that belong to one write; anything else is a database failure
 * that dooms the whole transaction. */
static bool is_own_result(int result)
{
	return result == 0 || result == -ENOENT || result == -EEXIST ||
	       result == -ERANGE || result == -ETIMEDOUT;
}

static int apply_write(struct dbp_store *st, struct dbp_write *w, uint64_t now_ms,
		       int64_t wall_ms)
{
	if (w->deadline_ms && now_ms > w->deadline_ms)
		return -ETIMEDOUT;
	switch (w->kind) {
	case DBP_WRITE_CREATE_PLAYER:
		return dbp_store_create_player(st, w->create.name, w->create.pwhash, wall_ms,
					      &w->player);
	case DBP_WRITE_ADD_GOLD:
		return dbp_store_add_gold(st, w->add_gold.player_id, w->add_gold.amount,
					 w->add_gold.op_id, wall_ms, &w->gold, &w->duplicate);
	case DBP_WRITE_SAVE_POSITION:
		return dbp_store_save_position(st, w->save.player_id, w->save.zone, w->save.x,
					      w->save.y, wall_ms);
	case DBP_WRITE_NEW_EPOCH:
		return dbp_store_new_epoch(st, &w->epoch);
	}
	return -EINVAL;
}

/* Apply and commit one batch; every write's result is set on return. */
static void run_batch(struct dbp_writer *wr, struct dbp_qnode *batch)
{
	uint64_t started_ns = rg_now_ns();
	uint64_t now_ms = rg_now_ms();
	int64_t wall_ms = (int64_t)rg_wall_ms();
	int err = dbp_store_begin(wr->store);

	for (struct dbp_qnode *n = batch; n && !err; n = n->next) {
		struct dbp_write *w = RG_CONTAINER_OF(n, struct dbp_write, node);

		w->result = apply_write(wr->store, w, now_ms, wall_ms);
		if (!is_own_result(w->result))
			err = w->result;
	}
	if (!err)
		err = dbp_store_commit(wr->store);
	if (!err) {
		atomic_fetch_add(&wr->commits, 1);
		rg_histogram_observe(wr->commit_ns, rg_now_ns() - started_ns);
		return;
	}
	/* The batch is lost as a whole: nobody may be told "done". */
	dbp_store_rollback(wr->store);
	atomic_fetch_add(&wr->failed_batches, 1);
	RG_ERROR("writer: batch rolled back: %s", strerror(-err));
	for (struct dbp_qnode *n = batch; n; n = n->next)
		RG_CONTAINER_OF(n, struct dbp_write, node)->result = err;
}

static void *writer_main(void *arg)
{
	struct dbp_writer *wr = arg;
	struct dbp_qnode *batch;

	while ((batch = dbp_queue_pop(&wr->queue, wr->batch_max))) {
		uint64_t size = 0;

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
	free(wr);
	return err;
}

int dbp_writer_submit(struct dbp_writer *wr, struct dbp_write *w)
{
	int err;

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
}

void dbp_writer_stop(struct dbp_writer *wr, struct dbp_writer_stats *final)
{
	dbp_queue_close(&wr->queue);
	pthread_join(wr->thread, NULL);
	if (final)
		dbp_writer_stats(wr, final);
	dbp_queue_destroy(&wr->queue);
	free(wr);
}
