// WHIP media across nodes (issue 15 item 2; docs/overlay.md "A room across
// nodes", WHIP publishers): a real redis-server and two `hudong serve --redis`
// nodes on 127.0.0.1. A Chromium page publishes with WHIP (web/publish.html,
// fake camera and microphone) to n1; an SDK viewer (`hudong sub`, the C SDK)
// joins the same room on n2. The WHIP publisher's media crosses the node link
// once and the viewer on n2 decodes its video and receives its audio.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { hudongBin, launchChromium, sleep, startCluster, stopCluster, waitFor } from './lib.mjs';

const ROOM = 'e2e-xwhip';
let redis, browser;
let nodes = [];

before(async () => {
  ({ redis, nodes } = await startCluster(2));
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopCluster({ redis, nodes });
});

// `hudong sub` on url for secs: its last JSON summary line
function sub(url, token, secs) {
  return new Promise((resolve, reject) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hudong-xwhip-'));
    const p = spawn(hudongBin, ['sub', '--url', url, '--token', token, '--out', dir, '--duration', String(secs), '--json', '--quiet'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('close', (code) => {
      rmSync(dir, { recursive: true, force: true });
      const lines = out.split('\n').filter((l) => l.startsWith('{'));
      if (!lines.length) return reject(new Error(`hudong sub printed no summary (exit ${code}):\n${err.slice(-2000)}`));
      resolve(JSON.parse(lines[lines.length - 1]));
    });
  });
}

test('a WHIP publisher on n1 is decoded by an SDK viewer on n2', async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${nodes[0].base}/publish.html?room=${ROOM}&autostart=1`);
  try {
    await waitFor(page, () => window.hudong.state, (s) => s === 'connected', 15000, 'WHIP publisher connected to n1');
  } catch (e) {
    throw new Error(`${e.message}\nn1 log (tail):\n${nodes[0].log().split('\n').slice(-30).join('\n')}`);
  }
  const tok = (await (await fetch(`${nodes[1].base}/api/dev-token?room=${ROOM}&identity=viewer2`)).json()).token;
  const sm = await sub(nodes[1].base, tok, 8);
  const mine = (sm.tracks || []).filter((t) => /^publisher-/.test(t.identity || ''));
  const v = mine.find((t) => t.kind === 'video');
  const a = mine.find((t) => t.kind === 'audio');
  console.log(`# measured: the viewer on n2 got ${JSON.stringify(mine.map((t) => ({ kind: t.kind, packets: t.packets,
    framesDecoded: t.framesDecoded, loss_pct: t.loss_pct })))}`);
  const why = `tracks: ${JSON.stringify(sm.tracks)}\nn2 log (tail):\n${nodes[1].log().split('\n').slice(-30).join('\n')}`;
  assert.ok(v && v.framesDecoded > 30, `the viewer on n2 decodes the WHIP publisher's video (> 30 frames)\n${why}`);
  assert.ok(a && a.packets > 100, `and receives its audio (> 100 packets)\n${why}`);
  await page.click('#stop');
});
