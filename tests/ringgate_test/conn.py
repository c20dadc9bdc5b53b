"""Framed: the one framed protobuf connection every test speaks through
(a varint body length, then one message: docs/protocol.md section 1),
whether it plays a game client, a gateway, gamesrv or dbproxy; and
GameClient, a game client's connection to the gateway built on it.

Varints and frames are clients/python/ringgate_client.py's: the public
client library is the one encoder and decoder.
"""

import socket
import ssl
import struct
import threading
import time

from . import protos
from .base import WAIT, body_of, eventually, expect
from .protos import ringgate_client as rc

encode_varint = rc.encode_varint
encode_frame = rc.encode_frame


def parse_frame(buf):
    """(body, rest) for the first complete frame in buf, or (None, buf)."""
    body, used = rc.decode_frame(buf, max_body=None)
    return body, buf[used:]


class Closed(AssertionError):
    """The peer closed the connection while a message was awaited."""


def as_bytes(password):
    """A password for LoginRequest or DbLogin (bytes fields): a str is sent
    as its UTF-8 bytes."""
    return password.encode() if isinstance(password, str) else password


def dial(port, source=None, rcvbuf=None, timeout=WAIT, ca_file=None, server_name="localhost",
         address="127.0.0.1"):
    """A TCP connection to address:port (loopback unless a test runs hosts:
    netns.py), from loopback address source
    (any 127.0.0.0/8 address is this machine) and with a receive buffer of
    rcvbuf bytes when given (a peer that soaks up little). With ca_file, TLS
    1.3 over it: the certificate must chain to ca_file and name server_name
    (the Python client's own rules, rc.tls_context); a refusal raises
    ssl.SSLError saying why."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if source:
        sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect((address, port))
    if ca_file:
        try:
            sock = rc.tls_context(ca_file).wrap_socket(sock, server_hostname=server_name)
        except BaseException:
            sock.close()
            raise
    return sock


def listen(backlog=8):
    """A listening socket on 127.0.0.1, on a port the kernel picks; it
    stays bound, so the port is never given up between asking and use."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(backlog)
    return sock


