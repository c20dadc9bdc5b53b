"""Hostile clients against a running cluster (issue 5).

One cluster, one attack after another. Each attack comes from its own
loopback address (127.0.0.x: every 127/8 address is this machine), so the
gateway's per-address limits hit the attacker and never the well-behaved
client on 127.0.0.1, which pings throughout and must have every ping
answered. For each attack the test checks the clear outcome (a disconnect,
or an error reply where the client is merely wrong) and the gateway's or
gamesrv's log line naming the attacker's address (or session). It prints
the well-behaved client's ping round trip, p50/p99, for the quiet case and
during each attack, and the gateway's RSS after a warm-up, after the attacks
and after a settle period, which must come back within a bound.

No timing thresholds: waits have deadlines only so that a missing outcome
fails instead of hanging, and the round trips are printed, not judged
(beyond the sanity bound that every ping is answered within 2 s).
"""
import os
import random
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ringgate_test as rt  # noqa: E402
from ringgate_test import body_of, encode_varint, expect, expect_error  # noqa: E402

# The limits under test, small so that each attack ends quickly.
FRAME_TIMEOUT_MS = 2000
MSG_RATE = 500
MSG_BURST = 100
FLOOD_REFUSALS = 300
MAX_PER_ADDR = 20
CONNECTS_PER_SEC = 20
SEND_QUEUE_MAX = 65536
MAX_FRAME = 65536

GATEWAY_ARGS = ("--frame-timeout-ms %d --msg-rate %d --msg-burst %d --flood-refusals %d "
                "--max-clients-per-addr %d --connects-per-addr-per-sec %d "
                "--send-queue-max %d --max-frame %d"
                % (FRAME_TIMEOUT_MS, MSG_RATE, MSG_BURST, FLOOD_REFUSALS, MAX_PER_ADDR,
                   CONNECTS_PER_SEC, SEND_QUEUE_MAX, MAX_FRAME)).split()

TALKERS = 8                 # clients chatting at the one that never reads
TALK_RATE = 400             # chat lines per second each, inside MSG_RATE
PING_INTERVAL_S = 0.05      # 20 pings a second: well inside MSG_RATE
PING_SANITY_S = 2.0         # a generous bound on any one ping's round trip
RSS_BOUND_KIB = 8 * 1024    # settled RSS within this of the post-warm-up RSS


def source_address(n):
    """The loopback address attack n connects from."""
    return "127.0.0.%d" % (10 + n)


# ---- the well-behaved client ------------------------------------------------

class Pinger(threading.Thread):
    """Logs in on 127.0.0.1 and pings every PING_INTERVAL_S, recording each
    round trip under the phase the test is in. Any ping left unanswered (or
    answered with anything but a pong) is recorded as a failure."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.client = rt.GameClient(port, "pinger")
        expect(self.client.login("pinger", "pinger-pw"), "login")
        self.phase = "quiet"
        self.samples = {}
        self.failures = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            phase = self.phase
            start = time.monotonic()
            try:
                reply = self.client.ping()
                elapsed = time.monotonic() - start
                if body_of(reply) != "pong":
                    self.failures.append("%s: ping answered %s" % (phase, reply))
                elif elapsed > PING_SANITY_S:
                    self.failures.append("%s: ping took %.3f s" % (phase, elapsed))
                self.samples.setdefault(phase, []).append(elapsed)
            except Exception as exc:  # the test fails on any of these
                self.failures.append("%s: %r" % (phase, exc))
                return
            self.client.take_pushes()  # chat and moves of others: not ours
            self.stop.wait(PING_INTERVAL_S)

    def count(self, phase):
        return len(self.samples.get(phase, []))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))]


# ---- helpers ------------------------------------------------------------------

def read_until_closed(sock, timeout):
    """Read (and return) everything until the peer closes; fail at the
    deadline."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("connection still open after %ss" % timeout)
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return data
        if not chunk:
            return data
        data += chunk


def frames_of(data):
    """The ServerMessages in a byte string of frames."""
    out = []
    while True:
        body, data = rt.parse_frame(data)
        if body is None:
            return out
        msg = rt.client_pb2.ServerMessage()
        msg.ParseFromString(body)
        out.append(msg)


def raw_connect(port, source):
    sock = rt.dial(port, source, timeout=10)
    return sock, "%s:%d" % sock.getsockname()


def send_ignoring_reset(sock, data):
    try:
        sock.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        pass


