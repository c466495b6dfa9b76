/* Outgoing stream rewriting for one subscriber track: maps whatever source
 * stream currently feeds it (SSRC, sequence numbers, timestamps) onto one
 * continuous outgoing stream, so the subscriber's jitter buffer and decoder see
 * no jumps when the source restarts or is switched (RFC 3550 §5.1 / §8.2:
 * a receiver treats a seq/ts discontinuity as loss or a new source).
 *
 * On a source switch the next packet continues at last_seq + 1 and at a
 * timestamp advanced by the wall-clock time since the last packet sent. Packets
 * of the current source that arrive late (older than the switch) are dropped. */
#ifndef HD_SFU_REWRITER_H
#define HD_SFU_REWRITER_H
#include <stdint.h>

#include "base/time.h"

typedef struct {
  uint32_t out_ssrc;
  uint32_t clock_rate;
  int started;
  uint32_t src_ssrc;
  uint16_t seq_offset;  /* out_seq = src_seq + seq_offset */
  uint32_t ts_offset;   /* out_ts = src_ts + ts_offset */
  int64_t src_base_ext; /* extended src seq of the first packet after the last switch */
  int64_t src_max_ext;  /* highest extended src seq forwarded */
  uint16_t last_out_seq;
  uint32_t last_out_ts;
  hd_time_t last_out_time;
  uint64_t packets, switches, dropped_old;
} hd_rewriter_t;

void hd_rewriter_init(hd_rewriter_t *rw, uint32_t out_ssrc, uint32_t clock_rate);
/* Maps a source packet's (ssrc, seq, ts) to outgoing (seq, ts). Returns 0, or
 * HD_EAGAIN if the packet belongs to before the last switch and must be dropped. */
int hd_rewriter_map(hd_rewriter_t *rw, uint32_t src_ssrc, uint16_t src_seq, uint32_t src_ts, hd_time_t now,
                    uint16_t *out_seq, uint32_t *out_ts);
/* Maps an outgoing seq (e.g. from a subscriber's NACK) back to the current
 * source's seq. Returns 0, or HD_ENOTFOUND when it predates the current source. */
int hd_rewriter_unmap_seq(const hd_rewriter_t *rw, uint16_t out_seq, uint16_t *src_seq);
/* Maps a source RTP timestamp to the outgoing one (for SR generation). */
static inline uint32_t hd_rewriter_map_ts(const hd_rewriter_t *rw, uint32_t src_ts) {
  return src_ts + rw->ts_offset;
}

#endif
