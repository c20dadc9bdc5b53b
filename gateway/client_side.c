/*
 * client side: the sessions of game clients, and the per-loop state that
 * owns them.
 *
 * A client session's life:
 *
 *   connected --(frame)--> decode --> forward to a shard, request pending
 *       |                                 |
 *       |          reply / TIMEOUT / SERVICE_UNAVAILABLE ends each request
 *       v
 *   closing (kicked: Kicked sent, flushing) --> disconnected
 *
 * Invariants (all on the client's loop thread):
 * - A connected client is in its loop's table (by session id) from
 *   on_connected to on_disconnected, and in the loop's idle list, ordered by
 *   the time its last frame arrived, until it starts closing.
 * - Each pending request is one rg_calls entry of the loop plus one node of
 *   its client's pending list; at most max_inflight per client. When the
 *   client goes, its pending entries stay in the call table (so the table
 *   alone decides when they end) but forget the client.
 * - Every request gets exactly one answer: the reply, Error TIMEOUT, or
 *   Error SERVICE_UNAVAILABLE; replies that arrive after that are dropped.
 * - Shards (docs/protocol.md section 11): a client plays on at most one
 *   shard (client.shard: set by a LoginReply / ResumeReply, cleared by a
 *   LogoutReply or that shard's link going down, moved by a Handoff, and
 *   back to what it was by a failed one: none for a login's); each
 *   pending request waits on one shard (pending.shard: moved by a Redirect
 *   or a Handoff, back to the source by a failed one). A handoff in flight
 *   is a struct gw_handoff in the loop's list until its AdoptResult, a link
 *   going down or its expiry; it outlives its client, so the source shard
 *   always hears how it ended when it can.
 * - Malformed protobuf is answered with Error BAD_REQUEST and a disconnect:
 *   a peer that cannot frame its messages cannot be trusted to recover.
 * - Message rate: each client has a token bucket (msg_rate per second, up to
 *   msg_burst). A message with no token is answered Error RATE_LIMITED and
 *   not forwarded; a client refused more than flood_refusals times without
 *   one clean second in between is flooding: Kicked RATE_LIMITED, logged.
 * - Logins pass the per-address login guard (login_guard.c) before they are
 *   forwarded, and their replies are shown to it.
 *
 * Limits enforced by libnet are set from the config here too (frame size,
 * partial-frame deadline, send queue, per-address count and rate); every
 * disconnect libnet makes for a limit is logged in on_disconnected with the
 * client's address, and accepts refused per address are logged (as counts:
 * libnet closes them before any session exists) by loop 0's tick.
 *
 * The idle timeout is done here rather than with libnet's idle_timeout_ms
 * for two reasons: a client must be told (Kicked IDLE_TIMEOUT), which
 * on_disconnected is too late for, and only complete frames count as
 * activity, so a client trickling bytes cannot hold a session forever.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <rg/calls.h>
#include <rg/clock.h>
#include <rg/container_of.h>
#include <rg/log.h>

#include "gateway.h"

/* How often a loop expires requests and looks for idle clients. */
#define TICK_MS 100

/* Our own ServerMessages (errors, kicks) are small; texts are fixed. */
#define SMALL_FRAME_MAX 512

/* The user area of a client session. */
struct gw_client {
	struct net_session *session;
	const struct gw_transport *tp;  /* how its messages travel          */
	struct gw_loop *gl;
	uint64_t id;                    /* its wire session id                 */
	struct gw_client *hash_next;
	struct gw_link idle;            /* in gl->idle unless closing          */
	uint64_t last_heard_ms;
	struct gw_pending *pending;     /* requests awaiting an answer         */
	unsigned inflight;
	uint32_t shard;                 /* the shard it plays on; 0: none      */
	struct gw_handoff *handoff;     /* its move between shards in flight   */
	uint32_t seen;                  /* bit k: shard k has seen it since its
					 * link came up: tell it "gone"        */
	bool closing;
	uint64_t tokens_milli;          /* rate bucket, 1000 per message       */
	uint64_t refilled_ms;           /* when tokens_milli was last topped up */
	uint64_t refused_ms;            /* the last RATE_LIMITED answer        */
	unsigned refused_streak;        /* answers since a clean second        */
	char addr[GW_ADDR_MAX];         /* the peer's IP, the login guard's key */
};

/* One forwarded request awaiting its answer. */
struct gw_pending {
	struct gw_client *client;       /* NULL once the client has gone       */
	struct gw_pending *next;
	uint64_t call_id;
	uint64_t sent_ns;               /* rg_now_ns() when forwarded          */
	unsigned kind;                  /* ClientMessage body case             */
	uint32_t seq;
	uint32_t shard;                 /* the shard it waits on               */
	uint64_t deadline_ms;           /* rg_now_ms() when it times out       */
};

/* A handoff the gateway relays (docs/protocol.md section 11), in its
 * loop's list from the source's Handoff until the target's AdoptResult,
 * either link going down, or expires_ms (no word from the target: the
 * source gives up on its own then). Outlives its client: the source must
 * still hear how it ended. */
struct gw_handoff {
	struct gw_link node;            /* in gl->handoffs                     */
	struct gw_client *client;       /* NULL once the client has gone       */
	uint64_t session;
	uint64_t player_id;
	uint64_t request_id;            /* the call the move answers (0: none) */
	uint64_t expires_ms;            /* rg_now_ms() clock                   */
	uint32_t source, target;
	uint32_t shard_before;          /* the client's shard before it (0: the
					 * handoff of a login, not logged in) */
};

/* What a reply hands to the call table's completion: the shared frame
 * and this client's own fields after it. */
struct reply_frame {
	struct net_buf *frame;
	const uint8_t *suffix;
	size_t suffix_len;
};

/* ---- lists and the session table -------------------------------------- */

static void link_init(struct gw_link *head)
{
	head->prev = head->next = head;
}

static bool link_linked(const struct gw_link *node)
{
	return node->next != NULL && node->next != node;
}

static void link_remove(struct gw_link *node)
{
	node->prev->next = node->next;
	node->next->prev = node->prev;
	node->prev = node->next = NULL;
}

static void link_append(struct gw_link *head, struct gw_link *node)
{
	node->prev = head->prev;
	node->next = head;
	head->prev->next = node;
	head->prev = node;
}

static size_t bucket_of(const struct gw_loop *gl, uint64_t id)
{
	/* Fibonacci hashing: ids differ mostly in their low count bits; the
	 * multiply spreads them over the index bits. */
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & gl->bucket_mask;
}

static void table_insert(struct gw_loop *gl, struct gw_client *c)
{
	size_t b = bucket_of(gl, c->id);

	c->hash_next = gl->buckets[b];
	gl->buckets[b] = c;
}

