// The whiteboard (web/whiteboard.js, docs/whiteboard.md) in Chromium against a
// real `hudong serve --dev`:
//  1. three pages draw at the same time (strokes, shapes, text, a new page,
//     a move, an undo), each through its own `hudong netem` session at 10%
//     loss both ways (the RTM WebSocket and /api/board go over a TCP-over-UDP
//     tunnel, tests/e2e/tcp_over_udp.mjs, since netem relays UDP): all three
//     end with the node's sequence number, the same state hash and the same
//     exported SVG of every page; a fourth page joining late (snapshot + tail)
//     too; replaying the log reproduces the state. The remote stroke latency
//     (pen move on one page -> drawn on another) is printed, p50/p95.
//     A device through the C SDK (examples/wb_watch, client/wb_client.h)
//     joins too and prints the same state hash as the browsers.
//  2. the same latency on one machine without loss (the goal: p95 < 50 ms);
//     printed, not asserted (DESIGN §6: no timed assertions); then one page
//     loses its RTM session while the other draws, and refills on return.
//  3. the room page: the "Whiteboard" button opens the board as a panel; what
//     one participant draws appears on the other's.
//  4. every tool once on one page, checked in the model.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createHmac } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startServer, stopServer, launchChromium, hudongBin, freePort, sleep, waitFor } from './lib.mjs';
import { tunnelServer, tunnelClient } from './tcp_over_udp.mjs';

const ROOM = 'lesson';
let srv, browser, dir;
before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hudong-wb-'));
  srv = await startServer(['--rtm-db', path.join(dir, 'rtm.db')]);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await stopServer(srv);
  rmSync(dir, { recursive: true, force: true });
});

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN; };

