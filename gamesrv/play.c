/*
 * play.c: the game's request handlers - login, move, chat, earn, ping,
 * logout, and the handoffs of players between shards - and the saves that
 * follow players out of the game. Called by
 * game.c on the game thread only (see play.h).
 *
 * A client session's life (the "client" record of world.h):
 *
 *   (none) --LoginRequest--> login pending --DbLogin ok--> playing
 *      ^                         |  (error reply)             |
 *      +-------------------------+----------------------------+
 *        LogoutRequest / ClientGone / gateway link down / drain / kicked
 *        by a newer login (the player is saved when it leaves "playing")
 *
 * Across shards (docs/protocol.md section 11), more states, in each of
 * which the session's requests are answered ZONE_HANDOFF:
 *
 *   playing --move into another shard's zone (handoff_move)--> frozen
 *   login pending --DbLogin ok, zone of another shard (handoff_login)-->
 *       handing over (no player here)
 *   frozen / handing over --HandoffResult ok--> (none), the player dropped
 *       unsaved; not ok--> (frozen) still frozen while its lease is taken
 *       back at a new epoch (handoff_retake), then playing again or (none);
 *       (handing over) (none); no result in time--> (none) (handoff_end)
 *   (none) --ClientRequest.adopt (handle_adopt)--> adopting --DbAdopt ok-->
 *       playing; refused--> (none) (on_adopt_reply)
 *
 * A player leaves "playing" without a save when its lease is no longer
 * surely this shard's (gs_play_drop: lost, fenced, self-fenced).
 *
 * Every dbproxy call carries a small context (who to answer, which player
 * it pins); callbacks look the client up again by (link, session), because
 * it may have gone while the call was out.
 */
#include "play.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "client.pb-c.h"
#include "lease.h"

typedef Ringgate__Client__ServerMessage ServerMessage;
typedef Ringgate__Client__ErrorCode ErrorCode;

/* Who a reply goes to: a client session on a gateway link, the seq of its
 * request, and the gateway's id of that request (0 and 0 for a push); the
 * player that session played when the request came, if any, and the
 * login session it was in (stream.h), so that an answer that comes after
 * a resume finds the player's new connection. */
struct reply_to {
	net_session_id link;
	uint64_t session;
	uint32_t seq;
	uint64_t request_id;
	struct gs_player *player;     /* valid while the request's call pins it */
	uint64_t login_no;
};

/* A login is redirected (DB_LEASE_HELD) at most this often, then answered
 * SERVICE_UNAVAILABLE (internal.proto ClientRequest.hops). */
#define REDIRECT_HOPS_MAX 3

static void handoff_login(struct gs_game *g, struct gs_client *c, const struct reply_to *to,
			  uint64_t player_id, const char *name, uint64_t epoch,
			  const struct gs_zone *z, float x, float y, bool created);
static void handoff_client_gone(struct handoff_call *hc);

/* ---- sending -------------------------------------------------------------- */

/*
 * Every message to a client goes out here. To a client that plays a
 * player it is a message of the player's session: numbered and kept for a
 * resume (gs_stream_send). When the client has gone but its player resumed
 * on another connection in the same login session since, the answer goes
 * there, as a resumed message (the new gateway session never saw the
 * request). Otherwise (before a login, or the player has left) it goes
 * to the session as it is.
 */
static void send_to(struct gs_game *g, const struct reply_to *to, ServerMessage *msg)
{
	struct gs_client *c = gs_world_client_find(&g->world, to->link, to->session);
	struct gs_player *p = to->player;
	int rc;

	msg->seq = to->seq;
	if (c && c->player && c->player->frozen)
		/* Its stream goes on at the next shard from the number the
		 * Handoff carried: nothing more is numbered here. */
		rc = gs_gate_out_reply(&g->out, to->link, to->session, to->request_id, msg);
	else if (c && c->player)
		rc = gs_stream_send(&g->streams, c->player, to->request_id, false, msg);
	else if (!c && p && p->state == GS_PLAYER_ONLINE && to->login_no != 0 &&
		 p->stream.login_no == to->login_no)
		rc = gs_stream_send(&g->streams, p, 0, true, msg);
	else
		rc = gs_gate_out_reply(&g->out, to->link, to->session, to->request_id, msg);
	if (rc < 0)
		RG_DEBUG("reply to client %llu not sent: %s", (unsigned long long)to->session,
			 net_strerror(rc));
}

static void send_error(struct gs_game *g, const struct reply_to *to, ErrorCode code,
		       const char *text)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Error err = RINGGATE__CLIENT__ERROR__INIT;

	const ProtobufCEnumValue *name =
		protobuf_c_enum_descriptor_get_value(&ringgate__client__error_code__descriptor, code);

	/* The trace of a client that is merely wrong (or probing). */
	RG_DEBUG("client %#llx seq %u: Error %s: %s", (unsigned long long)to->session,
		 to->seq, name ? name->name : "?", text);
	err.code = code;
	err.message = (char *)text;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR;
	msg.error = &err;
	send_to(g, to, &msg);
}

/* The error a client sees when a dbproxy call ended without a reply. */
static void send_call_error(struct gs_game *g, const struct reply_to *to, int status)
{
	if (status == -ETIMEDOUT)
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__TIMEOUT,
			   "the database did not answer in time");
	else if (status == -ECANCELED)
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
			   "the game server is stopping");
	else if (status == -EPROTO)
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
			   "a server-side failure, retry later");
	else
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the database is unreachable");
}

/*
 * The error a client sees for a dbproxy reply whose status is not DB_OK,
 * or for a DB_OK reply that lacks the body it must carry.
 */
static void send_db_status_error(struct gs_game *g, const struct reply_to *to,
				 const Ringgate__Internal__DbToGame *r)
{
	switch (r->status) {
	case RINGGATE__INTERNAL__DB_STATUS__DB_WRONG_PASSWORD:
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__WRONG_PASSWORD,
			   "wrong password for this account");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_BUSY:
		/* Refused before it was applied (queue full, or its deadline
		 * passed while queued): nothing happened, so say busy. */
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVER_BUSY,
			   "the database is busy, retry later");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_UNAVAILABLE:
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the database is unreachable, retry later");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_THROTTLED:
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED,
			   r->message[0] ? r->message : "too many logins, retry later");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_BAD_REQUEST:
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			   "the database refused the request");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_FENCED:
		/* Another shard holds the player now: nothing was applied,
		 * and the gateway sends a retry where the player is. */
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF,
			   "the player moved to another game server; send it again");
		return;
	case RINGGATE__INTERNAL__DB_STATUS__DB_LEASE_HELD:
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the account is busy on another game server; retry in a few seconds");
		return;
	default:
		RG_WARN("dbproxy call %llu failed: status %d (%.200s)",
			(unsigned long long)r->request_id, (int)r->status, r->message);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
			   "a server-side failure, retry later");
		return;
	}
}

static int compare_targets(const void *a, const void *b)
{
	const struct gs_game_target *x = a, *y = b;

	if (x->link != y->link)
		return x->link < y->link ? -1 : 1;
	return 0;
}

/* Make room for n broadcast targets. Returns 0 or -ENOMEM. */
static int reserve_targets(struct gs_game *g, size_t n)
{
	struct gs_game_target *t;
	uint64_t *s;
	size_t cap = g->targets_cap ? g->targets_cap : 64;

	if (n <= g->targets_cap)
		return 0;
	while (cap < n)
		cap *= 2;
	t = realloc(g->targets, cap * sizeof(*t));
	if (!t)
		return -ENOMEM;
	g->targets = t;
	s = realloc(g->target_sessions, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	g->target_sessions = s;
	s = realloc(g->target_msg_nos, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	g->target_msg_nos = s;
	g->targets_cap = cap;
	return 0;
}

/*
 * Push msg (seq 0) to every player in zone z but `except` (may be NULL):
 * one ToClient frame per gateway link, carrying all its recipients and
 * (resume on) each one's msg_no. A detached player's copy is only kept.
 */
static void broadcast(struct gs_game *g, struct gs_zone *z, const struct gs_player *except,
		      ServerMessage *msg)
{
	size_t n = 0;

	if (reserve_targets(g, z->member_count) < 0) {
		RG_ERROR("out of memory: a push to zone %u was dropped", z->bounds.id);
		return;
	}
	msg->seq = 0;
	for (struct gs_player *p = z->members; p; p = p->zone_next) {
		uint64_t no;

		if (p == except || p->frozen)
			continue;
		no = gs_stream_keep(&g->streams, p, msg);
		if (p->stream.detached)
			continue;
		g->targets[n].link = p->client->key.link;
		g->targets[n].session = p->client->key.session;
		g->targets[n].msg_no = no;
		n++;
	}
	if (n == 0)
		return;
	qsort(g->targets, n, sizeof(*g->targets), compare_targets);
	for (size_t i = 0; i < n;) {
		size_t j = i;

		for (; j < n && g->targets[j].link == g->targets[i].link; j++) {
			g->target_sessions[j - i] = g->targets[j].session;
			g->target_msg_nos[j - i] = g->targets[j].msg_no;
		}
		(void)gs_gate_out_send(&g->out, g->targets[i].link, g->target_sessions,
				    gs_streams_on(&g->streams) ? g->target_msg_nos : NULL, j - i,
				    msg);
		i = j;
	}
}

/* The pushes below are the broadcast mode (interest management off):
 * each event at once to the whole zone. Under interest management the
 * views say the same once per tick (bundle.h). */
static void broadcast_joined(struct gs_game *g, struct gs_player *p)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__PlayerJoined joined = RINGGATE__CLIENT__PLAYER_JOINED__INIT;
	Ringgate__Client__PlayerState st = RINGGATE__CLIENT__PLAYER_STATE__INIT;

	gs_bundle_fill_state(&st, p);
	joined.player = &st;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_JOINED;
	msg.joined = &joined;
	broadcast(g, p->zone, p, &msg);
}

static void broadcast_left(struct gs_game *g, struct gs_player *p)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__PlayerLeft left = RINGGATE__CLIENT__PLAYER_LEFT__INIT;

	left.player_id = p->id;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LEFT;
	msg.left = &left;
	broadcast(g, p->zone, p, &msg);
}

/* ---- saving and leaving ---------------------------------------------------- */

/*
 * A save of one player's position. It pins the player until it ends. A
 * save that dbproxy refuses with DB_BUSY (its write queue is full) waits on
 * g->save_retries and is sent again by a later tick, after a delay that
 * doubles from SAVE_RETRY_MS, up to SAVE_ATTEMPTS sends in all.
 *
 * The save of a player who has left (logout, disconnect, the gateway link
 * lost) is the last chance to keep its acknowledged moves: when the dbproxy
 * link is down (at send, or dropped with the save in flight, as after a
 * gamesrv stall that both its links outlived) it is held on
 * g->save_retries too and sent again once the link is back up, for up to
 * SAVE_HOLD_MS after it was made; the player stays pinned (in memory, the
 * freshest copy for a login meanwhile) until then. A save is idempotent
 * (it writes the position current when it is sent), so a resend is safe.
 *
 * Any other failure ends the save. A failed save leaves the player dirty,
 * so the next autosave tries again if the player is still online.
 */
