#!/usr/bin/python3
"""Integration test of the whiteboard (docs/whiteboard.md) against a real
`hudong serve --dev` with its SQLite database in a temp dir:

 1. operations over /rtm on wb:<room>:main: a writer's add comes back as an
    entry {seq, ts, by, cid, op, do}; a reader's add is refused 403, its cursor
    passes; bad input gets 400 with a message; another room's token gets 403.
 2. 250 operations: GET /api/board gives snapshot (taken every 200) + tail,
    seq = snapshot.seq + len(ops); /api/board?after=N the entries after N;
    /api/board/log pages the timed log in seq order.
 3. restart on the same database: the same snapshot + tail comes back, and the
    next operation continues the sequence.
 4. images: upload (writer), download by hash, a non-image 415, a reader 403.

usage: test_board.py /path/to/hudong
"""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import RtmClient  # noqa: E402

from hdtest import FAILS, check, free_port, jwt_hs256  # noqa: E402  (shared helpers)

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
ROOM = "lesson1"
CH = "wb:%s:main" % ROOM


def mint(identity, room=ROOM, writer=True):
    now = int(time.time())
    grants = {"rtm": True, "room": room, "roomJoin": True, "canSubscribe": True}
    if writer:
        grants["canPublishData"] = True
    return jwt_hs256("devsecret", {"iss": "devkey", "sub": identity, "iat": now, "exp": now + 3600, "grants": grants})


def start(port, db):
    p = subprocess.Popen([HUDONG, "serve", "--dev", "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                          "--rtm-db", db], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
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
    check("Sanitizer" not in err and "runtime error" not in err and p.returncode == 0,
          "the node exits cleanly (exit %s, no sanitizer report)" % p.returncode, err[-1500:])


def Rtm(port, token):
    return RtmClient(port, token, CH)


def http(port, path, token=None, data=None, ctype=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=data)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rect(i):
    return {"op": "add", "cid": "c%d" % i, "page": "p1",
            "el": {"id": "r%d" % i, "k": "rect", "x": i, "y": 2 * i, "w": 10, "h": 10}}


def main():
    tmp = tempfile.mkdtemp(prefix="hd-board-")
    db = os.path.join(tmp, "rtm.db")
    port = free_port()
    p = start(port, db)
    wtok, rtok = mint("alice"), mint("rita", writer=False)
    try:
        a = Rtm(port, wtok)
        check(a.req(type="sub", ch=CH)["type"] == "ok", "writer subscribes to its room's board channel")
        ok = a.pub(rect(0))
        check(ok["type"] == "ok", "writer's add accepted", ok)
        m = a.wait_msg()
        e = json.loads(m["data"])
        check(e["seq"] == 1 and e["by"] == "alice" and e["cid"] == "c0" and e["op"] == "add"
              and e["do"][0]["el"]["v"] == 1, "the add comes back as entry seq 1", e)
        r = Rtm(port, rtok)
        r.req(type="sub", ch=CH)
        err = r.pub(rect(99))
        check(err["type"] == "error" and err["code"] == 403 and "canPublishData" in err["message"],
              "a reader's add is refused 403 with what to do", err)
        check(r.pub({"op": "cur", "x": 1, "y": 2, "page": "p1"})["type"] == "ok", "a reader's cursor passes")
        bad = a.pub({"op": "add", "page": "p1", "el": {"id": "x", "k": "rect", "x": 1.5, "y": 0, "w": 1, "h": 1}})
        check(bad["type"] == "error" and bad["code"] == 400 and "integer" in bad["message"], "a float is 400", bad)
        o = Rtm(port, mint("olga", room="other"))
        f = o.req(type="sub", ch=CH)
        check(f["type"] == "error" and f["code"] == 403, "another room's token may not use the board", f)
        for i in range(1, 250):
            ok = a.pub(rect(i))
            if ok["type"] != "ok":
                check(False, "add %d" % i, ok)
                break
        st, body = http(port, "/api/board?room=%s&board=main" % ROOM, rtok)
        b1 = json.loads(body) if st == 200 else {}
        check(st == 200 and b1["seq"] == 250 and b1["snapshot"]["seq"] == 200 and len(b1["ops"]) == 50
              and b1["ops"][0]["seq"] == 201, "GET /api/board: snapshot at 200 + 50 entries",
              (st, body[:300]))
        els = b1["snapshot"]["pages"][0]["els"]
        check(len(els) == 200 and els[0]["id"] == "r0" and els[199]["id"] == "r199", "snapshot holds 200 rects")
        st, body = http(port, "/api/board?room=%s&board=main&after=120" % ROOM, rtok)
        ops = json.loads(body)["ops"] if st == 200 else []
        check(st == 200 and len(ops) == 130 and ops[0]["seq"] == 121, "after=120: the 130 entries after it",
              (st, len(ops)))
        st, body = http(port, "/api/board/log?room=%s&board=main&limit=100" % ROOM, rtok)
        lg = json.loads(body)
        check(st == 200 and len(lg["ops"]) == 100 and lg["more"] and lg["next"] == 100
              and all(lg["ops"][i]["seq"] == i + 1 for i in range(100)) and all("ts" in x for x in lg["ops"]),
              "replay log page 1 (timed, in order)", (st, body[:200]))
        st, body = http(port, "/api/board/log?room=%s&board=main&after=200" % ROOM, rtok)
        lg = json.loads(body)
        check(st == 200 and len(lg["ops"]) == 50 and not lg["more"], "replay log last page")
        st, body = http(port, "/api/board?room=%s" % ROOM)
        check(st == 401, "GET /api/board without a token is 401", st)
        st, body = http(port, "/api/board?room=other&board=main", rtok)
        check(st == 403, "GET /api/board with another room's token is 403", st)
        st, body = http(port, "/api/board?room=%s&board=no:pe" % ROOM, rtok)
        check(st == 400 and b"board=" in body, "a bad board name is 400", (st, body))
        # images
        png = b"\x89PNG\r\n\x1a\n" + os.urandom(200)
        st, body = http(port, "/api/board/image?room=%s" % ROOM, wtok, png, "image/png")
        src = json.loads(body)["src"] if st == 200 else ""
        check(st == 200 and src == "/api/board/image/" + hashlib.sha256(png).hexdigest(), "image upload", body)
        st, body = http(port, src)
        check(st == 200 and body == png, "image download by hash, no token", st)
        st, body = http(port, "/api/board/image?room=%s" % ROOM, wtok, b"hello", "image/png")
        check(st == 415, "a non-image upload is 415", (st, body))
        st, body = http(port, "/api/board/image?room=%s" % ROOM, rtok, png, "image/png")
        check(st == 403, "a reader's upload is 403", (st, body))
        img = a.pub({"op": "add", "page": "p1", "el": {"id": "img", "k": "image", "x": 0, "y": 0, "w": 20,
                                                         "h": 20, "src": src}})
        check(img["type"] == "ok", "an image element with the uploaded src", img)
    finally:
        stop(p)
    p = start(port, db)
    try:
        st, body = http(port, "/api/board?room=%s&board=main" % ROOM, rtok)
        b2 = json.loads(body) if st == 200 else {}
        check(st == 200 and b2.get("seq") == 251, "after a restart the board is back at seq 251", body[:200])
        a = Rtm(port, wtok)
        a.req(type="sub", ch=CH)
        a.pub(rect(300))
        e = json.loads(a.wait_msg()["data"])
        check(e["seq"] == 252, "the next operation continues the sequence", e)
    finally:
        stop(p)
    print("board: %d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
