/*
 * The IOCP engine's socket-reuse self-test (iocp.h): where Windows reuses
 * a socket after DisconnectEx(TF_REUSE_SOCKET), the engine hands it to the
 * next ConnectEx or AcceptEx; where it does not (Wine), a reused socket
 * fails or never completes, so the engine asks first, once per process,
 * over loopback, and uses only what worked.
 *
 * Every wait is bounded (PROBE_WAIT_MS): a wrong "no" only costs the
 * optimisation, a hang would cost the process.
 */
#include "internal.h"
#include "iocp.h"

#include <string.h>

/* How long a loopback operation may take before it counts as never
 * completing. Generous: a wrong "no" only costs the optimisation. */
#define PROBE_WAIT_MS 2000
#define PROBE_RECV_WAIT_MS 300

/* The extension functions, for the one run of the self-test. */
static const struct net__iocp_ext *ext;

struct probe_io {
	OVERLAPPED ov;
	char addrs[2 * ACCEPT_ADDR_LEN];
	char byte;
};

/* Wait for io's own completion; false on failure or timeout. */
static bool probe_wait(HANDLE port, struct probe_io *io, DWORD ms)
{
	for (;;) {
		DWORD bytes;
		ULONG_PTR key;
		OVERLAPPED *ov = NULL;
		BOOL ok = GetQueuedCompletionStatus(port, &bytes, &key, &ov, ms);

		if (!ov)
			return false;
		if (ov == &io->ov)
			return ok != FALSE;
	}
}

static SOCKET probe_socket(HANDLE port)
{
	net__sock_t sock;

	if (net__sock_new(AF_INET, &sock) != 0)
		return INVALID_SOCKET;
	if (CreateIoCompletionPort((HANDLE)(SOCKET)sock, port, 0, 0) == NULL) {
		closesocket((SOCKET)sock);
		return INVALID_SOCKET;
	}
	return (SOCKET)sock;
}

static bool probe_bind_any(SOCKET sock)
{
	struct sockaddr_in any;

	memset(&any, 0, sizeof(any));
	any.sin_family = AF_INET;
	return bind(sock, (struct sockaddr *)&any, sizeof(any)) == 0;
}

/* The connection waiting on listener, without blocking for long. */
static SOCKET probe_accept(SOCKET listener)
{
	struct timeval wait = { PROBE_WAIT_MS / 1000, 0 };
	fd_set readable;

	FD_ZERO(&readable);
	FD_SET(listener, &readable);
	if (select(0, &readable, NULL, NULL, &wait) != 1)
		return INVALID_SOCKET;
	return accept(listener, NULL, NULL);
}

/* Disconnect a connected socket for reuse as the engine does: only once
 * the peer's close has arrived (a receive of 0 bytes). */
static bool probe_disconnect(HANDLE port, struct probe_io *io, SOCKET sock, SOCKET peer)
{
	WSABUF wb;
	DWORD bytes = 0, flags = 0;

	closesocket(peer);
	wb.len = 1;
	wb.buf = &io->byte;
	memset(&io->ov, 0, sizeof(io->ov));
	if (net__iocp_started(WSARecv(sock, &wb, 1, NULL, &flags, &io->ov, NULL) == 0) != 0 ||
	    !probe_wait(port, io, PROBE_WAIT_MS) ||
	    !WSAGetOverlappedResult(sock, &io->ov, &bytes, FALSE, &flags) || bytes != 0)
		return false;
	memset(&io->ov, 0, sizeof(io->ov));
	return net__iocp_started(ext->disconnect_ex(sock, &io->ov, TF_REUSE_SOCKET, 0)) == 0 &&
	       probe_wait(port, io, PROBE_WAIT_MS);
}

/*
 * The self-test's overlapped blocks are static: an operation Wine never
 * completes must not write into freed memory later. The self-test runs
 * once per process (INIT_ONCE), so one block per test is enough.
 */
static struct probe_io connect_probe_io, accept_probe_io;

/* ConnectEx, DisconnectEx(TF_REUSE_SOCKET), ConnectEx again. */
static bool probe_connect_reuse(HANDLE port, SOCKET listener, const struct sockaddr_in *to)
{
	struct probe_io *io = &connect_probe_io;
	SOCKET sock = probe_socket(port);
	SOCKET peer;
	bool works = false;

	if (sock == INVALID_SOCKET || !probe_bind_any(sock))
		goto out;
	if (net__iocp_started(ext->connect_ex(sock, (const struct sockaddr *)to, sizeof(*to),
					      NULL, 0, NULL, &io->ov)) != 0 ||
	    !probe_wait(port, io, PROBE_WAIT_MS))
		goto out;
	setsockopt(sock, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0);
	peer = probe_accept(listener);
	if (peer == INVALID_SOCKET || !probe_disconnect(port, io, sock, peer))
		goto out;
	memset(&io->ov, 0, sizeof(io->ov));
	if (net__iocp_started(ext->connect_ex(sock, (const struct sockaddr *)to, sizeof(*to),
					      NULL, 0, NULL, &io->ov)) != 0 ||
	    !probe_wait(port, io, PROBE_WAIT_MS))
		goto out;
	peer = probe_accept(listener);
	if (peer != INVALID_SOCKET)
		closesocket(peer);
	works = true;
out:
	if (sock != INVALID_SOCKET)
		closesocket(sock);
	return works;
}

