#!/usr/bin/env python3
"""dbproxy on PostgreSQL, as a process (issue 13): a private PostgreSQL 15
(tests/ringgate_test/postgres.py) and dbproxy --backend postgres, spoken
to like gamesrv (test_process.py's Link).

Cases:
  persist        login, pipelined earns, a save; dbproxy killed with SIGKILL
                 and started again: every acknowledged write is there; a
                 second dbproxy on the same database serves the same rows.
  server_restart PostgreSQL killed (SIGKILL) under earns: dbproxy answers
                 DB_UNAVAILABLE at once and reports backend_up 0 in
                 /metrics; after the server is back it reconnects by
                 itself, and resending every unacknowledged earn (same
                 op_id) leaves exactly the sum of all earns, once each.
  bad_start      no DSN, a DSN that does not parse, a server that is not
                 there: a clear error and a non-zero exit, at once.
usage: test_postgres.py BUILD_DIR CASE
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402
from ringgate_test import postgres  # noqa: E402
from test_process import PASSWORD, STEP_TIMEOUT, Link, expect  # noqa: E402

# An answer while the server is down must come at once, not after a
# connect or I/O timeout (seconds): this much covers a loaded sanitizer run.
PROMPT_S = 1.5


def start_dbproxy(build_dir, work, pg, *extra, admin_port_file=None):
    """dbproxy on pg; with admin_port_file, its metrics on any free port,
    written there."""
    return rt.start("dbproxy", build_dir, work, "--backend", "postgres", "--postgres-dsn",
                    pg.dsn, *extra, insecure=True, admin_port_file=admin_port_file)


def metric(admin_port, name):
    """One unlabelled value from dbproxy's /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin_port, timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError("no metric " + name)


def add_gold(player_id, amount, op_id=0):
    def fill(m):
        m.add_gold.player_id = player_id
        m.add_gold.amount = amount
        m.add_gold.op_id = op_id
    return fill


def login(link, name):
    reply = link.login(name, PASSWORD)
    expect(reply.status == rt.internal_pb2.DB_OK, "login %s: %r" % (name, reply))
    return reply.login.player


def persist(build_dir):
    pb = rt.internal_pb2
    pg = postgres.start()
    work = rt.temp_dir("dbproxy_pg.")
    server = start_dbproxy(build_dir, work, pg)
    link = Link(server.port)
    link.hello()
    player = login(link, "alice")
    expect(player.gold == 0, "a new player: %r" % player)
    reply = link.login("alice", "wrong")
    expect(reply.status == pb.DB_WRONG_PASSWORD, "wrong password: %r" % reply)
    ids = [link.request(add_gold(player.player_id, amount)) for amount in range(1, 31)]
    total = 0
    for amount, request_id in zip(range(1, 31), ids):
        reply = link.recv()
        total += amount
        expect(reply.request_id == request_id and reply.status == pb.DB_OK
               and reply.add_gold.gold == total, "earn %d: %r" % (amount, reply))

    def save(m):
        m.save.player_id = player.player_id
        m.save.zone = 3
        m.save.x = 1.25
        m.save.y = -7.5
    expect(link.call(save).status == pb.DB_OK, "save")
    link.close()
    server.kill()

    server = start_dbproxy(build_dir, work, pg)
    # A second dbproxy on the same server: no file lock, same rows.
    other = start_dbproxy(build_dir, rt.temp_dir("dbproxy_pg2."), pg)
    for port in (server.port, other.port):
        link = Link(port)
        link.hello()
        p = login(link, "alice")
        expect(p.gold == total and p.zone == 3 and p.x == 1.25 and p.y == -7.5,
               "acknowledged state after SIGKILL: %r (gold %d)" % (p, total))
        link.close()
    expect(pg.psql("SELECT gold FROM players WHERE name = 'alice'") == str(total),
           "the row in PostgreSQL")
    expect(server.stop() == 0 and other.stop() == 0, "SIGTERM exits 0")


