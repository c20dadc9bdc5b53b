/*
 * The send queue of a session and its allocator, and the shared buffers
 * (struct net_buf) that many sessions' queues can hold by reference.
 *
 * Queued bytes live in a FIFO of chunks (struct net__chunk): sends append
 * at the tail, a send completion drops bytes from the head, and one SEND
 * gathers the chunks into the iovec of a send block (net__sq_gather: the
 * one place where queued bytes are handed on to the engine).
 *
 * Memory held is close to the bytes queued: chunks come in size classes
 * from 256 B to 16 KiB (header included), a new chunk is sized for the
 * queue it joins (the larger of the send and the bytes already queued,
 * so a growing queue takes geometrically larger chunks), and a send larger
 * than 16 KiB gets a chunk of its own size. A shared buffer costs each
 * session a bare chunk header that points at it, never a copy. Each class
 * has a small per-loop cache (NET__CLS_CACHE_BYTES), so a steady stream
 * of sends and broadcasts does not call malloc, and a burst does not pin
 * memory forever. Send blocks (the iovec of the one SEND in flight) come
 * from a per-loop free list, so an idle session holds neither.
 *
 * Invariants: sq_bytes is the sum of (end - start) over the chunks; bytes
 * of the head chunks may be in flight and are never moved; every chunk
 * holds less than 4 GiB (its counters are 32 bits, net__sq_reserve's
 * callers refuse longer sends); a chunk with buf set holds one reference
 * to it, dropped when the chunk is freed.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Bytes a class-k chunk takes from malloc, header included. */
static size_t cls_size(unsigned k)
{
	return k == 0 ? sizeof(struct net__chunk) : (size_t)128 << k;
}

/* Bytes a class-k chunk holds. */
static size_t cls_cap(unsigned k)
{
	return cls_size(k) - sizeof(struct net__chunk);
}

/* Each class keeps at most this many bytes of free chunks per loop. */
#define NET__CLS_CACHE_BYTES (256 * 1024)

static struct net__chunk *chunk_alloc(struct net_loop *loop, unsigned cls, size_t cap)
{
	struct net__chunk *c = cls == NET__CLS_NONE ? NULL : loop->free_chunks[cls];

	if (c) {
		loop->free_chunks[cls] = c->next;
		loop->free_chunk_count[cls]--;
	} else {
		c = malloc(cls == NET__CLS_NONE ? sizeof(*c) + cap : cls_size(cls));
		if (!c)
			return NULL;
		c->cls = (uint8_t)cls;
		c->cap = (uint32_t)(cls == NET__CLS_NONE ? cap : cls_cap(cls));
	}
	c->next = NULL;
	c->buf = NULL;
	c->start = c->end = 0;
	return c;
}

static void chunk_free(struct net_loop *loop, struct net__chunk *c)
{
	if (c->buf)
		net_buf_unref(c->buf);
	if (c->cls != NET__CLS_NONE &&
	    loop->free_chunk_count[c->cls] < NET__CLS_CACHE_BYTES / cls_size(c->cls)) {
		c->next = loop->free_chunks[c->cls];
		loop->free_chunks[c->cls] = c;
		loop->free_chunk_count[c->cls]++;
		return;
	}
	free(c);
}

/* A chunk for `need` bytes at the tail of s's queue: the smallest class
 * that holds max(need, bytes queued), at most the largest class unless the
 * send itself needs more. */
static struct net__chunk *chunk_for(struct net_session *s, size_t need)
{
	size_t want = need > s->sq_bytes ? need : s->sq_bytes;
	unsigned k = 1;

	while (k < NET__CLS_COUNT - 1 && cls_cap(k) < want)
		k++;
	if (need > cls_cap(k))
		return chunk_alloc(s->loop, NET__CLS_NONE, need);
	return chunk_alloc(s->loop, k, 0);
}

static void sq_link(struct net_session *s, struct net__chunk *c)
{
	if (s->sq_tail)
		s->sq_tail->next = c;
	else
		s->sq_head = c;
	s->sq_tail = c;
}

static void sq_count(struct net_session *s, size_t added)
{
	s->sq_bytes += added;
	NET__COUNT_MAX(s->loop, send_queue_high_water, s->sq_bytes);
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

	/* A shared buffer's chunk is never written to: its cap is 0. */
	if (!c || c->buf || c->cap - c->end < need) {
		c = chunk_for(s, need);
		if (!c)
			return NULL;
		sq_link(s, c);
	}
	c->end += (uint32_t)need;
	sq_count(s, need);
	return c->data + c->end - need;
}

int net__sq_append_ref(struct net_session *s, struct net_buf *b, uint32_t start, uint32_t len)
{
	struct net__chunk *c = chunk_alloc(s->loop, 0, 0);

	if (!c)
		return -ENOMEM;
	net_buf_ref(b);
	c->buf = b;
	c->start = start;
	c->end = start + len;
	sq_link(s, c);
	sq_count(s, len);
	return 0;
}

/* Point iov[0..max) at the queued bytes, oldest first; returns how many. */
unsigned net__sq_gather(const struct net_session *s, struct iovec *iov, unsigned max)
{
	unsigned n = 0;

	for (struct net__chunk *c = s->sq_head; c && n < max; c = c->next) {
		if (c->end == c->start)
			continue;
		iov[n].iov_base = (c->buf ? c->buf->data : c->data) + c->start;
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
	for (unsigned k = 0; k < NET__CLS_COUNT; k++) {
		while (loop->free_chunks[k]) {
			struct net__chunk *c = loop->free_chunks[k];

			loop->free_chunks[k] = c->next;
			free(c);
		}
		loop->free_chunk_count[k] = 0;
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
	struct net__send_block *b = NET__CONTAINER_OF(op, struct net__send_block, op);

	b->next = loop->free_send_blocks;
	loop->free_send_blocks = b;
}

/* ---- shared buffers ------------------------------------------------------ */

void *net_buf_frame(size_t body_len, struct net_buf **out)
{
	uint8_t hdr[10];
	size_t hdr_len;
	struct net_buf *b;

	*out = NULL;
	if (body_len > NET__CHUNK_MAX - NET_VARINT_MAX)
		return NULL;
	b = malloc(sizeof(*b) + NET_VARINT_MAX + body_len);
	if (!b)
		return NULL;
	/* The header ends where the body begins: the frame is contiguous. */
	hdr_len = net_varint_encode(body_len, hdr);
	atomic_init(&b->refs, 1);
	b->off = (uint32_t)(NET_VARINT_MAX - hdr_len);
	b->len = (uint32_t)(hdr_len + body_len);
	memcpy(b->data + b->off, hdr, hdr_len);
	*out = b;
	return b->data + NET_VARINT_MAX;
}

const uint8_t *net_buf_body(const struct net_buf *b, size_t *len)
{
	*len = b->len - (NET_VARINT_MAX - b->off);
	return b->data + NET_VARINT_MAX;
}

void net_buf_ref(struct net_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void net_buf_unref(struct net_buf *b)
{
	/* Release/acquire: every user's reads happen before the free. */
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1)
		free(b);
}
