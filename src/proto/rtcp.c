/* RTCP parse/build (RFC 3550 §6, RFC 4585, RFC 5104, RFC 5506, REMB, TWCC
 * feedback) and NTP/RTT helpers. See rtcp.h. */
#include "proto/rtcp.h"

#include <string.h>

#include "base/bytes.h"
#include "base/err.h"

/* ---- compound walking ---- */

void hd_rtcp_iter_init(hd_rtcp_iter_t *it, const uint8_t *buf, size_t len) {
  it->p = buf;
  it->len = buf ? len : 0;
  it->off = 0;
}

int hd_rtcp_next(hd_rtcp_iter_t *it, hd_rtcp_pkt_t *out) {
  if (it->off >= it->len) return 0;
  const uint8_t *p = it->p + it->off;
  size_t left = it->len - it->off;
  int rc;
  if (left < 4) {
    rc = HD_ETRUNC;
    goto fail;
  }
  if ((p[0] >> 6) != 2) {
    rc = HD_EPROTO;
    goto fail;
  }
  size_t plen = ((size_t)hd_get_u16(p + 2) + 1) * 4;
  if (plen > left) {
    rc = HD_ETRUNC;
    goto fail;
  }
  size_t pad = 0;
  if (p[0] & 0x20) {
    pad = p[plen - 1];
    /* The count includes itself; padding cannot eat the common header. */
    if (pad == 0 || pad > plen - 4) {
      rc = HD_EPROTO;
      goto fail;
    }
  }
  out->padding = (p[0] >> 5) & 1;
  out->count = p[0] & 0x1f;
  out->pt = p[1];
  out->pkt = p;
  out->pkt_len = plen;
  out->body = p + 4;
  out->body_len = plen - 4 - pad;
  it->off += plen;
  return 1;
fail:
  it->off = it->len; /* an error ends the walk: later offsets are meaningless */
  return rc;
}

int hd_rtcp_validate(const uint8_t *buf, size_t len, int require_compound) {
  if (!buf || len == 0) return HD_ETRUNC;
  hd_rtcp_iter_t it;
  hd_rtcp_pkt_t p;
  hd_rtcp_iter_init(&it, buf, len);
  int n = 0, rc;
  while ((rc = hd_rtcp_next(&it, &p)) == 1) {
    if (n == 0 && require_compound && p.pt != HD_RTCP_SR && p.pt != HD_RTCP_RR) return HD_EPROTO;
    if (p.pt < 192 || p.pt > 223) return HD_EPROTO; /* not RTCP per RFC 5761 */
    n++;
  }
  return rc < 0 ? rc : n;
}

/* Writes the common header with a zero length; patched by finish_pkt. */
static size_t begin_pkt(hd_writer_t *w, uint8_t count, uint8_t pt) {
  size_t start = w->len;
  hd_wr_u8(w, (uint8_t)(0x80 | (count & 0x1f)));
  hd_wr_u8(w, pt);
  hd_wr_u16(w, 0);
  return start;
}

/* Pads the body to 32 bits (zeros, or RTCP padding when use_pad_bit), sets the
 * length field and returns the packet length or an error. */
static int finish_pkt(hd_writer_t *w, size_t start, int use_pad_bit) {
  size_t body = w->len - start;
  size_t pad = (4 - body % 4) % 4;
  if (pad && use_pad_bit) {
    hd_wr_zeros(w, pad - 1);
    hd_wr_u8(w, (uint8_t)pad);
    if (!w->err) w->p[start] |= 0x20;
  } else {
    hd_wr_zeros(w, pad);
  }
  if (w->err) return w->err;
  size_t words = (w->len - start) / 4 - 1;
  if (words > 0xffff) return HD_EINVAL;
  hd_put_u16(w->p + start + 2, (uint16_t)words);
  return (int)(w->len - start);
}

/* ---- SR / RR ---- */

