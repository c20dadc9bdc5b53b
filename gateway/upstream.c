/*
 * upstream: the gateway's links to the game shards, one per entry of
 * --gamesrvs (shard i is the i-th; without it, gamesrv-host:gamesrv-port is
 * shard 1).
 *
 * libnet's client service dials each and redials it with backoff whenever
 * it drops. A link itself - the handshake (gamesrv's AuthChallenge, our
 * Hello with a proof and our gateway id, gamesrv's HelloReply with its own
 * proof and its shard id), its deadline, heartbeats, sealing and the
 * dead-peer rule - is rg/link.h's, the same as every internal link's; this
 * file adds what the gateway does with it, the same for every shard:
 *
 *   connected --handshake (rg/link.h)--> shard id checked --> up: published,
 *       ^                                     |                  announced
 *       |                                     | not this place's shard
 *       +--- redial (libnet) <--- down <------+------------------+
 *                          (dropped, dead, bad frame)
 *
 * Only an up link is published (gw_shard.session) and announced to the
 * client loops; clients never see the handshake. A HelloReply naming
 * another shard than the one this entry of --gamesrvs is (a wrong address
 * in the config) is logged and the link dropped and redialed, so a
 * misconfigured cluster never routes a player to the wrong shard; shard 0
 * means "not told" (a gamesrv from before shards) and is taken as this
 * entry's. Anything malformed from a shard drops its link: it is a peer,
 * not a trusted part of this process.
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

int gw_shard_send(struct gateway *gw, uint32_t shard, const Ringgate__Internal__GateToGame *msg)
{
	net_session_id id;
	size_t len;
	uint8_t *buf;
	int err;

	if (shard == 0 || shard > gw->shard_count)
		return -ENOTCONN;
	id = atomic_load(&gw->shards[shard - 1].session);
	if (id == 0)
		return -ENOTCONN;
	buf = pack_gate_to_game(msg, &len);
	if (!buf)
		return -ENOMEM;
	err = net_send_to(gw->rt, id, buf, len);
	free(buf);
	return err;
}

/* The link is up: check it reached the shard it is for, publish it, then
 * tell the client loops. */
static int on_up(struct rg_link *link)
{
	struct gw_shard *sh = rg_link_service_user(link);
	struct net_session *s = rg_link_session(link);
	uint32_t told = rg_link_peer_id(link);

	if (told != 0 && told != sh->id) {
		RG_ERROR("gamesrv link %u (%s) reached shard %u, not shard %u: --gamesrvs lists the "
			 "shards in order of their ids; dropping the link", sh->id,
			 NET_SESSION_PEER(s), told, sh->id);
		return -EPROTO;
	}
	if (told == 0 && sh->gw->shard_count > 1)
		RG_WARN("gamesrv link %u (%s) did not say which shard it is (a gamesrv from before "
			"shards); taken as shard %u, its place in --gamesrvs", sh->id,
			NET_SESSION_PEER(s), sh->id);
	atomic_store(&sh->session, net_session_get_id(s));
	gw_metrics_link_changed(sh->gw, sh->id, true);
	RG_INFO("gamesrv link up (%s, shard %u)", NET_SESSION_PEER(s), sh->id);
	gw_route_link_changed(sh->gw, sh->id, true);
	return 0;
}

static int on_message(struct rg_link *link, ProtobufCMessage *m, void *token)
{
	struct gw_shard *sh = rg_link_service_user(link);
	const Ringgate__Internal__GameToGate *msg = (const Ringgate__Internal__GameToGate *)m;
	int err = 0;

	(void)token;
	switch (msg->body_case) {
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT:
		err = gw_route_to_client(sh->gw, sh->id, msg->to_client);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK:
		err = gw_route_kick(sh->gw, sh->id, msg->kick);
		break;
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_REDIRECT:
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HANDOFF:
	case RINGGATE__INTERNAL__GAME_TO_GATE__BODY_ADOPT_RESULT:
		err = gw_route_relay(sh->gw, sh->id, msg);
		break;
	default:
		RG_WARN("gamesrv (shard %u) sent a GameToGate with no known body; ignored", sh->id);
		break;
	}
	if (err < 0)
		RG_ERROR("a message from gamesrv (shard %u) could not reach its clients (%s): "
			 "dropping the link so that gamesrv and the clients resync", sh->id,
			 net_strerror(err));
	return err;
}

