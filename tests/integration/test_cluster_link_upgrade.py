#!/usr/bin/python3
"""A rolling upgrade of the node link, run by hand (not in make test: it needs a
build of an older commit; docs/overlay.md "Rolling upgrade to link version 3").
A real redis-server, n1 running the OLD binary and n2 the NEW one. A 3-layer
simulcast publisher (`hudong pub --simulcast`, 540p) on one node and two
`hudong sub` on the other, both ways round: the subscribers' node must see all
three layers live with their rates (a layer that does not cross the link is
live there only by the publisher node's LAYERS reports) and its subscribers
decode above the lowest layer. With the LAYERS form not chosen by the peer's
link version (version 3 sent to a version-2 node), the old node drops every
report and its subscribers decode nothing.

usage: test_cluster_link_upgrade.py NEW_HUDONG OLD_HUDONG
  (old: mkdir /tmp/old && git archive <commit> | tar -x -C /tmp/old, then
   cmake -S /tmp/old -B /tmp/old/build && cmake --build /tmp/old/build --target hudong)
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from hdtest import FAILS, check, free_port, http_json  # noqa: E402
from test_cluster import Node, Redis, stop_cluster, view, wait_until  # noqa: E402

if len(sys.argv) != 3:
    print(__doc__)
    sys.exit(2)

NEW, OLD = sys.argv[1], sys.argv[2]
ROOM = "mixroom"


def mint(identity):
    return tc.mint(ROOM, identity, grants={"canPublish": True, "canSubscribe": True, "canPublishData": True})


tmp = tempfile.mkdtemp(prefix="hd-link-upgrade-")
redis = Redis(tmp, free_port())
redis.start()
nodes = []
procs = []
try:
    for name, binary in (("n1", OLD), ("n2", NEW)):
        tc.HUDONG = binary
        n = Node(tmp, name, redis.port, config={"room_empty_timeout_s": 0})
        n.start()
        nodes.append(n)
    n1, n2 = nodes
    check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None, "nodes see each other")
    admin = tc.mint(ROOM, "ops", join=False, grants={"roomAdmin": True})
    tc.HUDONG = NEW
    for rnd, (pn, sn, label) in enumerate(((n2, n1, "publisher on new n2 (link 3), subscribers on old n1 (link 2)"),
                                           (n1, n2, "publisher on old n1 (link 2), subscribers on new n2 (link 3)"))):
        print("## " + label)
        secs = 15
        url_p, url_s = "http://127.0.0.1:%d" % pn.port, "http://127.0.0.1:%d" % sn.port
        subs = [subprocess.Popen([NEW, "sub", "--url", url_s, "--token", mint("s%d%d" % (rnd, k)), "--out",
                                  os.path.join(tmp, "s%d%d" % (rnd, k)), "--duration", str(secs), "--json", "--quiet"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for k in (1, 2)]
        time.sleep(0.5)
        pub = subprocess.Popen([NEW, "pub", "--url", url_p, "--token", mint("pub%d" % rnd), "--simulcast",
                                "--pattern", "960x540@15", "--duration", str(secs + 2), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs += subs + [pub]
        time.sleep(10)
        _, js, _ = http_json(sn.port, "GET", "/admin/rooms/%s/participants" % ROOM, admin)
        standin = {}
        taken = []
        for p in (js or {}).get("participants", []):
            for t in p.get("tracks", []) if p.get("identity") == "pub%d" % rnd else []:
                if t.get("layers"):
                    standin = {x["rid"]: (x.get("bps", 0), x.get("width"), x.get("height")) for x in t["layers"]}
            taken += [sb.get("layer") for sb in ((p.get("downlink") or {}).get("subscriptions") or [])
                      if sb.get("kind") == "video"]
        got = []
        for sp in subs:
            out, _ = sp.communicate(timeout=30)
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
            sm = json.loads(lines[-1]) if lines else {}
            v = [t for t in sm.get("tracks", []) if t.get("identity") == "pub%d" % rnd and t.get("kind") == "video"]
            got.append((v[0].get("width"), v[0].get("height"), v[0].get("framesDecoded", 0)) if v else None)
        pub.wait(20)
        print("# stand-in layers on the subscribers' node %s; taken %s; decoded %s" % (standin, taken, got))
        check(len(standin) == 3 and all(b[0] > 1 for b in standin.values()),
              "the subscribers' node sees the 3 layers live with their rates (LAYERS understood)", standin)
        check(all(x and x[2] > 30 and x[1] and x[1] >= 270 for x in got),
              "both subscribers decode the remote publisher above its lowest layer", got)
finally:
    stop_cluster(nodes, redis, tmp, procs)
print("%d failed" % len(FAILS))
sys.exit(1 if FAILS else 0)
