#!/usr/bin/env python3
"""Process-level test of dbproxy: a real process on 127.0.0.1, spoken to
over TCP with internal.proto (Python bindings generated at test time by
protoc from proto/, so the test always matches the contract).

It logs in (creating the account), checks a wrong password, adds gold and
saves a position, then kills dbproxy with SIGKILL, starts it again on the
same database and checks that everything that was acknowledged is there.
It also checks that bad fields get DB_BAD_REQUEST; that garbage, an
oversized frame, a missing, repeated or foreign Hello and a silent peer
close the link; that a second dbproxy on the same database refuses to
start; that passwords never reach the log; and that SIGTERM exits 0.

Every wait is bounded (STEP_TIMEOUT); the harness (tests/ringgate_test)
stops dbproxy on every exit path and fails the test on a sanitizer report.
usage: test_process.py BUILD_DIR
"""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402

STEP_TIMEOUT = 20.0  # seconds any single step may take (slow sanitizer builds)
PASSWORD = "pw-never-logged-7f3a"


def fail(message):
    raise AssertionError(message)


class Link(rt.Framed):
    """A gamesrv-like link: Hello, request ids, heartbeats (counting the
    ones dbproxy sends)."""

    def __init__(self, port, heartbeats=True):
        self.pb = rt.internal_pb2
        self.next_id = 1
        self.heartbeats_seen = 0
        super().__init__(rt.dial(port, timeout=STEP_TIMEOUT), rt.parser(self.pb.DbToGame),
                         "link", on_message=self._count_heartbeat,
                         heartbeat=self._heartbeat if heartbeats else None)

    def _heartbeat(self):
        return self.pb.GameToDb(heartbeat=self.pb.Heartbeat(sent_ms=int(time.time() * 1000)))

    def _count_heartbeat(self, conn, msg):
        if msg.WhichOneof("body") == "heartbeat":
            self.heartbeats_seen += 1
        return False

    def recv(self):
        """The next DbToGame that is not a heartbeat, or None on close."""
        return self.next(timeout=STEP_TIMEOUT)

    def hello(self):
        msg = self.pb.GameToDb()
        msg.hello.role = "gamesrv"
        msg.hello.instance = "test_process"
        self.send(msg)
        reply = self.recv()
        if reply is None or reply.WhichOneof("body") != "hello" or reply.hello.role != "dbproxy":
            fail("bad HelloReply: %r" % reply)

    def request(self, fill):
        """Send a GameToDb filled by fill(msg) with a fresh request_id."""
        msg = self.pb.GameToDb()
        msg.request_id = self.next_id
        msg.deadline_ms = int(STEP_TIMEOUT * 1000)
        self.next_id += 1
        fill(msg)
        self.send(msg)
        return msg.request_id

    def call(self, fill):
        request_id = self.request(fill)
        reply = self.recv()
        if reply is None:
            fail("link closed while waiting for request %d" % request_id)
        if reply.request_id != request_id:
            fail("reply for %d while waiting for %d" % (reply.request_id, request_id))
        return reply

    def login(self, name, password):
        def fill(m):
            m.login.name = name
            m.login.password = password.encode()  # a bytes field
        return self.call(fill)

    def closes(self):
        """True when dbproxy closes the link (heartbeats are skipped)."""
        return self.wait_closed(timeout=STEP_TIMEOUT, only=("heartbeat",))


def expect(cond, message):
    if not cond:
        fail(message)


def start(build_dir, work, *extra):
    return rt.start("dbproxy", build_dir, work, *extra, insecure=True)


