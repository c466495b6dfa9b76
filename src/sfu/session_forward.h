/* The forward path of a session: a publisher's packet becomes each viewer's
 * copy (its SSRC/seq/ts, header extensions, RED passed on or unwrapped, the
 * simulcast layer gate, the VP8 temporal-layer filter and PictureID rewrite).
 * Internal to the session files. */
#ifndef HD_SFU_SESSION_FORWARD_H
#define HD_SFU_SESSION_FORWARD_H
#include "sfu/session_internal.h"

/* Builds the viewer's version of source packet h with out seq/ts into out
 * (cap bytes). Returns its length or a negative error. */
int hd_session_build_out(const hd_session_t *v, const hd_out_track_t *t, const hd_session_t *pub,
                         const hd_rtp_hdr_t *h, uint16_t seq, uint32_t ts, hd_time_t now, uint8_t *out,
                         size_t cap);
/* The PictureID and TL0PICIDX the viewer sees, in the VP8 payload built at payload. */
void hd_session_vp8_out(hd_out_track_t *t, uint32_t src_ssrc, uint8_t *payload, size_t len, int advance);
/* A padding-only packet on t's media stream as out seq `seq` (a seq the
 * temporal filter kept for a layer this viewer does not get); again = a
 * resend (only as RTX). Returns the bytes sent or a negative error. */
int hd_session_send_media_padding(hd_session_t *v, hd_out_track_t *t, uint16_t seq, uint32_t ts, int again,
                                  hd_time_t now, hd_session_counters_t *c);
/* The group head an out track follows in pub, or -1. */
int hd_session_followed_head(const hd_out_track_t *t, const hd_session_t *pub);

#endif
