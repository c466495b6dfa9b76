/* FlexFEC (RFC 8627): XOR forward error correction for one RTP stream, sans-IO.
 *
 * One repair packet protects up to HD_FLEXFEC_MAX_MASK media packets of one
 * SSRC with consecutive-or-not sequence numbers from a base (the flexible mask,
 * R=0 F=0, RFC 8627 §4.2.2.1); a receiver that has all of them but one
 * rebuilds the missing one (§6.3.2). What this module does:
 * - hd_flexfec_encode: the repair packet for a set of media packets (RTP
 *   header with the protected SSRC as its only CSRC, §4.1; FEC header; the
 *   XOR of the protected packets' "bit strings", §6.2);
 * - hd_flexfec_parse: the FEC header of a received repair packet (the parser
 *   the fuzz target covers);
 * - hd_flexfec_dec_t: a receiver that keeps the last HD_FLEXFEC_DEC_MEDIA
 *   media packets and HD_FLEXFEC_DEC_FEC repair packets (hard caps) and
 *   recovers whatever one repair packet allows, repeatedly (a recovered packet
 *   can complete another repair packet's set);
 * - hd_flexfec_plan: how much to protect, from the loss and the round trip.
 *
 * Wire format: the final RFC 8627 header. Chromium's FlexFEC (offered only
 * behind the WebRTC-FlexFEC-03-Advertised field trial, SDP name "flexfec-03")
 * was written to the draft-03 layout, with an SSRCCount field and the SSRCs in
 * the FEC header (libwebrtc added an RFC 8627 reader/writer in 2023); interop
 * with it is not tested, so this is for Hudong endpoints (SDP name "flexfec",
 * RFC 8627 §5.1.1). The 1-D row/column modes (R/F bits) are not produced and
 * are rejected on input. */
#ifndef HD_RTC_FLEXFEC_H
#define HD_RTC_FLEXFEC_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"

#define HD_FLEXFEC_MAX_MASK 109  /* packets one repair packet can cover (15 + 31 + 63 mask bits) */
#define HD_FLEXFEC_PKT_MAX 1500  /* largest media packet protected / recovered */
#define HD_FLEXFEC_DEC_MEDIA 128 /* media packets a decoder keeps (a ring keyed by seq) */
#define HD_FLEXFEC_DEC_FEC 32    /* repair packets a decoder keeps */
#define HD_FLEXFEC_RTP_HDR 16    /* RTP header of a repair packet: 12 + one CSRC */

/* A parsed repair packet (pointers into the caller's buffer). */
typedef struct {
  uint32_t protected_ssrc; /* the RTP header's CSRC */
  uint16_t sn_base;
  uint8_t mask[14];        /* bit i (MSB first of byte i/8) = SN base + i protected */
  int mask_bits;           /* 15, 46 or 109 */
  const uint8_t *recovery; /* the FEC header's first 8 bytes (P X CC M PT, length, TS recovery) */
  const uint8_t *payload;  /* XOR of the protected packets after their 12-byte headers */
  size_t payload_len;
} hd_flexfec_hdr_t;

/* Parses the RTP packet buf as a FlexFEC repair packet. Returns 0, or
 * HD_EPROTO (not RTP, no CSRC, R or F set, mask truncated, empty mask). */
int hd_flexfec_parse(const uint8_t *buf, size_t len, hd_flexfec_hdr_t *h);

/* Whether the parsed packet protects seq. */
int hd_flexfec_covers(const hd_flexfec_hdr_t *h, uint16_t seq);

/* Builds the repair packet for n media packets of one SSRC (pkts[i] of
 * lens[i] bytes, whole RTP packets, each <= HD_FLEXFEC_PKT_MAX, their seqs
 * within HD_FLEXFEC_MAX_MASK of the first's). The repair packet is RTP with
 * payload type pt, sequence number seq, timestamp ts, SSRC ssrc. Returns its
 * length, HD_EINVAL (no packets, mixed SSRCs, seqs too far apart or repeated,
 * a packet too big or not RTP) or HD_ENOSPC (cap too small). */
int hd_flexfec_encode(const uint8_t *const *pkts, const size_t *lens, size_t n, uint8_t pt, uint16_t seq,
                      uint32_t ts, uint32_t ssrc, uint8_t *out, size_t cap);

