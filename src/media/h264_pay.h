/* H.264 RTP packetiser (sender side, RFC 6184 packetization-mode 1,
 * non-interleaved): one encoded access unit in Annex B form (ITU-T H.264
 * Annex B: NAL units behind 00 00 01 / 00 00 00 01 start codes, as x264,
 * OpenH264, hardware encoders and FFmpeg's h264_mp4toannexb give them) in,
 * RTP payloads out:
 *
 * - consecutive NAL units that fit together go in one STAP-A (§5.7.1: the
 *   SPS and PPS in front of an IDR, typically), with F = OR and NRI = the
 *   highest of the aggregated units (§5.7);
 * - a NAL unit that fits alone is a single NAL unit packet (§5.6);
 * - a larger one is split into FU-A fragments (§5.8): indicator F|NRI|28,
 *   header S|E|type, the NAL header byte itself not repeated.
 *
 * The marker bit goes on the access unit's last packet (§5.1). Access unit
 * delimiters (type 9) and filler data (type 12) are dropped: they carry
 * nothing a receiver needs (WebRTC senders drop them too). The receiving
 * side is media/h264_depay.h. Sans-IO, no allocation. Not thread-safe. */
#ifndef HD_MEDIA_H264_PAY_H
#define HD_MEDIA_H264_PAY_H
#include <stddef.h>
#include <stdint.h>

#define HD_H264_PAY_MAX_NALS 256     /* NAL units per access unit (more: HD_ENOSPC) */
#define HD_H264_PAY_MAX_PACKETS 8192 /* packets per access unit (more: HD_ENOSPC) */

typedef struct {
  size_t max_payload;
  const uint8_t *nal[HD_H264_PAY_MAX_NALS];
  size_t nal_len[HD_H264_PAY_MAX_NALS];
  int n_nals;
  int i;         /* next NAL unit to send */
  size_t fu_off; /* inside nal[i] while fragmenting (0: not) */
  int packets;   /* of the current access unit */
} hd_h264_pay_t;

/* max_payload: the largest RTP payload to write (>= 16). HD_EINVAL. */
int hd_h264_pay_init(hd_h264_pay_t *p, size_t max_payload);

/* Starts packetizing one Annex B access unit (lent until the last
 * hd_h264_pay_next). Returns the number of packets it will produce, or
 * HD_EPROTO (no start code first, an empty NAL unit, a forbidden_zero_bit
 * set, nal_unit_type 0 or > 23: not a NAL unit an encoder writes),
 * HD_EINVAL (nothing to send: empty, or only AUD/filler), HD_ENOSPC (over
 * HD_H264_PAY_MAX_NALS or HD_H264_PAY_MAX_PACKETS). */
int hd_h264_pay_begin(hd_h264_pay_t *p, const uint8_t *au, size_t len);

/* Writes the next packet's payload to out. Sets *marker (1 on the access
 * unit's last packet). Returns its length, 0 when the access unit is done,
 * HD_ENOSPC if cap < max_payload. */
int hd_h264_pay_next(hd_h264_pay_t *p, uint8_t *out, size_t cap, int *marker);

/* 1 if the Annex B access unit holds an IDR slice (nal_unit_type 5), 0 if
 * not, HD_EPROTO as hd_h264_pay_begin. */
int hd_h264_annexb_has_idr(const uint8_t *au, size_t len);

#endif
