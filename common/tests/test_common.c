/*
 * test_common.c: unit tests of the common library (calls table, options,
 * log level names, protobuf arena, heartbeat rule, link handshake). Each case is run as
 * its own CTest test: `test_common <case>`.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "rg/calls.h"
#include "rg/heartbeat.h"
#include "rg/link_auth.h"
#include "rg/log.h"
#include "rg/metrics.h"
#include "rg/options.h"
#include "rg/pb_arena.h"
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
};

static void opt_table(struct opt_vars *v, struct rg_option out[5])
{
	v->host = "127.0.0.1";
	v->port = 7701;
	v->verbose = false;
	v->name = "default-name";
	out[0] = (struct rg_option){ "listen-host", RG_OPT_STRING, &v->host, "address" };
	out[1] = (struct rg_option){ "listen_port", RG_OPT_INT, &v->port, "port" };
	out[2] = (struct rg_option){ "verbose", RG_OPT_BOOL, &v->verbose, "chatty" };
	out[3] = (struct rg_option){ "name", RG_OPT_STRING, &v->name, "a name" };
	out[4] = (struct rg_option){ 0 };
}

static int parse(const struct rg_option *opts, int argc, char **argv)
{
	return rg_options_parse(opts, "gamesrv", "usage: test", argc, argv);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	CHECK(fputs(text, f) >= 0);
	CHECK(fclose(f) == 0);
}

static void options_defaults(void)
{
	struct opt_vars v;
	struct rg_option opts[5];
	char *argv[] = { "prog", NULL };

	opt_table(&v, opts);
	CHECK(parse(opts, 1, argv) == 0);
	CHECK(strcmp(v.host, "127.0.0.1") == 0 && v.port == 7701 && !v.verbose);
}

static void options_flags(void)
{
	struct opt_vars v;
	struct rg_option opts[5];
	char *argv[] = { "prog", "--listen-host=0.0.0.0", "--listen-port", "9000",
			 "--verbose", "--name", "x", "--listen_port=9001", NULL };

	opt_table(&v, opts);
	CHECK(parse(opts, 8, argv) == 0);
	CHECK(strcmp(v.host, "0.0.0.0") == 0);
	CHECK(v.port == 9001); /* the last flag wins */
	{
		char *argv2[] = { "prog", "--listen-port=07701", NULL };

		CHECK(parse(opts, 2, argv2) == 0);
		CHECK(v.port == 7701); /* decimal, not octal */
	}
	CHECK(v.verbose);
	CHECK(strcmp(v.name, "x") == 0);
}

static void options_ini_then_flags(void)
{
	struct opt_vars v;
	struct rg_option opts[5];
	char path[] = "/tmp/rg-test-options-XXXXXX";
	int fd = mkstemp(path);
	char config_flag[64];

	CHECK(fd >= 0);
	close(fd);
	write_file(path, "; cluster file\n[dbproxy]\nport = 1\nunknown_there = 1\n"
			 "[gamesrv]\nlisten-host = 10.0.0.1\nlisten_port = 8000\n"
			 "verbose = yes\nname = from-file\n");
	snprintf(config_flag, sizeof(config_flag), "--config=%s", path);
	{
		/* The flag comes before --config: the file is still applied first. */
		char *argv[] = { "prog", "--name=from-flag", config_flag, NULL };

		opt_table(&v, opts);
		CHECK(parse(opts, 3, argv) == 0);
	}
	CHECK(strcmp(v.host, "10.0.0.1") == 0);
	CHECK(v.port == 8000);
	CHECK(v.verbose);
	CHECK(strcmp(v.name, "from-flag") == 0);
	{
		char *argv[] = { "prog", "--config", path, "--verbose=false", NULL };

		opt_table(&v, opts);
		CHECK(parse(opts, 4, argv) == 0);
		CHECK(!v.verbose && v.port == 8000);
	}
	unlink(path);
}

