/*
 * gateway: the process game clients connect to.
 *
 *   clients --(ClientMessage)--> [client side] --(ClientRequest)--> [upstream] --> gamesrv
 *   clients <--(ServerMessage)-- [client side] <--(routing)-------- [upstream] <-- gamesrv
 *
 * Threads and ownership:
 * - Client sessions are spread over the runtime's loops. Everything about a
 *   client (its struct gw_client, its pending requests, its place in the
 *   idle list) is owned by its session's loop and touched only there, through
 *   that loop's struct gw_loop. No locks.
 * - The one upstream session (net_client, redialed by libnet) lives on some
 *   loop of its own choosing. It publishes its session id in
 *   gateway.upstream_id once gamesrv has answered Hello, and clears it when
 *   the link drops. Client loops send upstream with net_send_to().
 * - Traffic from gamesrv to a client is posted to the client's loop
 *   (routing.c), so it meets the client's pending-request table on the
 *   thread that owns it. Link up/down events are posted to every loop the
 *   same way, so each loop sees link changes in order with the replies.
 *
 * Every client request is a call that always ends: it gets the reply from
 * gamesrv, or Error TIMEOUT at its deadline, or Error SERVICE_UNAVAILABLE at
 * once when the link is (or goes) down.
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <rg/link_auth.h>
#include <rg/pb_arena.h>

#include "client.pb-c.h"
#include "internal.pb-c.h"

/* Settings: defaults, then the [gateway] section of --config, then flags. */
struct gw_config {
	char *host;               /* client-facing address                     */
	long port;                /* client-facing port                        */
	char *gamesrv_host;
	long gamesrv_port;
	char *instance;           /* name sent in Hello, for gamesrv's logs    */
	long loops;               /* libnet loop threads                       */
	char *engine;             /* "uring", "epoll" or "": env, then probe   */
	long max_clients;         /* more get Kicked SERVER_FULL               */
	long max_clients_per_addr; /* live clients from one IP (libnet; 0: any) */
	long connects_per_addr_per_sec; /* new connections per IP (libnet)     */
	long max_frame;           /* largest client frame body                 */
	long frame_timeout_ms;    /* a partial frame must complete this fast   */
	long send_queue_max;      /* bytes queued for an unread client, at most */
	long socket_send_buffer;  /* SO_SNDBUF per client; 0: the kernel's      */
	long idle_timeout_ms;     /* a client silent this long is kicked       */
	long msg_rate;            /* messages per second per client (0: any)   */
	long msg_burst;           /* ... of which this many may come at once   */
	long flood_refusals;      /* RATE_LIMITED answers before a disconnect  */
	long request_timeout_ms;  /* deadline of each forwarded request        */
	long max_inflight;        /* requests one client may have pending      */
	long heartbeat_ms;        /* Heartbeat interval on the gamesrv link    */
	long dead_ms;             /* gamesrv link silent this long is dropped  */
	long shutdown_timeout_ms; /* how long a drain may take                 */
	char *secret_file;        /* the cluster secret (rg/link_auth.h)       */
	bool insecure_no_auth;    /* no handshake with gamesrv (tests only)    */
	char *log_level;
	char *admin_host;         /* admin port (GET /metrics) address         */
	long admin_port;          /* 0: no admin port                          */
};

struct gw_client;
struct gw_metrics;

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
	bool link_up;                  /* this loop's view of the gamesrv link */
	struct gw_client **buckets;    /* session id -> client, chained        */
	size_t bucket_mask;
	struct gw_link idle;           /* clients, least recently heard first  */
	struct gw_counters counters;
	uint64_t rejected_logged;      /* loop 0: accepts refused, as logged    */
	uint64_t rejected_logged_ms;   /* loop 0: when that was logged          */
};

/* The process-wide state. Fields after cfg are set up by main before the
 * runtime starts, except those marked atomic, which any thread may read. */
