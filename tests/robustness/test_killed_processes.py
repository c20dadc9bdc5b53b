"""Killed and frozen processes under a steady load of clients earning gold
(issue 5).

Earner threads loop earn requests for their own players the whole time and
count, per player, the gold of every acknowledged earn (EarnReply) and of
every earn sent at all. An earn that was not acknowledged may or may not
have committed, so at the end, for every player,

    acknowledged gold <= gold in the database <= gold of every earn sent

with the database read straight from SQLite, and a fresh login must show
the database's figure. The faults, one after another on one cluster:

1. kill -9 dbproxy with an earn of every earner in flight (dbproxy is
   stopped first, so the earns are surely on its socket), restart it:
   gamesrv holds those earns and resends them, with the same op_id, once it
   has relinked by itself; each ends as an acknowledgement (or TIMEOUT at
   its deadline, never SERVICE_UNAVAILABLE), while an earn made while the
   link is down fails at once with SERVICE_UNAVAILABLE. Exactly once: with
   the earners idle before and after, the database's gold grew by the
   acknowledged gold plus at most the timed-out earns (none of those in
   the usual run), so a held earn paid twice fails the check.
2. kill -9 gamesrv: the gateway logs the link down and redials, every client
   gets the Error SERVICE_UNAVAILABLE push; once gamesrv is back (started
   again) new logins work.
3. kill -STOP gamesrv, then -CONT: the gateway and dbproxy log the link dead
   within dead-ms plus slack; a request meanwhile gets SERVICE_UNAVAILABLE
   or TIMEOUT instead of hanging.
4. kill -STOP dbproxy, then -CONT: gamesrv logs the link dead likewise, and
   an earn gets SERVICE_UNAVAILABLE or TIMEOUT (an earn already sent is
   held past the link's death, so TIMEOUT at its deadline).

Waits have deadlines only so that a missing outcome fails instead of
hanging; the detection times are printed and checked against a generous
sanity bound (dead-ms + SLACK_MS), nothing tighter.
"""
import datetime
import os
import re
import signal
import sqlite3
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ringgate_test as rt  # noqa: E402
from ringgate_test import body_of, expect  # noqa: E402

HEARTBEAT_MS = 200
DEAD_MS = 1000
SLACK_MS = 3000         # sanity bound on noticing a dead peer: DEAD_MS + this
EARNERS = 4
EARN_PAUSE_S = 0.02     # a steady load well inside the gateway's --msg-rate
LOAD_S = 1.0            # load before each fault
GAMESRV_AWAY_S = 1.5    # gamesrv stays dead this long: the gateway redials


class Earner(threading.Thread):
    """One player earning gold in a loop, logging in again whenever its
    session was dropped (gamesrv died or its link did)."""

    def __init__(self, cluster, index):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.name_ = "earner%d" % index
        self.acked = 0           # gold of acknowledged earns
        self.acks = 0
        self.sent = 0            # gold of every earn sent
        self.last_total = 0      # the newest EarnReply.gold
        self.errors = {}         # error code name -> count
        self.link_down_pushes = 0
        self.failure = None
        self.stop = threading.Event()
        self.client = None
        self.amount = 1 + index
        self.earns = 0           # earn requests sent
        self.in_flight = False
        self.outcomes = {}       # earn number -> "earn" or error code name
        self.pause = threading.Event()
        self.idle = threading.Event()

    def login(self):
        while not self.stop.is_set():
            try:
                if self.client is None or self.client.closed:
                    self.client = rt.GameClient(self.cluster.gateway_port, self.name_)
                reply = self.client.login(self.name_, "earn-pw")
            except (rt.Closed, OSError):
                self.client = None
                time.sleep(0.1)
                continue
            if body_of(reply) == "login":
                return True
            time.sleep(0.1)  # SERVICE_UNAVAILABLE while gamesrv is away
        return False

    def count_pushes(self):
        for push in self.client.take_pushes():
            if body_of(push) == "error" and push.error.code == rt.client_pb2.SERVICE_UNAVAILABLE:
                self.link_down_pushes += 1

    def run(self):
        try:
            self.loop()
        except Exception as exc:  # reported by the test
            self.failure = repr(exc)

    def loop(self):
        if not self.login():
            return
        while not self.stop.is_set():
            if self.pause.is_set():
                self.idle.set()
                time.sleep(0.01)
                continue
            self.idle.clear()
            amount = self.amount
            self.sent += amount
            self.earns += 1
            number = self.earns
            self.in_flight = True
            try:
                reply = self.client.earn(amount)
            except (rt.Closed, OSError):
                self.in_flight = False
                self.outcomes[number] = "closed"
                self.client = None
                if not self.login():
                    return
                continue
            self.in_flight = False
            self.outcomes[number] = body_of(reply) if body_of(reply) == "earn" \
                else rt.client_pb2.ErrorCode.Name(reply.error.code)
            self.count_pushes()
            if body_of(reply) == "earn":
                self.acked += amount
                self.acks += 1
                self.last_total = reply.earn.gold
                time.sleep(EARN_PAUSE_S)
                continue
            code = rt.client_pb2.ErrorCode.Name(reply.error.code)
            self.errors[code] = self.errors.get(code, 0) + 1
            if code == "NOT_LOGGED_IN":
                if not self.login():
                    return
            elif code not in ("SERVICE_UNAVAILABLE", "TIMEOUT", "RATE_LIMITED"):
                raise AssertionError("%s: earn answered %s" % (self.name_, reply))
            else:
                time.sleep(0.05)


