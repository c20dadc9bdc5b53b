"""The world across shards (issue 14): two gateways x two gamesrv shards
with every process on a host of its own (network namespaces:
ringgate_test/netns.py, skipped without root), a short lease, and the
shards' lease log lines checked at the end of every case: no player online
on two shards at any moment (ringgate_test/leases.py).

Zone 1 belongs to shard 1, zone 2 to shard 2; a new player starts in
zone 1, and a move naming zone 2 hands it over to shard 2 (and back).

  two_by_two          players on both shards through both gateways: each
                      shard's players see each other across gateways, earns
                      acknowledged on both shards
  login_elsewhere     a second login through the other gateway kicks the
                      first session (LOGGED_IN_ELSEWHERE), whichever shard
                      holds the player
  border_handoff      a player walks between the zones with earns sent
                      around each move: every request answered once (done
                      or ZONE_HANDOFF), the database holds exactly the sum
                      of the acknowledged earns; the other shard's players
                      see it arrive
  shard_kill9         kill -9 of shard 2 under load: its players get
                      SERVICE_UNAVAILABLE and stay connected, shard 1's
                      players never see an error; restarted, shard 2's
                      players log in again on their connections
  partition_shard     shard 2's host cut off for two lease lengths with an
                      earn of one of its players in flight to the database,
                      and that player logging in elsewhere meanwhile: the
                      shard lets its players go before its leases run out,
                      its late earn (sent again after the healing) is
                      refused (DB_FENCED, counted by dbproxy), nothing
                      acknowledged is lost, logins are served again within
                      two lease lengths of the healing
  partition_gateway   gateway 1's host cut off for two lease lengths: its
                      players log in again through gateway 2 meanwhile; the
                      old sessions no longer play; nothing acknowledged
                      lost; logins through gateway 1 within two lease
                      lengths of the healing
  login_handoff_refused
                      a login handed to shard 2 while it cannot reach the
                      database is refused (SERVICE_UNAVAILABLE); once shard 2
                      is back, a login on the same connection works
  pg_partition_shard  partition_shard with two dbproxies on one PostgreSQL
                      server (shard i prefers dbproxy i; skipped without
                      PostgreSQL)
  deploy_2x2          deploy/ringgate up with [topology] 2 x 2 on loopback
                      (no namespaces): status shows five processes and every
                      link up, a client on each gateway plays on both
                      shards; shard 2 killed: status shows its links down,
                      `up` restarts it alone on its port, its player logs in
                      again; down stops them all
  lease_check         the check itself (no processes): crafted lease lines
                      with a player online on two shards, an epoch going
                      back, or lines out of order are caught; a clean
                      handoff and a killed run are not
"""
import os
import shutil
import threading
import time

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error, leases, shards
from ringgate_test.netns import Hosts
from ringgate_test.spread import Spread

LEASE_MS = 1500
HEARTBEAT_MS, DEAD_MS = 200, 1000
# Zone 1 (shard 1) and zone 2 (shard 2), apart; broadcast interest, so a
# zone's players get joined/left/chat_line pushes from each other.
ZONES = shards.DEFAULT_ZONES[:2]
ZONE_FLAGS = shards.zone_flags(ZONES, {2: 2}) + ["--interest", "broadcast"]
ZONE_CENTRE = {z[0]: ((z[1] + z[3]) / 2.0, (z[2] + z[4]) / 2.0) for z in ZONES}
# Every client of a test comes from the one "client" host: the limits that
# stop one machine's flood are lifted (they have tests of their own).
LIFTED = shards.LIFTED
FENCED = "ringgate_dbproxy_fenced_writes_total"
# Answers to an earn that leave it unknown whether it was applied
# (docs/protocol.md, "which of these may have been applied").
UNKNOWN = ("SERVICE_UNAVAILABLE", "TIMEOUT", "SHUTTING_DOWN", "INTERNAL")


def merged(*arg_maps):
    """Spread args maps joined: the flags of one key concatenated."""
    out = {}
    for m in arg_maps:
        for key, flags in m.items():
            out.setdefault(key, []).extend(flags)
    return out


