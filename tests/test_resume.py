"""Session resume (issue 15; docs/protocol.md section 10) on a real cluster
of dbproxy, gamesrv and one or two gateways:

  same_gateway     ann's connection is reset; bob chats and moves meanwhile;
                   ann resumes on the same gateway: every chat line once, in
                   order, msg_nos 1..n without a hole or a repeat, bob never
                   saw ann leave, and ann plays on. Prints the figures.
  other_gateway    the same through a second gateway on the same gamesrv,
                   with an earn in flight (dbproxy stopped) at the drop: it
                   is listed pending and answered on the new connection.
  broadcast_mode   same_gateway with zone-wide pushes (gamesrv --interest
                   broadcast): per-session numbers in shared frames.
  grace_over       no resume within a short grace period: the others see the
                   player leave, the resume gets RESUME_EXPIRED, a login works.
  token_expiry     a token past its life is refused RESUME_EXPIRED; one
                   renewed by a token push before that still works.
  token_replayed   a token is refused after a newer login of the account, and
                   after its own successful resume (rotation); the newest
                   token takes the session over from a live connection,
                   which is kicked.
  buffer_gap       more missed than the per-session (then the total) bound
                   keeps: RESUME_EXPIRED, then a login takes the player back.
  garbage_tokens   malformed, forged and truncated tokens, a last_received
                   beyond anything sent, a resume on a logged-in connection,
                   and a flood of them: clean errors, nothing breaks.
  cli              ringgate-cli's gateway is killed and started again on the
                   same port: the CLI resumes by itself and prints "resumed,
                   N messages replayed", then the chat it missed.

Usage: test_resume.py BUILD_DIR CASE
"""
import contextlib
import os
import signal
import subprocess
import time

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error


