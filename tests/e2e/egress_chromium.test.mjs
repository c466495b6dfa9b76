// Egress with Chromium (issue 18 item 6, docs/egress.md):
//  1. Room composite of 2 Chromium publishers (fake camera + microphone) and
//     1 `hudong pub` (test pattern + tone), pushed over RTMP to a real RTMP
//     server started here (`ffmpeg -listen 1` on a free port, writing what it
//     receives to FLV): ffprobe shows H.264 640x360 at 30 fps + AAC and the
//     duration; a decoded frame of the 2x2 grid shows three participant
//     regions and the empty fourth cell in the background colour.
//  2. RTMP ingest: an OBS-like `ffmpeg -f flv` publish (H.264 + AAC) to nginx
//     with libnginx-mod-rtmp (on_publish asks the node) is watched in a
//     Chromium room: video frames decoded and audio received from "obs" and
//     "obs2", both x264 without B-frames, a keyframe every 2 s. obs2 is Main
//     profile: passed through as H.264 4dxxxx, which Chromium takes and
//     decodes (the time from opening the page to its first decoded frame is
//     printed: a new viewer of a passthrough waits for the next IDR). obs is
//     High: passed through as 64xxxx, but Debian's Chromium receives no High
//     (its H.264 receive profiles are 42001f, 42e01f, 4d001f, f4001f), so its
//     answer refuses the track, the node tells the ingest (track_refused) and
//     the ingest switches obs to VP8, which Chromium then decodes (with a
//     Chromium that receives High, obs stays passed through).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, hudongBin, launchChromium, sleep, startServer, stopServer, waitFor } from './lib.mjs';

let srv, browser, tmp, rport;
const kids = [];
const W = 640, H = 360;

function token(room, identity, ...grants) {
  const r = spawnSync(hudongBin, ['token', '--key', 'devkey', '--secret', 'devsecret', '--room', room, '--identity', identity,
    ...grants], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

function proc(cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  kids.push(p);
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  p.stdout.on('data', () => {});
  p.done = new Promise((resolve) => p.on('exit', (code, sig) => resolve({ code, sig, err })));
  p.log = () => err;
  return p;
}

async function api(method, p, tok, body) {
  const r = await fetch(`${srv.base}${p}`, {
    method, headers: { Authorization: `Bearer ${tok}` }, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* text */ }
  return { status: r.status, json, text };
}

before(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'hudong-egress-e2e-'));
  rport = await freePort();
  const cfg = path.join(tmp, 'hudong.json');
  writeFileSync(cfg, JSON.stringify({ egress_dir: path.join(tmp, 'rec'), egress_min_free_mb: 1,
    ingest_rtmp_url: `rtmp://127.0.0.1:${rport}/live` }));
  srv = await startServer(['--config', cfg, '--media-workers', '1']);
  browser = await launchChromium();
});

after(async () => {
  for (const k of kids) if (k.exitCode === null) k.kill('SIGKILL');
  if (browser) await browser.close().catch(() => {});
  await stopServer(srv);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function probe(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-show_entries',
    'format=duration:stream=codec_type,codec_name,width,height,r_frame_rate', '-of', 'json', file], { encoding: 'utf8' });
  return r.status === 0 ? JSON.parse(r.stdout) : null;
}

// luma of one frame at t seconds (W*H bytes)
function frameGray(file, t) {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-ss', String(t), '-i', file, '-frames:v', '1', '-f', 'rawvideo',
    '-pix_fmt', 'gray', '-'], { maxBuffer: 16 << 20 });
  return r.stdout && r.stdout.length === W * H ? r.stdout : null;
}

function spread(img, x0, y0, x1, y1) {
  let lo = 255, hi = 0, sum = 0, n = 0;
  for (let y = y0; y < y1; y += 2) for (let x = x0; x < x1; x += 2) {
    const v = img[y * W + x];
    lo = Math.min(lo, v); hi = Math.max(hi, v); sum += v; n++;
  }
  return { mean: sum / n, spread: hi - lo };
}

