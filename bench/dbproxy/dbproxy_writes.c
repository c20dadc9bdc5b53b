/*
 * dbproxy_writes: acknowledged durable writes per second through dbproxy's
 * writer (the ringgate_store library), with group commit against one
 * transaction per write, in the same run.
 *
 * Each run opens a fresh database file (SQLite) or uses --dsn (PostgreSQL,
 * with player names of its own), creates one player per client, then keeps
 * --clients ADD_GOLD writes outstanding (closed loop: a client whose write
 * is acknowledged submits the next one) for --duration seconds.
 * --writers N runs N writers on the one database, as N dbproxies would
 * (PostgreSQL only: SQLite has one owner), each a pool of --connections
 * write connections (dbproxy --write-connections); client i writes
 * through writer i % N, so each player has one writer. An acknowledgement is done() after COMMIT has returned, so it
 * is durable at the sync level (FULL by default: one fsync per COMMIT).
 * The two modes, "per-write" (batch_max 1) and "group" (batch_max
 * --batch-max), alternate over --rounds rounds; medians are reported.
 *
 * Consistency, checked every run: every write answered with success, and
 * each player's gold read back after the writer stopped equals the sum of
 * the amounts acknowledged for it. Exit status 1 if not.
 *
 * Usage: dbproxy_writes [--backend sqlite|postgres] [--dsn DSN] [--writers 1]
 *                       [--connections 1]
 *                       [--dir DIR] [--clients 64] [--duration 2]
 *                       [--rounds 3] [--batch-max 256] [--sync full|normal]
 *                       [--json FILE] [--smoke]
 * bench/run_db runs the whole comparison (both backends, 1 and 2 writers)
 * on a private PostgreSQL and prints one table.
 */
#define _GNU_SOURCE
#include "frame.h"
#include "histogram.h"
#include "rg/log.h"
#include "store.h"
#include "writer.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One client's write slot: the write and when it was submitted. */
struct slot {
	struct dbp_write w;        /* first: done() gets &slot->w                */
	struct bench *bench;
	unsigned client;
	uint64_t submit_ns;
};

struct bench {
	pthread_mutex_t lock;
	pthread_cond_t ready_cv;
	unsigned *ready;          /* clients whose write came back (stack)      */
	unsigned ready_count;
	struct hist latency;      /* submit -> done(), under lock               */
	uint64_t acked, failed;
	uint64_t *acked_gold;     /* per client: amounts acknowledged            */
	uint64_t *player_id;      /* per client                                  */
};

#define WRITERS_MAX 8
#define CONNECTIONS_MAX 16

struct options {
	const char *dir;
	enum dbp_store_backend backend;
	const char *dsn;
	unsigned writers, connections;
	unsigned clients, rounds, batch_max;
	double duration;
	enum dbp_store_sync sync;
	const char *json;
};

struct result {
	const char *mode;
	double acks_per_s, writes_per_commit;
	uint64_t acks, commits;
	double p50_us, p99_us, p999_us;
	bool consistent;
};

static void on_done(struct dbp_write *w)
{
	struct slot *s = (struct slot *)w;
	struct bench *b = s->bench;
	uint64_t now = bench_now_ns();
	pthread_mutex_lock(&b->lock);
	if (w->result == 0) {
		b->acked++;
		if (w->kind == DBP_WRITE_ADD_GOLD)
			b->acked_gold[s->client] += w->add_gold.amount;
		else
			b->player_id[s->client] = w->player.id;
		hist_record(&b->latency, now - s->submit_ns);
	} else {
		b->failed++;
		fprintf(stderr, "dbproxy_writes: write failed: %s\n", strerror(-w->result));
	}
	b->ready[b->ready_count++] = s->client;
	pthread_cond_signal(&b->ready_cv);
	pthread_mutex_unlock(&b->lock);
}

/* The writer of client i: each player is written through one writer. */
static struct dbp_writer *writer_of(struct dbp_writer **wr, unsigned writers, unsigned client)
{
	return wr[client % writers];
}

static int submit(struct dbp_writer *wr, struct slot *s)
{
	s->submit_ns = bench_now_ns();
	int rc;
	/* A full queue cannot happen with queue_max >= clients; retry anyway. */
	while ((rc = dbp_writer_submit(wr, &s->w)) == -EAGAIN)
		usleep(100);
	return rc;
}

