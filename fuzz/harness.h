/*
 * harness.h: what the process fuzz targets share: reading an input as a
 * list of records, the cluster key they authenticate with, and quiet logs.
 *
 * An input is a sequence of records, each [op][len lo][len hi][len bytes]
 * (a record cut short by the end of the input takes what is left). The op
 * byte chooses what happens (each target documents its own ops); the bytes
 * are a frame body or a parameter. Targets never trust the input: every
 * record is valid, so the fuzzer explores behaviour, not the format.
 */
#ifndef RINGGATE_FUZZ_HARNESS_H
#define RINGGATE_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <protobuf-c/protobuf-c.h>
#include <rg/link_auth.h>

#include "internal.pb-c.h"

#define FUZZ_CHECK(cond)                                                         \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "fuzz: %s:%d: invariant broken: %s\n",   \
				__FILE__, __LINE__, #cond);                      \
			abort();                                                 \
		}                                                                \
	} while (0)

struct fuzz_input {
	const uint8_t *data;
	size_t size, at;
};

/* The next record; false at the end of the input. */
bool fuzz_next(struct fuzz_input *in, uint8_t *op /* OUT */, const uint8_t **bytes /* OUT */,
	       size_t *len /* OUT */);

/* The byte at index i of bytes[0..len), or 0 past the end. */
uint8_t fuzz_byte(const uint8_t *bytes, size_t len, size_t i);

/*
 * The link rules of the process targets: the usual timings, frames not
 * sealed, so the fuzzer's bytes reach the message handling instead of all
 * failing to open. The sealed-frame decoder has its own target
 * (fuzz_seal.c); links open through the real handshake either way.
 */
#define FUZZ_PLAIN_RULES \
	{ .heartbeat_ms = 1000, .dead_ms = 5000, .handshake_ms = 2000, .plain = true }

/*
 * Set up once per process: logs off (FUZZ_LOG=debug|info|warn|error turns
 * them on), libsodium initialised. Returns the cluster key the targets use
 * (a fixed key: the fuzzer plays the processes' peers, which know it).
 */
const struct rg_link_key *fuzz_setup(void);

/* Pack m into a new buffer the caller frees; *len is set. */
uint8_t *fuzz_pack(const ProtobufCMessage *m, size_t *len /* OUT */);

/* Unpack bytes as desc's message with the default allocator; NULL when
 * they do not decode. Free with protobuf_c_message_free_unpacked(m, NULL). */
ProtobufCMessage *fuzz_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *bytes,
			      size_t len);

/* What a Hello made by fuzz_hello points into; it must outlive the Hello. */
struct fuzz_hello_bytes {
	uint8_t nonce[RG_LINK_NONCE_BYTES];
	uint8_t proof[RG_LINK_PROOF_BYTES];
};

/*
 * Play a dialer answering the AuthChallenge ch as role (instance "fuzz"):
 * fill *hello, pointing into *bytes. Returns 0, or rg_link_auth_answer's
 * negative code (hello untouched).
 */
int fuzz_hello(struct rg_link_auth *auth, const Ringgate__Internal__AuthChallenge *ch,
	       const char *role, Ringgate__Internal__Hello *hello /* OUT */,
	       struct fuzz_hello_bytes *bytes /* OUT */);

#endif /* RINGGATE_FUZZ_HARNESS_H */
