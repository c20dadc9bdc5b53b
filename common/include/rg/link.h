/*
 * rg/link.h: one end of an internal link (gateway -> gamesrv, gamesrv ->
 * dbproxy), dialing or accepting. Every link end of every process is this
 * module; a process adds only the handling of its own messages.
 *
 * The module owns a link's handshake (rg/link_auth.h, in the process's
 * own envelopes), its heartbeats, the dead-peer rule, the handshake
 * deadline, the pre-authentication limits and the decode of every frame.
 * One rule set, the same on both ends:
 *
 *   1. Handshake. The acceptor sends AuthChallenge at connect; the dialer
 *      answers Hello(role, instance, nonce, proof); the acceptor checks it
 *      and answers HelloReply(role, proof); the dialer checks that. Each
 *      end insists on its peer's role. With an insecure key
 *      (--insecure-no-auth) there is no challenge, Hello goes out at
 *      connect and no proof is checked.
 *   2. Handshake deadline. A link that is not authenticated handshake_ms
 *      after it connected is closed: the acceptor needs a good Hello, the
 *      dialer a good HelloReply, in that time.
 *   3. Before authentication only handshake frames are legal: any other
 *      body (a Heartbeat too) closes the link, and so does a frame header
 *      announcing more than RG_LINK_PREAUTH_MAX_FRAME bytes (libnet
 *      refuses it on arrival, before buffering any of it). Once
 *      authenticated the link's own max_frame applies.
 *   4. Heartbeats. Once authenticated each end sends Heartbeat every
 *      heartbeat_ms, from the link's timer (never from a send callback).
 *   5. Dead peer. A link from which nothing (any frame) arrived for
 *      dead_ms is closed; the dialing side then redials (libnet).
 *   6. Admission (acceptors). At most pending_max links may be in their
 *      handshake at once, and pending_per_addr from one peer address; a
 *      newcomer over either cap evicts the oldest pending link (of its
 *      own address when that is the cap it hit, else of the address
 *      holding the most pending links). Authenticated links are counted
 *      apart (max_links), so peers that never authenticate cannot use up
 *      the slots of ones that do: a new peer always gets to try its
 *      handshake, and keeps its place for as long as the handshake takes
 *      unless that many newer peers arrive first.
 *   7. Sealing. Once up, every frame either way is sealed
 *      (rg/link_seal.h: keys per direction from the handshake and the
 *      cluster secret, XChaCha20-Poly1305 with a counter nonce), whichever
 *      thread or function sent it; a frame that does not open (altered,
 *      replayed, reordered, injected) closes the link with a log line
 *      before any of it is decoded. The handshake frames themselves are
 *      plain (they carry nonces, proofs, roles and the instance name, no
 *      secret) and are bound into the keys. Off only with plain rules
 *      (--link-seal=off, for benchmarks on loopback) or an insecure key.
 *
 * The link states (struct rg_link, on the session's loop thread):
 *
 *   connected --handshake frames--> up --(closed: any reason)--> down
 *       |                                   on_up ran: on_down(was_up)
 *       +--bad proof, wrong role, other frame, too big a frame,
 *          handshake deadline, evicted, dead--> down (on_down, !was_up)
 *
 * Threads: a struct rg_link_service is set up by main and then shared by
 * the loops (its admission table has a lock); a struct rg_link lives in
 * its session's user area and is touched only on that session's loop.
 */
#ifndef RG_LINK_H
#define RG_LINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <net/net.h>
#include <protobuf-c/protobuf-c.h>

#include "rg/link_auth.h"
#include "rg/options.h"
#include "rg/pb_arena.h"

/* Largest frame body before authentication: AuthChallenge, Hello (with an
 * instance name of up to RG_LINK_INSTANCE_MAX bytes) and HelloReply fit. */
#define RG_LINK_PREAUTH_MAX_FRAME 512

/* Longest instance name a dialer may send in Hello, in bytes. */
#define RG_LINK_INSTANCE_MAX 256

enum rg_link_side { RG_LINK_DIALER, RG_LINK_ACCEPTOR };

