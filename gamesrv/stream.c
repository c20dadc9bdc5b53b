/*
 * stream.c: numbered, kept message streams and resume tokens (see
 * stream.h for the life of a session and the token's layout).
 */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <rg/clock.h>
#include <rg/container_of.h>
#include <rg/link_auth.h>
#include <rg/log.h>

#include "client.pb-c.h"
#include "gate_link.h"
#include "metrics.h"
#include "rules.h"
#include "world.h"

/* One kept message: in its session's list and in the global one. */
struct stream_rec {
	struct gs_stream *owner;
	struct stream_rec *next;             /* the session's next (newer)   */
	struct stream_rec *older, *newer;    /* the global list              */
	uint64_t msg_no;
	size_t len;
	uint8_t bytes[];                     /* the packed ServerMessage     */
};

#define TOKEN_VERSION 2
/* Offsets in a token (stream.h). */
#define TOKEN_SHARD 1
#define TOKEN_PLAYER 3
#define TOKEN_SESSION 11
#define TOKEN_EXPIRES (TOKEN_SESSION + GS_STREAM_SESSION_ID_BYTES)
#define TOKEN_HEAD (TOKEN_EXPIRES + 8 + 1)
#define TOKEN_MAC crypto_auth_hmacsha512256_BYTES

static const char key_context[] = "ringgate-resume-v1";

/* What a kept message counts against the bounds: its bytes and its record. */
static size_t rec_cost(const struct stream_rec *r)
{
	return sizeof(*r) + r->len;
}

int gs_streams_init(struct gs_streams *s, const struct gs_stream_config *cfg,
		 const struct rg_link_key *link_key, struct gs_gate_out *out)
{
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	if (s->cfg.shard == 0)
		s->cfg.shard = 1;
	s->out = out;
	if (cfg->grace_ms == 0)
		return 0;
	if (sodium_init() < 0)
		return -EIO;
	if (!link_key || link_key->insecure)
		randombytes_buf(s->key, sizeof(s->key));
	else
		crypto_generichash(s->key, sizeof(s->key), (const unsigned char *)key_context,
				   sizeof(key_context) - 1, link_key->key, sizeof(link_key->key));
	return 0;
}

bool gs_streams_on(const struct gs_streams *s)
{
	return s->cfg.grace_ms != 0;
}

/* Drop r, the oldest kept message of its session. */
static void evict(struct gs_streams *s, struct stream_rec *r)
{
	struct gs_stream *st = r->owner;

	st->head = r->next;
	if (!st->head)
		st->tail = NULL;
	st->kept_from = r->msg_no + 1;
	st->bytes -= rec_cost(r);
	s->total_bytes -= rec_cost(r);
	if (r->older)
		r->older->newer = r->newer;
	else
		s->oldest = r->newer;
	if (r->newer)
		r->newer->older = r->older;
	else
		s->newest = r->older;
	free(r);
}

void gs_streams_fini(struct gs_streams *s)
{
	/* The players (the records' owners) are gone already: free only. */
	while (s->oldest) {
		struct stream_rec *r = s->oldest;

		s->oldest = r->newer;
		free(r);
	}
	s->newest = NULL;
	s->total_bytes = 0;
	sodium_memzero(s->key, sizeof(s->key));
}

static void count_eviction(struct gs_streams *s)
{
	if (s->metrics)
		rg_counter_add(s->metrics->resume_evicted, 1);
}

/* Keep a packed copy of msg (its msg_no set) at the end of st, then
 * enforce the bounds, oldest first. Returns the copy, or NULL when it is
 * not kept (out of memory, or alone larger than a bound). */
static struct stream_rec *keep(struct gs_streams *s, struct gs_stream *st,
			       const Ringgate__Client__ServerMessage *msg)
{
	size_t len = ringgate__client__server_message__get_packed_size(msg);
	struct stream_rec *r = malloc(sizeof(*r) + len);

	if (!r) {
		/* The numbers must stay contiguous: a resume from before this
		 * one can no longer be served. */
		RG_ERROR("out of memory keeping a message for resume");
		while (st->head)
			evict(s, st->head);
		st->kept_from = msg->msg_no + 1;
		return NULL;
	}
	r->owner = st;
	r->next = NULL;
	r->msg_no = msg->msg_no;
	r->len = ringgate__client__server_message__pack(msg, r->bytes);
	if (st->tail)
		st->tail->next = r;
	else
		st->head = r;
	st->tail = r;
	r->newer = NULL;
	r->older = s->newest;
	if (s->newest)
		s->newest->newer = r;
	else
		s->oldest = r;
	s->newest = r;
	st->bytes += rec_cost(r);
	s->total_bytes += rec_cost(r);
	while (st->bytes > s->cfg.session_bytes && st->head != r) {
		evict(s, st->head);
		count_eviction(s);
	}
	while (s->total_bytes > s->cfg.total_bytes && s->oldest != r) {
		evict(s, s->oldest);
		count_eviction(s);
	}
	if (st->bytes > s->cfg.session_bytes || s->total_bytes > s->cfg.total_bytes) {
		evict(s, r); /* the only one left of its session, or of all */
		count_eviction(s);
		return NULL;
	}
	return r;
}

