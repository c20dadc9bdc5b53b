/*
 * player.c: what each bot session does, on its loop's thread.
 *
 * A session's life: connected -> takes a free identity, sends Login ->
 * LoginReply: logged in; while the bot is "acting", the loop's tick sends
 * Move / Chat / Ping / Earn at the configured per-player rates (jittered,
 * so players do not march in step) -> disconnected: outstanding requests
 * are counted (abandoned if the storm cut the session, unanswered
 * otherwise), the identity goes back to the free stack and libnet redials.
 *
 * Every request carries a fresh non-zero seq and waits in the session's
 * pending table until a reply with that seq arrives (latency recorded),
 * an Error arrives (counted by code), or timeout_ms passes (unanswered).
 * An Error ZONE_HANDOFF is not an end: the request waits RETRY_DELAY_MS
 * and goes out again under a new seq (bot.h, "Exactly once").
 * A login that fails either way is retried on a fresh connection: the
 * session drops itself (counted as expected) and libnet redials.
 * A reply with an unknown seq, of the wrong type, or that does not decode
 * is a protocol error and the session is dropped.
 */
#include "bot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

#define TICK_MS 10
#define RETRY_DELAY_MS 20 /* after ZONE_HANDOFF: the handoff is usually over */
#define LOGIN_PAUSE_MS 200 /* after a refused login, before a fresh connection */

const char *const bot_kind_names[BOT_KIND_COUNT] = { "login", "move", "chat", "ping", "earn",
						     "travel" };
const char *const bot_push_names[PUSH_COUNT] = { "joined", "left", "moved", "chat_line",
						 "kicked", "update" };
const char *const bot_entry_names[ENTRY_COUNT] = { "left", "entered", "moved", "chat" };

/* xorshift64: a per-loop generator, so no thread shares one. */
static uint64_t next_random(struct bot_loop *bl)
{
	bl->rng ^= bl->rng << 13;
	bl->rng ^= bl->rng >> 7;
	bl->rng ^= bl->rng << 17;
	return bl->rng;
}

/* A uniform double in [0, 1). */
static double random_unit(struct bot_loop *bl)
{
	return (double)(next_random(bl) >> 11) / 9007199254740992.0;
}

static double rate_of(const struct bot_config *cfg, enum bot_kind kind)
{
	switch (kind) {
	case BOT_MOVE: return cfg->move_per_s;
	case BOT_CHAT: return cfg->chat_per_s;
	case BOT_PING: return cfg->ping_per_s;
	case BOT_EARN: return cfg->earn_per_s;
	default: return 0;
	}
}

/* The next due time of an action: one period later on average (0.5..1.5). */
static uint64_t next_due(struct bot_loop *bl, enum bot_kind kind, uint64_t from_ms)
{
	double period_ms = 1000.0 / rate_of(&bl->bot->cfg, kind);
	return from_ms + (uint64_t)(period_ms * (0.5 + random_unit(bl)));
}

/* Pack msg into one frame and queue it. 0 or a negative libnet code. */
static int send_message(struct bot_session *bs, Ringgate__Client__ClientMessage *msg)
{
	uint8_t buf[1024];
	size_t len = ringgate__client__client_message__get_packed_size(msg);
	if (len > sizeof(buf))
		return -EMSGSIZE;
	ringgate__client__client_message__pack(msg, buf);
	if (bs->ws)
		return bot_ws_send(bs, buf, len);
	return net_session_send_frame(bs->s, buf, len);
}

/*
 * Put request p on the wire under a fresh seq (p->seq set): the message is
 * built from what p asks. 0, or a negative code when the session is going
 * (on_disconnected does the accounting).
 */
static int transmit(struct bot_session *bs, struct bot_pending *p)
{
	const struct bot_config *cfg = &bs->bl->bot->cfg;
	Ringgate__Client__ClientMessage msg = RINGGATE__CLIENT__CLIENT_MESSAGE__INIT;
	Ringgate__Client__LoginRequest login = RINGGATE__CLIENT__LOGIN_REQUEST__INIT;
	Ringgate__Client__MoveRequest move = RINGGATE__CLIENT__MOVE_REQUEST__INIT;
	Ringgate__Client__ChatRequest chat = RINGGATE__CLIENT__CHAT_REQUEST__INIT;
	Ringgate__Client__PingRequest ping = RINGGATE__CLIENT__PING_REQUEST__INIT;
	Ringgate__Client__EarnRequest earn = RINGGATE__CLIENT__EARN_REQUEST__INIT;
	char name[64], text[64];
	switch (p->kind) {
	case BOT_LOGIN:
		snprintf(name, sizeof(name), "%s%ld", cfg->name_prefix, bs->player);
		login.name = name;
		login.password.data = (uint8_t *)cfg->password;
		login.password.len = strlen(cfg->password);
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_LOGIN;
		msg.login = &login;
		break;
	case BOT_MOVE:
	case BOT_TRAVEL:
		move.x = p->x;
		move.y = p->y;
		move.zone = p->zone;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_MOVE;
		msg.move = &move;
		break;
	case BOT_CHAT:
		snprintf(text, sizeof(text), "hello from %s%ld", cfg->name_prefix, bs->player);
		chat.text = text;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_CHAT;
		msg.chat = &chat;
		break;
	case BOT_PING:
		ping.client_time = bench_now_ns();
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_PING;
		msg.ping = &ping;
		break;
	case BOT_EARN:
		earn.amount = p->amount;
		msg.body_case = RINGGATE__CLIENT__CLIENT_MESSAGE__BODY_EARN;
		msg.earn = &earn;
		break;
	default:
		return -EINVAL;
	}
	if (++bs->next_seq == 0)
		bs->next_seq = 1;
	msg.seq = bs->next_seq;
	int rc = send_message(bs, &msg);
	if (rc < 0)
		return rc;
	p->seq = msg.seq;
	bs->bl->stats.c.sent[p->kind]++;
	if (p->kind == BOT_EARN)
		bs->bl->bot->ledgers[bs->player].ceil += p->amount; /* may apply from now on */
	return 0;
}

/* Send request req and remember it until it ends. false when it was not
 * sent (max_pending reached, or the session is going). */
