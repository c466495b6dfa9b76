#!/usr/bin/python3
"""bench/overlay — the overlay on the test bed (issue 16 item 6; docs/overlay.md
"Measured on the test bed").

A publisher on node A (`hudong pub`, 440 Hz tone + 640x360@30 test pattern)
and a subscriber on node C (`hudong sub --json`), on the bench/overlay/testbed.py
topology (A-C 150 ms one way and 10% loss; A-B-C 2 x 20 ms and 0.5%; A-D-C
2 x 45 ms and 1%). Phases, each with a fresh pub/sub pair in a new room:

  steady     the default topology: e2e latency (capture -> play-out, median,
             from the subscriber), residual loss after repair, stall, audio
             concealment; which relays the media crossed (kbit/s through the
             A>C, A>B, B>C, A>D, D>C relays, from their /stats) = the MODE:
             "overlay via B" when it crossed A>B and B>C, "direct" when A>C.
  reference  the A-C relay set to what A-B-C adds (40 ms one way, 1% loss)
             and A's other links (A-B, A-D) dead for the phase, so the media
             must go direct: the best available path taken directly, no relay
             hop (the goal is "within 10% of the best available path").
  failure    after 8 s the link the media uses dies for 10 s (A-B in overlay
             mode, A-C when the media goes direct): the longest audio gap and
             video freeze the subscriber saw, and the time A's route to C
             took to leave the dead link (polled every 50 ms).
  schedule   the test bed's default schedule (A-B dies 10 s, B-C loss 30% for
             10 s, recovers): stall over the whole run, residual loss, route
             changes at A.
  flaps      a fresh bed with +-JITTER ms on every relay and no schedule, no
             media: route changes summed over the 4 nodes after the routes
             first settle (goal: zero over 10 minutes; --flap-seconds 600).

    bench/overlay/bench.py [--bin build/hudong] [--seconds 20] [--flap-seconds 120] [--jitter 10]
                           [--only steady,reference,failure,schedule,flaps] [--json FILE]
                           [--overlay KEY=VALUE ...]

--overlay KEY=VALUE (repeatable) puts KEY in every node's "overlay" config
object (docs/overlay.md "Tuning the overlay"; VALUE is read as JSON, e.g.
--overlay dup_audio_loss=0 duplicates audio on the second path whenever the
best path shows any loss). A key a node rejects stops it at start.

Prints one table (and the MODE it measured) and writes
bench/results/overlay.json. Not in `make test`. Note the machine load
(printed with each phase): every figure moves with it.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import testbed  # noqa: E402
from testbed import tc  # noqa: E402

RELAYS = ["A>C", "A>B", "B>C", "A>D", "D>C", "D>B"]


def load():
    return round(os.getloadavg()[0], 1)


def token(hudong, room, ident, pub):
    args = [hudong, "token", "--key", tc.APP, "--secret", tc.SECRET, "--room", room, "--identity", ident]
    args += ["--publish"] if pub else ["--subscribe"]
    return subprocess.check_output(args, text=True).strip()


def relay_bytes(bed):
    out = {}
    for k in RELAYS:
        if k in bed.relays:
            try:
                out[k] = bed.relay_stats(k).get("up", {}).get("bytes_in", 0)
            except OSError:
                out[k] = 0
    return out


def media_run(bed, name, seconds, during=None):
    """pub on A, sub on C for `seconds`; during(t0) is called in a loop
    while the subscriber runs (for schedules). Returns the row."""
    hudong = bed.hudong
    room = "ovl-%s-%d" % (name, int(time.time() * 1000) % 100000)
    tmp = tempfile.mkdtemp(prefix="hd-ovl-%s-" % name, dir=bed.tmp)
    logs = []

    def start(what, args, out=None):
        f = open(os.path.join(tmp, what + ".log"), "w")
        logs.append(f)
        return subprocess.Popen(args, stdout=out or f, stderr=f, text=True)

    l0 = load()
    sub = start("sub", [hudong, "sub", "--url", bed.url("C"), "--token", token(hudong, room, "viewer", False),
                        "--out", tmp, "--duration", str(seconds), "--json", "--ivf", "--quiet"], subprocess.PIPE)
    time.sleep(0.5)
    pub = start("pub", [hudong, "pub", "--url", bed.url("A"), "--token", token(hudong, room, "camera", True),
                        "--tone", "440", "--pattern", "640x360@30", "--duration", str(seconds + 10), "--quiet"])
    b0 = relay_bytes(bed)
    t0 = time.time()
    extra = {}
    try:
        while sub.poll() is None and time.time() - t0 < seconds + 40:
            if during:
                during(t0, extra)
            time.sleep(0.05)
        out = sub.communicate(timeout=30)[0] if sub.poll() is not None else ""
    finally:
        for p in (sub, pub):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in (sub, pub):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()
    dt = max(time.time() - t0, 1e-3)
    b1 = relay_bytes(bed)
    kbps = {k: round((b1.get(k, 0) - b0.get(k, 0)) * 8 / dt / 1000, 1) for k in b1}
    try:
        d = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"phase": name, "error": "no summary from hudong sub; see %s" % tmp, "relay_kbps": kbps,
                "load": [l0, load()]}
    v = next((t for t in d.get("tracks", []) if t["kind"] == "video"), {})
    a = next((t for t in d.get("tracks", []) if t["kind"] == "audio"), {})
    dur = d.get("duration_s") or seconds
    paths = [k for k, hops in (("via B", ("A>B", "B>C")), ("via D", ("A>D", "D>C")), ("direct", ("A>C",)))
             if all(kbps.get(h, 0) > 200 for h in hops)]
    if len(paths) > 1:
        mode = "mixed: " + " + ".join(paths) + " (the route changed during the phase)"
    elif kbps.get("A>B", 0) > 200 and kbps.get("B>C", 0) > 200:
        mode = "overlay via B"
    elif kbps.get("A>D", 0) > 200 and kbps.get("D>C", 0) > 200:
        mode = "overlay via D"
    elif kbps.get("A>C", 0) > 200:
        mode = "direct A-C"
    else:
        mode = "unknown (no relay carried > 200 kbit/s)"
    row = {"phase": name, "mode": mode, "seconds": dur, "load": [l0, load()],
           "video_e2e_ms": v.get("e2e_delay_ms"), "audio_e2e_ms": a.get("e2e_delay_ms"),
           "video_loss_pct": v.get("loss_pct"), "audio_loss_pct": a.get("loss_pct"),
           "stall_pct": round(100.0 * v.get("freeze_ms", 0) / (dur * 1000), 2) if v else None,
           "freezes": v.get("freezes"), "fps": round(v.get("frames_decoded", 0) / dur, 1) if v else None,
           "audio_concealed_pct": a.get("concealed_pct"), "longest_audio_gap_ms": a.get("longest_gap_ms"),
           "nacks": v.get("nacks"), "keyframe_requests": v.get("keyframe_requests"),
           "relay_kbps": kbps, "route_A_to_C": bed.route("A", "C")[0]}
    row.update(extra)
    return row


def phase_failure(bed, seconds):
    """Kill the link the media uses 8 s in, for 10 s."""
    via, _ = bed.route("A", "C")
    state = {}

    def during(t0, extra):
        now = time.time() - t0
        if "killed" not in state and now >= 8:
            # which link carries the media: measured from the relays over the last seconds
            b = relay_bytes(bed)
            pair = "A-B" if b.get("A>B", 0) - state.get("b", {}).get("A>B", 0) > 100000 else "A-C"
            state["pair"] = pair
            bed.impair(pair, {"set": {"blackout_now_ms": 10000}})
            state["killed"] = time.time()
            extra["killed_link"] = pair
            extra["route_before"] = bed.route("A", "C")[0]
            # A's route entry at the kill: the second path and whether audio also took it
            r0 = next((r for r in bed.links("A").get("routes", []) if r.get("to") == "C"), {})
            extra["alt_before"] = r0.get("alt")
            extra["dup_audio_before"] = r0.get("dup_audio")
            # C's counts for media from A (dedup_dropped: copies that came twice)
            extra["c_relay_from_a_at_kill"] = bed.link("C", "A").get("relay")
        elif "killed" not in state and now >= 4 and "b" not in state:
            state["b"] = relay_bytes(bed)
        elif "killed" in state and "moved" not in state:
            r = bed.route("A", "C")[0]
            uses = (extra["route_before"] or [None])[0] == "B" if state["pair"] == "A-B" else extra["route_before"] == []
            if not uses:  # the router was not using the killed link: nothing to move
                state["moved"] = time.time()
                extra["route_moved_s"] = None
                extra["route_note"] = "the route did not use the killed %s link" % state["pair"]
                return
            first = (r or [None])[0] if r is not None else None
            dead_first = "B" if state["pair"] == "A-B" else None
            if r is not None and first != dead_first:
                state["moved"] = time.time()
                extra["route_moved_s"] = round(state["moved"] - state["killed"], 3)
                extra["route_after"] = r
                extra["c_relay_from_a_at_move"] = bed.link("C", "A").get("relay")

    row = media_run(bed, "failure", seconds, during)
    row.setdefault("route_moved_s", None)
    row["route_at_start"] = via
    return row


def phase_schedule(bed, seconds):
    ev = testbed.load_schedule("default")
    sched = {}
    changes0 = bed.route("A", "C")[1]

    def during(t0, extra):
        if "s" not in sched:
            sched["s"] = testbed.Schedule(bed, ev, t0=t0, log=lambda m: print("   " + m, flush=True))
        sched["s"].poll()
        # the first event kills A-B: how long until A's route to C stops starting on it
        done = sched["s"].applied
        if done and done[0]["pair"] == "A-B" and "route_moved_s" not in extra:
            r = bed.route("A", "C")[0]
            if r is not None and (r or [None])[0] != "B":
                extra["route_moved_s"] = round(time.time() - done[0]["wall"], 3)
                extra["route_after"] = r
                extra["c_relay_from_a_at_move"] = bed.link("C", "A").get("relay")

    row = media_run(bed, "schedule", seconds, during)
    row["route_changes_A"] = bed.route("A", "C")[1] - changes0
    row["events"] = [{k: e[k] for k in ("at", "pair", "what") if k in e} for e in ev]
    return row


def phase_flaps(hudong, seconds, jitter, overlay=None):
    bed = testbed.Bed(hudong, jitter=jitter, seed=7, overlay=overlay)
    l0 = load()
    try:
        bed.start()
        # settle: every node has a route to every other and no node's route_changes moved for 10 s
        # (3 s of the same routes was too short: the first move of A->C from direct to via B, once
        # B's and C's tables are in the registry and the hold has passed, was sometimes counted)
        end = time.time() + 60
        last, stable_since = None, time.time()
        while time.time() < end:
            cur = [bed.route(a, b)[0] for a in bed.names for b in bed.names if a != b]
            cur.append([bed.links(a).get("route_changes", 0) for a in bed.names])
            if cur != last:
                last, stable_since = cur, time.time()
            elif time.time() - stable_since > 10 and None not in cur:
                break
            time.sleep(0.5)
        def counts():
            # route changes, by why (builds with route_changes_by), and the links' downs/suspects
            out = {}
            for a in bed.names:
                js = bed.links(a)
                ls = js.get("links", [])
                out[a] = {"changes": js.get("route_changes", 0), "by": js.get("route_changes_by") or {},
                          "downs": sum(l.get("downs", 0) for l in ls),
                          "suspects": sum(l.get("suspects", 0) for l in ls)}
            return out
        k0 = counts()
        l1 = load()
        routes0 = {a: {b: bed.route(a, b)[0] for b in bed.names if b != a} for a in bed.names}
        time.sleep(seconds)
        k1 = counts()
        routes1 = {a: {b: bed.route(a, b)[0] for b in bed.names if b != a} for a in bed.names}
        per = {a: k1[a]["changes"] - k0[a]["changes"] for a in bed.names}
        why = {}
        for a in bed.names:
            for w, v in k1[a]["by"].items():
                why[w] = why.get(w, 0) + v - k0[a]["by"].get(w, 0)
        return {"phase": "flaps", "seconds": seconds, "jitter_ms": jitter, "load": [l0, l1, load()],
                "route_changes": sum(per.values()), "per_node": per, "route_changes_by": why,
                "link_downs": sum(k1[a]["downs"] - k0[a]["downs"] for a in bed.names),
                "link_suspects": sum(k1[a]["suspects"] - k0[a]["suspects"] for a in bed.names),
                "routes_start": routes0, "routes_end": routes1}
    finally:
        bed.stop()


def fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return ("%%.%df" % nd) % x
    return str(x)


def overlay_kv(arg):
    """KEY=VALUE for --overlay: VALUE as JSON (a number), else as a string."""
    key, eq, val = arg.partition("=")
    if not eq or not key:
        raise argparse.ArgumentTypeError("--overlay wants KEY=VALUE (e.g. dup_audio_loss=0), got %r" % arg)
    try:
        return key, json.loads(val)
    except ValueError:
        return key, val


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "hudong"))
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--flap-seconds", type=float, default=120)
    ap.add_argument("--jitter", type=float, default=10)
    ap.add_argument("--only", default="steady,reference,failure,schedule,flaps")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "overlay.json"))
    ap.add_argument("--overlay", type=overlay_kv, action="append", default=[], metavar="KEY=VALUE",
                    help="a key of every node's \"overlay\" config object (repeatable)")
    a = ap.parse_args()
    overlay = dict(a.overlay)
    hudong = os.path.abspath(a.bin)
    only = a.only.split(",")
    rows = []
    bed = testbed.Bed(hudong, overlay=overlay)
    try:
        bed.start()
        time.sleep(4)  # links measured, routes computed
        print("test bed up (%s); A's route to C: via %s" % (bed.tmp, bed.route("A", "C")[0]), flush=True)
        if "steady" in only:
            rows.append(media_run(bed, "steady", a.seconds))
            print("steady: %s" % json.dumps(rows[-1]), flush=True)
        if "reference" in only:
            bed.impair("A-C", {"set": {"delay": 40, "loss": 1}})
            # A's other links die for the whole phase, so the media cannot be relayed (there is no
            # overlay key that turns relaying off): with A-C at 40 ms / 1% alone the direct path is not
            # clearly cheaper than A-B-C and routes mixed (docs/overlay.md "With relaying")
            dead_ms = int((a.seconds + 60) * 1000)
            for pair in ("A-B", "A-D"):
                bed.impair(pair, {"set": {"blackout_now_ms": dead_ms}})
            time.sleep(3)
            # wait until the router takes the direct path: the row is the direct path's
            tc.wait_until(lambda: bed.route("A", "C")[0] == [], 15, step=0.5)
            rows.append(media_run(bed, "reference", a.seconds))
            rows[-1]["note"] = ("A-C relay set to A-B-C's sum (40 ms one way, 1%) and A-B, A-D dead: "
                                "the best path's figures, taken directly, no relay hop")
            for pair in ("A-C", "A-B", "A-D"):
                bed.impair(pair, {"reset": True})
            print("reference: %s" % json.dumps(rows[-1]), flush=True)
            time.sleep(4)
        if "failure" in only:
            rows.append(phase_failure(bed, max(a.seconds, 25)))
            print("failure: %s" % json.dumps(rows[-1]), flush=True)
            time.sleep(12)  # the killed link back and trusted again
        if "schedule" in only:
            rows.append(phase_schedule(bed, 45))
            print("schedule: %s" % json.dumps(rows[-1]), flush=True)
    finally:
        bed.stop()
    if "flaps" in only:
        try:
            rows.append(phase_flaps(hudong, a.flap_seconds, a.jitter, overlay))
            print("flaps: %s" % json.dumps(rows[-1]), flush=True)
        except RuntimeError as e:  # keep the other phases' results
            print("flaps: the second bed did not start: %s" % str(e)[:300], flush=True)

    modes = sorted({r["mode"] for r in rows if r.get("mode")})
    print()
    print("MODE MEASURED: media went %s (from the relays' byte counts)." % " / ".join(modes or ["-"]))
    if not any(m.startswith("overlay") for m in modes):
        print("  No relaying on this build: the media takes the direct A-C path whatever the route says; the")
        print("  route columns show what the router chose, the media columns what the direct path gave.")
    print()
    print("| phase | mode | load | video e2e ms | audio e2e ms | video residual loss % | audio loss % | stall % | "
          "audio concealed % | longest audio gap ms | route A->C | route moved s | route changes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if r["phase"] == "flaps":
            print("| flaps (%.0f s, +-%g ms jitter) | routes only | %s | - | - | - | - | - | - | - | - | - | %d |" % (
                r["seconds"], r["jitter_ms"], "%s-%s" % (r["load"][0], r["load"][-1]), r["route_changes"]))
            print("  (by why: %s; link downs %d, suspects %d)" % (r["route_changes_by"] or "-", r["link_downs"],
                                                                r["link_suspects"]))
            continue
        if r.get("error"):
            print("| %s | error: %s | %s-%s |" % (r["phase"], r["error"], r["load"][0], r["load"][1]))
            continue
        via = r.get("route_A_to_C")
        print("| %s | %s | %s-%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["phase"] + (" (%s killed)" % r["killed_link"] if r.get("killed_link") else ""), r["mode"],
            r["load"][0], r["load"][1], fmt(r["video_e2e_ms"], 0), fmt(r["audio_e2e_ms"], 0),
            fmt(r["video_loss_pct"], 2), fmt(r["audio_loss_pct"], 2), fmt(r["stall_pct"], 2),
            fmt(r["audio_concealed_pct"], 2), fmt(r["longest_audio_gap_ms"], 0),
            "direct" if via == [] else (",".join(via) if via else "-"), fmt(r.get("route_moved_s"), 2),
            fmt(r.get("route_changes_A"))))
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M"), "bin": hudong, "modes": modes,
                   "topology": testbed.TOPOLOGY, "overlay": overlay, "rows": rows}, f, indent=1)
    print("\nwrote %s" % a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
