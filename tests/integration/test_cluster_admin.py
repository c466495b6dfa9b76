#!/usr/bin/python3
"""The admin API answers for the whole cluster from any node (issue 15 item 2;
docs/overlay.md "A room across nodes", *Admin API*): a real redis-server and
two `hudong serve --redis` nodes on free 127.0.0.1 ports (helpers from
test_cluster.py). alice joins a room on n1 only; then on n2, which does not
hold the room:
  - GET /admin/rooms/<room>/participants gets 307 with Location = the same
    path on n1's announced URL, and following it (same token) lists alice;
  - DELETE /admin/rooms/<room>/participants/alice gets 307 too (307 keeps the
    method), and the DELETE sent to the Location removes her;
  - a room no node holds gets 404 with a message saying so.
Before the fix n2 answered 404 "no such room or participant".

usage: test_cluster_admin.py /path/to/hudong
"""
import http.client
import json
import os
import shutil
import sys
import tempfile
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from test_cluster import FAILS, Node, Redis, check, free_port, join, mint, stop_cluster, view, wait_until  # noqa: E402

ROOM = "admin-anywhere"


def call(port, method, path, token, host="127.0.0.1"):
    c = http.client.HTTPConnection(host, port, timeout=5)
    c.request(method, path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    loc = r.getheader("Location")
    c.close()
    return r.status, text, loc


def follow(method, loc, token):
    u = urllib.parse.urlsplit(loc)
    return call(u.port, method, u.path + ("?" + u.query if u.query else ""), token, u.hostname)


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-cadmin-")
    redis = Redis(tmp, free_port())
    nodes = []
    ws = None
    try:
        redis.start()
        n1, n2 = Node(tmp, "n1", redis.port), Node(tmp, "n2", redis.port)
        n1.start()
        n2.start()
        nodes += [n1, n2]
        check(wait_until(lambda: view(n1.port) == ["n1", "n2"] and view(n2.port) == ["n1", "n2"], 5) is not None,
              "both nodes see each other")
        ws = join(n1, ROOM, "alice")
        admin = mint(ROOM, "ops", join=False, grants={"roomAdmin": True})
        path = "/admin/rooms/%s/participants" % ROOM
        st, text, _ = call(n1.port, "GET", path, admin)
        check(st == 200 and "alice" in text, "n1 (the holder) lists alice itself", (st, text))
        # n2 learns that n1 holds the room from n1's next registry entry (one heartbeat)
        res = {}

        def redirected():
            res["r"] = call(n2.port, "GET", path, admin)
            return res["r"][0] == 307
        check(wait_until(redirected, 10, step=0.2) is not None, "n2 answers 307 for a room held by n1", res.get("r"))
        st, text, loc = res["r"]
        check(loc == "http://127.0.0.1:%d%s" % (n1.port, path), "Location is the same path on n1's URL", loc)
        if loc:
            st, text, _ = follow("GET", loc, admin)
            js = json.loads(text) if st == 200 else {}
            ids = [p.get("identity") for p in js.get("participants", [])]
            check(st == 200 and ids == ["alice"], "following the Location lists the participants", (st, text))
        st, text, loc = call(n2.port, "DELETE", path + "/alice", admin)
        check(st == 307 and loc == "http://127.0.0.1:%d%s/alice" % (n1.port, path),
              "DELETE of a participant on n2 gets 307 to n1", (st, text, loc))
        if loc:
            st, text, _ = follow("DELETE", loc, admin)
            check(st == 200, "the DELETE repeated at the Location removes alice", (st, text))
            st, text, _ = call(n1.port, "GET", path, admin)
            check(st == 200 and "alice" not in text, "alice is gone from n1's list", (st, text))
        nowhere = "held-nowhere"
        st, text, loc = call(n2.port, "GET", "/admin/rooms/%s/participants" % nowhere,
                             mint(nowhere, "ops", join=False, grants={"roomAdmin": True}))
        check(st == 404 and loc is None and "no node of the cluster holds room 'held-nowhere'" in text,
              "a room no node holds: 404 saying so", (st, text))
    finally:
        if ws:
            ws.close()
        stop_cluster(nodes, redis, tmp)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
