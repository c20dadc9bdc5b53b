/*
 * rg/pb_arena.h: a bounded protobuf-c allocator for decoding peer input.
 *
 * protobuf_c_message_unpack() allocates the decoded tree piece by piece.
 * Given an arena, every piece comes from the arena's blocks, the total is
 * capped (a hostile frame cannot make one decode take more than `limit`
 * bytes: the unpack fails and returns NULL instead), and the whole tree is
 * freed at once with rg_pb_arena_reset() - never with
 * protobuf_c_message_free_unpacked().
 *
 * Usage, per frame:
 *     msg = foo__unpack(&arena.allocator, len, body);
 *     if (!msg) -> malformed or too big: error + disconnect
 *     ... use msg ...
 *     rg_pb_arena_reset(&arena);
 * One arena per thread (not thread-safe); it keeps one block between
 * decodes so the common case does not call malloc.
 */
#ifndef RG_PB_ARENA_H
#define RG_PB_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

struct rg_pb_block;

struct rg_pb_arena {
	ProtobufCAllocator allocator; /* pass &arena.allocator to *_unpack */
	size_t limit;                 /* bytes a decode may take in total  */
	size_t used;                  /* bytes handed out since the reset  */
	struct rg_pb_block *blocks;   /* newest first                      */
};

/* Set up an empty arena allowing at most limit bytes per decode. */
void rg_pb_arena_init(struct rg_pb_arena *arena, size_t limit);

/* Free everything decoded since the last reset (keeps one block for reuse). */
void rg_pb_arena_reset(struct rg_pb_arena *arena);

/* Free every block; the arena may be initialised again. */
void rg_pb_arena_fini(struct rg_pb_arena *arena);

/*
 * Forget the unknown fields of msg and of every message inside it, so that
 * re-encoding it (to forward a peer's message) sends only fields of our
 * own contract. protobuf-c keeps unknown fields, including ones it should
 * have refused (field number 0), and packs them back out as given: a
 * forwarded message could then fail to decode at the next hop. For
 * arena-decoded messages: the memory stays with the arena.
 */
void rg_pb_drop_unknown(ProtobufCMessage *msg);

/*
 * The first string field - of the message whose wire bytes are data[0..len),
 * or of any message inside it - whose value holds a NUL byte; NULL when
 * none does, and also when the bytes are malformed (the unpack then refuses
 * them itself). protobuf-c hands a string over NUL-terminated with no
 * length, so such a value would read as its prefix ("bob\0x" as "bob") and
 * be re-encoded cut short: call this on peer input and refuse what it
 * names. Fields the descriptor does not know are skipped. Any thread.
 */
const ProtobufCFieldDescriptor *rg_pb_find_nul(const ProtobufCMessageDescriptor *desc,
					       const uint8_t *data, size_t len);

/*
 * A budget: the bounded allocator for a decoded message that must outlive
 * the decoding thread's turn (it is handed to another thread through a
 * queue, so an arena reset per frame does not fit). Pieces come from
 * malloc, their total per decode is capped at `limit`, and the tree is
 * freed with protobuf_c_message_free_unpacked(msg, &budget.allocator) by
 * whichever thread owns it then. The budget must stay at the same address
 * until that free (embed it in the object that carries the message).
 */
struct rg_pb_budget {
	ProtobufCAllocator allocator; /* pass &budget.allocator to unpack/free */
	size_t limit;
	size_t used;
};

/* Set up a budget allowing at most limit bytes for one decode. */
void rg_pb_budget_init(struct rg_pb_budget *budget, size_t limit);

#endif /* RG_PB_ARENA_H */
