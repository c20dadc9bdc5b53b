"""ringgate_client: a ringgate game client in Python.

Written from proto/client.proto and docs/protocol.md alone (the contract a
client in any language has), with Debian's python3-protobuf runtime. The
message classes are generated from proto/client.proto by
`protoc --python_out` (load_bindings() does it into a temporary directory);
nothing generated is kept in the repository.

    import ringgate_client as rc
    rc.load_bindings("proto")                     # or import a client_pb2 you generated
    with rc.Client("127.0.0.1", 7777) as c:
        me = c.login("alice", "secret")           # LoginReply
        c.move(10, 20)                            # MoveReply
        c.chat("hello")                           # ChatReply
        print(c.earn(5).gold)                     # EarnReply: committed total
        c.ping()                                  # Pong
        for push in c.pushes(timeout=0.5):        # ServerMessage pushes (seq 0)
            print(push.WhichOneof("body"))
        c.logout()

    # Over TLS (a gateway with tls = on; docs/tls.md): the certificate is
    # verified against ca_file (or, with tls=True alone, the system's CAs)
    # and must name the host dialed (or server_name); there is no way to
    # skip the check.
    with rc.Client("127.0.0.1", 7777, ca_file="run/tls/ca.pem") as c: ...
    # After a dropped connection (ConnectionClosed without a kick, or
    # OSError), within the grace period, through any gateway:
        r = c.resume(port=7778)                   # ResumeReply; missed messages follow
        # ServerError RESUME_EXPIRED (or BAD_REQUEST): log in again instead

    # Or let the client keep the world it sees (c.world, a World):
        c.wait_event(lambda e: e.kind == "entered" and e.name == "bob")
        print(c.world.players)                    # id -> Seen(name, zone, x, y)

The protocol in brief (docs/protocol.md sections 1-3):
- Frames: a varint body length (1..5 bytes), then one serialized message;
  ClientMessage from the client, ServerMessage from the gateway.
- Every request carries a non-zero seq and gets exactly one answer with the
  same seq: its reply body, or an Error (raised here as ServerError).
- Pushes carry seq 0 and may arrive at any time, also while a reply is
  awaited: they are queued in arrival order and read with pushes() /
  wait_push(), or applied to c.world with wait_event(). A Kicked push is
  followed by the gateway closing the connection.
- Session resume (docs/protocol.md section 10): every message of a login
  session carries a msg_no; the client keeps the highest and the newest
  resume token, and resume() sends them over a new connection, which gets
  every message it missed, in order, once.
- What you see of the world (docs/protocol.md "World updates"): the
  LoginReply's others, then WorldUpdate pushes - left, entered, moved,
  chat, applied in that order - or, from a gamesrv in broadcast mode,
  PlayerJoined / PlayerLeft / PlayerMoved / ChatLine. World handles both.

A Client is not thread-safe: use it from one thread.
"""

import atexit
import collections
import importlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

# The generated module (client_pb2); set by load_bindings() or use_bindings().
pb = None

MAX_BODY = 65536        # the gateway's default --max-frame (docs 1)
MAX_PREFIX = 5          # a varint of a uint32


def use_bindings(module):
    """Use an already imported client_pb2 module."""
    global pb
    pb = module


def load_bindings(proto_dir, protoc="protoc"):
    """Generate client_pb2 from proto_dir/client.proto with protoc into a
    temporary directory (removed at exit), import it and use it."""
    out = tempfile.mkdtemp(prefix="ringgate-client-pb2-")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run([protoc, "--proto_path=" + proto_dir, "--python_out=" + out,
                    os.path.join(proto_dir, "client.proto")], check=True)
    sys.path.insert(0, out)
    try:
        use_bindings(importlib.import_module("client_pb2"))
    finally:
        sys.path.remove(out)
    return pb


# ---- errors ---------------------------------------------------------------------

class ProtocolError(Exception):
    """The gateway sent something the protocol does not allow."""


class ConnectionClosed(Exception):
    """The gateway closed the connection (after a Kicked, if kicked is set)."""

    def __init__(self, message, kicked=None):
        super().__init__(message)
        self.kicked = kicked


