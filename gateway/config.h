/*
 * gateway/config.h: the gateway's settings, one row each in config.c
 * (rg/options.h): the rows' defaults, then the [gateway] section of
 * --config, then flags.
 */
#ifndef GATEWAY_CONFIG_H
#define GATEWAY_CONFIG_H

#include <rg/options.h>

/* Game shards one gateway links to (--gamesrvs), at most. */
#define GW_SHARDS_MAX 16

struct gw_config {
	char *host;               /* client-facing address                     */
	long port;                /* client-facing port                        */
	bool tls;                 /* clients must speak TLS on port            */
	char *tls_cert, *tls_key; /* PEM files of the client listener          */
	long ws_port;             /* WebSocket + page port (-1: off)           */
	char *ws_port_file;       /* write the bound WebSocket port here       */
	char *web_dir;            /* the page's files (web/ of the sources)    */
	long ws_handshake_timeout_ms; /* the HTTP request must be whole by then */
	char *gamesrv_host;       /* shard 1 when --gamesrvs is empty          */
	long gamesrv_port;
	char *gamesrvs;           /* HOST:PORT[,...]: shard i is the i-th      */
	long gateway_id;          /* top 16 bits of every wire session id      */
	char *instance;           /* name sent in Hello, for gamesrv's logs    */
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
	long logins_per_addr_per_sec; /* login attempts per IP (login_guard.c) */
	long login_failures_per_addr; /* wrong passwords before a backoff      */
	long creates_per_addr_per_hour; /* new accounts per IP                 */
	long request_timeout_ms;  /* deadline of each forwarded request        */
	long max_inflight;        /* requests one client may have pending      */
	struct rg_link_options link; /* the gamesrv link's timings         */
	long drain_ms;            /* how long a drain may wait for clients     */
	struct rg_common_config common; /* loops, engine, log, admin, secret   */
	/* From --gamesrvs (or gamesrv-host/-port): shards[i] is shard i + 1. */
	struct rg_host_port shards[GW_SHARDS_MAX];
	unsigned shard_count;     /* 1..GW_SHARDS_MAX once loaded             */
};

/*
 * Fill *cfg from the table, --config's [gateway] section and the flags,
 * check what one row cannot (dead-ms > heartbeat-ms), and start logging.
 * Returns 0 to go on, 1 after --help (exit 0), -1 after printing an error
 * (exit 2). Main thread, once.
 */
int gw_config_load(struct gw_config *cfg, int argc, char **argv);

/* Fill *cfg with the table's defaults only (for harnesses that build a
 * gateway without a command line): one shard, gamesrv-host:gamesrv-port. */
void gw_config_defaults(struct gw_config *cfg);

#endif /* GATEWAY_CONFIG_H */
