/*
 * db_link.c: the dbproxy link, loop side and game side (see db_link.h).
 *
 * The link itself (dbproxy's AuthChallenge, our Hello with a proof,
 * dbproxy's HelloReply with its own, the deadlines, heartbeats) is
 * rg/link.h's; the loop side adds what gamesrv does with it:
 *
 *   dialed --handshake (rg/link.h)--> up: DB_UP queued --(closed)--> DB_DOWN queued
 *      |
 *      +--closed before it was up--> nothing queued
 *
 * DB_UP and DB_DOWN are allocated when the connection is made, so the game
 * thread always learns that a link came up and that an up link ended, and
 * fails its calls; a call can then never wait on a link that no longer
 * exists. Replies are decoded straight into a game event's budget
 * (gs_game_event_decode_into) and queued as DB_REPLY.
 */
#include "db_link.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/log.h>

struct db_session {
	struct gs_game_event *up_event;   /* preallocated DB_UP               */
	struct gs_game_event *down_event; /* preallocated DB_DOWN             */
};

static int on_connected(struct rg_link *link)
{
	struct gs_db_service *d = rg_link_service_user(link);
	struct db_session *ds = rg_link_user(link);
	net_session_id id = net_session_get_id(rg_link_session(link));

	RG_INFO("dbproxy link to %s connected", NET_SESSION_PEER(rg_link_session(link)));
	ds->up_event = gs_game_event_new(GS_GAME_EV_DB_UP, id, 0);
	ds->down_event = gs_game_event_new(GS_GAME_EV_DB_DOWN, id, 0);
	if (ds->up_event && ds->down_event) {
		ds->up_event->db_index = d->cfg.index;
		ds->down_event->db_index = d->cfg.index;
		return 0;
	}
	gs_game_event_free(ds->up_event);
	gs_game_event_free(ds->down_event);
	*ds = (struct db_session){ 0 };
	return -ENOMEM;
}

static int on_up(struct rg_link *link)
{
	struct gs_db_service *d = rg_link_service_user(link);
	struct db_session *ds = rg_link_user(link);

	RG_INFO("dbproxy link %s up (role \"dbproxy\")", NET_SESSION_PEER(rg_link_session(link)));
	gs_game_queue_push(d->queue, ds->up_event); /* never refused */
	ds->up_event = NULL;
	return 0;
}

static int on_message(struct rg_link *link, ProtobufCMessage *m, void *token)
{
	struct gs_db_service *d = rg_link_service_user(link);
	struct gs_game_event *ev = token;

	ev->type = GS_GAME_EV_DB_REPLY;
	ev->db_index = d->cfg.index;
	ev->db_msg = (Ringgate__Internal__DbToGame *)m;
	if (ev->db_msg->request_id == 0) {
		RG_WARN("dbproxy link %s: unexpected DbToGame (no request id), closing it",
			NET_SESSION_PEER(rg_link_session(link)));
		gs_game_event_free(ev);
		return -EPROTO;
	}
	gs_game_queue_push(d->queue, ev); /* replies are never refused */
	return 0;
}

static void on_down(struct rg_link *link, bool was_up, enum net_reason reason)
{
	struct gs_db_service *d = rg_link_service_user(link);
	struct db_session *ds = rg_link_user(link);

	if (was_up) {
		/* Our own shutdown is no cause for alarm; anything else is. */
		rg_log(reason == NET_REASON_SHUTDOWN ? RG_LOG_INFO : RG_LOG_WARN,
		       "dbproxy link %s down (%s)", NET_SESSION_PEER(rg_link_session(link)),
		       net_reason_str(reason));
		gs_game_queue_push(d->queue, ds->down_event); /* never refused */
	} else {
		gs_game_event_free(ds->down_event);
	}
	gs_game_event_free(ds->up_event); /* set only when on_up never ran */
	*ds = (struct db_session){ 0 };
}

