/*
 * db_link.h: the gamesrv end of the dbproxy links (GameToDb / DbToGame).
 *
 * gamesrv may link to several dbproxies that share one database
 * (PostgreSQL; docs/storage.md): --dbproxies lists them, and each gets a
 * db_service, numbered 0, 1, ... in that order (its index). With one
 * dbproxy (the default, --dbproxy-host/--dbproxy-port) everything below
 * holds with N = 1.
 *
 * Loop side (gs_db_service_*): a net_client keeps one session dialed to one
 * dbproxy, redialing with backoff; each connection is an rg/link.h dialer.
 * It opens with dbproxy's AuthChallenge, answered by our Hello with a
 * proof of the cluster secret; when HelloReply arrives with dbproxy's own
 * proof, within the handshake deadline, the link is up (DB_UP event).
 * Heartbeats and the dead time (then a redial) are rg/link.h's.
 * Replies are decoded on the loop thread and queued as DB_REPLY events; the
 * end of an up link is queued as DB_DOWN. Every event carries the
 * service's index (game_event.db_index).
 *
 * Game side (gs_db_link_*): the game thread's view of the links and its
 * calls. Every request gets an id and a deadline in its link's rg_calls
 * table, so each ends exactly once: with the reply, -ETIMEDOUT at the
 * deadline (checked every tick), or -ENOTCONN when its link goes down. A
 * request made while no link is up fails at once (the gs_db_link_* call
 * returns -ENOTCONN and its callback never runs).
 *
 * Routing: a player's saves and AddGolds go to one link, so that dbproxy
 * applies them in the order they were made: while the player has calls in
 * flight, the link they are on; otherwise its home link (a hash of the
 * player id over the N links), or when that is down the next one up, in
 * index order. So a player moves only when its link drops (its calls there
 * have all ended) or, back to its home, once nothing of it is in flight.
 * Logins go by a hash of the name the same way (reads, and a create whose
 * name the database keeps unique). A link that drops takes nothing with
 * it: its AddGolds are held and resent on another link (below), and a
 * held save is play.c's, resent once db_link_up.
 *
 * AddGold is the exception to -ENOTCONN: it carries an idempotency key
 * (op_id = epoch << 32 | seq, proto/internal.proto), so one in flight when
 * its link goes down is held and sent again, with the same op_id, on
 * another link that is up (or the same one once it is back); dbproxy
 * applies it at most once. It still ends at its deadline (-ETIMEDOUT).
 * Only the newest held AddGold of each player is kept: an older one fails
 * with -ENOTCONN, because dbproxy's key check ("an op_id of the same epoch
 * at or below the player's last applied one is a duplicate") is exact only
 * for the newest write it may have seen (an older one may have been
 * refused, DB_BUSY, while a newer one was applied).
 *
 * Epochs: the first link that comes up asks dbproxy for an epoch
 * (DbNewEpoch, issued by the database, so never the same twice, whatever
 * the clocks say), and every AddGold of this gamesrv, on any link, is
 * numbered 1, 2, ... in it; a new epoch is asked only when the seqs are
 * used up. One epoch for all links is what makes moving a player safe: a
 * write of the dropped link that its dbproxy applies late (it was still
 * queued there) has a lower seq, in the same epoch, than everything sent
 * for the player since, so dbproxy takes it for the duplicate it is; with
 * an epoch per link it would be applied a second time. An AddGold made
 * before the epoch is known waits on the held list too, unkeyed, and gets
 * its key when the epoch arrives. A duplicate answer to a first send can
 * only mean broken keys: the call fails (-EPROTO), never passes for a
 * success.
 */
#ifndef GAMESRV_DB_LINK_H
#define GAMESRV_DB_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <rg/calls.h>
#include <rg/link.h>

#include "hmap.h"
#include "internal.pb-c.h"
#include "metrics.h"
#include "queue.h"
#include "wire.h"

/* Most dbproxies one gamesrv links to. */
#define GS_DB_LINKS_MAX 16

struct gs_db_service_config {
	const char *host;
	uint16_t port;
	unsigned index;            /* this dbproxy's place in the list, 0..   */
	const char *instance;      /* sent in Hello, for dbproxy's logs      */
	const struct rg_link_key *link_key; /* the cluster secret (outlives us) */
	struct rg_link_rules rules;
	size_t max_frame;
	size_t decode_limit;
};

struct gs_db_service {
	struct gs_game_queue *queue;
	struct net_client *client;
	struct gs_db_service_config cfg;
	struct rg_link_service link;
};

/* Start dialing dbproxy; events go to q. d must stay at its address until
 * the runtime is destroyed. Returns 0 or a negative errno. Main thread. */
int gs_db_service_start(struct gs_db_service *d, struct net_runtime *rt, struct gs_game_queue *q,
		     const struct gs_db_service_config *cfg);

/* Free what start set up; after the runtime has stopped. Main thread. */
void gs_db_service_fini(struct gs_db_service *d);

