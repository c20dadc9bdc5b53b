/*
 * test_store.c: unit tests of dbproxy's store, writer and login workers
 * (the ringgate_store library), without any network. Each case is its own
 * CTest test: `test_store <case>`.
 *
 * Backends: SQLite by default, each case in a fresh temporary directory
 * that it removes at the end; PostgreSQL when RINGGATE_TEST_PG_DSN names a
 * fresh server (tests/ringgate_test/postgres.py starts one per run). The
 * same cases must pass on both; the ones about SQLite's own history (files
 * from schema versions before PostgreSQL support, WAL) are SQLite's only.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "auth.h"
#include "check.h"
#include "rg/log.h"
#include "store.h"
#include "writer.h"

static char dir[64];
static char db_path[128];
static const char *pg_dsn;  /* RINGGATE_TEST_PG_DSN: run on PostgreSQL */

static void temp_db(void)
{
	if (pg_dsn)
		return; /* the fixture's server is fresh for each run */
	snprintf(dir, sizeof dir, "/tmp/test_store.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(db_path, sizeof db_path, "%s/test.db", dir);
}

static void remove_temp_db(void)
{
	const char *suffixes[] = { "", "-wal", "-shm", "-journal" };
	char path[160];

	if (pg_dsn)
		return;
	for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
		snprintf(path, sizeof path, "%s%s", db_path, suffixes[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* The store configuration of the backend under test. */
static struct dbp_store_config store_config(bool read_only)
{
	struct dbp_store_config cfg = {
		.backend = pg_dsn ? DBP_STORE_POSTGRES : DBP_STORE_SQLITE,
		.path = db_path,
		.dsn = pg_dsn,
		.read_only = read_only,
		.sync = DBP_STORE_SYNC_NORMAL,
	};

	return cfg;
}

static struct dbp_store *open_writer(void)
{
	struct dbp_store_config cfg = store_config(false);
	struct dbp_store *st = NULL;

	CHECK(dbp_store_open(&cfg, &st) == 0);
	return st;
}

/* Run SQL on the database behind the store's back: with plain SQLite, as
 * an older binary would have, or with libpq. */
static void raw_sql(const char *sql)
{
	if (pg_dsn) {
		PGconn *conn = PQconnectdb(pg_dsn);
		PGresult *res;

		CHECK(PQstatus(conn) == CONNECTION_OK);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fprintf(stderr, "raw_sql: %s", PQerrorMessage(conn));
		CHECK(PQresultStatus(res) == PGRES_COMMAND_OK);
		PQclear(res);
		PQfinish(conn);
	} else {
		sqlite3 *db;

		CHECK(sqlite3_open(db_path, &db) == SQLITE_OK);
		CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
		sqlite3_close(db);
	}
}

/* SQL that sets the schema version to v behind the store's back. */
static void set_schema_version(int v)
{
	char sql[160];

	if (pg_dsn)
		snprintf(sql, sizeof sql, "CREATE TABLE IF NOT EXISTS ringgate_schema"
			 " (version integer PRIMARY KEY); INSERT INTO ringgate_schema VALUES (%d)", v);
	else
		snprintf(sql, sizeof sql, "PRAGMA user_version = %d;", v);
	raw_sql(sql);
}

/* ---- schema ------------------------------------------------------------- */

static void migrate_empty(void)
{
	struct dbp_store_config reader_cfg = store_config(true);
	struct dbp_store *st, *reader;
	struct dbp_player p, q;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_create_player(st, "alice", "hash", NULL, 1000, &p) == 0);
	CHECK(p.id > 0 && p.zone == DBP_SPAWN_ZONE && p.gold == 0);
	CHECK(dbp_store_create_player(st, "alice", "hash", NULL, 1000, &q) == -EEXIST);
	dbp_store_close(st);

	/* Opening again migrates nothing and keeps the row. */
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_open(&reader_cfg, &reader) == 0);
	CHECK(dbp_store_find_by_name(reader, "alice", &q, NULL) == 0);
	CHECK(q.id == p.id && q.created_at == 1000 && q.updated_at == 1000);
	CHECK(dbp_store_find_by_name(reader, "bob", &q, NULL) == -ENOENT);
	dbp_store_close(reader);
	dbp_store_close(st);
	remove_temp_db();
}

static void migrate_from_v1(void)
{
	struct dbp_store *st;
	struct dbp_player p;
	char hash[DBP_PWHASH_MAX];

	temp_db();
	/* A file written by schema version 1 (no updated_at column). */
	raw_sql("CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT,"
		" name TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL, zone INTEGER NOT NULL,"
		" x REAL NOT NULL, y REAL NOT NULL,"
		" gold INTEGER NOT NULL DEFAULT 0 CHECK (gold >= 0),"
		" created_at INTEGER NOT NULL);"
		"INSERT INTO players (name, pwhash, zone, x, y, gold, created_at)"
		" VALUES ('old', 'h1', 3, 1.5, 2.5, 77, 12345);"
		"PRAGMA user_version = 1;");
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_find_by_name(st, "old", &p, hash) == 0);
	CHECK(p.zone == 3 && p.x == 1.5f && p.y == 2.5f && p.gold == 77);
	CHECK(p.created_at == 12345 && p.updated_at == 12345 && p.last_op_id == 0);
	CHECK(strcmp(hash, "h1") == 0);
	dbp_store_close(st);
	remove_temp_db();
}

static void migrate_from_v2(void)
{
	struct dbp_store *st;
	struct dbp_player p;
	uint64_t total = 0;
	bool dup;

	temp_db();
	/* A file written by schema version 2 (no last_op_id column). */
	raw_sql("CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT,"
		" name TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL, zone INTEGER NOT NULL,"
		" x REAL NOT NULL, y REAL NOT NULL,"
		" gold INTEGER NOT NULL DEFAULT 0 CHECK (gold >= 0),"
		" created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0);"
		"INSERT INTO players (name, pwhash, zone, x, y, gold, created_at, updated_at)"
		" VALUES ('old', 'h1', 3, 1.5, 2.5, 77, 12345, 23456);"
		"PRAGMA user_version = 2;");
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_find_by_name(st, "old", &p, NULL) == 0);
	CHECK(p.gold == 77 && p.updated_at == 23456 && p.last_op_id == 0);
	/* The first keyed AddGold after the migration is applied. */
	CHECK(dbp_store_add_gold(st, p.id, 3, 1, 0, 30000, &total, &dup) == 0);
	CHECK(total == 80 && !dup);
	dbp_store_close(st);
	remove_temp_db();
}

/* The same op_id twice adds once; lower ones are duplicates too; 0 has no
 * key and is applied every time without moving last_op_id. */
