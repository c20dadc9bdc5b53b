/*
 * store_sqlite.c: the SQLite backend (store_backend.h): schema, migrations
 * and prepared statements on a database file.
 *
 * One write connection (WAL mode, so that the login workers' read
 * connections run while it commits) and PRAGMA user_version for the
 * schema version. A batch is BEGIN IMMEDIATE; each write; COMMIT: one
 * fsync covers the batch.
 *
 * Invariants:
 * - Every SQL statement that touches rows is prepared in store_prepare()
 *   and reset (and its bindings cleared) before the function using it
 *   returns, on every path, so no statement holds a read snapshot open.
 * - The migration list only grows: a released step is never edited, since
 *   files in the field were built by it. A new schema is a new step.
 */
#include "store_backend.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "rg/container_of.h"
#include "rg/log.h"

/* One migration step: the SQL that takes the file from version - 1 to
 * version. Applied with its user_version bump in one transaction. */
struct migration {
	int version;
	const char *sql;
};

static const struct migration migrations[] = {
	{ 1,
	  "CREATE TABLE players ("
	  " id INTEGER PRIMARY KEY AUTOINCREMENT," /* never reuse an id */
	  " name TEXT NOT NULL UNIQUE,"
	  " pwhash TEXT NOT NULL,"
	  " zone INTEGER NOT NULL,"
	  " x REAL NOT NULL,"
	  " y REAL NOT NULL,"
	  " gold INTEGER NOT NULL DEFAULT 0 CHECK (gold >= 0),"
	  " created_at INTEGER NOT NULL"
	  ");" },
	{ 2,
	  /* Version 1 did not record when a row last changed. */
	  "ALTER TABLE players ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;"
	  "UPDATE players SET updated_at = created_at;" },
	{ 3,
	  /* The idempotency key of the last AddGold applied (0: none yet), so
	   * that a resent AddGold is not paid twice (docs/storage.md). */
	  "ALTER TABLE players ADD COLUMN last_op_id INTEGER NOT NULL DEFAULT 0;" },
	{ 4,
	  /* op_ids come from epochs the database issues (op_id = epoch << 32
	   * | seq), not from gamesrv's wall clock. The counter starts above
	   * the "epoch" part of every key written so far, so an old clock-made
	   * key can never be taken for one of a new epoch. */
	  "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
	  "INSERT INTO counters SELECT 'op_epoch', COALESCE(MAX(last_op_id >> 32), 0)"
	  " FROM players;" },
	{ 5,
	  /* Leases (docs/storage.md "Leases"): which gamesrv incarnation holds
	   * the player, of which shard, until when (wall ms), and the fencing
	   * epoch every write for the player carries. All free at first. */
	  "ALTER TABLE players ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE players ADD COLUMN lease_owner INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE players ADD COLUMN lease_shard INTEGER NOT NULL DEFAULT 0;"
	  "ALTER TABLE players ADD COLUMN lease_expires INTEGER NOT NULL DEFAULT 0;" },
};

