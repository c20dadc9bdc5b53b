/*
 * bot: the load bot of issue 4, the seeds' DummyClient grown up.
 *
 *   parse options -> start libnet (client services only) -> ramp up the
 *   players at --ramp per second, each logging in -> steady phase of
 *   --duration seconds: moves, chats, pings and earns at the per-player
 *   rates, with an optional reconnect storm -> drain (no new requests; the
 *   outstanding ones must be answered) -> summary table and JSON.
 *
 * With --border-every K the players walk across zone borders (bot.h,
 * "Border walk"): travels are timed apart from in-zone moves.
 *
 * One live progress line per second on stderr. Exit status 0 only when
 * every player logged in, every request was answered exactly once without
 * an Error (ZONE_HANDOFF answers are retried, not errors), no protocol
 * error was seen, no earn was lost or applied twice, every MoveReply named
 * the zone asked for (and with --expect-views every travel into a zone
 * with others showed them) and the server dropped nobody; 1 otherwise;
 * 2 for bad options. SIGINT/SIGTERM cut the steady phase short.
 */
#define _POSIX_C_SOURCE 200809L
#include "bot.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "rg/log.h"
#include "rg/options.h"
#include "rg/signals.h"

#define STEP_MS 100           /* the main thread's tick                 */
#define LOGIN_GRACE_MS 30000  /* after the ramp, for the last logins     */

struct run {
	struct bot bot;
	struct net_client **clients;
	unsigned client_count;
	long started;             /* sessions asked of libnet so far         */
	uint64_t t0_ns;
	bool interrupted;
	bool all_logged_in;
	double steady_s;
	uint64_t end_logged_in;   /* logged in once the drain ended          */
	struct bot_stats steady_start, final;  /* snapshots                 */
	struct bot_stats progress;
};

static double elapsed_s(const struct run *r)
{
	return (double)(bench_now_ns() - r->t0_ns) / 1e9;
}

/* Sleep up to ms, waking for SIGINT/SIGTERM (which rg_signals_block blocked). */
static void sleep_or_signal(struct run *r, long ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	if (sigtimedwait(&set, NULL, &ts) > 0)
		r->interrupted = true;
}

static int start_sessions(struct run *r, long count)
{
	const struct bot_config *cfg = &r->bot.cfg;
	struct net_client_config cc = {
		.host = cfg->host,
		.port = (uint16_t)cfg->port,
		.sessions = (unsigned)count,
		.backoff_min_ms = 20,
		.backoff_max_ms = 2000,
		.session = {
			.ops = &r->bot.ops,
			.service_user = &r->bot,
			.user_size = sizeof(struct bot_session),
			.max_frame = 65536,
		},
	};
	int rc = net_client_start(r->bot.rt, &cc, &r->clients[r->client_count]);
	if (rc < 0) {
		fprintf(stderr, "bot: cannot start %ld sessions: %s\n", count, net_strerror(rc));
		return rc;
	}
	r->client_count++;
	r->started += count;
	return 0;
}

static void progress(struct run *r, const char *phase)
{
	struct bot_stats *st = &r->progress;
	bot_snapshot(&r->bot, true, st);
	static uint64_t last_answered;
	static double last_t;
	uint64_t answered = 0, errors = st->c.protocol_errors;
	for (int k = 0; k < BOT_KIND_COUNT; k++) {
		answered += st->c.answered[k];
		errors += st->c.error_replies[k] + st->c.unanswered[k];
	}
	double t = elapsed_s(r);
	double rate = t > last_t ? (double)(answered - last_answered) / (t - last_t) : 0;
	last_answered = answered;
	last_t = t;
	fprintf(stderr, "%s[%6.1fs] %-6s players %llu/%ld logged in %llu | %8.0f replies/s | "
		"rtt p50 %.2f p99 %.2f ms | errors %llu%s",
		isatty(STDERR_FILENO) ? "\r" : "", t, phase,
		(unsigned long long)st->c.connected_now, r->bot.cfg.players,
		(unsigned long long)st->c.logged_in_now, rate,
		hist_percentile(&st->interval, 50) / 1e6, hist_percentile(&st->interval, 99) / 1e6,
		(unsigned long long)errors, isatty(STDERR_FILENO) ? "   " : "\n");
	fflush(stderr);
}

