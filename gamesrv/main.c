/*
 * gamesrv: the game server of a ringgate cluster.
 *
 *   gateways --(GateToGame/GameToGate, port 7701)--> [ loops ] --queue--> [ game thread ]
 *                                                       ^                     |
 *   dbproxy <--(GameToDb/DbToGame, dials 7702)----------+---- net_send_to <---+
 *
 * main() reads like that picture: parse the options, create the libnet
 * runtime, start the game thread, start the gateway service and the
 * dbproxy client, run until SIGTERM/SIGINT, then drain (stop accepting,
 * kick and save every player, wait for dbproxy's replies up to a
 * deadline) and exit 0.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/net.h>
#include <rg/admin.h>
#include <rg/log.h>
#include <rg/options.h>
#include <rg/signals.h>

#include "db_link.h"
#include "game.h"
#include "gate_link.h"
#include "metrics.h"
#include "queue.h"
#include "rules.h"

/* Largest frame on an internal link (the gateway's limit for this link
 * too: a client message it accepts must never be too big here), and what
 * one decode may allocate. */
#define INTERNAL_MAX_FRAME (4u << 20)
#define DECODE_LIMIT (4u * INTERNAL_MAX_FRAME)

struct options {
	char *listen_host;
	long listen_port;
	char *dbproxy_host;
	long dbproxy_port;
	char *instance;
	long tick_ms;
	long heartbeat_ms;
	long dead_ms;
	long call_deadline_ms;
	long drain_ms;
	long autosave_ms;
	long zone_id;
	long zone_min_x, zone_min_y, zone_max_x, zone_max_y;
	char *zones;
	char *interest;
	long view_radius, view_hysteresis, client_budget_bytes;
	long max_gateways;
	long queue_max;
	long loops;
	char *engine;
	char *log_level;
	char *port_file;
	char *admin_host;
	long admin_port;
	char *secret_file;
	bool insecure_no_auth;
};

/* Check a parsed integer option; prints why not. */
static bool in_range(const char *name, long v, long min, long max)
{
	if (v >= min && v <= max)
		return true;
	fprintf(stderr, "gamesrv: --%s must be %ld..%ld, got %ld\n", name, min, max, v);
	return false;
}

static bool options_valid(const struct options *o, enum rg_log_level *level)
{
	bool ok = in_range("listen-port", o->listen_port, 0, 65535) &&
		  in_range("dbproxy-port", o->dbproxy_port, 1, 65535) &&
		  in_range("tick-ms", o->tick_ms, 1, 1000) &&
		  in_range("heartbeat-ms", o->heartbeat_ms, 10, 600000) &&
		  in_range("dead-ms", o->dead_ms, o->heartbeat_ms + 1, 3600000) &&
		  in_range("call-deadline-ms", o->call_deadline_ms, 1, 600000) &&
		  in_range("drain-ms", o->drain_ms, 0, 600000) &&
		  in_range("autosave-ms", o->autosave_ms, 0, 86400000) &&
		  in_range("zone-id", o->zone_id, 0, UINT32_MAX) &&
		  in_range("zone-max-x", o->zone_max_x, o->zone_min_x, 1000000000) &&
		  in_range("zone-max-y", o->zone_max_y, o->zone_min_y, 1000000000) &&
		  in_range("zone-min-x", o->zone_min_x, -1000000000, 1000000000) &&
		  in_range("zone-min-y", o->zone_min_y, -1000000000, 1000000000) &&
		  in_range("view-radius", o->view_radius, 1, 1000000000) &&
		  in_range("view-hysteresis", o->view_hysteresis, 0, 1000000000) &&
		  in_range("client-budget-bytes", o->client_budget_bytes, 64, BUNDLE_BUDGET_MAX) &&
		  in_range("max-gateways", o->max_gateways, 0, 100000) &&
		  in_range("queue-max", o->queue_max, 1, 100000000) &&
		  in_range("loops", o->loops, 0, 256) &&
		  in_range("admin-port", o->admin_port, 0, 65535);

	if (ok && strcmp(o->interest, "view") != 0 && strcmp(o->interest, "broadcast") != 0) {
		fprintf(stderr, "gamesrv: --interest must be view or broadcast\n");
		ok = false;
	}
	if (ok && rg_log_level_parse(o->log_level, level) < 0) {
		fprintf(stderr, "gamesrv: --log-level must be debug, info, warn or error\n");
		ok = false;
	}
	return ok;
}

