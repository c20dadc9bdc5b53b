/*
 * auth.c: the login worker pool (see auth.h).
 *
 * A login's path:
 *   queue -> worker: deadline passed?  -> done(-ETIMEDOUT)
 *            found by name?            -> verify -> done(0 or -EACCES)
 *                 with a lease, verified -> submit the take -> writer
 *                 commits -> write_done -> done(0 or DBP_LEASE_HELD)
 *            else hash, submit create (holding the lease, if asked) ->
 *                 writer commits -> write_done:
 *                 created              -> done(0, created)
 *                 name taken meanwhile -> queue again once (now it is found)
 * Before any of that, dbp_auth_submit refuses a login that would wait past
 * its deadline (-EAGAIN) or whose account is backing off (-EPERM); the
 * worker checks the backoff again (failures may have come in meanwhile)
 * and the creation bound before it hashes.
 * Stopping: logins still queued are answered -ESHUTDOWN without running;
 * a login a worker is running, and its create in the writer, finish.
 * Invariant: dbp_auth_stop() returns only when no write it submitted is
 * still inside the writer (writes_in_flight == 0), because write_done
 * touches the pool.
 */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rg/clock.h"
#include "rg/log.h"
#include "rg/throttle.h"

/* Accounts whose failures are remembered at once (a name is <= 33 bytes). */
#define FAILING_ACCOUNTS_MAX 65536

_Static_assert(crypto_pwhash_STRBYTES <= DBP_PWHASH_MAX, "DBP_PWHASH_MAX too small");

struct auth_worker {
	struct dbp_auth *auth;
	struct dbp_store *store;   /* this worker's read connection */
	pthread_t thread;
	bool started;
};

struct dbp_auth {
	struct dbp_queue queue;
	atomic_bool stopping;     /* set by dbp_auth_stop: refuse what is queued */
	enum dbp_pwhash_profile profile;
	struct dbp_writer *writer;

	pthread_mutex_t lock;     /* guards writes_in_flight and creates */
	pthread_cond_t writes_done;
	unsigned writes_in_flight; /* creates and lease takes in the writer */
	struct rg_bucket creates; /* the creation bound                   */
	unsigned creates_per_sec;
	struct rg_throttle *failing; /* per account: failure backoff      */
	_Atomic uint64_t login_us; /* a login's time, cautiously (note_login_time) */
	atomic_uint running;      /* logins a worker is running now       */

	unsigned nworkers;
	struct auth_worker workers[];
};

int dbp_pwhash_profile_parse(const char *text, enum dbp_pwhash_profile *out)
{
	if (strcmp(text, "interactive") == 0)
		*out = DBP_PWHASH_INTERACTIVE;
	else if (strcmp(text, "min") == 0)
		*out = DBP_PWHASH_MIN;
	else
		return -EINVAL;
	return 0;
}

int dbp_pwhash(enum dbp_pwhash_profile profile, const uint8_t *password, size_t len,
	      char out[DBP_PWHASH_MAX])
{
	unsigned long long ops = profile == DBP_PWHASH_MIN ? crypto_pwhash_OPSLIMIT_MIN
							  : crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = profile == DBP_PWHASH_MIN ? crypto_pwhash_MEMLIMIT_MIN
					      : crypto_pwhash_MEMLIMIT_INTERACTIVE;

	/* The only failure libsodium documents is running out of memory. */
	if (crypto_pwhash_str(out, (const char *)password, len, ops, mem) != 0)
		return -ENOMEM;
	return 0;
}

bool dbp_pwhash_verify(const char *hash, const uint8_t *password, size_t len)
{
	return crypto_pwhash_str_verify(hash, (const char *)password, len) == 0;
}

static void login_finish(struct dbp_login *l, int result)
{
	sodium_memzero(l->password, sizeof l->password);
	l->result = result;
	l->done(l);
}

static void writes_add(struct dbp_auth *a, int delta)
{
	pthread_mutex_lock(&a->lock);
	a->writes_in_flight += (unsigned)delta;
	if (a->writes_in_flight == 0)
		pthread_cond_broadcast(&a->writes_done);
	pthread_mutex_unlock(&a->lock);
}

/* Writer thread: the account's INSERT, or the lease take, has committed
 * (or failed). */
static void write_done(struct dbp_write *w)
{
	struct dbp_login *l = RG_CONTAINER_OF(w, struct dbp_login, write);
	struct dbp_auth *a = l->auth;
	int result = w->result;

	if (w->kind == DBP_WRITE_TAKE_LEASE) {
		if (result == 0 || result == DBP_LEASE_HELD)
			l->player = w->player;
		goto out_finish;
	}
	sodium_memzero(w->create.pwhash, sizeof w->create.pwhash);
	if (result == 0) {
		l->player = w->player;
		l->created = true;
	} else if (result == -EEXIST && !l->retried) {
		/* Another login created the name between our read and our
		 * insert: run again; the read now finds it and verifies. */
		l->retried = true;
		result = dbp_queue_push(&a->queue, &l->node);
		if (result == 0)
			goto out;
	}
out_finish:
	login_finish(l, result);
out:
	writes_add(a, -1);
}

