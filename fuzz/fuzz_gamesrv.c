/*
 * fuzz_gamesrv: gamesrv's message handling - the gateway link (GateToGame
 * decode, the handshake, the queue to the game), the game's dispatch
 * (gs_game_handle_event: login, move, chat, earn, ping, logout, adopt, client gone,
 * link down) and the dbproxy link (DbToGame decode, replies meeting their
 * calls) - with libnet replaced by fuzz/fake_net.c and the game thread
 * replaced by this loop: after each step the queued events are taken and
 * handled here, on one thread, exactly as game.c's thread would.
 *
 * The harness plays a well-behaved gateway and dbproxy around the input:
 * it answers gamesrv's AuthChallenge and challenges gamesrv's dbproxy
 * dial, checking every proof, and answers each GameToDb request in the
 * current "dbproxy mode". The fuzzer's records:
 *
 *   op % 8 == 0  a frame from the gateway (GateToGame bytes)
 *   op % 8 == 1  a frame from dbproxy (DbToGame bytes)
 *   op % 8 == 2  time passes: bytes[0] * 50 ms of link timers, and a game
 *                tick bytes[1] * 100 ms in the future (call deadlines,
 *                save retries, the tick's share of the autosave pass)
 *   op % 8 == 3  the gateway link drops; the gateway dials again
 *   op % 8 == 4  the dbproxy link drops; gamesrv redials
 *   op % 8 == 5  dbproxy mode = bytes[0] % 4: answer OK, BUSY, ERROR, or
 *                stay silent
 *   op % 8 == 6  a ClientMessage (bytes) from client session op / 8 % 4 + 1,
 *                wrapped in a ClientRequest by the harness
 *   op % 8 == 7  a ClientGone for session op / 8 % 4 + 1
 *
 * Invariants: every frame gamesrv sends the gateway decodes as GameToGate
 * and every frame it sends dbproxy as GameToDb; its proofs verify; the
 * game survives any order of events; no leak, crash or UBSan report.
 */
#include <string.h>

#include <rg/clock.h>

#include "config.h"
#include "db_link.h"
#include "fake_net.h"
#include "game.h"
#include "gate_link.h"
#include "harness.h"
#include "metrics.h"
#include "play.h"
#include "queue.h"

enum { SVC_GATE = 0, SVC_DB = 1 };
enum db_mode { DB_ANSWER_OK, DB_ANSWER_BUSY, DB_ANSWER_ERROR, DB_SILENT };

struct harness {
	const struct rg_link_key *key;
	struct gs_game_queue queue;
	struct net_runtime *rt;
	struct gs_metrics *metrics;
	struct gs_game game;
	struct gs_gate_service gates;
	struct gs_db_service db;
	net_session_id gate, dbs;
	struct rg_link_auth gate_auth;   /* our side: the dialing gateway     */
	struct rg_link_auth db_auth;     /* our side: the accepting dbproxy   */
	enum db_mode mode;
	uint64_t next_player;
	uint64_t next_epoch;             /* DbNewEpoch answers 1, 2, ...       */
};

static void send_packed(net_session_id id, const ProtobufCMessage *m)
{
	size_t len;
	uint8_t *buf = fuzz_pack(m, &len);

	fake_net_frame(id, buf, len);
	free(buf);
}

/* Hand what the loops queued to the game, as its thread does. */
static void run_game(struct harness *h)
{
	struct gs_game_event *ev = gs_game_queue_take(&h->queue, 0);

	while (ev) {
		struct gs_game_event *next = ev->next;

		gs_game_handle_event(&h->game, ev);
		gs_game_queue_release(&h->queue, ev);
		ev = next;
	}
}

static void gate_connect(struct harness *h)
{
	struct net_session *s = fake_net_connect(SVC_GATE);

	h->gate = s ? net_session_get_id(s) : 0;
	FUZZ_CHECK(rg_link_auth_dial(&h->gate_auth, h->key));
}

