/*
 * Server services (the seeds' ServerService + Listener).
 *
 * One listening socket per server, accepted on loop 0 with one multishot
 * accept (io_uring) or accept4 on readiness (epoll). Accepted sockets are
 * dealt round-robin to all loops: the accepting loop adopts its share
 * directly, the others get theirs through a posted task. Accept errors
 * never stop the listener: EMFILE and friends pause accepting for a moment
 * (so a full fd table does not spin the loop) and then it re-arms.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* How long to stop accepting after EMFILE/ENFILE/ENOBUFS/ENOMEM. */
#define ACCEPT_PAUSE_MS 100
/* How often idle per-address entries are forgotten. */
#define ADDR_SWEEP_MS 5000

struct net_server {
	struct net__service svc;      /* first: sessions point at it */
	struct net_loop *accept_loop;
	struct net__handle handle;
	struct net__op accept_op;
	struct net_timer pause_timer;
	bool listening;               /* socket open (accept loop only)     */
	uint16_t port;
	unsigned max_sessions;
	atomic_uint sessions;         /* accepted and not yet closed        */
	unsigned next_loop;           /* round-robin cursor                 */
	bool addr_limited;            /* per-address limits configured      */
	struct net__addr_limits addr_limits; /* accept loop only            */
	struct net_timer sweep_timer;
};

static void arm_accept(struct net_server *srv);

void net__server_fini(struct net__service *svc)
{
	net__addr_limits_free(&((struct net_server *)svc)->addr_limits);
}

static void close_listener(struct net_server *srv)
{
	if (!srv->listening)
		return;
	srv->listening = false;
	net_timer_stop(&srv->pause_timer);
	net__engine_detach(srv->accept_loop, &srv->handle);
	net__sock_close(srv->handle.sock);
}

/* ---- accepting ------------------------------------------------------------ */

/* An accepted socket on its way to the loop that will own it. */
struct adopt_task {
	struct net__task task;
	struct net_server *srv;
	net__sock_t sock;
	struct net__addr peer;        /* family 0 when not looked up      */
	bool addr_counted;
};

static void release_addr(struct net_server *srv, const struct net__addr *peer);

static void adopt(struct net_server *srv, struct net_loop *loop, const struct adopt_task *at)
{
	struct net_session *s;

	if (atomic_load(&srv->svc.stopping) || atomic_load(&loop->stopping) ||
	    !(s = net__session_acquire(&srv->svc, loop))) {
		net__sock_close(at->sock);
		if (at->addr_counted)
			release_addr(srv, &at->peer);
		atomic_fetch_sub(&srv->sessions, 1);
		return;
	}
	s->peer = at->peer;
	s->addr_counted = at->addr_counted;
	net__session_open_accepted(s, at->sock);
}

static void run_adopt(struct net_loop *loop, void *arg)
{
	struct adopt_task *at = arg;

	adopt(at->srv, loop, at);
	free(at);
}

static void dispatch_accepted(struct net_server *srv, net__sock_t sock)
{
	struct net_runtime *rt = srv->svc.rt;
	struct net_loop *target = &rt->loops[srv->next_loop++ % rt->loop_count];
	struct adopt_task local = { .srv = srv, .sock = sock }, *at;

	if (srv->max_sessions && atomic_load(&srv->sessions) >= srv->max_sessions) {
		NET__COUNT(srv->accept_loop, rejected, 1);
		net__sock_close(sock);
		return;
	}
	if (srv->addr_limited) {
		net__sock_peer_addr(sock, &local.peer);
		if (!net__addr_admit(&srv->addr_limits, &local.peer, srv->accept_loop->now_ms)) {
			NET__COUNT(srv->accept_loop, rejected_addr, 1);
			net__sock_close(sock);
			return;
		}
		local.addr_counted = true;
	}
	atomic_fetch_add(&srv->sessions, 1);
	if (target != srv->accept_loop && (at = malloc(sizeof(*at))) != NULL) {
		*at = local;
		at->task.fn = run_adopt;
		at->task.arg = at;
		if (net__loop_post_task(target, &at->task, sizeof(*at), false) == 0)
			return;
		free(at);
		target = srv->accept_loop; /* could not hand it over: keep it */
	}
	adopt(srv, target, &local);
}

