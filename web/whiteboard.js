// Hudong whiteboard component (docs/whiteboard.md): a board on a room's RTM
// channel wb:<room>:<board>. The node orders every operation (one sequence
// number per board) and sends back the applied steps as entries; this
// component applies entries in that order with the same rules as the node
// (src/board/board.c), so every participant shows the same board.
//
//   const wb = new Whiteboard(document.getElementById('panel'), {
//     rtm,            // a logged-in RtmClient (web/rtm.js)
//     room, board: 'main', token,   // token: for /api/board (late join, replay, images)
//     name: 'Alice',  // shown next to your cursor on the others' screens
//   });
//   await wb.start();
//
// Tools: pen, highlighter, eraser (touched strokes, or an area), line, arrow,
// rectangle, ellipse, text, image, select (move, resize, z-order, delete),
// laser pointer; colours and widths; pages with thumbnails; undo/redo (per
// user, done by the node); zoom (wheel, buttons) and pan (hand tool, middle
// button, two fingers); export PNG and SVG; remote cursors with names.
// Pointer Events: mouse, pen (pressure) and touch alike.
//
// Live strokes: while the pen moves, the new points go out every 16 ms as an
// ephemeral "live" message; at pen-up the stroke is committed as one element
// (split every 1000 points, the node's cap). Cursors go out at most every 50 ms.

const LIVE_MS = 16;
const CURSOR_MS = 50;
const MAX_POINTS = 1000;
const CURSOR_TTL_MS = 5000;
const COLORS = ['#000000', '#e03131', '#2f9e44', '#1971c2', '#f08c00', '#9c36b5', '#ffffff'];
const WIDTHS = [2, 4, 8, 16];

// ---------------------------------------------------------------- the model
// The same state and step rules as src/board/board.c (hd_board_apply_entry).

export class BoardModel {
  constructor() { this.reset(); }

  reset() {
    this.seq = 0;
    this.pages = [{ id: 'p1', name: 'Page 1', els: [] }];
    this.byId = new Map(); // id -> {el, page}
  }

  load(snap) {
    this.seq = snap.seq;
    this.pages = snap.pages.map((p) => ({ id: p.id, name: p.name, els: p.els.map((e) => ({ ...e })) }));
    this.byId = new Map();
    for (const p of this.pages) for (const e of p.els) this.byId.set(e.id, { el: e, page: p });
  }

  page(id) { return this.pages.find((p) => p.id === id); }

  // Applies an entry; returns false for a gap or a duplicate (nothing done).
  apply(entry) {
    if (entry.seq !== this.seq + 1) return false;
    for (const st of entry.do) this.step(st);
    this.seq = entry.seq;
    return true;
  }

  step(st) {
    const at = st.at;
    switch (st.a) {
      case 'add': {
        const pg = this.page(st.page);
        if (!pg || this.byId.has(st.el.id)) return;
        const el = { ...st.el };
        pg.els.splice(at === undefined ? pg.els.length : Math.min(at, pg.els.length), 0, el);
        this.byId.set(el.id, { el, page: pg });
        return;
      }
      case 'del': {
        const r = this.byId.get(st.id);
        if (!r) return;
        r.page.els.splice(r.page.els.indexOf(r.el), 1);
        this.byId.delete(st.id);
        return;
      }
      case 'set': {
        const r = this.byId.get(st.id);
        if (!r) return;
        for (const [k, v] of Object.entries(st.f)) {
          if (k === 'id' || k === 'k' || k === 'v' || k === 'by') continue;
          if (v === null) delete r.el[k]; else r.el[k] = v;
        }
        r.el.v += 1;
        return;
      }
      case 'z': {
        const r = this.byId.get(st.id);
        if (!r) return;
        const els = r.page.els;
        els.splice(els.indexOf(r.el), 1);
        els.splice(Math.min(at, els.length), 0, r.el);
        r.el.v += 1;
        return;
      }
      case 'clear': {
        const pg = this.page(st.page);
        if (!pg) return;
        for (const e of pg.els) this.byId.delete(e.id);
        pg.els = [];
        return;
      }
      case 'padd': {
        if (this.page(st.page.id)) return;
        const pg = { id: st.page.id, name: st.page.name, els: [] };
        this.pages.splice(at === undefined ? this.pages.length : Math.min(at, this.pages.length), 0, pg);
        return;
      }
      case 'pdel': {
        const i = this.pages.findIndex((p) => p.id === st.id);
        if (i < 0 || this.pages.length <= 1) return;
        for (const e of this.pages[i].els) this.byId.delete(e.id);
        this.pages.splice(i, 1);
        return;
      }
      case 'pmove': {
        const i = this.pages.findIndex((p) => p.id === st.id);
        if (i < 0) return;
        const [pg] = this.pages.splice(i, 1);
        this.pages.splice(Math.min(at, this.pages.length), 0, pg);
        return;
      }
      default:
    }
  }

  // The canonical state text (keys sorted, compact): the same text as the
  // node's hd_board_hash input.
  canonical() { return canon(this.pages.map((p) => ({ id: p.id, name: p.name, els: p.els }))); }

  // FNV-1a 64 of the canonical state, as 16 hex digits (= hd_board_hash).
  hash() {
    const bytes = new TextEncoder().encode(this.canonical());
    let h = 0xcbf29ce484222325n;
    const p = 0x100000001b3n, m = (1n << 64n) - 1n;
    for (const b of bytes) h = ((h ^ BigInt(b)) * p) & m;
    return h.toString(16).padStart(16, '0');
  }
}