#define SAVE_ATTEMPTS 5
#define SAVE_RETRY_MS 50
#define SAVE_HOLD_MS 60000

struct gs_save_call {
	struct gs_game *g;
	struct gs_player *player;     /* pinned until the save ends          */
	bool answer;               /* a LogoutRequest waits for this save */
	struct reply_to to;
	unsigned attempts;
	uint64_t retry_at_ms;      /* waiting on g->save_retries until then */
	bool leaving;              /* the player leaves: its last save       */
	uint64_t hold_until_ms;    /* a leaving player's save waits for the
				      link until then                        */
	bool wait_link;            /* on g->save_retries for the link        */
	uint64_t epoch;            /* the lease epoch it was last sent under */
	bool release;              /* ... and whether it freed the lease     */
	struct gs_save_call *next_retry;
};

/* The status of a save (or write) not sent because the player's lease is
 * no longer held here (dropped, or handed to another shard). */
#define LEASE_GONE (-ESTALE)

/* True when r is the database's DB_FENCED: the write's lease epoch is no
 * longer the player's (another shard holds it). */
static bool fenced(int status, const Ringgate__Internal__DbToGame *r)
{
	return status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_FENCED;
}

/* A write of p under lease epoch `epoch` was fenced: when p still plays
 * here under that lease, it has lost it: drop it (unsaved). A frozen
 * player's lease has gone to its target: the handoff ends it. */
static void on_fenced(struct gs_game *g, struct gs_player *p, uint64_t epoch)
{
	rg_counter_add(g->cfg.metrics->fenced_writes, 1);
	if (p->state != GS_PLAYER_ONLINE || p->frozen || p->lease_epoch != epoch)
		return;
	gs_play_drop(g, p, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
		     "this account is online elsewhere", "fenced");
}

/* A lease retaken: the player was logged in again here while the save
 * that released its lease was out, and the release landed after (a save
 * sent before the login holds no release back: save_send; on one dbproxy
 * link the release lands first, but on several nothing orders the two). */
struct retake_call {
	struct gs_game *g;
	struct gs_player *player;     /* pinned until the call ends */
	uint64_t from_epoch;
	uint64_t sent_ms;
};

static void on_retake_reply(void *ctx, int status, const void *reply)
{
	struct retake_call *rc = ctx;
	struct gs_game *g = rc->g;
	struct gs_player *p = rc->player;
	const Ringgate__Internal__DbToGame *r = reply;

	if (p->lease_epoch == rc->from_epoch) {
		if (status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_OK &&
		    r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADOPT &&
		    r->adopt->lease_epoch != 0) {
			bool playing = p->state == GS_PLAYER_ONLINE && !p->frozen;

			if (playing)
				gs_lease_log_offline(p, "lease taken again");
			gs_lease_taken(g, p, r->adopt->lease_epoch, rc->sent_ms);
			if (playing)
				gs_lease_log_online(p);
			RG_INFO("player %s (%llu): lease taken again after its release (epoch "
				"%llu)", p->name, (unsigned long long)p->id,
				(unsigned long long)p->lease_epoch);
		} else if (fenced(status, r)) {
			on_fenced(g, p, rc->from_epoch);
		} else {
			/* The renewal then finds it lost, or the self-fence ends it. */
			RG_WARN("player %s (%llu): its lease could not be taken again: %s", p->name,
				(unsigned long long)p->id,
				status != 0 ? net_strerror(status) : "refused");
		}
	}
	gs_world_player_unpin(&g->world, p);
	free(rc);
}

/* Take p's lease again from its epoch (DbAdopt to ourselves), with its
 * position as it is now. */
static void retake_lease(struct gs_game *g, struct gs_player *p)
{
	struct retake_call *rc = calloc(1, sizeof(*rc));

	if (!rc) {
		RG_ERROR("out of memory retaking the lease of %s", p->name);
		return;
	}
	*rc = (struct retake_call){ .g = g, .player = p, .from_epoch = p->lease_epoch,
				    .sent_ms = rg_now_ms() };
	gs_world_player_pin(p);
	if (gs_db_link_adopt(&g->db, p->id, p->lease_epoch, g->cfg.shard, g->cfg.lease_ms,
			  p->zone->bounds.id, p->x, p->y, rc->sent_ms + g->cfg.call_deadline_ms,
			  on_retake_reply, rc) < 0) {
		RG_WARN("player %s (%llu): its lease could not be taken again: no dbproxy link",
			p->name, (unsigned long long)p->id);
		gs_world_player_unpin(&g->world, p);
		free(rc);
	}
}

/* End a save: log, answer a waiting logout, release the player. status and
 * r as an rg_call_fn gets them (r is NULL unless status is 0). */
static void save_end(struct gs_save_call *sc, int status, const Ringgate__Internal__DbToGame *r)
{
	struct gs_game *g = sc->g;
	struct gs_player *p = sc->player;
	bool saved = status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_OK;
	bool lease_gone = status == LEASE_GONE || fenced(status, r);

	if (saved) {
		RG_DEBUG("player %s (%llu) saved%s", p->name, (unsigned long long)p->id,
			 sc->release ? ", lease released" : "");
		if (sc->release && p->state == GS_PLAYER_ONLINE && p->lease_epoch == sc->epoch)
			retake_lease(g, p); /* a login took it back meanwhile */
	} else if (lease_gone) {
		/* Not ours to write any more: whoever holds it now has the
		 * newer state. */
		RG_INFO("player %s (%llu) not saved: its lease (epoch %llu) is no longer held "
			"here", p->name, (unsigned long long)p->id, (unsigned long long)sc->epoch);
		if (status == 0)
			on_fenced(g, p, sc->epoch);
	} else {
		p->dirty = true;
		RG_ERROR("player %s (%llu) NOT saved: %s", p->name, (unsigned long long)p->id,
			 status != 0 ? net_strerror(status) : "dbproxy refused the write");
	}
	if (sc->answer) {
		if (lease_gone) {
			send_error(g, &sc->to, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
				   "logged out here; this account is online elsewhere");
		} else if (saved) {
			ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
			Ringgate__Client__LogoutReply lr = RINGGATE__CLIENT__LOGOUT_REPLY__INIT;

			msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGOUT;
			msg.logout = &lr;
			send_to(g, &sc->to, &msg);
		} else if (status != 0) {
			send_call_error(g, &sc->to, status);
		} else {
			send_db_status_error(g, &sc->to, r);
		}
	}
	gs_world_player_unpin(&g->world, p);
	free(sc);
}

/* Put sc on g->save_retries: for the link (wait_link), or until retry_at_ms. */
static void save_wait(struct gs_save_call *sc, bool wait_link)
{
	sc->wait_link = wait_link;
	sc->next_retry = sc->g->save_retries;
	sc->g->save_retries = sc;
}

/* True when a save that found the link down is to wait for it. */
static bool save_may_hold(const struct gs_save_call *sc, int status)
{
	return status == -ENOTCONN && sc->leaving && rg_now_ms() < sc->hold_until_ms;
}

static void on_save_reply(void *ctx, int status, const void *reply)
{
	struct gs_save_call *sc = ctx;
	const Ringgate__Internal__DbToGame *r = reply;

	if (status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_BUSY &&
	    sc->attempts < SAVE_ATTEMPTS) {
		sc->retry_at_ms = rg_now_ms() + ((uint64_t)SAVE_RETRY_MS << (sc->attempts - 1));
		save_wait(sc, false);
		return;
	}
	if (save_may_hold(sc, status)) {
		RG_DEBUG("player %s (%llu): dbproxy link lost with the save in flight; "
			 "holding it for a resend", sc->player->name,
			 (unsigned long long)sc->player->id);
		save_wait(sc, true);
		return;
	}
	save_end(sc, status, r);
}

/* Send (or send again) a save of the player's current position. */
static void save_send(struct gs_save_call *sc)
{
	struct gs_game *g = sc->g;
	struct gs_player *p = sc->player;
	uint64_t deadline = rg_now_ms() + g->cfg.call_deadline_ms;
	int rc;

	if (p->lease_epoch == 0) {
		save_end(sc, LEASE_GONE, NULL);
		return;
	}
	p->dirty = false;
	sc->epoch = p->lease_epoch;
	/* The last save of a player leaving frees its lease too (unless a
	 * login took the player back before this (re)send). Not while a login
	 * of the account is out: that login's take (the same owner: the same
	 * epoch) could land first and this release free the lease under the
	 * player it brings back, for another shard to take; the login's end
	 * releases it instead, if it left the player out (login_call_free). */
	sc->release = sc->leaving && p->state == GS_PLAYER_LEAVING;
	if (sc->release && p->logins_out > 0) {
		sc->release = false;
		p->release_owed = true;
	}
	rc = gs_db_link_save(&g->db, p->id, p->zone->bounds.id, p->x, p->y, sc->epoch,
			  sc->release, deadline, on_save_reply, sc);
	if (rc == 0) {
		sc->attempts++;
	} else if (save_may_hold(sc, rc)) {
		RG_DEBUG("player %s (%llu): dbproxy link down; holding the save until it is back",
			 p->name, (unsigned long long)p->id);
		save_wait(sc, true);
	} else {
		save_end(sc, rc, NULL);
	}
}

/* Save p's position; answer (may be NULL) is a logout waiting for it;
 * leaving: p is leaving the game (the save is held if the link is down). */
static void save_player(struct gs_game *g, struct gs_player *p, const struct reply_to *answer,
			bool leaving)
{
	struct gs_save_call *sc = calloc(1, sizeof(*sc));

	if (!sc) {
		p->dirty = true;
		RG_ERROR("player %s (%llu) NOT saved: out of memory", p->name,
			 (unsigned long long)p->id);
		if (answer)
			send_error(g, answer, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
				   "logged out, but the position was not saved");
		return;
	}
	sc->g = g;
	sc->player = p;
	sc->leaving = leaving;
	sc->hold_until_ms = rg_now_ms() + SAVE_HOLD_MS;
	sc->answer = answer != NULL;
	if (answer)
		sc->to = *answer;
	gs_world_player_pin(p);
	save_send(sc);
}

/* Send again the saves dbproxy refused as busy, once due, and the held
 * ones once the link is back (ending those held too long). */
static void retry_saves(struct gs_game *g, uint64_t now)
{
	struct gs_save_call *sc = g->save_retries;
	size_t held_sent = 0;

	g->save_retries = NULL;
	while (sc) {
		struct gs_save_call *next = sc->next_retry;

		if (!sc->wait_link && now >= sc->retry_at_ms) {
			save_send(sc);
		} else if (sc->wait_link && gs_db_link_up(&g->db)) {
			held_sent++;
			save_send(sc);
		} else if (sc->wait_link && now >= sc->hold_until_ms) {
			save_end(sc, -ENOTCONN, NULL);
		} else {
			save_wait(sc, sc->wait_link);
		}
		sc = next;
	}
	if (held_sent > 0)
		RG_INFO("dbproxy link back: sent %zu saves held for it", held_sent);
}

