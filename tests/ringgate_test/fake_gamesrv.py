"""A scripted stand-in for gamesrv, for tests of the gateway's own duties
(test_gateway_edges.py, test_gateway_shards.py): it speaks the internal
link without the shared-secret handshake (the gateway runs with
--insecure-no-auth; test_link_auth.py tests the handshake), answers Hello
and heartbeats itself, records every GateToGame, and hands each other one
to answer(), which a test's subclass scripts.
"""

import socket
import threading

from . import protos
from .conn import Framed


class FakeGamesrv:
    """Listens like gamesrv once started; serves one gateway link at a
    time. Before start() its port is bound but refuses connections, as if
    gamesrv were down. shard: the HelloReply.shard it answers (0: none, a
    gamesrv from before shards)."""

    def __init__(self, shard=0):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.shard = shard
        self.lock = threading.Lock()
        self.seen = []          # GateToGame messages received, in order
        self.hellos = []        # the Hello messages
        self.mute = False       # True: never answer Hello
        self.link = None

    def start(self):
        self.listener.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.link = Framed(sock, protos.parser(protos.internal_pb2.GateToGame),
                                   "fake gamesrv %d" % self.shard, background=True,
                                   on_message=self._handle)

    def _handle(self, link, msg):
        pb = protos.internal_pb2
        kind = msg.WhichOneof("body")
        with self.lock:
            self.seen.append(msg)
        if kind == "hello":
            with self.lock:
                self.hellos.append(msg.hello)
                if self.mute:
                    return True
            link.send(pb.GameToGate(hello=pb.HelloReply(role="gamesrv", shard=self.shard)))
        elif kind == "heartbeat":
            link.send(pb.GameToGate(heartbeat=pb.Heartbeat(sent_ms=1)))
        else:
            self.answer(link, msg)
        return True

    def answer(self, link, msg):
        """A subclass's script: what to do with msg (a GateToGame other than
        hello and heartbeat) from the gateway on link. Runs on the link's
        reader thread."""

    def send(self, **body):
        """Send GameToGate(**body) on the current link."""
        with self.lock:
            link = self.link
        link.send(protos.internal_pb2.GameToGate(**body))

    def reply(self, link, request, **body):
        """Answer ClientRequest request with ServerMessage(**body), its seq
        and request_id."""
        pb, cpb = protos.internal_pb2, protos.client_pb2
        link.send(pb.GameToGate(to_client=pb.ToClient(
            sessions=[request.session], request_id=request.request_id,
            message=cpb.ServerMessage(seq=request.message.seq, **body))))

    def drop_link(self):
        with self.lock:
            if self.link:
                self.link.close()

    def received(self, kind):
        """The bodies of kind (request, gone, handoff_result, ...) received
        so far, in order."""
        with self.lock:
            return [getattr(m, kind) for m in self.seen if m.WhichOneof("body") == kind]

    def gone_sessions(self):
        return [g.session for g in self.received("gone")]

    def request_sessions(self):
        return [r.session for r in self.received("request")]

    def close(self):
        self.listener.close()
        self.drop_link()
