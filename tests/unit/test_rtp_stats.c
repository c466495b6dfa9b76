/* Unit tests for src/rtc/rtp_stats: RFC 3550 A.1 probation / wrap / restart,
 * A.3 loss (10% loss -> fraction 25/256), A.8 jitter against a hand-computed
 * sequence, LSR/DLSR, and the sender side's SR fields. Virtual time. */
#include "hd_test.h"

#include "base/err.h"
#include "rtc/rtp_stats.h"

static void test_probation(void **st) {
  (void)st;
  hd_rtp_recv_stats_t s;
  hd_rtp_recv_stats_init(&s, 7);
  hd_rtcp_rb_t rb;
  assert_int_equal(hd_rtp_recv_stats_report(&s, 0, &rb), HD_ESTATE);
  /* Default MIN_SEQUENTIAL 2: the first packet is not counted. */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 100, 0, 0, 90000), 0);
  assert_int_equal(hd_rtp_recv_stats_report(&s, 0, &rb), HD_ESTATE);
  /* A non-sequential packet restarts probation. */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 300, 0, 0, 90000), 0);
  assert_int_equal(hd_rtp_recv_stats_update(&s, 301, 0, 0, 90000), 1);
  assert_int_equal(hd_rtp_recv_stats_update(&s, 302, 0, 0, 90000), 1);
  assert_int_equal(hd_rtp_recv_stats_report(&s, 0, &rb), 0);
  assert_int_equal(rb.ssrc, 7);
  assert_int_equal(rb.ext_highest_seq, 302);
  assert_int_equal(rb.cumulative_lost, 0);
  assert_int_equal(rb.fraction_lost, 0);
  assert_int_equal(rb.lsr, 0);
  assert_int_equal(rb.dlsr, 0);
  assert_int_equal(hd_rtp_recv_stats_update(&s, 303, 0, 0, 0), HD_EINVAL);
}

static void test_wrap_restart_dup(void **st) {
  (void)st;
  hd_rtp_recv_stats_t s;
  hd_rtp_recv_stats_init(&s, 1);
  hd_rtp_recv_stats_set_probation(&s, 0);
  for (uint32_t i = 0; i < 20; i++)
    assert_int_equal(hd_rtp_recv_stats_update(&s, (uint16_t)(65530 + i), i * 160, i * 20000, 8000), 1);
  assert_int_equal(s.cycles, 65536);
  assert_int_equal(hd_rtp_recv_stats_ext_max(&s), 65536 + 13);
  assert_int_equal(hd_rtp_recv_stats_lost(&s), 0);
  /* Reordered (older) packet is counted but does not move max; duplicate makes
   * loss negative. */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 5, 0, 0, 8000), 1);
  assert_int_equal(hd_rtp_recv_stats_ext_max(&s), 65536 + 13);
  assert_int_equal(hd_rtp_recv_stats_lost(&s), -1);
  hd_rtcp_rb_t rb;
  assert_int_equal(hd_rtp_recv_stats_report(&s, 0, &rb), 0);
  assert_int_equal(rb.cumulative_lost, -1);
  assert_int_equal(rb.fraction_lost, 0);
  /* A jump of 10000: dropped once, accepted as a restart when the next one is
   * sequential (A.1 bad_seq). */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 10013, 0, 0, 8000), 0);
  assert_int_equal(hd_rtp_recv_stats_update(&s, 10014, 0, 0, 8000), 1);
  assert_int_equal(hd_rtp_recv_stats_ext_max(&s), 10014);
  assert_int_equal(hd_rtp_recv_stats_lost(&s), 0);
  /* Gap within MAX_DROPOUT is loss. */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 10020, 0, 0, 8000), 1);
  assert_int_equal(hd_rtp_recv_stats_lost(&s), 5);
}

static void test_fraction_lost_10pct(void **st) {
  (void)st;
  hd_rtp_recv_stats_t s;
  hd_rtp_recv_stats_init(&s, 9);
  hd_rtp_recv_stats_set_probation(&s, 0);
  hd_rtcp_rb_t rb;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < 100; i++) {
      int seq = round * 100 + i;
      if (i % 10 == 5) continue; /* lose 10 of 100 */
      hd_rtp_recv_stats_update(&s, (uint16_t)seq, (uint32_t)seq * 960, (hd_time_t)seq * 20000, 48000);
    }
    assert_int_equal(hd_rtp_recv_stats_report(&s, HD_SEC(2 + round), &rb), 0);
    assert_int_equal(rb.fraction_lost, 25); /* floor(0.1 * 256) */
    assert_int_equal(rb.cumulative_lost, 10 * (round + 1));
    assert_int_equal(rb.ext_highest_seq, round * 100 + 99);
    assert_int_equal(rb.jitter, 0); /* perfectly paced */
  }
  /* An interval with nothing new: fraction 0. */
  assert_int_equal(hd_rtp_recv_stats_report(&s, HD_SEC(5), &rb), 0);
  assert_int_equal(rb.fraction_lost, 0);
  assert_int_equal(rb.cumulative_lost, 20);
}

