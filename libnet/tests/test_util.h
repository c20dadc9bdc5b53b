/*
 * The harness of libnet's tests. Each case is its own process with its own
 * timeout (CTest runs `libnet_tests <case>` once per engine, with
 * RINGGATE_ENGINE=uring|epoll|iocp), so one crash or hang is reported
 * without ending the run. Exit 0 = pass, 1 = fail, TEST_SKIP (77) =
 * skipped (the engine is not usable here). CHECK, the case table and
 * test_main are ringgate's one test header, common/tests/check.h.
 */
#ifndef NET_TEST_UTIL_H
#define NET_TEST_UTIL_H

#include <net/net.h>

#ifdef _WIN32
#include "test_win.h"
#endif
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

#define CHECK_OK(expr)                                                          \
	do {                                                                    \
		int check_err_ = (expr);                                        \
		if (check_err_ < 0) {                                           \
			fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__,     \
				__LINE__, #expr, net_strerror(check_err_));     \
			exit(1);                                                \
		}                                                               \
	} while (0)

/* Poll cond every millisecond until it holds or ms milliseconds pass;
 * follow with CHECK(cond). */
#define WAIT_UNTIL(cond, ms)                                                    \
	do {                                                                    \
		unsigned long long wait_deadline_ = test_now_ms() + (ms);       \
		while (!(cond) && test_now_ms() < wait_deadline_)               \
			test_sleep_ms(1);                                       \
	} while (0)

/* Sleep ms milliseconds. */
void test_sleep_ms(unsigned ms);

/* Milliseconds of a monotonic clock. */
unsigned long long test_now_ms(void);

/* A runtime with `loops` loops on the engine named by RINGGATE_ENGINE,
 * started. Exits 77 if the engine is not usable here. */
struct net_runtime *test_runtime(unsigned loops);

/* The same with a whole configuration (its engine field is ignored). */
struct net_runtime *test_runtime_cfg(const struct net_runtime_config *cfg);

/* A blocking TCP client socket connected to 127.0.0.1:port. */
int test_connect(uint16_t port);

/* Write all of buf; returns 0 or -1. */
int test_write_all(int fd, const void *buf, size_t len);

/* Read exactly len bytes within timeout_ms; returns 0, or -1 on EOF,
 * error or timeout. */
int test_read_exact(int fd, void *buf, size_t len, unsigned timeout_ms);

/* Wait until the peer closes (read returns 0 or an error) within
 * timeout_ms, discarding data; returns bytes discarded, or -1 on timeout. */
long test_read_until_eof(int fd, unsigned timeout_ms);

/* True if the peer has closed its side (EOF is waiting); never blocks. */
bool test_peer_closed(int fd);

/* Write one varint-framed message. */
int test_write_frame(int fd, const void *body, size_t len);

/* Read one varint-framed message into buf (cap bytes); returns its length
 * or -1. */
long test_read_frame(int fd, void *buf, size_t cap, unsigned timeout_ms);

#endif /* NET_TEST_UTIL_H */
