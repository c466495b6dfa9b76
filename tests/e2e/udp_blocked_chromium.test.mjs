// Media when UDP is blocked (issue 12 item 15): Chromium runs in a network
// namespace whose UDP is dropped (iptables, both directions), reaches the node
// in the root namespace over a veth pair, and two pages of it hold a call:
//  (a) over ICE-TCP: the node's passive TCP candidate (RFC 6544, src/io/ice_tcp.c);
//  (b) over TURN/TLS: ICE-TCP off, a coturn started here on free ports with a
//      self-signed certificate, credentials minted by the node in the /rtc
//      "joined" message (docs/turn.md).
// Each page must decode the other's camera and receive its audio, its selected
// candidate pair must be the expected transport, and the namespace's UDP drop
// counter must have counted the browser's UDP attempts.
//
// Needs root and network namespaces (`ip netns`), iptables and coturn
// (tools/install-deps.sh); without root or netns support it skips, saying why.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort as freePortOn, hudongBin, launchChromium, metrics, root, sleep, waitFor } from './lib.mjs';

const tag = String(process.pid % 100000);
const NS = `hdudp${tag}`;
const VETH_HOST = `hdu${tag}h`;
const VETH_NS = `hdu${tag}n`;
// a /30 of 10.231.0.0/16 chosen by pid: concurrent runs do not share it
const sub = (process.pid % 16000) * 4;
const HOST_IP = `10.231.${sub >> 8}.${(sub & 255) + 1}`;
const NS_IP = `10.231.${sub >> 8}.${(sub & 255) + 2}`;

function run(cmd, args) {
  return execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}
function tryRun(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`, error: r.error };
}

// Why this test cannot run here, or null.
function skipReason() {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'not root: network namespaces need root (CI runs as root)';
  const probe = `hdprobe${tag}`;
  const r = tryRun('ip', ['netns', 'add', probe]);
  if (!r.ok) return `no network namespace support (ip netns add: ${r.error ? r.error.message : r.out.trim()})`;
  tryRun('ip', ['netns', 'del', probe]);
  return null;
}
const SKIP = skipReason();
if (SKIP) console.log(`# SKIP udp_blocked_chromium: ${SKIP}`);

let tmp;
const procs = [];

function setupNetns() {
  for (const tool of ['iptables', 'turnserver', 'openssl']) {
    if (!tryRun('sh', ['-c', `command -v ${tool}`]).ok) throw new Error(`${tool} is not installed: run tools/install-deps.sh`);
  }
  run('ip', ['netns', 'add', NS]);
  run('ip', ['link', 'add', VETH_HOST, 'type', 'veth', 'peer', 'name', VETH_NS]);
  run('ip', ['link', 'set', VETH_NS, 'netns', NS]);
  run('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', VETH_HOST]);
  run('ip', ['link', 'set', VETH_HOST, 'up']);
  run('ip', ['netns', 'exec', NS, 'ip', 'addr', 'add', `${NS_IP}/30`, 'dev', VETH_NS]);
  run('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', VETH_NS, 'up']);
  run('ip', ['netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up']);
  // the firewall: no UDP leaves or enters the namespace except on loopback
  run('ip', ['netns', 'exec', NS, 'iptables', '-A', 'OUTPUT', '-o', 'lo', '-j', 'ACCEPT']);
  run('ip', ['netns', 'exec', NS, 'iptables', '-A', 'OUTPUT', '-p', 'udp', '-j', 'DROP']);
  run('ip', ['netns', 'exec', NS, 'iptables', '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT']);
  run('ip', ['netns', 'exec', NS, 'iptables', '-A', 'INPUT', '-p', 'udp', '-j', 'DROP']);
}

function teardownNetns() {
  tryRun('ip', ['link', 'del', VETH_HOST]); // takes its peer with it
  tryRun('ip', ['netns', 'del', NS]);
}

// UDP datagrams the namespace's OUTPUT chain dropped so far.
function udpDropped() {
  const out = run('ip', ['netns', 'exec', NS, 'iptables', '-L', 'OUTPUT', '-v', '-n', '-x']);
  const line = out.split('\n').find((l) => /DROP\s+(udp|17)\b/.test(l));
  return line ? Number(line.trim().split(/\s+/)[0]) : 0;
}

async function startNode(config) {
  const httpPort = await freePortOn(HOST_IP);
  const rtcPort = await freePortOn(HOST_IP, 1);
  const cfgPath = path.join(tmp, `node-${httpPort}.json`);
  writeFileSync(cfgPath, JSON.stringify({ listen: `${HOST_IP}:${httpPort}`, rtc_port: rtcPort, media_workers: 1, ...config }));
  const proc = spawn(hudongBin, ['serve', '--dev', '--config', cfgPath], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  const base = `http://${HOST_IP}:${httpPort}`;
  for (let i = 0; i < 100 && proc.exitCode === null; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return { proc, base, rtcPort, log: () => log };
    } catch { /* not up yet */ }
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`hudong serve did not start:\n${log}`);
}

