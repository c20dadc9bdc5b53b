"""A world across shards (issue 14) started process by process on
127.0.0.1: one dbproxy, M gamesrv shards (`--shard i`, one zone map for
all) and N gateways (`--gateway-id i`, `--gamesrvs` listing every shard),
each on ports the kernel picked, with one cluster secret. For benches and
tests that measure or load this topology without deploy/ringgate.

    topo = shards.start(build_dir, work_dir, zones=ZONES, zone_shards={2: 2})
    topo.gateways[0].port, topo.shards[1].log_path, topo.stop_shard(2), ...
"""

import calendar
import os
import re
import time

from . import procs
from .base import eventually, log
from .conn import Closed, GameClient

# Small zones by default: with the view radius below, every player of a
# zone sees every other (the border walk's view check wants that).
DEFAULT_ZONES = ((1, 0, 0, 100, 100), (2, 200, 0, 300, 100), (3, 400, 0, 500, 100))
DEFAULT_VIEW_RADIUS = 150


def zones_args(zones, view_radius=DEFAULT_VIEW_RADIUS):
    """gamesrv's flags for zones ((id, min_x, min_y, max_x, max_y), ...):
    the first is --zone-*, the rest --zones."""
    first, more = zones[0], zones[1:]
    args = ["--zone-id", str(first[0]), "--zone-min-x", str(first[1]),
            "--zone-min-y", str(first[2]), "--zone-max-x", str(first[3]),
            "--zone-max-y", str(first[4]), "--view-radius", str(view_radius)]
    if more:
        args += ["--zones", ",".join(":".join(str(v) for v in z) for z in more)]
    return args


def zone_shards_arg(zone_shards):
    """--zone-shards' value for {zone: shard} (zones not named: shard 1)."""
    return ",".join("%d:%d" % (z, s) for z, s in sorted(zone_shards.items()))


class Topology:
    """The processes of start(): db, shards[i] (shard i + 1), gateways[i]
    (gateway id i + 1); the flags each was started with, to start one
    again after a fault."""

    def __init__(self, build_dir, work_dir, secret_file, log_level):
        self.build_dir = build_dir
        self.work_dir = work_dir
        self.secret_file = secret_file
        self.log_level = log_level
        self.db = None
        self.shards = []
        self.gateways = []
        self.shard_args = []
        self.gateway_args = []

    def _start(self, name, sub, args, peer_port=None, **settings):
        d = os.path.join(self.work_dir, sub)
        os.makedirs(d, exist_ok=True)
        return procs.start(name, self.build_dir, d, *args, peer_port=peer_port,
                           secret_file=self.secret_file, log_level=self.log_level, **settings)

    def start_shard(self, shard):
        """Start shard (1..M) with its flags (again, after a fault: it
        listens on its old port, which the gateways dial)."""
        i = shard - 1
        port = self.shards[i].port if i < len(self.shards) and self.shards[i] else 0
        p = self._start("gamesrv", "shard%d" % shard, self.shard_args[i], peer_port=self.db.port,
                        port=port)
        if i < len(self.shards):
            self.shards[i] = p
        else:
            self.shards.append(p)
        return p

    def start_gateway(self, gateway_id):
        """Start gateway gateway_id (1..N) with its flags (again, after a
        fault: on its old port)."""
        i = gateway_id - 1
        port = self.gateways[i].port if i < len(self.gateways) and self.gateways[i] else 0
        p = self._start("gateway", "gateway%d" % gateway_id, self.gateway_args[i], port=port)
        if i < len(self.gateways):
            self.gateways[i] = p
        else:
            self.gateways.append(p)
        return p

    def processes(self):
        return [self.db] + self.shards + self.gateways

    def lease_events(self):
        """lease_events() of every shard's log (this life's and earlier
        ones': a log file is appended to)."""
        out = []
        for shard, p in enumerate(self.shards, 1):
            try:
                with open(p.log_path, errors="replace") as f:
                    out += lease_events(f, shard)
            except FileNotFoundError:
                pass
        return sorted(out)

    def stop(self):
        for p in reversed(self.processes()):
            if p is not None and p.alive():
                try:
                    p.stop()
                except AssertionError as err:
                    log(str(err))


