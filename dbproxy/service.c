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
#include "rg/link.h"
#include "rg/log.h"
#include "rg/peer_clock.h"

/* A GameToDb is a few hundred bytes; this leaves room for new fields. */
#define MAX_FRAME 16384
/* Bytes one decode may allocate: a frame's strings plus the structs. */
#define DECODE_LIMIT (4 * MAX_FRAME)
/* Replies that fit here are packed without malloc. */
#define REPLY_STACK_BYTES 512

typedef Ringgate__Internal__GameToDb GameToDb;
typedef Ringgate__Internal__DbToGame DbToGame;

struct dbp_service {
	struct net_runtime *rt;
	struct net_server *server;
	struct dbp_writer *writer;
	struct dbp_auth *auth;
	struct rg_link_service link;  /* the links' rules (rg/link.h)     */
};

/* The process's area of one gamesrv link (rg_link_user); loop thread only. */
struct link {
	struct net_session *session;
	net_session_id id;
	struct rg_peer_clock clock; /* ages of gamesrv's requests          */
};

/* A login on its way through the workers (and maybe the writer). */
struct login_call {
	struct dbp_login login;
	struct dbp_service *svc;
	net_session_id link;
	uint64_t request_id;
};

/* A save or add_gold on its way through the writer. */
struct write_call {
	struct dbp_write write;
	struct dbp_service *svc;
	net_session_id link;
	uint64_t request_id;
};

/* ---- replies ----------------------------------------------------------- */

/* Pack msg and queue it to the link named by id. Any thread. */
static void send_msg(struct dbp_service *svc, net_session_id id, const DbToGame *msg)
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
	case -EPERM:
		*detail = "too many wrong passwords for this account; retry in a while";
		return RINGGATE__INTERNAL__DB_STATUS__DB_THROTTLED;
	case -EDQUOT:
		*detail = "no new account now (too many were created); retry later";
		return RINGGATE__INTERNAL__DB_STATUS__DB_THROTTLED;
	case -ENOTCONN:
		*detail = "the database is unreachable; retry later";
		return RINGGATE__INTERNAL__DB_STATUS__DB_UNAVAILABLE;
	case -ERANGE:
		*detail = "gold total would overflow";
		return RINGGATE__INTERNAL__DB_STATUS__DB_BAD_REQUEST;
	default:
		*detail = strerror(-result);
		return RINGGATE__INTERNAL__DB_STATUS__DB_ERROR;
	}
}

/* Send a reply with no body: an error, or a bodiless success. */
static void send_status(struct dbp_service *svc, net_session_id id, uint64_t request_id,
			int result)
{
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;

	reply.request_id = request_id;
	reply.status = status_of(result, &detail);
	reply.message = (char *)detail;
	send_msg(svc, id, &reply);
}

static void send_bad_request(struct dbp_service *svc, net_session_id id, uint64_t request_id,
			     const char *detail)
{
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;

	reply.request_id = request_id;
	reply.status = RINGGATE__INTERNAL__DB_STATUS__DB_BAD_REQUEST;
	reply.message = (char *)detail;
	send_msg(svc, id, &reply);
}

/* ---- completions (worker and writer threads) --------------------------- */

static void login_done(struct dbp_login *l)
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

static void write_done(struct dbp_write *w)
{
	struct write_call *call = RG_CONTAINER_OF(w, struct write_call, write);
	Ringgate__Internal__DbSaveReply save = RINGGATE__INTERNAL__DB_SAVE_REPLY__INIT;
	Ringgate__Internal__DbAddGoldReply gold = RINGGATE__INTERNAL__DB_ADD_GOLD_REPLY__INIT;
	Ringgate__Internal__DbNewEpochReply epoch = RINGGATE__INTERNAL__DB_NEW_EPOCH_REPLY__INIT;
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;

	reply.request_id = call->request_id;
	reply.status = status_of(w->result, &detail);
	reply.message = (char *)detail;
	if (w->result == 0 && w->kind == DBP_WRITE_ADD_GOLD) {
		gold.gold = w->gold;
		gold.duplicate = w->duplicate;
		if (w->duplicate)
			RG_INFO("add_gold op %llu for player %llu was applied before: "
				"answered with the current total, nothing added",
				(unsigned long long)w->add_gold.op_id,
				(unsigned long long)w->add_gold.player_id);
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD;
		reply.add_gold = &gold;
	} else if (w->result == 0 && w->kind == DBP_WRITE_NEW_EPOCH) {
		epoch.epoch = w->epoch;
		RG_INFO("op_id epoch %llu issued", (unsigned long long)w->epoch);
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_NEW_EPOCH;
		reply.new_epoch = &epoch;
	} else if (w->result == 0) {
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_SAVE;
		reply.save = &save;
	}
	send_msg(call->svc, call->link, &reply);
	free(call);
}