/* Ramp up and wait for every login; false if they did not all log in. */
static bool ramp_up(struct run *r)
{
	const struct bot_config *cfg = &r->bot.cfg;
	double ramp_s = cfg->ramp_per_s > 0 ? (double)cfg->players / cfg->ramp_per_s : 0;
	double give_up = ramp_s + LOGIN_GRACE_MS / 1000.0;
	double next_progress = 1;
	while (!r->interrupted) {
		double t = elapsed_s(r);
		long due = cfg->ramp_per_s > 0 ? (long)(cfg->ramp_per_s * t) + 1 : cfg->players;
		if (due > cfg->players)
			due = cfg->players;
		if (due > r->started && start_sessions(r, due - r->started) < 0)
			return false;
		bot_snapshot(&r->bot, false, &r->progress);
		if ((long)r->progress.c.logged_in_now == cfg->players)
			return true;
		if (t > give_up) {
			fprintf(stderr, "\nbot: only %llu of %ld players logged in after %.0f s\n",
				(unsigned long long)r->progress.c.logged_in_now, cfg->players, t);
			return false;
		}
		if (t >= next_progress) {
			progress(r, "ramp");
			next_progress += 1;
		}
		sleep_or_signal(r, STEP_MS);
	}
	return false;
}

static void steady(struct run *r)
{
	const struct bot_config *cfg = &r->bot.cfg;
	bot_snapshot(&r->bot, true, &r->steady_start);
	uint64_t start = bench_now_ns();
	bool stormed = cfg->storm_at_s < 0;
	bot_set_acting(&r->bot, true);
	double next_progress = 1;
	for (;;) {
		double t = (double)(bench_now_ns() - start) / 1e9;
		if (t >= cfg->duration_s || r->interrupted)
			break;
		if (!stormed && t >= cfg->storm_at_s) {
			stormed = true;
			bot_storm(&r->bot);
		}
		if (t >= next_progress) {
			progress(r, "steady");
			next_progress += 1;
		}
		sleep_or_signal(r, STEP_MS);
	}
	bot_set_acting(&r->bot, false);
	r->steady_s = (double)(bench_now_ns() - start) / 1e9;
}

/*
 * Wait for the outstanding requests to end (answered or timed out) and for
 * players the storm dropped to be back in.
 */
