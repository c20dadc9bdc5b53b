/*
 * upstream: the gateway's one link to gamesrv.
 *
 * libnet's client service dials it and redials it with backoff whenever it
 * drops. On each connection:
 *
 *   connected --(AuthChallenge in, send Hello + proof)--> greeting
 *   greeting --(HelloReply "gamesrv" + its proof)--> up
 *       ^                           |                                 |
 *       +------ redial (libnet) <---+-- dropped / dead / bad frame / -+
 *                                       wrong proof
 *
 * The proofs are rg/link_auth.h's: both sides show they hold the cluster
 * secret without sending it. With --insecure-no-auth, Hello goes out at
 * connect and no proof is checked. Heartbeats go out only once up.
 * A link that has not answered Hello within dead_ms is dropped as well.
 * Only an "up" link is published (gateway.upstream_id) and announced to the
 * client loops; clients never see the greeting state. Both sides send
 * Heartbeat every heartbeat_ms (rg/heartbeat.h keeps the rule shared by
 * every internal link), so a gamesrv that stops talking is dropped within
 * dead_ms plus one check period, and redialed.
 * Anything malformed from gamesrv drops the link too: it is a peer, not a
 * trusted part of this process.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <rg/clock.h>
#include <rg/heartbeat.h>
#include <rg/log.h>

#include "gateway.h"

/* ToClient frames name many sessions; allow far more than a client frame. */
#define UPSTREAM_MAX_FRAME (4u << 20)

/* A decode of one upstream frame may take this many times its size. */
#define UPSTREAM_DECODE_FACTOR 4

/* The user area of the upstream session. */
struct upstream_link {
	struct net_session *session;
	struct net_timer *timer;        /* sends heartbeats, checks dead time */
	struct rg_heartbeat heartbeat;
	struct rg_pb_arena arena;
	uint64_t connected_ms;
	struct rg_link_auth auth;
	bool greeted;                   /* HelloReply with a good proof came */
};

/* Pack msg into a new buffer the caller frees; NULL when out of memory. */
static uint8_t *pack_gate_to_game(const Ringgate__Internal__GateToGame *msg,
				  size_t *out_len /* OUT */)
{
	size_t len = ringgate__internal__gate_to_game__get_packed_size(msg);
	uint8_t *buf = malloc(len ? len : 1);

	if (buf)
		*out_len = ringgate__internal__gate_to_game__pack(msg, buf);
	return buf;
}

/* Queue one GateToGame on the upstream session, from its own loop. */
static int send_on_session(struct net_session *s, const Ringgate__Internal__GateToGame *msg)
{
	size_t len;
	uint8_t *buf = pack_gate_to_game(msg, &len);
	int err;

	if (!buf)
		return -ENOMEM;
	err = net_session_send_frame(s, buf, len);
	free(buf);
	return err;
}

int gw_upstream_send(struct gateway *gw, const Ringgate__Internal__GateToGame *msg)
{
	net_session_id id = atomic_load(&gw->upstream_id);
	size_t len;
	uint8_t *buf;
	int err;

	if (id == 0)
		return -ENOTCONN;
	buf = pack_gate_to_game(msg, &len);
	if (!buf)
		return -ENOMEM;
	err = net_send_to(gw->rt, id, buf, len);
	free(buf);
	return err;
}

