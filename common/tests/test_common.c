/*
 * test_common.c: unit tests of the common library (calls table, options,
 * log level names, protobuf arena, metrics, the links' frame seal). Each case is run as
 * its own CTest test: `test_common <case>`.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "rg/calls.h"
#include "rg/link_auth.h"
#include "rg/link_seal.h"
#include "rg/log.h"
#include "rg/metrics.h"
#include "rg/options.h"
#include "rg/pb_arena.h"
#include "rg/throttle.h"
#include "internal.pb-c.h"
#include "rg/peer_clock.h"

/* ---- calls --------------------------------------------------------------- */

struct outcome {
	int runs;
	int status;
	const void *reply;
};

static void record(void *ctx, int status, const void *reply)
{
	struct outcome *o = ctx;

	o->runs++;
	o->status = status;
	o->reply = reply;
}

static void calls_complete(void)
{
	struct rg_calls *c = rg_calls_create();
	struct outcome a = { 0 }, b = { 0 };
	int reply = 42;
	uint64_t ia = rg_calls_add(c, 1000, record, &a);
	uint64_t ib = rg_calls_add(c, 2000, record, &b);

	CHECK(ia != 0 && ib != 0 && ia != ib);
	CHECK(rg_calls_pending(c) == 2);
	CHECK(rg_calls_complete(c, ib, &reply));
	CHECK(b.runs == 1 && b.status == 0 && b.reply == &reply);
	CHECK(a.runs == 0);
	CHECK(!rg_calls_complete(c, ib, &reply)); /* already done */
	CHECK(!rg_calls_complete(c, 0, &reply));
	CHECK(!rg_calls_complete(c, 999, &reply));
	CHECK(b.runs == 1);
	CHECK(rg_calls_pending(c) == 1);
	{
		/* A cancelled call never runs its callback. */
		struct outcome x = { 0 };
		uint64_t ix = rg_calls_add(c, 10, record, &x);

		CHECK(rg_calls_cancel(c, ix));
		CHECK(!rg_calls_cancel(c, ix));
		CHECK(!rg_calls_complete(c, ix, &reply));
		rg_calls_expire(c, 100);
		CHECK(x.runs == 0);
		CHECK(rg_calls_pending(c) == 1);
	}
	rg_calls_destroy(c);
	CHECK(a.runs == 1 && a.status == -ECANCELED && a.reply == NULL);
}

static void calls_expire(void)
{
	struct rg_calls *c = rg_calls_create();
	struct outcome o[5] = { 0 };
	const uint64_t deadlines[5] = { 500, 100, 300, 100, 900 };
	uint64_t ids[5];

	for (int i = 0; i < 5; i++)
		ids[i] = rg_calls_add(c, deadlines[i], record, &o[i]);
	rg_calls_expire(c, 99);
	CHECK(rg_calls_pending(c) == 5);
	rg_calls_expire(c, 300);
	CHECK(o[1].runs == 1 && o[1].status == -ETIMEDOUT);
	CHECK(o[3].runs == 1 && o[3].status == -ETIMEDOUT);
	CHECK(o[2].runs == 1 && o[2].status == -ETIMEDOUT);
	CHECK(o[0].runs == 0 && o[4].runs == 0);
	CHECK(rg_calls_pending(c) == 2);
	/* A reply after the timeout is dropped. */
	CHECK(!rg_calls_complete(c, ids[2], NULL));
	CHECK(o[2].runs == 1);
	CHECK(rg_calls_complete(c, ids[4], "x"));
	rg_calls_expire(c, UINT64_MAX);
	CHECK(o[0].runs == 1 && o[0].status == -ETIMEDOUT);
	CHECK(o[4].runs == 1 && o[4].status == 0);
	CHECK(rg_calls_pending(c) == 0);
	rg_calls_destroy(c);
}

/* A callback that issues a new call on the table it was called from. */
struct reissue {
	struct rg_calls *c;
	int runs;
	struct outcome second;
};

static void reissue_once(void *ctx, int status, const void *reply)
{
	struct reissue *r = ctx;

	(void)status;
	(void)reply;
	if (r->runs++ == 0)
		CHECK(rg_calls_add(r->c, 50, record, &r->second) != 0);
}

static void calls_fail_all(void)
{
	struct rg_calls *c = rg_calls_create();
	struct outcome o[100] = { 0 };
	struct reissue r = { .c = c };

	for (int i = 0; i < 100; i++)
		CHECK(rg_calls_add(c, (uint64_t)(1000 - i), record, &o[i]) != 0);
	CHECK(rg_calls_add(c, 10, reissue_once, &r) != 0);
	rg_calls_fail_all(c, -ENOTCONN);
	for (int i = 0; i < 100; i++)
		CHECK(o[i].runs == 1 && o[i].status == -ENOTCONN);
	CHECK(r.runs == 1);
	/* The call added from inside the callback is still pending. */
	CHECK(rg_calls_pending(c) == 1);
	CHECK(r.second.runs == 0);
	rg_calls_expire(c, 50);
	CHECK(r.second.runs == 1 && r.second.status == -ETIMEDOUT);
	rg_calls_destroy(c);
}

/* Many calls, completed in a scrambled order: exercises hash growth and
 * heap removal from the middle. */
static void calls_many(void)
{
	enum { N = 5000 };
	static struct outcome o[N];
	static uint64_t ids[N];
	struct rg_calls *c = rg_calls_create();

	for (int i = 0; i < N; i++)
		ids[i] = rg_calls_add(c, (uint64_t)((i * 7919) % N), record, &o[i]);
	for (int i = 0; i < N; i += 2)
		CHECK(rg_calls_complete(c, ids[(i * 31) % N], NULL) || o[(i * 31) % N].runs);
	rg_calls_expire(c, UINT64_MAX);
	for (int i = 0; i < N; i++)
		CHECK(o[i].runs == 1);
	CHECK(rg_calls_pending(c) == 0);
	rg_calls_destroy(c);
}