static void drain(struct run *r)
{
	uint64_t deadline = bench_now_ns() + (uint64_t)(r->bot.cfg.timeout_ms + 1000) * 1000000u;
	for (;;) {
		bot_snapshot(&r->bot, false, &r->final);
		r->end_logged_in = r->final.c.logged_in_now;
		bool back = (long)r->end_logged_in == r->bot.cfg.players || !r->all_logged_in;
		if ((bot_outstanding(&r->final) == 0 && back) || bench_now_ns() > deadline)
			return;
		sleep_or_signal(r, 20);
	}
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static bool run_ok(const struct run *r, uint64_t *errors_out)
{
	const struct bot_counters *c = &r->final.c;
	/* A late reply is the same request as its timeout: counted once. */
	uint64_t errors = c->protocol_errors + c->unexpected_disconnects + c->pushes[PUSH_KICKED]
			  + c->answered_twice + c->wrong_zone + c->earn_lost + c->earn_doubled
			  + (r->bot.cfg.expect_views ? c->views_missed : 0);
	for (int k = 0; k < BOT_KIND_COUNT; k++)
		errors += c->error_replies[k] + c->unanswered[k];
	*errors_out = errors;
	return errors == 0 && r->all_logged_in && bot_outstanding(&r->final) == 0
	       && (long)r->end_logged_in == r->bot.cfg.players;
}

/* Pushes of one kind per player per second of the steady phase. */
static double per_player_s(const struct run *r, enum bot_push p)
{
	if (r->steady_s <= 0)
		return 0;
	return (double)(r->final.c.pushes[p] - r->steady_start.c.pushes[p])
	       / r->steady_s / (double)r->bot.cfg.players;
}

/* Positions received (WorldUpdate.moved entries and PlayerMoved pushes)
 * per player per second of the steady phase. */
static double positions_per_player_s(const struct run *r)
{
	const struct bot_counters *c = &r->final.c, *s0 = &r->steady_start.c;
	if (r->steady_s <= 0)
		return 0;
	return (double)(c->entries[ENTRY_MOVED] - s0->entries[ENTRY_MOVED]
			+ c->pushes[PUSH_MOVED] - s0->pushes[PUSH_MOVED])
	       / r->steady_s / (double)r->bot.cfg.players;
}

/* Frame bytes received per player per second of the steady phase. */
static double bytes_per_player_s(const struct run *r)
{
	if (r->steady_s <= 0)
		return 0;
	return (double)(r->final.c.bytes_frames_in - r->steady_start.c.bytes_frames_in)
	       / r->steady_s / (double)r->bot.cfg.players;
}

static void print_summary(const struct run *r)
{
	const struct bot_counters *c = &r->final.c, *s0 = &r->steady_start.c;
	printf("\n%-6s %10s %10s %8s %10s %8s %10s %9s %9s %9s %9s\n", "req", "sent", "answered",
	       "errors", "unanswered", "retried", "steady/s", "p50 ms", "p99 ms", "p99.9 ms",
	       "max ms");
	for (int k = 0; k < BOT_KIND_COUNT; k++) {
		const struct hist *h = &r->final.total[k];
		double rate = r->steady_s > 0 ? (double)(c->answered[k] - s0->answered[k]) / r->steady_s : 0;
		printf("%-6s %10llu %10llu %8llu %10llu %8llu %10.0f %9.3f %9.3f %9.3f %9.3f\n",
		       bot_kind_names[k], (unsigned long long)c->sent[k],
		       (unsigned long long)c->answered[k], (unsigned long long)c->error_replies[k],
		       (unsigned long long)c->unanswered[k], (unsigned long long)c->retries[k], rate,
		       ms(hist_percentile(h, 50)),
		       ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max));
	}
	printf("pushes:");
	for (int p = 0; p < PUSH_COUNT; p++)
		printf(" %s %llu", bot_push_names[p], (unsigned long long)c->pushes[p]);
	printf("\nupdate entries:");
	for (int e = 0; e < ENTRY_COUNT; e++)
		printf(" %s %llu", bot_entry_names[e], (unsigned long long)c->entries[e]);
	const struct hist *push = &r->final.push;
	printf("\npush latency (move sent -> observer has it, %llu timed): p50 %.3f p99 %.3f "
	       "p99.9 %.3f max %.3f ms\n", (unsigned long long)c->positions_matched,
	       ms(hist_percentile(push, 50)), ms(hist_percentile(push, 99)),
	       ms(hist_percentile(push, 99.9)), ms(push->max));
	printf("per player per second (steady): %.2f update messages, %.2f positions",
	       per_player_s(r, PUSH_UPDATE), positions_per_player_s(r));
	const struct hist *view = &r->final.view;
	printf("\nzone changes (travel: a handoff when another shard owns the zone): %llu answered,"
	       " %llu retried after ZONE_HANDOFF, wrong zone %llu; views after them: %llu seen, "
	       "%llu missed (%s), MoveReply -> first player of the new zone p50 %.3f p99 %.3f "
	       "max %.3f ms", (unsigned long long)c->answered[BOT_TRAVEL],
	       (unsigned long long)c->retries[BOT_TRAVEL], (unsigned long long)c->wrong_zone,
	       (unsigned long long)c->views_seen, (unsigned long long)c->views_missed,
	       r->bot.cfg.expect_views ? "errors" : "not errors without --expect-views",
	       ms(hist_percentile(view, 50)), ms(hist_percentile(view, 99)), ms(view->max));
	printf("\nexactly once: answered twice %llu; earn ledger: lost %llu, doubled %llu",
	       (unsigned long long)c->answered_twice, (unsigned long long)c->earn_lost,
	       (unsigned long long)c->earn_doubled);
	printf("\nplayers %ld, logged in at end %llu, connects %llu, relogins %llu, storm drops %llu,"
	       " unexpected disconnects %llu, protocol errors %llu, late replies %llu,"
	       " skipped (max pending) %llu\n",
	       r->bot.cfg.players, (unsigned long long)r->end_logged_in,
	       (unsigned long long)c->connects, (unsigned long long)c->relogins,
	       (unsigned long long)c->storm_disconnects,
	       (unsigned long long)c->unexpected_disconnects,
	       (unsigned long long)c->protocol_errors, (unsigned long long)c->late_replies,
	       (unsigned long long)c->skipped_full);
	for (int code = 1; code < BOT_ERROR_CODES; code++)
		if (c->errors_by_code[code])
			printf("error code %d (%s): %llu\n", code,
			       protobuf_c_enum_descriptor_get_value(
				       &ringgate__client__error_code__descriptor, code)->name,
			       (unsigned long long)c->errors_by_code[code]);
}

