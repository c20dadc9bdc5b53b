/*
 * store: ringgate's player database, behind one API and two backends.
 *
 * One struct dbp_store is one database connection, used by one thread at a
 * time. dbproxy opens one write connection (owned by the writer thread,
 * which alone runs migrations and changes rows) and one read connection per
 * login worker, so reads never wait behind the writer's transactions.
 *
 * Backends (store_backend.h is their contract; one file each, chosen at
 * run time by dbp_store_config.backend, like libnet's engines):
 *   sqlite    store_sqlite.c: a file beside dbproxy; WAL lets the readers
 *             run while the writer commits. The embedded default.
 *   postgres  store_postgres.c: a PostgreSQL server through libpq; the
 *             writer sends a whole batch in one pipeline (one round trip,
 *             one commit). Several dbproxies may share one database.
 * Everything above this API (the writer's group commit, the login workers,
 * the service, the metrics) is the same for both.
 *
 * The schema is versioned: opening a write connection applies the missing
 * migration steps in order (SQLite: store_sqlite.c's list and PRAGMA
 * user_version; PostgreSQL: schema_postgres.sql and its ringgate_schema
 * table), so a crash leaves the database at some whole version. A
 * database newer than this binary is refused.
 *
 * This is the library target ringgate_store (with writer.c), so that
 * benchmarks and tools can use the store without the network service.
 */
#ifndef DBP_STORE_H
#define DBP_STORE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue.h"

/* Longest player name in bytes (the client contract: 1..32 of [A-Za-z0-9_-]). */
#define DBP_NAME_MAX 32
/* Room for a password hash string, NUL included (libsodium's
 * crypto_pwhash_STRBYTES is 128; auth.c checks it fits). */
#define DBP_PWHASH_MAX 128

/* Where a newly created player starts. gamesrv moves a player that is
 * outside its zone's bounds, so these only need to be a sensible spot. */
#define DBP_SPAWN_ZONE 1u
#define DBP_SPAWN_X 0.0f
#define DBP_SPAWN_Y 0.0f

/* The schema version this binary writes (the last migration step). */
#define DBP_STORE_SCHEMA_VERSION 5

/* Durability of a COMMIT; see docs/storage.md. SQLite: PRAGMA
 * synchronous; PostgreSQL: normal sets synchronous_commit = off, full
 * keeps the server's setting (on by default). */
enum dbp_store_sync {
	DBP_STORE_SYNC_FULL = 0,   /* each COMMIT survives power loss          */
	DBP_STORE_SYNC_NORMAL,     /* survives kill -9 of dbproxy; power loss
				     (or a PostgreSQL crash) may drop the last
				     commits (never corrupts)                  */
};

enum dbp_store_backend {
	DBP_STORE_SQLITE = 0,
	DBP_STORE_POSTGRES,
};

struct dbp_store_config {
	enum dbp_store_backend backend;
	const char *path;         /* sqlite: database file; created if missing
				     (writer)                                 */
	const char *dsn;          /* postgres: a libpq connection string      */
	bool read_only;           /* a reader: no migrations, no writes       */
	enum dbp_store_sync sync;
	int busy_timeout_ms;      /* sqlite: lock wait; 0 = 5000              */
};

/* One player row. */
struct dbp_player {
	uint64_t id;
	char name[DBP_NAME_MAX + 1];
	uint32_t zone;
	float x, y;
	uint64_t gold;
	int64_t created_at;       /* wall clock, ms since the epoch             */
	int64_t updated_at;
	uint64_t last_op_id;      /* the last AddGold op_id applied; 0 = none   */
	/* The lease (docs/storage.md "Leases"; proto/internal.proto "leases"). */
	uint64_t lease_epoch;     /* the fencing token: only grows; 0 = never held */
	uint64_t lease_owner;     /* the gamesrv incarnation holding it; 0 = free */
	uint32_t lease_shard;     /* the holder's shard id                      */
	int64_t lease_expires;    /* wall clock ms; the lease is free from then */
};

/* Who asks for a lease, and for how long (DbLogin, DbAdopt). */
struct dbp_lease {
	uint64_t owner;           /* a gamesrv incarnation (its op_id epoch);
				     0 = no lease (tools): nothing is taken   */
	uint32_t shard;
	uint32_t lease_ms;        /* the lease's length from the write's now  */
};

