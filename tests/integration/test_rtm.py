#!/usr/bin/python3
"""Integration test of real-time messaging over /rtm (docs/rtm.md) against a
real `hudong serve --dev` with a SQLite store in a temp dir. Standard library
only; the handshake comes from tests/integration/wsclient.py, frames are then
read with one selector loop (1,000 threads would not fit 2 cores).

 1. load: N clients (default 1000, env RTM_CLIENTS) log in, each subscribes to
    one of N/100 channels and publishes K messages to it, while connections are
    cut at random (socket closed without a close frame) and resumed with
    {resume token, last seq}; unacked publishes are retried with the same id.
    Every subscriber must receive every message of its channel exactly once,
    in cseq order, and every publish gets an ok.
 2. bad input: malformed JSON, unknown type, over the 32 KB cap, no rtm grant,
    a flood; each gets its coded error, the node stays up, others unaffected.
 3. restart: stored messages, an attribute and a lock written before SIGTERM
    are there after a restart on the same database.

usage: test_rtm.py /path/to/hudong
"""
import hashlib
import hmac
import json
import os
import random
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from hdtest import FAILS, b64u, check, free_port  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
N = int(os.environ.get("RTM_CLIENTS", "1000"))
K = int(os.environ.get("RTM_MSGS", "3"))
PER_CHAN = 100
T0 = time.time()


