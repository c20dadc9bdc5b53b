/*
 * keepalive.c: the heartbeat timer of an internal link (see keepalive.h).
 */
#include "keepalive.h"

#include <rg/log.h>

static void on_check(struct net_timer *timer, void *arg)
{
	struct keepalive *k = arg;
	uint64_t now = net_loop_now(net_session_loop(k->session));
	int rc;

	(void)timer;
	if (rg_heartbeat_dead(&k->hb, now)) {
		RG_WARN("%s link %s silent for more than %llu ms: closing it", k->peer_role,
			NET_SESSION_PEER(k->session), (unsigned long long)k->hb.dead_ms);
		net_session_disconnect(k->session, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	if (rg_heartbeat_due(&k->hb, now)) {
		rc = k->send(k->session);
		if (rc < 0)
			RG_WARN("%s link %s: heartbeat not sent: %s", k->peer_role,
				NET_SESSION_PEER(k->session), net_strerror(rc));
	}
}

int keepalive_start(struct keepalive *k, struct net_session *s, uint32_t interval_ms,
		    uint32_t dead_ms, keepalive_send_fn send, const char *peer_role)
{
	struct net_loop *loop = net_session_loop(s);
	uint64_t check_ms = (interval_ms < dead_ms ? interval_ms : dead_ms) / 4;
	int rc;

	if (check_ms < 5)
		check_ms = 5;
	k->session = s;
	k->send = send;
	k->peer_role = peer_role;
	rg_heartbeat_init(&k->hb, interval_ms, dead_ms, net_loop_now(loop));
	rc = net_timer_create(loop, on_check, k, &k->timer);
	if (rc < 0) {
		k->timer = NULL;
		return rc;
	}
	net_timer_start(k->timer, check_ms, check_ms);
	return 0;
}

void keepalive_heard(struct keepalive *k)
{
	rg_heartbeat_heard(&k->hb, net_loop_now(net_session_loop(k->session)));
}

void keepalive_stop(struct keepalive *k)
{
	if (k->timer) {
		net_timer_destroy(k->timer);
		k->timer = NULL;
	}
}
