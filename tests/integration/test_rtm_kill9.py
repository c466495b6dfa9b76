#!/usr/bin/python3
"""Group commit of stored publishes (docs/rtm.md "Storage") on a real
`hudong serve --dev`: a writer sends 150 stored publishes in one TCP write
(they arrive in one or a few loop turns and share transactions), a reader
is subscribed; the node is killed with SIGKILL the moment the writer has all
its oks. After a restart on the same database, every publish that got an ok
and every message the reader received is in the history with its cseq.
Three rounds. Also checks that the oks arrive at all without any other
traffic (the node's end-of-turn hook commits and answers them).

usage: test_rtm_kill9.py /path/to/hudong
"""
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from hdtest import check, free_port, verdict  # noqa: E402
import test_rtm  # noqa: E402  (start, mint, rt, login)

N = 150  # under the rate limit's burst (200, login included)


def frame(o):
    p = json.dumps(o, separators=(",", ":")).encode()
    assert len(p) < 126
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(p)]) + mask + bytes(b ^ mask[i & 3] for i, b in enumerate(p))


def drain(ws, seconds):
    """Channel messages still readable from ws (the node may be gone)."""
    got = []
    ws.sock.settimeout(seconds)
    try:
        while True:
            r = ws.recv()
            if r[0] != "text":
                break
            m = json.loads(r[1])
            if m.get("type") == "msg":
                got.append((m["cseq"], m["data"]))
    except (OSError, EOFError, ValueError):
        pass
    return got


def history(port, ch):
    b = test_rtm.login(port, "auditor")
    out, after = {}, 0
    for _ in range(20):
        m = test_rtm.rt(b, {"type": "hist", "id": "h%d" % after, "ch": ch, "after": after, "limit": 100}, "ok")
        if not m:
            break
        for x in m["msgs"]:
            out[x["cseq"]] = x["data"]
        if m["msgs"]:
            b.send_text(json.dumps({"type": "ack", "s": m["s"]}))
        if not m.get("more"):
            break
        after = m["next"]
    b.close()
    return out


def main():
    hudong = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
    test_rtm.HUDONG = hudong
    tmp = tempfile.mkdtemp(prefix="hudong-rtm-k9-")
    db = os.path.join(tmp, "rtm.db")
    port = free_port()
    try:
        for rnd in range(3):
            ch = "k9r%d" % rnd
            p = test_rtm.start(port, db)
            reader = test_rtm.login(port, "reader")
            test_rtm.rt(reader, {"type": "sub", "id": "s", "ch": ch}, "ok")
            w = test_rtm.login(port, "writer")
            burst = b"".join(frame({"type": "pub", "id": "w%d" % i, "ch": ch, "data": "r%d m%d" % (rnd, i),
                                    "store": True}) for i in range(N))
            w.sock.sendall(burst)
            oks, t0 = {}, time.time()
            w.sock.settimeout(10)
            while len(oks) < N and time.time() - t0 < 10:
                try:
                    r = w.recv()
                except (OSError, EOFError):  # a timeout: the oks did not come
                    break
                if r[0] != "text":
                    break
                m = json.loads(r[1])
                if m.get("type") == "ok" and m.get("id", "").startswith("w"):
                    oks[m["id"]] = m["cseq"]
                elif m.get("type") == "error":
                    break
                if m.get("s", 0) % 64 == 0 and "s" in m:
                    w.send_text(json.dumps({"type": "ack", "s": m["s"]}))
            p.send_signal(signal.SIGKILL)  # right after the last ok: no shutdown, no checkpoint
            p.wait()
            check(len(oks) == N, "round %d: %d stored publishes sent in one write all get ok" % (rnd, N), len(oks))
            delivered = drain(reader, 0.5)
            w.close()
            reader.close()
            p = test_rtm.start(port, db)
            try:
                hist = history(port, ch)
            finally:
                test_rtm.stop(p)
            lost = [i for i, c in oks.items() if hist.get(c) != "r%d m%s" % (rnd, i[1:])]
            check(not lost, "round %d: every publish that got ok is in the history after SIGKILL (%d)" %
                  (rnd, len(oks)), lost[:10])
            dlost = [c for c, d in delivered if hist.get(c) != d]
            check(not dlost, "round %d: every delivered stored message is in the history (%d delivered)" %
                  (rnd, len(delivered)), dlost[:10])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict()


if __name__ == "__main__":
    sys.exit(main())
