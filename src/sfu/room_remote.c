/* A room across nodes (issue 15 items 2 and 3; docs/overlay.md "A room
 * across nodes" and "The link protocol").
 *
 * Every node that holds participants of a room keeps the room's other nodes
 * up to date over the node link (overlay/link.h), directly, not through Redis:
 *  - its room state (its local participants with their tracks, mutes,
 *    metadata and publisher SDP offer) as a JSON message, sent when it
 *    changes, with a version that every keepalive (HELLO, each
 *    CL_HELLO_INTERVAL) repeats so a lost state message is asked for again;
 *  - in each HELLO, the tracks it wants (those its local participants
 *    subscribe to): the publisher's node then sends each wanted track's RTP
 *    once to that node, whatever the number of subscribers there.
 * On the receiving node each remote participant is a stand-in participant
 * (p->remote) whose publisher session is built from the same SDP offer and
 * is fed by the link instead of a transport (hd_peer_set_link): local
 * subscribers subscribe to it as to any local publisher, so layer selection,
 * NACK/RTX towards them and lip sync work unchanged. The stand-in's own
 * RTCP (its NACKs and keyframe requests, as for any publisher) is turned into
 * FEEDBACK messages for the publisher's node, which answers NACKs from its
 * retransmission cache and passes keyframe requests to the publisher.
 *
 * Which nodes hold a room comes from the registry (the room hashes in each
 * entry) and from any link message about it. A node whose link is silent for
 * CL_DEAD_AFTER takes its participants with it (they leave). Redis is not on
 * this path: a Redis outage stops new nodes from finding a room, nothing
 * else. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/rand.h"
#include "cluster/registry.h"
#include "overlay/link.h"
#include "overlay/link_meter.h"
#include "overlay/link_rel.h"
#include "overlay/overlay_params.h"
#include "proto/rtcp.h"
#include "proto/sdp.h"
#include "proto/sdp_negotiate.h"
#include "sfu/layer_report.h"
#include "sfu/room_relay.h"
#include "sfu/room_remote_internal.h"

static uint64_t fnv64(const char *s, size_t len) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

/* ---- peers ---- */
int hd_node_cluster_init(hd_node_t *n, const char *node_id, const uint8_t *secret, size_t secret_len,
                         uint64_t epoch, int worker) {
  if (n->cl) return HD_ESTATE;
  struct node_cluster *c = calloc(1, sizeof *c);
  if (!c) return HD_ENOMEM;
  int rc = hd_link_self_init(&c->self, node_id, secret, secret_len, epoch, worker);
  if (rc < 0) {
    free(c);
    return rc;
  }
  c->stream = (uint16_t)(hd_random_u32() | 1);
  c->worker = worker;
  c->rescue_max = hd_overlay_params()->rescue_max;
  c->hop_next = HD_TIME_NEVER;
  n->cl = c;
  return 0;
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char host[HD_CLUSTER_ADDR_MAX];
  snprintf(host, sizeof host, "%s", s);
  char *colon = strrchr(host, ':');
  if (!colon) return HD_EINVAL;
  *colon = 0;
  int port = atoi(colon + 1);
  if (port <= 0 || port > 65535) return HD_EINVAL;
  char *h = host;
  if (h[0] == '[') { /* [v6]:port */
    h++;
    char *e = strchr(h, ']');
    if (e) *e = 0;
  }
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  return HD_EINVAL;
}

int hd_node_cluster_set_peers(hd_node_t *n, const hd_cluster_node_t *peers, int count, hd_time_t now) {
  struct node_cluster *c = n->cl;
  if (!c) return 0;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++)
    c->peers[i].listed = 0;
  for (int k = 0; k < count; k++) {
    const hd_cluster_node_t *e = &peers[k];
    if (!strcmp(e->id, c->self.id)) continue;
    cl_peer_t *p = rr_peer_by_hash(c, hd_link_id_hash(e->id));
    if (!p) {
      for (int i = 0; i < HD_CLUSTER_MAX_NODES && !p; i++)
        if (!c->peers[i].used) p = &c->peers[i];
      if (!p) break;
      memset(p, 0, sizeof *p);
      if (hd_link_peer_init(&p->link, &c->self, e->id) < 0) continue;
      hd_link_reasm_init(&p->reasm);
      hd_link_meter_init(&p->meter, 0, now);
      hd_relay_route_init(&p->route, p->link.id_hash);
      hd_hop_tx_init(&p->hop_tx);
      hd_hop_tx_init_n(&p->direct_tx, c->rescue_max);
      snprintf(p->id, sizeof p->id, "%s", e->id);
      p->used = 1;
      HD_LOGI("link", "peer node %s: link up (%d media addresses)", e->id, e->n_media);
    }
    p->listed = 1;
    /* its link version, re-read with every entry (a node upgraded in place
     * announces 2 from its restart on): what goes in the destination bytes */
    p->link.ver = e->link_ver > 0 ? e->link_ver : HD_LINK_VERSION;
    /* ...but not below what its own datagrams proved (an entry not yet re-announced) */
    if (p->link.ver < p->link.ver_seen) p->link.ver = p->link.ver_seen;
    int na = 0;
    for (int j = 0; j < e->n_media && na < HD_CLUSTER_MAX_MEDIA; j++)
      if (parse_addr(e->media[j], &p->addr[na], &p->addr_len[na]) == 0) na++;
    p->n_addr = na;
    uint64_t *rooms = realloc(p->rooms, sizeof *rooms * (size_t)(e->n_room_hashes ? e->n_room_hashes : 1));
    if (rooms) {
      p->rooms = rooms;
      memcpy(rooms, e->room_hashes, sizeof *rooms * (size_t)e->n_room_hashes);
      p->n_rooms = e->n_room_hashes;
    }
  }
  c->meter_next = 0; /* new or re-listed peers: their meters are due now */
  return 0;
}

void node_cluster_free(hd_node_t *n) {
  struct node_cluster *c = n->cl;
  if (!c) return;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++)
    if (c->peers[i].used) {
      hd_link_peer_free(&c->peers[i].link);
      hd_link_reasm_free(&c->peers[i].reasm);
      hd_hop_tx_free(&c->peers[i].hop_tx);
      hd_hop_tx_free(&c->peers[i].direct_tx);
      free(c->peers[i].hop_in);
      rr_bwe_free(&c->peers[i]);
      free(c->peers[i].rooms);
    }
  free(c);
  n->cl = NULL;
}

/* ---- sending ---- */

/* Seals body (written by the caller at the returned pointer) to peer p, at
 * the address of the worker that holds room r there. */
uint8_t *rr_send_begin(hd_node_t *n, size_t *cap) {
  hd_datagram_t *d = hd_txq_reserve(&n->txq);
  if (!d) {
    n->cl->tx_dropped++;
    return NULL;
  }
  *cap = sizeof d->data - HD_LINK_OVERHEAD;
  return d->data + HD_LINK_HDR_LEN;
}

