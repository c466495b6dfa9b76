#!/usr/bin/python3
"""The C SDK publishes simulcast and follows publish_layers (issue 11 items
1 and 4, docs/sdk.md "Simulcast"): `hudong pub --pattern 640x360 --simulcast`
-> `hudong serve`. The admin API lists the camera track's two layers (h
320x180, f 640x360) live; with nobody watching, the node pauses the top layer
after 3 s (publish_layers) and the publisher stops sending it (f not live,
h still live); a subscriber that joins (no tile size: it may need any layer)
gets it resumed. `--no-simulcast` publishes one stream (no layers listed).

usage: test_simulcast_sdk.py /path/to/hudong
"""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, cli_token, free_port, http_json, jwt_hs256  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
KEY, SECRET = "appS", "secretS"


def api(port, path, token):
    return http_json(port, "GET", path, token)


def token(*args):
    return cli_token(HUDONG, KEY, SECRET, *args)


def admin_token():
    now = int(time.time())
    return jwt_hs256(SECRET, {"iss": KEY, "sub": "ops", "iat": now, "exp": now + 600,
                              "grants": {"roomAdmin": True}})


def video_track(port, room, identity):
    st, j, _ = api(port, "/admin/rooms/%s/participants" % room, admin_token())
    for p in (j or {}).get("participants", []):
        if p.get("identity") == identity:
            for t in p.get("tracks", []):
                if t.get("kind") == "video":
                    return t
    return None


def layers(port, room, identity):
    t = video_track(port, room, identity)
    return {x["rid"]: x for x in (t or {}).get("layers", [])}


def wait_for(fn, timeout):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.25)
    return fn()


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-simulcast-sdk-")
    port = free_port()
    cfg = os.path.join(tmp, "hudong.json")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}]}, f)
    node = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--rtm-db", os.path.join(tmp, "rtm.db")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    procs = []
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

        def pub(room, ident, flag):
            p = subprocess.Popen([HUDONG, "pub", "--url", url, "--token",
                                  token("--room", room, "--identity", ident, "--publish"),
                                  "--pattern", "640x360@15", "--duration", "25", flag],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(p)
            return p

        pub("sim", "sdk-pub", "--simulcast")

        def both_live():
            ls = layers(port, "sim", "sdk-pub")
            ok = set(ls) == {"h", "f"} and all(x["live"] and x["bps"] > 0 for x in ls.values())
            return ls if ok else None
        ls = wait_for(both_live, 8)
        check(ls is not None, "the admin API lists two live simulcast layers h, f",
              json.dumps(video_track(port, "sim", "sdk-pub")))
        if ls:
            check((ls["h"]["width"], ls["h"]["height"]) == (320, 180) and
                  (ls["f"]["width"], ls["f"]["height"]) == (640, 360),
                  "layer sizes are 320x180 and 640x360", json.dumps(ls))

        # nobody watches: after LAYER_IDLE_PAUSE (3 s) the node asks for h
        # alone, and the SDK stops encoding and sending f
        def f_paused():
            ls = layers(port, "sim", "sdk-pub")
            return ls if ls and not ls["f"]["live"] and ls["h"]["live"] else None
        ls = wait_for(f_paused, 10)
        check(ls is not None, "publish_layers paused f: its packets stop, h still flows",
              json.dumps(layers(port, "sim", "sdk-pub")))
        time.sleep(1.5)
        ls = layers(port, "sim", "sdk-pub")
        check(ls and not ls["f"]["live"], "f stays paused while nobody needs it", json.dumps(ls))

        # a subscriber without a tile size may need any layer: f resumes
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        sub = subprocess.Popen([HUDONG, "sub", "--url", url, "--token",
                                token("--room", "sim", "--identity", "sdk-sub", "--subscribe"),
                                "--out", out, "--duration", "8", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(sub)
        ls = wait_for(lambda: (lambda x: x if x and x["f"]["live"] else None)(layers(port, "sim", "sdk-pub")), 8)
        check(ls is not None, "a subscriber joins: f is resumed", json.dumps(layers(port, "sim", "sdk-pub")))

        pub("one", "sdk-one", "--no-simulcast")
        t = wait_for(lambda: video_track(port, "one", "sdk-one"), 8)
        check(t is not None and "layers" not in t, "--no-simulcast publishes one stream", json.dumps(t))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