static void table_remove(struct gw_loop *gl, struct gw_client *c)
{
	struct gw_client **at = &gl->buckets[bucket_of(gl, c->id)];

	while (*at && *at != c)
		at = &(*at)->hash_next;
	if (*at)
		*at = c->hash_next;
}

static struct gw_client *table_find(struct gw_loop *gl, uint64_t id)
{
	struct gw_client *c = gl->buckets[bucket_of(gl, id)];

	while (c && c->id != id)
		c = c->hash_next;
	return c;
}

/* ---- sending to a client ---------------------------------------------- */

static void client_send(struct gw_client *c, const Ringgate__Client__ServerMessage *msg)
{
	uint8_t buf[SMALL_FRAME_MAX];
	size_t len = ringgate__client__server_message__get_packed_size(msg);
	int err;

	if (len > sizeof(buf)) {
		RG_ERROR("internal message of %zu bytes does not fit; not sent", len);
		return;
	}
	ringgate__client__server_message__pack(msg, buf);
	err = c->tp->send(c->session, buf, len);
	if (err < 0)
		RG_DEBUG("send to client %s failed: %s", NET_SESSION_PEER(c->session),
			 net_strerror(err));
}

/* Answer request seq (0: a push) with an Error. */
static void client_error(struct gw_client *c, uint32_t seq,
			 Ringgate__Client__ErrorCode code, const char *text)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Error error = RINGGATE__CLIENT__ERROR__INIT;

	error.code = code;
	error.message = (char *)text;
	msg.seq = seq;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR;
	msg.error = &error;
	client_send(c, &msg);
}

/* Stop hearing the client: it leaves the idle list and its frames are
 * ignored; the disconnect flushes what was queued for it. */
static void client_close(struct gw_client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (link_linked(&c->idle))
		link_remove(&c->idle);
	c->tp->close(c->session);
}

/* Tell the client why (Kicked push), then close it. */
static void client_kick(struct gw_client *c, Ringgate__Client__ErrorCode code,
			const char *text)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Kicked kicked = RINGGATE__CLIENT__KICKED__INIT;

	if (c->closing)
		return;
	c->gl->counters.kicked++;
	kicked.code = code;
	kicked.message = (char *)text;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED;
	msg.kicked = &kicked;
	client_send(c, &msg);
	client_close(c);
}

/* ---- requests ---------------------------------------------------------- */

static struct gw_pending *pending_find(struct gw_client *c, uint32_t seq)
{
	struct gw_pending *p = c->pending;

	while (p && p->seq != seq)
		p = p->next;
	return p;
}

/* The client's pending request with this call id (the reply's
 * request_id), or NULL: ended already, or another client's. */
static struct gw_pending *pending_find_call(struct gw_client *c, uint64_t call_id)
{
	struct gw_pending *p = c->pending;

	while (p && p->call_id != call_id)
		p = p->next;
	return p;
}

static void pending_unlink(struct gw_client *c, struct gw_pending *p)
{
	struct gw_pending **at = &c->pending;

	while (*at != p)
		at = &(*at)->next;
	*at = p->next;
	c->inflight--;
}

/* The call table ends a request: reply arrived, deadline passed, link down,
 * or the table is being destroyed. Runs on the loop thread. */
static void pending_done(void *ctx, int status, const void *reply)
{
	struct gw_pending *p = ctx;
	struct gw_client *c = p->client;

	if (c && status == 0 && p->kind == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN) {
		const struct reply_frame *r = reply;
		size_t len;
		const uint8_t *bytes = net_buf_body(r->frame, &len);

		gw_guard_login_replied(c->gl->gw, c->addr, bytes, len);
	}
	if (c) {
		struct gw_counters *n = &c->gl->counters;

		pending_unlink(c, p);
		if (status == 0) {
			const struct reply_frame *r = reply;
			int err = c->tp->send_shared(c->session, r->frame, r->suffix, r->suffix_len);

			if (err < 0)
				RG_DEBUG("reply to %s not sent: %s",
					 NET_SESSION_PEER(c->session), net_strerror(err));
			n->replied++;
			gw_metrics_request_done(c->gl->gw, p->kind, rg_now_ns() - p->sent_ns);
		} else if (status == -ETIMEDOUT) {
			n->timed_out++;
			client_error(c, p->seq, RINGGATE__CLIENT__ERROR_CODE__TIMEOUT,
				     "the game server did not answer in time");
		}
	}
	free(p);
}

/* End c's request p at once with Error SERVICE_UNAVAILABLE (why), in place
 * of the shard's answer. */
static void pending_unavailable(struct gw_client *c, struct gw_pending *p, const char *why)
{
	rg_calls_cancel(c->gl->calls, p->call_id); /* pending_done will not run */
	pending_unlink(c, p);
	c->gl->counters.unavailable++;
	client_error(c, p->seq, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE, why);
	free(p);
}

static const char *error_code_name(Ringgate__Client__ErrorCode code)
{
	const ProtobufCEnumValue *v =
		protobuf_c_enum_descriptor_get_value(&ringgate__client__error_code__descriptor, code);

	return v ? v->name : "?";
}

/* Answer a request at once, without asking gamesrv, and count why. */
static void client_refuse(struct gw_client *c, uint32_t seq,
			  Ringgate__Client__ErrorCode code, const char *text)
{
	if (code == RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE)
		c->gl->counters.unavailable++;
	else
		c->gl->counters.refused++;
	RG_DEBUG("client %s seq %u: Error %s: %s", NET_SESSION_PEER(c->session), seq,
		 error_code_name(code), text);
	client_error(c, seq, code, text);
}

/*
 * Take one message's token from the client's bucket. False when the client
 * is over msg_rate: the message must be refused. A client that keeps a
 * full second clean of refusals starts a new streak.
 */
static bool rate_admit(struct gw_client *c, uint64_t now)
{
	const struct gw_config *cfg = &c->gl->gw->cfg;
	uint64_t cap = (uint64_t)cfg->msg_burst * 1000;

	if (cfg->msg_rate == 0)
		return true;
	c->tokens_milli += (now - c->refilled_ms) * (uint64_t)cfg->msg_rate;
	if (c->tokens_milli > cap)
		c->tokens_milli = cap;
	c->refilled_ms = now;
	if (c->tokens_milli >= 1000) {
		c->tokens_milli -= 1000;
		if (c->refused_streak && now - c->refused_ms >= 1000)
			c->refused_streak = 0;
		return true;
	}
	c->refused_streak++;
	c->refused_ms = now;
	return false;
}

/* msg came over the client's rate: answer RATE_LIMITED, or cut off a
 * client that keeps flooding. */
