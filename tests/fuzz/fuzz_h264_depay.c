/* Fuzz target for the RFC 6184 H.264 depacketiser (src/media/h264_depay):
 * the input is a run of RTP packets, each [seq step][ts step][flags][len]
 * [payload]. Whatever arrives, every access unit that comes out must be well
 * formed AVCC (length-prefixed NAL units that add up to its length, as many
 * as it says, each with a valid header), fit the cap, and a keyframe must
 * come with an avcC record. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/h264_depay.h"

static void check(const hd_h264_depay_t *d, const hd_h264_au_t *au) {
  if (au->len == 0 || au->len > d->max_au || au->nals <= 0) abort();
  size_t off = 0;
  int n = 0;
  while (off < au->len) {
    if (au->len - off < 5) abort();
    size_t l = (size_t)au->data[off] << 24 | (size_t)au->data[off + 1] << 16 |
               (size_t)au->data[off + 2] << 8 | au->data[off + 3];
    if (l == 0 || l > au->len - off - 4) abort();
    uint8_t h = au->data[off + 4];
    if ((h & 0x80) || (h & 0x1f) == 0 || (h & 0x1f) > 23) abort();
    off += 4 + l;
    n++;
  }
  if (n != au->nals) abort();
  uint8_t avcc[2 * HD_H264_PARAM_MAX + 16];
  if (au->keyframe && hd_h264_depay_avcc(d, avcc, sizeof avcc) <= 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_h264_depay_t d;
  if (hd_h264_depay_init(&d, 4096) != 0) return 0;
  uint16_t seq = 0;
  uint32_t ts = 0;
  size_t off = 0;
  hd_h264_au_t au;
  while (size - off >= 4) {
    seq = (uint16_t)(seq + (int8_t)data[off]); /* steps back too: late packets */
    ts += data[off + 1] & 0x0f;
    int marker = data[off + 2] & 1;
    size_t len = data[off + 3];
    off += 4;
    if (len > size - off) len = size - off;
    int rc = hd_h264_depay_push(&d, seq, ts, marker, data + off, len, &au);
    if (rc == 1)
      check(&d, &au);
    else if (rc != 0 && rc != HD_EPROTO)
      abort();
    hd_h264_depay_take_key_request(&d);
    off += len;
  }
  if (hd_h264_depay_flush(&d, &au) == 1) check(&d, &au);
  hd_h264_depay_free(&d);
  return 0;
}
