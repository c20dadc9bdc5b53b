/*
 * libnet_tests: run the case named on the command line (CTest runs each
 * case once per engine, with RINGGATE_ENGINE set), or list the cases when
 * called without one. The table comes from cases.txt through cases.inc
 * (see cases.h). The peer side of a test is either libnet itself (echo
 * ping-pong, reconnect) or a plain blocking socket, so the library is
 * checked against a client that does exactly what the test says, byte by
 * byte.
 */
#include "cases.h"

static const struct test_case cases[] = {
#define NET_TEST(name) { #name, test_##name },
#include "cases.inc"
#undef NET_TEST
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	int rc = test_main(cases, argc, argv);

	if (rc == 0 && argc >= 2)
		printf("%s: passed\n", argv[1]);
	return rc;
}