struct gateway {
	struct gw_config cfg;
	struct rg_link_key link_key;     /* read-only once loaded             */
	struct net_runtime *rt;
	struct net_server *clients;
	struct net_client *upstream;
	struct gw_loop *loops;           /* one per runtime loop, same index */
	unsigned loop_count;
	struct gw_metrics *metrics;      /* metrics.c; updated from any thread */

	_Atomic uint64_t upstream_id;    /* greeted gamesrv session, 0 = down */
	atomic_uint client_count;        /* connected client sessions         */
	atomic_bool shutting_down;
	atomic_uint loops_finished;      /* gw_loops_finish progress          */
};

/* ---- client side (client_side.c) ------------------------------------ */

/* Fill in the client-facing server config (ops, user area, limits). */
void gw_clients_config(struct gateway *gw, struct net_server_config *out /* OUT */);

/* Create every loop's state (client table, call table, timer); before
 * net_runtime_start. Returns 0 or a negative code. */
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

/* On loop gl's thread: the gamesrv link went up or down. Down fails every
 * pending request with SERVICE_UNAVAILABLE and tells every client. */
void gw_loop_link_changed(struct gw_loop *gl, bool up);

/*
 * On loop gl's thread: gamesrv sent `frame` (a packed ServerMessage) for
 * client `session`; with kick, close the client after it. A reply
 * (request_id != 0: the ClientRequest.request_id it answers) is delivered
 * only while that request of that client is pending: a late reply to a
 * request that already got TIMEOUT is dropped, even when the client has
 * reused its seq since. request_id 0 is a push.
 */
void gw_loop_deliver(struct gw_loop *gl, net_session_id session, uint64_t request_id,
		     const uint8_t *frame, size_t len, bool kick);

/* ---- upstream link (upstream.c) -------------------------------------- */

/* Fill in the gamesrv client-service config. */
void gw_upstream_config(struct gateway *gw, struct net_client_config *out /* OUT */);

/* Send one GateToGame to gamesrv from any thread. Returns 0 when handed to
 * libnet, -ENOTCONN when the link is down, or another negative code. */
int gw_upstream_send(struct gateway *gw, const Ringgate__Internal__GateToGame *msg);

/* ---- routing (routing.c) --------------------------------------------- */

/* The loop that owns a client session id, or NULL for an id that names
 * no loop of this runtime (a corrupt id from gamesrv). */
struct gw_loop *gw_route_loop(struct gateway *gw, net_session_id session);

/* From the upstream loop: deliver a ToClient / Kick from gamesrv to the
 * loops of the named sessions. Malformed ones are logged and dropped. */
void gw_route_to_client(struct gateway *gw, const Ringgate__Internal__ToClient *tc);
void gw_route_kick(struct gateway *gw, const Ringgate__Internal__Kick *kick);

/* From the upstream loop: tell every loop the link went up or down. */
void gw_route_link_changed(struct gateway *gw, bool up);

/* ---- metrics (metrics.c) --------------------------------------------- */

/* Create the registry and every metric (libnet's figures included); after
 * net_runtime_create. Returns 0 or -ENOMEM. Main thread. */
int gw_metrics_init(struct gateway *gw);

/* A request of ClientMessage body case `kind` got gamesrv's reply after
 * elapsed_ns. Any thread. */
void gw_metrics_request_done(struct gateway *gw, unsigned kind, uint64_t elapsed_ns);

/* The gamesrv link went up (Hello answered) or down. Any thread. */
void gw_metrics_link_changed(struct gateway *gw, bool up);

/* Serve GET /metrics on --admin-host/--admin-port (port 0: off; a port
 * that cannot be bound is logged and left off). Main thread. */
void gw_admin_start(struct gateway *gw);

/* Stop serving metrics; before the runtime stops. Main thread. */
void gw_admin_stop(struct gateway *gw);

/* Free the registry; after the runtime has stopped. Main thread. */
void gw_metrics_fini(struct gateway *gw);

#endif /* GATEWAY_GATEWAY_H */
