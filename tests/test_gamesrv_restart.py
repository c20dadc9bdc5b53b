"""Killing gamesrv: clients are told the link is down and get
SERVICE_UNAVAILABLE; once gamesrv is back the gateway relinks by itself and
logins work again (an account the killed one held, once its lease has
expired)."""
import signal

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error


def is_unavailable(m):
    return body_of(m) == "error" and m.error.code == rt.client_pb2.SERVICE_UNAVAILABLE


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        erin = cluster.client("erin")
        expect(erin.login("erin", "erin-pw"), "login")

        cluster.kill("gamesrv", signal.SIGKILL)
        erin.wait_push(is_unavailable, what="link-down push")
        expect_error(erin.ping(), "SERVICE_UNAVAILABLE")
        rt.eventually(lambda: "gamesrv link down" in cluster.log_text("gateway"),
                      what="gateway logs the link down")

        cluster.up()  # restarts only what is not running: gamesrv
        rt.eventually(lambda: body_of(erin.ping()) == "pong", what="link back")
        # The old session was dropped with the link: log in again, once
        # the killed gamesrv's lease on erin has expired (until then the
        # new one answers "retry": docs/protocol.md section 11).
        again = erin.login_when_free("erin", "erin-pw")
        assert not again.created, again
        frank = cluster.client("frank")
        expect(frank.login("frank", "frank-pw"), "login")


rt.main(test)
