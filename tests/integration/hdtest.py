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


def b64u(b):
    """base64url without padding (RFC 7515 section 2), as tokens use it."""
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
