/* Fuzz target for the recording timeline (src/egress/timeline): RTP
 * timestamps, sender reports and arrival times all come from publishers and
 * the network. The input is a list of 24-byte operations: push (track,
 * keyframe, RTP time, SR or not, SR NTP/RTP, arrival step) or poll/flush.
 * Invariants: every pushed frame comes out exactly once (after a final
 * flush), with a timeline time >= 0, its own bytes, and the queue caps hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "egress/timeline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_eg_timeline_t tl;
  int64_t now = INT64_C(1700000000000000);
  hd_eg_tl_init(&tl, now, 3000000);
  int tr[3] = {hd_eg_tl_add_track(&tl, "a", 48000), hd_eg_tl_add_track(&tl, "a", 90000),
               hd_eg_tl_add_track(&tl, "b", 90000)};
  if (tr[0] < 0 || tr[1] < 0 || tr[2] < 0) abort();
  uint64_t pushed = 0, out = 0;
  hd_eg_tl_frame_t f;
  for (size_t off = 0; off + 24 <= size; off += 24) {
    const uint8_t *p = data + off;
    now += (int64_t)(p[1] & 0x7f) * 1000; /* arrival steps of 0..127 ms */
    if (p[0] & 0x80) {
      if (p[0] & 0x40) hd_eg_tl_flush(&tl);
      while (hd_eg_tl_poll(&tl, now, &f) == 1) {
        if (f.t_us < 0 || f.len != 1 + (f.data[0] & 3) || f.track < 0 || f.track > 2) abort();
        out++;
      }
      continue;
    }
    uint8_t payload[4] = {p[2], p[2], p[2], p[2]};
    size_t len = 1 + (p[2] & 3);
    uint64_t ntp = (uint64_t)rd32(p + 8) << 32 | rd32(p + 12);
    int rc = hd_eg_tl_push(&tl, tr[p[0] % 3], payload, len, p[0] & 8, rd32(p + 4), p[0] & 16, ntp,
                           rd32(p + 16), now);
    if (rc == 0)
      pushed++;
    else if (rc != HD_ENOSPC)
      abort();
  }
  hd_eg_tl_flush(&tl);
  while (hd_eg_tl_poll(&tl, INT64_MAX, &f) == 1) {
    if (f.t_us < 0) abort();
    out++;
  }
  if (out != pushed) abort();
  for (int i = 0; i < tl.n_tr; i++)
    if (tl.tr[i].q_n > HD_EG_TL_MAX_FRAMES || tl.tr[i].q_bytes > HD_EG_TL_MAX_BYTES) abort();
  hd_eg_tl_free(&tl);
  return 0;
}
