#!/usr/bin/python3
"""Smoke test of the load bot against a stand-in gateway.

The stand-in speaks client.proto (the test harness's bindings and the
client library's framing) on 127.0.0.1, port chosen by the kernel: it answers
Login with a zone, Move, Chat, Ping, Earn and Logout, and sends a
PlayerJoined push after each login, so the bot exercises replies and
pushes. The bot runs a ramp, a short steady phase and a reconnect storm;
the test passes when the bot exits 0 (every request answered, no protocol
error) and its JSON agrees: answered == sent for every kind, the storm
dropped players, and they all logged in again.
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


def make_handler(pb):
    gold = {}

    async def handle(reader, writer):
        name = None
        try:
            async for body in read_frames(reader):
                msg = pb.ClientMessage.FromString(body)
                out = pb.ServerMessage(seq=msg.seq)
                kind = msg.WhichOneof("body")
                if kind == "login":
                    name = msg.login.name
                    out.login.self.name = name
                    out.login.self.gold = gold.get(name, 0)
                    out.login.zone.id = 1
                    out.login.zone.max_x = 100
                    out.login.zone.max_y = 100
                elif kind == "move":
                    out.move.x, out.move.y = msg.move.x, msg.move.y
                elif kind == "chat":
                    out.chat.SetInParent()
                elif kind == "ping":
                    out.pong.client_time = msg.ping.client_time
                elif kind == "earn":
                    gold[name] = gold.get(name, 0) + msg.earn.amount
                    out.earn.gold = gold[name]
                elif kind == "logout":
                    out.logout.SetInParent()
                writer.write(rt.encode_frame(out.SerializeToString()))
                if kind == "login":
                    push = pb.ServerMessage(seq=0)
                    push.joined.player.name = name
                    writer.write(rt.encode_frame(push.SerializeToString()))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handle


def serve(pb, ready):
    async def main():
        server = await asyncio.start_server(make_handler(pb), "127.0.0.1", 0)
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
    threading.Thread(target=serve, args=(pb, ready), daemon=True).start()
    if not ready["event"].wait(10):
        print("smoke: stand-in gateway did not start", file=sys.stderr)
        return 1

    out_json = os.path.join(args.work_dir, "bot_smoke.json")
    cmd = [args.bot, "--port", str(ready["port"]), "--players", "40", "--ramp", "200",
           "--duration", "2", "--move-rate", "5", "--chat-rate", "1", "--ping-rate", "5",
           "--earn-rate", "1", "--storm-at", "1", "--storm-fraction", "0.25",
           "--timeout-ms", "3000", "--json", out_json]
    print("smoke:", " ".join(cmd), flush=True)
    status = subprocess.run(cmd, timeout=60).returncode
    with open(out_json) as f:
        report = json.load(f)

    problems = []
    if status != 0:
        problems.append(f"bot exit status {status}")
    for kind, r in report["requests"].items():
        if r["answered"] + r["abandoned_by_storm"] != r["sent"]:
            problems.append(f"{kind}: sent {r['sent']} answered {r['answered']} "
                            f"abandoned {r['abandoned_by_storm']}")
        if r["sent"] == 0:
            problems.append(f"{kind}: nothing sent")
    if report["storm_disconnects"] == 0 or report["relogins"] < report["storm_disconnects"]:
        problems.append(f"storm: {report['storm_disconnects']} dropped, "
                        f"{report['relogins']} logged in again")
    if report["logged_in_at_end"] != report["players"]:
        problems.append(f"{report['logged_in_at_end']} of {report['players']} logged in at end")
    if report["pushes"]["joined"] < report["players"]:
        problems.append("PlayerJoined pushes missing")
    if problems:
        print("smoke: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
