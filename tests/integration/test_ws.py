#!/usr/bin/python3
"""Integration test of the WebSocket endpoint API (src/io/ws.h) against
tests/integration/ws_echo_server.c, with a minimal RFC 6455 client written here
on the standard library only (masking §5.3, fragmentation §5.4, control frames
§5.5, close codes §7.4).

Checks: echo round trip (incl. non-ASCII and a fragmented message), 1000
messages in order, the 64 KiB inbound cap (exactly the cap passes, one byte
more closes with 1009, also when it arrives in fragments), binary -> 1003,
invalid UTF-8 -> 1007, refusals with an HTTP status and body (404 unknown path,
403, 401 with WWW-Authenticate), broadcast, a slow consumer closed by the
outbound cap (1008) with the server's queue never above its cap, idle timeout
(1001) for a peer that does not answer pings while one that does stays up, 200
concurrent connections (half closed cleanly, half dropped) with the open gauge
back at 0, /metrics, and SIGTERM closing every client with 1001 before the
server exits 0 with no sanitizer report.

usage: test_ws.py /path/to/ws_echo_server
"""
import hashlib
import http.client
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


from wsclient import WS, Rejected  # the shared stdlib RFC 6455 client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check  # noqa: E402


class Server:
    def __init__(self, binary):
        self.binary = binary
        self.err = tempfile.TemporaryFile()
        for _ in range(5):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
            self.proc = subprocess.Popen([binary, str(self.port)], stdout=subprocess.PIPE, stderr=self.err)
            line = self.proc.stdout.readline()
            if line.strip() == b"ready":
                return
            self.proc.wait()
        raise RuntimeError("ws_echo_server did not start")

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read().decode()
        c.close()
        return r.status, body

    def stats(self):
        out = {}
        for ln in self.get("/stats")[1].splitlines():
            p, k, v = ln.split()
            out[(p, k)] = int(v)
        return out

    def wait_stat(self, path, key, want, timeout=5.0):
        t0 = time.time()
        while True:
            v = self.stats().get((path, key))
            if v == want or time.time() - t0 > timeout:
                return v
            time.sleep(0.05)

    def stderr_text(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


def expect_reject(port, path, headers=None):
    try:
        WS(port, path, headers).close()
    except Rejected as r:
        return r
    return None


def main():
    srv = Server(sys.argv[1])
    port = srv.port
    try:
        run(srv, port)
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()
    if FAILS:
        print("---- server stderr ----")
        print(srv.stderr_text()[-4000:])
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)
    print("all checks passed")


