/* Available bandwidth of a node-to-node link: per-flow transport-wide
 * feedback on the link's own sequence numbers, fed to the downlink estimator
 * (link_bwe.h says why each choice). */
#include "overlay/link_bwe.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "overlay/link.h"

#define LANE_OF(s) ((uint8_t)((s) >> HD_LINK_LANE_SHIFT))

/* ---- wire ---- */

int hd_link_bwe_fb_write(const hd_link_bwe_fb_t *f, uint8_t *out, size_t cap) {
  if (!f->n || f->n > HD_LINK_BWE_FB_MAX || f->lane >= HD_LINK_LANES) return HD_EINVAL;
  size_t len = HD_LINK_BWE_FB_HDR + (size_t)f->n * HD_LINK_BWE_FB_ENTRY;
  if (cap < len) return HD_ENOSPC;
  out[0] = f->lane;
  out[1] = f->rx_worker;
  hd_put_be16(out + 2, f->n);
  hd_put_be64(out + 4, f->ref_us);
  hd_put_be64(out + 12, f->e[0].seq);
  for (int i = 0; i < f->n; i++) {
    uint64_t d = i ? f->e[i].seq - f->e[i - 1].seq : 0;
    int64_t off = f->e[i].arrival_us - (int64_t)f->ref_us;
    if (LANE_OF(f->e[i].seq) != f->lane || (i && (f->e[i].seq <= f->e[i - 1].seq || d > 0xffff)) || off < 0 ||
        off > (int64_t)0xffffffff)
      return HD_EINVAL;
    uint8_t *e = out + HD_LINK_BWE_FB_HDR + (size_t)i * HD_LINK_BWE_FB_ENTRY;
    hd_put_be16(e, (uint16_t)d);
    hd_put_be32(e + 2, (uint32_t)off);
  }
  return (int)len;
}

int hd_link_bwe_fb_parse(const uint8_t *pl, size_t len, hd_link_bwe_fb_t *f) {
  if (len < HD_LINK_BWE_FB_HDR) return HD_EPROTO;
  f->lane = pl[0];
  f->rx_worker = pl[1];
  f->n = hd_get_be16(pl + 2);
  f->ref_us = hd_get_be64(pl + 4);
  uint64_t seq = hd_get_be64(pl + 12);
  if (!f->n || f->n > HD_LINK_BWE_FB_MAX || len != HD_LINK_BWE_FB_HDR + (size_t)f->n * HD_LINK_BWE_FB_ENTRY ||
      LANE_OF(seq) != f->lane || f->lane >= HD_LINK_LANES)
    return HD_EPROTO;
  for (int i = 0; i < f->n; i++) {
    const uint8_t *e = pl + HD_LINK_BWE_FB_HDR + (size_t)i * HD_LINK_BWE_FB_ENTRY;
    uint16_t d = hd_get_be16(e);
    if ((i == 0) != (d == 0)) return HD_EPROTO;
    seq += d;
    if (LANE_OF(seq) != f->lane) return HD_EPROTO; /* ran out of the lane's numbers */
    f->e[i].seq = seq;
    f->e[i].arrival_us = (int64_t)(f->ref_us + hd_get_be32(e + 2));
  }
  return 0;
}

/* ---- setup ---- */

void hd_link_bwe_init(hd_link_bwe_t *b, int lane) {
  memset(b, 0, sizeof *b);
  b->lane = lane;
  b->rx_next = HD_TIME_NEVER;
}

void hd_link_bwe_free(hd_link_bwe_t *b) {
  for (int i = 0; i < HD_LINK_BWE_FLOWS; i++)
    free(b->flow[i]);
  memset(b, 0, sizeof *b);
  b->rx_next = HD_TIME_NEVER;
}

/* ---- sending side ---- */

static hd_link_bwe_flow_t *flow_new(hd_time_t now) {
  hd_link_bwe_flow_t *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  hd_bwe_config_t c;
  hd_bwe_config_init(&c);
  c.start_bps = HD_LINK_BWE_START_BPS;
  c.max_bps = HD_LINK_BWE_MAX_BPS;
  c.probe_interval = 0; /* no padding on the link: link_bwe.h */
  c.initial_probes = 0;
  if (hd_bwe_init(&f->bwe, &c, now) < 0) {
    free(f);
    return NULL;
  }
  return f;
}

int hd_link_bwe_on_sent(hd_link_bwe_t *b, int dst, uint64_t lseq, size_t size, hd_time_t now) {
  if (dst < 0 || dst >= HD_LINK_BWE_FLOWS) return 0;
  hd_link_bwe_flow_t *f = b->flow[dst];
  if (!f && !(f = b->flow[dst] = flow_new(now))) {
    b->alloc_fail++;
    return HD_ENOMEM;
  }
  uint64_t t = f->next_tseq++;
  f->lseq[t & (HD_BWE_HISTORY - 1)] = lseq;
  hd_bwe_on_packet_sent(&f->bwe, (uint16_t)t, size, now, 0);
  return 0;
}

