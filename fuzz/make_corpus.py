#!/usr/bin/python3
"""make_corpus.py: write the seed corpora of ringgate's fuzz targets into
fuzz/corpus/<target>/ (valid and invalid inputs, a few dozen each).

usage: /usr/bin/python3 fuzz/make_corpus.py [OUT_DIR]      (default: fuzz/corpus beside this file)

The process targets read an input as records [op][len lo][len hi][bytes]
(fuzz/harness.h); each target's header comment says what its ops do. The
messages are built with python3-protobuf from proto/ (the test harness's
bindings, tests/ringgate_test, generated with protoc at run time and never
committed; varints are the client library's). The output is
deterministic: running the script again rewrites the same files, and files
it did not write (inputs saved from fuzzing runs) are left alone.
"""

import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
import ringgate_test as rt  # noqa: E402

rt.load_protos()
c, i = rt.client_pb2, rt.internal_pb2
varint = rt.encode_varint

# Session ids the fake libnet hands out (fuzz/fake_net.c): slot | 1 << 32,
# slots counted from 1 in connection order.
def sid(slot):
    return slot | 1 << 32


def rec(op, body=b""):
    if not isinstance(body, bytes):
        body = body.SerializeToString()
    return bytes([op]) + struct.pack("<H", len(body)) + body


def cm(seq, **body):
    return c.ClientMessage(seq=seq, **body)


LOGIN = cm(1, login=c.LoginRequest(name="alice", password=b"secret-pw"))
MOVE = cm(2, move=c.MoveRequest(x=3.5, y=-4.0))
CHAT = cm(3, chat=c.ChatRequest(text="hello zone"))
EARN = cm(4, earn=c.EarnRequest(amount=25))
PING = cm(5, ping=c.PingRequest(client_time=12345))
LOGOUT = cm(6, logout=c.LogoutRequest())


# ---- frame: [max_body selector][split count][splits u16...][stream] --------

def frame_input(max_sel, stream, splits=()):
    return bytes([max_sel, len(splits)]) + b"".join(struct.pack("<H", s) for s in splits) + stream


def frame_corpus():
    bodies = [m.SerializeToString() for m in (LOGIN, MOVE, CHAT, EARN, PING, LOGOUT)]
    stream = b"".join(varint(len(b)) + b for b in bodies)
    big = b"x" * 300
    return {
        "empty": frame_input(8, b""),
        "one_frame": frame_input(8, varint(len(bodies[0])) + bodies[0]),
        "six_frames": frame_input(8, stream),
        "six_frames_split": frame_input(8, stream, (1, 2, 7, 30, 31, 60)),
        "zero_length_frames": frame_input(8, b"\x00\x00\x00"),
        "two_byte_prefix": frame_input(8, varint(300) + big),
        "two_byte_prefix_split_in_prefix": frame_input(8, varint(300) + big, (1,)),
        "oversize_small_limit": frame_input(3, varint(300) + big),
        "oversize_partial_prefix": frame_input(1, b"\xff"),
        "exactly_max": frame_input(2, varint(5) + b"12345"),
        "one_over_max": frame_input(2, varint(6) + b"123456"),
        "bad_varint_6_bytes": frame_input(11, b"\xff\xff\xff\xff\xff\x01"),
        "varint_5_bytes_max": frame_input(11, b"\xff\xff\xff\xff\x0f"),
        "varint_5_bytes_over_32bit": frame_input(11, b"\xff\xff\xff\xff\x7f"),
        "non_canonical_prefix": frame_input(8, b"\x83\x00abc"),
        "truncated_body": frame_input(8, varint(10) + b"abc"),
        "truncated_prefix": frame_input(8, b"\x80\x80"),
        "frame_then_garbage": frame_input(8, varint(3) + b"abc" + b"\xff" * 8),
        "many_splits": frame_input(8, stream, tuple(range(0, 64, 1))),
        "limit_zero": frame_input(0, b"\x00\x00\x01a"),
        "max_4mib": frame_input(10, varint(4 << 20)),
        "max_64k_over": frame_input(8, varint(65537)),
    }


# ---- gateway: ops 0 client, 1 upstream, 2 time, 3 client reconnect,
#      4 upstream redial, 5 second client ---------------------------------

def wire(n, loop=0, gateway=1):
    """The gateway's wire session id of its n-th client on loop."""
    return gateway << 48 | loop << 40 | n


CLIENT1 = wire(1)  # the first client of the gateway (id 1) on loop 0


