#!/usr/bin/python3
"""Room events and WHIP publishers across nodes (issue 15 item 2; docs/overlay.md
"Room events"): a real redis-server and two `hudong serve --redis` nodes on free
127.0.0.1 ports, both sending webhooks to one receiver.

 1. One room, participants joining on n1 then on n2: room_started fires once
    for the cluster (not once per node), every webhook and both nodes' admin
    API name the room by one sid, and a participant joining n2 later gets that
    sid in its `joined`.
 2. A WHIP publisher on n2 (an SDP offer POSTed to /whip) appears to the
    participant on n1: participant_joined and its track_published there, and
    participant_left when the WHIP resource is deleted.
 3. Everyone leaves both nodes: room_finished fires once, after the last node
    let the room go, with the same sid.
 4. n2's media port sits behind a `hudong netem` relay; with 30% loss on it,
    60 data messages from a participant on n1 all reach one on n2, once each
    and in order (reliable data over the node link: acknowledged and resent),
    and 15 admin removes through n1's admin API of participants on n2 all
    reach them (admin actions ride the same reliable stream).
 5. A 3-layer simulcast publisher on n1 (`hudong pub --simulcast`, 540p)
    and two subscribers on n2: they get the layer n2's allocator chooses
    (not only the lowest: n1 keeps every layer published while another node
    watches); then with a viewer on n1 too, only the layer n2 takes crosses
    the link (the relay counts what n1 sends n2: well under all the layers).
 6. Redis stalled (SIGSTOP): a join into a room new to the node waits for
    the cluster's room sid at most 2 s, then gets 503 cluster_unavailable.

usage: test_cluster_room_events.py /path/to/hudong
"""
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from hdtest import FAILS, check, free_media_port, free_port, http_json, webhook_sink  # noqa: E402
from test_cluster import Node, Redis, section, stop_cluster, view, wait_until  # noqa: E402
from wsclient import WS, recv_until  # noqa: E402

ROOM = "evroom"
OFFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "chrome_offer.sdp")


def mint(identity, **grants):
    g = {"canPublish": True, "canSubscribe": True, "canPublishData": True}
    g.update(grants)
    return tc.mint(ROOM, identity, grants=g)


def join(node, identity):
    ws = WS(node.port, "/rtc")
    ws.send_text(json.dumps({"type": "join", "id": "j", "token": mint(identity)}))
    end = time.time() + 5
    while time.time() < end:
        r = ws.recv()
        if r[0] == "text" and json.loads(r[1]).get("type") == "joined":
            return ws, json.loads(r[1])
        if r[0] in ("close", "eof"):
            break
    raise RuntimeError("join %s on %s failed" % (identity, node.name))


