#!/usr/bin/python3
"""Integration test of the RTM hardening of issue 12 (docs/rtm.md "Session
caps", "History", "Storage quotas", "Room-scoped tokens", "Errors") against a
real `hudong serve`, each part the network-level reproducer of its item:

 3. one token logging in and cutting the TCP connection in a loop holds at
    most rtm.max_sessions_per_user sessions (default 8), every login still
    succeeds, and another app logs in at once;
 4. 100 stored 30 KB messages, `hist` with limit 100 and 70: paged replies
    (no close 4008), following `next` gets all 100 in order;
 5. `hist` with after 0 starts at the first message (150 stored);
 6. a node with small quotas (rtm.quota_channels / rtm.quota_mb): stored
    publishes across channels end in 507 storage_full, the database stops
    growing, the other app stores as usual; a node with rtm.min_free_mb above
    the free disk refuses stored publishes (507) and takes unstored ones;
 8. a room-scoped admin token cannot steal another user's lock or set another
    user's attributes outside its room;
10. a client flooding invalid input without acking is not closed (no 4008);
    history keeps exactly 1000 messages per channel (on the quota node).

usage: test_rtm_limits.py /path/to/hudong
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from test_rtm import FAILS, check, free_port, metrics, mint, rt, start, stop, b64u  # noqa: E402

import hashlib  # noqa: E402
import hmac  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
T0 = time.time()


def mint_x(app, secret, identity, room="", admin=False):
    now = int(time.time())
    grants = {"rtm": True}
    if room:
        grants["room"] = room
    if admin:
        grants["roomAdmin"] = True
    claims = {"iss": app, "sub": identity, "iat": now, "exp": now + 3600, "grants": grants}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}')
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def metric(port, name):
    m = re.search(r"^%s (\d+)" % name, metrics(port), re.M)
    return int(m.group(1)) if m else -1


def login_tok(port, tok):
    ws = WS(port, "/rtm")
    ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # ack + request pairs: no 40 ms Nagle stalls
    m = rt(ws, {"type": "login", "id": "l", "token": tok})
    return ws, m


def ack(ws, m):
    if isinstance(m, dict) and "s" in m:
        ws.send_text(json.dumps({"type": "ack", "s": m["s"]}))


def req(ws, o, timeout=10):
    """Sends o and returns its reply (ok/error with o's id), acking everything;
    a 429 (not executed) is sent again after a pause."""
    for _ in range(20):
        m = req1(ws, o, timeout)
        if not (isinstance(m, dict) and m.get("code") == 429):
            return m
        time.sleep(0.2)
    return m


def req1(ws, o, timeout):
    ws.send_text(json.dumps(o))
    end = time.time() + timeout
    while time.time() < end:
        r = ws.recv()
        if r[0] != "text":
            return r  # ("close", code, reason) / ("eof",)
        m = json.loads(r[1])
        ack(ws, m)
        if m.get("id") == o.get("id") and m["type"] in ("ok", "error"):
            return m
    return None


def pages(ws, ch, limit, after=0):
    """The bundled clients' refill: ack, ask with `after`, follow `next`."""
    got, n = [], 0
    while n < 100:
        m = req(ws, {"type": "hist", "id": "p%d" % n, "ch": ch, "after": after, "limit": limit})
        n += 1
        if not isinstance(m, dict) or m["type"] != "ok":
            return got, m
        got += [x["cseq"] for x in m["msgs"]]
        if not m["more"]:
            return got, m
        after = m["next"]
    return got, None


def item3(port):
    print("# ---- item 3: login + cut in a loop (t=%.1f s)" % (time.time() - T0))
    tok = mint("looper")
    before = metric(port, "hudong_rtm_sessions")
    ok = 0
    for _ in range(300):
        ws, m = login_tok(port, tok)
        ok += isinstance(m, dict) and m["type"] == "welcome"
        ws.close()  # cut without a close frame: the session waits for a resume
    time.sleep(0.3)
    held = metric(port, "hudong_rtm_sessions") - before
    check(ok == 300, "every login of the looping identity succeeds", ok)
    check(0 < held <= 8, "... and it holds at most 8 sessions (rtm.max_sessions_per_user)", held)
    check(metric(port, "hudong_rtm_replaced_total") >= 292, "the node counted the replaced sessions",
          metric(port, "hudong_rtm_replaced_total"))
    ws, m = login_tok(port, mint("someone-else"))
    check(isinstance(m, dict) and m["type"] == "welcome", "another user logs in at once", m)
    ws.close()


def item4(port):
    print("# ---- item 4: hist pages (t=%.1f s)" % (time.time() - T0))
    ws, m = login_tok(port, mint("historian"))
    for i in range(100):
        data = chr(97 + i % 26) * (30 * 1024)
        m = req(ws, {"type": "pub", "id": "b%d" % i, "ch": "big", "data": data, "store": True})
        if not (isinstance(m, dict) and m["type"] == "ok"):
            check(False, "stored 30 KB publish", m)
            return
    for limit in (100, 70):
        got, last = pages(ws, "big", limit)
        check(got == list(range(1, 101)), "hist limit %d: paged, all 100 in order after following next" % limit,
              (len(got), last if not isinstance(last, dict) else last.get("type")))
    ws.close()
    ws, m = login_tok(port, mint("historian"))
    m = req(ws, {"type": "hist", "id": "one", "ch": "big", "after": 0, "limit": 100})
    check(isinstance(m, dict) and m["type"] == "ok" and m["more"] and 0 < len(m["msgs"]) < 100 and
          m["next"] == m["msgs"][-1]["cseq"], "one reply is a page that fits the window, with more and next",
          m if not isinstance(m, dict) else {k: v for k, v in m.items() if k != "msgs"})
    check(metric(port, "hudong_rtm_drops_total") == 0, "no session was dropped (4008)",
          metric(port, "hudong_rtm_drops_total"))
    ws.close()


def item5(port):
    print("# ---- item 5: hist after 0 (t=%.1f s)" % (time.time() - T0))
    ws, m = login_tok(port, mint("historian2"))
    for i in range(150):
        req(ws, {"type": "pub", "id": "g%d" % i, "ch": "gap", "data": "m%d" % i, "store": True})
    m = req(ws, {"type": "hist", "id": "z", "ch": "gap", "after": 0, "limit": 100})
    check(isinstance(m, dict) and [x["cseq"] for x in m["msgs"]] == list(range(1, 101)) and m["more"],
          "hist after 0 returns cseq 1..100 (not the newest 100)",
          m if not isinstance(m, dict) else [x["cseq"] for x in m["msgs"]][:3])
    got, _ = pages(ws, "gap", 100)
    check(got == list(range(1, 151)), "a refill from after 0 gets all 150 in order", len(got))
    ws.close()


def item8(port):
    print("# ---- item 8: room-scoped token (t=%.1f s)" % (time.time() - T0))
    owner, _ = login_tok(port, mint("owner"))
    m = req(owner, {"type": "lock_acquire", "id": "a", "ch": "lobby", "name": "seat", "ttl": 600000})
    check(isinstance(m, dict) and m["type"] == "ok", "owner holds a lock in lobby", m)
    mod, m = login_tok(port, mint_x("devkey", "devsecret", "mod", room="stage", admin=True))
    check(isinstance(m, dict) and m["type"] == "welcome", "a room-scoped admin token logs in", m)
    for o, what in (({"type": "lock_steal", "ch": "lobby", "name": "seat", "ttl": 1000}, "steal a lock"),
                    ({"type": "lock_release", "ch": "lobby", "name": "seat"}, "release a lock"),
                    ({"type": "attr_set", "user": "owner", "key": "k", "value": "v"}, "set a user attribute"),
                    ({"type": "sub", "ch": "lobby"}, "subscribe")):
        o["id"] = "x"
        m = req(mod, o)
        check(isinstance(m, dict) and m.get("code") == 403 and "room" in m.get("message", ""),
              "outside its room it cannot %s: 403 saying why" % what, m)
    m = req(owner, {"type": "lock_get", "id": "g", "ch": "lobby"})
    check(isinstance(m, dict) and [x["owner"] for x in m.get("locks", [])] == ["owner"], "the lock is still owner's", m)
    m = req(mod, {"type": "lock_steal", "id": "y", "ch": "room:stage", "name": "mic", "ttl": 1000})
    check(isinstance(m, dict) and m["type"] == "ok", "inside its room it acts as admin", m)
    owner.close()
    mod.close()


def item10(port):
    print("# ---- item 10: flooder (t=%.1f s)" % (time.time() - T0))
    ws, m = login_tok(port, mint("flooder"))
    drops = metric(port, "hudong_rtm_drops_total")
    for i in range(3000):
        ws.send_text("{not json" if i % 2 else '{"type":"teleport"}')
    time.sleep(1.0)
    closed = None
    ws.sock.settimeout(0.5)
    try:
        while True:
            r = ws.recv()
            if r[0] != "text":
                closed = r
                break
            m = json.loads(r[1])
    except (socket.timeout, OSError):
        pass
    check(closed is None, "a flooder of invalid input is not closed", closed)
    check(metric(port, "hudong_rtm_drops_total") == drops, "... nor dropped with 4008")
    check(metric(port, "hudong_rtm_errors_suppressed_total") > 0, "its excess error replies were suppressed")
    ws.sock.settimeout(10)
    ack(ws, m)
    time.sleep(2.1)  # the rate limit refills
    m = req(ws, {"type": "who", "id": "w", "ch": "x"})
    check(isinstance(m, dict) and m["type"] == "ok", "after an ack it is served again", m)
    ws.close()
def item6(tmp):
    print("# ---- item 6: quotas and the disk floor (t=%.1f s)" % (time.time() - T0))
    port = free_port()
    db = os.path.join(tmp, "quota.db")
    cfg = {"listen": "127.0.0.1:%d" % port, "rtc_port": 0,
           "apps": [{"key": "appA", "secret": "secretA-0123456789"}, {"key": "appB", "secret": "secretB-0123456789"},
                    {"key": "appC", "secret": "secretC-0123456789"}],
           "rtm": {"db": db, "quota_channels": 20, "quota_mb": 2, "rate": 100000, "burst": 100000}}
    path = os.path.join(tmp, "quota.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([HUDONG, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        a, m = login_tok(port, mint_x("appA", "secretA-0123456789", "flood"))
        b, m = login_tok(port, mint_x("appB", "secretB-0123456789", "calm"))
        data = "x" * (30 * 1024)
        refused, first = 0, None
        for i in range(200):  # the reproducer: stored 30 KB messages across channels
            m = req(a, {"type": "pub", "id": "q%d" % i, "ch": "c%d" % (i % 15), "data": data, "store": True})
            if isinstance(m, dict) and m["type"] == "error":
                refused += 1
                first = first or m
        check(first and first["code"] == 507 and first["reason"] == "storage_full" and "rtm.quota_mb" in first["message"],
              "over the bytes quota: 507 storage_full naming rtm.quota_mb", first)
        size = sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
        for i in range(100):
            req(a, {"type": "pub", "id": "r%d" % i, "ch": "c%d" % (i % 15), "data": data, "store": True})
        size2 = sum(os.path.getsize(db + x) for x in ("", "-wal") if os.path.exists(db + x))
        check(refused > 100 and size2 <= size + 65536, "the database stops growing", (refused, size, size2))
        m = req(a, {"type": "pub", "id": "new", "ch": "fresh1", "data": "x", "store": True})
        m = req(a, {"type": "pub", "id": "new2", "ch": "c1", "data": "x"})
        check(isinstance(m, dict) and m["type"] == "ok", "unstored publishes still work", m)
        for i in range(10):
            m = req(b, {"type": "pub", "id": "o%d" % i, "ch": "o%d" % i, "data": data, "store": True})
            if not (isinstance(m, dict) and m["type"] == "ok"):
                break
        check(isinstance(m, dict) and m["type"] == "ok", "the other app stores as usual", m)
        c, m = login_tok(port, mint_x("appB", "secretB-0123456789", "many"))
        for i in range(30):
            m = req(c, {"type": "pub", "id": "n%d" % i, "ch": "n%d" % i, "data": "x", "store": True})
            if isinstance(m, dict) and m["type"] == "error":
                break
        check(isinstance(m, dict) and m.get("code") == 507 and "rtm.quota_channels" in m.get("message", "") and i == 10,
              "over the channel quota (20, 10 used): 507 naming rtm.quota_channels", (i, m))
        # item 10: history keeps exactly 1000 messages per channel (docs said 1000, it kept 1016-1019)
        k, m = login_tok(port, mint_x("appC", "secretC-0123456789", "keeper"))
        for i in range(1100):
            req(k, {"type": "pub", "id": "k%d" % i, "ch": "cap", "data": "m%d" % i, "store": True})
        got, _ = pages(k, "cap", 100)
        check(len(got) == 1000 and got[0] == 101 and got[-1] == 1100, "history keeps exactly 1000 messages",
              (len(got), got[:1], got[-1:]))
        for w in (a, b, c, k):
            w.close()
    finally:
        rc, err = stop(p)
    check(rc == 0 and "AddressSanitizer" not in err and "runtime error" not in err,
          "quota node exits 0, no sanitizer report", err[-1500:])
    # the disk floor: more free space required than any disk has
    port = free_port()
    cfg["listen"] = "127.0.0.1:%d" % port
    cfg["rtm"] = {"db": os.path.join(tmp, "floor.db"), "min_free_mb": 100000000}
    with open(path, "w") as f:
        json.dump(cfg, f)
    p = subprocess.Popen([HUDONG, "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        a, m = login_tok(port, mint_x("appA", "secretA-0123456789", "u"))
        m = req(a, {"type": "pub", "id": "s", "ch": "c", "data": "x", "store": True})
        check(isinstance(m, dict) and m.get("code") == 507 and "rtm.min_free_mb" in m.get("message", ""),
              "under the disk floor: 507 naming rtm.min_free_mb", m)
        m = req(a, {"type": "pub", "id": "u", "ch": "c", "data": "x"})
        check(isinstance(m, dict) and m["type"] == "ok", "... unstored publishes still work", m)
        a.close()
    finally:
        rc, err = stop(p)
    check(rc == 0 and "AddressSanitizer" not in err and "runtime error" not in err,
          "floor node exits 0, no sanitizer report", err[-1500:])


def run(fn, *a):
    """One item; an exception (a dropped connection) is that item's failure, the others still run."""
    try:
        fn(*a)
    except Exception as e:  # noqa: BLE001
        check(False, "%s did not complete" % fn.__name__, repr(e))


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-rtm-limits-")
    port = free_port()
    p = start(port, os.path.join(tmp, "rtm.db"))
    try:
        for fn in (item3, item4, item5, item8, item10):
            run(fn, port)
    finally:
        rc, err = stop(p)
    check(rc == 0, "node exits 0 on SIGTERM", err[-2000:])
    check("ERROR: AddressSanitizer" not in err and "runtime error" not in err, "no sanitizer report", err[-2000:])
    run(item6, tmp)
    print("# done in %.1f s: %d failure(s)" % (time.time() - T0, len(FAILS)))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
