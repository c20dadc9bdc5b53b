/*
 * harness.c: the process fuzz targets' shared helpers (see harness.h).
 */
#include "harness.h"

#include <string.h>

#include <rg/log.h>

bool fuzz_next(struct fuzz_input *in, uint8_t *op, const uint8_t **bytes, size_t *len)
{
	size_t want;

	if (in->at >= in->size)
		return false;
	*op = in->data[in->at++];
	want = (size_t)fuzz_byte(in->data + in->at, in->size - in->at, 0) |
	       (size_t)fuzz_byte(in->data + in->at, in->size - in->at, 1) << 8;
	in->at = in->at + 2 < in->size ? in->at + 2 : in->size;
	if (want > in->size - in->at)
		want = in->size - in->at;
	*bytes = in->data + in->at;
	*len = want;
	in->at += want;
	return true;
}

uint8_t fuzz_byte(const uint8_t *bytes, size_t len, size_t i)
{
	return i < len ? bytes[i] : 0;
}

const struct rg_link_key *fuzz_setup(void)
{
	static struct rg_link_key key;
	static bool done;
	enum rg_log_level level;
	const char *env = getenv("FUZZ_LOG");

	if (done)
		return &key;
	/* Above ERROR: nothing is written unless FUZZ_LOG asks. */
	if (env && rg_log_level_parse(env, &level) == 0)
		rg_log_init("fuzz", level);
	else
		rg_log_init("fuzz", (enum rg_log_level)(RG_LOG_ERROR + 1));
	/* The insecure set-up initialises libsodium without a file ... */
	FUZZ_CHECK(rg_link_key_setup(NULL, true, &key) == 0);
	/* ... then the key is made a real one. */
	key.insecure = false;
	memset(key.key, 0x5a, sizeof(key.key));
	done = true;
	return &key;
}

uint8_t *fuzz_pack(const ProtobufCMessage *m, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);

	FUZZ_CHECK(buf != NULL);
	*len = protobuf_c_message_pack(m, buf);
	FUZZ_CHECK(*len == n);
	return buf;
}

ProtobufCMessage *fuzz_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *bytes,
			      size_t len)
{
	return protobuf_c_message_unpack(desc, NULL, len, bytes);
}

int fuzz_hello(struct rg_link_auth *auth, const Ringgate__Internal__AuthChallenge *ch,
	       const char *role, Ringgate__Internal__Hello *hello,
	       struct fuzz_hello_bytes *bytes)
{
	int err = rg_link_auth_answer(auth, ch->nonce.data, ch->nonce.len, role, bytes->nonce,
				      bytes->proof);

	if (err < 0)
		return err;
	hello->role = (char *)role;
	hello->instance = "fuzz";
	hello->nonce.data = bytes->nonce;
	hello->nonce.len = sizeof(bytes->nonce);
	hello->proof.data = bytes->proof;
	hello->proof.len = sizeof(bytes->proof);
	return 0;
}
