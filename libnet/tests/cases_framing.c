/*
 * libnet tests. Framing: the varint parser, and frames over real sockets
 * (split, batched, oversize, malformed).
 */
#include "cases.h"

void test_frame_parse(void)
{
	uint8_t buf[16];
	size_t hdr, body, n;

	/* Round trip of the varint encoder over edge values. */
	const uint64_t values[] = { 0, 1, 127, 128, 300, 16383, 16384, 65536, UINT32_MAX };
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		n = net_varint_encode(values[i], buf);
		CHECK(net_frame_parse(buf, n, UINT32_MAX, &hdr, &body) == 1);
		CHECK(hdr == n && body == values[i]);
		/* Every strict prefix needs more bytes. */
		for (size_t k = 0; k < n; k++)
			CHECK(net_frame_parse(buf, k, UINT32_MAX, &hdr, &body) == 0);
	}
	/* Oversize is decided from the prefix alone. */
	n = net_varint_encode(65537, buf);
	CHECK(net_frame_parse(buf, n, 65536, &hdr, &body) == -EMSGSIZE);
	/* A partial prefix that already proves the size is refused early. */
	n = net_varint_encode((1u << 30) | 0x1fffff, buf);
	CHECK(net_frame_parse(buf, n - 1, 65536, &hdr, &body) == -EMSGSIZE);
	/* Six continuation bytes: malformed. */
	memset(buf, 0x80, 6);
	CHECK(net_frame_parse(buf, 6, UINT32_MAX, &hdr, &body) == -EBADMSG);
	/* Overlong zero (0x80 0x00) is a valid protobuf varint for 0. */
	buf[0] = 0x80;
	buf[1] = 0x00;
	CHECK(net_frame_parse(buf, 2, 10, &hdr, &body) == 1 && hdr == 2 && body == 0);
}


void test_split_and_batched_frames(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_server *srv = start_echo(rt);
	int fd = test_connect(net_server_port(srv));
	uint8_t wire[4096], frame[10 + 300], got[300];
	size_t wire_len = 0, frame_len;

	/* One frame, written one byte at a time. */
	for (int i = 0; i < 300; i++)
		frame[10 + i] = (uint8_t)(i * 7);
	frame_len = net_varint_encode(300, frame);
	memmove(frame + frame_len, frame + 10, 300);
	frame_len += 300;
	for (size_t i = 0; i < frame_len; i++) {
		CHECK(test_write_all(fd, frame + i, 1) == 0);
		if (i % 50 == 0)
			test_sleep_ms(1);
	}
	CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 300);
	for (int i = 0; i < 300; i++)
		CHECK(got[i] == (uint8_t)(i * 7));

	/* Many frames (including an empty one) in one write. */
	for (int i = 0; i < 100; i++) {
		uint8_t body[3] = { (uint8_t)i, (uint8_t)(i + 1), (uint8_t)(i + 2) };
		size_t len = (size_t)(i % 4);

		wire_len += net_varint_encode(len, wire + wire_len);
		memcpy(wire + wire_len, body, len);
		wire_len += len;
	}
	CHECK(test_write_all(fd, wire, wire_len) == 0);
	for (int i = 0; i < 100; i++) {
		long n = test_read_frame(fd, got, sizeof(got), 3000);

		CHECK(n == i % 4);
		for (long k = 0; k < n; k++)
			CHECK(got[k] == (uint8_t)(i + k));
	}
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

static void expect_cut(const uint8_t *bytes, size_t len, enum net_reason reason)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &echo_ops, .max_frame = 1024 };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));

	CHECK(test_write_all(fd, bytes, len) == 0);
	/* The server closes without waiting for a body it will never take. */
	CHECK(test_read_until_eof(fd, 3000) == 0);
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	CHECK(atomic_load(&seen.last_reason) == (int)reason);
	CHECK(atomic_load(&seen.frames) == 0);
	CHECK(stats_of(rt).disconnects[reason] == 1);
	release_seen_session();
	net_runtime_destroy(rt);
}

void test_oversize_frame(void)
{
	uint8_t hdr[10];
	size_t n = net_varint_encode(1 << 20, hdr);

	expect_cut(hdr, n, NET_REASON_FRAME_TOO_LARGE);
}

/* A session that takes frames of at most 16 bytes until one says "open"
 * (a handshake), then the service's max_frame. */
static void small_until_open_connected(struct net_session *s)
{
	record_connected(s);
	net_session_set_max_frame(s, 16);
}

static int small_until_open_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	if (len == 4 && memcmp(body, "open", 4) == 0)
		net_session_set_max_frame(s, 0);
	return echo_frame(s, body, len);
}

static const struct net_session_ops small_until_open_ops = {
	.on_connected = small_until_open_connected,
	.on_frame = small_until_open_frame,
	.on_disconnected = record_disconnected,
};

void test_session_max_frame(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &small_until_open_ops, .max_frame = 1024 };
	struct net_server *srv = start_server(rt, &sc, 0);
	uint8_t big[1000], got[1024], hdr[10];
	int fd = test_connect(net_server_port(srv));

	memset(big, 'b', sizeof(big));
	CHECK(test_write_frame(fd, big, 16) == 0);
	CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 16);
	/* "open" and a big frame in one write: the limit is lifted in time. */
	CHECK(test_write_frame(fd, "open", 4) == 0 && test_write_frame(fd, big, sizeof(big)) == 0);
	CHECK(test_read_frame(fd, got, sizeof(got), 3000) == 4);
	CHECK(test_read_frame(fd, got, sizeof(got), 3000) == (long)sizeof(big));
	close(fd);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 1, 3000);
	release_seen_session();

	/* Before "open", a header announcing 17 bytes is refused at once. */
	fd = test_connect(net_server_port(srv));
	CHECK(test_write_all(fd, hdr, net_varint_encode(17, hdr)) == 0);
	CHECK(test_read_until_eof(fd, 3000) == 0);
	WAIT_UNTIL(atomic_load(&seen.disconnected) == 2, 3000);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_FRAME_TOO_LARGE);
	close(fd);
	release_seen_session();
	net_runtime_destroy(rt);
}

void test_bad_varint(void)
{
	const uint8_t bad[6] = { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };

	expect_cut(bad, sizeof(bad), NET_REASON_BAD_FRAME);
}
