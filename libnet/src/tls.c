/*
 * TLS on the completion model (net_tls.h has the contract): OpenSSL 3 with
 * memory BIOs, so OpenSSL never sees the socket and nothing blocks.
 *
 * Per session (struct net__tls_conn, made when the session connects):
 *
 *   engine RECV --(rbio reads it in place)--> SSL_do_handshake / SSL_read
 *                                                   --> plaintext
 *                                                   --> net__recv_data()
 *   sq (plaintext) --SSL_write--> wbio --BIO_read--> out --> engine SEND
 *
 * Encryption happens only when the previous records are all sent (out is
 * empty), in batches of at most NET__TLS_BATCH plaintext bytes, so the
 * plaintext that the peer does not take stays in the send queue and the
 * session's send_queue_max keeps its meaning; out holds one batch at most.
 *
 * States of a connection: handshaking -> established (counted once), or
 * failed (an error string is kept, the session ends with NET_REASON_TLS
 * after the alert OpenSSL wrote is flushed). A graceful disconnect of an
 * established session writes close_notify after the last plaintext.
 *
 * Contexts (struct net_tls) are shared by every loop: the current SSL_CTX is
 * swapped under a mutex by net_tls_reload; an SSL object keeps a reference
 * to the SSL_CTX it was made from, so live connections keep theirs. The
 * counters are relaxed atomics written by several loops.
 */
#include "internal.h"

#include "net/net_tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Plaintext bytes encrypted per send at most. */
#define NET__TLS_BATCH (256u * 1024)
/* An out buffer larger than this is freed once its records are sent. */
#define NET__TLS_OUT_KEEP (64u * 1024)
/* A session quiet this long gives its OpenSSL record buffers back; its
 * place in the loop's list is refreshed at most every NET__TLS_WARM_STEP_MS
 * (a busy session does not touch its neighbours for every record). */
#define NET__TLS_WARM_MS 1000u
#define NET__TLS_WARM_STEP_MS 100u

struct net_tls {
	bool server;
	pthread_mutex_t lock;         /* guards ctx and resume                */
	BIO_METHOD *recv_method;      /* rbio of every connection (recv_bio_*) */
	SSL_CTX *ctx;                 /* for new connections                  */
	SSL_SESSION *resume;          /* client: the last session (ticket)    */
	char *host;                   /* client: the name the peer must have  */
	bool host_is_ip;
	atomic_bool no_resume;        /* client: never offer `resume`         */
	_Atomic uint64_t handshakes, resumed, tls13, reloads;
	_Atomic uint64_t failures[NET_TLS_FAIL_COUNT];
};

struct net__tls_conn {
	struct net_tls *tls;
	SSL *ssl;
	BIO *rbio, *wbio;             /* network side of the SSL object       */
	const uint8_t *in;            /* rbio's bytes: the RECV being handled */
	size_t in_len;
	uint8_t *out;                 /* records handed to the engine         */
	size_t out_off, out_len, out_cap;
	struct net_loop *loop;
	struct net__tls_conn *warm_prev, *warm_next; /* loop's warm list      */
	uint64_t active_ms;           /* last record in or out                */
	bool warm;                    /* on the loop's warm list              */
	bool established, failed, notify_sent;
	char err[192];
};

#define TLS_COUNT(field) atomic_fetch_add_explicit(&(field), 1, memory_order_relaxed)

const char *net_tls_failure_str(enum net_tls_failure f)
{
	static const char *const names[NET_TLS_FAIL_COUNT] = {
		[NET_TLS_FAIL_VERIFY] = "verify",
		[NET_TLS_FAIL_PEER_ALERT] = "peer_alert",
		[NET_TLS_FAIL_PROTOCOL] = "protocol",
		[NET_TLS_FAIL_CLOSED] = "closed",
		[NET_TLS_FAIL_OTHER] = "other",
	};

	return (unsigned)f < NET_TLS_FAIL_COUNT ? names[f] : "unknown";
}

