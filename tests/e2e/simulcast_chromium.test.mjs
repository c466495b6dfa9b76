// Simulcast and layer selection with real peers (issue 11 items 1 and 3): a
// Chromium publisher sends three simulcast layers over WHIP; viewer A plays on
// a clean path, viewer B through a `hudong netem` relay whose downlink
// capacity collapses (2.5 Mbit/s -> 0.6 -> 2.5, 300 ms queue, 25 ms each way).
// B's own downlink estimate (REMB from Chrome) drives the node's choice of
// layer: B keeps watching at a lower resolution while its link is narrow, and
// A keeps the top layer throughout.
//
// SIMULCAST_PHASE_S (default 20) sets the length of each capacity phase;
// SIMULCAST_SCHEDULE ("kbps:seconds,..."; e.g. RFC 8867 5.1 is
// "1000:40,2500:20,600:20,1000:20") replaces the three phases; SIMULCAST_JSON
// writes the rows to a file; SIMULCAST_MEASURE_ONLY=1 prints without asserting
// (bench/downlink runs it so, with HUDONG_ADAPT=0 for the side-by-side baseline).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium, metrics, noiseY4m, sleep, startNetem, startServer, stopServer, videoSession } from './lib.mjs';

const PHASE_S = Number(process.env.SIMULCAST_PHASE_S || 20);

let srv, browser, relay;
before(async () => {
  srv = await startServer(['--media-workers', '1']);
  // SIMULCAST_NOISE=1: a camera of random frames, so every layer runs at its
  // bitrate cap (~2.15 Mbit/s in all) and narrow links really are too narrow;
  // SIMULCAST_NOISE_FPS (default 30): a lower frame rate halves the encoders'
  // CPU on a 2-core host while the layers stay at their caps
  // SIMULCAST_Y4M: a camera of that file (e.g. a moving test picture with grain,
  // bench/downlink --grain), looped
  if (process.env.SIMULCAST_Y4M) {
    browser = await launchChromium([`--use-file-for-fake-video-capture=${process.env.SIMULCAST_Y4M}`]);
  } else if (process.env.SIMULCAST_NOISE) {
    const y4m = path.join(mkdtempSync(path.join(tmpdir(), 'hudong-simulcast-')), 'noise.y4m');
    const fps = Number(process.env.SIMULCAST_NOISE_FPS || 30);
    noiseY4m(y4m, 960, 540, fps, fps);
    browser = await launchChromium([`--use-file-for-fake-video-capture=${y4m}`]);
  } else {
    browser = await launchChromium();
  }
});
after(async () => {
  if (relay) await relay.stop();
  if (browser) await browser.close().catch(() => {});
  const code = await stopServer(srv);
  if (code !== 0) console.log(`hudong serve exited ${code}:\n${srv.log().slice(-3000)}`);
  assert.equal(code, 0, 'hudong serve exits cleanly');
});

// The publisher's three layers (the viewers' layer choice is what is tested).
const SIMULCAST = {
  width: 960, height: 540, sendEncodings: [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
    { rid: 'f', maxBitrate: 1500000 },
  ],
};
// One WHIP (simulcast) or WHEP session in a fresh page; relayPort: the node's
// candidate is pointed at that relay instead.
const session = (kind, room, relayPort) => videoSession(browser, srv.base, kind, room, relayPort, SIMULCAST);
const startRelay = startNetem;

