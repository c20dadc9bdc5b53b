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
import subprocess
import sys

UNIT_DIR = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(UNIT_DIR))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))
import ringgate_test as rt  # noqa: E402

INSTALLED_BIN = "/usr/local/bin/"
PROCESSES = ("dbproxy", "gamesrv", "gateway")
STATE_DIR = "/var/lib/ringgate"


def run(cmd, **kw):
    print("[test] $", " ".join(cmd), flush=True)
    return subprocess.run(cmd, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, **kw)


def exec_start(unit_text):
    lines = [line for line in unit_text.splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, "one ExecStart= per unit, got %s" % lines
    return shlex.split(lines[0][len("ExecStart="):])


def start_like_the_unit(process, argv, work):
    """Run argv (the unit's ExecStart, paths made local, listening on
    free ports) until it is listening, then SIGTERM it: it must exit 0."""
    port_file = os.path.join(work, process + ".port")
    argv = argv + rt.procs.listen_args(0, port_file)
    if process == "gateway":
        argv += ["--ws-port", "0"]  # not the default 7778 another test may hold
    p = rt.procs.Process(process, argv, os.path.join(work, process + ".log"), port_file)
    p.wait_listening(timeout=30)
    code = p.stop(timeout=30)
    assert code == 0, "%s exited %d on SIGTERM:\n%s" % (process, code, p.text())


def test(build_dir):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        rt.skip("no systemd-analyze here")
    work = rt.temp_dir("ringgate-units-")
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


rt.main(test, bindings=False)
