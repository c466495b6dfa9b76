#!/usr/bin/python3
"""Node CPU per publish, stored or not (docs/performance.md "RTM: stored
publishes"): a real `hudong serve --dev` with a SQLite file; 20 writers, each
subscribed to its own channel, each send 150 publishes in one write per
round (8 rounds, 1.6 s apart: under the per-connection rate limit) and read
their oks and their own deliveries; the node's utime+stime (all threads,
/proc) over the rounds, divided by the publishes. Numbers, not a test.

usage: bench/rtm_store_node.py HUDONG 1|0   (1: "store": true)"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import test_rtm, test_rtm_kill9 as k
from hdtest import free_port
hud, store = sys.argv[1], sys.argv[2] == "1"
test_rtm.HUDONG = hud
W, B, R = 20, 150, 8
tmp = tempfile.mkdtemp(); db = tmp + "/rtm.db"; port = free_port()
p = test_rtm.start(port, db)
def cpu():
    f = open("/proc/%d/stat" % p.pid).read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
ws = [test_rtm.login(port, "w%d" % i) for i in range(W)]
for i, w in enumerate(ws):
    test_rtm.rt(w, {"type": "sub", "id": "s", "ch": "c%d" % i}, "ok")
time.sleep(1.5)
c0 = cpu(); oks = 0
for r in range(R):
    for i, w in enumerate(ws):
        o = {"type": "pub", "ch": "c%d" % i, "data": "x" * 32}
        if store: o["store"] = True
        w.sock.sendall(b"".join(k.frame(dict(o, id="r%dw%dm%d" % (r, i, j))) for j in range(B)))
    for w in ws:
        got = msgs = 0; w.sock.settimeout(10)
        while got < B or msgs < B:
            m = json.loads(w.recv()[1])
            if m.get("type") == "ok": got += 1
            elif m.get("type") == "msg": msgs += 1
            elif m.get("type") == "error": print("error", m); break
            if "s" in m and m["s"] % 64 == 0: w.send_text(json.dumps({"type": "ack", "s": m["s"]}))
        oks += got
        w.send_text(json.dumps({"type": "ack", "s": m["s"]}))
    time.sleep(1.6)
c1 = cpu()
print("%s store=%d: %d oks, node CPU %.3f s, %.1f us per publish (incl. idle ~%.1f s of sleeps)" % (
    hud, store, oks, c1 - c0, (c1 - c0) / oks * 1e6, R * 1.6))
test_rtm.stop(p); shutil.rmtree(tmp, ignore_errors=True)
