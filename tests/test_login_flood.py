"""Login floods are throttled (issue 11, item 11).

A login costs dbproxy one Argon2 hash (about 60 ms with the interactive
profile this test runs), so two workers do about 33 a second; without
throttles about 170 concurrent bad logins pushed every real login past its
deadline. The gateway runs --request-timeout-ms 3000 here (170 hashes take
about 5 s), and each case uses its own loopback source addresses (127.0.0.x)
as other machines would:

  one_address_flood    170 wrong-password logins at once from one address:
                       the address's login rate refuses most at once
                       (RATE_LIMITED), and a real login from another address
                       succeeds well within its deadline.
  spread_flood         the same from 17 addresses: logins are answered
                       before their deadline (each account's failures back
                       off, and dbproxy answers SERVER_BUSY at once for what
                       it cannot end in time; at most a rare TIMEOUT when a
                       hash runs far slower than the ones before it), and
                       the real login gets in, retrying after a busy answer,
                       every answer to it before its deadline.
  repeated_failures    5 wrong passwords in a row from an address make its
                       next login wait (RATE_LIMITED, even with the right
                       password); the account backs off for other addresses
                       too; after the backoff the right password works; 5
                       logins abandoned (hung up before the answer) count
                       as failures at their address.
  creation_bounded     --creates-per-addr-per-hour 3: the 4th new account from
                       an address is refused (RATE_LIMITED) while its existing
                       accounts still log in; dbproxy's --creates-per-sec 4
                       bounds creation over all addresses.
"""
import math
import time

import ringgate_test as rt
from ringgate_test import expect, expect_error, body_of

TIMEOUT_MS = 3000


def env(dbproxy_args="", gateway_args=""):
    return {
        # The real hash cost (no --pwhash min): the flood is about hashing time.
        "RINGGATE_DBPROXY_ARGS": "--log-level debug " + dbproxy_args,
        "RINGGATE_GATEWAY_ARGS": "--log-level debug --heartbeat-ms 200 --dead-ms 1000 "
                                 "--request-timeout-ms %d %s" % (TIMEOUT_MS, gateway_args),
    }


def code_of(m):
    return rt.client_pb2.ErrorCode.Name(m.error.code) if body_of(m) == "error" else body_of(m)


def send_logins(clients, accounts, password):
    """Send one login per client at once; returns {client: (reply, seconds)}."""
    began = time.monotonic()
    for i, c in enumerate(clients):
        c.seq += 1
        c.send(rt.client_pb2.ClientMessage(seq=c.seq, login=rt.client_pb2.LoginRequest(
            name=accounts[i % len(accounts)], password=password)))
    return began


def collect(clients, began):
    out = []
    for c in clients:
        m = c.wait_reply(c.seq, timeout=TIMEOUT_MS / 1000 + 10)
        out.append((code_of(m), time.monotonic() - began))
    return out


def make_accounts(cluster, names, source):
    c = cluster.client("maker", source)
    for name in names:
        expect(c.login(name, "right-pw"), "login")
        expect(c.logout(), "logout")
    c.close()


def real_login(cluster, name, source="127.0.0.1", patience_s=15):
    """Log in as a player would: retry after RATE_LIMITED / SERVER_BUSY with
    a pause. Returns (seconds to success, answers seen); every answer must
    come before the deadline."""
    c = cluster.client("real", source)
    began = time.monotonic()
    seen = []
    while True:
        asked = time.monotonic()
        m = c.login(name, "right-pw")
        took = time.monotonic() - asked
        seen.append(code_of(m))
        assert took < TIMEOUT_MS / 1000, "real login answered after %.2f s: %s" % (took, m)
        if body_of(m) == "login":
            return time.monotonic() - began, seen
        assert seen[-1] in ("RATE_LIMITED", "SERVER_BUSY"), m
        assert time.monotonic() - began < patience_s, "never got in: %s" % seen
        time.sleep(0.5)


def one_address_flood(cluster):
    make_accounts(cluster, ["real1", "f0", "f1"], "127.0.0.40")
    flood = [cluster.client("flood%d" % i, "127.0.0.41") for i in range(170)]
    began = send_logins(flood, ["f0", "f1"], b"wrong")
    took, seen = real_login(cluster, "real1")
    answers = collect(flood, began)
    codes = [a for a, _ in answers]
    rt.log("one address: real login in %.2f s (%s); flood answers %s" % (
        took, seen, {k: codes.count(k) for k in set(codes)}))
    # dbproxy admits a login only if it expects to end it in time; a hash
    # that runs far slower than the ones before it (shared cores) may
    # still miss: a rare one, never the flood.
    assert codes.count("TIMEOUT") <= 2, codes
    assert codes.count("RATE_LIMITED") >= 140, codes
    for c in flood:
        c.close()