/*
 * Save the online players that moved since their last save, so a crash of
 * gamesrv loses about autosave_ms of movement at most, spread evenly over
 * that time: a cursor walks the player list, and each tick visits its
 * share of it (online players x elapsed / autosave_ms, the fraction
 * carried to the next tick), so one pass takes about autosave_ms. Saving
 * every moved player in one tick, as before, sent more saves than
 * dbproxy's write queue holds (4096) once that many had moved, and the
 * earns queued behind them were refused DB_BUSY.
 *
 * The cursor pins the player it stops at, so that player cannot be freed
 * (a player that leaves stays in the list while pinned).
 */
static void autosave(struct gs_game *g, uint64_t now)
{
	uint64_t elapsed = now - g->autosave_last_ms;
	uint64_t visits;
	struct gs_player *p = g->world.player_list;
	size_t saved = 0;

	g->autosave_last_ms = now;
	if (g->cfg.autosave_ms == 0)
		return;
	/* After a stall, catch up at no more than ten ticks' worth. */
	if (elapsed > 10 * (uint64_t)g->cfg.tick_ms)
		elapsed = 10 * (uint64_t)g->cfg.tick_ms;
	g->autosave_credit += (uint64_t)g->world.online_count * elapsed;
	visits = g->autosave_credit / g->cfg.autosave_ms;
	g->autosave_credit %= g->cfg.autosave_ms;
	if (visits == 0)
		return;
	if (g->autosave_at) {
		struct gs_player *at = g->autosave_at;

		/* Go on at `at`, the first player not yet visited; one that
		 * has left needs no autosave, and the unpin may free it. */
		p = at->state == GS_PLAYER_ONLINE ? at : at->next;
		g->autosave_at = NULL;
		gs_world_player_unpin(&g->world, at);
	}
	for (; p && visits > 0; p = p->next, visits--) {
		if (p->state == GS_PLAYER_ONLINE && p->dirty && !p->frozen) {
			save_player(g, p, NULL, false);
			saved++;
		}
	}
	if (p) { /* the pass goes on from p; at the end it starts over */
		gs_world_player_pin(p);
		g->autosave_at = p;
	}
	if (saved > 0)
		RG_DEBUG("autosave: %zu players", saved);
}

/*
 * Take an ONLINE player out of the game: tell its zone, save its position,
 * unbind and forget its client. answer (may be NULL) is a logout waiting
 * for the save: it gets LogoutReply once the save is durable, or the error
 * that stopped it (the player is logged out either way).
 */
static void leave(struct gs_game *g, struct gs_player *p, const struct reply_to *answer)
{
	struct gs_client *c = p->client;

	if (g->cfg.interest.enabled)
		gs_bundle_player_offline(&g->views, p);
	else
		broadcast_left(g, p);
	RG_INFO("player %s (%llu) leaves", p->name, (unsigned long long)p->id);
	gs_lease_log_offline(p, "left");
	gs_stream_end(&g->streams, p); /* nothing to resume after this */
	/* Out of the world first, so that the save sees it LEAVING and frees
	 * its lease; the pin keeps it until the save pins it. */
	gs_world_player_pin(p);
	gs_world_player_unbind(&g->world, p);
	gs_world_client_remove(&g->world, c);
	save_player(g, p, answer, true); /* pins p while the save is out */
	gs_world_player_unpin(&g->world, p);
}

/*
 * Take an ONLINE player out of the game without a save (its lease is not
 * ours, or no longer surely ours): its zone is told it left; its
 * connection, unless detached, is kicked with code and text when text is
 * not NULL; its client is forgotten. p may be freed on return.
 */
static void remove_unsaved(struct gs_game *g, struct gs_player *p, ErrorCode code,
			   const char *text)
{
	struct gs_client *c = p->client;

	if (g->cfg.interest.enabled)
		gs_bundle_player_offline(&g->views, p);
	else
		broadcast_left(g, p);
	if (text && !p->stream.detached)
		(void)gs_gate_out_kick(&g->out, c->key.link, c->key.session, code, text);
	gs_stream_end(&g->streams, p);
	p->lease_epoch = 0; /* nothing of it is written from here on */
	p->dirty = false;
	p->frozen = false;
	gs_world_player_unbind(&g->world, p);
	gs_world_client_remove(&g->world, c);
}

void gs_play_drop(struct gs_game *g, struct gs_player *p, ErrorCode code, const char *text,
		  const char *reason)
{
	if (p->state != GS_PLAYER_ONLINE)
		return; /* its last save meets the fence, if it must */
	if (p->frozen) {
		/* Offline here since the freeze; its handoff ends it. */
		p->lease_epoch = 0;
		return;
	}
	gs_lease_log_offline(p, reason);
	remove_unsaved(g, p, code, text);
}

void gs_play_client_gone(struct gs_game *g, struct gs_client *c)
{
	struct gs_player *p = c->player;

	if (c->handoff) {
		/* The record waits for the handoff's result (handoff_end). */
		handoff_client_gone(c->handoff);
		return;
	}
	if (p && gs_streams_on(&g->streams) && !g->draining) {
		/* Stays in the world, unseen to go, until a resume or the end
		 * of its grace period (gs_play_tick). */
		if (!p->stream.detached) {
			RG_INFO("player %s (%llu): connection gone; kept %u ms for a resume",
				p->name, (unsigned long long)p->id, g->streams.cfg.grace_ms);
			gs_stream_detach(&g->streams, p, rg_now_ms());
		}
		return;
	}
	if (p)
		leave(g, p, NULL);
	else
		gs_world_client_remove(&g->world, c);
}

/* ---- login ------------------------------------------------------------------ */

struct login_call {
	struct gs_game *g;
	struct reply_to to;
	struct gs_player *pinned;     /* the account's player if it existed  */
	char name[GS_RULES_NAME_MAX + 1];
	uint64_t sent_ms;          /* when the DbLogin (taking the lease) went */
	/* The request as it came, for a Redirect: */
	bool no_create;
	uint32_t hops;
	uint8_t password[GS_RULES_PASSWORD_MAX];
	size_t password_len;
};

static void login_call_free(struct gs_game *g, struct login_call *lc)
{
	struct gs_player *p = lc->pinned;

	if (p && --p->logins_out == 0 && p->release_owed) {
		/* Its last save held the release back for the logins out
		 * (save_send); the last of them left it out: release now. */
		p->release_owed = false;
		if (p->state == GS_PLAYER_LEAVING && p->lease_epoch != 0)
			save_player(g, p, NULL, true);
	}
	if (p)
		gs_world_player_unpin(&g->world, p);
	sodium_memzero(lc->password, sizeof(lc->password));
	free(lc);
}

/*
 * The players already in the zone go in LoginReply.others up to this
 * many; the rest follow as PlayerJoined pushes right after the reply, so
 * no message to a client grows with the zone's population (clients may
 * refuse bodies over 64 KiB).
 */
#define LOGIN_OTHERS_MAX 256

/* Tell `to` about the players of p's zone that did not fit in its
 * LoginReply: `from` on, p itself excluded. */
static void send_rest_of_zone(struct gs_game *g, const struct reply_to *to,
			      const struct gs_player *p, const struct gs_player *from)
{
	struct reply_to push = *to;

	push.seq = 0;
	push.request_id = 0;
	for (const struct gs_player *o = from; o; o = o->zone_next) {
		ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
		Ringgate__Client__PlayerJoined joined = RINGGATE__CLIENT__PLAYER_JOINED__INIT;
		Ringgate__Client__PlayerState st = RINGGATE__CLIENT__PLAYER_STATE__INIT;

		if (o == p)
			continue;
		gs_bundle_fill_state(&st, o);
		joined.player = &st;
		msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_JOINED;
		msg.joined = &joined;
		send_to(g, &push, &msg);
	}
}

static void fill_zone(Ringgate__Client__Zone *out, const struct gs_zone *z)
{
	ringgate__client__zone__init(out);
	out->id = z->bounds.id;
	out->min_x = z->bounds.min_x;
	out->min_y = z->bounds.min_y;
	out->max_x = z->bounds.max_x;
	out->max_y = z->bounds.max_y;
}

/* Answer a login with the player and the zone around it. */
static void send_login_reply(struct gs_game *g, const struct reply_to *to, struct gs_player *p,
			     bool created)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__LoginReply lr = RINGGATE__CLIENT__LOGIN_REPLY__INIT;
	Ringgate__Client__PlayerState self = RINGGATE__CLIENT__PLAYER_STATE__INIT;
	Ringgate__Client__Zone zone = RINGGATE__CLIENT__ZONE__INIT;
	Ringgate__Client__PlayerState states[LOGIN_OTHERS_MAX];
	Ringgate__Client__PlayerState *others[LOGIN_OTHERS_MAX];
	Ringgate__Client__Zone zones[GS_RULES_ZONES_MAX];
	Ringgate__Client__Zone *zone_ptrs[GS_RULES_ZONES_MAX];
	Ringgate__Client__ResumeToken tok = RINGGATE__CLIENT__RESUME_TOKEN__INIT;
	uint8_t token_buf[GS_STREAM_TOKEN_MAX];
	struct gs_zone *z = p->zone;
	struct gs_player *o = z->members;
	size_t n = 0;

	if (g->cfg.interest.enabled) {
		/* The view: the rest enters with the next WorldUpdates. */
		n = gs_bundle_login_view(&g->views, p, states, others, LOGIN_OTHERS_MAX);
		o = NULL;
	}
	for (; o && n < LOGIN_OTHERS_MAX; o = o->zone_next) {
		if (o == p)
			continue;
		ringgate__client__player_state__init(&states[n]);
		gs_bundle_fill_state(&states[n], o);
		others[n] = &states[n];
		n++;
	}
	gs_bundle_fill_state(&self, p);
	fill_zone(&zone, z);
	for (size_t i = 0; i < g->world.zone_count; i++) {
		fill_zone(&zones[i], &g->world.zones[i]);
		zone_ptrs[i] = &zones[i];
	}
	lr.self = &self;
	lr.created = created;
	lr.zone = &zone;
	lr.n_others = n;
	lr.others = others;
	lr.n_zones = g->world.zone_count;
	lr.zones = zone_ptrs;
	if (gs_streams_on(&g->streams)) {
		gs_stream_token(&g->streams, p, &tok, token_buf);
		lr.resume = &tok;
	}
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN;
	msg.login = &lr;
	send_to(g, to, &msg);
	send_rest_of_zone(g, to, p, o);
}

/*
 * True when p, the account's copy in memory, is as new as the database's
 * row a DbLogin just leased at epoch: the lease stayed with this shard
 * (the same epoch), or this shard let it go (the leaving save) and took it
 * straight back (the next epoch: the owner changed once, from nobody to
 * us). Any other epoch means another shard held the player meanwhile.
 */
static bool copy_fresh(const struct gs_player *p, uint64_t epoch)
{
	return epoch == p->lease_epoch || (p->lease_epoch != 0 && epoch == p->lease_epoch + 1);
}

/*
 * Bring the account online on client c from a successful DbLogin that
 * leased it at epoch (the call sent at sent_ms). A copy already in memory
 * (the caller made sure it is as new as the database's: copy_fresh) wins
 * over the database's: an ONLINE one is taken from its old session, which
 * is kicked first; a LEAVING one (save in flight) is taken back. Returns
 * the player, or NULL when out of memory.
 */
