"""The cluster on PostgreSQL (issue 13): the SQLite to PostgreSQL copy, the
start-up errors, deploy's private server, and the kill tests.

usage: test_postgres.py BUILD_DIR CASE   (one CTest test per case, label
"postgres"; each starts its own private PostgreSQL 15 through
ringgate_test.postgres or deploy/ringgate, and skips with 77 where there is
none).

The kill tests count, per earner (a player that earns in a loop, one earn
in flight at a time, amounts cycling through powers of two), what the
database must hold: every EarnReply carries the player's new total, so
between two acknowledged earns the total grows by the second one's amount
plus some of the unacknowledged earns in between (each at most once), and
the database's final gold is the last total plus some of those after it.
An acknowledged earn missing from that chain is lost; a growth no subset
of the unacknowledged earns explains is an earn paid twice (doubled).
Unacknowledged earns may or may not have been applied; that is allowed.
A load bot (tools/bot) runs beside the earners, for the load.
"""

import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ringgate_test as rt  # noqa: E402
from ringgate_test import body_of, expect, postgres  # noqa: E402
from ringgate_test.cluster import require_postgres  # noqa: E402

DB_COPY = os.path.join(rt.SOURCE_DIR, "tools", "db-copy")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
EARNERS = 6
EARN_PAUSE_S = 0.01


# ---- earners and their accounting ------------------------------------------------

class Earner(threading.Thread):
    """One new player earning in a loop; records every earn's amount and
    outcome ("earn" with the total, or an error name, or "closed")."""

    def __init__(self, port, name):
        super().__init__(daemon=True)
        self.port = port
        self.name_ = name
        self.log = []                # (amount, total or None)
        self.stop = threading.Event()
        self.failure = None
        self.client = None

    def login(self):
        while not self.stop.is_set():
            try:
                if self.client is None or self.client.closed:
                    self.client = rt.GameClient(self.port, self.name_)
                if body_of(self.client.login(self.name_, "earn-pw")) == "login":
                    return True
            except (rt.Closed, OSError):
                self.client = None
            time.sleep(0.1)
        return False

    def run(self):
        try:
            self.loop()
        except Exception as exc:  # reported by the test
            self.failure = repr(exc)

    def loop(self):
        if not self.login():
            return
        n = 0
        while not self.stop.is_set():
            amount = 1 << (n % 10)
            n += 1
            try:
                reply = self.client.earn(amount)
            except (rt.Closed, OSError):
                self.log.append((amount, None))
                self.client = None
                if not self.login():
                    return
                continue
            if body_of(reply) == "earn":
                self.log.append((amount, reply.earn.gold))
                time.sleep(EARN_PAUSE_S)
                continue
            self.log.append((amount, None))
            code = rt.client_pb2.ErrorCode.Name(reply.error.code)
            if code == "NOT_LOGGED_IN":
                self.client.close()
                self.client = None
                if not self.login():
                    return
            elif code not in ("SERVICE_UNAVAILABLE", "TIMEOUT", "SERVER_BUSY", "RATE_LIMITED"):
                raise AssertionError("%s: earn answered %s" % (self.name_, reply))
            else:
                time.sleep(0.05)

    def acks(self):
        return sum(1 for _, total in self.log if total is not None)


def subset_sums(amounts):
    sums = {0}
    for a in amounts:
        sums |= {s + a for s in sums}
    return sums


def account(earner, db_gold):
    """The chain check (see the top): a dict of counts for this earner."""
    out = dict(acked=0, found=0, lost=0, doubled=0, unacked=0)
    prev, pending = 0, []
    for amount, total in earner.log:
        if total is None:
            pending.append(amount)
            out["unacked"] += 1
            continue
        out["acked"] += 1
        grew = total - prev - amount
        if grew < 0:
            out["lost"] += 1
        elif grew in subset_sums(pending):
            out["found"] += 1
        else:
            out["found"] += 1
            out["doubled"] += 1
        prev, pending = total, []
    tail = db_gold - prev
    if tail < 0:
        out["lost"] += 1
    elif tail not in subset_sums(pending):
        out["doubled"] += 1
    return out


