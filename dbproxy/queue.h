/*
 * queue: a bounded, blocking, intrusive FIFO between threads.
 *
 * Producers (network loops) never block: a push into a full queue fails at
 * once with -EAGAIN, which dbproxy turns into a DB_BUSY reply (push-back on
 * gamesrv). Consumers (the writer, the login workers) block until work
 * arrives and take it in batches. Closing lets consumers drain what is
 * queued and then see the end; pushes after close fail with -ESHUTDOWN.
 *
 * Items are struct dbp_qnode members embedded in the caller's objects
 * (RG_CONTAINER_OF gets the object back), so a push never allocates.
 * All functions are safe from any thread.
 */
#ifndef DBP_QUEUE_H
#define DBP_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <rg/container_of.h>

struct dbp_qnode {
	struct dbp_qnode *next;
};

struct dbp_queue {
	pthread_mutex_t lock;
	pthread_cond_t nonempty;
	struct dbp_qnode *head;
	struct dbp_qnode **tail;
	size_t length;
	size_t max;               /* bound on length */
	bool closed;
};

/* Initialise an empty open queue holding at most max items (max >= 1).
 * Returns 0 or a negative errno. */
int dbp_queue_init(struct dbp_queue *q, size_t max);

/* Free the queue's lock and condition; it must be empty (drained). */
void dbp_queue_destroy(struct dbp_queue *q);

/* Append a node. Returns 0, -EAGAIN when full, -ESHUTDOWN after close; on
 * failure the caller keeps the node. */
int dbp_queue_push(struct dbp_queue *q, struct dbp_qnode *node);

/*
 * Take up to max nodes (oldest first) as a chain linked by ->next and ending
 * in NULL, blocking while the queue is empty and open. Returns the chain,
 * or NULL once the queue is closed and empty.
 */
struct dbp_qnode *dbp_queue_pop(struct dbp_queue *q, size_t max);

/*
 * dbp_queue_pop, waiting at most timeout_ms (< 0: no limit). Returns the
 * chain, or NULL on timeout or once the queue is closed and empty; *ended
 * tells the latter apart (set when closed and empty, which is final).
 */
struct dbp_qnode *dbp_queue_pop_timed(struct dbp_queue *q, size_t max, int timeout_ms,
				      bool *ended /* OUT */);

/* Refuse further pushes and wake every consumer. */
void dbp_queue_close(struct dbp_queue *q);

/* Items queued now (a snapshot). */
size_t dbp_queue_length(struct dbp_queue *q);

#endif /* DBP_QUEUE_H */