def server_restart(build_dir):
    pb = rt.internal_pb2
    pg = postgres.start()
    work = rt.temp_dir("dbproxy_pg.")
    admin_file = os.path.join(work, "dbproxy.admin-port")
    server = start_dbproxy(build_dir, work, pg, admin_port_file=admin_file)
    admin = rt.procs.port_in(admin_file)
    link = Link(server.port)
    link.hello()
    player = login(link, "bob")
    reply = link.call(lambda m: m.new_epoch.SetInParent())
    expect(reply.status == pb.DB_OK, "new epoch: %r" % reply)
    epoch = reply.new_epoch.epoch
    expect(metric(admin, "ringgate_dbproxy_backend_up") == 1, "backend up")

    # Earns with op_ids; the server dies part-way. Each earn is resent
    # (same op_id) until it is acknowledged, applied or duplicate.
    amounts = list(range(1, 41))
    pending = list(range(len(amounts)))  # indexes not yet acknowledged
    unavailable = slow = 0
    killed = False
    while pending:
        i = pending[0]
        if i == 15 and not killed:
            pg.kill9()
            killed = True
            kill_time = time.monotonic()
        began = time.monotonic()
        reply = link.call(add_gold(player.player_id, amounts[i], epoch << 32 | (i + 1)))
        took = time.monotonic() - began
        if reply.status == pb.DB_OK:
            pending.pop(0)
            continue
        expect(reply.status == pb.DB_UNAVAILABLE, "earn while down: %r" % reply)
        unavailable += 1
        if unavailable > 1 and took > PROMPT_S:
            slow += 1  # the first one may be the one that met the broken connection
        if unavailable == 3:
            expect(metric(admin, "ringgate_dbproxy_backend_up") == 0, "backend down in /metrics")
            pg.start()  # crash recovery, then dbproxy reconnects by itself
        time.sleep(0.05)
        expect(time.monotonic() - kill_time < 60, "dbproxy never came back")
    expect(killed and unavailable >= 3, "saw the outage (%d unavailable)" % unavailable)
    expect(slow == 0, "%d unavailable answers took over %.1f s" % (slow, PROMPT_S))
    expect(metric(admin, "ringgate_dbproxy_backend_up") == 1, "backend up again")
    expect(metric(admin, "ringgate_dbproxy_backend_reconnects_total") >= 1, "reconnect counted")
    expect(pg.psql("SELECT gold FROM players WHERE name = 'bob'") == str(sum(amounts)),
           "every earn exactly once: gold %s, want %d" % (
               pg.psql("SELECT gold FROM players WHERE name = 'bob'"), sum(amounts)))
    # Logins (the workers' own connections) recover too.
    rt.eventually(lambda: link.login("bob", PASSWORD).status == pb.DB_OK, timeout=30,
                  what="login after the restart")
    link.close()
    expect(server.stop() == 0, "SIGTERM exits 0")


def bad_start(build_dir):
    pg_missing = postgres.missing_reason()
    if pg_missing:
        rt.skip(pg_missing)
    work = rt.temp_dir("dbproxy_pg.")
    # A port nobody listens on: one bound (so that nobody else takes it)
    # and never listened on, which refuses connections.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]

    def run(*args):
        began = time.monotonic()
        res = subprocess.run(rt.procs.argv("dbproxy", build_dir, "--backend", "postgres", *args,
                                           run_dir=os.path.join(work, "run"), insecure=True),
                             stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        return res, time.monotonic() - began

    res, _ = run()
    expect(res.returncode == 2 and b"needs --postgres-dsn" in res.stderr,
           "no DSN: %r" % (res,))
    res, _ = run("--postgres-dsn", "host=127.0.0.1 nosuchkey=1 password=hunter2")
    expect(res.returncode == 1 and b"DSN does not parse" in res.stderr
           and b"hunter2" not in res.stderr, "bad DSN: %r" % (res,))
    res, took = run("--postgres-dsn", "host=127.0.0.1 port=%d user=postgres" % port)
    expect(res.returncode == 1 and b"cannot connect" in res.stderr, "no server: %r" % (res,))
    expect(took < 20, "no server: took %.1f s" % took)


if __name__ == "__main__":
    rt.main(cases={"persist": persist, "server_restart": server_restart,
                   "bad_start": bad_start})