/* Seals the reserved datagram (body written at HD_LINK_HDR_LEN) for peer p's
 * worker dst and queues it to `to`. */
void rr_seal_commit(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, int dst, uint8_t type,
                    size_t body_len) {
  hd_datagram_t *d = &n->txq.items[(n->txq.head + n->txq.count) % n->txq.cap];
  int len = hd_link_seal(&n->cl->self, &p->link, dst, type, d->data + HD_LINK_HDR_LEN, body_len, d->data,
                         sizeof d->data);
  if (len < 0) return;
  rr_bwe_sent(n, p, to, d->data, (size_t)len);
  hd_txq_commit(&n->txq, (size_t)len, to,
                to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
}

/* Sends the message whose body is in the reserved datagram to peer p, along
 * p's route: directly, through relays, or (media while a route changes,
 * duplicated audio) on two or three paths at once. */
void rr_send_commit_route(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, size_t body_len,
                          int audio) {
  if (!p->n_addr) return;
  /* the peer's worker for the room, as io/media_workers.c places rooms (hd_media_room_worker) */
  int w = (int)(hd_fnv1a_pair(r->app, 0xff, r->name) % (uint32_t)p->n_addr);
  hd_relay_path_t ps[3];
  int k = hd_relay_route_paths(&p->route, n->now, type == HD_LINK_MEDIA, audio, ps);
  hd_datagram_t *d = &n->txq.items[(n->txq.head + n->txq.count) % n->txq.cap];
  if (k == 1 && ps[0].n <= 1) { /* the direct link, the common case: no copy but the rescue's */
    if (p->route.alt.n) rr_keep_direct(n, p, w, type, d->data + HD_LINK_HDR_LEN, body_len);
    rr_seal_commit(n, p, (const struct sockaddr *)&p->addr[w], w, type, body_len);
    return;
  }
  uint8_t body[sizeof d->data];
  memcpy(body, d->data + HD_LINK_HDR_LEN, body_len);
  for (int i = 0; i < k; i++) {
    if (ps[i].n > 1) {
      rr_relay_send(n, &ps[i], w, type, body, body_len);
      continue;
    }
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b || body_len > cap) return;
    memcpy(b, body, body_len);
    if (p->route.alt.n) rr_keep_direct(n, p, w, type, b, body_len);
    rr_seal_commit(n, p, (const struct sockaddr *)&p->addr[w], w, type, body_len);
  }
}

void rr_send_commit(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, size_t body_len) {
  rr_send_commit_route(n, p, r, type, body_len, 0);
}

/* One small message to an explicit address: meter probes (to the peer's
 * first media address) and echoes (back where the probe came from). */
void rr_send_to(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, int dst, uint8_t type,
                const uint8_t *body, size_t body_len) {
  size_t cap;
  uint8_t *b = rr_send_begin(n, &cap);
  if (!b || body_len > cap) return;
  memcpy(b, body, body_len);
  hd_datagram_t *d = &n->txq.items[(n->txq.head + n->txq.count) % n->txq.cap];
  int len = hd_link_seal(&n->cl->self, &p->link, dst, type, b, body_len, d->data, sizeof d->data);
  if (len < 0) return;
  socklen_t tl = to->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  hd_txq_commit(&n->txq, (size_t)len, to, tl);
}

void rr_send_small(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, uint8_t type, const uint8_t *body,
                   size_t len) {
  size_t cap;
  uint8_t *b = rr_send_begin(n, &cap);
  if (!b || len > cap) return;
  memcpy(b, body, len);
  rr_send_commit(n, p, r, type, len);
}

/* One JSON message (room state, or a data message) to peer p, in fragments. */
static void send_msg(hd_node_t *n, hd_room_t *r, cl_peer_t *p, const char *msg, size_t msg_len) {
  struct room_cluster *rc = r->cl;
  size_t count = (msg_len + HD_LINK_FRAG_DATA - 1) / HD_LINK_FRAG_DATA;
  if (!count) count = 1;
  if (count > HD_LINK_FRAG_MAX) {
    HD_LOGW("link", "room %s/%s: a message of %zu bytes exceeds the link's %d; not sent", r->app, r->name,
            msg_len, HD_LINK_MSG_MAX);
    return;
  }
  uint32_t id = ++rc->msg_id;
  for (size_t i = 0; i < count; i++) {
    size_t off = i * HD_LINK_FRAG_DATA, l = msg_len - off;
    if (l > HD_LINK_FRAG_DATA) l = HD_LINK_FRAG_DATA;
    hd_link_frag_t f = {.room = rc->hash,
                        .msg_id = id,
                        .idx = (uint16_t)i,
                        .count = (uint16_t)count,
                        .data = (const uint8_t *)msg + off,
                        .len = l};
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b) return;
    int bl = hd_link_frag_write(&f, b, cap);
    if (bl < 0) return;
    rr_send_commit(n, p, r, HD_LINK_STATE, (size_t)bl);
  }
}

void rr_send_state(hd_node_t *n, hd_room_t *r, cl_peer_t *p) {
  if (r->cl->state) send_msg(n, r, p, r->cl->state, r->cl->state_len);
}

/* ---- room state: ours as JSON ---- */

/* Participants of this node: /rtc ones and WHIP publishers (shown on the
 * other nodes too, built from their WHIP offer). */
static int is_local(const hd_participant_t *p) { return !p->remote && !p->leaving; }

static char *state_json(hd_room_t *r, size_t *len) {
  json_t *ps = json_array();
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    if (!is_local(p)) continue;
    json_t *tr = json_array(), *ins = json_array();
    for (int i = 0; i < p->n_tracks; i++) {
      const pub_track_t *t = &p->tracks[i];
      json_array_append_new(tr,
                            json_pack("{s:s, s:s, s:s, s:i, s:i, s:b, s:i, s:i, s:i}", "sid", t->sid, "cid",
                                      t->cid, "mid", t->mid, "kind", t->kind, "source", t->source, "muted",
                                      t->muted, "width", t->width, "height", t->height, "in", t->in_idx));
    }
    if (p->pub_sess)
      for (int i = 0; i < p->pub_sess->n_in; i++) {
        const hd_in_track_t *in = &p->pub_sess->in[i];
        if (in->active) json_array_append_new(ins, json_pack("[i, i, s]", i, in->media_index, in->rid));
      }
    json_t *o =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:o, s:o}", "sid", p->sid, "identity", p->identity,
                  "name", p->name, "metadata", p->metadata, "joined_at", (json_int_t)p->joined_at, "hidden",
                  p->claims.hidden, "subscribe", p->claims.can_subscribe, "tracks", tr, "ins", ins);
    if (o && p->pub_sess && p->pub_offer) json_object_set_new(o, "offer", json_string(p->pub_offer));
    if (o) json_array_append_new(ps, o);
  }
  json_t *root =
      json_pack("{s:i, s:s, s:s, s:o}", "v", 1, "app", r->app, "room", r->name, "participants", ps);
  char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  *len = s ? strlen(s) : 0;
  return s;
}