/* Hand the login's write to the writer; write_done finishes the login. */
static int submit_write(struct dbp_auth *a, struct dbp_login *l)
{
	int err;

	l->write.deadline_ms = l->deadline_ms;
	l->write.done = write_done;
	writes_add(a, 1);
	err = dbp_writer_submit(a->writer, &l->write);
	if (err)
		writes_add(a, -1);
	return err;
}

/* Worker thread: an unknown name. Hash and hand the INSERT (holding the
 * lease, if asked: one write) to the writer. */
static int start_create(struct dbp_auth *a, struct dbp_login *l)
{
	struct dbp_write *w = &l->write;
	int err;

	memset(w, 0, sizeof *w);
	w->kind = DBP_WRITE_CREATE_PLAYER;
	memcpy(w->create.name, l->name, sizeof w->create.name);
	w->create.lease = l->lease;
	err = dbp_pwhash(a->profile, l->password, l->password_len, w->create.pwhash);
	if (err)
		return err;
	err = submit_write(a, l);
	if (err)
		sodium_memzero(w->create.pwhash, sizeof w->create.pwhash);
	return err;
}

/* Worker thread: the password was right; take the lease in the writer. */
static int start_take(struct dbp_auth *a, struct dbp_login *l)
{
	struct dbp_write *w = &l->write;

	memset(w, 0, sizeof *w);
	w->kind = DBP_WRITE_TAKE_LEASE;
	w->take.player_id = l->player.id;
	w->take.lease = l->lease;
	return submit_write(a, l);
}

/*
 * Fold the time of one login that hashed into the cautious estimate: a
 * slower login raises it at once, faster ones lower it by an eighth of the
 * difference each. Admission errs on the side of "busy now" rather than
 * "timed out later": hashes slow down together when the cores are shared.
 * Logins refused without a hash are not counted: they would drag the
 * estimate to nothing during a flood, when it matters most.
 */
static void note_login_time(struct dbp_auth *a, uint64_t us)
{
	uint64_t est = atomic_load(&a->login_us);

	atomic_store(&a->login_us, us >= est ? us : est - est / 8 + us / 8);
}

/* What one login is expected to take, in ms, with half again as margin:
 * hashes on shared cores vary by that much from one to the next. */
static uint64_t login_cost_ms(struct dbp_auth *a)
{
	return atomic_load(&a->login_us) * 3 / 2 / 1000;
}

/* True when the account may try a password now (not backing off). */
static bool account_may_try(struct dbp_auth *a, const char *name)
{
	uint64_t wait_ms;

	return !a->failing || !rg_throttle_backing_off(a->failing, name, rg_now_ms(), &wait_ms);
}

/* Take a token of the creation bound; false when spent. */
static bool may_create(struct dbp_auth *a)
{
	bool ok;

	pthread_mutex_lock(&a->lock);
	ok = rg_bucket_take(&a->creates, a->creates_per_sec, 1000, rg_now_ms(), NULL);
	pthread_mutex_unlock(&a->lock);
	return ok;
}

static void run_login(struct auth_worker *wk, struct dbp_login *l)
{
	struct dbp_auth *a = wk->auth;
	char hash[DBP_PWHASH_MAX];
	uint64_t began;
	int err;

	/* Work that cannot end by the deadline is refused now, busy, while
	 * the answer can still arrive in time. */
	if (l->deadline_ms && rg_now_ms() + login_cost_ms(a) > l->deadline_ms) {
		login_finish(l, -ETIMEDOUT);
		return;
	}
	if (!account_may_try(a, l->name)) {
		login_finish(l, -EPERM);
		return;
	}
	began = rg_now_ns();
	err = dbp_store_find_by_name(wk->store, l->name, &l->player, hash);
	if (err == -ENOENT) {
		if (l->no_create || !may_create(a)) {
			login_finish(l, -EDQUOT);
			return;
		}
		err = start_create(a, l);
		note_login_time(a, (rg_now_ns() - began) / 1000);
		if (err == 0)
			return; /* write_done finishes it */
	} else if (err == 0) {
		err = dbp_pwhash_verify(hash, l->password, l->password_len) ? 0 : -EACCES;
		note_login_time(a, (rg_now_ns() - began) / 1000);
		l->created = false;
		if (a->failing && err == -EACCES)
			rg_throttle_failed(a->failing, l->name, rg_now_ms());
		else if (a->failing && err == 0)
			rg_throttle_succeeded(a->failing, l->name, rg_now_ms(), false);
		if (err == 0 && l->lease.owner) {
			sodium_memzero(hash, sizeof hash);
			err = start_take(a, l);
			if (err == 0)
				return; /* write_done finishes it */
		}
	}
	sodium_memzero(hash, sizeof hash);
	login_finish(l, err);
}

