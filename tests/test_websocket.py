"""The gateway's WebSocket port (docs/protocol.md, "WebSocket"), spoken
over raw sockets: the HTTP upgrade and its refusals, the page's files,
masking, fragmentation, sizes, ping/pong, close, the deadlines, and a
WebSocket client and a TCP client in one zone."""
import time

import ringgate_test as rt
from ringgate_test import body_of, expect
from ringgate_test import ws

MAX_FRAME = 4096
# Short deadlines so that the slow cases take a second, not ten.
GATEWAY_ARGS = ["--max-frame", str(MAX_FRAME), "--ws-handshake-timeout-ms", "800",
                "--frame-timeout-ms", "800"]


def cluster(build_dir, extra=()):
    return rt.Cluster(build_dir, args={"gateway": GATEWAY_ARGS + list(extra)})


def raw(c):
    return rt.dial(c.ws_port)


def assert_closed(sock, timeout=5):
    """The gateway closes the connection (after whatever it still sends)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return
        except ConnectionResetError:
            return
    raise AssertionError("the connection stayed open")


def refused(c, status, **kw):
    sock = raw(c)
    got, headers, body, _ = ws.handshake(sock, **kw)
    assert got == status, "%s: %d %s %r" % (kw, got, headers, body)
    assert headers.get("connection") == "close", headers
    assert body.startswith(b"%d " % status), body
    assert_closed(sock)
    return headers


def handshake_good(build_dir):
    with cluster(build_dir) as c:
        sock = raw(c)
        key = ws.new_key()
        status, headers, _, _ = ws.handshake(sock, key=key)
        assert status == 101, (status, headers)
        assert headers["upgrade"].lower() == "websocket", headers
        assert headers["sec-websocket-accept"] == ws.accept_of(key), headers
        sock.close()
        # The page's files, with their types; nothing else is served.
        for path, kind, needle in (("/", "text/html", b"<canvas"),
                                   ("/app.js", "text/javascript", b"protobuf.load"),
                                   ("/protobuf.min.js", "text/javascript", b"protobuf"),
                                   ("/client.proto", "text/plain", b"message ClientMessage")):
            sock = raw(c)
            status, headers, body, _ = ws.handshake(sock, path=path, upgrade=False,
                                                    version=None)
            assert status == 200 and headers["content-type"].startswith(kind), (path, headers)
            assert needle in body, (path, body[:200])
            assert_closed(sock)
        for path in ("/../../etc/passwd", "/%2e%2e/etc/passwd", "/index.html/..",
                     "/nope", "/app.js/"):
            refused(c, 404, path=path, upgrade=False, version=None)
        # A game over it: log in, ping.
        client = c.ws_client("alice")
        expect(client.login("alice", "alice-pw"), "login")
        expect(client.ping(), "pong")


def bad_handshakes(build_dir):
    with cluster(build_dir) as c:
        for key in ("short", "!!!!!!!!!!!!!!!!!!!!!!==", ws.new_key()[:-2] + "AA",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
            refused(c, 400, key=key)
        refused(c, 400, key=None)                       # no key
        refused(c, 400, key=ws.new_key(), version=None)  # no version
        headers = refused(c, 426, key=ws.new_key(), version="8")
        assert headers.get("sec-websocket-version") == "13", headers
        refused(c, 426, key=ws.new_key(), upgrade=False)  # GET /ws, no upgrade
        refused(c, 404, path="/chat", key=ws.new_key())    # upgrade elsewhere
        refused(c, 400, key=ws.new_key(), extra=["Sec-WebSocket-Key: " + ws.new_key()])
        for head, status in ((b"POST /ws HTTP/1.1\r\n\r\n", 405),
                             (b"GET /ws HTTP/2.0\r\n\r\n", 505),
                             (b"GET /ws HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
                             (b"GET /ws HTTP/1.1\r\n folded: x\r\n\r\n", 400),
                             (b"GET /ws HTTP/1.1\nHost: x\n\n\r\n\r\n", 400),
                             (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
                             (b"GET /" + b"a" * 300 + b" HTTP/1.1\r\n\r\n", 414)):
            sock = raw(c)
            sock.sendall(head)
            status_got, _, _, _ = ws.read_response(sock)
            assert status_got == status, (head[:40], status_got)
            assert_closed(sock)
        # The gateway is still fine.
        expect(c.ws_client("bob").login("bob", "bob-pw"), "login")


def oversize_headers(build_dir):
    with cluster(build_dir) as c:
        extra = ["X-Filler-%d: %s" % (i, "x" * 100) for i in range(90)]  # ~9.5 KB
        refused(c, 431, key=ws.new_key(), extra=extra)
        extra = ["X-%d: y" % i for i in range(70)]  # small, but too many lines
        refused(c, 431, key=ws.new_key(), extra=extra)
        # Past the bound with no end of head at all: answered as soon as it is.
        sock = raw(c)
        sock.sendall(b"GET / HTTP/1.1\r\nX: " + b"z" * 9000)
        status, _, _, _ = ws.read_response(sock)
        assert status == 431, status
        assert_closed(sock)


def slowloris(build_dir):
    with cluster(build_dir) as c:
        # A head trickled, never finished: 408 at the handshake deadline.
        sock = raw(c)
        start = time.monotonic()
        for piece in (b"GET / HT", b"TP/1.1\r\n", b"Host: x\r\n"):
            sock.sendall(piece)
            time.sleep(0.2)
        status, _, _, _ = ws.read_response(sock)
        took = time.monotonic() - start
        assert status == 408 and took < 3, (status, took)
        assert_closed(sock)
        # Silent from the start: the same deadline.
        sock = raw(c)
        status, _, _, _ = ws.read_response(sock)
        assert status == 408, status
        # A message begun and never finished: close 1008 at --frame-timeout-ms.
        client = c.ws_client("slow")
        data = ws.frame(ws.BINARY, b"x" * 100)
        client.send_raw(data[:50])
        client.wait_closed(timeout=5)
        assert client.reader.close_code == 1008, client.reader.control
        rt.eventually(lambda: "a message not completed within" in c.log_text("gateway"),
                      what="the slow message logged")
        # A message whose fragments keep coming is not cut, however long it
        # takes in all (6 fragments 400 ms apart, over a 800 ms deadline).
        client = c.ws_client("steady")
        body = rt.client_pb2.ClientMessage(
            seq=1, ping=rt.client_pb2.PingRequest(client_time=1)).SerializeToString()
        parts = [body[i:i + 1] for i in range(5)] + [body[5:]]
        for i, part in enumerate(parts):
            client.send_frame(ws.BINARY if i == 0 else ws.CONT, part, fin=i == len(parts) - 1)
            time.sleep(0.4)
        reply = client.wait_reply(1, timeout=5)
        assert body_of(reply) in ("pong", "error"), reply  # answered, not closed
        # A fragmented message left open does not escape it either.
        client = c.ws_client("slow2")
        client.send_frame(ws.BINARY, b"abc", fin=False)
        client.wait_closed(timeout=5)
        assert client.reader.close_code == 1008, client.reader.control


def frames(build_dir):
    with cluster(build_dir) as c:
        Msg = rt.client_pb2.ClientMessage
        login = Msg(seq=1, login=rt.client_pb2.LoginRequest(name="frag", password=b"pw"))
        body = login.SerializeToString()
        # Fragmented, with a ping between the fragments: one message, one pong.
        client = c.ws_client("frag")
        client.send_frame(ws.BINARY, body[:3], fin=False)
        client.send_frame(ws.PING, b"mid")
        client.send_frame(ws.CONT, body[3:7], fin=False)
        client.send_frame(ws.CONT, body[7:], fin=True)
        expect(client.wait_reply(1), "login")
        assert (ws.PONG, b"mid") in client.reader.control, client.reader.control
        # Two messages in one write.
        ping = lambda s: Msg(seq=s, ping=rt.client_pb2.PingRequest(client_time=s))
        client.send_raw(ws.frame(ws.BINARY, ping(2).SerializeToString()) +
                        ws.frame(ws.BINARY, ping(3).SerializeToString()))
        expect(client.wait_reply(2), "pong")
        expect(client.wait_reply(3), "pong")
        # Unmasked: a protocol error (1002).
        client2 = c.ws_client("unmasked")
        client2.send_raw(ws.frame(ws.BINARY, ping(1).SerializeToString(), mask=False))
        client2.wait_closed(timeout=5)
        assert client2.reader.close_code == 1002, client2.reader.control
        # Text: not the protocol (1003).
        client3 = c.ws_client("text")
        client3.send_frame(ws.TEXT, b"hello")
        client3.wait_closed(timeout=5)
        assert client3.reader.close_code == 1003, client3.reader.control
        # Oversize: refused at the frame's first bytes (1009), long before
        # its payload is all sent (wslay reports a frame with its first
        # payload byte), and over fragments too.
        client4 = c.ws_client("big")
        head = ws.frame(ws.BINARY, b"\0" * (MAX_FRAME + 1))[:8 + 16]
        client4.send_raw(head)
        client4.wait_closed(timeout=5)
        assert client4.reader.close_code == 1009, client4.reader.control
        client5 = c.ws_client("bigfrag")
        for _ in range(3):
            client5.send_frame(ws.BINARY if _ == 0 else ws.CONT, b"\0" * (MAX_FRAME // 2),
                               fin=False)
        client5.wait_closed(timeout=5)
        assert client5.reader.close_code == 1009, client5.reader.control
        # A malformed ClientMessage inside a good frame: the TCP rule.
        client6 = c.ws_client("garbage")
        client6.send_frame(ws.BINARY, b"\xff\xff\xff")
        err = client6.wait(lambda m: body_of(m) == "error", "error")
        assert err.error.code == rt.client_pb2.BAD_REQUEST, err
        client6.wait_closed(timeout=5)
        # The first client is unharmed by all that.
        expect(client.ping(), "pong")


def ping_close(build_dir):
    with cluster(build_dir) as c:
        client = c.ws_client("pinger")
        client.send_frame(ws.PING, b"hello")
        client.send_frame(ws.PING, b"")
        rt.eventually(lambda: (client._pump(time.monotonic() + 0.1) or True) and
                      [p for o, p in client.reader.control if o == ws.PONG] == [b"hello", b""],
                      what="two pongs", timeout=5)
        # The client closes: the gateway answers with a close and hangs up.
        client.send_frame(ws.CLOSE, ws.close_payload(1000, b"bye"))
        client.wait_closed(timeout=5)
        assert client.reader.close_code == 1000, client.reader.control
        # A ping over 125 bytes is a protocol error: wslay's frame layer
        # closes with 1002, or with a close frame without a code.
        client = c.ws_client("bigping")
        client.send_frame(ws.PING, b"p" * 126)
        client.wait_closed(timeout=5)
        assert client.reader.close_code in (1002, 0), client.reader.control
        # The gateway closes a kicked client with Kicked, then close 1000.
        alice = c.ws_client("alice")
        expect(alice.login("kicky", "pw"), "login")
        again = c.ws_client("alice2")
        expect(again.login("kicky", "pw"), "login")
        kicked = alice.wait(lambda m: body_of(m) == "kicked", "kicked")
        assert kicked.kicked.code == rt.client_pb2.LOGGED_IN_ELSEWHERE, kicked
        alice.wait_closed(timeout=5)
        assert alice.reader.close_code == 1000, alice.reader.control


def ping_flood(build_dir):
    """Pings take the message rate's tokens: a ping flood is kicked like a
    message flood (Kicked RATE_LIMITED, then close 1000)."""
    with cluster(build_dir, ["--msg-rate", "20", "--msg-burst", "20",
                             "--flood-refusals", "10"]) as c:
        client = c.ws_client("flooder")
        client.send_raw(b"".join(ws.frame(ws.PING, b"x") for _ in range(200)))
        kicked = client.wait(lambda m: body_of(m) == "kicked", "kicked", timeout=5)
        assert kicked.kicked.code == rt.client_pb2.RATE_LIMITED, kicked
        client.wait_closed(timeout=5)
        assert client.reader.close_code == 1000, client.reader.control
        rt.eventually(lambda: "floods control frames" in c.log_text("gateway"),
                      what="the flood logged")


def idle_kick(build_dir):
    with cluster(build_dir, ["--idle-timeout-ms", "600"]) as c:
        client = c.ws_client("idler")
        client.send_frame(ws.PING, b"not activity")  # control frames are not messages
        kicked = client.wait(lambda m: body_of(m) == "kicked", "kicked", timeout=5)
        assert kicked.kicked.code == rt.client_pb2.IDLE_TIMEOUT, kicked
        client.wait_closed(timeout=5)
        assert client.reader.close_code == 1000, client.reader.control


def ws_and_tcp(build_dir):
    with rt.Cluster(build_dir, args={"gamesrv": ["--interest", "broadcast"]}) as c:
        web, tcp = c.ws_client("web"), c.client("tcp")
        a = expect(web.login("webby", "pw"), "login")
        b = expect(tcp.login("tcpy", "pw"), "login")
        assert any(o.name == "webby" for o in b.others), b
        web.wait_push(lambda m: body_of(m) == "joined" and m.joined.player.name == "tcpy",
                      what="tcpy joined")
        z = a.zone
        expect(web.move(z.min_x + 1, z.min_y + 1), "move")
        tcp.wait_push(lambda m: body_of(m) == "moved" and m.moved.player_id == a.self.player_id,
                      what="webby moved")
        expect(tcp.chat("hello web"), "chat")
        web.wait_push(lambda m: body_of(m) == "chat_line" and m.chat_line.text == "hello web",
                      what="tcp's chat")
        expect(web.chat("hello tcp"), "chat")
        tcp.wait_push(lambda m: body_of(m) == "chat_line" and m.chat_line.text == "hello tcp",
                      what="web's chat")
        gold = expect(web.earn(25), "earn").gold
        assert gold == 25, gold


def chat_lines(msg):
    if body_of(msg) == "chat_line":
        return [msg.chat_line.text]
    if body_of(msg) == "update":
        return [c.text for c in msg.update.chat]
    return []


def hear(client, count):
    lines = []
    while len(lines) < count:
        lines += chat_lines(client.wait(lambda m: m.seq == 0, "chat (%d heard)" % len(lines)))
    return lines


def resume_across(build_dir):
    """Session resume (docs/protocol.md section 10) across transports: a
    WebSocket client dropped resumes over WebSocket, then, dropped again,
    over TCP; a TCP client resumes over WebSocket. What was said in each
    gap arrives once, in order."""
    with rt.Cluster(build_dir, args={"gamesrv": ["--interest", "broadcast"]}) as c:
        web, tcp, bob = c.ws_client("web"), c.client("tcp"), c.client("bob")
        expect(web.login("webby", "pw"), "login")
        expect(tcp.login("tcpy", "pw"), "login")
        expect(bob.login("bob", "pw"), "login")
        assert web.token and tcp.token, "no resume tokens"
        steps = (("ws -> ws", lambda: web),
                 ("ws -> tcp", lambda: ws.take_over(web, c.client("web-tcp"))),
                 ("tcp -> ws", lambda: ws.take_over(tcp, c.ws_client("tcp-ws"))))
        for step, (what, successor) in enumerate(steps):
            old = web if step < 2 else tcp
            expect(old.ping(), "pong")  # read all it was sent: last_msg_no is current
            old.take_pushes()
            old.drop()
            said = ["%s gap %d" % (what, i) for i in range(5)]
            for text in said:
                expect(bob.chat(text), "chat")
            client = successor()
            reply = expect(client.resume(), "resume")
            assert reply.replayed >= 1, (what, reply)
            assert hear(client, 5) == said, what
            expect(bob.chat(what + " after"), "chat")
            assert hear(client, 1) == [what + " after"], what
            web = client if step < 2 else web


rt.main(cases={f.__name__: f for f in (handshake_good, bad_handshakes, oversize_headers,
                                       slowloris, frames, ping_close, ping_flood, idle_kick,
                                       ws_and_tcp, resume_across)})
