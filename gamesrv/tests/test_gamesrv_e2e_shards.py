"""Two shards behind two real gateways on one real dbproxy, on loopback,
driven by plain game clients (docs/protocol.md section 11): what a client
sees of the world across shards, end to end.

  shard 1 owns zone 1, shard 2 owns zone 2 (--zone-shards 2:2); both
  gateways link to both shards (--gamesrvs), ids 1 and 2.

Cases:
  border_walk     a player walks back and forth across the border of the two
                  shards' zones, earning on each side: every move is
                  answered (a MoveReply from the zone's shard), every earn
                  once, the database total is the sum; msg_no keeps rising
                  across handoffs; the shards' lease lines never show the
                  player online on both at once; another player in zone 2
                  sees it arrive
  login_anywhere  the second login of an account through the other gateway
                  kicks the first session (LOGGED_IN_ELSEWHERE), whichever
                  shard held it (a redirect when the name hashes elsewhere)
  resume_after    a resume through the other gateway after a handoff goes to
                  the shard in the (version 2) token and works

usage: test_gamesrv_e2e_shards.py BUILD_DIR CASE
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402
from ringgate_test import body_of, eventually, expect  # noqa: E402
from ringgate_test.cluster import db_query  # noqa: E402

ZONES = ["--zone-id", "1", "--zones", "2:1000:-1000:3000:1000", "--zone-shards", "2:2"]
# Zone 1 is -1000..1000 on both axes (the default): the border is x = 1000.
SIDE = {1: (990.0, 0.0), 2: (1010.0, 0.0)}


class World:
    def __init__(self, build_dir):
        work = rt.temp_dir("gamesrv-e2e-")
        self.dbproxy = rt.start("dbproxy", build_dir, work, insecure=True)
        self.shards = []
        for n in (1, 2):
            d = os.path.join(work, "shard%d" % n)
            os.mkdir(d)
            self.shards.append(rt.start("gamesrv", build_dir, d, "--shard", str(n),
                                        "--lease-ms", "3000", *ZONES,
                                        peer_port=self.dbproxy.port, insecure=True))
        gamesrvs = ",".join("127.0.0.1:%d" % s.port for s in self.shards)
        self.gateways = []
        for n in (1, 2):
            d = os.path.join(work, "gateway%d" % n)
            os.mkdir(d)
            gw = rt.start("gateway", build_dir, d, "--gamesrvs", gamesrvs,
                          "--gateway-id", str(n), insecure=True)
            eventually(lambda gw=gw: gw.count("gamesrv link up") >= 2,
                       what="gateway %d linked to both shards" % n)
            self.gateways.append(gw)
        self.db = os.path.join(work, "run", "ringgate.db")

    def client(self, gateway, name):
        c = rt.GameClient(self.gateways[gateway - 1].port, name)
        eventually(lambda: body_of(c.ping()) == "pong", what="%s linked" % name)
        return c

    def column(self, name, column):
        """One column of the account's row, as the database has it now."""
        return db_query("SELECT %s FROM players WHERE name = ?" % column, (name,),
                        sqlite_path=self.db)[0][0]

    def gold(self, name):
        return self.column(name, "gold")

    def player_id(self, name):
        return self.column(name, "id")

    def stop(self):
        for p in self.gateways + self.shards + [self.dbproxy]:
            code = p.stop()
            assert code == 0, "%s exit code %d" % (p.name, code)


def move(c, zone):
    x, y = SIDE[zone]
    return c.request(move=rt.client_pb2.MoveRequest(x=x, y=y, zone=zone))


def retried(fn, what):
    """fn() until its answer is not ZONE_HANDOFF (a request caught in a
    handoff: nothing was done, send it again)."""
    for _ in range(50):
        m = fn()
        if not (body_of(m) == "error" and m.error.code == rt.client_pb2.ZONE_HANDOFF):
            return m
    raise AssertionError("%s: ZONE_HANDOFF 50 times" % what)


def lease_events(proc):
    """(player, online?, epoch) of every lease line of proc, in order."""
    return [(int(m.group(1)), m.group(2) == "online", int(m.group(3)))
            for m in re.finditer(r"lease: player (\d+) (online|offline) epoch (\d+)", proc.text())]


