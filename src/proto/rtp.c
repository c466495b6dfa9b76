/* RTP packet parse/build (RFC 3550 §5.1), RFC 8285 header extensions, RTX
 * (RFC 4588 §4) and RTP/RTCP demux (RFC 5761 §4, RFC 7983). See rtp.h. */
#include "proto/rtp.h"

#include <string.h>

#include "base/bytes.h"
#include "base/err.h"

int hd_rtp_is_rtcp(const uint8_t *buf, size_t len) {
  if (!buf || len < 8) return 0;
  if (buf[0] < 128 || buf[0] > 191) return 0;
  return buf[1] >= 192 && buf[1] <= 223;
}

int hd_rtp_is_rtp(const uint8_t *buf, size_t len) {
  if (!buf || len < HD_RTP_HDR_MIN) return 0;
  if (buf[0] < 128 || buf[0] > 191) return 0;
  return !(buf[1] >= 192 && buf[1] <= 223);
}

int hd_rtp_parse(const uint8_t *buf, size_t len, hd_rtp_hdr_t *h) {
  if (!buf || !h) return HD_EINVAL;
  if (len < HD_RTP_HDR_MIN) return HD_ETRUNC;
  hd_rtp_hdr_t t;
  memset(&t, 0, sizeof t);
  hd_reader_t r;
  hd_reader_init(&r, buf, len);
  uint8_t b0 = hd_rd_u8(&r), b1 = hd_rd_u8(&r);
  t.version = b0 >> 6;
  if (t.version != 2) return HD_EPROTO;
  t.padding = (b0 >> 5) & 1;
  t.extension = (b0 >> 4) & 1;
  t.csrc_count = b0 & 0x0f;
  t.marker = b1 >> 7;
  t.pt = b1 & 0x7f;
  t.seq = hd_rd_u16(&r);
  t.ts = hd_rd_u32(&r);
  t.ssrc = hd_rd_u32(&r);
  for (unsigned i = 0; i < t.csrc_count; i++)
    t.csrcs[i] = hd_rd_u32(&r);
  if (t.extension) {
    t.ext_profile = hd_rd_u16(&r);
    size_t words = hd_rd_u16(&r);
    t.ext_off = r.off;
    t.ext_data = hd_rd_bytes(&r, words * 4);
    t.ext_len = words * 4;
  }
  if (r.err) return HD_ETRUNC;
  t.hdr_len = r.off;
  size_t end = len;
  if (t.padding) {
    uint8_t pad = buf[len - 1];
    /* RFC 3550 §5.1: the count includes itself, so 0 is invalid. */
    if (pad == 0 || pad > len - t.hdr_len) return HD_EPROTO;
    t.pad_len = pad;
    end -= pad;
  }
  t.payload = buf + t.hdr_len;
  t.payload_len = end - t.hdr_len;
  *h = t;
  return 0;
}

/* ---- extensions ---- */

int hd_rtp_ext_is_rfc8285(const hd_rtp_hdr_t *h) {
  if (!h->ext_data) return 0;
  return h->ext_profile == HD_RTP_EXT_ONE_BYTE || (h->ext_profile & 0xfff0) == HD_RTP_EXT_TWO_BYTE;
}

void hd_rtp_ext_iter_init(hd_rtp_ext_iter_t *it, const hd_rtp_hdr_t *h) {
  it->p = NULL;
  it->len = 0;
  it->off = 0;
  it->two_byte = 0;
  if (!hd_rtp_ext_is_rfc8285(h)) return;
  it->p = h->ext_data;
  it->len = h->ext_len;
  it->two_byte = h->ext_profile != HD_RTP_EXT_ONE_BYTE;
}

int hd_rtp_ext_next(hd_rtp_ext_iter_t *it, uint8_t *id, const uint8_t **data, size_t *len) {
  while (it->off < it->len) {
    uint8_t b = it->p[it->off];
    if (b == 0) { /* padding byte, either form */
      it->off++;
      continue;
    }
    uint8_t eid;
    size_t elen, hlen;
    if (!it->two_byte) {
      eid = b >> 4;
      if (eid == 15) { /* RFC 8285 §4.2: stop processing */
        it->off = it->len;
        return 0;
      }
      elen = (size_t)(b & 0x0f) + 1;
      hlen = 1;
    } else {
      if (it->len - it->off < 2) return HD_EPROTO;
      eid = b;
      elen = it->p[it->off + 1];
      hlen = 2;
    }
    if (it->len - it->off < hlen + elen) return HD_EPROTO;
    *id = eid;
    *data = it->p + it->off + hlen;
    *len = elen;
    it->off += hlen + elen;
    return 1;
  }
  return 0;
}