static struct gs_player *take_account(struct gs_game *g, struct gs_client *c, const char *name,
				   const Ringgate__Client__PlayerState *loaded, uint64_t epoch,
				   uint64_t sent_ms)
{
	struct gs_player *p = gs_world_player_find(&g->world, name);

	if (p && p->id != loaded->player_id)
		RG_ERROR("account %s: dbproxy says id %llu, memory says %llu; keeping memory",
			 name, (unsigned long long)loaded->player_id, (unsigned long long)p->id);
	if (p && p->state == GS_PLAYER_ONLINE) {
		struct gs_client *old = p->client;

		RG_INFO("player %s (%llu) logged in elsewhere: %s", p->name,
			(unsigned long long)p->id,
			p->stream.detached ? "its session waiting for a resume ends"
					   : "kicking the old session");
		if (!p->stream.detached)
			(void)gs_gate_out_kick(&g->out, old->key.link, old->key.session,
					    RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
					    "this account logged in from another session");
		gs_world_player_transfer(p, c);
		gs_world_client_remove(&g->world, old);
		gs_stream_start(&g->streams, p); /* a new session: old tokens die */
		gs_lease_taken(g, p, epoch, sent_ms); /* the same lease, renewed */
		return p;
	}
	if (p) {
		gs_world_player_bind(&g->world, p, c);
	} else {
		p = gs_world_player_add(&g->world, c, loaded->player_id, name, loaded->zone,
				     loaded->x, loaded->y, loaded->gold);
		if (!p)
			return NULL;
	}
	gs_lease_taken(g, p, epoch, sent_ms);
	if (!g->cfg.interest.enabled) {
		broadcast_joined(g, p);
	} else if (gs_bundle_player_online(&g->views, p) < 0) {
		/* Unseen by the others, it would play in a false world. */
		gs_world_player_pin(p);
		gs_world_player_unbind(&g->world, p);
		save_player(g, p, NULL, true); /* frees the lease too */
		gs_world_player_unpin(&g->world, p);
		return NULL;
	}
	gs_stream_start(&g->streams, p);
	gs_lease_log_online(p);
	return p;
}

/* Make p, a copy of the account that another shard held since it was made
 * (copy_fresh false), the database's: dropped from play if ONLINE, then
 * given the loaded state. Returns the copy (LEAVING) or NULL when the
 * drop freed it. */
static struct gs_player *refresh_copy(struct gs_game *g, struct gs_player *p,
				      const Ringgate__Client__PlayerState *loaded, uint64_t epoch)
{
	char name[GS_RULES_NAME_MAX + 1];

	RG_INFO("player %s (%llu): another shard held it since this copy was made (epoch "
		"%llu, now %llu): taking the database's", p->name, (unsigned long long)p->id,
		(unsigned long long)p->lease_epoch, (unsigned long long)epoch);
	snprintf(name, sizeof(name), "%s", p->name);
	if (p->state == GS_PLAYER_ONLINE)
		gs_play_drop(g, p, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
			     "this account logged in from another session", "lease lost");
	p = gs_world_player_find(&g->world, name); /* the drop may have freed it */
	if (p) {
		/* LEAVING: in no zone's list, so its zone may simply be set. */
		p->x = loaded->x;
		p->y = loaded->y;
		p->zone = gs_world_place(&g->world, loaded->zone, &p->x, &p->y);
		p->gold = loaded->gold;
		p->dirty = false;
		p->lease_epoch = 0;
	}
	return p;
}

/*
 * A login whose lease another shard holds (DB_LEASE_HELD): send the
 * request on to that shard (Redirect), which kicks the older session and
 * takes the login; or, when the holder is this shard (the lease of its
 * previous run has not expired yet) or the request has been redirected
 * too often, ask the client to retry.
 */
static void login_held(struct gs_game *g, const struct login_call *lc, uint32_t holder)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__Redirect rd = RINGGATE__INTERNAL__REDIRECT__INIT;
	Ringgate__Client__ClientMessage m = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
	Ringgate__Client__LoginRequest login = RINGGATE__CLIENT__LOGIN_REQUEST__INIT;

	if (holder == 0 || holder == g->cfg.shard) {
		RG_INFO("login of %s: its lease is still held by %s; the client is to retry",
			lc->name, holder ? "this shard's previous run" : "an unknown shard");
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the account is still held by a game server; retry in a few seconds");
		return;
	}
	if (lc->hops >= REDIRECT_HOPS_MAX) {
		RG_WARN("login of %s: redirected %u times already; the client is to retry",
			lc->name, lc->hops);
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the account is busy moving; retry");
		return;
	}
	login.name = (char *)lc->name;
	login.password.data = (uint8_t *)lc->password;
	login.password.len = lc->password_len;
	m.seq = lc->to.seq;
	m.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN;
	m.login = &login;
	rd.session = lc->to.session;
	rd.request_id = lc->to.request_id;
	rd.shard = holder;
	rd.message = &m;
	rd.no_create = lc->no_create;
	rd.hops = lc->hops + 1;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_REDIRECT;
	out.redirect = &rd;
	if (gs_gate_out_send_body(&g->out, lc->to.link, &out) < 0) {
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the account is held by another game server; retry");
		return;
	}
	/* The packed copy in the send buffer held the password. */
	if (g->out.buf.data)
		sodium_memzero(g->out.buf.data, g->out.buf.cap);
	rg_counter_add(g->cfg.metrics->redirects, 1);
	RG_INFO("login of %s: shard %u holds its lease; redirected there (hop %u)", lc->name,
		holder, lc->hops + 1);
}

static void on_login_reply(void *ctx, int status, const void *reply)
{
	struct login_call *lc = ctx;
	struct gs_game *g = lc->g;
	const Ringgate__Internal__DbToGame *r = reply;
	struct gs_client *c = gs_world_client_find(&g->world, lc->to.link, lc->to.session);
	const Ringgate__Client__PlayerState *loaded;
	struct gs_player *p;
	uint64_t epoch;

	if (!c || !c->login_pending)
		goto out; /* the session went away meanwhile: nobody to answer */
	c->login_pending = false;
	if (status != 0) {
		send_call_error(g, &lc->to, status);
		goto out_remove;
	}
	if (r->status == RINGGATE__INTERNAL__DB_STATUS__DB_LEASE_HELD) {
		login_held(g, lc,
			   r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_LOGIN
				   ? r->login->holder_shard : 0);
		goto out_remove;
	}
	if (r->status != RINGGATE__INTERNAL__DB_STATUS__DB_OK ||
	    r->body_case != RINGGATE__INTERNAL__DB_TO_GAME__BODY_LOGIN || !r->login->player) {
		send_db_status_error(g, &lc->to, r);
		goto out_remove;
	}
	if (g->draining) {
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
			   "the game server is stopping");
		goto out_remove;
	}
	if (gs_lease_spent(g, lc->sent_ms, rg_now_ms())) {
		/* The reply waited past the lease it took (a paused process):
		 * another shard may hold the next epoch by now. */
		RG_WARN("login of %s: its lease (epoch %llu) ran out before the reply came; "
			"the client is to retry", lc->name,
			(unsigned long long)r->login->lease_epoch);
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the game server was too slow; retry");
		goto out_remove;
	}
	loaded = r->login->player;
	epoch = r->login->lease_epoch;
	if (epoch == 0) {
		/* A player is never held without a lease (an older dbproxy). */
		RG_ERROR("dbproxy answered the login of %s without a lease epoch; refused",
			 lc->name);
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
			   "a server-side failure, retry later");
		goto out_remove;
	}
	p = gs_world_player_find(&g->world, lc->name);
	if (p && p->frozen) {
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF,
			   "the player is moving to another game server; send it again");
		goto out_remove;
	}
	if (p && !copy_fresh(p, epoch))
		p = refresh_copy(g, p, loaded, epoch);
	if (!p || p->state == GS_PLAYER_LEAVING) {
		float x = p ? p->x : loaded->x, y = p ? p->y : loaded->y;
		struct gs_zone *z = p ? p->zone : gs_world_place(&g->world, loaded->zone, &x, &y);

		if (z->shard != g->cfg.shard) {
			/* Not ours to play: the zone's shard takes it. */
			handoff_login(g, c, &lc->to, loaded->player_id, lc->name, epoch, z, x, y,
				      r->login->created);
			goto out;
		}
	}
	p = take_account(g, c, lc->name, loaded, epoch, lc->sent_ms);
	if (!p) {
		RG_ERROR("out of memory bringing %s online", lc->name);
		send_error(g, &lc->to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		goto out_remove;
	}
	RG_INFO("player %s (%llu) logged in%s", p->name, (unsigned long long)p->id,
		r->login->created ? " (new account)" : "");
	send_login_reply(g, &lc->to, p, r->login->created);
	goto out;
out_remove:
	gs_world_client_remove(&g->world, c);
out:
	login_call_free(g, lc);
}

/* A login or resume on a session that plays already (or is logging in):
 * answered ALREADY_LOGGED_IN; true when c is such a session. */
static bool refuse_in_session(struct gs_game *g, const struct reply_to *to, const struct gs_client *c)
{
	if (c)
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__ALREADY_LOGGED_IN,
			   c->player ? "this session is logged in already"
				     : "a login on this session is in progress");
	return c != NULL;
}

/* no_create: the gateway's creation bound for the client's address is
 * spent; the login may only open an existing account. hops: how often
 * the request was redirected already. */
static void handle_login(struct gs_game *g, const struct reply_to *to, struct gs_client *c,
			 uint64_t deadline_ms, const Ringgate__Client__LoginRequest *req,
			 bool no_create, uint32_t hops)
{
	struct login_call *lc;
	int rc;

	if (refuse_in_session(g, to, c))
		return;
	if (!gs_rules_name_valid(req->name)) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INVALID_NAME,
			   "a name is 1..32 characters of A-Z a-z 0-9 _ -");
		return;
	}
	if (!gs_rules_password_valid(req->password.len)) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			   "a password is 1..128 bytes");
		return;
	}
	if (!gs_db_link_up(&g->db)) {
		send_call_error(g, to, -ENOTCONN);
		return;
	}
	if (g->db.owner == 0) {
		/* No lease can be taken before the owner id is known. */
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the game server is not ready; retry");
		return;
	}
	lc = calloc(1, sizeof(*lc));
	c = lc ? gs_world_client_add(&g->world, to->link, to->session) : NULL;
	if (!c) {
		free(lc);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	lc->g = g;
	lc->to = *to;
	lc->no_create = no_create;
	lc->hops = hops;
	lc->password_len = req->password.len;
	memcpy(lc->password, req->password.data, req->password.len);
	snprintf(lc->name, sizeof(lc->name), "%s", req->name);
	/* Keep an in-memory copy of the account alive until the reply: it is
	 * fresher than what the database may return (see take_account). */
	lc->pinned = gs_world_player_find(&g->world, lc->name);
	if (lc->pinned) {
		gs_world_player_pin(lc->pinned);
		lc->pinned->logins_out++;
	}
	lc->sent_ms = rg_now_ms();
	rc = gs_db_link_login(&g->db, lc->name, &req->password, no_create, g->cfg.shard,
			   g->cfg.lease_ms, deadline_ms, on_login_reply, lc);
	if (rc < 0) {
		send_call_error(g, to, rc);
		login_call_free(g, lc);
		gs_world_client_remove(&g->world, c);
		return;
	}
	c->login_pending = true;
}