static const struct rg_link_ops db_ops = {
	.on_connected = on_connected,
	.on_up = on_up,
	.on_message = on_message,
	.on_down = on_down,
	.decode_into = gs_game_event_decode_into,
	.decode_drop = gs_game_event_decode_drop,
};

int gs_db_service_start(struct gs_db_service *d, struct net_runtime *rt, struct gs_game_queue *q,
		     const struct gs_db_service_config *cfg)
{
	const struct rg_link_config link = {
		.side = RG_LINK_DIALER,
		.role = "gamesrv",
		.peer_role = "dbproxy",
		.instance = cfg->instance,
		.key = cfg->link_key,
		.rules = cfg->rules,
		.in = rg_link_db_to_game,
		.out = rg_link_game_to_db,
		.max_frame = cfg->max_frame,
		.decode_limit = cfg->decode_limit,
		.user_size = sizeof(struct db_session),
		.ops = &db_ops,
		.user = d,
	};
	struct net_client_config cc;
	int rc;

	memset(&cc, 0, sizeof(cc));
	d->queue = q;
	d->cfg = *cfg;
	d->client = NULL;
	rc = rg_link_service_init(&d->link, &link);
	if (rc < 0)
		return rc;
	cc.host = cfg->host;
	cc.port = cfg->port;
	cc.sessions = 1;
	rg_link_session_config(&d->link, &cc.session);
	return net_client_start(rt, &cc, &d->client);
}

void gs_db_service_fini(struct gs_db_service *d)
{
	rg_link_service_fini(&d->link);
}

/* ---- game side ------------------------------------------------------------ */

/* An AddGold that may be sent more than once, always with its op_id. */
struct gs_gold_write {
	struct gs_db_link *link;
	uint64_t player_id;
	uint32_t amount;
	uint64_t op_id;            /* 0 until the epoch is known             */
	uint64_t lease_epoch;      /* the player's lease (fencing token)     */
	uint64_t deadline_ms;
	rg_call_fn fn;             /* the caller's callback and context      */
	void *ctx;
	unsigned sends;
};

/* A player with calls in flight, and the link they are all on (the
 * routing rule in db_link.h). */
struct db_route {
	uint64_t player_id;        /* hmap key                               */
	unsigned conn;
	unsigned calls;
};

/* A DbNewEpoch may take this long; a failed one is asked again at the
 * next tick (gs_db_link_expire). */
#define EPOCH_CALL_MS 5000

static void end_held(struct gs_db_link *l, size_t i, int status);
static void ask_epoch(struct gs_db_link *l);
static int call(struct gs_db_link *l, enum gs_db_call kind, Ringgate__Internal__GameToDb *req,
		uint64_t player_id, uint64_t hash, uint64_t deadline_ms, rg_call_fn fn,
		void *ctx);

int gs_db_link_init(struct gs_db_link *l, struct net_runtime *rt, unsigned conn_count)
{
	memset(l, 0, sizeof(*l));
	l->rt = rt;
	l->conn_count = conn_count ? conn_count : 1;
	if (l->conn_count > GS_DB_LINKS_MAX)
		return -EINVAL;
	gs_hmap_init(&l->routes);
	for (unsigned i = 0; i < l->conn_count; i++) {
		l->conns[i].calls = rg_calls_create();
		if (!l->conns[i].calls) {
			gs_db_link_fini(l);
			return -ENOMEM;
		}
	}
	return 0;
}

void gs_db_link_fini(struct gs_db_link *l)
{
	l->closing = true;
	while (l->held_len > 0)
		end_held(l, l->held_len - 1, -ECANCELED);
	free(l->held);
	l->held = NULL;
	for (unsigned i = 0; i < l->conn_count; i++) {
		rg_calls_destroy(l->conns[i].calls); /* their routes are released */
		l->conns[i].calls = NULL;
	}
	gs_hmap_fini(&l->routes);
	gs_wire_buf_fini(&l->buf);
}

