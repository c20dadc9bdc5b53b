"""An acknowledged move survives a gamesrv stall (issue 11, item 5).

gamesrv is stopped past the dead time of both its links: the gateway and
dbproxy drop it. When it resumes it learns that its gateway link is gone,
so every player leaves (once its resume grace is over) and is saved, while
its dbproxy link may still be down.
The save must be held and sent once gamesrv has redialed dbproxy, so the
database ends up with the last acknowledged position (it stayed at the
spawn point before the fix).
"""
import os
import signal

import ringgate_test as rt
from ringgate_test import expect

# Both peers give up on a silent gamesrv after 1 s. gamesrv keeps a player
# whose connection went for a resume first (1 s here; 20 s by default,
# which left this test's 20 s wait no margin under load).
STALL_ENV = {"RINGGATE_DBPROXY_ARGS": "--pwhash min --log-level debug "
                                      "--heartbeat-ms 200 --dead-ms 1000",
             "RINGGATE_GAMESRV_ARGS": "--log-level debug --resume-grace-ms 1000"}


def test(build_dir):
    with rt.Cluster(build_dir, STALL_ENV) as cluster:
        lou = cluster.client("lou")
        zone = expect(lou.login("lou", "lou-pw"), "login").zone
        x, y = zone.min_x + 3.0, zone.min_y + 4.0
        expect(lou.move(x, y), "move")
        before = cluster.db_player("lou")
        assert (before["x"], before["y"]) != (x, y), before  # not saved yet

        pid = cluster.pid("gamesrv")
        rt.log("SIGSTOP gamesrv until both peers drop it")
        os.kill(pid, signal.SIGSTOP)
        try:
            rt.eventually(lambda: "gamesrv link down" in cluster.log_text("gateway"),
                          what="the gateway drops the stalled gamesrv")
            rt.eventually(lambda: "silent for more than" in cluster.log_text("dbproxy"),
                          what="dbproxy drops the stalled gamesrv")
        finally:
            os.kill(pid, signal.SIGCONT)

        def saved():
            row = cluster.db_player("lou")
            assert (row["x"], row["y"]) == (x, y), row
            return True
        rt.eventually(saved, timeout=20, what="the position saved after the stall")


rt.main(test)
