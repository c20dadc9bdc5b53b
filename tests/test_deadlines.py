"""Replies are matched on the gateway's request id, and every hop drops work
whose deadline has passed (issue 11, item 3). A process is stopped with
SIGSTOP past the gateway's request timeout, so the client is told TIMEOUT
while its request waits in a socket; then it is let go:

  seq_reuse            gamesrv stopped: a move times out as seq 77 and the
                       client reuses 77 for a ping. The ping must get its
                       Pong (not the old MoveReply), and the move must never
                       be applied (the saved position stays).
  earn_gamesrv_stall   gamesrv stopped: an earn answered TIMEOUT is not
                       applied when gamesrv resumes.
  earn_dbproxy_stall   dbproxy stopped: the earn's AddGold reaches dbproxy
                       after gamesrv's deadline (the remaining one, carried
                       over the link) and is not applied.

Usage: test_deadlines.py BUILD_DIR CASE
"""
import contextlib
import os
import signal

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error

# A short request timeout, and a gateway patient enough with a silent
# gamesrv that the link outlives the stop (gamesrv's own dead time is 5 s).
STALL_ENV = {"RINGGATE_GATEWAY_ARGS": "--log-level debug --heartbeat-ms 200 --dead-ms 10000 "
                                      "--request-timeout-ms 1000"}


@contextlib.contextmanager
def stopped(cluster, proc):
    """proc stopped (SIGSTOP) inside the block, always let go after it."""
    pid = cluster.pid(proc)
    rt.log("SIGSTOP %s (pid %d)" % (proc, pid))
    os.kill(pid, signal.SIGSTOP)
    try:
        # SIGSTOP stops the threads one by one: a request sent before the
        # last has stopped could still be answered.
        rt.eventually(lambda: rt.all_threads_stopped(pid), what="%s stopped" % proc)
        yield
    finally:
        rt.log("SIGCONT %s (pid %d)" % (proc, pid))
        os.kill(pid, signal.SIGCONT)


def timed_out(client, seq, **body):
    """Send request seq and wait for its TIMEOUT."""
    client.send(rt.client_pb2.ClientMessage(seq=seq, **body))
    expect_error(client.wait_reply(seq, timeout=10), "TIMEOUT")


def seq_reuse(build_dir):
    with rt.Cluster(build_dir, STALL_ENV) as cluster:
        ivy = cluster.client("ivy")
        cpb = rt.client_pb2  # loaded by the first client
        expect(ivy.login("ivy", "ivy-pw"), "login")
        expect(ivy.move(1, 1), "move")
        with stopped(cluster, "gamesrv"):
            timed_out(ivy, 77, move=cpb.MoveRequest(x=5, y=5))
            ivy.send(cpb.ClientMessage(seq=77, ping=cpb.PingRequest(client_time=7)))
        reply = ivy.wait_reply(77)
        assert body_of(reply) == "pong", "seq 77 reused for a ping got: %s" % reply
        ivy.seq = 100  # request() numbers from here, past the seqs used above
        expect(ivy.logout(), "logout")
        row = cluster.db_player("ivy")
        assert (row["x"], row["y"]) == (1, 1), "a move told TIMEOUT was applied: %s" % row


def earn_stall(build_dir, proc):
    """An earn answered TIMEOUT while proc was stopped is never applied."""
    with rt.Cluster(build_dir, STALL_ENV) as cluster:
        jo = cluster.client("jo")
        expect(jo.login("jo", "jo-pw"), "login")
        assert expect(jo.earn(5), "earn").gold == 5
        with stopped(cluster, proc):
            timed_out(jo, 50, earn=rt.client_pb2.EarnRequest(amount=7))
        jo.seq = 100
        # Answered after the old earn was read (and dropped): gamesrv
        # handles a link's requests in order, dbproxy's writer is FIFO.
        assert expect(jo.earn(1), "earn").gold == 6, "an earn told TIMEOUT was applied"
        assert cluster.db_player("jo")["gold"] == 6


rt.main(cases={"seq_reuse": seq_reuse,
               "earn_gamesrv_stall": lambda build_dir: earn_stall(build_dir, "gamesrv"),
               "earn_dbproxy_stall": lambda build_dir: earn_stall(build_dir, "dbproxy")})
