/* Fuzz target for the RFC 2198 RED payload helpers (src/media/rtp_payload):
 * any input must be parsed or rejected without reading outside it; a parsed
 * primary block lies inside the input and ends it; rewriting block payload
 * types keeps the same primary (same bytes, same length). Also the VP8
 * hd_red_parse agrees with hd_red_primary, its blocks tile the input, and
 * hd_red_build of them gives the input back byte for byte; the audio jitter
 * buffer takes any RED payload (src/media/audio_jitter) without harm. Also the VP8
 * PictureID rewriter (src/sfu/vp8_rewriter) on the same bytes: it must not
 * write past the descriptor it parsed. And keyframe detection for VP8/H.264.
 * And the node's RED gap repair (src/sfu/red_repair): the input as the RED
 * payload of the packet after a gap of 1-15 (from its first byte): whatever
 * it rebuilds is RTP of the stream, inside the gap, oldest first. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "media/audio_jitter.h"
#include "media/rtp_payload.h"
#include "sfu/red_repair.h"
#include "sfu/vp8_rewriter.h"

static uint16_t g_rr_seq, g_rr_last;

static void rr_check(void *ud, const uint8_t *pkt, size_t len) {
  (void)ud;
  hd_rtp_hdr_t h;
  if (hd_rtp_parse(pkt, len, &h) < 0 || h.ssrc != 77 || h.pt != 63) abort();
  /* inside the gap, ascending */
  if ((int16_t)(h.seq - g_rr_seq) < 0 || (int16_t)(h.seq - g_rr_last) >= 0) abort();
  g_rr_seq = (uint16_t)(h.seq + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t pt, pt2;
  const uint8_t *prim, *prim2;
  size_t plen, plen2;
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  if (hd_red_primary(data, size, &pt, &prim, &plen) == 0) {
    if (prim < data || prim + plen != data + size) abort();
    int k = hd_red_rewrite_pt(copy, size, pt, (uint8_t)(pt ^ 0x55));
    if (k < 1) abort(); /* the primary's own pt at least */
    if (hd_red_primary(copy, size, &pt2, &prim2, &plen2) != 0 || plen2 != plen ||
        pt2 != (uint8_t)(pt ^ 0x55) || memcmp(prim2, prim, plen) != 0)
      abort();
  } else if (hd_red_rewrite_pt(copy, size, 1, 2) != HD_EPROTO) {
    abort();
  }
  hd_red_block_t b[HD_RED_MAX_BLOCKS];
  int n = hd_red_parse(data, size, b);
  if ((n > 0) != (hd_red_primary(data, size, &pt2, &prim2, &plen2) == 0)) abort();
  if (n > 0) {
    if (b[n - 1].data != prim2 || b[n - 1].len != plen2 || b[n - 1].pt != pt2) abort();
    const uint8_t *at = b[0].data;
    for (int i = 0; i < n; i++) {
      if (b[i].data != at) abort();
      at += b[i].len;
    }
    if (at != data + size) abort();
    uint8_t *re = malloc(size + 1);
    if (!re) abort();
    int m = hd_red_build(b, n, re, size + 1);
    if (m != (int)size || memcmp(re, data, size) != 0) abort();
    free(re);
  }
  static hd_audio_jitter_t j;
  static int j_ok;
  {
    hd_red_repair_t rr;
    hd_red_repair_init(&rr);
    hd_rtp_hdr_t h = {.version = 2, .pt = 63, .seq = 65530, .ts = 1000, .ssrc = 77};
    hd_red_repair_feed(&rr, &h, NULL, NULL);
    uint16_t gap = size ? (uint16_t)(data[0] % 16 + 1) : 1;
    h.seq = (uint16_t)(65530 + gap);
    h.ts = 1000 + gap * 960u;
    h.payload = data;
    h.payload_len = size;
    g_rr_seq = (uint16_t)(65530 + 1);
    g_rr_last = h.seq;
    int k = hd_red_repair_feed(&rr, &h, rr_check, NULL);
    if (k < 0 || k >= gap || (uint64_t)k != rr.repaired) abort();
  }
  if (!j_ok) j_ok = hd_audio_jitter_init(&j, NULL) == 0;
  if (j_ok && size >= 3) {
    uint16_t seq = (uint16_t)(data[0] << 8 | data[1]);
    hd_audio_jitter_push_red(&j, seq, (uint32_t)seq * 960, data + 2, size - 2, data[2] & 0x7f,
                             (hd_time_t)seq * 20000);
    hd_audio_jitter_out_t o;
    hd_audio_jitter_pull(&j, (hd_time_t)seq * 20000 + 100000, &o);
  }
  memcpy(copy, data, size);
  hd_vp8_rewriter_t r;
  hd_vp8_rewriter_init(&r);
  hd_vp8_rewrite(&r, 1, copy, size, 1);
  hd_vp8_rewrite(&r, 2, copy, size, 1);
  if (size > HD_VP8_RTP_DESC_MAX &&
      memcmp(copy + HD_VP8_RTP_DESC_MAX, data + HD_VP8_RTP_DESC_MAX, size - HD_VP8_RTP_DESC_MAX) != 0)
    abort(); /* only the descriptor may change */
  (void)hd_rtp_keyframe_start("VP8", data, size);
  (void)hd_rtp_keyframe_start("H264", data, size);
  free(copy);
  return 0;
}