def mint(identity, rtm=True, admin=False, exp_in=3600):
    now = int(time.time())
    grants = {}
    if rtm:
        grants["rtm"] = True
    if admin:
        grants["roomAdmin"] = True
    claims = {"iss": "devkey", "sub": identity, "iat": now, "exp": now + exp_in, "grants": grants}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}')
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(b"devsecret", (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def start(port, db):
    p = subprocess.Popen([HUDONG, "serve", "--dev", "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                          "--rtm-db", db], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("hudong serve did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        err = p.communicate(timeout=20)[1].decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        err = p.communicate()[1].decode(errors="replace")
    return p.returncode, err


class Client:
    """One RTM client: frames from a non-blocking read buffer, the reliability
    rules of docs/rtm.md (dedupe by s, ack every 16, resume with last)."""

    def __init__(self, port, idx, ch):
        self.port, self.idx, self.ch = port, idx, ch
        self.user = "u%d" % idx
        self.ws = None
        self.last_s = 0
        self.acked = 0
        self.resume = None
        self.got = []  # (cseq, from, data) of channel messages, in arrival order
        self.pending = {}  # publish id -> data, until its ok
        self.acks = {}  # publish id -> cseq
        self.sent = 0
        self.state = "new"
        self.errors = []
        self.cuts = 0
        self.log = []

    def connect(self, sel):
        self.ws = WS(self.port, "/rtm")
        # non-blocking from here: a send never stalls the loop (the node may
        # stop reading a connection whose outbound side is congested)
        self.ws.sock.setblocking(False)
        self.out = b""
        self.sel = sel
        sel.register(self.ws.sock, selectors.EVENT_READ, self)
        self.log.append(("connect", round(time.time() - T0, 2)))
        if self.resume:
            self.send({"type": "login", "resume": self.resume, "last": self.last_s})
        else:
            self.send({"type": "login", "token": mint(self.user)})
        self.state = "login"

    def send(self, o):
        self.send_frame(1, json.dumps(o, separators=(",", ":")).encode())

    def send_frame(self, op, payload):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([0x80 | op]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
                                     if n < 65536 else bytes([0x80 | 127]) + struct.pack("!Q", n))
        m = (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big") \
            if n else b""
        self.out += hdr + mask + m
        self.flush()

    def flush(self):
        if not self.ws:
            return
        try:
            while self.out:
                k = self.ws.sock.send(self.out)
                self.out = self.out[k:]
        except BlockingIOError:
            pass
        except OSError:
            self.out = b""
        ev = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.out else 0)
        self.sel.modify(self.ws.sock, ev, self)

    def cut(self, sel):
        sel.unregister(self.ws.sock)
        self.ws.sock.close()  # no close frame: like a dropped network
        self.ws = None
        self.state = "cut"
        self.cuts += 1
        self.log.append(("cut", round(time.time() - T0, 2)))

    def frames(self):
        buf = self.ws.buf
        out = []
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, off = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, off = struct.unpack("!H", buf[2:4])[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, off = struct.unpack("!Q", buf[2:10])[0], 10
            if len(buf) < off + n:
                break
            out.append((b0 & 0x0F, buf[off:off + n]))
            buf = buf[off + n:]
        self.ws.buf = buf
        return out

    def on_event(self, sel, mask):
        if mask & selectors.EVENT_WRITE:
            self.flush()
        if mask & selectors.EVENT_READ and self.ws:
            self.on_readable(sel)

    def on_readable(self, sel):
        try:
            d = self.ws.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            d = b""
        if not d:
            self.cut(sel)
            return
        self.ws.buf += d
        for op, payload in self.frames():
            if op == 9:
                self.send_frame(10, payload)
            elif op == 8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.errors.append(("close", code))
                self.cut(sel)
                return
            elif op == 1:
                self.on_msg(json.loads(payload.decode()))
        if self.ws and self.last_s - self.acked >= 16:
            self.acked = self.last_s
            self.send({"type": "ack", "s": self.last_s})

    def on_msg(self, m):
        t = m["type"]
        if t == "welcome":
            self.resume = m["resume"]
            if not m["resumed"]:
                self.send({"type": "sub", "id": "sub", "ch": self.ch})
            else:
                for pid, data in list(self.pending.items()):  # retry: the node dedupes by id
                    self.send({"type": "pub", "id": pid, "ch": self.ch, "data": data})
            self.state = "up"
            return
        if "s" not in m:
            self.log.append(("err", round(time.time() - T0, 2)))
            self.errors.append(m)
            return
        if m["s"] <= self.last_s:
            return  # a replay we already had
        if m["s"] != self.last_s + 1:
            self.errors.append(("gap", self.last_s, m["s"]))
        self.last_s = m["s"]
        if t == "msg":
            self.got.append((m["cseq"], m["from"], m["data"]))
        elif t == "ok" and m.get("id", "").startswith("p"):
            self.pending.pop(m["id"], None)
            self.acks[m["id"]] = m["cseq"]
        elif t == "ok" and m.get("id") == "sub":
            self.state = "subbed"
        elif t == "error":
            self.errors.append(m)


def metrics(port):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    return c.getresponse().read().decode()


def load_test(port):
    print("# ---- load: %d clients, %d channels, %d messages each (t=%.1f s)" % (N, max(1, N // PER_CHAN), K,
                                                                          time.time() - T0))
    sel = selectors.DefaultSelector()
    clients = [Client(port, i, "load%d" % (i // PER_CHAN)) for i in range(N)]
    for c in clients:
        c.connect(sel)
    rnd = random.Random(42)

    def pump(t):
        for key, mask in sel.select(t):
            key.data.on_event(sel, mask)

    deadline = time.time() + 30
    while time.time() < deadline and any(c.state not in ("subbed",) for c in clients):
        pump(0.05)
    check(all(c.state == "subbed" for c in clients), "all %d clients logged in and subscribed" % N,
          [c.errors for c in clients if c.state != "subbed"][:3])
    # publish while connections are cut and resumed at random
    seq = 0
    deadline = time.time() + 60
    while time.time() < deadline:
        busy = False
        for c in clients:
            if c.state == "cut" and rnd.random() < 0.3:
                c.connect(sel)
            if c.state in ("subbed", "up") and c.sent < K:
                pid = "p%d" % c.sent
                data = "%s-%d" % (c.user, c.sent)
                c.pending[pid] = data
                c.sent += 1
                seq += 1
                c.send({"type": "pub", "id": pid, "ch": c.ch, "data": data})
                if rnd.random() < 0.05:
                    c.cut(sel)
            busy |= c.sent < K or bool(c.pending) or c.state == "cut"
        pump(0.02)
        if not busy:
            break
    # drain: everyone resumed and all publishes acked; then final acks
    for c in clients:
        if c.state == "cut":
            c.connect(sel)
    want = {}
    for c in clients:
        want.setdefault(c.ch, 0)
        want[c.ch] += K
    end = time.time() + 30
    while time.time() < end:
        pump(0.05)
        if all(c.state != "cut" and not c.pending and len(c.got) >= want[c.ch] for c in clients):
            break
        for c in clients:
            if c.state == "cut":
                c.connect(sel)
    cuts = sum(c.cuts for c in clients)
    print("# " + " ".join(ln for ln in metrics(port).splitlines() if ln.startswith("hudong_rtm_")))
    print("# %d publishes, %d connection cuts, t=%.1f s" % (seq, cuts, time.time() - T0))
    check(cuts > 0, "connections were cut during the run", cuts)
    check(all(not c.pending for c in clients), "every publish got an ok",
          [(c.user, c.pending, c.state, c.errors[:3], c.log) for c in clients if c.pending][:5])
    # expected stream per channel: the acked (cseq, from, data), by cseq
    per_ch = {}
    for c in clients:
        for pid, cseq in c.acks.items():
            per_ch.setdefault(c.ch, []).append((cseq, c.user, "%s-%s" % (c.user, pid[1:])))
    for v in per_ch.values():
        v.sort()
    bad = [c.user for c in clients if c.got != per_ch.get(c.ch)]
    check(not bad, "every subscriber received every message of its channel exactly once, in order",
          bad[:5] and (bad[:5], clients[int(bad[0][1:])].got[:5], per_ch.get(clients[int(bad[0][1:])].ch, [])[:5]))
    gaps = [e for c in clients for e in c.errors if isinstance(e, tuple) and e[0] == "gap"]
    check(not gaps, "no session sequence gaps", gaps[:5])
    cseqs_ok = all([x[0] for x in v] == list(range(v[0][0], v[0][0] + len(v))) for v in per_ch.values())
    check(cseqs_ok, "channel sequence numbers are contiguous")
    for c in clients:
        if c.ws:
            c.send({"type": "logout"})
    for c in clients:
        if c.ws:
            sel.unregister(c.ws.sock)
            c.ws.close()


def rt(ws, o, want_type=None, timeout=5):
    if o is not None:
        ws.send_text(json.dumps(o))
    end = time.time() + timeout
    while time.time() < end:
        r = ws.recv()
        if r[0] != "text":
            return r
        m = json.loads(r[1])
        if want_type is None or m["type"] == want_type:
            return m
    return None


def login(port, user, admin=False):
    ws = WS(port, "/rtm")
    m = rt(ws, {"type": "login", "id": "l", "token": mint(user, admin=admin)}, "welcome")
    assert m and m["type"] == "welcome", m
    return ws


def bad_input(port):
    print("# ---- bad input (t=%.1f s)" % (time.time() - T0))
    ws = login(port, "bad")
    other = login(port, "good")
    rt(other, {"type": "sub", "id": "s", "ch": "calm"}, "ok")
    for text, code, what in (("{not json", 400, "malformed JSON"), ('{"type":"teleport","id":"x"}', 400, "unknown type"),
                             (json.dumps({"type": "pub", "ch": "c", "data": "x" * 40000}), 413, "over 32 KB"),
                             ('{"type":"pub","ch":"c"}', 400, "missing field")):
        ws.send_text(text)
        m = rt(ws, None, "error")
        check(m and m["code"] == code, "%s -> %d" % (what, code), m)
    nog = WS(port, "/rtm")
    m = rt(nog, {"type": "login", "token": mint("x", rtm=False)}, "error")
    check(m and m["code"] == 403, "login without the rtm grant -> 403", m)
    r = nog.recv()
    check(r[0] == "close" and r[1] == 4001, "... and close 4001", r)
    for i in range(400):
        ws.send_text(json.dumps({"type": "pub", "id": "f%d" % i, "ch": "flood", "data": "x"}))
    n429 = 0
    end = time.time() + 5
    while time.time() < end:
        m = rt(ws, None, None, 2)
        if not isinstance(m, dict):
            break
        if m.get("type") == "error" and m["code"] == 429:
            n429 += 1
        if m.get("id") == "f399":
            break
        if m.get("s", 0) % 64 == 0 and "s" in m:
            ws.send_text(json.dumps({"type": "ack", "s": m["s"]}))
    check(n429 > 0, "a flood gets 429 rate_limited errors", n429)
    m = rt(other, {"type": "pub", "id": "c1", "ch": "calm", "data": "still here"}, "msg")
    check(m and m["data"] == "still here", "other clients are unaffected", m)
    ws.close()
    other.close()
    nog.close()


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-rtm-")
    db = os.path.join(tmp, "rtm.db")
    port = free_port()
    p = start(port, db)
    try:
        load_test(port)
        bad_input(port)
        print("# ---- restart (t=%.1f s)" % (time.time() - T0))
        a = login(port, "keeper", admin=True)
        for i in range(5):
            rt(a, {"type": "pub", "id": "h%d" % i, "ch": "keep", "data": "stored %d" % i, "store": True}, "ok")
        m = rt(a, {"type": "attr_set", "id": "a", "ch": "keep", "key": "topic", "value": "persist", "rev": 0}, "ok")
        check(m and m["rev"] == 1, "attribute set", m)
        m = rt(a, {"type": "lock_acquire", "id": "k", "ch": "keep", "name": "seat1", "ttl": 600000}, "ok")
        check(m and m.get("exp"), "lock acquired", m)
        a.close()
    finally:
        rc, err = stop(p)
    check(rc == 0, "node exits 0 on SIGTERM", err[-2000:])
    check("ERROR: AddressSanitizer" not in err and "runtime error" not in err, "no sanitizer report", err[-2000:])
    p = start(port, db)
    try:
        b = login(port, "reader")
        m = rt(b, {"type": "hist", "id": "h", "ch": "keep", "limit": 10}, "ok")
        check(m and [x["data"] for x in m["msgs"]] == ["stored %d" % i for i in range(5)],
              "history survives a restart", m)
        m = rt(b, {"type": "attr_get", "id": "g", "ch": "keep"}, "ok")
        check(m and m["attrs"] == [{"key": "topic", "value": "persist", "rev": 1}], "attributes survive a restart", m)
        m = rt(b, {"type": "lock_get", "id": "l", "ch": "keep"}, "ok")
        check(m and [x["owner"] for x in m["locks"]] == ["keeper"], "locks survive a restart", m)
        m = rt(b, {"type": "lock_acquire", "id": "l2", "ch": "keep", "name": "seat1"}, "error")
        check(m and m["code"] == 409 and m["owner"] == "keeper", "... and are still enforced", m)
        m = rt(b, {"type": "pub", "id": "n", "ch": "keep", "data": "new"}, "ok")
        check(m and m["cseq"] > 5, "channel sequence continues after a restart", m)
        b.close()
    finally:
        rc, err = stop(p)
    check(rc == 0, "node exits 0 after the restart run", err[-2000:])
    print("# done in %.1f s: %d failure(s)" % (time.time() - T0, len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