def start_earners(port, prefix):
    earners = [Earner(port, "%s%d" % (prefix, i)) for i in range(EARNERS)]
    for e in earners:
        e.start()
    rt.eventually(lambda: all(e.acks() > 0 for e in earners), what="every earner paid")
    return earners


def stop_earners(earners):
    for e in earners:
        e.stop.set()
    for e in earners:
        e.join(30)
        assert not e.is_alive(), e.name_ + " did not stop"
        assert e.failure is None, e.failure


def wait_acks_resume(earners, what, timeout=60):
    marks = [e.acks() for e in earners]
    rt.eventually(lambda: all(e.acks() > m for e, m in zip(earners, marks)), timeout=timeout,
                  what="earns acknowledged again after " + what)


def check_exactly_once(earners, gold_of, what):
    """Account every earner against the database; print and check the
    counts (no acknowledged earn lost, none doubled)."""
    totals = dict(acked=0, found=0, lost=0, doubled=0, unacked=0)
    for e in earners:
        counts = account(e, gold_of(e.name_))
        for k in totals:
            totals[k] += counts[k]
    rt.log("%s: acknowledged earns %d, found in the database %d, lost %d, doubled %d "
           "(unacknowledged %d)" % (what, totals["acked"], totals["found"], totals["lost"],
                                     totals["doubled"], totals["unacked"]))
    assert totals["lost"] == 0 and totals["doubled"] == 0, totals
    assert totals["found"] == totals["acked"], totals
    return totals


class Bot:
    """tools/bot as background load on the gateway (its figures are
    printed, not checked: the faults make some of its requests fail)."""

    def __init__(self, build_dir, port, seconds, prefix="load"):
        path = os.path.join(build_dir, "bench", "bot", "bot")
        if not os.access(path, os.X_OK):
            rt.skip("no load bot at %s (build the ringgate_bot target)" % path)
        self.proc = subprocess.Popen(
            [path, "--port", str(port), "--players", "20", "--ramp", "20", "--duration",
             str(seconds), "--move-rate", "2", "--earn-rate", "2", "--chat-rate", "0",
             "--timeout-ms", "10000", "--name-prefix", prefix],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self):
        try:
            out, _ = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        rt.log("load bot exit %d; its summary:\n%s" % (self.proc.returncode,
                                                       "\n".join(out.splitlines()[-12:])))


