"""Cluster: a whole cluster run by deploy/ringgate in a private run
directory, as an operator runs it, for the end-to-end tests.

Backends: a cluster keeps its data in SQLite (the default) or PostgreSQL.
RINGGATE_TEST_BACKEND=postgres (CTest's tests labelled "postgres" set it)
runs every Cluster of a test on PostgreSQL: deploy/ringgate's private
server in the run directory, or the server of Cluster(postgres_dsn=...).
A machine without PostgreSQL skips such a test (exit 77).
"""

import calendar
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

from . import procs
from .base import SOURCE_DIR, eventually, log, sanitizer_reports, skip, temp_dir
from .conn import GameClient

DEPLOY = os.path.join(SOURCE_DIR, "deploy", "ringgate")
PROCS = procs.PROCS

# The line deploy/ringgate writes to a log before each start of its process.
STARTING = re.compile(r"^=== (\S+) starting: .*$", re.M)

# One sample line of the Prometheus text format: name{labels} value.
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$')


def scrape(port, proc="process"):
    """{'name{labels}': value} from GET /metrics on 127.0.0.1:port;
    checks the status, the content type and every line's form."""
    url = "http://127.0.0.1:%d/metrics" % port
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200, resp.status
        ctype = resp.headers["Content-Type"]
        assert ctype.startswith("text/plain; version=0.0.4"), ctype
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "%s: not a sample line: %r" % (proc, line)
        samples[m.group(1)] = float(m.group(2))
    return samples


def test_backend():
    """The backend a test's clusters use: RINGGATE_TEST_BACKEND, default sqlite."""
    backend = os.environ.get("RINGGATE_TEST_BACKEND", "sqlite")
    if backend not in ("sqlite", "postgres"):
        raise AssertionError("RINGGATE_TEST_BACKEND must be sqlite or postgres, not %r"
                             % backend)
    return backend


def require_postgres():
    """Skip the test (77) when PostgreSQL's server or psycopg2 is missing."""
    # Imported here, not with the package: `python3 -m ringgate_test.postgres`
    # must not find the module loaded already.
    from . import postgres
    reason = postgres.missing_reason()
    if reason is None:
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            reason = "Python's psycopg2 is missing (tools/install-deps.sh: python3-psycopg2)"
    if reason:
        skip(reason)


def any_port_env():
    """The environment that has deploy/ringgate run every process (every
    instance of a topology too) on any free port and admin port (the
    kernel's pick, which each process records in the run directory): no
    test binds a port and releases it."""
    env = {}
    for proc in PROCS:
        env["RINGGATE_%s_PORT" % proc.upper()] = "0"
        env["RINGGATE_%s_ADMIN_PORT" % proc.upper()] = "any"
    env["RINGGATE_GATEWAY_WS_PORT"] = "0"
    return env


def instance_names(kind, count):
    """deploy/ringgate's names of count instances of kind: gateway,
    gateway-2, ..."""
    return [kind if i == 1 else "%s-%d" % (kind, i) for i in range(1, count + 1)]


def recorded_port(run_dir, proc, kind="port"):
    """The port proc (an instance name: gateway-2) recorded in
    deploy/ringgate's run_dir: its listening port (kind "port") or its
    admin port ("admin-port")."""
    port = procs.port_in(os.path.join(run_dir, "%s.%s" % (proc, kind)))
    if port is None:
        raise AssertionError("%s has recorded no %s in %s" % (proc, kind, run_dir))
    return port


class AdminPorts:
    """admin_ports[proc]: proc's admin port as recorded in run_dir now."""

    def __init__(self, run_dir):
        self.run_dir = run_dir

    def __getitem__(self, proc):
        return recorded_port(self.run_dir, proc, "admin-port")


