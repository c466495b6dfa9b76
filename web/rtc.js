// Browser client for Hudong rooms: JSON over a WebSocket at /rtc
// (docs/protocol.md, "Rooms: WebSocket signaling"; names as in src/sfu/signal.h).
//
// Two RTCPeerConnections per participant, as the protocol prescribes:
//  - the PUBLISHER pc: we offer (publish_offer, with the full list of our
//    tracks: cid/mid/kind/source), the node answers (publish_answer, cid -> sid);
//  - the SUBSCRIBER pc: the node offers (subscriber_offer, with mid ->
//    track_sid/participant_sid for every m-section it sends), we answer.
// Each pc has its own negotiation queue, so an offer never overlaps another on
// the same pc, and a publish negotiation waiting for its answer cannot block a
// subscriber_offer (the node may need our subscriber_answer first).
// Non-trickle: the node is ICE-lite and learns our address from our checks, so
// offers carry whatever candidates were gathered within a second. Subscriber
// answers go out at once (opts.subscriberGatherMs, default 0): the node creates
// the subscriber transport when the answer arrives, and answering before our
// ICE checks start saves a check retransmission on the time to first frame.
//
//   const room = await connect('/rtc', token, { name: 'Ann' });
//   room.on('trackSubscribed', (t, p) => { video.srcObject = new MediaStream([t.mediaStreamTrack]); });
//   await room.publishCamera(); await room.publishMicrophone();
//
// Data channels (docs/protocol.md "Data channels"): room.enableDataChannels()
// (or connect(..., {dataChannels: true})) adds "hd-reliable" (ordered, reliable)
// and "hd-lossy" (unordered, maxRetransmits 0) to the publisher pc;
// room.sendDataChannel(payload, {reliable}) sends a string or binary message on
// one of them. Room data arrives as the "data" event whatever way it came:
// transport "websocket" or "datachannel"; channel "reliable"/"lossy" when the
// sender used a data channel (undefined for WebSocket sendData); binary
// payloads arrive as a Uint8Array.
//
// Events (room.on(name, fn)): connectionStateChanged(state), participantJoined(p),
// participantLeft(p), participantUpdated(p), trackPublished(t, p), trackUnpublished(t, p),
// trackMuted(t, p, muted), trackSubscribed(t, p), trackUnsubscribed(t, p),
// activeSpeakers([{sid, level, participant}]),
// data({from, fromSid, payload, participant, transport, channel, binary}),
// localTrackPublished(lt), localTrackUnpublished(lt), error(err), left({reason, message}),
// subscriberOffer({tracks, at}), reconnecting({attempt, delayMs, reason}), reconnected({attempts, ms}),
// disconnected({reason}).
//
// Auto-reconnect (docs/protocol.md "Client behaviour"): when the WebSocket drops
// without a final "left" (network loss, a node restart: no left at all, or left
// "server_shutdown"), the Room rejoins with exponential backoff and jitter
// (opts.reconnectBaseMs 500 doubling to opts.reconnectCapMs 8000, each delay
// drawn from [d/2, d]), a token from opts.getToken() if given (else the same
// one), and republishes its local tracks. The node has no session resume: the
// rejoin is a new participant (new sid, new track sids, new PeerConnections);
// remote participants are dropped (participantLeft) and come back from the new
// "joined" (participantJoined). After opts.reconnectMaxMs (default 30000) of
// failed attempts, or a join refused with 401/403 and no getToken, it gives up:
// "disconnected" event, state "disconnected". opts.reconnect = false turns it off.
// left reasons client_request, removed, room_closed and duplicate_identity are final.

// Cluster (docs/overlay.md "Routing: the client side"): connect(null, token,
// {cluster: 'https://any-node'}) asks that node's /api/route for the room,
// measures the RTT to the candidate nodes (GET /api/ping), asks again with
// the RTTs and joins the chosen node's /rtc, falling back to the next
// candidate when a node does not answer or refuses (draining, full). Every
// reconnect routes again. A draining node's `left {reason:"node_draining",
// redirect}` (or a join refused with 503 node_draining) makes the Room rejoin
// at once through the redirect's /api/route, with or without opts.cluster.
// Events: routed({node, reason, rtts, tried}).

import { routeToNode } from './route.js';

const PROTOCOL = 1;

