/*
 * test_link.c: the internal-link module (rg/link.h) over real loopback
 * libnet sessions. Both ends are the module itself (an acceptor and a
 * dialer with the gateway <-> gamesrv envelopes), or one end is a plain
 * socket driven by the test to play a peer that misbehaves. The proofs of
 * the handshake (rg/link_auth.h) are checked first on their own. Each
 * case is one CTest test: `test_link <case>`. Once up, links seal their
 * frames (rg/link_seal.h); the raw peer seals and opens its own alike.
 *
 * Times are chosen so that every check has a wide margin: a deadline of
 * 200 ms is checked as "closed after at least 150 ms and within 3 s".
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "internal.pb-c.h"
#include "rg/clock.h"
#include "rg/link.h"
#include "rg/link_seal.h"
#include "rg/log.h"

#define WAIT_MS 5000

enum { ACC = 0, DIAL = 1 };

/* What the link ends report, read by the test thread. */
struct events {
	atomic_int up[2];
	atomic_int down[2];           /* on_down, any */
	atomic_int down_up[2];        /* on_down of links that were up */
	atomic_int messages[2];       /* on_message */
	atomic_int up_now;            /* acceptor links up at the moment */
	atomic_int up_max;            /* ... at most, ever */
	atomic_int peer_id[2];        /* rg_link_peer_id at on_up */
};

/* The cluster ids the test ends send in their handshakes (rg_link_config.id):
 * a gateway id in Hello, a shard id in HelloReply. */
#define ACC_ID 9
#define DIAL_ID 3

static struct events ev;

/* The dialer's session id once up, for net_send_to from the test thread. */
static _Atomic net_session_id dial_id;

/* A raw peer's seal, once raw_handshake has made the link up. */
static struct rg_link_seal raw_seal;
static bool raw_sealed;

