/*
 * link.c: one end of an internal link (see rg/link.h for the rules and
 * the states).
 *
 * Every link has one one-shot timer, armed for the earliest of what is
 * due next: the handshake deadline (not up yet) or the next Heartbeat (up),
 * and the moment the peer would have been silent for longer than the dead
 * time. When it fires it checks them in that order and arms itself again;
 * a frame that arrives meanwhile only moves last_heard_ms, so a busy link
 * costs no timer work per frame. All times are the loop's clock
 * (net_loop_now).
 *
 * The module speaks the handshake in the process's own envelopes without
 * knowing their C types: rg_link_service_init looks the handshake fields
 * up in the envelope descriptors by number (checking that each carries
 * the message it must), and frames are built and read through those
 * field descriptors, as protobuf-c's own packer does.
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.pb-c.h"
#include "rg/clock.h"
#include "rg/link_seal.h"
#include "rg/log.h"

/* Room for an outgoing envelope built on the stack; checked at init. */
#define ENVELOPE_MAX 256

/* A peer address without its port, as text ("127.0.0.1", "[::1]"). */
#define ADDR_TEXT 48

/* Longest pending caps accepted (admission scans the table per connect). */
#define PENDING_CAP_MAX 256

/* Evictions are logged at most this often (a flood would flood the log). */
#define EVICT_LOG_MS 10000

/* One link in its handshake (acceptor admission). */
struct rg_link_pending {
	net_session_id id;
	char addr[ADDR_TEXT];
};

/* The user area of a link's session: ours, then the process's. */
struct rg_link {
	struct rg_link_service *svc;
	struct net_session *session;
	struct net_timer *timer;
	struct rg_link_auth auth;
	struct rg_pb_arena arena;
	uint64_t connected_ms;
	uint64_t last_heard_ms;
	uint64_t last_sent_ms;        /* last Heartbeat out                   */
	bool up;                      /* the handshake succeeded              */
	uint32_t peer_id;             /* the peer's cfg.id from its handshake */
	bool counted_up;              /* acceptor: counted in svc->up_links   */
	bool process_connected;       /* ops->on_connected succeeded: owe on_down */
	const uint8_t *frame;         /* the frame on_message is handling,    */
	size_t frame_len;             /* for rg_link_frame_has_nul; else NULL */
	bool sealed;                  /* up, and frames are sealed both ways  */
	struct rg_link_seal seal;     /* the keys and counters, when sealed   */
	uint8_t *opened;              /* an opened frame's plaintext; grows   */
	size_t opened_cap;            /* to the largest frame received        */
	max_align_t user[];           /* the process's cfg.user_size bytes    */
};

/* ---- envelopes ------------------------------------------------------------ */

const struct rg_link_envelope rg_link_gate_to_game = {
	&ringgate__internal__gate_to_game__descriptor,
	RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO,
	RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HEARTBEAT, 0,
};
const struct rg_link_envelope rg_link_game_to_gate = {
	&ringgate__internal__game_to_gate__descriptor,
	RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO,
	RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HEARTBEAT,
	RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE,
};
const struct rg_link_envelope rg_link_game_to_db = {
	&ringgate__internal__game_to_db__descriptor,
	RINGGATE__INTERNAL__GAME_TO_DB__BODY_HELLO,
	RINGGATE__INTERNAL__GAME_TO_DB__BODY_HEARTBEAT, 0,
};
const struct rg_link_envelope rg_link_db_to_game = {
	&ringgate__internal__db_to_game__descriptor,
	RINGGATE__INTERNAL__DB_TO_GAME__BODY_HELLO,
	RINGGATE__INTERNAL__DB_TO_GAME__BODY_HEARTBEAT,
	RINGGATE__INTERNAL__DB_TO_GAME__BODY_CHALLENGE,
};

/* The field `number` of desc, checked to be a member of its oneof that
 * carries a `want` message; NULL (logged) when it is not. */
static const ProtobufCFieldDescriptor *body_field(const ProtobufCMessageDescriptor *desc,
						  uint32_t number,
						  const ProtobufCMessageDescriptor *want)
{
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, number);

	if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->descriptor != want ||
	    !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
		RG_ERROR("link envelope %s: field %u is not a %s in its oneof", desc->name,
			 (unsigned)number, want->name);
		return NULL;
	}
	return f;
}

