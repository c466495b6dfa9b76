// Data channels in rooms (docs/protocol.md "Data channels"): Chromium pages
// join one room through web/rtc.js against `hudong serve --dev` and open the
// "hd-reliable" and "hd-lossy" channels on their publisher PCs (no media):
//  - A sends 100 reliable and 100 lossy messages over data channels; B gets all
//    100 reliable ones in order over its own data channel, and (loopback, no
//    loss) the lossy ones too; then B -> A the same way, with a binary message;
//  - a participant without canPublishData opens channels too, but what it
//    sends is dropped by the node (A and B receive nothing) and it gets an
//    "error" 403 over its WebSocket; it still receives room data;
//  - a participant without data channels gets data-channel messages over its
//    WebSocket, marked with the channel they came from.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { hudongBin, launchChromium, sleep, startServer, stopServer, waitFor } from './lib.mjs';

const ROOM = 'e2e-dc';
let srv, browser;
const problems = [];

before(async () => { srv = await startServer(); browser = await launchChromium(); });
after(async () => {
  if (browser) await browser.close().catch(() => {});
  const code = await stopServer(srv);
  if (code !== 0) console.error(`hudong serve exited with ${code}:\n${srv.log()}`);
});

function token(identity, grants) {
  return execFileSync(hudongBin, ['token', '--key', 'devkey', '--secret', 'devsecret', '--room', ROOM,
    '--identity', identity, ...grants]).toString().trim();
}

// A page with a joined Room in window.room; received data in window.got, errors in window.errs.
async function join(identity, grants, dataChannels) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => problems.push(`${identity}: pageerror ${e.message}`));
  await page.goto(`${srv.base}/healthz`);
  const tok = token(identity, grants);
  await page.evaluate(async ({ tok, dataChannels }) => {
    const { connect } = await import('/rtc.js');
    window.got = [];
    window.errs = [];
    const room = await connect('/rtc', tok, { autoSubscribe: true });
    room.on('data', (d) => window.got.push({
      from: d.from, transport: d.transport, channel: d.channel || null, binary: d.binary,
      payload: d.binary ? Array.from(d.payload) : d.payload,
    }));
    room.on('error', (e) => window.errs.push({ code: e.code, reason: e.reason, message: e.message }));
    window.room = room;
    if (dataChannels) await room.enableDataChannels();
  }, { tok, dataChannels });
  return page;
}

const got = () => window.got;

async function until(page, pred, ms, what) {
  try {
    return await waitFor(page, got, pred, ms, what);
  } catch (e) {
    throw new Error(`${e.message}\nproblems: ${problems.join('\n')}\nserver log (tail):\n${srv.log().split('\n').slice(-40).join('\n')}`);
  }
}

// Sends n messages "<tag>:<i>" on one channel, pacing under the node's 50/s data limit.
async function sendBurst(page, tag, n, reliable) {
  await page.evaluate(async ({ tag, n, reliable }) => {
    for (let i = 0; i < n; i++) {
      window.room.sendDataChannel(`${tag}:${i}`, { reliable });
      await new Promise((r) => setTimeout(r, 25));
    }
  }, { tag, n, reliable });
}

const seqOf = (list, tag) => list.filter((m) => typeof m.payload === 'string' && m.payload.startsWith(`${tag}:`))
  .map((m) => Number(m.payload.split(':')[1]));

