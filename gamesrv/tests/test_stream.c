/*
 * test_stream.c: unit tests of gamesrv's session streams (stream.c): the
 * kept messages and their two bounds, the numbers a resume may ask for,
 * resume tokens (good, tampered, expired, replaced) and the grace list.
 * Players are detached throughout, so nothing is sent (no network). Each
 * case is one CTest test: `test_gamesrv_stream <case>`.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <rg/link_auth.h>

#include "check.h"
#include "client.pb-c.h"
#include "stream.h"
#include "world.h"

static const struct gs_stream_config cfg = {
	.grace_ms = 1000, .session_bytes = 4096, .total_bytes = 6000, .token_ttl_ms = 60000,
};

/* A detached player named name with a fresh session. */
static void player_init(struct gs_streams *s, struct gs_player *p, uint64_t id, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->id = id;
	snprintf(p->name, sizeof(p->name), "%s", name);
	gs_stream_start(s, p);
	gs_stream_detach(s, p, 0);
}

/* Keep a chat line of `len` bytes for p; its msg_no. */
static uint64_t keep_line(struct gs_streams *s, struct gs_player *p, size_t len)
{
	Ringgate__Client__ServerMessage msg = RINGGATE__CLIENT__SERVER_MESSAGE__INIT;
	Ringgate__Client__ChatLine line = RINGGATE__CLIENT__CHAT_LINE__INIT;
	char text[2048];

	CHECK(len < sizeof(text));
	memset(text, 'x', len);
	text[len] = '\0';
	line.name = p->name;
	line.text = text;
	msg.body_case = RINGGATE__CLIENT__SERVER_MESSAGE__BODY_CHAT_LINE;
	msg.chat_line = &line;
	return gs_stream_keep(s, p, &msg);
}

static void numbering_and_gap(void)
{
	struct gs_streams s;
	struct gs_player p;

	CHECK(gs_streams_init(&s, &cfg, NULL, NULL) == 0);
	player_init(&s, &p, 7, "ann");
	for (uint64_t i = 1; i <= 5; i++)
		CHECK(keep_line(&s, &p, 10) == i);
	CHECK(gs_stream_replay_count(&p, 2) == 3);
	CHECK(gs_stream_replay_count(&p, 5) == 0);
	CHECK(gs_stream_replay_count(&p, 0) == -EINVAL); /* below the LoginReply */
	CHECK(gs_stream_replay_count(&p, 6) == -EINVAL); /* never sent */
	gs_stream_end(&s, &p);
	CHECK(p.stream.next_no == 0 && s.total_bytes == 0 && s.detached_count == 0);
	gs_streams_fini(&s);
}

static void session_bound(void)
{
	struct gs_streams s;
	struct gs_player p;
	uint64_t last = 0;

	CHECK(gs_streams_init(&s, &cfg, NULL, NULL) == 0);
	player_init(&s, &p, 7, "ann");
	for (int i = 0; i < 40; i++) {
		last = keep_line(&s, &p, 500);
		CHECK(p.stream.bytes <= cfg.session_bytes);
	}
	/* The oldest went: an early resume is refused, a recent one is not. */
	CHECK(gs_stream_replay_count(&p, 1) == -ERANGE);
	CHECK(p.stream.kept_from > 2);
	CHECK(gs_stream_replay_count(&p, p.stream.kept_from - 1) ==
	      (long)(last - p.stream.kept_from + 1));
	gs_stream_end(&s, &p);
	gs_streams_fini(&s);
}

