// The room page as a first-time user meets it (issue 12 item 12), in Chromium
// against `hudong serve --dev`:
//  - a user with no camera or microphone (Chromium without fake devices) and a
//    user who denies the permission (Chromium without the fake permission UI)
//    still join: receive-only, with a notice, and see the others' video;
//  - presence and chat show display names, not identities with random suffixes;
//  - every page orders the tiles the same way (join time on the node);
//  - after joining the address bar is a shareable link: opening it pre-fills
//    the room and joins it;
//  - after Leave the chat is disabled and Send does nothing (no exception), and
//    the one who left drops out of the others' presence (no ghost);
//  - a WHIP publisher tab closed without Stop does not keep its room busy: a new
//    publisher gets in within seconds (409 only while the old one is live).
// Screenshots go to $HUDONG_SHOTS (default /tmp/hudong-shots) for a look by eye.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { launchChromium, sleep, startServer, stopServer, waitFor } from './lib.mjs';

const SHOTS = process.env.HUDONG_SHOTS || '/tmp/hudong-shots';
const ROOM = 'newcomers';
let srv, full, nodev, nouiBrowser;
const problems = [];

// Chromium with only some of the fake-media flags lib.mjs uses.
function launchWith(args) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic', '--autoplay-policy=no-user-gesture-required', ...args],
  });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  srv = await startServer(['--media-workers', '1', '--rtm-db', ':memory:']);
  full = await launchChromium(); // fake camera + microphone, permission auto-granted
  nodev = await launchWith(['--use-fake-ui-for-media-stream']); // permission granted, but no device at all
  nouiBrowser = await launchWith(['--use-fake-device-for-media-stream']); // devices, but nobody grants the permission
});
after(async () => {
  for (const b of [full, nodev, nouiBrowser]) if (b) await b.close().catch(() => {});
  const code = await stopServer(srv);
  if (code !== 0) console.error(`hudong serve exited with ${code}:\n${srv.log()}`);
});

async function page(browser, label, url, ctxOpts = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 760 }, ...ctxOpts });
  const p = await ctx.newPage();
  p.on('pageerror', (e) => problems.push(`${label}: pageerror ${e.message}`));
  if (url) await p.goto(url);
  return p;
}

const hook = () => ({ state: window.hudong.state, error: window.hudong.error, notices: window.hudong.notices,
  participants: window.hudong.participants, here: window.hudong.here, hereNames: window.hudong.hereNames,
  chat: window.hudong.chat, tileOrder: window.hudong.tileOrder, events: window.hudong.events.slice(-12) });

async function until(p, fn, pred, ms, what) {
  try {
    return await waitFor(p, fn, pred, ms, what);
  } catch (e) {
    const h = await p.evaluate(hook).catch(() => null);
    throw new Error(`${e.message}\npage: ${JSON.stringify(h)}\nproblems: ${problems.join('\n')}\n` +
      `server log (tail):\n${srv.log().split('\n').slice(-40).join('\n')}`);
  }
}

const joinUrl = (name, extra = '') => `${srv.base}/room.html?room=${ROOM}&name=${name}&autojoin=1&w=320&h=180&fps=15${extra}`;
const decodes = (from) => () => window.hudong.stats().then((s) => (s ? s.tracks : []))
  .then((t) => t.filter((x) => x.kind === 'video' && x.framesDecoded > 10).map((x) => x.name || x.identity));

