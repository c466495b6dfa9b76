// RTM from the browser (web/rtm.js, docs/rtm.md) in Chromium against a real
// `hudong serve --dev`: two pages exchange channel messages while their
// WebSockets are cut again and again (resume + replay + dedupe: every message
// exactly once, in order), then presence, attribute compare-and-set, a lock and
// a peer message with its receipt. A third page logs in after the fact and
// reads the stored history. A second test loses a session on purpose (410 on
// resume) and checks the refill: 150 messages from after 0, and 100 stored
// 30 KB messages in pages that fit the window (issue 12 items 4 and 5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, stopServer, launchChromium, sleep, waitFor, metrics } from './lib.mjs';

const N = 300;

async function openClient(browser, base, identity, room = 'chat') {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  page.on('pageerror', (e) => console.error(`[${identity}] pageerror`, e.message));
  await page.goto(`${base}/index.html`);
  await page.evaluate(async ([id, room]) => {
    const { RtmClient } = await import('/rtm.js');
    const getToken = async () => {
      const r = await fetch(`/api/dev-token?room=${room}&identity=${id}`);
      return (await r.json()).token;
    };
    const rtm = new RtmClient({ getToken });
    window.rtm = rtm;
    window.got = [];
    window.events = [];
    window.states = [];
    rtm.on('message', (m) => window.got.push(m));
    rtm.on('presence', (p) => window.events.push({ kind: 'presence', ...p }));
    rtm.on('attribute', (a) => window.events.push({ kind: 'attribute', ...a }));
    rtm.on('lock', (l) => window.events.push({ kind: 'lock', ...l }));
    rtm.on('peer', (p) => window.events.push({ kind: 'peer', ...p }));
    rtm.on('state', (s) => window.states.push(s));
    await rtm.login();
  }, [identity, room]);
  return { ctx, page };
}

