// The quality dashboard (docs/quality.md "Dashboard"): the four numbers over
// time from GET /admin/quality/summary, the calls of the range, and one call
// with a timeline per participant (bitrate, loss, RTT, jitter-buffer delay,
// freezes as bands, events and layer switches as markers), all from the
// /admin/quality API with an app-wide roomAdmin token (?token=, or in --dev
// mode one minted by /api/dev-token?admin=1). window.__dashboard keeps what
// was fetched and drawn, for tests.
import { drawPlot } from './plot.js';

const $ = (id) => document.getElementById(id);
const state = { summary: null, calls: null, call: null, plotted: {} };
window.__dashboard = state;

async function token() {
  const q = new URLSearchParams(location.search).get('token');
  if (q) $('token').value = q;
  if ($('token').value) return $('token').value;
  const r = await fetch('/api/dev-token?admin=1');
  if (!r.ok) throw new Error('no token: paste an app-wide roomAdmin token (hudong token --admin, no --room)');
  $('token').value = (await r.json()).token;
  return $('token').value;
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${await token()}` } });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.text()).trim()}`);
  return r.json();
}

const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(2)}%`);
const num = (v, d = 0) => (v === null || v === undefined ? '–' : Number(v).toFixed(d));

function plot(id, spec) {
  state.plotted[id] = drawPlot($(id), spec);
  state.plotted[id].series = spec.series.map((s) => ({ name: s.name, points: s.points }));
}

function cards(s) {
  const c = [
    ['join success (5 s)', pct(s.join.success_rate_5s), `${s.join.succeeded_5s}/${s.join.attempts}`],
    ['join success (1 s)', pct(s.join.success_rate_1s), `${s.join.failed} failed`],
    ['RTT (client)', `${num(s.latency.client_rtt_ms, 1)} ms`, `node ${num(s.latency.node_downlink_rtt_ms, 1)} ms`],
    ['jitter buffer', `${num(s.latency.jitter_buffer_ms, 1)} ms`, 'end to end: not measured'],
    ['video stall rate', pct(s.stall.video_stall_rate), `${s.stall.freezes} freezes`],
    ['audio stall rate', pct(s.stall.audio_stall_rate), 'concealed / played'],
    ['loss (client)', pct(s.stall.loss_rate), `uplink residual ${pct(s.network.uplink_residual_loss_rate)}`],
    ['delivery (RTM)', pct(s.delivery.delivery_rate),
      `${s.delivery.delivered}/${s.delivery.delivered + s.delivery.given_up} acked, ${s.delivery.sent} sent`],
    ['delivery latency', s.delivery.latency_ms ? `${num(s.delivery.latency_ms.p50, 0)} ms` : '–',
      s.delivery.latency_ms ? `p95 ${num(s.delivery.latency_ms.p95, 0)} ms (publish → ack)` : 'nothing acked'],
  ];
  $('cards').innerHTML = c.map(([k, v, sub]) => `<div class="card">${k}<b>${v}</b><small>${sub}</small></div>`).join('');
}

async function refresh() {
  $('status').textContent = 'loading…';
  const range = Number($('range').value);
  const to = Date.now() + 1, from = to - range;
  const bucket = Math.max(5000, Math.round(range / 120 / 5000) * 5000);
  try {
    const [s, calls, alerts] = await Promise.all([
      api(`/admin/quality/summary?from=${from}&to=${to}&bucket=${bucket}`),
      api(`/admin/quality/calls?from=${from}&to=${to}`),
      api(`/admin/quality/alerts?from=${from}&to=${to}`),
    ]);
    state.summary = s;
    state.calls = calls;
    cards(s);
    const ser = s.series;
    plot('plot-stall', { title: 'stall rate', unit: '%', tMin: from, tMax: to, series: [
      { name: 'video', color: '#c62828', points: ser.map((b) => [b.t, b.video_stall_rate === undefined || b.video_stall_rate === null ? null : b.video_stall_rate * 100]) },
      { name: 'audio', color: '#6a1b9a', points: ser.map((b) => [b.t, b.audio_stall_rate === undefined || b.audio_stall_rate === null ? null : b.audio_stall_rate * 100]) }] });
    plot('plot-join', { title: 'join success', unit: '%', tMin: from, tMax: to, series: [
      { name: 'within 5 s', color: '#2e7d32', points: ser.map((b) => [b.t, b.success_rate_5s === undefined || b.success_rate_5s === null ? null : b.success_rate_5s * 100]) }] });
    plot('plot-delivery', { title: 'RTM delivery rate', unit: '%', tMin: from, tMax: to, series: [
      { name: 'acked / settled', color: '#283593', points: ser.map((b) => [b.t, b.delivery_rate === undefined || b.delivery_rate === null ? null : b.delivery_rate * 100]) }] });
    plot('plot-rtt', { title: 'RTT and jitter buffer', unit: 'ms', tMin: from, tMax: to, series: [
      { name: 'client RTT', color: '#1565c0', points: ser.map((b) => [b.t, b.rtt_ms ?? null]) },
      { name: 'node RTT', color: '#00838f', points: ser.map((b) => [b.t, b.downlink_rtt_ms ?? null]) },
      { name: 'jitter buffer', color: '#ef6c00', points: ser.map((b) => [b.t, b.jitter_buffer_ms ?? null]) }] });
    $('alerts').innerHTML = alerts.alerts.length ? `<ul>${alerts.alerts.map((a) => `<li class="bad">${new Date(a.ts).toLocaleString()}: ${a.rule} — ${a.metric} = ${num(a.value, 4)} (threshold ${a.threshold})</li>`).join('')}</ul>` : 'none';
    const tb = $('calls').querySelector('tbody');
    tb.innerHTML = '';
    for (const c of calls.calls) {
      const tr = document.createElement('tr');
      tr.className = 'call';
      tr.dataset.sid = c.room_sid;
      const st = c.stall || {};
      tr.innerHTML = `<td>${c.room}</td><td>${c.room_sid}</td><td>${new Date(c.start).toLocaleTimeString()}</td><td>${new Date(c.end).toLocaleTimeString()}</td>
        <td>${c.participants}</td><td class="${st.video_stall_rate > 0.02 ? 'bad' : ''}">${pct(st.video_stall_rate)}</td><td>${st.freezes ?? '–'}</td>
        <td>${pct(st.audio_stall_rate)}</td><td>${pct(st.loss_rate)}</td><td>${num(st.rtt_ms, 1)}</td>`;
      tr.onclick = () => showCall(c.room_sid);
      tb.appendChild(tr);
    }
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`;
    const want = new URLSearchParams(location.search).get('call');
    if (want && !state.call) await showCall(want);
  } catch (e) {
    $('status').innerHTML = `<span class="err">${e.message}</span>`;
  }
}