/* ---- per-address accounting (accept loop) --------------------------------- */

struct release_task {
	struct net__task task;
	struct net_server *srv;
	struct net__addr peer;
};

static void run_release(struct net_loop *loop, void *arg)
{
	struct release_task *rt = arg;

	(void)loop;
	net__addr_release(&rt->srv->addr_limits, &rt->peer);
	free(rt);
}

/* Sessions close on any loop; the table lives on the accepting one. */
static void release_addr(struct net_server *srv, const struct net__addr *peer)
{
	struct release_task *rt;

	if (net__on_loop(srv->accept_loop)) {
		net__addr_release(&srv->addr_limits, peer);
		return;
	}
	rt = malloc(sizeof(*rt));
	if (!rt)
		return; /* the count stays high: stricter, never looser */
	rt->task.fn = run_release;
	rt->task.arg = rt;
	rt->srv = srv;
	rt->peer = *peer;
	if (net__loop_post_task(srv->accept_loop, &rt->task, sizeof(*rt), false) != 0)
		free(rt);
}

static void sweep_due(struct net_timer *t, void *arg)
{
	struct net_server *srv = arg;

	(void)t;
	net__addr_sweep(&srv->addr_limits, srv->accept_loop->now_ms);
}

static bool is_resource_error(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

void net__listener_complete(void *listener, const struct net__cqe *cqe)
{
	struct net_server *srv = listener;
	struct net_loop *loop = srv->accept_loop;
	bool more = cqe->flags & NET__CQE_MORE;

	if (!more) {
		srv->accept_op.in_flight = false;
		loop->listener_ops--;
	}
	if (cqe->res >= 0) {
		if (srv->listening)
			dispatch_accepted(srv, (net__sock_t)cqe->res);
		else
			net__sock_close((net__sock_t)cqe->res);
	} else if (cqe->res != -ECANCELED) {
		NET__COUNT(loop, accept_errors, 1);
		if (is_resource_error(cqe->res)) {
			/* Out of descriptors or memory: retrying at once would
			 * fail again at once. Back off, then re-arm. */
			if (more)
				net__engine_cancel(loop, &srv->accept_op);
			net_timer_start(&srv->pause_timer, ACCEPT_PAUSE_MS, 0);
			return;
		}
	}
	if (!more && !net_timer_active(&srv->pause_timer))
		arm_accept(srv);
}

static void arm_accept(struct net_server *srv)
{
	struct net_loop *loop = srv->accept_loop;

	if (!srv->listening || srv->accept_op.in_flight || atomic_load(&srv->svc.stopping))
		return;
	srv->accept_op.type = NET__OP_ACCEPT;
	srv->accept_op.handle = &srv->handle;
	srv->accept_op.owner = srv;
	if (net__engine_submit(loop, &srv->accept_op) == 0) {
		srv->accept_op.in_flight = true;
		loop->listener_ops++;
		return;
	}
	/* The engine could not take it now (ring full, memory): try again
	 * shortly rather than stop accepting for good. */
	NET__COUNT(loop, accept_errors, 1);
	net_timer_start(&srv->pause_timer, ACCEPT_PAUSE_MS, 0);
}

static void accept_pause_over(struct net_timer *t, void *arg)
{
	(void)t;
	arm_accept(arg);
}

static void run_start_accept(struct net_loop *loop, void *arg)
{
	struct net_server *srv = arg;

	/* Started while the runtime drains: this loop has already stopped its
	 * services, and a listener armed now would keep it from ever being
	 * idle (net_runtime_stop would never return). */
	if (atomic_load(&loop->stopping)) {
		net__sock_close(srv->handle.sock);
		return;
	}
	if (net__timer_init(&srv->pause_timer, loop, accept_pause_over, srv) != 0 ||
	    net__timer_init(&srv->sweep_timer, loop, sweep_due, srv) != 0 ||
	    net__engine_attach(loop, &srv->handle) != 0) {
		/* Cannot listen on this loop after all: report through stats;
		 * net_server_start already returned. */
		NET__COUNT(loop, accept_errors, 1);
		net__sock_close(srv->handle.sock);
		return;
	}
	srv->listening = true;
	if (srv->addr_limited)
		net_timer_start(&srv->sweep_timer, ADDR_SWEEP_MS, ADDR_SWEEP_MS);
	arm_accept(srv);
}

/* ---- public ---------------------------------------------------------------- */

int net_server_start(struct net_runtime *rt, const struct net_server_config *cfg,
		     struct net_server **out)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	struct net_server *srv;
	int err;

	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->svc.kind = NET__SERVER;
	srv->svc.rt = rt;
	srv->svc.cfg = cfg->session;
	srv->max_sessions = cfg->max_sessions;
	srv->addr_limited = cfg->max_sessions_per_addr || cfg->accepts_per_addr_per_sec;
	srv->accept_loop = &rt->loops[0];
	if (atomic_load(&srv->accept_loop->stopping)) {
		err = -NET_ESHUTDOWN;
		goto out_free;
	}
	err = net__session_config_normalize(&srv->svc.cfg);
	if (err)
		goto out_free;
	srv->svc.pool = calloc(rt->loop_count, sizeof(*srv->svc.pool));
	if (!srv->svc.pool) {
		err = -ENOMEM;
		goto out_free;
	}
	err = net__addr_limits_init(&srv->addr_limits, cfg->max_sessions_per_addr,
				    cfg->accepts_per_addr_per_sec);
	if (err)
		goto out_free_pool;
	err = net__sock_addr(cfg->host ? cfg->host : "127.0.0.1", cfg->port, &addr, &addr_len);
	if (err)
		goto out_free_pool;
	err = net__sock_listen(&addr, addr_len, cfg->backlog > 0 ? cfg->backlog : 1024,
			       &srv->handle.sock, &srv->port);
	if (err)
		goto out_free_pool;
	/* Registered before the loop can start accepting, so that a stop
	 * that begins in between finds the server and closes its listener.
	 * From here on the runtime owns srv, even if the post fails. */
	net__service_register(rt, &srv->svc);
	err = net_loop_post_control(srv->accept_loop, run_start_accept, srv);
	if (err) {
		net__sock_close(srv->handle.sock);
		return err;
	}
	*out = srv;
	return 0;

out_free_pool:
	net__addr_limits_free(&srv->addr_limits);
	free(srv->svc.pool);
out_free:
	free(srv);
	return err;
}

