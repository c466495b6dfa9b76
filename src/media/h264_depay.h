/* H.264 RTP depacketiser (receiver side, RFC 6184 packetization-mode 1,
 * non-interleaved): single NAL unit packets (§5.6), STAP-A (§5.7.1) and FU-A
 * (§5.8) in, whole access units out in AVCC form (each NAL unit behind a
 * 4-byte big-endian length, ISO/IEC 14496-15 §5.3.4.2 with lengthSizeMinusOne
 * = 3), the form an MP4 muxer takes with the avcC record built from the last
 * SPS/PPS seen (hd_h264_depay_avcc).
 *
 * An access unit is the run of packets of one RTP timestamp; it is complete
 * at the marker bit (§5.1: set on the last packet of an access unit) or when
 * a packet of a later timestamp starts the next one (a lost marker packet).
 * Packets must come in sequence order (the recorder's use: the node forwards
 * in order; NACK repairs that arrive late are ignored): a gap in the
 * sequence numbers damages the access unit it falls in, and since the
 * following P frames refer to what was lost, every access unit is then
 * dropped until the next IDR (nal_unit_type 5, H.264 §7.4.1.2.4) -- the
 * caller learns it from hd_h264_depay_take_key_request and sends PLI
 * (RFC 4585 §6.3.1); the request repeats every 30 AUs dropped while waiting. The stream must also start at an
 * IDR with SPS and PPS known, so a file starts decodable. Caps: an access unit larger than max_au bytes is
 * dropped (counted) and treated like a loss; SPS/PPS longer than HD_H264_PARAM_MAX are ignored. Sans-IO, no
 * allocation after init. Not thread-safe. */
#ifndef HD_MEDIA_H264_DEPAY_H
#define HD_MEDIA_H264_DEPAY_H
#include <stddef.h>
#include <stdint.h>

#define HD_H264_PARAM_MAX 256             /* largest SPS / PPS kept for avcC */
#define HD_H264_AU_MAX_DEFAULT (4u << 20) /* default cap on one access unit */

typedef struct {
  const uint8_t *data; /* AVCC access unit, lent until the next push */
  size_t len;
  uint32_t ts;  /* RTP timestamp (90 kHz) */
  int keyframe; /* contains an IDR slice, and SPS and PPS (put in front when they came earlier) */
  int nals;     /* NAL units in it */
} hd_h264_au_t;

typedef struct {
  uint64_t packets, malformed, late, gaps;
  uint64_t aus, keyframes, aus_dropped; /* aus_dropped: damaged, too big, or waiting for an IDR */
  uint64_t oversize, key_requests;
} hd_h264_depay_stats_t;

typedef struct {
  size_t max_au;
  uint8_t *buf[2]; /* [cur]: the AU being built; [1-cur]: the one lent out */
  int cur;
  size_t len;
  uint32_t ts;
  int open;             /* an AU is being built */
  int damaged;          /* the AU being built lost a packet or overflowed */
  int has_idr;          /* the AU being built holds an IDR slice */
  int has_sps, has_pps; /* ... and parameter sets */
  int nals;
  int fu_open;  /* a FU-A NAL unit is being reassembled */
  size_t fu_at; /* offset of its length prefix in the AU */
  int have_seq;
  uint16_t next_seq;
  int need_key;     /* drop AUs until an IDR */
  int key_req;      /* a keyframe request is due (taken by the caller) */
  unsigned waiting; /* AUs dropped while waiting for an IDR */
  uint8_t sps[HD_H264_PARAM_MAX], pps[HD_H264_PARAM_MAX];
  size_t sps_len, pps_len;
  hd_h264_depay_stats_t stats;
} hd_h264_depay_t;

/* max_au 0 = HD_H264_AU_MAX_DEFAULT. HD_EINVAL (max_au < 64), HD_ENOMEM. */
int hd_h264_depay_init(hd_h264_depay_t *d, size_t max_au);
void hd_h264_depay_free(hd_h264_depay_t *d);

/* Feeds one RTP packet's payload. Returns 1 with *au set when an access unit
 * is complete (the marker bit, or this packet starts a later one; this
 * packet is kept for the next), 0 when none is, HD_EPROTO for a malformed or
 * unsupported payload (STAP-B, MTAP, FU-B, interleaved mode, a FU-A out of
 * place: counted, the AU is damaged), HD_EINVAL for bad arguments. */
int hd_h264_depay_push(hd_h264_depay_t *d, uint16_t seq, uint32_t ts, int marker, const uint8_t *payload,
                       size_t len, hd_h264_au_t *au);

/* Emits the AU being built even without its marker (end of stream): 1 with
 * *au, or 0. */
int hd_h264_depay_flush(hd_h264_depay_t *d, hd_h264_au_t *au);

/* 1 once after the stream broke (a gap, an oversize AU, or no IDR at the
 * start): send PLI. Then 0 until the next break. */
int hd_h264_depay_take_key_request(hd_h264_depay_t *d);

/* The AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1) of the last
 * SPS and PPS: its length, HD_ENOTFOUND before both were seen, HD_ENOSPC. */
int hd_h264_depay_avcc(const hd_h264_depay_t *d, uint8_t *out, size_t cap);

/* The avcC record of the first SPS and PPS inside an AVCC access unit (a
 * keyframe from this depacketiser): its length, HD_ENOTFOUND (none in it),
 * HD_EPROTO (not AVCC), HD_ENOSPC. */
int hd_h264_avcc_from_au(const uint8_t *au, size_t len, uint8_t *out, size_t cap);

#endif