test('room page: no devices, denied permission, names, tile order, share link, leave, WHIP takeover', async () => {
  const t0 = Date.now();
  const lap = (what) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);

  // 1. Alice with camera and microphone
  const alice = await page(full, 'alice', joinUrl('Alice'));
  await until(alice, () => window.hudong.state, (s) => s === 'connected', 10000, 'alice joined');
  await sleep(1100); // a later join_at second for the next one: the order below is by join time

  // 2. Bob's machine has no camera and no microphone: he joins receive-only
  const bob = await page(nodev, 'bob', joinUrl('Bob'));
  await until(bob, () => window.hudong.state, (s) => s === 'connected', 10000, 'bob (no devices) joined');
  const bn = await until(bob, () => window.hudong.notices, (n) => n.some((x) => /receive-only/.test(x)), 5000, 'bob notice');
  assert.match(bn.join(' '), /no camera \(no camera found\)/);
  await until(bob, decodes(), (n) => n.includes('Alice'), 20000, 'bob (receive-only) decodes Alice');
  lap(`Bob without devices joined receive-only: "${bn[bn.length - 1]}"`);
  await sleep(1100);

  // 3. Carol denies the permission (no fake permission UI: Chromium refuses it)
  const carol = await page(nouiBrowser, 'carol', joinUrl('Carol'));
  await until(carol, () => window.hudong.state, (s) => s === 'connected', 10000, 'carol (denied) joined');
  const cn = await until(carol, () => window.hudong.notices, (n) => n.some((x) => /permission denied/.test(x)), 5000, 'carol notice');
  await until(carol, decodes(), (n) => n.includes('Alice'), 20000, 'carol decodes Alice');
  lap(`Carol who denied the permission joined: "${cn[cn.length - 1]}"`);

  // everyone sees everyone, by display name
  for (const [p, label] of [[alice, 'alice'], [bob, 'bob'], [carol, 'carol']]) {
    await until(p, () => window.hudong.participants.map((x) => x.name).sort(), (n) => n.length === 2, 5000, `${label} sees 2 others`);
    const hn = await until(p, () => window.hudong.hereNames, (h) => h.length === 3, 8000, `${label}: 3 here (RTM presence)`);
    assert.deepEqual([...hn].sort(), ['Alice', 'Bob', 'Carol'], `${label}: presence shows display names`);
    const text = await p.evaluate(() => document.getElementById('here').textContent);
    assert.equal(text, `here: ${hn.join(', ')}`);
    assert.ok(!/-[a-z0-9]{5}\b/.test(text), `${label}: no identity suffixes in "${text}"`);
  }
  // chat from the receive-only user, shown by name
  assert.equal(await bob.evaluate(() => window.hudong.sendChat('hello, I have no camera')), true);
  for (const [p, label] of [[alice, 'alice'], [carol, 'carol']]) {
    const c = await until(p, () => window.hudong.chat.filter((m) => !m.mine), (m) => m.some((x) => x.text === 'hello, I have no camera'), 5000, `${label} gets Bob's chat`);
    assert.equal(c.find((x) => x.text === 'hello, I have no camera').name, 'Bob');
  }
  lap('presence and chat show Alice, Bob, Carol');

  // the same tile order everywhere: by join time (Alice, Bob, Carol)
  const orders = [];
  for (const p of [alice, bob, carol]) {
    orders.push(await p.evaluate(() => {
      const names = new Map(window.hudong.participants.map((x) => [x.sid, x.name]));
      names.set('local', window.hudong.room.localParticipant.name);
      return [...document.querySelectorAll('.tile')].filter((t) => t.dataset.key.endsWith(':camera'))
        .sort((a, b) => Number(a.style.order) - Number(b.style.order)).map((t) => names.get(t.dataset.key.split(':')[0]));
    }));
  }
  assert.deepEqual(orders[0], ['Alice', 'Bob', 'Carol'], 'tiles by join time');
  assert.deepEqual(orders[1], orders[0], 'bob: same tile order');
  assert.deepEqual(orders[2], orders[0], 'carol: same tile order');
  lap(`tile order on every page: ${orders[0].join(', ')}`);
  await alice.screenshot({ path: path.join(SHOTS, 'room-alice.png') });
  await bob.screenshot({ path: path.join(SHOTS, 'room-bob-no-devices.png') });
  await carol.screenshot({ path: path.join(SHOTS, 'room-carol-denied.png') });

  // 4. the address bar is a link to the room: Dave opens it, types his name, joins
  const link = await alice.evaluate(() => location.href);
  assert.equal(new URL(link).searchParams.get('room'), ROOM);
  assert.equal(new URL(link).searchParams.get('name'), null, 'the link does not carry the sharer\'s name');
  assert.equal(await alice.evaluate(() => document.getElementById('inviteurl').value), link);
  const dave = await page(full, 'dave', link);
  assert.equal(await dave.evaluate(() => document.getElementById('room').value), ROOM, 'the link pre-fills the room');
  await dave.fill('#name', 'Dave');
  await dave.click('#join');
  await until(dave, () => window.hudong.state, (s) => s === 'connected', 10000, 'dave joined from the link');
  await until(alice, () => window.hudong.participants.map((x) => x.name), (n) => n.includes('Dave'), 5000, 'alice sees Dave');
  lap(`Dave joined from Alice's link ${link}`);

  // 5. Carol leaves: chat disabled, Send is a no-op, she leaves everyone's presence
  await carol.click('#leave');
  await until(carol, () => window.hudong.state, (s) => s === 'left', 5000, 'carol left');
  const after = await carol.evaluate(() => ({ disabled: document.getElementById('chatinput').disabled, sent: window.hudong.sendChat('anyone?') }));
  assert.deepEqual(after, { disabled: true, sent: false });
  await carol.evaluate(() => document.getElementById('chatform').requestSubmit());
  for (const [p, label] of [[alice, 'alice'], [bob, 'bob'], [dave, 'dave']]) {
    await until(p, () => window.hudong.hereNames, (h) => h.length === 3 && !h.includes('Carol'), 8000, `${label}: Carol gone from presence`);
  }
  lap('Carol left: her chat is disabled, nobody lists her any more');
  await carol.screenshot({ path: path.join(SHOTS, 'room-carol-after-leave.png') });
  assert.deepEqual(problems.filter((x) => /pageerror/.test(x)), [], 'no uncaught page errors');

  // 6. WHIP/WHEP and /rtc rooms of the same name are one room: a WHIP publisher is
  // a participant the room page shows and decodes; WHEP plays a participant
  const whip = await page(full, 'whip', `${srv.base}/publish.html?room=${ROOM}&autostart=1`);
  await until(whip, () => window.hudong.state, (s) => s === 'connected', 15000, 'WHIP publisher into the /rtc room');
  const wname = await until(alice, decodes(), (n) => n.some((x) => /^publisher-/.test(x)), 20000, 'alice decodes the WHIP publisher');
  lap(`the room page decodes the WHIP publisher (${wname.find((x) => /^publisher-/.test(x))})`);
  await whip.click('#stop');
  await until(alice, () => window.hudong.participants.map((x) => x.name), (n) => !n.some((x) => /^publisher-/.test(x)), 5000, 'WHIP publisher gone');
  const whep = await page(full, 'whep', `${srv.base}/play.html?room=${ROOM}&autostart=1`);
  await until(whep, () => window.hudong.stats && window.hudong.stats.in_video && window.hudong.stats.in_video.framesDecoded,
    (f) => f > 10, 20000, 'WHEP plays the room\'s first publishing participant');
  lap('WHEP in the /rtc room plays Alice (the first participant publishing)');
  await whep.screenshot({ path: path.join(SHOTS, 'play-whep-participant.png') });
  await whep.click('#stop');

  // 7. WHIP: a publisher tab closed without Stop does not block its room
  const pub1 = await page(full, 'pub1', `${srv.base}/publish.html?room=whiproom&autostart=1`);
  await until(pub1, () => window.hudong.state, (s) => s === 'connected', 15000, 'first WHIP publisher connected');
  const pub2 = await page(full, 'pub2', `${srv.base}/publish.html?room=whiproom`);
  await pub2.click('#start');
  const e409 = await until(pub2, () => window.hudong.error, (e) => !!e, 10000, 'second publisher refused while the first is live');
  assert.match(e409, /409 room 'whiproom' already has a publisher/);
  await pub1.close(); // no Stop
  const tClose = Date.now();
  let ok = false;
  while (!ok && Date.now() - tClose < 15000) {
    await pub2.evaluate(() => { window.hudong.error = null; document.getElementById('error').textContent = ''; });
    await pub2.click('#start');
    const st = await until(pub2, () => ({ s: window.hudong.state, e: window.hudong.error }), (x) => x.e || x.s === 'connected', 10000, 'retry');
    ok = st.s === 'connected';
    if (!ok) await sleep(1000);
  }
  assert.ok(ok, 'a new WHIP publisher got the room after the old tab closed');
  lap(`a new WHIP publisher took the room ${((Date.now() - tClose) / 1000).toFixed(1)} s after the old tab closed without Stop`);
  await pub2.click('#stop');
});
