#!/usr/bin/python3
"""Signaling under a join storm (issue 17: at bench/forwarding live 800 the node
brought up 0/800 subscriber legs, "signaling message dropped (connection
closing or full)"). N WebSocket participants (default 400) join one room as
fast as one client process can send their joins; every member is told about
every later joiner, so the room's events are O(N^2) messages (80,000 at 400)
produced in a few loop turns of the room's worker.

Checks: every connection gets `joined`; every member's view (its `joined`
snapshot plus the participant_joined events after it) ends up holding all N
participants, nothing missed and nothing twice; the node closes no connection;
its log has no "dropped" line and /metrics shows no worker outbox drops.
The clients read everything as it arrives (one selector loop), so a loss
here is the node's, not a slow consumer's.

usage: test_join_storm.py /path/to/hudong [N]
"""
import base64
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, free_port, http_json, jwt_hs256  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 400
KEY, SECRET = "appS", "secret-of-the-storm-app-0123456789"
ROOM = "storm"


def token(identity, admin=False):
    now = int(time.time())
    grants = {"room": ROOM, "roomJoin": True, "canSubscribe": True}
    if admin:
        grants = {"roomAdmin": True}
    return jwt_hs256(SECRET, {"iss": KEY, "sub": identity, "iat": now, "exp": now + 600, "grants": grants})


class Conn:
    """One non-blocking RFC 6455 client connection (masked text frames out,
    unmasked frames in), driven by the selector loop in main()."""

    def __init__(self, port, i):
        self.i = i
        self.identity = "p%04d" % i
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /rtc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                           % (port, key)).encode())
        self.sock.setblocking(False)
        self.buf = b""
        self.upgraded = False
        self.closed = None
        self.sid = None
        self.view = set()  # participant sids this member knows of (itself included)
        self.dups = 0
        self.errors = []

    def send_text(self, s):
        data = s.encode()
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x81])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        body = bytes(b ^ mask[k % 4] for k, b in enumerate(data))
        self.sock.setblocking(True)
        self.sock.sendall(hdr + mask + body)
        self.sock.setblocking(False)

    def on_readable(self):
        try:
            d = self.sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError as e:
            self.closed = ("error", str(e))
            return
        if not d:
            self.closed = self.closed or ("eof",)
            return
        self.buf += d
        if not self.upgraded:
            if b"\r\n\r\n" not in self.buf:
                return
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            if b" 101 " not in head.split(b"\r\n")[0]:
                self.closed = ("refused", head.split(b"\r\n")[0].decode(errors="replace"))
                return
            self.upgraded = True
        while len(self.buf) >= 2:
            op, ln, h = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if ln == 126:
                if len(self.buf) < 4:
                    return
                ln, h = struct.unpack("!H", self.buf[2:4])[0], 4
            elif ln == 127:
                if len(self.buf) < 10:
                    return
                ln, h = struct.unpack("!Q", self.buf[2:10])[0], 10
            if len(self.buf) < h + ln:
                return
            payload, self.buf = self.buf[h:h + ln], self.buf[h + ln:]
            if op == 0x1:
                self.on_message(json.loads(payload.decode()))
            elif op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.closed = ("close", code, payload[2:].decode(errors="replace"))
            elif op == 0x9:  # ping: pong with the same payload
                mask = os.urandom(4)
                body = bytes(b ^ mask[k % 4] for k, b in enumerate(payload))
                self.sock.setblocking(True)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + body)
                self.sock.setblocking(False)

    def on_message(self, m):
        t = m.get("type")
        if t == "joined":
            self.sid = m["participant"]["sid"]
            self.view = {self.sid} | {p["sid"] for p in m.get("participants", [])}
        elif t == "participant_joined":
            sid = m["participant"]["sid"]
            if sid in self.view:
                self.dups += 1
            self.view.add(sid)
        elif t == "participant_left":
            self.view.discard(m["participant"]["sid"])
        elif t == "error":
            self.errors.append(m)


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-storm-it-")
    port = free_port()
    cfg = os.path.join(tmp, "hudong.json")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}], "max_sessions": 100000,
                   "max_viewers_per_room": 100000}, f)
    log = open(os.path.join(tmp, "node.log"), "w+")
    p = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                          "--rtm-db", ":memory:", "--room-empty-timeout", "0"],
                         stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, HUDONG_LOG="info"))
    conns = []
    try:
        for _ in range(200):
            try:
                if http_json(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        st = http_json(port, "POST", "/admin/rooms", token("ops", admin=True),
                       {"name": ROOM, "max_participants": N + 10, "empty_timeout_s": 600})[0]
        check(st == 201, "room %s created for %d participants" % (ROOM, N), st)
        sel = selectors.DefaultSelector()
        for i in range(N):
            c = Conn(port, i)
            conns.append(c)
            sel.register(c.sock, selectors.EVENT_READ, c)

        def pump(until, done):
            while time.time() < until and not done():
                for key, _ in sel.select(0.05):
                    key.data.on_readable()

        pump(time.time() + 30, lambda: all(c.upgraded or c.closed for c in conns))
        check(all(c.upgraded for c in conns), "all %d WebSocket upgrades answered 101" % N,
              [c.closed for c in conns if not c.upgraded][:3])
        t0 = time.time()
        for c in conns:  # the storm: every join back to back, nothing read in between
            c.send_text(json.dumps({"type": "join", "id": "j", "token": token(c.identity)}))
        t_sent = time.time() - t0
        pump(time.time() + 90, lambda: all(c.closed or len(c.view) >= N for c in conns))
        t_all = time.time() - t0
        print("# %d joins sent in %.2f s; every view complete after %.2f s" % (N, t_sent, t_all))
        joined = sum(1 for c in conns if c.sid)
        check(joined == N, "every connection got `joined` (%d/%d)" % (joined, N),
              [(c.identity, c.closed, c.errors[:1]) for c in conns if not c.sid][:3])
        closed = [(c.identity, c.closed) for c in conns if c.closed]
        check(not closed, "the node closed no connection during the storm", closed[:5])
        short = [(c.identity, len(c.view)) for c in conns if len(c.view) < N]
        check(not short, "every member's view holds all %d participants" % N, short[:5])
        check(sum(c.dups for c in conns) == 0, "no participant_joined twice", sum(c.dups for c in conns))
        errs = [e for c in conns for e in c.errors]
        check(not errs, "no error replies", errs[:3])
        st, _, text = http_json(port, "GET", "/metrics")
        drops = [ln for ln in (text or "").splitlines()
                 if ln.startswith(("hudong_worker_outbox_dropped_total", "hudong_rtc_signal_dropped_total"))
                 and not ln.endswith(" 0")]
        check(not drops, "/metrics: no signaling output dropped", drops)
        closes = [ln for ln in (text or "").splitlines()
                  if ln.startswith('hudong_ws_closes_total{path="/rtc",reason="slow"}') and not ln.endswith(" 0")]
        check(not closes, "/metrics: no /rtc connection closed as a slow consumer", closes)
    finally:
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass
        p.terminate()
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        log.seek(0)
        text = log.read()
        dropped = [ln for ln in text.splitlines() if "dropped" in ln]
        check(not dropped, "node log: nothing dropped", dropped[:5])
        sanit = [ln for ln in text.splitlines() if "Sanitizer" in ln or "runtime error" in ln]
        check(not sanit, "no sanitizer report", sanit[:5])
    if FAILS:
        print("FAILED: %d check(s)" % len(FAILS))
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
