"""gamesrv on its own: a real gamesrv process between a scripted stand-in
for a gateway (FakeGate, speaking GateToGame/GameToGate) and a scripted
stand-in for dbproxy (FakeDb, speaking GameToDb/DbToGame), on loopback.

This checks what the cluster tests cannot provoke on demand: a dbproxy that
is down, silent or slow (TIMEOUT, SERVICE_UNAVAILABLE, never an early
ack), a gateway that goes silent or sends garbage, field validation, the
takeover of an account by a second login, and the drain on SIGTERM.

usage: test_gamesrv_links.py BUILD_DIR CASE   (one CTest test per case)

Every wait has a deadline; no test measures time. The process, the framed
connections and the bindings come from the harness (tests/ringgate_test).
"""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests"))
import ringgate_test as rt  # noqa: E402
from ringgate_test import WAIT, expect, expect_error, log  # noqa: E402


# ---- the dbproxy stand-in -----------------------------------------------------

class FakeDb:
    """Accepts gamesrv, answers Hello, logins (first login creates the
    account), saves and add_gold, and records every request. Knobs:
    answer_gold=False swallows DbAddGold; busy_saves=N refuses the next N
    saves with DB_BUSY; silent=True stops heartbeats and every answer (a
    hung dbproxy); refuse=True closes new connections at once (dbproxy
    down); hold_logins=True keeps DbLogins unanswered (held_logins) until
    answer_held_logins(). DbNewEpoch is answered with 1, 2, ... as dbproxy's counter
    would. DbAddGold keeps dbproxy's op_id rule: an op_id of the same epoch
    as the account's last applied one, at or below it, is answered, as a
    duplicate, not applied. share: another FakeDb whose database (accounts,
    epoch counter) this one uses too, as two dbproxies on one PostgreSQL.
    Leases follow proto/internal.proto "leases" (the same rules as
    dbproxy's store): a login takes the account's lease, saves and
    AddGolds are fenced by their lease_epoch, DbRenewLeases extends the
    leases this owner holds and names the others lost."""

    def __init__(self, share=None):
        i = rt.internal_pb2
        self.i = i
        self.listener = rt.listen()
        self.port = self.listener.getsockname()[1]
        self.accounts = share.accounts if share else {}   # name -> dict
        self.database = share.database if share else {"epoch": 0, "lock": threading.Lock()}
        self.saves = []             # DbSavePlayer messages
        self.save_times = []        # time.monotonic() of each, in order
        self.swallowed = []         # (conn, GameToDb) not answered
        self.answer_gold = True
        self.gold_requests = []     # every DbAddGold seen, answered or not
        self.refused = 0            # connections closed at once (refuse)
        self.refuse = False
        self.busy_saves = 0
        self.refused_saves = 0
        self.silent = False
        self.conns = []
        self.cond = threading.Condition()
        self.hellos = 0
        self.epochs = 0             # DbNewEpoch requests answered
        self.renews = []            # every DbRenewLeases, in order
        self.spread = False         # True: new accounts on a grid, 20 apart
        self.hold_logins = False
        self.held_logins = []       # (conn, GameToDb) of DbLogins held
        threading.Thread(target=self._accept, daemon=True).start()

    def answer_held_logins(self):
        """Stop holding DbLogins and answer the held ones, in order."""
        with self.cond:
            self.hold_logins = False
            held, self.held_logins = self.held_logins, []
        for conn, req in held:
            self._handle(conn, req)

    def _accept(self):
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            if self.refuse:
                sock.close()
                with self.cond:
                    self.refused += 1
                    self.cond.notify_all()
                continue
            # Silent until Hello is answered: no Heartbeat may come before
            # HelloReply (rg/link.h), here as from a real dbproxy.
            conn = rt.Framed(sock, rt.parser(self.i.GameToDb), "fakedb", background=True,
                             on_message=self._handle, heartbeat=self._heartbeat,
                             silent=True)
            with self.cond:
                self.conns.append(conn)

    def _heartbeat(self):
        return self.i.DbToGame(heartbeat=self.i.Heartbeat(sent_ms=1))

    def _handle(self, conn, req):
        i = self.i
        kind = req.WhichOneof("body")
        if kind == "heartbeat":
            return True
        if kind == "add_gold":
            with self.cond:
                self.gold_requests.append(req)
                self.cond.notify_all()
        if self.silent:
            return True
        if kind == "login" and self.hold_logins:
            with self.cond:
                self.held_logins.append((conn, req))
                self.cond.notify_all()
            return True
        reply = i.DbToGame(request_id=req.request_id)
        if kind == "hello":
            reply.hello.role = "dbproxy"
            with self.cond:
                self.hellos += 1
                self.cond.notify_all()
        elif kind == "login":
            with self.database["lock"]:
                acct = self.accounts.get(req.login.name)
                if acct is None:
                    n = len(self.accounts) + 1
                    x, y = ((-990.0 + n % 99 * 20, -990.0 + n // 99 * 20) if self.spread
                            else (0.0, 0.0))
                    acct = dict(id=n, password=req.login.password,
                                zone=1, x=x, y=y, gold=0, lease_epoch=0,
                                lease_owner=0, lease_shard=0, lease_expires=0)
                    self.accounts[req.login.name] = acct
                    reply.login.created = True
                if not reply.login.created and acct["password"] != req.login.password:
                    reply.status = i.DB_WRONG_PASSWORD
                    conn.send(reply)
                    return True
                if not self._take_lease(acct, req.login):
                    reply.status = i.DB_LEASE_HELD
                    reply.login.holder_shard = acct["lease_shard"]
                reply.login.lease_epoch = acct["lease_epoch"]
            p = reply.login.player
            p.player_id, p.name, p.zone = acct["id"], req.login.name, acct["zone"]
            p.x, p.y, p.gold = acct["x"], acct["y"], acct["gold"]
        elif kind == "new_epoch":
            with self.cond, self.database["lock"]:
                self.epochs += 1
                self.database["epoch"] += 1
                reply.new_epoch.epoch = self.database["epoch"]
        elif kind == "renew":
            with self.cond:
                self.renews.append(req.renew)
                self.cond.notify_all()
            reply.renew.lost.extend(self._renew(req.renew))
        elif kind == "save" and self.busy_saves > 0:
            self.busy_saves -= 1
            self.refused_saves += 1
            reply.status = i.DB_BUSY
        elif kind == "save" and self._fenced(req.save.player_id, req.save.lease_epoch):
            reply.status = i.DB_FENCED
        elif kind == "save":
            with self.cond:
                self.saves.append(req.save)
                self.save_times.append(time.monotonic())
                self.cond.notify_all()
            for acct in self.accounts.values():
                if acct["id"] == req.save.player_id:
                    acct.update(zone=req.save.zone, x=req.save.x, y=req.save.y)
                    if req.save.release:
                        acct.update(lease_owner=0, lease_expires=0)
            reply.save.SetInParent()
        elif kind == "add_gold" and self._fenced(req.add_gold.player_id,
                                                 req.add_gold.lease_epoch):
            reply.status = i.DB_FENCED
        elif kind == "add_gold":
            if not self.answer_gold:
                with self.cond:
                    self.swallowed.append((conn, req))
                    self.cond.notify_all()
                return True
            reply.add_gold.CopyFrom(self.apply_gold(req.add_gold))
        conn.send(reply)
        if kind == "hello":
            conn.silent = False
        return True

    @staticmethod
    def _now_ms():
        return int(time.time() * 1000)

    def _take_lease(self, acct, login):
        """DbLogin's lease rule; False: another live owner holds it."""
        if login.owner == 0:
            return True
        if (acct["lease_owner"] not in (0, login.owner)
                and acct["lease_expires"] > self._now_ms()):
            return False
        if acct["lease_owner"] != login.owner:
            acct["lease_epoch"] += 1
        acct.update(lease_owner=login.owner, lease_shard=login.shard,
                    lease_expires=self._now_ms() + login.lease_ms)
        return True

    def _fenced(self, player_id, epoch):
        with self.database["lock"]:
            for acct in self.accounts.values():
                if acct["id"] == player_id:
                    return epoch != 0 and acct["lease_epoch"] != epoch
        return False

    def _renew(self, renew):
        """Extend the leases renew.owner holds at those epochs; the lost ids."""
        lost = []
        with self.database["lock"]:
            by_id = {a["id"]: a for a in self.accounts.values()}
            for pid, epoch in zip(renew.player_ids, renew.epochs):
                acct = by_id.get(pid)
                if (acct and acct["lease_epoch"] == epoch
                        and acct["lease_owner"] == renew.owner):
                    acct["lease_expires"] = self._now_ms() + renew.lease_ms
                else:
                    lost.append(pid)
        return lost

    def apply_gold(self, add):
        """Apply a DbAddGold as dbproxy does; returns the DbAddGoldReply."""
        out = self.i.DbAddGoldReply()
        with self.database["lock"]:
            self._apply_gold(add, out)
        return out

    def _apply_gold(self, add, out):
        for acct in self.accounts.values():
            if acct["id"] == add.player_id:
                last = acct.get("last_op_id", 0)
                if add.op_id and add.op_id >> 32 == last >> 32 and add.op_id <= last:
                    out.duplicate = True
                else:
                    acct["gold"] += add.amount
                    if add.op_id:
                        acct["last_op_id"] = add.op_id
                out.gold = acct["gold"]

    def wait_for(self, predicate, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("fakedb: no " + what)
                self.cond.wait(remaining)

    def saved_ids(self):
        with self.cond:
            return sorted(s.player_id for s in self.saves)

    def drop_connections(self):
        with self.cond:
            conns, self.conns = self.conns, []
        for conn in conns:
            conn.close()

    def stop(self):
        self.listener.close()
        self.drop_connections()


# ---- the gateway stand-in ------------------------------------------------------

class FakeGate:
    """One gateway link to gamesrv: says Hello, heartbeats, and sends client
    requests for any client session id it likes."""

    def __init__(self, port, hello=True):
        i = rt.internal_pb2
        self.i = i
        self.c = rt.client_pb2
        # Silent until Hello is answered: Hello must be the first frame.
        self.conn = rt.Framed(rt.dial(port), rt.parser(i.GameToGate), "fakegate",
                              background=True, heartbeat=self._heartbeat, silent=True)
        self.seq = 0
        if hello:
            self.conn.send(i.GateToGame(hello=i.Hello(role="gateway", instance="test")))
            self.conn.wait(lambda m: m.WhichOneof("body") == "hello", "HelloReply")
            self.conn.silent = False

    def _heartbeat(self):
        return self.i.GateToGame(heartbeat=self.i.Heartbeat(sent_ms=1))

    def send_request(self, session, **body):
        self.seq += 1
        msg = self.c.ClientMessage(seq=self.seq, **body)
        self.conn.send(self.i.GateToGame(request=self.i.ClientRequest(
            session=session, deadline_ms=5000, message=msg)))
        return self.seq

    def wait_reply(self, session, seq, what="reply"):
        m = self.conn.wait(lambda m: m.WhichOneof("body") == "to_client"
                           and session in m.to_client.sessions
                           and m.to_client.message.seq == seq,
                           "%s to session %d seq %d" % (what, session, seq))
        return m.to_client.message

    def request(self, session, **body):
        return self.wait_reply(session, self.send_request(session, **body))

    def wait_push(self, session, kind, what=None):
        m = self.conn.wait(lambda m: m.WhichOneof("body") == "to_client"
                           and session in m.to_client.sessions
                           and m.to_client.message.seq == 0
                           and m.to_client.message.WhichOneof("body") == kind,
                           what or "%s push to %d" % (kind, session))
        return m.to_client.message

    def wait_kick(self, session):
        return self.conn.wait(lambda m: m.WhichOneof("body") == "kick"
                              and m.kick.session == session,
                              "Kick of session %d" % session).kick

    def login(self, session, name, password="pw"):
        return self.request(session, login=self.c.LoginRequest(name=name,
                                                               password=rt.as_bytes(password)))

    def gone(self, session):
        self.conn.send(self.i.GateToGame(gone=self.i.ClientGone(session=session)))


# ---- cases ---------------------------------------------------------------------

def wait_db_link(db, count=1):
    db.wait_for(lambda: db.hellos >= count, "Hello from gamesrv")


def case_play(srv, db):
    """Login, join/leave pushes, move, chat, earn, ping, logout + save."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    a = expect(gate.login(1, "alice"), "login")
    assert a.created and a.self.name == "alice" and not a.others, a
    b = expect(gate.login(2, "bob"), "login")
    assert [o.name for o in b.others] == ["alice"], b
    gate.wait_push(1, "joined")
    m = expect(gate.request(1, move=c.MoveRequest(x=3.5, y=-4.0)), "move")
    assert (m.x, m.y) == (3.5, -4.0), m
    moved = gate.wait_push(2, "moved").moved
    assert moved.player_id == a.self.player_id and moved.x == 3.5, moved
    expect(gate.request(2, chat=c.ChatRequest(text="h\u00e9llo \u4f60\u597d")), "chat")
    line = gate.wait_push(1, "chat_line").chat_line
    assert line.name == "bob" and line.text == "h\u00e9llo \u4f60\u597d", line
    e = expect(gate.request(1, earn=c.EarnRequest(amount=7)), "earn")
    assert e.gold == 7, e
    p = expect(gate.request(1, ping=c.PingRequest(client_time=99)), "pong")
    assert p.client_time == 99 and p.server_time_ms > 0, p
    expect(gate.request(1, logout=c.LogoutRequest()), "logout")
    assert db.saved_ids() == [a.self.player_id], db.saved_ids()
    assert db.saves[0].x == 3.5 and db.saves[0].y == -4.0
    gate.wait_push(2, "left")
    expect_error(gate.request(1, move=c.MoveRequest(x=1, y=1)), "NOT_LOGGED_IN")
    # The session may log in again, and gets the saved spot back.
    a2 = expect(gate.login(1, "alice"), "login")
    assert not a2.created and a2.self.x == 3.5 and a2.self.gold == 7, a2


def case_validation(srv, db):
    """Every field is checked; errors carry the proto's codes."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    for body in (dict(move=c.MoveRequest(x=1, y=1)), dict(chat=c.ChatRequest(text="x")),
                 dict(earn=c.EarnRequest(amount=1)), dict(logout=c.LogoutRequest())):
        expect_error(gate.request(1, **body), "NOT_LOGGED_IN")
    expect(gate.request(1, ping=c.PingRequest(client_time=1)), "pong")
    for name in ("", "a" * 33, "sp ace", "semi;colon", "caf\u00e9"):
        expect_error(gate.login(1, name), "INVALID_NAME")
    expect_error(gate.login(1, "carol", password=""), "BAD_REQUEST")
    expect_error(gate.login(1, "carol", password="p" * 129), "BAD_REQUEST")
    # A NUL in a string is refused whole ("carol\0x" is not carol), and a
    # password is every one of its bytes (this one makes "nul"'s account).
    expect_error(gate.login(1, "carol\0x"), "BAD_REQUEST")
    expect(gate.login(3, "nul", password=b"a\0b"), "login")
    # seq 0 and an empty body.
    gate.conn.send(gate.i.GateToGame(request=gate.i.ClientRequest(
        session=1, message=c.ClientMessage(seq=0, ping=c.PingRequest()))))
    expect_error(gate.wait_reply(1, 0), "BAD_REQUEST")
    seq = gate.send_request(1)
    expect_error(gate.wait_reply(1, seq), "BAD_REQUEST")

    expect(gate.login(1, "carol"), "login")
    expect_error(gate.login(1, "carol"), "ALREADY_LOGGED_IN")
    expect_error(gate.login(2, "carol", password="other"), "WRONG_PASSWORD")
    for x, y in ((float("nan"), 0), (0, float("inf")), (float("-inf"), 0),
                 (1000.5, 0), (0, -1001), (1e30, 1e30)):
        expect_error(gate.request(1, move=c.MoveRequest(x=x, y=y)), "OUT_OF_BOUNDS")
    expect(gate.request(1, move=c.MoveRequest(x=1000, y=-1000)), "move")  # the edge
    for text in ("", "x" * 257, "line\nbreak", "\x1b[2J"):
        expect_error(gate.request(1, chat=c.ChatRequest(text=text)), "INVALID_CHAT")
    expect(gate.request(1, chat=c.ChatRequest(text="\u20ac" * 85)), "chat")  # 255 bytes
    expect_error(gate.request(1, chat=c.ChatRequest(text="a\0b")), "BAD_REQUEST")
    # Invalid UTF-8 cannot be built by the Python library: patch the bytes.
    for bad in (b"\xc3\x28", b"\xed\xa0\x80", b"\xc0\xaf", b"\xff\xfe"):
        gate.seq += 1
        marker = b"Z" * len(bad)
        msg = gate.i.GateToGame(request=gate.i.ClientRequest(
            session=1, message=c.ClientMessage(seq=gate.seq,
                                               chat=c.ChatRequest(text=marker.decode()))))
        raw = msg.SerializeToString().replace(marker, bad)
        gate.conn.send_body(raw)
        expect_error(gate.wait_reply(1, gate.seq), "INVALID_CHAT")
    for amount in (0, 1001, 2 ** 32 - 1):
        expect_error(gate.request(1, earn=c.EarnRequest(amount=amount)), "BAD_REQUEST")
    # The link survived all of that.
    expect(gate.request(1, ping=c.PingRequest(client_time=2)), "pong")


def case_takeover(srv, db):
    """A second login of an online account kicks the first session; the
    new one gets the in-memory state; never two live copies."""
    c = rt.client_pb2
    gate1, gate2 = FakeGate(srv.port), FakeGate(srv.port)
    watcher = expect(gate1.login(9, "watcher"), "login")
    first = expect(gate1.login(1, "dana"), "login")
    gate1.wait_push(9, "joined")
    expect(gate1.request(1, move=c.MoveRequest(x=12, y=13)), "move")
    gate1.wait_push(9, "moved")
    # Same client session id on another gateway link: a different client.
    second = expect(gate2.login(1, "dana"), "login")
    kick = gate1.wait_kick(1)
    assert kick.kicked.code == c.ErrorCode.Value("LOGGED_IN_ELSEWHERE"), kick
    assert second.self.player_id == first.self.player_id
    assert (second.self.x, second.self.y) == (12, 13), second.self
    assert [o.name for o in second.others] == ["watcher"], second.others
    expect_error(gate1.request(1, move=c.MoveRequest(x=1, y=1)), "NOT_LOGGED_IN")
    expect(gate2.request(1, move=c.MoveRequest(x=14, y=15)), "move")
    moved = gate1.wait_push(9, "moved").moved
    assert moved.player_id == first.self.player_id and moved.x == 14
    # The kicked session's ClientGone must not log the new owner out.
    gate1.gone(1)
    expect(gate2.request(1, ping=c.PingRequest()), "pong")
    expect(gate2.request(1, move=c.MoveRequest(x=16, y=17)), "move")
    assert watcher.self.player_id != first.self.player_id


def case_release_after_login(srv, db):
    """A leaving player's last save holds its lease's release back while a
    login of the account is out: that login's take (the same owner's, so
    the same epoch) could land first, and the release then free the lease
    under the player it brings back, for another shard to take. When the
    login leaves the player out after all, its end releases the lease."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    pid = expect(gate.login(1, "nell"), "login").self.player_id
    expect(gate.request(1, move=c.MoveRequest(x=5, y=6)), "move")
    db.hold_logins = True
    gate.send_request(2, login=c.LoginRequest(name="nell", password=b"pw"))
    db.wait_for(lambda: len(db.held_logins) == 1, "the second DbLogin")
    gate.gone(1)  # no resume grace: it leaves now, and its last save goes
    db.wait_for(lambda: any(s.player_id == pid for s in db.saves), "the last save")
    last = [s for s in db.saves if s.player_id == pid]
    assert [(s.x, s.y, s.release) for s in last] == [(5, 6, False)], last
    gate.gone(2)  # the login's session goes too: nobody takes the player back
    db.answer_held_logins()
    db.wait_for(lambda: any(s.player_id == pid and s.release for s in db.saves),
                "the release once the login ended")
    assert db.accounts["nell"]["lease_owner"] == 0, db.accounts["nell"]


def case_earn_timeout(srv, db):
    """An add_gold that dbproxy does not answer ends with TIMEOUT and is
    never acked, even when the reply comes late."""
    c, i = rt.client_pb2, rt.internal_pb2
    gate = FakeGate(srv.port)
    expect(gate.login(1, "erin"), "login")
    db.answer_gold = False
    seq = gate.send_request(1, earn=c.EarnRequest(amount=5))
    expect_error(gate.wait_reply(1, seq), "TIMEOUT")
    db.wait_for(lambda: db.swallowed, "the swallowed add_gold")
    conn, req = db.swallowed[0]
    conn.send(i.DbToGame(request_id=req.request_id,
                         add_gold=i.DbAddGoldReply(gold=5)))
    # The late reply is dropped: the next request's answer comes first and
    # nothing else is addressed to seq.
    expect(gate.request(1, ping=c.PingRequest()), "pong")
    assert not [m for m in gate.conn.inbox if m.WhichOneof("body") == "to_client"
                and m.to_client.message.seq == seq], gate.conn.inbox


def case_earn_first_duplicate(srv, db):
    """An earn is keyed epoch << 32 | seq with the epoch dbproxy issued,
    and a duplicate answer to its first send is an error, never an
    EarnReply (issue 11 item 1: with wall-clock keys a gamesrv restarted
    with its clock behind was told "success" while nothing was added)."""
    c, i = rt.client_pb2, rt.internal_pb2
    gate = FakeGate(srv.port)
    expect(gate.login(1, "flo"), "login")
    db.answer_gold = False
    seq = gate.send_request(1, earn=c.EarnRequest(amount=5))
    db.wait_for(lambda: db.swallowed, "the add_gold")
    conn, req = db.swallowed[0]
    assert req.add_gold.op_id == (db.epochs << 32 | 1), (req.add_gold.op_id, db.epochs)
    conn.send(i.DbToGame(request_id=req.request_id,
                         add_gold=i.DbAddGoldReply(gold=0, duplicate=True)))
    expect_error(gate.wait_reply(1, seq), "INTERNAL")


def case_db_down(srv, db):
    """An earn in flight when the dbproxy link drops is held, not failed:
    once gamesrv has redialed it is sent again with the same op_id, and a
    dbproxy that had applied it (the reply was what got lost) answers it
    as a duplicate, so it is paid once. Calls made while the link is down
    fail at once with SERVICE_UNAVAILABLE; the link comes back by itself."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    expect(gate.login(1, "fred"), "login")
    db.answer_gold = False
    seq = gate.send_request(1, earn=c.EarnRequest(amount=5))
    db.wait_for(lambda: db.swallowed, "the add_gold")
    first = db.swallowed[0][1]
    assert first.add_gold.op_id != 0, first
    db.apply_gold(first.add_gold)   # committed; its reply dies with the link
    db.refuse = True
    db.drop_connections()
    # gamesrv redials only after it has queued the link's end, so from here
    # on the game thread knows the link is down.
    db.wait_for(lambda: db.refused >= 1, "a redial while dbproxy is down")
    expect_error(gate.request(1, earn=c.EarnRequest(amount=7)), "SERVICE_UNAVAILABLE")
    expect_error(gate.login(2, "gina"), "SERVICE_UNAVAILABLE")
    db.answer_gold = True
    db.refuse = False
    e = expect(gate.wait_reply(1, seq), "earn")
    assert e.gold == 5, e           # paid once
    resent = [r for r in db.gold_requests if r.request_id != first.request_id]
    assert len(resent) == 1 and resent[0].add_gold == first.add_gold, db.gold_requests
    rt.eventually(lambda: rt.body_of(gate.login(2, "gina")) == "login",
                  timeout=WAIT, what="login after the dbproxy link is back")
    e = expect(gate.request(1, earn=c.EarnRequest(amount=3)), "earn")
    assert e.gold == 8, e
    assert db.gold_requests[-1].add_gold.op_id > first.add_gold.op_id, db.gold_requests


def case_db_silent(srv, db):
    """A dbproxy that stops answering (heartbeats included) is noticed
    within the dead time: its link is closed, and an earn it never applied
    is held and applied once the link is back."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    expect(gate.login(1, "hank"), "login")
    wait_db_link(db)
    db.silent = True
    for conn in db.conns:
        conn.silent = True
    seq = gate.send_request(1, earn=c.EarnRequest(amount=5))
    db.wait_for(lambda: db.gold_requests, "the add_gold (ignored)")
    # New connections answer again; the silent one is still cut off by the
    # dead-link rule, and the earn is resent on the next link.
    db.silent = False
    e = expect(gate.wait_reply(1, seq), "earn")
    assert e.gold == 5, e
    assert len(db.gold_requests) == 2, db.gold_requests
    assert db.gold_requests[0].add_gold == db.gold_requests[1].add_gold, db.gold_requests


def case_gate_drop(srv, db):
    """A gateway link that closes, or a ClientGone, saves the players once
    their grace period for a resume is over."""
    gate = FakeGate(srv.port)
    ids = [expect(gate.login(s, n), "login").self.player_id
           for s, n in ((1, "ivan"), (2, "jill"), (3, "kate"))]
    gate.gone(3)
    db.wait_for(lambda: len(db.saves) >= 1, "save after ClientGone")
    assert db.saved_ids() == [ids[2]], db.saved_ids()
    gate.conn.close()
    db.wait_for(lambda: len(db.saves) >= 3, "saves after the link closed")
    assert db.saved_ids() == sorted(ids), db.saved_ids()
    # The accounts are free again: a new link may log them in.
    gate2 = FakeGate(srv.port)
    a = expect(gate2.login(1, "ivan"), "login")
    assert not a.others or all(o.name != "jill" for o in a.others), a


def case_gate_silent(srv, db):
    """A gateway that stops sending (no heartbeats) is disconnected within
    the dead time, and its players are saved (after the resume grace)."""
    gate = FakeGate(srv.port)
    pid = expect(gate.login(1, "liam"), "login").self.player_id
    gate.conn.silent = True
    gate.conn.wait_closed()
    db.wait_for(lambda: db.saves, "save of the silent gateway's player")
    assert db.saved_ids() == [pid]


def case_bad_frames(srv, db):
    """Garbage, a request before Hello, a second Hello: the link is closed,
    gamesrv lives on."""
    i, c = rt.internal_pb2, rt.client_pb2
    g = FakeGate(srv.port, hello=False)
    g.conn.send_raw(b"\x05\xff\xff\xff\xff\xff")  # not a GateToGame
    g.conn.wait_closed()
    g = FakeGate(srv.port, hello=False)
    g.conn.send(i.GateToGame(request=i.ClientRequest(
        session=1, message=c.ClientMessage(seq=1, ping=c.PingRequest()))))
    g.conn.wait_closed()
    g = FakeGate(srv.port, hello=False)
    g.conn.send_raw(b"\xff\xff\xff\xff\xff\xff")  # a length prefix too long
    g.conn.wait_closed()
    g = FakeGate(srv.port)
    g.conn.send(i.GateToGame(hello=i.Hello(role="gateway")))
    g.conn.wait_closed()
    g = FakeGate(srv.port)
    expect(g.request(1, ping=c.PingRequest()), "pong")
    assert srv.alive()


def case_drain(srv, db):
    """SIGTERM: every player is kicked (SHUTTING_DOWN) and saved, then
    gamesrv exits 0."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    ids = [expect(gate.login(s, n), "login").self.player_id
           for s, n in ((1, "mia"), (2, "noah"))]
    expect(gate.request(2, move=c.MoveRequest(x=-7, y=8)), "move")
    code = srv.stop()
    assert code == 0, "gamesrv exit code %d" % code
    for s in (1, 2):
        k = gate.wait_kick(s)
        assert k.kicked.code == c.ErrorCode.Value("SHUTTING_DOWN"), k
    assert db.saved_ids() == sorted(ids), db.saved_ids()
    assert any(s.x == -7 and s.y == 8 for s in db.saves), db.saves
    assert "NOT saved" not in srv.text()


