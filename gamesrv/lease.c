/*
 * lease.c: keeping this shard's player leases alive, and letting go of the
 * ones it can no longer vouch for (see lease.h).
 */
#include "lease.h"

#include <errno.h>
#include <stdlib.h>

#include <rg/clock.h>
#include <rg/log.h>

#include "game.h"
#include "play.h"

/* Players named in one DbRenewLeases at most (dbproxy's bound is 65536;
 * smaller keeps each frame small). */
#define RENEW_BATCH_MAX 8192

/* A DbRenewLeases out: the players it names (pinned until it ends, so
 * none is freed under it) and the epochs it names them with. */
struct gs_lease_renewal {
	struct gs_game *g;
	uint64_t sent_ms;
	size_t count;
	struct gs_player **players;
	uint64_t *ids;
	uint64_t *epochs;
};

/* How long before its end a lease is let go (self-fence). */
static uint64_t fence_margin(const struct gs_game *g)
{
	return g->cfg.lease_ms / 10;
}

void gs_lease_taken(struct gs_game *g, struct gs_player *p, uint64_t epoch, uint64_t sent_ms)
{
	uint64_t until = sent_ms + g->cfg.lease_ms;

	if (p->lease_epoch != epoch || until > p->lease_until_ms)
		p->lease_until_ms = until;
	p->lease_epoch = epoch;
	if (p->lease_until_ms - fence_margin(g) < g->fence_check_ms)
		g->fence_check_ms = p->lease_until_ms - fence_margin(g);
}

void gs_lease_log_online(const struct gs_player *p)
{
	RG_INFO("lease: player %llu online epoch %llu", (unsigned long long)p->id,
		(unsigned long long)p->lease_epoch);
}

void gs_lease_log_offline(const struct gs_player *p, const char *reason)
{
	RG_INFO("lease: player %llu offline epoch %llu (%s)", (unsigned long long)p->id,
		(unsigned long long)p->lease_epoch, reason);
}

