/*
 * service: dbproxy's listening side for gamesrv links (internal.proto,
 * GameToDb in, DbToGame out, varint-length-delimited frames).
 *
 * Each link is an rg/link.h acceptor: our AuthChallenge, then gamesrv's
 * Hello(role "gamesrv", right proof) within the handshake deadline, then
 * HelloReply with our proof; anything else before that, a frame that does
 * not decode, or silence for dead_ms closes the link. Heartbeats and the
 * caps on links still in their handshake are rg/link.h's too.
 *
 * Once up each request (login, save, add_gold) is validated and
 * queued to the login workers or the writer; their threads answer with
 * DbToGame carrying the request's request_id, sent with net_send_to() by
 * session id (the link may be gone by then: the reply is dropped). A full
 * queue answers DB_BUSY at once; see docs/storage.md for why dbproxy does
 * not pause reading instead.
 */
#ifndef DBP_SERVICE_H
#define DBP_SERVICE_H

#include <stdint.h>

#include "net/net.h"
#include "rg/link.h"

#include "auth.h"
#include "writer.h"

struct dbp_service_config {
	const char *host;         /* listen address (numeric)                 */
	uint16_t port;            /* 0 picks a free port                      */
	unsigned max_links;       /* authenticated gamesrv links; 0 = any     */
	unsigned pending_max;     /* links in their handshake (rg/link.h)     */
	unsigned pending_per_addr; /* ... from one address                    */
	struct rg_link_rules rules; /* heartbeat, dead time, handshake deadline */
	struct dbp_writer *writer; /* both outlive the service's last reply    */
	struct dbp_auth *auth;
	const struct rg_link_key *link_key; /* the cluster secret; outlives the
				     service (rg/link_auth.h)                 */
};

struct dbp_service;

/*
 * Listen for gamesrv links on the runtime. Returns 0 and sets *out, or a
 * negative errno (-EADDRINUSE, ...). Main thread, before or after
 * net_runtime_start().
 */
int dbp_service_start(struct net_runtime *rt, const struct dbp_service_config *cfg,
		     struct dbp_service **out /* OUT */);

/* The port actually listened on. */
uint16_t dbp_service_port(const struct dbp_service *svc);

/* Stop accepting new links; live links go on being served. Any thread. */
void dbp_service_stop_accepting(struct dbp_service *svc);

/* Free the service once its runtime has stopped (no callback can run).
 * NULL is ignored. */
void dbp_service_destroy(struct dbp_service *svc);

#endif /* DBP_SERVICE_H */
