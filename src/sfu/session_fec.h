/* FlexFEC (RFC 8627) from the node to a viewer that negotiated it (issue 13
 * item 4). A publisher's repair packets cannot be passed on: they cover the
 * packets as they were on the publisher's leg, and the node rewrites every
 * viewer's copy (SSRC, seq, timestamps, header extensions, VP8 picture ids).
 * So the node computes its own, per viewer track, over the packets it
 * actually sends that viewer on the media SSRC: in their final bytes (after
 * the rewrite and the pacer's send-time stamps, before SRTP), with the
 * transport-wide seq zeroed as both Hudong ends do (rtc/flexfec.h
 * hd_flexfec_zero_ext).
 *
 * How much: the SDK publisher's plan and grouping (rtc/flexfec_send.h),
 * from this viewer's receiver reports on the track (loss before repair,
 * smoothed) and its RTT (RFC 3550 §6.4.1 from our SRs): none below 2% loss,
 * none before an RTT is measured or below 30% loss with an RTT under 100 ms
 * where NACK repairs in time.
 *
 * Repair packets go on the track's FEC SSRC through the viewer's pacer (a
 * retransmission's class: one leaves right behind its group), carry a
 * transport-wide seq like media (the estimator sees their bytes), and count
 * against the viewer's budget: the allocator gives the layers g/(g+1) of it
 * (hd_session_fec_min_group). Internal to the session files. */
#ifndef HD_SFU_SESSION_FEC_H
#define HD_SFU_SESSION_FEC_H
#include "sfu/session_internal.h"

/* The viewer reported fraction_lost (of 256, RFC 3550 §6.4.1) on t's media
 * SSRC. An SDK viewer's reports count packets repaired by RTX as received
 * (loss after repair, client/pc_media.c), so where transport-wide feedback
 * runs, the leg's loss from it (every packet of the leg, before repair) is
 * taken when it is higher: over the last interval of at least
 * HD_SESSION_FEC_LOSS_PKTS packets the feedback reported, closed at a
 * report. Not the estimator's loss interval (rtc/bwe_loss.h: 20 packets,
 * 100 ms): at 20% random loss one such interval reads anything from 5% to
 * 40%, and the highest of it and the report, smoothed, crossed the 30% at
 * which FEC goes on even on a short leg (rtc/flexfec.h
 * HD_FLEXFEC_NACK_LOSS): the node sent FlexFEC to an SDK viewer 25 ms
 * away, whose NACKs then waited for repair packets (client/pc_media.c),
 * and its video delay grew (bench/weak_network --losses 20; unit
 * test_client_lossy_legs). Over 100 packets the spread at 20% is +-4%. */
#define HD_SESSION_FEC_LOSS_PKTS 100
void hd_session_fec_on_report(hd_session_t *v, hd_out_track_t *t, uint8_t fraction_lost);
/* Media packets per repair packet on t now, 0 = no FEC. */
int hd_session_fec_group(const hd_session_t *v, const hd_out_track_t *t);
/* The smallest group over v's video tracks sending FEC (the largest
 * overhead), 0 = none. */
int hd_session_fec_min_group(const hd_session_t *v);
/* The viewer answered a re-offer: t keeps its SSRCs, and takes FlexFEC as
 * that answer says (m: its section, as hd_session_add_out_track reads it).
 * When that changes (dropped, taken up, another repair SSRC) the sender's
 * open group and plan go (the plan starts again from the next reports); its
 * repair seq goes on (the same repair SSRC under SRTP must not go back to
 * indices it sent). Returns 1 if it changed, else 0. */
int hd_session_fec_renegotiated(hd_out_track_t *t, const hd_sdp_media_negotiated_t *m);
/* Packet pkt (plain RTP, its final bytes) is about to be committed on t's
 * media SSRC as a first send. Returns the length of a repair packet written
 * to out (cap bytes) to send after it, 0 for none, or a negative error. */
int hd_session_fec_protect(hd_session_t *v, hd_out_track_t *t, const uint8_t *pkt, size_t len, uint8_t *out,
                           size_t cap);
/* Sends the repair packet rep (rn bytes, from hd_session_fec_protect) on t's
 * FEC SSRC through v's pacer, counted. */
void hd_session_fec_send(hd_session_t *v, hd_out_track_t *t, const uint8_t *rep, size_t rn, hd_time_t now,
                         hd_session_counters_t *c);

#endif