/* ---- game side ------------------------------------------------------------ */

struct gs_gold_write;

/* One dbproxy link as the game thread sees it. */
struct gs_db_conn {
	net_session_id session;        /* the up link, or 0 when down      */
	struct rg_calls *calls;        /* its calls in flight              */
	bool was_up;                   /* up once: later ups are reconnects */
};

struct gs_db_link {
	struct net_runtime *rt;
	struct gs_db_conn conns[GS_DB_LINKS_MAX];
	unsigned conn_count;
	unsigned up_count;             /* conns up now                      */
	struct gs_wire_buf buf;
	struct gs_metrics *metrics;    /* set by the game after init        */
	uint64_t epoch;                /* the op_id epoch; 0: none yet      */
	uint64_t owner;                /* the lease owner id: the first
					  epoch; 0: none yet                */
	uint32_t seq;                  /* the last op_id seq used in it       */
	bool epoch_asked;              /* a DbNewEpoch is out                  */
	struct gs_hmap routes;            /* player id -> struct db_route, while
					  the player has calls in flight   */
	struct gs_gold_write **held;      /* AddGolds waiting for a link or the
					  epoch                              */
	size_t held_len, held_cap;
	bool closing;                  /* gs_db_link_fini runs: the callbacks
					  of the calls it fails make none    */
};

/* Set up conn_count (1..GS_DB_LINKS_MAX; 0 means 1) down links. Returns 0,
 * -EINVAL or -ENOMEM. Game thread. */
int gs_db_link_init(struct gs_db_link *l, struct net_runtime *rt, unsigned conn_count);

/* End pending calls with -ECANCELED and free. Game thread. */
void gs_db_link_fini(struct gs_db_link *l);

/* True while at least one link is up. */
bool gs_db_link_up(const struct gs_db_link *l);

/* Handle DB_UP, DB_DOWN and DB_REPLY events of link index (the event's
 * db_index; an index out of range is ignored). Game thread. */
void gs_db_link_on_up(struct gs_db_link *l, unsigned index, net_session_id session);
void gs_db_link_on_down(struct gs_db_link *l, unsigned index, net_session_id session);
void gs_db_link_on_reply(struct gs_db_link *l, unsigned index,
		      const Ringgate__Internal__DbToGame *reply);

/* End calls past their deadline (now_ms: rg_now_ms()), and ask for an
 * epoch again if the last request for one failed. Game thread. */
void gs_db_link_expire(struct gs_db_link *l, uint64_t now_ms);

/* Calls not yet ended (held AddGolds included). */
size_t gs_db_link_pending(const struct gs_db_link *l);

/*
 * Requests. deadline_ms is absolute (rg_now_ms() clock). Each returns 0
 * when sent (fn runs exactly once later, as rg/calls.h says; with status 0
 * its reply is the Ringgate__Internal__DbToGame, whose status the callee
 * still checks), or a negative errno when not (fn never runs): -ENOTCONN
 * when no link is up, -ENOMEM. Each goes to the link the routing rule
 * (top) picks.
 * Game thread.
 */
/* Login: the password is its whole byte string (NULs included); with
 * no_create an unknown name is refused (DB_THROTTLED), not created. It
 * takes the player's lease for l->owner (the caller checked it is known)
 * and shard, for lease_ms. */
int gs_db_link_login(struct gs_db_link *l, const char *name, const ProtobufCBinaryData *password,
		  bool no_create, uint32_t shard, uint32_t lease_ms, uint64_t deadline_ms,
		  rg_call_fn fn, void *ctx);
/* Save a position under lease_epoch; release: the player leaves, free
 * its lease in the same write. */
int gs_db_link_save(struct gs_db_link *l, uint64_t player_id, uint32_t zone, float x, float y,
		 uint64_t lease_epoch, bool release, uint64_t deadline_ms, rg_call_fn fn,
		 void *ctx);
/* AddGold under lease_epoch: as above, but a link drop holds it for a
 * resend (see the top). */
int gs_db_link_add_gold(struct gs_db_link *l, uint64_t player_id, uint32_t amount,
		     uint64_t lease_epoch, uint64_t deadline_ms, rg_call_fn fn, void *ctx);
/* DbRenewLeases for l->owner: count players and the epochs held on them
 * (both arrays only read during the call). */
int gs_db_link_renew(struct gs_db_link *l, const uint64_t *player_ids, const uint64_t *epochs,
		  size_t count, uint32_t lease_ms, uint64_t deadline_ms, rg_call_fn fn, void *ctx);
/* DbAdopt: take player_id's lease over from from_epoch for l->owner and
 * shard, with its new zone and position. */
int gs_db_link_adopt(struct gs_db_link *l, uint64_t player_id, uint64_t from_epoch,
		  uint32_t shard, uint32_t lease_ms, uint32_t zone, float x, float y,
		  uint64_t deadline_ms, rg_call_fn fn, void *ctx);

#endif /* GAMESRV_DB_LINK_H */
