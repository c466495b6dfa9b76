#!/usr/bin/python3
"""Interop e2e: GStreamer webrtcbin publishes VP8 + Opus to `hudong serve` with
WHIP, a second webrtcbin plays it back with WHEP and decodes it.

Pass: the viewer decodes >= 100 VP8 frames and some Opus audio within 15 s of
connecting; both sessions end with DELETE, /metrics then shows 0 sessions, and
the server exits 0 on SIGTERM.

`test_gstreamer.py --publish BASE_URL ROOM` only publishes (to a server someone
else runs) until SIGTERM, then DELETEs its session: gst_chromium.test.mjs uses
it to play a GStreamer stream in Chromium.

Run with Debian's /usr/bin/python3 (python3-gi + GStreamer 1.22). HUDONG_BIN
points at the binary (default: build/hudong under the repo root). A global
watchdog kills the test after 55 s so it can never hang a CI run.
"""
import ctypes
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from hdtest import free_media_port, free_port  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HUDONG_BIN = os.environ.get("HUDONG_BIN") or os.path.join(ROOT, "build", "hudong")
ROOM = "gst-e2e"
WATCHDOG_S = 55.0
PUBLISH_MAX_S = 120.0  # --publish mode: stop by itself after this long
DECODE_WINDOW_S = 15.0
MIN_VIDEO_FRAMES = 100
PUB_GAUGE = 'hudong_sessions{kind="publish"}'
PLAY_GAUGE = 'hudong_sessions{kind="play"}'

T0 = time.monotonic()
_diag = {}  # name -> text, printed on failure (SDPs)
_server = {"proc": None, "log": None}