int hd_rtp_ext_find(const hd_rtp_hdr_t *h, uint8_t id, const uint8_t **data, size_t *len) {
  if (id == 0) return HD_EINVAL;
  hd_rtp_ext_iter_t it;
  hd_rtp_ext_iter_init(&it, h);
  uint8_t eid;
  const uint8_t *d;
  size_t l;
  int rc;
  while ((rc = hd_rtp_ext_next(&it, &eid, &d, &l)) == 1) {
    if (eid == id) {
      *data = d;
      *len = l;
      return 0;
    }
  }
  return rc < 0 ? rc : HD_ENOTFOUND;
}

/* Sized first, then written with plain stores: this runs once per forwarded
 * packet, and a bounds check per byte was ~300 instructions of it. */
int hd_rtp_build_hdr(const hd_rtp_build_t *b, uint8_t *out, size_t cap) {
  if (!b || !out || b->pt > 127 || b->csrc_count > HD_RTP_MAX_CSRC || b->ext_count > HD_RTP_MAX_EXTS ||
      (b->csrc_count && !b->csrcs) || (b->ext_count && !b->exts))
    return HD_EINVAL;
  int two = 0;
  size_t body = 0;
  for (size_t i = 0; i < b->ext_count; i++) {
    const hd_rtp_ext_t *e = &b->exts[i];
    if (e->id == 0 || (e->len && !e->data)) return HD_EINVAL;
    if (e->id > 14 || e->len == 0 || e->len > 16) two = 1;
    body += e->len;
  }
  body += b->ext_count * (two ? 2 : 1);    /* RFC 8285 §4.2 / §4.3 element headers */
  size_t padded = (body + 3) & ~(size_t)3; /* RFC 3550 §5.3.1: whole 32-bit words */
  if (padded / 4 > 0xffff) return HD_EINVAL;
  size_t total = 12 + 4 * b->csrc_count + (b->ext_count ? 4 + padded : 0);
  if (total > cap) return HD_ENOSPC;
  out[0] = (uint8_t)(0x80 | (b->ext_count ? 0x10 : 0) | b->csrc_count);
  out[1] = (uint8_t)((b->marker ? 0x80 : 0) | b->pt);
  hd_put_u16(out + 2, b->seq);
  hd_put_u32(out + 4, b->ts);
  hd_put_u32(out + 8, b->ssrc);
  uint8_t *p = out + 12;
  for (size_t i = 0; i < b->csrc_count; i++, p += 4)
    hd_put_u32(p, b->csrcs[i]);
  if (b->ext_count) {
    hd_put_u16(p, two ? HD_RTP_EXT_TWO_BYTE : HD_RTP_EXT_ONE_BYTE);
    hd_put_u16(p + 2, (uint16_t)(padded / 4));
    p += 4;
    uint8_t *start = p;
    for (size_t i = 0; i < b->ext_count; i++) {
      const hd_rtp_ext_t *e = &b->exts[i];
      if (two) {
        *p++ = e->id;
        *p++ = e->len;
      } else {
        *p++ = (uint8_t)((e->id << 4) | (e->len - 1));
      }
      if (e->len) memcpy(p, e->data, e->len);
      p += e->len;
    }
    memset(p, 0, padded - (size_t)(p - start));
  }
  return (int)total;
}

int hd_rtp_build(const hd_rtp_build_t *b, const uint8_t *payload, size_t plen, uint8_t *out, size_t cap) {
  if (plen && !payload) return HD_EINVAL;
  int hl = hd_rtp_build_hdr(b, out, cap);
  if (hl < 0) return hl;
  hd_writer_t w;
  hd_writer_init(&w, out, cap);
  w.len = (size_t)hl;
  hd_wr_bytes(&w, payload, plen);
  if (b->pad_len) {
    hd_wr_zeros(&w, (size_t)b->pad_len - 1);
    hd_wr_u8(&w, b->pad_len);
    if (!w.err) out[0] |= 0x20;
  }
  if (w.err) return w.err;
  if (w.len > 0x7fffffff) return HD_EINVAL;
  return (int)w.len;
}

/* ---- in-place rewriters ---- */

static int check_rtp(const uint8_t *pkt, size_t len) {
  if (!pkt) return HD_EINVAL;
  if (len < HD_RTP_HDR_MIN) return HD_ETRUNC;
  if ((pkt[0] >> 6) != 2) return HD_EPROTO;
  return 0;
}

int hd_rtp_set_seq(uint8_t *pkt, size_t len, uint16_t seq) {
  int rc = check_rtp(pkt, len);
  if (rc) return rc;
  hd_put_u16(pkt + 2, seq);
  return 0;
}

