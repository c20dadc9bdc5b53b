#!/usr/bin/env python3
"""Leases over the wire (issue 14; proto/internal.proto "leases";
docs/storage.md "Leases"): a real dbproxy spoken to like gamesrv
(test_process.py's Link).

Cases:
  sqlite      the rules on the SQLite backend: a login with an owner takes
              the lease (a new account at epoch 1); another owner's login
              gets DB_LEASE_HELD with the holder's shard and the player;
              saves and add_golds of another epoch are DB_FENCED (the fence
              before the op_id duplicate rule); a renewal answers the lost
              players, also for 65,536 players in one request; an adopt
              moves the lease on (then the old epoch is fenced), fenced /
              not found otherwise; a release frees it; bad fields get
              DB_BAD_REQUEST with a clear message; the counters in /metrics
              match; owner 0 (tools) works as before.
  postgres    the same on PostgreSQL (a private server).
  pg_race     two dbproxies on one PostgreSQL, each asked at once to log the
              same players in for a different owner: for every player
              exactly one login gets the lease, the other DB_LEASE_HELD
              naming the winner's shard.
usage: test_leases.py BUILD_DIR CASE
"""
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402
from ringgate_test import postgres  # noqa: E402
from ringgate_test.cluster import scrape  # noqa: E402
from test_process import PASSWORD, Link, expect  # noqa: E402

OWNER_A, OWNER_B = 7, 9
LEASE_MS = 60000  # long: nothing expires within a case


def login(link, name, owner, shard, password=PASSWORD):
    def fill(m):
        m.login.name = name
        m.login.password = password.encode()
        m.login.owner = owner
        m.login.shard = shard
        m.login.lease_ms = LEASE_MS
    return link.call(fill)


def save(player_id, epoch, release=False, zone=1):
    def fill(m):
        m.save.player_id = player_id
        m.save.zone = zone
        m.save.lease_epoch = epoch
        m.save.release = release
    return fill


def add_gold(player_id, amount, op_id, epoch):
    def fill(m):
        m.add_gold.player_id = player_id
        m.add_gold.amount = amount
        m.add_gold.op_id = op_id
        m.add_gold.lease_epoch = epoch
    return fill


def renew(owner, ids, epochs, lease_ms=LEASE_MS):
    def fill(m):
        m.renew.owner = owner
        m.renew.lease_ms = lease_ms
        m.renew.player_ids.extend(ids)
        m.renew.epochs.extend(epochs)
    return fill


def adopt(player_id, from_epoch, owner, shard, zone, x=1.5, y=-2.5, lease_ms=LEASE_MS):
    def fill(m):
        m.adopt.player_id = player_id
        m.adopt.from_epoch = from_epoch
        m.adopt.owner = owner
        m.adopt.shard = shard
        m.adopt.lease_ms = lease_ms
        m.adopt.zone = zone
        m.adopt.x = x
        m.adopt.y = y
    return fill


def status_is(reply, status, what):
    expect(reply.status == status, "%s: %r" % (what, reply))
    return reply