static void client_over_rate(struct gw_client *c, const Ringgate__Client__ClientMessage *msg)
{
	const struct gw_config *cfg = &c->gl->gw->cfg;

	if (c->refused_streak > (unsigned)cfg->flood_refusals) {
		RG_WARN("client %s floods: over --msg-rate %ld/s (burst %ld) for %u messages; "
			"disconnecting", NET_SESSION_PEER(c->session), cfg->msg_rate,
			cfg->msg_burst, c->refused_streak);
		c->gl->counters.flooders++;
		client_kick(c, RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED,
			    "too many messages per second; disconnected");
		return;
	}
	if (c->refused_streak == 1)
		RG_INFO("client %s is over --msg-rate %ld/s; answering RATE_LIMITED",
			NET_SESSION_PEER(c->session), cfg->msg_rate);
	client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED,
		      "too many messages per second");
}

bool gw_client_admit_control(struct net_session *s)
{
	struct gw_client *c = net_session_user(s);
	const struct gw_config *cfg = &c->gl->gw->cfg;

	if (c->closing)
		return false;
	if (rate_admit(c, net_loop_now(c->gl->net)))
		return true;
	if (c->refused_streak > (unsigned)cfg->flood_refusals) {
		RG_WARN("client %s floods control frames: over --msg-rate %ld/s (burst %ld) for "
			"%u frames; disconnecting", NET_SESSION_PEER(s), cfg->msg_rate,
			cfg->msg_burst, c->refused_streak);
		c->gl->counters.flooders++;
		client_kick(c, RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED,
			    "too many messages per second; disconnected");
	}
	return false;
}

/*
 * The client's bytes hold a string field with a NUL (rg_pb_find_nul). A
 * decoded string would read as its prefix and be forwarded cut short
 * ("bob\0x" logging in as "bob"), so it is refused whole, with the code of
 * the rule it breaks. Passwords are bytes and may hold NULs.
 */
static void client_refuse_nul(struct gw_client *c, const Ringgate__Client__ClientMessage *msg)
{
	if (msg->body_case == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN)
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__INVALID_NAME,
			      "a name may not contain NUL");
	else if (msg->body_case == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_CHAT)
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__INVALID_CHAT,
			      "chat may not contain NUL (or any control character)");
	else
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			      "a string field holds a NUL");
}

/* ---- which shard -------------------------------------------------------- */

/* The first shard whose link this loop sees up, trying them in order from
 * index start (0-based, wrapping); 0 when none is up. */
static uint32_t first_up_from(const struct gw_loop *gl, uint32_t start)
{
	uint32_t m = gl->gw->shard_count;

	for (uint32_t i = 0; i < m; i++) {
		uint32_t shard = (start + i) % m + 1;

		if (gl->link_up[shard])
			return shard;
	}
	return 0;
}

/* FNV-1a (32 bits) of a name: where its logins start looking for a shard,
 * so that every gateway tries the same shard first for the same name. */
static uint32_t name_hash(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h;
}

/* The shard of c's newest pending login or resume (0: none), so that what
 * a client sends right behind its login follows it. */
static uint32_t pending_login_shard(const struct gw_client *c)
{
	for (const struct gw_pending *p = c->pending; p; p = p->next)
		if (p->kind == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN ||
		    p->kind == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_RESUME)
			return p->shard;
	return 0;
}

/* Resume tokens of version 2 name their shard: byte 0 is 2, bytes 1..2
 * the shard id, little-endian (docs/protocol.md section 11). */
#define RESUME_TOKEN_SHARDED 2

/*
 * Where msg from c goes (docs/protocol.md section 11): a shard id whose
 * link is up, or 0 with the Error to answer in *code and *why.
 * - LoginRequest: ALREADY_LOGGED_IN while c plays on a shard that is up;
 *   else the first shard up from FNV-1a(name) % M (a shard that does not
 *   hold the account's lease redirects it to the one that does).
 * - ResumeRequest: the shard its token names (version 2); a token of
 *   another version goes to the first shard up, which answers
 *   RESUME_EXPIRED.
 * - Anything else: c's shard, else that of its pending login, else the
 *   first shard up (which answers NOT_LOGGED_IN).
 */
static uint32_t route_request(const struct gw_client *c, const Ringgate__Client__ClientMessage *msg,
			      Ringgate__Client__ErrorCode *code /* OUT */,
			      const char **why /* OUT */)
{
	const struct gw_loop *gl = c->gl;
	uint32_t m = gl->gw->shard_count, shard = 0;

	*code = RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE;
	*why = "the game server is unavailable";
	switch (msg->body_case) {
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN:
		if (c->shard && gl->link_up[c->shard]) {
			*code = RINGGATE__CLIENT__ERROR_CODE__ALREADY_LOGGED_IN;
			*why = "already logged in on this connection";
			return 0;
		}
		return first_up_from(gl, name_hash(msg->login->name) % m);
	case RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_RESUME: {
		const ProtobufCBinaryData *token = &msg->resume->token;

		if (token->len < 3 || token->data[0] != RESUME_TOKEN_SHARDED)
			return first_up_from(gl, 0);
		shard = (uint32_t)token->data[1] | (uint32_t)token->data[2] << 8;
		if (shard == 0 || shard > m) {
			*code = RINGGATE__CLIENT__ERROR_CODE__RESUME_EXPIRED;
			*why = "the resume token names no game server of this gateway";
			return 0;
		}
		if (!gl->link_up[shard]) {
			*why = "the game server of this session is unavailable";
			return 0;
		}
		return shard;
	}
	default:
		shard = c->shard ? c->shard : pending_login_shard(c);
		return shard && gl->link_up[shard] ? shard : first_up_from(gl, 0);
	}
}

/* Send request (its session, request_id, deadline_ms and body set) to
 * shard, stamped with the send time. Returns 0 or a negative code (the
 * link is down). */
static int shard_request(struct gateway *gw, uint32_t shard,
			 Ringgate__Internal__ClientRequest *request)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	int err;

	request->sent_ms = rg_now_ms();
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST;
	out.request = request;
	err = gw_shard_send(gw, shard, &out);
	if (err == 0)
		gw_metrics_request_sent(gw, shard);
	return err;
}

/* shard_request for client c, which the shard then knows. */
static int client_to_shard(struct gw_client *c, uint32_t shard,
			   Ringgate__Internal__ClientRequest *request)
{
	int err;

	request->session = c->id;
	err = shard_request(c->gl->gw, shard, request);
	if (err == 0)
		c->seen |= UINT32_C(1) << shard;
	return err;
}

/* What is left of p's deadline for a request sent on its behalf now; the
 * full --request-timeout-ms when nothing is (p has ended, or ends at this
 * tick): work that must be done whether or not the client still waits. */
static uint32_t deadline_left(const struct gw_loop *gl, const struct gw_pending *p)
{
	uint64_t now = rg_now_ms();

	if (p && p->deadline_ms > now)
		return (uint32_t)(p->deadline_ms - now);
	return (uint32_t)gl->gw->cfg.request_timeout_ms;
}