function canon(v) {
  if (Array.isArray(v)) return `[${v.map(canon).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- geometry

function bbox(el) { return { x: el.x, y: el.y, w: el.w, h: el.h }; }

function hitsBox(b, x, y, pad) { return x >= b.x - pad && x <= b.x + b.w + pad && y >= b.y - pad && y <= b.y + b.h + pad; }

function boxesMeet(a, b) { return a.x <= b.x + b.w && b.x <= a.x + a.w && a.y <= b.y + b.h && b.y <= a.y + a.h; }

function segDist(px, py, ax, ay, bx, by) {
  const dx = bx - ax, dy = by - ay, l = dx * dx + dy * dy;
  let t = l ? ((px - ax) * dx + (py - ay) * dy) / l : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (ax + t * dx), py - (ay + t * dy));
}

// Absolute points of a stroke/line/arrow, scaled by its frame (resize).
function absPoints(el) {
  const sx = el.w / (el.pw || 1), sy = el.h / (el.ph || 1);
  const step = el.k === 'stroke' ? 4 : 2, out = [];
  for (let i = 0; i + 1 < el.pts.length; i += step) {
    out.push([el.x + el.pts[i] * sx, el.y + el.pts[i + 1] * sy, step === 4 ? el.pts[i + 2] : 50]);
  }
  return out;
}

function hitElement(el, x, y, tol) {
  if (!hitsBox(bbox(el), x, y, tol + (el.sw || 0))) return false;
  if (el.k === 'stroke' || el.k === 'line' || el.k === 'arrow') {
    const p = absPoints(el);
    if (p.length === 1) return Math.hypot(p[0][0] - x, p[0][1] - y) <= tol + el.sw;
    for (let i = 1; i < p.length; i++) if (segDist(x, y, p[i - 1][0], p[i - 1][1], p[i][0], p[i][1]) <= tol + el.sw / 2) return true;
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- drawing

function alpha(el) { return (el.o ?? 100) / 100 * (el.hl ? 0.35 : 1); }

// Smooth stroke: quadratic curves through the midpoints of successive points
// (interpolated), the width following the pressure.
function drawStrokePts(ctx, pts, el) {
  ctx.strokeStyle = el.c; ctx.fillStyle = el.c;
  ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  const wOf = (p) => (el.hl ? el.sw * 3 : el.sw * (0.4 + 1.2 * (p / 100)));
  if (pts.length === 1) {
    ctx.beginPath(); ctx.arc(pts[0][0], pts[0][1], wOf(pts[0][2]) / 2, 0, 2 * Math.PI); ctx.fill();
    return;
  }
  let mx = pts[0][0], my = pts[0][1];
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0, p0] = pts[i - 1], [x1, y1] = pts[i];
    const nx = (x0 + x1) / 2, ny = (y0 + y1) / 2;
    ctx.beginPath();
    ctx.lineWidth = wOf(p0);
    ctx.moveTo(mx, my);
    ctx.quadraticCurveTo(x0, y0, nx, ny);
    if (i === pts.length - 1) ctx.lineTo(x1, y1);
    ctx.stroke();
    mx = nx; my = ny;
  }
}

function drawArrowHead(ctx, x0, y0, x1, y1, sw) {
  const a = Math.atan2(y1 - y0, x1 - x0), l = 6 + sw * 3;
  ctx.beginPath();
  ctx.moveTo(x1, y1);
  ctx.lineTo(x1 - l * Math.cos(a - 0.45), y1 - l * Math.sin(a - 0.45));
  ctx.lineTo(x1 - l * Math.cos(a + 0.45), y1 - l * Math.sin(a + 0.45));
  ctx.closePath();
  ctx.fill();
}

function drawElement(ctx, el, images) {
  ctx.save();
  ctx.globalAlpha = alpha(el);
  ctx.strokeStyle = el.c; ctx.fillStyle = el.c; ctx.lineWidth = el.sw;
  ctx.lineCap = 'round'; ctx.lineJoin = 'round';
  switch (el.k) {
    case 'stroke': drawStrokePts(ctx, absPoints(el), el); break;
    case 'line': case 'arrow': {
      const [[x0, y0], [x1, y1]] = absPoints(el);
      ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke();
      if (el.k === 'arrow') drawArrowHead(ctx, x0, y0, x1, y1, el.sw);
      break;
    }
    case 'rect':
      if (el.fill) { ctx.fillStyle = el.fill; ctx.fillRect(el.x, el.y, el.w, el.h); }
      ctx.strokeRect(el.x, el.y, el.w, el.h);
      break;
    case 'ellipse':
      ctx.beginPath();
      ctx.ellipse(el.x + el.w / 2, el.y + el.h / 2, Math.max(el.w / 2, 0.5), Math.max(el.h / 2, 0.5), 0, 0, 2 * Math.PI);
      if (el.fill) { ctx.fillStyle = el.fill; ctx.fill(); }
      ctx.stroke();
      break;
    case 'text':
      ctx.font = `${el.fs}px system-ui, sans-serif`;
      ctx.textBaseline = 'top';
      el.txt.split('\n').forEach((line, i) => ctx.fillText(line, el.x, el.y + i * el.fs * 1.2));
      break;
    case 'image': {
      const img = images && images(el.src);
      if (img && img.complete && img.naturalWidth) ctx.drawImage(img, el.x, el.y, el.w, el.h);
      else { ctx.strokeStyle = '#aaa'; ctx.lineWidth = 1; ctx.strokeRect(el.x, el.y, el.w, el.h); }
      break;
    }
    default:
  }
  ctx.restore();
}

const xmlEsc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// One element as SVG (the same geometry as the canvas).
function svgElement(el) {
  const op = alpha(el), common = `stroke="${el.c}" stroke-width="${el.sw}" stroke-linecap="round" stroke-linejoin="round" opacity="${op}"`;
  switch (el.k) {
    case 'stroke': {
      const p = absPoints(el);
      if (p.length === 1) return `<circle cx="${p[0][0]}" cy="${p[0][1]}" r="${el.sw / 2}" fill="${el.c}" opacity="${op}"/>`;
      let d = `M${p[0][0]} ${p[0][1]}`;
      for (let i = 1; i < p.length; i++) {
        const nx = (p[i - 1][0] + p[i][0]) / 2, ny = (p[i - 1][1] + p[i][1]) / 2;
        d += ` Q${p[i - 1][0]} ${p[i - 1][1]} ${nx} ${ny}`;
      }
      d += ` L${p[p.length - 1][0]} ${p[p.length - 1][1]}`;
      return `<path d="${d}" fill="none" ${common.replace(`stroke-width="${el.sw}"`, `stroke-width="${el.hl ? el.sw * 3 : el.sw}"`)}/>`;
    }
    case 'line': case 'arrow': {
      const [[x0, y0], [x1, y1]] = absPoints(el);
      let s = `<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y1}" ${common}/>`;
      if (el.k === 'arrow') {
        const a = Math.atan2(y1 - y0, x1 - x0), l = 6 + el.sw * 3;
        s += `<polygon points="${x1},${y1} ${x1 - l * Math.cos(a - 0.45)},${y1 - l * Math.sin(a - 0.45)} ${x1 - l * Math.cos(a + 0.45)},${y1 - l * Math.sin(a + 0.45)}" fill="${el.c}" opacity="${op}"/>`;
      }
      return s;
    }
    case 'rect': return `<rect x="${el.x}" y="${el.y}" width="${el.w}" height="${el.h}" fill="${el.fill || 'none'}" ${common}/>`;
    case 'ellipse': return `<ellipse cx="${el.x + el.w / 2}" cy="${el.y + el.h / 2}" rx="${el.w / 2}" ry="${el.h / 2}" fill="${el.fill || 'none'}" ${common}/>`;
    case 'text':
      return `<text x="${el.x}" y="${el.y}" font-family="system-ui, sans-serif" font-size="${el.fs}" fill="${el.c}" opacity="${op}" dominant-baseline="hanging">${
        el.txt.split('\n').map((l, i) => `<tspan x="${el.x}" dy="${i ? el.fs * 1.2 : 0}">${xmlEsc(l)}</tspan>`).join('')}</text>`;
    case 'image': return `<image href="${xmlEsc(el.src)}" x="${el.x}" y="${el.y}" width="${el.w}" height="${el.h}" opacity="${op}"/>`;
    default: return '';
  }
}

function pageBounds(els) {
  if (!els.length) return { x: 0, y: 0, w: 1280, h: 720 };
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const e of els) {
    const pad = (e.sw || 0) * 2;
    x0 = Math.min(x0, e.x - pad); y0 = Math.min(y0, e.y - pad);
    x1 = Math.max(x1, e.x + e.w + pad); y1 = Math.max(y1, e.y + e.h + pad);
  }
  return { x: Math.floor(x0) - 10, y: Math.floor(y0) - 10, w: Math.ceil(x1 - x0) + 20, h: Math.ceil(y1 - y0) + 20 };
}

// The SVG of a page's elements (export; also what the e2e test compares).
export function pageSVG(page) {
  const b = pageBounds(page.els);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="${b.x} ${b.y} ${b.w} ${b.h}" width="${b.w}" height="${b.h}">` +
    `<rect x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" fill="#ffffff"/>${page.els.map(svgElement).join('')}</svg>`;
}

// ---------------------------------------------------------------- the component

