/*
 * service.c: gamesrv links (see service.h for the link state machine).
 *
 * Threads: every link callback runs on the link's loop thread and owns the
 * struct link in the session's user area. Requests leave that thread as
 * heap objects (struct login_call, struct write_call) that carry the
 * link's session id, never a pointer to the link, so the thread answering
 * later cannot touch a freed session: net_send_to() drops a reply for a
 * link that has gone.
 *
 * Peer input is untrusted: a frame that does not decode (or is bigger than
 * MAX_FRAME, or decodes to more than DECODE_LIMIT bytes) closes the link;
 * a well-formed request with bad fields gets DB_BAD_REQUEST.
 */
#include "service.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.pb-c.h"
#include "rg/clock.h"
#include "rg/heartbeat.h"
#include "rg/link_auth.h"
#include "rg/log.h"
#include "rg/pb_arena.h"

/* A GameToDb is a few hundred bytes; this leaves room for new fields. */
#define MAX_FRAME 16384
/* Bytes one decode may allocate: a frame's strings plus the structs. */
#define DECODE_LIMIT (4 * MAX_FRAME)
/* Replies that fit here are packed without malloc. */
#define REPLY_STACK_BYTES 512

typedef Ringgate__Internal__GameToDb GameToDb;
typedef Ringgate__Internal__DbToGame DbToGame;

struct rg_service {
	struct net_runtime *rt;
	struct net_server *server;
	struct rg_writer *writer;
	struct rg_auth *auth;
	uint32_t heartbeat_ms;
	uint32_t dead_ms;
	const struct rg_link_key *link_key;
};

/* The user area of one gamesrv link; loop thread only. */
struct link {
	struct net_session *session;
	net_session_id id;
	bool ready;               /* Hello received (and its proof checked) */
	struct rg_link_auth auth; /* the handshake: AuthChallenge out, Hello in */
	struct rg_heartbeat heartbeat;
	struct net_timer *timer;
	struct rg_pb_arena arena;
};

/* A login on its way through the workers (and maybe the writer). */
struct login_call {
	struct rg_login login;
	struct rg_service *svc;
	net_session_id link;
	uint64_t request_id;
};

/* A save or add_gold on its way through the writer. */
struct write_call {
	struct rg_write write;
	struct rg_service *svc;
	net_session_id link;
	uint64_t request_id;
};

/* ---- replies ----------------------------------------------------------- */

/* Pack msg and queue it to the link named by id. Any thread. */
static void send_msg(struct rg_service *svc, net_session_id id, const DbToGame *msg)
{
	uint8_t stack[REPLY_STACK_BYTES];
	size_t len = ringgate__internal__db_to_game__get_packed_size(msg);
	uint8_t *buf = len <= sizeof stack ? stack : malloc(len);
	int err;

	if (!buf) {
		RG_ERROR("link %016llx: no memory for a %zu-byte reply", (unsigned long long)id, len);
		return;
	}
	ringgate__internal__db_to_game__pack(msg, buf);
	err = net_send_to(svc->rt, id, buf, len);
	if (err)
		RG_WARN("link %016llx: reply not sent: %s", (unsigned long long)id,
			net_strerror(err));
	if (buf != stack)
		free(buf);
}

/* The wire status (and a detail for logs and gamesrv) of a result code. */
static Ringgate__Internal__DbStatus status_of(int result, const char **detail)
{
	switch (result) {
	case 0:
		*detail = "";
		return RINGGATE__INTERNAL__DB_STATUS__DB_OK;
	case -EACCES:
		*detail = "wrong password";
		return RINGGATE__INTERNAL__DB_STATUS__DB_WRONG_PASSWORD;
	case -ENOENT:
		*detail = "no such player";
		return RINGGATE__INTERNAL__DB_STATUS__DB_NOT_FOUND;
	case -EAGAIN:
		*detail = "queue full, retry later";
		return RINGGATE__INTERNAL__DB_STATUS__DB_BUSY;
	case -ESHUTDOWN:
		*detail = "dbproxy is shutting down";
		return RINGGATE__INTERNAL__DB_STATUS__DB_BUSY;
	case -ETIMEDOUT:
		*detail = "deadline passed while queued; not applied";
		return RINGGATE__INTERNAL__DB_STATUS__DB_BUSY;
	case -ERANGE:
		*detail = "gold total would overflow";
		return RINGGATE__INTERNAL__DB_STATUS__DB_BAD_REQUEST;
	default:
		*detail = strerror(-result);
		return RINGGATE__INTERNAL__DB_STATUS__DB_ERROR;
	}
}