/* ---- remote participants ---- */

hd_participant_t *rr_remote_find(hd_room_t *r, uint64_t node, uint32_t pub_hash, const char *sid) {
  for (hd_participant_t *p = r->participants; p; p = p->next)
    if (p->remote == node && !p->leaving &&
        (sid ? !strcmp(p->sid, sid) : hd_link_sid_hash(p->sid) == pub_hash))
      return p;
  return NULL;
}

rnode_t *rr_rnode_find(hd_room_t *r, uint64_t peer) {
  for (int i = 0; i < r->cl->n_nodes; i++)
    if (r->cl->nodes[i].peer == peer) return &r->cl->nodes[i];
  return NULL;
}

rnode_t *rr_rnode_get(hd_room_t *r, uint64_t peer) {
  rnode_t *x = rr_rnode_find(r, peer);
  if (x || r->cl->n_nodes >= CL_MAX_RNODES) return x;
  x = &r->cl->nodes[r->cl->n_nodes++];
  memset(x, 0, sizeof *x);
  x->peer = peer;
  r->cl->next_hello = 0; /* introduce ourselves at once */
  r->cl->next_tick = 0;
  return x;
}

/* ---- reliable data messages (docs/overlay.md "Reliable data over the link") ---- */

hd_link_rel_t *rr_rel_of(hd_node_t *n, hd_room_t *r, rnode_t *x, hd_time_t now) {
  if (!x->rel_on) {
    hd_link_rel_init(&x->rel, r->cl->hash, 0); /* a random instance (link_rel.h) */
    x->rel_on = 1;
  }
  return &x->rel;
}

/* Sends what x's stream has due (segments, retransmissions, an ack) and
 * makes the room's tick come back for the next retransmission. */
void rr_rel_flush(hd_node_t *n, hd_room_t *r, rnode_t *x, hd_time_t now) {
  if (!x->rel_on) return;
  cl_peer_t *peer = rr_peer_by_hash(n->cl, x->peer);
  uint8_t b[HD_LINK_REL_DATA_HDR + HD_LINK_REL_SEG];
  int is_ack, len;
  while ((len = hd_link_rel_poll(&x->rel, now, b, sizeof b, &is_ack)) > 0)
    if (peer) rr_send_small(n, peer, r, is_ack ? HD_LINK_DATA_ACK : HD_LINK_DATA, b, (size_t)len);
  r->cl->next_tick = hd_time_min(r->cl->next_tick, hd_link_rel_next_timeout(&x->rel));
}

/* Forgets node i of the room (its stream's buffers go). */
static void rnode_drop(struct room_cluster *rc, int i) {
  if (rc->nodes[i].rel_on) hd_link_rel_free(&rc->nodes[i].rel);
  rc->nodes[i] = rc->nodes[--rc->n_nodes];
}

/* The stand-in's RTCP (as to any publisher): NACKs and keyframe requests go
 * to the publisher's node as FEEDBACK; reports and bandwidth feedback stay
 * here (the link's own loss is repaired, its rate is not estimated). */
static int link_rtcp(void *ud, const uint8_t *pkt, size_t len, int is_rtcp) {
  link_ud_t *u = ud;
  hd_node_t *n = u->n;
  hd_participant_t *p = u->p;
  if (!is_rtcp || !p->pub_sess || !n->cl) return (int)len;
  cl_peer_t *peer = rr_peer_by_hash(n->cl, p->remote);
  if (!peer) return (int)len;
  hd_session_t *s = p->pub_sess;
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t rp;
  hd_rtcp_iter_init(&it, pkt, len);
  while (hd_rtcp_next(&it, &rp) == 1) {
    if (rp.pt != HD_RTCP_RTPFB && rp.pt != HD_RTCP_PSFB) continue;
    hd_rtcp_fb_t fb;
    if (hd_rtcp_parse_fb(&rp, &fb) < 0) continue;
    uint32_t ssrcs[8];
    int ns = 0, kind = 0;
    hd_link_feedback_t f;
    memset(&f, 0, sizeof f);
    if (rp.pt == HD_RTCP_RTPFB && rp.count == HD_RTCP_FMT_NACK) {
      int k = hd_rtcp_nack_expand(&fb, f.seqs, HD_LINK_MAX_NACK);
      if (k <= 0) continue;
      f.n_seqs = (uint16_t)k;
      kind = HD_LINK_FB_NACK;
      ssrcs[ns++] = fb.media_ssrc;
    } else if (rp.pt == HD_RTCP_PSFB && rp.count == HD_RTCP_FMT_PLI) {
      kind = HD_LINK_FB_KEYFRAME;
      ssrcs[ns++] = fb.media_ssrc;
    } else if (rp.pt == HD_RTCP_PSFB && rp.count == HD_RTCP_FMT_FIR) {
      hd_rtcp_fir_entry_t e[8];
      int k = hd_rtcp_fir_parse(&fb, e, 8);
      for (int i = 0; i < k; i++)
        ssrcs[ns++] = e[i].ssrc;
      kind = HD_LINK_FB_KEYFRAME;
    } else
      continue;
    for (int j = 0; j < ns; j++) {
      int a_idx = -1;
      for (int b = 0; b < s->n_in && a_idx < 0; b++)
        if (s->in[b].have_ssrc && s->in[b].ssrc == ssrcs[j])
          for (int a = 0; a < HD_SESSION_MAX_TRACKS; a++)
            if (p->remote_in[a] == b) a_idx = a;
      if (a_idx < 0) continue;
      f.room = p->room->cl->hash;
      f.pub = hd_link_sid_hash(p->sid);
      f.in_idx = (uint8_t)a_idx;
      f.kind = (uint8_t)kind;
      if (kind == HD_LINK_FB_KEYFRAME) f.n_seqs = 0;
      size_t cap;
      uint8_t *b = rr_send_begin(n, &cap);
      if (!b) continue;
      int bl = hd_link_feedback_write(&f, b, cap);
      if (bl > 0) rr_send_commit(n, peer, p->room, HD_LINK_FEEDBACK, (size_t)bl);
    }
  }
  return (int)len;
}

/* Builds or renegotiates the stand-in's publisher session from the SDP offer
 * the publisher's node answered (the same negotiation gives the same media
 * sections and tracks), and maps that node's in[] indexes to ours. */
