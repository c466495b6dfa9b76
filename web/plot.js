// A small time-series plot on a <canvas> for the quality dashboard
// (docs/quality.md "Dashboard"). Hand-written instead of vendoring uPlot: the
// node serves web/ as is (no build step, `make run` works offline) and the
// dashboard needs lines, bands and markers over time only.
//
// drawPlot(canvas, {title, unit, tMin, tMax, series: [{name, color, points: [[t_ms, value|null], ...]}],
//   bands: [[t0_ms, t1_ms, label]], markers: [{t, label, color}]}) -> {points, bands, markers}
// (what was drawn, for tests).
export function drawPlot(canvas, spec) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 600, h = canvas.clientHeight || 140;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  g.fillStyle = '#fff';
  g.fillRect(0, 0, w, h);
  const L = 52, R = 8, T = 18, B = 18;
  const pw = w - L - R, ph = h - T - B;
  const all = spec.series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined && Number.isFinite(p[1])));
  let tMin = spec.tMin ?? Math.min(...all.map((p) => p[0]));
  let tMax = spec.tMax ?? Math.max(...all.map((p) => p[0]));
  if (!Number.isFinite(tMin) || !Number.isFinite(tMax)) { tMin = Date.now() - 60000; tMax = Date.now(); }
  if (tMax <= tMin) tMax = tMin + 1000;
  let yMax = Math.max(0, ...all.map((p) => p[1]));
  if (yMax <= 0) yMax = 1;
  yMax *= 1.1;
  const x = (t) => L + ((t - tMin) / (tMax - tMin)) * pw;
  const y = (v) => T + ph - (v / yMax) * ph;
  // frame, grid and labels
  g.strokeStyle = '#ddd';
  g.lineWidth = 1;
  g.font = '11px system-ui, sans-serif';
  g.fillStyle = '#555';
  for (let i = 0; i <= 4; i++) {
    const v = (yMax / 4) * i;
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(L + pw, y(v)); g.stroke();
    g.fillText(fmt(v), 2, y(v) + 4);
  }
  for (let i = 0; i <= 4; i++) {
    const t = tMin + ((tMax - tMin) / 4) * i;
    g.fillText(new Date(t).toLocaleTimeString(), Math.min(x(t) - 20, w - 60), h - 4);
  }
  g.fillStyle = '#222';
  g.fillText(`${spec.title || ''}${spec.unit ? ` (${spec.unit})` : ''}`, L, 12);
  // freeze bands under the lines
  let bands = 0;
  g.fillStyle = 'rgba(220, 40, 40, 0.25)';
  for (const [t0, t1] of spec.bands || []) {
    const a = Math.max(x(t0), L), b = Math.min(x(t1), L + pw);
    if (b > a) { g.fillRect(a, T, Math.max(b - a, 2), ph); bands++; }
  }
  // lines
  let points = 0;
  let lx = L + pw - 4;
  for (const s of spec.series) {
    g.strokeStyle = s.color || '#1565c0';
    g.lineWidth = 1.5;
    g.beginPath();
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null || v === undefined || !Number.isFinite(v)) { pen = false; continue; }
      if (pen) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
      pen = true;
      points++;
    }
    g.stroke();
    for (const [t, v] of s.points) if (Number.isFinite(v)) { g.fillStyle = s.color || '#1565c0'; g.fillRect(x(t) - 1.5, y(v) - 1.5, 3, 3); }
    g.fillStyle = s.color || '#1565c0';
    const tw = g.measureText(s.name).width;
    lx -= tw;
    g.fillText(s.name, lx, 12);
    lx -= 10;
  }
  // event markers
  let markers = 0;
  for (const m of spec.markers || []) {
    if (m.t < tMin || m.t > tMax) continue;
    g.strokeStyle = m.color || '#888';
    g.setLineDash([3, 3]);
    g.beginPath(); g.moveTo(x(m.t), T); g.lineTo(x(m.t), T + ph); g.stroke();
    g.setLineDash([]);
    g.fillStyle = m.color || '#555';
    g.fillText(m.label, x(m.t) + 2, T + 10 + (markers % 3) * 11);
    markers++;
  }
  return { points, bands, markers };
}

function fmt(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  if (v < 1 && v > 0) return v.toFixed(3);
  return v.toFixed(0);
}
