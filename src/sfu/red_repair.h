/* RED gap repair at the node (issue 13: audio at 30-50 % loss), sans-IO.
 *
 * The node passes a publisher's RED audio (RFC 2198) to its viewers as it
 * comes. Without repair the losses of the two legs compound: a 20 ms frame
 * reaches the viewer only if one of the packets that carry it (itself and the
 * next d, at RED depth d) survives both legs -- at 50 % loss each, 1 - 0.75^(d+1)
 * -- while each leg alone would lose 0.5^(d+1). So the node rebuilds the
 * packets its own leg lost from the redundant blocks of the first packet
 * after the gap, and forwards them (before that packet, in seq order): the
 * viewer's leg then carries a complete RED stream again.
 *
 * A rebuilt packet is a RED packet: its primary is the lost frame, its
 * redundant blocks the older frames the carrier had (offsets shifted). Its
 * sequence number follows from the carrier's and the seq -> timestamp step of
 * the gap, which must be uniform (the last packet before the gap, the carrier
 * and the ts offsets agree on one step per packet of 10/20/40/60 ms); a gap
 * with a DTX pause or a ptime change in it is not repaired, nor one wider than
 * HD_RED_REPAIR_MAX_GAP. Packets at or below the newest seq seen (late,
 * reordered, retransmitted) pass through untouched. */
#ifndef HD_SFU_RED_REPAIR_H
#define HD_SFU_RED_REPAIR_H
#include <stddef.h>
#include <stdint.h>

#include "proto/rtp.h"

#define HD_RED_REPAIR_MAX_GAP 15 /* lost packets in a row that one carrier may fill (<= RED blocks - 1) */

typedef struct {
  int have;
  uint16_t seq;        /* newest seq seen */
  uint32_t ts;         /* its timestamp */
  uint64_t repaired;   /* packets rebuilt */
  uint64_t unrepaired; /* lost packets the carrier had no block for, or a gap that was not uniform */
} hd_red_repair_t;

void hd_red_repair_init(hd_red_repair_t *r);

/* Called with each rebuilt packet (RTP, lent for the call), oldest first. */
typedef void (*hd_red_repair_fn)(void *ud, const uint8_t *pkt, size_t len);

/* h: a packet of the RED stream (payload type h->pt is RED) just received.
 * Rebuilds the packets missing between the previous newest and h and gives
 * them to fn, before the caller forwards h. Returns the number rebuilt (0 for
 * a packet that closes no gap or cannot fill it). */
int hd_red_repair_feed(hd_red_repair_t *r, const hd_rtp_hdr_t *h, hd_red_repair_fn fn, void *ud);

#endif
