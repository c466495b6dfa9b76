#!/usr/bin/python3
"""Integration test of draining (issue 15 item 6, docs/overlay.md "Draining"):
a real redis-server and two `hudong serve --redis` nodes on free 127.0.0.1
ports (helpers from test_cluster.py).

 1. SIGTERM with --drain-grace: n1's participant (a native WebSocket client)
    gets `left {reason:"node_draining", redirect:<n2's URL>}` and its socket
    closes; a new join on n1 is refused with 503 node_draining + redirect
    (its id echoed); n1's registry entry says draining and n2's /api/route
    never names n1 (eligible false); n1 exits 0 by itself once empty (after
    the 2 s linger), measured.
 2. POST /admin/drain: 401 without a token, 403 with a room token, 400 for a
    bad grace, 202 with an app-wide roomAdmin token; a node with no other
    node to send clients to refuses joins with retry_after and no redirect.
 3. /api/ping answers any origin, uncached, without a token.

usage: test_cluster_drain.py /path/to/hudong
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from test_cluster import APP, SECRET, Node, Redis, check, free_port, get, mint, route, section, view, wait_until, join  # noqa: E402,F401
from wsclient import WS  # noqa: E402


def recv_json(ws, timeout=5):
    """The next text message as JSON, or ('close'|'eof', ...)."""
    end = time.time() + timeout
    while time.time() < end:
        r = ws.recv()
        if r[0] == "text":
            return json.loads(r[1])
        if r[0] in ("close", "eof"):
            return {"_closed": r}
    return None


def admin_token(room=None):
    """A roomAdmin token: app-wide (no room) unless room is given."""
    import base64
    import hashlib
    import hmac
    now = int(time.time())
    grants = {"roomAdmin": True}
    if room:
        grants["room"] = room
    claims = {"iss": APP, "sub": "ops", "exp": now + 600, "iat": now, "grants": grants}

    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = b64u(hmac.new(SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def post(port, path, token=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("POST", path, body=b"", headers={"Authorization": "Bearer " + token} if token else {})
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    return r.status, text


def try_join(node, room, identity, mid="j1"):
    ws = WS(node.port, "/rtc")
    ws.send_text(json.dumps({"type": "join", "id": mid, "token": mint(room, identity)}))
    m = recv_json(ws)
    closed = recv_json(ws, 3) if m and "_closed" not in m else m
    return m, closed


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-drain-")
    redis = Redis(tmp, free_port())
    nodes = []
    try:
        redis.start()
        n1 = Node(tmp, "n1", redis.port, extra=["--drain-grace", "10"])
        n2 = Node(tmp, "n2", redis.port)
        for n in (n1, n2):
            n.start()
            nodes.append(n)
        check(wait_until(lambda: view(n1.port) == ["n1", "n2"] and view(n2.port) == ["n1", "n2"], 5) is not None,
              "both nodes see each other")
        n2url = "http://127.0.0.1:%d" % n2.port

        section("3. /api/ping")
        import http.client
        c = http.client.HTTPConnection("127.0.0.1", n1.port, timeout=5)
        c.request("GET", "/api/ping", headers={"Origin": "https://app.example"})
        r = c.getresponse()
        body = r.read()
        check(r.status == 200 and r.getheader("Access-Control-Allow-Origin") == "*" and
              r.getheader("Cache-Control") == "no-store" and body == b"pong\n",
              "/api/ping: 200 pong, any origin, no-store, no token", (r.status, r.getheaders(), body))
        c.close()

        section("1. SIGTERM drains n1")
        a = join(n1, "d1", "alice")
        # a native SDK client (hudong sub, src/client) in the room on n1 too
        sub = subprocess.Popen([tc.HUDONG, "sub", "--url", "http://127.0.0.1:%d" % n1.port, "--token",
                                mint("d1", "sdk-sub"), "--out", os.path.join(tmp, "sub"), "--duration", "6",
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "sub.log"), "wb"),
                               env=dict(os.environ, HUDONG_LOG="info"))
        check(wait_until(lambda: "(sdk-sub) joined appA/d1" in n1.log(), 5) is not None, "the SDK client joined n1")
        t0 = time.time()
        n1.proc.send_signal(signal.SIGTERM)
        m = recv_json(a)
        while m is not None and m.get("type") in ("participant_joined", "participant_left"):
            m = recv_json(a)  # the SDK client's arrival (and departure)
        check(m is not None and m.get("type") == "left" and m.get("reason") == "node_draining" and
              m.get("redirect") == n2url and "draining" in m.get("message", ""),
              "the participant on n1 gets left node_draining with n2's URL as redirect", m)
        m2 = recv_json(a, 3)
        check(m2 is not None and "_closed" in m2, "then its socket closes", m2)
        refused, closed = try_join(n1, "d2", "bob", "join-7")
        check(refused is not None and refused.get("type") == "error" and refused.get("code") == 503 and
              refused.get("reason") == "node_draining" and refused.get("redirect") == n2url and
              refused.get("id") == "join-7" and refused.get("retry_after") == 1,
              "a new join on draining n1: 503 node_draining, redirect n2, id echoed", refused)
        check(closed is not None and "_closed" in closed, "and the refused socket is closed", closed)
        entry = json.loads(redis.cmd("GET", "hudong:node:n1") or "{}")
        check(entry.get("draining") is True, "n1's registry entry says draining (written at once)", entry)

        def n2_sees_draining():
            st, js, _ = route(n2.port, "x")
            c1 = [c for c in js["candidates"] if c["id"] == "n1"] if st == 200 else []
            return bool(c1) and c1[0]["draining"] and not c1[0]["eligible"]
        dt = wait_until(n2_sees_draining, 3)
        check(dt is not None and time.time() - t0 < 1.6, "n2 sees n1 draining within one registry read",
              "%s s after SIGTERM" % (None if dt is None else round(time.time() - t0, 2)))
        picks = set()
        for i in range(30):
            st, js, _ = route(n2.port, "room-%d" % i)
            picks.add(js["node"]["id"] if st == 200 else st)
        check(picks == {"n2"}, "n2's /api/route never names draining n1 (30 rooms)", picks)
        st, js, _ = route(n1.port, "room-0")
        check(st == 200 and js["node"]["id"] == "n2", "n1's own /api/route sends elsewhere while draining", js)
        try:
            n1.proc.wait(8)
        except Exception:
            pass
        gone = time.time() - t0
        check(n1.proc.returncode == 0, "n1 exits 0 by itself once empty", n1.log()[-1500:])
        check(1.8 <= gone <= 4, "n1 stays ~2 s (the linger) then stops", "%.2f s" % gone)
        print("# measured: SIGTERM -> n1 exited %.2f s later (empty; 2 s linger)" % gone)
        check("drain (SIGTERM)" in n1.log(), "n1 logs the drain")
        dt = wait_until(lambda: "(sdk-sub) joined appA/d1" in n2.log(), 5)
        check(dt is not None, "the SDK client followed the redirect and joined on n2",
              open(os.path.join(tmp, "sub.log"), errors="replace").read()[-1500:])
        sub.wait(15)
        slog = open(os.path.join(tmp, "sub.log"), errors="replace").read()
        check(sub.returncode == 0 and "rejoining through ws://127.0.0.1:%d/rtc" % n2.port in slog,
              "hudong sub logs the move and exits 0", slog[-1500:])
        check(wait_until(lambda: view(n2.port) == ["n2"], 2) is not None, "n1 is gone from n2's registry view")

        section("2. POST /admin/drain")
        st, text = post(n2.port, "/admin/drain")
        check(st == 401, "no token: 401", (st, text))
        st, text = post(n2.port, "/admin/drain", admin_token("d1"))
        check(st == 403 and "app-wide" in text, "a room's roomAdmin token: 403 naming what is needed", (st, text))
        st, text = post(n2.port, "/admin/drain?grace=x", admin_token())
        check(st == 400 and "grace" in text, "a bad grace: 400", (st, text))
        n2base = "http://127.0.0.1:%d" % n2.port
        p = subprocess.run([tc.HUDONG, "drain", "--url", n2base, "--token", admin_token("d1")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        check(p.returncode == 1 and "answered 403" in p.stderr.decode(), "hudong drain with a room token: exit 1, 403",
              p.stderr.decode())
        b = join(n2, "d3", "carol")
        t1 = time.time()
        drain = subprocess.Popen([tc.HUDONG, "drain", "--url", n2base, "--token", admin_token(), "--grace", "5",
                                  "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        m = recv_json(b)
        check(m is not None and m.get("type") == "left" and m.get("reason") == "node_draining" and
              "redirect" not in m, "alone: left node_draining without redirect", m)
        recv_json(b, 3)  # the close: a client that completes the close handshake is gone at once
        refused, _ = try_join(n2, "d4", "dave")
        check(refused is not None and refused.get("reason") == "node_draining" and "redirect" not in refused and
              refused.get("retry_after") == 5 and "no other node" in refused.get("message", ""),
              "alone and draining: join refused with retry_after 5, no redirect", refused)
        out, err = drain.communicate(timeout=20)
        out = out.decode()
        js = json.loads(out.splitlines()[0]) if out.startswith("{") else {}
        check(drain.returncode == 0 and js.get("draining") is True and js.get("grace_s") == 5 and
              js.get("participants") == 1 and "the node stopped" in out,
              "hudong drain --wait: 202 draining (1 participant), returns once the node stopped", (out, err))
        print("# measured: hudong drain --wait returned %.2f s after it started (n2 alone, 1 participant)" %
              (time.time() - t1))
        try:
            n2.proc.wait(8)
        except Exception:
            pass
        check(n2.proc.returncode == 0, "n2 exits 0 after the admin drain", n2.log()[-1500:])
        for n in (n1, n2):
            log = n.log()
            check("Sanitizer" not in log and "runtime error" not in log, "%s: no sanitizer report" % n.name)
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait(10)
        redis.stop()
        if tc.FAILS:
            for n in ("n1", "n2"):
                p = os.path.join(tmp, n + ".log")
                if os.path.exists(p):
                    print("# ---- %s.log (tail)\n%s" % (n, open(p, errors="replace").read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(tc.FAILS))
    return 1 if tc.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
