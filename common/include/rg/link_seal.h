/*
 * rg/link_seal.h: sealing an internal link's frames once its handshake
 * (rg/link_auth.h) is done. Nothing here knows libnet: rg/link.h calls it
 * for every link end, and tests and the fuzz target call it alone.
 *
 * Keys. Both ends derive two keys, one per direction, from the cluster
 * key and the handshake transcript (both nonces, both roles, the dialer's
 * instance name):
 *
 *   master = BLAKE2b-256(key = cluster key,
 *                        "ringgate-link-seal-v1" || nonce_a || nonce_d ||
 *                        lp(role_d) || lp(role_a) || lp(instance))
 *   k_d2a  = crypto_kdf_derive_from_key(id 1, ctx "rglink01", master)
 *   k_a2d  = crypto_kdf_derive_from_key(id 2, ctx "rglink01", master)
 *
 * (lp: a 4-byte little-endian length, then the bytes.) Fresh nonces from
 * both sides make the keys new for every link, so no key ever seals two
 * links' frames; binding the roles and the instance name means a Hello
 * altered on the way (its instance is not covered by the proof) yields
 * different keys on the two ends, and the first sealed frame fails.
 *
 * Why this derivation: keyed BLAKE2b (crypto_generichash) is a PRF, the
 * HKDF "extract" step over a transcript of any length; crypto_kdf (BLAKE2b
 * with salt and personalisation) is libsodium's "expand" into numbered
 * subkeys, but alone takes only an 8-byte context, too small for the
 * transcript. crypto_kx would add forward secrecy (an ephemeral X25519
 * exchange) at the price of new handshake fields; with a pre-shared
 * secret only, whoever obtains the cluster secret and a recording of a
 * link's handshake can derive that link's keys (docs/cluster-secret.md says
 * how to rotate the secret).
 *
 * Frames. Every frame body after the handshake is
 *
 *   ciphertext (as long as the plaintext) || Poly1305 tag (16 bytes)
 *
 * sealed with XChaCha20-Poly1305-IETF under the direction's key, with the
 * nonce the direction's frame counter (0, 1, 2, ...; 8 bytes little
 * endian, then zeros). The counter is never sent: each end knows the next
 * number to expect, so a frame altered, replayed, reordered, dropped
 * before it or injected fails to open, and the link is closed.
 *
 * Why XChaCha20-Poly1305 and not AES-256-GCM: libsodium offers AES-GCM
 * only on CPUs with AES-NI and CLMUL, so a cluster spread over unlike
 * hosts would need a negotiated fallback (two code paths, and a downgrade
 * to guard against); XChaCha20-Poly1305 runs, in constant time, on every
 * CPU. For the frames of these links (mostly under a kilobyte) the cost is
 * dominated by the per-frame setup, where the two are close.
 *
 * A struct rg_link_seal belongs to its link's loop thread (no locks).
 */
#ifndef RG_LINK_SEAL_H
#define RG_LINK_SEAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rg/link_auth.h"

#define RG_LINK_SEAL_KEY_BYTES 32
/* Bytes a sealed frame has beyond its plaintext: the tag. */
#define RG_LINK_SEAL_OVERHEAD 16 /* crypto_aead_xchacha20poly1305_ietf_ABYTES */

/* One direction: its key and the number of its next frame. */
struct rg_link_seal_dir {
	unsigned char key[RG_LINK_SEAL_KEY_BYTES];
	uint64_t counter;
};

/* Both directions of one link end. */
struct rg_link_seal {
	struct rg_link_seal_dir out;   /* what we send      */
	struct rg_link_seal_dir in;    /* what we receive   */
};

/* What both ends saw of a handshake (see above). */
struct rg_link_transcript {
	const uint8_t *acceptor_nonce;   /* RG_LINK_NONCE_BYTES */
	const uint8_t *dialer_nonce;     /* RG_LINK_NONCE_BYTES */
	const char *dialer_role;
	const char *acceptor_role;
	const char *instance;            /* the dialer's, as sent in Hello */
};

/*
 * Derive both directions' keys into *out for the end that is the dialer
 * (dialer true) or the acceptor, from the cluster key and the transcript;
 * counters start at 0. Any thread.
 */
void rg_link_seal_init(struct rg_link_seal *out /* OUT */,
		       const unsigned char cluster_key[RG_LINK_KEY_BYTES],
		       const struct rg_link_transcript *t, bool dialer);

/*
 * Seal plain[0..len) as the next frame of d into out[0..len +
 * RG_LINK_SEAL_OVERHEAD); out may equal plain (sealed in place), and must
 * not overlap it otherwise. Cannot fail: the 64-bit counter would need
 * 2^64 frames to wrap.
 */
void rg_link_seal_frame(struct rg_link_seal_dir *d, uint8_t *out, const uint8_t *plain,
			size_t len);

/*
 * Open frame[0..len), expected to be the next frame of d, into
 * out[0..len - RG_LINK_SEAL_OVERHEAD) (*out_len). Returns 0 and counts the
 * frame, or -EBADMSG (shorter than the tag, or fails authentication: a
 * wrong key, an altered, replayed, reordered or injected frame), which
 * leaves d as it was and out undefined. out may equal frame.
 */
int rg_link_seal_open(struct rg_link_seal_dir *d, uint8_t *out, const uint8_t *frame,
		      size_t len, size_t *out_len /* OUT */);

/* Wipe the keys. */
void rg_link_seal_wipe(struct rg_link_seal *s);

#endif /* RG_LINK_SEAL_H */
