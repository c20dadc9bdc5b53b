/*
 * The io_uring engine of a libnet built without liburing (CMake found no
 * liburing, or RINGGATE_URING=OFF): built instead of engine_uring.c.
 *
 * The engine keeps its name, so that asking for it (RINGGATE_ENGINE=uring,
 * net_runtime_config.engine) is what it is on a kernel without io_uring,
 * -ENOTSUP, and not an unknown name; without a forced choice the probe
 * moves on to epoll. The core calls no other hook of an engine whose probe
 * fails, so there are none.
 */
#include "internal.h"

#include <errno.h>

static int uring_absent_probe(void)
{
	return -ENOTSUP;
}

const struct net__engine net__engine_uring = {
	.name = "uring",
	.probe = uring_absent_probe,
};
