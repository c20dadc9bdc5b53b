/*
 * pb_arena.c: bump allocation for protobuf-c decodes (see rg/pb_arena.h).
 *
 * Blocks are at least BLOCK_BYTES; a request larger than that gets a block
 * of its own. Pieces are 16-byte aligned (max_align_t on x86-64), which
 * covers every field type protobuf-c stores. Invariant: used <= limit.
 *
 * The budget allocator is the malloc-backed sibling for messages that
 * change threads; rg_pb_find_nul, at the end, walks raw wire bytes.
 */
#include "rg/pb_arena.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Nesting deeper than this is not walked (ours is at most 4 deep). */
#define FIND_NUL_DEPTH_MAX 32

/* Read a varint at *at (< end) into *out; false when malformed. */
static bool read_varint(const uint8_t **at, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64 && *at < end; shift += 7) {
		uint8_t b = *(*at)++;

		v |= (uint64_t)(b & 0x7F) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

static const ProtobufCFieldDescriptor *find_nul(const ProtobufCMessageDescriptor *desc,
						const uint8_t *at, const uint8_t *end,
						unsigned depth)
{
	while (at < end) {
		const ProtobufCFieldDescriptor *f, *inner;
		uint64_t tag, n;

		if (!read_varint(&at, end, &tag))
			return NULL;
		switch (tag & 7) {
		case 0: /* varint */
			if (!read_varint(&at, end, &n))
				return NULL;
			continue;
		case 1: /* 64-bit */
			n = 8;
			break;
		case 5: /* 32-bit */
			n = 4;
			break;
		case 2: /* length-delimited */
			if (!read_varint(&at, end, &n) || n > (uint64_t)(end - at))
				return NULL;
			f = tag >> 3 <= UINT32_MAX
				    ? protobuf_c_message_descriptor_get_field(desc,
									      (unsigned)(tag >> 3))
				    : NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(at, '\0', (size_t)n))
				return f;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < FIND_NUL_DEPTH_MAX) {
				inner = find_nul(f->descriptor, at, at + n, depth + 1);
				if (inner)
					return inner;
			}
			break;
		default: /* groups (never ours) or garbage */
			return NULL;
		}
		if (n > (uint64_t)(end - at))
			return NULL;
		at += n;
	}
	return NULL;
}

const ProtobufCFieldDescriptor *rg_pb_find_nul(const ProtobufCMessageDescriptor *desc,
					       const uint8_t *data, size_t len)
{
	return find_nul(desc, data, data + len, 0);
}
