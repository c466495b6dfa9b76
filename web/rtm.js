// Browser client for Hudong real-time messaging: JSON over a WebSocket at /rtm
// (docs/rtm.md). What it adds on top of the wire protocol is the client half of
// the reliability contract, so that the application sees every message
// exactly once and in order across connection cuts:
//  - acks: cumulative {"type":"ack","s":N} every 32 messages or 100 ms;
//  - resume: when the socket drops (anything but logout / login failure / a
//    session replaced elsewhere), reconnect with backoff and log in with
//    {resume, last}; the node replays everything after `last`;
//  - dedupe: a message whose `s` was already delivered is dropped (replays),
//    and a channel message whose `cseq` is not above the last one delivered
//    on that channel is dropped (history refills);
//  - session lost (410 on resume, 4008 overflow, node restart): log in afresh
//    with a token from getToken(), subscribe the channels again and fetch what
//    was missed with `hist` (after the last cseq per channel; only stored
//    messages can be recovered, docs/rtm.md "History");
//  - requests in flight across a cut are sent again with the same id (the
//    node answers a repeated pub id with the first cseq, "dup": true);
//  - a request refused with 429 rate_limited (not executed) is retried with backoff.
//
//   const rtm = new RtmClient({ getToken: () => fetchToken() });
//   await rtm.login();
//   rtm.on('message', (m) => console.log(m.ch, m.cseq, m.from, m.data));
//   await rtm.subscribe('lobby');
//   await rtm.publish('lobby', 'hello', { store: true });
//
// Events (rtm.on(name, fn)): message({ch, cseq, from, data}), presence({ch, ev,
// user, state}), attribute({ch|user, key, value, rev, by}), lock({ch, name, ev,
// owner}), peer({from, pid, data}), state(s) with s in 'connecting',
// 'connected', 'reconnecting', 'closed', and error(err) for failures nobody
// awaits. Requests return Promises that resolve with the node's `ok` (minus
// type/id/s) or reject with an RtmError (.code 400.., .reason 'bad_request'..).

export class RtmError extends Error {
  constructor(msg) {
    super(`${msg.code || ''} ${msg.reason || ''}: ${msg.message || ''}`.trim());
    this.code = msg.code || 0;
    this.reason = msg.reason || '';
    this.detail = msg;
  }
}

