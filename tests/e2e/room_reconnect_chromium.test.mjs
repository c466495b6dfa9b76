// Auto-reconnect of web/rtc.js (docs/protocol.md "Client behaviour"): two
// Chromium pages (web/room.html) in a room decode each other; then `hudong
// serve` is restarted on the same ports, once with SIGTERM (the pages get
// left "server_shutdown") and once with SIGKILL (the socket just drops). The
// node has no session resume, so each page must notice, rejoin as a new
// participant with a fresh token (backoff + jitter), republish its camera and
// microphone, and decode the other's video again (framesDecoded advancing on
// the new subscription) within 10 s of the restart.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium, sleep, startServer, stopServer, waitFor } from './lib.mjs';

const ROOM = 'e2e-reconnect';
const names = ['ra', 'rb'];
let srv, browser;
const pages = [];
const problems = [];
const logs = []; // server logs of the earlier runs, for failure messages

before(async () => { srv = await startServer(); browser = await launchChromium(); });
after(async () => {
  if (browser) await browser.close().catch(() => {});
  const code = await stopServer(srv);
  if (code !== 0) console.error(`hudong serve exited with ${code}:\n${srv.log()}`);
});

const remoteTracks = () => window.hudong.stats().then((s) => (s ? s.tracks : []));

async function until(page, fn, pred, ms, what) {
  try {
    return await waitFor(page, fn, pred, ms, what);
  } catch (e) {
    const h = await page.evaluate(() => ({ state: window.hudong.state, error: window.hudong.error,
      events: window.hudong.events.slice(-15) })).catch(() => null);
    throw new Error(`${e.message}\npage: ${JSON.stringify(h)}\nproblems: ${problems.join('\n')}\n` +
      `server log (tail):\n${[...logs, srv.log()].join('\n---- restart ----\n').split('\n').slice(-60).join('\n')}`);
  }
}

// The other page's camera, decoding more than `min` frames on the current subscription.
const seesOther = (other, min) => (tracks) => tracks.some((t) => t.name === other && t.kind === 'video' && t.framesDecoded > min);

async function restart(signal) {
  const ports = { httpPort: srv.httpPort, rtcPort: srv.rtcPort };
  const marks = await Promise.all(pages.map((p) => p.evaluate(() => window.hudong.events.length)));
  const sids = await Promise.all(pages.map((p) => p.evaluate(() => window.hudong.local.sid)));
  if (signal === 'SIGTERM') {
    assert.equal(await stopServer(srv), 0, 'the node exits 0 on SIGTERM');
  } else {
    srv.proc.kill('SIGKILL');
    await new Promise((r) => (srv.proc.exitCode !== null || srv.proc.signalCode ? r() : srv.proc.on('exit', r)));
  }
  logs.push(srv.log());
  const t0 = Date.now();
  await sleep(300); // the pages notice and start backing off while the node is down
  srv = await startServer([], ports);
  for (let i = 0; i < 2; i++) {
    const other = names[1 - i];
    const left = Math.max(1000, 10000 - (Date.now() - t0));
    await until(pages[i], () => window.hudong.state, (s) => s === 'connected', left, `${names[i]} reconnected after ${signal}`);
    await until(pages[i], remoteTracks, seesOther(other, 10), Math.max(1000, 10000 - (Date.now() - t0)),
      `${names[i]} decoding ${other} again after ${signal}`);
  }
  const ms = Date.now() - t0;
  for (let i = 0; i < 2; i++) {
    const ev = await pages[i].evaluate((m) => window.hudong.events.slice(m), marks[i]);
    const types = ev.map((e) => e.type);
    assert.ok(types.includes('reconnecting') && types.includes('reconnected'), `${names[i]}: reconnecting then reconnected (${types.join(',')})`);
    assert.ok(!types.includes('disconnected'), `${names[i]} did not give up`);
    if (signal === 'SIGTERM') assert.ok(ev.some((e) => e.type === 'left' && e.reason === 'server_shutdown'), `${names[i]} got left server_shutdown`);
    const now = await pages[i].evaluate(() => window.hudong.local.sid);
    assert.notEqual(now, sids[i], `${names[i]} rejoined as a new participant (no session resume)`);
    const ps = await pages[i].evaluate(() => window.hudong.participants.map((p) => p.name));
    assert.deepEqual(ps, [names[1 - i]], `${names[i]} lists exactly the other page`);
  }
  // still advancing, not a stale count
  const f0 = (await pages[0].evaluate(remoteTracks)).find((t) => t.kind === 'video').framesDecoded;
  await until(pages[0], remoteTracks, (t) => t.some((x) => x.kind === 'video' && x.framesDecoded > f0 + 10), 5000, 'frames keep advancing');
  return ms;
}

test('two Chromium pages reconnect after the node restarts (SIGTERM, then SIGKILL)', async () => {
  for (let i = 0; i < 2; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(`${names[i]}: pageerror ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`${names[i]}: console ${m.text()}`); });
    await page.goto(`${srv.base}/room.html?room=${ROOM}&name=${names[i]}&autojoin=1&w=320&h=180&fps=15`);
    pages.push(page);
  }
  for (let i = 0; i < 2; i++) {
    await until(pages[i], () => window.hudong.state, (s) => s === 'connected', 10000, `${names[i]} joined`);
    await until(pages[i], remoteTracks, seesOther(names[1 - i], 20), 20000, `${names[i]} decoding ${names[1 - i]}`);
  }
  const term = await restart('SIGTERM');
  console.log(`  SIGTERM restart: both pages decode each other again after ${term} ms`);
  const kill = await restart('SIGKILL');
  console.log(`  SIGKILL restart: both pages decode each other again after ${kill} ms`);
  for (const p of pages) await p.click('#leave');
  for (const p of pages) await until(p, () => window.hudong.state, (s) => s === 'left', 5000, 'left');
  assert.deepEqual(problems.filter((p) => /pageerror/.test(p)), [], 'no uncaught page errors');
});