/* Forward msg to its shard and remember it as pending; or answer at once. */
static void client_request(struct gw_client *c, Ringgate__Client__ClientMessage *msg)
{
	struct gw_loop *gl = c->gl;
	struct gateway *gw = gl->gw;
	Ringgate__Internal__ClientRequest request = RINGGATE__INTERNAL__CLIENT_REQUEST__INIT;
	Ringgate__Client__ErrorCode code;
	const char *why;
	struct gw_pending *p;
	uint32_t shard;

	if (msg->seq == 0) {
		client_refuse(c, 0, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			     "a request needs a non-zero seq");
		return;
	}
	if (msg->body_case == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY__NOT_SET) {
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			     "ClientMessage has no body");
		return;
	}
	if (pending_find(c, msg->seq)) {
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			     "a request with this seq is still pending");
		return;
	}
	if (c->inflight >= (unsigned)gw->cfg.max_inflight) {
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__RATE_LIMITED,
			     "too many requests in flight");
		return;
	}
	shard = route_request(c, msg, &code, &why);
	if (!shard) {
		client_refuse(c, msg->seq, code, why);
		return;
	}
	if (msg->body_case == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN) {
		bool no_create = false;
		char text[96];

		if (gw_guard_login(gw, c->addr, &no_create, &code, text, sizeof(text)) < 0) {
			client_refuse(c, msg->seq, code, text);
			return;
		}
		request.no_create = no_create;
	}

	p = calloc(1, sizeof(*p));
	if (p) {
		p->deadline_ms = rg_now_ms() + (uint64_t)gw->cfg.request_timeout_ms;
		p->call_id = rg_calls_add(gl->calls, p->deadline_ms, pending_done, p);
	}
	if (!p || p->call_id == 0) {
		free(p);
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__INTERNAL,
			     "gateway out of memory");
		return;
	}
	/* The shard's reply names the call id, not the client's seq: a seq may
	 * be reused once its request has ended (with TIMEOUT, say), and the
	 * old request's late reply must not answer the new one. */
	request.request_id = p->call_id;
	request.deadline_ms = (uint32_t)gw->cfg.request_timeout_ms;
	request.message = msg;
	if (client_to_shard(c, shard, &request) < 0) {
		rg_calls_cancel(gl->calls, p->call_id); /* pending_done will not run */
		free(p);
		client_refuse(c, msg->seq, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			     "the game server is unavailable");
		return;
	}
	p->client = c;
	p->seq = msg->seq;
	p->kind = (unsigned)msg->body_case;
	p->shard = shard;
	p->sent_ns = rg_now_ns();
	p->next = c->pending;
	c->pending = p;
	c->inflight++;
	gl->counters.forwarded++;
}

/* ---- session callbacks ------------------------------------------------- */

/* A new wire session id of loop gl (see gateway.h). The count has 40 bits:
 * a loop that accepted a thousand clients a second would wrap it after 34
 * years, and then starts again from 1. */
static uint64_t session_id_make(struct gw_loop *gl)
{
	if (++gl->sessions_made > GW_SESSION_COUNT_MASK)
		gl->sessions_made = 1;
	return (uint64_t)gl->gw->cfg.gateway_id << GW_SESSION_GATEWAY_SHIFT |
	       (uint64_t)net_loop_index(gl->net) << GW_SESSION_LOOP_SHIFT | gl->sessions_made;
}

void gw_client_open(struct net_session *s, const struct gw_transport *tp)
{
	struct gateway *gw = net_session_service_user(s);
	struct gw_client *c = net_session_user(s);
	unsigned count = atomic_fetch_add(&gw->client_count, 1) + 1;

	c->session = s;
	c->tp = tp;
	c->gl = &gw->loops[net_loop_index(net_session_loop(s))];
	c->id = session_id_make(c->gl);
	c->last_heard_ms = net_loop_now(c->gl->net);
	c->refilled_ms = c->last_heard_ms;
	c->tokens_milli = (uint64_t)gw->cfg.msg_burst * 1000;
	net_session_peer_host(s, c->addr, sizeof(c->addr));
	table_insert(c->gl, c);
	link_append(&c->gl->idle, &c->idle);
	RG_DEBUG("client %s connected (session %#llx)", NET_SESSION_PEER(s),
		 (unsigned long long)c->id);

	if (atomic_load(&gw->shutting_down))
		client_kick(c, RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
			    "the gateway is shutting down");
	else if (count > (unsigned)gw->cfg.max_clients) {
		RG_WARN("client %s: over --max-clients %ld; kicking (SERVER_FULL)",
			NET_SESSION_PEER(s), gw->cfg.max_clients);
		client_kick(c, RINGGATE__CLIENT__ERROR_CODE__SERVER_FULL,
			    "the gateway is full; try again later");
	}
}

void gw_client_message(struct net_session *s, const uint8_t *body, size_t len)
{
	struct gw_client *c = net_session_user(s);
	Ringgate__Client__ClientMessage *msg;

	if (c->closing)
		return;
	c->last_heard_ms = net_loop_now(c->gl->net);
	link_remove(&c->idle);
	link_append(&c->gl->idle, &c->idle);

	msg = ringgate__client__client_message__unpack(&c->gl->arena.allocator, len, body);
	if (!msg) {
		RG_INFO("client %s sent a malformed message; disconnecting",
			NET_SESSION_PEER(s));
		client_refuse(c, 0, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
			      "malformed ClientMessage; closing");
		client_close(c);
	} else if (!rate_admit(c, c->last_heard_ms)) {
		client_over_rate(c, msg);
	} else if (msg->seq != 0 &&
		   rg_pb_find_nul(&ringgate__client__client_message__descriptor, body, len)) {
		client_refuse_nul(c, msg);
	} else {
		/* Forwarded re-encoded: only fields of the contract go on. */
		rg_pb_drop_unknown(&msg->base);
		client_request(c, msg);
	}
	rg_pb_arena_reset(&c->gl->arena);
}

/*
 * Say why a client went. Disconnects the gateway asked for (LOCAL) were
 * logged where it decided them, and ordinary ends are DEBUG; a limit that
 * libnet enforced is the only trace of a hostile or broken client.
 */
