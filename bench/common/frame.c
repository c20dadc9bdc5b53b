/* Varint framing and the clock for the bench programs; see frame.h. */
#define _POSIX_C_SOURCE 200809L
#include "frame.h"

#include <errno.h>
#include <time.h>

size_t bench_varint_encode(uint32_t v, uint8_t out[BENCH_VARINT_MAX])
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int bench_frame_parse(const uint8_t *data, size_t len, size_t max_body,
		      size_t *hdr_len, size_t *body_len)
{
	uint64_t value = 0;
	for (size_t i = 0; i < BENCH_VARINT_MAX; i++) {
		if (i == len)
			return 0;
		value |= (uint64_t)(data[i] & 0x7f) << (7 * i);
		/* Refuse as soon as the prefix proves the body too large. */
		if (value > max_body)
			return -EMSGSIZE;
		if (!(data[i] & 0x80)) {
			*hdr_len = i + 1;
			*body_len = (size_t)value;
			return 1;
		}
	}
	return -EBADMSG;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
