/*
 * gateway: the process game clients connect to.
 *
 *   clients --(ClientMessage)--> [client side] --(ClientRequest)--> [shard links] --> gamesrv 1..M
 *   clients <--(ServerMessage)-- [client side] <--(routing)-------- [shard links] <-- gamesrv 1..M
 *
 * Threads and ownership:
 * - Client sessions are spread over the runtime's loops. Everything about a
 *   client (its struct gw_client, its pending requests, its place in the
 *   idle list, the shard it plays on) is owned by its session's loop and
 *   touched only there, through that loop's struct gw_loop. No locks.
 * - One link per game shard (--gamesrvs; upstream.c): a net_client each,
 *   redialed by libnet, each on some loop of its own choosing. A link
 *   publishes its session id in its struct gw_shard once its gamesrv has
 *   answered Hello, and clears it when the link drops. Client loops send
 *   to a shard with net_send_to() (gw_shard_send).
 * - Traffic from a shard to a client is posted to the client's loop
 *   (routing.c), so it meets the client's pending-request table on the
 *   thread that owns it. Link up/down events are posted to every loop the
 *   same way, so each loop sees a shard's link changes in order with that
 *   shard's replies; each loop keeps its own view of which links are up.
 *
 * Every client request is a call that always ends: it gets the reply from
 * a shard, or Error TIMEOUT at its deadline, or Error SERVICE_UNAVAILABLE at
 * once when the link to the shard it waits on is (or goes) down.
 *
 * Session ids on the wire (ClientRequest.session, ToClient.sessions, ...;
 * docs/protocol.md section 11) are the gateway's own, unique in the
 * cluster: gateway_id << 48 | loop << 40 | a per-loop count from 1. The
 * owning loop is read from the id (gw_route_loop).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <rg/link.h>
#include <rg/link_auth.h>
#include <rg/pb_arena.h>
#include <rg/throttle.h>

#include "client.pb-c.h"
#include "config.h"
#include "internal.pb-c.h"

/* The wire session id's fields (see the top of this file). */
#define GW_SESSION_GATEWAY_SHIFT 48
#define GW_SESSION_LOOP_SHIFT 40
#define GW_SESSION_COUNT_MASK ((UINT64_C(1) << GW_SESSION_LOOP_SHIFT) - 1)

struct gw_client;
struct gw_metrics;
struct gw_web;

/* A doubly linked list node; a list head is a node pointing at itself. */
struct gw_link {
	struct gw_link *prev, *next;
};

/* What happened to client requests on one loop; summed and logged at exit. */
struct gw_counters {
	uint64_t forwarded;      /* requests sent to gamesrv                 */
	uint64_t replied;        /* ... answered by gamesrv in time          */
	uint64_t timed_out;      /* ... answered TIMEOUT by the gateway      */
	uint64_t unavailable;    /* answered SERVICE_UNAVAILABLE (link down) */
	uint64_t refused;        /* BAD_REQUEST / RATE_LIMITED / INTERNAL    */
	uint64_t late_replies;   /* replies dropped: the request had ended   */
	uint64_t redirected;     /* requests resent to another shard         */
	uint64_t handoffs;       /* handoffs relayed to their target shard   */
	uint64_t kicked;         /* clients kicked by the gateway or gamesrv */
	uint64_t flooders;       /* ... of them for flooding past msg_rate   */
};

/* What one loop owns. Touched only on that loop's thread (after start). */
struct gw_loop {
	struct gateway *gw;
	struct net_loop *net;
	struct rg_calls *calls;        /* pending client requests, by call id  */
	struct rg_pb_arena arena;      /* decodes of client frames             */
	struct net_timer *tick;        /* expires calls, kicks idle clients    */
	/* This loop's view of each shard's link, by shard id (1..M; [0] is
	 * never up): changed only by the posted link events. */
	bool link_up[GW_SHARDS_MAX + 1];
	uint64_t sessions_made;        /* the count of the last session id     */
	struct gw_link handoffs;       /* struct gw_handoff: relayed, in flight */
	struct gw_client **buckets;    /* session id -> client, chained        */
	size_t bucket_mask;
	struct gw_link idle;           /* clients, least recently heard first  */
	struct gw_counters counters;
	uint64_t rejected_logged;      /* loop 0: accepts refused, as logged    */
	uint64_t rejected_logged_ms;   /* loop 0: when that was logged          */
};

/* One game shard's link (upstream.c): set up by main, then its session
 * field is the only one that changes. */
struct gw_shard {
	struct gateway *gw;
	uint32_t id;                     /* 1..M: its place in --gamesrvs      */
	struct net_client *client;       /* libnet's dialer, redialing         */
	struct rg_link_service link;     /* the link's rules (rg/link.h)       */
	_Atomic uint64_t session;        /* greeted link session, 0 = down     */
};

