/* Retransmission cache for NACK answering (RFC 4585 §6.2.1, RFC 4588). See
 * rtp_cache.h. Slot = seq & (n-1), so lookup is O(1) and a new packet evicts the
 * one n seqs older without any bookkeeping. */
#include "rtc/rtp_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "proto/rtp.h"

int hd_rtp_cache_init(hd_rtp_cache_t *c, size_t n) {
  if (!c) return HD_EINVAL;
  memset(c, 0, sizeof *c);
  if (n == 0 || n > HD_RTP_CACHE_MAX || (n & (n - 1))) return HD_EINVAL;
  c->slots = calloc(n, sizeof *c->slots);
  c->slab = malloc(n * HD_RTP_CACHE_PKT_MAX);
  if (!c->slots || !c->slab) {
    free(c->slots);
    free(c->slab);
    c->slots = NULL;
    c->slab = NULL;
    return HD_ENOMEM;
  }
  c->n = n;
  c->max_age = HD_RTP_CACHE_DEFAULT_MAX_AGE;
  c->min_resend_interval = HD_RTP_CACHE_DEFAULT_RESEND;
  return 0;
}

void hd_rtp_cache_set_limits(hd_rtp_cache_t *c, hd_time_t max_age, hd_time_t min_resend_interval) {
  c->max_age = max_age;
  c->min_resend_interval = min_resend_interval;
}

int hd_rtp_cache_put(hd_rtp_cache_t *c, const uint8_t *pkt, size_t len, hd_time_t now) {
  if (!c || !c->slots || !pkt) return HD_EINVAL;
  if (len > HD_RTP_CACHE_PKT_MAX) return HD_EINVAL;
  if (!hd_rtp_is_rtp(pkt, len)) return HD_EPROTO;
  uint16_t seq = hd_get_u16(pkt + 2);
  hd_rtp_cache_slot_t *s = &c->slots[seq & (c->n - 1)];
  /* A late packet must not evict a newer one sharing its slot. */
  if (s->len && s->seq != seq && hd_seq_newer(s->seq, seq) && now - s->stored <= c->max_age) return 0;
  memcpy(c->slab + (size_t)(seq & (c->n - 1)) * HD_RTP_CACHE_PKT_MAX, pkt, len);
  s->seq = seq;
  s->len = (uint16_t)len;
  s->stored = now;
  s->last_sent = HD_TIME_NEVER;
  return 0;
}

static hd_rtp_cache_slot_t *lookup(const hd_rtp_cache_t *c, uint16_t seq, hd_time_t now) {
  if (!c || !c->slots) return NULL;
  hd_rtp_cache_slot_t *s = &c->slots[seq & (c->n - 1)];
  if (!s->len || s->seq != seq || now - s->stored > c->max_age) return NULL;
  return s;
}

int hd_rtp_cache_peek(const hd_rtp_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt,
                      size_t *len) {
  hd_rtp_cache_slot_t *s = lookup(c, seq, now);
  if (!s) return HD_ENOTFOUND;
  *pkt = c->slab + (size_t)(seq & (c->n - 1)) * HD_RTP_CACHE_PKT_MAX;
  *len = s->len;
  return 0;
}

int hd_rtp_cache_get(hd_rtp_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt, size_t *len) {
  hd_rtp_cache_slot_t *s = lookup(c, seq, now);
  if (!s) return HD_ENOTFOUND;
  if (s->last_sent != HD_TIME_NEVER && now - s->last_sent < c->min_resend_interval) return HD_EAGAIN;
  s->last_sent = now;
  *pkt = c->slab + (size_t)(seq & (c->n - 1)) * HD_RTP_CACHE_PKT_MAX;
  *len = s->len;
  return 0;
}

void hd_rtp_cache_clear(hd_rtp_cache_t *c) {
  if (c && c->slots) memset(c->slots, 0, c->n * sizeof *c->slots);
}

void hd_rtp_cache_free(hd_rtp_cache_t *c) {
  if (!c) return;
  free(c->slots);
  free(c->slab);
  c->slots = NULL;
  c->slab = NULL;
  c->n = 0;
}
