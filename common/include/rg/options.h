/*
 * rg/options.h: one table per process, one row per option (redis's
 * createIntConfig("port", ..., 0, 65535, server.port, 6379, ...) rows are
 * the model). A row names the option, where it lives in the process's
 * config struct, its default, what it accepts (an integer range, or a list
 * of words) and its help, so adding an option is one line. The values are
 * filled in three layers:
 *
 *   1. each row's default;
 *   2. an INI file given with --config FILE (or --config=FILE): only the
 *      keys of the process's own [section] are read, other sections are
 *      ignored so that one cluster file can configure every process;
 *   3. command-line flags --name=value or --name value (a BOOL flag alone,
 *      --name, means true).
 *
 * Later layers win. In both INI keys and flags '-' and '_' are the same
 * character (admin_port == admin-port). An unknown key in the process's
 * section, an unknown flag, a positional argument, a malformed value, an
 * integer outside its row's range or a word not in its row's list is an
 * error that names the option and what it accepts. --help prints the usage
 * generated from the table.
 *
 * The flags every process shares (loops, engine, log level, admin port,
 * secret file, port files) are RG_COMMON_OPTIONS rows over a
 * struct rg_common_config, written once here.
 */
#ifndef RG_OPTIONS_H
#define RG_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h> /* NET_LOOPS_MAX */

#include "rg/log.h"    /* rg_log_level_names */

enum rg_opt_type { RG_OPT_STRING, RG_OPT_INT, RG_OPT_BOOL, RG_OPT_DOUBLE };

/*
 * One option. The value lives at offset in the config struct handed to
 * rg_options_parse: a char * (STRING; defaults are never freed, replacements
 * are copied and live for the process), a long (INT), a bool (BOOL) or a
 * double (DOUBLE).
 * Write rows with the RG_OPTION_* macros below, which check the field's
 * type; a table ends with an entry whose name is NULL ({ 0 }).
 */
struct rg_option {
	const char *name;            /* flag and INI key                        */
	enum rg_opt_type type;
	size_t offset;               /* of the value in the config struct       */
	const char *help;
	long def;                    /* INT, BOOL: the default                  */
	const char *def_text;        /* STRING: the default                     */
	long min, max;               /* INT: the accepted range, inclusive      */
	double ddef, dmin, dmax;     /* DOUBLE: default and range, inclusive    */
	const char *const *choices;  /* STRING: the accepted words, NULL-ended;
				      * NULL accepts any text                   */
};

/* offsetof(type, field), and a compile error unless field is a ctype. */
#define RG_OPTION_FIELD(type, field, ctype) \
	_Generic(((type *)0)->field, ctype: offsetof(type, field))

/* An integer option: default dflt, accepted lo..hi. */
#define RG_OPTION_INT(name, type, field, dflt, lo, hi, help)                      \
	{ (name), RG_OPT_INT, RG_OPTION_FIELD(type, field, long), (help),          \
	  .def = (dflt), .min = (lo), .max = (hi) }

/* A text option: default dflt; words is NULL (any text) or a NULL-ended
 * list of the accepted values. */
#define RG_OPTION_STRING(name, type, field, dflt, words, help)                    \
	{ (name), RG_OPT_STRING, RG_OPTION_FIELD(type, field, char *), (help),     \
	  .def_text = (dflt), .choices = (words) }

/* A decimal number option: default dflt, accepted lo..hi. */
#define RG_OPTION_DOUBLE(name, type, field, dflt, lo, hi, help)                   \
	{ (name), RG_OPT_DOUBLE, RG_OPTION_FIELD(type, field, double), (help),     \
	  .ddef = (dflt), .dmin = (lo), .dmax = (hi) }

/* A true/false option. */
#define RG_OPTION_BOOL(name, type, field, dflt, help)                             \
	{ (name), RG_OPT_BOOL, RG_OPTION_FIELD(type, field, bool), (help),         \
	  .def = (dflt) }

/*
 * Short rows for a table over one config struct, by field name: define
 * RG_OPTIONS_TYPE as that struct type first (each config.c does).
 */
#define RG_ROW_INT(name, field, dflt, lo, hi, help) \
	RG_OPTION_INT(name, RG_OPTIONS_TYPE, field, dflt, lo, hi, help)