def db_query(sql, params=(), postgres_dsn=None, sqlite_path=None):
    """The rows of a query on a cluster's database: the PostgreSQL server
    at postgres_dsn, else the SQLite file at sqlite_path (beside the
    running dbproxy, which WAL allows). sql uses ? for parameters."""
    if postgres_dsn:
        import psycopg2
        db = psycopg2.connect(postgres_dsn)
        try:
            with db, db.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchall()
        finally:
            db.close()
    db = sqlite3.connect(sqlite_path, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


# ---- the cluster -----------------------------------------------------------

class Cluster:
    """A cluster run by deploy/ringgate in its own temporary run directory,
    on any free ports (read back as port(proc), gateway_port, gamesrv_port,
    dbproxy_port and admin_ports[proc]). Use as a context manager: it is
    always brought down, and a sanitizer report in any log fails the test.

    Each process runs at log_level (None: the config file's) with the
    tests' settings (procs); the links keep the processes' heartbeat and
    dead times, but for the gateway's 200/1000 ms (a dead gamesrv noticed
    quickly) and gamesrv's 200 ms heartbeat, unless link_ms
    = (heartbeat_ms, dead_ms) sets them for every link end. args: {process:
    [flags]} added to a process's command line; extra_env: environment
    variables for deploy/ringgate (RINGGATE_<PROCESS>_ARGS replaces all of
    a process's flags). backend: "sqlite" or "postgres" (default:
    test_backend()); postgres_dsn: the PostgreSQL server to use (default:
    deploy's private one in the run directory).

    gateways, shards: the topology ([topology] through
    RINGGATE_TOPOLOGY_*: that many gateways and gamesrv shards on
    loopback); self.instances names every process (dbproxy, gamesrv,
    gamesrv-2, ..., gateway, gateway-2, ...), which port(), kill(),
    log_text() and admin_ports[] take."""

    def __init__(self, build_dir, extra_env=None, link_ms=None, args=None, log_level="debug",
                 backend=None, postgres_dsn=None, gateways=1, shards=1):
        self.backend = backend or test_backend()
        if self.backend == "postgres":
            require_postgres()
        self.run_dir = temp_dir("ringgate-run-")
        self.shards = instance_names("gamesrv", shards)
        self.gateways = instance_names("gateway", gateways)
        self.instances = ["dbproxy"] + self.shards + self.gateways
        self.env = dict(os.environ)
        self.env.update(any_port_env())
        if gateways > 1:
            self.env["RINGGATE_TOPOLOGY_GATEWAYS"] = ",".join(["127.0.0.1:0"] * gateways)
        if shards > 1:
            self.env["RINGGATE_TOPOLOGY_SHARDS"] = ",".join(["127.0.0.1:0"] * shards)
        self.env.update({
            "RINGGATE_RUN_DIR": self.run_dir,
            "RINGGATE_BUILD_DIR": build_dir,
            "RINGGATE_BUILD": "0",  # CTest built them; never build from a test
        })
        # The gateway notices a dead gamesrv within a second, so gamesrv's
        # heartbeats must come well within that, not every second.
        default_link_ms = {"gateway": (200, 1000), "gamesrv": (200, None),
                           "dbproxy": (None, None)}
        for name in PROCS:
            heartbeat_ms, dead_ms = link_ms or default_link_ms[name]
            flags = procs.settings_args(name, log_level=log_level, heartbeat_ms=heartbeat_ms,
                                        dead_ms=dead_ms)
            self.env["RINGGATE_%s_ARGS" % name.upper()] = " ".join(
                flags + (args or {}).get(name, []))
        self.env["RINGGATE_BACKEND"] = self.backend
        if postgres_dsn:
            self.env["RINGGATE_POSTGRES_DSN"] = postgres_dsn
        self.env.update(extra_env or {})
        # Where the tests read the database: deploy's private server in the
        # run directory unless a server was given.
        self.postgres_dsn = postgres_dsn or (
            "host=%s port=5432 user=postgres dbname=ringgate"
            % os.path.join(self.run_dir, "postgres", "sock"))

    def deploy(self, *args, check=True):
        log("deploy/ringgate", *args)
        proc = subprocess.run([DEPLOY] + list(args), env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        sys.stdout.write(proc.stdout)
        if check and proc.returncode != 0:
            raise AssertionError("deploy/ringgate %s failed (%d)" % (args, proc.returncode))
        return proc

    def up(self):
        """deploy/ringgate up, then wait until every link has finished its
        Hello (deploy only waits for ports and TCP links), so the first
        request of a test never races the handshakes."""
        before = {proc: len(self.log_text(proc)) for proc in self.instances}
        self.deploy("up")
        db_link_up = re.compile(r"dbproxy link \S+ up")
        for shard in self.shards:
            eventually(lambda: db_link_up.search(self.log_text(shard)[before[shard]:]),
                       what="%s's dbproxy link up" % shard)
        for gateway in self.gateways:
            if len(self.shards) == 1:
                eventually(lambda: "gamesrv link up" in self.log_text(gateway)[before[gateway]:],
                           what="%s's gamesrv link up" % gateway)
            else:
                eventually(lambda: self.links_up(gateway) == len(self.shards),
                           what="%s's links to every shard up" % gateway)

    def links_up(self, gateway):
        """How many of its shard links the gateway says are up (its
        ringgate_gateway_shard_link_up{shard="i"} gauges)."""
        samples = self.metrics(gateway)
        return sum(1 for i in range(1, len(self.shards) + 1)
                   if samples.get('ringgate_gateway_shard_link_up{shard="%d"}' % i) == 1)

    def down(self):
        self.deploy("down", check=False)

    def port(self, proc):
        """The port proc listens on (kept across its restarts by `up`)."""
        return recorded_port(self.run_dir, proc)

    gateway_port = property(lambda self: self.port("gateway"))
    gamesrv_port = property(lambda self: self.port("gamesrv"))
    dbproxy_port = property(lambda self: self.port("dbproxy"))
    # The gateway's WebSocket port (the world page), recorded like the others.
    ws_port = property(lambda self: recorded_port(self.run_dir, "gateway", "ws-port"))

    @property
    def admin_ports(self):
        """Each process's metrics port (GET /metrics), by name, read when
        looked up (a process picks a new one at each start)."""
        return AdminPorts(self.run_dir)

    def pid(self, proc):
        with open(os.path.join(self.run_dir, proc + ".pid")) as f:
            return int(f.read().strip())

    def kill(self, proc, sig=signal.SIGKILL):
        pid = self.pid(proc)
        log("kill -%d %s (pid %d)" % (sig, proc, pid))
        os.kill(pid, sig)
        eventually(lambda: not procs.alive(pid), what=proc + " exit")

    def log_text(self, proc):
        try:
            with open(os.path.join(self.run_dir, proc + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def lease_runs(self):
        """Every run of every shard in its log (deploy/ringgate appends a
        "=== <time> starting:" line before each), as leases.Run: an earlier
        run ends at the next one's start, the last one runs on unless its
        process is gone. What leases.assert_online_once checks."""
        from .leases import Run
        runs = []
        for i, shard in enumerate(self.shards, 1):
            parts = STARTING.split(self.log_text(shard))
            starts = [calendar.timegm(time.strptime(t, "%Y-%m-%dT%H:%M:%SZ"))
                      for t in parts[1::2]]
            for k, text in enumerate(parts[2::2]):
                if k + 1 < len(starts):
                    end = starts[k + 1]
                else:
                    alive = os.path.exists(os.path.join(self.run_dir, shard + ".pid")) and \
                        procs.alive(self.pid(shard))
                    end = None if alive else time.time()
                runs.append(Run(i, text, end))
        return runs

    def db_rows(self, sql, params=()):
        """The rows of a query on the cluster's database (db_query)."""
        if self.backend == "postgres":
            return db_query(sql, params, postgres_dsn=self.postgres_dsn)
        return db_query(sql, params, sqlite_path=os.path.join(self.run_dir, "ringgate.db"))

    def db_player(self, name):
        """The player's row as the database says: a dict of gold, zone, x, y."""
        rows = self.db_rows("SELECT gold, zone, x, y FROM players WHERE name = ?", (name,))
        return dict(zip(("gold", "zone", "x", "y"), rows[0]))

    def metrics(self, proc):
        """proc's /metrics samples (scrape())."""
        return scrape(self.admin_ports[proc], proc)

    @property
    def ca_file(self):
        """The local CA deploy/ringgate made for a gateway with TLS on."""
        return os.path.join(self.run_dir, "tls", "ca.pem")

    def client(self, name="client", source=None, ca_file=None, server_name="localhost",
               gateway="gateway"):
        """A GameClient on the gateway (an instance name: gateway-2);
        source: the loopback address to connect from (127.0.0.x), so that
        per-address limits see another machine. With ca_file, over TLS (a
        gateway with --tls on)."""
        return GameClient(self.port(gateway), name, source, ca_file=ca_file,
                          server_name=server_name)

    def ws_client(self, name="ws-client", source=None, ca_file=None):
        """A WsGameClient on the gateway's WebSocket port; with ca_file,
        over TLS (wss)."""
        from .ws import WsGameClient
        return WsGameClient(self.ws_port, name, source, ca_file=ca_file)

    def dump_logs(self):
        for proc in self.instances:
            text = self.log_text(proc)
            print("----- %s.log (last 60 lines) -----" % proc)
            print("\n".join(text.splitlines()[-60:]))
        pg_log = os.path.join(self.run_dir, "postgres", "server.log")
        if os.path.exists(pg_log):
            with open(pg_log, errors="replace") as f:
                print("----- postgres/server.log (last 30 lines) -----")
                print("".join(f.readlines()[-30:]))

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.dump_logs()
            self.down()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs()
        self.down()
        reports = [line for proc in self.instances
                   for line in sanitizer_reports(proc, self.log_text(proc))]
        if reports and exc_type is None:
            self.dump_logs()
            raise AssertionError("sanitizer reports:\n" + "\n".join(reports))
        return False


def on_cluster(case, **cluster_args):
    """case(cluster) as an rt.main() case: fn(build_dir) runs it on a
    Cluster of its own (cluster_args: Cluster's keywords)."""
    def fn(build_dir):
        with Cluster(build_dir, **cluster_args) as cluster:
            case(cluster)
    return fn