def two_by_two_on(build_dir, hosts, args=None, **kw):
    """The 2 x 2 Spread of every case on hosts."""
    return Spread(build_dir, hosts, gateways=2, shards=2, heartbeat_ms=HEARTBEAT_MS,
                  dead_ms=DEAD_MS, lease_ms=LEASE_MS, zones=ZONE_FLAGS,
                  args=merged(LIFTED, args or {}), **kw)


def on_spread(case, args=None):
    """case(spread) as a harness case: on a fresh 2 x 2 Spread on its own
    hosts; every case ends with the lease check."""
    def run(build_dir):
        with Hosts(Spread.host_names(2, 2)) as hosts:
            spread = two_by_two_on(build_dir, hosts, args)
            try:
                case(spread)
                check_leases(spread)
            finally:
                spread.close_clients()
    return run


def check_leases(spread):
    n = leases.assert_online_once(spread.lease_runs())
    rt.log("lease lines: %d online intervals, nobody online twice" % n)
    assert n > 0, "no lease lines in the shards' logs"


# ---- playing -------------------------------------------------------------------

def login(spread, name, gateway):
    """A client of name logged in through gateway; returns (client, LoginReply)."""
    c = spread.client(name, gateway)
    return c, expect(c.login(name, name + "-pw"), "login")


def travel(client, zone):
    """Move client to the centre of zone (a handoff when another shard owns
    it); the MoveReply."""
    x, y = ZONE_CENTRE[zone]
    reply = expect(client.request(move=rt.client_pb2.MoveRequest(x=x, y=y, zone=zone)), "move")
    assert reply.zone == zone, reply
    return reply


def earned(reply):
    """The gold of an earn reply, or None for a refusal (any Error)."""
    if body_of(reply) == "earn":
        return reply.earn.gold
    expect(reply, "error")
    return None


def is_pushed(body, pred=lambda m: True):
    return lambda m: body_of(m) == body and pred(m)


def shard_players(spread, shard):
    return spread.metrics("gamesrv", shard)["ringgate_gamesrv_players_online"]


def fenced_total(spread):
    return sum(spread.metrics("dbproxy", i).get(FENCED, 0)
               for i in range(1, spread.n_dbproxies + 1))


def wait_login(spread, name, gateway, since, client=None, bound_s=None):
    """Log name in through gateway (on client's connection, or a new
    one), retrying until it works; it must within bound_s (default two
    lease lengths) of since, plus a second for the round trips. Returns
    (client, LoginReply)."""
    bound_s = 2 * LEASE_MS / 1000.0 if bound_s is None else bound_s
    holder = {"c": client}

    def attempt():
        if holder["c"] is None:
            holder["c"] = spread.client(name, gateway)
        try:
            reply = holder["c"].login(name, name + "-pw")
        except rt.Closed:
            holder["c"] = None
            return None
        return reply.login if body_of(reply) == "login" else None
    reply = rt.eventually(attempt, timeout=bound_s + 10, interval=0.1,
                          what="%s's login through gateway %d" % (name, gateway))
    took = time.monotonic() - since
    rt.log("%s logged in %.2f s after" % (name, took))
    assert took <= bound_s + 1.0, "%s's login came back %.2f s after (bound %.1f s)" % (
        name, took, bound_s)
    return holder["c"], reply


