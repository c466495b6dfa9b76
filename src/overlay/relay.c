/* Relaying along the overlay's routes (see relay.h). */
#include "overlay/relay.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "overlay/overlay_params.h"

/* ---- the RELAY body ----
 * origin (8) | n_hops (1) | hop (1) | dst_worker (1) | flags (1) | stream (2) |
 * hop_seq (4) | inner_type (1) | n_hops x node (8) | inner message */

int hd_relay_hdr_write(const hd_relay_hdr_t *h, uint8_t *out, size_t cap) {
  if (h->n_hops < 1 || h->n_hops > HD_RELAY_MAX_HOPS || h->hop >= h->n_hops) return HD_EINVAL;
  size_t len = HD_RELAY_FIXED_LEN + 8 * (size_t)h->n_hops;
  if (cap < len) return HD_ENOSPC;
  hd_put_be64(out, h->origin);
  out[8] = h->n_hops;
  out[9] = h->hop;
  out[10] = h->dst_worker;
  out[11] = h->flags;
  hd_put_be16(out + 12, h->stream);
  hd_put_be32(out + 14, h->hop_seq);
  out[18] = h->inner_type;
  for (int i = 0; i < h->n_hops; i++)
    hd_put_be64(out + HD_RELAY_FIXED_LEN + 8 * i, h->hops[i]);
  return (int)len;
}

int hd_relay_parse(const uint8_t *pl, size_t len, hd_relay_hdr_t *h) {
  if (len < HD_RELAY_FIXED_LEN) return HD_EPROTO;
  memset(h, 0, sizeof *h);
  h->origin = hd_get_be64(pl);
  h->n_hops = pl[8];
  h->hop = pl[9];
  h->dst_worker = pl[10];
  h->flags = pl[11];
  h->stream = hd_get_be16(pl + 12);
  h->hop_seq = hd_get_be32(pl + 14);
  h->inner_type = pl[18];
  if (h->n_hops < 1 || h->n_hops > HD_RELAY_MAX_HOPS || h->hop >= h->n_hops) return HD_EPROTO;
  size_t hl = HD_RELAY_FIXED_LEN + 8 * (size_t)h->n_hops;
  if (len < hl) return HD_EPROTO;
  for (int i = 0; i < h->n_hops; i++)
    h->hops[i] = hd_get_be64(pl + HD_RELAY_FIXED_LEN + 8 * i);
  h->inner = pl + hl;
  h->inner_len = len - hl;
  return 0;
}

void hd_relay_set_hop(uint8_t *body, uint8_t hop, uint16_t stream, uint32_t hop_seq, uint8_t flags) {
  body[9] = hop;
  body[11] = flags;
  hd_put_be16(body + 12, stream);
  hd_put_be32(body + 14, hop_seq);
}

int hd_relay_detour(const hd_relay_hdr_t *h, uint64_t self, uint64_t dead, const hd_relay_path_t *own,
                    hd_relay_hdr_t *out) {
  if (h->n_hops < 1 || h->n_hops > HD_RELAY_MAX_HOPS || h->hop >= h->n_hops || own->n < 1 ||
      own->n > HD_RELAY_MAX_HOPS || own->hop[own->n - 1] != h->hops[h->n_hops - 1] || own->hop[0] == dead)
    return HD_EINVAL;
  for (int i = 0; i < own->n; i++)
    if (own->hop[i] == self) return HD_EINVAL;
  if (h->hop + 1 + own->n > HD_RELAY_MAX_HOPS) return HD_ENOSPC;
  *out = *h;
  out->n_hops = (uint8_t)(h->hop + 1 + own->n);
  out->hop = (uint8_t)(h->hop + 1);
  out->flags = 0;
  for (int i = 0; i < own->n; i++)
    out->hops[h->hop + 1 + i] = own->hop[i];
  return 0;
}

/* ---- relaying on every worker, rescue ---- */