static void log_disconnect(struct net_session *s, enum net_reason reason)
{
	const struct gw_config *cfg = &((struct gateway *)net_session_service_user(s))->cfg;
	const char *peer = NET_SESSION_PEER(s), *name = net_reason_str(reason);

	switch (reason) {
	case NET_REASON_FRAME_TOO_LARGE:
		RG_WARN("client %s disconnected: %s (a frame over --max-frame %ld bytes)",
			peer, name, cfg->max_frame);
		break;
	case NET_REASON_BAD_FRAME:
		RG_WARN("client %s disconnected: %s (malformed length prefix)", peer, name);
		break;
	case NET_REASON_FRAME_TIMEOUT:
		RG_WARN("client %s disconnected: %s (a partial frame not completed within "
			"--frame-timeout-ms %ld)", peer, name, cfg->frame_timeout_ms);
		break;
	case NET_REASON_SEND_OVERFLOW:
		RG_WARN("client %s disconnected: %s (it does not read; over --send-queue-max "
			"%ld bytes queued for it)", peer, name, cfg->send_queue_max);
		break;
	case NET_REASON_RECV_OVERFLOW:
	case NET_REASON_APP_ERROR:
		RG_WARN("client %s disconnected: %s", peer, name);
		break;
	case NET_REASON_IO_ERROR:
		RG_INFO("client %s disconnected: %s (%s)", peer, name,
			net_strerror(net_session_error(s)));
		break;
	default:
		RG_DEBUG("client %s disconnected: %s", peer, name);
		break;
	}
}

/* Send ClientGone{session} to every shard of the mask (bit k: shard k)
 * whose link is up: a login, a redirect or an adopt may be pending on
 * any of them. */
static void tell_gone(struct gw_loop *gl, uint64_t session, uint32_t shards)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;

	gone.session = session;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
	out.gone = &gone;
	for (uint32_t shard = 1; shard <= gl->gw->shard_count; shard++)
		if ((shards & UINT32_C(1) << shard) && gl->link_up[shard] &&
		    gw_shard_send(gl->gw, shard, &out) < 0)
			RG_DEBUG("could not tell shard %u that %#llx went", shard,
				 (unsigned long long)session);
}

void gw_client_gone(struct net_session *s, enum net_reason reason)
{
	struct gateway *gw = net_session_service_user(s);
	struct gw_client *c = net_session_user(s);
	struct gw_loop *gl = c->gl;

	table_remove(gl, c);
	if (link_linked(&c->idle))
		link_remove(&c->idle);
	for (struct gw_pending *p = c->pending; p; p = p->next) {
		/* Its answer will find no client to show the guard. */
		if (p->kind == RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN)
			gw_guard_login_abandoned(gw, c->addr);
		p->client = NULL;
	}
	c->pending = NULL;
	if (c->handoff)
		c->handoff->client = NULL; /* the source must still hear the end */

	tell_gone(gl, c->id, c->seen);
	atomic_fetch_sub(&gw->client_count, 1);
	log_disconnect(s, reason);
}

size_t gw_client_area_size(void)
{
	/* Rounded so that a transport's area after it is aligned for anything. */
	return (sizeof(struct gw_client) + 15) & ~(size_t)15;
}

/* ---- the TCP transport: one varint-delimited frame per message ---------- */

static int tcp_send(struct net_session *s, const uint8_t *msg, size_t len)
{
	return net_session_send_frame(s, msg, len);
}

static int tcp_send_shared(struct net_session *s, struct net_buf *msg, const uint8_t *suffix,
			   size_t suffix_len)
{
	return net_session_send_buf_suffixed(s, msg, suffix, suffix_len);
}

static void tcp_close(struct net_session *s)
{
	net_session_disconnect(s, NET_REASON_LOCAL);
}

static const struct gw_transport tcp_transport = {
	.send = tcp_send,
	.send_shared = tcp_send_shared,
	.close = tcp_close,
};

static void tcp_on_connected(struct net_session *s)
{
	gw_client_open(s, &tcp_transport);
}

static int tcp_on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	gw_client_message(s, body, len);
	return 0;
}

static const struct net_session_ops client_ops = {
	.on_connected = tcp_on_connected,
	.on_frame = tcp_on_frame,
	.on_disconnected = gw_client_gone,
};

void gw_clients_config(struct gateway *gw, struct net_server_config *out)
{
	gw_clients_limits(gw, out);
	out->host = gw->cfg.host;
	out->port = (uint16_t)gw->cfg.port;
	out->session.ops = &client_ops;
	out->session.user_size = sizeof(struct gw_client);
}

void gw_clients_limits(struct gateway *gw, struct net_server_config *out)
{
	*out = (struct net_server_config){
		/* A hard cap above max_clients: up to it, an extra client is
		 * told SERVER_FULL; past it, libnet closes it at accept. */
		.max_sessions = (unsigned)gw->cfg.max_clients + 64,
		.max_sessions_per_addr = (unsigned)gw->cfg.max_clients_per_addr,
		.accepts_per_addr_per_sec = (unsigned)gw->cfg.connects_per_addr_per_sec,
		.session = {
			.service_user = gw,
			.max_frame = (size_t)gw->cfg.max_frame,
			.send_queue_max = (size_t)gw->cfg.send_queue_max,
			.backpressure = NET_BACKPRESSURE_DISCONNECT,
			.frame_timeout_ms = (uint32_t)gw->cfg.frame_timeout_ms,
			.socket_send_buffer = (uint32_t)gw->cfg.socket_send_buffer,
			.tls = gw->client_tls,
		},
	};
}

/* ---- redirects and handoffs between shards ------------------------------ */

/* A shard may redirect a request this many times (ClientRequest.hops); a
 * Redirect past it is a loop between shards that disagree. */
#define REDIRECT_HOPS_MAX 3

/* Whether shard is one of this gateway's, other than `not`. */
static bool shard_valid(const struct gw_loop *gl, uint32_t shard, uint32_t not)
{
	return shard != 0 && shard <= gl->gw->shard_count && shard != not;
}

void gw_loop_redirect(struct gw_loop *gl, uint32_t from, const Ringgate__Internal__Redirect *r)
{
	Ringgate__Internal__ClientRequest request = RINGGATE__INTERNAL__CLIENT_REQUEST__INIT;
	struct gw_client *c = table_find(gl, r->session);
	struct gw_pending *p = c && !c->closing ? pending_find_call(c, r->request_id) : NULL;

	if (!p) {
		gl->counters.late_replies++;
		RG_DEBUG("shard %u redirected request %llu of %#llx, which has ended; dropped", from,
			 (unsigned long long)r->request_id, (unsigned long long)r->session);
		return;
	}
	if (p->shard != from) {
		RG_WARN("shard %u redirected request %llu of %#llx, which waits on shard %u; "
			"ignored", from, (unsigned long long)r->request_id,
			(unsigned long long)r->session, p->shard);
		return;
	}
	if (!shard_valid(gl, r->shard, from) || !r->message || r->hops > REDIRECT_HOPS_MAX) {
		RG_WARN("shard %u redirected request %llu of %s to shard %u (%u hops%s), which this "
			"gateway cannot follow (it has shards 1..%u); answering SERVICE_UNAVAILABLE",
			from, (unsigned long long)r->request_id, NET_SESSION_PEER(c->session),
			r->shard, r->hops, r->message ? "" : ", no message", gl->gw->shard_count);
		pending_unavailable(c, p, "the game server sent the request nowhere");
		return;
	}
	request.request_id = p->call_id;
	request.deadline_ms = deadline_left(gl, p);
	request.message = r->message;
	request.no_create = r->no_create;
	request.hops = r->hops;
	if (!gl->link_up[r->shard] || client_to_shard(c, r->shard, &request) < 0) {
		pending_unavailable(c, p, "the game server that holds this account is unavailable");
		return;
	}
	RG_DEBUG("request %llu of %s: redirected from shard %u to shard %u",
		 (unsigned long long)p->call_id, NET_SESSION_PEER(c->session), from, r->shard);
	p->shard = r->shard;
	gl->counters.redirected++;
	gw_metrics_redirected(gl->gw);
}