async function openBoard(base, name, room = ROOM) {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] pageerror`, e.message));
  await page.goto(`${base}/whiteboard.html?room=${room}&name=${name}&identity=${name}`);
  const st = await waitFor(page, () => window.hudongBoard, (v) => v && (v.ready || v.error), 30000, `${name} board ready`);
  assert.equal(st.error, null, `${name}: ${st.error}`);
  return { ctx, page, name };
}

async function stroke(page, box, x0, y0, n, dx, dy, ms = 8) {
  await page.mouse.move(box.x + x0, box.y + y0);
  await page.mouse.down();
  for (let i = 1; i <= n; i++) {
    await page.mouse.move(box.x + x0 + i * dx, box.y + y0 + Math.sin(i / 2) * dy);
    await sleep(ms);
  }
  await page.mouse.up();
}

async function shape(page, box, tool, x0, y0, x1, y1) {
  await page.click(`button[data-tool=${tool}]`);
  await page.mouse.move(box.x + x0, box.y + y0);
  await page.mouse.down();
  await page.mouse.move(box.x + x1, box.y + y1, { steps: 4 });
  await page.mouse.up();
}

// One participant's share of the lesson: strokes, shapes and text on page 1,
// then its own extra work (a page, a move, an undo).
async function draw(p, i) {
  const box = await p.page.locator('.stage').boundingBox();
  await p.page.click(`button[data-color="${['#e03131', '#2f9e44', '#1971c2'][i]}"]`);
  await p.page.click('button[data-tool=pen]');
  for (let k = 0; k < 4; k++) await stroke(p.page, box, 40 + 300 * i, 40 + 80 * k, 25, 8, 20);
  assert.ok(box.height > 450, `the board is ${box.height} px high`);
  await shape(p.page, box, 'rect', 60 + 300 * i, 300, 200 + 300 * i, 360);
  await shape(p.page, box, ['ellipse', 'arrow', 'line'][i], 80 + 300 * i, 370, 220 + 300 * i, 440);
  await p.page.click('button[data-tool=text]');
  await p.page.mouse.click(box.x + 50 + 300 * i, box.y + 20);
  // fill + press focus the editor first: three pages share one browser, and
  // focus moves between them while they type at the same time
  await p.page.locator('textarea.txt').fill(`note from ${p.name}`);
  await p.page.locator('textarea.txt').press('Enter');
  if (i === 0) { // a second page, drawn on, while the others keep drawing on page 1
    await p.page.click('.pages button:has-text("+ Page")');
    await waitFor(p.page, () => wb.pageId !== 'p1', (v) => v, 20000, 'on page 2');
    await p.page.click('button[data-tool=pen]');
    await stroke(p.page, box, 100, 100, 30, 10, 30);
  } else if (i === 1) { // moves its rectangle with the select tool
    await p.page.click('button[data-tool=select]');
    await p.page.mouse.move(box.x + 360, box.y + 300);
    await p.page.mouse.down();
    await p.page.mouse.move(box.x + 420, box.y + 300, { steps: 5 });
    await p.page.mouse.up();
  } else { // draws one more stroke and undoes it
    await p.page.click('button[data-tool=pen]');
    await stroke(p.page, box, 700, 250, 10, 10, 5);
    await waitFor(p.page, () => wb.pending.size, (n) => n === 0, 20000, 'stroke committed');
    await p.page.evaluate(() => wb.undo());
  }
}

const snapshot = (page) => page.evaluate(() => ({
  seq: wb.model.seq, hash: wb.stateHash(), svgs: wb.model.pages.map((pg) => wb.exportSVG(pg.id)),
  pages: wb.model.pages.length, els: wb.model.pages.reduce((n, pg) => n + pg.els.length, 0),
}));

async function nodeSeq(base) {
  const t = (await (await fetch(`${base}/api/dev-token?room=${ROOM}&identity=probe`)).json()).token;
  const r = await fetch(`${base}/api/board?room=${ROOM}&board=main`, { headers: { Authorization: `Bearer ${t}` } });
  return (await r.json()).seq;
}

test('three pages through hudong netem at 10% loss: identical state, late joiner, replay', { timeout: 120000 }, async () => {
  const t0 = Date.now();
  const srvEnd = await tunnelServer(srv.httpPort);
  const relayPort = await freePort();
  let relayLog = '';
  const relay = spawn(hudongBin, ['netem', '--listen', `127.0.0.1:${relayPort}`, '--to', `127.0.0.1:${srvEnd.port}`,
    '--loss', '10', '--delay', '5', '--seed', '19'], { stdio: ['ignore', 'pipe', 'pipe'] });
  relay.stdout.on('data', (d) => { relayLog += d; });
  relay.stderr.on('data', (d) => { relayLog += d; });
  const ends = [];
  const parts = [];
  try {
    await sleep(300);
    assert.equal(relay.exitCode, null, `hudong netem exited: ${relayLog}`);
    for (const name of ['ann', 'ben', 'cat']) {
      const end = await tunnelClient(relayPort);
      ends.push(end);
      parts.push(await openBoard(`http://127.0.0.1:${end.port}`, name));
    }
    await Promise.all(parts.map((p, i) => draw(p, i)));
    for (const p of parts) await waitFor(p.page, () => wb.pending.size, (n) => n === 0, 30000, `${p.name}: every operation answered`);
    const errors = await Promise.all(parts.map((p) => p.page.evaluate(() => wb.stats.errors)));
    assert.deepEqual(errors, [0, 0, 0], 'operations refused');
    const seq = await nodeSeq(srv.base);
    const states = [];
    for (const p of parts) {
      states.push(await waitFor(p.page, () => ({ seq: wb.model.seq, pending: wb.pending.size }), (v) => v.seq === seq && v.pending === 0,
        30000, `${p.name} at seq ${seq}`));
    }
    const snaps = await Promise.all(parts.map((p) => snapshot(p.page)));
    console.log(`# board after concurrent drawing: seq ${seq}, ${snaps[0].pages} pages, ${snaps[0].els} elements, hash ${snaps[0].hash}`);
    assert.equal(seq, 26, 'operations: 3 x (4 strokes, 2 shapes, a text), a page and a stroke on it, a move, a stroke and its undo');
    assert.equal(snaps[0].pages, 2);
    assert.deepEqual(await parts[1].page.evaluate(() => wb.model.pages.map((p) => p.els.length)), [21, 1], 'page 2 holds ann\'s stroke');
    for (const s of snaps.slice(1)) {
      assert.equal(s.hash, snaps[0].hash, 'state hashes differ');
      assert.deepEqual(s.svgs, snaps[0].svgs, 'exported SVGs differ');
    }
    // the remote stroke latency through the lossy path (each page hears the others)
    const lat = (await Promise.all(parts.map((p) => p.page.evaluate(() => wb.stats.latency)))).flat();
    console.log(`# stroke latency through netem 10% loss (pen move -> drawn on another page): p50 ${pct(lat, 50)} ms, p95 ${pct(lat, 95)} ms over ${lat.length} batches`);
    console.log(`# tunnel datagrams: ${ends.reduce((n, e) => n + e.stats.sent, 0) + srvEnd.stats.sent}, retransmitted ${ends.reduce((n, e) => n + e.stats.retransmits, 0) + srvEnd.stats.retransmits}`);
    // a late joiner through netem too: snapshot + tail = the same board
    const end4 = await tunnelClient(relayPort);
    ends.push(end4);
    const late = await openBoard(`http://127.0.0.1:${end4.port}`, 'dan');
    parts.push(late);
    const ls = await snapshot(late.page);
    assert.equal(ls.seq, seq);
    assert.equal(ls.hash, snaps[0].hash, 'the late joiner sees another board');
    assert.deepEqual(ls.svgs, snaps[0].svgs);
    const loadMs = await late.page.evaluate(() => wb.loadMs);
    // the C SDK's board: the same hash (C and JavaScript apply the same steps)
    const tok = (await (await fetch(`${srv.base}/api/dev-token?room=${ROOM}&identity=device`)).json()).token;
    const watch = path.join(path.dirname(hudongBin), 'wb_watch');
    const out = await new Promise((resolve) => {
      let o = '';
      const p = spawn(watch, [`ws://127.0.0.1:${srv.httpPort}/rtm`, srv.base, tok, ROOM, '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
      p.stdout.on('data', (d) => { o += d; });
      p.stderr.on('data', (d) => { o += d; });
      p.on('exit', (code) => resolve({ code, o }));
    });
    assert.equal(out.code, 0, out.o);
    assert.match(out.o, new RegExp(`board: seq ${seq}, 2 page\\(s\\), ${snaps[0].els} element\\(s\\), hash ${snaps[0].hash}`), out.o.slice(-400));
    // replay from the log: the same final state
    const rp = await late.page.evaluate(async () => { const r = await wb.replay({ speed: 0 }); return { hash: r.hash, entries: r.entries }; });
    assert.equal(rp.entries, seq);
    assert.equal(rp.hash, snaps[0].hash, 'the replay ends in another state');
    // a replay at 20x follows the board's clock: the last entry comes after (span / 20)
    const timed = await late.page.evaluate(async () => {
      const ticks = [];
      const w0 = performance.now();
      const r = await wb.replay({ speed: 20, onTick: (ts) => ticks.push(ts) });
      return { hash: r.hash, wall: performance.now() - w0, span: ticks[ticks.length - 1] - ticks[0] };
    });
    assert.equal(timed.hash, snaps[0].hash);
    // seek: the board as it was at the 10th entry's time equals the log applied up to there
    const seek = await late.page.evaluate(async () => {
      const log = (await (await wb._fetch(`/api/board/log?room=${wb.room}&board=main`)).json()).ops;
      const upto = log.filter((e) => e.ts <= log[9].ts).length;
      const r = await wb.replay({ speed: 0, until: log[9].ts });
      return { seq: r.model.seq, upto };
    });
    assert.equal(seek.seq, seek.upto);
    assert.ok(timed.wall >= timed.span / 20 - 50, `replay at 20x took ${timed.wall} ms for a ${timed.span} ms lesson`);
    console.log(`# late joiner loaded in ${loadMs.toFixed(0)} ms; replay at 20x of a ${timed.span} ms board took ${timed.wall.toFixed(0)} ms; whole test ${Date.now() - t0} ms`);
    await late.page.screenshot({ path: path.join(process.env.WB_SHOTS || dir, 'late.png') });
  } finally {
    for (const p of parts) await p.ctx.close().catch(() => {});
    for (const e of ends) e.close();
    srvEnd.close();
    relay.kill('SIGTERM');
  }
});

