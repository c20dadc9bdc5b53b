/*
 * libnet tests. TLS (net_tls.h): handshake and echo, large transfers both
 * ways, resumption from a ticket, certificate reload, and the refusals: a
 * plaintext peer on a TLS listener, a TLS client on a plain listener, a
 * wrong CA, an expired certificate and a wrong host name, each ending with
 * NET_REASON_TLS and a clear net_session_tls_error.
 *
 * The certificates come from tools/tls-certs.sh, run once by the CTest
 * fixture libnet.tls_certs into the directory NET_TEST_CERTS names.
 */
#include "cases.h"

#include <net/net_tls.h>

#include <stdio.h>

/* A file of the certificate directory. */
static const char *cert(const char *name)
{
	static char paths[8][512];
	static unsigned next;
	const char *dir = getenv("NET_TEST_CERTS");
	char *p = paths[next++ % 8];

	if (!dir) {
		fprintf(stderr, "NET_TEST_CERTS is not set (the libnet.tls_certs fixture)\n");
		exit(TEST_SKIP);
	}
	snprintf(p, sizeof(paths[0]), "%s/%s", dir, name);
	return p;
}

static struct net_tls *server_tls(const char *name)
{
	char file[64], key[64], err[256] = "";
	struct net_tls *tls = NULL;
	int rc;

	snprintf(file, sizeof(file), "%s.pem", name);
	snprintf(key, sizeof(key), "%s.key", name);
	rc = net_tls_server_create(cert(file), cert(key), err, sizeof(err), &tls);
	if (rc)
		fprintf(stderr, "server context: %s\n", err);
	CHECK(rc == 0);
	return tls;
}

static struct net_tls *client_tls(const char *ca, const char *host)
{
	char err[256] = "";
	struct net_tls *tls = NULL;
	int rc = net_tls_client_create(cert(ca), host, err, sizeof(err), &tls);

	if (rc)
		fprintf(stderr, "client context: %s\n", err);
	CHECK(rc == 0);
	return tls;
}

/* ---- what each side saw -------------------------------------------------- */

struct side {
	atomic_int connected, established, disconnected, last_reason, resumed;
	atomic_ulong frames, bytes, bad;
	_Atomic net_session_id last_id;
	char error[256];              /* the first net_session_tls_error      */
	char version[16];
};
static struct side srv_side, cli_side;

static void note_end(struct side *side, struct net_session *s, enum net_reason reason)
{
	const char *err = net_session_tls_error(s);

	if (err && !side->error[0])
		snprintf(side->error, sizeof(side->error), "%s", err);
	atomic_store(&side->last_reason, (int)reason);
	atomic_fetch_add(&side->disconnected, 1);
}

/* Frames carry a pattern that depends on their length and index, so a
 * byte lost, doubled or reordered is seen. */
static void fill(uint8_t *buf, size_t len, unsigned seq)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 31 + seq * 7 + len);
}

static bool pattern_ok(const uint8_t *buf, size_t len, unsigned seq)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i] != (uint8_t)(i * 31 + seq * 7 + len))
			return false;
	return true;
}

/* Server: echo every frame, note how each session ended. */
static void srv_connected(struct net_session *s)
{
	atomic_store(&srv_side.last_id, net_session_get_id(s));
	atomic_fetch_add(&srv_side.connected, 1);
}

static int srv_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	if (!atomic_load(&srv_side.established)) {
		const char *v = net_session_tls_version(s);

		snprintf(srv_side.version, sizeof(srv_side.version), "%s", v ? v : "none");
		atomic_store(&srv_side.established, 1);
	}
	atomic_fetch_add(&srv_side.frames, 1);
	return net_session_send_frame(s, body, len);
}

static void srv_disconnected(struct net_session *s, enum net_reason reason)
{
	note_end(&srv_side, s, reason);
}

static const struct net_session_ops srv_ops = {
	.on_connected = srv_connected,
	.on_frame = srv_frame,
	.on_disconnected = srv_disconnected,
};

/* Client: on connect, send `frames` frames of `frame_len` bytes (before
 * the handshake is done: they wait for it), check each echo. */
static unsigned frames_to_send = 4;
static size_t frame_len = 100;

static void cli_connected(struct net_session *s)
{
	uint8_t *buf = malloc(frame_len);

	CHECK(buf != NULL);
	atomic_fetch_add(&cli_side.connected, 1);
	for (unsigned i = 0; i < frames_to_send; i++) {
		fill(buf, frame_len, i);
		CHECK_OK(net_session_send_frame(s, buf, frame_len));
	}
	free(buf);
}

