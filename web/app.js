// The ringgate world page: one WebSocket to the gateway (ws://<host>/ws),
// each binary message one ClientMessage / ServerMessage of
// proto/client.proto (docs/protocol.md, "WebSocket"), encoded and decoded
// by protobufjs from that very file: no protocol code is written here.
//
// State kept: the players this client sees (by id), its own player, the
// zone; each push updates it and the canvas is redrawn every frame. The
// page's state is window.ringgate (read by tests/test_browser.py).
//
// Resume (docs/protocol.md, "Session resume"): the page keeps the newest
// resume token and the highest msg_no received; when the WebSocket drops
// without a logout or a kick, it opens a new one and sends resume{token,
// last_received} as its first request. The replayed messages that follow
// are handled like any others. RESUME_EXPIRED or BAD_REQUEST: it logs in
// again with the name and password typed (kept in memory only); another
// error: it tries again while the grace period lasts.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const canvas = $("world"), ctx2d = canvas.getContext("2d");

  const rg = {
    ready: false,           // the protocol is loaded
    connected: false,       // the WebSocket is open
    loggedIn: false,
    self: null,             // PlayerState as an object
    zone: null,
    players: new Map(),     // player id (string) -> {id, name, x, y}
    chat: [],               // {name, text}
    gold: 0,
    errors: [],             // Error replies and Kicked pushes, as text
    received: 0,            // ServerMessages received on this page
    token: null,            // the newest ResumeToken.token (Uint8Array)
    graceMs: 0,             // ... its grace period
    last: 0,                // the highest msg_no received
    resumes: 0,             // sessions taken back after a drop
    replayed: 0,            // messages replayed by those resumes, in all
    relogins: 0,            // drops that ended in a fresh login instead
  };
  window.ringgate = rg;

  let ClientMessage, ServerMessage, ErrorCode, ws = null, seq = 0;
  let credentials = null;     // {name, password}: for a login after a failed resume
  let stayDown = false;       // a logout or a kick: do not resume
  let droppedAt = 0;          // when the connection to resume dropped (ms)
  let holdMs = 0;             // tests: how long to stay away after a drop
  const pending = new Map();  // seq -> the request's body ({chat: {...}}, ...)

  function status(text) { $("status").textContent = text; }

  function errorName(code) { return (ErrorCode && ErrorCode.valuesById[code]) || String(code); }

  function send(body) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    seq = (seq % 0xffffffff) + 1;
    pending.set(seq, body);
    const msg = ClientMessage.create(Object.assign({ seq: seq }, body));
    ws.send(ClientMessage.encode(msg).finish());
  }

  // ---- world state ----------------------------------------------------------

  function idOf(v) { return String(v); }

  function setPlayer(p) {
    const id = idOf(p.playerId);
    if (rg.self && id === idOf(rg.self.playerId)) {
      rg.self.x = p.x; rg.self.y = p.y;
      return;
    }
    rg.players.set(id, { id: id, name: p.name, x: p.x, y: p.y });
  }

  function movePlayer(m) {
    const id = idOf(m.playerId);
    if (rg.self && id === idOf(rg.self.playerId)) {
      rg.self.x = m.x; rg.self.y = m.y;
      return;
    }
    const p = rg.players.get(id);
    if (p) { p.x = m.x; p.y = m.y; }
  }

  function addChat(name, text) {
    rg.chat.push({ name: name, text: text });
    const line = document.createElement("div");
    const who = document.createElement("b");
    who.textContent = name + ": ";
    line.appendChild(who);
    line.appendChild(document.createTextNode(text));
    const log = $("chat-log");
    log.appendChild(line);
    log.scrollTop = log.scrollHeight;
  }

  function setGold(gold) {
    rg.gold = Number(gold);
    $("gold").textContent = String(rg.gold);
  }

  // ---- messages from the gateway ---------------------------------------------

  function keepToken(t) {
    if (t && t.token && t.token.length) {
      rg.token = t.token;
      rg.graceMs = t.graceMs;
    }
  }

  function onLogin(reply) {
    rg.loggedIn = true;
    keepToken(reply.resume);
    rg.self = { playerId: reply.self.playerId, name: reply.self.name,
                x: reply.self.x, y: reply.self.y };
    rg.zone = reply.zone;
    rg.players.clear();
    reply.others.forEach(setPlayer);
    setGold(reply.self.gold);
    $("self-name").textContent = reply.self.name;
    $("zone-id").textContent = String(reply.zone.id);
    $("login").classList.add("hidden");
    $("game").classList.remove("hidden");
    status(reply.created ? "account created; logged in" : "logged in");
    canvas.focus();
  }

  function onReply(msg, request) {
    const kind = Object.keys(request)[0];
    switch (msg.body) {
      case "login": onLogin(msg.login); break;
      case "move": if (rg.self) { rg.self.x = msg.move.x; rg.self.y = msg.move.y; } break;
      case "earn": setGold(msg.earn.gold); break;
      // The gateway sends one's own chat to the others only: show it here.
      case "chat": addChat(rg.self.name, request.chat.text); break;
      case "logout":
        rg.loggedIn = false; stayDown = true; rg.token = null;
        status("logged out"); ws.close(1000);
        break;
      case "resume":
        keepToken(msg.resume.resume);
        rg.loggedIn = true;
        rg.resumes++;
        rg.replayed += msg.resume.replayed;
        status("resumed, " + msg.resume.replayed + " messages replayed");
        break;
      case "error":
        if (kind === "resume") {
          resumeFailed(msg.error);
        } else {
          const text = kind + ": " + errorName(msg.error.code) + " (" + msg.error.message + ")";
          rg.errors.push(text);
          status(text);
        }
        break;
      default: break;
    }
  }

  function onPush(msg) {
    switch (msg.body) {
      case "joined": setPlayer(msg.joined.player); break;
      case "left": rg.players.delete(idOf(msg.left.playerId)); break;
      case "moved": movePlayer(msg.moved); break;
      case "chatLine": addChat(msg.chatLine.name, msg.chatLine.text); break;
      case "update": {
        const u = msg.update;
        u.left.forEach((id) => rg.players.delete(idOf(id)));
        u.entered.forEach(setPlayer);
        u.moved.forEach(movePlayer);
        u.chat.forEach((c) => addChat(c.name, c.text));
        break;
      }
      case "token": keepToken(msg.token); break;
      case "kicked": {
        stayDown = true;
        const text = "kicked: " + errorName(msg.kicked.code) + " (" + msg.kicked.message + ")";
        rg.errors.push(text);
        status(text);
        break;
      }
      case "error":
        rg.errors.push("error: " + errorName(msg.error.code) + " (" + msg.error.message + ")");
        status(rg.errors[rg.errors.length - 1]);
        break;
      default: break;
    }
  }

  function onMessage(ev) {
    let msg;
    try {
      msg = ServerMessage.decode(new Uint8Array(ev.data));
    } catch (err) {
      status("undecodable message from the gateway: " + err.message);
      return;
    }
    rg.received++;
    if (Number(msg.msgNo) > rg.last) rg.last = Number(msg.msgNo);
    if (msg.seq !== 0) {
      const request = pending.get(msg.seq) || { unknown: {} };
      pending.delete(msg.seq);
      onReply(msg, request);
    } else {
      onPush(msg);
    }
  }

  // ---- connecting -------------------------------------------------------------

  function sendLogin() {
    rg.token = null;
    rg.last = 0;
    send({ login: { name: credentials.name,
                    password: new TextEncoder().encode(credentials.password) } });
  }

  // A resume was refused: RESUME_EXPIRED / BAD_REQUEST log in afresh;
  // other errors leave the token good: try again within the grace period.
  function resumeFailed(error) {
    const code = errorName(error.code);
    if (code !== "RESUME_EXPIRED" && code !== "BAD_REQUEST" &&
        Date.now() - droppedAt < rg.graceMs) {
      status("resume failed (" + code + "); trying again");
      setTimeout(() => ws.close(4000, "retry resume"), 500);
      return;
    }
    rg.relogins++;
    status("could not resume (" + code + "); logging in again");
    sendLogin();
  }

  // Open the WebSocket: a login, or with a token a resume of the session.
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(scheme + "//" + location.host + "/ws");
    ws.binaryType = "arraybuffer";
    status("connecting…");
    ws.onopen = () => {
      rg.connected = true;
      if (rg.token) {
        status("connected; resuming");
        send({ resume: { token: rg.token, lastReceived: rg.last } });
      } else {
        status("connected; logging in");
        sendLogin();
      }
    };
    ws.onmessage = onMessage;
    ws.onclose = (ev) => {
      const resuming = rg.token && !stayDown;
      rg.connected = false;
      rg.loggedIn = false;
      status("disconnected (" + ev.code + (ev.reason ? " " + ev.reason : "") + ")" +
             (resuming ? "; resuming" : ""));
      if (resuming) {
        if (!droppedAt || ev.code !== 4000) droppedAt = Date.now();
        setTimeout(connect, 300 + holdMs);
        holdMs = 0;
        return;
      }
      $("login").classList.remove("hidden");
    };
  }

  // For tests: drop the connection as a network would (no logout), and
  // stay away for awayMs before resuming.
  rg.dropConnection = (awayMs) => {
    holdMs = awayMs || 0;
    if (ws) ws.close(4001, "dropped");
  };

  // ---- drawing ------------------------------------------------------------------

  function toCanvas(x, y) {
    const z = rg.zone;
    return [(x - z.minX) / (z.maxX - z.minX) * canvas.width,
            (y - z.minY) / (z.maxY - z.minY) * canvas.height];
  }

  function fromCanvas(cx, cy) {
    const z = rg.zone;
    return [z.minX + cx / canvas.width * (z.maxX - z.minX),
            z.minY + cy / canvas.height * (z.maxY - z.minY)];
  }

  function drawPlayer(p, colour) {
    const [cx, cy] = toCanvas(p.x, p.y);
    ctx2d.fillStyle = colour;
    ctx2d.beginPath();
    ctx2d.arc(cx, cy, 7, 0, 2 * Math.PI);
    ctx2d.fill();
    ctx2d.fillStyle = "#fff";
    ctx2d.fillText(p.name, cx + 9, cy - 6);
  }

  function draw() {
    ctx2d.fillStyle = "#1d3b2a";
    ctx2d.fillRect(0, 0, canvas.width, canvas.height);
    if (rg.zone && rg.self) {
      ctx2d.font = "12px 'DejaVu Sans', sans-serif";
      rg.players.forEach((p) => drawPlayer(p, "#6fb7ff"));
      drawPlayer(rg.self, "#ffd23f");
    }
    requestAnimationFrame(draw);
  }

  // ---- input ---------------------------------------------------------------------

  function moveTo(x, y) {
    const z = rg.zone;
    x = Math.min(Math.max(x, z.minX), z.maxX);
    y = Math.min(Math.max(y, z.minY), z.maxY);
    send({ move: { x: x, y: y } });
  }

  const keys = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1],
                 a: [-1, 0], d: [1, 0], w: [0, -1], s: [0, 1] };

  canvas.addEventListener("keydown", (ev) => {
    const dir = keys[ev.key];
    if (!dir || !rg.loggedIn) return;
    ev.preventDefault();
    const step = (rg.zone.maxX - rg.zone.minX) / 40;
    moveTo(rg.self.x + dir[0] * step, rg.self.y + dir[1] * step);
  });

  canvas.addEventListener("click", (ev) => {
    if (!rg.loggedIn) return;
    const r = canvas.getBoundingClientRect();
    const [x, y] = fromCanvas((ev.clientX - r.left) * canvas.width / r.width,
                              (ev.clientY - r.top) * canvas.height / r.height);
    canvas.focus();
    moveTo(x, y);
  });

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!rg.ready) return;
    credentials = { name: $("name").value, password: $("password").value };
    stayDown = false;
    rg.token = null;
    connect();
  });

  $("chat-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("chat").value;
    if (text) send({ chat: { text: text } });
    $("chat").value = "";
  });

  $("earn").addEventListener("click", () => send({ earn: { amount: 10 } }));
  $("logout").addEventListener("click", () => send({ logout: {} }));

  // The gateway kicks a client silent for its idle timeout: ping now and then.
  setInterval(() => { if (rg.loggedIn) send({ ping: { clientTime: Date.now() } }); }, 20000);

  protobuf.load("/client.proto").then((root) => {
    ClientMessage = root.lookupType("ringgate.client.ClientMessage");
    ServerMessage = root.lookupType("ringgate.client.ServerMessage");
    ErrorCode = root.lookupEnum("ringgate.client.ErrorCode");
    rg.ready = true;
    status("ready: log in (a new name creates an account)");
    requestAnimationFrame(draw);
  }, (err) => status("cannot load /client.proto: " + err.message));
})();