/* Check one envelope: hello and heartbeat always, challenge when wanted
 * (and absent otherwise); *case_offset gets the oneof's case offset. */
static bool envelope_ok(const struct rg_link_envelope *env,
			const ProtobufCMessageDescriptor *hello, bool challenge,
			size_t *case_offset)
{
	const ProtobufCFieldDescriptor *f;

	if (!env->desc || env->desc->sizeof_message > ENVELOPE_MAX)
		return false;
	f = body_field(env->desc, env->hello, hello);
	if (!f || !body_field(env->desc, env->heartbeat, &ringgate__internal__heartbeat__descriptor))
		return false;
	if (challenge != (env->challenge != 0) ||
	    (challenge && !body_field(env->desc, env->challenge,
				      &ringgate__internal__auth_challenge__descriptor)))
		return false;
	*case_offset = f->quantifier_offset; /* every member of a oneof shares it */
	return true;
}

/* The body case of a decoded incoming envelope. */
static uint32_t body_case(const struct rg_link_service *svc, const ProtobufCMessage *msg)
{
	return *(const uint32_t *)((const char *)msg + svc->in_case_offset);
}

/* The body message of field `number` in a decoded incoming envelope. */
static const void *body_of(const struct rg_link_service *svc, const ProtobufCMessage *msg,
			   uint32_t number)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field(svc->cfg.in.desc, number);

	return *(void *const *)((const char *)msg + f->offset);
}

/* ---- sealing ------------------------------------------------------------- */

/*
 * Where frames are sealed. Every frame a link end sends after its
 * handshake is sealed here, on the link's loop thread, so the counter
 * nonce follows the order of the send queue (and so the wire):
 *   - rg_link_send (this module's frames, and the process's on the loop)
 *     reserves the frame in the send queue, packs into it and seals it in
 *     place: no copy at all;
 *   - net_send_to / net_session_send_frame, from any thread (the processes'
 *     replies and requests from their worker or game threads), go through
 *     libnet's frame sealer, which calls seal_hook when the frame enters
 *     the queue on the loop thread; the seal writes straight into the
 *     queue, in place of the copy libnet would make anyway.
 * Sealing on the caller's thread instead (under a lock per link) would
 * not do: a frame posted from another thread is queued later than one
 * sent on the loop meanwhile, so its counter would arrive out of order.
 */
static void seal_hook(struct net_session *s, uint8_t *out, const uint8_t *body, size_t len)
{
	struct rg_link *link = net_session_user(s);

	rg_link_seal_frame(&link->seal.out, out, body, len);
}

static const struct net_frame_sealer link_sealer = {
	.overhead = RG_LINK_SEAL_OVERHEAD,
	.seal = seal_hook,
};

/* The handshake is done: derive the keys and seal from now on, unless the
 * link runs plain (--link-seal=off, or --insecure-no-auth: no nonces). */
static void seal_start(struct rg_link *link, const char *dialer_instance)
{
	const struct rg_link_config *cfg = &link->svc->cfg;
	bool dialer = cfg->side == RG_LINK_DIALER;
	struct rg_link_transcript t = {
		.acceptor_nonce = link->auth.acceptor_nonce,
		.dialer_nonce = link->auth.dialer_nonce,
		.dialer_role = dialer ? cfg->role : cfg->peer_role,
		.acceptor_role = dialer ? cfg->peer_role : cfg->role,
		.instance = dialer_instance,
	};

	if (cfg->rules.plain || rg_link_auth_insecure(&link->auth)) {
		RG_WARN("%s link %s: frames are NOT sealed (%s)", cfg->peer_role,
			NET_SESSION_PEER(link->session),
			cfg->rules.plain ? "--link-seal=off" : "--insecure-no-auth");
		return;
	}
	rg_link_seal_init(&link->seal, link->auth.key->key, &t, dialer);
	link->sealed = true;
	net_session_set_sealer(link->session, &link_sealer);
}

/* Open a sealed frame into link->opened; returns 0 (*plain, *plain_len
 * set) or -errno, logged: any failure closes the link. */
