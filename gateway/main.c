/*
 * gateway main: parse config, create the loops, start the client-facing
 * server and the gamesrv link, run until SIGTERM/SIGINT, then drain:
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
#include <rg/options.h>
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

/* Check ranges the option parser cannot; print what is wrong. */
static bool config_valid(const struct gw_config *cfg)
{
	struct { const char *name; long value, min, max; } checks[] = {
		{ "port", cfg->port, 0, 65535 },
		{ "gamesrv-port", cfg->gamesrv_port, 1, 65535 },
		{ "loops", cfg->loops, 0, 64 },
		{ "max-clients", cfg->max_clients, 1, 1000000 },
		{ "max-clients-per-addr", cfg->max_clients_per_addr, 0, 1000000 },
		{ "connects-per-addr-per-sec", cfg->connects_per_addr_per_sec, 0, 1000000 },
		{ "frame-timeout-ms", cfg->frame_timeout_ms, 0, 86400000 },
		/* Must hold the largest reply gamesrv may send (a LoginReply
		 * with 256 others is a few KiB) with room to spare. */
		{ "send-queue-max", cfg->send_queue_max, 16384, 1 << 30 },
		{ "socket-send-buffer", cfg->socket_send_buffer, 0, 1 << 26 },
		{ "msg-rate", cfg->msg_rate, 0, 1000000 },
		{ "msg-burst", cfg->msg_burst, 1, 1000000 },
		{ "flood-refusals", cfg->flood_refusals, 0, 1000000 },
		/* A forwarded request is the client frame plus a few bytes, and
		 * must stay far below gamesrv's 4 MiB internal frame limit. */
		{ "max-frame", cfg->max_frame, 64, 1 << 20 },
		{ "admin-port", cfg->admin_port, 0, 65535 },
		{ "idle-timeout-ms", cfg->idle_timeout_ms, 0, 86400000 },
		{ "request-timeout-ms", cfg->request_timeout_ms, 1, 600000 },
		{ "max-inflight", cfg->max_inflight, 1, 1024 },
		{ "heartbeat-ms", cfg->heartbeat_ms, 10, 600000 },
		{ "dead-ms", cfg->dead_ms, 20, 3600000 },
		{ "handshake-ms", cfg->handshake_ms, 10, 600000 },
		{ "shutdown-timeout-ms", cfg->shutdown_timeout_ms, 0, 600000 },
	};

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (checks[i].value < checks[i].min || checks[i].value > checks[i].max) {
			RG_ERROR("--%s=%ld is outside %ld..%ld", checks[i].name,
				 checks[i].value, checks[i].min, checks[i].max);
			return false;
		}
	}
	if (cfg->dead_ms <= cfg->heartbeat_ms) {
		RG_ERROR("--dead-ms must be longer than --heartbeat-ms");
		return false;
	}
	return true;
}

/* Stop accepting, tell every client, and wait (bounded) for them to go. */
static void drain(struct gateway *gw)
{
	uint64_t deadline = rg_now_ms() + (uint64_t)gw->cfg.shutdown_timeout_ms;

	atomic_store(&gw->shutting_down, true);
	net_server_stop(gw->clients, false);
	gw_loops_kick_all(gw);
	if (!wait_until(gw, no_clients, deadline))
		RG_WARN("%u clients still connected at the drain deadline; cutting them off",
			atomic_load(&gw->client_count));
	gw_loops_finish(gw);
	if (!wait_until(gw, loops_finished, rg_now_ms() + 1000))
		RG_WARN("not every loop stopped its timer in time");
	net_client_stop(gw->upstream);
}

