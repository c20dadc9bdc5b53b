/*
 * Varint-length-delimited framing for the bench programs that must not use
 * libnet (the baseline servers and the load generator): a frame is the
 * body's length as a protobuf varint (at most 5 bytes, uint32 range), then
 * the body. libnet has the same functions (net_frame_parse); the baselines
 * keep their own copy on purpose, so that no libnet code is measured when a
 * peer library is.
 */
#ifndef BENCH_FRAME_H
#define BENCH_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_VARINT_MAX 5

/* Encode v (< 2^32) as a varint into out; returns its length (1..5). */
size_t bench_varint_encode(uint32_t v, uint8_t out[BENCH_VARINT_MAX]);

/*
 * Parse the frame header at data[0..len). Returns 1 with *hdr_len and
 * *body_len set once the header is complete (the body may still be
 * partial), 0 when more bytes are needed, -EMSGSIZE when the body would
 * exceed max_body, -EBADMSG for a prefix longer than BENCH_VARINT_MAX.
 */
int bench_frame_parse(const uint8_t *data, size_t len, size_t max_body,
		      size_t *hdr_len /* OUT */, size_t *body_len /* OUT */);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

#endif /* BENCH_FRAME_H */
