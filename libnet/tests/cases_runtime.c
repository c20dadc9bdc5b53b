/*
 * libnet tests. The runtime: stop drains, a server started while stopping,
 * and the engine choice (seccomp against io_uring).
 */
#include "cases.h"

#include <stddef.h>
#ifndef _WIN32
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

void test_runtime_stop_drains(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_server *srv = start_echo(rt);
	int fds[10];

	for (int i = 0; i < 10; i++)
		fds[i] = test_connect(net_server_port(srv));
	WAIT_UNTIL(atomic_load(&seen.connected) == 10, 3000);
	release_seen_session();
	net_runtime_stop(rt);
	CHECK(atomic_load(&seen.disconnected) == 10);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SHUTDOWN);
	for (int i = 0; i < 10; i++) {
		CHECK(test_read_until_eof(fds[i], 3000) == 0);
		close(fds[i]);
	}
	net_runtime_destroy(rt);
}

/*
 * A server started while the runtime drains (here: a session still
 * flushing to a peer that does not read) must not keep the stop waiting:
 * it either fails with -NET_ESHUTDOWN or never listens.
 */
static void queue_big_reply(struct net_session *s)
{
	static uint8_t big[4 << 20];

	record_connected(s);
	CHECK_OK(net_session_send(s, big, sizeof(big)));
}

static const struct net_session_ops big_reply_ops = {
	.on_connected = queue_big_reply,
	.on_frame = ignore_frame,
	.on_disconnected = record_disconnected,
};

static atomic_bool stop_returned;

static void *stop_main(void *arg)
{
	net_runtime_stop(arg);
	atomic_store(&stop_returned, true);
	return NULL;
}

void test_server_start_while_stopping(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_session_config sc = {
		.ops = &big_reply_ops,
		.send_queue_max = 8u << 20,
		.socket_send_buffer = 64 * 1024,
		.flush_timeout_ms = 1500,
	};
	struct net_server *srv = start_server(rt, &sc, 0), *late;
	struct net_server_config late_cfg = { .host = "127.0.0.1", .session = { .ops = &echo_ops } };
	int fd = test_connect(net_server_port(srv));
	pthread_t stopper;
	int err;

	/* The peer never reads: the stop waits for the flush deadline. */
	WAIT_UNTIL(atomic_load(&seen.connected) == 1, 3000);
	release_seen_session();
	CHECK(pthread_create(&stopper, NULL, stop_main, rt) == 0);
	test_sleep_ms(300);
	CHECK(!atomic_load(&stop_returned));
	err = net_server_start(rt, &late_cfg, &late);
	CHECK(err == 0 || err == -NET_ESHUTDOWN);
	WAIT_UNTIL(atomic_load(&stop_returned), 6000);
	CHECK(atomic_load(&stop_returned));
	pthread_join(stopper, NULL);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_SHUTDOWN);
	close(fd);
	net_runtime_destroy(rt);
}

/* ---- engine choice ----------------------------------------------------------- */

#ifndef _WIN32

/* Make io_uring_setup fail with EPERM in this process, as a container's
 * seccomp profile or kernel.io_uring_disabled=2 would. */
static void forbid_io_uring(void)
{
	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };

	CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
}

void test_engine_fallback(void)
{
	struct net_runtime_config forced = { .loops = 1, .engine = "uring" };
	struct net_runtime_config bogus = { .loops = 1, .engine = "bogus" };
	struct net_runtime *rt;

	CHECK(net_runtime_create(&bogus, &rt) == -EINVAL);
	forbid_io_uring();
	/* Forced by name, a broken engine is an error, not a quiet switch. */
	CHECK(net_runtime_create(&forced, &rt) == -ENOTSUP);
	/* Left to choose, libnet falls back to epoll and still works. */
	unsetenv("RINGGATE_ENGINE");
	rt = test_runtime(1);
	CHECK(strcmp(net_runtime_engine(rt), "epoll") == 0);
	net_runtime_destroy(rt);
	test_echo_pingpong();
}
#endif /* !_WIN32 */
