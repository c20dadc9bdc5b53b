"""The options every process shares (issue 10: one options table), checked
on the three real binaries, one case per argument:

  port_file         --port 0 --port-file F: F holds the bound port once the
                    process is ready; it serves there and its admin port,
                    logs no ERROR, and exits 0 on SIGTERM
  admin_port_taken  a taken --admin-port stops the start (exit 1, an error
                    naming --admin-port) before the port file is written
  bad_options       a value outside its row's range, a word not in its list
                    and an unknown flag each exit 2 naming the option; the
                    same from the INI file; --help lists the shared flags
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request

import ringgate_test as rt

PROCS = ("dbproxy", "gamesrv", "gateway")
SHARED = ("--loops=N", "--engine=TEXT", "--log-level=TEXT", "--admin-host=TEXT",
          "--admin-port=N", "--secret-file=TEXT", "--insecure-no-auth", "--port-file=TEXT",
          "--host=TEXT", "--port=N")
WAIT = 30


def argv_of(build, proc, work, *extra):
    argv = [os.path.join(build, proc, proc), "--insecure-no-auth", "--log-level", "info"]
    if proc == "dbproxy":
        argv += ["--run-dir", os.path.join(work, "run"), "--pwhash", "min"]
    if proc == "gateway":
        argv += ["--ws-port", "0"]  # not the default 7778 another test may hold
    return argv + list(extra)


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT,
                       stdin=subprocess.DEVNULL)
    rt.log("$ %s -> %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-2000:], r.stderr))
    return r


def port_file(build, work):
    for proc in PROCS:
        path = os.path.join(work, proc + ".port")
        admin = rt.free_ports(1)[0]
        log_path = os.path.join(work, proc + ".log")
        with open(log_path, "w") as log:
            child = subprocess.Popen(argv_of(build, proc, work, "--port", "0", "--port-file",
                                             path, "--admin-port", str(admin)),
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        try:
            rt.eventually(lambda: os.path.exists(path) or child.poll() is not None,
                          timeout=WAIT, what=proc + " port file")
            assert child.poll() is None, "%s exited: %d" % (proc, child.returncode)
            with open(path) as f:
                port = int(f.read())
            assert 0 < port < 65536, port
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            url = "http://127.0.0.1:%d/metrics" % admin
            text = urllib.request.urlopen(url, timeout=5).read().decode()
            assert "ringgate_net_" in text, text[:200]
            child.send_signal(signal.SIGTERM)
            assert child.wait(WAIT) == 0, "%s did not exit 0" % proc
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        with open(log_path, errors="replace") as f:
            text = f.read()
        assert " ERROR " not in text and "Sanitizer" not in text, text


def admin_port_taken(build, work):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    taken = holder.getsockname()[1]
    try:
        for proc in PROCS:
            path = os.path.join(work, proc + ".port")
            r = run(argv_of(build, proc, work, "--port", "0", "--port-file", path,
                            "--admin-port", str(taken)))
            assert r.returncode == 1, (proc, r.returncode)
            assert "--admin-port %d" % taken in r.stderr, r.stderr
            assert not os.path.exists(path), proc + " wrote its port file"
    finally:
        holder.close()


def bad_options(build, work):
    ini = os.path.join(work, "cluster.ini")
    for proc in PROCS:
        for flags, says in ((["--loops", "256"], "--loops=256 is outside 0..255"),
                            (["--port=65536"], "--port=65536 is outside 0..65535"),
                            (["--log-level", "loud"], "--log-level must be debug, info,"),
                            (["--listen-port", "1"], "unknown option: --listen-port")):
            r = run(argv_of(build, proc, work, "--admin-port", "0", *flags))
            assert r.returncode == 2 and says in r.stderr, (proc, flags, r.stderr)
        with open(ini, "w") as f:
            f.write("[%s]\nadmin_port = 70000\n" % proc)
        r = run(argv_of(build, proc, work, "--config", ini))
        assert r.returncode == 2 and "--admin-port=70000 is outside 0..65535" in r.stderr, \
            r.stderr
        r = run([os.path.join(build, proc, proc), "--help"])
        assert r.returncode == 0, r.returncode
        for flag in SHARED:
            assert flag in r.stdout, (proc, flag)
    # gamesrv's list of dbproxies: HOST:PORT, comma-separated, at most 16.
    for dbproxies in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:7702,", ":7702",
                      "127.0.0.1:77x", ",".join(["127.0.0.1:7702"] * 17)):
        r = run(argv_of(build, "gamesrv", work, "--admin-port", "0", "--dbproxies", dbproxies))
        assert r.returncode == 2 and "--dbproxies must be HOST:PORT" in r.stderr, \
            (dbproxies, r.stderr)


CASES = {f.__name__: f for f in (port_file, admin_port_taken, bad_options)}


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print("usage: %s BUILD_DIR CASE (%s)" % (sys.argv[0], ", ".join(CASES)))
        sys.exit(2)
    with tempfile.TemporaryDirectory(prefix="ringgate-options-") as work:
        try:
            CASES[sys.argv[2]](os.path.abspath(sys.argv[1]), work)
        except Exception:
            import traceback
            traceback.print_exc()
            for name in sorted(os.listdir(work)):
                if name.endswith(".log"):
                    with open(os.path.join(work, name), errors="replace") as f:
                        print("----- %s -----\n%s" % (name, f.read()[-3000:]))
            print("FAIL")
            sys.exit(1)
    print("PASS")
    sys.exit(0)


if __name__ == "__main__":
    main()
