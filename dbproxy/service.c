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
 *
 * Leases (proto/internal.proto "leases", docs/storage.md): a login with an
 * owner takes the lease in the login's write; saves and add_golds carry
 * the fence; a renewal is split by writer lane (struct renew_call) so that
 * no transaction locks rows of another lane's players, and answered once
 * every part has committed.
 */
#include "service.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "internal.pb-c.h"
#include "rg/clock.h"
#include "rg/link.h"
#include "rg/log.h"
#include "rg/peer_clock.h"

/* A GameToDb is a few hundred bytes, except a DbRenewLeases: up to
 * RENEW_MAX ids and epochs, 10 bytes each at most (varints). */
#define MAX_FRAME (2u << 20)
/* Bytes one decode may allocate: a frame's strings plus the structs. */
#define DECODE_LIMIT (4 * MAX_FRAME)
/* Replies that fit here are packed without malloc. */
#define REPLY_STACK_BYTES 512
/* Players in one DbRenewLeases, at most (the proto's bound). */
#define RENEW_MAX 65536
/* A lease's length, at most: an hour (ms). */
#define LEASE_MS_MAX 3600000u
/* Shard ids (ISSUE14: gamesrv --shard). */
#define SHARD_MAX 65535u

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

/* A renewal on its way through the writer: one write per lane that has
 * some of its players (parts[i].write.renew covers ids[from..from+n) of
 * the request, regrouped by lane). The last part done answers. */
struct renew_call {
	struct dbp_service *svc;
	net_session_id link;
	uint64_t request_id;
	atomic_size_t pending;    /* parts not done, + 1 while submitting    */
	size_t n;
	uint64_t *ids, *epochs, *lost; /* n each, grouped by lane            */
	size_t nparts;
	struct renew_part {
		struct dbp_write write;
		struct renew_call *call;
	} parts[];
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
	case DBP_FENCED:
		*detail = "fenced: the player's lease has another epoch now; nothing changed";
		return RINGGATE__INTERNAL__DB_STATUS__DB_FENCED;
	case DBP_LEASE_HELD:
		*detail = "another live owner holds the player's lease";
		return RINGGATE__INTERNAL__DB_STATUS__DB_LEASE_HELD;
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

/* The wire form of a player row (strings point into *p). */
static void player_state(const struct dbp_player *p, Ringgate__Client__PlayerState *out)
{
	out->player_id = p->id;
	out->name = (char *)p->name;
	out->zone = p->zone;
	out->x = p->x;
	out->y = p->y;
	out->gold = p->gold;
}

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
	if (l->result == 0 || l->result == DBP_LEASE_HELD) {
		player_state(&l->player, &player);
		body.player = &player;
		body.created = l->created;
		if (l->result == 0 && l->lease.owner)
			body.lease_epoch = l->player.lease_epoch;
		if (l->result == DBP_LEASE_HELD)
			body.holder_shard = l->player.lease_shard;
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_LOGIN;
		reply.login = &body;
	}
	if (l->created)
		RG_INFO("account %s created (player %llu)", l->name,
			(unsigned long long)l->player.id);
	else if (l->result == DBP_LEASE_HELD)
		RG_INFO("login %s: the lease is held by shard %u", l->name,
			(unsigned)l->player.lease_shard);
	else
		RG_DEBUG("login %s: %s", l->name, l->result ? detail : "ok");
	send_msg(call->svc, call->link, &reply);
	free(call);
}

/* A fenced write is the trace of a shard that lost a player: say which. */
static void log_fenced(const struct dbp_write *w)
{
	if (w->kind == DBP_WRITE_ADD_GOLD)
		RG_INFO("add_gold for player %llu fenced: epoch %llu is not the player's",
			(unsigned long long)w->add_gold.player_id,
			(unsigned long long)w->add_gold.lease_epoch);
	else if (w->kind == DBP_WRITE_SAVE_POSITION)
		RG_INFO("save for player %llu fenced: epoch %llu is not the player's",
			(unsigned long long)w->save.player_id,
			(unsigned long long)w->save.lease_epoch);
	else if (w->kind == DBP_WRITE_ADOPT)
		RG_INFO("adopt of player %llu fenced: epoch %llu is not the player's",
			(unsigned long long)w->adopt.player_id,
			(unsigned long long)w->adopt.from_epoch);
}