static int open_frame(struct rg_link *link, const uint8_t *frame, size_t len,
		      const uint8_t **plain /* OUT */, size_t *plain_len /* OUT */)
{
	const struct rg_link_config *cfg = &link->svc->cfg;

	if (len > link->opened_cap) {
		uint8_t *grown = realloc(link->opened, len);

		if (!grown)
			return -ENOMEM;
		link->opened = grown;
		link->opened_cap = len;
	}
	if (rg_link_seal_open(&link->seal.in, link->opened, frame, len, plain_len) < 0) {
		RG_WARN("%s link %s: sealed frame #%llu (%zu bytes) does not open: altered, "
			"replayed, reordered or injected on the way (or the peer runs with "
			"--link-seal=off); nothing of it applied, closing the link",
			cfg->peer_role, NET_SESSION_PEER(link->session),
			(unsigned long long)link->seal.in.counter, len);
		return -EBADMSG;
	}
	*plain = link->opened;
	return 0;
}

int rg_link_send(struct rg_link *link, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	size_t extra = link->sealed ? RG_LINK_SEAL_OVERHEAD : 0;
	int err = 0;
	uint8_t *frame = net_session_reserve_frame(link->session, len + extra, &err);

	if (!frame)
		return err < 0 ? err : -ENOMEM;
	protobuf_c_message_pack(m, frame);
	if (link->sealed) /* reserved frames bypass libnet's sealer: seal here */
		rg_link_seal_frame(&link->seal.out, frame, frame, len);
	return 0;
}

/* Send an outgoing envelope whose body is field `number` = body. */
static int send_body(struct rg_link *link, uint32_t number, const ProtobufCMessage *body)
{
	const ProtobufCMessageDescriptor *desc = link->svc->cfg.out.desc;
	const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, number);
	union {
		ProtobufCMessage base;
		max_align_t align;
		unsigned char bytes[ENVELOPE_MAX];
	} env;

	protobuf_c_message_init(desc, &env);
	*(uint32_t *)(env.bytes + link->svc->out_case_offset) = number;
	*(const ProtobufCMessage **)(env.bytes + f->offset) = body;
	return rg_link_send(link, &env.base);
}

/* ---- the handshake frames we send ----------------------------------------- */

static int send_challenge(struct rg_link *link, const uint8_t nonce[RG_LINK_NONCE_BYTES])
{
	Ringgate__Internal__AuthChallenge challenge = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;

	challenge.nonce.data = (uint8_t *)nonce;
	challenge.nonce.len = RG_LINK_NONCE_BYTES;
	return send_body(link, link->svc->cfg.out.challenge, &challenge.base);
}

/* Hello; nonce and proof answer the AuthChallenge (NULL: insecure). */
static int send_hello(struct rg_link *link, uint8_t *nonce, uint8_t *proof)
{
	Ringgate__Internal__Hello hello = RINGGATE__INTERNAL__HELLO__INIT;

	hello.role = (char *)link->svc->cfg.role;
	hello.instance = (char *)link->svc->cfg.instance;
	hello.gateway_id = link->svc->cfg.id;
	if (nonce) {
		hello.nonce.data = nonce;
		hello.nonce.len = RG_LINK_NONCE_BYTES;
		hello.proof.data = proof;
		hello.proof.len = RG_LINK_PROOF_BYTES;
	}
	return send_body(link, link->svc->cfg.out.hello, &hello.base);
}

static int send_hello_reply(struct rg_link *link, uint8_t *proof)
{
	Ringgate__Internal__HelloReply reply = RINGGATE__INTERNAL__HELLO_REPLY__INIT;

	reply.role = (char *)link->svc->cfg.role;
	reply.shard = link->svc->cfg.id;
	if (!rg_link_auth_insecure(&link->auth)) {
		reply.proof.data = proof;
		reply.proof.len = RG_LINK_PROOF_BYTES;
	}
	return send_body(link, link->svc->cfg.out.hello, &reply.base);
}

static void send_heartbeat(struct rg_link *link)
{
	Ringgate__Internal__Heartbeat hb = RINGGATE__INTERNAL__HEARTBEAT__INIT;
	int err;

	hb.sent_ms = rg_wall_ms();
	err = send_body(link, link->svc->cfg.out.heartbeat, &hb.base);
	if (err < 0)
		RG_WARN("%s link %s: heartbeat not sent: %s", link->svc->cfg.peer_role,
			NET_SESSION_PEER(link->session), net_strerror(err));
}

/* ---- admission (acceptors) ------------------------------------------------ */

static unsigned count_addr(const struct rg_link_service *svc, const char *addr)
{
	unsigned n = 0;

	for (unsigned i = 0; i < svc->pending_len; i++)
		n += strcmp(svc->pending[i].addr, addr) == 0;
	return n;
}

