/* RTP payload formats: VP8 (RFC 7741 §4) and Opus (RFC 7587 §4.2); see
 * rtp_payload.h. */
#include "media/rtp_payload.h"

#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "media/opus_codec.h"

/* Descriptor we always write: X=1, I=1 with a 15-bit PictureID (M=1). A
 * PictureID lets a receiver tell a lost frame from a reordered one and is what
 * browsers send, so relays and decoders downstream find it where they expect. */
#define VP8_OUR_DESC 4

int hd_vp8_pay_init(hd_vp8_pay_t *p, size_t max_payload, uint16_t first_picture_id) {
  if (!p) return HD_EINVAL;
  memset(p, 0, sizeof(*p));
  if (max_payload == 0) max_payload = HD_VP8_RTP_DEFAULT_MAX_PAYLOAD;
  if (max_payload <= VP8_OUR_DESC || max_payload > 65535) return HD_EINVAL;
  p->max_payload = max_payload;
  p->picture_id = first_picture_id & 0x7fff;
  return 0;
}

int hd_vp8_pay_begin(hd_vp8_pay_t *p, const uint8_t *frame, size_t len) {
  if (!p || !p->max_payload || !frame || len == 0) return HD_EINVAL;
  size_t room = p->max_payload - VP8_OUR_DESC;
  size_t n = (len + room - 1) / room;
  if (n > HD_VP8_RTP_MAX_PACKETS) return HD_ENOSPC;
  /* Near-equal packets rather than full ones plus a runt: the same packet count,
   * but no tiny last packet wasting header overhead and pacing slots. */
  p->frame = frame;
  p->len = len;
  p->off = 0;
  p->n_packets = n;
  p->sent = 0;
  p->chunk = len / n;
  p->extra = len % n;
  p->keyframe = !(frame[0] & 1);
  return (int)n;
}

int hd_vp8_pay_next(hd_vp8_pay_t *p, uint8_t *out, size_t cap, int *marker) {
  if (!p || !out || !marker) return HD_EINVAL;
  if (!p->frame || p->sent >= p->n_packets) return 0;
  size_t take = p->chunk + (p->sent < p->extra ? 1 : 0);
  if (cap < VP8_OUR_DESC + take) return HD_ENOSPC;
  out[0] = (uint8_t)(0x80 | (p->sent == 0 ? 0x10 : 0)); /* X, S on the first, PartID 0 */
  out[1] = 0x80;                                        /* I */
  out[2] = (uint8_t)(0x80 | (p->picture_id >> 8));      /* M=1: 15-bit PictureID */
  out[3] = (uint8_t)(p->picture_id & 0xff);
  memcpy(out + VP8_OUR_DESC, p->frame + p->off, take);
  p->off += take;
  p->sent++;
  *marker = p->sent == p->n_packets;
  if (*marker) {
    p->picture_id = (uint16_t)((p->picture_id + 1) & 0x7fff);
    p->frame = NULL;
  }
  return (int)(VP8_OUR_DESC + take);
}

int hd_vp8_depay_parse(const uint8_t *payload, size_t len, hd_vp8_desc_t *d) {
  if (!payload || !d) return HD_EINVAL;
  memset(d, 0, sizeof(*d));
  d->picture_id = d->tl0picidx = d->tid = d->keyidx = -1;
  size_t off = 0;
  if (len < 1) return HD_ETRUNC;
  uint8_t b0 = payload[off++];
  d->non_ref = (b0 >> 5) & 1;
  d->start = (b0 >> 4) & 1;
  d->part_id = b0 & 0x0f;
  if (d->part_id > 8) return HD_EPROTO;
  if (b0 & 0x80) {
    if (off >= len) return HD_ETRUNC;
    uint8_t x = payload[off++];
    int has_i = x & 0x80, has_l = x & 0x40, has_t = x & 0x20, has_k = x & 0x10;
    if (has_i) {
      if (off >= len) return HD_ETRUNC;
      uint8_t m = payload[off++];
      if (m & 0x80) {
        if (off >= len) return HD_ETRUNC;
        d->picture_id = ((m & 0x7f) << 8) | payload[off++];
        d->picture_id_bits = 15;
      } else {
        d->picture_id = m & 0x7f;
        d->picture_id_bits = 7;
      }
    }
    if (has_l) {
      if (off >= len) return HD_ETRUNC;
      d->tl0picidx = payload[off++];
    }
    if (has_t || has_k) {
      if (off >= len) return HD_ETRUNC;
      uint8_t tk = payload[off++];
      if (has_t) {
        d->tid = tk >> 6;
        d->layer_sync = (tk >> 5) & 1;
      }
      if (has_k) d->keyidx = tk & 0x1f;
    }
  }
  if (off >= len) return HD_ETRUNC; /* a descriptor with no VP8 data is useless */
  d->desc_len = off;
  d->data = payload + off;
  d->data_len = len - off;
  if (d->start && d->part_id == 0) {
    d->frame_start = 1;
    /* RFC 7741 §4.3: the VP8 payload header; P (bit 0) is 0 on keyframes. */
    d->keyframe = !(d->data[0] & 1);
    if (d->keyframe && d->data_len >= 10 && d->data[3] == 0x9d && d->data[4] == 0x01 && d->data[5] == 0x2a) {
      d->width = (d->data[6] | (d->data[7] << 8)) & 0x3fff;
      d->height = (d->data[8] | (d->data[9] << 8)) & 0x3fff;
    }
  }
  return 0;
}

