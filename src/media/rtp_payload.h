/* RTP payload formats for the codecs the native SDK sends:
 *
 * - VP8 (RFC 7741 §4): each packet starts with the VP8 payload descriptor
 *   (X, N, S, PartID; extension byte I/L/T/K; PictureID 7/15 bit; TL0PICIDX;
 *   TID/Y/KEYIDX). The packetizer splits one encoded frame into packets of at
 *   most max_payload bytes (descriptor included) of near-equal size, S=1 on
 *   the first, always a 15-bit PictureID incremented per frame, and the marker
 *   on the last (RFC 7741 §4.1). The depacketizer parses the descriptor and,
 *   on the first packet of a frame, the VP8 payload header (§4.3: P bit =
 *   inverse keyframe flag, keyframe dimensions).
 * - Opus (RFC 7587 §4.2): one Opus packet per RTP packet, 48 kHz clock, marker
 *   on the first packet after a DTX pause.
 *
 * Payload bytes only: the caller builds the RTP header (hd_rtp_build) with its
 * own seq/ssrc/extensions and the marker/timestamp given here. */
#ifndef HD_MEDIA_RTP_PAYLOAD_H
#define HD_MEDIA_RTP_PAYLOAD_H
#include <stddef.h>
#include <stdint.h>

#define HD_VP8_RTP_DEFAULT_MAX_PAYLOAD 1200
#define HD_VP8_RTP_DESC_MAX 6       /* longest descriptor: 1 + X + 2 PictureID + TL0 + TID */
#define HD_VP8_RTP_MAX_PACKETS 1024 /* cap on packets per frame */
#define HD_VP8_RTP_CLOCK 90000
#define HD_OPUS_RTP_CLOCK 48000

/* ---- VP8 packetizer ---- */

typedef struct {
  size_t max_payload;  /* cap per packet, descriptor included */
  uint16_t picture_id; /* 15-bit, of the next frame */
  /* current frame (lent by the caller between begin and the last next) */
  const uint8_t *frame;
  size_t len, off;
  size_t n_packets, sent, chunk, extra; /* split plan: chunk bytes, first `extra` get +1 */
  int keyframe;
} hd_vp8_pay_t;

/* max_payload: 0 = HD_VP8_RTP_DEFAULT_MAX_PAYLOAD; must exceed the 4-byte
 * descriptor we write (HD_EINVAL otherwise). first_picture_id is masked to 15 bits
 * (pass a random value per stream, as RFC 7741 §4.2 suggests). */
int hd_vp8_pay_init(hd_vp8_pay_t *p, size_t max_payload, uint16_t first_picture_id);

/* Starts packetizing one encoded frame (lent until the last hd_vp8_pay_next).
 * Returns the number of packets it will produce, HD_EINVAL on an empty frame,
 * HD_ENOSPC when it would need more than HD_VP8_RTP_MAX_PACKETS. */
int hd_vp8_pay_begin(hd_vp8_pay_t *p, const uint8_t *frame, size_t len);

/* Writes the next packet's payload (descriptor + data) to out. Sets *marker
 * (1 on the frame's last packet). Returns its length, 0 when the frame is
 * done (the PictureID then advances), HD_ENOSPC if cap < max_payload needed. */
int hd_vp8_pay_next(hd_vp8_pay_t *p, uint8_t *out, size_t cap, int *marker);

/* ---- VP8 depacketizer ---- */

typedef struct {
  uint8_t non_ref;         /* N */
  uint8_t start;           /* S: first packet of a VP8 partition */
  uint8_t part_id;         /* PartID 0..8 (values 9..15 are rejected) */
  int picture_id;          /* -1 when absent, else 7- or 15-bit value */
  uint8_t picture_id_bits; /* 0, 7 or 15 */
  int tl0picidx;           /* -1 when absent */
  int tid;                 /* -1 when absent (T bit) */
  uint8_t layer_sync;      /* Y */
  int keyidx;              /* -1 when absent (K bit) */
  size_t desc_len;         /* descriptor bytes */
  const uint8_t *data;     /* VP8 bitstream bytes after the descriptor */
  size_t data_len;         /* > 0 after a successful parse */
  /* Set only when this is a frame's first packet (start && part_id == 0). */
  uint8_t frame_start;
  uint8_t keyframe;  /* frame_start && P bit == 0 */
  int width, height; /* keyframe dimensions when the packet holds them, else 0 */
} hd_vp8_desc_t;

/* Parses the RFC 7741 descriptor of one RTP payload. Returns 0;
 * HD_ETRUNC when a flagged field or the data is missing; HD_EPROTO on a
 * PartID > 8. Never reads outside payload[0..len). */