def test(build_dir):
    pb = rt.internal_pb2
    work = rt.temp_dir("dbproxy_process.")
    ok = pb.DB_OK
    server = start(build_dir, work)
    link = Link(server.port)
    link.hello()

    reply = link.login("alice", PASSWORD)
    expect(reply.status == ok and reply.login.created, "first login creates: %r" % reply)
    player = reply.login.player
    expect(player.name == "alice" and player.gold == 0 and player.player_id > 0,
           "new player state: %r" % player)
    player_id = player.player_id

    reply = link.login("alice", "not-the-password")
    expect(reply.status == pb.DB_WRONG_PASSWORD, "wrong password refused: %r" % reply)
    reply = link.login("alice", PASSWORD)
    expect(reply.status == ok and not reply.login.created
           and reply.login.player.player_id == player_id, "second login: %r" % reply)

    # Pipelined writes: answered in order, each total the running sum.
    def add(amount):
        def fill(m):
            m.add_gold.player_id = player_id
            m.add_gold.amount = amount
        return fill
    ids = [link.request(add(amount)) for amount in range(1, 21)]
    total = 0
    for amount, request_id in zip(range(1, 21), ids):
        reply = link.recv()
        total += amount
        expect(reply is not None and reply.request_id == request_id and reply.status == ok
               and reply.add_gold.gold == total, "add_gold %d: %r" % (amount, reply))

    def save(m):
        m.save.player_id = player_id
        m.save.zone = 2
        m.save.x = 3.5
        m.save.y = -4.25
    reply = link.call(save)
    expect(reply.status == ok and reply.WhichOneof("body") == "save", "save: %r" % reply)

    # Well-formed but wrong requests are answered, not fatal.
    reply = link.call(add(0))
    expect(reply.status == pb.DB_BAD_REQUEST, "amount 0: %r" % reply)

    def add_unknown(m):
        m.add_gold.player_id = player_id + 1000
        m.add_gold.amount = 1
    reply = link.call(add_unknown)
    expect(reply.status == pb.DB_NOT_FOUND, "unknown player: %r" % reply)
    reply = link.login("bad name!", "x")
    expect(reply.status == pb.DB_BAD_REQUEST, "bad name: %r" % reply)
    reply = link.call(lambda m: None)  # a request_id and no body
    expect(reply.status == pb.DB_BAD_REQUEST, "empty body: %r" % reply)
    reply = link.login("alice", "p" * 129)
    expect(reply.status == pb.DB_BAD_REQUEST, "129-byte password: %r" % reply)

    def save_nan(m):
        m.save.player_id = player_id
        m.save.x = float("nan")
    reply = link.call(save_nan)
    expect(reply.status == pb.DB_BAD_REQUEST, "NaN position: %r" % reply)

    # kill -9 right after the acknowledgements: they must survive it.
    link.close()
    expect(server.kill() == -signal.SIGKILL, "SIGKILL")
    # The second life runs more loops and workers: replies must still find
    # the link they belong to.
    server = start(build_dir, work, "--loops", "3", "--login-threads", "3")
    link = Link(server.port)
    link.hello()
    reply = link.login("alice", PASSWORD)
    player = reply.login.player
    expect(reply.status == ok and not reply.login.created, "login after restart: %r" % reply)
    expect(player.gold == total and player.zone == 2 and player.x == 3.5 and player.y == -4.25,
           "acknowledged state survived SIGKILL: %r (gold should be %d)" % (player, total))

    # A second dbproxy on the same database refuses to start.
    second = subprocess.run(rt.procs.argv("dbproxy", build_dir, run_dir=os.path.join(work, "run"),
                                          insecure=True),
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=STEP_TIMEOUT)
    expect(second.returncode == 1 and b"in use by another dbproxy" in second.stderr,
           "second instance refused: %r" % (second,))

    # Untrusted input closes the link; the process carries on.
    garbage = Link(server.port, heartbeats=False)
    garbage.hello()
    garbage.send_raw(b"\x04\xff\xff\xff\xff")
    expect(garbage.closes(), "undecodable frame closes the link")
    garbage.close()

    # A name with a NUL would read as its prefix ("alice"): the link goes.
    nul = Link(server.port, heartbeats=False)
    nul.hello()

    def nul_name(m):
        m.login.name = "alice\0x"
        m.login.password = PASSWORD.encode()
    nul.request(nul_name)
    expect(nul.closes(), "a NUL in a string closes the link")
    nul.close()

    no_hello = Link(server.port, heartbeats=False)
    no_hello.request(add(1))
    expect(no_hello.closes(), "a request before Hello closes the link")
    no_hello.close()

    huge = Link(server.port, heartbeats=False)
    huge.send_raw(rt.encode_varint(1 << 30))
    expect(huge.closes(), "an oversized frame header closes the link")
    huge.close()

    twice = Link(server.port, heartbeats=False)
    twice.hello()
    hello = pb.GameToDb()
    hello.hello.role = "gamesrv"
    twice.send(hello)
    expect(twice.closes(), "a second Hello closes the link")
    twice.close()

    wrong_role = Link(server.port, heartbeats=False)
    hello.hello.role = "gateway"
    wrong_role.send(hello)
    expect(wrong_role.closes(), "a Hello from another role closes the link")
    wrong_role.close()

    silent = Link(server.port, heartbeats=False)
    silent.hello()
    expect(silent.closes(), "a silent peer is dropped after the dead time")
    silent.close()

    reply = link.login("alice", PASSWORD)
    expect(reply.status == ok and reply.login.player.gold == total, "still serving: %r" % reply)
    # The silent link's dead time passed meanwhile: dbproxy's heartbeats
    # (every 100 ms here) must have reached this link.
    expect(link.heartbeats_seen > 0, "dbproxy sends heartbeats")
    link.close()

    code = server.stop()
    log = server.text()
    expect(code == 0, "SIGTERM exits 0, got %d" % code)
    expect("stopped cleanly" in log, "drain logged")
    with open(server.log_path, "rb") as f:  # both lives
        expect(PASSWORD.encode() not in f.read(), "the password appears in the log")



if __name__ == "__main__":
    rt.main(test)