static void read_rb(hd_reader_t *r, hd_rtcp_rb_t *rb) {
  rb->ssrc = hd_rd_u32(r);
  uint32_t v = hd_rd_u32(r);
  rb->fraction_lost = (uint8_t)(v >> 24);
  int32_t cl = (int32_t)(v & 0xffffff);
  if (cl & 0x800000) cl -= 0x1000000;
  rb->cumulative_lost = cl;
  rb->ext_highest_seq = hd_rd_u32(r);
  rb->jitter = hd_rd_u32(r);
  rb->lsr = hd_rd_u32(r);
  rb->dlsr = hd_rd_u32(r);
}

static void write_rb(hd_writer_t *w, const hd_rtcp_rb_t *rb) {
  int32_t cl = rb->cumulative_lost;
  if (cl > 0x7fffff) cl = 0x7fffff;
  if (cl < -0x800000) cl = -0x800000;
  hd_wr_u32(w, rb->ssrc);
  hd_wr_u32(w, ((uint32_t)rb->fraction_lost << 24) | ((uint32_t)cl & 0xffffff));
  hd_wr_u32(w, rb->ext_highest_seq);
  hd_wr_u32(w, rb->jitter);
  hd_wr_u32(w, rb->lsr);
  hd_wr_u32(w, rb->dlsr);
}

int hd_rtcp_parse_sr(const hd_rtcp_pkt_t *p, hd_rtcp_sr_t *out) {
  if (!p || !out || p->pt != HD_RTCP_SR) return HD_EINVAL;
  if (p->body_len < 24 + (size_t)p->count * 24) return HD_EPROTO;
  hd_reader_t r;
  hd_reader_init(&r, p->body, p->body_len);
  out->ssrc = hd_rd_u32(&r);
  out->ntp = hd_rd_u64(&r);
  out->rtp_ts = hd_rd_u32(&r);
  out->packet_count = hd_rd_u32(&r);
  out->octet_count = hd_rd_u32(&r);
  out->rb_count = p->count;
  for (unsigned i = 0; i < p->count; i++)
    read_rb(&r, &out->rb[i]);
  return r.err ? HD_EPROTO : 0;
}

int hd_rtcp_parse_rr(const hd_rtcp_pkt_t *p, hd_rtcp_rr_t *out) {
  if (!p || !out || p->pt != HD_RTCP_RR) return HD_EINVAL;
  if (p->body_len < 4 + (size_t)p->count * 24) return HD_EPROTO;
  hd_reader_t r;
  hd_reader_init(&r, p->body, p->body_len);
  out->ssrc = hd_rd_u32(&r);
  out->rb_count = p->count;
  for (unsigned i = 0; i < p->count; i++)
    read_rb(&r, &out->rb[i]);
  return r.err ? HD_EPROTO : 0;
}

int hd_rtcp_build_sr(const hd_rtcp_sr_t *sr, uint8_t *out, size_t cap) {
  if (!sr || !out || sr->rb_count > HD_RTCP_MAX_RB) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t s = begin_pkt(&w, sr->rb_count, HD_RTCP_SR);
  hd_wr_u32(&w, sr->ssrc);
  hd_wr_u64(&w, sr->ntp);
  hd_wr_u32(&w, sr->rtp_ts);
  hd_wr_u32(&w, sr->packet_count);
  hd_wr_u32(&w, sr->octet_count);
  for (unsigned i = 0; i < sr->rb_count; i++)
    write_rb(&w, &sr->rb[i]);
  return finish_pkt(&w, s, 0);
}

int hd_rtcp_build_rr(const hd_rtcp_rr_t *rr, uint8_t *out, size_t cap) {
  if (!rr || !out || rr->rb_count > HD_RTCP_MAX_RB) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t s = begin_pkt(&w, rr->rb_count, HD_RTCP_RR);
  hd_wr_u32(&w, rr->ssrc);
  for (unsigned i = 0; i < rr->rb_count; i++)
    write_rb(&w, &rr->rb[i]);
  return finish_pkt(&w, s, 0);
}

/* ---- SDES ---- */

