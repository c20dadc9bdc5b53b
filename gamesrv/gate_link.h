/*
 * gate_link.h: the gamesrv end of gateway links (GateToGame / GameToGate).
 *
 * Loop side (gs_gate_service_*): a net_server accepts gateways, each link an
 * rg/link.h acceptor: our AuthChallenge, then the gateway's Hello proving
 * the cluster secret (answered with HelloReply and our own proof) before
 * anything else, within the handshake deadline; heartbeats, the dead
 * time and the caps on links still in their handshake are rg/link.h's
 * too. Frames are decoded on the loop thread; client requests and
 * ClientGone go to the game thread as events, and so does the link's end
 * (GATE_DOWN, only for links that were up). Malformed frames close the
 * link.
 *
 * Game side (gs_gate_out_*): what the game thread sends to clients through a
 * gateway link - replies, pushes, kicks - addressed by (link, client
 * session id) and handed to libnet's any-thread net_send_to.
 */
#ifndef GAMESRV_GATE_LINK_H
#define GAMESRV_GATE_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <rg/link.h>

#include "client.pb-c.h"
#include "internal.pb-c.h"
#include "queue.h"
#include "wire.h"

struct gs_gate_service_config {
	const char *host;
	uint16_t port;             /* 0 picks a free port                    */
	unsigned max_gateways;     /* authenticated links; 0 = unlimited     */
	unsigned pending_max;      /* links in their handshake (rg/link.h)   */
	unsigned pending_per_addr; /* ... from one address                   */
	struct rg_link_rules rules;
	size_t max_frame;          /* largest GateToGame body                */
	size_t decode_limit;       /* bytes one decoded frame may take       */
	const struct rg_link_key *link_key; /* the cluster secret (outlives us) */
	uint32_t shard;            /* sent in HelloReply.shard               */
};

struct gs_gate_service {
	struct net_runtime *rt;
	struct gs_game_queue *queue;
	struct net_server *server;
	struct gs_gate_service_config cfg;
	struct rg_link_service link;
};

/*
 * Start listening for gateways; events go to q. g must stay at its address
 * until the runtime is destroyed. Returns 0 or a negative errno (the bind
 * error, e.g. -EADDRINUSE). Main thread.
 */
int gs_gate_service_start(struct gs_gate_service *g, struct net_runtime *rt,
		       struct gs_game_queue *q, const struct gs_gate_service_config *cfg);

/* The port gateways connect to. */
uint16_t gs_gate_service_port(const struct gs_gate_service *g);

/* Stop accepting new gateways; existing links stay (for the drain). */
void gs_gate_service_stop_accepting(struct gs_gate_service *g);

/* Free what start set up; after the runtime has stopped. Main thread. */
void gs_gate_service_fini(struct gs_gate_service *g);

/* ---- game side ------------------------------------------------------------ */

struct gs_gate_out {
	struct net_runtime *rt;
	struct gs_wire_buf buf;
};

/* Send msg, a push, to the given client sessions of one gateway link (one
 * frame); msg_nos: NULL, or each session's ServerMessage.msg_no (the
 * gateway writes it into that client's copy). Returns 0 or a negative
 * errno; a link that has gone drops it. Game thread. */
int gs_gate_out_send(struct gs_gate_out *o, net_session_id link, const uint64_t *sessions,
		  const uint64_t *msg_nos, size_t count,
		  const Ringgate__Client__ServerMessage *msg);

/* Send msg to one client session as the reply to the gateway's request
 * request_id (ClientRequest.request_id; 0 makes it a push). As above. */
int gs_gate_out_reply(struct gs_gate_out *o, net_session_id link, uint64_t session,
		   uint64_t request_id, const Ringgate__Client__ServerMessage *msg);

/* Send msg to one client session as a message of its player's session
 * that answers no request of that gateway session (ToClient.resumed: a
 * replay after a resume, or the answer to a request of an earlier
 * connection); its seq may be non-zero. As above. */
int gs_gate_out_resumed(struct gs_gate_out *o, net_session_id link, uint64_t session,
		     const Ringgate__Client__ServerMessage *msg);

/* As gs_gate_out_reply (resumed: as gs_gate_out_resumed), for a ServerMessage
 * packed already (msg_len bytes at msg): the ToClient around it is
 * written here, so a message kept packed for a resume (stream.c) is not
 * packed a second time. Game thread. */
int gs_gate_out_send_packed(struct gs_gate_out *o, net_session_id link, uint64_t session,
			 uint64_t request_id, bool resumed, const uint8_t *msg, size_t msg_len);

/* Tell a gateway to send Kicked(code, text) to a client and close it. Game thread. */
int gs_gate_out_kick(struct gs_gate_out *o, net_session_id link, uint64_t session,
		  Ringgate__Client__ErrorCode code, const char *text);

/* Send any GameToGate (Handoff, AdoptResult, Redirect) on a gateway link.
 * Returns 0 or a negative errno. Game thread. */
int gs_gate_out_send_body(struct gs_gate_out *o, net_session_id link,
			 const Ringgate__Internal__GameToGate *m);

/* Free the send buffer. */
void gs_gate_out_fini(struct gs_gate_out *o);

#endif /* GAMESRV_GATE_LINK_H */
