// Interop: GStreamer webrtcbin publishes VP8 + Opus with WHIP (test_gstreamer.py
// --publish), Debian Chromium plays it with WHEP through `hudong serve`. The
// viewer must decode >= 100 video frames and receive audio within 15 s; when the
// publisher stops it DELETEs its session and the node ends up with none.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { closeBrowser, launchBrowser, metrics, root, sleep, startServer, stopServer, waitFor } from './lib.mjs';

const python = process.env.HUDONG_GST_PYTHON || '/usr/bin/python3';
const script = path.join(root, 'tests/e2e/test_gstreamer.py');

let srv, browser;
before(async () => { srv = await startServer(); browser = await launchBrowser(); });
after(async () => {
  await closeBrowser(browser);
  const code = await stopServer(srv);
  if (code !== 0) console.error(srv.log());
  assert.equal(code, 0, 'hudong serve exits 0 on SIGTERM');
});

// Starts the GStreamer publisher; resolves once it printed PUBLISHING (connected).
function startGstPublisher(room) {
  const proc = spawn(python, [script, '--publish', srv.base, room], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ready = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`GStreamer publisher not connected within 20 s:\n${out}`)), 20000);
    const onData = (d) => {
      out += d;
      if (/^PUBLISHING /m.test(out)) { clearTimeout(t); resolve(); }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', (d) => { out += d; });
    proc.on('exit', (c) => { clearTimeout(t); reject(new Error(`GStreamer publisher exited with ${c}:\n${out}`)); });
  });
  const exited = new Promise((resolve) => proc.on('exit', (c) => resolve(c)));
  return { proc, ready, exited, output: () => out };
}

test('GStreamer WHIP (VP8 + Opus) -> Chromium WHEP', async () => {
  const room = 'e2e-gst-chromium';
  const pub = startGstPublisher(room);
  try {
    await pub.ready.catch((e) => { throw new Error(`${e.message}\nserver log:\n${srv.log()}`); });
    const viewer = await browser.newPage();
    await viewer.goto(`${srv.base}/play.html?room=${room}&autostart=1`);
    const t0 = Date.now();
    const r = await waitFor(viewer, () => window.hudong && window.hudong.stats,
      (s) => s && s.in_video && s.in_video.framesDecoded >= 100 && s.in_audio && s.in_audio.packetsReceived > 0,
      15000, 'Chromium decoding 100 frames + audio from GStreamer').catch(async (e) => {
      const err = await viewer.evaluate(() => window.hudong && window.hudong.error).catch(() => '');
      throw new Error(`${e.message}; page error: ${err}\npublisher output:\n${pub.output()}\nserver log:\n${srv.log()}`);
    });
    console.log(`Chromium decoded ${r.in_video.framesDecoded} frames from GStreamer in ${Date.now() - t0} ms:`,
      JSON.stringify(r.in_video));
    assert.match(r.in_video.codec || '', /VP8/i);
    assert.match((r.in_audio && r.in_audio.codec) || 'opus', /opus/i);

    await viewer.click('#stop');
    pub.proc.kill('SIGTERM'); // the publisher DELETEs its session, then exits 0
    const code = await Promise.race([pub.exited, sleep(10000).then(() => 'timeout')]);
    assert.equal(code, 0, `GStreamer publisher exit status (output:\n${pub.output()})`);
    // the publisher DELETEd before it exited, but the viewer's DELETE (started by the click) may
    // still be on its way: wait (bounded) for both sessions to end rather than a fixed 300 ms
    let m = await metrics(srv.base);
    for (let i = 0; i < 50 && (m['hudong_sessions{kind="publish"}'] || m['hudong_sessions{kind="play"}']); i++) {
      await sleep(100);
      m = await metrics(srv.base);
    }
    assert.equal(m['hudong_sessions{kind="publish"}'], 0);
    assert.equal(m['hudong_sessions{kind="play"}'], 0);
    await viewer.close();
  } finally {
    if (pub.proc.exitCode === null) pub.proc.kill('SIGKILL');
  }
});