class Load(threading.Thread):
    """A player under load on its own connection: earns 1 (and moves, with
    move=True) in a loop until stop(); after a refusal it logs in again
    when relogin is set. Counts what was acknowledged, what may or may not
    have been applied (an earn answered with one of UNKNOWN), and what was
    refused, by error code name."""

    def __init__(self, client, name, zone, move=False):
        super().__init__(daemon=True, name="load-" + name)
        self.client, self.player, self.zone = client, name, zone
        self.moves = move
        self.acked = 0          # gold acknowledged by earn replies
        self.unknown = 0        # gold of earns whose outcome is unknown
        self.errors = {}        # error code name -> count
        self.relogins = 0
        self.relogin = False
        self.halt = threading.Event()
        self.failure = None

    def count(self, reply):
        code = rt.client_pb2.ErrorCode.Name(reply.error.code)
        self.errors[code] = self.errors.get(code, 0) + 1
        return code

    def run(self):
        step = 0
        try:
            while not self.halt.is_set():
                step += 1
                # Errors pushed (a shard link down) count as refusals too.
                for m in self.client.take_pushes():
                    if body_of(m) == "error":
                        self.count(m)
                if self.moves:
                    x, y = ZONE_CENTRE[self.zone]
                    reply = self.client.request(move=rt.client_pb2.MoveRequest(
                        x=x + step % 10, y=y))
                    if body_of(reply) == "error":
                        self.refused(self.count(reply))
                if not self.halt.is_set():
                    reply = self.client.earn(1)
                    if body_of(reply) == "earn":
                        self.acked += 1
                    else:
                        code = self.count(reply)
                        self.unknown += code in UNKNOWN
                        self.refused(code)
                self.halt.wait(0.02)
        except Exception as exc:  # noqa: BLE001 - reported by stop()
            self.failure = exc

    def refused(self, code):
        if self.relogin and code in ("SERVICE_UNAVAILABLE", "NOT_LOGGED_IN"):
            reply = self.client.login(self.player, self.player + "-pw")
            if body_of(reply) == "login":
                self.relogins += 1
            self.halt.wait(0.1)
        else:
            self.halt.wait(0.05)

    def stop(self):
        self.halt.set()
        self.join(rt.WAIT)
        assert not self.is_alive(), "%s's load did not stop" % self.player
        if self.failure:
            raise AssertionError("%s's load failed: %r" % (self.player, self.failure))


def settle_gold(spread, acked, unknown=None):
    """The database holds what was acknowledged, acked[name], for each
    player, plus at most unknown[name] (earns whose answer left it open
    whether they were applied); nothing else, nothing twice."""
    for name, want in acked.items():
        most = want + (unknown or {}).get(name, 0)
        rt.eventually(lambda: want <= spread.db_gold(name) <= most, timeout=15,
                      what="%s's gold in the database within the %d acknowledged and %d "
                      "(is %s)" % (name, want, most, spread.db_gold(name)))


# ---- the cases -----------------------------------------------------------------

def two_by_two(spread):
    ann, a = login(spread, "ann", 1)
    bo, b = login(spread, "bo", 2)
    cy, _ = login(spread, "cy", 1)
    di, _ = login(spread, "di", 2)
    assert {z.id for z in a.zones} == {1, 2}, a.zones
    assert a.self.zone == 1 and b.self.zone == 1, (a.self, b.self)
    travel(cy, 2)
    travel(di, 2)
    # Players on each shard, through both gateways.
    rt.eventually(lambda: shard_players(spread, 1) == 2 and shard_players(spread, 2) == 2,
                  what="two players on each shard")
    gold = {name: earned(c.earn(n)) for name, c, n in (("ann", ann, 1), ("bo", bo, 2),
                                                      ("cy", cy, 3), ("di", di, 4))}
    assert gold == {"ann": 1, "bo": 2, "cy": 3, "di": 4}, gold
    # Each shard's players hear each other across the gateways.
    expect(ann.chat("zone one"), "chat")
    bo.wait_push(is_pushed("chat_line", lambda m: m.chat_line.text == "zone one"),
                 what="ann's chat at bo (shard 1, other gateway)")
    expect(cy.chat("zone two"), "chat")
    di.wait_push(is_pushed("chat_line", lambda m: m.chat_line.text == "zone two"),
                 what="cy's chat at di (shard 2, other gateway)")
    runs = spread.lease_runs()
    ids = {n: spread.player_id(n) for n in ("ann", "bo", "cy", "di")}
    assert leases.holders(runs, ids["ann"]) == [1] and leases.holders(runs, ids["cy"]) == [2], (
        leases.holders(runs, ids["ann"]), leases.holders(runs, ids["cy"]))
    for g in (1, 2):
        assert spread.link_up(g, 1) and spread.link_up(g, 2)
    for c in (ann, bo, cy, di):
        expect(c.logout(), "logout")
    settle_gold(spread, gold)