#define RG_ROW_STRING(name, field, dflt, help) \
	RG_OPTION_STRING(name, RG_OPTIONS_TYPE, field, dflt, NULL, help)

/* The values of the flags every process shares. */
struct rg_common_config {
	long loops;             /* libnet loop threads; 0: one per core       */
	char *engine;           /* "uring", "epoll", ...; "": env, then probe  */
	char *log_level;        /* one of rg_log_level_names (rg/log.h)        */
	char *admin_host;       /* GET /metrics address                        */
	long admin_port;        /* 0: none, or any with admin_port_file        */
	char *secret_file;      /* the cluster secret (rg/link_auth.h)         */
	bool insecure_no_auth;  /* internal links without the secret (tests)   */
	char *port_file;        /* write the bound listening port here         */
	char *admin_port_file;  /* write the bound admin port here             */
};

/*
 * The shared rows, for a process whose config struct `type` holds a
 * struct rg_common_config named `member`. The defaults that must differ
 * between processes on one host (the admin port) or by workload (loops)
 * are arguments; everything else is the same everywhere.
 */
#define RG_COMMON_OPTIONS(type, member, loops_default, admin_port_default)        \
	RG_OPTION_INT("loops", type, member.loops, loops_default, 0, NET_LOOPS_MAX,\
		      "network loop threads (0: one per core)"),                   \
	RG_OPTION_STRING("engine", type, member.engine, "", NULL,                  \
			 "libnet engine: uring or epoll (empty: RINGGATE_ENGINE, " \
			 "then the best that works here)"),                        \
	RG_OPTION_STRING("log-level", type, member.log_level, "info",              \
			 rg_log_level_names, "least severe message logged"),       \
	RG_OPTION_STRING("admin-host", type, member.admin_host, "127.0.0.1", NULL, \
			 "address of the metrics port (keep it on loopback)"),     \
	RG_OPTION_INT("admin-port", type, member.admin_port, admin_port_default,   \
		      0, 65535, "serve GET /metrics (Prometheus) on this port "    \
		      "(0: off, or any free port when --admin-port-file is set); " \
		      "a port that is taken stops the start"),                     \
	RG_OPTION_STRING("secret-file", type, member.secret_file, "", NULL,        \
			 "the cluster secret (mode 0600) proven on internal links"),\
	RG_OPTION_BOOL("insecure-no-auth", type, member.insecure_no_auth, false,   \
		       "internal links without the secret (tests only)"),          \
	RG_OPTION_STRING("port-file", type, member.port_file, "", NULL,            \
			 "once listening, write the bound --port here (through a " \
			 "rename), so --port 0 can be read back"),                 \
	RG_OPTION_STRING("admin-port-file", type, member.admin_port_file, "", NULL,\
			 "once the admin port listens (before --port-file is "     \
			 "written), write it here; with --admin-port 0 it asks "   \
			 "for any free port instead of none")

/* The settings of an internal link end (rg/link.h's rules and admission). */
struct rg_link_options {
	long heartbeat_ms;      /* Heartbeat out this often, once up           */
	long dead_ms;           /* nothing heard this long: close               */
	long handshake_ms;      /* not authenticated this long: close           */
	long max_pending_links; /* acceptors: links in their handshake at once  */
	long max_pending_links_per_addr; /* ... of them from one address        */
	bool seal;              /* seal frames once up (rg/link_seal.h)         */
};

/* The rows of every link end, for a struct rg_link_options named `member`
 * of `type`; peer names the other side in the help ("gamesrv"). */
#define RG_LINK_OPTIONS(type, member, peer)                                         \
	RG_OPTION_INT("heartbeat-ms", type, member.heartbeat_ms, 1000, 10, 600000,  \
		      "Heartbeat interval on " peer " links"),                     \
	RG_OPTION_INT("dead-ms", type, member.dead_ms, 5000, 20, 3600000,          \
		      "close a " peer " link silent this long (> heartbeat-ms)"),  \
	RG_OPTION_INT("handshake-ms", type, member.handshake_ms, 2000, 10, 600000,  \
		      "close a " peer " link not authenticated this long after "    \
		      "connecting"),                                               \
	RG_OPTION_BOOL("link-seal", type, member.seal, true,                       \
		       "seal every frame on " peer " links after the handshake "   \
		       "(off: plain, for benchmarks on loopback only; both ends "   \
		       "must agree)")

