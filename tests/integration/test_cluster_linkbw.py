#!/usr/bin/python3
"""Bandwidth per node link (issue 16 item 1; docs/overlay.md "Bandwidth per
link"): a real redis-server and two `hudong serve --redis` nodes on free
127.0.0.1 ports; n1 reaches n2's media port through a `hudong netem` relay
(--peer-addr on n1), clean at first.

 1. No room shared: the link carries only probes, so no estimate
    (bw_estimate_kbps null, no hudong_link_bw_estimate_bps line).
 2. A publisher on n1 and a subscriber on n2: n1's link to n2 shows
    bw_estimate_kbps, a plausible value (at least ~what arrives, which is
    what the publisher sends, and below 10 Gbit/s), not congested; /metrics
    has hudong_link_bw_estimate_bps{peer="n2"}; `hudong cluster links` shows
    it in its bw_kbps column and --json as is.
 3. The relay limits n1 -> n2 to about half of what arrived (200 ms queue):
    the estimate falls to about that rate and the link reads congested.

usage: test_cluster_linkbw.py /path/to/hudong
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
from test_cluster import Node, Redis, check, free_port, get, section, view, wait_until  # noqa: E402
from test_cluster_links import admin_token, by_peer, links  # noqa: E402
from test_cluster_relay import impair, netem  # noqa: E402
from test_cluster_room import pub, sub  # noqa: E402


def link(node, peer):
    return by_peer(links(node)).get(peer, {})


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-linkbw-")
    redis = Redis(tmp, free_port())
    nodes, procs = [], []
    try:
        redis.start()
        p2, r2, c2 = free_port(), free_port(), free_port()
        procs.append(netem(tmp, "netem-n2", r2, p2, c2))
        n2 = Node(tmp, "n2", redis.port, extra=["--rtc-port", str(p2)])
        n2.start()
        n1 = Node(tmp, "n1", redis.port, extra=["--peer-addr", "n2=127.0.0.1:%d" % r2])
        n1.start()
        nodes += [n1, n2]
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")
        check(wait_until(lambda: link(n1, "n2").get("up"), 5, step=0.2) is not None, "n1's link to n2 is up")

        section("1. no room shared: probes only, no estimate")
        time.sleep(1)
        l = link(n1, "n2")
        check("bw_estimate_kbps" in l and l["bw_estimate_kbps"] is None and l.get("bw", {}).get("flows") == 0,
              "bw_estimate_kbps is null while the link carries no room", l.get("bw"))
        st, _, text = get(n1.port, "/metrics")
        check(st == 200 and "hudong_link_bw_estimate_bps{" not in text, "no bandwidth gauge yet",
              [ln for ln in text.splitlines() if "bw_estimate" in ln])

        section("2. a publisher on n1, a subscriber on n2")
        secs = 20
        s2 = sub(tmp, n2, "sub2", secs)
        procs.append(s2)
        time.sleep(0.5)
        p1 = pub(tmp, n1, "pub1", secs)
        procs.append(p1)

        def flowing():
            x = link(n1, "n2").get("bw", {})
            return x.get("flows", 0) >= 1 and x.get("acked_kbps", 0) > 30
        ok = wait_until(flowing, 10, step=0.25)
        check(ok is not None, "n1 -> n2 has arrival reports for the room's media", link(n1, "n2"))
        time.sleep(3)
        l = link(n1, "n2")
        bw = l.get("bw", {})
        est = l.get("bw_estimate_kbps")
        print("# n1 -> n2: %s" % json.dumps(bw))
        check(isinstance(est, (int, float)) and est >= 0.9 * bw.get("acked_kbps", 1e9) and 30 < est < 1e7,
              "bw_estimate_kbps is plausible: at least ~what arrives, under 10 Gbit/s", bw)
        # one read may catch a keyframe's burst (sent over 300 ms vs what arrived): clear within 5 s
        ok = wait_until(lambda: not link(n1, "n2").get("bw", {}).get("congested"), 5, step=0.25)
        check(ok is not None and bw.get("feedbacks", 0) > 20 and bw.get("bad", 1) == 0,
              "a clean link: not congested, reports taken, none refused", link(n1, "n2").get("bw"))
        back = link(n2, "n1").get("bw", {})
        check(back.get("reports_sent", 0) > 20 and back.get("unnoted", 1) == 0,
              "n2 reports what arrives from n1 and drops no note", back)
        # the reports go to the worker that sealed what they report (link version 2 names it)
        check(l.get("rx_replay") == 0 and link(n2, "n1").get("rx_replay") == 0,
              "no datagram refused as a replay or misaddressed on either side",
              (l.get("rx_replay"), link(n2, "n1").get("rx_replay")))
        st, _, text = get(n1.port, "/metrics")
        gauge = [ln for ln in text.splitlines() if ln.startswith('hudong_link_bw_estimate_bps{peer="n2"}')]
        check(st == 200 and len(gauge) == 1 and float(gauge[0].split()[-1]) > 30000,
              "/metrics has hudong_link_bw_estimate_bps{peer=\"n2\"}", gauge)
        out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", "http://127.0.0.1:%d" % n1.port, "--token",
                              admin_token()], capture_output=True, text=True, timeout=10)
        rows = [ln.split() for ln in out.stdout.split("relay with", 1)[0].splitlines()]
        head = [r for r in rows if r and r[0] == "peer"]
        row = [r for r in rows if r and r[0] == "n2"]
        check(out.returncode == 0 and head and head[0][-1] == "bw_kbps" and row and row[0][-1].isdigit() and
              int(row[0][-1]) > 30, "hudong cluster links shows n2's bw_kbps", out.stdout + out.stderr)
        print(out.stdout.split("relay with", 1)[0])
        out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", "http://127.0.0.1:%d" % n1.port, "--token",
                              admin_token(), "--json"], capture_output=True, text=True, timeout=10)
        js = json.loads(out.stdout) if out.returncode == 0 else {}
        check(isinstance(by_peer(js).get("n2", {}).get("bw_estimate_kbps"), (int, float)),
              "hudong cluster links --json has bw_estimate_kbps", out.stdout[:800] + out.stderr)

        section("3. n1 -> n2 limited to about half of what it carries")
        acked = max(bw.get("acked_kbps", 100), 60)
        limit = int(acked / 2)
        st, text = impair(c2, {"up": {"rate": limit, "queue": 200}})
        check(st == 200, "the relay limits n1 -> n2 to %d kbit/s" % limit, text)

        def limited():
            x = link(n1, "n2")
            e = x.get("bw_estimate_kbps")
            return isinstance(e, (int, float)) and e < 1.4 * limit and x["bw"].get("congested")
        ok = wait_until(limited, 10, step=0.25)
        l = link(n1, "n2")
        print("# after the limit (%d kbit/s): %s" % (limit, json.dumps(l.get("bw"))))
        check(ok is not None, "the estimate falls to about the limit (< 1.4 x %d kbit/s) and the link reads "
              "congested" % limit, l.get("bw"))
        p1.kill()
        s2.kill()
    finally:
        tc.stop_cluster(nodes, redis, tmp, procs)
    return tc.verdict()


if __name__ == "__main__":
    sys.exit(main())
