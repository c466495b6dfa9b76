#!/usr/bin/python3
"""A node cut off from Redis long enough to be taken for dead comes back and
re-announces the rooms it still holds (issue 15 item 6; docs/overlay.md
"Coming back after an outage"): a real redis-server, two `hudong serve
--redis` nodes on free 127.0.0.1 ports, n1 reaching Redis through a small TCP
relay of this test that can cut n1's connections (close them and refuse new
ones) without touching n2's or Redis itself. Both nodes send webhooks to one
receiver.

Then a short cut (within n1's registry TTL: not reaped) while n1's last
participant of room "brief" leaves: n1 fires its room_finished alone and, on
its return, leaves the room in Redis, so a joiner on n2 starts it afresh. And
a join on n1 while Redis is connected but silent for it waits
cluster.sid_wait_ms (700 ms on n1) before 503 cluster_unavailable.

Two rooms while n1 is cut off past its registry TTL plus the reap grace (n2
then reaps n1's rooms in Redis):
 - "both": alice on n1, bob on n2. n1 leaves the room's node set in Redis;
   the room lives on (bob). On n1's return it is listed again with the same
   sid; n2 still lists alice; bob leaving n2 fires no room_finished (alice is
   still there), carol joining n2 then gets the room's sid; the room ends once,
   with its last participant.
 - "solo": dave on n1 alone. n2 finishes the room in Redis (room_finished:
   n1 looks dead, documented); on n1's return it starts again under its sid
   (room_started), erin joining n2 gets that sid, and the room ends once more
   when both leave. Webhooks: started, finished, started, finished.

The nodes run with config "cluster": {"reap_grace_ms": 1000, "room_ttl_ms":
12000} (docs/operations.md "Cluster timing"), which the test checks too (the
room keys' TTL, the reap within a few seconds); a value out of range or an
unknown key under "cluster" stops `hudong serve` with the range.

usage: test_cluster_rejoin.py /path/to/hudong
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_cluster as tc  # noqa: E402
from hdtest import FAILS, check, free_port, http_json, webhook_sink  # noqa: E402
from test_cluster import Node, Redis, section, stop_cluster, view, wait_until  # noqa: E402
from wsclient import WS  # noqa: E402


class CutRelay:
    """127.0.0.1:port -> Redis; cut() closes every relayed connection and
    closes new ones at once until restore(); stall(True) keeps them up but
    drops what they carry (Redis connected but silent)."""
    stalled_all = False

    def __init__(self, to_port):
        self.to_port, self.cut_on, self.pairs, self.lock = to_port, False, [], threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for _ in range(20):
            self.port = free_port()
            try:
                self.srv.bind(("127.0.0.1", self.port))
                break
            except OSError:
                continue
        self.srv.listen(16)
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            if self.cut_on:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.to_port), timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.pairs.append((c, u))
            threading.Thread(target=self.pump, args=(c, u), daemon=True).start()
            threading.Thread(target=self.pump, args=(u, c), daemon=True).start()

    @staticmethod
    def pump(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                if not CutRelay.stalled_all:
                    b.sendall(d)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.cut_on = True
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for c, u in pairs:
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass

    def restore(self):
        self.cut_on = False

    def stall(self, on):
        CutRelay.stalled_all = on

    def close(self):
        self.cut()
        self.srv.close()


def join(node, room, identity):
    ws = WS(node.port, "/rtc")
    ws.send_text(json.dumps({"type": "join", "id": "j", "token": tc.mint(room, identity)}))
    end = time.time() + 5
    while time.time() < end:
        r = ws.recv()
        if r[0] == "text" and json.loads(r[1]).get("type") == "joined":
            return ws, json.loads(r[1]).get("room", {}).get("sid")
        if r[0] in ("close", "eof"):
            break
    raise RuntimeError("join %s/%s on %s failed" % (room, identity, node.name))


def identities(node, room):
    """The identities node's admin API lists in room (remote ones included)."""
    tok = tc.mint("", "ops", join=False, grants={"roomAdmin": True})
    st, js, text = http_json(node.port, "GET", "/admin/rooms/%s/participants" % room, tok)
    if st != 200:
        return "HTTP %d %s" % (st, text[:200])
    return sorted(p.get("identity") for p in (js or {}).get("participants", []))


def hooks(events, room, kind):
    return [e.get("room", {}).get("sid") for e in list(events)
            if e.get("event") == kind and e.get("room", {}).get("name") == room]