/* The rows of an accepting link end, besides RG_LINK_OPTIONS's. */
#define RG_LINK_ACCEPT_OPTIONS(type, member, peer)                                  \
	RG_OPTION_INT("max-pending-links", type, member.max_pending_links, 16, 1, 256,\
		      peer " links still in their handshake at once (a newcomer "   \
		      "evicts the oldest)"),                                       \
	RG_OPTION_INT("max-pending-links-per-addr", type,                          \
		      member.max_pending_links_per_addr, 4, 1, 256,                \
		      "... of them from one address (at most max-pending-links)")

/* Check what the link rows cannot alone (dead-ms above heartbeat-ms, the
 * per-address cap within the total); logs what is wrong. */
bool rg_link_options_valid(const struct rg_link_options *o);

/*
 * Fill *config (the struct the table's offsets point into) with the rows'
 * defaults only: for code that builds a process's config without a
 * command line (fuzz harnesses). Any thread.
 */
void rg_options_defaults(const struct rg_option *opts, void *config);

/*
 * Apply defaults < INI < flags as described above to *config. ini_section
 * is the section read from the config file ("gamesrv"); usage_line heads
 * --help ("usage: gamesrv [--config FILE] [options]").
 * Returns 0 to go on, 1 when --help was printed to stdout (exit 0), -1
 * when an error was printed to stderr (exit 2). Main thread, once.
 */
int rg_options_parse(const struct rg_option *opts, void *config, const char *ini_section,
		     const char *usage_line, int argc, char **argv);

/*
 * A process's start: rg_options_parse with the usage line
 * "usage: <process> [--config FILE] [options]" and section [<process>],
 * then logging started as "<process>" at common->log_level (common is the
 * struct rg_common_config inside *config). process must be a literal.
 * Returns like rg_options_parse. Main thread, once.
 */
int rg_options_load(const struct rg_option *opts, void *config,
		    const struct rg_common_config *common, const char *process, int argc,
		    char **argv);

/*
 * For rules between two options: true when lower < higher, else logs
 * "--<higher_name> must be more than --<lower_name>" and returns false.
 */
bool rg_options_less(const char *lower_name, long lower, const char *higher_name, long higher);

/* One address of a HOST:PORT list option (--gamesrvs, --dbproxies). */
struct rg_host_port {
	char host[256];         /* NUL-terminated; an IPv6 address without [] */
	uint16_t port;          /* 1..65535                                    */
};

/*
 * Parse list, HOST:PORT[,HOST:PORT...] (HOST may be [an IPv6 address]),
 * into out[0..max). Returns how many (at least 1), or -EINVAL for an empty
 * list, a malformed entry, a port outside 1..65535, a host of 256 bytes or
 * more, or more than max entries. Nothing is logged. Any thread.
 */
int rg_host_ports_parse(const char *list, struct rg_host_port *out /* OUT */, unsigned max);

/*
 * The addresses a process links to, from a HOST:PORT list option or, when
 * that is unset (NULL or ""), its single host/port pair: list parsed into
 * out[0..max) by rg_host_ports_parse, else host:port as out[0] (port is
 * already checked by the options table). Returns how many (at least 1), or
 * -EINVAL after logging what is wrong, naming the option given: --<list_name>
 * (its format and max) or --<host_name> (too long).
 */
int rg_host_ports_resolve(const char *list, const char *list_name, const char *host,
			  const char *host_name, uint16_t port, struct rg_host_port *out /* OUT */,
			  unsigned max);

/*
 * --port-file, --admin-port-file: when path is set (not NULL or ""), write
 * port to it through a temporary file and a rename, so a reader never
 * sees a half-written number. Call it once the port listens (--port-file:
 * once the process is ready): a test or deploy/ringgate that passes port
 * 0 waits for the file instead of binding and releasing a port itself (a
 * race). Returns 0 (also when unset) or -errno (logged).
 */
int rg_port_file_write(const char *path, uint16_t port);

#endif /* RG_OPTIONS_H */
