"""The Python bindings of proto/client.proto and proto/internal.proto,
generated at test time with protoc into a temporary directory (never
committed), from the same files the C code is built from. The public
client library (clients/python/ringgate_client.py) is pointed at the same
client_pb2, so its messages and the harness's are one type.
"""

import atexit
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

from .base import SOURCE_DIR, skip

CLIENT_DIR = os.path.join(SOURCE_DIR, "clients", "python")
if CLIENT_DIR not in sys.path:
    sys.path.insert(0, CLIENT_DIR)
import ringgate_client  # noqa: E402 (the public client: framing, bindings)

client_pb2 = None
internal_pb2 = None


def load_protos():
    """Generate and import client_pb2 / internal_pb2 (once per process).
    Skips the test (exit 77) without protoc or Python's protobuf runtime."""
    global client_pb2, internal_pb2
    if client_pb2 is not None:
        return
    protoc = shutil.which("protoc")
    if not protoc:
        skip("no protoc (Debian: protobuf-compiler)")
    try:
        importlib.import_module("google.protobuf")
    except ImportError:
        skip("%s cannot import google.protobuf (Debian: python3-protobuf)" % sys.executable)
    out = tempfile.mkdtemp(prefix="ringgate-pb2-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    subprocess.run([protoc, "--proto_path=" + proto_dir, "--python_out=" + out,
                    os.path.join(proto_dir, "client.proto"),
                    os.path.join(proto_dir, "internal.proto")], check=True, timeout=60)
    sys.path.insert(0, out)
    client_pb2 = importlib.import_module("client_pb2")
    internal_pb2 = importlib.import_module("internal_pb2")
    ringgate_client.use_bindings(client_pb2)


def parser(message_type):
    """A function that parses a frame body as message_type (a class)."""
    def parse(body):
        msg = message_type()
        msg.ParseFromString(body)
        return msg
    return parse
