/*
 * gate_link.c: gateway links, loop side and game side (see gate_link.h).
 *
 * Link states (loop side, in struct gate_session):
 *
 *   connected --(AuthChallenge out) Hello with the right proof--> ready
 *       |                                      --(closed)--> GATE_DOWN queued
 *       +--a wrong proof, or anything else--> closed (protocol error; no
 *                       event: no client of this link ever reached the game)
 *
 * The proof is rg/link_auth.h's (skipped with --insecure-no-auth).
 * Heartbeats go out only once the link is ready.
 *
 * The GATE_DOWN event is allocated when the link connects, so the end of
 * a link that said Hello always reaches the game thread, even when memory
 * is short at that moment; without it players would stay online for a
 * gateway that is gone.
 */
#include "gate_link.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "internal.pb-c.h"
#include "keepalive.h"

struct gate_session {
	struct gate_service *svc;
	struct keepalive keepalive;
	bool ready;                    /* Hello received, proof checked   */
	struct rg_link_auth auth;      /* the handshake                   */
	struct game_event *down_event; /* preallocated GATE_DOWN          */
};

static int send_heartbeat(struct net_session *s)
{
	struct gate_session *gs = net_session_user(s);
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;

	if (!gs->ready)
		return 0; /* the handshake comes first */
	hb.sent_ms = rg_wall_ms();
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HEARTBEAT;
	out.heartbeat = &hb;
	return wire_send(s, &out.base);
}

/* The handshake's first frame: a fresh nonce the gateway must prove the
 * cluster secret over (nothing with --insecure-no-auth). */
static int send_challenge(struct net_session *s, struct gate_session *gs)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__AuthChallenge challenge = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;
	uint8_t nonce[RG_LINK_NONCE_BYTES];

	if (!rg_link_auth_accept(&gs->auth, gs->svc->cfg.link_key, nonce))
		return 0;
	challenge.nonce.data = nonce;
	challenge.nonce.len = sizeof(nonce);
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE;
	out.challenge = &challenge;
	return wire_send(s, &out.base);
}

static void on_connected(struct net_session *s)
{
	struct gate_session *gs = net_session_user(s);
	struct gate_service *g = net_session_service_user(s);

	gs->svc = g;
	RG_INFO("gateway link from %s connected", NET_SESSION_PEER(s));
	gs->down_event = game_event_new(GAME_EV_GATE_DOWN, net_session_get_id(s), 0);
	if (!gs->down_event ||
	    keepalive_start(&gs->keepalive, s, g->cfg.heartbeat_ms, g->cfg.dead_ms,
			    send_heartbeat, "gateway") < 0 ||
	    send_challenge(s, gs) < 0) {
		RG_ERROR("gateway link from %s: cannot set up, closing it",
			 NET_SESSION_PEER(s));
		net_session_disconnect(s, NET_REASON_APP_ERROR);
	}
}

static int answer_hello(struct net_session *s, struct gate_session *gs,
			const Ringgate__Internal__Hello *hello)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__HelloReply reply = RINGGATE__INTERNAL__HELLO_REPLY__INIT;
	uint8_t proof[RG_LINK_PROOF_BYTES];

	if (gs->ready) {
		RG_WARN("gateway link %s: second Hello, closing it", NET_SESSION_PEER(s));
		return -EPROTO;
	}
	if (strcmp(hello->role, "gateway") != 0) {
		/* Fatal: the proof covers the role its maker claimed, so a proof
		 * taken from our own dbproxy dial (role "gamesrv") and relayed
		 * here must not pass for a gateway's. */
		RG_WARN("gateway link %s: Hello with role \"%.32s\", not gateway, closing it",
			NET_SESSION_PEER(s), hello->role);
		return -EPROTO;
	}
	if (!rg_link_auth_check_dialer(&gs->auth, hello->role, hello->nonce.data, hello->nonce.len,
				       hello->proof.data, hello->proof.len, "gamesrv", proof)) {
		RG_WARN("gateway link %s: Hello does not prove the cluster secret (wrong "
			"secret, or the peer runs without one), closing it", NET_SESSION_PEER(s));
		return -EACCES;
	}
	gs->ready = true;
	RG_INFO("gateway link %s ready (instance \"%.64s\")", NET_SESSION_PEER(s),
		hello->instance);
	reply.role = "gamesrv";
	if (!rg_link_auth_insecure(&gs->auth)) {
		reply.proof.data = proof;
		reply.proof.len = sizeof(proof);
	}
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO;
	out.hello = &reply;
	return wire_send(s, &out.base);
}