static void oversize_not_kept(void)
{
	struct gs_stream_config small = cfg;
	struct gs_streams s;
	struct gs_player p;

	small.session_bytes = 1024;
	CHECK(gs_streams_init(&s, &small, NULL, NULL) == 0);
	player_init(&s, &p, 7, "ann");
	CHECK(keep_line(&s, &p, 10) == 1);
	CHECK(keep_line(&s, &p, 1500) == 2); /* numbered, but alone over the bound */
	CHECK(p.stream.bytes == 0 && s.total_bytes == 0 && p.stream.kept_from == 3);
	CHECK(gs_stream_replay_count(&p, 1) == -ERANGE);
	CHECK(gs_stream_replay_count(&p, 2) == 0);
	gs_stream_end(&s, &p);
	gs_streams_fini(&s);
}

static void total_bound(void)
{
	struct gs_streams s;
	struct gs_player a, b;

	CHECK(gs_streams_init(&s, &cfg, NULL, NULL) == 0);
	player_init(&s, &a, 1, "ann");
	player_init(&s, &b, 2, "bob");
	for (int i = 0; i < 30; i++) {
		keep_line(&s, &a, 300);
		keep_line(&s, &b, 300);
		CHECK(s.total_bytes <= cfg.total_bytes);
	}
	/* The oldest of all went first: both lost their beginnings. */
	CHECK(gs_stream_replay_count(&a, 1) == -ERANGE);
	CHECK(gs_stream_replay_count(&b, 1) == -ERANGE);
	gs_stream_end(&s, &a);
	CHECK(s.total_bytes == b.stream.bytes);
	gs_streams_fini(&s); /* b still holds records: freed here */
}

