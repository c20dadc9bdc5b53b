"""deploy/ringgate's own duties (issue 11, item 16), one case per argument:

  run_dir_default    the run directory defaults to run/ beside deploy/, so
                     `down` run from another directory stops the cluster
  admin_port_taken   a process whose admin port is taken does not start
                     (clear error), instead of serving beside another
                     cluster whose figures `status` would then show
  up_stops_started   when a later process fails, `up` stops the ones it
                     started: no half cluster is left running
  rebuilds           `up` runs the build every time, so an edited source
                     is rebuilt instead of its old binary being started
  topology_checked   a [topology] entry that is not HOST:PORT, or more
                     shards than a gateway takes, stops `up` before it
                     starts anything, naming the entry

Each case runs a copy of deploy/ (the script and cluster.ini) in a
temporary directory, which is then the "checkout" the script belongs to,
with the real processes from the build tree on any free loopback ports
(the kernel's pick, recorded in the run directory).
`rebuilds` puts a tiny CMake project in that checkout whose programs exec
the real ones, so that a build is seconds, not the whole tree.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import ringgate_test as rt

WAIT = 30


class Checkout:
    """A temporary directory holding deploy/ringgate and deploy/cluster.ini,
    and the environment that runs them on any free ports."""

    def __init__(self, build_dir):
        self.root = rt.temp_dir("ringgate-deploy-")
        os.mkdir(os.path.join(self.root, "deploy"))
        for name in ("ringgate", "cluster.ini"):
            shutil.copy2(os.path.join(rt.SOURCE_DIR, "deploy", name),
                         os.path.join(self.root, "deploy", name))
        self.script = os.path.join(self.root, "deploy", "ringgate")
        self.env = {name: value for name, value in os.environ.items()
                    if not name.startswith("RINGGATE_")}
        self.env.update(rt.any_port_env())
        self.env.update({
            "RINGGATE_BUILD_DIR": build_dir,
            "RINGGATE_BUILD": "0",
            "RINGGATE_READY_TIMEOUT_S": "20",
            "RINGGATE_DBPROXY_ARGS": "--pwhash min",
        })
        self.pids = set()

    def deploy(self, *args, cwd=None):
        """Run the script; returns (exit code, output)."""
        rt.log("deploy/ringgate", *args, "(in %s)" % (cwd or self.root))
        proc = subprocess.run([self.script] + list(args), env=self.env, cwd=cwd or self.root,
                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=120, stdin=subprocess.DEVNULL)
        sys.stdout.write(proc.stdout)
        for line in proc.stdout.splitlines():
            # "ringgate: dbproxy up (pid 123, port 456)"
            if " up (pid " in line:
                self.pids.add(int(line.split(" up (pid ")[1].split(",")[0]))
        return proc.returncode, proc.stdout

    def run_dir(self):
        return os.path.join(self.root, "run")

    def log_text(self, proc):
        try:
            with open(os.path.join(self.run_dir(), proc + ".log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def cleanup(self):
        """Stop whatever a case left running (a failed case included)."""
        self.deploy("down")
        for pid in self.pids:
            if rt.procs.alive(pid):
                rt.log("left running: pid %d; killing it" % pid)
                os.kill(pid, signal.SIGKILL)


def assert_stopped(checkout, what):
    for pid in checkout.pids:
        rt.eventually(lambda: not rt.procs.alive(pid), timeout=WAIT,
                      what="pid %d stopped (%s)" % (pid, what))


def run_dir_default(c):
    here, elsewhere = (os.path.join(c.root, d) for d in ("here", "elsewhere"))
    os.mkdir(here)
    os.mkdir(elsewhere)
    code, _ = c.deploy("up", cwd=here)
    assert code == 0, "up failed"
    assert len(c.pids) == 3, c.pids
    assert os.path.exists(os.path.join(c.run_dir(), "gateway.pid")), \
        "the run directory is not run/ beside deploy/"
    code, out = c.deploy("down", cwd=elsewhere)
    assert code == 0, out
    assert_stopped(c, "down from another directory")


def admin_port_taken(c):
    # Someone else (another cluster, say) holds gamesrv's admin port.
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    taken = holder.getsockname()[1]
    c.env["RINGGATE_GAMESRV_ADMIN_PORT"] = str(taken)
    try:
        code, out = c.deploy("up")
        assert code != 0, "up succeeded with gamesrv's admin port taken"
        assert "gamesrv did not start" in out, out
        log = c.log_text("gamesrv")
        assert "--admin-port %d" % taken in log and "in use" in log, log
        code, out = c.deploy("status")
        assert code != 0, "status says the cluster is up"
    finally:
        holder.close()


def up_stops_started(c):
    # The gateway refuses its flags; dbproxy and gamesrv start before it.
    c.env["RINGGATE_GATEWAY_ARGS"] = "--max-frame 1"
    code, out = c.deploy("up")
    assert code != 0, "up succeeded with a gateway that cannot start"
    assert "gateway did not start" in out, out
    assert "max-frame" in c.log_text("gateway")
    assert len(c.pids) == 2, "dbproxy and gamesrv should have started: %s" % c.pids
    assert_stopped(c, "up failed later")
    for proc in rt.PROCS:
        assert not os.path.exists(os.path.join(c.run_dir(), proc + ".pid")), proc


WRAPPER_V1 = """#include <stdio.h>
int main(void)
{
	fputs("wrapper: the old build\\n", stderr);
	return 3;
}
"""

WRAPPER_V2 = """#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv)
{
	(void)argc;
	execv(REAL, argv);
	perror(REAL);
	return 127;
}
"""


def rebuilds(c):
    build_dir = c.env.pop("RINGGATE_BUILD_DIR")
    c.env["RINGGATE_BUILD"] = "1"  # the default: build into <checkout>/build
    targets = "\n".join(
        "add_executable(%s wrapper.c)\n"
        "target_compile_definitions(%s PRIVATE REAL=\"%s\")\n"
        "set_target_properties(%s PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/%s)"
        % (name, name, os.path.join(build_dir, path, name), name, path)
        for name, path in (("dbproxy", "dbproxy"), ("gamesrv", "gamesrv"),
                           ("gateway", "gateway"), ("ringgate-cli", "tools/cli")))
    with open(os.path.join(c.root, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.13)\nproject(deploy_test C)\n" + targets + "\n")
    wrapper = os.path.join(c.root, "wrapper.c")
    with open(wrapper, "w") as f:
        f.write(WRAPPER_V1)
    code, out = c.deploy("up")
    assert code != 0 and "dbproxy did not start" in out, "the old build should not start"
    assert "wrapper: the old build" in c.log_text("dbproxy")
    # Edit the source (a second later, so its time is newer for any make).
    time.sleep(1.1)
    with open(wrapper, "w") as f:
        f.write(WRAPPER_V2)
    code, out = c.deploy("up")
    assert code == 0, "up did not rebuild the edited source"
    assert len(c.pids) == 3, c.pids
    code, out = c.deploy("down")
    assert code == 0, out
    assert_stopped(c, "down")


def topology_checked(c):
    for var, value, says in (
            ("RINGGATE_TOPOLOGY_SHARDS", "127.0.0.1:0,127.0.0.1", '[topology] shards: entry 2 is '
             '"127.0.0.1", not HOST:PORT'),
            ("RINGGATE_TOPOLOGY_GATEWAYS", "127.0.0.1:99999", "[topology] gateways: entry 1"),
            ("RINGGATE_TOPOLOGY_SHARDS", ",".join(["127.0.0.1:0"] * 17), "at most 16")):
        c.env[var] = value
        code, out = c.deploy("up")
        del c.env[var]
        assert code != 0 and says in out, (value, out)
        assert not c.pids, "up started something: %s" % c.pids
        assert not os.path.exists(os.path.join(c.run_dir(), "dbproxy.pid"))


def on_checkout(case):
    """case(checkout) as a harness case: on a fresh Checkout, stopped
    whatever happens, its logs printed when it fails."""
    def run(build_dir):
        if not shutil.which("ss"):
            rt.skip("deploy/ringgate needs ss (iproute2)")
        c = Checkout(os.path.abspath(build_dir))
        try:
            case(c)
        except BaseException:
            for proc in rt.PROCS:
                print("----- %s.log -----\n%s" % (proc, c.log_text(proc)[-3000:]))
            raise
        finally:
            c.cleanup()
    return run


rt.main(cases={f.__name__: on_checkout(f) for f in (run_dir_default, admin_port_taken,
                                                    up_stops_started, rebuilds,
                                                    topology_checked)},
        bindings=False)
