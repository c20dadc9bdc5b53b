"""The options every process shares (issue 10: one options table), checked
on the three real binaries, one case per argument:

  port_file         --port 0 --port-file F: F holds the bound port once the
                    process is ready; --admin-port 0 --admin-port-file A: A
                    holds a free admin port that serves GET /metrics; it
                    logs no ERROR, and exits 0 on SIGTERM
  admin_port_taken  a taken --admin-port stops the start (exit 1, an error
                    naming --admin-port) before the port file is written
  bad_options       a value outside its row's range, a word not in its list
                    and an unknown flag each exit 2 naming the option; the
                    same from the INI file; --help lists the shared flags
"""
import os
import socket
import subprocess
import urllib.request

import ringgate_test as rt

SHARED = ("--loops=N", "--engine=TEXT", "--log-level=TEXT", "--admin-host=TEXT",
          "--admin-port=N", "--secret-file=TEXT", "--insecure-no-auth", "--port-file=TEXT",
          "--admin-port-file=TEXT", "--host=TEXT", "--port=N")


def argv_of(build, proc, work, *extra, **listen):
    """proc's command line: links without the secret, INFO logs, its own
    link timings, dbproxy's database in work, the gateway's WebSocket port
    on any free port (not the default 7778 another test may hold); listen:
    procs.listen_args()'s keywords; then extra."""
    run_dir = os.path.join(work, "run") if proc == "dbproxy" else None
    if proc == "gateway":
        extra = ("--ws-port", "0") + extra
    return rt.procs.argv(proc, build, *extra, run_dir=run_dir, log_level="info",
                         heartbeat_ms=None, dead_ms=None, insecure=True, **listen)


def run(argv):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=rt.WAIT,
                       stdin=subprocess.DEVNULL)
    rt.log("$ %s -> %d\n%s%s" % (" ".join(argv), r.returncode, r.stdout[-2000:], r.stderr))
    return r


def port_file(build):
    work = rt.temp_dir("ringgate-options-")
    for proc in rt.PROCS:
        path, admin_path = (os.path.join(work, proc + ext) for ext in (".port", ".admin-port"))
        p = rt.procs.Process(proc, argv_of(build, proc, work, port_file=path,
                                           admin_port_file=admin_path),
                             os.path.join(work, proc + ".log"), path)
        port = p.wait_listening()
        assert 0 < port < 65536, port
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        # Written before the port file: it is there now.
        admin = rt.procs.port_in(admin_path)
        assert admin and admin != port, admin
        url = "http://127.0.0.1:%d/metrics" % admin
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        assert "ringgate_net_" in text, text[:200]
        assert p.stop() == 0, "%s did not exit 0" % proc
        assert " ERROR " not in p.text(), p.text()


def admin_port_taken(build):
    work = rt.temp_dir("ringgate-options-")
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(8)
    taken = holder.getsockname()[1]
    try:
        for proc in rt.PROCS:
            path = os.path.join(work, proc + ".port")
            r = run(argv_of(build, proc, work, "--admin-port", str(taken), port_file=path))
            assert r.returncode == 1, (proc, r.returncode)
            assert "--admin-port %d" % taken in r.stderr, r.stderr
            assert not os.path.exists(path), proc + " wrote its port file"
    finally:
        holder.close()


def bad_options(build):
    work = rt.temp_dir("ringgate-options-")
    ini = os.path.join(work, "cluster.ini")
    for proc in rt.PROCS:
        for flags, says in ((["--loops", "256"], "--loops=256 is outside 0..255"),
                            (["--port=65536"], "--port=65536 is outside 0..65535"),
                            (["--log-level", "loud"], "--log-level must be debug, info,"),
                            (["--listen-port", "1"], "unknown option: --listen-port")):
            r = run(argv_of(build, proc, work, *flags))
            assert r.returncode == 2 and says in r.stderr, (proc, flags, r.stderr)
        with open(ini, "w") as f:
            f.write("[%s]\nadmin_port = 70000\n" % proc)
        r = run(argv_of(build, proc, work, "--config", ini))
        assert r.returncode == 2 and "--admin-port=70000 is outside 0..65535" in r.stderr, \
            r.stderr
        r = run([rt.procs.binary(build, proc), "--help"])
        assert r.returncode == 0, r.returncode
        for flag in SHARED:
            assert flag in r.stdout, (proc, flag)
    # gamesrv's list of dbproxies: HOST:PORT, comma-separated, at most 16.
    for dbproxies in ("127.0.0.1", "127.0.0.1:0", "127.0.0.1:7702,", ":7702",
                      "127.0.0.1:77x", ",".join(["127.0.0.1:7702"] * 17)):
        r = run(argv_of(build, "gamesrv", work, "--admin-port", "0", "--dbproxies", dbproxies))
        assert r.returncode == 2 and "--dbproxies must be HOST:PORT" in r.stderr, \
            (dbproxies, r.stderr)
    # gamesrv's zone map: known zones, each once, shards 1..65535.
    zones = ["--admin-port", "0", "--zones", "2:0:0:10:10"]
    for zone_shards, says in (("3:2", "names zone 3, which is neither"),
                              ("2:2,2:3", "names zone 2 twice"),
                              ("2:0", "--zone-shards must be ZONE:SHARD"),
                              ("2:65536", "--zone-shards must be ZONE:SHARD"),
                              ("2", "--zone-shards must be ZONE:SHARD"),
                              ("2:2,", "--zone-shards must be ZONE:SHARD")):
        r = run(argv_of(build, "gamesrv", work, *zones, "--zone-shards", zone_shards))
        assert r.returncode == 2 and says in r.stderr, (zone_shards, r.stderr)
    r = run(argv_of(build, "gamesrv", work, "--admin-port", "0", "--lease-ms", "299"))
    assert r.returncode == 2 and "--lease-ms=299 is outside 300.." in r.stderr, r.stderr


rt.main(cases={f.__name__: f for f in (port_file, admin_port_taken, bad_options)},
        bindings=False)
