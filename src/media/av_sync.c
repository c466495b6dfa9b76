/* Lip sync from RTCP sender reports: see av_sync.h. */
#include "media/av_sync.h"

#include <string.h>

void hd_av_sync_init(hd_av_sync_t *s) { memset(s, 0, sizeof *s); }

static hd_time_t clamp(hd_time_t v, hd_time_t lo, hd_time_t hi) { return v < lo ? lo : v > hi ? hi : v; }

int hd_av_sync_update(hd_av_sync_t *s, hd_time_t audio_delay, hd_time_t video_delay) {
  hd_time_t d = video_delay - audio_delay;
  /* smoothed (1/4 per update): one late frame or a stretch in progress is not a trend */
  s->diff = s->have_diff ? s->diff + (d - s->diff) / 4 : d;
  s->have_diff = 1;
  s->updates++;
  if (s->diff > -HD_AV_SYNC_TOLERANCE && s->diff < HD_AV_SYNC_TOLERANCE) return 0;
  hd_time_t a = s->audio_extra, v = s->video_extra;
  hd_time_t step = clamp(s->diff, -HD_AV_SYNC_MAX_STEP, HD_AV_SYNC_MAX_STEP);
  if (step > 0) { /* video later: take back video's extra, then hold audio */
    hd_time_t back = step < v ? step : v;
    v -= back;
    a += step - back;
  } else { /* audio later: take back audio's extra, then hold video */
    hd_time_t back = -step < a ? -step : a;
    a -= back;
    v += -step - back;
  }
  a = clamp(a, 0, HD_AV_SYNC_MAX_EXTRA);
  v = clamp(v, 0, HD_AV_SYNC_MAX_EXTRA);
  int changed = a != s->audio_extra || v != s->video_extra;
  /* what is moved now shows in the next measurement: the smoothed diff
   * must not ask for the same correction again */
  s->diff += (v - s->video_extra) - (a - s->audio_extra);
  s->audio_extra = a;
  s->video_extra = v;
  return changed;
}
