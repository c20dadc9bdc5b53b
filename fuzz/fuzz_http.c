/*
 * fuzz_http: the WebSocket port's request-head parser and handshake check
 * (gateway/http.c), alone. The input is the bytes a client sent.
 *
 * Invariants: a head is judged whole only when it ends in a blank line
 * within the input and the bound; the path is NUL-terminated and starts
 * with '/'; an error is one of the statuses http.h lists; the accept key,
 * when given, is 28 base64 characters; nothing crashes or trips a
 * sanitizer.
 */
#include <string.h>

#include "harness.h"
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw_http_request req;
	char accept[GW_WS_ACCEPT_LEN];
	long n = gw_http_parse(data, size, &req);
	int status;

	if (n == 0) {
		FUZZ_CHECK(size < GW_HTTP_HEAD_MAX);
		return 0;
	}
	if (n < 0) {
		FUZZ_CHECK(n == -400 || n == -405 || n == -414 || n == -431 || n == -505);
		return 0;
	}
	FUZZ_CHECK((size_t)n <= size && n <= GW_HTTP_HEAD_MAX && n >= 4);
	FUZZ_CHECK(memcmp(data + n - 4, "\r\n\r\n", 4) == 0);
	FUZZ_CHECK(req.path[0] == '/' && memchr(req.path, '\0', sizeof(req.path)));
	status = gw_ws_accept(&req, accept);
	FUZZ_CHECK(status == 0 || status == 400 || status == 426);
	if (status == 0)
		FUZZ_CHECK(strlen(accept) == GW_WS_ACCEPT_LEN - 1);
	return 0;
}