test('simulcast: a viewer on a collapsing link gets a lower layer and keeps watching; a clean viewer keeps the top layer', async () => {
  const room = 'simulcast';
  const pub = await session('whip', room, 0);
  /* SIMULCAST_START_KBPS: B's downlink before the schedule (default 2500; 600
   * = a viewer narrow from its first packet, issue 11's opening case) */
  relay = await startRelay(srv.rtcPort, ['--delay', '25', '--down-rate', process.env.SIMULCAST_START_KBPS || '2500',
    '--down-queue', '300', '--seed', '5']);
  const a = await session('whep', room, 0);
  const b = await session('whep', room, relay.port);
  const t0 = Date.now();
  for (;;) {
    const [sa, sb] = [await a.snap(), await b.snap()];
    if (sa.framesDecoded > 60 && sb.framesDecoded > 60) break;
    /* measuring without adaptation: B may decode nothing at all, which is the result */
    if (process.env.SIMULCAST_MEASURE_ONLY && Date.now() - t0 >= 25000) break;
    assert.ok(Date.now() - t0 < 25000, `viewers decoding: A ${JSON.stringify(sa)} B ${JSON.stringify(sb)}`);
    await sleep(500);
  }
  // Chrome ramps its simulcast layers up over a few seconds
  await sleep(6000);
  const phases = process.env.SIMULCAST_SCHEDULE
    ? process.env.SIMULCAST_SCHEDULE.split(',').map((x) => x.split(':').map(Number)).map(([k, sec]) => [`${k} kbit/s`, k, sec])
    : [['2500 kbit/s', 2500, PHASE_S], ['600 kbit/s', 600, PHASE_S], ['2500 kbit/s again', 2500, PHASE_S]];
  const rows = [];
  for (const [name, kbps, secsWanted] of phases) {
    await relay.impair({ down: { rate: kbps } });
    const heightsA = [], heightsB = [];
    const a0 = await a.snap(), b0 = await b.snap(), m0 = await metrics(srv.base), p0 = await pub.snap();
    let longest = 0, lastFrames = b0.framesDecoded, stillSince = Date.now();
    for (let s = 0; s < secsWanted; s++) {
      await sleep(1000);
      heightsA.push((await a.snap()).frameHeight);
      const bs = await b.snap();
      heightsB.push(bs.frameHeight);
      if (bs.framesDecoded !== lastFrames) {
        lastFrames = bs.framesDecoded;
        stillSince = Date.now();
      }
      longest = Math.max(longest, Date.now() - stillSince);
    }
    const a1 = await a.snap(), b1 = await b.snap(), m1 = await metrics(srv.base), p1 = await pub.snap();
    const secs = (b1.t - b0.t) / 1000;
    const row = {
      phase: name,
      b_heights: heightsB.join(','),
      a_heights: heightsA.join(','),
      b_stall_pct: Number(((100 * (b1.totalFreezesDuration - b0.totalFreezesDuration)) / secs).toFixed(2)),
      b_freezes: b1.freezeCount - b0.freezeCount,
      b_fps: Number(((b1.framesDecoded - b0.framesDecoded) / secs).toFixed(1)),
      b_longest_still_ms: longest, /* sampled once a second: 0 = a new frame every second */
      b_share_pct: Math.round((100 * (8 * (b1.bytesReceived - b0.bytesReceived)) / secs / 1000) / kbps),
      b_kbps: Math.round((8 * (b1.bytesReceived - b0.bytesReceived)) / secs / 1000),
      a_fps: Number(((a1.framesDecoded - a0.framesDecoded) / secs).toFixed(1)),
      switches: m1.hudong_layer_switches_total - m0.hudong_layer_switches_total,
      estimates: m1.hudong_estimates_received_total - m0.hudong_estimates_received_total + m1.hudong_twcc_feedback_received_total - m0.hudong_twcc_feedback_received_total,
      probes: m1.hudong_probes_total - m0.hudong_probes_total,
      publisher_layers: JSON.stringify(p1.layers),
      /* what the publisher sent over the phase, all layers */
      publisher_kbps: Math.round(Object.keys(p1.layers || {}).reduce((sum, rid) =>
        sum + (p1.layers[rid].bytesSent - ((p0.layers || {})[rid] || { bytesSent: 0 }).bytesSent), 0) * 8 / secs / 1000),
    };
    console.log(JSON.stringify(row));
    rows.push(row);
  }
  if (process.env.SIMULCAST_DEBUG) console.log(srv.log());
  if (process.env.SIMULCAST_JSON) writeFileSync(process.env.SIMULCAST_JSON, JSON.stringify({ adapt: process.env.HUDONG_ADAPT !== '0', rows }, null, 2));
  if (process.env.SIMULCAST_MEASURE_ONLY) {
    await Promise.all([pub.ctx.close(), a.ctx.close(), b.ctx.close()]);
    return;
  }
  const maxA = Math.max(...rows.flatMap((r) => r.a_heights.split(',').map(Number)));
  const low = rows[1];
  const lowB = low.b_heights.split(',').map(Number);
  assert.ok(rows.every((r) => r.estimates > 0), 'the viewers send downlink estimates (REMB)');
  assert.ok(low.b_fps > 10, `B keeps decoding on the narrow link (${low.b_fps} fps)`);
  assert.ok(Math.max(...lowB.slice(-5)) < maxA, `B gets a lower layer while its link is narrow (${low.b_heights} vs A ${maxA})`);
  assert.ok(low.b_stall_pct < 5, `B barely freezes while its link is narrow (${low.b_stall_pct}%; goal < 1%)`);
  /* Back up once the link is wide again: not asserted. The send-side estimate
   * of an application-limited subscriber stays near 2x what it receives, and
   * the next layer up doubles that; it comes back through probes, within
   * 5-20 s in our runs, sometimes not within the phase (issue 11, left open). */
  const back = rows[2].b_heights.split(',').map(Number);
  console.log(`B after the link widened again: ${back[back.length - 1]} (top ${maxA})`);
  assert.ok(rows[2].b_fps > 10, 'B keeps decoding after the link widened again');
  assert.ok(rows.every((r) => r.a_fps > 10), 'A keeps decoding');
  assert.ok(rows.every((r) => r.a_heights.split(',').slice(-3).every((h) => Number(h) === maxA)), 'A keeps the top layer');
  await Promise.all([pub.ctx.close(), a.ctx.close(), b.ctx.close()]);
  if (process.env.SIMULCAST_DEBUG) console.log(srv.log());
});