static void add_gold_once(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t total = 0;
	bool dup;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "dave", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 10, 100, 0, 2, &total, &dup) == 0);
	CHECK(total == 10 && !dup);
	CHECK(dbp_store_add_gold(st, p.id, 10, 100, 0, 3, &total, &dup) == 0);
	CHECK(total == 10 && dup);
	CHECK(dbp_store_add_gold(st, p.id, 4, 99, 0, 3, &total, &dup) == 0);
	CHECK(total == 10 && dup);
	CHECK(dbp_store_add_gold(st, p.id, 5, 101, 0, 4, &total, &dup) == 0);
	CHECK(total == 15 && !dup);
	CHECK(dbp_store_add_gold(st, p.id, 1, 0, 0, 5, &total, &dup) == 0);
	CHECK(total == 16 && !dup);
	CHECK(dbp_store_add_gold(st, p.id, 1, 0, 0, 5, &total, &dup) == 0);
	CHECK(total == 17 && !dup);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0 && q.gold == 17 && q.last_op_id == 101);
	/* A duplicate for a missing player is still "no such player". */
	CHECK(dbp_store_add_gold(st, p.id + 1, 1, 100, 0, 5, &total, &dup) == -ENOENT);
	/* Keys are per player: another player's first op_id 100 is applied. */
	CHECK(dbp_store_create_player(st, "erin", "hash", NULL, 1, &q) == 0);
	CHECK(dbp_store_add_gold(st, q.id, 2, 100, 0, 6, &total, &dup) == 0);
	CHECK(total == 2 && !dup);
	/* The databases' integers are signed: a key past INT64_MAX is refused. */
	CHECK(dbp_store_add_gold(st, q.id, 2, (uint64_t)INT64_MAX + 1, 0, 6, &total, &dup) == -ERANGE);
	/* Survives closing: the key is in the file, not in memory. */
	dbp_store_close(st);
	st = open_writer();
	CHECK(dbp_store_add_gold(st, p.id, 10, 101, 0, 7, &total, &dup) == 0);
	CHECK(total == 17 && dup);
	dbp_store_close(st);
	remove_temp_db();
}

/*
 * Issue 11 item 1: keys of different epochs never shadow each other. An
 * op_id of another epoch is applied even when it is numerically lower (a
 * second gamesrv, or one whose epoch is older); within an epoch the old
 * rule holds.
 */
static void add_gold_epochs(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t total = 0;
	bool dup;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "fay", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 5, 6ull << 32 | 1, 0, 2, &total, &dup) == 0);
	CHECK(total == 5 && !dup);
	/* Epoch 5's first write comes after epoch 6's: applied, not a duplicate. */
	CHECK(dbp_store_add_gold(st, p.id, 7, 5ull << 32 | 1, 0, 3, &total, &dup) == 0);
	CHECK(total == 12 && !dup);
	CHECK(dbp_store_add_gold(st, p.id, 9, 5ull << 32 | 2, 0, 4, &total, &dup) == 0);
	CHECK(total == 21 && !dup);
	/* A resend of epoch 5's newest write is a duplicate, so is an older one. */
	CHECK(dbp_store_add_gold(st, p.id, 9, 5ull << 32 | 2, 0, 5, &total, &dup) == 0);
	CHECK(total == 21 && dup);
	CHECK(dbp_store_add_gold(st, p.id, 7, 5ull << 32 | 1, 0, 5, &total, &dup) == 0);
	CHECK(total == 21 && dup);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0 && q.last_op_id == (5ull << 32 | 2));
	CHECK(dbp_store_op_is_duplicate(5ull << 32 | 2, 5ull << 32 | 2));
	CHECK(!dbp_store_op_is_duplicate(4ull << 32 | 2, 5ull << 32 | 2));
	CHECK(!dbp_store_op_is_duplicate(0, 0));
	dbp_store_close(st);
	remove_temp_db();
}

/* Epochs come from a counter in the file: each call a new one, also after
 * reopening, and only once its transaction commits. */
static void new_epoch(void)
{
	struct dbp_store *st;
	uint64_t a = 0, b = 0, c = 0;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_new_epoch(st, &a) == 0 && a == 1);
	CHECK(dbp_store_new_epoch(st, &b) == 0 && b == 2);
	CHECK(dbp_store_begin(st) == 0);
	CHECK(dbp_store_new_epoch(st, &c) == 0 && c == 3);
	dbp_store_rollback(st);
	dbp_store_close(st);
	st = open_writer();
	CHECK(dbp_store_new_epoch(st, &c) == 0 && c == 3);
	dbp_store_close(st);
	remove_temp_db();
}

/* A version 3 file holds clock-made keys (wall ms << 20): the counter
 * starts above their "epoch" half, so no new key can be taken for one. */
static void migrate_from_v3(void)
{
	struct dbp_store *st;
	struct dbp_player p;
	uint64_t epoch = 0, total = 0, old_key = 1764590000000ull << 20;
	bool dup;
	char sql[1024];

	temp_db();
	snprintf(sql, sizeof sql,
		 "CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT,"
		 " name TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL, zone INTEGER NOT NULL,"
		 " x REAL NOT NULL, y REAL NOT NULL,"
		 " gold INTEGER NOT NULL DEFAULT 0 CHECK (gold >= 0),"
		 " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0,"
		 " last_op_id INTEGER NOT NULL DEFAULT 0);"
		 "INSERT INTO players (name, pwhash, zone, x, y, gold, created_at, updated_at,"
		 " last_op_id) VALUES ('old', 'h1', 1, 0, 0, 10, 1, 1, %llu);"
		 "PRAGMA user_version = 3;", (unsigned long long)old_key);
	raw_sql(sql);
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_new_epoch(st, &epoch) == 0 && epoch == (old_key >> 32) + 1);
	CHECK(dbp_store_find_by_name(st, "old", &p, NULL) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 3, epoch << 32 | 1, 0, 2, &total, &dup) == 0);
	CHECK(total == 13 && !dup);
	dbp_store_close(st);
	remove_temp_db();
}

static void refuse_newer_schema(void)
{
	struct dbp_store_config cfg = store_config(false);
	struct dbp_store *st = NULL;

	temp_db();
	set_schema_version(99);
	CHECK(dbp_store_open(&cfg, &st) == -EPROTO);
	CHECK(st == NULL);
	remove_temp_db();
}

/* Where WAL cannot work the store refuses to open (here: a memory db). */
static void refuse_without_wal(void)
{
	struct dbp_store_config cfg = { .path = ":memory:" };
	struct dbp_store *st = NULL;

	CHECK(dbp_store_open(&cfg, &st) == -EIO);
	CHECK(st == NULL);
}

static void reader_needs_migrated_file(void)
{
	struct dbp_store_config cfg = store_config(true);
	struct dbp_store *st = NULL;

	temp_db();
	CHECK(dbp_store_open(&cfg, &st) == -ENOENT); /* no file, empty database */
	set_schema_version(DBP_STORE_SCHEMA_VERSION - 1);
	CHECK(dbp_store_open(&cfg, &st) == -ENOENT); /* not migrated */
	remove_temp_db();
}

