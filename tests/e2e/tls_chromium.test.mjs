// TLS built in (issue 12 item 14): `hudong serve --dev --tls` generates a
// self-signed certificate; two Chromium pages open the room page over https://
// (the certificate accepted as a user would once), their signaling WebSocket is
// wss:// (web/rtc.js derives it from the page's URL), and each decodes the
// other's camera and receives its audio. Plain http:// on that port is refused
// with a message saying to use https://.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { freePort, launchChromium, sleep, waitFor } from './lib.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const hudongBin = process.env.HUDONG_BIN || path.join(root, 'build', 'hudong');
let proc, log = '', base, browser, port;

before(async () => {
  port = await freePort();
  const rtc = await freePort('127.0.0.1', 3);
  proc = spawn(hudongBin, ['serve', '--dev', '--tls', '--listen', `127.0.0.1:${port}`, '--rtc-port', String(rtc),
    '--rtm-db', ':memory:'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  for (let i = 0; i < 100 && !log.includes('serving https://'); i++) {
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  assert.ok(log.includes(`serving https://127.0.0.1:${port}`), `node did not start with TLS:\n${log}`);
  base = `https://127.0.0.1:${port}`;
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    const code = await new Promise((resolve) => {
      const t = setTimeout(() => { proc.kill('SIGKILL'); resolve(-9); }, 5000);
      proc.on('exit', (c) => { clearTimeout(t); resolve(c); });
    });
    if (code !== 0) console.error(`hudong serve exited with ${code}:\n${log}`);
  }
});

const remoteTracks = () => window.hudong.stats().then((s) => (s ? s.tracks : []));
const hears = (tracks, from) =>
  tracks.some((t) => t.name === from && t.kind === 'video' && t.framesDecoded > 20) &&
  tracks.some((t) => t.name === from && t.kind === 'audio' && t.packetsReceived > 0);

test('two Chromium pages hold a call over https:// and wss://', async () => {
  const sockets = [];
  const pages = [];
  for (const name of ['tlsA', 'tlsB']) {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${base}/room.html?room=tls&name=${name}&autojoin=1&w=320&h=180&fps=15`);
    assert.equal(await page.evaluate(() => window.isSecureContext), true, 'the page is a secure context');
    pages.push(page);
  }
  try {
    await waitFor(pages[0], remoteTracks, (t) => hears(t, 'tlsB'), 30000, 'tlsA hears tlsB');
    await waitFor(pages[1], remoteTracks, (t) => hears(t, 'tlsA'), 30000, 'tlsB hears tlsA');
  } catch (e) {
    throw new Error(`${e.message}\nsockets: ${sockets.join(' ')}\nserver log:\n${log.split('\n').slice(-40).join('\n')}`);
  }
  const rtc = sockets.filter((u) => u.includes('/rtc'));
  assert.ok(rtc.length >= 2 && rtc.every((u) => u.startsWith(`wss://127.0.0.1:${port}/rtc`)),
    `signaling over wss:// (${sockets.join(' ')})`);
  const r = await fetch(`http://127.0.0.1:${port}/healthz`).then((x) => x.text()).catch((e) => String(e));
  assert.match(r, /use https:\/\//, 'plain http on the TLS port is told to use https');
});