int hd_vp8_depay_parse(const uint8_t *payload, size_t len, hd_vp8_desc_t *d);

/* Writes a descriptor (for tests and for rewriting PictureIDs in a relay):
 * fields of d with picture_id/tl0picidx/tid/keyidx >= 0 are written (PictureID
 * 15-bit when picture_id_bits != 7). Returns the length or HD_ENOSPC/HD_EINVAL. */
int hd_vp8_desc_write(const hd_vp8_desc_t *d, uint8_t *out, size_t cap);

/* ---- keyframes, for a forwarder that does not decode ---- */

/* Whether an RTP payload of `codec` (SDP encoding name, any case) starts a
 * keyframe: VP8 — first packet of a frame (S=1, PartID 0) with P=0 (RFC 7741
 * §4.2-4.3); H.264 — an IDR slice or SPS, alone, in a STAP-A or as the start
 * of an FU-A (RFC 6184 §5.6-5.8; NAL types 5 and 7). Returns 1 or 0, or
 * HD_EUNSUPPORTED for a codec it cannot tell (the caller must not wait for a
 * keyframe it will never recognise). Never reads outside payload[0..len). */
int hd_rtp_keyframe_start(const char *codec, const uint8_t *payload, size_t len);

/* ---- RED (RFC 2198), as browsers use it for Opus ---- */

#define HD_RED_MAX_BLOCKS 16 /* blocks per RED payload we accept (browsers send 2-3, the SDK up to 10) */

/* The primary (last, newest) block of a RED payload (RFC 2198 §3: 4-byte
 * headers with F=1 for each redundant block, a 1-byte header with F=0 for the
 * primary, then the blocks in the same order): its payload type and bytes
 * (pointing into p). Returns 0, or HD_EPROTO for a malformed payload (lengths
 * past the end, more than HD_RED_MAX_BLOCKS blocks). */
int hd_red_primary(const uint8_t *p, size_t len, uint8_t *pt, const uint8_t **data, size_t *dlen);
/* Rewrites, in place, the payload type of every block that is `from` into
 * `to` (a receiver that numbered Opus differently). Returns the number of
 * blocks rewritten or HD_EPROTO. */
int hd_red_rewrite_pt(uint8_t *p, size_t len, uint8_t from, uint8_t to);

/* One block of a RED payload: the redundant ones carry their timestamp offset
 * back from the RTP header's (14 bits, RFC 2198 §3); the primary has offset 0. */
typedef struct {
  uint8_t pt;
  uint16_t ts_offset;
  const uint8_t *data; /* points into the payload */
  size_t len;
} hd_red_block_t;

/* Every block of a RED payload, oldest first (the primary last). Returns the
 * number of blocks (1..HD_RED_MAX_BLOCKS) or HD_EPROTO for a malformed payload. */
int hd_red_parse(const uint8_t *p, size_t len, hd_red_block_t out[HD_RED_MAX_BLOCKS]);

/* Builds a RED payload from n blocks, oldest first, the last being the primary
 * (its ts_offset is ignored). A redundant block must have ts_offset < 2^14 and
 * len < 1024 (the header's field widths; RFC 2198 §3). Returns the payload
 * length, HD_EINVAL (n outside 1..HD_RED_MAX_BLOCKS, a field too wide) or
 * HD_ENOSPC (cap too small). */
int hd_red_build(const hd_red_block_t *blocks, int n, uint8_t *out, size_t cap);

/* ---- Opus (RFC 7587) ---- */

typedef struct {
  uint32_t ts; /* RTP timestamp of the next packet */
  int in_dtx;  /* previous frame was DTX (not sent) */
  int started;
} hd_opus_pay_t;

void hd_opus_pay_init(hd_opus_pay_t *p, uint32_t first_ts);

/* Takes one encoder output of `samples` (per channel, 48 kHz) and decides:
 * returns 1 = send `pkt` as the payload with *ts / *marker; 0 = DTX frame,
 * send nothing. The timestamp advances by samples either way.
 * HD_EINVAL on len 0 or samples <= 0. */
int hd_opus_pay_frame(hd_opus_pay_t *p, const uint8_t *pkt, size_t len, int samples, uint32_t *ts,
                      int *marker);

/* Validates an Opus RTP payload (TOC and frame count, RFC 6716 §3.1) and
 * returns its duration in samples per channel at 48 kHz; HD_EPROTO/HD_ETRUNC. */
int hd_opus_depay(const uint8_t *payload, size_t len);

#endif
