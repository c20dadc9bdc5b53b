"""The gateway across several game shards (issue 14; docs/protocol.md
section 11, "Gateway"), against scripted stand-ins for gamesrv, one per
shard, so that every message of the routing is seen and every corner can
be made to happen:

  routing   logins go to the first shard up from FNV-1a(name) % M; a
            second login on a placed connection is ALREADY_LOGGED_IN at
            the gateway; session ids carry the gateway id (so does Hello);
            a Redirect resends the request (same request_id, hops) to the
            named shard, and one naming no shard is answered
            SERVICE_UNAVAILABLE; a logout frees the client to log in
            elsewhere; a resume goes to the shard its version 2 token
            names (none of this gateway's: RESUME_EXPIRED); ClientGone
            reaches every shard that saw the session; per-shard metrics.
  handoff   a Handoff reaches the target as ClientRequest{adopt} with the
            move's request_id; AdoptResult goes back to the source as
            HandoffResult; a failed adoption, a target that is down, not
            one of the gateway's, or whose link drops mid-way: the source
            hears false and answers the move itself, exactly once; a
            client gone mid-handoff: the source still hears the end.
  link_down one shard's link going down tells its own clients only (they
            stay connected and may log in on another shard); a gamesrv
            that says it is another shard than its place in --gamesrvs is
            refused.
  options   --gamesrvs and --gateway-id refuse what they cannot use.
  real      the same through real processes: one dbproxy, two gamesrv
            shards (zone 2 is shard 2's) and two gateways: a walk into
            zone 2 and back hands the player over each way with its gold
            (no earn lost or doubled), with a resume through the other
            gateway in between (routed by the token's shard); a login
            through the other gateway, whichever shard it reaches first,
            kicks the first session; a shard killed: its players are told
            and stay connected, the other shard's play on.
"""
import contextlib
import os
import signal
import subprocess

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error
from ringgate_test.cluster import scrape
from ringgate_test.fake_gamesrv import FakeGamesrv

GATEWAY_ID = 7
PLAYER = 42  # the player every scripted handoff moves


def fnv1a(name):
    h = 2166136261
    for byte in name.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def name_for(index, shards, prefix):
    """A name whose logins start at shard index + 1 of `shards`."""
    return next(n for n in ("%s%d" % (prefix, i) for i in range(1000))
                if fnv1a(n) % shards == index)


class Shard(FakeGamesrv):
    """One scripted shard. Answers a login with LoginReply, or a Redirect
    to redirect[name]; a move with MoveReply, or (hand_to set) a Handoff of
    PLAYER to that shard, then answers the move SERVICE_UNAVAILABLE itself
    if the HandoffResult says false; an adopt per `adopt` ("ok":
    AdoptResult true, then the move's answer; "fail": AdoptResult false;
    "silent": nothing); ping with a Pong whose server_time_ms is its shard
    id, so a client sees who answered."""

    def __init__(self, shard):
        super().__init__(shard)
        self.redirect = {}
        self.hand_to = None
        self.adopt = "ok"
        self.held = {}  # session -> the move it handed off

    def answer(self, link, msg):
        pb, cpb = rt.internal_pb2, rt.client_pb2
        kind = msg.WhichOneof("body")
        if kind == "handoff_result":
            moved = self.held.pop(msg.handoff_result.session, None)
            if moved is not None and not msg.handoff_result.ok:
                self.reply(link, moved, error=cpb.Error(code=cpb.SERVICE_UNAVAILABLE,
                                                        message="scripted: not moved"))
            return
        if kind != "request":
            return
        req = msg.request
        if req.HasField("adopt"):
            self._adopt(link, req)
            return
        what = req.message.WhichOneof("body")
        if what == "login" and req.message.login.name in self.redirect:
            link.send(pb.GameToGate(redirect=pb.Redirect(
                session=req.session, request_id=req.request_id,
                shard=self.redirect[req.message.login.name], message=req.message,
                no_create=req.no_create, hops=req.hops + 1)))
        elif what == "login":
            self.reply(link, req, login=cpb.LoginReply(created=True))
        elif what == "move" and self.hand_to is not None:
            self.held[req.session] = req
            move = req.message.move
            link.send(pb.GameToGate(handoff=pb.Handoff(
                session=req.session, request_id=req.request_id, target_shard=self.hand_to,
                adopt=pb.Adopt(player_id=PLAYER, name="mover", epoch=3,
                               source_shard=self.shard, zone=move.zone, x=move.x, y=move.y,
                               next_msg_no=5, seq=req.message.seq))))
        elif what == "move":
            move = req.message.move
            self.reply(link, req, move=cpb.MoveReply(x=move.x, y=move.y, zone=move.zone))
        elif what == "ping":
            self.reply(link, req, pong=cpb.Pong(server_time_ms=self.shard))
        elif what == "resume":
            self.reply(link, req, resume=cpb.ResumeReply())
        elif what == "logout":
            self.reply(link, req, logout=cpb.LogoutReply())

    def _adopt(self, link, req):
        pb, cpb = rt.internal_pb2, rt.client_pb2
        if self.adopt == "silent":
            return
        ok = self.adopt == "ok"
        link.send(pb.GameToGate(adopt_result=pb.AdoptResult(
            session=req.session, player_id=req.adopt.player_id, ok=ok)))
        if ok:
            answer = cpb.ServerMessage(seq=req.adopt.seq, move=cpb.MoveReply(
                x=req.adopt.x, y=req.adopt.y, zone=req.adopt.zone))
            link.send(pb.GameToGate(to_client=pb.ToClient(
                sessions=[req.session], request_id=req.request_id, message=answer)))

    def adopts(self):
        return [r for r in self.received("request") if r.HasField("adopt")]