/* Tell a handoff's source shard how it ended (HandoffResult). */
static void handoff_result(struct gw_loop *gl, uint32_t source, uint64_t session,
			   uint64_t player_id, bool ok)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__HandoffResult result = RINGGATE__INTERNAL__HANDOFF_RESULT__INIT;

	result.session = session;
	result.player_id = player_id;
	result.ok = ok;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HANDOFF_RESULT;
	out.handoff_result = &result;
	if (gw_shard_send(gl->gw, source, &out) < 0)
		RG_INFO("cannot tell shard %u how the handoff of player %llu ended (ok %d): its "
			"link is down", source, (unsigned long long)player_id, ok);
	gw_metrics_handoff(gl->gw, ok ? GW_HANDOFF_OK : GW_HANDOFF_FAILED);
}

/* The handoff is over: forget it (its client, if any, is free to move
 * again). */
static void handoff_forget(struct gw_handoff *ho)
{
	if (ho->client)
		ho->client->handoff = NULL;
	link_remove(&ho->node);
	free(ho);
}

/* The handoff failed: the source answers the move or the login, so the
 * call waits on it again; the client (if still here) is where it was
 * before: on the source after a move, on no shard after a login (the
 * source refuses that login). */
static void handoff_back_to_source(struct gw_handoff *ho)
{
	struct gw_client *c = ho->client;
	struct gw_pending *p;

	if (!c)
		return;
	c->shard = ho->shard_before;
	p = ho->request_id ? pending_find_call(c, ho->request_id) : NULL;
	if (p)
		p->shard = ho->source;
}

void gw_loop_handoff(struct gw_loop *gl, uint32_t from, const Ringgate__Internal__Handoff *h)
{
	Ringgate__Internal__ClientRequest request = RINGGATE__INTERNAL__CLIENT_REQUEST__INIT;
	struct gw_client *c = table_find(gl, h->session);
	uint64_t player_id = h->adopt ? h->adopt->player_id : 0;
	struct gw_pending *p;
	struct gw_handoff *ho;

	if (!shard_valid(gl, h->target_shard, from) || !h->adopt) {
		RG_WARN("shard %u handed session %#llx (player %llu) to shard %u%s, which this "
			"gateway cannot follow (it has shards 1..%u); refused", from,
			(unsigned long long)h->session, (unsigned long long)player_id,
			h->target_shard, h->adopt ? "" : " without the player", gl->gw->shard_count);
		handoff_result(gl, from, h->session, player_id, false);
		return;
	}
	if (!gl->link_up[h->target_shard]) {
		RG_INFO("shard %u handed player %llu to shard %u, whose link is down; refused", from,
			(unsigned long long)player_id, h->target_shard);
		handoff_result(gl, from, h->session, player_id, false);
		return;
	}
	if (c && c->handoff) {
		RG_WARN("shard %u handed player %llu of %s to shard %u while its move from shard %u "
			"is in flight; refused", from, (unsigned long long)player_id,
			NET_SESSION_PEER(c->session), h->target_shard, c->handoff->source);
		handoff_result(gl, from, h->session, player_id, false);
		return;
	}
	p = c && h->request_id ? pending_find_call(c, h->request_id) : NULL;
	if (p && p->shard != from)
		p = NULL; /* not the source's to hand on: it keeps waiting where it is */
	ho = calloc(1, sizeof(*ho));
	request.session = h->session;
	request.request_id = h->request_id;
	request.deadline_ms = deadline_left(gl, p);
	request.adopt = h->adopt;
	if (!ho || shard_request(gl->gw, h->target_shard, &request) < 0) {
		RG_WARN("cannot pass player %llu from shard %u to shard %u (%s); refused",
			(unsigned long long)player_id, from, h->target_shard,
			ho ? "its link is down" : "out of memory");
		free(ho);
		handoff_result(gl, from, h->session, player_id, false);
		return;
	}
	*ho = (struct gw_handoff){
		.client = c, .session = h->session, .player_id = player_id,
		.request_id = h->request_id,
		.expires_ms = rg_now_ms() + 2 * (uint64_t)gl->gw->cfg.request_timeout_ms,
		.source = from, .target = h->target_shard,
		.shard_before = c ? c->shard : 0,
	};
	link_append(&gl->handoffs, &ho->node);
	gl->counters.handoffs++;
	RG_DEBUG("player %llu (session %#llx): handoff from shard %u to shard %u relayed",
		 (unsigned long long)player_id, (unsigned long long)h->session, from,
		 h->target_shard);
	if (!c) {
		/* Gone meanwhile: the target adopts, then hears it went. */
		tell_gone(gl, h->session, UINT32_C(1) << h->target_shard);
		return;
	}
	c->handoff = ho;
	c->shard = h->target_shard;
	c->seen |= UINT32_C(1) << h->target_shard;
	if (p)
		p->shard = h->target_shard;
}

/* The handoff in flight for session, or NULL. */
static struct gw_handoff *handoff_find(struct gw_loop *gl, uint64_t session)
{
	struct gw_client *c = table_find(gl, session);

	if (c)
		return c->handoff;
	for (struct gw_link *at = gl->handoffs.next; at != &gl->handoffs; at = at->next) {
		struct gw_handoff *ho = RG_CONTAINER_OF(at, struct gw_handoff, node);

		if (ho->session == session)
			return ho;
	}
	return NULL;
}

void gw_loop_adopt_result(struct gw_loop *gl, uint32_t from,
			  const Ringgate__Internal__AdoptResult *r)
{
	struct gw_handoff *ho = handoff_find(gl, r->session);

	if (!ho || ho->target != from || ho->player_id != r->player_id) {
		RG_INFO("shard %u reported the adoption of player %llu (session %#llx, ok %d), "
			"which is no handoff in flight to it; ignored", from,
			(unsigned long long)r->player_id, (unsigned long long)r->session, r->ok);
		return;
	}
	RG_DEBUG("player %llu: shard %u %s it from shard %u", (unsigned long long)r->player_id,
		 from, r->ok ? "adopted" : "did not adopt", ho->source);
	handoff_result(gl, ho->source, ho->session, ho->player_id, r->ok);
	if (!r->ok)
		handoff_back_to_source(ho);
	handoff_forget(ho);
}

