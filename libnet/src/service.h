/*
 * The Service base (the seeds' Service): what server and client services
 * share, and the hooks through which sessions report to the service they
 * belong to. A struct net_server (server.c) or struct net_client
 * (client.c) begins with a struct net__service, so a session's `service`
 * pointer leads to either; `kind` says which.
 *
 * A service is registered with its runtime when it starts and freed by
 * net_runtime_destroy(); `stopping` and `live` are read from any thread.
 */
#ifndef NET_SERVICE_H
#define NET_SERVICE_H

#include "net/net.h"

#include <stdatomic.h>

struct net__cqe;
struct net_loop;
struct net_runtime;
struct net_session;

enum net__service_kind { NET__SERVER, NET__CLIENT };

/* What server and client services share: config and per-loop pools. */
struct net__service {
	enum net__service_kind kind;
	struct net_runtime *rt;
	struct net_session_config cfg;
	struct net__service *next;    /* runtime's list                        */
	atomic_bool stopping;
	atomic_uint live;             /* connected sessions, any thread        */
	/* Per loop: free sessions of this service (sized for user_size). */
	struct net_session **pool;
	void *owned;                  /* freed with the service (client slots) */
};

/* ---- service.c ------------------------------------------------------------ */

/* Register a service with the runtime (for stop and destroy). Any thread. */
void net__service_register(struct net_runtime *rt, struct net__service *svc);
/* Fill defaults into a session config; -EINVAL unless it has exactly one
 * receive hook. */
int net__session_config_normalize(struct net_session_config *cfg);
/* Free a service at runtime destroy. */
void net__service_free(struct net__service *svc);
/* The runtime is stopping: the service stops on this loop (its thread). */
void net__service_stop_on_loop(struct net__service *svc, struct net_loop *loop);
/* A session of the service was released after a disconnect (servers drop
 * their count, clients schedule a redial). */
void net__service_session_closed(struct net_session *s);

/* ---- the kinds' own hooks (server.c, client.c) ---------------------------- */

/* An accept completion for a server's listener. */
void net__listener_complete(void *listener, const struct net__cqe *cqe);
/* What a server frees beyond the base (its per-address table). */
void net__server_fini(struct net__service *svc);
void net__server_session_closed(struct net_session *s);
void net__client_session_closed(struct net_session *s);
/* A dial completed successfully: clients reset their backoff. */
void net__client_session_connected(struct net_session *s);
void net__server_stop_on_loop(struct net__service *svc, struct net_loop *loop);
void net__client_stop_on_loop(struct net__service *svc, struct net_loop *loop);

#endif /* NET_SERVICE_H */