static void write_done(struct dbp_write *w)
{
	struct write_call *call = RG_CONTAINER_OF(w, struct write_call, write);
	Ringgate__Internal__DbSaveReply save = RINGGATE__INTERNAL__DB_SAVE_REPLY__INIT;
	Ringgate__Internal__DbAddGoldReply gold = RINGGATE__INTERNAL__DB_ADD_GOLD_REPLY__INIT;
	Ringgate__Internal__DbNewEpochReply epoch = RINGGATE__INTERNAL__DB_NEW_EPOCH_REPLY__INIT;
	Ringgate__Internal__DbAdoptReply adopt = RINGGATE__INTERNAL__DB_ADOPT_REPLY__INIT;
	Ringgate__Client__PlayerState player = RINGGATE__CLIENT__PLAYER_STATE__INIT;
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
	} else if (w->result == 0 && w->kind == DBP_WRITE_ADOPT) {
		player_state(&w->player, &player);
		adopt.player = &player;
		adopt.lease_epoch = w->player.lease_epoch;
		RG_INFO("player %llu adopted by shard %u at epoch %llu",
			(unsigned long long)w->player.id, (unsigned)w->player.lease_shard,
			(unsigned long long)w->player.lease_epoch);
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADOPT;
		reply.adopt = &adopt;
	} else if (w->result == 0) {
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_SAVE;
		reply.save = &save;
	}
	if (w->result == DBP_FENCED)
		log_fenced(w);
	send_msg(call->svc, call->link, &reply);
	free(call);
}

static void renew_call_free(struct renew_call *call)
{
	free(call->ids);
	free(call->epochs);
	free(call->lost);
	free(call);
}

/* The last part is done: gather the lost players and answer. A part that
 * failed fails the renewal (the parts that committed only extended leases
 * their owner holds: harmless; gamesrv renews again next time). */
static void renew_answer(struct renew_call *call)
{
	Ringgate__Internal__DbRenewLeasesReply body = RINGGATE__INTERNAL__DB_RENEW_LEASES_REPLY__INIT;
	DbToGame reply = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	const char *detail;
	int result = 0;
	size_t nlost = 0;

	for (size_t i = 0; i < call->nparts && !result; i++) {
		const struct dbp_write *w = &call->parts[i].write;

		result = w->result;
		/* Each part's lost ids sit at the start of its range: close up. */
		memmove(call->lost + nlost, w->renew.lost, w->nlost * sizeof call->lost[0]);
		nlost += w->nlost;
	}
	reply.request_id = call->request_id;
	reply.status = status_of(result, &detail);
	reply.message = (char *)detail;
	if (result == 0) {
		body.n_lost = nlost;
		body.lost = call->lost;
		reply.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_RENEW;
		reply.renew = &body;
		if (nlost)
			RG_INFO("renewal: %zu of %zu leases lost", nlost, call->n);
	}
	send_msg(call->svc, call->link, &reply);
	renew_call_free(call);
}

/* One part of a renewal ended (any thread); the last one answers. */
static void renew_part_end(struct renew_call *call)
{
	if (atomic_fetch_sub(&call->pending, 1) == 1)
		renew_answer(call);
}

