/* Unit tests for probe clusters (rtc/bwe_probe.h): saturated and
 * unsaturated results, a cluster with half its packets lost, a silent
 * cluster timing out. */
#include "hd_test.h"

#include "rtc/bwe_probe.h"

static void test_probe_result(void **st) {
  (void)st;
  hd_bwe_probes_t p;
  hd_bwe_probes_init(&p);
  size_t min_bytes;
  int id = hd_bwe_probes_start(&p, 2e6, 0, &min_bytes);
  assert_true(id > 0);
  assert_int_equal(min_bytes, 10000); /* 40 ms at 2 Mbit/s */
  /* 10 x 1200 bytes sent 4.8 ms apart (2 Mbit/s), arriving 9.6 ms apart
   * (a 1 Mbit/s bottleneck): saturated, 95% of the receive rate */
  for (int i = 0; i < 10; i++)
    hd_bwe_probes_on_sent(&p, id, 1200, (hd_time_t)i * 4800);
  double res, tgt;
  int sat;
  for (int i = 0; i < 9; i++)
    hd_bwe_probes_on_feedback(&p, id, 1200, (hd_time_t)i * 4800, 1, 100000 + i * 9600);
  assert_int_equal(hd_bwe_probes_poll(&p, HD_MS(300), &res, &tgt, &sat), 0); /* one still unreported */
  hd_bwe_probes_on_feedback(&p, id, 1200, 9 * 4800, 1, 100000 + 9 * 9600);
  assert_int_equal(hd_bwe_probes_poll(&p, HD_MS(300), &res, &tgt, &sat), 1);
  assert_int_equal(sat, 1);
  assert_true(res > 0.94e6 && res < 0.96e6);
  assert_true(tgt == 2e6);
  /* the same cluster through a wide path: not saturated, the send rate */
  id = hd_bwe_probes_start(&p, 2e6, HD_SEC(1), &min_bytes);
  for (int i = 0; i < 10; i++)
    hd_bwe_probes_on_sent(&p, id, 1200, HD_SEC(1) + (hd_time_t)i * 4800);
  for (int i = 0; i < 10; i++)
    hd_bwe_probes_on_feedback(&p, id, 1200, HD_SEC(1) + (hd_time_t)i * 4800, 1, HD_SEC(2) + i * 4800);
  assert_int_equal(hd_bwe_probes_poll(&p, HD_SEC(2), &res, &tgt, &sat), 1);
  assert_int_equal(sat, 0);
  assert_true(res > 1.99e6 && res < 2.01e6);
  /* the same through a wide path with 10-20% random loss (1 or 2 of 10
   * lost, not the first or last): still not saturated, the send rate */
  for (int lost_n = 1; lost_n <= 2; lost_n++) {
    id = hd_bwe_probes_start(&p, 2e6, HD_MS(2500), &min_bytes);
    for (int i = 0; i < 10; i++)
      hd_bwe_probes_on_sent(&p, id, 1200, HD_MS(2500) + (hd_time_t)i * 4800);
    for (int i = 0; i < 10; i++)
      hd_bwe_probes_on_feedback(&p, id, 1200, HD_MS(2500) + (hd_time_t)i * 4800,
                                !(i == 3 || (lost_n == 2 && i == 6)), HD_MS(2600) + i * 4800);
    assert_int_equal(hd_bwe_probes_poll(&p, HD_MS(2700), &res, &tgt, &sat), 1);
    assert_int_equal(sat, 0);
    assert_true(res > 1.99e6 && res < 2.01e6);
  }
  /* half the cluster lost: no result; a silent cluster times out */
  id = hd_bwe_probes_start(&p, 2e6, HD_SEC(3), &min_bytes);
  for (int i = 0; i < 10; i++)
    hd_bwe_probes_on_sent(&p, id, 1200, HD_SEC(3) + (hd_time_t)i * 4800);
  for (int i = 0; i < 10; i++)
    hd_bwe_probes_on_feedback(&p, id, 1200, 0, i % 2, HD_SEC(4) + i * 4800);
  assert_int_equal(hd_bwe_probes_poll(&p, HD_SEC(4), &res, &tgt, &sat), 0);
  id = hd_bwe_probes_start(&p, 2e6, HD_SEC(5), &min_bytes);
  hd_bwe_probes_on_sent(&p, id, 1200, HD_SEC(5));
  assert_int_equal(hd_bwe_probes_poll(&p, HD_SEC(8), &res, &tgt, &sat), 0);
  assert_int_equal(p.succeeded, 4);
  assert_int_equal(p.failed, 2);
}

/* A clear path and packets of unequal size (1200-byte padding, then a
 * 200-byte media packet, as a paused subscriber's probe looks): arrivals
 * mirror the sends, so not saturated (leaving out the first received and the
 * last sent packet alone made the receive rate 20% lower than the send rate,
 * and the probe "saturated" on an empty link). */
static void test_probe_unequal_sizes_clear_path(void **st) {
  (void)st;
  hd_bwe_probes_t p;
  hd_bwe_probes_init(&p);
  size_t min_bytes;
  int id = hd_bwe_probes_start(&p, 150000, 0, &min_bytes);
  size_t sizes[5] = {1200, 1200, 1200, 1200, 200};
  hd_time_t t = 0;
  for (int i = 0; i < 5; i++) {
    hd_bwe_probes_on_sent(&p, id, sizes[i], t);
    hd_bwe_probes_on_feedback(&p, id, sizes[i], t, 1, HD_MS(40) + t);
    t += (hd_time_t)((double)sizes[i] * 8e6 / 150000);
  }
  double res, tgt;
  int sat;
  assert_int_equal(hd_bwe_probes_poll(&p, HD_SEC(1), &res, &tgt, &sat), 1);
  assert_int_equal(sat, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_probe_result),
                                     cmocka_unit_test(test_probe_unequal_sizes_clear_path)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
