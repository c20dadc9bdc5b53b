/*
 * gamesrv/config.c: every gamesrv option, one row each (rg/options.h).
 * A new option is a field in config.h and a row here.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rg/log.h>

#include "bundle.h"
#include "lease.h"

#define RG_OPTIONS_TYPE struct gs_config

static const char *const interest_modes[] = { "view", "broadcast", NULL };

/* How far from the origin a zone bound may lie. */
#define COORD_MAX 1000000000L

static const struct rg_option gs_options[] = {
	RG_ROW_STRING("host", host, "127.0.0.1", "address gateways connect to"),
	RG_ROW_INT("port", port, 7701, 0, 65535, "port gateways connect to (0: any free port)"),
	RG_ROW_STRING("dbproxy-host", dbproxy_host, "127.0.0.1", "dbproxy address"),
	RG_ROW_INT("dbproxy-port", dbproxy_port, 7702, 1, 65535, "dbproxy port"),
	RG_ROW_STRING("dbproxies", dbproxies, "",
		   "several dbproxies on one database: HOST:PORT[,HOST:PORT...] (at most 16; "
		   "overrides dbproxy-host/-port; docs/storage.md)"),
	RG_ROW_STRING("instance", instance, "gamesrv", "this server's name in peers' logs"),
	RG_ROW_INT("tick-ms", tick_ms, 20, 1, 1000, "game tick"),
	RG_LINK_OPTIONS(struct gs_config, link, "gateway and dbproxy"),
	RG_ROW_INT("call-deadline-ms", call_deadline_ms, 5000, 1, 600000,
		"deadline of each dbproxy call"),
	RG_ROW_INT("drain-ms", drain_ms, 5000, 0, 600000, "on SIGTERM, wait this long for saves"),
	RG_ROW_INT("autosave-ms", autosave_ms, 30000, 0, 86400000,
		"save moved players this often (0: off)"),
	RG_ROW_INT("zone-id", zone_id, 1, 0, (long)UINT32_MAX, "id of the zone"),
	RG_ROW_INT("zone-min-x", zone_min_x, -1000, -COORD_MAX, COORD_MAX, "zone bounds"),
	RG_ROW_INT("zone-min-y", zone_min_y, -1000, -COORD_MAX, COORD_MAX, "zone bounds"),
	RG_ROW_INT("zone-max-x", zone_max_x, 1000, -COORD_MAX, COORD_MAX, "zone bounds"),
	RG_ROW_INT("zone-max-y", zone_max_y, 1000, -COORD_MAX, COORD_MAX, "zone bounds"),
	RG_ROW_STRING("zones", zones, "",
		   "more zones: ID:MIN_X:MIN_Y:MAX_X:MAX_Y[,...] (ids non-zero, unique)"),
	RG_OPTION_STRING("interest", struct gs_config, interest, "view", interest_modes,
			 "view: each player sees those within view-radius, one update per tick; "
			 "broadcast: every event to the whole zone at once (the old way)"),
	RG_ROW_INT("view-radius", view_radius, 100, 1, COORD_MAX, "a player sees others this near"),
	RG_ROW_INT("view-hysteresis", view_hysteresis, 10, 0, COORD_MAX,
		"... and loses them beyond view-radius + this"),
	RG_ROW_INT("client-budget-bytes", client_budget_bytes, 8192, 64, GS_BUNDLE_BUDGET_MAX,
		"entered/moved bytes per client per tick; the rest waits, coalesced"),
	RG_ROW_INT("max-gateways", max_gateways, 64, 0, 100000,
		"gateway links accepted (0: no limit)"),
	RG_LINK_ACCEPT_OPTIONS(struct gs_config, link, "gateway"),
	RG_ROW_INT("queue-max", queue_max, 65536, 1, 100000000,
		"client requests queued for the game thread"),
	/* At least one request of the largest decode fits. */
	RG_ROW_INT("queue-max-bytes", queue_max_bytes, 64L << 20, 2 * (long)GS_DECODE_LIMIT,
		(long)1 << 40,
		"bytes of requests queued for the game thread (more: SERVICE_UNAVAILABLE)"),
	RG_ROW_INT("resume-grace-ms", resume_grace_ms, 20000, 0, 3600000,
		"after a client's connection drops, keep its player in the world this "
		"long for a resume (0: resume off)"),
	RG_ROW_INT("resume-buffer-bytes", resume_buffer_bytes, 256L << 10, 1024, 1L << 30,
		"messages kept per session for a resume (the oldest go first)"),
	RG_ROW_INT("resume-buffer-total-bytes", resume_buffer_total_bytes, 64L << 20, 1024,
		1L << 40, "messages kept for resumes in all (the oldest go first)"),
	RG_ROW_INT("resume-token-ttl-ms", resume_token_ttl_ms, 600000, 1000, 86400000,
		"a resume token's life (a fresh one is sent at half of it)"),
	RG_ROW_INT("shard", shard, 1, 1, 65535,
		"this game server's shard id: gateways list shards in this order "
		"(--gamesrvs), resume tokens and leases name it"),
	RG_ROW_STRING("zone-shards", zone_shards, "",
		   "which shard owns which zone: ZONE:SHARD[,...] (zones not listed: shard 1; "
		   "every shard gets the same value)"),
	RG_ROW_INT("lease-ms", lease_ms, GS_LEASE_MS_DEFAULT, 300, 3600000,
		"a player lease's length in the database; renewed every third of it "
		"(docs/storage.md \"Leases\")"),
	RG_COMMON_OPTIONS(struct gs_config, common, 2, 7781),
	{ 0 },
};

