/* Media and messages between nodes (docs/overlay.md "The link protocol" and
 * "Relaying"): what arrives from another node (room_remote_feed: media for
 * stand-ins, feedback for our publishers, HELLOs, state, reliable data,
 * layer reports), relaying along source routes with per-hop repair, and our
 * publishers' media sent once to each node that wants it
 * (room_remote_forward). Room state and upkeep are in room_remote.c. */
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "base/err.h"
#include "base/log.h"
#include "proto/rtcp.h"
#include "sfu/room_relay.h"

/* The worker (lane) of next hop nx that takes a datagram with header d
 * (d->hops[d->hop] is nx): the room's worker at the destination, or at a
 * relay the one its flow hashes to (hd_relay_worker: relaying spreads over
 * the relay's workers, one stream stays on one). */
static int next_lane(const hd_relay_hdr_t *d, const cl_peer_t *nx) {
  int na = nx->n_addr < HD_HOP_LANES ? nx->n_addr : HD_HOP_LANES;
  if (na < 1) return 0;
  return d->hop + 1 == d->n_hops ? d->dst_worker % na : hd_relay_worker(d, na);
}

/* The relay body in the reserved datagram (len bytes, hop index `hop`) goes
 * to nx's worker `lane` as the next datagram of this worker's hop stream
 * for that lane, kept for the hop's repair. */
static void hop_commit(hd_node_t *n, cl_peer_t *nx, uint8_t *b, size_t len, uint8_t hop, int lane) {
  struct node_cluster *c = n->cl;
  uint32_t seq = hd_hop_tx_seq(&nx->hop_tx, lane);
  hd_relay_set_hop(b, hop, (uint16_t)(c->stream + lane), seq, 0);
  hd_hop_tx_keep(&nx->hop_tx, lane, seq, b, len, n->now);
  nx->relay_sent++;
  rr_seal_commit(n, nx, (const struct sockaddr *)&nx->addr[lane], lane, HD_LINK_RELAY, len);
}

/* A message (inner) with relay header d to d's next hop as a new datagram
 * there (a detour, a rescue). 0, or -1 when it could not go. */
static int send_hdr(hd_node_t *n, hd_relay_hdr_t *d, const uint8_t *inner, size_t inner_len) {
  struct node_cluster *c = n->cl;
  cl_peer_t *nx = rr_peer_by_hash(c, d->hops[d->hop]);
  size_t cap;
  uint8_t *b = nx && nx->n_addr ? rr_send_begin(n, &cap) : NULL;
  if (!b) return -1;
  d->inner = inner;
  d->inner_len = inner_len;
  int lane = next_lane(d, nx);
  int hl = hd_relay_hdr_write(d, b, cap);
  if (hl < 0 || inner_len > cap - (size_t)hl) return -1;
  memcpy(b + hl, inner, inner_len);
  hop_commit(n, nx, b, (size_t)hl + inner_len, d->hop, lane);
  return 0;
}

/* One message on a path through relays (docs/overlay.md "Relaying"): a
 * RELAY body around it, to the first relay, kept for that hop's repair. */
void rr_relay_send(hd_node_t *n, const hd_relay_path_t *ps, int w, uint8_t type, const uint8_t *body,
                   size_t len) {
  struct node_cluster *c = n->cl;
  hd_relay_hdr_t h = {
      .origin = c->self.id_hash, .n_hops = ps->n, .dst_worker = (uint8_t)w, .inner_type = type};
  memcpy(h.hops, ps->hop, sizeof h.hops);
  /* too long for the datagram: not sent (no hop sequence number spent, no hole) */
  send_hdr(n, &h, body, len);
}