def run(srv, port):
    # ---- echo round trip, non-ASCII, fragments
    ws = WS(port, "/echo", {"Origin": "http://example.test"})
    ws.send_text("hello")
    check(ws.recv() == ("text", "hello"), "echo round trip")
    ws.send_text("互动 ✓")
    check(ws.recv() == ("text", "互动 ✓"), "echo of UTF-8 text")
    ws.send_frame(1, b"frag", fin=False)
    ws.send_frame(0, b"men", fin=False)
    ws.send_frame(9, b"p")  # a ping between fragments (§5.4)
    ws.send_frame(0, b"ted", fin=True)
    r = ws.recv()
    check(r == ("text", "fragmented"), "fragments are reassembled into one message", r)
    ws.send_text("")
    check(ws.recv() == ("text", ""), "empty message echoes")

    # ---- 1000 messages in order (pipelined)
    for i in range(1000):
        ws.send_text("m%d" % i)
    got = [ws.recv() for _ in range(1000)]
    check(got == [("text", "m%d" % i) for i in range(1000)], "1000 messages echoed in order")

    # ---- inbound cap: 64 KiB passes, one byte more closes with 1009
    big = "a" * 65536
    ws.send_text(big)
    r = ws.recv()
    check(r[0] == "text" and len(r[1]) == 65536, "a message of exactly 64 KiB passes")
    ws.send_text(big + "b")
    r = ws.recv()
    check(r[0] == "close" and r[1] == 1009 and "exceeds" in r[2], "a message over the cap closes with 1009", r)
    ws.close()
    ws = WS(port, "/echo")
    for _ in range(3):
        ws.send_frame(1 if _ == 0 else 0, b"x" * 30000, fin=False)
    r = ws.recv()
    check(r[0] == "close" and r[1] == 1009, "fragments adding up over the cap close with 1009", r)
    ws.close()

    # ---- binary and invalid UTF-8
    ws = WS(port, "/echo")
    ws.send_frame(2, b"\x00\x01\x02")
    r = ws.recv()
    check(r[0] == "close" and r[1] == 1003, "a binary frame closes with 1003", r)
    ws.close()
    ws = WS(port, "/echo")
    ws.send_frame(1, b"\xff\xfe")
    r = ws.recv()
    check(r[0] in ("close", "eof") and (r[0] == "eof" or r[1] == 1007), "invalid UTF-8 is refused (1007)", r)
    ws.close()

    # ---- refusals carry an HTTP status and a body
    r = expect_reject(port, "/nope")
    check(r is not None and r.status == 404 and "/nope" in r.body, "unknown path -> 404 with body",
          r and (r.status, r.body))
    r = expect_reject(port, "/echo?x=1&reject=1", {"Origin": "http://evil.test"})
    check(r is not None and r.status == 403 and "evil.test" in r.body,
          "on_open refusal -> 403; query and Origin reach on_open", r and (r.status, r.body))
    r = expect_reject(port, "/echo?auth=1")
    check(r is not None and r.status == 401 and "www-authenticate" in r.headers, "401 with WWW-Authenticate",
          r and (r.status, r.headers))
    r = expect_reject(port, "/echo?auth=1", {"Authorization": "Bearer good"})
    check(r is None, "Authorization header reaches on_open (accepted)")
    r = expect_reject(port, "/echo", {"Sec-WebSocket-Protocol": "chat"})
    check(r is not None and r.status == 400 and "subprotocol" in r.body, "a subprotocol request -> 400",
          r and (r.status, r.body))
    # an upgrade on a connection that first carried a plain HTTP request
    sk = socket.create_connection(("127.0.0.1", port), timeout=10)
    sk.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:  # read exactly one response: headers + Content-Length bytes
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            cl = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
            if cl and len(body) >= int(cl[0].split(b":")[1]):
                break
        d = sk.recv(65536)
        if not d:
            break
        data += d
    check(data.startswith(b"HTTP/1.1 200"), "keep-alive HTTP request answered", data[:40])
    ws = WS.__new__(WS)
    try:
        WS.__init__(ws, port, "/echo", sock=sk)
        ws.send_text("after http")
        r = ws.recv()
    except Exception as e:  # noqa: BLE001
        r = repr(e)
    check(r == ("text", "after http"), "upgrade after a keep-alive HTTP request", r)
    ws.close()
    st, _ = srv.get("/healthz")
    check(st == 404, "plain HTTP still routed (404 for an unhandled path)", st)

    # ---- broadcast
    peers = [WS(port, "/bcast") for _ in range(3)]
    peers[1].send_text("to all")
    got = [p.recv() for p in peers]
    check(got == [("text", "to all")] * 3, "broadcast reaches every connection", got)
    for p in peers:
        p.send_close(1000)
        r = p.recv()
        check(r[0] == "close" and r[1] == 1000, "client close is answered", r)
        p.close()

    # ---- slow consumer: the client stops reading; the outbound cap closes it
    ws = WS(port, "/flood")
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    ws.send_text("go")
    v = srv.wait_stat("/flood", "close_slow", 1, timeout=10)
    check(v == 1, "slow consumer is closed by the outbound cap", v)
    s = srv.stats()
    check(s[("/flood", "queued_peak")] <= 256 * 1024,
          "outbound queue never exceeded its cap (peak %d)" % s[("/flood", "queued_peak")])
    check(s[("/flood", "queued_bytes")] == 0, "the overflowing queue was freed at once")
    n, r = 0, None
    while True:
        r = ws.recv()
        if r[0] != "text":
            break
        n += 1
    check(r[0] == "close" and r[1] == 1008 and "slow" in r[2],
          "after draining (%d messages) the client gets close 1008" % n, r)
    ws.close()
    v = srv.wait_stat("/flood", "open", 0)
    check(v == 0, "flood connection gone", v)

    # ---- idle timeout: a peer answering pings stays, a silent one is closed
    live, dead = WS(port, "/idle"), WS(port, "/idle")
    r = live.pump(1.5)  # read (and answer pings) for 1.5 s, idle timeout is 0.6 s
    check(r is None, "nothing but pings while idle", r)
    live.send_text("still here")
    r = live.recv()
    check(r == ("text", "still here") and live.pings >= 3,
          "a peer that answers pings outlives the idle timeout (%d pings)" % live.pings, r)
    r = dead.recv(answer_pings=False)
    check(r[0] == "close" and r[1] == 1001 and "idle" in r[2], "a silent peer is closed with 1001 idle", r)
    live.close()
    dead.close()
    check(srv.wait_stat("/idle", "close_idle", 1) == 1, "idle close counted")

    # ---- 200 concurrent connections
    base = srv.stats()[("/echo", "open")]
    check(base == 0, "no /echo connection open before the crowd", base)
    crowd = []
    for i in range(200):
        crowd.append(WS(port, "/echo?i=%d" % i))
    check(srv.wait_stat("/echo", "open", 200) == 200, "200 concurrent connections open")
    for i, c in enumerate(crowd):
        c.send_text("c%d" % i)
    ok = all(c.recv() == ("text", "c%d" % i) for i, c in enumerate(crowd))
    check(ok, "each of the 200 gets its own echo")
    for i, c in enumerate(crowd):
        if i % 2 == 0:
            c.send_close(1000)
        else:
            c.close()  # vanished without a close frame
    for i, c in enumerate(crowd):
        if i % 2 == 0:
            r = c.recv()
            c.close()
    v = srv.wait_stat("/echo", "open", 0, timeout=10)
    check(v == 0, "open-connection gauge back at 0 after 200 closes", v)
    s = srv.stats()
    check(s[("all", "queued_bytes")] == 0, "nothing queued server-side")

    # ---- metrics
    st, body = srv.get("/metrics")
    check(st == 200 and 'hudong_ws_connections{path="/echo"} 0' in body and
          'hudong_ws_closes_total{path="/flood",reason="slow"} 1' in body, "/metrics prints the counters",
          body[:300])

    # ---- shutdown closes clients
    last = [WS(port, "/echo") for _ in range(4)] + [WS(port, "/bcast")]
    srv.proc.send_signal(signal.SIGTERM)
    got = [c.recv() for c in last]
    check(all(r[0] == "close" and r[1] == 1001 and "shutdown" in r[2] for r in got),
          "server shutdown closes every client with 1001", got)
    for c in last:
        c.close()
    try:
        rc = srv.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        rc = None
    check(rc == 0, "server exits 0 (on_close for every connection, nothing leaked)", rc)
    err = srv.stderr_text()
    check("Sanitizer" not in err and "runtime error" not in err, "no sanitizer report", err[-2000:])


if __name__ == "__main__":
    main()
