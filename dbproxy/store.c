/*
 * store.c: the store API of store.h over the backend table of
 * store_backend.h, and the rules that are the same for every backend
 * (argument ranges, the op_id duplicate rule, the words of the options).
 */
#include "store_backend.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct dbp_store_ops *const backends[] = {
	[DBP_STORE_SQLITE] = &dbp__store_sqlite,
	[DBP_STORE_POSTGRES] = &dbp__store_postgres,
};

int dbp_store_sync_parse(const char *text, enum dbp_store_sync *out)
{
	if (strcmp(text, "full") == 0)
		*out = DBP_STORE_SYNC_FULL;
	else if (strcmp(text, "normal") == 0)
		*out = DBP_STORE_SYNC_NORMAL;
	else
		return -EINVAL;
	return 0;
}

int dbp_store_backend_parse(const char *text, enum dbp_store_backend *out)
{
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
		if (strcmp(text, backends[i]->name) == 0) {
			*out = (enum dbp_store_backend)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *dbp_store_backend_name(enum dbp_store_backend backend)
{
	return (size_t)backend < sizeof backends / sizeof backends[0] ? backends[backend]->name
								       : "?";
}

bool dbp__store_is_own_result(int result)
{
	return result == 0 || result == -ENOENT || result == -EEXIST || result == -ERANGE ||
	       result == -ETIMEDOUT;
}

int dbp_store_open(const struct dbp_store_config *cfg, struct dbp_store **out)
{
	if ((size_t)cfg->backend >= sizeof backends / sizeof backends[0])
		return -EINVAL;
	return backends[cfg->backend]->open(cfg, out);
}

void dbp_store_close(struct dbp_store *st)
{
	if (st)
		st->ops->close(st);
}

int dbp_store_user_version(struct dbp_store *st)
{
	return st->ops->schema_version(st);
}

int dbp_store_begin(struct dbp_store *st)
{
	return st->ops->begin(st);
}

int dbp_store_commit(struct dbp_store *st)
{
	return st->ops->commit(st);
}

void dbp_store_rollback(struct dbp_store *st)
{
	st->ops->rollback(st);
}

bool dbp_store_in_transaction(struct dbp_store *st)
{
	return st->ops->in_transaction(st);
}

bool dbp_store_up(struct dbp_store *st)
{
	return st->ops->up(st);
}

int dbp_store_reconnect(struct dbp_store *st)
{
	return st->ops->reconnect(st);
}

void dbp__store_new_player(struct dbp_player *out, uint64_t id, const char *name,
			   int64_t now_ms)
{
	memset(out, 0, sizeof *out);
	out->id = id;
	snprintf(out->name, sizeof out->name, "%s", name);
	out->zone = DBP_SPAWN_ZONE;
	out->x = DBP_SPAWN_X;
	out->y = DBP_SPAWN_Y;
	out->created_at = now_ms;
	out->updated_at = now_ms;
}

bool dbp__store_answer_out_of_range(struct dbp_write *w)
{
	if (w->kind == DBP_WRITE_ADD_GOLD && w->add_gold.player_id > INT64_MAX)
		w->result = -ENOENT;
	else if (w->kind == DBP_WRITE_ADD_GOLD && w->add_gold.op_id > INT64_MAX)
		w->result = -ERANGE;
	else if (w->kind == DBP_WRITE_SAVE_POSITION && w->save.player_id > INT64_MAX)
		w->result = -ENOENT;
	else
		return false;
	return true;
}

int dbp_store_apply_batch(struct dbp_store *st, struct dbp_write *const *writes, size_t n,
			  int64_t now_ms)
{
	return n ? st->ops->apply_batch(st, writes, n, now_ms) : 0;
}

/* Apply one write through the backend (or answer it here). */
static int apply_one(struct dbp_store *st, struct dbp_write *w, int64_t now_ms)
{
	if (dbp__store_answer_out_of_range(w))
		return w->result;
	return st->ops->apply(st, w, now_ms);
}

int dbp_store_find_by_name(struct dbp_store *st, const char *name, struct dbp_player *out,
			  char *pwhash)
{
	return st->ops->find(st, name, 0, out, pwhash);
}

int dbp_store_find_by_id(struct dbp_store *st, uint64_t id, struct dbp_player *out)
{
	if (id > INT64_MAX)
		return -ENOENT;
	return st->ops->find(st, NULL, id, out, NULL);
}

int dbp_store_create_player(struct dbp_store *st, const char *name, const char *pwhash,
			   int64_t now_ms, struct dbp_player *out)
{
	struct dbp_write w = { .kind = DBP_WRITE_CREATE_PLAYER };
	int err;

	if (strlen(name) > DBP_NAME_MAX || strlen(pwhash) >= DBP_PWHASH_MAX)
		return -EINVAL;
	snprintf(w.create.name, sizeof w.create.name, "%s", name);
	snprintf(w.create.pwhash, sizeof w.create.pwhash, "%s", pwhash);
	err = apply_one(st, &w, now_ms);
	if (err == 0)
		*out = w.player;
	return err;
}

int dbp_store_add_gold(struct dbp_store *st, uint64_t player_id, uint32_t amount,
		      uint64_t op_id, int64_t now_ms, uint64_t *total, bool *duplicate)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_ADD_GOLD,
		.add_gold = { .player_id = player_id, .amount = amount, .op_id = op_id },
	};
	int err = apply_one(st, &w, now_ms);

	*duplicate = w.duplicate;
	if (err == 0)
		*total = w.gold;
	return err;
}

bool dbp_store_op_is_duplicate(uint64_t op_id, uint64_t last_op_id)
{
	return op_id != 0 && op_id >> 32 == last_op_id >> 32 && op_id <= last_op_id;
}

int dbp_store_new_epoch(struct dbp_store *st, uint64_t *epoch)
{
	struct dbp_write w = { .kind = DBP_WRITE_NEW_EPOCH };
	int err = apply_one(st, &w, 0);

	if (err == 0)
		*epoch = w.epoch;
	return err;
}

int dbp_store_save_position(struct dbp_store *st, uint64_t player_id, uint32_t zone,
			   float x, float y, int64_t now_ms)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_SAVE_POSITION,
		.save = { .player_id = player_id, .zone = zone, .x = x, .y = y },
	};

	return apply_one(st, &w, now_ms);
}