/* splitmix64's finaliser: every input bit moves every output bit, so a
 * modulo of few workers still spreads. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

int hd_relay_worker(const hd_relay_hdr_t *h, int n_workers) {
  if (n_workers <= 1 || h->n_hops < 1 || h->n_hops > HD_RELAY_MAX_HOPS) return 0;
  uint64_t room = h->inner && h->inner_len >= 8 ? hd_get_be64(h->inner) : 0;
  uint64_t k = mix64(room ^ mix64(h->origin ^ mix64(h->hops[h->n_hops - 1])));
  return (int)(k % (uint64_t)n_workers);
}

hd_time_t hd_relay_rescue_since(hd_time_t last_echo, double srtt_ms, double rttvar_ms) {
  double back_ms = srtt_ms + 4 * rttvar_ms;
  if (back_ms < 0) back_ms = 0;
  return last_echo - (hd_time_t)(back_ms * 1000);
}

int hd_relay_rescue(const hd_relay_hdr_t *h, uint64_t self, uint64_t dead, const hd_relay_path_t *own,
                    const hd_relay_path_t *alt, hd_relay_hdr_t *out) {
  if (h->n_hops < 1 || h->n_hops > HD_RELAY_MAX_HOPS || h->hop >= h->n_hops || h->hops[h->hop] != dead)
    return HD_EINVAL;
  if (h->hop == 0) { /* sent by its origin: a new path from here */
    if (h->origin != self) return HD_EINVAL;
    uint64_t dst = h->hops[h->n_hops - 1];
    const hd_relay_path_t *cand[2] = {own, alt};
    for (int i = 0; i < 2; i++) {
      const hd_relay_path_t *p = cand[i];
      if (!p || p->n < 1 || p->n > HD_RELAY_MAX_HOPS || p->hop[0] == dead || p->hop[p->n - 1] != dst)
        continue;
      int through_self = 0;
      for (int j = 0; j < p->n; j++)
        through_self |= p->hop[j] == self;
      if (through_self) continue;
      *out = *h;
      out->n_hops = p->n;
      out->hop = 0;
      out->flags = 0;
      memset(out->hops, 0, sizeof out->hops);
      memcpy(out->hops, p->hop, sizeof p->hop[0] * p->n);
      return 0;
    }
    return HD_EINVAL;
  }
  if (h->hops[h->hop - 1] != self) return HD_EINVAL;
  hd_relay_hdr_t at = *h; /* as it arrived here */
  at.hop = (uint8_t)(h->hop - 1);
  int rc = own ? hd_relay_detour(&at, self, dead, own, out) : HD_EINVAL;
  if (rc < 0 && alt && alt->n) {
    int rc2 = hd_relay_detour(&at, self, dead, alt, out);
    rc = rc2 == 0 || rc == HD_EINVAL ? rc2 : rc;
  }
  return rc;
}

/* ---- per-hop repair: sender ---- */

void hd_hop_tx_init(hd_hop_tx_t *t) {
  memset(t, 0, sizeof *t);
  t->max_age = hd_overlay_params()->hop_cache_age;
}

void hd_hop_tx_init_n(hd_hop_tx_t *t, int n_slots) {
  hd_hop_tx_init(t);
  t->n_slots = n_slots < 1 ? 1 : n_slots; /* taken at the first keep */
}

void hd_hop_tx_free(hd_hop_tx_t *t) {
  free(t->slot);
  free(t->lane_pos);
  memset(t, 0, sizeof *t);
}

uint32_t hd_hop_tx_seq(hd_hop_tx_t *t, int lane) {
  uint32_t *s = &t->next_seq[(unsigned)lane % HD_HOP_LANES];
  if (++*s == 0) *s = 1; /* 0 is never used: a zeroed slot holds nothing */
  return *s;
}

int hd_hop_tx_keep(hd_hop_tx_t *t, int lane, uint32_t seq, const uint8_t *body, size_t len, hd_time_t now) {
  return hd_hop_tx_keep2(t, lane, seq, body, len, NULL, 0, now);
}

