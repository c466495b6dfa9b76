#!/usr/bin/python3
"""Integration test of TLS on the node's listen port (issue 12 item 14), with a
certificate made by `openssl req` for this run, on free 127.0.0.1 ports:

 1. `hudong serve --tls-cert --tls-key`: curl -k https://.../healthz; curl
    with the certificate as CA (name check on 127.0.0.1 and localhost); TLS 1.1
    refused; the negotiated protocol is TLS 1.2+ with an AEAD suite; plain HTTP
    on the port gets a 400 that says to use https://.
 2. WSS from a stdlib client: join a room on /rtc over wss://.
 3. the SDK's WebSocket client (io/ws_client.c via ws_client_probe) over wss://:
    trusted by --ca, refused without it ("certificate not trusted"), accepted
    with --insecure; and still over ws:// against a plain node.
 4. `hudong serve --dev --tls` without files: a generated self-signed
    certificate (curl -k works, the log names its fingerprint); --tls without
    --dev and without files is a usage error.

usage: test_tls.py /path/to/hudong /path/to/ws_client_probe
"""
import hashlib
import hmac
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WS  # noqa: E402
from hdtest import FAILS, b64u, check, free_port  # noqa: E402


def mint(identity, room):
    now = int(time.time())
    claims = {"iss": "devkey", "sub": identity, "iat": now, "exp": now + 600,
              "grants": {"room": room, "roomJoin": True}}
    head = b64u(b'{"alg":"HS256","typ":"JWT"}') + "." + b64u(json.dumps(claims, separators=(",", ":")).encode())
    return head + "." + b64u(hmac.new(b"devsecret", head.encode(), hashlib.sha256).digest())


