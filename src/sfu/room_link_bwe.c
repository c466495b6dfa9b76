/* Bandwidth per node link on a media worker (issue 16 item 1;
 * docs/overlay.md "Bandwidth per link"): the glue between the worker's link
 * datagrams and overlay/link_bwe.h. Every datagram this worker seals to a
 * peer's media address is recorded for the estimator of (this worker, that
 * address); every datagram it opens from a peer is noted for the arrival
 * reports it sends back (BWE_FB, link type 12) to where the datagram came
 * from. Nothing here is on another thread: each worker estimates the flows
 * it sends, the control thread sums them (hd_node_cluster_links[_add]). */
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "base/bytes.h"
#include "sfu/room_remote_internal.h"

static hd_link_bwe_t *bwe_of(struct node_cluster *c, cl_peer_t *p) {
  if (!p->bwe && (p->bwe = malloc(sizeof *p->bwe)))
    hd_link_bwe_init(p->bwe, (int)(c->self.next_seq >> HD_LINK_LANE_SHIFT));
  return p->bwe;
}

void rr_bwe_free(cl_peer_t *p) {
  if (!p->bwe) return;
  hd_link_bwe_free(p->bwe);
  free(p->bwe);
  p->bwe = NULL;
}

void rr_bwe_sent(hd_node_t *n, cl_peer_t *p, const struct sockaddr *to, const uint8_t *dg, size_t len) {
  /* only datagrams to one of the peer's media addresses belong to a flow
   * (a repair sent back to where a HOP_NACK came from does not) */
  const struct sockaddr_storage *a = (const struct sockaddr_storage *)(const void *)to;
  if (a < &p->addr[0] || a >= &p->addr[p->n_addr]) return;
  hd_link_bwe_t *b = bwe_of(n->cl, p);
  if (b) hd_link_bwe_on_sent(b, (int)(a - &p->addr[0]), hd_get_be64(dg + 20), len, n->now);
}

/* Sends p's due reports (at once: rr_send_to). */
static void flush(hd_node_t *n, cl_peer_t *p, hd_time_t now) {
  uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  const void *ret;
  size_t rl;
  int len;
  while ((len = hd_link_bwe_poll(p->bwe, now, out, sizeof out, &ret, &rl)) > 0) {
    struct sockaddr_storage to; /* aligned copy of the kept address */
    if (rl < sizeof(struct sockaddr_in) || rl > sizeof to) continue;
    memset(&to, 0, sizeof to);
    memcpy(&to, ret, rl);
    /* to the worker that sealed the reported datagrams: the report's lane (its first byte) */
    rr_send_to(n, p, (const struct sockaddr *)&to, out[0], HD_LINK_BWE_FB, out, (size_t)len);
  }
}

int rr_bwe_received(hd_node_t *n, cl_peer_t *p, uint8_t type, const uint8_t *dg, const uint8_t *pl,
                    size_t pl_len, const struct sockaddr *from, hd_time_t now) {
  struct node_cluster *c = n->cl;
  if (type == HD_LINK_BWE_FB) {
    if (!p->bwe || hd_link_bwe_on_feedback(p->bwe, pl, pl_len, now) < 0) c->rx_dropped++;
    return 1;
  }
  /* probes measure the link themselves; reports are not reported (two idle
   * nodes would answer each other's reports forever) */
  if (type == HD_LINK_METER || !from) return 0;
  hd_link_bwe_t *b = bwe_of(c, p);
  if (!b) return 0;
  size_t fl = from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (hd_link_bwe_on_received(b, hd_get_be64(dg + 20), now, from, fl) == 1) flush(n, p, now);
  hd_time_t t = hd_link_bwe_next_timeout(b);
  if (t < c->bwe_next) c->bwe_next = t;
  return 0;
}

hd_time_t rr_bwe_tick(hd_node_t *n, hd_time_t now) {
  struct node_cluster *c = n->cl;
  hd_time_t next = HD_TIME_NEVER;
  for (int i = 0; i < HD_CLUSTER_MAX_NODES; i++) {
    cl_peer_t *p = &c->peers[i];
    if (!p->used || !p->bwe) continue;
    if (hd_link_bwe_next_timeout(p->bwe) <= now) flush(n, p, now);
    hd_time_t t = hd_link_bwe_next_timeout(p->bwe);
    if (t < next) next = t;
  }
  return next;
}

void rr_bwe_stats_add(const cl_peer_t *p, hd_time_t now, hd_link_bwe_stats_t *acc) {
  if (!p->bwe) return;
  hd_link_bwe_stats_t s;
  hd_link_bwe_stats(p->bwe, now, &s);
  acc->estimate_bps += s.estimate_bps;
  acc->target_bps += s.target_bps;
  acc->acked_bps += s.acked_bps;
  acc->sent_bps += s.sent_bps;
  acc->flows += s.flows;
  acc->congested |= s.congested;
  if (s.loss > acc->loss) acc->loss = s.loss;
  acc->feedbacks += s.feedbacks;
  acc->lost += s.lost;
  acc->late += s.late;
  acc->fb_sent += s.fb_sent;
  acc->rx_noted += s.rx_noted;
  acc->rx_unnoted += s.rx_unnoted;
  acc->bad += s.bad;
}
