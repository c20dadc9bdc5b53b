/*
 * link_seal.c: per-direction keys from a link's handshake, and the sealed
 * frames (see rg/link_seal.h for the format and the reasons).
 */
#include "rg/link_seal.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

_Static_assert(RG_LINK_SEAL_OVERHEAD == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(RG_LINK_SEAL_KEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key");
_Static_assert(RG_LINK_SEAL_KEY_BYTES == crypto_kdf_KEYBYTES, "kdf key size");
_Static_assert(RG_LINK_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
	       RG_LINK_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX, "cluster key size");

/* Versioned: a future derivation can never produce this one's keys. */
static const char seal_label[] = "ringgate-link-seal-v1";
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = { 'r', 'g', 'l', 'i', 'n', 'k', '0', '1' };

enum { SUBKEY_D2A = 1, SUBKEY_A2D = 2 };

/* Hash a string with its length in front, so that no two transcripts of
 * different fields hash the same bytes. */
static void hash_text(crypto_generichash_state *st, const char *text)
{
	size_t len = text ? strlen(text) : 0;
	unsigned char lp[4] = { (unsigned char)len, (unsigned char)(len >> 8),
				(unsigned char)(len >> 16), (unsigned char)(len >> 24) };

	crypto_generichash_update(st, lp, sizeof(lp));
	if (len)
		crypto_generichash_update(st, (const unsigned char *)text, len);
}

void rg_link_seal_init(struct rg_link_seal *out, const unsigned char cluster_key[RG_LINK_KEY_BYTES],
		       const struct rg_link_transcript *t, bool dialer)
{
	unsigned char master[crypto_kdf_KEYBYTES];
	crypto_generichash_state st;

	crypto_generichash_init(&st, cluster_key, RG_LINK_KEY_BYTES, sizeof(master));
	crypto_generichash_update(&st, (const unsigned char *)seal_label, sizeof(seal_label) - 1);
	crypto_generichash_update(&st, t->acceptor_nonce, RG_LINK_NONCE_BYTES);
	crypto_generichash_update(&st, t->dialer_nonce, RG_LINK_NONCE_BYTES);
	hash_text(&st, t->dialer_role);
	hash_text(&st, t->acceptor_role);
	hash_text(&st, t->instance);
	crypto_generichash_final(&st, master, sizeof(master));
	crypto_kdf_derive_from_key(out->out.key, sizeof(out->out.key),
				   dialer ? SUBKEY_D2A : SUBKEY_A2D, kdf_context, master);
	crypto_kdf_derive_from_key(out->in.key, sizeof(out->in.key),
				   dialer ? SUBKEY_A2D : SUBKEY_D2A, kdf_context, master);
	out->out.counter = out->in.counter = 0;
	sodium_memzero(master, sizeof(master));
	sodium_memzero(&st, sizeof(st));
}

/* The nonce of frame number counter: the counter, little endian, then 0s. */
static void make_nonce(uint64_t counter,
		       unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		nonce[i] = (unsigned char)(counter >> (8 * i));
}

void rg_link_seal_frame(struct rg_link_seal_dir *d, uint8_t *out, const uint8_t *plain,
			size_t len)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];

	make_nonce(d->counter++, nonce);
	/* Detached, so the ciphertext lands where the plaintext was (in place
	 * too) and the tag right after it. */
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, plain, len,
							    NULL, 0, NULL, nonce, d->key);
}

int rg_link_seal_open(struct rg_link_seal_dir *d, uint8_t *out, const uint8_t *frame,
		      size_t len, size_t *out_len)
{
	unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	size_t plain_len;

	if (len < RG_LINK_SEAL_OVERHEAD)
		return -EBADMSG;
	plain_len = len - RG_LINK_SEAL_OVERHEAD;
	make_nonce(d->counter, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out, NULL, frame, plain_len,
								frame + plain_len, NULL, 0,
								nonce, d->key) != 0)
		return -EBADMSG;
	d->counter++;
	*out_len = plain_len;
	return 0;
}

void rg_link_seal_wipe(struct rg_link_seal *s)
{
	sodium_memzero(s, sizeof(*s));
}