void rr_keep_direct(hd_node_t *n, cl_peer_t *p, int w, uint8_t type, const uint8_t *body, size_t len) {
  struct node_cluster *c = n->cl;
  if (c->rescue_max <= 0) return;
  hd_relay_hdr_t h = {.origin = c->self.id_hash,
                      .n_hops = 1,
                      .dst_worker = (uint8_t)w,
                      .inner_type = type,
                      .hops = {p->link.id_hash}};
  uint8_t hdr[HD_RELAY_HDR_MAX];
  int hl = hd_relay_hdr_write(&h, hdr, sizeof hdr);
  if (hl > 0)
    hd_hop_tx_keep2(&p->direct_tx, 0, hd_hop_tx_seq(&p->direct_tx, 0), hdr, (size_t)hl, body, len, n->now);
}

/* ---- receiving ---- */

typedef struct {
  hd_node_t *n;
  hd_room_t *r;
  uint64_t node;
  hd_time_t now;
} rel_ctx_t;

/* A reliable message from a node, complete and in order: a data message. */
static void rel_deliver(void *ud, const uint8_t *msg, size_t len) {
  rel_ctx_t *c = ud;
  rr_apply_state(c->n, c->r, c->node, msg, len, c->now);
}

static hd_room_t *room_by_hash(hd_node_t *n, uint64_t h) {
  for (hd_room_t *r = n->rooms; r; r = r->next)
    if (r->cl && r->cl->hash == h) return r;
  return NULL;
}

static int dedup_pass(hd_room_t *r, uint64_t origin, const hd_link_media_t *m, const hd_rtp_hdr_t *h);

static void on_media(hd_node_t *n, hd_room_t *r, cl_peer_t *peer, hd_link_media_t *m, hd_time_t now) {
  hd_participant_t *p = rr_remote_find(r, peer->link.id_hash, m->pub, NULL);
  if (!p || !p->pub_sess || m->in_idx >= HD_SESSION_MAX_TRACKS || p->remote_in[m->in_idx] < 0) return;
  hd_session_t *s = p->pub_sess;
  hd_in_track_t *t = &s->in[p->remote_in[m->in_idx]];
  p->remote_rx_at[m->in_idx] = now;
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(m->rtp, m->rtp_len, &h) < 0) return;
  if (!dedup_pass(r, peer->link.id_hash, m, &h)) {
    peer->dedup_dropped++;
    peer->dedup_video += t->kind == HD_TRACK_VIDEO; /* video is duplicated only while a route changes */
    return;
  }
  if (!t->have_ssrc || t->ssrc != h.ssrc) { /* the link names the track: no demux by rid/mid needed */
    t->ssrc = h.ssrc;
    t->have_ssrc = 1;
    hd_rtp_recv_stats_init(&t->stats, h.ssrc);
    if (t->have_cache) hd_rtp_cache_clear(&t->cache);
    if (t->nack_enabled) hd_nack_gen_reset(&t->nack);
    /* keyframe requests made before the stream reached this node (a subscriber
     * connecting) named no SSRC and went nowhere: ask once more now */
    if (t->kind == HD_TRACK_VIDEO) t->pli_pending = 1;
  }
  uint8_t scratch[HD_DATAGRAM_MAX];
  int in_idx = hd_session_publisher_rtp(s, (uint8_t *)m->rtp, m->rtp_len, now, scratch, sizeof scratch, &h,
                                        &n->stats.media);
  if (in_idx < 0) return;
  for (hd_session_t *v = r->viewers; v; v = v->next_in_room)
    if (v->n_out) hd_session_forward(v, s, in_idx, &h, now, &n->stats.media);
}

static hd_participant_t *local_by_hash(hd_room_t *r, uint32_t pub) {
  for (hd_participant_t *p = r->participants; p; p = p->next)
    if (!p->remote && !p->leaving && hd_link_sid_hash(p->sid) == pub) return p;
  return NULL;
}