/* ---- options ------------------------------------------------------------- */

struct opt_vars {
	char *host;
	long port;
	bool verbose;
	char *name;
	char *mode;
	double rate;
	struct rg_common_config common;
};

static const char *const modes[] = { "full", "normal", NULL };

static const struct rg_option opts[] = {
	RG_OPTION_STRING("host", struct opt_vars, host, "127.0.0.1", NULL, "address"),
	RG_OPTION_INT("port", struct opt_vars, port, 7701, 0, 65535, "port"),
	RG_OPTION_BOOL("verbose", struct opt_vars, verbose, false, "chatty"),
	RG_OPTION_STRING("name", struct opt_vars, name, "default-name", NULL, "a name"),
	RG_OPTION_STRING("mode", struct opt_vars, mode, "full", modes, "how"),
	RG_OPTION_DOUBLE("rate", struct opt_vars, rate, 0.5, 0, 1000, "how often"),
	RG_COMMON_OPTIONS(struct opt_vars, common, 2, 7781),
	{ 0 },
};

static int parse(struct opt_vars *v, int argc, char **argv)
{
	/* Garbage first: parsing must set every field from the rows. */
	memset(v, 0x5a, sizeof(*v));
	return rg_options_parse(opts, v, "gamesrv", "usage: test", argc, argv);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

/* A temporary INI file holding text; its --config=PATH flag in flag. */
static void temp_ini(char path[32], char flag[64], const char *text)
{
	int fd;

	strcpy(path, "/tmp/rg-test-options-XXXXXX");
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	write_file(path, text);
	snprintf(flag, 64, "--config=%s", path);
}

static void options_defaults(void)
{
	struct opt_vars v;
	char *argv[] = { "prog", NULL };

	CHECK(parse(&v, 1, argv) == 0);
	CHECK(strcmp(v.host, "127.0.0.1") == 0 && v.port == 7701 && !v.verbose);
	CHECK(strcmp(v.name, "default-name") == 0 && strcmp(v.mode, "full") == 0);
	CHECK(v.rate == 0.5);
	/* The shared rows, with this process's defaults for loops and admin. */
	CHECK(v.common.loops == 2 && v.common.admin_port == 7781);
	CHECK(strcmp(v.common.engine, "") == 0 && strcmp(v.common.log_level, "info") == 0);
	CHECK(strcmp(v.common.admin_host, "127.0.0.1") == 0);
	CHECK(strcmp(v.common.secret_file, "") == 0 && !v.common.insecure_no_auth);
	CHECK(strcmp(v.common.port_file, "") == 0);
	{
		/* rg_options_defaults fills the same values without a command line. */
		struct opt_vars d;

		memset(&d, 0x5a, sizeof(d));
		rg_options_defaults(opts, &d);
		CHECK(d.port == 7701 && d.common.admin_port == 7781 && !d.verbose);
		CHECK(strcmp(d.common.log_level, "info") == 0);
	}
}

static void options_flags(void)
{
	struct opt_vars v;
	char *argv[] = { "prog", "--host=0.0.0.0", "--port", "9000", "--verbose", "--name", "x",
			 "--port=9001", "--MODE=x", NULL };

	/* Names are case-sensitive: --MODE is unknown. */
	CHECK(parse(&v, 9, argv) == -1);
	CHECK(parse(&v, 8, argv) == 0);
	CHECK(strcmp(v.host, "0.0.0.0") == 0);
	CHECK(v.port == 9001); /* the last flag wins */
	CHECK(v.verbose);
	CHECK(strcmp(v.name, "x") == 0);
	{
		char *argv2[] = { "prog", "--port=07701", "--mode", "NORMAL", "--admin_port=0",
				  "--log-level=debug", "--loops=255", "--port-file", "/tmp/p",
				  "--insecure-no-auth", "--rate=1e2", NULL };

		CHECK(parse(&v, 11, argv2) == 0);
		CHECK(v.rate == 100);
		CHECK(v.port == 7701); /* decimal, not octal */
		CHECK(strcmp(v.mode, "NORMAL") == 0); /* words match in any case */
		CHECK(v.common.admin_port == 0 && v.common.loops == NET_LOOPS_MAX);
		CHECK(strcmp(v.common.log_level, "debug") == 0);
		CHECK(strcmp(v.common.port_file, "/tmp/p") == 0 && v.common.insecure_no_auth);
	}
}

static void options_ini_then_flags(void)
{
	struct opt_vars v;
	char path[32], config_flag[64];

	temp_ini(path, config_flag,
		 "; cluster file\n[dbproxy]\nport = 1\nunknown_there = 1\nloops = 999\n"
		 "[gamesrv]\nhost = 10.0.0.1\nport = 8000\nverbose = yes\nname = from-file\n"
		 "admin_port = 9100\nloops = 3\n");
	{
		/* The flag comes before --config: the file is still applied first. */
		char *argv[] = { "prog", "--name=from-flag", "--loops=4", config_flag, NULL };

		CHECK(parse(&v, 4, argv) == 0);
	}
	CHECK(strcmp(v.host, "10.0.0.1") == 0);
	CHECK(v.port == 8000);
	CHECK(v.verbose);
	CHECK(strcmp(v.name, "from-flag") == 0);
	CHECK(v.common.admin_port == 9100); /* a shared row from the file */
	CHECK(v.common.loops == 4);          /* ... overridden by a flag */
	CHECK(strcmp(v.mode, "full") == 0);  /* in neither: the row's default */
	{
		char *argv[] = { "prog", "--config", path, "--verbose=false", NULL };

		CHECK(parse(&v, 4, argv) == 0);
		CHECK(!v.verbose && v.port == 8000 && v.common.loops == 3);
	}
	unlink(path);
}

static void options_errors(void)
{
	struct opt_vars v;
	/* Each of these alone is an error: unknown, malformed, out of range
	 * (the row's and libnet's), a word not in the list, missing value,
	 * positional, unreadable config. */
	static const char *const bad[] = {
		"--nope=1",
		"--port=12x",
		"--port=0x10",
		"--port=99999999999999999999",
		"--port=65536",
		"--port=-1",
		"--admin-port=70000",
		"--loops=256",
		"--loops=-1",
		"--mode=fast",
		"--rate=1001",
		"--rate=nan",
		"--rate=-0.1",
		"--rate=1x",
		"--log-level=loud",
		"--port",
		"--verbose=maybe",
		"positional",
		"--config=/nonexistent/rg.ini",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "prog", (char *)bad[i], NULL };

		if (parse(&v, 2, argv) != -1) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			CHECK(false);
		}
	}
	{
		/* The file goes through the same rows: unknown key, malformed,
		 * out of range, not a listed word, syntax. */
		static const char *const bad_files[] = {
			"[gamesrv]\nport = 1\ntypo = 2\n",
			"[gamesrv]\nport = abc\n",
			"[gamesrv]\nport = 65536\n",
			"[gamesrv]\nloops = 256\n",
			"[gamesrv]\nmode = fast\n",
			"[gamesrv\nport = 1\n",
		};

		for (size_t i = 0; i < sizeof(bad_files) / sizeof(bad_files[0]); i++) {
			char path[32], config_flag[64];
			char *argv[] = { "prog", config_flag, NULL };

			temp_ini(path, config_flag, bad_files[i]);
			if (parse(&v, 2, argv) != -1) {
				fprintf(stderr, "accepted the file: %s\n", bad_files[i]);
				CHECK(false);
			}
			unlink(path);
		}
	}
}

