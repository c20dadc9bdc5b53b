"""Two gamesrv shards on one real dbproxy, with this test as the gateway
(docs/protocol.md section 11): the handoff, the redirect and the lease
from the shards' side, at the protocol level, before any gateway routes.

  shard 1 owns zone 1, shard 2 owns zone 2 (--zone-shards 2:2); the test
  holds one gateway link to each (FakeGate) and relays Handoff / Adopt /
  AdoptResult / HandoffResult / Redirect between them as a gateway does.

Cases:
  handoff_move     a move into zone 2 freezes the player on shard 1 (its
                   requests get ZONE_HANDOFF, "offline ... (handoff to
                   shard 2)"); shard 2 adopts it (AdoptResult before the
                   MoveReply, the stream numbered on, a token naming shard 2,
                   "online epoch 2", gold kept); shard 1 drops it on ok; the
                   way back works too; the lease row follows
  handoff_refused  HandoffResult not ok: the move is answered
                   SERVICE_UNAVAILABLE and the player plays on at shard 1
                   at a new epoch (its lease taken back); a HandoffResult
                   for no handoff is ignored
  refused_adopted  HandoffResult not ok although shard 2's adopt committed
                   (the gateway judged shard 2's link dead): shard 1 does
                   not unfreeze the player at the old epoch (its re-take is
                   fenced): dropped unsaved, the move answered
                   SERVICE_UNAVAILABLE "log in again", kicked
  login_late       a DbLogin reply that comes after the lease it took ran
                   out (dbproxy stopped past it) brings nobody online: the
                   login is answered SERVICE_UNAVAILABLE "retry"; a retry
                   works
  adopt_late_reply the same for a DbAdopt reply: AdoptResult not ok, no
                   online line; the source's re-take is then fenced
  redirect         a login through shard 2 of a player shard 1 holds is
                   redirected there (hops 1) and kicks the older session;
                   hops 3 is answered SERVICE_UNAVAILABLE
  login_handoff    a login at shard 1 of a player saved in zone 2 is handed
                   to shard 2 at once (Adopt.login: LoginReply from shard 2)
  fenced           a shard whose player's lease moved on without it (a
                   stray adopt elsewhere): its next earn is refused
                   (DB_FENCED: ZONE_HANDOFF, nothing applied), the player
                   dropped (LOGGED_IN_ELSEWHERE)
  stalled          shard 2 stopped past the lease while shard 1 takes the
                   player: its late earn is refused (self-fence on the
                   request, or fenced), nothing applied, the player dropped
  adopt_gone       the client goes while shard 2 adopts it: shard 2 still
                   says ok (the source lets go) and the lease ends released
  adopt_late       an adopt past its deadline is refused (AdoptResult not
                   ok), not dropped
  handoff_timeout  no HandoffResult by the call deadline: shard 1 drops the
                   frozen player unsaved

usage: test_gamesrv_shards.py BUILD_DIR CASE   (one CTest test per case)
"""

import os
import signal
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402
from ringgate_test import WAIT, eventually, expect, expect_error  # noqa: E402
from test_gamesrv_links import FakeGate  # noqa: E402

LEASE_MS = 1500
DEAD_MS = 8000  # the links outlive a shard stopped past the lease (fenced)
ZONES = ["--zone-id", "1", "--zones", "2:2000:0:3000:1000", "--zone-shards", "2:2"]