/* Index of the oldest entry of addr (there is one). */
static unsigned oldest_of(const struct rg_link_service *svc, const char *addr)
{
	unsigned i = 0;

	while (strcmp(svc->pending[i].addr, addr) != 0)
		i++;
	return i;
}

/* The victim when the table is full: the oldest entry of the address
 * holding the most entries (the oldest overall among equals). */
static unsigned victim_of_full(const struct rg_link_service *svc)
{
	unsigned best = 0, best_count = 0;

	for (unsigned i = 0; i < svc->pending_len; i++) {
		unsigned n = count_addr(svc, svc->pending[i].addr);

		if (n > best_count) { /* strictly more: keeps the oldest of a tie */
			best = oldest_of(svc, svc->pending[i].addr);
			best_count = n;
		}
	}
	return best;
}

/* Remove pending entry i, keeping the table oldest first. Locked. */
static void pending_remove(struct rg_link_service *svc, unsigned i)
{
	memmove(&svc->pending[i], &svc->pending[i + 1],
		(svc->pending_len - i - 1) * sizeof(svc->pending[0]));
	svc->pending_len--;
}

/* Remove the entry of id, if it is still there; true when it was. Locked. */
static bool pending_forget(struct rg_link_service *svc, net_session_id id)
{
	for (unsigned i = 0; i < svc->pending_len; i++) {
		if (svc->pending[i].id == id) {
			pending_remove(svc, i);
			return true;
		}
	}
	return false;
}

/* A new acceptor link enters its handshake: take a pending slot, evicting
 * another pending link when a cap is reached (rule 6). */
static void admit(struct rg_link *link)
{
	struct rg_link_service *svc = link->svc;
	struct rg_link_pending me = { .id = net_session_get_id(link->session) };
	net_session_id victim = 0;
	uint64_t evicted = 0, now = rg_now_ms();
	bool same_addr, log_it = false;

	net_session_peer_host(link->session, me.addr, sizeof(me.addr));
	pthread_mutex_lock(&svc->lock);
	same_addr = count_addr(svc, me.addr) >= svc->cfg.pending_per_addr;
	if (same_addr || svc->pending_len >= svc->cfg.pending_max) {
		unsigned i = same_addr ? oldest_of(svc, me.addr) : victim_of_full(svc);

		victim = svc->pending[i].id;
		pending_remove(svc, i);
		svc->evicted++;
		if (now - svc->evicted_log_ms >= EVICT_LOG_MS || svc->evicted_logged == 0) {
			evicted = svc->evicted - svc->evicted_logged;
			svc->evicted_logged = svc->evicted;
			svc->evicted_log_ms = now;
			log_it = true;
		}
	}
	svc->pending[svc->pending_len++] = me;
	pthread_mutex_unlock(&svc->lock);
	if (!victim)
		return;
	if (log_it)
		RG_WARN("%s links: evicted %llu link(s) still in their handshake to make room "
			"(at most %u pending, %u per address; the latest newcomer is from %s)",
			svc->cfg.peer_role, (unsigned long long)evicted, svc->cfg.pending_max,
			svc->cfg.pending_per_addr, me.addr);
	net_disconnect_id(net_loop_runtime(net_session_loop(link->session)), victim,
			  NET_REASON_LOCAL);
}

/* The acceptor link authenticated: move it from pending to up, unless it
 * was evicted meanwhile or max_links are up already. Returns 0 or -errno. */
static int admit_up(struct rg_link *link)
{
	struct rg_link_service *svc = link->svc;
	int rc = 0;

	pthread_mutex_lock(&svc->lock);
	if (!pending_forget(svc, net_session_get_id(link->session)))
		rc = -ECONNABORTED; /* evicted: its close is on its way */
	else if (svc->cfg.max_links && svc->up_links >= svc->cfg.max_links)
		rc = -EUSERS;
	else
		svc->up_links++;
	pthread_mutex_unlock(&svc->lock);
	if (rc == -EUSERS)
		RG_WARN("%s link %s: %u %s links are up already (the most allowed), closing it",
			svc->cfg.peer_role, NET_SESSION_PEER(link->session), svc->cfg.max_links,
			svc->cfg.peer_role);
	link->counted_up = rc == 0;
	return rc;
}