class Framed:
    """One framed connection; parse(body) turns a frame body into a
    message. Messages are kept in self.inbox in arrival order, and wait()
    takes the first one a predicate accepts. Two ways to read:

    - pull (the default): bytes are read only while the caller waits, so a
      test can also play a peer that does not read at all;
    - background=True: a reader thread reads all the time and hands each
      message to on_message(conn, msg) first (True: consumed, not kept), so
      a scripted peer answers while the test does something else.

    heartbeat, when given, returns the message sent every heartbeat_s
    seconds by a thread of its own, except while self.silent is set.
    record=True keeps every byte the peer sent in self.received."""

    def __init__(self, sock, parse, name, background=False, on_message=None,
                 heartbeat=None, heartbeat_s=0.1, silent=False, record=False):
        self.sock = sock
        self.parse = parse
        self.name = name
        self.background = background
        self.on_message = on_message
        self.silent = silent
        self.record = record
        self.received = bytearray()
        self.reader = rc.FrameReader(max_body=None)
        self.inbox = []
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.closed = False        # the peer closed (or reset) the connection
        self.stopping = threading.Event()
        if background:
            sock.settimeout(None)
            threading.Thread(target=self._read_loop, daemon=True).start()
        if heartbeat:
            threading.Thread(target=self._beat, args=(heartbeat, heartbeat_s),
                             daemon=True).start()

    # -- sending ------------------------------------------------------------------

    def send(self, msg):
        self.send_body(msg.SerializeToString())

    def send_body(self, body):
        self.send_raw(encode_frame(body))

    def send_raw(self, data):
        with self.send_lock:
            self.sock.sendall(data)

    def _beat(self, heartbeat, interval):
        while not self.stopping.wait(interval) and not self.closed:
            if not self.silent:
                try:
                    self.send(heartbeat())
                except OSError:
                    return

    # -- receiving ------------------------------------------------------------------

    def _file(self, data):
        """File received bytes as messages; b"" is the peer's close."""
        if not data:
            with self.cond:
                self.closed = True
                self.cond.notify_all()
            return
        if self.record:
            self.received += data
        for body in self.reader.feed(data):
            msg = self.parse(body)
            self.note(msg)
            if self.on_message and self.on_message(self, msg):
                continue
            with self.cond:
                self.inbox.append(msg)
                self.cond.notify_all()

    def note(self, msg):
        """Called with each message as it arrives, before it is filed (a
        method, not a callback attribute: no reference cycle keeps a
        dropped connection's socket open until the garbage collector
        runs)."""

    def _recv(self):
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return b""

    def _read_loop(self):
        while True:
            try:
                data = self._recv()
            except OSError:
                data = b""  # closed under us by close()
            try:
                self._file(data)
            except OSError:
                pass  # on_message answering a peer that is gone: it closes next
            if not data:
                return

    def _pump(self, deadline):
        """Pull mode: read what arrives before deadline and file it."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        self.sock.settimeout(remaining)
        try:
            data = self._recv()
        except socket.timeout:
            return
        self._file(data)

    def _until(self, check, what, timeout):
        """Read (pull) or wait for the reader (background) until check(),
        called with self.cond held, returns something other than None;
        return that. Closed when the peer closes first, AssertionError at
        the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            with self.cond:
                value = check()
                if value is not None:
                    return value
                if self.closed:
                    raise Closed("%s: closed by the peer; no %s; inbox: %s"
                                 % (self.name, what, self.inbox))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("%s: no %s within %.0f s; inbox: %s"
                                         % (self.name, what, timeout, self.inbox))
                if self.background:
                    self.cond.wait(remaining)
                    continue
            self._pump(deadline)

    def wait(self, predicate, what="message", timeout=WAIT):
        """The first message predicate accepts, taken off the inbox."""
        def check():
            for i, msg in enumerate(self.inbox):
                if predicate(msg):
                    return self.inbox.pop(i)
            return None
        return self._until(check, what, timeout)

    def next(self, skip=("heartbeat",), timeout=WAIT):
        """The next message whose body is not one of skip (those are
        dropped), or None once the peer has closed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.wait(lambda m: True, "message",
                                max(0.0, deadline - time.monotonic()))
            except Closed:
                return None
            if msg.WhichOneof("body") not in skip:
                return msg

    def wait_closed(self, timeout=WAIT, only=None):
        """Wait until the peer closes. Messages that come first stay in the
        inbox; with only (a tuple of body names), a message of any other
        kind fails the wait instead."""
        def check():
            if only is not None:
                for msg in self.inbox:
                    if msg.WhichOneof("body") not in only:
                        raise AssertionError("%s: %r instead of a close" % (self.name, msg))
            return True if self.closed else None
        return self._until(check, "close", timeout)

    def close(self):
        self.stopping.set()
        if self.background:
            try:  # wakes the reader thread with end-of-stream
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.sock.close()


class GameClient(Framed):
    """A game client's connection to the gateway (client.proto), in pull
    mode. request() sends a ClientMessage and returns the ServerMessage
    that answers it, an Error included (see expect_error); pushes (seq 0)
    stay in the inbox for wait_push(). source, rcvbuf, ca_file,
    server_name and address: see dial().

    For session resume (docs/protocol.md section 10) it keeps, as messages
    arrive: token, the newest resume token; last_msg_no, the highest
    msg_no; msg_nos, every non-zero msg_no in arrival order (across
    resumes). resume() carries the session over to a new connection, over
    the same transport (TLS included)."""

    def __init__(self, port, name="client", source=None, rcvbuf=None, ca_file=None,
                 server_name="localhost", address="127.0.0.1"):
        protos.load_protos()
        self.tls = (ca_file, server_name)
        self.address = address
        sock = self._connect(port, source, rcvbuf)
        super().__init__(sock, protos.parser(protos.client_pb2.ServerMessage), name)
        self.reader = self._new_reader()
        self.port = port
        self.peer = "%s:%d" % sock.getsockname()
        self.seq = 0
        self.token = None
        self.last_msg_no = 0
        self.msg_nos = []

    def note(self, msg):
        """Keep what a resume needs from msg, as it arrives."""
        if msg.msg_no:
            self.last_msg_no = msg.msg_no
            self.msg_nos.append(msg.msg_no)
        self.token = rc.resume_token_of(msg) or self.token

    # The transport (ws.WsGameClient overrides both): a connected socket
    # ready for messages, and the parser of what arrives on it.
    def _connect(self, port, source=None, rcvbuf=None):
        ca_file, server_name = self.tls
        return dial(port, source, rcvbuf, timeout=10, ca_file=ca_file, server_name=server_name,
                    address=self.address)

    @staticmethod
    def _new_reader():
        return rc.FrameReader(max_body=None)

    def drop(self, abort=True):
        """Lose the connection as a network would: a reset (abort) or a
        plain close. What was not read yet is lost with it."""
        if abort:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def resume(self, port=None, source=None, token=None, last=None, timeout=WAIT):
        """Drop this connection if it is open, dial port (default: the
        gateway this client used) and send ResumeRequest{token, last}
        (default: self.token and self.last_msg_no) as the first request.
        Returns the ServerMessage answering it (resume, or an Error); the
        replayed messages follow it into the inbox, after those already
        there."""
        if self.sock.fileno() >= 0:
            self.drop()
        self.reader = self._new_reader()
        self.sock = self._connect(port or self.port, source)
        self.port = port or self.port
        self.peer = "%s:%d" % self.sock.getsockname()
        with self.cond:
            self.closed = False
        return self.request(resume=protos.client_pb2.ResumeRequest(
            token=self.token if token is None else token,
            last_received=self.last_msg_no if last is None else last), timeout=timeout)

    def wait_reply(self, seq, timeout=WAIT):
        """The reply to request seq."""
        return self.wait(lambda m: m.seq == seq, "reply to seq %d" % seq, timeout)

    def request(self, timeout=WAIT, **body):
        """request(move=MoveRequest(x=1, y=2)) -> the reply ServerMessage."""
        self.seq += 1
        self.send(protos.client_pb2.ClientMessage(seq=self.seq, **body))
        return self.wait_reply(self.seq, timeout)

    def wait_push(self, predicate, timeout=WAIT, what="push"):
        """The first push (in arrival order, taken) that predicate accepts."""
        return self.wait(lambda m: m.seq == 0 and predicate(m), what, timeout)

    def take_pushes(self):
        """The pushes received so far, in order, taken off the inbox."""
        with self.cond:
            pushes = [m for m in self.inbox if m.seq == 0]
            self.inbox = [m for m in self.inbox if m.seq != 0]
        return pushes

    # -- game verbs ----------------------------------------------------------

    def login(self, name, password):
        """password: bytes, or str (see as_bytes)."""
        return self.request(login=protos.client_pb2.LoginRequest(name=name,
                                                                password=as_bytes(password)))

    def login_when_free(self, name, password, timeout=30):
        """The LoginReply of a login retried while it is answered
        SERVICE_UNAVAILABLE: a game server that went away (kill -9) still
        holds the account's lease until it expires (docs/protocol.md
        section 11). Any other answer fails."""
        def attempt():
            m = self.login(name, password)
            if body_of(m) == "error" and m.error.code == protos.client_pb2.SERVICE_UNAVAILABLE:
                return None
            return expect(m, "login")
        return eventually(attempt, timeout=timeout, interval=0.5,
                          what="%s's login once its lease is free" % name)

    def move(self, x, y):
        return self.request(move=protos.client_pb2.MoveRequest(x=x, y=y))

    def chat(self, text):
        return self.request(chat=protos.client_pb2.ChatRequest(text=text))

    def earn(self, amount):
        return self.request(earn=protos.client_pb2.EarnRequest(amount=amount))

    def ping(self):
        return self.request(ping=protos.client_pb2.PingRequest(client_time=1))

    def logout(self):
        return self.request(logout=protos.client_pb2.LogoutRequest())