_Static_assert(sizeof migrations / sizeof migrations[0] == DBP_STORE_SCHEMA_VERSION,
	       "DBP_STORE_SCHEMA_VERSION must name the last migration step");

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_FIND_BY_NAME] = "SELECT " PLAYER_COLUMNS ", pwhash FROM players WHERE name = ?1",
	[STMT_FIND_BY_ID] = "SELECT " PLAYER_COLUMNS " FROM players WHERE id = ?1",
	[STMT_INSERT] = "INSERT INTO players (name, pwhash, zone, x, y, gold, created_at,"
			" updated_at, lease_epoch, lease_owner, lease_shard, lease_expires)"
			" VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6, ?7, ?8, ?9, ?10)",
	/* The guards: the lease epoch (?5; 0 = no fence), gold + amount
	 * inside SQLite's int64, an op_id (?4) not applied already (same
	 * epoch, seq not above the last): no row means no player, fenced, an
	 * overflow or a duplicate, told apart afterwards
	 * (dbp__store_explain_miss). ?4 = 0 carries no key. */
	[STMT_ADD_GOLD] = "UPDATE players SET gold = gold + ?2, updated_at = ?3,"
			  " last_op_id = CASE WHEN ?4 = 0 THEN last_op_id ELSE ?4 END"
			  " WHERE id = ?1 AND gold <= 9223372036854775807 - ?2"
			  " AND (?5 = 0 OR lease_epoch = ?5)"
			  " AND (?4 = 0 OR last_op_id >> 32 != ?4 >> 32 OR last_op_id < ?4)"
			  " RETURNING gold",
	/* Fenced by ?6 (0 = none); ?7 releases the lease too. */
	[STMT_SAVE_POSITION] = "UPDATE players SET zone = ?2, x = ?3, y = ?4, updated_at = ?5,"
			       " lease_owner = CASE WHEN ?7 THEN 0 ELSE lease_owner END,"
			       " lease_expires = CASE WHEN ?7 THEN 0 ELSE lease_expires END"
			       " WHERE id = ?1 AND (?6 = 0 OR lease_epoch = ?6)",
	[STMT_NEW_EPOCH] = "UPDATE counters SET value = value + 1 WHERE name = 'op_epoch'"
			   " RETURNING value",
	/* Owner ?2 takes the lease when it is free, expired at now (?4) or
	 * its own; a new owner means a new epoch. (SET reads the old row.) */
	[STMT_TAKE_LEASE] = "UPDATE players SET lease_epoch = lease_epoch + (lease_owner != ?2),"
			    " lease_owner = ?2, lease_shard = ?3, lease_expires = ?5"
			    " WHERE id = ?1 AND (lease_owner = 0 OR lease_expires <= ?4"
			    " OR lease_owner = ?2)"
			    " RETURNING " PLAYER_COLUMNS,
	[STMT_RENEW_LEASES] = "UPDATE players SET lease_expires = ?4"
			      " WHERE id = ?1 AND lease_epoch = ?2 AND lease_owner = ?3",
	[STMT_ADOPT] = "UPDATE players SET lease_epoch = ?2 + 1, lease_owner = ?3,"
		       " lease_shard = ?4, lease_expires = ?5, zone = ?6, x = ?7, y = ?8,"
		       " updated_at = ?9"
		       " WHERE id = ?1 AND lease_epoch = ?2"
		       " RETURNING " PLAYER_COLUMNS,
};

struct sqlite_store {
	struct dbp_store base;
	sqlite3 *db;
	sqlite3_stmt *stmt[STMT_COUNT];
};

static struct sqlite_store *sqlite_of(struct dbp_store *st)
{
	return RG_CONTAINER_OF(st, struct sqlite_store, base);
}

/* Map an SQLite result code to a negative errno for callers. */
static int sqlite_to_errno(int rc)
{
	if (rc == SQLITE_CONSTRAINT_UNIQUE)
		return -EEXIST;
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		return -EINVAL;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN:
		return -ENOENT;
	default:
		return -EIO;
	}
}

/* Log a failure with SQLite's own words and return its errno form. */
static int store_fail(struct sqlite_store *st, const char *what, int rc)
{
	/* A unique-name clash is an expected outcome, not an incident. */
	if (rc != SQLITE_CONSTRAINT_UNIQUE)
		RG_ERROR("sqlite: %s: %s (%d)", what, sqlite3_errmsg(st->db), rc);
	return sqlite_to_errno(rc);
}

static void stmt_done(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

/* Run a statement that returns no rows. */
static int run_simple(struct sqlite_store *st, enum dbp__stmt id)
{
	sqlite3_stmt *stmt = st->stmt[id];
	int rc = sqlite3_step(stmt);

	stmt_done(stmt);
	if (rc != SQLITE_DONE)
		return store_fail(st, stmt_sql[id], rc);
	return 0;
}

static int exec_sql(struct sqlite_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return store_fail(st, sql, rc);
	return 0;
}

static int user_version(struct sqlite_store *st)
{
	sqlite3_stmt *stmt;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &stmt, NULL);
	int version;

	if (rc != SQLITE_OK)
		return store_fail(st, "PRAGMA user_version", rc);
	rc = sqlite3_step(stmt);
	version = rc == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : store_fail(st, "user_version", rc);
	sqlite3_finalize(stmt);
	return version;
}

/* Apply one migration step and its version bump atomically. */
static int apply_migration(struct sqlite_store *st, const struct migration *m)
{
	char bump[64];
	int err;

	err = exec_sql(st, "BEGIN IMMEDIATE");
	if (err)
		return err;
	err = exec_sql(st, m->sql);
	if (err)
		goto out_rollback;
	/* PRAGMA takes no bound parameters; the version is our own constant. */
	snprintf(bump, sizeof bump, "PRAGMA user_version = %d", m->version);
	err = exec_sql(st, bump);
	if (err)
		goto out_rollback;
	err = exec_sql(st, "COMMIT");
	if (err)
		goto out_rollback;
	RG_INFO("store: schema migrated to version %d", m->version);
	return 0;

out_rollback:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return err;
}

