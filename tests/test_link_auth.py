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

usage: test_link_auth.py BUILD_DIR CASE   (one CTest test per case)
Every wait has a deadline; no timing thresholds.
"""

import base64
import hashlib
import hmac
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import ringgate_test as rt
from ringgate_test import encode_varint, parse_frame, eventually

WAIT = 15
LABEL = b"ringgate-link-v1"
CHILDREN = []


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


# ---- a framed socket ------------------------------------------------------

class Framed:
    """A blocking framed connection; keeps every byte the peer sent in
    self.received."""

    def __init__(self, sock, name):
        self.sock = sock
        self.name = name
        self.buf = b""
        self.received = b""
        sock.settimeout(0.2)

    @classmethod
    def dial(cls, port, name):
        return cls(socket.create_connection(("127.0.0.1", port), timeout=WAIT), name)

    def send(self, msg):
        body = msg.SerializeToString()
        self.sock.sendall(encode_varint(len(body)) + body)

    def read(self, parse, timeout=WAIT):
        """The next message, or None when the peer closed the connection."""
        deadline = time.monotonic() + timeout
        while True:
            body, self.buf = parse_frame(self.buf)
            if body is not None:
                return parse(body)
            if time.monotonic() > deadline:
                raise AssertionError("%s: nothing within %d s" % (self.name, timeout))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.received += data
            self.buf += data

    def wait_closed(self, parse, skip=("heartbeat",)):
        """True once the peer closes; messages of the kinds in skip are
        read past, anything else fails."""
        while True:
            msg = self.read(parse)
            if msg is None:
                return True
            if msg.WhichOneof("body") not in skip:
                raise AssertionError("%s: %r instead of a close" % (self.name, msg))

    def close(self):
        self.sock.close()


def gate_parse(body):
    m = rt.internal_pb2.GameToGate()
    m.ParseFromString(body)
    return m


def db_parse(body):
    m = rt.internal_pb2.DbToGame()
    m.ParseFromString(body)
    return m


# ---- processes ------------------------------------------------------------

class Proc(rt.Process):
    """A process of this test, stopped (and checked) at the end."""

    def __init__(self, name, argv, directory):
        super().__init__(name, argv, directory)
        CHILDREN.append(self)

    def stop(self):
        super().stop(WAIT)


def wait_listening(port, proc):
    def up():
        if proc.proc.poll() is not None:
            raise AssertionError("%s exited:\n%s" % (proc.name, proc.text()))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    eventually(up, timeout=WAIT, what=proc.name + " listening")


def start_dbproxy(build, directory, port, *auth):
    p = Proc("dbproxy", [os.path.join(build, "dbproxy", "dbproxy"),
                         "--run-dir", os.path.join(directory, "run"), "--port", str(port),
                         "--pwhash", "min", "--heartbeat-ms", "100", "--dead-ms", "1000",
                         "--log-level", "debug", *auth], directory)
    wait_listening(port, p)
    return p


def start_gamesrv(build, directory, port, db_port, *auth):
    p = Proc("gamesrv", [os.path.join(build, "gamesrv", "gamesrv"),
                         "--listen-port", str(port), "--dbproxy-port", str(db_port),
                         "--heartbeat-ms", "100", "--dead-ms", "1000",
                         "--log-level", "debug", *auth], directory)
    wait_listening(port, p)
    return p


def start_gateway(build, directory, port, gamesrv_port, *auth):
    p = Proc("gateway", [os.path.join(build, "gateway", "gateway"),
                         "--port", str(port), "--gamesrv-port", str(gamesrv_port),
                         "--heartbeat-ms", "100", "--dead-ms", "1000",
                         "--log-level", "debug", *auth], directory)
    wait_listening(port, p)
    return p


def count(proc, text):
    return proc.text().count(text)


# ---- cases ------------------------------------------------------------------

def gateway_wrong_secret(build, d):
    good = write_secret(d, "good", os.urandom(32))
    bad = write_secret(d, "bad", os.urandom(32))
    gport, db_port, port = rt.free_ports(3)
    gamesrv = start_gamesrv(build, d, gport, db_port, "--secret-file", good)
    gateway = start_gateway(build, d, port, gport, "--secret-file", bad)
    # Cut off, and again after each redial.
    eventually(lambda: count(gamesrv, "Hello does not prove the cluster secret") >= 2,
               timeout=WAIT, what="gamesrv cutting off the gateway twice")
    assert "gamesrv link up" not in gateway.text()
    assert "ready (instance" not in gamesrv.text(), "gamesrv took the link"


def gamesrv_wrong_secret(build, d):
    good = write_secret(d, "good", os.urandom(32))
    bad = write_secret(d, "bad", os.urandom(32))
    db_port, gport = rt.free_ports(2)
    dbproxy = start_dbproxy(build, d, db_port, "--secret-file", good)
    gamesrv = start_gamesrv(build, d, gport, db_port, "--secret-file", bad)
    eventually(lambda: count(dbproxy, "Hello does not prove the cluster secret") >= 2,
               timeout=WAIT, what="dbproxy cutting off gamesrv twice")
    assert "gamesrv \"" not in dbproxy.text(), "dbproxy took the link"
    assert " up (role" not in gamesrv.text(), "gamesrv took the link as up"


def acceptor_wrong_secret(build, d):
    """A gamesrv stand-in with another key: the gateway's Hello verifies
    with the gateway's key (interop with this script's MAC), the stand-in's
    HelloReply proof does not, and the gateway drops the link."""
    secret = os.urandom(32)
    path = write_secret(d, "good", secret)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(WAIT)
    port, = rt.free_ports(1)
    gateway = start_gateway(build, d, port, listener.getsockname()[1], "--secret-file", path)
    conn = Framed(listener.accept()[0], "gateway link")
    nonce_a = os.urandom(32)
    conn.send(rt.internal_pb2.GameToGate(challenge=rt.internal_pb2.AuthChallenge(nonce=nonce_a)))

    def parse(body):
        m = rt.internal_pb2.GateToGame()
        m.ParseFromString(body)
        return m
    hello = conn.read(parse)
    assert hello is not None and hello.WhichOneof("body") == "hello", hello
    assert secret not in conn.received and link_key(secret) not in conn.received
    assert len(hello.hello.nonce) == 32
    assert hmac.compare_digest(hello.hello.proof,
                               proof(link_key(secret), b"D", nonce_a, hello.hello.nonce,
                                     "gateway")), "gateway's proof does not verify"
    wrong = proof(link_key(os.urandom(32)), b"A", nonce_a, hello.hello.nonce, "gamesrv")
    conn.send(rt.internal_pb2.GameToGate(
        hello=rt.internal_pb2.HelloReply(role="gamesrv", proof=wrong)))
    assert conn.wait_closed(parse), "gateway kept the link"
    eventually(lambda: "does not prove the cluster secret" in gateway.text(),
               timeout=WAIT, what="gateway log")
    assert "gamesrv link up" not in gateway.text()
    conn.close()
    listener.close()


def request_before_auth(build, d):
    path = write_secret(d, "good", os.urandom(32))
    db_port, gport = rt.free_ports(2)
    dbproxy = start_dbproxy(build, d, db_port, "--secret-file", path)
    gamesrv = start_gamesrv(build, d, gport, db_port, "--secret-file", path)
    pb = rt.internal_pb2

    # gamesrv: a client request right after the challenge.
    g = Framed.dial(gport, "to gamesrv")
    assert g.read(gate_parse).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(request=pb.ClientRequest(session=1, message=rt.client_pb2.ClientMessage(
        seq=1, ping=rt.client_pb2.PingRequest()))))
    assert g.wait_closed(gate_parse)
    eventually(lambda: "message before Hello, closing it" in gamesrv.text(),
               timeout=WAIT, what="gamesrv log")
    # ... and a heartbeat before Hello.
    g = Framed.dial(gport, "to gamesrv (heartbeat)")
    assert g.read(gate_parse).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(heartbeat=pb.Heartbeat(sent_ms=1)))
    assert g.wait_closed(gate_parse)

    # dbproxy: a login before Hello.
    c = Framed.dial(db_port, "to dbproxy")
    assert c.read(db_parse).WhichOneof("body") == "challenge"
    c.send(pb.GameToDb(request_id=1, login=pb.DbLogin(name="mallory", password="x")))
    assert c.wait_closed(db_parse)
    eventually(lambda: "first frame is not Hello" in dbproxy.text(),
               timeout=WAIT, what="dbproxy log")
    assert "mallory" not in dbproxy.text()


def scripted_handshake(build, d):
    secret = os.urandom(32)
    path = write_secret(d, "good", secret)
    key = link_key(secret)
    db_port, gport = rt.free_ports(2)
    dbproxy = start_dbproxy(build, d, db_port, "--secret-file", path)
    gamesrv = start_gamesrv(build, d, gport, db_port, "--secret-file", path)
    pb = rt.internal_pb2
    eventually(lambda: " up (role" in gamesrv.text(), timeout=WAIT,
               what="gamesrv's own dbproxy link up")

    def handshake(port, parse, envelope, role, peer_role):
        conn = Framed.dial(port, "to " + peer_role)
        challenge = conn.read(parse)
        assert challenge.WhichOneof("body") == "challenge", challenge
        nonce_a = challenge.challenge.nonce
        assert len(nonce_a) == 32
        nonce_d = os.urandom(32)
        hello = pb.Hello(role=role, instance="test", nonce=nonce_d,
                         proof=proof(key, b"D", nonce_a, nonce_d, role))
        conn.send(envelope(hello=hello))
        reply = conn.read(parse)
        while reply.WhichOneof("body") == "heartbeat":
            reply = conn.read(parse)
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
    g = Framed.dial(gport, "relay")
    nonce_a = g.read(gate_parse).challenge.nonce
    nonce_d = os.urandom(32)
    g.send(pb.GateToGame(hello=pb.Hello(role="gamesrv", nonce=nonce_d,
                                        proof=proof(key, b"D", nonce_a, nonce_d, "gamesrv"))))
    assert g.wait_closed(gate_parse)
    eventually(lambda: 'role "gamesrv", not gateway' in gamesrv.text(),
               timeout=WAIT, what="gamesrv refusing the relayed role")

    # A recorded Hello replayed against a fresh challenge is refused.
    g = Framed.dial(gport, "replay")
    assert g.read(gate_parse).WhichOneof("body") == "challenge"
    g.send(pb.GateToGame(hello=hello))
    assert g.wait_closed(gate_parse)
    eventually(lambda: "Hello does not prove the cluster secret" in gamesrv.text(),
               timeout=WAIT, what="gamesrv refusing the replay")
    assert dbproxy.proc.poll() is None and gamesrv.proc.poll() is None


def silent_peer(build, d):
    path = write_secret(d, "good", os.urandom(32))
    db_port, gport = rt.free_ports(2)
    dbproxy = start_dbproxy(build, d, db_port, "--secret-file", path)
    gamesrv = start_gamesrv(build, d, gport, db_port, "--secret-file", path)
    g = Framed.dial(gport, "silent to gamesrv")
    c = Framed.dial(db_port, "silent to dbproxy")
    assert g.wait_closed(gate_parse, skip=("challenge", "heartbeat"))
    assert c.wait_closed(db_parse, skip=("challenge", "heartbeat"))
    eventually(lambda: "silent for more than" in gamesrv.text(), timeout=WAIT,
               what="gamesrv log")
    eventually(lambda: "silent for more than" in dbproxy.text(), timeout=WAIT,
               what="dbproxy log")


def refuse_to_start(build, d):
    open_mode = write_secret(d, "open", os.urandom(32), mode=0o644)
    for proc in ("gateway", "gamesrv", "dbproxy"):
        exe = os.path.join(build, proc, proc)
        extra = ["--run-dir", os.path.join(d, "run")] if proc == "dbproxy" else []
        for flags, why in (([], "no --secret-file"),
                           (["--secret-file", os.path.join(d, "missing")], "cannot read"),
                           (["--secret-file", open_mode], "readable by group or others")):
            r = subprocess.run([exe, "--port" if proc != "gamesrv" else "--listen-port", "0",
                                *extra, *flags], capture_output=True, text=True,
                               timeout=WAIT, stdin=subprocess.DEVNULL)
            assert r.returncode == 2 and why in r.stderr, (proc, flags, r)


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


CASES = {f.__name__: f for f in (gateway_wrong_secret, gamesrv_wrong_secret,
                                  acceptor_wrong_secret, request_before_auth,
                                  scripted_handshake, silent_peer, refuse_to_start,
                                  no_secrets_in_logs)}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: %s BUILD_DIR CASE\ncases: %s" % (sys.argv[0], " ".join(CASES)))
        sys.exit(2)
    rt.load_protos()
    d = tempfile.mkdtemp(prefix="ringgate-auth-")
    ok = False
    try:
        CASES[sys.argv[2]](sys.argv[1], d)
        ok = True
    except Exception:
        import traceback
        traceback.print_exc()
    finally:
        for p in CHILDREN:
            p.stop()
        reports = ["%s: %s" % (p.name, line) for p in CHILDREN
                   for line in p.sanitizer_reports()]
        if reports:
            ok = False
            print("sanitizer reports:\n" + "\n".join(reports))
        if not ok:
            for p in CHILDREN:
                print("----- %s.log (last 40 lines) -----" % p.name)
                print("\n".join(p.text().splitlines()[-40:]))
        shutil.rmtree(d, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    threading.current_thread().name = "test"
    main()