class Shards:
    """One dbproxy, shards 1 and 2, a gateway link to each."""

    def __init__(self, build_dir, *extra):
        self.work = rt.temp_dir("gamesrv-shards-")
        self.dbproxy = rt.start("dbproxy", build_dir, self.work, insecure=True,
                                dead_ms=DEAD_MS)
        self.srv = {}
        self.gate = {}
        for shard in (1, 2):
            d = os.path.join(self.work, "shard%d" % shard)
            os.mkdir(d)
            self.srv[shard] = rt.start("gamesrv", build_dir, d, "--shard", str(shard),
                                       "--lease-ms", str(LEASE_MS), *ZONES, *extra,
                                       peer_port=self.dbproxy.port, insecure=True,
                                       dead_ms=DEAD_MS,
                                       admin_port_file=os.path.join(d, "admin.port"))
            eventually(lambda s=shard: "lease owner" in self.srv[s].text(),
                       what="shard %d's lease owner id" % shard)
            self.gate[shard] = FakeGate(self.srv[shard].port)
        self.request_id = 1000

    def metric(self, shard, name):
        """A sample of shard's /metrics (0 when absent)."""
        port = rt.procs.port_in(os.path.join(self.work, "shard%d" % shard, "admin.port"))
        return rt.cluster.scrape(port, "shard %d" % shard).get(name, 0)

    def next_request_id(self):
        self.request_id += 1
        return self.request_id

    def row(self, name):
        db = sqlite3.connect(os.path.join(self.work, "run", "ringgate.db"), timeout=10)
        try:
            db.row_factory = sqlite3.Row
            r = db.execute("SELECT * FROM players WHERE name = ?", (name,)).fetchone()
            return dict(r) if r else None
        finally:
            db.close()

    def send(self, shard, session, request_id=None, **body):
        """A client request to shard with a request_id; returns (seq, id)."""
        g = self.gate[shard]
        g.seq += 1
        rid = request_id or self.next_request_id()
        g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
            session=session, deadline_ms=5000, request_id=rid,
            message=g.c.ClientMessage(seq=g.seq, **body))))
        return g.seq, rid

    def request(self, shard, session, **body):
        seq, _ = self.send(shard, session, **body)
        return self.gate[shard].wait_reply(session, seq)

    def login(self, shard, session, name):
        return self.request(shard, session, login=rt.client_pb2.LoginRequest(
            name=name, password=b"pw"))

    def take(self, shard, kind, what=None):
        """The next GameToGate of body kind on shard's link."""
        m = self.gate[shard].conn.wait(lambda m: m.WhichOneof("body") == kind,
                                       what or "%s from shard %d" % (kind, shard))
        return getattr(m, kind)

    def relay_adopt(self, handoff, deadline_ms=5000):
        """What the gateway does with a Handoff: the Adopt to its target."""
        g = self.gate[handoff.target_shard]
        g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
            session=handoff.session, deadline_ms=deadline_ms,
            request_id=handoff.request_id, adopt=handoff.adopt)))

    def handoff_result(self, shard, session, player_id, ok):
        g = self.gate[shard]
        g.conn.send(g.i.GateToGame(handoff_result=g.i.HandoffResult(
            session=session, player_id=player_id, ok=ok)))

    def move_handed(self, src, session, name, x, y, zone):
        """Move session's player from shard src to zone of the other shard,
        relaying as a gateway; returns (Handoff, MoveReply message)."""
        dst = 3 - src
        seq, rid = self.send(src, session, move=rt.client_pb2.MoveRequest(x=x, y=y, zone=zone))
        ho = self.take(src, "handoff")
        assert (ho.session, ho.request_id, ho.target_shard) == (session, rid, dst), ho
        assert ho.adopt.name == name and ho.adopt.source_shard == src, ho
        assert (ho.adopt.zone, ho.adopt.x, ho.adopt.y, ho.adopt.seq) == (zone, x, y, seq), ho
        self.relay_adopt(ho)
        order = []
        conn = self.gate[dst].conn
        while True:
            m = conn.next()
            assert m is not None, "shard %d closed the link" % dst
            kind = m.WhichOneof("body")
            order.append(kind)
            if kind == "adopt_result":
                ar = m.adopt_result
                assert (ar.session, ar.player_id, ar.ok) == (session, ho.adopt.player_id,
                                                               True), ar
            if kind == "to_client" and m.to_client.message.seq == seq:
                assert m.to_client.request_id == rid, m
                reply = m.to_client.message
                break
        assert order.index("adopt_result") < len(order) - 1, \
            "AdoptResult after the answer: %s" % order
        self.handoff_result(src, session, ho.adopt.player_id, True)
        return ho, reply

    def stop(self):
        for shard in (1, 2):
            if self.srv[shard].alive():
                code = self.srv[shard].stop()
                assert code == 0, "shard %d exit code %d" % (shard, code)


def lease_line(proc, player_id, state, epoch):
    return "lease: player %d %s epoch %d" % (player_id, state, epoch) in proc.text()


def token_shard(token):
    assert token[0] == 2, "resume token version %d" % token[0]
    return token[1] | token[2] << 8


# ---- cases ----------------------------------------------------------------------