static void on_feedback(hd_node_t *n, hd_room_t *r, cl_peer_t *peer, const hd_link_feedback_t *f,
                        hd_time_t now) {
  hd_participant_t *p = local_by_hash(r, f->pub);
  if (!p || !p->pub_sess || f->in_idx >= p->pub_sess->n_in) return;
  hd_session_t *s = p->pub_sess;
  hd_in_track_t *t = &s->in[f->in_idx];
  if (f->kind == HD_LINK_FB_KEYFRAME) { /* of the layer asked for (a simulcast layer has its own) */
    hd_session_request_keyframe_track(s, f->in_idx, now, &n->stats.media);
    return;
  }
  if (!t->have_cache) return;
  for (int i = 0; i < f->n_seqs; i++) {
    const uint8_t *pkt;
    size_t len;
    if (hd_rtp_cache_get(&t->cache, f->seqs[i], now, &pkt, &len) < 0) continue;
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b) return;
    hd_link_media_t m = {
        .room = r->cl->hash, .pub = f->pub, .in_idx = f->in_idx, .flags = HD_LINK_MEDIA_REPAIR};
    int hl = hd_link_media_hdr_write(&m, b, cap);
    if (hl < 0 || len > cap - (size_t)hl) continue;
    memcpy(b + hl, pkt, len);
    rr_send_commit(n, peer, r, HD_LINK_MEDIA, (size_t)hl + len);
  }
}

static void on_msg(hd_node_t *n, cl_peer_t *peer, uint8_t type, const uint8_t *pl, size_t pl_len,
                   const struct sockaddr *from, int from_lane, hd_time_t now);

/* ---- relaying (docs/overlay.md "Relaying") ---- */

static hop_in_t *hop_in_get(cl_peer_t *peer, uint16_t stream, hd_time_t now) {
  if (!peer->hop_in && !(peer->hop_in = calloc(CL_HOP_STREAMS, sizeof *peer->hop_in))) return NULL;
  hop_in_t *free_one = NULL;
  for (int i = 0; i < CL_HOP_STREAMS; i++) {
    hop_in_t *x = &peer->hop_in[i];
    if (x->used && x->stream == stream) return x;
    if (!free_one && (!x->used || now - x->rx.last_rx > CL_HOP_IDLE)) free_one = x;
  }
  if (!free_one) return NULL;
  memset(free_one, 0, sizeof *free_one);
  free_one->used = 1;
  free_one->stream = stream;
  hd_hop_rx_init(&free_one->rx);
  return free_one;
}