test('data channels: reliable in order, lossy, both directions, WebSocket fallback, publish_data enforced', async () => {
  const full = ['--publish', '--subscribe', '--publish-data'];
  const a = await join('alice', full, true);
  const b = await join('bob', full, true);
  const w = await join('walt', full, false); // no data channels: WebSocket fallback

  // A -> B: 100 reliable, then 100 lossy
  await sendBurst(a, 'ar', 100, true);
  await sendBurst(a, 'al', 100, false);
  let bl = await until(b, (l) => seqOf(l, 'ar').length === 100 && seqOf(l, 'al').length >= 95, 20000, 'bob: A->B messages');
  await sleep(500);
  bl = await b.evaluate(got);
  const rel = seqOf(bl, 'ar');
  assert.deepEqual(rel, Array.from({ length: 100 }, (_, i) => i), 'reliable messages arrive once each, in order');
  const lossy = seqOf(bl, 'al');
  assert.ok(lossy.length >= 95 && lossy.length <= 100, `lossy messages on loopback: ${lossy.length}`);
  assert.equal(new Set(lossy).size, lossy.length, 'no lossy message twice');
  const sample = bl.find((m) => m.payload === 'ar:0');
  assert.equal(sample.from, 'alice');
  assert.equal(sample.transport, 'datachannel');
  assert.equal(sample.channel, 'reliable');
  assert.equal(bl.find((m) => m.payload === `al:${lossy[0]}`).channel, 'lossy');

  // walt has no data channels: the same messages come over its WebSocket, marked
  const wl = await until(w, (l) => seqOf(l, 'ar').length === 100, 20000, 'walt: fallback');
  assert.deepEqual(seqOf(wl, 'ar'), Array.from({ length: 100 }, (_, i) => i));
  const wm = wl.find((m) => m.payload === 'ar:0');
  assert.equal(wm.transport, 'websocket');
  assert.equal(wm.channel, 'reliable');

  // B -> A, and a binary message
  await sendBurst(b, 'br', 100, true);
  await sendBurst(b, 'bl', 100, false);
  await b.evaluate(() => window.room.sendDataChannel(new Uint8Array([0, 1, 2, 254, 255]), { reliable: true }));
  const al = await until(a, (l) => seqOf(l, 'br').length === 100 && seqOf(l, 'bl').length >= 95 &&
    l.some((m) => m.binary), 20000, 'alice: B->A messages');
  assert.deepEqual(seqOf(al, 'br'), Array.from({ length: 100 }, (_, i) => i));
  const bin = al.find((m) => m.binary);
  assert.deepEqual(bin.payload, [0, 1, 2, 254, 255]);
  assert.equal(bin.from, 'bob');
  assert.equal(bin.transport, 'datachannel');

  // no canPublishData (nor canPublish): channels open (they also receive), sending is dropped with a 403
  const m = await join('mallory', ['--subscribe'], true); // no canPublish either: a data-only publisher PC
  const before = { a: (await a.evaluate(got)).length, b: (await b.evaluate(got)).length };
  await sendBurst(m, 'mr', 5, true);
  await sendBurst(m, 'ml', 5, false);
  await waitFor(m, () => window.errs, (e) => e.some((x) => x.code === 403), 10000, 'mallory: 403 error');
  const errs = await m.evaluate(() => window.errs);
  assert.match(errs.find((x) => x.code === 403).message, /canPublishData/);
  // mallory still receives over its channel
  await a.evaluate(() => window.room.sendDataChannel('to-all', { reliable: true }));
  const ml = await waitFor(m, got, (l) => l.some((x) => x.payload === 'to-all'), 10000, 'mallory receives');
  assert.equal(ml.find((x) => x.payload === 'to-all').transport, 'datachannel');
  // mallory having alice's to-all says nothing of bob: wait for his copy (bounded) too
  await waitFor(b, got, (l) => l.some((x) => x.payload === 'to-all'), 10000, 'bob receives').catch(() => {});
  await sleep(500); // anything of mallory's would have reached alice or bob by now
  const afterA = await a.evaluate(got);
  const afterB = await b.evaluate(got);
  assert.equal(seqOf(afterA, 'mr').length + seqOf(afterA, 'ml').length, 0, 'nothing from mallory reached alice');
  assert.equal(seqOf(afterB, 'mr').length + seqOf(afterB, 'ml').length, 0, 'nothing from mallory reached bob');
  assert.ok(afterB.length >= before.b + 1, 'bob got alice\'s to-all');
  assert.equal(problems.length, 0, problems.join('\n'));
});
