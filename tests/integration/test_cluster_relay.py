#!/usr/bin/python3
"""Relaying along the overlay's routes (issue 16 item 3; docs/overlay.md
"Relaying"): a real redis-server and three `hudong serve --redis` nodes on
free 127.0.0.1 ports.

n1 reaches n3 and n2 through two `hudong netem` relays (--peer-addr on
n1 only, so only n1's side of those pairs is impaired): n1 -> n3 gets 80 ms
each way and 2% loss, n1 -> n2 20 ms each way and 5% loss, n2 <-> n3 is
direct. So the route n1 -> n3 goes through n2.

 1. n1's route to n3 goes through n2 before any media flows.
 2. A publisher on n1 (tone + video pattern) and a subscriber on n3: n2 (which
    does not hold the room) relays n1's datagrams to n3 (its relay counters),
    n2 repairs the first hop's 5% loss from n1's per-hop cache; the path's
    loss before repair is above 2%, so audio also goes on the second path
    (direct) and n3 drops the copies.
 3. n1 -> n3 loses its impairment: the direct path is now much cheaper and
    the route moves to it while the path through n2 still works,
    make-before-break: the new path carries the stream at once, n3 drops the
    overlap's duplicates (dedup counter), and the subscriber, over the whole
    run, sees no freeze, sends no keyframe request, hears no audio gap and
    loses ~nothing after repair.

usage: test_cluster_relay.py /path/to/hudong
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import re
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from test_cluster import Node, Redis, check, free_port, section, view, wait_until  # noqa: E402
from test_cluster_links import admin_token, by_peer, links  # noqa: E402
from test_cluster_room import ROOM, mint, pub, url  # noqa: E402


def sub(tmp, node, ident, secs):
    """hudong sub with its per-second stats on stderr, timestamped as they come
    (when a freeze happened, next to when the route moved)."""
    p = subprocess.Popen([tc.HUDONG, "sub", "--url", url(node), "--token", mint(ROOM, ident), "--out",
                          os.path.join(tmp, ident), "--duration", str(secs), "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, HUDONG_LOG="info"))
    p.lines = []

    def read():
        for ln in p.stderr:
            p.lines.append((time.time(), ln.decode(errors="replace").rstrip()))
    p.reader = threading.Thread(target=read, daemon=True)
    p.reader.start()
    return p


def summary(p):
    """The sub's JSON summary (its stderr stays with the reader thread)."""
    out = p.stdout.read()
    p.wait(30)
    p.reader.join(5)
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def freeze_times(p, t0):
    """Seconds after t0 at which the video freeze count went up."""
    out, last = [], 0
    for t, ln in p.lines:
        m = re.search(r" video .* freezes (\d+)", ln)
        if m and int(m.group(1)) > last:
            last = int(m.group(1))
            out.append(round(t - t0, 1))
    return out


def sanitized():
    with open(tc.HUDONG, "rb") as f:
        exe = f.read()
    return b"__asan_init" in exe or b"__tsan_init" in exe


def netem(tmp, name, listen, to, ctl):
    return subprocess.Popen([tc.HUDONG, "netem", "--listen", "127.0.0.1:%d" % listen, "--to",
                             "127.0.0.1:%d" % to, "--control", "127.0.0.1:%d" % ctl],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, name + ".log"), "wb"))


def impair(ctl, body):
    end = time.time() + 5
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", ctl, timeout=5)
            c.request("POST", "/impair", body=json.dumps(body))
            r = c.getresponse()
            text = r.read()
            c.close()
            return r.status, text
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.1)


def route(node, to):
    for r in links(node).get("routes", []):
        if r.get("to") == to:
            return r
    return {}


