/*
 * upstream: the gateway's one link to gamesrv.
 *
 * libnet's client service dials it and redials it with backoff whenever it
 * drops. The link itself - the handshake (gamesrv's AuthChallenge, our
 * Hello with a proof, gamesrv's HelloReply with its own), its deadline,
 * heartbeats and the dead-peer rule - is rg/link.h's, the same as every
 * internal link's; this file adds what the gateway does with it:
 *
 *   connected --handshake (rg/link.h)--> up: published, announced
 *       ^                                 |
 *       +--- redial (libnet) <--- down <--+  (dropped, dead, bad frame)
 *
 * Only an up link is published (gateway.upstream_id) and announced to the
 * client loops; clients never see the handshake. Anything malformed from
 * gamesrv drops the link: it is a peer, not a trusted part of this
 * process.
 */
#include <errno.h>
#include <stdlib.h>

#include <rg/link.h>
#include <rg/log.h>

#include "gateway.h"

/* ToClient frames name many sessions; allow far more than a client frame. */
#define UPSTREAM_MAX_FRAME (4u << 20)

/* A decode of one upstream frame may take this many times its size. */
#define UPSTREAM_DECODE_FACTOR 4

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

/* The link is up: publish it, then tell the client loops. */
static int on_up(struct rg_link *link)
{
	struct gateway *gw = rg_link_service_user(link);
	struct net_session *s = rg_link_session(link);

	atomic_store(&gw->upstream_id, net_session_get_id(s));
	gw_metrics_link_changed(gw, true);
	RG_INFO("gamesrv link up (%s)", NET_SESSION_PEER(s));
	gw_route_link_changed(gw, true);
	return 0;
}

static int on_message(struct rg_link *link, ProtobufCMessage *m, void *token)
{
	struct gateway *gw = rg_link_service_user(link);
	const Ringgate__Internal__GameToGate *msg = (const Ringgate__Internal__GameToGate *)m;

	int err = 0;

	(void)token;
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT:
		err = gw_route_to_client(gw, msg->to_client);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK:
		err = gw_route_kick(gw, msg->kick);
		break;
	default:
		RG_WARN("gamesrv sent a GameToGate with no known body; ignored");
		break;
	}
	if (err < 0)
		RG_ERROR("a message from gamesrv could not reach its clients (%s): dropping the "
			 "link so that gamesrv and the clients resync", net_strerror(err));
	return err;
}

static void on_down(struct rg_link *link, bool was_up, enum net_reason reason)
{
	struct gateway *gw = rg_link_service_user(link);

	if (!was_up)
		return; /* never published: rg/link.h logged why */
	atomic_store(&gw->upstream_id, 0);
	gw_metrics_link_changed(gw, false);
	if (atomic_load(&gw->shutting_down)) {
		/* The clients are gone already and the loops are stopping. */
		RG_INFO("gamesrv link closed for shutdown");
		return;
	}
	RG_WARN("gamesrv link down (%s): %s; redialing", NET_SESSION_PEER(rg_link_session(link)),
		net_reason_str(reason));
	gw_route_link_changed(gw, false);
}

static const struct rg_link_ops upstream_ops = {
	.on_up = on_up,
	.on_message = on_message,
	.on_down = on_down,
};

int gw_upstream_config(struct gateway *gw, struct net_client_config *out)
{
	const struct rg_link_config link = {
		.side = RG_LINK_DIALER,
		.role = "gateway",
		.peer_role = "gamesrv",
		.instance = gw->cfg.instance,
		.key = &gw->link_key,
		.rules = rg_link_rules_of(&gw->cfg.link),
		.in = rg_link_game_to_gate,
		.out = rg_link_gate_to_game,
		.max_frame = UPSTREAM_MAX_FRAME,
		.decode_limit = UPSTREAM_DECODE_FACTOR * (size_t)UPSTREAM_MAX_FRAME,
		.ops = &upstream_ops,
		.user = gw,
	};
	int err = rg_link_service_init(&gw->upstream_link, &link);

	if (err < 0)
		return err;
	*out = (struct net_client_config){
		.host = gw->cfg.gamesrv_host,
		.port = (uint16_t)gw->cfg.gamesrv_port,
		.sessions = 1,
		/* An internal link: come back quickly once gamesrv is back. */
		.backoff_max_ms = 2000,
	};
	rg_link_session_config(&gw->upstream_link, &out->session);
	return 0;
}