static int remote_pub_session(hd_node_t *n, hd_participant_t *p, const char *offer, json_t *ins,
                              hd_time_t now) {
  uint32_t oh = (uint32_t)fnv64(offer, strlen(offer));
  if (p->pub_sess && oh == p->remote_offer_hash) return 0;
  hd_sdp_t *osdp = malloc(sizeof *osdp), *asdp = malloc(sizeof *asdp);
  hd_sdp_negotiated_t *neg = malloc(sizeof *neg);
  char err[256] = "";
  int rc = HD_ENOMEM;
  if (!osdp || !asdp || !neg) goto out;
  rc = hd_sdp_parse(osdp, offer, strlen(offer), err, sizeof err);
  if (rc < 0) goto out;
  char ufrag[24], pwd[40];
  hd_random_token(ufrag, 16);
  hd_random_token(pwd, 32);
  hd_sdp_answer_params_t ap = {.ice_ufrag = ufrag,
                               .ice_pwd = pwd,
                               .fingerprint_sha256 = hd_dtls_cert_fingerprint(n->cert),
                               .cand_ip = n->rtc_ip,
                               .cand_port = n->cfg.rtc_port,
                               .direction = HD_SDP_RECVONLY,
                               .cname = "hudong",
                               .stream_id = p->sid,
                               .datachannel = 1};
  rc = hd_sdp_negotiate(osdp, &ap, asdp, neg, err, sizeof err);
  if (rc < 0) goto out;
  hd_session_t *s = p->pub_sess;
  if (!s) {
    s = node_session_new(n, HD_SESSION_PUBLISH, ufrag, pwd, neg, NULL, 0, now, &rc);
    if (!s) goto out;
    link_ud_t *u = p->remote_link_ud;
    if (!u && !(u = p->remote_link_ud = calloc(1, sizeof *u))) {
      node_session_discard(s);
      rc = HD_ENOMEM;
      goto out;
    }
    u->n = n;
    u->p = p;
    if ((rc = hd_peer_set_link(&s->peer, link_rtcp, u, now)) < 0) {
      node_session_discard(s);
      goto out;
    }
    s->ext_twcc = 0; /* the link is not congestion-controlled per packet: no TWCC feedback to send */
    s->remb_bps = 0;
    s->owner = p;
    if ((rc = node_session_register(n, s, p->room, NULL)) < 0) {
      node_session_discard(s);
      goto out;
    }
    p->pub_sess = s;
  } else {
    s->neg = *neg;
    hd_session_publisher_renegotiated(s);
    s->ext_twcc = 0;
  }
  p->remote_offer_hash = oh;
  rc = 0;
out:
  if (rc < 0)
    HD_LOGW("link", "remote participant %s: cannot build its publisher stand-in: %s", p->sid,
            err[0] ? err : hd_strerror(rc));
  free(osdp);
  free(asdp);
  free(neg);
  if (rc == 0 && p->pub_sess) {
    memset(p->remote_in, -1, sizeof p->remote_in);
    size_t i;
    json_t *e;
    json_array_foreach(ins, i, e) {
      int a = (int)json_integer_value(json_array_get(e, 0)),
          mi = (int)json_integer_value(json_array_get(e, 1));
      const char *rid = json_string_value(json_array_get(e, 2));
      if (a < 0 || a >= HD_SESSION_MAX_TRACKS || !rid) continue;
      for (int b = 0; b < p->pub_sess->n_in; b++)
        if (p->pub_sess->in[b].active && p->pub_sess->in[b].media_index == mi &&
            !strcmp(p->pub_sess->in[b].rid, rid))
          p->remote_in[a] = (int8_t)b;
    }
  }
  return rc;
}

static void copy_json_str(char *dst, size_t cap, json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  snprintf(dst, cap, "%s", v ? v : "");
}

/* Applies one participant of node `node`'s state. */
static void apply_participant(hd_node_t *n, hd_room_t *r, uint64_t node, json_t *o, hd_time_t now) {
  const char *sid = json_string_value(json_object_get(o, "sid"));
  if (!sid || !sid[0] || strlen(sid) >= 24) return;
  hd_participant_t *p = rr_remote_find(r, node, 0, sid);
  int fresh = !p;
  if (fresh) {
    /* the same participant (sid) may be known from another node: a stale stand-in wins nothing */
    if (!(p = calloc(1, sizeof *p))) return;
    snprintf(p->sid, sizeof p->sid, "%s", sid);
    p->remote = node;
    p->room = r;
    p->dc[DC_RELIABLE] = p->dc[DC_LOSSY] = -1;
    memset(p->remote_in, -1, sizeof p->remote_in);
    copy_json_str(p->identity, sizeof p->identity, o, "identity");
    snprintf(p->claims.identity, sizeof p->claims.identity, "%s", p->identity);
    snprintf(p->claims.key, sizeof p->claims.key, "%s", r->app);
    p->claims.room_join = p->claims.can_publish = 1;
    p->claims.hidden = json_is_true(json_object_get(o, "hidden"));
  }
  char name[sizeof p->name], meta[sizeof p->metadata];
  copy_json_str(name, sizeof name, o, "name");
  copy_json_str(meta, sizeof meta, o, "metadata");
  int meta_changed = !fresh && (strcmp(name, p->name) || strcmp(meta, p->metadata));
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(p->metadata, sizeof p->metadata, "%s", meta);
  p->joined_at = (int64_t)json_integer_value(json_object_get(o, "joined_at"));
  if (fresh) {
    /* the newer connection of an identity wins (as on one node): a stand-in
     * of it from another node is stale (that node died or the client moved),
     * so it goes now rather than when that node's link falls silent */
    room_remote_drop_identity(n, r, p->identity, NULL);
    rooms_remote_join(n, p);
  } else if (meta_changed)
    rooms_remote_metadata(n, p);
  const char *offer = json_string_value(json_object_get(o, "offer"));
  if (offer) remote_pub_session(n, p, offer, json_object_get(o, "ins"), now);
  /* tracks: removed, then changed (mutes), then added */
  json_t *tr = json_object_get(o, "tracks");
  for (int i = p->n_tracks - 1; i >= 0; i--) {
    int kept = 0;
    size_t k;
    json_t *t;
    json_array_foreach(tr, k, t) {
      const char *ts = json_string_value(json_object_get(t, "sid"));
      if (ts && !strcmp(ts, p->tracks[i].sid)) kept = 1;
    }
    if (!kept) rooms_remote_track_removed(n, p, i);
  }
  int added[MAX_PUB_TRACKS] = {0};
  size_t k;
  json_t *t;
  json_array_foreach(tr, k, t) {
    const char *ts = json_string_value(json_object_get(t, "sid"));
    if (!ts || strlen(ts) >= 24) continue;
    int a_in = (int)json_integer_value(json_object_get(t, "in"));
    int b_in = a_in >= 0 && a_in < HD_SESSION_MAX_TRACKS ? p->remote_in[a_in] : -1;
    if (!p->pub_sess || b_in < 0) continue; /* no media for it here (yet) */
    int muted = json_is_true(json_object_get(t, "muted"));
    pub_track_t *x = rooms_track_by_sid(p, ts);
    if (x) {
      x->width = (int)json_integer_value(json_object_get(t, "width"));
      x->height = (int)json_integer_value(json_object_get(t, "height"));
      if (x->muted != muted) rooms_set_muted(n, p, x, muted, 0);
      continue;
    }
    if (p->n_tracks >= MAX_PUB_TRACKS) continue;
    x = &p->tracks[p->n_tracks];
    memset(x, 0, sizeof *x);
    snprintf(x->sid, sizeof x->sid, "%s", ts);
    copy_json_str(x->cid, sizeof x->cid, t, "cid");
    copy_json_str(x->mid, sizeof x->mid, t, "mid");
    x->kind = (int)json_integer_value(json_object_get(t, "kind")) ? HD_TRACK_VIDEO : HD_TRACK_AUDIO;
    x->source = (int)json_integer_value(json_object_get(t, "source"));
    x->muted = muted;
    x->width = (int)json_integer_value(json_object_get(t, "width"));
    x->height = (int)json_integer_value(json_object_get(t, "height"));
    x->in_idx = b_in;
    p->pub_sess->in[b_in].muted = muted;
    added[p->n_tracks++] = 1;
  }
  int any = 0;
  for (int i = 0; i < p->n_tracks; i++)
    any |= added[i];
  if (any) rooms_remote_tracks_added(n, p, added, p->n_tracks);
}