def wall_of(line):
    """The wall-clock time (s) of a log line's timestamp."""
    stamp = line.split()[0]
    when = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    return when.replace(tzinfo=datetime.timezone.utc).timestamp()


def wait_log(cluster, proc, pattern, since, timeout=30):
    """The first line of proc's log after offset since matching pattern."""
    regex = re.compile(".*" + pattern + ".*")
    return rt.eventually(lambda: regex.search(cluster.log_text(proc), since),
                         timeout=timeout, what="%s log /%s/" % (proc, pattern)).group(0)


def gateway_metric(cluster, name):
    """A counter from the gateway's admin port (GET /metrics)."""
    port = re.search(r"metrics at http://127\.0\.0\.1:(\d+)/metrics",
                     cluster.log_text("gateway")).group(1)
    with urllib.request.urlopen("http://127.0.0.1:%s/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    return sum(float(m.group(1)) for m in
               re.finditer(r"^%s(?:\{[^}]*\})? (\S+)$" % re.escape(name), text, re.M))


def steady_load(earners):
    """Let the earners run a while, so that each fault hits a steady load."""
    marks = [e.acks for e in earners]
    time.sleep(LOAD_S)
    rt.eventually(lambda: all(e.acks > m for e, m in zip(earners, marks)),
                  what="earns acknowledged under steady load")


def acks_total(earners):
    return sum(e.acks for e in earners)


def wait_acks_resume(earners, what):
    """Every earner gets an acknowledgement again."""
    marks = [e.acks for e in earners]
    rt.eventually(lambda: all(e.acks > m for e, m in zip(earners, marks)), timeout=30,
                  what="earns acknowledged again after " + what)


def pause_earners(earners):
    """Every earner idle, none with an earn in flight."""
    for e in earners:
        e.pause.set()
    rt.eventually(lambda: all(e.idle.is_set() for e in earners), what="earners idle")


def resume_earners(earners):
    for e in earners:
        e.idle.clear()
        e.pause.clear()


def db_gold(cluster):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(cluster.run_dir, "ringgate.db"),
                         uri=True, timeout=10)
    gold = dict(db.execute("SELECT name, gold FROM players"))
    db.close()
    return gold


def kill_dbproxy_with_earns_in_flight(cluster, earners, report):
    """Fault 1 (see the top): held earns, resent once, paid once."""
    prober = cluster.client("prober1")
    expect(prober.login("prober1", "prober-pw"), "login")
    pause_earners(earners)
    gold_before = db_gold(cluster)
    acked_before = {e.name_: e.acked for e in earners}
    earns_before = {e.name_: e.earns for e in earners}
    since = len(cluster.log_text("gamesrv"))
    pid = cluster.pid("dbproxy")
    os.kill(pid, signal.SIGSTOP)
    try:
        rt.eventually(lambda: rt.all_threads_stopped(pid), what="dbproxy stopped")
        resume_earners(earners)
        rt.eventually(lambda: all(e.in_flight and e.earns > earns_before[e.name_]
                                  for e in earners), what="an earn of every earner in flight")
        time.sleep(0.2)  # gamesrv passes them on (well inside DEAD_MS)
        in_flight = {e.name_: e.earns for e in earners}
        cluster.kill("dbproxy")
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass
    held = int(re.search(r"holding (\d+) add_gold writes", wait_log(
        cluster, "gamesrv", r"holding \d+ add_gold writes", since)).group(1))
    start = time.monotonic()
    rt.expect_error(prober.earn(1), "SERVICE_UNAVAILABLE")
    refused_s = time.monotonic() - start
    cluster.deploy("up")  # starts what is not running: dbproxy
    resent = int(re.search(r"resending (\d+) held", wait_log(
        cluster, "gamesrv", r"resending \d+ held add_gold writes", since)).group(1))
    rt.eventually(lambda: all(in_flight[e.name_] in e.outcomes for e in earners),
                  what="the held earns answered")
    wait_acks_resume(earners, "the dbproxy restart")
    check_earners(earners)
    pause_earners(earners)
    gold_after = db_gold(cluster)
    outcomes = [e.outcomes[in_flight[e.name_]] for e in earners]
    assert held == len(earners) and resent == held, (held, resent, len(earners))
    assert all(o in ("earn", "TIMEOUT") for o in outcomes), outcomes
    for e in earners:
        window = range(earns_before[e.name_] + 1, e.earns + 1)
        timeouts = sum(1 for n in window if e.outcomes.get(n) in ("TIMEOUT", "closed"))
        grew = gold_after[e.name_] - gold_before[e.name_]
        acked = e.acked - acked_before[e.name_]
        # Unacknowledged earns of the window were refused before reaching
        # dbproxy, except the timed-out ones, which may have committed.
        assert grew >= acked and (grew - acked) % e.amount == 0 and \
            (grew - acked) // e.amount <= timeouts, \
            "%s: gold grew %d, acknowledged %d, %d timed out: paid twice?" % (
                e.name_, grew, acked, timeouts)
    resume_earners(earners)
    report.append("dbproxy kill -9 with %d earns in flight: gamesrv held %d and resent %d "
                  "after the restart; they ended %s; an earn while the link was down was "
                  "refused SERVICE_UNAVAILABLE after %.3f s; database gold grew by exactly "
                  "the acknowledged gold (%d) across the fault" % (
                      len(earners), held, resent,
                      {o: outcomes.count(o) for o in set(outcomes)}, refused_s,
                      sum(gold_after[e.name_] - gold_before[e.name_] for e in earners)))
    prober.close()