def to_client(sessions, msg):
    return i.GameToGate(to_client=i.ToClient(sessions=sessions, message=msg))


def gateway_corpus():
    pong = c.ServerMessage(seq=0, pong=c.Pong(client_time=1))
    kicked = c.Kicked(code=c.LOGGED_IN_ELSEWHERE, message="again")
    return {
        "login": rec(0, LOGIN),
        "session_flow": b"".join(rec(0, m) for m in (LOGIN, MOVE, CHAT, EARN, PING, LOGOUT)),
        "seq_zero": rec(0, cm(0, ping=c.PingRequest())),
        "no_body": rec(0, c.ClientMessage(seq=9)),
        "duplicate_seq": rec(0, PING) + rec(0, PING),
        "malformed": rec(0, b"\x0a\xff\xff\xff"),
        "garbage": rec(0, bytes(range(256))),
        "unknown_field": rec(0, b"\x08\x01\xfa\x07\x03abc"),
        "inflight_flood": b"".join(rec(0, cm(n, ping=c.PingRequest())) for n in range(1, 40)),
        "push_to_client": rec(1, to_client([CLIENT1], pong)),
        "push_many_sessions": rec(1, to_client([CLIENT1, wire(99), 0, 1 << 63], pong)),
        "push_bad_session_loop": rec(1, to_client([wire(1, loop=5)], pong)),
        "push_other_gateway": rec(1, to_client([wire(1, gateway=2)], pong)),
        "late_reply": rec(1, to_client([CLIENT1], c.ServerMessage(seq=77, pong=c.Pong()))),
        "kick": rec(0, LOGIN) + rec(1, i.GameToGate(kick=i.Kick(session=CLIENT1, kicked=kicked))),
        "kick_unknown": rec(1, i.GameToGate(kick=i.Kick(session=wire(50)))),
        "heartbeat": rec(1, i.GameToGate(heartbeat=i.Heartbeat(sent_ms=1))),
        "second_hello_reply": rec(1, i.GameToGate(hello=i.HelloReply(role="gamesrv"))),
        "second_challenge": rec(1, i.GameToGate(challenge=i.AuthChallenge(nonce=b"n" * 32))),
        "upstream_garbage": rec(1, b"\xff\xff\xff\xff"),
        "link_down_then_request": rec(4, b"\x01") + rec(0, PING),
        "link_redial_with_handshake": rec(4, b"\x00") + rec(0, PING),
        "raw_link_wrong_proof": rec(4, b"\x01") + rec(1, i.GameToGate(
            challenge=i.AuthChallenge(nonce=b"\x01" * 32))) + rec(1, i.GameToGate(
                hello=i.HelloReply(role="gamesrv", proof=b"\x00" * 32))),
        "raw_link_short_nonce": rec(4, b"\x01") + rec(1, i.GameToGate(
            challenge=i.AuthChallenge(nonce=b"short"))),
        "time_passes": rec(0, PING) + rec(2, b"\xff") + rec(2, b"\xff"),
        "idle_kick": rec(2, b"\xff" * 1) * 12,
        "client_reconnect": rec(0, LOGIN) + rec(3) + rec(0, PING),
        "second_client": rec(5) + rec(0, LOGIN) + rec(1, to_client([wire(2)], pong)),
        # Between shards (the harness has one: shard 2 is none of its own).
        "redirect": rec(0, LOGIN) + rec(1, i.GameToGate(redirect=i.Redirect(
            session=CLIENT1, request_id=1, shard=2, message=LOGIN, hops=1))),
        "redirect_no_shard": rec(0, LOGIN) + rec(1, i.GameToGate(redirect=i.Redirect(
            session=CLIENT1, request_id=1, shard=0, hops=9))),
        "handoff": rec(0, LOGIN) + rec(1, i.GameToGate(handoff=i.Handoff(
            session=CLIENT1, request_id=1, target_shard=2, adopt=i.Adopt(
                player_id=1, name="alice", epoch=1, source_shard=1, zone=2, seq=1)))),
        "handoff_no_adopt": rec(1, i.GameToGate(handoff=i.Handoff(session=CLIENT1,
                                                                 target_shard=1))),
        "handoff_unknown_session": rec(1, i.GameToGate(handoff=i.Handoff(
            session=wire(7, loop=3), target_shard=1, adopt=i.Adopt(player_id=2)))),
        "adopt_result": rec(0, LOGIN) + rec(1, i.GameToGate(adopt_result=i.AdoptResult(
            session=CLIENT1, player_id=1, ok=True))),
        "huge_chat": rec(0, cm(3, chat=c.ChatRequest(text="x" * 4000))),
        "empty_frame": rec(0, b"") + rec(1, b""),
    }


