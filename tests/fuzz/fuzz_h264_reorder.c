/* Fuzz target for the H.264 reorder window (src/media/h264_reorder) in
 * front of the depacketiser: the input is a run of packets, each [seq delta
 * (signed)][time step ms][flags][len][payload]. Whatever arrives (reordered,
 * duplicated, far jumps, huge gaps), the window holds at most its slots,
 * hands packets out in sequence order (the depacketiser never counts one as
 * late), its deadline is never in the past after a poll, and every access
 * unit is well formed AVCC. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/h264_reorder.h"

static void check(const hd_h264_au_t *au) {
  if (au->len == 0 || au->nals <= 0) abort();
  size_t off = 0;
  while (off < au->len) {
    if (au->len - off < 5) abort();
    size_t l = (size_t)au->data[off] << 24 | (size_t)au->data[off + 1] << 16 |
               (size_t)au->data[off + 2] << 8 | au->data[off + 3];
    if (l == 0 || l > au->len - off - 4) abort();
    off += 4 + l;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static hd_h264_reorder_t r;
  if (hd_h264_reorder_init(&r, HD_MS(100), 1 << 16) != 0) return 0;
  uint16_t seq = 1000;
  uint32_t ts = 0;
  hd_time_t now = HD_SEC(1);
  size_t off = 0;
  hd_h264_au_t au;
  while (size - off >= 4) {
    int8_t ds = (int8_t)data[off];
    uint8_t step = data[off + 1], flags = data[off + 2], len = data[off + 3];
    off += 4;
    if (len > size - off) len = (uint8_t)(size - off);
    if (flags & 0x80) /* a far jump */
      seq = (uint16_t)(seq + (uint16_t)ds * 300u);
    else
      seq = (uint16_t)(seq + (uint16_t)(int16_t)ds);
    if (flags & 0x40) ts += 3000;
    now += HD_MS(step);
    int rc = hd_h264_reorder_push(&r, seq, ts, flags & 1, data + off, len, now);
    if (rc < 0 && rc != HD_ENOSPC) abort();
    off += len;
    if (r.count > HD_H264_REORDER_SLOTS) abort();
    while ((rc = hd_h264_reorder_poll(&r, now, &au)) == 1)
      check(&au);
    if (rc != 0) abort();
    if (hd_h264_reorder_next_timeout(&r) < now) abort();
    if (r.depay.stats.late) abort(); /* the window hands packets out in order */
    hd_h264_reorder_take_key_request(&r);
  }
  /* after the window, everything held goes out */
  now += HD_SEC(10);
  while (hd_h264_reorder_poll(&r, now, &au) == 1)
    check(&au);
  if (r.count) abort();
  hd_h264_reorder_free(&r);
  return 0;
}
