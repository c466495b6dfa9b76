"""A minimal blocking RFC 6455 WebSocket client on the Python standard library
only: the opening handshake (§4.1, Sec-WebSocket-Accept checked), masked
client frames (§5.3), fragmentation (§5.4), control frames (§5.5) and close
codes (§7.4). Shared by the integration tests (test_rooms.py; test_ws.py
carries the same class).

Sending is serialised by a lock so that one thread may read (and answer pings)
while another sends."""
import base64
import hashlib
import json
import os
import select
import socket
import struct
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Rejected(Exception):
    def __init__(self, status, headers, body):
        super().__init__("HTTP %d" % status)
        self.status, self.headers, self.body = status, headers, body


class WS:
    """A blocking RFC 6455 client. recv() returns ("text", str),
    ("binary", bytes), ("close", code, reason) or ("eof",)."""

    def __init__(self, port, path, headers=None, timeout=10.0, sock=None):
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
              "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n" % (path, port, key)
        for k, v in (headers or {}).items():
            req += "%s: %s\r\n" % (k, v)
        self.sock.sendall((req + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError("closed during handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            body = self.buf
            n = int(hdrs.get("content-length", "0"))
            while len(body) < n:
                d = self.sock.recv(4096)
                if not d:
                    break
                body += d
            self.sock.close()
            raise Rejected(status, hdrs, body.decode(errors="replace"))
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        if hdrs.get("sec-websocket-accept") != want:
            raise ConnectionError("bad Sec-WebSocket-Accept")
        self.pings = 0
        self.send_lock = threading.Lock()

    def send_frame(self, opcode, payload, fin=True):
        mask = os.urandom(4)
        n = len(payload)
        hdr = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload)) if n < 4096 else \
            (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
        with self.send_lock:
            self.sock.sendall(hdr + mask + masked)

    def send_text(self, s):
        self.send_frame(1, s.encode() if isinstance(s, str) else s)

    def send_close(self, code=1000, reason=b""):
        self.send_frame(8, struct.pack("!H", code) + reason)

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(max(65536, n - len(self.buf)))
            if not d:
                raise EOFError()
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self):
        b0, b1 = self._read(2)
        if b1 & 0x80:
            raise ConnectionError("server frame is masked")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._read(n)

    def recv(self, answer_pings=True):
        parts, op0 = [], None
        try:
            while True:
                fin, op, data = self.recv_frame()
                if op == 9:
                    self.pings += 1
                    if answer_pings:
                        self.send_frame(10, data)
                    continue
                if op == 10:
                    continue
                if op == 8:
                    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else 1005
                    try:
                        self.send_close(code if code != 1005 else 1000)
                    except OSError:
                        pass
                    return ("close", code, data[2:].decode(errors="replace"))
                if op != 0:
                    op0 = op
                parts.append(data)
                if fin:
                    msg = b"".join(parts)
                    return ("text", msg.decode()) if op0 == 1 else ("binary", msg)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return ("eof",)

    def pump(self, seconds):
        """Reads for `seconds`, answering pings; returns the first other frame
        as ("frame", opcode, payload), or None. Waits with select() between frames only, so that a
        frame is never cut by a socket timeout."""
        end = time.time() + seconds
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            if not self.buf:
                rd, _, _ = select.select([self.sock], [], [], left)
                if not rd:
                    return None
            fin, op, data = self.recv_frame()
            if op == 9:
                self.pings += 1
                self.send_frame(10, data)
                continue
            if op == 10:
                continue
            return ("frame", op, data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def recv_until(ws, pred, timeout):
    """Reads text messages as JSON until pred(message) holds or `timeout`
    seconds pass; returns (that message or None, every message seen). Waits
    with select() between messages, so a message is never cut by a timeout."""
    end = time.time() + timeout
    seen = []
    while True:
        left = end - time.time()
        if left <= 0:
            break
        if not ws.buf:
            rd, _, _ = select.select([ws.sock], [], [], left)
            if not rd:
                break
        r = ws.recv()
        if r[0] == "text":
            m = json.loads(r[1])
            seen.append(m)
            if pred(m):
                return m, seen
        elif r[0] in ("close", "eof"):
            break
    return None, seen


class RtmClient:
    """An RTM session over /rtm (docs/rtm.md) for tests: logs in with token,
    acks every delivery with an "s", and matches answers to requests by id.
    req_timeout (s): how long req() waits for its answer (None: for ever)."""

    def __init__(self, port, token, ch, req_timeout=None):
        self.ws = WS(port, "/rtm")
        self.ch = ch
        self.req_timeout = req_timeout
        self.n = 0
        self.ws.send_text(json.dumps({"type": "login", "id": "l", "token": token}))
        w = self.next()
        assert w["type"] == "welcome", w

    def next(self):
        while True:
            r = self.ws.recv()
            if r[0] != "text":
                raise ConnectionError(str(r))
            m = json.loads(r[1])
            if "s" in m:
                self.ws.send_text(json.dumps({"type": "ack", "s": m["s"]}))
            return m

    def req(self, **kw):
        """Sends kw as a request; its answer, or None after req_timeout."""
        self.n += 1
        kw["id"] = "r%d" % self.n
        self.ws.send_text(json.dumps(kw))
        end = None if self.req_timeout is None else time.time() + self.req_timeout
        while end is None or time.time() < end:
            m = self.next()
            if m.get("id") == kw["id"]:
                return m
        return None

    def pub(self, op):
        return self.req(type="pub", ch=self.ch, data=json.dumps(op))

    def wait_msg(self):
        while True:
            m = self.next()
            if m["type"] == "msg":
                return m