struct fixture {
	struct net_runtime *rt;
	struct rg_link_key key, other_key;
	struct rg_link_service acc, dial;
	struct net_server *server;
	struct net_client *client;
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Wait until *v >= want, at most WAIT_MS; returns whether it got there. */
static bool wait_for(atomic_int *v, int want)
{
	uint64_t end = rg_now_ms() + WAIT_MS;

	while (atomic_load(v) < want) {
		if (rg_now_ms() > end)
			return false;
		sleep_ms(5);
	}
	return true;
}

/* ---- the process side of the test links ------------------------------------ */

static int side_of(struct rg_link *link)
{
	return *(int *)rg_link_service_user(link);
}

static int on_up(struct rg_link *link)
{
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;
	int side = side_of(link);

	atomic_fetch_add(&ev.up[side], 1);
	atomic_store(&ev.peer_id[side], (int)rg_link_peer_id(link));
	if (side == ACC) {
		int now = atomic_fetch_add(&ev.up_now, 1) + 1;
		int max = atomic_load(&ev.up_max);

		while (now > max && !atomic_compare_exchange_weak(&ev.up_max, &max, now))
			;
		return 0;
	}
	atomic_store(&dial_id, net_session_get_id(rg_link_session(link)));
	/* The dialer speaks first once up: a ClientGone for session 7. */
	gone.session = 7;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
	out.gone = &gone;
	return rg_link_send(link, &out.base);
}

static int on_message(struct rg_link *link, ProtobufCMessage *msg, void *token)
{
	(void)token;
	atomic_fetch_add(&ev.messages[side_of(link)], 1);
	if (side_of(link) == ACC) {
		const Ringgate__Internal__GateToGame *in = (const void *)msg;
		Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
		Ringgate__Internal__Kick kick = RINGGATE__INTERNAL__KICK__INIT;

		CHECK(in->body_case == RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE);
		CHECK(in->gone->session == 7);
		kick.session = 7;
		out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK;
		out.kick = &kick;
		return rg_link_send(link, &out.base);
	}
	CHECK(((const Ringgate__Internal__GameToGate *)msg)->body_case ==
	      RINGGATE__INTERNAL__GAME_TO_GATE__BODY_KICK);
	return 0;
}

static void on_down(struct rg_link *link, bool was_up, enum net_reason reason)
{
	int side = side_of(link);

	(void)reason;
	atomic_fetch_add(&ev.down[side], 1);
	if (was_up) {
		atomic_fetch_add(&ev.down_up[side], 1);
		if (side == ACC)
			atomic_fetch_sub(&ev.up_now, 1);
	}
}

static const struct rg_link_ops ops = {
	.on_up = on_up, .on_message = on_message, .on_down = on_down,
};

static int acc_side = ACC, dial_side = DIAL;


/* ---- the handshake's proofs (rg/link_auth.h), without a network --------- */

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

/* ---- fixture ------------------------------------------------------------ */

static void fixture_init(struct fixture *f, bool insecure)
{
	memset(f, 0, sizeof(*f));
	memset(&ev, 0, sizeof(ev));
	rg_log_init("test_link", getenv("TEST_LINK_DEBUG") ? RG_LOG_DEBUG : RG_LOG_ERROR);
	CHECK(rg_link_key_setup(secret_file("0123456789abcdef-the-cluster-secret", 0600),
				insecure, &f->key) == 0);
	CHECK(rg_link_key_setup(secret_file("0123456789abcdef-another-secret", 0600),
				insecure, &f->other_key) == 0);
	unlink(secret_file("", 0600));
	CHECK(net_runtime_create(&(struct net_runtime_config){ .loops = 2 }, &f->rt) == 0);
	CHECK(net_runtime_start(f->rt) == 0);
}

static struct rg_link_rules rules(uint32_t heartbeat, uint32_t dead, uint32_t handshake)
{
	return (struct rg_link_rules){ .heartbeat_ms = heartbeat, .dead_ms = dead,
				       .handshake_ms = handshake };
}

/* The acceptor ("gamesrv", taking "gateway" dialers) on a free port. */
static uint16_t start_acceptor(struct fixture *f, struct rg_link_rules r, unsigned max_links,
			       unsigned pending_max, unsigned per_addr)
{
	struct rg_link_config cfg = {
		.side = RG_LINK_ACCEPTOR, .role = "gamesrv", .peer_role = "gateway",
		.id = ACC_ID, .key = &f->key, .rules = r, .in = rg_link_gate_to_game, .out = rg_link_game_to_gate,
		.max_frame = 4u << 20, .decode_limit = 1u << 20, .ops = &ops, .user = &acc_side,
		.max_links = max_links, .pending_max = pending_max, .pending_per_addr = per_addr,
	};
	struct net_server_config sc = { .host = "127.0.0.1" };

	CHECK(rg_link_service_init(&f->acc, &cfg) == 0);
	sc.max_sessions = rg_link_server_max_sessions(&f->acc);
	rg_link_session_config(&f->acc, &sc.session);
	CHECK(net_server_start(f->rt, &sc, &f->server) == 0);
	return net_server_port(f->server);
}

/* The dialer ("gateway") to port, keeping `sessions` links dialed. */
static void start_dialer(struct fixture *f, uint16_t port, struct rg_link_rules r,
			 const struct rg_link_key *key, const char *role, const char *instance,
			 unsigned sessions)
{
	struct rg_link_config cfg = {
		.side = RG_LINK_DIALER, .role = role, .peer_role = "gamesrv",
		.instance = instance, .id = DIAL_ID, .key = key, .rules = r,
		.in = rg_link_game_to_gate, .out = rg_link_gate_to_game, .max_frame = 4u << 20,
		.decode_limit = 1u << 20, .ops = &ops, .user = &dial_side,
	};
	struct net_client_config cc = {
		.host = "127.0.0.1", .port = port, .sessions = sessions,
		.backoff_min_ms = 20, .backoff_max_ms = 100,
	};

	CHECK(rg_link_service_init(&f->dial, &cfg) == 0);
	rg_link_session_config(&f->dial, &cc.session);
	CHECK(net_client_start(f->rt, &cc, &f->client) == 0);
}

static void fixture_fini(struct fixture *f)
{
	net_runtime_stop(f->rt);
	net_runtime_destroy(f->rt);
	rg_link_service_fini(&f->acc);
	rg_link_service_fini(&f->dial);
	rg_link_key_wipe(&f->key);
	rg_link_key_wipe(&f->other_key);
}

/* ---- a plain-socket peer ---------------------------------------------------- */

/* A blocking socket from src (e.g. "127.0.0.2") to 127.0.0.1:port. */
static int raw_dial(uint16_t port, const char *src)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	CHECK(inet_pton(AF_INET, src, &from.sin_addr) == 1);
	CHECK(bind(fd, (struct sockaddr *)&from, sizeof(from)) == 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	return fd;
}

/* A listening socket on a free loopback port; *port gets it. */
static int raw_listen(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CHECK(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CHECK(listen(fd, 8) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int raw_accept(int lfd)
{
	struct timeval tv = { .tv_sec = WAIT_MS / 1000 };
	int fd = accept(lfd, NULL, NULL);

	CHECK(fd >= 0);
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	return fd;
}

static void raw_send(int fd, const void *data, size_t len)
{
	CHECK(send(fd, data, len, MSG_NOSIGNAL) == (ssize_t)len);
}

/* m as one frame in buf (sealed once the raw link is up); returns its
 * length, header included. */
static size_t raw_frame(const ProtobufCMessage *m, uint8_t buf[1024])
{
	size_t len = protobuf_c_message_get_packed_size(m);
	size_t extra = raw_sealed ? RG_LINK_SEAL_OVERHEAD : 0;
	size_t hdr = net_varint_encode(len + extra, buf);

	CHECK(hdr + len + extra <= 1024);
	protobuf_c_message_pack(m, buf + hdr);
	if (raw_sealed)
		rg_link_seal_frame(&raw_seal.out, buf + hdr, buf + hdr, len);
	return hdr + len + extra;
}

static void raw_send_msg(int fd, const ProtobufCMessage *m)
{
	uint8_t buf[1024];

	raw_send(fd, buf, raw_frame(m, buf));
}

/* Read exactly len bytes; false on EOF or reset. A timeout fails the case. */
static bool raw_read(int fd, uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = recv(fd, buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		CHECK(!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* The next frame, unpacked with desc; NULL when the peer closed. */
static ProtobufCMessage *raw_read_msg(int fd, const ProtobufCMessageDescriptor *desc)
{
	uint8_t hdr[NET_VARINT_MAX], body[4096];
	size_t have = 0, hdr_len, body_len;
	ProtobufCMessage *m;

	for (;;) {
		int rc;

		if (!raw_read(fd, hdr + have, 1))
			return NULL;
		have++;
		rc = net_frame_parse(hdr, have, sizeof(body), &hdr_len, &body_len);
		CHECK(rc >= 0);
		if (rc == 1)
			break;
	}
	if (!raw_read(fd, body, body_len))
		return NULL;
	if (raw_sealed)
		CHECK(rg_link_seal_open(&raw_seal.in, body, body, body_len, &body_len) == 0);
	m = protobuf_c_message_unpack(desc, NULL, body_len, body);
	CHECK(m);
	return m;
}

/* Read and drop frames until the peer closes; returns when that was, in
 * rg_now_ms() time. heartbeats counts the GameToGate heartbeats seen. */
static uint64_t raw_wait_closed(int fd, const ProtobufCMessageDescriptor *desc, int *heartbeats)
{
	ProtobufCMessage *m;

	while ((m = raw_read_msg(fd, desc)) != NULL) {
		if (heartbeats && desc == &ringgate__internal__game_to_gate__descriptor &&
		    ((Ringgate__Internal__GameToGate *)m)->body_case ==
			    RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HEARTBEAT)
			(*heartbeats)++;
		protobuf_c_message_free_unpacked(m, NULL);
	}
	return rg_now_ms();
}

/* The peer (the link module) closes fd, at least min_ms and less than
 * max_ms after t0; then fd is closed. desc: what the peer sends. */
static void expect_closed(int fd, const ProtobufCMessageDescriptor *desc, uint64_t t0,
			  uint64_t min_ms, uint64_t max_ms)
{
	uint64_t closed = raw_wait_closed(fd, desc, NULL);

	CHECK(closed - t0 >= min_ms && closed - t0 < max_ms);
	close(fd);
}

/* True when fd is still open after ms (no EOF, no data). */
static bool raw_still_open(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 0;
}

/* Read the acceptor's AuthChallenge; returns its nonce in nonce. */
static void raw_read_challenge(int fd, uint8_t nonce[RG_LINK_NONCE_BYTES])
{
	Ringgate__Internal__GameToGate *m =
		(void *)raw_read_msg(fd, &ringgate__internal__game_to_gate__descriptor);

	CHECK(m && m->body_case == RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE);
	CHECK(m->challenge->nonce.len == RG_LINK_NONCE_BYTES);
	memcpy(nonce, m->challenge->nonce.data, RG_LINK_NONCE_BYTES);
	protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* As a gateway: answer the challenge with a right Hello, read HelloReply;
 * from then on raw frames are sealed both ways, as the module's. */
static void raw_handshake(int fd, const struct rg_link_key *key)
{
	struct rg_link_auth auth;
	uint8_t challenge[RG_LINK_NONCE_BYTES], nonce[RG_LINK_NONCE_BYTES];
	uint8_t proof[RG_LINK_PROOF_BYTES];
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;
	Ringgate__Internal__GameToGate *reply;

	raw_sealed = false; /* the handshake itself is plain */
	raw_read_challenge(fd, challenge);
	CHECK(rg_link_auth_dial(&auth, key));
	CHECK(rg_link_auth_answer(&auth, challenge, sizeof(challenge), "gateway", nonce, proof) == 0);
	hello.role = "gateway";
	hello.instance = "raw";
	hello.nonce = (ProtobufCBinaryData){ sizeof(nonce), nonce };
	hello.proof = (ProtobufCBinaryData){ sizeof(proof), proof };
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO;
	out.hello = &hello;
	raw_send_msg(fd, &out.base);
	reply = (void *)raw_read_msg(fd, &ringgate__internal__game_to_gate__descriptor);
	CHECK(reply && reply->body_case == RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO);
	CHECK(rg_link_auth_check_acceptor(&auth, reply->hello->role, reply->hello->proof.data,
					  reply->hello->proof.len));
	protobuf_c_message_free_unpacked(&reply->base, NULL);
	rg_link_seal_init(&raw_seal, key->key,
			  &(struct rg_link_transcript){ .acceptor_nonce = challenge,
							.dialer_nonce = nonce,
							.dialer_role = "gateway",
							.acceptor_role = "gamesrv",
							.instance = "raw" },
			  true);
	raw_sealed = true;
}

/* ---- cases: both ends are the module ---------------------------------------- */

/* An acceptor and a dialer with rules r, both up (the dialer named instance). */
static void start_pair_up(struct fixture *f, struct rg_link_rules r, const char *instance)
{
	uint16_t port = start_acceptor(f, r, 4, 4, 2);

	start_dialer(f, port, r, &f->key, "gateway", instance, 1);
	CHECK(wait_for(&ev.up[ACC], 1) && wait_for(&ev.up[DIAL], 1));
}

/* Handshake, then traffic both ways; heartbeats keep the link up past
 * several dead times. */
static void link_up_and_messages(void)
{
	struct fixture f;

	fixture_init(&f, false);
	start_pair_up(&f, rules(20, 200, 1000), "test");
	CHECK(wait_for(&ev.messages[ACC], 1) && wait_for(&ev.messages[DIAL], 1));
	/* Each end learned the other's cluster id from the handshake. */
	CHECK(atomic_load(&ev.peer_id[ACC]) == DIAL_ID && atomic_load(&ev.peer_id[DIAL]) == ACC_ID);
	sleep_ms(800); /* four dead times: only heartbeats flow */
	CHECK(atomic_load(&ev.down[ACC]) == 0 && atomic_load(&ev.down[DIAL]) == 0);
	fixture_fini(&f);
	CHECK(atomic_load(&ev.down_up[ACC]) == 1 && atomic_load(&ev.down_up[DIAL]) == 1);
}

/* --insecure-no-auth on both ends: no challenge, Hello at once, up. */
static void link_insecure(void)
{
	struct fixture f;

	fixture_init(&f, true);
	start_pair_up(&f, rules(50, 500, 1000), "test");
	CHECK(wait_for(&ev.messages[DIAL], 1));
	fixture_fini(&f);
}

/* Another secret, or another role: closed, redialed, never up. */
static void refused_dialer(bool other_secret, const char *role)
{
	struct fixture f;
	uint16_t port;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(50, 500, 1000), 4, 4, 2);
	start_dialer(&f, port, rules(50, 500, 1000), other_secret ? &f.other_key : &f.key, role,
		     "test", 1);
	CHECK(wait_for(&ev.down[DIAL], 2)); /* refused, redialed, refused */
	CHECK(wait_for(&ev.down[ACC], 2));
	CHECK(atomic_load(&ev.up[ACC]) == 0 && atomic_load(&ev.up[DIAL]) == 0);
	fixture_fini(&f);
}

static void link_wrong_secret(void)
{
	refused_dialer(true, "gateway");
}

static void link_wrong_role(void)
{
	refused_dialer(false, "gamesrv");
}

/* An instance name of RG_LINK_INSTANCE_MAX bytes still fits the
 * pre-authentication frame limit; one byte more is refused at setup. */
static void link_long_instance(void)
{
	struct fixture f;
	char name[RG_LINK_INSTANCE_MAX + 2];
	struct rg_link_config cfg = {
		.side = RG_LINK_DIALER, .role = "gateway", .peer_role = "gamesrv",
		.instance = name, .rules = rules(50, 500, 1000), .in = rg_link_game_to_gate,
		.out = rg_link_gate_to_game, .max_frame = 1024, .decode_limit = 4096, .ops = &ops,
	};
	struct rg_link_service svc;

	fixture_init(&f, false);
	cfg.key = &f.key;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	CHECK(rg_link_service_init(&svc, &cfg) == -EINVAL);
	name[RG_LINK_INSTANCE_MAX] = '\0';
	start_pair_up(&f, rules(50, 500, 1000), name);
	fixture_fini(&f);
}

/* max_links authenticated links at most; the others are closed after
 * their handshake and keep redialing. */
static void link_max_links(void)
{
	struct fixture f;
	uint16_t port;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(50, 500, 1000), 1, 4, 4);
	start_dialer(&f, port, rules(50, 500, 1000), &f.key, "gateway", "test", 3);
	CHECK(wait_for(&ev.up[ACC], 1));
	CHECK(wait_for(&ev.down[ACC], 4)); /* the two others, refused twice */
	sleep_ms(200);
	CHECK(atomic_load(&ev.up_max) == 1 && atomic_load(&ev.up_now) == 1);
	fixture_fini(&f);
}

/* ---- cases: a plain-socket peer --------------------------------------------- */

/* A dialer that never answers the challenge is closed at the handshake
 * deadline, long before the dead time. */
static void link_handshake_deadline(void)
{
	struct fixture f;
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	uint64_t t0;
	uint16_t port;
	int fd;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(1000, 20000, 200), 4, 4, 2);
	fd = raw_dial(port, "127.0.0.1");
	t0 = rg_now_ms();
	raw_read_challenge(fd, nonce);
	expect_closed(fd, &ringgate__internal__game_to_gate__descriptor, t0, 150, 3000);
	fixture_fini(&f);
}

/* An acceptor that never sends HelloReply is dropped by the dialer at the
 * same deadline. */
static void link_hello_reply_deadline(void)
{
	struct fixture f;
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__AuthChallenge challenge = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;
	Ringgate__Internal__GateToGame *hello;
	uint8_t nonce[RG_LINK_NONCE_BYTES] = { 1, 2, 3 };
	uint64_t t0;
	uint16_t port;
	int lfd, fd;

	fixture_init(&f, false);
	lfd = raw_listen(&port);
	start_dialer(&f, port, rules(1000, 20000, 200), &f.key, "gateway", "test", 1);
	fd = raw_accept(lfd);
	t0 = rg_now_ms();
	challenge.nonce = (ProtobufCBinaryData){ sizeof(nonce), nonce };
	out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE;
	out.challenge = &challenge;
	raw_send_msg(fd, &out.base);
	hello = (void *)raw_read_msg(fd, &ringgate__internal__gate_to_game__descriptor);
	CHECK(hello && hello->body_case == RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO);
	protobuf_c_message_free_unpacked(&hello->base, NULL);
	expect_closed(fd, &ringgate__internal__gate_to_game__descriptor, t0, 150, 3000);
	CHECK(atomic_load(&ev.up[DIAL]) == 0);
	close(lfd);
	fixture_fini(&f);
}

/* Before authentication a frame header announcing 4 MiB closes the link at
 * once (both sides), long before any deadline. */
static void link_preauth_frame_limit(void)
{
	struct fixture f;
	uint8_t big[16];
	size_t hdr = net_varint_encode(4u << 20, big);
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	uint64_t t0;
	uint16_t port;
	int lfd, fd;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(1000, 20000, 10000), 4, 4, 2);
	fd = raw_dial(port, "127.0.0.1");
	raw_read_challenge(fd, nonce);
	t0 = rg_now_ms();
	raw_send(fd, big, hdr);
	raw_send(fd, "0123456789", 10);
	expect_closed(fd, &ringgate__internal__game_to_gate__descriptor, t0, 0, 1000);

	lfd = raw_listen(&port);
	start_dialer(&f, port, rules(1000, 20000, 10000), &f.key, "gateway", "test", 1);
	fd = raw_accept(lfd);
	t0 = rg_now_ms();
	raw_send(fd, big, hdr);
	expect_closed(fd, &ringgate__internal__gate_to_game__descriptor, t0, 0, 1000);
	close(lfd);
	fixture_fini(&f);
}

/* Before Hello, a process message or a Heartbeat closes the link. */
static void link_before_hello(void)
{
	struct fixture f;
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;
	Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	uint64_t t0;
	uint16_t port;
	int fd;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(1000, 20000, 10000), 4, 4, 2);
	for (int i = 0; i < 2; i++) {
		fd = raw_dial(port, "127.0.0.1");
		raw_read_challenge(fd, nonce);
		if (i == 0) {
			out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
			out.gone = &gone;
		} else {
			out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HEARTBEAT;
			out.heartbeat = &hb;
		}
		t0 = rg_now_ms();
		raw_send_msg(fd, &out.base);
		expect_closed(fd, &ringgate__internal__game_to_gate__descriptor, t0, 0, 1000);
	}
	CHECK(atomic_load(&ev.up[ACC]) == 0 && atomic_load(&ev.messages[ACC]) == 0);
	fixture_fini(&f);
}

/* Once up the acceptor sends heartbeats on its timer; a peer that then
 * says nothing is closed after the dead time, and at once: on_down comes
 * with the close, not after a flush timeout (2 s) spent waiting for the
 * dead peer's EOF, which this peer never sends while the test waits. */
static void link_heartbeats_and_dead_peer(void)
{
	struct fixture f;
	uint64_t t0, closed, down;
	int heartbeats = 0;
	uint16_t port;
	int fd;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(50, 600, 1000), 4, 4, 2);
	fd = raw_dial(port, "127.0.0.1");
	raw_handshake(fd, &f.key);
	t0 = rg_now_ms();
	CHECK(wait_for(&ev.up[ACC], 1));
	closed = raw_wait_closed(fd, &ringgate__internal__game_to_gate__descriptor, &heartbeats);
	CHECK(closed - t0 >= 550 && closed - t0 < 3000);
	CHECK(heartbeats >= 5); /* about one per 50 ms for 600 ms */
	CHECK(wait_for(&ev.down_up[ACC], 1));
	down = rg_now_ms();
	CHECK(down - closed < 1500);
	close(fd);
	fixture_fini(&f);
}

/* Frames sent from another thread (net_send_to, posted to the loop) and
 * on the loop (replies, heartbeats every 5 ms) interleave: each is sealed
 * when it enters the send queue, so the counters follow the wire and every
 * frame opens. */
static void link_sealed_from_threads(void)
{
	enum { N = 300 };
	struct fixture f;
	Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
	Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;
	uint8_t buf[64];
	size_t len;

	fixture_init(&f, false);
	start_pair_up(&f, rules(5, 2000, 1000), "test");
	CHECK(wait_for(&ev.messages[DIAL], 1));
	gone.session = 7;
	out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
	out.gone = &gone;
	len = protobuf_c_message_pack(&out.base, buf);
	for (int i = 0; i < N; i++) {
		CHECK(net_send_to(f.rt, atomic_load(&dial_id), buf, len) == 0);
		if (i % 16 == 0)
			sleep_ms(1);
	}
	CHECK(wait_for(&ev.messages[ACC], N + 1) && wait_for(&ev.messages[DIAL], N + 1));
	CHECK(atomic_load(&ev.down[ACC]) == 0 && atomic_load(&ev.down[DIAL]) == 0);
	fixture_fini(&f);
}

/* How a raw peer spoils its second sealed frame. */
enum spoil { FLIP_BIT, REPLAY, SKIP_ONE, INJECT_PLAIN, TRUNCATE };

/* A raw gateway, up and sealed, sends one good ClientGone (applied), then
 * a spoiled one: the acceptor closes the link at once and applies nothing
 * of it (its on_message never runs again). */
static void link_sealed_tamper(void)
{
	static const enum spoil spoils[] = { FLIP_BIT, REPLAY, SKIP_ONE, INJECT_PLAIN, TRUNCATE };
	struct fixture f;
	uint16_t port;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(50, 2000, 1000), 8, 8, 8);
	for (size_t i = 0; i < sizeof(spoils) / sizeof(spoils[0]); i++) {
		Ringgate__Internal__GateToGame out = RINGGATE__INTERNAL__GATE_TO_GAME__INIT;
		Ringgate__Internal__ClientGone gone = RINGGATE__INTERNAL__CLIENT_GONE__INIT;
		uint8_t good[1024], bad[1024];
		size_t good_len, bad_len = 0; /* each case sets it; gcc -O2 cannot tell */
		int fd = raw_dial(port, "127.0.0.1");
		uint64_t t0;

		raw_handshake(fd, &f.key);
		CHECK(wait_for(&ev.up[ACC], (int)i + 1));
		gone.session = 7;
		out.body_case = RINGGATE__INTERNAL__GATE_TO_GAME__BODY_GONE;
		out.gone = &gone;
		good_len = raw_frame(&out.base, good);
		raw_send(fd, good, good_len);
		CHECK(wait_for(&ev.messages[ACC], (int)i + 1));
		switch (spoils[i]) {
		case FLIP_BIT:
			bad_len = raw_frame(&out.base, bad);
			bad[bad_len / 2] ^= 0x10;
			break;
		case REPLAY:
			memcpy(bad, good, good_len);
			bad_len = good_len;
			break;
		case SKIP_ONE: /* the one after next: as if reordered */
			(void)raw_frame(&out.base, bad);
			bad_len = raw_frame(&out.base, bad);
			break;
		case INJECT_PLAIN:
			raw_sealed = false;
			bad_len = raw_frame(&out.base, bad);
			break;
		case TRUNCATE: /* a frame shorter than its tag */
			bad[0] = 3;
			memcpy(bad + 1, "abc", 3);
			bad_len = 4;
			break;
		}
		t0 = rg_now_ms();
		raw_send(fd, bad, bad_len);
		while (recv(fd, good, sizeof(good), 0) > 0)
			; /* heartbeats, then the EOF (a receive timeout fails below) */
		CHECK(rg_now_ms() - t0 < 1500);
		close(fd);
		CHECK(wait_for(&ev.down_up[ACC], (int)i + 1));
		CHECK(atomic_load(&ev.messages[ACC]) == (int)i + 1);
	}
	fixture_fini(&f);
}

/* A newcomer from an address that holds pending_per_addr handshakes
 * evicts that address's oldest; other addresses are left alone. */
static void link_evicts_same_address(void)
{
	struct fixture f;
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	int other, a[3];
	uint16_t port;

	fixture_init(&f, false);
	port = start_acceptor(&f, rules(1000, 20000, 10000), 4, 8, 2);
	other = raw_dial(port, "127.0.0.3");
	raw_read_challenge(other, nonce);
	for (int i = 0; i < 3; i++) {
		a[i] = raw_dial(port, "127.0.0.2");
		raw_read_challenge(a[i], nonce);
	}
	raw_wait_closed(a[0], &ringgate__internal__game_to_gate__descriptor, NULL);
	CHECK(raw_still_open(a[1], 200) && raw_still_open(a[2], 1) && raw_still_open(other, 1));
	for (int i = 0; i < 3; i++)
		close(a[i]);
	close(other);
	fixture_fini(&f);
}

/* Peers that never authenticate, redialing as fast as they can from
 * several addresses, do not keep a real dialer from linking up. */
struct flood {
	uint16_t port;
	atomic_bool stop;
	atomic_int dials;
};

static void *flood_run(void *arg)
{
	struct flood *fl = arg;
	enum { N = 24 };
	struct pollfd p[N];
	char src[16];

	for (int i = 0; i < N; i++) {
		snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % 4);
		p[i] = (struct pollfd){ .fd = raw_dial(fl->port, src), .events = POLLIN };
	}
	while (!atomic_load(&fl->stop)) {
		if (poll(p, N, 50) <= 0)
			continue;
		for (int i = 0; i < N; i++) {
			uint8_t buf[256];
			ssize_t n;

			if (!p[i].revents)
				continue;
			n = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
				continue; /* the challenge: ignored */
			close(p[i].fd); /* closed on us: dial again at once */
			snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % 4);
			p[i].fd = raw_dial(fl->port, src);
			atomic_fetch_add(&fl->dials, 1);
		}
	}
	for (int i = 0; i < N; i++)
		close(p[i].fd);
	return NULL;
}

