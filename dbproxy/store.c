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
	       result == -ETIMEDOUT || result == DBP_FENCED || result == DBP_LEASE_HELD;
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

void dbp__store_new_lease(struct dbp_player *out, uint64_t epoch, const struct dbp_lease *lease,
			  int64_t now_ms)
{
	out->lease_epoch = epoch;
	out->lease_owner = lease->owner;
	out->lease_shard = lease->shard;
	out->lease_expires = now_ms + lease->lease_ms;
}

/* An owner no database can hold (owners are DbNewEpoch epochs, far
 * below; dbproxy refuses bigger ones before they get here). */
static bool lease_out_of_range(const struct dbp_lease *lease)
{
	return lease->owner > INT64_MAX;
}

bool dbp__store_answer_out_of_range(struct dbp_write *w)
{
	switch (w->kind) {
	case DBP_WRITE_ADD_GOLD:
		if (w->add_gold.player_id > INT64_MAX)
			w->result = -ENOENT;
		else if (w->add_gold.lease_epoch > INT64_MAX)
			w->result = DBP_FENCED; /* no row holds such an epoch */
		else if (w->add_gold.op_id > INT64_MAX)
			w->result = -ERANGE;
		else
			return false;
		return true;
	case DBP_WRITE_SAVE_POSITION:
		if (w->save.player_id > INT64_MAX)
			w->result = -ENOENT;
		else if (w->save.lease_epoch > INT64_MAX)
			w->result = DBP_FENCED;
		else
			return false;
		return true;
	case DBP_WRITE_TAKE_LEASE:
		if (w->take.player_id > INT64_MAX)
			w->result = -ENOENT;
		else if (lease_out_of_range(&w->take.lease))
			w->result = -ERANGE;
		else
			return false;
		return true;
	case DBP_WRITE_ADOPT:
		if (w->adopt.player_id > INT64_MAX)
			w->result = -ENOENT;
		else if (w->adopt.from_epoch >= INT64_MAX)
			w->result = DBP_FENCED; /* no next epoch: none can move on */
		else if (lease_out_of_range(&w->adopt.lease))
			w->result = -ERANGE;
		else
			return false;
		return true;
	case DBP_WRITE_CREATE_PLAYER:
		if (!lease_out_of_range(&w->create.lease))
			return false;
		w->result = -ERANGE;
		return true;
	case DBP_WRITE_RENEW_LEASES:
		if (w->renew.owner <= INT64_MAX)
			return false;
		/* No row is held by it: every one is lost. */
		memcpy(w->renew.lost, w->renew.player_ids, w->renew.n * sizeof w->renew.lost[0]);
		w->nlost = w->renew.n;
		w->result = 0;
		return true;
	case DBP_WRITE_NEW_EPOCH:
		break;
	}
	return false;
}

int dbp__store_explain_miss(struct dbp_write *w, const struct dbp_player *now)
{
	if (!now)
		return -ENOENT;
	switch (w->kind) {
	case DBP_WRITE_ADD_GOLD:
		/* The fence first: a fenced write is never called a duplicate. */
		if (w->add_gold.lease_epoch && now->lease_epoch != w->add_gold.lease_epoch)
			return DBP_FENCED;
		if (dbp_store_op_is_duplicate(w->add_gold.op_id, now->last_op_id)) {
			w->gold = now->gold;
			w->duplicate = true;
			return 0;
		}
		return -ERANGE;
	case DBP_WRITE_SAVE_POSITION:
	case DBP_WRITE_ADOPT:
		return DBP_FENCED;
	case DBP_WRITE_TAKE_LEASE:
		w->player = *now;
		return DBP_LEASE_HELD;
	case DBP_WRITE_CREATE_PLAYER:
	case DBP_WRITE_NEW_EPOCH:
	case DBP_WRITE_RENEW_LEASES:
		break;
	}
	return -EINVAL;
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
			   const struct dbp_lease *lease, int64_t now_ms, struct dbp_player *out)
{
	struct dbp_write w = { .kind = DBP_WRITE_CREATE_PLAYER };
	int err;

	if (strlen(name) > DBP_NAME_MAX || strlen(pwhash) >= DBP_PWHASH_MAX)
		return -EINVAL;
	snprintf(w.create.name, sizeof w.create.name, "%s", name);
	snprintf(w.create.pwhash, sizeof w.create.pwhash, "%s", pwhash);
	if (lease)
		w.create.lease = *lease;
	err = apply_one(st, &w, now_ms);
	if (err == 0)
		*out = w.player;
	return err;
}

int dbp_store_add_gold(struct dbp_store *st, uint64_t player_id, uint32_t amount,
		      uint64_t op_id, uint64_t lease_epoch, int64_t now_ms, uint64_t *total,
		      bool *duplicate)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_ADD_GOLD,
		.add_gold = { .player_id = player_id, .amount = amount, .op_id = op_id,
			      .lease_epoch = lease_epoch },
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
			   float x, float y, uint64_t lease_epoch, bool release,
			   int64_t now_ms)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_SAVE_POSITION,
		.save = { .player_id = player_id, .zone = zone, .x = x, .y = y,
			  .lease_epoch = lease_epoch, .release = release },
	};

	return apply_one(st, &w, now_ms);
}

int dbp_store_take_lease(struct dbp_store *st, uint64_t player_id,
			 const struct dbp_lease *lease, int64_t now_ms, struct dbp_player *out)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_TAKE_LEASE,
		.take = { .player_id = player_id, .lease = *lease },
	};
	int err = apply_one(st, &w, now_ms);

	if (err == 0 || err == DBP_LEASE_HELD)
		*out = w.player;
	return err;
}

int dbp_store_renew_leases(struct dbp_store *st, uint64_t owner, uint32_t lease_ms,
			   const uint64_t *player_ids, const uint64_t *epochs, size_t n,
			   int64_t now_ms, uint64_t *lost, size_t *nlost)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_RENEW_LEASES,
		.renew = { .owner = owner, .lease_ms = lease_ms, .n = n,
			   .player_ids = player_ids, .epochs = epochs, .lost = lost },
	};
	int err = n ? apply_one(st, &w, now_ms) : 0;

	*nlost = w.nlost;
	return err;
}

int dbp_store_adopt(struct dbp_store *st, uint64_t player_id, uint64_t from_epoch,
		    const struct dbp_lease *lease, uint32_t zone, float x, float y,
		    int64_t now_ms, struct dbp_player *out)
{
	struct dbp_write w = {
		.kind = DBP_WRITE_ADOPT,
		.adopt = { .player_id = player_id, .from_epoch = from_epoch, .lease = *lease,
			   .zone = zone, .x = x, .y = y },
	};
	int err = apply_one(st, &w, now_ms);

	if (err == 0)
		*out = w.player;
	return err;
}