/* ---- the receive BIO --------------------------------------------------------- */

/*
 * OpenSSL reads records straight from the engine's receive buffer, with no
 * copy into a memory BIO: net__tls_recv points c->in at the completion's
 * bytes and consumes them all before it returns (OpenSSL keeps a partial
 * record in its own buffer), then clears it. Empty means "wait for more".
 */
static int recv_bio_read(BIO *b, char *out, size_t len, size_t *got)
{
	struct net__tls_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (!c->in_len) {
		BIO_set_retry_read(b);
		*got = 0;
		return 0;
	}
	if (len > c->in_len)
		len = c->in_len;
	memcpy(out, c->in, len);
	c->in += len;
	c->in_len -= len;
	*got = len;
	return 1;
}

static long recv_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct net__tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_PENDING:
		return (long)c->in_len;
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static BIO_METHOD *recv_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "libnet recv");

	if (m && (BIO_meth_set_read_ex(m, recv_bio_read) != 1 ||
		  BIO_meth_set_ctrl(m, recv_bio_ctrl) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	return m;
}

/* ---- contexts ------------------------------------------------------------- */

/* The oldest OpenSSL error as text into err (then the queue is cleared). */
static void openssl_error(char *err, size_t size, const char *what, const char *file)
{
	unsigned long e = ERR_peek_error();
	const char *why = e ? ERR_reason_error_string(e) : NULL;

	if (err && size)
		snprintf(err, size, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
			 why ? why : "unknown error");
	ERR_clear_error();
}

/* A client stores the session the server just issued (a TLS 1.3 ticket
 * arrives after the handshake), for the next dial to offer. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct net_tls *tls = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	pthread_mutex_lock(&tls->lock);
	if (tls->resume)
		SSL_SESSION_free(tls->resume);
	tls->resume = sess;
	pthread_mutex_unlock(&tls->lock);
	return 1; /* we keep the reference */
}

/* An SSL_CTX with what every context shares: TLS 1.3 only, small idle
 * connections. */
static SSL_CTX *ctx_new(struct net_tls *tls, char *err, size_t size)
{
	SSL_CTX *ctx = SSL_CTX_new(tls->server ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		openssl_error(err, size, "SSL_CTX_new", NULL);
		return NULL;
	}
	SSL_CTX_set_app_data(ctx, tls);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	/* No SSL_MODE_RELEASE_BUFFERS: it frees and mallocs both 17 KiB
	 * record buffers for every record (an eighth of the TLS cost of a
	 * small message). An idle session gives them back instead (warm()). */
	return ctx;
}

static SSL_CTX *server_ctx_new(struct net_tls *tls, const char *cert_file, const char *key_file,
			       char *err, size_t size)
{
	SSL_CTX *ctx = ctx_new(tls, err, size);

	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		openssl_error(err, size, "certificate", cert_file);
		goto out_free;
	}
	/* Also checks that the key is the certificate's ("key values mismatch"). */
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		openssl_error(err, size, "private key", key_file);
		goto out_free;
	}
	/* TLS 1.3 tickets are stateless: no server-side session cache to grow.
	 * One ticket per handshake: a client offers one. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 1);
	/* AES-128-GCM with SHA-256 first: with AES-NI and SHA-NI its handshake
	 * (transcript hash, HKDF) costs less than AES-256-GCM-SHA384's, which
	 * OpenSSL clients list first. A client that lists ChaCha20 first
	 * (no AES in hardware) still gets it. */
	if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"
					  "TLS_AES_256_GCM_SHA384") != 1) {
		openssl_error(err, size, "ciphersuites", NULL);
		goto out_free;
	}
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
	return ctx;

out_free:
	SSL_CTX_free(ctx);
	return NULL;
}

