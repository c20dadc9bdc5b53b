"""The load bot against a real cluster (deploy/ringgate on free ports,
tests/ringgate_test.Cluster): 200 players walking at 10 Hz over two zones,
with chats, pings and earns. Passes when the bot exits 0 (every request
answered without an Error, no protocol error, nobody dropped) and its JSON
shows the views at work: WorldUpdates arrived and push latencies were
timed. No figure is asserted: the machine is shared.

usage: cluster_smoke.py BUILD_DIR [ws]     (ws: 100 players over the
gateway's WebSocket port, bot --transport ws)
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests"))

import ringgate_test as rt  # noqa: E402


def test(build_dir, transport="tcp"):
    # Two zones; every bot comes from 127.0.0.1, so the login limits that
    # stop one machine's flood are lifted.
    args = {"gamesrv": ["--log-level", "info", "--zones", "2:0:0:400:400"],
            "gateway": ["--logins-per-addr-per-sec", "0", "--creates-per-addr-per-hour", "0"],
            "dbproxy": ["--creates-per-sec", "0"]}
    with rt.Cluster(build_dir, args=args) as cluster:
        out_json = os.path.join(cluster.run_dir, "bot.json")
        players = 200 if transport == "tcp" else 100
        port = cluster.gateway_port if transport == "tcp" else cluster.ws_port
        cmd = [os.path.join(build_dir, "bench", "bot", "bot"), "--transport", transport,
               "--port", str(port), "--players", str(players), "--ramp", "400",
               "--duration", "3", "--move-rate", "10", "--chat-rate", "0.2",
               "--ping-rate", "1", "--earn-rate", "0.2", "--walk-step", "20",
               "--timeout-ms", "20000", "--json", out_json]
        rt.log(" ".join(cmd))
        status = subprocess.run(cmd, timeout=120).returncode
        with open(out_json) as f:
            report = json.load(f)
        assert status == 0, "bot exit status %d" % status
        for kind, r in report["requests"].items():
            assert r["sent"] > 0 and r["answered"] == r["sent"], (kind, r)
        assert report["logged_in_at_end"] == players, report["logged_in_at_end"]
        assert report["pushes"]["update"] > 0, report["pushes"]
        assert report["update_entries"]["moved"] > 0, report["update_entries"]
        assert report["push_latency"]["timed"] > 0, report["push_latency"]
        rt.log("push latency p50 %.2f p99 %.2f ms; %.1f positions per player per second"
               % (report["push_latency"]["p50_ms"], report["push_latency"]["p99_ms"],
                  report["positions_per_player_s"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[2] == "ws":
        rt.main(cases={"ws": lambda build_dir: test(build_dir, "ws")})
    else:
        rt.main(test)