def case_save_busy(srv, db):
    """A save refused with DB_BUSY is sent again; the logout is answered
    once a save is durable."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    pid = expect(gate.login(1, "olga"), "login").self.player_id
    expect(gate.request(1, move=c.MoveRequest(x=5, y=6)), "move")
    db.busy_saves = 3
    expect(gate.request(1, logout=c.LogoutRequest()), "logout")
    assert db.refused_saves == 3, db.refused_saves
    assert db.saved_ids() == [pid] and (db.saves[0].x, db.saves[0].y) == (5, 6)


def case_autosave(srv, db):
    """A player who moves is saved without logging out (autosave), and one
    who does not move is not saved again."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    pid = expect(gate.login(1, "pete"), "login").self.player_id
    expect(gate.login(2, "quin"), "login")
    expect(gate.request(1, move=c.MoveRequest(x=-3, y=4)), "move")
    db.wait_for(lambda: any(s.x == -3 and s.y == 4 for s in db.saves), "autosave")
    assert set(db.saved_ids()) == {pid}, db.saved_ids()


def case_autosave_spread(srv, db):
    """Autosave spreads its saves over the interval (issue 11, item 15):
    200 players move at once; with --autosave-ms 2000 their saves must
    arrive over about 2 s, not all in one tick (which, past 4096 players,
    overflowed dbproxy's write queue and failed the earns behind them)."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    players = 200
    for s in range(1, players + 1):
        seq = gate.send_request(s, login=gate.c.LoginRequest(name="m%d" % s, password=b"pw"))
        expect(gate.wait_reply(s, seq), "login")
    seqs = [(s, gate.send_request(s, move=c.MoveRequest(x=5, y=s % 100)))
            for s in range(1, players + 1)]
    for s, seq in seqs:
        expect(gate.wait_reply(s, seq), "move")
    db.wait_for(lambda: len({(v.player_id) for v in db.saves}) >= players,
                "every moved player autosaved", timeout=20)
    with db.cond:
        times = list(db.save_times)
    window = 0.25
    burst = max(sum(1 for t in times if start <= t < start + window) for start in times)
    log("autosave: %d saves over %.2f s, at most %d in %.2f s"
        % (len(times), times[-1] - times[0], burst, window))
    # Evenly spread: about 25 per 0.25 s; all in one tick would be 200.
    assert burst <= 60, "autosave burst: %d saves within %.2f s" % (burst, window)


def case_crowded_zone(srv, db):
    """A login into a crowded zone lists at most 256 others in LoginReply;
    the rest arrive as PlayerJoined pushes right after it."""
    gate = FakeGate(srv.port)
    crowd = 300
    names = set()
    for s in range(1, crowd + 1):
        seq = gate.send_request(s, login=gate.c.LoginRequest(name="p%d" % s, password=b"pw"))
        expect(gate.wait_reply(s, seq), "login")
        names.add("p%d" % s)
    with gate.conn.cond:  # forget the pushes so far
        gate.conn.inbox.clear()
    me = expect(gate.login(9999, "late"), "login")
    assert len(me.others) == 256, len(me.others)
    seen = {o.name for o in me.others}
    while len(seen) < crowd:
        seen.add(gate.wait_push(9999, "joined").joined.player.name)
    assert seen == names, names - seen


def case_lease_batches(srv, db):
    """More players than one DbRenewLeases names (8192): the renewal goes
    out in batches, every lease is renewed, nobody is lost."""
    count = 8200
    db.spread = True  # apart, so that nobody sees anybody (view radius 1)
    gate = FakeGate(srv.port)
    for s in range(1, count + 1):
        gate.send_request(s, login=gate.c.LoginRequest(name="b%d" % s, password=b"pw"))
    logged_in = 0
    while logged_in < count:
        m = gate.conn.next()
        assert m is not None, "gamesrv closed the link"
        if m.WhichOneof("body") == "to_client" and m.to_client.message.seq != 0:
            expect(m.to_client.message, "login")
            logged_in += 1
    start = len(db.renews)

    def batched():
        sizes = [len(r.player_ids) for r in db.renews[start:]]
        return any(a == 8192 and b == count - 8192 for a, b in zip(sizes, sizes[1:]))
    db.wait_for(batched, "a renewal of %d players in two batches" % count)
    assert "lease lost" not in srv.text() and "self-fence" not in srv.text()


def random_request(rng, c):
    """A random ClientMessage body, valid or not, as keyword arguments."""
    kind = rng.choice(["login", "move", "chat", "earn", "ping", "logout", "none"])
    junk = "".join(rng.choice("ab_-9 \u00e9\n\x00Z") for _ in range(rng.randint(0, 40)))
    number = rng.choice([0.0, -0.0, 1.5, -999.9, 1000.0, 1e9, float("nan"),
                         float("inf"), float("-inf"), rng.uniform(-2000, 2000)])
    if kind == "login":
        name = rng.choice(["u%d" % rng.randint(1, 8), junk, "x" * rng.randint(30, 40)])
        return dict(login=c.LoginRequest(name=name, password=rng.choice([b"pw", b"", junk.encode()])))
    if kind == "move":
        return dict(move=c.MoveRequest(x=number, y=rng.uniform(-1500, 1500)))
    if kind == "chat":
        return dict(chat=c.ChatRequest(text=rng.choice([junk, "ok", "x" * rng.randint(250, 300)])))
    if kind == "earn":
        return dict(earn=c.EarnRequest(amount=rng.choice([0, 1, 1000, 1001, 2 ** 32 - 1])))
    if kind == "ping":
        return dict(ping=c.PingRequest(client_time=rng.randint(0, 2 ** 64 - 1)))
    if kind == "logout":
        return dict(logout=c.LogoutRequest())
    return {}


def case_random_requests(srv, db):
    """Thousands of random requests, valid and not, pipelined over many
    client sessions: each gets exactly one reply, and gamesrv stays up. A
    session that goes (ClientGone) is replaced by a new id, as a gateway
    does; what it had in flight may go unanswered (nobody is there)."""
    import random
    rng = random.Random(20261123)
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    live = list(range(1, 31))
    next_session = 31
    gone = set()
    sent = {}
    for _ in range(3000):
        i = rng.randrange(len(live))
        if rng.random() < 0.02:
            gate.gone(live[i])
            gone.add(live[i])
            live[i], next_session = next_session, next_session + 1
            continue
        sent[gate.send_request(live[i], **random_request(rng, c))] = live[i]
    for seq, session in sent.items():
        if session not in gone:
            gate.wait_reply(session, seq)
    with gate.conn.cond:
        dup = [m for m in gate.conn.inbox if m.WhichOneof("body") == "to_client"
               and m.to_client.message.seq in sent
               and sent[m.to_client.message.seq] not in gone]
    assert not dup, "a request answered twice: %s" % dup[:3]
    expect(gate.request(live[0], ping=c.PingRequest(client_time=5)), "pong")


def case_overload(srv, db):
    """With room for one queued request, a burst is partly refused by the
    network loop itself (SERVICE_UNAVAILABLE "overloaded"); every request
    still gets exactly one answer. How many are refused depends on timing,
    so only the answers are checked."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    seqs = [gate.send_request(1 + n % 10, ping=c.PingRequest(client_time=n))
            for n in range(2000)]
    refused = 0
    for n, seq in enumerate(seqs):
        m = gate.wait_reply(1 + n % 10, seq)
        if rt.body_of(m) == "error":
            expect_error(m, "SERVICE_UNAVAILABLE")
            refused += 1
        else:
            assert expect(m, "pong").client_time == n
    log("%d of %d requests refused as overloaded" % (refused, len(seqs)))
    expect(gate.login(1, "rosa"), "login")


