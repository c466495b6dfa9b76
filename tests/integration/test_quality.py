#!/usr/bin/python3
"""Integration test of the quality pipeline (issue 14, docs/quality.md)
against a real `hudong serve` with two apps, over real sockets:

 - config: a bad alert rule, an unknown quality key and an unreachable
   PostgreSQL each stop the node at start with a message naming the problem;
   the default SQLite file appears next to the RTM database;
 - /rtc: quality_report before join is refused (409 not_joined), after join
   taken silently, a second one within the interval refused (429
   rate_limited), a malformed one refused (400, the field named); the
   connection stays open through all of it; quality_join stores attempts,
   one of them failed before its WebSocket opened;
 - /admin/quality: 401 without a token, 403 with a room-scoped admin token,
   405 for POST, 400 for a bad range, 404 for an unknown call or endpoint;
   the summary, calls, call, user and worst answers carry what was reported;
   the other app sees none of it;
 - /metrics: the refusals and join attempts are counted.
The node part runs twice: quality data in SQLite (the default file) and in a
real PostgreSQL started here (skipped, said so, without the server binaries).

usage: test_quality.py /path/to/hudong
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import glob

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from hdtest import FAILS, b64u, check, free_port  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
APPS = {"appA": "secretA", "appB": "secretB"}


def mint(app, identity, room=None, admin=False, join=True):
    now = int(time.time())
    grants = {}
    if room is not None:
        grants["room"] = room
    if join and room:
        grants.update({"roomJoin": True, "canPublish": True, "canSubscribe": True})
    if admin:
        grants["roomAdmin"] = True
    claims = {"iss": app, "sub": identity, "iat": now, "exp": now + 600, "grants": grants}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}')
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(APPS[app].encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def run_start(args, wait=True):
    p = subprocess.Popen([HUDONG, "serve"] + args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return p


def api(port, method, path, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, headers=hdrs)
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    try:
        js = json.loads(text)
    except ValueError:
        js = None
    return r.status, js, text


def recv_json(ws, seconds=2.0):
    """The next text message within `seconds` as JSON, or None."""
    f = ws.pump(seconds)
    if f is None:
        return None
    _, op, data = f
    if op == 8:
        return {"type": "__closed__"}
    return json.loads(data.decode())


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-quality-it-")
    try:
        # ---- config refusals
        def refused(cfg, want):
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump(dict(cfg, apps=[{"key": "appA", "secret": "secretA"}]), f)
            p = subprocess.run([HUDONG, "serve", "--config", path, "--listen", "127.0.0.1:%d" % free_port(),
                                "--rtc-port", "0", "--rtm-db", os.path.join(tmp, "r0.db")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
            err = p.stderr.decode(errors="replace")
            check(p.returncode != 0 and want in err, "refused at start: " + want, err[-400:])
        refused({"quality": {"alerts": [{"metric": "freezes", "threshold": 1}]}}, "needs 'metric'")
        refused({"quality": {"retention": 3}}, "unknown key 'quality.retention'")
        refused({"quality": {"alerts": [{"metric": "rtt_ms", "threshold": 100, "window_s": 0}]}}, "window_s")
        refused({"quality_db": "postgres://hd@127.0.0.1:%d/postgres?connect_timeout=2" % free_port()},
                "cannot connect to the quality database")

        node_checks(tmp, "")
        pg = start_postgres()
        if pg is None:
            print("SKIP PostgreSQL half: no PostgreSQL server binaries (apt-get install postgresql)")
        else:
            try:
                node_checks(tmp, pg["url"])
            finally:
                stop_postgres(pg)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILS))
    sys.exit(1 if FAILS else 0)


def start_postgres():
    """A throwaway PostgreSQL (as tests/support/pg_server.c does): initdb into a
    temp dir and pg_ctl start on a free port; as root it runs as 'postgres'."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        return None
    bindir = os.path.dirname(bins[-1])
    d = tempfile.mkdtemp(prefix="hdpg-it-")
    pre = []
    if os.geteuid() == 0:
        import pwd
        pw = pwd.getpwnam("postgres")
        os.chown(d, pw.pw_uid, pw.pw_gid)
        pre = ["runuser", "-u", "postgres", "--"]
    subprocess.run(pre + [bindir + "/initdb", "-D", d + "/data", "-A", "trust", "-U", "hd", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    subprocess.run(pre + [bindir + "/pg_ctl", "-D", d + "/data", "-l", d + "/server.log", "-w", "-o",
                          "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, d), "start"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return {"dir": d, "pre": pre, "bin": bindir, "url": "postgresql://hd@127.0.0.1:%d/postgres" % port}


def stop_postgres(pg):
    subprocess.run(pg["pre"] + [pg["bin"] + "/pg_ctl", "-D", pg["dir"] + "/data", "-m", "immediate", "-w", "stop"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    shutil.rmtree(pg["dir"], ignore_errors=True)


def node_checks(tmp, quality_db):
    """A node with two apps, its quality data in SQLite ("") or PostgreSQL (a URL)."""
    what = "[postgres] " if quality_db else "[sqlite] "
    global check
    plain = check

    def check(cond, text, detail=""):  # noqa: F811 - labels every line with the store
        return plain(cond, what + text, detail)
    if True:
        port = free_port()
        cfg = os.path.join(tmp, "hudong.json")
        with open(cfg, "w") as f:
            json.dump({"apps": [{"key": k, "secret": v} for k, v in APPS.items()],
                       "quality": {"sample_interval_s": 1, "min_report_interval_ms": 1000}}, f)
        rtm_db = os.path.join(tmp, "rtm-%s.db" % ("pg" if quality_db else "lite"))
        extra = ["--quality-db", quality_db] if quality_db else []
        p = subprocess.Popen([HUDONG, "serve", "--config", cfg, "--listen", "127.0.0.1:%d" % port, "--rtc-port", "0",
                              "--rtm-db", rtm_db] + extra, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):  # /healthz answers once the loop runs (the quality store is open by then)
            try:
                if api(port, "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.05)
        if not quality_db:
            check(os.path.exists(os.path.join(tmp, "hudong-quality.db")), "the quality database is next to the RTM one")

        ws = WS(port, "/rtc")
        ws.send_text(json.dumps({"type": "quality_report", "id": "q0", "tracks": []}))
        m = recv_json(ws)
        check(m and m.get("type") == "error" and m.get("code") == 409 and m.get("reason") == "not_joined"
              and m.get("id") == "q0", "quality_report before join: 409 not_joined", m)
        ws.send_text(json.dumps({"type": "join", "id": "j", "token": mint("appA", "alice", "r1")}))
        joined = None
        for _ in range(10):
            m = recv_json(ws)
            if m and m.get("type") == "joined":
                joined = m
                break
        check(joined is not None, "alice joined")
        room_sid = joined["room"]["sid"] if joined else ""
        psid = joined["participant"]["sid"] if joined else ""
        rep = {"type": "quality_report", "candidate": "host", "rtt_ms": 42,
               "tracks": [{"sid": "TR_x", "kind": "video", "packets": 500, "lost": 5, "freezes": 2, "freeze_ms": 400,
                           "watched_ms": 4000, "frames_decoded": 100},
                          {"sid": "TR_y", "kind": "audio", "packets": 250, "concealed": 480, "samples": 96000}]}
        ws.send_text(json.dumps(rep))
        ws.send_text(json.dumps(dict(rep, id="q2")))
        m = recv_json(ws)
        check(m and m.get("code") == 429 and m.get("reason") == "rate_limited" and "at most one every 1000 ms"
              in m.get("message", "") and m.get("id") == "q2",
              "the first report is taken without a reply, a second within 1 s: 429 rate_limited", m)
        time.sleep(1.1)
        ws.send_text(json.dumps({"type": "quality_report", "id": "q3", "tracks": [{"sid": "TR_x", "kind": "video",
                                                                                    "packets": "many"}]}))
        m = recv_json(ws)
        check(m and m.get("code") == 400 and "'packets'" in m.get("message", ""),
              "a malformed report: 400 naming the field", m)
        time.sleep(1.1)
        rep["tracks"][0].update({"packets": 1000, "freezes": 3, "freeze_ms": 700, "watched_ms": 9000})
        ws.send_text(json.dumps(rep))
        now_ms = int(time.time() * 1000)
        ws.send_text(json.dumps({"type": "quality_join", "attempts": [
            {"id": "a1", "room": "r1", "started_at": now_ms - 30000, "outcome": "failed",
             "reason": "WebSocket failed", "join_ms": None, "first_media_ms": None},
            {"id": "a2", "room": "r1", "started_at": now_ms - 2000, "outcome": "ok", "join_ms": 80,
             "first_media_ms": 700}]}))
        m = recv_json(ws, 1.0)
        check(m is None, "quality_join taken without a reply", m)
        ws.send_text(json.dumps({"type": "ping", "t": 1}))
        m = recv_json(ws)
        check(m and m.get("type") == "pong", "the connection is still open after the refusals", m)
        time.sleep(2.5)  # node samples (1 s) see the participant

        admin = mint("appA", "ops", admin=True, join=False)
        st, _, _ = api(port, "GET", "/admin/quality/summary")
        check(st == 401, "no token: 401", st)
        st, _, text = api(port, "GET", "/admin/quality/summary", mint("appA", "ops", room="r1", admin=True))
        check(st == 403 and "app-wide" in text, "a room-scoped admin token: 403", text)
        st, _, _ = api(port, "POST", "/admin/quality/summary", admin)
        check(st == 405, "POST: 405", st)
        st, _, text = api(port, "GET", "/admin/quality/summary?from=10&to=5", admin)
        check(st == 400 and "bad range" in text, "from > to: 400", text)
        st, _, _ = api(port, "GET", "/admin/quality/calls/RM_nope", admin)
        check(st == 404, "unknown call: 404", st)
        st, _, _ = api(port, "GET", "/admin/quality/nope", admin)
        check(st == 404, "unknown endpoint: 404", st)

        st, s, text = api(port, "GET", "/admin/quality/summary", admin)
        check(st == 200 and s["join"]["attempts"] == 2 and s["join"]["failed"] == 1 and
              s["join"]["succeeded_5s"] == 1 and s["join"]["success_rate_5s"] == 0.5, "summary: join attempts", text)
        check(st == 200 and s["stall"]["freezes"] == 3 and s["stall"]["video_frozen_ms"] == 700 and
              s["stall"]["video_watched_ms"] == 9000 and abs(s["stall"]["video_stall_rate"] - 700 / 9000) < 1e-9,
              "summary: freezes and stall rate are the sums of the intervals", text)
        check(st == 200 and abs(s["stall"]["audio_stall_rate"] - 0.005) < 1e-9 and s["latency"]["client_rtt_ms"] == 42,
              "summary: audio concealment and RTT", text)
        st, c, text = api(port, "GET", "/admin/quality/calls", admin)
        check(st == 200 and any(x["room_sid"] == room_sid for x in c["calls"]), "calls: the room's call", text)
        st, c, text = api(port, "GET", "/admin/quality/calls/" + room_sid, admin)
        me = [x for x in (c or {}).get("participants", []) if x["sid"] == psid]
        check(st == 200 and me and me[0]["identity"] == "alice" and len(me[0]["joins"]) == 2 and
              any(e["type"] == "joined" for e in me[0]["events"]), "call: alice, her joins and events", text[:600])
        ct = [t for t in me[0]["tracks"] if t["source"] == "client"] if me else []
        check(len(ct) == 2 and sum(len(t["points"]) for t in ct) == 4, "call: two client tracks, two intervals each",
              json.dumps(ct)[:400])
        st, u, text = api(port, "GET", "/admin/quality/users/alice", admin)
        check(st == 200 and u["join"]["attempts"] == 2 and len(u["calls"]) == 1, "user: alice's calls and joins", text)
        st, w, text = api(port, "GET", "/admin/quality/worst?n=1", admin)
        check(st == 200 and len(w["sessions"]) == 1 and w["sessions"][0]["identity"] == "alice", "worst", text)
        st, s2, text = api(port, "GET", "/admin/quality/summary", mint("appB", "ops", admin=True, join=False))
        check(st == 200 and s2["join"]["attempts"] == 0 and s2["stall"]["freezes"] == 0,
              "the other app sees nothing of appA", text)
        st, _, text = api(port, "GET", "/metrics")
        check('hudong_quality_refused_total{reason="rate"} 1' in text and
              'hudong_quality_refused_total{reason="malformed"} 1' in text and
              'hudong_quality_refused_total{reason="not_joined"} 1' in text and
              "hudong_quality_join_attempts_total 2" in text, "/metrics counts refusals and joins",
              "\n".join(ln for ln in text.splitlines() if "quality" in ln and not ln.startswith("#"))[:800])
        ws.close()
        p.send_signal(signal.SIGTERM)
        err = p.communicate(timeout=20)[1].decode(errors="replace")
        check(p.returncode == 0, "the node stops cleanly", err[-600:])
    check = plain


if __name__ == "__main__":
    main()
