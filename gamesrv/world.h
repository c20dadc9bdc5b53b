/*
 * world.h: the game state - zones, the players in them, and the gateway
 * client sessions that drive them. Owned by the game thread alone: no
 * function here may be called from any other thread, and nothing here
 * needs a lock.
 *
 * A client is one gateway client session, named by (gateway link id,
 * client session id): session ids of different gateways may collide, the
 * pair never does. A player is one account's in-memory state:
 *
 *          gs_world_player_add          gs_world_player_unbind
 *   (new) -----------------> ONLINE ---------------------> LEAVING --> freed
 *                           |  ^  ^  (left its zone,          |    (last pin
 *   gs_world_player_transfer   +--+  |   unbound, save in flight) |     dropped)
 *   (a new login takes an         +--- gs_world_player_bind ------+
 *    ONLINE player's place)           (a new login takes it back)
 *
 * Being ONLINE holds one pin. A LEAVING player stays indexed by name until
 * its last pin is dropped (gs_world_player_unpin): calls in flight that refer
 * to it (its save, earns, a login of the same name) pin it, so it is
 * never freed under them, and a new login of the account takes the
 * in-memory state over instead of a database copy that the pending save
 * may not have reached yet. Invariant:
 * an ONLINE player has exactly one client and that client points back to
 * it; no two players share a name (so never two live copies of one
 * account). An ONLINE player whose connection has gone but who waits for
 * a resume (stream.h: detached) keeps its client, under the old key:
 * nothing more arrives for that key, and what is sent to the player is
 * kept, not sent.
 */
#ifndef GAMESRV_WORLD_H
#define GAMESRV_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>

#include "hmap.h"
#include "rules.h"
#include "stream.h"

struct gs_player;
struct gs_aoi_entity;
struct earn_call;
struct handoff_call;

/* Which shard owns a zone (--zone-shards; docs/protocol.md section 11). */
struct gs_zone_shard {
	uint32_t zone;
	uint32_t shard;
};

/* The key of a client session: which gateway link, which session on it. */
struct gs_client_key {
	net_session_id link;
	uint64_t session;
};

struct gs_client {
	struct gs_client_key key;      /* hmap key: never changes              */
	struct gs_player *player;      /* bound player, or NULL                */
	bool login_pending;         /* a DbLogin for this session is out    */
	bool adopting;              /* a DbAdopt for this session is out    */
	struct handoff_call *handoff;  /* play.c: its player (or login) is being
				       handed to another shard             */
	struct gs_client *prev, *next; /* the world's list of clients          */
};

enum gs_player_state { GS_PLAYER_ONLINE, GS_PLAYER_LEAVING };

struct gs_player {
	uint64_t id;
	char name[GS_RULES_NAME_MAX + 1]; /* hmap key: never changes           */
	struct gs_zone *zone;
	float x, y;
	uint64_t gold;                 /* the last durable total we know    */
	bool dirty;                    /* moved since the last save was sent */
	enum gs_player_state state;
	struct gs_client *client;         /* ONLINE: its session; else NULL    */
	unsigned pins;                 /* calls in flight that refer to it  */
	struct gs_player *zone_prev, *zone_next; /* ONLINE: zone membership    */
	struct gs_aoi_entity *aoi;        /* ONLINE under interest management:
					  how others see it (bundle.h)      */
	struct gs_stream stream;          /* ONLINE: its login session, numbered
					  and kept for a resume (stream.h);
					  detached: its client's connection
					  is gone, the player stays         */
	struct earn_call *earns;       /* play.c: its earns in flight        */
	uint64_t lease_epoch;          /* the lease held on it (the fencing
					  token of its writes); 0: none held
					  (dropped, or handed to another shard) */
	uint64_t lease_until_ms;       /* rg_now_ms(): the lease surely holds
					  until then (send time of the call
					  that took or renewed it + lease_ms) */
	bool frozen;                   /* being handed to another shard: its
					  requests get ZONE_HANDOFF, nothing
					  is numbered or sent to it         */
	unsigned logins_out;           /* play.c: DbLogins of its account in
					  flight (no save releases its lease
					  meanwhile)                        */
	bool release_owed;             /* play.c: its last save could not
					  release the lease (a login was out) */
	struct gs_player *prev, *next;    /* the world's list of players       */
};

