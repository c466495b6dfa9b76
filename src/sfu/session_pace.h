/* Pacing of what the node sends a viewer (rtc/pacer.h): a packet built in the
 * tx queue slot goes now or waits in the viewer's pacer; one that waited gets
 * its transport-wide seq (draft-holmer-rmcat-transport-wide-cc-extensions-01)
 * and abs-send-time when it really leaves. Internal to the session files. */
#ifndef HD_SFU_SESSION_PACE_H
#define HD_SFU_SESSION_PACE_H
#include "sfu/session_internal.h"

/* Sends (or queues) the n-byte packet built at `out` in v's tx queue slot
 * for track t, pacer class cls (HD_PACE_*). Returns n when sent or queued, a
 * negative error when the pacer or the queue refused it (not sent, nothing
 * to undo): HD_EREPLAY for a packet on t's media SSRC whose seq already
 * went out (with other bytes; see hd_session_pace_send_exact). */
int hd_session_pace_send(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, int cls, hd_time_t now,
                         hd_session_counters_t *c);
/* Sends (or queues, as a repair) the n bytes at `out` in v's tx queue slot
 * as they are: a resend of a packet on t's media SSRC that is the first
 * send's exact bytes (sfu/resend_cache.h), so it is neither re-stamped
 * (transport-wide seq, abs-send-time) nor counted as a new packet. Returns
 * as hd_session_pace_send. */
int hd_session_pace_send_exact(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, hd_time_t now,
                               hd_session_counters_t *c);
/* Sends (or queues, class cls) the n bytes at `out` in v's tx queue slot: an
 * RTX copy (RFC 4588 §4) of a first send on t's media SSRC built from that
 * send's exact bytes (sfu/resend_cache.h), for a track FlexFEC protects: it
 * gets a transport-wide seq of its own (the receiver zeroes it before the
 * XOR, rtc/flexfec.h) but keeps every other header extension as the first
 * send had it (abs-send-time, playout-delay), so that the receiver's
 * unwrapped copy is the packet the repair packets covered. Returns as
 * hd_session_pace_send. */
int hd_session_pace_send_rtx_copy(hd_session_t *v, hd_out_track_t *t, uint8_t *out, size_t n, int cls,
                                  hd_time_t now, hd_session_counters_t *c);
/* out seq seq of t as an extended seq next to the newest first send on its
 * media SSRC (t->media_last_ext; within 32768 of it either way). */
int64_t hd_session_out_seq_ext(const hd_out_track_t *t, uint16_t seq);
/* Releases what v's pacer (non-NULL) lets go at `now` into the tx queue. */
void hd_session_pace_flush(hd_session_t *v, hd_time_t now, hd_session_counters_t *c);

#endif