const CSS = `
.hd-wb { position: relative; display: flex; flex-direction: column; border: 1px solid #ccc; border-radius: 8px; background: #fafafa; user-select: none; height: 100%; min-height: 420px; }
.hd-wb .bar { display: flex; flex-wrap: wrap; gap: 2px; align-items: center; padding: 4px; border-bottom: 1px solid #ddd; background: #fff; border-radius: 8px 8px 0 0; }
.hd-wb .bar button { padding: 2px 6px; margin: 0; font-size: 13px; border: 1px solid #ccc; background: #f8f8f8; border-radius: 4px; cursor: pointer; }
.hd-wb .bar button.on { background: #1971c2; color: #fff; border-color: #1971c2; }
.hd-wb .bar .sw { width: 18px; height: 18px; padding: 0; border-radius: 50%; }
.hd-wb .bar .sep { width: 1px; height: 20px; background: #ddd; margin: 0 4px; }
.hd-wb .stage { position: relative; flex: 1; overflow: hidden; touch-action: none; background: #fff; }
.hd-wb canvas.main { position: absolute; inset: 0; width: 100%; height: 100%; }
.hd-wb .pages { display: flex; gap: 6px; padding: 4px; overflow-x: auto; border-top: 1px solid #ddd; background: #f4f4f4; border-radius: 0 0 8px 8px; }
.hd-wb .pages .th { border: 2px solid transparent; border-radius: 4px; background: #fff; cursor: pointer; text-align: center; font-size: 11px; }
.hd-wb .pages .th.on { border-color: #1971c2; }
.hd-wb .pages canvas { display: block; width: 96px; height: 54px; }
.hd-wb .status { font-size: 12px; color: #666; padding: 0 6px; }
.hd-wb .status.err { color: #b00; }
.hd-wb textarea.txt { position: absolute; z-index: 2; border: 1px dashed #1971c2; background: rgba(255,255,255,.9); font-family: system-ui, sans-serif; resize: none; outline: none; padding: 0; }
`;

let cssAdded = false;
function addCss() {
  if (cssAdded || typeof document === 'undefined') return;
  const s = document.createElement('style');
  s.textContent = CSS;
  document.head.appendChild(s);
  cssAdded = true;
}

function rid(n = 8) {
  const a = new Uint8Array(n), c = 'abcdefghijklmnopqrstuvwxyz0123456789';
  crypto.getRandomValues(a);
  return Array.from(a, (x) => c[x % 36]).join('');
}

export class Whiteboard {
  constructor(container, opts) {
    this.container = container;
    this.rtm = opts.rtm;
    this.room = opts.room;
    this.board = opts.board || 'main';
    this.ch = `wb:${this.room}:${this.board}`;
    this.token = opts.token;
    this.getToken = opts.getToken;
    this.name = opts.name || '';
    this.api = opts.api || '';
    this.readOnly = !!opts.readOnly;
    this.model = new BoardModel();
    this.pageId = 'p1';
    this.tool = 'pen';
    this.color = '#000000';
    this.width = 4;
    this.fill = null;
    this.view = { s: 1, x: 0, y: 0 }; // screen = board * s + (x, y)
    this.live = new Map(); // stroke id -> {by, page, pts: [[x,y,p]], c, sw, hl, t}
    this.cursors = new Map(); // user -> {x, y, page, name, laser, t, trail}
    this.pending = new Map(); // cid -> {ids, preview}
    this.preview = new Map(); // element id -> fields shown until the node's entry arrives
    this.selected = new Set();
    this.images = new Map();
    this.buffer = null; // entries received while loading
    this.stats = { latency: [], entries: 0, refills: 0, gaps: 0, errors: 0, live: 0 };
    this.idBase = rid(6);
    this.idN = 0;
    this.dirty = true;
    this.thumbsDirty = true;
    this._onMsg = (m) => this._message(m);
    this._onState = (s) => { if (s === 'connected' && this.started) this.refill(); };
  }

  _id(prefix = 'e') { return `${prefix}${this.idBase}${(this.idN++).toString(36)}`; }

  async _auth() {
    if (this.getToken) this.token = await this.getToken();
    return this.token;
  }

