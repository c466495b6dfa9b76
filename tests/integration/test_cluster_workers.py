#!/usr/bin/python3
"""Node links between nodes with several media workers (issue 15 items 3, 6;
docs/overlay.md "Header"): a real redis-server and two `hudong serve --redis`
nodes on free 127.0.0.1 ports, n1 with one media worker and n2 with two, and
a room that lives on n2's second worker.

Every worker of a node seals its link datagrams itself. n1's only worker
then gets datagrams of n2 from two of n2's workers at once: link probes
from n2's first worker (the measuring one) and the room's HELLOs, state
and media from its second. The same happens between nodes of equal size
whenever a room's messages go through a relay (they reach the relay's
first worker) — what broke bench/cluster_failover.mjs after its second
kill, with the routes moving through relays. Each worker must have a
sequence space of its own (a lane) that the receiver's replay window keeps
apart: with one shared window, whichever worker had sealed more datagrams
pushed the other's out of it for good ("replayed"), and the room never
crossed the link.

 1. A publisher on n2 and a subscriber on n1, started once the link probes
    have run for a few seconds: the subscriber receives audio and decodes
    video; and the other way round (publisher on n1, subscriber on n2).
 2. The link counters: neither node dropped the other's datagrams as
    replays or as addressed to another worker (`hudong cluster links
    --json`'s rx_replay, rx_misaddressed).
 3. A room that starts on two nodes at once (the clients of a killed node
    that held all of a room moving to two others): each node's participant
    is seen on the other (measured: a node publishes its registry entry and
    reads the others' at once when a room starts there, and hands a fresh
    read to its workers at once, not a heartbeat later; before, the two
    found each other 1-3 s later).

usage: test_cluster_workers.py /path/to/hudong
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from test_cluster import Node, Redis, check, free_port, section, stop_cluster, view, wait_until  # noqa: E402
from test_cluster_links import admin_token  # noqa: E402
import test_cluster_room as tr  # noqa: E402
from wsclient import recv_until  # noqa: E402


def fnv1a_pair(a, b):
    """hd_fnv1a_pair(app, 0xff, room): which media worker holds a room (hd_media_room_worker)."""
    h = 2166136261
    for c in a.encode() + b"\xff" + b.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def room_on_worker(app, worker, of):
    for i in range(1000):
        name = "wroom%d" % i
        if fnv1a_pair(app, name) % of == worker:
            return name
    raise RuntimeError("no room name found")


def links_json(node):
    out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", tr.url(node), "--token", admin_token(), "--json"],
                         capture_output=True, timeout=10)
    try:
        return json.loads(out.stdout.decode())
    except ValueError:
        return None


def got_media(s, who):
    a = v = {}
    for t in s.get("tracks", []):
        if t.get("identity") == who:
            if t["kind"] == "audio":
                a = t
            else:
                v = t
    return a.get("packets", 0) > 50 and v.get("framesDecoded", 0) > 15, a, v


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-workers-")
    redis = Redis(tmp, free_port())
    nodes, procs = [], []
    try:
        redis.start()
        n1 = Node(tmp, "n1", redis.port)
        n2 = Node(tmp, "n2", redis.port, config={"media_workers": 2})
        for n in (n1, n2):
            n.start()
            nodes.append(n)
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")
        tr.ROOM = room_on_worker(tc.APP, 1, 2)
        print("# room %s: n2's worker 1, n1's worker 0" % tr.ROOM)
        # the measuring workers exchange probes (20 a second) before the room starts: their
        # datagrams are well ahead of the room worker's first ones
        time.sleep(4)

        section("1. media both ways between a one-worker and a two-worker node")
        secs = 6
        subs = [tr.sub(tmp, n1, "sub1", secs), tr.sub(tmp, n2, "sub2", secs)]
        procs += subs
        time.sleep(0.5)
        pubs = [tr.pub(tmp, n2, "pub2", secs + 2), tr.pub(tmp, n1, "pub1", secs + 2)]
        procs += pubs
        sums = [tr.summary(s) for s in subs]
        for (s, who, hop) in ((sums[0], "pub2", "n2 (worker 1) -> n1"), (sums[1], "pub1", "n1 -> n2 (worker 1)")):
            ok, a, v = got_media(s, who)
            check(ok, "%s's audio and video cross the link %s" % (who, hop), json.dumps(s)[:1500])
            print("# %s: audio %d packets, video %d frames decoded" % (hop, a.get("packets", 0),
                                                                         v.get("framesDecoded", 0)))
        for p in pubs:
            p.wait(15)

        section("2. no datagram of the other node refused as a replay")
        for n in nodes:
            js = links_json(n)
            ls = (js or {}).get("links", [])
            counts = {x.get("peer"): x.get("rx_replay") for x in ls}
            check(ls and all(v == 0 for v in counts.values()),
                  "%s's links count no replays %s" % (n.name, counts), json.dumps(js)[:800])
            mis = {x.get("peer"): x.get("rx_misaddressed") for x in ls}
            check(ls and all(v == 0 for v in mis.values()),
                  "%s's links count no datagram addressed to another worker %s" % (n.name, mis),
                  json.dumps(js)[:800])

        section("3. a room started on two nodes at once")
        t0 = time.time()
        a = tr.join(n2, "later", "a")
        b = tr.join(n1, "later", "b")
        for (ws, other, where) in ((a, "b", "n2"), (b, "a", "n1")):
            m, _ = recv_until(ws, lambda m: m.get("type") == "participant_joined" and
                              m.get("participant", {}).get("identity") == other, 6)
            check(m is not None, "the participant on %s sees %s, who joined on the other node" % (where, other), m)
            print("# measured: %s sees %s %.0f ms after the first join" % (where, other, (time.time() - t0) * 1000))
        a.close()
        b.close()
    finally:
        stop_cluster(nodes, redis, tmp, procs)
    print("# %d failure(s)" % len(tc.FAILS))
    return 1 if tc.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
