"""A private PostgreSQL 15 for tests: the one place that knows how to start,
stop, kill and restart one (initdb into a temporary directory, the server
listening on a Unix socket in that directory, and on 127.0.0.1 only when
asked, so that tests never meet on a port or touch the machine's own
cluster on 5432).

    pg = postgres.start()          # skips the test (exit 77) without binaries
    pg.dsn                         # a libpq connection string
    pg.kill9(); pg.restart()       # crash recovery, as a power cut would
    pg.stop()                      # also done at exit for every server

initdb refuses to run as root: as root the data directory and the server
belong to the package's "postgres" user (runuser); otherwise to the caller.

As a command, it runs a program with a server for it (the C store tests):
    python3 -m ringgate_test.postgres -- PROGRAM ARGS...
sets RINGGATE_TEST_PG_DSN for PROGRAM, exits with its status (77 without
PostgreSQL) and removes the server.
"""

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from .base import skip

# Where Debian's postgresql-15 puts its server binaries; RINGGATE_PG_BIN
# overrides (another version or layout).
DEFAULT_BIN = "/usr/lib/postgresql/15/bin"
# The unprivileged user that owns the server when tests run as root.
SERVER_USER = "postgres"
# Seconds pg_ctl may take to start or stop a server (sanitizer runs on a
# loaded machine included).
START_WAIT = 60

_servers = []


def bin_dir():
    """The directory of initdb and pg_ctl, or None when they are absent."""
    candidates = [os.environ.get("RINGGATE_PG_BIN")] if os.environ.get("RINGGATE_PG_BIN") \
        else [DEFAULT_BIN] + sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for path in candidates:
        if path and os.access(os.path.join(path, "initdb"), os.X_OK) \
                and os.access(os.path.join(path, "pg_ctl"), os.X_OK):
            return path
    return None


def missing_reason():
    """Why no server can run here (a skip message), or None."""
    if bin_dir() is None:
        return ("PostgreSQL server binaries not found (%s; tools/install-deps.sh "
                "installs postgresql)" % DEFAULT_BIN)
    if os.geteuid() == 0:
        try:
            import pwd
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return "running as root and there is no %r user for PostgreSQL" % SERVER_USER
    return None


