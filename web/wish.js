// WHIP (RFC 9725) / WHEP client helpers shared by publish.html and play.html.
// Non-trickle: we wait for ICE gathering to finish (the server is ICE-lite and
// learns our address from our checks anyway), POST the offer, apply the answer.

export async function devToken(room, identity) {
  const r = await fetch(`/api/dev-token?room=${encodeURIComponent(room)}&identity=${encodeURIComponent(identity)}`);
  if (!r.ok) throw new Error(`token endpoint: ${r.status} ${await r.text()}`);
  return (await r.json()).token;
}

function waitGathering(pc, ms = 2000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
}

// Posts pc's offer to `url`; returns the session resource URL (Location).
export async function negotiate(pc, url, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitGathering(pc);
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
    body: pc.localDescription.sdp,
  });
  const body = await r.text();
  if (r.status !== 201) throw new Error(`${url}: ${r.status} ${body.trim()}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  return new URL(r.headers.get('Location'), new URL(url, location.href)).toString();
}

export async function endSession(resource, token) {
  if (!resource) return;
  await fetch(resource, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` } });
}

// Collects the numbers a person (and the e2e test) looks at.
export async function summarize(pc) {
  const out = { state: pc.connectionState, ice: pc.iceConnectionState };
  const stats = await pc.getStats();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp') {
      out[`in_${s.kind}`] = {
        packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, bytesReceived: s.bytesReceived,
        framesDecoded: s.framesDecoded, frameWidth: s.frameWidth, frameHeight: s.frameHeight,
        jitter: s.jitter, nackCount: s.nackCount, pliCount: s.pliCount, freezeCount: s.freezeCount,
        totalFreezesDuration: s.totalFreezesDuration, retransmittedPacketsReceived: s.retransmittedPacketsReceived,
        concealedSamples: s.concealedSamples, totalSamplesReceived: s.totalSamplesReceived,
        codec: s.codecId && stats.get(s.codecId) ? stats.get(s.codecId).mimeType : undefined,
      };
    } else if (s.type === 'outbound-rtp') {
      out[`out_${s.kind}`] = {
        packetsSent: s.packetsSent, bytesSent: s.bytesSent, framesEncoded: s.framesEncoded,
        frameWidth: s.frameWidth, frameHeight: s.frameHeight, nackCount: s.nackCount, pliCount: s.pliCount,
        targetBitrate: s.targetBitrate, qualityLimitationReason: s.qualityLimitationReason,
        retransmittedPacketsSent: s.retransmittedPacketsSent,
      };
    } else if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      out.rttMs = s.currentRoundTripTime !== undefined ? Math.round(s.currentRoundTripTime * 1000) : undefined;
      out.availableOutgoingBitrate = s.availableOutgoingBitrate;
    }
  });
  return out;
}

export function param(name, dflt) {
  const v = new URLSearchParams(location.search).get(name);
  return v === null ? dflt : v;
}

// Wires a page's Start/Stop buttons, state line and live stats to one WHIP or
// WHEP session. `setup(pc)` adds the page's tracks/transceivers before the offer.
// Page elements: #room #token #start #stop #state #error #stats. Test hooks live
// in window.hudong {state, stats, error}.
export function mountSession({ kind, identityPrefix, setup }) {
  const $ = (id) => document.getElementById(id);
  $('room').value = param('room', 'demo');
  let pc = null, resource = null, token = null, timer = null;
  window.hudong = { state: 'idle', stats: null, error: null };
  const setState = (s) => { $('state').textContent = window.hudong.state = s; };

  async function start() {
    $('start').disabled = true; $('error').textContent = '';
    try {
      const room = $('room').value.trim();
      token = $('token').value.trim() || param('token', '') ||
        await devToken(room, `${identityPrefix}-${Math.random().toString(36).slice(2, 7)}`);
      pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
      await setup(pc);
      pc.onconnectionstatechange = () => setState(pc.connectionState);
      resource = await negotiate(pc, `/${kind}/${encodeURIComponent(room)}`, token);
      $('stop').disabled = false;
      timer = setInterval(async () => {
        const s = await summarize(pc);
        window.hudong.stats = s;
        $('stats').textContent = JSON.stringify(s, null, 2);
      }, 500);
    } catch (e) {
      $('error').textContent = window.hudong.error = String(e.message || e);
      $('start').disabled = false;
    }
  }

  async function stop() {
    clearInterval(timer);
    await endSession(resource, token);
    if (pc) pc.close();
    pc = null; resource = null;
    setState('stopped');
    $('start').disabled = false; $('stop').disabled = true;
  }

  $('start').onclick = start;
  $('stop').onclick = stop;
  // A tab closed without Stop ends its session at once (keepalive outlives the
  // page), so the room is free for the next publisher; should this request not
  // make it, the node lets a new WHIP publish replace a publisher that has sent
  // nothing for 5 s (docs/operations.md "Limits").
  window.addEventListener('pagehide', () => {
    if (!resource) return;
    fetch(resource, { method: 'DELETE', headers: { Authorization: `Bearer ${token}` }, keepalive: true }).catch(() => {});
    resource = null;
  });
  if (param('autostart', '0') === '1') start();
}