static int tls_alloc(bool server, struct net_tls **out)
{
	struct net_tls *tls = calloc(1, sizeof(*tls));

	if (!tls)
		return -ENOMEM;
	tls->server = server;
	tls->recv_method = recv_method_new();
	if (!tls->recv_method) {
		free(tls);
		return -ENOMEM;
	}
	pthread_mutex_init(&tls->lock, NULL);
	*out = tls;
	return 0;
}

int net_tls_server_create(const char *cert_file, const char *key_file, char *err,
			  size_t err_size, struct net_tls **out)
{
	struct net_tls *tls;

	if (!cert_file || !key_file)
		return -EINVAL;
	if (tls_alloc(true, &tls))
		return -ENOMEM;
	tls->ctx = server_ctx_new(tls, cert_file, key_file, err, err_size);
	if (!tls->ctx) {
		net_tls_destroy(tls);
		return -EINVAL;
	}
	*out = tls;
	return 0;
}

int net_tls_client_create(const char *ca_file, const char *host_name, char *err,
			  size_t err_size, struct net_tls **out)
{
	struct net_tls *tls;
	ASN1_OCTET_STRING *ip;

	if (!ca_file || !host_name || !*host_name)
		return -EINVAL;
	if (tls_alloc(false, &tls))
		return -ENOMEM;
	tls->host = strdup(host_name);
	tls->ctx = tls->host ? ctx_new(tls, err, err_size) : NULL;
	if (!tls->ctx) {
		net_tls_destroy(tls);
		return -ENOMEM;
	}
	if (SSL_CTX_load_verify_locations(tls->ctx, ca_file, NULL) != 1) {
		openssl_error(err, err_size, "CA file", ca_file);
		net_tls_destroy(tls);
		return -EINVAL;
	}
	SSL_CTX_set_verify(tls->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(tls->ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(tls->ctx, new_session_cb);
	ip = a2i_IPADDRESS(host_name);
	tls->host_is_ip = ip != NULL;
	ASN1_OCTET_STRING_free(ip);
	ERR_clear_error();
	*out = tls;
	return 0;
}

void net_tls_client_resume(struct net_tls *tls, bool on)
{
	atomic_store(&tls->no_resume, !on);
}

int net_tls_reload(struct net_tls *tls, const char *cert_file, const char *key_file, char *err,
		   size_t err_size)
{
	unsigned char keys[80];
	SSL_CTX *ctx, *old;

	if (!tls->server || !cert_file || !key_file) {
		if (err && err_size)
			snprintf(err, err_size, "reload: not a server context");
		return -EINVAL;
	}
	ctx = server_ctx_new(tls, cert_file, key_file, err, err_size);
	if (!ctx)
		return -EINVAL;
	pthread_mutex_lock(&tls->lock);
	old = tls->ctx;
	/* The ticket keys carry over: tickets issued before stay good. */
	if (SSL_CTX_get_tlsext_ticket_keys(old, keys, sizeof(keys)) == 1)
		SSL_CTX_set_tlsext_ticket_keys(ctx, keys, sizeof(keys));
	tls->ctx = ctx;
	pthread_mutex_unlock(&tls->lock);
	OPENSSL_cleanse(keys, sizeof(keys));
	SSL_CTX_free(old); /* live connections hold their own reference */
	TLS_COUNT(tls->reloads);
	return 0;
}

void net_tls_get_stats(struct net_tls *tls, struct net_tls_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->handshakes = atomic_load_explicit(&tls->handshakes, memory_order_relaxed);
	out->resumed = atomic_load_explicit(&tls->resumed, memory_order_relaxed);
	out->tls13 = atomic_load_explicit(&tls->tls13, memory_order_relaxed);
	out->reloads = atomic_load_explicit(&tls->reloads, memory_order_relaxed);
	for (unsigned i = 0; i < NET_TLS_FAIL_COUNT; i++)
		out->failures[i] = atomic_load_explicit(&tls->failures[i], memory_order_relaxed);
}

void net_tls_destroy(struct net_tls *tls)
{
	if (!tls)
		return;
	SSL_CTX_free(tls->ctx);
	if (tls->resume)
		SSL_SESSION_free(tls->resume);
	free(tls->host);
	BIO_meth_free(tls->recv_method);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
}

/* ---- connections ---------------------------------------------------------- */

static void warm_unlink(struct net__tls_conn *c)
{
	struct net_loop *loop = c->loop;

	if (!c->warm)
		return;
	*(c->warm_prev ? &c->warm_prev->warm_next : &loop->tls_warm_head) = c->warm_next;
	*(c->warm_next ? &c->warm_next->warm_prev : &loop->tls_warm_tail) = c->warm_prev;
	c->warm_prev = c->warm_next = NULL;
	c->warm = false;
}

/*
 * c moved records: it is the loop's most recently active TLS session, and
 * it may hold OpenSSL's record buffers. Sessions quiet for about
 * NET__TLS_WARM_MS (to within NET__TLS_WARM_STEP_MS; the head of the list)
 * give theirs back, so an idle session holds no record buffer while a busy
 * one does not pay malloc/free per record. The sweep rides on traffic: a
 * loop with no TLS traffic at all keeps the buffers of the sessions active
 * in its last second.
 */
static void warm(struct net__tls_conn *c)
{
	struct net_loop *loop = c->loop;
	struct net__tls_conn *old;

	if (c->warm && loop->now_ms - c->active_ms < NET__TLS_WARM_STEP_MS)
		return;
	c->active_ms = loop->now_ms;
	if (loop->tls_warm_tail != c) {
		warm_unlink(c);
		c->warm_prev = loop->tls_warm_tail;
		*(c->warm_prev ? &c->warm_prev->warm_next : &loop->tls_warm_head) = c;
		loop->tls_warm_tail = c;
		c->warm = true;
	}
	while ((old = loop->tls_warm_head) != c && loop->now_ms - old->active_ms >= NET__TLS_WARM_MS) {
		warm_unlink(old);
		/* Refused (kept) while a partial record is buffered. */
		(void)SSL_free_buffers(old->ssl);
	}
}

int net__tls_open(struct net_session *s)
{
	struct net_tls *tls = s->service->cfg.tls;
	struct net__tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->tls = tls;
	c->loop = s->loop;
	pthread_mutex_lock(&tls->lock);
	c->ssl = SSL_new(tls->ctx);
	if (c->ssl && tls->resume && !atomic_load(&tls->no_resume))
		SSL_set_session(c->ssl, tls->resume);
	pthread_mutex_unlock(&tls->lock);
	c->rbio = BIO_new(tls->recv_method);
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->rbio || !c->wbio)
		goto out_free;
	BIO_set_data(c->rbio, c);
	BIO_set_init(c->rbio, 1);
	SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns them now */
	s->tls = c;
	if (tls->server) {
		SSL_set_accept_state(c->ssl);
		return 0;
	}
	SSL_set_connect_state(c->ssl);
	if (tls->host_is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), tls->host) != 1)
			goto out_detach;
	} else if (SSL_set1_host(c->ssl, tls->host) != 1 ||
		   SSL_set_tlsext_host_name(c->ssl, tls->host) != 1) {
		goto out_detach;
	}
	/* The ClientHello goes into wbio: the caller sends it. */
	net__tls_recv(s, NULL, 0);
	return 0;