async function stopProc(proc) {
  if (!proc || proc.exitCode !== null) return proc ? proc.exitCode : 0;
  proc.kill('SIGTERM');
  return new Promise((resolve) => {
    const t = setTimeout(() => { proc.kill('SIGKILL'); resolve(-9); }, 5000);
    proc.on('exit', (c) => { clearTimeout(t); resolve(c); });
  });
}

// Chromium started inside the namespace: playwright talks to it over a pipe,
// so only its network is in there.
async function launchInNetns(extraArgs = []) {
  const wrapper = path.join(tmp, 'chromium-in-netns.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${NS} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const saved = process.env.CHROMIUM;
  process.env.CHROMIUM = wrapper;
  try {
    return await launchChromium(extraArgs);
  } finally {
    if (saved === undefined) delete process.env.CHROMIUM; else process.env.CHROMIUM = saved;
  }
}

const remoteTracks = () => window.hudong.stats().then((s) => (s ? s.tracks : []));
function hears(tracks, from) {
  return tracks.some((t) => t.name === from && t.kind === 'video' && t.framesDecoded > 30) &&
    tracks.some((t) => t.name === from && t.kind === 'audio' && t.packetsReceived > 0);
}

// The selected candidate pair of each PeerConnection: local/remote protocol and type.
const selectedPairs = async () => {
  const out = {};
  for (const [k, pc] of [['pub', window.hudong.room.pub], ['sub', window.hudong.room.sub]]) {
    const st = await pc.getStats();
    let pair = null;
    st.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = st.get(s.selectedCandidatePairId); });
    if (!pair) st.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    const l = pair && st.get(pair.localCandidateId);
    const r = pair && st.get(pair.remoteCandidateId);
    out[k] = pair ? {
      local: { protocol: l.protocol, type: l.candidateType, relayProtocol: l.relayProtocol || null },
      remote: { protocol: r.protocol, type: r.candidateType, address: r.address, port: r.port },
    } : null;
  }
  return out;
};

// Two pages of one Chromium in the namespace join `room` on node and decode each other.
async function call(node, room, extraArgs, check) {
  // the node is not on localhost: getUserMedia needs its origin treated as secure
  const browser = await launchInNetns([`--unsafely-treat-insecure-origin-as-secure=${node.base}`, ...extraArgs]);
  const problems = [];
  try {
    const pages = [];
    for (const name of ['a', 'b']) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      page.on('pageerror', (e) => problems.push(`${name}: pageerror ${e.message}`));
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: ${m.text()}`); });
      await page.goto(`${node.base}/room.html?room=${room}&name=${name}&autojoin=1&w=320&h=180&fps=15`);
      pages.push(page);
    }
    const names = ['a', 'b'];
    for (let i = 0; i < 2; i++) {
      try {
        await waitFor(pages[i], () => window.hudong.state, (s) => s === 'connected', 15000, `${names[i]} joined`);
        await waitFor(pages[i], remoteTracks, (t) => hears(t, names[1 - i]), 30000, `${names[i]} decoding ${names[1 - i]}`);
      } catch (e) {
        const pairs = await pages[i].evaluate(selectedPairs).catch((x) => String(x));
        throw new Error(`${e.message}\npairs: ${JSON.stringify(pairs)}\nproblems: ${problems.join('\n')}\n` +
          `server log (tail):\n${node.log().split('\n').slice(-40).join('\n')}`);
      }
    }
    for (let i = 0; i < 2; i++) check(names[i], await pages[i].evaluate(selectedPairs));
  } finally {
    await browser.close().catch(() => {});
  }
}

before(() => {
  if (SKIP) return;
  tmp = mkdtempSync(path.join(tmpdir(), 'hudong-udpblocked-'));
  teardownNetns(); // leftovers of a killed run with the same pid
  setupNetns();
});

after(async () => {
  for (const p of procs) await stopProc(p);
  if (!SKIP) teardownNetns();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('UDP blocked: two Chromium pages hold a call over ICE-TCP', { skip: SKIP || false }, async () => {
  // the namespace really drops UDP: a datagram to the host is counted, never delivered
  const dropped0 = udpDropped();
  tryRun('ip', ['netns', 'exec', NS, 'bash', '-c', `echo x > /dev/udp/${HOST_IP}/9`]);
  assert.ok(udpDropped() > dropped0, 'the namespace drops UDP');
  const node = await startNode({});
  const before = udpDropped();
  await call(node, 'tcp-room', [], (name, pairs) => {
    console.log(`  ${name}: ${JSON.stringify(pairs)}`);
    for (const k of ['pub', 'sub']) {
      assert.ok(pairs[k], `${name} ${k}: a selected candidate pair`);
      assert.equal(pairs[k].local.protocol, 'tcp', `${name} ${k}: local candidate is TCP`);
      assert.equal(pairs[k].remote.protocol, 'tcp', `${name} ${k}: remote candidate is the node's TCP one`);
      assert.equal(pairs[k].remote.port, node.rtcPort, `${name} ${k}: on the media port number`);
    }
  });
  const m = await metrics(node.base);
  assert.ok(m.hudong_ice_tcp_accepted_total >= 4, `ICE-TCP connections accepted: ${m.hudong_ice_tcp_accepted_total}`);
  assert.ok(udpDropped() > before, 'the browser tried UDP and the namespace dropped it');
  console.log(`  UDP datagrams dropped in the namespace: ${udpDropped() - before}; ICE-TCP accepted ${m.hudong_ice_tcp_accepted_total}`);
  assert.equal(await stopProc(node.proc), 0, `hudong serve exits 0:\n${node.log()}`);
});