/* The acceptor link ended: give back whatever slot it held. */
static void admit_release(struct rg_link *link)
{
	struct rg_link_service *svc = link->svc;

	pthread_mutex_lock(&svc->lock);
	if (link->counted_up)
		svc->up_links--;
	else
		pending_forget(svc, net_session_get_id(link->session));
	pthread_mutex_unlock(&svc->lock);
}

/* ---- the handshake frames we receive -------------------------------------- */

/* Arm the timer for the earliest of: handshake deadline or next Heartbeat,
 * and the first moment past the dead time. At least 1 ms ahead. */
static void arm(struct rg_link *link, uint64_t now)
{
	const struct rg_link_rules *r = &link->svc->cfg.rules;
	uint64_t due = link->last_heard_ms + r->dead_ms + 1;
	uint64_t next = link->up ? link->last_sent_ms + r->heartbeat_ms
				 : link->connected_ms + r->handshake_ms;

	if (next < due)
		due = next;
	net_timer_start(link->timer, due > now ? due - now : 1, 0);
}

/* Authenticated: seal, lift the frame limit, start heartbeats, tell the
 * process. dialer_instance is the instance name the dialer's Hello carried. */
static int link_up(struct rg_link *link, const char *dialer_instance)
{
	const struct rg_link_ops *ops = link->svc->cfg.ops;
	uint64_t now = net_loop_now(net_session_loop(link->session));

	seal_start(link, dialer_instance);
	link->up = true;
	link->last_sent_ms = now;
	arm(link, now);
	net_session_set_max_frame(link->session, 0);
	return ops->on_up ? ops->on_up(link) : 0;
}

/* Acceptor: the dialer's Hello. */
static int on_hello(struct rg_link *link, const Ringgate__Internal__Hello *hello)
{
	const struct rg_link_config *cfg = &link->svc->cfg;
	const char *peer = NET_SESSION_PEER(link->session);
	uint8_t proof[RG_LINK_PROOF_BYTES];
	int rc;

	if (strcmp(hello->role, cfg->peer_role) != 0) {
		/* A proof covers the role its maker claimed: one relayed from
		 * another link (another role) must not pass for this one's. */
		RG_WARN("%s link %s: Hello with role \"%.32s\", not %s, closing it",
			cfg->peer_role, peer, hello->role, cfg->peer_role);
		return -EPROTO;
	}
	if (!rg_link_auth_check_dialer(&link->auth, hello->role, hello->nonce.data,
				       hello->nonce.len, hello->proof.data, hello->proof.len,
				       cfg->role, proof)) {
		RG_WARN("%s link %s: Hello does not prove the cluster secret (wrong secret, or "
			"the peer runs without one), closing it", cfg->peer_role, peer);
		return -EACCES;
	}
	rc = admit_up(link);
	if (rc < 0)
		return rc;
	RG_INFO("%s link %s ready (instance \"%.64s\")", cfg->peer_role, peer, hello->instance);
	link->peer_id = hello->gateway_id;
	rc = send_hello_reply(link, proof);
	return rc < 0 ? rc : link_up(link, hello->instance);
}

/* Dialer: the acceptor's HelloReply. */
static int on_hello_reply(struct rg_link *link, const Ringgate__Internal__HelloReply *reply)
{
	const struct rg_link_config *cfg = &link->svc->cfg;
	const char *peer = NET_SESSION_PEER(link->session);

	if (strcmp(reply->role, cfg->peer_role) != 0) {
		RG_WARN("%s link %s: HelloReply from role \"%.32s\", not %s, closing it",
			cfg->peer_role, peer, reply->role, cfg->peer_role);
		return -EPROTO;
	}
	if (!rg_link_auth_check_acceptor(&link->auth, reply->role, reply->proof.data,
					 reply->proof.len)) {
		RG_WARN("%s link %s: HelloReply does not prove the cluster secret, closing it",
			cfg->peer_role, peer);
		return -EACCES;
	}
	link->peer_id = reply->shard;
	return link_up(link, cfg->instance);
}

