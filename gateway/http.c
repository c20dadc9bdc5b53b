/*
 * gateway/http.c: the WebSocket port's request head (see http.h). Strict
 * where leniency only helps an attacker: CRLF line ends, no folded
 * headers, no control characters, a bounded head, one Sec-WebSocket-Key.
 * Hashing for the handshake is OpenSSL's (SHA-1 and base64, libcrypto).
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "http.h"

/* RFC 6455 §1.3: the GUID appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const char *gw_http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 426: return "Upgrade Required";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* RFC 7230 tchar: what a method or header name is made of. */
static bool is_tchar(uint8_t ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Copy data[0..len) with its surrounding spaces and tabs cut into out
 * (size bytes, NUL-terminated); false when it does not fit. */
static bool copy_trimmed(const uint8_t *data, size_t len, char *out, size_t size)
{
	while (len && (data[0] == ' ' || data[0] == '\t'))
		data++, len--;
	while (len && (data[len - 1] == ' ' || data[len - 1] == '\t'))
		len--;
	if (len >= size)
		return false;
	memcpy(out, data, len);
	out[len] = '\0';
	return true;
}

/* True when the comma-separated list value[0..len) holds token (any case). */
static bool list_has(const uint8_t *value, size_t len, const char *token)
{
	size_t tlen = strlen(token), at = 0;

	while (at < len) {
		size_t end = at, a, b;

		while (end < len && value[end] != ',')
			end++;
		for (a = at; a < end && (value[a] == ' ' || value[a] == '\t'); a++)
			;
		for (b = end; b > a && (value[b - 1] == ' ' || value[b - 1] == '\t'); b--)
			;
		if (b - a == tlen && strncasecmp((const char *)value + a, token, tlen) == 0)
			return true;
		at = end + 1;
	}
	return false;
}

/* The request line data[0..len) (no CRLF): 0 or a negative status. */
static long parse_request_line(const uint8_t *data, size_t len, struct gw_http_request *out)
{
	const uint8_t *sp1 = memchr(data, ' ', len), *target, *sp2, *query;
	size_t method_len, target_len, version_len;

	if (!sp1)
		return -400;
	method_len = (size_t)(sp1 - data);
	for (size_t i = 0; i < method_len; i++)
		if (!is_tchar(data[i]))
			return -400;
	target = sp1 + 1;
	sp2 = memchr(target, ' ', len - method_len - 1);
	if (!sp2 || method_len == 0)
		return -400;
	target_len = (size_t)(sp2 - target);
	version_len = len - method_len - 1 - target_len - 1;
	if (target_len == 0 || target[0] != '/')
		return -400;
	for (size_t i = 0; i < target_len; i++)
		if (target[i] <= 0x20 || target[i] >= 0x7f)
			return -400;
	if (version_len < 5 || memcmp(sp2 + 1, "HTTP/", 5) != 0)
		return -400;
	if (version_len != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) != 0 &&
				 memcmp(sp2 + 1, "HTTP/1.0", 8) != 0))
		return -505;
	if (method_len != 3 || memcmp(data, "GET", 3) != 0)
		return -405;
	query = memchr(target, '?', target_len);
	if (query)
		target_len = (size_t)(query - target);
	if (target_len >= sizeof(out->path))
		return -414;
	memcpy(out->path, target, target_len);
	out->path[target_len] = '\0';
	return 0;
}

/* One header line data[0..len) (no CRLF): 0 or a negative status. */
static long parse_header(const uint8_t *data, size_t len, struct gw_http_request *out)
{
	const uint8_t *colon = memchr(data, ':', len), *value;
	size_t name_len, value_len;

	if (!colon || colon == data)
		return -400; /* a folded line (leading space) lands here too */
	name_len = (size_t)(colon - data);
	for (size_t i = 0; i < name_len; i++)
		if (!is_tchar(data[i]))
			return -400;
	value = colon + 1;
	value_len = len - name_len - 1;
	for (size_t i = 0; i < value_len; i++)
		if ((value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
			return -400;

#define NAME_IS(lit) (name_len == sizeof(lit) - 1 && strncasecmp((const char *)data, lit, name_len) == 0)
	if (NAME_IS("Upgrade")) {
		out->upgrade_websocket |= list_has(value, value_len, "websocket");
	} else if (NAME_IS("Connection")) {
		out->connection_upgrade |= list_has(value, value_len, "upgrade");
	} else if (NAME_IS("Sec-WebSocket-Key")) {
		if (out->has_key || !copy_trimmed(value, value_len, out->key, sizeof(out->key)))
			return -400;
		out->has_key = true;
	} else if (NAME_IS("Sec-WebSocket-Version")) {
		if (out->has_version ||
		    !copy_trimmed(value, value_len, out->version, sizeof(out->version)))
			return -400;
		out->has_version = true;
	}
#undef NAME_IS
	return 0;
}

long gw_http_parse(const uint8_t *data, size_t len, struct gw_http_request *out)
{
	struct gw_http_request req = { 0 };
	size_t scan = len < GW_HTTP_HEAD_MAX ? len : GW_HTTP_HEAD_MAX;
	size_t at = 0, head_len = 0;
	unsigned headers = 0;
	long err;

	for (size_t i = 3; i < scan; i++) {
		if (data[i] == '\n' && data[i - 1] == '\r' && data[i - 2] == '\n' &&
		    data[i - 3] == '\r') {
			head_len = i + 1;
			break;
		}
	}
	if (head_len == 0)
		return len >= GW_HTTP_HEAD_MAX ? -431 : 0;

	/* Every line ends in CRLF; the head ends with an empty one. */
	for (bool first = true;; first = false) {
		const uint8_t *lf = memchr(data + at, '\n', head_len - at);
		size_t line_len;

		if (!lf || lf == data + at || lf[-1] != '\r')
			return -400; /* a bare LF */
		line_len = (size_t)(lf - (data + at)) - 1;
		if (line_len == 0)
			break;
		if (memchr(data + at, '\r', line_len))
			return -400; /* a bare CR */
		if (first)
			err = parse_request_line(data + at, line_len, &req);
		else if (++headers > GW_HTTP_HEADERS_MAX)
			err = -431;
		else
			err = parse_header(data + at, line_len, &req);
		if (err < 0)
			return err;
		at += line_len + 2;
	}
	if (at + 2 != head_len || req.path[0] != '/')
		return -400; /* a head of no request line, or an empty line early */
	*out = req;
	return (long)head_len;
}

int gw_ws_accept(const struct gw_http_request *req, char accept[GW_WS_ACCEPT_LEN])
{
	unsigned char decoded[24], digest[SHA_DIGEST_LENGTH];
	unsigned char input[64 + sizeof(ws_guid)];
	size_t key_len = strlen(req->key);

	if (!req->upgrade_websocket)
		return 426;
	if (!req->connection_upgrade || !req->has_version)
		return 400;
	if (strcmp(req->version, "13") != 0)
		return 426;
	/* A key is 16 random bytes in base64: 22 characters and "==". */
	if (!req->has_key || key_len != 24 || req->key[22] != '=' || req->key[23] != '=' ||
	    req->key[21] == '=' ||
	    EVP_DecodeBlock(decoded, (const unsigned char *)req->key, 24) != 18)
		return 400;
	memcpy(input, req->key, key_len);
	memcpy(input + key_len, ws_guid, sizeof(ws_guid) - 1);
	SHA1(input, key_len + sizeof(ws_guid) - 1, digest);
	EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
	return 0;
}
