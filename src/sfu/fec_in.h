/* FlexFEC (RFC 8627) on a publisher's leg, at the node: the publisher's
 * repair packets rebuild media packets its leg lost before the node's NACK
 * for them goes out (or while it is on its way), so fewer repairs cross the
 * publisher's leg and fewer holes reach the viewers' deadline. Sans-IO around
 * rtc/flexfec.h: media and repair packets in, rebuilt packets queued (at most
 * HD_FEC_IN_QUEUE; the oldest goes when full, counted) for the caller to
 * process like received packets, one at a time.
 *
 * Both ends zero the transport-wide seq extension before the XOR (the
 * sender's pacer stamps it after the repair packet is computed; see
 * hd_flexfec_zero_ext). The publisher's repair packets are not passed on: one
 * covers the publisher's packets as they were on its leg, which the node
 * rewrites per viewer (SSRC, seq, timestamps, header extensions, VP8 picture
 * ids), so it could not rebuild what a viewer lost; the node protects a
 * viewer's leg with repair packets of its own (sfu/session_fec.h). */
#ifndef HD_SFU_FEC_IN_H
#define HD_SFU_FEC_IN_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "rtc/flexfec.h"

#define HD_FEC_IN_QUEUE 16 /* rebuilt packets waiting to be processed */
/* Once a publisher sends FlexFEC, a hole is NACKed only after this wait
 * (instead of 5 ms of reordering): about a frame at 30 fps, by when the
 * repair packet of the hole's group has come (the SDK closes a group at a
 * frame's end). Costs that much on the repair of what FEC cannot rebuild. */
#define HD_FEC_IN_NACK_WAIT HD_MS(35)

typedef struct hd_fec_in {
  hd_flexfec_dec_t dec;
  uint8_t twcc_id; /* transport-wide seq extension id, zeroed before the XOR (0 = none) */
  uint8_t q[HD_FEC_IN_QUEUE][HD_FLEXFEC_PKT_MAX];
  uint16_t qlen[HD_FEC_IN_QUEUE];
  int qhead, qn;
  uint64_t received, recovered, dropped;
} hd_fec_in_t;

/* A receiver for media SSRC ssrc (0: learnt from the first repair packet).
 * NULL on ENOMEM. ~260 KB. */
hd_fec_in_t *hd_fec_in_new(uint32_t ssrc, uint8_t twcc_id);
void hd_fec_in_free(hd_fec_in_t *f);
/* A media packet (plain RTP, as received or RTX unwrapped) arrived. Returns
 * the number of packets rebuilt (queued) or a negative error. */
int hd_fec_in_media(hd_fec_in_t *f, const uint8_t *pkt, size_t len);
/* A repair packet arrived. Returns the number rebuilt or HD_EPROTO/HD_EINVAL. */
int hd_fec_in_repair(hd_fec_in_t *f, const uint8_t *pkt, size_t len);
/* Takes the oldest rebuilt packet into out. Returns its length, 0 when none,
 * HD_ENOSPC when cap is too small (the packet is dropped). */
int hd_fec_in_pop(hd_fec_in_t *f, uint8_t *out, size_t cap);

#endif
