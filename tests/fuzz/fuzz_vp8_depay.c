/* Fuzz target for the RFC 7741 VP8 depacketizer (src/media/rtp_payload): any
 * input must parse or be rejected without reading outside it; what parses
 * must re-serialise to the same descriptor; and the input packetized as a frame
 * must depacketize back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_vp8_desc_t d;
  if (hd_vp8_depay_parse(data, size, &d) == 0) {
    if (d.data != data + d.desc_len || d.desc_len + d.data_len != size || d.data_len == 0) abort();
    uint8_t w[HD_VP8_RTP_DESC_MAX];
    int n = hd_vp8_desc_write(&d, w, sizeof(w));
    if (n <= 0 || (size_t)n > d.desc_len) abort();
    hd_vp8_desc_t d2;
    uint8_t buf[HD_VP8_RTP_DESC_MAX + 1];
    memcpy(buf, w, (size_t)n);
    buf[n] = d.data[0];
    if (hd_vp8_depay_parse(buf, (size_t)n + 1, &d2) != 0) abort();
    if (d2.picture_id != d.picture_id || d2.tl0picidx != d.tl0picidx || d2.tid != d.tid ||
        d2.keyidx != d.keyidx || d2.start != d.start || d2.part_id != d.part_id || d2.keyframe != d.keyframe)
      abort();
  }
  if (size == 0) return 0;
  /* packetize with an MTU derived from the input, reassemble, compare */
  hd_vp8_pay_t p;
  size_t mtu = 5 + data[0] % 64;
  if (hd_vp8_pay_init(&p, mtu, (uint16_t)size) != 0) abort();
  int np = hd_vp8_pay_begin(&p, data, size);
  if (np == HD_ENOSPC) return 0;
  if (np <= 0) abort();
  uint8_t *again = malloc(size);
  if (!again) return 0;
  size_t got = 0;
  uint8_t pkt[80];
  int marker = 0, len, count = 0;
  while ((len = hd_vp8_pay_next(&p, pkt, sizeof(pkt), &marker)) > 0) {
    if ((size_t)len > mtu) abort();
    if (hd_vp8_depay_parse(pkt, (size_t)len, &d) != 0) abort();
    if (got + d.data_len > size) abort();
    memcpy(again + got, d.data, d.data_len);
    got += d.data_len;
    count++;
  }
  if (len != 0 || count != np || !marker || got != size || memcmp(again, data, size) != 0) abort();
  free(again);
  return 0;
}
