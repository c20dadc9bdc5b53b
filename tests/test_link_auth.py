"""The internal links' shared-secret handshake (common/include/rg/link_auth.h,
docs/protocol.md "Link authentication") against real processes on loopback:

  gateway_wrong_secret   a gateway with another secret is cut off by gamesrv
  gamesrv_wrong_secret   a gamesrv with another secret is cut off by dbproxy
  acceptor_wrong_secret  a gamesrv stand-in that cannot prove the secret is
                         dropped by the gateway
  request_before_auth    a request (or a heartbeat) before Hello is cut off,
                         by gamesrv and by dbproxy
  scripted_handshake     a scripted dialer with the right secret completes the
                         handshake with gamesrv and dbproxy and checks their
                         proofs; a replayed Hello is refused; the secret is
                         never on the wire
  silent_peer            a peer that never answers the challenge is cut off
  refuse_to_start        no secret file, or one readable by others: exit 2
  no_secrets_in_logs     a whole cluster run: neither the password nor the
                         secret (raw, hex or base64) is in any log
  unauthenticated_flood  200 redialing sockets that never authenticate, on
                         dbproxy's link port (from the real peer's own
                         address) and gamesrv's (from another), do not
                         keep gamesrv from linking to dbproxy nor the
                         gateway to gamesrv (issue 11, item 12)
  preauth_big_frame      before the handshake a 4 MiB frame header is
                         refused at once, by gamesrv, dbproxy and the
                         gateway (issue 11, item 12)

usage: test_link_auth.py BUILD_DIR CASE   (one CTest test per case)
Every wait has a deadline; no timing thresholds.
"""

import base64
import hashlib
import hmac
import os
import re
import selectors
import socket
import subprocess
import threading
import time

import ringgate_test as rt
from ringgate_test import WAIT, eventually

LABEL = b"ringgate-link-v1"


# ---- the handshake, as docs/protocol.md describes it ------------------------

def link_key(secret):
    return hashlib.blake2b(secret, digest_size=32).digest()


def proof(key, direction, nonce_a, nonce_d, role):
    return hmac.new(key, LABEL + direction + nonce_a + nonce_d + role.encode(),
                    hashlib.sha512).digest()[:32]


def write_secret(directory, name, data, mode=0o600):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


# ---- connections and processes ---------------------------------------------

def gate_parse(body):
    return rt.parser(rt.internal_pb2.GameToGate)(body)


def db_parse(body):
    return rt.parser(rt.internal_pb2.DbToGame)(body)


def dial(port, parse, name):
    """A pull-mode link that records every byte the peer sent."""
    return rt.Framed(rt.dial(port), parse, name, record=True)


def start_dbproxy(build, d, secret):
    return rt.start("dbproxy", build, d, secret_file=secret, dead_ms=1000)


def start_gamesrv(build, d, db_port, secret):
    return rt.start("gamesrv", build, d, peer_port=db_port, secret_file=secret, dead_ms=1000)


def start_gateway(build, d, gamesrv_port, secret):
    return rt.start("gateway", build, d, peer_port=gamesrv_port, secret_file=secret,
                    dead_ms=1000)


def count(proc, text):
    return proc.count(text)


# ---- cases ------------------------------------------------------------------

def gateway_wrong_secret(build, d):
    good = write_secret(d, "good", os.urandom(32))
    bad = write_secret(d, "bad", os.urandom(32))
    db_listener = rt.listen()  # a dbproxy port nobody answers on
    gamesrv = start_gamesrv(build, d, db_listener.getsockname()[1], good)
    gateway = start_gateway(build, d, gamesrv.port, bad)
    # Cut off, and again after each redial.
    eventually(lambda: count(gamesrv, "Hello does not prove the cluster secret") >= 2,
               timeout=WAIT, what="gamesrv cutting off the gateway twice")
    assert "gamesrv link up" not in gateway.text()
    assert "ready (instance" not in gamesrv.text(), "gamesrv took the link"


def gamesrv_wrong_secret(build, d):
    good = write_secret(d, "good", os.urandom(32))
    bad = write_secret(d, "bad", os.urandom(32))
    dbproxy = start_dbproxy(build, d, good)
    gamesrv = start_gamesrv(build, d, dbproxy.port, bad)
    eventually(lambda: count(dbproxy, "Hello does not prove the cluster secret") >= 2,
               timeout=WAIT, what="dbproxy cutting off gamesrv twice")
    assert "ready (instance" not in dbproxy.text(), "dbproxy took the link"
    assert " up (role" not in gamesrv.text(), "gamesrv took the link as up"


