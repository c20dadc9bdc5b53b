/*
 * Names for error codes and disconnect reasons. libnet reports errors as
 * negative errno values everywhere, so one table serves every engine.
 */
#include "internal.h"

#include <string.h>

const char *net_strerror(int err)
{
	int code = err < 0 ? -err : err;

#ifdef _WIN32
	/* The Windows C runtime's strerror() stops at code 42; the socket
	 * codes the IOCP engine maps to (POSIX numbering, from errno.h) need
	 * their own names. */
	switch (code) {
	case ECONNRESET: return "Connection reset by peer";
	case ECONNREFUSED: return "Connection refused";
	case ECONNABORTED: return "Connection aborted";
	case ETIMEDOUT: return "Connection timed out";
	case ENOTCONN: return "Transport endpoint is not connected";
	case EADDRINUSE: return "Address already in use";
	case ENETUNREACH: return "Network is unreachable";
	case EHOSTUNREACH: return "No route to host";
	case ECANCELED: return "Operation canceled";
	case ENOBUFS: return "No buffer space available";
	case EMSGSIZE: return "Message too long";
	case EBADMSG: return "Bad message";
	case ENOTSUP: return "Operation not supported";
	case NET_ESHUTDOWN: return "Cannot send after transport endpoint shutdown";
	}
#endif
	/* strerror() is not thread-safe in general, but glibc's and mingw's
	 * return static strings for known codes, which is all we pass. */
	return strerror(code);
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
		[NET_REASON_TLS] = "tls",
	};

	if ((unsigned)reason >= NET_REASON_COUNT)
		return "unknown";
	return names[reason];
}
