/*
 * What the IOCP engine (engine_iocp.c) shares with its socket-reuse
 * self-test (iocp_reuse_probe.c). Windows only.
 */
#ifndef NET_IOCP_H
#define NET_IOCP_H

#include <winsock2.h>
#include <mswsock.h>
#include <stdbool.h>

/* AcceptEx wants 16 bytes more than the largest address, per address. */
#define ACCEPT_ADDR_LEN (sizeof(struct sockaddr_storage) + 16)

/* The Microsoft extension functions the self-test needs (loaded by the
 * engine once per process). */
struct net__iocp_ext {
	LPFN_ACCEPTEX accept_ex;
	LPFN_CONNECTEX connect_ex;
	LPFN_DISCONNECTEX disconnect_ex;
};

/* 0 when an overlapped call is under way (its completion will be queued),
 * else the call's error as -errno. */
static inline int net__iocp_started(bool ok)
{
	DWORD err;

	if (ok)
		return 0;
	err = (DWORD)WSAGetLastError();
	return err == WSA_IO_PENDING ? 0 : net__wsa_errno(err);
}

/*
 * The self-test, run once per process: over loopback, does a socket
 * disconnected with DisconnectEx(TF_REUSE_SOCKET) work again for ConnectEx
 * (*connect_works) and for AcceptEx (*accept_works)? Blocks for up to a few
 * seconds where an operation never completes (Wine).
 */
void net__iocp_probe_reuse(const struct net__iocp_ext *ext, bool *connect_works /* OUT */,
			   bool *accept_works /* OUT */);

#endif /* NET_IOCP_H */