static void options_errors(void)
{
	struct opt_vars v;
	struct rg_option opts[5];
	char path[] = "/tmp/rg-test-options-XXXXXX";
	int fd = mkstemp(path);
	char config_flag[64];

	CHECK(fd >= 0);
	close(fd);
	snprintf(config_flag, sizeof(config_flag), "--config=%s", path);
	opt_table(&v, opts);
	{
		/* Each of these alone is an error: unknown, malformed, out of
		 * range, missing value, positional, unreadable config. */
		static const char *const bad[] = {
			"--nope=1",
			"--listen-port=12x",
			"--listen-port=0x10",
			"--listen-port=99999999999999999999",
			"--listen-port",
			"--verbose=maybe",
			"positional",
			"--config=/nonexistent/rg.ini",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char *argv[] = { "prog", (char *)bad[i], NULL };

			CHECK(parse(opts, 2, argv) == -1);
		}
	}
	{
		char *argv[] = { "prog", config_flag, NULL };

		write_file(path, "[gamesrv]\nlisten_port = 1\ntypo = 2\n");
		CHECK(parse(opts, 2, argv) == -1);
		write_file(path, "[gamesrv]\nlisten_port = abc\n");
		CHECK(parse(opts, 2, argv) == -1);
		write_file(path, "[gamesrv\nlisten_port = 1\n");
		CHECK(parse(opts, 2, argv) == -1);
	}
	unlink(path);
}

static void options_help(void)
{
	struct opt_vars v;
	struct rg_option opts[5];
	char *argv[] = { "prog", "--listen-port=5", "--help", "--nope", NULL };

	opt_table(&v, opts);
	/* --help wins over everything else, even an unknown flag. */
	CHECK(parse(opts, 4, argv) == 1);
	CHECK(v.port == 7701);
}

/* ---- log, arena, heartbeat ----------------------------------------------- */