static void grace_unlink(struct gs_streams *s, struct gs_stream *st)
{
	if (!st->detached)
		return;
	if (st->grace_prev)
		st->grace_prev->grace_next = st->grace_next;
	else
		s->grace_head = st->grace_next;
	if (st->grace_next)
		st->grace_next->grace_prev = st->grace_prev;
	else
		s->grace_tail = st->grace_prev;
	st->grace_prev = st->grace_next = NULL;
	st->detached = false;
	s->detached_count--;
}

void gs_stream_end(struct gs_streams *s, struct gs_player *p)
{
	struct gs_stream *st = &p->stream;

	grace_unlink(s, st);
	while (st->head)
		evict(s, st->head);
	st->next_no = 0;
	st->kept_from = 0;
}

void gs_stream_start(struct gs_streams *s, struct gs_player *p)
{
	struct gs_stream *st = &p->stream;

	gs_stream_end(s, p);
	st->login_no = ++s->logins;
	if (!gs_streams_on(s))
		return;
	st->next_no = 1;
	st->kept_from = 1;
	randombytes_buf(st->session_id, sizeof(st->session_id));
}

void gs_stream_continue(struct gs_streams *s, struct gs_player *p, uint64_t next_no)
{
	gs_stream_start(s, p);
	if (!gs_streams_on(s) || next_no <= 1)
		return;
	p->stream.next_no = next_no;
	p->stream.kept_from = next_no;
}

/* ---- tokens ----------------------------------------------------------------- */

static void put_u64(uint8_t *at, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		at[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *at)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | at[i];
	return v;
}

void gs_stream_token(struct gs_streams *s, struct gs_player *p, Ringgate__Client__ResumeToken *tok,
		  uint8_t *token_buf)
{
	size_t name_len = strlen(p->name);
	uint8_t *at = token_buf;

	at[0] = TOKEN_VERSION;
	at[TOKEN_SHARD] = (uint8_t)s->cfg.shard;
	at[TOKEN_SHARD + 1] = (uint8_t)(s->cfg.shard >> 8);
	put_u64(at + TOKEN_PLAYER, p->id);
	memcpy(at + TOKEN_SESSION, p->stream.session_id, GS_STREAM_SESSION_ID_BYTES);
	put_u64(at + TOKEN_EXPIRES, rg_wall_ms() + s->cfg.token_ttl_ms);
	at[TOKEN_HEAD - 1] = (uint8_t)name_len;
	memcpy(at + TOKEN_HEAD, p->name, name_len);
	crypto_auth_hmacsha512256(at + TOKEN_HEAD + name_len, at, TOKEN_HEAD + name_len, s->key);
	tok->token.data = token_buf;
	tok->token.len = TOKEN_HEAD + name_len + TOKEN_MAC;
	tok->grace_ms = s->cfg.grace_ms;
	/* A fresh one goes out once half its life is over. */
	p->stream.token_renew_ms = rg_now_ms() + s->cfg.token_ttl_ms / 2;
}

int gs_stream_token_check(const struct gs_streams *s, const uint8_t *token, size_t len,
		       struct gs_stream_claim *claim)
{
	size_t name_len;

	if (len < TOKEN_HEAD + 1 + TOKEN_MAC || len > GS_STREAM_TOKEN_MAX ||
	    token[0] != TOKEN_VERSION)
		return -EBADMSG;
	name_len = token[TOKEN_HEAD - 1];
	if (name_len == 0 || name_len > GS_RULES_NAME_MAX || len != TOKEN_HEAD + name_len + TOKEN_MAC)
		return -EBADMSG;
	if (crypto_auth_hmacsha512256_verify(token + TOKEN_HEAD + name_len, token,
					     TOKEN_HEAD + name_len, s->key) != 0)
		return -EBADMSG;
	/* Ours, so well formed; the name is checked all the same (a key
	 * leak must not reach the world's tables with a bad name). */
	memcpy(claim->name, token + TOKEN_HEAD, name_len);
	claim->name[name_len] = '\0';
	if (!gs_rules_name_valid(claim->name))
		return -EBADMSG;
	claim->player_id = get_u64(token + TOKEN_PLAYER);
	memcpy(claim->session_id, token + TOKEN_SESSION, GS_STREAM_SESSION_ID_BYTES);
	claim->shard = (uint32_t)token[TOKEN_SHARD] | (uint32_t)token[TOKEN_SHARD + 1] << 8;
	if (claim->shard != s->cfg.shard)
		return -EXDEV; /* the gateway sent it to the wrong shard */
	if (rg_wall_ms() >= get_u64(token + TOKEN_EXPIRES))
		return -ETIME;
	return 0;
}

