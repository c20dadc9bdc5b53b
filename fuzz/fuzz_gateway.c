/*
 * fuzz_gateway: the gateway's message handling - its client side
 * (ClientMessage in, requests out, replies and errors back) and its
 * gamesrv link (the handshake, ToClient, Kick, link up and down) - with
 * libnet replaced by fuzz/fake_net.c. The gateway's own files are compiled
 * unchanged; main.c is not.
 *
 * The harness plays a well-behaved gamesrv around the fuzzer's input: it
 * challenges every upstream connection, checks the gateway's proof and
 * answers with its own, and answers each forwarded request with a Pong
 * reply (so replies meet pending requests). The fuzzer's records:
 *
 *   op % 6 == 0  a client frame (ClientMessage bytes) on the current client
 *   op % 6 == 1  a frame from "gamesrv" (GameToGate bytes) on the link
 *   op % 6 == 2  time passes: bytes[0] * 50 ms (timers: idle, heartbeats)
 *   op % 6 == 3  the client hangs up; a new one connects
 *   op % 6 == 4  the gamesrv link drops; it is redialed (with the
 *                handshake unless bytes[0] is odd: then raw, unanswered)
 *   op % 6 == 5  a second client connects and becomes the current one
 *
 * Invariants: every frame the gateway sends a client decodes as a
 * ServerMessage and every frame it sends gamesrv as a GateToGame; the
 * gateway's proof always verifies; nothing leaks (ASan) and nothing
 * crashes or trips UBSan.
 */
#include <string.h>

#include "fake_net.h"
#include "gateway_harness.h"
#include "harness.h"

struct harness {
	struct gateway gw;
	net_session_id client;
	net_session_id upstream;
	struct rg_link_auth upstream_auth; /* our side (acceptor) of the link */
	bool upstream_answering;           /* challenge sent: play gamesrv    */
};

/* Send a GameToGate to the gateway on the upstream link. */
static void to_gateway(struct harness *h, const Ringgate__Internal__GameToGate *msg)
{
	size_t len;
	uint8_t *buf = fuzz_pack(&msg->base, &len);

	fake_net_frame(h->upstream, buf, len);
	free(buf);
}

/* Dial (as libnet would) and, when answering, challenge the gateway. */
static void upstream_connect(struct harness *h, bool answer)
{
	struct net_session *s = fake_net_connect(GW_FUZZ_SVC_SHARD);
	Ringgate__Internal__GameToGate msg = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;
	Ringgate__Internal__AuthChallenge ch = RINGGATE__INTERNAL__AUTH_CHALLENGE__INIT;
	uint8_t nonce[RG_LINK_NONCE_BYTES];

	h->upstream = s ? net_session_get_id(s) : 0;
	h->upstream_answering = answer && s;
	if (!h->upstream_answering)
		return;
	FUZZ_CHECK(rg_link_auth_accept(&h->upstream_auth, &h->gw.link_key, nonce));
	ch.nonce.data = nonce;
	ch.nonce.len = sizeof(nonce);
	msg.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_CHALLENGE;
	msg.challenge = &ch;
	to_gateway(h, &msg);
}

static void client_connect(struct harness *h)
{
	struct net_session *s = fake_net_connect(GW_FUZZ_SVC_CLIENTS);

	h->client = s ? net_session_get_id(s) : 0;
}

/* Play gamesrv's part for one GateToGame the gateway sent. */
static void answer_upstream(struct harness *h, const Ringgate__Internal__GateToGame *in)
{
	Ringgate__Internal__GameToGate out = RINGGATE__INTERNAL__GAME_TO_GATE__INIT;

	if (in->body_case == RINGGATE__INTERNAL__GATE_TO_GAME__BODY_HELLO) {
		Ringgate__Internal__HelloReply reply = RINGGATE__INTERNAL__HELLO_REPLY__INIT;
		uint8_t proof[RG_LINK_PROOF_BYTES];
		const Ringgate__Internal__Hello *hello = in->hello;

		/* The gateway knows the key: its proof must verify. */
		FUZZ_CHECK(rg_link_auth_check_dialer(&h->upstream_auth, hello->role,
						     hello->nonce.data, hello->nonce.len,
						     hello->proof.data, hello->proof.len,
						     "gamesrv", proof));
		reply.role = "gamesrv";
		reply.proof.data = proof;
		reply.proof.len = sizeof(proof);
		out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_HELLO;
		out.hello = &reply;
		to_gateway(h, &out);
	} else if (in->body_case == RINGGATE__INTERNAL__GATE_TO_GAME__BODY_REQUEST &&
		   in->request->message) {
		Ringgate__Internal__ToClient to = RINGGATE__INTERNAL__TO_CLIENT__INIT;
		Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
		Ringgate__Client__Pong pong = RINGGATE__CLIENT__PONG__INIT;
		uint64_t session = in->request->session;

		msg.seq = in->request->message->seq;
		msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_PONG;
		msg.pong = &pong;
		to.request_id = in->request->request_id;
		to.n_sessions = 1;
		to.sessions = &session;
		to.message = &msg;
		out.body_case = RINGGATE__INTERNAL__GAME_TO_GATE__BODY_TO_CLIENT;
		out.to_client = &to;
		to_gateway(h, &out);
	}
}

/* Check everything the gateway sent, and answer what gamesrv would. */
static void pump(struct harness *h)
{
	for (int round = 0; round < 8; round++) {
		size_t n;
		struct fake_sent *sent = fake_net_take_sent(&n);

		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(sent[i].framed);
			if (sent[i].service == GW_FUZZ_SVC_CLIENTS) {
				ProtobufCMessage *m = fuzz_unpack(
					&ringgate__client__server_message__descriptor,
					sent[i].bytes, sent[i].len);

				FUZZ_CHECK(m != NULL);
				protobuf_c_message_free_unpacked(m, NULL);
			} else {
				Ringgate__Internal__GateToGame *m =
					ringgate__internal__gate_to_game__unpack(NULL, sent[i].len,
										 sent[i].bytes);

				FUZZ_CHECK(m != NULL);
				if (h->upstream_answering && sent[i].session == h->upstream)
					answer_upstream(h, m);
				ringgate__internal__gate_to_game__free_unpacked(m, NULL);
			}
		}
		fake_net_free_sent(sent, n);
		if (n == 0)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct harness h;
	struct fuzz_input in = { data, size, 0 };
	uint8_t op;
	const uint8_t *bytes;
	size_t len;

	memset(&h, 0, sizeof(h));
	gw_fuzz_setup(&h.gw, GW_FUZZ_TCP, 0);
	upstream_connect(&h, true);
	pump(&h);
	client_connect(&h);
	while (fuzz_next(&in, &op, &bytes, &len)) {
		switch (op % 6) {
		case 0:
			if (!fake_net_find(h.client))
				client_connect(&h);
			fake_net_frame(h.client, bytes, len);
			break;
		case 1:
			if (!fake_net_find(h.upstream))
				upstream_connect(&h, false);
			fake_net_frame(h.upstream, bytes, len);
			break;
		case 2:
			fake_net_advance((uint64_t)fuzz_byte(bytes, len, 0) * 50);
			break;
		case 3:
			fake_net_close(h.client);
			client_connect(&h);
			break;
		case 4:
			fake_net_close(h.upstream);
			upstream_connect(&h, !(fuzz_byte(bytes, len, 0) & 1));
			break;
		case 5:
			client_connect(&h);
			break;
		}
		pump(&h);
	}
	gw_fuzz_teardown(&h.gw);
	return 0;
}