/* True when zone id is the first zone or one of --zones. */
static bool zone_known(const struct gs_config *cfg, uint32_t id)
{
	if (id == (uint32_t)cfg->zone_id)
		return true;
	for (int i = 0; i < cfg->more_zone_count; i++)
		if (cfg->more_zones[i].id == id)
			return true;
	return false;
}

/* cfg->zone_shard_map from --zone-shards: each entry a known zone, listed
 * once, and a shard 1..65535. Returns 0 or -1 after logging what is wrong. */
static int parse_zone_shards(struct gs_config *cfg)
{
	const char *p = cfg->zone_shards;

	cfg->zone_shard_count = 0;
	while (*p) {
		unsigned long zone, shard;
		char *end;

		zone = strtoul(p, &end, 10);
		if (end == p || *end != ':' || zone == 0 || zone > UINT32_MAX)
			goto bad;
		p = end + 1;
		shard = strtoul(p, &end, 10);
		if (end == p || (*end != ',' && *end != '\0') || (*end == ',' && !end[1]) ||
		    shard == 0 || shard > 65535)
			goto bad;
		p = *end ? end + 1 : end;
		if (!zone_known(cfg, (uint32_t)zone)) {
			RG_ERROR("--zone-shards names zone %lu, which is neither --zone-id nor in "
				 "--zones", zone);
			return -1;
		}
		for (int i = 0; i < cfg->zone_shard_count; i++) {
			if (cfg->zone_shard_map[i].zone == zone) {
				RG_ERROR("--zone-shards names zone %lu twice", zone);
				return -1;
			}
		}
		if (cfg->zone_shard_count == GS_RULES_ZONES_MAX)
			goto bad;
		cfg->zone_shard_map[cfg->zone_shard_count++] =
			(struct gs_zone_shard){ .zone = (uint32_t)zone, .shard = (uint32_t)shard };
	}
	return 0;
bad:
	RG_ERROR("--zone-shards must be ZONE:SHARD[,ZONE:SHARD...] with zone ids of the "
		 "world's zones and shards 1..65535, not \"%s\"", cfg->zone_shards);
	return -1;
}

int gs_config_load(struct gs_config *cfg, int argc, char **argv)
{
	int rc = rg_options_load(gs_options, cfg, &cfg->common, "gamesrv", argc, argv);
	int n;

	if (rc != 0)
		return rc;
	if (!rg_link_options_valid(&cfg->link))
		return -1;
	cfg->more_zone_count = gs_rules_zones_parse(cfg->zones, cfg->more_zones,
						 GS_RULES_ZONES_MAX - 1);
	if (cfg->more_zone_count < 0) {
		RG_ERROR("--zones must be ID:MIN_X:MIN_Y:MAX_X:MAX_Y[,...] with valid bounds, "
			 "at most %d zones", GS_RULES_ZONES_MAX - 1);
		return -1;
	}
	if (cfg->zone_max_x < cfg->zone_min_x || cfg->zone_max_y < cfg->zone_min_y) {
		RG_ERROR("--zone-max-x/y must not be below --zone-min-x/y");
		return -1;
	}
	if (parse_zone_shards(cfg) < 0)
		return -1;
	/* cfg->dbproxy_addrs from --dbproxies, else from dbproxy-host/-port. */
	n = rg_host_ports_resolve(cfg->dbproxies, "dbproxies", cfg->dbproxy_host, "dbproxy-host",
				  (uint16_t)cfg->dbproxy_port, cfg->dbproxy_addrs, GS_DB_LINKS_MAX);
	cfg->dbproxy_count = n < 0 ? 0 : (unsigned)n;
	return n < 0 ? -1 : 0;
}
