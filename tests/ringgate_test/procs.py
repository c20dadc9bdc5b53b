"""Starting gateway, gamesrv and dbproxy for tests: the one place that
knows their command-line flags, how each tells which port it listens on,
and how each is stopped. A test names a process and the few settings it is
about; everything else is here.

Ports: a process listens on port 0 (the kernel picks a free one) and
writes the port it got to --port-file once it listens (its admin port,
when asked for with --admin-port 0, to --admin-port-file). No test binds
a port, releases it and hopes it is still free.
Every process started here is stopped when the test program ends, and
main() fails the test if any log holds a sanitizer report.
"""

import atexit
import collections
import os
import signal
import subprocess

from .base import SOURCE_DIR, WAIT, eventually, log, sanitizer_reports

# What the harness knows of each process (all listen on --port and write
# it to --port-file):
#   peer_flag   the flag that sets the port of the peer it dials
#   test_flags  flags every test wants (dbproxy: the cheap password hash)
Spec = collections.namedtuple("Spec", "peer_flag test_flags")
SPECS = {
    "gateway": Spec("--gamesrv-port", []),
    "gamesrv": Spec("--dbproxy-port", []),
    "dbproxy": Spec(None, ["--pwhash", "min"]),
}

# The processes, in the order a cluster starts them.
PROCS = ("dbproxy", "gamesrv", "gateway")

_children = []


def binary(build_dir, name):
    return os.path.join(build_dir, name, name)


def listen_args(port=0, port_file=None, admin_port=0, admin_port_file=None):
    """The flags that make a process listen on port (0: any), write that
    port to port_file, and serve GET /metrics on admin_port (0: nowhere,
    so that tests never meet on a fixed port; any free port when
    admin_port_file is given, which it is written to)."""
    args = ["--port", str(port)]
    if port_file:
        args += ["--port-file", port_file]
    if admin_port is not None:
        args += ["--admin-port", str(admin_port)]
    if admin_port_file:
        args += ["--admin-port-file", admin_port_file]
    return args


def port_in(path):
    """The port a process wrote to path (--port-file, --admin-port-file),
    or None while there is none."""
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def settings_args(name, peer_port=None, run_dir=None, log_level="debug", heartbeat_ms=100,
                  dead_ms=1500, insecure=False, secret_file=None):
    """The flags of process name's settings that tests set: peer_port,
    where its peer listens; run_dir, dbproxy's database directory; the log
    level; the links' heartbeat and dead times (None: the process's
    defaults); insecure, links without the shared-secret handshake (for
    scripted peers; the handshake has its own tests); secret_file, the
    cluster secret. Every test also gets the process's test_flags."""
    spec = SPECS[name]
    args = list(spec.test_flags)
    if peer_port is not None:
        args += [spec.peer_flag, str(peer_port)]
    if run_dir is not None:
        args += ["--run-dir", run_dir]
    if log_level:
        args += ["--log-level", log_level]
    if heartbeat_ms:
        args += ["--heartbeat-ms", str(heartbeat_ms)]
    if dead_ms:
        args += ["--dead-ms", str(dead_ms)]
    if insecure:
        args.append("--insecure-no-auth")
    if secret_file:
        args += ["--secret-file", secret_file]
    return args


def argv(name, build_dir, *extra, port=0, port_file=None, admin_port=0, admin_port_file=None,
         **settings):
    """The command line of process name: listen_args(), settings_args()
    (settings are its keywords), then the extra flags."""
    return ([binary(build_dir, name)] + listen_args(port, port_file, admin_port, admin_port_file)
            + settings_args(name, **settings) + list(extra))


class Process:
    """One process started with args; its stdout and stderr go to log_path
    (appended to, so that a process started again on the same files has
    one log). port_file: where listen_args() asked it to write its port."""

    def __init__(self, name, args, log_path, port_file=None, host=None):
        self.name = name
        if host is not None:
            args = host.wrap(args)  # `ip netns exec` execs it: same pid
        self.log_path = log_path
        self.port_file = port_file
        self.port = None
        self.ws_port = None  # a gateway's WebSocket port (procs.start)
        self.log_start = os.path.getsize(log_path) if os.path.exists(log_path) else 0
        log("starting", " ".join(args))
        with open(log_path, "ab") as logf:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        _children.append(self)
        if host is not None:
            host.adopt(self)

    def alive(self):
        return self.proc.poll() is None

    def text(self):
        """The log of this run of the process."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def count(self, text):
        return self.text().count(text)

    def wait_listening(self, timeout=WAIT):
        """The port it listens on (from its port file), once it does; fails
        if it exits first."""
        def port():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %d at start:\n%s"
                                     % (self.name, self.proc.returncode, self.text()))
            return port_in(self.port_file)
        self.port = eventually(port, timeout=timeout, what=self.name + " listening",
                               interval=0.05)
        return self.port

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=WAIT):
        """Its exit code once it exits; SIGKILL and AssertionError if it
        has not within timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("%s did not exit within %s s" % (self.name, timeout))

    def stop(self, sig=signal.SIGTERM, timeout=WAIT):
        """Send sig (SIGTERM: drain and exit) and wait(timeout)."""
        self.send_signal(sig)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL, at once; its exit code."""
        return self.stop(signal.SIGKILL)

    def sanitizer_reports(self):
        return sanitizer_reports(self.name, self.text())


def start(name, build_dir, work_dir, *extra, host=None, **settings):
    """Start process name (gateway, gamesrv, dbproxy) from build_dir with
    its files in work_dir (<name>.log, <name>.port; dbproxy's database in
    work_dir/run unless run_dir is given) and return it once it listens,
    its port in .port. settings are argv()'s keywords. host: a
    netns.Host to run it on (it listens on the host's address)."""
    port_file = os.path.join(work_dir, name + ".port")
    ws_port_file = os.path.join(work_dir, name + ".ws-port")
    for f in (port_file, ws_port_file):
        if os.path.exists(f):
            os.unlink(f)  # a second life on the same files
    if name == "dbproxy":
        settings.setdefault("run_dir", os.path.join(work_dir, "run"))
    if name == "gateway":
        # Any free WebSocket port (the default would make two tests, or a
        # deploy, meet on 7778), the page from the sources; the gateway
        # writes it before its --port-file, so it is there once that is.
        extra = ("--ws-port", "0", "--ws-port-file", ws_port_file,
                 "--web-dir", os.path.join(SOURCE_DIR, "web")) + extra
    if host is not None:
        extra = ("--host", host.addr) + extra
    p = Process(name, argv(name, build_dir, *extra, port_file=port_file, **settings),
                os.path.join(work_dir, name + ".log"), port_file, host)
    p.wait_listening()
    if name == "gateway" and os.path.exists(ws_port_file):
        with open(ws_port_file) as f:
            p.ws_port = int(f.read())
    return p


def children():
    """Every process started so far."""
    return list(_children)


def stop_all():
    """Stop every process still running (SIGTERM, then SIGKILL)."""
    for p in _children:
        if p.alive():
            try:
                p.stop()
            except AssertionError as err:
                print(err)


atexit.register(stop_all)


def alive(pid):
    """The process pid exists and has not exited (a zombie has)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def all_threads_stopped(pid):
    """Every thread of pid is in state T: SIGSTOP has taken effect (a
    signal stops the threads one by one)."""
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        with open("%s/%s/stat" % (task_dir, tid)) as f:
            if f.read().rsplit(")", 1)[1].split()[0] != "T":
                return False
    return True