/* Send a reply with no body: an error, or a bodiless success. */
static void send_status(struct rg_service *svc, net_session_id id, uint64_t request_id,
			int result)
{
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;

	reply.request_id = request_id;
	reply.status = status_of(result, &detail);
	reply.message = (char *)detail;
	send_msg(svc, id, &reply);
}

static void send_bad_request(struct rg_service *svc, net_session_id id, uint64_t request_id,
			     const char *detail)
{
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;

	reply.request_id = request_id;
	reply.status = RINGGATE__INTERNAL__DB_STATUS__DB_BAD_REQUEST;
	reply.message = (char *)detail;
	send_msg(svc, id, &reply);
}

/* ---- completions (worker and writer threads) --------------------------- */

static void login_done(struct rg_login *l)
{
	struct login_call *call = RG_CONTAINER_OF(l, struct login_call, login);
	Ringgate__Client__PlayerState player = RINGGATE__CLIENT__PLAYER_STATE__INIT;
	Ringgate__Internal__DbLoginReply body = RINGGATE__INTERNAL__DB_LOGIN_REPLY__INIT;
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;

	reply.request_id = call->request_id;
	reply.status = status_of(l->result, &detail);
	reply.message = (char *)detail;
	if (l->result == 0) {
		player.player_id = l->player.id;
		player.name = l->player.name;
		player.zone = l->player.zone;
		player.x = l->player.x;
		player.y = l->player.y;
		player.gold = l->player.gold;
		body.player = &player;
		body.created = l->created;
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_LOGIN;
		reply.login = &body;
	}
	if (l->created)
		RG_INFO("account %s created (player %llu)", l->name,
			(unsigned long long)l->player.id);
	else
		RG_DEBUG("login %s: %s", l->name, l->result ? detail : "ok");
	send_msg(call->svc, call->link, &reply);
	free(call);
}

static void write_done(struct rg_write *w)
{
	struct write_call *call = RG_CONTAINER_OF(w, struct write_call, write);
	Ringgate__Internal__DbSaveReply save = RINGGATE__INTERNAL__DB_SAVE_REPLY__INIT;
	Ringgate__Internal__DbAddGoldReply gold = RINGGATE__INTERNAL__DB_ADD_GOLD_REPLY__INIT;
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;

	reply.request_id = call->request_id;
	reply.status = status_of(w->result, &detail);
	reply.message = (char *)detail;
	if (w->result == 0 && w->kind == RG_WRITE_ADD_GOLD) {
		gold.gold = w->gold;
		gold.duplicate = w->duplicate;
		if (w->duplicate)
			RG_INFO("add_gold op %llu for player %llu was applied before: "
				"answered with the current total, nothing added",
				(unsigned long long)w->add_gold.op_id,
				(unsigned long long)w->add_gold.player_id);
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD;
		reply.add_gold = &gold;
	} else if (w->result == 0) {
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_SAVE;
		reply.save = &save;
	}
	send_msg(call->svc, call->link, &reply);
	free(call);
}

/* ---- requests (loop thread) -------------------------------------------- */

/* The client contract's names: 1..RG_NAME_MAX of [A-Za-z0-9_-]. */
static bool valid_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > RG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

/* The absolute rg_now_ms() deadline of a request; 0 when it has none. */
static uint64_t deadline_of(const GameToDb *msg)
{
	return msg->deadline_ms ? rg_now_ms() + msg->deadline_ms : 0;
}

