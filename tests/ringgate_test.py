"""Support for the end-to-end cluster tests: a cluster run through
deploy/ringgate in a private run directory on free ports, and a game client
speaking the client protocol (docs/protocol.md) with Python protobuf.

Every wait here is bounded by an explicit deadline, so a missing reply fails
the test with a message instead of hanging it; CTest's TIMEOUT is the outer
bound. No test measures time: deadlines only stop waiting.

The Python bindings are generated at test time with protoc into a temporary
directory (never committed), from the same proto/ files the C code uses.
"""

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get("RINGGATE_SOURCE_DIR",
                            os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(SOURCE_DIR, "deploy", "ringgate")

client_pb2 = None
internal_pb2 = None


def load_protos():
    """Generate and import client_pb2 / internal_pb2 (once per process)."""
    global client_pb2, internal_pb2
    if client_pb2 is not None:
        return
    out = tempfile.mkdtemp(prefix="ringgate-pb2-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out,
                    os.path.join(proto_dir, "client.proto"),
                    os.path.join(proto_dir, "internal.proto")], check=True)
    sys.path.insert(0, out)
    import client_pb2 as c  # noqa: E402 (generated just now)
    import internal_pb2 as i  # noqa: E402
    client_pb2, internal_pb2 = c, i


def free_ports(count):
    """Ports nobody listens on now (bound to port 0, then released)."""
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def log(*args):
    print("[test]", *args, flush=True)


# ---- framing -------------------------------------------------------------

def encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def parse_frame(buf):
    """(body, rest) for the first complete frame in buf, or (None, buf)."""
    length, shift = 0, 0
    for i, byte in enumerate(buf[:5]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            start = i + 1
            if len(buf) - start < length:
                return None, buf
            return bytes(buf[start:start + length]), buf[start + length:]
    if len(buf) >= 5:
        raise ValueError("bad varint length prefix")
    return None, buf


class Closed(Exception):
    """The gateway closed the connection."""


class GameClient:
    """One client connection. request() sends a ClientMessage and returns
    the ServerMessage that answers it; everything else that arrives (pushes)
    is kept in self.pushes, in order."""

    def __init__(self, port, name="client"):
        load_protos()
        self.name = name
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.seq = 0
        self.pushes = []
        self.replies = {}
        self.closed = False

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, msg):
        body = msg.SerializeToString()
        self.sock.sendall(encode_varint(len(body)) + body)

    def _read_some(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            raise Closed(self.name + ": connection closed by the gateway")
        self.buf += data
        while True:
            body, self.buf = parse_frame(self.buf)
            if body is None:
                break
            msg = client_pb2.ServerMessage()
            msg.ParseFromString(body)
            if msg.seq:
                self.replies[msg.seq] = msg
            else:
                self.pushes.append(msg)
        return True

    def wait_reply(self, seq, timeout=15):
        """The reply to request seq."""
        deadline = time.monotonic() + timeout
        while seq not in self.replies:
            if not self._read_some(deadline):
                raise AssertionError("%s: no reply to seq %d within %ss"
                                     % (self.name, seq, timeout))
        return self.replies.pop(seq)

    def request(self, timeout=15, **body):
        """request(move=MoveRequest(x=1, y=2)) -> the reply ServerMessage."""
        self.seq += 1
        self.send(client_pb2.ClientMessage(seq=self.seq, **body))
        return self.wait_reply(self.seq, timeout)

    def wait_push(self, predicate, timeout=15, what="push"):
        """The first push (in arrival order, consumed) that predicate accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for i, push in enumerate(self.pushes):
                if predicate(push):
                    del self.pushes[i]
                    return push
            if not self._read_some(deadline):
                raise AssertionError("%s: no %s within %ss; pushes seen: %s"
                                     % (self.name, what, timeout, self.pushes))

    def wait_closed(self, timeout=15):
        deadline = time.monotonic() + timeout
        try:
            while self._read_some(deadline):
                pass
        except Closed:
            return
        raise AssertionError(self.name + ": connection still open")

    # -- game verbs ----------------------------------------------------------

    def login(self, name, password):
        return self.request(login=client_pb2.LoginRequest(name=name, password=password))

    def move(self, x, y):
        return self.request(move=client_pb2.MoveRequest(x=x, y=y))

    def chat(self, text):
        return self.request(chat=client_pb2.ChatRequest(text=text))

    def earn(self, amount):
        return self.request(earn=client_pb2.EarnRequest(amount=amount))

    def ping(self):
        return self.request(ping=client_pb2.PingRequest(client_time=1))

    def logout(self):
        return self.request(logout=client_pb2.LogoutRequest())


def body_of(msg):
    return msg.WhichOneof("body")


def expect(msg, body):
    """Assert msg carries body (e.g. "login"); return that body."""
    got = body_of(msg)
    if got != body:
        raise AssertionError("expected %s, got %s: %s" % (body, got, msg))
    return getattr(msg, body)


def expect_error(msg, code_name):
    got = body_of(msg)
    if got != "error" or msg.error.code != client_pb2.ErrorCode.Value(code_name):
        raise AssertionError("expected Error %s, got %s" % (code_name, msg))
    return msg.error


def eventually(fn, timeout=30, what="condition", interval=0.1):
    """Call fn until it returns a true value (returned) or raises nothing
    past the deadline; the last exception is re-raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
            last = AssertionError(what + " never held")
        except (AssertionError, OSError, Closed) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise last
        time.sleep(interval)


def all_threads_stopped(pid):
    """Every thread of pid is in state T (SIGSTOP stops them one by one)."""
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        with open("%s/%s/stat" % (task_dir, tid)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True


# ---- the cluster -----------------------------------------------------------

class Cluster:
    """A cluster run by deploy/ringgate in its own temporary run directory,
    on free ports. Use as a context manager: it is always brought down."""

    def __init__(self, build_dir, extra_env=None):
        self.run_dir = tempfile.mkdtemp(prefix="ringgate-run-")
        (self.gateway_port, self.gamesrv_port, self.dbproxy_port,
         gateway_admin, gamesrv_admin, dbproxy_admin) = free_ports(6)
        # Each process's metrics port (GET /metrics), by process name.
        self.admin_ports = {"gateway": gateway_admin, "gamesrv": gamesrv_admin,
                            "dbproxy": dbproxy_admin}
        self.env = dict(os.environ)
        self.env.update({
            "RINGGATE_RUN_DIR": self.run_dir,
            "RINGGATE_BUILD_DIR": build_dir,
            "RINGGATE_BUILD": "0",  # CTest built them; never build from a test
            "RINGGATE_GATEWAY_PORT": str(self.gateway_port),
            "RINGGATE_GAMESRV_PORT": str(self.gamesrv_port),
            "RINGGATE_DBPROXY_PORT": str(self.dbproxy_port),
            "RINGGATE_GATEWAY_ADMIN_PORT": str(gateway_admin),
            "RINGGATE_GAMESRV_ADMIN_PORT": str(gamesrv_admin),
            "RINGGATE_DBPROXY_ADMIN_PORT": str(dbproxy_admin),
            # Tests: the cheap password hash, quick failure detection.
            "RINGGATE_DBPROXY_ARGS": "--pwhash min --log-level debug",
            "RINGGATE_GAMESRV_ARGS": "--log-level debug",
            "RINGGATE_GATEWAY_ARGS": "--log-level debug --heartbeat-ms 200 --dead-ms 1000",
        })
        self.env.update(extra_env or {})

    def deploy(self, *args, check=True):
        log("deploy/ringgate", *args)
        proc = subprocess.run([DEPLOY] + list(args), env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sys.stdout.write(proc.stdout)
        if check and proc.returncode != 0:
            raise AssertionError("deploy/ringgate %s failed (%d)" % (args, proc.returncode))
        return proc

    def up(self):
        """deploy/ringgate up, then wait until both links have finished
        their Hello (deploy only waits for ports and TCP links), so the
        first request of a test never races the handshakes."""
        before = {proc: len(self.log_text(proc)) for proc in ("gamesrv", "gateway")}
        self.deploy("up")
        db_link_up = re.compile(r"dbproxy link \S+ up")
        eventually(lambda: db_link_up.search(self.log_text("gamesrv")[before["gamesrv"]:]),
                   what="gamesrv's dbproxy link up")
        eventually(lambda: "gamesrv link up" in self.log_text("gateway")[before["gateway"]:],
                   what="gateway's gamesrv link up")

    def down(self):
        self.deploy("down", check=False)

    def pid(self, proc):
        with open(os.path.join(self.run_dir, proc + ".pid")) as f:
            return int(f.read().strip())

    def kill(self, proc, sig=signal.SIGKILL):
        pid = self.pid(proc)
        log("kill -%d %s (pid %d)" % (sig, proc, pid))
        os.kill(pid, sig)
        eventually(lambda: not os.path.exists("/proc/%d" % pid)
                   or open("/proc/%d/stat" % pid).read().split()[2] == "Z",
                   what=proc + " exit")

    def log_text(self, proc):
        try:
            with open(os.path.join(self.run_dir, proc + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def client(self, name="client"):
        return GameClient(self.gateway_port, name)

    def dump_logs(self):
        for proc in ("dbproxy", "gamesrv", "gateway"):
            text = self.log_text(proc)
            print("----- %s.log (last 60 lines) -----" % proc)
            print("\n".join(text.splitlines()[-60:]))

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.dump_logs()
            self.down()
            raise
        return self

    def sanitizer_reports(self):
        """Lines where ASan/UBSan/LSan reported something in any log."""
        found = []
        for proc in ("dbproxy", "gamesrv", "gateway"):
            for line in self.log_text(proc).splitlines():
                if "Sanitizer" in line or "runtime error:" in line:
                    found.append("%s: %s" % (proc, line))
        return found

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs()
        self.down()
        reports = self.sanitizer_reports()
        if reports and exc_type is None:
            self.dump_logs()
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))
        if exc_type is None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            print("run directory kept: " + self.run_dir)
        return False


def main(test_fn):
    """Run test_fn(build_dir) as a test program: exit 0 on success, 1 on a
    failure (with the traceback printed)."""
    import traceback
    if len(sys.argv) != 2:
        print("usage: %s BUILD_DIR" % sys.argv[0])
        sys.exit(2)
    try:
        test_fn(sys.argv[1])
    except Exception:
        traceback.print_exc()
        print("FAIL")
        sys.exit(1)
    print("PASS")
    sys.exit(0)