def check_earners(earners):
    for e in earners:
        assert e.failure is None, "%s: %s" % (e.name_, e.failure)


def freeze(cluster, proc, peer_checks, request_fn, report):
    """kill -STOP proc; each (peer, pattern) of peer_checks must appear in
    peer's log within DEAD_MS + SLACK_MS; request_fn() must be answered
    SERVICE_UNAVAILABLE or TIMEOUT; then kill -CONT."""
    pid = cluster.pid(proc)
    since = {peer: len(cluster.log_text(peer)) for peer, _ in peer_checks}
    stopped_at = time.time()
    rt.log("kill -STOP %s (pid %d)" % (proc, pid))
    os.kill(pid, signal.SIGSTOP)
    try:
        rt.eventually(lambda: rt.all_threads_stopped(pid), what=proc + " stopped")
        start = time.monotonic()
        reply = request_fn()
        answered_s = time.monotonic() - start
        code = rt.client_pb2.ErrorCode.Name(reply.error.code) if body_of(reply) == "error" \
            else body_of(reply)
        assert code in ("SERVICE_UNAVAILABLE", "TIMEOUT"), reply
        for peer, pattern in peer_checks:
            line = wait_log(cluster, peer, pattern, since[peer])
            noticed_ms = (wall_of(line) - stopped_at) * 1000
            report.append("%s frozen: %s noticed after %.0f ms (dead-ms %d): %s" % (
                proc, peer, noticed_ms, DEAD_MS, line.split(None, 3)[3]))
            assert noticed_ms <= DEAD_MS + SLACK_MS, report[-1]
        report.append("%s frozen: a request was answered %s after %.2f s" % (
            proc, code, answered_s))
    finally:
        os.kill(pid, signal.SIGCONT)
        rt.log("kill -CONT %s" % proc)


def test(build_dir):
    with rt.Cluster(build_dir, link_ms=(HEARTBEAT_MS, DEAD_MS)) as cluster:
        earners = [Earner(cluster, i) for i in range(EARNERS)]
        try:
            for e in earners:
                e.start()
            run_faults(cluster, earners)
        finally:
            for e in earners:
                e.stop.set()
            for e in earners:
                e.join(timeout=20)
            for proc in ("dbproxy", "gamesrv", "gateway"):
                try:
                    os.kill(cluster.pid(proc), signal.SIGCONT)
                except (OSError, ValueError):
                    pass
        check_earners(earners)
        check_database(cluster, earners)


