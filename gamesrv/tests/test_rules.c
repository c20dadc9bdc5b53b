/*
 * test_rules.c: unit tests of gamesrv's rules (names, passwords, zone
 * bounds, coordinates, UTF-8, chat, gold) and of the world's player life
 * cycle (login, leave, takeover, pins). Each case is one CTest test:
 * `test_gamesrv_rules <case>`.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "hmap.h"
#include "rules.h"
#include "world.h"

static void name_charset(void)
{
	CHECK(gs_rules_name_valid("alice"));
	CHECK(gs_rules_name_valid("Bob_the-2nd"));
	CHECK(gs_rules_name_valid("_"));
	CHECK(!gs_rules_name_valid(""));
	CHECK(!gs_rules_name_valid(NULL));
	CHECK(!gs_rules_name_valid("with space"));
	CHECK(!gs_rules_name_valid("semi;colon"));
	CHECK(!gs_rules_name_valid("dot.name"));
	CHECK(!gs_rules_name_valid("caf\xc3\xa9")); /* non-ASCII */
	CHECK(!gs_rules_name_valid("tab\t"));
}

static void name_length(void)
{
	char name[40];

	memset(name, 'a', sizeof(name));
	name[32] = '\0';
	CHECK(gs_rules_name_valid(name));
	name[32] = 'a';
	name[33] = '\0';
	CHECK(!gs_rules_name_valid(name));
}

static void password_length(void)
{
	/* By length only: the bytes (NULs too) are the password's own. */
	CHECK(!gs_rules_password_valid(0));
	CHECK(gs_rules_password_valid(1));
	CHECK(gs_rules_password_valid(128));
	CHECK(!gs_rules_password_valid(129));
}

static void zone_bounds(void)
{
	struct gs_zone_bounds z = { 1, -10, -20, 10, 20 };
	struct gs_zone_bounds flat = { 2, 0, 0, 0, 0 };
	struct gs_zone_bounds upside = { 3, 5, 0, -5, 1 };
	struct gs_zone_bounds nan_zone = { 4, NAN, 0, 1, 1 };

	CHECK(gs_rules_zone_valid(&z));
	CHECK(gs_rules_zone_valid(&flat));
	CHECK(!gs_rules_zone_valid(&upside));
	CHECK(!gs_rules_zone_valid(&nan_zone));
	CHECK(gs_rules_point_in_zone(&z, 0, 0));
	CHECK(gs_rules_point_in_zone(&z, -10, -20)); /* edges are inside */
	CHECK(gs_rules_point_in_zone(&z, 10, 20));
	CHECK(!gs_rules_point_in_zone(&z, 10.001f, 0));
	CHECK(!gs_rules_point_in_zone(&z, 0, -20.5f));
	CHECK(!gs_rules_point_in_zone(&z, -1e30f, 0));
	CHECK(gs_rules_point_in_zone(&flat, 0, 0));
	CHECK(!gs_rules_point_in_zone(&flat, 0, 1e-6f));
}

static void point_not_finite(void)
{
	struct gs_zone_bounds z = { 1, -1e38f, -1e38f, 1e38f, 1e38f };

	CHECK(!gs_rules_point_in_zone(&z, NAN, 0));
	CHECK(!gs_rules_point_in_zone(&z, 0, NAN));
	CHECK(!gs_rules_point_in_zone(&z, INFINITY, 0));
	CHECK(!gs_rules_point_in_zone(&z, 0, -INFINITY));
}

