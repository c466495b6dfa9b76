#!/usr/bin/python3
"""Room composite (issue 18 items 2, 4; docs/egress.md "Room composite"):
two `hudong pub` (test pattern + tone) in a room; POST /admin/egress with
kind "composite" pushes one H.264 + AAC stream to an MP4 file, HLS and a real
RTMP server (`ffmpeg -listen 1` started here on a free port, writing what it
receives to FLV), plus an RTMP URL nobody listens on.

Checks:
 - bad composite requests get 400 with what to fix;
 - the unreachable RTMP output is retried with backoff and reported
   (state "retrying", attempts, error; an egress_updated webhook) while the
   other outputs run;
 - PATCH /admin/egress/{id} {"layout": speaker, pinned} changes the layout live;
 - DELETE: complete; ffprobe on the MP4, on the HLS playlist and on what the
   RTMP server received: H.264 640x360 at 30 fps + AAC, durations right;
 - decoded frames: in the grid layout both participants' regions show their
   test patterns and the letterbox bands are the background colour; after the
   PATCH the pinned participant fills the left 3/4;
 - egress_ended lists the MP4 and the playlist with durations and sizes;
 - an audio-only room gives an audio-only MP4.

usage: test_egress_composite.py /path/to/hudong
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, cli_token, free_port, http_json, webhook_sink  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
KEY, SECRET = "appC", "secretC"
HOOKS = []


def token(*args):
    return cli_token(HUDONG, KEY, SECRET, *args)


def req(port, method, path, token=None, body=None):
    return http_json(port, method, path, token, body)
W, H = 640, 360


def probe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                        "format=duration:stream=codec_type,codec_name,width,height,r_frame_rate", "-of", "json", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        return json.loads(p.stdout), p.stderr.decode(errors="replace")
    except ValueError:
        return None, p.stderr.decode(errors="replace")


def frame_gray(path, at_s):
    """One decoded frame at at_s seconds as W*H luma bytes (None if none)."""
    p = subprocess.run(["ffmpeg", "-v", "error", "-ss", "%.2f" % at_s, "-i", path, "-frames:v", "1", "-f", "rawvideo",
                        "-pix_fmt", "gray", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return p.stdout if len(p.stdout) == W * H else None


def patch_stats(img, x0, y0, x1, y1):
    """mean and spread of luma over a rectangle"""
    vals = [img[y * W + x] for y in range(y0, y1, 2) for x in range(x0, x1, 2)]
    m = sum(vals) / len(vals)
    return m, max(vals) - min(vals)


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-composite-")
    hooks, _ = webhook_sink(HOOKS)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    port, rport, dead = free_port(), free_port(), free_port()
    cfg = os.path.join(tmp, "hudong.json")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": os.path.join(tmp, "rec"),
                   "egress_min_free_mb": 1,
                   "webhooks": {"urls": ["http://127.0.0.1:%d/hook" % hooks.server_address[1]]}}, f)
    node = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--media-workers", "1", "--rtm-db", ":memory:", "--quality-db", ":memory:"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    flv = os.path.join(tmp, "rtmp_received.flv")
    rtmp = subprocess.Popen(["ffmpeg", "-v", "error", "-listen", "1", "-i", "rtmp://127.0.0.1:%d/live/key" % rport,
                             "-c", "copy", "-y", flv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    pubs = []
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
        url = "http://127.0.0.1:%d" % port
        for i, hz in ((1, 440), (2, 660)):
            pubs.append(subprocess.Popen([HUDONG, "pub", "--url", url, "--token",
                                          token("--room", "show", "--identity", "p%d" % i, "--publish"),
                                          "--tone", str(hz), "--pattern", "320x240@30", "--duration", "30", "--quiet"],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            time.sleep(0.3)
        time.sleep(1)
        rec = token("--room", "show", "--identity", "ops", "--record")
        for body, want in (({"room": "show", "kind": "composite"}, "outputs"),
                           ({"room": "show", "kind": "composite", "outputs": ["ftp://x"]}, "rtmp://"),
                           ({"room": "show", "kind": "composite", "outputs": ["mp4"], "size": "641x360"}, "size"),
                           ({"room": "show", "kind": "composite", "outputs": ["mp4"], "layout": {"regions": [
                               {"x": 0.5, "y": 0, "w": 0.6, "h": 1}]}}, "inside the canvas"),
                           ({"room": "show", "kind": "composite", "outputs": ["mp4"], "audio_format": "ogg"},
                            "unknown member")):
            st, _, text = req(port, "POST", "/admin/egress", rec, body)
            check(st == 400 and want in text, "400 for %s" % json.dumps(body), (st, text))
        outputs = ["mp4", "hls", "rtmp://127.0.0.1:%d/live/key" % rport, "rtmp://127.0.0.1:%d/live/nobody" % dead]
        st, eg, text = req(port, "POST", "/admin/egress", rec, {"room": "show", "kind": "composite", "layout": "grid",
                                                               "outputs": outputs, "size": "%dx%d" % (W, H),
                                                               "fps": 30})
        if not check(st == 201 and eg["kind"] == "composite", "POST composite: 201", (st, text)):
            return 1
        eid = eg["egress_id"]
        t0 = time.time()
        j = {}
        while time.time() - t0 < 10:
            st, j, _ = req(port, "GET", "/admin/egress/" + eid, rec)
            o = {x["url"]: x for x in j.get("outputs", [])}
            dead_o = o.get(outputs[3], {})
            if o.get(outputs[2], {}).get("state") == "active" and dead_o.get("attempts", 0) >= 3:
                break
            time.sleep(0.3)
        o = {x["url"]: x for x in j.get("outputs", [])}
        check(j.get("state") == "active" and j.get("video") is True, "composite active, with video", j)
        check(o.get(outputs[2], {}).get("state") == "active", "the RTMP server's output is active", o)
        d = o.get(outputs[3], {})
        check(d.get("state") == "retrying" and d.get("attempts", 0) >= 3 and "connect" in d.get("error", ""),
              "the unreachable RTMP URL is retried with backoff and reported (%s attempts)" % d.get("attempts"), d)
        upd = [h for h in HOOKS if h["event"] == "egress_updated" and any(
            x.get("state") == "retrying" for x in h["egress"].get("outputs", []))]
        check(len(upd) >= 1, "an egress_updated webhook reports the retrying output")
        time.sleep(max(0.0, 4.5 - (time.time() - t0)))
        t_patch = time.time() - t0
        st, j, text = req(port, "PATCH", "/admin/egress/" + eid, rec,
                          {"layout": {"mode": "speaker", "pinned": "p2", "background": "#000000"}})
        check(st == 200, "PATCH layout: 200", (st, text))
        st, _, text = req(port, "PATCH", "/admin/egress/" + eid, rec, {"layout": "mosaic"})
        check(st == 400 and "grid" in text, "PATCH with an unknown layout: 400", (st, text))
        time.sleep(3)
        st, j, text = req(port, "DELETE", "/admin/egress/" + eid, rec)
        check(st == 200, "DELETE: 200", (st, text))
        t_end = time.time() - t0
        end = time.time() + 15
        while time.time() < end:
            st, j, _ = req(port, "GET", "/admin/egress/" + eid, rec)
            if j["state"] in ("complete", "failed"):
                break
            time.sleep(0.2)
        check(j["state"] == "complete", "stopped: complete", j)
        check(j.get("layout_changes", 0) >= 1, "the recorder applied the new layout", j)
        mp4 = [f for f in j["files"] if f["path"].endswith(".mp4")]
        m3u8 = [f for f in j["files"] if f["path"].endswith(".m3u8")]
        check(len(mp4) == 1 and len(m3u8) == 1, "files: the MP4 and the playlist", j["files"])
        durs = {}
        for path, what in ((mp4[0]["path"] if mp4 else "", "MP4"), (m3u8[0]["path"] if m3u8 else "", "HLS"),
                           (None, "RTMP")):
            if path is None:
                try:
                    rtmp.wait(timeout=10)  # the server ends its file when the stream ends
                except subprocess.TimeoutExpired:
                    rtmp.terminate()
                    rtmp.wait()
                path = flv
            info, err = probe(path)
            if not check(info is not None and "streams" in info, "%s probes" % what, err):
                continue
            v = [s for s in info["streams"] if s["codec_type"] == "video"]
            a = [s for s in info["streams"] if s["codec_type"] == "audio"]
            check(len(v) == 1 and v[0]["codec_name"] == "h264" and v[0]["width"] == W and v[0]["height"] == H and
                  v[0]["r_frame_rate"] == "30/1", "%s: H.264 %dx%d at 30 fps" % (what, W, H), info["streams"])
            check(len(a) == 1 and a[0]["codec_name"] == "aac", "%s: AAC" % what, info["streams"])
            dur = float(info.get("format", {}).get("duration", 0))
            durs[what] = dur
            # the composite starts when the first track arrives (a join: up to ~2 s on a loaded
            # machine), the RTMP leg at its first keyframe (<= 2 s later)
            lo = t_end - 5.0 if what == "RTMP" else t_end - 3.0
            check(lo < dur < t_end + 1.0, "%s duration %.2f s for %.2f s of composite" % (what, dur, t_end))
        # frames: grid (at 2 s) and speaker after the PATCH
        if mp4:
            img = frame_gray(mp4[0]["path"], 2.0)
            if check(img is not None, "a grid frame decodes"):
                bg, spread = patch_stats(img, 100, 4, 220, 50)  # letterbox band above the left tile
                check(abs(bg - 32) < 8 and spread < 16, "grid: the band above the tiles is the background (%.0f)" % bg)
                for x0, who in ((40, "p1"), (360, "p2")):
                    m, s = patch_stats(img, x0, 80, x0 + 240, 280)
                    check(s > 100, "grid: %s's region shows its test pattern (spread %d)" % (who, s))
            img = frame_gray(mp4[0]["path"], min(t_end - 1.0, durs.get("MP4", 0) - 0.7))
            if check(img is not None, "a speaker-layout frame decodes"):
                m, s = patch_stats(img, 40, 40, 440, 320)
                check(s > 100, "speaker: the pinned participant fills the left 3/4 (spread %d)" % s)
                bg, spread = patch_stats(img, 500, 10, 620, 100)
                check(bg < 24 and spread < 16, "speaker: above the side tile is the new black background (%.0f)" % bg)
                m, s = patch_stats(img, 490, 140, 630, 220)
                check(s > 60, "speaker: the other participant in the right column (spread %d)" % s)
        # the node posts egress_ended after the state changes (queued, retried on failure): wait
        # (bounded) for it rather than a fixed 1 s; still exactly one
        end = time.time() + 10
        while time.time() < end and not any(h["event"] == "egress_ended" and h["egress"]["egress_id"] == eid
                                            for h in list(HOOKS)):
            time.sleep(0.1)
        time.sleep(0.3)  # a second one would come by now
        ended = [h for h in HOOKS if h["event"] == "egress_ended" and h["egress"]["egress_id"] == eid]
        if check(len(ended) == 1, "egress_ended webhook"):
            files = ended[0]["egress"]["files"]
            check(len(files) == 2 and all(f["bytes"] > (10000 if f["path"].endswith(".mp4") else 50) and
                                          f["duration_ms"] > 5000 for f in files),
                  "egress_ended lists the MP4 and the playlist with durations and sizes", files)
        check(t_patch > 3, "timing sanity (PATCH after %.1f s)" % t_patch)
        # a composite of a room nobody publishes in, stopped: complete, no media
        etok = token("--room", "empty", "--identity", "ops", "--record")
        st, eg3, text = req(port, "POST", "/admin/egress", etok, {"room": "empty", "kind": "composite",
                                                                  "outputs": ["mp4"]})
        if check(st == 201, "empty room: composite started", (st, text)):
            time.sleep(1.5)
            req(port, "DELETE", "/admin/egress/" + eg3["egress_id"], etok)
            end = time.time() + 15
            while time.time() < end:
                st, j3, _ = req(port, "GET", "/admin/egress/" + eg3["egress_id"], etok)
                if j3["state"] in ("complete", "failed"):
                    break
                time.sleep(0.2)
            check(j3["state"] == "complete" and not j3.get("error"), "empty room stopped: complete", j3)
        # an audio-only room gives an audio-only output
        pubs.append(subprocess.Popen([HUDONG, "pub", "--url", url, "--token",
                                      token("--room", "radio", "--identity", "dj", "--publish"),
                                      "--tone", "880", "--duration", "30", "--quiet"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        time.sleep(1)
        st, eg2, text = req(port, "POST", "/admin/egress", token("--room", "radio", "--identity", "ops", "--record"),
                            {"room": "radio", "kind": "composite", "outputs": ["mp4"]})
        if check(st == 201, "audio-only room: composite started", (st, text)):
            time.sleep(5)
            rtok = token("--room", "radio", "--identity", "ops", "--record")
            req(port, "DELETE", "/admin/egress/" + eg2["egress_id"], rtok)
            end = time.time() + 15
            while time.time() < end:
                st, j2, _ = req(port, "GET", "/admin/egress/" + eg2["egress_id"], rtok)
                if j2["state"] in ("complete", "failed"):
                    break
                time.sleep(0.2)
            check(j2["state"] == "complete" and j2["video"] is False, "audio-only composite: complete, video false", j2)
            info, err = probe(j2["files"][0]["path"]) if j2.get("files") else (None, "no file")
            kinds = sorted(x["codec_type"] + ":" + x["codec_name"] for x in (info or {}).get("streams", []))
            check(kinds == ["audio:aac"], "audio-only room: the MP4 holds AAC only", (kinds, err))
    finally:
        for p in pubs:
            p.kill()
            p.wait()
        if rtmp.poll() is None:
            rtmp.kill()
            rtmp.wait()
        node.terminate()
        try:
            rc = node.wait(timeout=15)
            check(rc == 0, "the node stops cleanly", node.stderr.read().decode(errors="replace")[-1500:])
        except subprocess.TimeoutExpired:
            node.kill()
            check(False, "the node stops within 15 s")
        hooks.shutdown()
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