/* ---- handoff out ---------------------------------------------------------------- */

/*
 * A handoff out (docs/protocol.md section 11): this shard gives a player
 * to the shard that owns the zone it moves into (or, for a login, the
 * zone it was saved in), through the gateway its client is on:
 *
 *   move:  freeze, Handoff --> gateway --> target (DbAdopt) ... HandoffResult:
 *            ok        the player is the target's: removed here unsaved
 *            not ok    the lease taken back at a new epoch, then unfrozen
 *                      (else removed unsaved); the move is answered
 *                      SERVICE_UNAVAILABLE (handoff_retake)
 *            none by call_deadline_ms (a gateway link gone): removed unsaved
 *   login: no player here, the client record waits the same way; not ok:
 *          the login is answered SERVICE_UNAVAILABLE and the lease the
 *          DbLogin took is released.
 *
 * The client record keeps the call (c->handoff) until it ends, even when
 * the client goes meanwhile (gone: its requests no longer matter, but the
 * result still decides who has the player).
 */
enum handoff_end { HANDOFF_OK, HANDOFF_REFUSED, HANDOFF_TIMED_OUT };

struct handoff_call {
	struct gs_client_key key;
	struct reply_to to;        /* the move or login it answers if it fails */
	uint64_t player_id;
	uint32_t target_shard;
	uint64_t deadline_ms;
	bool login;                /* a login: no player here               */
	bool gone;                 /* the client went meanwhile             */
	bool retaking;             /* refused; the lease being taken back   */
	uint64_t retry_at_ms;      /* ... asked again then (0: a call is out) */
	uint64_t lease_epoch;      /* login: the lease to release on failure */
	uint32_t zone;             /* ... and where the player is saved      */
	float x, y;
	struct handoff_call *prev, *next; /* g->handoffs                  */
};

static void handoff_client_gone(struct handoff_call *hc)
{
	hc->gone = true;
}

/* The end of a release of a lease this shard took but never played. */
static void on_release_reply(void *ctx, int status, const void *reply)
{
	const Ringgate__Internal__DbToGame *r = reply;
	uint64_t player_id = (uint64_t)(uintptr_t)ctx;

	if (status != 0 || r->status != RINGGATE__INTERNAL__DB_STATUS__DB_OK)
		RG_INFO("player %llu: its lease was not released (%s); it expires instead",
			(unsigned long long)player_id,
			status != 0 ? net_strerror(status) : "fenced or refused");
}

/* Free the lease at epoch of a player this shard took and does not play
 * (its position written as it was): the DbSavePlayer that a leaving
 * player's last save is, without the player. */
static void release_lease(struct gs_game *g, uint64_t player_id, uint64_t epoch, uint32_t zone,
			  float x, float y)
{
	int rc;

	if (epoch == 0)
		return;
	rc = gs_db_link_save(&g->db, player_id, zone, x, y, epoch, true,
			  rg_now_ms() + g->cfg.call_deadline_ms, on_release_reply,
			  (void *)(uintptr_t)player_id);
	if (rc < 0)
		on_release_reply((void *)(uintptr_t)player_id, rc, NULL);
}

/* A new handoff of client c (its reply_to `to`), linked on g->handoffs and
 * c->handoff; NULL when out of memory. */
static struct handoff_call *handoff_new(struct gs_game *g, struct gs_client *c,
					const struct reply_to *to, uint64_t player_id,
					const struct gs_zone *z, float x, float y)
{
	struct handoff_call *hc = calloc(1, sizeof(*hc));

	if (!hc)
		return NULL;
	hc->key = c->key;
	hc->to = *to;
	hc->player_id = player_id;
	hc->target_shard = z->shard;
	hc->deadline_ms = rg_now_ms() + g->cfg.call_deadline_ms;
	hc->zone = z->bounds.id;
	hc->x = x;
	hc->y = y;
	hc->next = g->handoffs;
	if (g->handoffs)
		g->handoffs->prev = hc;
	g->handoffs = hc;
	c->handoff = hc;
	return hc;
}

/* Unlink hc (its client's record stays for the caller) and free it. */
static void handoff_free(struct gs_game *g, struct gs_client *c, struct handoff_call *hc)
{
	if (hc->prev)
		hc->prev->next = hc->next;
	else
		g->handoffs = hc->next;
	if (hc->next)
		hc->next->prev = hc->prev;
	if (c)
		c->handoff = NULL;
	free(hc);
}

/* Send the gateway hc's Handoff: the player and where its session goes
 * on. Returns 0 or a negative errno. */
static int send_handoff(struct gs_game *g, const struct handoff_call *hc, const char *name,
			uint64_t epoch, uint64_t next_msg_no, bool created)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__Handoff ho = RINGGATE__INTERNAL__HANDOFF__INIT;
	Ringgate__Internal__Adopt ad = RINGGATE__INTERNAL__ADOPT__INIT;

	ad.player_id = hc->player_id;
	ad.name = (char *)name;
	ad.epoch = epoch;
	ad.source_shard = g->cfg.shard;
	ad.zone = hc->zone;
	ad.x = hc->x;
	ad.y = hc->y;
	ad.next_msg_no = next_msg_no;
	ad.seq = hc->to.seq;
	ad.login = hc->login;
	ad.created = created;
	ho.session = hc->key.session;
	ho.request_id = hc->to.request_id;
	ho.target_shard = hc->target_shard;
	ho.adopt = &ad;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HANDOFF;
	out.handoff = &ho;
	return gs_gate_out_send_body(&g->out, hc->key.link, &out);
}

/* A login whose player is saved in zone z of another shard: that shard
 * takes it (Adopt.login), with the lease this DbLogin took at epoch. */
static void handoff_login(struct gs_game *g, struct gs_client *c, const struct reply_to *to,
			  uint64_t player_id, const char *name, uint64_t epoch,
			  const struct gs_zone *z, float x, float y, bool created)
{
	struct handoff_call *hc = handoff_new(g, c, to, player_id, z, x, y);

	if (!hc) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		release_lease(g, player_id, epoch, z->bounds.id, x, y);
		gs_world_client_remove(&g->world, c);
		return;
	}
	hc->login = true;
	hc->lease_epoch = epoch;
	if (send_handoff(g, hc, name, epoch, 1, created) < 0) {
		handoff_free(g, c, hc);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the gateway link is gone");
		release_lease(g, player_id, epoch, z->bounds.id, x, y);
		gs_world_client_remove(&g->world, c);
		return;
	}
	RG_INFO("login of %s (%llu): its zone %u is shard %u's; handing it over", name,
		(unsigned long long)player_id, z->bounds.id, z->shard);
}

