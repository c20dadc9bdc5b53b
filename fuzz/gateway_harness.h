/*
 * gateway_harness.h: the gateway as its fuzz targets (fuzz_gateway,
 * fuzz_ws) run it on fake_net - set up and torn down in one place, so every
 * target fuzzes the same gateway: the gateway's own defaults, one loop, and
 * always its shard links (a gateway without them is not one that runs; the
 * ws target once fuzzed one by accident).
 */
#ifndef RINGGATE_FUZZ_GATEWAY_HARNESS_H
#define RINGGATE_FUZZ_GATEWAY_HARNESS_H

#include "gateway.h"

/* The client port the fuzzed gateway opens. */
enum gw_fuzz_port {
	GW_FUZZ_TCP, /* framed ClientMessages (gw_clients_config)      */
	GW_FUZZ_WS,  /* the WebSocket port (gw_ws_config)              */
};

/* The fake_net services gw_fuzz_setup registers, in this order. */
enum {
	GW_FUZZ_SVC_CLIENTS = 0, /* the client port                           */
	GW_FUZZ_SVC_SHARD = 1,   /* the link to shard 1, the defaults' only one:
				    dialled when the target connects it     */
};

/*
 * Start the gateway *gw (zeroed by the caller) on fake_net: the defaults of
 * gateway/config.c made quiet (instance "gateway-fuzz", one loop, logs at
 * error, no admin port, no kernel send buffer, no page for the WebSocket
 * port so its GETs are 404, links unsealed as FUZZ_PLAIN_RULES explains)
 * with the cluster key of fuzz_setup() (called here), and max_frame when
 * not 0; then its runtime, metrics, loops, the client port, the shard links
 * and the loop timers, and the world settles. Any failure aborts.
 */
void gw_fuzz_setup(struct gateway *gw, enum gw_fuzz_port port, long max_frame);

/*
 * Stop *gw as its shutdown does (loops finished, links and port stopped,
 * the runtime stopped), check that no session outlived that, and free
 * everything gw_fuzz_setup made.
 */
void gw_fuzz_teardown(struct gateway *gw);

#endif /* RINGGATE_FUZZ_GATEWAY_HARNESS_H */