static void handle_login(struct rg_service *svc, struct link *link, const GameToDb *msg)
{
	Ringgate__Internal__DbLogin *req = msg->login;
	size_t password_len = strlen(req->password);
	struct login_call *call;
	int err;

	if (!valid_name(req->name) || password_len == 0 || password_len > RG_PASSWORD_MAX) {
		send_bad_request(svc, link->id, msg->request_id,
				 "name must be 1..32 of [A-Za-z0-9_-], password 1..128 bytes");
		goto out_wipe;
	}
	call = calloc(1, sizeof *call);
	if (!call) {
		send_status(svc, link->id, msg->request_id, -ENOMEM);
		goto out_wipe;
	}
	call->svc = svc;
	call->link = link->id;
	call->request_id = msg->request_id;
	memcpy(call->login.name, req->name, strlen(req->name) + 1);
	memcpy(call->login.password, req->password, password_len + 1);
	call->login.deadline_ms = deadline_of(msg);
	call->login.done = login_done;
	err = rg_auth_submit(svc->auth, &call->login);
	if (err) {
		sodium_memzero(call->login.password, sizeof call->login.password);
		free(call);
		send_status(svc, link->id, msg->request_id, err);
	}
out_wipe:
	/* The decoded copy sits in the arena, which is reused, not cleared. */
	sodium_memzero(req->password, password_len);
}

/* Queue a filled write; on refusal answer at once (the push-back). */
static void submit_write(struct rg_service *svc, struct link *link, const GameToDb *msg,
			 struct write_call *call)
{
	int err;

	call->svc = svc;
	call->link = link->id;
	call->request_id = msg->request_id;
	call->write.deadline_ms = deadline_of(msg);
	call->write.done = write_done;
	err = rg_writer_submit(svc->writer, &call->write);
	if (err) {
		free(call);
		send_status(svc, link->id, msg->request_id, err);
	}
}

/* A zeroed write call, or NULL after answering the request with -ENOMEM. */
static struct write_call *write_call_new(struct rg_service *svc, struct link *link,
					 const GameToDb *msg)
{
	struct write_call *call = calloc(1, sizeof *call);

	if (!call)
		send_status(svc, link->id, msg->request_id, -ENOMEM);
	return call;
}

static void handle_save(struct rg_service *svc, struct link *link, const GameToDb *msg)
{
	const Ringgate__Internal__DbSavePlayer *req = msg->save;
	struct write_call *call;

	if (req->player_id == 0 || !isfinite(req->x) || !isfinite(req->y)) {
		send_bad_request(svc, link->id, msg->request_id,
				 "save needs a player_id and finite x, y");
		return;
	}
	call = write_call_new(svc, link, msg);
	if (!call)
		return;
	call->write.kind = RG_WRITE_SAVE_POSITION;
	call->write.save.player_id = req->player_id;
	call->write.save.zone = req->zone;
	call->write.save.x = req->x;
	call->write.save.y = req->y;
	submit_write(svc, link, msg, call);
}

static void handle_add_gold(struct rg_service *svc, struct link *link, const GameToDb *msg)
{
	const Ringgate__Internal__DbAddGold *req = msg->add_gold;
	struct write_call *call;

	if (req->player_id == 0 || req->amount == 0) {
		send_bad_request(svc, link->id, msg->request_id,
				 "add_gold needs a player_id and an amount > 0");
		return;
	}
	if (req->op_id > INT64_MAX) {
		/* SQLite stores it as a signed 64-bit integer. */
		send_bad_request(svc, link->id, msg->request_id,
				 "add_gold op_id must fit in 63 bits");
		return;
	}
	call = write_call_new(svc, link, msg);
	if (!call)
		return;
	call->write.kind = RG_WRITE_ADD_GOLD;
	call->write.add_gold.player_id = req->player_id;
	call->write.add_gold.amount = req->amount;
	call->write.add_gold.op_id = req->op_id;
	submit_write(svc, link, msg, call);
}