// 20% random loss on viewer B's downlink (25 ms each way, 2.5 Mbit/s): the
// node repairs what B loses (twice over to a lossy viewer) and its estimate
// must not read random loss as congestion (the loss-based part learns the
// path's base loss), so B keeps a watchable layer. Issue 11 goal: < 2% stall.
test('simulcast: a viewer at 20% random loss keeps watching', async () => {
  const room = 'simulcast-loss';
  const pub = await session('whip', room, 0);
  const lossy = await startRelay(srv.rtcPort, ['--delay', '25', '--down-rate', '2500', '--down-queue', '300',
    '--down-loss', '20', '--seed', '7']);
  try {
    const b = await session('whep', room, lossy.port);
    const t0 = Date.now();
    while ((await b.snap()).framesDecoded <= 60) {
      assert.ok(Date.now() - t0 < 25000, 'B decodes through 20% loss');
      await sleep(500);
    }
    /* the publisher's top layer up at full size first: Chrome enables its
     * simulcast layers one by one as its own uplink estimate ramps (10-20 s
     * on a loaded host), and B's switch to a layer that goes live late is
     * the publisher's ramp, not B's leg */
    const p0 = Date.now();
    let top = 0;
    while (Date.now() - p0 < 25000) {
      const ls = (await pub.snap()).layers || {};
      top = ls.f ? ls.f.height || 0 : 0;
      if (top >= SIMULCAST.height) break;
      await sleep(500);
    }
    const topWait = Date.now() - p0;
    await sleep(5000);
    const b0 = await b.snap(), m0 = await metrics(srv.base);
    const heights = [];
    for (let s = 0; s < 20; s++) {
      await sleep(1000);
      heights.push((await b.snap()).frameHeight);
    }
    const b1 = await b.snap(), m1 = await metrics(srv.base);
    const secs = (b1.t - b0.t) / 1000;
    const stall = (100 * (b1.totalFreezesDuration - b0.totalFreezesDuration)) / secs;
    /* the node's layer switches for B (a height change without one is the
     * publisher's encoder scaling its top layer, e.g. for CPU) */
    const switches = m1.hudong_layer_switches_total - m0.hudong_layer_switches_total;
    const fps = (b1.framesDecoded - b0.framesDecoded) / secs;
    console.log(JSON.stringify({ case: '20% random loss', b_stall_pct: Number(stall.toFixed(2)), b_freezes: b1.freezeCount - b0.freezeCount,
      b_fps: Number(fps.toFixed(1)), b_kbps: Math.round((8 * (b1.bytesReceived - b0.bytesReceived)) / secs / 1000), b_heights: heights.join(','), switches, pub_top_wait_ms: topWait, pub_top_height: top }));
    if (process.env.SIMULCAST_DEBUG) console.log(srv.log());
    assert.ok(fps > 8, `B keeps decoding at 20% loss (${fps.toFixed(1)} fps)`);
    // 0-7.4% over 12 runs on a loaded 2-core machine since the node asks B for
    // a playout delay covering its own leg's repairs (0-14.8% before; goal
    // < 2%, reached in 9 of 12; the rest froze on layer switches:
    // docs/performance.md): a bound that catches a broken repair path
    // (without it nearly every frame waits)
    assert.ok(stall < 40, `B's stall rate at 20% loss (${stall.toFixed(2)}%; goal < 2%)`);
    await Promise.all([pub.ctx.close(), b.ctx.close()]);
  } finally {
    await lossy.stop();
  }
});