def handoff_move(s):
    c = rt.client_pb2
    a = expect(s.login(1, 1, "alice"), "login")
    pid = a.self.player_id
    assert sorted(z.id for z in a.zones) == [1, 2], a.zones
    assert token_shard(a.resume.token) == 1
    assert expect(s.request(1, 1, earn=c.EarnRequest(amount=5)), "earn").gold == 5
    assert lease_line(s.srv[1], pid, "online", 1)

    seq, rid = s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    ho = s.take(1, "handoff")
    assert ho.adopt.epoch == 1 and not ho.adopt.login and ho.adopt.next_msg_no > 1, ho
    eventually(lambda: "lease: player %d offline epoch 1 (handoff to shard 2)" % pid
               in s.srv[1].text(), what="shard 1's offline line")
    # Frozen: anything else is answered ZONE_HANDOFF, unnumbered.
    frozen = s.request(1, 1, chat=c.ChatRequest(text="hi"))
    expect_error(frozen, "ZONE_HANDOFF")
    assert frozen.msg_no == 0, frozen
    s.relay_adopt(ho)
    ar = s.take(2, "adopt_result")
    assert ar.ok and ar.player_id == pid, ar
    mr = s.gate[2].wait_reply(1, seq)
    assert body_is(mr, "move") and (mr.move.zone, mr.move.x, mr.move.y) == (2, 2500, 500), mr
    assert mr.msg_no == ho.adopt.next_msg_no, (mr.msg_no, ho.adopt.next_msg_no)
    tok = s.gate[2].wait_push(1, "token").token
    assert token_shard(tok.token) == 2
    s.handoff_result(1, 1, pid, True)
    eventually(lambda: "player alice (%d) handed to shard 2" % pid in s.srv[1].text(),
               what="shard 1 letting go")
    assert lease_line(s.srv[2], pid, "online", 2)
    row = s.row("alice")
    assert (row["lease_epoch"], row["lease_shard"], row["zone"]) == (2, 2, 2), row
    assert expect(s.request(2, 1, earn=c.EarnRequest(amount=7)), "earn").gold == 12
    assert s.metric(1, 'ringgate_gamesrv_handoffs_out_total{result="ok"}') == 1
    assert s.metric(2, 'ringgate_gamesrv_handoffs_in_total{result="ok"}') == 1
    # Shard 1 no longer has it: its session there is gone.
    expect_error(s.request(1, 1, chat=c.ChatRequest(text="hi")), "NOT_LOGGED_IN")
    # And back to zone 1.
    _, back = s.move_handed(2, 1, "alice", 10, 10, 1)
    assert body_is(back, "move") and back.move.zone == 1, back
    eventually(lambda: lease_line(s.srv[1], pid, "online", 3), what="shard 1 has it again")
    assert expect(s.request(1, 1, earn=c.EarnRequest(amount=1)), "earn").gold == 13
    expect(s.request(1, 1, logout=c.LogoutRequest()), "logout")
    row = s.row("alice")
    assert (row["lease_owner"], row["lease_epoch"], row["gold"]) == (0, 3, 13), row


def body_is(m, kind):
    return m.WhichOneof("body") == kind


def handoff_refused(s):
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "bob"), "login").self.player_id
    s.handoff_result(1, 99, 12345, True)  # no such handoff: ignored
    seq, _ = s.send(1, 1, move=c.MoveRequest(x=2100, y=100, zone=2))
    ho = s.take(1, "handoff")
    s.handoff_result(1, 1, pid, False)
    expect_error(s.gate[1].wait_reply(1, seq), "SERVICE_UNAVAILABLE")
    assert s.metric(1, 'ringgate_gamesrv_handoffs_out_total{result="failed"}') == 1
    eventually(lambda: lease_line(s.srv[1], pid, "online", 2),
               what="online again after the refusal, at a new epoch")
    assert s.srv[1].count("lease: player %d online epoch 1" % pid) == 1
    assert ho.adopt.epoch == 1
    assert s.row("bob")["lease_epoch"] == 2 and s.row("bob")["lease_shard"] == 1
    assert expect(s.request(1, 1, move=c.MoveRequest(x=3, y=4)), "move").zone == 1
    assert expect(s.request(1, 1, earn=c.EarnRequest(amount=2)), "earn").gold == 2


