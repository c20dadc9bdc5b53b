"""Spread: a cluster of N gateways x M gamesrv shards (and one dbproxy, or
several on one PostgreSQL server) with every process on a host of its own
(netns.Hosts), started by the test directly, so that every link crosses
real interfaces and a host can be cut off (Hosts.cut / heal).

Hosts (Spread.host_names): "db" (or "db1", "db2", ... for several
dbproxies), "s1".."sM" (shard i on host si), "g1".."gN" (gateway i on
host gi), and "client", where the test's game clients dial from.

    with Hosts(Spread.host_names(2, 2)) as hosts:
        spread = Spread(build_dir, hosts, gateways=2, shards=2, lease_ms=1500)
        ann = spread.client("ann", gateway=1)
        ...
        spread.kill_shard(2); spread.start_shard(2)
        leases.assert_online_once(spread.lease_runs())

A kind with one instance runs with today's flags (no --shard, --gamesrvs,
--gateway-id), as deploy/ringgate does; with several, shard i gets --shard
i and every gateway --gateway-id and --gamesrvs (every shard, in order).
Each process serves its metrics on any free admin port of its host's
loopback (metrics(proc) reads them from inside that host).
"""

import os
import signal
import time

from . import procs
from .base import eventually, log, temp_dir
from .cluster import db_query, scrape
from .conn import GameClient
from .leases import Run


def secret_file(work_dir):
    """A fresh cluster secret (32 random bytes, mode 0600) in work_dir."""
    path = os.path.join(work_dir, "cluster.secret")
    with open(path, "wb") as f:
        f.write(os.urandom(32))
    os.chmod(path, 0o600)
    return path