/* The rules of a link: timing (rules 2, 4, 5 above, in milliseconds) and
 * sealing (rule 7). Zeroed means sealed: plain must be asked for. */
struct rg_link_rules {
	uint32_t heartbeat_ms;     /* Heartbeat out every interval, once up   */
	uint32_t dead_ms;          /* nothing heard this long: close           */
	uint32_t handshake_ms;     /* not authenticated this long: close       */
	bool plain;                /* frames NOT sealed (--link-seal=off)      */
};

/* The rules of the settings an options table read (rg/options.h). */
struct rg_link_rules rg_link_rules_of(const struct rg_link_options *o);

/*
 * One direction's envelope of a link type (GateToGame, DbToGame, ...): its
 * descriptor and the numbers of the fields of its "body" oneof that carry
 * the handshake and heartbeat messages, 0 where the envelope has none
 * (only an acceptor's outgoing envelope carries AuthChallenge).
 */
struct rg_link_envelope {
	const ProtobufCMessageDescriptor *desc;
	uint32_t hello;            /* Hello (dialer -> acceptor) or HelloReply */
	uint32_t heartbeat;
	uint32_t challenge;        /* AuthChallenge, acceptor -> dialer; or 0 */
};

/* The envelopes of the two link types of proto/internal.proto, both ends
 * of each declared here once. */
extern const struct rg_link_envelope rg_link_gate_to_game; /* gateway -> gamesrv */
extern const struct rg_link_envelope rg_link_game_to_gate; /* gamesrv -> gateway */
extern const struct rg_link_envelope rg_link_game_to_db;   /* gamesrv -> dbproxy */
extern const struct rg_link_envelope rg_link_db_to_game;   /* dbproxy -> gamesrv */

struct rg_link;

/* What a process does with its links. Every hook runs on the link's loop
 * thread; a negative return from one that returns int closes the link. */
struct rg_link_ops {
	/* Optional. The link connected (before any frame): set up the
	 * process's area (rg_link_user, zeroed). */
	int (*on_connected)(struct rg_link *link);

	/* Optional. The handshake succeeded; heartbeats start now. */
	int (*on_up)(struct rg_link *link);

	/*
	 * One of the process's own messages arrived on an up link (never a
	 * handshake frame or a Heartbeat: the module handles those). msg is
	 * the decoded envelope. Without decode_into it lives in the link's
	 * arena until on_message returns; with decode_into, token (and msg,
	 * which it owns) now belongs to the process.
	 */
	int (*on_message)(struct rg_link *link, ProtobufCMessage *msg, void *token);

	/* Optional. The link ended (the session's on_disconnected); was_up
	 * says whether on_up ran. The process's area is freed after this. */
	void (*on_down)(struct rg_link *link, bool was_up, enum net_reason reason);

	/*
	 * Optional: decode each frame with the allocator this returns (NULL:
	 * no memory, which closes the link), which should allow at most
	 * limit (cfg.decode_limit) bytes, and hand the message to on_message
	 * with *token, for a message that must outlive the frame (it crosses
	 * to another thread). Without it, frames are decoded into the link's
	 * bounded arena (decode_limit bytes).
	 */
	ProtobufCAllocator *(*decode_into)(struct rg_link *link, size_t limit,
					   void **token /* OUT */);

	/* With decode_into: the frame was not handed on (handshake, heartbeat,
	 * malformed, refused); the module has freed the message, if any, and
	 * the process frees token. */
	void (*decode_drop)(struct rg_link *link, void *token);
};

