/*
 * dbproxy/config.c: every dbproxy option, one row each (rg/options.h).
 * A new option is a field in config.h and a row here.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <rg/log.h>

#define RG_OPTIONS_TYPE struct dbp_config

static const struct rg_option dbp_options[] = {
	RG_ROW_STRING("host", host, "127.0.0.1", "address gamesrv connects to"),
	RG_ROW_INT("port", port, 7702, 0, 65535, "port gamesrv connects to (0: any free port)"),
	/* Checked by dbp_store_backend_parse, which owns the words. */
	RG_ROW_STRING("backend", backend, "sqlite",
			 "sqlite: a file in the run directory (one dbproxy); postgres: a "
			 "PostgreSQL server at --postgres-dsn (several dbproxies may share it)"),
	RG_ROW_STRING("postgres-dsn", postgres_dsn, "",
		   "libpq connection string for --backend postgres, e.g. "
		   "\"host=db1 dbname=ringgate user=ringgate\" (a password is better in "
		   "~/.pgpass than here)"),
	RG_ROW_STRING("run-dir", run_dir, "run",
		   "run directory; the database defaults to <run-dir>/ringgate.db"),
	RG_ROW_STRING("db", db, "", "database file (overrides the run-dir default)"),
	/* The words are checked by dbp_store_sync_parse and
	 * dbp_pwhash_profile_parse, which own them. */
	RG_ROW_STRING("synchronous", synchronous, "full",
		   "full: commits survive power loss; normal: faster, survive kill -9 only "
		   "(docs/storage.md)"),
	RG_ROW_INT("write-queue-max", write_queue_max, 4096, 1, 1 << 24,
		"queued writes; past it requests get DB_BUSY"),
	RG_ROW_INT("batch-max", batch_max, 256, 1, 1 << 20, "writes per group commit"),
	RG_ROW_INT("write-connections", write_connections, 2, 1, 16,
		"postgres: write connections, each committing its own batches (a player's "
		"writes always on the same one); sqlite has one writer"),
	RG_ROW_INT("login-queue-max", login_queue_max, 1024, 1, 1 << 24,
		"queued logins; past it logins get DB_BUSY"),
	RG_ROW_INT("login-threads", login_threads, 2, 1, 64,
		"threads that read accounts and hash passwords"),
	RG_ROW_INT("creates-per-sec", creates_per_sec, 20, 0, 1000000,
		"new accounts per second, as a burst too; more get DB_THROTTLED (0: any)"),
	RG_ROW_INT("login-failures-per-account", login_failures_per_account, 5, 0, 1000000,
		"wrong passwords in a row before an account's logins back off "
		"(1 s, doubling to 60 s; 0: never)"),
	RG_ROW_STRING("pwhash", pwhash, "interactive",
		   "password hash cost: interactive, or min (tests and benchmarks only)"),
	RG_ROW_INT("max-links", max_links, 64, 0, 100000, "gamesrv links at once (0: unlimited)"),
	RG_LINK_OPTIONS(struct dbp_config, link, "gamesrv"),
	RG_LINK_ACCEPT_OPTIONS(struct dbp_config, link, "gamesrv"),
	/* One loop: dbproxy's work is on the writer and login threads. */
	RG_COMMON_OPTIONS(struct dbp_config, common, 1, 7782),
	{ 0 },
};

int dbp_config_load(struct dbp_config *cfg, int argc, char **argv)
{
	int rc = rg_options_load(dbp_options, cfg, &cfg->common, "dbproxy", argc, argv);

	if (rc != 0)
		return rc;
	if (!rg_link_options_valid(&cfg->link))
		return -1;
	if (dbp_store_backend_parse(cfg->backend, &cfg->backend_kind) < 0) {
		RG_ERROR("--backend must be sqlite or postgres, not \"%s\"", cfg->backend);
		return -1;
	}
	if (cfg->backend_kind == DBP_STORE_POSTGRES && !cfg->postgres_dsn[0]) {
		RG_ERROR("--backend postgres needs --postgres-dsn (a libpq connection string)");
		return -1;
	}
	if (dbp_store_sync_parse(cfg->synchronous, &cfg->sync) < 0) {
		RG_ERROR("--synchronous must be full or normal, not \"%s\"", cfg->synchronous);
		return -1;
	}
	if (dbp_pwhash_profile_parse(cfg->pwhash, &cfg->profile) < 0) {
		RG_ERROR("--pwhash must be interactive or min, not \"%s\"", cfg->pwhash);
		return -1;
	}
	return 0;
}

int dbp_config_db_path(const struct dbp_config *cfg, char *out, size_t size)
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
