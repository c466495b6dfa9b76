/* Unit tests for media/av_sync (lip sync from RTCP SR delays): a model of
 * the two jitter buffers (each stream's end-to-end delay = its own delay +
 * the extra asked of it) driven once a second; the later stream is waited
 * for in steps of at most 80 ms, extras come back when the cause goes, small
 * differences are left alone, and the extras stay capped. */
#include "hd_test.h"

#include "media/av_sync.h"

/* Runs n updates with natural delays a0 (audio) and v0 (video); returns the
 * final offset video - audio as played. Checks each step's size. */
static hd_time_t settle(hd_av_sync_t *s, hd_time_t a0, hd_time_t v0, int n) {
  for (int i = 0; i < n; i++) {
    hd_time_t pa = s->audio_extra, pv = s->video_extra;
    hd_av_sync_update(s, a0 + s->audio_extra, v0 + s->video_extra);
    assert_true(s->audio_extra >= 0 && s->video_extra >= 0);
    assert_true(s->audio_extra - pa <= HD_AV_SYNC_MAX_STEP && pa - s->audio_extra <= HD_AV_SYNC_MAX_STEP);
    assert_true(s->video_extra - pv <= HD_AV_SYNC_MAX_STEP && pv - s->video_extra <= HD_AV_SYNC_MAX_STEP);
    assert_true(s->audio_extra == 0 || s->video_extra == 0); /* never both held */
  }
  return (v0 + s->video_extra) - (a0 + s->audio_extra);
}

static void test_video_later_audio_waits(void **st) {
  (void)st;
  hd_av_sync_t s;
  hd_av_sync_init(&s);
  /* video 200 ms behind (its jitter buffer holds for retransmissions) */
  hd_time_t off = settle(&s, HD_MS(100), HD_MS(300), 20);
  assert_true(off > -HD_AV_SYNC_TOLERANCE && off < HD_AV_SYNC_TOLERANCE);
  assert_true(s.audio_extra > HD_MS(170) && s.audio_extra < HD_MS(230));
  assert_int_equal(s.video_extra, 0);
  /* the loss is gone, video catches up: audio's extra is taken back */
  off = settle(&s, HD_MS(100), HD_MS(130), 20);
  assert_true(off > -HD_AV_SYNC_TOLERANCE && off < HD_AV_SYNC_TOLERANCE);
  assert_true(s.audio_extra < HD_MS(60));
  /* now audio is later (its buffer grew for RED): video waits */
  off = settle(&s, HD_MS(350), HD_MS(130), 20);
  assert_true(off > -HD_AV_SYNC_TOLERANCE && off < HD_AV_SYNC_TOLERANCE);
  assert_int_equal(s.audio_extra, 0);
  assert_true(s.video_extra > HD_MS(190) && s.video_extra < HD_MS(250));
}

static void test_small_offsets_and_caps(void **st) {
  (void)st;
  hd_av_sync_t s;
  hd_av_sync_init(&s);
  /* within tolerance: nothing moves */
  for (int i = 0; i < 10; i++)
    assert_int_equal(hd_av_sync_update(&s, HD_MS(100), HD_MS(110)), 0);
  assert_int_equal(s.audio_extra, 0);
  assert_int_equal(s.video_extra, 0);
  /* a stream seconds behind: the extra stops at the cap */
  settle(&s, HD_MS(100), HD_MS(2000), 30);
  assert_int_equal(s.audio_extra, HD_AV_SYNC_MAX_EXTRA);
  /* one outlier measurement does not swing it (smoothed) */
  hd_av_sync_init(&s);
  settle(&s, HD_MS(100), HD_MS(100), 5);
  hd_av_sync_update(&s, HD_MS(100), HD_MS(400));
  assert_true(s.audio_extra <= HD_AV_SYNC_MAX_STEP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_video_later_audio_waits),
      cmocka_unit_test(test_small_offsets_and_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