def room_sids(node):
    st, js, text = http_json(node.port, "GET", "/admin/rooms", tc.mint("", "ops", join=False,
                                                                      grants={"roomAdmin": True}))
    return [r.get("sid") for r in (js or {}).get("rooms", []) if r.get("name") == ROOM] if st == 200 else text


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-xroom-ev-")
    events = []
    sink, sink_port = webhook_sink(events)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    redis = Redis(tmp, free_port())
    nodes = []
    relay = None
    try:
        redis.start()
        # n2's media port is announced as a relay's, which can impair what n1 sends it (section 4)
        n2_port, relay_port, ctl_port = free_media_port(), free_port(True), free_port()
        relay = subprocess.Popen([tc.HUDONG, "netem", "--listen", "127.0.0.1:%d" % relay_port, "--to",
                                  "127.0.0.1:%d" % n2_port, "--control", "127.0.0.1:%d" % ctl_port, "--seed", "7"],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "netem.log"), "wb"))
        cfg = {"webhooks": {"urls": ["http://127.0.0.1:%d/hook" % sink_port]}, "room_empty_timeout_s": 0}
        for name in ("n1", "n2"):
            extra = ["--rtc-port", str(n2_port), "--rtc-announce-port", str(relay_port)] if name == "n2" else []
            n = Node(tmp, name, redis.port, config=cfg, extra=extra)
            n.start()
            nodes.append(n)
        n1, n2 = nodes
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")

        section("1. one room on two nodes: room_started once, one sid")
        a, ja = join(n1, "alice")
        time.sleep(0.3)
        b, jb = join(n2, "bob")
        m, _ = recv_until(a, lambda m: m.get("type") == "participant_joined" and
                          m.get("participant", {}).get("identity") == "bob", 5)
        check(m is not None, "alice (n1) sees bob (n2) join")
        sid = ja.get("room", {}).get("sid")
        check(jb.get("room", {}).get("sid") == sid,
              "bob, the first on n2, gets the cluster's room sid in his own `joined` (not n2's provisional one)",
              (jb.get("room"), sid))
        s1, s2 = room_sids(n1), room_sids(n2)
        check(s1 == [sid] and s2 == [sid], "both nodes' admin API give the room alice's sid %s" % sid, (s1, s2))
        c, jc = join(n2, "carol")
        check(jc.get("room", {}).get("sid") == sid, "carol joining n2 later gets the same room sid in `joined`",
              (jc.get("room"), sid))

        section("2. a WHIP publisher on n2 appears on n1")
        conn = http.client.HTTPConnection("127.0.0.1", n2.port, timeout=5)
        conn.request("POST", "/whip/" + ROOM, body=open(OFFER, "rb").read(),
                     headers={"Authorization": "Bearer " + mint("whipper"), "Content-Type": "application/sdp"})
        r = conn.getresponse()
        r.read()
        loc = r.getheader("Location")
        check(r.status == 201 and loc, "the WHIP offer on n2 is answered (201 with a Location)", (r.status, loc))
        tracks = []
        m, seen = recv_until(a, lambda m: m.get("type") == "track_published" and
                             tracks.append(m) is None and len(tracks) == 2, 5)
        joined = [x for x in seen if x.get("type") == "participant_joined" and
                  x.get("participant", {}).get("identity") == "whipper"]
        check(len(joined) == 1, "alice on n1 sees the WHIP publisher of n2 join", seen[-6:])
        kinds = sorted(t.get("track", {}).get("kind", "") for t in tracks)
        check(kinds == ["audio", "video"], "and its audio and video tracks published", tracks)
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", n2.port, timeout=5)
        conn.request("DELETE", loc, headers={"Authorization": "Bearer " + mint("whipper")})
        r = conn.getresponse()
        r.read()
        conn.close()
        m, seen = recv_until(a, lambda m: m.get("type") == "participant_left", 5)
        check(m is not None, "and sees it leave when the WHIP resource is deleted", seen[-4:])

        section("3. everyone leaves: room_finished once")
        for ws in (b, c):
            ws.close()
        time.sleep(0.5)
        a.close()
        done = wait_until(lambda: any(e.get("event") == "room_finished" for e in events), 8)
        time.sleep(1.5)  # a second room_finished (the bug: one per node) would come by now
        kinds = [e.get("event") for e in events]
        print("# webhooks: %s" % kinds)
        check(done is not None and kinds.count("room_finished") == 1,
              "room_finished fires once for the cluster", kinds)
        check(kinds.count("room_started") == 1, "room_started fired once for the cluster", kinds)
        if "room_started" in kinds and "participant_joined" in kinds:
            check(kinds.index("room_started") < kinds.index("participant_joined"),
                  "room_started came before the first participant_joined", kinds)
        joins = sorted(e.get("participant", {}).get("identity", "") for e in events
                       if e.get("event") == "participant_joined")
        check(joins == ["alice", "bob", "carol", "whipper"], "participant_joined once per participant", joins)
        sids = {e.get("room", {}).get("sid") for e in events}
        check(sids == {sid}, "every webhook names the room by the one sid %s" % sid, sids)

        section("4. reliable data messages through 30% loss between the nodes")
        st, _, text = http_json(ctl_port, "POST", "/impair", body={"both": {"loss": 30}})
        check(st == 200, "the relay in front of n2 takes 30% loss", text)
        x1, _ = join(n1, "xena")
        time.sleep(0.3)
        x2, _ = join(n2, "yuri")
        m, _ = recv_until(x1, lambda m: m.get("type") == "participant_joined" and
                          m.get("participant", {}).get("identity") == "yuri", 8)
        m2, _ = recv_until(x2, lambda m: m.get("type") == "participant_joined" and
                           m.get("participant", {}).get("identity") == "xena", 8)
        check(m is not None and m2 is not None, "xena (n1) and yuri (n2) see each other through the loss")
        n_msgs = 60
        for i in range(n_msgs):
            x1.send_text(json.dumps({"type": "data", "payload": "m%03d %s" % (i, "x" * (i * 37 % 1500))}))
            time.sleep(0.01)
        got = []
        recv_until(x2, lambda m: m.get("type") == "data" and got.append(m.get("payload", "")[:4]) is None and
                   len(got) == n_msgs, 15)
        want = ["m%03d" % i for i in range(n_msgs)]
        check(got == want, "yuri (n2) gets all %d data messages of xena (n1), once each and in order" % n_msgs,
              "got %d: %s" % (len(got), got[:80]))
        print("# measured: %d of %d data messages across 30%% loss" % (len(got), n_msgs))
        # admin actions on participants of n2 taken through n1's admin API cross the same loss: each is
        # one small message, which unacknowledged would be lost 30% of the time (15 of them: 0.5% chance
        # that all would arrive)
        admin = tc.mint(ROOM, "ops", join=False, grants={"roomAdmin": True})
        removed, tried = 0, 0
        for rnd in range(3):
            ids = ["rm%d_%d" % (rnd, k) for k in range(5)]
            wss = [join(n2, i)[0] for i in ids]

            def listed():
                _, js, _ = http_json(n1.port, "GET", "/admin/rooms/%s/participants" % ROOM, admin)
                have = {p.get("identity") for p in (js or {}).get("participants", [])}
                return all(i in have for i in ids)
            check(wait_until(listed, 10) is not None, "round %d: n1 lists the 5 participants of n2" % rnd)
            for i in ids:
                st, _, text = http_json(n1.port, "DELETE", "/admin/rooms/%s/participants/%s" % (ROOM, i), admin)
                check(st in (200, 204), "DELETE of %s (on n2) through n1's admin API is accepted" % i, (st, text))
            for i, ws in zip(ids, wss):
                tried += 1
                m, _ = recv_until(ws, lambda m: m.get("type") == "left", 8)
                removed += m is not None and m.get("reason") == "removed"
                ws.close()
        print("# measured: %d of %d admin removes reached n2 across 30%% loss" % (removed, tried))
        check(removed == tried, "every admin remove taken on n1 reaches its participant on n2 through 30% loss "
              "(acknowledged and resent on the node link)", "%d of %d" % (removed, tried))
        x1.close()
        x2.close()

        section("5. only the simulcast layers taken on n2 cross the link")
        st, _, text = http_json(ctl_port, "POST", "/impair", body={"reset": True})
        check(st == 200, "the relay in front of n2 impairs nothing now (it counts what n1 sends n2)", text)
        url1, url2 = "http://127.0.0.1:%d" % n1.port, "http://127.0.0.1:%d" % n2.port
        secs = 17
        subs = [subprocess.Popen([tc.HUDONG, "sub", "--url", url2, "--token", mint("far%d" % k), "--out",
                                  os.path.join(tmp, "far%d" % k), "--duration", str(secs), "--json", "--quiet"],
                                 stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "far%d.log" % k), "wb"))
                for k in (1, 2)]
        time.sleep(0.5)
        pub = subprocess.Popen([tc.HUDONG, "pub", "--url", url1, "--token", mint("simpub"), "--simulcast",
                                "--pattern", "960x540@15", "--tone", "440", "--duration", str(secs + 2), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "simpub.log"), "wb"))
        admin = tc.mint(ROOM, "ops", join=False, grants={"roomAdmin": True})

        def up_bytes():
            _, js, _ = http_json(ctl_port, "GET", "/stats")
            return (js or {}).get("up", {}).get("bytes_in", 0)

        def pub_layers():  # the publisher's layers as n1 measures them
            _, js, _ = http_json(n1.port, "GET", "/admin/rooms/%s/participants" % ROOM, admin)
            for p in (js or {}).get("participants", []):
                for t in p.get("tracks", []) if p.get("identity") == "simpub" else []:
                    if t.get("layers"):
                        return {x["rid"]: x.get("bps", 0) for x in t["layers"]}
            return {}

        def taken():  # the layer each subscriber on n2 gets now
            _, js, _ = http_json(n2.port, "GET", "/admin/rooms/%s/participants" % ROOM, admin)
            return sorted(sb.get("layer") for p in (js or {}).get("participants", [])
                          for sb in ((p.get("downlink") or {}).get("subscriptions") or []) if sb.get("kind") == "video")
        time.sleep(10)  # the publisher's rate ramps up, its layers go live, n2's allocators choose
        first = taken()
        check(len(first) == 2 and "q" not in first,
              "with viewers on n2 only, they get above the lowest layer (n1 keeps every layer published "
              "while another node watches)", first)
        # a viewer on n1 too (it keeps every layer published whatever the version): still only the
        # layer n2 takes crosses
        near = subprocess.Popen([tc.HUDONG, "sub", "--url", url1, "--token", mint("near1"), "--out",
                                 os.path.join(tmp, "near1"), "--duration", "6", "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "near1.log"), "wb"))
        time.sleep(1.5)
        b0, t0 = up_bytes(), time.time()
        time.sleep(3.5)
        link_kbps = (up_bytes() - b0) * 8 / (time.time() - t0) / 1000
        layers, on_n2 = pub_layers(), taken()
        near.wait(15)
        got = []
        for sp in subs:
            out, _ = sp.communicate(timeout=30)
            lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.startswith("{")]
            sm = json.loads(lines[-1]) if lines else {}
            v = [t for t in sm.get("tracks", []) if t.get("identity") == "simpub" and t.get("kind") == "video"]
            got.append((v[0].get("width"), v[0].get("height"), v[0].get("framesDecoded", 0)) if v else None)
        pub.wait(20)
        all_kbps = sum(layers.values()) / 1000 + 48  # every layer, and the Opus tone
        print("# measured: publisher's layers on n1 %s bit/s; n2's subscribers take %s, decoded %s; n1 -> n2 "
              "%.0f kbit/s through the relay (every layer and audio: %.0f)" % (layers, on_n2, got, link_kbps, all_kbps))
        check(len(layers) == 3 and all(layers.values()), "the publisher sends 3 live layers to n1", layers)
        check(all(x and x[2] > 30 and x[1] and x[1] >= 270 for x in got),
              "both subscribers on n2 decode the publisher on n1, above its lowest layer", got)
        check(len(set(on_n2)) == 1 and 0 < link_kbps < 0.8 * all_kbps,
              "only the layer they take crosses: n1 sends n2 %.0f kbit/s, under 80%% of all layers' %.0f"
              % (link_kbps, all_kbps), (on_n2, layers))

        section("6. Redis stalled: a join into a new room gets a clear error, not a provisional sid")
        redis.proc.send_signal(signal.SIGSTOP)  # connected but silent: the room event script is not answered
        try:
            stella = tc.mint("stallroom", "stella", grants={"canPublish": True, "canSubscribe": True})
            old = WS(n1.port, "/rtc")  # a first connection of stella, waiting too
            old.send_text(json.dumps({"type": "join", "id": "s0", "token": stella}))
            time.sleep(0.3)
            t0 = time.time()
            ws = WS(n1.port, "/rtc")
            ws.send_text(json.dumps({"type": "join", "id": "s1", "token": stella}))
            ended = old.recv()
            err, seen = recv_until(ws, lambda m: m.get("type") in ("error", "joined"), 6)
            waited = time.time() - t0
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        check(ended[0] in ("close", "eof"), "the older waiting connection of the same "
              "identity is closed when the newer one joins (the newer connection wins)", ended)
        old.close()
        print("# measured: the join waited %.2f s for Redis, then: %s" % (waited, err))
        check(err is not None and err.get("type") == "error" and err.get("code") == 503 and
              err.get("reason") == "cluster_unavailable" and err.get("id") == "s1" and err.get("retry_after"),
              "the join is refused with 503 cluster_unavailable (and retry_after) after the bounded wait", seen)
        ws.close()
        def rejoin():
            try:
                tc.join(n1, "stallroom", "stella").close()
                return True
            except Exception:  # noqa: BLE001 (refused again while the node reconnects)
                return False
        check(wait_until(rejoin, 10) is not None, "Redis back: the same join succeeds")
    finally:
        sink.shutdown()
        stop_cluster(nodes, redis, tmp, [relay])
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
