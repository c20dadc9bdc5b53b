"""ringgate's test harness for Python: every Python test imports it
(`import ringgate_test as rt`, with tests/ on sys.path) so that a new test
is a few lines of what it checks, not a copy of how to start a process.

  base      deadlines (eventually), expectations on replies, temporary
            directories, the skip exit code (77)
  protos    client_pb2 / internal_pb2, generated from proto/ at test time
  conn      Framed, the one framed connection (varints and frames from
            clients/python/ringgate_client.py), and GameClient on it
  procs     starting gateway, gamesrv and dbproxy: their flags, ports
            (--port-file or the log line), stopping them
  cluster   a whole cluster through deploy/ringgate (N gateways x M shards
            with Cluster(gateways=, shards=))
  netns     hosts: network namespaces joined by a bridge, cut and healed
  spread    a cluster of N gateways x M shards with each process on a host
  leases    the shards' lease log lines: nobody online on two shards at once
  ws        the gateway's WebSocket port over raw sockets: handshakes,
            frames, and WsGameClient (GameClient over WebSocket)
  and main() here, which runs a test program.
"""

import sys
import threading
import traceback

from . import base, procs, protos, ws
from .base import (SKIP, SOURCE_DIR, WAIT, body_of, eventually, expect, expect_error, log,
                   skip, temp_dir)
from .cluster import Cluster, any_port_env, on_cluster, recorded_port
from .conn import (Closed, as_bytes, Framed, GameClient, dial, encode_frame, encode_varint, listen,
                   parse_frame)
from .procs import PROCS, all_threads_stopped, start
from .protos import load_protos, parser

__all__ = ["SKIP", "SOURCE_DIR", "WAIT", "body_of", "eventually", "expect", "expect_error", "log",
           "skip", "temp_dir", "PROCS", "Cluster", "any_port_env", "on_cluster", "recorded_port",
           "Closed", "Framed", "GameClient", "as_bytes", "dial", "encode_frame", "encode_varint",
           "listen", "parse_frame", "start", "all_threads_stopped", "load_protos", "parser", "main",
           "procs", "ws"]


def __getattr__(name):
    """rt.client_pb2 and rt.internal_pb2: the bindings load_protos() made."""
    if name in ("client_pb2", "internal_pb2"):
        return getattr(protos, name)
    raise AttributeError(name)


def main(test_fn=None, cases=None, bindings=True):
    """Run a test program and exit: main(fn) runs fn(build_dir) (usage:
    prog BUILD_DIR); main(cases={name: fn}) runs one case, fn(build_dir)
    (usage: prog BUILD_DIR CASE). The bindings are loaded first, unless
    bindings is False (a test that speaks no protobuf). Exit 0 on
    a pass, 1 on a failure (the traceback and the end of every process's
    log printed), 77 when skipped, 2 on a usage error. Every process started
    through procs is stopped, and a sanitizer report in any of their logs
    fails the test; temporary directories are removed on a pass."""
    threading.current_thread().name = "test"
    want = 3 if cases is not None else 2
    if len(sys.argv) != want or (cases is not None and sys.argv[2] not in cases):
        print("usage: %s BUILD_DIR%s" % (sys.argv[0], " CASE" if cases is not None else ""))
        if cases is not None:
            print("cases: " + " ".join(cases))
        sys.exit(2)
    fn = cases[sys.argv[2]] if cases is not None else test_fn
    ok = skipped = False
    try:
        if bindings:
            load_protos()
        fn(sys.argv[1])
        ok = True
    except SystemExit as exc:
        skipped = exc.code == SKIP
        raise
    except Exception:
        traceback.print_exc()
    finally:
        procs.stop_all()
        reports = [line for p in procs.children() for line in p.sanitizer_reports()]
        if reports:
            ok = skipped = False
            print("sanitizer reports:\n" + "\n".join(reports))
        if not ok and not skipped:
            for p in procs.children():
                print("----- %s (last 60 lines) -----" % p.log_path)
                print("\n".join(p.text().splitlines()[-60:]))
        base.clean_temp_dirs(keep=not ok and not skipped)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)
