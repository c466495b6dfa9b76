// Shared helpers for the e2e tests: start `hudong serve --dev` on free ports,
// launch Debian's Chromium with fake media, poll page state.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '../..');
export const hudongBin = process.env.HUDONG_BIN || path.join(root, 'build/hudong');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The kernel's ephemeral range: bind(0) and outgoing connections take theirs from it.
function ephemeralRange() {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch { /* not Linux: the usual default */ }
  return [32768, 60999];
}

function freeOn(host, port) {
  return new Promise((resolve) => {
    const t = net.createServer();
    t.once('error', () => resolve(false));
    t.listen(port, host, () => {
      const u = createSocket('udp4');
      u.once('error', () => { u.close(); t.close(() => resolve(false)); });
      u.bind(port, host, () => u.close(() => t.close(() => resolve(true))));
    });
  });
}

// A port free on TCP and UDP at host, with the next span ports free too (media
// worker i listens on rtc_port + i), picked at random outside the kernel's
// ephemeral range: a number bind(0) handed out and we released can go to
// another process's bind(0) or outgoing connection before the server binds it
// (tests/integration/hdtest.py free_port, the same rule for the Python tests).
export async function freePort(host = '127.0.0.1', span = 0) {
  const [lo, hi] = ephemeralRange();
  const ranges = [[10000, lo - 1], [hi + 1, 65535]].map(([a, b]) => [a, b - span]).filter(([a, b]) => b > a);
  if (!ranges.length) ranges.push([1024, 65535 - span]);
  for (let i = 0; i < 500; i++) {
    const [a, b] = ranges[Math.floor(Math.random() * ranges.length)];
    const p = a + Math.floor(Math.random() * (b - a + 1));
    let ok = true;
    for (let q = p; q <= p + span && ok; q++) ok = await freeOn(host, q);
    if (ok) return p;
  }
  throw new Error(`no free port outside the ephemeral range ${lo}-${hi}`);
}

// ports: {httpPort, rtcPort} to start again on the ports of an earlier server
// (a node restart, tests/e2e/room_reconnect_chromium.test.mjs); fresh ones otherwise.
// Fresh ports are retried on "already in use" all the same: another test may
// have picked the same number a moment before.
export async function startServer(extraArgs = [], ports = null) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServerOnce(extraArgs, ports);
    } catch (e) {
      if (ports || attempt >= 4 || !/already in use/i.test(String(e.message))) throw e;
    }
  }
}

async function startServerOnce(extraArgs, ports) {
  const httpPort = ports ? ports.httpPort : await freePort();
  const rtcPort = ports ? ports.rtcPort : await freePort('127.0.0.1', 3);
  // HUDONG_E2E_SERVE_ARGS: extra `hudong serve` arguments for every test's node
  // (e.g. "--media-workers 2 --media-shard-min 1" to run a test with shards)
  const envArgs = (process.env.HUDONG_E2E_SERVE_ARGS || '').split(' ').filter(Boolean);
  const proc = spawn(hudongBin, ['serve', '--dev', '--listen', `127.0.0.1:${httpPort}`, '--rtc-port', String(rtcPort), ...envArgs, ...extraArgs], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://127.0.0.1:${httpPort}`;
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) return { proc, base, httpPort, rtcPort, log: () => log };
    } catch { /* not up yet */ }
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`hudong serve did not start:\n${log}`);
}

// A real redis-server (Debian's) on a free port for the cluster tests, in a
// fresh temporary directory with persistence off. A free UDP port can still
// be taken on TCP (another process's outgoing connection uses the same
// ephemeral range), so a server that exits at once is retried on a new port;
// its own log says why in the error. Returns {proc, port, url, dir, stop()}.
export async function startRedis() {
  let lastLog = '';
  for (let attempt = 1; attempt <= 5; attempt++) {
    const dir = mkdtempSync(path.join(tmpdir(), 'hd-e2e-redis-'));
    const port = await freePort();
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    let spawnError = null;
    proc.on('error', (e) => { spawnError = e; });
    const stop = () => {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    };
    for (let i = 0; i < 300 && proc.exitCode === null && !spawnError; i++) {
      const ok = await new Promise((r) => {
        const s = net.connect(port, '127.0.0.1', () => { s.end(); r(true); });
        s.on('error', () => r(false));
      });
      if (ok && proc.exitCode === null) return { proc, port, url: `redis://127.0.0.1:${port}`, dir, stop };
      await sleep(50);
    }
    if (spawnError) {
      stop();
      throw new Error(`cannot run redis-server (${spawnError.message}): install Debian's redis-server (tools/install-deps.sh does)`);
    }
    lastLog = log;
    stop();
  }
  throw new Error(`redis-server did not start in 5 attempts; its last log:\n${lastLog}`);
}