static socklen_t sa_len(const struct sockaddr *a) {
  return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* Whether this node's link to p is down or suspect: as the meter says on the
 * measuring worker (at once), as the control thread's last routes say on
 * every worker (hd_node_route_t.link_bad, within overlay.check_interval_ms):
 * it answered once and has stopped. */
static int link_down(const struct node_cluster *c, const cl_peer_t *p) {
  return p->link_bad || (c->measure && (!p->meter.st.up || p->meter.st.suspect) && p->meter.st.last_echo);
}

/* A datagram whose next hop's link is down goes on along this node's own
 * route to its destination (issue 16: the origin learns of the dead link
 * only from its own meter or the registry, up to a second later, and its
 * NACKs, feedback and HELLOs would go into the dead link until then). This
 * node's route moved off the dead link at its fast check. Back through the
 * node it came from is allowed (with three nodes it is the only way round);
 * hd_relay_detour keeps the path within HD_RELAY_MAX_HOPS, so no loop. */
static int detour(struct node_cluster *c, const hd_relay_hdr_t *h, const cl_peer_t *nx, hd_relay_hdr_t *d) {
  cl_peer_t *dst = rr_peer_by_hash(c, h->hops[h->n_hops - 1]);
  if (!dst) return 0;
  /* the route, or while it still starts on the link (suspect: routes move
   * only when it is down) the second path */
  return hd_relay_detour(h, c->self.id_hash, nx->link.id_hash, &dst->route.cur, d) == 0 ||
         (dst->route.alt.n && hd_relay_detour(h, c->self.id_hash, nx->link.id_hash, &dst->route.alt, d) == 0);
}

/* A RELAY datagram from `peer` (the previous hop): repaired per hop, then
 * passed on to the next hop of its source route or, here at its
 * destination, handled as a message from its origin. */
static void on_relay(hd_node_t *n, cl_peer_t *peer, uint8_t *pl, size_t len, const struct sockaddr *from,
                     int from_lane, hd_time_t now) {
  struct node_cluster *c = n->cl;
  hd_relay_hdr_t h;
  int ok = hd_relay_parse(pl, len, &h) == 0 && h.hops[h.hop] == c->self.id_hash;
  /* room messages only: 1-5 and the reliable data and layer reports (9-11) */
  if (!ok || !((h.inner_type >= HD_LINK_MEDIA && h.inner_type <= HD_LINK_STATE_REQ) ||
               (h.inner_type >= HD_LINK_DATA && h.inner_type <= HD_LINK_LAYERS))) {
    c->rx_dropped++;
    return;
  }
  hop_in_t *x = hop_in_get(peer, h.stream, now);
  if (!x) {
    c->rx_dropped++;
    return;
  }
  if (!hd_hop_rx_feed(&x->rx, h.hop_seq, now)) return; /* this hop had it already */
  if (from) {
    memcpy(&x->from, from, sa_len(from));
    x->have_from = 1;
    x->from_lane = from_lane;
  }
  c->hop_next = hd_time_min(c->hop_next, hd_hop_rx_next_timeout(&x->rx));
  peer->relay_received++;
  if (h.hop + 1 < h.n_hops) { /* a relay: on to the next hop, as a new datagram of that hop */
    cl_peer_t *nx = rr_peer_by_hash(c, h.hops[h.hop + 1]);
    hd_relay_hdr_t d;
    if (nx && link_down(c, nx) && detour(c, &h, nx, &d)) {
      nx->relay_detoured++;
      cl_peer_t *dx = rr_peer_by_hash(c, d.hops[d.hop]);
      if (send_hdr(n, &d, h.inner, h.inner_len) == 0 && dx) dx->relay_forwarded++;
      return;
    }
    size_t cap;
    uint8_t *b = nx && nx->n_addr ? rr_send_begin(n, &cap) : NULL;
    if (!b || len > cap) return;
    memcpy(b, pl, len);
    h.hop++; /* as it goes on: the destination's worker for the room, or a further relay's by the flow */
    nx->relay_forwarded++;
    hop_commit(n, nx, b, len, h.hop, next_lane(&h, nx));
    return;
  }
  cl_peer_t *o = rr_peer_by_hash(c, h.origin);
  if (!o) {
    c->rx_dropped++;
    return;
  }
  on_msg(n, o, h.inner_type, h.inner, h.inner_len, NULL, 0, now);
}

/* The next hop asks for relay datagrams of this worker's stream again. */
static void on_hop_nack(hd_node_t *n, cl_peer_t *peer, const uint8_t *pl, size_t len,
                        const struct sockaddr *from, int from_lane, hd_time_t now) {
  struct node_cluster *c = n->cl;
  uint16_t stream;
  uint32_t seqs[HD_HOP_NACK_MAX];
  int k = hd_hop_nack_parse(pl, len, &stream, seqs, HD_HOP_NACK_MAX);
  int lane = (uint16_t)(stream - c->stream); /* which of this worker's hop streams to the peer */
  if (k < 0 || lane >= HD_HOP_LANES || !from) {
    c->rx_dropped++;
    return;
  }
  for (int i = 0; i < k; i++) {
    uint8_t *kept;
    size_t kl, cap;
    if (hd_hop_tx_get(&peer->hop_tx, lane, seqs[i], now, &kept, &kl) < 0) continue;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b || kl > cap) return;
    memcpy(b, kept, kl);
    hd_relay_set_hop(b, b[9], stream, seqs[i], HD_RELAY_RETX);
    /* to the worker that asked (the address and the lane it sent from): it got the others */
    rr_seal_commit(n, peer, from, from_lane, HD_LINK_RELAY, kl);
  }
}