void room_remote_drop_identity(hd_node_t *n, hd_room_t *r, const char *identity,
                               const hd_participant_t *keep) {
  for (;;) {
    hd_participant_t *q = r->participants;
    while (q && !(q->remote && !q->leaving && q != keep && !strcmp(q->identity, identity)))
      q = q->next;
    if (!q) return;
    HD_LOGI("link", "remote participant %s (%s) replaced by a newer connection of its identity", q->sid,
            q->identity);
    rooms_participant_remove(n, q, -1, 0);
  }
}

/* Removes node's participants not in keep (NULL: all of them). */
static void remove_missing(hd_node_t *n, hd_room_t *r, uint64_t node, json_t *keep) {
  for (;;) {
    hd_participant_t *gone = NULL;
    for (hd_participant_t *p = r->participants; p && !gone; p = p->next) {
      if (p->remote != node || p->leaving) continue;
      int kept = 0;
      size_t k;
      json_t *o;
      json_array_foreach(keep, k, o) {
        const char *sid = json_string_value(json_object_get(o, "sid"));
        if (sid && !strcmp(sid, p->sid)) kept = 1;
      }
      if (!kept) gone = p;
    }
    if (!gone) return;
    HD_LOGI("link", "remote participant %s (%s) left %s/%s", gone->sid, gone->identity, r->app, r->name);
    rooms_participant_remove(n, gone, -1, 0);
  }
}

void rr_apply_state(hd_node_t *n, hd_room_t *r, uint64_t node, const uint8_t *msg, size_t len,
                    hd_time_t now) {
  json_error_t je;
  json_t *root = json_loadb((const char *)msg, len, 0, &je);
  if (!root) {
    n->cl->rx_dropped++;
    return;
  }
  const char *admin = json_string_value(json_object_get(root, "admin"));
  if (admin) { /* an admin action another node took on one of our participants */
    const char *sid = json_string_value(json_object_get(root, "sid"));
    hd_participant_t *q = r->participants;
    while (q && !(sid && !q->remote && !q->leaving && !strcmp(q->sid, sid)))
      q = q->next;
    if (q && !strcmp(admin, "remove")) {
      HD_LOGI("link", "participant %s (%s) removed by an admin action on another node", q->sid, q->identity);
      node_room_pin(r);
      rooms_participant_remove(n, q, HD_SIGNAL_LEFT_REMOVED, 1);
      node_room_unpin(n, r);
    } else if (q && !strcmp(admin, "mute")) {
      const char *ts = json_string_value(json_object_get(root, "track_sid"));
      pub_track_t *t = ts ? rooms_track_by_sid(q, ts) : NULL;
      if (t) rooms_set_muted(n, q, t, json_is_true(json_object_get(root, "muted")), 1);
    }
    json_decref(root);
    return;
  }
  const char *text = json_string_value(json_object_get(root, "data"));
  if (text) { /* a data message for our participants (room_remote_data) */
    json_t *to = json_object_get(root, "to");
    int dc = (int)json_integer_value(json_object_get(root, "dc"));
    if (!json_is_integer(json_object_get(root, "dc"))) dc = -1;
    int tl = (int)strlen(text);
    for (hd_participant_t *q = r->participants; q && dc < 0; q = q->next) {
      if (q->remote || q->leaving) continue;
      int want = json_array_size(to) == 0;
      size_t k;
      json_t *e;
      json_array_foreach(to, k, e) {
        const char *id = json_string_value(e);
        if (id && !strcmp(id, q->identity)) want = 1;
      }
      if (want) rooms_emit(n, q, text, tl);
    }
    if (dc == DC_RELIABLE || dc == DC_LOSSY) rooms_dc_deliver(n, r, NULL, dc, text, tl, NULL, NULL);
    json_decref(root);
    return;
  }
  json_t *ps = json_object_get(root, "participants");
  uint32_t ver = (uint32_t)json_integer_value(json_object_get(root, "version"));
  if (json_is_array(ps)) {
    node_room_pin(r);
    remove_missing(n, r, node, ps);
    size_t k;
    json_t *o;
    json_array_foreach(ps, k, o) apply_participant(n, r, node, o, now);
    rnode_t *x = rr_rnode_find(r, node);
    if (x) x->their_ver = ver;
    node_room_unpin(n, r);
  }
  json_decref(root);
}

/* ---- data messages ---- */

void room_remote_data(hd_node_t *n, hd_room_t *r, int dc, const char *const *to, size_t n_to,
                      const char *text, int len) {
  if (!n->cl || !r->cl || !r->cl->n_nodes || len <= 0) return;
  json_t *root = json_pack("{s:i, s:s%, s:i}", "v", 1, "data", text, (size_t)len, "dc", dc);
  json_t *ta = json_array();
  for (size_t i = 0; i < n_to; i++)
    json_array_append_new(ta, json_string(to[i]));
  if (root)
    json_object_set_new(root, "to", ta);
  else
    json_decref(ta);
  char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
  json_decref(root);
  if (!s) return;
  size_t sl = strlen(s);
  for (int i = 0; i < r->cl->n_nodes; i++) {
    rnode_t *x = &r->cl->nodes[i];
    cl_peer_t *p = rr_peer_by_hash(n->cl, x->peer);
    if (!p) continue;
    if (dc == DC_LOSSY) { /* lossy stays lossy: once, in fragments */
      send_msg(n, r, p, s, sl);
      continue;
    }
    /* WebSocket and reliable data channel messages: acknowledged, resent, in order */
    int rc = hd_link_rel_send(rr_rel_of(n, r, x, n->now), (const uint8_t *)s, sl);
    if (rc < 0 && !r->cl->data_dropped++)
      HD_LOGW("link",
              "room %s/%s: a data message for node %s dropped (%s): more than %d segments of %d bytes "
              "wait for that node's acknowledgement (is it reachable?); counted, logged once per room",
              r->app, r->name, p->id, hd_strerror(rc), HD_LINK_REL_WINDOW, HD_LINK_REL_SEG);
    rr_rel_flush(n, r, x, n->now);
  }
  free(s);
}

