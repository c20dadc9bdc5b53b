"""What docs/protocol.md promises a client author, checked against a cluster
(issue 11, "the contract, where a client author had to guess").

  edge_answers      an empty frame and a seq-0 request get Error BAD_REQUEST
                    with seq 0, a request without a body gets BAD_REQUEST
                    with its seq, and the connection stays in every case;
                    replies can come out of request order (an answer the
                    gateway gives itself overtakes one that waits on the
                    database).
  names_takeover    names are case-sensitive ("Casey" and "casey" are two
                    accounts); a takeover login gets the player's current
                    state (its unsaved move), and the others in the zone see
                    neither PlayerLeft nor PlayerJoined for it.
  flood_kick        the flood kick counts RATE_LIMITED answers for being over
                    --msg-rate: the (flood-refusals + 1)th in a row is the
                    Kicked RATE_LIMITED.
"""
import time

import ringgate_test as rt
from ringgate_test import expect, expect_error, body_of


def frames_of(messages):
    """The messages as frames in one byte string: sent in one write, none
    is held back by Nagle's algorithm behind an unanswered one."""
    out = b""
    for m in messages:
        data = m.SerializeToString()
        out += rt.encode_varint(len(data)) + data
    return out


def in_order(c, n, timeout=10):
    """The next n messages on c's connection, in arrival order (the
    harness's inbox keeps it)."""
    return [c.wait(lambda m: True, "message %d of %d" % (i + 1, n), timeout)
            for i in range(n)]


def edge_answers(cluster):
    c = cluster.client("edges")
    pb = rt.client_pb2  # loaded by the first client
    c.send_raw(b"\x00")  # a frame whose body is empty: ClientMessage{}
    m = c.wait_push(lambda m: body_of(m) == "error", what="Error for an empty frame")
    assert m.seq == 0 and m.error.code == pb.BAD_REQUEST, m
    c.send(pb.ClientMessage(seq=0, ping=pb.PingRequest(client_time=1)))
    m = c.wait_push(lambda m: body_of(m) == "error", what="Error for seq 0")
    assert m.seq == 0 and m.error.code == pb.BAD_REQUEST, m
    c.seq += 1
    c.send(pb.ClientMessage(seq=c.seq))  # no body
    expect_error(c.wait_reply(c.seq), "BAD_REQUEST")
    expect(c.ping(), "pong")  # still connected

    # Out of order: an earn waits for the database's commit; a second request
    # with the same seq is answered by the gateway at once, so its answer
    # comes first although it was sent second.
    expect(c.login("orderly", "pw"), "login")
    c.seq += 1
    # In one write, so that the second is not held back (Nagle) until the
    # earn's answer has come.
    c.send_raw(frames_of([pb.ClientMessage(seq=c.seq, earn=pb.EarnRequest(amount=5)),
                          pb.ClientMessage(seq=c.seq, ping=pb.PingRequest(client_time=2))]))
    first, second = in_order(c, 2)
    expect_error(first, "BAD_REQUEST")
    assert expect(second, "earn").gold == 5


def names_takeover(cluster):
    a = cluster.client("Casey")
    b = cluster.client("casey")
    upper = expect(a.login("Casey", "pw1"), "login")
    lower = expect(b.login("casey", "pw2"), "login")
    assert upper.created and lower.created, (upper, lower)
    assert upper.self.player_id != lower.self.player_id

    watcher = cluster.client("watcher")
    expect(watcher.login("watcher", "pw"), "login")
    first = cluster.client("first")
    expect(first.login("taken", "pw"), "login")
    expect(first.move(3.0, 4.0), "move")  # not saved: no logout, no autosave yet
    second = cluster.client("second")
    took = expect(second.login("taken", "pw"), "login")
    assert (took.self.x, took.self.y) == (3.0, 4.0), took
    assert not took.created
    first.wait_push(lambda m: body_of(m) == "kicked", what="Kicked LOGGED_IN_ELSEWHERE")
    time.sleep(0.5)  # room for any PlayerLeft / PlayerJoined to arrive
    expect(watcher.ping(), "pong")
    # The watcher saw "taken" come into view once, and nothing of the
    # takeover: no left, no second entered (WorldUpdate, docs/protocol.md).
    pushes = watcher.take_pushes()
    taken = took.self.player_id
    entered = [e for m in pushes if body_of(m) == "update" for e in m.update.entered
               if e.player_id == taken]
    left = [i for m in pushes if body_of(m) == "update" for i in m.update.left if i == taken]
    assert len(entered) == 1 and not left, pushes


def flood_kick(cluster):
    c = cluster.client("flooder")
    pb = rt.client_pb2  # loaded by the first client
    # --msg-rate 1 --msg-burst 1 --flood-refusals 3: one message is let
    # through, the next ones sent at once are refused; the 4th refusal in a
    # row (3 + 1) is the kick.
    c.send_raw(frames_of([pb.ClientMessage(seq=n, ping=pb.PingRequest(client_time=n))
                          for n in range(1, 8)]))
    c.wait_closed()
    codes = [(m.seq, body_of(m), m.error.code if body_of(m) == "error" else
              m.kicked.code if body_of(m) == "kicked" else None)
             for m in c.inbox]
    rt.log("flood answers: %s" % codes)
    limited = [x for x in codes if x[1] == "error" and x[2] == pb.RATE_LIMITED]
    kicked = [x for x in codes if x[1] == "kicked"]
    assert len(limited) == 3 and len(kicked) == 1 and kicked[0][2] == pb.RATE_LIMITED, codes


CASES = {
    "edge_answers": (edge_answers, {}),
    "names_takeover": (names_takeover, {}),
    "flood_kick": (flood_kick, {
        "RINGGATE_GATEWAY_ARGS": "--log-level debug --heartbeat-ms 200 --dead-ms 1000 "
                                 "--msg-rate 1 --msg-burst 1 --flood-refusals 3"}),
}


rt.main(cases={name: rt.on_cluster(case, extra_env=env) for name, (case, env) in CASES.items()})
