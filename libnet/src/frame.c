/*
 * Varint-length-delimited framing: the protobuf stream convention
 * (writeDelimitedTo / parseDelimitedFrom). A frame is the body length as a
 * base-128 varint, then the body. Lengths are limited to 32 bits, so a
 * prefix is at most NET_VARINT_MAX bytes; anything longer is malformed.
 */
#include "internal.h"

#include <errno.h>

size_t net_varint_encode(uint64_t v, uint8_t out[10])
{
	size_t n = 0;

	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

int net_frame_parse(const uint8_t *data, size_t len, size_t max_body,
		    size_t *hdr_len, size_t *body_len)
{
	uint64_t value = 0;

	for (size_t i = 0; i < NET_VARINT_MAX; i++) {
		if (i == len)
			/* Even a partial prefix can prove the frame too large:
			 * refuse before buffering anything more. */
			return value > max_body ? -EMSGSIZE : 0;
		value |= (uint64_t)(data[i] & 0x7f) << (7 * i);
		if (!(data[i] & 0x80)) {
			if (value > max_body)
				return -EMSGSIZE;
			*hdr_len = i + 1;
			*body_len = (size_t)value;
			return 1;
		}
	}
	return -EBADMSG;
}