# ---- gamesrv: ops 0 gate frame, 1 db frame, 2 time, 3 gate redial, 4 db
#      redial, 5 db mode, 6 wrapped client message (session op/8%4+1),
#      7 client gone -----------------------------------------------------------

def req(session_slot, msg):
    """op 6 for client session 1..4."""
    return rec(6 + 8 * (session_slot - 1), msg)


def gamesrv_corpus():
    gate_req = i.GateToGame(request=i.ClientRequest(session=1, deadline_ms=100, message=LOGIN))
    return {
        "login": req(1, LOGIN),
        "play": b"".join(req(1, m) for m in (LOGIN, MOVE, CHAT, EARN, PING, LOGOUT)),
        "two_players": req(1, LOGIN) + req(2, cm(1, login=c.LoginRequest(
            name="bob", password=b"pw2"))) + req(1, MOVE) + req(2, CHAT),
        "takeover": req(1, LOGIN) + req(2, LOGIN),
        "move_out_of_bounds": req(1, LOGIN) + req(1, cm(2, move=c.MoveRequest(x=1e9, y=0))),
        "move_nan": req(1, LOGIN) + req(1, cm(2, move=c.MoveRequest(x=float("nan"), y=1))),
        "chat_bad_utf8": req(1, LOGIN) + req(1, b"\x08\x03\x62\x04\x0a\x02\xc3\x28"),
        "chat_huge": req(1, LOGIN) + req(1, cm(3, chat=c.ChatRequest(text="y" * 3000))),
        "earn_zero_and_huge": req(1, LOGIN) + req(1, cm(4, earn=c.EarnRequest(amount=0)))
        + req(1, cm(5, earn=c.EarnRequest(amount=4000000000))),
        "before_login": req(1, MOVE) + req(1, EARN) + req(1, LOGOUT),
        "bad_names": req(1, cm(1, login=c.LoginRequest(name="", password=b"x")))
        + req(2, cm(1, login=c.LoginRequest(name="a b!", password=b"x")))
        + req(3, cm(1, login=c.LoginRequest(name="n" * 40, password=b"")))
        + req(4, cm(1, login=c.LoginRequest(name="ok", password=b"p" * 200))),
        "client_gone": req(1, LOGIN) + rec(7),
        "gone_mid_login": rec(5, b"\x03") + req(1, LOGIN) + rec(7) + rec(5, b"\x00"),
        "db_busy": rec(5, b"\x01") + req(1, LOGIN),
        "db_error": req(1, LOGIN) + rec(5, b"\x02") + req(1, EARN),
        "db_silent_then_deadline": req(1, LOGIN) + rec(5, b"\x03") + req(1, EARN)
        + rec(2, b"\x01\xff\x00"),
        "db_down": req(1, LOGIN) + rec(4) + req(1, EARN),
        "gate_down": req(1, LOGIN) + rec(3) + req(1, PING),
        "autosave": req(1, LOGIN) + req(1, MOVE) + rec(2, b"\x01\x01\x01"),
        "save_busy_retry": req(1, LOGIN) + req(1, MOVE) + rec(5, b"\x01") + rec(7)
        + rec(5, b"\x00") + rec(2, b"\x01\x05\x00"),
        "gate_raw_request": rec(0, gate_req),
        "gate_second_hello": rec(0, i.GateToGame(hello=i.Hello(role="gateway"))),
        "gate_no_body": rec(0, i.GateToGame()),
        "gate_garbage": rec(0, b"\xff\x01\x02"),
        "db_unsolicited_reply": rec(1, i.DbToGame(request_id=99, status=0)),
        "db_reply_no_id": rec(1, i.DbToGame(request_id=0, status=0)),
        "db_second_hello": rec(1, i.DbToGame(hello=i.HelloReply(role="dbproxy"))),
        "db_challenge_again": rec(1, i.DbToGame(challenge=i.AuthChallenge(nonce=b"z" * 32))),
        "db_login_reply_forged": req(1, LOGIN) + rec(5, b"\x03") + rec(1, i.DbToGame(
            request_id=1, status=0, login=i.DbLoginReply(player=c.PlayerState(
                player_id=5, name="alice", zone=77, x=1e30, y=-1e30, gold=1 << 62)))),
        "db_garbage": rec(1, b"\x08"),
        "overload": b"".join(req(1 + n % 4, PING) for n in range(40)),
        # Session resume: a player kept for its grace period (20 s, the
        # harness's), pushed to meanwhile, then gone; forged resumes (the
        # first well formed, so only its MAC is wrong).
        "grace_then_leave": req(1, LOGIN) + req(2, cm(1, login=c.LoginRequest(
            name="bob", password=b"pw2"))) + rec(7) + req(2, CHAT) + req(2, MOVE)
        + rec(2, b"\x01\x01") + rec(2, b"\x01\xc8"),
        "gate_down_grace": req(1, LOGIN) + rec(3) + rec(2, b"\x01\x01") + req(1, PING),
        "resume_forged": req(1, LOGIN) + rec(7) + req(2, cm(
            7, resume=c.ResumeRequest(token=b"\x01" + b"\x00" * 32 + b"\x05alice" + b"m" * 32,
                                      last_received=1)))
        + req(3, cm(8, resume=c.ResumeRequest())) + req(1, cm(9, resume=c.ResumeRequest(
            token=b"x" * 200, last_received=1 << 60))),
        "takeover_of_detached": req(1, LOGIN) + rec(7) + req(2, LOGIN) + req(2, PING),
    }