# ---- interest management (--interest view, the default) ---------------------

class ViewOf:
    """What one client session sees: its LoginReply's others, then each
    WorldUpdate applied in the documented order (left, entered, moved,
    chat), checking the rules a client may rely on as it goes."""

    def __init__(self, gate, session, login):
        self.gate, self.session = gate, session
        self.seen = {o.player_id: (o.x, o.y, o.zone) for o in login.others}
        self.chat = []
        self.events = []  # (kind, player_id, x, y) in arrival order
        self.updates = []

    def step(self, what):
        u = self.gate.wait_push(self.session, "update", what).update
        self.updates.append(u)
        moved = [m.player_id for m in u.moved]
        assert len(moved) == len(set(moved)), "a mover twice in one update: %s" % u
        for pid in u.left:
            assert pid in self.seen, "left %d, never seen" % pid
            del self.seen[pid]
            self.events.append(("left", pid, None, None))
        for st in u.entered:
            assert st.player_id not in self.seen, "entered twice: %s" % st
            self.seen[st.player_id] = (st.x, st.y, st.zone)
            self.events.append(("entered", st.player_id, st.x, st.y))
        for m in u.moved:
            assert m.player_id in self.seen and m.player_id not in [
                e.player_id for e in u.entered], "moved, unseen: %s" % m
            self.seen[m.player_id] = (m.x, m.y, self.seen[m.player_id][2])
            self.events.append(("moved", m.player_id, m.x, m.y))
        self.chat.extend((line.name, line.text) for line in u.chat)
        return u

    def until(self, cond, what):
        while not cond():
            self.step(what)