bool gs_db_link_up(const struct gs_db_link *l)
{
	return l->up_count > 0;
}

/* splitmix64's finalizer: player ids are dense, homes should not be. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* FNV-1a of a name, for routing logins. */
static uint64_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 0x100000001b3ULL;
	return h;
}

/* The home link of hash, or the next one up after it; -1: none up. */
static int pick(const struct gs_db_link *l, uint64_t hash)
{
	unsigned home = (unsigned)(hash % l->conn_count);

	for (unsigned i = 0; i < l->conn_count; i++) {
		unsigned c = (home + i) % l->conn_count;

		if (l->conns[c].session != 0)
			return (int)c;
	}
	return -1;
}

static void set_gauges(struct gs_db_link *l)
{
	rg_gauge_set(l->metrics->db_link_up, l->up_count > 0);
	rg_gauge_set(l->metrics->db_links_up, l->up_count);
}

static int send_gold(struct gs_db_link *l, struct gs_gold_write *gw);

/* Send the held writes: first those sent before (each player's newest,
 * already keyed), so that dbproxy sees them before anything newer of their
 * players; then the unkeyed ones, keyed now. Each goes where the routing
 * rule says: for a player whose link dropped, another link that is up. */
static void send_held(struct gs_db_link *l)
{
	size_t held = l->held_len;

	if (held == 0 || l->epoch == 0 || !gs_db_link_up(l))
		return;
	RG_INFO("dbproxy links: resending %zu held add_gold writes", held);
	l->held_len = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < held; i++) {
			struct gs_gold_write *gw = l->held[i];
			int rc;

			if (!gw || (gw->op_id == 0) != (pass == 1))
				continue;
			l->held[i] = NULL;
			if (gw->op_id == 0)
				gw->op_id = l->epoch << 32 | ++l->seq;
			rc = send_gold(l, gw); /* a drop now puts it back on l->held */
			if (rc < 0) {
				gw->fn(gw->ctx, rc, NULL);
				free(gw);
			}
		}
	}
}

void gs_db_link_on_up(struct gs_db_link *l, unsigned index, net_session_id session)
{
	struct gs_db_conn *c;

	if (index >= l->conn_count || l->conns[index].session != 0)
		return;
	c = &l->conns[index];
	c->session = session;
	l->up_count++;
	set_gauges(l);
	if (c->was_up)
		rg_counter_add(l->metrics->db_reconnects, 1);
	c->was_up = true;
	if (l->epoch == 0)
		ask_epoch(l); /* the held writes go out once it is known */
	else
		send_held(l);
}

/* The answer to DbNewEpoch: AddGolds may go out from now on. */
static void epoch_done(void *ctx, int status, const void *reply)
{
	struct gs_db_link *l = ctx;
	const Ringgate__Internal__DbToGame *r = reply;

	l->epoch_asked = false;
	if (status != 0 || r->status != RINGGATE__INTERNAL__DB_STATUS__DB_OK ||
	    r->body_case != RINGGATE__INTERNAL__DB_TO_GAME__BODY_NEW_EPOCH ||
	    r->new_epoch->epoch == 0 || r->new_epoch->epoch > INT32_MAX) {
		if (gs_db_link_up(l))
			RG_WARN("dbproxy gave no op_id epoch (%s); asking again",
				status ? net_strerror(status) : r->message);
		return;
	}
	l->epoch = r->new_epoch->epoch;
	l->seq = 0;
	if (l->owner == 0) {
		/* Our lease owner id for the rest of this process's life. */
		l->owner = l->epoch;
		RG_INFO("dbproxy links: lease owner %llu", (unsigned long long)l->owner);
	}
	RG_INFO("dbproxy links: op_id epoch %llu", (unsigned long long)l->epoch);
	send_held(l);
}