/* HOP_NACKs due on every relay stream; returns the next deadline. */
hd_time_t rr_hop_tick(hd_node_t *n, hd_time_t now) {
  struct node_cluster *c = n->cl;
  hd_time_t t = HD_TIME_NEVER;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++) {
    cl_peer_t *p = &c->peers[i];
    if (!p->used || !p->hop_in) continue;
    for (int j = 0; j < CL_HOP_STREAMS; j++) {
      hop_in_t *x = &p->hop_in[j];
      if (!x->used) continue;
      uint32_t seqs[HD_HOP_NACK_MAX];
      int k = hd_hop_rx_poll(&x->rx, now, seqs, HD_HOP_NACK_MAX);
      if (k > 0 && x->have_from) {
        uint8_t b[4 + 4 * HD_HOP_NACK_MAX];
        int bl = hd_hop_nack_write(x->stream, seqs, k, b, sizeof b);
        if (bl > 0)
          rr_send_to(n, p, (const struct sockaddr *)&x->from, x->from_lane, HD_LINK_HOP_NACK, b, (size_t)bl);
      }
      t = hd_time_min(t, hd_hop_rx_next_timeout(&x->rx));
    }
  }
  return t;
}

static int path_known(struct node_cluster *c, const hd_relay_path_t *p, uint64_t dst) {
  if (p->n < 1 || p->n > HD_RELAY_MAX_HOPS || p->hop[p->n - 1] != dst) return 0;
  for (int i = 0; i + 1 < p->n; i++)
    if (p->hop[i] == c->self.id_hash || !rr_peer_by_hash(c, p->hop[i])) return 0;
  return 1;
}

/* p's link went bad (suspect or down): what this worker sent into it from
 * `since` on (relayed and direct, kept for hop repair or for this) goes
 * again round it, on the routes just set (relay.h "rescue"), at most
 * overlay.rescue_max datagrams, the newest. The destination de-duplicates
 * media and the rest is idempotent (NACKs, HELLOs, state fragments,
 * reliable data); what had got through costs a duplicate. */
static void rescue(hd_node_t *n, cl_peer_t *p, hd_time_t since, hd_time_t now) {
  struct node_cluster *c = n->cl;
  int cap = c->rescue_max;
  if (cap <= 0) return;
  const hd_hop_slot_t **kept = malloc(sizeof *kept * (size_t)cap);
  if (!kept) return;
  int sent = 0, k = hd_hop_tx_recent(&p->hop_tx, since, now, kept, cap);
  k += hd_hop_tx_recent(&p->direct_tx, since, now, kept + k, cap - k);
  for (int i = 0; i < k; i++) {
    uint8_t body[HD_HOP_PKT_MAX];
    memcpy(body, kept[i]->data, kept[i]->len); /* the sends below keep into other rings only, but copy */
    hd_relay_hdr_t h, d;
    if (hd_relay_parse(body, kept[i]->len, &h) < 0) continue;
    cl_peer_t *dst = rr_peer_by_hash(c, h.hops[h.n_hops - 1]);
    if (!dst || hd_relay_rescue(&h, c->self.id_hash, p->link.id_hash, &dst->route.cur,
                                dst->route.alt.n ? &dst->route.alt : NULL, &d) < 0)
      continue;
    if (send_hdr(n, &d, h.inner, h.inner_len) == 0) sent++;
  }
  free(kept);
  p->relay_rescued += (uint64_t)sent;
  if (k)
    HD_LOGI("overlay",
            "link to %s went bad: worker %d sent %d of the %d datagrams it sent into it in the last %d ms "
            "again round it",
            p->id, c->worker, sent, k, (int)((now - since) / 1000));
}