static void db_connect(struct harness *h)
{
	struct net_session *s = fake_net_connect(SVC_DB);
	Ringgate__Internal__DbToGame msg = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	Ringgate__Internal__AuthChallenge ch = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;
	uint8_t nonce[RG_LINK_NONCE_BYTES];

	h->dbs = s ? net_session_get_id(s) : 0;
	if (!s)
		return;
	FUZZ_CHECK(rg_link_auth_accept(&h->db_auth, h->key, nonce));
	ch.nonce.data = nonce;
	ch.nonce.len = sizeof(nonce);
	msg.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_CHALLENGE;
	msg.challenge = &ch;
	send_packed(h->dbs, &msg.base);
}

/* Play the gateway's part for one GameToGate. */
static void answer_gate(struct harness *h, const Ringgate__Internal__GameToGate *in)
{
	if (in->body_case == RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE) {
		Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
		Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;
		struct fuzz_hello_bytes bytes;

		if (fuzz_hello(&h->gate_auth, in->challenge, "gateway", &hello, &bytes) < 0)
			return;
		out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO;
		out.hello = &hello;
		send_packed(h->gate, &out.base);
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO) {
		FUZZ_CHECK(rg_link_auth_check_acceptor(&h->gate_auth, in->hello->role,
						       in->hello->proof.data,
						       in->hello->proof.len));
	}
}

/* Play dbproxy's part for one GameToDb. */
static void answer_db(struct harness *h, const Ringgate__Internal__GameToDb *in)
{
	Ringgate__Internal__DbToGame out = RINGGATE__INTERNAL__DB_TO_GAME__INIT;
	Ringgate__Internal__HelloReply hello = RINGGATE__INTERNAL__HELLO_REPLY__INIT;
	Ringgate__Internal__DbLoginReply login = RINGGATE__INTERNAL__DB_LOGIN_REPLY__INIT;
	Ringgate__Client__PlayerState player = RINGGATE__CLIENT__PLAYER_STATE__INIT;
	Ringgate__Internal__DbSaveReply save = RINGGATE__INTERNAL__DB_SAVE_REPLY__INIT;
	Ringgate__Internal__DbAddGoldReply gold = RINGGATE__INTERNAL__DB_ADD_GOLD_REPLY__INIT;
	Ringgate__Internal__DbNewEpochReply epoch = RINGGATE__INTERNAL__DB_NEW_EPOCH_REPLY__INIT;
	Ringgate__Internal__DbRenewLeasesReply renew = RINGGATE__INTERNAL__DB_RENEW_LEASES_REPLY__INIT;
	Ringgate__Internal__DbAdoptReply adopt = RINGGATE__INTERNAL__DB_ADOPT_REPLY__INIT;
	uint8_t proof[RG_LINK_PROOF_BYTES];

	if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO) {
		const Ringgate__Internal__Hello *hi = in->hello;

		FUZZ_CHECK(rg_link_auth_check_dialer(&h->db_auth, hi->role, hi->nonce.data,
						     hi->nonce.len, hi->proof.data,
						     hi->proof.len, "dbproxy", proof));
		hello.role = "dbproxy";
		hello.proof.data = proof;
		hello.proof.len = sizeof(proof);
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_HELLO;
		out.hello = &hello;
		send_packed(h->dbs, &out.base);
		return;
	}
	if (in->request_id == 0 || h->mode == DB_SILENT)
		return;
	out.request_id = in->request_id;
	if (h->mode == DB_ANSWER_BUSY) {
		out.status = RINGGATE__INTERNAL__DB_STATUS__DB_BUSY;
	} else if (h->mode == DB_ANSWER_ERROR) {
		out.status = RINGGATE__INTERNAL__DB_STATUS__DB_ERROR;
		out.message = "fuzz";
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_LOGIN) {
		player.player_id = ++h->next_player;
		player.name = in->login->name;
		player.zone = 1;
		player.gold = h->next_player * 7;
		login.player = &player;
		login.created = h->next_player & 1;
		login.lease_epoch = 1; /* taken (every login: a takeover renews) */
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_LOGIN;
		out.login = &login;
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_NEW_EPOCH) {
		epoch.epoch = ++h->next_epoch;
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_NEW_EPOCH;
		out.new_epoch = &epoch;
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_RENEW) {
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_RENEW;
		out.renew = &renew; /* nothing lost */
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADOPT) {
		player.player_id = in->adopt->player_id;
		player.zone = in->adopt->zone;
		player.x = in->adopt->x;
		player.y = in->adopt->y;
		adopt.player = &player;
		adopt.lease_epoch = in->adopt->from_epoch + 1;
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADOPT;
		out.adopt = &adopt;
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_ADD_GOLD) {
		gold.gold = in->add_gold->amount;
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_ADD_GOLD;
		out.add_gold = &gold;
	} else if (in->body_case == RINGGATE__INTERNAL__GAME_TO_DB__BODY_SAVE) {
		out.body_case = RINGGATE__INTERNAL__DB_TO_GAME__BODY_SAVE;
		out.save = &save;
	}
	send_packed(h->dbs, &out.base);
}