def start_gateway(build_dir, shards, *extra):
    """A gateway (id GATEWAY_ID) on the scripted shards, in that order; its
    admin port in .admin_port."""
    work = rt.temp_dir("ringgate-gws-")
    admin_file = os.path.join(work, "gateway.admin-port")
    gw = rt.start("gateway", build_dir, work, "--gamesrvs",
                  ",".join("127.0.0.1:%d" % s.port for s in shards),
                  "--gateway-id", str(GATEWAY_ID), *extra, dead_ms=1000, insecure=True,
                  admin_port_file=admin_file)
    gw.admin_port = rt.procs.port_in(admin_file)
    return gw


@contextlib.contextmanager
def gateway_on_shards(build_dir, count, up, *extra):
    """A gateway on `count` scripted shards, of which the first `up` run
    (the others refuse connections, as if down), once their links are up;
    yields (gateway, shards) and closes the shards after."""
    shards = [Shard(i + 1) for i in range(count)]
    try:
        for s in shards[:up]:
            s.start()
        gw = start_gateway(build_dir, shards, *extra)
        wait_links(gw, *range(1, up + 1))
        yield gw, shards
    finally:
        for s in shards:
            s.close()


def metrics(gw):
    return scrape(gw.admin_port, "gateway")


def wait_links(gw, *shards):
    for shard in shards:
        key = 'ringgate_gateway_shard_link_up{shard="%d"}' % shard
        rt.eventually(lambda: metrics(gw).get(key) == 1, what="shard %d link up" % shard)


def answered_by(client):
    """The shard that answers client's ping (its Pong's server_time_ms)."""
    return expect(client.ping(), "pong").server_time_ms


def check_routing(build_dir):
    with gateway_on_shards(build_dir, 2, 2) as (gw, (a, b)):
        assert all(h.gateway_id == GATEWAY_ID for h in a.hellos + b.hellos), a.hellos

        # Logins start at FNV-1a(name) % 2; the client then plays there.
        on1, on2 = name_for(0, 2, "one"), name_for(1, 2, "two")
        c1, c2 = rt.GameClient(gw.port, "c1"), rt.GameClient(gw.port, "c2")
        expect(c1.login(on1, "pw"), "login")
        expect(c2.login(on2, "pw"), "login")
        assert [r.message.login.name for r in a.received("request")] == [on1]
        assert [r.message.login.name for r in b.received("request")] == [on2]
        assert (answered_by(c1), answered_by(c2)) == (1, 2)
        session = a.received("request")[0].session
        assert session >> 48 == GATEWAY_ID and session & ((1 << 40) - 1) != 0, hex(session)

        # Placed: a second login is refused at the gateway, unsent.
        sent = len(a.received("request"))
        expect_error(c1.login(on2, "pw"), "ALREADY_LOGGED_IN")
        assert len(a.received("request")) == sent

        # A logout frees the connection to log in anywhere.
        expect(c2.logout(), "logout")
        expect(c2.login(on1, "pw"), "login")
        assert answered_by(c2) == 1

        # Redirect: the same request, to the named shard, which answers.
        moved = name_for(0, 2, "moved")
        a.redirect[moved] = 2
        c3 = rt.GameClient(gw.port, "c3")
        expect(c3.login(moved, "pw"), "login")
        first = [r for r in a.received("request") if r.message.login.name == moved][0]
        again = [r for r in b.received("request") if r.message.login.name == moved][0]
        assert again.request_id == first.request_id and again.hops == 1, again
        assert again.session == first.session
        assert answered_by(c3) == 2

        # A Redirect to no shard of this gateway: SERVICE_UNAVAILABLE.
        for bad in (0, 9):
            lost = name_for(0, 2, "lost%d-" % bad)
            a.redirect[lost] = bad
            c4 = rt.GameClient(gw.port, "c4")
            expect_error(c4.login(lost, "pw"), "SERVICE_UNAVAILABLE")
            c4.close()

        # Resume: routed by the token's shard (version 2).
        c5 = rt.GameClient(gw.port, "c5")
        expect(c5.resume(token=bytes([2, 2, 0]) + b"rest of the token"), "resume")
        assert answered_by(c5) == 2
        expect_error(rt.GameClient(gw.port, "c6").resume(token=bytes([2, 9, 0]) + b"x"),
                     "RESUME_EXPIRED")
        before = len(a.received("request"))
        expect(rt.GameClient(gw.port, "c7").resume(token=bytes([1]) + b"v1 token"), "resume")
        assert len(a.received("request")) == before + 1  # the first shard up

        # c3 was seen by both shards: both hear it went.
        c3.close()
        rt.eventually(lambda: first.session in a.gone_sessions() and
                      first.session in b.gone_sessions(), what="ClientGone to both shards")

        m = metrics(gw)
        assert m["ringgate_gateway_redirects_total"] == 1, m
        assert m['ringgate_gateway_shard_requests_total{shard="2"}'] >= 6, m
        assert m["ringgate_gateway_gamesrv_link_up"] == 1, m
        assert gw.stop(timeout=20) == 0, "gateway exit status"


