/*
 * metrics: what the gateway shows on its admin port (rg/metrics.h), beyond
 * libnet's own figures:
 *
 *   ringgate_gateway_gamesrv_link_up            1 while every shard's link is up
 *   ringgate_gateway_gamesrv_reconnects_total   link ups after the first, all shards
 *   ringgate_gateway_shard_link_up{shard=}      1 while that shard has answered Hello
 *   ringgate_gateway_shard_reconnects_total{shard=}  its link ups after the first
 *   ringgate_gateway_shard_requests_total{shard=}    client requests sent to it
 *   ringgate_gateway_redirects_total            requests a shard sent to another
 *   ringgate_gateway_handoffs_total{result=}    players moved between shards through
 *                                               this gateway: ok, failed, abandoned
 *   ringgate_gateway_clients                    connected client sessions
 *   ringgate_gateway_request_seconds{request=}  client request -> reply, one
 *                                               histogram per ClientMessage body
 *
 * The two unlabelled link figures are what they were with one gamesrv
 * (deploy/ringgate status reads them); the per-shard ones say which.
 *
 * Only requests answered by gamesrv are timed (a TIMEOUT or
 * SERVICE_UNAVAILABLE answered by the gateway itself says nothing about
 * gamesrv's latency). The per-request histograms are named from the
 * ClientMessage descriptor, so a new request type gets one by itself.
 * Updates come from any loop thread (atomics); the registry is freed only
 * after the runtime has stopped, so no loop can observe into freed memory.
 * Without gw_metrics_init (a test harness driving the gateway's files),
 * gw->metrics is NULL and every update is a no-op.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <rg/admin.h>
#include <rg/metrics.h>

#include "gateway.h"

/* ClientMessage body field numbers below this get a histogram. */
#define REQUEST_KINDS 64

/* One shard's figures. */
struct gw_shard_metrics {
	struct rg_gauge *link_up;
	struct rg_counter *reconnects;
	struct rg_counter *requests;
	atomic_bool was_up;        /* the link has been up once */
};

struct gw_metrics {
	struct rg_metrics *registry;
	struct rg_admin *admin;
	struct rg_gauge *link_up;
	struct rg_counter *reconnects;
	struct rg_gauge *clients;
	struct rg_histogram *request_seconds[REQUEST_KINDS];
	struct gw_shard_metrics shards[GW_SHARDS_MAX];
	struct rg_counter *redirects;
	struct rg_counter *handoffs[GW_HANDOFF_ENDS];
	atomic_uint links_up;      /* shard links up now */
};

static void collect(void *arg)
{
	struct gateway *gw = arg;

	rg_gauge_set(gw->metrics->clients, atomic_load(&gw->client_count));
	/* Here rather than at each change: links change on several threads. */
	rg_gauge_set(gw->metrics->link_up,
		     atomic_load(&gw->metrics->links_up) == gw->cfg.shard_count);
}