static void json_hist(FILE *f, const struct hist *h)
{
	fprintf(f, "\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"p999_ms\":%.4f,\"max_ms\":%.4f,\"mean_ms\":%.4f",
		ms(hist_percentile(h, 50)), ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)),
		ms(h->max), hist_mean(h) / 1e6);
}

static int write_json(const struct run *r, const char *path, bool ok, uint64_t errors)
{
	const struct bot_counters *c = &r->final.c, *s0 = &r->steady_start.c;
	const struct bot_config *cfg = &r->bot.cfg;
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "bot: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f, "{\"config\":{\"host\":\"%s\",\"port\":%ld,\"players\":%ld,\"ramp_per_s\":%g,"
		"\"duration_s\":%g,\"move_per_s\":%g,\"chat_per_s\":%g,\"ping_per_s\":%g,"
		"\"earn_per_s\":%g,\"storm_at_s\":%g,\"storm_fraction\":%g,\"timeout_ms\":%ld,"
		"\"loops\":%u,\"walk_step\":%g,\"crowd\":%s,\"crowd_size\":%g,"
		"\"border_every\":%ld,\"border_zones\":\"%s\"},\n",
		cfg->host, cfg->port, cfg->players, cfg->ramp_per_s, cfg->duration_s, cfg->move_per_s,
		cfg->chat_per_s, cfg->ping_per_s, cfg->earn_per_s, cfg->storm_at_s,
		cfg->storm_fraction, cfg->timeout_ms, r->bot.loop_count, cfg->walk_step,
		cfg->crowd ? "true" : "false", cfg->crowd_size, cfg->border_every, cfg->border_zones);
	fprintf(f, "\"steady_s\":%.3f,\"requests\":{", r->steady_s);
	for (int k = 0; k < BOT_KIND_COUNT; k++) {
		double rate = r->steady_s > 0 ? (double)(c->answered[k] - s0->answered[k]) / r->steady_s : 0;
		fprintf(f, "%s\n \"%s\":{\"sent\":%llu,\"answered\":%llu,\"error_replies\":%llu,"
			"\"unanswered\":%llu,\"abandoned_by_storm\":%llu,\"retried\":%llu,"
			"\"steady_per_s\":%.1f,",
			k ? "," : "", bot_kind_names[k], (unsigned long long)c->sent[k],
			(unsigned long long)c->answered[k], (unsigned long long)c->error_replies[k],
			(unsigned long long)c->unanswered[k], (unsigned long long)c->abandoned[k],
			(unsigned long long)c->retries[k], rate);
		json_hist(f, &r->final.total[k]);
		fputc('}', f);
	}
	fprintf(f, "},\n\"pushes\":{");
	for (int p = 0; p < PUSH_COUNT; p++)
		fprintf(f, "%s\"%s\":%llu", p ? "," : "", bot_push_names[p],
			(unsigned long long)c->pushes[p]);
	fprintf(f, "},\n\"update_entries\":{");
	for (int e = 0; e < ENTRY_COUNT; e++)
		fprintf(f, "%s\"%s\":%llu", e ? "," : "", bot_entry_names[e],
			(unsigned long long)c->entries[e]);
	fprintf(f, "},\n\"push_latency\":{\"timed\":%llu,",
		(unsigned long long)c->positions_matched);
	json_hist(f, &r->final.push);
	fprintf(f, "},\n\"views\":{\"seen\":%llu,\"missed\":%llu,",
		(unsigned long long)c->views_seen, (unsigned long long)c->views_missed);
	json_hist(f, &r->final.view);
	fprintf(f, "},\n\"answered_twice\":%llu,\"wrong_zone\":%llu,\"earn_lost\":%llu,"
		"\"earn_doubled\":%llu,",
		(unsigned long long)c->answered_twice, (unsigned long long)c->wrong_zone,
		(unsigned long long)c->earn_lost, (unsigned long long)c->earn_doubled);
	fprintf(f, "\n\"updates_per_player_s\":%.3f,\"positions_per_player_s\":%.3f,"
		"\"bytes_in_per_player_s\":%.1f,",
		per_player_s(r, PUSH_UPDATE), positions_per_player_s(r), bytes_per_player_s(r));
	fprintf(f, "\n\"error_codes\":{");
	bool first = true;
	for (int code = 1; code < BOT_ERROR_CODES; code++) {
		if (!c->errors_by_code[code])
			continue;
		fprintf(f, "%s\"%s\":%llu", first ? "" : ",",
			protobuf_c_enum_descriptor_get_value(&ringgate__client__error_code__descriptor,
							     code)->name,
			(unsigned long long)c->errors_by_code[code]);
		first = false;
	}
	fprintf(f, "},\n\"players\":%ld,\"all_logged_in\":%s,\"logged_in_at_end\":%llu,"
		"\"connects\":%llu,\"logins\":%llu,\"relogins\":%llu,\"storm_disconnects\":%llu,"
		"\"unexpected_disconnects\":%llu,\"protocol_errors\":%llu,\"late_replies\":%llu,"
		"\"skipped_max_pending\":%llu,\"bytes_in\":%llu,\"interrupted\":%s,"
		"\"errors\":%llu,\"ok\":%s}\n",
		cfg->players, r->all_logged_in ? "true" : "false",
		(unsigned long long)r->end_logged_in, (unsigned long long)c->connects,
		(unsigned long long)c->logins, (unsigned long long)c->relogins,
		(unsigned long long)c->storm_disconnects,
		(unsigned long long)c->unexpected_disconnects,
		(unsigned long long)c->protocol_errors, (unsigned long long)c->late_replies,
		(unsigned long long)c->skipped_full, (unsigned long long)c->bytes_frames_in,
		r->interrupted ? "true" : "false", (unsigned long long)errors, ok ? "true" : "false");
	fclose(f);
	return 0;
}