/* The process-wide state. Fields after cfg are set up by main before the
 * runtime starts, except those marked atomic, which any thread may read. */
struct gateway {
	struct gw_config cfg;
	struct rg_link_key link_key;     /* read-only once loaded             */
	struct net_runtime *rt;
	struct net_server *clients;
	struct net_server *ws_clients;   /* NULL when --ws-port is off        */
	struct gw_web *web;              /* ws.c: the page's files, read-only */
	struct gw_shard shards[GW_SHARDS_MAX]; /* shards[i] is shard i + 1   */
	unsigned shard_count;            /* M = cfg.shard_count               */
	struct gw_loop *loops;           /* one per runtime loop, same index */
	unsigned loop_count;
	struct gw_metrics *metrics;      /* metrics.c; updated from any thread */
	/* tls.c: with --tls on, the TLS context of the client listeners (NULL:
	 * plaintext). A WebSocket listener gets wss by setting it as its
	 * session config's .tls too; SIGHUP reloads both at once. */
	struct net_tls *client_tls;
	struct rg_throttle *logins;      /* login_guard.c; any thread (locked) */

	atomic_uint client_count;        /* connected client sessions         */
	atomic_bool shutting_down;
	atomic_uint loops_finished;      /* gw_loops_finish progress          */
};

/* ---- client side (client_side.c) ------------------------------------ */

/*
 * The client-transport seam: how a client's messages travel. TCP clients
 * send and get varint-delimited frames (client_side.c); WebSocket clients
 * one binary message per ClientMessage / ServerMessage (ws.c). Everything
 * else about a client (requests, limits, rates, idle kicks, the login
 * guard) is client_side.c's, written once for both. Hooks run on the
 * session's loop thread.
 */
struct gw_transport {
	/* Queue one packed ServerMessage for the client: 0 or a negative code. */
	int (*send)(struct net_session *s, const uint8_t *msg, size_t len);
	/* Queue a ServerMessage packed once for many clients (gw_frame_pack),
	 * with suffix (this client's own fields: gw_msg_no_field) after it:
	 * 0 or a negative code. */
	int (*send_shared)(struct net_session *s, struct net_buf *msg, const uint8_t *suffix,
			   size_t suffix_len);
	/* Close the client after what was queued (a kick, a bad message). */
	void (*close)(struct net_session *s);
};

/* Bytes of a client session's user area that client_side.c owns; a
 * transport keeps its own state right after them (aligned for anything). */
size_t gw_client_area_size(void);

/* A transport's session became a client: count it, start its idle clock,
 * kick it at once when the gateway is full or draining. */
void gw_client_open(struct net_session *s, const struct gw_transport *tp);

/* One complete ClientMessage (its bytes, no framing) from an open client. */
void gw_client_message(struct net_session *s, const uint8_t *body, size_t len);

/* A transport's control frame (a WebSocket ping or pong) from an open
 * client: it takes a token of the message rate like a message. False when
 * over the rate; past --flood-refusals in a row the client is kicked
 * (RATE_LIMITED), as for messages. */
bool gw_client_admit_control(struct net_session *s);

/* An open client's session ended (its on_disconnected). */
void gw_client_gone(struct net_session *s, enum net_reason reason);

/* Fill in the TCP client-facing server config (ops, user area, limits). */
void gw_clients_config(struct gateway *gw, struct net_server_config *out /* OUT */);

/* Fill in the limits every client listener shares (session caps, per-address
 * counts and rates, frame size, send queue, partial-message deadline);
 * the caller sets host, port, ops and user area. */
void gw_clients_limits(struct gateway *gw, struct net_server_config *out /* OUT */);

/* ---- WebSocket clients and the world page (ws.c, http.c) -------------- */

/* Fill in the WebSocket listener's config, and load the page's files from
 * --web-dir into memory (a missing directory leaves the page off, logged).
 * Returns 0 or a negative code (logged). Main thread, before the runtime
 * starts. */
int gw_ws_config(struct gateway *gw, struct net_server_config *out /* OUT */);

/* Free the page's files; after the runtime has stopped. */
void gw_ws_fini(struct gateway *gw);

/* Create every loop's state (client table, call table, timer) and the
 * login guard; before net_runtime_start. Returns 0 or a negative code. */
int gw_loops_create(struct gateway *gw);

/* Start every loop's housekeeping timer (posted; after net_runtime_start). */
int gw_loops_start(struct gateway *gw);

/* Post "kick every client with SHUTTING_DOWN" to every loop. Any thread. */
void gw_loops_kick_all(struct gateway *gw);

