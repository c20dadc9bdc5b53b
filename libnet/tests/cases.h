/*
 * What libnet's test cases share: the harness (test_util.h), the
 * server-side callbacks most cases use, and one declaration per case.
 *
 * The list of cases is cases.txt: CMake reads it, registers one CTest test
 * per case and engine, and writes cases.inc (one NET_TEST(name) line per
 * case built on this platform), which main.c turns into the table that
 * `libnet_tests <case>` looks names up in. A case is a function
 * `void test_<name>(void)` in the cases_<topic>.c file of its topic.
 */
#ifndef NET_TEST_CASES_H
#define NET_TEST_CASES_H

#include "test_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#define NET_TEST(name) void test_##name(void);
#include "cases.inc"
#undef NET_TEST

/* What the server-side callbacks below saw. */
struct test_seen {
	atomic_int connected;
	atomic_int disconnected;
	atomic_int last_reason;
	atomic_ulong frames;
	_Atomic(struct net_session *) session; /* the last connected one, ref'd */
};
extern struct test_seen seen;

/* on_connected: count it, and keep (ref) the session in seen.session. */
void record_connected(struct net_session *s);
/* on_disconnected: count it and keep the reason. */
void record_disconnected(struct net_session *s, enum net_reason reason);
/* on_frame: count it and send it back. */
int echo_frame(struct net_session *s, const uint8_t *body, size_t len);
/* on_frame: take it and do nothing. */
int ignore_frame(struct net_session *s, const uint8_t *body, size_t len);
/* The three above: an echo server that records what happens. */
extern const struct net_session_ops echo_ops;

/* A server on 127.0.0.1, a free port, with sc as its session config. */
struct net_server *start_server(struct net_runtime *rt, const struct net_session_config *sc,
				unsigned max_sessions);
/* start_server with echo_ops. */
struct net_server *start_echo(struct net_runtime *rt);
/* Drop the ref record_connected took, if any. */
void release_seen_session(void);
/* The runtime's counters now. */
struct net_stats stats_of(struct net_runtime *rt);

#endif /* NET_TEST_CASES_H */