def run_faults(cluster, earners):
    report = []
    wait_acks_resume(earners, "start")

    # 1. kill -9 dbproxy with earns in flight, then start it again.
    steady_load(earners)
    kill_dbproxy_with_earns_in_flight(cluster, earners, report)

    # 2. kill -9 gamesrv, then start it again.
    steady_load(earners)
    since_gw = len(cluster.log_text("gateway"))
    pushes_before = sum(e.link_down_pushes for e in earners)
    watcher = cluster.client("watcher")
    expect(watcher.login("watcher", "watcher-pw"), "login")
    dials_failed = gateway_metric(cluster, "ringgate_net_dials_failed_total")
    cluster.kill("gamesrv")
    wait_log(cluster, "gateway", r"gamesrv link down .*redialing", since_gw)
    watcher.wait_push(lambda m: body_of(m) == "error"
                      and m.error.code == rt.client_pb2.SERVICE_UNAVAILABLE,
                      what="the link-down push")
    rt.expect_error(watcher.ping(), "SERVICE_UNAVAILABLE")
    time.sleep(GAMESRV_AWAY_S)  # the gateway redials (with backoff) meanwhile
    dials_failed = gateway_metric(cluster, "ringgate_net_dials_failed_total") - dials_failed
    # Backoff: 100 ms doubling is a handful of dials in GAMESRV_AWAY_S; a
    # redial loop without it would make hundreds. A generous bound.
    assert 1 <= dials_failed <= 30, "%d failed dials while gamesrv was away" % dials_failed
    cluster.up()     # starts gamesrv; waits for both of its links
    wait_log(cluster, "gateway", r"gamesrv link up", since_gw)
    fresh = cluster.client("fresh")
    expect(fresh.login("fresh", "fresh-pw"), "login")
    rt.eventually(lambda: body_of(watcher.ping()) == "pong", what="the old connection served")
    # The killed gamesrv's lease on the watcher runs out first (until then:
    # SERVICE_UNAVAILABLE, retry; docs/protocol.md section 11).
    rt.eventually(lambda: body_of(watcher.login("watcher", "watcher-pw")) == "login",
                  what="the watcher's login once its old lease expired", interval=0.5)
    wait_acks_resume(earners, "the gamesrv restart")
    check_earners(earners)
    redials = len(re.findall(r"connected to gamesrv", cluster.log_text("gateway")[since_gw:]))
    report.append("gamesrv kill -9: gateway logged the link down; %d failed dials in %.1f s "
                  "(backoff), %d connect once it was back; clients got the SERVICE_UNAVAILABLE "
                  "push (%d to the earners, 1 to a watcher); new logins work" % (
                      dials_failed, GAMESRV_AWAY_S, redials,
                      sum(e.link_down_pushes for e in earners) - pushes_before))
    fresh.close()

    # 3. kill -STOP gamesrv: the gateway and dbproxy notice through heartbeats.
    steady_load(earners)
    since_gw = len(cluster.log_text("gateway"))  # the relink may follow -CONT at once
    freeze(cluster, "gamesrv",
           [("gateway", r"gamesrv link \S+ silent for more than"),
            ("dbproxy", r"silent for more than")],
           lambda: watcher.request(timeout=30, ping=rt.client_pb2.PingRequest(client_time=1)),
           report)
    wait_log(cluster, "gateway", r"gamesrv link up", since_gw)
    wait_acks_resume(earners, "gamesrv was frozen")
    check_earners(earners)

    # 4. kill -STOP dbproxy: gamesrv notices; an earn fails instead of hanging.
    steady_load(earners)
    prober = cluster.client("prober")
    expect(prober.login("prober", "prober-pw"), "login")
    since_gs = len(cluster.log_text("gamesrv"))
    freeze(cluster, "dbproxy",
           [("gamesrv", r"dbproxy link \S+ silent for more than")],
           lambda: prober.request(timeout=30, earn=rt.client_pb2.EarnRequest(amount=1)),
           report)
    wait_log(cluster, "gamesrv", r"dbproxy link \S+ up", since_gs)
    wait_acks_resume(earners, "dbproxy was frozen")
    check_earners(earners)
    prober.close()
    watcher.close()
    steady_load(earners)

    print("\nfaults:")
    for line in report:
        print("  " + line)


def check_database(cluster, earners):
    for e in earners:
        e.client = None
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(cluster.run_dir, "ringgate.db"),
                         uri=True, timeout=10)
    gold = dict(db.execute("SELECT name, gold FROM players"))
    db.close()
    print("\nper player: acknowledged earns, acknowledged gold <= database gold "
          "<= gold of every earn sent; errors seen")
    for e in earners:
        in_db = gold[e.name_]
        print("  %-8s %5d acks  %7d <= %7d <= %7d  (last EarnReply.gold %d) %s" % (
            e.name_, e.acks, e.acked, in_db, e.sent, e.last_total, e.errors))
        assert e.acks > 0, e.name_
        assert e.acked <= in_db <= e.sent, "%s: acknowledged gold lost" % e.name_
        assert e.last_total <= in_db, e.name_
        fresh = cluster.client("check-" + e.name_)
        state = expect(fresh.login(e.name_, "earn-pw"), "login")
        assert state.self.gold == in_db, (state.self.gold, in_db)
        fresh.close()


rt.main(test)