/* The results of the lease rules, beside the errnos of store.h's calls:
 * a write whose lease_epoch is not the player's is refused, nothing
 * changed (DB_FENCED); a take that finds another live owner takes nothing
 * (DB_LEASE_HELD). */
#define DBP_FENCED (-ESTALE)
#define DBP_LEASE_HELD (-EADDRINUSE)

enum dbp_write_kind {
	DBP_WRITE_CREATE_PLAYER,
	DBP_WRITE_ADD_GOLD,
	DBP_WRITE_SAVE_POSITION,
	DBP_WRITE_NEW_EPOCH,       /* issue an op_id epoch (dbp_store_new_epoch) */
	DBP_WRITE_TAKE_LEASE,      /* a login's lease (dbp_store_take_lease)   */
	DBP_WRITE_RENEW_LEASES,    /* extend an owner's leases (dbp_store_renew_leases) */
	DBP_WRITE_ADOPT,           /* move a lease on (dbp_store_adopt)        */
};

struct dbp_write;

/* Called on the writer thread once the write's transaction has ended; the
 * callee owns the write again (and usually frees it). Keep it short: the
 * next batch waits for it. */
typedef void (*dbp_write_done_fn)(struct dbp_write *w);

/*
 * One write, as the writer queues it (writer.h) and a backend applies it
 * (dbp_store_apply_batch). The caller fills the IN part, the store the
 * OUT part.
 */
struct dbp_write {
	/* IN */
	enum dbp_write_kind kind;
	uint64_t deadline_ms;     /* rg_now_ms() time after which the write is
				     not applied (-ETIMEDOUT); 0 = none       */
	union {
		struct {
			char name[DBP_NAME_MAX + 1];
			char pwhash[DBP_PWHASH_MAX];
			struct dbp_lease lease; /* owner != 0: created holding it */
		} create;
		struct {
			uint64_t player_id;
			uint32_t amount;
			uint64_t op_id;   /* idempotency key; 0 = none */
			uint64_t lease_epoch; /* the fence; 0 = none (tools) */
		} add_gold;
		struct {
			uint64_t player_id;
			uint32_t zone;
			float x, y;
			uint64_t lease_epoch; /* the fence; 0 = none (tools) */
			bool release;     /* also free the lease (epoch kept) */
		} save;
		struct {
			uint64_t player_id;
			struct dbp_lease lease; /* owner != 0 */
		} take;
		struct {
			uint64_t owner;
			uint32_t lease_ms;
			size_t n;
			const uint64_t *player_ids; /* n of each, the caller's:  */
			const uint64_t *epochs;     /* valid until done()       */
			uint64_t *lost;   /* OUT: room for n, the caller's      */
		} renew;
		struct {
			uint64_t player_id;
			uint64_t from_epoch;
			struct dbp_lease lease; /* owner != 0 */
			uint32_t zone;
			float x, y;
		} adopt;
	};
	dbp_write_done_fn done;

	/* OUT, valid in done(): 0 or a negative errno (-ENOENT, -EEXIST,
	 * -ERANGE, -ETIMEDOUT, DBP_FENCED, DBP_LEASE_HELD, -ENOTCONN when the
	 * database is unreachable, or a database failure such as -EIO/-ENOSPC). */
	int result;
	struct dbp_player player;  /* CREATE_PLAYER: the new row; TAKE_LEASE
				     (0 and DBP_LEASE_HELD), ADOPT: the row now */
	uint64_t gold;            /* ADD_GOLD: the new total                  */
	bool duplicate;           /* ADD_GOLD: op_id applied before, not again */
	uint64_t epoch;           /* NEW_EPOCH: the epoch issued              */
	size_t nlost;             /* RENEW_LEASES: ids put in renew.lost      */

	struct dbp_qnode node;     /* private to the writer                    */
};

struct dbp_store;

/*
 * Parse "full" or "normal" into *out. Returns 0 or -EINVAL.
 */
int dbp_store_sync_parse(const char *text, enum dbp_store_sync *out /* OUT */);

/* Parse "sqlite" or "postgres" into *out. Returns 0 or -EINVAL. */
int dbp_store_backend_parse(const char *text, enum dbp_store_backend *out /* OUT */);