static int cli_frame(struct net_session *s, const uint8_t *body, size_t len)
{
	unsigned long n = atomic_fetch_add(&cli_side.frames, 1);

	if (n == 0 && net_session_tls_resumed(s))
		atomic_fetch_add(&cli_side.resumed, 1);
	if (net_session_tls_established(s))
		atomic_store(&cli_side.established, 1);
	if (len != frame_len || !pattern_ok(body, len, (unsigned)(n % frames_to_send)))
		atomic_fetch_add(&cli_side.bad, 1);
	atomic_fetch_add(&cli_side.bytes, len);
	return 0;
}

static void cli_disconnected(struct net_session *s, enum net_reason reason)
{
	note_end(&cli_side, s, reason);
}

static const struct net_session_ops cli_ops = {
	.on_connected = cli_connected,
	.on_frame = cli_frame,
	.on_disconnected = cli_disconnected,
};

static struct net_server *tls_server(struct net_runtime *rt, struct net_tls *tls)
{
	struct net_session_config sc = { .ops = &srv_ops, .tls = tls, .max_frame = 1u << 20,
					 .send_queue_max = 32u << 20 };

	return start_server(rt, &sc, 0);
}

static struct net_client *tls_client(struct net_runtime *rt, uint16_t port, struct net_tls *tls)
{
	struct net_client_config cc = {
		.host = "127.0.0.1",
		.port = port,
		.backoff_min_ms = 50,
		.backoff_max_ms = 200,
		.session = { .ops = &cli_ops, .tls = tls, .max_frame = 1u << 20,
			     .send_queue_max = 32u << 20 },
	};
	struct net_client *cli;

	CHECK_OK(net_client_start(rt, &cc, &cli));
	return cli;
}

/* ---- cases ------------------------------------------------------------------ */

void test_tls_echo(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_tls *stls = server_tls("server"), *ctls = client_tls("ca.pem", "localhost");
	struct net_server *srv = tls_server(rt, stls);
	struct net_client *cli = tls_client(rt, net_server_port(srv), ctls);
	struct net_tls_stats st;

	WAIT_UNTIL(atomic_load(&cli_side.frames) == frames_to_send, 5000);
	CHECK(atomic_load(&cli_side.frames) == frames_to_send);
	CHECK(atomic_load(&cli_side.bad) == 0);
	CHECK(atomic_load(&cli_side.established) == 1);
	CHECK(strcmp(srv_side.version, "TLSv1.3") == 0);
	net_tls_get_stats(stls, &st);
	CHECK(st.handshakes == 1 && st.tls13 == 1 && st.resumed == 0);
	net_tls_get_stats(ctls, &st);
	CHECK(st.handshakes == 1);
	/* A clean end: the client's close_notify, then EOF. */
	net_client_stop(cli);
	WAIT_UNTIL(atomic_load(&srv_side.disconnected) == 1, 3000);
	CHECK(atomic_load(&srv_side.last_reason) == NET_REASON_PEER_CLOSED);
	CHECK(srv_side.error[0] == 0);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
	net_tls_destroy(ctls);
}

/* 16 MiB each way in frames of 256 KiB, queued at once: many records,
 * batches and partial sends, checked byte for byte. */
void test_tls_large_transfer(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_tls *stls = server_tls("server"), *ctls = client_tls("ca.pem", "127.0.0.1");
	struct net_server *srv = tls_server(rt, stls);
	struct net_client *cli;

	frames_to_send = 64;
	frame_len = 256u * 1024;
	cli = tls_client(rt, net_server_port(srv), ctls);
	WAIT_UNTIL(atomic_load(&cli_side.bytes) == (unsigned long)frames_to_send * frame_len, 30000);
	CHECK(atomic_load(&cli_side.frames) == frames_to_send);
	CHECK(atomic_load(&cli_side.bytes) == (unsigned long)frames_to_send * frame_len);
	CHECK(atomic_load(&cli_side.bad) == 0);
	CHECK(atomic_load(&srv_side.disconnected) == 0);
	net_client_stop(cli);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
	net_tls_destroy(ctls);
}

/* The server drops the client's session; the client service redials and
 * its frames come back again. */
static void redial(struct net_runtime *rt)
{
	atomic_store(&cli_side.frames, 0);
	CHECK_OK(net_disconnect_id(rt, atomic_load(&srv_side.last_id), NET_REASON_LOCAL));
	WAIT_UNTIL(atomic_load(&cli_side.frames) == frames_to_send, 5000);
	CHECK(atomic_load(&cli_side.frames) == frames_to_send);
}

/* A second dial offers the ticket of the first: an abbreviated handshake;
 * with net_tls_client_resume off, a full one again. */
