"""The load bot walking across a shard border (issue 14): one gateway, two
gamesrv shards (zone 1 on shard 1, zone 2 on shard 2; tests/ringgate_test/
shards.py), 20 players travelling between the zones every third move while
they chat, ping and earn. Passes when the bot exits 0 (every request
answered exactly once, ZONE_HANDOFF answers retried; no earn lost or
applied twice by the durable totals; every MoveReply in the zone asked for;
after every travel the new zone's players in view) and its JSON shows
handoffs were made, and when the shards' lease log lines never have a
player online on both shards at once.

usage: border_walk.py BUILD_DIR
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests"))

import ringgate_test as rt  # noqa: E402
from ringgate_test import leases, shards  # noqa: E402

PLAYERS = 20


def test(build_dir):
    spread = shards.start(build_dir, shards=2, zones=shards.DEFAULT_ZONES[:2],
                          zone_shards={1: 1, 2: 2})
    shards.wait_world(spread, [1, 2])
    out_json = os.path.join(spread.work_dir, "bot.json")
    cmd = [os.path.join(build_dir, "bench", "bot", "bot"),
           "--port", str(spread.gateway(1).port), "--players", str(PLAYERS), "--ramp", "0",
           "--duration", "4", "--move-rate", "5", "--border-every", "3",
           "--border-zones", "1,2", "--expect-views", "--chat-rate", "0.5",
           "--ping-rate", "1", "--earn-rate", "1", "--timeout-ms", "10000",
           "--json", out_json]
    rt.log(" ".join(cmd))
    status = subprocess.run(cmd, timeout=120).returncode
    with open(out_json) as f:
        report = json.load(f)
    assert status == 0, "bot exit status %d" % status
    travel = report["requests"]["travel"]
    # Each player crosses about every 0.6 s for 4 s.
    assert travel["answered"] >= PLAYERS, travel
    assert report["views"]["seen"] > 0, report["views"]
    assert report["requests"]["earn"]["answered"] > 0, report["requests"]["earn"]
    rt.log("handoffs %d (p50 %.2f p99 %.2f ms), retried after ZONE_HANDOFF %d; views p99 "
           "%.2f ms" % (travel["answered"], travel["p50_ms"], travel["p99_ms"],
                        sum(r["retried"] for r in report["requests"].values()),
                        report["views"]["p99_ms"]))
    runs = spread.lease_runs()
    leases.assert_online_once(runs)
    on_shard_2 = {iv.player for run in runs if run.shard == 2 for iv in run.intervals()[0]}
    assert len(on_shard_2) >= PLAYERS // 2, "players ever on shard 2: %s" % on_shard_2


if __name__ == "__main__":
    rt.main(test)
