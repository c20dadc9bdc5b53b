/*
 * auth.c: the login worker pool (see auth.h).
 *
 * A login's path:
 *   queue -> worker: deadline passed?  -> done(-ETIMEDOUT)
 *            found by name?            -> verify -> done(0 or -EACCES)
 *            else hash, submit create  -> writer commits -> create_done:
 *                 created              -> done(0, created)
 *                 name taken meanwhile -> queue again once (now it is found)
 * Stopping: logins still queued are answered -ESHUTDOWN without running;
 * a login a worker is running, and its create in the writer, finish.
 * Invariant: rg_auth_stop() returns only when no create it submitted is
 * still inside the writer (creates_in_flight == 0), because create_done
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

_Static_assert(crypto_pwhash_STRBYTES <= RG_PWHASH_MAX, "RG_PWHASH_MAX too small");

struct auth_worker {
	struct rg_auth *auth;
	struct rg_store *store;   /* this worker's read connection */
	pthread_t thread;
	bool started;
};

struct rg_auth {
	struct dbp_queue queue;
	atomic_bool stopping;     /* set by rg_auth_stop: refuse what is queued */
	enum rg_pwhash_profile profile;
	struct rg_writer *writer;

	pthread_mutex_t lock;     /* guards creates_in_flight */
	pthread_cond_t creates_done;
	unsigned creates_in_flight;

	unsigned nworkers;
	struct auth_worker workers[];
};

int rg_pwhash_profile_parse(const char *text, enum rg_pwhash_profile *out)
{
	if (strcmp(text, "interactive") == 0)
		*out = RG_PWHASH_INTERACTIVE;
	else if (strcmp(text, "min") == 0)
		*out = RG_PWHASH_MIN;
	else
		return -EINVAL;
	return 0;
}

int rg_pwhash(enum rg_pwhash_profile profile, const char *password, char out[RG_PWHASH_MAX])
{
	unsigned long long ops = profile == RG_PWHASH_MIN ? crypto_pwhash_OPSLIMIT_MIN
							  : crypto_pwhash_OPSLIMIT_INTERACTIVE;
	size_t mem = profile == RG_PWHASH_MIN ? crypto_pwhash_MEMLIMIT_MIN
					      : crypto_pwhash_MEMLIMIT_INTERACTIVE;

	/* The only failure libsodium documents is running out of memory. */
	if (crypto_pwhash_str(out, password, strlen(password), ops, mem) != 0)
		return -ENOMEM;
	return 0;
}

bool rg_pwhash_verify(const char *hash, const char *password)
{
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

static void login_finish(struct rg_login *l, int result)
{
	sodium_memzero(l->password, sizeof l->password);
	l->result = result;
	l->done(l);
}

static void creates_add(struct rg_auth *a, int delta)
{
	pthread_mutex_lock(&a->lock);
	a->creates_in_flight += (unsigned)delta;
	if (a->creates_in_flight == 0)
		pthread_cond_broadcast(&a->creates_done);
	pthread_mutex_unlock(&a->lock);
}

/* Writer thread: the account's INSERT has committed (or failed). */
static void create_done(struct rg_write *w)
{
	struct rg_login *l = RG_CONTAINER_OF(w, struct rg_login, create);
	struct rg_auth *a = l->auth;
	int result = w->result;

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
	login_finish(l, result);
out:
	creates_add(a, -1);
}

/* Worker thread: an unknown name. Hash and hand the INSERT to the writer. */
static int start_create(struct rg_auth *a, struct rg_login *l)
{
	struct rg_write *w = &l->create;
	int err;

	memset(w, 0, sizeof *w);
	w->kind = RG_WRITE_CREATE_PLAYER;
	w->deadline_ms = l->deadline_ms;
	w->done = create_done;
	memcpy(w->create.name, l->name, sizeof w->create.name);
	err = rg_pwhash(a->profile, l->password, w->create.pwhash);
	if (err)
		return err;
	creates_add(a, 1);
	err = rg_writer_submit(a->writer, w);
	if (err) {
		sodium_memzero(w->create.pwhash, sizeof w->create.pwhash);
		creates_add(a, -1);
	}
	return err;
}

static void run_login(struct auth_worker *wk, struct rg_login *l)
{
	char hash[RG_PWHASH_MAX];
	int err;

	if (l->deadline_ms && rg_now_ms() > l->deadline_ms) {
		login_finish(l, -ETIMEDOUT);
		return;
	}
	err = rg_store_find_by_name(wk->store, l->name, &l->player, hash);
	if (err == -ENOENT) {
		err = start_create(wk->auth, l);
		if (err == 0)
			return; /* create_done finishes it */
	} else if (err == 0) {
		err = rg_pwhash_verify(hash, l->password) ? 0 : -EACCES;
		l->created = false;
	}
	sodium_memzero(hash, sizeof hash);
	login_finish(l, err);
}

static void *worker_main(void *arg)
{
	struct auth_worker *wk = arg;
	struct dbp_qnode *n;

	while ((n = dbp_queue_pop(&wk->auth->queue, 1))) {
		struct rg_login *l = RG_CONTAINER_OF(n, struct rg_login, node);

		/* At shutdown a queued login is not worth a slow hash: the
		 * caller gets DB_BUSY at once instead. */
		if (atomic_load(&wk->auth->stopping))
			login_finish(l, -ESHUTDOWN);
		else
			run_login(wk, l);
	}
	return NULL;
}

/* Join started workers and close every connection; the queue is closed. */
static void workers_fini(struct rg_auth *a)
{
	for (unsigned i = 0; i < a->nworkers; i++) {
		if (a->workers[i].started)
			pthread_join(a->workers[i].thread, NULL);
		rg_store_close(a->workers[i].store);
	}
}

int rg_auth_start(const struct rg_auth_config *cfg, struct rg_auth **out)
{
	struct rg_store_config store_cfg = { .path = cfg->db_path, .read_only = true };
	struct rg_auth *a;
	int err;

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
	err = dbp_queue_init(&a->queue, cfg->queue_max);
	if (err)
		goto out_free;
	err = -pthread_mutex_init(&a->lock, NULL);
	if (err)
		goto out_queue;
	err = -pthread_cond_init(&a->creates_done, NULL);
	if (err)
		goto out_lock;
	for (unsigned i = 0; i < a->nworkers; i++) {
		a->workers[i].auth = a;
		err = rg_store_open(&store_cfg, &a->workers[i].store);
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
	pthread_cond_destroy(&a->creates_done);
out_lock:
	pthread_mutex_destroy(&a->lock);
out_queue:
	dbp_queue_destroy(&a->queue);
out_free:
	free(a);
	return err;
}

int rg_auth_submit(struct rg_auth *a, struct rg_login *l)
{
	l->auth = a;
	l->result = 0;
	l->created = false;
	l->retried = false;
	return dbp_queue_push(&a->queue, &l->node);
}

void rg_auth_stop(struct rg_auth *a)
{
	atomic_store(&a->stopping, true);
	dbp_queue_close(&a->queue);
	workers_fini(a);
	pthread_mutex_lock(&a->lock);
	while (a->creates_in_flight > 0)
		pthread_cond_wait(&a->creates_done, &a->lock);
	pthread_mutex_unlock(&a->lock);
	pthread_cond_destroy(&a->creates_done);
	pthread_mutex_destroy(&a->lock);
	dbp_queue_destroy(&a->queue);
	free(a);
}
