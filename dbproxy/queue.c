/*
 * queue.c: the bounded intrusive FIFO (see queue.h).
 *
 * Invariant: head == NULL <=> length == 0 <=> tail == &head.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthread_condattr_setclock */
#include "queue.h"

#include <errno.h>
#include <time.h>

/* A condition whose timed waits run on CLOCK_MONOTONIC (a wall clock step
 * must not stretch or cut a timed pop). */
static int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int err = pthread_condattr_init(&attr);

	if (err)
		return err;
	err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return err;
}

int dbp_queue_init(struct dbp_queue *q, size_t max)
{
	int err;

	if (max == 0)
		return -EINVAL;
	err = pthread_mutex_init(&q->lock, NULL);
	if (err)
		return -err;
	err = cond_init_monotonic(&q->nonempty);
	if (err) {
		pthread_mutex_destroy(&q->lock);
		return -err;
	}
	q->head = NULL;
	q->tail = &q->head;
	q->length = 0;
	q->max = max;
	q->closed = false;
	return 0;
}

void dbp_queue_destroy(struct dbp_queue *q)
{
	pthread_cond_destroy(&q->nonempty);
	pthread_mutex_destroy(&q->lock);
}

int dbp_queue_push(struct dbp_queue *q, struct dbp_qnode *node)
{
	int err = 0;

	node->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->closed) {
		err = -ESHUTDOWN;
	} else if (q->length >= q->max) {
		err = -EAGAIN;
	} else {
		*q->tail = node;
		q->tail = &node->next;
		q->length++;
		pthread_cond_signal(&q->nonempty);
	}
	pthread_mutex_unlock(&q->lock);
	return err;
}

/* Unlink up to max nodes from the head; lock held, queue not empty. */
static struct dbp_qnode *take(struct dbp_queue *q, size_t max)
{
	struct dbp_qnode *first = q->head, *last = first;
	size_t taken = 1;

	while (taken < max && last->next) {
		last = last->next;
		taken++;
	}
	q->head = last->next;
	if (!q->head)
		q->tail = &q->head;
	last->next = NULL;
	q->length -= taken;
	return first;
}

struct dbp_qnode *dbp_queue_pop(struct dbp_queue *q, size_t max)
{
	bool ended;

	return dbp_queue_pop_timed(q, max, -1, &ended);
}

struct dbp_qnode *dbp_queue_pop_timed(struct dbp_queue *q, size_t max, int timeout_ms,
				      bool *ended)
{
	struct dbp_qnode *first = NULL;
	struct timespec until;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->closed) {
		if (timeout_ms < 0)
			pthread_cond_wait(&q->nonempty, &q->lock);
		else if (pthread_cond_timedwait(&q->nonempty, &q->lock, &until) == ETIMEDOUT)
			break;
	}
	if (q->head)
		first = take(q, max);
	*ended = !first && q->closed;
	pthread_mutex_unlock(&q->lock);
	return first;
}

void dbp_queue_close(struct dbp_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->nonempty);
	pthread_mutex_unlock(&q->lock);
}

size_t dbp_queue_length(struct dbp_queue *q)
{
	size_t length;

	pthread_mutex_lock(&q->lock);
	length = q->length;
	pthread_mutex_unlock(&q->lock);
	return length;
}