def login_elsewhere(spread):
    # Two players held by shard 1 and two by shard 2, each logged in through
    # gateway 1, then again through gateway 2; names differ so that the
    # gateways' first choice of shard (by name) varies.
    names = {"eve": 1, "fay": 1, "gus": 2, "hal": 2}
    firsts = {}
    for name, zone in names.items():
        c, _ = login(spread, name, 1)
        if zone == 2:
            travel(c, 2)
        expect(c.earn(5), "earn")
        firsts[name] = c
    for name, zone in names.items():
        second, reply = login(spread, name, 2)
        assert reply.self.zone == zone and reply.self.gold == 5, reply.self
        kicked = firsts[name].wait_push(is_pushed("kicked"), what="%s's first session kicked"
                                        % name)
        assert kicked.kicked.code == rt.client_pb2.LOGGED_IN_ELSEWHERE, kicked
        assert earned(second.earn(1)) == 6
        ids = spread.player_id(name)
        assert leases.holders(spread.lease_runs(), ids) == [zone], (
            name, leases.holders(spread.lease_runs(), ids))
        expect(second.logout(), "logout")
    settle_gold(spread, {name: 6 for name in names})


def pipelined(client, messages):
    """Send messages (ClientMessage bodies as dicts) in one write, with
    consecutive seqs; return the replies in seq order, each exactly once."""
    pb = rt.client_pb2
    frames = b""
    seqs = []
    for body in messages:
        client.seq += 1
        seqs.append(client.seq)
        frames += rt.encode_frame(pb.ClientMessage(seq=client.seq, **body).SerializeToString())
    client.send_raw(frames)
    return [client.wait_reply(s) for s in seqs]


def border_handoff(spread):
    ann, _ = login(spread, "ann", 1)
    bo, _ = login(spread, "bo", 2)
    travel(bo, 2)
    bo_id, ann_id = spread.player_id("bo"), spread.player_id("ann")
    acked, answers = 0, {"earn": 0, "ZONE_HANDOFF": 0}
    pb = rt.client_pb2
    for trip in range(3):
        for zone in (2, 1):
            x, y = ZONE_CENTRE[zone]
            replies = pipelined(ann, [{"earn": pb.EarnRequest(amount=1)},
                                      {"move": pb.MoveRequest(x=x, y=y, zone=zone)},
                                      {"earn": pb.EarnRequest(amount=10)},
                                      {"earn": pb.EarnRequest(amount=100)}])
            move = expect(replies[1], "move")
            assert move.zone == zone, move
            for r, amount in zip((replies[0], replies[2], replies[3]), (1, 10, 100)):
                if body_of(r) == "earn":
                    acked += amount
                    assert r.earn.gold == acked, (r, acked)
                    answers["earn"] += 1
                else:
                    expect_error(r, "ZONE_HANDOFF")
                    answers["ZONE_HANDOFF"] += 1
            # On the far side: an earn works at once.
            acked += 2
            assert earned(ann.earn(2)) == acked
            if zone == 2 and trip == 0:
                bo.wait_push(is_pushed("joined", lambda m: m.joined.player.player_id == ann_id),
                             what="ann arriving in bo's zone")
    rt.log("answers around the moves: %s" % answers)
    time.sleep(0.3)  # any second answer to a request would be here by now
    extra = [m for m in ann.inbox if m.seq != 0]
    assert not extra, "requests answered twice: %s" % extra
    shard1 = spread.shard(1).text()
    assert "offline epoch" in shard1 and "(handoff to shard 2)" in shard1, \
        "shard 1 never logged a handoff"
    assert leases.holders(spread.lease_runs(), ann_id) == [1]
    assert leases.holders(spread.lease_runs(), bo_id) == [2]
    expect(ann.logout(), "logout")
    settle_gold(spread, {"ann": acked})