export async function stopServer(srv) {
  if (!srv || srv.proc.exitCode !== null) return srv ? srv.proc.exitCode : 0;
  srv.proc.kill('SIGTERM');
  const code = await new Promise((resolve) => {
    const t = setTimeout(() => { srv.proc.kill('SIGKILL'); resolve(-9); }, 5000);
    srv.proc.on('exit', (c) => { clearTimeout(t); resolve(c); });
  });
  return code;
}

// A Y4M file of random frames: a fake camera whose video no encoder can
// compress, so a sender runs at its bitrate caps (for bandwidth tests).
export function noiseY4m(file, w, h, frames, fps = 30) {
  const parts = [Buffer.from(`YUV4MPEG2 W${w} H${h} F${fps}:1 Ip A1:1 C420jpeg\n`)];
  for (let i = 0; i < frames; i++) parts.push(Buffer.from('FRAME\n'), randomBytes((w * h * 3) / 2));
  writeFileSync(file, Buffer.concat(parts));
}

const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
  '--disable-quic', '--autoplay-policy=no-user-gesture-required',
];

export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'hudong-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: chromiumArgs,
  });
  ctx.__profile = profile;
  return ctx;
}

// One Chromium process for several isolated contexts (browser.newContext()):
// lighter than several launchBrowser() when many pages hold a call.
export async function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [...chromiumArgs, ...extraArgs],
  });
}

export async function closeBrowser(ctx) {
  if (!ctx) return;
  await ctx.close().catch(() => {});
  rmSync(ctx.__profile, { recursive: true, force: true });
}

// Polls page.evaluate(fn) until pred(value) or timeout; returns the last value.
export async function waitFor(page, fn, pred, timeoutMs, what) {
  const t0 = Date.now();
  let v;
  while (Date.now() - t0 < timeoutMs) {
    v = await page.evaluate(fn);
    if (pred(v)) return v;
    await sleep(200);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(v)}`);
}

export async function metrics(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// A dev token (hudong serve --dev) for identity in room.
export async function devToken(base, room, identity) {
  const r = await fetch(`${base}/api/dev-token?room=${room}&identity=${identity}`);
  return (await r.json()).token;
}

// `hudong netem` in front of toPort with a control endpoint: {port, controlUrl,
// impair(body), log(), stop()}. Up when its control endpoint answers; started
// again on fresh ports if it does not within 3 s (another process may have
// taken a port meanwhile, or the machine is loaded).
export async function startNetem(toPort, args) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const control = await freePort();
    const proc = spawn(hudongBin, ['netem', '--listen', `127.0.0.1:${port}`, '--to', `127.0.0.1:${toPort}`,
      '--control', `127.0.0.1:${control}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    const relay = {
      port,
      controlUrl: `http://127.0.0.1:${control}`,
      log: () => log,
      impair: async (body) => {
        const r = await fetch(`http://127.0.0.1:${control}/impair`, { method: 'POST', body: JSON.stringify(body) });
        if (r.status !== 200) throw new Error(`hudong netem /impair: ${r.status} ${await r.text()}`);
      },
      stop: () => new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.on('exit', resolve);
        proc.kill('SIGTERM');
      }),
    };
    for (let i = 0; i < 15 && proc.exitCode === null; i++) {
      try {
        if ((await fetch(`${relay.controlUrl}/stats`)).ok) return relay;
      } catch { /* not up yet */ }
      await sleep(200);
    }
    await relay.stop();
    if (attempt >= 4) throw new Error(`hudong netem never answered on its control endpoint: ${log.slice(-500)}`);
  }
}