/* Wait for at least one acknowledgement; move them to out[]. */
static unsigned take_ready(struct bench *b, unsigned *out)
{
	pthread_mutex_lock(&b->lock);
	while (b->ready_count == 0)
		pthread_cond_wait(&b->ready_cv, &b->lock);
	unsigned n = b->ready_count;
	memcpy(out, b->ready, n * sizeof(*out));
	b->ready_count = 0;
	pthread_mutex_unlock(&b->lock);
	return n;
}

/* One run of one mode on a fresh file. 0, or -1 on a setup failure. */
static int run_mode(const struct options *o, const char *mode, size_t batch_max,
		    unsigned run_no, struct result *res)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/writes-%u-%s.db", o->dir, run_no, mode);
	unlink(path);
	struct dbp_store_config cfg = {
		.backend = o->backend, .path = path, .dsn = o->dsn, .sync = o->sync,
	};
	/* Writer k owns the stores st[k * connections ..]. */
	struct dbp_store *st[WRITERS_MAX * CONNECTIONS_MAX] = { NULL };
	struct dbp_writer *wr[WRITERS_MAX] = { NULL };
	unsigned nstores = o->writers * o->connections;
	static struct bench b; /* static: the histogram is 60 KB */
	memset(&b, 0, sizeof(b));
	pthread_mutex_init(&b.lock, NULL);
	pthread_cond_init(&b.ready_cv, NULL);
	b.ready = calloc(o->clients, sizeof(*b.ready));
	b.acked_gold = calloc(o->clients, sizeof(*b.acked_gold));
	b.player_id = calloc(o->clients, sizeof(*b.player_id));
	struct slot *slots = calloc(o->clients, sizeof(*slots));
	unsigned *ready = calloc(o->clients, sizeof(*ready));
	int status = -1;
	if (!b.ready || !b.acked_gold || !b.player_id || !slots || !ready)
		goto out;
	for (unsigned k = 0; k < nstores; k++) {
		if (dbp_store_open(&cfg, &st[k]) < 0)
			goto out;
	}
	for (unsigned k = 0; k < o->writers; k++) {
		if (dbp_writer_start_pool(&st[k * o->connections], o->connections, o->clients * 2,
					  batch_max, &wr[k]) < 0)
			goto out;
	}

	/* Setup (not timed): one player per client. */
	for (unsigned i = 0; i < o->clients; i++) {
		struct slot *s = &slots[i];
		s->bench = &b;
		s->client = i;
		s->w.kind = DBP_WRITE_CREATE_PLAYER;
		s->w.done = on_done;
		/* Unique per process and run: a PostgreSQL database keeps the
		 * rows of earlier runs. */
		snprintf(s->w.create.name, sizeof(s->w.create.name), "b%ld_%u%c%u", (long)getpid(),
			 run_no, mode[0], i);
		snprintf(s->w.create.pwhash, sizeof(s->w.create.pwhash), "not-a-real-hash");
		if (submit(writer_of(wr, o->writers, i), s) < 0)
			goto out;
	}
	for (unsigned got = 0; got < o->clients;)
		got += take_ready(&b, ready);
	if (b.failed)
		goto out;
	hist_reset(&b.latency);
	b.acked = 0;
	struct dbp_writer_stats before = { 0 }, after = { 0 };
	for (unsigned k = 0; k < o->writers; k++) {
		struct dbp_writer_stats one;
		dbp_writer_stats(wr[k], &one);
		before.commits += one.commits;
		before.writes += one.writes;
	}

	/* Closed loop: every client keeps one write outstanding. */
	uint64_t start = bench_now_ns(), end = start + (uint64_t)(o->duration * 1e9);
	uint64_t seq = 0;
	for (unsigned i = 0; i < o->clients; i++) {
		struct slot *s = &slots[i];
		s->w.kind = DBP_WRITE_ADD_GOLD;
		s->w.add_gold.player_id = b.player_id[i];
		s->w.add_gold.amount = (uint32_t)(1 + seq++ % 1000);
		if (submit(writer_of(wr, o->writers, i), s) < 0)
			goto out;
	}
	unsigned outstanding = o->clients;
	uint64_t stopped_at = 0;
	while (outstanding > 0) {
		unsigned n = take_ready(&b, ready);
		uint64_t now = bench_now_ns();
		outstanding -= n;
		if (now >= end) {
			if (!stopped_at)
				stopped_at = now;
			continue;
		}
		for (unsigned k = 0; k < n; k++) {
			struct slot *s = &slots[ready[k]];
			s->w.add_gold.amount = (uint32_t)(1 + seq++ % 1000);
			if (submit(writer_of(wr, o->writers, ready[k]), s) < 0)
				goto out;
			outstanding++;
		}
	}
	for (unsigned k = 0; k < o->writers; k++) {
		struct dbp_writer_stats one;
		dbp_writer_stats(wr[k], &one);
		after.commits += one.commits;
		after.writes += one.writes;
	}
	double elapsed = (double)(stopped_at - start) / 1e9;

	/* Read every player back once the writers have let the stores go. */
	for (unsigned k = 0; k < o->writers; k++) {
		dbp_writer_stop(wr[k], NULL);
		wr[k] = NULL;
	}
	bool consistent = b.failed == 0;
	for (unsigned i = 0; i < o->clients; i++) {
		struct dbp_player p;
		if (dbp_store_find_by_id(st[0], b.player_id[i], &p) < 0 || p.gold != b.acked_gold[i]) {
			fprintf(stderr, "dbproxy_writes: player %u: gold differs from acknowledged\n", i);
			consistent = false;
		}
	}
	*res = (struct result){
		.mode = mode,
		.acks = b.acked,
		.acks_per_s = (double)b.acked / elapsed,
		.commits = after.commits - before.commits,
		.writes_per_commit = after.commits > before.commits
			? (double)(after.writes - before.writes) / (double)(after.commits - before.commits) : 0,
		.p50_us = hist_percentile(&b.latency, 50) / 1e3,
		.p99_us = hist_percentile(&b.latency, 99) / 1e3,
		.p999_us = hist_percentile(&b.latency, 99.9) / 1e3,
		.consistent = consistent,
	};
	status = 0;
