#!/usr/bin/python3
"""A whiteboard taken over from a killed node keeps its state (issue 15 item 6;
docs/whiteboard.md "Multi-node"): a real redis-server and two `hudong serve
--redis` nodes on free 127.0.0.1 ports.

 1. A writer on n1 draws 5 rectangles on wb:lesson:main: n1 owns the board
    and shares its state in Redis (hudong:board:<app>/<channel>, {seq, snap},
    with a TTL, at most every board.share_every_ms).
 2. n1 is killed (SIGKILL); once its registry entry is gone, a writer on n2
    draws a sixth: n2 takes the board over from the shared snapshot, so the
    entry is seq 6 and GET /api/board on n2 shows all six rectangles (before:
    seq 1 and only the sixth, n2's own store being empty).
 3. A config "board" key out of range stops the start with its range.

usage: test_board_takeover.py /path/to/hudong
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
from hdtest import FAILS, check, free_port, http_json  # noqa: E402
from test_cluster import Node, Redis, section, stop_cluster, view, wait_until  # noqa: E402
from wsclient import RtmClient  # noqa: E402

ROOM = "lesson"
CH = "wb:%s:main" % ROOM


def token(identity):
    return tc.mint(ROOM, identity, grants={"rtm": True, "canSubscribe": True, "canPublishData": True})


def Rtm(node, identity):
    return RtmClient(node.port, token(identity), CH, req_timeout=10)


def rect(i):
    return {"op": "add", "cid": "c%d" % i, "page": "p1",
            "el": {"id": "r%d" % i, "k": "rect", "x": i, "y": 2 * i, "w": 10, "h": 10}}


def board(node):
    """(seq, sorted element ids) of the board as GET /api/board on node gives it."""
    st, js, text = http_json(node.port, "GET", "/api/board?room=%s&board=main" % ROOM, token("reader"))
    if st != 200 or not js:
        return None, text[:200]
    ids = set()

    def walk(o):
        if isinstance(o, dict):
            if o.get("k") == "rect" and isinstance(o.get("id"), str):
                ids.add(o["id"])
            for v in o.values():
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)
    walk(js.get("snapshot"))
    for e in js.get("ops", []):
        walk(e)
    return js.get("seq"), sorted(ids)


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-board-take-")
    redis = Redis(tmp, free_port())
    nodes = []
    try:
        section("0. config 'board.share_*': a bad value stops the start with its range")
        for bad, want in (({"share_every_ms": 10}, "'share_every_ms' must be an integer in [100, 60000]"),
                          ({"share_max_kb": 1}, "'share_max_kb' must be an integer in [16, 65536]"),
                          ({"share_ttl_s": 5}, "'share_ttl_s' must be an integer in [60, 2592000]")):
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump({"apps": [{"key": tc.APP, "secret": tc.SECRET}], "board": bad}, f)
            out = subprocess.run([tc.HUDONG, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--config", path],
                                 capture_output=True, text=True, timeout=10)
            check(out.returncode != 0 and want in out.stderr, "config board %s is refused: %s" % (json.dumps(bad), want),
                  (out.returncode, out.stderr[-300:]))
        redis.start()
        # share_ttl_s at its maximum (30 days = 2592000000 ms, past INT_MAX): the TTL
        # used to be cut to an int, PEXPIRE got a negative value and the snapshot was
        # deleted at once.
        cfg = {"board": {"share_every_ms": 200, "share_ttl_s": 2592000}}
        for name in ("n1", "n2"):
            n = Node(tmp, name, redis.port, config=cfg)
            n.start()
            nodes.append(n)
        n1, n2 = nodes
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")

        section("1. five rectangles on n1: n1 owns the board and shares it")
        w1 = Rtm(n1, "alice")
        check(w1.req(type="sub", ch=CH)["type"] == "ok", "alice subscribes on n1")
        for i in range(5):
            r = w1.pub(rect(i))
            check(r and r["type"] == "ok", "rectangle %d applied on n1" % i, r)
        key = "hudong:board:%s/%s" % (tc.APP, CH)
        shared = wait_until(lambda: redis.cmd("HGET", key, "seq") == "5", 5)
        check(shared is not None, "the board's state at seq 5 is in Redis (%s)" % key, redis.cmd("HGET", key, "seq"))
        ttl = redis.cmd("PTTL", key)
        check(isinstance(ttl, int) and 86400000 < ttl <= 2592000000,
              "with a TTL of board.share_ttl_s (30 days here)", ttl)
        check(board(n1) == (5, ["r0", "r1", "r2", "r3", "r4"]), "n1's board: seq 5, five rectangles", board(n1))

        section("2. n1 killed: n2 takes the board over with its state")
        n1.proc.send_signal(signal.SIGKILL)
        n1.proc.wait()
        gone = wait_until(lambda: not redis.cmd("EXISTS", "hudong:node:n1"), 10)
        check(gone is not None, "n1's registry entry is gone")
        w2 = Rtm(n2, "bob")
        check(w2.req(type="sub", ch=CH)["type"] == "ok", "bob subscribes on n2")
        r = w2.pub(rect(5))
        check(r and r["type"] == "ok", "bob's rectangle on n2 is applied (n2 took the board over)", r)
        seq, ids = board(n2)
        print("# measured: n2's board after the takeover: seq %s, %s" % (seq, ids))
        check(seq == 6 and ids == ["r0", "r1", "r2", "r3", "r4", "r5"],
              "n2's board goes on from n1's: seq 6, all six rectangles", (seq, ids))
        check("taken over from the cluster's shared snapshot at seq 5" in n2.log(), "n2 logs the takeover")
        check(wait_until(lambda: redis.cmd("HGET", key, "seq") == "6", 5) is not None,
              "n2 shares the board now (seq 6 in Redis)", redis.cmd("HGET", key, "seq"))
    finally:
        stop_cluster(nodes, redis, tmp)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
