/* H.264 RTP depacketiser (see h264_depay.h). */
#include "media/h264_depay.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"

#define KEY_REPEAT_AUS 30

enum { NAL_IDR = 5, NAL_SPS = 7, NAL_PPS = 8, NAL_STAP_A = 24, NAL_FU_A = 28 };

int hd_h264_depay_init(hd_h264_depay_t *d, size_t max_au) {
  if (!d) return HD_EINVAL;
  memset(d, 0, sizeof *d);
  if (!max_au) max_au = HD_H264_AU_MAX_DEFAULT;
  if (max_au < 64) return HD_EINVAL;
  d->max_au = max_au;
  d->buf[0] = malloc(max_au);
  d->buf[1] = malloc(max_au);
  if (!d->buf[0] || !d->buf[1]) {
    hd_h264_depay_free(d);
    return HD_ENOMEM;
  }
  d->need_key = 1; /* a stream starts at an IDR */
  return 0;
}

void hd_h264_depay_free(hd_h264_depay_t *d) {
  if (!d) return;
  free(d->buf[0]);
  free(d->buf[1]);
  d->buf[0] = d->buf[1] = NULL;
}

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void break_stream(hd_h264_depay_t *d) {
  if (!d->need_key) {
    d->key_req = 1;
    d->waiting = 1;
  }
  d->need_key = 1;
}

static void damage(hd_h264_depay_t *d) {
  d->damaged = 1;
  d->fu_open = 0;
}

/* a NAL unit's header was seen: remember parameter sets, note IDR */
static void note_nal(hd_h264_depay_t *d, const uint8_t *nal, size_t len) {
  int type = nal[0] & 0x1f;
  if (type == NAL_IDR) d->has_idr = 1;
  if ((type == NAL_SPS || type == NAL_PPS) && len >= 4 && len <= HD_H264_PARAM_MAX) {
    if (type == NAL_SPS) d->has_sps = 1; /* usable ones only: else the stored ones go in front */
    if (type == NAL_PPS) d->has_pps = 1;
    /* only a whole NAL unit: called for single and STAP-A units, and for a
     * FU-A once it is complete */
    if (type == NAL_SPS) {
      memcpy(d->sps, nal, len);
      d->sps_len = len;
    } else {
      memcpy(d->pps, nal, len);
      d->pps_len = len;
    }
  }
}

/* appends a whole NAL unit to the AU being built */
static void add_nal(hd_h264_depay_t *d, const uint8_t *nal, size_t len) {
  if (d->damaged) return;
  if (len + 4 > d->max_au - d->len) {
    d->stats.oversize++;
    damage(d);
    return;
  }
  uint8_t *b = d->buf[d->cur];
  put32(b + d->len, (uint32_t)len);
  memcpy(b + d->len + 4, nal, len);
  d->len += 4 + len;
  d->nals++;
  note_nal(d, nal, len);
}

/* closes the AU being built: 1 when it goes out */
static int finish(hd_h264_depay_t *d, hd_h264_au_t *au) {
  if (!d->open) return 0;
  d->open = 0;
  if (d->fu_open) damage(d); /* a FU-A without its end */
  if (d->damaged || !d->nals) {
    d->stats.aus_dropped++;
    if (d->damaged) break_stream(d);
    return 0;
  }
  int key = d->has_idr && d->sps_len && d->pps_len;
  if (d->need_key && !key) {
    /* joined mid-GOP, or the PLI went unanswered: ask again every
     * KEY_REPEAT_AUS dropped AUs (about 1 s at 30 fps) */
    if (d->waiting++ % KEY_REPEAT_AUS == 0) d->key_req = 1;
    d->stats.aus_dropped++;
    return 0;
  }
  if (key && (!d->has_sps || !d->has_pps)) {
    /* the parameter sets came in an earlier AU: put them in front, so that
     * every keyframe handed out decodes on its own (a file starts at one) */
    size_t add = 8 + d->sps_len + d->pps_len;
    if (add > d->max_au - d->len) {
      d->stats.oversize++;
      d->stats.aus_dropped++;
      break_stream(d);
      return 0;
    }
    uint8_t *b = d->buf[d->cur];
    memmove(b + add, b, d->len);
    put32(b, (uint32_t)d->sps_len);
    memcpy(b + 4, d->sps, d->sps_len);
    put32(b + 4 + d->sps_len, (uint32_t)d->pps_len);
    memcpy(b + 8 + d->sps_len, d->pps, d->pps_len);
    d->len += add;
    d->nals += 2;
  }
  d->need_key = 0;
  d->waiting = 0;
  au->data = d->buf[d->cur];
  au->len = d->len;
  au->ts = d->ts;
  au->keyframe = key;
  au->nals = d->nals;
  d->stats.aus++;
  if (key) d->stats.keyframes++;
  d->cur ^= 1; /* lent out until the next push */
  return 1;
}

