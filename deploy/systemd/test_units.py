"""The systemd units of deploy/systemd, checked without booting anything:

1. `cmake --install BUILD --component runtime` into a temporary prefix puts
   gateway, gamesrv and dbproxy in <prefix>/bin (what the units run);
2. each installed program starts with its unit's ExecStart flags (the
   repository's cluster.ini in place of /etc/ringgate/cluster.ini, a
   temporary state directory in place of /var/lib/ringgate, and free ports
   appended), says it is listening, and exits 0 on SIGTERM;
3. `systemd-analyze verify` finds nothing to say about the units, with
   ExecStart pointed at the installed copies (verify checks they exist).

Exits 77 (skipped) where systemd-analyze is not available.
usage: test_units.py BUILD_DIR
"""
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(UNIT_DIR))
INSTALLED_BIN = "/usr/local/bin/"
PROCESSES = ("dbproxy", "gamesrv", "gateway")
STATE_DIR = "/var/lib/ringgate"
# What each program logs once it listens, and the flags that move its
# listening sockets to free ports (0) for this test.
READY = {"dbproxy": "listening on", "gamesrv": "gamesrv ready",
         "gateway": "listening for clients"}
FREE_PORTS = {"dbproxy": ["--port", "0"], "gamesrv": ["--port", "0"],
              "gateway": ["--port", "0"]}


def run(cmd, **kw):
    print("[test] $", " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, **kw)


def exec_start(unit_text):
    lines = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, "one ExecStart= per unit, got %s" % lines
    return shlex.split(lines[0][len("ExecStart="):])


def start_like_the_unit(process, argv, work):
    """Run argv (the unit's ExecStart, paths made local) until it is
    listening, then SIGTERM it: it must exit 0. Bounded waits only."""
    log_path = os.path.join(work, process + ".log")
    argv = argv + FREE_PORTS[process] + ["--admin-port", "0"]
    print("[test] $", " ".join(argv), flush=True)
    with open(log_path, "w") as log:
        child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=work)
    try:
        deadline = time.monotonic() + 30
        while True:
            with open(log_path) as f:
                text = f.read()
            if READY[process] in text:
                break
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%s did not start with its unit's flags (exit %s):\n%s"
                                     % (process, child.returncode, text))
            time.sleep(0.05)
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
        assert code == 0, "%s exited %d on SIGTERM:\n%s" % (process, code, open(log_path).read())
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    build_dir = sys.argv[1]
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        print("SKIP: no systemd-analyze here")
        return 77
    work = tempfile.mkdtemp(prefix="ringgate-units-")
    try:
        prefix = os.path.join(work, "prefix")
        proc = run(["cmake", "--install", build_dir, "--prefix", prefix,
                    "--component", "runtime"])
        print(proc.stdout)
        assert proc.returncode == 0, "cmake --install failed"
        for name in PROCESSES:
            path = os.path.join(prefix, "bin", name)
            assert os.access(path, os.X_OK), "not installed: " + path

        units = sorted(glob.glob(os.path.join(UNIT_DIR, "*.service")) +
                       glob.glob(os.path.join(UNIT_DIR, "*.target")))
        names = [os.path.basename(u) for u in units]
        assert names == ["ringgate-dbproxy.service", "ringgate-gamesrv.service",
                         "ringgate-gateway.service", "ringgate.target"], names
        out_dir = os.path.join(work, "units")
        os.mkdir(out_dir)
        # The state directory as dbproxy's ExecStartPre leaves it.
        state = os.path.join(work, "state")
        os.mkdir(state, 0o700)
        fd = os.open(os.path.join(state, "cluster.secret"), os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        for unit in units:
            with open(unit) as f:
                text = f.read()
            name = os.path.basename(unit)
            if name.endswith(".service"):
                argv = exec_start(text)
                process = name[len("ringgate-"):-len(".service")]
                assert argv[0] == INSTALLED_BIN + process, argv
                assert "--config" in argv and "/etc/ringgate/cluster.ini" in argv, argv
                local = [os.path.join(prefix, "bin", process)]
                for arg in argv[1:]:
                    if arg == "/etc/ringgate/cluster.ini":
                        arg = os.path.join(SOURCE_DIR, "deploy", "cluster.ini")
                    local.append(arg.replace(STATE_DIR, state))
                start_like_the_unit(process, local, work)
                text = text.replace(INSTALLED_BIN, os.path.join(prefix, "bin") + "/")
            with open(os.path.join(out_dir, name), "w") as f:
                f.write(text)

        proc = run([analyze, "verify", "--man=no"] +
                   [os.path.join(out_dir, n) for n in names])
        print(proc.stdout)
        assert proc.returncode == 0, "systemd-analyze verify failed"
        # verify only warns (exit 0) about unknown keys or bad values: any
        # remark about our units is a failure.
        remarks = [line for line in proc.stdout.splitlines() if out_dir in line
                   or "ringgate" in line]
        assert not remarks, "systemd-analyze verify remarks:\n" + "\n".join(remarks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as err:
        print("FAIL:", err)
        sys.exit(1)
