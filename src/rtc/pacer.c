/* Per-subscriber send pacer (see pacer.h). */
#include "rtc/pacer.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define FIRST_SLOTS 16

void hd_pacer_cfg_default(hd_pacer_cfg_t *cfg) {
  cfg->factor_pct = HD_PACER_DEFAULT_FACTOR_PCT;
  cfg->interval = HD_PACER_DEFAULT_INTERVAL;
  cfg->max_packets = HD_PACER_DEFAULT_MAX_PACKETS;
  cfg->max_bytes = HD_PACER_DEFAULT_MAX_BYTES;
  cfg->max_delay = HD_PACER_DEFAULT_MAX_DELAY;
  cfg->start_bps = 0;
}

int hd_pacer_init(hd_pacer_t *p, const hd_pacer_cfg_t *cfg, hd_time_t now) {
  hd_pacer_cfg_t d;
  if (!cfg) {
    hd_pacer_cfg_default(&d);
    cfg = &d;
  }
  if (cfg->factor_pct < 100 || cfg->interval <= 0 || cfg->max_delay <= 0 || cfg->max_packets == 0 ||
      cfg->max_packets > 65536 || cfg->max_bytes < HD_PACER_PKT_MAX)
    return HD_EINVAL;
  memset(p, 0, sizeof *p);
  p->cfg = *cfg;
  p->last = now;
  p->rate_at = INT64_MIN;
  p->feed_start = now;
  p->free_head = -1;
  for (int c = 0; c < HD_PACE_CLASSES; c++)
    p->head[c] = p->tail[c] = -1;
  return 0;
}

void hd_pacer_free(hd_pacer_t *p) {
  free(p->slots);
  p->slots = NULL;
  p->n_slots = 0;
  p->free_head = -1;
}

void hd_pacer_set_probe_rate(hd_pacer_t *p, uint64_t bps) {
  if (bps == p->probe_bps) return;
  p->probe_bps = bps;
  p->rate_at = INT64_MIN;
}

void hd_pacer_set_estimate(hd_pacer_t *p, uint64_t bps) {
  if (bps == p->estimate_bps) return;
  p->estimate_bps = bps;
  p->rate_at = INT64_MIN;
}

uint64_t hd_pacer_rate(const hd_pacer_t *p, hd_time_t now) {
  (void)now;
  uint64_t base = p->estimate_bps;
  if (!base && !p->cfg.start_bps) return 0; /* nothing to pace to: not paced */
  if (!base) {                              /* no estimate: never below what the subscriber is being fed */
    base = p->cfg.start_bps;
    if (p->feed_bps > base) base = p->feed_bps;
  }
  uint64_t r = base * p->cfg.factor_pct / 100; /* no overflow below ~10^16 bit/s */
  return p->probe_bps > r ? p->probe_bps : r;
}

/* Audio never waits: the oldest is the oldest head of the other classes. */
static int oldest_slot(const hd_pacer_t *p) {
  int best = -1;
  for (int c = HD_PACE_RTX; c < HD_PACE_CLASSES; c++) {
    int h = p->head[c];
    if (h >= 0 && (best < 0 || p->slots[h].enqueued < p->slots[best].enqueued)) best = h;
  }
  return best;
}

hd_time_t hd_pacer_oldest_age(const hd_pacer_t *p, hd_time_t now) {
  int o = oldest_slot(p);
  return o < 0 ? 0 : now - p->slots[o].enqueued;
}

/* The release rate at `now`: the pacing rate, raised so that what waits is
 * out before the oldest packet reaches max_delay. 0 = no limit (the bound has
 * passed, or there is no rate to pace to). */
static double eff_rate(const hd_pacer_t *p, hd_time_t now) {
  double r = (double)hd_pacer_rate(p, now);
  if (!p->queued_packets || r == 0) return r;
  hd_time_t left = p->cfg.max_delay - hd_pacer_oldest_age(p, now);
  if (left <= 0) return 0;
  double need = (double)p->queued_bytes * 8e6 / (double)left;
  return need > r ? need : r;
}

