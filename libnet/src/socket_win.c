/*
 * Windows sockets: the twin of socket_posix.c. The few synchronous socket
 * calls the core makes outside the engine (creating, binding, naming,
 * closing), plus what the IOCP engine shares with them: WSAStartup once per
 * process and the mapping of winsock errors to the negative errno values
 * the whole library speaks.
 *
 * Every socket is created overlapped (WSA_FLAG_OVERLAPPED) and not
 * inheritable, so it can be associated with a completion port. A stream
 * socket for dialing may come from the calling loop's reuse pool (a socket
 * that DisconnectEx(TF_REUSE_SOCKET) prepared; see engine_iocp.c).
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static INIT_ONCE wsa_once = INIT_ONCE_STATIC_INIT;
static int wsa_status;

static BOOL CALLBACK wsa_startup(PINIT_ONCE once, PVOID param, PVOID *context)
{
	WSADATA data;
	int err = WSAStartup(MAKEWORD(2, 2), &data);

	(void)once;
	(void)param;
	(void)context;
	/* Never matched by a WSACleanup: the library may be used until exit. */
	wsa_status = err ? net__wsa_errno((DWORD)err) : 0;
	return TRUE;
}

int net__wsa_init(void)
{
	InitOnceExecuteOnce(&wsa_once, wsa_startup, NULL, NULL);
	return wsa_status;
}

int net__wsa_errno(DWORD wsa_error)
{
	switch (wsa_error) {
	case WSAEINTR: return -EINTR;
	case WSAEBADF: case WSAENOTSOCK: case ERROR_INVALID_HANDLE: return -EBADF;
	case WSAEACCES: case ERROR_ACCESS_DENIED: return -EACCES;
	case WSAEFAULT: return -EFAULT;
	case WSAEINVAL: case ERROR_INVALID_PARAMETER: return -EINVAL;
	case WSAEMFILE: case ERROR_TOO_MANY_OPEN_FILES: return -EMFILE;
	case WSAEWOULDBLOCK: return -EWOULDBLOCK;
	case WSAEINPROGRESS: return -EINPROGRESS;
	case WSAEALREADY: return -EALREADY;
	case WSAEMSGSIZE: case ERROR_MORE_DATA: return -EMSGSIZE;
	case WSAEOPNOTSUPP: case ERROR_NOT_SUPPORTED: return -EOPNOTSUPP;
	case WSAEAFNOSUPPORT: case WSAEPFNOSUPPORT: return -EAFNOSUPPORT;
	case WSAEADDRINUSE: case ERROR_ADDRESS_ALREADY_ASSOCIATED: return -EADDRINUSE;
	case WSAEADDRNOTAVAIL: return -EADDRNOTAVAIL;
	case WSAENETDOWN: return -ENETDOWN;
	case WSAENETUNREACH: case ERROR_NETWORK_UNREACHABLE: return -ENETUNREACH;
	case WSAENETRESET: return -ENETRESET;
	case WSAECONNABORTED: case ERROR_CONNECTION_ABORTED: case ERROR_REQUEST_ABORTED:
		return -ECONNABORTED;
	case WSAECONNRESET: case ERROR_NETNAME_DELETED: return -ECONNRESET;
	case WSAENOBUFS: case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return -ENOBUFS;
	case WSAEISCONN: return -EISCONN;
	case WSAENOTCONN: case ERROR_NOT_CONNECTED: return -ENOTCONN;
	case WSAESHUTDOWN: return -NET_ESHUTDOWN;
	case WSAETIMEDOUT: case ERROR_SEM_TIMEOUT: case WAIT_TIMEOUT: return -ETIMEDOUT;
	case WSAECONNREFUSED: case ERROR_CONNECTION_REFUSED: return -ECONNREFUSED;
	case WSAEHOSTUNREACH: case ERROR_HOST_UNREACHABLE: return -EHOSTUNREACH;
	case WSA_OPERATION_ABORTED: return -ECANCELED;
	case WSANOTINITIALISED: case WSASYSNOTREADY: case WSAVERNOTSUPPORTED: return -ENOTSUP;
	default: return -EIO;
	}
}

int net__sock_new(int family, net__sock_t *out)
{
	SOCKET sock;
	int err = net__wsa_init();

	if (err)
		return err;
	sock = WSASocketW(family, SOCK_STREAM, IPPROTO_TCP, NULL, 0,
			  WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
	if (sock == INVALID_SOCKET)
		return net__wsa_errno((DWORD)WSAGetLastError());
	*out = (net__sock_t)sock;
	return 0;
}

int net__sock_stream(int family, net__sock_t *out)
{
	struct net_loop *loop = net_loop_current();

	/* On a loop thread, a socket that DisconnectEx prepared for reuse
	 * saves creating (and associating) a new one. */
	if (loop && net__iocp_reuse_take(loop, family, out))
		return 0;
	return net__sock_new(family, out);
}

int net__sock_listen(const struct sockaddr_storage *addr, socklen_t addr_len, int backlog,
		     net__sock_t *out, uint16_t *port_out)
{
	struct sockaddr_storage bound;
	int bound_len = sizeof(bound);
	BOOL exclusive = TRUE;
	net__sock_t handle;
	SOCKET sock;
	int err;

	err = net__sock_new(addr->ss_family, &handle);
	if (err)
		return err;
	sock = (SOCKET)handle;
	/* Windows' SO_REUSEADDR would let another process steal the port;
	 * rebinding next to TIME_WAIT connections works without it. */
	setsockopt(sock, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&exclusive,
		   sizeof(exclusive));
	if (bind(sock, (const struct sockaddr *)addr, addr_len) == SOCKET_ERROR ||
	    listen(sock, backlog) == SOCKET_ERROR ||
	    getsockname(sock, (struct sockaddr *)&bound, &bound_len) == SOCKET_ERROR) {
		err = net__wsa_errno((DWORD)WSAGetLastError());
		closesocket(sock);
		return err;
	}
	*port_out = ntohs(bound.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&bound)->sin6_port
				  : ((struct sockaddr_in *)&bound)->sin_port);
	*out = (net__sock_t)sock;
	return 0;
}

void net__sock_tune(net__sock_t sock, uint32_t send_buffer)
{
	BOOL one = TRUE;
	int sndbuf = (int)send_buffer;

	/* Sends are gathered per loop turn already; Nagle only adds delay.
	 * No non-blocking mode: every I/O on the socket is overlapped. */
	setsockopt((SOCKET)sock, IPPROTO_TCP, TCP_NODELAY, (const char *)&one, sizeof(one));
	if (send_buffer)
		setsockopt((SOCKET)sock, SOL_SOCKET, SO_SNDBUF, (const char *)&sndbuf, sizeof(sndbuf));
}

void net__sock_peer_addr(net__sock_t sock, struct net__addr *out)
{
	struct sockaddr_storage ss;
	int ss_len = sizeof(ss);

	/* Valid for AcceptEx/ConnectEx sockets once the engine has run
	 * SO_UPDATE_ACCEPT_CONTEXT / SO_UPDATE_CONNECT_CONTEXT on them. */
	ss.ss_family = 0;
	if (getpeername((SOCKET)sock, (struct sockaddr *)&ss, &ss_len) != 0)
		ss.ss_family = 0;
	net__addr_from_sockaddr((struct sockaddr *)&ss, out);
}

void net__sock_close(net__sock_t sock)
{
	/* NET__SOCK_INVALID: the engine kept the socket for reuse. */
	if (sock != NET__SOCK_INVALID)
		closesocket((SOCKET)sock);
}
