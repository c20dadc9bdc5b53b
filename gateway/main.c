/*
 * gateway main: parse config, create the loops, start the client-facing
 * servers (TCP, and WebSocket with the world page) and the links to the
 * game shards, run until SIGTERM/SIGINT, then drain:
 *
 *   stop accepting -> kick every client (SHUTTING_DOWN) -> wait for them to
 *   go (bounded) -> stop loop timers -> stop the runtime (flushes the
 *   ClientGone frames to gamesrv) -> exit 0
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <rg/clock.h>
#include <rg/log.h>
#include <rg/signals.h>

#include "gateway.h"

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait until cond(gw) holds or deadline_ms (rg_now_ms clock) passes. */
static bool wait_until(struct gateway *gw, bool (*cond)(struct gateway *), uint64_t deadline_ms)
{
	while (!cond(gw)) {
		if (rg_now_ms() >= deadline_ms)
			return false;
		sleep_ms(10);
	}
	return true;
}

static bool no_clients(struct gateway *gw)
{
	return atomic_load(&gw->client_count) == 0;
}

static bool loops_finished(struct gateway *gw)
{
	return atomic_load(&gw->loops_finished) == gw->loop_count;
}

/* Stop accepting, tell every client, and wait (bounded) for them to go. */
static void drain(struct gateway *gw)
{
	uint64_t deadline = rg_now_ms() + (uint64_t)gw->cfg.drain_ms;

	atomic_store(&gw->shutting_down, true);
	net_server_stop(gw->clients, false);
	if (gw->ws_clients)
		net_server_stop(gw->ws_clients, false);
	gw_loops_kick_all(gw);
	if (!wait_until(gw, no_clients, deadline))
		RG_WARN("%u clients still connected at the drain deadline; cutting them off",
			atomic_load(&gw->client_count));
	gw_loops_finish(gw);
	if (!wait_until(gw, loops_finished, rg_now_ms() + 1000))
		RG_WARN("not every loop stopped its timer in time");
	gw_shards_stop(gw);
}

int main(int argc, char **argv)
{
	struct gateway gw = { 0 };
	struct gw_config *cfg = &gw.cfg;
	struct net_runtime_config rt_cfg = { 0 };
	struct net_server_config server_cfg;
	int rc, err, sig;

	rg_signals_block();
	rc = gw_config_load(cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (rg_link_key_setup(cfg->common.secret_file, cfg->common.insecure_no_auth,
			      &gw.link_key) < 0)
		return 2;

	rt_cfg.loops = (unsigned)cfg->common.loops;
	rt_cfg.engine = cfg->common.engine[0] ? cfg->common.engine : NULL;
	err = net_runtime_create(&rt_cfg, &gw.rt);
	if (err < 0) {
		RG_ERROR("cannot create the network runtime: %s", net_strerror(err));
		return 1;
	}
	RG_INFO("libnet engine: %s, %u loops", net_runtime_engine(gw.rt),
		net_runtime_loop_count(gw.rt));

	err = gw_metrics_init(&gw);
	if (err < 0) {
		RG_ERROR("cannot set up the metrics: %s", net_strerror(err));
		goto out_destroy;
	}
	/* Before anything listens: a taken admin port stops the start. */
	err = gw_admin_start(&gw);
	if (err < 0)
		goto out_destroy;
	if (gw_tls_setup(&gw) < 0) {
		err = -EINVAL;
		goto out_destroy;
	}
	err = gw_loops_create(&gw);
	if (err < 0) {
		RG_ERROR("cannot set up the loops: %s", net_strerror(err));
		goto out_destroy;
	}
	gw_clients_config(&gw, &server_cfg);
	err = net_server_start(gw.rt, &server_cfg, &gw.clients);
	if (err < 0) {
		RG_ERROR("cannot listen on %s:%ld: %s", cfg->host, cfg->port, net_strerror(err));
		goto out_destroy;
	}
	if (cfg->ws_port >= 0) {
		err = gw_ws_config(&gw, &server_cfg);
		if (err == 0)
			err = net_server_start(gw.rt, &server_cfg, &gw.ws_clients);
		if (err < 0) {
			RG_ERROR("cannot listen for WebSocket clients on %s:%ld: %s", cfg->host,
				 cfg->ws_port, net_strerror(err));
			goto out_destroy;
		}
	}
	err = gw_shards_start(&gw);
	if (err < 0)
		goto out_destroy;
	err = net_runtime_start(gw.rt);
	if (err < 0) {
		RG_ERROR("cannot start the loops: %s", net_strerror(err));
		goto out_destroy;
	}
	err = gw_loops_start(&gw);
	if (err < 0) {
		RG_ERROR("cannot start the loop timers: %s", net_strerror(err));
		goto out_stop;
	}
	RG_INFO("gateway %ld listening for clients on %s:%u (%s); %u game shard%s, shard 1 at "
		"%s:%u", cfg->gateway_id, cfg->host, net_server_port(gw.clients),
		cfg->tls ? "TLS" : "plain TCP", cfg->shard_count, cfg->shard_count == 1 ? "" : "s",
		cfg->shards[0].host, cfg->shards[0].port);
	if (gw.ws_clients) {
		uint16_t ws_port = net_server_port(gw.ws_clients);

		RG_INFO("listening for WebSocket clients on %s:%u; the world page is "
			"%s://%s:%u/", cfg->host, ws_port, cfg->tls ? "https" : "http", cfg->host,
			ws_port);
		err = rg_port_file_write(cfg->ws_port_file, ws_port);
		if (err < 0)
			goto out_drain;
	}
	err = rg_port_file_write(cfg->common.port_file, net_server_port(gw.clients));
	if (err < 0)
		goto out_drain;

	sig = rg_signals_wait_reload(gw_tls_reload, &gw);
	RG_INFO("signal %d: draining", sig);
out_drain:
	drain(&gw);
	RG_INFO("drained; stopping");

out_stop:
	net_runtime_stop(gw.rt);
out_destroy:
	gw_admin_stop(&gw); /* its collectors read the runtime */
	gw_loops_destroy(&gw);
	net_runtime_destroy(gw.rt);
	gw_ws_fini(&gw);
	gw_tls_fini(&gw); /* no session uses it any more */
	gw_metrics_fini(&gw); /* the loops observed into it until they stopped */
	gw_shards_fini(&gw);
	rg_link_key_wipe(&gw.link_key);
	return err < 0 ? 1 : 0;
}
