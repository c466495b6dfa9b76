#!/usr/bin/python3
"""RTMP ingest (issue 18 item 3; docs/egress.md "RTMP ingest"): an OBS-like
publisher (ffmpeg -f flv: H.264 test pattern + a 1 kHz AAC tone) publishes to
a real RTMP server (Debian nginx with libnginx-mod-rtmp on a free port) whose
on_publish asks the node; with a good stream key the node starts an ingest
process that publishes into the room, watched by `hudong sub`.

Checks: POST /admin/ingress gives a stream key and URL (400 for a bad
identity, 403 without roomAdmin); a made-up key is refused by on_publish
(ffmpeg cannot publish); with the real key the room gets participant "obs"
with video (frames decoded) and audio (dominant frequency ~1000 Hz); GET
/admin/egress lists the ingest; on_publish_done ends it (complete, webhook).

usage: test_egress_ingest.py /path/to/hudong
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, cli_token, free_port, http_json  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
KEY, SECRET = "appI", "secretI"
RTMP_MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"


def token(*args):
    return cli_token(HUDONG, KEY, SECRET, *args)


def req(port, method, path, token=None, body=None):
    return http_json(port, method, path, token, body)


def publish(url, seconds):
    return subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
                             "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", str(seconds),
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-g", "30",
                             "-c:a", "aac", "-f", "flv", url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def main():
    if not os.path.exists(RTMP_MODULE) or not shutil.which("nginx"):
        check(False, "nginx with libnginx-mod-rtmp is installed (tools/install-deps.sh)")
        return 1
    tmp = tempfile.mkdtemp(prefix="hudong-ingest-")
    port, rport = free_port(), free_port()
    cfg = os.path.join(tmp, "hudong.json")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": os.path.join(tmp, "rec"),
                   "egress_min_free_mb": 1, "ingest_rtmp_url": "rtmp://127.0.0.1:%d/live" % rport}, f)
    ncfg = os.path.join(tmp, "nginx.conf")
    with open(ncfg, "w") as f:
        f.write("""load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log %s/nginx.log info;
pid %s/nginx.pid;
events { worker_connections 64; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    application live {
      live on;
      allow play 127.0.0.1;
      deny play all;
      on_publish http://127.0.0.1:%d/api/rtmp/on_publish;
      on_publish_done http://127.0.0.1:%d/api/rtmp/on_publish_done;
    }
  }
}
""" % (RTMP_MODULE, tmp, tmp, rport, port, port))
    node = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--media-workers", "1", "--rtm-db", ":memory:", "--quality-db", ":memory:"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    nginx = subprocess.Popen(["nginx", "-c", ncfg, "-p", tmp, "-e", os.path.join(tmp, "nginx.log")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pub = None
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        admin = token("--room", "stage", "--identity", "ops", "--admin")
        st, _, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "o b s"})
        check(st == 400 and "identity" in text, "a bad identity: 400", (st, text))
        st, _, text = req(port, "POST", "/admin/ingress", token("--room", "stage", "--identity", "x", "--record"),
                          {"room": "stage", "identity": "obs"})
        check(st == 403 and "roomAdmin" in text, "without roomAdmin: 403", (st, text))
        st, ing, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "obs"})
        if not check(st == 201 and ing["url"].startswith("rtmp://127.0.0.1:%d/live/" % rport), "a stream key: 201",
                     (st, text)):
            return 1
        # a made-up key: on_publish says 403, nginx drops the publisher
        bad = publish("rtmp://127.0.0.1:%d/live/%s" % (rport, ing["stream_key"][:-4] + "0000"), 3)
        try:
            bad.wait(timeout=10)
        except subprocess.TimeoutExpired:
            bad.kill()
            bad.wait()
        check(bad.returncode != 0, "a made-up stream key is refused", bad.stderr.read().decode(errors="replace")[-300:])
        pub = publish(ing["url"], 20)
        time.sleep(2)
        out = os.path.join(tmp, "sub")
        os.makedirs(out)
        sub = subprocess.run([HUDONG, "sub", "--url", "http://127.0.0.1:%d" % port, "--token",
                              token("--room", "stage", "--identity", "viewer", "--subscribe"), "--out", out,
                              "--duration", "7", "--json", "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        try:
            summary = json.loads(sub.stdout.decode())
        except ValueError:
            summary = {}
        tracks = [t for t in summary.get("tracks", []) if t.get("identity") == "obs"]
        v = [t for t in tracks if t.get("kind") == "video"]
        a = [t for t in tracks if t.get("kind") == "audio"]
        check(len(v) == 1 and v[0].get("frames_decoded", 0) > 30,
              "the room sees obs's video (%s frames decoded)" % (v[0].get("frames_decoded") if v else "no"),
              sub.stdout.decode()[-800:])
        check(len(a) == 1 and abs(a[0].get("tone_hz", 0) - 1000) < 30,
              "the room hears obs's 1 kHz tone (%s Hz)" % (a[0].get("tone_hz") if a else "no"), a)
        st, j, _ = req(port, "GET", "/admin/egress", token("--room", "stage", "--identity", "ops", "--record"))
        ins = [e for e in (j or {}).get("egresses", []) if e.get("kind") == "ingest"]
        check(len(ins) == 1 and ins[0]["state"] == "active" and ins[0]["identity"] == "obs" and
              ins[0]["ingest"].get("video_frames", 0) > 30, "GET /admin/egress lists the ingest, active", j)
        pub.terminate()  # the publisher stops: on_publish_done ends the ingest
        pub.wait()
        end = time.time() + 15
        while time.time() < end and ins:
            st, j, _ = req(port, "GET", "/admin/egress", token("--room", "stage", "--identity", "ops", "--record"))
            ins = [e for e in (j or {}).get("egresses", []) if e.get("kind") == "ingest"]
            if ins and ins[0]["state"] in ("complete", "failed"):
                break
            time.sleep(0.3)
        check(ins and ins[0]["state"] == "complete", "the publisher stopped: the ingest is complete", ins)
    finally:
        if pub and pub.poll() is None:
            pub.kill()
            pub.wait()
        nginx.terminate()
        try:
            nginx.wait(timeout=5)
        except subprocess.TimeoutExpired:
            nginx.kill()
        node.terminate()
        try:
            rc = node.wait(timeout=15)
            check(rc == 0, "the node stops cleanly", node.stderr.read().decode(errors="replace")[-1500:])
        except subprocess.TimeoutExpired:
            node.kill()
            check(False, "the node stops within 15 s")
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