def shard_kill9(spread):
    players = {}   # name -> (Load, zone)
    for i, (name, zone) in enumerate((("ann", 1), ("bo", 1), ("cy", 2), ("di", 2),
                                      ("eve", 1), ("fay", 2))):
        c, _ = login(spread, name, 1 + i % 2)
        if zone == 2:
            travel(c, 2)
        players[name] = (Load(c, name, zone, move=True), zone)
    for load, _ in players.values():
        load.start()
    time.sleep(1.0)
    spread.kill_shard(2)
    killed = time.monotonic()
    # Shard 2's players are told, and stay connected.
    for name, (load, zone) in players.items():
        if zone == 2:
            rt.eventually(lambda: load.errors.get("SERVICE_UNAVAILABLE", 0) > 0
                          or load.failure, timeout=10,
                          what="%s told SERVICE_UNAVAILABLE" % name)
            load.relogin = True
    before = {name: load.acked for name, (load, zone) in players.items() if zone == 1}
    time.sleep(1.0)
    spread.start_shard(2)
    restarted = time.monotonic()
    rt.log("shard 2 back %.2f s after the kill" % (restarted - killed))
    # Its players log in again on their connections (once the dead run's
    # leases have run out) and play on.
    for name, (load, zone) in players.items():
        if zone == 2:
            rt.eventually(lambda: load.relogins > 0 or load.failure,
                          timeout=2 * LEASE_MS / 1000.0 + 10,
                          what="%s logged in again after the restart" % name)
            rt.log("%s logged in again %.2f s after the restart"
                   % (name, time.monotonic() - restarted))
            acked = load.acked
            rt.eventually(lambda: load.acked > acked or load.failure, timeout=10,
                          what="%s earning again" % name)
    for load, _ in players.values():
        load.stop()
    for name, (load, zone) in players.items():
        rt.log("%s (zone %d): %d acknowledged, errors %s, %d logins again"
               % (name, zone, load.acked, load.errors, load.relogins))
        if zone == 1:
            assert not load.errors, "%s (shard 1) saw errors: %s" % (name, load.errors)
            assert load.acked > before[name], "%s (shard 1) stopped playing" % name
        expect(load.client.ping(), "pong")
    for load, _ in players.values():
        expect(load.client.logout(), "logout")
    settle_gold(spread, {name: load.acked for name, (load, _) in players.items()},
                {name: load.unknown for name, (load, _) in players.items()})


def partition_shard(spread):
    """See the module's text. The late write: an earn of cy's that shard 2
    sent to dbproxy just before the cut (its database link blocked a
    moment earlier, so it is surely in flight). Shard 2 holds it across
    the cut and sends it again once its new database link is up, with the
    lease epoch it had; meanwhile cy's lease moved on, so it is refused."""
    ann, _ = login(spread, "ann", 1)
    bo, _ = login(spread, "bo", 2)
    cy, _ = login(spread, "cy", 1)
    travel(bo, 2)
    travel(cy, 2)
    acked = {n: earned(c.earn(k)) for n, c, k in (("ann", ann, 1), ("bo", bo, 2), ("cy", cy, 3))}
    fenced_before = fenced_total(spread)
    spread.hosts.block("s2", db_host(spread, 2))
    cy.seq += 1
    cy.send(rt.client_pb2.ClientMessage(seq=cy.seq, earn=rt.client_pb2.EarnRequest(amount=5)))
    late_seq = cy.seq
    rt.eventually(lambda: "seq %d: earning 5, asking dbproxy" % late_seq in spread.shard(2).text(),
                  timeout=10, what="cy's earn of 5 on its way to dbproxy")
    spread.hosts.cut("s2")
    spread.hosts.unblock("s2", db_host(spread, 2))
    cut = time.monotonic()
    # Shard 1 plays on; shard 2's players are told, and stay connected.
    acked["ann"] = earned(ann.earn(10))
    assert acked["ann"] == 11, acked
    expect_error(bo.ping(), "SERVICE_UNAVAILABLE")
    # The held earn is answered when the gateway drops shard 2: it may or
    # may not have been applied, as far as cy can tell.
    code = expect(cy.wait_reply(late_seq), "error").code
    assert rt.client_pb2.ErrorCode.Name(code) in UNKNOWN, code
    # Past shard 2's lease on cy (its last renewal came before the cut),
    # cy logs in elsewhere: shard 1 takes the lease (the next epoch) but
    # cannot hand cy to the cut-off shard 2.
    time.sleep(max(0.0, cut + 1.3 * LEASE_MS / 1000.0 - time.monotonic()))
    cy2 = spread.client("cy", 2)
    expect_error(cy2.login("cy", "cy-pw"), "SERVICE_UNAVAILABLE")
    time.sleep(max(0.0, cut + 2 * LEASE_MS / 1000.0 - time.monotonic()))
    spread.hosts.heal("s2")
    healed = time.monotonic()
    # Shard 2 let bo and cy go before their leases ran out (self-fence).
    self_fenced = spread.metrics("gamesrv", 2)["ringgate_gamesrv_self_fenced_total"]
    assert self_fenced == 2, "shard 2 self-fenced %s players, not bo and cy" % self_fenced
    # Logins of shard 2's players are served again within two lease lengths.
    bo, _ = wait_login(spread, "bo", 2, healed, client=bo)
    cy2, reply = wait_login(spread, "cy", 2, healed, client=cy2)
    assert reply.self.zone == 2, reply.self
    # Shard 2 sent the held earn again on its new database link: refused.
    rt.eventually(lambda: fenced_total(spread) > fenced_before, timeout=15,
                  what="shard 2's late earn refused (%s grows)" % FENCED)
    rt.log("late writes refused: %d (shard 2 was told of %d)" % (
        fenced_total(spread) - fenced_before,
        spread.metrics("gamesrv", 2)["ringgate_gamesrv_fenced_writes_total"]))
    acked["bo"] = earned(bo.earn(20))
    acked["cy"] = earned(cy2.earn(30))
    assert (acked["bo"], acked["cy"]) == (22, 33), acked
    for c in (ann, bo, cy2):
        expect(c.logout(), "logout")
    settle_gold(spread, acked)