def redirect(s):
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "carol"), "login").self.player_id
    seq, rid = s.send(2, 7, login=c.LoginRequest(name="carol", password=b"pw"))
    rd = s.take(2, "redirect")
    assert (rd.session, rd.request_id, rd.shard, rd.hops) == (7, rid, 1, 1), rd
    assert rd.message.login.name == "carol" and rd.message.login.password == b"pw", rd
    # The gateway sends it on to shard 1 (another session of that link,
    # as if the client were on this gateway too).
    g = s.gate[1]
    g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
        session=7, deadline_ms=5000, request_id=rid, message=rd.message, hops=rd.hops)))
    kick = g.wait_kick(1)
    assert kick.kicked.code == c.LOGGED_IN_ELSEWHERE, kick
    lr = g.wait_reply(7, seq)
    assert body_is(lr, "login") and lr.login.self.player_id == pid, lr
    assert s.metric(2, "ringgate_gamesrv_redirects_total") == 1
    # A request redirected three times already is not sent on again.
    g2 = s.gate[2]
    g2.seq += 1
    g2.conn.send(g2.i.GateToGame(request=g2.i.ClientRequest(
        session=8, deadline_ms=5000, request_id=s.next_request_id(), hops=3,
        message=c.ClientMessage(seq=g2.seq, login=c.LoginRequest(name="carol",
                                                                  password=b"pw")))))
    expect_error(g2.wait_reply(8, g2.seq), "SERVICE_UNAVAILABLE")


def login_handoff(s):
    c = rt.client_pb2
    expect(s.login(1, 1, "dave"), "login")
    s.move_handed(1, 1, "dave", 2200, 300, 2)
    expect(s.request(2, 1, logout=c.LogoutRequest()), "logout")
    # Saved in zone 2: a login at shard 1 goes to shard 2 at once.
    seq, rid = s.send(1, 2, login=c.LoginRequest(name="dave", password=b"pw"))
    ho = s.take(1, "handoff")
    assert ho.adopt.login and ho.target_shard == 2 and ho.adopt.zone == 2, ho
    assert ho.request_id == rid and ho.adopt.seq == seq, ho
    s.relay_adopt(ho)
    assert s.take(2, "adopt_result").ok
    lr = s.gate[2].wait_reply(2, seq)
    assert body_is(lr, "login") and lr.login.zone.id == 2, lr
    assert (lr.login.self.x, lr.login.self.y) == (2200, 300), lr
    assert token_shard(lr.login.resume.token) == 2
    s.handoff_result(1, 2, ho.adopt.player_id, True)
    row = s.row("dave")
    assert row["lease_shard"] == 2 and row["lease_owner"] != 0, row


def fenced(s):
    """A shard that still believes it holds a player whose lease moved on
    (here: a stray adopt at shard 2 takes it) has its next write refused
    (DB_FENCED): the earn is answered ZONE_HANDOFF, not applied, and the
    player dropped, kicked LOGGED_IN_ELSEWHERE."""
    c = rt.client_pb2
    a = expect(s.login(1, 1, "ida"), "login")
    pid = a.self.player_id
    assert expect(s.request(1, 1, earn=c.EarnRequest(amount=3)), "earn").gold == 3
    g = s.gate[2]
    g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
        session=4, deadline_ms=5000, request_id=s.next_request_id(),
        adopt=g.i.Adopt(player_id=pid, name="ida", epoch=1, source_shard=1, zone=2,
                        x=2500, y=500, next_msg_no=1, seq=1))))
    assert s.take(2, "adopt_result").ok
    late = s.request(1, 1, earn=c.EarnRequest(amount=100))
    expect_error(late, "ZONE_HANDOFF")
    kick = s.gate[1].wait_kick(1)
    assert kick.kicked.code == c.LOGGED_IN_ELSEWHERE, kick
    eventually(lambda: "lease: player %d offline epoch 1 (fenced)" % pid in s.srv[1].text(),
               what="shard 1 letting go")
    assert s.row("ida")["gold"] == 3, s.row("ida")
    assert s.metric(1, "ringgate_gamesrv_fenced_writes_total") == 1


