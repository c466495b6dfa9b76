/* Tests for the receiver side of transport-wide CC (src/rtc/twcc_recv.{h,c}):
 * arrivals in any order become feedback that parses back to the same
 * packets, duplicates and stale arrivals are dropped, and the pending buffer
 * is capped. */
#include "hd_test.h"

#include "base/err.h"
#include "rtc/twcc_recv.h"

/* Builds everything pending and parses it back into pk (returns the count). */
static size_t drain(hd_twcc_recv_t *r, hd_rtcp_twcc_pkt_t *pk, size_t cap) {
  size_t got = 0;
  uint8_t buf[1500];
  int n;
  while ((n = hd_twcc_recv_build(r, 1, 2, buf, sizeof buf)) > 0) {
    hd_rtcp_iter_t it;
    hd_rtcp_pkt_t p;
    hd_rtcp_iter_init(&it, buf, (size_t)n);
    assert_int_equal(hd_rtcp_next(&it, &p), 1);
    hd_rtcp_fb_t fb;
    assert_int_equal(hd_rtcp_parse_fb(&p, &fb), 0);
    hd_rtcp_twcc_t tw;
    int k = hd_rtcp_twcc_parse(&fb, &tw, pk + got, cap - got);
    assert_true(k > 0);
    got += (size_t)k;
  }
  assert_int_equal(n, 0);
  return got;
}

static void test_reorder_duplicates_and_wrap(void **st) {
  (void)st;
  static hd_twcc_recv_t r;
  hd_twcc_recv_init(&r);
  /* 65533, 65535, 0 (wrap), then 65534 late, then 0 again (duplicate) */
  hd_twcc_recv_add(&r, 65533, HD_MS(10));
  hd_twcc_recv_add(&r, 65535, HD_MS(12));
  hd_twcc_recv_add(&r, 0, HD_MS(13));
  hd_twcc_recv_add(&r, 65534, HD_MS(15));
  hd_twcc_recv_add(&r, 0, HD_MS(16));
  assert_int_equal(r.n, 4);
  static hd_rtcp_twcc_pkt_t pk[64];
  size_t n = drain(&r, pk, 64);
  assert_int_equal(n, 4);
  uint16_t want[4] = {65533, 65534, 65535, 0};
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(pk[i].seq, want[i]);
    assert_int_not_equal(pk[i].status, HD_TWCC_NOT_RECEIVED);
  }
  /* older than what was already reported: not pending any more, dropped */
  hd_twcc_recv_add(&r, 1, HD_MS(20));
  hd_twcc_recv_add(&r, 65530, HD_MS(21));
  assert_int_equal(r.n, 1);
  assert_int_equal(r.dropped, 1);
}

/* A packet that arrives after the feedback covering its place went out (or
 * a duplicate of one reported) is dropped: the next feedback starts after
 * what was reported, not back at it. */
static void test_late_after_feedback(void **st) {
  (void)st;
  static hd_twcc_recv_t r;
  static hd_rtcp_twcc_pkt_t pk[64];
  hd_twcc_recv_init(&r);
  for (uint16_t s = 100; s < 110; s++)
    if (s != 105) hd_twcc_recv_add(&r, s, HD_MS(s));
  assert_int_equal(drain(&r, pk, 64), 10); /* 100..109, 105 not received */
  hd_twcc_recv_add(&r, 105, HD_MS(120));   /* late */
  hd_twcc_recv_add(&r, 109, HD_MS(121));   /* duplicate */
  assert_int_equal(r.n, 0);
  assert_int_equal(r.dropped, 2);
  hd_twcc_recv_add(&r, 110, HD_MS(122));
  assert_int_equal(drain(&r, pk, 64), 1);
  assert_int_equal(pk[0].seq, 110);
}

static void test_cap(void **st) {
  (void)st;
  static hd_twcc_recv_t r;
  hd_twcc_recv_init(&r);
  for (int i = 0; i < HD_TWCC_RECV_MAX + 10; i++)
    hd_twcc_recv_add(&r, (uint16_t)i, HD_MS(i));
  assert_true(r.n <= HD_TWCC_RECV_MAX);
  assert_true(r.dropped >= HD_TWCC_RECV_MAX / 2);
  static hd_rtcp_twcc_pkt_t pk[2 * HD_TWCC_RECV_MAX];
  size_t n = drain(&r, pk, 2 * HD_TWCC_RECV_MAX);
  assert_true(n >= HD_TWCC_RECV_MAX / 2); /* everything pending went out */
  assert_int_equal(r.n, 0);
  assert_int_equal(pk[n - 1].seq, HD_TWCC_RECV_MAX + 9);
  uint8_t small[8];
  hd_twcc_recv_add(&r, 5000, HD_SEC(5));
  assert_int_equal(hd_twcc_recv_build(&r, 1, 2, small, sizeof small), HD_ENOSPC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reorder_duplicates_and_wrap),
      cmocka_unit_test(test_cap),
      cmocka_unit_test(test_late_after_feedback),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
