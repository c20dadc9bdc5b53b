/*
 * dbproxy/config.h: dbproxy's settings, one row each in config.c
 * (rg/options.h): the rows' defaults, then the [dbproxy] section of
 * --config, then flags.
 */
#ifndef DBPROXY_CONFIG_H
#define DBPROXY_CONFIG_H

#include <stddef.h>

#include <rg/options.h>

#include "auth.h"
#include "store.h"

struct dbp_config {
	char *host;               /* address gamesrv connects to               */
	long port;                /* port gamesrv connects to (0: any)         */
	char *backend;            /* "sqlite" or "postgres" (docs/storage.md)  */
	char *postgres_dsn;       /* libpq connection string (postgres)        */
	char *run_dir;            /* the database's directory unless --db      */
	char *db;                 /* database file; "": <run-dir>/ringgate.db  */
	char *synchronous;        /* "full" or "normal" (docs/storage.md)      */
	long write_queue_max;
	long batch_max;           /* writes per group commit                   */
	long write_connections;   /* postgres: writer lanes (sqlite: 1)        */
	long login_queue_max;
	long login_threads;
	long creates_per_sec;
	long login_failures_per_account;
	char *pwhash;             /* "interactive" or "min" (tests)            */
	long max_links;           /* gamesrv links at once (0: any)            */
	struct rg_link_options link; /* gamesrv links: timings, admission */
	struct rg_common_config common; /* loops, engine, log, admin, secret   */
	/* Derived by dbp_config_load from the text options above. */
	enum dbp_store_backend backend_kind;
	enum dbp_store_sync sync;
	enum dbp_pwhash_profile profile;
};

/*
 * Fill *cfg from the table, --config's [dbproxy] section and the flags,
 * check what one row cannot (dead-ms > heartbeat-ms, the synchronous and
 * pwhash words, a DSN for the postgres backend), and start logging. Returns 0 to go on, 1 after --help
 * (exit 0), -1 after printing an error (exit 2). Main thread, once.
 */
int dbp_config_load(struct dbp_config *cfg, int argc, char **argv);

/*
 * The database path into out: --db as given, else <run-dir>/ringgate.db
 * (creating the run directory). Returns 0 or -errno (logged).
 */
int dbp_config_db_path(const struct dbp_config *cfg, char *out, size_t size);

#endif /* DBPROXY_CONFIG_H */