/* Write the listening port to path (through a rename, so a reader never
 * sees a half-written file): tests and scripts that pass port 0 read it. */
static int write_port_file(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%u\n", (unsigned)port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = {
		.listen_host = "127.0.0.1",
		.listen_port = 7701,
		.dbproxy_host = "127.0.0.1",
		.dbproxy_port = 7702,
		.instance = "gamesrv",
		.tick_ms = 20,
		.heartbeat_ms = 1000,
		.dead_ms = 5000,
		.call_deadline_ms = 5000,
		.drain_ms = 5000,
		.autosave_ms = 30000,
		.zone_id = 1,
		.zone_min_x = -1000, .zone_min_y = -1000,
		.zone_max_x = 1000, .zone_max_y = 1000,
		.zones = "",
		.interest = "view",
		.view_radius = 100,
		.view_hysteresis = 10,
		.client_budget_bytes = 8192,
		.max_gateways = 64,
		.queue_max = 65536,
		.loops = 2,
		.engine = "",
		.log_level = "info",
		.port_file = "",
		.admin_host = "127.0.0.1",
		.admin_port = 7781,
		.secret_file = "",
	};
	const struct rg_option table[] = {
		{ "listen-host", RG_OPT_STRING, &o.listen_host, "address gateways connect to" },
		{ "listen-port", RG_OPT_INT, &o.listen_port, "port gateways connect to (0: any)" },
		{ "dbproxy-host", RG_OPT_STRING, &o.dbproxy_host, "dbproxy address" },
		{ "dbproxy-port", RG_OPT_INT, &o.dbproxy_port, "dbproxy port" },
		{ "instance", RG_OPT_STRING, &o.instance, "this server's name in peers' logs" },
		{ "tick-ms", RG_OPT_INT, &o.tick_ms, "game tick" },
		{ "heartbeat-ms", RG_OPT_INT, &o.heartbeat_ms, "heartbeat interval on internal links" },
		{ "dead-ms", RG_OPT_INT, &o.dead_ms, "close an internal link silent this long" },
		{ "call-deadline-ms", RG_OPT_INT, &o.call_deadline_ms, "deadline of each dbproxy call" },
		{ "drain-ms", RG_OPT_INT, &o.drain_ms, "on SIGTERM, wait this long for saves" },
		{ "autosave-ms", RG_OPT_INT, &o.autosave_ms, "save moved players this often (0: off)" },
		{ "zone-id", RG_OPT_INT, &o.zone_id, "id of the zone" },
		{ "zone-min-x", RG_OPT_INT, &o.zone_min_x, "zone bounds" },
		{ "zone-min-y", RG_OPT_INT, &o.zone_min_y, "zone bounds" },
		{ "zone-max-x", RG_OPT_INT, &o.zone_max_x, "zone bounds" },
		{ "zone-max-y", RG_OPT_INT, &o.zone_max_y, "zone bounds" },
		{ "zones", RG_OPT_STRING, &o.zones,
		  "more zones: ID:MIN_X:MIN_Y:MAX_X:MAX_Y[,...] (ids non-zero, unique)" },
		{ "interest", RG_OPT_STRING, &o.interest,
		  "view: each player sees those within view-radius, one update per tick; "
		  "broadcast: every event to the whole zone at once (the old way)" },
		{ "view-radius", RG_OPT_INT, &o.view_radius, "a player sees others this near" },
		{ "view-hysteresis", RG_OPT_INT, &o.view_hysteresis,
		  "... and loses them beyond view-radius + this" },
		{ "client-budget-bytes", RG_OPT_INT, &o.client_budget_bytes,
		  "entered/moved bytes per client per tick; the rest waits, coalesced" },
		{ "max-gateways", RG_OPT_INT, &o.max_gateways, "gateway links accepted (0: no limit)" },
		{ "queue-max", RG_OPT_INT, &o.queue_max, "client requests queued for the game thread" },
		{ "loops", RG_OPT_INT, &o.loops, "network loop threads (0: one per core)" },
		{ "engine", RG_OPT_STRING, &o.engine, "uring or epoll (empty: probe)" },
		{ "log-level", RG_OPT_STRING, &o.log_level, "debug, info, warn or error" },
		{ "port-file", RG_OPT_STRING, &o.port_file, "write the listening port here once ready" },
		{ "admin-host", RG_OPT_STRING, &o.admin_host, "address of the metrics port" },
		{ "admin-port", RG_OPT_INT, &o.admin_port,
		  "serve GET /metrics (Prometheus) on this port (0: off)" },
		{ "secret-file", RG_OPT_STRING, &o.secret_file,
		  "the cluster secret (mode 0600) both internal links prove" },
		{ "insecure-no-auth", RG_OPT_BOOL, &o.insecure_no_auth,
		  "internal links without the secret (tests only)" },
		{ 0 },
	};
	enum rg_log_level level = RG_LOG_INFO;
	struct net_runtime_config rt_cfg = { 0 };
	struct net_runtime *rt = NULL;
	struct gs_metrics *metrics = NULL;
	struct rg_admin *admin = NULL;
	struct game_queue queue;
	struct game game;
	struct gate_service gates;
	struct db_service db;
	struct gate_service_config gate_cfg;
	struct db_service_config db_cfg;
	struct game_config game_cfg;
	struct rg_link_key link_key;
	struct zone_bounds more_zones[RULES_ZONES_MAX];
	int more_zone_count;
	size_t unsaved;
	int exit_code = 1;
	int rc, sig;

	rg_signals_block();
	rc = rg_options_parse(table, "gamesrv", "usage: gamesrv [--config FILE] [options]",
			      argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (!options_valid(&o, &level))
		return 2;
	more_zone_count = rules_zones_parse(o.zones, more_zones, RULES_ZONES_MAX - 1);
	if (more_zone_count < 0) {
		fprintf(stderr, "gamesrv: --zones must be ID:MIN_X:MIN_Y:MAX_X:MAX_Y[,...] "
			"with valid bounds, at most %d zones\n", RULES_ZONES_MAX - 1);
		return 2;
	}
	rg_log_init("gamesrv", level);
	if (rg_link_key_setup(o.secret_file, o.insecure_no_auth, &link_key) < 0)
		return 2;

	rc = game_queue_init(&queue, (size_t)o.queue_max);
	if (rc < 0) {
		RG_ERROR("cannot create the game queue: %s", strerror(-rc));
		return 1;
	}
	rt_cfg.loops = (unsigned)o.loops;
	rt_cfg.engine = o.engine[0] ? o.engine : NULL;
	rc = net_runtime_create(&rt_cfg, &rt);
	if (rc < 0) {
		RG_ERROR("cannot create the network runtime: %s", net_strerror(rc));
		goto out_queue;
	}
	RG_INFO("network engine: %s, %u loops", net_runtime_engine(rt),
		net_runtime_loop_count(rt));
	rc = gs_metrics_create(rt, &metrics);
	if (rc < 0) {
		RG_ERROR("cannot set up the metrics: %s", strerror(-rc));
		goto out_runtime;
	}

	game_cfg = (struct game_config){
		.tick_ms = (uint32_t)o.tick_ms,
		.call_deadline_ms = (uint32_t)o.call_deadline_ms,
		.drain_ms = (uint32_t)o.drain_ms,
		.autosave_ms = (uint32_t)o.autosave_ms,
		.zone = { .id = (uint32_t)o.zone_id,
			  .min_x = (float)o.zone_min_x, .min_y = (float)o.zone_min_y,
			  .max_x = (float)o.zone_max_x, .max_y = (float)o.zone_max_y },
		.more_zones = more_zones,
		.more_zone_count = (size_t)more_zone_count,
		.interest = { .enabled = strcmp(o.interest, "view") == 0,
			      .radius = (float)o.view_radius,
			      .hysteresis = (float)o.view_hysteresis,
			      .budget_bytes = (uint32_t)o.client_budget_bytes },
		.metrics = metrics,
	};
	rc = game_init(&game, &game_cfg, rt, &queue);
	if (rc < 0) {
		RG_ERROR("cannot set up the game: %s", strerror(-rc));
		goto out_runtime;
	}

	gate_cfg = (struct gate_service_config){
		.host = o.listen_host,
		.port = (uint16_t)o.listen_port,
		.max_gateways = (unsigned)o.max_gateways,
		.heartbeat_ms = (uint32_t)o.heartbeat_ms,
		.dead_ms = (uint32_t)o.dead_ms,
		.max_frame = INTERNAL_MAX_FRAME,
		.decode_limit = DECODE_LIMIT,
		.link_key = &link_key,
	};
	rc = gate_service_start(&gates, rt, &queue, &gate_cfg);
	if (rc < 0) {
		RG_ERROR("cannot listen on %s:%ld: %s", o.listen_host, o.listen_port,
			 net_strerror(rc));
		goto out_game;
	}
	db_cfg = (struct db_service_config){
		.host = o.dbproxy_host,
		.port = (uint16_t)o.dbproxy_port,
		.instance = o.instance,
		.heartbeat_ms = (uint32_t)o.heartbeat_ms,
		.dead_ms = (uint32_t)o.dead_ms,
		.max_frame = INTERNAL_MAX_FRAME,
		.decode_limit = DECODE_LIMIT,
		.link_key = &link_key,
	};
	rc = db_service_start(&db, rt, &queue, &db_cfg);
	if (rc < 0) {
		RG_ERROR("cannot start the dbproxy client for %s:%ld: %s", o.dbproxy_host,
			 o.dbproxy_port, net_strerror(rc));
		goto out_game;
	}

	rc = game_start(&game);
	if (rc < 0) {
		RG_ERROR("cannot start the game thread: %s", strerror(-rc));
		goto out_game;
	}
	rc = net_runtime_start(rt);
	if (rc < 0) {
		RG_ERROR("cannot start the network loops: %s", net_strerror(rc));
		goto out_stop_game;
	}
	RG_INFO("listening for gateways on %s:%u; dbproxy at %s:%ld", o.listen_host,
		(unsigned)gate_service_port(&gates), o.dbproxy_host, o.dbproxy_port);
	if (o.port_file[0]) {
		rc = write_port_file(o.port_file, gate_service_port(&gates));
		if (rc < 0) {
			RG_ERROR("cannot write %s: %s", o.port_file, strerror(-rc));
			goto out_stop_game;
		}
	}
	admin = rg_admin_start_logged(metrics->registry, o.admin_host, o.admin_port);
	RG_INFO("gamesrv ready");

	sig = rg_signals_wait();
	RG_INFO("%s received: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	exit_code = 0;

out_stop_game:
	gate_service_stop_accepting(&gates);
	unsaved = game_stop(&game);
	if (unsaved > 0) {
		RG_ERROR("drain deadline passed with %zu dbproxy calls unanswered", unsaved);
		exit_code = 1;
	}
out_game:
	game_fini(&game);
out_runtime:
	rg_admin_stop(admin); /* its collectors read the runtime */
	net_runtime_stop(rt);
	net_runtime_destroy(rt);
	gs_metrics_destroy(metrics);
out_queue:
	game_queue_fini(&queue);
	rg_link_key_wipe(&link_key);
	if (exit_code == 0)
		RG_INFO("gamesrv stopped");
	return exit_code;
}