void hd_node_cluster_set_routes(hd_node_t *n, const hd_node_route_t *routes, int count, hd_time_t now) {
  struct node_cluster *c = n->cl;
  if (!c) return;
  cl_peer_t *turned_bad[HD_CLUSTER_MAX_NODES];
  hd_time_t since[HD_CLUSTER_MAX_NODES];
  int n_bad = 0;
  for (int i = 0; i < count; i++) {
    cl_peer_t *p = rr_peer_by_hash(c, routes[i].dst);
    if (!p) continue;
    if (routes[i].link_bad && !p->link_bad && routes[i].rescue_since && n_bad < HD_CLUSTER_MAX_NODES) {
      turned_bad[n_bad] = p;
      since[n_bad++] = routes[i].rescue_since;
    }
    p->link_bad = routes[i].link_bad;
  }
  for (int i = 0; i < count; i++) {
    const hd_node_route_t *x = &routes[i];
    cl_peer_t *p = rr_peer_by_hash(c, x->dst);
    if (!p) continue;
    hd_relay_path_t direct = {.n = 1, .hop = {x->dst}};
    const hd_relay_path_t *path = path_known(c, &x->path, x->dst) ? &x->path : &direct;
    const hd_relay_path_t *alt = path_known(c, &x->alt, x->dst) ? &x->alt : NULL;
    if (hd_relay_route_set(&p->route, path, alt, x->dup_audio, now) && c->measure)
      HD_LOGI("overlay", "media to %s now goes %s (the old path carries it %d ms more)", p->id,
              path->n > 1 ? "through relays" : "directly", (int)(p->route.overlap / 1000));
    hd_relay_route_dup_all(&p->route, x->dup_all);
  }
  /* after every route is set: a rescue goes on the new ones */
  for (int i = 0; i < n_bad; i++)
    rescue(n, turned_bad[i], since[i], now);
}

static int dedup_pass(hd_room_t *r, uint64_t origin, const hd_link_media_t *m, const hd_rtp_hdr_t *h) {
  struct room_cluster *rc = r->cl;
  int i;
  for (i = 0; i < rc->n_dd; i++)
    if (rc->dd[i].origin == origin && rc->dd[i].pub == m->pub && rc->dd[i].in_idx == m->in_idx) break;
  if (i == rc->n_dd) { /* a new source: a free entry, or the next one in turn */
    if (rc->n_dd < CL_DEDUP)
      i = rc->n_dd++;
    else
      i = rc->dd_next++ % CL_DEDUP;
    memset(&rc->dd[i], 0, sizeof rc->dd[i]);
    rc->dd[i].origin = origin;
    rc->dd[i].pub = m->pub;
    rc->dd[i].in_idx = m->in_idx;
  }
  return hd_dedup_check(&rc->dd[i].d, h->ssrc, h->seq);
}

void room_remote_feed(hd_node_t *n, uint8_t *buf, size_t len, const struct sockaddr *from, hd_time_t now) {
  /* a peer is known by its key, not its address (NAT, several workers);
   * `from` only says where to send a meter echo back */
  struct node_cluster *c = n->cl;
  uint64_t h;
  if (hd_link_sender(buf, len, &h) < 0) {
    c->rx_dropped++;
    return;
  }
  cl_peer_t *peer = rr_peer_by_hash(c, h);
  uint8_t type;
  const uint8_t *pl;
  size_t pl_len;
  if (!peer || hd_link_open(&c->self, &peer->link, buf, len, now, &type, &pl, &pl_len) < 0) {
    c->rx_dropped++;
    return;
  }
  if (rr_bwe_received(n, peer, type, buf, pl, pl_len, from, now)) return; /* bandwidth per link */
  int lane = hd_link_src_lane(buf); /* the sending worker: where answers to it go (echoes, HOP_NACKs) */
  if (type == HD_LINK_RELAY)
    on_relay(n, peer, (uint8_t *)pl, pl_len, from, lane, now);
  else if (type == HD_LINK_HOP_NACK)
    on_hop_nack(n, peer, pl, pl_len, from, lane, now);
  else
    on_msg(n, peer, type, pl, pl_len, from, lane, now);
}