static void gold_and_position(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t total = 0;
	bool dup;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "carol", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 5, 0, 0, 2, &total, &dup) == 0 && total == 5);
	CHECK(dbp_store_add_gold(st, p.id + 1, 5, 0, 0, 2, &total, &dup) == -ENOENT);
	CHECK(dbp_store_add_gold(st, UINT64_MAX, 5, 0, 0, 2, &total, &dup) == -ENOENT);
	CHECK(dbp_store_save_position(st, p.id, 4, -3.25f, 8.5f, 0, false, 3) == 0);
	CHECK(dbp_store_save_position(st, p.id + 1, 4, 0, 0, 0, false, 3) == -ENOENT);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.zone == 4 && q.x == -3.25f && q.y == 8.5f && q.gold == 5 && q.updated_at == 3);
	/* Gold stops at the databases' int64 range instead of wrapping. */
	raw_sql("UPDATE players SET gold = 9223372036854775800");
	CHECK(dbp_store_add_gold(st, p.id, 7, 0, 0, 4, &total, &dup) == 0 && total == INT64_MAX);
	CHECK(dbp_store_add_gold(st, p.id, 1, 0, 0, 4, &total, &dup) == -ERANGE);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0 && q.gold == INT64_MAX);
	dbp_store_close(st);
	remove_temp_db();
}

/* One batch holding every kind of write and every own outcome: each
 * write gets its own result and the batch commits as a whole (on
 * PostgreSQL no write's outcome may abort its batch-mates' pipeline). */
static void batch_own_results(void)
{
	struct dbp_write w[8];
	struct dbp_write *batch[8];
	struct dbp_store *st;
	struct dbp_player p, q;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "kim", "hash", NULL, 1, &p) == 0);
	memset(w, 0, sizeof w);
	for (int i = 0; i < 8; i++)
		batch[i] = &w[i];
	w[0].kind = DBP_WRITE_CREATE_PLAYER;
	snprintf(w[0].create.name, sizeof w[0].create.name, "kim");
	snprintf(w[0].create.pwhash, sizeof w[0].create.pwhash, "h");
	w[1].kind = DBP_WRITE_CREATE_PLAYER;
	snprintf(w[1].create.name, sizeof w[1].create.name, "lee");
	snprintf(w[1].create.pwhash, sizeof w[1].create.pwhash, "h2");
	w[2].kind = DBP_WRITE_ADD_GOLD;
	w[2].add_gold.player_id = p.id + 1000;
	w[2].add_gold.amount = 1;
	w[3].kind = DBP_WRITE_ADD_GOLD;
	w[3].add_gold.player_id = p.id;
	w[3].add_gold.amount = 5;
	w[3].add_gold.op_id = 1ull << 32 | 1;
	w[4] = w[3]; /* the same op again: a duplicate */
	w[5].kind = DBP_WRITE_SAVE_POSITION;
	w[5].save.player_id = p.id + 1000;
	w[5].save.zone = 2;
	w[6].kind = DBP_WRITE_NEW_EPOCH;
	w[7].kind = DBP_WRITE_ADD_GOLD;
	w[7].add_gold.player_id = UINT64_MAX;
	w[7].add_gold.amount = 1;
	CHECK(dbp_store_apply_batch(st, batch, 8, 50) == 0);
	CHECK(w[0].result == -EEXIST);
	CHECK(w[1].result == 0 && w[1].player.id > p.id && w[1].player.created_at == 50);
	CHECK(w[2].result == -ENOENT);
	CHECK(w[3].result == 0 && w[3].gold == 5 && !w[3].duplicate);
	CHECK(w[4].result == 0 && w[4].gold == 5 && w[4].duplicate);
	CHECK(w[5].result == -ENOENT);
	CHECK(w[6].result == 0 && w[6].epoch == 1);
	CHECK(w[7].result == -ENOENT);
	CHECK(!dbp_store_in_transaction(st));
	dbp_store_close(st);

	/* Committed: a new connection sees it. */
	st = open_writer();
	CHECK(dbp_store_find_by_name(st, "lee", &q, NULL) == 0 && q.id == w[1].player.id);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0 && q.gold == 5);
	dbp_store_close(st);
	remove_temp_db();
}

/* ---- writer ------------------------------------------------------------- */

#define GOLD_WRITES 300

struct gold_log {
	pthread_mutex_t lock;
	size_t count;
	struct dbp_write *order[GOLD_WRITES];
};

static struct gold_log gold_log = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void log_gold(struct dbp_write *w)
{
	pthread_mutex_lock(&gold_log.lock);
	gold_log.order[gold_log.count++] = w;
	pthread_mutex_unlock(&gold_log.lock);
}

static void add_gold_order(void)
{
	static struct dbp_write writes[GOLD_WRITES];
	struct dbp_writer_stats stats;
	struct dbp_writer *wr;
	struct dbp_store *st;
	struct dbp_player p;
	uint64_t expect = 0;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "dave", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_writer_start(st, GOLD_WRITES, 7, &wr) == 0);
	for (size_t i = 0; i < GOLD_WRITES; i++) {
		writes[i].kind = DBP_WRITE_ADD_GOLD;
		writes[i].add_gold.player_id = p.id;
		writes[i].add_gold.amount = (uint32_t)(i % 13 + 1);
		writes[i].done = log_gold;
		CHECK(dbp_writer_submit(wr, &writes[i]) == 0);
	}
	dbp_writer_stop(wr, &stats);
	CHECK(stats.writes == GOLD_WRITES && stats.failed_batches == 0);
	CHECK(stats.commits >= GOLD_WRITES / 7 && stats.commits <= GOLD_WRITES);
	/* Answered in submit order, each total the running sum. */
	CHECK(gold_log.count == GOLD_WRITES);
	for (size_t i = 0; i < GOLD_WRITES; i++) {
		expect += i % 13 + 1;
		CHECK(gold_log.order[i] == &writes[i]);
		CHECK(writes[i].result == 0 && writes[i].gold == expect);
	}
	dbp_store_close(st);

	/* And it is all in the file. */
	st = open_writer();
	CHECK(dbp_store_find_by_id(st, p.id, &p) == 0 && p.gold == expect);
	dbp_store_close(st);
	remove_temp_db();
}

/* A pool of two write connections: each player's writes are applied in
 * submit order (its running totals), across players the lanes commit
 * side by side, and everything lands. */