def stalled(s):
    c = rt.client_pb2
    expect(s.login(1, 1, "erin"), "login")
    assert expect(s.request(1, 1, earn=c.EarnRequest(amount=3)), "earn").gold == 3
    _, mr = s.move_handed(1, 1, "erin", 2500, 500, 2)
    expect(mr, "move")
    pid, old_epoch = s.row("erin")["id"], s.row("erin")["lease_epoch"]
    b = s.srv[2]
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        eventually(lambda: rt.procs.all_threads_stopped(b.proc.pid), what="shard 2 stopped")
        time.sleep(2 * LEASE_MS / 1000.0)  # past the lease: the database may give it away
        # Another login takes it through shard 1 (zone 2 is shard 2's: a
        # login handoff, which the test does not relay).
        s.send(1, 5, login=c.LoginRequest(name="erin", password=b"pw"))
        ho = s.take(1, "handoff")
        assert ho.adopt.epoch == old_epoch + 1, (ho.adopt.epoch, old_epoch)
        # The stopped shard's late earn, queued meanwhile.
        seq, _ = s.send(2, 1, earn=c.EarnRequest(amount=100))
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    # Handled before the tick that would self-fence: refused all the same.
    late = s.gate[2].wait_reply(1, seq)
    assert body_is(late, "error") and late.error.code in (
        c.SERVICE_UNAVAILABLE, c.ZONE_HANDOFF, c.NOT_LOGGED_IN), late
    s.gate[2].wait_kick(1)
    eventually(lambda: "lease: player %d offline epoch %d" % (pid, old_epoch) in b.text(),
               what="shard 2 letting go")
    assert s.row("erin")["gold"] == 3, s.row("erin")


def adopt_gone(s):
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "fay"), "login").self.player_id
    s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    ho = s.take(1, "handoff")
    s.relay_adopt(ho)
    s.gate[2].gone(1)
    ar = s.take(2, "adopt_result")
    if ar.ok:
        # The lease moved to shard 2 and is released again.
        eventually(lambda: s.row("fay")["lease_owner"] == 0, what="the lease released")
        assert s.row("fay")["lease_epoch"] == 2
    s.handoff_result(1, 1, pid, ar.ok)
    s.gate[1].gone(1)
    if ar.ok:
        eventually(lambda: "player fay (%d) handed to shard 2" % pid in s.srv[1].text(),
                   what="shard 1 letting go")


def adopt_late(s):
    """An adopt whose deadline passed on the way is refused, not dropped:
    the source waits for the result to let its player go on."""
    c = rt.client_pb2
    expect(s.login(1, 1, "hank"), "login")
    seq, _ = s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    ho = s.take(1, "handoff")
    g = s.gate[2]
    # Teach shard 2 the link's clock distance with a fresh request, then
    # send the adopt stamped 10 s before it, with 5 s left.
    g.seq += 1
    g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
        session=9, deadline_ms=5000, request_id=s.next_request_id(), sent_ms=1000000,
        message=c.ClientMessage(seq=g.seq, ping=c.PingRequest()))))
    g.wait_reply(9, g.seq)
    g.conn.send(g.i.GateToGame(request=g.i.ClientRequest(
        session=ho.session, deadline_ms=5000, request_id=ho.request_id, sent_ms=990000,
        adopt=ho.adopt)))
    ar = s.take(2, "adopt_result")
    assert not ar.ok and ar.player_id == ho.adopt.player_id, ar
    s.handoff_result(1, 1, ho.adopt.player_id, False)
    expect_error(s.gate[1].wait_reply(1, seq), "SERVICE_UNAVAILABLE")
    # Taken back at the next epoch (the refusal could hide an adopt).
    assert s.row("hank")["lease_epoch"] == 2 and s.row("hank")["lease_shard"] == 1


def refused_adopted(s):
    """The gateway reports a handoff refused (it judged the target's link
    dead) although the target's DbAdopt committed: the source must not
    play the player on at the old epoch."""
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "jack"), "login").self.player_id
    seq, _ = s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    ho = s.take(1, "handoff")
    s.relay_adopt(ho)
    assert s.take(2, "adopt_result").ok
    eventually(lambda: lease_line(s.srv[2], pid, "online", 2), what="shard 2 has it")
    s.handoff_result(1, 1, pid, False)
    err = s.gate[1].wait_reply(1, seq)
    # Never online again at epoch 1 (it was, before: online on two shards).
    assert s.srv[1].count("lease: player %d online" % pid) == 1, s.srv[1].text()
    expect_error(err, "SERVICE_UNAVAILABLE")
    assert "log in again" in err.error.message, err
    kick = s.gate[1].wait_kick(1)
    assert kick.kicked.code == c.SERVICE_UNAVAILABLE, kick
    eventually(lambda: "could not be taken back" in s.srv[1].text(),
               what="shard 1 dropping the player")
    assert s.srv[1].count("lease: player %d online" % pid) == 1, s.srv[1].text()
    row = s.row("jack")
    assert (row["lease_epoch"], row["lease_shard"]) == (2, 2), row


