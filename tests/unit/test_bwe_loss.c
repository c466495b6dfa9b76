/* Unit tests for the loss-based controller (rtc/bwe_loss.h,
 * draft-ietf-rmcat-gcc-02 §6 on the loss in excess of the random-loss
 * baseline): the 2%/10% rule, one decrease per rtt + 300 ms, the baseline
 * learnt only without over-use, short intervals left open. */
#include "hd_test.h"

#include "rtc/bwe_loss.h"

static void test_loss_rules(void **st) {
  (void)st;
  hd_bwe_loss_t l;
  /* > 10%: A = A (1 - 0.5 p) (gcc-02 §6) */
  hd_bwe_loss_init(&l, 1e6);
  hd_bwe_loss_on_feedback(&l, 80, 20, 1, 0);
  double r = hd_bwe_loss_update(&l, 1e6, 1e6, HD_MS(100), HD_MS(200));
  assert_true(r > 0.899e6 && r < 0.901e6);
  /* not twice within rtt + 300 ms */
  hd_bwe_loss_on_feedback(&l, 80, 20, 1, HD_MS(250));
  r = hd_bwe_loss_update(&l, 1e6, 0.9e6, HD_MS(100), HD_MS(350));
  assert_true(r > 0.899e6 && r < 0.901e6);
  /* 2..10%: held, even when the delay-based estimate is higher */
  hd_bwe_loss_on_feedback(&l, 95, 5, 1, HD_MS(500));
  r = hd_bwe_loss_update(&l, 2e6, 0.9e6, HD_MS(100), HD_MS(700));
  assert_true(r > 0.899e6 && r < 0.901e6);
  /* < 2%: steps aside */
  hd_bwe_loss_on_feedback(&l, 100, 1, 1, HD_MS(800));
  r = hd_bwe_loss_update(&l, 2e6, 0.9e6, HD_MS(100), HD_MS(1000));
  assert_true(r >= 2e6);
  /* random loss (no over-use with it) becomes the baseline: 15% steady loss
   * decreases at first, then no more, and the cap steps aside again */
  hd_bwe_loss_init(&l, 1e6);
  hd_time_t t = 0;
  uint64_t first_decreases = 0;
  for (int i = 0; i < 200; i++) {
    t += HD_MS(100);
    hd_bwe_loss_on_feedback(&l, 85, 15, 0, t);
    r = hd_bwe_loss_update(&l, 1e6, l.rate_bps < 1e6 ? l.rate_bps : 1e6, HD_MS(100), t + HD_MS(1));
    if (i == 49) first_decreases = l.decreases;
  }
  assert_true(first_decreases > 0);
  assert_int_equal(l.decreases, first_decreases); /* none in the last 15 s */
  assert_true(l.base > 0.14 && l.base < 0.16);
  assert_true(r >= 1e6);
  /* the same loss with over-use (a queue overflowing) teaches nothing */
  hd_bwe_loss_init(&l, 1e6);
  t = 0;
  for (int i = 0; i < 50; i++) {
    t += HD_MS(500);
    hd_bwe_loss_on_feedback(&l, 85, 15, 1, t);
    hd_bwe_loss_update(&l, 1e6, l.rate_bps, HD_MS(100), t + HD_MS(1));
  }
  assert_true(l.base == 0);
  assert_true(l.decreases >= 20); /* and it keeps decreasing */
  /* too few packets: the interval stays open (1 of 5 is not 20% loss) */
  hd_bwe_loss_init(&l, 1e6);
  hd_bwe_loss_on_feedback(&l, 4, 1, 1, 0);
  r = hd_bwe_loss_update(&l, 1e6, 1e6, HD_MS(100), HD_MS(500));
  assert_true(r >= 1e6);
  assert_int_equal(l.decreases, 0);
}

/* 20% random loss, no over-use, small intervals (a subscriber of 200-300
 * kbit/s: 20-30 packets per 100 ms interval): the loss of each interval
 * swings by chance from ~5% to ~40% around the base. The loss-based cap may
 * cut at the start (before it has learnt the base), never collapse (e2e/
 * simulcast's 20% case: it fell from 300 to 130 kbit/s in 10 s and paused
 * the viewer's video). */
static void test_random_loss_noise_no_collapse(void **st) {
  (void)st;
  hd_bwe_loss_t l;
  hd_bwe_loss_init(&l, 1e6);
  uint64_t rng = 12345;
  hd_time_t t = 0;
  double r = 1e6, lowest = 1e6;
  uint64_t late_decreases = 0;
  for (int i = 0; i < 300; i++) { /* 30 s */
    uint32_t n = 20 + (uint32_t)(i % 11), lost = 0;
    for (uint32_t k = 0; k < n; k++) {
      rng = rng * 6364136223846793005ull + 1442695040888963407ull;
      lost += (rng >> 33) % 100 < 20;
    }
    t += HD_MS(100);
    hd_bwe_loss_on_feedback(&l, n - lost, lost, 0, t);
    uint64_t d = l.decreases;
    r = hd_bwe_loss_update(&l, 1e6, r < 1e6 ? r : 1e6, HD_MS(60), t + HD_MS(1));
    if (r < lowest) lowest = r;
    if (i >= 100) late_decreases += l.decreases - d;
  }
  print_message("20%% random loss: base %.3f, lowest cap %.0f bps, %llu decreases (%llu after 10 s)\n",
                l.base, lowest, (unsigned long long)l.decreases, (unsigned long long)late_decreases);
  assert_true(l.base > 0.15 && l.base < 0.25);
  assert_true(lowest > 0.6e6);
  assert_true(late_decreases <= 1);
  assert_true(r >= 1e6); /* and the cap steps aside again */
}

/* A sender that all but stops (a paused subscriber) leaves an interval open
 * with the losses of the congestion that paused it; when probes come seconds
 * later their packets must not complete that interval into another cut. */
static void test_stale_interval_dropped(void **st) {
  (void)st;
  hd_bwe_loss_t l;
  hd_bwe_loss_init(&l, 1e6);
  hd_bwe_loss_on_feedback(&l, 60, 40, 0, HD_MS(100)); /* 40% loss */
  assert_true(hd_bwe_loss_update(&l, 1e6, 1e6, HD_MS(50), HD_MS(200)) < 1e6);
  double after = l.rate_bps;
  hd_bwe_loss_on_feedback(&l, 3, 7, 0, HD_MS(300)); /* the last packets before the pause, mostly lost */
  hd_bwe_loss_update(&l, 1e6, after, HD_MS(50), HD_MS(300));
  /* 5 s later, probes: all received */
  hd_bwe_loss_on_feedback(&l, 20, 0, 0, HD_SEC(5));
  double r = hd_bwe_loss_update(&l, 2e6, after, HD_MS(50), HD_SEC(5) + HD_MS(200));
  assert_true(r >= after); /* no second cut from the stale losses */
  assert_true(l.last_excess < HD_BWE_LOSS_LOW);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_loss_rules),
                                     cmocka_unit_test(test_random_loss_noise_no_collapse),
                                     cmocka_unit_test(test_stale_interval_dropped)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
