"""A client that drops its connection mid-session has its position and
gold saved (once its short resume grace period is over: docs/protocol.md
section 10)."""
import socket
import struct

import ringgate_test as rt
from ringgate_test import body_of, expect


def test(build_dir):
    with rt.Cluster(build_dir, args={"gamesrv": ["--resume-grace-ms", "300"]}) as cluster:
        watcher = cluster.client("watcher")
        expect(watcher.login("watcher", "watcher-pw"), "login")

        grace = cluster.client("grace")
        state = expect(grace.login("grace", "grace-pw"), "login")
        # Near the watcher (both started at the zone's centre), so that
        # grace stays in its view until she drops.
        x, y = state.self.x + 7.0, state.self.y + 9.0
        expect(grace.move(x, y), "move")
        gold = expect(grace.earn(9), "earn").gold
        # The watcher has her in view before she drops: one who entered and
        # left within one tick is never shown at all (docs/protocol.md).
        gid = state.self.player_id
        watcher.wait_push(lambda m: body_of(m) == "update"
                          and any(e.player_id == gid for e in m.update.entered)
                          or body_of(m) == "joined" and m.joined.player.player_id == gid,
                          what="grace in view")

        # Drop the TCP connection with a reset, as a crashed client would.
        grace.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        grace.close()
        # gamesrv has handled the disconnect once the watcher sees grace
        # leave (a WorldUpdate's left; PlayerLeft in broadcast mode).
        watcher.wait_push(lambda m: body_of(m) == "update" and gid in m.update.left
                          or body_of(m) == "left" and m.left.player_id == gid,
                          what="grace left")

        back = expect(cluster.client("grace-again").login("grace", "grace-pw"), "login")
        assert abs(back.self.x - x) < 1e-3 and abs(back.self.y - y) < 1e-3, back.self
        assert back.self.gold == gold, back.self


rt.main(test)
