#!/usr/bin/python3
"""The load generator on several threads (issue 17: `hudong bench load
--threads N`): against a real `hudong serve` (2 media workers), one publisher
and 6 count-only subscribers, then 4 decrypting ones, split over 2 generator
threads, paced at --join-rate. Checks that every leg comes up, that the
report's per-thread counts add up to the totals (expected and received, legs
up), that each thread counted something (both loops ran legs), that a quiet
small run loses nothing, and that the join ramp and the threads' CPU are
reported, and that the publisher's own pacer holds nothing (its wait was
measured as added latency, docs/overlay.md). TSan runs it too (tools/test.sh). Bad values of --threads / --join-rate are refused with a message.

usage: test_bench_threads.py /path/to/hudong
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, free_media_port, free_port  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"


def bench(port, tmp, name, extra):
    out = os.path.join(tmp, name + ".json")
    cmd = [HUDONG, "bench", "load", "--target", "hudong", "--url", "http://127.0.0.1:%d" % port, "--key", "devkey",
           "--secret", "devsecret", "--room", name, "--publishers", "1", "--duration", "2", "--warmup", "1",
           "--join-timeout", "10", "--threads", "2", "--join-rate", "20", "--quiet", "--json", out] + extra
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    text = p.stdout.decode(errors="replace")
    print("# " + " ".join(cmd[2:]))
    for ln in (text + p.stderr.decode(errors="replace")).splitlines():
        print("#   " + ln)
    js = json.load(open(out)) if os.path.exists(out) else {}
    return p.returncode, js, text


def check_run(name, rc, js, text, subs):
    check(rc == 0, name + ": exit 0 (all legs up, loss < 0.5%)", rc)
    check(js.get("threads") == 2, name + ": ran on 2 generator threads", js.get("threads"))
    check(js.get("sub_legs_up") == subs and js.get("sub_legs_total") == subs and js.get("publishers_up") == 1,
          name + ": every leg up", (js.get("publishers_up"), js.get("sub_legs_up"), js.get("sub_legs_total")))
    gt = js.get("generator_threads") or []
    check(len(gt) == 2, name + ": one entry per generator thread", gt)
    check(sum(t["sub_legs"] for t in gt) == subs and sum(t["sub_legs_up"] for t in gt) == js.get("sub_legs_up"),
          name + ": legs per thread add up", gt)
    check(js.get("expected", 0) > 0 and sum(t["expected"] for t in gt) == js.get("expected"),
          name + ": expected per thread adds up to the total", (gt, js.get("expected")))
    check(sum(t["received"] for t in gt) == js.get("received"), name + ": received per thread adds up to the total",
          (gt, js.get("received")))
    check(all(t["sub_legs"] > 0 and t["received"] > 0 for t in gt), name + ": both threads ran legs and counted",
          gt)
    check(all(t["cpu_pct"] >= 0 for t in gt) and "generator threads (% of a core" in text,
          name + ": each thread's CPU reported", gt)
    if js.get("mode") == "count_only":
        # no gap in any stream; the arrivals are marked on arrival by each
        # thread, so a packet in flight at a mark may fall either side of it
        streams = subs * 2
        check(js.get("seq_loss") == 0 and js.get("received", 0) >= js.get("expected", 0) - 2 * streams,
              name + ": no loss on a quiet small run (no sequence gap, arrivals within the marks' slack)",
              (js.get("seq_loss"), js.get("expected"), js.get("received")))
    else:
        check(js.get("loss") == 0, name + ": no loss on a quiet small run", js.get("loss"))
    check(js.get("join_rate") == 20 and js.get("sub_join_s", 0) > 0 and "join ramp: %d subscriber legs over 2 "
          "threads" % subs in text, name + ": the join ramp and its duration are reported",
          (js.get("join_rate"), js.get("sub_join_s")))


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-benchthreads-it-")
    port, media = free_port(), free_media_port(2)
    p = subprocess.Popen([HUDONG, "serve", "--dev", "--listen", "127.0.0.1:%d" % port, "--rtc-port", str(media),
                          "--media-workers", "2", "--rtm-db", ":memory:", "--room-empty-timeout", "0"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                if urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=2).status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        rc, js, text = bench(port, tmp, "bt-count", ["--subscribers", "6", "--count-only", "--server-pid",
                                                      str(p.pid)])
        check_run("count-only", rc, js, text, 6)
        check(js.get("server_cpu_pct", -1) >= 0, "count-only: the node's CPU measured", js.get("server_cpu_pct"))
        # the synthetic 1 Mbit/s video ignores the publisher's estimate: its own pacer must hold
        # nothing, or that wait (up to 250 ms at start-up) is measured as the node's added latency
        check(js.get("publisher_paced_waits") == 0, "the publisher's pacer held no packet (video at its fixed rate)",
              js.get("publisher_paced_waits"))
        rc, js, text = bench(port, tmp, "bt-decrypt", ["--subscribers", "4", "--audio-only"])
        check_run("decrypt", rc, js, text, 4)
        check(js.get("latency_p50_us", 0) > 0, "decrypt: latency measured from both threads' samples",
              js.get("latency_p50_us"))
        for bad, want in ((["--threads", "0"], "--threads takes 1..16"),
                          (["--threads", "17"], "--threads takes 1..16"),
                          (["--join-rate", "-1"], "--join-rate takes legs per second")):
            r = subprocess.run([HUDONG, "bench", "load", "--target", "hudong", "--url", "http://127.0.0.1:1",
                                "--key", "k", "--secret", "s"] + bad, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            check(r.returncode == 2 and want in r.stderr.decode(), "refused: " + " ".join(bad),
                  (r.returncode, r.stderr[-300:]))
        r = subprocess.run([HUDONG, "bench", "load", "--target", "janus", "--url", "http://127.0.0.1:1/janus",
                            "--threads", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        check(r.returncode == 2 and b"use --threads 1" in r.stderr, "janus with --threads 2 is refused",
              r.stderr[-300:])
    finally:
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=20)[1].decode(errors="replace")
        check(p.returncode == 0, "the node stops cleanly", err[-600:])
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
