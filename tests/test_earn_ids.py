"""Earn idempotency keys come from the database, not from a clock
(issue 11, item 1). Each case is an acknowledged earn that the old
clock-made keys (gamesrv's wall ms << 20) answered as a success while the
database never changed:

  clock_behind    gamesrv restarted with its wall clock 60 s behind the
                  previous run (libfaketime; exits 77 without it):
                  "earn 7" then "earn 9" must both land in the database.
  second_gamesrv  a second gamesrv (and gateway) on the same dbproxy,
                  started later: a player's earns made alternately through
                  both (logging out of one and in through the other: the
                  player's lease allows one at a time) must all land.

Usage: test_earn_ids.py BUILD_DIR CASE
"""
import os
import sys
import time

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def clock_behind(build_dir):
    if not os.path.exists(FAKETIME_LIB):
        print("SKIP: libfaketime not installed (Debian package faketime)")
        sys.exit(77)
    with rt.Cluster(build_dir) as cluster:
        gus = cluster.client("gus")
        expect(gus.login("gus", "gus-pw"), "login")
        assert expect(gus.earn(5), "earn").gold == 5
        gus.close()

        cluster.kill("gamesrv")
        # The wall clock only: monotonic time (deadlines, ticks) is not
        # what the bug was about. ASan must accept a preload before it.
        cluster.env.update({
            "LD_PRELOAD": FAKETIME_LIB,
            "FAKETIME": "-60s",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0",
        })
        cluster.up()
        del cluster.env["LD_PRELOAD"]  # `down` and anything later run normally

        gus = cluster.client("gus-again")
        rt.eventually(lambda: body_of(gus.ping()) == "pong", what="gateway relinked")
        skew = time.time() - expect(gus.ping(), "pong").server_time_ms / 1000.0
        assert 50 < skew < 70, "gamesrv's clock is not 60 s behind: %.1f s" % skew
        # The killed gamesrv's lease on gus must expire first.
        gus.login_when_free("gus", "gus-pw")
        assert expect(gus.earn(7), "earn").gold == 12
        assert expect(gus.earn(9), "earn").gold == 21
        assert cluster.db_player("gus")["gold"] == 21


def second_gamesrv(build_dir):
    with rt.Cluster(build_dir) as cluster:
        secret = os.path.join(cluster.run_dir, "cluster.secret")
        work = rt.temp_dir("ringgate-second-")
        # Started after the cluster's gamesrv: a later clock base. The
        # harness stops both and checks their logs for sanitizer reports.
        time.sleep(0.1)
        gamesrv = rt.start("gamesrv", build_dir, work, peer_port=cluster.dbproxy_port,
                           secret_file=secret)
        gateway = rt.start("gateway", build_dir, work, peer_port=gamesrv.port,
                           secret_file=secret)
        rt.eventually(lambda: "gamesrv link up" in gateway.text(),
                      what="second gateway linked to the second gamesrv")
        first = cluster.client("hal-1")
        second = rt.GameClient(gateway.port, "hal-2")
        rt.eventually(lambda: body_of(second.ping()) == "pong",
                      what="the second gamesrv linked to dbproxy")
        expect(first.login("hal", "hal-pw"), "login")
        assert expect(first.earn(5), "earn").gold == 5
        # Online through the first: the second may not have it too.
        expect_error(second.login("hal", "hal-pw"), "SERVICE_UNAVAILABLE")
        expect(first.logout(), "logout")
        expect(second.login("hal", "hal-pw"), "login")
        assert expect(second.earn(7), "earn").gold == 12
        expect(second.logout(), "logout")
        # The first gamesrv's keys were numerically below the second's.
        first = cluster.client("hal-3")
        expect(first.login("hal", "hal-pw"), "login")
        assert expect(first.earn(9), "earn").gold == 21
        assert cluster.db_player("hal")["gold"] == 21


rt.main(cases={"clock_behind": clock_behind, "second_gamesrv": second_gamesrv})
