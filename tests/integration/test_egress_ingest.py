#!/usr/bin/python3
"""RTMP ingest (issue 18 item 3; docs/egress.md "RTMP ingest"): an OBS-like
publisher (ffmpeg -f flv: H.264 test pattern + a 1 kHz AAC tone) publishes to
a real RTMP server (Debian nginx with libnginx-mod-rtmp on a free port) whose
on_publish asks the node; with a good stream key the node starts an ingest
process that publishes into the room, watched by `hudong sub`.

Checks: POST /admin/ingress gives a stream key and URL (400 for a bad
identity or video policy, 403 without roomAdmin); a made-up key is refused by
on_publish (ffmpeg cannot publish); with the real key the room gets
participant "obs" with video (frames decoded) and audio (dominant frequency
~1000 Hz); GET /admin/egress lists the ingest; on_publish_done ends it
(complete, webhook).

H.264 passthrough: "obs" sends libx264's default (High, B-frames): it is
transcoded to VP8. "obs2" sends the same picture as x264 High without
B-frames (-bf 0) at the same time: it goes into the room as H.264 High
without decoding (GET /admin/egress says passthrough, the room's participant
list says codec H264), a track recording of the room (a viewer that takes
H.264) writes it to an MP4 that ffprobe reads as h264 High 320x240 and
decodes, and the obs2 ingest process uses less CPU than obs's over the same
seconds (both printed). Then `hudong sub` joins, a viewer that decodes no
H.264: its answer refuses obs2's track, the node tells the ingest
(track_refused), which switches obs2 to VP8 mid-stream, and the viewer
decodes obs2's video too. "obs3" sends baseline with a key made with
"video": "transcode": VP8. "obs4" sends baseline with a keyframe every 4 s:
passed through at first, then transcoded once 2.5 s pass without an IDR
(ingest_max_keyframe_interval_ms: a viewer of a passed-through stream waits
for the next IDR). "obs5" sends its first video 7 s after its audio (what the
ingest sees when it starts playing after the publisher's first IDR of a long
GOP: nginx-rtmp sends no video until the next): the video is taken up when it
comes, after the ingest's 5 s stream probe.

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


def publish(url, seconds, baseline=False, high_no_b=False, gop=30, video_after=0):
    prof = ["-profile:v", "baseline"] if baseline else ["-profile:v", "high", "-bf", "0"] if high_no_b else []
    late = ["-itsoffset", str(video_after)] if video_after else []
    return subprocess.Popen(["ffmpeg", "-v", "error", "-re"] + late + ["-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
                             "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100", "-t", str(seconds),
                             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryfast", "-g", str(gop)] + prof +
                            ["-c:a", "aac", "-f", "flv", url], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def cpu_s(pid):
    """user + system CPU seconds of a process (/proc/PID/stat fields 14, 15)"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def ingests(port, tok):
    st, j, _ = http_json(port, "GET", "/admin/egress", tok)
    return {e.get("identity"): e for e in (j or {}).get("egresses", []) if e.get("kind") == "ingest"}


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
    pub = pub2 = None
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
        st, _, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "x", "video": "h265"})
        check(st == 400 and "transcode" in text, "a bad video policy: 400", (st, text))
        st, ing2, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "obs2"})
        check(st == 201 and (ing2 or {}).get("video") == "auto", "obs2's key: video auto", (st, text))
        st, ing3, text = req(port, "POST", "/admin/ingress", admin,
                             {"room": "stage", "identity": "obs3", "video": "transcode"})
        check(st == 201 and "~obs3~t~" in (ing3 or {}).get("stream_key", ""), "obs3's key carries the transcode policy",
              (st, text))
        rec_tok = token("--room", "stage", "--identity", "ops", "--record")
        pub = publish(ing["url"], 20)
        pub2 = publish((ing2 or {}).get("url", "rtmp://127.0.0.1:1/none"), 25, high_no_b=True)
        time.sleep(2)
        st, rec, text = req(port, "POST", "/admin/egress", rec_tok, {"room": "stage", "kind": "track"})
        check(st == 201, "a track recording of the room starts", (st, text))
        ins = ingests(port, rec_tok)
        pids = {k: ins[k].get("pid") for k in ("obs", "obs2") if k in ins and ins[k].get("pid")}
        cpu0 = {k: cpu_s(p) for k, p in pids.items()}
        time.sleep(7)  # only the recorder watches: it takes H.264 High, so obs2 stays passed through
        cpu1 = {k: cpu_s(p) for k, p in pids.items()}
        used = {k: (cpu1[k] - cpu0[k]) if cpu0.get(k) is not None and cpu1.get(k) is not None else None
                for k in pids}
        ins = ingests(port, rec_tok)
        o1, o2 = ins.get("obs", {}), ins.get("obs2", {})
        check(o1.get("state") == "active" and o1.get("ingest", {}).get("video_frames", 0) > 30,
              "GET /admin/egress lists the ingest, active", ins)
        i1, i2 = o1.get("ingest", {}), o2.get("ingest", {})
        check(i1.get("video_codec") == "VP8" and i1.get("passthrough") is False and
              "B-frames" in i1.get("video_mode", ""),
              "obs (x264 High, B-frames) is transcoded to VP8: %s" % i1.get("video_mode"), i1)
        check(o2.get("state") == "active" and i2.get("video_codec") == "H264" and i2.get("passthrough") is True and
              "High" in i2.get("video_mode", "") and i2.get("video_frames", 0) > 30,
              "obs2 (x264 High, no B-frames) passes through as H.264: %s" % i2.get("video_mode"), i2)
        print("ingest CPU over the same %s s: transcode (obs) %s s, passthrough (obs2) %s s; load %s" %
              (7, used.get("obs"), used.get("obs2"), open("/proc/loadavg").read().split()[:3]))
        check(used.get("obs") is not None and used.get("obs2") is not None and used["obs2"] < used["obs"],
              "the passthrough ingest uses less CPU than the transcoding one", used)
        st, parts, _ = req(port, "GET", "/admin/rooms/stage/participants", admin)
        codecs = {(p["identity"], t["kind"]): t.get("codec") for p in (parts or {}).get("participants", [])
                  for t in p.get("tracks", [])}
        check(codecs.get(("obs2", "video")) == "H264" and codecs.get(("obs", "video")) == "VP8",
              "the room lists obs2's video as H264, obs's as VP8", codecs)
        time.sleep(1)
        st, done, text = req(port, "DELETE", "/admin/egress/" + (rec or {}).get("egress_id", "x"), rec_tok)
        end = time.time() + 15
        while time.time() < end:
            st, done, _ = req(port, "GET", "/admin/egress/" + (rec or {}).get("egress_id", "x"), rec_tok)
            if (done or {}).get("state") in ("complete", "failed"):
                break
            time.sleep(0.3)
        f2 = [f for f in (done or {}).get("files", []) if f.get("identity") == "obs2" and f.get("kind") == "video"]
        check(len(f2) == 1 and f2[0].get("codec") == "h264" and f2[0]["path"].endswith(".mp4"),
              "the recording has obs2's video as H.264 MP4", (done or {}).get("files"))
        if f2:
            path = f2[0]["path"] if os.path.isabs(f2[0]["path"]) else os.path.join(tmp, f2[0]["path"])
            pr = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                                 "stream=codec_name,profile,width,height,nb_read_frames", "-of", "json", path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            try:
                vs = json.loads(pr.stdout.decode()).get("streams", [{}])[0]
            except (ValueError, IndexError):
                vs = {}
            check(vs.get("codec_name") == "h264" and vs.get("profile") == "High" and vs.get("width") == 320 and
                  vs.get("height") == 240 and int(vs.get("nb_read_frames") or 0) > 60,
                  "ffprobe decodes obs2's recording: h264 %s 320x240, %s frames" %
                  (vs.get("profile"), vs.get("nb_read_frames")), (vs, pr.stderr.decode(errors="replace")[-300:]))
        # a viewer that decodes no H.264 (the native SDK decodes VP8): it refuses
        # obs2's track, the ingest is told and switches obs2 to VP8
        out = os.path.join(tmp, "sub")
        os.makedirs(out)
        sub = subprocess.run([HUDONG, "sub", "--url", "http://127.0.0.1:%d" % port, "--token",
                              token("--room", "stage", "--identity", "viewer", "--subscribe"), "--out", out,
                              "--duration", "8", "--json", "--quiet"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=60)
        try:
            summary = json.loads(sub.stdout.decode())
        except ValueError:
            summary = {}
        for who in ("obs", "obs2"):
            tracks = [t for t in summary.get("tracks", []) if t.get("identity") == who]
            v = [t for t in tracks if t.get("kind") == "video" and t.get("frames_decoded", 0) > 0]
            check(len(v) >= 1 and max(t.get("frames_decoded", 0) for t in v) > 30,
                  "the VP8-only viewer sees %s's video (%s frames decoded)" %
                  (who, [t.get("frames_decoded") for t in v]), sub.stdout.decode()[-800:])
            if who == "obs":
                a = [t for t in tracks if t.get("kind") == "audio"]
                check(len(a) == 1 and abs(a[0].get("tone_hz", 0) - 1000) < 30,
                      "the room hears obs's 1 kHz tone (%s Hz)" % (a[0].get("tone_hz") if a else "no"), a)
        i2 = ingests(port, rec_tok).get("obs2", {}).get("ingest", {})
        check(i2.get("video_codec") == "VP8" and i2.get("passthrough") is False and
              "viewer cannot decode" in i2.get("video_mode", ""),
              "a viewer refused obs2's H.264: switched to VP8: %s" % i2.get("video_mode"), i2)
        pub.terminate()  # the publisher stops: on_publish_done ends the ingest
        pub.wait()
        pub2.terminate()
        pub2.wait()
        end = time.time() + 15
        while time.time() < end:
            ins = ingests(port, rec_tok)
            if all(ins.get(k, {}).get("state") in ("complete", "failed") for k in ("obs", "obs2")):
                break
            time.sleep(0.3)
        check(all(ins.get(k, {}).get("state") == "complete" for k in ("obs", "obs2")),
              "the publishers stopped: the ingests are complete", ins)
        # the key's policy: baseline H.264 under a "transcode" key is re-encoded;
        # keyframes 4 s apart: passed through until 2.5 s pass without one (4 s,
        # not more: an ingest that starts playing after the publisher's first
        # IDR sees no video from nginx-rtmp until the next, and its stream
        # probe gives up on video after 5 s)
        st, ing4, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "obs4"})
        pub4 = publish((ing4 or {}).get("url", "rtmp://127.0.0.1:1/none"), 20, baseline=True, gop=120)
        st, ing5, text = req(port, "POST", "/admin/ingress", admin, {"room": "stage", "identity": "obs5"})
        pub5 = publish((ing5 or {}).get("url", "rtmp://127.0.0.1:1/none"), 20, baseline=True, video_after=7)
        pub3 = publish((ing3 or {}).get("url", "rtmp://127.0.0.1:1/none"), 4, baseline=True)
        end = time.time() + 15
        i3 = {}
        while time.time() < end:
            i3 = ingests(port, rec_tok).get("obs3", {})
            if i3.get("ingest", {}).get("video_codec"):
                break
            time.sleep(0.3)
        check(i3.get("ingest", {}).get("video_codec") == "VP8" and i3["ingest"].get("passthrough") is False,
              "obs3 (baseline, key says transcode) is transcoded to VP8", i3)
        end = time.time() + 25
        seen, i4 = set(), {}
        while time.time() < end:
            i4 = ingests(port, admin).get("obs4", {}).get("ingest", {})
            if i4.get("video_codec"):
                seen.add(i4["video_codec"])
            if i4.get("video_codec") == "VP8":
                break
            time.sleep(0.2)
        check(seen == {"H264", "VP8"} and "keyframes more than 2500 ms apart" in i4.get("video_mode", ""),
              "obs4 (an IDR every 4 s) passed through, then transcoded: %s" % i4.get("video_mode"), (seen, i4))
        i5 = {}
        end = time.time() + 25
        while time.time() < end:
            i5 = ingests(port, admin).get("obs5", {}).get("ingest", {})
            if i5.get("video_frames", 0) > 30:
                break
            time.sleep(0.3)
        check(i5.get("video_codec") == "H264" and i5.get("video_frames", 0) > 30,
              "obs5 (video 7 s after audio) gets its video into the room (%s frames, %s)" %
              (i5.get("video_frames"), i5.get("video_codec")), i5)
        pub5.kill()
        pub5.wait()
        pub4.kill()  # 20 s leaves a slow (ASan) ingest that starts late two IDR gaps; no need to wait
        pub4.wait()
        try:
            pub3.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pub3.kill()
    finally:
        for p in (pub, pub2):
            if p and p.poll() is None:
                p.kill()
                p.wait()
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
