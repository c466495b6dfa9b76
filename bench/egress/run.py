#!/usr/bin/python3
"""bench/egress (issue 18 item 7; docs/performance.md "Egress").

One node (1 media worker), P `hudong pub` publishers (test pattern + tone) in
room "show". Measured from /proc of the recorder processes (utime + stime
over the window, RSS at the end):

  1. one room composite at SIZE@FPS (default 1280x720@30) to an MP4 file:
     CPU (% of one core), RSS, skipped frames (falling behind real time);
  2. K concurrent composites of the same room (K = 1..--max-composites):
     whether each keeps real time (its skipped frames < 1%); "concurrent
     composites in real time" is the largest K at which all K did;
  3. N track recordings of the same room: CPU and RSS per recording;
  4. isolation (item 5): the node's forwarding latency (`hudong bench load`,
     1 publisher -> 10 subscribers in another room on the same worker) without
     and with a composite running.

usage: bench/egress/run.py build/hudong [--publishers 4] [--size 1280x720] [--fps 30]
                           [--seconds 20] [--max-composites 3] [--tracks 10] [--json FILE]
Numbers depend on the machine and its load: print `uptime` next to them.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from hdtest import free_port  # noqa: E402  (a port outside the kernel's ephemeral range)

TCK = os.sysconf("SC_CLK_TCK")
KEY, SECRET = "benchkey", "benchsecret"


def cpu_ticks(pid):
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError):
        return None


def rss_kb(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def req(port, method, path, token, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=json.dumps(body) if body else None, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    t = r.read().decode(errors="replace")
    try:
        return r.status, json.loads(t)
    except ValueError:
        return r.status, t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hudong")
    ap.add_argument("--publishers", type=int, default=4)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--pub-pattern", default="640x360@30")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--max-composites", type=int, default=3)
    ap.add_argument("--tracks", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    H = a.hudong
    tmp = tempfile.mkdtemp(prefix="hudong-bench-egress-")
    port = free_port()
    cfg = os.path.join(tmp, "hudong.json")
    json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": os.path.join(tmp, "rec"),
               "egress_max": 200, "egress_min_free_mb": 100}, open(cfg, "w"))
    node = subprocess.Popen([H, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--media-workers", "1", "--rtm-db", ":memory:", "--quality-db", ":memory:"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)

    def tok(*args):
        return subprocess.run([H, "token", "--key", KEY, "--secret", SECRET, "--ttl", "7200"] + list(args),
                              stdout=subprocess.PIPE, check=True).stdout.decode().split()[-1]

    url = "http://127.0.0.1:%d" % port
    pubs = [subprocess.Popen([H, "pub", "--url", url, "--token", tok("--room", "show", "--identity", "p%d" % i,
                                                                     "--publish"),
                              "--tone", str(300 + 100 * i), "--pattern", a.pub_pattern, "--duration", "3600",
                              "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for i in range(a.publishers)]
    rec = tok("--room", "show", "--identity", "ops", "--record")
    res = {"uptime": open("/proc/loadavg").read().split()[:3], "publishers": a.publishers, "size": a.size,
           "fps": a.fps, "seconds": a.seconds}
    time.sleep(3)

    def measure(ids, seconds):
        """CPU % of one core and RSS (kB) per recorder over `seconds`"""
        pids = {}
        for _ in range(50):
            for i in ids:
                st, j = req(port, "GET", "/admin/egress/" + i, rec)
                if st == 200 and "pid" in j:
                    pids[i] = j["pid"]
            if len(pids) == len(ids):
                break
            time.sleep(0.2)
        time.sleep(3)  # warm-up: joined, keyframes, encoders running
        t0 = {i: cpu_ticks(p) for i, p in pids.items()}
        s0 = {i: req(port, "GET", "/admin/egress/" + i, rec)[1] for i in ids}
        w0 = time.time()
        time.sleep(seconds)
        dt = time.time() - w0
        out = {}
        for i, p in pids.items():
            t1 = cpu_ticks(p)
            j = req(port, "GET", "/admin/egress/" + i, rec)[1]
            frames = j.get("frames", 0) - s0[i].get("frames", 0)
            skipped = j.get("skipped_frames", 0) - s0[i].get("skipped_frames", 0)
            out[i] = {"cpu_pct": round(100.0 * (t1 - t0[i]) / TCK / dt, 1) if t1 is not None else None,
                      "rss_kb": rss_kb(p), "frames": frames, "skipped": skipped}
        return out

    def stop(ids):
        for i in ids:
            req(port, "DELETE", "/admin/egress/" + i, rec)
        time.sleep(2)

    # 1 + 2: composites
    comp = []
    for k in range(1, a.max_composites + 1):
        ids = []
        for _ in range(k):
            st, j = req(port, "POST", "/admin/egress", rec, {"room": "show", "kind": "composite", "outputs": ["mp4"],
                                                            "size": a.size, "fps": a.fps})
            ids.append(j["egress_id"])
        m = measure(ids, a.seconds)
        cpus = [v["cpu_pct"] for v in m.values()]
        skipped = sum(v["skipped"] for v in m.values())
        frames = sum(v["frames"] for v in m.values())
        each = [round(100.0 * v["skipped"] / max(1, v["frames"]), 2) for v in m.values()]
        realtime = sum(1 for v in m.values() if v["frames"] > 0 and v["skipped"] < 0.01 * v["frames"])
        row = {"composites": k, "cpu_pct_each": cpus, "rss_kb_each": [v["rss_kb"] for v in m.values()],
               "skipped_pct": round(100.0 * skipped / max(1, frames), 2), "skipped_pct_each": each,
               "realtime": realtime}
        comp.append(row)
        print("composites %d: CPU %% of a core each %s, RSS kB %s, skipped frames %.2f%% (each %s), "
              "%d of %d in real time (skipped < 1%%)" %
              (k, cpus, row["rss_kb_each"], row["skipped_pct"], each, realtime, k), flush=True)
        stop(ids)
    res["composites"] = comp
    # the largest K at which every one of the K composites kept real time
    res["concurrent_composites_realtime"] = max([r["composites"] for r in comp if r["realtime"] == r["composites"]],
                                                default=0)
    if comp:
        print("concurrent composites in real time: %d (of up to %d tried)" %
              (res["concurrent_composites_realtime"], a.max_composites), flush=True)

    # 3: track recordings
    ids = []
    for _ in range(a.tracks):
        st, j = req(port, "POST", "/admin/egress", rec, {"room": "show", "kind": "track"})
        ids.append(j["egress_id"])
    m = measure(ids, a.seconds)
    cpus = [v["cpu_pct"] for v in m.values() if v["cpu_pct"] is not None]
    rss = [v["rss_kb"] for v in m.values() if v["rss_kb"]]
    res["tracks"] = {"recordings": a.tracks, "tracks_each": 2 * a.publishers,
                     "cpu_pct_mean": round(sum(cpus) / len(cpus), 2) if cpus else None,
                     "rss_kb_mean": int(sum(rss) / len(rss)) if rss else None}
    print("track recordings: %d at once, each %d tracks: CPU %% of a core each (mean) %s, RSS kB %s" %
          (a.tracks, 2 * a.publishers, res["tracks"]["cpu_pct_mean"], res["tracks"]["rss_kb_mean"]), flush=True)
    stop(ids)

    # 4: forwarding latency without / with a composite
    def load(label):
        out = os.path.join(tmp, "load_%s.json" % label)
        subprocess.run([H, "bench", "load", "--target", "hudong", "--url", url, "--key", KEY, "--secret", SECRET,
                        "--room", "fwd", "--publishers", "1", "--subscribers", "10", "--duration", str(a.seconds),
                        "--warmup", "3", "--server-pid", str(node.pid), "--json", out, "--quiet"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=a.seconds + 120)
        try:
            j = json.load(open(out))
        except (OSError, ValueError):
            return None
        return {k: j.get(k) for k in ("latency_p50_us", "latency_p99_us", "loss_pct", "server_cpu_pct",
                                      "server_us_per_fwd_pkt") if k in j}

    res["forwarding_without"] = load("without")
    st, j = req(port, "POST", "/admin/egress", rec, {"room": "show", "kind": "composite", "outputs": ["mp4"],
                                                    "size": a.size, "fps": a.fps})
    time.sleep(3)
    res["forwarding_with_composite"] = load("with")
    stop([j["egress_id"]])
    print("forwarding (1 -> 10 in room fwd), without a composite: %s" % res["forwarding_without"])
    print("forwarding (1 -> 10 in room fwd), with a composite on the node: %s" % res["forwarding_with_composite"])
    for p in pubs:
        p.kill()
        p.wait()
    node.terminate()
    node.wait(timeout=20)
    res["uptime_end"] = open("/proc/loadavg").read().split()[:3]
    print(json.dumps(res))
    if a.json:
        json.dump(res, open(a.json, "w"), indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