/* eff_rate at `now`, computed once per instant: the caller's timer asks for
 * the deadline of every subscriber after every batch of packets. A release
 * at the same instant reuses it (the queue it was computed for was at most
 * those packets larger: the rate is a little high for them, never low). */
static double rate_at(hd_pacer_t *p, hd_time_t now) {
  if (p->rate_at != now) {
    p->rate = eff_rate(p, now);
    p->rate_at = now;
  }
  return p->rate;
}

/* Bytes one burst window allows at rate r. */
static double burst_bytes(const hd_pacer_t *p, double r) { return r * (double)p->cfg.interval / 8e6; }

/* The debt drains at the release rate since the last call. */
static void drain(hd_pacer_t *p, hd_time_t now) {
  if (now <= p->last) return;
  double r = rate_at(p, now);
  if (r == 0)
    p->debt = 0;
  else
    p->debt -= r * (double)(now - p->last) / 8e6;
  if (p->debt < 0) p->debt = 0;
  p->last = now;
}

static void feed_account(hd_pacer_t *p, size_t len, hd_time_t now) {
  if (p->estimate_bps || !p->cfg.start_bps) return; /* only the no-estimate rule uses it */
  p->feed_bytes += len;
  hd_time_t el = now - p->feed_start;
  if (el >= HD_PACER_FEED_WINDOW) {
    p->feed_bps = p->feed_bytes * 8 * 1000000 / (uint64_t)el;
    p->rate_at = INT64_MIN;
    p->feed_bytes = 0;
    p->feed_start = now;
  }
}

static int grow(hd_pacer_t *p) {
  if (p->n_slots >= p->cfg.max_packets) return HD_ENOSPC;
  size_t n = p->n_slots ? p->n_slots * 2 : FIRST_SLOTS;
  if (n > p->cfg.max_packets) n = p->cfg.max_packets;
  hd_pacer_pkt_t *s = realloc(p->slots, n * sizeof *s);
  if (!s) return HD_ENOMEM;
  p->slots = s;
  for (size_t i = n; i-- > p->n_slots;) {
    s[i].next = p->free_head;
    p->free_head = (int)i;
  }
  p->n_slots = n;
  return 0;
}

/* Unlinks the head of class c into the free list; returns its slot. */
static int pop_head(hd_pacer_t *p, int c) {
  int i = p->head[c];
  hd_pacer_pkt_t *s = &p->slots[i];
  p->head[c] = s->next;
  if (p->head[c] < 0) p->tail[c] = -1;
  p->count[c]--;
  p->queued_packets--;
  p->queued_bytes -= s->len;
  s->next = p->free_head;
  p->free_head = i;
  return i;
}

/* Whether nothing of a class at least as urgent as cls waits. */
static int nothing_ahead(const hd_pacer_t *p, int cls) {
  for (int c = 0; c <= cls; c++)
    if (p->count[c]) return 0;
  return 1;
}

