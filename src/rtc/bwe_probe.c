/* Probe cluster bookkeeping and results. See bwe_probe.h. */
#include "rtc/bwe_probe.h"

#include <string.h>

void hd_bwe_probes_init(hd_bwe_probes_t *p) {
  memset(p, 0, sizeof *p);
  p->next_id = 1;
}

static hd_bwe_cluster_t *find(hd_bwe_probes_t *p, int id) {
  if (id <= 0) return NULL;
  for (size_t i = 0; i < HD_BWE_MAX_CLUSTERS; i++)
    if (p->c[i].id == id) return &p->c[i];
  return NULL;
}

int hd_bwe_probes_start(hd_bwe_probes_t *p, double target_bps, hd_time_t now, size_t *min_bytes) {
  hd_bwe_cluster_t *slot = NULL;
  for (size_t i = 0; i < HD_BWE_MAX_CLUSTERS && !slot; i++)
    if (!p->c[i].id) slot = &p->c[i];
  if (!slot) { /* evict the oldest */
    slot = &p->c[0];
    for (size_t i = 1; i < HD_BWE_MAX_CLUSTERS; i++)
      if (p->c[i].created < slot->created) slot = &p->c[i];
    p->failed++;
  }
  memset(slot, 0, sizeof *slot);
  slot->id = p->next_id++;
  if (p->next_id > 0x7fff) p->next_id = 1;
  slot->target_bps = target_bps;
  slot->created = now;
  slot->min_bytes = (size_t)(target_bps * (double)HD_BWE_PROBE_DURATION / 8e6);
  if (min_bytes) *min_bytes = slot->min_bytes;
  p->started++;
  return slot->id;
}

void hd_bwe_probes_on_sent(hd_bwe_probes_t *p, int id, size_t size, hd_time_t now) {
  hd_bwe_cluster_t *c = find(p, id);
  if (!c) return;
  if (!c->sent) {
    c->first_send = now;
    c->first_send_size = size;
  }
  if (now >= c->last_send) {
    c->last_send = now;
    c->last_send_size = size;
  }
  c->sent++;
  c->sent_bytes += size;
}

void hd_bwe_probes_on_feedback(hd_bwe_probes_t *p, int id, size_t size, hd_time_t send, int received,
                               hd_time_t arrival) {
  (void)send;
  hd_bwe_cluster_t *c = find(p, id);
  if (!c) return;
  if (!received) {
    c->lost++;
    c->lost_bytes += size;
    return;
  }
  if (!c->recv || arrival < c->first_arr) {
    c->first_arr = arrival;
    c->first_arr_size = size;
  }
  if (!c->recv || arrival >= c->last_arr) {
    c->last_arr = arrival;
    c->last_arr_size = size;
  }
  c->recv++;
  c->recv_bytes += size;
}

/* 1 and *out when the cluster measured something. */
static int result(const hd_bwe_cluster_t *c, double *out, int *saturated) {
  /* random loss (a lossy radio hop; e2e/repair at 10%) takes a packet or two
   * from most clusters: up to 40% lost still measures */
  if (c->recv < HD_BWE_PROBE_MIN_PKTS - 1 || (double)c->recv < 0.6 * (double)c->sent) return 0;
  hd_time_t send_span = c->last_send - c->first_send, arr_span = c->last_arr - c->first_arr;
  if (send_span < 1000 || arr_span < 1000) return 0;
  /* Saturated when the path delivered the cluster slower than it was sent.
   * The two rates count the first and last packets half each: with packets of
   * unequal size (a small media packet among padding) leaving out the last
   * sent on one side and the first received on the other skews them apart on
   * a clear path. Saturated: the receive rate over all but the first arrival
   * (exact behind a bottleneck, which spaces arrivals by size / capacity). */
  double send_mid = ((double)c->sent_bytes - 0.5 * (double)(c->first_send_size + c->last_send_size)) * 8e6 /
                    (double)send_span;
  /* Lost packets count as delivered for the saturation test: on a clear
   * path with 10% random loss the received bytes are 90% of those sent over
   * the same span, which read as saturated, and no probe lifted a subscriber
   * whose video was paused (0 fps for a whole 20 s window in e2e/repair).
   * A bottleneck still shows: its arrivals are spread by size / capacity
   * whatever was lost. */
  double recv_mid =
      ((double)(c->recv_bytes + c->lost_bytes) - 0.5 * (double)(c->first_arr_size + c->last_arr_size)) * 8e6 /
      (double)arr_span;
  *saturated = recv_mid < 0.9 * send_mid;
  double send_rate = (double)(c->sent_bytes - c->last_send_size) * 8e6 / (double)send_span;
  double recv_rate = (double)(c->recv_bytes - c->first_arr_size) * 8e6 / (double)arr_span;
  double recv_all = (double)(c->recv_bytes + c->lost_bytes - c->first_arr_size) * 8e6 / (double)arr_span;
  *out = *saturated ? 0.95 * recv_rate : (send_rate < recv_all ? send_rate : recv_all);
  return 1;
}

int hd_bwe_probes_poll(hd_bwe_probes_t *p, hd_time_t now, double *result_bps, double *target_bps,
                       int *saturated) {
  for (size_t i = 0; i < HD_BWE_MAX_CLUSTERS; i++) {
    hd_bwe_cluster_t *c = &p->c[i];
    if (!c->id) continue;
    int sent_all = c->sent >= HD_BWE_PROBE_MIN_PKTS && c->sent_bytes >= c->min_bytes;
    int reported = c->recv + c->lost >= c->sent;
    if (sent_all && reported) {
      double r;
      int sat = 0;
      int ok = result(c, &r, &sat);
      double t = c->target_bps;
      c->id = 0;
      if (ok) {
        p->succeeded++;
        *result_bps = r;
        *target_bps = t;
        *saturated = sat;
        return 1;
      }
      p->failed++;
    } else if (now - c->created > HD_BWE_CLUSTER_TIMEOUT) {
      c->id = 0;
      p->failed++;
    }
  }
  return 0;
}