def check_handoff(build_dir):
    cpb = rt.client_pb2
    # Shard 3 never starts.
    with gateway_on_shards(build_dir, 3, 2, "--request-timeout-ms", "3000") as (gw, (a, b, _)):
        p = rt.GameClient(gw.port, "p")
        expect(p.login(name_for(0, 3, "p"), "pw"), "login")
        assert answered_by(p) == 1

        # A hands the player to B: B adopts it, answers the move, and A
        # hears it went well; the client plays on B from now on.
        a.hand_to = 2
        r = expect(p.request(move=cpb.MoveRequest(x=3, y=4, zone=2)), "move")
        assert r.zone == 2, r
        move = [q for q in a.received("request") if q.message.WhichOneof("body") == "move"][-1]
        adopt = b.adopts()[-1]
        assert adopt.request_id == move.request_id and adopt.session == move.session
        assert adopt.adopt.player_id == PLAYER and not adopt.HasField("message")
        assert 0 < adopt.deadline_ms <= 3000, adopt.deadline_ms
        rt.eventually(lambda: [(h.player_id, h.ok) for h in a.received("handoff_result")]
                      == [(PLAYER, True)], what="HandoffResult ok to A")
        assert answered_by(p) == 2

        # B hands it back, but A does not adopt it: B hears false, answers
        # the move itself, and keeps the player.
        b.hand_to, a.adopt = 1, "fail"
        expect_error(p.request(move=cpb.MoveRequest(x=1, y=1, zone=1)), "SERVICE_UNAVAILABLE")
        assert [h.ok for h in b.received("handoff_result")] == [False]
        assert answered_by(p) == 2

        # To a shard whose link is down, to none of this gateway's, to
        # itself: refused at once, B answers.
        for target in (3, 0, 9, 2):
            b.hand_to = target
            expect_error(p.request(move=cpb.MoveRequest(x=1, y=1, zone=1)),
                         "SERVICE_UNAVAILABLE")
        assert [h.ok for h in b.received("handoff_result")] == [False] * 5
        assert answered_by(p) == 2

        # The target's link drops while it adopts: the source hears false
        # and answers the move, which gets exactly one answer.
        b.hand_to, a.adopt = 1, "silent"
        adopts = len(a.adopts())
        p.seq += 1
        p.send(cpb.ClientMessage(seq=p.seq, move=cpb.MoveRequest(x=2, y=2, zone=1)))
        rt.eventually(lambda: len(a.adopts()) > adopts, what="the adopt at A")
        a.drop_link()
        expect_error(p.wait_reply(p.seq), "SERVICE_UNAVAILABLE")
        assert [h.ok for h in b.received("handoff_result")] == [False] * 6
        assert answered_by(p) == 2
        assert not [m for m in p.inbox if m.seq == p.seq - 1], p.inbox  # no second answer

        # The client goes mid-handoff: the source still hears the end.
        wait_links(gw, 1)
        adopts = len(a.adopts())
        p.seq += 1
        p.send(cpb.ClientMessage(seq=p.seq, move=cpb.MoveRequest(x=2, y=2, zone=1)))
        rt.eventually(lambda: len(a.adopts()) > adopts, what="the adopt at A")
        session = a.adopts()[-1].session
        p.close()
        rt.eventually(lambda: session in a.gone_sessions(), what="ClientGone to the target")
        a.send(adopt_result=rt.internal_pb2.AdoptResult(session=session, player_id=PLAYER,
                                                        ok=True))
        rt.eventually(lambda: b.received("handoff_result")[-1].ok, what="HandoffResult ok to B")

        m = metrics(gw)
        assert m['ringgate_gateway_handoffs_total{result="ok"}'] == 2, m
        assert m['ringgate_gateway_handoffs_total{result="failed"}'] == 6, m
        assert gw.stop(timeout=20) == 0, "gateway exit status"