def db_host(spread, shard):
    """The host of the dbproxy shard uses first."""
    return spread.host_of("dbproxy", (shard - 1) % spread.n_dbproxies + 1)


# Shard 2 keeps cy's held earn past the cut (the default deadline, 5 s,
# could end it first).
PARTITION_SHARD_ARGS = {"gamesrv-2": ["--call-deadline-ms", "15000"]}


def first_shard(name, shards=2):
    """The shard a gateway tries first for a login of name: FNV-1a (32
    bits) of the name, modulo the shard count, from 1 (docs/protocol.md
    section 11)."""
    h = 2166136261
    for b in name.encode():
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h % shards + 1


def login_handoff_refused(spread):
    """A login that reaches shard 1 for a player of shard 2's zone, while
    shard 2 cannot reach the database: shard 2 refuses the adopt, shard 1
    answers SERVICE_UNAVAILABLE. The connection is not logged in anywhere
    then: once shard 2 is back, a login on it works (not ALREADY_LOGGED_IN
    from a gateway that put the client back on shard 1)."""
    name = next(n for n in ("cy", "di", "eve", "fay", "gus", "hal") if first_shard(n) == 1)
    c, _ = login(spread, name, 1)
    travel(c, 2)
    expect(c.logout(), "logout")
    db = db_host(spread, 2)
    spread.hosts.block("s2", db)
    rt.eventually(lambda: spread.metrics("gamesrv", 2)["ringgate_gamesrv_dbproxy_link_up"] == 0,
                  timeout=10, what="shard 2's database link down")
    expect_error(c.login(name, name + "-pw"), "SERVICE_UNAVAILABLE")
    assert "shard 2 did not adopt it from shard 1" in spread.gateway(1).text()
    spread.hosts.unblock("s2", db)
    rt.eventually(lambda: spread.metrics("gamesrv", 2)["ringgate_gamesrv_dbproxy_link_up"] == 1,
                  timeout=10, what="shard 2's database link up again")
    reply = rt.eventually(lambda: c.login(name, name + "-pw"), timeout=10, what="a login")
    assert expect(reply, "login").self.zone == 2, reply
    expect(c.logout(), "logout")


