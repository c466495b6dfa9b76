// bench/cluster_failover.mjs — failover of a killed node's browser, K times
// (issue 15 item 6 goal: < 2 s p95 over 20 kills).
//
//   node bench/cluster_failover.mjs [--kills 20]
//
// A redis-server and three `hudong serve --redis` nodes (regions r1..r3) on
// 127.0.0.1, three Chromium pages (web/room.html, fake camera + microphone)
// in one room, page i placed on node i through {cluster, region}. Then K
// times: kill -9 the node that hosts page "pc" (whichever it is now), measure
// until pc has joined again elsewhere and every page decodes every other's
// video on a fresh subscription, and start a replacement node (a new id in
// the killed node's region) so the cluster stays three nodes. Prints each gap
// and p50 / p95 / max; writes bench/results/cluster_failover.json.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, launchChromium, sleep, startServer, stopServer, waitFor } from '../tests/e2e/lib.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const K = Number(process.argv[process.argv.indexOf('--kills') + 1]) || 20;
const ROOM = 'bench-failover';
const names = ['pa', 'pb', 'pc'];

async function startRedis(dir) {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((r) => {
      const sock = net.connect(port, '127.0.0.1', () => { sock.end(); r(true); });
      sock.on('error', () => r(false));
    });
    if (ok) return { proc, port };
    if (proc.exitCode !== null) break; /* the port was taken meanwhile */
    await sleep(50);
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start');
}

const tracks = () => window.hudong.stats().then((s) => (s ? s.tracks : []));
const decoding = (others, min, oldSids) => (ts) => others.every((o) => ts.some((t) => t.name === o && t.kind === 'video' && t.framesDecoded > min && !oldSids.includes(t.sid)));

