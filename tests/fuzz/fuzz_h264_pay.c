/* Fuzz target for the RFC 6184 H.264 packetiser (src/media/h264_pay), which
 * parses Annex B input: [mtu selector][access unit bytes]. Whatever the
 * input, a begun access unit must come out as exactly the promised number of
 * payloads, each within the MTU, the marker on the last only, every payload
 * a single NAL unit (1-23), STAP-A or FU-A; reassembled here, the payloads
 * give back the NAL units the packetiser found, in order, byte for byte; and
 * the depacketiser (src/media/h264_depay) takes them without a protocol
 * error. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/h264_depay.h"
#include "media/h264_pay.h"

static uint8_t re[1 << 17];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1 << 16)) return 0;
  size_t mtu = 16 + data[0] * 5;
  static hd_h264_pay_t p;
  if (hd_h264_pay_init(&p, mtu) != 0) abort();
  int n = hd_h264_pay_begin(&p, data + 1, size - 1);
  if (n <= 0) return 0;
  static hd_h264_depay_t d;
  static int d_init;
  if (!d_init && hd_h264_depay_init(&d, 0) == 0) d_init = 1;
  uint8_t out[16 + 255 * 5];
  int marker, len, k = 0;
  size_t w = 0;  /* reassembled: NAL units behind 4-byte lengths */
  size_t fu = 0; /* offset of an open FU-A's length */
  int fu_open = 0;
  static uint16_t seq;
  static uint32_t ts;
  ts += 3000;
  while ((len = hd_h264_pay_next(&p, out, sizeof out, &marker)) > 0) {
    k++;
    if ((size_t)len > mtu || marker != (k == n)) abort();
    int type = out[0] & 0x1f;
    if (type >= 1 && type <= 23) {
      if (fu_open) abort();
      if (w + 4 + (size_t)len > sizeof re) abort();
      memcpy(re + w, &(uint32_t){(uint32_t)len}, 4);
      memcpy(re + w + 4, out, (size_t)len);
      w += 4 + (size_t)len;
    } else if (type == 24) {
      if (fu_open) abort();
      for (size_t o = 1; o < (size_t)len;) {
        if ((size_t)len - o < 2) abort();
        uint32_t l = (uint32_t)out[o] << 8 | out[o + 1];
        o += 2;
        if (l == 0 || l > (size_t)len - o || w + 4 + l > sizeof re) abort();
        memcpy(re + w, &l, 4);
        memcpy(re + w + 4, out + o, l);
        w += 4 + l;
        o += l;
      }
    } else if (type == 28) {
      if (len < 3) abort();
      int s = (out[1] & 0x80) != 0, e = (out[1] & 0x40) != 0;
      if (s == fu_open) abort(); /* a start exactly when none is open */
      if (s) {
        fu = w;
        w += 4;
        re[w++] = (uint8_t)((out[0] & 0xe0) | (out[1] & 0x1f));
        fu_open = 1;
      }
      if (w + (size_t)len - 2 > sizeof re) abort();
      memcpy(re + w, out + 2, (size_t)len - 2);
      w += (size_t)len - 2;
      if (e) {
        uint32_t l = (uint32_t)(w - fu - 4);
        memcpy(re + fu, &l, 4);
        fu_open = 0;
      }
    } else {
      abort();
    }
    if (d_init) {
      hd_h264_au_t au;
      if (hd_h264_depay_push(&d, seq++, ts, marker, out, (size_t)len, &au) == HD_EPROTO) abort();
      hd_h264_depay_take_key_request(&d);
    }
  }
  if (len != 0 || k != n || fu_open) abort();
  /* the reassembled NAL units are the ones found */
  size_t o = 0;
  for (int i = 0; i < p.n_nals; i++) {
    uint32_t l;
    if (w - o < 4) abort();
    memcpy(&l, re + o, 4);
    if (l != p.nal_len[i] || w - o - 4 < l || memcmp(re + o + 4, p.nal[i], l)) abort();
    o += 4 + l;
  }
  if (o != w) abort();
  return 0;
}