int hd_vp8_desc_write(const hd_vp8_desc_t *d, uint8_t *out, size_t cap) {
  if (!d || !out || d->part_id > 8) return HD_EINVAL;
  uint8_t buf[HD_VP8_RTP_DESC_MAX];
  size_t n = 0;
  int has_i = d->picture_id >= 0, has_l = d->tl0picidx >= 0, has_t = d->tid >= 0, has_k = d->keyidx >= 0;
  int has_x = has_i || has_l || has_t || has_k;
  buf[n++] = (uint8_t)((has_x ? 0x80 : 0) | (d->non_ref ? 0x20 : 0) | (d->start ? 0x10 : 0) | d->part_id);
  if (has_x)
    buf[n++] = (uint8_t)((has_i ? 0x80 : 0) | (has_l ? 0x40 : 0) | (has_t ? 0x20 : 0) | (has_k ? 0x10 : 0));
  if (has_i) {
    if (d->picture_id_bits == 7) {
      if (d->picture_id > 0x7f) return HD_EINVAL;
      buf[n++] = (uint8_t)d->picture_id;
    } else {
      if (d->picture_id > 0x7fff) return HD_EINVAL;
      buf[n++] = (uint8_t)(0x80 | (d->picture_id >> 8));
      buf[n++] = (uint8_t)(d->picture_id & 0xff);
    }
  }
  if (has_l) {
    if (d->tl0picidx > 0xff) return HD_EINVAL;
    buf[n++] = (uint8_t)d->tl0picidx;
  }
  if (has_t || has_k) {
    if (d->tid > 3 || d->keyidx > 31) return HD_EINVAL;
    buf[n++] = (uint8_t)((has_t ? (d->tid << 6) | (d->layer_sync ? 0x20 : 0) : 0) | (has_k ? d->keyidx : 0));
  }
  if (cap < n) return HD_ENOSPC;
  memcpy(out, buf, n);
  return (int)n;
}

void hd_opus_pay_init(hd_opus_pay_t *p, uint32_t first_ts) {
  memset(p, 0, sizeof(*p));
  p->ts = first_ts;
}

int hd_opus_pay_frame(hd_opus_pay_t *p, const uint8_t *pkt, size_t len, int samples, uint32_t *ts,
                      int *marker) {
  if (!p || !pkt || len == 0 || samples <= 0 || !ts || !marker) return HD_EINVAL;
  uint32_t this_ts = p->ts;
  p->ts += (uint32_t)samples; /* the media clock runs through silence too */
  if (len <= HD_OPUS_DTX_MAX_BYTES) {
    p->in_dtx = 1;
    return 0;
  }
  /* RFC 7587 §4.2 / RFC 3551 §4.1: M=1 on the first packet of a talkspurt. */
  *marker = p->in_dtx;
  *ts = this_ts;
  p->in_dtx = 0;
  p->started = 1;
  return 1;
}

int hd_opus_depay(const uint8_t *payload, size_t len) { return hd_opus_packet_samples(payload, len); }

/* ---- keyframes ---- */

static int h264_nal_is_key(uint8_t nal_type) { return nal_type == 5 || nal_type == 7; }

int hd_rtp_keyframe_start(const char *codec, const uint8_t *payload, size_t len) {
  if (!codec || (!payload && len)) return HD_EINVAL;
  if (!strcasecmp(codec, "VP8")) {
    hd_vp8_desc_t d;
    if (hd_vp8_depay_parse(payload, len, &d) < 0) return 0;
    return d.frame_start && d.keyframe;
  }
  if (!strcasecmp(codec, "H264")) {
    if (len < 1) return 0;
    uint8_t type = payload[0] & 0x1f;
    if (type >= 1 && type <= 23) return h264_nal_is_key(type); /* single NAL unit, §5.6 */
    if (type == 24) { /* STAP-A, §5.7.1: 16-bit size + NAL, repeated */
      size_t off = 1;
      while (off + 2 < len) {
        size_t n = (size_t)payload[off] << 8 | payload[off + 1];
        off += 2;
        if (n == 0 || n > len - off) return 0;
        if (h264_nal_is_key(payload[off] & 0x1f)) return 1;
        off += n;
      }
      return 0;
    }
    if (type == 28) /* FU-A, §5.8: start bit of the FU header and the fragmented NAL's type */
      return len >= 2 && (payload[1] & 0x80) && h264_nal_is_key(payload[1] & 0x1f);
    return 0;
  }
  return HD_EUNSUPPORTED;
}