int hd_hop_tx_keep2(hd_hop_tx_t *t, int lane, uint32_t seq, const uint8_t *a, size_t a_len, const uint8_t *b,
                    size_t b_len, hd_time_t now) {
  size_t len = a_len + b_len;
  t->sent++;
  if (lane < 0 || lane >= HD_HOP_LANES) return HD_EINVAL;
  if (len > HD_HOP_PKT_MAX) return HD_ENOSPC;
  if (!t->slot) { /* a zeroed t (never init) takes the process's values here */
    int n = t->n_slots ? t->n_slots : hd_overlay_params()->hop_cache;
    t->slot = calloc((size_t)n, sizeof *t->slot);
    t->lane_pos = calloc((size_t)n * HD_HOP_LANES, sizeof *t->lane_pos);
    if (!t->slot || !t->lane_pos) {
      free(t->slot);
      free(t->lane_pos);
      t->slot = NULL;
      t->lane_pos = NULL;
      return HD_ENOMEM;
    }
    t->n_slots = n;
    if (!t->max_age) t->max_age = hd_overlay_params()->hop_cache_age;
  }
  uint32_t n = (uint32_t)t->n_slots, pos = (uint32_t)(t->pos++ % n);
  hd_hop_slot_t *s = &t->slot[pos];
  s->seq = seq;
  s->lane = (uint8_t)lane;
  s->len = (uint16_t)len;
  s->at = now;
  memcpy(s->data, a, a_len);
  if (b_len) memcpy(s->data + a_len, b, b_len);
  t->lane_pos[(uint32_t)lane * n + seq % n] = pos;
  return 0;
}

int hd_hop_tx_get(hd_hop_tx_t *t, int lane, uint32_t seq, hd_time_t now, uint8_t **body, size_t *len) {
  hd_hop_slot_t *s = NULL;
  if (t->slot && lane >= 0 && lane < HD_HOP_LANES) {
    uint32_t n = (uint32_t)t->n_slots;
    s = &t->slot[t->lane_pos[(uint32_t)lane * n + seq % n] % n];
  }
  if (!s || !seq || s->seq != seq || s->lane != lane || now - s->at > t->max_age) {
    t->miss++;
    return HD_ENOTFOUND;
  }
  t->resent++;
  *body = s->data;
  *len = s->len;
  return 0;
}

int hd_hop_tx_recent(const hd_hop_tx_t *t, hd_time_t since, hd_time_t now, const hd_hop_slot_t **out,
                     int cap) {
  if (!t->slot || cap <= 0) return 0;
  uint32_t n = (uint32_t)t->n_slots, have = t->pos < n ? (uint32_t)t->pos : n;
  int k = 0;
  /* newest first (kept in time order) until one is too old */
  for (uint32_t i = 0; i < have && k < cap; i++) {
    const hd_hop_slot_t *s = &t->slot[(t->pos - 1 - i) % n];
    if (s->at < since || now - s->at > t->max_age) break;
    out[k++] = s;
  }
  for (int i = 0; i < k / 2; i++) { /* oldest first */
    const hd_hop_slot_t *x = out[i];
    out[i] = out[k - 1 - i];
    out[k - 1 - i] = x;
  }
  return k;
}

/* ---- per-hop repair: receiver ---- */

void hd_hop_rx_init(hd_hop_rx_t *r) {
  memset(r, 0, sizeof *r);
  r->rtt = HD_HOP_RTT_INIT;
  const hd_overlay_params_t *op = hd_overlay_params();
  r->reorder = op->hop_reorder;
  r->min_retry = op->hop_min_retry;
  r->give_up = op->hop_give_up;
  r->max_tries = op->hop_max_tries;
}

static int seen_get(const hd_hop_rx_t *r, uint32_t s) {
  return (int)((r->seen[(s % HD_HOP_WIN) / 64] >> (s % 64)) & 1);
}
static void seen_set(hd_hop_rx_t *r, uint32_t s, int v) {
  uint64_t bit = 1ull << (s % 64);
  if (v)
    r->seen[(s % HD_HOP_WIN) / 64] |= bit;
  else
    r->seen[(s % HD_HOP_WIN) / 64] &= ~bit;
}

static void miss_remove(hd_hop_rx_t *r, int i) { r->miss[i] = r->miss[--r->n_miss]; }

static void miss_add(hd_hop_rx_t *r, uint32_t s, hd_time_t now) {
  if (r->n_miss == HD_HOP_MAX_MISSING) { /* give up the oldest hole */
    int o = 0;
    for (int i = 1; i < r->n_miss; i++)
      if ((int32_t)(r->miss[i].seq - r->miss[o].seq) < 0) o = i;
    miss_remove(r, o);
    r->lost++;
  }
  r->miss[r->n_miss++] = (hd_hop_miss_t){.seq = s, .first = now, .next = now + r->reorder};
  r->holes++;
}