static bool send_request(struct bot_session *bs, const struct bot_pending *req)
{
	struct bot_counters *c = &bs->bl->stats.c;
	if (bs->pending_count >= (unsigned)bs->bl->bot->cfg.max_pending) {
		c->skipped_full++;
		return false;
	}
	struct bot_pending *p = &bs->pending[bs->pending_count];
	*p = *req;
	p->sent_ns = bench_now_ns();
	p->retry_at_ns = 0;
	if (transmit(bs, p) < 0)
		return false;
	bs->pending_count++;
	c->pending_now++;
	return true;
}

static void send_login(struct bot_session *bs)
{
	send_request(bs, &(struct bot_pending){ .kind = BOT_LOGIN });
}

/* ---- movement and push latency ---- */

static uint64_t xy_bits(float x, float y)
{
	uint32_t a, b;
	memcpy(&a, &x, sizeof(a));
	memcpy(&b, &y, sizeof(b));
	return (uint64_t)a << 32 | b;
}

static float clampf(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* ---- zones ---- */

/* Keep the world's zones (the first LoginReply that lists them; every
 * shard lists the same; a server that lists none: the login's zone). Any
 * loop. */
static void zones_learn(struct bot *bot, const Ringgate__Client__LoginReply *reply)
{
	Ringgate__Client__Zone *const *list = reply->n_zones ? reply->zones : &reply->zone;
	size_t n = reply->n_zones ? reply->n_zones : reply->zone != NULL;
	pthread_mutex_lock(&bot->lock);
	if (bot->zone_count == 0) {
		for (size_t i = 0; i < n && bot->zone_count < BOT_ZONES_MAX; i++) {
			const Ringgate__Client__Zone *z = list[i];
			bot->zones[bot->zone_count++] = (struct bot_zone){
				.id = z->id, .min_x = z->min_x, .min_y = z->min_y,
				.max_x = z->max_x, .max_y = z->max_y,
			};
		}
	}
	pthread_mutex_unlock(&bot->lock);
}

/* Zone id's bounds and index in bot->zones; -1 when it is unknown. */
static int zone_find(struct bot *bot, uint32_t id, struct bot_zone *out /* OUT */)
{
	int found = -1;
	pthread_mutex_lock(&bot->lock);
	for (unsigned i = 0; i < bot->zone_count; i++) {
		if (bot->zones[i].id == id) {
			*out = bot->zones[i];
			found = (int)i;
			break;
		}
	}
	pthread_mutex_unlock(&bot->lock);
	return found;
}

/* The zone at position pos of the walk: the route (--border-zones), or
 * every zone in LoginReply's order; 0 when no zone is known yet. */
static uint32_t route_zone(struct bot *bot, unsigned long pos)
{
	uint32_t id = 0;
	pthread_mutex_lock(&bot->lock);
	if (bot->route_len > 0)
		id = bot->route[pos % bot->route_len];
	else if (bot->zone_count > 0)
		id = bot->zones[pos % bot->zone_count].id;
	pthread_mutex_unlock(&bot->lock);
	return id;
}

/* The session is in zone id now (the server said so): move its count. */
static void zone_enter(struct bot_session *bs, uint32_t id)
{
	struct bot *bot = bs->bl->bot;
	struct bot_zone z;
	if (bs->pop_index >= 0)
		atomic_fetch_sub(&bot->zone_pop[bs->pop_index], 1);
	bs->cur_zone = id;
	bs->pop_index = zone_find(bot, id, &z);
	if (bs->pop_index >= 0)
		atomic_fetch_add(&bot->zone_pop[bs->pop_index], 1);
}

/* Players of ours in the session's zone besides itself. */
static long zone_others(const struct bot_session *bs)
{
	if (bs->pop_index < 0)
		return 0;
	return atomic_load(&bs->bl->bot->zone_pop[bs->pop_index]) - 1;
}

/* Walk inside zone id from now on (the crowd's square of it with --crowd).
 * false when the zone is unknown or empty. */
static bool walk_in(struct bot_session *bs, uint32_t id)
{
	const struct bot_config *cfg = &bs->bl->bot->cfg;
	struct bot_zone z;
	if (zone_find(bs->bl->bot, id, &z) < 0 || z.max_x < z.min_x || z.max_y < z.min_y)
		return false;
	bs->zone = id;
	bs->min_x = z.min_x;
	bs->max_x = z.max_x;
	bs->min_y = z.min_y;
	bs->max_y = z.max_y;
	if (cfg->crowd) {
		float cx = (z.min_x + z.max_x) / 2, cy = (z.min_y + z.max_y) / 2;
		float half = (float)cfg->crowd_size / 2;
		bs->min_x = fmaxf(z.min_x, cx - half);
		bs->max_x = fminf(z.max_x, cx + half);
		bs->min_y = fmaxf(z.min_y, cy - half);
		bs->max_y = fminf(z.max_y, cy + half);
	}
	return true;
}

/*
 * The next move: a random point of the player's zone first (its home:
 * the i-th zone of the walk, the first with --crowd), every K-th move
 * with --border-every a random point of the route's next zone, else one
 * step of the random walk. A move that names a zone other than the one
 * the server has the player in is a travel. false: nothing to send (a
 * travel is in flight, or no zone is known).
 */
static bool plan_move(struct bot_session *bs, struct bot_pending *p /* OUT */)
{
	struct bot_loop *bl = bs->bl;
	const struct bot_config *cfg = &bl->bot->cfg;
	uint32_t target = 0;
	if (bs->travelling)
		return false;
	if (!bs->placed) {
		bs->route_pos = cfg->crowd ? 0 : (unsigned)bs->player;
		target = route_zone(bl->bot, bs->route_pos);
	} else if (cfg->border_every > 0 && bs->moves_since_travel >= cfg->border_every) {
		target = route_zone(bl->bot, ++bs->route_pos);
	}
	*p = (struct bot_pending){ .kind = BOT_MOVE };
	if (target != 0 || !bs->placed) {
		if (!walk_in(bs, target)) {
			bl->stats.c.protocol_errors++; /* LoginReply must name a valid zone */
			return false;
		}
		bs->x = bs->min_x + (float)random_unit(bl) * (bs->max_x - bs->min_x);
		bs->y = bs->min_y + (float)random_unit(bl) * (bs->max_y - bs->min_y);
		p->zone = target;
		bs->placed = true;
		bs->moves_since_travel = 0;
		if (target != bs->cur_zone) {
			p->kind = BOT_TRAVEL;
			bs->travelling = true;
		}
	} else {
		double angle = random_unit(bl) * 6.283185307179586;
		double step = cfg->walk_step;
		bs->x = clampf(bs->x + (float)(step * cos(angle)), bs->min_x, bs->max_x);
		bs->y = clampf(bs->y + (float)(step * sin(angle)), bs->min_y, bs->max_y);
		bs->moves_since_travel++;
	}
	p->x = bs->x;
	p->y = bs->y;
	return true;
}

/* Remember that this identity's move to (x, y) left now. */
static void mover_record(struct bot *bot, long identity, float x, float y, uint64_t now_ns)
{
	struct bot_mover *m = &bot->movers[identity];
	unsigned i = atomic_fetch_add_explicit(&m->head, 1, memory_order_relaxed) % BOT_MOVER_RING;
	atomic_store_explicit(&m->sent_ns[i], 0, memory_order_relaxed);
	atomic_store_explicit(&m->xy[i], xy_bits(x, y), memory_order_release);
	atomic_store_explicit(&m->sent_ns[i], now_ns, memory_order_release);
}

/* The identity of player id, or -1 when it is not one of ours. */
static long identity_of(struct bot *bot, uint64_t id)
{
	for (size_t i = id & bot->id_mask, n = 0; n <= bot->id_mask; i = (i + 1) & bot->id_mask, n++) {
		uint64_t k = atomic_load_explicit(&bot->id_keys[i], memory_order_acquire);
		if (k == id)
			return atomic_load_explicit(&bot->id_identity[i], memory_order_acquire);
		if (k == 0)
			return -1;
	}
	return -1;
}

/* Note that player id is identity (after its login; ids never change). */
static void identity_register(struct bot *bot, uint64_t id, long identity)
{
	if (id == 0)
		return;
	for (size_t i = id & bot->id_mask, n = 0; n <= bot->id_mask; i = (i + 1) & bot->id_mask, n++) {
		uint64_t expected = 0;
		if (atomic_compare_exchange_strong(&bot->id_keys[i], &expected, id) || expected == id) {
			atomic_store_explicit(&bot->id_identity[i], identity, memory_order_release);
			return;
		}
	}
}

/* An observer got player id's position (x, y): time it, if the move came
 * from this process. */
static void position_seen(struct bot_loop *bl, uint64_t id, float x, float y, uint64_t now_ns)
{
	long identity = identity_of(bl->bot, id);
	if (identity < 0)
		return;
	struct bot_mover *m = &bl->bot->movers[identity];
	uint64_t want = xy_bits(x, y);
	for (unsigned i = 0; i < BOT_MOVER_RING; i++) {
		if (atomic_load_explicit(&m->xy[i], memory_order_acquire) != want)
			continue;
		uint64_t sent = atomic_load_explicit(&m->sent_ns[i], memory_order_acquire);
		if (sent == 0 || sent > now_ns)
			return;
		hist_record(&bl->stats.push, now_ns - sent);
		bl->stats.c.positions_matched++;
		return;
	}
}

/* A scheduled action of this kind (BOT_MOVE may turn into a travel). */
static void send_action(struct bot_session *bs, enum bot_kind kind)
{
	struct bot_loop *bl = bs->bl;
	struct bot_pending p = { .kind = (uint8_t)kind };
	if (kind == BOT_MOVE && !plan_move(bs, &p))
		return;
	if (kind == BOT_EARN)
		p.amount = 1 + (uint32_t)(next_random(bl) % 10);
	if (!send_request(bs, &p)) {
		if (p.kind == BOT_TRAVEL) /* not sent: try again at the next move */
			bs->travelling = bs->placed = false;
		return;
	}
	if (p.kind == BOT_MOVE || p.kind == BOT_TRAVEL)
		mover_record(bl->bot, bs->player, p.x, p.y, bench_now_ns());
}

/* Remove pending entry i (order does not matter). */
static void pending_remove(struct bot_session *bs, unsigned i)
{
	bs->pending[i] = bs->pending[--bs->pending_count];
	bs->bl->stats.c.pending_now--;
}

/* A travel ended without arriving (an error, a timeout): the player is
 * where it was; the next move starts the walk again from there. */
static void travel_failed(struct bot_session *bs)
{
	bs->travelling = false;
	bs->placed = false;
}

/* The view check of the last travel is due (its wait is over, or another
 * travel starts): a miss if others of ours were in the zone then and still
 * are. */
static void view_check_end(struct bot_session *bs)
{
	if (bs->view_until_ns == 0)
		return;
	if (bs->view_expected && zone_others(bs) > 0)
		bs->bl->stats.c.views_missed++;
	bs->view_until_ns = 0;
}

/* An entered player (WorldUpdate.entered or PlayerJoined) of zone id: the
 * view the last travel waits for, if it is of the new zone. */
static void view_entered(struct bot_session *bs, uint64_t id, uint32_t zone, uint64_t now_ns)
{
	if (bs->view_until_ns == 0 || id == bs->self_id || zone != bs->cur_zone)
		return;
	bs->bl->stats.c.views_seen++;
	hist_record(&bs->bl->stats.view, now_ns - bs->view_from_ns);
	bs->view_until_ns = 0;
}

/* The tick of one session: expire requests, then what is due. */
static void session_tick(struct bot_session *bs, uint64_t now_ms, uint64_t now_ns)
{
	struct bot_loop *bl = bs->bl;
	const struct bot_config *cfg = &bl->bot->cfg;
	uint64_t timeout_ns = (uint64_t)cfg->timeout_ms * 1000000u;
	bool login_lost = false;
	for (unsigned i = 0; i < bs->pending_count;) {
		struct bot_pending *p = &bs->pending[i];
		if (now_ns - p->sent_ns > timeout_ns) {
			bl->stats.c.unanswered[p->kind]++;
			login_lost |= p->kind == BOT_LOGIN;
			if (p->kind == BOT_TRAVEL)
				travel_failed(bs);
			if (p->seq != 0) /* a late reply to it is not a second answer */
				bs->timed_out[bs->timed_out_head++ % BOT_TIMED_OUT_RING] = p->seq;
			pending_remove(bs, i);
			continue;
		}
		if (p->retry_at_ns != 0 && now_ns >= p->retry_at_ns) {
			p->retry_at_ns = 0;
			if (transmit(bs, p) < 0)
				return; /* the session is going */
		}
		i++;
	}
	if (bs->view_until_ns != 0 && now_ns >= bs->view_until_ns)
		view_check_end(bs);
	if (bs->drop_at_ns != 0 && now_ns >= bs->drop_at_ns) {
		net_session_disconnect(bs->s, NET_REASON_LOCAL);
		return;
	}
	if (login_lost) {
		/* Log in again on a fresh connection (see on_frame). */
		bs->dropping = true;
		net_session_disconnect(bs->s, NET_REASON_LOCAL);
		return;
	}
	if (!bs->logged_in || !atomic_load_explicit(&bl->bot->acting, memory_order_relaxed))
		return;
	for (int kind = BOT_MOVE; kind < BOT_KIND_COUNT; kind++) {
		if (rate_of(cfg, kind) <= 0 || now_ms < bs->next_ms[kind])
			continue;
		send_action(bs, kind);
		bs->next_ms[kind] = next_due(bl, kind, bs->next_ms[kind]);
		if (bs->next_ms[kind] + 1000 < now_ms) /* fell far behind: no burst */
			bs->next_ms[kind] = next_due(bl, kind, now_ms);
	}
}

static void on_tick(struct net_timer *timer, void *arg)
{
	struct bot_loop *bl = arg;
	(void)timer;
	uint64_t now_ms = net_loop_now(bl->loop), now_ns = bench_now_ns();
	/* A tick may disconnect its session; if that runs on_disconnected at
	 * once, the list's last session moves into slot i and is skipped
	 * until the next tick, which is harmless. */
	for (unsigned i = 0; i < bl->session_count; i++)
		session_tick(bl->sessions[i], now_ms, now_ns);
}

static void on_connected(struct net_session *s)
{
	struct bot *bot = net_session_service_user(s);
	struct bot_loop *bl = &bot->loops[net_loop_index(net_session_loop(s))];
	struct bot_session *bs = net_session_user(s);
	bs->s = s;
	bs->bl = bl;
	bs->player = -1;
	bs->pop_index = -1;
	bl->stats.c.connects++;
	bl->stats.c.connected_now++;

	pthread_mutex_lock(&bot->lock);
	if (bot->free_count > 0) {
		bs->player = bot->free_players[--bot->free_count];
		if (bot->ever_logged[bs->player])
			bl->stats.c.relogins++;
		bot->ever_logged[bs->player] = true;
	}
	pthread_mutex_unlock(&bot->lock);

	if (bl->session_count == bl->session_cap) {
		unsigned cap = bl->session_cap ? bl->session_cap * 2 : 64;
		struct bot_session **grown = realloc(bl->sessions, cap * sizeof(*grown));
		if (!grown) {
			net_session_disconnect(s, NET_REASON_LOCAL);
			return;
		}
		bl->sessions = grown;
		bl->session_cap = cap;
	}
	bs->slot = bl->session_count;
	bl->sessions[bl->session_count++] = bs;
	if (bs->player < 0) { /* more sessions than players: cannot happen */
		bl->stats.c.protocol_errors++;
		net_session_disconnect(s, NET_REASON_LOCAL);
		return;
	}
	if (strcmp(bot->cfg.transport, "ws") != 0) {
		send_login(bs);
	} else if (bot_ws_open(bs, bot->cfg.host, bot->cfg.port) < 0) {
		bl->stats.c.protocol_errors++;
		net_session_disconnect(s, NET_REASON_LOCAL);
	}
}

void bot_session_ready(struct bot_session *bs)
{
	send_login(bs);
}

/*
 * Check a durable gold total the server reported for the session's
 * identity against its ledger (struct bot_ledger): a LoginReply's
 * (acked 0) or an earn reply's, acked being that earn's amount. The first
 * total seen starts the ledger; after a violation it starts again from
 * the total, so that one loss is counted once.
 */
static void ledger_check(struct bot_session *bs, uint64_t gold, uint32_t acked)
{
	struct bot_ledger *l = &bs->bl->bot->ledgers[bs->player];
	struct bot_counters *c = &bs->bl->stats.c;
	if (!l->known) {
		l->known = true;
		l->floor = l->ceil = gold;
		return;
	}
	l->floor += acked;
	if (gold < l->floor) {
		c->earn_lost++;
		l->floor = gold;
	}
	if (gold > l->ceil) {
		c->earn_doubled++;
		l->ceil = gold;
	}
}

static void on_login_reply(struct bot_session *bs, const Ringgate__Client__LoginReply *reply,
			   uint64_t now_ms)
{
	struct bot_loop *bl = bs->bl;
	struct bot *bot = bl->bot;
	const struct bot_config *cfg = &bot->cfg;
	zones_learn(bot, reply);
	if (!reply->self || !walk_in(bs, route_zone(bot, cfg->crowd ? 0 : (unsigned long)bs->player))) {
		bl->stats.c.protocol_errors++; /* LoginReply must name a valid zone */
		return;
	}
	bs->self_id = reply->self->player_id;
	identity_register(bot, bs->self_id, bs->player);
	zone_enter(bs, reply->self->zone);
	ledger_check(bs, reply->self->gold, 0);
	bs->placed = bs->travelling = false;
	bs->view_until_ns = 0;
	bs->logged_in = true;
	bl->stats.c.logins++;
	bl->stats.c.logged_in_now++;
	/* A random phase within one period, so that the first actions of a
	 * short run come at the configured rate too. */
	for (int kind = BOT_MOVE; kind < BOT_KIND_COUNT; kind++)
		if (rate_of(cfg, kind) > 0)
			bs->next_ms[kind] = now_ms + (uint64_t)(1000.0 / rate_of(cfg, kind)
								* random_unit(bl));
}

/* A MoveReply to a move (travel: into p->zone) arrived. */
static void on_move_reply(struct bot_session *bs, const struct bot_pending *p,
			  const Ringgate__Client__MoveReply *reply, uint64_t now_ns)
{
	struct bot_counters *c = &bs->bl->stats.c;
	if (p->kind == BOT_MOVE) {
		if (reply->zone != bs->cur_zone)
			c->wrong_zone++;
		return;
	}
	view_check_end(bs); /* the previous travel's */
	bs->travelling = false;
	if (reply->zone != p->zone)
		c->wrong_zone++;
	zone_enter(bs, reply->zone);
	bs->view_from_ns = now_ns;
	bs->view_until_ns = now_ns + (uint64_t)bs->bl->bot->cfg.view_wait_ms * 1000000u;
	bs->view_expected = zone_others(bs) > 0;
}

/* An Error answered pending request i. ZONE_HANDOFF: nothing was done,
 * send it again shortly; anything else ends it. */
static void on_error_reply(struct bot_session *bs, unsigned i, const Ringgate__Client__Error *err,
			   uint64_t now_ns)
{
	struct bot_counters *c = &bs->bl->stats.c;
	struct bot_pending *p = &bs->pending[i];
	enum bot_kind kind = p->kind;
	unsigned code = err ? (unsigned)err->code : 0;
	if (code < BOT_ERROR_CODES)
		c->errors_by_code[code]++;
	/* Refused without being done: the earn cannot apply. */
	bool not_done = code == RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF
			|| code == RINGGATE__CLIENT__ERROR_CODE__SERVER_BUSY;
	if (kind == BOT_EARN && not_done)
		bs->bl->bot->ledgers[bs->player].ceil -= p->amount;
	if (code == RINGGATE__CLIENT__ERROR_CODE__ZONE_HANDOFF) {
		c->retries[kind]++;
		p->seq = 0; /* a second answer to the old seq is an error */
		p->retry_at_ns = now_ns + RETRY_DELAY_MS * 1000000ull;
		return;
	}
	c->error_replies[kind]++;
	if (kind == BOT_TRAVEL)
		travel_failed(bs);
	pending_remove(bs, i);
	if (kind == BOT_LOGIN) {
		/* Start again on a fresh connection after a pause, as a real
		 * client would: after a TIMEOUT the login may still complete
		 * on the server, and this session would then only ever hear
		 * ALREADY_LOGGED_IN; a refusal ("retry in a few seconds", a
		 * shard down) wants a pause, not a flood of logins. The error
		 * stays counted. */
		bs->dropping = true;
		bs->drop_at_ns = now_ns + LOGIN_PAUSE_MS * 1000000ull;
	}
}

/* Was seq timed out (and not answered since)? Forgets it: a second late
 * reply is a second answer. */
static bool timed_out_take(struct bot_session *bs, uint32_t seq)
{
	for (unsigned i = 0; i < BOT_TIMED_OUT_RING; i++) {
		if (bs->timed_out[i] == seq) {
			bs->timed_out[i] = 0;
			return true;
		}
	}
	return false;
}

/* Does a reply's body answer a request of this kind? */
static bool reply_matches(enum bot_kind kind, Ringgate__Client__ServerMessage__BodyCase body)
{
	switch (kind) {
	case BOT_LOGIN: return body == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LOGIN;
	case BOT_MOVE:
	case BOT_TRAVEL: return body == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVE;
	case BOT_CHAT: return body == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT;
	case BOT_PING: return body == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_PONG;
	case BOT_EARN: return body == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_EARN;
	default: return false;
	}
}

/* Read one varint at p[*at..len); 0, or -EBADMSG. */
static int read_varint(const uint8_t *p, size_t len, size_t *at, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64 && *at < len; shift += 7) {
		uint8_t b = p[(*at)++];
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* One field of a protobuf message, as next_field reads it. */
struct pb_field {
	unsigned number;
	unsigned wire;             /* 0 varint, 1 fixed64, 2 bytes, 5 fixed32 */
	uint64_t value;            /* varint, fixed64 or fixed32 (low bits)   */
	const uint8_t *bytes;      /* wire 2: the field's bytes               */
	size_t len;
};

/* Read the field at p[*at..len) and step past it. Returns 0, or -EBADMSG
 * when the wire format is broken (groups included: client.proto has none). */
static int next_field(const uint8_t *p, size_t len, size_t *at, struct pb_field *f /* OUT */)
{
	uint64_t tag;
	if (read_varint(p, len, at, &tag) < 0)
		return -EBADMSG;
	f->number = (unsigned)(tag >> 3);
	f->wire = (unsigned)(tag & 7);
	f->value = 0;
	f->bytes = NULL;
	f->len = 0;
	switch (f->wire) {
	case 0:
		return read_varint(p, len, at, &f->value);
	case 1:
	case 5: {
		size_t n = f->wire == 1 ? 8 : 4;
		if (len - *at < n)
			return -EBADMSG;
		for (size_t i = 0; i < n; i++)
			f->value |= (uint64_t)p[*at + i] << (8 * i);
		*at += n;
		return 0;
	}
	case 2:
		if (read_varint(p, len, at, &f->value) < 0 || f->value > len - *at)
			return -EBADMSG;
		f->bytes = p + *at;
		f->len = (size_t)f->value;
		*at += f->len;
		return 0;
	default:
		return -EBADMSG;
	}
}

/*
 * Read a ServerMessage's envelope without unpacking it: its seq, the
 * number of the body field it carries (0 if none) and where that body's
 * bytes lie. Pushes (seq 0) are most of the traffic at 1,000s of players,
 * and reading them by hand (here, decode_moved, on_update) costs no
 * allocation; a full unpack of each would make the bot, not the cluster,
 * the bottleneck. Returns 0, or -EBADMSG when the wire format is broken.
 */
static int peek_envelope(const uint8_t *p, size_t len, uint32_t *seq /* OUT */,
			 unsigned *body_field /* OUT */, const uint8_t **body /* OUT */,
			 size_t *body_len /* OUT */)
{
	struct pb_field f;
	size_t at = 0;
	*seq = 0;
	*body_field = 0;
	*body = NULL;
	*body_len = 0;
	while (at < len) {
		if (next_field(p, len, &at, &f) < 0)
			return -EBADMSG;
		if (f.number == 1 && f.wire == 0) {
			*seq = (uint32_t)f.value;
		} else if (f.number >= 10 && f.wire == 2) { /* the oneof bodies */
			*body_field = f.number;
			*body = f.bytes;
			*body_len = f.len;
		}
	}
	return 0;
}

/* Read a PlayerMoved body (player_id = 1, x = 2, y = 3). Returns 0, or
 * -EBADMSG. */
static int decode_moved(const uint8_t *p, size_t len, uint64_t *id /* OUT */,
			float *x /* OUT */, float *y /* OUT */)
{
	struct pb_field f;
	size_t at = 0;
	*id = 0;
	*x = *y = 0;
	while (at < len) {
		if (next_field(p, len, &at, &f) < 0)
			return -EBADMSG;
		uint32_t bits = (uint32_t)f.value;
		if (f.number == 1 && f.wire == 0)
			*id = f.value;
		else if (f.number == 2 && f.wire == 5)
			memcpy(x, &bits, sizeof(*x));
		else if (f.number == 3 && f.wire == 5)
			memcpy(y, &bits, sizeof(*y));
	}
	return 0;
}

/* Read a PlayerState's player_id (1) and zone (3). Returns 0, or -EBADMSG. */
static int decode_state(const uint8_t *p, size_t len, uint64_t *id /* OUT */,
			uint32_t *zone /* OUT */)
{
	struct pb_field f;
	size_t at = 0;
	*id = 0;
	*zone = 0;
	while (at < len) {
		if (next_field(p, len, &at, &f) < 0)
			return -EBADMSG;
		if (f.number == 1 && f.wire == 0)
			*id = f.value;
		else if (f.number == 3 && f.wire == 0)
			*zone = (uint32_t)f.value;
	}
	return 0;
}

/* A PlayerJoined push (player = 1): its player seen by bs. 0, or -EBADMSG. */
static int on_joined(struct bot_session *bs, const uint8_t *p, size_t len, uint64_t now_ns)
{
	struct pb_field f;
	size_t at = 0;
	while (at < len) {
		if (next_field(p, len, &at, &f) < 0)
			return -EBADMSG;
		if (f.number == 1 && f.wire == 2) {
			uint64_t id;
			uint32_t zone;
			if (decode_state(f.bytes, f.len, &id, &zone) < 0)
				return -EBADMSG;
			view_entered(bs, id, zone, now_ns);
		}
	}
	return 0;
}

/*
 * Walk a WorldUpdate (left = 1, entered = 2, moved = 3, chat = 4): count
 * its entries, time the positions in moved, and give the entered to the
 * view check. Returns 0, or -EBADMSG.
 */
static int on_update(struct bot_session *bs, const uint8_t *p, size_t len, uint64_t now_ns)
{
	struct bot_loop *bl = bs->bl;
	struct bot_counters *c = &bl->stats.c;
	struct pb_field f;
	size_t at = 0;
	while (at < len) {
		if (next_field(p, len, &at, &f) < 0)
			return -EBADMSG;
		if (f.number == 1 && f.wire == 0) {        /* left, unpacked */
			c->entries[ENTRY_LEFT]++;
		} else if (f.number == 1 && f.wire == 2) { /* left, packed */
			for (size_t i = 0; i < f.len; i++)
				c->entries[ENTRY_LEFT] += !(f.bytes[i] & 0x80);
		} else if (f.number == 2 && f.wire == 2) {
			uint64_t id;
			uint32_t zone;
			if (decode_state(f.bytes, f.len, &id, &zone) < 0)
				return -EBADMSG;
			c->entries[ENTRY_ENTERED]++;
			view_entered(bs, id, zone, now_ns);
		} else if (f.number == 3 && f.wire == 2) {
			uint64_t id;
			float x, y;
			if (decode_moved(f.bytes, f.len, &id, &x, &y) < 0)
				return -EBADMSG;
			c->entries[ENTRY_MOVED]++;
			position_seen(bl, id, x, y, now_ns);
		} else if (f.number == 4) {
			c->entries[ENTRY_CHAT]++;
		}
	}
	return 0;
}

/* Count a push by its body field and time the positions it carries; a
 * Kicked one is unpacked for its code. */
static int on_push(struct bot_session *bs, unsigned body_field, const uint8_t *body, size_t len,
		   const uint8_t *frame, size_t frame_len)
{
	struct bot_counters *c = &bs->bl->stats.c;
	uint64_t id;
	float x, y;
	switch (body_field) {
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_JOINED:
		c->pushes[PUSH_JOINED]++;
		if (on_joined(bs, body, len, bench_now_ns()) < 0) {
			c->protocol_errors++;
			return -EBADMSG;
		}
		return 0;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_LEFT: c->pushes[PUSH_LEFT]++; return 0;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_MOVED:
		c->pushes[PUSH_MOVED]++;
		if (decode_moved(body, len, &id, &x, &y) < 0) {
			c->protocol_errors++;
			return -EBADMSG;
		}
		position_seen(bs->bl, id, x, y, bench_now_ns());
		return 0;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_UPDATE:
		c->pushes[PUSH_UPDATE]++;
		if (on_update(bs, body, len, bench_now_ns()) < 0) {
			c->protocol_errors++;
			return -EBADMSG;
		}
		return 0;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT_LINE: c->pushes[PUSH_CHAT_LINE]++; return 0;
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_TOKEN:
		return 0; /* a fresh resume token (every few minutes): bots never resume */
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_KICKED: {
		Ringgate__Client__ServerMessage *m =
			ringgate__client__server_message__unpack(NULL, frame_len, frame);
		if (!m || !m->kicked) {
			if (m)
				ringgate__client__server_message__free_unpacked(m, NULL);
			c->protocol_errors++;
			return -EBADMSG;
		}
		c->pushes[PUSH_KICKED]++;
		if ((unsigned)m->kicked->code < BOT_ERROR_CODES)
			c->errors_by_code[m->kicked->code]++;
		ringgate__client__server_message__free_unpacked(m, NULL);
		return 0;
	}
	case RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR: {
		/* SERVICE_UNAVAILABLE with seq 0: the game server link went
		 * down and the player was logged out (docs/protocol.md); the
		 * bot starts over on a new connection. Any other Error push
		 * answers a request the gateway could not read, which the bot
		 * never sends. */
		Ringgate__Client__ServerMessage *m =
			ringgate__client__server_message__unpack(NULL, frame_len, frame);
		bool logged_out = m && m->error &&
				  m->error->code == RINGGATE__CLIENT__ERROR_CODE__SERVICE_UNAVAILABLE;

		if (m && m->error && (unsigned)m->error->code < BOT_ERROR_CODES)
			c->errors_by_code[m->error->code]++;
		if (m)
			ringgate__client__server_message__free_unpacked(m, NULL);
		if (logged_out)
			return -ECONNRESET;
		c->protocol_errors++;
		return -EPROTO;
	}
	default:
		c->protocol_errors++;
		return -EPROTO;
	}
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	return bot_session_message(net_session_user(s), body, len);
}

static long on_recv(struct net_session *s, const uint8_t *data, size_t len)
{
	return bot_ws_recv(net_session_user(s), data, len);
}

int bot_session_message(struct bot_session *bs, const uint8_t *body, size_t len)
{
	struct bot_loop *bl = bs->bl;
	struct bot_counters *c = &bl->stats.c;
	c->bytes_frames_in += len;
	uint32_t seq;
	unsigned body_field;
	const uint8_t *inner;
	size_t inner_len;
	if (peek_envelope(body, len, &seq, &body_field, &inner, &inner_len) < 0) {
		c->protocol_errors++;
		return -EBADMSG;
	}
	if (seq == 0)
		return on_push(bs, body_field, inner, inner_len, body, len);
	Ringgate__Client__ServerMessage *m =
		ringgate__client__server_message__unpack(NULL, len, body);
	if (!m) {
		c->protocol_errors++;
		return -EBADMSG;
	}
	int rc = 0;
	uint64_t now_ns = bench_now_ns();
	unsigned i = 0;
	while (i < bs->pending_count && bs->pending[i].seq != m->seq) /* never 0 here */
		i++;
	if (i == bs->pending_count) {
		if (timed_out_take(bs, m->seq))
			c->late_replies++;     /* answered after its timeout */
		else if (m->seq <= bs->next_seq)
			c->answered_twice++;   /* ended already: a second answer */
		else
			rc = -EPROTO;          /* a seq this session never used */
		if (rc < 0)
			c->protocol_errors++;
		goto out;
	}
	if (m->body_case == RINGGATE__CLIENT__SERVER_MESSAGE__BODY_ERROR) {
		on_error_reply(bs, i, m->error, now_ns);
		goto out;
	}
	struct bot_pending p = bs->pending[i];
	pending_remove(bs, i);
	if (!reply_matches(p.kind, m->body_case)) {
		c->protocol_errors++;
		rc = -EPROTO;
		goto out;
	}
	c->answered[p.kind]++;
	hist_record(&bl->stats.total[p.kind], now_ns - p.sent_ns);
	hist_record(&bl->stats.interval, now_ns - p.sent_ns);
	switch (p.kind) {
	case BOT_LOGIN:
		on_login_reply(bs, m->login, net_loop_now(bl->loop));
		break;
	case BOT_MOVE:
	case BOT_TRAVEL:
		on_move_reply(bs, &p, m->move, now_ns);
		break;
	case BOT_EARN:
		ledger_check(bs, m->earn->gold, p.amount);
		break;
	default:
		break;
	}
out:
	ringgate__client__server_message__free_unpacked(m, NULL);
	return rc;
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct bot_session *bs = net_session_user(s);
	struct bot_loop *bl = bs->bl;
	struct bot *bot = bl->bot;
	struct bot_counters *c = &bl->stats.c;
	bool expected = bs->dropping || reason == NET_REASON_SHUTDOWN;
	bot_ws_free(bs);
	for (unsigned i = 0; i < bs->pending_count; i++) {
		/* One waiting for its retry had its send end (ZONE_HANDOFF,
		 * counted); a drop we made leaves nothing unaccounted then. */
		if (!expected)
			c->unanswered[bs->pending[i].kind]++;
		else if (bs->pending[i].seq != 0)
			c->abandoned[bs->pending[i].kind]++;
	}
	c->pending_now -= bs->pending_count;
	bs->pending_count = 0;
	if (bs->pop_index >= 0)
		atomic_fetch_sub(&bot->zone_pop[bs->pop_index], 1);
	if (!expected)
		c->unexpected_disconnects++;
	c->connected_now--;
	if (bs->logged_in)
		c->logged_in_now--;

	/* Leave the loop's list: the last entry takes this one's slot. */
	struct bot_session *last = bl->sessions[--bl->session_count];
	last->slot = bs->slot;
	bl->sessions[bs->slot] = last;

	if (bs->player >= 0) {
		pthread_mutex_lock(&bot->lock);
		bot->free_players[bot->free_count++] = bs->player;
		pthread_mutex_unlock(&bot->lock);
	}
}

/* ---- Tasks run on every loop, with a rendez-vous for the main thread ---- */

static void task_done(struct bot *bot)
{
	pthread_mutex_lock(&bot->lock);
	bot->done_count++;
	pthread_cond_signal(&bot->done_cv);
	pthread_mutex_unlock(&bot->lock);
}

/* Post fn to every loop and wait until each has run it. Main thread. */
static void run_everywhere(struct bot *bot, net_task_fn fn)
{
	pthread_mutex_lock(&bot->lock);
	bot->done_count = 0;
	pthread_mutex_unlock(&bot->lock);
	unsigned posted = 0;
	for (unsigned i = 0; i < bot->loop_count; i++)
		if (net_loop_post(bot->loops[i].loop, fn, &bot->loops[i]) == 0)
			posted++;
	pthread_mutex_lock(&bot->lock);
	while (bot->done_count < posted)
		pthread_cond_wait(&bot->done_cv, &bot->lock);
	pthread_mutex_unlock(&bot->lock);
}

static void task_start_tick(struct net_loop *loop, void *arg)
{
	struct bot_loop *bl = arg;
	(void)loop;
	if (net_timer_create(bl->loop, on_tick, bl, &bl->tick) == 0)
		net_timer_start(bl->tick, TICK_MS, TICK_MS);
	task_done(bl->bot);
}

static void task_stop_tick(struct net_loop *loop, void *arg)
{
	struct bot_loop *bl = arg;
	(void)loop;
	if (bl->tick)
		net_timer_destroy(bl->tick);
	bl->tick = NULL;
	task_done(bl->bot);
}

/* Add src's counters to dst's: every field is a uint64_t counter. */
static void counters_add(struct bot_counters *dst, const struct bot_counters *src)
{
	_Static_assert(sizeof(struct bot_counters) % sizeof(uint64_t) == 0,
		       "bot_counters holds only uint64_t fields");
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;
	for (size_t i = 0; i < sizeof(*dst) / sizeof(uint64_t); i++)
		d[i] += s[i];
}

static void task_snapshot(struct net_loop *loop, void *arg)
{
	struct bot_loop *bl = arg;
	struct bot *bot = bl->bot;
	(void)loop;
	pthread_mutex_lock(&bot->lock);
	counters_add(&bot->snapshot->c, &bl->stats.c);
	for (int k = 0; k < BOT_KIND_COUNT; k++)
		hist_merge(&bot->snapshot->total[k], &bl->stats.total[k]);
	hist_merge(&bot->snapshot->interval, &bl->stats.interval);
	hist_merge(&bot->snapshot->push, &bl->stats.push);
	hist_merge(&bot->snapshot->view, &bl->stats.view);
	if (bot->restart_interval)
		hist_reset(&bl->stats.interval);
	bot->done_count++;
	pthread_cond_signal(&bot->done_cv);
	pthread_mutex_unlock(&bot->lock);
}

static void task_storm(struct net_loop *loop, void *arg)
{
	struct bot_loop *bl = arg;
	(void)loop;
	unsigned logged_in = 0;
	for (unsigned i = 0; i < bl->session_count; i++)
		logged_in += bl->sessions[i]->logged_in;
	unsigned want = (unsigned)(bl->bot->cfg.storm_fraction * logged_in + 0.5);
	/* Choose first, then cut: a disconnect may reorder bl->sessions. */
	struct net_session **victims = calloc(want ? want : 1, sizeof(*victims));
	unsigned chosen = 0;
	for (unsigned i = 0; victims && i < bl->session_count && chosen < want; i++) {
		struct bot_session *bs = bl->sessions[i];
		if (bs->logged_in && !bs->dropping) {
			bs->dropping = true;
			victims[chosen++] = bs->s;
		}
	}
	bl->stats.c.storm_disconnects += chosen;
	for (unsigned i = 0; i < chosen; i++)
		net_session_disconnect(victims[i], NET_REASON_LOCAL);
	free(victims);
	task_done(bl->bot);
}

/* ---- Public entry points (main thread) ---- */

int bot_players_init(struct bot *bot)
{
	bool ws = strcmp(bot->cfg.transport, "ws") == 0;

	bot->ops = (struct net_session_ops){
		.on_connected = on_connected,
		.on_frame = ws ? NULL : on_frame,
		.on_recv = ws ? on_recv : NULL,
		.on_disconnected = on_disconnected,
	};
	pthread_mutex_init(&bot->lock, NULL);
	pthread_cond_init(&bot->done_cv, NULL);
	bot->loop_count = net_runtime_loop_count(bot->rt);
	bot->loops = calloc(bot->loop_count, sizeof(*bot->loops));
	bot->free_players = calloc((size_t)bot->cfg.players, sizeof(*bot->free_players));
	bot->ever_logged = calloc((size_t)bot->cfg.players, sizeof(*bot->ever_logged));
	bot->movers = calloc((size_t)bot->cfg.players, sizeof(*bot->movers));
	bot->ledgers = calloc((size_t)bot->cfg.players, sizeof(*bot->ledgers));
	size_t slots = 16;
	while (slots < 2 * (size_t)bot->cfg.players)
		slots *= 2;
	bot->id_mask = slots - 1;
	bot->id_keys = calloc(slots, sizeof(*bot->id_keys));
	bot->id_identity = calloc(slots, sizeof(*bot->id_identity));
	if (!bot->loops || !bot->free_players || !bot->ever_logged || !bot->movers
	    || !bot->ledgers || !bot->id_keys || !bot->id_identity)
		return -ENOMEM;
	/* Stack order: player 0 is handed out first. */
	for (long i = 0; i < bot->cfg.players; i++)
		bot->free_players[i] = bot->cfg.players - 1 - i;
	bot->free_count = bot->cfg.players;
	for (unsigned i = 0; i < bot->loop_count; i++) {
		struct bot_loop *bl = &bot->loops[i];
		bl->bot = bot;
		bl->loop = net_runtime_loop(bot->rt, i);
		bl->rng = 0x9e3779b97f4a7c15ull * (i + 1);
	}
	run_everywhere(bot, task_start_tick);
	for (unsigned i = 0; i < bot->loop_count; i++)
		if (!bot->loops[i].tick)
			return -ENOMEM;
	return 0;
}

void bot_players_stop(struct bot *bot)
{
	run_everywhere(bot, task_stop_tick);
}

void bot_players_free(struct bot *bot)
{
	for (unsigned i = 0; bot->loops && i < bot->loop_count; i++)
		free(bot->loops[i].sessions);
	free(bot->loops);
	free(bot->free_players);
	free(bot->ever_logged);
	free(bot->movers);
	free(bot->ledgers);
	free(bot->id_keys);
	free(bot->id_identity);
	pthread_cond_destroy(&bot->done_cv);
	pthread_mutex_destroy(&bot->lock);
}

void bot_snapshot(struct bot *bot, bool restart_interval, struct bot_stats *out)
{
	memset(&out->c, 0, sizeof(out->c));
	for (int k = 0; k < BOT_KIND_COUNT; k++)
		hist_reset(&out->total[k]);
	hist_reset(&out->interval);
	hist_reset(&out->push);
	hist_reset(&out->view);
	pthread_mutex_lock(&bot->lock);
	bot->snapshot = out;
	bot->restart_interval = restart_interval;
	pthread_mutex_unlock(&bot->lock);
	run_everywhere(bot, task_snapshot);
}

void bot_storm(struct bot *bot)
{
	run_everywhere(bot, task_storm);
}

void bot_set_acting(struct bot *bot, bool acting)
{
	atomic_store(&bot->acting, acting);
}

uint64_t bot_outstanding(const struct bot_stats *st)
{
	return st->c.pending_now;
}

int bot_route_parse(struct bot *bot)
{
	const char *p = bot->cfg.border_zones;
	bot->route_len = 0;
	while (*p) {
		char *end;
		errno = 0;
		unsigned long id = strtoul(p, &end, 10);
		if (end == p || errno || id == 0 || id > UINT32_MAX || (*end && *end != ',')
		    || (*end == ',' && end[1] == '\0') || bot->route_len == BOT_ROUTE_MAX) {
			fprintf(stderr, "bot: --border-zones: want up to %d zone ids (1..%u), "
				"comma-separated, not \"%s\"\n", BOT_ROUTE_MAX, UINT32_MAX,
				bot->cfg.border_zones);
			return -EINVAL;
		}
		bot->route[bot->route_len++] = (uint32_t)id;
		p = *end ? end + 1 : end;
	}
	return 0;
}