/* Post "stop your timer" to every loop; gw->loops_finished counts the loops
 * that have done it. Any thread, before net_runtime_stop. */
void gw_loops_finish(struct gateway *gw);

/* Free the loops' state; after net_runtime_stop. */
void gw_loops_destroy(struct gateway *gw);

/* On loop gl's thread: the link to shard went up or down. Down fails the
 * pending requests waiting on that shard with SERVICE_UNAVAILABLE and
 * tells the clients playing on it (they stay connected). */
void gw_loop_link_changed(struct gw_loop *gl, uint32_t shard, bool up);

/* On loop gl's thread: shard `from` sent a Redirect (its request for
 * r->session goes to r->shard instead), a Handoff (the session's player
 * moves to h->target_shard) or an AdoptResult (the target shard's word on
 * such a move). Each is checked against what this loop knows (the
 * session, its pending request, the handoff in flight); what does not fit
 * is logged and refused or dropped, never trusted (docs/protocol.md
 * section 11). */
void gw_loop_redirect(struct gw_loop *gl, uint32_t from, const Ringgate__Internal__Redirect *r);
void gw_loop_handoff(struct gw_loop *gl, uint32_t from, const Ringgate__Internal__Handoff *h);
void gw_loop_adopt_result(struct gw_loop *gl, uint32_t from,
			  const Ringgate__Internal__AdoptResult *r);

/* msg packed into a new shared frame holding one reference (the
 * caller's), or NULL when memory is short. Any thread. */
struct net_buf *gw_frame_pack(const Ringgate__Client__ServerMessage *msg);

/* Bytes of the ServerMessage.msg_no field as a suffix (gw_transport
 * send_shared): its tag and a varint. */
#define GW_MSG_NO_FIELD_MAX 11

/* msg_no as a field appended to a packed ServerMessage (protobuf merges
 * it in) into out; its length, 0 for msg_no 0 (not numbered). */
size_t gw_msg_no_field(uint64_t msg_no, uint8_t out[GW_MSG_NO_FIELD_MAX]);

/* What a delivery from a shard is (routing.c -> gw_loop_deliver). */
struct gw_delivery {
	uint32_t shard;          /* the shard that sent it                   */
	uint64_t request_id;     /* the request it answers; 0: a push        */
	unsigned body;           /* its ServerMessage body case              */
	bool kick;               /* close the client after it                */
};

/*
 * On loop gl's thread: shard d->shard sent `frame` (a packed ServerMessage,
 * shared with the other clients it names: it is queued by reference; the
 * caller keeps its reference) for client `session`, numbered msg_no for it
 * (0: not numbered; docs/protocol.md section 10); with d->kick, close the
 * client after it. A reply (d->request_id != 0: the
 * ClientRequest.request_id it answers) is delivered only while that
 * request of that client is pending: a late reply to a request that
 * already got TIMEOUT is dropped, even when the client has reused its seq
 * since. request_id 0 is a push. A delivered LoginReply or ResumeReply
 * puts the client on d->shard; a LogoutReply takes it off.
 */
void gw_loop_deliver(struct gw_loop *gl, uint64_t session, const struct gw_delivery *d,
		     struct net_buf *frame, uint64_t msg_no);

/* ---- TLS (tls.c, linked into the executable only) --------------------- */

/* With --tls on: make gw->client_tls from --tls-cert/--tls-key and add its
 * metrics. Returns 0, or -1 after logging why. Main thread, before the
 * client listener starts. */
int gw_tls_setup(struct gateway *gw);

/* SIGHUP: reread --tls-cert/--tls-key for new connections (live ones keep
 * theirs); a bad file is logged and the old certificate stays. Main thread. */
void gw_tls_reload(void *gw);

/* Free gw->client_tls; after net_runtime_destroy. */
void gw_tls_fini(struct gateway *gw);

/* The metrics registry (NULL without gw_metrics_init), for tls.c. */
struct rg_metrics *gw_metrics_registry(struct gateway *gw);

/* ---- login guard (login_guard.c) ------------------------------------- */

/* Room for a client's IP address as text ("[v6]" included), NUL too. */
#define GW_ADDR_MAX 64

/* Create / free gw->logins from the config. Create returns 0 or a
 * negative code. Main thread, before / after the loops run. */
int gw_guard_create(struct gateway *gw);
void gw_guard_destroy(struct gateway *gw);

/*
 * A login from addr: 0 when it may go on (*no_create: the address's
 * account-creation quota is spent), or a negative code with the Error to
 * answer at once in *code and text. Any loop thread.
 */
int gw_guard_login(struct gateway *gw, const char *addr, bool *no_create /* OUT */,
		   Ringgate__Client__ErrorCode *code /* OUT */, char *text /* OUT */,
		   size_t text_size);

