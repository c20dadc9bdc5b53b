/*
 * gate_link.c: gateway links, loop side and game side (see gate_link.h).
 *
 * The link itself (our AuthChallenge, the gateway's Hello with its proof,
 * our HelloReply, the deadlines, heartbeats, admission) is rg/link.h's;
 * this file adds what gamesrv does with a link:
 *
 *   connected --handshake (rg/link.h)--> up --(closed)--> GATE_DOWN queued
 *       |
 *       +--closed before it was up--> nothing queued (no client of this
 *                       link ever reached the game)
 *
 * Frames are decoded straight into a game event's bounded budget
 * (gs_game_event_decode_into), since the message goes on to the game thread.
 *
 * The GATE_DOWN event is allocated when the link connects, so the end of
 * a link that was up always reaches the game thread, even when memory
 * is short at that moment; without it players would stay online for a
 * gateway that is gone.
 */
#include "gate_link.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/log.h>
#include <rg/peer_clock.h>

#include "internal.pb-c.h"

struct gate_session {
	struct gs_game_event *down_event; /* preallocated GATE_DOWN          */
	struct rg_peer_clock clock;    /* ages of the gateway's requests  */
};

static int on_connected(struct rg_link *link)
{
	struct gate_session *gs = rg_link_user(link);

	rg_peer_clock_init(&gs->clock);
	gs->down_event = gs_game_event_new(GS_GAME_EV_GATE_DOWN,
					net_session_get_id(rg_link_session(link)), 0);
	return gs->down_event ? 0 : -ENOMEM;
}

/* Answer a client's request here, without the game thread: it is behind,
 * or the request cannot be read as sent. */
static void answer_now(struct rg_link *link, const Ringgate__Internal__ClientRequest *req,
		       Ringgate__Client__ErrorCode code, const char *text)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__ToClient to = RINGGATE__INTERNAL__TO_CLIENT__INIT;
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Error err = RINGGATE__CLIENT__ERROR__INIT;
	uint64_t session = req->session;

	to.request_id = req->request_id;
	err.code = code;
	err.message = (char *)text;
	msg.seq = req->message ? req->message->seq : 0;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR;
	msg.error = &err;
	to.n_sessions = 1;
	to.sessions = &session;
	to.message = &msg;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT;
	out.to_client = &to;
	(void)rg_link_send(link, &out.base);
}

static int on_message(struct rg_link *link, ProtobufCMessage *m, void *token)
{
	struct gs_gate_service *g = rg_link_service_user(link);
	struct gate_session *gs = rg_link_user(link);
	struct net_session *s = rg_link_session(link);
	struct gs_game_event *ev = token;
	Ringgate__Internal__GateToGame *msg = (Ringgate__Internal__GateToGame *)m;

	ev->gate_msg = msg;
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST:
		if (rg_link_frame_has_nul(link)) {
			/* Read up to the NUL, a name or chat would be cut short;
			 * our gateway refuses these, so say so plainly. */
			answer_now(link, msg->request, RINGGATE__CLIENT__ERROR_CODE__BAD_REQUEST,
				   "a string field holds a NUL");
			break;
		}
		ev->type = GS_GAME_EV_CLIENT_REQUEST;
		/* Stamped here, before the queue: time spent in it (and in the
		 * socket, if we were stopped) counts against the deadline. */
		ev->deadline_ms = rg_peer_clock_deadline(&gs->clock, msg->request->sent_ms,
							 msg->request->deadline_ms, rg_now_ms());
		if (gs_game_queue_push(g->queue, ev) == 0)
			return 0;
		RG_WARN("game queue full: refusing a request from gateway %s",
			NET_SESSION_PEER(s));
		answer_now(link, msg->request, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
			   "game server overloaded, retry later");
		break;
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE:
		ev->type = GS_GAME_EV_CLIENT_GONE;
		gs_game_queue_push(g->queue, ev); /* never refused */
		return 0;
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HANDOFF_RESULT:
		/* Never refused either: a frozen player waits for it. */
		ev->type = GS_GAME_EV_HANDOFF_RESULT;
		gs_game_queue_push(g->queue, ev);
		return 0;
	default:
		RG_WARN("gateway link %s: GateToGame without a body, closing it",
			NET_SESSION_PEER(s));
		gs_game_event_free(ev);
		return -EPROTO;
	}
	gs_game_event_free(ev);
	return 0;
}