static void writer_pool(void)
{
	enum { PLAYERS = 6, EACH = 40 };
	static struct dbp_write writes[PLAYERS * EACH];
	struct dbp_store *st[2];
	struct dbp_writer_stats stats;
	struct dbp_writer *wr;
	struct dbp_player p[PLAYERS];

	temp_db();
	st[0] = open_writer();
	st[1] = open_writer();
	for (int i = 0; i < PLAYERS; i++) {
		char name[16];

		snprintf(name, sizeof name, "pool%d", i);
		CHECK(dbp_store_create_player(st[0], name, "hash", NULL, 1, &p[i]) == 0);
	}
	gold_log.count = 0;
	CHECK(dbp_writer_start_pool(st, 2, PLAYERS * EACH, 5, &wr) == 0);
	for (int k = 0; k < EACH; k++) {
		for (int i = 0; i < PLAYERS; i++) {
			struct dbp_write *w = &writes[k * PLAYERS + i];

			w->kind = DBP_WRITE_ADD_GOLD;
			w->add_gold.player_id = p[i].id;
			w->add_gold.amount = (uint32_t)(k + 1);
			w->done = log_gold;
			CHECK(dbp_writer_submit(wr, w) == 0);
		}
	}
	dbp_writer_stop(wr, &stats);
	CHECK(stats.writes == PLAYERS * EACH && stats.failed_batches == 0 && stats.up);
	for (int i = 0; i < PLAYERS; i++) {
		uint64_t expect = 0;

		for (int k = 0; k < EACH; k++) {
			expect += (uint64_t)k + 1;
			CHECK(writes[k * PLAYERS + i].result == 0);
			CHECK(writes[k * PLAYERS + i].gold == expect);
		}
		CHECK(dbp_store_find_by_id(st[1], p[i].id, &p[i]) == 0 && p[i].gold == expect);
	}
	dbp_store_close(st[1]);
	dbp_store_close(st[0]);
	remove_temp_db();
}

static sem_t entered, release;

static void block_first(struct dbp_write *w)
{
	if (w->add_gold.amount == 1) {
		sem_post(&entered);
		sem_wait(&release);
	}
}

static void writer_busy(void)
{
	enum { QUEUE_MAX = 4 };
	static struct dbp_write writes[QUEUE_MAX + 2];
	struct dbp_writer_stats stats;
	struct dbp_writer *wr;
	struct dbp_store *st;
	struct dbp_player p;

	temp_db();
	CHECK(sem_init(&entered, 0, 0) == 0 && sem_init(&release, 0, 0) == 0);
	st = open_writer();
	CHECK(dbp_store_create_player(st, "erin", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_writer_start(st, QUEUE_MAX, 16, &wr) == 0);
	for (size_t i = 0; i < QUEUE_MAX + 2; i++) {
		writes[i].kind = DBP_WRITE_ADD_GOLD;
		writes[i].add_gold.player_id = p.id;
		writes[i].add_gold.amount = (uint32_t)(i + 1);
		writes[i].done = block_first;
	}
	/* The writer thread is held inside the first write's done(). */
	CHECK(dbp_writer_submit(wr, &writes[0]) == 0);
	sem_wait(&entered);
	for (size_t i = 1; i <= QUEUE_MAX; i++)
		CHECK(dbp_writer_submit(wr, &writes[i]) == 0);
	CHECK(dbp_writer_submit(wr, &writes[QUEUE_MAX + 1]) == -EAGAIN);
	CHECK(dbp_writer_queued(wr) == QUEUE_MAX);
	sem_post(&release);
	dbp_writer_stop(wr, &stats);
	CHECK(stats.writes == QUEUE_MAX + 1 && stats.busy_refusals == 1);
	CHECK(writes[QUEUE_MAX].result == 0);
	CHECK(writes[QUEUE_MAX].gold == (QUEUE_MAX + 1) * (QUEUE_MAX + 2) / 2);
	dbp_store_close(st);
	remove_temp_db();
}

/* A write whose deadline passed while it was queued is not applied. */
static void writer_deadline(void)
{
	static struct dbp_write w;
	struct dbp_writer *wr;
	struct dbp_store *st;
	struct dbp_player p;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "fay", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_writer_start(st, 8, 8, &wr) == 0);
	w.kind = DBP_WRITE_ADD_GOLD;
	w.add_gold.player_id = p.id;
	w.add_gold.amount = 10;
	w.deadline_ms = 1; /* long past on the monotonic clock */
	w.done = log_gold;
	CHECK(dbp_writer_submit(wr, &w) == 0);
	dbp_writer_stop(wr, NULL);
	CHECK(w.result == -ETIMEDOUT);
	CHECK(dbp_store_find_by_id(st, p.id, &p) == 0 && p.gold == 0);
	dbp_store_close(st);
	remove_temp_db();
}

/* ---- logins ------------------------------------------------------------- */

struct login_wait {
	struct dbp_login login;
	sem_t done;
};

static void login_signal(struct dbp_login *l)
{
	sem_post(&RG_CONTAINER_OF(l, struct login_wait, login)->done);
}

/* Submit a login whose password is password[0..len), NULs included. */
static void submit_login_bytes(struct dbp_auth *a, struct login_wait *lw, const char *name,
			       const char *password, size_t len)
{
	memset(lw, 0, sizeof *lw);
	CHECK(sem_init(&lw->done, 0, 0) == 0);
	CHECK(len <= sizeof lw->login.password);
	snprintf(lw->login.name, sizeof lw->login.name, "%s", name);
	memcpy(lw->login.password, password, len);
	lw->login.password_len = len;
	lw->login.done = login_signal;
	CHECK(dbp_auth_submit(a, &lw->login) == 0);
}

static void submit_login(struct dbp_auth *a, struct login_wait *lw, const char *name,
			 const char *password)
{
	submit_login_bytes(a, lw, name, password, strlen(password));
}

/* Submit a login that asks for the player's lease. */
static void submit_login_leased(struct dbp_auth *a, struct login_wait *lw, const char *name,
				const char *password, const struct dbp_lease *lease)
{
	memset(lw, 0, sizeof *lw);
	CHECK(sem_init(&lw->done, 0, 0) == 0);
	snprintf(lw->login.name, sizeof lw->login.name, "%s", name);
	memcpy(lw->login.password, password, strlen(password));
	lw->login.password_len = strlen(password);
	lw->login.lease = *lease;
	lw->login.done = login_signal;
	CHECK(dbp_auth_submit(a, &lw->login) == 0);
}

/* Wait for a submitted login's result. */
static struct dbp_login *wait_login(struct login_wait *lw)
{
	sem_wait(&lw->done);
	sem_destroy(&lw->done);
	return &lw->login;
}

/* Submit a login and wait for its result. */
static struct dbp_login *do_login(struct dbp_auth *a, struct login_wait *lw, const char *name,
				 const char *password)
{
	submit_login(a, lw, name, password);
	return wait_login(lw);
}

/* Start a writer and a login pool with the throttles given (0: off). */
static void start_auth_throttled(struct dbp_store **st, struct dbp_writer **wr, struct dbp_auth **a,
				 unsigned creates_per_sec, unsigned failures_per_account)
{
	static struct dbp_store_config store_cfg;
	struct dbp_auth_config cfg = {
		.store = &store_cfg, .threads = 2, .queue_max = 16, .profile = DBP_PWHASH_MIN,
		.creates_per_sec = creates_per_sec, .failures_per_account = failures_per_account,
	};

	store_cfg = store_config(false);
	*st = open_writer();
	CHECK(dbp_writer_start(*st, 64, 16, wr) == 0);
	cfg.writer = *wr;
	CHECK(dbp_auth_start(&cfg, a) == 0);
}

