/*
 * rg/link_auth.h: mutual authentication of internal links (gateway <->
 * gamesrv, gamesrv <-> dbproxy) with a shared secret, by challenge and
 * response. The secret never goes on the wire; only MACs over fresh nonces
 * do, so a recorded handshake cannot be replayed.
 *
 * The handshake, in the links' own envelopes (proto/internal.proto):
 *
 *   acceptor                                      dialer
 *     on connect:  AuthChallenge{nonce_a} ------->
 *                  <------- Hello{role, instance, nonce_d, proof_d}
 *     check proof_d; bad: log + disconnect
 *                  HelloReply{role, proof_a} ---->
 *                                                 check proof_a; bad: disconnect
 *
 *   proof_d = HMAC-SHA512-256(key, "ringgate-link-v1" 'D' nonce_a nonce_d role_d)
 *   proof_a = HMAC-SHA512-256(key, "ringgate-link-v1" 'A' nonce_a nonce_d role_a)
 *   key     = BLAKE2b-256(contents of the secret file)
 *
 * The direction letter keeps a proof from being reflected back as the
 * other side's; both nonces make each proof fresh for both sides. Each
 * side must also insist on the role it expects of its peer (gamesrv takes
 * only "gateway" dialers, and so on): a proof covers the role its maker
 * claimed, so a proof relayed from one link to another then fails. Proofs
 * are compared with sodium_memcmp (constant time).
 *
 * rg/link.h runs this handshake on every link end: before it completes each
 * side takes nothing but handshake frames (of at most a few hundred bytes)
 * and disconnects on anything else, and a handshake deadline bounds how long
 * a peer may take. With --insecure-no-auth (never the default) no AuthChallenge is
 * sent and no proof is checked: the pre-authentication protocol, for tests
 * with scripted peers. The two ends must agree: a mismatch fails the
 * handshake and is logged.
 *
 * Nothing here logs the secret or the key; errors name the file only.
 * A struct rg_link_auth belongs to the thread of its link (no locks).
 */
#ifndef RG_LINK_AUTH_H
#define RG_LINK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RG_LINK_NONCE_BYTES 32
#define RG_LINK_PROOF_BYTES 32 /* crypto_auth_hmacsha512256_BYTES */
#define RG_LINK_KEY_BYTES 32   /* crypto_auth_hmacsha512256_KEYBYTES */

/* Shortest and longest secret file accepted, in bytes. */
#define RG_LINK_SECRET_MIN 16
#define RG_LINK_SECRET_MAX 4096

/* The process-wide link key: loaded once in main, then read-only. */
struct rg_link_key {
	bool insecure;                    /* --insecure-no-auth: no handshake */
	unsigned char key[RG_LINK_KEY_BYTES];
};

/*
 * Set up *out from the process's options: with insecure_no_auth, an
 * insecure key (a WARN line says so); otherwise the secret file at
 * secret_file, which must exist, be a regular file readable by this user
 * only (no group or other permission bits: 0600 or 0400) and hold
 * RG_LINK_SECRET_MIN..RG_LINK_SECRET_MAX bytes. Errors are logged (the
 * path and the reason, never the contents). Returns 0, -EINVAL (no path
 * given), -EPERM (mode too open), -EMSGSIZE (size), or the open/read errno.
 * Main thread, before the runtime starts (also initialises libsodium).
 */
int rg_link_key_setup(const char *secret_file, bool insecure_no_auth,
		      struct rg_link_key *out /* OUT */);

/* Wipe the key from memory. */
void rg_link_key_wipe(struct rg_link_key *key);

/* The handshake state of one link. Zero-initialise, then call one of the
 * start functions from on_connected. */
struct rg_link_auth {
	const struct rg_link_key *key;
	unsigned char acceptor_nonce[RG_LINK_NONCE_BYTES];
	unsigned char dialer_nonce[RG_LINK_NONCE_BYTES];
	bool challenged;                  /* acceptor: nonce_a sent; dialer:
					     nonce_a received and answered    */
	bool done;                        /* the peer proved the secret       */
};

/*
 * Acceptor, on connect: remember key and, unless the key is insecure, draw
 * nonce_a into nonce_out. Returns true when nonce_out must be sent as the
 * link's AuthChallenge (false: insecure, send nothing).
 */
bool rg_link_auth_accept(struct rg_link_auth *a, const struct rg_link_key *key,
			 uint8_t nonce_out[RG_LINK_NONCE_BYTES] /* OUT */);

/* Dialer, on connect: remember key. True when the dialer must wait for an
 * AuthChallenge before sending Hello (false: insecure, send Hello now). */
bool rg_link_auth_dial(struct rg_link_auth *a, const struct rg_link_key *key);

/*
 * Dialer: the AuthChallenge arrived with nonce[0..len). Draws nonce_d and
 * computes proof_d for our role; both go into our Hello. Returns 0, or
 * -EPROTO (a second challenge, a nonce of the wrong size, or we are
 * insecure and cannot answer: all reasons to disconnect).
 */
int rg_link_auth_answer(struct rg_link_auth *a, const uint8_t *nonce, size_t len,
			const char *role,
			uint8_t nonce_out[RG_LINK_NONCE_BYTES] /* OUT */,
			uint8_t proof_out[RG_LINK_PROOF_BYTES] /* OUT */);

/*
 * Acceptor: the dialer's Hello arrived with its role, nonce and proof.
 * True when the proof is right (or the key is insecure); then, unless
 * insecure, proof_out holds our own proof for HelloReply (role: ours).
 * False: wrong proof, wrong sizes, or no challenge was sent - disconnect.
 */
bool rg_link_auth_check_dialer(struct rg_link_auth *a, const char *dialer_role,
			       const uint8_t *nonce, size_t nonce_len,
			       const uint8_t *proof, size_t proof_len,
			       const char *acceptor_role,
			       uint8_t proof_out[RG_LINK_PROOF_BYTES] /* OUT */);

/* Dialer: HelloReply arrived with the acceptor's role and proof. True when
 * the proof is right (or the key is insecure). */
bool rg_link_auth_check_acceptor(struct rg_link_auth *a, const char *acceptor_role,
				 const uint8_t *proof, size_t proof_len);

/* True when the key is insecure (no handshake on the wire). */
bool rg_link_auth_insecure(const struct rg_link_auth *a);

#endif /* RG_LINK_AUTH_H */
