/*
 * db_link.c: the dbproxy link, loop side and game side (see db_link.h).
 *
 * Loop-side states of one connection (struct db_session):
 *
 *   dialed --AuthChallenge in, Hello (with proof) out--> waiting
 *   waiting --HelloReply with dbproxy's proof--> up --(closed)--> DB_DOWN queued
 *      |
 *      +--a wrong proof, a wrong role, or anything else--> closed (protocol error)
 *
 * With --insecure-no-auth, Hello goes out at once and no proof is checked
 * (rg/link_auth.h). Heartbeats go out only once the link is up, so the
 * first frame dbproxy gets is always Hello.
 *
 * DB_DOWN is allocated when the connection is made, so the game thread
 * always learns that an up link ended and fails its calls; a call can then
 * never wait on a link that no longer exists.
 */
#include "db_link.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "keepalive.h"

struct db_session {
	struct db_service *svc;
	struct keepalive keepalive;
	bool up;                       /* HelloReply received and checked  */
	struct rg_link_auth auth;      /* the handshake                    */
	struct game_event *down_event; /* preallocated DB_DOWN             */
};

static int send_heartbeat(struct net_session *s)
{
	struct db_session *ds = net_session_user(s);
	Ringgate__Internal__GameToDb out = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;

	if (!ds->up)
		return 0; /* dbproxy takes nothing before Hello */
	hb.sent_ms = rg_wall_ms();
	out.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_HEARTBEAT;
	out.heartbeat = &hb;
	return wire_send(s, &out.base);
}

/* Hello; nonce and proof answer dbproxy's AuthChallenge (NULL: insecure). */
static int send_hello(struct net_session *s, const char *instance, uint8_t *nonce,
		      uint8_t *proof)
{
	Ringgate__Internal__GameToDb out = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;

	hello.role = "gamesrv";
	hello.instance = (char *)instance;
	if (nonce) {
		hello.nonce.data = nonce;
		hello.nonce.len = RG_LINK_NONCE_BYTES;
		hello.proof.data = proof;
		hello.proof.len = RG_LINK_PROOF_BYTES;
	}
	out.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO;
	out.hello = &hello;
	return wire_send(s, &out.base);
}

static void on_connected(struct net_session *s)
{
	struct db_session *ds = net_session_user(s);
	struct db_service *d = net_session_service_user(s);

	ds->svc = d;
	RG_INFO("dbproxy link to %s connected", NET_SESSION_PEER(s));
	ds->down_event = game_event_new(GAME_EV_DB_DOWN, net_session_get_id(s), 0);
	if (!ds->down_event ||
	    keepalive_start(&ds->keepalive, s, d->cfg.heartbeat_ms, d->cfg.dead_ms,
			    send_heartbeat, "dbproxy") < 0 ||
	    (!rg_link_auth_dial(&ds->auth, d->cfg.link_key) &&
	     send_hello(s, d->cfg.instance, NULL, NULL) < 0)) {
		RG_ERROR("dbproxy link to %s: cannot set up, closing it", NET_SESSION_PEER(s));
		net_session_disconnect(s, NET_REASON_APP_ERROR);
	}
}

/* dbproxy's AuthChallenge: answer it with Hello and our proof. Frees ev. */
static int answer_challenge(struct net_session *s, struct db_session *ds,
			    struct game_event *ev)
{
	const Ringgate__Internal__AuthChallenge *challenge = ev->db_msg->challenge;
	uint8_t nonce[RG_LINK_NONCE_BYTES], proof[RG_LINK_PROOF_BYTES];
	int rc = rg_link_auth_answer(&ds->auth, challenge->nonce.data, challenge->nonce.len,
				     "gamesrv", nonce, proof);

	game_event_free(ev);
	if (rc < 0) {
		RG_WARN("dbproxy link %s: cannot answer its AuthChallenge (%s), closing it",
			NET_SESSION_PEER(s),
			rg_link_auth_insecure(&ds->auth) ? "this gamesrv runs with --insecure-no-auth"
							  : "repeated or malformed");
		return -EPROTO;
	}
	return send_hello(s, ds->svc->cfg.instance, nonce, proof);
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	struct db_session *ds = net_session_user(s);
	struct db_service *d = ds->svc;
	struct game_event *ev;
	Ringgate__Internal__DbToGame *msg;