def log(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


def server_log():
    path = _server["log"]
    if not path:
        return ""
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError as e:
        return f"(cannot read server log: {e})"


def dump_diagnostics():
    base = _server.get("base")
    if base and _server["proc"] and _server["proc"].poll() is None:
        try:
            body = http("GET", base + "/metrics", timeout=2)[2]
            _diag["server /metrics"] = "\n".join(l for l in body.splitlines() if l and not l.startswith("#"))
        except Exception as e:  # noqa: BLE001
            _diag["server /metrics"] = f"(unavailable: {e})"
    for name, text in _diag.items():
        print(f"----- {name} -----\n{text}", flush=True)
    tail = server_log()
    lines = tail.splitlines()
    if len(lines) > 400:
        lines = ["... (%d earlier lines cut)" % (len(lines) - 400)] + lines[-400:]
    print("----- server log -----\n" + "\n".join(lines), flush=True)


def kill_server():
    p = _server["proc"]
    if p and p.poll() is None:
        p.kill()
        try:
            p.wait(2)
        except subprocess.TimeoutExpired:
            pass


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def watchdog():
    print(f"WATCHDOG: test still running after {WATCHDOG_S:.0f} s, aborting", flush=True)
    dump_diagnostics()
    kill_server()
    os._exit(2)


# ---------------------------------------------------------------- server + HTTP

def http(method, url, body=None, headers=None, timeout=5.0):
    """Returns (status, headers, body_text); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode("utf-8", "replace")


def start_server():
    """Starts `hudong serve --dev` on free ports. A free UDP port can still be
    taken on TCP (ICE-TCP listens on the same number, and another process's
    outgoing connection may hold it), so a start refused with "already in use"
    is tried again on new ports."""
    for attempt in range(4):
        http_port = free_port()
        rtc_port = free_media_port()
        fd, path = tempfile.mkstemp(prefix="hudong-gst-", suffix=".log")
        _server["log"] = path
        env = dict(os.environ)
        env.setdefault("HUDONG_LOG", "debug")
        args = [HUDONG_BIN, "serve", "--dev", "--listen", f"127.0.0.1:{http_port}", "--rtc-port", str(rtc_port)]
        log("starting " + " ".join(args))
        proc = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, env=env)
        os.close(fd)
        _server["proc"] = proc
        base = f"http://127.0.0.1:{http_port}"
        _server["base"] = base
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                with open(path, errors="replace") as f:
                    taken = "already in use" in f.read()
                if taken and attempt < 3:
                    log("a port was taken; trying other ports")
                    break
                fail(f"hudong serve exited early with {proc.returncode}")
            try:
                if http("GET", base + "/healthz", timeout=1)[0] == 200:
                    return base
            except OSError:
                pass
            time.sleep(0.1)
        else:
            fail("hudong serve did not answer /healthz within 10 s")


def dev_token(base, identity):
    st, _, body = http("GET", f"{base}/api/dev-token?room={ROOM}&identity={identity}")
    if st != 200:
        fail(f"dev-token: HTTP {st}: {body}")
    m = re.search(r'"token"\s*:\s*"([^"]+)"', body)
    if not m:
        fail(f"dev-token: no token in {body!r}")
    return m.group(1)


def metrics(base):
    st, _, body = http("GET", base + "/metrics")
    if st != 200:
        fail(f"/metrics: HTTP {st}")
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


# ---------------------------------------------------------------- GLib helpers

loop = GLib.MainLoop()
bus_errors = []


def run_until(pred, timeout_s, what):
    """Runs the main loop until pred() is true; fails after timeout_s or on a bus error."""
    deadline = time.monotonic() + timeout_s
    result = {"ok": False}

    def poll():
        if bus_errors:
            loop.quit()
            return False
        if pred():
            result["ok"] = True
            loop.quit()
            return False
        if time.monotonic() >= deadline:
            loop.quit()
            return False
        return True

    GLib.timeout_add(20, poll)
    loop.run()
    if bus_errors:
        fail(f"pipeline error while waiting for {what}: {bus_errors[0]}")
    if not result["ok"]:
        fail(f"timed out after {timeout_s:.0f} s waiting for {what}")


def on_bus_message(bus, msg, name):
    t = msg.type
    if t == Gst.MessageType.ERROR:
        err, dbg = msg.parse_error()
        bus_errors.append(f"{name}: {err.message} ({dbg})")
        loop.quit()
    elif t == Gst.MessageType.WARNING:
        err, dbg = msg.parse_warning()
        log(f"{name} warning: {err.message} ({dbg})")
    return True


def make_pipeline(name, desc):
    pipe = Gst.parse_launch(desc)
    if not isinstance(pipe, Gst.Pipeline):  # a lone element comes back bare
        elem, pipe = pipe, Gst.Pipeline.new(name)
        pipe.add(elem)
    pipe.set_name(name)
    bus = pipe.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_bus_message, name)
    return pipe


_libnice = _libgobject = None


def gobject_ptr(obj):
    """The GObject* behind a PyGObject wrapper (PyObject_HEAD, then the pointer),
    cross-checked against the address that repr() prints."""
    ptr = ctypes.c_void_p.from_address(id(obj) + object.__basicsize__).value
    m = re.search(r" at 0x([0-9a-f]+)\)>$", repr(obj))
    if not ptr or not m or int(m.group(1), 16) != ptr:
        fail(f"cannot find the GObject pointer of {obj!r}")
    return ptr


def restrict_ice_to_loopback(webrtc):
    """Makes webrtcbin's libnice agent gather only a UDP host candidate on
    127.0.0.1 and never send UPnP-IGD discovery (multicast M-SEARCH).

    By default libnice skips loopback when another interface exists and pins
    each socket to its interface (IP_UNICAST_IF), so checks to the server's
    127.0.0.1 candidate never arrive; it would also probe the LAN for UPnP.
    nice_agent_add_local_address() has no binding in the installed typelibs
    (no gir1.2-nice), so it is called through ctypes on the agent pointer."""
    global _libnice, _libgobject
    if _libnice is None:
        go = ctypes.CDLL("libgobject-2.0.so.0")
        go.g_object_ref.argtypes = [ctypes.c_void_p]
        go.g_object_ref.restype = ctypes.c_void_p
        _libgobject = go
        lib = ctypes.CDLL("libnice.so.10")
        lib.nice_address_new.restype = ctypes.c_void_p
        lib.nice_address_set_from_string.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nice_address_free.argtypes = [ctypes.c_void_p]
        lib.nice_agent_add_local_address.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        _libnice = lib
    ice = webrtc.get_property("ice-agent")
    # GStreamer 1.22's webrtcbin keeps its ICE object with a floating ref, which
    # PyGObject sinks and then drops with the wrapper, destroying webrtcbin's
    # ICE agent. Give webrtcbin its reference back.
    if ice.__grefcount__ == 1:
        _libgobject.g_object_ref(gobject_ptr(ice))
    ice.set_property("ice-tcp", False)
    agent = ice.get_property("agent")
    agent.set_property("upnp", False)
    ptr = gobject_ptr(agent)
    addr = _libnice.nice_address_new()
    try:
        if not _libnice.nice_address_set_from_string(addr, b"127.0.0.1"):
            fail("nice_address_set_from_string(127.0.0.1) failed")
        if not _libnice.nice_agent_add_local_address(ptr, addr):
            fail("nice_agent_add_local_address(127.0.0.1) failed")
    finally:
        _libnice.nice_address_free(addr)


class Peer:
    """One webrtcbin negotiating with the server over WHIP or WHEP (non-trickle)."""

    def __init__(self, name, pipe, webrtc):
        self.name = name
        self.pipe = pipe
        self.webrtc = webrtc
        self.offer = None
        self.answer = None
        self.location = None
        self.token = None
        self.state = GstWebRTC.WebRTCPeerConnectionState.NEW
        restrict_ice_to_loopback(webrtc)
        self.ice_state = None
        webrtc.connect("notify::connection-state", self._on_conn)
        webrtc.connect("notify::ice-connection-state", self._on_ice)

    def _on_conn(self, obj, _pspec):
        self.state = obj.get_property("connection-state")
        log(f"{self.name}: connection-state {self.state.value_nick}")

    def _on_ice(self, obj, _pspec):
        self.ice_state = obj.get_property("ice-connection-state")
        log(f"{self.name}: ice-connection-state {self.ice_state.value_nick}")

    def create_offer(self):
        done = {}
        self.webrtc.emit("create-offer", None, Gst.Promise.new_with_change_func(lambda p: done.setdefault("p", p)))
        run_until(lambda: "p" in done, 5, f"{self.name} create-offer")
        reply = done["p"].get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            fail(f"{self.name}: create-offer gave no offer ({reply.to_string() if reply else 'no reply'})")
        self.webrtc.emit("set-local-description", offer, None)
        run_until(lambda: self.webrtc.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE,
                  10, f"{self.name} ICE gathering complete")
        self.offer = self.webrtc.get_property("local-description").sdp.as_text()
        _diag[f"{self.name} SDP offer"] = self.offer

    def negotiate(self, base, endpoint):
        self.token = dev_token(base, self.name)
        self.create_offer()
        url = f"{base}/{endpoint}/{ROOM}"
        log(f"{self.name}: POST {url} ({len(self.offer)} bytes of SDP)")
        st, hdrs, body = http("POST", url, self.offer.encode(),
                              {"Content-Type": "application/sdp", "Authorization": f"Bearer {self.token}"})
        if st != 201:
            fail(f"{self.name}: POST /{endpoint}/{ROOM} -> HTTP {st}: {body.strip()}")
        self.answer = body
        _diag[f"{self.name} SDP answer"] = body
        loc = hdrs.get("Location")
        if not loc:
            fail(f"{self.name}: 201 without Location")
        self.location = urllib.parse.urljoin(url, loc)
        res, sdp = GstSdp.SDPMessage.new_from_text(body)
        if res != GstSdp.SDPResult.OK:
            fail(f"{self.name}: cannot parse the SDP answer ({res})")
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        done = {}
        self.webrtc.emit("set-remote-description", answer,
                         Gst.Promise.new_with_change_func(lambda p: done.setdefault("p", p)))
        run_until(lambda: "p" in done, 5, f"{self.name} set-remote-description")
        reply = done["p"].get_reply()
        if reply is not None and reply.has_field("error"):
            fail(f"{self.name}: set-remote-description failed: {reply.get_value('error')}")

    def wait_connected(self, timeout_s):
        run_until(lambda: self.state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED
                  or self.state == GstWebRTC.WebRTCPeerConnectionState.FAILED, timeout_s,
                  f"{self.name} connection-state connected")
        if self.state != GstWebRTC.WebRTCPeerConnectionState.CONNECTED:
            fail(f"{self.name}: connection-state {self.state.value_nick}")

    def delete(self):
        st, _, body = http("DELETE", self.location, None, {"Authorization": f"Bearer {self.token}"})
        log(f"{self.name}: DELETE {self.location} -> {st}")
        if st not in (200, 204):
            fail(f"{self.name}: DELETE -> HTTP {st}: {body.strip()}")


# ---------------------------------------------------------------- the peers

def make_publisher():
    pipe = make_pipeline("publisher", (
        "webrtcbin name=webrtc bundle-policy=max-bundle "
        "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 "
        "! videoconvert ! queue ! vp8enc deadline=1 target-bitrate=500000 keyframe-max-dist=60 "
        "! rtpvp8pay pt=96 picture-id-mode=15-bit "
        "! application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96 ! webrtc. "
        "audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! queue "
        "! opusenc ! rtpopuspay pt=111 "
        "! application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111 ! webrtc. "))
    webrtc = pipe.get_by_name("webrtc")
    peer = Peer("publisher", pipe, webrtc)
    pipe.set_state(Gst.State.PLAYING)
    # The request pads made sendrecv transceivers; a WHIP client only sends.
    i = 0
    while True:
        tr = webrtc.emit("get-transceiver", i)
        if tr is None:
            break
        tr.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        i += 1
    if i != 2:
        fail(f"publisher: expected 2 transceivers, got {i}")
    return peer


class Counter:
    def __init__(self):
        self.n = 0

    def probe(self, _pad, info):
        self.n += 1
        return Gst.PadProbeReturn.OK


def make_viewer():
    pipe = make_pipeline("viewer", "webrtcbin name=webrtc bundle-policy=max-bundle")
    webrtc = pipe.get_by_name("webrtc")
    peer = Peer("viewer", pipe, webrtc)
    peer.video = Counter()
    peer.audio = Counter()
    peer.pads = []
    recv = GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY
    vcaps = Gst.Caps.from_string("application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96")
    acaps = Gst.Caps.from_string(
        "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111,encoding-params=(string)2")
    if webrtc.emit("add-transceiver", recv, vcaps) is None or webrtc.emit("add-transceiver", recv, acaps) is None:
        fail("viewer: add-transceiver failed")

    def on_pad_added(_w, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        s = caps.get_structure(0)
        media = s.get_string("media")
        enc = (s.get_string("encoding-name") or "").upper()
        log(f"viewer: pad-added {pad.get_name()} media={media} encoding-name={enc}")
        peer.pads.append(f"{media}/{enc}")
        if media == "video":
            chain, counter = "rtpvp8depay ! vp8dec name=dec ! fakesink sync=false async=false", peer.video
        elif media == "audio":
            chain, counter = "rtpopusdepay ! opusdec name=dec ! fakesink sync=false async=false", peer.audio
        else:
            return
        bin_ = Gst.parse_bin_from_description("queue ! " + chain, True)
        pipe.add(bin_)
        bin_.get_by_name("dec").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, counter.probe)
        bin_.sync_state_with_parent()
        if pad.link(bin_.get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            bus_errors.append(f"viewer: cannot link {pad.get_name()} ({caps.to_string()})")

    webrtc.connect("pad-added", on_pad_added)
    pipe.set_state(Gst.State.PLAYING)
    return peer


# ---------------------------------------------------------------- the test

def main():
    Gst.init(None)
    missing = [e for e in ("webrtcbin", "vp8enc", "vp8dec", "opusenc", "opusdec", "rtpvp8pay", "rtpopuspay",
                           "nicesrc", "videotestsrc", "audiotestsrc") if Gst.ElementFactory.find(e) is None]
    if missing:
        fail("GStreamer elements missing: " + ", ".join(missing))
    if not os.access(HUDONG_BIN, os.X_OK):
        fail(f"no hudong binary at {HUDONG_BIN} (set HUDONG_BIN)")
    base = start_server()
    pub = viewer = None
    try:
        pub = make_publisher()
        pub.negotiate(base, "whip")
        pub.wait_connected(10)
        log("publisher connected")

        viewer = make_viewer()
        viewer.negotiate(base, "whep")
        viewer.wait_connected(10)
        t_conn = time.monotonic()
        log("viewer connected")
        run_until(lambda: viewer.video.n >= MIN_VIDEO_FRAMES and viewer.audio.n > 0, DECODE_WINDOW_S,
                  f">= {MIN_VIDEO_FRAMES} decoded video frames and audio "
                  f"(so far: video {viewer.video.n}, audio {viewer.audio.n}, pads {viewer.pads})")
        took = time.monotonic() - t_conn
        log(f"viewer decoded {viewer.video.n} video frames and {viewer.audio.n} audio buffers "
            f"{took:.2f} s after connecting")

        m = metrics(base)
        sess = (m.get(PUB_GAUGE), m.get(PLAY_GAUGE))
        if sess != (1, 1):
            fail(f"while live /metrics reports sessions publish={sess[0]} play={sess[1]} (want 1, 1)")

        viewer.delete()
        pub.delete()
        m = metrics(base)
        sess = (m.get(PUB_GAUGE), m.get(PLAY_GAUGE))
        if sess != (0, 0):
            fail(f"after DELETE /metrics still reports sessions publish={sess[0]} play={sess[1]}")
        log("both sessions deleted; /metrics reports 0 sessions")
    finally:
        # Errors posted once the server has ended the sessions don't matter.
        for p in (viewer, pub):
            if p is not None:
                p.pipe.set_state(Gst.State.NULL)

    proc = _server["proc"]
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(5)
    except subprocess.TimeoutExpired:
        fail("hudong serve did not exit within 5 s of SIGTERM")
    if rc != 0:
        fail(f"hudong serve exited with {rc}")
    log(f"server exited 0; total {time.monotonic() - T0:.2f} s")


def publish_only(base, room):
    """`--publish BASE ROOM`: publish with WHIP to an already running server until
    SIGTERM/SIGINT, then DELETE the session. Used by gst_chromium.test.mjs."""
    global ROOM
    ROOM = room
    Gst.init(None)
    pub = make_publisher()
    try:
        pub.negotiate(base, "whip")
        pub.wait_connected(10)
        print(f"PUBLISHING {pub.location}", flush=True)
        stop = {"sig": None}

        def on_signal(sig):
            stop["sig"] = sig
            return False

        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, on_signal, signal.SIGTERM)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, on_signal, signal.SIGINT)
        run_until(lambda: stop["sig"] is not None or pub.state != GstWebRTC.WebRTCPeerConnectionState.CONNECTED,
                  PUBLISH_MAX_S, "a signal to stop publishing")
        if stop["sig"] is None:
            fail(f"publisher: connection-state went {pub.state.value_nick} while publishing")
        pub.delete()
    finally:
        pub.pipe.set_state(Gst.State.NULL)


def run(fn, *args, watchdog_s=WATCHDOG_S):
    wd = threading.Timer(watchdog_s, watchdog)
    wd.daemon = True
    wd.start()
    ok = False
    try:
        fn(*args)
        ok = True
    except TestFailure as e:
        print(f"FAIL: {e}", flush=True)
    except Exception as e:  # noqa: BLE001 - any crash is a failure with diagnostics
        import traceback
        traceback.print_exc()
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
    finally:
        wd.cancel()
        if not ok:
            dump_diagnostics()
        kill_server()
        if _server["log"]:
            try:
                os.unlink(_server["log"])
            except OSError:
                pass
    return ok


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--publish":
        WATCHDOG_S = PUBLISH_MAX_S + 10
        sys.exit(0 if run(publish_only, sys.argv[2], sys.argv[3], watchdog_s=WATCHDOG_S) else 1)
    if len(sys.argv) != 1:
        sys.exit("usage: test_gstreamer.py [--publish BASE_URL ROOM]")
    ok = run(main)
    print("1 passed, 0 failed" if ok else "0 passed, 1 failed", flush=True)
    sys.exit(0 if ok else 1)