def _free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the server
    refuses to start if it was taken since; start() then tries another)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One private server. Attributes: dir (its temporary directory),
    data, sock (the socket directory), port, tcp (listening on
    127.0.0.1:port too), dsn."""

    def __init__(self, tcp=False, settings=None):
        self.bin = bin_dir()
        self.dir = tempfile.mkdtemp(prefix="ringgate-pg-")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.log_path = os.path.join(self.dir, "server.log")
        self.tcp = tcp
        self.port = _free_port() if tcp else 5432
        self.settings = dict(settings or {})
        self.running = False
        os.mkdir(self.sock)
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam(SERVER_USER)
            for path in (self.dir, self.sock):
                os.chown(path, pw.pw_uid, pw.pw_gid)

    @property
    def dsn(self):
        """A libpq connection string to the server's "postgres" database."""
        host = "127.0.0.1" if self.tcp else self.sock
        return "host=%s port=%d user=postgres dbname=postgres connect_timeout=5" % (
            host, self.port)

    def _run(self, args, check=True, timeout=START_WAIT):
        """Run a server binary as the server's owner."""
        cmd = [os.path.join(self.bin, args[0])] + list(args[1:])
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", SERVER_USER, "--"] + cmd
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, check=check, timeout=timeout)

    def initdb(self):
        """Make the data directory: a copy of a template made once per
        machine (initdb takes seconds on a loaded machine, a copy a
        fraction of one)."""
        template = _template(self)
        subprocess.run(["cp", "-a", template, self.data], check=True, timeout=START_WAIT)

    def _options(self):
        opts = ["-c listen_addresses=%s" % ("127.0.0.1" if self.tcp else "''"),
                "-p %d" % self.port, "-k %s" % self.sock]
        opts += ["-c %s=%s" % (k, v) for k, v in self.settings.items()]
        return " ".join(opts)

    def start(self):
        """Start the server (after initdb, a stop or a kill9) and wait until
        it accepts connections. Raises RuntimeError with its log's end."""
        res = self._run(["pg_ctl", "-D", self.data, "-l", self.log_path, "-w", "-t",
                         str(START_WAIT), "-o", self._options(), "start"], check=False)
        if res.returncode != 0:
            raise RuntimeError("pg_ctl start failed (%d): %s\n%s" % (
                res.returncode, res.stdout.strip(), self.log_tail()))
        self.running = True

    def stop(self, mode="fast"):
        """Stop the server (pg_ctl -m fast: open sessions are ended)."""
        if self.running:
            self._run(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", str(START_WAIT),
                       "stop"], check=False)
            self.running = False

    def pid(self):
        """The postmaster's pid, or None when it is not running."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill9(self):
        """SIGKILL the postmaster and its children, as a crash would; the
        data directory keeps what was committed (start() recovers it)."""
        pid = self.pid()
        if pid is None:
            return
        children = subprocess.run(["pgrep", "-P", str(pid)], stdout=subprocess.PIPE,
                                  text=True, check=False).stdout.split()
        for p in [pid] + [int(c) for c in children]:
            try:
                os.kill(p, 9)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        self.running = False

    def restart(self):
        """Start again after stop() or kill9() (crash recovery runs)."""
        self.stop()
        self.start()

    def psql(self, sql, db="postgres"):
        """Run SQL with psql (-At: bare values) and return its output."""
        psql = os.path.join(self.bin, "psql")
        res = subprocess.run([psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d",
                              self.dsn.replace("dbname=postgres", "dbname=" + db), "-c", sql],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=START_WAIT)
        if res.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, res.stdout.strip()))
        return res.stdout.strip()

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no server log)"

    def remove(self):
        """Stop the server and delete its directory."""
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)
        if self in _servers:
            _servers.remove(self)


def _template(srv):
    """The path of a freshly initdb'd data directory to copy, made once
    (under a lock, so that parallel tests make it once) in the temp dir."""
    import fcntl
    base = os.path.join(tempfile.gettempdir(), "ringgate-pg-template-%d-%s" % (
        os.geteuid(), os.path.basename(os.path.dirname(srv.bin))))
    data = os.path.join(base, "data")
    os.makedirs(base, exist_ok=True)
    with open(base + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(data, "PG_VERSION")):
            shutil.rmtree(data, ignore_errors=True)
            if os.geteuid() == 0:
                import pwd
                pw = pwd.getpwnam(SERVER_USER)
                os.chown(base, pw.pw_uid, pw.pw_gid)
            tmp = data + ".new"
            shutil.rmtree(tmp, ignore_errors=True)
            srv._run(["initdb", "-D", tmp, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-instructions",
                      # test data need not survive a power cut of the machine
                      "--no-sync"])
            os.rename(tmp, data)
    return data


def start(tcp=False, settings=None):
    """A new running server (see Server), removed at exit. Ends the test
    program as skipped (77) when PostgreSQL is not installed here."""
    reason = missing_reason()
    if reason:
        skip(reason)
    for attempt in range(3):
        srv = Server(tcp=tcp, settings=settings)
        _servers.append(srv)
        try:
            srv.initdb()
            srv.start()
            return srv
        except RuntimeError:
            srv.remove()
            if attempt == 2 or not tcp:  # only a taken TCP port is worth a retry
                raise
    raise AssertionError("unreachable")


@atexit.register
def _remove_all():
    for srv in list(_servers):
        srv.remove()


def _main(argv):
    if len(argv) < 2 or argv[0] != "--":
        print("usage: python3 -m ringgate_test.postgres -- PROGRAM ARGS...")
        return 2
    srv = start()
    env = dict(os.environ, RINGGATE_TEST_PG_DSN=srv.dsn)
    try:
        return subprocess.run(argv[1:], env=env, check=False).returncode
    finally:
        srv.remove()


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
