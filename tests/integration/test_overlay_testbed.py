#!/usr/bin/python3
"""The overlay test bed (issue 16 item 5; bench/overlay/testbed.py): redis-server,
4 nodes and a `hudong netem` relay pair on every impaired node pair, each node
reaching a peer through its relay with `--peer-addr` (docs/overlay.md
"Per-pair addresses"). The default topology: A-C 150 ms one way and 10% loss,
A-B and B-C 20 ms and 0.5%, A-D and D-C 45 ms and 1%, B-D 30 ms.

 1. Per-pair impairment: A measures C at >= 250 ms RTT with loss while B
    measures C at < 100 ms and C's own probes to B stay short: only the A-C
    path is slow (a relay in front of C's port would slow B -> C too).
 2. The route A -> C goes through B (the direct path is worse).
 3. A-B dies (4 s blackout on both relays): A marks B down and its route to C
    stops starting on A-B (through D) within 3.5 s; when A-B comes back, the
    route returns to A-B-C.
 4. A malformed --peer-addr stops `hudong serve` with a message naming the form.

usage: test_overlay_testbed.py /path/to/hudong
"""
import os
import json
import tempfile
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "overlay"))
import test_cluster as tc  # noqa: E402
from test_cluster import check, section, wait_until  # noqa: E402
import testbed  # noqa: E402


def main():
    hudong = os.path.abspath(sys.argv[1])
    tc.HUDONG = hudong
    section("4. a malformed --peer-addr is refused at start")
    out = subprocess.run([hudong, "serve", "--listen", "127.0.0.1:%d" % tc.free_port(), "--peer-addr",
                          "C=localhost:9000"], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and "NODE_ID=IP:PORT" in out.stderr and "C=localhost:9000" in out.stderr,
          "exit 2 with the entry and the expected form", (out.returncode, out.stderr[-500:]))
    # the overlay's tunables (config "overlay", docs/overlay.md "Tuning the overlay"): a value out of
    # range or an unknown key stops the node at start with the key, the range and the page
    for cfg, want in (({"overlay": {"probe_interval_ms": 5}}, "overlay.probe_interval_ms must be in [20, 1000] ms"),
                      ({"overlay": {"probe_intervall_ms": 50}}, "unknown key 'overlay.probe_intervall_ms'"),
                      ({"overlay": {"dup_audio_loss": "2%"}}, "'overlay.dup_audio_loss' must be a number"),
                      ({"overlay": {"hop_cache": 100000}}, "overlay.hop_cache must be an integer in [16, 8192]"),
                      ({"overlay": {"rescue_max": -1}}, "overlay.rescue_max must be an integer in [0, 8192]"),
                      ({"overlay": {"down_confirm_ms": 20000}}, "overlay.down_confirm_ms must be in [0, 10000] ms")):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(cfg, f)
        out = subprocess.run([hudong, "serve", "--listen", "127.0.0.1:%d" % tc.free_port(), "--config", f.name],
                             capture_output=True, text=True, timeout=10)
        os.unlink(f.name)
        check(out.returncode != 0 and want in out.stderr and "Tuning the overlay" in out.stderr,
              "config %s is refused: %s" % (json.dumps(cfg), want), (out.returncode, out.stderr[-500:]))

    bed = testbed.Bed(hudong)
    t_start = time.time()
    try:
        bed.start()
        section("1. only the A-C path is slow")

        def rtt(a, b):
            l = bed.link(a, b)
            return l.get("rtt_ms", 0) if l.get("up") else 0
        ok = wait_until(lambda: rtt("A", "C") >= 250 and 0 < rtt("B", "C") < 100 and 0 < rtt("A", "B") < 100,
                        15, step=0.5)
        check(ok is not None, "A -> C >= 250 ms RTT, B -> C and A -> B < 100 ms",
              (rtt("A", "C"), rtt("B", "C"), rtt("A", "B")))
        check(0 < rtt("C", "B") < 100, "C -> B stays short (C reaches B through its own B relay)", rtt("C", "B"))
        # the forward loss is a mean over the probes so far (up to 100): with 40 to 80 of them at 10%
        # loss, under 3% lost happens in 1 to 8 runs in a hundred (binomial); more probes settle it
        time.sleep(2)  # a few dozen probes first (B -> C's estimate below uses them too)
        t_loss = time.time()
        seen = wait_until(lambda: bed.link("A", "C").get("loss_fwd", 0) >= 0.03, 15, step=0.25)
        ac, bc = bed.link("A", "C"), bed.link("B", "C")
        check(seen is not None, "A -> C shows loss (10% configured)", ac.get("loss_fwd"))
        print("# A -> C's forward loss reached 3%% %.1f s after the 2 s of probes" % (time.time() - t_loss))
        check(bc.get("loss_fwd", 1) < 0.05, "B -> C shows little loss (0.5% configured)", bc.get("loss_fwd"))
        print("measured: A->C %.1f ms %.1f%%, A->B %.1f ms, B->C %.1f ms, A->D %.1f ms" % (
            rtt("A", "C"), 100 * ac.get("loss_fwd", 0), rtt("A", "B"), rtt("B", "C"), rtt("A", "D")))

        section("2. the route A -> C goes through B")
        ok = wait_until(lambda: bed.route("A", "C")[0] == ["B"], 8, step=0.25)
        check(ok is not None, "A routes to C via B", bed.links("A").get("routes"))

        section("3. A-B dies for 4 s: the route leaves B, then comes back")
        bed.impair("A-B", {"set": {"blackout_now_ms": 4000}})
        t0 = time.time()
        ok = wait_until(lambda: (bed.route("A", "C")[0] or ["B"])[0] != "B", 3.5, step=0.05)
        moved = time.time() - t0
        via = bed.route("A", "C")[0]
        check(ok is not None and via and via[0] != "B",
              "within 3.5 s A's route to C no longer starts on the dead A-B link (now via %s)" % via,
              bed.links("A").get("routes"))
        print("route moved off A-B %.2f s after the blackout began, now via %s" % (moved, via))
        check(not bed.link("A", "B").get("up", True), "A sees its link to B down", bed.link("A", "B"))
        ok = wait_until(lambda: bed.route("A", "C")[0] == ["B"], 20, step=0.25)
        check(ok is not None, "after the blackout A routes to C via B again", bed.links("A").get("routes"))
        print("back via B %.1f s after the blackout began" % (time.time() - t0))
    finally:
        failed = bool(tc.FAILS)
        if failed:
            for n in bed.nodes.values():
                print("---- %s log tail\n%s" % (n.name, n.log()[-2000:] if n.proc else ""))
        bed.stop()
    print("took %.1f s" % (time.time() - t_start))
    return tc.verdict()


if __name__ == "__main__":
    sys.exit(main())
