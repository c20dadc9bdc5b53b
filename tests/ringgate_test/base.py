"""What every part of the harness and every test uses: where the sources
are, logging, bounded waits, expectations on replies, temporary
directories and the skip exit code.

Every wait here is bounded by an explicit deadline, so a missing event
fails the test with a message instead of hanging it; CTest's TIMEOUT is the
outer bound. No test measures time: deadlines only stop waiting.
"""

import os
import shutil
import sys
import tempfile
import time

SOURCE_DIR = os.environ.get(
    "RINGGATE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# Seconds any single expected event may take at most (slow sanitizer builds
# on a loaded machine included).
WAIT = 15

# The exit code CTest reads as "skipped" (SKIP_RETURN_CODE 77).
SKIP = 77


def log(*args):
    print("[test]", *args, flush=True)


def skip(reason):
    """End the test program as skipped: a prerequisite is missing here."""
    print("SKIP: " + reason, flush=True)
    sys.exit(SKIP)


def eventually(fn, timeout=30, what="condition", interval=0.1):
    """Call fn until it returns a true value (returned) or raises nothing
    past the deadline; the last exception is re-raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
            if value:
                return value
            last = AssertionError(what + " never held")
        except (AssertionError, OSError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise last
        time.sleep(interval)


def body_of(msg):
    """Which body a protobuf message with a "body" oneof carries."""
    return msg.WhichOneof("body")


def expect(msg, body):
    """Assert msg carries body (e.g. "login"); return that body."""
    got = body_of(msg)
    if got != body:
        raise AssertionError("expected %s, got %s: %s" % (body, got, msg))
    return getattr(msg, body)


def expect_error(msg, code_name):
    """Assert msg is an Error with the ErrorCode named code_name; return it."""
    got = body_of(msg)
    if got != "error" or msg.error.code != msg.error.DESCRIPTOR.fields_by_name[
            "code"].enum_type.values_by_name[code_name].number:
        raise AssertionError("expected Error %s, got %s" % (code_name, msg))
    return msg.error


def sanitizer_reports(name, text):
    """The lines of process name's log text where ASan, UBSan, LSan or TSan
    reported something, each prefixed with name."""
    return ["%s: %s" % (name, line) for line in text.splitlines()
            if "Sanitizer" in line or "runtime error:" in line]


# ---- temporary directories -----------------------------------------------------

_temp_dirs = []


def temp_dir(prefix="ringgate-test-"):
    """A new temporary directory; main() removes it when the test passes
    and keeps it (and names it) when it fails."""
    path = tempfile.mkdtemp(prefix=prefix)
    _temp_dirs.append(path)
    return path


def clean_temp_dirs(keep):
    """Remove the temporary directories, or name them when keep is set."""
    while _temp_dirs:
        path = _temp_dirs.pop()
        if keep:
            print("kept for a look: " + path)
        else:
            shutil.rmtree(path, ignore_errors=True)
