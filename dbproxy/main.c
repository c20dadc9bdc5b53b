/*
 * dbproxy: the persistence process of a ringgate cluster.
 *
 *   gamesrv links --> service (loop threads: decode, validate)
 *                       |-- logins --> auth workers (read connections,
 *                       |                password hashing) --+
 *                       |                                     | creates
 *                       '-- saves, gold ---------------------> writer thread
 *                                                             (group commit
 *                                                              on the write
 *                                                              connection)
 *   replies go back by session id from whichever thread finished the work.
 *
 * main: options (config.c) -> open the database (SQLite file or PostgreSQL
 * server, store.h; migrations) -> writer -> auth
 * workers -> libnet runtime + service -> wait for SIGTERM/SIGINT -> drain:
 * stop accepting, finish running logins (queued ones get DB_BUSY), commit
 * and answer every queued write, flush replies and close links, close the
 * database -> exit 0.
 */
#define _DEFAULT_SOURCE /* flock */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "net/net.h"
#include "rg/admin.h"
#include "rg/log.h"
#include "rg/signals.h"

#include "auth.h"
#include "config.h"
#include "metrics.h"
#include "service.h"
#include "store.h"
#include "writer.h"

/* Longest database path accepted (Linux's PATH_MAX). */
#define DB_PATH_MAX 4096
/* --write-connections' upper bound (config.c's row). */
#define WRITE_CONNECTIONS_MAX 16

/*
 * Hold <db>.lock for the life of the process, so a second dbproxy started
 * on the same database (two writers would interleave their group commits
 * and both answer "durable") fails at once with a clear message. The kernel
 * drops the lock when the process dies, kill -9 included.
 * Returns the lock's fd, or -errno (logged).
 */