/* ---- requests (loop thread) -------------------------------------------- */

/* The client contract's names: 1..DBP_NAME_MAX of [A-Za-z0-9_-]. */
static bool valid_name(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > DBP_NAME_MAX)
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

/* The absolute rg_now_ms() deadline of a request, counting the time it
 * spent in transit (rg/peer_clock.h); 0 when it has none. */
static uint64_t deadline_of(struct link *link, const GameToDb *msg)
{
	return rg_peer_clock_deadline(&link->clock, msg->sent_ms, msg->deadline_ms, rg_now_ms());
}

static void handle_login(struct dbp_service *svc, struct link *link, const GameToDb *msg)
{
	Ringgate__Internal__DbLogin *req = msg->login;
	size_t password_len = req->password.len; /* bytes: NULs are its own */
	struct login_call *call;
	int err;

	if (!valid_name(req->name) || password_len == 0 || password_len > DBP_PASSWORD_MAX) {
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
	memcpy(call->login.password, req->password.data, password_len);
	call->login.password_len = password_len;
	call->login.no_create = req->no_create;
	call->login.deadline_ms = deadline_of(link, msg);
	call->login.done = login_done;
	err = dbp_auth_submit(svc->auth, &call->login);
	if (err) {
		sodium_memzero(call->login.password, sizeof call->login.password);
		free(call);
		send_status(svc, link->id, msg->request_id, err);
	}
out_wipe:
	/* The decoded copy sits in the arena, which is reused, not cleared. */
	sodium_memzero(req->password.data, password_len);
}

/* Queue a filled write; on refusal answer at once (the push-back). */
static void submit_write(struct dbp_service *svc, struct link *link, const GameToDb *msg,
			 struct write_call *call)
{
	int err;

	call->svc = svc;
	call->link = link->id;
	call->request_id = msg->request_id;
	call->write.deadline_ms = deadline_of(link, msg);
	call->write.done = write_done;
	err = dbp_writer_submit(svc->writer, &call->write);
	if (err) {
		free(call);
		send_status(svc, link->id, msg->request_id, err);
	}
}

/* A zeroed write call, or NULL after answering the request with -ENOMEM. */
static struct write_call *write_call_new(struct dbp_service *svc, struct link *link,
					 const GameToDb *msg)
{
	struct write_call *call = calloc(1, sizeof *call);

	if (!call)
		send_status(svc, link->id, msg->request_id, -ENOMEM);
	return call;
}

static void handle_save(struct dbp_service *svc, struct link *link, const GameToDb *msg)
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
	call->write.kind = DBP_WRITE_SAVE_POSITION;
	call->write.save.player_id = req->player_id;
	call->write.save.zone = req->zone;
	call->write.save.x = req->x;
	call->write.save.y = req->y;
	submit_write(svc, link, msg, call);
}

static void handle_add_gold(struct dbp_service *svc, struct link *link, const GameToDb *msg)
{
	const Ringgate__Internal__DbAddGold *req = msg->add_gold;
	struct write_call *call;

	if (req->player_id == 0 || req->amount == 0) {
		send_bad_request(svc, link->id, msg->request_id,
				 "add_gold needs a player_id and an amount > 0");
		return;
	}
	if (req->op_id > INT64_MAX) {
		/* Both databases store it as a signed 64-bit integer. */
		send_bad_request(svc, link->id, msg->request_id,
				 "add_gold op_id must fit in 63 bits");
		return;
	}
	call = write_call_new(svc, link, msg);
	if (!call)
		return;
	call->write.kind = DBP_WRITE_ADD_GOLD;
	call->write.add_gold.player_id = req->player_id;
	call->write.add_gold.amount = req->amount;
	call->write.add_gold.op_id = req->op_id;
	submit_write(svc, link, msg, call);
}

