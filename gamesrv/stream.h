/*
 * stream.h: each player's login session as a numbered stream of messages,
 * kept for a resume after a dropped connection (docs/protocol.md section
 * 10). Game thread only.
 *
 * Every message the game sends a logged-in player goes through here: it
 * gets the next msg_no of the player's session, a packed copy of it is
 * kept, and it goes to the player's connection unless the player is
 * detached (its connection gone, waiting for a resume). The copies are
 * bounded per session and in total; past either bound the oldest copies
 * go first (a global list in send order, so the oldest of all is also the
 * oldest of its session).
 *
 * A session's life (struct gs_stream, inside struct gs_player):
 *
 *   (off) --gs_stream_start (login)--> attached --gs_stream_detach (gone)--> detached
 *     ^                               ^  |                               |
 *     |                               |  +-- gs_stream_attach (resume) -----+
 *     +---- gs_stream_end (leaves the game: logout, grace over, drain) -----+
 *
 * gs_stream_start again (a newer login of the account) starts a new session:
 * numbers from 1, nothing kept, a new session id. The session id (random,
 * 128 bits) is what a resume token names; gs_stream_attach replaces it, so
 * a token works once, and a newer login replaces it too.
 *
 * Resume tokens (at most GS_STREAM_TOKEN_MAX bytes, opaque to clients):
 *
 *   version (1: 2) | shard (2, LE) | player_id (8, LE) | session id (16) |
 *   expires_ms (8, LE, wall clock) | name length (1) | name | MAC (32)
 *
 * The shard (the one that made it, which holds the session) is where the
 * gateway sends a resume: bytes 1..2, read without the key
 * (docs/protocol.md section 11). Another shard refuses the token.
 *
 *   MAC = HMAC-SHA512-256(resume key, everything before it)
 *   resume key = keyed BLAKE2b-256(key = the link key, "ringgate-resume-v1")
 *
 * The link key is the cluster secret's hash (rg/link_auth.h), so any
 * process holding the secret could check a token; without a secret
 * (--insecure-no-auth) the key is random, good for this process only.
 */
#ifndef GAMESRV_STREAM_H
#define GAMESRV_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GS_STREAM_SESSION_ID_BYTES 16
#define GS_STREAM_TOKEN_MAX 128

/* Declared only, so that world.h (which holds a struct gs_stream in each
 * player) needs neither protobuf-c nor the links. */
struct gs_gate_out;
struct gs_metrics;
struct gs_player;
struct rg_link_key;
struct stream_rec;
struct Ringgate__Client__ResumeToken;
struct Ringgate__Client__ServerMessage;

struct gs_stream_config {
	uint32_t grace_ms;         /* a detached player waits this long; 0: off */
	size_t session_bytes;      /* kept per session, at most                 */
	size_t total_bytes;        /* kept in all, at most                      */
	uint32_t token_ttl_ms;     /* a token's life; a fresh one at half of it */
	uint32_t shard;            /* this shard, named in tokens (0: 1)        */
};

/* One player's session. Zero (as calloc leaves it) is "no session". */
struct gs_stream {
	uint64_t next_no;          /* msg_no of the next message; 0: none     */
	uint64_t kept_from;        /* the oldest msg_no still kept (next_no
				      when nothing is)                      */
	uint64_t login_no;         /* which login session (never 0 once one
				      started; a resume keeps it)           */
	struct stream_rec *head, *tail; /* kept messages, oldest first        */
	size_t bytes;              /* what they take                          */
	uint8_t session_id[GS_STREAM_SESSION_ID_BYTES];
	uint64_t token_renew_ms;   /* rg_now_ms(): send a fresh token after   */
	bool detached;             /* the connection is gone: keep, not send  */
	uint64_t grace_until_ms;   /* detached: rg_now_ms() when it leaves    */
	struct gs_stream *grace_prev, *grace_next; /* detached, by grace_until */
};

struct gs_streams {
	struct gs_stream_config cfg;
	struct gs_gate_out *out;
	unsigned char key[32];     /* the resume key                          */
	struct stream_rec *oldest, *newest; /* every kept message, in order  */
	size_t total_bytes;
	struct gs_stream *grace_head, *grace_tail; /* detached, soonest first  */
	uint64_t logins;           /* login_no of the newest session          */
	size_t detached_count;     /* streams on the grace list               */
	struct gs_metrics *metrics;/* set by the owner; NULL: none            */
};

