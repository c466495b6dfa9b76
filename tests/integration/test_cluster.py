#!/usr/bin/python3
"""Integration test of the Redis-coordinated cluster, issue 15 items 1 and 4
(docs/overlay.md): a real redis-server (Debian) on a free port in a temp dir,
three `hudong serve --redis ...` nodes on free 127.0.0.1 ports.

 1. registry: every node sees the other two within ~2 s (measured).
 2. /api/route: region and labels narrow the choice; client RTTs decide; a
    room held by a node goes to it; rooms spread over the less loaded nodes
    (participants joined over /rtc); a full node is never chosen; errors
    (401, 403, 400 for bad room / rtt).
 3. kill -9 one node: the others drop it within ~4 s (measured) and never
    route to it afterwards.
 4. Redis restarts (stopped 5 s, started on the same port): the nodes keep
    answering HTTP meanwhile (their route falls back to themselves), log the
    outage once, re-register, and the registry is complete again (measured).
 5. SIGTERM: a stopping node deregisters; its peer drops it at once.
 6. a node without --redis answers /api/route with itself; a bad --redis URL
    stops the start with a message.

usage: test_cluster.py /path/to/hudong
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402

from hdtest import FAILS, b64u, check, free_port, jwt_hs256, verdict  # noqa: E402,F401  (shared helpers)

APP, SECRET = "appA", "secret-of-app-A-0123456789"
HUDONG = None
T0 = time.time()


def section(name):
    print("# ---- %s (t=%.1f s)" % (name, time.time() - T0))


def mint(room, identity="u", secret=SECRET, join=True, grants=None):
    """A token of APP for `room` (roomJoin unless join=False; more grants merged in)."""
    now = int(time.time())
    g = {"room": room}
    if join:
        g["roomJoin"] = True
    g.update(grants or {})
    return jwt_hs256(secret, {"iss": APP, "sub": identity, "exp": now + 600, "iat": now, "grants": g})


def get(port, path, token=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers={"Authorization": "Bearer " + token} if token else {})
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    c.close()
    try:
        js = json.loads(text)
    except ValueError:
        js = None
    return r.status, js, text


def route(port, room, **q):
    qs = "room=" + room + "".join("&%s=%s" % (k, v) for k, v in q.items())
    return get(port, "/api/route?" + qs, mint(room))


def view(port):
    """The ids this node knows alive (itself included), from its route answer."""
    try:
        st, js, _ = route(port, "probe")
    except OSError:
        return None
    return sorted(c["id"] for c in js["candidates"]) if st == 200 else None


# ---------------------------------------------------------------- Redis

class Redis:
    def __init__(self, tmp, port):
        self.tmp, self.port, self.proc = tmp, port, None

    def start(self):
        self.log = open(os.path.join(self.tmp, "redis.log"), "ab")
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", self.tmp],
                                     stdout=self.log, stderr=self.log)
        end = time.time() + 10
        while time.time() < end:
            try:
                if self.cmd("PING") == "PONG":
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def cmd(self, *args):
        """One command over RESP (the Redis protocol), decoded minimally."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        out = "*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)
        s.sendall(out.encode())
        f = s.makefile("rb")

        def read():
            line = f.readline().decode().rstrip("\r\n")
            t, rest = line[0], line[1:]
            if t in "+-":
                return rest if t == "+" else RuntimeError(rest)
            if t == ":":
                return int(rest)
            if t == "$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)[:-2]
                return data.decode()
            if t == "*":
                return [read() for _ in range(int(rest))]
            raise RuntimeError("bad RESP " + line)
        r = read()
        s.close()
        return r


# ---------------------------------------------------------------- nodes

