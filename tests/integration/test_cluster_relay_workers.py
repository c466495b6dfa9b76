#!/usr/bin/python3
"""Relaying on every media worker of the relay (issue 16 item 3; docs/overlay.md
"Relaying on every worker"): a real redis-server and three `hudong serve
--redis` nodes on free 127.0.0.1 ports; n2, the relay, runs two media
workers.

n1 reaches n3 through a `hudong netem` relay adding 80 ms each way, and
each of n2's two workers through a clean netem relay (--peer-addr on n1
only), so n1's route to n3 goes through n2. Two rooms,
named so that their streams hash to different workers of n2 (the flow hash
of src/overlay/relay.c hd_relay_worker, computed here the same way): a
publisher (audio) on n1 and a subscriber on n3 in each.

 1. n1's route to n3 goes through n2.
 2. n2 forwards the relayed datagrams on both of its workers (the per-worker
    relay counters of /admin/cluster/links: before, every relayed datagram
    went to the relay's first worker), each room's stream on the worker its
    hash names (also in /metrics: hudong_link_relay_forwarded_total per
    peer and worker). No node drops a link datagram as a replay or as
    addressed to another of its workers (rx_replay 0: each hop is sealed
    for the worker it is sent to, link version 2).
 3. n1's link to n2 blacks out (both relays, both ways): when n1 finds it
    suspect it sends the datagrams it had sent into it in the last RTT +
    silence again, on its second path (direct to n3): n1's `rescued` count
    for n2 (docs/overlay.md "Rescue at a link's death"); both subscribers
    received their publisher's audio all along; still no rx_replay.

usage: test_cluster_relay_workers.py /path/to/hudong
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from hdtest import free_media_port  # noqa: E402
from test_cluster import Node, Redis, check, free_port, section, view, wait_until  # noqa: E402
from test_cluster_links import by_peer, links  # noqa: E402
from test_cluster_relay import impair, netem, route  # noqa: E402
from test_cluster_room import mint, url  # noqa: E402

M64 = (1 << 64) - 1


def fnv64(data):
    h = 14695981039346656037
    for c in data:
        h = ((h ^ c) * 1099511628211) & M64
    return h


def mix64(x):
    """splitmix64's finaliser, as relay.c mix64."""
    x ^= x >> 30
    x = (x * 0xbf58476d1ce4e5b9) & M64
    x ^= x >> 27
    x = (x * 0x94d049bb133111eb) & M64
    return x ^ (x >> 31)


def relay_worker(app, room, origin, dst, n):
    """hd_relay_worker: the relay's worker for a room's messages from origin to dst."""
    rh = fnv64(app.encode() + b"/" + room.encode())  # hd_cluster_room_hash
    return mix64(rh ^ mix64(fnv64(origin.encode()) ^ mix64(fnv64(dst.encode())))) % n


def pub(tmp, node, room, ident, secs):
    return subprocess.Popen([tc.HUDONG, "pub", "--url", url(node), "--token", mint(room, ident), "--tone", "440",
                             "--duration", str(secs), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, ident + ".log"), "wb"))


def sub(tmp, node, room, ident, secs):
    return subprocess.Popen([tc.HUDONG, "sub", "--url", url(node), "--token", mint(room, ident), "--out",
                             os.path.join(tmp, ident), "--duration", str(secs), "--json", "--quiet"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, ident + ".log"), "wb"))


def summary(p):
    import json
    out, _ = p.communicate(timeout=40)
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def by_worker(node, peer):
    return {w["worker"]: w for w in by_peer(links(node)).get(peer, {}).get("relay", {}).get("by_worker", [])}