/* A move of p into zone z of another shard: freeze p and hand it over. */
static void handoff_move(struct gs_game *g, const struct reply_to *to, struct gs_player *p,
			 const struct gs_zone *z, float x, float y)
{
	struct handoff_call *hc = handoff_new(g, p->client, to, p->id, z, x, y);
	char reason[48];

	if (!hc) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	/* The players it sees go out of its view (as in a zone change on one
	 * shard); the target's view starts from nothing. */
	if (g->cfg.interest.enabled &&
	    gs_bundle_view_clear(&g->views, p, &g->streams) == -ENOMEM) {
		handoff_free(g, p->client, hc);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	/* Offline here in the log before the Handoff is out: the network
	 * thread may send it, and the target log the player online, before
	 * this thread runs on (a preempted game thread gave lines 3 ms out of
	 * order under load, which read as the player online twice). */
	snprintf(reason, sizeof(reason), "handoff to shard %u", z->shard);
	gs_lease_log_offline(p, reason);
	/* Its stream goes on at the target from here: nothing is numbered
	 * here once it is frozen (send_to, broadcast, the views). */
	if (send_handoff(g, hc, p->name, p->lease_epoch, p->stream.next_no, false) < 0) {
		gs_lease_log_online(p); /* it plays on here, at the same lease */
		handoff_free(g, p->client, hc);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the gateway link is gone");
		return;
	}
	RG_INFO("player %s (%llu) moves to zone %u of shard %u: handing it over", p->name,
		(unsigned long long)p->id, z->bounds.id, z->shard);
	p->frozen = true;
}

/*
 * A refused move handoff (HandoffResult not ok) proves only that the
 * gateway gave up on the target: it may have judged the target's link
 * dead while the target's DbAdopt from p's epoch E was queued, and that
 * adopt may commit all the same. So p stays frozen while this shard takes
 * its own lease again from E (a DbAdopt to itself, as retake_lease does).
 * Both adopts need epoch E and each moves it on, so at most one of them
 * wins: ours -> p plays on here at E + 1; DB_FENCED (the target has it)
 * -> p is dropped unsaved. No answer (the database out of reach: nobody
 * knows) -> asked again every RETAKE_RETRY_MS while p's lease lasts, then
 * dropped unsaved (the self-fence). Never unfrozen at E. (A retry after a
 * re-take that committed unseen is fenced and drops p: safe, if needless.)
 */
#define RETAKE_RETRY_MS 100

struct handoff_retake {
	struct gs_game *g;
	struct gs_client_key key;  /* the handoff's client (c->handoff)  */
	uint64_t player_id;
	uint64_t from_epoch;
	uint64_t sent_ms;
};

/* End the re-take rt of a refused handoff: status and r as an rg_call_fn
 * gets them. */
static void handoff_retake_end(const struct handoff_retake *rt, int status,
			       const Ringgate__Internal__DbToGame *r)
{
	struct gs_game *g = rt->g;
	struct gs_client *c = gs_world_client_find(&g->world, rt->key.link, rt->key.session);
	struct handoff_call *hc = c ? c->handoff : NULL;
	struct gs_player *p = c ? c->player : NULL;
	bool ok = status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_OK &&
		  r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADOPT &&
		  r->adopt->lease_epoch != 0;
	const char *why = NULL;
	struct handoff_call call;

	if (!hc || !hc->retaking || hc->player_id != rt->player_id || !p) {
		RG_DEBUG("lease re-take of player %llu: its handoff is gone; ignored",
			 (unsigned long long)rt->player_id);
		return;
	}
	if (status != 0 && p->lease_epoch != 0 && p->lease_epoch == rt->from_epoch &&
	    !gs_lease_ending(g, p, rg_now_ms())) {
		RG_DEBUG("player %s (%llu): lease re-take: %s; asking again", p->name,
			 (unsigned long long)p->id, net_strerror(status));
		hc->retry_at_ms = rg_now_ms() + RETAKE_RETRY_MS;
		return;
	}
	call = *hc;
	handoff_free(g, c, hc);
	if (p->lease_epoch == 0 || p->lease_epoch != rt->from_epoch)
		why = "its lease was lost meanwhile";
	else if (fenced(status, r))
		why = "the database says that shard has it";
	else if (!ok)
		why = status != 0 ? net_strerror(status) : "the database refused";
	else if (gs_lease_spent(g, rt->sent_ms, rg_now_ms()))
		why = "the lease ran out before the reply came";
	if (why) {
		RG_WARN("player %s (%llu): shard %u did not take it (as the gateway says) and its "
			"lease could not be taken back (%s); dropped unsaved", p->name,
			(unsigned long long)p->id, call.target_shard, why);
		if (!call.gone)
			send_error(g, &call.to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
				   "the move to another game server failed; log in again");
		remove_unsaved(g, p, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			       call.gone ? NULL : "the move to another game server failed; log in again");
		return;
	}
	gs_lease_taken(g, p, r->adopt->lease_epoch, rt->sent_ms);
	p->frozen = false;
	send_error(g, &call.to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
		   "the game server of that zone is unavailable");
	RG_INFO("player %s (%llu): shard %u did not take it; it plays on here", p->name,
		(unsigned long long)p->id, call.target_shard);
	gs_lease_log_online(p);
	if (call.gone)
		gs_play_client_gone(g, c);
}

static void on_handoff_retake_reply(void *ctx, int status, const void *reply)
{
	handoff_retake_end(ctx, status, reply);
	free(ctx);
}

/* Start (or retry) the re-take of p's lease after hc, its move handoff,
 * was refused (see struct handoff_retake); hc stays on c->handoff
 * meanwhile. */
static void handoff_retake(struct gs_game *g, struct handoff_call *hc, struct gs_player *p)
{
	struct handoff_retake now = { .g = g, .key = hc->key, .player_id = p->id,
				      .from_epoch = p->lease_epoch, .sent_ms = rg_now_ms() };
	struct handoff_retake *rt = malloc(sizeof(*rt));
	int rc = -ENOMEM;

	hc->retaking = true;
	hc->retry_at_ms = 0;
	if (p->lease_epoch == 0) {
		/* Lost or self-fenced while it waited for a retry. */
		free(rt);
		handoff_retake_end(&now, LEASE_GONE, NULL);
		return;
	}
	if (rt) {
		*rt = now;
		rc = gs_db_link_adopt(&g->db, p->id, p->lease_epoch, g->cfg.shard,
				   g->cfg.lease_ms, p->zone->bounds.id, p->x, p->y,
				   now.sent_ms + g->cfg.call_deadline_ms, on_handoff_retake_reply,
				   rt);
	}
	if (rc < 0) {
		free(rt);
		handoff_retake_end(&now, rc, NULL); /* not sent: nothing known */
	}
}

/* End hc with its result (HandoffResult ok or not, or no result in time). */
static void handoff_end(struct gs_game *g, struct handoff_call *hc, enum handoff_end how)
{
	struct gs_client *c = gs_world_client_find(&g->world, hc->key.link, hc->key.session);
	struct gs_player *p = c ? c->player : NULL;
	struct handoff_call call = *hc;

	rg_counter_add(g->cfg.metrics->handoffs_out[how != HANDOFF_OK], 1);
	if (how == HANDOFF_REFUSED && !hc->login && p && p->lease_epoch != 0) {
		handoff_retake(g, hc, p);
		return;
	}
	handoff_free(g, c, hc);
	if (call.login || !p) {
		if (how == HANDOFF_REFUSED) {
			if (!call.gone)
				send_error(g, &call.to,
					   RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
					   "the game server of your zone is unavailable; retry");
			release_lease(g, call.player_id, call.lease_epoch, call.zone, call.x,
				      call.y);
		}
		RG_INFO("login handoff of player %llu to shard %u: %s",
			(unsigned long long)call.player_id, call.target_shard,
			how == HANDOFF_OK ? "done" : how == HANDOFF_REFUSED ? "refused" : "no answer");
		if (c)
			gs_world_client_remove(&g->world, c);
		return;
	}
	switch (how) {
	case HANDOFF_OK:
		RG_INFO("player %s (%llu) handed to shard %u", p->name, (unsigned long long)p->id,
			call.target_shard);
		remove_unsaved(g, p, 0, NULL);
		break;
	case HANDOFF_REFUSED:
		/* Lost or self-fenced while frozen (else handoff_retake):
		 * no longer ours. */
		send_error(g, &call.to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the game server of that zone is unavailable");
		remove_unsaved(g, p, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
			       "this account is online elsewhere");
		break;
	case HANDOFF_TIMED_OUT:
		RG_WARN("player %s (%llu): no HandoffResult in time; dropped unsaved (shard %u "
			"may have it)", p->name, (unsigned long long)p->id, call.target_shard);
		remove_unsaved(g, p, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			       "the move to another game server was lost; log in again");
		break;
	}
}

void gs_play_handoff_result(struct gs_game *g, net_session_id link,
			 const Ringgate__Internal__HandoffResult *hr)
{
	struct gs_client *c = gs_world_client_find(&g->world, link, hr->session);

	if (!c || !c->handoff || c->handoff->player_id != hr->player_id || c->handoff->retaking) {
		RG_DEBUG("HandoffResult for session %#llx, player %llu: no such handoff here; "
			 "ignored", (unsigned long long)hr->session,
			 (unsigned long long)hr->player_id);
		return;
	}
	handoff_end(g, c->handoff, hr->ok ? HANDOFF_OK : HANDOFF_REFUSED);
}

/* Handoffs with no result by their deadline end so. */
static void expire_handoffs(struct gs_game *g, uint64_t now)
{
	struct handoff_call *hc = g->handoffs;

	while (hc) {
		struct handoff_call *next = hc->next;

		if (hc->retaking) {
			/* Its calls have their own deadlines; a retry may be due. */
			struct gs_client *c = gs_world_client_find(&g->world, hc->key.link,
								   hc->key.session);

			if (hc->retry_at_ms != 0 && now >= hc->retry_at_ms && c && c->player)
				handoff_retake(g, hc, c->player);
		} else if (now >= hc->deadline_ms) {
			handoff_end(g, hc, HANDOFF_TIMED_OUT);
		}
		hc = next;
	}
}

/* ---- adopt in ------------------------------------------------------------------- */

/* A DbAdopt out for a player another shard hands over (Adopt). */
struct adopt_call {
	struct gs_game *g;
	struct reply_to to;        /* the move or login to answer            */
	uint64_t player_id;
	char name[GS_RULES_NAME_MAX + 1];
	uint64_t from_epoch;       /* the source's lease epoch               */
	uint32_t source_shard;
	uint32_t zone;
	float x, y;
	uint64_t next_msg_no;
	bool login, created;
	uint64_t sent_ms;          /* when the DbAdopt went                  */
};

/* Tell the gateway how the adoption of player_id for to's session ended
 * (it tells the source shard: HandoffResult). */
static void adopt_result(struct gs_game *g, const struct reply_to *to, uint64_t player_id,
			 bool ok)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__AdoptResult ar = RINGGATE__INTERNAL__ADOPT_RESULT__INIT;

	ar.session = to->session;
	ar.player_id = player_id;
	ar.ok = ok;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_ADOPT_RESULT;
	out.adopt_result = &ar;
	rg_counter_add(g->cfg.metrics->handoffs_in[!ok], 1);
	if (gs_gate_out_send_body(&g->out, to->link, &out) < 0)
		RG_DEBUG("AdoptResult for player %llu not sent: the gateway link is gone",
			 (unsigned long long)player_id);
}

/* Put the adopted player in the world on client c: a copy in memory
 * (LEAVING) is taken back with the database's state, else a new one.
 * Returns it, or NULL when out of memory (nothing changed). */
static struct gs_player *adopt_place(struct gs_game *g, struct gs_client *c,
				     const struct adopt_call *ac,
				     const Ringgate__Client__PlayerState *st)
{
	struct gs_zone *z = gs_world_zone(&g->world, ac->zone);
	struct gs_player *p = gs_world_player_find(&g->world, ac->name);

	if (p) {
		p->zone = z; /* LEAVING: in no zone's list yet */
		p->x = ac->x;
		p->y = ac->y;
		p->gold = st->gold;
		p->dirty = false;
		gs_world_player_bind(&g->world, p, c);
	} else {
		p = gs_world_player_add(&g->world, c, ac->player_id, ac->name, ac->zone, ac->x,
				     ac->y, st->gold);
		if (!p)
			return NULL;
	}
	if (!g->cfg.interest.enabled) {
		broadcast_joined(g, p);
	} else if (gs_bundle_player_online(&g->views, p) < 0) {
		gs_world_player_unbind(&g->world, p);
		return NULL;
	}
	return p;
}

/*
 * An adopt that took the lease but cannot play the player here: the
 * gateway routes the client here since AdoptResult ok, so answering the
 * move or login alone would leave a connection that is neither playing nor
 * free to log in again. Kicked ends it instead (that is its answer); the
 * client connects and logs in again.
 */
static void kick_unplaced(struct gs_game *g, const struct reply_to *to, ErrorCode code,
			  const char *text)
{
	(void)gs_gate_out_kick(&g->out, to->link, to->session, code, text);
}

static void on_adopt_reply(void *ctx, int status, const void *reply)
{
	struct adopt_call *ac = ctx;
	struct gs_game *g = ac->g;
	const Ringgate__Internal__DbToGame *r = reply;
	struct gs_client *c = gs_world_client_find(&g->world, ac->to.link, ac->to.session);
	bool ok = status == 0 && r->status == RINGGATE__INTERNAL__DB_STATUS__DB_OK &&
		  r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADOPT && r->adopt->player &&
		  r->adopt->lease_epoch != 0;
	uint64_t epoch = ok ? r->adopt->lease_epoch : 0;
	struct gs_player *p = gs_world_player_find(&g->world, ac->name);
	struct reply_to to = ac->to;

	if (!ok) {
		RG_WARN("adopt of player %s (%llu) from shard %u failed: %s", ac->name,
			(unsigned long long)ac->player_id, ac->source_shard,
			status != 0 ? net_strerror(status)
				    : r->status == RINGGATE__INTERNAL__DB_STATUS__DB_FENCED
					      ? "fenced (the source no longer held it)"
					      : "refused");
		/* A timeout may hide an adopt that was applied: then the
		 * lease is ours at the next epoch with nobody playing it here.
		 * It is not released blind: the source's re-take after our
		 * "not ok" also makes that epoch (its own) when ours was not
		 * applied, and a release checks only the epoch. Left alone, an
		 * applied one runs out, or a login is redirected here and
		 * takes it as its owner's. */
		adopt_result(g, &ac->to, ac->player_id, false);
		goto out_remove;
	}
	if (gs_lease_spent(g, ac->sent_ms, rg_now_ms())) {
		/* The reply waited past the lease it took (a paused process):
		 * another shard may hold the next epoch by now. Not ours to
		 * play nor to release; the source's re-take is fenced. */
		RG_WARN("adopt of player %s (%llu) from shard %u: its lease (epoch %llu) ran out "
			"before the reply came; refused", ac->name, (unsigned long long)ac->player_id,
			ac->source_shard, (unsigned long long)epoch);
		adopt_result(g, &ac->to, ac->player_id, false);
		goto out_remove;
	}
	if (!c || !c->adopting || g->draining || (p && p->state == GS_PLAYER_ONLINE)) {
		/* The lease is ours now and the source must let go, but
		 * nobody plays it here: free the lease again. */
		RG_INFO("adopt of player %s (%llu): %s; releasing its lease", ac->name,
			(unsigned long long)ac->player_id,
			!c || !c->adopting ? "the client went meanwhile"
			: g->draining	   ? "stopping"
					   : "it is online here already");
		adopt_result(g, &ac->to, ac->player_id, true);
		release_lease(g, ac->player_id, epoch, ac->zone, ac->x, ac->y);
		if (c && c->adopting)
			kick_unplaced(g, &ac->to,
				      g->draining ? RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN
						  : RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
				      g->draining ? "the game server is stopping"
						  : "this account logged in from another session");
		goto out_remove;
	}
	p = adopt_place(g, c, ac, r->adopt->player);
	if (!p) {
		RG_ERROR("out of memory adopting %s", ac->name);
		adopt_result(g, &ac->to, ac->player_id, true);
		release_lease(g, ac->player_id, epoch, ac->zone, ac->x, ac->y);
		kick_unplaced(g, &ac->to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
			      "out of memory; log in again");
		goto out_remove;
	}
	c->adopting = false;
	gs_stream_continue(&g->streams, p, ac->next_msg_no);
	gs_lease_taken(g, p, epoch, ac->sent_ms);
	gs_lease_log_online(p);
	RG_INFO("player %s (%llu) taken over from shard %u, in zone %u", p->name,
		(unsigned long long)p->id, ac->source_shard, ac->zone);
	/* The gateway hears the result before the answer, so the source
	 * lets go before the client sees the move done. */
	adopt_result(g, &ac->to, ac->player_id, true);
	to.player = p;
	to.login_no = p->stream.login_no;
	if (ac->login) {
		send_login_reply(g, &to, p, ac->created);
	} else {
		ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
		Ringgate__Client__MoveReply mr = RINGGATE__CLIENT__MOVE_REPLY__INIT;

		mr.x = p->x;
		mr.y = p->y;
		mr.zone = p->zone->bounds.id;
		msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVE;
		msg.move = &mr;
		send_to(g, &to, &msg);
		gs_stream_push_token(&g->streams, p); /* a token naming this shard */
	}
	free(ac);
	return;
out_remove:
	if (c && c->adopting)
		gs_world_client_remove(&g->world, c);
	free(ac);
}

/* Why an Adopt cannot be taken here (NULL: it can). */
static const char *adopt_refusal(struct gs_game *g, net_session_id link,
				 const Ringgate__Internal__ClientRequest *req)
{
	const Ringgate__Internal__Adopt *a = req->adopt;
	struct gs_zone *z = gs_world_zone(&g->world, a->zone);
	struct gs_player *p;

	if (gs_world_client_find(&g->world, link, req->session))
		return "the session is known here already";
	if (g->draining)
		return "the game server is stopping";
	if (!z || z->shard != g->cfg.shard)
		return "the zone is not this shard's";
	if (!gs_rules_point_in_zone(&z->bounds, a->x, a->y))
		return "the spot is outside the zone";
	if (a->player_id == 0 || !gs_rules_name_valid(a->name))
		return "no valid player";
	p = gs_world_player_find(&g->world, a->name);
	if (p && (p->state == GS_PLAYER_ONLINE || p->id != a->player_id))
		return "the account is online here already";
	if (!gs_db_link_up(&g->db) || g->db.owner == 0)
		return "the database is out of reach";
	return NULL;
}

/* ClientRequest.adopt: take over a player another shard hands over, by
 * deadline_ms (0: it has passed already). */
static void handle_adopt(struct gs_game *g, net_session_id link, uint64_t deadline_ms,
			 const Ringgate__Internal__ClientRequest *req)
{
	const Ringgate__Internal__Adopt *a = req->adopt;
	struct reply_to to = { .link = link, .session = req->session, .seq = a->seq,
			       .request_id = req->request_id };
	const char *why = deadline_ms == 0 ? "its deadline has passed"
					   : adopt_refusal(g, link, req);
	struct adopt_call *ac = NULL;
	struct gs_client *c = NULL;

	if (!why) {
		ac = calloc(1, sizeof(*ac));
		c = ac ? gs_world_client_add(&g->world, link, req->session) : NULL;
		why = c ? NULL : "out of memory";
	}
	if (why) {
		RG_WARN("adopt of player %llu from shard %u refused: %s",
			(unsigned long long)a->player_id, a->source_shard, why);
		free(ac);
		adopt_result(g, &to, a->player_id, false);
		return;
	}
	*ac = (struct adopt_call){ .g = g, .to = to, .player_id = a->player_id,
				   .from_epoch = a->epoch, .source_shard = a->source_shard, .zone = a->zone, .x = a->x,
				   .y = a->y, .next_msg_no = a->next_msg_no, .login = a->login,
				   .created = a->created, .sent_ms = rg_now_ms() };
	snprintf(ac->name, sizeof(ac->name), "%s", a->name);
	if (gs_db_link_adopt(&g->db, a->player_id, a->epoch, g->cfg.shard, g->cfg.lease_ms,
			  a->zone, a->x, a->y, deadline_ms, on_adopt_reply, ac) < 0) {
		RG_WARN("adopt of player %llu: dbproxy unreachable", (unsigned long long)a->player_id);
		free(ac);
		gs_world_client_remove(&g->world, c);
		adopt_result(g, &to, a->player_id, false);
		return;
	}
	c->adopting = true;
}

/* ---- play ------------------------------------------------------------------- */

static void handle_move(struct gs_game *g, const struct reply_to *to, struct gs_player *p,
			const Ringgate__Client__MoveRequest *req)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__MoveReply mr = RINGGATE__CLIENT__MOVE_REPLY__INIT;
	Ringgate__Client__PlayerMoved moved = RINGGATE__CLIENT__PLAYER_MOVED__INIT;
	struct gs_zone *from = p->zone;
	struct gs_zone *z = req->zone == 0 ? from : gs_world_zone(&g->world, req->zone);
	float old_x = p->x, old_y = p->y;

	if (!z) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__OUT_OF_BOUNDS,
			   "no such zone");
		return;
	}
	if (!gs_rules_point_in_zone(&z->bounds, req->x, req->y)) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__OUT_OF_BOUNDS,
			   "the target is outside the zone (or not a finite number)");
		return;
	}
	if (z->shard != g->cfg.shard) {
		/* Another shard's zone: that shard answers the move. */
		handoff_move(g, to, p, z, req->x, req->y);
		return;
	}
	if (z != from && !g->cfg.interest.enabled)
		broadcast_left(g, p);
	if (z != from)
		gs_world_player_set_zone(p, z);
	gs_world_player_move(p, req->x, req->y);
	if (g->cfg.interest.enabled && gs_bundle_player_moved(&g->views, p) < 0) {
		gs_world_player_set_zone(p, from);
		gs_world_player_move(p, old_x, old_y);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	p->dirty = true;
	mr.x = p->x;
	mr.y = p->y;
	mr.zone = p->zone->bounds.id;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVE;
	msg.move = &mr;
	send_to(g, to, &msg);
	if (g->cfg.interest.enabled)
		return; /* the views tell the others at the tick */
	if (z != from) {
		broadcast_joined(g, p);
		return;
	}
	moved.player_id = p->id;
	moved.x = p->x;
	moved.y = p->y;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVED;
	msg.move = NULL;
	msg.moved = &moved;
	broadcast(g, p->zone, p, &msg);
}

