/* FlexFEC (RFC 8627) for the client PeerConnection's video: the send-side
 * grouping and the receive-side recovery around the sans-IO core in
 * rtc/flexfec.h. Not a public interface (pc.c / pc_sdp.c / pc_media.c).
 *
 * Send: each video packet of layer 0 goes to the shared sender
 * (rtc/flexfec_send.h: the plan from the peer's smoothed reports and the
 * RTT, the grouping, the repair packet with a transport-wide seq extension
 * for the pacer to stamp); its repair packets go on the track's FEC SSRC.
 * The node protects its viewers' video with the same sender
 * (sfu/session_fec.h). The node's receiver reports count the media SSRC
 * only: loss before repair.
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
#include "rtc/flexfec_send.h"

#define PC_FEC_GROUP_MAX HD_FLEXFEC_MAX_GROUP

typedef struct pc_fec {
  hd_flexfec_send_t send;
  /* receive (allocated with the first repair packet) */
  hd_flexfec_dec_t *dec;
} pc_fec_t;

/* Media packet pkt (plain RTP, before SRTP) of a FEC-protected track is
 * being sent; marker: the frame's last packet. Returns the length of a
 * repair packet written to out (to send on t's FEC SSRC; it carries t's
 * transport-wide seq extension, zero, when negotiated), 0 for none, or a
 * negative error. */
int pc_fec_sent(const hd_pc_t *pc, pc_trx_t *t, const uint8_t *pkt, size_t len, int marker, uint8_t *out,
                size_t cap);
/* The peer reported `loss` (0..1) on t's media stream (a FEC-protected
 * track, or one whose latest answer declined FlexFEC after an earlier one
 * took it): it goes into the smoothed loss FEC is planned from. */
void pc_fec_on_report(pc_trx_t *t, double loss);
/* FlexFEC on t is off (an answer declined it, RFC 3264 §6.1): the open
 * group is dropped. Its packets came before the decline; kept, they would
 * make the first packets after FEC is taken again look late (the seq went
 * on meanwhile) and leave them unprotected. */
void pc_fec_off(pc_trx_t *t);
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