export async function devToken(room, identity) {
  const r = await fetch(`/api/dev-token?room=${encodeURIComponent(room)}&identity=${encodeURIComponent(identity)}`);
  if (!r.ok) throw new Error(`token endpoint: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

// An Error from the node's "error" message: .code (400, ...), .reason ("bad_request", ...).
export class SignalError extends Error {
  constructor(msg, request) {
    const code = typeof msg.code === 'number' ? msg.code : (typeof msg.status === 'number' ? msg.status : 0);
    const reason = typeof msg.code === 'string' ? msg.code : (msg.reason || '');
    super(`${code || ''} ${reason}: ${msg.message || ''}`.trim());
    this.code = code;
    this.reason = reason;
    this.request = request;
    this.redirect = typeof msg.redirect === 'string' ? msg.redirect : null; /* node_draining */
  }
}

function wsUrl(url) {
  const u = new URL(url || '/rtc', location.href);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  return u.toString();
}

function waitGathering(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(t); pc.removeEventListener('icegatheringstatechange', check); resolve(); };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const t = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// A serial queue: run(fn) starts fn after everything queued before it settled.
function makeQueue() {
  let tail = Promise.resolve();
  return (fn) => {
    const p = tail.then(fn);
    tail = p.catch(() => {});
    return p;
  };
}

const KINDS = { camera: 'video', screen: 'video', microphone: 'audio', screen_audio: 'audio' };

// Camera video goes out as three simulcast layers (RFC 8853): quarter, half and
// full resolution. The node sends each subscriber the layer its downlink and
// tile size fit, so one weak viewer never throttles the publisher for
// everyone. Screen share stays one layer: text must stay sharp, and the
// encoder drops frame rate rather than resolution. `simulcast: false` in the
// client's or the track's options turns it off.
const SIMULCAST_LAYERS = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500000 },
  { rid: 'f', maxBitrate: 1500000 },
];
// Browsers send as many layers as the capture size allows (Chromium: three
// from 960x540, two from 640x360, one below) and drop the top ones, so the
// layers asked for follow the camera's height: the full-resolution layer is
// always among them.
function sendEncodingsFor(source, track, trackOpts, clientOpts) {
  if (source !== 'camera' || trackOpts.simulcast === false || clientOpts.simulcast === false) return null;
  const h = (track.getSettings && track.getSettings().height) || 0;
  const n = h >= 540 ? 3 : h >= 360 ? 2 : 1;
  if (n < 2) return null;
  return SIMULCAST_LAYERS.slice(3 - n).map((e, i) => ({ ...e, scaleResolutionDownBy: 2 ** (n - 1 - i) }));
}
// Audio goes out as RED (RFC 2198: each packet also carries the previous
// frame) where the browser has it: the node passes RED on to viewers that take
// it and unwraps it for the others, and a lost packet costs no concealment.
function preferRed(transceiver) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities('audio');
  if (!caps) return;
  const red = caps.codecs.filter((c) => c.mimeType.toLowerCase() === 'audio/red');
  if (!red.length) return;
  try {
    transceiver.setCodecPreferences([...red, ...caps.codecs.filter((c) => c.mimeType.toLowerCase() !== 'audio/red')]);
  } catch { /* an older browser: plain Opus */ }
}

function transceiverInit(lt) {
  const init = { direction: 'sendonly', streams: [lt.stream || new MediaStream([lt.track])] };
  if (lt.encodings) init.sendEncodings = lt.encodings.map((e) => ({ ...e }));
  return init;
}

export class Room {
  constructor(url, token, opts = {}) {
    this.cluster = opts.cluster || null; /* any node's http(s) URL: route through /api/route */
    this._routeVia = null; /* a draining node's redirect: route through it first */
    this.node = null; /* with routing: {id, url, rtt} of the node joined */
    this.url = wsUrl(url || (this.cluster ? `${String(this.cluster).replace(/\/+$/, '')}/rtc` : url));
    this.token = token;
    this.opts = opts;
    this.state = 'idle'; // idle | connecting | connected | reconnecting | disconnected
    this.localParticipant = null; // {sid, identity, name, metadata, permissions}
    this.roomInfo = null; // {name, sid, created_at, max_participants}
    this.participants = new Map(); // sid -> participant
    this.localTracks = new Map(); // cid -> local track
    this.activeSpeakers = [];
    this.pingInterval = 5;
    this.pingTimeout = 15;
    this.rtt = null;
    this.publisherState = 'new';
    this.subscriberState = 'new';
    this._handlers = new Map();
    this._pending = new Map(); // request id -> {resolve, reject, type}
    this._nextId = 1;
    this._subMids = new Map(); // subscriber mid -> {track_sid, participant_sid}
    this._subscribed = new Map(); // subscriber mid -> remote track currently on it
    this._offerAt = new Map(); // track_sid -> performance.now() of the subscriber_offer that brought it
    this._pubQueue = makeQueue();
    this._subQueue = makeQueue();
    this._lastRecv = 0;
    this.timings = []; // subscriber negotiation milestones (performance.now() ms), for tests
  }

  // ---- events ----
  on(name, fn) {
    if (!this._handlers.has(name)) this._handlers.set(name, new Set());
    this._handlers.get(name).add(fn);
    return () => this.off(name, fn);
  }
  off(name, fn) { const s = this._handlers.get(name); if (s) s.delete(fn); }
  _emit(name, ...args) {
    const s = this._handlers.get(name);
    if (!s) return;
    for (const fn of [...s]) {
      try { fn(...args); } catch (e) { console.error(`rtc.js: ${name} handler:`, e); }
    }
  }
  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit('connectionStateChanged', s);
  }

  // ---- signaling ----
  _send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) throw new Error('not connected');
    this.ws.send(JSON.stringify(msg));
  }

  // Sends msg with a fresh id; resolves with the node's reply of type replyType
  // (matched by id), rejects with a SignalError if the node answers "error".
  _request(msg, replyType, timeoutMs = 10000) {
    const id = `r${this._nextId++}`;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this._pending.delete(id);
        reject(new Error(`${msg.type}: no ${replyType} within ${timeoutMs} ms`));
      }, timeoutMs);
      this._pending.set(id, {
        type: msg.type,
        resolve: (m) => { clearTimeout(t); resolve(m); },
        reject: (e) => { clearTimeout(t); reject(e); },
        replyType,
      });
      try { this._send({ type: msg.type, id, ...msg }); } catch (e) { this._pending.delete(id); clearTimeout(t); reject(e); }
    });
  }

  // Fire-and-forget with an id, so an error reply can be attributed.
  _notify(msg) {
    const id = `n${this._nextId++}`;
    this._pending.set(id, { type: msg.type, replyType: null, resolve: () => {}, reject: (e) => this._emit('error', e) });
    setTimeout(() => this._pending.delete(id), 10000);
    this._send({ type: msg.type, id, ...msg });
    return id;
  }

  async _connect() {
    this._setState('connecting');
    let joined;
    try {
      joined = await this._openAndJoin();
    } catch (e) {
      this._teardown();
      this._setState('disconnected');
      throw e;
    }
    this._onJoined(joined);
    return this;
  }

  // Opens the WebSocket and sends join; resolves with "joined".
  async _openAndJoin() {
    const qa = this._qualityAttemptStart(); // join attempt for the quality data (docs/quality.md)
    return this._openAndJoinInner().then((j) => { this._qualityAttemptJoined(qa, j); return j; },
      (e) => { this._qualityAttemptFailed(qa, e); throw e; });
  }

  // With a cluster URL (or after a redirect): route, then try the nodes in
  // order until one joins. Without: the one URL given.
  async _openAndJoinInner() {
    if (!this.cluster && !this._routeVia) {
      try {
        return await this._joinAt(this.url);
      } catch (e) {
        if (!(e instanceof SignalError && e.reason === 'node_draining' && e.redirect)) throw e;
        this._routeVia = e.redirect; /* a draining node names where to go */
      }
    }
    /* the nodes of the last route come after the cluster URL: when that node
     * died, any live one routes us (a room spans nodes) */
    const r = await routeToNode([this._routeVia, this.cluster, ...(this._knownNodes || [])], this.token, this.opts);
    this._knownNodes = r.nodes.map((n) => n.url).filter(Boolean).slice(0, 8);
    /* nodes come and go: while connected, learn the live ones from our node
     * every opts.nodesRefreshMs (10000), so a later failover does not rely on
     * a list that may be all dead by then (one small GET, no RTT probes) */
    clearInterval(this._nodesTimer);
    this._nodesTimer = setInterval(() => {
      if (this.state !== 'connected' || !this.node || !this.node.url) return;
      routeToNode([this.node.url], this.token, { ...this.opts, measureRtt: false })
        .then((x) => { this._knownNodes = x.nodes.map((n) => n.url).filter(Boolean).slice(0, 8); }, () => {});
    }, this.opts.nodesRefreshMs || 10000);
    const tried = [];
    let lastErr = null;
    for (const n of r.nodes) {
      const url = wsUrl(`${n.url.replace(/\/+$/, '')}/rtc`);
      try {
        const joined = await this._joinAt(url);
        this.url = url;
        this.node = n;
        this._emit('routed', { node: n, reason: r.reason, rtts: r.rtts, tried });
        return joined;
      } catch (e) {
        tried.push({ id: n.id, url: n.url, error: e.message || String(e) });
        lastErr = e;
        /* a refused token is refused by every node: no use trying the others */
        if (e instanceof SignalError && (e.code === 401 || e.code === 403)) throw e;
      }
    }
    throw lastErr || new Error('cluster routing: no node to join');
  }

  async _joinAt(url) {
    const ws = new WebSocket(url);
    this.ws = ws;
    this._leftSeen = false;
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`WebSocket ${url} failed`));
      ws.onclose = (ev) => reject(new Error(`WebSocket ${url} closed (${ev.code} ${ev.reason})`));
    });
    ws.onmessage = (ev) => this._onMessage(ev.data);
    ws.onerror = () => {};
    /* until "joined", a close is this attempt's failure (the caller may try
     * another node), not the session's */
    let joining = true;
    const closedEarly = new Promise((_, reject) => {
      ws.onclose = (ev) => {
        if (joining) reject(new Error(`WebSocket ${url} closed (${ev.code} ${ev.reason}) before joined`));
        else this._onClose(ev);
      };
    });
    const join = { type: 'join', token: this.token, auto_subscribe: this.opts.autoSubscribe !== false, protocol: PROTOCOL };
    if (this.opts.name) join.name = this.opts.name;
    if (this.opts.metadata !== undefined) join.metadata = this.opts.metadata;
    try {
      const joined = await Promise.race([this._request(join, 'joined', this.opts.joinTimeoutMs || 10000), closedEarly]);
      joining = false;
      return joined;
    } catch (e) {
      joining = false;
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(); } catch { /* already closed */ }
      this._pending.clear();
      throw e;
    }
  }

  // ---- auto-reconnect ----
  _canReconnect() {
    return this.opts.reconnect !== false && (this.state === 'connected' || this.state === 'reconnecting') && !this._leaving;
  }

  // The signaling connection is lost: drop what the node's side held (PCs,
  // remote participants), keep the local tracks, and rejoin with backoff.
  _reconnect(reason) {
    if (this._reconnecting) return;
    this._reconnecting = true;
    const t0 = performance.now();
    this._dropSession();
    this._setState('reconnecting');
    const base = this.opts.reconnectBaseMs || 500, cap = this.opts.reconnectCapMs || 8000;
    const maxMs = this.opts.reconnectMaxMs ?? 30000;
    const run = async () => {
      for (let attempt = 1; ; attempt++) {
        const d = Math.min(cap, base * 2 ** (attempt - 1));
        /* a draining node sent us elsewhere: that node is up, go at once; in a
         * cluster the other nodes are up (ours may have died): go within 250 ms
         * (spread, so a dead node's clients do not all arrive at once) */
        const delayMs = attempt === 1 && this._routeVia ? 0
          : attempt === 1 && this.cluster ? Math.round(Math.random() * 250)
            : Math.round(d / 2 + Math.random() * (d / 2));
        if (performance.now() - t0 + delayMs > maxMs) return this._giveUp(`could not reconnect within ${maxMs} ms (${reason})`);
        this._emit('reconnecting', { attempt, delayMs, reason });
        await new Promise((r) => { this._retryTimer = setTimeout(r, delayMs); });
        if (this._leaving || this.state !== 'reconnecting') return undefined;
        try {
          if (this.opts.getToken) this.token = await this.opts.getToken();
          const joined = await this._openAndJoin();
          this._onJoined(joined, true);
          await this._republish();
          this._reconnecting = false;
          this._emit('reconnected', { attempts: attempt, ms: Math.round(performance.now() - t0) });
          return undefined;
        } catch (e) {
          this._dropSession(); /* also what a half-done rejoin set up */
          this._setState('reconnecting');
          reason = e.message || String(e);
          if (e instanceof SignalError && (e.code === 401 || e.code === 403) && !this.opts.getToken) return this._giveUp(`rejoin refused: ${reason}`);
        }
      }
    };
    run().catch((e) => this._giveUp(e.message || String(e)));
  }

  _giveUp(reason) {
    this._reconnecting = false;
    this._teardown();
    this._emit('disconnected', { reason });
    this._setState('disconnected');
  }

  // Closes the WebSocket and both PCs without touching local tracks or state.
  _closeTransport() {
    this._qualityStop();
    clearInterval(this._pingTimer);
    this._pingTimer = null;
    for (const [, p] of this._pending) p.reject(new Error('connection lost'));
    this._pending.clear();
    if (this.pub) { this.pub.close(); this.pub = null; }
    if (this.sub) { this.sub.close(); this.sub = null; }
    if (this.ws) { this.ws.onclose = null; this.ws.onmessage = null; if (this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000); }
  }

  // Forgets the node's side of the session: a rejoin is a new participant.
  _dropSession() {
    this._closeTransport();
    for (const mid of [...this._subscribed.keys()]) this._markUnsubscribed(mid);
    this._subMids = new Map();
    this._offerAt.clear();
    for (const p of [...this.participants.values()]) {
      for (const t of [...p.tracks.values()]) this._dropRemoteTrack(p, t);
      this.participants.delete(p.sid);
      this._emit('participantLeft', p);
    }
    this._pubQueue = makeQueue();
    this._subQueue = makeQueue();
    for (const lt of this.localTracks.values()) { lt.sid = null; lt.transceiver = null; }
  }

  // Publishes the kept local tracks on the new publisher PC, in one offer.
  async _republish() {
    const lts = [...this.localTracks.values()];
    if (!lts.length) return;
    for (const lt of lts) {
      lt.transceiver = this.pub.addTransceiver(lt.track, transceiverInit(lt));
      if (lt.kind === 'audio' && this.opts.red !== false) preferRed(lt.transceiver);
    }
    await this._renegotiate();
  }

  _onJoined(m, announce = false) {
    this.localParticipant = { ...m.participant, tracks: undefined };
    this.roomInfo = m.room || null;
    this.pingInterval = m.ping_interval || 5;
    this.pingTimeout = m.ping_timeout || 15;
    for (const p of m.participants || []) {
      const q = this._upsertParticipant(p);
      if (announce) { /* after a reconnect the snapshot is news to the app */
        this._emit('participantJoined', q);
        for (const t of q.tracks.values()) this._emit('trackPublished', t, q);
      }
    }
    const iceServers = this.opts.iceServers || (m.ice_servers || []).map((s) => {
      const o = { urls: s.urls };
      if (s.username !== undefined) o.username = s.username;
      if (s.credential !== undefined) o.credential = s.credential;
      return o;
    });
    const cfg = { bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', iceServers };
    this.pub = new RTCPeerConnection(cfg);
    this.sub = new RTCPeerConnection(cfg);
    this.pub.onconnectionstatechange = () => { this.publisherState = this.pub.connectionState; this._emit('publisherState', this.publisherState); };
    this.sub.onconnectionstatechange = () => {
      this.subscriberState = this.sub.connectionState;
      this.timings.push({ subscriber: this.subscriberState, at: Math.round(performance.now()) });
      this._emit('subscriberState', this.subscriberState);
    };
    this._lastRecv = performance.now();
    this._pingTimer = setInterval(() => this._ping(), this.pingInterval * 1000);
    this._setState('connected');
    this._qualityStart();
  }

  _ping() {
    if (performance.now() - this._lastRecv > this.pingTimeout * 1000) {
      if (this._canReconnect()) { this._reconnect(`no message from the node for ${this.pingTimeout} s`); return; }
      this._emit('error', new Error(`no message from the node for ${this.pingTimeout} s`));
      this._teardown();
      this._setState('disconnected');
      return;
    }
    try { this._send({ type: 'ping', t: Date.now() }); } catch { /* closing */ }
  }

  _onClose(ev) {
    const wasLeft = this._leftSeen;
    if (!wasLeft && this._canReconnect()) { this._reconnect(`signaling closed (${ev.code} ${ev.reason})`); return; }
    this._teardown();
    for (const [, p] of this._pending) p.reject(new Error(`WebSocket closed (${ev.code} ${ev.reason})`));
    this._pending.clear();
    if (!wasLeft && this.state !== 'disconnected') this._emit('error', new Error(`signaling closed (${ev.code} ${ev.reason})`));
    this._setState('disconnected');
  }

  _onMessage(text) {
    this._lastRecv = performance.now();
    let m;
    try { m = JSON.parse(text); } catch { this._emit('error', new Error('node sent invalid JSON')); return; }
    if (this.opts.onMessage) this.opts.onMessage(m);
    const pending = m.id !== undefined ? this._pending.get(m.id) : undefined;
    if (m.type === 'error') {
      const err = new SignalError(m, pending ? pending.type : undefined);
      if (pending) { this._pending.delete(m.id); pending.reject(err); } else this._emit('error', err);
      return;
    }
    if (pending && pending.replyType === m.type) { this._pending.delete(m.id); pending.resolve(m); return; }
    switch (m.type) {
      case 'joined': break; // only as a reply
      case 'publish_answer': break; // only as a reply
      case 'subscriber_offer': this._onSubscriberOffer(m); break;
      case 'participant_joined': {
        const p = this._upsertParticipant(m.participant);
        this._emit('participantJoined', p);
        for (const t of p.tracks.values()) this._emit('trackPublished', t, p);
        break;
      }
      case 'participant_updated': {
        const known = this.participants.get(m.participant.sid);
        const before = known ? new Set(known.tracks.keys()) : new Set();
        if (this.localParticipant && m.participant.sid === this.localParticipant.sid) {
          Object.assign(this.localParticipant, { ...m.participant, tracks: undefined });
          this._emit('participantUpdated', this.localParticipant);
          break;
        }
        const p = this._upsertParticipant(m.participant);
        this._emit('participantUpdated', p);
        for (const t of p.tracks.values()) if (!before.has(t.sid)) this._emit('trackPublished', t, p);
        break;
      }
      case 'participant_left': {
        const p = this.participants.get(m.participant.sid);
        if (!p) break;
        for (const t of p.tracks.values()) this._dropRemoteTrack(p, t);
        this.participants.delete(p.sid);
        this._emit('participantLeft', p);
        break;
      }
      case 'track_published': {
        if (this._isLocal(m.participant_sid)) break;
        const p = this._participant(m.participant_sid);
        const t = this._upsertTrack(p, m.track);
        this._emit('trackPublished', t, p);
        break;
      }
      case 'track_unpublished': {
        if (this._isLocal(m.participant_sid)) break;
        const p = this.participants.get(m.participant_sid);
        const t = p && p.tracks.get(m.track_sid);
        if (t) this._dropRemoteTrack(p, t);
        break;
      }
      case 'track_muted': {
        if (this._isLocal(m.participant_sid)) {
          for (const lt of this.localTracks.values()) {
            if (lt.sid === m.track_sid) { lt.muted = !!m.muted; lt.track.enabled = !lt.muted; this._emit('localTrackMuted', lt, lt.muted); }
          }
          break;
        }
        const p = this.participants.get(m.participant_sid);
        const t = p && p.tracks.get(m.track_sid);
        if (t) { t.muted = !!m.muted; this._emit('trackMuted', t, p, t.muted); }
        break;
      }
      case 'active_speakers': {
        this.activeSpeakers = (m.speakers || []).map((s) => ({
          sid: s.sid, level: s.level,
          participant: this.participants.get(s.sid) || (this._isLocal(s.sid) ? this.localParticipant : undefined),
        }));
        this._emit('activeSpeakers', this.activeSpeakers);
        break;
      }
      case 'stream_state': {
        // the node paused a track we subscribed to (bandwidth / hidden /
        // publisher) or resumed it, and which simulcast layer we get
        const p = this.participants.get(m.participant_sid);
        const t = p && p.tracks.get(m.track_sid);
        if (!t) break;
        t.streamState = m.state;
        t.pauseReason = m.reason || null;
        t.layer = m.state === 'active' && m.rid ? { rid: m.rid, width: m.width || 0, height: m.height || 0 } : null;
        this._emit('streamStateChanged', t, p, m.state, m.reason || null);
        break;
      }
      case 'publish_layers':
        this._applyPublishLayers(m.track_sid, m.active_rids || []);
        break;
      case 'connection_quality':
        for (const u of m.updates || []) {
          const p = this._isLocal(u.participant_sid) ? this.localParticipant : this.participants.get(u.participant_sid);
          if (!p) continue;
          p.connectionQuality = u.quality;
          this._emit('connectionQualityChanged', p, u.quality);
        }
        break;
      case 'data':
        this._emitData(m, 'websocket');
        break;
      case 'pong':
        if (typeof m.t === 'number') this.rtt = Date.now() - m.t;
        break;
      case 'left':
        this._emit('left', { reason: m.reason, message: m.message });
        if (m.reason === 'server_shutdown' && this._canReconnect()) { this._reconnect('server_shutdown'); break; }
        if (m.reason === 'node_draining' && this._canReconnect()) {
          if (m.redirect) this._routeVia = m.redirect;
          this._reconnect('node_draining');
          break;
        }
        this._leftSeen = true;
        this._teardown();
        this._setState('disconnected');
        break;
      default:
        break; // unknown types are ignored (forward compatibility)
    }
  }

  _isLocal(sid) { return this.localParticipant && this.localParticipant.sid === sid; }

  _participant(sid) {
    let p = this.participants.get(sid);
    if (!p) {
      p = { sid, identity: '', name: '', metadata: '', joinedAt: 0, tracks: new Map() };
      this.participants.set(sid, p);
    }
    return p;
  }

  _upsertParticipant(info) {
    const p = this._participant(info.sid);
    p.identity = info.identity || p.identity;
    p.name = info.name !== undefined ? info.name : p.name;
    p.metadata = info.metadata !== undefined ? info.metadata : p.metadata;
    p.joinedAt = info.joined_at || p.joinedAt;
    if (Array.isArray(info.tracks)) {
      const seen = new Set();
      for (const ti of info.tracks) { this._upsertTrack(p, ti); seen.add(ti.sid); }
      for (const t of [...p.tracks.values()]) if (!seen.has(t.sid)) this._dropRemoteTrack(p, t);
    }
    return p;
  }

  _upsertTrack(p, ti) {
    let t = p.tracks.get(ti.sid);
    if (!t) {
      t = { sid: ti.sid, participantSid: p.sid, kind: ti.kind, source: ti.source, muted: false,
        width: 0, height: 0, codec: '', subscribed: false, mediaStreamTrack: null, mid: null };
      p.tracks.set(ti.sid, t);
    }
    for (const k of ['kind', 'source', 'width', 'height', 'codec']) if (ti[k] !== undefined) t[k] = ti[k];
    if (ti.muted !== undefined) t.muted = !!ti.muted;
    return t;
  }

  _dropRemoteTrack(p, t) {
    if (t.subscribed) this._markUnsubscribed(t.mid);
    p.tracks.delete(t.sid);
    this._emit('trackUnpublished', t, p);
  }

  _markUnsubscribed(mid) {
    const t = this._subscribed.get(mid);
    if (!t) return;
    this._subscribed.delete(mid);
    this._offerAt.delete(t.sid);
    t.subscribed = false;
    t.mid = null;
    this._emit('trackUnsubscribed', t, this.participants.get(t.participantSid));
    t.mediaStreamTrack = null;
  }

  // ---- subscriber pc ----
  _onSubscriberOffer(m) {
    const at = performance.now();
    const current = new Set([...this._subscribed.values()].map((t) => t.sid));
    for (const e of m.tracks || []) if (!current.has(e.track_sid) && !this._offerAt.has(e.track_sid)) this._offerAt.set(e.track_sid, at);
    this._emit('subscriberOffer', { tracks: m.tracks || [], at });
    this._subQueue(async () => {
      if (!this.sub) return;
      const map = new Map();
      for (const e of m.tracks || []) map.set(e.mid, e);
      await this.sub.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      const answer = await this.sub.createAnswer();
      await this.sub.setLocalDescription(answer);
      await waitGathering(this.sub, this.opts.subscriberGatherMs ?? 0);
      this._send({ type: 'subscriber_answer', sdp: this.sub.localDescription.sdp });
      this.timings.push({ offer: Math.round(at), answered: Math.round(performance.now()), tracks: (m.tracks || []).length });
      this._subMids = map;
      this._reconcileSubscriber();
    }).catch((e) => this._emit('error', new Error(`subscriber negotiation: ${e.message || e}`)));
  }

  // After each subscriber negotiation: which remote track is on which transceiver.
  _reconcileSubscriber() {
    const live = new Set();
    for (const tr of this.sub.getTransceivers()) {
      if (!tr.mid) continue;
      const e = this._subMids.get(tr.mid);
      const active = e && tr.currentDirection !== 'inactive' && tr.currentDirection !== 'stopped' && !tr.stopped;
      const cur = this._subscribed.get(tr.mid);
      if (!active) { if (cur) this._markUnsubscribed(tr.mid); continue; }
      live.add(tr.mid);
      if (cur && cur.sid === e.track_sid) continue;
      if (cur) this._markUnsubscribed(tr.mid);
      const p = this._participant(e.participant_sid);
      let t = p.tracks.get(e.track_sid);
      if (!t) t = this._upsertTrack(p, { sid: e.track_sid, kind: tr.receiver.track.kind, source: tr.receiver.track.kind === 'audio' ? 'microphone' : 'camera' });
      t.mid = tr.mid;
      t.subscribed = true;
      t.mediaStreamTrack = tr.receiver.track;
      t.receiver = tr.receiver;
      t.subscribedAt = this._offerAt.get(t.sid) || performance.now();
      t.baseline = null;
      t.firstFrameAt = null;
      this._subscribed.set(tr.mid, t);
      this._emit('trackSubscribed', t, p);
      if (t.kind === 'video') this._watchFirstFrame(t);
    }
    for (const mid of [...this._subscribed.keys()]) if (!live.has(mid)) this._markUnsubscribed(mid);
  }

  // Polls the receiver until a frame decodes after this subscription; records
  // the time from the subscriber_offer that brought the track.
  async _watchFirstFrame(t) {
    const recv = t.receiver;
    const sid = t.sid;
    let base;
    const deadline = performance.now() + 20000;
    while (t.subscribed && t.sid === sid && t.receiver === recv && performance.now() < deadline) {
      const n = await this._inbound(recv).then((s) => (s ? s.framesDecoded || 0 : 0)).catch(() => 0);
      if (base === undefined) { base = n; t.baseline = n; if (n > 0 && t.firstFrameAt === null) { /* reused transceiver: wait for more */ } }
      if (n > base) { t.firstFrameAt = performance.now(); this.timings.push({ firstFrame: t.sid, at: Math.round(t.firstFrameAt) }); t.firstFrameMs = Math.round(t.firstFrameAt - t.subscribedAt); this._emit('firstFrame', t); return; }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async _inbound(receiver) {
    const st = await receiver.getStats();
    let out = null;
    st.forEach((s) => { if (s.type === 'inbound-rtp') out = s; });
    return out;
  }

  // ---- publisher pc ----
  _renegotiate() {
    return this._pubQueue(async () => {
      if (!this.pub) throw new Error('not joined');
      const offer = await this.pub.createOffer();
      await this.pub.setLocalDescription(offer);
      await waitGathering(this.pub, 1000);
      const tracks = [];
      for (const lt of this.localTracks.values()) {
        if (!lt.transceiver.mid) continue;
        const e = { cid: lt.cid, mid: lt.transceiver.mid, kind: lt.kind, source: lt.source, muted: lt.muted };
        const s = lt.track.getSettings ? lt.track.getSettings() : {};
        if (lt.kind === 'video' && s.width && s.height) { e.width = s.width; e.height = s.height; }
        tracks.push(e);
      }
      const ans = await this._request({ type: 'publish_offer', sdp: this.pub.localDescription.sdp, tracks }, 'publish_answer');
      await this.pub.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
      for (const ref of ans.tracks || []) {
        const lt = this.localTracks.get(ref.cid);
        if (lt && lt.sid !== ref.sid) { lt.sid = ref.sid; this._emit('localTrackPublished', lt); }
      }
      return ans;
    });
  }

  // Publishes a MediaStreamTrack with a source ("camera", "microphone", "screen",
  // "screen_audio"). Resolves with the local track {cid, sid, kind, source, track}.
  async publishTrack(track, source, opts = {}) {
    if (!this.pub) throw new Error('not joined');
    const kind = track.kind;
    if (!KINDS[source] || KINDS[source] !== kind) throw new Error(`source ${source} does not fit a ${kind} track`);
    const stream = opts.stream || new MediaStream([track]);
    const encodings = sendEncodingsFor(source, track, opts, this.opts);
    // reuse an idle transceiver of the same kind (keeps the SDP from growing);
    // simulcast needs a fresh one (its layers are fixed when it is created)
    let tr = encodings ? null : this.pub.getTransceivers().find((x) => !x.stopped && !x.sender.track &&
      x.receiver.track.kind === kind && ![...this.localTracks.values()].some((lt) => lt.transceiver === x) &&
      x.sender.getParameters().encodings.length <= 1);
    if (tr) {
      await tr.sender.replaceTrack(track);
      tr.direction = 'sendonly';
      if (tr.sender.setStreams) tr.sender.setStreams(stream);
    } else {
      tr = this.pub.addTransceiver(track, transceiverInit({ track, stream, encodings }));
    }
    if (kind === 'audio' && opts.red !== false && this.opts.red !== false) preferRed(tr);
    const lt = { cid: track.id, sid: null, kind, source, track, stream, transceiver: tr, muted: !track.enabled, encodings };
    this.localTracks.set(lt.cid, lt);
    try {
      await this._renegotiate();
    } catch (e) {
      this.localTracks.delete(lt.cid);
      await tr.sender.replaceTrack(null).catch(() => {});
      tr.direction = 'inactive';
      throw e;
    }
    track.addEventListener('ended', () => { if (this.localTracks.get(lt.cid) === lt) this.unpublish(lt).catch(() => {}); });
    return lt;
  }

  async publishCamera(constraints = { width: 640, height: 360 }) {
    const media = await navigator.mediaDevices.getUserMedia({ video: constraints });
    return this.publishTrack(media.getVideoTracks()[0], 'camera', { stream: media });
  }

  async publishMicrophone(constraints = true) {
    const media = await navigator.mediaDevices.getUserMedia({ audio: constraints });
    return this.publishTrack(media.getAudioTracks()[0], 'microphone', { stream: media });
  }

  // Screen share as a second video track (plus its audio when the browser gives one).
  async publishScreen(constraints = { video: true, audio: false }) {
    const media = await navigator.mediaDevices.getDisplayMedia(constraints);
    const lt = await this.publishTrack(media.getVideoTracks()[0], 'screen', { stream: media });
    const a = media.getAudioTracks()[0];
    if (a) await this.publishTrack(a, 'screen_audio', { stream: media });
    return lt;
  }

  _local(x) {
    if (!x) return undefined;
    if (typeof x === 'string') return this.localTracks.get(x) || [...this.localTracks.values()].find((l) => l.sid === x || l.source === x);
    if (x.cid) return this.localTracks.get(x.cid);
    return this.localTracks.get(x.id); // a MediaStreamTrack
  }

  // Stops publishing a local track (by local track, cid, sid, source name or MediaStreamTrack).
  async unpublish(x, { stop = true } = {}) {
    const lt = this._local(x);
    if (!lt) throw new Error('no such local track');
    this.localTracks.delete(lt.cid);
    if (lt.transceiver) { /* none while reconnecting */
      await lt.transceiver.sender.replaceTrack(null);
      lt.transceiver.direction = 'inactive';
    }
    if (stop) lt.track.stop();
    this._emit('localTrackUnpublished', lt);
    if (this.pub && this.state === 'connected') await this._renegotiate();
  }

  // Mutes/unmutes a local track: stops sending media (track.enabled) and tells the room.
  setMuted(x, muted) {
    const lt = this._local(x);
    if (!lt) throw new Error('no such local track');
    lt.muted = !!muted;
    lt.track.enabled = !muted;
    if (lt.sid) this._notify({ type: 'mute', track_sid: lt.sid, muted: !!muted });
    this._emit('localTrackMuted', lt, lt.muted);
  }
  mute(x) { this.setMuted(x, true); }
  unmute(x) { this.setMuted(x, false); }

  _emitData(m, transport) {
    const participant = m.from_sid ? this.participants.get(m.from_sid) : [...this.participants.values()].find((p) => p.identity === m.from);
    let payload = m.payload;
    if (m.binary) {
      const bin = atob(m.payload || '');
      payload = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) payload[i] = bin.charCodeAt(i);
    }
    this._emit('data', { from: m.from, fromSid: m.from_sid, payload, participant, transport, channel: m.channel, binary: !!m.binary });
  }

  // ---- data channels ----
  // Adds "hd-reliable" and "hd-lossy" to the publisher pc, renegotiates, and
  // resolves once both are open. Idempotent. Needs no publish grant for media;
  // sending needs canPublishData (the node drops messages otherwise and says
  // why with an "error" event, code 403).
  enableDataChannels({ timeoutMs = 10000 } = {}) {
    if (this._dcReady) return this._dcReady;
    if (!this.pub) return Promise.reject(new Error('not joined'));
    const dc = {
      reliable: this.pub.createDataChannel('hd-reliable', { ordered: true }),
      lossy: this.pub.createDataChannel('hd-lossy', { ordered: false, maxRetransmits: 0 }),
    };
    this._dc = dc;
    const opened = [];
    for (const ch of Object.values(dc)) {
      ch.binaryType = 'arraybuffer';
      ch.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return; // the node sends JSON text only
        let m;
        try { m = JSON.parse(ev.data); } catch { return; }
        if (m && m.type === 'data') this._emitData(m, 'datachannel');
      };
      opened.push(new Promise((resolve, reject) => {
        if (ch.readyState === 'open') { resolve(); return; }
        const t = setTimeout(() => reject(new Error(`data channel ${ch.label} did not open`)), timeoutMs);
        ch.addEventListener('open', () => { clearTimeout(t); resolve(); }, { once: true });
      }));
    }
    this._dcReady = this._renegotiate().then(() => Promise.all(opened)).then(() => dc);
    this._dcReady.catch(() => { this._dcReady = null; });
    return this._dcReady;
  }

  // True when both data channels are open.
  get dataChannelsOpen() {
    return !!this._dc && this._dc.reliable.readyState === 'open' && this._dc.lossy.readyState === 'open';
  }

  // Sends a message (string, ArrayBuffer or typed array) to everyone else in the
  // room over a data channel: reliable (default, ordered) or lossy (unordered,
  // never retransmitted). Throws unless enableDataChannels() has completed.
  // Limits: 15360 bytes of text, 11520 bytes of binary, 50 messages/s shared
  // with sendData.
  sendDataChannel(payload, { reliable = true } = {}) {
    const ch = this._dc && (reliable ? this._dc.reliable : this._dc.lossy);
    if (!ch || ch.readyState !== 'open') throw new Error('data channels are not open (enableDataChannels first)');
    ch.send(payload);
  }

  // Room data over the signaling WebSocket (reliable). to: identities (default everyone else).
  sendData(payload, to) {
    const m = { type: 'data', payload: String(payload) };
    if (to && to.length) m.to = Array.isArray(to) ? to : [to];
    return this._notify(m);
  }

  // Layer selection (docs/protocol.md "Layer selection"): how the page shows
  // remote video tracks. width/height: the tile in device pixels (the node
  // sends the smallest simulcast layer that covers it); visible: false = the
  // node sends nothing; pinned: bandwidth goes to it first.
  setTrackSettings(trackSids, { visible = true, width = 0, height = 0, pinned = false } = {}) {
    const msg = { type: 'track_settings', track_sids: [].concat(trackSids), visible: !!visible };
    if (width > 0) msg.width = Math.min(16384, Math.round(width));
    if (height > 0) msg.height = Math.min(16384, Math.round(height));
    if (pinned) msg.pinned = true;
    return this._notify(msg);
  }

  // Watches the element that shows a remote video track and keeps the node
  // told of its size and visibility (setTrackSettings), so small tiles get the
  // low layer and hidden ones nothing. Returns a function that stops watching.
  observeTile(trackSid, el, { pinned = false } = {}) {
    if (typeof ResizeObserver === 'undefined') return () => {};
    let last = '', timer = null, inView = true;
    const send = () => {
      timer = null;
      const r = el.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
      const visible = inView && r.width > 0 && r.height > 0 && document.visibilityState !== 'hidden';
      const w = Math.round(r.width * dpr), h = Math.round(r.height * dpr);
      const key = `${visible}|${w}|${h}|${pinned}`;
      if (key === last || this.state !== 'connected') return;
      last = key;
      this.setTrackSettings(trackSid, { visible, width: w, height: h, pinned });
    };
    // coalesce bursts (a window being resized) into one message
    const later = () => { if (!timer) timer = setTimeout(send, 200); };
    const ro = new ResizeObserver(later);
    ro.observe(el);
    let io = null;
    if (typeof IntersectionObserver !== 'undefined') {
      io = new IntersectionObserver((es) => { inView = es.some((e) => e.isIntersecting); later(); });
      io.observe(el);
    }
    document.addEventListener('visibilitychange', later);
    this.on('reconnected', later);
    later();
    return () => {
      ro.disconnect(); if (io) io.disconnect();
      document.removeEventListener('visibilitychange', later);
      this.off('reconnected', later);
      if (timer) clearTimeout(timer);
    };
  }

  // publish_layers: the node says which simulcast layers of one of our tracks
  // someone needs; the others stop encoding until they are needed again.
  _applyPublishLayers(sid, rids) {
    for (const lt of this.localTracks.values()) {
      if (lt.sid !== sid || !lt.transceiver || !lt.encodings) continue;
      const sender = lt.transceiver.sender;
      const params = sender.getParameters();
      if (!params.encodings || params.encodings.length < 2) continue;
      let changed = false;
      for (const e of params.encodings) {
        const on = !e.rid || rids.includes(e.rid);
        if (e.active !== on) { e.active = on; changed = true; }
      }
      lt.activeLayers = params.encodings.filter((e) => e.active).map((e) => e.rid);
      if (!changed) continue;
      sender.setParameters(params)
        .then(() => this._emit('publishLayersChanged', lt, lt.activeLayers))
        .catch((e) => this._emit('error', new Error(`publish_layers: setParameters failed: ${e.message || e}`)));
    }
  }

  subscribe(trackSids) { return this._notify({ type: 'subscribe', track_sids: [].concat(trackSids) }); }
  unsubscribe(trackSids) { return this._notify({ type: 'unsubscribe', track_sids: [].concat(trackSids) }); }

  updateMetadata({ name, metadata }) {
    const m = { type: 'update_metadata' };
    if (name !== undefined) m.name = name;
    if (metadata !== undefined) m.metadata = metadata;
    return this._notify(m);
  }

  // Leaves the room: "leave", then waits (briefly) for "left" and closes everything.
  async leave() {
    if (this.state === 'disconnected') return;
    this._leaving = true;
    clearTimeout(this._retryTimer);
    if (this.state === 'reconnecting') { this._reconnecting = false; this._teardown(); this._setState('disconnected'); return; }
    const gotLeft = new Promise((resolve) => {
      const off = this.on('connectionStateChanged', (s) => { if (s === 'disconnected') { off(); resolve(); } });
      setTimeout(resolve, 1000);
    });
    clearInterval(this._pingTimer);
    try { this._send({ type: 'leave' }); } catch { /* already closed */ }
    await gotLeft;
    this._teardown();
    this._setState('disconnected');
  }

  _teardown() {
    clearInterval(this._pingTimer);
    clearInterval(this._nodesTimer);
    this._pingTimer = null;
    clearTimeout(this._retryTimer);
    for (const lt of this.localTracks.values()) lt.track.stop();
    this.localTracks.clear();
    for (const mid of [...this._subscribed.keys()]) this._markUnsubscribed(mid);
    this._dc = null;
    this._dcReady = null;
    if (this.pub) { this.pub.close(); this.pub = null; }
    if (this.sub) { this.sub.close(); this.sub = null; }
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) { this.ws.onclose = null; this.ws.close(1000); }
  }

  // ---- stats (for people and tests) ----
  // {publisher, subscriber, rtt, tracks: [{sid, participantSid, identity, kind, source, muted,
  //  framesDecoded (since this subscription), framesDecodedTotal, packetsReceived, bytesReceived,
  //  frameWidth, frameHeight, firstFrameMs}], local: [{cid, sid, kind, source, packetsSent, framesEncoded}]}
  async stats() {
    const out = { state: this.state, publisher: this.publisherState, subscriber: this.subscriberState, rtt: this.rtt, tracks: [], local: [] };
    for (const t of this._subscribed.values()) {
      const p = this.participants.get(t.participantSid);
      const e = { sid: t.sid, participantSid: t.participantSid, identity: p ? p.identity : '', name: p ? p.name : '',
        kind: t.kind, source: t.source, muted: t.muted, mid: t.mid, firstFrameMs: t.firstFrameMs };
      const s = t.receiver ? await this._inbound(t.receiver).catch(() => null) : null;
      if (s) {
        e.packetsReceived = s.packetsReceived; e.bytesReceived = s.bytesReceived; e.packetsLost = s.packetsLost;
        e.jitter = s.jitter; e.nackCount = s.nackCount; e.pliCount = s.pliCount;
        if (t.kind === 'video') {
          e.framesDecodedTotal = s.framesDecoded || 0;
          e.framesDecoded = e.framesDecodedTotal - (t.baseline || 0);
          e.frameWidth = s.frameWidth; e.frameHeight = s.frameHeight; e.freezeCount = s.freezeCount;
        } else {
          e.totalSamplesReceived = s.totalSamplesReceived; e.concealedSamples = s.concealedSamples; e.audioLevel = s.audioLevel;
        }
      } else {
        e.packetsReceived = 0; e.framesDecoded = 0;
      }
      out.tracks.push(e);
    }
    for (const lt of this.localTracks.values()) {
      const e = { cid: lt.cid, sid: lt.sid, kind: lt.kind, source: lt.source, muted: lt.muted };
      const st = lt.transceiver ? await lt.transceiver.sender.getStats().catch(() => null) : null;
      // a simulcast track has one outbound-rtp per layer: add them up (a layer the
      // encoder paused reports zeros)
      if (st) st.forEach((s) => {
        if (s.type !== 'outbound-rtp') return;
        e.packetsSent = (e.packetsSent || 0) + (s.packetsSent || 0);
        e.bytesSent = (e.bytesSent || 0) + (s.bytesSent || 0);
        e.framesEncoded = Math.max(e.framesEncoded || 0, s.framesEncoded || 0);
        if (s.rid) (e.layers = e.layers || []).push({ rid: s.rid, bytesSent: s.bytesSent, frameHeight: s.frameHeight });
      });
      out.local.push(e);
    }
    return out;
  }
}

// Opens the WebSocket, joins with token and resolves with the Room once "joined" arrived.
// opts: {name, metadata, autoSubscribe (default true), iceServers (override), joinTimeoutMs, onMessage(m),
//        dataChannels (open the data channels before resolving)}
export async function connect(url, token, opts = {}) {
  const room = new Room(url, token, opts);
  await room._connect();
  if (opts.dataChannels) await room.enableDataChannels();
  return room;
}

// ---- quality reports (docs/quality.md "Client reports") ----
// Every few seconds a compact summary of the subscriber PC's getStats goes to the
// node as "quality_report" (cumulative counters per received track; the node
// turns them into per-interval rows), and every join attempt as "quality_join".
// Attempts are kept in localStorage until sent, so one that failed before the
// WebSocket opened is reported on the next successful connection.
// opts.qualityReports === false turns it off; opts.qualityIntervalMs (5000).
const QUALITY_KEY = 'hudong.quality.attempts';
const QUALITY_MAX_KEPT = 20;
const QUALITY_MEDIA_WAIT_MS = 10000; // a join that decoded nothing by then is reported without first media

function qualityLoad() {
  try { const a = JSON.parse(globalThis.localStorage?.getItem(QUALITY_KEY) || '[]'); return Array.isArray(a) ? a : []; } catch { return []; }
}
function qualitySave(a) {
  try { globalThis.localStorage?.setItem(QUALITY_KEY, JSON.stringify(a.slice(-QUALITY_MAX_KEPT))); } catch { /* storage off */ }
}
function qualityUpdate(id, fields) {
  const a = qualityLoad();
  const x = a.find((e) => e.id === id);
  if (x) Object.assign(x, fields);
  qualitySave(a);
}
function tokenRoom(token) {
  try {
    const p = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(p + '='.repeat((4 - (p.length % 4)) % 4))).grants?.room || '';
  } catch { return ''; }
}

Object.assign(Room.prototype, {
  _qualityOn() { return this.opts.qualityReports !== false; },

  _qualityAttemptStart() {
    if (!this._qualityOn()) return null;
    const a = { id: `ja_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, room: tokenRoom(this.token),
      started_at: Date.now(), outcome: 'pending', t0: performance.now() };
    const all = qualityLoad();
    // an attempt left pending by a page that went away never reached media
    for (const e of all) if (e.outcome === 'pending' && Date.now() - e.started_at > 30000) Object.assign(e, { outcome: 'failed', reason: 'abandoned' });
    all.push({ ...a, t0: undefined });
    qualitySave(all);
    return a;
  },

  _qualityAttemptFailed(a, e) {
    if (!a) return;
    qualityUpdate(a.id, { outcome: 'failed', reason: String(e && e.message ? e.message : e).slice(0, 120), join_ms: null, first_media_ms: null });
  },

  // Joined: wait for the first decoded remote media (a video frame or audio
  // samples) on the subscriber PC; a room with nothing to receive counts as
  // reaching media when joined.
  _qualityAttemptJoined(a, joined) {
    if (!a) return;
    const joinMs = Math.round(performance.now() - a.t0);
    const anyRemote = (joined.participants || []).some((p) => (p.tracks || []).length > 0);
    qualityUpdate(a.id, { join_ms: joinMs });
    const done = (firstMs) => { qualityUpdate(a.id, { outcome: 'ok', first_media_ms: firstMs }); this._qualityFlushJoins(); };
    if (!anyRemote) { done(joinMs); return; }
    const deadline = a.t0 + QUALITY_MEDIA_WAIT_MS;
    const poll = async () => {
      if (this._leaving || this.state === 'disconnected') return;
      let got = false;
      for (const t of this._subscribed.values()) {
        const s = t.receiver ? await this._inbound(t.receiver).catch(() => null) : null;
        if (s && ((s.framesDecoded || 0) > 0 || (s.totalSamplesReceived || 0) > 0)) got = true;
      }
      if (got) { done(Math.round(performance.now() - a.t0)); return; }
      if (performance.now() > deadline) { qualityUpdate(a.id, { outcome: 'ok', first_media_ms: null, reason: 'no remote media within 10 s' }); this._qualityFlushJoins(); return; }
      this._qualityJoinTimer = setTimeout(poll, 50);
    };
    poll();
  },

  // Sends every finished attempt kept (this page's and earlier ones) and forgets them.
  _qualityFlushJoins() {
    if (!this._qualityOn() || !this.ws || this.ws.readyState !== WebSocket.OPEN || !this.roomInfo) return;
    // the node takes one quality_join per second and connection: a second flush waits
    const wait = (this._qualityJoinAt || 0) + 1200 - performance.now();
    if (wait > 0) {
      clearTimeout(this._qualityFlushTimer);
      this._qualityFlushTimer = setTimeout(() => this._qualityFlushJoins(), wait);
      return;
    }
    const all = qualityLoad();
    const done = all.filter((e) => e.outcome !== 'pending').slice(0, 20);
    if (!done.length) return;
    const attempts = done.map((e) => ({ id: e.id, room: e.room, started_at: e.started_at, outcome: e.outcome,
      reason: e.reason || '', join_ms: e.join_ms ?? null, first_media_ms: e.first_media_ms ?? null }));
    try { this._send({ type: 'quality_join', attempts }); } catch { return; }
    this._qualityJoinAt = performance.now();
    const sent = new Set(done.map((e) => e.id));
    qualitySave(qualityLoad().filter((e) => !sent.has(e.id)));
    this.qualityJoinsSent = (this.qualityJoinsSent || []).concat(attempts);
  },

  _qualityStart() {
    if (!this._qualityOn()) return;
    this._qualityFlushJoins();
    clearInterval(this._qualityTimer);
    this._qualityTimer = setInterval(() => { this._qualityReport().catch(() => {}); }, this.opts.qualityIntervalMs || 5000);
  },

  _qualityStop() {
    clearInterval(this._qualityTimer);
    clearTimeout(this._qualityJoinTimer);
    clearTimeout(this._qualityFlushTimer);
    this._qualityTimer = null;
    this._qualityJoinAt = 0; // a new connection has its own pace
  },

  // The summary of what this page receives; also kept as this.lastQualityReport (tests compare it with the API).
  async qualitySummary() {
    const out = { candidate: '', rtt_ms: null, tracks: [] };
    if (!this.sub) return out;
    const st = await this.sub.getStats();
    let pair = null;
    st.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = st.get(s.selectedCandidatePairId); });
    if (!pair) st.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
    if (pair) {
      if (pair.currentRoundTripTime !== undefined) out.rtt_ms = Math.round(pair.currentRoundTripTime * 10000) / 10;
      const lc = st.get(pair.localCandidateId);
      if (lc) out.candidate = lc.candidateType || '';
    }
    const now = performance.now();
    for (const t of this._subscribed.values()) {
      const s = t.receiver ? await this._inbound(t.receiver).catch(() => null) : null;
      if (!s) continue;
      const e = { sid: t.sid, kind: t.kind, bytes: s.bytesReceived || 0, packets: s.packetsReceived || 0,
        lost: Math.max(0, s.packetsLost || 0), jb_delay_s: s.jitterBufferDelay || 0, jb_emitted: s.jitterBufferEmittedCount || 0 };
      if (t.kind === 'video') {
        Object.assign(e, { freezes: s.freezeCount || 0, freeze_ms: Math.round((s.totalFreezesDuration || 0) * 1000),
          frames_decoded: s.framesDecoded || 0, frames_dropped: s.framesDropped || 0,
          watched_ms: t.firstFrameAt ? Math.round(now - t.firstFrameAt) : 0 });
      } else {
        Object.assign(e, { concealed: s.concealedSamples || 0, samples: s.totalSamplesReceived || 0 });
      }
      out.tracks.push(e);
      if (out.tracks.length >= 16) break;
    }
    return out;
  },

  async _qualityReport() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.sub) return;
    const r = await this.qualitySummary();
    try { this._send({ type: 'quality_report', ...r }); } catch { return; }
    this.lastQualityReport = { ...r, at: Date.now() };
    this._emit('qualityReport', this.lastQualityReport);
  },
});