int hd_rtcp_parse_sdes(const hd_rtcp_pkt_t *p, hd_rtcp_sdes_t *out) {
  if (!p || !out || p->pt != HD_RTCP_SDES) return HD_EINVAL;
  const uint8_t *b = p->body;
  size_t len = p->body_len, off = 0;
  out->chunk_count = 0;
  for (unsigned c = 0; c < p->count; c++) {
    if (len - off < 4) return HD_EPROTO;
    hd_rtcp_sdes_chunk_t *ch = &out->chunks[c];
    ch->ssrc = hd_get_u32(b + off);
    ch->item_count = 0;
    off += 4;
    for (;;) {
      if (off >= len) return HD_EPROTO; /* no END item */
      uint8_t type = b[off];
      if (type == HD_RTCP_SDES_END) {
        off++;
        /* Chunks end on a 32-bit boundary (body starts 4 bytes into the packet). */
        off = (off + 3) & ~(size_t)3;
        if (off > len) return HD_EPROTO;
        break;
      }
      if (len - off < 2 || len - off - 2 < b[off + 1]) return HD_EPROTO;
      if (ch->item_count >= HD_RTCP_MAX_SDES_ITEMS) return HD_ENOSPC;
      hd_rtcp_sdes_item_t *it = &ch->items[ch->item_count++];
      it->type = type;
      it->len = b[off + 1];
      it->data = b + off + 2;
      off += 2 + (size_t)it->len;
    }
    out->chunk_count++;
  }
  return 0;
}

int hd_rtcp_sdes_find(const hd_rtcp_sdes_t *s, uint32_t ssrc, uint8_t type, const uint8_t **data,
                      size_t *len) {
  for (unsigned c = 0; c < s->chunk_count && c < HD_RTCP_MAX_SDES_CHUNKS; c++) {
    const hd_rtcp_sdes_chunk_t *ch = &s->chunks[c];
    if (ch->ssrc != ssrc) continue;
    for (unsigned i = 0; i < ch->item_count && i < HD_RTCP_MAX_SDES_ITEMS; i++) {
      if (ch->items[i].type == type) {
        *data = ch->items[i].data;
        *len = ch->items[i].len;
        return 0;
      }
    }
  }
  return HD_ENOTFOUND;
}

int hd_rtcp_build_sdes(const hd_rtcp_sdes_t *s, uint8_t *out, size_t cap) {
  if (!s || !out || s->chunk_count > HD_RTCP_MAX_SDES_CHUNKS) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t st = begin_pkt(&w, s->chunk_count, HD_RTCP_SDES);
  for (unsigned c = 0; c < s->chunk_count; c++) {
    const hd_rtcp_sdes_chunk_t *ch = &s->chunks[c];
    if (ch->item_count > HD_RTCP_MAX_SDES_ITEMS) return HD_EINVAL;
    hd_wr_u32(&w, ch->ssrc);
    for (unsigned i = 0; i < ch->item_count; i++) {
      const hd_rtcp_sdes_item_t *it = &ch->items[i];
      if (it->type == HD_RTCP_SDES_END || (it->len && !it->data)) return HD_EINVAL;
      hd_wr_u8(&w, it->type);
      hd_wr_u8(&w, it->len);
      hd_wr_bytes(&w, it->data, it->len);
    }
    /* At least one null octet ends the item list, then pad to 32 bits. */
    hd_wr_u8(&w, 0);
    hd_wr_zeros(&w, (4 - (w.len - st) % 4) % 4);
  }
  return finish_pkt(&w, st, 0);
}

int hd_rtcp_build_sdes_cname(uint32_t ssrc, const char *cname, uint8_t *out, size_t cap) {
  if (!cname) return HD_EINVAL;
  size_t n = strlen(cname);
  if (n == 0 || n > 255) return HD_EINVAL;
  hd_rtcp_sdes_t s;
  s.chunk_count = 1;
  s.chunks[0].ssrc = ssrc;
  s.chunks[0].item_count = 1;
  s.chunks[0].items[0].type = HD_RTCP_SDES_CNAME;
  s.chunks[0].items[0].len = (uint8_t)n;
  s.chunks[0].items[0].data = (const uint8_t *)cname;
  return hd_rtcp_build_sdes(&s, out, cap);
}