def stop_dbproxy(s, seconds):
    """SIGSTOP dbproxy; returns the function that continues it (after
    sleeping the rest of seconds)."""
    pid = s.dbproxy.proc.pid
    os.kill(pid, signal.SIGSTOP)
    eventually(lambda: rt.procs.all_threads_stopped(pid), what="dbproxy stopped")
    until = time.monotonic() + seconds

    def cont():
        time.sleep(max(0.0, until - time.monotonic()))
        os.kill(pid, signal.SIGCONT)
    return cont


def login_late(s):
    """dbproxy answers a DbLogin after the lease it took, counted from the
    request's send, has run out at the shard: no player comes online."""
    cont = stop_dbproxy(s, 1.2 * LEASE_MS / 1000.0)
    try:
        seq, _ = s.send(1, 1, login=rt.client_pb2.LoginRequest(name="kim", password=b"pw"))
    finally:
        cont()
    err = s.gate[1].wait_reply(1, seq)
    expect_error(err, "SERVICE_UNAVAILABLE")
    assert "retry" in err.error.message, err
    assert "online epoch" not in s.srv[1].text()
    assert s.row("kim")["lease_epoch"] == 1  # taken, not released: it runs out
    # A retry (same owner) is served.
    pid = expect(s.login(1, 2, "kim"), "login").self.player_id
    assert lease_line(s.srv[1], pid, "online", 1)


def adopt_late_reply(s):
    """The same for a DbAdopt: AdoptResult not ok, nobody online at the
    target; the source's re-take meets the adopt's epoch (fenced): the
    player is dropped there, never online twice."""
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "lou"), "login").self.player_id
    seq, _ = s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    ho = s.take(1, "handoff")
    cont = stop_dbproxy(s, 1.2 * LEASE_MS / 1000.0)
    try:
        s.relay_adopt(ho)
    finally:
        cont()
    ar = s.take(2, "adopt_result")
    assert not ar.ok and ar.player_id == pid, ar
    assert "ran out before the reply came" in s.srv[2].text()
    assert "online epoch" not in s.srv[2].text()
    s.handoff_result(1, 1, pid, False)
    expect_error(s.gate[1].wait_reply(1, seq), "SERVICE_UNAVAILABLE")
    time.sleep(0.5)
    assert s.srv[1].count("lease: player %d online" % pid) == 1, s.srv[1].text()


def handoff_timeout(s):
    c = rt.client_pb2
    pid = expect(s.login(1, 1, "gil"), "login").self.player_id
    s.send(1, 1, move=c.MoveRequest(x=2500, y=500, zone=2))
    s.take(1, "handoff")
    s.gate[1].gone(1)  # the record waits for the result all the same
    eventually(lambda: "player gil (%d): no HandoffResult in time" % pid in s.srv[1].text(),
               what="shard 1 dropping the frozen player", timeout=WAIT)
    row = s.row("gil")
    assert row["lease_owner"] != 0 and row["lease_epoch"] == 1, row  # not released


CASES = {
    "handoff_move": (handoff_move, []),
    "handoff_refused": (handoff_refused, []),
    "refused_adopted": (refused_adopted, []),
    "login_late": (login_late, []),
    "adopt_late_reply": (adopt_late_reply, []),
    "redirect": (redirect, []),
    "login_handoff": (login_handoff, []),
    "fenced": (fenced, []),
    "stalled": (stalled, []),
    "adopt_gone": (adopt_gone, ["--resume-grace-ms", "0"]),
    "adopt_late": (adopt_late, []),
    "handoff_timeout": (handoff_timeout, ["--call-deadline-ms", "1500"]),
}


def run(case_fn, extra):
    def test(build_dir):
        s = Shards(build_dir, *extra)
        case_fn(s)
        s.stop()
    return test


if __name__ == "__main__":
    rt.main(cases={name: run(fn, extra) for name, (fn, extra) in CASES.items()})