static void utf8_valid(void)
{
	CHECK(gs_rules_utf8_valid("", 0));
	CHECK(gs_rules_utf8_valid("hello", 5));
	CHECK(gs_rules_utf8_valid("caf\xc3\xa9", 5));                /* é, 2 bytes */
	CHECK(gs_rules_utf8_valid("\xe2\x82\xac", 3));               /* €, 3 bytes */
	CHECK(gs_rules_utf8_valid("\xf0\x9f\x98\x80", 4));           /* 😀, 4 bytes */
	CHECK(gs_rules_utf8_valid("\xef\xbf\xbf", 3));               /* U+FFFF */
	CHECK(gs_rules_utf8_valid("\xf4\x8f\xbf\xbf", 4));           /* U+10FFFF */
	CHECK(gs_rules_utf8_valid("\xed\x9f\xbf", 3));               /* U+D7FF */
}

static void utf8_invalid(void)
{
	CHECK(!gs_rules_utf8_valid("\x80", 1));                      /* lone continuation */
	CHECK(!gs_rules_utf8_valid("\xc3", 1));                      /* truncated */
	CHECK(!gs_rules_utf8_valid("\xe2\x82", 2));                  /* truncated */
	CHECK(!gs_rules_utf8_valid("\xc3\x28", 2));                  /* bad continuation */
	CHECK(!gs_rules_utf8_valid("\xc0\xaf", 2));                  /* overlong '/' */
	CHECK(!gs_rules_utf8_valid("\xe0\x80\xaf", 3));              /* overlong */
	CHECK(!gs_rules_utf8_valid("\xf0\x80\x80\xaf", 4));          /* overlong */
	CHECK(!gs_rules_utf8_valid("\xed\xa0\x80", 3));              /* surrogate U+D800 */
	CHECK(!gs_rules_utf8_valid("\xed\xbf\xbf", 3));              /* surrogate U+DFFF */
	CHECK(!gs_rules_utf8_valid("\xf4\x90\x80\x80", 4));          /* U+110000 */
	CHECK(!gs_rules_utf8_valid("\xf8\x88\x80\x80\x80", 5));      /* 5-byte form */
	CHECK(!gs_rules_utf8_valid("\xfe", 1));
	CHECK(!gs_rules_utf8_valid("\xff", 1));
	CHECK(!gs_rules_utf8_valid("ok\xe2\x82", 4));                /* valid, then cut */
}

static void chat_rules(void)
{
	char text[300];

	CHECK(gs_rules_chat_valid("hi there", 8));
	CHECK(gs_rules_chat_valid("\xe4\xbd\xa0\xe5\xa5\xbd", 6));   /* 你好 */
	CHECK(!gs_rules_chat_valid("", 0));
	CHECK(!gs_rules_chat_valid(NULL, 0));
	CHECK(!gs_rules_chat_valid("two\nlines", 9));
	CHECK(!gs_rules_chat_valid("\x1b[2J", 4));                  /* terminal escape */
	CHECK(!gs_rules_chat_valid("del\x7f", 4));
	CHECK(!gs_rules_chat_valid("\xc2\x9b", 2));                 /* C1 CSI */
	CHECK(!gs_rules_chat_valid("\xc3", 1));
	memset(text, 'x', sizeof(text));
	CHECK(gs_rules_chat_valid(text, 256));
	CHECK(!gs_rules_chat_valid(text, 257));
	/* 85 three-byte characters = 255 bytes: fine; one more passes 256. */
	for (int i = 0; i < 86; i++)
		memcpy(text + 3 * i, "\xe2\x82\xac", 3);
	CHECK(gs_rules_chat_valid(text, 255));
	CHECK(!gs_rules_chat_valid(text, 258));
}

static void earn_amount(void)
{
	CHECK(!gs_rules_earn_valid(0));
	CHECK(gs_rules_earn_valid(1));
	CHECK(gs_rules_earn_valid(1000));
	CHECK(!gs_rules_earn_valid(1001));
	CHECK(!gs_rules_earn_valid(UINT32_MAX));
}

