/*
 * The load bot (issue 4): N players speaking the real client protocol
 * (proto/client.proto) through the gateway, on libnet's client service.
 *
 * Threads: the main thread (main.c) runs the timeline (ramp, steady phase,
 * storm, drain) and the progress line; it reaches the loops only through
 * net_loop_post() and the snapshot rendez-vous below. Everything in struct
 * bot_loop and struct bot_session belongs to its loop's thread.
 *
 * Players: identities 0..N-1 (name PREFIX<i>). A session takes a free
 * identity when it connects and gives it back when it disconnects, so a
 * player dropped by the reconnect storm logs in again, under the same name,
 * on whichever session libnet redials next.
 *
 * Movement: each player walks at --move-rate (default 10 Hz): the first
 * move puts it at a random point of its zone (identity i lives in the
 * i-th zone of LoginReply.zones, round robin), then each move is a step of
 * --walk-step in a random direction, kept inside the zone. With --crowd
 * everyone walks inside one square of --crowd-size at the centre of the
 * first zone: every player sees every other, the worst case.
 *
 * Push latency: a move's target and send time are kept per identity
 * (struct bot_mover, written by the mover's loop, read by any loop); when
 * an observer in this process receives a position (WorldUpdate.moved or
 * PlayerMoved) of a player of ours, the time since that exact target was
 * sent is recorded: request leaves the bot -> observer has the update.
 *
 * Border walk (--border-every K, issue 14): every K-th move of a player is
 * a travel, a MoveRequest naming the next zone of its route (--border-zones,
 * default every zone of LoginReply.zones; identity i starts at the i-th);
 * no other move is sent while a travel is in flight. Zones owned by
 * different shards make each travel a handoff; the bot cannot see shards,
 * so travels (BOT_TRAVEL) are timed apart from in-zone moves. After a
 * travel's MoveReply the player must see the new zone: an entered entry
 * (WorldUpdate.entered or PlayerJoined) of a player in that zone within
 * --view-wait-ms, when others of ours were there (views_seen / views_missed).
 *
 * Exactly once: an Error ZONE_HANDOFF answers a request that was caught in
 * a handoff (nothing done); it is counted (retries) and the same request is
 * sent again RETRY_DELAY later under a new seq. A reply to a seq that was
 * answered already is a protocol error (answered_twice). Earns are checked
 * against each identity's ledger (struct bot_ledger): every earn reply and
 * LoginReply carries the durable total, which must hold every acknowledged
 * earn (else earn_lost) and nothing beyond the earns that may have applied
 * (else earn_doubled).
 */
#ifndef BOT_BOT_H
#define BOT_BOT_H

#include <net/net.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.pb-c.h"
#include "histogram.h"

/* The request kinds the bot measures, one histogram each. BOT_TRAVEL is a
 * move into another zone (a handoff when another shard owns it). */
enum bot_kind { BOT_LOGIN, BOT_MOVE, BOT_CHAT, BOT_PING, BOT_EARN, BOT_TRAVEL, BOT_KIND_COUNT };

/* The push kinds the bot counts. */
enum bot_push { PUSH_JOINED, PUSH_LEFT, PUSH_MOVED, PUSH_CHAT_LINE, PUSH_KICKED, PUSH_UPDATE,
		PUSH_COUNT };

/* The entries of WorldUpdate pushes the bot counts. */
enum bot_entry { ENTRY_LEFT, ENTRY_ENTERED, ENTRY_MOVED, ENTRY_CHAT, ENTRY_COUNT };

#define BOT_ERROR_CODES 32      /* ErrorCode values counted (client.proto: 0..18) */
#define BOT_MAX_PENDING 32      /* requests outstanding per session, hard cap */
#define BOT_MOVER_RING 16       /* recent move targets kept per identity     */
#define BOT_TIMED_OUT_RING 64   /* timed-out seqs remembered per session     */
#define BOT_ZONES_MAX 64        /* zones of LoginReply.zones the bot keeps   */
#define BOT_ROUTE_MAX 16        /* zones in --border-zones                   */

struct bot_config {
	char *host;
	long port;
	long players;
	double ramp_per_s;        /* players started per second; 0 = all at once */
	double duration_s;        /* steady phase, after every player logged in  */
	double move_per_s, chat_per_s, ping_per_s, earn_per_s; /* per player      */
	double storm_at_s;        /* into the steady phase; < 0 = no storm       */
	double storm_fraction;    /* of the logged-in players                    */
	long timeout_ms;          /* a request unanswered this long is an error  */
	long max_pending;         /* per session, <= BOT_MAX_PENDING             */
	long loops;
	double walk_step;         /* distance of one move                        */
	bool crowd;               /* everyone inside one square                  */
	double crowd_size;        /* side of that square                         */
	char *name_prefix;
	char *password;
	char *json_path;
	char *transport;          /* "tcp" (varint frames) or "ws" (WebSocket)   */
	long border_every;        /* every K-th move travels; 0 = no border walk */
	char *border_zones;       /* the route: zone ids, comma-separated        */
	bool expect_views;        /* a travel without a view is an error         */
	long view_wait_ms;        /* how long a view may take after a travel     */
};

