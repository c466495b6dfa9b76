#!/usr/bin/python3
"""FlexFEC and audio NACK end to end (issue 13 items 1 and 2, docs/sdk.md
"FlexFEC" and "Audio NACK"; item 4: FlexFEC from the node to viewers):
`hudong pub` (tone + 640x360 pattern) ->
`hudong serve` -> `hudong sub`, both legs through `hudong netem` at 15%
random loss each way, 60 ms (a round trip too long for NACK alone: on a
short one the SDK sends FEC only from 30% loss, rtc/flexfec.h
hd_flexfec_plan). With the defaults the node receives the
publisher's FlexFEC repair packets and rebuilds video from them
(hudong_fec_received_total, hudong_fec_recovered_total on /metrics), the
node protects what it sends the subscriber with FlexFEC of its own
(hudong_fec_sent_total; `sub --json` fecPacketsReceived), the subscriber
NACKs lost audio and the node answers (the first send's exact
bytes, sfu/resend_cache.h); with HUDONG_FEC=0 HUDONG_AUDIO_NACK=0 (the A/B
switches) neither happens. Media flows in both runs.

usage: test_flexfec_sdk.py /path/to/hudong
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hdtest import FAILS, check, cli_token, free_media_port, free_port  # noqa: E402

HUDONG = sys.argv[1] if len(sys.argv) > 1 else "build/hudong"
SECONDS = 9


def wait_port(port, timeout=10):
    import socket
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def metric(text, name):
    m = re.search(r"^" + name + r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def run(env_extra, tmp, tag):
    hport, rtc, relay = free_port(), free_media_port(), free_media_port()
    env = dict(os.environ, **env_extra)
    procs, logs = [], []

    def start(name, args, out=None):
        f = open(os.path.join(tmp, f"{tag}-{name}.log"), "w")
        logs.append(f)
        p = subprocess.Popen(args, stdout=out or f, stderr=f, text=True, env=env)
        procs.append(p)
        return p

    def tok(ident, pub):
        return cli_token(HUDONG, "devkey", "devsecret", "--room", "fec" + tag, "--identity", ident,
                         "--publish" if pub else "--subscribe")

    try:
        start("serve", [HUDONG, "serve", "--dev", "--listen", f"127.0.0.1:{hport}", "--rtc-port", str(rtc),
                        "--rtc-ip", "127.0.0.1", "--rtc-announce-port", str(relay), "--media-workers", "1",
                        "--rtm-db", ":memory:"])
        if not wait_port(hport):
            raise RuntimeError(f"node did not start, see {tmp}/{tag}-serve.log")
        start("netem", [HUDONG, "netem", "--listen", f"127.0.0.1:{relay}", "--to", f"127.0.0.1:{rtc}",
                        "--delay", "60", "--loss", "15", "--seed", "13"])
        time.sleep(0.3)
        url = f"http://127.0.0.1:{hport}"
        sub = start("sub", [HUDONG, "sub", "--url", url, "--token", tok("viewer", False), "--out", tmp,
                            "--duration", str(SECONDS), "--json", "--ivf", "--quiet"], out=subprocess.PIPE)
        time.sleep(0.5)
        start("pub", [HUDONG, "pub", "--url", url, "--token", tok("camera", True), "--tone", "440", "--pattern",
                      "640x360@30", "--duration", str(SECONDS + 5), "--quiet"])
        out, _ = sub.communicate(timeout=SECONDS + 30)
        c = http.client.HTTPConnection("127.0.0.1", hport, timeout=5)
        c.request("GET", "/metrics")
        metrics = c.getresponse().read().decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
    d = json.loads(out.strip().splitlines()[-1])
    v = next((t for t in d["tracks"] if t["kind"] == "video"), {})
    a = next((t for t in d["tracks"] if t["kind"] == "audio"), {})
    r = {"fec_received": metric(metrics, "hudong_fec_received_total"),
         "fec_recovered": metric(metrics, "hudong_fec_recovered_total"),
         "fec_sent": metric(metrics, "hudong_fec_sent_total"),
         "resent_exact": metric(metrics, "hudong_resent_exact_total"),
         "same_index_refused": metric(metrics, "hudong_same_index_refused_total"),
         "frames": v.get("frames_decoded", 0), "audio_nacks": a.get("nacks"),
         "audio_repairs": a.get("retransmits"),
         "concealed_pct": a.get("concealed_pct"), "stall_ms": v.get("freeze_ms"),
         "sub_fec_received": v.get("fecPacketsReceived"), "sub_fec_recovered": v.get("fec_packets_recovered")}
    print(f"# {tag}: {r}")
    return r


def main():
    with tempfile.TemporaryDirectory(prefix="hd-fec-") as tmp:
        on = run({}, tmp, "on")
        check(on["frames"] > SECONDS * 5, "defaults: video decoded", on)
        check((on["fec_received"] or 0) > 0, "defaults: the node received FlexFEC repair packets", on)
        check((on["fec_recovered"] or 0) > 0, "defaults: the node rebuilt video from them", on)
        check((on["audio_nacks"] or 0) > 0, "defaults: the subscriber NACKed lost audio", on)
        check((on["audio_repairs"] or 0) > 0, "defaults: the node answered the subscriber's audio NACKs", on)
        # audio repairs go on the media SSRC as the first send's exact bytes
        check((on["resent_exact"] or 0) > 0, "defaults: /metrics hudong_resent_exact_total counts them", on)
        check(on["same_index_refused"] is not None, "defaults: /metrics has hudong_same_index_refused_total", on)
        # the node protects what it sends the subscriber with its own FlexFEC
        # (sub joined with "flexfec", src/sfu/session_fec.h): sub --json
        # counts the repair packets it received
        check((on["fec_sent"] or 0) > 0, "defaults: the node sent the subscriber FlexFEC", on)
        check((on["sub_fec_received"] or 0) > 0, "defaults: sub --json fecPacketsReceived > 0", on)
        check(on["sub_fec_received"] <= on["fec_sent"], "defaults: sub received at most what the node sent", on)
        off = run({"HUDONG_FEC": "0", "HUDONG_AUDIO_NACK": "0"}, tmp, "off")
        check(off["frames"] > SECONDS * 5, "switched off: video decoded", off)
        check(off["fec_received"] == 0 and off["fec_recovered"] == 0, "switched off: no FlexFEC", off)
        check(off["fec_sent"] == 0 and off["sub_fec_received"] == 0, "switched off: no FlexFEC to the subscriber",
              off)
        check(off["audio_nacks"] == 0, "switched off: no audio NACK", off)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