def relay(node, peer):
    return by_peer(links(node)).get(peer, {}).get("relay", {})


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-relay-")
    redis = Redis(tmp, free_port())
    nodes, procs, relays = [], [], []
    try:
        redis.start()
        p2, p3 = free_port(), free_port()
        r2, r3, c2, c3 = free_port(), free_port(), free_port(), free_port()
        relays.append(netem(tmp, "netem-n3", r3, p3, c3))
        relays.append(netem(tmp, "netem-n2", r2, p2, c2))
        st, text = impair(c3, {"both": {"delay": 80}, "up": {"loss": 2}})
        check(st == 200, "the n1 -> n3 relay takes 80 ms each way and 2% loss", text)
        st, text = impair(c2, {"both": {"delay": 20}, "up": {"loss": 5}})
        check(st == 200, "the n1 -> n2 relay takes 20 ms each way and 5% loss", text)
        n2 = Node(tmp, "n2", redis.port, extra=["--rtc-port", str(p2)])
        n3 = Node(tmp, "n3", redis.port, extra=["--rtc-port", str(p3)])
        for n in (n2, n3):
            n.start()
            nodes.append(n)
        n1 = Node(tmp, "n1", redis.port,
                  extra=["--peer-addr", "n3=127.0.0.1:%d" % r3, "--peer-addr", "n2=127.0.0.1:%d" % r2])
        n1.start()
        nodes.insert(0, n1)
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2", "n3"] for n in nodes), 6) is not None,
              "the three nodes see each other")

        section("1. n1's route to n3 goes through n2")
        ok = wait_until(lambda: route(n1, "n3").get("via") == ["n2"], 15, step=0.25)
        check(ok is not None, "n1 -> n3 is routed through n2 (direct: 160 ms RTT and 2% loss; via n2: 40 + ~0 ms)",
              links(n1))
        print("# n1 routes:", json.dumps(links(n1).get("routes")))

        section("2. a publisher on n1, a subscriber on n3: n2 relays")
        secs = 18
        s3 = sub(tmp, n3, "sub3", secs)
        procs.append(s3)
        time.sleep(0.5)
        p1 = pub(tmp, n1, "pub1", secs + 15)  # outlives the subscriber (stopped below)
        procs.append(p1)
        ok = wait_until(lambda: relay(n2, "n3").get("forwarded", 0) > 200, 10, step=0.25)
        check(ok is not None, "n2 forwards n1's relayed datagrams to n3 (n2 does not hold the room)",
              (relay(n2, "n3"), relay(n1, "n2")))
        check(relay(n1, "n2").get("sent", 0) > 200 and relay(n3, "n2").get("received", 0) > 200,
              "n1 sends them to n2 and n3 receives them from n2", (relay(n1, "n2"), relay(n3, "n2")))
        ok = wait_until(lambda: relay(n2, "n1").get("hop_repaired", 0) > 5, 8, step=0.25)
        check(ok is not None and relay(n1, "n2").get("hop_resent", 0) > 5,
              "the first hop's losses are repaired per hop (n2 asks, n1 resends from its hop cache)",
              (relay(n2, "n1"), relay(n1, "n2")))
        r1 = route(n1, "n3")
        check(r1.get("dup_audio") is True and r1.get("alt") == [],
              "the route through n2 loses 5% before repair: audio is duplicated on the direct path", r1)
        ok = wait_until(lambda: relay(n3, "n1").get("dedup_dropped", 0) > 20, 5, step=0.25)
        check(ok is not None, "n3 drops the audio copies", relay(n3, "n1"))
        time.sleep(1)
        # video is duplicated only by a route change's overlap, or when the
        # end-to-end NACK of n3's stand-in races the hop repair (a few)
        before = relay(n3, "n1").get("dedup_video", 0)
        print("# relay counters: n1 about n2 %s\n#   n2 about n1 %s\n#   n2 about n3 %s\n#   n3 about n1 %s" %
              (relay(n1, "n2"), relay(n2, "n1"), relay(n2, "n3"), relay(n3, "n1")))
        # issue 16 item 3: the text output shows the relay counters and each route's alt / dup_audio
        out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", "http://127.0.0.1:%d" % n2.port, "--token",
                              admin_token()], capture_output=True, text=True, timeout=10)
        rows = {ln.split()[0]: ln.split() for ln in out.stdout.splitlines() if ln.strip()}
        check(out.returncode == 0 and "relay with" in out.stdout and "n3" in rows and
              any(r[0] == "n3" and len(r) == 9 and r[2].isdigit() and int(r[2]) > 200 for r in
                  [ln.split() for ln in out.stdout.split("relay with", 1)[-1].splitlines()[1:] if ln.strip()]),
              "hudong cluster links (text) on n2: a relay table whose n3 row says > 200 forwarded",
              out.stdout + out.stderr)
        out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", "http://127.0.0.1:%d" % n1.port, "--token",
                              admin_token()], capture_output=True, text=True, timeout=10)
        route_rows = [ln.split() for ln in out.stdout.split("route to", 1)[-1].splitlines()[1:] if ln.strip()]
        check(out.returncode == 0 and "alt (2nd path)" in out.stdout and
              any(r[:2] == ["n3", "n2"] and r[-2:] == ["direct", "yes"] for r in route_rows),
              "hudong cluster links (text) on n1: route to n3 via n2, alt path direct, dup_audio yes",
              out.stdout + out.stderr)
        print(out.stdout)

        section("3. n1 -> n3 is clean again: the route moves to the direct path")
        st, text = impair(c3, {"both": {"delay": 0}, "up": {"loss": 0}})
        check(st == 200, "the n1 -> n3 relay stops delaying and losing", text)
        t0 = time.time()
        ok = wait_until(lambda: route(n1, "n3").get("via") == [], 12, step=0.25)
        check(ok is not None, "n1 -> n3 goes direct", links(n1))
        print("# route moved %.1f s after the impairment: %s" % (time.time() - t0, json.dumps(route(n1, "n3"))))
        ok = wait_until(lambda: relay(n3, "n1").get("dedup_video", 0) >= before + 3, 5, step=0.25)
        check(ok is not None, "n3 dropped the video duplicates of the overlap (old and new path at once)",
              (before, relay(n3, "n1")))
        print("# video duplicates dropped at n3: %d before the change, %d after" %
              (before, relay(n3, "n1").get("dedup_video", 0)))
        t_moved = time.time()
        s = summary(s3)
        ft = freeze_times(s3, t_moved)
        if os.environ.get("RELAY_DEBUG"):
            for t, ln in s3.lines:
                print("# %+.1f %s" % (t - t_moved, ln))
        print("# freezes seen by the subscriber at (s after the route moved; stats every 1 s): %s" % ft)
        got = {t["kind"]: t for t in s.get("tracks", []) if t.get("identity") == "pub1"}
        a, v = got.get("audio", {}), got.get("video", {})
        check(a.get("packets", 0) > 500 and v.get("framesDecoded", 0) > 150,
              "sub3 on n3 received pub1's audio and video all along", json.dumps(s)[:1500])
        # a sanitizer build (several times slower, every process of the test
        # on 2 shared cores) drops frames for lack of CPU: there the quality
        # figures are printed, not judged
        quality = check if not sanitized() else (lambda ok, what, detail=None: print(
            "# %s (sanitizer build, not judged): %s" % (what, "yes" if ok else "no: %s" % (detail,))))
        quality(v.get("pliCount", 1) == 0, "no keyframe request from the subscriber", json.dumps(v)[:1500])
        # a freeze is judged where the route moved (the stats come once a
        # second, and the impairment changed ~2-3 s before); one elsewhere on
        # this loaded machine is printed only (every process of the test
        # shares 2 cores with other jobs)
        quality(not [t for t in ft if -1.5 <= t <= 2.5], "no freeze while the route moves", (ft, json.dumps(v)[:800]))
        quality(v.get("lossAfterRepairPct", 100) < 0.5 and a.get("lossAfterRepairPct", 100) < 0.5,
                "~0 loss after repair (audio and video)", (a.get("lossAfterRepairPct"), v.get("lossAfterRepairPct")))
        print("# sub3 <- pub1: audio %d packets (loss after repair %.2f%%, longest gap %s ms), video %d frames "
              "(loss after repair %.2f%%, freezes %d, PLIs %d), dedup dropped %d" %
              (a.get("packets", 0), a.get("lossAfterRepairPct", -1), a.get("longest_gap_ms"),
               v.get("framesDecoded", 0), v.get("lossAfterRepairPct", -1), v.get("freezeCount", -1),
               v.get("pliCount", -1), relay(n3, "n1").get("dedup_dropped", 0)))
        p1.kill()
        p1.wait(5)
        for ln in n1.log().splitlines():
            if "overlay" in ln:
                print("# n1:", ln)
    finally:
        tc.stop_cluster(nodes, redis, tmp, procs + relays)
    return tc.verdict()


if __name__ == "__main__":
    sys.exit(main())