// Column values of a track series as [t, v] points.
const col = (t, name, f = (v) => v) => {
  const i = t.columns.indexOf(name);
  return t.points.map((p) => [p[0], p[i] === null || p[i] === undefined ? null : f(p[i], p)]);
};

async function showCall(sid) {
  const c = await api(`/admin/quality/calls/${encodeURIComponent(sid)}`);
  state.call = c;
  const box = $('call');
  box.innerHTML = `<h2>Call ${c.room} (${c.room_sid})</h2><p>${new Date(c.start).toLocaleString()} – ${new Date(c.end).toLocaleTimeString()}</p>`;
  const tMin = c.start - 5000, tMax = c.end + 5000;
  c.participants.forEach((p, k) => {
    const div = document.createElement('div');
    div.className = 'person';
    const st = p.stall || {};
    const joins = (p.joins || []).map((j) => `${j.outcome}${j.first_media_ms !== null && j.first_media_ms !== undefined && j.first_media_ms >= 0 ? ` (first media ${j.first_media_ms} ms)` : ''}${j.reason ? `: ${j.reason}` : ''}`).join('; ');
    div.innerHTML = `<h3>${p.identity} <small>${p.sid}</small></h3>
      <p>video stall ${pct(st.video_stall_rate)}, ${st.freezes ?? 0} freezes, audio concealed ${pct(st.audio_stall_rate)}, RTT ${num(st.rtt_ms, 1)} ms, loss ${pct(st.loss_rate)}<br>joins: ${joins || '–'}</p>`;
    const ids = ['bitrate', 'loss', 'rtt', 'jb'].map((n) => `call-${k}-${n}`);
    for (const id of ids) { const cv = document.createElement('canvas'); cv.id = id; div.appendChild(cv); }
    box.appendChild(div);
    const client = p.tracks.filter((t) => t.source === 'client');
    const node = p.tracks.filter((t) => t.source === 'node');
    // freezes as bands: an interval with freezes is marked over its frozen time, at its end
    const bands = [];
    for (const t of client.filter((x) => x.kind === 'video')) {
      const fz = t.columns.indexOf('freeze_ms');
      for (const pt of t.points) if (pt[fz] > 0) bands.push([pt[0] - pt[fz], pt[0], 'freeze']);
    }
    const markers = (p.events || []).map((e) => ({ t: e.ts, label: e.type, color: e.type === 'left' ? '#b00' : '#555' }));
    for (const j of p.joins || []) markers.push({ t: j.ts, label: `join ${j.outcome}`, color: j.outcome === 'ok' ? '#2e7d32' : '#b00' });
    for (const t of node.filter((x) => x.dir === 'down' && x.kind === 'video')) {
      const li = t.columns.indexOf('layer');
      let prev = null;
      for (const pt of t.points) { if (pt[li] && prev !== null && pt[li] !== prev) markers.push({ t: pt[0], label: `layer ${pt[li]}`, color: '#00838f' }); prev = pt[li]; }
    }
    const colors = ['#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f', '#c62828'];
    const named = (arr, f) => arr.map((t, i) => ({ name: f(t), color: colors[i % colors.length] }));
    plot(ids[0], { title: 'bitrate', unit: 'kbit/s', tMin, tMax, bands, markers,
      series: [...named(node, (t) => `node ${t.dir} ${t.kind}`).map((s, i) => ({ ...s, points: col(node[i], 'bitrate_bps', (v) => v / 1000) })),
        ...named(client, (t) => `recv ${t.kind}`).map((s, i) => ({ ...s, color: colors[(i + 3) % 6], points: col(client[i], 'bitrate_bps', (v) => v / 1000) }))] });
    plot(ids[1], { title: 'loss', unit: '%', tMin, tMax, bands, series: [
      ...node.filter((t) => t.dir === 'up').map((t, i) => ({ name: `uplink ${t.kind} before repair`, color: colors[i % 6], points: col(t, 'lost', (v, pt) => { const n = pt[t.columns.indexOf('packets')]; return n + v > 0 ? (100 * v) / (n + v) : 0; }) })),
      ...client.map((t, i) => ({ name: `recv ${t.kind}`, color: colors[(i + 3) % 6], points: col(t, 'lost', (v, pt) => { const n = pt[t.columns.indexOf('packets')]; return n + v > 0 ? (100 * v) / (n + v) : 0; }) }))] });
    const rttClient = client[0] ? col(client[0], 'rtt_ms') : [];
    const rttNode = node.find((t) => t.dir === 'down');
    plot(ids[2], { title: 'RTT', unit: 'ms', tMin, tMax, bands, series: [
      { name: 'client', color: '#1565c0', points: rttClient }, { name: 'node (RR)', color: '#00838f', points: rttNode ? col(rttNode, 'rtt_ms') : [] }] });
    plot(ids[3], { title: 'jitter-buffer delay', unit: 'ms', tMin, tMax, bands, markers,
      series: client.map((t, i) => ({ name: `recv ${t.kind}`, color: colors[(i + 2) % 6], points: col(t, 'jitter_buffer_ms') })) });
  });
  state.callDrawn = true;
}

$('refresh').onclick = refresh;
$('range').onchange = refresh;
refresh();
setInterval(() => { if (!state.call) refresh(); }, 10000);
