/*
 * tls_load: the load generator of the TLS benchmark (bench/run_tls), on
 * libnet's client service, so plain and TLS connections are made by the
 * same code and differ only in the session config's TLS context.
 *
 *   tls_load --port P [--conns N] [--size B] [--duration S] [--warmup S]
 *            [--ca-file F] [--mode echo|full|resumed]
 *
 * echo:    N connections, each with one frame of B bytes in flight: every
 *          echo is checked and sent again (closed loop).
 * full:    N connections that each complete a handshake and one echo, then
 *          close and redial at once, never offering a ticket (a full TLS
 *          1.3 handshake every time).
 * resumed: the same, offering the last ticket (an abbreviated handshake).
 *
 * Without --ca-file it speaks plain TCP (echo only). The echo window opens
 * after the warmup once every connection has had an echo. "mark start" and "mark
 * end" are printed on stdout when the measurement window opens and closes
 * (the driver samples the server's CPU then), then one JSON line:
 * {"msgs": echoes in the window, "cycles": connections completed in the
 * window, "bad": wrong echoes, "tls_failures": handshakes that failed}.
 * One loop: the driver pins the generator to one core.
 */
#define _POSIX_C_SOURCE 200809L
#include <net/net.h>
#include <net/net_tls.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum mode { MODE_ECHO, MODE_FULL, MODE_RESUMED };

static enum mode mode = MODE_ECHO;
static size_t frame_size = 128;
static uint8_t *payload;
static atomic_ullong msgs, cycles, bad, tls_failures;
static atomic_uint ready;      /* echo: connections with an echo back */

static void on_connected(struct net_session *s)
{
	(void)net_session_send_frame(s, payload, frame_size);
}

static int on_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	bool *answered = net_session_user(s);

	if (len != frame_size || memcmp(body, payload, len) != 0)
		atomic_fetch_add(&bad, 1);
	if (!*answered) {
		*answered = true;
		atomic_fetch_add(&ready, 1);
	}
	atomic_fetch_add(&msgs, 1);
	if (mode != MODE_ECHO) {
		/* One handshake done: close, and the client service redials. */
		net_session_disconnect(s, NET_REASON_LOCAL);
		return 0;
	}
	return net_session_send_frame(s, payload, frame_size);
}

static void on_disconnected(struct net_session *s, enum net_reason reason)
{
	(void)s;
	if (reason == NET_REASON_LOCAL)
		atomic_fetch_add(&cycles, 1);
	else if (reason == NET_REASON_TLS)
		atomic_fetch_add(&tls_failures, 1);
}

static const struct net_session_ops load_ops = {
	.on_connected = on_connected,
	.on_frame = on_frame,
	.on_disconnected = on_disconnected,
};

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.sessions = 100,
		.backoff_min_ms = 1,
		.backoff_max_ms = 2,
		.session = { .ops = &load_ops, .max_frame = 65536, .user_size = sizeof(bool) },
	};
	struct net_runtime_config rcfg = { .loops = 1 };
	const char *ca_file = NULL;
	double duration = 2, warmup = 0.5;
	struct net_runtime *rt;
	struct net_client *cli;
	struct net_tls *tls = NULL;
	unsigned long long m0, c0, m1, c1;
	char err[256];
	int rc;

	for (int i = 1; i + 1 < argc; i += 2) {
		const char *v = argv[i + 1];

		if (!strcmp(argv[i], "--port"))
			cc.port = (uint16_t)atoi(v);
		else if (!strcmp(argv[i], "--conns"))
			cc.sessions = (unsigned)atoi(v);
		else if (!strcmp(argv[i], "--size"))
			frame_size = (size_t)atoi(v);
		else if (!strcmp(argv[i], "--duration"))
			duration = atof(v);
		else if (!strcmp(argv[i], "--warmup"))
			warmup = atof(v);
		else if (!strcmp(argv[i], "--ca-file"))
			ca_file = v;
		else if (!strcmp(argv[i], "--mode"))
			mode = !strcmp(v, "full") ? MODE_FULL : !strcmp(v, "resumed") ? MODE_RESUMED
										: MODE_ECHO;
	}
	payload = malloc(frame_size ? frame_size : 1);
	if (!payload || !cc.port || (mode != MODE_ECHO && !ca_file)) {
		fprintf(stderr, "usage: tls_load --port P [--conns N] [--size B] [--duration S] "
				"[--warmup S] [--ca-file F] [--mode echo|full|resumed]\n");
		return 2;
	}
	for (size_t i = 0; i < frame_size; i++)
		payload[i] = (uint8_t)(i * 13 + 1);
	if (ca_file) {
		rc = net_tls_client_create(ca_file, "localhost", err, sizeof(err), &tls);
		if (rc < 0) {
			fprintf(stderr, "tls_load: %s\n", err);
			return 1;
		}
		net_tls_client_resume(tls, mode != MODE_FULL);
		cc.session.tls = tls;
	}
	rc = net_runtime_create(&rcfg, &rt);
	if (rc == 0)
		rc = net_client_start(rt, &cc, &cli);
	if (rc == 0)
		rc = net_runtime_start(rt);
	if (rc < 0) {
		fprintf(stderr, "tls_load: %s\n", net_strerror(rc));
		return 1;
	}
	sleep_s(warmup);
	/* Echo: the window opens once every connection is up (a thousand TLS
	 * handshakes take the generator a while), at most 60 s later. */
	for (int i = 0; mode == MODE_ECHO && atomic_load(&ready) < cc.sessions && i < 6000; i++)
		sleep_s(0.01);
	m0 = atomic_load(&msgs);
	c0 = atomic_load(&cycles);
	printf("mark start\n");
	fflush(stdout);
	sleep_s(duration);
	m1 = atomic_load(&msgs);
	c1 = atomic_load(&cycles);
	printf("mark end\n");
	fflush(stdout);
	net_client_stop(cli);
	net_runtime_stop(rt);
	net_runtime_destroy(rt);
	net_tls_destroy(tls);
	printf("{\"msgs\": %llu, \"cycles\": %llu, \"bad\": %llu, \"tls_failures\": %llu, "
	       "\"seconds\": %.3f}\n",
	       m1 - m0, c1 - c0, (unsigned long long)atomic_load(&bad),
	       (unsigned long long)atomic_load(&tls_failures), duration);
	free(payload);
	return atomic_load(&bad) || atomic_load(&tls_failures) ? 1 : 0;
}