class Spread:
    """The processes of an N x M topology on hosts (see the module's text).

    heartbeat_ms, dead_ms: every link end's; lease_ms: gamesrv --lease-ms
    (None: the default); zones: extra gamesrv flags every shard gets (the
    zone bounds and the zone map); args: {"dbproxy"|"gamesrv"|"gateway"|
    "gamesrv-2"|"gateway-1"|...: [flags]} added after everything else, to
    every instance of a kind or to one; dbproxies: how many dbproxies
    (more than one needs backend "postgres"; shard i uses all of them,
    through --dbproxies, starting with dbproxy (i - 1) % n + 1);
    postgres_dsn: the server of backend "postgres"."""

    def __init__(self, build_dir, hosts, gateways=1, shards=1, heartbeat_ms=200, dead_ms=1000,
                 lease_ms=None, zones=(), args=None, dbproxies=1, postgres_dsn=None):
        self.build_dir = build_dir
        self.hosts = hosts
        self.n_gateways, self.n_shards, self.n_dbproxies = gateways, shards, dbproxies
        self.work_dir = temp_dir("ringgate-spread-")
        self.args = args or {}
        self.common = dict(secret_file=secret_file(self.work_dir), heartbeat_ms=heartbeat_ms,
                           dead_ms=dead_ms)
        self.shard_flags = list(zones) + (["--lease-ms", str(lease_ms)] if lease_ms else [])
        self.postgres_dsn = postgres_dsn
        self.runs = {}   # shard -> [Run] of its earlier runs (ended)
        self.clients = []  # every client() made, closed by close_clients()
        self.dbproxies = [self._start("dbproxy", i) for i in range(1, dbproxies + 1)]
        self.shards = [self._start("gamesrv", i) for i in range(1, shards + 1)]
        self.gateways = [self._start("gateway", i) for i in range(1, gateways + 1)]
        for i in range(1, gateways + 1):
            self.wait_linked(i)

    @staticmethod
    def host_names(gateways, shards, dbproxies=1):
        """The hosts a Spread of that shape runs on (give them to Hosts)."""
        dbs = ["db"] if dbproxies == 1 else ["db%d" % i for i in range(1, dbproxies + 1)]
        return (dbs + ["s%d" % i for i in range(1, shards + 1)]
                + ["g%d" % i for i in range(1, gateways + 1)] + ["client"])

    # -- where things are -------------------------------------------------------

    def host_of(self, kind, i):
        """The host name of the i-th (from 1) instance of kind."""
        if kind == "dbproxy":
            return "db" if self.n_dbproxies == 1 else "db%d" % i
        return {"gamesrv": "s", "gateway": "g"}[kind] + str(i)

    def addr(self, kind, i):
        return self.hosts.addr(self.host_of(kind, i))

    def shard(self, i):
        """The running process of shard i."""
        return self.shards[i - 1]

    def gateway(self, i):
        return self.gateways[i - 1]

    # -- starting ----------------------------------------------------------------

    def _dir(self, kind, i):
        path = os.path.join(self.work_dir, "%s-%d" % (kind, i))
        os.makedirs(path, exist_ok=True)
        return path

    def _flags(self, kind, i):
        """The flags of the i-th instance of kind beyond procs' own."""
        if kind == "dbproxy":
            flags = []
            if self.postgres_dsn:
                flags = ["--backend", "postgres", "--postgres-dsn", self.postgres_dsn]
        elif kind == "gamesrv":
            n = self.n_dbproxies
            if n == 1:
                flags = ["--dbproxy-host", self.addr("dbproxy", 1), "--dbproxy-port",
                         str(self.dbproxies[0].port)]
            else:
                order = [(i - 1 + k) % n + 1 for k in range(n)]
                flags = ["--dbproxies", ",".join("%s:%d" % (self.addr("dbproxy", d),
                                                             self.dbproxies[d - 1].port)
                                                 for d in order)]
            if self.n_shards > 1:
                flags += ["--shard", str(i), "--instance", "gamesrv-%d" % i]
            flags += self.shard_flags
        else:
            if self.n_shards > 1:
                flags = ["--gamesrvs", ",".join("%s:%d" % (self.addr("gamesrv", s),
                                                           self.shards[s - 1].port)
                                                for s in range(1, self.n_shards + 1))]
            else:
                flags = ["--gamesrv-host", self.addr("gamesrv", 1), "--gamesrv-port",
                         str(self.shards[0].port)]
            if self.n_gateways > 1:
                flags += ["--gateway-id", str(i), "--instance", "gateway-%d" % i]
        return flags + self.args.get(kind, []) + self.args.get("%s-%d" % (kind, i), [])

    def _start(self, kind, i, port=0):
        work = self._dir(kind, i)
        admin_file = os.path.join(work, kind + ".admin-port")
        if os.path.exists(admin_file):
            os.unlink(admin_file)
        p = procs.start(kind, self.build_dir, work, *self._flags(kind, i),
                        host=self.hosts[self.host_of(kind, i)], port=port,
                        admin_port_file=admin_file, **self.common)
        p.admin_port = eventually(lambda: procs.port_in(admin_file), timeout=10,
                                  what=kind + "'s admin port")
        if kind == "gamesrv":
            # Its lease owner id is its op_id epoch: no login before it.
            eventually(lambda: "op_id epoch" in p.text(), timeout=15,
                       what="shard %d's op_id epoch from dbproxy" % i)
        p.started_at = time.time()
        return p

    def start_shard(self, i):
        """Start shard i again (after kill_shard or stop_shard), on the port
        it had: the gateways redial it. Waits until every gateway's link
        to it is up again."""
        old = self.shards[i - 1]
        assert not old.alive(), "shard %d still runs" % i
        self.shards[i - 1] = self._start("gamesrv", i, port=old.port)
        for g in range(1, self.n_gateways + 1):
            self.wait_linked(g, shards=[i])

    def kill_shard(self, i, sig=signal.SIGKILL):
        """kill -9 shard i and wait for its end; its run ends now (its lease
        lines show no offline for the players it held)."""
        p = self.shards[i - 1]
        log("kill -%d shard %d (pid %d)" % (sig, i, p.proc.pid))
        p.stop(sig)
        self.runs.setdefault(i, []).append(Run(i, p.text(), end=time.time()))

    # -- links -------------------------------------------------------------------

    def metrics(self, kind, i=1):
        """The i-th kind's /metrics samples, read from inside its host."""
        p = {"dbproxy": self.dbproxies, "gamesrv": self.shards,
             "gateway": self.gateways}[kind][i - 1]
        with self.hosts.inside(self.host_of(kind, i)):
            return scrape(p.admin_port, "%s-%d" % (kind, i))

    def link_up(self, gateway, shard):
        """The gateway's own word on its link to shard (Hello answered)."""
        m = self.metrics("gateway", gateway)
        value = m.get('ringgate_gateway_shard_link_up{shard="%d"}' % shard)
        if value is None and self.n_shards == 1:
            value = m.get("ringgate_gateway_gamesrv_link_up")
        return value == 1

    def wait_linked(self, gateway, shards=None, timeout=15):
        """Wait until the gateway's links to shards (default: all) are up."""
        for s in shards or range(1, self.n_shards + 1):
            eventually(lambda: self.link_up(gateway, s), timeout=timeout,
                       what="gateway %d's link to shard %d up" % (gateway, s))

    # -- clients and the database -------------------------------------------------

    def client(self, name, gateway=1):
        """A GameClient on gateway i, dialing from the host "client"."""
        with self.hosts.inside("client"):
            c = GameClient(self.gateways[gateway - 1].port, name,
                           address=self.addr("gateway", gateway))
        self.clients.append(c)
        return c

    def close_clients(self):
        """Close every client made here, so that the gateways, stopped next,
        need not wait (drain) for them to go."""
        for c in self.clients:
            c.close()
        self.clients = []

    def db_rows(self, sql, params=()):
        """The rows of a query on the database (cluster.db_query)."""
        return db_query(sql, params, postgres_dsn=self.postgres_dsn,
                        sqlite_path=os.path.join(self._dir("dbproxy", 1), "run", "ringgate.db"))

    def db_gold(self, name):
        """The player's gold as the database says."""
        return self.db_rows("SELECT gold FROM players WHERE name = ?", (name,))[0][0]

    def player_id(self, name):
        return self.db_rows("SELECT id FROM players WHERE name = ?", (name,))[0][0]

    # -- leases ------------------------------------------------------------------

    def lease_runs(self):
        """Every run of every shard so far (leases.Run), the ended ones with
        their end: what leases.assert_online_once checks."""
        runs = [run for ended in self.runs.values() for run in ended]
        for i, p in enumerate(self.shards, 1):
            if p.alive():
                runs.append(Run(i, p.text()))
            elif not any(r.text == p.text() for r in self.runs.get(i, [])):
                runs.append(Run(i, p.text(), end=time.time()))
        return runs