struct gs_zone {
	struct gs_zone_bounds bounds;
	uint32_t shard;                   /* the shard that owns it             */
	struct gs_player *members;        /* ONLINE players in the zone        */
	size_t member_count;
};

struct gs_world {
	struct gs_zone *zones;
	size_t zone_count;
	struct gs_hmap clients;           /* struct gs_client_key -> client       */
	struct gs_hmap players;           /* name -> player                    */
	struct gs_client *client_list;
	struct gs_player *player_list;
	size_t online_count;
};

/*
 * Set up a world with the given zones (copied; the first is where players
 * outside any known zone are placed). Returns 0, -EINVAL for no zone, an
 * invalid one or two with one id, -ENOMEM.
 */
int gs_world_init(struct gs_world *w, const struct gs_zone_bounds *zones, size_t count);

/* Free every client, player and zone. */
void gs_world_fini(struct gs_world *w);

/* The zone with this id, or NULL. */
struct gs_zone *gs_world_zone(struct gs_world *w, uint32_t id);

/* ---- clients ------------------------------------------------------------- */

/* The client for (link, session), or NULL. */
struct gs_client *gs_world_client_find(struct gs_world *w, net_session_id link, uint64_t session);

/* Register a new client (must not exist). Returns it, or NULL on ENOMEM. */
struct gs_client *gs_world_client_add(struct gs_world *w, net_session_id link, uint64_t session);

/* Forget a client; its player must have been unbound first. */
void gs_world_client_remove(struct gs_world *w, struct gs_client *c);

/* ---- players ------------------------------------------------------------- */

/* The player (ONLINE or LEAVING) with this name, or NULL. */
struct gs_player *gs_world_player_find(struct gs_world *w, const char *name);

/* Where a player saved at (zone_id, *x, *y) is put: that zone, or when
 * the zone is unknown or the spot outside it (or not finite), the centre
 * of the first zone (*x, *y are set to it). */
struct gs_zone *gs_world_place(struct gs_world *w, uint32_t zone_id, float *x /* IN/OUT */,
			    float *y /* IN/OUT */);

/*
 * Create a player from loaded state (name must be valid and not present)
 * and bind it to c (which has no player): it is ONLINE on return. A zone
 * id the world does not know, or a position outside the zone or not
 * finite, puts the player at the centre of the first zone (gs_world_place).
 * Returns the
 * player, or NULL on ENOMEM.
 */
struct gs_player *gs_world_player_add(struct gs_world *w, struct gs_client *c, uint64_t id,
				const char *name, uint32_t zone_id, float x, float y,
				uint64_t gold);

/* Make a LEAVING player ONLINE again: bound to c (which has no player)
 * and a member of its zone (a new login took it over). */
void gs_world_player_bind(struct gs_world *w, struct gs_player *p, struct gs_client *c);

/* Move an ONLINE player from its client to c (which has no player): a
 * second login of the account took over. The old client is left without
 * a player for the caller to remove. Zone membership is unchanged. */
void gs_world_player_transfer(struct gs_player *p, struct gs_client *c);

/*
 * Make an ONLINE player LEAVING: out of its zone and unbound from its
 * client. Being ONLINE holds one pin, dropped here: pin the player for its
 * save first, or it is freed before this returns.
 */
void gs_world_player_unbind(struct gs_world *w, struct gs_player *p);

/* Pin p for a call in flight; each pin needs one gs_world_player_unpin. */
void gs_world_player_pin(struct gs_player *p);

/* Drop a pin; a LEAVING player with no pins left is freed (so p may be
 * gone on return). */
void gs_world_player_unpin(struct gs_world *w, struct gs_player *p);

/* Move an ONLINE player (the caller checked the point is in its zone). */
void gs_world_player_move(struct gs_player *p, float x, float y);

/* Make an ONLINE player a member of zone z instead of its own (the caller
 * then moves it to a point inside z). */
void gs_world_player_set_zone(struct gs_player *p, struct gs_zone *z);

#endif /* GAMESRV_WORLD_H */
