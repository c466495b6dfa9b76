/* Tests for the connection quality grade (src/sfu/conn_quality.{h,c}). */
#include "hd_test.h"

#include "sfu/conn_quality.h"

static hd_cq_input_t fine(void) {
  hd_cq_input_t in = {.loss_up = 0.0, .loss_down = 0.01, .rtt = HD_MS(60)};
  return in;
}

static void test_grades(void **st) {
  (void)st;
  hd_cq_input_t in = fine();
  assert_int_equal(hd_cq_grade(&in), HD_CQ_GOOD);
  in.loss_up = -1; /* unknown is not bad */
  in.loss_down = -1;
  in.rtt = 0;
  assert_int_equal(hd_cq_grade(&in), HD_CQ_GOOD);
  in = fine();
  in.loss_down = 0.06;
  assert_int_equal(hd_cq_grade(&in), HD_CQ_POOR);
  in = fine();
  in.rtt = HD_MS(450);
  assert_int_equal(hd_cq_grade(&in), HD_CQ_POOR);
  in = fine();
  in.limited = 1;
  assert_int_equal(hd_cq_grade(&in), HD_CQ_POOR);
  in = fine();
  in.loss_up = 0.35;
  assert_int_equal(hd_cq_grade(&in), HD_CQ_LOST);
  in = fine();
  in.silent = HD_SEC(4);
  assert_int_equal(hd_cq_grade(&in), HD_CQ_LOST);
  in = fine();
  in.disconnected = 1;
  assert_int_equal(hd_cq_grade(&in), HD_CQ_LOST);
}

/* Worse at once; better only after HD_CQ_BETTER_AFTER evaluations in a row,
 * so a flickering link does not make the indicator flicker. */
static void test_hysteresis(void **st) {
  (void)st;
  hd_cq_t q;
  hd_cq_init(&q);
  hd_cq_input_t good = fine(), poor = fine();
  poor.loss_down = 0.1;
  assert_int_equal(hd_cq_update(&q, &good), 0);
  assert_int_equal(hd_cq_update(&q, &poor), 1);
  assert_int_equal(q.grade, HD_CQ_POOR);
  for (int i = 0; i < 10; i++) { /* alternating: stays poor */
    assert_int_equal(hd_cq_update(&q, (i & 1) ? &poor : &good), 0);
    assert_int_equal(q.grade, HD_CQ_POOR);
  }
  for (int i = 1; i < HD_CQ_BETTER_AFTER; i++)
    assert_int_equal(hd_cq_update(&q, &good), 0);
  assert_int_equal(hd_cq_update(&q, &good), 1);
  assert_int_equal(q.grade, HD_CQ_GOOD);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grades),
      cmocka_unit_test(test_hysteresis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
