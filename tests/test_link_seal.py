"""Sealed internal links (common/include/rg/link_seal.h, docs/protocol.md
"Sealed frames") against a whole cluster on loopback.

A relay (this file's Relay: a TCP proxy on 127.0.0.2, gamesrv's port, which
the gateway dials, forwarding to gamesrv on 127.0.0.1) sits on the
gateway -> gamesrv link. Each relay case logs a player in through it,
earns once untouched, then has the relay spoil the frame that carries the
next earn:

  relay_flip     one bit of it flipped
  relay_replay   it passes, then is sent again
  relay_reorder  it is held back and sent after the frame behind it
  relay_inject   a forged frame goes in ahead of it

Each time gamesrv must drop the link with its "does not open" line, the
spoiled earn must not be applied (replay: applied once at most, never
twice: the database and a fresh login say so), and the link must come
back through the relay (the gateway redials) and carry an earn again.

  capture_clear  tshark on lo, filtered to the cluster's ports, while two
                 players log in over TLS and chat: no link's packets (the
                 client link, gateway-gamesrv, gamesrv-dbproxy) hold a
                 password or a player's name in clear. (Skipped, exit 77,
                 without tshark or when capturing is not allowed.)

usage: test_link_seal.py BUILD_DIR CASE   (one CTest test per case)
"""

import os
import shutil
import socket
import subprocess
import threading
import time

import ringgate_test as rt
from ringgate_test import WAIT, eventually, expect
from ringgate_test.conn import encode_frame, parse_frame

# A gateway -> gamesrv frame body longer than this carries a client request;
# Heartbeats (about 25 bytes sealed) are shorter.
REQUEST_MIN = 32

# The relay's address: loopback, beside gamesrv's 127.0.0.1.
RELAY_HOST = "127.0.0.2"


