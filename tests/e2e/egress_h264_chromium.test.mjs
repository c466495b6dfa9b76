// Track recording of an H.264 publisher (issue 18 item 1, docs/egress.md):
// Chromium publishes with WHIP forced to H.264 (publish.html?codec=h264,
// setCodecPreferences); a track recording writes the video to fragmented MP4
// without transcoding. ffprobe: h264 at the publisher's size, a duration that
// matches the recorder's; after kill -9 of a second recorder its MP4 still
// probes and decodes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { closeBrowser, hudongBin, launchBrowser, sleep, startServer, stopServer, waitFor } from './lib.mjs';

let srv, browser, tmp;
before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'hudong-egress-h264-'));
  const cfg = path.join(tmp, 'hudong.json');
  writeFileSync(cfg, JSON.stringify({ egress_dir: path.join(tmp, 'rec'), egress_min_free_mb: 1 }));
  srv = await startServer(['--config', cfg, '--room-empty-timeout', '0']);
  browser = await launchBrowser();
});
after(async () => {
  await closeBrowser(browser);
  await stopServer(srv);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function token(room, identity, ...grants) {
  const r = spawnSync(hudongBin, ['token', '--key', 'devkey', '--secret', 'devsecret', '--room', room, '--identity', identity,
    ...grants], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

async function api(method, p, tok, body) {
  let r;
  try {
    r = await fetch(`${srv.base}${p}`, {
      method, headers: { Authorization: `Bearer ${tok}` }, body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new Error(`${method} ${p}: ${e.message} (${e.cause?.code}); node exit ${srv.proc.exitCode} ${srv.proc.signalCode}; log:\n${srv.log().slice(-4000)}`);
  }
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, json, text };
}

function probe(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries',
    'format=duration:stream=codec_name,width,height,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
  return r.status === 0 ? JSON.parse(r.stdout) : { error: r.stderr };
}

function decodes(file) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { encoding: 'utf8' });
  return { ok: r.status === 0, err: r.stderr };
}

async function waitState(rec, id, states) {
  let j;
  for (let i = 0; i < 80; i++) {
    j = (await api('GET', `/admin/egress/${id}`, rec)).json;
    if (states.includes(j?.state)) break;
    await sleep(250);
  }
  return j;
}

test('Chromium WHIP H.264 -> track recording to fragmented MP4, kill -9 leaves a playable file', async (t) => {
  const page0 = await browser.newPage();
  await page0.goto(`${srv.base}/publish.html`);
  const canH264 = await page0.evaluate(() => RTCRtpSender.getCapabilities('video').codecs.some((c) => /h264/i.test(c.mimeType)));
  await page0.close();
  if (!canH264) { t.skip('this Chromium cannot send H.264'); return; }
  const room = 'h264rec';
  const pub = await browser.newPage();
  await pub.goto(`${srv.base}/publish.html?room=${room}&autostart=1&codec=h264`);
  await waitFor(pub, () => window.hudong.state, (s) => s === 'connected', 10000, 'publisher connected');
  await sleep(1000);
  const rec = token(room, 'ops', '--record');
  const a = await api('POST', '/admin/egress', rec, { room, kind: 'track' });
  assert.equal(a.status, 201, a.text);
  const b = await api('POST', '/admin/egress', rec, { room, kind: 'track' });
  assert.equal(b.status, 201, b.text);
  const t0 = Date.now();
  let ja, jb;
  for (let i = 0; i < 60; i++) {
    ja = (await api('GET', `/admin/egress/${a.json.egress_id}`, rec)).json;
    jb = (await api('GET', `/admin/egress/${b.json.egress_id}`, rec)).json;
    const v = (j) => (j?.files || []).find((f) => f.kind === 'video');
    if (v(ja)?.frames > 60 && v(jb)?.frames > 60) break;
    await sleep(250);
  }
  const va = (ja.files || []).find((f) => f.kind === 'video');
  assert.ok(va, `a video file is recorded: ${JSON.stringify(ja)}\n${srv.log().slice(-3000)}`);
  assert.equal(va.codec, 'h264', JSON.stringify(va));
  assert.match(va.path, /\.mp4$/);
  await sleep(3000);
  // kill -9 recorder b: its MP4 (fragments written so far) still probes and decodes
  assert.ok(Number.isInteger(jb.pid), JSON.stringify(jb));
  process.kill(jb.pid, 'SIGKILL');
  jb = await waitState(rec, b.json.egress_id, ['failed', 'complete']);
  const vb = (jb.files || []).find((f) => f.kind === 'video');
  assert.ok(vb, JSON.stringify(jb));
  const pk = probe(vb.path);
  const sk = pk.streams?.[0];
  console.log(`  killed recorder's MP4 ${vb.path}: ${JSON.stringify(pk)} (${statSync(vb.path).size} bytes; recorder said ${vb.frames} frames)`);
  assert.equal(sk?.codec_name, 'h264', JSON.stringify(pk));
  assert.ok(Number(sk.nb_read_frames) > 60, `the killed file has frames: ${JSON.stringify(pk)}`);
  const dk = decodes(vb.path);
  assert.ok(dk.ok && !/rror/.test(dk.err), dk.err);
  // stop a cleanly: duration matches what the recorder reports
  const d = await api('DELETE', `/admin/egress/${a.json.egress_id}`, rec);
  assert.equal(d.status, 200, d.text);
  const recS = (Date.now() - t0) / 1000;
  ja = await waitState(rec, a.json.egress_id, ['complete', 'failed']);
  assert.equal(ja.state, 'complete', JSON.stringify(ja));
  const vf = ja.files.find((f) => f.kind === 'video');
  const p = probe(vf.path);
  const s = p.streams?.[0];
  const dur = Number(p.format?.duration);
  console.log(`  recorded ${recS.toFixed(1)} s to ${vf.path}: ${JSON.stringify(p)}; recorder: ${vf.duration_ms} ms, ${vf.frames} frames`);
  assert.equal(s?.codec_name, 'h264', JSON.stringify(p));
  assert.ok(s.width > 0 && s.height > 0, JSON.stringify(s));
  assert.ok(Math.abs(dur - vf.duration_ms / 1000) < 0.5, `ffprobe ${dur} s vs the recorder's ${vf.duration_ms} ms`);
  assert.ok(dur > recS - 3 && dur < recS + 0.5, `duration ${dur} s covers the ${recS.toFixed(1)} s recorded`);
  assert.equal(Number(s.nb_read_frames), vf.frames, 'frames in the file = frames the recorder wrote');
  const dd = decodes(vf.path);
  assert.ok(dd.ok && !/rror/.test(dd.err), dd.err);
  await pub.close();
});