/* ---- BYE ---- */

int hd_rtcp_parse_bye(const hd_rtcp_pkt_t *p, hd_rtcp_bye_t *out) {
  if (!p || !out || p->pt != HD_RTCP_BYE) return HD_EINVAL;
  size_t need = (size_t)p->count * 4;
  if (p->body_len < need) return HD_EPROTO;
  out->count = p->count;
  for (unsigned i = 0; i < p->count; i++)
    out->ssrcs[i] = hd_get_u32(p->body + 4 * i);
  out->reason = NULL;
  out->reason_len = 0;
  if (p->body_len > need) {
    uint8_t rl = p->body[need];
    if (rl > p->body_len - need - 1) return HD_EPROTO;
    if (rl) {
      out->reason = p->body + need + 1;
      out->reason_len = rl;
    }
  }
  return 0;
}

int hd_rtcp_build_bye(const uint32_t *ssrcs, size_t n, const char *reason, uint8_t *out, size_t cap) {
  if (!out || n > HD_RTCP_MAX_BYE_SSRCS || (n && !ssrcs)) return HD_EINVAL;
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 255) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t st = begin_pkt(&w, (uint8_t)n, HD_RTCP_BYE);
  for (size_t i = 0; i < n; i++)
    hd_wr_u32(&w, ssrcs[i]);
  if (rl) {
    hd_wr_u8(&w, (uint8_t)rl);
    hd_wr_bytes(&w, reason, rl);
  }
  return finish_pkt(&w, st, 0);
}

/* ---- feedback ---- */

int hd_rtcp_parse_fb(const hd_rtcp_pkt_t *p, hd_rtcp_fb_t *out) {
  if (!p || !out || (p->pt != HD_RTCP_RTPFB && p->pt != HD_RTCP_PSFB)) return HD_EINVAL;
  if (p->body_len < 8) return HD_EPROTO;
  out->pt = p->pt;
  out->fmt = p->count;
  out->sender_ssrc = hd_get_u32(p->body);
  out->media_ssrc = hd_get_u32(p->body + 4);
  out->fci = p->body + 8;
  out->fci_len = p->body_len - 8;
  return 0;
}

static size_t begin_fb(hd_writer_t *w, uint8_t fmt, uint8_t pt, uint32_t sender, uint32_t media) {
  size_t st = begin_pkt(w, fmt, pt);
  hd_wr_u32(w, sender);
  hd_wr_u32(w, media);
  return st;
}

int hd_rtcp_nack_expand(const hd_rtcp_fb_t *fb, uint16_t *seqs, size_t cap) {
  if (!fb || (!seqs && cap)) return HD_EINVAL;
  if (fb->fci_len == 0 || fb->fci_len % 4) return HD_EPROTO;
  size_t n = 0;
  for (size_t off = 0; off < fb->fci_len; off += 4) {
    uint16_t pid = hd_get_u16(fb->fci + off);
    uint16_t blp = hd_get_u16(fb->fci + off + 2);
    if (n >= cap) return HD_ENOSPC;
    seqs[n++] = pid;
    for (int b = 0; b < 16; b++) {
      if (!(blp & (1u << b))) continue;
      if (n >= cap) return HD_ENOSPC;
      seqs[n++] = (uint16_t)(pid + b + 1);
    }
  }
  return n > 0x7fffffff ? HD_ENOSPC : (int)n;
}