test('composite of 2 Chromium publishers + hudong pub to a real RTMP server', async () => {
  const room = 'show';
  const flv = path.join(tmp, 'received.flv');
  const rtmpPort = await freePort();
  const recv = proc('ffmpeg', ['-v', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${rtmpPort}/live/key`, '-c', 'copy',
    '-y', flv]);
  const ctxs = [];
  for (const name of ['chrome1', 'chrome2']) {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    await page.goto(`${srv.base}/room.html?room=${room}&name=${name}&autojoin=1&w=320&h=240&fps=15`);
    await waitFor(page, () => window.hudong.state, (s) => s === 'connected', 15000, `${name} joined`);
    ctxs.push(ctx);
  }
  const pub = proc(hudongBin, ['pub', '--url', `ws://127.0.0.1:${srv.httpPort}/rtc`, '--token',
    token(room, 'sdkpub', '--publish'), '--pattern', '320x240@30', '--tone', '440', '--duration', '60', '--quiet']);
  await sleep(2000);
  const rec = token(room, 'ops', '--record');
  const r = await api('POST', '/admin/egress', rec, { room, kind: 'composite', layout: 'grid', size: `${W}x${H}`,
    outputs: [`rtmp://127.0.0.1:${rtmpPort}/live/key`] });
  assert.equal(r.status, 201, r.text);
  const id = r.json.egress_id;
  let j;
  for (let i = 0; i < 60; i++) {
    j = (await api('GET', `/admin/egress/${id}`, rec)).json;
    if (j.outputs?.[0]?.state === 'active' && j.frames > 150) break;
    await sleep(250);
  }
  assert.equal(j.outputs?.[0]?.state, 'active', JSON.stringify(j));
  await sleep(4000);
  const d = await api('DELETE', `/admin/egress/${id}`, rec);
  assert.equal(d.status, 200, d.text);
  for (let i = 0; i < 60; i++) {
    j = (await api('GET', `/admin/egress/${id}`, rec)).json;
    if (j.state === 'complete' || j.state === 'failed') break;
    await sleep(250);
  }
  assert.equal(j.state, 'complete', JSON.stringify(j));
  const rr = await Promise.race([recv.done, sleep(10000).then(() => null)]);
  if (!rr) recv.kill('SIGTERM');
  assert.ok(existsSync(flv), `the RTMP server wrote nothing: ${recv.log()}`);
  const info = probe(flv);
  assert.ok(info, 'ffprobe reads what the RTMP server received');
  console.log('received over RTMP:', JSON.stringify(info));
  const v = info.streams.find((s) => s.codec_type === 'video');
  const a = info.streams.find((s) => s.codec_type === 'audio');
  assert.equal(v?.codec_name, 'h264');
  assert.equal(v.width, W);
  assert.equal(v.height, H);
  assert.equal(v.r_frame_rate, '30/1');
  assert.equal(a?.codec_name, 'aac');
  const dur = Number(info.format.duration);
  assert.ok(dur > 3 && dur < j.duration_ms / 1000 + 1, `duration ${dur} s of ${j.duration_ms} ms`);
  // 3 participants: a 2x2 grid of 320x180 cells; the 4th (bottom right) is empty
  const img = frameGray(flv, Math.max(0, dur - 1.5));
  assert.ok(img, 'a frame decodes');
  const cells = [[0, 0], [320, 0], [0, 180], [320, 180]].map(([x, y]) => spread(img, x + 60, y + 30, x + 260, y + 150));
  console.log('cells (mean, spread):', JSON.stringify(cells));
  assert.equal(cells.filter((c) => c.spread > 40).length, 3, 'three cells show a participant');
  assert.ok(Math.abs(cells[3].mean - 32) < 8 && cells[3].spread < 16, 'the empty cell is the background colour');
  pub.kill('SIGINT');
  for (const c of ctxs) await c.close();
});

