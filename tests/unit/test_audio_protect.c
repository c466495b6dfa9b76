/* Audio protection plan from receiver reports (rtc/audio_protect): a clean
 * path gets one redundant frame, any reported loss at least two, heavy loss
 * up to the cap with a lower Opus bitrate; the FEC's expected loss plans for
 * both legs; loss is followed up at once and down slowly. */
#include "hd_test.h"

#include "rtc/audio_protect.h"

static void test_plan(void **state) {
  (void)state;
  hd_audio_protect_t p;
  hd_audio_protect_init(&p, 32000);
  assert_int_equal(p.red_depth, HD_AUDIO_PROTECT_START_DEPTH);
  assert_int_equal(p.fec_loss_pct, HD_AUDIO_PROTECT_START_LOSS_PCT);
  assert_int_equal(p.bps, 32000 * 4 / (HD_AUDIO_PROTECT_START_DEPTH + 1));
  assert_int_equal(hd_audio_protect_report(&p, -1, 32000), 0); /* no report: nothing changes */
  assert_int_equal(hd_audio_protect_report(&p, 0, 32000), 1);
  assert_int_equal(p.red_depth, 1);
  assert_int_equal(p.fec_loss_pct, 2);
  assert_int_equal(p.bps, 32000);
  /* 1 % on our leg: ~2 % end to end; two redundant frames */
  hd_audio_protect_report(&p, 0.01, 32000);
  assert_int_equal(p.red_depth, 2);
  assert_int_equal(p.fec_loss_pct, 2);
  /* 10 %: 19 % end to end -> 0.19^3 < 1 % */
  hd_audio_protect_report(&p, 0.10, 32000);
  assert_int_equal(p.red_depth, 2);
  assert_int_equal(p.fec_loss_pct, 19);
  /* 30 %: 51 % end to end -> 0.51^7 < 1 %: six redundant frames, at 4/7 of the bitrate */
  hd_audio_protect_report(&p, 0.30, 32000);
  assert_int_equal(p.red_depth, 6);
  assert_int_equal(p.fec_loss_pct, 50);
  assert_int_equal(p.bps, 32000 * 4 / 7);
  /* 50 %: the cap, and the bitrate floor holds */
  hd_audio_protect_report(&p, 0.5, 32000);
  assert_int_equal(p.red_depth, HD_AUDIO_PROTECT_MAX_DEPTH);
  assert_int_equal(p.bps, 32000 * 4 / (HD_AUDIO_PROTECT_MAX_DEPTH + 1));
  hd_audio_protect_report(&p, 0.5, 16000);
  assert_int_equal(p.bps, HD_AUDIO_PROTECT_MIN_BPS);
  /* down slowly: one clean report does not drop the protection */
  hd_audio_protect_report(&p, 0, 32000);
  assert_true(p.loss > 0.35);
  assert_true(p.red_depth >= 6);
  for (int i = 0; i < 10; i++)
    hd_audio_protect_report(&p, 0, 32000);
  assert_int_equal(p.red_depth, 2); /* the average is still above 0.5 % */
  for (int i = 0; i < 40; i++)
    hd_audio_protect_report(&p, 0, 32000);
  assert_int_equal(p.red_depth, 1);
  assert_int_equal(p.bps, 32000);
  /* out-of-range reports are clamped */
  hd_audio_protect_report(&p, 7.0, 32000);
  assert_int_equal(p.red_depth, HD_AUDIO_PROTECT_MAX_DEPTH);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
