/* Fuzz target for the VP8 temporal layer filter (src/sfu/temporal.h): the
 * input is a stream of packet events (seq jumps, reordering, TIDs, sync and
 * keyframe bits, target changes, source switches, PictureID rewrites). Any
 * order must be handled without reading outside the history, and every
 * verdict must be consistent with the filter's own maps: a forwarded packet's
 * out seq maps back to its source seq, a padded one reads as padding, a
 * forwarded source seq maps forward to its out seq. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"
#include "sfu/temporal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  hd_tl_filter_t f;
  hd_tl_filter_init(&f);
  uint16_t seq = 1000;
  uint32_t ssrc = 1;
  int pid = 0;
  for (size_t i = 0; i + 4 <= size; i += 4) {
    const uint8_t *e = data + i;
    if (e[0] == 0xff) { /* control: target or source switch */
      if (e[1] & 0x80)
        ssrc++;
      else
        hd_tl_filter_set_target(&f, e[1] & 3);
      continue;
    }
    seq = (uint16_t)(seq + (int8_t)e[0]);
    pid = (pid + (e[3] & 0x7)) & 0x7fff;
    hd_tl_pkt_t p = {.tid = (e[1] & 0x4) ? -1 : (e[1] & 3),
                     .layer_sync = (e[1] >> 3) & 1,
                     .picture_id = (e[1] & 0x40) ? -1 : pid,
                     .frame_start = (e[1] >> 4) & 1,
                     .keyframe = (e[1] >> 5) & 1};
    uint16_t out = 0, back = 0, fwd = 0;
    int v = hd_tl_filter_feed(&f, ssrc, seq, &p, &out);
    if (v != HD_TL_FORWARD && v != HD_TL_DROP && v != HD_TL_PAD) abort();
    if (v == HD_TL_FORWARD) {
      if (hd_tl_filter_unmap(&f, out, &back) != HD_TL_FORWARD || back != seq) abort();
      if (hd_tl_filter_map(&f, seq, &fwd) != 0 || fwd != out) abort();
    } else if (v == HD_TL_PAD) {
      if (hd_tl_filter_unmap(&f, out, &back) != HD_TL_PAD) abort();
    }
    /* a NACK for any seq: mapped or refused, never out of bounds */
    uint16_t q = (uint16_t)(out - e[2]);
    int u = hd_tl_filter_unmap(&f, q, &back);
    if (u != HD_TL_FORWARD && u != HD_TL_PAD && u != HD_ENOTFOUND) abort();
    /* the PictureID rewrite of a real descriptor */
    hd_vp8_desc_t d;
    memset(&d, 0, sizeof d);
    d.start = (uint8_t)p.frame_start;
    d.picture_id = p.picture_id;
    d.picture_id_bits = (e[2] & 1) ? 7 : 15;
    if (d.picture_id_bits == 7 && d.picture_id > 0x7f) d.picture_id &= 0x7f;
    d.tl0picidx = e[3];
    d.tid = p.tid;
    d.keyidx = -1;
    uint8_t buf[HD_VP8_RTP_DESC_MAX + 1];
    int n = hd_vp8_desc_write(&d, buf, sizeof buf);
    if (n <= 0) abort();
    buf[n] = 0x01;
    if (hd_tl_filter_rewrite_pid(&f, buf, (size_t)n + 1) != 0) abort();
    hd_vp8_desc_t d2;
    if (hd_vp8_depay_parse(buf, (size_t)n + 1, &d2) != 0 || d2.tl0picidx != d.tl0picidx || d2.tid != d.tid)
      abort();
  }
  return 0;
}
