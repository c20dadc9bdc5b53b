"""Each process's /metrics (issue 6): scraped before and after some game
traffic, the figures move with it; deploy status reads link state from
them; a gamesrv restart shows as the gateway's link going down and a
reconnect. Only movements are checked, never timings."""
import urllib.error
import urllib.request

import ringgate_test as rt
from ringgate_test import expect, eventually


def scrape(cluster, proc):
    """{'name{labels}': value} from proc's /metrics; checks the headers."""
    return cluster.metrics(proc)


def grew(before, after, key, by=1):
    assert key in after, "no %s in the scrape" % key
    if after[key] - before.get(key, 0) < by:
        raise AssertionError("%s went %s -> %s, expected +%d"
                             % (key, before.get(key), after[key], by))


def link_up(cluster, proc, metric, value):
    return lambda: scrape(cluster, proc).get(metric) == value


def test(build_dir):
    with rt.Cluster(build_dir) as cluster:
        eventually(link_up(cluster, "gateway", "ringgate_gateway_gamesrv_link_up", 1),
                   what="gateway metrics: gamesrv link up")
        eventually(link_up(cluster, "gamesrv", "ringgate_gamesrv_dbproxy_link_up", 1),
                   what="gamesrv metrics: dbproxy link up")
        before = {proc: scrape(cluster, proc) for proc in ("gateway", "gamesrv", "dbproxy")}

        status = cluster.deploy("status")
        assert "gamesrv:%d up (0 reconnects)" % cluster.gamesrv_port in status.stdout, status.stdout
        assert "dbproxy:%d up (0 reconnects)" % cluster.dbproxy_port in status.stdout, status.stdout
        assert status.stdout.count(" ok, ") == 3, status.stdout

        alice, bob = cluster.client("alice"), cluster.client("bob")
        a = expect(alice.login("alice", "alice-pw"), "login")
        expect(bob.login("bob", "bob-pw"), "login")
        expect(alice.move(a.zone.min_x + 1, a.zone.min_y + 1), "move")
        expect(bob.chat("hello"), "chat")
        for _ in range(3):
            expect(alice.earn(5), "earn")
        expect(bob.ping(), "pong")

        gw = scrape(cluster, "gateway")
        grew(before["gateway"], gw, "ringgate_net_frames_in_total", 8)
        grew(before["gateway"], gw, "ringgate_net_frames_out_total", 8)
        grew(before["gateway"], gw, "ringgate_net_bytes_in_total", 8)
        grew(before["gateway"], gw, "ringgate_net_sessions_accepted_total", 2)
        grew(before["gateway"], gw, 'ringgate_gateway_request_seconds_count{request="earn"}', 3)
        grew(before["gateway"], gw, 'ringgate_gateway_request_seconds_count{request="login"}', 2)
        grew(before["gateway"], gw, 'ringgate_gateway_request_seconds_bucket'
                                    '{request="earn",le="+Inf"}', 3)
        assert gw["ringgate_gateway_clients"] == 2, gw["ringgate_gateway_clients"]

        gs = scrape(cluster, "gamesrv")
        grew(before["gamesrv"], gs, "ringgate_net_frames_in_total", 8)
        grew(before["gamesrv"], gs, 'ringgate_gamesrv_db_call_seconds_count{call="add_gold"}', 3)
        grew(before["gamesrv"], gs, 'ringgate_gamesrv_db_call_seconds_count{call="login"}', 2)
        grew(before["gamesrv"], gs, "ringgate_gamesrv_tick_seconds_count", 1)
        eventually(lambda: scrape(cluster, "gamesrv")["ringgate_gamesrv_players_online"] == 2,
                   what="players_online == 2")

        db = scrape(cluster, "dbproxy")
        grew(before["dbproxy"], db, "ringgate_net_frames_in_total", 5)
        grew(before["dbproxy"], db, "ringgate_dbproxy_batch_size_count", 1)
        grew(before["dbproxy"], db, "ringgate_dbproxy_commit_seconds_count", 1)
        # two accounts created, three gold writes
        grew(before["dbproxy"], db, "ringgate_dbproxy_writes_total", 5)
        assert db["ringgate_dbproxy_batch_size_sum"] >= 5, db["ringgate_dbproxy_batch_size_sum"]

        # Anything but GET /metrics is refused.
        try:
            urllib.request.urlopen("http://127.0.0.1:%d/" % cluster.admin_ports["gamesrv"],
                                   timeout=10)
            raise AssertionError("GET / answered 200")
        except urllib.error.HTTPError as err:
            assert err.code == 404, err.code

        # gamesrv goes away: the gateway's link goes down, then comes back
        # as one reconnect once deploy restarts gamesrv.
        alice.close()
        bob.close()
        cluster.kill("gamesrv")
        eventually(link_up(cluster, "gateway", "ringgate_gateway_gamesrv_link_up", 0),
                   what="gateway metrics: gamesrv link down")
        status = cluster.deploy("status", check=False)
        assert status.returncode != 0, status.stdout
        cluster.deploy("up")
        eventually(link_up(cluster, "gateway", "ringgate_gateway_gamesrv_link_up", 1),
                   what="gateway metrics: gamesrv link up again")
        gw = scrape(cluster, "gateway")
        assert gw["ringgate_gateway_gamesrv_reconnects_total"] == 1, gw
        status = cluster.deploy("status")
        assert "gamesrv:%d up (1 reconnects)" % cluster.gamesrv_port in status.stdout, status.stdout


rt.main(test)