/* The file's schema version, refused (-EPROTO) if newer than ours. */
static int known_version(struct sqlite_store *st)
{
	int version = user_version(st);

	if (version > DBP_STORE_SCHEMA_VERSION) {
		RG_ERROR("store: database schema version %d is newer than this binary's %d",
			 version, DBP_STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	return version;
}

static int migrate(struct sqlite_store *st)
{
	int version = known_version(st);

	if (version < 0)
		return version;
	for (size_t i = 0; i < sizeof migrations / sizeof migrations[0]; i++) {
		if (migrations[i].version <= version)
			continue;
		int err = apply_migration(st, &migrations[i]);
		if (err)
			return err;
	}
	return 0;
}

/* A reader never migrates: it needs the writer to have done it. */
static int check_version(struct sqlite_store *st)
{
	int version = known_version(st);

	if (version < 0)
		return version;
	if (version < DBP_STORE_SCHEMA_VERSION) {
		RG_ERROR("store: database schema version %d is not migrated yet", version);
		return -ENOENT;
	}
	return 0;
}

static int store_prepare(struct sqlite_store *st)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					    &st->stmt[i], NULL);
		if (rc != SQLITE_OK)
			return store_fail(st, stmt_sql[i], rc);
	}
	return 0;
}

/*
 * Switch the file to WAL. SQLite answers with the mode now in force and
 * quietly keeps the old one where WAL cannot work (some network file
 * systems): refuse to run then, since readers would block the writer.
 */
static int enable_wal(struct sqlite_store *st)
{
	sqlite3_stmt *stmt;
	const unsigned char *mode;
	bool wal;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);

	if (rc != SQLITE_OK)
		return store_fail(st, "PRAGMA journal_mode", rc);
	rc = sqlite3_step(stmt);
	mode = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
	wal = mode && strcmp((const char *)mode, "wal") == 0;
	if (rc != SQLITE_ROW)
		store_fail(st, "PRAGMA journal_mode", rc);
	else if (!wal)
		RG_ERROR("store: WAL mode not available here (journal_mode is %s)",
			 mode ? (const char *)mode : "?");
	sqlite3_finalize(stmt);
	return wal ? 0 : -EIO;
}

/* Connection settings: WAL, sync level, then schema. */
static int store_setup(struct sqlite_store *st, const struct dbp_store_config *cfg)
{
	int err;

	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : 5000);
	if (!cfg->read_only) {
		/* journal_mode=WAL is stored in the file: set once by the writer,
		 * every later connection (readers included) inherits it. */
		err = enable_wal(st);
		if (err)
			return err;
	}
	err = exec_sql(st, cfg->sync == DBP_STORE_SYNC_FULL ? "PRAGMA synchronous = FULL"
							   : "PRAGMA synchronous = NORMAL");
	if (err)
		return err;
	if (cfg->read_only) {
		err = check_version(st);
		if (err)
			return err;
		err = exec_sql(st, "PRAGMA query_only = 1");
	} else {
		err = migrate(st);
	}
	if (err)
		return err;
	return store_prepare(st);
}

static void sqlite_close(struct dbp_store *base)
{
	struct sqlite_store *st = sqlite_of(base);

	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	/* sqlite3_close_v2 of the last connection checkpoints the WAL into the
	 * main file and removes the -wal and -shm files. */
	sqlite3_close_v2(st->db);
	free(st);
}