/* gamesrv answered a login from addr with the packed ServerMessage frame:
 * count a wrong password, clear failures (and spend quota on a create)
 * on success. Any loop thread. */
void gw_guard_login_replied(struct gateway *gw, const char *addr, const uint8_t *frame,
			    size_t len);

/* A client from addr went with its login unanswered: its answer will not
 * be seen, so it counts as a failure (a guesser cannot dodge the count by
 * hanging up). Any loop thread. */
void gw_guard_login_abandoned(struct gateway *gw, const char *addr);

/* ---- shard links (upstream.c) ----------------------------------------- */

/* Set up one link per shard of cfg.shards and start dialing them all
 * (before or after net_runtime_start). Returns 0 or a negative errno
 * (logged). Main thread. */
int gw_shards_start(struct gateway *gw);

/* Stop dialing and close every shard link (the drain). Main thread. */
void gw_shards_stop(struct gateway *gw);

/* Free the links' services; after the runtime has stopped. Harmless when
 * gw_shards_start did not run or failed. Main thread. */
void gw_shards_fini(struct gateway *gw);

/* Send one GateToGame to shard (1..M) from any thread. Returns 0 when
 * handed to libnet, -ENOTCONN when that link is down, or another negative
 * code. */
int gw_shard_send(struct gateway *gw, uint32_t shard, const Ringgate__Internal__GateToGame *msg);

/* ---- routing (routing.c) --------------------------------------------- */

/* The loop that owns a wire session id, or NULL for an id that names
 * another gateway or no loop of this runtime (a corrupt id from a shard). */
struct gw_loop *gw_route_loop(struct gateway *gw, uint64_t session);

/* From shard's link loop: deliver a ToClient / Kick from that shard to the
 * loops of the named sessions. Malformed ones are logged and dropped (0).
 * Returns a negative errno when a delivery could not be queued (a client
 * loop past its post queue bound, or out of memory): the caller must then
 * drop that shard's link, so that both sides resync (never a lost reply). */
int gw_route_to_client(struct gateway *gw, uint32_t shard,
		       const Ringgate__Internal__ToClient *tc);
int gw_route_kick(struct gateway *gw, uint32_t shard, const Ringgate__Internal__Kick *kick);

/* From shard's link loop: carry a Redirect, Handoff or AdoptResult (the
 * body of msg) to the loop of the session it names (gw_loop_redirect ...),
 * in order with that shard's replies. An unknown session is logged and
 * dropped (0). Returns a negative errno when it could not be queued: the
 * caller must drop the link, as for gw_route_to_client. */
int gw_route_relay(struct gateway *gw, uint32_t shard, const Ringgate__Internal__GameToGate *msg);

/* From shard's link loop: tell every loop its link went up or down. */
void gw_route_link_changed(struct gateway *gw, uint32_t shard, bool up);

/* ---- metrics (metrics.c) --------------------------------------------- */

/* Create the registry and every metric (libnet's figures included); after
 * net_runtime_create. Returns 0 or -ENOMEM. Main thread. */
int gw_metrics_init(struct gateway *gw);

/* A request of ClientMessage body case `kind` got gamesrv's reply after
 * elapsed_ns. Any thread. */
void gw_metrics_request_done(struct gateway *gw, unsigned kind, uint64_t elapsed_ns);

/* The link to shard went up (Hello answered) or down. Any thread. */
void gw_metrics_link_changed(struct gateway *gw, uint32_t shard, bool up);

/* A request went to shard. Any thread. */
void gw_metrics_request_sent(struct gateway *gw, uint32_t shard);

/* A request was redirected to another shard. Any thread. */
void gw_metrics_redirected(struct gateway *gw);

/* How a relayed handoff ended. */
enum gw_handoff_end {
	GW_HANDOFF_OK,        /* the target adopted the player              */
	GW_HANDOFF_FAILED,    /* refused, the target down, or not adopted   */
	GW_HANDOFF_ABANDONED, /* no word from the target in time, or the
			       * source went down: nobody left to tell      */
	GW_HANDOFF_ENDS
};

/* A handoff the gateway relayed (or refused) ended so. Any thread. */
void gw_metrics_handoff(struct gateway *gw, enum gw_handoff_end end);

/* Serve GET /metrics on --admin-host/--admin-port (port 0: off).
 * Returns 0, or a negative code (logged) when the port cannot be bound.
 * Main thread. */
int gw_admin_start(struct gateway *gw);

/* Stop serving metrics; before the runtime stops. Main thread. */
void gw_admin_stop(struct gateway *gw);

/* Free the registry; after the runtime has stopped. Main thread. */
void gw_metrics_fini(struct gateway *gw);

#endif /* GATEWAY_GATEWAY_H */