out:
	for (unsigned k = 0; k < o->writers; k++) {
		if (wr[k])
			dbp_writer_stop(wr[k], NULL);
	}
	for (unsigned k = 0; k < nstores; k++)
		dbp_store_close(st[k]);
	unlink(path);
	for (const char *suffix = "-wal"; suffix; suffix = suffix[1] == 'w' ? "-shm" : NULL) {
		char side[4200];
		snprintf(side, sizeof(side), "%s%s", path, suffix);
		unlink(side);
	}
	free(b.ready);
	free(b.acked_gold);
	free(b.player_id);
	free(slots);
	free(ready);
	pthread_mutex_destroy(&b.lock);
	pthread_cond_destroy(&b.ready_cv);
	return status;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Median of field `offset` (a double in struct result) over n runs. */
static double median_of(const struct result *runs, unsigned n, size_t offset)
{
	double v[64];
	for (unsigned i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&runs[i] + offset);
	qsort(v, n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{ "dir", required_argument, NULL, 'd' },      { "clients", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 't' }, { "rounds", required_argument, NULL, 'r' },
		{ "batch-max", required_argument, NULL, 'b' }, { "sync", required_argument, NULL, 's' },
		{ "json", required_argument, NULL, 'j' },     { "smoke", no_argument, NULL, 'S' },
		{ "backend", required_argument, NULL, 'B' },  { "dsn", required_argument, NULL, 'D' },
		{ "writers", required_argument, NULL, 'w' },
		{ "connections", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct options){ .dir = NULL, .clients = 64, .rounds = 3, .batch_max = 256,
			       .duration = 2, .sync = DBP_STORE_SYNC_FULL, .writers = 1,
			       .connections = 1 };
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'd': o->dir = optarg; break;
		case 'c': o->clients = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': o->duration = atof(optarg); break;
		case 'r': o->rounds = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': o->batch_max = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's':
			if (dbp_store_sync_parse(optarg, &o->sync) < 0)
				return -1;
			break;
		case 'j': o->json = optarg; break;
		case 'B':
			if (dbp_store_backend_parse(optarg, &o->backend) < 0)
				return -1;
			break;
		case 'D': o->dsn = optarg; break;
		case 'w': o->writers = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'C': o->connections = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S': o->clients = 16; o->rounds = 1; o->duration = 0.3; break;
		default: return -1;
		}
	}
	if (o->clients == 0 || o->rounds == 0 || o->rounds > 32 || o->batch_max < 2
	    || o->duration <= 0 || optind != argc || o->writers == 0 || o->writers > WRITERS_MAX
	    || (o->backend == DBP_STORE_POSTGRES) != (o->dsn != NULL)
	    || o->connections == 0 || o->connections > CONNECTIONS_MAX
	    || (o->backend == DBP_STORE_SQLITE && o->writers * o->connections != 1))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	if (parse_options(argc, argv, &o) < 0) {
		fputs("usage: dbproxy_writes [--backend sqlite|postgres --dsn DSN] [--writers 1]\n"
		      "                      [--connections 1]\n"
		      "                      [--dir DIR] [--clients 64] [--duration 2] [--rounds 3]\n"
		      "                      [--batch-max 256] [--sync full|normal] [--json FILE]"
		      " [--smoke]\n"
		      "(--dsn with --backend postgres only; more than one writer or connection\n"
		      " on PostgreSQL only)\n",
		      stderr);
		return 2;
	}
	rg_log_init("dbproxy_writes", RG_LOG_WARN);
	char tmpdir[] = "/tmp/dbproxy_writes.XXXXXX";
	bool own_dir = o.dir == NULL;
	if (own_dir && !(o.dir = mkdtemp(tmpdir))) {
		perror("dbproxy_writes: mkdtemp");
		return 1;
	}

	static struct result per_write[32], group[32];
	bool consistent = true;
	for (unsigned r = 0; r < o.rounds; r++) {
		if (run_mode(&o, "per-write", 1, r, &per_write[r]) < 0
		    || run_mode(&o, "group", o.batch_max, r, &group[r]) < 0) {
			fprintf(stderr, "dbproxy_writes: a run failed to set up in %s\n", o.dir);
			return 1;
		}
		consistent = consistent && per_write[r].consistent && group[r].consistent;
		printf("  round %u: per-write %.0f acks/s, group %.0f acks/s (%.1f writes/commit)\n",
		       r + 1, per_write[r].acks_per_s, group[r].acks_per_s, group[r].writes_per_commit);
		fflush(stdout);
	}
	if (own_dir)
		rmdir(tmpdir);

	const struct result *sets[2] = { per_write, group };
	const char *names[2] = { "per-write", "group" };
	double med[2][5];
	printf("\n%-10s %12s %14s %10s %10s %10s\n", "mode", "acks/s", "writes/commit",
	       "p50 us", "p99 us", "p99.9 us");
	for (int m = 0; m < 2; m++) {
		med[m][0] = median_of(sets[m], o.rounds, offsetof(struct result, acks_per_s));
		med[m][1] = median_of(sets[m], o.rounds, offsetof(struct result, writes_per_commit));
		med[m][2] = median_of(sets[m], o.rounds, offsetof(struct result, p50_us));
		med[m][3] = median_of(sets[m], o.rounds, offsetof(struct result, p99_us));
		med[m][4] = median_of(sets[m], o.rounds, offsetof(struct result, p999_us));
		printf("%-10s %12.0f %14.1f %10.0f %10.0f %10.0f\n", names[m], med[m][0], med[m][1],
		       med[m][2], med[m][3], med[m][4]);
	}
	double speedup = med[0][0] > 0 ? med[1][0] / med[0][0] : 0;
	printf("group commit: %.1fx the acknowledged writes of one transaction per write "
	       "(%s, %u writers x %u connections, %u clients, sync %s)%s\n", speedup,
	       dbp_store_backend_name(o.backend), o.writers, o.connections, o.clients,
	       o.sync == DBP_STORE_SYNC_FULL ? "full" : "normal",
	       consistent ? "" : "  INCONSISTENT");
	if (o.json) {
		FILE *f = fopen(o.json, "w");
		if (!f) {
			perror("dbproxy_writes: json");
			return 1;
		}
		fprintf(f, "{\"backend\":\"%s\",\"writers\":%u,\"connections\":%u,"
			"\"clients\":%u,\"rounds\":%u,\"duration_s\":%.3f,\"batch_max\":%u,"
			"\"sync\":\"%s\",\"consistent\":%s,\"speedup\":%.3f,\"medians\":[",
			dbp_store_backend_name(o.backend), o.writers, o.connections,
			o.clients, o.rounds, o.duration, o.batch_max,
			o.sync == DBP_STORE_SYNC_FULL ? "full" : "normal", consistent ? "true" : "false",
			speedup);
		for (int m = 0; m < 2; m++)
			fprintf(f, "%s{\"mode\":\"%s\",\"acks_per_s\":%.1f,\"writes_per_commit\":%.2f,"
				"\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f}", m ? "," : "",
				names[m], med[m][0], med[m][1], med[m][2], med[m][3], med[m][4]);
		fprintf(f, "]}\n");
		fclose(f);
	}
	return consistent ? 0 : 1;
}
