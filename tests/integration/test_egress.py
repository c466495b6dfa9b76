#!/usr/bin/python3
"""Track recording (issue 18 items 1, 4, 5; docs/egress.md): `hudong pub`
(tone + test pattern) publishes into a room of `hudong serve`; the admin API
starts recordings (`hudong egress` child processes) and stops them.

Checks:
 1. refusals with clear errors: no token (401), a token without canRecord
    (403), a bad body or kind (400), a room the token does
    not name (403);
 2. POST /admin/egress (canRecord token) -> 201; GET shows it active with an
    Ogg/Opus and a WebM/VP8 file growing;
 3. the limit (egress_max = 2): a third recording gets 429 naming the key;
 4. kill -9 of one recorder: the node marks it failed ("killed by signal 9"),
    keeps forwarding (the other recording goes on), and its files are
    playable: ffprobe reads them and ffmpeg decodes every frame;
 5. DELETE stops the other cleanly: state complete; ffprobe: Opus and VP8,
    durations within 0.5 s of what the recorder reports and of the time it
    was recording (minus the join), ~30 fps; a second DELETE gets 409;
 6. webhooks egress_started, egress_updated (a file opened) and egress_ended
    with the paths, durations and sizes of the files; /metrics counters;
 7. a node whose disk floor (egress_min_free_mb) is above the free space
    refuses a recording with 507 naming the key.

usage: test_egress.py /path/to/hudong
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, cli_token, free_port, http_json, webhook_sink  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
KEY, SECRET = "appE", "secretE"
HOOKS = []


def token(*args):
    return cli_token(HUDONG, KEY, SECRET, *args)


def req(port, method, path, token=None, body=None):
    return http_json(port, method, path, token, body)


def probe(path):
    p = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries",
                        "format=duration:stream=codec_name,width,height,nb_read_frames", "-of", "json", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        j = json.loads(p.stdout)
    except ValueError:
        return None, p.stderr.decode(errors="replace")
    return j, p.stderr.decode(errors="replace")


def decodes(path):
    p = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    return p.returncode == 0, p.stderr.decode(errors="replace")


def wait_state(port, tok, eid, states, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        st, j, _ = req(port, "GET", "/admin/egress/" + eid, tok)
        if st == 200 and j["state"] in states:
            return j
        time.sleep(0.2)
    return req(port, "GET", "/admin/egress/" + eid, tok)[1]


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-egress-")
    hooks, _ = webhook_sink(HOOKS)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    port = free_port()
    cfg = os.path.join(tmp, "hudong.json")
    egdir = os.path.join(tmp, "rec")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": egdir, "egress_max": 2,
                   "egress_min_free_mb": 1,
                   "webhooks": {"urls": ["http://127.0.0.1:%d/hook" % hooks.server_address[1]]}}, f)
    node = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--media-workers", "1", "--rtm-db", ":memory:", "--quality-db", ":memory:"],
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
        url = "http://127.0.0.1:%d" % port
        pub = subprocess.Popen([HUDONG, "pub", "--url", url, "--token",
                                token("--room", "rec", "--identity", "alice", "--publish"),
                                "--tone", "440", "--pattern", "320x240@30", "--duration", "40", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)
        rec = token("--room", "rec", "--identity", "ops", "--record")

        # 1. refusals
        st, _, text = req(port, "POST", "/admin/egress", None, {"room": "rec"})
        check(st == 401, "no token: 401", (st, text))
        st, _, text = req(port, "POST", "/admin/egress", token("--room", "rec", "--identity", "x", "--subscribe"),
                          {"room": "rec"})
        check(st == 403 and "canRecord" in text, "a token without canRecord: 403 naming the grant", (st, text))
        st, _, text = req(port, "POST", "/admin/egress", rec, {"room": "rec", "outputs": []})
        check(st == 400 and "unknown member" in text, "an unknown member: 400", (st, text))
        st, _, text = req(port, "POST", "/admin/egress", rec, "not json")
        check(st == 400, "a body that is not JSON: 400", (st, text))
        st, _, text = req(port, "POST", "/admin/egress", rec, {"room": "rec", "kind": "mosaic"})
        check(st == 400 and "composite" in text, "an unknown kind: 400 saying what works", (st, text))
        st, _, text = req(port, "POST", "/admin/egress", rec, {"room": "other"})
        check(st == 403 and "room rec" in text, "another room: 403", (st, text))

        # 2. two recordings of the room
        t0 = time.time()
        st, a, text = req(port, "POST", "/admin/egress", rec, {"room": "rec", "kind": "track"})
        check(st == 201 and a and a["egress_id"].startswith("EG_"), "POST /admin/egress: 201", (st, text))
        st, b, text = req(port, "POST", "/admin/egress", rec, {"room": "rec", "audio_format": "webm"})
        check(st == 201, "a second recording (audio in WebM): 201", (st, text))
        # 3. the limit
        st, _, text = req(port, "POST", "/admin/egress", rec, {"room": "rec"})
        check(st == 429 and "egress_max" in text, "a third recording over egress_max = 2: 429 naming the key",
              (st, text))
        if not a or not b:
            return 1
        time.sleep(4)
        st, j, text = req(port, "GET", "/admin/egress", rec)
        mine = {e["egress_id"]: e for e in (j or {}).get("egresses", [])}
        ga = mine.get(a["egress_id"], {})
        kinds = sorted((f["kind"], f["codec"], f["path"].rsplit(".", 1)[-1]) for f in ga.get("files", []))
        check(ga.get("state") == "active" and kinds == [("audio", "opus", "ogg"), ("video", "vp8", "webm")],
              "GET: active, an Ogg/Opus and a WebM/VP8 file", text)
        check(all(f["bytes"] > 0 for f in ga.get("files", [])), "the files grow", text)
        gb = mine.get(b["egress_id"], {})
        check(sorted(f["path"].rsplit(".", 1)[-1] for f in gb.get("files", [])) == ["webm", "webm"],
              "audio_format webm: both files WebM", text)

        # 4. kill -9 of recorder b
        pid = gb.get("pid")
        check(isinstance(pid, int), "the recorder's pid is listed", gb)
        if isinstance(pid, int):
            os.kill(pid, signal.SIGKILL)
        jb = wait_state(port, rec, b["egress_id"], ("failed", "complete"))
        check(jb["state"] == "failed" and "signal 9" in jb.get("error", ""), "kill -9: state failed, reason given",
              jb)
        for f in jb.get("files", []):
            info, err = probe(f["path"])
            n = int(((info or {}).get("streams") or [{}])[0].get("nb_read_frames") or 0)
            check(info is not None and n > 50, "killed recording %s probes (%d frames)" % (f["kind"], n), err)
            ok, err = decodes(f["path"])
            check(ok and "rror" not in err, "killed recording %s decodes without errors" % f["kind"], err)
            check(f["bytes"] == os.path.getsize(f["path"]), "its size is the file's", f)
        time.sleep(1)
        st, j, _ = req(port, "GET", "/admin/egress/" + a["egress_id"], rec)
        check(st == 200 and j["state"] == "active" and j["duration_ms"] > 4000,
              "the other recording goes on", j)

        # 5. stop a cleanly
        t_stop = time.time()
        st, j, text = req(port, "DELETE", "/admin/egress/" + a["egress_id"], rec)
        check(st == 200 and j["state"] in ("ending", "complete"), "DELETE: 200, ending", (st, text))
        ja = wait_state(port, rec, a["egress_id"], ("complete", "failed"))
        check(ja["state"] == "complete" and not ja.get("error"), "stopped: state complete", ja)
        rec_s = t_stop - t0
        for f in ja.get("files", []):
            info, err = probe(f["path"])
            if not check(info is not None, "%s probes" % f["path"], err):
                continue
            s0 = info["streams"][0]
            dur = float(info["format"]["duration"])
            check(s0["codec_name"] == ("opus" if f["kind"] == "audio" else "vp8"), "%s codec" % f["kind"], s0)
            check(abs(dur - f["duration_ms"] / 1000.0) < 0.5,
                  "%s duration %.2f s = the recorder's %.2f s" % (f["kind"], dur, f["duration_ms"] / 1000.0))
            check(rec_s - 3.0 < dur + f["start_ms"] / 1000.0 < rec_s + 0.5,
                  "%s covers the recording time (%.2f s + start %.2f s vs %.2f s)" %
                  (f["kind"], dur, f["start_ms"] / 1000.0, rec_s))
            check(f["bytes"] == os.path.getsize(f["path"]), "%s size reported = on disk" % f["kind"], f)
            if f["kind"] == "video":
                # every frame the recorder wrote is in the file (the rate is the sender's: ~30 fps
                # unless the loaded test machine starves its encoder)
                fps = int(s0["nb_read_frames"]) / dur
                check(s0["width"] in (160, 320) and int(s0["nb_read_frames"]) == f["frames"] and 10 <= fps <= 31,
                      "video %dx%d, %s frames = the recorder's %d, %.1f fps" %
                      (s0["width"], s0["height"], s0["nb_read_frames"], f["frames"], fps))
            ok, err = decodes(f["path"])
            check(ok and "rror" not in err, "%s decodes without errors" % f["kind"], err)
        st, _, text = req(port, "DELETE", "/admin/egress/" + a["egress_id"], rec)
        check(st == 409 and "ended" in text, "DELETE again: 409", (st, text))

        # 6. webhooks and metrics: the node posts them after the state changes (queued, retried on
        # failure): wait (bounded) for egress_ended rather than a fixed 1 s
        end = time.time() + 10
        while time.time() < end and not any(h["event"] == "egress_ended" and h["egress"]["egress_id"] == a["egress_id"]
                                            for h in list(HOOKS)):
            time.sleep(0.1)
        ev = [(h["event"], h["egress"]["egress_id"]) for h in HOOKS if h["event"].startswith("egress_")]
        for name in ("egress_started", "egress_updated", "egress_ended"):
            check((name, a["egress_id"]) in ev, "webhook %s" % name, ev)
        ended = [h for h in HOOKS if h["event"] == "egress_ended" and h["egress"]["egress_id"] == a["egress_id"]]
        if ended:
            files = ended[0]["egress"]["files"]
            check(len(files) == 2 and all(f["duration_ms"] > 3000 and f["bytes"] == os.path.getsize(f["path"])
                                          for f in files) and ended[0]["room"]["name"] == "rec",
                  "egress_ended lists the files with durations and sizes", ended[0])
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/metrics")
        m = c.getresponse().read().decode()
        check("hudong_egress_started_total 2" in m and "hudong_egress_failed_total 1" in m and
              'hudong_egress_refused_total{limit="egress_max"} 1' in m and "hudong_egress_running 0" in m,
              "/metrics: started 2, failed 1, refused 1, running 0",
              [l for l in m.splitlines() if "egress" in l and not l.startswith("#")])
        # 7. the disk floor: a node whose floor is above the free space refuses with 507
        port2 = free_port()
        cfg2 = os.path.join(tmp, "hudong2.json")
        with open(cfg2, "w") as f:
            json.dump({"apps": [{"key": KEY, "secret": SECRET}], "egress_dir": egdir,
                       "egress_min_free_mb": 1 << 30}, f)
        node2 = subprocess.Popen([HUDONG, "serve", "--config", cfg2, "--listen", "127.0.0.1:%d" % port2,
                                  "--rtc-port", "0", "--media-workers", "1", "--rtm-db", ":memory:",
                                  "--quality-db", ":memory:"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port2, timeout=2)
                    c.request("GET", "/healthz")
                    if c.getresponse().status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            st, _, text = req(port2, "POST", "/admin/egress", rec, {"room": "rec"})
            check(st == 507 and "egress_min_free_mb" in text, "below the disk floor: 507 naming the key", (st, text))
        finally:
            node2.terminate()
            node2.wait(timeout=10)
    finally:
        if pub:
            pub.kill()
            pub.wait()
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
