/*
 * libnet on Windows: what the IOCP engine did with its sockets.
 *
 * A Windows-only companion of net/net.h (which it does not change). The
 * IOCP engine reuses a socket that DisconnectEx(TF_REUSE_SOCKET) prepared
 * for the next AcceptEx or ConnectEx, where that works. Whether it works is
 * decided once per process by a self-test on 127.0.0.1 when the engine is
 * first probed (Wine, for one, cannot: ConnectEx on a reused socket fails
 * with WSAEISCONN, and a receive on a socket reused by AcceptEx never
 * completes); where it does not, the engine closes sockets and creates new
 * ones. These counters say which path was taken.
 */
#ifndef NET_NET_IOCP_H
#define NET_NET_IOCP_H

#include "net/net.h"

#ifdef _WIN32
#ifdef __cplusplus
extern "C" {
#endif

struct net_iocp_counters {
	bool accept_reuse_works;   /* the self-test's verdicts                */
	bool connect_reuse_works;  /* (false before the engine was probed)    */
	uint64_t accept_fresh;     /* connections AcceptEx took into a new
				      socket                                  */
	uint64_t accept_reused;    /* ... into a socket DisconnectEx prepared */
	uint64_t connect_fresh;    /* ConnectEx calls made on a new socket    */
	uint64_t connect_reused;   /* ... on a socket DisconnectEx prepared   */
	uint64_t disconnect_reuse; /* DisconnectEx(TF_REUSE_SOCKET) completed */
	uint64_t shutdown_close;   /* shutdown + closesocket (not reusable)   */
	uint64_t reuse_fallbacks;  /* a reused socket failed at run time and a
				      new socket took its place               */
};

/*
 * Process-wide totals since start (all runtimes). Any thread. Declared on
 * Windows only (elsewhere this header declares nothing).
 */
NET_EXPORT void net_iocp_counters(struct net_iocp_counters *out /* OUT */);

#ifdef __cplusplus
}
#endif
#endif /* _WIN32 */

#endif /* NET_NET_IOCP_H */
