/*
 * fuzz_dbproxy: dbproxy's message handling (dbproxy/service.c: the
 * handshake, GameToDb decode, validation, dispatch to the login workers and
 * the writer, every reply) with libnet replaced by fuzz/fake_net.c and the
 * store behind a stub: this file's dbp_auth_submit / dbp_writer_submit queue
 * the work, and the fuzzer decides when it completes and with which result
 * (success, or any error the real workers report), so every reply path of
 * service.c is reachable without SQLite or threads. The store itself has
 * its own tests (dbproxy/tests).
 *
 * The harness plays a well-behaved gamesrv around the input: it answers
 * dbproxy's AuthChallenge with a correct proof and checks dbproxy's. The
 * fuzzer's records:
 *
 *   op % 6 == 0  a frame on the current link (GameToDb bytes)
 *   op % 6 == 1  complete up to bytes[0] % 8 + 1 queued logins/writes, each
 *                with the result the next input byte picks
 *   op % 6 == 2  time passes: bytes[0] * 50 ms (heartbeats, dead links)
 *   op % 6 == 3  the link drops; gamesrv dials again (with the handshake
 *                unless bytes[0] is odd: then a raw, unauthenticated link)
 *   op % 6 == 4  a second link connects (handshake) and becomes current
 *   op % 6 == 5  the stub queues refuse (queue full) while bytes[0] is odd
 *
 * Invariants: every frame dbproxy sends decodes as DbToGame; its proof
 * verifies; every queued login and write is answered (its call freed) once;
 * no leak, crash or UBSan report.
 */
#include <errno.h>
#include <string.h>

#include "auth.h"
#include "fake_net.h"
#include "harness.h"
#include "internal.pb-c.h"
#include "service.h"
#include "writer.h"

#define PENDING_MAX 8

/* The work service.c handed to the stub "threads", oldest first. */
struct pending {
	struct dbp_login *login;   /* one of the two is set */
	struct dbp_write *write;
};

static struct {
	struct pending at[PENDING_MAX];
	size_t n;
	bool refuse;              /* answer submits with -EAGAIN */
} work;

int dbp_auth_submit(struct dbp_auth *a, struct dbp_login *l)
{
	(void)a;
	if (work.refuse || work.n == PENDING_MAX)
		return -EAGAIN;
	work.at[work.n++] = (struct pending){ .login = l };
	return 0;
}

int dbp_writer_submit(struct dbp_writer *wr, struct dbp_write *w)
{
	(void)wr;
	if (work.refuse || work.n == PENDING_MAX)
		return -EAGAIN;
	work.at[work.n++] = (struct pending){ .write = w };
	return 0;
}

/* Two lanes, so that a renewal is split (service.c renew_call). */
size_t dbp_writer_lanes(const struct dbp_writer *wr)
{
	(void)wr;
	return 2;
}

size_t dbp_writer_lane_of_player(const struct dbp_writer *wr, uint64_t player_id)
{
	(void)wr;
	return player_id % 2;
}

/* The results the real workers and writer can report. */
static int result_of(uint8_t pick)
{
	static const int results[] = { 0, 0, 0, -EACCES, -ENOENT, -EEXIST, -ERANGE,
				       -ETIMEDOUT, -EAGAIN, -ESHUTDOWN, -EIO, -ENOSPC, -ENOMEM,
				       DBP_FENCED, DBP_LEASE_HELD };

	return results[pick % (sizeof(results) / sizeof(results[0]))];
}

/* Finish the oldest queued login or write with result (as a worker would,
 * on its own thread, after the loop returned). */
static void complete_one(int result, uint8_t detail)
{
	struct pending p = work.at[0];

	memmove(work.at, work.at + 1, (work.n - 1) * sizeof(work.at[0]));
	work.n--;
	if (p.login) {
		struct dbp_login *l = p.login;

		/* The contract: the password is wiped before done(). */
		memset(l->password, 0, sizeof(l->password));
		l->result = result;
		l->created = result == 0 && (detail & 1);
		if (result == 0 || result == DBP_LEASE_HELD) {
			l->player.id = (uint64_t)detail + 1;
			memcpy(l->player.name, l->name, sizeof(l->player.name));
			l->player.zone = 1;
			l->player.gold = detail;
			l->player.lease_epoch = detail;
			l->player.lease_shard = detail;
		}
		l->done(l);
	} else {
		struct dbp_write *w = p.write;

		w->result = result;
		w->gold = (uint64_t)detail * 1000;
		w->player.id = detail;
		w->player.lease_epoch = detail;
		if (w->kind == DBP_WRITE_RENEW_LEASES && result == 0) {
			/* The first detail % (n + 1) of the part's players lost. */
			w->nlost = detail % (w->renew.n + 1);
			memcpy(w->renew.lost, w->renew.player_ids, w->nlost * sizeof(uint64_t));
		}
		w->done(w);
	}
}