/* ---- admin actions ---- */

/* An admin action on a participant of another node goes to that node on the
 * room's reliable stream (docs/overlay.md "Reliable data over the link"):
 * acknowledged, resent and in order with the data messages, so a lost
 * datagram does not lose a remove or a mute. */
int room_remote_admin(hd_node_t *n, hd_participant_t *p, const char *track_sid, int muted) {
  hd_room_t *r = p->room;
  cl_peer_t *peer = n->cl && r->cl ? rr_peer_by_hash(n->cl, p->remote) : NULL;
  rnode_t *x = peer ? rr_rnode_get(r, p->remote) : NULL;
  if (!x) return HD_ENOTFOUND;
  json_t *o = track_sid ? json_pack("{s:i, s:s, s:s, s:s, s:b}", "v", 1, "admin", "mute", "sid", p->sid,
                                    "track_sid", track_sid, "muted", muted)
                        : json_pack("{s:i, s:s, s:s}", "v", 1, "admin", "remove", "sid", p->sid);
  char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s) return HD_ENOMEM;
  int rc = hd_link_rel_send(rr_rel_of(n, r, x, n->now), (const uint8_t *)s, strlen(s));
  free(s);
  if (rc < 0) {
    HD_LOGW("link",
            "room %s/%s: an admin action for node %s not sent (%s): its reliable stream is full "
            "(is that node reachable?); try again",
            r->app, r->name, peer->id, hd_strerror(rc));
    return rc;
  }
  rr_rel_flush(n, r, x, n->now);
  return 0;
}

/* ---- upkeep ---- */

void room_remote_changed(hd_node_t *n, hd_room_t *r) {
  if (!n->cl || !r) return;
  if (!r->cl) {
    if (!(r->cl = calloc(1, sizeof *r->cl))) return;
    r->cl->hash = hd_cluster_room_hash(r->app, r->name);
  }
  r->cl->dirty = 1;
  r->cl->next_tick = 0;
}

void room_remote_free(hd_room_t *r) {
  if (!r->cl) return;
  for (int i = 0; i < r->cl->n_nodes; i++)
    if (r->cl->nodes[i].rel_on) hd_link_rel_free(&r->cl->nodes[i].rel);
  free(r->cl->state);
  free(r->cl);
  r->cl = NULL;
}

hd_time_t room_remote_next_timeout(hd_node_t *n, hd_room_t *r) {
  (void)n;
  return r->cl ? r->cl->next_tick : HD_TIME_NEVER;
}

int rr_has_local(const hd_room_t *r) {
  for (const hd_participant_t *p = r->participants; p; p = p->next)
    if (is_local(p)) return 1;
  return 0;
}

/* The live simulcast layers of our publishers (rate, size, TID shares), so that the
 * other nodes' allocators can choose a layer that does not cross the link
 * now (only the layers taken there do). NULL when there are none. */
static hd_link_layers_t *layers_of(hd_room_t *r, hd_time_t now, hd_link_layers_t *buf) {
  hd_link_layers_t *m = NULL;
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    if (!is_local(p) || !p->pub_sess) continue;
    const hd_session_t *s = p->pub_sess;
    uint32_t ph = 0;
    for (int i = 0; i < s->n_in && i < 16; i++) {
      const hd_in_track_t *t = &s->in[i];
      if (!t->active || s->in[t->head].n_layers <= 1 || !t->last_packet_at ||
          now - t->last_packet_at > HD_SESSION_LAYER_TIMEOUT)
        continue;
      if (!m) {
        m = buf;
        m->n = 0;
      }
      if (m->n == HD_LINK_MAX_LAYERS) break;
      if (!ph) ph = hd_link_sid_hash(p->sid);
      hd_link_layer_t *l = &m->l[m->n++];
      l->pub = ph;
      l->in_idx = (uint8_t)i;
      hd_layer_report_of(t, l);
    }
  }
  if (m) m->room = r->cl->hash;
  return m;
}

/* A node's LAYERS report: its publisher's simulcast layers that do not cross
 * the link now look live here with their reported rate, size and (link
 * version 3) TID shares, as if their media came, so our allocators may
 * choose them; a layer whose media does come is measured here as any. */
void rr_on_layers(hd_room_t *r, uint64_t node, const hd_link_layers_t *m, hd_time_t now) {
  for (int i = 0; i < m->n; i++) {
    const hd_link_layer_t *l = &m->l[i];
    hd_participant_t *p = rr_remote_find(r, node, l->pub, NULL);
    if (!p || !p->pub_sess || l->in_idx >= HD_SESSION_MAX_TRACKS || p->remote_in[l->in_idx] < 0) continue;
    if (p->remote_rx_at[l->in_idx] && now - p->remote_rx_at[l->in_idx] < HD_MS(500)) continue; /* flowing */
    hd_layer_report_apply(&p->pub_sess->in[p->remote_in[l->in_idx]], l, m->ver, now);
  }
}

/* Our LAYERS report to peer p in the form its link version reads: before
 * version 3 without the TID shares (and larger entries: at most
 * HD_LINK_MAX_LAYERS_V3 a message from version 3 on). */
static void send_layers(hd_node_t *n, cl_peer_t *p, const hd_room_t *r, const hd_link_layers_t *lm) {
  int per = p->link.ver >= 3 ? HD_LINK_MAX_LAYERS_V3 : HD_LINK_MAX_LAYERS;
  for (int first = 0; first < lm->n; first += per) {
    hd_link_layers_t part;
    part.room = lm->room;
    part.n = (uint16_t)(lm->n - first < per ? lm->n - first : per);
    memcpy(part.l, lm->l + first, sizeof part.l[0] * part.n);
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    int bl = b ? hd_link_layers_write(&part, p->link.ver, b, cap) : -1;
    if (bl > 0) rr_send_commit(n, p, r, HD_LINK_LAYERS, (size_t)bl);
  }
}