def move(gate, session, x, y, zone=0):
    return expect(gate.request(session, move=gate.c.MoveRequest(x=x, y=y, zone=zone)), "move")


def case_view_cells_zones(srv, db):
    """Who sees whom after moves across grid cells (view radius 100 =
    cell size, hysteresis 10) and zones."""
    gate = FakeGate(srv.port)
    o = expect(gate.login(1, "obs"), "login")
    assert sorted(z.id for z in o.zones) == [1, 2], o.zones
    view = ViewOf(gate, 1, o)
    a = expect(gate.login(2, "ann"), "login")
    aid = a.self.player_id
    assert [x.name for x in a.others] == ["obs"], a.others  # both at (0, 0)
    view.until(lambda: aid in view.seen, "ann entered")
    move(gate, 2, 99, 0)             # cell (0, 0), inside
    view.until(lambda: view.seen[aid][:2] == (99, 0), "ann at 99")
    move(gate, 2, 108, 0)            # cell (1, 0), in the hysteresis band
    view.until(lambda: view.seen[aid][:2] == (108, 0), "ann at 108")
    move(gate, 2, 150, 0)            # beyond 110: leaves
    view.until(lambda: aid not in view.seen, "ann left")
    move(gate, 2, 105, 0)            # band again, but not within 100: unseen
    move(gate, 2, -95, -5)           # cell (-1, -1): back in view
    view.until(lambda: view.seen.get(aid, (0, 0))[:2] == (-95, -5), "ann back")
    assert ("entered", aid, 105, 0) not in view.events, view.events
    # Zones: ann travels to zone 2 and disappears; obs follows and sees her.
    m = move(gate, 2, 0, 0, zone=2)
    assert m.zone == 2, m
    view.until(lambda: aid not in view.seen, "ann left for zone 2")
    expect_error(gate.request(1, move=gate.c.MoveRequest(x=0, y=0, zone=7)), "OUT_OF_BOUNDS")
    expect_error(gate.request(1, move=gate.c.MoveRequest(x=900, y=0, zone=2)),
                 "OUT_OF_BOUNDS")
    move(gate, 1, 3, 4, zone=2)
    view.until(lambda: view.seen.get(aid) == (0, 0, 2), "ann in zone 2")
    # A player at the same spot of zone 1 is never seen from zone 2.
    b = expect(gate.login(3, "ben"), "login")
    assert b.zone.id == 1 and not b.others, b
    move(gate, 3, 3, 4)
    move(gate, 2, 1, 1)
    view.until(lambda: view.seen[aid][:2] == (1, 1), "ann at 1,1")
    assert b.self.player_id not in view.seen
    # Logging out is leaving the view.
    expect(gate.request(2, logout=gate.c.LogoutRequest()), "logout")
    view.until(lambda: aid not in view.seen, "ann logged out")
    # A new login sees its neighbours in LoginReply.
    a2 = expect(gate.login(2, "ann"), "login")
    assert a2.self.zone == 2 and [x.name for x in a2.others] == ["obs"], a2
    # A second login of obs takes the player over: its LoginReply carries
    # the view afresh, and updates go on from there to the new session.
    o2 = expect(gate.login(4, "obs"), "login")
    gate.wait_kick(1)
    assert [x.name for x in o2.others] == ["ann"], o2.others
    view2 = ViewOf(gate, 4, o2)
    move(gate, 2, 2, 2)
    view2.until(lambda: view2.seen[aid][:2] == (2, 2), "ann seen by the new session")