static void begin(hd_h264_depay_t *d, uint32_t ts) {
  d->open = 1;
  d->ts = ts;
  d->len = 0;
  d->nals = 0;
  d->damaged = 0;
  d->has_idr = 0;
  d->has_sps = d->has_pps = 0;
  d->fu_open = 0;
}

static int depay(hd_h264_depay_t *d, const uint8_t *p, size_t len, int continues) {
  int type = p[0] & 0x1f;
  if ((p[0] & 0x80) || type == 0 || (type > 23 && type != NAL_STAP_A && type != NAL_FU_A))
    return HD_EPROTO; /* F bit set (§5.3), or STAP-B/MTAP/FU-B: not in mode 1 (§6.3) */
  if (type <= 23) {   /* single NAL unit packet (§5.6) */
    if (d->fu_open) damage(d);
    add_nal(d, p, len);
    return 0;
  }
  if (type == NAL_STAP_A) { /* §5.7.1: [hdr][size16 NAL]... */
    if (d->fu_open) damage(d);
    size_t off = 1;
    if (len < 3) return HD_EPROTO;
    while (off < len) {
      if (len - off < 2) return HD_EPROTO;
      size_t n = (size_t)p[off] << 8 | p[off + 1];
      off += 2;
      /* an aggregation unit holds one whole NAL unit (types 1-23), §5.7 */
      if (n == 0 || n > len - off || (p[off] & 0x80) || (p[off] & 0x1f) == 0 || (p[off] & 0x1f) > 23)
        return HD_EPROTO;
      add_nal(d, p + off, n);
      off += n;
    }
    return 0;
  }
  /* FU-A (§5.8): [indicator][S E R type] fragment */
  if (len < 3) return HD_EPROTO;
  int s = (p[1] & 0x80) != 0, e = (p[1] & 0x40) != 0;
  int ntype = p[1] & 0x1f;
  if ((s && e) || ntype == 0 || ntype > 23) return HD_EPROTO;
  uint8_t *b = d->buf[d->cur];
  if (s) {
    if (d->fu_open) damage(d);
    if (d->damaged) return 0;
    if (len - 2 + 5 > d->max_au - d->len) {
      d->stats.oversize++;
      damage(d);
      return 0;
    }
    d->fu_at = d->len;
    b[d->len + 4] = (uint8_t)((p[0] & 0xe0) | ntype); /* the NAL header: F and NRI from the indicator */
    memcpy(b + d->len + 5, p + 2, len - 2);
    d->len += 5 + len - 2;
    d->fu_open = 1;
  } else {
    if (!d->fu_open) {
      if (!d->damaged && !continues) return HD_EPROTO; /* a middle with no start */
      damage(d);
      return 0;
    }
    if (len - 2 > d->max_au - d->len) {
      d->stats.oversize++;
      damage(d);
      return 0;
    }
    memcpy(b + d->len, p + 2, len - 2);
    d->len += len - 2;
  }
  if (e) {
    size_t n = d->len - d->fu_at - 4;
    put32(b + d->fu_at, (uint32_t)n);
    d->fu_open = 0;
    d->nals++;
    note_nal(d, b + d->fu_at + 4, n);
  }
  return 0;
}

