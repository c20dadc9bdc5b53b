/*
 * wire.c: protobuf-c messages as frames (see wire.h).
 */
#include "wire.h"

#include <errno.h>
#include <stdlib.h>

int gs_wire_buf_reserve(struct gs_wire_buf *b, size_t len)
{
	size_t cap = b->cap ? b->cap : 256;
	uint8_t *data;

	if (len <= b->cap)
		return 0;
	while (cap < len)
		cap *= 2;
	data = realloc(b->data, cap);
	if (!data)
		return -ENOMEM;
	b->data = data;
	b->cap = cap;
	return 0;
}

int gs_wire_send_to(struct net_runtime *rt, net_session_id id, struct gs_wire_buf *b,
		 const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);

	if (gs_wire_buf_reserve(b, len) < 0)
		return -ENOMEM;
	protobuf_c_message_pack(m, b->data);
	return net_send_to(rt, id, b->data, len);
}

void gs_wire_buf_fini(struct gs_wire_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->cap = 0;
}