/* Counters of one loop; summed over loops into a snapshot. */
struct bot_counters {
	uint64_t sent[BOT_KIND_COUNT], answered[BOT_KIND_COUNT];
	uint64_t error_replies[BOT_KIND_COUNT];
	uint64_t unanswered[BOT_KIND_COUNT];     /* timed out or lost on a drop   */
	uint64_t retries[BOT_KIND_COUNT];        /* ZONE_HANDOFF, sent again      */
	uint64_t abandoned[BOT_KIND_COUNT];      /* pending when the storm hit    */
	uint64_t skipped_full;                   /* actions skipped: max_pending  */
	uint64_t errors_by_code[BOT_ERROR_CODES];
	uint64_t pushes[PUSH_COUNT];
	uint64_t entries[ENTRY_COUNT];           /* inside WorldUpdates           */
	uint64_t positions_matched;              /* positions timed (push latency) */
	uint64_t protocol_errors;                /* undecodable, unknown seq, ... */
	uint64_t late_replies;                   /* replies after their timeout   */
	uint64_t answered_twice;                 /* a second reply to one seq     */
	uint64_t wrong_zone;                     /* MoveReply.zone not the target */
	uint64_t views_seen, views_missed;       /* after travels into peopled zones */
	uint64_t earn_lost, earn_doubled;        /* ledger violations (bot_ledger) */
	uint64_t connects, logins, relogins;
	uint64_t unexpected_disconnects, storm_disconnects;
	uint64_t connected_now, logged_in_now;
	uint64_t pending_now;                    /* requests not yet ended        */
	uint64_t bytes_frames_in;                /* frame bodies received         */
};

struct bot_stats {
	struct bot_counters c;
	struct hist total[BOT_KIND_COUNT];       /* whole run, per kind           */
	struct hist interval;                    /* since the last snapshot, all  */
	struct hist push;                        /* push latency, whole run       */
	struct hist view;                        /* travel's MoveReply -> a player
						    of the new zone entered     */
};

/* One loop's bookkeeping. */
struct bot_loop {
	struct bot *bot;
	struct net_loop *loop;
	struct net_timer *tick;
	struct bot_session **sessions;           /* connected sessions, unordered */
	unsigned session_count, session_cap;
	uint64_t rng;
	struct bot_stats stats;
};

/* A request until it ends: what it asks (enough to send it again), its
 * seq on the wire (0 while it waits for a retry after ZONE_HANDOFF). */
struct bot_pending {
	uint32_t seq;
	uint8_t kind;
	uint32_t zone;                           /* move/travel: MoveRequest.zone */
	float x, y;                              /* move/travel: the target       */
	uint32_t amount;                         /* earn                          */
	uint64_t sent_ns;                        /* first sent (retries keep it)  */
	uint64_t retry_at_ns;                    /* non-zero: send again then     */
};

/* The per-session user area (net_session_user). */
struct bot_session {
	struct net_session *s;
	struct bot_loop *bl;
	struct bot_ws *ws;                       /* --transport ws, else NULL     */
	long player;                             /* identity, -1 while none       */
	bool logged_in;
	bool dropping;                           /* the storm cut it: expected    */
	uint64_t drop_at_ns;                     /* non-zero: disconnect then     */
	unsigned slot;                           /* index in bl->sessions         */
	uint32_t next_seq;
	uint64_t next_ms[BOT_KIND_COUNT];        /* when each action is due       */
	float min_x, min_y, max_x, max_y;        /* where it walks (its zone, or
						    the crowd's square)          */
	uint32_t zone;                           /* the zone it walks in          */
	uint32_t cur_zone;                       /* where the server has it       */
	int pop_index;                           /* cur_zone's in bot->zones, -1  */
	uint64_t self_id;
	bool placed;                             /* the first move was sent       */
	bool travelling;                         /* a travel is in flight         */
	unsigned route_pos;                      /* border walk: its route index  */
	long moves_since_travel;
	float x, y;                              /* the last move's target        */
	/* After a travel: waiting until view_until_ns for a player of
	 * cur_zone to enter the view (0: not waiting). */
	uint64_t view_from_ns, view_until_ns;
	bool view_expected;                      /* others of ours were there     */
	unsigned pending_count;
	struct bot_pending pending[BOT_MAX_PENDING];
	uint32_t timed_out[BOT_TIMED_OUT_RING];  /* seqs answered late are these  */
	unsigned timed_out_head;
};

/* One zone of the world (LoginReply.zones). */
struct bot_zone {
	uint32_t id;
	float min_x, min_y, max_x, max_y;
};