static int sqlite_open(const struct dbp_store_config *cfg, struct dbp_store **out)
{
	int flags = SQLITE_OPEN_READWRITE | (cfg->read_only ? 0 : SQLITE_OPEN_CREATE);
	struct sqlite_store *st = calloc(1, sizeof *st);
	int rc, err;

	if (!st)
		return -ENOMEM;
	st->base.ops = &dbp__store_sqlite;
	rc = sqlite3_open_v2(cfg->path, &st->db, flags, NULL);
	if (rc != SQLITE_OK) {
		RG_ERROR("sqlite: open %s: %s", cfg->path,
			 st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		err = sqlite_to_errno(rc);
		goto out_close;
	}
	err = store_setup(st, cfg);
	if (err)
		goto out_close;
	*out = &st->base;
	return 0;

out_close:
	sqlite_close(&st->base);
	return err;
}

static int sqlite_schema_version(struct dbp_store *base)
{
	return user_version(sqlite_of(base));
}

static int sqlite_begin(struct dbp_store *base)
{
	return run_simple(sqlite_of(base), STMT_BEGIN);
}

static int sqlite_commit(struct dbp_store *base)
{
	return run_simple(sqlite_of(base), STMT_COMMIT);
}

static bool sqlite_in_transaction(struct dbp_store *base)
{
	return !sqlite3_get_autocommit(sqlite_of(base)->db);
}

static void sqlite_rollback(struct dbp_store *base)
{
	if (sqlite_in_transaction(base))
		run_simple(sqlite_of(base), STMT_ROLLBACK);
}

/* Fill *out from a row of PLAYER_COLUMNS. */
static void read_player(sqlite3_stmt *stmt, struct dbp_player *out)
{
	const unsigned char *name = sqlite3_column_text(stmt, 1);

	memset(out, 0, sizeof *out);
	out->id = (uint64_t)sqlite3_column_int64(stmt, 0);
	if (name)
		snprintf(out->name, sizeof out->name, "%s", (const char *)name);
	out->zone = (uint32_t)sqlite3_column_int64(stmt, 2);
	out->x = (float)sqlite3_column_double(stmt, 3);
	out->y = (float)sqlite3_column_double(stmt, 4);
	out->gold = (uint64_t)sqlite3_column_int64(stmt, 5);
	out->created_at = sqlite3_column_int64(stmt, 6);
	out->updated_at = sqlite3_column_int64(stmt, 7);
	out->last_op_id = (uint64_t)sqlite3_column_int64(stmt, 8);
	out->lease_epoch = (uint64_t)sqlite3_column_int64(stmt, 9);
	out->lease_owner = (uint64_t)sqlite3_column_int64(stmt, 10);
	out->lease_shard = (uint32_t)sqlite3_column_int64(stmt, 11);
	out->lease_expires = sqlite3_column_int64(stmt, 12);
}

/* Step a one-row query: 0 with the row in *out, -ENOENT, or an error. */
static int fetch_player(struct sqlite_store *st, enum dbp__stmt id, struct dbp_player *out,
			char *pwhash)
{
	sqlite3_stmt *stmt = st->stmt[id];
	int rc = sqlite3_step(stmt);
	int err = 0;

	if (rc == SQLITE_ROW) {
		read_player(stmt, out);
		if (pwhash) {
			const unsigned char *hash = sqlite3_column_text(stmt, PLAYER_NCOLUMNS);
			snprintf(pwhash, DBP_PWHASH_MAX, "%s", hash ? (const char *)hash : "");
		}
	} else if (rc == SQLITE_DONE) {
		err = -ENOENT;
	} else {
		err = store_fail(st, stmt_sql[id], rc);
	}
	stmt_done(stmt);
	return err;
}

static int sqlite_find(struct dbp_store *base, const char *name, uint64_t id,
		       struct dbp_player *out, char *pwhash)
{
	struct sqlite_store *st = sqlite_of(base);

	if (name) {
		sqlite3_bind_text(st->stmt[STMT_FIND_BY_NAME], 1, name, -1, SQLITE_STATIC);
		return fetch_player(st, STMT_FIND_BY_NAME, out, pwhash);
	}
	sqlite3_bind_int64(st->stmt[STMT_FIND_BY_ID], 1, (sqlite3_int64)id);
	return fetch_player(st, STMT_FIND_BY_ID, out, NULL);
}

static int create_player(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	const struct dbp_lease *lease = &w->create.lease;
	sqlite3_stmt *stmt = st->stmt[STMT_INSERT];
	int rc;

	sqlite3_bind_text(stmt, 1, w->create.name, -1, SQLITE_STATIC);
	sqlite3_bind_text(stmt, 2, w->create.pwhash, -1, SQLITE_STATIC);
	sqlite3_bind_int64(stmt, 3, DBP_SPAWN_ZONE);
	sqlite3_bind_double(stmt, 4, DBP_SPAWN_X);
	sqlite3_bind_double(stmt, 5, DBP_SPAWN_Y);
	sqlite3_bind_int64(stmt, 6, now_ms);
	sqlite3_bind_int64(stmt, 7, lease->owner ? 1 : 0);
	sqlite3_bind_int64(stmt, 8, (sqlite3_int64)lease->owner);
	sqlite3_bind_int64(stmt, 9, lease->owner ? lease->shard : 0);
	sqlite3_bind_int64(stmt, 10, lease->owner ? now_ms + lease->lease_ms : 0);
	rc = sqlite3_step(stmt);
	stmt_done(stmt);
	if (rc != SQLITE_DONE)
		return store_fail(st, "insert player", rc);

	dbp__store_new_player(&w->player, (uint64_t)sqlite3_last_insert_rowid(st->db),
			      w->create.name, now_ms);
	if (lease->owner)
		dbp__store_new_lease(&w->player, 1, lease, now_ms);
	return 0;
}

/*
 * Step a guarded UPDATE (bound by the caller) that RETURNs gold (ADD_GOLD)
 * or PLAYER_COLUMNS (into w->player), or nothing (SAVE_POSITION: its
 * change count tells). When it changed no row, explain why from the row as
 * it is now (the same transaction). Returns the write's result.
 */
static int run_guarded(struct sqlite_store *st, enum dbp__stmt id, struct dbp_write *w,
		       uint64_t player_id)
{
	sqlite3_stmt *stmt = st->stmt[id];
	struct dbp_player now;
	bool updated = false;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		if (w->kind == DBP_WRITE_ADD_GOLD)
			w->gold = (uint64_t)sqlite3_column_int64(stmt, 0);
		else
			read_player(stmt, &w->player);
		updated = true;
	}
	stmt_done(stmt);
	if (rc != SQLITE_DONE)
		return store_fail(st, stmt_sql[id], rc);
	if (!updated && id == STMT_SAVE_POSITION)
		updated = sqlite3_changes(st->db) > 0;
	if (updated)
		return 0;
	rc = sqlite_find(&st->base, NULL, player_id, &now, NULL);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	return dbp__store_explain_miss(w, rc == 0 ? &now : NULL);
}

