/* VP8 picture id continuity for one subscriber track (RFC 7741 §4.2): when the
 * node switches the source of a track (a simulcast layer, a new publisher
 * stream), PictureID and TL0PICIDX would jump; a receiver that follows
 * references by PictureID takes a jump for lost frames. Like the sequence
 * numbers (sfu/rewriter.h), both continue from the last value sent: the first
 * packet of a new source maps to last + 1, later ones keep the same offset.
 * Descriptors without the field are left alone; the field keeps its width. */
#ifndef HD_SFU_VP8_REWRITER_H
#define HD_SFU_VP8_REWRITER_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
  int started;
  uint32_t src_ssrc;
  uint16_t pid_off;  /* out = src + off (mod 2^15 or 2^7) */
  uint8_t tl0_off;   /* out = src + off (mod 2^8) */
  uint16_t last_pid; /* newest picture id sent */
  uint8_t last_tl0;
  int have_pid, have_tl0;
} hd_vp8_rewriter_t;

void hd_vp8_rewriter_init(hd_vp8_rewriter_t *r);
/* Rewrites the descriptor of a VP8 payload (in place) from source src_ssrc.
 * With `advance` 0 (a retransmission) the mapping is applied but not updated
 * and a packet of another source is left as it is. Returns 0, or a negative
 * error for a payload whose descriptor does not parse (left unchanged). */
int hd_vp8_rewrite(hd_vp8_rewriter_t *r, uint32_t src_ssrc, uint8_t *payload, size_t len, int advance);

#endif
