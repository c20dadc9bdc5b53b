/*
 * Addresses: parsing the numeric host:port services are given, and the
 * compact peer form sessions keep, with its text. Shared by every
 * platform; only the socket calls themselves live in socket_*.c.
 */
#include "internal.h"

#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#include <netinet/in.h>
#endif
#include <errno.h>
#include <stdio.h>
#include <string.h>

int net__sock_addr(const char *host, uint16_t port, struct sockaddr_storage *addr,
		   socklen_t *addr_len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;

	memset(addr, 0, sizeof(*addr));
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*addr_len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*addr_len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

void net__addr_from_sockaddr(const struct sockaddr *sa, struct net__addr *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;

		memcpy(out->bytes, &in4->sin_addr, 4);
		out->port = ntohs(in4->sin_port);
		out->family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		memcpy(out->bytes, &in6->sin6_addr, 16);
		out->port = ntohs(in6->sin6_port);
		out->family = AF_INET6;
	}
}

void net__addr_format(const struct net__addr *a, char *buf, size_t len, bool with_port)
{
	char host[46] = "?"; /* INET6_ADDRSTRLEN */

	if (a->family)
		inet_ntop(a->family, a->bytes, host, sizeof(host));
	if (with_port)
		snprintf(buf, len, a->family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, a->port);
	else
		snprintf(buf, len, a->family == AF_INET6 ? "[%s]" : "%s", host);
}