/* Check and answer everything gamesrv sent; run the game on what came. */
static void pump(struct harness *h)
{
	for (int round = 0; round < 16; round++) {
		size_t n;
		struct fake_sent *sent;

		run_game(h);
		sent = fake_net_take_sent(&n);
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(sent[i].framed);
			if (sent[i].service == SVC_GATE) {
				Ringgate__Internal__GameToGate *m =
					ringgate__internal__game_to_gate__unpack(NULL, sent[i].len,
										 sent[i].bytes);

				FUZZ_CHECK(m != NULL);
				if (sent[i].session == h->gate)
					answer_gate(h, m);
				ringgate__internal__game_to_gate__free_unpacked(m, NULL);
			} else {
				Ringgate__Internal__GameToDb *m =
					ringgate__internal__game_to_db__unpack(NULL, sent[i].len,
									       sent[i].bytes);

				FUZZ_CHECK(m != NULL);
				if (sent[i].session == h->dbs)
					answer_db(h, m);
				ringgate__internal__game_to_db__free_unpacked(m, NULL);
			}
		}
		fake_net_free_sent(sent, n);
		if (n == 0)
			break;
	}
	run_game(h);
}

static void client_request(struct harness *h, uint64_t session, const uint8_t *bytes,
			   size_t len)
{
	Ringgate__Client__ClientMessage *cm =
		ringgate__client__client_message__unpack(NULL, len, bytes);
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientRequest req = RINGGATE__INTERNAL__CLIENT_REQUEST__INIT;

	if (!cm)
		return; /* the gateway never forwards what does not decode */
	req.session = session;
	req.deadline_ms = 5000;
	req.message = cm;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST;
	out.request = &req;
	send_packed(h->gate, &out.base);
	ringgate__client__client_message__free_unpacked(cm, NULL);
}

static void client_gone(struct harness *h, uint64_t session)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;

	gone.session = session;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
	out.gone = &gone;
	send_packed(h->gate, &out.base);
}

