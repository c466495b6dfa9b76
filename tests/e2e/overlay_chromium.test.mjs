// Issue 16 "Done when": a browser on node A watches a publisher on node C
// while the direct link A-C is bad; the stream takes the good path A-B-C; a
// link on it is cut and the picture keeps moving (docs/overlay.md "Relaying").
//
// A real redis-server and three `hudong serve --redis` nodes (one media
// worker each) on 127.0.0.1. Three `hudong netem` relays, used through
// --peer-addr (only the node that names a relay sends through it):
//   n3 -> n1: 80 ms each way, 2% loss up    (the bad direct link, n3's side)
//   n1 -> n3: 80 ms each way, 2% loss up    (the bad direct link, n1's side)
//   n3 -> n2: clean                         (the leg that is cut)
// n2 <-> n1 and n2 -> n3 are direct. So both n1 -> n3 and n3 -> n1 go
// through n2. A `hudong pub --simulcast` on n3 publishes (tone + 30 fps
// pattern as two simulcast layers: only the one n1's allocator takes crosses
// the link, the other is kept live at n1 by n3's LAYERS reports; before those
// and per-layer keyframe requests (748eeda), the viewer's only live layer was
// paused for bandwidth after the cut and the page got padding probes only;
// OVL_SINGLE=1 publishes one stream instead); a
// Chromium page (web/room.html, receive-only) on n1 watches it. The media
// follows n3's route to n1 (n3 -> n2 -> n1).
//
//  1. both routes go through n2 (GET /admin/cluster/links) and n2 forwards
//     the relayed datagrams; the page decodes the video;
//  2. the n3 -> n2 leg dies (netem blackout): n3's link to n2 goes down, its
//     route to n1 moves to the direct (bad) link and the page's picture keeps
//     moving. The page measures every frame it is shown
//     (requestVideoFrameCallback) and samples framesDecoded every 100 ms; the
//     longest gaps before and after the cut are printed (not judged: the
//     machine is shared; the issue's < 500 ms goal is measured by
//     bench/overlay), frames must keep coming after the cut, to the end.
// Also printed: n3's route to n1 and n1's route to n3 sampled every 250 ms
// (a timeline of their changes), the video's RTP counters in the page
// (received, lost, NACKs, PLIs) and the relay counters of each hop.
// OVL_DEBUG=1 prints the nodes' logs at the end.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { freePort, hudongBin, launchChromium, sleep, startRedis, startServer, stopServer, waitFor } from './lib.mjs';

const ROOM = 'e2e-overlay';
let redis, browser, pubProc;
const nodes = {};
const relays = {};
const problems = [];

// A `hudong netem` relay with a control endpoint; the control port is a free
// UDP port that may be taken on TCP: a refused start is tried on another one.
async function startNetem(name, listen, to, impair) {
  let log = '';
  for (let attempt = 1; attempt <= 4; attempt++) {
    const ctl = await freePort();
    const proc = spawn(hudongBin, ['netem', '--listen', `127.0.0.1:${listen}`, '--to', `127.0.0.1:${to}`,
      '--control', `127.0.0.1:${ctl}`, ...impair], { stdio: ['ignore', 'ignore', 'pipe'] });
    log = '';
    proc.stderr.on('data', (d) => { log += d; });
    relays[name] = { proc, ctl, log: () => log };
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`http://127.0.0.1:${ctl}/stats`)).ok) return relays[name];
      } catch { /* not up yet */ }
      if (proc.exitCode !== null) break;
      await sleep(50);
    }
    if (proc.exitCode === null) proc.kill('SIGKILL');
    if (!/control/.test(log)) break;
  }
  throw new Error(`hudong netem ${name} did not start:\n${log}`);
}

async function adminToken(node) {
  return (await (await fetch(`${node.base}/api/dev-token?admin=1`)).json()).token;
}

async function links(node) {
  const r = await fetch(`${node.base}/admin/cluster/links`, { headers: { Authorization: `Bearer ${node.admin}` } });
  return r.ok ? r.json() : { error: `${r.status} ${await r.text()}` };
}

const route = (js, to) => (js.routes || []).find((r) => r.to === to) || {};
const link = (js, peer) => (js.links || []).find((l) => l.peer === peer) || {};

