/*
 * game.c: the game thread (see game.h): its loop, the events it takes from
 * the network loops, the drain, and its life cycle. The request handlers
 * are in play.c.
 *
 * Threading: everything here runs on the game thread, except
 * gs_game_init/start/stop/fini (main thread, while the game thread is not
 * running, or talking to it through the queue). Game state therefore needs
 * no lock.
 *
 * The loop: take the queued events (waiting at most until the next tick)
 * and handle each at once - a request is answered as soon as it is read,
 * not at the next tick, so the tick adds no latency - then, when the tick
 * is due, run the time-driven work: dbproxy call deadlines, save retries,
 * autosave. The tick is fixed: a late tick runs once, it is not caught up
 * in a burst.
 */
#define _POSIX_C_SOURCE 200809L
#include "game.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "lease.h"
#include "play.h"

/* Every client of a gateway link that closed is gone. */
static void gate_down(struct gs_game *g, net_session_id link)
{
	struct gs_client *c = g->world.client_list;
	size_t n = 0;

	while (c) {
		struct gs_client *next = c->next;

		if (c->key.link == link) {
			gs_play_client_gone(g, c);
			n++;
		}
		c = next;
	}
	RG_INFO("gateway link closed: %zu client sessions ended", n);
}

/* Shutdown: stop taking requests, kick everyone, save every player. */
static void start_drain(struct gs_game *g)
{
	struct gs_client *c = g->world.client_list;
	size_t players = g->world.online_count;

	g->draining = true;
	g->drain_deadline_ms = rg_now_ms() + g->cfg.drain_ms;
	RG_INFO("draining: saving %zu online players", players);
	while (c) {
		struct gs_client *next = c->next;

		if (!c->player || !c->player->stream.detached)
			(void)gs_gate_out_kick(&g->out, c->key.link, c->key.session,
					    RINGGATE__CLIENT__ERROR_CODE__SHUTTING_DOWN,
					    "the game server is stopping");
		gs_play_client_gone(g, c);
		c = next;
	}
}

void gs_game_handle_event(struct gs_game *g, struct gs_game_event *ev)
{
	struct gs_client *c;

	switch (ev->type) {
	case GS_GAME_EV_CLIENT_REQUEST:
		gs_play_request(g, ev->link, ev->deadline_ms, ev->gate_msg->request);
		break;
	case GS_GAME_EV_CLIENT_GONE:
		c = gs_world_client_find(&g->world, ev->link, ev->gate_msg->gone->session);
		if (c)
			gs_play_client_gone(g, c);
		break;
	case GS_GAME_EV_HANDOFF_RESULT:
		gs_play_handoff_result(g, ev->link, ev->gate_msg->handoff_result);
		break;
	case GS_GAME_EV_GATE_DOWN:
		gate_down(g, ev->link);
		break;
	case GS_GAME_EV_DB_UP:
		gs_db_link_on_up(&g->db, ev->db_index, ev->link);
		break;
	case GS_GAME_EV_DB_DOWN:
		gs_db_link_on_down(&g->db, ev->db_index, ev->link);
		break;
	case GS_GAME_EV_DB_REPLY:
		gs_db_link_on_reply(&g->db, ev->db_index, ev->db_msg);
		break;
	case GS_GAME_EV_SHUTDOWN:
		start_drain(g);
		break;
	}
}

static void *game_main(void *arg)
{
	struct gs_game *g = arg;
	uint64_t next_tick = rg_now_ms() + g->cfg.tick_ms;

	for (;;) {
		struct gs_game_event *ev = gs_game_queue_take(g->queue, next_tick);
		uint64_t now;

		while (ev) {
			struct gs_game_event *next = ev->next;

			gs_game_handle_event(g, ev);
			gs_game_queue_release(g->queue, ev);
			ev = next;
		}
		now = rg_now_ms();
		if (now >= next_tick) {
			uint64_t tick_start_ns = rg_now_ns();

			gs_db_link_expire(&g->db, now);
			gs_play_tick(g, now);
			rg_histogram_observe(g->cfg.metrics->tick_seconds,
					     rg_now_ns() - tick_start_ns);
			rg_gauge_set(g->cfg.metrics->players_online,
				     (int64_t)g->world.online_count);
			rg_gauge_set(g->cfg.metrics->players_detached,
				     (int64_t)g->streams.detached_count);
			rg_gauge_set(g->cfg.metrics->resume_kept_bytes,
				     (int64_t)g->streams.total_bytes);
			next_tick += g->cfg.tick_ms;
			if (next_tick <= now) /* late: skip, do not burst */
				next_tick = now + g->cfg.tick_ms;
		}
		if (g->draining && gs_db_link_pending(&g->db) == 0 && !gs_play_saves_waiting(g)) {
			RG_INFO("drain done: every dbproxy call answered");
			break;
		}
		if (g->draining && now >= g->drain_deadline_ms)
			break; /* gs_game_stop reports what is left */
	}
	return NULL;
}

