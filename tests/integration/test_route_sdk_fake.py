#!/usr/bin/python3
"""The SDK's cluster routing against a scripted /api/route server (issue 15
item 4, review findings; docs/sdk.md "Clusters"): a small Python HTTP server
on a free 127.0.0.1 port plays the cluster, so each answer the real nodes
give rarely (slow, 503 on the second ask, more candidates than are probed,
a wrong service, over-long values) can be given on purpose.
route_sdk_probe (route_sdk_probe.c) calls the library.

  - 6 clients with cfg.cluster_url route at once: the server holds each
    /api/route until 6 are in flight (or 2 s): all 6 are in flight together
    (no route waits in a queue of 4 threads); freeing 6 clients whose routes
    take ~5 s (2.5 s per ask) returns within the documented bound
    (HD_CLIENT_ROUTE_MAX_MS; queued behind 4 threads they took ~10 s);
  - a 503 on the second (rtt=) ask fails with the cluster's sentence;
  - 10 candidates: the first answer's node is probed first, and the second
    answer's node, never probed (past the cap of 8), is joined, not
    replaced by "ping";
  - one deadline per /api/route ask: a connect that takes ~1 s (the
    listen queue full: the kernel drops the SYN, which is resent after its
    1 s timeout) and an answer 2.5 s after the request is past the ask's 3 s
    (separate deadlines for connect and request let it through at 3.5 s);
  - a 200 JSON that is not a route answer, a token too large to send, a node
    URL too long: each says so; HTTP:// in capitals is a node URL too.

usage: test_route_sdk_fake.py /path/to/route_sdk_probe
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, b64u, check, free_port  # noqa: E402

PROBE = None
ROUTE_MAX_MS = 8000  # HD_CLIENT_ROUTE_MAX_MS (include/hudong/client.h)


class Fake:
    """What the server answers (scen), and what it saw."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.scen = None
        self.base = None
        self.reset(None)

    def reset(self, scen):
        with self.lock:
            self.scen = scen
            self.inflight = 0
            self.max_inflight = 0
            self.pings = []
            self.routes = []


FAKE = Fake()


def cand(i, url=None):
    return {"id": "c%d" % i, "url": url or "%s/c%d" % (FAKE.base, i), "eligible": True}


def route_answer(query):
    """(status, JSON) of /api/route for the scenario."""
    s, second = FAKE.scen, "rtt=" in query
    if s == "slow":  # held until 6 are in flight, then: every node full
        with FAKE.cond:
            FAKE.inflight += 1
            FAKE.max_inflight = max(FAKE.max_inflight, FAKE.inflight)
            FAKE.cond.notify_all()
            FAKE.cond.wait_for(lambda: FAKE.inflight >= 6, timeout=2.0)
        time.sleep(0.1)
        with FAKE.cond:
            FAKE.inflight -= 1
        return 503, {"candidates": [], "error": "every node is full or draining; retry later"}
    if s == "slowjoin":  # 2.5 s per ask (under the 3 s an ask may take), a node to join
        time.sleep(2.5)
        return 200, {"node": cand(0), "reason": "load", "candidates": [cand(0)]}
    if s == "second503":
        if second:
            return 503, {"candidates": [dict(cand(0), eligible=False)],
                         "error": "every node is full or draining; retry later"}
        return 200, {"node": cand(0), "reason": "load", "candidates": [cand(0)]}
    if s == "many":  # c9 holds the room; the second answer names c8
        cands = [cand(i) for i in range(10)]
        if second:
            return 200, {"node": cand(8), "reason": "load", "candidates": cands}
        return 200, {"node": cand(9), "reason": "room", "candidates": cands}
    if s == "notroute":
        return 200, {"status": "ok", "version": "1.2.3"}
    if s == "longurl":
        n = {"id": "long", "url": FAKE.base + "/" + "x" * 700}
        return 200, {"node": n, "reason": "load", "candidates": []}
    if s == "upper":
        n = cand(0, url=FAKE.base.replace("http://", "HTTP://") + "/c0")
        return 200, {"node": n, "reason": "load", "candidates": [n]}
    return 500, {"error": "no scenario"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path.endswith("/api/ping"):
            with FAKE.lock:
                FAKE.pings.append(path)
            return self.send(200, "{}")
        if path == "/api/route":
            with FAKE.lock:
                FAKE.routes.append(query)
            st, js = route_answer(query)
            return self.send(st, json.dumps(js))
        self.send(404, "not found\n", "text/plain")


def token(room="r1", pad=0):
    h = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64u(json.dumps({"grants": {"room": room}, "exp": int(time.time()) + 600}).encode())
    return "%s.%s.%s" % (h, p, "s" * (43 + pad))


def slow_connect_ask():
    """A cluster URL whose connect takes ~1 s and whose first answer comes
    2.5 s after the request: what hd_client_route says."""
    port = free_port()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)  # accept queue: 2 connections; then SYNs are dropped
    fillers = []
    for _ in range(2):
        f = socket.socket()
        f.settimeout(0.5)
        try:
            f.connect(("127.0.0.1", port))
        except OSError:
            pass
        fillers.append(f)
    seen = {"accepted": None}
    t0 = time.time()

    def run():
        time.sleep(0.5)  # the probe's SYN meanwhile: dropped
        for _ in range(2):
            c, _ = ls.accept()
            c.close()
        ls.settimeout(10)
        first = True
        try:
            while True:
                c, _ = ls.accept()
                if seen["accepted"] is None:
                    seen["accepted"] = time.time() - t0
                buf = b""
                while b"\r\n\r\n" not in buf:
                    d = c.recv(4096)
                    if not d:
                        break
                    buf += d
                if first:
                    time.sleep(2.5)
                    first = False
                body = json.dumps({"node": cand(0), "reason": "load", "candidates": [cand(0)]}).encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                          % (len(body), body))
                c.close()
        except OSError:
            pass

    th = threading.Thread(target=run, daemon=True)
    th.start()
    FAKE.reset("upper")
    rc, out, err = probe("route", "http://127.0.0.1:%d" % port, token())
    ls.close()
    for f in fillers:
        f.close()
    try:
        return json.loads(out.strip().splitlines()[-1]), seen["accepted"]
    except (ValueError, IndexError):
        return {"rc": 0, "err": "no JSON: " + (out + err)[-600:]}, seen["accepted"]