// Polls fn() (async, node side) until pred(value); returns the value or throws with the last one.
async function until(fn, pred, ms, what) {
  const t0 = Date.now();
  let v;
  while (Date.now() - t0 < ms) {
    v = await fn();
    if (pred(v)) return v;
    await sleep(200);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}; last value: ${JSON.stringify(v).slice(0, 3000)}\n${logs()}`);
}

function logs() {
  return Object.entries(nodes).map(([n, s]) => `---- ${n} log (tail):\n${s.log().split('\n').slice(-25).join('\n')}`).join('\n') +
    `\nproblems: ${problems.join('\n')}`;
}

before(async () => {
  redis = await startRedis();
  const via = { r31: await freePort(), r13: await freePort(), r32: await freePort() };
  const peerAddr = {
    n1: [`n3=127.0.0.1:${via.r13}`],
    n2: [],
    n3: [`n1=127.0.0.1:${via.r31}`, `n2=127.0.0.1:${via.r32}`],
  };
  for (const n of ['n2', 'n1', 'n3']) {
    nodes[n] = await startServer(['--redis', redis.url, '--node-id', n, '--media-workers', '1',
      ...peerAddr[n].flatMap((a) => ['--peer-addr', a])]);
    nodes[n].admin = await adminToken(nodes[n]);
  }
  const bad = ['--delay', '80', '--up-loss', '2'];
  // the nodes reach these only once they listen: until then those links are down
  await startNetem('r31', via.r31, nodes.n1.rtcPort, bad);
  await startNetem('r13', via.r13, nodes.n3.rtcPort, bad);
  await startNetem('r32', via.r32, nodes.n2.rtcPort, []);
  browser = await launchChromium();
});

after(async () => {
  if (process.env.OVL_DEBUG)
    for (const [n, srv] of Object.entries(nodes)) console.log(`---- ${n} log:\n${srv.log()}`);
  if (browser) await browser.close().catch(() => {});
  if (pubProc && pubProc.exitCode === null) pubProc.kill('SIGKILL');
  for (const r of Object.values(relays)) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
  for (const n of Object.values(nodes)) await stopServer(n).catch(() => {});
  if (redis) redis.stop();
});

// In the page: every frame shown by each remote <video> (requestVideoFrameCallback)
// and framesDecoded of the subscriber's video sampled every 100 ms.
function installMeter() {
  const m = window.__meter = { shown: [], decoded: [], attached: new Set() };
  const attach = () => {
    for (const v of document.querySelectorAll('video')) {
      if (m.attached.has(v) || !v.srcObject || !('requestVideoFrameCallback' in v)) continue;
      m.attached.add(v);
      const cb = () => { m.shown.push(performance.now()); v.requestVideoFrameCallback(cb); };
      v.requestVideoFrameCallback(cb);
    }
  };
  let busy = false;
  m.timer = setInterval(async () => {
    attach();
    if (busy) return;
    busy = true;
    try {
      const s = await window.hudong.stats();
      const v = (s ? s.tracks : []).find((t) => t.kind === 'video');
      if (v) m.decoded.push([performance.now(), v.framesDecodedTotal || v.framesDecoded || 0, v.freezeCount || 0,
        v.packetsReceived || 0, v.packetsLost || 0, v.nackCount || 0, v.pliCount || 0, v.bytesReceived || 0]);
    } finally { busy = false; }
  }, 100);
}

// Longest gap (ms) between frames shown, and between framesDecoded increases,
// within [from, to] (page clock); counts of frames in that window.
function gaps(from, to) {
  const m = window.__meter;
  const longest = (ts) => {
    let g = 0;
    for (let i = 1; i < ts.length; i++) g = Math.max(g, ts[i] - ts[i - 1]);
    return Math.round(g);
  };
  const shown = m.shown.filter((t) => t >= from && t <= to);
  const d = m.decoded.filter(([t]) => t >= from && t <= to);
  const incs = [];
  for (let i = 1; i < d.length; i++) if (d[i][1] > d[i - 1][1]) incs.push(d[i][0]);
  const first = d[0], last = d[d.length - 1];
  return {
    shown: shown.length, shownGap: longest([from, ...shown, to]),
    decoded: first && last ? last[1] - first[1] : 0, decodedGap: longest([from, ...incs, to]),
    freezes: first && last ? last[2] - first[2] : 0, samples: d.length,
    // the video's RTP counters over the window: received, lost (after repair), NACKs and PLIs sent
    packets: first && last ? last[3] - first[3] : 0, lost: first && last ? last[4] - first[4] : 0,
    nacks: first && last ? last[5] - first[5] : 0, plis: first && last ? last[6] - first[6] : 0,
    bytes: first && last ? last[7] - first[7] : 0,
  };
}

test('a page on n1 watches a publisher on n3 through n2; the n3-n2 leg dies and the picture keeps moving', async () => {
  const { n1, n2, n3 } = nodes;
  const t0 = Date.now();
  // 1. routes through n2 before media flows
  await until(async () => [await links(n1), await links(n3)],
    ([a, c]) => JSON.stringify(route(a, 'n3').via) === '["n2"]' && JSON.stringify(route(c, 'n1').via) === '["n2"]',
    20000, 'n1 -> n3 and n3 -> n1 routed through n2');
  const [l1, l3] = [await links(n1), await links(n3)];
  console.log(`routes after ${Date.now() - t0} ms: n1 -> n3 ${JSON.stringify(route(l1, 'n3'))}; n3 -> n1 ${JSON.stringify(route(l3, 'n1'))}`);
  console.log(`n3's links: n1 rtt ${link(l3, 'n1').rtt_ms} ms loss ${link(l3, 'n1').loss_fwd}; n2 rtt ${link(l3, 'n2').rtt_ms} ms`);

  // n3's route to n1 and its links (and n1's route back, for the feedback), sampled every 250 ms (printed: when did the route move, and why)
  const timeline = [];
  let watching = true;
  const watch = (async () => {
    let lastKey = '';
    while (watching) {
      const js = await links(n3).catch(() => ({}));
      const r = route(js, 'n1');
      const back = route(await links(n1).catch(() => ({})), 'n3');
      const key = `via ${JSON.stringify(r.via)} n2 ${link(js, 'n2').up ? 'up' : 'down'} n1 ${link(js, 'n1').up ? 'up' : 'down'}` +
        ` (n1 -> n3 via ${JSON.stringify(back.via)})`;
      if (key !== lastKey) timeline.push(`+${Date.now() - t0} ms: ${key} (cost ${Math.round(r.cost_ms)} ms, route_changes ${js.route_changes})`);
      lastKey = key;
      await sleep(250);
    }
  })();
  const tok = async (id) => (await (await fetch(`${n1.base}/api/dev-token?room=${ROOM}&identity=${id}`)).json()).token;
  let pubLog = '';
  pubProc = spawn(hudongBin, ['pub', '--url', n3.base, '--token', await tok('pub3'), '--tone', '440',
    '--pattern', '160x120@30', '--duration', '60', '--quiet',
    ...(process.env.OVL_SINGLE ? [] : ['--simulcast'])], { stdio: ['ignore', 'ignore', 'pipe'] });
  pubProc.stderr.on('data', (d) => { pubLog += d; });

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror ${e.message}`));
  await page.goto(`${n1.base}/room.html?room=${ROOM}&name=viewer&autojoin=1&nocam=1&nomic=1&token=${await tok('viewer1')}`);
  const video = () => window.hudong.stats().then((s) => (s ? s.tracks : []).find((t) => t.kind === 'video') || null);
  const decoding = (min) => (v) => v && v.framesDecoded > min;
  try {
    await waitFor(page, () => window.hudong.state, (s) => s === 'connected', 15000, 'the viewer joined on n1');
    await waitFor(page, video, decoding(30), 20000, 'the viewer decoding pub3 (n3) video');
  } catch (e) {
    throw new Error(`${e.message}\npub: ${pubLog.slice(-1500)}\n${logs()}`);
  }
  const fwd = (js) => ((link(js, 'n1').relay || {}).forwarded || 0);
  const forwarded = await until(() => links(n2), (js) => fwd(js) > 100, 5000, 'n2 forwarding n3\'s datagrams to n1');
  // (a loaded machine can make a route move for a moment: the timeline below shows it)
  await until(() => links(n3), (js) => JSON.stringify(route(js, 'n1').via) === '["n2"]', 10000, 'the media going through n2');
  console.log(`the page decodes n3's video through n2 (n2 forwarded ${fwd(forwarded)} datagrams to n1) after ${Date.now() - t0} ms`);

  // 2. cut the n3 -> n2 leg
  await page.evaluate(installMeter);
  await sleep(3000);
  await until(() => links(n3), (js) => JSON.stringify(route(js, 'n1').via) === '["n2"]', 10000, 'the media going through n2 before the cut');
  const upOf = async (name) => (await (await fetch(`http://127.0.0.1:${relays[name].ctl}/stats`)).json()).up || {};
  const direct0 = await upOf('r31');
  const tCut = await page.evaluate(() => performance.now());
  const cut = await fetch(`http://127.0.0.1:${relays.r32.ctl}/impair`, { method: 'POST', body: JSON.stringify({ both: { blackout_now_ms: 120000 } }) });
  assert.equal(cut.status, 200, `the n3 -> n2 relay blacks out: ${await cut.text()}`);
  const w0 = Date.now(), tCutAbs = w0 - t0;
  const moved = await until(() => links(n3), (js) => JSON.stringify(route(js, 'n1').via) === '[]', 10000, 'n3 -> n1 moving to the direct link');
  const tMoved = Date.now() - w0;
  console.log(`n3 -> n1 moved to the direct link ${tMoved} ms after the cut (n2 link up: ${link(moved, 'n2').up}): ${JSON.stringify(route(moved, 'n1'))}`);
  await sleep(4000);
  const tEnd = await page.evaluate(() => performance.now());
  const gBefore = await page.evaluate(`(${gaps})(${tCut - 3000}, ${tCut})`);
  const gAfter = await page.evaluate(`(${gaps})(${tCut}, ${tEnd})`);
  const gLast = await page.evaluate(`(${gaps})(${tEnd - 2000}, ${tEnd})`);
  console.log(`before the cut (3 s): ${JSON.stringify(gBefore)}`);
  console.log(`from the cut to ${Math.round(tEnd - tCut)} ms after: ${JSON.stringify(gAfter)}`);
  console.log(`longest gap seen by the viewer across the cut: ${gAfter.shownGap} ms between frames shown, ` +
    `${gAfter.decodedGap} ms between framesDecoded increases (100 ms samples); route moved after ${tMoved} ms`);
  console.log(`last 2 s: ${JSON.stringify(gLast)}`);
  const direct1 = await upOf('r31');
  console.log(`the direct n3 -> n1 relay carried ${direct1.pkts_in - direct0.pkts_in} datagrams (${direct1.bytes_in - direct0.bytes_in} B) ` +
    `from the cut to the end (${Math.round((tEnd - tCut) / 1000)} s); n3 -> n2 relay: ${JSON.stringify(await upOf('r32')).slice(0, 200)}`);
  // relay counters per next / previous hop: the media n3 -> n2 -> n1, the feedback n1 -> n2 -> n3
  const [e1, e2, e3] = [await links(n1), await links(n2), await links(n3)];
  for (const [who, js, peer] of [['n3', e3, 'n2'], ['n2', e2, 'n1'], ['n2', e2, 'n3'], ['n1', e1, 'n2']])
    console.log(`relay counters of ${who} about ${peer}: ${JSON.stringify(link(js, peer).relay)}`);
  watching = false;
  await watch;
  console.log(`n3's route to n1 (cut at +${tCutAbs} ms):\n${timeline.join('\n')}`);
  for (const ln of n3.log().split('\n')) if (/overlay|link: peer/.test(ln)) console.log(`n3: ${ln}`);
  assert.ok(gAfter.decoded > 30, `frames keep being decoded after the cut (${gAfter.decoded} in ${Math.round(tEnd - tCut)} ms)`);
  assert.ok(gLast.decoded > 10, `and still in the last 2 s (${gLast.decoded})`);
  assert.ok(gAfter.decodedGap < 5000, `no stall of 5 s or more after the cut (${gAfter.decodedGap} ms)`);
  assert.deepEqual(problems, [], 'no uncaught page errors');
  await ctx.close();
});