int room_remote_track_wanted(const hd_room_t *r, const hd_participant_t *p, int head, hd_time_t now) {
  if (!r->cl || !r->cl->n_nodes || !p->pub_sess || head < 0 || head >= p->pub_sess->n_in) return 0;
  const hd_in_track_t *h = &p->pub_sess->in[head];
  uint16_t bits = 0;
  for (int l = 0; l < (h->n_layers > 1 ? h->n_layers : 1); l++) {
    int i = h->n_layers > 1 ? h->layers[l] : head;
    if (i < 16) bits |= (uint16_t)(1u << i);
  }
  uint32_t ph = hd_link_sid_hash(p->sid);
  for (int k = 0; k < r->cl->n_nodes; k++) {
    const rnode_t *x = &r->cl->nodes[k];
    if (now - x->wants_at > CL_WANTS_TTL) continue;
    for (int j = 0; j < x->n_wants; j++)
      if (x->wants[j].pub == ph && (x->wants[j].mask & bits)) return 1;
  }
  return 0;
}

/* The wants bit of stand-in p's in[] index b: that of its publisher node's index. */
static uint16_t remote_bit(const hd_participant_t *p, int b) {
  if (b < 0) return 0;
  for (int a = 0; a < 16 && a < HD_SESSION_MAX_TRACKS; a++)
    if (p->remote_in[a] == b) return (uint16_t)(1u << a);
  return 0;
}

/* What we want from node x: the tracks of its participants that ours
 * subscribe to, and of a simulcast track only the layers they take. */
static int wants_of(hd_room_t *r, uint64_t node, hd_link_want_t *w) {
  int nw = 0;
  for (hd_participant_t *p = r->participants; p; p = p->next) {
    if (p->remote != node || p->leaving || !p->pub_sess) continue;
    uint16_t mask = 0;
    for (hd_participant_t *q = r->participants; q; q = q->next) {
      if (q->remote || q->leaving) continue;
      for (int i = 0; i < q->n_subs; i++) {
        if (q->subs[i].pub != p) continue;
        pub_track_t *t = rooms_track_by_sid(p, q->subs[i].track_sid);
        if (!t || t->in_idx < 0 || t->in_idx >= p->pub_sess->n_in) continue;
        const hd_in_track_t *head = &p->pub_sess->in[t->in_idx];
        if (head->n_layers <= 1) { /* one stream: the track */
          mask |= remote_bit(p, t->in_idx);
          continue;
        }
        /* simulcast: the layer q's allocator forwards now and the one it
         * switches to (nothing while it is paused) */
        int oi = q->sub_sess ? hd_session_track_by_mid(q->sub_sess, q->subs[i].mid) : -1;
        const hd_out_track_t *o = oi >= 0 ? &q->sub_sess->out[oi] : NULL;
        if (!o || o->src != p->pub_sess) continue;
        mask |= remote_bit(p, o->cur_in) | remote_bit(p, o->want_in);
      }
    }
    if (mask && nw < HD_LINK_MAX_WANTS) {
      w[nw].pub = hd_link_sid_hash(p->sid);
      w[nw].mask = mask;
      nw++;
    }
  }
  return nw;
}

void room_remote_tick(hd_node_t *n, hd_room_t *r, hd_time_t now) {
  struct room_cluster *rc = r->cl;
  struct node_cluster *c = n->cl;
  rc->next_tick = now + CL_TICK;
  if (!c) return;
  int local = rr_has_local(r);
  /* the nodes holding the room, as the registry tells */
  if (local)
    for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++) {
      cl_peer_t *p = &c->peers[i];
      if (!p->used || !p->listed) continue;
      for (int j = 0; j < p->n_rooms; j++)
        if (p->rooms[j] == rc->hash) {
          rr_rnode_get(r, p->link.id_hash);
          break;
        }
    }
  /* silent nodes: their participants leave; nodes gone from the registry too are forgotten */
  for (int i = 0; i < rc->n_nodes; i++) {
    rnode_t *x = &rc->nodes[i];
    cl_peer_t *p = rr_peer_by_hash(c, x->peer);
    int silent = x->last_rx ? now - x->last_rx > CL_DEAD_AFTER : 0;
    if (silent && x->their_ver) {
      HD_LOGI("link", "room %s/%s: node %s silent for %lld ms; its participants leave", r->app, r->name,
              p ? p->id : "?", (long long)((now - x->last_rx) / 1000));
      remove_missing(n, r, x->peer, NULL);
      x->their_ver = 0;
      x->n_wants = 0;
    }
    int listed = p && p->listed;
    if (!p || (!listed && (silent || !x->last_rx))) {
      remove_missing(n, r, x->peer, NULL);
      rnode_drop(rc, i);
      i--;
    }
  }
  /* our state, when it changed */
  if (rc->dirty) {
    rc->dirty = 0;
    size_t len;
    char *s = state_json(r, &len);
    if (s) {
      uint64_t hsh = fnv64(s, len);
      if (hsh != rc->state_hash || !rc->state) {
        rc->state_hash = hsh;
        rc->version++;
        /* the version goes inside, so a receiver knows which one it applied */
        json_t *root = json_loads(s, 0, NULL);
        free(s);
        s = NULL;
        if (root) {
          json_object_set_new(root, "version", json_integer(rc->version));
          s = json_dumps(root, JSON_COMPACT);
          json_decref(root);
        }
        if (s) {
          free(rc->state);
          rc->state = s;
          rc->state_len = strlen(s);
          s = NULL;
          for (int i = 0; i < rc->n_nodes; i++) {
            cl_peer_t *p = rr_peer_by_hash(c, rc->nodes[i].peer);
            if (p) rr_send_state(n, r, p);
          }
        }
      }
      free(s);
    }
  }
  if (!local && !rc->n_nodes) {
    rc->next_tick = HD_TIME_NEVER; /* woken by the next change */
    return;
  }
  if (!local) {
    /* nobody here needs the others: their stand-ins go, the room empties */
    for (int i = 0; i < rc->n_nodes; i++)
      remove_missing(n, r, rc->nodes[i].peer, NULL);
    while (rc->n_nodes)
      rnode_drop(rc, rc->n_nodes - 1);
    rc->next_tick = HD_TIME_NEVER;
    return;
  }
  /* keepalive + wants to every node of the room, with our simulcast layers (at the hello interval) */
  hd_link_layers_t lbuf;
  hd_link_layers_t *lm = now >= rc->next_hello ? layers_of(r, now, &lbuf) : NULL;
  for (int i = 0; i < rc->n_nodes; i++) {
    rnode_t *x = &rc->nodes[i];
    hd_link_hello_t hh;
    memset(&hh, 0, sizeof hh);
    hh.room = rc->hash;
    hh.version = rc->version;
    hh.n_wants = (uint16_t)wants_of(r, x->peer, hh.wants);
    int changed = hh.n_wants != x->n_sent_wants ||
                  memcmp(hh.wants, x->sent_wants, sizeof hh.wants[0] * hh.n_wants) != 0;
    if (!changed && now < rc->next_hello) continue;
    memcpy(x->sent_wants, hh.wants, sizeof hh.wants[0] * hh.n_wants);
    x->n_sent_wants = hh.n_wants;
    cl_peer_t *p = rr_peer_by_hash(c, x->peer);
    if (!p) continue;
    size_t cap;
    uint8_t *b = rr_send_begin(n, &cap);
    if (!b) continue;
    int bl = hd_link_hello_write(&hh, b, cap);
    if (bl > 0) rr_send_commit(n, p, r, HD_LINK_HELLO, (size_t)bl);
    if (lm && lm->n) send_layers(n, p, r, lm);
  }
  if (now >= rc->next_hello) rc->next_hello = now + CL_HELLO_INTERVAL;
  /* reliable data: retransmissions due */
  for (int i = 0; i < rc->n_nodes; i++)
    rr_rel_flush(n, r, &rc->nodes[i], now);
}