int hd_hop_rx_feed(hd_hop_rx_t *r, uint32_t seq, hd_time_t now) {
  r->last_rx = now;
  if (!r->started) {
    r->started = 1;
    r->max = seq;
    seen_set(r, seq, 1);
    r->received++;
    return 1;
  }
  int32_t d = (int32_t)(seq - r->max);
  if (d > 0) {
    if (d >= HD_HOP_WIN) {
      memset(r->seen, 0, sizeof r->seen);
      r->lost += (uint64_t)r->n_miss; /* every hole left the window */
      r->n_miss = 0;
    } else {
      for (uint32_t s = r->max + 1; s != seq; s++)
        seen_set(r, s, 0);
    }
    /* the holes: only the newest HD_HOP_MAX_MISSING of a huge gap are asked for */
    uint32_t first = (uint32_t)d - 1 > HD_HOP_MAX_MISSING ? seq - HD_HOP_MAX_MISSING : r->max + 1;
    if ((uint32_t)d - 1 > HD_HOP_MAX_MISSING) r->lost += (uint32_t)d - 1 - HD_HOP_MAX_MISSING;
    for (uint32_t s = first; s != seq; s++)
      miss_add(r, s, now);
    r->max = seq;
    seen_set(r, seq, 1);
    /* holes that fell out of the window can no longer be told from duplicates */
    for (int i = 0; i < r->n_miss;)
      if ((uint32_t)(r->max - r->miss[i].seq) >= HD_HOP_WIN) {
        miss_remove(r, i);
        r->lost++;
      } else {
        i++;
      }
    r->received++;
    return 1;
  }
  if ((uint32_t)(r->max - seq) >= HD_HOP_WIN || seen_get(r, seq)) {
    r->dup++;
    return 0;
  }
  seen_set(r, seq, 1);
  r->received++;
  for (int i = 0; i < r->n_miss; i++)
    if (r->miss[i].seq == seq) {
      if (r->miss[i].tries) {
        r->repaired++;
        if (r->miss[i].tries == 1) { /* a clean sample: one NACK, one answer */
          hd_time_t sample = now - r->miss[i].asked;
          r->rtt = (7 * r->rtt + sample) / 8;
        }
      }
      miss_remove(r, i);
      break;
    }
  return 1;
}

int hd_hop_rx_poll(hd_hop_rx_t *r, hd_time_t now, uint32_t *seqs, int cap) {
  int k = 0;
  for (int i = 0; i < r->n_miss;) {
    hd_hop_miss_t *m = &r->miss[i];
    if (m->next > now) {
      i++;
      continue;
    }
    if (m->tries >= r->max_tries || now - m->first > r->give_up) {
      miss_remove(r, i);
      r->lost++;
      continue;
    }
    if (k == cap) break;
    seqs[k++] = m->seq;
    m->tries++;
    m->asked = now;
    hd_time_t wait = r->rtt * 3 / 2;
    m->next = now + (wait > r->min_retry ? wait : r->min_retry);
    r->nacked++;
    i++;
  }
  return k;
}

hd_time_t hd_hop_rx_next_timeout(const hd_hop_rx_t *r) {
  hd_time_t t = HD_TIME_NEVER;
  for (int i = 0; i < r->n_miss; i++)
    if (r->miss[i].next < t) t = r->miss[i].next;
  return t;
}

int hd_hop_nack_write(uint16_t stream, const uint32_t *seqs, int n, uint8_t *out, size_t cap) {
  if (n < 1 || n > HD_HOP_NACK_MAX) return HD_EINVAL;
  size_t len = 4 + 4 * (size_t)n;
  if (cap < len) return HD_ENOSPC;
  hd_put_be16(out, stream);
  hd_put_be16(out + 2, (uint16_t)n);
  for (int i = 0; i < n; i++)
    hd_put_be32(out + 4 + 4 * i, seqs[i]);
  return (int)len;
}