static void test_jitter_hand_computed(void **st) {
  (void)st;
  /* 8 kHz clock (125 µs/tick), 20 ms packets (160 ticks). Arrivals 0, 20, 45,
   * 60, 80 ms: transits 0, 0, 40, 0, 0 ticks -> |D| = 0, 40, 40, 0.
   * J*16 (A.8 integer form, J16 += |D| - (J16 + 8) / 16):
   *   0 -> 0 -> 40 -> 40 + 40 - 3 = 77 -> 77 + 0 - 5 = 72.  J = 72/16 = 4. */
  hd_rtp_recv_stats_t s;
  hd_rtp_recv_stats_init(&s, 1);
  hd_rtp_recv_stats_set_probation(&s, 1);
  const hd_time_t arr[] = {0, 20000, 45000, 60000, 80000};
  const uint32_t want[] = {0, 0, 40, 77, 72};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(hd_rtp_recv_stats_update(&s, (uint16_t)(1000 + i), 5000u + 160u * (uint32_t)i,
                                              HD_SEC(3) + arr[i], 8000),
                     1);
    assert_int_equal(s.jitter_q4, want[i]);
  }
  assert_int_equal(hd_rtp_recv_stats_jitter(&s), 4);
  /* A reordered/retransmitted old packet does not disturb jitter. */
  assert_int_equal(hd_rtp_recv_stats_update(&s, 1002, 5320, HD_SEC(10), 8000), 1);
  assert_int_equal(s.jitter_q4, 72);
  /* RTP timestamp wrap is harmless: continue with ts near 2^32. */
  hd_rtp_recv_stats_t w;
  hd_rtp_recv_stats_init(&w, 2);
  hd_rtp_recv_stats_set_probation(&w, 0);
  for (int i = 0; i < 10; i++)
    hd_rtp_recv_stats_update(&w, (uint16_t)i, 0xffffff00u + 160u * (uint32_t)i, 20000 * i, 8000);
  assert_int_equal(w.jitter_q4, 0);
}

static void test_lsr_dlsr(void **st) {
  (void)st;
  hd_rtp_recv_stats_t s;
  hd_rtp_recv_stats_init(&s, 1);
  hd_rtp_recv_stats_set_probation(&s, 0);
  hd_rtp_recv_stats_update(&s, 1, 0, 0, 90000);
  uint64_t ntp = hd_rtcp_ntp_from_time(HD_SEC(1), HD_SEC(1700000000));
  hd_rtp_recv_stats_on_sr(&s, ntp, HD_SEC(1));
  hd_rtcp_rb_t rb;
  assert_int_equal(hd_rtp_recv_stats_report(&s, HD_MS(1500), &rb), 0);
  assert_int_equal(rb.lsr, hd_rtcp_ntp_mid32(ntp));
  assert_int_equal(rb.dlsr, 0x8000);
  /* The sender computes RTT from this block: it arrives 0.5 s + 80 ms after the SR
   * was sent, so RTT = 80 ms. */
  uint32_t a = hd_rtcp_ntp_mid32(hd_rtcp_ntp_from_time(HD_MS(1580), HD_SEC(1700000000)));
  hd_time_t rtt;
  assert_int_equal(hd_rtcp_rtt(a, &rb, &rtt), 0);
  assert_true(rtt >= HD_MS(80) - 50 && rtt <= HD_MS(80) + 50);
}

static void test_sender(void **st) {
  (void)st;
  hd_rtp_send_stats_t s;
  hd_rtp_send_stats_init(&s, 0x1234, 90000);
  hd_rtcp_sr_t sr;
  assert_int_equal(hd_rtp_send_stats_sr(&s, 0, 0, &sr), HD_ESTATE);
  hd_rtp_send_stats_update(&s, 1000, 100, HD_SEC(1));
  hd_rtp_send_stats_update(&s, 1000, 200, HD_SEC(1) + HD_MS(10)); /* same frame */
  hd_rtp_send_stats_update(&s, 900, 50, HD_SEC(1) + HD_MS(20));   /* retransmission */
  assert_int_equal(hd_rtp_send_stats_sr(&s, HD_MS(1500), HD_SEC(1000), &sr), 0);
  assert_int_equal(sr.ssrc, 0x1234);
  assert_int_equal(sr.rtp_ts, 1000 + 45000);
  assert_int_equal(sr.packet_count, 3);
  assert_int_equal(sr.octet_count, 350);
  assert_int_equal(sr.rb_count, 0);
  assert_true(sr.ntp == hd_rtcp_ntp_from_time(HD_MS(1500), HD_SEC(1000)));
  /* Timestamp wrap moves the mapping forward. */
  hd_rtp_send_stats_init(&s, 0x1234, 90000);
  hd_rtp_send_stats_update(&s, 0xfffffff0u, 1, HD_SEC(2));
  hd_rtp_send_stats_update(&s, 10, 1, HD_SEC(3));
  assert_int_equal(hd_rtp_send_stats_sr(&s, HD_SEC(3), 0, &sr), 0);
  assert_int_equal(sr.rtp_ts, 10);
  /* SR before the last packet time extrapolates backwards. */
  assert_int_equal(hd_rtp_send_stats_sr(&s, HD_SEC(3) - HD_MS(1), 0, &sr), 0);
  assert_int_equal(sr.rtp_ts, (uint32_t)(10 - 90));
  /* Round trip through the RTCP builder. */
  uint8_t buf[64];
  assert_int_equal(hd_rtcp_build_sr(&sr, buf, sizeof buf), 28);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_probation),
      cmocka_unit_test(test_wrap_restart_dup),
      cmocka_unit_test(test_fraction_lost_10pct),
      cmocka_unit_test(test_jitter_hand_computed),
      cmocka_unit_test(test_lsr_dlsr),
      cmocka_unit_test(test_sender),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