class Relay:
    """A TCP relay from host:port to 127.0.0.1:port, one pair of
    pump threads per connection. Bytes from gamesrv pass as they are; the
    gateway's are cut into frames, and once armed the relay spoils the
    first request-sized frame after the handshake (mode: flip, replay,
    reorder, inject), then sets fired and goes back to passing frames."""

    def __init__(self, host, port=0):
        self.mode = None
        self.fired = threading.Event()
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(8)
        self.target_port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, mode):
        with self.lock:
            self.fired.clear()
            self.mode = mode

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()

    def _accept(self):
        while True:
            try:
                down, _ = self.sock.accept()
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=WAIT)
            except OSError:
                return
            up.settimeout(None)
            self.conns += [down, up]
            threading.Thread(target=self._frames, args=(down, up), daemon=True).start()
            threading.Thread(target=self._bytes, args=(up, down), daemon=True).start()

    @staticmethod
    def _bytes(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _spoil(self, frame, body, dst):
        """Send frame (whose body is body) spoiled as armed; returns a frame
        to hold back (reorder) or None."""
        mode = self.mode
        self.mode = None
        rt.log("relay: %s on a %d-byte frame" % (mode, len(body)))
        if mode == "flip":
            spoiled = bytearray(body)
            spoiled[len(body) // 2] ^= 0x04
            dst.sendall(encode_frame(bytes(spoiled)))
        elif mode == "replay":
            dst.sendall(frame + frame)
        elif mode == "inject":
            dst.sendall(encode_frame(os.urandom(len(body))) + frame)
        elif mode == "reorder":
            return frame
        self.fired.set()
        return None

    def _frames(self, src, dst):
        buf, index, held = b"", 0, None
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                buf += data
                while True:
                    body, rest = parse_frame(buf)
                    if body is None:
                        break
                    frame, buf = buf[:len(buf) - len(rest)], rest
                    with self.lock:
                        if held is not None:      # reorder: the next one first
                            dst.sendall(frame + held)
                            held = None
                            self.fired.set()
                        elif self.mode and index > 0 and len(body) > REQUEST_MIN:
                            held = self._spoil(frame, body, dst)
                        else:
                            dst.sendall(frame)
                    index += 1
        except OSError:
            pass
        self._bytes(src, dst)  # shut both down


def relayed_cluster(build_dir):
    """A cluster whose gateway reaches gamesrv through a Relay: the relay
    listens on a port the kernel picks on 127.0.0.2, which the gateway
    dials, and gamesrv on the same port of 127.0.0.1 (deploy gives the
    gateway gamesrv's port; the address is the gateway's flag). The relay
    keeps its port bound, and gamesrv's address is another one, so no
    port is released and picked again."""
    relay = Relay(RELAY_HOST)
    cluster = rt.Cluster(build_dir, extra_env={"RINGGATE_GAMESRV_PORT": str(relay.target_port)},
                         args={"gateway": ["--gamesrv-host", RELAY_HOST]})
    return cluster, relay


def fresh_login(cluster, name, password):
    """Log name in on a new connection once the link is back; the reply."""
    def attempt():
        c = cluster.client(name + "-again")
        reply = c.login(name, password)
        if rt.body_of(reply) != "login":
            c.close()
            return None
        return c, reply.login
    return eventually(attempt, what="login after the link came back")


def spoiled_earn(build_dir, mode):
    cluster, relay = relayed_cluster(build_dir)
    try:
        with cluster:
            name, password = "relayed-" + mode, "relay-pw-" + mode
            client = cluster.client(name)
            gold = expect(client.login(name, password), "login").self.gold
            gold = expect(client.earn(5), "earn").gold  # untouched: applied
            ups = cluster.log_text("gateway").count("gamesrv link up")

            relay.arm(mode)
            try:
                reply = client.request(timeout=5, earn=rt.client_pb2.EarnRequest(amount=1000))
                rt.log("the spoiled earn's reply:", reply)
            except AssertionError as exc:
                rt.log("the spoiled earn has no reply:", exc)
            assert relay.fired.wait(WAIT), "the relay never saw the earn"
            eventually(lambda: "does not open" in cluster.log_text("gamesrv"),
                       what="gamesrv's line about the spoiled frame")
            line = [l for l in cluster.log_text("gamesrv").splitlines() if "does not open" in l][0]
            assert "sealed frame #" in line and "closing the link" in line, line
            eventually(lambda: cluster.log_text("gateway").count("gamesrv link up") > ups,
                       what="the gateway's link back up")

            client2, login = fresh_login(cluster, name, password)
            allowed = (gold, gold + 1000) if mode == "replay" else (gold,)
            assert login.self.gold in allowed, (login.self.gold, allowed)
            assert cluster.db_player(name)["gold"] == login.self.gold
            # The link carries requests again.
            after = expect(client2.earn(3), "earn").gold
            assert after == login.self.gold + 3, after
            client2.close()
            client.close()
    finally:
        relay.close()


def relay_flip(build_dir):
    spoiled_earn(build_dir, "flip")


def relay_replay(build_dir):
    spoiled_earn(build_dir, "replay")


def relay_reorder(build_dir):
    spoiled_earn(build_dir, "reorder")


def relay_inject(build_dir):
    spoiled_earn(build_dir, "inject")


# ---- the capture ---------------------------------------------------------------

# The links captured, by name: the port that tells a packet's link. None may
# hold the password or a player's name in clear: the client link is TLS,
# the internal ones sealed.
def captured_links(cluster):
    return {"client": cluster.gateway_port,
            "gateway-gamesrv": cluster.gamesrv_port,
            "gamesrv-dbproxy": cluster.dbproxy_port}


class Capture:
    """tshark on lo, kept to the given ports, writing work_dir/lo.pcapng;
    skips the test when tshark is missing or may not capture here."""

    def __init__(self, work_dir, ports):
        if not shutil.which("tshark"):
            rt.skip("tshark is not installed (Debian: tshark; tools/install-deps.sh)")
        self.path = os.path.join(work_dir, "lo.pcapng")
        self.err_path = os.path.join(work_dir, "tshark.err")
        flt = " or ".join("tcp port %d" % p for p in ports)
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(["tshark", "-i", "lo", "-f", flt, "-w", self.path, "-q"],
                                         stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + WAIT
        while "Capture started" not in self._err() and "Capturing on" not in self._err():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                rt.skip("tshark cannot capture on lo here: " + self._err().strip()[-300:])
            time.sleep(0.1)
        time.sleep(0.5)  # the capture filter is in place once it says so

    def _err(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            time.sleep(0.5)  # the last segments reach the capture
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)

    def payloads(self, port):
        """Every TCP payload to or from port, in capture order, joined."""
        out = subprocess.run(["tshark", "-r", self.path, "-Y", "tcp.port == %d && tcp.len > 0" % port,
                              "-T", "fields", "-e", "tcp.payload"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
        return b"".join(bytes.fromhex(line.replace(":", "")) for line in out.stdout.split())


def capture_clear(build_dir):
    name, password = "capture-kiwi", "Pw-of-capture-Zebra91"
    # Clients over TLS, every internal link sealed: nothing in clear anywhere.
    with rt.Cluster(build_dir, extra_env={"RINGGATE_GATEWAY_TLS": "on"}) as cluster:
        links = captured_links(cluster)
        capture = Capture(rt.temp_dir("ringgate-capture-"), list(links.values()))
        try:
            a = cluster.client(name, ca_file=cluster.ca_file)
            expect(a.login(name, password), "login")
            b = cluster.client("capture-peer", ca_file=cluster.ca_file)
            expect(b.login("capture-peer", "peer-pw-Quince7"), "login")
            expect(a.chat("hello from " + name), "chat")
            expect(b.chat("hello back"), "chat")
            a.close()
            b.close()
        finally:
            capture.stop()
    for link, port in links.items():
        data = capture.payloads(port)
        rt.log("%s (port %d): %d payload bytes captured" % (link, port, len(data)))
        assert len(data) > 200, "%s: too little captured to judge" % link
        found = [w for w in (name, password, "peer-pw-Quince7") if w.encode() in data]
        assert not found, "%s carries %s in clear" % (link, found)
    # Not vacuous: the client link's capture begins with a TLS handshake
    # record, and the internal links' logins went through it (the players
    # logged in), sealed.
    assert capture.payloads(links["client"])[:2] == b"\x16\x03", "no TLS handshake captured"


rt.main(cases={"relay_flip": relay_flip, "relay_replay": relay_replay,
               "relay_reorder": relay_reorder, "relay_inject": relay_inject,
               "capture_clear": capture_clear})