# ---- dbproxy: ops 0 frame, 1 complete work, 2 time, 3 redial, 4 second
#      link, 5 refuse -------------------------------------------------------------

def db(request_id, **body):
    return i.GameToDb(request_id=request_id, deadline_ms=1000, **body)


def dbproxy_corpus():
    login = db(1, login=i.DbLogin(name="alice", password=b"pw"))
    save = db(2, save=i.DbSavePlayer(player_id=1, zone=1, x=1.5, y=2.5))
    gold = db(3, add_gold=i.DbAddGold(player_id=1, amount=10))
    ok = b"\x00\x00\x01"   # complete one, result 0, detail 1
    return {
        "login_ok": rec(0, login) + rec(1, ok),
        "all_requests": rec(0, login) + rec(0, save) + rec(0, gold) + rec(1, b"\x07\x00\x01\x00\x02\x00\x03"),
        "errors": rec(0, login) + rec(0, save) + rec(0, gold)
        + rec(1, b"\x07\x03\x00\x04\x00\x06\x00\x07\x00\x0a\x00\x0b\x00\x0c\x00"),
        "bad_login": rec(0, db(4, login=i.DbLogin(name="", password=b"pw")))
        + rec(0, db(5, login=i.DbLogin(name="bad name", password=b"")))
        + rec(0, db(6, login=i.DbLogin(name="a" * 33, password=b"p" * 129))),
        "bad_save": rec(0, db(7, save=i.DbSavePlayer(player_id=0)))
        + rec(0, db(8, save=i.DbSavePlayer(player_id=1, x=float("inf")))),
        "bad_gold": rec(0, db(9, add_gold=i.DbAddGold(player_id=0, amount=1)))
        + rec(0, db(10, add_gold=i.DbAddGold(player_id=1, amount=0))),
        "no_request_id": rec(0, i.GameToDb(login=i.DbLogin(name="x", password=b"y"))),
        "unknown_body": rec(0, i.GameToDb(request_id=11)),
        "second_hello": rec(0, i.GameToDb(hello=i.Hello(role="gamesrv"))),
        "heartbeat": rec(0, i.GameToDb(heartbeat=i.Heartbeat(sent_ms=5))),
        "garbage": rec(0, b"\x12\xff\xff"),
        "queue_full": b"".join(rec(0, db(20 + n, add_gold=i.DbAddGold(player_id=1, amount=1)))
                               for n in range(12)) + rec(1, b"\x07"),
        "refused": rec(5, b"\x01") + rec(0, login) + rec(0, gold) + rec(5, b"\x00"),
        "link_gone_before_reply": rec(0, login) + rec(3) + rec(1, ok),
        "raw_link_request_first": rec(3, b"\x01") + rec(0, login),
        "raw_link_wrong_proof": rec(3, b"\x01") + rec(0, i.GameToDb(hello=i.Hello(
            role="gamesrv", nonce=b"\x01" * 32, proof=b"\x02" * 32))),
        "raw_link_wrong_role": rec(3, b"\x01") + rec(0, i.GameToDb(hello=i.Hello(role="gateway"))),
        "raw_link_no_proof": rec(3, b"\x01") + rec(0, i.GameToDb(hello=i.Hello(role="gamesrv"))),
        "two_links": rec(4) + rec(0, login) + rec(1, ok),
        "silence": rec(2, b"\xff") * 3,
        "time_and_heartbeats": rec(0, login) + rec(2, b"\x0a") + rec(1, ok) + rec(2, b"\x0a"),
        "empty_frame": rec(0, b""),
        "long_password": rec(0, db(30, login=i.DbLogin(name="bob", password=b"q" * 128))) + rec(1, ok),
        "created": rec(0, login) + rec(1, b"\x00\x00\x03"),
        # Leases: a leased login (taken, held elsewhere), fenced writes, a
        # renewal split over two lanes (one part refused), an adopt, bad
        # lease fields.
        "leases": rec(0, db(40, login=i.DbLogin(name="al", password=b"pw", owner=7, shard=1,
                                                  lease_ms=1000)))
        + rec(0, db(41, login=i.DbLogin(name="al", password=b"pw", owner=9, shard=2,
                                         lease_ms=1000)))
        + rec(0, db(42, save=i.DbSavePlayer(player_id=1, zone=1, lease_epoch=2, release=True)))
        + rec(0, db(43, add_gold=i.DbAddGold(player_id=1, amount=1, lease_epoch=3)))
        + rec(0, db(44, adopt=i.DbAdopt(player_id=1, from_epoch=1, owner=9, shard=2,
                                        lease_ms=1000, zone=2, x=1, y=2)))
        + rec(1, b"\x07\x00\x01\x0e\x02\x0d\x01\x0d\x00\x00\x05"),
        "renew": rec(0, db(45, renew=i.DbRenewLeases(owner=7, lease_ms=1000,
                                                      player_ids=[1, 2, 3, 4], epochs=[1] * 4)))
        + rec(1, b"\x01\x00\x02\x00\x01")
        + rec(0, db(46, renew=i.DbRenewLeases(owner=7, lease_ms=1000, player_ids=[],
                                             epochs=[])))
        + rec(0, db(47, renew=i.DbRenewLeases(owner=7, lease_ms=1000, player_ids=[1, 3, 5],
                                             epochs=[1, 1, 1])))
        + rec(1, b"\x00\x0a\x00") + rec(5, b"\x01") + rec(0, db(48, renew=i.DbRenewLeases(
            owner=7, lease_ms=1000, player_ids=[1, 2], epochs=[1, 1]))) + rec(5, b"\x00"),
        "bad_leases": rec(0, db(50, renew=i.DbRenewLeases(owner=7, lease_ms=1000,
                                                           player_ids=[1], epochs=[])))
        + rec(0, db(51, renew=i.DbRenewLeases(owner=0, lease_ms=1000)))
        + rec(0, db(52, adopt=i.DbAdopt(player_id=1, owner=7, shard=0, lease_ms=1)))
        + rec(0, db(53, login=i.DbLogin(name="al", password=b"pw", owner=7, shard=1,
                                         lease_ms=0))),
    }