def log_has(cluster, proc, pattern, timeout=10, since=0):
    """The match of pattern in proc's log (from offset since on)."""
    regex = re.compile(pattern)
    return rt.eventually(lambda: regex.search(cluster.log_text(proc), since),
                         timeout=timeout, what="%s log line /%s/" % (proc, pattern))


def session_of(cluster, peer):
    """The gateway's session id (as gamesrv logs it) of a client address."""
    match = log_has(cluster, "gateway",
                    r"client %s connected \(session (0x[0-9a-f]+)\)" % re.escape(peer))
    return match.group(1)


def log_time(stamp):
    """Seconds of a log line's timestamp (2026-11-23T19:41:12.243Z)."""
    clock = stamp.split("T")[1].rstrip("Z")
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def client_message(seq, field_bytes=b""):
    """A ClientMessage built by hand: seq, then raw field bytes."""
    return b"\x08" + encode_varint(seq) + field_bytes


def length_field(number, payload):
    return encode_varint(number << 3 | 2) + encode_varint(len(payload)) + payload


frame = rt.encode_frame


# ---- the attacks ----------------------------------------------------------------

def attack_oversize_prefix(cluster, n):
    sock, peer = raw_connect(cluster.gateway_port, source_address(n))
    send_ignoring_reset(sock, encode_varint(MAX_FRAME * 64) + b"x" * 100)
    got = read_until_closed(sock, 10)
    assert got == b"", "an oversize frame got an answer: %r" % got
    log_has(cluster, "gateway", r"client %s disconnected: frame_too_large" % re.escape(peer))
    sock.close()
    return "closed without a word (frame_too_large)"


def attack_bad_varint(cluster, n):
    sock, peer = raw_connect(cluster.gateway_port, source_address(n))
    # Six bytes of prefix whose value stays 0: malformed, not oversize
    # (a prefix whose value already passes the limit is frame_too_large).
    send_ignoring_reset(sock, b"\x80" * 6 + b"\x01")
    got = read_until_closed(sock, 10)
    assert got == b"", "a malformed prefix got an answer: %r" % got
    log_has(cluster, "gateway", r"client %s disconnected: bad_frame" % re.escape(peer))
    sock.close()
    return "closed without a word (bad_frame)"


def attack_garbage(cluster, n):
    rng = random.Random(5)  # fixed: the same bytes every run
    outcomes = []
    for i in range(5):
        sock, peer = raw_connect(cluster.gateway_port, source_address(n))
        send_ignoring_reset(sock, bytes(rng.getrandbits(8) for _ in range(4096)))
        got = frames_of(read_until_closed(sock, 10))
        # Whichever way the garbage first fails to be a ClientMessage, the
        # gateway says so in its log and closes.
        match = log_has(cluster, "gateway",
                        r"client %s (disconnected: (frame_too_large|bad_frame|frame_timeout)"
                        r"|sent a malformed message)" % re.escape(peer))
        outcomes.append(match.group(1).replace("disconnected: ", ""))
        for msg in got:
            if body_of(msg) == "error":
                assert msg.error.code in (rt.client_pb2.BAD_REQUEST,
                                          rt.client_pb2.RATE_LIMITED), msg
        sock.close()
    return "5 x 4 KiB closed: " + ", ".join(outcomes)


def attack_unknown_type(cluster, n):
    c = rt.GameClient(cluster.gateway_port, "unknown-type", source_address(n))
    # Field 99 is no ClientMessage body: empty message, then a varint.
    c.send_raw(frame(client_message(7, length_field(99, b""))))
    error = expect_error(c.wait_reply(7), "BAD_REQUEST")
    c.send_raw(frame(client_message(8, encode_varint(100 << 3 | 0) + b"\x05")))
    expect_error(c.wait_reply(8), "BAD_REQUEST")
    expect(c.ping(), "pong")  # merely wrong: the connection stays
    log_has(cluster, "gateway",
            r"client %s seq 7: Error BAD_REQUEST" % re.escape(c.peer))
    c.close()
    return "Error BAD_REQUEST (%s), connection kept" % error.message