def case_view_bundle(srv, db):
    """One update per tick (a 1 s tick here) with a mover's newest position
    once, however often it moved; chat lines ride in the same update, and
    a burst of chat is spread over updates in order."""
    gate = FakeGate(srv.port)
    view = ViewOf(gate, 1, expect(gate.login(1, "obs"), "login"))
    aid = expect(gate.login(2, "ann"), "login").self.player_id
    view.until(lambda: aid in view.seen, "ann entered")
    seqs = [gate.send_request(2, move=gate.c.MoveRequest(x=i, y=1)) for i in range(10)]
    seqs.append(gate.send_request(2, chat=gate.c.ChatRequest(text="one")))
    seqs.append(gate.send_request(2, chat=gate.c.ChatRequest(text="two")))
    for seq in seqs:
        assert rt.body_of(gate.wait_reply(2, seq)) in ("move", "chat")
    view.until(lambda: view.seen[aid][:2] == (9, 1) and len(view.chat) == 2, "newest")
    sent = [e for e in view.events if e[0] == "moved" and e[1] == aid]
    assert len(sent) < 10, "ten moves in about one tick sent %d times" % len(sent)
    assert view.chat == [("ann", "one"), ("ann", "two")], view.chat
    # More chat than one update carries (16 KiB): the rest follows in
    # order in the next updates, none lost, every update small.
    lines = ["%03d " % i + "x" * 250 for i in range(100)]
    seqs = [gate.send_request(2, chat=gate.c.ChatRequest(text=t)) for t in lines]
    for seq in seqs:
        expect(gate.wait_reply(2, seq), "chat")
    view.until(lambda: len(view.chat) == 2 + len(lines), "every chat line")
    assert [t for _, t in view.chat[2:]] == lines
    for u in view.updates:
        assert u.ByteSize() < 20000, "an update of %d bytes" % u.ByteSize()