int hd_h264_depay_push(hd_h264_depay_t *d, uint16_t seq, uint32_t ts, int marker, const uint8_t *payload,
                       size_t len, hd_h264_au_t *au) {
  if (!d || !d->buf[0] || !au || (!payload && len)) return HD_EINVAL;
  d->stats.packets++;
  int gap = 0;
  if (d->have_seq) {
    int16_t delta = (int16_t)(uint16_t)(seq - d->next_seq);
    if (delta < 0) {
      d->stats.late++; /* a duplicate or a repair that came too late */
      return 0;
    }
    gap = delta > 0;
  }
  d->have_seq = 1;
  d->next_seq = (uint16_t)(seq + 1);
  if (gap) {
    d->stats.gaps++;
    if (d->open)
      damage(d); /* the lost packet may belong to the AU being built */
    else
      break_stream(d); /* a whole AU, or the start of this one, was lost */
  }
  int out = 0;
  if (d->open && ts != d->ts) out = finish(d, au); /* the previous AU lost its marker packet */
  if (!d->open) begin(d, ts);
  int rc = len ? depay(d, payload, len, gap) : HD_EPROTO;
  if (rc < 0) {
    d->stats.malformed++;
    damage(d);
  }
  /* with out set, this AU (even a finished one-packet AU) stays open: the
   * next push (by its new timestamp) or flush hands it out */
  if (marker && !out) out = finish(d, au);
  return out ? 1 : (rc < 0 ? rc : 0);
}

int hd_h264_depay_flush(hd_h264_depay_t *d, hd_h264_au_t *au) {
  if (!d || !au) return HD_EINVAL;
  return finish(d, au);
}

int hd_h264_depay_take_key_request(hd_h264_depay_t *d) {
  if (!d || !d->key_req) return 0;
  d->key_req = 0;
  d->stats.key_requests++;
  return 1;
}

static int avcc(const uint8_t *sps, size_t sps_len, const uint8_t *pps, size_t pps_len, uint8_t *out,
                size_t cap) {
  size_t n = 6 + 2 + sps_len + 1 + 2 + pps_len;
  if (n > cap) return HD_ENOSPC;
  out[0] = 1;      /* configurationVersion */
  out[1] = sps[1]; /* AVCProfileIndication: profile_idc */
  out[2] = sps[2]; /* profile_compatibility: the constraint flags */
  out[3] = sps[3]; /* AVCLevelIndication */
  out[4] = 0xff;   /* reserved 6 bits + lengthSizeMinusOne = 3 */
  out[5] = 0xe1;   /* reserved 3 bits + one SPS */
  out[6] = (uint8_t)(sps_len >> 8);
  out[7] = (uint8_t)sps_len;
  memcpy(out + 8, sps, sps_len);
  size_t o = 8 + sps_len;
  out[o++] = 1; /* one PPS */
  out[o++] = (uint8_t)(pps_len >> 8);
  out[o++] = (uint8_t)pps_len;
  memcpy(out + o, pps, pps_len);
  return (int)n;
}

int hd_h264_depay_avcc(const hd_h264_depay_t *d, uint8_t *out, size_t cap) {
  if (!d || !out) return HD_EINVAL;
  if (!d->sps_len || !d->pps_len) return HD_ENOTFOUND;
  return avcc(d->sps, d->sps_len, d->pps, d->pps_len, out, cap);
}

int hd_h264_avcc_from_au(const uint8_t *au, size_t len, uint8_t *out, size_t cap) {
  if (!au || !out) return HD_EINVAL;
  const uint8_t *sps = NULL, *pps = NULL;
  size_t sps_len = 0, pps_len = 0;
  for (size_t off = 0; len - off >= 5;) {
    size_t n = (size_t)au[off] << 24 | (size_t)au[off + 1] << 16 | (size_t)au[off + 2] << 8 | au[off + 3];
    if (n == 0 || n > len - off - 4) return HD_EPROTO;
    const uint8_t *nal = au + off + 4;
    if ((nal[0] & 0x1f) == NAL_SPS && n >= 4 && !sps) {
      sps = nal;
      sps_len = n;
    } else if ((nal[0] & 0x1f) == NAL_PPS && !pps) {
      pps = nal;
      pps_len = n;
    }
    off += 4 + n;
  }
  if (!sps || !pps) return HD_ENOTFOUND;
  return avcc(sps, sps_len, pps, pps_len, out, cap);
}
