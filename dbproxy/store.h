/*
 * store: the SQLite database of ringgate's players, behind a small API.
 *
 * One struct dbp_store is one SQLite connection, used by one thread at a
 * time. dbproxy opens one write connection (owned by the writer thread,
 * which alone runs migrations and changes rows) and one read connection per
 * login worker; WAL mode lets the readers run while the writer commits.
 *
 * Every statement is prepared once at open and reset after each use; no SQL
 * text is ever built from input.
 *
 * The schema is versioned by PRAGMA user_version: opening a write
 * connection applies the missing migration steps in order, each in its own
 * transaction together with its user_version bump, so a crash leaves the
 * file at some whole version. A file newer than this binary is refused.
 *
 * This is the library target ringgate_store (with writer.c), so that
 * benchmarks and tools can use the store without the network service.
 */
#ifndef DBP_STORE_H
#define DBP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
#define DBP_STORE_SCHEMA_VERSION 4

/* PRAGMA synchronous for the connection; see docs/storage.md. */
enum dbp_store_sync {
	DBP_STORE_SYNC_FULL = 0,   /* each COMMIT survives power loss          */
	DBP_STORE_SYNC_NORMAL,     /* survives kill -9; power loss may drop the
				     last commits (never corrupts)             */
};

struct dbp_store_config {
	const char *path;         /* database file; created if missing (writer) */
	bool read_only;           /* a reader: no migrations, query_only        */
	enum dbp_store_sync sync;
	int busy_timeout_ms;      /* 0 = 5000                                   */
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
};

struct dbp_store;

/*
 * Parse "full" or "normal" into *out. Returns 0 or -EINVAL.
 */
int dbp_store_sync_parse(const char *text, enum dbp_store_sync *out /* OUT */);

/*
 * Open a connection: WAL mode, the configured synchronous level, then (for
 * a writer) the migrations up to DBP_STORE_SCHEMA_VERSION; then prepare the
 * statements. A reader requires the schema to be current already (open the
 * writer first). Failures are logged with SQLite's message.
 * Returns 0 and sets *out, or -ENOENT (reader on a missing or unmigrated
 * file), -EPROTO (file from a newer binary), -EIO, -ENOMEM.
 * Any thread; the connection then belongs to the caller's thread.
 */
int dbp_store_open(const struct dbp_store_config *cfg, struct dbp_store **out /* OUT */);

/* Finalize the statements and close the connection. NULL is ignored. */
void dbp_store_close(struct dbp_store *st);

/* The file's PRAGMA user_version, or a negative code. */
int dbp_store_user_version(struct dbp_store *st);

/*
 * Transactions for group commit: BEGIN IMMEDIATE takes the write lock up
 * front (so a batch never fails half-way for a lock), COMMIT makes every
 * change since BEGIN durable per the sync level, ROLLBACK drops them.
 * Return 0 or a negative code (-EBUSY, -ENOSPC, -EIO).
 */
int dbp_store_begin(struct dbp_store *st);
int dbp_store_commit(struct dbp_store *st);
void dbp_store_rollback(struct dbp_store *st);

/* True while a transaction is open (false after SQLite rolled one back by
 * itself, as it does on some I/O errors). */
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
 * created_at and updated_at. On 0, *out holds the new row.
 * Returns 0, -EEXIST (the name is taken), or a negative code.
 */
int dbp_store_create_player(struct dbp_store *st, const char *name, const char *pwhash,
			   int64_t now_ms, struct dbp_player *out /* OUT */);

/*
 * Add amount to a player's gold and return the new total in *total.
 * op_id is the write's idempotency key (proto/internal.proto, DbAddGold):
 * when dbp_store_op_is_duplicate(op_id, the player's last_op_id) it was
 * applied before, so nothing changes, *duplicate is set and *total is the
 * current gold; otherwise the gold is added and last_op_id becomes op_id.
 * 0 means no key: always applied, last_op_id kept.
 * Returns 0, -ENOENT (no such player), -ERANGE (the total would pass
 * INT64_MAX, SQLite's integer range, or op_id does; nothing changes), or
 * a negative code.
 */
int dbp_store_add_gold(struct dbp_store *st, uint64_t player_id, uint32_t amount,
		      uint64_t op_id, int64_t now_ms, uint64_t *total /* OUT */,
		      bool *duplicate /* OUT */);

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

/* Store zone and position. Returns 0, -ENOENT, or a negative code. */
int dbp_store_save_position(struct dbp_store *st, uint64_t player_id, uint32_t zone,
			   float x, float y, int64_t now_ms);

#endif /* DBP_STORE_H */