static int new_epoch(struct sqlite_store *st, uint64_t *epoch)
{
	sqlite3_stmt *stmt = st->stmt[STMT_NEW_EPOCH];
	sqlite3_int64 value = 0;
	bool found = false;
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
		value = sqlite3_column_int64(stmt, 0);
		found = true;
	}
	stmt_done(stmt);
	if (rc != SQLITE_DONE)
		return store_fail(st, "new epoch", rc);
	if (!found)
		return -EIO; /* the migration made the row: a damaged file */
	/* The epoch is the top half of a 63-bit op_id. */
	if (value < 1 || value > INT32_MAX)
		return -ERANGE;
	*epoch = (uint64_t)value;
	return 0;
}

static int add_gold(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	sqlite3_stmt *stmt = st->stmt[STMT_ADD_GOLD];

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->add_gold.player_id);
	sqlite3_bind_int64(stmt, 2, w->add_gold.amount);
	sqlite3_bind_int64(stmt, 3, now_ms);
	sqlite3_bind_int64(stmt, 4, (sqlite3_int64)w->add_gold.op_id);
	sqlite3_bind_int64(stmt, 5, (sqlite3_int64)w->add_gold.lease_epoch);
	return run_guarded(st, STMT_ADD_GOLD, w, w->add_gold.player_id);
}

static int save_position(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	sqlite3_stmt *stmt = st->stmt[STMT_SAVE_POSITION];

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->save.player_id);
	sqlite3_bind_int64(stmt, 2, w->save.zone);
	sqlite3_bind_double(stmt, 3, w->save.x);
	sqlite3_bind_double(stmt, 4, w->save.y);
	sqlite3_bind_int64(stmt, 5, now_ms);
	sqlite3_bind_int64(stmt, 6, (sqlite3_int64)w->save.lease_epoch);
	sqlite3_bind_int(stmt, 7, w->save.release);
	return run_guarded(st, STMT_SAVE_POSITION, w, w->save.player_id);
}

static int take_lease(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	sqlite3_stmt *stmt = st->stmt[STMT_TAKE_LEASE];

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->take.player_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)w->take.lease.owner);
	sqlite3_bind_int64(stmt, 3, w->take.lease.shard);
	sqlite3_bind_int64(stmt, 4, now_ms);
	sqlite3_bind_int64(stmt, 5, now_ms + w->take.lease.lease_ms);
	return run_guarded(st, STMT_TAKE_LEASE, w, w->take.player_id);
}