test('stroke latency on one machine, no loss (printed)', { timeout: 60000 }, async () => {
  const a = await openBoard(srv.base, 'lat-a', 'latency');
  const b = await openBoard(srv.base, 'lat-b', 'latency');
  try {
    const box = await a.page.locator('.stage').boundingBox();
    for (let k = 0; k < 3; k++) await stroke(a.page, box, 50, 100 + 100 * k, 60, 12, 30, 8);
    for (const p of [a, b]) await waitFor(p.page, () => wb.model.seq, (s) => s === 3, 10000, 'three strokes');
    const lat = await b.page.evaluate(() => wb.stats.latency);
    assert.ok(lat.length >= 10, `only ${lat.length} live batches arrived`);
    console.log(`# stroke latency, one machine, no loss: p50 ${pct(lat, 50)} ms, p95 ${pct(lat, 95)} ms over ${lat.length} batches (goal p95 < 50 ms)`);
    assert.equal(await a.page.evaluate(() => wb.stateHash()), await b.page.evaluate(() => wb.stateHash()));
    // b's RTM session is lost (its resume gets 410) while a draws: once back,
    // b refills what it missed from /api/board?after=N and holds a's board
    await b.page.evaluate(() => {
      window.realUrl = wb.rtm.url;
      wb.rtm.url = 'ws://127.0.0.1:1/rtm';
      wb.rtm.reconnectCapMs = 400;
      wb.rtm.session.resume = 'no-such-session-0000000000000000';
      wb.rtm.dropConnection();
    });
    for (let k = 0; k < 3; k++) await stroke(a.page, box, 50, 150 + 60 * k, 20, 10, 10, 4);
    await waitFor(a.page, () => wb.model.seq, (s) => s === 6, 10000, 'a at 6');
    await b.page.evaluate(() => { wb.rtm.url = window.realUrl; });
    await waitFor(b.page, () => wb.model.seq, (s) => s === 6, 20000, 'b refilled to 6');
    assert.equal(await b.page.evaluate(() => wb.stateHash()), await a.page.evaluate(() => wb.stateHash()));
    assert.ok(await b.page.evaluate(() => wb.stats.refills) >= 1);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
  }
});

