// Client side of edge scheduling (issue 15 item 4; docs/overlay.md "Routing:
// the client side"). Given the URL of any node of a cluster, find the node
// this client should join:
//
//  1. GET <cluster>/api/route?room=R with the room token: the node's own pick
//     and the live candidates (id, url, eligible, ...);
//  2. measure the RTT to each eligible candidate (at most opts.maxProbe, 8):
//     a few GET <url>/api/ping in a row per node (opts.pingSamples, 3), all
//     nodes in parallel, each sample cut at opts.pingTimeoutMs (1000); the
//     smallest sample is the RTT (the first one also pays for TCP/TLS set-up);
//  3. GET /api/route again with rtt=id:ms,... : the node weighs RTT and load
//     (score rtt_ms + 100 x load; docs/overlay.md rule 4);
//  4. the answer: the chosen node first, then the other eligible candidates
//     that answered a ping, fastest first, then those that did not (the
//     caller falls back along this list when a node does not answer).
//
// Pure helpers (tokenRoom, rttParam, orderNodes) are exported for the unit
// test tests/e2e/route_unit.test.mjs; fetch is injectable (opts.fetch).

// The room named by a Hudong token (its grants.room), without verifying it:
// the node does that. null if the token has no readable room.
export function tokenRoom(token) {
  try {
    const part = String(token).split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((part.length + 3) % 4);
    const json = typeof atob === 'function' ? atob(b64) : Buffer.from(b64, 'base64').toString('binary');
    const claims = JSON.parse(json);
    return claims && claims.grants && typeof claims.grants.room === 'string' && claims.grants.room ? claims.grants.room : null;
  } catch {
    return null;
  }
}

// The rtt query value: "id:ms,id:ms" for the measured nodes (null = not
// measured), at most 16 pairs (the node's cap), ms rounded into 0..60000.
export function rttParam(rtts) {
  const pairs = [];
  for (const [id, ms] of Object.entries(rtts)) {
    if (typeof ms !== 'number' || !Number.isFinite(ms)) continue;
    pairs.push(`${id}:${Math.min(60000, Math.max(0, Math.round(ms)))}`);
    if (pairs.length === 16) break;
  }
  return pairs.join(',');
}

// The nodes to try, in order, from a /api/route answer and the measured RTTs:
// the chosen node, then the other eligible candidates with an RTT (fastest
// first), then the eligible ones without (in the answer's order). Never a
// draining or full node (not eligible), never the same node twice.
export function orderNodes(answer, rtts = {}) {
  const out = [];
  const seen = new Set();
  const add = (n) => {
    if (!n || !n.url || seen.has(n.id)) return;
    seen.add(n.id);
    out.push({ id: n.id, url: n.url, rtt: typeof rtts[n.id] === 'number' ? rtts[n.id] : null });
  };
  if (answer && answer.node) add(answer.node);
  const cands = ((answer && answer.candidates) || []).filter((c) => c.eligible !== false && !c.draining);
  const measured = cands.filter((c) => typeof rtts[c.id] === 'number').sort((a, b) => rtts[a.id] - rtts[b.id] || (a.id < b.id ? -1 : 1));
  for (const c of measured) add(c);
  for (const c of cands) add(c);
  return out;
}

function trimSlash(u) { return String(u).replace(/\/+$/, ''); }

// RTT in ms to a node (smallest of `samples` sequential GET /api/ping), or
// null when no sample answered within timeoutMs.
export async function measureRtt(url, opts = {}) {
  const f = opts.fetch || fetch;
  const samples = opts.pingSamples || 3, timeoutMs = opts.pingTimeoutMs || 1000;
  let best = null;
  for (let i = 0; i < samples; i++) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), timeoutMs);
    const t0 = performance.now();
    try {
      const r = await f(`${trimSlash(url)}/api/ping?n=${i}`, { cache: 'no-store', signal: ctl.signal });
      await r.text();
      if (r.ok) {
        const ms = performance.now() - t0;
        if (best === null || ms < best) best = ms;
      }
    } catch {
      if (best === null && i === 0) { clearTimeout(t); return null; } /* unreachable: do not wait for more */
    } finally {
      clearTimeout(t);
    }
  }
  return best;
}

async function askRoute(f, base, room, token, opts, rtt) {
  let q = `room=${encodeURIComponent(room)}`;
  if (opts.region) q += `&region=${encodeURIComponent(opts.region)}`;
  if (opts.labels) q += `&labels=${encodeURIComponent(opts.labels)}`;
  if (rtt) q += `&rtt=${encodeURIComponent(rtt)}`;
  const r = await f(`${trimSlash(base)}/api/route?${q}`, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
  const text = await r.text();
  let js = null;
  try { js = JSON.parse(text); } catch { /* not JSON: an error text */ }
  if (r.status === 503 && js) return js; /* every node full or draining: no "node", the caller says so */
  if (!r.ok || !js) throw new Error(`${base}/api/route: ${r.status} ${text.trim().slice(0, 200)}`);
  return js;
}

// Routes through the cluster node(s) at `bases` (the first that answers):
// resolves {nodes: [{id, url, rtt}], rtts, answer, reason, via}; throws when no
// base answers or the cluster has no eligible node (err.retryAfter then).
export async function routeToNode(bases, token, opts = {}) {
  const f = opts.fetch || fetch;
  const room = tokenRoom(token);
  if (!room) throw new Error('cluster routing: the token names no room (grants.room)');
  let first = null, via = null, lastErr = null;
  for (const b of [].concat(bases).filter(Boolean)) {
    try { first = await askRoute(f, b, room, token, opts, ''); via = b; break; } catch (e) { lastErr = e; }
  }
  if (!first) throw lastErr || new Error('cluster routing: no cluster URL');
  const rtts = {};
  if (first.cluster !== false && opts.measureRtt !== false) {
    const cands = (first.candidates || []).filter((c) => c.eligible !== false && !c.draining && c.url).slice(0, opts.maxProbe || 8);
    const res = await Promise.all(cands.map((c) => measureRtt(c.url, opts)));
    cands.forEach((c, i) => { if (res[i] !== null) rtts[c.id] = res[i]; });
  }
  let answer = first;
  const rtt = rttParam(rtts);
  if (rtt) {
    try { answer = await askRoute(f, via, room, token, opts, rtt); } catch { answer = first; }
  }
  const nodes = orderNodes(answer, rtts);
  if (!nodes.length) {
    const e = new Error(`cluster routing: ${answer.error || 'no node to join'}`);
    e.retryAfter = 5;
    throw e;
  }
  return { nodes, rtts, answer, reason: answer.reason || null, via };
}