static int on_up(struct rg_link *link)
{
	/* Session ids carry the gateway id (docs/protocol.md section 11). */
	RG_INFO("gateway link %s up: gateway id %u", NET_SESSION_PEER(rg_link_session(link)),
		(unsigned)rg_link_peer_id(link));
	return 0;
}

static void on_down(struct rg_link *link, bool was_up, enum net_reason reason)
{
	struct gs_gate_service *g = rg_link_service_user(link);
	struct gate_session *gs = rg_link_user(link);

	if (was_up) {
		RG_INFO("gateway link %s closed (%s)", NET_SESSION_PEER(rg_link_session(link)),
			net_reason_str(reason));
		gs_game_queue_push(g->queue, gs->down_event); /* never refused */
	} else {
		gs_game_event_free(gs->down_event);
	}
	gs->down_event = NULL;
}

static const struct rg_link_ops gate_ops = {
	.on_connected = on_connected,
	.on_up = on_up,
	.on_message = on_message,
	.on_down = on_down,
	.decode_into = gs_game_event_decode_into,
	.decode_drop = gs_game_event_decode_drop,
};

int gs_gate_service_start(struct gs_gate_service *g, struct net_runtime *rt,
		       struct gs_game_queue *q, const struct gs_gate_service_config *cfg)
{
	const struct rg_link_config link = {
		.side = RG_LINK_ACCEPTOR,
		.role = "gamesrv",
		.peer_role = "gateway",
		.id = cfg->shard,
		.key = cfg->link_key,
		.rules = cfg->rules,
		.in = rg_link_gate_to_game,
		.out = rg_link_game_to_gate,
		.max_frame = cfg->max_frame,
		.decode_limit = cfg->decode_limit,
		.user_size = sizeof(struct gate_session),
		.ops = &gate_ops,
		.user = g,
		.max_links = cfg->max_gateways,
		.pending_max = cfg->pending_max,
		.pending_per_addr = cfg->pending_per_addr,
	};
	struct net_server_config sc;
	int rc;

	memset(&sc, 0, sizeof(sc));
	g->rt = rt;
	g->queue = q;
	g->cfg = *cfg;
	g->server = NULL;
	rc = rg_link_service_init(&g->link, &link);
	if (rc < 0)
		return rc;
	sc.host = cfg->host;
	sc.port = cfg->port;
	sc.max_sessions = rg_link_server_max_sessions(&g->link);
	rg_link_session_config(&g->link, &sc.session);
	return net_server_start(rt, &sc, &g->server);
}

uint16_t gs_gate_service_port(const struct gs_gate_service *g)
{
	return net_server_port(g->server);
}

void gs_gate_service_stop_accepting(struct gs_gate_service *g)
{
	if (g->server)
		net_server_stop(g->server, false);
}

void gs_gate_service_fini(struct gs_gate_service *g)
{
	rg_link_service_fini(&g->link);
}

/* ---- game side ------------------------------------------------------------ */

/* One ToClient frame; request_id as gs_gate_out_reply's, or 0; msg_nos NULL
 * or one per session; resumed as gs_gate_out_resumed's. */
static int send_to_client(struct gs_gate_out *o, net_session_id link, const uint64_t *sessions,
			  const uint64_t *msg_nos, size_t count, uint64_t request_id,
			  bool resumed, const Ringgate__Client__ServerMessage *msg)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__ToClient to = RINGGATE__INTERNAL__TO_CLIENT__INIT;

	if (count == 0)
		return 0;
	to.request_id = request_id;
	to.resumed = resumed;
	to.n_sessions = count;
	to.sessions = (uint64_t *)sessions; /* protobuf-c's packer only reads */
	if (msg_nos) {
		to.n_msg_nos = count;
		to.msg_nos = (uint64_t *)msg_nos;
	}
	to.message = (Ringgate__Client__ServerMessage *)msg;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT;
	out.to_client = &to;
	return gs_wire_send_to(o->rt, link, &o->buf, &out.base);
}

