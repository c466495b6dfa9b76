"""What the Python integration tests share: checks that are counted and
listed at the end, free ports on 127.0.0.1, and base64url for tokens."""
import base64
import socket

FAILS = []
CHECKS = [0]


def check(cond, what, detail=""):
    """Prints 'ok - what' or 'FAIL - what: detail' and remembers failures."""
    CHECKS[0] += 1
    print(("ok   - " if cond else "FAIL - ") + what + ("" if cond or detail == "" else ": " + str(detail)[:1500]))
    if not cond:
        FAILS.append(what)
    return cond


def free_port(udp=False):
    """A port nothing listens on now (TCP by default, UDP with udp=True)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_media_port():
    """A port free for UDP and TCP: a node's media port is also its ICE-TCP
    listener, so a number free on UDP alone may still fail to start it."""
    for _ in range(50):
        p = free_port(udp=True)
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(socket.AF_INET, kind)
                try:
                    s.bind(("127.0.0.1", p))
                finally:
                    s.close()
            return p
        except OSError:
            continue
    raise RuntimeError("no port free for both UDP and TCP")


def b64u(b):
    """base64url without padding (RFC 7515 section 2), as tokens use it."""
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def http_json(port, method, path, token=None, body=None, timeout=10):
    """One HTTP request to 127.0.0.1:port: (status, parsed JSON or None, text).
    A dict body goes as JSON; a token as a Bearer header."""
    import http.client
    import json
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Authorization": "Bearer " + token} if token else {}
    c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body, headers=h)
    r = c.getresponse()
    text = r.read().decode(errors="replace")
    try:
        return r.status, json.loads(text), text
    except ValueError:
        return r.status, None, text


def cli_token(hudong, key, secret, *args):
    """A token from `hudong token --key K --secret S ARGS...` (its last word)."""
    import subprocess
    p = subprocess.run([hudong, "token", "--key", key, "--secret", secret] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    return p.stdout.decode().strip().split()[-1]


def webhook_sink(events):
    """An HTTP server on a free port that appends every JSON body POSTed to it
    to `events`. Returns (server, port); serve it with server.serve_forever."""
    import http.server
    import json

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            try:
                events.append(json.loads(self.rfile.read(n)))
            except ValueError:
                pass
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    return srv, srv.server_address[1]


def jwt_hs256(secret, claims):
    """A token (RFC 7519, HS256) for `claims`, signed with the app's secret."""
    import hashlib
    import hmac
    import json
    head = b64u(b'{"alg":"HS256","typ":"JWT"}')
    body = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64u(hmac.new(secret.encode(), (head + "." + body).encode(), hashlib.sha256).digest())
    return head + "." + body + "." + sig