static void hmap_basic(void)
{
	struct gs_hmap m;
	static uint64_t keys[1000];

	gs_hmap_init(&m);
	CHECK(gs_hmap_get(&m, "a", 1) == NULL);
	CHECK(gs_hmap_remove(&m, "a", 1) == NULL);
	for (int i = 0; i < 1000; i++) {
		keys[i] = (uint64_t)i * 7919u;
		CHECK(gs_hmap_put(&m, &keys[i], sizeof(keys[i]), &keys[i]) == 0);
	}
	CHECK(m.count == 1000);
	for (int i = 0; i < 1000; i++)
		CHECK(gs_hmap_get(&m, &keys[i], sizeof(keys[i])) == &keys[i]);
	for (int i = 0; i < 1000; i += 2)
		CHECK(gs_hmap_remove(&m, &keys[i], sizeof(keys[i])) == &keys[i]);
	for (int i = 0; i < 1000; i++)
		CHECK((gs_hmap_get(&m, &keys[i], sizeof(keys[i])) != NULL) == (i % 2 == 1));
	gs_hmap_fini(&m);
}

static const struct gs_zone_bounds test_zone = { 1, -100, -100, 100, 100 };

static void world_login_leave(void)
{
	struct gs_world w;
	struct gs_client *a, *b;
	struct gs_player *pa, *pb;

	CHECK(gs_world_init(&w, &test_zone, 1) == 0);
	/* The same session id on two gateway links: two clients. */
	a = gs_world_client_add(&w, 1, 42);
	b = gs_world_client_add(&w, 2, 42);
	CHECK(a && b && a != b);
	CHECK(gs_world_client_find(&w, 1, 42) == a);
	CHECK(gs_world_client_find(&w, 2, 42) == b);
	CHECK(gs_world_client_find(&w, 3, 42) == NULL);

	pa = gs_world_player_add(&w, a, 10, "alice", 1, 5, 6, 100);
	pb = gs_world_player_add(&w, b, 11, "bob", 1, -5, -6, 0);
	CHECK(pa && pb);
	CHECK(pa->state == GS_PLAYER_ONLINE && pa->client == a && a->player == pa);
	CHECK(w.online_count == 2 && w.zones[0].member_count == 2);
	CHECK(gs_world_player_find(&w, "alice") == pa);

	/* Leaving with a save in flight: LEAVING, still findable. */
	gs_world_player_pin(pa);
	gs_world_player_unbind(&w, pa);
	gs_world_client_remove(&w, a);
	CHECK(pa->state == GS_PLAYER_LEAVING && pa->client == NULL);
	CHECK(w.online_count == 1 && w.zones[0].member_count == 1);
	CHECK(gs_world_player_find(&w, "alice") == pa);
	/* The save ends: the last pin frees it. */
	gs_world_player_unpin(&w, pa);
	CHECK(gs_world_player_find(&w, "alice") == NULL);

	/* Leaving with nothing in flight frees at once. */
	gs_world_player_unbind(&w, pb);
	gs_world_client_remove(&w, b);
	CHECK(gs_world_player_find(&w, "bob") == NULL);
	CHECK(w.online_count == 0 && w.zones[0].members == NULL);
	gs_world_fini(&w);
}

static void world_takeover(void)
{
	struct gs_world w;
	struct gs_client *old, *c1, *c2;
	struct gs_player *p;

	CHECK(gs_world_init(&w, &test_zone, 1) == 0);
	old = gs_world_client_add(&w, 1, 1);
	p = gs_world_player_add(&w, old, 7, "carol", 1, 1, 2, 30);
	CHECK(p);

	/* A second login of an ONLINE account moves it to the new session. */
	c1 = gs_world_client_add(&w, 2, 9);
	gs_world_player_transfer(p, c1);
	gs_world_client_remove(&w, old);
	CHECK(p->client == c1 && c1->player == p && p->state == GS_PLAYER_ONLINE);
	CHECK(w.online_count == 1 && w.zones[0].member_count == 1);

	/* A login while the account is LEAVING takes it back. */
	gs_world_player_pin(p);
	gs_world_player_unbind(&w, p);
	gs_world_client_remove(&w, c1);
	c2 = gs_world_client_add(&w, 2, 10);
	gs_world_player_bind(&w, p, c2);
	gs_world_player_unpin(&w, p); /* the save ends: p stays, it is ONLINE */
	CHECK(gs_world_player_find(&w, "carol") == p);
	CHECK(p->state == GS_PLAYER_ONLINE && p->x == 1 && p->gold == 30);
	gs_world_fini(&w);
}