/* ---- RED (RFC 2198) ---- */

/* Walks the block headers: *hdr_len the header bytes, and the offset of each
 * block's PT byte in hdr_pos (n of them, the primary's last). */
static int red_headers(const uint8_t *p, size_t len, size_t *hdr_len, size_t *data_total, size_t *hdr_pos,
                       int *n) {
  size_t off = 0, total = 0;
  *n = 0;
  for (;;) {
    if (off >= len || *n >= HD_RED_MAX_BLOCKS) return HD_EPROTO;
    hdr_pos[(*n)++] = off;
    if (!(p[off] & 0x80)) { /* F=0: the primary's 1-byte header */
      off += 1;
      break;
    }
    if (off + 4 > len) return HD_EPROTO;
    total += (size_t)(p[off + 2] & 0x03) << 8 | p[off + 3]; /* 10-bit block length */
    off += 4;
  }
  if (total > len - off) return HD_EPROTO;
  *hdr_len = off;
  *data_total = total;
  return 0;
}

int hd_red_primary(const uint8_t *p, size_t len, uint8_t *pt, const uint8_t **data, size_t *dlen) {
  size_t hl, red_bytes, pos[HD_RED_MAX_BLOCKS];
  int n;
  if (!p || red_headers(p, len, &hl, &red_bytes, pos, &n) < 0) return HD_EPROTO;
  *pt = p[pos[n - 1]] & 0x7f;
  *data = p + hl + red_bytes;
  *dlen = len - hl - red_bytes;
  return 0;
}

int hd_red_parse(const uint8_t *p, size_t len, hd_red_block_t out[HD_RED_MAX_BLOCKS]) {
  size_t hl, red_bytes, pos[HD_RED_MAX_BLOCKS];
  int n;
  if (!p || !out || red_headers(p, len, &hl, &red_bytes, pos, &n) < 0) return HD_EPROTO;
  size_t off = hl;
  for (int i = 0; i < n; i++) {
    const uint8_t *h = p + pos[i];
    out[i].pt = h[0] & 0x7f;
    if (i < n - 1) {
      out[i].ts_offset = (uint16_t)(h[1] << 6 | h[2] >> 2);
      out[i].len = (size_t)(h[2] & 0x03) << 8 | h[3];
    } else {
      out[i].ts_offset = 0;
      out[i].len = len - off;
    }
    out[i].data = p + off;
    off += out[i].len;
  }
  return n;
}

int hd_red_build(const hd_red_block_t *b, int n, uint8_t *out, size_t cap) {
  if (!b || !out || n < 1 || n > HD_RED_MAX_BLOCKS) return HD_EINVAL;
  size_t need = 1 + (size_t)(n - 1) * 4;
  for (int i = 0; i < n; i++) {
    if (i < n - 1 && (b[i].ts_offset >= 1u << 14 || b[i].len >= 1024)) return HD_EINVAL;
    need += b[i].len;
  }
  if (need > cap) return HD_ENOSPC;
  size_t off = 0;
  for (int i = 0; i < n - 1; i++) {
    out[off++] = (uint8_t)(0x80 | (b[i].pt & 0x7f));
    out[off++] = (uint8_t)(b[i].ts_offset >> 6);
    out[off++] = (uint8_t)((b[i].ts_offset & 0x3f) << 2 | b[i].len >> 8);
    out[off++] = (uint8_t)(b[i].len & 0xff);
  }
  out[off++] = b[n - 1].pt & 0x7f;
  for (int i = 0; i < n; i++) {
    if (b[i].len) memcpy(out + off, b[i].data, b[i].len);
    off += b[i].len;
  }
  return (int)off;
}

int hd_red_rewrite_pt(uint8_t *p, size_t len, uint8_t from, uint8_t to) {
  size_t hl, red_bytes, pos[HD_RED_MAX_BLOCKS];
  int n, k = 0;
  if (!p || red_headers(p, len, &hl, &red_bytes, pos, &n) < 0) return HD_EPROTO;
  for (int i = 0; i < n; i++)
    if ((p[pos[i]] & 0x7f) == from) {
      p[pos[i]] = (uint8_t)((p[pos[i]] & 0x80) | (to & 0x7f));
      k++;
    }
  return k;
}
