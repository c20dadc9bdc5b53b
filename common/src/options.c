/*
 * options.c: row defaults < INI file < command-line flags (see
 * rg/options.h), and the helpers behind the shared flags.
 *
 * Parsing is two passes over argv: the first only looks for --help and
 * --config (so the file is applied before any flag, whatever their order),
 * the second applies every other flag. Every value, from a file or a flag,
 * goes through the one set_value(), so the rows' ranges and word lists hold
 * for both. Strings set by the file or flags are copied and remembered in a
 * process-lifetime list, so they stay valid and reachable (no leak reports)
 * until exit.
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/options.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Strings this module allocated: kept reachable for the process's life. */
struct owned_string {
	struct owned_string *next;
	char text[];
};

static struct owned_string *owned_strings;

static char *keep_string(const char *text)
{
	size_t len = strlen(text);
	struct owned_string *o = malloc(sizeof(*o) + len + 1);

	if (!o)
		return NULL;
	memcpy(o->text, text, len + 1);
	o->next = owned_strings;
	owned_strings = o;
	return o->text;
}

/* Names compare with '-' and '_' as one character, case-sensitively. */
static bool name_equal(const char *a, const char *b, size_t b_len)
{
	size_t i = 0;

	for (; i < b_len && a[i]; i++) {
		char ca = a[i] == '_' ? '-' : a[i];
		char cb = b[i] == '_' ? '-' : b[i];

		if (ca != cb)
			return false;
	}
	return i == b_len && a[i] == '\0';
}

/* Where o's value lives in config. */
static void *value_of(const struct rg_option *o, void *config)
{
	return (char *)config + o->offset;
}

static const struct rg_option *find_option(const struct rg_option *opts,
					   const char *name, size_t len)
{
	for (const struct rg_option *o = opts; o->name; o++)
		if (name_equal(o->name, name, len))
			return o;
	return NULL;
}

