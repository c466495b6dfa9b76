/* FlexFEC (RFC 8627) XOR repair packets: see flexfec.h. */
#include "rtc/flexfec.h"

#include <string.h>

#include "base/err.h"
#include "proto/rtp.h"

#define FEC_FIXED 8 /* FEC header: P X CC, M PT, length recovery, TS recovery (RFC 8627 §4.2.2.1) */

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v) {
  wr16(p, (uint16_t)(v >> 16));
  wr16(p + 2, (uint16_t)v);
}

static int mask_get(const uint8_t *m, int i) { return m[i / 8] >> (7 - i % 8) & 1; }
static void mask_set(uint8_t *m, int i) { m[i / 8] |= (uint8_t)(0x80 >> (i % 8)); }

/* Mask bytes on the wire for a mask of `bits` (15, 46, 109). */
static size_t mask_wire_len(int bits) { return bits == 15 ? 4 : bits == 46 ? 8 : 16; }

int hd_flexfec_parse(const uint8_t *buf, size_t len, hd_flexfec_hdr_t *h) {
  if (!buf || !h) return HD_EINVAL;
  memset(h, 0, sizeof *h);
  if (len < 12 || (buf[0] >> 6) != 2) return HD_EPROTO;
  size_t cc = buf[0] & 0x0f;
  if (cc != 1) return HD_EPROTO; /* the protected SSRC travels as the one CSRC (§4.1) */
  size_t off = 12 + 4 * cc;
  if (buf[0] & 0x10) { /* RTP header extension: skip it */
    if (len < off + 4) return HD_EPROTO;
    off += 4 + 4 * (size_t)rd16(buf + off + 2);
  }
  size_t end = len;
  if (buf[0] & 0x20) { /* RTP padding */
    if (len < 1 || buf[len - 1] == 0 || buf[len - 1] > len) return HD_EPROTO;
    end = len - buf[len - 1];
  }
  if (end < off + FEC_FIXED + 4) return HD_EPROTO;
  h->protected_ssrc = rd32(buf + 12);
  const uint8_t *f = buf + off;
  if (f[0] & 0xc0) return HD_EPROTO; /* R/F: the fixed row/column modes are not supported */
  h->recovery = f;
  const uint8_t *m = f + FEC_FIXED;
  h->sn_base = rd16(m);
  /* Mask[0-14]: 7 bits after the k bit of byte 2, 8 bits of byte 3 */
  uint32_t w = rd16(m + 2);
  for (int i = 0; i < 15; i++)
    if (w >> (14 - i) & 1) mask_set(h->mask, i);
  h->mask_bits = 15;
  if (!(w & 0x8000)) { /* k = 0: 31 more bits */
    if (end < off + FEC_FIXED + 8) return HD_EPROTO;
    uint32_t w2 = rd32(m + 4);
    for (int i = 0; i < 31; i++)
      if (w2 >> (30 - i) & 1) mask_set(h->mask, 15 + i);
    h->mask_bits = 46;
    if (!(w2 & 0x80000000u)) { /* k = 0: the last 63 bits, in the first 63 of 64 */
      if (end < off + FEC_FIXED + 16) return HD_EPROTO;
      for (int i = 0; i < 63; i++)
        if (mask_get(m + 8, i)) mask_set(h->mask, 46 + i);
      h->mask_bits = 109;
    }
  }
  int any = 0;
  for (int i = 0; i < h->mask_bits; i++)
    any |= mask_get(h->mask, i);
  if (!any) return HD_EPROTO;
  size_t hl = off + FEC_FIXED + mask_wire_len(h->mask_bits);
  h->payload = buf + hl;
  h->payload_len = end - hl;
  return 0;
}

int hd_flexfec_covers(const hd_flexfec_hdr_t *h, uint16_t seq) {
  uint16_t i = (uint16_t)(seq - h->sn_base);
  return i < h->mask_bits && mask_get(h->mask, i);
}

/* XORs packet p (whole RTP, len >= 12) into the recovery bytes rec[8] and the
 * payload acc (the bytes after its 12-byte header; acc has room for
 * HD_FLEXFEC_PKT_MAX). */
static void xor_in(uint8_t rec[8], uint8_t *acc, const uint8_t *p, size_t len) {
  rec[0] ^= p[0];
  rec[1] ^= p[1];
  uint16_t l = (uint16_t)(len - 12);
  rec[2] ^= (uint8_t)(l >> 8);
  rec[3] ^= (uint8_t)l;
  for (int i = 4; i < 8; i++)
    rec[i] ^= p[i];
  for (size_t i = 12; i < len; i++)
    acc[i - 12] ^= p[i];
}