int hd_pacer_enqueue(hd_pacer_t *p, int cls, const uint8_t *pkt, size_t len, uint32_t tag, hd_time_t now) {
  if (cls < 0 || cls >= HD_PACE_CLASSES || len > HD_PACER_PKT_MAX || (len && !pkt)) return HD_EINVAL;
  drain(p, now);
  feed_account(p, len, now);
  /* not paced (no estimate yet): nothing is owed either, so the first
   * estimate starts from a clean slate */
  int unpaced = hd_pacer_rate(p, now) == 0;
  if (unpaced) p->debt = 0;
  if (cls == HD_PACE_AUDIO) { /* never waits; its bytes count against the rate */
    if (!unpaced) p->debt += (double)len;
    p->sent_now++;
    return 1;
  }
  double r = rate_at(p, now);
  if (nothing_ahead(p, cls) && (r == 0 || p->debt < burst_bytes(p, r))) {
    if (!unpaced) p->debt += (double)len;
    p->sent_now++;
    return 1;
  }
  /* it waits: make room under the caps by dropping the oldest padding, then
   * the oldest video (never to make room for padding) */
  for (int c = HD_PACE_PADDING; c >= HD_PACE_VIDEO && c >= cls; c--)
    while ((p->queued_packets + 1 > p->cfg.max_packets || p->queued_bytes + len > p->cfg.max_bytes) &&
           p->count[c] && !(cls == HD_PACE_PADDING && c == HD_PACE_VIDEO)) {
      int i = pop_head(p, c);
      if (c == HD_PACE_PADDING) {
        p->padding_refused++;
      } else {
        p->dropped++;
        p->dropped_bytes += p->slots[i].len;
      }
    }
  if (p->queued_packets + 1 > p->cfg.max_packets || p->queued_bytes + len > p->cfg.max_bytes) {
    if (cls == HD_PACE_PADDING) {
      p->padding_refused++;
    } else {
      p->dropped++;
      p->dropped_bytes += len;
    }
    return HD_ENOSPC;
  }
  if (p->free_head < 0) {
    int rc = grow(p);
    if (rc < 0) {
      p->dropped++;
      p->dropped_bytes += len;
      return rc;
    }
  }
  int i = p->free_head;
  hd_pacer_pkt_t *s = &p->slots[i];
  p->free_head = s->next;
  s->len = len;
  s->cls = cls;
  s->tag = tag;
  s->enqueued = now;
  s->next = -1;
  if (len) memcpy(s->data, pkt, len);
  if (p->tail[cls] >= 0)
    p->slots[p->tail[cls]].next = i;
  else
    p->head[cls] = i;
  p->tail[cls] = i;
  p->count[cls]++;
  p->queued_packets++;
  p->queued_bytes += len;
  p->queued++;
  p->rate_at = -1; /* more to drain by the bound: recomputed */
  p->rate = eff_rate(p, now);
  p->rate_at = now;
  return 0;
}

static int first_class(const hd_pacer_t *p) {
  for (int c = 0; c < HD_PACE_CLASSES; c++)
    if (p->count[c]) return c;
  return -1;
}

const hd_pacer_pkt_t *hd_pacer_peek(hd_pacer_t *p, hd_time_t now) {
  int c = first_class(p);
  if (c < 0) return NULL;
  drain(p, now);
  double r = rate_at(p, now);
  if (r != 0 && p->debt >= burst_bytes(p, r)) return NULL;
  return &p->slots[p->head[c]];
}

void hd_pacer_sent(hd_pacer_t *p, hd_time_t now) {
  int c = first_class(p);
  if (c < 0) return;
  double r = rate_at(p, now), base = (double)hd_pacer_rate(p, now);
  if (base != 0 && (r == 0 || r > base)) p->delay_drains++;
  int i = pop_head(p, c);
  const hd_pacer_pkt_t *s = &p->slots[i];
  p->debt += (double)s->len;
  p->released++;
  if (now - s->enqueued > p->max_wait) p->max_wait = now - s->enqueued;
}

hd_time_t hd_pacer_next_timeout(const hd_pacer_t *p) {
  int o = oldest_slot(p);
  if (o < 0) return HD_TIME_NEVER;
  hd_time_t bound = p->slots[o].enqueued + p->cfg.max_delay;
  double r = p->rate_at == p->last ? p->rate : eff_rate(p, p->last);
  if (r == 0 || p->debt <= 0) return p->last < bound ? p->last : bound;
  /* woken when the debt is paid off, it sends one burst window's worth: one
   * wake per interval while the queue is busy, not one per packet */
  hd_time_t t = p->last + (hd_time_t)(p->debt * 8e6 / r) + 1;
  return t < bound ? t : bound;
}

size_t hd_pacer_queued_packets(const hd_pacer_t *p) { return p->queued_packets; }
size_t hd_pacer_queued_bytes(const hd_pacer_t *p) { return p->queued_bytes; }

void hd_pacer_clear(hd_pacer_t *p) {
  for (int c = 0; c < HD_PACE_CLASSES; c++)
    while (p->count[c])
      pop_head(p, c);
  p->rate_at = INT64_MIN;
}
