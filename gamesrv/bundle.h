/*
 * bundle.h: what each client sees of the world under interest management,
 * and the one WorldUpdate per client per tick that tells it (the hooks the
 * request handlers call, and the tick's output).
 *
 * Output rule (proto/client.proto WorldUpdate, docs/protocol.md "World
 * updates"): at each tick every client whose view changed gets one
 * WorldUpdate with everything since its previous one: the players that
 * left its view, those that entered (full state), the newest position of
 * each seen player that moved, and the chat lines of players it sees.
 *
 * Overload policy: entered and moved entries of one update are limited to
 * budget_bytes (an estimate of their encoded size, never less than one
 * entry). What does not fit stays pending in the view, coalesced: a mover
 * held back is sent later once, at its newest position. Left entries and
 * chat lines are never dropped: chat beyond GS_BUNDLE_CHAT_BYTES in one tick
 * waits, in order, for the next update, so that an update stays well
 * inside the 64 KiB a client accepts. Replies are not bundled (play.c
 * answers each request at once). Game thread only.
 */
#ifndef GAMESRV_BUNDLE_H
#define GAMESRV_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.pb-c.h"
#include "gate_link.h"
#include "interest.h"
#include "metrics.h"
#include "stream.h"
#include "world.h"

/* Chat bytes one WorldUpdate carries at most (at least one line); with the
 * largest budget (GS_BUNDLE_BUDGET_MAX) an update stays under 64 KiB unless
 * thousands of players leave one view in the same tick. */
#define GS_BUNDLE_CHAT_BYTES 16384
#define GS_BUNDLE_BUDGET_MAX 32768

struct gs_interest_config {
	bool enabled;              /* false: every push to the whole zone at
				      once (the broadcast of old, kept for
				      before/after benchmarks)              */
	float radius;              /* a player sees others within this       */
	float hysteresis;          /* ... until they are beyond radius + this */
	uint32_t budget_bytes;     /* entered + moved bytes per client per tick */
};

struct gs_bundle {
	struct gs_aoi aoi;
	uint32_t budget_bytes;
	struct gs_metrics *metrics;        /* set by the owner; NULL: none   */
	/* Scratch for building one WorldUpdate: entries and the pointer
	 * arrays protobuf-c wants, each with its capacity. */
	Ringgate__Client__PlayerState *states;
	Ringgate__Client__PlayerState **state_ptrs;
	size_t states_cap, state_ptrs_cap;
	Ringgate__Client__PlayerMoved *moved;
	Ringgate__Client__PlayerMoved **moved_ptrs;
	size_t moved_cap, moved_ptrs_cap;
	Ringgate__Client__ChatLine *chat;
	Ringgate__Client__ChatLine **chat_ptrs;
	size_t chat_cap, chat_ptrs_cap;
};

/* Set up for cfg (enabled). Returns 0 or -EINVAL (bad radius). */
int gs_bundle_init(struct gs_bundle *b, const struct gs_interest_config *cfg);

/* Free the grid, every view and the scratch. */
void gs_bundle_fini(struct gs_bundle *b);

/* An ONLINE player without an entity enters the grid (login, or taken back
 * while leaving). Returns 0 or -ENOMEM. */
int gs_bundle_player_online(struct gs_bundle *b, struct gs_player *p);

/* p leaves the game: those who see it get it in `left` at the next tick. */
void gs_bundle_player_offline(struct gs_bundle *b, struct gs_player *p);

/* p moved (gs_world_player_move/set_zone done). Returns 0 or -ENOMEM (the
 * grid could not follow: the caller should undo the move). */
int gs_bundle_player_moved(struct gs_bundle *b, struct gs_player *p);

/* Queue a chat line of p for every player in its view. Returns the
 * number of recipients or -ENOMEM. */
int gs_bundle_chat(struct gs_player *p, const char *text);

/*
 * The view of p for its LoginReply: start p's view afresh and fill
 * states[0..max) with the players it sees now (the rest arrive as entered
 * in the next updates). The states point into the players (valid until
 * they change). Returns how many.
 */
size_t gs_bundle_login_view(struct gs_bundle *b, struct gs_player *p,
			 Ringgate__Client__PlayerState *states /* OUT */,
			 Ringgate__Client__PlayerState **ptrs /* OUT */, size_t max);

/* Fill a PlayerState from p (the strings point into p). */
void gs_bundle_fill_state(Ringgate__Client__PlayerState *st, const struct gs_player *p);

/* p leaves for another shard: send it (a message of its session, numbered
 * before the session moves on) one WorldUpdate with everyone it sees in
 * `left`, and empty its view (chat lines not yet sent to it are dropped),
 * so that the other shard's view starts from
 * nothing and a refused handoff shows p its surroundings again as
 * `entered`. Returns 0, -ENOMEM (nothing sent, the view kept) or the
 * send's error (the view emptied all the same). */
int gs_bundle_view_clear(struct gs_bundle *b, struct gs_player *p, struct gs_streams *out);

/* The tick's output: one WorldUpdate to every online client whose view
 * changed, as a message of its player's session (gs_stream_send). */
void gs_bundle_tick(struct gs_bundle *b, struct gs_world *w, struct gs_streams *out);

#endif /* GAMESRV_BUNDLE_H */