static void handle_chat(struct gs_game *g, const struct reply_to *to, struct gs_player *p,
			const Ringgate__Client__ChatRequest *req)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__ChatReply cr = RINGGATE__CLIENT__CHAT_REPLY__INIT;
	Ringgate__Client__ChatLine line = RINGGATE__CLIENT__CHAT_LINE__INIT;

	if (!gs_rules_chat_valid(req->text, strlen(req->text))) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INVALID_CHAT,
			   "chat is 1..256 bytes of UTF-8 without control characters");
		return;
	}
	if (g->cfg.interest.enabled && gs_bundle_chat(p, req->text) < 0) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT;
	msg.chat = &cr;
	send_to(g, to, &msg);
	if (g->cfg.interest.enabled)
		return; /* in the listeners' next WorldUpdate */

	line.player_id = p->id;
	line.name = p->name;
	line.text = req->text;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT_LINE;
	msg.chat = NULL;
	msg.chat_line = &line;
	broadcast(g, p->zone, p, &msg);
}

/* An earn waiting for dbproxy; on its player's list, whose seqs a
 * ResumeReply names as pending. */
struct earn_call {
	struct gs_game *g;
	struct reply_to to;
	struct gs_player *player;     /* pinned until the call ends */
	uint64_t epoch;            /* the lease epoch it was sent under */
	struct earn_call *prev, *next;
};

static void earn_unlink(struct earn_call *ec)
{
	if (ec->prev)
		ec->prev->next = ec->next;
	else
		ec->player->earns = ec->next;
	if (ec->next)
		ec->next->prev = ec->prev;
}

static void on_earn_reply(void *ctx, int status, const void *reply)
{
	struct earn_call *ec = ctx;
	struct gs_game *g = ec->g;
	const Ringgate__Internal__DbToGame *r = reply;

	earn_unlink(ec);

	if (status != 0) {
		/* Not acknowledged: the write may or may not have committed. */
		send_call_error(g, &ec->to, status);
	} else if (r->status != RINGGATE__INTERNAL__DB_STATUS__DB_OK ||
		   r->body_case != RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD) {
		/* DB_FENCED: nothing applied; the client is told ZONE_HANDOFF
		 * and sends it again to the shard that holds the player. */
		send_db_status_error(g, &ec->to, r);
		if (fenced(status, r))
			on_fenced(g, ec->player, ec->epoch);
	} else {
		ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
		Ringgate__Client__EarnReply er = RINGGATE__CLIENT__EARN_REPLY__INIT;

		ec->player->gold = r->add_gold->gold;
		er.gold = r->add_gold->gold;
		msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_EARN;
		msg.earn = &er;
		send_to(g, &ec->to, &msg);
	}
	gs_world_player_unpin(&g->world, ec->player);
	free(ec);
}

static void handle_earn(struct gs_game *g, const struct reply_to *to, struct gs_player *p,
			uint64_t deadline_ms, const Ringgate__Client__EarnRequest *req)
{
	struct earn_call *ec;
	int rc;

	if (!gs_rules_earn_valid(req->amount)) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			   "earn 1..1000 gold at a time");
		return;
	}
	ec = calloc(1, sizeof(*ec));
	if (!ec) {
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	ec->g = g;
	ec->to = *to;
	ec->player = p;
	ec->epoch = p->lease_epoch;
	gs_world_player_pin(p);
	rc = gs_db_link_add_gold(&g->db, p->id, req->amount, ec->epoch, deadline_ms,
			      on_earn_reply, ec);
	if (rc < 0) {
		send_call_error(g, to, rc);
		gs_world_player_unpin(&g->world, p);
		free(ec);
		return;
	}
	ec->next = p->earns;
	if (p->earns)
		p->earns->prev = ec;
	p->earns = ec;
	RG_DEBUG("player %s (%llu) seq %u: earning %u, asking dbproxy", p->name,
		 (unsigned long long)p->id, to->seq, req->amount);
}

