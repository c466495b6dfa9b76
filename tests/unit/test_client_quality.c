/* Unit tests of the SDK client's sans-IO quality pieces (client/client_quality.h):
 * the W3C freezeCount rule on a virtual clock, and the reconnect backoff
 * bounds of docs/protocol.md. */
#include "hd_test.h"

#include "client/client_quality.h"

static void frames_every(hd_freeze_t *f, hd_time_t *t, int n, hd_time_t iv) {
  for (int i = 0; i < n; i++) {
    *t += iv;
    assert_int_equal(hd_freeze_frame(f, *t), 0);
  }
}

/* 30 fps: average 33 ms, threshold max(100 ms, 183 ms) = 183 ms. */
static void test_freeze_30fps(void **st) {
  hd_freeze_t f = {0};
  hd_time_t t = 1000000;
  assert_int_equal(hd_freeze_frame(&f, t), 0);
  frames_every(&f, &t, 60, 33333);
  t += 170000; /* below 183 ms: a hiccup, not a freeze */
  assert_int_equal(hd_freeze_frame(&f, t), 0);
  frames_every(&f, &t, 60, 33333);
  t += 190000; /* above: a freeze */
  assert_int_equal(hd_freeze_frame(&f, t), 1);
  assert_int_equal(f.freezes, 1);
  assert_true(f.freeze_us >= 190000 && f.freeze_us < 190001);
  frames_every(&f, &t, 10, 33333);
  t += 1000000;
  assert_int_equal(hd_freeze_frame(&f, t), 1);
  assert_int_equal(f.freezes, 2);
}

/* 5 fps: average 200 ms, threshold max(600 ms, 350 ms) = 600 ms. */
static void test_freeze_low_fps(void **st) {
  hd_freeze_t f = {0};
  hd_time_t t = 1;
  hd_freeze_frame(&f, t);
  frames_every(&f, &t, 40, 200000);
  t += 500000;
  assert_int_equal(hd_freeze_frame(&f, t), 0);
  frames_every(&f, &t, 40, 200000);
  t += 650000;
  assert_int_equal(hd_freeze_frame(&f, t), 1);
}

/* The first intervals only build the average: a slow start is no freeze. */
static void test_freeze_warmup(void **st) {
  hd_freeze_t f = {0};
  hd_time_t t = 1;
  hd_freeze_frame(&f, t);
  t += 33333;
  hd_freeze_frame(&f, t);
  t += 2000000;
  assert_int_equal(hd_freeze_frame(&f, t), 0);
  assert_int_equal(f.freezes, 0);
}

static void test_backoff(void **st) {
  /* d = 0.5, 1, 2, 4, 8, 8 s; the delay is in [d/2, d] */
  hd_time_t want[] = {500000, 1000000, 2000000, 4000000, 8000000, 8000000, 8000000};
  for (int n = 1; n <= 7; n++) {
    hd_time_t d = want[n - 1];
    assert_int_equal(hd_client_backoff(n, 0), d / 2);
    assert_int_equal(hd_client_backoff(n, (uint32_t)(d / 2)), d);
    for (uint32_t r = 1; r < 4000000000u; r += 123456789u) {
      hd_time_t x = hd_client_backoff(n, r);
      assert_true(x >= d / 2 && x <= d);
    }
  }
  assert_int_equal(hd_client_backoff(1000, 0xffffffffu) <= 8000000, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_freeze_30fps),
      cmocka_unit_test(test_freeze_low_fps),
      cmocka_unit_test(test_freeze_warmup),
      cmocka_unit_test(test_backoff),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
