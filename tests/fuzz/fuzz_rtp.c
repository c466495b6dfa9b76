/* Fuzz target for src/proto/rtp: parse, walk extensions, rewrite in place, RTX
 * round trip. Anything the parser accepts must survive every other call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "proto/rtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  (void)hd_rtp_is_rtp(data, size);
  (void)hd_rtp_is_rtcp(data, size);
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(data, size, &h) != 0) return 0;
  if (h.hdr_len + h.payload_len + h.pad_len != size) abort();

  hd_rtp_ext_iter_t it;
  hd_rtp_ext_iter_init(&it, &h);
  uint8_t id;
  const uint8_t *d;
  size_t l;
  int n = 0;
  char s[64];
  while (hd_rtp_ext_next(&it, &id, &d, &l) == 1) {
    if (d < data || d + l > data + size) abort();
    uint32_t v32;
    uint16_t v16;
    int voice;
    uint8_t lvl;
    (void)hd_rtp_abs_send_time_parse(d, l, &v32);
    (void)hd_rtp_twcc_seq_parse(d, l, &v16);
    (void)hd_rtp_audio_level_parse(d, l, &voice, &lvl);
    (void)hd_rtp_ext_string(d, l, s, sizeof s);
    if (++n > 300) abort(); /* a block of <= 262140 bytes has bounded elements */
  }

  uint8_t *copy = malloc(size);
  if (!copy) return 0;
  memcpy(copy, data, size);
  (void)hd_rtp_set_seq(copy, size, 1);
  (void)hd_rtp_set_ts(copy, size, 2);
  (void)hd_rtp_set_ssrc(copy, size, 3);
  (void)hd_rtp_set_pt(copy, size, 4);
  (void)hd_rtp_set_marker(copy, size, 1);
  for (int i = 1; i < 16; i++) {
    const uint8_t *dd;
    size_t ll;
    if (hd_rtp_ext_find(&h, (uint8_t)i, &dd, &ll) == 0) {
      uint8_t zero[256] = {0};
      if (hd_rtp_ext_rewrite(copy, size, (uint8_t)i, zero, ll) != 0) abort();
      (void)hd_rtp_ext_blank(copy, size, (uint8_t)i);
    }
  }
  size_t cap = size + 2;
  uint8_t *rtx = malloc(cap), *back = malloc(cap);
  if (rtx && back) {
    int rn = hd_rtp_rtx_build(data, size, 9, 97, 5, rtx, cap);
    if (rn > 0) {
      uint16_t osn;
      int bn = hd_rtp_rtx_decode(rtx, (size_t)rn, h.ssrc, h.pt, back, cap, &osn);
      if (bn < 0 || osn != h.seq || (size_t)bn != h.hdr_len + h.payload_len) abort();
      if (memcmp(back + h.hdr_len, h.payload, h.payload_len) != 0) abort();
    }
  }
  free(rtx);
  free(back);
  free(copy);
  return 0;
}
