"""The gateway's own duties, against a scripted stand-in for gamesrv:
link down -> SERVICE_UNAVAILABLE at once; Hello and heartbeats; replies
routed by session and seq; an unanswered request -> TIMEOUT; malformed
input -> BAD_REQUEST (and a disconnect for garbage); ClientGone; Kick;
the link-down push and the redial; SERVER_FULL; IDLE_TIMEOUT; and a
SIGTERM drain that tells clients SHUTTING_DOWN and exits 0.

The stand-in answers ping with a Pong, move with a Kick of the sender,
chat with a flood of pushes (20 MB, far past the gateway's 1 MiB send
queue and the socket buffers), and never answers earn.
"""
import random
import signal
import socket

import ringgate_test as rt
from ringgate_test import body_of, expect, expect_error
from ringgate_test.fake_gamesrv import FakeGamesrv


FLOOD_PUSHES = 20000


class ScriptedGamesrv(FakeGamesrv):
    """The stand-in's script (see the top)."""

    def answer(self, link, msg):
        if msg.WhichOneof("body") == "request":
            self._answer(link, msg.request)

    def _answer(self, link, request):
        pb, cpb = rt.internal_pb2, rt.client_pb2
        what = request.message.WhichOneof("body")
        if what == "ping":
            reply = cpb.ServerMessage(seq=request.message.seq, pong=cpb.Pong(
                client_time=request.message.ping.client_time, server_time_ms=42))
            link.send(pb.GameToGate(to_client=pb.ToClient(
                sessions=[request.session], message=reply,
                request_id=request.request_id)))
        elif what == "move":
            link.send(pb.GameToGate(kick=pb.Kick(session=request.session, kicked=cpb.Kicked(
                code=cpb.LOGGED_IN_ELSEWHERE, message="scripted kick"))))
        elif what == "chat":
            line = cpb.ServerMessage(chat_line=cpb.ChatLine(player_id=1, name="flood",
                                                            text="x" * 1000))
            frame = pb.GameToGate(to_client=pb.ToClient(sessions=[request.session],
                                                        message=line)).SerializeToString()
            link.send_raw(rt.encode_frame(frame) * FLOOD_PUSHES)
        # earn: never answered


def start_gateway(build_dir, gamesrv_port, *extra):
    # The scripted gamesrv skips the handshake (test_link_auth.py has it).
    return rt.start("gateway", build_dir, rt.temp_dir("ringgate-gw-"), *extra,
                    peer_port=gamesrv_port, dead_ms=1000, insecure=True)


def is_unavailable_push(m):
    return body_of(m) == "error" and m.error.code == rt.client_pb2.SERVICE_UNAVAILABLE


def connected_client(port, name):
    """A client the gateway accepted (closed sessions free their places
    a moment after the peer sees the close, so retry SERVER_FULL)."""
    def attempt():
        client = rt.GameClient(port, name)
        expect(client.ping(), "pong")
        return client
    return rt.eventually(attempt, what=name + " accepted")


def stop_gateway(gateway, client):
    """SIGTERM: the client is told SHUTTING_DOWN, the gateway exits 0."""
    gateway.send_signal(signal.SIGTERM)
    push = client.wait_push(lambda m: body_of(m) == "kicked", what="SHUTTING_DOWN")
    assert push.kicked.code == rt.client_pb2.SHUTTING_DOWN, push
    client.wait_closed()
    assert gateway.wait(timeout=20) == 0, "gateway exit status"