def attack_bad_fields(cluster, n):
    pb = rt.client_pb2
    c = rt.GameClient(cluster.gateway_port, "bad-fields", source_address(n))
    session = session_of(cluster, c.peer)
    expect_error(c.request(login=pb.LoginRequest(name="n" * 60000, password=b"x")),
                 "INVALID_NAME")
    expect_error(c.request(login=pb.LoginRequest(name="bad name!", password=b"x")),
                 "INVALID_NAME")
    expect_error(c.request(login=pb.LoginRequest(name="badfields", password=b"p" * 60000)),
                 "BAD_REQUEST")
    expect(c.login("badfields", "badfields-pw"), "login")
    for x, y in ((1e9, 0), (-1e9, 5), (float("nan"), 1), (float("inf"), 1), (1, -1e30)):
        expect_error(c.move(x, y), "OUT_OF_BOUNDS")
    # Non-UTF-8 text, built by hand (protobuf libraries refuse to).
    c.seq += 1
    c.send_raw(frame(client_message(c.seq, length_field(12, length_field(1, b"ab\xff\xfecd")))))
    expect_error(c.wait_reply(c.seq), "INVALID_CHAT")
    expect_error(c.chat("x" * 257), "INVALID_CHAT")
    expect_error(c.chat("x" * 60000), "INVALID_CHAT")
    expect_error(c.chat("bell\x07"), "INVALID_CHAT")
    expect_error(c.earn(0), "BAD_REQUEST")
    expect_error(c.earn(1001), "BAD_REQUEST")
    expect(c.ping(), "pong")
    for code in ("INVALID_NAME", "OUT_OF_BOUNDS", "INVALID_CHAT", "BAD_REQUEST"):
        log_has(cluster, "gamesrv", r"client %s seq \d+: Error %s" % (session, code))
    c.close()
    return "each refused with its code (INVALID_NAME, OUT_OF_BOUNDS, INVALID_CHAT, BAD_REQUEST)"


def attack_before_login(cluster, n):
    c = rt.GameClient(cluster.gateway_port, "no-login", source_address(n))
    session = session_of(cluster, c.peer)
    expect_error(c.move(1, 1), "NOT_LOGGED_IN")
    expect_error(c.chat("hello"), "NOT_LOGGED_IN")
    expect_error(c.earn(5), "NOT_LOGGED_IN")
    expect_error(c.logout(), "NOT_LOGGED_IN")
    log_has(cluster, "gamesrv", r"client %s seq \d+: Error NOT_LOGGED_IN" % session)
    c.close()
    return "Error NOT_LOGGED_IN for move, chat, earn, logout"


def attack_slowloris(cluster, n):
    sock, peer = raw_connect(cluster.gateway_port, source_address(n))
    body = client_message(1, length_field(14, b"\x08\x01"))
    data = frame(body)
    start = time.monotonic()
    sent = 0
    try:
        for byte in data[:-1]:  # never the last byte: the frame stays partial
            sock.sendall(bytes([byte]))
            sent += 1
            time.sleep(1.0)
    except (ConnectionResetError, BrokenPipeError):
        pass
    got = read_until_closed(sock, 10)
    took = time.monotonic() - start
    assert got == b"", got
    assert sent < len(data) - 1 or took < 30, "slowloris was never cut off"
    cut = log_has(cluster, "gateway",
                  r"(\S+) \S+ WARN  client %s disconnected: frame_timeout" % re.escape(peer))
    opened = log_has(cluster, "gateway", r"(\S+) \S+ DEBUG client %s connected" % re.escape(peer))
    sock.close()
    # The first byte went out right after the connect: the gateway's own
    # timestamps tell how long the partial frame lived.
    lived = (log_time(cut.group(1)) - log_time(opened.group(1))) % 86400  # midnight
    return "cut %.2f s after its first byte (--frame-timeout-ms %d), %d bytes sent in %.0f s" % (
        lived, FRAME_TIMEOUT_MS, sent, took)


