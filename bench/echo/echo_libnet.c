/*
 * echo_libnet: the echo benchmark's server on libnet. libnet does the
 * framing (on_frame) and the gathering of queued frames into one send per
 * session per loop turn; this file only echoes each frame back. One loop,
 * because the benchmark pins every server to one core. The engine is
 * libnet's choice, or RINGGATE_ENGINE=uring|epoll.
 *
 * Usage: echo_libnet [--host ADDR] [--port N]; prints "listening PORT" on
 * stdout and the engine on stderr, then serves until SIGINT/SIGTERM.
 */
#define _POSIX_C_SOURCE 200809L
#include <net/net.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	return net_session_send_frame(s, body, len);
}

static const struct net_session_ops echo_ops = { .on_frame = on_frame };

int main(int argc, char **argv)
{
	struct net_server_config cfg = {
		.host = "127.0.0.1",
		.backlog = 4096,
		.session = { .ops = &echo_ops, .max_frame = 65536 },
	};
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			cfg.host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			cfg.port = (uint16_t)atoi(argv[i + 1]);
	}
	/* Block the stop signals before any loop thread exists, then wait. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct net_runtime_config rcfg = { .loops = 1 };
	struct net_runtime *rt;
	struct net_server *srv;
	int rc = net_runtime_create(&rcfg, &rt);
	if (rc < 0) {
		fprintf(stderr, "echo_libnet: runtime: %s\n", net_strerror(rc));
		return 1;
	}
	rc = net_server_start(rt, &cfg, &srv);
	if (rc == 0)
		rc = net_runtime_start(rt);
	if (rc < 0) {
		fprintf(stderr, "echo_libnet: start: %s\n", net_strerror(rc));
		net_runtime_destroy(rt);
		return 1;
	}
	fprintf(stderr, "echo_libnet: engine %s\n", net_runtime_engine(rt));
	printf("listening %u\n", net_server_port(srv));
	fflush(stdout);

	int sig;
	sigwait(&stop, &sig);
	net_runtime_stop(rt);
	net_runtime_destroy(rt);
	return 0;
}