#define RG_OPTIONS_TYPE struct bot_config
#define ROW_RATE(name, field, dflt, help) \
	RG_OPTION_DOUBLE(name, struct bot_config, field, dflt, 0, 1e6, help)

static const char *const transports[] = { "tcp", "ws", NULL };

static const struct rg_option bot_options[] = {
	RG_ROW_STRING("host", host, "127.0.0.1", "gateway address (numeric)"),
	RG_ROW_INT("port", port, 7777, 1, 65535, "gateway client port"),
	RG_ROW_INT("players", players, 100, 1, 1000000, "players (sessions) to run"),
	ROW_RATE("ramp", ramp_per_s, 100, "players started per second (0: all at once)"),
	RG_OPTION_DOUBLE("duration", struct bot_config, duration_s, 10, 0, 1e7,
			 "seconds of steady phase after the ramp"),
	ROW_RATE("move-rate", move_per_s, 10, "moves per player per second"),
	RG_OPTION_DOUBLE("walk-step", struct bot_config, walk_step, 5, 0, 1e9,
			 "distance of one move of the random walk"),
	RG_OPTION_BOOL("crowd", struct bot_config, crowd, false,
		       "everyone walks in one square at the first zone's centre (the worst case)"),
	RG_OPTION_DOUBLE("crowd-size", struct bot_config, crowd_size, 50, 0, 1e9,
			 "side of the crowd's square"),
	ROW_RATE("chat-rate", chat_per_s, 0.2, "chats per player per second"),
	ROW_RATE("ping-rate", ping_per_s, 1, "pings per player per second"),
	ROW_RATE("earn-rate", earn_per_s, 0.1, "earns per player per second"),
	RG_OPTION_DOUBLE("storm-at", struct bot_config, storm_at_s, -1, -1, 1e7,
			 "reconnect storm this many seconds into the steady phase (<0: none)"),
	RG_OPTION_DOUBLE("storm-fraction", struct bot_config, storm_fraction, 0.2, 0, 1,
			 "fraction of players the storm drops and logs in again"),
	RG_ROW_INT("timeout-ms", timeout_ms, 5000, 1, 86400000,
		"a request unanswered this long fails"),
	RG_ROW_INT("max-pending", max_pending, 8, 1, BOT_MAX_PENDING, "requests in flight per player"),
	RG_ROW_INT("loops", loops, 1, 1, NET_LOOPS_MAX, "libnet loop threads"),
	RG_ROW_STRING("name-prefix", name_prefix, "bot", "player names are PREFIX<n>"),
	RG_ROW_STRING("password", password, "bot-password", "every player's password"),
	RG_ROW_STRING("json", json_path, "", "write every figure to this JSON file"),
	RG_OPTION_STRING("transport", struct bot_config, transport, "tcp", transports,
			 "tcp: varint frames; ws: WebSocket messages (--port is then the "
			 "gateway's --ws-port)"),
	RG_ROW_INT("border-every", border_every, 0, 0, 1000000,
		"every K-th move travels to the next zone of the route (0: never)"),
	RG_ROW_STRING("border-zones", border_zones, "",
		"the route of the border walk: zone ids, comma-separated (default: every zone)"),
	RG_OPTION_BOOL("expect-views", struct bot_config, expect_views, false,
		       "fail when a travel into a zone with others of ours shows none of them "
		       "(set it when every player of a zone sees every other)"),
	RG_ROW_INT("view-wait-ms", view_wait_ms, 1000, 1, 600000,
		"how long after a travel's MoveReply the new zone's players may take to show"),
	{ 0 },
};

