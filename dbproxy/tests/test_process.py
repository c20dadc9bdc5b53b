#!/usr/bin/env python3
"""Process-level test of dbproxy: a real process on 127.0.0.1, spoken to
over TCP with internal.proto (Python bindings generated here by protoc from
proto/, so the test always matches the contract).

It logs in (creating the account), checks a wrong password, adds gold and
saves a position, then kills dbproxy with SIGKILL, starts it again on the
same database and checks that everything that was acknowledged is there.
It also checks that bad fields get DB_BAD_REQUEST; that garbage, an
oversized frame, a missing, repeated or foreign Hello and a silent peer
close the link; that a second dbproxy on the same database refuses to
start; that passwords never reach the log; and that SIGTERM exits 0.

Every wait is bounded (STEP_TIMEOUT); the dbproxy child is killed and the
temporary directory removed on every exit path.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
from ringgate_test import encode_varint as varint  # noqa: E402

STEP_TIMEOUT = 20.0  # seconds any single step may take (slow sanitizer builds)
PASSWORD = "pw-never-logged-7f3a"
CHILDREN = []  # every dbproxy started, killed at exit whatever happened


def fail(message):
    raise AssertionError(message)


class Dbproxy:
    """One dbproxy child; its stderr is appended to log_path."""

    def __init__(self, exe, run_dir, log_path, extra=()):
        self.log_path = log_path
        self.log_start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [exe, "--run-dir", run_dir, "--port", "0", "--pwhash", "min",
             "--log-level", "debug", "--heartbeat-ms", "100", "--dead-ms", "1500",
             "--admin-port", "0",
             # The scripted gamesrv speaks the handshake-free protocol;
             # the handshake has its own tests (tests/test_link_auth.py).
             "--insecure-no-auth", *extra],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        CHILDREN.append(self.proc)
        log.close()
        self.port = self._wait_listening()

    def log_text(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode("utf-8", "replace")

    def _wait_listening(self):
        deadline = time.monotonic() + STEP_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.log_text())
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                fail("dbproxy exited with %d before listening:\n%s"
                     % (self.proc.returncode, self.log_text()))
            time.sleep(0.05)
        fail("dbproxy did not listen within %.0f s" % STEP_TIMEOUT)

    def kill(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("dbproxy did not exit within %.0f s of signal %d" % (STEP_TIMEOUT, sig))


class Link:
    """A gamesrv-like link: framing, Hello, request ids, heartbeats."""

    def __init__(self, pb, port, heartbeats=True):
        self.pb = pb
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT)
        self.buf = b""
        self.lock = threading.Lock()
        self.next_id = 1
        self.heartbeats_seen = 0
        self.stopping = threading.Event()
        self.heartbeat_thread = None
        if heartbeats:
            self.heartbeat_thread = threading.Thread(target=self._beat, daemon=True)
            self.heartbeat_thread.start()

    def _beat(self):
        while not self.stopping.wait(0.1):
            msg = self.pb.GameToDb()
            msg.heartbeat.sent_ms = int(time.time() * 1000)
            try:
                self.send(msg)
            except OSError:
                return

    def close(self):
        self.stopping.set()
        if self.heartbeat_thread:
            self.heartbeat_thread.join()
        self.sock.close()

    def send_raw(self, data):
        with self.lock:
            self.sock.sendall(data)

    def send(self, msg):
        body = msg.SerializeToString()
        self.send_raw(varint(len(body)) + body)

    def _read_frame(self):
        """The next frame's body, or None when the peer closed."""
        while True:
            length, shift, pos = 0, 0, 0
            while pos < len(self.buf):
                byte = self.buf[pos]
                length |= (byte & 0x7F) << shift
                shift += 7
                pos += 1
                if not byte & 0x80:
                    if len(self.buf) >= pos + length:
                        body = self.buf[pos:pos + length]
                        self.buf = self.buf[pos + length:]
                        return body
                    break
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data

    def recv(self):
        """The next DbToGame that is not a heartbeat, or None on close."""
        while True:
            body = self._read_frame()
            if body is None:
                return None
            msg = self.pb.DbToGame()
            msg.ParseFromString(body)
            if msg.WhichOneof("body") != "heartbeat":
                return msg
            self.heartbeats_seen += 1

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
            m.login.password = password
        return self.call(fill)

    def wait_closed(self):
        """True when dbproxy closes the link (heartbeats are skipped)."""
        try:
            return self.recv() is None
        except ConnectionResetError:
            return True


