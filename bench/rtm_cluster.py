#!/usr/bin/python3
"""The cost of RTM across nodes (issue 15 item 5; docs/overlay.md "RTM across
nodes"): the same channel traffic on one node without Redis, within one node
of a cluster, and across two nodes of a cluster (publisher on n1, subscribers
on n2). A real redis-server on a free port; all on 127.0.0.1.

 - latency: publish -> delivery of one message at a time (the next once the
   last arrived), N samples, p50/p90/p99 in ms;
 - peer messages (issue 15 item 5): send -> arrival and send -> receipt
   (the recipient acks at once), samples/3 per repeat, p50;
 - cost: a publisher at a fixed rate into a channel of F subscribers for T s;
   server CPU (hudong processes + redis-server, from /proc) per delivered
   message, in microseconds.

Numbers, not a test. Usage: bench/rtm_cluster.py /path/to/hudong [--samples 300]
[--rate 400] [--fanout 10] [--secs 4] [--repeat 3]"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import test_cluster as tc  # noqa: E402
import test_rtm_cluster as trc  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")


class Node(tc.Node):
    """A node of tests/integration/test_cluster.py with the per-connection
    rate limit lifted (rtm.rate, rtm.burst): the publisher here is one
    connection at hundreds of messages per second."""

    def start(self):
        orig = json.dump

        def dump(cfg, f, **kw):
            cfg.setdefault("rtm", {}).update({"rate": 100000, "burst": 100000})
            return orig(cfg, f, **kw)
        json.dump = dump
        try:
            super().start()
        finally:
            json.dump = orig


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / HZ


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


def latency(pub, sub, ch, n):
    sub.req({"type": "sub", "ch": ch})
    pub.req({"type": "sub", "ch": ch + "-x"})  # warm
    out = []
    for i in range(n):
        k = len(sub.msgs)
        t = time.perf_counter()
        pub.send({"type": "pub", "ch": ch, "data": "m%d" % i, "id": "l%d" % i})  # ids, as the clients send
        if not sub.wait(lambda c: len(c.msgs) > k, 5):
            break
        out.append((time.perf_counter() - t) * 1000)
        if i % 16 == 15:
            pub.ack()
            sub.ack()
        time.sleep(0.002)
    return out


def peer_latency(a, b, n):
    """Peer message a -> b: send -> arrival, and send -> receipt (b acks at once)."""
    arr, rec = [], []
    for i in range(n):
        k = len(trc.ev(b, type="peer"))
        t = time.perf_counter()
        a.send({"type": "peer", "id": "pl%d" % i, "to": b.user, "data": "p%d" % i})
        if not b.wait(lambda c: len(trc.ev(c, type="peer")) > k, 5):
            break
        arr.append((time.perf_counter() - t) * 1000)
        b.ack()
        if not a.wait(lambda c: trc.ev(c, type="receipt", id="pl%d" % i), 5):
            break
        rec.append((time.perf_counter() - t) * 1000)
        if i % 16 == 15:
            a.ack()
        time.sleep(0.002)
    return arr, rec


def cost(pub, subs, ch, rate, secs, pids):
    for s in subs:
        s.req({"type": "sub", "ch": ch})
    time.sleep(0.5)
    want0 = sum(len(s.msgs) for s in subs)
    c0 = sum(cpu_s(p) for p in pids)
    n = int(rate * secs)
    t0 = time.time()
    for i in range(n):
        pub.send({"type": "pub", "ch": ch, "data": "x" * 64, "id": "c%d" % i})
        if i % 32 == 31:
            pub.ack()
        dt = t0 + (i + 1) / rate - time.time()
        if dt > 0:
            time.sleep(dt)
    target = want0 + n * len(subs)
    ok = all(s.wait(lambda c: len(c.msgs) >= (target - want0) // len(subs) + 0, 20) for s in subs)
    c1 = sum(cpu_s(p) for p in pids)
    got = sum(len(s.msgs) for s in subs) - want0
    for s in subs:
        s.ack()
    return ok, got, (c1 - c0) * 1e6 / max(got, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hudong")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--rate", type=float, default=400)
    ap.add_argument("--fanout", type=int, default=10)
    ap.add_argument("--secs", type=float, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    tc.HUDONG = a.hudong
    tmp = tempfile.mkdtemp(prefix="hd-rtmcb-")
    redis = tc.Redis(tmp, tc.free_port())
    nodes = []
    res = {"latency_ms": {}, "cpu_us_per_delivery": {}}
    try:
        redis.start()
        n0 = Node(tmp, "solo")
        n1, n2 = Node(tmp, "n1", redis.port), Node(tmp, "n2", redis.port)
        for n in (n0, n1, n2):
            n.start()
            nodes.append(n)
        cases = {"one node, no Redis": (n0, n0, [n0.proc.pid]),
                 "cluster, same node": (n1, n1, [n1.proc.pid, n2.proc.pid, redis.proc.pid]),
                 "cluster, across nodes": (n1, n2, [n1.proc.pid, n2.proc.pid, redis.proc.pid])}
        for name, (pn, sn, pids) in cases.items():
            lats, costs, parr, prec = [], [], [], []
            for r in range(a.repeat):
                pub = trc.Client(pn, "p%d" % r)
                sub = trc.Client(sn, "s%d" % r)
                lats.append(latency(pub, sub, "lat-%s-%d" % (pn.name + sn.name, r), a.samples))
                pa, pr = peer_latency(pub, sub, a.samples // 3)
                parr.append(pct(pa, 0.5))
                prec.append(pct(pr, 0.5))
                subs = [trc.Client(sn, "f%d-%d" % (r, i)) for i in range(a.fanout)]
                ok, got, c = cost(pub, subs, "cost-%s-%d" % (pn.name + sn.name, r), a.rate, a.secs, pids)
                costs.append(c)
                for c_ in [pub, sub] + subs:
                    c_.close()
                time.sleep(0.3)
            p50 = [pct(x, 0.5) for x in lats]
            p99 = [pct(x, 0.99) for x in lats]
            res["latency_ms"][name] = {"p50": sorted(p50), "p99": sorted(p99)}
            res["cpu_us_per_delivery"][name] = sorted(costs)
            res.setdefault("peer_ms", {})[name] = {"arrival_p50": sorted(parr), "receipt_p50": sorted(prec)}
            print("%-24s latency p50 %.2f ms (%.2f..%.2f), p99 %.2f ms (%.2f..%.2f); server CPU per delivery "
                  "%.1f us (%.1f..%.1f) at %d msg/s x %d subscribers" % (
                      name, sorted(p50)[len(p50) // 2], min(p50), max(p50), sorted(p99)[len(p99) // 2],
                      min(p99), max(p99), sorted(costs)[len(costs) // 2], min(costs), max(costs), a.rate,
                      a.fanout), flush=True)
            print("%-24s peer message p50: arrival %.2f ms (%.2f..%.2f), receipt %.2f ms (%.2f..%.2f)" % (
                name, sorted(parr)[len(parr) // 2], min(parr), max(parr), sorted(prec)[len(prec) // 2], min(prec),
                max(prec)), flush=True)
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.terminate()
                n.proc.wait(10)
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
