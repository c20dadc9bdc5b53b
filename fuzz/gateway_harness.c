/*
 * gateway_harness.c: the fuzzed gateway's set-up and tear-down (see
 * gateway_harness.h).
 */
#include "gateway_harness.h"

#include <stdatomic.h>

#include "fake_net.h"
#include "harness.h"

void gw_fuzz_setup(struct gateway *gw, enum gw_fuzz_port port, long max_frame)
{
	const struct rg_link_key *key = fuzz_setup();
	struct net_server_config server_cfg;

	/* The gateway's own defaults (gateway/config.c), quiet and named. */
	gw_config_defaults(&gw->cfg);
	gw->cfg.instance = "gateway-fuzz";
	gw->cfg.common.loops = 1;
	gw->cfg.common.log_level = "error";
	gw->cfg.socket_send_buffer = 0; /* the fake network has no kernel buffer */
	gw->cfg.common.admin_port = 0;
	gw->cfg.web_dir = "/nonexistent"; /* no page: GETs are 404 */
	gw->cfg.link.seal = false;        /* see FUZZ_PLAIN_RULES */
	if (max_frame)
		gw->cfg.max_frame = max_frame;
	gw->link_key = *key;
	FUZZ_CHECK(net_runtime_create(NULL, &gw->rt) == 0);
	FUZZ_CHECK(gw_metrics_init(gw) == 0);
	FUZZ_CHECK(gw_loops_create(gw) == 0);
	if (port == GW_FUZZ_WS) {
		FUZZ_CHECK(gw_ws_config(gw, &server_cfg) == 0);
		FUZZ_CHECK(net_server_start(gw->rt, &server_cfg, &gw->ws_clients) == 0);
	} else {
		gw_clients_config(gw, &server_cfg);
		FUZZ_CHECK(net_server_start(gw->rt, &server_cfg, &gw->clients) == 0);
	}
	FUZZ_CHECK(gw_shards_start(gw) == 0);
	FUZZ_CHECK(gw->shard_count >= 1); /* requests always have a shard to go to */
	FUZZ_CHECK(gw_loops_start(gw) == 0);
	fake_net_settle();
}

void gw_fuzz_teardown(struct gateway *gw)
{
	atomic_store(&gw->shutting_down, true);
	gw_loops_finish(gw);
	gw_shards_stop(gw);
	if (gw->clients)
		net_server_stop(gw->clients, true);
	if (gw->ws_clients)
		net_server_stop(gw->ws_clients, true);
	FUZZ_CHECK(fake_net_stop(gw->rt) == 0);
	gw_loops_destroy(gw);
	gw_metrics_fini(gw);
	net_runtime_destroy(gw->rt);
	gw_ws_fini(gw);
	gw_shards_fini(gw);
}