def case_view_slow_client(srv, db):
    """A client whose budget (64 bytes a tick) cannot take all that
    changes: positions come late but coalesced, each at most once per
    update and the newest last; every reply and chat line arrives."""
    gate = FakeGate(srv.port)
    view = ViewOf(gate, 1, expect(gate.login(1, "obs"), "login"))
    movers = {}
    for s in range(2, 14):
        movers[s] = expect(gate.login(s, "m%d" % s), "login").self.player_id
    view.until(lambda: all(pid in view.seen for pid in movers.values()), "movers entered")
    seqs = []
    for step in range(5):
        for s in movers:
            seqs.append((s, gate.send_request(s, move=gate.c.MoveRequest(
                x=s + step * 0.25, y=-s))))
    for s in movers:
        seqs.append((s, gate.send_request(s, chat=gate.c.ChatRequest(text="hi %d" % s))))
    for s, seq in seqs:
        assert rt.body_of(gate.wait_reply(s, seq)) in ("move", "chat")
    final = {pid: (s + 1.0, -s) for s, pid in movers.items()}
    view.until(lambda: all(view.seen.get(pid, (None, None))[:2] == xy
                           for pid, xy in final.items())
               and len(view.chat) == len(movers), "every mover's newest position")
    for u in view.updates:
        assert len(u.entered) + len(u.moved) <= 4, "over budget: %s" % u
    moved = [e for e in view.events if e[0] == "moved"]
    log("%d updates, %d moved entries for %d moves"
        % (len(view.updates), len(moved), 5 * len(movers)))
    assert len(moved) < 5 * len(movers), "not coalesced: %d" % len(moved)
    assert sorted(view.chat) == sorted(("m%d" % s, "hi %d" % s) for s in movers)


