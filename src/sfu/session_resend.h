/* Repairs a node sends a viewer: NACKed packets answered from the
 * publisher's cache (RFC 4585 §6.2.1), as RTX where negotiated (RFC 4588 §4),
 * and probe bytes (sfu/probe.h, rtc/bwe.h clusters) as RTX copies or padding.
 * Internal to the session files. */
#ifndef HD_SFU_SESSION_RESEND_H
#define HD_SFU_SESSION_RESEND_H
#include "sfu/session_internal.h"

/* Remembers that out_seq was just resent to t (per-viewer resend limit). */
void hd_session_rtx_hist_mark(hd_out_track_t *t, uint16_t out_seq, hd_time_t now);
/* Wraps an RTP packet (already in the viewer's numbering) as RTX into out.
 * Returns the length or a negative error. */
int hd_session_wrap_rtx(hd_out_track_t *t, const uint8_t *pkt, size_t len, uint8_t *out, size_t cap);
/* The publisher session (*pub_out, may be NULL) and track an out track follows now, or NULL. */
hd_in_track_t *hd_session_source_of(const hd_out_track_t *t, hd_session_t *room_pub, hd_session_t **pub_out);
/* s's active out track sending SSRC ssrc, or NULL. */
hd_out_track_t *hd_session_out_by_ssrc(hd_session_t *s, uint32_t ssrc);
/* Answers one NACKed seq of viewer track t. */
void hd_session_retransmit(hd_session_t *v, hd_out_track_t *t, hd_session_t *room_pub, uint16_t out_seq,
                           hd_time_t now, hd_session_counters_t *c);
/* Notes packet pkt of video track t leaving for the viewer (tail-loss probe:
 * HD_SESSION_TAIL_PROBE), with the transport-wide seq it carries (-1: none,
 * or the first send's). */
void hd_session_note_sent(hd_out_track_t *t, const uint8_t *pkt, size_t len, int32_t tw_seq, hd_time_t now);
/* Transport-wide feedback fb (its n packets pkts) from viewer v: a tail packet
 * it reports received needs no probe. */
void hd_session_tail_acked(hd_session_t *v, const hd_rtcp_twcc_t *fb, const hd_rtcp_twcc_pkt_t *pkts,
                           size_t n, hd_session_counters_t *c);
/* When viewer v's next tail-loss probe is due (HD_TIME_NEVER: none). */
hd_time_t hd_session_tail_probe_at(const hd_session_t *v);
/* Resends the last packet of a frame nothing followed within HD_SESSION_TAIL_PROBE. */
void hd_session_tail_probe(hd_session_t *v, hd_session_t *room_pub, hd_time_t now, hd_session_counters_t *c);
/* Sends `due` probe bytes to viewer v. */
void hd_session_send_probe(hd_session_t *v, hd_session_t *room_pub, uint64_t due, hd_time_t now,
                           hd_session_counters_t *c);

#endif
