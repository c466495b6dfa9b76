/* FlexFEC (RFC 8627) send side, sans-IO: which packets one repair packet
 * covers and how many, shared by the SDK publisher (client/pc_fec.h) and the
 * node towards a viewer (sfu/session_fec.h), so both protect alike.
 *
 * Plan: the peer's receiver reports on the protected stream (RFC 3550 §6.4
 * fraction lost, loss before repair) smoothed (HD_FLEXFEC_SEND_LOSS_GAIN per
 * report from 0: the loss of one ~1 s report swings by several points, and
 * one unlucky report turned FEC on at 5% loss), and the RTT, through
 * hd_flexfec_plan (rtc/flexfec.h): none below 2% loss, none while the peer
 * NACKs and no RTT is measured yet, nor below 30% with an RTT under 100 ms
 * (NACK repairs in time). A peer that does not NACK has FEC as its only
 * repair: no RTT exemption.
 *
 * Grouping: each media packet sent joins the open group; the group is closed
 * with one repair packet when it holds the planned number of packets, or at
 * the end of a frame (marker) once it is at least half full and holds two (a
 * frame's repair is not held back for the next frame; a smaller group carries
 * over). Plan 0: an open group is dropped, nothing is sent.
 *
 * What the receiver XORs back must be the bytes protected, also for a packet
 * that reaches it as RTX (RFC 4588) and is unwrapped: a packet with RTP
 * padding is left out of the groups (an RTX copy drops padding), and a
 * sender's RTX copy of a protected packet must carry the first send's header
 * extensions (the SDK's is built from its send cache; the node's, see
 * sfu/session_pace.h hd_session_pace_send_rtx_copy).
 *
 * Transport-wide seq (draft-holmer-rmcat-transport-wide-cc-extensions-01):
 * the media packets are XORed with theirs zeroed (the sender's pacer stamps
 * it after the repair packet is computed; hd_flexfec_zero_ext), and the
 * repair packet carries the extension too (zero, for the pacer to stamp):
 * without it the repair bytes are on the link but not in the estimator's
 * feedback, which then reads the acknowledged rate low. */
#ifndef HD_RTC_FLEXFEC_SEND_H
#define HD_RTC_FLEXFEC_SEND_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "rtc/flexfec.h"

#define HD_FLEXFEC_SEND_LOSS_GAIN 0.5

typedef struct hd_flexfec_send {
  uint8_t pkts[HD_FLEXFEC_MAX_GROUP][HD_FLEXFEC_PKT_MAX];
  size_t lens[HD_FLEXFEC_MAX_GROUP];
  int n;         /* packets in the open group */
  int group;     /* the plan the last packet was added under (0 = none) */
  double loss;   /* the peer's reported loss, smoothed; < 0 none yet */
  uint16_t seq;  /* next repair packet's RTP seq */
  uint64_t sent; /* repair packets built */
} hd_flexfec_send_t;

/* ~18 KB: allocate it. */
void hd_flexfec_send_init(hd_flexfec_send_t *s, uint16_t first_seq);
/* The peer reported `loss` (0..1) on the protected stream. */
void hd_flexfec_send_on_report(hd_flexfec_send_t *s, double loss);
/* Packets per repair packet now (0 = none): rtt is the measured round trip
 * (<= 0: none yet), nack whether the peer NACKs the stream. */
int hd_flexfec_send_group(const hd_flexfec_send_t *s, hd_time_t rtt, int nack);
/* Media packet pkt (whole RTP before SRTP, <= HD_FLEXFEC_PKT_MAX, of the
 * protected SSRC) is sent under plan `group` (hd_flexfec_send_group); marker:
 * a frame's last packet; twcc_id: its transport-wide seq extension id (0 =
 * none). Returns the length of a repair packet written to out (RTP, payload
 * type pt, SSRC ssrc, the next repair seq; with a zero transport-wide seq
 * extension when twcc_id), 0 for none, or HD_EINVAL / HD_ENOSPC. A packet
 * whose seq does not follow the group's is handled apart: an older or
 * repeated one (at most HD_FLEXFEC_MAX_MASK behind the group's last) is left
 * out (0), one too far ahead (any other seq: also one past a stretch of more
 * than half the seq space this encoder did not see) or of another SSRC
 * starts a new group. */
int hd_flexfec_send_add(hd_flexfec_send_t *s, int group, const uint8_t *pkt, size_t len, int marker,
                        uint8_t twcc_id, uint8_t pt, uint32_t ssrc, uint8_t *out, size_t cap);

#endif
