/*
 * rg/options.h: one option table per process, filled in three layers.
 *
 *   1. the defaults already stored in the variables the table points to;
 *   2. an INI file given with --config FILE (or --config=FILE): only the
 *      keys of the process's own [section] are read, other sections are
 *      ignored so that one cluster file can configure every process;
 *   3. command-line flags --name=value or --name value (a BOOL flag alone,
 *      --name, means true).
 * Later layers win. In both INI keys and flags '-' and '_' are the same
 * character (listen_port == listen-port). An unknown key in the process's
 * section, an unknown flag, a positional argument or a malformed value is
 * an error. --help prints the usage generated from the table.
 */
#ifndef RG_OPTIONS_H
#define RG_OPTIONS_H

#include <stdbool.h>

enum rg_opt_type { RG_OPT_STRING, RG_OPT_INT, RG_OPT_BOOL };

/*
 * value points to: char * (STRING; the preset default is never freed,
 * replacements are strdup'ed and live for the process), long (INT) or
 * bool (BOOL). A table ends with an entry whose name is NULL ({0}).
 */
struct rg_option {
	const char *name;
	enum rg_opt_type type;
	void *value;
	const char *help;
};

/*
 * Apply defaults < INI < flags as described above. ini_section is the
 * section read from the config file ("gamesrv"); usage_line heads --help
 * ("usage: gamesrv [--config FILE] [options]").
 * Returns 0 to go on, 1 when --help was printed to stdout (exit 0), -1
 * when an error was printed to stderr (exit 2). Main thread, once.
 */
int rg_options_parse(const struct rg_option *opts, const char *ini_section,
		     const char *usage_line, int argc, char **argv);

#endif /* RG_OPTIONS_H */