def probe(*args, timeout=60):
    p = subprocess.run([PROBE] + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
    bad = [ln for ln in err.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
    check(not bad, "no sanitizer report from route_sdk_probe %s" % args[0], "\n".join(bad[:5]))
    return p.returncode, out, err


def route(scen, tok=None):
    FAKE.reset(scen)
    rc, out, err = probe("route", FAKE.base, tok or token())
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"rc": 0, "err": "no JSON: " + (out + err)[-600:]}


def main():
    global PROBE
    PROBE = sys.argv[1]
    port = free_port()
    ThreadingHTTPServer.request_queue_size = 64  # 8 ping connections at once (the default backlog is 5)
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    FAKE.base = "http://127.0.0.1:%d" % port
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        print("# 6 clients route at once against a route server that answers after ~2 s")
        FAKE.reset("slow")
        rc, out, err = probe("many", 6, FAKE.base, token())
        print("# " + out.strip().replace("\n", " | "))
        check(rc == 0 and "settled 6" in out, "all 6 clients end (FAILED: every node full)", (out + err)[-600:])
        check(FAKE.max_inflight == 6, "the 6 routes were in flight together (no queue of 4 threads)",
              "at most %d at once" % FAKE.max_inflight)

        FAKE.reset("slowjoin")
        t0 = time.time()
        rc, out, err = probe("manyfree", 6, FAKE.base, token())
        took = time.time() - t0
        print("# " + out.strip() + " (probe %.2f s)" % took)
        ms = int(out.split(" in ")[1].split()[0]) if "freed 6 in " in out else 10 ** 9
        check(rc == 0 and ms <= ROUTE_MAX_MS,
              "freeing 6 clients while they route returns within HD_CLIENT_ROUTE_MAX_MS", (out + err)[-600:])

        r = route("second503")
        check(r["rc"] < 0 and "retry" in r.get("err", "") and "503" in r.get("err", ""),
              "a 503 on the second (rtt=) ask fails with the cluster's sentence", r)
        print("#   -> %s: %s" % (r.get("code"), r.get("err")))
        check(any("rtt=" in q for q in FAKE.routes), "(the second ask was made)", FAKE.routes)

        r = route("many")
        check(r["rc"] == 0 and r["node"]["id"] == "c8" and r["reason"] == "load",
              "a chosen node past the probe cap (never probed) is joined, not replaced by 'ping'", r)
        pinged = sorted(set(p.split("/")[1] for p in FAKE.pings))
        check("c9" in pinged and len(pinged) == 8, "8 probed, the first answer's node (c9) among them", pinged)

        r, acc = slow_connect_ask()
        print("# connect accepted after %s s" % ("%.2f" % acc if acc else "-"))
        check(acc is not None and acc >= 0.9, "(the setup: the connect took ~1 s)", acc)
        check(r["rc"] < 0 and r.get("code") == "timed out" and "within 3000 ms" in r.get("err", ""),
              "connect ~1 s + answer 2.5 s later: past the ask's one 3 s deadline", r)
        print("#   -> %s: %s" % (r.get("code"), r.get("err")))

        r = route("notroute")
        check(r["rc"] < 0 and r.get("code") == "malformed input" and "not an /api/route answer" in r.get("err", ""),
              "a 200 JSON that is not a route answer: malformed input, 'not an /api/route answer'", r)
        print("#   -> %s: %s" % (r.get("code"), r.get("err")))

        r = route("notroute", token(pad=9000))
        check(r["rc"] < 0 and "request too large" in r.get("err", ""), "a token too large to send: 'request too large'",
              r)
        print("#   -> %s: %s" % (r.get("code"), r.get("err")))

        r = route("longurl")
        check(r["rc"] < 0 and "too long" in r.get("err", ""), "a node URL over the limit: 'too long'", r)
        print("#   -> %s: %s" % (r.get("code"), r.get("err")))

        r = route("upper")
        check(r["rc"] == 0 and r["node"]["rtc_url"] == "ws://127.0.0.1:%d/c0/rtc" % port,
              "HTTP:// (capitals) is an http:// node URL", r)
    finally:
        srv.shutdown()
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