/* Ask a dbproxy for a new epoch, unless one is asked for already. */
static void ask_epoch(struct gs_db_link *l)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbNewEpoch body = RINGGATE__INTERNAL__DB_NEW_EPOCH__INIT;
	int rc;

	if (l->epoch_asked || !gs_db_link_up(l))
		return;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_NEW_EPOCH;
	req.new_epoch = &body;
	rc = call(l, GS_DB_NEW_EPOCH, &req, 0, 0, rg_now_ms() + EPOCH_CALL_MS, epoch_done, l);
	if (rc < 0)
		RG_WARN("cannot ask dbproxy for an op_id epoch: %s (next tick)", net_strerror(rc));
	else
		l->epoch_asked = true;
}

static int by_player_then_op(const void *a, const void *b)
{
	const struct gs_gold_write *x = *(struct gs_gold_write *const *)a;
	const struct gs_gold_write *y = *(struct gs_gold_write *const *)b;

	if (x->player_id != y->player_id)
		return x->player_id < y->player_id ? -1 : 1;
	return x->op_id < y->op_id ? -1 : x->op_id > y->op_id;
}

/* Keep only each player's newest keyed held write (db_link.h says why);
 * the older ones fail with -ENOTCONN, as every call did before keys.
 * Unkeyed ones (never sent) all stay. */
static void keep_newest_per_player(struct gs_db_link *l)
{
	size_t kept = 0;

	if (l->held_len < 2)
		return; /* nothing to choose from (and qsort wants a non-NULL base) */
	qsort(l->held, l->held_len, sizeof l->held[0], by_player_then_op);
	for (size_t i = 0; i < l->held_len; i++) {
		struct gs_gold_write *gw = l->held[i];

		if (gw->op_id != 0 && i + 1 < l->held_len &&
		    l->held[i + 1]->player_id == gw->player_id) {
			gw->fn(gw->ctx, -ENOTCONN, NULL);
			free(gw);
		} else {
			l->held[kept++] = gw;
		}
	}
	l->held_len = kept;
}

void gs_db_link_on_down(struct gs_db_link *l, unsigned index, net_session_id session)
{
	struct gs_db_conn *c;

	if (index >= l->conn_count || session != l->conns[index].session)
		return; /* an older connection's end, already handled */
	c = &l->conns[index];
	c->session = 0;
	l->up_count--;
	set_gauges(l);
	if (rg_calls_pending(c->calls) > 0)
		RG_WARN("dbproxy link %u down: ending its %zu pending calls", index,
			rg_calls_pending(c->calls));
	rg_calls_fail_all(c->calls, -ENOTCONN); /* AddGolds go to l->held */
	keep_newest_per_player(l);
	if (l->held_len == 0)
		return;
	if (gs_db_link_up(l) && l->epoch != 0) {
		RG_WARN("dbproxy link %u down: moving %zu add_gold writes to the links still up",
			index, l->held_len);
		send_held(l);
	} else {
		RG_WARN("dbproxy link %u down: holding %zu add_gold writes for a resend "
			"(until their deadlines)", index, l->held_len);
		ask_epoch(l); /* if the one asked for was on this link */
	}
}

void gs_db_link_on_reply(struct gs_db_link *l, unsigned index, const Ringgate__Internal__DbToGame *reply)
{
	if (index >= l->conn_count)
		return;
	if (!rg_calls_complete(l->conns[index].calls, reply->request_id, reply))
		RG_DEBUG("dbproxy reply %llu came after its deadline: dropped",
			 (unsigned long long)reply->request_id);
}

/* End held write i with status and close the gap it leaves. */
static void end_held(struct gs_db_link *l, size_t i, int status)
{
	struct gs_gold_write *gw = l->held[i];

	memmove(&l->held[i], &l->held[i + 1], (l->held_len - i - 1) * sizeof l->held[0]);
	l->held_len--;
	gw->fn(gw->ctx, status, NULL);
	free(gw);
}