def attack_never_reads(cluster, n):
    pb = rt.client_pb2
    # A small receive buffer, so that its own kernel soaks up little. The
    # gateway's kernel send buffer still grows to a few MiB (tcp_wmem)
    # before libnet's queue for it starts to fill.
    victim = rt.GameClient(cluster.gateway_port, "never-reads", source_address(n), rcvbuf=4096)
    expect(victim.login("neverreads", "neverreads-pw"), "login")
    talkers = []
    for i in range(TALKERS):
        t = rt.GameClient(cluster.gateway_port, "talker%d" % i, source_address(n + 1 + i))
        expect(t.login("talker%d" % i, "talker-pw"), "login")
        t.sock.setblocking(False)
        talkers.append(t)
    chat = pb.ClientMessage(chat=pb.ChatRequest(text="z" * 256))
    pattern = re.compile(r"client %s disconnected: send_overflow" % re.escape(victim.peer))
    deadline = time.monotonic() + 90
    sent, seq = 0, 0
    # Each talker chats at TALK_RATE, inside the message rate: what the
    # game allows a player. Replies and pushes are read and dropped unparsed.
    while not pattern.search(cluster.log_text("gateway")):
        assert time.monotonic() < deadline, "the client that never reads was not cut off"
        for t in talkers:
            batch = b""
            for _ in range(TALK_RATE // 20):
                seq = seq % 100000 + 1
                chat.seq = seq
                batch += frame(chat.SerializeToString())
            t.sock.setblocking(True)
            t.sock.sendall(batch)
            t.sock.setblocking(False)
            sent += TALK_RATE // 20
            try:
                while t.sock.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass
        time.sleep(0.05)
    got = read_until_closed(victim.sock, 30)
    for t in talkers:
        t.close()
    victim.close()
    return ("cut (send_overflow) at --send-queue-max %d after %d chat lines of 256 B from "
            "%d talkers; %d KiB were still in the kernel buffers" % (
                SEND_QUEUE_MAX, sent, TALKERS, len(got) // 1024))


def attack_connection_flood(cluster, n):
    source = source_address(n)
    log_start = len(cluster.log_text("gateway"))
    socks = []
    for _ in range(200):
        try:
            socks.append(raw_connect(cluster.gateway_port, source)[0])
        except OSError:
            pass  # a full backlog refuses too: fine
    # Connections past the limits are accepted by the kernel, then closed
    # by the gateway at once: they read end-of-stream.
    open_socks = list(socks)

    def count_alive():
        for sock in list(open_socks):
            sock.setblocking(False)
            try:
                closed = sock.recv(1) == b""
            except BlockingIOError:
                closed = False
            except OSError:
                closed = True
            if closed:
                open_socks.remove(sock)
        return len(open_socks) <= MAX_PER_ADDR

    rt.eventually(count_alive, timeout=15, what="connections past the limit closed")
    alive = len(open_socks)
    match = log_has(cluster, "gateway",
                    r"refused (\d+) connections at accept \(now (\d+) in all: (\d+) over",
                    since=log_start)
    for sock in socks:
        sock.close()
    assert alive <= MAX_PER_ADDR, "%d connections from one address stayed open" % alive
    assert alive < len(socks), "no connection was refused"
    return "200 connects: %d kept open (limit %d), the rest closed at accept; log: %s" % (
        alive, MAX_PER_ADDR, match.group(0))


def attack_message_flood(cluster, n):
    pb = rt.client_pb2
    # A short burst over the rate: some RATE_LIMITED, no disconnect.
    c = rt.GameClient(cluster.gateway_port, "burst", source_address(n))
    expect(c.login("burster", "burster-pw"), "login")
    time.sleep(MSG_BURST / MSG_RATE)  # a full bucket again
    # Over the bucket by half the flood allowance: refused in part, not cut.
    burst = MSG_BURST + FLOOD_REFUSALS // 2
    ping = pb.ClientMessage(ping=pb.PingRequest(client_time=1))
    data = b""
    for seq in range(1000, 1000 + burst):
        ping.seq = seq
        body = ping.SerializeToString()
        data += frame(body)
    c.send_raw(data)
    limited = 0
    for seq in range(1000, 1000 + burst):
        reply = c.wait_reply(seq)
        if body_of(reply) == "error":
            assert reply.error.code == pb.RATE_LIMITED, reply
            limited += 1
    assert limited > 0, "a burst over --msg-burst got no RATE_LIMITED"
    time.sleep(1.5)
    expect(c.ping(), "pong")  # a short burst is forgiven
    log_has(cluster, "gateway", r"client %s is over --msg-rate" % re.escape(c.peer))
    c.close()

    # A sustained flood: RATE_LIMITED, then Kicked RATE_LIMITED and closed.
    f = rt.GameClient(cluster.gateway_port, "flood", source_address(n + 1))
    expect(f.login("flooder", "flooder-pw"), "login")
    seq, errors = 1, 0
    got = b""
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            chunk = b""
            for _ in range(100):
                seq += 1
                ping.seq = seq
                body = ping.SerializeToString()
                chunk += frame(body)
            f.sock.sendall(chunk)
            f.sock.setblocking(False)
            try:
                while True:
                    data = f.sock.recv(65536)
                    if not data:
                        raise ConnectionResetError
                    got += data
            except BlockingIOError:
                pass
            finally:
                f.sock.setblocking(True)
    except (ConnectionResetError, BrokenPipeError):
        pass
    got += read_until_closed(f.sock, 10)
    frames = frames_of(got)
    errors = sum(1 for m in frames if body_of(m) == "error"
                 and m.error.code == pb.RATE_LIMITED)
    kicked = [m for m in frames if body_of(m) == "kicked"]
    assert errors > 0, "the flood got no RATE_LIMITED"
    assert kicked and kicked[-1].kicked.code == pb.RATE_LIMITED, kicked
    log_has(cluster, "gateway", r"client %s floods: over --msg-rate" % re.escape(f.peer))
    f.close()
    return ("burst of %d: %d RATE_LIMITED, then served; flood of %d pings: %d RATE_LIMITED, "
            "then Kicked RATE_LIMITED and closed" % (burst, limited, seq - 1, errors))


ATTACKS = [
    ("oversize length prefix", attack_oversize_prefix),
    ("malformed varint", attack_bad_varint),
    ("random garbage", attack_garbage),
    ("unknown message type", attack_unknown_type),
    ("bad fields", attack_bad_fields),
    ("game messages before login", attack_before_login),
    ("slowloris", attack_slowloris),
    ("client that never reads", attack_never_reads),
    ("connection flood", attack_connection_flood),
    ("message flood", attack_message_flood),
]


def warm_up(cluster, pinger):
    """Ordinary traffic, then one round of every attack (outcomes checked
    too), so that what the gateway's allocator keeps after a peak (pools,
    buffers, arenas, free lists) is counted before the baseline: then the
    measured round must not add to it."""
    clients = [rt.GameClient(cluster.gateway_port, "warm%d" % i) for i in range(4)]
    for i, c in enumerate(clients):
        expect(c.login("warm%d" % i, "warm-pw"), "login")
    for _ in range(20):
        for c in clients:
            expect(c.chat("warming up"), "chat")
            expect(c.move(1, 1), "move")
    for c in clients:
        c.close()
    pinger.phase = "warm-up"
    for n, (name, attack) in enumerate(ATTACKS):
        rt.log("warm-up attack: " + name)
        attack(cluster, n * 10)
    assert not pinger.failures, pinger.failures


def test(build_dir):
    env = {}
    # Under ASan, freed memory waits in a quarantine (256 MiB by default)
    # that would read as growth; a small one keeps the RSS check meaningful.
    # Other builds ignore the variable.
    env["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS", "") +
                           ":quarantine_size_mb=4").lstrip(":")
    with rt.Cluster(build_dir, extra_env=env, args={"gateway": GATEWAY_ARGS}) as cluster:
        gateway_pid = cluster.pid("gateway")
        pinger = Pinger(cluster.gateway_port)
        pinger.start()
        try:
            run_attacks(cluster, pinger, gateway_pid)
        finally:
            pinger.stop.set()
            pinger.join(timeout=10)


def run_attacks(cluster, pinger, gateway_pid):
    rss_start = rss_kib(gateway_pid)
    warm_up(cluster, pinger)
    pinger.phase = "quiet"
    time.sleep(2)  # the quiet case: nothing but the pinger
    rss_warm = rss_kib(gateway_pid)
    results = []
    for n, (name, attack) in enumerate(ATTACKS):
        pinger.phase = name
        before = pinger.count(name)
        rt.log("attack: " + name)
        outcome = attack(cluster, n * 10)
        # At least one ping answered while the attack ran (or just after).
        rt.eventually(lambda: pinger.count(name) > before or pinger.failures,
                      what="a ping during " + name)
        results.append((name, outcome, rss_kib(gateway_pid)))
        assert not pinger.failures, pinger.failures
    rss_attacked = rss_kib(gateway_pid)
    pinger.phase = "settle"
    time.sleep(3)
    rss_settled = rss_kib(gateway_pid)
    assert not pinger.failures, pinger.failures

    print("\nwell-behaved client: ping round trip while ... (ms)")
    print("  %-28s %6s %8s %8s" % ("phase", "pings", "p50", "p99"))
    for phase in ["warm-up", "quiet"] + [name for name, _ in ATTACKS] + ["settle"]:
        samples = pinger.samples.get(phase, [])
        if samples:
            print("  %-28s %6d %8.2f %8.2f" % (phase, len(samples),
                                                percentile(samples, 50) * 1000,
                                                percentile(samples, 99) * 1000))
    print("\nattack outcomes:")
    for name, outcome, _ in results:
        print("  %-28s %s" % (name, outcome))
    print("\ngateway RSS: %d KiB at start, %d KiB after the warm-up round, then after each "
          "attack: %s KiB; %d KiB after the attacks, %d KiB settled (bound: warm-up + %d KiB)"
          % (rss_start, rss_warm, ", ".join(str(r) for _, _, r in results), rss_attacked,
             rss_settled, RSS_BOUND_KIB))
    assert rss_settled <= rss_warm + RSS_BOUND_KIB, "the gateway's memory grew"


rt.main(test)
