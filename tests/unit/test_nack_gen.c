/* Unit tests for NACK generation: gaps noticed, reorder grace, retries at the
 * RTT-based interval, recovery stops requests, give-up by age and tries,
 * wraparound, restart detection, the cap. Virtual time. */
#include "hd_test.h"

#include "base/time.h"
#include "rtc/nack_gen.h"

static void test_gap_and_recovery(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  uint16_t s[16];
  hd_nack_gen_on_packet(&g, 100, 0);
  hd_nack_gen_on_packet(&g, 101, HD_MS(1));
  hd_nack_gen_on_packet(&g, 104, HD_MS(2));                   /* 102, 103 missing */
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(3), s, 16), 0); /* reorder grace */
  assert_int_equal(hd_nack_gen_next_timeout(&g), HD_MS(7));
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(7), s, 16), 2);
  assert_int_equal(s[0], 102);
  assert_int_equal(s[1], 103);
  /* not again before rtt*1.25 */
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(100), s, 16), 0);
  hd_nack_gen_on_packet(&g, 102, HD_MS(110)); /* repaired */
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(7) + HD_MS(125), s, 16), 1);
  assert_int_equal(s[0], 103);
  assert_int_equal(g.recovered, 1);
}

static void test_reordered_packet_not_requested(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  uint16_t s[4];
  hd_nack_gen_on_packet(&g, 10, 0);
  hd_nack_gen_on_packet(&g, 12, HD_MS(1));
  hd_nack_gen_on_packet(&g, 11, HD_MS(2)); /* arrives within the grace */
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(50), s, 4), 0);
  assert_int_equal(hd_nack_gen_next_timeout(&g), HD_TIME_NEVER);
  assert_int_equal(g.requested, 0);
}

static void test_give_up_by_tries_and_age(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  hd_nack_gen_set_rtt(&g, HD_MS(10)); /* interval floor 20 ms */
  uint16_t s[4];
  hd_nack_gen_on_packet(&g, 1, 0);
  hd_nack_gen_on_packet(&g, 3, 0);
  int asks = 0;
  for (hd_time_t t = 0; t <= HD_SEC(2); t += HD_MS(1))
    asks += (int)hd_nack_gen_poll(&g, t, s, 4);
  assert_int_equal(asks, 10); /* max_tries */
  assert_int_equal(g.gave_up, 1);
  /* age: with a long RTT the 1 s limit ends it first */
  hd_nack_gen_init(&g);
  hd_nack_gen_set_rtt(&g, HD_MS(400));
  hd_nack_gen_on_packet(&g, 1, 0);
  hd_nack_gen_on_packet(&g, 3, 0);
  asks = 0;
  for (hd_time_t t = 0; t <= HD_SEC(3); t += HD_MS(1))
    asks += (int)hd_nack_gen_poll(&g, t, s, 4);
  assert_int_equal(asks, 2); /* at 5 ms and 505 ms; the next (1005 ms) is past max_age */
  assert_int_equal(g.n_missing, 0);
}

static void test_wrap_restart_and_cap(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  uint16_t s[300];
  hd_nack_gen_on_packet(&g, 65534, 0);
  hd_nack_gen_on_packet(&g, 1, 0); /* 65535 and 0 missing across the wrap */
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(10), s, 300), 2);
  assert_int_equal(s[0], 65535);
  assert_int_equal(s[1], 0);
  /* a jump of 5000 is a restart, not 5000 losses */
  hd_nack_gen_on_packet(&g, 5001, HD_MS(20));
  assert_int_equal(g.n_missing, 0);
  assert_int_equal(g.resets, 1);
  /* a gap of 400 keeps only the newest HD_NACK_MAX_MISSING */
  hd_nack_gen_on_packet(&g, 5402, HD_MS(30));
  assert_int_equal(g.n_missing, HD_NACK_MAX_MISSING);
  size_t n = hd_nack_gen_poll(&g, HD_MS(40), s, 300);
  assert_int_equal(n, HD_NACK_MAX_MISSING);
  assert_int_equal(s[n - 1], 5401);
}

/* learn_rtt: a repair of a seq asked once is a round-trip sample; retries
 * follow it (RFC 6298-style smoothing). Seqs asked twice give no sample. */