/* The backend's name ("sqlite", "postgres"). */
const char *dbp_store_backend_name(enum dbp_store_backend backend);

/*
 * Open a connection with cfg->backend: the durability level, then (for a
 * writer) the migrations up to DBP_STORE_SCHEMA_VERSION; then prepare the
 * statements. A reader requires the schema to be current already (open the
 * writer first). Failures are logged with the database's own message.
 * Returns 0 and sets *out, or -ENOENT (reader on a missing or unmigrated
 * database), -EPROTO (database from a newer binary), -EINVAL (a DSN that
 * does not parse), -ENOTCONN (the server cannot be reached), -EIO,
 * -ENOMEM. Any thread; the connection then belongs to the caller's thread.
 */
int dbp_store_open(const struct dbp_store_config *cfg, struct dbp_store **out /* OUT */);

/* Finalize the statements and close the connection. NULL is ignored. */
void dbp_store_close(struct dbp_store *st);

/* The database's schema version, or a negative code. */
int dbp_store_user_version(struct dbp_store *st);

/*
 * Apply writes[0..n) in this order in one transaction and commit it:
 * group commit. On 0 the transaction is durable (at the sync level) and
 * each write's result is its own outcome (0, -ENOENT, -EEXIST, -ERANGE;
 * the OUT fields filled). On a negative code (-ENOTCONN, -EIO, -ENOSPC,
 * ...) the batch failed as a whole: nothing of it may be acknowledged
 * (with -ENOTCONN the server may or may not have committed it; every
 * write is safe to resend: see docs/storage.md). Deadlines are the
 * caller's (the writer checks them). Not inside dbp_store_begin.
 */
int dbp_store_apply_batch(struct dbp_store *st, struct dbp_write *const *writes, size_t n,
			  int64_t now_ms);

/*
 * False once the connection is known to be lost (a server backend after a
 * failed exchange); SQLite is always up. dbp_store_reconnect() tries to
 * get it back, at most once per backoff step (100 ms doubling to 5 s, so
 * callers may call it often): 0 when up again, else -ENOTCONN at once.
 */
bool dbp_store_up(struct dbp_store *st);
int dbp_store_reconnect(struct dbp_store *st);

/*
 * Explicit transactions (tests and tools; the writer uses
 * dbp_store_apply_batch): BEGIN (SQLite: IMMEDIATE, taking the write lock
 * up front), COMMIT makes every change since BEGIN durable per the sync
 * level, ROLLBACK drops them. Return 0 or a negative code (-EBUSY,
 * -ENOSPC, -EIO, -ENOTCONN).
 */
int dbp_store_begin(struct dbp_store *st);
int dbp_store_commit(struct dbp_store *st);
void dbp_store_rollback(struct dbp_store *st);

/* True while a transaction is open (false after the database rolled one
 * back by itself, as SQLite does on some I/O errors). */
bool dbp_store_in_transaction(struct dbp_store *st);

/*
 * Look a player up by name. On 0, *out is filled and, when pwhash is not
 * NULL, the stored hash is copied there (DBP_PWHASH_MAX bytes of room).
 * Returns 0, -ENOENT, or a negative code for a database failure.
 */
int dbp_store_find_by_name(struct dbp_store *st, const char *name,
			  struct dbp_player *out /* OUT */,
			  char *pwhash /* OUT, may be NULL */);

/* Look a player up by id. Returns 0, -ENOENT, or a negative code. */
int dbp_store_find_by_id(struct dbp_store *st, uint64_t id, struct dbp_player *out /* OUT */);

/*
 * Insert a new player at the spawn point with 0 gold. now_ms stamps
 * created_at and updated_at. With a lease (not NULL, owner != 0) the new
 * row holds it at epoch 1, expiring at now_ms + lease_ms. On 0, *out holds
 * the new row. Returns 0, -EEXIST (the name is taken), or a negative code.
 */
int dbp_store_create_player(struct dbp_store *st, const char *name, const char *pwhash,
			   const struct dbp_lease *lease /* may be NULL */, int64_t now_ms,
			   struct dbp_player *out /* OUT */);