out_detach:
	s->tls = NULL;
	c->rbio = c->wbio = NULL;
out_free:
	ERR_clear_error();
	SSL_free(c->ssl);
	BIO_free(c->rbio);
	BIO_free(c->wbio);
	free(c);
	return -ENOMEM;
}

void net__tls_close(struct net_session *s)
{
	struct net__tls_conn *c = s->tls;

	if (!c)
		return;
	warm_unlink(c);
	SSL_free(c->ssl);
	free(c->out);
	free(c);
	s->tls = NULL;
}

/* End the session for a TLS failure: keep why, count it, and close
 * gracefully so the alert OpenSSL wrote reaches the peer. */
static void tls_fail(struct net_session *s, enum net_tls_failure why, const char *fmt,
		     const char *detail)
{
	struct net__tls_conn *c = s->tls;

	if (c->failed)
		return;
	c->failed = true;
	snprintf(c->err, sizeof(c->err), fmt, detail);
	if (!c->established)
		TLS_COUNT(c->tls->failures[why]);
	ERR_clear_error();
	net_session_disconnect(s, NET_REASON_TLS);
}

/* An SSL call failed with SSL_ERROR_SSL (or SYSCALL): say why, by class. */
static void tls_fail_ssl(struct net_session *s)
{
	struct net__tls_conn *c = s->tls;
	unsigned long e = ERR_peek_error();
	int reason = ERR_GET_REASON(e);
	const char *text = e ? ERR_reason_error_string(e) : NULL;
	long verify = SSL_get_verify_result(c->ssl);

	if (!text)
		text = "unknown error";
	if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason == SSL_R_CERTIFICATE_VERIFY_FAILED &&
	    verify != X509_V_OK)
		tls_fail(s, NET_TLS_FAIL_VERIFY, "certificate verify failed: %s",
			 X509_verify_cert_error_string(verify));
	else if (ERR_GET_LIB(e) == ERR_LIB_SSL && reason >= SSL_AD_REASON_OFFSET)
		tls_fail(s, NET_TLS_FAIL_PEER_ALERT, "peer alert: %s", text);
	else if (ERR_GET_LIB(e) == ERR_LIB_SSL)
		tls_fail(s, NET_TLS_FAIL_PROTOCOL, "protocol: %s", text);
	else
		tls_fail(s, NET_TLS_FAIL_OTHER, "%s", text);
}