def check_routing(build_dir):
    cpb = rt.client_pb2
    fake = ScriptedGamesrv()
    try:
        gateway = start_gateway(build_dir, fake.port, "--request-timeout-ms", "300",
                                "--max-clients", "3", "--idle-timeout-ms", "0")
        gw_port = gateway.port
        c = rt.GameClient(gw_port, "c")

        # No gamesrv at all: an immediate, clear error.
        expect_error(c.ping(), "SERVICE_UNAVAILABLE")

        fake.start()
        rt.eventually(lambda: body_of(c.ping()) == "pong", what="link up")
        assert len(fake.hellos) == 1

        # A request gamesrv never answers ends with TIMEOUT.
        expect_error(c.earn(1), "TIMEOUT")

        # Malformed requests: no body, then seq 0; the session stays.
        c.send(cpb.ClientMessage(seq=77))
        expect_error(c.wait_reply(77), "BAD_REQUEST")
        c.send(cpb.ClientMessage(seq=0, ping=cpb.PingRequest()))
        c.wait_push(lambda m: body_of(m) == "error" and m.error.code == cpb.BAD_REQUEST,
                    what="BAD_REQUEST for seq 0")
        expect(c.ping(), "pong")

        # Server full: c and two more fit (max 3); the fourth is told why.
        extra = [connected_client(gw_port, "extra%d" % i) for i in range(2)]
        full = rt.GameClient(gw_port, "full")
        push = full.wait_push(lambda m: body_of(m) == "kicked", what="SERVER_FULL")
        assert push.kicked.code == cpb.SERVER_FULL, push
        full.wait_closed()
        for e in extra:
            e.close()

        # Garbage: told, then disconnected; gamesrv hears the client went.
        g = connected_client(gw_port, "garbage")
        g_session = fake.request_sessions()[-1]
        g.send_raw(b"\x05\xff\xff\xff\xff\xff")
        g.wait_push(lambda m: body_of(m) == "error" and m.error.code == cpb.BAD_REQUEST,
                    what="BAD_REQUEST for garbage")
        g.wait_closed()
        rt.eventually(lambda: g_session in fake.gone_sessions(), what="ClientGone")

        # Random bytes from many connections (fixed seed): whatever each
        # gets (an error, a close), the gateway keeps serving.
        rng = random.Random(1234)
        for i in range(40):
            noisy = connected_client(gw_port, "noise%d" % i)
            noisy.send_raw(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))))
            noisy.close()
        expect(c.ping(), "pong")

        # A client that does not read while pushes pile up is cut off
        # (NET_BACKPRESSURE_DISCONNECT), and the others are not held up.
        slow = connected_client(gw_port, "slow")
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.send(cpb.ClientMessage(seq=500, chat=cpb.ChatRequest(text="flood me")))
        rt.eventually(lambda: "disconnected: send_overflow" in gateway.text(),
                      what="the slow client cut off")
        expect(c.ping(), "pong")
        slow.close()  # draining what the kernel still holds would only be slow

        # Kick from gamesrv: Kicked, then closed.
        k = connected_client(gw_port, "kicked")
        k.send(cpb.ClientMessage(seq=1000, move=cpb.MoveRequest(x=1, y=1)))
        push = k.wait_push(lambda m: body_of(m) == "kicked", what="Kicked")
        assert push.kicked.code == cpb.LOGGED_IN_ELSEWHERE, push
        k.wait_closed()

        # The link drops: clients are told at once; the gateway redials.
        fake.drop_link()
        c.wait_push(is_unavailable_push, what="link-down push")
        rt.eventually(lambda: body_of(c.ping()) == "pong", what="relink")
        assert len(fake.hellos) == 2, fake.hellos

        # A gamesrv that accepts but never answers Hello (heartbeats alone)
        # is dropped after the dead time and redialed; meanwhile requests
        # fail at once.
        fake.mute = True
        fake.drop_link()
        c.wait_push(is_unavailable_push, what="link-down push")
        rt.eventually(lambda: len(fake.hellos) >= 4, what="redials after unanswered Hellos")
        expect_error(c.ping(), "SERVICE_UNAVAILABLE")
        fake.mute = False
        rt.eventually(lambda: body_of(c.ping()) == "pong", what="relink after mute")

        stop_gateway(gateway, c)
    finally:
        fake.close()


def check_idle(build_dir):
    no_gamesrv = ScriptedGamesrv()  # never started
    try:
        gateway = start_gateway(build_dir, no_gamesrv.port, "--idle-timeout-ms", "300")
        quiet = rt.GameClient(gateway.port, "quiet")
        push = quiet.wait_push(lambda m: body_of(m) == "kicked", what="IDLE_TIMEOUT")
        assert push.kicked.code == rt.client_pb2.IDLE_TIMEOUT, push
        quiet.wait_closed()
        assert gateway.stop(timeout=20) == 0, "gateway exit status"
    finally:
        no_gamesrv.close()


def test(build_dir):
    check_routing(build_dir)
    check_idle(build_dir)


rt.main(test)