static void setup(struct harness *h)
{
	/* gamesrv/main.c's defaults, with a small queue so that overload is
	 * reachable, and an autosave pass short enough that a few ticks save
	 * someone. */
	struct gs_game_config game_cfg = {
		.tick_ms = 20, .call_deadline_ms = 5000, .drain_ms = 5000,
		.autosave_ms = 100,
		.zone = { .id = 1, .min_x = -1000, .min_y = -1000, .max_x = 1000, .max_y = 1000 },
		.interest = { .enabled = true, .radius = 100, .hysteresis = 10,
			      .budget_bytes = 8192 },
		.resume = { .grace_ms = 20000, .session_bytes = 256u << 10,
			    .total_bytes = 64u << 20, .token_ttl_ms = 600000 },
	};
	struct gs_gate_service_config gate_cfg = {
		.host = "127.0.0.1", .max_gateways = 64, .pending_max = 16, .pending_per_addr = 4,
		.rules = FUZZ_PLAIN_RULES,
		.max_frame = GS_INTERNAL_MAX_FRAME, .decode_limit = GS_DECODE_LIMIT,
		.link_key = h->key,
	};
	struct gs_db_service_config db_cfg = {
		.host = "127.0.0.1", .port = 7702, .instance = "gamesrv-fuzz",
		.rules = FUZZ_PLAIN_RULES,
		.max_frame = GS_INTERNAL_MAX_FRAME,
		.decode_limit = GS_DECODE_LIMIT, .link_key = h->key,
	};

	FUZZ_CHECK(gs_game_queue_init(&h->queue, 16, 1u << 30) == 0);
	FUZZ_CHECK(net_runtime_create(NULL, &h->rt) == 0);
	FUZZ_CHECK(gs_metrics_create(h->rt, &h->metrics) == 0);
	game_cfg.metrics = h->metrics;
	game_cfg.link_key = h->key;
	FUZZ_CHECK(gs_game_init(&h->game, &game_cfg, h->rt, &h->queue) == 0);
	FUZZ_CHECK(gs_gate_service_start(&h->gates, h->rt, &h->queue, &gate_cfg) == 0);
	FUZZ_CHECK(gs_db_service_start(&h->db, h->rt, &h->queue, &db_cfg) == 0);
	db_connect(h);
	pump(h);
	gate_connect(h);
	pump(h);
}

static void teardown(struct harness *h)
{
	struct gs_game_event *shutdown = gs_game_event_new(GS_GAME_EV_SHUTDOWN, 0, 0);

	/* What gs_game_stop asks the thread to do: kick and save everyone. */
	FUZZ_CHECK(shutdown != NULL);
	gs_game_handle_event(&h->game, shutdown);
	gs_game_event_free(shutdown);
	pump(h);
	gs_gate_service_stop_accepting(&h->gates);
	gs_game_fini(&h->game);
	FUZZ_CHECK(fake_net_stop(h->rt) == 0);
	net_runtime_destroy(h->rt);
	gs_gate_service_fini(&h->gates);
	gs_db_service_fini(&h->db);
	gs_metrics_destroy(h->metrics);
	gs_game_queue_fini(&h->queue);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h;
	struct fuzz_input in = { data, size, 0 };
	uint8_t op;
	const uint8_t *bytes;
	size_t len;

	memset(&h, 0, sizeof(h));
	h.key = fuzz_setup();
	setup(&h);
	while (fuzz_next(&in, &op, &bytes, &len)) {
		uint64_t session = (uint64_t)(op / 8 % 4) + 1;

		switch (op % 8) {
		case 0:
			fake_net_frame(h.gate, bytes, len);
			break;
		case 1:
			fake_net_frame(h.dbs, bytes, len);
			break;
		case 2: {
			uint64_t now = rg_now_ms() + (uint64_t)fuzz_byte(bytes, len, 1) * 100;

			fake_net_advance((uint64_t)fuzz_byte(bytes, len, 0) * 50);
			run_game(&h);
			gs_db_link_expire(&h.game.db, now);
			gs_play_tick(&h.game, now);
			break;
		}
		case 3:
			fake_net_close(h.gate);
			pump(&h);
			gate_connect(&h);
			break;
		case 4:
			fake_net_close(h.dbs);
			pump(&h);
			db_connect(&h);
			break;
		case 5:
			h.mode = (enum db_mode)(fuzz_byte(bytes, len, 0) % 4);
			break;
		case 6:
			client_request(&h, session, bytes, len);
			break;
		case 7:
			client_gone(&h, session);
			break;
		}
		pump(&h);
	}
	teardown(&h);
	return 0;
}