def partition_gateway(spread):
    ann, _ = login(spread, "ann", 1)
    bo, _ = login(spread, "bo", 1)
    cy, _ = login(spread, "cy", 2)
    travel(bo, 2)
    acked = {n: earned(c.earn(k)) for n, c, k in (("ann", ann, 1), ("bo", bo, 2), ("cy", cy, 3))}
    spread.hosts.cut("g1")
    cut = time.monotonic()
    # Gateway 2 plays on; gateway 1's players log in again through it.
    acked["cy"] = earned(cy.earn(10))
    ann2, _ = wait_login(spread, "ann", 2, cut, bound_s=2 * LEASE_MS / 1000.0)
    bo2, reply = wait_login(spread, "bo", 2, cut, bound_s=2 * LEASE_MS / 1000.0)
    assert reply.self.zone == 2, reply.self
    acked["ann"] = earned(ann2.earn(20))
    acked["bo"] = earned(bo2.earn(30))
    time.sleep(max(0.0, cut + 2 * LEASE_MS / 1000.0 - time.monotonic()))
    spread.hosts.heal("g1")
    healed = time.monotonic()
    # Gateway 1 serves logins again within two lease lengths.
    dee, _ = wait_login(spread, "dee", 1, healed)
    acked["dee"] = earned(dee.earn(4))
    # The old sessions no longer play (the new logins hold ann and bo).
    for old in (ann, bo):
        try:
            expect(old.earn(1000), "error")
        except rt.Closed:
            pass
    rt.log("fenced writes: %d" % fenced_total(spread))
    for c in (ann2, bo2, cy, dee):
        expect(c.logout(), "logout")
    settle_gold(spread, acked)


def pg_partition_shard(build_dir):
    rt.cluster.require_postgres()
    from ringgate_test import postgres
    pg = postgres.start()
    with Hosts(Spread.host_names(2, 2, dbproxies=2)) as hosts:
        spread = two_by_two_on(build_dir, hosts, PARTITION_SHARD_ARGS, dbproxies=2,
                               postgres_dsn=pg.dsn)
        try:
            partition_shard(spread)
            check_leases(spread)
        finally:
            spread.close_clients()


# ---- deploy ----------------------------------------------------------------------

def deploy_2x2(build_dir):
    if not shutil.which("ss"):
        rt.skip("deploy/ringgate needs ss (iproute2)")
    with rt.Cluster(build_dir, gateways=2, shards=2,
                    args={"gamesrv": ZONE_FLAGS + ["--lease-ms", str(LEASE_MS)]}) as cluster:
        assert cluster.instances == ["dbproxy", "gamesrv", "gamesrv-2", "gateway", "gateway-2"]
        status = cluster.deploy("status").stdout
        rows = [line.split() for line in status.splitlines()]
        procs_up = [r[0] for r in rows if len(r) > 3 and r[3] == "yes"]
        assert procs_up == cluster.instances, status
        # Each gateway's row and the one below it: a link to each shard;
        # each shard's row: its link to dbproxy.
        for peer in ("gamesrv", "gamesrv-2", "dbproxy"):
            link = "%s:%d up" % (peer, cluster.port(peer))
            assert sum(1 for line in status.splitlines() if link in line) == 2, (link, status)
        assert cluster.port("gateway") != cluster.port("gateway-2")
        ann = cluster.client("ann", gateway="gateway")
        bo = cluster.client("bo", gateway="gateway-2")
        expect(ann.login("ann", "ann-pw"), "login")
        expect(bo.login("bo", "bo-pw"), "login")
        x, y = ZONE_CENTRE[2]
        assert expect(bo.request(move=rt.client_pb2.MoveRequest(x=x, y=y, zone=2)),
                      "move").zone == 2
        assert earned(ann.earn(3)) == 3 and earned(bo.earn(4)) == 4
        rt.eventually(lambda: [cluster.metrics(s)["ringgate_gamesrv_players_online"]
                               for s in cluster.shards] == [1, 1],
                      what="one player on each shard")
        assert leases.assert_online_once(cluster.lease_runs()) == 3  # bo twice (a handoff)
        # Shard 2 killed: status says so (exit status 1, its link down at
        # both gateways); `up` starts it again on its port and leaves the
        # rest running; bo logs in again on his connection, in zone 2.
        port2 = cluster.port("gamesrv-2")
        others = {p: cluster.pid(p) for p in cluster.instances if p != "gamesrv-2"}
        cluster.kill("gamesrv-2")
        rt.eventually(lambda: [cluster.links_up(g) for g in cluster.gateways] == [1, 1],
                      what="both gateways see shard 2 down")
        proc = cluster.deploy("status", check=False)
        assert proc.returncode != 0, proc.stdout
        assert proc.stdout.count("gamesrv-2:%d down" % port2) == 2, proc.stdout
        cluster.deploy("up")
        assert cluster.port("gamesrv-2") == port2
        assert {p: cluster.pid(p) for p in others} == others, "up restarted running processes"
        rt.eventually(lambda: cluster.deploy("status", check=False).returncode == 0,
                      what="status: every process and link up again")
        relogin = rt.eventually(lambda: body_of(bo.login("bo", "bo-pw")) == "login" or None,
                                timeout=2 * LEASE_MS / 1000.0 + 10, interval=0.2,
                                what="bo logged in again")
        assert relogin
        assert leases.assert_online_once(cluster.lease_runs()) == 4  # and bo on shard 2 again
        pids = [cluster.pid(p) for p in cluster.instances]
        cluster.down()
        for pid in pids:
            rt.eventually(lambda: not rt.procs.alive(pid), timeout=15,
                          what="pid %d stopped by down" % pid)
        for p in cluster.instances:
            assert not os.path.exists(os.path.join(cluster.run_dir, p + ".pid")), p