def curl(*args):
    r = subprocess.run(["curl", "-s", "-S", "--max-time", "5"] + list(args), capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


class Node:
    def __init__(self, hudong, *extra):
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.port, rtc = free_port(), free_port()
        self.proc = subprocess.Popen([hudong, "serve", "--dev", "--listen", "127.0.0.1:%d" % self.port, "--rtc-port",
                                      str(rtc), "--rtm-db", ":memory:", "--media-workers", "1"] + list(extra),
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if "serving" in open(self.log.name).read() or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        time.sleep(0.2)

    def text(self):
        return open(self.log.name).read()

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = -9
        log = self.text()
        os.unlink(self.log.name)
        check(rc == 0, "node exits 0", (rc, log[-1500:]))
        check("AddressSanitizer" not in log and "runtime error" not in log, "no sanitizer report", log[-2000:])


def wss(port, path, ctx):
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return WS(port, path, sock=ctx.wrap_socket(raw, server_hostname="127.0.0.1"))


def main():
    hudong, probe = sys.argv[1], sys.argv[2]
    d = tempfile.mkdtemp()
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True)
    check(r.returncode == 0, "openssl req made a certificate", r.stderr[-300:])

    print("# 1. HTTPS")
    n = Node(hudong, "--tls-cert", cert, "--tls-key", key)
    try:
        check("serving https://127.0.0.1:%d" % n.port in n.text(), "startup line says https://", n.text()[-500:])
        rc, out, err = curl("-k", "https://127.0.0.1:%d/healthz" % n.port)
        check(rc == 0 and out == "ok\n", "curl -k https://.../healthz", (rc, out, err))
        rc, out, err = curl("--cacert", cert, "https://localhost:%d/healthz" % n.port)
        check(rc == 0 and out == "ok\n", "curl --cacert (verified, name localhost)", (rc, out, err))
        rc, out, err = curl("https://127.0.0.1:%d/healthz" % n.port)
        check(rc != 0, "curl without the CA refuses the self-made certificate", (rc, out))
        rc, out, err = curl("-k", "--tlsv1.1", "--tls-max", "1.1", "https://127.0.0.1:%d/healthz" % n.port)
        check(rc != 0, "TLS 1.1 refused", (rc, out))
        ctx = ssl.create_default_context(cafile=cert)
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", n.port), timeout=5),
                             server_hostname="127.0.0.1") as t:
            v, c = t.version(), t.cipher()[0]
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            page = b""
            while True:
                b = t.recv(65536)
                if not b:
                    break
                page += b
        check(v in ("TLSv1.2", "TLSv1.3") and ("GCM" in c or "CHACHA20" in c), "TLS 1.2+ with an AEAD suite",
              (v, c))
        check(page.startswith(b"HTTP/1.1 200") and b"<html" in page, "the web app over HTTPS", page[:100])
        rc, out, err = curl("http://127.0.0.1:%d/healthz" % n.port)
        check("use https://127.0.0.1:%d/" % n.port in out, "plain HTTP on the TLS port: told to use https", out)

        print("# 2. WSS (stdlib client)")
        ws = wss(n.port, "/rtc", ctx)
        ws.send_text(json.dumps({"type": "join", "id": "j", "token": mint("py", "tlsroom")}))
        m = ws.recv()
        check(m[0] == "text" and json.loads(m[1]).get("type") == "joined", "join over wss://", m)
        ws.close()

        print("# 3. SDK WebSocket client over wss://")
        join = json.dumps({"type": "join", "id": "j", "token": mint("sdk", "tlsroom")})
        url = "wss://127.0.0.1:%d/rtc" % n.port
        r = subprocess.run([probe, url, join, "--ca", cert], capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client wss:// with --ca: joined", r.stdout)
        r = subprocess.run([probe, "wss://localhost:%d/rtc" % n.port, join, "--ca", cert], capture_output=True,
                           text=True, timeout=20)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client wss://localhost (name checked)",
              r.stdout)
        env = dict(os.environ)
        env.pop("HUDONG_TLS_INSECURE", None)
        env.pop("HUDONG_TLS_CA_FILE", None)
        r = subprocess.run([probe, url, join], capture_output=True, text=True, timeout=20, env=env)
        check(r.returncode == 1 and "closed: 1006" in r.stdout and "certificate not trusted" in r.stdout,
              "ws_client without the CA: refused, and says why", r.stdout)
        r = subprocess.run([probe, url, join, "--insecure"], capture_output=True, text=True, timeout=20, env=env)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client --insecure (development)", r.stdout)
        env["HUDONG_TLS_CA_FILE"] = cert
        r = subprocess.run([probe, url, join], capture_output=True, text=True, timeout=20, env=env)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client with HUDONG_TLS_CA_FILE", r.stdout)
        r = subprocess.run([probe, "ws://127.0.0.1:%d/rtc" % n.port, join], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 1 and "closed: 1006" in r.stdout, "ws:// to the TLS port fails cleanly", r.stdout)
    finally:
        n.stop()

    plain = Node(hudong)
    try:
        join = json.dumps({"type": "join", "id": "j", "token": mint("plain", "r")})
        r = subprocess.run([probe, "ws://127.0.0.1:%d/rtc" % plain.port, join], capture_output=True, text=True,
                           timeout=20)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client over ws:// (plain node)", r.stdout)
    finally:
        plain.stop()

    print("# 4. --dev --tls: generated self-signed certificate")
    n = Node(hudong, "--tls")
    try:
        m = re.search(r"self-signed certificate \(development only\), SHA-256 ([0-9A-F:]{95})", n.text())
        check(m is not None, "log names the generated certificate's fingerprint", n.text()[-600:])
        rc, out, err = curl("-k", "https://127.0.0.1:%d/healthz" % n.port)
        check(rc == 0 and out == "ok\n", "curl -k https://.../healthz", (rc, out, err))
        pem = ssl.get_server_certificate(("127.0.0.1", n.port))
        fp = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
        check(m and fp == m.group(1).replace(":", ""), "served certificate matches the logged fingerprint")
        r = subprocess.run([probe, "wss://127.0.0.1:%d/rtc" % n.port,
                            json.dumps({"type": "join", "id": "j", "token": mint("dev", "r")}), "--insecure"],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and '"type":"joined"' in r.stdout, "ws_client --insecure to the dev node", r.stdout)
    finally:
        n.stop()
    r = subprocess.run([hudong, "serve", "--tls", "--listen", "127.0.0.1:%d" % free_port()], capture_output=True,
                       text=True, timeout=20)
    check(r.returncode == 2 and "--tls needs --tls-cert FILE --tls-key FILE" in r.stderr,
          "--tls without --dev and without files: usage error", (r.returncode, r.stderr))
    # a refused start exits at once: what it had set up is the OS's to reclaim,
    # so a sanitizer build is not asked for leaks here
    r = subprocess.run([hudong, "serve", "--dev", "--tls-cert", cert, "--tls-key", cert, "--listen",
                        "127.0.0.1:%d" % free_port(), "--rtc-port", "0", "--rtm-db", ":memory:"],
                       capture_output=True, text=True, timeout=20,
                       env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0"))
    check(r.returncode == 1 and "cannot use the TLS certificate" in r.stderr, "a key file that is no key: exit 1",
          (r.returncode, r.stderr[-300:]))
    print("FAILED: %d" % len(FAILS) if FAILS else "all ok")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
