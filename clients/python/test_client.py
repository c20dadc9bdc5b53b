"""ringgate_client against a real cluster: two players log in, see each
other join, move, chat, earn (durable totals), ping, resume after a dropped
connection, are refused where the protocol says so, and log out; then, on a
gateway with TLS on, a client that trusts the cluster's CA plays, and one
expecting another name or trusting only the system's CAs is refused. The
cluster is started with deploy/ringgate
on free ports (tests/ringgate_test.Cluster); the client itself knows only
proto/ and docs/protocol.md.

usage: test_client.py BUILD_DIR
"""
import os
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))

import ringgate_client as rc  # noqa: E402
import ringgate_test  # noqa: E402 (the cluster harness only)


def expect_error(code_name, fn, *args):
    try:
        fn(*args)
    except rc.ServerError as err:
        assert err.code_name == code_name, "expected %s, got %s" % (code_name, err)
        return err
    raise AssertionError("expected Error %s, got a reply" % code_name)


def check_framing():
    """docs/protocol.md section 1's byte examples."""
    ping = rc.pb.ClientMessage(seq=1, ping=rc.pb.PingRequest(client_time=5))
    assert rc.encode_frame(ping.SerializeToString()).hex() == "06080172020805"
    login = rc.pb.ClientMessage(seq=2, login=rc.pb.LoginRequest(name="ann", password=b"pw"))
    assert rc.encode_frame(login.SerializeToString()).hex() == "0d080252090a03616e6e12027077"
    reader = rc.FrameReader()
    wire = rc.encode_frame(b"x" * 300) + rc.encode_frame(b"")
    assert reader.feed(wire[:1]) == []
    assert reader.feed(wire[1:]) == [b"x" * 300, b""]
    try:
        rc.FrameReader().feed(b"\x80\x80\x80\x80\x80\x01")
        raise AssertionError("a 6-byte prefix was accepted")
    except rc.ProtocolError:
        pass


def test(build_dir):
    rc.load_bindings(os.path.join(SOURCE_DIR, "proto"))
    check_framing()
    # Two zones; views of radius 100 (gamesrv's default).
    env = {"RINGGATE_GAMESRV_ARGS": "--log-level debug --zones 2:0:0:500:500"}
    with ringgate_test.Cluster(build_dir, extra_env=env) as cluster:
        port = cluster.gateway_port
        with rc.Client("127.0.0.1", port) as alice, rc.Client("127.0.0.1", port) as bob:
            a = alice.login("py_alice", "alice-pw")
            assert a.created and a.self.name == "py_alice" and a.self.gold == 0, a
            b = bob.login("py_bob", "bob-pw")
            assert any(o.name == "py_alice" for o in b.others), b
            assert sorted(alice.world.zones) == [1, 2], alice.world.zones
            alice.wait_event(lambda e: e.kind == "entered" and e.name == "py_bob")
            aid, bid = a.self.player_id, b.self.player_id

            zone = a.zone
            x, y = 30.0, -40.0  # both started at (0, 0): still in view
            moved = alice.move(x, y)
            assert abs(moved.x - x) < 1e-3 and abs(moved.y - y) < 1e-3, moved
            ev = bob.wait_event(lambda e: e.kind == "moved")
            assert ev.player_id == aid and abs(ev.x - x) < 1e-3 and abs(ev.y - y) < 1e-3, ev
            expect_error("OUT_OF_BOUNDS", alice.move, zone.max_x + 1, 0)

            bob.chat("hi from python, ünïcode")
            ev = alice.wait_event(lambda e: e.kind == "chat")
            assert (ev.name, ev.text) == ("py_bob", "hi from python, ünïcode"), ev
            expect_error("INVALID_CHAT", bob.chat, "")

            # Out of view across cells, back in, then away to zone 2.
            alice.move(x + 300, y)
            bob.wait_event(lambda e: e.kind == "left" and e.player_id == aid)
            assert aid not in bob.world.players
            alice.move(x, y)
            bob.wait_event(lambda e: e.kind == "entered" and e.player_id == aid)
            assert bob.world.players[aid][2:] == (x, y), bob.world.players
            assert alice.move(10, 10, zone=2).zone == 2 and alice.world.zone.id == 2
            bob.wait_event(lambda e: e.kind == "left" and e.player_id == aid)
            alice.wait_event(lambda e: e.kind == "left" and e.player_id == bid)
            bob.move(12, 12, zone=2)
            alice.wait_event(lambda e: e.kind == "entered" and e.player_id == bid)
            x, y = 10.0, 10.0

            assert alice.earn(10).gold == 10
            assert alice.earn(15).gold == 25
            expect_error("BAD_REQUEST", alice.earn, 0)

            pong = bob.ping(client_time=12345)
            assert pong.client_time == 12345 and pong.server_time_ms > 0, pong

            # Pipelined requests: each answer finds its own seq.
            seqs = [alice.send(ping=rc.pb.PingRequest(client_time=i)) for i in range(1, 6)]
            for i, seq in enumerate(seqs, 1):
                assert alice.wait_reply(seq).pong.client_time == i

            # Session resume: bob's connection drops; what alice says
            # meanwhile reaches him, once, when he takes the session back.
            # (He hears those in his view: alice, once his view has her.)
            if aid not in bob.world.players:
                bob.wait_event(lambda e: e.kind == "entered" and e.player_id == aid)
            bob.sock.close()
            alice.chat("while you were away")
            time.sleep(0.2)  # a tick or more: the update is made and kept
            r = bob.resume()
            assert r.replayed >= 1 and r.resume.token == bob.token, r
            ev = bob.wait_event(lambda e: e.kind == "chat")
            assert ev.text == "while you were away", ev

            with rc.Client("127.0.0.1", port) as mallory:
                expect_error("NOT_LOGGED_IN", mallory.move, 1, 1)
                expect_error("WRONG_PASSWORD", mallory.login, "py_alice", "not-her-password")
                expect_error("INVALID_NAME", mallory.login, "no spaces", "pw")

            bob.logout()
            alice.wait_event(lambda e: e.kind == "left" and e.player_id == bid)
            assert alice.world.players == {}, alice.world.players
            alice.logout()

        # The gold was committed: a new session sees it.
        with rc.Client("127.0.0.1", port) as again:
            back = again.login("py_alice", "alice-pw")
            assert not back.created and back.self.gold == 25, back
            assert abs(back.self.x - x) < 1e-3, back
            again.logout()
    check_tls(build_dir)


def check_tls(build_dir):
    """Over TLS: the CA deploy/ringgate made is trusted, nothing else."""
    with ringgate_test.Cluster(build_dir, extra_env={"RINGGATE_GATEWAY_TLS": "on"}) as cluster:
        port = cluster.gateway_port
        with rc.Client("127.0.0.1", port, ca_file=cluster.ca_file) as carol:
            assert carol.sock.version() == "TLSv1.3", carol.sock.version()
            assert carol.login("py_carol", "carol-pw").created
            assert carol.earn(4).gold == 4
            carol.logout()
        for kwargs, why in (({"ca_file": cluster.ca_file, "server_name": "game.example"},
                             "Hostname mismatch"),
                            ({"tls": True}, "unable to get local issuer certificate")):
            try:
                rc.Client("127.0.0.1", port, **kwargs).close()
            except ssl.SSLCertVerificationError as err:
                assert why in str(err), err
            else:
                raise AssertionError("a TLS client with %s was let in" % kwargs)


if __name__ == "__main__":
    ringgate_test.main(test)
