/*
 * queue.h: the hand-off from the network loops to the game thread.
 *
 * Loop threads decode frames and push events; the game thread alone pops
 * them, in push order (per pushing thread, so one link's events keep their
 * order: a link lives on one loop). An event owns its decoded message and
 * frees it in gs_game_event_free().
 *
 * The queue is bounded for what can be refused: a client request is not
 * queued when max_requests requests are held already, or when its bytes
 * would take the held bytes past max_bytes; the caller then answers the
 * client itself (gate_link.c: Error SERVICE_UNAVAILABLE "game server
 * overloaded"), so a slow game thread pushes back on gateways instead of
 * growing without end, and no request is dropped unanswered. "Held" means
 * queued or taken by the game thread and not yet released: a take does not
 * make room, only gs_game_queue_release does, so the events a slow game
 * thread is still working through count too. An event's bytes are its
 * struct and its decoded message (the decode budget it used).
 * Link and session life-cycle events and dbproxy replies are never
 * refused, because losing one would leave game state wrong (a player never
 * saved, a link never forgotten, a call never ended); they count in bytes
 * but are few: one per connection, or one per call in flight.
 */
#ifndef GAMESRV_QUEUE_H
#define GAMESRV_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <protobuf-c/protobuf-c.h>
#include <rg/link.h>
#include <rg/pb_arena.h>

#include "internal.pb-c.h"

enum gs_game_event_type {
	GS_GAME_EV_GATE_DOWN,      /* a gateway link (that said Hello) closed   */
	GS_GAME_EV_CLIENT_REQUEST, /* gate_msg->request: a client's message     */
	GS_GAME_EV_CLIENT_GONE,    /* gate_msg->gone: a client left its gateway */
	GS_GAME_EV_HANDOFF_RESULT, /* gate_msg->handoff_result: a handoff ended */
	GS_GAME_EV_DB_UP,          /* the dbproxy link answered Hello           */
	GS_GAME_EV_DB_DOWN,        /* the dbproxy link (after Hello) closed     */
	GS_GAME_EV_DB_REPLY,       /* db_msg: a reply to a GameToDb request     */
	GS_GAME_EV_SHUTDOWN,       /* drain: save everyone, then stop           */
};

struct gs_game_event {
	struct gs_game_event *next;
	enum gs_game_event_type type;
	net_session_id link;          /* the gateway or dbproxy session      */
	unsigned db_index;            /* DB_*: which dbproxy (db_link.h)     */
	uint64_t deadline_ms;         /* CLIENT_REQUEST: when the gateway gives
					 up, on our rg_now_ms() clock (0: no
					 deadline; rg/peer_clock.h)          */
	Ringgate__Internal__GateToGame *gate_msg; /* CLIENT_*, HANDOFF_RESULT */
	Ringgate__Internal__DbToGame *db_msg;     /* DB_REPLY                */
	struct rg_pb_budget budget;   /* allocated the message               */
	size_t cost;                  /* bytes counted while held (push)     */
};

struct gs_game_queue {
	pthread_mutex_t lock;
	pthread_cond_t ready;         /* signalled on push; CLOCK_MONOTONIC  */
	struct gs_game_event *head, *tail;
	size_t requests;              /* CLIENT_REQUEST events held          */
	size_t max_requests;
	size_t bytes;                 /* bytes of every event held           */
	size_t max_bytes;
};

/* Set up an empty queue. Returns 0 or a negative errno. */
int gs_game_queue_init(struct gs_game_queue *q, size_t max_requests, size_t max_bytes);

/* Free what is still queued, then the queue. No pusher may remain. */
void gs_game_queue_fini(struct gs_game_queue *q);

/*
 * A new event of the given type for link, with a budget of decode_limit
 * bytes for its message; NULL on ENOMEM. Any thread.
 */
struct gs_game_event *gs_game_event_new(enum gs_game_event_type type, net_session_id link,
				  size_t decode_limit);

/* Free an event and its message. Any thread (its owner). */
void gs_game_event_free(struct gs_game_event *ev);

/*
 * rg_link_ops.decode_into and .decode_drop of gamesrv's links: each frame
 * is decoded into a new event's budget of limit bytes (the token is the
 * event, for the link's session; its on_message sets the type), since
 * what it carries goes on to the game thread. Loop thread.
 */
ProtobufCAllocator *gs_game_event_decode_into(struct rg_link *link, size_t limit,
					   void **token /* OUT */);
void gs_game_event_decode_drop(struct rg_link *link, void *token);

/*
 * Queue ev for the game thread, which owns it from then on (and hands it
 * back with gs_game_queue_release). Returns 0, or -ENOBUFS for a
 * CLIENT_REQUEST while max_requests are held or when it would take the
 * held bytes past max_bytes (the caller still owns ev). Any thread.
 */
int gs_game_queue_push(struct gs_game_queue *q, struct gs_game_event *ev);

/* The game thread is done with ev, a pushed event: make its room free
 * again and free it. Game thread. */
void gs_game_queue_release(struct gs_game_queue *q, struct gs_game_event *ev);

/*
 * Take every queued event (a list in push order, linked by next), waiting
 * until one arrives or the monotonic clock reaches deadline_ms. Returns
 * NULL on timeout. Game thread.
 */
struct gs_game_event *gs_game_queue_take(struct gs_game_queue *q, uint64_t deadline_ms);

#endif /* GAMESRV_QUEUE_H */