class ServerError(Exception):
    """A request was answered with Error: code (an ErrorCode number),
    code_name ("WRONG_PASSWORD"), message (for people only)."""

    def __init__(self, seq, code, message):
        self.seq = seq
        self.code = code
        self.code_name = pb.ErrorCode.Name(code) if code in pb.ErrorCode.values() else str(code)
        self.message = message
        super().__init__("%s: %s (seq %d)" % (self.code_name, message, seq))


# ---- framing ----------------------------------------------------------------------

def encode_varint(value):
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_frame(body):
    """One frame: the body's length as a varint, then the body."""
    return encode_varint(len(body)) + body


def decode_frame(buf, max_body=MAX_BODY):
    """The first complete frame in buf (bytes or bytearray): (body, bytes
    it took), or (None, 0) while it is incomplete. max_body None: no limit.
    Raises ProtocolError for a length prefix past 5 bytes or over max_body."""
    length, shift = 0, 0
    for i, byte in enumerate(buf[:MAX_PREFIX]):
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if max_body is not None and length > max_body:
                raise ProtocolError("frame of %d bytes announced" % length)
            start = i + 1
            if len(buf) - start < length:
                return None, 0
            return bytes(buf[start:start + length]), start + length
    if len(buf) >= MAX_PREFIX:
        raise ProtocolError("frame length prefix longer than 5 bytes")
    return None, 0


class FrameReader:
    """Splits a byte stream into frame bodies."""

    def __init__(self, max_body=MAX_BODY):
        self.buf = bytearray()
        self.max_body = max_body

    def feed(self, data):
        """Add received bytes; return the bodies now complete, in order."""
        self.buf += data
        bodies = []
        while True:
            body, used = decode_frame(self.buf, self.max_body)
            if body is None:
                return bodies
            bodies.append(body)
            del self.buf[:used]


def resume_token_of(msg):
    """The resume token a ServerMessage brings (LoginReply.resume, a token
    push, ResumeReply.resume), or None (docs/protocol.md section 10)."""
    kind = msg.WhichOneof("body")
    if kind == "login" and msg.login.HasField("resume"):
        return msg.login.resume.token
    if kind == "token":
        return msg.token.token
    if kind == "resume":
        return msg.resume.resume.token
    return None


# ---- the world as a client sees it --------------------------------------------

# One change to what a client sees. kind: "entered" (name, zone, x, y set),
# "left", "moved" (x, y) or "chat" (name, text); player_id always.
Event = collections.namedtuple("Event", "kind player_id name zone x y text")
Event.__new__.__defaults__ = (None,) * 5

# A player in view.
Seen = collections.namedtuple("Seen", "name zone x y")


class World:
    """The players a client sees (players: id -> Seen) and the chat lines
    it heard (chat: [(name, text)]), kept from LoginReply, MoveReply and
    the pushes, as docs/protocol.md "World updates" says."""

    def __init__(self):
        self.me = None          # PlayerState of this client's player
        self.zone = None        # Zone it is in
        self.zones = {}         # id -> Zone, every zone of the world
        self.players = {}
        self.chat = []

    def on_login(self, reply):
        self.me = reply.self
        self.zone = reply.zone
        self.zones = {z.id: z for z in reply.zones} or {reply.zone.id: reply.zone}
        self.players = {o.player_id: Seen(o.name, o.zone, o.x, o.y) for o in reply.others}

    def on_move(self, reply):
        if reply.zone and reply.zone in self.zones:
            self.zone = self.zones[reply.zone]

    def apply(self, msg):
        """Apply one push (a ServerMessage with seq 0); return its Events
        in order. Pushes that do not change the world give none."""
        kind = msg.WhichOneof("body")
        if kind == "update":
            u = msg.update
            return ([self._left(pid) for pid in u.left]
                    + [self._entered(st) for st in u.entered]
                    + [self._moved(m) for m in u.moved]
                    + [self._chat(line) for line in u.chat])
        if kind == "joined":
            return [self._entered(msg.joined.player)]
        if kind == "left":
            return [self._left(msg.left.player_id)]
        if kind == "moved":
            return [self._moved(msg.moved)]
        if kind == "chat_line":
            return [self._chat(msg.chat_line)]
        return []

    def _entered(self, st):
        self.players[st.player_id] = Seen(st.name, st.zone, st.x, st.y)
        return Event("entered", st.player_id, st.name, st.zone, st.x, st.y)

    def _left(self, player_id):
        self.players.pop(player_id, None)
        return Event("left", player_id)

    def _moved(self, m):
        old = self.players.get(m.player_id)
        if old is None:
            raise ProtocolError("moved: player %d is not in view" % m.player_id)
        self.players[m.player_id] = old._replace(x=m.x, y=m.y)
        return Event("moved", m.player_id, old.name, old.zone, m.x, m.y)

    def _chat(self, line):
        self.chat.append((line.name, line.text))
        return Event("chat", line.player_id, line.name, text=line.text)