class Node:
    def __init__(self, tmp, name, redis_port=None, capacity=10, region="", labels="", extra=None, config=None):
        self.tmp, self.name = tmp, name
        self.config = config or {}  # more config keys (e.g. "webhooks")
        self.redis_port, self.capacity, self.region, self.labels = redis_port, capacity, region, labels
        self.extra = extra or []
        self.proc = None

    def start(self):
        for _ in range(5):
            self.port = free_port()
            cfg = {"listen": "127.0.0.1:%d" % self.port, "rtc_port": 0, "media_workers": 1,
                   "max_sessions": self.capacity, "rtm": {"db": ":memory:"},
                   "apps": [{"key": APP, "secret": SECRET}], "node_id": self.name}
            cfg.update(self.config)
            if self.region:
                cfg["region"] = self.region
            if self.labels:
                cfg["labels"] = self.labels
            path = os.path.join(self.tmp, self.name + ".json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            args = [HUDONG, "serve", "--config", path] + self.extra
            if self.redis_port:
                args += ["--redis", "redis://127.0.0.1:%d" % self.redis_port]
            self.logpath = os.path.join(self.tmp, self.name + ".log")
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.logpath, "ab"),
                                         env=dict(os.environ, HUDONG_LOG="info"))
            end = time.time() + 10
            while time.time() < end and self.proc.poll() is None:
                try:
                    if get(self.port, "/healthz", timeout=1)[0] == 200:
                        return
                except OSError:
                    time.sleep(0.05)
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
        raise RuntimeError("hudong serve %s did not start: %s" % (self.name, open(self.logpath).read()[-2000:]))

    def log(self):
        with open(self.logpath, errors="replace") as f:
            return f.read()


def stop_cluster(nodes, redis, tmp, procs=()):
    """The end of a cluster test: other processes (clients, relays) killed,
    each node stopped cleanly (a sanitizer build checks for leaks at exit),
    Redis stopped, a sanitizer report in any node's log counted as a failure;
    the nodes' log tails printed if anything failed, else tmp removed."""
    for p in procs:
        if p and p.poll() is None:
            p.kill()
            p.wait()
    for n in nodes:
        if n.proc and n.proc.poll() is None:
            n.proc.terminate()
            try:
                n.proc.wait(10)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
    redis.stop()
    for n in nodes:
        if not n.proc:
            continue
        bad = [ln for ln in n.log().splitlines() if "Sanitizer" in ln or "runtime error:" in ln]
        check(not bad, "no sanitizer report in %s's log" % n.name, "\n".join(bad[:5]))
    if FAILS:
        for n in nodes:
            if n.proc:
                print("# ---- %s.log (tail)\n%s" % (n.name, n.log()[-3000:]))
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def wait_until(pred, timeout, step=0.05):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return time.time() - t0
        time.sleep(step)
    return None


def join(node, room, identity):
    """A participant in `room` on `node` over /rtc (docs/protocol.md)."""
    ws = WS(node.port, "/rtc")
    ws.send_text(json.dumps({"type": "join", "id": "j", "token": mint(room, identity)}))
    end = time.time() + 5
    while time.time() < end:
        r = ws.recv()
        if r[0] == "text" and json.loads(r[1]).get("type") == "joined":
            return ws
        if r[0] in ("close", "eof"):
            break
    raise RuntimeError("join %s/%s on %s failed" % (room, identity, node.name))