/* What one link service (a server or a client of one link type) is. */
struct rg_link_config {
	enum rg_link_side side;
	const char *role;          /* ours: "gateway", "gamesrv", "dbproxy"    */
	const char *peer_role;     /* the role the peer must prove             */
	const char *instance;      /* dialer: sent in Hello, for the peer's logs */
	/* Our cluster id, sent in the handshake (0: none): a dialer's
	 * Hello.gateway_id, an acceptor's HelloReply.shard. */
	uint32_t id;
	const struct rg_link_key *key; /* the cluster secret; outlives the service */
	struct rg_link_rules rules;
	struct rg_link_envelope in;    /* what the peer sends                  */
	struct rg_link_envelope out;   /* what we send                         */
	size_t max_frame;          /* largest frame body once authenticated    */
	size_t decode_limit;       /* bytes one decode may take (the arena)    */
	size_t user_size;          /* bytes of the process's area per link     */
	const struct rg_link_ops *ops;
	void *user;                /* rg_link_service_user() returns it        */
	/* Acceptors only (0 = no limit for max_links; the pending caps must be
	 * at least 1): */
	unsigned max_links;        /* authenticated links at once              */
	unsigned pending_max;      /* links in their handshake at once         */
	unsigned pending_per_addr; /* ... from one peer address                */
};

struct rg_link_pending;

/* A link service: embed it in the process's service object. */
struct rg_link_service {
	struct rg_link_config cfg;
	pthread_mutex_t lock;      /* guards the admission fields below        */
	struct rg_link_pending *pending; /* cfg.pending_max slots, oldest first */
	unsigned pending_len;
	unsigned up_links;         /* authenticated links now (acceptor)       */
	uint64_t evicted;          /* pending links evicted, all time          */
	uint64_t evicted_logged;   /* ... as of the last log line              */
	uint64_t evicted_log_ms;   /* when that line was written               */
	/* Found by rg_link_service_init from the envelopes: */
	size_t in_case_offset;     /* the body oneof's case in a decoded msg   */
	size_t out_case_offset;
};

/*
 * Check cfg and set up svc (which must then stay at its address while any
 * of its links exists). Returns 0, -EINVAL (a rule of 0 ms, dead_ms not
 * above heartbeat_ms, an envelope field that is not the expected message,
 * pending caps of 0 on an acceptor, an instance name longer than
 * RG_LINK_INSTANCE_MAX; each is logged) or -ENOMEM. Main thread.
 */
int rg_link_service_init(struct rg_link_service *svc, const struct rg_link_config *cfg);

/* Free svc once its runtime has stopped (no link can exist). Harmless on
 * a zeroed svc, or one whose init failed. */
void rg_link_service_fini(struct rg_link_service *svc);

/*
 * Fill in the session part of a net_server_config or net_client_config
 * (ops, user area, max_frame, PAUSE backpressure: a peer server is slowed
 * down, never cut off for being slow). Main thread.
 */
void rg_link_session_config(struct rg_link_service *svc, struct net_session_config *out /* OUT */);

/* For an acceptor's net_server_config: the max_sessions libnet should
 * enforce, authenticated links plus pending ones plus as many again for
 * sessions still closing (0, no limit, when max_links is 0). */
unsigned rg_link_server_max_sessions(const struct rg_link_service *svc);

/* ---- per link (its loop thread) ------------------------------------------ */

/* The session of a link. */
struct net_session *rg_link_session(const struct rg_link *link);

/*
 * From on_message: whether a string field of the frame being handled holds
 * a NUL byte. Decoded, such a string reads as its prefix ("bob\0x" as bob),
 * so each process refuses the message (docs/protocol.md) instead.
 */
bool rg_link_frame_has_nul(const struct rg_link *link);

/* The id the peer sent in its handshake (Hello.gateway_id for an
 * acceptor, HelloReply.shard for a dialer; the peer's cfg.id); 0 when it
 * sent none or the link is not up yet. */
uint32_t rg_link_peer_id(const struct rg_link *link);

/* The process's area of a link (cfg.user_size bytes, zeroed at connect). */
void *rg_link_user(struct rg_link *link);

/* The cfg.user of the link's service. */
void *rg_link_service_user(const struct rg_link *link);

/* Pack m (the link's outgoing envelope) straight into the session's send
 * queue as one frame, sealed there once the link is up. Returns 0 or a
 * negative errno. Loop thread. (Other threads use net_send_to with the
 * link's session id: libnet queues the frame on the loop thread through
 * this module's sealer.) */
int rg_link_send(struct rg_link *link, const ProtobufCMessage *m);

#endif /* RG_LINK_H */