/* ---- life ---------------------------------------------------------------------- */

/* The zones (the first, then the others) and, when on, the views. */
static int game_world_init(struct gs_game *g, const struct gs_game_config *cfg)
{
	struct gs_zone_bounds zones[GS_RULES_ZONES_MAX];
	int rc;

	if (cfg->more_zone_count >= GS_RULES_ZONES_MAX)
		return -EINVAL;
	zones[0] = cfg->zone;
	if (cfg->more_zone_count > 0)
		memcpy(&zones[1], cfg->more_zones, cfg->more_zone_count * sizeof(zones[0]));
	rc = gs_world_init(&g->world, zones, 1 + cfg->more_zone_count);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < cfg->zone_shard_count; i++) {
		struct gs_zone *z = gs_world_zone(&g->world, cfg->zone_shards[i].zone);

		if (z)
			z->shard = cfg->zone_shards[i].shard;
	}
	if (!cfg->interest.enabled)
		return 0;
	rc = gs_bundle_init(&g->views, &cfg->interest);
	if (rc < 0)
		gs_world_fini(&g->world);
	return rc;
}

/* Every handle NULL: updates through it are no-ops (rg/metrics.h). */
static struct gs_metrics no_metrics;

int gs_game_init(struct gs_game *g, const struct gs_game_config *cfg, struct net_runtime *rt,
	      struct gs_game_queue *q)
{
	int rc;

	memset(g, 0, sizeof(*g));
	g->cfg = *cfg;
	g->queue = q;
	g->out.rt = rt;
	if (g->cfg.tick_ms == 0)
		g->cfg.tick_ms = 1;
	if (g->cfg.shard == 0)
		g->cfg.shard = 1;
	if (g->cfg.lease_ms == 0)
		g->cfg.lease_ms = GS_LEASE_MS_DEFAULT;
	rc = game_world_init(g, cfg);
	if (rc < 0)
		return rc;
	rc = gs_db_link_init(&g->db, rt, cfg->dbproxy_count);
	g->cfg.resume.shard = g->cfg.shard; /* tokens name it */
	if (rc == 0)
		rc = gs_streams_init(&g->streams, &g->cfg.resume, cfg->link_key, &g->out);
	if (rc < 0) {
		gs_db_link_fini(&g->db);
		gs_bundle_fini(&g->views);
		gs_world_fini(&g->world);
		return rc;
	}
	/* A harness without a registry gets one that records nothing. */
	if (!g->cfg.metrics)
		g->cfg.metrics = &no_metrics;
	g->db.metrics = g->cfg.metrics;
	g->views.metrics = g->cfg.metrics;
	g->streams.metrics = g->cfg.metrics;
	return 0;
}

int gs_game_start(struct gs_game *g)
{
	int rc = pthread_create(&g->thread, NULL, game_main, g);

	if (rc != 0)
		return -rc;
	g->thread_started = true;
	return 0;
}

size_t gs_game_stop(struct gs_game *g)
{
	struct gs_game_event *ev;

	if (!g->thread_started)
		return 0;
	/* Allocation can fail, the shutdown cannot: retry until it is queued. */
	while (!(ev = gs_game_event_new(GS_GAME_EV_SHUTDOWN, 0, 0))) {
		struct timespec pause = { .tv_nsec = 10 * 1000 * 1000 };

		nanosleep(&pause, NULL);
	}
	gs_game_queue_push(g->queue, ev);
	pthread_join(g->thread, NULL);
	g->thread_started = false;
	return gs_db_link_pending(&g->db) + gs_play_saves_waiting(g);
}

void gs_game_fini(struct gs_game *g)
{
	/* Saves and calls first: they still refer to players and clients. */
	gs_play_fini(g);
	gs_db_link_fini(&g->db);
	gs_world_fini(&g->world);
	gs_streams_fini(&g->streams); /* after the players that referred to it */
	gs_bundle_fini(&g->views); /* all zero when interest is off: a no-op */
	gs_gate_out_fini(&g->out);
	free(g->targets);
	free(g->target_sessions);
	free(g->target_msg_nos);
}