# ---- seal: records [op][len][bytes]; op & 7: 0 send, 1 raw, 2 flip, 3 replay,
# 4 lose, 5 stream, 6/7 rekey and send; op & 0x80: open in place -----------

def seal_corpus():
    login = i.GateToGame(request=i.ClientRequest(session=sid(1), message=LOGIN))
    body = login.SerializeToString()
    return {
        "send_one": rec(0, body),
        "send_many": b"".join(rec(n & 0x80, body) for n in range(8)),
        "empty_frames": rec(0) + rec(0x80) + rec(0),
        "forged": rec(1, body + b"\x00" * 16) + rec(0, body),
        "short_forgery": rec(1, b"\x01\x02\x03"),
        "flip": rec(0, body) + rec(2, b"\x05\x00" + body),
        "flip_tag": rec(2, b"\xff\x01"),
        "replay": rec(0, body) + rec(3) + rec(0x83),
        "lost_then_more": rec(0, body) + rec(4, body) + rec(0, body) + rec(0x80, body),
        "stream": rec(5, varint(len(body)) + body + varint(3) + b"abc" + varint(300)),
        "stream_bad_varint": rec(5, b"\xff" * 12),
        "rekey": rec(4, body) + rec(6, body) + rec(0, body) + rec(7),
        "big": rec(0, b"\x5a" * 60000),
    }


# ---- http: the bytes of a request head (gateway/http.c) ------------------