int hd_flexfec_encode(const uint8_t *const *pkts, const size_t *lens, size_t n, uint8_t pt, uint16_t seq,
                      uint32_t ts, uint32_t ssrc, uint8_t *out, size_t cap) {
  if (!pkts || !lens || !out || n == 0 || n > HD_FLEXFEC_MAX_MASK || pt > 127) return HD_EINVAL;
  uint32_t pssrc = 0;
  uint16_t base = 0;
  size_t maxlen = 0;
  uint8_t mask[14] = {0};
  int top = 0;
  for (size_t i = 0; i < n; i++) {
    if (!pkts[i] || lens[i] < 12 || lens[i] > HD_FLEXFEC_PKT_MAX || (pkts[i][0] >> 6) != 2) return HD_EINVAL;
    uint32_t s = rd32(pkts[i] + 8);
    uint16_t q = rd16(pkts[i] + 2);
    if (i == 0) {
      pssrc = s;
      base = q;
      for (size_t j = 1; j < n; j++) /* the base is the oldest seq (RFC 1982 order) */
        if (pkts[j] && lens[j] >= 12 && (int16_t)(rd16(pkts[j] + 2) - base) < 0) base = rd16(pkts[j] + 2);
    }
    if (s != pssrc) return HD_EINVAL;
    uint16_t k = (uint16_t)(q - base);
    if (k >= HD_FLEXFEC_MAX_MASK || mask_get(mask, k)) return HD_EINVAL;
    mask_set(mask, k);
    if (k > top) top = k;
    if (lens[i] - 12 > maxlen) maxlen = lens[i] - 12;
  }
  int bits = top < 15 ? 15 : top < 46 ? 46 : 109;
  size_t hl = HD_FLEXFEC_RTP_HDR + FEC_FIXED + mask_wire_len(bits);
  if (cap < hl + maxlen) return HD_ENOSPC;
  memset(out, 0, hl + maxlen);
  out[0] = 0x80 | 1; /* V=2, CC=1 */
  out[1] = pt;
  wr16(out + 2, seq);
  wr32(out + 4, ts);
  wr32(out + 8, ssrc);
  wr32(out + 12, pssrc);
  uint8_t *f = out + HD_FLEXFEC_RTP_HDR;
  uint8_t *acc = out + hl;
  for (size_t i = 0; i < n; i++)
    xor_in(f, acc, pkts[i], lens[i]);
  f[0] &= 0x3f; /* R = F = 0 in place of the XORed version bits */
  uint8_t *m = f + FEC_FIXED;
  wr16(m, base);
  uint16_t w = bits == 15 ? 0x8000 : 0;
  for (int i = 0; i < 15; i++)
    if (mask_get(mask, i)) w |= (uint16_t)(1u << (14 - i));
  wr16(m + 2, w);
  if (bits > 15) {
    uint32_t w2 = bits == 46 ? 0x80000000u : 0;
    for (int i = 0; i < 31; i++)
      if (mask_get(mask, 15 + i)) w2 |= 1u << (30 - i);
    wr32(m + 4, w2);
  }
  if (bits > 46)
    for (int i = 0; i < 63; i++)
      if (mask_get(mask, 46 + i)) mask_set(m + 8, i);
  return (int)(hl + maxlen);
}

/* ---- receiver ---- */

void hd_flexfec_zero_ext(uint8_t *pkt, size_t len, uint8_t ext_id) {
  hd_rtp_hdr_t h;
  const uint8_t *d;
  size_t dl;
  if (!pkt || !ext_id || hd_rtp_parse(pkt, len, &h) < 0 || hd_rtp_ext_find(&h, ext_id, &d, &dl) < 0) return;
  memset(pkt + (d - pkt), 0, dl);
}

void hd_flexfec_dec_init(hd_flexfec_dec_t *d, uint32_t ssrc) {
  memset(d, 0, sizeof *d);
  d->ssrc = ssrc;
}

static hd_flexfec_slot_t *media_slot(hd_flexfec_dec_t *d, uint16_t seq) {
  return &d->media[seq % HD_FLEXFEC_DEC_MEDIA];
}

static int have(hd_flexfec_dec_t *d, uint16_t seq) {
  const hd_flexfec_slot_t *s = media_slot(d, seq);
  return s->len && s->seq == seq;
}

/* Whether seq is old enough that its slot may already hold a newer packet. */
static int too_old(const hd_flexfec_dec_t *d, uint16_t seq) {
  return d->have_max && (int16_t)(d->max_seq - seq) >= HD_FLEXFEC_DEC_MEDIA;
}

static void store(hd_flexfec_dec_t *d, uint16_t seq, const uint8_t *p, size_t len) {
  hd_flexfec_slot_t *s = media_slot(d, seq);
  s->seq = seq;
  s->len = (uint16_t)len;
  memcpy(s->data, p, len);
  if (!d->have_max || (int16_t)(seq - d->max_seq) > 0) {
    d->max_seq = seq;
    d->have_max = 1;
  }
}

/* Tries repair packet slot i: 1 = recovered one packet (stored and given to
 * fn), 0 = nothing to do (the slot is freed when it can never help). */
