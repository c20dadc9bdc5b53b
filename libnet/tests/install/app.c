/*
 * An out-of-tree program built against an installed libnet: one echo
 * round trip through a server and a client service in one process.
 */
#include <net/net.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static atomic_int echoed;

static int echo(struct net_session *s, const uint8_t *body, size_t len)
{
	return net_session_send_frame(s, body, len);
}

static void greet(struct net_session *s)
{
	net_session_send_frame(s, "installed", 9);
}

static int check(struct net_session *s, const uint8_t *body, size_t len)
{
	(void)s;
	if (len == 9 && memcmp(body, "installed", 9) == 0)
		atomic_store(&echoed, 1);
	return 0;
}

int main(void)
{
	static const struct net_session_ops server_ops = { .on_frame = echo };
	static const struct net_session_ops client_ops = { .on_connected = greet, .on_frame = check };
	struct net_server_config sc = { .host = "127.0.0.1", .session = { .ops = &server_ops } };
	struct net_client_config cc = { .host = "127.0.0.1", .session = { .ops = &client_ops } };
	struct timespec tick = { 0, 10000000 };
	struct net_runtime *rt;
	struct net_server *srv;
	struct net_client *cli;

	if (net_runtime_create(NULL, &rt) || net_server_start(rt, &sc, &srv))
		return 1;
	cc.port = net_server_port(srv);
	if (net_client_start(rt, &cc, &cli) || net_runtime_start(rt))
		return 1;
	for (int i = 0; i < 500 && !atomic_load(&echoed); i++)
		nanosleep(&tick, NULL);
	printf("install app: engine %s, echo %s\n", net_runtime_engine(rt),
	       atomic_load(&echoed) ? "ok" : "missing");
	net_runtime_destroy(rt);
	return atomic_load(&echoed) ? 0 : 1;
}