static bool probe_accept_into(HANDLE port, struct probe_io *io, SOCKET listener, SOCKET sock,
			      const struct sockaddr_in *to, SOCKET *client /* OUT */)
{
	DWORD bytes;

	memset(&io->ov, 0, sizeof(io->ov));
	*client = INVALID_SOCKET;
	if (net__iocp_started(ext->accept_ex(listener, sock, io->addrs, 0, (DWORD)ACCEPT_ADDR_LEN,
					     (DWORD)ACCEPT_ADDR_LEN, &bytes, &io->ov)) != 0)
		return false;
	*client = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (*client == INVALID_SOCKET ||
	    connect(*client, (const struct sockaddr *)to, sizeof(*to)) != 0 ||
	    !probe_wait(port, io, PROBE_WAIT_MS))
		return false;
	return setsockopt(sock, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, (const char *)&listener,
			  sizeof(listener)) == 0;
}

/* Send io->byte back from sock; the client must get it. */
static bool probe_echo_back(HANDLE port, struct probe_io *io, SOCKET sock, SOCKET client)
{
	struct timeval wait = { 0, PROBE_RECV_WAIT_MS * 1000 };
	fd_set readable;
	WSABUF wb;
	char got = 0;

	wb.len = 1;
	wb.buf = &io->byte;
	memset(&io->ov, 0, sizeof(io->ov));
	if (net__iocp_started(WSASend(sock, &wb, 1, NULL, 0, &io->ov, NULL) == 0) != 0 ||
	    !probe_wait(port, io, PROBE_WAIT_MS))
		return false;
	FD_ZERO(&readable);
	FD_SET(client, &readable);
	return select(0, &readable, NULL, NULL, &wait) == 1 && recv(client, &got, 1, 0) == 1 &&
	       got == io->byte;
}

/* AcceptEx, DisconnectEx(TF_REUSE_SOCKET), AcceptEx again; then the
 * reused socket must receive and send (Wine 8: a send fails with
 * WSAESHUTDOWN; other versions: the receive never completes). */
static bool probe_accept_reuse(HANDLE port, SOCKET listener, const struct sockaddr_in *to)
{
	struct probe_io *io = &accept_probe_io;
	SOCKET sock = probe_socket(port);
	SOCKET client = INVALID_SOCKET;
	WSABUF wb;
	DWORD flags = 0;
	bool works = false, disconnected;

	if (sock == INVALID_SOCKET || !probe_accept_into(port, io, listener, sock, to, &client))
		goto out;
	disconnected = probe_disconnect(port, io, sock, client);
	client = INVALID_SOCKET; /* probe_disconnect closed it */
	if (!disconnected || !probe_accept_into(port, io, listener, sock, to, &client) ||
	    send(client, "r", 1, 0) != 1)
		goto out;
	wb.len = 1;
	wb.buf = &io->byte;
	memset(&io->ov, 0, sizeof(io->ov));
	if (net__iocp_started(WSARecv(sock, &wb, 1, NULL, &flags, &io->ov, NULL) == 0) != 0)
		goto out;
	works = probe_wait(port, io, PROBE_RECV_WAIT_MS) && io->byte == 'r' &&
		probe_echo_back(port, io, sock, client);
out:
	if (client != INVALID_SOCKET)
		closesocket(client);
	if (sock != INVALID_SOCKET)
		closesocket(sock);
	return works;
}

void net__iocp_probe_reuse(const struct net__iocp_ext *functions, bool *connect_works,
			   bool *accept_works)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	net__sock_t listener;
	uint16_t port_no;
	HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, NULL, 0, 1);

	ext = functions;
	*connect_works = *accept_works = false;
	if (!port)
		return;
	if (net__sock_addr("127.0.0.1", 0, &addr, &addr_len) == 0 &&
	    net__sock_listen(&addr, addr_len, 8, &listener, &port_no) == 0) {
		((struct sockaddr_in *)&addr)->sin_port = htons(port_no);
		if (CreateIoCompletionPort((HANDLE)(SOCKET)listener, port, 0, 0) != NULL) {
			const struct sockaddr_in *to = (const struct sockaddr_in *)&addr;

			*connect_works = probe_connect_reuse(port, (SOCKET)listener, to);
			*accept_works = probe_accept_reuse(port, (SOCKET)listener, to);
		}
		closesocket((SOCKET)listener);
	}
	CloseHandle(port);
}
