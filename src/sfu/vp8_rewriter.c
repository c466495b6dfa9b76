/* VP8 PictureID / TL0PICIDX rewriting (see vp8_rewriter.h). */
#include "sfu/vp8_rewriter.h"

#include <string.h>

#include "base/err.h"
#include "media/rtp_payload.h"

void hd_vp8_rewriter_init(hd_vp8_rewriter_t *r) { memset(r, 0, sizeof *r); }

int hd_vp8_rewrite(hd_vp8_rewriter_t *r, uint32_t src_ssrc, uint8_t *payload, size_t len, int advance) {
  hd_vp8_desc_t d;
  int rc = hd_vp8_depay_parse(payload, len, &d);
  if (rc < 0) return rc;
  if (!r->started || src_ssrc != r->src_ssrc) {
    if (!advance) return 0; /* not the stream being sent */
    /* a new source: continue right after what was sent last */
    r->pid_off = d.picture_id >= 0 && r->have_pid ? (uint16_t)(r->last_pid + 1 - d.picture_id) : 0;
    r->tl0_off = d.tl0picidx >= 0 && r->have_tl0 ? (uint8_t)(r->last_tl0 + 1 - d.tl0picidx) : 0;
    r->src_ssrc = src_ssrc;
    r->started = 1;
  }
  /* the descriptor layout (RFC 7741 §4.2): byte 0, X byte, then I/L fields */
  if (!(payload[0] & 0x80)) return 0;
  size_t off = 2;
  if (d.picture_id >= 0) {
    if (d.picture_id_bits == 15) {
      uint16_t pid = (uint16_t)((d.picture_id + r->pid_off) & 0x7fff);
      payload[off] = (uint8_t)(0x80 | (pid >> 8));
      payload[off + 1] = (uint8_t)pid;
      off += 2;
      if (advance && (!r->have_pid || (int16_t)((uint16_t)(pid << 1) - (uint16_t)(r->last_pid << 1)) > 0)) {
        r->last_pid = pid;
        r->have_pid = 1;
      }
    } else {
      uint8_t pid = (uint8_t)((d.picture_id + r->pid_off) & 0x7f);
      payload[off] = pid;
      off += 1;
      if (advance && (!r->have_pid || (int8_t)((uint8_t)(pid << 1) - (uint8_t)(r->last_pid << 1)) > 0)) {
        r->last_pid = pid;
        r->have_pid = 1;
      }
    }
  }
  if (d.tl0picidx >= 0) {
    uint8_t tl0 = (uint8_t)(d.tl0picidx + r->tl0_off);
    payload[off] = tl0;
    if (advance && (!r->have_tl0 || (int8_t)(tl0 - r->last_tl0) > 0)) {
      r->last_tl0 = tl0;
      r->have_tl0 = 1;
    }
  }
  return 0;
}