static int lock_database(const char *db_path)
{
	char path[DB_PATH_MAX + 8];
	int fd, err;

	snprintf(path, sizeof path, "%s.lock", db_path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		RG_ERROR("cannot open %s: %s", path, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		err = -errno;
		if (err == -EWOULDBLOCK)
			RG_ERROR("database %s is in use by another dbproxy (%s is locked)",
				 db_path, path);
		else
			RG_ERROR("cannot lock %s: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct dbp_config cfg;
	struct dbp_store_config store_cfg = { 0 };
	struct dbp_auth_config auth_cfg = { 0 };
	struct dbp_service_config service_cfg = { 0 };
	struct rg_link_key link_key;
	struct net_runtime_config rt_cfg = { 0 };
	struct dbp_writer_stats stats;
	struct dbp_store *stores[WRITE_CONNECTIONS_MAX] = { NULL };
	size_t nstores = 0;
	struct dbp_writer *writer;
	struct dbp_auth *auth;
	struct net_runtime *rt;
	struct dbp_service *svc = NULL;
	struct dbp_metrics *metrics = NULL;
	struct rg_admin *admin = NULL;
	char db_path[DB_PATH_MAX];
	int rc, err, sig, lock_fd, status = 1;

	rg_signals_block();
	rc = dbp_config_load(&cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	store_cfg.backend = cfg.backend_kind;
	store_cfg.dsn = cfg.postgres_dsn;
	store_cfg.sync = cfg.sync;
	auth_cfg.profile = cfg.profile;
	if (cfg.backend_kind == DBP_STORE_SQLITE) {
		if (dbp_config_db_path(&cfg, db_path, sizeof db_path) < 0)
			return 1;
	} else {
		/* Named in logs; the DSN itself may hold a password. */
		snprintf(db_path, sizeof db_path, "on the PostgreSQL server");
	}
	if (rg_link_key_setup(cfg.common.secret_file, cfg.common.insecure_no_auth, &link_key) < 0)
		return 2;

	/* The database first: a bad file, DSN or server fails before anything
	 * listens. A server backend has no file to lock: several dbproxies
	 * share it, each write's transaction keeps them apart. */
	lock_fd = cfg.backend_kind == DBP_STORE_SQLITE ? lock_database(db_path) : -1;
	if (cfg.backend_kind == DBP_STORE_SQLITE && lock_fd < 0)
		return 1;
	store_cfg.path = db_path;
	/* The first opens (and migrates); a server backend gets a pool. */
	nstores = cfg.backend_kind == DBP_STORE_SQLITE ? 1 : (size_t)cfg.write_connections;
	for (size_t i = 0; i < nstores; i++) {
		err = dbp_store_open(&store_cfg, &stores[i]);
		if (err < 0) {
			RG_ERROR("cannot open database %s: %s", db_path, strerror(-err));
			goto out_store;
		}
	}
	err = dbp_writer_start_pool(stores, nstores, (size_t)cfg.write_queue_max,
				    (size_t)cfg.batch_max, &writer);
	if (err < 0) {
		RG_ERROR("cannot start the writer: %s", strerror(-err));
		goto out_store;
	}
	auth_cfg.store = &store_cfg;
	auth_cfg.threads = (unsigned)cfg.login_threads;
	auth_cfg.queue_max = (size_t)cfg.login_queue_max;
	auth_cfg.writer = writer;
	auth_cfg.creates_per_sec = (unsigned)cfg.creates_per_sec;
	auth_cfg.failures_per_account = (unsigned)cfg.login_failures_per_account;
	err = dbp_auth_start(&auth_cfg, &auth);
	if (err < 0) {
		RG_ERROR("cannot start the login workers: %s", strerror(-err));
		goto out_writer;
	}

	rt_cfg.loops = (unsigned)cfg.common.loops;
	rt_cfg.engine = cfg.common.engine[0] ? cfg.common.engine : NULL;
	err = net_runtime_create(&rt_cfg, &rt);
	if (err < 0) {
		RG_ERROR("cannot create the network runtime: %s", net_strerror(err));
		goto out_auth;
	}
	RG_INFO("libnet engine: %s, %u loops", net_runtime_engine(rt), net_runtime_loop_count(rt));
	err = dbp_metrics_create(rt, writer, &metrics);
	if (err < 0) {
		RG_ERROR("cannot set up the metrics: %s", strerror(-err));
		goto out_runtime;
	}
	/* Before anything listens: a taken admin port stops the start. */
	err = rg_admin_start_logged(dbp_metrics_registry(metrics), &cfg.common, &admin);
	if (err < 0)
		goto out_runtime;
	service_cfg.host = cfg.host;
	service_cfg.port = (uint16_t)cfg.port;
	service_cfg.max_links = (unsigned)cfg.max_links;
	service_cfg.pending_max = (unsigned)cfg.link.max_pending_links;
	service_cfg.pending_per_addr = (unsigned)cfg.link.max_pending_links_per_addr;
	service_cfg.rules = rg_link_rules_of(&cfg.link);
	service_cfg.writer = writer;
	service_cfg.auth = auth;
	service_cfg.link_key = &link_key;
	err = dbp_service_start(rt, &service_cfg, &svc);
	if (err < 0) {
		RG_ERROR("cannot listen on %s:%ld: %s", cfg.host, cfg.port, net_strerror(err));
		goto out_runtime;
	}
	err = net_runtime_start(rt);
	if (err < 0) {
		RG_ERROR("cannot start the network loops: %s", net_strerror(err));
		goto out_runtime;
	}
	RG_INFO("listening on %s:%u; %s database %s (synchronous=%s, schema %d)", cfg.host,
		(unsigned)dbp_service_port(svc), cfg.backend, db_path, cfg.synchronous,
		DBP_STORE_SCHEMA_VERSION);
	err = rg_port_file_write(cfg.common.port_file, dbp_service_port(svc));
	if (err < 0)
		goto out_runtime;

	sig = rg_signals_wait();
	RG_INFO("%s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rg_admin_stop(admin);     /* its collectors read the writer, stopped below */
	admin = NULL;
	dbp_service_stop_accepting(svc);
	dbp_auth_stop(auth);       /* running logins finish, queued ones get DB_BUSY */
	auth = NULL;
	RG_INFO("committing %zu queued writes", dbp_writer_queued(writer));
	dbp_writer_stop(writer, &stats); /* every queued write committed and answered */
	writer = NULL;
	RG_INFO("writer: %llu writes in %llu commits, %llu failed batches, %llu refused busy, "
		"%llu unavailable, %llu reconnects",
		(unsigned long long)stats.writes, (unsigned long long)stats.commits,
		(unsigned long long)stats.failed_batches, (unsigned long long)stats.busy_refusals,
		(unsigned long long)stats.unavailable, (unsigned long long)stats.reconnects);
	net_runtime_stop(rt);     /* flushes the last replies, then closes the links */
	status = 0;

out_runtime:
	rg_admin_stop(admin);     /* still running when the start failed */
	net_runtime_destroy(rt);
	dbp_service_destroy(svc);
out_auth:
	if (auth)
		dbp_auth_stop(auth);
out_writer:
	if (writer)
		dbp_writer_stop(writer, NULL);
out_store:
	dbp_metrics_destroy(metrics); /* the writer observed into it until stopped */
	for (size_t i = 0; i < nstores; i++)
		dbp_store_close(stores[i]);
	if (lock_fd >= 0)
		close(lock_fd);
	rg_link_key_wipe(&link_key);
	if (status == 0)
		RG_INFO("stopped cleanly");
	return status;
}