def acceptor_wrong_secret(build, d):
    """A gamesrv stand-in with another key: the gateway's Hello verifies
    with the gateway's key (interop with this script's MAC), the stand-in's
    HelloReply proof does not, and the gateway drops the link."""
    secret = os.urandom(32)
    path = write_secret(d, "good", secret)
    listener = rt.listen()
    listener.settimeout(WAIT)
    gateway = start_gateway(build, d, listener.getsockname()[1], path)
    conn = rt.Framed(listener.accept()[0], rt.parser(rt.internal_pb2.GateToGame),
                     "gateway link", record=True)
    nonce_a = os.urandom(32)
    conn.send(rt.internal_pb2.GameToGate(challenge=rt.internal_pb2.AuthChallenge(nonce=nonce_a)))
    hello = conn.next(skip=())
    assert hello is not None and hello.WhichOneof("body") == "hello", hello
    assert secret not in conn.received and link_key(secret) not in conn.received
    assert len(hello.hello.nonce) == 32
    assert hmac.compare_digest(hello.hello.proof,
                               proof(link_key(secret), b"D", nonce_a, hello.hello.nonce,
                                     "gateway")), "gateway's proof does not verify"
    wrong = proof(link_key(os.urandom(32)), b"A", nonce_a, hello.hello.nonce, "gamesrv")
    conn.send(rt.internal_pb2.GameToGate(
        hello=rt.internal_pb2.HelloReply(role="gamesrv", proof=wrong)))
    assert conn.wait_closed(only=("heartbeat",)), "gateway kept the link"
    eventually(lambda: "does not prove the cluster secret" in gateway.text(),
               timeout=WAIT, what="gateway log")
    assert "gamesrv link up" not in gateway.text()
    conn.close()
    listener.close()


def request_before_auth(build, d):
    path = write_secret(d, "good", os.urandom(32))
    dbproxy = start_dbproxy(build, d, path)
    gamesrv = start_gamesrv(build, d, dbproxy.port, path)
    db_port, gport = dbproxy.port, gamesrv.port
    pb = rt.internal_pb2

    # gamesrv: a client request right after the challenge.
    g = dial(gport, gate_parse, "to gamesrv")
    assert g.next(skip=()).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(request=pb.ClientRequest(session=1, message=rt.client_pb2.ClientMessage(
        seq=1, ping=rt.client_pb2.PingRequest()))))
    assert g.wait_closed(only=("heartbeat",))
    eventually(lambda: "message before Hello, closing it" in gamesrv.text(),
               timeout=WAIT, what="gamesrv log")
    # ... and a heartbeat before Hello.
    g = dial(gport, gate_parse, "to gamesrv (heartbeat)")
    assert g.next(skip=()).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(heartbeat=pb.Heartbeat(sent_ms=1)))
    assert g.wait_closed(only=("heartbeat",))

    # dbproxy: a login before Hello.
    c = dial(db_port, db_parse, "to dbproxy")
    assert c.next(skip=()).WhichOneof("body") == "challenge"
    c.send(pb.GameToDb(request_id=1, login=pb.DbLogin(name="mallory", password=b"x")))
    assert c.wait_closed(only=("heartbeat",))
    eventually(lambda: "message before Hello, closing it" in dbproxy.text(),
               timeout=WAIT, what="dbproxy log")
    assert "mallory" not in dbproxy.text()


