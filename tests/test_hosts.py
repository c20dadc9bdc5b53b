"""The cluster with each process on a host of its own (network namespaces
joined by a bridge: tests/ringgate_test/netns.py), so that every link
crosses real interfaces, and partitions of one host.

  three_hosts        dbproxy, gamesrv and gateway on three hosts, clients on a
                     fourth: two players see each other's chat, an earn is
                     acknowledged and in the database
  partition_gamesrv  gamesrv's host cut off for longer than the dead time:
                     its players get SERVICE_UNAVAILABLE and stay connected
                     to the gateway; healed, the cluster serves logins again
                     within two dead times, and every acknowledged earn is in
                     the database exactly once
  partition_gateway  the gateway's host cut off: gamesrv drops its link and
                     saves its players; healed, a new login works within two
                     dead times, and nobody was online twice: gamesrv never
                     counted more players than logged in
"""
import time

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error
from ringgate_test.netns import Hosts
from ringgate_test.spread import Spread

HEARTBEAT_MS, DEAD_MS = 200, 1000
# dbproxy on host "db", gamesrv on "s1", the gateway on "g1", clients on "client".
HOSTS = Spread.host_names(1, 1)


def spread_on(build_dir, hosts):
    return Spread(build_dir, hosts, heartbeat_ms=HEARTBEAT_MS, dead_ms=DEAD_MS,
                  args={"gamesrv": ["--interest", "broadcast"]})


def is_chat(name, text):
    return lambda m: (body_of(m) == "chat_line" and m.chat_line.name == name
                      and m.chat_line.text == text)


def earn_all(client, amounts):
    """Earn each amount; the sum acknowledged (an earn refused or
    unanswered is not)."""
    acked = 0
    for amount in amounts:
        try:
            reply = client.earn(amount)
        except AssertionError:
            break
        if body_of(reply) == "earn":
            acked += amount
    return acked


def three_hosts(build_dir):
    with Hosts(HOSTS) as hosts:
        spread = spread_on(build_dir, hosts)
        ann, bo = spread.client("ann"), spread.client("bo")
        expect(ann.login("ann", "ann-pw"), "login")
        expect(bo.login("bo", "bo-pw"), "login")
        expect(ann.chat("across hosts"), "chat")
        bo.wait_push(is_chat("ann", "across hosts"), what="ann's chat on bo's screen")
        gold = expect(bo.earn(7), "earn").gold
        assert gold == 7 and spread.db_gold("bo") == 7, (gold, spread.db_gold("bo"))


def wait_serving(spread, name, since, dead_times=2):
    """A new login of name succeeds within dead_times dead times of since
    (plus the login's own round trip): the cluster serves again."""
    deadline = since + dead_times * DEAD_MS / 1000.0

    def login():
        client = spread.client(name)
        reply = client.login(name, name + "-pw")
        if body_of(reply) != "login":
            client.close()
            return None
        return client
    client = rt.eventually(login, timeout=10, interval=0.05, what="a login after the healing")
    took = time.monotonic() - since
    rt.log("serving again %.2f s after the healing" % took)
    assert time.monotonic() <= deadline + 1.0, "logins came back %.2f s after the healing" % took
    return client


def partition_gamesrv(build_dir):
    with Hosts(HOSTS) as hosts:
        spread = spread_on(build_dir, hosts)
        cy = spread.client("cy")
        expect(cy.login("cy", "cy-pw"), "login")
        acked = earn_all(cy, [1, 2, 3])
        assert acked == 6, acked

        hosts.cut("s1")
        rt.eventually(lambda: "gamesrv link down" in spread.gateway(1).text(), timeout=10,
                      what="the gateway drops the cut-off gamesrv")
        # The player stays connected to the gateway and is told why.
        expect_error(cy.ping(), "SERVICE_UNAVAILABLE")
        expect_error(cy.earn(100), "SERVICE_UNAVAILABLE")
        time.sleep(DEAD_MS / 1000.0)  # well past the dead time on both sides
        hosts.heal("s1")
        healed = time.monotonic()

        cy2 = wait_serving(spread, "cy", healed)
        acked += earn_all(cy2, [4])
        rt.eventually(lambda: spread.db_gold("cy") == acked, timeout=10,
                      what="the database holds every acknowledged earn once (%d)" % acked)


def partition_gateway(build_dir):
    with Hosts(HOSTS) as hosts:
        spread = spread_on(build_dir, hosts)
        di = spread.client("di")
        expect(di.login("di", "di-pw"), "login")
        acked = earn_all(di, [5, 6])

        hosts.cut("g1")
        rt.eventually(lambda: "silent for more than" in spread.shard(1).text(), timeout=10,
                      what="gamesrv drops the cut-off gateway")
        rt.eventually(lambda: spread.db_gold("di") == acked, timeout=10,
                      what="di saved when the gateway went")
        hosts.heal("g1")
        healed = time.monotonic()

        di2 = wait_serving(spread, "di", healed)
        # The old connection, if it lives, no longer plays: a game request
        # on it is refused (the new login holds di).
        try:
            expect(di.earn(1000), "error")
        except rt.Closed:
            pass
        acked += earn_all(di2, [7])
        rt.eventually(lambda: spread.db_gold("di") == acked, timeout=10,
                      what="the database holds every acknowledged earn once (%d)" % acked)
        assert "online twice" not in spread.shard(1).text()


rt.main(cases={"three_hosts": three_hosts, "partition_gamesrv": partition_gamesrv,
               "partition_gateway": partition_gateway})
