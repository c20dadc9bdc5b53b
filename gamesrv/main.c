/*
 * gamesrv: the game server of a ringgate cluster.
 *
 *   gateways --(GateToGame/GameToGate, port 7701)--> [ loops ] --queue--> [ game thread ]
 *                                                       ^                     |
 *   dbproxy <--(GameToDb/DbToGame, dials 7702)----------+---- net_send_to <---+
 *
 * main() reads like that picture: load the options (config.c), create the libnet
 * runtime, start the game thread, start the gateway service and the
 * dbproxy client, run until SIGTERM/SIGINT, then drain (stop accepting,
 * kick and save every player, wait for dbproxy's replies up to a
 * deadline) and exit 0.
 */
#include <signal.h>
#include <string.h>

#include <net/net.h>
#include <rg/admin.h>
#include <rg/log.h>
#include <rg/signals.h>

#include "config.h"
#include "db_link.h"
#include "game.h"
#include "gate_link.h"
#include "metrics.h"
#include "queue.h"
#include "rules.h"

int main(int argc, char **argv)
{
	struct gs_config o;
	struct net_runtime_config rt_cfg = { 0 };
	struct net_runtime *rt = NULL;
	struct gs_metrics *metrics = NULL;
	struct rg_admin *admin = NULL;
	struct gs_game_queue queue;
	struct gs_game game;
	struct gs_gate_service gates = { 0 };
	struct gs_db_service db[GS_DB_LINKS_MAX] = { 0 };
	struct gs_gate_service_config gate_cfg;
	struct gs_db_service_config db_cfg;
	struct gs_game_config game_cfg;
	struct rg_link_rules link_rules;
	struct rg_link_key link_key;
	size_t unsaved;
	unsigned db_started = 0;
	int exit_code = 1;
	int rc, sig;

	rg_signals_block();
	rc = gs_config_load(&o, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (rg_link_key_setup(o.common.secret_file, o.common.insecure_no_auth, &link_key) < 0)
		return 2;

	rc = gs_game_queue_init(&queue, (size_t)o.queue_max, (size_t)o.queue_max_bytes);
	if (rc < 0) {
		RG_ERROR("cannot create the game queue: %s", strerror(-rc));
		return 1;
	}
	rt_cfg.loops = (unsigned)o.common.loops;
	rt_cfg.engine = o.common.engine[0] ? o.common.engine : NULL;
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
	/* Before anything listens: a taken admin port stops the start. */
	rc = rg_admin_start_logged(metrics->registry, &o.common, &admin);
	if (rc < 0)
		goto out_runtime;

	game_cfg = (struct gs_game_config){
		.tick_ms = (uint32_t)o.tick_ms,
		.call_deadline_ms = (uint32_t)o.call_deadline_ms,
		.drain_ms = (uint32_t)o.drain_ms,
		.autosave_ms = (uint32_t)o.autosave_ms,
		.zone = { .id = (uint32_t)o.zone_id,
			  .min_x = (float)o.zone_min_x, .min_y = (float)o.zone_min_y,
			  .max_x = (float)o.zone_max_x, .max_y = (float)o.zone_max_y },
		.more_zones = o.more_zones,
		.more_zone_count = (size_t)o.more_zone_count,
		.interest = { .enabled = strcmp(o.interest, "view") == 0,
			      .radius = (float)o.view_radius,
			      .hysteresis = (float)o.view_hysteresis,
			      .budget_bytes = (uint32_t)o.client_budget_bytes },
		.resume = { .grace_ms = (uint32_t)o.resume_grace_ms,
			    .session_bytes = (size_t)o.resume_buffer_bytes,
			    .total_bytes = (size_t)o.resume_buffer_total_bytes,
			    .token_ttl_ms = (uint32_t)o.resume_token_ttl_ms },
		.link_key = &link_key,
		.metrics = metrics,
		.dbproxy_count = o.dbproxy_count,
		.shard = (uint32_t)o.shard,
		.zone_shards = o.zone_shard_map,
		.zone_shard_count = (size_t)o.zone_shard_count,
		.lease_ms = (uint32_t)o.lease_ms,
	};
	rc = gs_game_init(&game, &game_cfg, rt, &queue);
	if (rc < 0) {
		RG_ERROR("cannot set up the game: %s", strerror(-rc));
		goto out_runtime;
	}

	link_rules = rg_link_rules_of(&o.link);
	gate_cfg = (struct gs_gate_service_config){
		.host = o.host,
		.port = (uint16_t)o.port,
		.max_gateways = (unsigned)o.max_gateways,
		.pending_max = (unsigned)o.link.max_pending_links,
		.pending_per_addr = (unsigned)o.link.max_pending_links_per_addr,
		.rules = link_rules,
		.max_frame = GS_INTERNAL_MAX_FRAME,
		.decode_limit = GS_DECODE_LIMIT,
		.link_key = &link_key,
		.shard = (uint32_t)o.shard,
	};
	rc = gs_gate_service_start(&gates, rt, &queue, &gate_cfg);
	if (rc < 0) {
		RG_ERROR("cannot listen on %s:%ld: %s", o.host, o.port,
			 net_strerror(rc));
		goto out_game;
	}
	for (unsigned i = 0; i < o.dbproxy_count; i++) {
		const struct rg_host_port *a = &o.dbproxy_addrs[i];

		db_cfg = (struct gs_db_service_config){
			.host = a->host,
			.port = a->port,
			.index = i,
			.instance = o.instance,
			.rules = link_rules,
			.max_frame = GS_INTERNAL_MAX_FRAME,
			.decode_limit = GS_DECODE_LIMIT,
			.link_key = &link_key,
		};
		db_started = i + 1; /* gs_db_service_fini below, even when its start fails */
		rc = gs_db_service_start(&db[i], rt, &queue, &db_cfg);
		if (rc < 0) {
			RG_ERROR("cannot start the dbproxy client for %s:%u: %s", a->host,
				 (unsigned)a->port, net_strerror(rc));
			goto out_game;
		}
	}

	rc = gs_game_start(&game);
	if (rc < 0) {
		RG_ERROR("cannot start the game thread: %s", strerror(-rc));
		goto out_game;
	}
	rc = net_runtime_start(rt);
	if (rc < 0) {
		RG_ERROR("cannot start the network loops: %s", net_strerror(rc));
		goto out_stop_game;
	}
	RG_INFO("listening for gateways on %s:%u; dbproxy at %s:%u%s", o.host,
		(unsigned)gs_gate_service_port(&gates), o.dbproxy_addrs[0].host,
		(unsigned)o.dbproxy_addrs[0].port,
		o.dbproxy_count > 1 ? " and the others of --dbproxies" : "");
	if (rg_port_file_write(o.common.port_file, gs_gate_service_port(&gates)) < 0)
		goto out_stop_game;
	RG_INFO("gamesrv ready (shard %ld)", o.shard);

	sig = rg_signals_wait();
	RG_INFO("%s received: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	exit_code = 0;

out_stop_game:
	gs_gate_service_stop_accepting(&gates);
	unsaved = gs_game_stop(&game);
	if (unsaved > 0) {
		RG_ERROR("drain deadline passed with %zu dbproxy calls unanswered", unsaved);
		exit_code = 1;
	}
out_game:
	gs_game_fini(&game);
out_runtime:
	rg_admin_stop(admin); /* its collectors read the runtime */
	net_runtime_stop(rt);
	net_runtime_destroy(rt);
	gs_metrics_destroy(metrics);
	gs_gate_service_fini(&gates);
	while (db_started > 0)
		gs_db_service_fini(&db[--db_started]);
out_queue:
	gs_game_queue_fini(&queue);
	rg_link_key_wipe(&link_key);
	if (exit_code == 0)
		RG_INFO("gamesrv stopped");
	return exit_code;
}
