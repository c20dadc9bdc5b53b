/*
 * The Service base (service.h): registration with the runtime, the
 * session config's defaults, and the calls that dispatch to a server or a
 * client by kind, so the core never needs to know which one it has.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

void net__service_register(struct net_runtime *rt, struct net__service *svc)
{
	pthread_mutex_lock(&rt->lock);
	svc->next = rt->services;
	rt->services = svc;
	pthread_mutex_unlock(&rt->lock);
}

int net__session_config_normalize(struct net_session_config *cfg)
{
	/* Exactly one receive hook: with both, one would be ignored. */
	if (!cfg->ops || !cfg->ops->on_recv == !cfg->ops->on_frame)
		return -EINVAL;
#ifndef NET_HAVE_TLS
	if (cfg->tls)
		return -ENOTSUP; /* built without OpenSSL: net_tls.h */
#endif
	if (!cfg->max_frame)
		cfg->max_frame = 65536;
	/* A session keeps its limit in 32 bits (as chunks count theirs). */
	if (cfg->max_frame > UINT32_MAX)
		cfg->max_frame = UINT32_MAX;
	if (!cfg->send_queue_max)
		cfg->send_queue_max = 1u << 20;
	if (!cfg->recv_buffer_max)
		cfg->recv_buffer_max = cfg->max_frame + NET_VARINT_MAX;
	/* rbuf counts in 32 bits, may pass the cap by one engine buffer
	 * while paused, and doubles its capacity to grow. */
	if (cfg->recv_buffer_max > UINT32_MAX / 4)
		cfg->recv_buffer_max = UINT32_MAX / 4;
	if (!cfg->flush_timeout_ms)
		cfg->flush_timeout_ms = 2000;
	return 0;
}

void net__service_free(struct net__service *svc)
{
	if (svc->kind == NET__SERVER)
		net__server_fini(svc);
	free(svc->owned);
	free(svc->pool);
	free(svc);
}

void net__service_stop_on_loop(struct net__service *svc, struct net_loop *loop)
{
	if (svc->kind == NET__SERVER)
		net__server_stop_on_loop(svc, loop);
	else
		net__client_stop_on_loop(svc, loop);
}

void net__service_session_closed(struct net_session *s)
{
	if (s->service->kind == NET__SERVER)
		net__server_session_closed(s);
	else
		net__client_session_closed(s);
}
