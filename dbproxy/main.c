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
 * main: options -> open the database (migrations) -> writer -> auth
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
#include <sys/stat.h>
#include <unistd.h>

#include "net/net.h"
#include "rg/admin.h"
#include "rg/log.h"
#include "rg/options.h"
#include "rg/signals.h"

#include "auth.h"
#include "metrics.h"
#include "service.h"
#include "store.h"
#include "writer.h"

/* Longest database path accepted (Linux's PATH_MAX). */
#define DB_PATH_MAX 4096

struct dbproxy_config {
	char *host;
	long port;
	char *run_dir;
	char *db;
	char *synchronous;
	long write_queue_max;
	long batch_max;
	long login_queue_max;
	long login_threads;
	char *pwhash;
	long max_links;
	long max_pending_links;
	long max_pending_links_per_addr;
	long heartbeat_ms;
	long dead_ms;
	long handshake_ms;
	long loops;
	char *secret_file;
	bool insecure_no_auth;
	char *log_level;
	char *admin_host;
	long admin_port;
};

/* Check ranges the option parser cannot; log what is wrong. */
static bool config_valid(const struct dbproxy_config *cfg)
{
	struct { const char *name; long value, min, max; } checks[] = {
		{ "port", cfg->port, 0, 65535 },
		{ "write-queue-max", cfg->write_queue_max, 1, 1 << 24 },
		{ "batch-max", cfg->batch_max, 1, 1 << 20 },
		{ "login-queue-max", cfg->login_queue_max, 1, 1 << 24 },
		{ "login-threads", cfg->login_threads, 1, 64 },
		{ "max-links", cfg->max_links, 0, 100000 },
		{ "heartbeat-ms", cfg->heartbeat_ms, 10, 600000 },
		{ "dead-ms", cfg->dead_ms, 20, 3600000 },
		{ "handshake-ms", cfg->handshake_ms, 10, 600000 },
		{ "max-pending-links", cfg->max_pending_links, 1, 256 },
		{ "max-pending-links-per-addr", cfg->max_pending_links_per_addr, 1,
		  cfg->max_pending_links },
		{ "loops", cfg->loops, 0, 64 },
		{ "admin-port", cfg->admin_port, 0, 65535 },
	};

	for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
		if (checks[i].value < checks[i].min || checks[i].value > checks[i].max) {
			RG_ERROR("--%s=%ld is outside %ld..%ld", checks[i].name, checks[i].value,
				 checks[i].min, checks[i].max);
			return false;
		}
	}
	if (cfg->dead_ms <= cfg->heartbeat_ms) {
		RG_ERROR("--dead-ms must be longer than --heartbeat-ms");
		return false;
	}
	return true;
}

/* The database path: --db as given, else <run-dir>/ringgate.db (creating
 * the run directory). Returns 0 or -errno (logged). */
