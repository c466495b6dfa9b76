#!/usr/bin/python3
"""bench/egress/ingest_cpu.py (issue 18 item 3; docs/performance.md "Egress"):
CPU of one RTMP ingest process with H.264 passthrough against one that
transcodes the same stream to VP8.

One node, nginx with libnginx-mod-rtmp on a free port (as
tests/integration/test_egress_ingest.py), two `ffmpeg -re -f flv` publishers
of the same test picture (x264 baseline, SIZE@FPS, 1 kHz AAC) at the same
time, one with a "video": "auto" key (passed through as H.264), one with a
"video": "transcode" key (decoded, re-encoded to VP8). Each ingest
process's utime + stime over the same window (from /proc), and the load
before and after. Both also transcode AAC -> Opus.

usage: bench/egress/ingest_cpu.py build/hudong [--size 1280x720] [--fps 30] [--seconds 15]
Numbers depend on the machine and its load: the load average is printed with them.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "integration"))
from hdtest import cli_token, free_port, http_json  # noqa: E402

KEY, SECRET = "benchkey", "benchsecret"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def cpu_s(pid):
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def load():
    return open("/proc/loadavg").read().split()[:3]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hudong")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--seconds", type=int, default=15)
    a = ap.parse_args()
    if not os.path.exists(RTMP_MODULE) or not shutil.which("nginx"):
        print("needs nginx with libnginx-mod-rtmp (tools/install-deps.sh)")
        return 1
    tmp = tempfile.mkdtemp(prefix="hudong-bench-ingest-")
    port, rport = free_port(), free_port()
    cfg = os.path.join(tmp, "hudong.json")
    json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": os.path.join(tmp, "rec"),
               "egress_min_free_mb": 1, "ingest_rtmp_url": "rtmp://127.0.0.1:%d/live" % rport}, open(cfg, "w"))
    ncfg = os.path.join(tmp, "nginx.conf")
    open(ncfg, "w").write("""load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s/nginx.log info;
pid %s/nginx.pid;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:%d; application live { live on; allow play 127.0.0.1; deny play all;
  on_publish http://127.0.0.1:%d/api/rtmp/on_publish; on_publish_done http://127.0.0.1:%d/api/rtmp/on_publish_done; } } }
""" % (RTMP_MODULE, tmp, tmp, rport, port, port))
    node = subprocess.Popen([a.hudong, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--media-workers", "1", "--rtm-db", ":memory:", "--quality-db", ":memory:"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = subprocess.Popen(["nginx", "-c", ncfg, "-p", tmp, "-e", os.path.join(tmp, "nginx.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pubs = []
    try:
        time.sleep(1)
        admin = cli_token(a.hudong, KEY, SECRET, "--room", "bench", "--identity", "ops", "--admin")
        keys = {}
        for ident, video in (("pass", "auto"), ("trans", "transcode")):
            st, j, text = http_json(port, "POST", "/admin/ingress", admin,
                                    {"room": "bench", "identity": ident, "video": video})
            if st != 201:
                print("POST /admin/ingress: %d %s" % (st, text))
                return 1
            keys[ident] = j["url"]
        for ident in ("pass", "trans"):
            pubs.append(subprocess.Popen(
                ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=%s:rate=%d" % (a.size, a.fps),
                 "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", str(a.seconds + 15),
                 "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-profile:v", "baseline",
                 "-g", str(2 * a.fps), "-b:v", "2M", "-c:a", "aac", "-f", "flv", keys[ident]],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(5)  # joined, publishing, encoders running
        st, j, _ = http_json(port, "GET", "/admin/egress", admin)
        ing = {e["identity"]: e for e in (j or {}).get("egresses", []) if e.get("kind") == "ingest"}
        pids = {k: ing.get(k, {}).get("pid") for k in ("pass", "trans")}
        if not all(pids.values()):
            print("ingests not running: %s" % ing)
            return 1
        l0 = load()
        c0 = {k: cpu_s(p) for k, p in pids.items()}
        f0 = {k: ing[k]["ingest"].get("video_frames", 0) for k in pids}
        w0 = time.time()
        time.sleep(a.seconds)
        dt = time.time() - w0
        c1 = {k: cpu_s(p) for k, p in pids.items()}
        st, j, _ = http_json(port, "GET", "/admin/egress", admin)
        ing = {e["identity"]: e for e in (j or {}).get("egresses", []) if e.get("kind") == "ingest"}
        res = {"size": a.size, "fps": a.fps, "seconds": round(dt, 1), "load_before": l0, "load_after": load()}
        for k in ("pass", "trans"):
            i = ing.get(k, {}).get("ingest", {})
            res[k] = {"cpu_pct": round(100 * (c1[k] - c0[k]) / dt, 1), "video_codec": i.get("video_codec"),
                      "frames": i.get("video_frames", 0) - f0[k], "mode": i.get("video_mode")}
        print(json.dumps(res))
        print("ingest %s@%d, %.0f s, load %s -> %s: passthrough (%s) %.1f%% of a core, transcode (%s) %.1f%% of a "
              "core (%.1fx)" % (a.size, a.fps, dt, " ".join(l0), " ".join(res["load_after"]),
                                res["pass"]["video_codec"], res["pass"]["cpu_pct"], res["trans"]["video_codec"],
                                res["trans"]["cpu_pct"],
                                res["trans"]["cpu_pct"] / max(0.1, res["pass"]["cpu_pct"])))
        return 0
    finally:
        for p in pubs:
            p.kill()
            p.wait()
        nginx.terminate()
        nginx.wait()
        node.terminate()
        try:
            node.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