def spread_flood(cluster):
    make_accounts(cluster, ["real2", "s0", "s1"], "127.0.0.50")
    flood = [cluster.client("spread%d" % i, "127.0.0.%d" % (60 + i % 17)) for i in range(170)]
    began = send_logins(flood, ["s0", "s1"], b"wrong")
    took, seen = real_login(cluster, "real2")
    answers = collect(flood, began)
    codes = [a for a, _ in answers]
    rt.log("17 addresses: real login in %.2f s (%s); flood answers %s, slowest %.2f s" % (
        took, seen, {k: codes.count(k) for k in set(codes)}, max(t for _, t in answers)))
    assert codes.count("TIMEOUT") <= 2, codes  # see one_address_flood
    assert set(codes) <= {"WRONG_PASSWORD", "RATE_LIMITED", "SERVER_BUSY", "TIMEOUT"}, codes
    # Each account's failures back off: a few hashes each, not 85.
    assert codes.count("WRONG_PASSWORD") <= 2 * 8, codes
    for c in flood:
        c.close()


def repeated_failures(cluster):
    make_accounts(cluster, ["guessme"], "127.0.0.70")
    guesser = cluster.client("guesser", "127.0.0.71")
    for _ in range(5):
        expect_error(guesser.login("guessme", "wrong"), "WRONG_PASSWORD")
    err = expect_error(guesser.login("guessme", "right-pw"), "RATE_LIMITED")
    assert "failed logins from your address" in err.message, err
    # From elsewhere: the account itself is backing off.
    other = cluster.client("other", "127.0.0.72")
    err = expect_error(other.login("guessme", "right-pw"), "RATE_LIMITED")
    assert "this account" in err.message, err
    # Both backoffs are 1 s after the 5th failure; then the owner gets in.
    time.sleep(1.2)
    expect(other.login("guessme", "right-pw"), "login")
    # Hanging up before the answer does not dodge the count: an abandoned
    # login counts as a failure at its address.
    for n in range(5):
        quitter = cluster.client("quitter%d" % n, "127.0.0.73")
        quitter.seq += 1
        quitter.send(rt.client_pb2.ClientMessage(seq=1, login=rt.client_pb2.LoginRequest(
            name="guessme", password=b"guess%d" % n)))
        quitter.close()
    time.sleep(0.3)  # the gateway sees the closes
    late = cluster.client("late", "127.0.0.73")
    err = expect_error(late.login("guessme", "right-pw"), "RATE_LIMITED")
    assert "failed logins from your address" in err.message, err


def creation_bounded(cluster):
    maker = cluster.client("maker", "127.0.0.80")
    for name in ("new1", "new2", "new3"):
        assert expect(maker.login(name, "pw"), "login").created
        expect(maker.logout(), "logout")
        time.sleep(0.3)  # below dbproxy's --creates-per-sec
    err = expect_error(maker.login("new4", "pw"), "RATE_LIMITED")
    assert "no new account" in err.message, err
    assert not expect(maker.login("new1", "pw"), "login").created
    # Over all addresses: 12 creations at once, each from its own address,
    # get at most 4 (the bucket) plus what refills meanwhile.
    many = [cluster.client("many%d" % i, "127.0.0.%d" % (90 + i)) for i in range(12)]
    began = send_logins(many, ["burst%d" % i for i in range(12)], b"pw")
    replies = collect(many, began)
    answers = [c for c, _ in replies]
    # The bucket refills 4 tokens a second while the hashes run (slow on a
    # loaded machine): the bound is the bucket plus what the last answer's
    # time let refill, not a fixed count.
    allowed = 4 + math.ceil(4 * max(t for _, t in replies))
    rt.log("12 creations at once: %s (at most %d)"
           % ({k: answers.count(k) for k in set(answers)}, allowed))
    assert answers.count("login") <= allowed, answers
    # Over the bound: RATE_LIMITED; or busy, when the hashes cannot all end
    # by the deadline (a rare TIMEOUT: see one_address_flood).
    assert set(answers) <= {"login", "RATE_LIMITED", "SERVER_BUSY", "TIMEOUT"}, answers
    assert answers.count("TIMEOUT") <= 1, answers


CASES = {
    "one_address_flood": (one_address_flood, env()),
    "spread_flood": (spread_flood, env()),
    "repeated_failures": (repeated_failures, env()),
    "creation_bounded": (creation_bounded, env("--creates-per-sec 4",
                                               "--creates-per-addr-per-hour 3")),
}


rt.main(cases={name: rt.on_cluster(case, extra_env=case_env)
               for name, (case, case_env) in CASES.items()})
