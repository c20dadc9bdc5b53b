/*
 * The seeds' GameServer: an echo server on libnet. Every frame a client
 * sends comes straight back. Usage: echo_server [port] [loops]
 * Runs until SIGINT/SIGTERM (on Windows: until standard input ends), then
 * prints the session counters (on Windows also the IOCP socket paths).
 */
#include <net/net.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef _WIN32
#include "iocp_counters.h"

/* No sigwait on Windows: standard input closing is the stop signal. */
static void wait_for_stop(void)
{
	while (getchar() != EOF)
		;
}
#else
static sigset_t stop_signals;

static void wait_for_stop(void)
{
	int sig;

	sigwait(&stop_signals, &sig);
}
#endif

static int echo_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	return net_session_send_frame(s, body, len);
}

static const struct net_session_ops echo_ops = { .on_frame = echo_frame };

int main(int argc, char **argv)
{
	struct net_runtime_config rcfg = { .loops = argc > 2 ? (unsigned)atoi(argv[2]) : 0 };
	struct net_server_config scfg = {
		.host = "127.0.0.1",
		.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 7777),
		.session = { .ops = &echo_ops },
	};
	struct net_runtime *rt;
	struct net_server *srv;
	struct net_stats st;
	int err;

#ifndef _WIN32
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
#endif

	err = net_runtime_create(&rcfg, &rt);
	if (err) {
		fprintf(stderr, "echo_server: runtime: %s\n", net_strerror(err));
		return 1;
	}
	err = net_server_start(rt, &scfg, &srv);
	if (!err)
		err = net_runtime_start(rt);
	if (err) {
		fprintf(stderr, "echo_server: %s\n", net_strerror(err));
		net_runtime_destroy(rt);
		return 1;
	}
	printf("echo_server: engine %s, %u loops, listening on 127.0.0.1:%u\n",
	       net_runtime_engine(rt), net_runtime_loop_count(rt), net_server_port(srv));
	fflush(stdout);
	wait_for_stop();
	net_runtime_stop(rt);
	net_runtime_stats(rt, &st);
	printf("echo_server: accepted %llu, reused %llu, frames in %llu out %llu\n",
	       (unsigned long long)st.accepted, (unsigned long long)st.reused,
	       (unsigned long long)st.frames_in, (unsigned long long)st.frames_out);
#ifdef _WIN32
	print_iocp_counters("echo_server");
#endif
	net_runtime_destroy(rt);
	return 0;
}