def replays(nodes):
    """{node: {peer: rx_replay}} where not 0 (a misaddressed destination worker counts there too)."""
    out = {}
    for n in nodes:
        bad = {l["peer"]: l.get("rx_replay") for l in links(n).get("links", []) if l.get("rx_replay", 0) != 0}
        if bad:
            out[n.name] = bad
    return out


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    rooms = {}
    for i in range(200):  # one room per worker of n2
        name = "rw%d" % i
        rooms.setdefault(relay_worker(tc.APP, name, "n1", "n3", 2), name)
        if len(rooms) == 2:
            break
    tmp = tempfile.mkdtemp(prefix="hd-relayw-")
    redis = Redis(tmp, free_port())
    nodes, procs, relays = [], [], []
    try:
        redis.start()
        p3, r3, c3 = free_port(), free_port(), free_port()
        relays.append(netem(tmp, "netem-n3", r3, p3, c3))
        st, text = impair(c3, {"both": {"delay": 80}})
        check(st == 200, "the n1 -> n3 relay takes 80 ms each way", text)
        p2 = free_media_port(2)
        r2 = [free_port(), free_port()]
        c2 = [free_port(), free_port()]
        for w in (0, 1):  # one clean relay per worker of n2: what step 3 blacks out
            relays.append(netem(tmp, "netem-n2w%d" % w, r2[w], p2 + w, c2[w]))
        n2 = Node(tmp, "n2", redis.port, config={"media_workers": 2}, extra=["--rtc-port", str(p2)])
        n3 = Node(tmp, "n3", redis.port, extra=["--rtc-port", str(p3)])
        for n in (n2, n3):
            n.start()
            nodes.append(n)
        n1 = Node(tmp, "n1", redis.port, extra=["--peer-addr", "n3=127.0.0.1:%d" % r3, "--peer-addr",
                                                "n2=127.0.0.1:%d" % r2[0], "--peer-addr", "n2=127.0.0.1:%d" % r2[1]])
        n1.start()
        nodes.insert(0, n1)
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2", "n3"] for n in nodes), 6) is not None,
              "the three nodes see each other")

        section("1. n1's route to n3 goes through n2")
        ok = wait_until(lambda: route(n1, "n3").get("via") == ["n2"], 15, step=0.25)
        check(ok is not None, "n1 -> n3 is routed through n2 (direct: 160 ms RTT; via n2: ~0)", links(n1))

        section("2. two rooms relayed through n2: one on each of its workers")
        secs = 16
        subs = {}
        for w, room in sorted(rooms.items()):
            subs[room] = sub(tmp, n3, room, "sub-" + room, secs)
            procs.append(subs[room])
        time.sleep(0.5)
        for w, room in sorted(rooms.items()):
            procs.append(pub(tmp, n1, room, "pub-" + room, secs + 5))
        print("# rooms by n2 worker (hd_relay_worker):", rooms)
        ok = wait_until(lambda: all(by_worker(n2, "n3").get(w, {}).get("forwarded", 0) > 100 for w in (0, 1)),
                        12, step=0.25)
        bw3, bw1 = by_worker(n2, "n3"), by_worker(n2, "n1")
        print("# n2's relay counts per worker: to n3 %s, from n1 %s" % (bw3, bw1))
        check(ok is not None, "n2 forwards n1's relayed datagrams to n3 on both of its workers", bw3)
        check(all(bw1.get(w, {}).get("received", 0) > 100 for w in (0, 1)),
              "n2 receives them from n1 on both workers (n1 sends each room's to the worker its hash names)", bw1)
        st, _, text = tc.get(n2.port, "/metrics")
        fw = {}
        for ln in text.splitlines():
            for w in (0, 1):
                if ln.startswith('hudong_link_relay_forwarded_total{peer="n3",worker="%d"}' % w):
                    fw[w] = int(ln.split()[-1])
        check(st == 200 and all(fw.get(w, 0) > 100 for w in (0, 1)),
              "n2's /metrics: hudong_link_relay_forwarded_total to n3 per worker", fw)
        bad = replays(nodes)
        check(not bad, "no link datagram dropped as a replay or misaddressed (rx_replay 0 on every link)", bad)

        section("3. n1's link to n2 blacks out: n1 rescues what it had sent into it")
        for w in (0, 1):
            st, text = impair(c2[w], {"both": {"loss": 100}})
            check(st == 200, "the n1 -> n2 relay of n2's worker %d loses everything" % w, text)
        t0 = time.time()
        ok = wait_until(lambda: by_peer(links(n1)).get("n2", {}).get("relay", {}).get("rescued", 0) > 0, 5,
                        step=0.1)
        rel = by_peer(links(n1)).get("n2", {}).get("relay", {})
        print("# n1 rescued %s datagrams sent into n1-n2 (%.1f s after the blackout); route to n3 now %s" %
              (rel.get("rescued"), time.time() - t0, route(n1, "n3")))
        check(ok is not None, "n1 sent again, round the dead link, what it had sent into it", rel)
        for ln in n1.log().splitlines():
            if "went bad" in ln or "suspect" in ln:
                print("# n1:", ln)
        for w, room in sorted(rooms.items()):
            s = summary(subs[room])
            a = {t["kind"]: t for t in s.get("tracks", []) if t.get("identity") == "pub-" + room}.get("audio", {})
            print("# %s (n2 worker %d): audio %d packets, loss after repair %.2f%%" %
                  (room, w, a.get("packets", 0), a.get("lossAfterRepairPct", -1)))
            check(a.get("packets", 0) > 500, "the subscriber of %s on n3 received its audio all along" % room, s)
            check(a.get("lossAfterRepairPct", 100) < 1, "%s: ~0 loss after repair" % room, a)
        bad = replays(nodes)
        check(not bad, "after the rescue, still no link datagram dropped as a replay or misaddressed", bad)
    finally:
        tc.stop_cluster(nodes, redis, tmp, procs + relays)
    return tc.verdict()


if __name__ == "__main__":
    sys.exit(main())
