/*
 * rg/admin.h: a process's admin port: `GET /metrics` over HTTP/1.1,
 * answered with the registry's Prometheus text (rg/metrics.h).
 *
 * The server runs on a libnet runtime of its own (one loop thread), so
 * scrapes never queue behind game traffic and never show up in the
 * process's own libnet figures. It is deliberately tiny: one request per
 * connection, GET only, headers capped, the connection closed after the
 * reply; it listens on loopback unless told otherwise, since it has no
 * authentication.
 *
 *   GET /metrics            200 text/plain; version=0.0.4
 *   GET anything else       404
 *   another method          405
 *   malformed request line  400
 *   headers past 8 KiB      431
 *
 * rg_metrics_add_net() exports a libnet runtime's own figures
 * (net_runtime_stats) into a registry, as ringgate_net_* metrics.
 */
#ifndef RG_ADMIN_H
#define RG_ADMIN_H

#include <stdint.h>

#include <net/net.h>

#include "rg/metrics.h"
#include "rg/options.h"

/* Largest request head (request line + headers) accepted. */
#define RG_ADMIN_HEADER_MAX 8192

/* A connection must send its first byte within this many ms of connecting,
 * and its whole request head within this many ms of that first byte;
 * otherwise it is closed unanswered (a slowloris cannot hold a slot). */
#define RG_ADMIN_REQUEST_TIMEOUT_MS 5000

/* Connections one address may hold open at once (of 64 in all); more are
 * closed at accept, so one slow client cannot take every slot. */
#define RG_ADMIN_MAX_PER_ADDR 8

struct rg_admin;

struct rg_admin_config {
	const char *host;          /* numeric address; NULL = 127.0.0.1      */
	uint16_t port;             /* 0 picks a free port (rg_admin_port)    */
	struct rg_metrics *metrics;/* rendered on each scrape; outlives us   */
};

/*
 * Start serving on a runtime of its own. Returns 0 and sets *out, or a
 * negative code (-EADDRINUSE, ...; net_strerror names it). Main thread.
 */
int rg_admin_start(const struct rg_admin_config *cfg, struct rg_admin **out /* OUT */);

/*
 * A process's admin port as its --admin-host, --admin-port and
 * --admin-port-file options in c say: port 0 without a port file means
 * off (*out = NULL, returns 0); otherwise start the server (port 0: on
 * any free port), write the bound port to the port file if one is set,
 * log where it listens and return 0, or log an ERROR and return the
 * negative code (say -EADDRINUSE). The process must then not start: a
 * taken admin port most likely belongs to another cluster on this host,
 * and a scrape of it (deploy/ringgate status) would show that cluster's
 * figures as this one's. Main thread.
 */
int rg_admin_start_logged(struct rg_metrics *m, const struct rg_common_config *c,
			  struct rg_admin **out /* OUT */);

/* The port the admin server listens on. */
uint16_t rg_admin_port(const struct rg_admin *a);

/* Stop serving (open connections are closed) and free. NULL is fine.
 * Main thread; call it before freeing anything a collector reads. */
void rg_admin_stop(struct rg_admin *a);

/*
 * Register rt's libnet figures in m (sessions open, accepted, reused,
 * rejected, dials, disconnects by reason, frames and bytes each way,
 * send-queue high water, cut-offs, receive pauses); they are read from
 * net_runtime_stats at each scrape, so rt must outlive the admin server.
 * Returns 0, or -ENOMEM (also recorded in rg_metrics_ok).
 */
int rg_metrics_add_net(struct rg_metrics *m, struct net_runtime *rt);

#endif /* RG_ADMIN_H */
