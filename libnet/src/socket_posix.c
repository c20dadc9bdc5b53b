/*
 * POSIX sockets: the few synchronous socket calls the core makes outside
 * the engines (creating, binding, naming, closing). Everything that moves
 * data is an engine operation.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

int net__sock_stream(int family, net__sock_t *out)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	*out = (net__sock_t)fd;
	return 0;
}

int net__sock_listen(const struct sockaddr_storage *addr, socklen_t addr_len, int backlog,
		     net__sock_t *out, uint16_t *port_out)
{
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	net__sock_t sock = 0;
	int one = 1;
	int fd, err;

	err = net__sock_stream(addr->ss_family, &sock);
	if (err)
		return err;
	fd = (int)sock;
	/* Restarted servers must rebind at once despite TIME_WAIT peers. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)addr, addr_len) < 0 ||
	    listen(fd, backlog) < 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*port_out = ntohs(bound.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&bound)->sin6_port
				  : ((struct sockaddr_in *)&bound)->sin_port);
	*out = sock;
	return 0;
}

void net__sock_tune(net__sock_t sock, uint32_t send_buffer)
{
	int one = 1;
	int fd = (int)sock;
	int flags = fcntl(fd, F_GETFL);
	int sndbuf = (int)send_buffer;

	/* Sends are gathered per loop turn already; Nagle only adds delay. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (send_buffer)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void net__sock_peer_addr(net__sock_t sock, struct net__addr *out)
{
	struct sockaddr_storage ss;
	socklen_t ss_len = sizeof(ss);

	ss.ss_family = 0;
	if (getpeername((int)sock, (struct sockaddr *)&ss, &ss_len) != 0)
		ss.ss_family = 0;
	net__addr_from_sockaddr((struct sockaddr *)&ss, out);
}

void net__sock_close(net__sock_t sock)
{
	close((int)sock);
}