static void start_auth(struct dbp_store **st, struct dbp_writer **wr, struct dbp_auth **a)
{
	start_auth_throttled(st, wr, a, 0, 0);
}

/* A password is its whole byte string: one with a NUL inside does not
 * match its prefix (the old strlen cut made "ab" open "ab\0secretpart"). */
static void password_with_nul(void)
{
	static const char pw[] = "ab\0secretpart";
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_auth *a;
	struct login_wait lw;

	temp_db();
	start_auth(&st, &wr, &a);
	submit_login_bytes(a, &lw, "hank", pw, sizeof pw - 1);
	CHECK(wait_login(&lw)->result == 0 && lw.login.created);
	submit_login_bytes(a, &lw, "hank", pw, 2);
	CHECK(wait_login(&lw)->result == -EACCES);
	submit_login_bytes(a, &lw, "hank", pw, 3);
	CHECK(wait_login(&lw)->result == -EACCES);
	submit_login_bytes(a, &lw, "hank", pw, sizeof pw - 1);
	CHECK(wait_login(&lw)->result == 0 && !lw.login.created);
	dbp_auth_stop(a);
	dbp_writer_stop(wr, NULL);
	dbp_store_close(st);
}

/* An account backs off after failures (refused at submit, no hash); the
 * creation bound and no_create refuse an unknown name, -EDQUOT. */
static void login_throttles(void)
{
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_auth *a;
	struct login_wait lw;

	temp_db();
	start_auth_throttled(&st, &wr, &a, 1, 2);
	CHECK(do_login(a, &lw, "ivy", "pw")->result == 0 && lw.login.created);
	/* The creation bound (1 a second) is spent. */
	CHECK(do_login(a, &lw, "jack", "pw")->result == -EDQUOT);
	CHECK(do_login(a, &lw, "ivy", "bad")->result == -EACCES);
	CHECK(do_login(a, &lw, "ivy", "bad")->result == -EACCES);
	/* Two failures in a row: backing off for a second, even the right one. */
	memset(&lw, 0, sizeof lw);
	snprintf(lw.login.name, sizeof lw.login.name, "ivy");
	CHECK(dbp_auth_submit(a, &lw.login) == -EPERM);
	sleep(1);
	CHECK(do_login(a, &lw, "ivy", "pw")->result == 0 && !lw.login.created);
	/* no_create: an unknown name is refused with the bound to spare (a
	 * second has passed). */
	memset(&lw, 0, sizeof lw);
	CHECK(sem_init(&lw.done, 0, 0) == 0);
	snprintf(lw.login.name, sizeof lw.login.name, "lou");
	memcpy(lw.login.password, "pw", 2);
	lw.login.password_len = 2;
	lw.login.no_create = true;
	lw.login.done = login_signal;
	CHECK(dbp_auth_submit(a, &lw.login) == 0);
	CHECK(wait_login(&lw)->result == -EDQUOT);
	dbp_auth_stop(a);
	dbp_writer_stop(wr, NULL);
	dbp_store_close(st);
}

static void wrong_password(void)
{
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_auth *a;
	struct login_wait lw;
	struct dbp_login *l;
	uint64_t id;
	char hash[DBP_PWHASH_MAX];
	struct dbp_player p;

	temp_db();
	start_auth(&st, &wr, &a);
	l = do_login(a, &lw, "gina", "correct horse");
	CHECK(l->result == 0 && l->created && l->player.id > 0);
	CHECK(strcmp(l->player.name, "gina") == 0);
	id = l->player.id;
	l = do_login(a, &lw, "gina", "wrong horse");
	CHECK(l->result == -EACCES);
	l = do_login(a, &lw, "gina", "correct horse");
	CHECK(l->result == 0 && !l->created && l->player.id == id);
	/* Passwords are wiped from the request once it is answered. */
	CHECK(l->password[0] == 0 && l->password[1] == 0);
	dbp_auth_stop(a);
	dbp_writer_stop(wr, NULL);

	/* Stored as a real hash, never in clear. */
	CHECK(dbp_store_find_by_name(st, "gina", &p, hash) == 0);
	CHECK(strncmp(hash, "$argon2id$", 10) == 0 && strstr(hash, "horse") == NULL);
	dbp_store_close(st);
	remove_temp_db();
}

/* Two first logins of one name at once: one creates, both end logged in. */
static void create_race(void)
{
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_auth *a;
	struct login_wait one, two;

	temp_db();
	start_auth(&st, &wr, &a);
	submit_login(a, &one, "hana", "pw");
	submit_login(a, &two, "hana", "pw");
	sem_wait(&one.done);
	sem_wait(&two.done);
	CHECK(one.login.result == 0 && two.login.result == 0);
	CHECK(one.login.created != two.login.created);
	CHECK(one.login.player.id == two.login.player.id);
	dbp_auth_stop(a);
	dbp_writer_stop(wr, NULL);
	dbp_store_close(st);
	remove_temp_db();
}

/* Stopping the workers answers every queued login: done or refused. */
static void stop_drains(void)
{
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_auth *a;
	struct login_wait lw[4];

	temp_db();
	start_auth(&st, &wr, &a);
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof name, "p%d", i);
		submit_login(a, &lw[i], name, "pw");
	}
	dbp_auth_stop(a);
	for (int i = 0; i < 4; i++) {
		int result = lw[i].login.result;

		CHECK(sem_trywait(&lw[i].done) == 0); /* already answered */
		CHECK((result == 0 && lw[i].login.created) || result == -ESHUTDOWN);
	}
	dbp_writer_stop(wr, NULL);
	dbp_store_close(st);
	remove_temp_db();
}

/* ---- leases ------------------------------------------------------------- */

static const struct dbp_lease owner_a = { .owner = 7, .shard = 1, .lease_ms = 1000 };
static const struct dbp_lease owner_b = { .owner = 9, .shard = 2, .lease_ms = 1000 };

/* Taken when free, expired or one's own (same epoch); held by another
 * live owner: DBP_LEASE_HELD with the holder, nothing changed; a new owner
 * means a new epoch, a release keeps it. */