int main(int argc, char **argv)
{
	static struct run r; /* static: several histograms of 60 KB */
	rg_signals_block();
	rg_log_init("bot", RG_LOG_WARN);
	int rc = rg_options_parse(bot_options, &r.bot.cfg, "bot",
				  "usage: bot [--config FILE] [options]", argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	if (bot_route_parse(&r.bot) < 0)
		return 2;
	if (r.bot.cfg.crowd && r.bot.cfg.border_every > 0) {
		fprintf(stderr, "bot: --crowd and --border-every exclude each other\n");
		return 2;
	}

	struct net_runtime_config rcfg = { .loops = (unsigned)r.bot.cfg.loops };
	rc = net_runtime_create(&rcfg, &r.bot.rt);
	if (rc < 0) {
		fprintf(stderr, "bot: runtime: %s\n", net_strerror(rc));
		return 1;
	}
	r.clients = calloc((size_t)r.bot.cfg.players, sizeof(*r.clients));
	if (!r.clients || (rc = net_runtime_start(r.bot.rt)) < 0
	    || (rc = bot_players_init(&r.bot)) < 0) {
		fprintf(stderr, "bot: start: %s\n", net_strerror(rc ? rc : -ENOMEM));
		net_runtime_stop(r.bot.rt);
		net_runtime_destroy(r.bot.rt);
		bot_players_free(&r.bot);
		free(r.clients);
		return 1;
	}
	fprintf(stderr, "bot: %ld players -> %s:%ld, engine %s, %u loop(s)\n", r.bot.cfg.players,
		r.bot.cfg.host, r.bot.cfg.port, net_runtime_engine(r.bot.rt), r.bot.loop_count);

	r.t0_ns = bench_now_ns();
	r.all_logged_in = ramp_up(&r);
	if (r.all_logged_in)
		steady(&r);
	drain(&r);
	progress(&r, "done");
	if (isatty(STDERR_FILENO))
		fputc('\n', stderr);

	bot_players_stop(&r.bot);
	for (unsigned i = 0; i < r.client_count; i++)
		net_client_stop(r.clients[i]);
	net_runtime_stop(r.bot.rt);
	net_runtime_destroy(r.bot.rt);
	bot_players_free(&r.bot);
	free(r.clients);

	uint64_t errors;
	bool ok = run_ok(&r, &errors);
	print_summary(&r);
	printf("bot: %s (%llu errors)\n", ok ? "ok" : "FAILED", (unsigned long long)errors);
	if (r.bot.cfg.json_path[0] && write_json(&r, r.bot.cfg.json_path, ok, errors) < 0)
		return 1;
	return ok ? 0 : 1;
}