	keepalive_heard(&ds->keepalive);
	ev = game_event_new(GAME_EV_DB_REPLY, net_session_get_id(s), d->cfg.decode_limit);
	if (!ev)
		return -ENOMEM;
	msg = ringgate__internal__db_to_game__unpack(&ev->budget.allocator, len, body);
	if (!msg) {
		RG_WARN("dbproxy link %s: malformed DbToGame (%zu bytes), closing it",
			NET_SESSION_PEER(s), len);
		game_event_free(ev);
		return -EBADMSG;
	}
	ev->db_msg = msg;
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__DB_TO_GAME__BODY_HEARTBEAT:
		game_event_free(ev);
		if (!ds->up && !rg_link_auth_insecure(&ds->auth)) {
			/* dbproxy sends none before HelloReply; heartbeats alone
			 * must not hold a link that never authenticates. (The
			 * handshake-free mode keeps the old, lenient rule.) */
			RG_WARN("dbproxy link %s: Heartbeat before HelloReply, closing it",
				NET_SESSION_PEER(s));
			return -EPROTO;
		}
		return 0;
	case RINGGATE__INTERNAL__DB_TO_GAME__BODY_CHALLENGE:
		return answer_challenge(s, ds, ev);
	case RINGGATE__INTERNAL__DB_TO_GAME__BODY_HELLO:
		if (ds->up) {
			RG_WARN("dbproxy link %s: second HelloReply, closing it",
				NET_SESSION_PEER(s));
			game_event_free(ev);
			return -EPROTO;
		}
		if (strcmp(msg->hello->role, "dbproxy") != 0) {
			/* A proof for another role (say a gamesrv relayed to us)
			 * must not pass for dbproxy's. */
			RG_WARN("dbproxy link %s: HelloReply from role \"%.32s\", closing it",
				NET_SESSION_PEER(s), msg->hello->role);
			game_event_free(ev);
			return -EPROTO;
		}
		if (!rg_link_auth_check_acceptor(&ds->auth, msg->hello->role,
						 msg->hello->proof.data, msg->hello->proof.len)) {
			RG_WARN("dbproxy link %s: HelloReply does not prove the cluster secret, "
				"closing it", NET_SESSION_PEER(s));
			game_event_free(ev);
			return -EACCES;
		}
		ds->up = true;
		RG_INFO("dbproxy link %s up (role \"%.32s\")", NET_SESSION_PEER(s),
			msg->hello->role);
		/* Reuse the event: DB_UP carries no message. */
		protobuf_c_message_free_unpacked(&msg->base, &ev->budget.allocator);
		ev->db_msg = NULL;
		ev->type = GAME_EV_DB_UP;
		game_queue_push(d->queue, ev); /* never refused */
		return 0;
	default:
		if (!ds->up || msg->request_id == 0) {
			RG_WARN("dbproxy link %s: unexpected DbToGame (%s), closing it",
				NET_SESSION_PEER(s), ds->up ? "no request id" : "before HelloReply");
			game_event_free(ev);
			return -EPROTO;
		}
		game_queue_push(d->queue, ev); /* replies are never refused */
		return 0;
	}
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct db_session *ds = net_session_user(s);

	keepalive_stop(&ds->keepalive);
	if (ds->up) {
		/* Our own shutdown is no cause for alarm; anything else is. */
		rg_log(reason == NET_REASON_SHUTDOWN ? RG_LOG_INFO : RG_LOG_WARN,
		       "dbproxy link %s down (%s)", NET_SESSION_PEER(s), net_reason_str(reason));
		game_queue_push(ds->svc->queue, ds->down_event); /* never refused */
	} else {
		RG_INFO("dbproxy link %s closed before it was up (%s)", NET_SESSION_PEER(s),
			net_reason_str(reason));
		game_event_free(ds->down_event);
	}
	ds->down_event = NULL;
}

static const struct net_session_ops db_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

int db_service_start(struct db_service *d, struct net_runtime *rt, struct game_queue *q,
		     const struct db_service_config *cfg)
{
	struct net_client_config cc;

	memset(&cc, 0, sizeof(cc));
	d->queue = q;
	d->cfg = *cfg;
	d->client = NULL;
	cc.host = cfg->host;
	cc.port = cfg->port;
	cc.sessions = 1;
	cc.session.ops = &db_ops;
	cc.session.service_user = d;
	cc.session.user_size = sizeof(struct db_session);
	cc.session.max_frame = cfg->max_frame;
	cc.session.backpressure = NET_BACKPRESSURE_PAUSE;
	return net_client_start(rt, &cc, &d->client);
}

/* ---- game side ------------------------------------------------------------ */

/* An AddGold that may be sent more than once, always with its op_id. */
struct gold_write {
	struct db_link *link;
	uint64_t player_id;
	uint32_t amount;
	uint64_t op_id;
	uint64_t deadline_ms;
	rg_call_fn fn;             /* the caller's callback and context      */
	void *ctx;
	unsigned sends;
};

static void end_held(struct db_link *l, size_t i, int status);

int db_link_init(struct db_link *l, struct net_runtime *rt)
{
	memset(l, 0, sizeof(*l));
	l->rt = rt;
	/* Strictly increasing within this run, and above the keys of earlier
	 * runs (proto/internal.proto, DbAddGold, states the rule). */
	l->next_op_id = rg_wall_ms() << 20;
	l->calls = rg_calls_create();
	return l->calls ? 0 : -ENOMEM;
}

