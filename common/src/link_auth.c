/*
 * link_auth.c: the internal links' shared-secret handshake (see
 * rg/link_auth.h for the protocol and its reasons).
 */
#define _POSIX_C_SOURCE 200809L
#include "rg/link_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "rg/log.h"

_Static_assert(RG_LINK_PROOF_BYTES == crypto_auth_hmacsha512256_BYTES, "proof size");
_Static_assert(RG_LINK_KEY_BYTES == crypto_auth_hmacsha512256_KEYBYTES, "key size");

/* Versioned, so a future handshake can never accept this one's proofs. */
static const char proof_label[] = "ringgate-link-v1";

/* Read the whole secret file into buf; returns its length or -errno. */
static long read_secret(const char *path, unsigned char *buf, size_t cap)
{
	struct stat st;
	size_t len = 0;
	long rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out_close;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = -EPERM;
		goto out_close;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out_close;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			rc = -EMSGSIZE; /* more than the maximum: refuse */
			goto out_close;
		}
	}
	rc = len < RG_LINK_SECRET_MIN ? -EMSGSIZE : (long)len;
out_close:
	close(fd);
	return rc;
}

int rg_link_key_setup(const char *secret_file, bool insecure_no_auth,
		      struct rg_link_key *out)
{
	/* One byte more than the maximum, to tell "too long" from "exactly". */
	unsigned char secret[RG_LINK_SECRET_MAX + 1];
	long len;

	memset(out, 0, sizeof(*out));
	if (sodium_init() < 0) {
		RG_ERROR("libsodium failed to initialise");
		return -EIO;
	}
	if (insecure_no_auth) {
		out->insecure = true;
		RG_WARN("--insecure-no-auth: internal links are NOT authenticated; "
			"any local process can pose as a peer");
		return 0;
	}
	if (!secret_file || secret_file[0] == '\0') {
		RG_ERROR("no --secret-file given: internal links need a shared secret "
			 "(or --insecure-no-auth for tests)");
		return -EINVAL;
	}
	len = read_secret(secret_file, secret, sizeof(secret));
	if (len < 0) {
		int err = (int)len;

		if (err == -EPERM)
			RG_ERROR("secret file %s is readable by group or others: chmod 600 it",
				 secret_file);
		else if (err == -EMSGSIZE)
			RG_ERROR("secret file %s must hold %d..%d bytes", secret_file,
				 RG_LINK_SECRET_MIN, RG_LINK_SECRET_MAX);
		else if (err == -EINVAL)
			RG_ERROR("secret file %s is not a regular file", secret_file);
		else
			RG_ERROR("cannot read secret file %s: %s", secret_file, strerror(-err));
		sodium_memzero(secret, sizeof(secret));
		return err;
	}
	crypto_generichash(out->key, sizeof(out->key), secret, (size_t)len, NULL, 0);
	sodium_memzero(secret, sizeof(secret));
	RG_INFO("internal links authenticate with the secret in %s", secret_file);
	return 0;
}

void rg_link_key_wipe(struct rg_link_key *key)
{
	sodium_memzero(key, sizeof(*key));
}

/* proof = HMAC-SHA512-256(key, label || direction || nonce_a || nonce_d || role) */
static void make_proof(const struct rg_link_auth *a, char direction, const char *role,
		       uint8_t proof[RG_LINK_PROOF_BYTES])
{
	crypto_auth_hmacsha512256_state st;

	crypto_auth_hmacsha512256_init(&st, a->key->key, sizeof(a->key->key));
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)proof_label,
					 sizeof(proof_label) - 1); /* without its NUL */
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)&direction, 1);
	crypto_auth_hmacsha512256_update(&st, a->acceptor_nonce, sizeof(a->acceptor_nonce));
	crypto_auth_hmacsha512256_update(&st, a->dialer_nonce, sizeof(a->dialer_nonce));
	crypto_auth_hmacsha512256_update(&st, (const unsigned char *)role, strlen(role));
	crypto_auth_hmacsha512256_final(&st, proof);
	sodium_memzero(&st, sizeof(st));
}

/* Constant-time check of a received proof against the expected one. */
static bool proof_matches(const struct rg_link_auth *a, char direction, const char *role,
			  const uint8_t *proof, size_t proof_len)
{
	uint8_t expected[RG_LINK_PROOF_BYTES];
	bool ok;

	if (proof_len != RG_LINK_PROOF_BYTES)
		return false;
	make_proof(a, direction, role, expected);
	ok = sodium_memcmp(expected, proof, sizeof(expected)) == 0;
	sodium_memzero(expected, sizeof(expected));
	return ok;
}

bool rg_link_auth_accept(struct rg_link_auth *a, const struct rg_link_key *key,
			 uint8_t nonce_out[RG_LINK_NONCE_BYTES])
{
	memset(a, 0, sizeof(*a));
	a->key = key;
	if (key->insecure)
		return false;
	randombytes_buf(a->acceptor_nonce, sizeof(a->acceptor_nonce));
	memcpy(nonce_out, a->acceptor_nonce, sizeof(a->acceptor_nonce));
	a->challenged = true;
	return true;
}

bool rg_link_auth_dial(struct rg_link_auth *a, const struct rg_link_key *key)
{
	memset(a, 0, sizeof(*a));
	a->key = key;
	return !key->insecure;
}

int rg_link_auth_answer(struct rg_link_auth *a, const uint8_t *nonce, size_t len,
			const char *role, uint8_t nonce_out[RG_LINK_NONCE_BYTES],
			uint8_t proof_out[RG_LINK_PROOF_BYTES])
{
	if (a->key->insecure || a->challenged || len != RG_LINK_NONCE_BYTES)
		return -EPROTO;
	memcpy(a->acceptor_nonce, nonce, RG_LINK_NONCE_BYTES);
	randombytes_buf(a->dialer_nonce, sizeof(a->dialer_nonce));
	memcpy(nonce_out, a->dialer_nonce, sizeof(a->dialer_nonce));
	make_proof(a, 'D', role, proof_out);
	a->challenged = true;
	return 0;
}

bool rg_link_auth_check_dialer(struct rg_link_auth *a, const char *dialer_role,
			       const uint8_t *nonce, size_t nonce_len,
			       const uint8_t *proof, size_t proof_len,
			       const char *acceptor_role, uint8_t proof_out[RG_LINK_PROOF_BYTES])
{
	if (a->key->insecure) {
		a->done = true;
		return true;
	}
	if (!a->challenged || a->done || nonce_len != RG_LINK_NONCE_BYTES)
		return false;
	memcpy(a->dialer_nonce, nonce, RG_LINK_NONCE_BYTES);
	if (!proof_matches(a, 'D', dialer_role, proof, proof_len))
		return false;
	make_proof(a, 'A', acceptor_role, proof_out);
	a->done = true;
	return true;
}

bool rg_link_auth_check_acceptor(struct rg_link_auth *a, const char *acceptor_role,
				 const uint8_t *proof, size_t proof_len)
{
	if (a->key->insecure) {
		a->done = true;
		return true;
	}
	if (!a->challenged || a->done ||
	    !proof_matches(a, 'A', acceptor_role, proof, proof_len))
		return false;
	a->done = true;
	return true;
}

bool rg_link_auth_insecure(const struct rg_link_auth *a)
{
	return a->key->insecure;
}