/* The first frame: returns 0 when the link is now ready. */
static int handle_hello(struct rg_service *svc, struct link *link, const GameToDb *msg)
{
	Ringgate__Internal__HelloReply hello = RINGGATE__INTERNAL__HELLO_REPLY__INIT;
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *peer = NET_SESSION_PEER(link->session);
	const Ringgate__Internal__Hello *in = msg->hello;
	uint8_t proof[RG_LINK_PROOF_BYTES];

	if (msg->body_case != RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO) {
		RG_WARN("link %s: first frame is not Hello: disconnecting", peer);
		return -EPROTO;
	}
	if (strcmp(msg->hello->role, "gamesrv") != 0) {
		RG_WARN("link %s: Hello from role \"%.32s\", expected \"gamesrv\": disconnecting",
			peer, msg->hello->role);
		return -EPROTO;
	}
	if (!rg_link_auth_check_dialer(&link->auth, in->role, in->nonce.data, in->nonce.len,
				       in->proof.data, in->proof.len, "dbproxy", proof)) {
		RG_WARN("link %s: Hello does not prove the cluster secret (wrong secret, or "
			"the peer runs without one): disconnecting", peer);
		return -EACCES;
	}
	link->ready = true;
	RG_INFO("link %s: gamesrv \"%.64s\" connected", peer, msg->hello->instance);
	hello.role = "dbproxy";
	if (!rg_link_auth_insecure(&link->auth)) {
		hello.proof.data = proof;
		hello.proof.len = sizeof(proof);
	}
	reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_HELLO;
	reply.hello = &hello;
	send_msg(svc, link->id, &reply);
	return 0;
}

/* One decoded frame on a link. A negative return closes the link. */
static int handle_msg(struct rg_service *svc, struct link *link, const GameToDb *msg)
{
	if (!link->ready)
		return handle_hello(svc, link, msg);
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_HEARTBEAT:
		return 0; /* on_frame already noted that the peer is alive */
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO:
		RG_WARN("link %s: second Hello: disconnecting", NET_SESSION_PEER(link->session));
		return -EPROTO;
	default:
		break;
	}
	if (msg->request_id == 0) {
		/* Nothing to answer to; an unknown notification from a newer
		 * gamesrv is not worth closing the link for. */
		RG_WARN("link %s: request without request_id (body %d) ignored",
			NET_SESSION_PEER(link->session), (int)msg->body_case);
		return 0;
	}
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_LOGIN:
		handle_login(svc, link, msg);
		break;
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_SAVE:
		handle_save(svc, link, msg);
		break;
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADD_GOLD:
		handle_add_gold(svc, link, msg);
		break;
	default:
		send_bad_request(svc, link->id, msg->request_id, "unknown request");
		break;
	}
	return 0;
}

/* ---- link callbacks (loop thread) -------------------------------------- */

