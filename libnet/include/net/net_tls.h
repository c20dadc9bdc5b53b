/*
 * libnet TLS: TLS 1.3 (OpenSSL 3) on libnet's completion model.
 *
 * An optional module: it is built when OpenSSL is found at configure time
 * (NET_HAVE_TLS is then defined for libnet's users too); the Windows cross
 * build has no OpenSSL and leaves it out, and a session config that names
 * a TLS context there cannot be made.
 *
 * How it runs: no socket call ever blocks and OpenSSL never touches the
 * socket. Each session has an SSL object that reads the engine's receive
 * completions in place (a read BIO of libnet's) and SSL_read
 * hands the plaintext to on_recv / on_frame exactly as for a plain
 * session; at the end of the loop turn, when no send is in flight, the
 * plaintext queued by net_session_send* is encrypted (SSL_write) and the
 * records, with any handshake bytes, are what the engine sends.
 *
 * Use: create a context with net_tls_server_create (certificate and key
 * files) or net_tls_client_create (a CA file and the host name the peer's
 * certificate must name), and set it as net_session_config.tls of a server
 * or client service. The context must outlive the runtime (destroy it
 * after net_runtime_destroy). One context may serve several services.
 *
 * Sessions of a TLS service: on_connected runs when the TCP connection is
 * up and the handshake starts right after; sends made before it completes
 * are queued in plaintext and encrypted once it has. A handshake that fails
 * (the peer's certificate is not trusted, expired or names another host; the
 * peer does not speak TLS 1.3; the peer closes during the handshake) ends
 * the session with NET_REASON_TLS, after sending the peer TLS's alert;
 * net_session_tls_error() says why. Sessions end with a close_notify
 * alert before the TCP shutdown. on_sent counts bytes on the wire (records).
 *
 * Session tickets are on: a client context keeps the last session its
 * server gave it and offers it on the next dial, so a reconnect costs an
 * abbreviated handshake (net_session_tls_resumed tells).
 *
 * Threads: contexts may be used by every loop at once; net_tls_reload may
 * be called from any thread while sessions run.
 */
#ifndef NET_NET_TLS_H
#define NET_NET_TLS_H

#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

struct net_tls;

/* Why a handshake failed, by class (the counters of struct net_tls_stats). */
enum net_tls_failure {
	NET_TLS_FAIL_VERIFY = 0,   /* the peer's certificate was refused here
				      (untrusted, expired, wrong host name)   */
	NET_TLS_FAIL_PEER_ALERT,   /* the peer refused us with an alert        */
	NET_TLS_FAIL_PROTOCOL,     /* not TLS, or not TLS 1.3, or malformed    */
	NET_TLS_FAIL_CLOSED,       /* the peer closed during the handshake     */
	NET_TLS_FAIL_OTHER,        /* anything else (memory, internal)         */
	NET_TLS_FAIL_COUNT
};

/* A short, stable, lower-case name ("verify", "peer_alert", ...). */
NET_EXPORT const char *net_tls_failure_str(enum net_tls_failure f);

/* A context's counters since it was created (reloads keep them). */
struct net_tls_stats {
	uint64_t handshakes;       /* completed, full or resumed               */
	uint64_t resumed;          /* of which resumed from a session ticket   */
	uint64_t tls13;            /* of which negotiated TLS 1.3 (all, today:
				      the contexts allow nothing older)        */
	uint64_t failures[NET_TLS_FAIL_COUNT];
	uint64_t reloads;          /* successful net_tls_reload calls          */
};

/*
 * A server context from a PEM certificate chain file and a PEM private key
 * file. On failure returns -EINVAL (unreadable or mismatched files) or
 * -ENOMEM and writes a message into err (err_size bytes; err may be NULL).
 * Any thread; free with net_tls_destroy.
 */
NET_EXPORT int net_tls_server_create(const char *cert_file, const char *key_file,
				     char *err, size_t err_size,
				     struct net_tls **out /* OUT */);

/*
 * A client context: the peer's certificate must chain to a certificate of
 * ca_file (PEM) and name host_name (a DNS name or an IP address; also sent
 * as SNI when it is a name). There is no way to turn verification off.
 * Errors as net_tls_server_create.
 */
NET_EXPORT int net_tls_client_create(const char *ca_file, const char *host_name,
				     char *err, size_t err_size,
				     struct net_tls **out /* OUT */);

/*
 * Whether a client context offers its last session ticket on the next dial
 * (on by default). Off makes every handshake a full one, and the server
 * cannot link this client's connections (for privacy, and for measuring
 * full handshakes). Any thread.
 */
NET_EXPORT void net_tls_client_resume(struct net_tls *tls, bool on);

/*
 * Load a new certificate and key into a server context: connections
 * accepted from now on use them, live ones keep what they started with,
 * and session tickets issued before stay valid. On failure nothing
 * changes (the old certificate stays in use) and err says why: -EINVAL
 * for a client context or bad files. Any thread.
 */
NET_EXPORT int net_tls_reload(struct net_tls *tls, const char *cert_file, const char *key_file,
			      char *err, size_t err_size);

/* The counters now (approximate while loops run). Any thread. */
NET_EXPORT void net_tls_get_stats(struct net_tls *tls, struct net_tls_stats *out /* OUT */);

/* Free a context no runtime uses any more (after net_runtime_destroy). */
NET_EXPORT void net_tls_destroy(struct net_tls *tls);

/* True once the session's handshake has completed. Loop thread. */
NET_EXPORT bool net_session_tls_established(const struct net_session *s);

/* The negotiated protocol ("TLSv1.3"), or NULL before the handshake ends
 * or for a plain session. Loop thread. */
NET_EXPORT const char *net_session_tls_version(const struct net_session *s);

/* True if the handshake resumed an earlier session (a ticket). */
NET_EXPORT bool net_session_tls_resumed(const struct net_session *s);

/*
 * Why the session's TLS failed ("certificate verify failed: certificate
 * has expired", "peer alert: unknown ca", "not TLS: wrong version
 * number", ...), or NULL if it has not. Valid until on_disconnected
 * returns. Loop thread.
 */
NET_EXPORT const char *net_session_tls_error(const struct net_session *s);

#ifdef __cplusplus
}
#endif

#endif /* NET_NET_TLS_H */
