#!/usr/bin/python3
"""The C SDK routes through a cluster URL itself (issue 15 item 4: "the SDK
uses GET /api/route when given a cluster URL"; docs/sdk.md "Clusters"): a
real redis-server and two `hudong serve --redis` nodes on free 127.0.0.1
ports, n1's HTTP behind `hudong netem --tcp --delay 80` (n1 announces the
relay's URL), and a room that /api/route without RTTs sends to n1.

route_sdk_probe (tests/integration/route_sdk_probe.c) calls the library:
  - hd_client_route(cluster = n1 via the relay): n2, reason rtt, n1 measured
    >= 150 ms; the same node /api/route names for the RTTs it reports; n1 in
    the others / fallback_urls as ws://.../rtc;
  - errors, each with its code and a sentence that says what to do: a token
    signed with another secret (401), a token with no room, a cluster URL
    where nothing listens, https;
  - an hd_client with cfg.cluster_url (no url) joins, and n2's log shows the
    join (n1's does not); freed while it routes, it joins nothing; with a
    dead cluster URL the client ends FAILED with the route's sentence.

usage: test_cluster_route_sdk.py /path/to/hudong /path/to/route_sdk_probe
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
import test_cluster_route as tcr  # noqa: E402
from test_cluster import check, free_port, mint, route, wait_until  # noqa: E402
PROBE = None


def probe(*args):
    p = subprocess.run([PROBE] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=40)
    err = p.stderr.decode(errors="replace")
    bad = [ln for ln in err.splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
    check(not bad, "no sanitizer report from route_sdk_probe %s" % args[0], "\n".join(bad[:5]))
    return p.returncode, p.stdout.decode(errors="replace"), err


def route_api(cluster, token):
    rc, out, err = probe("route", cluster, token)
    try:
        return rc, json.loads(out.strip().splitlines()[-1]), err
    except (ValueError, IndexError):
        return rc, None, out + err


def main():
    global PROBE
    tc.HUDONG, PROBE = sys.argv[1], sys.argv[2]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    env = tcr.SlowN1("hd-route-sdk-", "sdk-route")
    try:
        if not env.start():
            return 1
        n1, n2, rooms, cluster = env.n1, env.n2, env.rooms, env.cluster
        room, room2 = rooms[0], rooms[1]

        tc.section("hd_client_route")
        t0 = time.time()
        rc, r, err = route_api(cluster, mint(room, "sdk-a"))
        took = time.time() - t0
        check(rc == 0 and r and r["rc"] == 0, "hd_client_route succeeds", (rc, r, err[-800:]))
        if r and r["rc"] == 0:
            rtts = {r["node"]["id"]: r["node"]["rtt_ms"]}
            rtts.update((o["id"], o["rtt_ms"]) for o in r["others"])
            print("# measured: hd_client_route via n1 (+80 ms each way): %s, RTTs %s, %.2f s" %
                  (r["node"]["id"], rtts, took))
            check(r["room"] == room and r["node"]["id"] == "n2" and r["reason"] == "rtt", "it chose n2 by RTT", r)
            check(r["node"]["rtc_url"] == "ws://127.0.0.1:%d/rtc" % n2.port, "n2's ws:// URL to join", r["node"])
            check(rtts.get("n1", 0) >= 150 and 0 <= rtts.get("n2", -1) < 80, "n1 measured >= 150 ms, n2 < 80 ms",
                  rtts)
            check([o["id"] for o in r["others"]] == ["n1"] and
                  r["fallback_urls"] == ["ws://127.0.0.1:%d/rtc" % env.relay_port], "n1 is the fallback", r)
            # the node the route endpoint itself picks for those RTTs
            q = "n1%%3A%d%%2Cn2%%3A%d" % (round(rtts["n1"]), round(rtts["n2"]))
            st, js, _ = route(n1.port, room, rtt=q)
            check(st == 200 and js["node"]["id"] == r["node"]["id"] and js["reason"] == r["reason"],
                  "/api/route with the measured RTTs names the same node", (st, js))

        tc.section("hd_client_route errors")
        dead = "http://127.0.0.1:%d" % free_port()
        for what, cl, tok, code, want in (
                ("a token signed with another secret", cluster, mint(room, secret="not-the-secret-0123456789"),
                 "auth", "refused the token"),
                ("a token with no room", cluster, "a.b.c", "invalid", "names no room"),
                ("nothing listening", dead, mint(room), "I/O", "no answer from"),
                ("https", "https://127.0.0.1:1", mint(room), "unsupported", "only http://")):
            rc, r, err = route_api(cl, tok)
            ok = rc == 1 and r is not None and r["rc"] < 0 and want in r.get("err", "")
            check(ok and code.lower() in r["code"].lower(), "%s: %s, '%s'" % (what, code, want), (rc, r, err[-500:]))
            if r:
                print("#   %s -> %s: %s" % (what, r["code"], r.get("err")))

        tc.section("hd_client with cluster_url")
        rc, out, err = probe("join", cluster, mint(room2, "sdk-join"))
        check(rc == 0 and "state joined" in out, "the client joins through the cluster URL", (out + err)[-1500:])
        check(wait_until(lambda: "(sdk-join) joined appA/%s" % room2 in n2.log(), 5) is not None,
              "on n2, the node its route chose", n2.log()[-800:])
        check("(sdk-join) joined" not in n1.log(), "and not on n1")
        rc, out, err = probe("free", cluster, mint(room2, "sdk-free"))
        check(rc == 0 and "freed" in out and "state joined" not in out,
              "hd_client_free while the client routes waits for the route and joins nothing", (out + err)[-800:])
        time.sleep(0.3)
        check("(sdk-free) joined" not in n1.log() + n2.log(), "no node saw that client join")
        rc, out, err = probe("join", dead, mint(room2, "sdk-dead"))
        check(rc == 1 and "state failed" in out and "no answer from" in out and "route via" in out,
              "a dead cluster URL: FAILED with the route's sentence", (out + err)[-800:])
    finally:
        env.stop()
    print("%d failure(s)" % len(tc.FAILS))
    return 1 if tc.FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