struct harness {
	const struct rg_link_key *key;
	struct net_runtime *rt;
	struct dbp_service *svc;
	net_session_id link;
	struct rg_link_auth auth;     /* our side: the dialing gamesrv */
	bool answering;               /* play gamesrv's handshake       */
};

static void send_packed(net_session_id id, const ProtobufCMessage *m)
{
	size_t len;
	uint8_t *buf = fuzz_pack(m, &len);

	fake_net_frame(id, buf, len);
	free(buf);
}

static void link_connect(struct harness *h, bool handshake)
{
	struct net_session *s = fake_net_connect(0);

	h->link = s ? net_session_get_id(s) : 0;
	/* A raw link never answers the challenge: the fuzzer speaks for it. */
	FUZZ_CHECK(rg_link_auth_dial(&h->auth, h->key));
	h->answering = handshake;
}

/* Play gamesrv's part for one DbToGame. */
static void answer(struct harness *h, const Ringgate__Internal__DbToGame *in)
{
	if (!h->answering)
		return;
	if (in->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_CHALLENGE) {
		Ringgate__Internal__GameToDb out = RINGGATE__INTERNAL__GAME_TO_DB__INIT;
		Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;
		struct fuzz_hello_bytes bytes;

		FUZZ_CHECK(fuzz_hello(&h->auth, in->challenge, "gamesrv", &hello, &bytes) == 0);
		out.body_case = RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO;
		out.hello = &hello;
		send_packed(h->link, &out.base);
	} else if (in->body_case == RINGGATE__INTERNAL__DB_TO_GAME__BODY_HELLO) {
		FUZZ_CHECK(rg_link_auth_check_acceptor(&h->auth, in->hello->role,
						       in->hello->proof.data,
						       in->hello->proof.len));
	}
}

static void pump(struct harness *h)
{
	for (int round = 0; round < 8; round++) {
		size_t n;
		struct fake_sent *sent = fake_net_take_sent(&n);

		for (size_t i = 0; i < n; i++) {
			Ringgate__Internal__DbToGame *m;

			FUZZ_CHECK(sent[i].framed);
			m = ringgate__internal__db_to_game__unpack(NULL, sent[i].len, sent[i].bytes);
			FUZZ_CHECK(m != NULL);
			if (sent[i].session == h->link)
				answer(h, m);
			ringgate__internal__db_to_game__free_unpacked(m, NULL);
		}
		fake_net_free_sent(sent, n);
		if (n == 0)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h;
	struct fuzz_input in = { data, size, 0 };
	struct dbp_service_config cfg = {
		.host = "127.0.0.1", .max_links = 64, .pending_max = 16, .pending_per_addr = 4,
		.rules = FUZZ_PLAIN_RULES,
		/* Never dereferenced: this file's stubs stand for them. */
		.writer = (struct dbp_writer *)&work, .auth = (struct dbp_auth *)&work,
	};
	uint8_t op;
	const uint8_t *bytes;
	size_t len;

	memset(&h, 0, sizeof(h));
	memset(&work, 0, sizeof(work));
	h.key = fuzz_setup();
	cfg.link_key = h.key;
	FUZZ_CHECK(net_runtime_create(NULL, &h.rt) == 0);
	FUZZ_CHECK(dbp_service_start(h.rt, &cfg, &h.svc) == 0);
	link_connect(&h, true);
	pump(&h);
	while (fuzz_next(&in, &op, &bytes, &len)) {
		switch (op % 6) {
		case 0:
			fake_net_frame(h.link, bytes, len);
			break;
		case 1:
			for (size_t i = 0; i <= fuzz_byte(bytes, len, 0) % 8 && work.n; i++)
				complete_one(result_of(fuzz_byte(bytes, len, 1 + 2 * i)),
					     fuzz_byte(bytes, len, 2 + 2 * i));
			fake_net_settle();
			break;
		case 2:
			fake_net_advance((uint64_t)fuzz_byte(bytes, len, 0) * 50);
			break;
		case 3:
			fake_net_close(h.link);
			pump(&h);
			link_connect(&h, !(fuzz_byte(bytes, len, 0) & 1));
			break;
		case 4:
			link_connect(&h, true);
			break;
		case 5:
			work.refuse = fuzz_byte(bytes, len, 0) & 1;
			break;
		}
		pump(&h);
	}
	/* dbproxy's drain: the workers answer what is queued, then stop. */
	while (work.n)
		complete_one(-ESHUTDOWN, 0);
	FUZZ_CHECK(fake_net_stop(h.rt) == 0);
	net_runtime_destroy(h.rt);
	dbp_service_destroy(h.svc);
	return 0;
}