/* One UPDATE per player (prepared once, in the batch's transaction);
 * those it does not change are lost. */
static int renew_leases(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	sqlite3_stmt *stmt = st->stmt[STMT_RENEW_LEASES];

	w->nlost = 0;
	for (size_t i = 0; i < w->renew.n; i++) {
		int rc;

		sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->renew.player_ids[i]);
		sqlite3_bind_int64(stmt, 2, (sqlite3_int64)w->renew.epochs[i]);
		sqlite3_bind_int64(stmt, 3, (sqlite3_int64)w->renew.owner);
		sqlite3_bind_int64(stmt, 4, now_ms + w->renew.lease_ms);
		rc = sqlite3_step(stmt);
		stmt_done(stmt);
		if (rc != SQLITE_DONE)
			return store_fail(st, "renew leases", rc);
		if (sqlite3_changes(st->db) == 0)
			w->renew.lost[w->nlost++] = w->renew.player_ids[i];
	}
	return 0;
}

static int adopt(struct sqlite_store *st, struct dbp_write *w, int64_t now_ms)
{
	sqlite3_stmt *stmt = st->stmt[STMT_ADOPT];

	sqlite3_bind_int64(stmt, 1, (sqlite3_int64)w->adopt.player_id);
	sqlite3_bind_int64(stmt, 2, (sqlite3_int64)w->adopt.from_epoch);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)w->adopt.lease.owner);
	sqlite3_bind_int64(stmt, 4, w->adopt.lease.shard);
	sqlite3_bind_int64(stmt, 5, now_ms + w->adopt.lease.lease_ms);
	sqlite3_bind_int64(stmt, 6, w->adopt.zone);
	sqlite3_bind_double(stmt, 7, w->adopt.x);
	sqlite3_bind_double(stmt, 8, w->adopt.y);
	sqlite3_bind_int64(stmt, 9, now_ms);
	return run_guarded(st, STMT_ADOPT, w, w->adopt.player_id);
}

static int sqlite_apply(struct dbp_store *base, struct dbp_write *w, int64_t now_ms)
{
	struct sqlite_store *st = sqlite_of(base);

	w->duplicate = false;
	switch (w->kind) {
	case DBP_WRITE_CREATE_PLAYER:
		return create_player(st, w, now_ms);
	case DBP_WRITE_ADD_GOLD:
		return add_gold(st, w, now_ms);
	case DBP_WRITE_SAVE_POSITION:
		return save_position(st, w, now_ms);
	case DBP_WRITE_NEW_EPOCH:
		return new_epoch(st, &w->epoch);
	case DBP_WRITE_TAKE_LEASE:
		return take_lease(st, w, now_ms);
	case DBP_WRITE_RENEW_LEASES:
		return renew_leases(st, w, now_ms);
	case DBP_WRITE_ADOPT:
		return adopt(st, w, now_ms);
	}
	return -EINVAL;
}

/* BEGIN IMMEDIATE (the write lock up front, so a batch never fails half-way
 * for a lock); each write; COMMIT, or ROLLBACK at the first database
 * failure. */
static int sqlite_apply_batch(struct dbp_store *base, struct dbp_write *const *writes, size_t n,
			      int64_t now_ms)
{
	int err = sqlite_begin(base);

	for (size_t i = 0; i < n && !err; i++) {
		struct dbp_write *w = writes[i];

		if (dbp__store_answer_out_of_range(w))
			continue;
		w->result = sqlite_apply(base, w, now_ms);
		if (!dbp__store_is_own_result(w->result))
			err = w->result;
	}
	if (!err)
		err = sqlite_commit(base);
	if (err)
		sqlite_rollback(base);
	return err;
}

/* A file is always there: there is no connection to lose. */
static bool sqlite_up(struct dbp_store *base)
{
	(void)base;
	return true;
}

static int sqlite_reconnect(struct dbp_store *base)
{
	(void)base;
	return 0;
}

const struct dbp_store_ops dbp__store_sqlite = {
	.name = "sqlite",
	.open = sqlite_open,
	.close = sqlite_close,
	.schema_version = sqlite_schema_version,
	.begin = sqlite_begin,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.in_transaction = sqlite_in_transaction,
	.find = sqlite_find,
	.apply = sqlite_apply,
	.apply_batch = sqlite_apply_batch,
	.up = sqlite_up,
	.reconnect = sqlite_reconnect,
};
