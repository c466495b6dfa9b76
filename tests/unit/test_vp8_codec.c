/* VP8 wrapper: encode/decode a generated pattern with good PSNR, forced
 * keyframes on request, runtime bitrate, bitstream helpers, error paths. */
#include "hd_test.h"

#include "base/err.h"
#include "media/i420.h"
#include "media/test_signal.h"
#include "media/vp8_codec.h"

#define CAP (512 * 1024)

static void test_roundtrip_psnr(void **state) {
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = 320;
  c.height = 240;
  c.bitrate = 800000;
  hd_vp8_enc_t e;
  hd_vp8_dec_t d;
  assert_int_equal(hd_vp8_enc_init(&e, &c), 0);
  assert_int_equal(hd_vp8_dec_init(&d), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, 320, 240), 0);
  static uint8_t buf[CAP];
  for (int i = 0; i < 10; i++) {
    assert_int_equal(hd_test_pattern_draw(&pic, (uint32_t)i), 0);
    int key = -1;
    int n = hd_vp8_encode(&e, &pic, i, buf, sizeof(buf), &key);
    assert_true(n > 0);
    assert_int_equal(key, i == 0); /* first frame is a keyframe, then only on request */
    assert_int_equal(hd_vp8_frame_is_keyframe(buf, (size_t)n), key);
    if (key) {
      int w = 0, h = 0;
      assert_int_equal(hd_vp8_keyframe_size(buf, (size_t)n, &w, &h), 0);
      assert_int_equal(w, 320);
      assert_int_equal(h, 240);
    }
    hd_i420_t out;
    assert_int_equal(hd_vp8_decode(&d, buf, (size_t)n, &out), 1);
    assert_int_equal(out.width, 320);
    assert_int_equal(out.height, 240);
    double psnr = hd_i420_psnr(&pic, &out);
    assert_true(psnr > 30.0);
  }
  assert_int_equal(e.frames_out, 10);
  assert_int_equal(e.keyframes_out, 1);
  hd_i420_free(&pic);
  hd_vp8_enc_free(&e);
  hd_vp8_dec_free(&d);
}

static void test_force_keyframe_and_bitrate(void **state) {
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  c.width = 320;
  c.height = 180;
  c.bitrate = 100000;
  hd_vp8_enc_t e;
  assert_int_equal(hd_vp8_enc_init(&e, &c), 0);
  hd_i420_t pic;
  assert_int_equal(hd_i420_alloc(&pic, 320, 180), 0);
  static uint8_t buf[CAP];
  long lo = 0, hi = 0;
  for (int i = 0; i < 60; i++) {
    if (i == 7 || i == 8 || i == 20) hd_vp8_enc_force_keyframe(&e);
    if (i == 30) assert_int_equal(hd_vp8_enc_set_bitrate(&e, 1000000), 0);
    hd_test_pattern_draw(&pic, (uint32_t)i);
    int key = -1;
    int n = hd_vp8_encode(&e, &pic, i, buf, sizeof(buf), &key);
    assert_true(n > 0);
    assert_int_equal(key, i == 0 || i == 7 || i == 8 || i == 20);
    if (i >= 10 && i < 30 && i != 20) lo += n;
    if (i >= 40) hi += n;
  }
  assert_true(hi > 3 * lo); /* the bitrate change took effect */
  assert_int_equal(hd_vp8_enc_set_bitrate(&e, 5), HD_EINVAL);
  /* too small an output buffer: ENOSPC, and the next frame restarts with a keyframe */
  hd_test_pattern_draw(&pic, 99);
  int key = 0;
  assert_int_equal(hd_vp8_encode(&e, &pic, 60, buf, 10, &key), HD_ENOSPC);
  assert_true(hd_vp8_encode(&e, &pic, 61, buf, sizeof(buf), &key) > 0);
  assert_int_equal(key, 1);
  /* wrong picture size */
  hd_i420_t other;
  assert_int_equal(hd_i420_alloc(&other, 160, 90), 0);
  assert_int_equal(hd_vp8_encode(&e, &other, 62, buf, sizeof(buf), &key), HD_EINVAL);
  hd_i420_free(&other);
  hd_i420_free(&pic);
  hd_vp8_enc_free(&e);
  hd_vp8_enc_free(&e);
}

static void test_errors(void **state) {
  hd_vp8_enc_config_t c;
  hd_vp8_enc_config_default(&c);
  hd_vp8_enc_t e;
  c.width = 0;
  assert_int_equal(hd_vp8_enc_init(&e, &c), HD_EINVAL);
  hd_vp8_enc_config_default(&c);
  c.bitrate = 1;
  assert_int_equal(hd_vp8_enc_init(&e, &c), HD_EINVAL);

  hd_vp8_dec_t d;
  assert_int_equal(hd_vp8_dec_init(&d), 0);
  hd_i420_t out;
  uint8_t junk[64];
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t)(i * 37 + 11);
  junk[0] = 0x10; /* "keyframe" without the start code */
  assert_int_equal(hd_vp8_decode(&d, junk, sizeof(junk), &out), HD_EPROTO);
  assert_int_equal(hd_vp8_decode(&d, junk, 0, &out), HD_EINVAL);
  assert_int_equal(hd_vp8_frame_is_keyframe(junk, sizeof(junk)), HD_EPROTO);
  assert_int_equal(hd_vp8_frame_is_keyframe(junk, 2), HD_ETRUNC);
  junk[0] = 0x11;
  assert_int_equal(hd_vp8_frame_is_keyframe(junk, sizeof(junk)), 0);
  assert_int_equal(hd_vp8_keyframe_size(junk, sizeof(junk), NULL, NULL), HD_EPROTO);
  hd_vp8_dec_free(&d);
}

static void test_i420(void **state) {
  hd_i420_t a, b;
  assert_int_equal(hd_i420_size(3, 3), 9 + 2 * 4);
  assert_int_equal(hd_i420_size(0, 3), 0);
  assert_int_equal(hd_i420_alloc(&a, HD_I420_MAX_DIM + 1, 2), HD_EINVAL);
  assert_int_equal(hd_i420_alloc(&a, 33, 17), 0);
  assert_int_equal(hd_i420_alloc(&b, 33, 17), 0);
  for (int p = 0; p < 3; p++)
    a.plane[p][5] = 77;
  assert_int_equal(hd_i420_copy(&b, &a), 0);
  assert_true(hd_i420_psnr(&a, &b) == 99.0);
  b.plane[0][0] ^= 0x10;
  double ps = hd_i420_psnr(&a, &b);
  assert_true(ps > 40 && ps < 99);
  static uint8_t packed[4096];
  int n = hd_i420_pack(&a, packed, sizeof(packed));
  assert_int_equal(n, (int)hd_i420_size(33, 17));
  assert_int_equal(hd_i420_pack(&a, packed, 10), HD_ENOSPC);
  hd_i420_t v;
  assert_int_equal(hd_i420_wrap(&v, packed, (size_t)n, 33, 17), 0);
  assert_true(hd_i420_psnr(&a, &v) == 99.0);
  assert_int_equal(hd_i420_wrap(&v, packed, (size_t)n - 1, 33, 17), HD_ETRUNC);
  hd_i420_t c;
  assert_int_equal(hd_i420_alloc(&c, 32, 17), 0);
  assert_int_equal(hd_i420_copy(&c, &a), HD_EINVAL);
  assert_true(hd_i420_psnr(&a, &c) < 0);
  hd_i420_free(&a);
  hd_i420_free(&b);
  hd_i420_free(&c);
  hd_i420_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip_psnr),
      cmocka_unit_test(test_force_keyframe_and_bitrate),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_i420),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
