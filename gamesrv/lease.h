/*
 * lease.h: the leases this shard holds on its players (docs/protocol.md
 * section 11, docs/storage.md "Leases"). Game thread only.
 *
 * A player's lease is taken by the DbLogin or DbAdopt that brought it
 * here and named by its epoch (p->lease_epoch, the fencing token every
 * write of the player carries). This module keeps the leases alive and
 * makes sure the shard never believes it holds one the database may have
 * given away:
 *
 *   renewal     every lease_ms / 3 DbRenewLeases (one per 8192 players)
 *               name every player that holds a lease here (online, detached, frozen, and
 *               leaving ones whose last save is still out). A renewed
 *               player's lease_until_ms becomes the renewal's send time
 *               + lease_ms. Those the reply calls lost (another owner has
 *               them now) are dropped unsaved, kicked LOGGED_IN_ELSEWHERE
 *               (a leaving one's last save meets the fence instead). A
 *               renewal that fails changes nothing.
 *   self-fence  on every tick, an online player whose lease_until_ms -
 *               lease_ms / 10 has come is dropped unsaved, kicked
 *               SERVICE_UNAVAILABLE: renewals have been failing (the
 *               database or the link to it is down or cut off), and the
 *               database will soon let another shard take the player.
 *
 * lease_until_ms is on our monotonic clock and counts from when the call
 * was sent, so it ends no later than the database's expiry (its clock
 * starts later), as long as both clocks run at about the same rate.
 */
#ifndef GAMESRV_LEASE_H
#define GAMESRV_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#define GS_LEASE_MS_DEFAULT 10000

struct gs_game;
struct gs_player;

/* p holds its lease at epoch, taken or renewed by a call sent at sent_ms
 * (rg_now_ms()). */
void gs_lease_taken(struct gs_game *g, struct gs_player *p, uint64_t epoch, uint64_t sent_ms);

/* The log lines that say when this shard starts and stops holding a
 * playing player (the multi-host tests read them; exact format):
 *   lease: player <id> online epoch <E>
 *   lease: player <id> offline epoch <E> (<reason>) */
void gs_lease_log_online(const struct gs_player *p);
void gs_lease_log_offline(const struct gs_player *p, const char *reason);

/* True when a lease taken by a call sent at sent_ms is as good as gone at
 * now_ms (the self-fence would end it at once): a reply that comes this
 * late (a paused process, a slow link) brings no player online, and
 * releases nothing either (the lease may be another's already). */
bool gs_lease_spent(const struct gs_game *g, uint64_t sent_ms, uint64_t now_ms);

/* True when p plays here on a lease that may end before a renewal could
 * save it (lease_until_ms - lease_ms / 10 has come): self-fence it. */
bool gs_lease_ending(const struct gs_game *g, const struct gs_player *p, uint64_t now_ms);

/* Self-fence p: drop it unsaved, kicked SERVICE_UNAVAILABLE (counted). */
void gs_lease_self_fence(struct gs_game *g, struct gs_player *p);

/* The tick's lease work: send the renewal when due, self-fence. */
void gs_lease_tick(struct gs_game *g, uint64_t now_ms);

#endif /* GAMESRV_LEASE_H */
