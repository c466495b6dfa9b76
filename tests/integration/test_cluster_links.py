#!/usr/bin/python3
"""Link measurement between cluster nodes (issue 16 items 1-4; docs/overlay.md
"Link measurement"): a real redis-server and three `hudong serve --redis`
nodes on free 127.0.0.1 ports (helpers from test_cluster.py), no room shared.

 1. Every node probes every other over the node link: GET /admin/cluster/links
    on each shows both peers up with a sane RTT (> 0, < 50 ms on loopback),
    the published tables make a route to every other node, and /metrics has
    hudong_link_rtt_seconds / hudong_link_up per peer. A room-scoped token
    is refused (403).
 2. n3's announced media address is a `hudong netem` relay adding 40 ms each
    way: the links n1 -> n3 and n2 -> n3 measure >= 70 ms while n1 <-> n2 stays
    short (the probes to n3 go through the relay; n3's own probes go straight
    to the others, so its links stay short).

usage: test_cluster_links.py /path/to/hudong
"""
import base64
import hashlib
import hmac
import http.client
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


def admin_token(room=None):
    """An app-wide roomAdmin token (room=None), or one bound to a room."""
    now = int(time.time())
    grants = {"roomAdmin": True}
    if room:
        grants["room"] = room
    claims = {"iss": tc.APP, "sub": "ops", "exp": now + 600, "iat": now, "grants": grants}

    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = b64u(hmac.new(tc.SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def links(node):
    st, js, text = get(node.port, "/admin/cluster/links", admin_token())
    return js if st == 200 and js else {"error": text}


def by_peer(js):
    return {l["peer"]: l for l in js.get("links", [])}


def all_up(node, peers, lo, hi):
    ls = by_peer(links(node))
    return all(p in ls and ls[p]["up"] and lo < ls[p]["rtt_ms"] < hi for p in peers)


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-links-")
    redis = Redis(tmp, free_port())
    nodes = []
    relay = None
    try:
        redis.start()
        # n3's media port is fixed and its announced port is the relay's (section 2)
        n3_port, relay_port = free_port(), free_port()
        ctl_port = free_port()
        # the relay in front of n3's media port: no impairment until section 2
        relay = subprocess.Popen([tc.HUDONG, "netem", "--listen", "127.0.0.1:%d" % relay_port, "--to",
                                  "127.0.0.1:%d" % n3_port, "--control", "127.0.0.1:%d" % ctl_port],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "netem.log"), "wb"))
        for name in ("n1", "n2", "n3"):
            extra = ["--rtc-port", str(n3_port), "--rtc-announce-port", str(relay_port)] if name == "n3" else []
            n = Node(tmp, name, redis.port, extra=extra)
            n.start()
            nodes.append(n)
        n1, n2, n3 = nodes
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2", "n3"] for n in nodes), 6) is not None,
              "the three nodes see each other")

        section("1. every pair is measured")
        ok = wait_until(lambda: all(all_up(n, [m.name for m in nodes if m is not n], 0, 50) for n in nodes), 8,
                        step=0.25)
        check(ok is not None, "every node sees both peers up with 0 < RTT < 50 ms (loopback)",
              [links(n) for n in nodes])
        time.sleep(1.2)  # >= 10 probes at 100 ms
        js = links(n1)
        l2 = by_peer(js).get("n2", {})
        check(l2.get("probes_sent", 0) >= 10 and l2.get("echoes_received", 0) >= 10 and
              len(l2.get("samples_rtt_ms", [])) > 0, "n1 -> n2: probes, echoes and raw samples", l2)
        check(l2.get("loss_fwd", 1) < 0.2 and l2.get("loss_rtt", 1) < 0.2, "n1 -> n2: little loss on loopback", l2)
        ok = wait_until(lambda: {r["to"]: r["up"] for r in links(n1).get("routes", [])} == {"n2": True, "n3": True},
                        4, step=0.25)
        check(ok is not None, "n1 has a route to n2 and to n3 (from the published link tables)", links(n1))
        st, _, text = get(n1.port, "/metrics")
        check(st == 200 and 'hudong_link_rtt_seconds{peer="n2"}' in text and 'hudong_link_up{peer="n3"} 1' in text,
              "/metrics has hudong_link_rtt_seconds and hudong_link_up per peer",
              [ln for ln in text.splitlines() if "hudong_link" in ln])
        st, _, text = get(n1.port, "/admin/cluster/links", admin_token("someroom"))
        check(st == 403, "a room-scoped admin token is refused (403)", (st, text))
        st, _, text = get(n1.port, "/admin/cluster/links")
        check(st == 401, "no token: 401", (st, text))
        out = subprocess.run([tc.HUDONG, "cluster", "links", "--url", "http://127.0.0.1:%d" % n1.port, "--token",
                              admin_token()], capture_output=True, text=True, timeout=10)
        check(out.returncode == 0 and "n2" in out.stdout and "n3" in out.stdout and "up" in out.stdout,
              "hudong cluster links prints the table", out.stdout + out.stderr)
        print(out.stdout)

        section("2. 40 ms each way in front of n3's media port")
        c = http.client.HTTPConnection("127.0.0.1", ctl_port, timeout=5)
        c.request("POST", "/impair", body=json.dumps({"both": {"delay": 40}}))
        r = c.getresponse()
        check(r.status == 200, "the relay takes the delay", r.read()[:300])
        c.close()

        def rtt(a, b):
            return by_peer(links(a)).get(b.name, {}).get("rtt_ms", 0)
        ok = wait_until(lambda: rtt(n1, n3) >= 70 and rtt(n2, n3) >= 70, 10, step=0.25)
        check(ok is not None, "n1 -> n3 and n2 -> n3 measure >= 70 ms (80 ms added)",
              (rtt(n1, n3), rtt(n2, n3)))
        check(rtt(n1, n2) < 50 and rtt(n2, n1) < 50, "n1 <-> n2 stays short", (rtt(n1, n2), rtt(n2, n1)))
        check(rtt(n3, n1) < 50, "n3 -> n1 stays short (its probes do not cross the relay)", rtt(n3, n1))
        print("measured: n1->n3 %.1f ms, n2->n3 %.1f ms, n1->n2 %.1f ms, n3->n1 %.1f ms" %
              (rtt(n1, n3), rtt(n2, n3), rtt(n1, n2), rtt(n3, n1)))
        st, _, text = get(n1.port, "/metrics")
        m = [ln for ln in text.splitlines() if ln.startswith('hudong_link_rtt_seconds{peer="n3"}')]
        check(m and float(m[0].split()[-1]) >= 0.05, "/metrics shows the n3 link's RTT (as of the last heartbeat)", m)
    finally:
        if relay:
            relay.kill()
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
                n.proc.wait()
        redis.stop()
    if tc.FAILS:
        for n in nodes:
            print("---- %s log tail\n%s" % (n.name, n.log()[-3000:] if n.proc else ""))
        print("FAILED: %s" % tc.FAILS)
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
