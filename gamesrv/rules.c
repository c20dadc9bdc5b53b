/*
 * rules.c: the game's validation rules (see rules.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "rules.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool gs_rules_name_valid(const char *name)
{
	size_t len = 0;

	if (!name)
		return false;
	for (; name[len]; len++) {
		char c = name[len];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-';

		if (!ok || len >= GS_RULES_NAME_MAX)
			return false;
	}
	return len > 0;
}

bool gs_rules_password_valid(size_t len)
{
	return len >= 1 && len <= GS_RULES_PASSWORD_MAX;
}

int gs_rules_zones_parse(const char *spec, struct gs_zone_bounds *out, size_t max)
{
	size_t n = 0;

	while (*spec) {
		long long v[5];
		char *end;

		if (n == max)
			return -EINVAL;
		for (int i = 0; i < 5; i++) {
			v[i] = strtoll(spec, &end, 10);
			if (end == spec || *end != (i < 4 ? ':' : (*end ? ',' : '\0')))
				return -EINVAL;
			if (v[i] < -1000000000 || v[i] > (i == 0 ? (long long)UINT32_MAX : 1000000000))
				return -EINVAL;
			spec = *end ? end + 1 : end;
		}
		if (v[0] <= 0)
			return -EINVAL;
		out[n] = (struct gs_zone_bounds){ .id = (uint32_t)v[0],
			.min_x = (float)v[1], .min_y = (float)v[2],
			.max_x = (float)v[3], .max_y = (float)v[4] };
		if (!gs_rules_zone_valid(&out[n]))
			return -EINVAL;
		n++;
	}
	return (int)n;
}

bool gs_rules_zone_valid(const struct gs_zone_bounds *z)
{
	return isfinite(z->min_x) && isfinite(z->min_y) && isfinite(z->max_x) &&
	       isfinite(z->max_y) && z->min_x <= z->max_x && z->min_y <= z->max_y;
}

bool gs_rules_point_in_zone(const struct gs_zone_bounds *z, float x, float y)
{
	/* Comparisons with NaN are false, but say it outright. */
	if (!isfinite(x) || !isfinite(y))
		return false;
	return x >= z->min_x && x <= z->max_x && y >= z->min_y && y <= z->max_y;
}

/*
 * Decode one UTF-8 sequence at s[0..len) into *cp; returns its length in
 * bytes, or 0 if it is not a valid, shortest-form encoding of a scalar
 * value.
 */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0];
	size_t n;
	uint32_t min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xE0) == 0xC0) {
		n = 2, min = 0x80, c &= 0x1F;
	} else if ((c & 0xF0) == 0xE0) {
		n = 3, min = 0x800, c &= 0x0F;
	} else if ((c & 0xF8) == 0xF0) {
		n = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0; /* a continuation byte or 0xF8..0xFF as a lead */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	*cp = c;
	return n;
}

/* Walk text[0..len) as UTF-8; false at the first invalid sequence or,
 * unless controls_ok, at the first control character. */
static bool utf8_scan(const char *text, size_t len, bool controls_ok)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t i = 0;

	while (i < len) {
		uint32_t cp;
		size_t n = utf8_decode(s + i, len - i, &cp);

		if (n == 0)
			return false;
		if (!controls_ok && (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)))
			return false;
		i += n;
	}
	return true;
}

bool gs_rules_utf8_valid(const char *text, size_t len)
{
	return utf8_scan(text, len, true);
}

bool gs_rules_chat_valid(const char *text, size_t len)
{
	if (!text || len < 1 || len > GS_RULES_CHAT_MAX)
		return false;
	return utf8_scan(text, len, false);
}

bool gs_rules_earn_valid(uint32_t amount)
{
	return amount >= 1 && amount <= GS_RULES_EARN_MAX;
}