static void log_levels(void)
{
	enum rg_log_level level = RG_LOG_ERROR;

	CHECK(rg_log_level_parse("debug", &level) == 0 && level == RG_LOG_DEBUG);
	CHECK(rg_log_level_parse("INFO", &level) == 0 && level == RG_LOG_INFO);
	CHECK(rg_log_level_parse("warning", &level) == 0 && level == RG_LOG_WARN);
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

static void heartbeat_rule(void)
{
	struct rg_heartbeat hb;

	rg_heartbeat_init(&hb, 1000, 5000, 100);
	CHECK(!rg_heartbeat_due(&hb, 500));
	CHECK(rg_heartbeat_due(&hb, 1100));
	CHECK(!rg_heartbeat_due(&hb, 1100));
	CHECK(!rg_heartbeat_dead(&hb, 5100));
	CHECK(rg_heartbeat_dead(&hb, 5101));
	rg_heartbeat_heard(&hb, 5000);
	CHECK(!rg_heartbeat_dead(&hb, 9000));
	CHECK(rg_heartbeat_dead(&hb, 10001));
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

/* ---- link authentication ------------------------------------------------- */

/* Write a secret file with the given mode; returns its path (static). */
static const char *secret_file(const char *contents, mode_t mode)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/rg-secret-%ld", (long)getpid());
	unlink(path);
	f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(contents, f);
	fclose(f);
	CHECK(chmod(path, mode) == 0);
	return path;
}

/* Run a full handshake between keys a (acceptor) and d (dialer); returns
 * 0 when both sides accepted, 1 when the acceptor refused the dialer, 2
 * when the dialer refused the acceptor. */
static int handshake(const struct rg_link_key *acceptor_key, const struct rg_link_key *dialer_key)
{
	struct rg_link_auth acc, dial;
	uint8_t nonce_a[RG_LINK_NONCE_BYTES], nonce_d[RG_LINK_NONCE_BYTES];
	uint8_t proof_d[RG_LINK_PROOF_BYTES], proof_a[RG_LINK_PROOF_BYTES];

	CHECK(rg_link_auth_accept(&acc, acceptor_key, nonce_a));
	CHECK(rg_link_auth_dial(&dial, dialer_key));
	CHECK(rg_link_auth_answer(&dial, nonce_a, sizeof(nonce_a), "gamesrv", nonce_d, proof_d) == 0);
	/* A second challenge on the same link is a protocol error. */
	CHECK(rg_link_auth_answer(&dial, nonce_a, sizeof(nonce_a), "gamesrv", nonce_d, proof_d) < 0);
	if (!rg_link_auth_check_dialer(&acc, "gamesrv", nonce_d, sizeof(nonce_d), proof_d,
				       sizeof(proof_d), "dbproxy", proof_a))
		return 1;
	if (!rg_link_auth_check_acceptor(&dial, "dbproxy", proof_a, sizeof(proof_a)))
		return 2;
	return 0;
}

static void link_auth_handshake(void)
{
	struct rg_link_key key, insecure;
	struct rg_link_auth acc, dial;
	uint8_t nonce_a[RG_LINK_NONCE_BYTES], nonce_d[RG_LINK_NONCE_BYTES];
	uint8_t proof_d[RG_LINK_PROOF_BYTES], proof_a[RG_LINK_PROOF_BYTES];
	const char *path = secret_file("0123456789abcdef-the-cluster-secret", 0600);

	CHECK(rg_link_key_setup(path, false, &key) == 0);
	unlink(path);
	CHECK(!key.insecure);
	CHECK(handshake(&key, &key) == 0);

	/* A proof for another role, a reflected proof, a short proof or a
	 * replayed Hello (old nonce_d and proof against a new challenge) fail. */
	CHECK(rg_link_auth_accept(&acc, &key, nonce_a));
	CHECK(rg_link_auth_dial(&dial, &key));
	CHECK(rg_link_auth_answer(&dial, nonce_a, sizeof(nonce_a), "gamesrv", nonce_d, proof_d) == 0);
	CHECK(!rg_link_auth_check_dialer(&acc, "gateway", nonce_d, sizeof(nonce_d), proof_d,
					 sizeof(proof_d), "dbproxy", proof_a));
	CHECK(rg_link_auth_accept(&acc, &key, nonce_a));
	CHECK(!rg_link_auth_check_dialer(&acc, "gamesrv", nonce_d, sizeof(nonce_d), proof_d,
					 sizeof(proof_d), "dbproxy", proof_a));
	CHECK(rg_link_auth_accept(&acc, &key, nonce_a));
	CHECK(!rg_link_auth_check_dialer(&acc, "gamesrv", nonce_d, sizeof(nonce_d), proof_d,
					 sizeof(proof_d) - 1, "dbproxy", proof_a));
	CHECK(!rg_link_auth_check_dialer(&acc, "gamesrv", nonce_d, 8, proof_d,
					 sizeof(proof_d), "dbproxy", proof_a));

	/* Insecure: no challenge, nothing checked; an insecure dialer cannot
	 * answer a challenge. */
	CHECK(rg_link_key_setup(NULL, true, &insecure) == 0 && insecure.insecure);
	CHECK(!rg_link_auth_accept(&acc, &insecure, nonce_a));
	CHECK(!rg_link_auth_dial(&dial, &insecure));
	CHECK(rg_link_auth_check_dialer(&acc, "gamesrv", NULL, 0, NULL, 0, "dbproxy", proof_a));
	CHECK(rg_link_auth_accept(&acc, &key, nonce_a));
	CHECK(!rg_link_auth_dial(&dial, &insecure));
	CHECK(rg_link_auth_answer(&dial, nonce_a, sizeof(nonce_a), "gamesrv", nonce_d, proof_d) < 0);
	rg_link_key_wipe(&key);
}

static void link_auth_wrong_secret(void)
{
	struct rg_link_key good, bad;
	const char *path = secret_file("0123456789abcdef-the-cluster-secret", 0600);

	CHECK(rg_link_key_setup(path, false, &good) == 0);
	path = secret_file("0123456789abcdef-the-cluster-secreT", 0400);
	CHECK(rg_link_key_setup(path, false, &bad) == 0);
	unlink(path);
	CHECK(handshake(&good, &bad) == 1); /* the acceptor refuses the dialer */
	CHECK(handshake(&bad, &bad) == 0);
}

static void link_auth_secret_file(void)
{
	struct rg_link_key key;
	const char *path;

	CHECK(rg_link_key_setup(NULL, false, &key) == -EINVAL);
	CHECK(rg_link_key_setup("", false, &key) == -EINVAL);
	CHECK(rg_link_key_setup("/nonexistent/rg.secret", false, &key) == -ENOENT);
	path = secret_file("0123456789abcdef-the-cluster-secret", 0640);
	CHECK(rg_link_key_setup(path, false, &key) == -EPERM);
	path = secret_file("too short", 0600);
	CHECK(rg_link_key_setup(path, false, &key) == -EMSGSIZE);
	unlink(path);
	CHECK(rg_link_key_setup("/tmp", false, &key) == -EINVAL);
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
	{ "log_levels", log_levels },
	{ "pb_arena_bounded", pb_arena_bounded },
	{ "pb_budget_bounded", pb_budget_bounded },
	{ "heartbeat_rule", heartbeat_rule },
	{ "peer_clock_age", peer_clock_age },
	{ "metrics_render", metrics_render },
	{ "metrics_histogram", metrics_histogram },
	{ "metrics_families", metrics_families },
	{ "metrics_bad_names", metrics_bad_names },
	{ "metrics_threads", metrics_threads },
	{ "link_auth_handshake", link_auth_handshake },
	{ "link_auth_wrong_secret", link_auth_wrong_secret },
	{ "link_auth_secret_file", link_auth_secret_file },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return test_main(cases, argc, argv);
}
