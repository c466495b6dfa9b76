// Edge scheduling and draining seen from a browser (issue 15 items 4 and 6;
// docs/overlay.md "Routing: the client side", "Draining"). A real redis-server
// and two `hudong serve --redis` nodes on 127.0.0.1:
//
//  - n1's HTTP path goes through a TCP proxy written here that holds every
//    chunk 80 ms in each direction (`hudong netem` relays UDP only, so it
//    cannot delay HTTP over TCP); n1 announces the proxy's URL, so every
//    client that talks to n1 over HTTP pays +80 ms each way.
//  - The room is one for which /api/route WITHOUT client RTTs answers n1
//    (rendezvous hash over two equally loaded nodes), so the only reason to
//    end up on n2 is the RTT the page measured.
//  - A Chromium page loaded from n1 (through the proxy) calls
//    connect(null, token, {cluster: <n1 via the proxy>}): it must measure n1
//    slower than n2 and join n2 (room.node.id, reason "rtt"). The test prints
//    the RTTs the page measured.
//  - Draining: POST /admin/drain on n2; the page gets left "node_draining"
//    with a redirect, rejoins through the route on n1, and n2 exits 0 once
//    empty. The test prints the gap (left -> joined again).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { launchChromium, sleep, startRedis, startServer, stopServer, waitFor } from './lib.mjs';

const DELAY_MS = 80;
let redis, proxy, proxyPort, n1, n2, browser;

// A TCP relay that delays each chunk by DELAY_MS per direction (order kept:
// every chunk waits the same time).
function delayProxy(getTarget) {
  const srv = net.createServer((c) => {
    const up = net.connect(getTarget(), '127.0.0.1');
    const relay = (from, to) => {
      from.on('data', (d) => setTimeout(() => { if (!to.destroyed) to.write(d); }, DELAY_MS));
      from.on('end', () => setTimeout(() => to.end(), DELAY_MS));
      from.on('error', () => to.destroy());
    };
    relay(c, up);
    relay(up, c);
    c.on('close', () => up.destroy());
    up.on('close', () => setTimeout(() => c.destroy(), DELAY_MS));
  });
  return srv;
}

async function routeJson(base, room, token, q = '') {
  const r = await fetch(`${base}/api/route?room=${room}${q}`, { headers: { Authorization: `Bearer ${token}` } });
  return r.json();
}

async function devToken(base, room, identity) {
  const r = await fetch(`${base}/api/dev-token?room=${room}&identity=${identity}`);
  return (await r.json()).token;
}

before(async () => {
  redis = await startRedis();
  proxy = delayProxy(() => n1.httpPort);
  await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
  proxyPort = proxy.address().port;
  const redisUrl = redis.url;
  n1 = await startServer(['--redis', redisUrl, '--node-id', 'n1', '--announce-url', `http://127.0.0.1:${proxyPort}`]);
  n2 = await startServer(['--redis', redisUrl, '--node-id', 'n2']);
  browser = await launchChromium();
  const tok = await devToken(n2.base, 'probe', 'x');
  for (let i = 0; ; i++) {
    if ((await routeJson(n1.base, 'probe', tok)).candidates.length === 2) break;
    if (i > 50) throw new Error(`the nodes do not see each other:\n${n1.log()}\n${n2.log()}`);
    await sleep(100);
  }
});

after(async () => {
  if (browser) await browser.close().catch(() => {});
  await stopServer(n1);
  await stopServer(n2);
  if (proxy) proxy.close();
  if (redis) redis.stop();
});