/* Shard's link went down: the handoffs in flight to it fail (the source
 * hears it, and answers the move), those from it are forgotten (the target
 * goes on; nobody is left to tell). Before the calls on shard fail, so a
 * move that goes back to its source is not failed with them. */
static void handoffs_link_down(struct gw_loop *gl, uint32_t shard)
{
	struct gw_link *at = gl->handoffs.next, *next;

	for (; at != &gl->handoffs; at = next) {
		struct gw_handoff *ho = RG_CONTAINER_OF(at, struct gw_handoff, node);

		next = at->next;
		if (ho->target == shard) {
			RG_INFO("player %llu: shard %u went down while adopting it from shard %u",
				(unsigned long long)ho->player_id, shard, ho->source);
			handoff_result(gl, ho->source, ho->session, ho->player_id, false);
			handoff_back_to_source(ho);
			handoff_forget(ho);
		} else if (ho->source == shard) {
			gw_metrics_handoff(gl->gw, GW_HANDOFF_ABANDONED);
			handoff_forget(ho);
		}
	}
}

/* Forget handoffs whose target has said nothing by their expiry: their
 * source gives up on its own by then (its call deadline). */
static void handoffs_expire(struct gw_loop *gl, uint64_t now_ms)
{
	struct gw_link *at = gl->handoffs.next, *next;

	for (; at != &gl->handoffs; at = next) {
		struct gw_handoff *ho = RG_CONTAINER_OF(at, struct gw_handoff, node);

		next = at->next;
		if (ho->expires_ms > now_ms)
			continue;
		RG_WARN("player %llu: shard %u said nothing about adopting it from shard %u in "
			"time; forgotten", (unsigned long long)ho->player_id, ho->target, ho->source);
		gw_metrics_handoff(gl->gw, GW_HANDOFF_ABANDONED);
		handoff_forget(ho);
	}
}

/* ---- per-loop work ----------------------------------------------------- */

/* Loop 0, once a tick: log the accepts libnet refused since the last time
 * (it closes them before a session exists, so only counts are known). */
static void log_refused_accepts(struct gw_loop *gl, uint64_t now)
{
	const struct gw_config *cfg = &gl->gw->cfg;
	struct net_stats st;
	uint64_t refused;

	net_runtime_stats(gl->gw->rt, &st);
	refused = st.rejected + st.rejected_addr;
	if (refused == gl->rejected_logged || now - gl->rejected_logged_ms < 1000)
		return; /* at most one line a second, however hard the flood */
	RG_WARN("refused %llu connections at accept (now %llu in all: %llu over "
		"--max-clients-per-addr %ld or --connects-per-addr-per-sec %ld, %llu over the "
		"hard cap of --max-clients + 64)",
		(unsigned long long)(refused - gl->rejected_logged),
		(unsigned long long)refused, (unsigned long long)st.rejected_addr,
		cfg->max_clients_per_addr, cfg->connects_per_addr_per_sec,
		(unsigned long long)st.rejected);
	gl->rejected_logged = refused;
	gl->rejected_logged_ms = now;
}

static void on_tick(struct net_timer *timer, void *arg)
{
	struct gw_loop *gl = arg;
	uint64_t now = net_loop_now(gl->net);
	uint64_t idle_ms = (uint64_t)gl->gw->cfg.idle_timeout_ms;

	(void)timer;
	rg_calls_expire(gl->calls, rg_now_ms());
	handoffs_expire(gl, rg_now_ms());
	if (gl == &gl->gw->loops[0])
		log_refused_accepts(gl, now);
	while (idle_ms && link_linked(&gl->idle)) {
		struct gw_client *c = RG_CONTAINER_OF(gl->idle.next, struct gw_client, idle);

		if (now - c->last_heard_ms < idle_ms)
			break;
		RG_INFO("client %s idle for %llu ms; kicking", NET_SESSION_PEER(c->session),
			(unsigned long long)(now - c->last_heard_ms));
		client_kick(c, RINGGATE__CLIENT__ERROR_CODE__IDLE_TIMEOUT,
			    "nothing received for too long");
	}
}

/* End c's requests that wait on shard with SERVICE_UNAVAILABLE. */
static void fail_calls_on(struct gw_client *c, uint32_t shard)
{
	struct gw_pending *p = c->pending, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->shard != shard)
			continue;
		pending_unavailable(c, p, "the game server link went down");
	}
}

void gw_loop_link_changed(struct gw_loop *gl, uint32_t shard, bool up)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Error error = RINGGATE__CLIENT__ERROR__INIT;
	struct net_buf *push;

	if (shard == 0 || shard > gl->gw->shard_count)
		return;
	gl->link_up[shard] = up;
	if (up)
		return;
	handoffs_link_down(gl, shard);
	/* The same push for every client of the shard: packed once, queued
	 * by reference. */
	error.code = RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE;
	error.message = "lost the game server link; log in again once it is back";
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR;
	msg.error = &error;
	push = gw_frame_pack(&msg);
	if (!push)
		RG_ERROR("out of memory telling clients that the game server link is down");
	for (size_t b = 0; b <= gl->bucket_mask; b++) {
		for (struct gw_client *c = gl->buckets[b]; c; c = c->hash_next) {
			uint32_t bit = UINT32_C(1) << shard;
			bool told = c->shard == shard || (c->shard == 0 && (c->seen & bit));
			int err;

			fail_calls_on(c, shard);
			/* The shard dropped every player of this gateway with the
			 * link: a new link starts from nothing. */
			c->seen &= ~bit;
			/* Told: its players, and the clients on no shard that
			 * talked to it (their requests went there). */
			if (!told)
				continue;
			if (c->shard == shard)
				c->shard = 0; /* it may log in again, on a shard that is up */
			err = push ? c->tp->send_shared(c->session, push, NULL, 0) : -ENOMEM;
			if (err < 0)
				RG_DEBUG("send to client %s failed: %s",
					 NET_SESSION_PEER(c->session), net_strerror(err));
		}
	}
	net_buf_unref(push);
}

size_t gw_msg_no_field(uint64_t msg_no, uint8_t out[GW_MSG_NO_FIELD_MAX])
{
	if (msg_no == 0)
		return 0;
	out[0] = 0x10; /* field 2 (msg_no), varint: proto/client.proto */
	return 1 + net_varint_encode(msg_no, out + 1);
}