static void on_tick(struct net_timer *timer, void *arg)
{
	struct net_session *s = arg;
	struct link *link = net_session_user(s);
	struct rg_service *svc = net_session_service_user(s);
	uint64_t now = net_loop_now(net_session_loop(s));

	(void)timer;
	if (rg_heartbeat_dead(&link->heartbeat, now)) {
		RG_WARN("link %s: silent for more than %u ms: disconnecting",
			NET_SESSION_PEER(s), svc->dead_ms);
		net_session_disconnect(s, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	/* Heartbeats start after Hello: HelloReply is the first frame out. */
	if (link->ready && rg_heartbeat_due(&link->heartbeat, now)) {
		Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;
		DbToGame msg = RINGGATE__INTERNAL__DB_TO_GAME__INIT;

		hb.sent_ms = rg_wall_ms();
		msg.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_HEARTBEAT;
		msg.heartbeat = &hb;
		send_msg(svc, link->id, &msg);
	}
}

/* The handshake's first frame: a fresh nonce gamesrv must prove the secret
 * over (nothing when running with --insecure-no-auth). */
static void send_challenge(struct rg_service *svc, struct link *link)
{
	Ringgate__Internal__AuthChallenge challenge = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;
	DbToGame msg = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	uint8_t nonce[RG_LINK_NONCE_BYTES];

	if (!rg_link_auth_accept(&link->auth, svc->link_key, nonce))
		return;
	challenge.nonce.data = nonce;
	challenge.nonce.len = sizeof(nonce);
	msg.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_CHALLENGE;
	msg.challenge = &challenge;
	send_msg(svc, link->id, &msg);
}

static void on_connected(struct net_session *s)
{
	struct link *link = net_session_user(s);
	struct rg_service *svc = net_session_service_user(s);
	struct net_loop *loop = net_session_loop(s);
	/* Tick often enough to send on time and to notice death promptly. */
	uint64_t tick = svc->heartbeat_ms < svc->dead_ms / 2 ? svc->heartbeat_ms
							     : svc->dead_ms / 2;
	int err;

	link->session = s;
	link->id = net_session_get_id(s);
	rg_pb_arena_init(&link->arena, DECODE_LIMIT);
	rg_heartbeat_init(&link->heartbeat, svc->heartbeat_ms, svc->dead_ms, net_loop_now(loop));
	err = net_timer_create(loop, on_tick, s, &link->timer);
	if (err) {
		RG_ERROR("link %s: no heartbeat timer (%s): disconnecting", NET_SESSION_PEER(s),
			 net_strerror(err));
		net_session_disconnect(s, NET_REASON_LOCAL);
		return;
	}
	net_timer_start(link->timer, tick ? tick : 1, tick ? tick : 1);
	RG_DEBUG("link %s: accepted", NET_SESSION_PEER(s));
	send_challenge(svc, link);
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	struct link *link = net_session_user(s);
	struct rg_service *svc = net_session_service_user(s);
	GameToDb *msg;
	int err;

	rg_heartbeat_heard(&link->heartbeat, net_loop_now(net_session_loop(s)));
	msg = ringgate__internal__game_to_db__unpack(&link->arena.allocator, len, body);
	if (!msg) {
		RG_WARN("link %s: a %zu-byte frame is not a GameToDb: disconnecting",
			NET_SESSION_PEER(s), len);
		rg_pb_arena_reset(&link->arena);
		return -EBADMSG;
	}
	err = handle_msg(svc, link, msg);
	rg_pb_arena_reset(&link->arena);
	return err;
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct link *link = net_session_user(s);

	if (link->timer)
		net_timer_destroy(link->timer);
	link->timer = NULL;
	rg_pb_arena_fini(&link->arena);
	if (link->ready || reason != NET_REASON_PEER_CLOSED)
		RG_INFO("link %s: closed (%s)", NET_SESSION_PEER(s), net_reason_str(reason));
}

static const struct net_session_ops link_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

/* ---- service ----------------------------------------------------------- */

int rg_service_start(struct net_runtime *rt, const struct rg_service_config *cfg,
		     struct rg_service **out)
{
	struct rg_service *svc = calloc(1, sizeof *svc);
	struct net_server_config server_cfg = {
		.host = cfg->host,
		.port = cfg->port,
		.max_sessions = cfg->max_links,
		.session = {
			.ops = &link_ops,
			.user_size = sizeof(struct link),
			.max_frame = MAX_FRAME,
			/* An internal link: stop reading when gamesrv does not
			 * read its replies, rather than drop it. */
			.backpressure = NET_BACKPRESSURE_PAUSE,
		},
	};
	int err;

	if (!svc)
		return -ENOMEM;
	svc->rt = rt;
	svc->writer = cfg->writer;
	svc->auth = cfg->auth;
	svc->heartbeat_ms = cfg->heartbeat_ms;
	svc->dead_ms = cfg->dead_ms;
	svc->link_key = cfg->link_key;
	server_cfg.session.service_user = svc;
	err = net_server_start(rt, &server_cfg, &svc->server);
	if (err) {
		free(svc);
		return err;
	}
	*out = svc;
	return 0;
}

uint16_t rg_service_port(const struct rg_service *svc)
{
	return net_server_port(svc->server);
}

void rg_service_stop_accepting(struct rg_service *svc)
{
	net_server_stop(svc->server, false);
}

void rg_service_destroy(struct rg_service *svc)
{
	/* free(NULL) is fine: main calls this on every exit path. */
	free(svc);
}
