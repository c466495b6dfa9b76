#!/usr/bin/python3
"""The C SDK reports its quality data like web/rtc.js (issue 14 item 1,
docs/quality.md "Collection"): `hudong pub` (tone + pattern) -> `hudong serve`
-> `hudong sub` for 14 s; the subscriber's quality_join (ok, with its first
media time) and its quality_report (video frames decoded and watched time,
audio samples) reach the quality API: /admin/quality/users/<sub> lists the
join and the call, the call view holds client-reported tracks for it.

usage: test_quality_sdk.py /path/to/hudong
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, free_port  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
KEY, SECRET = "appQ", "secretQ"


def api(port, path, token):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    try:
        return r.status, json.loads(body), body
    except ValueError:
        return r.status, None, body


def token(*args):
    p = subprocess.run([HUDONG, "token", "--key", KEY, "--secret", SECRET] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return p.stdout.decode().strip().split()[-1]


def admin_token():
    """An app-wide roomAdmin token (no room: `hudong token` always names one)."""
    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    claims = {"iss": KEY, "sub": "ops", "iat": now, "exp": now + 600, "grants": {"roomAdmin": True}}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}')
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-quality-sdk-")
    port = free_port()
    cfg = os.path.join(tmp, "hudong.json")
    with open(cfg, "w") as f:
        json.dump({"apps": [{"key": KEY, "secret": SECRET}],
                   "quality": {"sample_interval_s": 1, "min_report_interval_ms": 1000}}, f)
    node = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                             "--rtm-db", os.path.join(tmp, "rtm.db")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    pub = sub = None
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
        pub = subprocess.Popen([HUDONG, "pub", "--url", url, "--token", token("--room", "q", "--identity", "sdk-pub",
                                                                               "--publish"),
                                "--tone", "440", "--pattern", "320x180@15", "--duration", "16", "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1)
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        sub = subprocess.run([HUDONG, "sub", "--url", url, "--token", token("--room", "q", "--identity", "sdk-sub", "--subscribe"),
                              "--out", out, "--duration", "14", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        check(sub.returncode == 0, "hudong sub ran", sub.stderr.decode(errors="replace")[-600:])
        time.sleep(1.5)  # one more sample interval: the last report is stored
        admin = admin_token()
        st, u, text = api(port, "/admin/quality/users/sdk-sub", admin)
        check(st == 200 and u and u["join"]["attempts"] >= 1 and u["join"]["succeeded_5s"] >= 1,
              "the SDK's quality_join: an attempt that reached media within 5 s", text[:600])
        calls = u.get("calls", []) if u else []
        check(len(calls) == 1, "the SDK subscriber's call is listed", text[:600])
        if calls:
            cid = calls[0].get("room_sid") or calls[0].get("call") or calls[0].get("sid")
            st, call, text = api(port, "/admin/quality/calls/%s" % cid, admin)
            me = [p for p in (call or {}).get("participants", []) if p.get("identity") == "sdk-sub"]
            ct = [t for t in me[0]["tracks"] if t.get("source") == "client"] if me else []
            kinds = sorted(set(t.get("kind") for t in ct))
            check(kinds == ["audio", "video"], "client-reported audio and video tracks of the SDK subscriber",
                  json.dumps(me)[:800])
            pts = [p for t in ct if t.get("kind") == "video" for p in t.get("points", [])]
            check(len(pts) >= 1, "its video track has report intervals", json.dumps(ct)[:600])
    finally:
        if pub:
            pub.kill()
            pub.wait()
        node.terminate()
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
    print("%d failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
