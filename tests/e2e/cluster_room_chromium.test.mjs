// A room across three nodes seen from browsers, and a node killed under it
// (issue 15 items 2, 3, 6; docs/overlay.md "A room across nodes"). A real
// redis-server and three `hudong serve --redis` nodes (regions r1..r3) on
// 127.0.0.1; three Chromium pages (web/room.html with a fake camera and
// microphone), page i loaded from node i with {cluster: node i, region: ri},
// so /api/route places each on its own node:
//
//  1. every page decodes the other two pages' video and receives their audio
//     (two of the three streams cross a node link);
//  2. kill -9 of n3: page 3's WebSocket drops, web/rtc.js routes again through
//     the nodes it knew (n3 is dead), rejoins on n1 or n2 and republishes;
//     pages 1 and 2 decode page 3's new video and page 3 decodes theirs. The
//     test prints the gaps (kill -> page 3 joined again -> everyone decoding
//     everyone again), and checks pages 1 and 2 never stopped decoding each
//     other.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { launchChromium, sleep, startCluster, stopCluster, waitFor } from './lib.mjs';

const ROOM = 'e2e-xroom';
const names = ['pa', 'pb', 'pc'];
let redis, browser;
let nodes = [];
const pages = [];
const problems = [];

before(async () => {
  ({ redis, nodes } = await startCluster(3, (i) => ['--region', `r${i + 1}`]));
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopCluster({ redis, nodes });
});

const remoteTracks = () => window.hudong.stats().then((s) => (s ? s.tracks : []));

async function until(page, fn, pred, ms, what) {
  try {
    return await waitFor(page, fn, pred, ms, what);
  } catch (e) {
    const h = await page.evaluate(() => ({ state: window.hudong.state, error: window.hudong.error,
      events: window.hudong.events.slice(-15) })).catch(() => null);
    throw new Error(`${e.message}\npage: ${JSON.stringify(h)}\nproblems: ${problems.join('\n')}\n` +
      nodes.map((n, i) => `---- n${i + 1} log (tail):\n${n.log().split('\n').slice(-30).join('\n')}`).join('\n'));
  }
}

// page sees `other`'s video decoding more than min frames (on a track not in `old`), and its audio
const sees = (other, min, old = []) => (tracks) =>
  tracks.some((t) => t.name === other && t.kind === 'video' && t.framesDecoded > min && !old.includes(t.sid)) &&
  tracks.some((t) => t.name === other && t.kind === 'audio' && !old.includes(t.sid));

test('three pages on three nodes see each other; a node killed with -9 costs its page a rejoin', async () => {
  const tok = async (name) => (await (await fetch(`${nodes[0].base}/api/dev-token?room=${ROOM}&identity=${name}`)).json()).token;
  for (let i = 0; i < 3; i++) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(`${names[i]}: pageerror ${e.message}`));
    const b = nodes[i].base;
    await page.goto(`${b}/room.html?room=${ROOM}&name=${names[i]}&autojoin=1&w=320&h=180&fps=15` +
      `&cluster=${encodeURIComponent(b)}&region=r${i + 1}&token=${await tok(names[i])}`);
    pages.push(page);
  }
  for (let i = 0; i < 3; i++) {
    await until(pages[i], () => window.hudong.state, (s) => s === 'connected', 15000, `${names[i]} joined`);
    const node = await pages[i].evaluate(() => window.hudong.room.node && window.hudong.room.node.id);
    assert.equal(node, `n${i + 1}`, `${names[i]} is on n${i + 1}`);
  }
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      if (i !== j) await until(pages[i], remoteTracks, sees(names[j], 20), 20000, `${names[i]} (n${i + 1}) decoding ${names[j]} (n${j + 1})`);
  console.log('# every page decodes the other two (two streams per page cross a node link)');

  // ---- kill -9 of n3 ----
  const oldC = (await pages[0].evaluate(remoteTracks)).filter((t) => t.name === 'pc').map((t) => t.sid);
  const abTrack = (await pages[0].evaluate(remoteTracks)).find((t) => t.name === 'pb' && t.kind === 'video');
  const abBefore = abTrack.framesDecoded, abFreezes = abTrack.freezeCount || 0;
  const mark = await pages[2].evaluate(() => window.hudong.events.length);
  const t0 = Date.now();
  nodes[2].proc.kill('SIGKILL');
  await until(pages[2], () => ({ s: window.hudong.state, n: window.hudong.room && window.hudong.room.node && window.hudong.room.node.id }),
    (v) => v.s === 'connected' && v.n && v.n !== 'n3', 10000, 'pc rejoined on a live node');
  const tJoined = Date.now() - t0;
  const ev = await pages[2].evaluate((m) => window.hudong.events.slice(m), mark);
  const rec = ev.find((e) => e.type === 'reconnected');
  /* pc's subscriber PC is new since the rejoin: its counts start from zero (pa's and pb's track sids stay) */
  await until(pages[2], remoteTracks, (t) => sees('pa', 5)(t) && sees('pb', 5)(t), 10000, 'pc decoding pa and pb again');
  const tCsees = Date.now() - t0;
  await until(pages[0], remoteTracks, sees('pc', 5, oldC), 10000, 'pa decoding pc again');
  await until(pages[1], remoteTracks, sees('pc', 5, oldC), 10000, 'pb decoding pc again');
  const tAll = Date.now() - t0;
  const node = await pages[2].evaluate(() => window.hudong.room.node.id);
  console.log(`# measured: kill -9 n3 -> pc joined again on ${node} after ${tJoined} ms (reconnected event: ` +
    `${rec ? rec.ms : '?'} ms), pc decoding pa+pb after ${tCsees} ms, everyone decoding everyone after ${tAll} ms`);
  // pa and pb never lost each other
  const abAfter = await until(pages[0], remoteTracks, (t) => t.some((x) => x.name === 'pb' && x.kind === 'video' && x.framesDecoded > abBefore + 15),
    5000, 'pa decoding pb after the kill').then((t) => t.find((x) => x.name === 'pb' && x.kind === 'video'));
  assert.equal(abAfter.freezeCount || 0, abFreezes, `pa's video of pb did not freeze through the kill (${abBefore} -> ${abAfter.framesDecoded} frames)`);
  assert.ok(tAll < 15000, `recovered within 15 s (${tAll} ms)`);
  assert.deepEqual(problems.filter((p) => /pageerror/.test(p)), [], 'no uncaught page errors');
});