/* Dialer: the acceptor's AuthChallenge; answer it with Hello and our proof. */
static int on_challenge(struct rg_link *link, const Ringgate__Internal__AuthChallenge *c)
{
	uint8_t nonce[RG_LINK_NONCE_BYTES], proof[RG_LINK_PROOF_BYTES];

	if (rg_link_auth_answer(&link->auth, c->nonce.data, c->nonce.len, link->svc->cfg.role,
				nonce, proof) < 0) {
		RG_WARN("%s link %s: cannot answer its AuthChallenge (%s), closing it",
			link->svc->cfg.peer_role, NET_SESSION_PEER(link->session),
			rg_link_auth_insecure(&link->auth) ? "this process runs with --insecure-no-auth"
							    : "repeated or malformed");
		return -EPROTO;
	}
	return send_hello(link, nonce, proof);
}

/* A frame whose body is one of the module's (hello, challenge, heartbeat). */
static int on_link_frame(struct rg_link *link, const ProtobufCMessage *msg, uint32_t body)
{
	const struct rg_link_config *cfg = &link->svc->cfg;
	bool acceptor = cfg->side == RG_LINK_ACCEPTOR;
	const void *m = body_of(link->svc, msg, body);

	if (body == cfg->in.heartbeat) {
		if (link->up)
			return 0; /* heard, like every frame */
	} else if (link->up) {
		RG_WARN("%s link %s: a second %s, closing it", cfg->peer_role,
			NET_SESSION_PEER(link->session),
			body == cfg->in.hello ? (acceptor ? "Hello" : "HelloReply") : "AuthChallenge");
		return -EPROTO;
	} else if (body == cfg->in.challenge) {
		return on_challenge(link, m);
	} else {
		return acceptor ? on_hello(link, m) : on_hello_reply(link, m);
	}
	RG_WARN("%s link %s: Heartbeat before %s, closing it", cfg->peer_role,
		NET_SESSION_PEER(link->session), acceptor ? "Hello" : "HelloReply");
	return -EPROTO;
}

/* ---- session callbacks ---------------------------------------------------- */