def scripted_handshake(build, d):
    secret = os.urandom(32)
    path = write_secret(d, "good", secret)
    key = link_key(secret)
    dbproxy = start_dbproxy(build, d, path)
    gamesrv = start_gamesrv(build, d, dbproxy.port, path)
    db_port, gport = dbproxy.port, gamesrv.port
    pb = rt.internal_pb2
    eventually(lambda: " up (role" in gamesrv.text(), timeout=WAIT,
               what="gamesrv's own dbproxy link up")

    def handshake(port, parse, envelope, role, peer_role):
        conn = dial(port, parse, "to " + peer_role)
        challenge = conn.next(skip=())
        assert challenge.WhichOneof("body") == "challenge", challenge
        nonce_a = challenge.challenge.nonce
        assert len(nonce_a) == 32
        nonce_d = os.urandom(32)
        hello = pb.Hello(role=role, instance="test", nonce=nonce_d,
                         proof=proof(key, b"D", nonce_a, nonce_d, role))
        conn.send(envelope(hello=hello))
        reply = conn.next()
        assert reply.WhichOneof("body") == "hello", reply
        assert hmac.compare_digest(reply.hello.proof,
                                   proof(key, b"A", nonce_a, nonce_d, peer_role)), \
            "%s's proof does not verify" % peer_role
        # The process proved the secret without sending it (or its key).
        assert secret not in conn.received and key not in conn.received
        return conn, hello

    g, hello = handshake(gport, gate_parse, pb.GateToGame, "gateway", "gamesrv")
    g.close()
    c, _ = handshake(db_port, db_parse, pb.GameToDb, "gamesrv", "dbproxy")
    c.close()

    # A proof relayed from another link (a valid "gamesrv" dialer proof, as
    # gamesrv makes when it dials dbproxy) does not pass for a gateway's.
    g = dial(gport, gate_parse, "relay")
    nonce_a = g.next(skip=()).challenge.nonce
    nonce_d = os.urandom(32)
    g.send(pb.GateToGame(hello=pb.Hello(role="gamesrv", nonce=nonce_d,
                                        proof=proof(key, b"D", nonce_a, nonce_d, "gamesrv"))))
    assert g.wait_closed(only=("heartbeat",))
    eventually(lambda: 'role "gamesrv", not gateway' in gamesrv.text(),
               timeout=WAIT, what="gamesrv refusing the relayed role")

    # A recorded Hello replayed against a fresh challenge is refused.
    g = dial(gport, gate_parse, "replay")
    assert g.next(skip=()).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(hello=hello))
    assert g.wait_closed(only=("heartbeat",))
    eventually(lambda: "Hello does not prove the cluster secret" in gamesrv.text(),
               timeout=WAIT, what="gamesrv refusing the replay")
    assert dbproxy.alive() and gamesrv.alive()


def silent_peer(build, d):
    path = write_secret(d, "good", os.urandom(32))
    dbproxy = start_dbproxy(build, d, path)
    gamesrv = start_gamesrv(build, d, dbproxy.port, path)
    db_port, gport = dbproxy.port, gamesrv.port
    g = dial(gport, gate_parse, "silent to gamesrv")
    c = dial(db_port, db_parse, "silent to dbproxy")
    assert g.wait_closed(only=("challenge", "heartbeat"))
    assert c.wait_closed(only=("challenge", "heartbeat"))
    eventually(lambda: "silent for more than" in gamesrv.text(), timeout=WAIT,
               what="gamesrv log")
    eventually(lambda: "silent for more than" in dbproxy.text(), timeout=WAIT,
               what="dbproxy log")


