/* Byte-exact record of what went out on a media SSRC: see resend_cache.h. */
#include "sfu/resend_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sfu/txq.h"

int hd_resend_cache_init(hd_resend_cache_t *c, size_t n_slots, size_t arena_bytes) {
  if (!c) return HD_EINVAL;
  memset(c, 0, sizeof *c);
  if (n_slots == 0 || n_slots > 65536 || (n_slots & (n_slots - 1)) || arena_bytes < HD_DATAGRAM_MAX)
    return HD_EINVAL;
  c->slots = calloc(n_slots, sizeof *c->slots);
  c->arena = malloc(arena_bytes);
  if (!c->slots || !c->arena) {
    hd_resend_cache_free(c);
    return HD_ENOMEM;
  }
  c->n_slots = n_slots;
  c->arena_cap = arena_bytes;
  return 0;
}

int hd_resend_cache_keep_seqs(hd_resend_cache_t *c) {
  if (!c->went) c->went = calloc(65536 / 8, 1);
  return c->went ? 0 : HD_ENOMEM;
}

static void went_set(uint8_t *w, uint16_t seq, int on) {
  if (on)
    w[seq >> 3] |= (uint8_t)(1u << (seq & 7));
  else
    w[seq >> 3] &= (uint8_t) ~(1u << (seq & 7));
}

int hd_resend_cache_went_out(const hd_resend_cache_t *c, uint16_t seq) {
  return c && c->went && (c->went[seq >> 3] >> (seq & 7)) & 1;
}

void hd_resend_cache_free(hd_resend_cache_t *c) {
  if (!c) return;
  free(c->went);
  free(c->slots);
  free(c->arena);
  memset(c, 0, sizeof *c);
}

size_t hd_resend_cache_footprint(const hd_resend_cache_t *c) {
  return c->n_slots * sizeof *c->slots + c->arena_cap + (c->went ? 65536 / 8 : 0);
}

int hd_resend_cache_put(hd_resend_cache_t *c, uint16_t seq, const uint8_t *pkt, size_t len, hd_time_t now) {
  if (!c || !c->slots || !pkt || len == 0 || len > c->arena_cap || len > UINT16_MAX) return HD_EINVAL;
  /* a packet's bytes are contiguous: one that would straddle the arena's end
   * starts at its beginning (the tail is skipped) */
  size_t off = (size_t)(c->wpos % c->arena_cap);
  if (off + len > c->arena_cap) {
    c->wpos += c->arena_cap - off;
    off = 0;
  }
  memcpy(c->arena + off, pkt, len);
  hd_resend_slot_t *s = &c->slots[seq & (c->n_slots - 1)];
  s->pos = c->wpos;
  s->at = now ? now : 1;
  s->seq = seq;
  s->len = (uint16_t)len;
  c->wpos += len;
  c->stored++;
  if (c->went) {
    /* the seqs skipped since the newest put did not go out (this time round) */
    uint16_t ahead = (uint16_t)(seq - c->last_put);
    if (c->any_put && ahead > 0 && ahead < 32768)
      for (uint16_t q = (uint16_t)(c->last_put + 1); q != seq; q++)
        went_set(c->went, q, 0);
    went_set(c->went, seq, 1);
    if (!c->any_put || (ahead > 0 && ahead < 32768)) c->last_put = seq;
    c->any_put = 1;
  }
  return 0;
}

static const hd_resend_slot_t *live(const hd_resend_cache_t *c, uint16_t seq, hd_time_t now) {
  if (!c || !c->slots) return NULL;
  const hd_resend_slot_t *s = &c->slots[seq & (c->n_slots - 1)];
  if (!s->at || s->seq != seq || now - s->at > HD_RESEND_CACHE_MAX_AGE) return NULL;
  return s;
}

int hd_resend_cache_get(hd_resend_cache_t *c, uint16_t seq, hd_time_t now, const uint8_t **pkt, size_t *len) {
  const hd_resend_slot_t *s = live(c, seq, now);
  /* its bytes are intact while fewer than arena_cap bytes were written since they began */
  if (!s || c->wpos - s->pos > c->arena_cap) {
    if (c) c->misses++;
    return HD_ENOTFOUND;
  }
  *pkt = c->arena + (size_t)(s->pos % c->arena_cap);
  *len = s->len;
  c->hits++;
  return 0;
}

int hd_resend_cache_sent(const hd_resend_cache_t *c, uint16_t seq, hd_time_t now) {
  return live(c, seq, now) != NULL;
}

void hd_resend_cache_clear(hd_resend_cache_t *c) {
  if (!c || !c->slots) return;
  memset(c->slots, 0, c->n_slots * sizeof *c->slots);
  if (c->went) memset(c->went, 0, 65536 / 8);
  c->any_put = 0;
}
