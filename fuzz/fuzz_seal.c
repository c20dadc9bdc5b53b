/*
 * fuzz_seal: the internal links' sealed-frame decoder (rg/link_seal.h,
 * rg_link_seal_open) as a link end uses it: each frame body that libnet
 * delivers is opened as the next frame of the direction, and a frame that
 * does not open ends the link. The harness plays both ends of one
 * direction, with keys derived (rg_link_seal_init) from a fixed cluster key
 * and transcript, and keeps a model of what must open.
 *
 * Input: records [op][len lo][len hi][bytes] (fuzz/harness.h). op & 7:
 *   0 SEND    seal bytes as the sender's next frame and deliver it
 *   1 RAW     deliver bytes as they are, as a frame body (a forgery)
 *   2 FLIP    seal bytes, flip the bit that bytes[0..1] pick, deliver
 *   3 REPLAY  deliver again the last frame that opened
 *   4 LOSE    seal bytes and never deliver them (a frame lost or held
 *             back: everything after it is out of order)
 *   5 STREAM  bytes are what arrives on the wire: take frames off it with
 *             libnet's net_frame_parse (as a session does) and deliver each
 *   6, 7      as 0, and rekey: both ends start over with new nonces
 * op & 0x80 opens in place (as the link could), else into a separate
 * buffer (as rg/link.h does).
 *
 * Invariants (any failure aborts): a frame opens if and only if it is the
 * sender's untouched frame with the number the receiver expects, and then
 * it gives back exactly what was sealed; a frame that does not open leaves
 * the receiver as it was; nothing reads outside the delivered bytes (each
 * open sees an exact-size copy).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <net/net.h>
#include <rg/link_seal.h>

#include "harness.h"

/* Largest frame body a link accepts (the gateway's upstream limit). */
#define MAX_BODY (4u << 20)

struct state {
	struct rg_link_seal sender, receiver;
	uint8_t *last_ok;          /* the last frame that opened (for REPLAY) */
	size_t last_ok_len;
	uint8_t rekeys;
};

static void rekey(struct state *st, const struct rg_link_key *key)
{
	uint8_t nonce_a[RG_LINK_NONCE_BYTES], nonce_d[RG_LINK_NONCE_BYTES];
	struct rg_link_transcript t = { nonce_a, nonce_d, "gateway", "gamesrv", "gw-fuzz" };

	memset(nonce_a, st->rekeys, sizeof(nonce_a));
	memset(nonce_d, 0xff - st->rekeys, sizeof(nonce_d));
	st->rekeys++;
	rg_link_seal_init(&st->sender, key->key, &t, true);
	rg_link_seal_init(&st->receiver, key->key, &t, false);
}

/*
 * Deliver frame[0..len) to the receiver; expected: the plaintext it must
 * open to (NULL: it must not open). Returns whether it opened.
 */
static bool deliver(struct state *st, const uint8_t *frame, size_t len, const uint8_t *expected,
		    size_t expected_len, bool in_place)
{
	uint8_t *copy = malloc(len ? len : 1);
	uint8_t *out = in_place ? copy : malloc(len ? len : 1);
	uint64_t counter = st->receiver.in.counter;
	size_t out_len = 0;
	int rc;

	FUZZ_CHECK(copy && out);
	memcpy(copy, frame, len);
	rc = rg_link_seal_open(&st->receiver.in, out, copy, len, &out_len);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (expected) {
		FUZZ_CHECK(rc == 0 && out_len == expected_len);
		FUZZ_CHECK(memcmp(out, expected, out_len) == 0);
		FUZZ_CHECK(st->receiver.in.counter == counter + 1);
		memcpy(copy, frame, len); /* as delivered: in place opened over it */
		free(st->last_ok);
		st->last_ok = copy;
		st->last_ok_len = len;
		copy = NULL;
	} else {
		FUZZ_CHECK(rc == -EBADMSG && st->receiver.in.counter == counter);
	}
	if (!in_place)
		free(out);
	free(copy);
	return rc == 0;
}

/* Seal plain[0..len) as the sender's next frame into a new buffer. */
static uint8_t *seal(struct state *st, const uint8_t *plain, size_t len, bool *in_sync /* OUT */)
{
	uint8_t *frame = malloc(len + RG_LINK_SEAL_OVERHEAD);

	FUZZ_CHECK(frame != NULL);
	*in_sync = st->sender.out.counter == st->receiver.in.counter;
	rg_link_seal_frame(&st->sender.out, frame, plain, len);
	return frame;
}

/* Every frame of a wire stream, delivered (forgeries: none may open). */
static void stream(struct state *st, const uint8_t *bytes, size_t len, bool in_place)
{
	size_t at = 0;

	while (at < len) {
		size_t hdr = 0, body = 0;
		int rc = net_frame_parse(bytes + at, len - at, MAX_BODY, &hdr, &body);

		if (rc != 1 || len - at - hdr < body)
			return; /* an error ends the link; a partial frame waits */
		deliver(st, bytes + at + hdr, body, NULL, 0, in_place);
		at += hdr + body;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct rg_link_key *key = fuzz_setup();
	struct fuzz_input in = { data, size, 0 };
	struct state st = { 0 };
	const uint8_t *bytes;
	size_t len;
	uint8_t op;

	rekey(&st, key);
	while (fuzz_next(&in, &op, &bytes, &len)) {
		bool in_place = op & 0x80, in_sync;
		uint8_t *frame;

		switch (op & 7) {
		case 1:
			deliver(&st, bytes, len, NULL, 0, in_place);
			break;
		case 2: {
			size_t bit = (size_t)fuzz_byte(bytes, len, 0) |
				     (size_t)fuzz_byte(bytes, len, 1) << 8;

			frame = seal(&st, bytes, len, &in_sync);
			bit %= 8 * (len + RG_LINK_SEAL_OVERHEAD);
			frame[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			deliver(&st, frame, len + RG_LINK_SEAL_OVERHEAD, NULL, 0, in_place);
			free(frame);
			break;
		}
		case 3:
			if (st.last_ok)
				deliver(&st, st.last_ok, st.last_ok_len, NULL, 0, in_place);
			break;
		case 4:
			free(seal(&st, bytes, len, &in_sync));
			break;
		case 5:
			stream(&st, bytes, len, in_place);
			break;
		case 6:
		case 7:
			rekey(&st, key);
			/* fall through */
		default:
			frame = seal(&st, bytes, len, &in_sync);
			deliver(&st, frame, len + RG_LINK_SEAL_OVERHEAD, in_sync ? bytes : NULL, len,
				in_place);
			free(frame);
			break;
		}
	}
	free(st.last_ok);
	rg_link_seal_wipe(&st.sender);
	rg_link_seal_wipe(&st.receiver);
	return 0;
}