// One WHIP publisher or WHEP viewer of video in a fresh page of browser, on
// the node at base; relayPort: the node's candidate is pointed at that relay
// instead. publish (WHIP only): {width, height, sendEncodings, codec} where
// codec is a mimeType pattern to prefer (e.g. 'vp8'). Returns {ctx, page,
// snap()} where snap() reads the page's video stats: inbound (framesDecoded,
// keyFramesDecoded, frameHeight, freezeCount, totalFreezesDuration,
// bytesReceived, pliCount) and outbound (layers by rid; scalabilityMode,
// framesEncoded of the last encoding).
export async function videoSession(browser, base, kind, room, relayPort, publish = {}) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(`${base}/index.html`);
  const token = await devToken(base, room, `${kind}-${Math.random().toString(36).slice(2, 8)}`);
  await page.evaluate(async ({ kind, room, token, relayPort, publish }) => {
    const pc = new RTCPeerConnection();
    window.pc = pc;
    if (kind === 'whip') {
      const ms = await navigator.mediaDevices.getUserMedia({
        video: { width: publish.width || 640, height: publish.height || 360, frameRate: 30 },
      });
      const tr = pc.addTransceiver(ms.getVideoTracks()[0], { direction: 'sendonly', sendEncodings: publish.sendEncodings });
      if (publish.codec) {
        const re = new RegExp(publish.codec, 'i');
        tr.setCodecPreferences(RTCRtpSender.getCapabilities('video').codecs.filter((c) => re.test(c.mimeType)));
      }
    } else {
      pc.ontrack = (e) => {
        const v = document.createElement('video');
        v.autoplay = true;
        v.muted = true;
        v.srcObject = new MediaStream([e.track]);
        document.body.appendChild(v);
      };
      pc.addTransceiver('video', { direction: 'recvonly' });
    }
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
    const r = await fetch(`/${kind}/${room}`, {
      method: 'POST', headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
    });
    const answer = await r.text();
    if (r.status !== 201) throw new Error(`${kind}: ${r.status} ${answer}`);
    const sdp = relayPort ? answer.replace(/(a=candidate:\S+ \d+ udp \d+ 127\.0\.0\.1 )\d+/gi, `$1${relayPort}`) : answer;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    window.snap = async () => {
      const out = { t: performance.now() };
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video')
          Object.assign(out, { framesDecoded: s.framesDecoded, keyFramesDecoded: s.keyFramesDecoded,
            frameHeight: s.frameHeight, freezeCount: s.freezeCount, totalFreezesDuration: s.totalFreezesDuration,
            bytesReceived: s.bytesReceived, pliCount: s.pliCount });
        if (s.type === 'outbound-rtp' && s.kind === 'video') {
          (out.layers = out.layers || {})[s.rid] = { height: s.frameHeight, bytesSent: s.bytesSent, active: s.active };
          Object.assign(out, { scalabilityMode: s.scalabilityMode, framesEncoded: s.framesEncoded });
        }
      });
      return out;
    };
  }, { kind, room, token, relayPort, publish });
  return { ctx, page, snap: () => page.evaluate(() => window.snap()) };
}

// n nodes of one cluster on a fresh redis-server, started and waiting until
// node 1 routes to all n: {redis, nodes}. extra(i): more `hudong serve`
// arguments for node i (0-based). stopCluster undoes it.
export async function startCluster(n, extra = () => []) {
  const redis = await startRedis();
  const nodes = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await startServer(['--redis', redis.url, '--node-id', `n${i + 1}`, ...extra(i)]));
    const tok = await devToken(nodes[0].base, 'probe', 'x');
    for (let i = 0; ; i++) {
      const js = await (await fetch(`${nodes[0].base}/api/route?room=probe`, { headers: { Authorization: `Bearer ${tok}` } })).json();
      if (js.candidates.length === n) break;
      if (i > 60) throw new Error('the nodes do not see each other');
      await sleep(100);
    }
  } catch (e) {
    await stopCluster({ redis, nodes });
    throw e;
  }
  return { redis, nodes };
}

export async function stopCluster(c) {
  for (const n of c.nodes) await stopServer(n).catch(() => {});
  if (c.redis) c.redis.stop();
}