int hd_rtcp_build_nack(uint32_t sender_ssrc, uint32_t media_ssrc, const uint16_t *seqs, size_t n,
                       uint8_t *out, size_t cap) {
  if (!out || !seqs || n == 0) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t st = begin_fb(&w, HD_RTCP_FMT_NACK, HD_RTCP_RTPFB, sender_ssrc, media_ssrc);
  uint16_t pid = seqs[0], blp = 0;
  for (size_t i = 1; i < n; i++) {
    uint16_t d = (uint16_t)(seqs[i] - pid);
    if (d == 0) continue;
    if (d <= 16) {
      blp |= (uint16_t)(1u << (d - 1));
      continue;
    }
    hd_wr_u16(&w, pid);
    hd_wr_u16(&w, blp);
    pid = seqs[i];
    blp = 0;
  }
  hd_wr_u16(&w, pid);
  hd_wr_u16(&w, blp);
  return finish_pkt(&w, st, 0);
}

int hd_rtcp_build_pli(uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t *out, size_t cap) {
  if (!out) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t st = begin_fb(&w, HD_RTCP_FMT_PLI, HD_RTCP_PSFB, sender_ssrc, media_ssrc);
  return finish_pkt(&w, st, 0);
}

int hd_rtcp_fir_parse(const hd_rtcp_fb_t *fb, hd_rtcp_fir_entry_t *entries, size_t cap) {
  if (!fb || (!entries && cap)) return HD_EINVAL;
  if (fb->fci_len == 0 || fb->fci_len % 8) return HD_EPROTO;
  size_t n = fb->fci_len / 8;
  if (n > cap) return HD_ENOSPC;
  for (size_t i = 0; i < n; i++) {
    entries[i].ssrc = hd_get_u32(fb->fci + 8 * i);
    entries[i].seq_nr = fb->fci[8 * i + 4];
  }
  return (int)n;
}

int hd_rtcp_build_fir(uint32_t sender_ssrc, const hd_rtcp_fir_entry_t *entries, size_t n, uint8_t *out,
                      size_t cap) {
  if (!out || !entries || n == 0 || n > 0x3fff) return HD_EINVAL;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  /* RFC 5104 §4.3.1.2: media source SSRC is unused and set to 0. */
  size_t st = begin_fb(&w, HD_RTCP_FMT_FIR, HD_RTCP_PSFB, sender_ssrc, 0);
  for (size_t i = 0; i < n; i++) {
    hd_wr_u32(&w, entries[i].ssrc);
    hd_wr_u8(&w, entries[i].seq_nr);
    hd_wr_zeros(&w, 3);
  }
  return finish_pkt(&w, st, 0);
}

int hd_rtcp_remb_parse(const hd_rtcp_fb_t *fb, hd_rtcp_remb_t *out) {
  if (!fb || !out || fb->pt != HD_RTCP_PSFB || fb->fmt != HD_RTCP_FMT_AFB) return HD_EINVAL;
  if (fb->fci_len < 4 || memcmp(fb->fci, "REMB", 4) != 0) return HD_ENOTFOUND;
  if (fb->fci_len < 8) return HD_EPROTO;
  uint8_t n = fb->fci[4];
  if (fb->fci_len < 8 + (size_t)n * 4) return HD_EPROTO;
  if (n > HD_RTCP_MAX_REMB_SSRCS) return HD_ENOSPC;
  uint8_t exp = fb->fci[5] >> 2;
  uint64_t mant = ((uint64_t)(fb->fci[5] & 3) << 16) | hd_get_u16(fb->fci + 6);
  /* 18-bit mantissa shifted by up to 63 can overflow: saturate. */
  if (mant && exp > 0 && (exp >= 64 || mant > (UINT64_MAX >> exp)))
    out->bitrate_bps = UINT64_MAX;
  else
    out->bitrate_bps = mant << exp;
  out->ssrc_count = n;
  for (unsigned i = 0; i < n; i++)
    out->ssrcs[i] = hd_get_u32(fb->fci + 8 + 4 * i);
  return 0;
}