static void renew_part_done(struct dbp_write *w)
{
	renew_part_end(RG_CONTAINER_OF(w, struct renew_part, write)->call);
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

/* Why a lease request's owner, shard or length is unusable, or NULL. */
static const char *lease_error(uint64_t owner, uint32_t shard, uint32_t lease_ms)
{
	if (owner == 0 || owner > INT64_MAX)
		return "lease owner must be 1..2^63-1 (the gamesrv's epoch)";
	if (shard == 0 || shard > SHARD_MAX)
		return "lease shard must be 1..65535";
	if (lease_ms == 0 || lease_ms > LEASE_MS_MAX)
		return "lease_ms must be 1..3600000";
	return NULL;
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
	const char *bad_lease;
	int err;

	if (!valid_name(req->name) || password_len == 0 || password_len > DBP_PASSWORD_MAX) {
		send_bad_request(svc, link->id, msg->request_id,
				 "name must be 1..32 of [A-Za-z0-9_-], password 1..128 bytes");
		goto out_wipe;
	}
	bad_lease = req->owner ? lease_error(req->owner, req->shard, req->lease_ms) : NULL;
	if (bad_lease) {
		send_bad_request(svc, link->id, msg->request_id, bad_lease);
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
	call->login.lease = (struct dbp_lease){ .owner = req->owner, .shard = req->shard,
						.lease_ms = req->lease_ms };
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
	call->write.save.lease_epoch = req->lease_epoch;
	call->write.save.release = req->release;
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
	call->write.add_gold.lease_epoch = req->lease_epoch;
	submit_write(svc, link, msg, call);
}

static void handle_adopt(struct dbp_service *svc, struct link *link, const GameToDb *msg)
{
	const Ringgate__Internal__DbAdopt *req = msg->adopt;
	const char *bad = lease_error(req->owner, req->shard, req->lease_ms);
	struct write_call *call;

	if (!bad && (req->player_id == 0 || !isfinite(req->x) || !isfinite(req->y)))
		bad = "adopt needs a player_id and finite x, y";
	if (bad) {
		send_bad_request(svc, link->id, msg->request_id, bad);
		return;
	}
	call = write_call_new(svc, link, msg);
	if (!call)
		return;
	call->write.kind = DBP_WRITE_ADOPT;
	call->write.adopt.player_id = req->player_id;
	call->write.adopt.from_epoch = req->from_epoch;
	call->write.adopt.lease = (struct dbp_lease){ .owner = req->owner, .shard = req->shard,
						      .lease_ms = req->lease_ms };
	call->write.adopt.zone = req->zone;
	call->write.adopt.x = req->x;
	call->write.adopt.y = req->y;
	submit_write(svc, link, msg, call);
}

/* A renewal regrouped by lane: each lane's players in one part. NULL when
 * out of memory. */
static struct renew_call *renew_call_new(struct dbp_service *svc,
					 const Ringgate__Internal__DbRenewLeases *req)
{
	size_t nlanes = dbp_writer_lanes(svc->writer), n = req->n_player_ids, nparts = 0;
	size_t *count = calloc(nlanes, sizeof *count);
	struct renew_call *call = NULL;

	if (!count)
		return NULL;
	for (size_t i = 0; i < n; i++)
		count[dbp_writer_lane_of_player(svc->writer, req->player_ids[i])]++;
	for (size_t k = 0; k < nlanes; k++)
		nparts += count[k] > 0;
	call = calloc(1, sizeof *call + nparts * sizeof call->parts[0]);
	if (!call)
		goto out;
	/* (An empty renewal is answered at once, with nothing lost.) */
	call->ids = malloc((n ? n : 1) * sizeof *call->ids);
	call->epochs = malloc((n ? n : 1) * sizeof *call->epochs);
	call->lost = malloc((n ? n : 1) * sizeof *call->lost);
	if (!call->ids || !call->epochs || !call->lost) {
		renew_call_free(call);
		call = NULL;
		goto out;
	}
	call->n = n;
	call->nparts = nparts;
	/* Each lane's range, in lane order; count[k] becomes its next slot. */
	for (size_t k = 0, from = 0, part = 0; k < nlanes; k++) {
		size_t c = count[k];

		if (!c)
			continue;
		call->parts[part].write.renew.player_ids = call->ids + from;
		call->parts[part].write.renew.epochs = call->epochs + from;
		call->parts[part].write.renew.lost = call->lost + from;
		call->parts[part].write.renew.n = c;
		count[k] = from;
		from += c;
		part++;
	}
	for (size_t i = 0; i < n; i++) {
		size_t slot = count[dbp_writer_lane_of_player(svc->writer, req->player_ids[i])]++;

		call->ids[slot] = req->player_ids[i];
		call->epochs[slot] = req->epochs[i];
	}
out:
	free(count);
	return call;
}

static void handle_renew(struct dbp_service *svc, struct link *link, const GameToDb *msg)
{
	const Ringgate__Internal__DbRenewLeases *req = msg->renew;
	const char *bad = lease_error(req->owner, 1, req->lease_ms);
	uint64_t deadline = deadline_of(link, msg);
	struct renew_call *call;

	if (!bad && req->n_player_ids != req->n_epochs)
		bad = "renew needs as many epochs as player_ids";
	if (!bad && req->n_player_ids > RENEW_MAX)
		bad = "renew takes at most 65536 players";
	if (bad) {
		send_bad_request(svc, link->id, msg->request_id, bad);
		return;
	}
	call = renew_call_new(svc, req);
	if (!call) {
		send_status(svc, link->id, msg->request_id, -ENOMEM);
		return;
	}
	call->svc = svc;
	call->link = link->id;
	call->request_id = msg->request_id;
	/* One count per part, and one for this loop, so that no part's end
	 * answers (and frees the call) while parts are still being queued. */
	atomic_init(&call->pending, call->nparts + 1);
	for (size_t i = 0; i < call->nparts; i++) {
		struct renew_part *part = &call->parts[i];
		int err;

		part->call = call;
		part->write.kind = DBP_WRITE_RENEW_LEASES;
		part->write.renew.owner = req->owner;
		part->write.renew.lease_ms = req->lease_ms;
		part->write.deadline_ms = deadline;
		part->write.done = renew_part_done;
		err = dbp_writer_submit(svc->writer, &part->write);
		if (err) {
			/* Refused: the renewal fails with it. */
			part->write.result = err;
			renew_part_end(call);
		}
	}
	renew_part_end(call);
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
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_RENEW:
		handle_renew(svc, link, msg);
		break;
	case RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADOPT:
		handle_adopt(svc, link, msg);
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