int hd_rtp_set_ts(uint8_t *pkt, size_t len, uint32_t ts) {
  int rc = check_rtp(pkt, len);
  if (rc) return rc;
  hd_put_u32(pkt + 4, ts);
  return 0;
}

int hd_rtp_set_ssrc(uint8_t *pkt, size_t len, uint32_t ssrc) {
  int rc = check_rtp(pkt, len);
  if (rc) return rc;
  hd_put_u32(pkt + 8, ssrc);
  return 0;
}

int hd_rtp_set_pt(uint8_t *pkt, size_t len, uint8_t pt) {
  int rc = check_rtp(pkt, len);
  if (rc) return rc;
  if (pt > 127) return HD_EINVAL;
  pkt[1] = (uint8_t)((pkt[1] & 0x80) | pt);
  return 0;
}

int hd_rtp_set_marker(uint8_t *pkt, size_t len, int marker) {
  int rc = check_rtp(pkt, len);
  if (rc) return rc;
  pkt[1] = (uint8_t)((pkt[1] & 0x7f) | (marker ? 0x80 : 0));
  return 0;
}

/* Locates element `id` in a writable packet: offset of its header and its data. */
static int ext_locate(uint8_t *pkt, size_t len, uint8_t id, size_t *elem_off, size_t *data_off,
                      size_t *data_len) {
  hd_rtp_hdr_t h;
  int rc = hd_rtp_parse(pkt, len, &h);
  if (rc) return rc;
  if (id == 0) return HD_EINVAL;
  hd_rtp_ext_iter_t it;
  hd_rtp_ext_iter_init(&it, &h);
  uint8_t eid;
  const uint8_t *d;
  size_t l;
  while ((rc = hd_rtp_ext_next(&it, &eid, &d, &l)) == 1) {
    if (eid == id) {
      *data_off = (size_t)(d - pkt);
      *elem_off = *data_off - (it.two_byte ? 2 : 1);
      *data_len = l;
      return 0;
    }
  }
  return rc < 0 ? rc : HD_ENOTFOUND;
}

int hd_rtp_ext_rewrite(uint8_t *pkt, size_t len, uint8_t id, const uint8_t *val, size_t val_len) {
  size_t eo, doff, dl;
  int rc = ext_locate(pkt, len, id, &eo, &doff, &dl);
  if (rc) return rc;
  if (dl != val_len || (val_len && !val)) return HD_EINVAL;
  if (val_len) memmove(pkt + doff, val, val_len);
  return 0;
}

int hd_rtp_ext_blank(uint8_t *pkt, size_t len, uint8_t id) {
  size_t eo, doff, dl;
  int rc = ext_locate(pkt, len, id, &eo, &doff, &dl);
  if (rc) return rc;
  /* Zero bytes are padding in both forms (RFC 8285 §4.2, §4.3). */
  memset(pkt + eo, 0, doff + dl - eo);
  return 0;
}

/* ---- well-known extensions ---- */

uint32_t hd_rtp_abs_send_time_from_us(hd_time_t t) {
  /* 6.18 fixed point seconds, modulo 64 s: (t << 18) / 1e6, rounded. */
  uint64_t us = (uint64_t)(t % HD_SEC(64) + (t < 0 ? HD_SEC(64) : 0));
  return (uint32_t)(((us << 18) + 500000) / 1000000) & 0xffffff;
}

hd_time_t hd_rtp_abs_send_time_to_us(uint32_t ast) {
  return (hd_time_t)((((uint64_t)(ast & 0xffffff)) * 1000000 + (1u << 17)) >> 18);
}

int hd_rtp_abs_send_time_parse(const uint8_t *d, size_t len, uint32_t *ast) {
  if (!d || len != 3) return HD_EPROTO;
  *ast = ((uint32_t)d[0] << 16) | ((uint32_t)d[1] << 8) | d[2];
  return 0;
}

void hd_rtp_abs_send_time_write(uint8_t out[3], uint32_t ast) {
  out[0] = (uint8_t)(ast >> 16);
  out[1] = (uint8_t)(ast >> 8);
  out[2] = (uint8_t)ast;
}

int hd_rtp_twcc_seq_parse(const uint8_t *d, size_t len, uint16_t *seq) {
  if (!d || len != 2) return HD_EPROTO;
  *seq = hd_get_u16(d);
  return 0;
}

void hd_rtp_twcc_seq_write(uint8_t out[2], uint16_t seq) { hd_put_u16(out, seq); }

int hd_rtp_audio_level_parse(const uint8_t *d, size_t len, int *voice, uint8_t *level) {
  if (!d || len < 1 || len > 4) return HD_EPROTO;
  *voice = d[0] >> 7;
  *level = d[0] & 0x7f;
  return 0;
}