def pg_gold(pg):
    import psycopg2
    conn = psycopg2.connect(pg.dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT name, gold FROM players")
            return dict(cur.fetchall())
    finally:
        conn.close()


# ---- cases -----------------------------------------------------------------------

def case_copy_round_trip(build_dir):
    """Data made through a real SQLite cluster, copied with tools/db-copy
    (refused while dbproxy holds the file, and into a non-empty target),
    then the cluster started on PostgreSQL: the same passwords log in, the
    gold is equal, and earns go on (the epoch counter came along)."""
    require_postgres()
    pg = postgres.start()
    players = {"copy%d" % i: "pw-%d" % i for i in range(5)}
    gold = {}
    with rt.Cluster(build_dir, backend="sqlite") as sqlite_cluster:
        for n, (name, pw) in enumerate(players.items()):
            c = sqlite_cluster.client(name)
            expect(c.login(name, pw), "login")
            for amount in range(1, n + 3):
                gold[name] = expect(c.earn(amount), "earn").gold
            c.close()
        source = os.path.join(sqlite_cluster.run_dir, "ringgate.db")
        busy = subprocess.run([PYTHON, DB_COPY, "--from", source, "--to", pg.dsn],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert busy.returncode == 1 and "in use by a dbproxy" in busy.stdout, busy.stdout
        epoch = int(sqlite_cluster.db_rows(
            "SELECT value FROM counters WHERE name = 'op_epoch'")[0][0])
        sqlite_cluster.down()
        copied = subprocess.run([PYTHON, DB_COPY, "--from", source, "--to", pg.dsn],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rt.log(copied.stdout)
        assert copied.returncode == 0 and "5 players copied" in copied.stdout, copied.stdout
        again = subprocess.run([PYTHON, DB_COPY, "--from", source, "--to", pg.dsn],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert again.returncode == 1 and "not empty" in again.stdout, again.stdout
    with rt.Cluster(build_dir, backend="postgres", postgres_dsn=pg.dsn) as pg_cluster:
        for name, pw in players.items():
            c = pg_cluster.client(name)
            back = expect(c.login(name, pw), "login")
            assert not back.created and back.self.gold == gold[name], (name, back, gold)
            assert expect(c.earn(9), "earn").gold == gold[name] + 9
            c.close()
        c = pg_cluster.client("wrong")
        rt.expect_error(c.login("copy0", "not-the-password"), "WRONG_PASSWORD")
        new_epoch = int(pg_cluster.db_rows(
            "SELECT value FROM counters WHERE name = 'op_epoch'")[0][0])
        assert new_epoch > epoch, (epoch, new_epoch)


def dbproxy_start_error(build_dir, dsn):
    """dbproxy started on dsn: it must exit non-zero at once (well within
    a bound) with an ERROR saying why. Returns its output."""
    binary = os.path.join(build_dir, "dbproxy", "dbproxy")
    work = rt.temp_dir("dbproxy-dsn-")
    began = time.monotonic()
    res = subprocess.run([binary, "--port", "0", "--admin-port", "0", "--run-dir", work,
                          "--insecure-no-auth", "--backend", "postgres", "--postgres-dsn", dsn],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         timeout=60)
    took = time.monotonic() - began
    rt.log("dbproxy on %r: exit %d after %.1f s:\n%s" % (dsn, res.returncode, took, res.stdout))
    assert res.returncode != 0, res.stdout
    assert took < 30, took
    assert " ERROR " in res.stdout and "Sanitizer" not in res.stdout, res.stdout
    return res.stdout


def case_bad_dsn(build_dir):
    """Start-up errors beyond dbproxy.postgres.bad_start's (no DSN, one that
    does not parse, a port nobody listens on): a server that accepts the
    connection and never answers (dbproxy's own connect bound, the DSN
    giving none), and a database that does not exist. Each a clear error at
    start, never a hang."""
    require_postgres()
    pg = postgres.start()
    silent = rt.listen()  # connections complete in its backlog; nothing answers
    try:
        out = dbproxy_start_error(build_dir, "host=127.0.0.1 port=%d dbname=ringgate"
                                  % silent.getsockname()[1])
        assert "timeout" in out.lower(), out
    finally:
        silent.close()
    out = dbproxy_start_error(build_dir, pg.dsn.replace("dbname=postgres", "dbname=nosuchdb"))
    assert "nosuchdb" in out, out


def case_deploy_private(build_dir):
    """backend = postgres without a DSN: `up` makes and starts a private
    PostgreSQL in the run directory, `status` names it and dbproxy's
    reach of it, data survives down + up, `down` stops the server."""
    require_postgres()
    with rt.Cluster(build_dir, backend="postgres") as cluster:
        pg_dir = os.path.join(cluster.run_dir, "postgres")
        assert os.path.exists(os.path.join(pg_dir, "data", "PG_VERSION")), pg_dir
        status = cluster.deploy("status").stdout
        assert "database: postgres (private" in status, status
        rt.eventually(lambda: "dbproxy reaches it" in cluster.deploy("status", check=False).stdout,
                      what="status: dbproxy reaches the database")
        c = cluster.client("private")
        expect(c.login("private", "pw"), "login")
        assert expect(c.earn(11), "earn").gold == 11
        c.close()
        pid_file = os.path.join(pg_dir, "data", "postmaster.pid")
        cluster.down()
        assert not os.path.exists(pid_file), "the private PostgreSQL still runs after down"
        down_status = cluster.deploy("status", check=False)
        assert down_status.returncode != 0 and "server not running" in down_status.stdout, \
            down_status.stdout
        cluster.up()
        c = cluster.client("private-again")
        assert expect(c.login("private", "pw"), "login").self.gold == 11
        assert cluster.db_player("private")["gold"] == 11
        c.close()


def secret_file(work):
    path = os.path.join(work, "cluster.secret")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(os.urandom(32))
    return path


def case_two_dbproxies_kill9(build_dir):
    """Two dbproxies on one PostgreSQL behind one gamesrv (--dbproxies),
    earners and the load bot running: one dbproxy is stopped (its earns
    pile up on its socket, some maybe committed with the reply unsent),
    then killed with SIGKILL. gamesrv moves its players' held and new
    earns to the other; the earners go on being paid; the killed one is
    started again and takes its players back. Every acknowledged earn is
    in the database exactly once."""
    require_postgres()
    pg = postgres.start()
    work = rt.temp_dir("two-dbproxies-")
    settings = dict(secret_file=secret_file(work), log_level="info")
    pg_args = ("--backend", "postgres", "--postgres-dsn", pg.dsn)
    dbs = []
    for n in range(2):
        os.mkdir(os.path.join(work, "db%d" % n))
        dbs.append(rt.start("dbproxy", build_dir, os.path.join(work, "db%d" % n), *pg_args,
                            **settings))
    os.mkdir(os.path.join(work, "gs"))
    srv = rt.start("gamesrv", build_dir, os.path.join(work, "gs"), "--dbproxies",
                   ",".join("127.0.0.1:%d" % db.port for db in dbs), **settings)
    rt.eventually(lambda: srv.count(" up (role \"dbproxy\")") >= 2, what="both dbproxy links up")
    os.mkdir(os.path.join(work, "gw"))
    gw = rt.start("gateway", build_dir, os.path.join(work, "gw"), peer_port=srv.port,
                  **settings)
    rt.eventually(lambda: "gamesrv link up" in gw.text(), what="gateway's gamesrv link up")
    bot = Bot(build_dir, gw.port, 12)
    earners = start_earners(gw.port, "two")
    time.sleep(1.5)
    victim = dbs[0]
    victim.send_signal(signal.SIGSTOP)
    time.sleep(0.5)
    victim.kill()
    rt.log("dbproxy %d killed" % victim.port)
    wait_acks_resume(earners, "the kill")
    time.sleep(1.0)
    dbs[0] = rt.start("dbproxy", build_dir, os.path.join(work, "db0"), *pg_args,
                      port=victim.port, **settings)
    rt.eventually(lambda: srv.count(" up (role \"dbproxy\")") >= 3,
                  what="gamesrv's link to the restarted dbproxy")
    wait_acks_resume(earners, "the restart")
    time.sleep(1.0)
    stop_earners(earners)
    bot.finish()
    gold = pg_gold(pg)
    totals = check_exactly_once(earners, lambda name: gold.get(name, 0),
                                "two dbproxies, one killed")
    assert srv.count("down: moving") >= 1, "gamesrv moved no held earn"
    assert totals["acked"] > 0
    for p in (gw, srv, dbs[1], dbs[0]):
        assert p.stop() == 0, p.name + " did not exit 0"


def case_postgres_kill9(build_dir):
    """PostgreSQL itself killed (SIGKILL, as a crash) under load and started
    again: dbproxy answers SERVICE_UNAVAILABLE meanwhile, reconnects by
    itself, and every acknowledged earn is in the database exactly once."""
    require_postgres()
    pg = postgres.start()
    with rt.Cluster(build_dir, backend="postgres", postgres_dsn=pg.dsn,
                    log_level="info") as cluster:
        bot = Bot(build_dir, cluster.gateway_port, 12)
        earners = start_earners(cluster.gateway_port, "pgkill")
        time.sleep(1.5)
        pg.kill9()
        rt.log("PostgreSQL killed")
        time.sleep(1.0)
        pg.start()
        rt.log("PostgreSQL started again")
        wait_acks_resume(earners, "PostgreSQL's restart")
        time.sleep(1.0)
        stop_earners(earners)
        bot.finish()
        gold = pg_gold(pg)
        check_exactly_once(earners, lambda name: gold.get(name, 0), "PostgreSQL killed")


CASES = {
    "copy_round_trip": case_copy_round_trip,
    "bad_dsn": case_bad_dsn,
    "deploy_private": case_deploy_private,
    "two_dbproxies_kill9": case_two_dbproxies_kill9,
    "postgres_kill9": case_postgres_kill9,
}

if __name__ == "__main__":
    rt.main(cases=CASES)