def check_link_down(build_dir):
    with gateway_on_shards(build_dir, 2, 2) as (gw, (a, b)):
        x, y = rt.GameClient(gw.port, "x"), rt.GameClient(gw.port, "y")
        on1 = name_for(0, 2, "x")
        expect(x.login(on1, "pw"), "login")
        expect(y.login(name_for(1, 2, "y"), "pw"), "login")

        # Shard 1 goes away for good: its players are told and stay
        # connected; shard 2's are not disturbed.
        a.close()
        x.wait_push(lambda m: body_of(m) == "error" and
                    m.error.code == rt.client_pb2.SERVICE_UNAVAILABLE, what="link-down push")
        assert answered_by(y) == 2
        assert not y.take_pushes()
        # x logs in again: its name's shard is down, so the next one up.
        expect(x.login(on1, "pw"), "login")
        assert answered_by(x) == 2
        m = metrics(gw)
        assert m['ringgate_gateway_shard_link_up{shard="1"}'] == 0, m
        assert m["ringgate_gateway_gamesrv_link_up"] == 0, m
        assert gw.stop(timeout=20) == 0, "gateway exit status"

        # Shard 2 in the place of shard 1: refused, never used.
        wrong = start_gateway(build_dir, [b])
        rt.eventually(lambda: "reached shard 2, not shard 1" in wrong.text(),
                      what="the wrong shard refused")
        expect_error(rt.GameClient(wrong.port, "z").ping(), "SERVICE_UNAVAILABLE")
        assert metrics(wrong)['ringgate_gateway_shard_link_up{shard="1"}'] == 0
        assert wrong.stop(timeout=20) == 0, "gateway exit status"


def check_options(build_dir):
    def refused(*flags):
        r = subprocess.run(rt.procs.argv("gateway", build_dir, "--ws-port", "0", *flags,
                                         insecure=True),
                           capture_output=True, text=True, timeout=rt.WAIT,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 2, (flags, r.returncode, r.stderr)
        return r.stderr

    for shards in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:7701,", ":7701", "127.0.0.1:77x",
                   "[::1]", ",".join(["127.0.0.1:7701"] * 17)):
        assert "--gamesrvs must be HOST:PORT" in refused("--gamesrvs", shards), shards
    for gateway_id in ("0", "65536"):
        assert "is outside 1..65535" in refused("--gateway-id", gateway_id), gateway_id


# Shard 2 owns zone 2; zone 1 (every new player's) is shard 1's.
ZONE2 = (2000.0, 0.0)  # a point of zone 2
REAL_ZONES = ["--zone-id", "1", "--zones", "2:2000:0:3000:1000", "--zone-shards", "2:2"]