void hd_rtp_audio_level_write(uint8_t out[1], int voice, uint8_t level) {
  out[0] = (uint8_t)((voice ? 0x80 : 0) | (level & 0x7f));
}

int hd_rtp_ext_string(const uint8_t *d, size_t len, char *out, size_t cap) {
  if (!d || !out) return HD_EINVAL;
  while (len && d[len - 1] == 0)
    len--;
  if (len == 0) return HD_EPROTO;
  for (size_t i = 0; i < len; i++)
    if (d[i] < 0x21 || d[i] > 0x7e) return HD_EPROTO;
  if (len + 1 > cap) return HD_ENOSPC;
  memcpy(out, d, len);
  out[len] = 0;
  return (int)len;
}

/* ---- RTX ---- */

int hd_rtp_rtx_build(const uint8_t *orig, size_t len, uint32_t rtx_ssrc, uint8_t rtx_pt, uint16_t rtx_seq,
                     uint8_t *out, size_t cap) {
  if (!out || rtx_pt > 127) return HD_EINVAL;
  hd_rtp_hdr_t h;
  int rc = hd_rtp_parse(orig, len, &h);
  if (rc) return rc;
  size_t total = h.hdr_len + 2 + h.payload_len;
  if (total > cap) return HD_ENOSPC;
  if (total > 0x7fffffff) return HD_EINVAL;
  memcpy(out, orig, h.hdr_len);
  out[0] &= (uint8_t)~0x20; /* padding dropped */
  out[1] = (uint8_t)((out[1] & 0x80) | rtx_pt);
  hd_put_u16(out + 2, rtx_seq);
  hd_put_u32(out + 8, rtx_ssrc);
  hd_put_u16(out + h.hdr_len, h.seq);
  if (h.payload_len) memcpy(out + h.hdr_len + 2, h.payload, h.payload_len);
  return (int)total;
}

int hd_rtp_rtx_decode(const uint8_t *rtx, size_t len, uint32_t orig_ssrc, uint8_t orig_pt, uint8_t *out,
                      size_t cap, uint16_t *osn) {
  if (!out || orig_pt > 127) return HD_EINVAL;
  hd_rtp_hdr_t h;
  int rc = hd_rtp_parse(rtx, len, &h);
  if (rc) return rc;
  if (h.payload_len < 2) return HD_EPROTO;
  size_t total = h.hdr_len + h.payload_len - 2;
  if (total > cap) return HD_ENOSPC;
  if (total > 0x7fffffff) return HD_EINVAL;
  uint16_t o = hd_get_u16(h.payload);
  memcpy(out, rtx, h.hdr_len);
  out[0] &= (uint8_t)~0x20;
  out[1] = (uint8_t)((out[1] & 0x80) | orig_pt);
  hd_put_u16(out + 2, o);
  hd_put_u32(out + 8, orig_ssrc);
  if (h.payload_len > 2) memcpy(out + h.hdr_len, h.payload + 2, h.payload_len - 2);
  if (osn) *osn = o;
  return (int)total;
}

/* ---- sequence numbers ---- */

int64_t hd_seq_unwrap(hd_seq_unwrapper_t *u, uint16_t seq) {
  if (!u->started) {
    u->started = 1;
    u->last = seq;
    return seq;
  }
  /* Signed distance from the low 16 bits of the highest value, in -32768..32767. */
  int32_t diff = (int16_t)(uint16_t)(seq - (uint16_t)u->last);
  if (diff == -32768) diff = 32768; /* ambiguous half-way: treat as forward */
  int64_t v = u->last + diff;
  if (v > u->last) u->last = v;
  return v;
}

void hd_rtp_playout_delay_write(uint8_t out[3], unsigned min_ms, unsigned max_ms) {
  unsigned lo = min_ms / 10, hi = max_ms / 10;
  if (lo > 0xfff) lo = 0xfff;
  if (hi > 0xfff) hi = 0xfff;
  out[0] = (uint8_t)(lo >> 4);
  out[1] = (uint8_t)(((lo & 0xf) << 4) | (hi >> 8));
  out[2] = (uint8_t)(hi & 0xff);
}

int hd_rtp_playout_delay_parse(const uint8_t *d, size_t len, unsigned *min_ms, unsigned *max_ms) {
  if (!d || len != 3) return HD_EPROTO;
  *min_ms = (((unsigned)d[0] << 4) | (d[1] >> 4)) * 10;
  *max_ms = ((((unsigned)d[1] & 0xf) << 8) | d[2]) * 10;
  return 0;
}
