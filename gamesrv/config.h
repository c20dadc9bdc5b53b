/*
 * gamesrv/config.h: gamesrv's settings, one row each in config.c
 * (rg/options.h): the rows' defaults, then the [gamesrv] section of
 * --config, then flags.
 */
#ifndef GAMESRV_CONFIG_H
#define GAMESRV_CONFIG_H

#include <rg/options.h>

#include "db_link.h"
#include "rules.h"
#include "world.h"

/* Largest frame on an internal link (the gateway's limit for this link
 * too: a client message it accepts must never be too big here), and what
 * one decode may allocate. */
#define GS_INTERNAL_MAX_FRAME (4u << 20)
#define GS_DECODE_LIMIT (4u * GS_INTERNAL_MAX_FRAME)

struct gs_config {
	char *host;               /* address gateways connect to               */
	long port;                /* port gateways connect to (0: any)         */
	char *dbproxy_host;
	long dbproxy_port;
	char *dbproxies;          /* HOST:PORT[,...]; "": the two above        */
	char *instance;           /* name sent in Hello, for dbproxy's logs    */
	long tick_ms;
	struct rg_link_options link; /* both internal links; admission of
					gateway links                      */
	long call_deadline_ms;    /* each dbproxy call                         */
	long drain_ms;            /* on SIGTERM, how long saves may take       */
	long autosave_ms;         /* 0: no autosave                            */
	long zone_id;
	long zone_min_x, zone_min_y, zone_max_x, zone_max_y;
	char *zones;              /* more zones: ID:MIN_X:MIN_Y:MAX_X:MAX_Y,...  */
	char *interest;           /* "view" or "broadcast"                     */
	long view_radius, view_hysteresis; /* interest management (interest.h) */
	long client_budget_bytes; /* entered/moved bytes per client per tick   */
	long max_gateways;        /* gateway links accepted (0: any)           */
	long queue_max;           /* client requests queued for the game       */
	long queue_max_bytes;     /* ... and their bytes                       */
	long resume_grace_ms;     /* a dropped player waits this long (0: off) */
	long resume_buffer_bytes; /* messages kept per session for a resume    */
	long resume_buffer_total_bytes; /* ... and for all sessions            */
	long resume_token_ttl_ms; /* a resume token's life                     */
	long shard;               /* this shard's id (docs/protocol.md 11)     */
	char *zone_shards;        /* ZONE:SHARD[,...]; unlisted zones: shard 1 */
	long lease_ms;            /* a player lease's length                   */
	struct rg_common_config common; /* loops, engine, log, admin, secret   */
	/* Derived by gs_config_load from zones. */
	struct gs_zone_bounds more_zones[GS_RULES_ZONES_MAX];
	int more_zone_count;
	/* Derived from zone_shards: which shard owns which listed zone. */
	struct gs_zone_shard zone_shard_map[GS_RULES_ZONES_MAX];
	int zone_shard_count;
	/* Derived from dbproxies (or dbproxy-host/-port): the dbproxies, in
	 * order (db_link.h: their index). */
	struct rg_host_port dbproxy_addrs[GS_DB_LINKS_MAX];
	unsigned dbproxy_count;
};

/*
 * Fill *cfg from the table, --config's [gamesrv] section and the flags,
 * check what one row cannot (dead-ms > heartbeat-ms, zone bounds in
 * order, the dbproxies list, zone-shards naming known zones), and start
 * logging. Returns 0 to go on, 1 after --help (exit 0), -1 after printing
 * an error (exit 2). Main thread, once.
 */
int gs_config_load(struct gs_config *cfg, int argc, char **argv);

#endif /* GAMESRV_CONFIG_H */
