/*
 * fuzz_ws: the gateway's WebSocket port - its HTTP head, the upgrade, the
 * frame layer (wslay) and the client side behind it - with libnet replaced
 * by fuzz/fake_net.c. The gateway is fuzz_gateway's (gateway_harness.h),
 * shard link included, but no gamesrv ever answers that link: it stays
 * down, so the gateway routes each request a client frames and answers it
 * itself (SERVICE_UNAVAILABLE, RESUME_EXPIRED). The frame path is what
 * this target explores (fuzz_gateway covers the requests).
 *
 * The fuzzer's records:
 *
 *   op % 4 == 0  raw bytes from the current connection (fake_net_recv)
 *   op % 4 == 1  a new connection; unless bytes[0] is odd it sends a good
 *                upgrade request first, so that frames are reached at once
 *   op % 4 == 2  time passes: bytes[0] * 50 ms (the head and message
 *                deadlines, idle kicks)
 *   op % 4 == 3  the current connection's peer closes
 *
 * Invariants, on everything the gateway sends the current connection: an
 * HTTP response head first; after a 101, only whole server frames, never
 * masked, each final, of opcode binary, close or pong; every binary one a
 * ServerMessage. Nothing leaks (ASan), crashes or trips UBSan.
 */
#define _GNU_SOURCE /* memmem */
#include <string.h>

#include "fake_net.h"
#include "gateway_harness.h"
#include "harness.h"

#define STREAM_MAX (1u << 20)

static const char upgrade_head[] =
	"GET /ws HTTP/1.1\r\nHost: fuzz\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

struct harness {
	struct gateway gw;
	net_session_id conn;
	uint8_t out[STREAM_MAX];   /* the current connection's bytes, unchecked */
	size_t out_len;
	bool head_seen, upgraded;
};

/* Check what was sent on the current connection, as far as it is whole. */
static void check_stream(struct harness *h)
{
	size_t at = 0;

	if (!h->head_seen) {
		const uint8_t *end;

		if (h->out_len < 4)
			return;
		FUZZ_CHECK(memcmp(h->out, "HTTP/1.1 ", h->out_len < 9 ? h->out_len : 9) == 0);
		end = memmem(h->out, h->out_len, "\r\n\r\n", 4);
		if (!end)
			return;
		h->head_seen = true;
		h->upgraded = h->out_len >= 12 && memcmp(h->out + 9, "101", 3) == 0;
		at = (size_t)(end - h->out) + 4;
		if (!h->upgraded)
			at = h->out_len; /* a body follows (Content-Length), then nothing */
	}
	while (h->upgraded && h->out_len - at >= 2) {
		const uint8_t *f = h->out + at;
		uint64_t n = f[1] & 0x7f;
		size_t hdr = 2;

		FUZZ_CHECK((f[0] & 0x80) && !(f[1] & 0x80)); /* final, unmasked */
		if (n == 126) {
			if (h->out_len - at < 4)
				break;
			n = (uint64_t)f[2] << 8 | f[3];
			hdr = 4;
		} else if (n == 127) {
			if (h->out_len - at < 10)
				break;
			n = 0;
			for (int i = 2; i < 10; i++)
				n = n << 8 | f[i];
			hdr = 10;
		}
		if (h->out_len - at - hdr < n)
			break;
		switch (f[0] & 0x0f) {
		case 0x2: {
			ProtobufCMessage *m = fuzz_unpack(&ringgate__client__server_message__descriptor,
							  f + hdr, (size_t)n);

			FUZZ_CHECK(m != NULL);
			protobuf_c_message_free_unpacked(m, NULL);
			break;
		}
		case 0x8:
		case 0xa:
			break;
		default:
			FUZZ_CHECK(!"a server frame of another opcode");
		}
		at += hdr + (size_t)n;
	}
	memmove(h->out, h->out + at, h->out_len - at);
	h->out_len -= at;
}

/* Take what the gateway sent: keep the current connection's bytes. */
static void pump(struct harness *h)
{
	size_t n;
	struct fake_sent *sent = fake_net_take_sent(&n);

	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(!sent[i].framed); /* WebSocket sends raw bytes only */
		if (sent[i].session != h->conn || h->out_len + sent[i].len > STREAM_MAX)
			continue;
		memcpy(h->out + h->out_len, sent[i].bytes, sent[i].len);
		h->out_len += sent[i].len;
	}
	fake_net_free_sent(sent, n);
	check_stream(h);
}

static void ws_connect(struct harness *h, bool upgrade)
{
	struct net_session *s = fake_net_connect(GW_FUZZ_SVC_CLIENTS);

	h->conn = s ? net_session_get_id(s) : 0;
	h->out_len = 0;
	h->head_seen = h->upgraded = false;
	if (s && upgrade) {
		fake_net_recv(h->conn, (const uint8_t *)upgrade_head, sizeof(upgrade_head) - 1);
		pump(h);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct harness h; /* big (the stream); one input at a time */
	struct fuzz_input in = { data, size, 0 };
	uint8_t op;
	const uint8_t *bytes;
	size_t len;

	memset(&h, 0, sizeof(h));
	/* A small max frame: the fuzzer reaches the bound. */
	gw_fuzz_setup(&h.gw, GW_FUZZ_WS, 1024);
	ws_connect(&h, true);
	while (fuzz_next(&in, &op, &bytes, &len)) {
		switch (op % 4) {
		case 0:
			if (!fake_net_find(h.conn))
				ws_connect(&h, true);
			fake_net_recv(h.conn, bytes, len);
			break;
		case 1:
			ws_connect(&h, !(fuzz_byte(bytes, len, 0) & 1));
			break;
		case 2:
			fake_net_advance((uint64_t)fuzz_byte(bytes, len, 0) * 50);
			break;
		case 3:
			fake_net_close(h.conn);
			break;
		}
		pump(&h);
	}
	gw_fuzz_teardown(&h.gw);
	return 0;
}
