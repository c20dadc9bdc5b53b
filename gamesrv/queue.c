/*
 * queue.c: mutex + condition variable queue from the loops to the game
 * thread (see queue.h). The game thread takes the whole list at once, so
 * the lock is held for a pointer swap, not for the handling.
 */
#define _POSIX_C_SOURCE 200809L
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

int gs_game_queue_init(struct gs_game_queue *q, size_t max_requests, size_t max_bytes)
{
	pthread_condattr_t attr;
	int rc;

	q->head = q->tail = NULL;
	q->requests = 0;
	q->max_requests = max_requests;
	q->bytes = 0;
	q->max_bytes = max_bytes;
	rc = pthread_mutex_init(&q->lock, NULL);
	if (rc != 0)
		return -rc;
	pthread_condattr_init(&attr);
	/* Deadlines are monotonic: a wall-clock jump must not stall a tick. */
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rc = pthread_cond_init(&q->ready, &attr);
	pthread_condattr_destroy(&attr);
	if (rc != 0) {
		pthread_mutex_destroy(&q->lock);
		return -rc;
	}
	return 0;
}

void gs_game_queue_fini(struct gs_game_queue *q)
{
	struct gs_game_event *ev = q->head;

	while (ev) {
		struct gs_game_event *next = ev->next;

		gs_game_event_free(ev);
		ev = next;
	}
	q->head = q->tail = NULL;
	pthread_cond_destroy(&q->ready);
	pthread_mutex_destroy(&q->lock);
}

struct gs_game_event *gs_game_event_new(enum gs_game_event_type type, net_session_id link,
				  size_t decode_limit)
{
	struct gs_game_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return NULL;
	ev->type = type;
	ev->link = link;
	rg_pb_budget_init(&ev->budget, decode_limit);
	return ev;
}

void gs_game_event_free(struct gs_game_event *ev)
{
	if (!ev)
		return;
	if (ev->gate_msg)
		protobuf_c_message_free_unpacked(&ev->gate_msg->base, &ev->budget.allocator);
	if (ev->db_msg)
		protobuf_c_message_free_unpacked(&ev->db_msg->base, &ev->budget.allocator);
	free(ev);
}

ProtobufCAllocator *gs_game_event_decode_into(struct rg_link *link, size_t limit, void **token)
{
	struct gs_game_event *ev = gs_game_event_new(GS_GAME_EV_CLIENT_REQUEST,
					       net_session_get_id(rg_link_session(link)), limit);

	*token = ev;
	return ev ? &ev->budget.allocator : NULL;
}

void gs_game_event_decode_drop(struct rg_link *link, void *token)
{
	(void)link;
	gs_game_event_free(token);
}

int gs_game_queue_push(struct gs_game_queue *q, struct gs_game_event *ev)
{
	bool is_request = ev->type == GS_GAME_EV_CLIENT_REQUEST;

	ev->next = NULL;
	ev->cost = sizeof(*ev) + ev->budget.used;
	pthread_mutex_lock(&q->lock);
	if (is_request && (q->requests >= q->max_requests ||
			   q->bytes + ev->cost > q->max_bytes)) {
		pthread_mutex_unlock(&q->lock);
		return -ENOBUFS;
	}
	if (is_request)
		q->requests++;
	q->bytes += ev->cost;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
	pthread_cond_signal(&q->ready);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

struct gs_game_event *gs_game_queue_take(struct gs_game_queue *q, uint64_t deadline_ms)
{
	struct timespec until = {
		.tv_sec = (time_t)(deadline_ms / 1000),
		.tv_nsec = (long)(deadline_ms % 1000) * 1000000L,
	};
	struct gs_game_event *list;

	pthread_mutex_lock(&q->lock);
	while (!q->head) {
		if (pthread_cond_timedwait(&q->ready, &q->lock, &until) == ETIMEDOUT)
			break;
	}
	list = q->head;
	q->head = q->tail = NULL;
	pthread_mutex_unlock(&q->lock);
	return list;
}

void gs_game_queue_release(struct gs_game_queue *q, struct gs_game_event *ev)
{
	pthread_mutex_lock(&q->lock);
	if (ev->type == GS_GAME_EV_CLIENT_REQUEST)
		q->requests--;
	q->bytes -= ev->cost;
	pthread_mutex_unlock(&q->lock);
	gs_game_event_free(ev);
}