test('room page: the Whiteboard button opens the board panel; drawing reaches the other participant', { timeout: 90000 }, async () => {
  const open = async (name) => {
    const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const page = await ctx.newPage();
    page.on('pageerror', (e) => console.error(`[${name}] pageerror`, e.message));
    await page.goto(`${srv.base}/room.html?room=wbroom`);
    await page.fill('#name', name);
    await page.uncheck('#withcam');
    await page.uncheck('#withmic');
    await page.click('#join');
    await waitFor(page, () => window.hudong.chatTransport, (t) => t === 'rtm', 30000, `${name} rtm`);
    await page.click('#wbbtn');
    await waitFor(page, () => !!(window.hudong.board && window.hudong.board.started), (v) => v, 20000, `${name} board`);
    return { ctx, page };
  };
  const a = await open('Teacher');
  const b = await open('Student');
  try {
    const box = await a.page.locator('#wbpanel .stage').boundingBox();
    await stroke(a.page, box, 60, 80, 30, 12, 25);
    await shape(a.page, box, 'rect', 300, 200, 500, 320);
    for (const p of [a, b]) await waitFor(p.page, () => window.hudong.board.model.seq, (s) => s === 2, 20000, 'both see the stroke and the rectangle');
    const ha = await a.page.evaluate(() => window.hudong.board.stateHash());
    const hb = await b.page.evaluate(() => window.hudong.board.stateHash());
    assert.equal(ha, hb);
    await b.page.screenshot({ path: path.join(process.env.WB_SHOTS || dir, 'room.png') });
    await a.page.click('#wbbtn'); // closes the panel
    assert.equal(await a.page.locator('#wbpanel').isHidden(), true);
  } finally {
    await a.ctx.close();
    await b.ctx.close();
  }
});

