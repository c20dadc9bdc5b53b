/*
 * ringgate-cli: a command-line game client (see main.c for its loop).
 */
#ifndef RINGGATE_CLI_H
#define RINGGATE_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "client.pb-c.h"

/* The name of an error code ("WRONG_PASSWORD"), or "UNKNOWN". */
const char *cli_error_name(Ringgate__Client__ErrorCode code);

/* Print m as readable "< ..." lines on stdout; now_ms (the client's
 * monotonic clock) turns a Pong into a round-trip time. */
void cli_print_message(const Ringgate__Client__ServerMessage *m, uint64_t now_ms);

/* ---- TLS (tls.c) ---- */

/* TLS 1.3 on the connected blocking socket fd: the server's certificate
 * must chain to ca_file ("" = the system's CAs) and name `name`. Returns
 * the SSL, or NULL after printing why on stderr. */
SSL *cli_tls_connect(int fd, const char *ca_file, const char *name);

/* Up to len bytes: > 0 bytes, 0 at the server's close, -EAGAIN when a
 * record carried no data, another negative code on an error. */
long cli_tls_read(SSL *ssl, void *buf, size_t len);

/* All of data, or a negative code. */
int cli_tls_write(SSL *ssl, const void *data, size_t len);

/* True if decrypted bytes wait in the SSL (poll() would not say so). */
bool cli_tls_pending(SSL *ssl);

/* close_notify, then free. */
void cli_tls_close(SSL *ssl);

#endif /* RINGGATE_CLI_H */
