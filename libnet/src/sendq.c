/*
 * The send queue of a session and its allocator.
 *
 * Queued bytes live in a FIFO of chunks (struct net__chunk): sends append
 * at the tail, a send completion drops bytes from the head, and one SEND
 * gathers the chunks into the iovec of a send block. Standard 16 KiB chunks
 * come from a small per-loop cache; a send larger than that gets a chunk of
 * its own size. Send blocks (the iovec of the one SEND in flight) come from
 * a per-loop free list, so an idle session holds neither.
 *
 * Invariants: sq_bytes is the sum of (end - start) over the chunks; bytes
 * of the head chunks may be in flight and are never moved; every chunk
 * holds less than 4 GiB (its counters are 32 bits, net__sq_reserve's
 * callers refuse longer sends).
 */
#include "internal.h"

#include <stdlib.h>

static struct net__chunk *chunk_alloc(struct net_loop *loop, size_t need)
{
	struct net__chunk *c;

	if (need <= NET__CHUNK_SIZE && loop->free_chunks) {
		c = loop->free_chunks;
		loop->free_chunks = c->next;
		loop->free_chunk_count--;
	} else {
		size_t cap = need <= NET__CHUNK_SIZE ? NET__CHUNK_SIZE : need;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = (uint32_t)cap;
	}
	c->next = NULL;
	c->start = c->end = 0;
	return c;
}

/* Keep a few standard chunks per loop; the rest go back to malloc, so a
 * burst does not pin memory forever. */
#define NET__FREE_CHUNKS_MAX 256

static void chunk_free(struct net_loop *loop, struct net__chunk *c)
{
	if (c->cap == NET__CHUNK_SIZE && loop->free_chunk_count < NET__FREE_CHUNKS_MAX) {
		c->next = loop->free_chunks;
		loop->free_chunks = c;
		loop->free_chunk_count++;
		return;
	}
	free(c);
}

void net__sq_free(struct net_session *s)
{
	while (s->sq_head) {
		struct net__chunk *c = s->sq_head;

		s->sq_head = c->next;
		chunk_free(s->loop, c);
	}
	s->sq_tail = NULL;
	s->sq_bytes = 0;
}

/*
 * Room for `need` contiguous bytes at the tail of the send queue. Bytes
 * already in the tail chunk may be in flight: we only ever append after
 * them, never move them.
 */
uint8_t *net__sq_reserve(struct net_session *s, size_t need)
{
	struct net__chunk *c = s->sq_tail;

	if (!c || c->cap - c->end < need) {
		c = chunk_alloc(s->loop, need);
		if (!c)
			return NULL;
		if (s->sq_tail)
			s->sq_tail->next = c;
		else
			s->sq_head = c;
		s->sq_tail = c;
	}
	c->end += (uint32_t)need;
	s->sq_bytes += need;
	NET__COUNT_MAX(s->loop, send_queue_high_water, s->sq_bytes);
	return c->data + c->end - need;
}

/* Point iov[0..max) at the queued bytes, oldest first; returns how many. */
unsigned net__sq_gather(const struct net_session *s, struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (struct net__chunk *c = s->sq_head; c && n < max; c = c->next) {
		if (c->end == c->start)
			continue;
		iov[n].iov_base = c->data + c->start;
		iov[n].iov_len = c->end - c->start;
		n++;
	}
	return n;
}

/* `sent` bytes from the head of the queue went to the kernel: drop them. */
void net__sq_consume(struct net_session *s, size_t sent)
{
	s->sq_bytes -= sent;
	while (sent) {
		struct net__chunk *c = s->sq_head;
		size_t n = c->end - c->start;

		if (n > sent)
			n = sent;
		c->start += (uint32_t)n;
		sent -= n;
		if (c->start == c->end) {
			s->sq_head = c->next;
			if (!s->sq_head)
				s->sq_tail = NULL;
			chunk_free(s->loop, c);
		}
	}
}

/* The loop's caches of chunks and send blocks (runtime destroy). */
void net__sq_loop_free(struct net_loop *loop)
{
	while (loop->free_send_blocks) {
		struct net__send_block *b = loop->free_send_blocks;

		loop->free_send_blocks = b->next;
		free(b);
	}
	while (loop->free_chunks) {
		struct net__chunk *c = loop->free_chunks;

		loop->free_chunks = c->next;
		free(c);
	}
}

struct net__send_block *net__send_block_get(struct net_loop *loop)
{
	struct net__send_block *b = loop->free_send_blocks;

	if (b) {
		loop->free_send_blocks = b->next;
		return b;
	}
	return malloc(sizeof(*b));
}

/* A send's buffers go back to the loop once it completes. */
void net__send_block_put(struct net_loop *loop, struct net__op *op)
{
	struct net__send_block *b = NET__CONTAINER_OF(op->iov, struct net__send_block, iov);

	b->next = loop->free_send_blocks;
	loop->free_send_blocks = b;
	op->iov = NULL;
}
