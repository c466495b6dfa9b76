#!/usr/bin/python3
"""bench/overlay/stalls.py — scheduling stalls on the test bed (issue 16 review:
flaps; docs/overlay.md "Flaps on the test bed").

Starts the bench's flaps bed (bench/overlay/testbed.py: 4 nodes, +-JITTER ms on
every relay, no schedule, no media), waits until the routes settle, then
N times, 4 s apart: SIGSTOP for MS ms and SIGCONT of one random node, one random
`hudong netem` relay, or every node and relay at once (a VM not running), and
prints the link downs, link suspects and route changes (by why) summed over the
4 nodes. A stalled process is what made links flap on the shared 2-core machine.

    bench/overlay/stalls.py [--bin build/hudong] [--mode node|relay|all] [--stalls 10] [--ms 200]
"""
import argparse
import json
import os
import random
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import testbed  # noqa: E402


def counts(bed):
    out = {"changes": 0, "downs": 0, "suspects": 0, "by": {}}
    for a in bed.names:
        js = bed.links(a)
        out["changes"] += js.get("route_changes", 0)
        for w, v in (js.get("route_changes_by") or {}).items():
            out["by"][w] = out["by"].get(w, 0) + v
        for link in js.get("links", []):
            out["downs"] += link.get("downs", 0)
            out["suspects"] += link.get("suspects", 0)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "hudong"))
    ap.add_argument("--mode", default="node", choices=["node", "relay", "all"])
    ap.add_argument("--stalls", type=int, default=10)
    ap.add_argument("--ms", type=float, default=200)
    ap.add_argument("--jitter", type=float, default=10)
    a = ap.parse_args()
    bed = testbed.Bed(os.path.abspath(a.bin), jitter=a.jitter, seed=7)
    rng = random.Random(3)
    try:
        bed.start()
        end = time.time() + 60
        last, since = None, time.time()
        while time.time() < end:  # settled: same routes and no route change for 10 s
            cur = [bed.route(x, y)[0] for x in bed.names for y in bed.names if x != y]
            cur.append([bed.links(x).get("route_changes", 0) for x in bed.names])
            if cur != last:
                last, since = cur, time.time()
            elif time.time() - since > 10 and None not in cur:
                break
            time.sleep(0.5)
        c0 = counts(bed)
        for _ in range(a.stalls):
            if a.mode == "node":
                pids = [bed.nodes[rng.choice(bed.names)].proc.pid]
            elif a.mode == "relay":
                pids = [bed.relays[rng.choice(sorted(bed.relays))]["proc"].pid]
            else:
                pids = [n.proc.pid for n in bed.nodes.values()] + [r["proc"].pid for r in bed.relays.values()]
            for p in pids:
                os.kill(p, signal.SIGSTOP)
            time.sleep(a.ms / 1000)
            for p in pids:
                os.kill(p, signal.SIGCONT)
            time.sleep(4)
        time.sleep(3)
        c1 = counts(bed)
    finally:
        bed.stop()
    res = {"mode": a.mode, "stalls": a.stalls, "ms": a.ms, "load": round(os.getloadavg()[0], 1),
           "route_changes": c1["changes"] - c0["changes"], "link_downs": c1["downs"] - c0["downs"],
           "link_suspects": c1["suspects"] - c0["suspects"],
           "by": {w: v - c0["by"].get(w, 0) for w, v in c1["by"].items()}}
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