def rules(server, admin_port):
    """The whole lease life over one link; checks the counters at the end."""
    pb = rt.internal_pb2
    link = Link(server.port)
    link.hello()

    # A new account is created holding the lease, at epoch 1.
    reply = status_is(login(link, "lena", OWNER_A, 1), pb.DB_OK, "first login")
    expect(reply.login.created and reply.login.lease_epoch == 1, "created leased: %r" % reply)
    pid = reply.login.player.player_id
    # Its own owner again: the same epoch (renewed).
    reply = status_is(login(link, "lena", OWNER_A, 1), pb.DB_OK, "own login")
    expect(reply.login.lease_epoch == 1 and not reply.login.created, "same epoch: %r" % reply)
    # Another owner: held, with the holder's shard and the player.
    reply = status_is(login(link, "lena", OWNER_B, 2), pb.DB_LEASE_HELD, "held")
    expect(reply.login.holder_shard == 1 and reply.login.player.player_id == pid,
           "holder named: %r" % reply)
    status_is(login(link, "lena", OWNER_B, 2, password="wrong"), pb.DB_WRONG_PASSWORD,
              "a wrong password is checked first")
    # Owner 0 (tools): no lease asked, none taken.
    reply = status_is(link.login("lena", PASSWORD), pb.DB_OK, "tool login")
    expect(reply.login.lease_epoch == 0, "no lease for owner 0: %r" % reply)

    # Writes under the lease; another epoch is fenced, before "duplicate".
    op = 5 << 32
    status_is(link.call(save(pid, 1, zone=2)), pb.DB_OK, "save at epoch 1")
    reply = status_is(link.call(add_gold(pid, 10, op | 1, 1)), pb.DB_OK, "earn at epoch 1")
    expect(reply.add_gold.gold == 10, "gold: %r" % reply)
    status_is(link.call(save(pid, 2, zone=3)), pb.DB_FENCED, "save at epoch 2")
    reply = status_is(link.call(add_gold(pid, 10, op | 1, 2)), pb.DB_FENCED,
                      "a resend at another epoch")
    expect("fenced" in reply.message, "says fenced: %r" % reply)
    status_is(link.call(add_gold(pid, 10, op | 2, 1)), pb.DB_OK, "the holder earns")
    status_is(link.call(add_gold(pid, 1, 0, 0)), pb.DB_OK, "epoch 0: no fence (tools)")

    # A renewal: the holder's player renewed, the rest lost.
    reply = status_is(link.call(renew(OWNER_A, [pid, pid + 1000], [1, 1])), pb.DB_OK, "renew")
    expect(list(reply.renew.lost) == [pid + 1000], "lost: %r" % reply)
    reply = status_is(link.call(renew(OWNER_B, [pid], [1])), pb.DB_OK, "renew not held")
    expect(list(reply.renew.lost) == [pid], "another owner's: %r" % reply)
    reply = status_is(link.call(renew(OWNER_A, [], [])), pb.DB_OK, "empty renewal")
    expect(len(reply.renew.lost) == 0, "nothing lost: %r" % reply)
    # The most one request may carry: 65,536 players (one frame of ~400 KB).
    many = [pid] + [10 ** 6 + i for i in range(65535)]
    reply = status_is(link.call(renew(OWNER_A, many, [1] * len(many))), pb.DB_OK, "big renew")
    expect(len(reply.renew.lost) == 65535 and pid not in reply.renew.lost,
           "big renewal: %d lost" % len(reply.renew.lost))

    # An adopt moves the lease on with the position; the old epoch is fenced.
    reply = status_is(link.call(adopt(pid, 1, OWNER_B, 2, 7)), pb.DB_OK, "adopt")
    p = reply.adopt.player
    expect(reply.adopt.lease_epoch == 2 and p.player_id == pid and p.zone == 7
           and p.x == 1.5 and p.y == -2.5 and p.gold == 21 and p.name == "lena",
           "adopted: %r" % reply)
    status_is(link.call(adopt(pid, 1, OWNER_A, 1, 1)), pb.DB_FENCED, "adopt twice")
    status_is(link.call(adopt(pid + 1000, 1, OWNER_A, 1, 1)), pb.DB_NOT_FOUND, "adopt nobody")
    status_is(link.call(save(pid, 1, release=True)), pb.DB_FENCED, "the old holder's release")
    reply = status_is(login(link, "lena", OWNER_A, 1), pb.DB_LEASE_HELD, "held by B now")
    expect(reply.login.holder_shard == 2, "shard 2 holds it: %r" % reply)
    # B releases: free, epoch kept; A's next login takes epoch 3.
    status_is(link.call(save(pid, 2, release=True, zone=7)), pb.DB_OK, "release")
    reply = status_is(login(link, "lena", OWNER_A, 1), pb.DB_OK, "taken after release")
    expect(reply.login.lease_epoch == 3 and reply.login.player.zone == 7,
           "epoch 3: %r" % reply)

    # Untrusted fields: DB_BAD_REQUEST, each with its reason; the link stays.
    bad = [
        (renew(OWNER_A, [pid], []), "as many epochs"),
        (renew(OWNER_A, list(range(1, 65538)), [1] * 65537), "at most 65536"),
        (renew(0, [pid], [1]), "owner"),
        (renew(OWNER_A, [pid], [1], lease_ms=0), "lease_ms"),
        (renew(OWNER_A, [pid], [1], lease_ms=3600001), "lease_ms"),
        (adopt(pid, 3, 0, 1, 1), "owner"),
        (adopt(pid, 3, OWNER_A, 0, 1), "shard"),
        (adopt(pid, 3, OWNER_A, 65536, 1), "shard"),
        (adopt(pid, 3, OWNER_A, 1, 1, lease_ms=0), "lease_ms"),
        (adopt(0, 3, OWNER_A, 1, 1), "player_id"),
        (adopt(pid, 3, OWNER_A, 1, 1, x=float("nan")), "finite"),
        (adopt(pid, 3, 1 << 63, 1, 1), "owner"),
    ]
    for fill, words in bad:
        reply = status_is(link.call(fill), pb.DB_BAD_REQUEST, "bad request (%s)" % words)
        expect(words in reply.message, "%r names %r" % (reply.message, words))

    def bad_login(m):
        m.login.name = "lena"
        m.login.password = PASSWORD.encode()
        m.login.owner = OWNER_A
        m.login.shard = 0
        m.login.lease_ms = LEASE_MS
    reply = status_is(link.call(bad_login), pb.DB_BAD_REQUEST, "login without a shard")
    expect("shard" in reply.message, reply.message)
    link.close()

    m = scrape(admin_port, "dbproxy")
    want = {
        "ringgate_dbproxy_fenced_writes_total": 4,
        "ringgate_dbproxy_leases_taken_total": 3,
        "ringgate_dbproxy_lease_held_total": 2,
        "ringgate_dbproxy_adopts_total": 1,
        "ringgate_dbproxy_leases_renewed_total": 2,
        "ringgate_dbproxy_leases_lost_total": 2 + 65535,
    }
    for name, value in want.items():
        expect(m.get(name) == value, "%s = %r, want %r" % (name, m.get(name), value))