static void lease_take(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "lana", "hash", NULL, 1, &p) == 0);
	CHECK(p.lease_epoch == 0 && p.lease_owner == 0);
	CHECK(dbp_store_save_position(st, p.id, 3, 1.5f, 2.5f, 0, false, 2) == 0);
	CHECK(dbp_store_take_lease(st, p.id, &owner_a, 10000, &q) == 0);
	CHECK(q.id == p.id && q.zone == 3 && q.x == 1.5f && strcmp(q.name, "lana") == 0);
	CHECK(q.lease_epoch == 1 && q.lease_owner == 7 && q.lease_shard == 1);
	CHECK(q.lease_expires == 11000);
	/* Its own: renewed, same epoch. */
	CHECK(dbp_store_take_lease(st, p.id, &owner_a, 10500, &q) == 0);
	CHECK(q.lease_epoch == 1 && q.lease_expires == 11500);
	/* Another owner while it lives: held, nothing changed. */
	CHECK(dbp_store_take_lease(st, p.id, &owner_b, 11499, &q) == DBP_LEASE_HELD);
	CHECK(q.lease_shard == 1 && q.lease_owner == 7 && q.lease_epoch == 1 && q.zone == 3);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.lease_owner == 7 && q.lease_epoch == 1 && q.lease_expires == 11500);
	/* Expired (expires <= now): taken, next epoch. */
	CHECK(dbp_store_take_lease(st, p.id, &owner_b, 11500, &q) == 0);
	CHECK(q.lease_epoch == 2 && q.lease_owner == 9 && q.lease_shard == 2);
	CHECK(q.lease_expires == 12500);
	/* Released: free now, epoch kept; the next take is a new epoch even
	 * for the owner that released it. */
	CHECK(dbp_store_save_position(st, p.id, 4, 0, 0, 2, true, 11600) == 0);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.lease_owner == 0 && q.lease_expires == 0 && q.lease_epoch == 2 && q.zone == 4);
	CHECK(dbp_store_take_lease(st, p.id, &owner_b, 11700, &q) == 0);
	CHECK(q.lease_epoch == 3 && q.lease_owner == 9);
	CHECK(dbp_store_take_lease(st, p.id + 1, &owner_a, 11700, &q) == -ENOENT);
	/* A new account made holding the lease starts at epoch 1. */
	CHECK(dbp_store_create_player(st, "mona", "hash", &owner_a, 20000, &p) == 0);
	CHECK(p.lease_epoch == 1 && p.lease_owner == 7 && p.lease_shard == 1);
	CHECK(p.lease_expires == 21000);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.lease_epoch == 1 && q.lease_owner == 7 && q.lease_expires == 21000);
	CHECK(dbp_store_take_lease(st, p.id, &owner_b, 20999, &q) == DBP_LEASE_HELD);
	CHECK(q.lease_shard == 1);
	dbp_store_close(st);
	remove_temp_db();
}

/* Saves and AddGolds with another epoch are refused and change nothing;
 * the fence comes before the op_id duplicate rule; epoch 0 is no fence. */
static void lease_fence(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t total = 0, op = 3ull << 32;
	bool dup;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "nina", "hash", &owner_a, 1000, &p) == 0);
	CHECK(dbp_store_save_position(st, p.id, 2, 1, 1, 1, false, 1100) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 10, op | 1, 1, 1100, &total, &dup) == 0);
	CHECK(total == 10 && !dup);
	/* The next owner takes over (A's lease expired). */
	CHECK(dbp_store_take_lease(st, p.id, &owner_b, 5000, &q) == 0 && q.lease_epoch == 2);
	CHECK(dbp_store_save_position(st, p.id, 9, 9, 9, 1, false, 5100) == DBP_FENCED);
	CHECK(dbp_store_save_position(st, p.id, 9, 9, 9, 1, true, 5100) == DBP_FENCED);
	/* Fenced, not "duplicate", even for an op_id applied before. */
	dup = true;
	CHECK(dbp_store_add_gold(st, p.id, 10, op | 1, 1, 5100, &total, &dup) == DBP_FENCED);
	CHECK(!dup);
	CHECK(dbp_store_add_gold(st, p.id, 10, op | 2, 1, 5100, &total, &dup) == DBP_FENCED);
	CHECK(dbp_store_add_gold(st, p.id, 10, op | 2, 3, 5100, &total, &dup) == DBP_FENCED);
	CHECK(dbp_store_add_gold(st, p.id, 10, op | 2, (uint64_t)INT64_MAX + 1, 5100, &total,
				 &dup) == DBP_FENCED);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.zone == 2 && q.gold == 10 && q.last_op_id == (op | 1) && q.updated_at == 1100);
	CHECK(q.lease_owner == 9 && q.lease_epoch == 2);
	/* The holder's writes go through; epoch 0 (tools) too. */
	CHECK(dbp_store_add_gold(st, p.id, 5, op | 2, 2, 5200, &total, &dup) == 0 && total == 15);
	CHECK(dbp_store_add_gold(st, p.id, 5, op | 2, 2, 5200, &total, &dup) == 0 && dup);
	CHECK(dbp_store_add_gold(st, p.id, 1, 0, 0, 5200, &total, &dup) == 0 && total == 16);
	CHECK(dbp_store_save_position(st, p.id, 5, 0, 0, 0, false, 5300) == 0);
	CHECK(dbp_store_save_position(st, p.id, 6, 0, 0, 2, true, 5400) == 0);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.zone == 6 && q.lease_owner == 0 && q.lease_expires == 0 && q.lease_epoch == 2);
	/* A missing player is still "no such player". */
	CHECK(dbp_store_save_position(st, p.id + 1, 1, 0, 0, 2, false, 1) == -ENOENT);
	CHECK(dbp_store_add_gold(st, p.id + 1, 1, 0, 2, 1, &total, &dup) == -ENOENT);
	dbp_store_close(st);
	remove_temp_db();
}

/* A renewal extends the owner's leases at their epochs, and answers the
 * rest lost without touching them. */
static void lease_renew(void)
{
	struct dbp_store *st;
	struct dbp_player p[5], q;
	uint64_t ids[6], epochs[6], lost[6];
	size_t nlost = 99;

	temp_db();
	st = open_writer();
	for (int i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof name, "r%d", i);
		CHECK(dbp_store_create_player(st, name, "hash", &owner_a, 1000, &p[i]) == 0);
		ids[i] = p[i].id;
		epochs[i] = 1;
	}
	/* r1: asked at another epoch; r2: taken by B; r3: released; r4: A's,
	 * expired but nobody took it: still A's. */
	epochs[1] = 2;
	CHECK(dbp_store_take_lease(st, p[2].id, &owner_b, 3000, &q) == 0);
	CHECK(dbp_store_save_position(st, p[3].id, 1, 0, 0, 1, true, 1500) == 0);
	ids[5] = p[4].id + 100; /* no such player */
	epochs[5] = 1;
	CHECK(dbp_store_renew_leases(st, 7, 5000, ids, epochs, 6, 4000, lost, &nlost) == 0);
	CHECK(nlost == 4);
	CHECK(lost[0] == p[1].id && lost[1] == p[2].id && lost[2] == p[3].id && lost[3] == ids[5]);
	CHECK(dbp_store_find_by_id(st, p[0].id, &q) == 0 && q.lease_expires == 9000);
	CHECK(q.lease_epoch == 1 && q.lease_owner == 7);
	CHECK(dbp_store_find_by_id(st, p[4].id, &q) == 0 && q.lease_expires == 9000);
	CHECK(dbp_store_find_by_id(st, p[1].id, &q) == 0 && q.lease_expires == 2000);
	CHECK(dbp_store_find_by_id(st, p[2].id, &q) == 0 && q.lease_owner == 9);
	CHECK(q.lease_expires == 4000 && q.lease_epoch == 2);
	CHECK(dbp_store_find_by_id(st, p[3].id, &q) == 0 && q.lease_owner == 0);
	CHECK(q.lease_expires == 0);
	/* Another owner renews nothing of A's. */
	CHECK(dbp_store_renew_leases(st, 9, 5000, ids, epochs, 1, 4000, lost, &nlost) == 0);
	CHECK(nlost == 1 && lost[0] == p[0].id);
	CHECK(dbp_store_renew_leases(st, 7, 5000, ids, epochs, 0, 4000, lost, &nlost) == 0);
	CHECK(nlost == 0);
	dbp_store_close(st);
	remove_temp_db();
}