def check_real(build_dir):
    cpb = rt.client_pb2
    work = rt.temp_dir("ringgate-gws-real-")
    secret = os.path.join(work, "cluster.secret")
    with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(os.urandom(32))
    dbproxy = rt.start("dbproxy", build_dir, work, secret_file=secret)
    ports = {}

    def start_shard(shard):
        """Shard `shard`, on the port it had before (any free one at first)."""
        d = os.path.join(work, "shard%d" % shard)
        os.makedirs(d, exist_ok=True)
        p = rt.start("gamesrv", build_dir, d, "--shard", str(shard), "--lease-ms", "1500",
                     *REAL_ZONES, peer_port=dbproxy.port, secret_file=secret,
                     port=ports.get(shard, 0))
        ports[shard] = p.port
        return p

    shards = {shard: start_shard(shard) for shard in (1, 2)}
    gws = []
    for gw_id in (1, 2):
        d = os.path.join(work, "gateway%d" % gw_id)
        os.mkdir(d)
        admin_file = os.path.join(d, "gateway.admin-port")
        gw = rt.start("gateway", build_dir, d, "--gamesrvs",
                      ",".join("127.0.0.1:%d" % shards[k].port for k in (1, 2)),
                      "--gateway-id", str(gw_id), secret_file=secret,
                      admin_port_file=admin_file)
        gw.admin_port = rt.procs.port_in(admin_file)
        wait_links(gw, 1, 2)
        gws.append(gw)

    # Alice starts in zone 1 (shard 1), whichever shard her login reaches.
    alice = rt.GameClient(gws[0].port, "alice")
    me = expect(alice.login("alice", "alice-pw"), "login").self
    assert me.zone == 1, me
    assert expect(alice.earn(5), "earn").gold == 5

    # Into zone 2: shard 1 hands her to shard 2, which answers the move
    # and gives her a token naming shard 2.
    moved = expect(alice.request(move=cpb.MoveRequest(x=ZONE2[0] + 10, y=ZONE2[1] + 10,
                                                     zone=2)), "move")
    assert moved.zone == 2, moved
    alice.wait_push(lambda m: body_of(m) == "token" and m.token.token[:3] == bytes([2, 2, 0]),
                    what="a resume token naming shard 2")
    assert expect(alice.earn(5), "earn").gold == 10
    rt.eventually(lambda: "lease: player %d online" % me.player_id in shards[2].text(),
                  what="alice online on shard 2")

    # Her connection drops; she resumes through the other gateway, which
    # sends the resume to shard 2 (the token's), and plays on there.
    expect(alice.resume(port=gws[1].port), "resume")
    assert expect(alice.earn(5), "earn").gold == 15

    # And back into zone 1, through that gateway.
    moved = expect(alice.request(move=cpb.MoveRequest(x=1, y=1, zone=1)), "move")
    assert moved.zone == 1, moved
    assert expect(alice.earn(5), "earn").gold == 20
    # One move each, and the login too when it reached shard 2 first
    # (alice lives in zone 1: shard 2 hands her over at once).
    handoffs = [metrics(gw)['ringgate_gateway_handoffs_total{result="ok"}'] for gw in gws]
    assert handoffs == [1 + (fnv1a("alice") % 2 == 1), 1], handoffs

    # Bob plays on shard 2 through the first gateway.
    bob = rt.GameClient(gws[0].port, "bob")
    expect(bob.login("bob", "bob-pw"), "login")
    assert expect(bob.request(move=cpb.MoveRequest(x=ZONE2[0] + 5, y=ZONE2[1] + 5, zone=2)),
                  "move").zone == 2

    # Alice logs in again through the first gateway: the session on the
    # second is kicked, her gold is all there.
    again = rt.GameClient(gws[0].port, "alice-again")
    assert expect(again.login("alice", "alice-pw"), "login").self.gold == 20
    push = alice.wait_push(lambda m: body_of(m) == "kicked", what="LOGGED_IN_ELSEWHERE")
    assert push.kicked.code == cpb.LOGGED_IN_ELSEWHERE, push
    alice.wait_closed()
    assert expect(again.earn(1), "earn").gold == 21
    # Reaching shard 2 first, the login was redirected to shard 1, her
    # lease's holder.
    redirects = metrics(gws[0])["ringgate_gateway_redirects_total"]
    assert redirects == (fnv1a("alice") % 2 == 1), redirects

    # Shard 2 dies: bob is told and stays connected; alice plays on.
    shards[2].proc.send_signal(signal.SIGKILL)
    shards[2].proc.wait()
    bob.wait_push(lambda m: body_of(m) == "error" and m.error.code == cpb.SERVICE_UNAVAILABLE,
                  what="bob told shard 2 is gone")
    # Still connected, now on no shard: a game request goes to a shard
    # that is up, which has not seen him log in.
    expect_error(bob.earn(1), "NOT_LOGGED_IN")
    assert expect(again.earn(1), "earn").gold == 22
    assert expect(again.ping(), "pong")

    # Shard 2 comes back on its port: bob, still connected, logs in again
    # (refused while shard 2 is down or his old lease runs) and is where
    # he was.
    shards[2] = start_shard(2)

    def bob_back():
        reply = bob.login("bob", "bob-pw")
        assert body_of(reply) == "login", reply
        return reply.login
    assert rt.eventually(bob_back, timeout=30, what="bob back on shard 2").self.zone == 2
    for gw in gws:
        assert gw.stop(timeout=20) == 0, "gateway exit status"


rt.main(cases={"routing": check_routing, "handoff": check_handoff,
               "link_down": check_link_down, "options": check_options,
               "real": check_real})