int hd_rtcp_build_remb(uint32_t sender_ssrc, uint64_t bitrate_bps, const uint32_t *ssrcs, size_t n,
                       uint8_t *out, size_t cap) {
  if (!out || n > 255 || (n && !ssrcs)) return HD_EINVAL;
  uint8_t exp = 0;
  uint64_t mant = bitrate_bps;
  while (mant > 0x3ffff) {
    mant >>= 1;
    exp++;
  }
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  /* draft-alvestrand-rmcat-remb §2.2: media source SSRC is always 0. */
  size_t st = begin_fb(&w, HD_RTCP_FMT_AFB, HD_RTCP_PSFB, sender_ssrc, 0);
  hd_wr_bytes(&w, "REMB", 4);
  hd_wr_u8(&w, (uint8_t)n);
  hd_wr_u8(&w, (uint8_t)((exp << 2) | (mant >> 16)));
  hd_wr_u16(&w, (uint16_t)mant);
  for (size_t i = 0; i < n; i++)
    hd_wr_u32(&w, ssrcs[i]);
  return finish_pkt(&w, st, 0);
}

/* ---- transport-wide CC feedback ---- */

int hd_rtcp_twcc_parse(const hd_rtcp_fb_t *fb, hd_rtcp_twcc_t *out, hd_rtcp_twcc_pkt_t *pkts, size_t cap) {
  if (!fb || !out || (!pkts && cap)) return HD_EINVAL;
  if (fb->pt != HD_RTCP_RTPFB || fb->fmt != HD_RTCP_FMT_TWCC) return HD_EINVAL;
  if (fb->fci_len < 8) return HD_EPROTO;
  const uint8_t *f = fb->fci;
  size_t len = fb->fci_len, off = 8;
  hd_rtcp_twcc_t h;
  h.sender_ssrc = fb->sender_ssrc;
  h.media_ssrc = fb->media_ssrc;
  h.base_seq = hd_get_u16(f);
  h.status_count = hd_get_u16(f + 2);
  int32_t ref = (int32_t)(((uint32_t)f[4] << 16) | ((uint32_t)f[5] << 8) | f[6]);
  if (ref & 0x800000) ref -= 0x1000000;
  h.ref_time = ref;
  h.fb_count = f[7];
  size_t count = h.status_count;
  if (count == 0) return HD_EPROTO;
  if (count > cap) return HD_ENOSPC;

  /* Pass 1: packet status chunks. */
  size_t k = 0;
  while (k < count) {
    if (len - off < 2) return HD_EPROTO;
    uint16_t c = hd_get_u16(f + off);
    off += 2;
    if (!(c & 0x8000)) { /* run length chunk */
      uint8_t st = (c >> 13) & 3;
      size_t run = c & 0x1fff;
      if (st == 3) return HD_EPROTO;
      for (size_t i = 0; i < run && k < count; i++)
        pkts[k++].status = st;
    } else if (!(c & 0x4000)) { /* 14 one-bit symbols, MSB first */
      for (int i = 13; i >= 0 && k < count; i--)
        pkts[k++].status = (c >> i) & 1;
    } else { /* 7 two-bit symbols */
      for (int i = 6; i >= 0 && k < count; i--) {
        uint8_t st = (c >> (2 * i)) & 3;
        if (st == 3) return HD_EPROTO;
        pkts[k++].status = st;
      }
    }
  }
  /* Pass 2: receive deltas, one per received packet, in order. */
  int64_t t = (int64_t)ref * HD_TWCC_REF_US;
  for (k = 0; k < count; k++) {
    hd_rtcp_twcc_pkt_t *pk = &pkts[k];
    pk->seq = (uint16_t)(h.base_seq + k);
    pk->delta_us = 0;
    pk->recv_us = 0;
    if (pk->status == HD_TWCC_NOT_RECEIVED) continue;
    int32_t d;
    if (pk->status == HD_TWCC_SMALL_DELTA) {
      if (len - off < 1) return HD_EPROTO;
      d = f[off];
      off += 1;
    } else {
      if (len - off < 2) return HD_EPROTO;
      d = (int16_t)hd_get_u16(f + off);
      off += 2;
    }
    pk->delta_us = d * HD_TWCC_DELTA_US;
    t += pk->delta_us;
    pk->recv_us = t;
  }
  /* Anything left is padding. */
  *out = h;
  return (int)count;
}