static void on_tick(struct net_timer *timer, void *arg)
{
	struct rg_link *link = arg;
	const struct rg_link_rules *r = &link->svc->cfg.rules;
	uint64_t now = net_loop_now(net_session_loop(link->session));

	(void)timer;
	if (!net_session_connected(link->session))
		return; /* closing already: nothing is due any more */
	if (!link->up && now - link->connected_ms >= r->handshake_ms) {
		RG_WARN("%s link %s: no handshake within %u ms, closing it",
			link->svc->cfg.peer_role, NET_SESSION_PEER(link->session), r->handshake_ms);
		net_session_disconnect(link->session, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	if (now - link->last_heard_ms > r->dead_ms) {
		RG_WARN("%s link %s silent for more than %u ms: closing it",
			link->svc->cfg.peer_role, NET_SESSION_PEER(link->session), r->dead_ms);
		/* Abortive: a graceful close would wait flush_timeout_ms for a
		 * peer judged dead to read and close, so on_down (clients told,
		 * redial, held writes) would come that much after the dead time. */
		net_session_abort(link->session, NET_REASON_IDLE_TIMEOUT);
		return;
	}
	if (link->up && now - link->last_sent_ms >= r->heartbeat_ms) {
		link->last_sent_ms = now;
		send_heartbeat(link);
	}
	arm(link, now);
}

/* Set the link up; the handshake's first move. Returns 0 or -errno. */
static int start(struct rg_link *link)
{
	const struct rg_link_config *cfg = &link->svc->cfg;
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	int rc;

	rc = net_timer_create(net_session_loop(link->session), on_tick, link, &link->timer);
	if (rc < 0) {
		link->timer = NULL;
		return rc;
	}
	arm(link, link->connected_ms);
	if (cfg->ops->on_connected) {
		rc = cfg->ops->on_connected(link);
		if (rc < 0)
			return rc;
	}
	link->process_connected = true;
	if (cfg->side == RG_LINK_ACCEPTOR)
		return rg_link_auth_accept(&link->auth, cfg->key, nonce)
			       ? send_challenge(link, nonce) : 0;
	return rg_link_auth_dial(&link->auth, cfg->key) ? 0 /* wait for the challenge */
							: send_hello(link, NULL, NULL);
}

static void on_connected(struct net_session *s)
{
	struct rg_link *link = net_session_user(s);
	struct rg_link_service *svc = net_session_service_user(s);
	uint64_t now = net_loop_now(net_session_loop(s));
	int rc;

	link->svc = svc;
	link->session = s;
	link->connected_ms = link->last_heard_ms = link->last_sent_ms = now;
	rg_pb_arena_init(&link->arena, svc->cfg.decode_limit);
	net_session_set_max_frame(s, RG_LINK_PREAUTH_MAX_FRAME);
	RG_DEBUG("%s link %s connected", svc->cfg.peer_role, NET_SESSION_PEER(s));
	if (svc->cfg.side == RG_LINK_ACCEPTOR)
		admit(link);
	rc = start(link);
	if (rc < 0) {
		RG_ERROR("%s link %s: cannot set it up (%s), closing it", svc->cfg.peer_role,
			 NET_SESSION_PEER(s), net_strerror(rc));
		net_session_disconnect(s, NET_REASON_APP_ERROR);
	}
}

/* Free a decoded frame that was not handed to the process. */
static void release(struct rg_link *link, ProtobufCMessage *msg, ProtobufCAllocator *alloc,
		    void *token)
{
	const struct rg_link_ops *ops = link->svc->cfg.ops;

	if (!ops->decode_into) {
		rg_pb_arena_reset(&link->arena);
		return;
	}
	if (msg)
		protobuf_c_message_free_unpacked(msg, alloc);
	ops->decode_drop(link, token);
}

static int on_frame(struct net_session *s, const uint8_t *frame, size_t len)
{
	struct rg_link *link = net_session_user(s);
	struct rg_link_service *svc = link->svc;
	const struct rg_link_ops *ops = svc->cfg.ops;
	ProtobufCAllocator *alloc = &link->arena.allocator;
	ProtobufCMessage *msg;
	void *token = NULL;
	uint32_t body;
	int rc;

	if (link->sealed) {
		rc = open_frame(link, frame, len, &frame, &len);
		if (rc < 0)
			return rc;
	}
	link->last_heard_ms = net_loop_now(net_session_loop(s));
	if (ops->decode_into) {
		alloc = ops->decode_into(link, svc->cfg.decode_limit, &token);
		if (!alloc)
			return -ENOMEM;
	}
	msg = protobuf_c_message_unpack(svc->cfg.in.desc, alloc, len, frame);
	if (!msg) {
		RG_WARN("%s link %s: malformed %s (%zu bytes), closing it", svc->cfg.peer_role,
			NET_SESSION_PEER(s), svc->cfg.in.desc->short_name, len);
		release(link, NULL, alloc, token);
		return -EBADMSG;
	}
	body = body_case(svc, msg);
	if (body != 0 && (body == svc->cfg.in.hello || body == svc->cfg.in.heartbeat ||
			  body == svc->cfg.in.challenge)) {
		rc = on_link_frame(link, msg, body);
		release(link, msg, alloc, token);
		return rc;
	}
	if (!link->up) {
		RG_WARN("%s link %s: message before %s, closing it", svc->cfg.peer_role,
			NET_SESSION_PEER(s), svc->cfg.side == RG_LINK_ACCEPTOR ? "Hello" : "HelloReply");
		release(link, msg, alloc, token);
		return -EPROTO;
	}
	link->frame = frame;
	link->frame_len = len;
	rc = ops->on_message(link, msg, token);
	link->frame = NULL;
	if (!ops->decode_into)
		rg_pb_arena_reset(&link->arena);
	return rc;
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	struct rg_link *link = net_session_user(s);
	struct rg_link_service *svc = link->svc;

	if (link->timer)
		net_timer_destroy(link->timer);
	link->timer = NULL;
	if (svc->cfg.side == RG_LINK_ACCEPTOR)
		admit_release(link);
	if (!link->up)
		rg_log(svc->cfg.side == RG_LINK_DIALER ? RG_LOG_INFO : RG_LOG_DEBUG,
		       "%s link %s closed before the handshake (%s)", svc->cfg.peer_role,
		       NET_SESSION_PEER(s), net_reason_str(reason));
	if (link->process_connected && svc->cfg.ops->on_down)
		svc->cfg.ops->on_down(link, link->up, reason);
	rg_pb_arena_fini(&link->arena);
	rg_link_seal_wipe(&link->seal);
	free(link->opened);
	link->opened = NULL;
}

static const struct net_session_ops link_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

/* ---- the service ---------------------------------------------------------- */

int rg_link_service_init(struct rg_link_service *svc, const struct rg_link_config *cfg)
{
	bool acceptor = cfg->side == RG_LINK_ACCEPTOR;
	const ProtobufCMessageDescriptor *hello = &ringgate__internal__hello__descriptor;
	const ProtobufCMessageDescriptor *reply = &ringgate__internal__hello_reply__descriptor;
	const struct rg_link_rules *r = &cfg->rules;

	memset(svc, 0, sizeof(*svc));
	if (!envelope_ok(&cfg->in, acceptor ? hello : reply, !acceptor, &svc->in_case_offset) ||
	    !envelope_ok(&cfg->out, acceptor ? reply : hello, acceptor, &svc->out_case_offset)) {
		RG_ERROR("%s links: the envelopes do not fit the link protocol", cfg->peer_role);
		return -EINVAL;
	}
	if (!r->heartbeat_ms || !r->handshake_ms || r->dead_ms <= r->heartbeat_ms) {
		RG_ERROR("%s links: heartbeat and handshake times must be > 0 and the dead time "
			 "longer than the heartbeat interval", cfg->peer_role);
		return -EINVAL;
	}
	if (!cfg->key || !cfg->ops || !cfg->ops->on_message ||
	    !cfg->ops->decode_into != !cfg->ops->decode_drop) {
		RG_ERROR("%s links: incomplete link configuration", cfg->peer_role);
		return -EINVAL;
	}
	if (!acceptor && (!cfg->instance || strlen(cfg->instance) > RG_LINK_INSTANCE_MAX)) {
		RG_ERROR("the instance name must be at most %d bytes", RG_LINK_INSTANCE_MAX);
		return -EINVAL;
	}
	if (acceptor && (cfg->pending_max < 1 || cfg->pending_max > PENDING_CAP_MAX ||
			 cfg->pending_per_addr < 1 || cfg->pending_per_addr > cfg->pending_max)) {
		RG_ERROR("%s links: pending links must be 1..%d, per address 1..that",
			 cfg->peer_role, PENDING_CAP_MAX);
		return -EINVAL;
	}
	if (acceptor) {
		svc->pending = calloc(cfg->pending_max, sizeof(svc->pending[0]));
		if (!svc->pending)
			return -ENOMEM;
	}
	pthread_mutex_init(&svc->lock, NULL);
	svc->cfg = *cfg; /* last: fini takes a set cfg.ops for "set up" */
	return 0;
}

void rg_link_service_fini(struct rg_link_service *svc)
{
	if (!svc->cfg.ops)
		return; /* zeroed, never set up */
	free(svc->pending);
	svc->pending = NULL;
	pthread_mutex_destroy(&svc->lock);
}

void rg_link_session_config(struct rg_link_service *svc, struct net_session_config *out)
{
	memset(out, 0, sizeof(*out));
	out->ops = &link_ops;
	out->service_user = svc;
	out->user_size = sizeof(struct rg_link) + svc->cfg.user_size;
	out->max_frame = svc->cfg.max_frame;
	out->backpressure = NET_BACKPRESSURE_PAUSE;
}

unsigned rg_link_server_max_sessions(const struct rg_link_service *svc)
{
	/* libnet counts a session until its socket is closed: links evicted
	 * or timed out in their handshake may still be closing, so leave
	 * them as much room again. */
	return svc->cfg.max_links ? svc->cfg.max_links + 2 * svc->cfg.pending_max : 0;
}

struct rg_link_rules rg_link_rules_of(const struct rg_link_options *o)
{
	return (struct rg_link_rules){ .heartbeat_ms = (uint32_t)o->heartbeat_ms,
				       .dead_ms = (uint32_t)o->dead_ms,
				       .handshake_ms = (uint32_t)o->handshake_ms,
				       .plain = !o->seal };
}

struct net_session *rg_link_session(const struct rg_link *link)
{
	return link->session;
}

bool rg_link_frame_has_nul(const struct rg_link *link)
{
	/* Scanned only when asked: not every link end cares (the gateway's
	 * does not), and the frames are every message of the cluster. */
	return link->frame &&
	       rg_pb_find_nul(link->svc->cfg.in.desc, link->frame, link->frame_len) != NULL;
}

uint32_t rg_link_peer_id(const struct rg_link *link)
{
	return link->up ? link->peer_id : 0;
}

void *rg_link_user(struct rg_link *link)
{
	return link->user;
}

void *rg_link_service_user(const struct rg_link *link)
{
	return link->svc->cfg.user;
}
