/*
 * fuzz_frame: libnet's frame decoder (net_frame_parse) fed the way a
 * session feeds it: bytes arrive in chunks of any size, are appended to a
 * receive buffer, and complete frames are taken off its front.
 *
 * Input: byte 0 picks max_body, byte 1 the number of split points, then
 * that many 16-bit split offsets, then the stream itself. The stream is
 * decoded twice, whole and in the chunks the split points cut, each into
 * a list of frames plus how it ended (all consumed, waiting for more, or
 * -EMSGSIZE / -EBADMSG). Invariants checked (any failure aborts):
 *   - a header is 1..NET_VARINT_MAX bytes and never longer than the bytes
 *     buffered; a body is never longer than max_body;
 *   - the announced length is what an independent varint decode says, and
 *     net_varint_encode of it decodes back to it;
 *   - the frames and the ending are the same whatever the split (an error
 *     may be seen with fewer bytes buffered, but at the same frame; see
 *     same_outcome() for the one case where the error code differs);
 *   - no read outside the bytes handed over: each chunked parse sees a
 *     buffer of exactly the buffered size (ASan checks the rest).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net/net.h>

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_frame: %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

#define SPLITS_MAX 64

/* What one decode of a stream produced. */
struct decoded {
	size_t frames;
	uint64_t digest;     /* FNV-1a over every frame's length and body   */
	int end;             /* 0, -EMSGSIZE or -EBADMSG                      */
	size_t consumed;     /* bytes taken off as whole frames               */
};

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* An independent reading of a varint prefix: the value, or -1 when it is
 * incomplete in data[0..len) or longer than NET_VARINT_MAX bytes. */
static int64_t reference_varint(const uint8_t *data, size_t len, size_t *used)
{
	uint64_t v = 0;

	for (size_t i = 0; i < len && i < NET_VARINT_MAX; i++) {
		v |= (uint64_t)(data[i] & 0x7f) << (7 * i);
		if (!(data[i] & 0x80)) {
			*used = i + 1;
			return (int64_t)v;
		}
	}
	return -1;
}

/* Take every complete frame off the front of buf[0..*len); returns 0, or
 * the parse error that stopped it. */
static int take_frames(const uint8_t *buf, size_t len, size_t max_body, struct decoded *d)
{
	size_t at = 0;

	for (;;) {
		size_t rest = len - at, hdr = 0, body = 0, ref_used = 0;
		/* Exactly the bytes buffered, so ASan sees any overread. */
		uint8_t *view = malloc(rest ? rest : 1);
		int rc;
		int64_t ref;

		CHECK(view != NULL);
		memcpy(view, buf + at, rest);
		rc = net_frame_parse(view, rest, max_body, &hdr, &body);
		ref = reference_varint(view, rest, &ref_used);
		free(view);
		if (rc < 0) {
			CHECK(rc == -EMSGSIZE || rc == -EBADMSG);
			if (rc == -EMSGSIZE && ref >= 0)
				CHECK((uint64_t)ref > max_body);
			if (rc == -EBADMSG)
				CHECK(rest >= NET_VARINT_MAX && ref < 0);
			d->consumed += at;
			return rc;
		}
		if (rc == 0) {
			CHECK(ref < 0 && rest < NET_VARINT_MAX);
			break;
		}
		CHECK(rc == 1);
		CHECK(hdr >= 1 && hdr <= NET_VARINT_MAX && hdr <= rest);
		CHECK(body <= max_body);
		CHECK(ref >= 0 && (uint64_t)ref == body && ref_used == hdr);
		{
			uint8_t enc[10];
			size_t n = net_varint_encode(body, enc), used = 0;

			CHECK(n >= 1 && n <= hdr && reference_varint(enc, n, &used) == ref);
		}
		if (rest - hdr < body)
			break; /* the body is not all here yet */
		d->digest = fnv(fnv(d->digest, (const uint8_t *)&body, sizeof(body)),
				buf + at + hdr, body);
		d->frames++;
		at += hdr + body;
	}
	d->consumed += at;
	return 0;
}

/* Decode stream[0..len) fed in the chunks that cuts[0..ncuts) (sorted
 * offsets) make, as a session's receive buffer would. */
static void decode(const uint8_t *stream, size_t len, const size_t *cuts, size_t ncuts,
		   size_t max_body, struct decoded *d)
{
	uint8_t *buf = NULL;
	size_t buffered = 0, fed = 0;

	memset(d, 0, sizeof(*d));
	d->digest = 0xcbf29ce484222325ull;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t upto = i < ncuts ? cuts[i] : len;
		size_t taken_before = d->consumed;
		uint8_t *grown;

		if (upto <= fed)
			continue;
		grown = realloc(buf, buffered + (upto - fed));
		CHECK(grown != NULL);
		buf = grown;
		memcpy(buf + buffered, stream + fed, upto - fed);
		buffered += upto - fed;
		fed = upto;
		d->end = take_frames(buf, buffered, max_body, d);
		if (d->end < 0)
			break;
		/* Drop what was taken, as a session compacts its buffer. */
		memmove(buf, buf + (d->consumed - taken_before), buffered - (d->consumed - taken_before));
		buffered -= d->consumed - taken_before;
	}
	free(buf);
}

/* The same frames and the same ending whatever the split. */
static void same_outcome(const struct decoded *whole, const struct decoded *split)
{
	CHECK(whole->frames == split->frames);
	CHECK(whole->digest == split->digest);
	CHECK(whole->consumed == split->consumed);
	CHECK(whole->end == split->end);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Small limits reach -EMSGSIZE often; the real ones are here too. */
	static const size_t max_bodies[] = { 0, 1, 5, 127, 128, 300, 16383, 16384,
					     65536, 1u << 20, 4u << 20, 0xffffffffu };
	size_t max_body, nsplit, cuts[SPLITS_MAX];
	const uint8_t *stream;
	size_t len;
	struct decoded whole, chunked;

	if (size < 2)
		return 0;
	max_body = max_bodies[data[0] % (sizeof(max_bodies) / sizeof(max_bodies[0]))];
	nsplit = data[1] % (SPLITS_MAX + 1);
	if (size < 2 + 2 * nsplit)
		return 0;
	stream = data + 2 + 2 * nsplit;
	len = size - 2 - 2 * nsplit;
	for (size_t i = 0; i < nsplit; i++) {
		size_t off = (size_t)data[2 + 2 * i] | (size_t)data[3 + 2 * i] << 8;

		cuts[i] = len ? off % (len + 1) : 0;
	}
	qsort(cuts, nsplit, sizeof(cuts[0]), cmp_size);

	decode(stream, len, NULL, 0, max_body, &whole);
	decode(stream, len, cuts, nsplit, max_body, &chunked);
	same_outcome(&whole, &chunked);
	if (len <= 1024) {
		/* One byte at a time: the slowloris split (quadratic, so only
		 * for short streams). */
		size_t *each = malloc((len ? len : 1) * sizeof(*each));
		struct decoded bytewise;

		CHECK(each != NULL);
		for (size_t i = 0; i < len; i++)
			each[i] = i + 1;
		decode(stream, len, each, len, max_body, &bytewise);
		free(each);
		same_outcome(&whole, &bytewise);
	}
	return 0;
}