test('rtm.js: exactly once and in order across cuts, presence, CAS, locks, peer, history', { timeout: 120000 }, async () => {
  const srv = await startServer(['--rtm-db', ':memory:']);
  const browser = await launchChromium();
  try {
    const alice = await openClient(browser, srv.base, 'alice');
    const bob = await openClient(browser, srv.base, 'bob');
    await bob.page.evaluate(() => window.rtm.subscribe('chat'));
    await alice.page.evaluate(() => window.rtm.subscribe('chat'));

    // presence: bob sees alice join
    await waitFor(bob.page, () => window.events.filter((e) => e.kind === 'presence' && e.ev === 'join').map((e) => e.user),
      (v) => v.includes('alice'), 5000, 'bob sees alice join');

    // alice publishes N stored messages; both sockets are cut while it runs
    const pub = alice.page.evaluate(async (n) => {
      const acks = [];
      for (let i = 0; i < n; i++) {
        acks.push(window.rtm.publish('chat', `m${i}`, { store: true }).then((r) => r.cseq));
        if (i % 10 === 9) await new Promise((r) => setTimeout(r, 60)); // ~160/s: over the 100/s limit at times (429 -> retry)
      }
      return Promise.all(acks);
    }, N);
    for (let k = 0; k < 3; k++) {
      await sleep(400);
      await bob.page.evaluate(() => window.rtm.dropConnection());
      await sleep(150);
      if (k < 2) await alice.page.evaluate(() => window.rtm.dropConnection());
    }
    const cseqs = await pub;
    assert.equal(cseqs.length, N, 'every publish got its ok');
    for (let i = 1; i < N; i++) assert.ok(cseqs[i] > cseqs[i - 1], `publish acks in order (${cseqs[i - 1]}, ${cseqs[i]})`);

    const got = await waitFor(bob.page, () => window.got.filter((m) => m.ch === 'chat').map((m) => m.data),
      (v) => v.length >= N, 15000, `bob receives ${N} messages`);
    // bob having them all says nothing of alice (her socket was cut too): wait for hers as well
    await waitFor(alice.page, () => window.got.filter((m) => m.ch === 'chat').length,
      (n) => n >= N, 15000, `alice receives her ${N} messages`).catch(() => {});
    await sleep(500); // anything extra (a duplicate) would arrive now
    const final = await bob.page.evaluate(() => window.got.filter((m) => m.ch === 'chat'));
    assert.equal(final.length, N, `bob got exactly ${N} messages (no duplicates, none lost)`);
    assert.deepEqual(final.map((m) => m.data), Array.from({ length: N }, (_, i) => `m${i}`), 'in publish order');
    for (let i = 1; i < N; i++) assert.ok(final[i].cseq > final[i - 1].cseq, 'cseq increases');
    assert.ok(final.every((m) => m.from === 'alice'), 'from is the publisher');
    const bs = await bob.page.evaluate(() => ({ ...window.rtm.stats, states: window.states }));
    assert.ok(bs.resumes + bs.relogins >= 3, `bob reconnected after each cut: ${JSON.stringify(bs)}`);
    assert.ok(bs.states.includes('reconnecting'), 'state events show the reconnects');
    // alice is subscribed too: she also got every message once
    const ag = await alice.page.evaluate(() => window.got.filter((m) => m.ch === 'chat').map((m) => m.data));
    assert.equal(ag.length, N, 'alice got her own messages exactly once');
    assert.equal(got.length >= N, true);

    // attributes: compare-and-set
    const a1 = await alice.page.evaluate(() => window.rtm.setAttribute({ ch: 'chat' }, 'topic', 'hello', 0));
    assert.equal(a1.rev, 1, 'first CAS set (rev 0 = must not exist) -> rev 1');
    const conflict = await bob.page.evaluate(() => window.rtm.setAttribute({ ch: 'chat' }, 'topic', 'mine', 0)
      .then(() => null, (e) => ({ code: e.code, reason: e.reason, rev: e.detail.rev })));
    assert.deepEqual(conflict, { code: 409, reason: 'conflict', rev: 1 }, 'stale CAS -> 409 with the current rev');
    const a2 = await bob.page.evaluate(() => window.rtm.setAttribute({ ch: 'chat' }, 'topic', 'mine', 1));
    assert.equal(a2.rev, 2, 'CAS with the current rev succeeds');
    await waitFor(alice.page, () => window.events.filter((e) => e.kind === 'attribute' && e.key === 'topic').map((e) => e.value),
      (v) => v.includes('mine'), 5000, 'alice sees the attribute change');

    // locks: a seat held by alice, refused to bob
    const l1 = await alice.page.evaluate(() => window.rtm.acquireLock('chat', 'seat1', 10000));
    assert.ok(l1.exp > Date.now(), 'lock acquired with an expiry');
    const lr = await bob.page.evaluate(() => window.rtm.acquireLock('chat', 'seat1', 10000)
      .then(() => null, (e) => ({ code: e.code, owner: e.detail.owner })));
    assert.deepEqual(lr, { code: 409, owner: 'alice' }, 'a held lock -> 409 with its owner');
    await alice.page.evaluate(() => window.rtm.releaseLock('chat', 'seat1'));
    await waitFor(bob.page, () => window.events.filter((e) => e.kind === 'lock').map((e) => `${e.name}:${e.ev}`),
      (v) => v.includes('seat1:released'), 5000, 'bob sees the lock released');

    // peer message with a delivery receipt; to an offline user: 404 at once
    const receipt = await alice.page.evaluate(() => window.rtm.sendPeer('bob', 'psst'));
    assert.equal(receipt.to, 'bob', 'receipt after bob acked');
    await waitFor(bob.page, () => window.events.filter((e) => e.kind === 'peer').map((e) => `${e.from}:${e.data}`),
      (v) => v.includes('alice:psst'), 5000, 'bob gets the peer message');
    // a room-scoped token (dev tokens name a room) reaches only users present in its room: 403,
    // not 404 user_offline, which would tell whether a user elsewhere is online (docs/rtm.md)
    const off = await alice.page.evaluate(() => window.rtm.sendPeer('nobody', 'x').then(() => null, (e) => e.reason));
    assert.equal(off, 'forbidden');

    // a late user reads the stored history
    const carol = await openClient(browser, srv.base, 'carol');
    const hist = await carol.page.evaluate(() => window.rtm.history('chat', { limit: 100 }));
    assert.equal(hist.msgs.length, 100, 'history returns the last 100');
    assert.equal(hist.msgs[99].data, `m${N - 1}`, 'ending with the last message');

    const m = await metrics(srv.base);
    assert.ok(m.hudong_rtm_resumes_total + 0 >= 1, 'the node counted resumes');
    assert.equal(m.hudong_rtm_drops_total, 0, 'no session was dropped');

    // logout ends presence
    await alice.page.evaluate(() => window.rtm.logout());
    await waitFor(bob.page, () => window.events.filter((e) => e.kind === 'presence' && e.user === 'alice').map((e) => e.ev),
      (v) => v.includes('leave'), 5000, 'bob sees alice leave');
    for (const c of [alice, bob, carol]) await c.ctx.close();
  } finally {
    await browser.close().catch(() => {});
    const code = await stopServer(srv);
    assert.equal(code, 0, `hudong serve exits 0\n${srv.log().slice(-2000)}`);
  }
});