/* Hands the gathered reports to the estimator as one transport-wide feedback
 * (contiguous from pkts[0].seq: the estimator's own gap rule never fires). */
static void flush(hd_link_bwe_flow_t *f, size_t *n, hd_time_t now) {
  if (!*n) return;
  hd_rtcp_twcc_t fb = {.base_seq = f->pkts[0].seq, .status_count = (uint16_t)*n, .fb_count = ++f->fb_count};
  hd_bwe_on_twcc(&f->bwe, &fb, f->pkts, *n, now);
  *n = 0;
}

static void add(hd_link_bwe_flow_t *f, size_t *n, uint64_t tseq, int64_t arrival, hd_time_t now) {
  hd_rtcp_twcc_pkt_t *p = &f->pkts[(*n)++];
  p->seq = (uint16_t)tseq;
  p->status = arrival >= 0 ? HD_TWCC_SMALL_DELTA : HD_TWCC_NOT_RECEIVED;
  p->delta_us = 0;
  p->recv_us = arrival >= 0 ? arrival : 0;
  if (*n == HD_LINK_BWE_CHUNK) flush(f, n, now);
}

int hd_link_bwe_on_feedback(hd_link_bwe_t *b, const uint8_t *pl, size_t len, hd_time_t now) {
  hd_link_bwe_fb_t fb;
  if (hd_link_bwe_fb_parse(pl, len, &fb) < 0 || fb.lane != b->lane) {
    b->bad++;
    return HD_EPROTO;
  }
  hd_link_bwe_flow_t *f = fb.rx_worker < HD_LINK_BWE_FLOWS ? b->flow[fb.rx_worker] : NULL;
  if (!f) return 0; /* nothing sent there (or this worker restarted its flows) */
  b->feedbacks++;
  f->last_fb = now;
  /* what the history no longer holds is forgotten, not lost */
  if (f->next_tseq - f->cursor > HD_BWE_HISTORY) f->cursor = f->next_tseq - HD_BWE_HISTORY;
  if (f->cursor == f->next_tseq) return 0; /* everything sent was reported */
  uint64_t top = f->lseq[(f->next_tseq - 1) & (HD_BWE_HISTORY - 1)];
  size_t n = 0;
  int matched = 0;
  for (int i = 0; i < fb.n; i++) {
    uint64_t s = fb.e[i].seq;
    if (s > top) { /* never sent to this flow: a previous run of this node (its numbers started over) */
      f->late++;
      continue;
    }
    /* sent to this flow before s and not reported: skipped over, lost */
    while (f->cursor != f->next_tseq && f->lseq[f->cursor & (HD_BWE_HISTORY - 1)] < s) {
      add(f, &n, f->cursor, -1, now);
      f->cursor++;
    }
    if (f->cursor != f->next_tseq && f->lseq[f->cursor & (HD_BWE_HISTORY - 1)] == s) {
      add(f, &n, f->cursor, fb.e[i].arrival_us, now);
      f->cursor++;
      matched++;
    } else {
      f->late++; /* reordered past a report that counted it lost, or not ours */
    }
  }
  flush(f, &n, now);
  return matched;
}

/* ---- receiving side ---- */

static hd_link_bwe_rx_t *rx_slot(hd_link_bwe_t *b, uint8_t lane, hd_time_t now) {
  hd_link_bwe_rx_t *free_slot = NULL;
  for (int i = 0; i < HD_LINK_BWE_RX_LANES; i++) {
    hd_link_bwe_rx_t *r = &b->rx[i];
    if (r->used && r->lane == lane) return r;
    if (!free_slot && (!r->used || (!r->n && now - r->last_rx > HD_LINK_BWE_RX_IDLE))) free_slot = r;
  }
  if (free_slot) {
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    free_slot->lane = lane;
    free_slot->due = HD_TIME_NEVER;
  }
  return free_slot;
}

int hd_link_bwe_on_received(hd_link_bwe_t *b, uint64_t lseq, hd_time_t now, const void *ret, size_t ret_len) {
  if (LANE_OF(lseq) >= HD_LINK_LANES) { /* hd_link_open refuses those: not a link number */
    b->rx_unnoted++;
    return 0;
  }
  hd_link_bwe_rx_t *r = rx_slot(b, LANE_OF(lseq), now);
  if (!r || r->n >= HD_LINK_BWE_FB_MAX) { /* full: the caller polls when told; a lost note is a loss */
    b->rx_unnoted++;
    return r ? 1 : 0;
  }
  r->last_rx = now;
  if (ret_len <= HD_LINK_BWE_RET_MAX) {
    memcpy(r->ret, ret, ret_len);
    r->ret_len = ret_len;
  }
  r->e[r->n].seq = lseq;
  r->e[r->n].arrival_us = now;
  if (!r->n++) {
    r->due = now + HD_LINK_BWE_FB_INTERVAL;
    if (r->due < b->rx_next) b->rx_next = r->due;
  }
  b->rx_noted++;
  if (r->n == HD_LINK_BWE_FB_MAX) {
    r->due = now;
    b->rx_next = now;
    return 1;
  }
  return 0;
}