/* Walks the status sequence of a TWCC build one seq offset at a time. */
typedef struct {
  const hd_rtcp_twcc_recv_t *recv;
  size_t n; /* packets taking part */
  uint16_t base;
  size_t j;     /* next recv index */
  int64_t prev; /* receive time of the last reported packet, on the 250 µs grid */
} tw_cur_t;

/* Rounds x/250 to nearest, for negative x too. */
static int64_t ticks_of(int64_t us) { return us >= 0 ? (us + 125) / 250 : -((-us + 125) / 250); }

/* Status at offset k; must be called for k = 0, 1, 2, ... in order. */
static uint8_t tw_step(tw_cur_t *c, uint32_t k, int32_t *ticks) {
  if (c->j < c->n && (uint16_t)(c->recv[c->j].seq - c->base) == k) {
    int64_t t = ticks_of(c->recv[c->j].arrival - c->prev);
    c->prev += t * HD_TWCC_DELTA_US;
    c->j++;
    if (ticks) *ticks = (int32_t)t;
    return (t >= 0 && t <= 255) ? HD_TWCC_SMALL_DELTA : HD_TWCC_LARGE_DELTA;
  }
  return HD_TWCC_NOT_RECEIVED;
}

int hd_rtcp_build_twcc(uint32_t sender_ssrc, uint32_t media_ssrc, uint8_t fb_count,
                       const hd_rtcp_twcc_recv_t *recv, size_t n, size_t *used, uint8_t *out, size_t cap) {
  if (!recv || n == 0 || !out || recv[0].arrival < 0) return HD_EINVAL;
  int64_t ref = recv[0].arrival / HD_TWCC_REF_US;
  uint16_t base = recv[0].seq;

  /* How many packets fit: ascending seqs, span within 16 bits, deltas in int16. */
  size_t m = 0;
  uint32_t span = 0;
  int64_t prev = ref * HD_TWCC_REF_US;
  for (size_t i = 0; i < n; i++) {
    if (recv[i].arrival < 0) return HD_EINVAL;
    uint32_t nspan = span;
    if (i > 0) {
      uint16_t d = (uint16_t)(recv[i].seq - recv[i - 1].seq);
      if (d == 0 || d >= 0x8000) return HD_EINVAL;
      nspan = span + d;
      if (nspan > 0xfffe) break; /* status_count = span + 1 <= 65535 */
    }
    int64_t t = ticks_of(recv[i].arrival - prev);
    if (t < INT16_MIN || t > INT16_MAX) break;
    prev += t * HD_TWCC_DELTA_US;
    span = nspan;
    m = i + 1;
  }
  /* m >= 1: the first delta is < 64 ms so it always fits. */
  uint32_t count = span + 1;

  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  size_t st = begin_fb(&w, HD_RTCP_FMT_TWCC, HD_RTCP_RTPFB, sender_ssrc, media_ssrc);
  hd_wr_u16(&w, base);
  hd_wr_u16(&w, (uint16_t)count);
  hd_wr_u24(&w, (uint32_t)ref & 0xffffff);
  hd_wr_u8(&w, fb_count);

  /* Chunks: greedy choice between run length and status vectors. */
  tw_cur_t cur = {recv, m, base, 0, ref * HD_TWCC_REF_US};
  uint32_t k = 0;
  while (k < count && !w.err) {
    uint8_t sym[14] = {0};
    uint32_t avail = count - k < 14 ? count - k : 14;
    tw_cur_t la = cur;
    int has_large = 0;
    for (uint32_t i = 0; i < avail; i++) {
      sym[i] = tw_step(&la, k + i, NULL);
      if (sym[i] == HD_TWCC_LARGE_DELTA) has_large = 1;
    }
    tw_cur_t rl = cur;
    uint32_t run = 0;
    while (k + run < count && run < 0x1fff && tw_step(&rl, k + run, NULL) == sym[0])
      run++;

    uint32_t take;
    /* A run reaching the end costs one chunk however short (libwebrtc does the
     * same, which keeps our output byte-identical for the common case). */
    if (run >= 14 || k + run == count || (has_large && run >= 7)) {
      hd_wr_u16(&w, (uint16_t)((sym[0] << 13) | run));
      take = run;
    } else if (!has_large) {
      uint16_t c = 0x8000;
      for (uint32_t i = 0; i < avail; i++)
        c |= (uint16_t)(sym[i] << (13 - i));
      hd_wr_u16(&w, c);
      take = avail;
    } else {
      take = avail < 7 ? avail : 7;
      uint16_t c = 0xc000;
      for (uint32_t i = 0; i < take; i++)
        c |= (uint16_t)(sym[i] << (2 * (6 - i)));
      hd_wr_u16(&w, c);
    }
    for (uint32_t i = 0; i < take; i++)
      (void)tw_step(&cur, k + i, NULL);
    k += take;
  }

  /* Receive deltas. */
  tw_cur_t dc = {recv, m, base, 0, ref * HD_TWCC_REF_US};
  for (k = 0; k < count && !w.err; k++) {
    int32_t t;
    uint8_t s = tw_step(&dc, k, &t);
    if (s == HD_TWCC_SMALL_DELTA)
      hd_wr_u8(&w, (uint8_t)t);
    else if (s == HD_TWCC_LARGE_DELTA)
      hd_wr_u16(&w, (uint16_t)(int16_t)t);
  }
  /* libwebrtc pads TWCC with the RTCP padding bit; do the same. */
  int rc = finish_pkt(&w, st, 1);
  if (rc < 0) return rc;
  if (used) *used = m;
  return rc;
}