def main():
    global HUDONG
    HUDONG = sys.argv[1]
    if not shutil.which("redis-server"):
        print("redis-server is not installed: run tools/install-deps.sh")
        return 1
    tmp = tempfile.mkdtemp(prefix="hd-cluster-")
    redis = Redis(tmp, free_port())
    nodes = []
    try:
        redis.start()
        section("1. registry")
        n1 = Node(tmp, "n1", redis.port, region="eu")
        n2 = Node(tmp, "n2", redis.port, region="us", labels="gpu=yes")
        n3 = Node(tmp, "n3", redis.port, region="us", capacity=2)
        for n in (n1, n2, n3):
            n.start()
            nodes.append(n)
        allids = ["n1", "n2", "n3"]
        dt = wait_until(lambda: all(view(n.port) == allids for n in nodes), 5)
        check(dt is not None and dt <= 2.5, "every node sees the other two within ~2 s after the last start",
              "%s s; views %s" % (dt, [view(n.port) for n in nodes]))
        if dt is not None:
            print("# measured: full registry %.2f s after the last node answered /healthz" % dt)
        members = redis.cmd("SMEMBERS", "hudong:nodes")
        check(sorted(members) == allids, "hudong:nodes holds the three ids", members)
        entry = json.loads(redis.cmd("GET", "hudong:node:n2"))
        ttl = redis.cmd("PTTL", "hudong:node:n2")
        check(entry["id"] == "n2" and entry["region"] == "us" and entry["labels"] == "gpu=yes" and
              entry["url"] == "http://127.0.0.1:%d" % n2.port and entry["capacity"] == 10 and
              len(entry["media"]) == 1, "n2's entry: id, region, labels, url, capacity, media", entry)
        check(0 < ttl <= 3000, "the entry has a TTL of at most 3 s", ttl)
        st, _, text = get(n1.port, "/metrics")
        check("hudong_cluster_peers 2" in text and "hudong_cluster_registered 1" in text,
              "/metrics: hudong_cluster_registered 1, hudong_cluster_peers 2")

        dup = Node(tmp, "dup", redis.port, extra=["--node-id", "n1"])
        dup.start()  # its config says node_id "dup"; --node-id overrides it
        seen = wait_until(lambda: "another node registers with this node's id 'n1'" in n1.log() + dup.log(), 4)
        check(seen is not None, "two nodes with one node_id: a warning saying to give each its own",
              (n1.log() + dup.log())[-1500:])
        dup.proc.terminate()
        dup.proc.wait(10)
        # dup deletes the n1 entry on its way out only if it was still its own
        # (compare-and-delete); n1 writes its own at its next heartbeat
        n1url = "http://127.0.0.1:%d" % n1.port

        def n1_own():
            e = redis.cmd("GET", "hudong:node:n1")
            return e is not None and json.loads(e)["url"] == n1url and "n1" in redis.cmd("SMEMBERS", "hudong:nodes")
        check(wait_until(n1_own, 4) is not None and
              wait_until(lambda: all(view(n.port) == allids for n in nodes), 4) is not None,
              "n1's own entry is back and the registry whole once the duplicate left")

        section("2. /api/route")
        st, js, text = route(n1.port, "r0", region="eu")
        check(st == 200 and js["node"]["id"] == "n1" and js["cluster"] is True, "region=eu -> n1", text)
        got = {route(n1.port, "r%d" % i, region="us")[1]["node"]["id"] for i in range(20)}
        check(got == {"n2", "n3"}, "region=us -> n2 and n3 (spread), never n1", got)
        st, js, text = route(n3.port, "r1", labels="gpu=yes")
        check(st == 200 and js["node"]["id"] == "n2", "labels=gpu=yes -> n2", text)
        st, js, text = route(n1.port, "r1", rtt="n1:80,n2:20,n3:50")
        check(st == 200 and js["node"]["id"] == "n2" and js["reason"] == "rtt", "rtt n1:80,n2:20,n3:50 -> n2", text)
        st, js, text = route(n2.port, "r1", rtt="n1%3A30%2Cn3%3A90")
        check(st == 200 and js["node"]["id"] == "n1", "percent-encoded rtt works (n1:30,n3:90 -> n1)", text)
        st, js, text = route(n1.port, "r1", region="us", rtt="n1:5,n2:40,n3:30")
        check(st == 200 and js["node"]["id"] == "n3", "region first, then rtt within it -> n3", text)

        # load: 3 participants in room "busy" on n2 (load 0.3 of capacity 10)
        socks = [join(n2, "busy", "p%d" % i) for i in range(3)]
        ok = wait_until(lambda: any(c["id"] == "n2" and c["participants"] == 3
                                    for c in route(n1.port, "probe")[1]["candidates"]), 4)
        check(ok is not None, "n1 sees n2's 3 participants within a heartbeat or two")
        st, js, text = route(n1.port, "busy")
        check(st == 200 and js["node"]["id"] == "n2" and js["reason"] == "room",
              "a room held on n2 is routed to n2 from n1 (no client RTTs)", text)
        st, js, text = route(n1.port, "busy", rtt="n1:1,n3:1,n2:200")
        check(st == 200 and js["node"]["id"] in ("n1", "n3") and js["reason"] == "rtt",
              "with client RTTs the nearest node wins: rooms span nodes", text)
        # the spread is asked of n3, whose registry read may lag n1's by a heartbeat
        ok = wait_until(lambda: any(c["id"] == "n2" and c["participants"] == 3
                                    for c in route(n3.port, "probe")[1]["candidates"]), 4)
        check(ok is not None, "n3 sees n2's 3 participants too")
        got = {}
        for i in range(30):
            nid = route(n3.port, "new%d" % i)[1]["node"]["id"]
            got[nid] = got.get(nid, 0) + 1
        check("n2" not in got and got.get("n1", 0) > 3 and got.get("n3", 0) > 3,
              "new rooms spread over the less loaded n1 and n3, none to n2 (30% load)",
              (got, route(n3.port, "new0")[2]))
        # full: n3 (capacity 2) with 2 participants is never chosen
        socks += [join(n3, "full3", "q%d" % i) for i in range(2)]
        ok = wait_until(lambda: all(not c["eligible"] for c in route(n1.port, "probe")[1]["candidates"]
                                    if c["id"] == "n3"), 4)
        check(ok is not None, "n1 sees n3 full")
        picks = {route(n1.port, "f%d" % i, rtt="n3:1,n1:50,n2:60")[1]["node"]["id"] for i in range(10)}
        check(picks == {"n1"}, "a full node is never chosen, even at the lowest rtt (n1 at 50 ms wins)", picks)
        st, js, text = route(n1.port, "full3")
        check(st == 200 and js["node"]["id"] != "n3", "a room on a full node goes elsewhere", text)
        for w in socks:
            w.sock.close()

        st, _, text = get(n1.port, "/api/route?room=r1")
        check(st == 401, "no token: 401", text)
        st, _, text = get(n1.port, "/api/route?room=r1", mint("other"))
        check(st == 403, "a token for another room: 403", text)
        st, _, text = get(n1.port, "/api/route?room=r1", mint("r1", secret="wrong-secret-000000000000"))
        check(st == 401, "a bad signature: 401", text)
        st, _, text = get(n1.port, "/api/route", mint("r1"))
        check(st == 400 and "room=" in text, "no room: 400 saying room=<name>", text)
        st, _, text = get(n1.port, "/api/route?room=r1&rtt=n1", mint("r1"))
        check(st == 400 and "node:ms" in text, "bad rtt: 400 showing the form", text)

        section("3. kill -9")
        n3.proc.kill()
        n3.proc.wait()
        t_kill = time.time()
        dt = wait_until(lambda: view(n1.port) == ["n1", "n2"] and view(n2.port) == ["n1", "n2"], 8)
        check(dt is not None and dt <= 4.5, "the others drop a SIGKILLed node within ~4 s",
              "%s s" % dt)
        if dt is not None:
            print("# measured: dead node dropped %.2f s after kill -9 (TTL 3 s, heartbeat 1 s)" % dt)
        picks = {route(n.port, "k%d" % i, rtt="n3:1,n1:40,n2:40")[1]["node"]["id"]
                 for i in range(15) for n in (n1, n2)}
        check("n3" not in picks, "a dead node is never routed to (after it is dropped)", picks)
        nodes.remove(n3)
        # the index keeps a lapsed id HD_CLUSTER_REAP_GRACE_MS (5 s) more: a node
        # whose key lapsed on a Redis blip keeps its rooms (docs/overlay.md)
        left = wait_until(lambda: "n3" not in (redis.cmd("SMEMBERS", "hudong:nodes") or []), 10)
        check(left is not None, "the dead node's id leaves the hudong:nodes index")
        print("# t since kill: %.1f s" % (time.time() - t_kill))

        section("4. Redis restart")
        redis.stop()
        t_stop = time.time()
        answered = failed = 0
        while time.time() - t_stop < 5:
            for n in (n1, n2):
                try:
                    st, js, _ = route(n.port, "during")
                    answered += st == 200 and js is not None and js["node"]["id"] in ("n1", "n2")
                    failed += st != 200
                except OSError:
                    failed += 1
            time.sleep(0.2)
        check(answered > 20 and failed == 0, "the nodes keep answering /api/route while Redis is down",
              "%d answered, %d failed" % (answered, failed))
        check(view(n1.port) == ["n1"], "after a TTL without Redis, n1 routes only to itself", view(n1.port))
        redis.start()
        t_back = time.time()
        dt = wait_until(lambda: view(n1.port) == ["n1", "n2"] and view(n2.port) == ["n1", "n2"] and
                        sorted(redis.cmd("SMEMBERS", "hudong:nodes") or []) == ["n1", "n2"], 8)
        check(dt is not None and dt <= 4.0, "both nodes re-register and see each other within ~4 s of Redis "
              "being back", "%s s" % dt)
        if dt is not None:
            print("# measured: registry complete %.2f s after redis-server restarted (down %.1f s)" %
                  (dt, t_back - t_stop))
        for n in (n1, n2):
            log = n.log()
            check(log.count("keeps serving its own clients") == 1,
                  "%s logged the outage once, saying what to check" % n.name,
                  log.count("keeps serving its own clients"))
            check("registered again" in log, "%s logged its re-registration" % n.name)
            check(n.proc.poll() is None, "%s is still running" % n.name)

        section("5. SIGTERM deregisters")
        n2.proc.send_signal(signal.SIGTERM)
        n2.proc.wait(10)
        nodes.remove(n2)
        dt = wait_until(lambda: view(n1.port) == ["n1"], 3)
        check(dt is not None and dt < 1.5, "a stopped node is dropped at once (deregistered), not after the TTL",
              "%s s" % dt)
        check(n2.proc.returncode == 0, "n2 exits 0", n2.proc.returncode)

        section("6. alone")
        solo = Node(tmp, "solo")
        solo.start()
        nodes.append(solo)
        st, js, text = route(solo.port, "r1")
        check(st == 200 and js["cluster"] is False and js["node"]["id"] == "solo" and
              js["node"]["url"] == "http://127.0.0.1:%d" % solo.port, "without --redis: itself", text)
        st, _, text = get(solo.port, "/metrics")
        check(st == 200 and "hudong_cluster_" not in text, "without --redis: no cluster metrics")
        bad = subprocess.run([HUDONG, "serve", "--redis", "http://127.0.0.1:1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=10)
        msg = bad.stderr.decode()
        check(bad.returncode == 2 and "redis://" in msg, "a bad --redis URL: exit 2 with the expected form", msg)
        bad = subprocess.run([HUDONG, "serve", "--redis", "redis://h:1", "--labels", "gpu"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        check(bad.returncode == 2 and "key=value" in bad.stderr.decode(), "bad --labels: exit 2 with the form",
              bad.stderr.decode())

        cfgpath = os.path.join(tmp, "bad.json")
        with open(cfgpath, "w") as f:
            json.dump({"apps": [{"key": APP, "secret": SECRET}], "redis": "redis://h:99999"}, f)
        bad = subprocess.run([HUDONG, "serve", "--config", cfgpath], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=10)
        check(bad.returncode == 2 and "1..65535" in bad.stderr.decode(),
              "config key redis with a bad port: exit 2 naming the range", bad.stderr.decode())
        for key, val, want in (("node_id", "a/b", "node_id"), ("region", "eu west", "region"),
                               ("labels", "a=b,c", "key=value"), ("labels", "a=", "key=value"),
                               ("announce_url", "ftp://x", "announce_url"), ("redis", "rediss://h", "TLS")):
            with open(cfgpath, "w") as f:
                json.dump({"apps": [{"key": APP, "secret": SECRET}], key: val}, f)
            bad = subprocess.run([HUDONG, "serve", "--config", cfgpath], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=10)
            check(bad.returncode == 2 and want in bad.stderr.decode(),
                  "config %s=%r refused (exit 2) saying what is expected" % (key, val), bad.stderr.decode())

        section("7. clean exits")
        for n in (n1, solo):
            n.proc.send_signal(signal.SIGTERM)
            n.proc.wait(15)
            log = n.log()
            check(n.proc.returncode == 0 and "Sanitizer" not in log and "runtime error" not in log,
                  "%s exits 0 on SIGTERM, no sanitizer report" % n.name, log[-1500:])
        for n in (n2,):
            check("Sanitizer" not in n.log(), "n2: no sanitizer report")
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.terminate()
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
        redis.stop()
        if FAILS:
            for n in ("n1", "n2", "n3", "solo"):
                p = os.path.join(tmp, n + ".log")
                if os.path.exists(p):
                    print("# ---- %s.log (tail)\n%s" % (n, open(p, errors="replace").read()[-3000:]))
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