void test_tls_resume(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_tls *stls = server_tls("server"), *ctls = client_tls("ca.pem", "localhost");
	struct net_server *srv = tls_server(rt, stls);
	struct net_client *cli = tls_client(rt, net_server_port(srv), ctls);
	struct net_tls_stats st;

	WAIT_UNTIL(atomic_load(&cli_side.frames) == frames_to_send, 5000);
	CHECK(atomic_load(&cli_side.resumed) == 0);
	redial(rt);
	CHECK(atomic_load(&cli_side.resumed) == 1);
	net_tls_get_stats(stls, &st);
	CHECK(st.handshakes == 2 && st.resumed == 1);
	/* With resumption off, the next dial is a full handshake again. */
	net_tls_client_resume(ctls, false);
	redial(rt);
	CHECK(atomic_load(&cli_side.resumed) == 1);
	net_tls_get_stats(stls, &st);
	CHECK(st.handshakes == 3 && st.resumed == 1);
	net_client_stop(cli);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
	net_tls_destroy(ctls);
}

/* Reload: the live session keeps working, new ones get the new
 * certificate; a bad reload changes nothing. */
void test_tls_reload(void)
{
	struct net_runtime *rt = test_runtime(2);
	struct net_tls *stls = server_tls("server"), *ctls = client_tls("ca.pem", "localhost");
	struct net_server *srv = tls_server(rt, stls);
	struct net_client *cli = tls_client(rt, net_server_port(srv), ctls);
	struct net_client *cli2;
	struct net_tls_stats st;
	char err[256] = "";

	WAIT_UNTIL(atomic_load(&cli_side.frames) == frames_to_send, 5000);
	CHECK(net_tls_reload(stls, cert("missing.pem"), cert("server2.key"), err, sizeof(err)) ==
	      -EINVAL);
	fprintf(stderr, "bad reload: %s\n", err);
	CHECK(strstr(err, "missing.pem") != NULL);
	CHECK(net_tls_reload(stls, cert("server2.pem"), cert("server.key"), err, sizeof(err)) ==
	      -EINVAL);
	fprintf(stderr, "mismatched reload: %s\n", err);
	CHECK_OK(net_tls_reload(stls, cert("server2.pem"), cert("server2.key"), err, sizeof(err)));
	cli2 = tls_client(rt, net_server_port(srv), ctls);
	WAIT_UNTIL(atomic_load(&cli_side.frames) == 2 * frames_to_send, 5000);
	CHECK(atomic_load(&cli_side.frames) == 2 * frames_to_send);
	CHECK(atomic_load(&srv_side.disconnected) == 0);
	CHECK(atomic_load(&cli_side.bad) == 0);
	net_tls_get_stats(stls, &st);
	CHECK(st.reloads == 1 && st.handshakes == 2);
	/* The second connection resumed with a ticket from before the reload. */
	CHECK(st.resumed == 1);
	net_client_stop(cli);
	net_client_stop(cli2);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
	net_tls_destroy(ctls);
}

/* A plaintext peer on a TLS listener: cut off with NET_REASON_TLS; it
 * reads EOF (no hang, no reset). */
void test_tls_plain_client_refused(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_tls *stls = server_tls("server");
	struct net_server *srv = tls_server(rt, stls);
	int fd = test_connect(net_server_port(srv));
	struct net_tls_stats st;

	CHECK(test_write_frame(fd, "hello in clear", 14) == 0);
	/* Not TLS at all: OpenSSL sends no alert (no version to send it in),
	 * just the EOF, at once. */
	CHECK(test_read_until_eof(fd, 3000) == 0);
	close(fd);
	WAIT_UNTIL(atomic_load(&srv_side.disconnected) == 1, 3000);
	fprintf(stderr, "server: %s\n", srv_side.error);
	CHECK(atomic_load(&srv_side.last_reason) == NET_REASON_TLS);
	CHECK(strstr(srv_side.error, "protocol") != NULL);
	net_tls_get_stats(stls, &st);
	CHECK(st.failures[NET_TLS_FAIL_PROTOCOL] == 1 && st.handshakes == 0);
	CHECK(stats_of(rt).disconnects[NET_REASON_TLS] == 1);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
}

/* A TLS client on a plain listener: the listener cuts it off for a bad
 * frame, the client ends with NET_REASON_TLS ("closed during the
 * handshake"). */