class Flood:
    """count sockets from address src to port that never send a byte,
    read and drop whatever comes, and dial again at once whenever they are
    closed: a local process holding a link port's slots without the
    secret. Runs on its own thread until stop()."""

    def __init__(self, port, src, count=200):
        self.port, self.src, self.count = port, src, count
        self.dials = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _dial(self, sel):
        s = socket.socket()
        s.bind((self.src, 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            time.sleep(0.01)
            return
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        self.dials += 1

    def _run(self):
        sel = selectors.DefaultSelector()
        while self.running:
            while len(sel.get_map()) < self.count and self.running:
                self._dial(sel)
            for key, _ in sel.select(timeout=0.05):
                try:
                    data = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()

    def stop(self):
        self.running = False
        self.thread.join(WAIT)


# The process defaults for the dead time and the handshake (5 s, 2 s): a
# peer that never authenticates must not hold a slot for the dead time.
PRODUCTION_TIMES = dict(heartbeat_ms=1000, dead_ms=5000, log_level="info")


def unauthenticated_flood(build, d):
    """Before the fix the flooders held all 64 slots for the 5 s dead time
    and won every race for a freed one: gamesrv linked after 14 to 30 s,
    if at all. Now each must link within 10 s (it takes about 1 s)."""
    path = write_secret(d, "good", os.urandom(32))
    floods = []
    try:
        dbproxy = rt.start("dbproxy", build, d, secret_file=path, **PRODUCTION_TIMES)
        # From 127.0.0.1, the address gamesrv dials from: the per-address
        # cap cannot tell them apart, only the eviction of the oldest.
        floods.append(Flood(dbproxy.port, "127.0.0.1"))
        eventually(lambda: floods[0].dials >= floods[0].count, timeout=WAIT,
                   what="the flood on dbproxy")
        gamesrv = rt.start("gamesrv", build, d, peer_port=dbproxy.port, secret_file=path,
                           **PRODUCTION_TIMES)
        eventually(lambda: re.search(r"dbproxy link \S+ up", gamesrv.text()), timeout=10,
                   what="gamesrv linked to dbproxy through the flood")
        floods.append(Flood(gamesrv.port, "127.0.0.2"))
        eventually(lambda: floods[1].dials >= floods[1].count, timeout=WAIT,
                   what="the flood on gamesrv")
        gateway = rt.start("gateway", build, d, peer_port=gamesrv.port, secret_file=path,
                           **PRODUCTION_TIMES)
        eventually(lambda: "gamesrv link up" in gateway.text(), timeout=10,
                   what="the gateway linked to gamesrv through the flood")
        # The flooders held no slot for long: they were evicted and dialed
        # again many times over, and said so in the logs.
        for flood, proc in zip(floods, (dbproxy, gamesrv)):
            rt.log("flood on %s: %d dials" % (proc.name, flood.dials))
            assert flood.dials > 2 * flood.count, (proc.name, flood.dials)
            assert "still in their handshake to make room" in proc.text(), proc.name
    finally:
        for flood in floods:
            flood.stop()


def preauth_big_frame(build, d):
    path = write_secret(d, "good", os.urandom(32))
    # Deadlines far away: only the frame limit can close these links.
    slow = dict(secret_file=path, dead_ms=60000)
    dbproxy = rt.start("dbproxy", build, d, "--handshake-ms", "60000", **slow)
    gamesrv = rt.start("gamesrv", build, d, "--handshake-ms", "60000",
                       peer_port=dbproxy.port, **slow)
    big = rt.encode_varint(4 << 20) + b"x" * 1000
    for port, parse in ((gamesrv.port, gate_parse), (dbproxy.port, db_parse)):
        conn = dial(port, parse, "big frame to %d" % port)
        assert conn.next(skip=()).WhichOneof("body") == "challenge"
        t0 = time.monotonic()
        conn.send_raw(big)
        assert conn.wait_closed()
        assert time.monotonic() - t0 < 5, "not refused at once"
        conn.close()
    # The dialing side too: a gamesrv stand-in that sends one.
    listener = rt.listen()
    rt.start("gateway", build, d, "--handshake-ms", "60000",
             peer_port=listener.getsockname()[1], **slow)
    conn = rt.Framed(listener.accept()[0], gate_parse, "gateway link")
    t0 = time.monotonic()
    conn.send_raw(big)
    assert conn.wait_closed()
    assert time.monotonic() - t0 < 5, "the gateway did not refuse it at once"
    conn.close()
    listener.close()


def refuse_to_start(build, d):
    open_mode = write_secret(d, "open", os.urandom(32), mode=0o644)
    for proc in ("gateway", "gamesrv", "dbproxy"):
        run_dir = os.path.join(d, "run") if proc == "dbproxy" else None
        for secret, why in ((None, "no --secret-file"),
                            (os.path.join(d, "missing"), "cannot read"),
                            (open_mode, "readable by group or others")):
            argv = rt.procs.argv(proc, build, run_dir=run_dir, secret_file=secret)
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=WAIT, stdin=subprocess.DEVNULL)
            assert r.returncode == 2 and why in r.stderr, (proc, secret, r)


def no_secrets_in_logs(build, d):
    password = "pw-" + os.urandom(12).hex()
    with rt.Cluster(build) as cluster:
        with open(os.path.join(cluster.run_dir, "cluster.secret"), "rb") as f:
            secret = f.read()
        assert os.stat(os.path.join(cluster.run_dir, "cluster.secret")).st_mode & 0o077 == 0
        assert len(secret) == 32
        c = cluster.client("alice")
        rt.expect(c.login("alice", password), "login")
        rt.expect(c.earn(5), "earn")
        rt.expect(c.logout(), "logout")
        bad = cluster.client("mallory")
        rt.expect_error(bad.login("alice", password + "x"), "WRONG_PASSWORD")
        forms = {
            "password": password.encode(),
            "wrong password": (password + "x").encode(),
            "secret": secret,
            "secret hex": secret.hex().encode(),
            "secret HEX": secret.hex().upper().encode(),
            "secret base64": base64.b64encode(secret).rstrip(b"="),
            "key hex": link_key(secret).hex().encode(),
        }
        for proc in ("dbproxy", "gamesrv", "gateway"):
            with open(os.path.join(cluster.run_dir, proc + ".log"), "rb") as f:
                data = f.read()
            assert b"alice" in data or proc == "gateway", "the logs are not at debug level?"
            for what, needle in forms.items():
                assert needle not in data, "%s found in %s.log" % (what, proc)


def with_dir(case):
    """case(build, d) as a test of build alone: d is a new temporary directory."""
    return lambda build: case(build, rt.temp_dir("ringgate-auth-"))


CASES = {f.__name__: with_dir(f) for f in (gateway_wrong_secret, gamesrv_wrong_secret,
                                            acceptor_wrong_secret, request_before_auth,
                                            scripted_handshake, silent_peer, refuse_to_start,
                                            no_secrets_in_logs, unauthenticated_flood,
                                            preauth_big_frame)}

if __name__ == "__main__":
    rt.main(cases=CASES)
