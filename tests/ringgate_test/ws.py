"""WebSocket for tests: the gateway's second listener (docs/protocol.md,
"WebSocket") spoken over a raw socket, so that tests can also send what a
browser never would (unmasked or oversized frames, bad handshakes).

  handshake(sock, ...)   send an HTTP upgrade request, return the response
  frame(opcode, ...)     one RFC 6455 frame's bytes, masked or not
  Reader                 bytes in -> binary message payloads out; control
                         frames (ping, pong, close) kept in .control
  WsGameClient           GameClient (conn.py) over WebSocket: each message
                         one binary WebSocket message, no varint prefix
"""

import base64
import hashlib
import os
import struct

from . import protos
from .base import WAIT
from .conn import GameClient, dial

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def new_key():
    return base64.b64encode(os.urandom(16)).decode()


def accept_of(key):
    """Sec-WebSocket-Accept for key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def request_head(path="/ws", key=None, version="13", extra=(), upgrade=True):
    lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
    if key is not None:
        lines.append("Sec-WebSocket-Key: " + key)
    if version is not None:
        lines.append("Sec-WebSocket-Version: " + version)
    lines += list(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock, timeout=WAIT):
    """(status, {lower-case header: value}, body bytes read so far, rest):
    reads up to the blank line (and the body when Content-Length says)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before a response head: %r" % data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if status != 101:
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:length], rest[length:]
    return status, headers, b"", rest


def handshake(sock, **kw):
    """Send request_head(**kw) and return read_response()."""
    sock.sendall(request_head(**kw))
    return read_response(sock)


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0):
    """One frame; a client's frames are masked (RFC 6455 section 5.3)."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


class Reader:
    """Server frames (never masked) in, binary message payloads out.
    Control frames land in self.control as (opcode, payload); a close
    frame's code is self.close_code."""

    def __init__(self):
        self.buf = b""
        self.parts = []
        self.control = []
        self.close_code = None

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            b0, b1 = self.buf[0], self.buf[1]
            assert not b1 & 0x80, "the server masked a frame"
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    break
                n, at = struct.unpack(">H", self.buf[2:4])[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    break
                n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
            if len(self.buf) < at + n:
                break
            opcode, payload = b0 & 0x0F, self.buf[at:at + n]
            self.buf = self.buf[at + n:]
            if opcode >= 0x8:
                self.control.append((opcode, payload))
                if opcode == CLOSE:
                    self.close_code = struct.unpack(">H", payload[:2])[0] if payload else 0
                continue
            self.parts.append(payload)
            if b0 & 0x80:
                out.append(b"".join(self.parts))
                self.parts = []
        return out


class WsGameClient(GameClient):
    """GameClient over the gateway's WebSocket port: the same verbs
    (login, move, chat, resume, ...), each ClientMessage one masked binary
    message. send_frame() sends raw frames for protocol tests. With
    ca_file, over TLS (wss: a gateway with --tls on), as GameClient."""

    def __init__(self, port, name="ws-client", source=None, ca_file=None,
                 server_name="localhost"):
        super().__init__(port, name, source, ca_file=ca_file, server_name=server_name)

    def _connect(self, port, source=None, rcvbuf=None):
        """A connection to port (TLS first when asked), upgraded; bytes
        that came with the 101 are filed as the first received."""
        ca_file, server_name = self.tls
        sock = dial(port, source, rcvbuf, timeout=10, ca_file=ca_file, server_name=server_name)
        status, headers, _, rest = handshake(sock, key=new_key())
        assert status == 101, "handshake answered %d %s" % (status, headers)
        self._early = rest
        return sock

    @staticmethod
    def _new_reader():
        return Reader()

    def _recv(self):
        """The bytes that came with the 101 first, then the socket's."""
        early, self._early = self._early, b""
        return early or super()._recv()

    def send_body(self, body):
        self.send_raw(frame(BINARY, body))

    def send_frame(self, opcode, payload=b"", **kw):
        self.send_raw(frame(opcode, payload, **kw))


def take_over(old, new_client):
    """new_client (a GameClient or WsGameClient, just connected) continues
    the login session of old (dropped): its token, last msg_no and seqs.
    Then new_client.resume() resumes it over new_client's transport."""
    new_client.token = old.token
    new_client.last_msg_no = old.last_msg_no
    new_client.msg_nos = list(old.msg_nos)
    new_client.seq = old.seq
    return new_client