uint16_t net_server_port(const struct net_server *srv)
{
	return srv->port;
}

unsigned net_server_session_count(const struct net_server *srv)
{
	return atomic_load(&srv->svc.live);
}

void net__server_session_closed(struct net_session *s)
{
	struct net_server *srv = (struct net_server *)s->service;

	if (s->addr_counted) {
		s->addr_counted = false;
		release_addr(srv, &s->peer);
	}
	atomic_fetch_sub(&srv->sessions, 1);
}

static void disconnect_all_on_loop(struct net__service *svc, struct net_loop *loop)
{
	for (uint32_t i = 0; i < loop->slot_count; i++) {
		struct net_session *s = net__slot(loop, i);

		if (s->service == svc)
			net_session_disconnect(s, NET_REASON_SHUTDOWN);
	}
}

void net__server_stop_on_loop(struct net__service *svc, struct net_loop *loop)
{
	struct net_server *srv = (struct net_server *)svc;

	atomic_store(&svc->stopping, true);
	if (loop == srv->accept_loop) {
		if (srv->accept_op.in_flight)
			net__engine_cancel(loop, &srv->accept_op);
		close_listener(srv);
	}
	disconnect_all_on_loop(svc, loop);
}

static void run_stop_listener(struct net_loop *loop, void *arg)
{
	struct net_server *srv = arg;

	if (srv->accept_op.in_flight)
		net__engine_cancel(loop, &srv->accept_op);
	close_listener(srv);
}

static void run_disconnect_all(struct net_loop *loop, void *arg)
{
	disconnect_all_on_loop(arg, loop);
}

void net_server_stop(struct net_server *srv, bool disconnect_all)
{
	struct net_runtime *rt = srv->svc.rt;

	atomic_store(&srv->svc.stopping, true);
	(void)net_loop_post_control(srv->accept_loop, run_stop_listener, srv);
	if (!disconnect_all)
		return;
	for (unsigned i = 0; i < rt->loop_count; i++)
		(void)net_loop_post_control(&rt->loops[i], run_disconnect_all, &srv->svc);
}