def main():
    tc.HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-rejoin-")
    events = []
    sink, sink_port = webhook_sink(events)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    redis = Redis(tmp, free_port())
    nodes, relay = [], None
    try:
        section("0. config 'cluster': a bad value stops the start with its range")
        for bad, want in (({"sid_wait_ms": 50}, "'cluster.sid_wait_ms' must be an integer in [100, 60000]"),
                          ({"room_ttl_ms": 1000}, "'cluster.room_ttl_ms' must be an integer in [6000, 86400000]"),
                          ({"reap_grace_ms": -1}, "'cluster.reap_grace_ms' must be an integer in [0, 600000]"),
                          ({"reap_grace": 1}, "unknown key 'cluster.reap_grace'")):
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump({"apps": [{"key": tc.APP, "secret": tc.SECRET}], "cluster": bad}, f)
            out = subprocess.run([tc.HUDONG, "serve", "--listen", "127.0.0.1:%d" % free_port(), "--config", path],
                                 capture_output=True, text=True, timeout=10)
            check(out.returncode != 0 and want in out.stderr and "Cluster timing" in out.stderr,
                  "config %s is refused: %s" % (json.dumps(bad), want), (out.returncode, out.stderr[-300:]))
        redis.start()
        relay = CutRelay(redis.port)
        cfg = {"webhooks": {"urls": ["http://127.0.0.1:%d/hook" % sink_port]}, "room_empty_timeout_s": 0,
               "cluster": {"reap_grace_ms": 1000, "room_ttl_ms": 12000}}
        for name, port in (("n1", relay.port), ("n2", redis.port)):
            # n1: a join waits 700 ms for the room's sid (cluster.sid_wait_ms; section 5)
            n = Node(tmp, name, port, config=dict(cfg, cluster=dict(cfg["cluster"], sid_wait_ms=700))
                     if name == "n1" else cfg)
            n.start()
            nodes.append(n)
        n1, n2 = nodes
        check(wait_until(lambda: all(view(n.port) == ["n1", "n2"] for n in nodes), 6) is not None,
              "the two nodes see each other")

        section("1. rooms on n1: 'both' (n2 too) and 'solo' (n1 alone)")
        alice, sid_both = join(n1, "both", "alice")
        time.sleep(0.3)
        bob, sid_bob = join(n2, "both", "bob")
        dave, sid_solo = join(n1, "solo", "dave")
        check(sid_bob == sid_both, "bob (n2) gets the room's sid %s" % sid_both, sid_bob)
        check(wait_until(lambda: identities(n2, "both") == ["alice", "bob"], 5) is not None,
              "n2 lists alice (n1) and bob", identities(n2, "both"))
        nodes_key = lambda room: "hudong:room:%s/%s:nodes" % (tc.APP, room)  # noqa: E731

        section("2. n1 cut off from Redis until n2 reaps it")
        t_cut = time.time()
        relay.cut()
        # n1's registry key lapses 3 s after its last heartbeat; n2 reaps its
        # rooms the reap grace (cluster.reap_grace_ms: 1 s here) after it saw the key gone
        reaped = wait_until(lambda: not redis.cmd("EXISTS", "hudong:noderooms:n1")
                            and "n1" not in (redis.cmd("SMEMBERS", nodes_key("both")) or []), 25, 0.2)
        print("# measured: n1's rooms reaped in Redis %s s after the cut"
              % ("%.1f" % (time.time() - t_cut) if reaped is not None else "never"))
        check(reaped is not None, "n2 reaped n1's rooms (n1 looked dead)")
        fin_solo = wait_until(lambda: hooks(events, "solo", "room_finished"), 5)
        check(fin_solo is not None and hooks(events, "solo", "room_finished") == [sid_solo],
              "'solo' was finished by the cluster, once, with its sid (n1 looked dead: documented)",
              hooks(events, "solo", "room_finished"))
        check(not hooks(events, "both", "room_finished"), "'both' was not finished (bob holds it on n2)")

        section("3. n1 back: it re-announces the rooms it holds")
        t_back = time.time()
        relay.restore()
        listed = wait_until(lambda: "n1" in (redis.cmd("SMEMBERS", nodes_key("both")) or [])
                            and "n1" in (redis.cmd("SMEMBERS", nodes_key("solo")) or []), 10, 0.1)
        print("# measured: n1 listed again in its rooms %s s after Redis came back"
              % ("%.1f" % listed if listed is not None else "never"))
        check(listed is not None, "n1 is listed again in the node sets of 'both' and 'solo'",
              [redis.cmd("SMEMBERS", nodes_key(r)) for r in ("both", "solo")])
        held = sorted(redis.cmd("SMEMBERS", "hudong:noderooms:n1") or [])
        check(held == ["%s/both" % tc.APP, "%s/solo" % tc.APP], "hudong:noderooms:n1 lists both rooms", held)
        sids = [redis.cmd("GET", "hudong:room:%s/%s:sid" % (tc.APP, r)) for r in ("both", "solo")]
        check(sids == [sid_both, sid_solo], "each room keeps its sid in Redis (n1's)", (sids, sid_both, sid_solo))
        ttls = [redis.cmd("PTTL", k) for k in (nodes_key("both"), "hudong:noderooms:n1")]
        check(all(isinstance(t, int) and 0 < t <= 12000 for t in ttls),
              "with their TTL (cluster.room_ttl_ms: at most 12 s)", ttls)
        started = wait_until(lambda: len(hooks(events, "solo", "room_started")) == 2, 5)
        print("# measured: 'solo' room_started again %s s after Redis came back"
              % ("%.1f" % (time.time() - t_back) if started is not None else "never"))
        check(hooks(events, "solo", "room_started") == [sid_solo, sid_solo],
              "'solo' starts again under its sid (room_started, the cluster had finished it)",
              hooks(events, "solo", "room_started"))
        check(identities(n2, "both") == ["alice", "bob"], "n2 still lists alice (n1) in 'both'",
              identities(n2, "both"))

        section("4. the cluster agrees again")
        bob.close()
        time.sleep(2.5)  # a room_finished would have come by now
        check(not hooks(events, "both", "room_finished"),
              "bob leaving n2 does not finish 'both' (alice is still in it on n1)",
              hooks(events, "both", "room_finished"))
        carol, sid_carol = join(n2, "both", "carol")
        check(sid_carol == sid_both, "carol joining n2 later gets the room's sid %s" % sid_both, sid_carol)
        erin, sid_erin = join(n2, "solo", "erin")
        check(sid_erin == sid_solo, "erin joining 'solo' on n2 gets its sid %s" % sid_solo, sid_erin)
        check(len(hooks(events, "both", "room_started")) == 1, "'both' started once",
              hooks(events, "both", "room_started"))
        for ws in (alice, carol, dave, erin):
            ws.close()
        wait_until(lambda: hooks(events, "both", "room_finished") and len(hooks(events, "solo", "room_finished")) == 2,
                   10)
        time.sleep(1.5)  # a second one would come by now
        check(hooks(events, "both", "room_finished") == [sid_both], "'both' finishes once, with its sid",
              hooks(events, "both", "room_finished"))
        seq = [e.get("event") for e in list(events) if e.get("room", {}).get("name") == "solo"
               and e.get("event") in ("room_started", "room_finished")]
        check(seq == ["room_started", "room_finished", "room_started", "room_finished"]
              and hooks(events, "solo", "room_finished") == [sid_solo, sid_solo],
              "'solo': started, finished (n1 looked dead), started (n1 back), finished; one sid", seq)
        left = [k for r in ("both", "solo") for k in (nodes_key(r), "hudong:room:%s/%s:sid" % (tc.APP, r))
                if redis.cmd("EXISTS", k)]
        check(not left, "the rooms' keys are gone from Redis", left)

        section("5. a short cut: n1 lets a room go meanwhile, and leaves it in Redis on its return")
        frank, sid_brief = join(n1, "brief", "frank")
        check(wait_until(lambda: "n1" in (redis.cmd("SMEMBERS", nodes_key("brief")) or []), 5) is not None,
              "'brief' lists n1 in Redis")
        relay.cut()
        time.sleep(0.3)
        frank.close()  # n1 cannot ask Redis: it decides the room's end alone (documented)
        check(wait_until(lambda: hooks(events, "brief", "room_finished") == [sid_brief], 5) is not None,
              "n1 fires 'brief' room_finished alone", hooks(events, "brief", "room_finished"))
        relay.restore()  # within n1's 3 s registry TTL: not reaped
        gone = wait_until(lambda: not redis.cmd("EXISTS", nodes_key("brief"))
                          and not redis.cmd("EXISTS", "hudong:room:%s/brief:sid" % tc.APP), 10, 0.1)
        check(gone is not None, "back, n1 leaves 'brief' in Redis: its keys are gone",
              (redis.cmd("SMEMBERS", nodes_key("brief")), redis.cmd("GET", "hudong:room:%s/brief:sid" % tc.APP)))
        # the keys go when Redis runs the script; n1 logs on reading its reply, a moment later
        check(wait_until(lambda: "no longer holds it" in n1.log(), 5, 0.1) is not None,
              "n1 logged that it left the room it no longer holds")
        gina, sid_gina = join(n2, "brief", "gina")
        check(sid_gina != sid_brief and wait_until(lambda: len(hooks(events, "brief", "room_started")) == 2, 5),
              "gina on n2 starts 'brief' afresh: a new sid and a room_started",
              (sid_gina, sid_brief, hooks(events, "brief", "room_started")))
        gina.close()

        section("6. Redis silent for n1: a join into a new room there waits cluster.sid_wait_ms (700 ms)")
        relay.stall(True)
        try:
            t0 = time.time()
            ws = WS(n1.port, "/rtc")
            ws.send_text(json.dumps({"type": "join", "id": "f", "token": tc.mint("fresh", "frank")}))
            err = None
            end = time.time() + 5
            while time.time() < end and err is None:
                r = ws.recv()
                if r[0] in ("close", "eof"):
                    break
                m = json.loads(r[1]) if r[0] == "text" else {}
                if m.get("type") in ("error", "joined"):
                    err = m
            waited = time.time() - t0
            ws.close()
        finally:
            relay.stall(False)
            relay.cut()  # the stalled connection's stream is broken: n1 connects afresh
            relay.restore()
        print("# measured: the join waited %.2f s, then: %s" % (waited, err))
        check(err is not None and err.get("code") == 503 and err.get("reason") == "cluster_unavailable"
              and "within 700 ms" in err.get("message", ""),
              "refused with 503 cluster_unavailable, naming the configured 700 ms wait", err)
    finally:
        sink.shutdown()
        if relay:
            relay.close()
        stop_cluster(nodes, redis, tmp)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