static void link_flood_does_not_block(void)
{
	struct fixture f;
	struct flood fl = { 0 };
	pthread_t th;

	fixture_init(&f, false);
	fl.port = start_acceptor(&f, rules(1000, 5000, 1000), 2, 8, 2);
	CHECK(pthread_create(&th, NULL, flood_run, &fl) == 0);
	sleep_ms(300); /* the flood is on: every pending slot is taken */
	start_dialer(&f, fl.port, rules(1000, 5000, 1000), &f.key, "gateway", "test", 1);
	CHECK(wait_for(&ev.up[ACC], 1) && wait_for(&ev.up[DIAL], 1));
	CHECK(atomic_load(&fl.dials) > 0); /* the flooders were being evicted */
	atomic_store(&fl.stop, true);
	pthread_join(th, NULL);
	fixture_fini(&f);
}

static const struct test_case cases[] = {
	{ "link_auth_handshake", link_auth_handshake },
	{ "link_auth_wrong_secret", link_auth_wrong_secret },
	{ "link_auth_secret_file", link_auth_secret_file },
	{ "link_up_and_messages", link_up_and_messages },
	{ "link_insecure", link_insecure },
	{ "link_wrong_secret", link_wrong_secret },
	{ "link_wrong_role", link_wrong_role },
	{ "link_long_instance", link_long_instance },
	{ "link_max_links", link_max_links },
	{ "link_handshake_deadline", link_handshake_deadline },
	{ "link_hello_reply_deadline", link_hello_reply_deadline },
	{ "link_preauth_frame_limit", link_preauth_frame_limit },
	{ "link_before_hello", link_before_hello },
	{ "link_heartbeats_and_dead_peer", link_heartbeats_and_dead_peer },
	{ "link_evicts_same_address", link_evicts_same_address },
	{ "link_flood_does_not_block", link_flood_does_not_block },
	{ "link_sealed_from_threads", link_sealed_from_threads },
	{ "link_sealed_tamper", link_sealed_tamper },
	{ NULL, NULL },
};

TEST_MAIN(cases)