/* An identity's gold as the bot knows it: the durable total must lie in
 * [floor, ceil]. floor = the first total seen + every acknowledged earn;
 * ceil = the same + every earn that may have applied (sent, not refused
 * with ZONE_HANDOFF or SERVER_BUSY). Only the session holding the identity
 * touches it (the identity's hand-over goes through bot->lock). */
struct bot_ledger {
	bool known;
	uint64_t floor, ceil;
};

/* The recent move targets of one identity: x and y as float bits in one
 * word, and when the move left. Written by the mover's loop, read by any. */
struct bot_mover {
	_Atomic uint64_t xy[BOT_MOVER_RING];
	_Atomic uint64_t sent_ns[BOT_MOVER_RING];
	_Atomic unsigned head;
};

struct bot {
	struct bot_config cfg;
	struct net_runtime *rt;
	unsigned loop_count;
	struct bot_loop *loops;
	struct net_session_ops ops;

	_Atomic bool acting;                     /* send actions (steady phase)   */

	pthread_mutex_t lock;                    /* guards everything below       */
	long *free_players;                      /* stack of unused identities    */
	long free_count;
	bool *ever_logged;                       /* per identity: a login was sent */
	/* Lock-free, any loop: player id -> identity (open addressing, keys
	 * written once), and each identity's recent moves. */
	_Atomic uint64_t *id_keys;
	_Atomic long *id_identity;
	size_t id_mask;
	struct bot_mover *movers;
	struct bot_ledger *ledgers;              /* per identity                  */
	/* The world's zones, from the first LoginReply; under lock. */
	struct bot_zone zones[BOT_ZONES_MAX];
	unsigned zone_count;
	uint32_t route[BOT_ROUTE_MAX];           /* --border-zones, parsed        */
	unsigned route_len;                      /* 0: every zone is the route    */
	_Atomic long zone_pop[BOT_ZONES_MAX];    /* our players in each zone      */
	/* Rendez-vous of run_everywhere(): each loop runs the task, then counts. */
	pthread_cond_t done_cv;
	unsigned done_count;
	struct bot_stats *snapshot;              /* where snapshot tasks add up   */
	bool restart_interval;
};

/*
 * Set up bot->ops, the identities and each loop's state and tick timer.
 * Main thread, after net_runtime_start and before any client service.
 * Returns 0 or -ENOMEM (or a libnet error from the timers).
 */
int bot_players_init(struct bot *bot);

/*
 * Stop the loops' timers (main thread, runtime still running); after the
 * runtime has stopped, bot_players_free releases the memory.
 */
void bot_players_stop(struct bot *bot);
void bot_players_free(struct bot *bot);

/*
 * Gather every loop's counters and histograms into *out; with
 * restart_interval, the loops' interval histograms start again empty.
 * Main thread; blocks until every loop answered.
 */
void bot_snapshot(struct bot *bot, bool restart_interval, struct bot_stats *out /* OUT */);

/* Drop storm_fraction of each loop's logged-in players at once. Main thread. */
void bot_storm(struct bot *bot);

/* Start or stop the actions (moves, chats, pings, earns). Any thread. */
void bot_set_acting(struct bot *bot, bool acting);

/*
 * Parse cfg->border_zones into bot->route. 0, or -EINVAL (the message
 * printed). Main thread, before bot_players_init.
 */
int bot_route_parse(struct bot *bot);

/* Requests outstanding right now, summed over the loops (from a snapshot). */
uint64_t bot_outstanding(const struct bot_stats *st);

/* ---- player.c, for the transports ---- */

/* The connection is ready for messages (WebSocket: upgraded): log in. */
void bot_session_ready(struct bot_session *bs);

/* One ServerMessage (its bytes) arrived. 0, or a negative code: drop the
 * session (a protocol error, counted). */
int bot_session_message(struct bot_session *bs, const uint8_t *body, size_t len);

/* ---- ws.c: the WebSocket transport (loop thread of the session) ---- */

/* Allocate bs->ws and send the upgrade request. 0 or a negative code. */
int bot_ws_open(struct bot_session *bs, const char *host, long port);

/* on_recv for a WebSocket session: the 101, then frames; returns the
 * bytes consumed or a negative code (the session ends). */
long bot_ws_recv(struct bot_session *bs, const uint8_t *data, size_t len);

/* Queue one ClientMessage as a binary message. 0 or a negative code. */
int bot_ws_send(struct bot_session *bs, const uint8_t *msg, size_t len);

/* Free bs->ws (on_disconnected). */
void bot_ws_free(struct bot_session *bs);

extern const char *const bot_kind_names[BOT_KIND_COUNT];
extern const char *const bot_push_names[PUSH_COUNT];
extern const char *const bot_entry_names[ENTRY_COUNT];

#endif /* BOT_BOT_H */
