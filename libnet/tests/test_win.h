/*
 * The POSIX socket names libnet's tests use, on Windows (mingw-w64).
 *
 * The tests' peer side is plain blocking sockets held in ints, as on Linux;
 * winsock SOCKET values are small handles and fit. Included by
 * test_util.h on Windows only, before any other header could declare
 * close(): io.h and unistd.h come first, so the macro below never rewrites
 * their declarations. winsock itself is started by libnet (every case
 * creates its runtime before its first socket).
 */
#ifndef NET_TEST_WIN_H
#define NET_TEST_WIN_H

#include <io.h>
#include <unistd.h>
#include <winsock2.h>
#include <ws2tcpip.h>

#define close(fd) closesocket((SOCKET)(fd))
#define poll(fds, n, timeout) WSAPoll((fds), (n), (timeout))
#define SOCK_CLOEXEC 0   /* sockets are not inherited by default */
#define MSG_NOSIGNAL 0   /* no SIGPIPE on Windows */

#endif /* NET_TEST_WIN_H */