// coturn on HOST_IP: TURN over TLS only (no plain listener is used by the page),
// REST API credentials with `secret` (what the node mints), relays on a small
// port range, a self-signed certificate for HOST_IP.
async function startCoturn(secret) {
  const cert = path.join(tmp, 'turn-cert.pem');
  const key = path.join(tmp, 'turn-key.pem');
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-keyout', key, '-out', cert, '-subj', `/CN=${HOST_IP}`, '-addext', `subjectAltName=IP:${HOST_IP}`]);
  const plain = await freePortOn(HOST_IP);
  const tls = await freePortOn(HOST_IP);
  const relay = 40000 + (process.pid % 200) * 100; // 100 relay ports of our own
  const args = ['-n', '-v', '--no-cli', '--listening-ip', HOST_IP, '--relay-ip', HOST_IP, '--listening-port', String(plain),
    '--tls-listening-port', String(tls), '--min-port', String(relay), '--max-port', String(relay + 99),
    '--cert', cert, '--pkey', key, '--use-auth-secret', '--static-auth-secret', secret, '--realm', 'hudong.test',
    '--no-dtls', '--no-multicast-peers', '--userdb', path.join(tmp, 'turndb'), '--log-file', 'stdout', '--simple-log', '--pidfile', path.join(tmp, 'turn.pid')];
  const proc = spawn('turnserver', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(proc);
  let log = '';
  proc.stdout.on('data', (d) => { log += d; });
  proc.stderr.on('data', (d) => { log += d; });
  // up when its TLS port accepts a connection
  for (let i = 0; i < 50 && proc.exitCode === null; i++) {
    const ok = await new Promise((resolve) => {
      const s = createConnection({ host: HOST_IP, port: tls }, () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) return { proc, tls, log: () => log };
    await sleep(100);
  }
  proc.kill('SIGKILL');
  throw new Error(`turnserver did not start:\n${log}`);
}

test('UDP blocked, no ICE-TCP: two Chromium pages hold a call over TURN/TLS (coturn, node-minted credentials)', { skip: SKIP || false }, async () => {
  const secret = `turn-secret-${process.pid}-0123456789`;
  const turn = await startCoturn(secret);
  const node = await startNode({
    ice_tcp: { enabled: false },
    turn: { urls: [`turns:${HOST_IP}:${turn.tls}?transport=tcp`], secret, ttl_seconds: 600 },
  });
  // the self-signed certificate: Chromium's TURN/TLS client checks certificates like any other TLS client
  await call(node, 'turn-room', ['--ignore-certificate-errors'], (name, pairs) => {
    console.log(`  ${name}: ${JSON.stringify(pairs)}`);
    for (const k of ['pub', 'sub']) {
      assert.ok(pairs[k], `${name} ${k}: a selected candidate pair`);
      assert.equal(pairs[k].local.type, 'relay', `${name} ${k}: local candidate is a TURN relay`);
      assert.equal(pairs[k].local.relayProtocol, 'tls', `${name} ${k}: reached over TURN/TLS`);
      assert.equal(pairs[k].remote.protocol, 'udp', `${name} ${k}: relayed to the node's UDP port`);
    }
  });
  const m = await metrics(node.base);
  assert.equal(m.hudong_ice_tcp_accepted_total || 0, 0, 'no ICE-TCP (off in this run)');
  const users = [...turn.log().matchAll(/user <(\d+):([^>]+)>: incoming packet ALLOCATE processed, success/g)];
  console.log(`  coturn allocations: ${users.map((u) => u[2]).join(', ')}`);
  assert.ok(users.length >= 2, `coturn allocated for node-minted users:\n${turn.log().split('\n').filter((l) => /user </.test(l)).slice(0, 10).join('\n')}`);
  assert.equal(await stopProc(node.proc), 0, `hudong serve exits 0:\n${node.log()}`);
});