void test_tls_client_on_plain_server(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_tls *ctls = client_tls("ca.pem", "localhost");
	/* Frames of at most 16 bytes: the ClientHello's record header (0x16,
	 * read as a 22-byte frame) is refused at once, not waited on. */
	struct net_session_config sc = { .ops = &echo_ops, .max_frame = 16 };
	struct net_server *srv = start_server(rt, &sc, 0);
	struct net_client *cli = tls_client(rt, net_server_port(srv), ctls);

	WAIT_UNTIL(atomic_load(&cli_side.disconnected) >= 1 && atomic_load(&seen.disconnected) >= 1,
		   5000);
	net_client_stop(cli);
	fprintf(stderr, "client: %s\n", cli_side.error);
	CHECK(atomic_load(&cli_side.disconnected) >= 1);
	CHECK(strstr(cli_side.error, "during the TLS handshake") != NULL);
	CHECK(atomic_load(&seen.last_reason) == NET_REASON_FRAME_TOO_LARGE);
	CHECK(stats_of(rt).disconnects[NET_REASON_TLS] >= 1);
	CHECK(atomic_load(&cli_side.frames) == 0);
	release_seen_session();
	net_runtime_destroy(rt);
	net_tls_destroy(ctls);
}

/* A refused certificate: the client ends with NET_REASON_TLS and
 * `client_error` in its error; the server hears `server_error` (an alert). */
static void refused(const char *server_cert, const char *ca, const char *host,
		    const char *client_error, const char *server_error)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_tls *stls = server_tls(server_cert), *ctls = client_tls(ca, host);
	struct net_server *srv = tls_server(rt, stls);
	struct net_client *cli = tls_client(rt, net_server_port(srv), ctls);
	struct net_tls_stats st;

	WAIT_UNTIL(atomic_load(&cli_side.disconnected) >= 1 && atomic_load(&srv_side.disconnected) >= 1,
		   5000);
	net_client_stop(cli);
	fprintf(stderr, "client: %s\nserver: %s\n", cli_side.error, srv_side.error);
	CHECK(atomic_load(&cli_side.last_reason) == NET_REASON_TLS);
	CHECK(strstr(cli_side.error, client_error) != NULL);
	CHECK(atomic_load(&srv_side.last_reason) == NET_REASON_TLS);
	CHECK(strstr(srv_side.error, server_error) != NULL);
	CHECK(atomic_load(&cli_side.frames) == 0 && atomic_load(&srv_side.frames) == 0);
	net_tls_get_stats(ctls, &st);
	CHECK(st.failures[NET_TLS_FAIL_VERIFY] >= 1 && st.handshakes == 0);
	net_tls_get_stats(stls, &st);
	CHECK(st.failures[NET_TLS_FAIL_PEER_ALERT] >= 1);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
	net_tls_destroy(ctls);
}

void test_tls_wrong_ca(void)
{
	refused("server", "other-ca.pem", "localhost",
		"certificate verify failed: unable to get local issuer certificate", "unknown ca");
}

void test_tls_expired_cert(void)
{
	refused("expired", "ca.pem", "localhost", "certificate verify failed: certificate has expired",
		"certificate expired");
}

void test_tls_wrong_host(void)
{
	refused("wrong-host", "ca.pem", "localhost", "certificate verify failed: hostname mismatch",
		"bad certificate");
}

/* A peer that connects to a TLS listener and never finishes its handshake
 * (here: sends nothing, then half a ClientHello) is cut off at the
 * frame deadline, as a slowloris frame would be. */
void test_tls_handshake_deadline(void)
{
	struct net_runtime *rt = test_runtime(1);
	struct net_tls *stls = server_tls("server");
	struct net_session_config sc = { .ops = &srv_ops, .tls = stls, .frame_timeout_ms = 300 };
	struct net_server *srv = start_server(rt, &sc, 0);
	static const uint8_t half_hello[] = { 0x16, 0x03, 0x01, 0x00, 0xee, 0x01, 0x00 };
	unsigned long long t0 = test_now_ms();
	int silent = test_connect(net_server_port(srv));
	int dribbler = test_connect(net_server_port(srv));

	CHECK(test_write_all(dribbler, half_hello, sizeof(half_hello)) == 0);
	CHECK(test_read_until_eof(silent, 5000) >= 0);
	CHECK(test_read_until_eof(dribbler, 5000) >= 0);
	fprintf(stderr, "both cut off after %llu ms\n", test_now_ms() - t0);
	CHECK(test_now_ms() - t0 < 3000);
	WAIT_UNTIL(atomic_load(&srv_side.disconnected) == 2, 3000);
	CHECK(stats_of(rt).disconnects[NET_REASON_FRAME_TIMEOUT] == 2);
	close(silent);
	close(dribbler);
	net_runtime_destroy(rt);
	net_tls_destroy(stls);
}
