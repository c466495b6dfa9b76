/* FlexFEC (RFC 8627) for the client PeerConnection's video: the send-side
 * grouping and the receive-side recovery around the sans-IO core in
 * rtc/flexfec.h. Not a public interface (pc.c / pc_sdp.c / pc_media.c).
 *
 * Send: each video packet of layer 0 joins the current group; the group is
 * closed with one repair packet on the track's FEC SSRC when it holds
 * hd_flexfec_plan(loss, rtt) packets, or at the end of a frame once it is at
 * least half full and holds two (a frame's repair is not held back for the
 * next frame; a smaller group carries over into it). The loss is the
 * peer's reports on the media stream smoothed (PC_FEC_LOSS_GAIN per report:
 * the loss of one ~1 s report swings by several points, and one unlucky
 * report turned FEC on at 5% loss; the node's receiver reports count the
 * media SSRC only: loss before repair), the RTT the pc's (none when the peer
 * does not NACK: FEC is then the only repair). Group 0 (little loss, or a
 * round trip short enough for NACK): nothing is sent.
 *
 * Receive: every media packet of the protected stream (original, RTX
 * unwrapped) goes into the decoder; a repair packet that leaves exactly one
 * of its packets missing rebuilds it, which is then delivered like a
 * received packet (flagged recovered) before its NACK would go out.
 *
 * Both sides zero the transport-wide seq extension before the XOR
 * (hd_flexfec_zero_ext: the pacer stamps it later). */
#ifndef HD_CLIENT_PC_FEC_H
#define HD_CLIENT_PC_FEC_H
#include <stddef.h>
#include <stdint.h>

#include "base/time.h"
#include "client/pc_internal.h"
#include "rtc/flexfec.h"

#define PC_FEC_GROUP_MAX HD_FLEXFEC_MAX_GROUP

typedef struct pc_fec {
  /* send */
  uint8_t pkts[PC_FEC_GROUP_MAX][HD_FLEXFEC_PKT_MAX];
  size_t lens[PC_FEC_GROUP_MAX];
  int n;       /* packets in the open group */
  int group;   /* current plan: packets per repair packet, 0 = none */
  double loss; /* the peer's reported loss, smoothed; < 0 none yet */
  /* receive (allocated with the first repair packet) */
  hd_flexfec_dec_t *dec;
} pc_fec_t;

/* Media packet pkt (plain RTP, before SRTP) of a FEC-protected track is
 * being sent; marker: the frame's last packet. Returns the length of a
 * repair packet written to out (to send on t's FEC SSRC), 0 for none, or a
 * negative error. */
int pc_fec_sent(const hd_pc_t *pc, pc_trx_t *t, const uint8_t *pkt, size_t len, int marker, uint8_t *out,
                size_t cap);
#define PC_FEC_LOSS_GAIN 0.5
/* The peer reported `loss` (0..1) on t's media stream (a FEC-protected
 * track): it goes into the smoothed loss FEC is planned from. */
void pc_fec_on_report(pc_trx_t *t, double loss);
/* Current packets per repair packet on t (0 = none): from its peer's
 * smoothed loss reports and the RTT. */
int pc_fec_group(const hd_pc_t *pc, const pc_trx_t *t);
/* A media packet (plain RTP) of a FEC-protected receiving track arrived /
 * a repair packet for it arrived. Each packet rebuilt is given to fn.
 * Returns the number rebuilt or a negative error. */
int pc_fec_media(pc_trx_t *t, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn, void *ud);
int pc_fec_repair(pc_trx_t *t, const uint8_t *pkt, size_t len, hd_flexfec_recovered_fn fn, void *ud);
void pc_fec_free(pc_trx_t *t);

#endif