/* The game thread is behind: answer the client here instead of queueing. */
static void answer_overloaded(struct net_session *s, const Ringgate__Internal__ClientRequest *req)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__ToClient to = RINGGATE__INTERNAL__TO_CLIENT__INIT;
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__Error err = RINGGATE__CLIENT__ERROR__INIT;
	uint64_t session = req->session;

	err.code = RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE;
	err.message = "game server overloaded, retry later";
	msg.seq = req->message ? req->message->seq : 0;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR;
	msg.error = &err;
	to.n_sessions = 1;
	to.sessions = &session;
	to.message = &msg;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT;
	out.to_client = &to;
	(void)wire_send(s, &out.base);
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	struct gate_session *gs = net_session_user(s);
	struct gate_service *g = gs->svc;
	struct game_event *ev;
	Ringgate__Internal__GateToGame *msg;
	int rc = 0;

	keepalive_heard(&gs->keepalive);
	ev = game_event_new(GAME_EV_CLIENT_REQUEST, net_session_get_id(s), g->cfg.decode_limit);
	if (!ev)
		return -ENOMEM;
	msg = ringgate__internal__gate_to_game__unpack(&ev->budget.allocator, len, body);
	if (!msg) {
		RG_WARN("gateway link %s: malformed GateToGame (%zu bytes), closing it",
			NET_SESSION_PEER(s), len);
		game_event_free(ev);
		return -EBADMSG;
	}
	ev->gate_msg = msg;
	if (!gs->ready && msg->body_case != RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO) {
		RG_WARN("gateway link %s: message before Hello, closing it", NET_SESSION_PEER(s));
		game_event_free(ev);
		return -EPROTO;
	}
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO:
		rc = answer_hello(s, gs, msg->hello);
		break;
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HEARTBEAT:
		break; /* keepalive_heard above is all it is for */
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST:
		if (game_queue_push(g->queue, ev) == 0)
			return 0;
		RG_WARN("game queue full: refusing a request from gateway %s",
			NET_SESSION_PEER(s));
		answer_overloaded(s, msg->request);
		break;
	case RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE:
		ev->type = GAME_EV_CLIENT_GONE;
		game_queue_push(g->queue, ev); /* never refused */
		return 0;
	default:
		RG_WARN("gateway link %s: GateToGame without a body, closing it",
			NET_SESSION_PEER(s));
		rc = -EPROTO;
		break;
	}
	game_event_free(ev);
	return rc;
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct gate_session *gs = net_session_user(s);

	keepalive_stop(&gs->keepalive);
	RG_INFO("gateway link %s closed (%s)", NET_SESSION_PEER(s), net_reason_str(reason));
	if (gs->ready && gs->down_event)
		game_queue_push(gs->svc->queue, gs->down_event); /* never refused */
	else
		game_event_free(gs->down_event);
	gs->down_event = NULL;
}

static const struct net_session_ops gate_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

int gate_service_start(struct gate_service *g, struct net_runtime *rt,
		       struct game_queue *q, const struct gate_service_config *cfg)
{
	struct net_server_config sc;

	memset(&sc, 0, sizeof(sc));
	g->rt = rt;
	g->queue = q;
	g->cfg = *cfg;
	g->server = NULL;
	sc.host = cfg->host;
	sc.port = cfg->port;
	sc.max_sessions = cfg->max_gateways;
	sc.session.ops = &gate_ops;
	sc.session.service_user = g;
	sc.session.user_size = sizeof(struct gate_session);
	sc.session.max_frame = cfg->max_frame;
	/* A gateway is a peer server: slow it down, never cut it off. */
	sc.session.backpressure = NET_BACKPRESSURE_PAUSE;
	return net_server_start(rt, &sc, &g->server);
}

uint16_t gate_service_port(const struct gate_service *g)
{
	return net_server_port(g->server);
}

void gate_service_stop_accepting(struct gate_service *g)
{
	if (g->server)
		net_server_stop(g->server, false);
}

/* ---- game side ------------------------------------------------------------ */

int gate_out_send(struct gate_out *o, net_session_id link, const uint64_t *sessions,
		  size_t count, const Ringgate__Client__ServerMessage *msg)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__ToClient to = RINGGATE__INTERNAL__TO_CLIENT__INIT;

	if (count == 0)
		return 0;
	to.n_sessions = count;
	to.sessions = (uint64_t *)sessions; /* protobuf-c's packer only reads */
	to.message = (Ringgate__Client__ServerMessage *)msg;
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT;
	out.to_client = &to;
	return wire_send_to(o->rt, link, &o->buf, &out.base);
}

int gate_out_kick(struct gate_out *o, net_session_id link, uint64_t session,
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
	return wire_send_to(o->rt, link, &o->buf, &out.base);
}

void gate_out_fini(struct gate_out *o)
{
	wire_buf_fini(&o->buf);
}
