/*
 * pb_arena.c: bump allocation for protobuf-c decodes (see rg/pb_arena.h).
 *
 * Blocks are at least BLOCK_BYTES; a request larger than that gets a block
 * of its own. Pieces are 16-byte aligned (max_align_t on x86-64), which
 * covers every field type protobuf-c stores. Invariant: used <= limit.
 *
 * The budget allocator at the end is the malloc-backed sibling for
 * messages that change threads.
 */
#include "rg/pb_arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#define BLOCK_BYTES 4096u
#define PIECE_ALIGN ((size_t)alignof(max_align_t))

struct rg_pb_block {
	struct rg_pb_block *next;
	size_t size; /* bytes of data[] */
	size_t fill; /* bytes of data[] handed out */
	alignas(max_align_t) unsigned char data[];
};

static void *arena_alloc(void *ctx, size_t size)
{
	struct rg_pb_arena *a = ctx;
	struct rg_pb_block *b = a->blocks;
	size_t need = (size + PIECE_ALIGN - 1) & ~(PIECE_ALIGN - 1);
	void *p;

	if (need < size || need > a->limit - a->used)
		return NULL; /* over the cap: the unpack fails cleanly */
	if (!b || b->size - b->fill < need) {
		size_t data_size = need > BLOCK_BYTES ? need : BLOCK_BYTES;

		b = malloc(sizeof(*b) + data_size);
		if (!b)
			return NULL;
		b->size = data_size;
		b->fill = 0;
		b->next = a->blocks;
		a->blocks = b;
	}
	p = b->data + b->fill;
	b->fill += need;
	a->used += need;
	return p;
}

static void arena_free(void *ctx, void *p)
{
	/* Pieces are released together by rg_pb_arena_reset(). */
	(void)ctx;
	(void)p;
}

void rg_pb_arena_init(struct rg_pb_arena *arena, size_t limit)
{
	arena->allocator.alloc = arena_alloc;
	arena->allocator.free = arena_free;
	arena->allocator.allocator_data = arena;
	arena->limit = limit;
	arena->used = 0;
	arena->blocks = NULL;
}

void rg_pb_arena_reset(struct rg_pb_arena *arena)
{
	struct rg_pb_block *keep = NULL;
	struct rg_pb_block *b = arena->blocks;

	while (b) {
		struct rg_pb_block *next = b->next;

		/* Keep one standard block; oversized ones go back. */
		if (!keep && b->size == BLOCK_BYTES) {
			keep = b;
			keep->fill = 0;
			keep->next = NULL;
		} else {
			free(b);
		}
		b = next;
	}
	arena->blocks = keep;
	arena->used = 0;
}

void rg_pb_arena_fini(struct rg_pb_arena *arena)
{
	struct rg_pb_block *b = arena->blocks;

	while (b) {
		struct rg_pb_block *next = b->next;

		free(b);
		b = next;
	}
	arena->blocks = NULL;
	arena->used = 0;
}

static void *budget_alloc(void *ctx, size_t size)
{
	struct rg_pb_budget *b = ctx;

	if (size > b->limit - b->used)
		return NULL; /* over the cap: the unpack fails cleanly */
	b->used += size;
	return malloc(size);
}

static void budget_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

void rg_pb_budget_init(struct rg_pb_budget *budget, size_t limit)
{
	budget->allocator.alloc = budget_alloc;
	budget->allocator.free = budget_free;
	budget->allocator.allocator_data = budget;
	budget->limit = limit;
	budget->used = 0;
}

void rg_pb_drop_unknown(ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;

	msg->n_unknown_fields = 0;
	msg->unknown_fields = NULL;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		char *at = (char *)msg + f->offset;

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)((char *)msg + f->quantifier_offset);
			ProtobufCMessage **items = *(ProtobufCMessage ***)at;

			for (size_t k = 0; k < n; k++)
				rg_pb_drop_unknown(items[k]);
			continue;
		}
		/* A oneof member is only there when the case names it. */
		if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)((char *)msg + f->quantifier_offset) != f->id)
			continue;
		if (*(ProtobufCMessage **)at)
			rg_pb_drop_unknown(*(ProtobufCMessage **)at);
	}
}