void db_link_fini(struct db_link *l)
{
	while (l->held_len > 0)
		end_held(l, l->held_len - 1, -ECANCELED);
	free(l->held);
	l->held = NULL;
	rg_calls_destroy(l->calls);
	l->calls = NULL;
	wire_buf_fini(&l->buf);
}

bool db_link_up(const struct db_link *l)
{
	return l->session != 0;
}

static int send_gold(struct db_link *l, struct gold_write *gw);

void db_link_on_up(struct db_link *l, net_session_id session)
{
	size_t held = l->held_len;

	l->session = session;
	rg_gauge_set(l->metrics->db_link_up, 1);
	if (l->was_up)
		rg_counter_add(l->metrics->db_reconnects, 1);
	l->was_up = true;
	if (held == 0)
		return;
	/* Before anything newer can be sent: each player's held write is
	 * its newest, so dbproxy's key check stays exact. */
	RG_INFO("dbproxy link up: resending %zu held add_gold writes", held);
	l->held_len = 0;
	for (size_t i = 0; i < held; i++) {
		struct gold_write *gw = l->held[i];
		int rc = send_gold(l, gw);

		if (rc < 0) {
			gw->fn(gw->ctx, rc, NULL);
			free(gw);
		}
	}
}

static int by_player_then_op(const void *a, const void *b)
{
	const struct gold_write *x = *(struct gold_write *const *)a;
	const struct gold_write *y = *(struct gold_write *const *)b;

	if (x->player_id != y->player_id)
		return x->player_id < y->player_id ? -1 : 1;
	return x->op_id < y->op_id ? -1 : x->op_id > y->op_id;
}

/* Keep only each player's newest held write (db_link.h says why); the
 * older ones fail with -ENOTCONN, as every call did before keys. */
static void keep_newest_per_player(struct db_link *l)
{
	size_t kept = 0;

	if (l->held_len < 2)
		return; /* nothing to choose from (and qsort wants a non-NULL base) */
	qsort(l->held, l->held_len, sizeof l->held[0], by_player_then_op);
	for (size_t i = 0; i < l->held_len; i++) {
		struct gold_write *gw = l->held[i];

		if (i + 1 < l->held_len && l->held[i + 1]->player_id == gw->player_id) {
			gw->fn(gw->ctx, -ENOTCONN, NULL);
			free(gw);
		} else {
			l->held[kept++] = gw;
		}
	}
	l->held_len = kept;
}

void db_link_on_down(struct db_link *l, net_session_id session)
{
	if (session != l->session)
		return; /* an older connection's end, already handled */
	l->session = 0;
	rg_gauge_set(l->metrics->db_link_up, 0);
	if (rg_calls_pending(l->calls) > 0)
		RG_WARN("dbproxy link down: ending %zu pending calls",
			rg_calls_pending(l->calls));
	rg_calls_fail_all(l->calls, -ENOTCONN); /* AddGolds go to l->held */
	keep_newest_per_player(l);
	if (l->held_len > 0)
		RG_WARN("dbproxy link down: holding %zu add_gold writes for a resend "
			"(until their deadlines)", l->held_len);
}

void db_link_on_reply(struct db_link *l, const Ringgate__Internal__DbToGame *reply)
{
	if (!rg_calls_complete(l->calls, reply->request_id, reply))
		RG_DEBUG("dbproxy reply %llu came after its deadline: dropped",
			 (unsigned long long)reply->request_id);
}

/* End held write i with status and close the gap it leaves. */
static void end_held(struct db_link *l, size_t i, int status)
{
	struct gold_write *gw = l->held[i];

	memmove(&l->held[i], &l->held[i + 1], (l->held_len - i - 1) * sizeof l->held[0]);
	l->held_len--;
	gw->fn(gw->ctx, status, NULL);
	free(gw);
}

void db_link_expire(struct db_link *l, uint64_t now_ms)
{
	rg_calls_expire(l->calls, now_ms);
	for (size_t i = l->held_len; i-- > 0;)
		if (now_ms >= l->held[i]->deadline_ms)
			end_held(l, i, -ETIMEDOUT);
}

size_t db_link_pending(const struct db_link *l)
{
	return rg_calls_pending(l->calls) + l->held_len;
}

/* A call on its way: the caller's callback, and when it was sent, so
 * that the reply's latency can be recorded before the callback runs. */
struct timed_call {
	rg_call_fn fn;
	void *ctx;
	struct rg_histogram *latency;
	uint64_t sent_ns;
};

static void timed_call_done(void *arg, int status, const void *reply)
{
	struct timed_call tc = *(struct timed_call *)arg;

	free(arg);
	if (status == 0)
		rg_histogram_observe(tc.latency, rg_now_ns() - tc.sent_ns);
	tc.fn(tc.ctx, status, reply);
}