/* An empty error queue before an SSL call, as SSL_get_error needs. Peek
 * first: ERR_clear_error wipes every slot of the queue each time, a cost
 * paid twice per echoed message. */
static void errors_clear(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

/* The handshake just completed: count it once. */
static void established(struct net__tls_conn *c)
{
	c->established = true;
	TLS_COUNT(c->tls->handshakes);
	if (SSL_session_reused(c->ssl))
		TLS_COUNT(c->tls->resumed);
	if (SSL_version(c->ssl) == TLS1_3_VERSION)
		TLS_COUNT(c->tls->tls13);
}

/* Handshake, then decrypt, what rbio holds (c->in). */
static void recv_records(struct net_session *s)
{
	struct net__tls_conn *c = s->tls;
	uint8_t plain[16384];

	if (!c->established) {
		int rc = SSL_do_handshake(c->ssl);

		if (rc != 1) {
			int e = SSL_get_error(c->ssl, rc);

			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
				tls_fail_ssl(s);
			return;
		}
		established(c);
	}
	while (s->state == NET__S_CONNECTED) {
		int n = SSL_read(c->ssl, plain, sizeof(plain));

		if (n > 0) {
			net__recv_data(s, plain, (size_t)n);
			/* Nothing buffered: skip the SSL_read that would only say
			 * WANT_READ (a tenth of the TLS cost of a small message). */
			if (!SSL_has_pending(c->ssl) && BIO_ctrl_pending(c->rbio) == 0)
				return;
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			return;
		case SSL_ERROR_ZERO_RETURN: /* close_notify: the TCP EOF follows */
			net_session_disconnect(s, NET_REASON_PEER_CLOSED);
			return;
		default:
			tls_fail_ssl(s);
			return;
		}
	}
}

void net__tls_recv(struct net_session *s, const uint8_t *data, size_t len)
{
	struct net__tls_conn *c = s->tls;

	errors_clear();
	if (len) {
		s->last_recv_ms = s->loop->now_ms; /* handshake bytes count as life */
		warm(c);
	}
	c->in = data;
	c->in_len = len;
	recv_records(s);
	/* What a session that ended (or failed) did not read is dropped. */
	c = s->tls;
	if (c) {
		c->in = NULL;
		c->in_len = 0;
	}
}

enum net_reason net__tls_eof_reason(struct net_session *s)
{
	struct net__tls_conn *c = s->tls;

	if (c->established || c->failed || s->state != NET__S_CONNECTED)
		return NET_REASON_PEER_CLOSED;
	tls_fail(s, NET_TLS_FAIL_CLOSED, "%s",
		 "the peer closed the connection during the TLS handshake");
	return NET_REASON_TLS;
}

bool net__tls_pending(const struct net_session *s)
{
	const struct net__tls_conn *c = s->tls;

	return c->out_off < c->out_len || BIO_ctrl_pending(c->wbio) > 0 ||
	       (s->state == NET__S_CLOSING && c->established && !c->failed && !c->notify_sent);
}

/* Encrypt up to NET__TLS_BATCH bytes of queued plaintext into wbio. */
static void encrypt_queued(struct net_session *s)
{
	struct net__tls_conn *c = s->tls;
	struct iovec iov[NET__SEND_IOV_MAX];
	unsigned n = net__sq_gather(s, iov, NET__SEND_IOV_MAX);
	size_t done = 0;

	for (unsigned i = 0; i < n && done < NET__TLS_BATCH; i++) {
		size_t take = iov[i].iov_len;

		if (take > NET__TLS_BATCH - done)
			take = NET__TLS_BATCH - done;
		/* A memory BIO takes everything: SSL_write writes all or fails. */
		if (SSL_write(c->ssl, iov[i].iov_base, (int)take) != (int)take) {
			net__sq_consume(s, done);
			tls_fail_ssl(s);
			return;
		}
		done += take;
	}
	net__sq_consume(s, done);
}

size_t net__tls_next_send(struct net_session *s, const uint8_t **out)
{
	struct net__tls_conn *c = s->tls;
	size_t pending;

	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		errors_clear();
		if (c->established && !c->failed && s->sq_bytes) {
			warm(c);
			encrypt_queued(s);
		}
		if (!c->established || c->failed) {
			/* Plaintext that can never be encrypted once closing. */
			if (s->state != NET__S_CONNECTED)
				net__sq_free(s);
		} else if (s->state == NET__S_CLOSING && !s->sq_bytes && !c->notify_sent) {
			c->notify_sent = true;
			(void)SSL_shutdown(c->ssl); /* close_notify into wbio */
		}
		pending = BIO_ctrl_pending(c->wbio);
		if (pending > c->out_cap) {
			uint8_t *buf = realloc(c->out, pending);

			if (!buf) {
				net__session_fail(s, NET_REASON_IO_ERROR, -ENOMEM);
				return 0;
			}
			c->out = buf;
			c->out_cap = pending;
		}
		if (pending)
			c->out_len = (size_t)BIO_read(c->wbio, c->out, (int)pending);
	}
	*out = c->out + c->out_off;
	return c->out_len - c->out_off;
}

void net__tls_sent(struct net_session *s, size_t sent)
{
	struct net__tls_conn *c = s->tls;

	c->out_off += sent;
	if (c->out_off < c->out_len)
		return;
	c->out_off = c->out_len = 0;
	if (c->out_cap > NET__TLS_OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
}

/* ---- accessors ------------------------------------------------------------ */

bool net__tls_handshaking(const struct net_session *s)
{
	return !s->tls->established && !s->tls->failed;
}

bool net_session_tls_established(const struct net_session *s)
{
	return s->tls && s->tls->established;
}

const char *net_session_tls_version(const struct net_session *s)
{
	return net_session_tls_established(s) ? SSL_get_version(s->tls->ssl) : NULL;
}

bool net_session_tls_resumed(const struct net_session *s)
{
	return net_session_tls_established(s) && SSL_session_reused(s->tls->ssl);
}

const char *net_session_tls_error(const struct net_session *s)
{
	return s->tls && s->tls->failed ? s->tls->err : NULL;
}