/*
 * Add amount to a player's gold and return the new total in *total.
 * op_id is the write's idempotency key (proto/internal.proto, DbAddGold):
 * when dbp_store_op_is_duplicate(op_id, the player's last_op_id) it was
 * applied before, so nothing changes, *duplicate is set and *total is the
 * current gold; otherwise the gold is added and last_op_id becomes op_id.
 * 0 means no key: always applied, last_op_id kept. lease_epoch is the
 * fence, checked first: not 0 and not the player's epoch -> DBP_FENCED,
 * nothing changes (never "duplicate").
 * Returns 0, -ENOENT (no such player), DBP_FENCED, -ERANGE (the total
 * would pass INT64_MAX, the databases' integer range, or op_id does;
 * nothing changes), or a negative code.
 */
int dbp_store_add_gold(struct dbp_store *st, uint64_t player_id, uint32_t amount,
		      uint64_t op_id, uint64_t lease_epoch, int64_t now_ms,
		      uint64_t *total /* OUT */, bool *duplicate /* OUT */);

/* True when op_id (epoch << 32 | seq) counts as applied already, given
 * the last op_id applied to the player: same epoch, seq not above. */
bool dbp_store_op_is_duplicate(uint64_t op_id, uint64_t last_op_id);

/*
 * Issue a new op_id epoch: increment the database's counter and return
 * the new value (1 .. INT32_MAX) in *epoch. Inside the caller's
 * transaction: the epoch is issued once that commits. Returns 0, -ERANGE
 * (the counter is used up), or a negative code.
 */
int dbp_store_new_epoch(struct dbp_store *st, uint64_t *epoch /* OUT */);

/*
 * Store zone and position when lease_epoch is 0 (no fence: tools) or the
 * player's epoch; with release, also free the lease (owner 0, expiry 0,
 * epoch kept) in the same write. Returns 0, -ENOENT, DBP_FENCED (another
 * epoch: nothing changes), or a negative code.
 */
int dbp_store_save_position(struct dbp_store *st, uint64_t player_id, uint32_t zone,
			   float x, float y, uint64_t lease_epoch, bool release,
			   int64_t now_ms);

/*
 * A login's lease (lease->owner != 0): taken when the player's lease is
 * free (owner 0), expired (lease_expires <= now_ms) or lease->owner's
 * already; the epoch grows by one when the owner changes (so a released
 * lease taken again by its old owner gets a new epoch too); owner, shard
 * and expiry now_ms + lease_ms are set. Returns 0 with the row as it is
 * now in *out (out->lease_epoch: the lease held), DBP_LEASE_HELD with the
 * row unchanged in *out (out->lease_shard: the holder), -ENOENT, or a
 * negative code.
 */
int dbp_store_take_lease(struct dbp_store *st, uint64_t player_id,
			 const struct dbp_lease *lease, int64_t now_ms,
			 struct dbp_player *out /* OUT */);

/*
 * Extend to now_ms + lease_ms the leases owner holds at epochs[i] on
 * player_ids[i], i < n. The players whose lease is not (owner, epochs[i])
 * any more (taken over, released, never held, no such player) are not
 * touched and are put in lost[] (room for n) in request order, their count
 * in *nlost. An expired lease still (owner, epoch) is extended: nobody took
 * it meanwhile. Returns 0 or a negative code (then *nlost is undefined).
 */
int dbp_store_renew_leases(struct dbp_store *st, uint64_t owner, uint32_t lease_ms,
			   const uint64_t *player_ids, const uint64_t *epochs, size_t n,
			   int64_t now_ms, uint64_t *lost /* OUT */, size_t *nlost /* OUT */);

/*
 * A zone handoff: when the player's lease_epoch is from_epoch (whoever
 * holds it, expired or not), set epoch from_epoch + 1, lease's owner and
 * shard, expiry now_ms + lease_ms, and zone, x, y, in one write. Returns 0
 * with the row as it is now in *out, DBP_FENCED (another epoch: nothing
 * changes), -ENOENT, or a negative code.
 */
int dbp_store_adopt(struct dbp_store *st, uint64_t player_id, uint64_t from_epoch,
		    const struct dbp_lease *lease, uint32_t zone, float x, float y,
		    int64_t now_ms, struct dbp_player *out /* OUT */);

#endif /* DBP_STORE_H */