/* ---- NTP / RTT ---- */

#define NTP_UNIX_OFFSET 2208988800ull /* seconds from 1900 to 1970 */

uint64_t hd_rtcp_ntp_from_time(hd_time_t t, hd_time_t wall_offset_us) {
  int64_t unix_us = t + wall_offset_us;
  if (unix_us < 0) unix_us = 0;
  uint64_t sec = (uint64_t)unix_us / 1000000 + NTP_UNIX_OFFSET;
  uint64_t us = (uint64_t)unix_us % 1000000;
  uint64_t frac = ((us << 32) + 500000) / 1000000;
  if (frac > 0xffffffffull) frac = 0xffffffffull;
  return (sec << 32) | frac;
}

hd_time_t hd_rtcp_ntp_to_time(uint64_t ntp, hd_time_t wall_offset_us) {
  int64_t sec = (int64_t)(ntp >> 32) - (int64_t)NTP_UNIX_OFFSET;
  int64_t us = (int64_t)((((ntp & 0xffffffffull) * 1000000) + (1ull << 31)) >> 32);
  return sec * 1000000 + us - wall_offset_us;
}

uint32_t hd_rtcp_us_to_q16(hd_time_t us) {
  if (us <= 0) return 0;
  uint64_t v = (((uint64_t)us << 16) + 500000) / 1000000;
  return v > 0xffffffffull ? 0xffffffffu : (uint32_t)v;
}

hd_time_t hd_rtcp_q16_to_us(uint32_t q16) {
  return (hd_time_t)(((uint64_t)q16 * 1000000 + (1u << 15)) >> 16);
}

int hd_rtcp_rtt(uint32_t arrival_mid32, const hd_rtcp_rb_t *rb, hd_time_t *rtt_us) {
  if (!rb || !rtt_us) return HD_EINVAL;
  if (rb->lsr == 0) return HD_ENOTFOUND;
  uint32_t r = arrival_mid32 - rb->lsr - rb->dlsr; /* modular, RFC 3550 §6.4.1 */
  *rtt_us = (r & 0x80000000u) ? 0 : hd_rtcp_q16_to_us(r);
  return 0;
}
