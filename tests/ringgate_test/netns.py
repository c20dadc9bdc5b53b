"""Hosts: network namespaces standing in for machines, so that the links
of a test cross real interfaces instead of one loopback device.

Each host is a namespace with its own loopback and one veth whose other end
sits on a bridge in the root namespace; the hosts' addresses are on a test
subnet that exists only on those veths (the bridge has no address), so no
packet of a test can leave the machine. Every process of a test runs inside
a host (procs.start(..., host=...) wraps its command line with `ip netns
exec`), and the test program dials from a host of its own (Hosts.inside):
the root namespace would route the subnet out of its default route (see
shared/PROBES.md).

A partition is the host's veth set down (open connections stall, as behind
a pulled cable) and healed by setting it up again. A cut between two hosts
only (block/unblock) is a firewall table inside one of them (nftables)
dropping the other's address both ways.

Creating namespaces needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): elsewhere
Hosts() ends the test as skipped (exit 77) and says why.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess

from .base import log, skip

SUBNET = "10.99.0"  # a /24 that exists only on the test's veths
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(path):
    """Move the calling thread into the network namespace at path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, "setns %s: %s" % (path, os.strerror(err)))
    finally:
        os.close(fd)


def _ip(*args, check=True):
    proc = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    if check and proc.returncode != 0:
        raise AssertionError("ip %s: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


class Hosts:
    """The hosts named in names, each with an address SUBNET.n (n from 1 in
    the order given). Use as a context manager: the namespaces, veths and the
    bridge are removed at the end whatever happened."""

    def __init__(self, names):
        if os.geteuid() != 0:
            skip("network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN)")
        if shutil.which("ip") is None:
            skip("no `ip` command (Debian package iproute2)")
        # Interface names are at most 15 bytes: the pid keeps two tests
        # running at once apart; the subnet may repeat, as each test's hosts
        # see only their own bridge.
        self.tag = "rg%d" % os.getpid()
        self.bridge = self.tag + "br"
        self.names = list(names)
        self.netns = {name: "%s-%s" % (self.tag, name) for name in self.names}
        self.veth = {name: "%sv%d" % (self.tag, i) for i, name in enumerate(self.names)}
        self.addrs = {name: "%s.%d" % (SUBNET, i + 1) for i, name in enumerate(self.names)}
        self._made = []
        self.processes = []  # procs.Process run on these hosts
        try:
            self._create()
        except AssertionError as err:
            self.close()
            if not self._made:
                skip("cannot create network namespaces here: %s" % err)
            raise

    def _create(self):
        _ip("link", "add", self.bridge, "type", "bridge")
        self._made.append(("link", self.bridge))
        _ip("link", "set", self.bridge, "up")
        for name in self.names:
            ns, veth = self.netns[name], self.veth[name]
            _ip("netns", "add", ns)
            self._made.append(("netns", ns))
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            # Deleted by name too: a namespace outlives `ip netns del` while
            # a process is still in it, and so would its veth.
            self._made.append(("link", veth))
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", self.addrs[name] + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        log("hosts:", ", ".join("%s %s" % (n, self.addrs[n]) for n in self.names))

    def __getitem__(self, name):
        """Host name, to hand to procs.start(..., host=)."""
        return Host(self, name)

    def addr(self, name):
        """The address of host name."""
        return self.addrs[name]

    def wrap(self, name, args):
        """The command line args run inside host name."""
        return ["ip", "netns", "exec", self.netns[name]] + list(args)

    @contextlib.contextmanager
    def inside(self, name):
        """Run the block with the calling thread in host name: a socket made
        there stays there (a socket keeps the namespace it was made in), so
        `with hosts.inside("client"): c = GameClient(...)` is a client on
        that host. The thread returns to the namespace it came from after,
        so the rest of the test (and every `ip` command) runs where it
        started."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            _setns(os.path.join("/var/run/netns", self.netns[name]))
            try:
                yield
            finally:
                _setns("/proc/self/fd/%d" % home)
        finally:
            os.close(home)

    def cut(self, name):
        """Partition host name from every other host (its cable pulled)."""
        log("partition: %s cut off" % name)
        _ip("link", "set", self.veth[name], "down")

    def heal(self, name):
        """End the partition of host name."""
        log("partition: %s back" % name)
        _ip("link", "set", self.veth[name], "up")

    def block(self, name, peer):
        """Drop every packet between hosts name and peer, both ways (a
        firewall on name); both still reach every other host. Skips the
        test (77) where nftables is missing."""
        if shutil.which("nft") is None:
            skip("no `nft` command (Debian package nftables) for a cut between two hosts")
        log("partition: %s cut off from %s" % (name, peer))
        addr = self.addrs[peer]
        self._nft(name, "table inet rg_%s {\n"
                  "  chain input { type filter hook input priority 0; ip saddr %s drop; }\n"
                  "  chain output { type filter hook output priority 0; ip daddr %s drop; }\n"
                  "}\n" % (peer, addr, addr))

    def unblock(self, name, peer):
        """End block(name, peer)."""
        log("partition: %s and %s reach each other again" % (name, peer))
        self._nft(name, "delete table inet rg_%s\n" % peer)

    def _nft(self, name, script):
        proc = subprocess.run(self.wrap(name, ["nft", "-f", "-"]), input=script, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise AssertionError("nft in %s: %s" % (name, proc.stderr.strip()))

    def close(self):
        """Stop the processes run on the hosts, newest first (the gateways
        before the game servers before dbproxy, as they were started), while
        their links still work, so that they drain as they would; then
        remove what was made, newest first; harmless twice."""
        for p in reversed(self.processes):
            if p.alive():
                try:
                    p.stop()
                except AssertionError as err:
                    log(err)
        self.processes = []
        for kind, what in reversed(self._made):
            if kind == "netns":
                _ip("netns", "del", what, check=False)
            else:
                _ip("link", "del", what, check=False)
        self._made = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Host:
    """One host of a Hosts: what procs.start needs to run a process there."""

    def __init__(self, hosts, name):
        self.hosts = hosts
        self.name = name
        self.addr = hosts.addr(name)

    def wrap(self, args):
        return self.hosts.wrap(self.name, args)

    def adopt(self, process):
        """process runs here: stop it before the hosts go."""
        self.hosts.processes.append(process)
