"""A randomized fault campaign (issue 11): faults of every kind, at random,
against a cluster under load, then a check of what must stay true.

    test_fault_campaign.py BUILD_DIR [--seed N] [--duration S] [--players N]
                           [--bot-players N] [--dead-ms MS] [--topology GxS]

Load: --players Python players (the accounted load, one request in flight
each: earns, moves, chats, 48 KiB chat bursts, reconnects, takeover logins
from a second connection), and the load bot (tools/bot, --bot-players
players moving, chatting, pinging, earning) when it is built.

Faults, one at a time, drawn from a seeded RNG (the seed is printed first;
--seed replays the same faults in the same order with the same timings):
kill -9 and a later start, SIGSTOP/SIGCONT for less than the dead time and
for more, a graceful restart (SIGTERM, start), each of dbproxy, gamesrv and
gateway; gamesrv stopped and started with libfaketime preloaded, its wall
clock 30..120 s behind; and gamesrv stopped below and past the dead time
while 32 connections flood the gateway with chats and 16 more hang up.
Kinds are dealt from a shuffled deck, so every kind comes up once per 15
faults. Each fault ends with its process back; then new logins are probed.

--topology GxS (issue 14) runs the world across shards instead:
deploy/ringgate's [topology] with G gateways and S gamesrv shards (zone i
on shard i, every zone the same square, a lease of LEASE_MS), and every
fault of the deck for each instance (gamesrv-2, gateway-2, ...), but the
clock step (the lease lines' wall-clock times must agree). Players connect
through any gateway, take over from another, and a third of their moves
travel to the other zone (a handoff); the bots (one per gateway) walk the
border too, and report earns lost or doubled by their own ledgers.

Invariants, each counted (docs/robustness.md says exactly how):
  gold_bounds      per account: acknowledged gold <= database gold <= sent gold
  earn_lost        acknowledged earns that the database never applied
  earn_twice       earns the database applied more than once
  earn_unknown     gold the database applied that no earn sent
  online_twice     a player served on two connections at once, or online
                   on two shards (or two lives of one) at once by the
                   shards' lease log lines (leases.py); a shard stopped
                   past its lease that lets a player go within WAKE_SLACK_S
                   of waking is taken to hold it only until the stop
                   (reported as "let go on waking")
  answered_twice   a bot request answered twice (the bot's count)
  replaced_not_told  a connection replaced by a newer login was neither
                   kicked nor closed nor told the game server went away
  ghosts           players online in gamesrv with no client left
  position_lost    a login or the database shows a position other than the
                   last acknowledged one (or a move whose answer was lost);
                   waived after a gamesrv kill -9 (autosave's window), and
                   on a topology after a shard or dbproxy away past
                   SELF_FENCE_S (a shard drops its players unsaved then)
  slow_recovery    no new login served (through every gateway) within two
                   dead times of the last fault
  unexpected_exits a process found dead that the campaign did not kill

Exit status: 0 when every count is 0, 1 otherwise (the run directory with
the logs and the database is kept), 77 when libfaketime is missing
(apt-get install faketime; its library is preloaded directly).
"""
import argparse
import collections
import contextlib
import glob
import json
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ringgate_test as rt  # noqa: E402
from ringgate_test import body_of, leases  # noqa: E402

LEASE_MS = 1500             # --topology: gamesrv's --lease-ms
# A shard that has renewed no lease for this long may be dropping players
# unsaved (self-fence at lease_ms / 10 before the end; renewals every
# lease_ms / 3): a shard or dbproxy away this long loses positions as a
# kill -9 does.
SELF_FENCE_S = LEASE_MS * (1 - 1 / 3 - 1 / 10) / 1000
WAKE_SLACK_S = 1.0          # a shard woken past its lease lets players go within this
HEARTBEAT_MS = 200
# gamesrv keeps a dropped player this long for a resume (its
# --resume-grace-ms); see campaign().
RESUME_GRACE_MS = 1000
CLIENT_TIMEOUT_S = 10       # a request unanswered this long: the connection is dropped
REPLACED_CHECK_S = 8        # a replaced connection must have been told by then
RECOVERY_LIMIT_S = 30       # give up probing for a working login after this
SETTLE_S = 3                # load after the last fault, before the end checks
BIG_CHAT = 48 * 1024        # over the chat limit: refused by gamesrv, after the trip
MAX_EARNS = 1000            # amounts 1..1000, each once per account (see Account)
SPAWN = (0.0, 0.0)          # dbproxy's RG_SPAWN_X/Y

INVARIANTS = ("gold_bounds", "earn_lost", "earn_twice", "earn_unknown", "online_twice",
              "answered_twice", "replaced_not_told", "ghosts", "position_lost",
              "slow_recovery", "unexpected_exits")

# Every fault kind, dealt from a shuffled deck. The *_flood kinds stop
# gamesrv while FLOODERS connections each send FLOOD_CHATS chats of up to
# FLOOD_CHAT bytes and LEAVERS more hang up late in the stop: the gateway's
# queue to gamesrv fills while gamesrv is away, with ClientGones behind.
def deck_of(instances, topology):
    """The fault kinds for these process instances: each of kill9,
    stop_short, stop_long and restart for every instance, the floods (of
    the first shard), and the clock step but on a topology."""
    kinds = [(k, p) for k in ("kill9", "stop_short", "stop_long", "restart") for p in instances]
    kinds += [] if topology else [("clockback", "gamesrv")]
    return kinds + [("stop_short_flood", "gamesrv"), ("stop_long_flood", "gamesrv")]


def kind_of(instance):
    """gamesrv-2 -> gamesrv."""
    return instance.split("-")[0]



FLOODERS = 32
LEAVERS = 16
FLOOD_CHAT = 60 * 1024
FLOOD_CHATS = 32            # the gateway's default max-inflight per client


def f32(v):
    return struct.unpack("f", struct.pack("f", v))[0]