/* One message from `peer` (directly, or the inner message of a relayed one
 * whose origin it is; `from` is NULL then), sent by its worker from_lane. */
static void on_msg(hd_node_t *n, cl_peer_t *peer, uint8_t type, const uint8_t *pl, size_t pl_len,
                   const struct sockaddr *from, int from_lane, hd_time_t now) {
  struct node_cluster *c = n->cl;
  uint64_t h = peer->link.id_hash;
  hd_room_t *r;
  switch (type) {
  case HD_LINK_MEDIA: {
    hd_link_media_t m;
    if (hd_link_media_parse(pl, pl_len, &m) < 0 || !(r = room_by_hash(n, m.room))) break;
    rnode_t *x = rr_rnode_get(r, h);
    if (x) x->last_rx = now;
    on_media(n, r, peer, &m, now);
    break;
  }
  case HD_LINK_FEEDBACK: {
    hd_link_feedback_t f;
    if (hd_link_feedback_parse(pl, pl_len, &f) < 0 || !(r = room_by_hash(n, f.room))) break;
    rnode_t *x = rr_rnode_get(r, h);
    if (x) x->last_rx = now;
    on_feedback(n, r, peer, &f, now);
    break;
  }
  case HD_LINK_HELLO: {
    hd_link_hello_t hh;
    if (hd_link_hello_parse(pl, pl_len, &hh) < 0 || !(r = room_by_hash(n, hh.room))) break;
    rnode_t *x = rr_rnode_get(r, h);
    if (!x) break;
    x->last_rx = now;
    /* a track newly wanted there starts with a keyframe (its subscribers' requests went nowhere until now) */
    for (int i = 0; i < hh.n_wants; i++) {
      uint16_t before = 0;
      for (int j = 0; j < x->n_wants; j++)
        if (x->wants[j].pub == hh.wants[i].pub) before = x->wants[j].mask;
      uint16_t fresh = hh.wants[i].mask & (uint16_t)~before;
      hd_participant_t *lp = fresh ? local_by_hash(r, hh.wants[i].pub) : NULL;
      for (int k = 0; lp && lp->pub_sess && k < lp->pub_sess->n_in && k < 16; k++)
        if ((fresh >> k) & 1 && lp->pub_sess->in[k].kind == HD_TRACK_VIDEO)
          hd_session_request_keyframe_track(lp->pub_sess, k, now, &n->stats.media);
    }
    memcpy(x->wants, hh.wants, sizeof hh.wants[0] * hh.n_wants);
    x->n_wants = hh.n_wants;
    x->wants_at = now;
    if (hh.version != x->their_ver && now - x->req_at >= CL_REQ_INTERVAL && rr_has_local(r)) {
      x->req_at = now;
      uint8_t b[8];
      hd_link_room_write(r->cl->hash, b, sizeof b);
      rr_send_small(n, peer, r, HD_LINK_STATE_REQ, b, 8);
    }
    break;
  }
  case HD_LINK_METER: {
    if (!from) break; /* measures a link: never relayed */
    uint8_t echo[HD_LINK_METER_ECHO_LEN];
    int el = hd_link_meter_feed(&peer->meter, pl, pl_len, now, echo, sizeof echo);
    if (el > 0 && from)
      rr_send_to(n, peer, from, from_lane, HD_LINK_METER, echo, (size_t)el); /* answered at once */
    else if (el < 0)
      c->rx_dropped++;
    break;
  }
  case HD_LINK_LAYERS: {
    hd_link_layers_t lm;
    if (hd_link_layers_parse(pl, pl_len, &lm) < 0)
      c->rx_dropped++;
    else if ((r = room_by_hash(n, lm.room))) {
      rnode_t *x = rr_rnode_get(r, h);
      if (x) x->last_rx = now;
      rr_on_layers(r, h, &lm, now);
    }
    break;
  }
  case HD_LINK_DATA:
  case HD_LINK_DATA_ACK: {
    uint64_t room;
    if (hd_link_rel_room(pl, pl_len, &room) < 0 || !(r = room_by_hash(n, room))) break;
    rnode_t *x = rr_rnode_get(r, h);
    if (!x) break;
    x->last_rx = now;
    hd_link_rel_t *rel = rr_rel_of(n, r, x, now);
    if (type == HD_LINK_DATA) {
      rel_ctx_t ctx = {.n = n, .r = r, .node = h, .now = now};
      node_room_pin(r);
      if (hd_link_rel_on_data(rel, pl, pl_len, rel_deliver, &ctx) < 0) c->rx_dropped++;
      x = rr_rnode_find(r, h); /* delivery may have changed the room's node list */
      if (x) rr_rel_flush(n, r, x, now);
      node_room_unpin(n, r);
    } else {
      if (hd_link_rel_on_ack(rel, pl, pl_len, now) < 0) c->rx_dropped++;
      rr_rel_flush(n, r, x, now);
    }
    break;
  }
  case HD_LINK_STATE_REQ: {
    uint64_t room;
    if (hd_link_room_parse(pl, pl_len, &room) < 0 || !(r = room_by_hash(n, room))) break;
    rnode_t *x = rr_rnode_get(r, h);
    if (x) x->last_rx = now;
    rr_send_state(n, r, peer);
    break;
  }
  case HD_LINK_STATE: {
    hd_link_frag_t f;
    if (hd_link_frag_parse(pl, pl_len, &f) < 0) break;
    const uint8_t *msg;
    size_t ml;
    uint64_t room;
    if (hd_link_reasm_add(&peer->reasm, &f, now, &msg, &ml, &room) != 1 || !(r = room_by_hash(n, room)))
      break;
    if (!rr_has_local(r)) break; /* stand-ins serve local participants only: none here, none needed */
    rnode_t *x = rr_rnode_get(r, h);
    if (x) x->last_rx = now;
    rr_apply_state(n, r, h, msg, ml, now);
    break;
  }
  default: c->rx_dropped++;
  }
}