# The cases written for the old zone-wide pushes run gamesrv in that mode.
BROADCAST = ["--interest", "broadcast"]

CASES = {
    "play": (case_play, BROADCAST),
    "validation": (case_validation, []),
    "takeover": (case_takeover, BROADCAST),
    "release_after_login": (case_release_after_login, ["--resume-grace-ms", "0"]),
    "earn_timeout": (case_earn_timeout, ["--call-deadline-ms", "300"]),
    "earn_first_duplicate": (case_earn_first_duplicate, []),
    "db_down": (case_db_down, []),
    "db_silent": (case_db_silent, ["--call-deadline-ms", "60000"]),
    # The players of a link that goes wait for a resume first (grace).
    "gate_drop": (case_gate_drop, ["--resume-grace-ms", "300"]),
    "gate_silent": (case_gate_silent, ["--resume-grace-ms", "300"]),
    "bad_frames": (case_bad_frames, []),
    "drain": (case_drain, []),
    "save_busy": (case_save_busy, []),
    "autosave": (case_autosave, ["--autosave-ms", "100"]),
    "autosave_spread": (case_autosave_spread, ["--autosave-ms", "2000"]),
    "crowded_zone": (case_crowded_zone, BROADCAST),
    "random_requests": (case_random_requests, []),
    "lease_batches": (case_lease_batches, ["--lease-ms", "5000", "--drain-ms", "60000",
                                           "--view-radius", "1", "--view-hysteresis", "0"]),
    "overload": (case_overload, ["--queue-max", "1"]),
    "view_cells_zones": (case_view_cells_zones, ["--zones", "2:-500:-500:500:500"]),
    "view_bundle": (case_view_bundle, ["--tick-ms", "1000"]),
    "view_slow_client": (case_view_slow_client,
                         ["--client-budget-bytes", "64", "--tick-ms", "100"]),
}


