/*
 * Names for error codes and disconnect reasons. libnet reports errors as
 * negative errno values everywhere, so one table serves every engine.
 */
#include "internal.h"

#include <string.h>

const char *net_strerror(int err)
{
	/* strerror() is not thread-safe in general, but glibc's and mingw's
	 * return static strings for known codes, which is all we pass. */
	return strerror(err < 0 ? -err : err);
}

const char *net_reason_str(enum net_reason reason)
{
	static const char *const names[NET_REASON_COUNT] = {
		[NET_REASON_NONE] = "none",
		[NET_REASON_LOCAL] = "local",
		[NET_REASON_PEER_CLOSED] = "peer_closed",
		[NET_REASON_IO_ERROR] = "io_error",
		[NET_REASON_SEND_OVERFLOW] = "send_overflow",
		[NET_REASON_RECV_OVERFLOW] = "recv_overflow",
		[NET_REASON_FRAME_TOO_LARGE] = "frame_too_large",
		[NET_REASON_BAD_FRAME] = "bad_frame",
		[NET_REASON_APP_ERROR] = "app_error",
		[NET_REASON_IDLE_TIMEOUT] = "idle_timeout",
		[NET_REASON_SHUTDOWN] = "shutdown",
		[NET_REASON_FRAME_TIMEOUT] = "frame_timeout",
	};

	if ((unsigned)reason >= NET_REASON_COUNT)
		return "unknown";
	return names[reason];
}
