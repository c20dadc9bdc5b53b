/*
 * libnet tests. Encode once, send to many: shared frames (struct net_buf)
 * queued by reference on many sessions and loops, in order with ordinary
 * sends. The buffers are freed with their last reference: a leak would
 * fail the run under ASan's leak check.
 */
#include "cases.h"

#define FANOUT_CLIENTS 24
#define FANOUT_BODY 3000

static struct {
	pthread_mutex_t lock;
	net_session_id ids[FANOUT_CLIENTS];
	int count;
} fan = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void fan_connected(struct net_session *s)
{
	pthread_mutex_lock(&fan.lock);
	if (fan.count < FANOUT_CLIENTS)
		fan.ids[fan.count++] = net_session_get_id(s);
	pthread_mutex_unlock(&fan.lock);
}

static const struct net_session_ops fan_ops = {
	.on_connected = fan_connected,
	.on_frame = ignore_frame,
};

static int fan_count(void)
{
	int n;

	pthread_mutex_lock(&fan.lock);
	n = fan.count;
	pthread_mutex_unlock(&fan.lock);
	return n;
}

static struct net_buf *pattern_buf(size_t len, uint8_t seed)
{
	struct net_buf *b;
	uint8_t *body = net_buf_frame(len, &b);

	CHECK(body != NULL);
	for (size_t i = 0; i < len; i++)
		body[i] = (uint8_t)(seed + i * 7);
	return b;
}

/* From a thread that is no loop's: one frame to sessions spread over three
 * loops, plus one stale id, which is counted as dropped. Every client gets
 * the same bytes, twice (two frames in a row share the queue). */
void test_send_buf_many(void)
{
	struct net_runtime *rt = test_runtime(3);
	struct net_session_config sc = { .ops = &fan_ops };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fds[FANOUT_CLIENTS];
	net_session_id ids[FANOUT_CLIENTS + 1];
	static uint8_t got[FANOUT_BODY + 16];
	struct net_buf *b1 = pattern_buf(FANOUT_BODY, 1), *b2 = pattern_buf(5, 9);
	const uint8_t *body;
	size_t len;

	for (int i = 0; i < FANOUT_CLIENTS; i++)
		fds[i] = test_connect(net_server_port(srv));
	WAIT_UNTIL(fan_count() == FANOUT_CLIENTS, 5000);
	CHECK(fan_count() == FANOUT_CLIENTS);
	memcpy(ids, fan.ids, sizeof(fan.ids));
	ids[FANOUT_CLIENTS] = ids[0] + ((net_session_id)2 << 32); /* a later generation */
	CHECK(net_send_buf_many(rt, ids, FANOUT_CLIENTS + 1, b1) == 0);
	CHECK(net_send_buf_many(rt, ids, FANOUT_CLIENTS, b2) == 0);
	net_buf_unref(b1); /* the queues hold theirs */
	for (int i = 0; i < FANOUT_CLIENTS; i++) {
		body = net_buf_body(b2, &len);
		CHECK(test_read_frame(fds[i], got, sizeof(got), 5000) == FANOUT_BODY);
		for (size_t k = 0; k < FANOUT_BODY; k++)
			CHECK(got[k] == (uint8_t)(1 + k * 7));
		CHECK(test_read_frame(fds[i], got, sizeof(got), 5000) == (long)len);
		CHECK(memcmp(got, body, len) == 0);
	}
	net_buf_unref(b2);
	CHECK(stats_of(rt).sends_dropped == 1);
	/* A malformed id sends nothing. */
	ids[0] = 0;
	b1 = pattern_buf(1, 0);
	CHECK(net_send_buf_many(rt, ids, 2, b1) == -EINVAL);
	net_buf_unref(b1);
	for (int i = 0; i < FANOUT_CLIENTS; i++)
		close(fds[i]);
	net_runtime_destroy(rt);
}

/* On the loop: ordinary sends and shared frames keep their order in one
 * turn (an ordinary send after a shared frame gets a chunk of its own,
 * never written into the shared bytes), by session and by id. */
static int order_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	net_session_id id = net_session_get_id(s);
	struct net_buf *b = pattern_buf(300, 3), *d = pattern_buf(2, 5);

	(void)body;
	(void)len;
	CHECK_OK(net_session_send_frame(s, "a", 1));
	CHECK_OK(net_session_send_buf(s, b));
	CHECK_OK(net_session_send_frame(s, "c", 1));
	CHECK_OK(net_send_buf_many(net_loop_runtime(net_session_loop(s)), &id, 1, d));
	net_buf_unref(b);
	net_buf_unref(d);
	return 0;
}

static const struct net_session_ops order_ops = { .on_frame = order_frame };

void test_send_buf_order(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = { .ops = &order_ops };
	struct net_server *srv = start_server(rt, &sc, 0);
	int fd = test_connect(net_server_port(srv));
	uint8_t got[400];

	for (int round = 0; round < 3; round++) {
		CHECK(test_write_frame(fd, "go", 2) == 0);
		CHECK(test_read_frame(fd, got, sizeof(got), 5000) == 1 && got[0] == 'a');
		CHECK(test_read_frame(fd, got, sizeof(got), 5000) == 300);
		for (size_t k = 0; k < 300; k++)
			CHECK(got[k] == (uint8_t)(3 + k * 7));
		CHECK(test_read_frame(fd, got, sizeof(got), 5000) == 1 && got[0] == 'c');
		CHECK(test_read_frame(fd, got, sizeof(got), 5000) == 2);
		CHECK(got[0] == 5 && got[1] == 12);
	}
	close(fd);
	net_runtime_destroy(rt);
}
