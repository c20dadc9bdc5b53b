"""Who held which player when, from the shards' own log lines, and the
check that nobody was ever online on two shards at once.

Each gamesrv shard logs (RG_INFO, docs/protocol.md section 11)
    lease: player <id> online epoch <E>
when it starts holding a playing player (login, adopt, a handoff undone)
and
    lease: player <id> offline epoch <E> (<reason>)
when it stops (leave, kicked by a fence or a lost or self-fenced lease,
frozen for a handoff). A run of a shard (one process, from its start to
its end) gives each player intervals [online, offline) on that shard; a
run killed with SIGKILL logs no offline line, so its intervals end at the
run's end (the caller says when that was). All processes of a test are on
one machine, so the log lines' wall-clock timestamps (milliseconds) share
one clock.

    runs = [Run(1, text_of_shard_1), Run(2, text_of_old_shard_2, end=killed_at), ...]
    assert_online_once(runs)    # AssertionError naming the overlaps
"""

import calendar
import collections
import re
import time

# "2026-12-01T17:03:10.054Z gamesrv[27902] INFO  lease: player 7 online epoch 3"
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \S+ INFO\s+lease: player "
                  r"(\d+) (online|offline) epoch (\d+)(?: \((.*)\))?\s*$", re.M)

Event = collections.namedtuple("Event", "t player online epoch reason")
# open: no offline line yet (end is then the run's end, or now).
Interval = collections.namedtuple("Interval", "shard player start end epoch open")


def _seconds(stamp, millis):
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000.0


def events(text):
    """The lease lines of one run's log text, in order, as Events (t: Unix
    seconds)."""
    return [Event(_seconds(m.group(1), m.group(2)), int(m.group(3)), m.group(4) == "online",
                  int(m.group(5)), m.group(6)) for m in LINE.finditer(text)]


class Run:
    """One run of shard `shard`: its log text, and end, the Unix time it
    ended at the latest (None: it still runs, so open intervals last until
    now)."""

    def __init__(self, shard, text, end=None):
        self.shard = shard
        self.text = text
        self.end = end

    def intervals(self):
        """(intervals, problems): each player's [online, offline) intervals
        on this run, and what the lines themselves get wrong (an online
        while online, an offline while not online, or an epoch other than
        the online's)."""
        open_at = {}
        out, problems = [], []
        for e in events(self.text):
            if e.online:
                if e.player in open_at:
                    problems.append("shard %d: player %d online again at %.3f (epoch %d) "
                                    "without going offline" % (self.shard, e.player, e.t, e.epoch))
                    continue
                open_at[e.player] = e
            else:
                start = open_at.pop(e.player, None)
                if start is None:
                    problems.append("shard %d: player %d offline at %.3f while not online"
                                    % (self.shard, e.player, e.t))
                    continue
                if start.epoch != e.epoch:
                    problems.append("shard %d: player %d online at epoch %d, offline at %d"
                                    % (self.shard, e.player, start.epoch, e.epoch))
                out.append(Interval(self.shard, e.player, start.t, e.t, start.epoch, False))
        end = self.end if self.end is not None else time.time()
        for player, start in open_at.items():
            out.append(Interval(self.shard, player, start.t, max(end, start.t), start.epoch, True))
        return out, problems


def check(runs):
    """What is wrong in runs (a list of Run): players online on two shards
    (or two runs) at once, epochs that went back, and bad line sequences;
    [] when nothing is. Intervals that only touch ([a, b) then [b, c)) do
    not overlap: a handoff logs offline on the source before the target
    logs online."""
    problems, by_player = [], collections.defaultdict(list)
    for run in runs:
        got, bad = run.intervals()
        problems += bad
        for iv in got:
            by_player[iv.player].append(iv)
    for player, ivs in sorted(by_player.items()):
        ivs.sort(key=lambda iv: (iv.start, iv.end))
        for i, a in enumerate(ivs):
            for b in ivs[i + 1:]:
                if b.start >= a.end:
                    break
                problems.append("player %d online twice: shard %d [%.3f, %.3f) epoch %d and "
                                "shard %d [%.3f, %.3f) epoch %d"
                                % (player, a.shard, a.start, a.end, a.epoch, b.shard, b.start,
                                   b.end, b.epoch))
        for a, b in zip(ivs, ivs[1:]):
            if b.epoch < a.epoch:
                problems.append("player %d: epoch went back from %d (shard %d) to %d (shard %d)"
                                % (player, a.epoch, a.shard, b.epoch, b.shard))
    return problems


def assert_online_once(runs):
    """AssertionError listing check(runs)'s findings, if any; returns how
    many online intervals the runs hold (a test can check it saw some)."""
    problems = check(runs)
    if problems:
        raise AssertionError("lease log lines:\n  " + "\n  ".join(problems))
    return sum(len(run.intervals()[0]) for run in runs)


def holders(runs, player):
    """The shards whose live runs hold player online now."""
    return sorted({iv.shard for run in runs if run.end is None
                   for iv in run.intervals()[0] if iv.player == player and iv.open})
