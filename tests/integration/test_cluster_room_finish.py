#!/usr/bin/python3
"""A room's end in a cluster with a killed node, and the TTL of the room keys
(issue 15 item 2; docs/overlay.md "Room events" and "Key layout"): a real
redis-server and two `hudong serve --redis` nodes on free 127.0.0.1 ports,
both sending webhooks to one receiver.

 1. One room on n1 and n2: its Redis keys (hudong:room:<app>/<room>:nodes and
    :sid, hudong:noderooms:<node>) carry a TTL of at most 30 s, and the TTL is
    refreshed while the room lives (it rises again within 8 s), so a crashed
    cluster leaves nothing behind.
 2. n2 is killed (SIGKILL) and at once the last participant on n1 leaves,
    while n2's registry key is still within its 3 s TTL: room_finished fires
    exactly once (the survivor that notices n2's key gone finishes the room),
    with the room's sid, and the room keys are gone.

usage: test_cluster_room_finish.py /path/to/hudong
"""
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from hdtest import FAILS, check, free_port, webhook_sink  # noqa: E402
from test_cluster import Node, Redis, section, stop_cluster, view, wait_until  # noqa: E402
from wsclient import recv_until  # noqa: E402

ROOM = "finroom"
KEYS = ["hudong:room:%s/%s:nodes" % (tc.APP, ROOM), "hudong:room:%s/%s:sid" % (tc.APP, ROOM),
        "hudong:noderooms:n1", "hudong:noderooms:n2"]


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-xroom-fin-")
    events = []
    sink, sink_port = webhook_sink(events)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    redis = Redis(tmp, free_port())
    nodes = []
    try:
        redis.start()
        cfg = {"webhooks": {"urls": ["http://127.0.0.1:%d/hook" % sink_port]}, "room_empty_timeout_s": 0}
        for name in ("n1", "n2"):
            n = Node(tmp, name, redis.port, config=cfg)
            n.start()
            nodes.append(n)
        n1, n2 = nodes
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")

        section("1. the room's Redis keys have a TTL, refreshed while the room lives")
        a = tc.join(n1, ROOM, "alice")
        time.sleep(0.3)
        b = tc.join(n2, ROOM, "bob")
        m, _ = recv_until(a, lambda m: m.get("type") == "participant_joined", 5)
        check(m is not None, "alice (n1) sees bob (n2) join")
        ttls = [redis.cmd("PTTL", k) for k in KEYS]
        print("# measured: PTTL (ms) of %s: %s" % (KEYS, ttls))
        check(all(isinstance(t, int) and 0 < t <= 30000 for t in ttls),
              "every room key exists with a TTL of at most 30 s (no key lives forever)", ttls)
        samples = []
        t0 = time.time()
        while time.time() - t0 < 8:
            samples.append(redis.cmd("PTTL", KEYS[0]))
            time.sleep(0.25)
        rose = any(y > x for x, y in zip(samples, samples[1:]))
        print("# measured: PTTL of the nodes key over 8 s: min %s, max %s" % (min(samples), max(samples)))
        check(rose and min(samples) > 0, "the TTL is refreshed while the room lives (it rose again)", samples)

        section("2. n2 killed, then the last participant on n1 leaves: room_finished once")
        sid = redis.cmd("GET", KEYS[1])
        n2.proc.send_signal(signal.SIGKILL)
        n2.proc.wait()
        a.close()
        alive = redis.cmd("EXISTS", "hudong:node:n2")
        print("# n2's registry key still there when n1 let the room go: %s" % alive)
        # n2's key lapses 3 s after the kill, and n1 reaps its rooms
        # HD_CLUSTER_REAP_GRACE_MS (5 s) after it first saw the key gone
        done = wait_until(lambda: any(e.get("event") == "room_finished" for e in events), 20)
        time.sleep(2)  # a second one would come by now
        fin = [e for e in events if e.get("event") == "room_finished"]
        print("# measured: room_finished %s s after the last leave; webhooks %s"
              % ("%.1f" % done if done is not None else "never", [e.get("event") for e in events]))
        check(done is not None and len(fin) == 1, "room_finished fires exactly once", len(fin))
        check(fin and fin[0].get("room", {}).get("sid") == sid and fin[0].get("room", {}).get("name") == ROOM,
              "with the room's name and cluster sid %s" % sid, fin)
        left = [k for k in KEYS if redis.cmd("EXISTS", k)]
        check(not left, "the room's keys are gone from Redis", left)
    finally:
        sink.shutdown()
        stop_cluster(nodes, redis, tmp)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