static int compare_ids(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void renewal_free(struct gs_lease_renewal *rn)
{
	for (size_t i = 0; i < rn->count; i++)
		gs_world_player_unpin(&rn->g->world, rn->players[i]);
	free(rn->players);
	free(rn->ids);
	free(rn->epochs);
	free(rn);
}

static void on_renew_reply(void *ctx, int status, const void *reply)
{
	struct gs_lease_renewal *rn = ctx;
	struct gs_game *g = rn->g;
	const Ringgate__Internal__DbToGame *r = reply;
	uint64_t *lost;
	size_t n_lost, dropped = 0;

	g->renewals_out--;
	if (status != 0 || r->status != RINGGATE__INTERNAL__DB_STATUS__DB_OK ||
	    r->body_case != RINGGATE__INTERNAL__DB_TO_GAME__BODY_RENEW) {
		/* The leases run on; the self-fence acts if this goes on. */
		RG_WARN("lease renewal of %zu players failed: %s", rn->count,
			status != 0 ? net_strerror(status) : r->message[0] ? r->message
									 : "refused");
		renewal_free(rn);
		return;
	}
	lost = r->renew->lost;
	n_lost = r->renew->n_lost;
	if (n_lost > 1)
		qsort(lost, n_lost, sizeof(*lost), compare_ids); /* the reply is ours */
	for (size_t i = 0; i < rn->count; i++) {
		struct gs_player *p = rn->players[i];

		if (p->lease_epoch != rn->epochs[i])
			continue; /* dropped, or a newer lease, since it was sent */
		if (n_lost == 0 || !bsearch(&rn->ids[i], lost, n_lost, sizeof(*lost), compare_ids)) {
			gs_lease_taken(g, p, rn->epochs[i], rn->sent_ms);
			continue;
		}
		if (p->state != GS_PLAYER_ONLINE)
			continue; /* leaving: its last save meets the fence */
		if (p->frozen) {
			/* Handed over: the target has it now; the handoff ends it. */
			gs_play_drop(g, p, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE, NULL,
				     "handed over");
			continue;
		}
		RG_WARN("player %s (%llu): lease epoch %llu lost (another owner has it)", p->name,
			(unsigned long long)p->id, (unsigned long long)rn->epochs[i]);
		rg_counter_add(g->cfg.metrics->leases_lost, 1);
		gs_play_drop(g, p, RINGGATE__CLIENT__ERROR_CODE__LOGGED_IN_ELSEWHERE,
			     "this account is online elsewhere", "lease lost");
		dropped++;
	}
	if (dropped > 0)
		RG_WARN("lease renewal: %zu players lost", dropped);
	renewal_free(rn);
}

/*
 * Send one DbRenewLeases for up to RENEW_BATCH_MAX players holding a lease
 * here, from *from on the player list; *from is left at the first player
 * not named (NULL: the end). Returns 0, or -1 when nothing more can go out
 * now.
 */
static int renew_batch(struct gs_game *g, uint64_t now, struct gs_player **from)
{
	struct gs_lease_renewal *rn = calloc(1, sizeof(*rn));
	struct gs_player *p = *from;
	size_t n = 0;
	int rc;

	if (rn) {
		rn->players = malloc(RENEW_BATCH_MAX * sizeof(*rn->players));
		rn->ids = malloc(RENEW_BATCH_MAX * sizeof(*rn->ids));
		rn->epochs = malloc(RENEW_BATCH_MAX * sizeof(*rn->epochs));
	}
	if (!rn || !rn->players || !rn->ids || !rn->epochs) {
		RG_ERROR("out of memory: the lease renewal waits for a later tick");
		if (rn) {
			rn->g = g;
			renewal_free(rn);
		}
		return -1;
	}
	rn->g = g;
	rn->sent_ms = now;
	for (; p && n < RENEW_BATCH_MAX; p = p->next) {
		if (p->lease_epoch == 0)
			continue;
		gs_world_player_pin(p);
		rn->players[n] = p;
		rn->ids[n] = p->id;
		rn->epochs[n] = p->lease_epoch;
		n++;
	}
	rn->count = n;
	*from = p;
	if (n == 0) {
		renewal_free(rn);
		return 0;
	}
	rc = gs_db_link_renew(&g->db, rn->ids, rn->epochs, n, g->cfg.lease_ms,
			      now + g->cfg.lease_ms / 3, on_renew_reply, rn);
	if (rc < 0) {
		RG_WARN("cannot send the lease renewal: %s", net_strerror(rc));
		renewal_free(rn);
		return -1;
	}
	g->renewals_out++;
	return 0;
}

/* Renew every lease held here: one DbRenewLeases per RENEW_BATCH_MAX
 * players (dbproxy takes at most 65536 in one). */
static void renew(struct gs_game *g, uint64_t now)
{
	struct gs_player *p = g->world.player_list;

	if (!gs_db_link_up(&g->db) || g->db.owner == 0)
		return;
	/* Nothing here frees a player (no callback runs before a call
	 * ends), so the list holds still while the batches are made. */
	while (p && renew_batch(g, now, &p) == 0)
		;
}

bool gs_lease_spent(const struct gs_game *g, uint64_t sent_ms, uint64_t now_ms)
{
	return sent_ms + g->cfg.lease_ms <= now_ms + fence_margin(g);
}

bool gs_lease_ending(const struct gs_game *g, const struct gs_player *p, uint64_t now_ms)
{
	return p->lease_epoch != 0 && p->state == GS_PLAYER_ONLINE &&
	       p->lease_until_ms <= now_ms + fence_margin(g);
}

void gs_lease_self_fence(struct gs_game *g, struct gs_player *p)
{
	rg_counter_add(g->cfg.metrics->self_fenced, 1);
	gs_play_drop(g, p, RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE,
		     "the game server lost its database", "self-fence");
}

/* Drop the online players whose lease may end before the next renewal
 * could save it, and note when the next one is due. */
static void self_fence(struct gs_game *g, uint64_t now)
{
	uint64_t margin = fence_margin(g);
	uint64_t next = now + g->cfg.lease_ms;
	struct gs_player *p = g->world.player_list;
	size_t dropped = 0;

	if (now < g->fence_check_ms)
		return;
	while (p) {
		struct gs_player *after = p->next; /* p may be freed below */

		if (gs_lease_ending(g, p, now)) {
			gs_lease_self_fence(g, p);
			dropped++;
		} else if (p->lease_epoch != 0 && p->state == GS_PLAYER_ONLINE &&
			   p->lease_until_ms - margin < next) {
			next = p->lease_until_ms - margin;
		}
		p = after;
	}
	g->fence_check_ms = next;
	if (dropped > 0)
		RG_WARN("self-fence: %zu players dropped, their leases could not be renewed "
			"(the database is out of reach)", dropped);
}

void gs_lease_tick(struct gs_game *g, uint64_t now)
{
	if (g->renewals_out == 0 && now >= g->renew_at_ms) {
		g->renew_at_ms = now + g->cfg.lease_ms / 3;
		renew(g, now);
	}
	self_fence(g, now);
}
