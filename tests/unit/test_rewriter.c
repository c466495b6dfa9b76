/* Unit tests for subscriber stream rewriting: continuity of seq and ts across
 * source switches (publisher restart), wraparound, late packets, NACK unmapping. */
#include "hd_test.h"

#include "base/err.h"
#include "sfu/rewriter.h"

static void test_passthrough_and_wrap(void **st) {
  (void)st;
  hd_rewriter_t rw;
  hd_rewriter_init(&rw, 0xabcd, 90000);
  uint16_t s;
  uint32_t t;
  for (int i = 0; i < 100; i++) {
    uint16_t seq = (uint16_t)(65500 + i);
    assert_int_equal(hd_rewriter_map(&rw, 1, seq, 1000u + (uint32_t)i * 3000, HD_MS(33 * i), &s, &t), 0);
    assert_int_equal(s, seq);
    assert_int_equal(t, 1000u + (uint32_t)i * 3000);
  }
  assert_int_equal(rw.switches, 0);
}

static void test_switch_continues_sequence(void **st) {
  (void)st;
  hd_rewriter_t rw;
  hd_rewriter_init(&rw, 0xabcd, 90000);
  uint16_t s, last_s = 0;
  uint32_t t, last_t = 0;
  for (int i = 0; i < 10; i++) {
    assert_int_equal(
        hd_rewriter_map(&rw, 111, (uint16_t)(500 + i), 90000u + (uint32_t)i * 3000, HD_MS(33 * i), &s, &t),
        0);
    last_s = s;
    last_t = t;
  }
  /* source restarts: new SSRC, random seq and ts, 1 s later */
  assert_int_equal(hd_rewriter_map(&rw, 222, 40000, 7777777, HD_MS(33 * 9) + HD_SEC(1), &s, &t), 0);
  assert_int_equal(s, (uint16_t)(last_s + 1));
  assert_int_equal(t, last_t + 90000); /* 1 s at 90 kHz */
  assert_int_equal(rw.switches, 1);
  uint16_t s2;
  uint32_t t2;
  assert_int_equal(hd_rewriter_map(&rw, 222, 40001, 7777777 + 3000, HD_MS(33 * 10) + HD_SEC(1), &s2, &t2), 0);
  assert_int_equal(s2, (uint16_t)(s + 1));
  assert_int_equal(t2, t + 3000);
  /* a late packet from before the switch point of the new source is dropped */
  assert_int_equal(hd_rewriter_map(&rw, 222, 39999, 7777777 - 3000, HD_SEC(2), &s2, &t2), HD_EAGAIN);
}

static void test_unmap_for_nack(void **st) {
  (void)st;
  hd_rewriter_t rw;
  hd_rewriter_init(&rw, 5, 48000);
  uint16_t s;
  uint32_t t;
  for (int i = 0; i < 5; i++)
    hd_rewriter_map(&rw, 9, (uint16_t)(100 + i), 0, 0, &s, &t);
  hd_rewriter_map(&rw, 10, 7000, 0, HD_MS(20), &s, &t); /* switch: out seq 105 */
  assert_int_equal(s, 105);
  hd_rewriter_map(&rw, 10, 7001, 960, HD_MS(40), &s, &t);
  uint16_t src;
  assert_int_equal(hd_rewriter_unmap_seq(&rw, 106, &src), 0);
  assert_int_equal(src, 7001);
  /* out seq 103 belonged to the previous source: cannot be repaired from the new one */
  assert_int_equal(hd_rewriter_unmap_seq(&rw, 103, &src), HD_ENOTFOUND);
  /* not yet sent */
  assert_int_equal(hd_rewriter_unmap_seq(&rw, 110, &src), HD_ENOTFOUND);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_passthrough_and_wrap),
                                     cmocka_unit_test(test_switch_continues_sequence),
                                     cmocka_unit_test(test_unmap_for_nack)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