/* Zeroes the value of the one-byte header extension `ext_id` (RFC 8285) of
 * RTP packet pkt in place (nothing when id is 0 or absent). Between Hudong
 * endpoints FlexFEC protects each media packet with its transport-wide
 * sequence number zeroed: the sender's pacer stamps that number after the
 * repair packet is computed, so sender and receiver both zero it before the
 * XOR (a recovered packet then carries 0 there; it was never received, so
 * it is not reported to the sender's estimator anyway). */
void hd_flexfec_zero_ext(uint8_t *pkt, size_t len, uint8_t ext_id);

/* ---- receiver ---- */

typedef struct {
  uint16_t seq;
  uint16_t len; /* 0 = empty */
  uint8_t data[HD_FLEXFEC_PKT_MAX];
} hd_flexfec_slot_t;

typedef struct {
  uint16_t len; /* 0 = empty */
  uint8_t data[HD_FLEXFEC_PKT_MAX];
} hd_flexfec_fec_slot_t;

typedef struct {
  uint32_t ssrc; /* the protected stream (0: taken from the first repair packet) */
  hd_flexfec_slot_t media[HD_FLEXFEC_DEC_MEDIA];
  hd_flexfec_fec_slot_t fec[HD_FLEXFEC_DEC_FEC];
  size_t fec_next; /* ring position of the next repair packet stored */
  int have_max;
  uint16_t max_seq; /* newest media seq seen */
  /* counters */
  uint64_t fec_received, fec_malformed, recovered, unrecoverable_dropped;
} hd_flexfec_dec_t;

/* Starts a receiver for the media stream ssrc (0 = learn it from the first
 * repair packet). The struct is large (~240 KB): allocate it, do not put it
 * on a stack. */
void hd_flexfec_dec_init(hd_flexfec_dec_t *d, uint32_t ssrc);

/* Called with each recovered packet (lent for the call). */
typedef void (*hd_flexfec_recovered_fn)(void *ud, const uint8_t *pkt, size_t len);

/* A media packet of the protected stream arrived (RTP, original or
 * retransmission unwrapped). Recovers what it completes. Returns the number
 * of packets recovered (each given to fn), or HD_EINVAL / HD_EPROTO. */
int hd_flexfec_dec_media(hd_flexfec_dec_t *d, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn,
                         void *ud);

/* A repair packet arrived. Returns the number of packets recovered, or
 * HD_EPROTO (malformed, counted) / HD_EINVAL. */
int hd_flexfec_dec_fec(hd_flexfec_dec_t *d, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn,
                       void *ud);

/* ---- how much to protect ---- */

/* Media packets per repair packet for a stream with this (smoothed) loss
 * fraction and round trip, 0 = no FEC. NACK alone repairs when a
 * retransmission comes back well within the receiver's hold time: below
 * HD_FLEXFEC_MIN_LOSS loss, or with an RTT under HD_FLEXFEC_NACK_RTT and loss
 * under HD_FLEXFEC_NACK_LOSS. (Measured SDK -> node -> SDK in virtual time,
 * 25 ms each way, random loss on both legs, unit/test_client_pc_fec
 * test_room_video_weak: with FEC from 10% the publisher's estimate fell
 * with the repair packets' share and its video to half the frame rate at
 * 20% loss, 27 -> 19 fps, for no gain in delay; NACK alone held 27 fps and
 * under 0.5% stall there. From 30% FEC cut the stall 9% -> 4%. The
 * threshold is 30%, not 25%: smoothed reports at 20% loss crossed 25%.) Otherwise one repair packet per
 * round(1 / (2 x loss)) media packets, clamped to 2..HD_FLEXFEC_MAX_GROUP: the
 * group is small enough that it rarely loses two of its packets. */
#define HD_FLEXFEC_MIN_LOSS 0.02
#define HD_FLEXFEC_NACK_RTT HD_MS(100)
#define HD_FLEXFEC_NACK_LOSS 0.30
#define HD_FLEXFEC_MAX_GROUP 12
int hd_flexfec_plan(double loss, hd_time_t rtt);

#endif