class Cluster:
    """dbproxy, gamesrv (with gamesrv_args) and `gateways` gateways, every
    link authenticated with one secret."""

    def __init__(self, build_dir, gateways=1, gamesrv_args=()):
        self.build_dir = build_dir
        self.work = rt.temp_dir("resume-")
        self.secret = os.path.join(self.work, "cluster.secret")
        with open(self.secret, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(self.secret, 0o600)
        self.dbproxy = rt.start("dbproxy", build_dir, self.work, secret_file=self.secret)
        self.gamesrv = rt.start("gamesrv", build_dir, self.work, *gamesrv_args,
                                peer_port=self.dbproxy.port, secret_file=self.secret)
        self.gateways = [self.start_gateway(i) for i in range(gateways)]

    def start_gateway(self, i, port=0):
        work = os.path.join(self.work, "gw%d" % i)
        os.makedirs(work, exist_ok=True)
        return rt.start("gateway", self.build_dir, work, port=port,
                        peer_port=self.gamesrv.port, secret_file=self.secret)

    def client(self, name, gateway=0):
        return rt.GameClient(self.gateways[gateway].port, name)

    def login(self, name, gateway=0):
        """A client of `gateway` logged in as name, once the gateway's link
        to gamesrv is up; its PlayerState in .me."""
        c = self.client(name, gateway)
        rt.eventually(lambda: body_of(c.ping()) == "pong", what="the gamesrv link up")
        c.me = expect(c.login(name, name + "-pw"), "login").self
        return c


@contextlib.contextmanager
def stopped(proc):
    """proc stopped (SIGSTOP) inside the block, always let go after it."""
    proc.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        proc.send_signal(signal.SIGCONT)


def chat_of(msg):
    """The chat lines a push carries (either push mode)."""
    if body_of(msg) == "update":
        return [line.text for line in msg.update.chat]
    if body_of(msg) == "chat_line":
        return [msg.chat_line.text]
    return []


def left_of(msg):
    if body_of(msg) == "update":
        return list(msg.update.left)
    if body_of(msg) == "left":
        return [msg.left.player_id]
    return []


def entered(name):
    return lambda m: (body_of(m) == "update" and any(p.name == name for p in m.update.entered)
                      or body_of(m) == "joined" and m.joined.player.name == name)


def hear(client, count, timeout=rt.WAIT):
    """The chat lines of the next pushes, until `count` have come."""
    lines = []
    deadline = time.monotonic() + timeout
    while len(lines) < count:
        msg = client.wait(lambda m: m.seq == 0, "a push with chat (%d of %d heard)"
                          % (len(lines), count), max(0.1, deadline - time.monotonic()))
        lines += chat_of(msg)
    return lines


def numbered_once_in_order(client):
    """Every msg_no the client got, across its connections, is the next one."""
    nos = client.msg_nos
    assert nos == list(range(1, len(nos) + 1)), "msg_nos with holes or repeats: %s" % nos


def drop_and_talk(ann, bob, gap_lines):
    """ann's connection is reset; bob chats gap_lines and moves meanwhile.
    Returns when bob's requests are answered (ann's copies made)."""
    ann.drop()
    dropped = time.monotonic()
    for i, text in enumerate(gap_lines):
        expect(bob.chat(text), "chat")
        expect(bob.move(i % 50, 1), "move")
    time.sleep(0.2)  # the tick after the last one: its update is kept too
    return dropped


def send_earn(cluster, ann):
    """An earn of 7 sent without waiting for its answer; its seq, once
    gamesrv has asked dbproxy (so it is in flight there, whatever link a
    resume comes on later)."""
    ann.seq += 1
    ann.send(rt.client_pb2.ClientMessage(seq=ann.seq, earn=rt.client_pb2.EarnRequest(amount=7)))
    line = "seq %d: earning 7, asking dbproxy" % ann.seq
    rt.eventually(lambda: line in cluster.gamesrv.text(), what="the earn at gamesrv",
                  interval=0.02)
    return ann.seq


def play_through_drop(cluster, resume_port=None, earn_in_flight=False):
    """ann plays, bob talks through ann's drop, ann resumes (on
    resume_port); with earn_in_flight, dbproxy is stopped from just before
    an earn of ann's until after the resume, so the earn is pending then.
    Returns (ResumeReply, figures)."""
    ann = cluster.login("ann")
    bob = cluster.login("bob", len(cluster.gateways) - 1)
    ann.wait_push(entered("bob"), what="ann sees bob")
    lines = ["line %d" % i for i in range(30)]
    for text in lines[:5]:
        expect(bob.chat(text), "chat")
    assert hear(ann, 5) == lines[:5]
    with stopped(cluster.dbproxy) if earn_in_flight else contextlib.nullcontext():
        earn_seq = send_earn(cluster, ann) if earn_in_flight else None
        dropped = drop_and_talk(ann, bob, lines[5:25])
        gap_ms = (time.monotonic() - dropped) * 1000
        start = time.monotonic()
        reply = expect(ann.resume(port=resume_port), "resume")
        resumed_ms = (time.monotonic() - start) * 1000
        heard = hear(ann, 20)
        caught_up_ms = (time.monotonic() - start) * 1000
    assert list(reply.pending) == ([earn_seq] if earn_seq else []), reply
    if earn_seq:
        # Answered on the new connection, with its seq, once.
        assert expect(ann.wait_reply(earn_seq), "earn").gold == 7
    for text in lines[25:]:
        expect(bob.chat(text), "chat")
    heard += hear(ann, 5)
    assert heard == lines[5:], "ann heard %s" % heard
    # Nothing twice: the next line ann hears is the next one said.
    expect(bob.chat("end"), "chat")
    assert hear(ann, 1) == ["end"]
    numbered_once_in_order(ann)
    expect(bob.ping(), "pong")
    assert not any(left_of(m) for m in bob.take_pushes()), "bob saw someone leave"
    expect(ann.chat("back again"), "chat")
    assert "back again" in hear(bob, 1)
    figures = "gap_ms=%.0f replayed=%d resume_ms=%.1f caught_up_ms=%.1f" % (
        gap_ms, reply.replayed, resumed_ms, caught_up_ms)
    return reply, figures


def same_gateway(build_dir):
    cluster = Cluster(build_dir)
    reply, figures = play_through_drop(cluster)
    assert reply.replayed >= 1, reply  # the gap lines, in a few updates
    print("resume figures (same gateway): " + figures, flush=True)


def other_gateway(build_dir):
    # dbproxy stays stopped for a few seconds: gamesrv must not judge it dead.
    cluster = Cluster(build_dir, gateways=2, gamesrv_args=["--dead-ms", "10000"])
    reply, figures = play_through_drop(cluster, cluster.gateways[1].port, earn_in_flight=True)
    assert reply.replayed >= 1, reply
    print("resume figures (another gateway): " + figures, flush=True)


def broadcast_mode(build_dir):
    """The zone-wide pushes: one frame for many sessions, each client's
    msg_no written in by the gateway."""
    cluster = Cluster(build_dir, gamesrv_args=["--interest", "broadcast"])
    reply, figures = play_through_drop(cluster)
    assert reply.replayed >= 40, reply  # a chat_line and a moved per gap line
    print("resume figures (broadcast mode): " + figures, flush=True)


def grace_over(build_dir):
    cluster = Cluster(build_dir, gamesrv_args=["--resume-grace-ms", "500"])
    ann = cluster.login("ann")
    bob = cluster.login("bob")
    ann.wait_push(entered("bob"), what="ann sees bob")
    ann.drop()
    bob.wait_push(lambda m: ann.me.player_id in left_of(m),
                  what="ann leaves after the grace period")
    expect_error(ann.resume(), "RESUME_EXPIRED")
    expect(ann.login("ann", "ann-pw"), "login")


def token_expiry(build_dir):
    cluster = Cluster(build_dir, gamesrv_args=["--resume-token-ttl-ms", "2000"])
    # Nothing reaches ann for longer than its token lives: no fresh one.
    ann = cluster.login("ann")
    time.sleep(2.3)
    expect_error(ann.resume(), "RESUME_EXPIRED")
    # cid pings past its first token's life: token pushes (msg_no 0) bring
    # fresh ones, and the newest still resumes the session.
    cid = cluster.login("cid")
    first = cid.token
    for _ in range(12):
        expect(cid.ping(), "pong")
        time.sleep(0.2)
    assert cid.token != first, "no fresh token in 2.4 s of a 2 s token"
    for msg in cid.take_pushes():
        assert body_of(msg) != "token" or msg.msg_no == 0, msg
    expect_error(cid.resume(token=first), "RESUME_EXPIRED")
    expect(cid.resume(), "resume")


def token_replayed(build_dir):
    cluster = Cluster(build_dir)
    ann = cluster.login("ann")
    old = ann.token
    ann.drop()
    # A newer login of the account (anywhere) makes the old token useless.
    ann2 = cluster.login("ann")
    thief = cluster.client("thief")
    expect_error(thief.resume(token=old, last=0), "RESUME_EXPIRED")
    # A successful resume replaces the token it used.
    t2 = ann2.token
    ann2.drop()
    expect(ann2.resume(), "resume")
    assert ann2.token != t2
    expect_error(thief.resume(token=t2, last=0), "RESUME_EXPIRED")
    # The newest token moves a live session; the old connection is kicked.
    other = cluster.client("other")
    expect(other.resume(token=ann2.token, last=ann2.last_msg_no), "resume")
    kicked = ann2.wait_push(lambda m: body_of(m) == "kicked", what="kick")
    assert kicked.kicked.code == rt.client_pb2.LOGGED_IN_ELSEWHERE
    expect(other.chat("mine now"), "chat")


def buffer_gap(build_dir):
    for bound in (["--resume-buffer-bytes", "4096"],
                  ["--resume-buffer-bytes", "1048576", "--resume-buffer-total-bytes", "4096"]):
        cluster = Cluster(build_dir, gamesrv_args=bound)
        ann = cluster.login("ann")
        bob = cluster.login("bob")
        ann.wait_push(entered("bob"), what="ann sees bob")
        drop_and_talk(ann, bob, ["%03d %s" % (i, "x" * 200) for i in range(40)])
        expect_error(ann.resume(), "RESUME_EXPIRED")
        # The player never left: a login takes it back, bob sees no flicker.
        expect(ann.login("ann", "ann-pw"), "login")
        expect(bob.ping(), "pong")
        assert not any(left_of(m) for m in bob.take_pushes())
        for p in (cluster.gateways[0], cluster.gamesrv, cluster.dbproxy):
            assert p.stop() == 0


def garbage_tokens(build_dir):
    cluster = Cluster(build_dir)
    ann = cluster.login("ann")
    good = ann.token
    c = cluster.client("probe")
    tampered = bytearray(good)
    tampered[10] ^= 1
    for token in (b"", b"\x01", os.urandom(66), os.urandom(98), good[:-1], good + b"x",
                  bytes(tampered), b"\x02" + good[1:], os.urandom(60000)):
        # Not a token of this cluster: BAD_REQUEST; the connection stays.
        expect_error(c.resume(token=token, last=0), "BAD_REQUEST")
    for last in (0, 1 << 40):  # never below the LoginReply, nor past what was sent
        expect_error(c.resume(token=good, last=last), "BAD_REQUEST")
    expect_error(ann.request(resume=rt.client_pb2.ResumeRequest(token=good)),
                 "ALREADY_LOGGED_IN")
    # A flood of forged tokens on one connection: answered or cut off by
    # the gateway's rate rules, never more.
    flood = cluster.client("flood")
    body = rt.client_pb2.ResumeRequest(token=os.urandom(80))
    for seq in range(1, 301):
        try:
            flood.send(rt.client_pb2.ClientMessage(seq=seq, resume=body))
        except OSError:
            break
    codes = set()
    try:
        while True:
            msg = flood.next(timeout=2)
            if msg is None:
                break
            codes.add(msg.error.code if body_of(msg) == "error" else body_of(msg))
    except AssertionError:
        pass  # quiet: every answer read
    e = rt.client_pb2
    assert codes <= {e.BAD_REQUEST, e.RATE_LIMITED, "kicked"}, codes
    # The session is untouched.
    expect(ann.chat("still here"), "chat")
    assert cluster.gamesrv.alive() and cluster.gateways[0].alive()


def cli(build_dir):
    cluster = Cluster(build_dir, gateways=2)
    bob = cluster.login("bob", 1)
    port = cluster.gateways[0].port
    exe = os.path.join(build_dir, "tools", "cli", "ringgate-cli")
    proc = subprocess.Popen([exe, "--port", str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    out = []

    def read_until(prefix):
        while True:
            line = proc.stdout.readline()
            assert line, "the CLI ended early:\n" + "".join(out)
            out.append(line)
            if line.startswith(prefix):
                return line
    try:
        proc.stdin.write("login carl carl-pw\n")
        proc.stdin.flush()
        read_until("< login ok")
        bob.wait_push(entered("carl"), what="bob sees carl")
        cluster.gateways[0].kill()
        for i in range(3):
            expect(bob.chat("missed %d" % i), "chat")
        cluster.gateways[0] = cluster.start_gateway(0, port=port)
        line = read_until("! resumed, ")
        replayed = int(line.split()[2])
        assert replayed >= 1, line
        for i in range(3):
            read_until('< chat_line player=')
        proc.stdin.write("chat back\nquit\n")
        proc.stdin.close()
        assert "back" in hear(bob, 1)
        assert proc.wait(timeout=30) == 0
        out.append(proc.stdout.read())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        print("--- ringgate-cli output:\n" + "".join(out), flush=True)
    text = "".join(out)
    for i in range(3):
        assert text.count('text="missed %d"' % i) == 1, text


if __name__ == "__main__":
    rt.main(cases={fn.__name__: fn for fn in (same_gateway, other_gateway, broadcast_mode,
                                              grace_over,
                                              token_expiry, token_replayed, buffer_gap,
                                              garbage_tokens, cli)})
