/* Tests for the recording timeline (egress/timeline.h): frames held until the
 * track's first sender report, then stamped from RTP + SR on the recorder's
 * clock with one offset per participant (audio and video of a sender keep the
 * sender's relative timing even when they arrive with different delays);
 * the arrival fallback after the hold; RTP wrap; caps. */
#include "hd_test.h"

#include "base/err.h"
#include "egress/timeline.h"

#define START INT64_C(1700000000000000) /* recorder clock at the start, unix µs */
#define NTP_UNIX 2208988800ULL

static uint64_t ntp_of_us(int64_t unix_us) {
  uint64_t sec = (uint64_t)(unix_us / 1000000) + NTP_UNIX;
  uint64_t frac = ((uint64_t)(unix_us % 1000000) << 32) / 1000000;
  return (sec << 32) | frac;
}

static const uint8_t PAY[4] = {1, 2, 3, 4};

static void test_ntp_to_unix(void **state) {
  assert_int_equal(hd_eg_ntp_to_unix_us(ntp_of_us(START + 123456)), START + 123456);
  assert_int_equal(hd_eg_ntp_to_unix_us(NTP_UNIX << 32), 0);
}

/* A sender whose clock is 10 s ahead of ours: audio arrives 50 ms after
 * capture, video 200 ms after (a slower path, e.g. a held keyframe). Both
 * frames were captured at the same instant: their timeline times must be
 * equal, although their arrivals differ by 150 ms. */
static void test_sr_sync_across_tracks(void **state) {
  hd_eg_timeline_t tl;
  hd_eg_tl_init(&tl, START, 3000000);
  int a = hd_eg_tl_add_track(&tl, "alice", 48000), v = hd_eg_tl_add_track(&tl, "alice", 90000);
  assert_int_equal(a, 0);
  assert_int_equal(v, 1);
  int64_t sender = START + 10000000 + 500000; /* sender's clock at capture (10 s ahead, 0.5 s in) */
  uint32_t ats = 1000, vts = 4294900000u;     /* arbitrary RTP origins */
  /* the SR of each track maps `sender` to its RTP time */
  hd_eg_tl_frame_t f;
  assert_int_equal(hd_eg_tl_push(&tl, a, PAY, 4, 0, ats, 0, 0, 0, START + 550000), 0);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 560000, &f), 0); /* held: no SR yet */
  /* next audio frame 20 ms later, now with an SR */
  assert_int_equal(hd_eg_tl_push(&tl, a, PAY, 4, 0, ats + 960, 1, ntp_of_us(sender), ats, START + 570000), 0);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 570000, &f), 1);
  assert_int_equal(f.track, a);
  int64_t t_a0 = f.t_us;
  assert_int_equal(t_a0, 550000); /* arrival - start of the first mapped frame's participant offset */
  assert_int_equal(hd_eg_tl_poll(&tl, START + 570000, &f), 1);
  assert_int_equal(f.t_us, t_a0 + 20000);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 570000, &f), 0);
  /* video captured at `sender` arrives 200 ms later, with its SR */
  assert_int_equal(hd_eg_tl_push(&tl, v, PAY, 4, 1, vts, 1, ntp_of_us(sender), vts, START + 700000), 0);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 700000, &f), 1);
  assert_int_equal(f.track, v);
  assert_true(f.keyframe);
  assert_int_equal(f.t_us, t_a0); /* same capture instant: same time */
  /* 33 ms later, across the RTP wrap (vts + 2970 wraps past 2^32) */
  assert_int_equal(
      hd_eg_tl_push(&tl, v, PAY, 4, 0, vts + 2970u * 100, 1, ntp_of_us(sender), vts, START + 4000000), 0);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 4000000, &f), 1);
  assert_int_equal(f.t_us, t_a0 + 3300000);
  assert_memory_equal(f.data, PAY, 4);
  assert_int_equal(tl.tr[a].no_sr + tl.tr[v].no_sr, 0);
  hd_eg_tl_free(&tl);
}

/* No SR within the hold: the track is stamped from arrival + RTP time. */
static void test_fallback_after_hold(void **state) {
  hd_eg_timeline_t tl;
  hd_eg_tl_init(&tl, START, 1000000);
  int v = hd_eg_tl_add_track(&tl, "bob", 90000);
  assert_int_equal(hd_eg_tl_push(&tl, v, PAY, 4, 1, 100, 0, 0, 0, START + 200000), 0);
  assert_int_equal(hd_eg_tl_push(&tl, v, PAY, 4, 0, 100 + 9000, 0, 0, 0, START + 290000), 0);
  hd_eg_tl_frame_t f;
  assert_int_equal(hd_eg_tl_poll(&tl, START + 1100000, &f), 0); /* 0.9 s held: still waiting */
  assert_int_equal(hd_eg_tl_poll(&tl, START + 1200000, &f), 1);
  assert_int_equal(f.t_us, 200000);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 1200000, &f), 1);
  assert_int_equal(f.t_us, 300000); /* RTP time, not the 290 ms arrival */
  assert_int_equal(tl.tr[v].no_sr, 1);
  /* an SR arriving later does not change the mapping (monotonic) */
  assert_int_equal(hd_eg_tl_push(&tl, v, PAY, 4, 0, 100 + 18000, 1, ntp_of_us(START), 100, START + 390000),
                   0);
  assert_int_equal(hd_eg_tl_poll(&tl, START + 1200000, &f), 1);
  assert_int_equal(f.t_us, 400000);
  hd_eg_tl_free(&tl);
}

/* flush releases held frames at the end of a recording */
static void test_flush_and_caps(void **state) {
  hd_eg_timeline_t tl;
  hd_eg_tl_init(&tl, START, 3000000);
  int a = hd_eg_tl_add_track(&tl, "c", 48000);
  for (int i = 0; i < HD_EG_TL_MAX_FRAMES; i++)
    assert_int_equal(hd_eg_tl_push(&tl, a, PAY, 4, 0, (uint32_t)(i * 960), 0, 0, 0, START + i * 20000), 0);
  /* full: refused, and the track falls back so that polling drains it */
  assert_int_equal(hd_eg_tl_push(&tl, a, PAY, 4, 0, 0, 0, 0, 0, START), HD_ENOSPC);
  hd_eg_tl_frame_t f;
  int n = 0;
  while (hd_eg_tl_poll(&tl, START, &f) == 1)
    n++;
  assert_int_equal(n, HD_EG_TL_MAX_FRAMES);
  assert_int_equal(hd_eg_tl_push(&tl, a, PAY, 4, 0, 1, 0, 0, 0, START), 0);
  hd_eg_tl_flush(&tl);
  assert_int_equal(hd_eg_tl_poll(&tl, START, &f), 1);
  assert_int_equal(hd_eg_tl_push(&tl, 5, PAY, 4, 0, 1, 0, 0, 0, START), HD_EINVAL);
  assert_int_equal(hd_eg_tl_add_track(&tl, "x", 0), HD_EINVAL);
  hd_eg_tl_free(&tl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ntp_to_unix),
      cmocka_unit_test(test_sr_sync_across_tracks),
      cmocka_unit_test(test_fallback_after_hold),
      cmocka_unit_test(test_flush_and_caps),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
