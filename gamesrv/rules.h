/*
 * rules.h: the game's validation rules, as pure functions.
 *
 * Everything a client sends is checked here before it touches game state:
 * names, passwords, coordinates, chat text and gold amounts. The limits are
 * the ones client.proto promises. No function here allocates, logs or
 * keeps state, so each is unit-tested in isolation (tests/test_rules.c)
 * and callable from any thread.
 */
#ifndef GAMESRV_RULES_H
#define GAMESRV_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GS_RULES_NAME_MAX 32      /* bytes of [A-Za-z0-9_-]              */
#define GS_RULES_PASSWORD_MAX 128 /* bytes, any content                  */
#define GS_RULES_CHAT_MAX 256     /* bytes of valid UTF-8                */
#define GS_RULES_EARN_MAX 1000    /* gold per EarnRequest                */

/* A rectangular zone; a point on an edge is inside. */
struct gs_zone_bounds {
	uint32_t id;
	float min_x, min_y;
	float max_x, max_y;
};

/* True for 1..GS_RULES_NAME_MAX characters, each of [A-Za-z0-9_-]. (A name
 * from a decode holds no NUL: the gateway refuses those, rg_pb_find_nul.) */
bool gs_rules_name_valid(const char *name);

/* True for 1..GS_RULES_PASSWORD_MAX bytes, of any value (NUL included). */
bool gs_rules_password_valid(size_t len);

/* True when the bounds are finite and min <= max on both axes. */
bool gs_rules_zone_valid(const struct gs_zone_bounds *z);

/* The most zones one world holds. */
#define GS_RULES_ZONES_MAX 64

/*
 * Parse a zone list "ID:MIN_X:MIN_Y:MAX_X:MAX_Y[,...]" (integers; empty
 * spec: no zone) into out[0..max). Each zone must be valid and its id
 * non-zero (MoveRequest.zone 0 means "this zone"). Returns the number of
 * zones, or -EINVAL (malformed, invalid, more than max).
 */
int gs_rules_zones_parse(const char *spec, struct gs_zone_bounds *out /* OUT */, size_t max);

/* True when (x, y) is finite (no NaN, no infinity) and inside z. */
bool gs_rules_point_in_zone(const struct gs_zone_bounds *z, float x, float y);

/*
 * True when text[0..len) is valid UTF-8 as RFC 3629 defines it: no
 * overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
 */
bool gs_rules_utf8_valid(const char *text, size_t len);

/*
 * True for a chat line: 1..GS_RULES_CHAT_MAX bytes of valid UTF-8 without
 * control characters (C0, DEL, C1), so a line cannot forge extra lines or
 * terminal escapes in another player's client.
 */
bool gs_rules_chat_valid(const char *text, size_t len);

/* True for an EarnRequest amount of 1..GS_RULES_EARN_MAX gold. */
bool gs_rules_earn_valid(uint32_t amount);

#endif /* GAMESRV_RULES_H */