test('tools: highlighter, eraser, resize, z-order, text edit, area eraser, zoom, image, export, replay, Ctrl+Z', { timeout: 90000 }, async () => {
  const { ctx, page } = await openBoard(srv.base, 'tools', 'toolroom');
  const els = () => page.evaluate(() => wb.currentPage.els.map((e) => ({ ...e, pts: undefined })));
  const seqIs = (n, what) => waitFor(page, () => wb.model.seq, (s) => s === n, 10000, what);
  const at = (x, y) => page.mouse.move(box.x + x, box.y + y);
  const drag = async (x0, y0, x1, y1) => { await at(x0, y0); await page.mouse.down(); await at((x0 + x1) / 2, (y0 + y1) / 2); await at(x1, y1); await page.mouse.up(); };
  const box = await page.locator('.stage').boundingBox();
  try {
    await page.click('button[data-tool=hl]');
    await stroke(page, box, 100, 100, 20, 10, 10);
    await seqIs(1, 'highlighter stroke');
    assert.equal((await els())[0].hl, true);
    await page.click('button[data-tool=erase]');
    await drag(150, 70, 150, 130);
    await seqIs(2, 'erased');
    assert.equal((await els()).length, 0, 'the eraser deletes the touched stroke');
    await shape(page, box, 'rect', 300, 100, 400, 160);
    await seqIs(3, 'rect');
    await page.click('button[data-tool=select]');
    await page.mouse.click(box.x + 350, box.y + 130);
    await drag(400, 160, 450, 200); // the resize handle
    await seqIs(4, 'resize');
    let r = (await els())[0];
    assert.deepEqual([r.x, r.y, r.w, r.h], [300, 100, 150, 100]);
    await shape(page, box, 'ellipse', 320, 120, 420, 180);
    await seqIs(5, 'ellipse');
    await page.click('button[data-tool=select]');
    await page.mouse.click(box.x + 305, box.y + 105);
    await page.click('button[data-act=front]');
    await seqIs(6, 'z-order');
    assert.deepEqual((await els()).map((e) => e.k), ['ellipse', 'rect']);
    await page.click('button[data-tool=text]');
    await page.mouse.click(box.x + 100, box.y + 300);
    await page.locator('textarea.txt').fill('hello');
    await page.locator('textarea.txt').press('Enter');
    await seqIs(7, 'text');
    await page.click('button[data-tool=select]');
    await page.mouse.dblclick(box.x + 110, box.y + 310);
    assert.equal(await page.locator('textarea.txt').inputValue(), 'hello');
    await page.locator('textarea.txt').fill('hello world');
    await page.locator('textarea.txt').press('Enter');
    await seqIs(8, 'text edited');
    assert.equal((await els()).find((e) => e.k === 'text').txt, 'hello world');
    await page.click('button[data-tool=erasearea]');
    await drag(290, 90, 460, 210);
    await seqIs(9, 'area erased');
    assert.deepEqual((await els()).map((e) => e.k), ['text']);
    await page.click('button[data-act=zin]');
    await page.click('button[data-act=zin]');
    const s = await page.evaluate(() => wb.view.s);
    assert.ok(s > 1.5);
    await shape(page, box, 'rect', 100, 380, 200, 430);
    await seqIs(10, 'rect while zoomed');
    r = (await els()).find((e) => e.k === 'rect');
    assert.ok(Math.abs(r.w * s - 100) <= 2 && Math.abs(r.h * s - 50) <= 2, `zoomed rect ${r.w}x${r.h} at scale ${s}`);
    await page.click('button[data-act=fit]');
    // an image: uploaded (scaled to the cap), placed, drawn
    const img = await page.evaluate(async () => {
      const c = document.createElement('canvas'); c.width = 64; c.height = 48;
      const g = c.getContext('2d'); g.fillStyle = '#e03131'; g.fillRect(0, 0, 64, 48);
      const blob = await new Promise((res) => c.toBlob(res, 'image/png'));
      await wb.addImage(blob, 500, 300);
      return true;
    });
    assert.ok(img);
    await seqIs(11, 'image');
    const im = (await els()).find((e) => e.k === 'image');
    assert.match(im.src, /^\/api\/board\/image\/[0-9a-f]{64}$/);
    assert.equal((await fetch(`${srv.base}${im.src}`)).status, 200);
    const exp = await page.evaluate(async () => ({ png: (await wb.exportPNG()).size, svg: wb.exportSVG() }));
    assert.ok(exp.png > 500, `PNG of ${exp.png} bytes`);
    assert.ok(exp.svg.includes('<rect') && exp.svg.includes('hello world') && exp.svg.includes('<image'), exp.svg.slice(0, 300));
    // the Replay button plays the history in the view and ends on the live board
    const before = await page.evaluate(() => wb.stateHash());
    await page.click('button[data-act=replay]');
    await waitFor(page, () => document.querySelector('[data-act=replay]').textContent, (t) => t.includes('Replay'), 30000, 'replay done');
    assert.equal(await page.evaluate(() => wb.replayModel.hash()), before);
    assert.equal(await page.evaluate(() => wb.stateHash()), before);
    // Ctrl+Z undoes the image
    await page.locator('.hd-wb').focus();
    await page.keyboard.press('Control+z');
    await seqIs(12, 'undo');
    assert.equal((await els()).some((e) => e.k === 'image'), false);
    // pages: add one (it goes after the current), move it to the front
    await page.click('.pages button:has-text("+ Page")');
    await seqIs(13, 'page added');
    await page.click('.pages button[data-pmove="-1"]');
    await seqIs(14, 'page moved');
    const order = await page.evaluate(() => [wb.model.pages.map((p) => p.id), wb.pageId]);
    assert.equal(order[0].length, 2);
    assert.equal(order[0][0], order[1], 'the new page is first now');
    await page.screenshot({ path: path.join(process.env.WB_SHOTS || dir, 'tools.png') });
    // a reader's token: the board shows read-only, the node refuses changes
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ iss: 'devkey', sub: 'reader1', iat: now, exp: now + 600, grants: { room: 'toolroom', roomJoin: true, rtm: true } })}`;
    const rtok = `${body}.${createHmac('sha256', 'devsecret').update(body).digest('base64url')}`;
    const rctx = await browser.newContext();
    const rp = await rctx.newPage();
    await rp.goto(`${srv.base}/whiteboard.html?room=toolroom&name=reader&token=${rtok}`);
    await waitFor(rp, () => window.hudongBoard, (v) => v && (v.ready || v.error), 20000, 'reader ready');
    const rs = await rp.evaluate(async () => ({
      ro: wb.readOnly, seq: wb.model.seq, hash: wb.stateHash(),
      refused: await wb.send({ op: 'undo' }).then(() => 0, (e) => e.code),
      pen: document.querySelector('[data-tool=pen]').hidden,
    }));
    await rctx.close();
    assert.deepEqual(rs, { ro: true, seq: 14, hash: await page.evaluate(() => wb.stateHash()), refused: 403, pen: true });
  } finally {
    await ctx.close();
  }
});