def start(build_dir, work_dir, shards=2, gateways=1, zones=DEFAULT_ZONES, zone_shards=None,
          view_radius=DEFAULT_VIEW_RADIUS, lease_ms=None, log_level="warn", gamesrv_args=(),
          gateway_args=(), dbproxy_args=(), **link_settings):
    """Start the topology and return its Topology once every process
    listens. zone_shards: {zone: shard} (default: zone i+1 on shard
    (i % shards) + 1). lease_ms: gamesrv's --lease-ms (None: its default).
    link_settings: procs.settings_args' heartbeat_ms / dead_ms for every
    process. The gateways' per-address login limits are lifted (every
    client here comes from 127.0.0.1)."""
    secret = os.path.join(work_dir, "cluster.secret")
    with open(secret, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(secret, 0o600)
    if zone_shards is None:
        zone_shards = {z[0]: i % shards + 1 for i, z in enumerate(zones)}
    topo = Topology(build_dir, work_dir, secret, log_level)
    topo.db = topo._start("dbproxy", "db", ["--creates-per-sec", "0"] + list(dbproxy_args),
                          **link_settings)
    common = zones_args(zones, view_radius) + ["--zone-shards", zone_shards_arg(zone_shards)]
    if lease_ms is not None:
        common += ["--lease-ms", str(lease_ms)]
    for s in range(1, shards + 1):
        topo.shard_args.append(["--shard", str(s)] + common + list(gamesrv_args))
        topo.start_shard(s)
    upstream = ",".join("127.0.0.1:%d" % p.port for p in topo.shards)
    for g in range(1, gateways + 1):
        topo.gateway_args.append(
            ["--gateway-id", str(g), "--gamesrvs", upstream,
             "--max-clients-per-addr", "0", "--connects-per-addr-per-sec", "0",
             "--logins-per-addr-per-sec", "0", "--creates-per-addr-per-hour", "0"]
            + list(gateway_args))
        topo.start_gateway(g)
    return topo


def wait_world(topo, zones, timeout=30):
    """Wait until a probe player can log in through every gateway and
    travel into each of zones (ids) in turn: every gateway's link to every
    shard that owns one of them is up."""
    from . import protos
    for gi, gw in enumerate(topo.gateways, 1):
        def travels():
            try:
                c = GameClient(gw.port, "probe")
            except OSError:
                return False
            try:
                reply = c.login("worldprobe%d" % gi, "probe-pw")
                if reply.WhichOneof("body") != "login":
                    return False
                bounds = {z.id: z for z in reply.login.zones}
                for zid in zones:
                    z = bounds[zid]
                    r = c.request(move=protos.client_pb2.MoveRequest(
                        x=(z.min_x + z.max_x) / 2, y=(z.min_y + z.max_y) / 2, zone=zid))
                    if r.WhichOneof("body") != "move" or r.move.zone != zid:
                        return False
                c.logout()
                return True
            except (Closed, OSError, AssertionError, KeyError):
                return False
            finally:
                c.close()
        eventually(travels, timeout=timeout, what="gateway %d reaches every zone" % gi,
                   interval=0.3)


# A shard's lease log line (ISSUE14.md "Log lines"), after rg_log's
# "2026-12-01T17:03:38.123Z gamesrv[pid] INFO  " prefix.
LEASE_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z .*"
                        r"lease: player (\d+) (online|offline) epoch (\d+)(?: \((.*)\))?")


def log_time(stamp, millis):
    """Seconds since the epoch of an rg_log stamp (UTC) and its milliseconds."""
    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S")) + int(millis) / 1000


def lease_events(lines, shard):
    """(time, 0 offline / 1 online, shard, player, epoch, reason) for each
    lease line of lines (a shard's log): sorted, an offline goes before an
    online of the same millisecond (a handoff's source logs offline before
    it hands the player over)."""
    out = []
    for line in lines:
        m = LEASE_LINE.match(line)
        if m:
            out.append((log_time(m.group(1), m.group(2)), int(m.group(4) == "online"), shard,
                        int(m.group(3)), int(m.group(5)), m.group(6) or ""))
    return out


def online_twice(events, deaths=None, end=None):
    """The moments a player was online on two shards at once, from lease
    events (Topology.lease_events): [(player, shard_a, shard_b, from, to)].
    A shard holds a player from its online line to its offline line, or to
    the shard's death (deaths: {shard: [times of kill -9]}; a dead shard
    logs nothing), or to end (default: never; still held)."""
    deaths = deaths or {}
    end = end if end is not None else float("inf")
    intervals = {}   # player -> [(from, to, shard)]
    open_at = {}     # (player, shard) -> time
    for t, online, shard, player, _epoch, _reason in sorted(events):
        key = (player, shard)
        start = open_at.pop(key, None)
        if start is not None:
            # Closed by this line, or by a death in between (the line is
            # then a later life's).
            died = [d for d in deaths.get(shard, ()) if start <= d <= t]
            intervals.setdefault(player, []).append((start, min(died) if died else t, shard))
        if online:
            open_at[key] = t
    for (player, shard), start in open_at.items():
        died = [d for d in deaths.get(shard, ()) if d >= start]
        intervals.setdefault(player, []).append((start, min(died) if died else end, shard))
    twice = []
    for player, spans in intervals.items():
        spans.sort()
        for i, (a0, a1, sa) in enumerate(spans):
            for b0, b1, sb in spans[i + 1:]:
                if b0 >= a1:
                    break
                if sb != sa and b0 < a1 and a0 < b1:
                    twice.append((player, sa, sb, b0, min(a1, b1)))
    return twice