int gs_gate_out_send(struct gs_gate_out *o, net_session_id link, const uint64_t *sessions,
		  const uint64_t *msg_nos, size_t count,
		  const Ringgate__Client__ServerMessage *msg)
{
	return send_to_client(o, link, sessions, msg_nos, count, 0, false, msg);
}

int gs_gate_out_reply(struct gs_gate_out *o, net_session_id link, uint64_t session,
		   uint64_t request_id, const Ringgate__Client__ServerMessage *msg)
{
	return send_to_client(o, link, &session, NULL, 1, request_id, false, msg);
}

int gs_gate_out_resumed(struct gs_gate_out *o, net_session_id link, uint64_t session,
		     const Ringgate__Client__ServerMessage *msg)
{
	return send_to_client(o, link, &session, NULL, 1, 0, true, msg);
}

/* Bytes of v as a varint. */
static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Write a field's key (wire type wt) and, for LEN (2), its length. */
static uint8_t *put_key(uint8_t *at, unsigned field, unsigned wt, size_t len)
{
	*at++ = (uint8_t)(field << 3 | wt);
	if (wt == 2)
		at += net_varint_encode(len, at);
	return at;
}

int gs_gate_out_send_packed(struct gs_gate_out *o, net_session_id link, uint64_t session,
			 uint64_t request_id, bool resumed, const uint8_t *msg, size_t msg_len)
{
	/* GameToGate{to_client = 3: ToClient{sessions = 1 (packed),
	 * message = 2, request_id = 3, resumed = 4}} (proto/internal.proto),
	 * fields in number order as protobuf-c writes them. */
	size_t sess_len = varint_len(session);
	size_t tc_len = 1 + varint_len(sess_len) + sess_len + 1 + varint_len(msg_len) + msg_len +
			(request_id ? 1 + varint_len(request_id) : 0) + (resumed ? 2 : 0);
	size_t len = 1 + varint_len(tc_len) + tc_len;
	uint8_t *at;

	if (gs_wire_buf_reserve(&o->buf, len) < 0)
		return -ENOMEM;
	at = put_key(o->buf.data, 3, 2, tc_len);
	at = put_key(at, 1, 2, sess_len);
	at += net_varint_encode(session, at);
	at = put_key(at, 2, 2, msg_len);
	memcpy(at, msg, msg_len);
	at += msg_len;
	if (request_id) {
		at = put_key(at, 3, 0, 0);
		at += net_varint_encode(request_id, at);
	}
	if (resumed) {
		at = put_key(at, 4, 0, 0);
		*at++ = 1;
	}
	return net_send_to(o->rt, link, o->buf.data, (size_t)(at - o->buf.data));
}

int gs_gate_out_send_body(struct gs_gate_out *o, net_session_id link,
			 const Ringgate__Internal__GameToGate *m)
{
	return gs_wire_send_to(o->rt, link, &o->buf, &m->base);
}

int gs_gate_out_kick(struct gs_gate_out *o, net_session_id link, uint64_t session,
		  Ringgate__Client__ErrorCode code, const char *text)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__Kick kick = RINGGATE__INTERNAL__KICK__INIT;
	Ringgate__Client__Kicked kicked = RINGGATE__CLIENT__KICKED__INIT;

	kicked.code = code;
	kicked.message = (char *)text;
	kick.session = session;
	kick.kicked = &kicked;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK;
	out.kick = &kick;
	return gs_gate_out_send_body(o, link, &out);
}

void gs_gate_out_fini(struct gs_gate_out *o)
{
	gs_wire_buf_fini(&o->buf);
}