int hd_hop_nack_parse(const uint8_t *pl, size_t len, uint16_t *stream, uint32_t *seqs, int cap) {
  if (len < 4) return HD_EPROTO;
  int n = hd_get_be16(pl + 2);
  if (n < 1 || n > HD_HOP_NACK_MAX || n > cap || len != 4 + 4 * (size_t)n) return HD_EPROTO;
  *stream = hd_get_be16(pl);
  for (int i = 0; i < n; i++)
    seqs[i] = hd_get_be32(pl + 4 + 4 * i);
  return n;
}

/* ---- de-duplication ---- */

static int dd_get(const hd_dedup_t *d, uint16_t s) {
  return (int)((d->seen[(s % HD_DEDUP_WIN) / 64] >> (s % 64)) & 1);
}
static void dd_set(hd_dedup_t *d, uint16_t s, int v) {
  uint64_t bit = 1ull << (s % 64);
  if (v)
    d->seen[(s % HD_DEDUP_WIN) / 64] |= bit;
  else
    d->seen[(s % HD_DEDUP_WIN) / 64] &= ~bit;
}

int hd_dedup_check(hd_dedup_t *d, uint32_t ssrc, uint16_t seq) {
  if (!d->started || d->ssrc != ssrc) {
    memset(d->seen, 0, sizeof d->seen);
    d->started = 1;
    d->ssrc = ssrc;
    d->max = seq;
    dd_set(d, seq, 1);
    d->passed++;
    return 1;
  }
  int16_t diff = (int16_t)(uint16_t)(seq - d->max);
  if (diff > 0) {
    if (diff >= HD_DEDUP_WIN)
      memset(d->seen, 0, sizeof d->seen);
    else
      for (uint16_t s = (uint16_t)(d->max + 1); s != seq; s++)
        dd_set(d, s, 0);
    d->max = seq;
    dd_set(d, seq, 1);
    d->passed++;
    return 1;
  }
  if (-diff >= HD_DEDUP_WIN) { /* too old to know: the session judges it */
    d->passed++;
    return 1;
  }
  if (dd_get(d, seq)) {
    d->dropped++;
    return 0;
  }
  dd_set(d, seq, 1);
  d->passed++;
  return 1;
}

/* ---- routes ---- */

int hd_relay_path_same(const hd_relay_path_t *a, const hd_relay_path_t *b) {
  if (a->n != b->n) return 0;
  for (int i = 0; i < a->n; i++)
    if (a->hop[i] != b->hop[i]) return 0;
  return 1;
}

int hd_relay_dup_audio_on(double path_loss, double threshold) { return path_loss >= threshold; }

void hd_relay_route_init(hd_relay_route_t *r, uint64_t dst) {
  memset(r, 0, sizeof *r);
  r->overlap = hd_overlay_params()->relay_overlap;
  r->cur.n = 1;
  r->cur.hop[0] = dst;
}

int hd_relay_route_set(hd_relay_route_t *r, const hd_relay_path_t *path, const hd_relay_path_t *alt,
                       int dup_audio, hd_time_t now) {
  int changed = 0;
  if (path->n >= 1 && path->n <= HD_RELAY_MAX_HOPS && !hd_relay_path_same(path, &r->cur)) {
    r->old = r->cur;
    r->old_until = now + r->overlap;
    r->cur = *path;
    r->changes++;
    changed = 1;
  }
  if (alt && alt->n >= 1 && alt->n <= HD_RELAY_MAX_HOPS)
    r->alt = *alt;
  else
    r->alt.n = 0;
  r->dup_audio = dup_audio && r->alt.n;
  return changed;
}

void hd_relay_route_dup_all(hd_relay_route_t *r, int on) { r->dup_all = on && r->alt.n; }

int hd_relay_route_paths(const hd_relay_route_t *r, hd_time_t now, int media, int audio,
                         hd_relay_path_t *out) {
  int k = 0;
  out[k++] = r->cur;
  if (media && r->old.n && now < r->old_until && !hd_relay_path_same(&r->old, &r->cur)) out[k++] = r->old;
  if (media && ((audio && r->dup_audio) || (r->dup_all && r->alt.n))) {
    int dup = 0;
    for (int i = 0; i < k; i++)
      dup |= hd_relay_path_same(&out[i], &r->alt);
    if (!dup) out[k++] = r->alt;
  }
  return k;
}
