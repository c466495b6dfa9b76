/* SSRC / sequence / timestamp rewriting with continuity across source switches. */
#include "sfu/rewriter.h"

#include <string.h>

#include "proto/rtp.h"

#include "base/err.h"

void hd_rewriter_init(hd_rewriter_t *rw, uint32_t out_ssrc, uint32_t clock_rate) {
  memset(rw, 0, sizeof *rw);
  rw->out_ssrc = out_ssrc;
  rw->clock_rate = clock_rate ? clock_rate : 90000;
}

int hd_rewriter_map(hd_rewriter_t *rw, uint32_t src_ssrc, uint16_t src_seq, uint32_t src_ts, hd_time_t now,
                    uint16_t *out_seq, uint32_t *out_ts) {
  if (!rw->started || src_ssrc != rw->src_ssrc) {
    if (!rw->started) {
      /* First packet ever: keep the source's numbering shifted by nothing in
       * particular; any start value is valid (RFC 3550 §5.1 random start). */
      rw->seq_offset = 0;
      rw->ts_offset = 0;
    } else {
      uint16_t next_seq = (uint16_t)(rw->last_out_seq + 1);
      hd_time_t gap = now - rw->last_out_time;
      if (gap < 0) gap = 0;
      uint32_t ts_advance = (uint32_t)((gap * (int64_t)rw->clock_rate) / 1000000);
      if (ts_advance == 0) ts_advance = 1;
      rw->seq_offset = (uint16_t)(next_seq - src_seq);
      rw->ts_offset = rw->last_out_ts + ts_advance - src_ts;
      rw->switches++;
    }
    rw->started = 1;
    rw->src_ssrc = src_ssrc;
    rw->src_base_ext = 0x10000 + src_seq;
    rw->src_max_ext = rw->src_base_ext;
  } else {
    int64_t ext = hd_seq_extend(rw->src_max_ext, src_seq);
    if (ext < rw->src_base_ext) {
      rw->dropped_old++;
      return HD_EAGAIN;
    }
    if (ext > rw->src_max_ext) rw->src_max_ext = ext;
  }
  uint16_t os = (uint16_t)(src_seq + rw->seq_offset);
  uint32_t ot = src_ts + rw->ts_offset;
  /* track the newest packet sent for the next switch */
  if (rw->packets == 0 || (int16_t)(os - rw->last_out_seq) > 0) {
    rw->last_out_seq = os;
    rw->last_out_ts = ot;
    rw->last_out_time = now;
  }
  rw->packets++;
  *out_seq = os;
  *out_ts = ot;
  return 0;
}

int hd_rewriter_unmap_seq(const hd_rewriter_t *rw, uint16_t out_seq, uint16_t *src_seq) {
  if (!rw->started) return HD_ENOTFOUND;
  uint16_t s = (uint16_t)(out_seq - rw->seq_offset);
  int64_t ext = hd_seq_extend(rw->src_max_ext, s);
  if (ext < rw->src_base_ext || ext > rw->src_max_ext) return HD_ENOTFOUND;
  *src_seq = s;
  return 0;
}