/* ---- sending media ---- */

void room_remote_forward(hd_node_t *n, hd_session_t *pub, int in_idx, const hd_rtp_hdr_t *h, hd_time_t now) {
  hd_room_t *r = pub->room;
  hd_participant_t *p = pub->owner;
  if (!p || p->remote || !n->cl || in_idx >= 16) return;
  uint32_t ph = 0;
  const uint8_t *pkt = h->payload - h->hdr_len;
  size_t len = h->hdr_len + h->payload_len + h->pad_len;
  for (int i = 0; i < r->cl->n_nodes; i++) {
    rnode_t *x = &r->cl->nodes[i];
    if (!x->n_wants || now - x->wants_at > CL_WANTS_TTL) continue;
    if (!ph) ph = hd_link_sid_hash(p->sid);
    int want = 0;
    for (int j = 0; j < x->n_wants && !want; j++)
      want = x->wants[j].pub == ph && ((x->wants[j].mask >> in_idx) & 1); /* this layer is taken there */
    if (!want) continue;
    cl_peer_t *peer = rr_peer_by_hash(n->cl, x->peer);
    if (!peer) continue;
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b) return;
    hd_link_media_t m = {.room = r->cl->hash, .pub = ph, .in_idx = (uint8_t)in_idx};
    int hl = hd_link_media_hdr_write(&m, b, cap);
    if (hl < 0 || len > cap - (size_t)hl) continue;
    memcpy(b + hl, pkt, len);
    rr_send_commit_route(n, peer, r, HD_LINK_MEDIA, (size_t)hl + len, pub->in[in_idx].kind == HD_TRACK_AUDIO);
  }
}
