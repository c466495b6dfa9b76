// REMB bitrate cap (draft-alvestrand-rmcat-remb; docs/operations.md
// max_publish_bitrate_kbps): one Chromium page (web/room.html) publishes a
// 640x360 camera into a room, first on a node started with
// --max-publish-bitrate 300, then on a node without a cap. Chromium's outbound
// video bitrate, from getStats bytesSent over 5 s after a warm-up, must stay
// under 1.2 x 300 kbps with the cap and go above that without it (so the
// check can fail: the uncapped run shows the camera would send more).
// The camera is a Y4M file of random noise (Chromium's fake capture device
// loops it): incompressible, so the encoder uses whatever rate it is allowed.
// The default animated test pattern compresses to ~200 kbps, below any cap worth testing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchChromium, metrics, noiseY4m, sleep, startServer, stopServer, waitFor } from './lib.mjs';

const CAP_KBPS = 300;
let browser, dir;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hudong-remb-'));
  const y4m = path.join(dir, 'noise.y4m');
  noiseY4m(y4m, 640, 360, 30);
  browser = await launchChromium([`--use-file-for-fake-video-capture=${y4m}`]);
});
after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const localVideo = () => window.hudong.stats().then((s) => (s ? s.local.find((t) => t.kind === 'video') : null));

// Joins a page to a fresh node, lets the encoder settle, then measures 5 s.
async function measure(args) {
  const srv = await startServer(args);
  const ctx = await browser.newContext();
  try {
    const page = await ctx.newPage();
    await page.goto(`${srv.base}/room.html?room=remb&name=pub&autojoin=1&nomic=1&w=640&h=360&fps=30`);
    await waitFor(page, localVideo, (t) => t && t.sid && t.bytesSent > 0, 15000, 'camera published');
    await sleep(4000); // BWE ramp-up (or the cap) takes hold
    const a = await page.evaluate(localVideo);
    const t0 = Date.now();
    await sleep(5000);
    const b = await page.evaluate(localVideo);
    const kbps = ((b.bytesSent - a.bytesSent) * 8) / (Date.now() - t0);
    const m = await metrics(srv.base);
    await page.click('#leave');
    return { kbps, remb: m['hudong_rtcp_sent_total{type="remb"}'] };
  } finally {
    await ctx.close().catch(() => {});
    await stopServer(srv);
  }
}

test(`REMB caps a Chromium publisher at max_publish_bitrate_kbps (${CAP_KBPS})`, async () => {
  const capped = await measure(['--max-publish-bitrate', String(CAP_KBPS)]);
  console.log(`  with --max-publish-bitrate ${CAP_KBPS}: video ${capped.kbps.toFixed(0)} kbps, ${capped.remb} REMB sent`);
  const free = await measure([]);
  console.log(`  without a cap: video ${free.kbps.toFixed(0)} kbps, ${free.remb} REMB sent`);
  assert.ok(capped.remb >= 5, `the capped node sent REMB about once a second (${capped.remb})`);
  assert.equal(free.remb, 0, 'no REMB without a cap');
  assert.ok(capped.kbps > 50, `the capped publisher still sends video (${capped.kbps.toFixed(0)} kbps)`);
  assert.ok(capped.kbps < 1.2 * CAP_KBPS, `capped: ${capped.kbps.toFixed(0)} kbps < ${1.2 * CAP_KBPS}`);
  assert.ok(free.kbps > 1.2 * CAP_KBPS, `uncapped: ${free.kbps.toFixed(0)} kbps > ${1.2 * CAP_KBPS} (the cap is what held it)`);
});