function wsUrl(url) {
  const u = new URL(url || '/rtm', location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}

// close codes after which resuming is pointless (docs/rtm.md "Close codes")
const FINAL_CLOSE = new Set([1000, 4001, 4009]);
const SESSION_LOST = new Set([4008]);

export class RtmClient {
  constructor(opts = {}) {
    this.url = wsUrl(opts.url);
    this.getToken = opts.getToken;
    this.token = opts.token;
    this.ackEvery = opts.ackEvery || 32;
    this.ackDelayMs = opts.ackDelayMs ?? 100;
    this.reconnectBaseMs = opts.reconnectBaseMs || 300;
    this.reconnectCapMs = opts.reconnectCapMs || 5000;
    this.reconnectMaxMs = opts.reconnectMaxMs ?? 60000;
    this.requestTimeoutMs = opts.requestTimeoutMs || 15000;
    this.handlers = new Map();
    this.state = 'closed';
    this.ws = null;
    this.session = null; // {id, resume, user}
    this.lastS = 0; // highest session sequence delivered in order
    this.ackedS = 0;
    this.ackTimer = null;
    this.nextId = 1;
    this.pending = new Map(); // id -> {msg, resolve, reject, timer}
    this.channels = new Map(); // ch -> {lastCseq}
    this.peerWaits = new Map(); // peer id -> {resolve, reject}
    this.stats = { delivered: 0, duplicates: 0, resumes: 0, relogins: 0, replays: 0 };
    this._closing = false;
    this.live = false; // the socket is open and welcomed
  }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, []);
    this.handlers.get(name).push(fn);
    return this;
  }

  _emit(name, ...args) {
    for (const fn of this.handlers.get(name) || []) {
      try { fn(...args); } catch (e) { console.error('rtm handler', name, e); }
    }
  }

  _setState(s) {
    if (this.state !== s) { this.state = s; this._emit('state', s); }
  }

  async _token() {
    if (this.getToken) this.token = await this.getToken();
    if (!this.token) throw new Error('rtm: no token (pass token or getToken)');
    return this.token;
  }

  // Logs in (a new session). Resolves with the welcome message.
  async login() {
    this._closing = false;
    this._setState('connecting');
    const token = await this._token();
    const welcome = await this._open({ type: 'login', token });
    this._setState('connected');
    return welcome;
  }

  // Opens a socket and sends the login (fresh or resume); resolves on welcome.
  _open(login) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.ws = ws;
      let welcomed = false;
      ws.onopen = () => ws.send(JSON.stringify({ ...login, id: 'login' }));
      ws.onmessage = (ev) => {
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (!welcomed) {
          if (m.type === 'welcome') {
            welcomed = true;
            this._onWelcome(m);
            resolve(m);
          } else if (m.type === 'error') {
            welcomed = true;
            reject(new RtmError(m));
          }
          return;
        }
        this._onMessage(m);
      };
      ws.onclose = (ev) => {
        if (this.ws !== ws) return;
        this.ws = null;
        this.live = false;
        if (!welcomed) { welcomed = true; reject(Object.assign(new Error(`rtm: closed ${ev.code}`), { closeCode: ev.code })); return; }
        this._onClose(ev.code);
      };
    });
  }

  _onWelcome(m) {
    const resumed = !!m.resumed;
    this.session = { id: m.session, resume: m.resume, user: m.user, limits: m.limits };
    if (!resumed) { this.lastS = 0; this.ackedS = 0; }
    this.live = true;
    // requests without a reply yet go again with the same id (pub is idempotent per id)
    for (const [id, p] of this.pending) if (p.msg && this.ws) this.ws.send(JSON.stringify(p.msg));
  }

  _onMessage(m) {
    if (typeof m.s === 'number') {
      if (m.s <= this.lastS) { this.stats.duplicates++; return; } // a replay we already delivered
      this.lastS = m.s;
      this._scheduleAck();
    }
    switch (m.type) {
      case 'ok':
      case 'error': {
        const p = m.id !== undefined ? this.pending.get(m.id) : undefined;
        if (p) {
          this.pending.delete(m.id);
          clearTimeout(p.timer);
          if (m.type === 'ok') {
            const { type, id, s, ...rest } = m;
            p.resolve(rest);
          } else if (m.code === 429 && (p.tries || 0) < 6) {
            // rate limited: the request was not executed (docs/rtm.md); send it again later
            p.tries = (p.tries || 0) + 1;
            this.pending.set(m.id, p);
            p.timer = setTimeout(() => this._retry(m.id), 100 * 2 ** (p.tries - 1));
          } else p.reject(new RtmError(m));
        } else if (m.type === 'error') {
          const w = m.id !== undefined ? this.peerWaits.get(m.id) : undefined;
          if (w) { this.peerWaits.delete(m.id); w.reject(new RtmError(m)); } else this._emit('error', new RtmError(m));
        }
        break;
      }
      case 'msg': {
        const ch = this.channels.get(m.ch);
        // during a refill, live messages wait: delivered first they would move
        // lastCseq past the history still to come, and that history would be dropped
        if (ch && ch.held) { ch.held.push(m); return; }
        if (ch) {
          if (m.cseq <= ch.lastCseq) { this.stats.duplicates++; return; }
          ch.lastCseq = m.cseq;
        }
        this.stats.delivered++;
        this._emit('message', { ch: m.ch, cseq: m.cseq, from: m.from, data: m.data });
        break;
      }
      case 'pres': this._emit('presence', { ch: m.ch, ev: m.ev, user: m.user, state: m.state }); break;
      case 'attr': { const { type, s, ...rest } = m; this._emit('attribute', rest); break; }
      case 'lock': this._emit('lock', { ch: m.ch, name: m.name, ev: m.ev, owner: m.owner }); break;
      case 'peer': this._emit('peer', { from: m.from, pid: m.pid, data: m.data }); break;
      case 'receipt': {
        const w = this.peerWaits.get(m.id);
        if (w) { this.peerWaits.delete(m.id); w.resolve({ to: m.to }); }
        break;
      }
      default: break;
    }
  }

  _scheduleAck() {
    if (this.lastS - this.ackedS >= this.ackEvery) { this._sendAck(); return; }
    if (!this.ackTimer) this.ackTimer = setTimeout(() => { this.ackTimer = null; this._sendAck(); }, this.ackDelayMs);
  }

  _sendAck() {
    if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = null; }
    if (this.lastS > this.ackedS && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: 'ack', s: this.lastS }));
      this.ackedS = this.lastS;
    }
  }

  async _onClose(code) {
    if (this.ackTimer) { clearTimeout(this.ackTimer); this.ackTimer = null; }
    if (this._closing || FINAL_CLOSE.has(code)) {
      this._fail(new Error(`rtm: closed ${code}`));
      this._setState('closed');
      return;
    }
    this._setState('reconnecting');
    const t0 = Date.now();
    let delay = this.reconnectBaseMs, lost = SESSION_LOST.has(code);
    for (;;) {
      if (this._closing) return;
      if (Date.now() - t0 > this.reconnectMaxMs) {
        this._fail(new Error('rtm: could not reconnect'));
        this._setState('closed');
        return;
      }
      await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * delay / 2));
      delay = Math.min(delay * 2, this.reconnectCapMs);
      try {
        if (!lost && this.session) {
          try {
            await this._open({ type: 'login', resume: this.session.resume, last: this.lastS });
            this.stats.resumes++;
            this._setState('connected');
            return;
          } catch (e) {
            if (e instanceof RtmError && e.code === 410) lost = true; // session gone: log in afresh
            else throw e;
          }
        }
        await this._relogin();
        this._setState('connected');
        return;
      } catch (e) {
        if (e instanceof RtmError && (e.code === 401 || e.code === 403) && !this.getToken) {
          this._fail(e);
          this._setState('closed');
          return;
        }
      }
    }
  }

  // A new session after the old one was lost: subscribe again, then refill each
  // channel from history after the last cseq delivered (stored messages only).
  async _relogin() {
    const token = await this._token();
    await this._open({ type: 'login', token });
    this.stats.relogins++;
    for (const [ch, st] of this.channels) {
      await this.request({ type: 'sub', ch });
      await this._refill(ch, st);
    }
  }

  // Fetches a channel's history after the last cseq delivered, page by page.
  // `after: 0` is a valid cursor (from the first message kept). The node pages
  // replies to fit the unacknowledged window and gives `next` (the cursor of
  // the next page) with `more`; an empty page with `more` means the window
  // had no room: ack, then ask again (bounded).
  async _refill(ch, st) {
    st.held = [];
    try {
      await this._refillPages(ch, st);
    } finally {
      const held = st.held;
      st.held = null;
      for (const m of held) this._onMessage({ ...m, s: undefined });
    }
  }

  async _refillPages(ch, st) {
    let after = st.lastCseq;
    for (let more = true, empty = 0; more;) {
      this._sendAck();
      let h;
      try {
        h = await this.request({ type: 'hist', ch, after, limit: 100 });
      } catch (e) {
        // a stored message no page of this window can carry (413 with `next`): skip it
        if (!(e instanceof RtmError && e.code === 413 && typeof e.detail.next === 'number')) throw e;
        this._emit('error', e);
        after = e.detail.next;
        continue;
      }
      for (const m of h.msgs) {
        if (m.cseq <= st.lastCseq) continue;
        st.lastCseq = m.cseq;
        this.stats.delivered++;
        this.stats.replays++;
        this._emit('message', { ch, cseq: m.cseq, from: m.from, data: m.data });
      }
      if (h.msgs.length) after = h.msgs[h.msgs.length - 1].cseq;
      if (typeof h.next === 'number') after = h.next;
      empty = h.msgs.length ? 0 : empty + 1;
      more = h.more && empty <= 20;
      if (h.more && !more) this._emit('error', new Error(`rtm: history refill of ${ch} stopped: the window stayed full`));
      if (more && empty) await new Promise((r) => setTimeout(r, 50));
    }
  }

  _fail(err) {
    for (const [, p] of this.pending) { clearTimeout(p.timer); p.reject(err); }
    this.pending.clear();
    for (const [, w] of this.peerWaits) w.reject(err);
    this.peerWaits.clear();
  }

  _retry(id) {
    const p = this.pending.get(id);
    if (!p) return;
    p.timer = setTimeout(() => { this.pending.delete(id); p.reject(new Error(`rtm: ${p.msg.type} timed out`)); },
      this.requestTimeoutMs);
    if (this.live && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(p.msg));
  }

  // Sends a request and resolves with its `ok`. Survives cuts: resent on resume;
  // a 429 (not executed) is retried up to 6 times with backoff from 100 ms.
  request(msg) {
    const id = msg.id || `r${this.nextId++}`;
    const full = { ...msg, id };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`rtm: ${msg.type} timed out`));
      }, this.requestTimeoutMs);
      this.pending.set(id, { msg: full, resolve, reject, timer });
      if (this.live && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(full));
    });
  }

  async subscribe(ch) {
    const r = await this.request({ type: 'sub', ch });
    if (!this.channels.has(ch)) this.channels.set(ch, { lastCseq: r.cseq });
    return r;
  }

  async unsubscribe(ch) {
    this.channels.delete(ch);
    return this.request({ type: 'unsub', ch });
  }

  publish(ch, data, { store = false } = {}) { return this.request({ type: 'pub', ch, data, store }); }
  history(ch, { limit, after, since } = {}) { return this.request({ type: 'hist', ch, limit, after, since }); }
  who(ch) { return this.request({ type: 'who', ch }); }
  setState(ch, state) { return this.request({ type: 'state', ch, state }); }
  setAttribute(scope, key, value, rev) { return this.request({ type: 'attr_set', ...scope, key, value, rev }); }
  deleteAttribute(scope, key, rev) { return this.request({ type: 'attr_del', ...scope, key, rev }); }
  getAttributes(scope) { return this.request({ type: 'attr_get', ...scope }); }
  acquireLock(ch, name, ttl) { return this.request({ type: 'lock_acquire', ch, name, ttl }); }
  releaseLock(ch, name) { return this.request({ type: 'lock_release', ch, name }); }
  stealLock(ch, name, ttl) { return this.request({ type: 'lock_steal', ch, name, ttl }); }
  getLocks(ch) { return this.request({ type: 'lock_get', ch }); }

  // Peer message: resolves with {to} when the recipient acked it, rejects with
  // 404 user_offline at once or 504 not_delivered later (docs/rtm.md).
  sendPeer(to, data) {
    const id = `p${this.nextId++}`;
    const msg = { type: 'peer', id, to, data };
    return new Promise((resolve, reject) => {
      this.peerWaits.set(id, { resolve, reject });
      if (this.live && this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
      else { this.peerWaits.delete(id); reject(new Error('rtm: not connected')); }
    });
  }

  // Cuts the socket as a network failure would (tests, "reconnect now").
  dropConnection() { if (this.ws) this.ws.close(4000, 'client drop'); }

  async logout() {
    this._closing = true;
    try { if (this.state === 'connected') await this.request({ type: 'logout' }); } catch { /* closing anyway */ }
    if (this.ws) this.ws.close(1000);
    this._setState('closed');
  }
}
