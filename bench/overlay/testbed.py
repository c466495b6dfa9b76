#!/usr/bin/python3
"""A test bed of bad paths for the overlay (issue 16 item 5; docs/overlay.md
"The test bed").

Starts redis-server and 4 `hudong serve --redis` nodes (A, B, C, D; one media
worker each) on 127.0.0.1 free ports, and for every impaired pair X-Y two
`hudong netem` relays: X reaches Y's media port through relay X>Y and Y
reaches X's through relay Y>X, each node told so with `--peer-addr
Y=127.0.0.1:<relay>` (only that node: the others still reach Y directly, so
one pair's path is impaired and nothing else). A relay carries X's link
probes and their echoes (up and down) and X's media to Y (up), so the
impairments are set on both of its directions: "delay 150" is 150 ms one
way, an RTT of 300 ms as X measures it.

Why relays with --peer-addr and not network namespaces: `ip netns` works
here as root, but this kernel has no netem qdisc (`tc qdisc add ... netem`:
"Specified qdisc kind is unknown"), so namespaces would still need these
relays for the impairments, plus veth/bridge setup and root; the relays run
anywhere, unprivileged, next to the other tests on 127.0.0.1.

Default topology (one way, per direction):

    A-C  150 ms, 10% loss      the bad direct path
    A-B   20 ms, 0.5%          A-B-C: the good path (2 x 20 ms)
    B-C   20 ms, 0.5%
    A-D   45 ms, 1%            A-D-C: the second best (2 x 45 ms)
    D-C   45 ms, 1%
    B-D   30 ms, 0.5%

--jitter MS adds uniform +-MS to every relay (noisy but stable links, for
counting flaps). The schedule (--schedule default|none|FILE.json) changes
impairments at given seconds after the start: a list of
{"at": S, "pair": "A-B", "set": {<hudong netem /impair keys>}} or
{"at": S, "pair": "A-B", "reset": true}; the default kills A-B for 10 s
(blackout) at 10 s, raises B-C loss to 30% at 25 s and puts it back at 35 s.

    bench/overlay/testbed.py [--bin build/hudong] [--jitter MS] [--schedule default|none|FILE]
                             [--duration S] [--keep]

prints every node's link table and routes once a second while the schedule
runs. Used as a module by bench/overlay/bench.py and
tests/integration/test_overlay_testbed.py.
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import test_cluster as tc  # noqa: E402

NODES = ["A", "B", "C", "D"]
# pair -> impairment of each direction (hudong netem options, both directions of each relay)
TOPOLOGY = {
    "A-C": {"delay": 150, "loss": 10},
    "A-B": {"delay": 20, "loss": 0.5},
    "B-C": {"delay": 20, "loss": 0.5},
    "A-D": {"delay": 45, "loss": 1},
    "D-C": {"delay": 45, "loss": 1},
    "B-D": {"delay": 30, "loss": 0.5},
}
DEFAULT_SCHEDULE = [
    {"at": 10, "pair": "A-B", "set": {"blackout_now_ms": 10000}, "what": "A-B dies for 10 s"},
    {"at": 25, "pair": "B-C", "set": {"loss": 30}, "what": "B-C loss up to 30%"},
    {"at": 35, "pair": "B-C", "set": {"loss": 0.5}, "what": "B-C recovers (0.5%)"},
]


def free_udp_tcp_port():
    """A port free for UDP and TCP (a node's media port number is also its
    ICE-TCP listener)."""
    for _ in range(100):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            t.close()
            s.close()
    raise RuntimeError("no free port")


def netem_args(imp):
    out = []
    for k, v in imp.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


class Bed:
    """The nodes, Redis and relays; bed.nodes["A"] is a test_cluster.Node."""

    def __init__(self, hudong, tmp=None, topology=None, jitter=0.0, seed=1, nodes=None, overlay=None):
        tc.HUDONG = hudong
        # keys of every node's "overlay" config object (docs/overlay.md "Tuning the overlay")
        self.overlay = dict(overlay or {})
        self.hudong = hudong
        self.tmp = tmp or tempfile.mkdtemp(prefix="hd-overlay-bed-")
        self.topology = dict(TOPOLOGY if topology is None else topology)
        self.names = list(nodes or NODES)
        self.jitter = jitter
        self.seed = seed
        self.redis = None
        self.nodes = {}
        self.relays = {}  # "X>Y" -> {"proc", "port", "ctl"}
        self.media = {}

    def pair_impairment(self, pair):
        imp = dict(self.topology[pair])
        if self.jitter:
            imp["jitter"] = self.jitter
        return imp

    def start(self, attempts=3):
        """Starts everything; a port picked free and then taken by another job
        before a node or relay bound it (shared machine) starts over on new ports."""
        for i in range(attempts):
            try:
                return self._start()
            except RuntimeError:
                if i == attempts - 1:
                    raise
                self.stop(keep=True)
                self.redis, self.nodes, self.relays = None, {}, {}

    def _start(self):
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server is not installed: run tools/install-deps.sh")
        self.redis = tc.Redis(self.tmp, tc.free_port())
        self.redis.start()
        self.media = {n: free_udp_tcp_port() for n in self.names}
        peer_flags = {n: [] for n in self.names}
        seed = self.seed
        for pair in self.topology:
            x, y = pair.split("-")
            if x not in self.names or y not in self.names:
                continue
            for a, b in ((x, y), (y, x)):
                port, ctl = free_udp_tcp_port(), tc.free_port()
                seed += 1
                args = [self.hudong, "netem", "--listen", "127.0.0.1:%d" % port, "--to",
                        "127.0.0.1:%d" % self.media[b], "--control", "127.0.0.1:%d" % ctl, "--seed",
                        str(seed)] + netem_args(self.pair_impairment(pair))
                log = open(os.path.join(self.tmp, "netem-%s-%s.log" % (a, b)), "wb")
                proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
                self.relays["%s>%s" % (a, b)] = {"proc": proc, "port": port, "ctl": ctl}
                peer_flags[a] += ["--peer-addr", "%s=127.0.0.1:%d" % (b, port)]
        for r in self.relays.values():
            if not wait_tcp(r["ctl"], 5):
                raise RuntimeError("a hudong netem relay did not start; see %s/netem-*.log" % self.tmp)
        for n in self.names:
            node = tc.Node(self.tmp, n, self.redis.port, capacity=100,
                           extra=["--rtc-port", str(self.media[n])] + peer_flags[n],
                           config={"overlay": self.overlay} if self.overlay else None)
            node.start()
            self.nodes[n] = node
        want = sorted(self.names)
        if tc.wait_until(lambda: all(tc.view(x.port) == want for x in self.nodes.values()), 8) is None:
            raise RuntimeError("the nodes do not see each other")
        return self

    def impair(self, pair, body):
        """POST body (a dict: {"set": {...}} or {"reset": True}) to both relays of pair."""
        x, y = pair.split("-")
        req = {"reset": True} if body.get("reset") else {"both": body["set"]}
        for key in ("%s>%s" % (x, y), "%s>%s" % (y, x)):
            r = self.relays[key]
            c = http.client.HTTPConnection("127.0.0.1", r["ctl"], timeout=5)
            c.request("POST", "/impair", body=json.dumps(req))
            resp = c.getresponse()
            text = resp.read()
            c.close()
            if resp.status != 200:
                raise RuntimeError("relay %s refused %s: %s" % (key, req, text[:300]))

    def relay_stats(self, key):
        r = self.relays[key]
        c = http.client.HTTPConnection("127.0.0.1", r["ctl"], timeout=5)
        c.request("GET", "/stats")
        js = json.loads(c.getresponse().read() or b"{}")
        c.close()
        return js

    def links(self, name):
        st, js, text = tc.get(self.nodes[name].port, "/admin/cluster/links", admin_token())
        return js if st == 200 and js else {"error": text}

    def link(self, a, b):
        return {l["peer"]: l for l in self.links(a).get("links", [])}.get(b, {})

    def route(self, a, b):
        """The via list of a's route to b (None: no route), and a's route_changes."""
        js = self.links(a)
        for r in js.get("routes", []):
            if r.get("to") == b:
                return (r.get("via") if r.get("up") else None), js.get("route_changes", 0)
        return None, js.get("route_changes", 0)

    def url(self, name):
        return "http://127.0.0.1:%d" % self.nodes[name].port

    def stop(self, keep=False):
        for r in self.relays.values():
            if r["proc"].poll() is None:
                r["proc"].kill()
                r["proc"].wait()
        for n in self.nodes.values():
            if n.proc and n.proc.poll() is None:
                n.proc.terminate()
                try:
                    n.proc.wait(10)
                except subprocess.TimeoutExpired:
                    n.proc.kill()
                    n.proc.wait()
        if self.redis:
            self.redis.stop()
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def wait_tcp(port, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def admin_token():
    """An app-wide roomAdmin token for /admin/cluster/links."""
    import base64
    import hashlib
    import hmac
    now = int(time.time())
    claims = {"iss": tc.APP, "sub": "ops", "exp": now + 3600, "iat": now, "grants": {"roomAdmin": True}}

    def b64u(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = b64u(hmac.new(tc.SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


def load_schedule(arg):
    if arg == "default":
        return list(DEFAULT_SCHEDULE)
    if arg == "none":
        return []
    with open(arg) as f:
        sched = json.load(f)
    for ev in sched:
        if not isinstance(ev, dict) or "at" not in ev or "pair" not in ev or not ("set" in ev or "reset" in ev):
            raise SystemExit("schedule %s: each event is {\"at\": S, \"pair\": \"X-Y\", \"set\": {...}} or "
                             "{\"at\": S, \"pair\": \"X-Y\", \"reset\": true}; got %r" % (arg, ev))
    return sorted(sched, key=lambda e: e["at"])


class Schedule:
    """Applies events as their time comes (call poll() often)."""

    def __init__(self, bed, events, t0=None, log=print):
        self.bed, self.events, self.t0, self.log = bed, list(events), t0 or time.time(), log
        self.applied = []

    def poll(self):
        now = time.time() - self.t0
        while self.events and self.events[0]["at"] <= now:
            ev = self.events.pop(0)
            self.bed.impair(ev["pair"], ev)
            self.applied.append(dict(ev, applied_at=round(now, 3), wall=time.time()))
            self.log("t=%5.1f s  %s: %s" % (now, ev["pair"], ev.get("what") or ev.get("set") or "reset"))


def table(bed):
    lines = []
    for a in bed.names:
        js = bed.links(a)
        ls = {l["peer"]: l for l in js.get("links", [])}
        cells = []
        for b in bed.names:
            if b == a:
                continue
            l = ls.get(b, {})
            via = next((r.get("via") for r in js.get("routes", []) if r.get("to") == b), None)
            cells.append("%s:%s %5.0fms %4.1f%% via %s" % (b, "up" if l.get("up") else "DN", l.get("rtt_ms", 0),
                                                           100 * l.get("loss_fwd", 0),
                                                           ",".join(via) if via else "-"))
        lines.append("%s -> %s  (changes %s)" % (a, " | ".join(cells), js.get("route_changes")))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "hudong"))
    ap.add_argument("--jitter", type=float, default=0)
    ap.add_argument("--schedule", default="default")
    ap.add_argument("--duration", type=float, default=45)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = ap.parse_args()
    bed = Bed(os.path.abspath(a.bin), jitter=a.jitter)
    try:
        bed.start()
        print("bed up in %s: nodes %s" % (bed.tmp, ", ".join("%s %s (media %d)" % (n, bed.url(n), bed.media[n])
                                                             for n in bed.names)))
        sched = Schedule(bed, load_schedule(a.schedule))
        end = time.time() + a.duration
        while time.time() < end:
            sched.poll()
            print(table(bed), flush=True)
            print()
            time.sleep(1)
    finally:
        bed.stop(keep=a.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
