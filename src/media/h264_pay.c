/* H.264 RTP packetiser (see h264_pay.h). */
#include "media/h264_pay.h"

#include <string.h>

#include "base/err.h"

enum { NAL_AUD = 9, NAL_FILLER = 12, NAL_STAP_A = 24, NAL_FU_A = 28 };

int hd_h264_pay_init(hd_h264_pay_t *p, size_t max_payload) {
  if (!p || max_payload < 16) return HD_EINVAL;
  memset(p, 0, sizeof *p);
  p->max_payload = max_payload;
  return 0;
}

/* the NAL units of an Annex B byte stream (§B.2: a start code is 00 00 01,
 * possibly after more zero bytes; trailing zero bytes belong to no NAL unit) */
typedef struct {
  const uint8_t *nal[HD_H264_PAY_MAX_NALS];
  size_t len[HD_H264_PAY_MAX_NALS];
  int n;
} nals_t;

static size_t next_start(const uint8_t *b, size_t len, size_t from) {
  for (size_t i = from; i + 3 <= len; i++)
    if (b[i] == 0 && b[i + 1] == 0 && b[i + 2] == 1) return i;
  return len;
}

static int split(const uint8_t *au, size_t len, nals_t *o) {
  o->n = 0;
  size_t i = 0;
  while (i < len && au[i] == 0)
    i++;
  if (i < 2 || i >= len || au[i] != 1) return HD_EPROTO; /* must open with a start code */
  size_t s = next_start(au, len, 0);
  while (s < len) {
    size_t begin = s + 3;
    size_t e = next_start(au, len, begin);
    size_t end = e;
    while (end > begin && au[end - 1] == 0) /* zero bytes before the next start code */
      end--;
    if (end == begin) return HD_EPROTO;
    int type = au[begin] & 0x1f;
    if ((au[begin] & 0x80) || type == 0 || type > 23) return HD_EPROTO;
    if (type != NAL_AUD && type != NAL_FILLER) {
      if (o->n == HD_H264_PAY_MAX_NALS) return HD_ENOSPC;
      o->nal[o->n] = au + begin;
      o->len[o->n++] = end - begin;
    }
    s = e;
  }
  return o->n;
}

/* how many NAL units from i go into one STAP-A (>= 2), or 1 (send alone) */
static int stap_count(const hd_h264_pay_t *p, int i) {
  size_t size = 1;
  int k = i;
  while (k < p->n_nals && size + 2 + p->nal_len[k] <= p->max_payload && p->nal_len[k] <= 0xffff) {
    size += 2 + p->nal_len[k];
    k++;
  }
  return k - i >= 2 ? k - i : 1;
}

int hd_h264_pay_begin(hd_h264_pay_t *p, const uint8_t *au, size_t len) {
  if (!p || !p->max_payload || (!au && len)) return HD_EINVAL;
  if (!len) return HD_EINVAL;
  static __thread nals_t ns;
  int n = split(au, len, &ns);
  if (n < 0) return n;
  if (n == 0) return HD_EINVAL;
  memcpy(p->nal, ns.nal, sizeof ns.nal[0] * (size_t)n);
  memcpy(p->nal_len, ns.len, sizeof ns.len[0] * (size_t)n);
  p->n_nals = n;
  p->i = 0;
  p->fu_off = 0;
  /* count the packets */
  long packets = 0;
  for (int i = 0; i < n;) {
    int k = stap_count(p, i);
    if (k > 1 || p->nal_len[i] <= p->max_payload) {
      packets++;
      i += k;
      continue;
    }
    size_t chunk = p->max_payload - 2;
    packets += (long)((p->nal_len[i] - 1 + chunk - 1) / chunk);
    i++;
  }
  if (packets > HD_H264_PAY_MAX_PACKETS) {
    p->n_nals = 0;
    return HD_ENOSPC;
  }
  p->packets = (int)packets;
  return (int)packets;
}

int hd_h264_pay_next(hd_h264_pay_t *p, uint8_t *out, size_t cap, int *marker) {
  if (!p || !out || !marker) return HD_EINVAL;
  if (p->i >= p->n_nals) return 0;
  if (cap < p->max_payload) return HD_ENOSPC;
  int i = p->i;
  const uint8_t *nal = p->nal[i];
  size_t nl = p->nal_len[i];
  size_t w = 0;
  if (!p->fu_off) {
    int k = stap_count(p, i);
    if (k > 1) { /* STAP-A (§5.7.1) */
      uint8_t f = 0, nri = 0;
      w = 1;
      for (int j = i; j < i + k; j++) {
        f |= p->nal[j][0] & 0x80;
        if ((p->nal[j][0] & 0x60) > nri) nri = p->nal[j][0] & 0x60;
        out[w++] = (uint8_t)(p->nal_len[j] >> 8);
        out[w++] = (uint8_t)p->nal_len[j];
        memcpy(out + w, p->nal[j], p->nal_len[j]);
        w += p->nal_len[j];
      }
      out[0] = (uint8_t)(f | nri | NAL_STAP_A);
      p->i += k;
      *marker = p->i >= p->n_nals;
      return (int)w;
    }
    if (nl <= p->max_payload) { /* single NAL unit packet (§5.6) */
      memcpy(out, nal, nl);
      p->i++;
      *marker = p->i >= p->n_nals;
      return (int)nl;
    }
    p->fu_off = 1; /* FU-A: the NAL header byte goes into the FU indicator/header */
  }
  size_t chunk = p->max_payload - 2;
  size_t left = nl - p->fu_off;
  size_t take = left < chunk ? left : chunk;
  int start = p->fu_off == 1, end = take == left;
  out[0] = (uint8_t)((nal[0] & 0xe0) | NAL_FU_A);
  out[1] = (uint8_t)((start ? 0x80 : 0) | (end ? 0x40 : 0) | (nal[0] & 0x1f));
  memcpy(out + 2, nal + p->fu_off, take);
  p->fu_off += take;
  if (end) {
    p->fu_off = 0;
    p->i++;
  }
  *marker = end && p->i >= p->n_nals;
  return (int)(take + 2);
}

int hd_h264_annexb_has_idr(const uint8_t *au, size_t len) {
  if (!au || !len) return HD_EINVAL;
  static __thread nals_t ns;
  int n = split(au, len, &ns);
  if (n < 0) return n;
  for (int i = 0; i < n; i++)
    if ((ns.nal[i][0] & 0x1f) == 5) return 1;
  return 0;
}