def ws_key():
    return "dGhlIHNhbXBsZSBub25jZQ=="


def head(*lines):
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


UPGRADE = head("GET /ws HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: keep-alive, Upgrade",
               "Sec-WebSocket-Key: " + ws_key(), "Sec-WebSocket-Version: 13")


def http_corpus():
    return {
        "upgrade": UPGRADE,
        "page": head("GET / HTTP/1.1", "Host: x"),
        "page_query": head("GET /app.js?v=1 HTTP/1.0"),
        "bad_version": UPGRADE.replace(b"Version: 13", b"Version: 8"),
        "no_upgrade": head("GET /ws HTTP/1.1", "Sec-WebSocket-Key: " + ws_key(),
                           "Sec-WebSocket-Version: 13"),
        "short_key": UPGRADE.replace(ws_key().encode(), b"c2hvcnQ="),
        "two_keys": UPGRADE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Key: x\r\n\r\n"),
        "post": head("POST /ws HTTP/1.1"),
        "http2": head("GET / HTTP/2.0"),
        "bare_lf": b"GET / HTTP/1.1\nHost: x\n\n",
        "folded": head("GET / HTTP/1.1", " folded", "Host: x"),
        "long_target": head("GET /" + "a" * 300 + " HTTP/1.1"),
        "partial": b"GET / HTTP/1.1\r\nHost",
        "many_headers": head("GET / HTTP/1.1", *["X-%d: y" % n for n in range(70)]),
        "ctl_in_value": head("GET / HTTP/1.1", "X: a\x01b"),
    }


# ---- ws: ops 0 bytes, 1 new connection (bytes[0] odd: no upgrade first),
# 2 time, 3 peer closes (fuzz_ws.c) ---------------------------------------------

def ws_frame(opcode, payload=b"", fin=True, mask=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = bytes([b0, (0x80 if mask else 0) | n])
    else:
        hdr = bytes([b0, (0x80 if mask else 0) | 126]) + struct.pack(">H", n)
    if not mask:
        return hdr + payload
    key = b"\x11\x22\x33\x44"
    return hdr + key + bytes(b ^ key[j % 4] for j, b in enumerate(payload))


def ws_corpus():
    login = LOGIN.SerializeToString()
    return {
        "login": rec(0, ws_frame(2, login)),
        "all_requests": b"".join(rec(0, ws_frame(2, m.SerializeToString()))
                                 for m in (LOGIN, MOVE, CHAT, EARN, PING, LOGOUT)),
        "fragmented_ping_between": rec(0, ws_frame(2, login[:3], fin=False) + ws_frame(9, b"hi")
                                       + ws_frame(0, login[3:])),
        "split_bytes": rec(0, ws_frame(2, login)[:5]) + rec(0, ws_frame(2, login)[5:]),
        "unmasked": rec(0, ws_frame(2, login, mask=False)),
        "text": rec(0, ws_frame(1, b"hello")),
        "oversize": rec(0, ws_frame(2, b"\0" * 1100)),
        "big_ping": rec(0, ws_frame(9, b"p" * 126)),
        "close": rec(0, ws_frame(8, struct.pack(">H", 1000))),
        "garbage_message": rec(0, ws_frame(2, b"\xff\xff\xff")),
        "slow_message": rec(0, ws_frame(2, login)[:6]) + rec(2, b"\xff"),
        "no_upgrade_page": rec(1, b"\x01") + rec(0, head("GET / HTTP/1.1")),
        "slow_head": rec(1, b"\x01") + rec(0, b"GET / HT") + rec(2, b"\xff"),
        "bad_head": rec(1, b"\x01") + rec(0, b"\x16\x03\x01\r\n\r\n"),
        "idle": rec(2, b"\xff") * 12,
        "peer_closes": rec(0, ws_frame(2, login)) + rec(3) + rec(0, ws_frame(2, login)),
    }


def write(out_dir, target, inputs):
    d = os.path.join(out_dir, target)
    os.makedirs(d, exist_ok=True)
    for name, data in sorted(inputs.items()):
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (target, len(inputs)))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    write(out_dir, "frame", frame_corpus())
    write(out_dir, "seal", seal_corpus())
    write(out_dir, "gateway", gateway_corpus())
    write(out_dir, "http", http_corpus())
    write(out_dir, "ws", ws_corpus())
    write(out_dir, "gamesrv", gamesrv_corpus())
    write(out_dir, "dbproxy", dbproxy_corpus())


if __name__ == "__main__":
    main()
