/*
 * ringgate-cli over TLS (--ca-file, --tls): OpenSSL on the CLI's own
 * blocking socket. The CLI is a poll() loop on one socket and stdin, not a
 * libnet client service, so it speaks OpenSSL directly; the rules are the
 * same as libnet's client contexts (net_tls.h): TLS 1.3 only, the
 * certificate must chain to the CA file (or the system's CAs) and name the
 * host, and there is no way to skip the check.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli.h"

/* Why the handshake failed, as one line on stderr. */
static void report(SSL *ssl, const char *name)
{
	unsigned long e = ERR_peek_error();
	long verify = SSL_get_verify_result(ssl);

	if (verify != X509_V_OK)
		fprintf(stderr, "ringgate-cli: TLS: certificate of %s refused: %s\n", name,
			X509_verify_cert_error_string(verify));
	else
		fprintf(stderr, "ringgate-cli: TLS handshake with %s failed: %s\n", name,
			e ? ERR_reason_error_string(e) : "the connection closed");
	ERR_clear_error();
}

/* The expected name: an IP address is matched against the certificate's
 * IP entries, anything else against its DNS names (and sent as SNI). */
static int expect_name(SSL *ssl, const char *name)
{
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);

	if (ip) {
		ASN1_OCTET_STRING_free(ip);
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1 ? 0 : -1;
	}
	ERR_clear_error();
	return SSL_set1_host(ssl, name) == 1 && SSL_set_tlsext_host_name(ssl, name) == 1 ? 0 : -1;
}

SSL *cli_tls_connect(int fd, const char *ca_file, const char *name)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;

	if (!ctx)
		goto out_error;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/* A record without data (TLS 1.3's session tickets come after the
	 * handshake) must end SSL_read with WANT_READ: with auto-retry it
	 * would wait on the blocking socket for data that may never come,
	 * while the user's next command is not read (poll said readable). */
	SSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY);
	if (ca_file[0] ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
		       : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		fprintf(stderr, "ringgate-cli: TLS: cannot load the CA file %s: %s\n",
			ca_file[0] ? ca_file : "(system)", ERR_reason_error_string(ERR_peek_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	if (!ssl || expect_name(ssl, name) < 0 || SSL_set_fd(ssl, fd) != 1)
		goto out_error;
	if (SSL_connect(ssl) != 1) {
		report(ssl, name);
		SSL_free(ssl);
		return NULL;
	}
	return ssl;

out_error:
	fprintf(stderr, "ringgate-cli: TLS: %s\n", ERR_reason_error_string(ERR_peek_error()));
	SSL_free(ssl);
	return NULL;
}

long cli_tls_read(SSL *ssl, void *buf, size_t len)
{
	int n = SSL_read(ssl, buf, (int)len);

	if (n > 0)
		return n;
	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ: /* a record without data (a ticket) */
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -ECONNRESET;
	}
}

int cli_tls_write(SSL *ssl, const void *data, size_t len)
{
	/* Blocking socket: SSL_write returns once all of it is written. */
	if (SSL_write(ssl, data, (int)len) != (int)len) {
		ERR_clear_error();
		return -EPIPE;
	}
	return 0;
}

bool cli_tls_pending(SSL *ssl)
{
	return SSL_pending(ssl) > 0;
}

void cli_tls_close(SSL *ssl)
{
	(void)SSL_shutdown(ssl); /* close_notify; the peer's is not awaited */
	SSL_free(ssl);
}