/* An adopt moves the lease from its epoch to the next, with the new
 * position, whoever held it; a second adopt from the same epoch, and the
 * old holder's writes, are fenced. */
static void lease_adopt(void)
{
	static const struct dbp_lease owner_c = { .owner = 11, .shard = 3, .lease_ms = 2000 };
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t total = 0;
	bool dup;

	temp_db();
	st = open_writer();
	CHECK(dbp_store_create_player(st, "olga", "hash", &owner_a, 1000, &p) == 0);
	CHECK(dbp_store_add_gold(st, p.id, 42, 0, 1, 1000, &total, &dup) == 0);
	CHECK(dbp_store_adopt(st, p.id, 1, &owner_b, 7, -4.5f, 8.25f, 1200, &q) == 0);
	CHECK(q.id == p.id && strcmp(q.name, "olga") == 0 && q.gold == 42);
	CHECK(q.zone == 7 && q.x == -4.5f && q.y == 8.25f && q.updated_at == 1200);
	CHECK(q.lease_epoch == 2 && q.lease_owner == 9 && q.lease_shard == 2);
	CHECK(q.lease_expires == 2200);
	CHECK(dbp_store_adopt(st, p.id, 1, &owner_c, 1, 0, 0, 1300, &q) == DBP_FENCED);
	CHECK(dbp_store_save_position(st, p.id, 1, 0, 0, 1, true, 1300) == DBP_FENCED);
	CHECK(dbp_store_add_gold(st, p.id, 1, 0, 1, 1300, &total, &dup) == DBP_FENCED);
	CHECK(dbp_store_find_by_id(st, p.id, &q) == 0);
	CHECK(q.zone == 7 && q.gold == 42 && q.lease_epoch == 2 && q.lease_owner == 9);
	/* From the current epoch it moves on again, live holder or not. */
	CHECK(dbp_store_adopt(st, p.id, 2, &owner_c, 3, 1, 1, 1400, &q) == 0);
	CHECK(q.lease_epoch == 3 && q.lease_owner == 11 && q.lease_shard == 3);
	CHECK(q.lease_expires == 3400);
	CHECK(dbp_store_adopt(st, p.id + 1, 3, &owner_c, 3, 1, 1, 1400, &q) == -ENOENT);
	CHECK(dbp_store_adopt(st, p.id, (uint64_t)INT64_MAX, &owner_c, 3, 1, 1, 1400, &q) ==
	      DBP_FENCED);
	dbp_store_close(st);
	remove_temp_db();
}

/* The schema of version 4 (before leases) with one player who has gold
 * and an applied op_id: SQLite as version 4 wrote it; PostgreSQL from the
 * embedded schema file's step 4 (store_postgres.c). */
extern const unsigned char dbp__schema_postgres[];

static void make_v4_database(void)
{
	static const char row[] =
		"INSERT INTO players (name, pwhash, zone, x, y, gold, created_at, updated_at,"
		" last_op_id) VALUES ('old', 'h1', 2, 1.5, 2.5, 50, 1, 1, 21474836481);"
		"UPDATE counters SET value = 5 WHERE name = 'op_epoch';";
	char sql[8192];

	if (pg_dsn) {
		const char *text = (const char *)dbp__schema_postgres;
		const char *from = strstr(text, "\n-- migration 4\n");
		const char *to = from ? strstr(from + 1, "\n-- migration 5\n") : NULL;

		CHECK(from && to && (size_t)(to - from) < sizeof sql - sizeof row - 64);
		snprintf(sql, sizeof sql, "%.*s\nINSERT INTO ringgate_schema (version) VALUES (4);%s",
			 (int)(to - from), from, row);
	} else {
		snprintf(sql, sizeof sql,
			 "CREATE TABLE players (id INTEGER PRIMARY KEY AUTOINCREMENT,"
			 " name TEXT NOT NULL UNIQUE, pwhash TEXT NOT NULL, zone INTEGER NOT NULL,"
			 " x REAL NOT NULL, y REAL NOT NULL,"
			 " gold INTEGER NOT NULL DEFAULT 0 CHECK (gold >= 0),"
			 " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL DEFAULT 0,"
			 " last_op_id INTEGER NOT NULL DEFAULT 0);"
			 "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
			 "INSERT INTO counters VALUES ('op_epoch', 0);%sPRAGMA user_version = 4;",
			 row);
	}
	raw_sql(sql);
}

/* A version 4 database gains the lease columns, all free: its players can
 * be leased, and AddGold keeps its duplicate rule under the fence (on
 * PostgreSQL ringgate_add_gold() is replaced). */
static void migrate_from_v4(void)
{
	struct dbp_store *st;
	struct dbp_player p, q;
	uint64_t epoch = 0, total = 0, key = 5ull << 32 | 1;
	bool dup;

	temp_db();
	make_v4_database();
	st = open_writer();
	CHECK(dbp_store_user_version(st) == DBP_STORE_SCHEMA_VERSION);
	CHECK(dbp_store_find_by_name(st, "old", &p, NULL) == 0);
	CHECK(p.gold == 50 && p.zone == 2 && p.last_op_id == key);
	CHECK(p.lease_epoch == 0 && p.lease_owner == 0 && p.lease_shard == 0);
	CHECK(p.lease_expires == 0);
	CHECK(dbp_store_new_epoch(st, &epoch) == 0 && epoch == 6);
	CHECK(dbp_store_take_lease(st, p.id, &owner_a, 1000, &q) == 0 && q.lease_epoch == 1);
	CHECK(dbp_store_add_gold(st, p.id, 3, key, 1, 2, &total, &dup) == 0 && dup && total == 50);
	CHECK(dbp_store_add_gold(st, p.id, 3, key, 2, 2, &total, &dup) == DBP_FENCED);
	CHECK(dbp_store_add_gold(st, p.id, 3, epoch << 32 | 1, 1, 2, &total, &dup) == 0);
	CHECK(total == 53 && !dup);
	dbp_store_close(st);
	remove_temp_db();
}

