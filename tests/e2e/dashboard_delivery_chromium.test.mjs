// The dashboard's RTM delivery number (issue 14 item 1, docs/quality.md
// "Delivery rate"), in a real Chromium: a page's two RTM sessions exchange
// messages over /rtm (one acks everything, one acks only half), then
// /dashboard shows the delivery card and the "RTM delivery rate" plot drawn
// from /admin/quality/summary's numbers (window.__dashboard keeps what was
// drawn), and a screenshot is taken.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium, startServer, stopServer, waitFor } from './lib.mjs';

const ROOM = 'e2e-delivery';
let srv, browser, tmp;

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'hudong-delivery-'));
  const cfg = path.join(tmp, 'hudong.json');
  writeFileSync(cfg, JSON.stringify({ quality: { sample_interval_s: 1 }, rtm: { resume_grace_seconds: 1 } }));
  srv = await startServer(['--config', cfg, '--rtm-db', path.join(tmp, 'rtm.db')]);
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  const code = await stopServer(srv);
  if (code !== 0) console.error(`hudong serve exited with ${code}:\n${srv.log()}`);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('dashboard: RTM delivery rate and latency from the API', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${srv.base}/healthz`);
  // alice publishes 10 messages; bob acks all; carol acks none and goes away (grace 1 s)
  const got = await page.evaluate(async (room) => {
    const tok = async (id) => (await (await fetch(`/api/dev-token?room=${room}&identity=${id}`)).json()).token;
    // waits for what comes next instead of fixed delays (a sanitizer build answers later): at
    // most 10 s, then goes on and the numbers below say what was missing
    const until = async (pred) => {
      for (const t0 = Date.now(); !pred() && Date.now() - t0 < 10000;) await new Promise((r) => setTimeout(r, 20));
    };
    const open = async (id, ack) => {
      const ws = new WebSocket(`ws://${location.host}/rtm`);
      const s = { ws, last: 0, msgs: 0, ack, replies: {} };
      ws.onmessage = (e) => {
        const m = JSON.parse(e.data);
        if (m.s) s.last = m.s;
        if (m.type === 'msg') s.msgs++;
        if (m.id) s.replies[m.id] = m.type;
        if (s.ack && m.s) ws.send(JSON.stringify({ type: 'ack', s: m.s }));
      };
      await new Promise((r) => { ws.onopen = r; });
      ws.send(JSON.stringify({ type: 'login', id: 'L', token: await tok(id) }));
      await until(() => s.replies.L);
      ws.send(JSON.stringify({ type: 'sub', id: 'S', ch: room }));
      await until(() => s.replies.S); // subscribed before alice publishes
      return s;
    };
    const alice = await open('alice', true), bob = await open('bob', true), carol = await open('carol', false);
    for (let i = 0; i < 10; i++) alice.ws.send(JSON.stringify({ type: 'pub', id: `p${i}`, ch: room, data: `m${i}` }));
    // carol goes once she has the 10 (unacked): her grace then gives them up
    await until(() => alice.msgs >= 10 && bob.msgs >= 10 && carol.msgs >= 10);
    await new Promise((r) => setTimeout(r, 200)); // a duplicate would come by now
    carol.ws.close();
    return { alice: alice.msgs, bob: bob.msgs, carol: carol.msgs };
  }, ROOM);
  assert.deepEqual(got, { alice: 10, bob: 10, carol: 10 });
  await new Promise((r) => setTimeout(r, 3500)); // carol's grace, then a sample
  await page.goto(`${srv.base}/dashboard?range=900000`);
  const d = await waitFor(page, () => {
    const x = window.__dashboard;
    return x && x.summary && x.plotted && x.plotted['plot-delivery']
      ? { delivery: x.summary.delivery, series: x.summary.series, plotted: x.plotted['plot-delivery'].series,
          cards: document.getElementById('cards').innerText }
      : null;
  }, (v) => v && v.delivery && v.delivery.given_up === 10, 15000, 'dashboard with the delivery number');
  // alice (her own messages) and bob acked 20; carol's 10 given up: 2/3
  assert.equal(d.delivery.sent, 10);
  assert.equal(d.delivery.delivered, 20);
  assert.equal(d.delivery.given_up_expired, 10);
  assert.ok(Math.abs(d.delivery.delivery_rate - 2 / 3) < 1e-9);
  assert.ok(d.delivery.latency_ms && d.delivery.latency_ms.p50 > 0);
  assert.match(d.cards, /delivery \(RTM\)\s*66\.67%/);
  assert.match(d.cards, /20\/30 acked, 10 sent/);
  const pts = d.plotted[0].points.filter((p) => p[1] !== null);
  const want = d.series.filter((b) => b.delivery_rate !== undefined && b.delivery_rate !== null)
    .map((b) => [b.t, b.delivery_rate * 100]);
  assert.ok(pts.length >= 1, 'the delivery plot has points');
  assert.deepEqual(pts, want, 'the plot draws the API series');
  const shot = path.join(tmp, 'dashboard-delivery.png');
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(statSync(shot).size > 10000, 'dashboard screenshot');
  if (process.env.QUALITY_EXAMPLES) await page.screenshot({ path: path.join(process.env.QUALITY_EXAMPLES, 'dashboard-delivery.png'), fullPage: true });
  await ctx.close();
});
