#!/usr/bin/python3
"""Churn soak (issue 12 item 10): does the node's memory stay flat while clients
come and go for a long time?

Starts `hudong serve --dev` on free 127.0.0.1 ports and keeps it busy with
churn from several threads, each cycle:
  - /rtc: connect, join a room (10 rooms), ping, then leave, or drop the TCP
    connection without a close frame (every other time);
  - /rtm: log in, subscribe, publish one stored message, log out or cut;
  - WHIP: POST an offer (a session is created), DELETE it;
  - HTTP: /healthz, /metrics, a 404, an invalid Content-Length (400), a
    connection that sends half a head and goes away.
RSS (VmRSS of the node) is sampled every --sample seconds and printed; at the
end the slope after the warm-up (least squares, KB/min) is printed and
everything is written as JSON (--out). Bounded in time: --minutes (default 30).

    python3 bench/soak_churn.py --hudong build/hudong --minutes 30
    # leak check: an ASan build, short run, LeakSanitizer report from the node's exit
    ASAN_OPTIONS=detect_leaks=1 python3 bench/soak_churn.py --hudong build-asan/hudong --minutes 2

Exit status 0 when the run completed (and, under ASan, no leak was reported);
the slope is a number to read, not a pass/fail (allocator warm-up varies).
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from wsclient import WS  # noqa: E402  (stdlib RFC 6455 client shared with the tests)

OFFER = open(os.path.join(HERE, "..", "tests", "integration", "data", "chrome_offer.sdp")).read()


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(identity, grants, ttl=3600):
    now = int(time.time())
    claims = {"iss": "devkey", "sub": identity, "iat": now, "exp": now + ttl, "grants": grants}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}') + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    return head + "." + b64u(hmac.new(b"devsecret", head.encode(), hashlib.sha256).digest())


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http(port, data, wait=2.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
            m = re.search(rb"content-length: (\d+)\r\n", out, re.I)
            if m and b"\r\n\r\n" in out and len(out.split(b"\r\n\r\n", 1)[1]) >= int(m.group(1)):
                break
        return out
    finally:
        s.close()


class Churn:
    def __init__(self, port):
        self.port = port
        self.counts = {}
        self.errors = 0
        self.stop = False
        self.lock = threading.Lock()

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def rtc(self, i):
        ws = WS(self.port, "/rtc", timeout=5)
        ws.send_text(json.dumps({"type": "join", "id": "j", "token": mint(
            "u%d" % i, {"room": "soak%d" % (i % 10), "roomJoin": True, "canSubscribe": True,
                        "canPublishData": True})}))
        m = ws.recv()
        if m[0] != "text" or json.loads(m[1]).get("type") != "joined":
            raise RuntimeError("join: %r" % (m,))
        ws.send_text(json.dumps({"type": "ping", "id": "p", "t": i}))
        if i % 2:
            ws.send_text(json.dumps({"type": "leave", "id": "l"}))
            ws.close()
        else:
            ws.sock.close()  # vanish without a close frame
        self.count("rtc")

    def rtm(self, i):
        ws = WS(self.port, "/rtm", timeout=5)
        ws.send_text(json.dumps({"type": "login", "id": "l", "token": mint("r%d" % i, {"rtm": True})}))
        ws.send_text(json.dumps({"type": "sub", "id": "s", "ch": "soak%d" % (i % 20)}))
        ws.send_text(json.dumps({"type": "pub", "id": "p", "ch": "soak%d" % (i % 20), "data": "x" * 200,
                                 "store": True}))
        deadline = time.time() + 5
        while time.time() < deadline:
            m = ws.recv()
            if m[0] != "text":
                break
            if json.loads(m[1]).get("id") == "p":
                break
        if i % 2:
            ws.send_text(json.dumps({"type": "logout", "id": "o"}))
            ws.close()
        else:
            ws.sock.close()
        self.count("rtm")

    def whip(self, i):
        tok = mint("w%d" % i, {"room": "whip%d" % i, "roomJoin": True, "canPublish": True})
        body = OFFER.encode()
        r = http(self.port, ("POST /whip/whip%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer %s"
                             "\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n" %
                             (i, tok, len(body))).encode() + body)
        m = re.search(rb"\r\nLocation: (\S+)\r\n", r, re.I)
        if not r.startswith(b"HTTP/1.1 201") or not m:
            raise RuntimeError("whip: %r" % r[:200])
        http(self.port, b"DELETE " + m.group(1) + (" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                                   "Authorization: Bearer %s\r\n\r\n" % tok).encode())
        self.count("whip")

    def misc(self, i):
        http(self.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        http(self.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        http(self.port, b"GET /nope-%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
        http(self.port, b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello")
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost:")
        s.close()
        self.count("http")

    def worker(self, seed):
        rnd = random.Random(seed)
        i = seed * 1000000
        while not self.stop:
            i += 1
            what = rnd.choice((self.rtc, self.rtc, self.rtm, self.rtm, self.whip, self.misc))
            try:
                what(i)
            except Exception as e:  # noqa: BLE001 - counted and reported, the soak goes on
                with self.lock:
                    self.errors += 1
                    if self.errors <= 5:
                        print("  churn error (%s): %s" % (what.__name__, e), file=sys.stderr)
                time.sleep(0.2)


def rss_kb(pid):
    for ln in open("/proc/%d/status" % pid):
        if ln.startswith("VmRSS"):
            return int(ln.split()[1])
    return 0


def slope_kb_per_min(samples):
    if len(samples) < 3:
        return 0.0
    xs = [t / 60.0 for t, _ in samples]
    ys = [r for _, r in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hudong", default=os.path.join(HERE, "..", "build", "hudong"))
    ap.add_argument("--minutes", type=float, default=30.0, help="length of the run (default 30)")
    ap.add_argument("--threads", type=int, default=4, help="churning client threads (default 4)")
    ap.add_argument("--sample", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    ap.add_argument("--warmup", type=float, default=-1,
                    help="minutes left out of the slope (default: a fifth of the run, at most 5)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "soak_churn.json"))
    a = ap.parse_args()
    warm = a.warmup if a.warmup >= 0 else min(5.0, a.minutes / 5)
    port, rtc = free_port(), free_port()
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    node = subprocess.Popen([a.hudong, "serve", "--dev", "--listen", "127.0.0.1:%d" % port, "--rtc-port",
                             str(rtc), "--rtm-db", ":memory:", "--room-empty-timeout", "0"],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(200):
        try:
            if b"200 OK" in http(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"):
                break
        except OSError:
            time.sleep(0.05)
    c = Churn(port)
    threads = [threading.Thread(target=c.worker, args=(k + 1,), daemon=True) for k in range(a.threads)]
    for t in threads:
        t.start()
    t0 = time.time()
    samples = []
    print("soak_churn: %s for %.1f min, %d threads, sampling every %.0f s" %
          (a.hudong, a.minutes, a.threads, a.sample))
    print("%8s %10s  %s" % ("t (s)", "RSS (KB)", "cycles so far"))
    try:
        while time.time() - t0 < a.minutes * 60 and node.poll() is None:
            time.sleep(min(a.sample, max(0.1, a.minutes * 60 - (time.time() - t0))))
            t, r = time.time() - t0, rss_kb(node.pid)
            samples.append((round(t, 1), r))
            print("%8.0f %10d  %s" % (t, r, dict(c.counts)), flush=True)
    finally:
        c.stop = True
        for t in threads:
            t.join(10)
        node.send_signal(signal.SIGTERM)
        try:
            rc = node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
            rc = node.wait()
    out = open(log.name).read()
    os.unlink(log.name)
    leak = "LeakSanitizer" in out or "ERROR: AddressSanitizer" in out
    after = [(t, r) for t, r in samples if t >= warm * 60]
    res = {
        "hudong": a.hudong, "minutes": a.minutes, "threads": a.threads, "warmup_minutes": warm,
        "cycles": c.counts, "churn_errors": c.errors, "samples": [{"t": t, "rss_kb": r} for t, r in samples],
        "rss_first_kb": samples[0][1] if samples else 0, "rss_last_kb": samples[-1][1] if samples else 0,
        "slope_after_warmup_kb_per_min": round(slope_kb_per_min(after), 1),
        "node_exit": rc, "sanitizer_report": leak,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print("cycles %s, churn errors %d" % (c.counts, c.errors))
    print("RSS %d KB -> %d KB; slope after %.1f min warm-up: %+.1f KB/min; node exit %d%s" %
          (res["rss_first_kb"], res["rss_last_kb"], warm, res["slope_after_warmup_kb_per_min"], rc,
           "; SANITIZER REPORT (see below)" if leak else ""))
    if leak:
        print(out[-6000:])
    print("written", a.out)
    return 0 if rc == 0 and not leak else 1


if __name__ == "__main__":
    sys.exit(main())
