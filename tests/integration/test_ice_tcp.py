#!/usr/bin/python3
"""Integration test of ICE-TCP passive candidates (RFC 6544, RFC 4571 framing:
src/io/ice_tcp.c) against a real `hudong serve` on free 127.0.0.1 ports.
Standard library only: the test speaks STUN (RFC 5389) itself.

 1. a WHIP answer carries the UDP host candidate and, below it in priority, a
    TCP passive one on the same port number;
 2. a connectivity check framed on a TCP connection (split over two writes)
    gets a framed, authenticated Binding success whose XOR-MAPPED-ADDRESS is
    the connection's own address; the same check over UDP is answered over UDP;
 3. caps, each closing only the connection concerned: bad framing, data before
    a valid check, a check with the wrong password then no valid check within
    ice_tcp.check_timeout_ms, ice_tcp.max_connections, ice_tcp.idle_timeout_seconds,
    ice_tcp.max_buffer_bytes (a peer that sends checks and never reads);
    the connection in use survives all of them;
 4. the counters on /metrics name each reason;
 5. config errors in the `ice_tcp` and `turn` objects stop `serve` at start
    (exit 2) with a message naming the key; `"enabled": false` takes the TCP
    candidate out of answers.

usage: test_ice_tcp.py /path/to/hudong
"""
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import CHECKS, FAILS, b64u, check, free_media_port, free_port  # noqa: E402

SECRET = "secret-of-ice-tcp-app-0123456789"
OFFER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "chrome_offer.sdp")
CHECK_TIMEOUT_MS = 1500
IDLE_S = 2
MAX_CONNS = 4