def lease_check(build_dir):
    def line(t, player, online, epoch, reason=None):
        return "2026-12-01T17:00:%06.3fZ gamesrv[1] INFO  lease: player %d %s epoch %d%s\n" % (
            t, player, "online" if online else "offline", epoch,
            " (%s)" % reason if reason else "")
    clean = [leases.Run(1, line(1, 7, True, 3) + line(2, 7, False, 3, "handoff to shard 2")),
             leases.Run(2, line(2, 7, True, 4) + line(5, 7, False, 4, "logout"))]
    assert leases.check(clean) == [], leases.check(clean)
    # A killed run holds its players until it ends, not after.
    killed_at = leases.events(line(4, 0, True, 0))[0].t
    killed = [leases.Run(2, line(1, 8, True, 1), end=killed_at),
              leases.Run(2, line(4.5, 8, True, 2))]
    assert leases.check(killed) == [], leases.check(killed)
    twice = [leases.Run(1, line(1, 7, True, 3)), leases.Run(2, line(2, 7, True, 4))]
    assert any("online twice" in p for p in leases.check(twice)), leases.check(twice)
    late = [leases.Run(1, line(1, 8, True, 1), end=killed_at + 1),
            leases.Run(2, line(4.5, 8, True, 2))]
    assert any("online twice" in p for p in leases.check(late)), leases.check(late)
    back = [leases.Run(1, line(1, 7, True, 5) + line(2, 7, False, 5, "logout")),
            leases.Run(2, line(3, 7, True, 4))]
    assert any("epoch went back" in p for p in leases.check(back)), leases.check(back)
    bad = [leases.Run(1, line(1, 7, True, 1) + line(2, 7, True, 1) + line(3, 9, False, 1))]
    problems = leases.check(bad)
    assert len(problems) == 2 and "online again" in problems[0] and "while not online" in \
        problems[1], problems
    try:
        leases.assert_online_once(twice)
    except AssertionError as err:
        assert "player 7 online twice" in str(err), err
    else:
        raise AssertionError("assert_online_once passed an overlap")


rt.main(cases={
    "two_by_two": on_spread(two_by_two),
    "login_elsewhere": on_spread(login_elsewhere),
    "border_handoff": on_spread(border_handoff),
    "shard_kill9": on_spread(shard_kill9),
    "partition_shard": on_spread(partition_shard, PARTITION_SHARD_ARGS),
    "partition_gateway": on_spread(partition_gateway),
    "login_handoff_refused": on_spread(login_handoff_refused),
    "pg_partition_shard": pg_partition_shard,
    "deploy_2x2": deploy_2x2,
    "lease_check": lease_check,
})
