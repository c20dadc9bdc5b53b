/*
 * gateway/config.c: every gateway option, one row each (rg/options.h).
 * A new option is a field in config.h and a row here.
 */
#include <stdio.h>

#include <rg/log.h>

#include "config.h"

#define RG_OPTIONS_TYPE struct gw_config

static const struct rg_option gw_options[] = {
	RG_ROW_STRING("host", host, "127.0.0.1", "address clients connect to"),
	RG_ROW_INT("port", port, 7777, 0, 65535, "port clients connect to (0: any free port)"),
	/* TLS for game clients (docs/tls.md): required on `port` when on. */
	RG_OPTION_BOOL("tls", RG_OPTIONS_TYPE, tls, false,
		       "clients must speak TLS 1.3 on --port (needs --tls-cert and --tls-key)"),
	RG_ROW_STRING("tls-cert", tls_cert, "",
		      "PEM certificate chain of the client listener (reread on SIGHUP)"),
	RG_ROW_STRING("tls-key", tls_key, "",
		      "PEM private key of --tls-cert (reread on SIGHUP)"),
	RG_ROW_INT("ws-port", ws_port, 7778, -1, 65535,
		"port of WebSocket clients and the world page at / (0: any free port; -1: off)"),
	RG_ROW_STRING("ws-port-file", ws_port_file, "",
		"write the bound WebSocket port to this file once listening"),
	RG_ROW_STRING("web-dir", web_dir, RG_WEB_DIR_DEFAULT,
		"directory of the world page's files (the sources' web/; beside it "
		"../proto/client.proto)"),
	RG_ROW_INT("ws-handshake-timeout-ms", ws_handshake_timeout_ms, 10000, 100, 600000,
		"a WebSocket/HTTP connection must send its whole request head this fast"),
	RG_ROW_STRING("gamesrv-host", gamesrv_host, "127.0.0.1",
		"gamesrv address (the one shard when --gamesrvs is empty)"),
	RG_ROW_INT("gamesrv-port", gamesrv_port, 7701, 1, 65535,
		"gamesrv port (the one shard when --gamesrvs is empty)"),
	RG_ROW_STRING("gamesrvs", gamesrvs, "",
		"every game shard: HOST:PORT[,HOST:PORT...], the i-th is shard i (at most 16; "
		"empty: --gamesrv-host:--gamesrv-port as shard 1)"),
	RG_ROW_INT("gateway-id", gateway_id, 1, 1, 65535,
		"this gateway's id in the cluster, unique per gateway (the top 16 bits of its "
		"session ids)"),
	RG_ROW_STRING("instance", instance, "gateway-1", "this gateway's name in gamesrv's logs"),
	RG_ROW_INT("max-clients", max_clients, 10000, 1, 1000000,
		"clients past this get SERVER_FULL"),
	/* Players share addresses (NAT, carrier-grade NAT): the per-address
	 * limits stop one machine's flood, not a crowded office. */
	RG_ROW_INT("max-clients-per-addr", max_clients_per_addr, 1000, 0, 1000000,
		"live clients one IP address may have; more are closed at accept (0: any)"),
	RG_ROW_INT("connects-per-addr-per-sec", connects_per_addr_per_sec, 500, 0, 1000000,
		"new connections one IP address may open per second, as a burst too (0: any)"),
	/* A forwarded request is the client frame plus a few bytes, and must
	 * stay far below gamesrv's 4 MiB internal frame limit. */
	RG_ROW_INT("max-frame", max_frame, 65536, 64, 1 << 20, "largest client message body, bytes"),
	RG_ROW_INT("frame-timeout-ms", frame_timeout_ms, 10000, 0, 86400000,
		"close a client whose begun frame is not complete this long after (0: never)"),
	/* Must hold the largest reply gamesrv may send (a LoginReply with 256
	 * others is a few KiB) with room to spare. */
	RG_ROW_INT("send-queue-max", send_queue_max, 1 << 20, 16384, 1 << 30,
		"bytes queued for a client that does not read before it is cut off"),
	RG_ROW_INT("socket-send-buffer", socket_send_buffer, 256 << 10, 0, 1 << 26,
		"kernel send buffer per client, bytes (0: the kernel's own, which grows "
		"to megabytes for a client that does not read)"),
	RG_ROW_INT("msg-rate", msg_rate, 100, 0, 1000000,
		"messages per second one client may send; more get RATE_LIMITED (0: any)"),
	RG_ROW_INT("msg-burst", msg_burst, 200, 1, 1000000,
		"messages one client may send at once (the rate bucket's size)"),
	RG_ROW_INT("flood-refusals", flood_refusals, 100, 0, 1000000,
		"RATE_LIMITED answers, with no clean second between, before a disconnect"),
	/* Each login costs dbproxy a slow hash (login_guard.c). */
	RG_ROW_INT("logins-per-addr-per-sec", logins_per_addr_per_sec, 20, 0, 1000000,
		"login attempts one IP address may make per second, as a burst too; more "
		"get RATE_LIMITED (0: any)"),
	RG_ROW_INT("login-failures-per-addr", login_failures_per_addr, 5, 0, 1000000,
		"wrong passwords in a row from one IP address before its logins back off "
		"(1 s, doubling to 60 s; 0: never)"),
	RG_ROW_INT("creates-per-addr-per-hour", creates_per_addr_per_hour, 100, 0, 1000000,
		"new accounts one IP address may create per hour (0: any)"),
	RG_ROW_INT("idle-timeout-ms", idle_timeout_ms, 120000, 0, 86400000,
		"kick a client silent this long (0: never)"),
	RG_ROW_INT("request-timeout-ms", request_timeout_ms, 5000, 1, 600000,
		"a request unanswered this long gets Error TIMEOUT"),
	RG_ROW_INT("max-inflight", max_inflight, 32, 1, 1024,
		"unanswered requests one client may have"),
	RG_LINK_OPTIONS(struct gw_config, link, "gamesrv"),
	RG_ROW_INT("drain-ms", drain_ms, 5000, 0, 600000,
		"on SIGTERM, wait this long for clients to go"),
	RG_COMMON_OPTIONS(struct gw_config, common, 2, 7780),
	{ 0 },
};

/* cfg->shards from --gamesrvs, else gamesrv-host:gamesrv-port as shard 1.
 * Returns 0 or -1 after logging what is wrong. */
static int resolve_shards(struct gw_config *cfg)
{
	int n = rg_host_ports_resolve(cfg->gamesrvs, "gamesrvs", cfg->gamesrv_host,
				      "gamesrv-host", (uint16_t)cfg->gamesrv_port, cfg->shards,
				      GW_SHARDS_MAX);

	if (n < 0)
		return -1;
	cfg->shard_count = (unsigned)n;
	return 0;
}

void gw_config_defaults(struct gw_config *cfg)
{
	rg_options_defaults(gw_options, cfg);
	resolve_shards(cfg); /* the defaults are one valid shard */
}

int gw_config_load(struct gw_config *cfg, int argc, char **argv)
{
	int rc = rg_options_load(gw_options, cfg, &cfg->common, "gateway", argc, argv);

	if (rc != 0)
		return rc;
	if (!rg_link_options_valid(&cfg->link))
		return -1;
	if (cfg->tls && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
		RG_ERROR("--tls on needs --tls-cert and --tls-key");
		return -1;
	}
	return resolve_shards(cfg);
}