def error_name(msg):
    return rt.client_pb2.ErrorCode.Name(msg.error.code)


def tells_gone(push):
    """A push that tells a client its session is gone: Kicked, or the
    gateway's SERVICE_UNAVAILABLE when its gamesrv link went down."""
    return body_of(push) == "kicked" or (
        body_of(push) == "error" and push.error.code == rt.client_pb2.SERVICE_UNAVAILABLE)


class Findings:
    """Violation counts and their first details, shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.details = collections.defaultdict(list)

    def add(self, invariant, detail, n=1):
        assert invariant in INVARIANTS, invariant
        with self.lock:
            self.counts[invariant] += n
            if len(self.details[invariant]) < 10:
                self.details[invariant].append(detail)
        rt.log("VIOLATION %s: %s" % (invariant, detail))


# ---- the processes: every signal and start the campaign makes ---------------

class Processes:
    """kill -9, SIGSTOP/SIGCONT, SIGTERM and starts of the cluster's
    process instances (dbproxy, gamesrv[-i], gateway[-i]), through the
    harness's Cluster (pid files, deploy/ringgate). Remembers what it
    stopped, so that cleanup can continue it, and for the lease check
    when each shard's life (pid) ended and when it was stopped (wall
    clock, as the logs' times)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.instances = cluster.instances
        self.stopped = set()
        self.pids = {p: cluster.pid(p) for p in self.instances}
        self.ended = {}                           # pid -> time.time() of its end
        self.stops = collections.defaultdict(list)  # pid -> [(from, to)]
        self.stop_from = {}
        self.clock_back = {}                      # pid -> seconds its clock was behind

    def alive(self, proc):
        try:
            with open("/proc/%d/stat" % self.pids[proc]) as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def kill9(self, proc):
        self.cluster.kill(proc, signal.SIGKILL)
        self.ended[self.pids[proc]] = time.time()

    def stop(self, proc):
        pid = self.pids[proc]
        self.stop_from[pid] = time.time()
        os.kill(pid, signal.SIGSTOP)
        self.stopped.add(pid)
        rt.eventually(lambda: rt.all_threads_stopped(pid), what=proc + " stopped")

    def cont(self, proc):
        pid = self.pids[proc]
        os.kill(pid, signal.SIGCONT)
        self.stopped.discard(pid)
        self.stops[pid].append((self.stop_from.pop(pid), time.time()))

    def terminate(self, proc):
        """SIGTERM and wait for the exit (a drain); SIGKILL after 20 s."""
        pid = self.pids[proc]
        os.kill(pid, signal.SIGTERM)
        try:
            rt.eventually(lambda: not self.alive(proc), timeout=20, what=proc + " exit")
            self.ended[pid] = time.time()
        except AssertionError:
            rt.log("%s did not exit on SIGTERM within 20 s; SIGKILL" % proc)
            self.kill9(proc)

    def start(self, clock_back_s=0):
        """deploy/ringgate up: starts whatever is not running; with
        clock_back_s, with libfaketime preloaded and the wall clock that
        far behind (the monotonic clock untouched, as after an RTC-less
        boot). Not through the faketime wrapper: it waits for every
        process that inherited its clock, daemons included."""
        if clock_back_s == 0:
            self.cluster.deploy("up")
        else:
            saved = dict(self.cluster.env)
            self.cluster.env.update({
                "LD_PRELOAD": faketime_library(),
                "FAKETIME": "-%ds" % clock_back_s,
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
                # libfaketime comes ahead of ASan's runtime in the list.
                "ASAN_OPTIONS": (saved.get("ASAN_OPTIONS", "") +
                                 ":verify_asan_link_order=0").lstrip(":"),
            })
            try:
                self.cluster.deploy("up")
            finally:
                self.cluster.env = saved
        before = self.pids
        self.pids = {p: self.cluster.pid(p) for p in self.instances}
        for p, pid in self.pids.items():
            if clock_back_s and pid != before[p]:
                self.clock_back[pid] = clock_back_s

    def lease_runs(self):
        """Every life of every shard so far (Cluster.lease_runs) as a
        WakeRun: ended when the campaign ended it (its pid is in its log
        lines), its stops and clock step known."""
        runs = []
        for run in self.cluster.lease_runs():
            m = re.search(r"Z gamesrv\[(\d+)\] ", run.text)
            pid = int(m.group(1)) if m else None
            runs.append(WakeRun(run.shard, run.text, self.ended.get(pid, run.end),
                                self.stops.get(pid, []), self.clock_back.get(pid, 0)))
        return runs

    def cont_all(self):
        for pid in list(self.stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        self.stopped.clear()


class WakeRun(leases.Run):
    """A shard's life whose process was stopped (SIGSTOP) at times: a
    player it let go within WAKE_SLACK_S of waking from a stop is taken to
    have been held only until that stop began (a stopped process serves
    nobody; on waking past its lease it must fence itself at once).
    cut counts the intervals so cut. clock_back: seconds the life's wall
    clock ran behind (the clockback fault), added to its log times."""

    def __init__(self, shard, text, end, stops, clock_back=0):
        super().__init__(shard, text, end)
        self.stops = stops
        self.clock_back = clock_back
        self.cut = 0

    def intervals(self):
        got, problems = super().intervals()
        out, self.cut = [], 0
        for iv in got:
            # An open interval's end is the campaign's time, not the log's.
            iv = iv._replace(start=iv.start + self.clock_back,
                             end=iv.end if iv.open else iv.end + self.clock_back)
            for t0, t1 in self.stops:
                if not iv.open and iv.start <= t0 and t1 <= iv.end <= t1 + WAKE_SLACK_S:
                    iv = iv._replace(end=t0)
                    self.cut += 1
                    break
            out.append(iv)
        return out, problems


def faketime_library():
    """libfaketime's multi-threaded library (Debian's faketime package
    depends on it), or None."""
    for pattern in ("/usr/lib/*/faketime/libfaketimeMT.so.1",
                    "/usr/lib/faketime/libfaketimeMT.so.1",
                    "/usr/local/lib/faketime/libfaketimeMT.so.1"):
        found = glob.glob(pattern)
        if found:
            return found[0]
    return None


# ---- accounted players ------------------------------------------------------

class Account:
    """One account's ledger as its client saw it. Each earn uses an amount
    that this account never used before (a shuffled 1..1000), so an amount
    in the database's gold log names exactly one earn."""

    def __init__(self, name, rng):
        self.name = name
        self.password = "pw-" + name
        self.amounts = list(range(1, MAX_EARNS + 1))
        rng.shuffle(self.amounts)
        self.sent = []              # amounts of every earn sent
        self.acked = []             # amounts of every acknowledged earn
        self.pos = SPAWN            # the last acknowledged position
        self.pos_at = time.monotonic()
        self.uncertain = []         # moves sent since, whose answer was lost
        self.history = {SPAWN}      # every position ever acknowledged or sent
        self.logged_in_once = False
        self.zone = 1               # the zone the last answer put it in

    def moved(self, pos):
        self.pos = pos
        self.pos_at = time.monotonic()
        self.uncertain = []
        self.history.add(pos)

    def move_uncertain(self, pos):
        self.uncertain.append(pos)
        self.history.add(pos)

    def allowed_positions(self, crashes):
        """Where the account may be: the last acknowledged position or a
        move sent after it whose answer was lost; anywhere it has been if
        gamesrv was killed (-9) since that acknowledgement."""
        if any(t > self.pos_at for t in crashes):
            return self.history
        return {self.pos, *self.uncertain}


class Player(threading.Thread):
    """One accounted player: a loop of random actions, one request in
    flight, logging in again whenever its session is gone."""

    def __init__(self, campaign, index):
        super().__init__(daemon=True)
        self.c = campaign
        self.index = index
        self.rng = random.Random(campaign.seed * 1009 + index)
        self.generation = 0
        self.accounts = []
        self.new_account()
        self.conn = None
        self.gateway = index        # which gateway (an index) it connects through
        self.logged_in = False
        self.replaced = []          # [conn, account, due time, probes]
        self.stop = threading.Event()
        self.failure = None
        self.actions = collections.Counter()
        self.errors = collections.Counter()

    def new_account(self):
        name = "fc%dp%dg%d" % (self.c.seed % 1000, self.index, self.generation)
        self.generation += 1
        self.account = Account(name, self.rng)
        self.accounts.append(self.account)

    def run(self):
        try:
            while not self.stop.is_set():
                self.step()
                self.check_replaced(final=False)
                time.sleep(self.rng.uniform(0.01, 0.05))
        except Exception:
            self.failure = traceback.format_exc()
        finally:
            self.drop()

    # -- connection ------------------------------------------------------------

    def connect(self):
        """A connection through the player's gateway (on a topology, the
        next one each time)."""
        ports = self.c.gateway_ports()
        self.gateway = (self.gateway + 1) % len(ports)
        conn = rt.GameClient(ports[self.gateway], self.account.name)
        conn.told = False
        return conn

    def drop(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.logged_in = False

    def scan_pushes(self, conn):
        """Note on conn whether it was told its session is gone."""
        if any(tells_gone(push) for push in conn.take_pushes()):
            conn.told = True

    def call(self, conn, **body):
        """The reply to one request on conn, or None when the connection
        closed or no reply came in time (the request's fate is unknown)."""
        try:
            reply = conn.request(timeout=CLIENT_TIMEOUT_S, **body)
        except (rt.Closed, OSError, AssertionError):
            return None
        finally:
            self.scan_pushes(conn)
        if body_of(reply) == "error":
            self.errors[error_name(reply)] += 1
        return reply

    def check_position(self, where, state):
        acc = self.account
        got = (f32(state.x), f32(state.y))
        allowed = acc.allowed_positions(self.c.gamesrv_crashes)
        if got not in allowed:
            self.c.findings.add("position_lost", "%s: %s shows %s, expected one of %s" % (
                acc.name, where, got, sorted(allowed)[:4]))
            acc.moved(got)  # where it is now: one loss is counted once

    def login(self, conn):
        """Log in on conn: "ok" (the position checked), "lost" (no answer:
        drop the connection) or "refused" (an Error: try again later)."""
        acc = self.account
        reply = self.call(conn, login=rt.client_pb2.LoginRequest(name=acc.name,
                                                                 password=rt.as_bytes(acc.password)))
        if reply is None:
            return "lost"
        if body_of(reply) == "login":
            conn.told = False
            if acc.logged_in_once:
                self.check_position("login", reply.login.self)
            acc.logged_in_once = True
            acc.zone = reply.login.self.zone
            return "ok"
        if error_name(reply) == "ALREADY_LOGGED_IN":
            return "ok"
        return "refused"

    # -- actions ---------------------------------------------------------------

    def step(self):
        if not self.logged_in:
            if self.conn is None:
                try:
                    self.conn = self.connect()
                except OSError:
                    time.sleep(0.1)
                    return
            result = self.login(self.conn)
            if result == "ok":
                self.logged_in = True
            elif result == "lost":
                self.drop()
            else:
                time.sleep(0.1)
            return
        r = self.rng.random()
        if r < 0.45:
            self.earn()
        elif r < 0.85:
            self.move()
        elif r < 0.90:
            self.simple("chat", chat=rt.client_pb2.ChatRequest(text="hello"))
        elif r < 0.93:
            self.big_chats()
        elif r < 0.97:
            self.actions["reconnect"] += 1
            self.drop()
        else:
            self.takeover()

    def outcome(self, reply):
        """Bookkeeping shared by every request: a lost reply drops the
        connection, NOT_LOGGED_IN means log in again."""
        if reply is None:
            self.drop()
        elif body_of(reply) == "error" and error_name(reply) == "NOT_LOGGED_IN":
            self.logged_in = False

    def simple(self, what, **body):
        self.actions[what] += 1
        self.outcome(self.call(self.conn, **body))

    def earn(self):
        acc = self.account
        if len(acc.sent) == MAX_EARNS:
            self.drop()     # every amount used: go on as a new account
            self.new_account()
            return
        amount = acc.amounts[len(acc.sent)]
        acc.sent.append(amount)
        self.actions["earn"] += 1
        reply = self.call(self.conn, earn=rt.client_pb2.EarnRequest(amount=amount))
        if reply is not None and body_of(reply) == "earn":
            acc.acked.append(amount)
        self.outcome(reply)

    def move(self):
        """A move inside the zone, or on a topology one time in three a
        travel to the next zone (another shard's: a handoff); every zone
        is the same square, so a position is valid in each."""
        acc = self.account
        pos = (self.rng.randint(-3999, 3999) / 4.0, self.rng.randint(-3999, 3999) / 4.0)
        zones = self.c.zone_count
        zone = acc.zone % zones + 1 if zones > 1 and self.rng.random() < 1 / 3 else 0
        self.actions["travel" if zone else "move"] += 1
        reply = self.call(self.conn, move=rt.client_pb2.MoveRequest(x=pos[0], y=pos[1],
                                                                     zone=zone))
        if reply is not None and body_of(reply) == "move":
            acc.moved(pos)
            acc.zone = reply.move.zone
        elif reply is None or error_name(reply) not in ("NOT_LOGGED_IN", "RATE_LIMITED",
                                                        "ZONE_HANDOFF"):
            acc.move_uncertain(pos)  # TIMEOUT, SERVICE_UNAVAILABLE, ...: may be applied
        self.outcome(reply)

    def big_chats(self):
        """Three chats over the limit, pipelined: the gateway forwards them
        and gamesrv refuses them, so they load the internal link."""
        self.actions["big_chats"] += 1
        seqs = []
        try:
            for _ in range(3):
                self.conn.seq += 1
                seqs.append(self.conn.seq)
                self.conn.send(rt.client_pb2.ClientMessage(
                    seq=self.conn.seq, chat=rt.client_pb2.ChatRequest(text="x" * BIG_CHAT)))
            for seq in seqs:
                reply = self.conn.wait_reply(seq, timeout=CLIENT_TIMEOUT_S)
                self.outcome(reply)
        except (rt.Closed, OSError, AssertionError):
            self.drop()
            return
        finally:
            if self.conn is not None:
                self.scan_pushes(self.conn)

    def takeover(self):
        """Log in again from a second connection; the first must be
        kicked (checked REPLACED_CHECK_S later)."""
        self.actions["takeover"] += 1
        try:
            new = self.connect()
        except OSError:
            return
        if self.login(new) != "ok":
            new.close()
            return
        self.replaced.append([self.conn, self.account, time.monotonic() + REPLACED_CHECK_S, 0])
        self.conn = new

    def check_replaced(self, final):
        """Judge replaced connections that are due (all of them, waiting
        for each, when final)."""
        for entry in list(self.replaced):
            conn, acc, due, probes = entry
            if not final and time.monotonic() < due:
                continue
            if final:
                time.sleep(max(0.0, due - time.monotonic()))
            verdict = self.judge_replaced(conn, acc)
            while final and verdict == "retry" and probes < 5:
                time.sleep(2)
                probes += 1
                verdict = self.judge_replaced(conn, acc)
            if verdict == "retry" and probes < 5:
                entry[2] = time.monotonic() + 2
                entry[3] += 1
                continue
            self.replaced.remove(entry)
            conn.close()
            if verdict == "online":
                self.c.findings.add("online_twice", "%s: a replaced connection is still served"
                                    % acc.name)
            elif verdict == "not_told":
                self.c.findings.add("replaced_not_told", "%s: replaced %.0f s ago, neither "
                                    "kicked nor closed" % (acc.name, REPLACED_CHECK_S))

    def judge_replaced(self, conn, acc):
        """"told", "online" (still served), "not_told" (silently logged
        out) or "retry" (the game server is away: ask again later)."""
        try:
            conn.wait_push(tells_gone, timeout=0.05, what="a kick")
            return "told"
        except (rt.Closed, OSError):
            return "told"
        except AssertionError:
            pass  # nothing more has come
        self.scan_pushes(conn)
        if conn.told:
            return "told"
        reply = self.call(conn, move=rt.client_pb2.MoveRequest(x=acc.pos[0], y=acc.pos[1]))
        if reply is None or conn.told:
            return "told"
        if body_of(reply) == "move":
            return "online"
        if error_name(reply) == "NOT_LOGGED_IN":
            return "not_told"
        return "retry"  # the game server is away right now


# ---- the campaign -----------------------------------------------------------

class Campaign:
    """The run: load (players, the bot), the faults from the seed's RNG on
    the main thread, and the checks once the load has stopped."""

    def __init__(self, cluster, args):
        self.cluster = cluster
        self.args = args
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.findings = Findings()
        self.instances = cluster.instances
        self.gateways = cluster.gateways
        self.shards = cluster.shards
        self.zone_count = len(self.shards)  # on a topology zone i is shard i's
        self.procs = Processes(cluster)
        self.faults = collections.Counter()
        self.gamesrv_crashes = []   # positions acked before these may be lost (kill -9; unsaved_window)
        self.recoveries = []        # (fault, seconds to the first new login)
        self.probe_count = 0
        self.players = [Player(self, i) for i in range(args.players)]
        self.bots = []              # [(process, log file, JSON path)], one per gateway
        self.bot_reports = []
        self.t0 = None
        self.clock_checks = []
        self.flood_sent = [0]

    def elapsed(self):
        return time.monotonic() - self.t0

    def gateway_ports(self):
        """Every gateway's port (kept across restarts by deploy's `up`)."""
        return [self.cluster.port(g) for g in self.gateways]

    # -- load ------------------------------------------------------------------

    def start_load(self):
        rt.load_protos()  # once, before the threads (it is not thread-safe)
        for p in self.players:
            p.start()
        bot = os.path.join(self.args.build_dir, "bench", "bot", "bot")
        if self.args.bot_players < len(self.gateways) or not os.access(bot, os.X_OK):
            rt.log("no load bot (%s not built or --bot-players 0): Python players only" % bot)
            return
        # One bot per gateway; on a topology they walk across the border
        # every fifth move.
        border = ["--border-every", "5"] if self.zone_count > 1 else []
        for i, (gateway, port) in enumerate(zip(self.gateways, self.gateway_ports())):
            name = "bot" if i == 0 else "bot-%d" % (i + 1)
            log = open(os.path.join(self.cluster.run_dir, name + ".log"), "w")
            out = os.path.join(self.cluster.run_dir, name + ".json")
            proc = subprocess.Popen(
                [bot, "--port", str(port),
                 "--players", str(self.args.bot_players // len(self.gateways)), "--ramp", "0",
                 "--duration", "100000", "--move-rate", "2", "--chat-rate", "1",
                 "--ping-rate", "1", "--earn-rate", "0.2", "--timeout-ms", "10000",
                 "--name-prefix", "fc%s" % name.replace("-", ""), "--password", "bot-pw",
                 "--json", out] + border,
                stdout=log, stderr=subprocess.STDOUT)
            self.bots.append((proc, log, out))
            rt.log("load bot on %s: %d players (pid %d)" % (
                gateway, self.args.bot_players // len(self.gateways), proc.pid))

    def stop_load(self):
        for p in self.players:
            p.stop.set()
        for p in self.players:
            p.join(timeout=CLIENT_TIMEOUT_S * 3)
        for p in self.players:
            p.check_replaced(final=True)
        for proc, _, _ in self.bots:
            proc.send_signal(signal.SIGINT)
        for proc, log, out in self.bots:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            with open(log.name) as f:
                tail = f.read().splitlines()[-12:]
            rt.log("load bot exited %d; its last lines:\n  %s" % (proc.returncode,
                                                                 "\n  ".join(tail)))
            self.check_bot(out)

    def check_bot(self, out):
        """What a bot's own checks found (its JSON): earns its ledger saw
        lost or applied twice (durable totals), requests answered twice.
        Its errors and unanswered requests are the faults' doing."""
        try:
            with open(out) as f:
                report = json.load(f)
        except (OSError, ValueError) as err:
            rt.log("the bot wrote no report (%s): its checks are not counted" % err)
            return
        for invariant, key in (("earn_lost", "earn_lost"), ("earn_twice", "earn_doubled"),
                               ("answered_twice", "answered_twice")):
            if report.get(key):
                self.findings.add(invariant, "bot %s: %d (its own ledger)" % (
                    os.path.basename(out), report[key]), n=report[key])
        self.bot_reports.append(report)

    # -- faults ----------------------------------------------------------------

    def run_faults(self):
        """Faults one after another until --duration has passed; each ends
        with its process back and a new login served (or given up)."""
        self.t0 = time.monotonic()
        deck = []
        number = 0
        time.sleep(self.rng.uniform(1.0, 2.0))
        while self.elapsed() < self.args.duration:
            if not deck:
                deck = deck_of(self.instances, self.args.topology)
                self.rng.shuffle(deck)
            kind, proc = deck.pop()
            number += 1
            self.check_alive()
            self.inject(number, kind, proc)
            self.faults[(kind, proc)] += 1
            recovered = self.probe_login()
            self.recoveries.append(("%d %s %s" % (number, kind, proc), recovered))
            rt.log("[%6.1f s] fault %d done: new login after %s" % (
                self.elapsed(), number,
                "%.2f s" % recovered if recovered is not None else "never"))
            time.sleep(self.rng.uniform(1.0, 3.0))
        self.check_alive()
        last = self.recoveries[-1] if self.recoveries else None
        limit = 2 * self.args.dead_ms / 1000
        if last and (last[1] is None or last[1] > limit):
            self.findings.add("slow_recovery", "after the last fault (%s) a new login took %s "
                              "(limit: two dead times, %.1f s)" % (last[0], last[1], limit))
        time.sleep(SETTLE_S)

    def inject(self, number, kind, proc):
        dead_s = self.args.dead_ms / 1000
        what = "%s %s" % (kind, proc)
        if kind == "kill9":
            away = self.rng.uniform(0.2, 2.0)
            self.note(number, "%s, started again after %.2f s" % (what, away))
            with self.unsaved_window(proc):
                self.procs.kill9(proc)
                if kind_of(proc) == "gamesrv":
                    self.gamesrv_crashes.append(time.monotonic())
                time.sleep(away)
                self.procs.start()
        elif kind.startswith("stop_"):
            # Below: the peers' last heartbeat may be one interval older
            # than the stop, so "below" keeps that much and more in hand.
            held = dead_s * (self.rng.uniform(0.2, 0.8) if kind.startswith("stop_short")
                             else self.rng.uniform(1.5, 3.0))
            self.note(number, "%s for %.2f s (dead time %.2f s)" % (what, held, dead_s))
            flooders = self.flooders(number, held) if kind.endswith("_flood") else []
            if flooders:
                dropped = self.metric("gateway", "ringgate_net_sends_dropped_total")
            with self.unsaved_window(proc, held):
                self.procs.stop(proc)
                try:
                    for f in flooders:
                        f.start()
                    time.sleep(held)
                finally:
                    self.procs.cont(proc)
            for f in flooders:
                f.join(timeout=CLIENT_TIMEOUT_S)
            if flooders:
                # Since libnet's no-silent-drop rule these are frames for
                # sessions already closing or cut off (send_overflow).
                rt.log("flood: %d connections sent %d chats of up to %d KiB in all; all hung "
                       "up; the gateway's sends_dropped (to closing sessions) grew by %d" % (
                           len(flooders), self.flood_sent[0], FLOOD_CHAT // 1024,
                           self.metric("gateway", "ringgate_net_sends_dropped_total") - dropped))
                self.flood_sent[0] = 0
        elif kind == "restart":
            self.note(number, what + " (SIGTERM, start)")
            with self.unsaved_window(proc, SELF_FENCE_S):  # the drain and the start
                self.procs.terminate(proc)
                self.procs.start()
        else:  # clockback
            back = self.rng.randint(30, 120)
            self.note(number, "%s: gamesrv restarted with its clock %d s behind" % (what, back))
            self.procs.terminate("gamesrv")
            self.procs.start(clock_back_s=back)
            self.check_clock(back)

    @contextlib.contextmanager
    def unsaved_window(self, proc, away_s=None):
        """Around a fault: on a topology (leases), a shard or dbproxy away
        for away_s (None: as long as the block takes, a kill -9 and the
        start after it, which a loaded machine stretches well past the
        planned pause) may make a shard drop players unsaved (self-fence,
        or its lease taken meanwhile), so positions acknowledged before the
        fault ends may be lost, as after a gamesrv kill -9 (a shard answers
        moves without its database until it fences itself). While the fault
        lasts its entry in gamesrv_crashes is infinite (every position so
        far is waived), then the time it ended; for a fault that turned
        out shorter than SELF_FENCE_S, 0 (before every position: waives
        none)."""
        if not (self.args.topology and kind_of(proc) != "gateway" and
                (away_s is None or away_s >= SELF_FENCE_S)):
            yield
            return
        i = len(self.gamesrv_crashes)
        self.gamesrv_crashes.append(float("inf"))
        began = time.monotonic()
        try:
            yield
        finally:
            ended = time.monotonic()
            self.gamesrv_crashes[i] = ended if (away_s is not None or
                                                ended - began >= SELF_FENCE_S) else 0.0

    def flooders(self, number, held):
        """Threads, each with a connection logged in now (while gamesrv
        still answers): FLOODERS that flood, LEAVERS that only hang up,
        late in the stop, when the link's queue is full."""
        threads = []
        # Their own RNG: a login that fails must not shift the fault schedule.
        rng = random.Random("%d-flood-%d" % (self.seed, number))
        for i in range(FLOODERS + LEAVERS):
            # New names each time: a later flood's login would otherwise
            # take over (and so end) a ghost an earlier one left.
            name = "fc%df%dn%d" % (self.seed % 1000, number, i)
            try:
                conn = rt.GameClient(self.gateway_ports()[0], name)
                if body_of(conn.login(name, "flood-pw")) != "login":
                    conn.close()
                    continue
            except (rt.Closed, OSError, AssertionError):
                continue
            # Sizes down to a few bytes, so the queue fills to its last byte.
            sizes = [rng.choice((FLOOD_CHAT, FLOOD_CHAT // 16, 300, 8))
                     for _ in range(FLOOD_CHATS if i < FLOODERS else 0)]
            threads.append(threading.Thread(target=flood, daemon=True, args=(
                conn, sizes, self.flood_sent, held * 0.8)))
        return threads

    def note(self, number, text):
        rt.log("[%6.1f s] fault %d: %s" % (self.elapsed(), number, text))

    def check_clock(self, back):
        """The restarted gamesrv's clock is really behind (Pong's time)."""
        try:
            probe = self.cluster.client("clock-probe")
            pong = probe.request(timeout=10, ping=rt.client_pb2.PingRequest(client_time=1))
            probe.close()
            if body_of(pong) == "pong":
                skew = pong.pong.server_time_ms / 1000 - time.time()
                self.clock_checks.append((back, skew))
                rt.log("gamesrv's clock is %.1f s off (asked for -%d s)" % (skew, back))
                return
        except (rt.Closed, OSError, AssertionError):
            pass
        self.clock_checks.append((back, None))

    def check_alive(self):
        """A process the campaign did not kill must be running."""
        for proc in self.instances:
            if not self.procs.alive(proc):
                if kind_of(proc) == "gamesrv":
                    self.gamesrv_crashes.append(time.monotonic())
                self.procs.ended.setdefault(self.procs.pids[proc], time.time())
                self.findings.add("unexpected_exits", "%s (pid %d) exited by itself; see its "
                                  "log" % (proc, self.procs.pids[proc]))
                self.procs.start()

    def probe_login(self):
        """Seconds until a new account has logged in through every gateway
        (one after another), or None past RECOVERY_LIMIT_S."""
        start = time.monotonic()
        for port in self.gateway_ports():
            while True:
                if time.monotonic() - start >= RECOVERY_LIMIT_S:
                    return None
                self.probe_count += 1
                name = "fc%dprobe%d" % (self.seed % 1000, self.probe_count)
                try:
                    conn = rt.GameClient(port, name)
                    try:
                        reply = conn.login(name, "probe-pw")
                    finally:
                        conn.close()
                    if body_of(reply) == "login":
                        break
                except (rt.Closed, OSError, AssertionError):
                    pass
                time.sleep(0.05)
        return time.monotonic() - start

    # -- the end ---------------------------------------------------------------

    def check_ghosts(self):
        """With every client gone, gamesrv must hold no player (its one
        zone's count). The count is the metric's; an observer's login names
        those of them it can see (with interest management only those
        within its view radius of the spawn point, so the names are an
        example, not the list)."""
        limit = (2 * self.args.dead_ms + RESUME_GRACE_MS) / 1000 + 10
        try:
            rt.eventually(lambda: self.players_online() == 0, timeout=limit,
                          what="gamesrv's players_online at 0")
            return
        except (AssertionError, OSError):
            pass
        ghosts = self.players_online()
        observer = self.cluster.client("observer")
        reply = observer.login("fc%dobserver" % (self.seed % 1000), "observer-pw")
        observer.close()
        if body_of(reply) != "login":
            self.findings.add("ghosts", "players_online is %d with no client; the observer "
                              "could not log in: %s" % (ghosts, reply), n=ghosts)
            return
        ids = [o.player_id for o in reply.login.others]
        names = sorted(o.name for o in reply.login.others)
        if len(set(ids)) != len(ids):
            self.findings.add("online_twice", "the zone lists a player twice: %s" % names)
        self.findings.add("ghosts", "%d online with no client, %.0f s after the last left; "
                          "the observer sees %s" % (ghosts, limit, names[:20]), n=ghosts)

    def players_online(self):
        return sum(self.metric(shard, "ringgate_gamesrv_players_online")
                   for shard in self.shards)

    def metric(self, proc, name):
        """An unlabelled sample from proc's GET /metrics."""
        port = self.cluster.admin_ports[proc]
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
            text = r.read().decode()
        return int(float(re.search(r"^%s (\S+)$" % name, text, re.M).group(1)))

    def check_database(self):
        """Gold, the gold log and positions of every account, straight
        from SQLite once the cluster is down (drained: saves written)."""
        db = sqlite3.connect("file:%s?mode=ro" % db_path(self.cluster), uri=True, timeout=10)
        rows = {name: (pid, gold, x, y) for pid, name, gold, x, y in
                db.execute("SELECT id, name, gold, x, y FROM players")}
        log = collections.defaultdict(list)
        for pid, delta in db.execute("SELECT player_id, delta FROM campaign_gold_log "
                                     "ORDER BY id"):
            log[pid].append(delta)
        db.close()
        f = self.findings
        for p in self.players:
            for acc in p.accounts:
                if not acc.logged_in_once:
                    continue
                pid, gold, x, y = rows.get(acc.name, (None, 0, 0.0, 0.0))
                applied = collections.Counter(log.get(pid, []))
                acked, sent = sum(acc.acked), sum(acc.sent)
                if not acked <= gold <= sent:
                    f.add("gold_bounds", "%s: acknowledged %d <= database %d <= sent %d fails"
                          % (acc.name, acked, gold, sent))
                lost = [a for a in acc.acked if applied[a] == 0]
                if lost:
                    f.add("earn_lost", "%s: %d acknowledged earns never applied (amounts %s)"
                          % (acc.name, len(lost), lost[:8]), n=len(lost))
                twice = sum(n - 1 for n in applied.values() if n > 1)
                if twice:
                    f.add("earn_twice", "%s: %d earns applied more than once (amounts %s)" % (
                        acc.name, twice, [a for a, n in applied.items() if n > 1][:8]), n=twice)
                unknown = [a for a in applied if a not in set(acc.sent)]
                if unknown:
                    f.add("earn_unknown", "%s: gold added that no earn sent: %s" % (
                        acc.name, unknown[:8]), n=len(unknown))
                if sum(log.get(pid, [])) != gold:
                    rt.log("note: %s: the gold log sums to %d, the row says %d" % (
                        acc.name, sum(log.get(pid, [])), gold))
                allowed = acc.allowed_positions(self.gamesrv_crashes)
                if (f32(x), f32(y)) not in allowed:
                    f.add("position_lost", "%s: the database holds %s, expected one of %s" % (
                        acc.name, (x, y), sorted(allowed)[:4]))

    def check_leases(self):
        """No player online on two shards (or two lives of one) at once,
        nor an epoch going back, by the shards' lease log lines (every
        process has ended: the cluster is down)."""
        runs = self.procs.lease_runs()
        problems = leases.check(runs)
        for p in problems:
            self.findings.add("online_twice", "lease lines: " + p)
        self.lease_summary = (sum(len(r.intervals()[0]) for r in runs), len(runs),
                              sum(r.cut for r in runs))

    def report(self):
        topology = "%d gateways x %d shards" % self.args.topology if self.args.topology \
            else "one of each"
        print("\nfault campaign: seed %d, %.0f s of faults, %s, %d accounted players, %d bot "
              "players" % (self.seed, self.args.duration, topology, self.args.players,
                           self.args.bot_players if self.bots else 0))
        print("faults injected (%d):" % sum(self.faults.values()))
        for (kind, proc), n in sorted(self.faults.items()):
            print("  %-16s %-8s %3d" % (kind, proc, n))
        times = [r for _, r in self.recoveries if r is not None]
        if times:
            print("new login after each fault: median %.2f s, max %.2f s, never %d" % (
                sorted(times)[len(times) // 2], max(times),
                sum(1 for _, r in self.recoveries if r is None)))
        for back, skew in self.clock_checks:
            print("clock stepped back %d s: gamesrv's Pong showed %s" % (
                back, "%.1f s" % skew if skew is not None else "nothing (no pong)"))
        actions = collections.Counter()
        errors = collections.Counter()
        acked = sent = 0
        for p in self.players:
            actions.update(p.actions)
            errors.update(p.errors)
            for acc in p.accounts:
                acked += len(acc.acked)
                sent += len(acc.sent)
        print("player actions: %s" % dict(sorted(actions.items())))
        print("earns: %d sent, %d acknowledged; error replies: %s" % (
            sent, acked, dict(sorted(errors.items()))))
        for r in self.bot_reports:
            q = r["requests"]
            print("bot %s: %s; zone changes %d, retried after ZONE_HANDOFF %d, earn ledger lost "
                  "%d doubled %d, answered twice %d" % (
                      r["config"]["port"], ", ".join("%s %d/%d" % (k, v["answered"], v["sent"])
                                                     for k, v in q.items()),
                      q["travel"]["answered"], sum(v["retried"] for v in q.values()),
                      r["earn_lost"], r["earn_doubled"], r["answered_twice"]))
        intervals, lives, cut = self.lease_summary
        print("lease lines: %d online intervals in %d shard lives, %d let go on waking from a "
              "stop past the lease" % (intervals, lives, cut))
        print("invariant violations:")
        for name in INVARIANTS:
            print("  %-18s %d" % (name, self.findings.counts[name]))
            for d in self.findings.details[name]:
                print("      " + d)
        print("replay: %s %s --seed %d --duration %g --players %d --bot-players %d "
              "--dead-ms %d%s" % (sys.argv[0], self.args.build_dir, self.seed,
                                  self.args.duration, self.args.players, self.args.bot_players,
                                  self.args.dead_ms, " --topology %dx%d" % self.args.topology
                                  if self.args.topology else ""))


def flood(conn, sizes, sent, hang_up_in):
    """Send chats of these sizes without reading, then hang up hang_up_in
    seconds after the start (or once they are out, if later); sent[0]
    counts the chats that went out."""
    hang_up_at = time.monotonic() + hang_up_in
    conn.sock.settimeout(CLIENT_TIMEOUT_S)
    try:
        for size in sizes:
            conn.seq += 1
            conn.send(rt.client_pb2.ClientMessage(
                seq=conn.seq, chat=rt.client_pb2.ChatRequest(text="f" * size)))
            sent[0] += 1
    except OSError:
        pass
    time.sleep(max(0.0, hang_up_at - time.monotonic()))
    conn.close()


def db_path(cluster):
    return os.path.join(cluster.run_dir, "ringgate.db")


def install_gold_log(cluster):
    """Record every change of a player's gold in campaign_gold_log, by a
    trigger in the cluster's own database: it sees each write whatever
    code path makes it, so an earn applied twice shows as two rows."""
    db = sqlite3.connect(db_path(cluster), timeout=10)
    db.executescript("""
        CREATE TABLE campaign_gold_log (id INTEGER PRIMARY KEY, player_id INTEGER NOT NULL,
                                        delta INTEGER NOT NULL);
        CREATE TRIGGER campaign_gold_log AFTER UPDATE OF gold ON players
        WHEN NEW.gold <> OLD.gold
        BEGIN
            INSERT INTO campaign_gold_log (player_id, delta) VALUES (NEW.id, NEW.gold - OLD.gold);
        END;
    """)
    db.close()


def campaign(args):
    # Every player and flood comes from 127.0.0.1: lift the login limits
    # that exist to stop one machine's flood (they have tests of their own).
    lifted = {"gateway": ["--logins-per-addr-per-sec", "0", "--creates-per-addr-per-hour", "0"],
              "dbproxy": ["--creates-per-sec", "0"],
              # A dropped player stays for a resume this long (the players
              # here log in afresh): short, so that the ghost check's wait
              # covers it.
              "gamesrv": ["--resume-grace-ms", str(RESUME_GRACE_MS)]}
    gateways, shard_count = args.topology or (1, 1)
    if args.topology:
        # Zone i on shard i, every one the default square (a position is
        # valid in each); a short lease, so that a shard's players can be
        # taken over within the faults' times.
        lifted["gamesrv"] += [
            "--zones", ",".join("%d:-1000:-1000:1000:1000" % z
                                for z in range(2, shard_count + 1)),
            "--zone-shards", ",".join("%d:%d" % (z, z) for z in range(1, shard_count + 1)),
            "--lease-ms", str(LEASE_MS)]
    with rt.Cluster(args.build_dir, link_ms=(HEARTBEAT_MS, args.dead_ms), args=lifted,
                    gateways=gateways, shards=shard_count) as cluster:
        install_gold_log(cluster)
        c = Campaign(cluster, args)
        c.start_load()
        try:
            c.run_faults()
        finally:
            c.procs.cont_all()
            c.stop_load()
        failures = [p.failure for p in c.players if p.failure]
        if failures:
            raise AssertionError("a player thread failed:\n" + failures[0])
        c.check_ghosts()
        cluster.down()
        c.check_database()
        c.check_leases()
        c.report()
        violations = sum(c.findings.counts.values())
        if violations:
            # Raised inside the cluster's block: the harness keeps the run
            # directory (logs, database) and prints the logs' tails.
            raise AssertionError("%d invariant violations (seed %d)" % (violations, args.seed))


def topology_arg(text):
    """"2x2" -> (2, 2): gateways, shards (1..16 each)."""
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or not (1 <= int(m.group(1)) <= 16 and 1 <= int(m.group(2)) <= 16):
        raise argparse.ArgumentTypeError("want GATEWAYSxSHARDS, e.g. 2x2, not %r" % text)
    return int(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build_dir")
    ap.add_argument("--seed", type=int, default=None,
                    help="replay the faults of this seed (default: a random one, printed)")
    ap.add_argument("--duration", type=float, default=60, help="seconds of faults")
    ap.add_argument("--players", type=int, default=6, help="accounted Python players")
    ap.add_argument("--bot-players", type=int, default=12, help="load bot players (0: none)")
    ap.add_argument("--dead-ms", type=int, default=2000, help="the links' dead time")
    ap.add_argument("--topology", type=topology_arg, default=None, metavar="GxS",
                    help="G gateways x S gamesrv shards (deploy's [topology]; default: one "
                         "of each, as before)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "little")
    print("fault campaign: seed %d (replay with --seed %d), duration %g s" % (
        args.seed, args.seed, args.duration), flush=True)
    if faketime_library() is None:
        print("SKIP: libfaketime is missing (Debian: apt-get install faketime; "
              "tools/install-deps.sh installs it)")
        sys.exit(77)
    try:
        campaign(args)
    except Exception:
        traceback.print_exc()
        print("FAIL (seed %d)" % args.seed)
        sys.exit(1)
    print("PASS (seed %d)" % args.seed)
    sys.exit(0)


if __name__ == "__main__":
    main()
