/*
 * The seeds' DummyClient: a client service with N sessions that sends
 * "Hello World!" on connect and again after each echo, checking every echo
 * byte for byte. Usage:
 *   dummy_client [--port P] [--sessions N] [--rounds R] [--seconds S]
 * Stops when every session has done R round trips (R = 0: run for S
 * seconds), then prints round trips per second (on Windows also the IOCP
 * socket paths). Exit 1 on a wrong echo.
 */
#include <net/net.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _WIN32
#include "iocp_counters.h"
#endif

static const char hello[] = "Hello World!";

struct totals {
	atomic_ulong round_trips;
	atomic_uint sessions_done;
	atomic_uint bad_echoes;
	unsigned long rounds; /* per session; 0 = unlimited */
};

struct dummy {
	unsigned long round_trips;
};

static void on_connected(struct net_session *s)
{
	net_session_send_frame(s, hello, sizeof(hello) - 1);
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	struct totals *t = net_session_service_user(s);
	struct dummy *d = net_session_user(s);

	if (len != sizeof(hello) - 1 || memcmp(body, hello, len) != 0) {
		atomic_fetch_add(&t->bad_echoes, 1);
		return -1;
	}
	atomic_fetch_add(&t->round_trips, 1);
	if (t->rounds && ++d->round_trips == t->rounds) {
		atomic_fetch_add(&t->sessions_done, 1);
		return 0;
	}
	return net_session_send_frame(s, hello, sizeof(hello) - 1);
}

static const struct net_session_ops dummy_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct totals totals = { .rounds = 0 };
	struct net_client_config ccfg = {
		.host = "127.0.0.1",
		.port = 7777,
		.sessions = 100,
		.session = { .ops = &dummy_ops, .service_user = &totals,
			     .user_size = sizeof(struct dummy) },
	};
	struct net_runtime *rt;
	struct net_client *cli;
	double seconds = 5, start, elapsed;
	int err;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			ccfg.port = (uint16_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--sessions"))
			ccfg.sessions = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			totals.rounds = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atof(argv[i + 1]);
	}
	err = net_runtime_create(NULL, &rt);
	if (!err)
		err = net_client_start(rt, &ccfg, &cli);
	if (!err)
		err = net_runtime_start(rt);
	if (err) {
		fprintf(stderr, "dummy_client: %s\n", net_strerror(err));
		return 1;
	}
	start = now_s();
	for (;;) {
		usleep(10000);
		elapsed = now_s() - start;
		if (totals.rounds ? atomic_load(&totals.sessions_done) == ccfg.sessions
				  : elapsed >= seconds)
			break;
		if (atomic_load(&totals.bad_echoes) || elapsed > 600)
			break;
	}
	elapsed = now_s() - start;
	net_runtime_stop(rt);
	printf("dummy_client: engine %s, %u sessions, %lu round trips in %.2f s: %.0f round trips/s, "
	       "%u bad echoes\n",
	       net_runtime_engine(rt), ccfg.sessions, atomic_load(&totals.round_trips), elapsed,
	       atomic_load(&totals.round_trips) / elapsed, atomic_load(&totals.bad_echoes));
#ifdef _WIN32
	print_iocp_counters("dummy_client");
#endif
	net_runtime_destroy(rt);
	return atomic_load(&totals.bad_echoes) ? 1 : 0;
}
