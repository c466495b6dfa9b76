/* Test signals: the burnt-in frame counter survives VP8 at 300 kb/s 640x360 for
 * every frame; damaged bands are detected; tone generator and estimators. */
#include "hd_test.h"

#include <math.h>

#include "base/err.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

static void test_pattern_raw(void **state) {
  hd_i420_t f;
  assert_int_equal(hd_i420_alloc(&f, 320, 180), 0);
  uint32_t vals[] = {0, 1, 0x8000, 0xffff, 0x1234, 0x10005 /* low 16 bits: 5 */};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    assert_int_equal(hd_test_pattern_draw(&f, vals[i]), 0);
    assert_int_equal(hd_test_pattern_read(&f), (int)(vals[i] & 0xffff));
  }
  /* paint one complement cell to match its data cell: detected, not misread */
  hd_test_pattern_draw(&f, 0x00ff);
  int cell = 320 / 32;
  for (int y = 0; y < 2 * cell; y++)
    memset(f.plane[0] + y * f.stride[0] + 16 * cell, 16, (size_t)cell);
  assert_int_equal(hd_test_pattern_read(&f), HD_EPROTO);
  hd_i420_free(&f);
  /* too small */
  assert_int_equal(hd_i420_alloc(&f, 64, 64), 0);
  assert_int_equal(hd_test_pattern_draw(&f, 1), HD_EINVAL);
  assert_int_equal(hd_test_pattern_read(&f), HD_EINVAL);
  hd_i420_free(&f);
}

static void test_pattern_through_vp8(void **state) {
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = 640;
  c.height = 360;
  c.bitrate = 300000;
  c.fps = 30;
  hd_vp8_enc_t e;
  hd_vp8_dec_t d;
  assert_int_equal(hd_vp8_enc_init(&e, &c), 0);
  assert_int_equal(hd_vp8_dec_init(&d), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, 640, 360), 0);
  static uint8_t buf[512 * 1024];
  uint32_t first = 65500; /* crosses the 16-bit wrap */
  long bytes = 0;
  for (uint32_t i = 0; i < 90; i++) {
    uint32_t counter = first + i;
    if (i == 45) hd_vp8_enc_force_keyframe(&e);
    hd_test_pattern_draw(&pic, counter);
    int key = 0;
    int n = hd_vp8_encode(&e, &pic, i, buf, sizeof(buf), &key);
    assert_true(n > 0);
    bytes += n;
    hd_i420_t out;
    assert_int_equal(hd_vp8_decode(&d, buf, (size_t)n, &out), 1);
    assert_int_equal(hd_test_pattern_read(&out), (int)(counter & 0xffff));
  }
  /* and the encoder really ran near 300 kb/s (3 s of video), not at a
   * quality that would make the check trivial */
  assert_true(bytes * 8 / 3 < 450000);
  hd_i420_free(&pic);
  hd_vp8_enc_free(&e);
  hd_vp8_dec_free(&d);
}

static void test_tone(void **state) {
  hd_tone_t t;
  assert_int_equal(hd_tone_init(&t, 0, 1000, 48000, 1), HD_EINVAL);
  assert_int_equal(hd_tone_init(&t, 30000, 1000, 48000, 1), HD_EINVAL);
  assert_int_equal(hd_tone_init(&t, 440, 1000, 48000, 0), HD_EINVAL);
  double freqs[] = {100.0, 440.0, 997.0, 3150.5};
  for (size_t k = 0; k < 4; k++) {
    static int16_t pcm[48000 * 2];
    assert_int_equal(hd_tone_init(&t, freqs[k], 12000, 48000, 2), 0);
    /* filled in chunks: the phase must be continuous across calls */
    for (int i = 0; i < 50; i++)
      hd_tone_fill(&t, pcm + (size_t)i * 960 * 2, 960);
    double f = hd_tone_estimate_freq(pcm, 48000, 2, 48000);
    assert_true(fabs(f - freqs[k]) < 0.05);
    double a = hd_goertzel_amplitude(pcm, 48000, 2, 48000, freqs[k]);
    assert_true(fabs(a - 12000) < 120);
    assert_true(hd_goertzel_amplitude(pcm, 48000, 2, 48000, freqs[k] * 1.5) < 200);
    assert_true(fabs(hd_pcm_rms(pcm, 48000, 2) - 12000 / sqrt(2.0)) < 50);
    /* second channel identical */
    assert_int_equal(pcm[2 * 123], pcm[2 * 123 + 1]);
  }
  int16_t zero[1000] = {0};
  assert_true(hd_tone_estimate_freq(zero, 1000, 1, 48000) == 0.0);
  assert_true(hd_pcm_rms(zero, 1000, 1) == 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pattern_raw),
      cmocka_unit_test(test_pattern_through_vp8),
      cmocka_unit_test(test_tone),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