/* A reply from shard of ServerMessage body case `body` answered one of c's
 * requests: a login or a resume puts the client on that shard, a logout
 * takes it off. */
static void client_placed(struct gw_client *c, uint32_t shard, unsigned body)
{
	switch (body) {
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN:
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_RESUME:
		c->shard = shard;
		break;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGOUT:
		c->shard = 0;
		break;
	default:
		break;
	}
}

void gw_loop_deliver(struct gw_loop *gl, uint64_t session, const struct gw_delivery *d,
		     struct net_buf *frame, uint64_t msg_no)
{
	struct gw_client *c = table_find(gl, session);
	uint8_t suffix[GW_MSG_NO_FIELD_MAX];
	size_t suffix_len = gw_msg_no_field(msg_no, suffix);

	if (!c || c->closing)
		return;
	if (d->request_id != 0) {
		struct gw_pending *p = pending_find_call(c, d->request_id);
		struct reply_frame reply = { frame, suffix, suffix_len };

		if (!p || !rg_calls_complete(gl->calls, d->request_id, &reply)) {
			gl->counters.late_replies++;
			RG_DEBUG("late reply to request %llu for %s dropped",
				 (unsigned long long)d->request_id, NET_SESSION_PEER(c->session));
		} else {
			client_placed(c, d->shard, d->body);
		}
	} else {
		int err = c->tp->send_shared(c->session, frame, suffix, suffix_len);

		if (err < 0)
			RG_DEBUG("push to %s not sent: %s", NET_SESSION_PEER(c->session),
				 net_strerror(err));
	}
	if (d->kick) {
		gl->counters.kicked++;
		client_close(c);
	}
}

static size_t round_up_pow2(size_t n)
{
	size_t p = 64;

	while (p < n)
		p <<= 1;
	return p;
}

int gw_loops_create(struct gateway *gw)
{
	size_t buckets;
	int err;

	err = gw_guard_create(gw);
	if (err < 0)
		return err;
	gw->loop_count = net_runtime_loop_count(gw->rt);
	gw->loops = calloc(gw->loop_count, sizeof(*gw->loops));
	if (!gw->loops)
		return -ENOMEM;
	buckets = round_up_pow2((size_t)gw->cfg.max_clients / gw->loop_count + 1);
	for (unsigned i = 0; i < gw->loop_count; i++) {
		struct gw_loop *gl = &gw->loops[i];

		gl->gw = gw;
		gl->net = net_runtime_loop(gw->rt, i);
		link_init(&gl->idle);
		link_init(&gl->handoffs);
		/* A decode may take a few times its frame in structs and
		 * strings; anything needing more is hostile. */
		rg_pb_arena_init(&gl->arena, 4 * (size_t)gw->cfg.max_frame + 4096);
		gl->calls = rg_calls_create();
		gl->buckets = calloc(buckets, sizeof(*gl->buckets));
		gl->bucket_mask = buckets - 1;
		if (!gl->calls || !gl->buckets)
			return -ENOMEM; /* gw_loops_destroy frees what was made */
		/* Timers may be created before the loop runs; the tick is what
		 * makes requests time out, so without it the gateway must not
		 * start at all. */
		err = net_timer_create(gl->net, on_tick, gl, &gl->tick);
		if (err < 0)
			return err;
	}
	return 0;
}

static void run_start(struct net_loop *loop, void *arg)
{
	struct gw_loop *gl = arg;

	(void)loop;
	net_timer_start(gl->tick, TICK_MS, TICK_MS);
}

/* Post fn(gl) to every loop; returns the first error. */
static int post_all(struct gateway *gw, net_task_fn fn)
{
	int first_err = 0;

	for (unsigned i = 0; i < gw->loop_count; i++) {
		int err = net_loop_post(gw->loops[i].net, fn, &gw->loops[i]);

		if (err < 0 && first_err == 0)
			first_err = err;
	}
	return first_err;
}

int gw_loops_start(struct gateway *gw)
{
	return post_all(gw, run_start);
}

static void run_kick_all(struct net_loop *loop, void *arg)
{
	struct gw_loop *gl = arg;

	(void)loop;
	while (link_linked(&gl->idle))
		client_kick(RG_CONTAINER_OF(gl->idle.next, struct gw_client, idle),
			    RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
			    "the gateway is shutting down");
}

void gw_loops_kick_all(struct gateway *gw)
{
	int err = post_all(gw, run_kick_all);

	if (err < 0)
		RG_WARN("could not ask every loop to kick its clients: %s",
			net_strerror(err));
}

static void run_finish(struct net_loop *loop, void *arg)
{
	struct gw_loop *gl = arg;

	(void)loop;
	if (gl->tick) {
		net_timer_destroy(gl->tick);
		gl->tick = NULL;
	}
	atomic_fetch_add(&gl->gw->loops_finished, 1);
}

void gw_loops_finish(struct gateway *gw)
{
	int err = post_all(gw, run_finish);

	if (err < 0)
		RG_WARN("could not ask every loop to finish: %s", net_strerror(err));
}

void gw_loops_destroy(struct gateway *gw)
{
	struct gw_counters sum = { 0 };

	gw_guard_destroy(gw);
	if (!gw->loops)
		return;
	for (unsigned i = 0; i < gw->loop_count; i++) {
		struct gw_loop *gl = &gw->loops[i];
		const struct gw_counters *n = &gl->counters;

		sum.forwarded += n->forwarded;
		sum.replied += n->replied;
		sum.timed_out += n->timed_out;
		sum.unavailable += n->unavailable;
		sum.refused += n->refused;
		sum.late_replies += n->late_replies;
		sum.kicked += n->kicked;
		sum.flooders += n->flooders;
		sum.redirected += n->redirected;
		sum.handoffs += n->handoffs;
		while (link_linked(&gl->handoffs))
			handoff_forget(RG_CONTAINER_OF(gl->handoffs.next, struct gw_handoff, node));
		if (gl->calls)
			rg_calls_destroy(gl->calls);
		free(gl->buckets);
		rg_pb_arena_fini(&gl->arena);
	}
	free(gw->loops);
	gw->loops = NULL;
	RG_INFO("requests: %llu forwarded, %llu replied, %llu timed out, %llu unavailable, "
		"%llu refused, %llu late replies dropped, %llu redirected; %llu handoffs relayed; "
		"%llu clients kicked (%llu flooding)",
		(unsigned long long)sum.forwarded, (unsigned long long)sum.replied,
		(unsigned long long)sum.timed_out, (unsigned long long)sum.unavailable,
		(unsigned long long)sum.refused, (unsigned long long)sum.late_replies,
		(unsigned long long)sum.redirected, (unsigned long long)sum.handoffs,
		(unsigned long long)sum.kicked, (unsigned long long)sum.flooders);
}
