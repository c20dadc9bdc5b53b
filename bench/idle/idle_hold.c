/*
 * idle_hold: open --conns TCP connections to a server and hold them idle,
 * for the idle-connection benchmark (bench/run_idle). It never sends.
 *
 * Connections are bound to source addresses 127.0.0.<first>.. in turn
 * (--sources of them), so several holders together can pass one source
 * address's ephemeral port range and each stays under the per-process
 * open-files limit.
 *
 * Prints "held N" once every connect has completed, then waits for its
 * stdin to reach end of file (the driver's signal to let go), then prints
 * "closed_by_peer K": connections the server closed (or wrote to) while
 * they were held. Exit status 0 only if all were held and K is 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "first-source", required_argument, NULL, 'f' },
		{ "sources", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1";
	long port = 0, conns = 0, first = 1, sources = 1;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (ch) {
		case 'h': host = optarg; break;
		case 'p': port = strtol(optarg, NULL, 10); break;
		case 'c': conns = strtol(optarg, NULL, 10); break;
		case 'f': first = strtol(optarg, NULL, 10); break;
		case 's': sources = strtol(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (port < 1 || port > 65535 || conns < 1 || first < 1 || sources < 1
	    || first + sources > 255 || inet_pton(AF_INET, host, &dst.sin_addr) != 1) {
		fputs("usage: idle_hold --port N --conns N [--host A] [--first-source 1]"
		      " [--sources 1]\n", stderr);
		return 2;
	}
	struct pollfd *fds = calloc((size_t)conns, sizeof(*fds));
	if (!fds)
		return 1;
	long held = 0;
	for (; held < conns; held++) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000000u + (uint32_t)(first + held % sources));
		int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fprintf(stderr, "idle_hold: socket: %s\n", strerror(errno));
			break;
		}
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0
		    || connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			fprintf(stderr, "idle_hold: connection %ld: %s\n", held, strerror(errno));
			close(fd);
			break;
		}
		fds[held] = (struct pollfd){ .fd = fd, .events = POLLIN };
	}
	printf("held %ld\n", held);
	fflush(stdout);

	char buf[256];
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	/* Anything readable (data or end of file) means the server did not
	 * leave the connection idle and open. */
	long closed = 0;
	for (long done = 0; done < held; done += 1024) {
		long n = held - done < 1024 ? held - done : 1024;
		int ready = poll(fds + done, (nfds_t)n, 0);
		if (ready > 0)
			closed += ready;
	}
	printf("closed_by_peer %ld\n", closed);
	for (long i = 0; i < held; i++)
		close(fds[i].fd);
	free(fds);
	return held == conns && closed == 0 ? 0 : 1;
}