test('rtm.js refill after a session loss: every message from after 0, 30 KB messages in pages', { timeout: 120000 }, async () => {
  const srv = await startServer(['--rtm-db', ':memory:']);
  const browser = await launchChromium();
  try {
    const reader = await openClient(browser, srv.base, 'reader', 'gap');
    const writer = await openClient(browser, srv.base, 'writer', 'gap');
    await reader.page.evaluate(async () => {
      await window.rtm.subscribe('gap');
      await window.rtm.subscribe('room:gap');
    });
    // the reader goes away (its reconnects fail) and its session is lost: the
    // resume gets 410, so it logs in again and refills from history after cseq 0
    await reader.page.evaluate(() => {
      window.realUrl = window.rtm.url;
      window.rtm.url = 'ws://127.0.0.1:1/rtm';
      window.rtm.reconnectCapMs = 400;
      window.rtm.session.resume = 'no-such-session-0000000000000000';
      window.rtm.dropConnection();
    });
    await writer.page.evaluate(async () => {
      for (let i = 0; i < 150; i++) await window.rtm.publish('gap', `g${i}`, { store: true });
      const big = 'y'.repeat(30 * 1024);
      for (let i = 0; i < 100; i++) await window.rtm.publish('room:gap', `${i}:${big}`, { store: true });
    });
    await reader.page.evaluate(() => { window.rtm.url = window.realUrl; });
    // both channels refill: waiting for the big one alone says nothing of 'gap'
    await waitFor(reader.page, () => [window.got.filter((m) => m.ch === 'room:gap').length,
      window.got.filter((m) => m.ch === 'gap').length], ([big, small]) => big >= 100 && small >= 150, 30000,
    'the reader refills 100 big messages and 150 small ones').catch(() => {});
    await sleep(500); // a duplicate would arrive now
    const r = await reader.page.evaluate(() => ({
      gap: window.got.filter((m) => m.ch === 'gap').map((m) => m.data),
      big: window.got.filter((m) => m.ch === 'room:gap').map((m) => [m.cseq, m.data.split(':')[0], m.data.length]),
      stats: window.rtm.stats,
    }));
    assert.deepEqual(r.gap, Array.from({ length: 150 }, (_, i) => `g${i}`), 'all 150 in order, none lost (after 0 is a cursor)');
    assert.deepEqual(r.big.map((x) => x[1]), Array.from({ length: 100 }, (_, i) => `${i}`), 'all 100 big ones in order');
    assert.ok(r.big.every((x) => x[2] > 30 * 1024), 'whole 30 KB payloads');
    assert.ok(r.stats.relogins >= 1 && r.stats.replays >= 250, `refilled after a re-login: ${JSON.stringify(r.stats)}`);
    // one re-login only: a refill reply over the window would have dropped the new session (4008) and
    // forced another (the abandoned old session may overflow: 3 MB went to its window while detached)
    assert.equal(r.stats.relogins, 1, `one re-login: ${JSON.stringify(r.stats)}`);
    for (const c of [reader, writer]) await c.ctx.close();
  } finally {
    await browser.close().catch(() => {});
    const code = await stopServer(srv);
    assert.equal(code, 0, `hudong serve exits 0\n${srv.log().slice(-2000)}`);
  }
});