static void test_learns_rtt_from_repairs(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  g.learn_rtt = 1;
  uint16_t s[8];
  hd_nack_gen_on_packet(&g, 1, 0);
  hd_nack_gen_on_packet(&g, 3, HD_MS(1)); /* 2 missing */
  assert_true(hd_nack_gen_is_missing(&g, 2));
  assert_false(hd_nack_gen_is_missing(&g, 1));
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(6), s, 8), 1);
  assert_int_equal(hd_nack_gen_on_packet(&g, 2, HD_MS(46)), 1); /* repaired 40 ms after the request */
  assert_false(hd_nack_gen_is_missing(&g, 2));
  assert_int_equal(g.rtt_samples, 1);
  assert_int_equal(g.rtt, HD_MS(40));
  /* the next loss is retried after 1.25 x 40 ms, not the 100 ms default */
  hd_nack_gen_on_packet(&g, 5, HD_MS(100));
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(105), s, 8), 1);
  assert_int_equal(hd_nack_gen_next_timeout(&g), HD_MS(155));
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(155), s, 8), 1);
  assert_int_equal(hd_nack_gen_on_packet(&g, 4, HD_MS(170)), 1); /* asked twice: no sample */
  assert_int_equal(g.rtt_samples, 1);
  /* a late original that was never asked for is not a repair */
  hd_nack_gen_on_packet(&g, 8, HD_MS(200));
  assert_int_equal(hd_nack_gen_on_packet(&g, 7, HD_MS(201)), 0);
}

/* At exactly first + max_age the seq expires: the deadline given by
 * next_timeout is one poll can act on (an event loop must not spin on it). */
static void test_expiry_at_deadline(void **st) {
  (void)st;
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  g.max_age = HD_MS(100);
  uint16_t s[4];
  hd_nack_gen_on_packet(&g, 1, 0);
  hd_nack_gen_on_packet(&g, 3, 0);
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(5), s, 4), 1); /* next ask at 130 ms, expiry at 100 */
  assert_int_equal(hd_nack_gen_next_timeout(&g), HD_MS(100));
  assert_int_equal(hd_nack_gen_poll(&g, HD_MS(100), s, 4), 0);
  assert_int_equal(g.gave_up, 1);
  assert_int_equal(hd_nack_gen_next_timeout(&g), HD_TIME_NEVER);
}

/* FlexFEC hold: a hole waits fec_wait while repair packets come, the normal
 * reorder wait HD_NACK_FEC_HOLD after the last one; a hole its repair packet
 * could not rebuild is due at once. */
static void test_fec_hold(void **st) {
  hd_nack_gen_t g;
  hd_nack_gen_init(&g);
  hd_time_t t = HD_SEC(10);
  assert_int_equal(hd_nack_gen_first_wait(&g, t), HD_MS(5));
  hd_nack_gen_fec_seen(&g, HD_MS(25), t);
  assert_int_equal(hd_nack_gen_first_wait(&g, t), HD_MS(25));
  uint16_t seqs[8];
  hd_nack_gen_on_packet(&g, 100, t);
  hd_nack_gen_on_packet(&g, 103, t); /* 101, 102 missing */
  hd_nack_gen_on_packet(&g, 106, t); /* 104, 105 missing: another group's */
  assert_int_equal(hd_nack_gen_poll(&g, t + HD_MS(10), seqs, 8), 0);
  /* a repair packet of the second group (104..106) cannot advance the first's */
  assert_int_equal(hd_nack_gen_fec_covered(&g, 104, 106, t + HD_MS(11)), 2);
  assert_int_equal(hd_nack_gen_poll(&g, t + HD_MS(11), seqs, 8), 2);
  assert_int_equal(seqs[0], 104);
  /* a repair packet over 100..102 rebuilt nothing: both are due now */
  assert_int_equal(hd_nack_gen_fec_covered(&g, 100, 102, t + HD_MS(12)), 2);
  assert_int_equal(hd_nack_gen_poll(&g, t + HD_MS(12), seqs, 8), 2);
  /* no repair packet for a second: back to the reorder wait */
  hd_time_t later = t + HD_NACK_FEC_HOLD + HD_MS(1);
  assert_int_equal(hd_nack_gen_first_wait(&g, later), HD_MS(5));
  hd_nack_gen_on_packet(&g, 108, later); /* 107 missing */
  assert_int_equal(hd_nack_gen_poll(&g, later + HD_MS(5), seqs, 8), 1);
  assert_int_equal(seqs[0], 107);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fec_hold),
      cmocka_unit_test(test_learns_rtt_from_repairs),
      cmocka_unit_test(test_expiry_at_deadline),
      cmocka_unit_test(test_gap_and_recovery),
      cmocka_unit_test(test_reordered_packet_not_requested),
      cmocka_unit_test(test_give_up_by_tries_and_age),
      cmocka_unit_test(test_wrap_restart_and_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