def expect(cond, message):
    if not cond:
        fail(message)


def scenario(pb, exe, run_dir, log_path):
    ok = pb.DB_OK
    server = Dbproxy(exe, run_dir, log_path)
    link = Link(pb, server.port)
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
    expect(server.kill(signal.SIGKILL) == -signal.SIGKILL, "SIGKILL")
    # The second life runs more loops and workers: replies must still find
    # the link they belong to.
    server = Dbproxy(exe, run_dir, log_path, ("--loops", "3", "--login-threads", "3"))
    link = Link(pb, server.port)
    link.hello()
    reply = link.login("alice", PASSWORD)
    player = reply.login.player
    expect(reply.status == ok and not reply.login.created, "login after restart: %r" % reply)
    expect(player.gold == total and player.zone == 2 and player.x == 3.5 and player.y == -4.25,
           "acknowledged state survived SIGKILL: %r (gold should be %d)" % (player, total))

    # A second dbproxy on the same database refuses to start.
    second = subprocess.run([exe, "--run-dir", run_dir, "--port", "0", "--insecure-no-auth"],
                            stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=STEP_TIMEOUT)
    expect(second.returncode == 1 and b"in use by another dbproxy" in second.stderr,
           "second instance refused: %r" % (second,))

    # Untrusted input closes the link; the process carries on.
    garbage = Link(pb, server.port, heartbeats=False)
    garbage.hello()
    garbage.send_raw(b"\x04\xff\xff\xff\xff")
    expect(garbage.wait_closed(), "undecodable frame closes the link")
    garbage.close()

    no_hello = Link(pb, server.port, heartbeats=False)
    no_hello.request(add(1))
    expect(no_hello.wait_closed(), "a request before Hello closes the link")
    no_hello.close()

    huge = Link(pb, server.port, heartbeats=False)
    huge.send_raw(varint(1 << 30))
    expect(huge.wait_closed(), "an oversized frame header closes the link")
    huge.close()

    twice = Link(pb, server.port, heartbeats=False)
    twice.hello()
    hello = pb.GameToDb()
    hello.hello.role = "gamesrv"
    twice.send(hello)
    expect(twice.wait_closed(), "a second Hello closes the link")
    twice.close()

    wrong_role = Link(pb, server.port, heartbeats=False)
    hello.hello.role = "gateway"
    wrong_role.send(hello)
    expect(wrong_role.wait_closed(), "a Hello from another role closes the link")
    wrong_role.close()

    silent = Link(pb, server.port, heartbeats=False)
    silent.hello()
    expect(silent.wait_closed(), "a silent peer is dropped after the dead time")
    silent.close()

    reply = link.login("alice", PASSWORD)
    expect(reply.status == ok and reply.login.player.gold == total, "still serving: %r" % reply)
    # The silent link's dead time passed meanwhile: dbproxy's heartbeats
    # (every 100 ms here) must have reached this link.
    expect(link.heartbeats_seen > 0, "dbproxy sends heartbeats")
    link.close()

    code = server.kill(signal.SIGTERM)
    log = server.log_text()
    expect(code == 0, "SIGTERM exits 0, got %d" % code)
    expect("stopped cleanly" in log, "drain logged")
    with open(log_path, "rb") as f:
        expect(PASSWORD.encode() not in f.read(), "the password appears in the log")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dbproxy", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--protoc", default="protoc")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="dbproxy_process.")
    log_path = os.path.join(tmp, "dbproxy.log")
    try:
        gen = os.path.join(tmp, "gen")
        os.mkdir(gen)
        subprocess.run([args.protoc, "--proto_path=" + args.proto_dir, "--python_out=" + gen,
                        os.path.join(args.proto_dir, "client.proto"),
                        os.path.join(args.proto_dir, "internal.proto")],
                       check=True, timeout=STEP_TIMEOUT)
        sys.path.insert(0, gen)
        import internal_pb2  # noqa: E402 (generated above)
        scenario(internal_pb2, args.dbproxy, os.path.join(tmp, "run"), log_path)
        print("dbproxy.process: ok")
        return 0
    except (AssertionError, OSError, subprocess.SubprocessError) as exc:
        print("dbproxy.process: FAILED: %s" % exc, file=sys.stderr)
        if os.path.exists(log_path):
            with open(log_path, "rb") as f:
                sys.stderr.write("---- dbproxy log ----\n" + f.read().decode("utf-8", "replace"))
        return 1
    finally:
        for proc in CHILDREN:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