  async _fetch(path, init = {}) {
    const token = await this._auth();
    const r = await fetch(`${this.api}${path}`, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${token}` } });
    if (!r.ok) throw new Error(`${path.split('?')[0]}: ${r.status} ${(await r.text()).trim()}`);
    return r;
  }

  // Subscribes, then loads the snapshot + tail; entries that arrive meanwhile
  // are kept and applied after (those the load already had are skipped).
  async start() {
    addCss();
    // a reader's token (no canPublishData): watch, point, no drawing tools
    try {
      const tok = await this._auth();
      const g = JSON.parse(atob(tok.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).grants || {};
      if (!g.canPublishData && !g.roomAdmin) this.readOnly = true;
    } catch { /* an opaque token: the node decides */ }
    if (this.readOnly) this.tool = 'hand';
    this._build();
    if (this.readOnly) {
      for (const b of this.el.querySelectorAll('.bar button')) if (b.dataset.tool !== 'hand' && !['zin', 'zout', 'fit', 'png', 'svg'].includes(b.dataset.act)) b.hidden = true;
      this._status('read only: your token is a reader\'s');
    }
    this.buffer = [];
    this.rtm.on('message', this._onMsg);
    this.rtm.on('state', this._onState);
    await this.rtm.subscribe(this.ch);
    const t0 = performance.now();
    const r = await (await this._fetch(`/api/board?room=${encodeURIComponent(this.room)}&board=${encodeURIComponent(this.board)}`)).json();
    this.model.load(r.snapshot);
    for (const e of r.ops) this.model.apply(e);
    const buf = this.buffer;
    this.buffer = null;
    for (const e of buf) this._entry(e);
    this.loadMs = performance.now() - t0;
    this.started = true;
    if (!this.model.page(this.pageId)) this.pageId = this.model.pages[0].id;
    this._changed();
    return this;
  }

  // Fetches the entries after the last applied one (a gap, or a reconnect).
  async refill() {
    if (this.refilling) return;
    this.refilling = true;
    try {
      this.stats.refills++;
      const r = await (await this._fetch(`/api/board?room=${encodeURIComponent(this.room)}&board=${encodeURIComponent(this.board)}&after=${this.model.seq}`)).json();
      for (const e of r.ops) if (e.seq > this.model.seq) this._apply(e);
    } catch (e) { this._status(String(e.message || e), true); } finally { this.refilling = false; }
  }

  stop() {
    this.started = false;
    if (this.rtm.handlers) {
      for (const [n, fn] of [['message', this._onMsg], ['state', this._onState]]) {
        const a = this.rtm.handlers.get(n) || [];
        const i = a.indexOf(fn);
        if (i >= 0) a.splice(i, 1);
      }
    }
    this.rtm.unsubscribe(this.ch).catch(() => {});
    cancelAnimationFrame(this.raf);
    clearInterval(this.tick);
    this.resizeObs?.disconnect();
    this.container.innerHTML = '';
  }

  _message(m) {
    if (m.ch !== this.ch) return;
    let o;
    try { o = JSON.parse(m.data); } catch { return; }
    if (typeof o.seq === 'number') {
      if (this.buffer) this.buffer.push(o); else this._entry(o);
      return;
    }
    const me = this.rtm.session && m.from === this.rtm.session.user;
    if (o.op === 'live' && !me) {
      let l = this.live.get(o.id);
      if (!l) { l = { by: m.from, page: o.page, pts: [], c: o.c || '#000000', sw: o.sw || 2, hl: !!o.hl, o: o.o || 100 }; this.live.set(o.id, l); }
      for (let i = 0; i + 3 < o.pts.length; i += 4) l.pts.push([o.pts[i], o.pts[i + 1], o.pts[i + 2]]);
      l.t = performance.now();
      this.stats.live++;
      if (typeof o.ts === 'number') (this.latWait ||= []).push(o.ts);
      const cur = this.cursors.get(m.from);
      const last = l.pts[l.pts.length - 1];
      if (last) this.cursors.set(m.from, { ...(cur || {}), x: last[0], y: last[1], page: o.page, name: o.name || cur?.name || m.from, t: performance.now() });
      this.dirty = true;
    } else if (o.op === 'cur' && !me) {
      const c = this.cursors.get(m.from) || { trail: [] };
      c.x = o.x; c.y = o.y; c.page = o.page; c.name = o.name || m.from; c.laser = !!o.laser; c.t = performance.now();
      if (c.laser) { c.trail = (c.trail || []).concat([[o.x, o.y, c.t]]).slice(-20); } else c.trail = [];
      this.cursors.set(m.from, c);
      this.dirty = true;
    }
  }

  _entry(e) {
    if (e.seq <= this.model.seq) return; // a duplicate (refill + live)
    if (e.seq > this.model.seq + 1) { // a gap: a session was lost; fetch what is missing
      this.stats.gaps++;
      (this.held ||= []).push(e);
      this.refill().then(() => {
        const h = (this.held || []).sort((a, b) => a.seq - b.seq);
        this.held = [];
        for (const x of h) if (x.seq === this.model.seq + 1) this._apply(x);
      });
      return;
    }
    this._apply(e);
  }

  _apply(e) {
    if (!this.model.apply(e)) return;
    this.stats.entries++;
    for (const st of e.do) {
      if (st.a === 'add') this.live.delete(st.el.id);
      if (st.a === 'padd' && st.page.id === this.gotoOnAdd) { this.pageId = st.page.id; this.gotoOnAdd = null; this.selected.clear(); }
    }
    const p = e.cid && this.pending.get(e.cid);
    if (p) { this.pending.delete(e.cid); for (const id of p.ids) this.preview.delete(id); }
    for (const id of [...this.selected]) if (!this.model.byId.has(id)) this.selected.delete(id);
    if (!this.model.page(this.pageId)) this.pageId = this.model.pages[0].id;
    this._changed();
    this.onchange?.(e);
  }

  _changed() { this.dirty = true; this.thumbsDirty = true; }

  // Sends an operation; ids: elements previewed until the entry comes back.
  send(op, ids = []) {
    const cid = `${this.idBase}-${this.idN++}`;
    op.cid = cid;
    this.pending.set(cid, { ids });
    return this.rtm.publish(this.ch, JSON.stringify(op)).catch((err) => {
      this.pending.delete(cid);
      for (const id of ids) this.preview.delete(id);
      this.stats.errors++;
      this._status(String(err.message || err), true);
      this.dirty = true;
      throw err;
    });
  }

  _ephemeral(o) { this.rtm.publish(this.ch, JSON.stringify(o)).catch(() => {}); }

  // ---------------------------------------------------------------- public API

  get currentPage() { const m = this.viewModel || this.model; return m.page(this.pageId) || m.pages[0]; }
  stateHash() { return this.model.hash(); }
  exportSVG(pageId = this.pageId) { return pageSVG(this.model.page(pageId)); }

  async exportPNG(pageId = this.pageId) {
    const pg = this.model.page(pageId), b = pageBounds(pg.els);
    const c = document.createElement('canvas');
    c.width = b.w; c.height = b.h;
    const ctx = c.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, b.w, b.h);
    ctx.translate(-b.x, -b.y);
    for (const el of pg.els) drawElement(ctx, el, (s) => this._image(s));
    return new Promise((res) => c.toBlob(res, 'image/png'));
  }

  undo() { return this.send({ op: 'undo' }); }
  redo() { return this.send({ op: 'redo' }); }
  setTool(t) { this.tool = t; this._finishText(); this._syncBar(); }
  setColor(c) { this.color = c; this._applyStyle({ c }); this._syncBar(); }
  setWidth(w) { this.width = w; this._applyStyle({ sw: w }); this._syncBar(); }
  goto(pageId) { if (this.model.page(pageId)) { this.pageId = pageId; this.selected.clear(); this._changed(); } }

  addPage() {
    const id = this._id('p');
    const at = this.model.pages.findIndex((p) => p.id === this.pageId) + 1;
    this.gotoOnAdd = id; // shown once the node's entry adds it (the ok comes before the entry)
    return this.send({ op: 'page_add', page: { id, name: `Page ${this.model.pages.length + 1}` }, at });
  }

  deletePage() { return this.send({ op: 'page_del', page: this.pageId }); }

  // Moves the current page by d places (page order is the board's, for everyone).
  movePage(d) {
    const i = this.model.pages.findIndex((p) => p.id === this.pageId), to = i + d;
    if (i < 0 || to < 0 || to >= this.model.pages.length) return Promise.resolve();
    return this.send({ op: 'page_move', page: this.pageId, to });
  }
  clearPage() { return this.send({ op: 'clear', page: this.pageId }); }

  // Commits a stroke from absolute points [[x, y, pressure(0..100), t(ms)]].
  commitStroke(pts, style = {}) {
    const out = [];
    for (let i = 0; i < pts.length; i += MAX_POINTS) out.push(this._commitStroke(pts.slice(Math.max(0, i - 1), i + MAX_POINTS), style));
    return Promise.all(out);
  }

  _commitStroke(pts, { id = this._id('s'), c = this.color, sw = this.width, hl = false, o } = {}) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of pts) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
    x0 = Math.round(x0); y0 = Math.round(y0);
    const t0 = pts[0][3] || 0, flat = [];
    for (const [x, y, p, t] of pts) flat.push(Math.round(x) - x0, Math.round(y) - y0, Math.max(0, Math.min(100, Math.round(p))), Math.max(0, Math.round((t || 0) - t0)));
    const el = { id, k: 'stroke', x: x0, y: y0, w: Math.max(1, Math.round(x1) - x0), h: Math.max(1, Math.round(y1) - y0), pts: flat, c, sw };
    if (hl) el.hl = true;
    if (o) el.o = o;
    return this.send({ op: 'add', page: this.pageId, el }, [id]);
  }

  addShape(k, x0, y0, x1, y1, style = {}) {
    const id = this._id(k[0]);
    const x = Math.round(Math.min(x0, x1)), y = Math.round(Math.min(y0, y1));
    const el = { id, k, x, y, w: Math.round(Math.abs(x1 - x0)), h: Math.round(Math.abs(y1 - y0)), c: style.c || this.color, sw: style.sw || this.width };
    if (k === 'line' || k === 'arrow') {
      el.pts = [Math.round(x0) - x, Math.round(y0) - y, Math.round(x1) - x, Math.round(y1) - y];
    }
    if ((k === 'rect' || k === 'ellipse') && (style.fill || this.fill)) el.fill = style.fill || this.fill;
    return this.send({ op: 'add', page: this.pageId, el }, [id]);
  }

  addText(x, y, txt, fs = 8 + this.width * 4) {
    const id = this._id('t');
    const lines = txt.split('\n');
    const ctx = this.ctx;
    ctx.save();
    ctx.font = `${fs}px system-ui, sans-serif`;
    const w = Math.ceil(Math.max(...lines.map((l) => ctx.measureText(l).width))) || 1;
    ctx.restore();
    return this.send({ op: 'add', page: this.pageId, el: { id, k: 'text', x: Math.round(x), y: Math.round(y), w, h: Math.ceil(lines.length * fs * 1.2), txt, fs, c: this.color } }, [id]);
  }

  // Uploads an image (scaled down to fit the node's cap) and places it.
  async addImage(file, x, y) {
    const bmp = await createImageBitmap(file);
    let scale = Math.min(1, 800 / Math.max(bmp.width, bmp.height));
    let blob = null;
    for (let tries = 0; tries < 6; tries++) {
      const c = document.createElement('canvas');
      c.width = Math.max(1, Math.round(bmp.width * scale)); c.height = Math.max(1, Math.round(bmp.height * scale));
      c.getContext('2d').drawImage(bmp, 0, 0, c.width, c.height);
      blob = await new Promise((res) => c.toBlob(res, 'image/jpeg', 0.8));
      if (blob.size <= (this.maxImage || 60000)) break;
      scale *= 0.7;
    }
    const r = await (await this._fetch(`/api/board/image?room=${encodeURIComponent(this.room)}`, { method: 'POST', body: blob, headers: { 'Content-Type': 'image/jpeg' } })).json();
    const w = Math.round(bmp.width * scale), h = Math.round(bmp.height * scale);
    const id = this._id('i');
    return this.send({ op: 'add', page: this.pageId, el: { id, k: 'image', x: Math.round(x), y: Math.round(y), w, h, src: r.src } }, [id]);
  }

  deleteSelected() {
    if (!this.selected.size) return Promise.resolve();
    const ids = [...this.selected];
    this.selected.clear();
    return this.send({ op: 'del', ids });
  }

  zorder(to) {
    const ids = [...this.selected];
    return Promise.all(ids.map((id) => this.send({ op: 'z', id, to })));
  }

  _applyStyle(f) {
    if (!this.selected.size) return;
    const items = [...this.selected].filter((id) => this.model.byId.has(id)).map((id) => ({ id, set: f }));
    if (items.length) this.send({ op: 'upd', items }).catch(() => {});
  }

  // Replays the board's log into this component's view (read-only while it
  // runs): speed 1 = real time, 0 = at once; from (Unix ms): the board as it
  // was then is shown at once and playing starts there (seek); until: stop
  // there. onTick(ts) follows the board's clock (Unix ms), e.g. to keep a
  // recording's player in step (its position = recording start + elapsed).
  async replay({ speed = 1, from = -Infinity, until = Infinity, onTick } = {}) {
    const entries = [];
    for (let after = 0; ;) {
      const r = await (await this._fetch(`/api/board/log?room=${encodeURIComponent(this.room)}&board=${encodeURIComponent(this.board)}&after=${after}`)).json();
      entries.push(...r.ops);
      if (!r.more) break;
      after = r.next;
    }
    // the view shows the replay; live entries keep going to this.model
    const m = new BoardModel();
    this.viewModel = m;
    this.replaying = true;
    this._changed();
    try {
      const t0 = entries.length ? Math.max(entries[0].ts, from) : 0, w0 = performance.now();
      for (const e of entries) {
        if (e.ts > until || this.stopReplay) break;
        if (speed > 0 && e.ts > from) {
          const due = w0 + (e.ts - t0) / speed, wait = due - performance.now();
          if (wait > 1) await new Promise((res) => setTimeout(res, wait));
        }
        m.apply(e);
        onTick?.(e.ts);
        this._changed();
      }
      return { hash: m.hash(), entries: entries.length, model: m };
    } finally {
      this.replayModel = m;
      this.viewModel = null;
      this.replaying = false;
      this._changed();
    }
  }

  // ---------------------------------------------------------------- UI

  _build() {
    const root = this.container;
    root.innerHTML = '';
    const el = document.createElement('div');
    el.className = 'hd-wb';
    const tools = [['select', '⬚ Select'], ['pen', '✎ Pen'], ['hl', '▮ Highlighter'], ['erase', '⌫ Eraser'], ['erasearea', '⌧ Area eraser'],
      ['line', '╱ Line'], ['arrow', '→ Arrow'], ['rect', '▭ Rect'], ['ellipse', '◯ Ellipse'], ['text', 'T Text'], ['laser', '● Laser'], ['hand', '⇔ Pan']];
    el.innerHTML = `<div class="bar">${tools.map(([t, l]) => `<button data-tool="${t}" title="${l}">${l}</button>`).join('')}
      <span class="sep"></span>${COLORS.map((c) => `<button class="sw" data-color="${c}" style="background:${c}" title="${c}"></button>`).join('')}
      <input type="color" class="pick" title="colour" style="width:26px;height:22px;padding:0;border:0">
      <button data-fill="1" title="fill shapes">Fill</button>
      <span class="sep"></span>${WIDTHS.map((w) => `<button data-width="${w}" title="width ${w}">${w}</button>`).join('')}
      <span class="sep"></span><button data-act="undo" title="Undo (Ctrl+Z)">↶</button><button data-act="redo" title="Redo (Ctrl+Y)">↷</button>
      <button data-act="front" title="Bring to front">⤒</button><button data-act="back" title="Send to back">⤓</button><button data-act="del" title="Delete (Del)">✕</button>
      <button data-act="image" title="Insert image">Image</button><input type="file" accept="image/*" class="file" hidden>
      <span class="sep"></span><button data-act="zin" title="Zoom in">+</button><button data-act="zout" title="Zoom out">−</button><button data-act="fit" title="Reset view">1:1</button>
      <span class="sep"></span><button data-act="png">PNG</button><button data-act="svg">SVG</button><button data-act="clear" title="Clear page">Clear</button><button data-act="replay" title="Play the board's history back at 4×">▶ Replay</button>
      <span class="status"></span></div>
      <div class="stage"><canvas class="main"></canvas></div>
      <div class="pages"></div>`;
    root.appendChild(el);
    this.el = el;
    this.stage = el.querySelector('.stage');
    this.canvas = el.querySelector('canvas.main');
    this.ctx = this.canvas.getContext('2d');
    this.pagesEl = el.querySelector('.pages');
    this.statusEl = el.querySelector('.status');
    el.querySelector('.bar').addEventListener('click', (ev) => {
      const b = ev.target.closest('button');
      if (!b) return;
      if (b.dataset.tool) this.setTool(b.dataset.tool);
      else if (b.dataset.color) this.setColor(b.dataset.color);
      else if (b.dataset.width) this.setWidth(+b.dataset.width);
      else if (b.dataset.fill) { this.fill = this.fill ? null : this.color; this._applyStyle({ fill: this.fill }); this._syncBar(); } else this._act(b.dataset.act);
    });
    el.querySelector('.pick').addEventListener('input', (ev) => this.setColor(ev.target.value));
    el.querySelector('.file').addEventListener('change', (ev) => {
      const f = ev.target.files[0];
      ev.target.value = '';
      if (f) this.addImage(f, ...this._center()).catch((e) => this._status(String(e.message || e), true));
    });
    this._pointer();
    this._keys();
    this.resizeObs = new ResizeObserver(() => this._resize());
    this.resizeObs.observe(this.stage);
    this._resize();
    const frame = () => { this._frame(); this.raf = requestAnimationFrame(frame); };
    this.raf = requestAnimationFrame(frame);
    this.tick = setInterval(() => this._sweep(), 1000);
    this._syncBar();
  }

  _center() {
    const r = this.stage.getBoundingClientRect();
    return [(r.width / 2 - this.view.x) / this.view.s, (r.height / 2 - this.view.y) / this.view.s];
  }

  _act(a) {
    const catchErr = (p) => p?.catch?.(() => {});
    switch (a) {
      case 'undo': catchErr(this.undo()); break;
      case 'redo': catchErr(this.redo()); break;
      case 'front': catchErr(this.zorder('front')); break;
      case 'back': catchErr(this.zorder('back')); break;
      case 'del': catchErr(this.deleteSelected()); break;
      case 'image': this.el.querySelector('.file').click(); break;
      case 'zin': this._zoom(1.25); break;
      case 'zout': this._zoom(0.8); break;
      case 'fit': this.view = { s: 1, x: 0, y: 0 }; this.dirty = true; break;
      case 'clear': catchErr(this.clearPage()); break;
      case 'replay': this._replayUI(); break;
      case 'png': this.exportPNG().then((b) => this._download(b, 'board.png')); break;
      case 'svg': this._download(new Blob([this.exportSVG()], { type: 'image/svg+xml' }), 'board.svg'); break;
      default:
    }
  }

  _download(blob, name) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  }

  _zoom(f, cx, cy) {
    const r = this.stage.getBoundingClientRect();
    cx ??= r.width / 2; cy ??= r.height / 2;
    const s = Math.max(0.1, Math.min(8, this.view.s * f));
    this.view.x = cx - (cx - this.view.x) * (s / this.view.s);
    this.view.y = cy - (cy - this.view.y) * (s / this.view.s);
    this.view.s = s;
    this.dirty = true;
  }

  _syncBar() {
    if (!this.el) return;
    for (const b of this.el.querySelectorAll('.bar button')) {
      b.classList.toggle('on', !!(b.dataset.tool === this.tool || (b.dataset.color && b.dataset.color === this.color) || +b.dataset.width === this.width || (b.dataset.fill && this.fill)));
    }
  }

  _status(s, err = false) {
    if (!this.statusEl) return;
    this.statusEl.textContent = s;
    this.statusEl.classList.toggle('err', err);
    clearTimeout(this.statusTimer);
    this.statusTimer = setTimeout(() => { this.statusEl.textContent = ''; }, 6000);
  }

  _resize() {
    const r = this.stage.getBoundingClientRect(), d = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * d));
    this.canvas.height = Math.max(1, Math.round(r.height * d));
    this.dirty = true;
  }

  _toBoard(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [(ev.clientX - r.left - this.view.x) / this.view.s, (ev.clientY - r.top - this.view.y) / this.view.s];
  }

  _hit(x, y) {
    const els = this.currentPage.els, tol = 4 / this.view.s;
    for (let i = els.length - 1; i >= 0; i--) if (hitElement(this._shown(els[i]), x, y, tol)) return els[i];
    return null;
  }

  _shown(el) { const p = this.preview.get(el.id); return p ? { ...el, ...p } : el; }

  _pointer() {
    const c = this.stage;
    const pointers = new Map();
    let g = null; // the gesture in progress
    let lastCursor = 0;
    c.addEventListener('pointerdown', (ev) => {
      if (this.replaying) return;
      c.setPointerCapture(ev.pointerId);
      pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
      if (pointers.size === 2) { // two fingers: pan/zoom, cancel the stroke
        if (g && g.kind === 'stroke') this.live.delete(g.id);
        const [[ax, ay], [bx, by]] = [...pointers.values()];
        g = { kind: 'pinch', d: Math.hypot(ax - bx, ay - by), cx: (ax + bx) / 2, cy: (ay + by) / 2 };
        return;
      }
      const [x, y] = this._toBoard(ev);
      const pr = ev.pointerType === 'pen' ? ev.pressure : 0.5;
      const t = this.tool;
      if (ev.button === 1 || t === 'hand') { g = { kind: 'pan', sx: ev.clientX, sy: ev.clientY, vx: this.view.x, vy: this.view.y }; return; }
      if (this.readOnly && t !== 'laser') return;
      this._finishText();
      if (t === 'pen' || t === 'hl') {
        const id = this._id('s');
        g = { kind: 'stroke', id, pts: [[x, y, pr * 100, 0]], sent: 0, t0: performance.now(), hl: t === 'hl' };
        this.live.set(id, { by: 'me', page: this.pageId, pts: [[x, y, pr * 100]], c: this.color, sw: this.width, hl: g.hl, mine: true, t: performance.now() });
        this._flushLive(g);
      } else if (t === 'erase') {
        g = { kind: 'erase', ids: new Set() };
        this._eraseAt(g, x, y);
      } else if (t === 'erasearea' || (t === 'select' && !this._hitSelected(x, y))) {
        const hit = t === 'select' && this._hit(x, y);
        if (hit) {
          if (!ev.shiftKey) this.selected.clear();
          this.selected.add(hit.id);
          g = { kind: 'move', sx: x, sy: y, dx: 0, dy: 0 };
        } else {
          if (t === 'select' && !ev.shiftKey) this.selected.clear();
          g = { kind: 'box', sx: x, sy: y, x, y, erase: t === 'erasearea' };
        }
      } else if (t === 'select') {
        const h = this._handle(x, y);
        g = h ? { kind: 'resize', id: h, sx: x, sy: y } : { kind: 'move', sx: x, sy: y, dx: 0, dy: 0 };
      } else if (['line', 'arrow', 'rect', 'ellipse'].includes(t)) {
        g = { kind: 'shape', k: t, sx: x, sy: y, x, y };
      } else if (t === 'text') {
        const hit = this._hit(x, y);
        if (hit && hit.k === 'text') this._startText(hit.x, hit.y, hit); else this._startText(x, y);
      } else if (t === 'laser') {
        g = { kind: 'laser' };
        this._cursor(x, y, true);
      }
      this.gesture = g;
      this.dirty = true;
    });
    c.addEventListener('pointermove', (ev) => {
      if (pointers.has(ev.pointerId)) pointers.set(ev.pointerId, [ev.clientX, ev.clientY]);
      const [x, y] = this._toBoard(ev);
      if (!g) {
        const now = performance.now();
        if (now - lastCursor >= CURSOR_MS && this.started) { lastCursor = now; this._cursor(x, y, false); }
        return;
      }
      const evs = ev.getCoalescedEvents ? ev.getCoalescedEvents() : [ev];
      switch (g.kind) {
        case 'pinch': {
          if (pointers.size < 2) return;
          const [[ax, ay], [bx, by]] = [...pointers.values()];
          const d = Math.hypot(ax - bx, ay - by), cx = (ax + bx) / 2, cy = (ay + by) / 2;
          const r = this.canvas.getBoundingClientRect();
          this.view.x += cx - g.cx; this.view.y += cy - g.cy;
          this._zoom(d / (g.d || d), cx - r.left, cy - r.top);
          g.d = d; g.cx = cx; g.cy = cy;
          break;
        }
        case 'pan':
          this.view.x = g.vx + ev.clientX - g.sx; this.view.y = g.vy + ev.clientY - g.sy;
          break;
        case 'stroke': {
          const l = this.live.get(g.id);
          for (const e of evs) {
            const [px, py] = this._toBoard(e);
            const p = (e.pointerType === 'pen' ? e.pressure : 0.5) * 100;
            const last = g.pts[g.pts.length - 1];
            if (Math.hypot(px - last[0], py - last[1]) * this.view.s < 1) continue;
            g.pts.push([px, py, p, performance.now() - g.t0]);
            l?.pts.push([px, py, p]);
          }
          // at most one live message per 16 ms, the first of a burst at once
          // (a trailing timer would hold every batch's first point 16 ms)
          if (!g.timer) g.timer = setTimeout(() => this._flushLive(g), Math.max(0, LIVE_MS - (performance.now() - (g.flushed || 0))));
          break;
        }
        case 'erase': for (const e of evs) this._eraseAt(g, ...this._toBoard(e)); break;
        case 'box': case 'shape': g.x = x; g.y = y; break;
        case 'move':
          g.dx = Math.round(x - g.sx); g.dy = Math.round(y - g.sy);
          for (const id of this.selected) {
            const r = this.model.byId.get(id);
            if (r) this.preview.set(id, { x: r.el.x + g.dx, y: r.el.y + g.dy });
          }
          break;
        case 'resize': {
          const r = this.model.byId.get(g.id);
          if (r) this.preview.set(g.id, { w: Math.max(1, Math.round(r.el.w + x - g.sx)), h: Math.max(1, Math.round(r.el.h + y - g.sy)) });
          break;
        }
        case 'laser': {
          const now = performance.now();
          if (now - lastCursor >= CURSOR_MS) { lastCursor = now; this._cursor(x, y, true); }
          const me = this.cursors.get('\u0000me') || { trail: [] };
          me.trail = me.trail.concat([[x, y, now]]).slice(-20);
          me.x = x; me.y = y; me.page = this.pageId; me.laser = true; me.t = now; me.self = true;
          this.cursors.set('\u0000me', me);
          break;
        }
        default:
      }
      this.dirty = true;
    });
    const up = (ev) => {
      pointers.delete(ev.pointerId);
      if (!g) return;
      const done = g;
      if (done.kind === 'pinch') { if (pointers.size === 0) g = this.gesture = null; return; }
      g = this.gesture = null;
      switch (done.kind) {
        case 'stroke':
          clearTimeout(done.timer);
          this._flushLive(done, true);
          this.commitStroke(done.pts, { id: done.id, hl: done.hl, sw: this.width, c: this.color }).catch(() => this.live.delete(done.id));
          break;
        case 'erase':
          if (done.ids.size) this.send({ op: 'del', ids: [...done.ids] }).catch(() => {});
          for (const id of done.ids) this.preview.delete(id);
          break;
        case 'box': {
          const b = { x: Math.min(done.sx, done.x), y: Math.min(done.sy, done.y), w: Math.abs(done.x - done.sx), h: Math.abs(done.y - done.sy) };
          const ids = this.currentPage.els.filter((e) => boxesMeet(bbox(e), b)).map((e) => e.id);
          if (done.erase) { if (ids.length) this.send({ op: 'del', ids: ids.slice(0, 500) }).catch(() => {}); } else for (const id of ids) this.selected.add(id);
          break;
        }
        case 'shape':
          if (Math.hypot(done.x - done.sx, done.y - done.sy) > 2) this.addShape(done.k, done.sx, done.sy, done.x, done.y).catch(() => {});
          break;
        case 'move':
          if (done.dx || done.dy) {
            const items = [...this.selected].map((id) => this.model.byId.get(id)).filter(Boolean)
              .map((r) => ({ id: r.el.id, set: { x: r.el.x + done.dx, y: r.el.y + done.dy } }));
            if (items.length) this.send({ op: 'upd', items }, items.map((i) => i.id)).catch(() => {});
          }
          break;
        case 'resize': {
          const p = this.preview.get(done.id);
          if (p) this.send({ op: 'upd', items: [{ id: done.id, set: { w: p.w, h: p.h } }] }, [done.id]).catch(() => {});
          break;
        }
        case 'laser': this.cursors.delete('\u0000me'); this._cursor(...this._toBoard(ev), false); break;
        default:
      }
      this.dirty = true;
    };
    c.addEventListener('pointerup', up);
    c.addEventListener('dblclick', (ev) => { // edit a text element
      if (this.readOnly || this.replaying) return;
      const [x, y] = this._toBoard(ev);
      const hit = this._hit(x, y);
      if (hit && hit.k === 'text') { this._finishText(); this._startText(hit.x, hit.y, hit); }
    });
    c.addEventListener('pointercancel', up);
    c.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const r = this.canvas.getBoundingClientRect();
      if (ev.ctrlKey || !ev.shiftKey) this._zoom(Math.exp(-ev.deltaY / 500), ev.clientX - r.left, ev.clientY - r.top);
      else { this.view.x -= ev.deltaX || ev.deltaY; this.dirty = true; }
    }, { passive: false });
  }

  _keys() {
    this.el.tabIndex = 0;
    this.el.addEventListener('keydown', (ev) => {
      if (ev.target.tagName === 'TEXTAREA' || ev.target.tagName === 'INPUT') return;
      const k = ev.key.toLowerCase();
      if ((ev.ctrlKey || ev.metaKey) && k === 'z') { ev.preventDefault(); (ev.shiftKey ? this.redo() : this.undo()).catch(() => {}); } else if ((ev.ctrlKey || ev.metaKey) && k === 'y') { ev.preventDefault(); this.redo().catch(() => {}); } else if (k === 'delete' || k === 'backspace') this.deleteSelected().catch(() => {});
    });
  }

  _flushLive(g, end = false) {
    g.timer = null;
    g.flushed = performance.now();
    const pts = g.pts.slice(g.sent);
    if (!pts.length && !end) return;
    g.sent = g.pts.length;
    const flat = [];
    for (const [x, y, p, t] of pts) flat.push(Math.round(x), Math.round(y), Math.round(p), Math.round(t));
    // ts: when the oldest point of the batch was drawn (wall clock), so the
    // receiver's "received -> rendered" latency includes the batching delay
    const ts = pts.length ? Math.round(Date.now() - (performance.now() - (g.t0 + pts[0][3]))) : Date.now();
    for (let i = 0; i < flat.length || (end && i === 0); i += 4 * 200) {
      this._ephemeral({ op: 'live', id: g.id, page: this.pageId, pts: flat.slice(i, i + 4 * 200), c: this.color, sw: this.width, hl: g.hl, name: this.name, ts, end: end || undefined });
    }
  }

  _cursor(x, y, laser) {
    this._ephemeral({ op: 'cur', x: Math.round(x), y: Math.round(y), page: this.pageId, name: this.name, laser: laser || undefined });
  }

  _eraseAt(g, x, y) {
    const tol = (4 + this.width) / this.view.s;
    for (const el of this.currentPage.els) {
      if (!g.ids.has(el.id) && hitElement(el, x, y, tol)) { g.ids.add(el.id); this.preview.set(el.id, { o: 15 }); }
    }
  }

  _hitSelected(x, y) {
    if (this._handle(x, y)) return true;
    for (const id of this.selected) {
      const r = this.model.byId.get(id);
      if (r && r.page.id === this.pageId && hitsBox(bbox(this._shown(r.el)), x, y, 4 / this.view.s)) return true;
    }
    return false;
  }

  // The resize handle (bottom right) of the single selected element under (x, y).
  _handle(x, y) {
    if (this.selected.size !== 1) return null;
    const [id] = this.selected;
    const r = this.model.byId.get(id);
    if (!r) return null;
    const e = this._shown(r.el), hs = 8 / this.view.s;
    return Math.abs(x - (e.x + e.w)) <= hs && Math.abs(y - (e.y + e.h)) <= hs ? id : null;
  }

  // A text editor at (x, y); el: an existing text element to edit (its text
  // is replaced with an "upd", or the element deleted when emptied).
  _startText(x, y, el = null) {
    const ta = document.createElement('textarea');
    ta.className = 'txt';
    const fs = el ? el.fs : 8 + this.width * 4;
    Object.assign(ta.style, { left: `${x * this.view.s + this.view.x}px`, top: `${y * this.view.s + this.view.y}px`, fontSize: `${fs * this.view.s}px`, color: el ? el.c : this.color, width: '240px', height: `${fs * 1.4 * this.view.s * (el ? el.txt.split('\n').length : 1)}px` });
    if (el) { ta.value = el.txt; this.preview.set(el.id, { o: 1 }); this.dirty = true; }
    this.stage.appendChild(ta);
    this.textEdit = { ta, x, y, fs, el };
    setTimeout(() => ta.focus(), 0);
    ta.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); this._finishText(); }
      if (ev.key === 'Escape') { ta.value = ''; this._finishText(); }
    });
    // typed text is committed when the editor loses focus; an empty editor stays
    // (a window switch must not drop it): Escape, a click on the board or another tool ends it
    ta.addEventListener('blur', () => { if (ta.value.trim()) this._finishText(); });
  }

  _finishText() {
    const t = this.textEdit;
    if (!t) return;
    this.textEdit = null;
    const txt = t.ta.value.trim().slice(0, 4096);
    t.ta.remove();
    if (t.el) {
      const id = t.el.id;
      if (!txt) this.send({ op: 'del', ids: [id] }, [id]).catch(() => {});
      else if (txt !== t.el.txt) {
        const ctx = this.ctx, lines = txt.split('\n');
        ctx.save(); ctx.font = `${t.fs}px system-ui, sans-serif`;
        const w = Math.ceil(Math.max(...lines.map((l) => ctx.measureText(l).width))) || 1;
        ctx.restore();
        this.send({ op: 'upd', items: [{ id, set: { txt, w, h: Math.ceil(lines.length * t.fs * 1.2) } }] }, [id]).catch(() => {});
      } else this.preview.delete(id);
      this.dirty = true;
      return;
    }
    if (txt) this.addText(t.x, t.y, txt, t.fs).catch(() => {});
  }

  // Plays the board's log back in the view (read-only meanwhile), or stops it.
  async _replayUI(speed = 4) {
    if (this.replaying) { this.stopReplay = true; return; }
    this.stopReplay = false;
    const btn = this.el.querySelector('[data-act=replay]');
    btn.textContent = '■ Stop';
    let n = 0;
    try {
      await this.replay({ speed, onTick: () => { n++; this._status(`replay ${speed}×: ${n} operations`); } });
    } catch (e) { this._status(String(e.message || e), true); } finally { btn.textContent = '▶ Replay'; }
  }

  _image(src) {
    let img = this.images.get(src);
    if (!img) {
      img = new Image();
      img.onload = () => this._changed();
      img.src = `${this.api}${src}`;
      this.images.set(src, img);
    }
    return img;
  }

  _sweep() {
    const now = performance.now();
    for (const [u, c] of this.cursors) if (now - c.t > CURSOR_TTL_MS) { this.cursors.delete(u); this.dirty = true; }
    for (const [id, l] of this.live) if (!l.mine && now - l.t > CURSOR_TTL_MS) { this.live.delete(id); this.dirty = true; } // a writer that vanished mid-stroke
    if (this.thumbsDirty) this._thumbs();
  }

  _frame() {
    if (this.thumbsDirty && performance.now() - (this.thumbsAt || 0) > 250) { this.thumbsAt = performance.now(); this._thumbs(); }
    if (this.cursors.size && [...this.cursors.values()].some((c) => c.laser)) this.dirty = true;
    if (!this.dirty) return;
    this.dirty = false;
    const ctx = this.ctx, d = window.devicePixelRatio || 1, pg = this.currentPage;
    if (!pg) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    ctx.setTransform(d * this.view.s, 0, 0, d * this.view.s, d * this.view.x, d * this.view.y);
    const img = (s) => this._image(s);
    for (const el of pg.els) drawElement(ctx, this._shown(el), img);
    for (const l of this.live.values()) if (l.page === this.pageId && l.pts.length) drawStrokePts(ctx, l.pts, { ...l, c: l.c, sw: l.sw, hl: l.hl });
    // selection
    ctx.save();
    ctx.strokeStyle = '#1971c2'; ctx.lineWidth = 1 / this.view.s; ctx.setLineDash([4 / this.view.s, 3 / this.view.s]);
    for (const id of this.selected) {
      const r = this.model.byId.get(id);
      if (!r || r.page !== pg) continue;
      const e = this._shown(r.el), pad = (e.sw || 0) / 2 + 2 / this.view.s;
      ctx.strokeRect(e.x - pad, e.y - pad, e.w + 2 * pad, e.h + 2 * pad);
      if (this.selected.size === 1) { ctx.setLineDash([]); ctx.fillStyle = '#1971c2'; const hs = 5 / this.view.s; ctx.fillRect(e.x + e.w - hs, e.y + e.h - hs, 2 * hs, 2 * hs); }
    }
    ctx.restore();
    // remote cursors and lasers
    const now = performance.now();
    for (const [u, c] of this.cursors) {
      if (c.page !== this.pageId) continue;
      ctx.save();
      if (c.laser) {
        for (const [x, y, t] of c.trail || []) {
          const a = Math.max(0, 1 - (now - t) / 600);
          ctx.fillStyle = `rgba(230,20,20,${a * 0.5})`;
          ctx.beginPath(); ctx.arc(x, y, 4 / this.view.s, 0, 2 * Math.PI); ctx.fill();
        }
        ctx.fillStyle = '#e61414';
        ctx.beginPath(); ctx.arc(c.x, c.y, 6 / this.view.s, 0, 2 * Math.PI); ctx.fill();
      } else if (!c.self) {
        const s = 1 / this.view.s;
        ctx.fillStyle = colorOf(u);
        ctx.beginPath(); ctx.moveTo(c.x, c.y); ctx.lineTo(c.x + 12 * s, c.y + 4 * s); ctx.lineTo(c.x + 4 * s, c.y + 12 * s); ctx.closePath(); ctx.fill();
      }
      if (!c.self) {
        const s = 1 / this.view.s;
        ctx.font = `${12 * s}px system-ui, sans-serif`;
        const w = ctx.measureText(c.name || u).width;
        ctx.fillStyle = colorOf(u);
        ctx.fillRect(c.x + 12 * s, c.y + 12 * s, w + 8 * s, 16 * s);
        ctx.fillStyle = '#fff'; ctx.textBaseline = 'top';
        ctx.fillText(c.name || u, c.x + 16 * s, c.y + 14 * s);
      }
      ctx.restore();
    }
    // gesture feedback: box and shape being drawn
    const g = this.gesture;
    if (g && (g.kind === 'box' || g.kind === 'shape')) {
      ctx.save();
      if (g.kind === 'box') {
        ctx.strokeStyle = g.erase ? '#e03131' : '#1971c2'; ctx.lineWidth = 1 / this.view.s; ctx.setLineDash([4 / this.view.s, 3 / this.view.s]);
        ctx.strokeRect(Math.min(g.sx, g.x), Math.min(g.sy, g.y), Math.abs(g.x - g.sx), Math.abs(g.y - g.sy));
      } else {
        const x = Math.min(g.sx, g.x), y = Math.min(g.sy, g.y), w = Math.abs(g.x - g.sx), h = Math.abs(g.y - g.sy);
        const el = { k: g.k, x, y, w, h, pw: w || 1, ph: h || 1, c: this.color, sw: this.width, o: 60, fill: this.fill || undefined, pts: [g.sx - x, g.sy - y, g.x - x, g.y - y] };
        drawElement(ctx, el);
      }
      ctx.restore();
    }
    // latency: live points received -> drawn (same machine: Date.now() on both ends)
    if (this.latWait && this.latWait.length) {
      const t = Date.now();
      for (const ts of this.latWait) this.stats.latency.push(t - ts);
      if (this.stats.latency.length > 20000) this.stats.latency.splice(0, 10000);
      this.latWait = [];
    }
  }

  _thumbs() {
    this.thumbsDirty = false;
    if (!this.pagesEl) return;
    const M = this.viewModel || this.model;
    // the page buttons are made once (a click must never meet a rebuilt button);
    // the thumbnails are made again when the number of pages changes
    if (!this.thumbsEl) {
      this.thumbsEl = document.createElement('div');
      this.thumbsEl.style.display = 'flex';
      this.thumbsEl.style.gap = '6px';
      this.pagesEl.appendChild(this.thumbsEl);
      const mk = (text, title, fn, pm) => {
        const btn = document.createElement('button');
        btn.textContent = text; btn.title = title;
        if (pm) btn.dataset.pmove = pm;
        btn.addEventListener('click', () => fn().catch(() => {}));
        return btn;
      };
      if (!this.readOnly) {
        this.pagesEl.append(mk('+ Page', 'Add a page after this one', () => this.addPage()),
          mk('− Page', 'Delete this page', () => this.deletePage()),
          mk('◀', 'Move this page left', () => this.movePage(-1), '-1'), mk('▶', 'Move this page right', () => this.movePage(1), '1'));
      }
    }
    if (this.thumbsEl.children.length !== M.pages.length) {
      this.thumbsEl.innerHTML = '';
      for (let i = 0; i < M.pages.length; i++) {
        const d = document.createElement('div');
        d.className = 'th';
        d.innerHTML = '<canvas width="192" height="108"></canvas><span></span>';
        d.addEventListener('click', () => { const pg = (this.viewModel || this.model).pages[i]; if (pg) { this.pageId = pg.id; this.selected.clear(); this._changed(); } });
        this.thumbsEl.appendChild(d);
      }
    }
    [...this.pagesEl.querySelectorAll('.th')].forEach((d, i) => {
      const pg = M.pages[i];
      d.classList.toggle('on', pg.id === this.pageId);
      d.querySelector('span').textContent = pg.name || `${i + 1}`;
      const c = d.querySelector('canvas'), ctx = c.getContext('2d');
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
      const b = pageBounds(pg.els), s = Math.min(c.width / b.w, c.height / b.h);
      ctx.setTransform(s, 0, 0, s, -b.x * s, -b.y * s);
      for (const el of pg.els) drawElement(ctx, el, (src) => this._image(src));
    });
  }
}

function colorOf(user) {
  let h = 0;
  for (const ch of String(user)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360}, 65%, 42%)`;
}