def mint(room):
    now = int(time.time())
    claims = {"iss": "tcpapp", "sub": "pub1", "exp": now + 600, "iat": now,
              "grants": {"room": room, "roomJoin": True, "canPublish": True}}
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    sig = b64u(hmac.new(SECRET.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig


# ---------------------------------------------------------------- STUN

MAGIC = 0x2112A442


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def binding_request(user, pwd, tid):
    body = attr(0x0006, user.encode())                      # USERNAME
    body += attr(0x0024, struct.pack("!I", 1853824767))     # PRIORITY
    body += attr(0x802A, os.urandom(8))                     # ICE-CONTROLLING
    body += attr(0x0025, b"")                               # USE-CANDIDATE
    # MESSAGE-INTEGRITY over the message with the length covering it (RFC 5389 §15.4)
    hdr = struct.pack("!HHI", 0x0001, len(body) + 24, MAGIC) + tid
    mi = hmac.new(pwd.encode(), hdr + body, hashlib.sha1).digest()
    body += attr(0x0008, mi)
    hdr = struct.pack("!HHI", 0x0001, len(body) + 8, MAGIC) + tid
    fp = (zlib.crc32(hdr + body) ^ 0x5354554E) & 0xFFFFFFFF
    body += attr(0x8028, struct.pack("!I", fp))
    return struct.pack("!HHI", 0x0001, len(body), MAGIC) + tid + body


def parse_response(msg, pwd):
    """(type, tid, xor-mapped (ip, port) or None, integrity ok)."""
    typ, ln, magic = struct.unpack("!HHI", msg[:8])
    tid = msg[8:20]
    off, mapped, mi_ok = 20, None, False
    while off + 4 <= 20 + ln:
        t, l = struct.unpack("!HH", msg[off:off + 4])
        v = msg[off + 4:off + 4 + l]
        if t == 0x0020 and l >= 8:
            port = struct.unpack("!H", v[2:4])[0] ^ (MAGIC >> 16)
            ip = socket.inet_ntoa(struct.pack("!I", struct.unpack("!I", v[4:8])[0] ^ MAGIC))
            mapped = (ip, port)
        if t == 0x0008:
            hdr = struct.pack("!HHI", typ, off - 20 + 24, MAGIC) + tid
            mi_ok = hmac.compare_digest(hmac.new(pwd.encode(), hdr + msg[20:off], hashlib.sha1).digest(), v)
        off += 4 + l + (4 - l % 4) % 4
    return typ, tid, mapped, mi_ok


def frame(pkt):
    return struct.pack("!H", len(pkt)) + pkt


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise ConnectionError("closed after %d of %d bytes" % (len(b), n))
        b += d
    return b


def recv_frame(s):
    n = struct.unpack("!H", recv_exact(s, 2))[0]
    return recv_exact(s, n)


def closed_within(s, seconds):
    """True if the server closes s (EOF or reset) within `seconds`."""
    s.settimeout(seconds)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


# ---------------------------------------------------------------- server

def start(tmp):
    for _ in range(5):
        port, rtc = free_port(), free_media_port()
        cfg = {"listen": "127.0.0.1:%d" % port, "rtc_port": rtc, "media_workers": 1,
               "apps": [{"key": "tcpapp", "secret": SECRET}],
               "ice_tcp": {"max_connections": MAX_CONNS, "check_timeout_ms": CHECK_TIMEOUT_MS,
                           "idle_timeout_seconds": IDLE_S, "max_buffer_bytes": 16384}}
        path = os.path.join(tmp, "cfg.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        log = open(os.path.join(tmp, "serve.log"), "w+b")
        proc = subprocess.Popen([sys.argv[1], "serve", "--config", path], stdout=log, stderr=log,
                                env=dict(os.environ, HUDONG_LOG="debug"))
        end = time.time() + 10
        while time.time() < end and proc.poll() is None:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    return proc, port, rtc, log
            except OSError:
                time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    raise RuntimeError("hudong serve did not start")


def metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    out = {}
    for ln in text.splitlines():
        if ln and not ln.startswith("#"):
            k, _, v = ln.rpartition(" ")
            out[k] = float(v)
    return out


def wait_gauge(port):
    """The last connection's close reaches the worker a moment after ours."""
    end = time.time() + 3
    while time.time() < end:
        if metrics(port).get("hudong_ice_tcp_connections", -1) == 0:
            return True
        time.sleep(0.05)
    return False


def config_errors(tmp):
    cases = [({"ice_tcp": {"enabled": "yes"}}, "'ice_tcp.enabled' must be true or false"),
             ({"ice_tcp": {"max_conections": 5}}, "unknown key 'ice_tcp.max_conections'"),
             ({"ice_tcp": {"max_buffer_bytes": 100}}, "'max_buffer_bytes' must be an integer in [16384"),
             ({"turn": {"urls": ["http://turn.example.com"], "secret": "0123456789abcdef"}}, "turn.urls[0] must be"),
             ({"turn": {"urls": ["turns:turn.example.com:443?transport=sctp"], "secret": "0123456789abcdef"}},
              "turn.urls[0] must be"),
             ({"turn": {"urls": ["turn:turn.example.com"], "secret": "short"}}, "'turn.secret' must be"),
             ({"turn": {"secret": "0123456789abcdef"}}, "'turn.urls' must be an array"),
             ({"turn": {"urls": ["turn:t.example.com"], "secret": "0123456789abcdef", "ttl_seconds": 5}},
              "'ttl_seconds' must be an integer in [60")]
    for cfg, want in cases:
        cfg = dict(cfg, listen="127.0.0.1:%d" % free_port(), rtc_port=0, apps=[{"key": "k", "secret": "s"}])
        path = os.path.join(tmp, "bad.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([sys.argv[1], "serve", "--config", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        err = r.stderr.decode(errors="replace")
        check(r.returncode == 2 and want in err, "config %s: exit 2, \"%s\"" % (json.dumps(cfg.get("ice_tcp", cfg.get("turn"))), want),
              (r.returncode, err[-300:]))


def tcp_port_taken(tmp):
    """rtc_port whose TCP number another program holds: exit 1 naming it."""
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    hold.listen(1)
    taken = hold.getsockname()[1]
    path = os.path.join(tmp, "taken.json")
    with open(path, "w") as f:
        json.dump({"listen": "127.0.0.1:%d" % free_port(), "rtc_port": taken, "media_workers": 1,
                   "apps": [{"key": "k", "secret": "s"}]}, f)
    # a refused start exits at once: not a leak check (sanitizer builds)
    r = subprocess.run([sys.argv[1], "serve", "--config", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=10,
                       env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"))
    hold.close()
    err = r.stderr.decode(errors="replace")
    check(r.returncode == 1 and "cannot listen on TCP 127.0.0.1:%d for ICE-TCP" % taken in err
          and '"ice_tcp": {"enabled": false}' in err, "media port number taken on TCP: exit 1 with the fix", err[-300:])


def ice_tcp_off(tmp):
    # a fresh listen port per attempt: free_port() only says the port was free
    # a moment ago; the node's start error is kept to say why if all fail
    answer, errs = None, ""
    for attempt in range(3):
        port = free_port()
        path = os.path.join(tmp, "off.json")
        with open(path, "w") as f:
            json.dump({"listen": "127.0.0.1:%d" % port, "rtc_port": 0, "media_workers": 1,
                       "apps": [{"key": "tcpapp", "secret": SECRET}], "ice_tcp": {"enabled": False}}, f)
        errf = open(os.path.join(tmp, "off-%d.log" % attempt), "w+")
        proc = subprocess.Popen([sys.argv[1], "serve", "--config", path], stdout=subprocess.DEVNULL, stderr=errf)
        try:
            end = time.time() + 10
            while answer is None and time.time() < end and proc.poll() is None:
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("POST", "/whip/offroom", body=open(OFFER, "rb").read(),
                              headers={"Authorization": "Bearer " + mint("offroom"),
                                       "Content-Type": "application/sdp"})
                    r = c.getresponse()
                    answer = (r.status, r.read().decode())
                except OSError:
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(10)
            errf.seek(0)
            errs += errf.read()[-400:]
            errf.close()
        if answer is not None:
            break
    check(answer and answer[0] == 201 and " udp " in answer[1] and " tcp " not in answer[1],
          "ice_tcp.enabled false: UDP candidate only", answer if answer else errs)


def main():
    tmp = tempfile.mkdtemp(prefix="hudong-icetcp-")
    config_errors(tmp)
    tcp_port_taken(tmp)
    ice_tcp_off(tmp)
    proc, port, rtc, log = start(tmp)
    try:
        run(port, rtc)
    finally:
        proc.terminate()
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -9
        check(code == 0, "hudong serve exits 0 on SIGTERM", code)
        if FAILS:
            log.seek(0)
            print("---- server log (tail)\n" + "\n".join(log.read().decode(errors="replace").splitlines()[-40:]))
    print("%d passed, %d failed" % (CHECKS[0] - len(FAILS), len(FAILS)))
    sys.exit(1 if FAILS else 0)


def run(port, rtc):
    # 1. the answer's candidates
    offer = open(OFFER, "rb").read()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/whip/tcproom", body=offer,
              headers={"Authorization": "Bearer " + mint("tcproom"), "Content-Type": "application/sdp"})
    r = c.getresponse()
    answer = r.read().decode()
    check(r.status == 201, "WHIP publish answered 201", (r.status, answer))
    cands = re.findall(r"a=candidate:(\S+) 1 (udp|tcp) (\d+) (\S+) (\d+) typ host(.*)\r", answer)
    udp = [x for x in cands if x[1] == "udp"]
    tcp = [x for x in cands if x[1] == "tcp"]
    check(udp and int(udp[0][4]) == rtc, "UDP host candidate on rtc_port", cands)
    check(tcp and int(tcp[0][4]) == rtc and tcp[0][5].strip() == "tcptype passive",
          "TCP passive candidate on the same port number", cands)
    check(tcp and udp and int(tcp[0][2]) < int(udp[0][2]), "TCP candidate priority below UDP's", cands)
    ufrag = re.search(r"a=ice-ufrag:(\S+)", answer).group(1)
    pwd = re.search(r"a=ice-pwd:(\S+)", answer).group(1)
    user = ufrag + ":EsAw"  # the offer's ufrag

    # 2. a check over TCP, split over two writes, answered framed and authenticated
    t = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    tid = os.urandom(12)
    f = frame(binding_request(user, pwd, tid))
    t.sendall(f[:7])
    time.sleep(0.2)
    t.sendall(f[7:])
    resp = recv_frame(t)
    typ, rtid, mapped, mi_ok = parse_response(resp, pwd)
    check(typ == 0x0101 and rtid == tid, "framed Binding success over TCP", (hex(typ), rtid == tid))
    check(mi_ok, "response MESSAGE-INTEGRITY verifies with the answer's ice-pwd")
    check(mapped == t.getsockname(), "XOR-MAPPED-ADDRESS is the TCP connection's address",
          (mapped, t.getsockname()))
    # two checks in one write: two responses
    t1, t2 = os.urandom(12), os.urandom(12)
    t.sendall(frame(binding_request(user, pwd, t1)) + frame(binding_request(user, pwd, t2)))
    got = [parse_response(recv_frame(t), pwd)[1] for _ in range(2)]
    check(got == [t1, t2], "two frames in one segment: two responses in order")

    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.settimeout(5)
    u.sendto(binding_request(user, pwd, tid), ("127.0.0.1", rtc))
    data, src = u.recvfrom(2048)
    typ, rtid, mapped, _ = parse_response(data, pwd)
    check(typ == 0x0101 and rtid == tid and mapped == u.getsockname(), "the same check over UDP is answered over UDP",
          (hex(typ), mapped))

    # keeps the TCP connection in use alive (consent checks, RFC 7675) while the caps are tested
    def keepalive():
        t.sendall(frame(binding_request(user, pwd, os.urandom(12))))
        recv_frame(t)

    # 3. caps
    bad = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    bad.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    check(closed_within(bad, 2), "bad framing (an HTTP request) closes that connection")
    notstun = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    notstun.sendall(frame(b"\x16\xfe\xfd" + b"\0" * 40))  # a DTLS record before any check
    check(closed_within(notstun, 2), "DTLS before a valid check closes that connection")
    keepalive()

    wrong = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    wrong.sendall(frame(binding_request(user, "not-the-password-000000", os.urandom(12))))
    silent = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    t0 = time.time()
    # t, wrong, silent open: one more fills max_connections, the next is refused
    extra = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    over = socket.create_connection(("127.0.0.1", rtc), timeout=5)
    check(closed_within(over, 1), "a connection beyond ice_tcp.max_connections is closed at once")
    check(not closed_within(extra, 0.2), "the connections within the cap stay")
    keepalive()
    check(closed_within(wrong, CHECK_TIMEOUT_MS / 1000 + 2), "a check with the wrong password: closed at the check deadline")
    check(closed_within(silent, 1), "a silent connection: closed at the check deadline")
    waited = time.time() - t0
    check(CHECK_TIMEOUT_MS / 1000 - 0.2 <= waited <= CHECK_TIMEOUT_MS / 1000 + 2,
          "the check deadline is ice_tcp.check_timeout_ms", "%.2f s" % waited)
    closed_within(extra, 2)
    # the connection in use is still served
    keepalive()
    tid = os.urandom(12)
    t.sendall(frame(binding_request(user, pwd, tid)))
    check(parse_response(recv_frame(t), pwd)[1] == tid, "the connection in use survived every other connection's close")
    # idle: no byte for idle_timeout_seconds closes it
    t0 = time.time()
    check(closed_within(t, IDLE_S + 2), "a connection in use is closed after ice_tcp.idle_timeout_seconds without data")
    check(time.time() - t0 >= IDLE_S - 0.6, "not before", "%.2f s" % (time.time() - t0))

    # a peer that sends checks and never reads: the kernel buffers fill, then the
    # node's queue for it stops at ice_tcp.max_buffer_bytes and drops the rest
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(20)
    slow.connect(("127.0.0.1", rtc))
    req = frame(binding_request(user, pwd, os.urandom(12)))
    dropped0 = metrics(port).get("hudong_ice_tcp_dropped_total", 0)
    n = 0
    t0 = time.time()
    while time.time() - t0 < 15:
        slow.sendall(req * 2000)
        n += 2000
        if metrics(port).get("hudong_ice_tcp_dropped_total", 0) > dropped0:
            break
    m = metrics(port)
    check(m.get("hudong_ice_tcp_dropped_total", 0) > dropped0,
          "a peer that does not read: replies beyond ice_tcp.max_buffer_bytes are dropped",
          "%d checks sent" % n)
    check(m.get('hudong_packets_dropped_total{reason="send_error"}', 0) > 0, "and counted as send_error")
    print("  (%d checks sent unread before the first drop)" % n)
    slow.close()

    # 4. metrics
    m = metrics(port)
    def reason(r):
        return m.get('hudong_ice_tcp_closed_total{reason="%s"}' % r, -1)
    check(m.get("hudong_ice_tcp_accepted_total", 0) >= 7, "accepted counted", m.get("hudong_ice_tcp_accepted_total"))
    check(reason("bad_framing") == 1, "bad_framing counted", reason("bad_framing"))
    check(reason("not_stun") == 1, "not_stun counted", reason("not_stun"))
    check(reason("max_connections") == 1, "max_connections counted", reason("max_connections"))
    check(reason("check_timeout") == 3, "check_timeout counted (wrong password, silent, extra)", reason("check_timeout"))
    check(reason("idle") == 1, "idle counted", reason("idle"))
    check(wait_gauge(port), "no connection left open", metrics(port).get("hudong_ice_tcp_connections"))


if __name__ == "__main__":
    main()