bool gs_stream_is_session(const struct gs_player *p, const struct gs_stream_claim *claim)
{
	return p->stream.next_no != 0 && p->id == claim->player_id &&
	       sodium_memcmp(p->stream.session_id, claim->session_id,
			     GS_STREAM_SESSION_ID_BYTES) == 0;
}

/* ---- sending ----------------------------------------------------------------- */

void gs_stream_push_token(struct gs_streams *s, struct gs_player *p)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__ResumeToken tok = RINGGATE__CLIENT__RESUME_TOKEN__INIT;
	uint8_t buf[GS_STREAM_TOKEN_MAX];

	if (!gs_streams_on(s) || p->stream.detached)
		return;
	gs_stream_token(s, p, &tok, buf);
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_TOKEN;
	msg.token = &tok;
	(void)gs_gate_out_reply(s->out, p->client->key.link, p->client->key.session, 0, &msg);
}

/* Send p's connection a fresh token when the one it has is half through
 * its life. */
static void renew_token(struct gs_streams *s, struct gs_player *p)
{
	if (rg_now_ms() >= p->stream.token_renew_ms)
		gs_stream_push_token(s, p);
}

uint64_t gs_stream_keep(struct gs_streams *s, struct gs_player *p, Ringgate__Client__ServerMessage *msg)
{
	struct gs_stream *st = &p->stream;
	uint64_t no = st->next_no;

	if (no == 0)
		return 0;
	st->next_no++;
	msg->msg_no = no;
	keep(s, st, msg);
	msg->msg_no = 0;
	if (!st->detached)
		renew_token(s, p);
	return no;
}

int gs_stream_send(struct gs_streams *s, struct gs_player *p, uint64_t request_id, bool resumed,
		Ringgate__Client__ServerMessage *msg)
{
	struct gs_stream *st = &p->stream;
	const struct gs_client_key *to = &p->client->key;

	msg->msg_no = 0;
	if (st->next_no != 0) {
		struct stream_rec *r;

		msg->msg_no = st->next_no++;
		r = keep(s, st, msg);
		if (st->detached)
			return 0;
		renew_token(s, p);
		if (r) /* packed once: for the copy and the wire */
			return gs_gate_out_send_packed(s->out, to->link, to->session, request_id,
						    resumed, r->bytes, r->len);
	}
	if (resumed)
		return gs_gate_out_resumed(s->out, to->link, to->session, msg);
	return gs_gate_out_reply(s->out, to->link, to->session, request_id, msg);
}

/* ---- grace and resume ---------------------------------------------------------- */

void gs_stream_detach(struct gs_streams *s, struct gs_player *p, uint64_t now_ms)
{
	struct gs_stream *st = &p->stream;

	if (st->detached)
		return;
	st->detached = true;
	s->detached_count++;
	/* Every grace period is as long: appending keeps the list sorted. */
	st->grace_until_ms = now_ms + s->cfg.grace_ms;
	st->grace_next = NULL;
	st->grace_prev = s->grace_tail;
	if (s->grace_tail)
		s->grace_tail->grace_next = st;
	else
		s->grace_head = st;
	s->grace_tail = st;
}

struct gs_player *gs_stream_grace_due(struct gs_streams *s, uint64_t now_ms)
{
	struct gs_stream *st = s->grace_head;

	if (!st || st->grace_until_ms > now_ms)
		return NULL;
	return RG_CONTAINER_OF(st, struct gs_player, stream);
}

long gs_stream_replay_count(const struct gs_player *p, uint64_t last_received)
{
	const struct gs_stream *st = &p->stream;

	/* The token came in the LoginReply, msg_no 1: a client that has one
	 * has received at least that (and a replayed LoginReply would hand it
	 * a dead token). */
	if (last_received == 0 || last_received >= st->next_no)
		return -EINVAL;
	if (last_received + 1 < st->kept_from)
		return -ERANGE;
	/* Kept numbers are contiguous from kept_from up. */
	return (long)(st->next_no - 1 - last_received);
}

void gs_stream_attach(struct gs_streams *s, struct gs_player *p)
{
	grace_unlink(s, &p->stream);
	randombytes_buf(p->stream.session_id, sizeof(p->stream.session_id));
}

long gs_stream_replay(struct gs_streams *s, struct gs_player *p, uint64_t last_received)
{
	const struct gs_client_key *to = &p->client->key;
	long n = 0;

	for (struct stream_rec *r = p->stream.head; r; r = r->next) {
		int rc;

		if (r->msg_no <= last_received)
			continue;
		rc = gs_gate_out_send_packed(s->out, to->link, to->session, 0, true, r->bytes, r->len);
		if (rc < 0)
			return rc;
		n++;
	}
	return n;
}
