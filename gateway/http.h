/*
 * gateway/http.h: the one HTTP/1.1 request the WebSocket port reads per
 * connection (RFC 7230's request head, RFC 6455 §4.2.1's upgrade), parsed
 * without the network so that fuzz/ can drive it alone.
 *
 * A connection sends one request head: GET of a page file (answered, then
 * closed) or GET /ws with the upgrade headers (answered 101, then it speaks
 * WebSocket). Anything else gets an HTTP error and a close.
 */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most bytes a request head may have, blank line included: more is 431. */
#define GW_HTTP_HEAD_MAX 8192

/* Most header lines a head may have: more is 431. */
#define GW_HTTP_HEADERS_MAX 64

/* The path the WebSocket upgrade is served at. */
#define GW_WS_PATH "/ws"

/* Sec-WebSocket-Accept's length (base64 of a SHA-1), NUL included. */
#define GW_WS_ACCEPT_LEN 29

/* What the gateway needs of a request head. */
struct gw_http_request {
	char path[256];          /* the target, without its query            */
	bool upgrade_websocket;  /* Upgrade: lists "websocket"               */
	bool connection_upgrade; /* Connection: lists "upgrade"              */
	bool has_key;            /* Sec-WebSocket-Key: was sent              */
	char key[64];            /* ... its value, trimmed                   */
	bool has_version;        /* Sec-WebSocket-Version: was sent          */
	char version[16];        /* ... its value, trimmed                   */
};

/*
 * Parse a request head from data[0..len). Returns the head's length
 * through its blank line when it is whole and well formed; 0 when more
 * bytes are needed (only while len < GW_HTTP_HEAD_MAX); or a negative HTTP
 * status when it is bad: -400 (malformed), -405 (not GET), -414 (target
 * too long), -431 (head too large), -505 (not HTTP/1.x). *out is filled on
 * success only.
 */
long gw_http_parse(const uint8_t *data, size_t len, struct gw_http_request *out /* OUT */);

/*
 * Check a parsed request for a WebSocket upgrade (GET /ws, version 13, a
 * key of 16 base64-encoded bytes) and write Sec-WebSocket-Accept into
 * accept. Returns 0, or the HTTP status to answer: 400 (bad or missing
 * headers), 426 (no Upgrade: websocket, or another Sec-WebSocket-Version:
 * the answer names version 13).
 */
int gw_ws_accept(const struct gw_http_request *req, char accept[GW_WS_ACCEPT_LEN] /* OUT */);

/* The reason phrase of an HTTP status this gateway answers. */
const char *gw_http_reason(int status);

#endif /* GATEWAY_HTTP_H */
