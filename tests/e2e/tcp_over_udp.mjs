// A TCP-over-UDP tunnel for e2e tests, so that WebSocket/HTTP traffic (the
// whiteboard's RTM and /api/board) crosses `hudong netem`, which relays UDP
// only (docs/netem.md): pages connect to a local TCP port, the bytes go in
// numbered datagrams (cumulative acks, retransmission after 40 ms) through
// the relay to the server end, which opens the TCP connection to the node.
// A lost datagram thus costs what it costs TCP: a retransmission delay.
//
//   const srvEnd = await tunnelServer(nodeHttpPort);      // UDP port for netem --to
//   const cliEnd = await tunnelClient(relayPort);         // TCP port for the page
//   page.goto(`http://127.0.0.1:${cliEnd.port}/...`)
import { createSocket } from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';

const DATA = 1, ACK = 2, FIN = 3;
const CHUNK = 1100;
const RTO_MS = 40;

function pkt(type, conn, seq, payload) {
  const b = Buffer.alloc(9 + (payload ? payload.length : 0));
  b[0] = type; b.writeUInt32BE(conn, 1); b.writeUInt32BE(seq, 5);
  if (payload) payload.copy(b, 9);
  return b;
}

class Conn {
  constructor(id, send, stats) {
    this.id = id; this.send = send; this.stats = stats;
    this.q = new Map(); // seq -> {buf, t}
    this.next = 0; this.recvNext = 0; this.recv = new Map();
    this.tcp = null; this.pendingOut = [];
  }

  attach(tcp) {
    this.tcp = tcp;
    for (const b of this.pendingOut) tcp.write(b);
    this.pendingOut = [];
    tcp.on('data', (d) => { for (let i = 0; i < d.length; i += CHUNK) this.push(DATA, d.subarray(i, i + CHUNK)); });
    tcp.on('end', () => this.push(FIN, null));
    tcp.on('error', () => {});
  }

  push(type, payload) {
    const seq = this.next++;
    const buf = pkt(type, this.id, seq, payload);
    this.q.set(seq, { buf, t: Date.now() });
    this.send(buf);
    this.stats.sent++;
  }

  onPacket(type, seq, payload) {
    if (type === ACK) { for (const s of this.q.keys()) if (s < seq) this.q.delete(s); return; }
    if (seq >= this.recvNext && !this.recv.has(seq)) this.recv.set(seq, { type, payload });
    while (this.recv.has(this.recvNext)) {
      const p = this.recv.get(this.recvNext);
      this.recv.delete(this.recvNext++);
      if (p.type === FIN) { if (this.tcp) this.tcp.end(); } else if (this.tcp) this.tcp.write(p.payload); else this.pendingOut.push(p.payload);
    }
    this.send(pkt(ACK, this.id, this.recvNext));
  }

  retransmit(now) {
    let n = 0;
    for (const e of this.q.values()) {
      if (now - e.t < RTO_MS) continue;
      e.t = now;
      this.send(e.buf);
      this.stats.retransmits++;
      if (++n >= 64) break;
    }
  }
}

function timer(conns) {
  return setInterval(() => { const now = Date.now(); for (const c of conns.values()) c.retransmit(now); }, 10);
}

// The node's end: datagrams from the relay -> TCP connections to 127.0.0.1:targetPort.
export async function tunnelServer(targetPort) {
  const udp = createSocket('udp4');
  await new Promise((r) => udp.bind(0, '127.0.0.1', r));
  const conns = new Map(), stats = { sent: 0, retransmits: 0 };
  udp.on('message', (m, ri) => {
    if (m.length < 9) return;
    const type = m[0], id = m.readUInt32BE(1), seq = m.readUInt32BE(5);
    const key = `${ri.port}:${id}`;
    let c = conns.get(key);
    if (!c) {
      if (type === ACK) return;
      c = new Conn(id, (b) => udp.send(b, ri.port, ri.address), stats);
      conns.set(key, c);
      const tcp = net.connect(targetPort, '127.0.0.1');
      tcp.setNoDelay(true);
      c.attach(tcp);
    }
    c.onPacket(type, seq, m.subarray(9));
  });
  const t = timer(conns);
  return { port: udp.address().port, stats, close: () => { clearInterval(t); udp.close(); for (const c of conns.values()) c.tcp?.destroy(); } };
}

// A page's end: a TCP listener whose connections go as datagrams to relayPort.
export async function tunnelClient(relayPort) {
  const udp = createSocket('udp4');
  await new Promise((r) => udp.bind(0, '127.0.0.1', r));
  const conns = new Map(), stats = { sent: 0, retransmits: 0 };
  udp.on('message', (m) => {
    if (m.length < 9) return;
    const c = conns.get(m.readUInt32BE(1));
    if (c) c.onPacket(m[0], m.readUInt32BE(5), m.subarray(9));
  });
  const server = net.createServer((tcp) => {
    tcp.setNoDelay(true);
    const id = randomInt(1, 2 ** 31);
    const c = new Conn(id, (b) => udp.send(b, relayPort, '127.0.0.1'), stats);
    conns.set(id, c);
    c.attach(tcp);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const t = timer(conns);
  return { port: server.address().port, stats, close: () => { clearInterval(t); server.close(); udp.close(); for (const c of conns.values()) c.tcp?.destroy(); } };
}