static void handle_ping(struct gs_game *g, const struct reply_to *to,
			const Ringgate__Client__PingRequest *req)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Pong pong = RINGGATE__CLIENT__PONG__INIT;

	pong.client_time = req->client_time;
	pong.server_time_ms = rg_wall_ms();
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_PONG;
	msg.pong = &pong;
	send_to(g, to, &msg);
}

/* ---- resume -------------------------------------------------------------------- */

/* The seqs of p's earns still in flight from this login session (made on
 * an earlier connection: the resume's client has made none yet). Returns
 * how many, in a malloc'd *out (NULL when none or out of memory: -1). */
static long pending_seqs(const struct gs_player *p, uint32_t **out /* OUT */)
{
	long n = 0;

	*out = NULL;
	for (const struct earn_call *ec = p->earns; ec; ec = ec->next)
		n += ec->to.login_no == p->stream.login_no;
	if (n == 0)
		return 0;
	*out = malloc((size_t)n * sizeof(**out));
	if (!*out)
		return -1;
	n = 0;
	for (const struct earn_call *ec = p->earns; ec; ec = ec->next)
		if (ec->to.login_no == p->stream.login_no)
			(*out)[n++] = ec->to.seq;
	return n;
}

/* Move p's session to the client `to` names: the old connection, if the
 * game still had it, is kicked; the token is replaced. */
static void take_session(struct gs_game *g, struct gs_player *p, struct gs_client *c)
{
	struct gs_client *old = p->client;

	if (!p->stream.detached)
		(void)gs_gate_out_kick(&g->out, old->key.link, old->key.session,
				    RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
				    "this session was resumed on another connection");
	gs_stream_attach(&g->streams, p);
	gs_world_player_transfer(p, c);
	gs_world_client_remove(&g->world, old);
}

/*
 * Why a Resume cannot be honoured, with the text to answer; ERROR_NONE
 * when it can: then *pp is the player whose session it names and *count
 * how many kept messages follow last_received.
 */
static ErrorCode resume_refusal(struct gs_game *g, const Ringgate__Client__ResumeRequest *req,
				struct gs_player **pp /* OUT */, long *count /* OUT */,
				const char **text /* OUT */)
{
	struct gs_stream_claim claim;
	int rc;

	*text = "resume is off on this server: log in";
	if (!gs_streams_on(&g->streams))
		return RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
	rc = gs_stream_token_check(&g->streams, req->token.data, req->token.len, &claim);
	*text = "not a resume token of this cluster: log in";
	if (rc == -EBADMSG)
		return RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST;
	*text = "the session is on another game server: log in";
	if (rc == -EXDEV)
		return RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
	*text = "the resume token has expired: log in";
	if (rc < 0)
		return RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
	*pp = gs_world_player_find(&g->world, claim.name);
	*text = "the session is over, or a newer login or resume took it: log in";
	if (!*pp || (*pp)->state != GS_PLAYER_ONLINE || !gs_stream_is_session(*pp, &claim))
		return RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
	*text = "the player is moving to another game server: send it again";
	if ((*pp)->frozen)
		return RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF;
	*count = gs_stream_replay_count(*pp, req->last_received);
	*text = "last_received must be 1 or more, and at most the last msg_no sent";
	if (*count == -EINVAL)
		return RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST;
	*text = "messages after last_received are no longer kept: log in";
	if (*count < 0)
		return RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
	return RINGGATE__CLIENT__ERROR_CODE__ERROR_NONE;
}

/*
 * A Resume (docs/protocol.md section 10): check the token and the gap,
 * move the player's session to this client, answer ResumeReply (msg_no 0:
 * it belongs to this connection, not the session) and replay what the
 * client missed. Nothing here waits for dbproxy.
 */
static void handle_resume(struct gs_game *g, const struct reply_to *to, struct gs_client *c,
			  const Ringgate__Client__ResumeRequest *req)
{
	ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__ResumeReply rr = RINGGATE__CLIENT__RESUME_REPLY__INIT;
	Ringgate__Client__ResumeToken tok = RINGGATE__CLIENT__RESUME_TOKEN__INIT;
	uint8_t token_buf[GS_STREAM_TOKEN_MAX];
	struct gs_player *p = NULL;
	uint32_t *pending;
	long count = 0, n_pending, replayed;
	const char *text;
	ErrorCode code;
	int rc;

	if (refuse_in_session(g, to, c))
		return;
	code = resume_refusal(g, req, &p, &count, &text);
	if (code != RINGGATE__CLIENT__ERROR_CODE__ERROR_NONE) {
		/* Counted: a flood of forged tokens shows here. */
		rg_counter_add(g->cfg.metrics->resumes_refused, 1);
		send_error(g, to, code, text);
		return;
	}
	n_pending = pending_seqs(p, &pending);
	c = n_pending >= 0 ? gs_world_client_add(&g->world, to->link, to->session) : NULL;
	if (!c) {
		free(pending);
		send_error(g, to, RINGGATE__CLIENT__ERROR_CODE__INTERNAL, "out of memory");
		return;
	}
	take_session(g, p, c);
	gs_stream_token(&g->streams, p, &tok, token_buf);
	rr.resume = &tok;
	rr.replayed = (uint32_t)count;
	rr.n_pending = (size_t)n_pending;
	rr.pending = pending;
	msg.seq = to->seq;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_RESUME;
	msg.resume = &rr;
	rc = gs_gate_out_reply(&g->out, to->link, to->session, to->request_id, &msg);
	free(pending);
	replayed = rc < 0 ? rc : gs_stream_replay(&g->streams, p, req->last_received);
	if (replayed != count) {
		/* The client would go on with a hole: make it resume again. */
		RG_ERROR("player %s (%llu): replay after a resume failed (%s); closing the "
			 "connection", p->name, (unsigned long long)p->id,
			 net_strerror(replayed < 0 ? (int)replayed : -EIO));
		(void)gs_gate_out_kick(&g->out, to->link, to->session,
				    RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
				    "the replay failed; resume again");
		return;
	}
	rg_counter_add(g->cfg.metrics->resumes, 1);
	rg_counter_add(g->cfg.metrics->resume_replayed, (uint64_t)replayed);
	RG_INFO("player %s (%llu) resumed after message %llu: %ld replayed, %ld pending",
		p->name, (unsigned long long)p->id, (unsigned long long)req->last_received,
		replayed, n_pending);
}

/* Detached players whose grace period is over leave the game, as after a
 * disconnect without resume. */
static void end_grace(struct gs_game *g, uint64_t now)
{
	struct gs_player *p;

	while ((p = gs_stream_grace_due(&g->streams, now))) {
		RG_INFO("player %s (%llu): no resume within %u ms", p->name,
			(unsigned long long)p->id, g->streams.cfg.grace_ms);
		leave(g, p, NULL);
	}
}

/* ---- dispatch ---------------------------------------------------------------- */

void gs_play_request(struct gs_game *g, net_session_id link, uint64_t deadline_ms,
		  const Ringgate__Internal__ClientRequest *req)
{
	const Ringgate__Client__ClientMessage *m = req->adopt ? NULL : req->message;
	struct gs_client *c = gs_world_client_find(&g->world, link, req->session);
	struct gs_player *p = c ? c->player : NULL;
	struct reply_to to = { .link = link, .session = req->session, .seq = m ? m->seq : 0,
			       .request_id = req->request_id, .player = p,
			       .login_no = p ? p->stream.login_no : 0 };
	uint64_t now = rg_now_ms();
	uint64_t deadline = now + g->cfg.call_deadline_ms;

	/* The earlier of our own deadline and the one the gateway applies:
	 * answering after the gateway gave up would help nobody. */
	if (deadline_ms != 0 && deadline_ms < deadline)
		deadline = deadline_ms;
	if (req->adopt) {
		/* Even one past its deadline is answered (refused): the source
		 * waits for the result to let its frozen player go on. */
		handle_adopt(g, link, now < deadline ? deadline : 0, req);
		return;
	}
	if (now >= deadline) {
		/* The client has been told TIMEOUT (or will be at the
		 * gateway's next tick): doing it now would apply a request
		 * its sender was told had failed. */
		RG_DEBUG("client %#llx seq %u: deadline passed %llu ms before it was handled; "
			 "dropped unapplied", (unsigned long long)req->session, to.seq,
			 (unsigned long long)(now - deadline));
		rg_counter_add(g->cfg.metrics->requests_expired, 1);
		return;
	}

	if (!m || m->seq == 0) {
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			   "a request needs a message with a non-zero seq");
		return;
	}
	if (g->draining) {
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
			   "the game server is stopping");
		return;
	}
	if (c && (c->adopting || c->handoff)) {
		/* Caught in a move between shards: nothing done; the retry
		 * goes where the player is by then. */
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF,
			   "the player is moving to another game server; send it again");
		return;
	}
	switch (m->body_case) {
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN:
		handle_login(g, &to, c, deadline, m->login, req->no_create, req->hops);
		return;
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_RESUME:
		handle_resume(g, &to, c, m->resume);
		return;
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_PING:
		handle_ping(g, &to, m->ping);
		return;
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_MOVE:
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_CHAT:
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_EARN:
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGOUT:
		break;
	default:
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			   "unknown or missing request body");
		return;
	}
	if (!p) {
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__NOT_LOGGED_IN,
			   "log in first");
		return;
	}
	if (gs_lease_ending(g, p, now)) {
		/* Requests queued while this shard stalled past the lease come
		 * before the tick's self-fence: none is played on it. */
		send_error(g, &to, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "the game server lost its database");
		gs_lease_self_fence(g, p);
		return;
	}
	switch (m->body_case) {
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_MOVE:
		handle_move(g, &to, p, m->move);
		break;
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_CHAT:
		handle_chat(g, &to, p, m->chat);
		break;
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_EARN:
		handle_earn(g, &to, p, deadline, m->earn);
		break;
	default: /* LOGOUT */
		leave(g, p, &to);
		break;
	}
}

void gs_play_tick(struct gs_game *g, uint64_t now)
{
	expire_handoffs(g, now);
	gs_lease_tick(g, now);
	retry_saves(g, now);
	end_grace(g, now);
	autosave(g, now);
	if (g->cfg.interest.enabled)
		gs_bundle_tick(&g->views, &g->world, &g->streams);
}

bool gs_play_saves_waiting(const struct gs_game *g)
{
	return g->save_retries != NULL;
}

void gs_play_fini(struct gs_game *g)
{
	while (g->handoffs) /* their clients and players go with the world */
		handoff_free(g, NULL, g->handoffs);
	if (g->autosave_at) {
		gs_world_player_unpin(&g->world, g->autosave_at);
		g->autosave_at = NULL;
	}
	while (g->save_retries) {
		struct gs_save_call *sc = g->save_retries;

		g->save_retries = sc->next_retry;
		save_end(sc, -ECANCELED, NULL);
	}
}
