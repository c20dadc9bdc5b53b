/*
 * The examples' report of the IOCP engine's socket paths (Windows only):
 * whether DisconnectEx'd sockets were reused for AcceptEx/ConnectEx or, where
 * reuse does not work (Wine), closed and replaced by new ones.
 */
#ifndef NET_EXAMPLES_IOCP_COUNTERS_H
#define NET_EXAMPLES_IOCP_COUNTERS_H

#include <net/net_iocp.h>

#include <stdio.h>

static void print_iocp_counters(const char *who)
{
	struct net_iocp_counters c;

	net_iocp_counters(&c);
	printf("%s: iocp socket reuse works: accept %s, connect %s; AcceptEx fresh %llu reused %llu; "
	       "ConnectEx fresh %llu reused %llu; DisconnectEx(TF_REUSE_SOCKET) %llu; "
	       "shutdown+close %llu; fallbacks %llu\n",
	       who, c.accept_reuse_works ? "yes" : "no", c.connect_reuse_works ? "yes" : "no",
	       (unsigned long long)c.accept_fresh, (unsigned long long)c.accept_reused,
	       (unsigned long long)c.connect_fresh, (unsigned long long)c.connect_reused,
	       (unsigned long long)c.disconnect_reuse, (unsigned long long)c.shutdown_close,
	       (unsigned long long)c.reuse_fallbacks);
}

#endif /* NET_EXAMPLES_IOCP_COUNTERS_H */
