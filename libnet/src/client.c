/*
 * Client services (the seeds' ClientService): keep N sessions dialed to one
 * address. Dial slot i lives on loop i % loops for its whole life. When a
 * dial fails or a connected session closes, the slot redials after a delay
 * that starts at backoff_min, doubles per failure up to backoff_max, and
 * carries +-25% jitter so that many clients do not hammer a restarted peer
 * in lock-step. A successful connect resets the delay.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct dial_slot {
	struct net_client *cli;
	struct net_loop *loop;
	uint32_t index;
	uint32_t delay_ms;            /* next backoff                       */
	uint64_t rng;                 /* xorshift state for jitter          */
	struct net_timer timer;
	bool timer_ready;
};

struct net_client {
	struct net__service svc;      /* first: sessions point at it */
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint32_t backoff_min_ms, backoff_max_ms, connect_timeout_ms;
	unsigned slot_count;
	struct dial_slot *slots;
};

static void dial(struct dial_slot *slot);

static uint32_t jittered(struct dial_slot *slot, uint32_t ms)
{
	uint64_t x = slot->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	slot->rng = x;
	/* ms * [0.75, 1.25) */
	return (uint32_t)(ms * 3 / 4 + x % (ms / 2 + 1));
}

static void redial_later(struct dial_slot *slot)
{
	struct net_client *cli = slot->cli;

	if (atomic_load(&cli->svc.stopping) || atomic_load(&slot->loop->stopping))
		return;
	net_timer_start(&slot->timer, jittered(slot, slot->delay_ms), 0);
	slot->delay_ms = slot->delay_ms >= cli->backoff_max_ms / 2 ? cli->backoff_max_ms
								    : slot->delay_ms * 2;
}

static void redial_due(struct net_timer *t, void *arg)
{
	(void)t;
	dial(arg);
}

static void dial(struct dial_slot *slot)
{
	struct net_client *cli = slot->cli;
	struct net_session *s;

	if (atomic_load(&cli->svc.stopping) || atomic_load(&slot->loop->stopping))
		return;
	s = net__session_acquire(&cli->svc, slot->loop);
	if (!s) {
		redial_later(slot);
		return;
	}
	s->client_slot = slot->index;
	if (net__session_dial(s, &cli->addr, cli->addr_len, cli->connect_timeout_ms) != 0) {
		NET__COUNT(slot->loop, connect_failed, 1);
		s->state = NET__S_CLOSED;
		net_session_unref(s);
		redial_later(slot);
	}
}

static void run_start_slot(struct net_loop *loop, void *arg)
{
	struct dial_slot *slot = arg;

	(void)loop;
	if (net__timer_init(&slot->timer, slot->loop, redial_due, slot) != 0)
		return;
	slot->timer_ready = true;
	dial(slot);
}

void net__client_session_connected(struct net_session *s)
{
	struct net_client *cli = (struct net_client *)s->service;

	cli->slots[s->client_slot].delay_ms = cli->backoff_min_ms;
}

void net__client_session_closed(struct net_session *s)
{
	struct net_client *cli = (struct net_client *)s->service;

	redial_later(&cli->slots[s->client_slot]);
}

void net__client_stop_on_loop(struct net__service *svc, struct net_loop *loop)
{
	struct net_client *cli = (struct net_client *)svc;

	atomic_store(&svc->stopping, true);
	for (unsigned i = 0; i < cli->slot_count; i++)
		if (cli->slots[i].loop == loop && cli->slots[i].timer_ready)
			net_timer_stop(&cli->slots[i].timer);
	for (uint32_t i = 0; i < loop->slot_count; i++)
		if (net__slot(loop, i)->service == svc)
			net_session_disconnect(net__slot(loop, i), NET_REASON_SHUTDOWN);
}

int net_client_start(struct net_runtime *rt, const struct net_client_config *cfg,
		     struct net_client **out)
{
	struct net_client *cli = calloc(1, sizeof(*cli));
	int err;

	if (!cli)
		return -ENOMEM;
	cli->svc.kind = NET__CLIENT;
	cli->svc.rt = rt;
	cli->svc.cfg = cfg->session;
	cli->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : 100;
	cli->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : 10000;
	if (cli->backoff_max_ms < cli->backoff_min_ms)
		cli->backoff_max_ms = cli->backoff_min_ms;
	cli->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : 5000;
	cli->slot_count = cfg->sessions ? cfg->sessions : 1;
	err = net__session_config_normalize(&cli->svc.cfg);
	if (err)
		goto out_free;
	err = net__sock_addr(cfg->host ? cfg->host : "127.0.0.1", cfg->port, &cli->addr,
			     &cli->addr_len);
	if (err)
		goto out_free;
	cli->svc.pool = calloc(rt->loop_count, sizeof(*cli->svc.pool));
	cli->slots = calloc(cli->slot_count, sizeof(*cli->slots));
	if (!cli->svc.pool || !cli->slots) {
		err = -ENOMEM;
		goto out_free;
	}
	for (unsigned i = 0; i < cli->slot_count; i++) {
		struct dial_slot *slot = &cli->slots[i];

		slot->cli = cli;
		slot->index = i;
		slot->loop = &rt->loops[i % rt->loop_count];
		slot->delay_ms = cli->backoff_min_ms;
		slot->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)(uintptr_t)cli + i);
	}
	cli->svc.owned = cli->slots;
	net__service_register(rt, &cli->svc);
	/* Registered first: from here on the runtime owns cli, even if a
	 * post below fails because a loop is already stopping. */
	for (unsigned i = 0; i < cli->slot_count; i++)
		(void)net_loop_post_control(cli->slots[i].loop, run_start_slot, &cli->slots[i]);
	*out = cli;
	return 0;

out_free:
	free(cli->slots);
	free(cli->svc.pool);
	free(cli);
	return err;
}

unsigned net_client_connected_count(const struct net_client *cli)
{
	return atomic_load(&cli->svc.live);
}

static void run_stop_client(struct net_loop *loop, void *arg)
{
	net__client_stop_on_loop(arg, loop);
}

void net_client_stop(struct net_client *cli)
{
	struct net_runtime *rt = cli->svc.rt;

	atomic_store(&cli->svc.stopping, true);
	for (unsigned i = 0; i < rt->loop_count; i++)
		(void)net_loop_post_control(&rt->loops[i], run_stop_client, &cli->svc);
}
