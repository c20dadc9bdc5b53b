"""The world across shards on this machine's loopback (issue 14): a
spread.Spread of N gateways x M gamesrv shards whose processes all run
here (Loopback stands in for netns.Hosts), with one zone map for every
shard. For benches and tests that load or measure the topology rather
than cut its links (those use Spread on netns hosts).

    spread = shards.start(build_dir, zones=ZONES, zone_shards={2: 2})
    shards.wait_world(spread, [1, 2])
    spread.gateway(1).port, spread.kill_shard(2), spread.lease_runs(), ...
"""

import contextlib

from .base import eventually
from .conn import Closed
from .spread import Spread

# Small zones: with the view radius below, every player of a zone sees
# every other (the bot's --expect-views wants that).
DEFAULT_ZONES = ((1, 0, 0, 100, 100), (2, 200, 0, 300, 100), (3, 400, 0, 500, 100))
DEFAULT_VIEW_RADIUS = 150

# Every client here comes from 127.0.0.1: lift the per-address limits that
# stop one machine's flood (they have tests of their own).
LIFTED = {"gateway": ["--max-clients-per-addr", "0", "--connects-per-addr-per-sec", "0",
                      "--logins-per-addr-per-sec", "0", "--creates-per-addr-per-hour", "0"],
          "dbproxy": ["--creates-per-sec", "0"]}


class Loopback:
    """netns.Hosts' interface with every host this machine's loopback:
    processes run here, at 127.0.0.1."""

    def __getitem__(self, name):
        return None  # procs.start(host=None): here

    def addr(self, name):
        return "127.0.0.1"

    def inside(self, name):
        return contextlib.nullcontext()


def zone_flags(zones, zone_shards, view_radius=DEFAULT_VIEW_RADIUS):
    """gamesrv's flags for zones ((id, min_x, min_y, max_x, max_y), ...;
    the first is --zone-*, the rest --zones) owned as zone_shards ({zone:
    shard}; zones not named: shard 1) says."""
    first, more = zones[0], zones[1:]
    flags = ["--zone-id", str(first[0]), "--zone-min-x", str(first[1]),
             "--zone-min-y", str(first[2]), "--zone-max-x", str(first[3]),
             "--zone-max-y", str(first[4]), "--view-radius", str(view_radius),
             "--zone-shards", ",".join("%d:%d" % zs for zs in sorted(zone_shards.items()))]
    if more:
        flags += ["--zones", ",".join(":".join(str(v) for v in z) for z in more)]
    return flags


def start(build_dir, gateways=1, shards=2, zones=DEFAULT_ZONES, zone_shards=None,
          view_radius=DEFAULT_VIEW_RADIUS, log_levels=None, args=None, **spread_args):
    """A Spread on the loopback, once every gateway is linked to every
    shard. zone_shards: default zone i+1 on shard (i % shards) + 1.
    log_levels: {kind: level} (default: the harness's debug). args: more
    flags by kind or instance (Spread's args), after LIFTED's.
    spread_args: Spread's heartbeat_ms, dead_ms, lease_ms."""
    if zone_shards is None:
        zone_shards = {z[0]: i % shards + 1 for i, z in enumerate(zones)}
    flags = {kind: list(v) for kind, v in LIFTED.items()}
    for kind, level in (log_levels or {}).items():
        flags.setdefault(kind, []).extend(["--log-level", level])
    for key, more in (args or {}).items():
        flags.setdefault(key, []).extend(more)
    return Spread(build_dir, Loopback(), gateways=gateways, shards=shards,
                  zones=zone_flags(zones, zone_shards, view_radius), args=flags,
                  **spread_args)


def wait_world(spread, zones, timeout=30):
    """Wait until a probe player logs in through every gateway and travels
    into each of zones (ids) in turn, then out again: every shard that
    owns one of them takes players (its database link is up, its zone map
    agrees)."""
    from . import protos
    for gi in range(1, spread.n_gateways + 1):
        def travels():
            try:
                c = spread.client("probe", gateway=gi)
            except OSError:
                return False
            try:
                reply = c.login("worldprobe%d" % gi, "probe-pw")
                if reply.WhichOneof("body") != "login":
                    return False
                bounds = {z.id: z for z in reply.login.zones}
                for zid in list(zones) + [zones[0]]:
                    z = bounds[zid]
                    r = c.request(move=protos.client_pb2.MoveRequest(
                        x=(z.min_x + z.max_x) / 2, y=(z.min_y + z.max_y) / 2, zone=zid))
                    if r.WhichOneof("body") != "move" or r.move.zone != zid:
                        return False
                return c.logout().WhichOneof("body") == "logout"
            except (Closed, OSError, AssertionError, KeyError):
                return False
            finally:
                c.close()
        eventually(travels, timeout=timeout, what="gateway %d reaches every zone" % gi,
                   interval=0.3)