int main(int argc, char **argv)
{
	struct gateway gw = {
		.cfg = {
			.host = "127.0.0.1",
			.port = 7777,
			.gamesrv_host = "127.0.0.1",
			.gamesrv_port = 7701,
			.instance = "gateway-1",
			.loops = 2,
			.engine = "",
			.max_clients = 10000,
			/* Players share addresses (NAT, carrier-grade NAT): the
			 * per-address limits stop one machine's flood, not a
			 * crowded office. */
			.max_clients_per_addr = 1000,
			.connects_per_addr_per_sec = 500,
			.max_frame = 65536,
			.frame_timeout_ms = 10000,
			.send_queue_max = 1 << 20,
			.socket_send_buffer = 256 << 10,
			.idle_timeout_ms = 120000,
			.msg_rate = 100,
			.msg_burst = 200,
			.flood_refusals = 100,
			.request_timeout_ms = 5000,
			.max_inflight = 32,
			.heartbeat_ms = 1000,
			.dead_ms = 5000,
			.handshake_ms = 2000,
			.shutdown_timeout_ms = 5000,
			.secret_file = "",
			.log_level = "info",
			.admin_host = "127.0.0.1",
			.admin_port = 7780,
		},
	};
	struct gw_config *cfg = &gw.cfg;
	const struct rg_option options[] = {
		{ "host", RG_OPT_STRING, &cfg->host, "address clients connect to" },
		{ "port", RG_OPT_INT, &cfg->port, "port clients connect to (0: any free port)" },
		{ "gamesrv-host", RG_OPT_STRING, &cfg->gamesrv_host, "gamesrv address" },
		{ "gamesrv-port", RG_OPT_INT, &cfg->gamesrv_port, "gamesrv port" },
		{ "instance", RG_OPT_STRING, &cfg->instance, "this gateway's name in gamesrv's logs" },
		{ "loops", RG_OPT_INT, &cfg->loops, "network loop threads (0: one per core)" },
		{ "engine", RG_OPT_STRING, &cfg->engine,
		  "uring or epoll (empty: RINGGATE_ENGINE, then the best that works)" },
		{ "max-clients", RG_OPT_INT, &cfg->max_clients, "clients past this get SERVER_FULL" },
		{ "max-clients-per-addr", RG_OPT_INT, &cfg->max_clients_per_addr,
		  "live clients one IP address may have; more are closed at accept (0: any)" },
		{ "connects-per-addr-per-sec", RG_OPT_INT, &cfg->connects_per_addr_per_sec,
		  "new connections one IP address may open per second, as a burst too (0: any)" },
		{ "max-frame", RG_OPT_INT, &cfg->max_frame, "largest client message body, bytes" },
		{ "frame-timeout-ms", RG_OPT_INT, &cfg->frame_timeout_ms,
		  "close a client whose begun frame is not complete this long after (0: never)" },
		{ "send-queue-max", RG_OPT_INT, &cfg->send_queue_max,
		  "bytes queued for a client that does not read before it is cut off" },
		{ "socket-send-buffer", RG_OPT_INT, &cfg->socket_send_buffer,
		  "kernel send buffer per client, bytes (0: the kernel's own, which grows "
		  "to megabytes for a client that does not read)" },
		{ "msg-rate", RG_OPT_INT, &cfg->msg_rate,
		  "messages per second one client may send; more get RATE_LIMITED (0: any)" },
		{ "msg-burst", RG_OPT_INT, &cfg->msg_burst,
		  "messages one client may send at once (the rate bucket's size)" },
		{ "flood-refusals", RG_OPT_INT, &cfg->flood_refusals,
		  "RATE_LIMITED answers, with no clean second between, before a disconnect" },
		{ "idle-timeout-ms", RG_OPT_INT, &cfg->idle_timeout_ms,
		  "kick a client silent this long (0: never)" },
		{ "request-timeout-ms", RG_OPT_INT, &cfg->request_timeout_ms,
		  "a request unanswered this long gets Error TIMEOUT" },
		{ "max-inflight", RG_OPT_INT, &cfg->max_inflight,
		  "unanswered requests one client may have" },
		{ "heartbeat-ms", RG_OPT_INT, &cfg->heartbeat_ms, "heartbeat interval to gamesrv" },
		{ "dead-ms", RG_OPT_INT, &cfg->dead_ms, "drop the gamesrv link when silent this long" },
		{ "handshake-ms", RG_OPT_INT, &cfg->handshake_ms,
		  "drop the gamesrv link when not authenticated this long after connecting" },
		{ "shutdown-timeout-ms", RG_OPT_INT, &cfg->shutdown_timeout_ms,
		  "how long a drain may wait for clients" },
		{ "secret-file", RG_OPT_STRING, &cfg->secret_file,
		  "the cluster secret (mode 0600) proven on the gamesrv link" },
		{ "insecure-no-auth", RG_OPT_BOOL, &cfg->insecure_no_auth,
		  "link to gamesrv without the secret (tests only)" },
		{ "log-level", RG_OPT_STRING, &cfg->log_level, "debug, info, warn or error" },
		{ "admin-host", RG_OPT_STRING, &cfg->admin_host, "address of the metrics port" },
		{ "admin-port", RG_OPT_INT, &cfg->admin_port,
		  "serve GET /metrics (Prometheus) on this port (0: off)" },
		{ 0 },
	};
	struct net_runtime_config rt_cfg = { 0 };
	struct net_server_config server_cfg;
	struct net_client_config upstream_cfg;
	enum rg_log_level level;
	int rc, err, sig;

	rg_signals_block();
	rc = rg_options_parse(options, "gateway", "usage: gateway [--config FILE] [options]", argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (rg_log_level_parse(cfg->log_level, &level) < 0) {
		rg_log_init("gateway", RG_LOG_INFO);
		RG_ERROR("unknown --log-level \"%s\"", cfg->log_level);
		return 2;
	}
	rg_log_init("gateway", level);
	if (!config_valid(cfg))
		return 2;
	if (rg_link_key_setup(cfg->secret_file, cfg->insecure_no_auth, &gw.link_key) < 0)
		return 2;

	rt_cfg.loops = (unsigned)cfg->loops;
	rt_cfg.engine = cfg->engine[0] ? cfg->engine : NULL;
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
	err = gw_upstream_config(&gw, &upstream_cfg);
	if (err < 0)
		goto out_destroy;
	err = net_client_start(gw.rt, &upstream_cfg, &gw.upstream);
	if (err < 0) {
		RG_ERROR("cannot start the gamesrv link to %s:%ld: %s", cfg->gamesrv_host,
			 cfg->gamesrv_port, net_strerror(err));
		goto out_destroy;
	}
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
	RG_INFO("listening for clients on %s:%u; gamesrv at %s:%ld", cfg->host,
		net_server_port(gw.clients), cfg->gamesrv_host, cfg->gamesrv_port);
	gw_admin_start(&gw);

	sig = rg_signals_wait();
	RG_INFO("signal %d: draining", sig);
	drain(&gw);
	RG_INFO("drained; stopping");

out_stop:
	gw_admin_stop(&gw); /* its collectors read the runtime */
	net_runtime_stop(gw.rt);
out_destroy:
	gw_loops_destroy(&gw);
	net_runtime_destroy(gw.rt);
	gw_metrics_fini(&gw); /* the loops observed into it until they stopped */
	rg_link_service_fini(&gw.upstream_link);
	rg_link_key_wipe(&gw.link_key);
	return err < 0 ? 1 : 0;
}
