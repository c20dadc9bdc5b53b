/*
 * queue.c: the bounded intrusive FIFO (see queue.h).
 *
 * Invariant: head == NULL <=> length == 0 <=> tail == &head.
 */
#include "queue.h"

#include <errno.h>

int dbp_queue_init(struct dbp_queue *q, size_t max)
{
	int err;

	if (max == 0)
		return -EINVAL;
	err = pthread_mutex_init(&q->lock, NULL);
	if (err)
		return -err;
	err = pthread_cond_init(&q->nonempty, NULL);
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

struct dbp_qnode *dbp_queue_pop(struct dbp_queue *q, size_t max)
{
	struct dbp_qnode *first, *last;
	size_t taken = 1;

	pthread_mutex_lock(&q->lock);
	while (!q->head && !q->closed)
		pthread_cond_wait(&q->nonempty, &q->lock);
	first = q->head;
	if (first) {
		last = first;
		while (taken < max && last->next) {
			last = last->next;
			taken++;
		}
		q->head = last->next;
		if (!q->head)
			q->tail = &q->head;
		last->next = NULL;
		q->length -= taken;
	}
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
