"""No ghost players after a gamesrv stall (issue 11 item 2).

gamesrv is stopped (SIGSTOP) for about 2.5 s, below the links' dead time,
while 8 logged-in clients each send 60 KB chats (then smaller ones, to fill
what room is left): the gateway's link to gamesrv backs up to its
send-queue cap. Then every client hangs up. The
gateway's ClientGone for them meets the full queue; libnet used to drop it
in silence, and those players stayed online in gamesrv for good. Now a
frame that cannot be queued ends the link (SEND_OVERFLOW): gamesrv logs out
every player of that gateway when it sees the link close, and the gateway
redials. Afterwards no player may stay online without a client session,
and the cluster serves a new login.
"""
import os
import re
import signal
import time
import urllib.request

import ringgate_test as rt
from ringgate_test import expect, eventually

CLIENTS = 8
# Per client, within the gateway's 32 requests in flight: 60 KB chats to
# back the link up past its cap (and the kernel's buffers), then smaller
# and smaller ones, so what room is left in the queue is smaller than a
# ClientGone: the gateway cannot pass one on.
CHAT_SIZES = [60000] * 14 + [30000, 15000, 8000, 4000, 2000, 1000, 500, 250, 120, 60, 30, 15,
                             0, 0, 0, 0, 0, 0]
STALL_S = 2.5
# The gateway drops a gamesrv silent this long (its default --dead-ms is 5 s).
STALL_MAX_S = 4.0


def metric(cluster, proc, name):
    """An unlabelled sample from proc's GET /metrics."""
    url = "http://127.0.0.1:%d/metrics" % cluster.admin_ports[proc]
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return float(re.search(r"^%s (\S+)$" % re.escape(name), text, re.M).group(1))


def players_online(cluster):
    return metric(cluster, "gamesrv", "ringgate_gamesrv_players_online")


def test(build_dir):
    # The default heartbeat and dead time (1 s, 5 s): the stall stays below
    # it, so only the backed-up queue can end the link.
    env = {"RINGGATE_GATEWAY_ARGS": "--log-level debug"}
    # Players of a link that went wait for a resume: briefly, here.
    with rt.Cluster(build_dir, extra_env=env,
                    args={"gamesrv": ["--resume-grace-ms", "300"]}) as cluster:
        clients = []
        for i in range(CLIENTS):
            c = cluster.client("ghost%d" % i)
            expect(c.login("ghost%d" % i, "pw%d" % i), "login")
            clients.append(c)
        eventually(lambda: players_online(cluster) == CLIENTS, what="all players online")

        pid = cluster.pid("gamesrv")
        rt.log("kill -STOP gamesrv (pid %d)" % pid)
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            eventually(lambda: rt.all_threads_stopped(pid), what="gamesrv stopped")
            for size in CHAT_SIZES:
                for c in clients:
                    c.seq += 1
                    c.send(rt.client_pb2.ClientMessage(
                        seq=c.seq, chat=rt.client_pb2.ChatRequest(text="x" * size)))
            for c in clients:
                c.close()
            # The gateway has seen every client go (and so has tried to
            # tell gamesrv) before gamesrv runs again.
            eventually(lambda: metric(cluster, "gateway", "ringgate_gateway_clients") == 0,
                       timeout=STALL_MAX_S - (time.monotonic() - stopped), interval=0.05,
                       what="the gateway without clients while gamesrv is stopped")
            time.sleep(max(0.0, STALL_S - (time.monotonic() - stopped)))
        finally:
            os.kill(pid, signal.SIGCONT)
            rt.log("kill -CONT gamesrv after %.1f s" % (time.monotonic() - stopped))

        # Every client is gone: so must every player be.
        eventually(lambda: players_online(cluster) == 0, timeout=15,
                   what="no player online without a client session")
        rt.log("gateway: " + "; ".join(
            line.split(None, 3)[-1] for line in cluster.log_text("gateway").splitlines()
            if "gamesrv link" in line))
        # The link is rebuilt and the cluster serves a new login.
        fresh = cluster.client("fresh")
        eventually(lambda: rt.body_of(fresh.login("fresh", "fresh-pw")) == "login",
                   timeout=15, what="a new login after the stall")
        eventually(lambda: players_online(cluster) == 1, what="the new player online")
        fresh.close()


if __name__ == "__main__":
    rt.main(test)