int gw_metrics_init(struct gateway *gw)
{
	const ProtobufCMessageDescriptor *desc = &ringgate__client__client_message__descriptor;
	struct gw_metrics *mx = calloc(1, sizeof(*mx));
	struct rg_metrics *r;
	char labels[64];

	if (!mx)
		return -ENOMEM;
	gw->metrics = mx;
	mx->registry = r = rg_metrics_create();
	if (!r)
		return -ENOMEM;
	mx->link_up = rg_metrics_gauge(r, "ringgate_gateway_gamesrv_link_up", NULL,
				       "1 while the link to every game shard is up (Hello "
				       "answered)");
	mx->reconnects = rg_metrics_counter(r, "ringgate_gateway_gamesrv_reconnects_total", NULL,
					    "Times a game shard's link came back up after its "
					    "first, all shards");
	mx->clients = rg_metrics_gauge(r, "ringgate_gateway_clients", NULL,
				       "Connected client sessions");
	mx->redirects = rg_metrics_counter(r, "ringgate_gateway_redirects_total", NULL,
					   "Client requests a game shard sent on to another (the one "
					   "holding the account)");
	for (unsigned i = 0; i < GW_HANDOFF_ENDS; i++) {
		static const char *const ends[GW_HANDOFF_ENDS] = {
			[GW_HANDOFF_OK] = "ok",
			[GW_HANDOFF_FAILED] = "failed",
			[GW_HANDOFF_ABANDONED] = "abandoned",
		};

		snprintf(labels, sizeof(labels), "result=\"%s\"", ends[i]);
		mx->handoffs[i] = rg_metrics_counter(r, "ringgate_gateway_handoffs_total", labels,
						     "Players handed from one game shard to another "
						     "through this gateway, by how it ended");
	}
	for (unsigned i = 0; i < gw->cfg.shard_count; i++) {
		struct gw_shard_metrics *sm = &mx->shards[i];

		snprintf(labels, sizeof(labels), "shard=\"%u\"", i + 1);
		sm->link_up = rg_metrics_gauge(r, "ringgate_gateway_shard_link_up", labels,
					       "1 while the link to this game shard is up (Hello "
					       "answered)");
		sm->reconnects = rg_metrics_counter(r, "ringgate_gateway_shard_reconnects_total",
						    labels, "Times the link to this game shard "
						    "came back up after the first");
		sm->requests = rg_metrics_counter(r, "ringgate_gateway_shard_requests_total",
						  labels, "Client requests sent to this game shard "
						  "(redirected ones again)");
	}
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];

		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->id >= REQUEST_KINDS)
			continue;
		snprintf(labels, sizeof(labels), "request=\"%s\"", f->name);
		mx->request_seconds[f->id] = rg_metrics_histogram(
			r, "ringgate_gateway_request_seconds", labels,
			"Client request to gamesrv's reply, by request type", RG_BUCKETS_SECONDS);
	}
	rg_metrics_add_net(r, gw->rt);
	if (rg_metrics_on_collect(r, collect, gw, NULL) < 0 || !rg_metrics_ok(r))
		return -ENOMEM;
	return 0;
}

void gw_metrics_request_done(struct gateway *gw, unsigned kind, uint64_t elapsed_ns)
{
	if (gw->metrics && kind < REQUEST_KINDS)
		rg_histogram_observe(gw->metrics->request_seconds[kind], elapsed_ns);
}

void gw_metrics_link_changed(struct gateway *gw, uint32_t shard, bool up)
{
	struct gw_metrics *mx = gw->metrics;
	struct gw_shard_metrics *sm;

	if (!mx || shard == 0 || shard > gw->cfg.shard_count)
		return;
	sm = &mx->shards[shard - 1];
	rg_gauge_set(sm->link_up, up);
	if (up)
		atomic_fetch_add(&mx->links_up, 1);
	else
		atomic_fetch_sub(&mx->links_up, 1);
	if (up && atomic_exchange(&sm->was_up, true)) {
		rg_counter_add(sm->reconnects, 1);
		rg_counter_add(mx->reconnects, 1);
	}
}

void gw_metrics_request_sent(struct gateway *gw, uint32_t shard)
{
	if (gw->metrics && shard != 0 && shard <= gw->cfg.shard_count)
		rg_counter_add(gw->metrics->shards[shard - 1].requests, 1);
}

void gw_metrics_redirected(struct gateway *gw)
{
	if (gw->metrics)
		rg_counter_add(gw->metrics->redirects, 1);
}

void gw_metrics_handoff(struct gateway *gw, enum gw_handoff_end end)
{
	if (gw->metrics && end < GW_HANDOFF_ENDS)
		rg_counter_add(gw->metrics->handoffs[end], 1);
}

struct rg_metrics *gw_metrics_registry(struct gateway *gw)
{
	return gw->metrics ? gw->metrics->registry : NULL;
}

int gw_admin_start(struct gateway *gw)
{
	return rg_admin_start_logged(gw->metrics->registry, &gw->cfg.common,
				     &gw->metrics->admin);
}

void gw_admin_stop(struct gateway *gw)
{
	if (!gw->metrics)
		return;
	rg_admin_stop(gw->metrics->admin);
	gw->metrics->admin = NULL;
}

void gw_metrics_fini(struct gateway *gw)
{
	if (!gw->metrics)
		return;
	rg_admin_stop(gw->metrics->admin);
	rg_metrics_destroy(gw->metrics->registry);
	free(gw->metrics);
	gw->metrics = NULL;
}
