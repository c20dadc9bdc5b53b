#!/usr/bin/python3
"""Smoke test of the load bot against a stand-in gateway.

The stand-in speaks client.proto (the test harness's bindings and the
client library's framing) on 127.0.0.1, port chosen by the kernel: it answers
Login with two zones, Move, Chat, Ping, Earn and Logout, and sends a
PlayerJoined push after each login, so the bot exercises replies and
pushes. A move into the other zone (the bot's border walk) is answered,
then the players of that zone arrive as a WorldUpdate, and the next request
of that connection is refused with ZONE_HANDOFF (as a request caught in a
handoff is), earns included: nothing is done, the bot must send it again.
The bot runs a ramp, a short steady phase with the border walk and a
reconnect storm; the test passes when the bot exits 0 (every request
answered, no protocol error, no earn lost or doubled, a view after every
zone change) and its JSON agrees: every request answered or abandoned by
the storm, zone changes and retries made, the storm dropped players, and
they all logged in again.

Then the bot's own checks are checked: the stand-in turns defective, one
defect a run (DEFECTS), and the bot must fail (exit 1) and count it: an
earn applied twice (earn_doubled), an earn acknowledged but never applied
(earn_lost), a request answered twice (answered_twice).
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402


async def read_frames(reader):
    """The frame bodies arriving on an asyncio stream, until it ends."""
    frames = rt.protos.ringgate_client.FrameReader()
    while True:
        data = await reader.read(65536)
        if not data:
            return
        for body in frames.feed(data):
            yield body


ZONES = ((1, 0, 0, 100, 100), (2, 100, 0, 200, 100))  # id, min_x, min_y, max_x, max_y

# The stand-in's defects, one per run after the clean one: the bot's JSON
# field that must count it.
DEFECTS = {"double": "earn_doubled", "lose": "earn_lost", "twice": "answered_twice"}


def make_handler(pb, defect):
    """The stand-in's connection handler; defect["mode"] (None or a key of
    DEFECTS) is read at each request."""
    gold = {}
    zone_of = {}   # name -> the zone it is in (kept over logins, as a database would)
    ids = {}       # name -> player id

    def state(name):
        return pb.PlayerState(player_id=ids[name], name=name, zone=zone_of[name])

    async def handle(reader, writer):
        name = None
        caught = False  # the next request is caught in the handoff
        try:
            async for body in read_frames(reader):
                msg = pb.ClientMessage.FromString(body)
                out = pb.ServerMessage(seq=msg.seq)
                kind = msg.WhichOneof("body")
                travelled = False
                if caught and kind != "login":
                    caught = False
                    out.error.code = pb.ZONE_HANDOFF
                    kind = "refused"
                if kind == "login":
                    name = msg.login.name
                    ids.setdefault(name, len(ids) + 1)
                    zone_of.setdefault(name, 1)
                    out.login.self.CopyFrom(state(name))
                    out.login.self.gold = gold.get(name, 0)
                    for zid, x0, y0, x1, y1 in ZONES:
                        out.login.zones.add(id=zid, min_x=x0, min_y=y0, max_x=x1, max_y=y1)
                    out.login.zone.CopyFrom(out.login.zones[zone_of[name] - 1])
                elif kind == "move":
                    out.move.x, out.move.y = msg.move.x, msg.move.y
                    if msg.move.zone not in (0, zone_of[name]):
                        zone_of[name] = msg.move.zone
                        travelled = caught = True
                    out.move.zone = zone_of[name]
                elif kind == "chat":
                    out.chat.SetInParent()
                elif kind == "ping":
                    out.pong.client_time = msg.ping.client_time
                elif kind == "earn":
                    amount = msg.earn.amount
                    odd = amount == 7  # the defective earns
                    applied = {"double": 2 * amount, "lose": 0}.get(defect["mode"], amount)
                    gold[name] = gold.get(name, 0) + (applied if odd else amount)
                    out.earn.gold = gold[name] + (amount if odd and applied == 0 else 0)
                elif kind == "logout":
                    out.logout.SetInParent()
                writer.write(rt.encode_frame(out.SerializeToString()))
                if kind == "ping" and defect["mode"] == "twice" and msg.seq % 4 == 0:
                    writer.write(rt.encode_frame(out.SerializeToString()))
                if kind == "login":
                    push = pb.ServerMessage(seq=0)
                    push.joined.player.name = name
                    writer.write(rt.encode_frame(push.SerializeToString()))
                if travelled:  # the new zone's players come into view
                    push = pb.ServerMessage(seq=0)
                    push.update.entered.extend(
                        state(n) for n in list(zone_of) if n != name
                        and zone_of[n] == zone_of[name])
                    writer.write(rt.encode_frame(push.SerializeToString()))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handle


def serve(pb, ready, defect):
    async def main():
        server = await asyncio.start_server(make_handler(pb, defect), "127.0.0.1", 0)
        ready["port"] = server.sockets[0].getsockname()[1]
        ready["event"].set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bot", required=True)
    ap.add_argument("--work-dir", required=True)
    args = ap.parse_args()

    rt.load_protos()  # exits 77 (skipped) without protoc or python3-protobuf
    pb = rt.client_pb2

    ready = {"event": threading.Event()}
    defect = {"mode": None}
    threading.Thread(target=serve, args=(pb, ready, defect), daemon=True).start()
    if not ready["event"].wait(10):
        print("smoke: stand-in gateway did not start", file=sys.stderr)
        return 1

    out_json = os.path.join(args.work_dir, "bot_smoke.json")
    cmd = [args.bot, "--port", str(ready["port"]), "--players", "40", "--ramp", "200",
           "--duration", "2", "--move-rate", "5", "--chat-rate", "1", "--ping-rate", "5",
           "--earn-rate", "1", "--storm-at", "1", "--storm-fraction", "0.25",
           "--timeout-ms", "3000", "--border-every", "3", "--expect-views",
           "--json", out_json]
    print("smoke:", " ".join(cmd), flush=True)
    status = subprocess.run(cmd, timeout=60).returncode
    with open(out_json) as f:
        report = json.load(f)

    problems = []
    if status != 0:
        problems.append(f"bot exit status {status}")
    for kind, r in report["requests"].items():
        # Each send ends in a reply, a ZONE_HANDOFF (then sent again) or the storm.
        if r["answered"] + r["retried"] + r["abandoned_by_storm"] != r["sent"]:
            problems.append(f"{kind}: sent {r['sent']} answered {r['answered']} "
                            f"retried {r['retried']} abandoned {r['abandoned_by_storm']}")
        if r["sent"] == 0:
            problems.append(f"{kind}: nothing sent")
    if sum(r["retried"] for r in report["requests"].values()) == 0:
        problems.append("no request was retried after ZONE_HANDOFF")
    if report["views"]["seen"] == 0 or report["views"]["missed"] != 0:
        problems.append(f"views after zone changes: {report['views']}")
    if report["storm_disconnects"] == 0 or report["relogins"] < report["storm_disconnects"]:
        problems.append(f"storm: {report['storm_disconnects']} dropped, "
                        f"{report['relogins']} logged in again")
    if report["logged_in_at_end"] != report["players"]:
        problems.append(f"{report['logged_in_at_end']} of {report['players']} logged in at end")
    if report["pushes"]["joined"] < report["players"]:
        problems.append("PlayerJoined pushes missing")
    for mode, field in DEFECTS.items():
        defect["mode"] = mode
        out_json = os.path.join(args.work_dir, "bot_smoke_%s.json" % mode)
        cmd = [args.bot, "--port", str(ready["port"]), "--players", "10", "--ramp", "0",
               "--duration", "2", "--move-rate", "1", "--chat-rate", "0", "--ping-rate", "5",
               "--earn-rate", "5", "--name-prefix", "defect-%s-" % mode, "--json", out_json]
        print("smoke (the stand-in's defect: %s):" % mode, " ".join(cmd), flush=True)
        status = subprocess.run(cmd, timeout=60).returncode
        with open(out_json) as f:
            report = json.load(f)
        if status != 1 or report[field] == 0:
            problems.append("defect %s: bot exit status %d, %s %d" % (mode, status, field,
                                                                      report[field]))
    if problems:
        print("smoke: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