static void tokens(void)
{
	struct rg_link_key key = { .insecure = false };
	struct gs_streams s;
	struct gs_player p, other;
	struct gs_stream_claim claim;
	Ringgate__Client__ResumeToken tok = RINGGATE__CLIENT__RESUME_TOKEN__INIT;
	uint8_t buf[GS_STREAM_TOKEN_MAX], old[GS_STREAM_TOKEN_MAX];
	size_t len;

	memset(key.key, 0x5a, sizeof(key.key));
	CHECK(gs_streams_init(&s, &cfg, &key, NULL) == 0);
	player_init(&s, &p, 42, "Casey_2");
	player_init(&s, &other, 43, "dana");
	gs_stream_token(&s, &p, &tok, buf);
	len = tok.token.len;
	CHECK(len <= GS_STREAM_TOKEN_MAX && tok.grace_ms == cfg.grace_ms);
	CHECK(gs_stream_token_check(&s, buf, len, &claim) == 0);
	CHECK(claim.player_id == 42 && strcmp(claim.name, "Casey_2") == 0);
	CHECK(gs_stream_is_session(&p, &claim) && !gs_stream_is_session(&other, &claim));
	/* Every single flipped bit is caught. */
	for (size_t i = 0; i < len * 8; i++) {
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		CHECK(gs_stream_token_check(&s, buf, len, &claim) == -EBADMSG);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK(gs_stream_token_check(&s, buf, len - 1, &claim) == -EBADMSG);
	CHECK(gs_stream_token_check(&s, buf, 0, &claim) == -EBADMSG);
	/* Another cluster's key: not ours. */
	{
		struct gs_streams t;

		key.key[0] ^= 1;
		CHECK(gs_streams_init(&t, &cfg, &key, NULL) == 0);
		CHECK(gs_stream_token_check(&t, buf, len, &claim) == -EBADMSG);
		gs_streams_fini(&t);
		key.key[0] ^= 1;
	}
	/* Version 2 names the shard in bytes 1..2 (LE); another shard
	 * refuses it. */
	CHECK(buf[0] == 2 && buf[1] == 1 && buf[2] == 0 && claim.shard == 1);
	{
		struct gs_stream_config other_cfg = cfg;
		struct gs_streams t;

		other_cfg.shard = 0x0102;
		CHECK(gs_streams_init(&t, &other_cfg, &key, NULL) == 0);
		CHECK(gs_stream_token_check(&t, buf, len, &claim) == -EXDEV);
		gs_stream_token(&t, &p, &tok, buf);
		CHECK(buf[1] == 0x02 && buf[2] == 0x01);
		CHECK(gs_stream_token_check(&t, buf, len, &claim) == 0 && claim.shard == 0x0102);
		CHECK(gs_stream_token_check(&s, buf, len, &claim) == -EXDEV);
		gs_streams_fini(&t);
		gs_stream_token(&s, &p, &tok, buf);
	}
	/* A resume replaces the session: the old token names nothing. */
	memcpy(old, buf, len);
	gs_stream_attach(&s, &p);
	CHECK(gs_stream_token_check(&s, old, len, &claim) == 0);
	CHECK(!gs_stream_is_session(&p, &claim));
	/* A new login does too. */
	gs_stream_token(&s, &p, &tok, buf);
	gs_stream_start(&s, &p);
	CHECK(gs_stream_token_check(&s, buf, len, &claim) == 0 && !gs_stream_is_session(&p, &claim));
	gs_stream_end(&s, &p);
	gs_stream_end(&s, &other);
	gs_streams_fini(&s);
}

static void token_expiry(void)
{
	struct gs_stream_config short_life = cfg;
	struct gs_streams s;
	struct gs_player p;
	struct gs_stream_claim claim;
	Ringgate__Client__ResumeToken tok = RINGGATE__CLIENT__RESUME_TOKEN__INIT;
	uint8_t buf[GS_STREAM_TOKEN_MAX];

	short_life.token_ttl_ms = 0; /* expired as soon as made */
	CHECK(gs_streams_init(&s, &short_life, NULL, NULL) == 0);
	player_init(&s, &p, 1, "ann");
	gs_stream_token(&s, &p, &tok, buf);
	CHECK(gs_stream_token_check(&s, buf, tok.token.len, &claim) == -ETIME);
	gs_stream_end(&s, &p);
	gs_streams_fini(&s);
}

static void grace_list(void)
{
	struct gs_streams s;
	struct gs_player a, b;

	CHECK(gs_streams_init(&s, &cfg, NULL, NULL) == 0);
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	gs_stream_start(&s, &a);
	gs_stream_start(&s, &b);
	gs_stream_detach(&s, &a, 100);
	gs_stream_detach(&s, &b, 200);
	gs_stream_detach(&s, &a, 300); /* already detached: its time stands */
	CHECK(s.detached_count == 2);
	CHECK(gs_stream_grace_due(&s, 1099) == NULL);
	CHECK(gs_stream_grace_due(&s, 1100) == &a);
	gs_stream_attach(&s, &a); /* resumed: off the list */
	CHECK(!a.stream.detached && s.detached_count == 1);
	CHECK(gs_stream_grace_due(&s, 5000) == &b);
	gs_stream_end(&s, &b);
	CHECK(gs_stream_grace_due(&s, 5000) == NULL && s.detached_count == 0);
	gs_stream_end(&s, &a);
	gs_streams_fini(&s);
}

static void resume_off(void)
{
	struct gs_stream_config off = cfg;
	struct gs_streams s;
	struct gs_player p;

	off.grace_ms = 0;
	CHECK(gs_streams_init(&s, &off, NULL, NULL) == 0);
	CHECK(!gs_streams_on(&s));
	memset(&p, 0, sizeof(p));
	gs_stream_start(&s, &p);
	CHECK(p.stream.next_no == 0 && p.stream.login_no != 0);
	CHECK(keep_line(&s, &p, 10) == 0 && s.total_bytes == 0);
	gs_streams_fini(&s);
}

static const struct test_case cases[] = {
	{ "numbering_and_gap", numbering_and_gap },
	{ "session_bound", session_bound },
	{ "oversize_not_kept", oversize_not_kept },
	{ "total_bound", total_bound },
	{ "tokens", tokens },
	{ "token_expiry", token_expiry },
	{ "grace_list", grace_list },
	{ "resume_off", resume_off },
	{ NULL, NULL },
};

TEST_MAIN(cases)