def run(case_fn, extra):
    """A case as a test: gamesrv between a FakeDb and the case's FakeGates,
    ending with a clean drain."""
    return run_with_dbs(case_fn, extra, 1)


def run_with_dbs(case_fn, extra, count):
    """gamesrv between count FakeDbs sharing one database (more than one:
    --dbproxies names them all, and the case gets the list) and the case's
    FakeGates, ending with a clean drain."""
    def test(build_dir):
        dbs = [FakeDb()]
        dbs += [FakeDb(share=dbs[0]) for _ in range(count - 1)]
        flags = dict(peer_port=dbs[0].port) if count == 1 else {}
        addrs = [] if count == 1 else [
            "--dbproxies", ",".join("127.0.0.1:%d" % db.port for db in dbs)]
        try:
            srv = rt.start("gamesrv", build_dir, rt.temp_dir("gamesrv-test-"), *extra,
                           *addrs, insecure=True, **flags)
            for db in dbs:
                wait_db_link(db)
            # No login before gamesrv knows its lease owner id (its op_id
            # epoch): a case's first login could otherwise beat it.
            rt.eventually(lambda: "dbproxy links: lease owner" in srv.text(),
                          what="gamesrv's lease owner id")
            case_fn(srv, dbs[0] if count == 1 else dbs)
            if srv.alive():
                code = srv.stop()
                assert code == 0, "gamesrv exit code %d after SIGTERM" % code
        finally:
            for db in dbs:
                db.stop()
    return test


# ---- two dbproxies on one database (--dbproxies) ------------------------------

def gold_dbs(dbs, player_id):
    """The indexes of the dbs that were sent add_gold for player_id."""
    return {n for n, db in enumerate(dbs)
            if any(r.add_gold.player_id == player_id for r in db.gold_requests)}


def case_two_db_spread(srv, dbs):
    """Each player's writes go to one dbproxy, the same every time; the
    players spread over both; one epoch numbers them all."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    ids = []
    for n in range(1, 13):
        ids.append(getattr(expect(gate.login(n, "spread%d" % n), "login"), "self").player_id)
        for amount in (1, 2):
            expect(gate.request(n, earn=c.EarnRequest(amount=amount)), "earn")
    homes = [gold_dbs(dbs, pid) for pid in ids]
    assert all(len(h) == 1 for h in homes), homes
    assert {next(iter(h)) for h in homes} == {0, 1}, homes
    ops = [r.add_gold.op_id for db in dbs for r in db.gold_requests]
    assert len({op >> 32 for op in ops}) == 1 and len(set(ops)) == len(ops), ops
    assert sum(db.epochs for db in dbs) == 1, [db.epochs for db in dbs]


def case_two_db_move(srv, dbs):
    """A player's dbproxy drops with its earn in flight (unapplied, still
    queued there): the earn moves to the other dbproxy with its op_id and
    is paid once; new earns go there too, and logins work on, instead of
    SERVICE_UNAVAILABLE. When the first dbproxy applies the stuck write
    late, after newer ones, it is a duplicate (one epoch for every link:
    with an epoch per link it would be paid twice). Once the first is back,
    the player's writes go home again; the gold is exactly the
    acknowledged earns."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    pid = getattr(expect(gate.login(1, "mover"), "login"), "self").player_id
    acked = expect(gate.request(1, earn=c.EarnRequest(amount=1)), "earn").gold
    (home,) = gold_dbs(dbs, pid)
    a, b = dbs[home], dbs[1 - home]
    a.answer_gold = False
    seq = gate.send_request(1, earn=c.EarnRequest(amount=10))
    a.wait_for(lambda: a.swallowed, "the add_gold")
    stuck = a.swallowed[0][1].add_gold
    a.refuse = True
    a.drop_connections()
    e = expect(gate.wait_reply(1, seq), "earn")
    assert e.gold == acked + 10, e
    moved = [r.add_gold for r in b.gold_requests]
    assert moved == [stuck], (moved, stuck)
    e = expect(gate.request(1, earn=c.EarnRequest(amount=100)), "earn")
    assert e.gold == acked + 110, e
    expect(gate.login(2, "while_down"), "login")
    late = a.apply_gold(stuck)      # the stuck write, applied at last
    assert late.duplicate and late.gold == acked + 110, late
    total = acked + 110
    a.answer_gold = True
    a.refuse = False
    wait_db_link(a, 2)

    def earn_lands_home():
        nonlocal total
        count = len(a.gold_requests)
        e = expect(gate.request(1, earn=c.EarnRequest(amount=1000)), "earn")
        total += 1000
        assert e.gold == total, (e, total)
        return len(a.gold_requests) > count
    rt.eventually(earn_lands_home, what="the player's earns going home")
    assert a.accounts["mover"]["gold"] == total, (a.accounts["mover"], total)


def case_two_db_both_down(srv, dbs):
    """With every dbproxy down an earn in flight is held and a new call
    fails at once; the first dbproxy back takes the held earn."""
    c = rt.client_pb2
    gate = FakeGate(srv.port)
    expect(gate.login(1, "both"), "login")
    for db in dbs:
        db.answer_gold = False
    seq = gate.send_request(1, earn=c.EarnRequest(amount=5))
    rt.eventually(lambda: any(db.swallowed for db in dbs), what="the add_gold")
    for db in dbs:
        db.refuse = True
        db.drop_connections()
    for db in dbs:
        db.wait_for(lambda db=db: db.refused >= 1, "a redial while dbproxy is down")
    expect_error(gate.request(1, earn=c.EarnRequest(amount=7)), "SERVICE_UNAVAILABLE")
    dbs[1].answer_gold = True
    dbs[1].refuse = False
    e = expect(gate.wait_reply(1, seq), "earn")
    assert e.gold == 5, e
    dbs[0].refuse = False


TWO_DB_CASES = {
    "two_db_spread": case_two_db_spread,
    "two_db_move": case_two_db_move,
    "two_db_both_down": case_two_db_both_down,
}


if __name__ == "__main__":
    all_cases = {name: run(fn, extra) for name, (fn, extra) in CASES.items()}
    all_cases.update({name: run_with_dbs(fn, [], 2) for name, fn in TWO_DB_CASES.items()})
    rt.main(cases=all_cases)