def never_twice(world, player_id):
    """Each epoch of the player's lease was held by one shard only, and
    each shard went offline before its next epoch began elsewhere: epochs
    only grow, and every online line of epoch E is on one shard."""
    holders = {}
    for n, shard in enumerate(world.shards, 1):
        for pid, online, epoch in lease_events(shard):
            if pid == player_id and online:
                assert holders.setdefault(epoch, n) == n, \
                    "epoch %d online on shards %d and %d" % (epoch, holders[epoch], n)
    return holders


def border_walk(w):
    walker = w.client(1, "walker")
    login = expect(walker.login("walker", "pw"), "login")
    pid = login.self.player_id
    assert sorted(z.id for z in login.zones) == [1, 2], login.zones
    watcher = w.client(2, "watcher")
    expect(watcher.login("watcher", "pw"), "login")
    assert expect(retried(lambda: move(watcher, 2), "watcher's move"), "move").zone == 2
    total, zone, last_no = 0, login.self.zone, 0
    for step in range(12):
        zone = 2 if zone == 1 else 1
        full = retried(lambda: move(walker, zone), "move %d" % step)
        m = expect(full, "move")
        assert m.zone == zone and (m.x, m.y) == SIDE[zone], m
        assert full.msg_no > last_no, (full.msg_no, last_no)
        last_no = full.msg_no
        e = expect(retried(lambda: walker.earn(step + 1), "earn %d" % step), "earn")
        total += step + 1
        assert e.gold == total, (e, total)
    assert w.gold("walker") == total, (w.gold("walker"), total)
    # Once more into zone 2, staying until the two see each other (a tick
    # of shard 2's views), then out: the watcher leaves the walker's view
    # before the MoveReply of the handoff.
    wid = w.player_id("watcher")
    expect(retried(lambda: move(walker, 2), "the last move in"), "move")
    watcher.wait_push(lambda m: body_of(m) == "update" and any(
        p.player_id == pid for p in m.update.entered), what="the walker entering zone 2")
    walker.wait_push(lambda m: body_of(m) == "update" and any(
        p.player_id == wid for p in m.update.entered), what="the walker seeing the watcher")
    out = retried(lambda: move(walker, 1), "the last move out")
    expect(out, "move")
    left = walker.wait_push(lambda m: body_of(m) == "update" and wid in m.update.left,
                            what="the watcher leaving the walker's view at the handoff")
    assert left.msg_no < out.msg_no, (left.msg_no, out.msg_no)
    holders = never_twice(w, pid)
    assert len(holders) >= 12, holders  # an epoch per handoff
    expect(walker.logout(), "logout")


def login_anywhere(w):
    c = rt.client_pb2
    for name in ("anna", "bert", "cleo", "dirk"):  # names hash to either shard
        first = w.client(1, name + "-1")
        expect(first.login(name, "pw"), "login")
        if name in ("bert", "dirk"):  # and some play in zone 2 (shard 2)
            expect(retried(lambda: move(first, 2), name), "move")
        second = w.client(2, name + "-2")
        again = expect(second.login(name, "pw"), "login")
        assert not again.created, again
        kicked = first.wait_push(lambda m: body_of(m) == "kicked", what=name + " kicked")
        assert kicked.kicked.code == c.LOGGED_IN_ELSEWHERE, kicked
        assert expect(second.earn(1), "earn").gold == 1
    redirects = sum(s.count("redirected there") for s in w.shards)
    rt.log("logins redirected: %d" % redirects)


def resume_after(w):
    eve = w.client(1, "eve")
    expect(eve.login("eve", "pw"), "login")
    expect(retried(lambda: move(eve, 2), "eve's move"), "move")
    eventually(lambda: eve.token is not None and eve.token[1] == 2,
               what="a token naming shard 2")
    expect(eve.earn(3), "earn")
    r = eve.resume(port=w.gateways[1].port)
    expect(r, "resume")
    assert expect(eve.earn(4), "earn").gold == 7
    assert expect(eve.move(2000, 0), "move").zone == 2


CASES = {"border_walk": border_walk, "login_anywhere": login_anywhere,
         "resume_after": resume_after}


def run(case_fn):
    def test(build_dir):
        w = World(build_dir)
        case_fn(w)
        w.stop()
    return test


if __name__ == "__main__":
    rt.main(cases={name: run(fn) for name, fn in CASES.items()})