# ---- the client ----------------------------------------------------------------------

def tls_context(ca_file=None):
    """A client TLS context: TLS 1.3 only, the peer's certificate verified
    against ca_file (PEM; None: the system's trust store) and its host name
    checked. Python's defaults already refuse an unverified peer; this says
    so explicitly."""
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class Client:
    """One connection to a gateway. The verbs send a request and return its
    reply body, raising ServerError for an Error answer; pushes that arrive
    meanwhile are queued (pushes(), wait_push())."""

    def __init__(self, host="127.0.0.1", port=7777, timeout=10.0, ca_file=None, tls=False,
                 server_name=None):
        """Plain TCP unless ca_file or tls is given: then TLS 1.3, with the
        gateway's certificate verified against ca_file (else the system's
        CAs) for the name server_name (default: host). A refused
        certificate raises ssl.SSLCertVerificationError saying why."""
        if pb is None:
            raise RuntimeError("call load_bindings() or use_bindings() first")
        self.timeout = timeout
        self.host, self.port = host, port
        self.tls = (ca_file, server_name) if ca_file or tls else None
        self.sock = self._dial()
        self.reader = FrameReader()
        self.token = None             # the newest resume token (docs section 10)
        self.last_msg_no = 0          # the highest msg_no received
        self.last_seq = 0
        self.replies = {}
        self.queued = collections.deque()
        self.closed = None            # ConnectionClosed once the gateway closed
        self.world = World()          # kept by login(), move(), wait_event()

    def _dial(self):
        """A connection to self.host:self.port, over TLS when this client
        speaks it (the same CA and name on every dial, resume's included)."""
        sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        if self.tls:
            ca_file, server_name = self.tls
            try:
                sock = tls_context(ca_file).wrap_socket(sock,
                                                        server_hostname=server_name or self.host)
            except BaseException:
                sock.close()
                raise
        return sock

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- low level -------------------------------------------------------------

    def next_seq(self):
        """Requests count up from 1 and wrap past 2^32-1 back to 1."""
        self.last_seq = self.last_seq % 0xFFFFFFFF + 1
        return self.last_seq

    def send(self, **body):
        """Send a ClientMessage with one body (e.g. ping=PingRequest(...));
        return its seq without waiting."""
        seq = self.next_seq()
        msg = pb.ClientMessage(seq=seq, **body)
        self.sock.sendall(encode_frame(msg.SerializeToString()))
        return seq

    def _pump(self, deadline):
        """Read what arrives until deadline (time.monotonic()); file each
        message as a reply or a push. False when nothing came in time."""
        if self.closed:
            raise self.closed
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            kicked = next((m.kicked for m in self.queued if m.WhichOneof("body") == "kicked"),
                          None)
            self.closed = ConnectionClosed("the gateway closed the connection"
                                           + (" (kicked: %s)" % pb.ErrorCode.Name(kicked.code)
                                              if kicked else ""), kicked)
            raise self.closed
        for body in self.reader.feed(data):
            msg = pb.ServerMessage()
            msg.ParseFromString(body)
            self._note(msg)
            if msg.seq:
                self.replies[msg.seq] = msg
            else:
                self.queued.append(msg)
        return True

    def _note(self, msg):
        """Keep what a resume needs: the highest msg_no, the newest token."""
        if msg.msg_no:
            self.last_msg_no = msg.msg_no
        self.token = resume_token_of(msg) or self.token

    def wait_reply(self, seq, timeout=None):
        """The ServerMessage answering request seq."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while seq not in self.replies:
            if not self._pump(deadline):
                raise TimeoutError("no answer to request %d" % seq)
        return self.replies.pop(seq)

    def request(self, reply_body, **body):
        """Send one request, wait for its answer; return the reply body
        (e.g. the LoginReply) or raise ServerError."""
        msg = self.wait_reply(self.send(**body))
        kind = msg.WhichOneof("body")
        if kind == "error":
            raise ServerError(msg.seq, msg.error.code, msg.error.message)
        if kind != reply_body:
            raise ProtocolError("request %d: expected %s, got %s" % (msg.seq, reply_body, kind))
        return getattr(msg, reply_body)

    # -- pushes ----------------------------------------------------------------

    def pushes(self, timeout=0.0):
        """Yield queued pushes (ServerMessage, seq 0), then those that
        arrive within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            while self.queued:
                yield self.queued.popleft()
            if not self._pump(deadline):
                return

    def wait_push(self, predicate, timeout=None):
        """The first push (queued or arriving) that predicate(msg) accepts;
        it is taken off the queue, the others stay in order."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            for i, msg in enumerate(self.queued):
                if predicate(msg):
                    del self.queued[i]
                    return msg
            if not self._pump(deadline):
                raise TimeoutError("no matching push")

    def wait_event(self, predicate, timeout=None):
        """Apply pushes to self.world in arrival order until one gives an
        Event that predicate(event) accepts, and return that Event (the
        pushes before it are applied and gone; use this or wait_push, not
        both, or the world misses what wait_push took)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            while self.queued:
                for event in self.world.apply(self.queued.popleft()):
                    if predicate(event):
                        return event
            if not self._pump(deadline):
                raise TimeoutError("no matching event")

    # -- the game ---------------------------------------------------------------

    def login(self, name, password):
        """LoginReply{self, created, zone, others, zones}; self.world
        starts from it. password: bytes (the proto field is bytes), or str,
        sent as its UTF-8."""
        if isinstance(password, str):
            password = password.encode()
        reply = self.request("login", login=pb.LoginRequest(name=name, password=password))
        self.world.on_login(reply)
        return reply

    def move(self, x, y, zone=0):
        """MoveReply{x, y, zone}: to (x, y) in this zone, or in zone `zone`
        (travel); those who see you get your new position."""
        reply = self.request("move", move=pb.MoveRequest(x=x, y=y, zone=zone))
        self.world.on_move(reply)
        return reply

    def chat(self, text):
        """ChatReply{}; those who see you get the line."""
        return self.request("chat", chat=pb.ChatRequest(text=text))

    def earn(self, amount):
        """EarnReply{gold}: the new total, durable when it arrives."""
        return self.request("earn", earn=pb.EarnRequest(amount=amount))

    def ping(self, client_time=None):
        """Pong{client_time, server_time_ms}."""
        if client_time is None:
            client_time = time.monotonic_ns() // 1000
        return self.request("pong", ping=pb.PingRequest(client_time=client_time))

    def logout(self):
        """LogoutReply{} once the player is saved; the connection stays open."""
        reply = self.request("logout", logout=pb.LogoutRequest())
        self.token = None  # the session is over: nothing to resume
        return reply

    def resume(self, host=None, port=None):
        """Take the session back over a new connection (to host:port, by
        default the gateway of this one) after this one dropped, within
        the grace period (docs/protocol.md section 10). Returns the
        ResumeReply{resume, replayed, pending}; the `replayed` messages it
        missed follow and are read like any others (replies by seq: a
        wait_reply() for a request in flight at the drop gets its answer
        when it was replayed or is listed in pending; pushes queued, in
        order). Raises ServerError: RESUME_EXPIRED or BAD_REQUEST mean log
        in again with login()."""
        if self.token is None:
            raise RuntimeError("nothing to resume: no login session")
        self.sock.close()
        self.host, self.port = host or self.host, port or self.port
        self.sock = self._dial()
        self.reader = FrameReader()
        self.closed = None
        return self.request("resume", resume=pb.ResumeRequest(token=self.token,
                                                               last_received=self.last_msg_no))