static void on_link_timer(struct net_timer *timer, void *arg)
{
	struct upstream_link *link = arg;
	uint64_t now = rg_now_ms();
	Ringgate__Internal__GateToGame msg = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;
	int err;

	(void)timer;
	if (!link->greeted && now - link->connected_ms >= link->heartbeat.dead_ms) {
		/* Heartbeats alone must not keep a link that never says who
		 * it is half-open forever. */
		RG_WARN("no HelloReply from gamesrv within %llu ms; dropping the link",
			(unsigned long long)link->heartbeat.dead_ms);
		net_session_disconnect(link->session, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	if (rg_heartbeat_dead(&link->heartbeat, now)) {
		RG_WARN("gamesrv silent for over %llu ms; dropping the link",
			(unsigned long long)link->heartbeat.dead_ms);
		net_session_disconnect(link->session, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	if (!link->greeted || !rg_heartbeat_due(&link->heartbeat, now))
		return; /* gamesrv takes nothing before Hello */
	hb.sent_ms = rg_wall_ms();
	msg.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HEARTBEAT;
	msg.heartbeat = &hb;
	err = send_on_session(link->session, &msg);
	if (err < 0 && err != -ENOTCONN)
		RG_WARN("heartbeat to gamesrv not sent: %s", net_strerror(err));
}

/* Say who we are; nonce and proof answer gamesrv's AuthChallenge (NULL
 * when insecure). A failure drops the link. */
static void send_hello(struct net_session *s, uint8_t *nonce, uint8_t *proof)
{
	struct gateway *gw = net_session_service_user(s);
	Ringgate__Internal__GateToGame msg = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;
	int err;

	hello.role = "gateway";
	hello.instance = gw->cfg.instance;
	if (nonce) {
		hello.nonce.data = nonce;
		hello.nonce.len = RG_LINK_NONCE_BYTES;
		hello.proof.data = proof;
		hello.proof.len = RG_LINK_PROOF_BYTES;
	}
	msg.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO;
	msg.hello = &hello;
	err = send_on_session(s, &msg);
	if (err < 0) {
		RG_WARN("Hello to gamesrv not sent: %s", net_strerror(err));
		net_session_disconnect(s, NET_REASON_LOCAL);
	}
}

static void on_connected(struct net_session *s)
{
	struct gateway *gw = net_session_service_user(s);
	struct upstream_link *link = net_session_user(s);
	uint64_t check_ms = (uint64_t)gw->cfg.heartbeat_ms / 2 + 1;
	int err;

	RG_INFO("connected to gamesrv at %s", NET_SESSION_PEER(s));
	link->session = s;
	link->connected_ms = rg_now_ms();
	rg_heartbeat_init(&link->heartbeat, (uint64_t)gw->cfg.heartbeat_ms,
			  (uint64_t)gw->cfg.dead_ms, rg_now_ms());
	rg_pb_arena_init(&link->arena, UPSTREAM_DECODE_FACTOR * (size_t)UPSTREAM_MAX_FRAME);
	err = net_timer_create(net_session_loop(s), on_link_timer, link, &link->timer);
	if (err < 0) {
		RG_ERROR("no heartbeat timer for the gamesrv link: %s", net_strerror(err));
		net_session_disconnect(s, NET_REASON_LOCAL);
		return;
	}
	net_timer_start(link->timer, check_ms, check_ms);
	if (!rg_link_auth_dial(&link->auth, &gw->link_key))
		send_hello(s, NULL, NULL); /* insecure: no challenge to wait for */
}

/* gamesrv's AuthChallenge: answer with Hello and our proof. */
static int on_challenge(struct net_session *s, struct upstream_link *link,
			const Ringgate__Internal__AuthChallenge *challenge)
{
	uint8_t nonce[RG_LINK_NONCE_BYTES], proof[RG_LINK_PROOF_BYTES];

	if (rg_link_auth_answer(&link->auth, challenge->nonce.data, challenge->nonce.len,
				"gateway", nonce, proof) < 0) {
		RG_WARN("cannot answer gamesrv's AuthChallenge (%s); dropping the link",
			rg_link_auth_insecure(&link->auth) ? "this gateway runs with --insecure-no-auth"
							    : "repeated or malformed");
		return -EPROTO;
	}
	send_hello(s, nonce, proof);
	return 0;
}

/* The link is up: publish it, then tell the client loops. */
static int on_hello_reply(struct net_session *s, struct upstream_link *link,
			  const Ringgate__Internal__HelloReply *reply)
{
	struct gateway *gw = net_session_service_user(s);

	if (link->greeted) {
		RG_WARN("gamesrv sent a second HelloReply; dropping the link");
		return -EPROTO;
	}
	if (strcmp(reply->role, "gamesrv") != 0) {
		RG_WARN("peer at %s says it is \"%.32s\", not gamesrv; dropping the link",
			NET_SESSION_PEER(s), reply->role);
		return -EPROTO;
	}
	if (!rg_link_auth_check_acceptor(&link->auth, reply->role, reply->proof.data,
					 reply->proof.len)) {
		RG_WARN("gamesrv at %s does not prove the cluster secret; dropping the link",
			NET_SESSION_PEER(s));
		return -EACCES;
	}
	link->greeted = true;
	atomic_store(&gw->upstream_id, net_session_get_id(s));
	gw_metrics_link_changed(gw, true);
	RG_INFO("gamesrv link up (%s)", NET_SESSION_PEER(s));
	gw_route_link_changed(gw, true);
	return 0;
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	struct gateway *gw = net_session_service_user(s);
	struct upstream_link *link = net_session_user(s);
	Ringgate__Internal__GameToGate *msg;
	int err = 0;

	rg_heartbeat_heard(&link->heartbeat, rg_now_ms());
	msg = ringgate__internal__game_to_gate__unpack(&link->arena.allocator, len, body);
	if (!msg) {
		RG_WARN("malformed frame from gamesrv (%zu bytes); dropping the link", len);
		rg_pb_arena_reset(&link->arena);
		return -EBADMSG;
	}
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO:
		err = on_hello_reply(s, link, msg->hello);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE:
		err = on_challenge(s, link, msg->challenge);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HEARTBEAT:
		break; /* heard above, like every frame */
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT:
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK:
		if (!link->greeted) {
			RG_WARN("gamesrv sent client traffic before HelloReply; dropping the link");
			err = -EPROTO;
		} else if (msg->body_case == RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT) {
			gw_route_to_client(gw, msg->to_client);
		} else {
			gw_route_kick(gw, msg->kick);
		}
		break;
	default:
		RG_WARN("gamesrv sent a GameToGate with no known body; ignored");
		break;
	}
	rg_pb_arena_reset(&link->arena);
	return err;
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct gateway *gw = net_session_service_user(s);
	struct upstream_link *link = net_session_user(s);

	if (link->timer)
		net_timer_destroy(link->timer);
	rg_pb_arena_fini(&link->arena);
	if (!link->greeted) {
		RG_WARN("gamesrv link at %s closed before HelloReply: %s",
			NET_SESSION_PEER(s), net_reason_str(reason));
		return;
	}
	atomic_store(&gw->upstream_id, 0);
	gw_metrics_link_changed(gw, false);
	if (atomic_load(&gw->shutting_down)) {
		/* The clients are gone already and the loops are stopping. */
		RG_INFO("gamesrv link closed for shutdown");
		return;
	}
	RG_WARN("gamesrv link down (%s): %s; redialing", NET_SESSION_PEER(s),
		net_reason_str(reason));
	gw_route_link_changed(gw, false);
}

static const struct net_session_ops upstream_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

void gw_upstream_config(struct gateway *gw, struct net_client_config *out)
{
	*out = (struct net_client_config){
		.host = gw->cfg.gamesrv_host,
		.port = (uint16_t)gw->cfg.gamesrv_port,
		.sessions = 1,
		/* An internal link: come back quickly once gamesrv is back. */
		.backoff_max_ms = 2000,
		.session = {
			.ops = &upstream_ops,
			.service_user = gw,
			.user_size = sizeof(struct upstream_link),
			.max_frame = UPSTREAM_MAX_FRAME,
			.backpressure = NET_BACKPRESSURE_PAUSE,
		},
	};
}