void gs_db_link_expire(struct gs_db_link *l, uint64_t now_ms)
{
	for (unsigned i = 0; i < l->conn_count; i++)
		rg_calls_expire(l->conns[i].calls, now_ms);
	for (size_t i = l->held_len; i-- > 0;)
		if (now_ms >= l->held[i]->deadline_ms)
			end_held(l, i, -ETIMEDOUT);
	if (gs_db_link_up(l) && l->epoch == 0)
		ask_epoch(l);
}

size_t gs_db_link_pending(const struct gs_db_link *l)
{
	size_t n = l->held_len;

	for (unsigned i = 0; i < l->conn_count; i++)
		n += rg_calls_pending(l->conns[i].calls);
	return n;
}

/* The route of player_id with one more call on it: the link its calls in
 * flight are on, else the one pick() gives for hash. NULL: no memory. */
static struct db_route *route_take(struct gs_db_link *l, uint64_t player_id, uint64_t hash)
{
	struct db_route *r = gs_hmap_get(&l->routes, &player_id, sizeof player_id);

	if (r && l->conns[r->conn].session == 0) {
		/* Its link just dropped and a callback of the calls it is
		 * failing makes a new one: they are all ending, move on. */
		r->conn = (unsigned)pick(l, hash);
	} else if (!r) {
		r = malloc(sizeof(*r));
		if (!r)
			return NULL;
		*r = (struct db_route){ .player_id = player_id, .conn = (unsigned)pick(l, hash) };
		if (gs_hmap_put(&l->routes, &r->player_id, sizeof r->player_id, r) < 0) {
			free(r);
			return NULL;
		}
	}
	r->calls++;
	return r;
}

/* One call of player_id ended: forget its route with its last call. */
static void route_release(struct gs_db_link *l, uint64_t player_id)
{
	struct db_route *r;

	if (player_id == 0)
		return;
	r = gs_hmap_get(&l->routes, &player_id, sizeof player_id);
	if (r && --r->calls == 0) {
		gs_hmap_remove(&l->routes, &player_id, sizeof player_id);
		free(r);
	}
}

/* A call on its way: the caller's callback, and when it was sent, so
 * that the reply's latency can be recorded before the callback runs; and
 * whose route it holds. */
struct timed_call {
	rg_call_fn fn;
	void *ctx;
	struct rg_histogram *latency;
	uint64_t sent_ns;
	struct gs_db_link *link;
	uint64_t player_id;        /* 0: routed by hash only, no route held */
};

static void timed_call_done(void *arg, int status, const void *reply)
{
	struct timed_call tc = *(struct timed_call *)arg;

	free(arg);
	/* Before the callback: a resend it makes is routed afresh. */
	route_release(tc.link, tc.player_id);
	if (status == 0)
		rg_histogram_observe(tc.latency, rg_now_ns() - tc.sent_ns);
	tc.fn(tc.ctx, status, reply);
}

/*
 * Register a call for req on the link the routing rule picks (player_id:
 * the player whose write it is, 0 for none; hash: where it lives when it
 * has no route), stamp its id and relative deadline, send it.
 */