/* Issue an op_id epoch through the writer, so it is committed before the
 * reply (proto/internal.proto, DbNewEpoch). */
static void handle_new_epoch(struct dbp_service *svc, struct link *link, const GameToDb *msg)
{
	struct write_call *call = write_call_new(svc, link, msg);

	if (!call)
		return;
	call->write.kind = DBP_WRITE_NEW_EPOCH;
	submit_write(svc, link, msg, call);
}

/* One of gamesrv's requests on an up link (rg/link.h handles the
 * handshake and heartbeats). A negative return closes the link. */
static int on_message(struct rg_link *l, ProtobufCMessage *m, void *token)
{
	struct dbp_service *svc = rg_link_service_user(l);
	struct link *link = rg_link_user(l);
	const GameToDb *msg = (const GameToDb *)m;

	(void)token;
	if (rg_link_frame_has_nul(l)) {
		/* Read up to its NUL, "bob\0x" would be bob's account: gamesrv
		 * never sends one (its gateway refuses them), so this peer is
		 * broken or hostile. */
		RG_WARN("link %s: a GameToDb string holds a NUL: closing it",
			NET_SESSION_PEER(link->session));
		if (msg->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_LOGIN)
			sodium_memzero(msg->login->password.data, msg->login->password.len);
		return -EBADMSG;
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
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_NEW_EPOCH:
		handle_new_epoch(svc, link, msg);
		break;
	default:
		send_bad_request(svc, link->id, msg->request_id, "unknown request");
		break;
	}
	return 0;
}

/* ---- link callbacks (loop thread) -------------------------------------- */

static int on_connected(struct rg_link *l)
{
	struct link *link = rg_link_user(l);

	link->session = rg_link_session(l);
	link->id = net_session_get_id(link->session);
	rg_peer_clock_init(&link->clock);
	return 0;
}

static void on_down(struct rg_link *l, bool was_up, enum net_reason reason)
{
	if (was_up)
		RG_INFO("link %s: closed (%s)", NET_SESSION_PEER(rg_link_session(l)),
			net_reason_str(reason));
}

static const struct rg_link_ops link_ops = {
	.on_connected = on_connected,
	.on_message = on_message,
	.on_down = on_down,
};

/* ---- service ----------------------------------------------------------- */

int dbp_service_start(struct net_runtime *rt, const struct dbp_service_config *cfg,
		     struct dbp_service **out)
{
	struct dbp_service *svc = calloc(1, sizeof *svc);
	struct rg_link_config link = {
		.side = RG_LINK_ACCEPTOR,
		.role = "dbproxy",
		.peer_role = "gamesrv",
		.key = cfg->link_key,
		.rules = cfg->rules,
		.in = rg_link_game_to_db,
		.out = rg_link_db_to_game,
		.max_frame = MAX_FRAME,
		.decode_limit = DECODE_LIMIT,
		.user_size = sizeof(struct link),
		.ops = &link_ops,
		.user = svc,
		.max_links = cfg->max_links,
		.pending_max = cfg->pending_max,
		.pending_per_addr = cfg->pending_per_addr,
	};
	struct net_server_config server_cfg = {
		.host = cfg->host,
		.port = cfg->port,
	};
	int err;

	if (!svc)
		return -ENOMEM;
	svc->rt = rt;
	svc->writer = cfg->writer;
	svc->auth = cfg->auth;
	err = rg_link_service_init(&svc->link, &link);
	if (err)
		goto out_free;
	server_cfg.max_sessions = rg_link_server_max_sessions(&svc->link);
	rg_link_session_config(&svc->link, &server_cfg.session);
	err = net_server_start(rt, &server_cfg, &svc->server);
	if (err)
		goto out_free;
	*out = svc;
	return 0;
out_free:
	rg_link_service_fini(&svc->link);
	free(svc);
	return err;
}

uint16_t dbp_service_port(const struct dbp_service *svc)
{
	return net_server_port(svc->server);
}

void dbp_service_stop_accepting(struct dbp_service *svc)
{
	net_server_stop(svc->server, false);
}

void dbp_service_destroy(struct dbp_service *svc)
{
	/* NULL is fine: main calls this on every exit path. */
	if (!svc)
		return;
	rg_link_service_fini(&svc->link);
	free(svc);
}