int hd_link_bwe_poll(hd_link_bwe_t *b, hd_time_t now, uint8_t *out, size_t cap, const void **ret,
                     size_t *ret_len) {
  if (b->rx_next > now) return 0;
  hd_time_t next = HD_TIME_NEVER;
  int len = 0;
  for (int i = 0; i < HD_LINK_BWE_RX_LANES; i++) {
    hd_link_bwe_rx_t *r = &b->rx[i];
    if (!r->used || !r->n) continue;
    if (r->due > now || len) {
      if (r->due < next) next = r->due;
      continue;
    }
    /* ascending sequence order (arrivals are nearly so: insertion sort) */
    for (int k = 1; k < r->n; k++)
      for (int j = k; j > 0 && r->e[j].seq < r->e[j - 1].seq; j--) {
        __typeof__(r->e[0]) t = r->e[j];
        r->e[j] = r->e[j - 1];
        r->e[j - 1] = t;
      }
    /* a sequence number noted twice (a peer's new epoch restarts its
     * numbers while the old ones wait here): keep the first, or the report
     * could never be written and the lane would stay due for ever */
    int u = 1;
    for (int j = 1; j < r->n; j++) {
      if (r->e[j].seq == r->e[u - 1].seq) {
        b->rx_noted--;
        b->rx_unnoted++;
        continue;
      }
      r->e[u++] = r->e[j];
    }
    r->n = (uint16_t)u;
    hd_link_bwe_fb_t fb;
    fb.lane = r->lane;
    fb.rx_worker = (uint8_t)b->lane;
    int64_t lo = r->e[0].arrival_us, hi = lo;
    int k = 1;
    for (; k < r->n; k++) { /* the prefix whose deltas and offsets fit */
      int64_t a = r->e[k].arrival_us, nlo = a < lo ? a : lo, nhi = a > hi ? a : hi;
      if (r->e[k].seq - r->e[k - 1].seq > 0xffff || nhi - nlo > (int64_t)0xffffffff) break;
      lo = nlo;
      hi = nhi;
    }
    int64_t ref = lo;
    fb.n = (uint16_t)k;
    fb.ref_us = (uint64_t)ref;
    for (int j = 0; j < k; j++) {
      fb.e[j].seq = r->e[j].seq;
      fb.e[j].arrival_us = r->e[j].arrival_us;
    }
    int w = hd_link_bwe_fb_write(&fb, out, cap);
    memmove(r->e, r->e + k, sizeof r->e[0] * (size_t)(r->n - k));
    r->n = (uint16_t)(r->n - k);
    r->due = r->n ? now : HD_TIME_NEVER; /* the rest goes in the next message */
    if (r->n) next = now;
    if (w < 0) { /* not expected after the checks above: drop those notes, never retry them for ever */
      b->rx_unnoted += (uint64_t)k;
      continue;
    }
    len = w;
    *ret = r->ret;
    *ret_len = r->ret_len;
    b->fb_sent++;
  }
  b->rx_next = next;
  return len;
}

hd_time_t hd_link_bwe_next_timeout(const hd_link_bwe_t *b) { return b->rx_next; }

/* ---- the estimate ---- */

void hd_link_bwe_stats(const hd_link_bwe_t *b, hd_time_t now, hd_link_bwe_stats_t *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < HD_LINK_BWE_FLOWS; i++) {
    const hd_link_bwe_flow_t *f = b->flow[i];
    if (!f) continue;
    hd_bwe_stats_t st;
    hd_bwe_stats(&f->bwe, &st);
    out->lost += st.lost;
    out->late += f->late;
    if (!f->last_fb || now - f->last_fb > HD_LINK_BWE_STALE) continue;
    out->flows++;
    /* what arrived is itself carried: a floor under the estimator's target,
     * which climbs from its start at 8%/s and is cut by loss (link_bwe.h) */
    uint64_t est = st.target_bps > st.acked_bps ? st.target_bps : st.acked_bps;
    out->estimate_bps += est;
    out->target_bps += st.target_bps;
    out->acked_bps += st.acked_bps;
    out->sent_bps += st.sent_bps;
    /* the queue grows, or more leaves than arrives (bwe.h's HD_BWE_OVERSEND
     * rule, on the estimate with its floor: the target alone is still
     * climbing from its start on a link that was never full) */
    if (st.usage == HD_BWE_OVERUSE || (double)st.sent_bps > HD_BWE_OVERSEND * (double)est) out->congested = 1;
    if (st.loss > out->loss) out->loss = st.loss;
  }
  out->feedbacks = b->feedbacks;
  out->fb_sent = b->fb_sent;
  out->rx_noted = b->rx_noted;
  out->rx_unnoted = b->rx_unnoted;
  out->bad = b->bad;
}