static int call(struct gs_db_link *l, enum gs_db_call kind, Ringgate__Internal__GameToDb *req,
		uint64_t player_id, uint64_t hash, uint64_t deadline_ms, rg_call_fn fn,
		void *ctx)
{
	uint64_t now = rg_now_ms();
	struct db_route *route = NULL;
	struct timed_call *tc;
	struct gs_db_conn *c;
	int rc;

	if (l->closing)
		return -ECANCELED;
	if (!gs_db_link_up(l))
		return -ENOTCONN;
	if (player_id != 0) {
		route = route_take(l, player_id, mix64(player_id));
		if (!route)
			return -ENOMEM;
		c = &l->conns[route->conn];
	} else {
		c = &l->conns[pick(l, hash)];
	}
	tc = malloc(sizeof(*tc));
	if (!tc) {
		rc = -ENOMEM;
		goto out_route;
	}
	*tc = (struct timed_call){ fn, ctx, l->metrics->db_call_seconds[kind], rg_now_ns(), l,
				   player_id };
	req->request_id = rg_calls_add(c->calls, deadline_ms, timed_call_done, tc);
	if (req->request_id == 0) {
		rc = -ENOMEM;
		goto out_tc;
	}
	/* What is left of the deadline, and our clock, so that dbproxy
	 * counts the time the request spends in transit (internal.proto). */
	req->deadline_ms = deadline_ms > now ? (uint32_t)(deadline_ms - now) : 1;
	req->sent_ms = now;
	rc = gs_wire_send_to(l->rt, c->session, &l->buf, &req->base);
	if (rc == 0)
		return 0;
	rg_calls_cancel(c->calls, req->request_id); /* tc's callback will not run */
out_tc:
	free(tc);
out_route:
	route_release(l, player_id);
	return rc;
}

int gs_db_link_login(struct gs_db_link *l, const char *name, const ProtobufCBinaryData *password,
		  bool no_create, uint32_t shard, uint32_t lease_ms, uint64_t deadline_ms,
		  rg_call_fn fn, void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbLogin login = RINGGATE__INTERNAL__DB_LOGIN__INIT;
	int rc;

	login.name = (char *)name;
	login.password = *password;
	login.no_create = no_create;
	login.owner = l->owner;
	login.shard = shard;
	login.lease_ms = lease_ms;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_LOGIN;
	req.login = &login;
	rc = call(l, GS_DB_LOGIN, &req, 0, name_hash(name), deadline_ms, fn, ctx);
	/* The packed copy in l->buf held the password: do not keep it around. */
	if (l->buf.data)
		memset(l->buf.data, 0, l->buf.cap);
	return rc;
}

int gs_db_link_save(struct gs_db_link *l, uint64_t player_id, uint32_t zone, float x, float y,
		 uint64_t lease_epoch, bool release, uint64_t deadline_ms, rg_call_fn fn,
		 void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbSavePlayer save = RINGGATE__INTERNAL__DB_SAVE_PLAYER__INIT;

	save.player_id = player_id;
	save.zone = zone;
	save.x = x;
	save.y = y;
	save.lease_epoch = lease_epoch;
	save.release = release;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_SAVE;
	req.save = &save;
	return call(l, GS_DB_SAVE, &req, player_id, 0, deadline_ms, fn, ctx);
}

/* Put gw on the held list (its link down). False: no memory to hold it. */
static bool hold(struct gs_db_link *l, struct gs_gold_write *gw)
{
	if (l->held_len == l->held_cap) {
		size_t cap = l->held_cap ? 2 * l->held_cap : 16;
		struct gs_gold_write **grown = realloc(l->held, cap * sizeof *grown);

		if (!grown)
			return false;
		l->held = grown;
		l->held_cap = cap;
	}
	l->held[l->held_len++] = gw;
	return true;
}

/* Every send of an AddGold ends here: a link drop holds it, anything else
 * ends it for the caller. */
static void gold_done(void *arg, int status, const void *reply)
{
	struct gs_gold_write *gw = arg;
	const Ringgate__Internal__DbToGame *r = reply;

	if (status == -ENOTCONN && hold(gw->link, gw))
		return;
	if (status == 0 && r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD &&
	    r->add_gold->duplicate) {
		if (gw->sends == 1) {
			/* Nothing of ours can have been applied under a key
			 * the database issued to us alone: broken keys.
			 * Never pass this off as a success. */
			RG_ERROR("add_gold op %llu: dbproxy calls its first send a duplicate; "
				 "failing it", (unsigned long long)gw->op_id);
			status = -EPROTO;
			reply = NULL;
		} else {
			RG_INFO("add_gold op %llu (send %u) was applied before: dbproxy added "
				"nothing this time", (unsigned long long)gw->op_id, gw->sends);
		}
	} else if (status == 0 && gw->sends > 1) {
		RG_INFO("add_gold op %llu %s on send %u", (unsigned long long)gw->op_id,
			r->status == RINGGATE__INTERNAL__DB_STATUS__DB_OK ? "applied"
									 : "answered (not applied)",
			gw->sends);
	}
	gw->fn(gw->ctx, status, reply);
	free(gw);
}