static void on_down(struct rg_link *link, bool was_up, enum net_reason reason)
{
	struct gw_shard *sh = rg_link_service_user(link);
	struct gateway *gw = sh->gw;
	net_session_id id = net_session_get_id(rg_link_session(link));

	/* Not published (never up, or refused by on_up): rg/link.h or on_up
	 * logged why, and no loop was told it was up. */
	if (!was_up || atomic_load(&sh->session) != id)
		return;
	atomic_store(&sh->session, 0);
	gw_metrics_link_changed(gw, sh->id, false);
	if (atomic_load(&gw->shutting_down)) {
		/* The clients are gone already and the loops are stopping. */
		RG_INFO("gamesrv link (shard %u) closed for shutdown", sh->id);
		return;
	}
	RG_WARN("gamesrv link down (%s, shard %u): %s; redialing",
		NET_SESSION_PEER(rg_link_session(link)), sh->id, net_reason_str(reason));
	gw_route_link_changed(gw, sh->id, false);
}

static const struct rg_link_ops upstream_ops = {
	.on_up = on_up,
	.on_message = on_message,
	.on_down = on_down,
};

/* Set up sh's link service and fill in its client-service config.
 * Returns 0 or a negative errno (logged). */
static int shard_config(struct gateway *gw, struct gw_shard *sh, struct net_client_config *out)
{
	const struct rg_link_config link = {
		.side = RG_LINK_DIALER,
		.role = "gateway",
		.peer_role = "gamesrv",
		.instance = gw->cfg.instance,
		.id = (uint32_t)gw->cfg.gateway_id,
		.key = &gw->link_key,
		.rules = rg_link_rules_of(&gw->cfg.link),
		.in = rg_link_game_to_gate,
		.out = rg_link_gate_to_game,
		.max_frame = UPSTREAM_MAX_FRAME,
		.decode_limit = UPSTREAM_DECODE_FACTOR * (size_t)UPSTREAM_MAX_FRAME,
		.ops = &upstream_ops,
		.user = sh,
	};
	const struct rg_host_port *addr = &gw->cfg.shards[sh->id - 1];
	int err = rg_link_service_init(&sh->link, &link);

	if (err < 0)
		return err;
	*out = (struct net_client_config){
		.host = addr->host,
		.port = addr->port,
		.sessions = 1,
		/* An internal link: come back quickly once gamesrv is back. */
		.backoff_max_ms = 2000,
	};
	rg_link_session_config(&sh->link, &out->session);
	return 0;
}

int gw_shards_start(struct gateway *gw)
{
	gw->shard_count = gw->cfg.shard_count;
	for (unsigned i = 0; i < gw->shard_count; i++) {
		struct gw_shard *sh = &gw->shards[i];
		struct net_client_config cc;
		int err;

		sh->gw = gw;
		sh->id = i + 1;
		err = shard_config(gw, sh, &cc);
		if (err == 0)
			err = net_client_start(gw->rt, &cc, &sh->client);
		if (err < 0) {
			RG_ERROR("cannot start the gamesrv link to %s:%u (shard %u): %s",
				 gw->cfg.shards[i].host, gw->cfg.shards[i].port, sh->id,
				 net_strerror(err));
			return err;
		}
	}
	return 0;
}

void gw_shards_stop(struct gateway *gw)
{
	for (unsigned i = 0; i < gw->shard_count; i++)
		if (gw->shards[i].client)
			net_client_stop(gw->shards[i].client);
}

void gw_shards_fini(struct gateway *gw)
{
	for (unsigned i = 0; i < gw->shard_count; i++)
		rg_link_service_fini(&gw->shards[i].link);
}