static void *worker_main(void *arg)
{
	struct auth_worker *wk = arg;
	struct dbp_qnode *n;

	while ((n = dbp_queue_pop(&wk->auth->queue, 1))) {
		struct dbp_login *l = RG_CONTAINER_OF(n, struct dbp_login, node);

		/* At shutdown a queued login is not worth a slow hash: the
		 * caller gets DB_BUSY at once instead. */
		if (atomic_load(&wk->auth->stopping)) {
			login_finish(l, -ESHUTDOWN);
		} else {
			atomic_fetch_add(&wk->auth->running, 1);
			run_login(wk, l);
			atomic_fetch_sub(&wk->auth->running, 1);
		}
	}
	return NULL;
}

/* Join started workers and close every connection; the queue is closed. */
static void workers_fini(struct dbp_auth *a)
{
	for (unsigned i = 0; i < a->nworkers; i++) {
		if (a->workers[i].started)
			pthread_join(a->workers[i].thread, NULL);
		dbp_store_close(a->workers[i].store);
	}
}

int dbp_auth_start(const struct dbp_auth_config *cfg, struct dbp_auth **out)
{
	struct dbp_store_config store_cfg = *cfg->store;
	struct dbp_auth *a;
	int err;

	store_cfg.read_only = true;
	if (cfg->threads == 0)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	a = calloc(1, sizeof *a + cfg->threads * sizeof a->workers[0]);
	if (!a)
		return -ENOMEM;
	a->profile = cfg->profile;
	a->writer = cfg->writer;
	a->nworkers = cfg->threads;
	a->creates_per_sec = cfg->creates_per_sec;
	if (cfg->failures_per_account) {
		struct rg_throttle_config tc = {
			.free_failures = cfg->failures_per_account,
			.max_keys = FAILING_ACCOUNTS_MAX,
		};

		err = rg_throttle_create(&tc, &a->failing);
		if (err)
			goto out_free;
	}
	err = dbp_queue_init(&a->queue, cfg->queue_max);
	if (err)
		goto out_free;
	err = -pthread_mutex_init(&a->lock, NULL);
	if (err)
		goto out_queue;
	err = -pthread_cond_init(&a->writes_done, NULL);
	if (err)
		goto out_lock;
	for (unsigned i = 0; i < a->nworkers; i++) {
		a->workers[i].auth = a;
		err = dbp_store_open(&store_cfg, &a->workers[i].store);
		if (err)
			goto out_workers;
	}
	for (unsigned i = 0; i < a->nworkers; i++) {
		err = -pthread_create(&a->workers[i].thread, NULL, worker_main, &a->workers[i]);
		if (err)
			goto out_workers;
		a->workers[i].started = true;
	}
	*out = a;
	return 0;

out_workers:
	dbp_queue_close(&a->queue);
	workers_fini(a);
	pthread_cond_destroy(&a->writes_done);
out_lock:
	pthread_mutex_destroy(&a->lock);
out_queue:
	dbp_queue_destroy(&a->queue);
out_free:
	rg_throttle_destroy(a->failing);
	free(a);
	return err;
}

/*
 * Would l end past its deadline? Each worker runs one login at a time, so
 * l is done after about (queued + running) / workers + 1 logins, each
 * taking the estimate (on the safe side: the running ones are partly
 * done).
 */
static bool would_miss_deadline(struct dbp_auth *a, const struct dbp_login *l)
{
	uint64_t ahead;

	if (!l->deadline_ms)
		return false;
	ahead = dbp_queue_length(&a->queue) + atomic_load(&a->running);
	return rg_now_ms() + (ahead / a->nworkers + 1) * login_cost_ms(a) > l->deadline_ms;
}

int dbp_auth_submit(struct dbp_auth *a, struct dbp_login *l)
{
	if (!account_may_try(a, l->name))
		return -EPERM;
	if (would_miss_deadline(a, l))
		return -EAGAIN;
	l->auth = a;
	l->result = 0;
	l->created = false;
	l->retried = false;
	return dbp_queue_push(&a->queue, &l->node);
}

void dbp_auth_stop(struct dbp_auth *a)
{
	atomic_store(&a->stopping, true);
	dbp_queue_close(&a->queue);
	workers_fini(a);
	pthread_mutex_lock(&a->lock);
	while (a->writes_in_flight > 0)
		pthread_cond_wait(&a->writes_done, &a->lock);
	pthread_mutex_unlock(&a->lock);
	pthread_cond_destroy(&a->writes_done);
	pthread_mutex_destroy(&a->lock);
	dbp_queue_destroy(&a->queue);
	rg_throttle_destroy(a->failing);
	free(a);
}