/* Register a call for req, stamp its id and relative deadline, send it. */
static int call(struct db_link *l, enum gs_db_call kind, Ringgate__Internal__GameToDb *req,
		uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	uint64_t now = rg_now_ms();
	struct timed_call *tc;
	int rc;

	if (!db_link_up(l))
		return -ENOTCONN;
	tc = malloc(sizeof(*tc));
	if (!tc)
		return -ENOMEM;
	*tc = (struct timed_call){ fn, ctx, l->metrics->db_call_seconds[kind], rg_now_ns() };
	req->request_id = rg_calls_add(l->calls, deadline_ms, timed_call_done, tc);
	if (req->request_id == 0) {
		free(tc);
		return -ENOMEM;
	}
	req->deadline_ms = deadline_ms > now ? (uint32_t)(deadline_ms - now) : 1;
	rc = wire_send_to(l->rt, l->session, &l->buf, &req->base);
	if (rc < 0) {
		rg_calls_cancel(l->calls, req->request_id); /* tc's callback will not run */
		free(tc);
		return rc;
	}
	return 0;
}

int db_link_login(struct db_link *l, const char *name, const char *password,
		  uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbLogin login = RINGGATE__INTERNAL__DB_LOGIN__INIT;
	int rc;

	login.name = (char *)name;
	login.password = (char *)password;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_LOGIN;
	req.login = &login;
	rc = call(l, GS_DB_LOGIN, &req, deadline_ms, fn, ctx);
	/* The packed copy in l->buf held the password: do not keep it around. */
	if (l->buf.data)
		memset(l->buf.data, 0, l->buf.cap);
	return rc;
}

int db_link_save(struct db_link *l, uint64_t player_id, uint32_t zone, float x, float y,
		 uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbSavePlayer save = RINGGATE__INTERNAL__DB_SAVE_PLAYER__INIT;

	save.player_id = player_id;
	save.zone = zone;
	save.x = x;
	save.y = y;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_SAVE;
	req.save = &save;
	return call(l, GS_DB_SAVE, &req, deadline_ms, fn, ctx);
}

/* Put gw on the held list (link down). False: no memory to hold it. */
static bool hold(struct db_link *l, struct gold_write *gw)
{
	if (l->held_len == l->held_cap) {
		size_t cap = l->held_cap ? 2 * l->held_cap : 16;
		struct gold_write **grown = realloc(l->held, cap * sizeof *grown);

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
	struct gold_write *gw = arg;
	const Ringgate__Internal__DbToGame *r = reply;

	if (status == -ENOTCONN && hold(gw->link, gw))
		return;
	if (status == 0 && r->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD &&
	    r->add_gold->duplicate) {
		/* On a first send this would mean keys that went backwards (a
		 * wall clock stepped back across a restart): worth a warning. */
		rg_log(gw->sends > 1 ? RG_LOG_INFO : RG_LOG_WARN,
		       "add_gold op %llu (send %u) was applied before: dbproxy added nothing "
		       "this time", (unsigned long long)gw->op_id, gw->sends);
	} else if (status == 0 && gw->sends > 1) {
		RG_INFO("add_gold op %llu applied on send %u", (unsigned long long)gw->op_id,
			gw->sends);
	}
	gw->fn(gw->ctx, status, reply);
	free(gw);
}

/* Send gw (again) under a fresh request id. On failure gw is untouched. */
static int send_gold(struct db_link *l, struct gold_write *gw)
{
	Ringgate__Internal__GameToDb req = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
	Ringgate__Internal__DbAddGold add = RINGGATE__INTERNAL__DB_ADD_GOLD__INIT;
	int rc;

	add.player_id = gw->player_id;
	add.amount = gw->amount;
	add.op_id = gw->op_id;
	req.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADD_GOLD;
	req.add_gold = &add;
	rc = call(l, GS_DB_ADD_GOLD, &req, gw->deadline_ms, gold_done, gw);
	if (rc == 0)
		gw->sends++;
	return rc;
}

int db_link_add_gold(struct db_link *l, uint64_t player_id, uint32_t amount,
		     uint64_t deadline_ms, rg_call_fn fn, void *ctx)
{
	struct gold_write *gw;
	int rc;

	if (!db_link_up(l))
		return -ENOTCONN; /* issue 3: a call to a down peer fails at once */
	gw = malloc(sizeof(*gw));
	if (!gw)
		return -ENOMEM;
	*gw = (struct gold_write){ .link = l, .player_id = player_id, .amount = amount,
				   .op_id = l->next_op_id++, .deadline_ms = deadline_ms,
				   .fn = fn, .ctx = ctx };
	rc = send_gold(l, gw);
	if (rc < 0)
		free(gw);
	return rc;
}