/* ---- link measurement (issue 16 item 1; docs/overlay.md "Link measurement") ---- */

void hd_node_cluster_measure(hd_node_t *n) {
  if (n->cl) n->cl->measure = 1;
}

/* O(1): asked after every packet batch; the tick recomputes it (an echo
 * only moves a deadline later, so a stale value means one early tick). */
hd_time_t room_remote_node_next_timeout(hd_node_t *n) {
  struct node_cluster *c = n->cl;
  if (!c) return HD_TIME_NEVER;
  return hd_time_min(hd_time_min(c->measure ? c->meter_next : HD_TIME_NEVER, c->hop_next), c->bwe_next);
}

void room_remote_node_tick(hd_node_t *n, hd_time_t now) {
  struct node_cluster *c = n->cl;
  if (!c) return;
  if (c->hop_next <= now) c->hop_next = rr_hop_tick(n, now);
  if (c->bwe_next <= now) c->bwe_next = rr_bwe_tick(n, now);
  if (!c->measure) return;
  hd_time_t t = HD_TIME_NEVER;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++) {
    cl_peer_t *p = &c->peers[i];
    /* a node gone from the registry is not probed (a Redis outage leaves
     * the table as it was: push_peers skips an empty read) */
    if (!p->used || !p->n_addr || !p->listed) continue;
    uint8_t probe[HD_LINK_METER_PROBE_LEN];
    int l = hd_link_meter_poll(&p->meter, now, probe, sizeof probe);
    /* to the peer's first worker: the one that measures there too, so both
     * directions of a pair are probed by the same two sockets */
    if (l > 0) rr_send_to(n, p, (const struct sockaddr *)&p->addr[0], 0, HD_LINK_METER, probe, (size_t)l);
    t = hd_time_min(t, hd_link_meter_next_timeout(&p->meter));
  }
  c->meter_next = t;
}

int hd_node_cluster_links(hd_node_t *n, hd_node_link_t *out, int cap, hd_time_t now) {
  struct node_cluster *c = n->cl;
  int k = 0;
  if (!c || !c->measure) return 0;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES && k < cap; i++) {
    cl_peer_t *p = &c->peers[i];
    if (!p->used) continue;
    hd_node_link_t *o = &out[k++];
    snprintf(o->peer, sizeof o->peer, "%s", p->id);
    o->listed = p->listed;
    hd_link_meter_stats(&p->meter, now, &o->st);
    o->n_samples = (int)hd_link_meter_samples(&p->meter, o->samples, HD_NODE_LINK_SAMPLES);
    o->relay_sent = p->relay_sent;
    o->relay_forwarded = p->relay_forwarded;
    o->relay_detoured = p->relay_detoured;
    o->relay_received = p->relay_received;
    o->relay_rescued = p->relay_rescued;
    memset(o->by_worker, 0, sizeof o->by_worker);
    o->n_workers = 0;
    if (c->worker < HD_NODE_LINK_WORKERS) {
      o->by_worker[c->worker].sent = p->relay_sent;
      o->by_worker[c->worker].forwarded = p->relay_forwarded;
      o->by_worker[c->worker].received = p->relay_received;
      o->n_workers = c->worker + 1;
    }
    o->hop_resent = p->hop_tx.resent;
    o->hop_repaired = o->hop_lost = 0;
    for (int j = 0; p->hop_in && j < CL_HOP_STREAMS; j++) {
      o->hop_repaired += p->hop_in[j].rx.repaired;
      o->hop_lost += p->hop_in[j].rx.lost;
    }
    o->dedup_dropped = p->dedup_dropped;
    o->dedup_video = p->dedup_video;
    o->rx_replay = p->link.rx_replay + p->link.rx_old_epoch;
    o->rx_misaddressed = p->link.rx_misaddressed;
    o->rx_auth_fail = p->link.rx_auth_fail;
    memset(&o->bw, 0, sizeof o->bw);
    rr_bwe_stats_add(p, now, &o->bw);
  }
  return k;
}

void hd_node_cluster_links_add(hd_node_t *n, hd_node_link_t *links, int count) {
  struct node_cluster *c = n->cl;
  if (!c || c->measure) return;
  for (int i = 0; i < count; i++) {
    cl_peer_t *p = rr_peer_by_hash(c, hd_link_id_hash(links[i].peer));
    if (!p) continue;
    hd_node_link_t *o = &links[i];
    o->rx_replay += p->link.rx_replay + p->link.rx_old_epoch;
    o->rx_misaddressed += p->link.rx_misaddressed;
    o->rx_auth_fail += p->link.rx_auth_fail;
    o->relay_sent += p->relay_sent;
    o->relay_forwarded += p->relay_forwarded;
    o->relay_detoured += p->relay_detoured;
    o->relay_received += p->relay_received;
    o->relay_rescued += p->relay_rescued;
    o->hop_resent += p->hop_tx.resent;
    for (int j = 0; p->hop_in && j < CL_HOP_STREAMS; j++) {
      o->hop_repaired += p->hop_in[j].rx.repaired;
      o->hop_lost += p->hop_in[j].rx.lost;
    }
    o->dedup_dropped += p->dedup_dropped;
    o->dedup_video += p->dedup_video;
    if (c->worker < HD_NODE_LINK_WORKERS) {
      o->by_worker[c->worker].sent += p->relay_sent;
      o->by_worker[c->worker].forwarded += p->relay_forwarded;
      o->by_worker[c->worker].received += p->relay_received;
      if (o->n_workers < c->worker + 1) o->n_workers = c->worker + 1;
    }
    rr_bwe_stats_add(p, n->now, &o->bw);
  }
}

int hd_node_cluster_peer_addr(hd_node_t *n, const char *id, const char *const *addrs, int count) {
  struct node_cluster *c = n->cl;
  cl_peer_t *p = c ? rr_peer_by_hash(c, hd_link_id_hash(id)) : NULL;
  if (!p || !count) return 0;
  int na = 0;
  for (int j = 0; j < count && na < HD_CLUSTER_MAX_MEDIA; j++)
    if (parse_addr(addrs[j], &p->addr[na], &p->addr_len[na]) == 0) na++;
  if (na) p->n_addr = na;
  return na;
}