const tmp = mkdtempSync(path.join(tmpdir(), 'hd-failover-'));
let redis = null;
for (let attempt = 1; !redis; attempt++) {
  try { redis = await startRedis(tmp); } catch (e) { if (attempt >= 5) throw e; }
}
const redisUrl = `redis://127.0.0.1:${redis.port}`;
let seq = 0;
async function startNode(region) { /* fresh ports: another test may take one between the probe and the bind */
  const id = `n${++seq}-${region}`;
  for (let attempt = 1; ; attempt++) {
    try { const n = await startServer(['--redis', redisUrl, '--node-id', id, '--region', region]); n.id = id; return n; } catch (e) { if (attempt >= 5) throw e; }
  }
}
const nodes = { r1: await startNode('r1'), r2: await startNode('r2'), r3: await startNode('r3') };
const browser = await launchChromium();
const gaps = [];
const allNodes = [];
const track = (n) => { allNodes.push(n); return n; };
for (const r of Object.keys(nodes)) track(nodes[r]);
try {
  const tok = async (name) => (await (await fetch(`${nodes.r1.base}/api/dev-token?room=${ROOM}&identity=${name}`)).json()).token;
  await sleep(2500); // every node in every registry read
  const pages = [];
  for (let i = 0; i < 3; i++) {
    const b = nodes[`r${i + 1}`].base;
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${b}/room.html?room=${ROOM}&name=${names[i]}&autojoin=1&w=320&h=180&fps=15&cluster=${encodeURIComponent(b)}&region=r${i + 1}&token=${await tok(names[i])}`);
    pages.push(page);
  }
  for (let i = 0; i < 3; i++)
    await waitFor(pages[i], tracks, decoding(names.filter((n) => n !== names[i]), 20, []), 30000, `${names[i]} decoding the others`);
  for (let k = 0; k < K; k++) {
    const nodeId = await pages[2].evaluate(() => window.hudong.room.node.id);
    const region = Object.keys(nodes).find((r) => nodeId.endsWith(`-${r}`));
    const old = await Promise.all(pages.map((p) => p.evaluate(tracks).then((ts) => ts.filter((t) => t.name === 'pc').map((t) => t.sid))));
    const marks = await Promise.all(pages.map((p) => p.evaluate(() => window.hudong.events.length)));
    const t0 = Date.now();
    nodes[region].proc.kill('SIGKILL');
    await waitFor(pages[2], () => ({ s: window.hudong.state, n: window.hudong.room && window.hudong.room.node && window.hudong.room.node.id }),
      (v) => v.s === 'connected' && v.n && v.n !== nodeId, 15000, 'pc rejoined');
    const joined = Date.now() - t0;
    /* pc's subscriber PC is new: any decoded count is fresh; pa and pb must decode pc's new track */
    const steps = {};
    await Promise.all([
      waitFor(pages[2], tracks, decoding(['pa', 'pb'], 5, []), 15000, 'pc decoding pa and pb').then(() => { steps.pc = Date.now() - t0; }),
      ...[0, 1].map((i) => waitFor(pages[i], tracks, decoding(['pc'], 5, old[i]), 15000, `${names[i]} decoding pc`)
        .then(() => { steps[names[i]] = Date.now() - t0; }))]);
    const all = Date.now() - t0;
    /* which pages had to rejoin (those on the killed node), with their attempts */
    const moved = [];
    for (let i = 0; i < 3; i++) {
      const ev = await pages[i].evaluate((m) => window.hudong.events.slice(m), marks[i]);
      const rec = ev.filter((e) => e.type === 'reconnected');
      if (rec.length) moved.push(`${names[i]}: ${rec.map((e) => `${e.ms} ms/${e.attempts} attempt(s)`).join(', ')}`);
    }
    /* the allocator pausing a page's new subscription (streamState paused) explains a slow page */
    const paused = [];
    for (let i = 0; i < 3; i++) {
      const ev = await pages[i].evaluate((m) => window.hudong.events.slice(m), marks[i]);
      const ps = ev.filter((e) => e.type === 'streamState' && e.state === 'paused').map((e) => e.reason);
      if (ps.length) paused.push(`${names[i]}: ${ps.join(',')}`);
    }
    if (paused.length) console.log(`  paused streams after the kill: ${paused.join('; ')}`);
    if (process.env.FAILOVER_EVENTS) {
      const ev = await pages[0].evaluate((m) => window.hudong.events.slice(m), marks[0]);
      console.log(`  pa events: ${ev.map((e) => `${Math.round(e.at - ev[0].at)}:${e.type}${e.state ? '/' + e.state : ''}${e.reason ? '/' + e.reason : ''}${e.participant ? '/' + e.participant : ''}`).join(' ')}`);
    }
    gaps.push({ kill: k + 1, killed: nodeId, joined_ms: joined, all_decoding_ms: all, decoding_ms: steps, rejoined: moved });
    console.log(`kill ${k + 1}/${K}: ${nodeId} killed; pc joined again after ${joined} ms, everyone decoding everyone after ${all} ms (${JSON.stringify(steps)}; ${moved.join('; ')})`);
    nodes[region] = track(await startNode(region)); // the cluster stays three nodes
    await sleep(11000); // the replacement is in every registry read, and in the pages' node lists (web/rtc.js nodesRefreshMs)
  }
} catch (e) {
  console.error(String(e.message).slice(0, 3000));
  for (const n of allNodes) console.error(`---- ${n.id} log (tail)\n${n.log().split('\n').filter((l) => !/quality|http:/.test(l)).slice(-40).join('\n')}`);
  if (process.env.FAILOVER_LOGS) { /* every node's whole log, to see which side lacks what */
    mkdirSync(process.env.FAILOVER_LOGS, { recursive: true });
    for (const n of allNodes) writeFileSync(path.join(process.env.FAILOVER_LOGS, `${n.id}.log`), n.log());
  }
  process.exitCode = 1;
} finally {
  await browser.close().catch(() => {});
  for (const n of Object.values(nodes)) await stopServer(n).catch(() => {});
  redis.proc.kill('SIGTERM');
  rmSync(tmp, { recursive: true, force: true });
}
const pct = (arr, p) => { const s = [...arr].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };
const j = gaps.map((g) => g.joined_ms), a = gaps.map((g) => g.all_decoding_ms);
const summary = { date: new Date().toISOString().slice(0, 10), kills: gaps.length,
  joined_ms: { p50: pct(j, 50), p95: pct(j, 95), max: Math.max(...j) },
  all_decoding_ms: { p50: pct(a, 50), p95: pct(a, 95), max: Math.max(...a) }, runs: gaps };
console.log(`pc joined again: p50 ${summary.joined_ms.p50} ms, p95 ${summary.joined_ms.p95} ms, max ${summary.joined_ms.max} ms; ` +
  `everyone decoding everyone: p50 ${summary.all_decoding_ms.p50} ms, p95 ${summary.all_decoding_ms.p95} ms, max ${summary.all_decoding_ms.max} ms`);
mkdirSync(path.join(here, 'results'), { recursive: true });
writeFileSync(path.join(here, 'results', 'cluster_failover.json'), JSON.stringify(summary, null, 1));
