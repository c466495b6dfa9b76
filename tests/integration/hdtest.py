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


def verdict():
    """The end of a test script: prints the failed checks or PASS, returns the exit code."""
    if FAILS:
        print("FAILED: %s" % FAILS)
        return 1
    print("PASS")
    return 0


def _ephemeral_range():
    """The kernel's ephemeral port range: bind(0) and every outgoing
    connection on this machine take their port from it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def _free_now(port):
    """True if nothing holds port on 127.0.0.1 for TCP or UDP."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        finally:
            s.close()
    return True


def free_port(udp=False, span=0):
    """A port free for TCP and UDP on 127.0.0.1, with the next span ports free
    too (media worker i listens on rtc_port + i). Picked at random outside the
    kernel's ephemeral range: a number the kernel handed out and we released
    can be handed to another process's bind(0) or outgoing connection before
    the server binds it (CI failed on exactly that three times); numbers
    outside the range are only taken by explicit binds like ours. udp is
    kept for callers; both protocols are always checked."""
    import random
    lo, hi = _ephemeral_range()
    ranges = [(r0, r1 - span) for r0, r1 in ((10000, lo - 1), (hi + 1, 65535)) if r1 - span > r0]
    if not ranges:
        ranges = [(1024, 65535 - span)]
    for _ in range(500):
        r0, r1 = random.choice(ranges)
        p = random.randint(r0, r1)
        if all(_free_now(q) for q in range(p, p + span + 1)):
            return p
    raise RuntimeError("no free port outside the ephemeral range %d-%d" % (lo, hi))


def free_media_port(workers=4):
    """A media port (rtc_port) for a node with up to workers media workers:
    each listens on rtc_port + i for UDP and ICE-TCP."""
    return free_port(span=workers - 1)


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