static int resolve_db_path(const struct dbproxy_config *cfg, char *out, size_t size)
{
	int n;

	if (cfg->db[0]) {
		n = snprintf(out, size, "%s", cfg->db);
	} else {
		if (mkdir(cfg->run_dir, 0755) != 0 && errno != EEXIST) {
			int err = -errno;
			RG_ERROR("cannot create run directory %s: %s", cfg->run_dir, strerror(-err));
			return err;
		}
		n = snprintf(out, size, "%s/ringgate.db", cfg->run_dir);
	}
	if (n < 0 || (size_t)n >= size) {
		RG_ERROR("database path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

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
	struct dbproxy_config cfg = {
		.host = "127.0.0.1",
		.port = 7702,
		.run_dir = "run",
		.db = "",
		.synchronous = "full",
		.write_queue_max = 4096,
		.batch_max = 256,
		.login_queue_max = 1024,
		.login_threads = 2,
		.pwhash = "interactive",
		.max_links = 64,
		.heartbeat_ms = 1000,
		.dead_ms = 5000,
		.handshake_ms = 2000,
		.max_pending_links = 16,
		.max_pending_links_per_addr = 4,
		.loops = 1,
		.secret_file = "",
		.log_level = "info",
		.admin_host = "127.0.0.1",
		.admin_port = 7782,
	};
	const struct rg_option options[] = {
		{ "host", RG_OPT_STRING, &cfg.host, "address gamesrv connects to" },
		{ "port", RG_OPT_INT, &cfg.port, "port gamesrv connects to (0: any free port)" },
		{ "run-dir", RG_OPT_STRING, &cfg.run_dir,
		  "run directory; the database defaults to <run-dir>/ringgate.db" },
		{ "db", RG_OPT_STRING, &cfg.db, "database file (overrides the run-dir default)" },
		{ "synchronous", RG_OPT_STRING, &cfg.synchronous,
		  "full: commits survive power loss; normal: faster, survive kill -9 only "
		  "(docs/storage.md)" },
		{ "write-queue-max", RG_OPT_INT, &cfg.write_queue_max,
		  "queued writes; past it requests get DB_BUSY" },
		{ "batch-max", RG_OPT_INT, &cfg.batch_max, "writes per group commit" },
		{ "login-queue-max", RG_OPT_INT, &cfg.login_queue_max,
		  "queued logins; past it logins get DB_BUSY" },
		{ "login-threads", RG_OPT_INT, &cfg.login_threads,
		  "threads that read accounts and hash passwords" },
		{ "pwhash", RG_OPT_STRING, &cfg.pwhash,
		  "password hash cost: interactive, or min (tests and benchmarks only)" },
		{ "max-links", RG_OPT_INT, &cfg.max_links, "gamesrv links at once (0: unlimited)" },
		{ "heartbeat-ms", RG_OPT_INT, &cfg.heartbeat_ms, "heartbeat interval to gamesrv" },
		{ "dead-ms", RG_OPT_INT, &cfg.dead_ms, "drop a gamesrv link silent this long" },
		{ "handshake-ms", RG_OPT_INT, &cfg.handshake_ms,
		  "drop a gamesrv link not authenticated this long after connecting" },
		{ "max-pending-links", RG_OPT_INT, &cfg.max_pending_links,
		  "gamesrv links still in their handshake at once (a newcomer evicts the oldest)" },
		{ "max-pending-links-per-addr", RG_OPT_INT, &cfg.max_pending_links_per_addr,
		  "... of them from one address" },
		{ "loops", RG_OPT_INT, &cfg.loops, "network loop threads (0: one per core)" },
		{ "secret-file", RG_OPT_STRING, &cfg.secret_file,
		  "the cluster secret (mode 0600) gamesrv must prove on its link" },
		{ "insecure-no-auth", RG_OPT_BOOL, &cfg.insecure_no_auth,
		  "accept gamesrv links without the secret (tests only)" },
		{ "log-level", RG_OPT_STRING, &cfg.log_level, "debug, info, warn or error" },
		{ "admin-host", RG_OPT_STRING, &cfg.admin_host, "address of the metrics port" },
		{ "admin-port", RG_OPT_INT, &cfg.admin_port,
		  "serve GET /metrics (Prometheus) on this port (0: off)" },
		{ 0 },
	};
	struct rg_store_config store_cfg = { 0 };
	struct rg_auth_config auth_cfg = { 0 };
	struct rg_service_config service_cfg = { 0 };
	struct rg_link_key link_key;
	struct net_runtime_config rt_cfg = { 0 };
	struct rg_writer_stats stats;
	struct rg_store *store;
	struct rg_writer *writer;
	struct rg_auth *auth;
	struct net_runtime *rt;
	struct rg_service *svc = NULL;
	struct dbproxy_metrics *metrics = NULL;
	struct rg_admin *admin = NULL;
	enum rg_log_level level;
	char db_path[DB_PATH_MAX];
	int rc, err, sig, lock_fd, status = 1;

	rg_signals_block();
	rc = rg_options_parse(options, "dbproxy", "dbproxy [--config FILE] [options]", argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (rg_log_level_parse(cfg.log_level, &level) < 0) {
		rg_log_init("dbproxy", RG_LOG_INFO);
		RG_ERROR("unknown --log-level \"%s\"", cfg.log_level);
		return 2;
	}
	rg_log_init("dbproxy", level);
	if (!config_valid(&cfg))
		return 2;
	if (rg_store_sync_parse(cfg.synchronous, &store_cfg.sync) < 0) {
		RG_ERROR("--synchronous must be full or normal, not \"%s\"", cfg.synchronous);
		return 2;
	}
	if (rg_pwhash_profile_parse(cfg.pwhash, &auth_cfg.profile) < 0) {
		RG_ERROR("--pwhash must be interactive or min, not \"%s\"", cfg.pwhash);
		return 2;
	}
	if (resolve_db_path(&cfg, db_path, sizeof db_path) < 0)
		return 1;
	if (rg_link_key_setup(cfg.secret_file, cfg.insecure_no_auth, &link_key) < 0)
		return 2;

	/* The database first: a bad file fails before anything listens. */
	lock_fd = lock_database(db_path);
	if (lock_fd < 0)
		return 1;
	store_cfg.path = db_path;
	err = rg_store_open(&store_cfg, &store);
	if (err < 0) {
		RG_ERROR("cannot open database %s: %s", db_path, strerror(-err));
		goto out_unlock;
	}
	err = rg_writer_start(store, (size_t)cfg.write_queue_max, (size_t)cfg.batch_max, &writer);
	if (err < 0) {
		RG_ERROR("cannot start the writer: %s", strerror(-err));
		goto out_store;
	}
	auth_cfg.db_path = db_path;
	auth_cfg.threads = (unsigned)cfg.login_threads;
	auth_cfg.queue_max = (size_t)cfg.login_queue_max;
	auth_cfg.writer = writer;
	err = rg_auth_start(&auth_cfg, &auth);
	if (err < 0) {
		RG_ERROR("cannot start the login workers: %s", strerror(-err));
		goto out_writer;
	}

	rt_cfg.loops = (unsigned)cfg.loops;
	err = net_runtime_create(&rt_cfg, &rt);
	if (err < 0) {
		RG_ERROR("cannot create the network runtime: %s", net_strerror(err));
		goto out_auth;
	}
	RG_INFO("libnet engine: %s, %u loops", net_runtime_engine(rt), net_runtime_loop_count(rt));
	err = dbproxy_metrics_create(rt, writer, &metrics);
	if (err < 0) {
		RG_ERROR("cannot set up the metrics: %s", strerror(-err));
		goto out_runtime;
	}
	service_cfg.host = cfg.host;
	service_cfg.port = (uint16_t)cfg.port;
	service_cfg.max_links = (unsigned)cfg.max_links;
	service_cfg.pending_max = (unsigned)cfg.max_pending_links;
	service_cfg.pending_per_addr = (unsigned)cfg.max_pending_links_per_addr;
	service_cfg.rules = (struct rg_link_rules){
		.heartbeat_ms = (uint32_t)cfg.heartbeat_ms,
		.dead_ms = (uint32_t)cfg.dead_ms,
		.handshake_ms = (uint32_t)cfg.handshake_ms,
	};
	service_cfg.writer = writer;
	service_cfg.auth = auth;
	service_cfg.link_key = &link_key;
	err = rg_service_start(rt, &service_cfg, &svc);
	if (err < 0) {
		RG_ERROR("cannot listen on %s:%ld: %s", cfg.host, cfg.port, net_strerror(err));
		goto out_runtime;
	}
	err = net_runtime_start(rt);
	if (err < 0) {
		RG_ERROR("cannot start the network loops: %s", net_strerror(err));
		goto out_runtime;
	}
	RG_INFO("listening on %s:%u; database %s (synchronous=%s, schema %d)", cfg.host,
		(unsigned)rg_service_port(svc), db_path, cfg.synchronous,
		RG_STORE_SCHEMA_VERSION);
	admin = rg_admin_start_logged(dbproxy_metrics_registry(metrics), cfg.admin_host,
				      cfg.admin_port);

	sig = rg_signals_wait();
	RG_INFO("%s: draining", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rg_admin_stop(admin);     /* its collectors read the writer, stopped below */
	rg_service_stop_accepting(svc);
	rg_auth_stop(auth);       /* running logins finish, queued ones get DB_BUSY */
	auth = NULL;
	RG_INFO("committing %zu queued writes", rg_writer_queued(writer));
	rg_writer_stop(writer, &stats); /* every queued write committed and answered */
	writer = NULL;
	RG_INFO("writer: %llu writes in %llu commits, %llu failed batches, %llu refused busy",
		(unsigned long long)stats.writes, (unsigned long long)stats.commits,
		(unsigned long long)stats.failed_batches, (unsigned long long)stats.busy_refusals);
	net_runtime_stop(rt);     /* flushes the last replies, then closes the links */
	status = 0;

out_runtime:
	net_runtime_destroy(rt);
	rg_service_destroy(svc);
out_auth:
	if (auth)
		rg_auth_stop(auth);
out_writer:
	if (writer)
		rg_writer_stop(writer, NULL);
out_store:
	dbproxy_metrics_destroy(metrics); /* the writer observed into it until stopped */
	rg_store_close(store);
out_unlock:
	close(lock_fd);
	rg_link_key_wipe(&link_key);
	if (status == 0)
		RG_INFO("stopped cleanly");
	return status;
}