/* What a good token says. */
struct gs_stream_claim {
	uint64_t player_id;
	uint8_t session_id[GS_STREAM_SESSION_ID_BYTES];
	char name[33];
	uint32_t shard;            /* the shard that made it */
};

/* Set up (cfg copied; grace_ms 0 turns resume off). Sends go through out.
 * link_key is the process's (insecure: a random resume key). Returns 0 or
 * -EIO when libsodium cannot start. */
int gs_streams_init(struct gs_streams *s, const struct gs_stream_config *cfg,
		 const struct rg_link_key *link_key, struct gs_gate_out *out);

/* Free every kept message (the players may be gone already: after
 * gs_world_fini). */
void gs_streams_fini(struct gs_streams *s);

/* True when resume is on. */
bool gs_streams_on(const struct gs_streams *s);

/* A new login session for p (bound to a client): numbering from 1,
 * nothing kept, a new session id; a previous session is ended first. */
void gs_stream_start(struct gs_streams *s, struct gs_player *p);

/* End p's session: drop what is kept, leave the grace list. */
void gs_stream_end(struct gs_streams *s, struct gs_player *p);

/* As gs_stream_start, but numbering from next_no (a session handed over
 * from another shard, which numbered up to next_no - 1; 0 or 1: from 1). */
void gs_stream_continue(struct gs_streams *s, struct gs_player *p, uint64_t next_no);

/* Send p's connection a fresh token now (a ResumeToken push, msg_no 0:
 * never replayed); nothing when resume is off or p is detached. */
void gs_stream_push_token(struct gs_streams *s, struct gs_player *p);

/*
 * Send msg (seq already set) to p's connection: number it, keep a copy,
 * and send it unless p is detached. request_id is the gateway's id of the
 * request it answers (0: a push); resumed marks an answer to a request of
 * an earlier connection (ToClient.resumed). msg->msg_no is left set.
 * With resume off it just goes out. Returns 0 or a negative errno (not
 * sent; it is kept all the same).
 */
int gs_stream_send(struct gs_streams *s, struct gs_player *p, uint64_t request_id, bool resumed,
		struct Ringgate__Client__ServerMessage *msg);

/*
 * For a push to many players: number msg for p and keep a copy (msg_no
 * put back to 0 after). Returns the number (0: resume off), which the
 * caller sends in ToClient.msg_nos when p is not detached.
 */
uint64_t gs_stream_keep(struct gs_streams *s, struct gs_player *p,
		     struct Ringgate__Client__ServerMessage *msg);

/* The connection went: keep p in the world until grace_ms from now. */
void gs_stream_detach(struct gs_streams *s, struct gs_player *p, uint64_t now_ms);

/* A detached player whose grace period is over (the caller ends its
 * session, taking it off the list), or NULL. */
struct gs_player *gs_stream_grace_due(struct gs_streams *s, uint64_t now_ms);

/* Fill tok with a token for p's session (and its grace_ms); token_buf
 * (GS_STREAM_TOKEN_MAX bytes) holds its bytes. */
void gs_stream_token(struct gs_streams *s, struct gs_player *p, struct Ringgate__Client__ResumeToken *tok,
		  uint8_t *token_buf);

/* Check a token: 0 and *claim filled, -EBADMSG (not one of ours: size,
 * version, MAC, name), -EXDEV (another shard's: *claim filled) or -ETIME
 * (expired). */
int gs_stream_token_check(const struct gs_streams *s, const uint8_t *token, size_t len,
		       struct gs_stream_claim *claim /* OUT */);

/* True when claim names p's current session. */
bool gs_stream_is_session(const struct gs_player *p, const struct gs_stream_claim *claim);

/* The number of kept messages after last_received, or -ERANGE when some
 * are no longer kept (-EINVAL: last_received is 0, or beyond anything
 * sent). */
long gs_stream_replay_count(const struct gs_player *p, uint64_t last_received);

/* p resumed on its (new) client: off the grace list, a new session id. */
void gs_stream_attach(struct gs_streams *s, struct gs_player *p);

/* Send p's new client every kept message after last_received, as
 * resumed pushes, in order. Returns how many, or a negative errno (a
 * decode or send failed: the rest is not sent). */
long gs_stream_replay(struct gs_streams *s, struct gs_player *p, uint64_t last_received);

#endif /* GAMESRV_STREAM_H */