static int try_one(hd_flexfec_dec_t *d, size_t i, hd_flexfec_recovered_fn fn, void *ud) {
  hd_flexfec_fec_slot_t *fs = &d->fec[i];
  hd_flexfec_hdr_t h;
  if (!fs->len || hd_flexfec_parse(fs->data, fs->len, &h) < 0) {
    fs->len = 0;
    return 0;
  }
  int missing = 0;
  uint16_t miss = 0;
  for (int k = 0; k < h.mask_bits; k++) {
    if (!mask_get(h.mask, k)) continue;
    uint16_t q = (uint16_t)(h.sn_base + k);
    if (have(d, q)) continue;
    if (too_old(d, q)) { /* its neighbours are gone from the ring: never recoverable */
      fs->len = 0;
      d->unrecoverable_dropped++;
      return 0;
    }
    missing++;
    miss = q;
  }
  if (missing == 0) fs->len = 0; /* all here: done with it */
  if (missing != 1) return 0;
  uint8_t rec[8], pkt[HD_FLEXFEC_PKT_MAX];
  memcpy(rec, h.recovery, 8);
  size_t plen = h.payload_len > HD_FLEXFEC_PKT_MAX - 12 ? HD_FLEXFEC_PKT_MAX - 12 : h.payload_len;
  memset(pkt, 0, sizeof pkt);
  memcpy(pkt + 12, h.payload, plen);
  for (int k = 0; k < h.mask_bits; k++) {
    if (!mask_get(h.mask, k)) continue;
    uint16_t q = (uint16_t)(h.sn_base + k);
    if (q == miss) continue;
    const hd_flexfec_slot_t *s = media_slot(d, q);
    xor_in(rec, pkt + 12, s->data, s->len);
  }
  fs->len = 0; /* used up: its one unknown is now known */
  size_t len = 12 + (size_t)rd16(rec + 2);
  if (len > HD_FLEXFEC_PKT_MAX || len - 12 > plen) {
    d->fec_malformed++; /* the lengths do not add up: a corrupt or foreign packet */
    return 0;
  }
  pkt[0] = (uint8_t)(0x80 | (rec[0] & 0x3f));
  pkt[1] = rec[1];
  wr16(pkt + 2, miss);
  memcpy(pkt + 4, rec + 4, 4);
  wr32(pkt + 8, h.protected_ssrc);
  store(d, miss, pkt, len);
  d->recovered++;
  if (fn) fn(ud, pkt, len);
  return 1;
}

/* Recovers until no stored repair packet yields another packet. */
static int recover_all(hd_flexfec_dec_t *d, hd_flexfec_recovered_fn fn, void *ud) {
  int total = 0, got;
  do {
    got = 0;
    for (size_t i = 0; i < HD_FLEXFEC_DEC_FEC; i++)
      got += try_one(d, i, fn, ud);
    total += got;
  } while (got);
  return total;
}

int hd_flexfec_dec_media(hd_flexfec_dec_t *d, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn,
                         void *ud) {
  if (!d || !pkt) return HD_EINVAL;
  if (len < 12 || len > HD_FLEXFEC_PKT_MAX || (pkt[0] >> 6) != 2) return HD_EPROTO;
  uint32_t ssrc = rd32(pkt + 8);
  if (d->ssrc && ssrc != d->ssrc) return HD_EINVAL;
  uint16_t seq = rd16(pkt + 2);
  if (have(d, seq)) return 0; /* a duplicate (or the repair of one we recovered) */
  if (too_old(d, seq)) return 0;
  store(d, seq, pkt, len);
  return recover_all(d, fn, ud);
}

int hd_flexfec_dec_fec(hd_flexfec_dec_t *d, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn,
                       void *ud) {
  if (!d || !pkt) return HD_EINVAL;
  hd_flexfec_hdr_t h;
  if (len > HD_FLEXFEC_PKT_MAX || hd_flexfec_parse(pkt, len, &h) < 0) {
    d->fec_malformed++;
    return HD_EPROTO;
  }
  if (!d->ssrc) d->ssrc = h.protected_ssrc;
  if (h.protected_ssrc != d->ssrc) {
    d->fec_malformed++;
    return HD_EPROTO;
  }
  d->fec_received++;
  /* a free slot, else the oldest (ring order) */
  size_t slot = d->fec_next;
  for (size_t i = 0; i < HD_FLEXFEC_DEC_FEC; i++)
    if (!d->fec[(d->fec_next + i) % HD_FLEXFEC_DEC_FEC].len) {
      slot = (d->fec_next + i) % HD_FLEXFEC_DEC_FEC;
      break;
    }
  if (d->fec[slot].len) d->unrecoverable_dropped++;
  d->fec[slot].len = (uint16_t)len;
  memcpy(d->fec[slot].data, pkt, len);
  d->fec_next = (slot + 1) % HD_FLEXFEC_DEC_FEC;
  return recover_all(d, fn, ud);
}

int hd_flexfec_plan(double loss, hd_time_t rtt) {
  if (!(loss >= HD_FLEXFEC_MIN_LOSS)) return 0;
  if (rtt > 0 && rtt < HD_FLEXFEC_NACK_RTT && loss < HD_FLEXFEC_NACK_LOSS) return 0;
  double g = 1.0 / (2.0 * loss);
  int n = (int)(g + 0.5);
  if (n < 2) n = 2;
  if (n > HD_FLEXFEC_MAX_GROUP) n = HD_FLEXFEC_MAX_GROUP;
  return n;
}
