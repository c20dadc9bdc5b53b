"""Two clients log in; each sees the other join, move and chat."""
import ringgate_test as rt
from ringgate_test import body_of, expect


def is_moved(player_id, x, y):
    return lambda m: (body_of(m) == "moved" and m.moved.player_id == player_id
                      and abs(m.moved.x - x) < 1e-3 and abs(m.moved.y - y) < 1e-3)


def is_chat(name, text):
    return lambda m: (body_of(m) == "chat_line" and m.chat_line.name == name
                      and m.chat_line.text == text)


def test(build_dir):
    # Zone-wide pushes (the players stand in opposite corners): gamesrv's
    # broadcast mode; clients/python's test covers the views.
    with rt.Cluster(build_dir, extra_env={
            "RINGGATE_GAMESRV_ARGS": "--log-level debug --interest broadcast"}) as cluster:
        alice, bob = cluster.client("alice"), cluster.client("bob")
        a = expect(alice.login("alice", "alice-pw"), "login")
        assert a.created, a
        b = expect(bob.login("bob", "bob-pw"), "login")
        assert any(o.name == "alice" for o in b.others), "bob's login lists alice: %s" % b
        alice.wait_push(lambda m: body_of(m) == "joined" and m.joined.player.name == "bob",
                        what="bob joined")

        zone = a.zone
        ax, ay = zone.min_x + 1.5, zone.min_y + 2.5
        bx, by = zone.max_x - 3.0, zone.max_y - 4.0
        expect(alice.move(ax, ay), "move")
        bob.wait_push(is_moved(a.self.player_id, ax, ay), what="alice moved")
        expect(bob.move(bx, by), "move")
        alice.wait_push(is_moved(b.self.player_id, bx, by), what="bob moved")

        expect(alice.chat("hello bob"), "chat")
        bob.wait_push(is_chat("alice", "hello bob"), what="alice's chat")
        expect(bob.chat("hi alice, ünïcode ok"), "chat")
        alice.wait_push(is_chat("bob", "hi alice, ünïcode ok"), what="bob's chat")

        expect(bob.logout(), "logout")
        alice.wait_push(lambda m: body_of(m) == "left" and m.left.player_id == b.self.player_id,
                        what="bob left")


rt.main(test)
