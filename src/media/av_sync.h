/* Audio/video synchronisation of one sender's two streams (lip sync),
 * receiver side, sans-IO.
 *
 * Each stream's end-to-end delay is measured the same way: the time a frame
 * is played (audio) or rendered (video) minus its capture time, which the
 * sender's RTCP sender reports give (RFC 3550 §6.4.1: the SR pairs an NTP
 * time with an RTP timestamp of the same clock, so any RTP timestamp maps to
 * the sender's wall clock). Both streams come from one sender clock, so the
 * unknown offset between its clock and ours cancels in their difference.
 *
 * hd_av_sync_update takes the two current delays and returns the extra
 * delays (floors for the jitter buffers' targets) that bring them together:
 * the stream that is ahead waits; an extra delay already given to the other
 * one is taken back first. Changes are limited to HD_AV_SYNC_MAX_STEP per
 * update so playback never jumps, and differences under HD_AV_SYNC_TOLERANCE
 * are left alone (ITU-R BT.1359: +45 / -125 ms is where viewers notice). The
 * floors are capped at HD_AV_SYNC_MAX_EXTRA: a stream that is seconds behind
 * is broken, not out of sync. */
#ifndef HD_MEDIA_AV_SYNC_H
#define HD_MEDIA_AV_SYNC_H
#include "base/time.h"

#define HD_AV_SYNC_TOLERANCE HD_MS(20)
#define HD_AV_SYNC_MAX_STEP HD_MS(80)
#define HD_AV_SYNC_MAX_EXTRA HD_MS(400)

typedef struct {
  hd_time_t audio_extra, video_extra; /* floors to apply (>= 0) */
  hd_time_t diff;                     /* smoothed video delay minus audio delay */
  int have_diff;
  uint64_t updates;
} hd_av_sync_t;

void hd_av_sync_init(hd_av_sync_t *s);

/* One measurement of both streams' current end-to-end delays (same clock
 * offset in both). Returns 1 if audio_extra or video_extra changed. */
int hd_av_sync_update(hd_av_sync_t *s, hd_time_t audio_delay, hd_time_t video_delay);

#endif