static void options_help(void)
{
	struct opt_vars v;
	char *argv[] = { "prog", "--port=5", "--help", "--nope", NULL };
	char path[] = "/tmp/rg-test-help-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
	char text[8192];
	ssize_t n;

	CHECK(fd >= 0 && saved >= 0);
	/* --help wins over everything else, even an unknown flag; its text is
	 * generated from the rows: range, default, word list. */
	fflush(stdout);
	CHECK(dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
	CHECK(parse(&v, 4, argv) == 1);
	fflush(stdout);
	CHECK(dup2(saved, STDOUT_FILENO) == STDOUT_FILENO);
	close(saved);
	n = pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	CHECK(n > 0);
	text[n] = '\0';
	CHECK(v.port == 7701);
	CHECK(strstr(text, "usage: test") != NULL);
	CHECK(strstr(text, "--port=N") && strstr(text, "(0..65535; default: 7701)"));
	CHECK(strstr(text, "--mode=TEXT") && strstr(text, "(full or normal; default: \"full\")"));
	CHECK(strstr(text, "--loops=N") && strstr(text, "(0..255; default: 2)"));
	CHECK(strstr(text, "debug, info, warn or error"));
	CHECK(strstr(text, "--verbose[=BOOL]") && strstr(text, "(default: false)"));
	CHECK(strstr(text, "--rate=X") && strstr(text, "(0..1000; default: 0.5)"));
}

/* The process start: parse, then logging at --log-level; rules between rows. */
static void options_load(void)
{
	struct opt_vars v;
	char *argv[] = { "prog", "--log-level=warn", NULL };
	char *bad[] = { "prog", "--port=x", NULL };

	memset(&v, 0x5a, sizeof(v));
	CHECK(rg_options_load(opts, &v, &v.common, "gamesrv", 2, argv) == 0);
	CHECK(!rg_log_enabled(RG_LOG_INFO) && rg_log_enabled(RG_LOG_WARN));
	CHECK(rg_options_load(opts, &v, &v.common, "gamesrv", 2, bad) == -1);
	CHECK(rg_options_less("heartbeat-ms", 1000, "dead-ms", 1001));
	CHECK(!rg_options_less("heartbeat-ms", 1000, "dead-ms", 1000));
}

/* --port-file: written whole (through a rename), or not at all. */
static void options_port_file(void)
{
	char path[64], tmp[80], text[16] = { 0 };
	FILE *f;

	CHECK(rg_port_file_write("", 1234) == 0); /* unset: nothing to do */
	CHECK(rg_port_file_write(NULL, 1234) == 0);
	snprintf(path, sizeof(path), "/tmp/rg-test-port-%ld", (long)getpid());
	CHECK(rg_port_file_write(path, 40123) == 0);
	f = fopen(path, "r");
	CHECK(f && fgets(text, sizeof(text), f));
	fclose(f);
	CHECK(strcmp(text, "40123\n") == 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	CHECK(access(tmp, F_OK) != 0); /* the temporary file was renamed */
	unlink(path);
	CHECK(rg_port_file_write("/nonexistent-dir/port", 1) == -ENOENT);
}

/* HOST:PORT lists (--gamesrvs): every entry whole, or the list refused. */
static void options_host_ports(void)
{
	struct rg_host_port hp[2];
	static const char *const bad[] = {
		"", "a", "a:", ":1", "a:0", "a:65536", "a:1x", "a: 1", "a:+1", "a:1,", ",a:1",
		"a:1,b:2,c:3", "[]:1",
	};

	CHECK(rg_host_ports_parse("example.org:7701", hp, 2) == 1);
	CHECK(strcmp(hp[0].host, "example.org") == 0 && hp[0].port == 7701);
	CHECK(rg_host_ports_parse("10.0.0.1:1,[::1]:65535", hp, 2) == 2);
	CHECK(strcmp(hp[0].host, "10.0.0.1") == 0 && hp[0].port == 1);
	CHECK(strcmp(hp[1].host, "::1") == 0 && hp[1].port == 65535);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(rg_host_ports_parse(bad[i], hp, 2) == -EINVAL);
}

/* --gamesrvs / --dbproxies when set, else the single host/port pair. */
static void options_host_ports_resolve(void)
{
	struct rg_host_port hp[2];
	char long_host[300];

	CHECK(rg_host_ports_resolve("", "gamesrvs", "10.0.0.9", "gamesrv-host", 7701, hp, 2) == 1);
	CHECK(strcmp(hp[0].host, "10.0.0.9") == 0 && hp[0].port == 7701);
	CHECK(rg_host_ports_resolve(NULL, "gamesrvs", "h", "gamesrv-host", 1, hp, 2) == 1);
	CHECK(strcmp(hp[0].host, "h") == 0 && hp[0].port == 1);
	/* The list wins over the pair. */
	CHECK(rg_host_ports_resolve("a:1,[::1]:2", "gamesrvs", "h", "gamesrv-host", 3, hp, 2) == 2);
	CHECK(strcmp(hp[0].host, "a") == 0 && hp[0].port == 1);
	CHECK(strcmp(hp[1].host, "::1") == 0 && hp[1].port == 2);
	/* Refused (and logged): a bad list, too many entries, a host too long. */
	CHECK(rg_host_ports_resolve("a:0", "gamesrvs", "h", "gamesrv-host", 3, hp, 2) == -EINVAL);
	CHECK(rg_host_ports_resolve("a:1,b:2,c:3", "gamesrvs", "h", "gamesrv-host", 3, hp, 2) ==
	      -EINVAL);
	memset(long_host, 'x', sizeof(long_host) - 1);
	long_host[sizeof(long_host) - 1] = '\0';
	CHECK(rg_host_ports_resolve("", "gamesrvs", long_host, "gamesrv-host", 3, hp, 2) ==
	      -EINVAL);
}

/* ---- log, arena ----------------------------------------------- */

static void log_levels(void)
{
	enum rg_log_level level = RG_LOG_ERROR;

	CHECK(rg_log_level_parse("debug", &level) == 0 && level == RG_LOG_DEBUG);
	CHECK(rg_log_level_parse("INFO", &level) == 0 && level == RG_LOG_INFO);
	CHECK(rg_log_level_parse("Warn", &level) == 0 && level == RG_LOG_WARN);
	CHECK(rg_log_level_parse("error", &level) == 0 && level == RG_LOG_ERROR);
	CHECK(rg_log_level_parse("loud", &level) == -EINVAL && level == RG_LOG_ERROR);
	rg_log_init("test", RG_LOG_WARN);
	CHECK(!rg_log_enabled(RG_LOG_INFO));
	CHECK(rg_log_enabled(RG_LOG_ERROR));
	{
		/* A line longer than the buffer is cut, not overflowed. */
		char big[5000];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		RG_WARN("long line %s", big);
	}
}

static void pb_arena_bounded(void)
{
	struct rg_pb_arena arena;
	void *p, *q;

	rg_pb_arena_init(&arena, 10000);
	p = arena.allocator.alloc(arena.allocator.allocator_data, 100);
	q = arena.allocator.alloc(arena.allocator.allocator_data, 5000);
	CHECK(p && q && p != q);
	memset(p, 1, 100);
	memset(q, 2, 5000);
	CHECK(((uintptr_t)p % 16) == 0 && ((uintptr_t)q % 16) == 0);
	/* Past the cap: refused, not grown. */
	CHECK(arena.allocator.alloc(arena.allocator.allocator_data, 6000) == NULL);
	CHECK(arena.allocator.alloc(arena.allocator.allocator_data, SIZE_MAX) == NULL);
	rg_pb_arena_reset(&arena);
	CHECK(arena.used == 0);
	CHECK(arena.allocator.alloc(arena.allocator.allocator_data, 9000) != NULL);
	rg_pb_arena_fini(&arena);
}

static void pb_budget_bounded(void)
{
	struct rg_pb_budget budget;
	ProtobufCAllocator *a = &budget.allocator;
	void *p, *q;

	rg_pb_budget_init(&budget, 1000);
	p = a->alloc(a->allocator_data, 600);
	CHECK(p != NULL);
	CHECK(a->alloc(a->allocator_data, 401) == NULL);
	q = a->alloc(a->allocator_data, 400);
	CHECK(q != NULL);
	CHECK(a->alloc(a->allocator_data, 1) == NULL);
	a->free(a->allocator_data, p);
	a->free(a->allocator_data, q);
}

/* Pack a GateToGame carrying a ClientMessage into buf; returns its length. */
static size_t pack_request(uint8_t *buf, Ringgate__Client__ClientMessage *cm)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientRequest req = RINGGATE__INTERNAL__CLIENT_REQUEST__INIT;

	req.session = 7;
	req.message = cm;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST;
	out.request = &req;
	return ringgate__internal__gate_to_game__pack(&out, buf);
}

/*
 * A peer whose clock reads 1,000,000 ms more than ours: the first stamp
 * sets the mark, a quicker one lowers it, and a request that sat 3 s in a
 * buffer (the receiver stopped) is 3 s old, so its 2 s deadline is past.
 */
static void peer_clock_age(void)
{
	struct rg_peer_clock pc;
	const uint64_t skew = 1000000;
	uint64_t deadline;

	rg_peer_clock_init(&pc);
	CHECK(rg_peer_clock_deadline(&pc, 0, 0, 5000) == 0);       /* no deadline */
	CHECK(rg_peer_clock_deadline(&pc, 0, 2000, 5000) == 7000); /* unstamped */
	CHECK(rg_peer_clock_deadline(&pc, 5000 + skew - 2, 2000, 5000) == 7000);
	/* 1 ms of transit less than the first: the first had 1 ms in it. */
	CHECK(rg_peer_clock_deadline(&pc, 6000 + skew - 1, 2000, 6000) == 8000);
	CHECK(rg_peer_clock_deadline(&pc, 6100 + skew, 2000, 6101) == 8101);
	/* Sent at 7000 (ours), read at 10000: 3 s old, deadline 9000 passed. */
	CHECK(rg_peer_clock_deadline(&pc, 7000 + skew - 1, 2000, 10000) == 9000);
	/* Long past: still in the past, never 0 (which means "none"). */
	deadline = rg_peer_clock_deadline(&pc, 1 + skew, 10, 9000000);
	CHECK(deadline != 0 && deadline < 9000000);
	/* Drift: after 100 s without a quicker stamp, a request that looks
	 * 20 ms old (200 ppm of 100 s) counts as fresh. */
	rg_peer_clock_init(&pc);
	CHECK(rg_peer_clock_deadline(&pc, 1000 + skew, 500, 1000) == 1500);
	CHECK(rg_peer_clock_deadline(&pc, 101000 + skew - 20, 500, 101000) == 101500);
}

/* A NUL inside a string field is found at any depth, by the field's own
 * length; a NUL in a bytes field (a password) is not a finding. */
static void pb_find_nul(void)
{
	const ProtobufCMessageDescriptor *top = &ringgate__internal__gate_to_game__descriptor;
	Ringgate__Client__ClientMessage cm = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
	Ringgate__Client__LoginRequest login = RINGGATE__CLIENT__LOGIN_REQUEST__INIT;
	static const uint8_t pw[] = { 'a', 'b', 0, 'c' };
	const ProtobufCFieldDescriptor *f;
	uint8_t buf[256];
	size_t len;

	cm.seq = 1;
	cm.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN;
	cm.login = &login;
	login.name = "bob";
	login.password.data = (uint8_t *)pw;
	login.password.len = sizeof(pw);
	len = pack_request(buf, &cm);
	CHECK(rg_pb_find_nul(top, buf, len) == NULL);
	/* protobuf-c packs a char * string with strlen, so plant the NUL in
	 * the packed bytes: "bob" becomes "b\0b", same length. */
	{
		size_t at = 0;

		while (at + 3 <= len && memcmp(buf + at, "bob", 3) != 0)
			at++;
		CHECK(at + 3 <= len);
		buf[at + 1] = '\0';
	}
	f = rg_pb_find_nul(top, buf, len);
	CHECK(f != NULL && strcmp(f->name, "name") == 0);
	/* Malformed bytes are not a finding: the unpack refuses them. */
	CHECK(rg_pb_find_nul(top, buf, len - 1) == NULL);
	CHECK(rg_pb_find_nul(top, (const uint8_t *)"\xff\xff", 2) == NULL);
}

/* ---- throttles ------------------------------------------------------------ */

/* A bucket holds `rate` tokens and refills exactly, slow rates included. */
static void throttle_bucket(void)
{
	struct rg_bucket b = { 0 };
	uint64_t wait = 0;

	for (int i = 0; i < 3; i++)
		CHECK(rg_bucket_take(&b, 3, 3600000, 1000, NULL));
	CHECK(!rg_bucket_take(&b, 3, 3600000, 1000, &wait));
	CHECK(wait == 1200000); /* one token per 20 minutes */
	/* Called every millisecond, it still refills (no rounding to 0). */
	for (uint64_t now = 1001; now < 1000 + 1200000; now += 997)
		CHECK(!rg_bucket_take(&b, 3, 3600000, now, NULL));
	CHECK(rg_bucket_take(&b, 3, 3600000, 1000 + 1200000, NULL));
	CHECK(rg_bucket_take(&b, 0, 0, 5, NULL)); /* rate 0: no limit */
}

/* Failures past the free ones back off, doubling to the cap; a success
 * clears them; attempts are rate limited and quota is peeked, then used. */
static void throttle_backoff(void)
{
	struct rg_throttle_config cfg = {
		.attempt_rate = 2, .attempt_period_ms = 1000,
		.quota_rate = 1, .quota_period_ms = 60000,
		.free_failures = 3, .max_keys = 16,
	};
	struct rg_throttle *t;
	uint64_t now = 5000, wait = 0;
	bool quota = false;

	CHECK(rg_throttle_create(&cfg, &t) == 0);
	CHECK(rg_throttle_attempt(t, "a", now, &wait, &quota) == 0 && quota);
	CHECK(rg_throttle_attempt(t, "a", now, &wait, NULL) == 0);
	CHECK(rg_throttle_attempt(t, "a", now, &wait, NULL) == -EAGAIN && wait == 500);
	CHECK(rg_throttle_attempt(t, "b", now, &wait, NULL) == 0); /* keys apart */
	rg_throttle_succeeded(t, "a", now, true);
	now += 1000;
	CHECK(rg_throttle_attempt(t, "a", now, &wait, &quota) == 0 && !quota);
	for (int i = 0; i < 3; i++)
		rg_throttle_failed(t, "a", now);
	CHECK(rg_throttle_attempt(t, "a", now, &wait, NULL) == -EBUSY);
	CHECK(wait == RG_BACKOFF_FIRST_MS);
	CHECK(rg_throttle_backing_off(t, "a", now, &wait) && wait == RG_BACKOFF_FIRST_MS);
	CHECK(!rg_throttle_backing_off(t, "b", now, &wait));
	CHECK(!rg_throttle_backing_off(t, "unknown", now, &wait));
	rg_throttle_failed(t, "a", now);
	CHECK(rg_throttle_backing_off(t, "a", now, &wait) && wait == 2 * RG_BACKOFF_FIRST_MS);
	for (int i = 0; i < 20; i++)
		rg_throttle_failed(t, "a", now);
	CHECK(rg_throttle_backing_off(t, "a", now, &wait) && wait == RG_BACKOFF_MAX_MS);
	now += RG_BACKOFF_MAX_MS;
	CHECK(rg_throttle_attempt(t, "a", now, &wait, NULL) == 0);
	rg_throttle_succeeded(t, "a", now, false);
	rg_throttle_failed(t, "a", now);
	CHECK(!rg_throttle_backing_off(t, "a", now, &wait)); /* counted from 0 again */
	/* Failures long past are forgotten. */
	rg_throttle_failed(t, "a", now);
	rg_throttle_failed(t, "a", now);
	CHECK(rg_throttle_backing_off(t, "a", now, &wait));
	CHECK(!rg_throttle_backing_off(t, "a", now + RG_BACKOFF_FORGET_MS, &wait));
	rg_throttle_destroy(t);
}

/* The table never holds more than max_keys: keys worth nothing make room,
 * keys that matter are kept and a new one is refused -ENOSPC. */
static void throttle_bounded(void)
{
	struct rg_throttle_config cfg = {
		.attempt_rate = 1, .attempt_period_ms = 1000, .free_failures = 1, .max_keys = 4,
	};
	struct rg_throttle *t;
	uint64_t wait = 0;
	char key[16];

	CHECK(rg_throttle_create(&cfg, &t) == 0);
	for (int i = 0; i < 4; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK(rg_throttle_attempt(t, key, 100, &wait, NULL) == 0);
	}
	CHECK(rg_throttle_attempt(t, "new", 100, &wait, NULL) == -ENOSPC);
	rg_throttle_failed(t, "k0", 900); /* backs off until 1900 */
	/* A second later k1..k3 are full again (worth nothing); k0 is not. */
	CHECK(rg_throttle_attempt(t, "new", 1100, &wait, NULL) == 0);
	CHECK(rg_throttle_keys(t) == 2);
	CHECK(rg_throttle_attempt(t, "k0", 1100, &wait, NULL) == -EBUSY);
	rg_throttle_destroy(t);
}

/* ---- metrics --------------------------------------------------------------- */

/* Render m; the caller frees the text. */
static char *render(struct rg_metrics *m)
{
	char *text;
	size_t len;

	CHECK(rg_metrics_render(m, &text, &len) == 0);
	CHECK(strlen(text) == len);
	return text;
}

static void metrics_render(void)
{
	struct rg_metrics *m = rg_metrics_create();
	struct rg_counter *c = rg_metrics_counter(m, "x_requests_total", NULL, "Requests");
	struct rg_gauge *g = rg_metrics_gauge(m, "x_link_up", "peer=\"db\"", "Link state");
	char *text;

	rg_counter_add(c, 3);
	rg_counter_add(c, 2);
	rg_gauge_set(g, 1);
	rg_gauge_add(g, -3);
	CHECK(rg_counter_value(c) == 5 && rg_gauge_value(g) == -2);
	text = render(m);
	CHECK(strstr(text, "# HELP x_requests_total Requests\n# TYPE x_requests_total counter\n"
			   "x_requests_total 5\n"));
	CHECK(strstr(text, "# TYPE x_link_up gauge\nx_link_up{peer=\"db\"} -2\n"));
	free(text);
	/* NULL handles are no-ops, for code run without a registry. */
	rg_counter_add(NULL, 1);
	rg_gauge_set(NULL, 1);
	rg_histogram_observe(NULL, 1);
	CHECK(rg_metrics_ok(m));
	rg_metrics_destroy(m);
}

static void metrics_histogram(void)
{
	struct rg_metrics *m = rg_metrics_create();
	struct rg_histogram *h = rg_metrics_histogram(m, "x_batch", NULL, "Batch sizes",
						      (struct rg_buckets){ 1, 4, 1.0 });
	struct rg_histogram *t = rg_metrics_histogram(m, "x_seconds", "op=\"a\"", "Durations",
						      RG_BUCKETS_SECONDS);
	char *text;

	/* bounds 1, 2, 4, 8, +Inf; a value equal to a bound goes in it */
	rg_histogram_observe(h, 0);
	rg_histogram_observe(h, 1);
	rg_histogram_observe(h, 2);
	rg_histogram_observe(h, 3);
	rg_histogram_observe(h, 8);
	rg_histogram_observe(h, 100);
	CHECK(rg_histogram_count(h) == 6);
	rg_histogram_observe(t, 1500000); /* 1.5 ms */
	text = render(m);
	CHECK(strstr(text, "# TYPE x_batch histogram\n"
			   "x_batch_bucket{le=\"1\"} 2\n"
			   "x_batch_bucket{le=\"2\"} 3\n"
			   "x_batch_bucket{le=\"4\"} 4\n"
			   "x_batch_bucket{le=\"8\"} 5\n"
			   "x_batch_bucket{le=\"+Inf\"} 6\n"
			   "x_batch_sum 114\n"
			   "x_batch_count 6\n"));
	CHECK(strstr(text, "x_seconds_bucket{op=\"a\",le=\"0.00128\"} 0\n"
			   "x_seconds_bucket{op=\"a\",le=\"0.00256\"} 1\n"));
	CHECK(strstr(text, "x_seconds_sum{op=\"a\"} 0.0015\nx_seconds_count{op=\"a\"} 1\n"));
	free(text);
	rg_metrics_destroy(m);
}

static void metrics_families(void)
{
	struct rg_metrics *m = rg_metrics_create();
	struct rg_counter *a = rg_metrics_counter(m, "x_calls_total", "call=\"a\"", "Calls");
	struct rg_gauge *other = rg_metrics_gauge(m, "x_other", NULL, "Other");
	struct rg_counter *b = rg_metrics_counter(m, "x_calls_total", "call=\"b\"", "Calls");
	char *text, *first;

	CHECK(a && b && other);
	rg_counter_add(b, 7);
	text = render(m);
	/* One family: one HELP, its members together, before x_other. */
	first = strstr(text, "# HELP x_calls_total");
	CHECK(first && !strstr(first + 1, "# HELP x_calls_total"));
	CHECK(strstr(text, "x_calls_total{call=\"a\"} 0\nx_calls_total{call=\"b\"} 7\n"
			   "# HELP x_other"));
	free(text);
	rg_metrics_destroy(m);
}

static void metrics_bad_names(void)
{
	struct rg_metrics *m = rg_metrics_create();

	CHECK(rg_metrics_counter(m, "ok_total", NULL, "fine"));
	CHECK(rg_metrics_ok(m));
	CHECK(!rg_metrics_counter(m, "9lives", NULL, "leading digit"));
	CHECK(!rg_metrics_counter(m, "has space", NULL, "space"));
	CHECK(!rg_metrics_counter(m, "", NULL, "empty"));
	CHECK(!rg_metrics_counter(m, "ok_total", NULL, "duplicate"));
	CHECK(!rg_metrics_gauge(m, "ok_total", "x=\"1\"", "other type, same name"));
	CHECK(!rg_metrics_histogram(m, "h", NULL, "no buckets", (struct rg_buckets){ 1, 0, 1 }));
	CHECK(!rg_metrics_histogram(m, "h", NULL, "zero bound", (struct rg_buckets){ 0, 4, 1 }));
	CHECK(!rg_metrics_ok(m));
	rg_metrics_destroy(m);
}

#define THREADS 4
#define ROUNDS 100000

static void *hammer(void *arg)
{
	void **handles = arg;

	for (int i = 0; i < ROUNDS; i++) {
		rg_counter_add(handles[0], 1);
		rg_gauge_add(handles[1], 1);
		rg_histogram_observe(handles[2], (uint64_t)i % 16);
	}
	return NULL;
}

/* Updates from several threads while another renders lose nothing. */
static void metrics_threads(void)
{
	struct rg_metrics *m = rg_metrics_create();
	void *handles[3] = {
		rg_metrics_counter(m, "t_total", NULL, "c"),
		rg_metrics_gauge(m, "t_gauge", NULL, "g"),
		rg_metrics_histogram(m, "t_hist", NULL, "h", RG_BUCKETS_SIZES),
	};
	pthread_t threads[THREADS];

	for (int i = 0; i < THREADS; i++)
		CHECK(pthread_create(&threads[i], NULL, hammer, handles) == 0);
	for (int i = 0; i < 20; i++)
		free(render(m));
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	CHECK(rg_counter_value(handles[0]) == (uint64_t)THREADS * ROUNDS);
	CHECK(rg_gauge_value(handles[1]) == (int64_t)THREADS * ROUNDS);
	CHECK(rg_histogram_count(handles[2]) == (uint64_t)THREADS * ROUNDS);
	rg_metrics_destroy(m);
}

/* ---- link seal (rg/link_seal.h), without libnet ----------------------------- */

/* A dialer's and an acceptor's seal of one handshake (fresh nonces). */
struct seal_pair {
	uint8_t nonce_a[RG_LINK_NONCE_BYTES], nonce_d[RG_LINK_NONCE_BYTES];
	struct rg_link_key key;
	struct rg_link_seal dialer, acceptor;
};

static void seal_transcript(const struct seal_pair *p, const char *instance,
			    struct rg_link_transcript *t /* OUT */)
{
	*t = (struct rg_link_transcript){ .acceptor_nonce = p->nonce_a,
					  .dialer_nonce = p->nonce_d,
					  .dialer_role = "gateway",
					  .acceptor_role = "gamesrv",
					  .instance = instance };
}

static void seal_pair_init(struct seal_pair *p)
{
	struct rg_link_transcript t;

	rg_log_init("test_common", RG_LOG_ERROR);
	/* The insecure set-up initialises libsodium; the key is made real. */
	CHECK(rg_link_key_setup(NULL, true, &p->key) == 0);
	memset(p->key.key, 0x42, sizeof(p->key.key));
	for (size_t i = 0; i < RG_LINK_NONCE_BYTES; i++) {
		p->nonce_a[i] = (uint8_t)i;
		p->nonce_d[i] = (uint8_t)(0xa0 + i);
	}
	seal_transcript(p, "gw-1", &t);
	rg_link_seal_init(&p->dialer, p->key.key, &t, true);
	rg_link_seal_init(&p->acceptor, p->key.key, &t, false);
}

/* Seal text as the next frame of d into buf; returns the sealed length. */
static size_t seal_text(struct rg_link_seal_dir *d, const char *text, uint8_t *buf)
{
	size_t len = strlen(text);

	rg_link_seal_frame(d, buf, (const uint8_t *)text, len);
	return len + RG_LINK_SEAL_OVERHEAD;
}

/* True when frame[0..len) opens as the next frame of d and reads text. */
static bool opens_as(struct rg_link_seal_dir *d, const uint8_t *frame, size_t len,
		     const char *text)
{
	uint8_t out[256];
	size_t out_len = 0;

	return rg_link_seal_open(d, out, frame, len, &out_len) == 0 &&
	       out_len == strlen(text) && memcmp(out, text, out_len) == 0;
}

/* Both directions, in order, in place and not, an empty frame too; the
 * plaintext is not on the wire; the same text sealed twice differs. */
static void seal_round_trip(void)
{
	struct seal_pair p;
	uint8_t a[256], b[256];
	size_t la, lb;

	seal_pair_init(&p);
	la = seal_text(&p.dialer.out, "password=hunter2", a);
	lb = seal_text(&p.dialer.out, "password=hunter2", b);
	CHECK(la == lb && memcmp(a, b, la) != 0); /* another nonce */
	for (size_t i = 0; i + 7 <= la; i++)
		CHECK(memcmp(a + i, "hunter2", 7) != 0);
	CHECK(opens_as(&p.acceptor.in, a, la, "password=hunter2"));
	CHECK(opens_as(&p.acceptor.in, b, lb, "password=hunter2"));
	CHECK(p.dialer.out.counter == 2 && p.acceptor.in.counter == 2);
	la = seal_text(&p.acceptor.out, "", a);
	CHECK(la == RG_LINK_SEAL_OVERHEAD && opens_as(&p.dialer.in, a, la, ""));
	/* In place both ways. */
	memcpy(a, "in place", 8);
	rg_link_seal_frame(&p.acceptor.out, a, a, 8);
	CHECK(rg_link_seal_open(&p.dialer.in, a, a, 8 + RG_LINK_SEAL_OVERHEAD, &la) == 0);
	CHECK(la == 8 && memcmp(a, "in place", 8) == 0);
	rg_link_seal_wipe(&p.dialer);
	CHECK(p.dialer.out.counter == 0 && p.dialer.out.key[0] == 0);
}

/* Any one bit flipped anywhere fails; a failed open leaves the counter,
 * so the genuine frame still opens after it. */
static void seal_tamper(void)
{
	struct seal_pair p;
	uint8_t frame[256], bad[256];
	size_t len;

	seal_pair_init(&p);
	len = seal_text(&p.dialer.out, "earn 100", frame);
	for (size_t bit = 0; bit < 8 * len; bit++) {
		memcpy(bad, frame, len);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		CHECK(!opens_as(&p.acceptor.in, bad, len, "earn 100"));
		CHECK(p.acceptor.in.counter == 0);
	}
	CHECK(opens_as(&p.acceptor.in, frame, len, "earn 100"));
}

/* A replayed frame, a frame out of order, and a frame sealed for the other
 * direction all fail. */
static void seal_replay_reorder(void)
{
	struct seal_pair p;
	uint8_t f0[64], f1[64], f2[64], back[64];
	size_t l0, l1, l2, lb;

	seal_pair_init(&p);
	l0 = seal_text(&p.dialer.out, "zero", f0);
	l1 = seal_text(&p.dialer.out, "one", f1);
	l2 = seal_text(&p.dialer.out, "two", f2);
	lb = seal_text(&p.acceptor.out, "zero", back);
	CHECK(!opens_as(&p.acceptor.in, f1, l1, "one"));    /* 1 before 0 */
	CHECK(!opens_as(&p.acceptor.in, back, lb, "zero")); /* reflected */
	CHECK(opens_as(&p.acceptor.in, f0, l0, "zero"));
	CHECK(!opens_as(&p.acceptor.in, f0, l0, "zero"));   /* replayed */
	CHECK(!opens_as(&p.acceptor.in, f2, l2, "two"));    /* 1 skipped */
	CHECK(opens_as(&p.acceptor.in, f1, l1, "one"));
	CHECK(opens_as(&p.acceptor.in, f2, l2, "two"));
}

/* Keys from another cluster secret, or from a transcript that differs in
 * anything (a nonce, the instance, a role), open nothing. */
static void seal_wrong_key(void)
{
	struct seal_pair p;
	struct rg_link_transcript t;
	struct rg_link_seal other;
	unsigned char key[RG_LINK_KEY_BYTES];
	uint8_t frame[64];
	size_t len;

	seal_pair_init(&p);
	len = seal_text(&p.dialer.out, "hello", frame);

	memcpy(key, p.key.key, sizeof(key));
	key[0] ^= 1;
	seal_transcript(&p, "gw-1", &t);
	rg_link_seal_init(&other, key, &t, false);
	CHECK(!opens_as(&other.in, frame, len, "hello"));

	seal_transcript(&p, "gw-2", &t);           /* the Hello's instance altered */
	rg_link_seal_init(&other, p.key.key, &t, false);
	CHECK(!opens_as(&other.in, frame, len, "hello"));

	seal_transcript(&p, "gw-1", &t);
	t.acceptor_role = "dbproxy";
	rg_link_seal_init(&other, p.key.key, &t, false);
	CHECK(!opens_as(&other.in, frame, len, "hello"));

	p.nonce_d[5] ^= 1;
	seal_transcript(&p, "gw-1", &t);
	rg_link_seal_init(&other, p.key.key, &t, false);
	CHECK(!opens_as(&other.in, frame, len, "hello"));
	p.nonce_d[5] ^= 1;

	/* Role and instance are length-prefixed: moving a byte between them
	 * is another transcript. */
	seal_transcript(&p, "gw-1", &t);
	t.acceptor_role = "gamesrvg";
	t.instance = "w-1";
	rg_link_seal_init(&other, p.key.key, &t, false);
	CHECK(!opens_as(&other.in, frame, len, "hello"));

	CHECK(opens_as(&p.acceptor.in, frame, len, "hello"));
}

/* Shorter than the tag, or cut anywhere: -EBADMSG, the counter kept. */
static void seal_truncated(void)
{
	struct seal_pair p;
	uint8_t frame[64], out[64];
	size_t len, out_len;

	seal_pair_init(&p);
	len = seal_text(&p.dialer.out, "a frame", frame);
	for (size_t cut = 0; cut < len; cut++)
		CHECK(rg_link_seal_open(&p.acceptor.in, out, frame, cut, &out_len) == -EBADMSG);
	CHECK(p.acceptor.in.counter == 0);
	CHECK(opens_as(&p.acceptor.in, frame, len, "a frame"));
}

static const struct test_case cases[] = {
	{ "calls_complete", calls_complete },
	{ "calls_expire", calls_expire },
	{ "calls_fail_all", calls_fail_all },
	{ "calls_many", calls_many },
	{ "options_defaults", options_defaults },
	{ "options_flags", options_flags },
	{ "options_ini_then_flags", options_ini_then_flags },
	{ "options_errors", options_errors },
	{ "options_help", options_help },
	{ "options_load", options_load },
	{ "options_port_file", options_port_file },
	{ "options_host_ports", options_host_ports },
	{ "options_host_ports_resolve", options_host_ports_resolve },
	{ "log_levels", log_levels },
	{ "pb_arena_bounded", pb_arena_bounded },
	{ "pb_find_nul", pb_find_nul },
	{ "throttle_bucket", throttle_bucket },
	{ "throttle_backoff", throttle_backoff },
	{ "throttle_bounded", throttle_bounded },
	{ "seal_round_trip", seal_round_trip },
	{ "seal_tamper", seal_tamper },
	{ "seal_replay_reorder", seal_replay_reorder },
	{ "seal_wrong_key", seal_wrong_key },
	{ "seal_truncated", seal_truncated },
	{ "pb_budget_bounded", pb_budget_bounded },
	{ "peer_clock_age", peer_clock_age },
	{ "metrics_render", metrics_render },
	{ "metrics_histogram", metrics_histogram },
	{ "metrics_families", metrics_families },
	{ "metrics_bad_names", metrics_bad_names },
	{ "metrics_threads", metrics_threads },
	{ NULL, NULL },
};

TEST_MAIN(cases)
