/*
 * gateway/tls.c: TLS for game clients (--tls on, docs/tls.md).
 *
 * One libnet TLS context (net_tls.h) serves the client listeners; SIGHUP
 * rereads the certificate and key into it: connections accepted from then
 * on use the new ones, live connections keep theirs, tickets stay valid.
 * The context's counters are shown on the admin port:
 *
 *   ringgate_gateway_tls_handshakes_total{version=}        completed, by protocol
 *   ringgate_gateway_tls_resumed_total                     ... of them from a ticket
 *   ringgate_gateway_tls_handshake_failures_total{reason=} by class (net_tls_failure_str)
 *   ringgate_gateway_tls_reloads_total{result=}            SIGHUP reloads, ok / failed
 *
 * Linked into the executable only (the fuzzers' fake libnet has no TLS).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <net/net_tls.h>
#include <rg/log.h>
#include <rg/metrics.h>

#include "gateway.h"

struct tls_figures {
	struct net_tls *tls;
	struct rg_counter *handshakes, *resumed, *reloads, *reload_failures;
	struct rg_counter *failures[NET_TLS_FAIL_COUNT];
	atomic_ulong failed_reloads;  /* counted here: libnet counts successes */
};

static struct tls_figures *figures;

static void collect(void *arg)
{
	struct tls_figures *f = arg;
	struct net_tls_stats st;

	net_tls_get_stats(f->tls, &st);
	/* The contexts allow TLS 1.3 only: every handshake is one. */
	rg_counter_set(f->handshakes, st.tls13);
	rg_counter_set(f->resumed, st.resumed);
	rg_counter_set(f->reloads, st.reloads);
	rg_counter_set(f->reload_failures, atomic_load(&f->failed_reloads));
	for (unsigned i = 0; i < NET_TLS_FAIL_COUNT; i++)
		rg_counter_set(f->failures[i], st.failures[i]);
}

static int add_metrics(struct gateway *gw)
{
	struct rg_metrics *r = gw_metrics_registry(gw);
	struct tls_figures *f;
	char labels[64];

	if (!r)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->tls = gw->client_tls;
	f->handshakes = rg_metrics_counter(r, "ringgate_gateway_tls_handshakes_total",
					   "version=\"TLSv1.3\"",
					   "Client TLS handshakes completed, by negotiated version");
	f->resumed = rg_metrics_counter(r, "ringgate_gateway_tls_resumed_total", NULL,
					"Client TLS handshakes resumed from a session ticket");
	f->reloads = rg_metrics_counter(r, "ringgate_gateway_tls_reloads_total", "result=\"ok\"",
					"Certificate reloads (SIGHUP), by result");
	f->reload_failures = rg_metrics_counter(r, "ringgate_gateway_tls_reloads_total",
						"result=\"failed\"",
						"Certificate reloads (SIGHUP), by result");
	for (unsigned i = 0; i < NET_TLS_FAIL_COUNT; i++) {
		snprintf(labels, sizeof(labels), "reason=\"%s\"", net_tls_failure_str(i));
		f->failures[i] = rg_metrics_counter(r, "ringgate_gateway_tls_handshake_failures_total",
						    labels, "Client TLS handshakes failed, by reason");
	}
	figures = f;
	return rg_metrics_on_collect(r, collect, f, free);
}

int gw_tls_setup(struct gateway *gw)
{
	const struct gw_config *cfg = &gw->cfg;
	char err[512];
	int rc;

	if (!cfg->tls)
		return 0;
	rc = net_tls_server_create(cfg->tls_cert, cfg->tls_key, err, sizeof(err), &gw->client_tls);
	if (rc < 0) {
		RG_ERROR("TLS: %s", rc == -ENOMEM ? net_strerror(rc) : err);
		return -1;
	}
	if (add_metrics(gw) < 0) {
		RG_ERROR("TLS: cannot set up its metrics");
		return -1;
	}
	RG_INFO("TLS 1.3 required on the client port; certificate %s", cfg->tls_cert);
	return 0;
}

void gw_tls_reload(void *arg)
{
	struct gateway *gw = arg;
	char err[512];

	if (!gw->client_tls) {
		RG_INFO("SIGHUP: TLS is off, nothing to reload");
		return;
	}
	if (net_tls_reload(gw->client_tls, gw->cfg.tls_cert, gw->cfg.tls_key, err,
			   sizeof(err)) < 0) {
		if (figures)
			atomic_fetch_add(&figures->failed_reloads, 1);
		RG_ERROR("SIGHUP: TLS certificate not reloaded, the old one stays in use: %s", err);
		return;
	}
	RG_INFO("SIGHUP: TLS certificate reloaded from %s (new connections use it)",
		gw->cfg.tls_cert);
}

void gw_tls_fini(struct gateway *gw)
{
	net_tls_destroy(gw->client_tls);
	gw->client_tls = NULL;
}
