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
	size_t i;

	for (i = 0; i < len && i < NET_VARINT_MAX; i++) {
		value |= (uint64_t)(data[i] & 0x7f) << (7 * i);
		/* Later bytes only add: once the prefix proves the frame too
		 * large, refuse before buffering anything more. Checked at
		 * every byte, so the verdict does not depend on how the bytes
		 * were split across reads. */
		if (value > max_body)
			return -EMSGSIZE;
		if (!(data[i] & 0x80)) {
			*hdr_len = i + 1;
			*body_len = (size_t)value;
			return 1;
		}
	}
	return i == NET_VARINT_MAX ? -EBADMSG : 0;
}