test('RTMP ingest (ffmpeg -f flv through nginx-rtmp) is watched in a Chromium room', async () => {
  const mod = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
  assert.ok(existsSync(mod), 'libnginx-mod-rtmp is installed (tools/install-deps.sh)');
  const conf = path.join(tmp, 'nginx.conf');
  writeFileSync(conf, `load_module ${mod};
daemon off;
master_process off;
worker_processes 1;
error_log ${tmp}/nginx.log info;
pid ${tmp}/nginx.pid;
events { worker_connections 64; }
rtmp { server { listen 127.0.0.1:${rport};
  application live { live on; allow play 127.0.0.1; deny play all;
    on_publish http://127.0.0.1:${srv.httpPort}/api/rtmp/on_publish;
    on_publish_done http://127.0.0.1:${srv.httpPort}/api/rtmp/on_publish_done; } } }
`);
  const nginx = proc('nginx', ['-c', conf, '-p', tmp, '-e', path.join(tmp, 'nginx.log')]);
  await sleep(500);
  const room = 'stage';
  const k = await api('POST', '/admin/ingress', token(room, 'ops', '--admin'), { room, identity: 'obs' });
  assert.equal(k.status, 201, k.text);
  const k2 = await api('POST', '/admin/ingress', token(room, 'ops', '--admin'), { room, identity: 'obs2' });
  assert.equal(k2.status, 201, k2.text);
  // obs: x264 High without B-frames: passed through, refused by Chromium,
  // switched to VP8; obs2: x264 Main without B-frames: passed through as
  // H.264 Main (docs/egress.md "RTMP ingest")
  const ffArgs = (url, prof) => ['-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=30', '-f', 'lavfi', '-i',
    'sine=frequency=1000:sample_rate=48000', '-t', '40', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-preset', 'veryfast',
    '-g', '60', ...prof, '-c:a', 'aac', '-f', 'flv', url];
  const ff = proc('ffmpeg', ffArgs(k.json.url, ['-profile:v', 'high', '-bf', '0']));
  const ff2 = proc('ffmpeg', ffArgs(k2.json.url, ['-profile:v', 'main', '-bf', '0']));
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const pageLog = [];
  page.on('console', (msg) => pageLog.push(`${msg.type()}: ${msg.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  await page.goto(`${srv.base}/room.html?room=${room}&name=viewer&autojoin=1&w=320&h=180&fps=15`);
  const t0 = Date.now();
  let firstFrameMs = -1;
  waitFor(page, () => window.hudong.stats().then((s) => (s ? s.tracks : [])),
    (t) => t.some((x) => x.identity === 'obs2' && x.kind === 'video' && x.framesDecoded > 0), 30000, 'first frame')
    .then(() => { firstFrameMs = Date.now() - t0; }, () => {});
  let tracks;
  try {
    tracks = await waitFor(page, () => window.hudong.stats().then((s) => (s ? s.tracks : [])),
      (t) => ['obs', 'obs2'].every((id) => t.some((x) => x.identity === id && x.kind === 'video' && x.framesDecoded > 30) &&
        t.some((x) => x.identity === id && x.kind === 'audio' && x.packetsReceived > 50)),
      30000, 'Chromium decoding both RTMP ingests');
  } catch (e) {
    const diag = await page.evaluate(() => JSON.stringify({ error: window.hudong.error, state: window.hudong.state,
      events: window.hudong.events, timings: window.hudong.room && window.hudong.room.timings,
      sub: window.hudong.room && window.hudong.room.sub && window.hudong.room.sub.signalingState,
      subConn: window.hudong.room && window.hudong.room.sub && window.hudong.room.sub.connectionState,
      subMids: window.hudong.room && [...window.hudong.room._subMids.keys()],
      trs: window.hudong.room && window.hudong.room.sub && window.hudong.room.sub.getTransceivers().map((t) => [t.mid, t.currentDirection, t.direction]) })).catch((x) => String(x));
    throw new Error(`${e.message}\npage: ${diag}\npage console:\n${pageLog.join('\n')}\nffmpeg: ${ff.log()} ${ff2.log()}\nserver log:\n${srv.log().split('\n').slice(-80).join('\n')}`);
  }
  const v = tracks.find((x) => x.identity === 'obs' && x.kind === 'video');
  const v2 = tracks.find((x) => x.identity === 'obs2' && x.kind === 'video');
  console.log(`Chromium decoded ${v.framesDecoded} frames of the High ingest switched to VP8, ${v2.framesDecoded} of ` +
    `the H.264 Main passthrough (first frame ${firstFrameMs} ms after the page was opened)`);
  const eg = await api('GET', '/admin/egress', token(room, 'ops', '--admin'));
  const in1 = eg.json.egresses.find((e) => e.kind === 'ingest' && e.identity === 'obs');
  const in2 = eg.json.egresses.find((e) => e.kind === 'ingest' && e.identity === 'obs2');
  assert.equal(in2?.ingest?.passthrough, true, JSON.stringify(in2?.ingest)); // Chromium took Main: no switch
  assert.match(in2.ingest.video_mode, /Main \(profile-level-id 4d/);
  // obs (High): switched to VP8 by this Chromium's refusal, unless it receives High
  const recvHigh = await page.evaluate(() => RTCRtpReceiver.getCapabilities('video').codecs
    .some((c) => /h264/i.test(c.mimeType) && /profile-level-id=64/i.test(c.sdpFmtpLine || '')));
  if (recvHigh) {
    assert.equal(in1?.ingest?.passthrough, true, JSON.stringify(in1?.ingest));
  } else {
    assert.equal(in1?.ingest?.passthrough, false, JSON.stringify(in1?.ingest));
    assert.match(in1.ingest.video_mode, /cannot decode H\.264 64/);
  }
  const parts = await api('GET', `/admin/rooms/${room}/participants`, token(room, 'ops', '--admin'));
  const codecs = {};
  for (const p of parts.json.participants) for (const t of p.tracks) codecs[`${p.identity}/${t.kind}`] = t.codec;
  assert.equal(codecs['obs2/video'], 'H264', JSON.stringify(codecs));
  assert.equal(codecs['obs/video'], 'VP8', JSON.stringify(codecs));
  ff.kill('SIGINT');
  ff2.kill('SIGINT');
  nginx.kill('SIGTERM');
  await ctx.close();
});
