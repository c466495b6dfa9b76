/* Unit tests for the delay-based over-use detector (rtc/bwe_delay.h,
 * draft-ietf-rmcat-gcc-02 §5.2-5.4) on synthetic one-way delays: steady,
 * a queue building, a queue draining, reordered reports. */
#include "hd_test.h"

#include <math.h>

#include "rtc/bwe_delay.h"

/* Groups every 10 ms whose one-way delay grows by `growth_us` each: a queue
 * building (positive), steady (0) or draining (negative). */
static hd_time_t g_t, g_owd;
static hd_bwe_usage_t feed_delay(hd_bwe_delay_t *d, int groups, hd_time_t growth_us) {
  hd_bwe_usage_t u = HD_BWE_NORMAL;
  for (int i = 0; i < groups; i++) {
    g_t += 10000;
    g_owd += growth_us;
    if (g_owd < 1000) g_owd = 1000;
    u = hd_bwe_delay_on_packet(d, g_t, g_t + g_owd + HD_SEC(1000));
  }
  return u;
}

static void test_delay_detector(void **st) {
  (void)st;
  hd_bwe_delay_t d;
  hd_bwe_delay_init(&d);
  g_t = 0;
  g_owd = HD_MS(50);
  assert_int_equal(feed_delay(&d, 100, 0), HD_BWE_NORMAL); /* steady: no signal */
  assert_true(d.groups > 90);
  hd_time_t t0 = g_t, owd0 = g_owd;
  /* a queue growing 1 ms per 10 ms group (the link gets 10% more than it carries) */
  hd_bwe_delay_t o = d;
  int seen = 0, n = 0;
  while (n < 40 && !seen) {
    n++;
    seen = feed_delay(&o, 1, 1000) == HD_BWE_OVERUSE;
  }
  assert_true(seen);
  printf("  over-use after %d groups of +1 ms\n", n);
  /* a queue growing 0.2 ms per group (2% too much) stays under gamma for a while */
  g_t = t0;
  g_owd = owd0;
  hd_bwe_delay_t w = d;
  assert_int_not_equal(feed_delay(&w, 5, 200), HD_BWE_OVERUSE);
  /* a draining queue is under-use */
  g_t = t0;
  g_owd = owd0 + HD_MS(100);
  hd_bwe_delay_t u = d;
  hd_bwe_delay_on_packet(&u, g_t, g_t + g_owd + HD_SEC(1000));
  seen = 0;
  for (int i = 0; i < 40 && !seen; i++)
    seen = feed_delay(&u, 1, -1000) == HD_BWE_UNDERUSE;
  assert_true(seen);
  /* §5.4 adaptive threshold stays within its clamp */
  assert_true(o.threshold >= 6.0 && o.threshold <= 600.0);
  /* a report of an older group (reordering) changes nothing */
  hd_bwe_delay_t r = d;
  hd_bwe_delay_on_packet(&r, 0, HD_SEC(1000));
  assert_memory_equal(&r, &d, sizeof d);
}

/* The start-up fit (hd_bwe_delay_start_fit): groups every 20 ms with
 * one-way delays `owd_ms`; the line's level at the last group relative to
 * the first group, and the scatter around the line. */
static uint32_t start_fit(const double *owd_ms, int n, double *level, double *noise) {
  hd_bwe_delay_t d;
  hd_bwe_delay_init(&d);
  for (int i = 0; i < n; i++) {
    hd_time_t t = i * HD_MS(20);
    hd_bwe_delay_on_packet(&d, t, t + (hd_time_t)(owd_ms[i] * 1000) + HD_SEC(1000));
  }
  return hd_bwe_delay_start_fit(&d, level, noise);
}

static void test_start_fit(void **st) {
  (void)st;
  double v[100], level, noise;
  /* a step of +19 ms after the first group, then flat: level 19, no scatter */
  for (int i = 0; i < 12; i++)
    v[i] = i ? 46 : 27;
  assert_int_equal(start_fit(v, 12, &level, &noise), 10); /* 12 packets: 11 groups complete, 10 deltas */
  assert_true(fabs(level - 19) < 0.01 && noise < 0.01);
  /* a queue growing 5 ms a group: the level is the last group's */
  for (int i = 0; i < 12; i++)
    v[i] = 25 + 5 * i;
  start_fit(v, 12, &level, &noise);
  assert_true(fabs(level - 50) < 0.01 && noise < 0.01);
  /* +-10 ms of alternating jitter around a flat level: scatter ~10 ms */
  for (int i = 0; i < 12; i++)
    v[i] = 25 + (i % 2 ? 10 : -10);
  start_fit(v, 12, &level, &noise);
  assert_true(noise > 9 && fabs(level) < 25);
  /* fewer than 3 deltas: no level */
  assert_int_equal(start_fit(v, 4, &level, &noise), 2);
  assert_true(level == 0 && noise == 0);
  /* only the first HD_BWE_START_GROUPS groups */
  for (int i = 0; i < 100; i++)
    v[i] = i < 50 ? 25 : 80;
  assert_int_equal(start_fit(v, 100, &level, &noise), HD_BWE_START_GROUPS);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_delay_detector), cmocka_unit_test(test_start_fit)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
