/*
 * store_backend.h: the contract between store.c (the API of store.h) and
 * each database backend (store_sqlite.c, store_postgres.c), like libnet's
 * engine table. Internal to ringgate_store.
 *
 * A backend keeps its connection in a struct of its own whose first member
 * is struct dbp_store (so store.c reaches the table and the backend gets
 * its struct back with RG_CONTAINER_OF). store.c checks arguments that are
 * the same for every backend; a hook may assume:
 *   - one thread at a time per connection (store.h);
 *   - ids, op_ids, epochs and owners passed to apply() are <= INT64_MAX
 *     (store.c answers bigger ones itself: no such player / -ERANGE /
 *     fenced), except renew's lists (a bigger one matches no row: lost);
 *     apply_batch() skips the writes dbp__store_answer_out_of_range()
 *     answers;
 *   - a guarded write that changed nothing is explained by
 *     dbp__store_explain_miss() from the row as it is now, so the rules
 *     (fence first, then duplicate, ...) are written once;
 *   - names and hashes fit struct dbp_write's fields.
 * and must:
 *   - return 0 or a negative errno, logging database failures in the
 *     database's own words (never a password or a DSN's secret);
 *   - give the same outcome for the same calls as every other backend:
 *     the store tests (dbproxy/tests/test_store.c) run on each.
 */
#ifndef DBP_STORE_BACKEND_H
#define DBP_STORE_BACKEND_H

#include "store.h"

/* The statements every backend prepares once per connection, each in its
 * own SQL dialect, and the columns (in this order) a player row is read
 * with; find by name adds pwhash after them. */
enum dbp__stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_FIND_BY_NAME,
	STMT_FIND_BY_ID,
	STMT_INSERT,
	STMT_ADD_GOLD,
	STMT_SAVE_POSITION,
	STMT_NEW_EPOCH,
	STMT_TAKE_LEASE,
	STMT_RENEW_LEASES,
	STMT_ADOPT,
	STMT_COUNT
};

#define PLAYER_COLUMNS                                                                   \
	"id, name, zone, x, y, gold, created_at, updated_at, last_op_id, lease_epoch,"   \
	" lease_owner, lease_shard, lease_expires"
/* How many they are: find by name reads pwhash at this index. */
#define PLAYER_NCOLUMNS 13

struct dbp_store_ops {
	const char *name;

	/* Connect, set the durability level, migrate (writer) or check the
	 * version (reader), prepare statements (store.h dbp_store_open). */
	int (*open)(const struct dbp_store_config *cfg, struct dbp_store **out);
	void (*close)(struct dbp_store *st);
	int (*schema_version)(struct dbp_store *st);

	/* Explicit transactions (store.h). */
	int (*begin)(struct dbp_store *st);
	int (*commit)(struct dbp_store *st);
	void (*rollback)(struct dbp_store *st);
	bool (*in_transaction)(struct dbp_store *st);

	/* Look a player up by name (name != NULL; pwhash may be NULL) or by
	 * id (name == NULL). 0, -ENOENT or a database failure. */
	int (*find)(struct dbp_store *st, const char *name, uint64_t id,
		    struct dbp_player *out, char *pwhash);

	/* Apply one write inside the current transaction (autocommit when
	 * none is open): the write's own result (0, -ENOENT, -EEXIST,
	 * -ERANGE) with its OUT fields, or a database failure. */
	int (*apply)(struct dbp_store *st, struct dbp_write *w, int64_t now_ms);

	/* store.h dbp_store_apply_batch: every write's result set on 0. */
	int (*apply_batch)(struct dbp_store *st, struct dbp_write *const *writes, size_t n,
			   int64_t now_ms);

	/* store.h dbp_store_up / dbp_store_reconnect. */
	bool (*up)(struct dbp_store *st);
	int (*reconnect)(struct dbp_store *st);
};

struct dbp_store {
	const struct dbp_store_ops *ops;
};

extern const struct dbp_store_ops dbp__store_sqlite;
extern const struct dbp_store_ops dbp__store_postgres;

/* True for the results that belong to one write (the batch goes on);
 * anything else is a database failure that dooms the whole batch. */
bool dbp__store_is_own_result(int result);

/* Fill *out as a player created now: id, name, the spawn point, 0 gold. */
void dbp__store_new_player(struct dbp_player *out, uint64_t id, const char *name,
			   int64_t now_ms);

/* Set *out's lease fields to a lease just taken at epoch, now_ms. */
void dbp__store_new_lease(struct dbp_player *out, uint64_t epoch, const struct dbp_lease *lease,
			  int64_t now_ms);

/* Answer a write whose ids no database can hold (past the signed 64-bit
 * range of both backends): sets w->result and returns true. Backends call
 * it for each write of a batch and skip the answered ones. */
bool dbp__store_answer_out_of_range(struct dbp_write *w);

/*
 * A guarded write (ADD_GOLD, SAVE_POSITION, TAKE_LEASE, ADOPT) matched no
 * row: tell why from the player's row as it is now (NULL: no such player)
 * and return the write's result, setting its OUT fields (a duplicate's
 * total, a held lease's row). Read the row after the guarded statement in
 * the same transaction (PostgreSQL: a statement of its own, so that it sees
 * a concurrent writer's commit).
 */
int dbp__store_explain_miss(struct dbp_write *w, const struct dbp_player *now);

#endif /* DBP_STORE_BACKEND_H */