/* Send gw (again) under a fresh request id. On failure gw is untouched. */
static int send_gold(struct gs_db_link *l, struct gs_gold_write *gw)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbAddGold add = RINGGATE__INTERNAL__DB_ADD_GOLD__INIT;
	int rc;

	add.player_id = gw->player_id;
	add.amount = gw->amount;
	add.op_id = gw->op_id;
	add.lease_epoch = gw->lease_epoch;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADD_GOLD;
	req.add_gold = &add;
	rc = call(l, GS_DB_ADD_GOLD, &req, gw->player_id, 0, gw->deadline_ms, gold_done, gw);
	if (rc == 0)
		gw->sends++;
	return rc;
}

int gs_db_link_add_gold(struct gs_db_link *l, uint64_t player_id, uint32_t amount,
		     uint64_t lease_epoch, uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	struct gs_gold_write *gw;
	int rc;

	if (!gs_db_link_up(l))
		return -ENOTCONN; /* issue 3: a call to a down peer fails at once */
	if (l->epoch != 0 && l->seq == UINT32_MAX) {
		l->epoch = 0; /* this epoch's keys are used up: a new one */
		ask_epoch(l);
	}
	gw = malloc(sizeof(*gw));
	if (!gw)
		return -ENOMEM;
	*gw = (struct gs_gold_write){ .link = l, .player_id = player_id, .amount = amount,
				   .lease_epoch = lease_epoch, .deadline_ms = deadline_ms,
				   .fn = fn, .ctx = ctx };
	if (l->epoch == 0) {
		/* Keyed and sent when the epoch arrives (or ended at its
		 * deadline meanwhile). */
		if (hold(l, gw))
			return 0;
		free(gw);
		return -ENOMEM;
	}
	gw->op_id = l->epoch << 32 | ++l->seq;
	rc = send_gold(l, gw);
	if (rc < 0)
		free(gw);
	return rc;
}

int gs_db_link_renew(struct gs_db_link *l, const uint64_t *player_ids, const uint64_t *epochs,
		  size_t count, uint32_t lease_ms, uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbRenewLeases renew = RINGGATE__INTERNAL__DB_RENEW_LEASES__INIT;

	renew.owner = l->owner;
	renew.lease_ms = lease_ms;
	renew.n_player_ids = count;
	renew.player_ids = (uint64_t *)player_ids; /* the packer only reads */
	renew.n_epochs = count;
	renew.epochs = (uint64_t *)epochs;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_RENEW;
	req.renew = &renew;
	return call(l, GS_DB_RENEW, &req, 0, 0, deadline_ms, fn, ctx);
}

int gs_db_link_adopt(struct gs_db_link *l, uint64_t player_id, uint64_t from_epoch,
		  uint32_t shard, uint32_t lease_ms, uint32_t zone, float x, float y,
		  uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbAdopt adopt = RINGGATE__INTERNAL__DB_ADOPT__INIT;

	adopt.player_id = player_id;
	adopt.from_epoch = from_epoch;
	adopt.owner = l->owner;
	adopt.shard = shard;
	adopt.lease_ms = lease_ms;
	adopt.zone = zone;
	adopt.x = x;
	adopt.y = y;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADOPT;
	req.adopt = &adopt;
	return call(l, GS_DB_ADOPT, &req, player_id, 0, deadline_ms, fn, ctx);
}