def start(build_dir, pg=None, tag=""):
    work = rt.temp_dir("dbproxy_leases%s." % tag)
    admin_file = os.path.join(work, "admin.port")
    # No creation bound: pg_race makes its accounts in a burst.
    extra = ("--creates-per-sec", "0")
    if pg:
        extra += ("--backend", "postgres", "--postgres-dsn", pg.dsn)
    server = rt.start("dbproxy", build_dir, work, *extra, insecure=True,
                      admin_port_file=admin_file)
    with open(admin_file) as f:
        return server, int(f.read())


def case_sqlite(build_dir):
    server, admin = start(build_dir)
    rules(server, admin)
    expect(server.stop() == 0, "SIGTERM exits 0")


def case_postgres(build_dir):
    pg = postgres.start()
    server, admin = start(build_dir, pg)
    rules(server, admin)
    expect(server.stop() == 0, "SIGTERM exits 0")


def case_pg_race(build_dir):
    pb = rt.internal_pb2
    pg = postgres.start()
    servers = [start(build_dir, pg, tag=str(i))[0] for i in range(2)]
    links = [Link(s.port) for s in servers]
    for link in links:
        link.hello()
    names = ["race%d" % i for i in range(40)]
    # The accounts exist first (a create is its own race, create_race's).
    for name in names:
        status_is(links[0].login(name, PASSWORD), pb.DB_OK, "create " + name)
    replies = [[], []]

    def run(i):
        for name in names:
            replies[i].append(login(links[i], name, (OWNER_A, OWNER_B)[i], i + 1))
    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    expect(all(len(r) == len(names) for r in replies), "every login answered")
    wins = [0, 0]
    for n, name in enumerate(names):
        a, b = replies[0][n], replies[1][n]
        got = [r.status for r in (a, b)]
        expect(sorted(got) == [pb.DB_OK, pb.DB_LEASE_HELD], "%s: one winner, %r" % (name, got))
        winner = 0 if a.status == pb.DB_OK else 1
        loser = (a, b)[1 - winner]
        expect(loser.login.holder_shard == winner + 1, "%s: holder named: %r" % (name, loser))
        expect((a, b)[winner].login.lease_epoch == 1, "%s: epoch 1" % name)
        wins[winner] += 1
    rt.log("wins per dbproxy: %r" % wins)
    for link in links:
        link.close()
    for s in servers:
        expect(s.stop() == 0, "SIGTERM exits 0")


if __name__ == "__main__":
    rt.main(cases={"sqlite": case_sqlite, "postgres": case_postgres, "pg_race": case_pg_race})
