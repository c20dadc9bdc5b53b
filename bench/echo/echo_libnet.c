/*
 * echo_libnet: the echo benchmark's server on libnet. libnet does the
 * framing (on_frame) and the gathering of queued frames into one send per
 * session per loop turn; this file only echoes each frame back. One loop,
 * because the benchmark pins every server to one core. The engine is
 * libnet's choice, or RINGGATE_ENGINE=uring|epoll.
 *
 * Usage: echo_libnet [--host ADDR] [--port N] [--tls-cert F --tls-key F];
 * prints "listening PORT" on stdout and the engine on stderr, then serves
 * until SIGINT/SIGTERM. With a certificate and key (libnet built with
 * TLS), clients must speak TLS 1.3 (bench/run_tls); at exit it prints the
 * TLS context's handshake counts on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <net/net.h>
#ifdef NET_HAVE_TLS
#include <net/net_tls.h>
#endif

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
	const char *cert = NULL, *key = NULL;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--host"))
			cfg.host = argv[i + 1];
		else if (!strcmp(argv[i], "--port"))
			cfg.port = (uint16_t)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--tls-cert"))
			cert = argv[i + 1];
		else if (!strcmp(argv[i], "--tls-key"))
			key = argv[i + 1];
	}
	if (cert || key) {
#ifdef NET_HAVE_TLS
		char err[256];
		int trc = net_tls_server_create(cert, key, err, sizeof(err), &cfg.session.tls);

		if (trc < 0) {
			fprintf(stderr, "echo_libnet: TLS: %s\n", err);
			return 1;
		}
#else
		fprintf(stderr, "echo_libnet: libnet was built without TLS\n");
		return 1;
#endif
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
#ifdef NET_HAVE_TLS
	if (cfg.session.tls) {
		struct net_tls_stats st;

		net_tls_get_stats(cfg.session.tls, &st);
		fprintf(stderr, "echo_libnet: TLS handshakes %llu (resumed %llu)\n",
			(unsigned long long)st.handshakes, (unsigned long long)st.resumed);
		net_tls_destroy(cfg.session.tls);
	}
#endif
	return 0;
}