struct racer {
	struct dbp_store *st;
	uint64_t player_id;
	const struct dbp_lease *lease;
	int64_t now_ms;
	sem_t *go;
	int result;
	struct dbp_player row;
};

static void *race_take(void *arg)
{
	struct racer *r = arg;

	if (r->go)
		sem_wait(r->go);
	r->result = dbp_store_take_lease(r->st, r->player_id, r->lease, r->now_ms, &r->row);
	return NULL;
}

/*
 * Two write connections take one lease at once (two dbproxies on one
 * PostgreSQL): exactly one gets it, the other is told who holds it. First
 * in a fixed order (the second waits on the first's open transaction, and
 * must see its commit, not the row as it was), then racing freely.
 */
static void lease_race(void)
{
	struct dbp_store *one, *two;
	struct dbp_player p, q;
	struct racer r[2];
	pthread_t thread[2];
	sem_t go;

	temp_db();
	one = open_writer();
	two = open_writer();
	CHECK(dbp_store_create_player(one, "pia", "hash", NULL, 1, &p) == 0);
	CHECK(dbp_store_begin(one) == 0);
	CHECK(dbp_store_take_lease(one, p.id, &owner_a, 1000, &q) == 0 && q.lease_epoch == 1);
	r[1] = (struct racer){ .st = two, .player_id = p.id, .lease = &owner_b, .now_ms = 1000 };
	CHECK(pthread_create(&thread[1], NULL, race_take, &r[1]) == 0);
	nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL); /* let it block */
	CHECK(dbp_store_commit(one) == 0);
	CHECK(pthread_join(thread[1], NULL) == 0);
	CHECK(r[1].result == DBP_LEASE_HELD && r[1].row.lease_shard == 1);
	CHECK(r[1].row.lease_owner == 7 && r[1].row.lease_epoch == 1);

	CHECK(sem_init(&go, 0, 0) == 0);
	for (int round = 0; round < 20; round++) {
		int64_t now = 10000 + round * 2000; /* every earlier lease expired */
		int winners = 0;

		for (int i = 0; i < 2; i++) {
			r[i] = (struct racer){ .st = i ? two : one, .player_id = p.id,
					       .lease = i ? &owner_b : &owner_a, .now_ms = now,
					       .go = &go };
			CHECK(pthread_create(&thread[i], NULL, race_take, &r[i]) == 0);
		}
		sem_post(&go);
		sem_post(&go);
		for (int i = 0; i < 2; i++)
			CHECK(pthread_join(thread[i], NULL) == 0);
		for (int i = 0; i < 2; i++) {
			CHECK(r[i].result == 0 || r[i].result == DBP_LEASE_HELD);
			winners += r[i].result == 0;
		}
		CHECK(winners == 1);
		CHECK(dbp_store_find_by_id(one, p.id, &q) == 0);
		CHECK(q.lease_owner == (r[0].result == 0 ? 7u : 9u));
		/* The loser saw the winner's row. */
		CHECK(r[r[0].result == 0].row.lease_owner == q.lease_owner);
		CHECK(r[r[0].result == 0].row.lease_epoch == q.lease_epoch);
	}
	sem_destroy(&go);
	dbp_store_close(two);
	dbp_store_close(one);
	remove_temp_db();
}

/* A login with an owner takes the lease after the password check (or in
 * its create), answers DBP_LEASE_HELD with the holder's row while another
 * owner holds it, and takes nothing on a wrong password. */
static void lease_login(void)
{
	struct dbp_store *st;
	struct dbp_writer *wr;
	struct dbp_writer_stats stats;
	struct dbp_auth *a;
	struct login_wait lw;
	struct dbp_player q;
	uint64_t id;

	temp_db();
	start_auth(&st, &wr, &a);
	submit_login_leased(a, &lw, "quin", "pw", &owner_a);
	CHECK(wait_login(&lw)->result == 0 && lw.login.created);
	CHECK(lw.login.player.lease_epoch == 1 && lw.login.player.lease_owner == 7);
	id = lw.login.player.id;
	submit_login_leased(a, &lw, "quin", "pw", &owner_b);
	CHECK(wait_login(&lw)->result == DBP_LEASE_HELD && !lw.login.created);
	CHECK(lw.login.player.id == id && lw.login.player.lease_shard == 1);
	submit_login_leased(a, &lw, "quin", "bad", &owner_b);
	CHECK(wait_login(&lw)->result == -EACCES);
	/* Its own owner again: the same epoch. */
	submit_login_leased(a, &lw, "quin", "pw", &owner_a);
	CHECK(wait_login(&lw)->result == 0 && lw.login.player.lease_epoch == 1);
	/* No owner: no lease taken or asked (tools). */
	CHECK(do_login(a, &lw, "quin", "pw")->result == 0);
	dbp_auth_stop(a);
	dbp_writer_stop(wr, &stats);
	CHECK(stats.leases_taken == 2 && stats.leases_held == 1);
	CHECK(dbp_store_find_by_id(st, id, &q) == 0 && q.lease_owner == 7 && q.lease_epoch == 1);
	dbp_store_close(st);
	remove_temp_db();
}

/* ---- runner ------------------------------------------------------------- */

static const struct test_case cases[] = {
	{ "migrate_empty", migrate_empty },
	{ "migrate_from_v1", migrate_from_v1 },
	{ "migrate_from_v2", migrate_from_v2 },
	{ "refuse_newer_schema", refuse_newer_schema },
	{ "refuse_without_wal", refuse_without_wal },
	{ "reader_needs_migrated_file", reader_needs_migrated_file },
	{ "gold_and_position", gold_and_position },
	{ "batch_own_results", batch_own_results },
	{ "add_gold_order", add_gold_order },
	{ "add_gold_once", add_gold_once },
	{ "add_gold_epochs", add_gold_epochs },
	{ "new_epoch", new_epoch },
	{ "migrate_from_v3", migrate_from_v3 },
	{ "writer_pool", writer_pool },
	{ "writer_busy", writer_busy },
	{ "writer_deadline", writer_deadline },
	{ "wrong_password", wrong_password },
	{ "password_with_nul", password_with_nul },
	{ "login_throttles", login_throttles },
	{ "create_race", create_race },
	{ "stop_drains", stop_drains },
	{ "lease_take", lease_take },
	{ "lease_fence", lease_fence },
	{ "lease_renew", lease_renew },
	{ "lease_adopt", lease_adopt },
	{ "lease_race", lease_race },
	{ "lease_login", lease_login },
	{ "migrate_from_v4", migrate_from_v4 },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	pg_dsn = getenv("RINGGATE_TEST_PG_DSN");
	rg_log_init("test_store", RG_LOG_WARN);
	return test_main(cases, argc, argv);
}
