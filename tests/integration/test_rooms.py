#!/usr/bin/python3
"""Integration test of room signaling over WebSocket (docs/protocol.md, "Rooms:
WebSocket signaling"), the admin HTTP API and webhooks (docs/operations.md),
against a real `hudong serve` with two apps (tenants) on free 127.0.0.1 ports.
Standard library only; the RFC 6455 client is tests/integration/wsclient.py.

Every client has a reader thread that keeps its own view of the room (the
`joined` snapshot plus participant_joined/left events). Waits are on events
(a message, a close, a view reaching a state), never fixed sleeps; "nothing
else arrived" is checked with a ping/pong barrier (the node handles one
connection's messages in order and each room's events in one sequence).

 1. crowd: 50 clients join one room concurrently, 20 leave (leave message,
    close frame, vanished socket) at random times while 15 join; every view
    matches the node's (a late observer's `joined`, the admin list); no ghosts;
    the gauges go back to 0.
 2. tokens: every documented join error (code, reason, id echoed, socket closed
    with 1008); tenant isolation of the same room name and identity.
 3. messages: ping/pong, data to all / to one, 403 without canPublishData, the
    15 KiB payload cap, update_metadata, duplicate identity, malformed input,
    second join, leave, publish + mute.
 4. admin API: list rooms/participants, mute, remove, close, 401/403/404.
 5. webhooks: signed participant_joined/left events, per-app receivers; the
    webhook counters on /metrics (a receiver answering 503 makes retries).
 6. room lifetime: POST /admin/rooms (201/409/400/401/403, tenants), a room's
    own participant cap and empty timeout, a rejoin within the timeout keeps
    the room (same sid, one room_started), room_finished after it; and a second
    node whose room_empty_timeout_s is 2 (the main one runs with 0).
Finally SIGTERM: clients get left server_shutdown, exit 0, no sanitizer report.

usage: test_rooms.py /path/to/hudong
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from hdtest import FAILS, b64u, check, free_port  # noqa: E402

APPS = {"appA": "secret-of-app-A-0123456789", "appB": "secret-of-app-B-9876543210"}
HUDONG = None
PORT = None
OFFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "chrome_offer.sdp")
T0 = time.time()
ADM_TRACK = [None]  # the track published in part 4, looked for in the webhooks of part 5


def section(name):
    print("# ---- %s (t=%.1f s)" % (name, time.time() - T0))


# ---------------------------------------------------------------- tokens

def mint(app, identity, room, publish=False, subscribe=False, data=False, admin=False, join=True,
         exp_in=600, nbf_in=None, secret=None, alg="HS256", name=None, hidden=False):
    """An HS256 JWT as docs/tokens.md describes it (what `hudong token` mints)."""
    now = int(time.time())
    grants = {}
    if room is not None:
        grants["room"] = room
    for k, v in (("roomJoin", join), ("canPublish", publish), ("canSubscribe", subscribe),
                 ("canPublishData", data), ("roomAdmin", admin), ("hidden", hidden)):
        if v:
            grants[k] = True
    claims = {"iss": app, "exp": now + exp_in, "iat": now, "grants": grants}
    if identity is not None:
        claims["sub"] = identity
    if nbf_in is not None:
        claims["nbf"] = now + nbf_in
    if name is not None:
        claims["name"] = name
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    key = (secret if secret is not None else APPS.get(app, "x")).encode()
    sig = b64u(hmac.new(key, (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def cli_token(*args):
    """A token from `hudong token` (the CLI the docs tell app developers to use)."""
    out = subprocess.run([HUDONG, "token"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=10)
    if out.returncode != 0:
        raise RuntimeError("hudong token failed: " + out.stderr.decode())
    return out.stdout.decode().strip()


# ---------------------------------------------------------------- HTTP

def api(method, path, token=None, body=None):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    hdrs = {}
    if token is not None:
        hdrs["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    c.request(method, path, body=data, headers=hdrs)
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    try:
        js = json.loads(text)
    except ValueError:
        js = None
    return r.status, js, text


def metrics():
    st, _, text = api("GET", "/metrics")
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, _, v = ln.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def wait_until(fn, timeout=5.0):
    """Polls a server-side state that has no event of its own (a gauge)."""
    end = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > end:
            return v
        time.sleep(0.02)


# ---------------------------------------------------------------- signaling client

class Client:
    """One /rtc connection. A reader thread parses messages into a queue and
    keeps `view` (sid -> identity of the others in the room) from `joined` and
    participant_joined/left, recording anything inconsistent in `view_errors`."""

    def __init__(self, label=""):
        self.label = label
        self.ws = WS(PORT, "/rtc")
        self.ws.sock.settimeout(None)
        self.cond = threading.Condition()
        self.queue, self.log = [], []
        self.closed = None
        self.view, self.view_errors = {}, []
        self.sid = self.identity = self.joined = None
        self.nping = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                r = self.ws.recv()
            except (OSError, ValueError, ConnectionError):
                r = ("eof",)
            if r[0] in ("text", "binary"):
                try:
                    m = json.loads(r[1]) if r[0] == "text" else {"type": "<binary>"}
                except ValueError:
                    m = {"type": "<not json>", "raw": r[1][:200]}
                with self.cond:
                    self._track(m)
                    self.queue.append((len(self.log), m))
                    self.log.append(m)
                    self.cond.notify_all()
                continue
            with self.cond:
                self.closed = r
                self.cond.notify_all()
            return

    def _track(self, m):
        t = m.get("type")
        if t == "joined":
            self.joined = m
            self.sid = m["participant"]["sid"]
            self.identity = m["participant"]["identity"]
            self.view = {p["sid"]: p["identity"] for p in m["participants"]}
            if self.sid in self.view:
                self.view_errors.append("joined lists myself")
        elif t in ("participant_joined", "participant_left"):
            sid, ident = m["participant"]["sid"], m["participant"]["identity"]
            if self.sid is None:
                self.view_errors.append("%s before joined" % t)
            elif sid == self.sid:
                self.view_errors.append("%s about myself" % t)
            elif t == "participant_joined":
                if sid in self.view:
                    self.view_errors.append("participant_joined for known sid %s (%s)" % (sid, ident))
                if ident in self.view.values():
                    self.view_errors.append("participant_joined %s while identity %s is still listed" %
                                            (sid, ident))
                self.view[sid] = ident
            else:
                if sid not in self.view:
                    self.view_errors.append("participant_left for unknown sid %s (%s)" % (sid, ident))
                self.view.pop(sid, None)

    def send(self, obj):
        self.ws.send_text(json.dumps(obj) if not isinstance(obj, (str, bytes)) else obj)

    def _take(self, pred, timeout):
        if isinstance(pred, str):
            ty = pred
            pred = lambda m: m.get("type") == ty  # noqa: E731
        found = []

        def ready():
            for i, (_, m) in enumerate(self.queue):
                if pred is None or pred(m):
                    found.append(self.queue.pop(i))
                    return True
            return self.closed is not None

        with self.cond:
            self.cond.wait_for(ready, timeout)
        return found[0] if found else (None, None)

    def take(self, pred=None, timeout=5.0):
        """Removes and returns the first queued message matching pred (a type
        name or a function); None on timeout or when the socket closed first."""
        return self._take(pred, timeout)[1]

    def sync(self, timeout=5.0):
        """Ping barrier: returns every message still queued that arrived before
        the pong (what the node sent this client up to now and was not taken
        yet), or None without a pong."""
        self.nping += 1
        pid = "sync-%d" % self.nping
        self.send({"type": "ping", "id": pid, "t": self.nping})
        seq, pong = self._take(lambda m: m.get("type") == "pong" and m.get("id") == pid, timeout)
        if pong is None:
            return None
        with self.cond:
            before = [m for s, m in self.queue if s < seq]
            self.queue = [(s, m) for s, m in self.queue if s > seq]
        return before

    def join(self, token, timeout=10.0, **extra):
        msg = {"type": "join", "id": "join-1", "token": token}
        msg.update(extra)
        self.send(msg)
        return self.take(lambda m: m.get("type") in ("joined", "error"), timeout)

    def wait_closed(self, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: self.closed is not None, timeout)
        return self.closed

    def wait_view(self, want, timeout=10.0):
        with self.cond:
            return self.cond.wait_for(lambda: self.view == want, timeout)

    def vanish(self):
        """Drops the TCP connection without a close frame."""
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ws.close()

    def close(self):
        self.vanish()
        self.thread.join(5)


def joined_ok(c, token, label, **extra):
    m = c.join(token, **extra)
    ok = m is not None and m.get("type") == "joined"
    if not ok:
        check(False, "%s joins" % label, m)
    return ok


def new_client(app, identity, room, label=None, **grants):
    c = Client(label or identity)
    if not joined_ok(c, mint(app, identity, room, **grants), "%s/%s/%s" % (app, room, identity)):
        return None
    return c


# ---------------------------------------------------------------- server

class Hooks:
    """Webhook receiver: an HTTP server in a thread recording every request."""

    def __init__(self):
        self.cond = threading.Condition()
        self.got = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.cond:
                    outer.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    outer.cond.notify_all()
                self.send_response(503 if self.path == "/fail" else 200)  # /fail: a receiver that is down
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait(self, pred, timeout):
        with self.cond:
            self.cond.wait_for(lambda: pred(self.got), timeout)
            return list(self.got)


def start_server(tmp, hooks, empty_timeout=0, name="hudong", leeway=None):
    """The main node closes empty rooms at once (room_empty_timeout_s 0: the
    crowd and webhook checks expect hudong_rooms 0 and room_finished right
    after the last leave); part 6 starts a second one with a timeout."""
    err = open(os.path.join(tmp, name + ".log"), "w+b")
    for _ in range(5):
        port = free_port()
        cfg = {"listen": "127.0.0.1:%d" % port, "rtc_port": 0, "room_empty_timeout_s": empty_timeout,
               "apps": [{"key": "appA", "secret": APPS["appA"]},
                        {"key": "appB", "secret": APPS["appB"],
                         "webhook_urls": ["http://127.0.0.1:%d/appB" % hooks.port,
                                          "http://127.0.0.1:%d/fail" % hooks.port]}],
               "webhooks": {"urls": ["http://127.0.0.1:%d/all" % hooks.port], "timeout_ms": 2000}}
        if leeway is not None:
            cfg["token_leeway_seconds"] = leeway
        path = os.path.join(tmp, name + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ, HUDONG_LOG="info")
        proc = subprocess.Popen([HUDONG, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=err,
                                env=env)
        end = time.time() + 10
        while time.time() < end and proc.poll() is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return proc, port, err
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    raise RuntimeError("hudong serve did not start")


# ---------------------------------------------------------------- 1. crowd

def leave_by(c, how):
    """Ends a session one of three ways; returns what the client saw."""
    if how == "leave":
        c.send({"type": "leave", "id": "bye"})
        left = c.take("left")
        return left, c.wait_closed()
    if how == "close":
        c.ws.send_close(1000)
        return None, c.wait_closed()
    c.vanish()
    return None, None


def test_crowd(rng):
    section("1. 50 concurrent clients join and leave one room")
    room, n0, n_new, n_leave = "crowd", 50, 15, 20
    people = {}
    lock = threading.Lock()
    bad = []

    def join_one(ident, barrier):
        try:
            if barrier:
                barrier.wait(10)
            c = Client(ident)
            m = c.join(mint("appA", ident, room, data=True), timeout=15)
            if m is None or m.get("type") != "joined":
                with lock:
                    bad.append((ident, m))
                c.close()
                return
            with lock:
                people[ident] = c
        except Exception as e:  # noqa: BLE001
            with lock:
                bad.append((ident, repr(e)))

    barrier = threading.Barrier(n0)
    ths = [threading.Thread(target=join_one, args=("u%02d" % i, barrier)) for i in range(n0)]
    t_join = time.time()
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    check(not bad and len(people) == n0, "%d clients joined concurrently (%.2f s)" % (n0, time.time() - t_join),
          bad[:5])
    sids = {c.sid: i for i, c in people.items()}
    check(len(sids) == len(people), "every participant got its own sid")
    rooms = {c.joined["room"]["sid"] for c in people.values()}
    check(len(rooms) == 1, "all of them are in one room (one room sid)", rooms)

    def want_for(c, group):
        return {o.sid: o.identity for o in group.values() if o is not c}

    conv = all(c.wait_view(want_for(c, people)) for c in people.values())
    check(conv, "every client's view (joined + events) converges to the %d others" % (n0 - 1),
          [(c.identity, len(c.view)) for c in people.values() if c.view != want_for(c, people)][:5])

    # churn: 20 leave (3 ways) at random times while 15 new ones join
    leavers = rng.sample(sorted(people), n_leave)
    ways = ["leave", "close", "vanish"]
    results = {}

    def leave_one(ident, how, delay):
        time.sleep(delay)  # jitter to interleave with the joins, not synchronisation
        results[ident] = (how, leave_by(people[ident], how))

    def join_late(ident, delay):
        time.sleep(delay)
        join_one(ident, None)

    ths = [threading.Thread(target=leave_one, args=(ident, ways[i % 3], rng.uniform(0, 0.8)))
           for i, ident in enumerate(leavers)]
    ths += [threading.Thread(target=join_late, args=("n%02d" % i, rng.uniform(0, 0.8))) for i in range(n_new)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(30)
    check(not bad, "late joiners all joined", bad[:5])
    for ident, (how, (left, closed)) in sorted(results.items()):
        if how == "leave":
            if not check(left is not None and left.get("reason") == "client_request" and closed is not None and
                         closed[0] == "close" and closed[1] == 1000,
                         "leave -> left client_request, close 1000 (%s)" % ident, (left, closed)):
                break
        elif how == "close":
            if not check(closed is not None and closed[0] in ("close", "eof"),
                         "a close frame ends the session (%s)" % ident, closed):
                break
    gone = set(leavers)
    stay = {i: c for i, c in people.items() if i not in gone}
    check(len(stay) == n0 - n_leave + n_new, "%d participants expected after the churn" % len(stay), len(stay))
    conv = all(c.wait_view(want_for(c, stay)) for c in stay.values())
    check(conv, "after the churn every remaining view matches the %d others (no ghosts, nobody missing)" %
          (len(stay) - 1), [(c.identity, sorted(set(c.view.values()) ^ set(want_for(c, stay).values())))
                            for c in stay.values() if c.view != want_for(c, stay)][:5])
    errs = [(c.identity, c.view_errors[:3]) for c in people.values() if c.view_errors]
    check(not errs, "no client saw an inconsistent event (dup join, left of unknown sid, event about itself)",
          errs[:5])
    extra = [(c.identity, m.get("type")) for c in people.values() for m in c.log
             if m.get("type") not in ("joined", "participant_joined", "participant_left", "left")]
    check(not extra, "no unexpected messages in the crowd", extra[:5])

    # the node's own view: a late observer's snapshot, the gauges, the admin list
    obs = new_client("appA", "observer", room)
    snap = {p["sid"]: p["identity"] for p in obs.joined["participants"]} if obs else None
    want = {c.sid: c.identity for c in stay.values()}
    check(snap == want, "a late observer's joined snapshot is exactly the remaining %d" % len(want),
          snap and sorted(set(snap.values()) ^ set(want.values())))
    m = metrics()
    check(m.get("hudong_participants") == len(stay) + 1, "hudong_participants = %d" % (len(stay) + 1),
          m.get("hudong_participants"))
    st, js, text = api("GET", "/admin/rooms/%s/participants" % room, mint("appA", "ops", None, admin=True,
                                                                          join=False))
    if st == 200 and js is not None:
        srv = {p["sid"]: p["identity"] for p in js.get("participants", [])}
        want["%s" % obs.sid] = "observer"
        check(srv == want, "GET /admin/rooms/crowd/participants lists exactly who is in the room",
              sorted(set(srv.items()) ^ set(want.items()))[:5])
    else:
        check(False, "GET /admin/rooms/crowd/participants answers 200 with JSON", (st, text[:200]))

    # everyone leaves; the room and every participant are gone
    rest = list(stay.values()) + ([obs] if obs else [])
    ths = [threading.Thread(target=leave_by, args=(c, ways[i % 3])) for i, c in enumerate(rest)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(15)
    ok = wait_until(lambda: (lambda mm: mm.get("hudong_participants") == 0 and mm.get("hudong_rooms") == 0)(
        metrics()), 10)
    mm = metrics()
    check(ok, "after everyone left: hudong_participants 0 and hudong_rooms 0",
          (mm.get("hudong_participants"), mm.get("hudong_rooms")))
    for c in people.values():
        c.close()


# ---------------------------------------------------------------- 2. tokens, tenants

def expect_join_error(token, code, reason, what, **extra):
    c = Client(what)
    m = c.join(token, **extra)
    closed = c.wait_closed()
    ok = m is not None and m.get("type") == "error" and m.get("code") == code and m.get("reason") == reason
    check(ok and m.get("id") == "join-1" and isinstance(m.get("message"), str) and
          closed is not None and closed[0] == "close" and closed[1] == 1008,
          "%s -> %d %s (id echoed), socket closed 1008" % (what, code, reason), (m, closed))
    c.close()


def test_tokens():
    section("2. token errors and tenant isolation")
    room = "r"
    expect_join_error(mint("appA", "x", room, exp_in=-60), 401, "token_expired", "expired token (60 s ago)")
    expect_join_error(mint("appA", "x", room, nbf_in=120), 401, "token_expired", "token not valid yet (nbf +120 s)")
    c = new_client("appA", "skewed", room, exp_in=-3)  # within the default token_leeway_seconds (10)
    check(c is not None, "a token expired 3 s ago still joins (default token_leeway_seconds 10)")
    if c:
        leave_by(c, "leave")
        c.close()
    expect_join_error(cli_token("--key", "appA", "--secret", "not-the-secret", "--room", room, "--identity", "x"),
                      401, "unauthorized", "bad signature (hudong token with a wrong secret)")
    tok = mint("appA", "x", room)
    expect_join_error(tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB"), 401, "unauthorized",
                      "tampered signature")
    expect_join_error(mint("appC", "x", room, secret="whatever"), 401, "unauthorized", "unknown API key")
    expect_join_error(mint("appA", "x", room, alg="HS512"), 401, "unauthorized", "alg HS512")
    expect_join_error("not.a.jwt", 401, "unauthorized", "malformed token")
    expect_join_error(mint("appB", "x", room, secret=APPS["appA"]), 401, "unauthorized",
                      "app B's key signed with app A's secret")
    expect_join_error(mint("appA", "x", room, join=False, publish=True), 403, "forbidden", "no roomJoin grant")
    expect_join_error(mint("appA", "x", None), 403, "forbidden", "no room in the token")
    expect_join_error(cli_token("--key", "appA", "--secret", APPS["appA"], "--identity", "x", "--admin"), 403,
                      "forbidden", "admin token without a room (hudong token --admin)")
    expect_join_error(mint("appA", None, room), 403, "forbidden", "no sub (identity)")
    expect_join_error(mint("appA", "x", room), 400, "bad_request", "protocol 2", protocol=2)

    # first message not join: the doc says 401 unauthorized and close
    c = Client("first-not-join")
    c.send({"type": "ping", "id": "p0", "t": 1})
    m = c.take()
    closed = c.wait_closed()
    check(m is not None and m.get("type") == "error" and m.get("code") == 401 and m.get("reason") == "unauthorized"
          and closed is not None and closed[0] == "close" and closed[1] == 1008,
          "first message ping (not join) -> 401 unauthorized (docs/protocol.md Connection), closed 1008",
          (m, closed))
    c.close()
    c = Client("first-garbage")
    c.send("{not json")
    m = c.take()
    closed = c.wait_closed()
    check(m is not None and m.get("type") == "error" and m.get("code") == 400 and closed is not None and
          closed[0] == "close" and closed[1] == 1008, "first message not JSON -> 400, closed 1008", (m, closed))
    c.close()
    check(metrics().get("hudong_participants") == 0, "no participant left over from the failed joins")

    # tenant isolation: room "r" and identity "alice" in both apps
    a1 = new_client("appA", "alice", room, data=True)
    b1 = new_client("appB", "alice", room, data=True)
    if not (a1 and b1):
        return
    check(b1.joined["participants"] == [], "app B's alice joins an empty room r (app A's alice invisible)",
          b1.joined["participants"])
    check(a1.joined["room"]["sid"] != b1.joined["room"]["sid"], "app A's r and app B's r have different sids")
    a2 = new_client("appA", "bob", room, data=True)
    ev = a1.take("participant_joined")
    before = [m for m in a1.log if m.get("type") != "joined"]
    check(ev is not None and ev["participant"]["identity"] == "bob" and before == [ev],
          "app A's alice: the first event is bob joining (app B's alice did not replace her)", before)
    check(a1.closed is None, "app A's alice still connected (duplicate identity is per app)")
    check([p["identity"] for p in a2.joined["participants"]] == ["alice"] and
          a2.joined["participants"][0]["sid"] == a1.sid, "app A's bob sees only app A's alice")
    b2 = new_client("appB", "carol", room, data=True)
    ev = b1.take("participant_joined")
    check(ev is not None and ev["participant"]["identity"] == "carol", "app B's alice sees app B's carol join")
    b2.send({"type": "data", "payload": "B-to-all"})
    b2.send({"type": "data", "payload": "B-to-alice", "to": ["alice"]})
    b2.sync()
    got_b = [m.get("payload") for m in (b1.sync() or []) if m.get("type") == "data"]
    check(got_b == ["B-to-all", "B-to-alice"], "app B's alice gets app B's data (to all and to 'alice')", got_b)
    ea, eb = a1.sync(), a2.sync()
    check(ea == [] and eb == [], "app A's alice and bob got nothing from app B's room (events, data)", (ea, eb))
    for c in (a1, a2, b1, b2):
        leave_by(c, "leave")
        c.close()


# ---------------------------------------------------------------- 3. messages

def test_messages():
    section("3. messages: ping, data, metadata, duplicates, bad input, publish, mute")
    room = "m"
    tok = cli_token("--key", "appA", "--secret", APPS["appA"], "--room", room, "--identity", "alice", "--publish",
                    "--subscribe", "--publish-data", "--name", "Alice")
    alice = Client("alice")
    if not joined_ok(alice, tok, "alice (hudong token --publish --subscribe --publish-data)"):
        return
    p = alice.joined["participant"]
    check(p["name"] == "Alice" and p["permissions"] == {"can_publish": True, "can_subscribe": True,
                                                         "can_publish_data": True, "room_admin": False,
                                                         "hidden": False},
          "joined.participant carries the token's name and grants", p)
    check(alice.joined.get("protocol") == 1 and alice.joined.get("ping_interval") == 10 and
          alice.joined.get("ping_timeout") == 30 and alice.joined["room"]["name"] == room,
          "joined: protocol 1, ping_interval 10, ping_timeout 30, room name", alice.joined)
    bob = new_client("appA", "bob", room, data=True, subscribe=True)
    carol = new_client("appA", "carol", room)  # no canPublishData
    if not (bob and carol):
        return
    alice.sync()
    bob.sync()

    # ping / pong
    for t in (0, 1700000000123, 9007199254740991):
        alice.send({"type": "ping", "id": "p-%d" % t, "t": t})
        m = alice.take("pong")
        check(m is not None and m.get("t") == t and m.get("id") == "p-%d" % t, "ping t=%d -> pong echoes t and id" % t,
              m)
    alice.send({"type": "ping", "t": 9007199254740992})
    m = alice.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 400, "ping t=2^53 -> 400", m)

    # data to everyone, to one identity
    alice.send({"type": "data", "payload": "héllo ✓ 互动"})
    mine = alice.sync()
    for who in (bob, carol):
        m = who.take("data")
        check(m is not None and m.get("payload") == "héllo ✓ 互动" and m.get("from") == "alice" and
              m.get("from_sid") == alice.sid, "data to all reaches %s with from/from_sid" % who.label, m)
    check(mine == [], "the sender gets nothing back for data", mine)
    alice.send({"type": "data", "payload": "only-bob", "to": ["bob", "nobody"]})
    mine = alice.sync()
    m = bob.take("data")
    check(m is not None and m.get("payload") == "only-bob", "data to ['bob', 'nobody'] reaches bob", m)
    ev = carol.sync()
    check(ev == [], "carol does not get data addressed to bob", ev)
    check(mine == [], "an identity not in the room is skipped silently", mine)
    big = "x" * 15360
    alice.send({"type": "data", "payload": big})
    alice.sync()
    m = bob.take("data")
    m2 = carol.take("data")
    check(m is not None and m.get("payload") == big and m2 is not None and m2.get("payload") == big,
          "a 15360-byte payload passes")
    alice.send({"type": "data", "id": "big", "payload": big + "x"})
    m = alice.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 413 and m.get("reason") == "too_large"
          and m.get("id") == "big", "a 15361-byte payload -> 413 too_large", m)
    alice.send({"type": "data", "payload": "x", "reliable": False})
    m = alice.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 400, "data reliable:false -> 400", m)

    carol.send({"type": "data", "id": "d1", "payload": "nope"})
    m = carol.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 403 and m.get("reason") == "forbidden" and
          m.get("id") == "d1", "data without canPublishData -> 403 forbidden (id echoed)", m)
    check(carol.sync() == [], "carol's connection stays usable after the 403")
    alice.sync()
    check(bob.sync() == [], "the refused data reached nobody")

    # update_metadata
    bob.send({"type": "update_metadata", "metadata": "{\"hand\":true}", "name": "Bobby"})
    for who in (alice, carol, bob):
        m = who.take("participant_updated")
        check(m is not None and m["participant"]["sid"] == bob.sid and m["participant"]["name"] == "Bobby" and
              m["participant"]["metadata"] == "{\"hand\":true}",
              "update_metadata -> participant_updated to %s" % who.label, m)
    bob.send({"type": "update_metadata", "id": "um"})
    m = bob.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 400 and m.get("id") == "um",
          "update_metadata with neither member -> 400", m)

    # malformed input: error, connection stays
    for raw, what, code in (("{not json", "not JSON", 400), ("[1,2]", "a JSON array", 400),
                            ('{"type":"ping","t":1', "truncated JSON", 400),
                            ('{"type":"ping","t":1,"t":2}', "duplicate member", 400),
                            ('{"type":"warp","id":"w1"}', "unknown type", 400),
                            ('{"type":"joined","id":"w2"}', "a node->client type", 400),
                            ('{"id":"w3"}', "no type", 400),
                            ('{"type":"ping","id":"w4","t":"5"}', "t as a string", 400),
                            ('{"type":"mute","id":"w5","track_sid":"TR_nope","muted":true}', "mute an unknown track",
                             404),
                            ('{"type":"subscribe","id":"w6","track_sids":["TR_nope"]}', "subscribe unknown track",
                             404),
                            ('{"type":"join","id":"w7","token":"x"}', "a second join", 409),
                            ('{"type":"subscriber_answer","id":"w8","sdp":"v=0"}', "subscriber_answer, no offer out",
                             409)):
        alice.send(raw)
        m = alice.take()
        wid = json.loads(raw).get("id") if raw.startswith("{\"") and raw.endswith("}") and "t\":1,\"t" not in raw \
            else None
        check(m is not None and m.get("type") == "error" and m.get("code") == code and
              isinstance(m.get("reason"), str) and (wid is None or m.get("id") == wid),
              "%s -> error %d%s" % (what, code, " (id echoed)" if wid else ""), m)
    alice.send({"type": "ping", "id": "alive", "t": 7})
    m = alice.take()
    check(m is not None and m.get("type") == "pong" and m.get("id") == "alive" and alice.closed is None,
          "after all the bad messages alice's connection is still usable", m)
    # a binary frame (on a throwaway connection: it gets closed)
    c = new_client("appA", "dave", room)
    if c:
        c.ws.send_frame(2, b"\x01\x02")
        closed = c.wait_closed()
        check(closed is not None and closed[0] == "close" and closed[1] == 1003,
              "a binary frame closes the connection with 1003 (docs/protocol.md Connection)", closed)
        c.close()
        for who in (alice, bob, carol):  # dave's join and leave
            m = who.take("participant_joined")
            m2 = who.take("participant_left")
        check(m2 is not None and m2["participant"]["sid"] == c.sid, "... and the others see it leave", m2)
    # over the 64 KiB message cap: 413, the message is dropped, the connection stays
    alice.send(json.dumps({"type": "ping", "id": "huge", "t": 1, "pad": "y" * 70000}))
    m = alice.take()
    check(m is not None and m.get("type") == "error" and m.get("code") == 413 and m.get("reason") == "too_large" and
          alice.sync() == [], "a 70 KB message -> 413 too_large, connection stays (docs/protocol.md Limits)",
          (m, alice.closed))
    if alice.closed is not None:
        return

    # a hidden participant (recorder): not listed, no events, may send data, may not publish
    rec = new_client("appA", "recorder", room, hidden=True, publish=True, data=True, subscribe=True)
    if rec:
        check(sorted(p["identity"] for p in rec.joined["participants"]) == ["alice", "bob", "carol"] and
              rec.joined["participant"]["permissions"]["hidden"] is True, "hidden: sees the others",
              rec.joined["participants"])
        rec.send({"type": "data", "payload": "from-recorder", "to": ["bob"]})
        rec.send({"type": "publish_offer", "id": "hp", "sdp": open(OFFER).read(),
                  "tracks": [{"cid": "mic", "mid": "0", "kind": "audio", "source": "microphone"}]})
        m = rec.take(lambda m: m.get("id") == "hp")
        check(m is not None and m.get("type") == "error" and m.get("code") == 403,
              "hidden participant publishing -> 403", m)
        alice.send({"type": "data", "payload": "to-all-incl-hidden"})
        alice.sync()
        m = rec.take("data")
        check(m is not None and m.get("payload") == "to-all-incl-hidden", "data to all reaches hidden participants",
              m)
        leave_by(rec, "leave")
        rec.close()
        ev = [e.get("type") for e in (bob.sync() or [])]
        check(ev == ["data", "data"], "bob saw no join/leave of the hidden participant, only the data", ev)
        ev = [e.get("type") for e in (carol.sync() or [])]
        check(ev == ["data"], "carol saw no join/leave of the hidden participant", ev)

    # floods, each from a throwaway connection: data is limited to 50/s (burst 100),
    # all messages of a connection to 100/s (burst 200); at most one 429 per second
    fl = new_client("appA", "flooder", room, data=True)
    if fl:
        for who in (alice, bob, carol):
            who.take("participant_joined")
        for i in range(150):
            fl.send({"type": "data", "payload": "f%d" % i})
        mine = fl.sync(10) or []
        got = [m for m in (bob.sync(10) or []) if m.get("type") == "data"]
        carol.sync(10)
        alice.sync(10)
        check(len(mine) == 1 and mine[0].get("type") == "error" and mine[0].get("code") == 429 and
              mine[0].get("reason") == "rate_limited" and 100 <= len(got) < 150 and fl.closed is None,
              "150 data messages at once: %d delivered, one 429 rate_limited, connection stays" % len(got),
              (len(got), mine[:3]))
        nums = [int(m.get("payload", "f-1")[1:]) for m in got]
        check(nums[:100] == list(range(100)) and nums == sorted(set(nums)),
              "the burst delivers the first 100 in order (later ones only as the bucket refills)", nums[95:])
        fl.close()
        for who in (alice, bob, carol):
            who.take("participant_left")
    fl = new_client("appA", "flooder2", room)
    if fl:
        for who in (alice, bob, carol):
            who.take("participant_joined")
        for i in range(400):
            fl.send({"type": "ping", "id": "fl%d" % i, "t": i})
        ev = None
        for _ in range(20):  # our own ping may be dropped too while the bucket is empty
            ev = fl.sync(0.5)
            if ev is not None:
                break
        ev = ev or []
        pongs = [m for m in ev if m.get("type") == "pong" and m.get("id", "").startswith("fl")]
        lim = [m for m in ev if m.get("type") == "error"]
        ts = [m["t"] for m in pongs]
        check(len(lim) == 1 and lim[0].get("code") == 429 and 200 <= len(pongs) < 400 and fl.closed is None and
              ts[:200] == list(range(200)) and ts == sorted(set(ts)),
              "400 pings at once: the first %d answered, then one 429 rate_limited, connection stays" % len(pongs),
              (len(pongs), lim[:3]))
        fl.close()
        for who in (alice, bob, carol):
            who.take("participant_left")

    # publish two tracks (SDP from Chrome), others see them, mute
    with open(OFFER) as f:
        sdp = f.read()
    tracks = [{"cid": "mic", "mid": "0", "kind": "audio", "source": "microphone"},
              {"cid": "cam", "mid": "1", "kind": "video", "source": "camera", "width": 640, "height": 480}]
    alice.send({"type": "publish_offer", "id": "pub1", "sdp": sdp, "tracks": tracks})
    ans = alice.take(lambda m: m.get("id") == "pub1")
    ok = check(ans is not None and ans.get("type") == "publish_answer" and ans.get("sdp", "").startswith("v=0") and
               sorted(t["cid"] for t in ans.get("tracks", [])) == ["cam", "mic"],
               "publish_offer -> publish_answer mapping cid -> sid", ans)
    if ok:
        tsid = {t["cid"]: t["sid"] for t in ans["tracks"]}
        for who in (bob, carol):
            got = [who.take("track_published") for _ in range(2)]
            check(all(g is not None and g["participant_sid"] == alice.sid for g in got) and
                  sorted(g["track"]["sid"] for g in got) == sorted(tsid.values()),
                  "%s gets track_published for both tracks" % who.label, got)
        m = bob.take("subscriber_offer")
        check(m is not None and sorted(t["track_sid"] for t in m.get("tracks", [])) == sorted(tsid.values()),
              "bob (canSubscribe, auto_subscribe) gets a subscriber_offer with both tracks", m)
        ev = carol.sync()
        check(ev == [], "carol (no canSubscribe) gets no subscriber_offer", ev)
        alice.send({"type": "mute", "track_sid": tsid["mic"], "muted": True})
        for who in (bob, carol, alice):
            m = who.take("track_muted")
            check(m is not None and m["track_sid"] == tsid["mic"] and m["muted"] is True and
                  m["participant_sid"] == alice.sid, "mute -> track_muted to %s%s" %
                  (who.label, " (the muter too, docs/protocol.md Mute)" if who is alice else ""), m)
        bob.send({"type": "mute", "id": "bm", "track_sid": tsid["mic"], "muted": False})
        m = bob.take()
        check(m is not None and m.get("type") == "error" and m.get("code") == 404 and m.get("id") == "bm",
              "muting someone else's track -> 404", m)
        alice.sync()
        carol.sync()

    # duplicate identity: the newer connection wins
    old_sid = alice.sid
    alice2 = Client("alice2")
    ok = joined_ok(alice2, mint("appA", "alice", room, publish=True, data=True), "second alice")
    m = alice.take("left")
    closed = alice.wait_closed()
    check(m is not None and m.get("reason") == "duplicate_identity" and closed is not None and
          closed[0] == "close" and closed[1] == 1000,
          "the old alice gets left duplicate_identity, then close 1000", (m, closed))
    if ok:
        check(old_sid not in [p["sid"] for p in alice2.joined["participants"]] and alice2.sid != old_sid,
              "the new alice has a new sid and does not see the old one")
        ev = [(e.get("type"), e.get("participant", {}).get("sid")) for e in (carol.sync() or [])]
        check(ev == [("participant_left", old_sid), ("participant_joined", alice2.sid)],
              "others see participant_left(old sid) then participant_joined(new sid)", ev)

    # leave
    bob.send({"type": "leave", "id": "bye"})
    m = bob.take("left")
    closed = bob.wait_closed()
    check(m is not None and m.get("reason") == "client_request", "leave -> left client_request", m)
    check(closed is not None and closed[0] == "close" and closed[1] == 1000,
          "after leave the node closes with 1000 (docs/protocol.md Connection)", closed)
    m = carol.take("participant_left")
    check(m is not None and m["participant"]["sid"] == bob.sid, "carol sees bob leave", m)
    for c in (alice, alice2, bob, carol):
        c.close()
    wait_until(lambda: metrics().get("hudong_participants") == 0, 5)


# ---------------------------------------------------------------- 4. admin API

def test_admin():
    section("4. admin API")
    adm_a = mint("appA", "ops", None, admin=True, join=False)
    adm_b = mint("appB", "ops", None, admin=True, join=False)
    st, js, text = api("GET", "/admin/rooms", adm_a)
    if not check(st == 200 and js is not None and "rooms" in js, "GET /admin/rooms answers 200 with JSON",
                 (st, text[:200])):
        return
    room = "adm"
    u1 = new_client("appA", "u1", room, publish=True)
    u2 = new_client("appA", "u2", room)
    u3 = new_client("appA", "u3", room)
    bx = new_client("appB", "bx", "bonly")
    if not (u1 and u2 and u3 and bx):
        return
    with open(OFFER) as f:
        sdp = f.read()
    u1.send({"type": "publish_offer", "id": "pub", "sdp": sdp,
             "tracks": [{"cid": "mic", "mid": "0", "kind": "audio", "source": "microphone"}]})
    ans = u1.take(lambda m: m.get("id") == "pub")
    tsid = ans["tracks"][0]["sid"] if ans and ans.get("type") == "publish_answer" else None
    ADM_TRACK[0] = tsid
    check(tsid is not None, "u1 publishes a track", ans)
    for c in (u2, u3):
        c.take("track_published")
    for c in (u1, u2, u3):  # the joins of the others
        c.sync()

    st, js, text = api("GET", "/admin/rooms", adm_a)
    rooms = {r.get("name"): r for r in (js or {}).get("rooms", [])}
    r = rooms.get(room, {})
    check(st == 200 and r.get("sid") == u1.joined["room"]["sid"] and r.get("participants") == 3 and
          isinstance(r.get("created_at"), int), "GET /admin/rooms lists adm with its sid, 3 participants",
          (st, text[:300]))
    check("bonly" not in rooms, "app A's admin does not see app B's room", sorted(rooms))
    st, js, text = api("GET", "/admin/rooms", adm_b)
    names = sorted(r.get("name") for r in (js or {}).get("rooms", []))
    check(st == 200 and names == ["bonly"], "app B's admin sees only app B's rooms", (st, text[:300]))

    # a token scoped to one room sees that room only (issue 12 item 8), on every endpoint
    adm_other = mint("appA", "ops2", "otherroom", admin=True, join=False)
    o1 = new_client("appA", "o1", "otherroom")
    st, js, text = api("GET", "/admin/rooms", adm_other)
    names = sorted(r.get("name") for r in (js or {}).get("rooms", []))
    check(st == 200 and names == ["otherroom"], "a room-scoped admin token lists only its own room", (st, text[:300]))
    adm_room = mint("appA", "ops3", room, admin=True, join=False)
    st, js, text = api("GET", "/admin/rooms", adm_room)
    names = sorted(r.get("name") for r in (js or {}).get("rooms", []))
    check(st == 200 and names == [room], "... and so does a token for room %s" % room, (st, text[:300]))
    for method, path, body in (("GET", "/admin/rooms/%s/participants" % room, None),
                               ("DELETE", "/admin/rooms/%s/participants/u2" % room, None),
                               ("POST", "/admin/rooms/%s/participants/u1/mute" % room, {"track_sid": "x"}),
                               ("DELETE", "/admin/rooms/%s" % room, None),
                               ("POST", "/admin/rooms", {"name": "elsewhere", "empty_timeout_s": 5})):
        st, js, text = api(method, path, adm_other, body)
        check(st == 403 and "token is for room otherroom" in text,
              "%s %s with a token for another room -> 403" % (method, path), (st, text[:200]))
    if o1:
        leave_by(o1, "leave")
        o1.close()

    st, js, text = api("GET", "/admin/rooms/%s/participants" % room, adm_a)
    ps = {p.get("identity"): p for p in (js or {}).get("participants", [])}
    check(st == 200 and sorted(ps) == ["u1", "u2", "u3"] and ps["u1"].get("sid") == u1.sid and
          [t.get("sid") for t in ps["u1"].get("tracks", [])] == [tsid],
          "GET participants: identities, sids, u1's track", (st, text[:400]))

    # errors
    for method, path, tok, body, want, what in (
            ("GET", "/admin/rooms", None, None, 401, "no token"),
            ("GET", "/admin/rooms", "garbage", None, 401, "malformed token"),
            ("GET", "/admin/rooms", mint("appA", "ops", None, admin=True, join=False, exp_in=-60), None, 401,
             "expired admin token"),
            ("GET", "/admin/rooms", mint("appA", "u9", room, subscribe=True), None, 403, "token without --admin"),
            ("GET", "/admin/rooms/%s/participants" % room, mint("appA", "u9", room, publish=True), None, 403,
             "participants with a non-admin token"),
            ("DELETE", "/admin/rooms/%s/participants/u2" % room, mint("appA", "u9", room), None, 403,
             "remove with a non-admin token"),
            ("DELETE", "/admin/rooms/%s" % room, mint("appA", "u9", room), None, 403, "close with a non-admin token"),
            ("GET", "/admin/rooms/nosuchroom/participants", adm_a, None, 404, "unknown room"),
            ("GET", "/admin/rooms/%s/participants" % room, adm_b, None, 404, "app B's admin on app A's room"),
            ("DELETE", "/admin/rooms/%s/participants/u2" % room, adm_b, None, 404, "app B's admin removing in A"),
            ("DELETE", "/admin/rooms/%s" % room, adm_b, None, 404, "app B's admin closing A's room"),
            ("DELETE", "/admin/rooms/%s/participants/nobody" % room, adm_a, None, 404, "remove unknown identity"),
            ("POST", "/admin/rooms/%s/participants/u1/mute" % room, adm_a, {"track_sid": "TR_nope", "muted": True},
             404, "mute unknown track")):
        st, js, text = api(method, path, tok, body)
        check(st == want, "%s %s (%s) -> %d" % (method, path, what, want), (st, text[:200]))
    for c in (u1, u2, u3):
        ev = c.sync()
        check(ev == [], "%s saw nothing from the refused admin requests" % c.label, ev)

    if tsid:
        st, js, text = api("POST", "/admin/rooms/%s/participants/u1/mute" % room, adm_a,
                            {"track_sid": tsid, "muted": True})
        check(st == 200, "POST .../u1/mute -> 200", (st, text[:200]))
        for c in (u1, u2, u3):
            m = c.take("track_muted")
            check(m is not None and m["track_sid"] == tsid and m["muted"] is True and m["participant_sid"] == u1.sid,
                  "admin mute -> track_muted to %s" % c.label, m)
        st, js, text = api("GET", "/admin/rooms/%s/participants" % room, adm_a)
        ps = {p.get("identity"): p for p in (js or {}).get("participants", [])}
        check(st == 200 and ps.get("u1", {}).get("tracks", [{}])[0].get("muted") is True,
              "the participant list shows the track muted", text[:300])

    st, js, text = api("DELETE", "/admin/rooms/%s/participants/u3" % room, adm_a)
    check(st == 200, "DELETE .../participants/u3 -> 200", (st, text[:200]))
    m = u3.take("left")
    closed = u3.wait_closed()
    check(m is not None and m.get("reason") == "removed" and closed is not None and closed[0] == "close" and
          closed[1] == 1000, "u3 gets left removed, then close 1000", (m, closed))
    for c in (u1, u2):
        m = c.take("participant_left")
        check(m is not None and m["participant"]["sid"] == u3.sid, "%s sees u3 leave" % c.label, m)

    st, js, text = api("DELETE", "/admin/rooms/%s" % room, adm_a)
    check(st == 200, "DELETE /admin/rooms/adm -> 200", (st, text[:200]))
    for c in (u1, u2):
        m = c.take("left")
        closed = c.wait_closed()
        check(m is not None and m.get("reason") == "room_closed" and closed is not None and closed[0] == "close" and
              closed[1] == 1000, "%s gets left room_closed, then close 1000" % c.label, (m, closed))
    st, js, text = api("GET", "/admin/rooms", adm_a)
    check(st == 200 and room not in [r.get("name") for r in (js or {}).get("rooms", [])],
          "the closed room is no longer listed", text[:300])
    st, js, text = api("GET", "/admin/rooms/%s/participants" % room, adm_a)
    check(st == 404, "participants of the closed room -> 404", (st, text[:200]))
    check(bx.closed is None and bx.sync() == [], "app B's participant was not touched")
    for c in (u1, u2, u3, bx):
        leave_by(c, "leave")
        c.close()


# ---------------------------------------------------------------- 5. webhooks

def verify_sig(header, body, secret):
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    t = next((v for k, v in parts if k == "t"), None)
    if t is None:
        return False
    want = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(want, v) for k, v in parts if k == "v1") and abs(time.time() - int(t)) <= 300


def test_webhooks(hooks):
    section("5. webhooks")
    wa = new_client("appA", "hook-a", "hooks-a")
    wb = new_client("appB", "hook-b", "hooks-b")
    if not (wa and wb):
        return
    sa, sb, rsa, rsb = wa.sid, wb.sid, wa.joined["room"]["sid"], wb.joined["room"]["sid"]
    leave_by(wa, "leave")
    leave_by(wb, "vanish")

    def events(got, path):
        out = []
        for p, h, body in got:
            if p != path:
                continue
            try:
                out.append((h, body, json.loads(body)))
            except ValueError:
                out.append((h, body, {}))
        return out

    def have(got, path, ev, sid):
        return any(js.get("event") == ev and js.get("participant", {}).get("sid") == sid
                   for _, _, js in events(got, path))

    want = [("/all", "participant_left", sa), ("/all", "participant_left", sb), ("/appB", "participant_left", sb)]
    def finished(g, path, rsid):
        return any(js.get("event") == "room_finished" and js.get("room", {}).get("sid") == rsid
                   for _, _, js in events(g, path))

    # each receiver gets its events in order: waiting for the last ones waits for all
    got = hooks.wait(lambda g: all(have(g, *w) for w in want) and finished(g, "/all", rsa) and
                     finished(g, "/all", rsb) and finished(g, "/appB", rsb), 10)
    if not check(got, "webhook requests arrive"):
        return
    for path, ev, sid, app, rsid in (("/all", "participant_joined", sa, "appA", rsa),
                                     ("/all", "participant_left", sa, "appA", rsa),
                                     ("/all", "participant_joined", sb, "appB", rsb),
                                     ("/all", "participant_left", sb, "appB", rsb),
                                     ("/appB", "participant_joined", sb, "appB", rsb),
                                     ("/appB", "participant_left", sb, "appB", rsb)):
        hit = [(h, b, js) for h, b, js in events(got, path)
               if js.get("event") == ev and js.get("participant", {}).get("sid") == sid]
        if not check(len(hit) >= 1, "%s receives %s of %s/%s" % (path, ev, app, sid),
                     [js.get("event") for _, _, js in events(got, path)][-10:]):
            continue
        h, body, js = hit[0]
        check(verify_sig(h.get("hudong-signature", ""), body, APPS[app]),
              "%s %s: Hudong-Signature is HMAC-SHA256(%s's secret, t.body)" % (path, ev, app),
              h.get("hudong-signature"))
        check(h.get("hudong-app-key") == app and h.get("hudong-event") == ev and
              h.get("hudong-event-id") == js.get("id") and h.get("content-type", "").startswith("application/json")
              and js.get("app") == app and js.get("room", {}).get("sid") == rsid and
              js.get("participant", {}).get("identity") in ("hook-a", "hook-b") and
              isinstance(js.get("created_at"), int),
              "%s %s: headers and body fields" % (path, ev), (dict(h), js))
    other = [js for _, _, js in events(got, "/appB") if js.get("app") != "appB"]
    check(not other, "app B's receiver never gets app A's events", other[:3])
    bad = [(p, h.get("hudong-event")) for p, h, b in got
           if not verify_sig(h.get("hudong-signature", ""), b, APPS.get(h.get("hudong-app-key"), "?"))]
    check(not bad, "every webhook request (%d) carries a valid signature" % len(got), bad[:5])
    crowd_j = [js for _, _, js in events(got, "/all")
               if js.get("event") == "participant_joined" and js.get("room", {}).get("name") == "crowd"]
    crowd_l = [js for _, _, js in events(got, "/all")
               if js.get("event") == "participant_left" and js.get("room", {}).get("name") == "crowd"]
    check(len(crowd_j) == 50 + 15 + 1 and len(crowd_l) == len(crowd_j) and
          len({js["participant"]["sid"] for js in crowd_j}) == len(crowd_j),
          "the crowd's 66 joins and 66 leaves were each reported once", (len(crowd_j), len(crowd_l)))
    ids = [js.get("id") for _, _, js in events(got, "/all")]
    check(len(set(ids)) == len(ids), "event ids are unique", len(ids) - len(set(ids)))
    seq = [(js.get("event"), js.get("room", {}).get("sid")) for _, _, js in events(got, "/all")
           if js.get("room", {}).get("name") == "hooks-a"]
    check(seq == [("room_started", rsa), ("participant_joined", rsa), ("participant_left", rsa),
                  ("room_finished", rsa)],
          "room hooks-a: room_started, participant_joined, participant_left, room_finished, in order", seq)
    tr = [(js.get("event"), js.get("track", {}).get("sid"), js.get("track", {}).get("kind"),
           js.get("track", {}).get("source"), js.get("participant", {}).get("identity"))
          for _, _, js in events(got, "/all") if js.get("event", "").startswith("track_") and
          js.get("room", {}).get("name") == "adm"]
    check(ADM_TRACK[0] is not None and tr == [("track_published", ADM_TRACK[0], "audio", "microphone", "u1"),
                                              ("track_unpublished", ADM_TRACK[0], "audio", "microphone", "u1")],
          "room adm: track_published and track_unpublished of u1's microphone", tr)
    for c in (wa, wb):
        c.close()

    # the delivery counters on /metrics, and that they move. The receivers record a request before
    # they answer it; the node counts a delivery when it reads that answer, a moment later: wait
    # (bounded) for the counter to reach what the receivers got rather than read it at once
    answered = len(got) - len([1 for p, _, _ in got if p == "/fail"])
    dkey = 'hudong_webhook_deliveries_total{outcome="delivered"}'
    m0 = wait_until(lambda: (lambda mm: mm if mm.get(dkey, 0) >= answered else None)(metrics()), 10) or metrics()
    names = ["hudong_webhook_events_total", "hudong_webhook_queued", "hudong_webhook_attempts_total",
             'hudong_webhook_deliveries_total{outcome="delivered"}', 'hudong_webhook_deliveries_total{outcome="failed"}',
             'hudong_webhook_deliveries_total{outcome="dropped"}', "hudong_webhook_attempt_failures_total",
             "hudong_webhook_retries_total"]
    check(all(n in m0 for n in names), "/metrics has the webhook counters", [n for n in names if n not in m0])
    check(m0.get(dkey, 0) >= answered and m0.get("hudong_webhook_events_total", 0) > 0,
          "delivered and events counters count what the receivers got", m0)
    check(m0.get("hudong_webhook_attempt_failures_total", 0) >= 1 and m0.get("hudong_webhook_retries_total", 0) >= 1,
          "the 503 receiver shows up as attempt failures and retries",
          (m0.get("hudong_webhook_attempt_failures_total"), m0.get("hudong_webhook_retries_total")))
    wc = new_client("appA", "hook-c", "hooks-c")
    if wc:
        leave_by(wc, "leave")
        wc.close()
    key = 'hudong_webhook_deliveries_total{outcome="delivered"}'
    # room_started, participant_joined, participant_left, room_finished to /all
    m1 = wait_until(lambda: (lambda mm: mm if mm.get(key, 0) >= m0.get(key, 0) + 4 else None)(metrics()), 10)
    check(m1 is not None and m1.get("hudong_webhook_events_total", 0) >= m0.get("hudong_webhook_events_total", 0) + 4,
          "one more room's 4 events move events_total and delivered by 4", (m0.get(key), (m1 or {}).get(key)))


# ---------------------------------------------------------------- 6. room lifetime

def room_listed(adm, name):
    st, js, _ = api("GET", "/admin/rooms", adm)
    return next((r for r in (js or {}).get("rooms", []) if r.get("name") == name), None) if st == 200 else None


def test_room_lifetime(hooks):
    section("6. room lifetime: POST /admin/rooms, per-room cap and empty timeout")
    adm_a = mint("appA", "ops", None, admin=True, join=False)
    adm_b = mint("appB", "ops", None, admin=True, join=False)
    body = {"name": "pre", "empty_timeout_s": 2, "max_participants": 2, "metadata": "{\"topic\":\"demo\"}"}
    st, js, text = api("POST", "/admin/rooms", adm_a, body)
    ok = check(st == 201 and js is not None and js.get("name") == "pre" and str(js.get("sid", "")).startswith("RM_")
               and js.get("empty_timeout_s") == 2 and js.get("max_participants") == 2 and
               js.get("metadata") == body["metadata"] and js.get("participants") == 0 and
               isinstance(js.get("created_at"), int) and js.get("created_at") > 0,
               "POST /admin/rooms -> 201 with the room (sid, timeout, cap, metadata)", (st, text[:300]))
    if not ok:
        return
    sid = js["sid"]
    for b, tok, want, what in (
            (body, adm_a, 409, "the same room again"),
            ({"empty_timeout_s": 5}, adm_a, 400, "no name"),
            ({"name": "bad room!"}, adm_a, 400, "a bad room name"),
            ({"name": "x1", "empty_timeout_s": 0}, adm_a, 400, "empty_timeout_s 0"),
            ({"name": "x1", "empty_timeout_s": "5"}, adm_a, 400, "empty_timeout_s as a string"),
            ({"name": "x1", "max_participants": 0}, adm_a, 400, "max_participants 0"),
            ({"name": "x1", "metadata": "m" * 1024}, adm_a, 400, "metadata of 1024 bytes"),
            ({"name": "x1", "colour": "red"}, adm_a, 400, "an unknown member"),
            ({"name": "x1"}, None, 401, "no token"),
            ({"name": "x1"}, mint("appA", "u", "x1", publish=True), 403, "a token without roomAdmin"),
            ({"name": "x1"}, mint("appA", "ops", "other", admin=True, join=False), 403,
             "an admin token for another room")):
        st, js2, text = api("POST", "/admin/rooms", tok, b)
        check(st == want, "POST /admin/rooms with %s -> %d" % (what, want), (st, text[:200]))
    st, _, text = api("POST", "/admin/rooms", adm_a, "not json")
    check(st == 400, "POST /admin/rooms with a body that is not an object -> 400", (st, text[:200]))
    check(room_listed(adm_a, "x1") is None, "none of the refused requests created a room")
    # tenants: app B neither sees app A's room nor reaches it; its "pre" is its own
    check(room_listed(adm_b, "pre") is None, "app B's admin does not see app A's created room")
    st, jb, text = api("POST", "/admin/rooms", adm_b, {"name": "pre"})
    check(st == 400 and "empty_timeout_s" in text,
          "without empty_timeout_s on a node whose room_empty_timeout_s is 0 -> 400 (it would close at once)",
          (st, text[:200]))
    st, jb, text = api("POST", "/admin/rooms", adm_b, {"name": "pre", "empty_timeout_s": 1})
    check(st == 201 and jb.get("sid") != sid, "app B creates its own 'pre' (another sid)", (st, text[:200]))
    st, _, text = api("DELETE", "/admin/rooms/pre", adm_b)
    check(st == 200, "app B closes its own 'pre' at once", (st, text[:200]))
    r = room_listed(adm_a, "pre")
    check(r is not None and r.get("sid") == sid and r.get("participants") == 0 and r.get("closes_in_s") in (1, 2),
          "app A's 'pre' is untouched and listed while empty (closes_in_s)", r)

    # joins get the created room and its cap of 2
    u1 = new_client("appA", "u1", "pre")
    u2 = new_client("appA", "u2", "pre")
    if not (u1 and u2):
        return
    check(u1.joined["room"]["sid"] == sid and u1.joined["room"].get("max_participants") == 2,
          "joined: the created room's sid and its max_participants 2", u1.joined["room"])
    c3 = Client("u3")
    m = c3.join(mint("appA", "u3", "pre"))
    closed = c3.wait_closed()
    check(m is not None and m.get("type") == "error" and m.get("code") == 503 and m.get("reason") == "room_full" and
          closed is not None and closed[0] == "close" and closed[1] == 1013,
          "a third join -> 503 room_full (the room's own cap), closed 1013 (docs/protocol.md Connection)", (m, closed))
    c3.close()
    # everyone leaves: the room waits; a rejoin reuses it
    leave_by(u1, "leave")
    leave_by(u2, "close")
    gone = wait_until(lambda: (lambda r: r is not None and r.get("participants") == 0)(room_listed(adm_a, "pre")), 2)
    check(gone, "after the last leave the room is still listed, empty", room_listed(adm_a, "pre"))
    u4 = new_client("appA", "u4", "pre")
    if u4:
        check(u4.joined["room"]["sid"] == sid, "a rejoin within the timeout gets the same room sid",
              u4.joined["room"]["sid"])
        leave_by(u4, "vanish")
    t_left = time.time()
    closed = wait_until(lambda: room_listed(adm_a, "pre") is None, 10)
    check(closed and time.time() - t_left >= 1.0, "then the room closes about 2 s after the last leave (%.1f s)" %
          (time.time() - t_left))
    got = hooks.wait(lambda g: any(json.loads(b).get("event") == "room_finished" and
                                   json.loads(b).get("room", {}).get("sid") == sid for p, _, b in g if p == "/all"), 10)
    ev = [json.loads(b).get("event") for p, _, b in got if p == "/all" and
          json.loads(b).get("room", {}).get("sid") == sid]
    check(ev.count("room_started") == 1 and ev.count("room_finished") == 1 and ev[0] == "room_started" and
          ev[-1] == "room_finished" and ev.count("participant_joined") == 3,
          "webhooks of the room: one room_started, 3 joins, one room_finished at the end", ev)
    for c in (u1, u2):
        c.close()
    if u4:
        u4.close()


def test_default_timeout(tmp, hooks):
    """A node with room_empty_timeout_s 2 (the config key)."""
    global PORT
    section("6b. a node with room_empty_timeout_s 2")
    main_port = PORT
    proc, PORT, err = start_server(tmp, hooks, empty_timeout=2, name="hudong-timeout", leeway=0)
    try:
        # token_leeway_seconds applies to /rtc joins too: 0 here, the default 10 on the main node
        expect_join_error(mint("appA", "x", "lw", exp_in=-3), 401, "token_expired",
                          "token_leeway_seconds 0: a token expired 3 s ago")
        adm = mint("appA", "ops", None, admin=True, join=False)
        a = new_client("appA", "a", "lin")
        if not a:
            return
        sid = a.joined["room"]["sid"]
        leave_by(a, "leave")
        a.close()
        r = room_listed(adm, "lin")
        mm = metrics()
        check(r is not None and r.get("empty_timeout_s") == 2 and r.get("sid") == sid and
              mm.get("hudong_rooms") == 1 and mm.get("hudong_rooms_empty") == 1,
              "right after the last leave: still listed (empty_timeout_s 2), hudong_rooms_empty 1", (r, mm.get(
                  "hudong_rooms_empty")))
        b = new_client("appA", "b", "lin")
        if b:
            check(b.joined["room"]["sid"] == sid, "a join within 2 s reuses the room (same sid)")
            check(metrics().get("hudong_rooms_empty") == 0, "in use again: hudong_rooms_empty 0")
            leave_by(b, "leave")
            b.close()
        ok = wait_until(lambda: (lambda m: m.get("hudong_rooms") == 0 and m.get("hudong_rooms_empty") == 0)(
            metrics()), 10)
        check(ok, "then hudong_rooms goes to 0")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        check(rc == 0, "the second node exits 0 after SIGTERM", rc)
        err.seek(0)
        text = err.read().decode(errors="replace")
        check("Sanitizer" not in text and "runtime error" not in text, "no sanitizer report on the second node",
              text[-2000:])
        PORT = main_port


# ---------------------------------------------------------------- main

def main():
    global HUDONG, PORT
    HUDONG = sys.argv[1]
    seed = int(os.environ.get("HUDONG_TEST_SEED", str(int(time.time()))))
    print("# seed %d (HUDONG_TEST_SEED=%d to repeat)" % (seed, seed))
    rng = random.Random(seed)
    hooks = Hooks()
    tmp = tempfile.mkdtemp(prefix="test_rooms.")
    proc, PORT, err = start_server(tmp, hooks)
    try:
        for fn in (lambda: test_crowd(rng), test_tokens, test_messages, test_admin, lambda: test_webhooks(hooks),
                   lambda: test_room_lifetime(hooks), lambda: test_default_timeout(tmp, hooks)):
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - report and go on with the next part
                import traceback
                traceback.print_exc()
                check(False, "no exception in the test", repr(e))
        section("shutdown")
        last = new_client("appA", "last", "bye")
        proc.send_signal(signal.SIGTERM)
        if last:
            m = last.take("left")
            closed = last.wait_closed()
            check(m is not None and m.get("reason") == "server_shutdown" and closed is not None and
                  closed[0] == "close" and closed[1] == 1001, "SIGTERM: left server_shutdown, then close 1001",
                  (m, closed))
            last.close()
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "hudong serve exits 0 after SIGTERM", rc)
        err.seek(0)
        text = err.read().decode(errors="replace")
        check("Sanitizer" not in text and "runtime error" not in text, "no sanitizer report (LeakSanitizer clean)",
              text[-3000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        hooks.srv.shutdown()
    print("# %.1f s" % (time.time() - T0))
    if FAILS:
        err.seek(0)
        lines = err.read().decode(errors="replace").splitlines()
        print("# ---- hudong serve stderr (last 40 lines)")
        for ln in lines[-40:]:
            print("# " + ln)
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