test('a page given a cluster URL measures RTTs and joins the nearer node; draining moves it', async () => {
  // a room the load rule alone would put on n1 (the slow one)
  let room = null, token = null;
  for (let i = 0; i < 40 && !room; i++) {
    const r = `e2e-route-${i}`;
    const t = await devToken(n2.base, r, 'pa');
    const js = await routeJson(n2.base, r, t);
    if (js.node.id === 'n1' && js.reason === 'load') { room = r; token = t; }
  }
  assert.ok(room, 'found a room that /api/route without rtt sends to n1');

  const page = await browser.newPage();
  const proxyBase = `http://127.0.0.1:${proxyPort}`;
  await page.goto(`${proxyBase}/healthz`);
  const res = await page.evaluate(async ({ cluster, token }) => {
    const { connect } = await import('/rtc.js');
    window.ev = [];
    const t0 = performance.now();
    let routed = null;
    const room = await connect(null, token, { cluster, name: 'pa', qualityReports: false, onMessage: (m) => { if (m.type === 'left') window.ev.push({ t: performance.now(), m }); } });
    window.room = room;
    room.on('routed', (r) => { window.ev.push({ t: performance.now(), routed: r.node.id }); });
    room.on('reconnected', (r) => { window.ev.push({ t: performance.now(), reconnected: r }); });
    room.on('disconnected', (r) => { window.ev.push({ t: performance.now(), disconnected: r }); });
    routed = room.node;
    return { node: routed, url: room.url, ms: Math.round(performance.now() - t0) };
  }, { cluster: proxyBase, token });
  // the rtts as the page measured them: ask it again (routeToNode is what connect used)
  const rtts = await page.evaluate(async ({ cluster, token }) => {
    const { routeToNode } = await import('/route.js');
    const r = await routeToNode([cluster], token);
    return { rtts: r.rtts, reason: r.reason, first: r.nodes[0].id };
  }, { cluster: proxyBase, token });
  console.log(`# measured: page RTTs ${JSON.stringify(rtts.rtts)} (n1 behind +${DELAY_MS} ms each way); ` +
    `route reason ${rtts.reason}; connect() took ${res.ms} ms and joined ${res.node.id}`);
  assert.equal(res.node.id, 'n2', `joined n2, not the delayed n1: ${JSON.stringify(res)}`);
  assert.equal(rtts.reason, 'rtt');
  assert.ok(rtts.rtts.n1 >= 2 * DELAY_MS && rtts.rtts.n2 < DELAY_MS, `n1 measured >= ${2 * DELAY_MS} ms, n2 < ${DELAY_MS} ms: ${JSON.stringify(rtts.rtts)}`);
  assert.ok(res.url.includes(`:${n2.httpPort}/`), `the WebSocket is n2's: ${res.url}`);
  // /api/route of another origin (n2 directly): a CORS preflight (Authorization header) first
  const cross = await page.evaluate(async ({ n2base, token }) => {
    const { routeToNode } = await import('/route.js');
    try { const r = await routeToNode([n2base], token); return { ok: true, first: r.nodes[0].id, reason: r.reason }; } catch (e) { return { ok: false, e: String(e) }; }
  }, { n2base: n2.base, token });
  assert.ok(cross.ok && cross.first === 'n2', `a cross-origin /api/route works (preflight): ${JSON.stringify(cross)}`);

  // ---- draining n2: the page moves to n1 ----
  const admin = (await (await fetch(`${n2.base}/api/dev-token?admin=1`)).json()).token;
  const exited = new Promise((r) => n2.proc.on('exit', (code) => r(code)));
  const t0 = Date.now();
  const dr = await fetch(`${n2.base}/admin/drain?grace=10`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } });
  assert.equal(dr.status, 202, await dr.text());
  const st = await waitFor(page, () => ({ state: window.room.state, node: window.room.node && window.room.node.id, ev: window.ev }),
    (v) => v.state === 'connected' && v.node === 'n1', 10000, 'the page rejoined on n1');
  const left = st.ev.find((e) => e.m && e.m.type === 'left');
  const back = st.ev.find((e) => e.reconnected);
  assert.ok(left && left.m.reason === 'node_draining' && left.m.redirect === `http://127.0.0.1:${proxyPort}`,
    `left node_draining with n1's URL as redirect: ${JSON.stringify(st.ev)}`);
  assert.ok(back, `reconnected: ${JSON.stringify(st.ev)}`);
  console.log(`# measured: drain -> page joined on n1 in ${Date.now() - t0} ms (left -> reconnected ${Math.round(back.t - left.t)} ms, ` +
    `n1 is behind the ${DELAY_MS} ms proxy)`);
  const code = await Promise.race([exited, sleep(5000).then(() => 'still running')]);
  assert.equal(code, 0, `n2 stopped by itself once empty (exit 0): ${n2.log().split('\n').slice(-15).join('\n')}`);
  let ids = null; /* n2 deleted its entry on exit; n1 drops it at its next registry read (<= 1 s) */
  for (let i = 0; i < 30; i++) {
    ids = (await routeJson(n1.base, room, token)).candidates.map((c) => c.id);
    if (ids.length === 1) break;
    await sleep(100);
  }
  assert.deepEqual(ids, ['n1'], 'n2 is gone from the registry');
  await page.close();
});