static int parse_bool(const char *text, bool *out)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(text, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(text, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_long(const char *text, long *out)
{
	char *end;
	long v;

	errno = 0;
	/* Base 10 only: "0777" must not silently mean 511. */
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

static bool is_choice(const struct rg_option *o, const char *text)
{
	for (const char *const *c = o->choices; *c; c++)
		if (strcasecmp(*c, text) == 0)
			return true;
	return false;
}

/* Print o's word list as "a, b or c". */
static void print_choices(FILE *out, const struct rg_option *o)
{
	for (const char *const *c = o->choices; *c; c++)
		fprintf(out, "%s%s", *c, !c[1] ? "" : !c[2] ? " or " : ", ");
}

static int parse_double(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || v != v /* NaN */)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Check text against o's row and store it into config; prints why not.
 * origin names where the value came from, for the message. */
static int set_value(const struct rg_option *o, void *config, const char *text,
		     const char *origin)
{
	void *value = value_of(o, config);

	switch (o->type) {
	case RG_OPT_STRING: {
		char *copy;

		if (o->choices && !is_choice(o, text)) {
			fprintf(stderr, "%s: --%s must be ", origin, o->name);
			print_choices(stderr, o);
			fprintf(stderr, ", not \"%s\"\n", text);
			return -EINVAL;
		}
		copy = keep_string(text);
		if (!copy) {
			fprintf(stderr, "%s: out of memory\n", origin);
			return -ENOMEM;
		}
		*(char **)value = copy;
		return 0;
	}
	case RG_OPT_INT: {
		long v;

		if (parse_long(text, &v) < 0) {
			fprintf(stderr, "%s: --%s wants an integer, got \"%s\"\n", origin,
				o->name, text);
			return -EINVAL;
		}
		if (v < o->min || v > o->max) {
			fprintf(stderr, "%s: --%s=%ld is outside %ld..%ld\n", origin, o->name, v,
				o->min, o->max);
			return -ERANGE;
		}
		*(long *)value = v;
		return 0;
	}
	case RG_OPT_DOUBLE: {
		double v;

		if (parse_double(text, &v) < 0) {
			fprintf(stderr, "%s: --%s wants a number, got \"%s\"\n", origin, o->name,
				text);
			return -EINVAL;
		}
		if (v < o->dmin || v > o->dmax) {
			fprintf(stderr, "%s: --%s=%g is outside %g..%g\n", origin, o->name, v,
				o->dmin, o->dmax);
			return -ERANGE;
		}
		*(double *)value = v;
		return 0;
	}
	case RG_OPT_BOOL:
		if (parse_bool(text, (bool *)value) == 0)
			return 0;
		fprintf(stderr, "%s: --%s wants true or false, got \"%s\"\n", origin, o->name,
			text);
		return -EINVAL;
	}
	return -EINVAL;
}

struct ini_state {
	const struct rg_option *opts;
	void *config;
	const char *section;
	const char *path;
	int error;
};

/* libinih handler: nonzero to go on, 0 to stop with an error at this line. */
static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
	struct ini_state *st = user;
	const struct rg_option *o;
	char origin[512];

	if (strcmp(section, st->section) != 0)
		return 1; /* another process's section */
	snprintf(origin, sizeof(origin), "%s [%s]", st->path, section);
	o = find_option(st->opts, name, strlen(name));
	if (!o) {
		fprintf(stderr, "%s: unknown key \"%s\"\n", origin, name);
		st->error = -EINVAL;
		return 0;
	}
	if (set_value(o, st->config, value, origin) < 0) {
		st->error = -EINVAL;
		return 0;
	}
	return 1;
}

static int load_ini(const struct rg_option *opts, void *config, const char *section,
		    const char *path)
{
	struct ini_state st = { .opts = opts, .config = config, .section = section, .path = path };
	int rc = ini_parse(path, on_ini_entry, &st);

	if (rc == -1) {
		fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
		return -ENOENT;
	}
	if (rc != 0 && st.error == 0) {
		/* libinih reports the first line it could not parse. */
		fprintf(stderr, "%s:%d: syntax error\n", path, rc);
		return -EINVAL;
	}
	return st.error;
}

/* What o accepts and its default, for --help. */
static void print_accepts(const struct rg_option *o)
{
	switch (o->type) {
	case RG_OPT_STRING:
		printf(" (");
		if (o->choices) {
			print_choices(stdout, o);
			printf("; ");
		}
		printf("default: \"%s\")", o->def_text ? o->def_text : "");
		break;
	case RG_OPT_INT:
		printf(" (%ld..%ld; default: %ld)", o->min, o->max, o->def);
		break;
	case RG_OPT_DOUBLE:
		printf(" (%g..%g; default: %g)", o->dmin, o->dmax, o->ddef);
		break;
	case RG_OPT_BOOL:
		printf(" (default: %s)", o->def ? "true" : "false");
		break;
	}
}

static void print_usage(const struct rg_option *opts, const char *section,
			const char *usage_line)
{
	static const char *const metavar[] = {
		[RG_OPT_STRING] = "=TEXT", [RG_OPT_INT] = "=N", [RG_OPT_BOOL] = "[=BOOL]",
		[RG_OPT_DOUBLE] = "=X",
	};

	printf("%s\n\noptions (also read from section [%s] of --config FILE;"
	       " flags override the file):\n", usage_line, section);
	printf("  %-28s %s\n", "--config=FILE", "read options from this INI file");
	printf("  %-28s %s\n", "--help", "print this help and exit");
	for (const struct rg_option *o = opts; o->name; o++) {
		char flag[128];

		snprintf(flag, sizeof(flag), "--%s%s", o->name, metavar[o->type]);
		printf("  %-28s %s", flag, o->help ? o->help : "");
		print_accepts(o);
		printf("\n");
	}
}

/*
 * Split argv[*i] ("--name" or "--name=value") and find its value, which
 * may be the next argument; advances *i past what it used. *value is NULL
 * for a bare BOOL flag. Returns the option, or NULL after printing why.
 */
static const struct rg_option *take_flag(const struct rg_option *opts, int argc,
					 char **argv, int *i, const char **value)
{
	const char *arg = argv[*i];
	const char *name = arg + 2;
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct rg_option *o = find_option(opts, name, len);

	if (!o) {
		fprintf(stderr, "unknown option: %s (see --help)\n", arg);
		return NULL;
	}
	if (eq) {
		*value = eq + 1;
	} else if (o->type == RG_OPT_BOOL) {
		*value = NULL;
	} else if (*i + 1 < argc) {
		*value = argv[++*i];
	} else {
		fprintf(stderr, "option --%s needs a value\n", o->name);
		return NULL;
	}
	return o;
}

static bool is_flag(const char *arg, const char *name)
{
	size_t len = strlen(name);

	return strncmp(arg, "--", 2) == 0 && strncmp(arg + 2, name, len) == 0 &&
	       (arg[2 + len] == '\0' || arg[2 + len] == '=');
}

void rg_options_defaults(const struct rg_option *opts, void *config)
{
	for (const struct rg_option *o = opts; o->name; o++) {
		void *value = value_of(o, config);

		switch (o->type) {
		case RG_OPT_STRING:
			/* Never written through: replacements are new copies. */
			*(char **)value = (char *)(o->def_text ? o->def_text : "");
			break;
		case RG_OPT_INT:
			*(long *)value = o->def;
			break;
		case RG_OPT_BOOL:
			*(bool *)value = o->def != 0;
			break;
		case RG_OPT_DOUBLE:
			*(double *)value = o->ddef;
			break;
		}
	}
}

int rg_options_parse(const struct rg_option *opts, void *config, const char *ini_section,
		     const char *usage_line, int argc, char **argv)
{
	const char *ini_path = NULL;

	rg_options_defaults(opts, config);
	/* Pass 1: --help and --config, wherever they are. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			print_usage(opts, ini_section, usage_line);
			return 1;
		}
		if (is_flag(argv[i], "config")) {
			const char *eq = strchr(argv[i], '=');

			if (eq) {
				ini_path = eq + 1;
			} else if (i + 1 < argc) {
				ini_path = argv[++i];
			} else {
				fprintf(stderr, "option --config needs a file\n");
				return -1;
			}
		}
	}
	if (ini_path && load_ini(opts, config, ini_section, ini_path) < 0)
		return -1;

	/* Pass 2: every other flag, in order; the last one wins. */
	for (int i = 1; i < argc; i++) {
		const struct rg_option *o;
		const char *value;

		if (is_flag(argv[i], "config")) {
			if (!strchr(argv[i], '='))
				i++;
			continue;
		}
		if (strncmp(argv[i], "--", 2) != 0 || argv[i][2] == '\0') {
			fprintf(stderr, "unexpected argument: %s (see --help)\n", argv[i]);
			return -1;
		}
		o = take_flag(opts, argc, argv, &i, &value);
		if (!o)
			return -1;
		if (!value) {
			*(bool *)value_of(o, config) = true;
			continue;
		}
		if (set_value(o, config, value, "command line") < 0)
			return -1;
	}
	return 0;
}

int rg_options_load(const struct rg_option *opts, void *config,
		    const struct rg_common_config *common, const char *process, int argc,
		    char **argv)
{
	char usage[128];
	enum rg_log_level level;
	int rc;

	snprintf(usage, sizeof(usage), "usage: %s [--config FILE] [options]", process);
	rc = rg_options_parse(opts, config, process, usage, argc, argv);
	if (rc != 0)
		return rc;
	if (rg_log_level_parse(common->log_level, &level) < 0) {
		/* Only a table whose log-level row lacks the word list gets here. */
		fprintf(stderr, "%s: unknown --log-level \"%s\"\n", process, common->log_level);
		return -1;
	}
	rg_log_init(process, level);
	return 0;
}

bool rg_options_less(const char *lower_name, long lower, const char *higher_name, long higher)
{
	if (lower < higher)
		return true;
	RG_ERROR("--%s (%ld) must be more than --%s (%ld)", higher_name, higher, lower_name,
		 lower);
	return false;
}

bool rg_link_options_valid(const struct rg_link_options *o)
{
	if (!rg_options_less("heartbeat-ms", o->heartbeat_ms, "dead-ms", o->dead_ms))
		return false;
	/* Zero when the process accepts no links (the rows are absent). */
	if (o->max_pending_links_per_addr > o->max_pending_links) {
		RG_ERROR("--max-pending-links-per-addr must not be above --max-pending-links");
		return false;
	}
	return true;
}

/* One HOST:PORT in [start, end) into *out; 0 or -EINVAL. */
static int host_port_parse(const char *start, const char *end, struct rg_host_port *out)
{
	const char *colon = end;
	const char *host = start;
	size_t host_len;
	char *stop;
	long port;

	while (colon > start && colon[-1] != ':')
		colon--;
	if (colon == start || colon == end)
		return -EINVAL; /* no ':', or no port after it */
	host_len = (size_t)(colon - 1 - start);
	if (host_len >= 2 && host[0] == '[' && host[host_len - 1] == ']') {
		host++;
		host_len -= 2;
	}
	if (host_len == 0 || host_len >= sizeof out->host)
		return -EINVAL;
	port = strtol(colon, &stop, 10);
	if (colon[0] < '0' || colon[0] > '9' || stop != end || port < 1 || port > 65535)
		return -EINVAL;
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = (uint16_t)port;
	return 0;
}

int rg_host_ports_parse(const char *list, struct rg_host_port *out, unsigned max)
{
	const char *p = list;
	unsigned n = 0;

	for (;;) {
		const char *end = strchr(p, ',');

		if (!end)
			end = p + strlen(p);
		if (n == max || host_port_parse(p, end, &out[n]) < 0)
			return -EINVAL;
		n++;
		if (!*end)
			return (int)n;
		p = end + 1;
	}
}

int rg_host_ports_resolve(const char *list, const char *list_name, const char *host,
			  const char *host_name, uint16_t port, struct rg_host_port *out,
			  unsigned max)
{
	int n;

	if (!list || !list[0]) {
		n = snprintf(out[0].host, sizeof(out[0].host), "%s", host);
		if (n < 0 || (size_t)n >= sizeof(out[0].host)) {
			RG_ERROR("--%s is too long", host_name);
			return -EINVAL;
		}
		out[0].port = port;
		return 1;
	}
	n = rg_host_ports_parse(list, out, max);
	if (n < 0)
		RG_ERROR("--%s must be HOST:PORT[,HOST:PORT...] with ports 1..65535, at most %u "
			 "of them, not \"%s\"", list_name, max, list);
	return n;
}

int rg_port_file_write(const char *path, uint16_t port)
{
	char tmp[4096];
	FILE *f;
	int err = 0;

	if (!path || !path[0])
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		err = -ENAMETOOLONG;
		goto out_log;
	}
	f = fopen(tmp, "w");
	if (!f) {
		err = -errno;
		goto out_log;
	}
	fprintf(f, "%u\n", (unsigned)port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		err = -errno;
		unlink(tmp);
	}
out_log:
	if (err < 0)
		RG_ERROR("cannot write the port file %s: %s", path, strerror(-err));
	return err;
}