static void world_bad_saved_spot(void)
{
	struct gs_world w;
	struct gs_client *c;
	struct gs_player *p;
	struct gs_zone_bounds bad = { 1, 5, 0, -5, 1 };

	CHECK(gs_world_init(&w, &bad, 1) == -EINVAL);
	gs_world_fini(&w);
	CHECK(gs_world_init(&w, &test_zone, 1) == 0);
	c = gs_world_client_add(&w, 1, 1);
	p = gs_world_player_add(&w, c, 1, "dave", 99, 5, 5, 0); /* unknown zone */
	CHECK(p && p->zone == &w.zones[0] && p->x == 0 && p->y == 0);
	gs_world_player_unbind(&w, p);
	gs_world_client_remove(&w, c);
	c = gs_world_client_add(&w, 1, 2);
	p = gs_world_player_add(&w, c, 1, "dave", 1, NAN, 5, 0);
	CHECK(p && p->x == 0 && p->y == 0);
	gs_world_player_unbind(&w, p);
	gs_world_client_remove(&w, c);
	c = gs_world_client_add(&w, 1, 3);
	p = gs_world_player_add(&w, c, 1, "dave", 1, 500, 5, 0); /* outside */
	CHECK(p && p->x == 0 && p->y == 0);
	gs_world_fini(&w);
}

static void zones_parse(void)
{
	struct gs_zone_bounds z[3];

	CHECK(gs_rules_zones_parse("", z, 3) == 0);
	CHECK(gs_rules_zones_parse("2:0:0:100:50", z, 3) == 1);
	CHECK(z[0].id == 2 && z[0].min_x == 0 && z[0].max_x == 100 && z[0].max_y == 50);
	CHECK(gs_rules_zones_parse("2:-10:-20:10:20,7:0:0:1:1", z, 3) == 2);
	CHECK(z[1].id == 7 && z[0].min_y == -20);
	CHECK(gs_rules_zones_parse("2:0:0:1:1,3:0:0:1:1", z, 1) == -EINVAL); /* too many */
	CHECK(gs_rules_zones_parse("0:0:0:1:1", z, 3) == -EINVAL);       /* id 0      */
	CHECK(gs_rules_zones_parse("2:5:0:1:1", z, 3) == -EINVAL);       /* min > max */
	CHECK(gs_rules_zones_parse("2:0:0:1", z, 3) == -EINVAL);         /* short     */
	CHECK(gs_rules_zones_parse("2:0:0:1:1:", z, 3) == -EINVAL);
	CHECK(gs_rules_zones_parse("2:0:x:1:1", z, 3) == -EINVAL);
	CHECK(gs_rules_zones_parse("2:0:0:1:1;3:0:0:1:1", z, 3) == -EINVAL);
}

static const struct test_case cases[] = {
	{ "name_charset", name_charset },
	{ "name_length", name_length },
	{ "password_length", password_length },
	{ "zone_bounds", zone_bounds },
	{ "point_not_finite", point_not_finite },
	{ "utf8_valid", utf8_valid },
	{ "utf8_invalid", utf8_invalid },
	{ "chat_rules", chat_rules },
	{ "earn_amount", earn_amount },
	{ "hmap_basic", hmap_basic },
	{ "world_login_leave", world_login_leave },
	{ "world_takeover", world_takeover },
	{ "world_bad_saved_spot", world_bad_saved_spot },
	{ "zones_parse", zones_parse },
	{ NULL, NULL },
};

TEST_MAIN(cases)
