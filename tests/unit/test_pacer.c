/* Unit tests for the per-subscriber pacer (rtc/pacer.h), in virtual time: a
 * keyframe burst is spread at the pacing rate, audio passes a full video
 * queue, retransmissions go before video, padding waits for nothing and is
 * refused behind media, the caps drop the oldest video, the queue-delay bound
 * holds, the wake-ups come once per burst window, and a subscriber without an
 * estimate is paced at no less than it is fed. */
#include "hd_test.h"

#include "base/err.h"
#include "base/time.h"
#include "rtc/pacer.h"

#define MAXREC 4096

typedef struct {
  uint32_t tag[MAXREC];
  hd_time_t at[MAXREC];
  size_t len[MAXREC];
  int n;
  int wakes;
} rec_t;

/* Runs the pacer's timer from `now` to `until` in virtual time, recording each release. */
static hd_time_t run(hd_pacer_t *p, hd_time_t now, hd_time_t until, rec_t *r) {
  for (int guard = 0; guard < 100000; guard++) {
    hd_time_t t = hd_pacer_next_timeout(p);
    if (t == HD_TIME_NEVER || t > until) break;
    if (t > now) now = t;
    r->wakes++;
    const hd_pacer_pkt_t *k;
    while ((k = hd_pacer_peek(p, now))) {
      assert_true(r->n < MAXREC);
      r->tag[r->n] = k->tag;
      r->len[r->n] = k->len;
      r->at[r->n++] = now;
      hd_pacer_sent(p, now);
    }
  }
  return now;
}

static uint8_t pkt[HD_PACER_PKT_MAX];

/* 60 packets of 1200 bytes at once (a keyframe at 1 Mbit/s): released at
 * 1.5 x 1 Mbit/s, never faster than that plus one burst window. */
static void test_keyframe_spread_at_pacing_rate(void **st) {
  (void)st;
  hd_pacer_cfg_t cfg;
  hd_pacer_cfg_default(&cfg);
  cfg.max_delay = HD_SEC(2); /* this test is about the rate, not the bound */
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, &cfg, 0), 0);
  hd_pacer_set_estimate(&p, 1000000);
  assert_int_equal(hd_pacer_rate(&p, 0), 1500000);
  rec_t r = {0};
  hd_time_t t0 = HD_SEC(1);
  int now_cnt = 0;
  for (int i = 0; i < 60; i++) {
    int rc = hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, (uint32_t)i, t0);
    assert_true(rc == 0 || rc == 1);
    if (rc == 1) {
      r.tag[r.n] = (uint32_t)i;
      r.len[r.n] = 1200;
      r.at[r.n++] = t0;
      now_cnt++;
    }
  }
  /* the first packet leaves at once (the burst window holds 937 bytes) */
  assert_int_equal(now_cnt, 1);
  assert_int_equal(hd_pacer_queued_packets(&p), 59);
  run(&p, t0, t0 + HD_SEC(5), &r);
  assert_int_equal(r.n, 60);
  for (int i = 0; i < 60; i++)
    assert_int_equal(r.tag[i], i); /* in order */
  /* 72,000 bytes at 1.5 Mbit/s: 384 ms (less the first packet's 6.4 ms) */
  hd_time_t span = r.at[59] - t0;
  assert_true(span >= HD_MS(370) && span <= HD_MS(385));
  /* no 50 ms window carries more than the rate allows plus one window */
  for (int i = 0; i < 60; i++) {
    size_t bytes = 0;
    for (int j = i; j < 60 && r.at[j] - r.at[i] < HD_MS(50); j++)
      bytes += r.len[j];
    assert_true(bytes <= 1500000 / 8 / 20 + 1200 + 938);
  }
  assert_int_equal(p.dropped, 0);
  assert_int_equal(p.delay_drains, 0);
  assert_true(p.max_wait >= HD_MS(370));
  hd_pacer_free(&p);
}

/* Audio never waits, even behind a full video queue; a retransmission goes
 * before video that was queued earlier. */
static void test_audio_passes_and_rtx_first(void **st) {
  (void)st;
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, NULL, 0), 0);
  hd_pacer_set_estimate(&p, 500000);
  for (int i = 0; i < 300; i++)
    hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1000, (uint32_t)i, 0);
  assert_int_equal(hd_pacer_queued_packets(&p), HD_PACER_DEFAULT_MAX_PACKETS);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_AUDIO, pkt, 120, 1000, HD_MS(1)), 1);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_AUDIO, pkt, 120, 1001, HD_MS(21)), 1);
  /* a repair queued after the video is released first */
  hd_pacer_clear(&p);
  hd_pacer_set_estimate(&p, 5000000); /* 40 kB move in 43 ms: no delay bound at play */
  int now_cnt = 0;
  for (int i = 0; i < 40; i++)
    now_cnt += hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1000, (uint32_t)i, HD_MS(100));
  assert_true(now_cnt >= 1 && now_cnt < 10);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_RTX, pkt, 1000, 7777, HD_MS(100)), 0);
  rec_t r = {0};
  run(&p, HD_MS(100), HD_MS(200), &r);
  assert_int_equal(r.n, 40 - now_cnt + 1);
  assert_int_equal(r.tag[0], 7777);
  assert_int_equal(r.tag[1], now_cnt);
  for (int i = 0; i < 10; i++)
    hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1000, (uint32_t)i, HD_MS(200));
  assert_true(hd_pacer_queued_packets(&p) > 0);
  /* padding waits behind media; a probe cluster's rate lifts the pacing rate */
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_PADDING, pkt, 255, 4242, HD_MS(200)), 0);
  uint64_t r0 = hd_pacer_rate(&p, HD_MS(200));
  hd_pacer_set_probe_rate(&p, r0 * 2);
  assert_int_equal(hd_pacer_rate(&p, HD_MS(200)), r0 * 2);
  rec_t r2 = {0};
  run(&p, HD_MS(200), HD_MS(400), &r2);
  assert_true(r2.n >= 2);
  assert_int_equal(r2.tag[r2.n - 1], 4242); /* the padding last */
  hd_pacer_set_probe_rate(&p, 0);
  assert_int_equal(hd_pacer_rate(&p, HD_MS(400)), r0);
  hd_pacer_clear(&p);
  assert_int_equal(hd_pacer_queued_packets(&p), 0);
  assert_int_equal(hd_pacer_next_timeout(&p), HD_TIME_NEVER);
  /* with nothing waiting, a probe cluster's padding goes at once */
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_PADDING, pkt, 255, 1, HD_MS(1000)), 1);
  hd_pacer_free(&p);
}

/* The caps: the oldest video goes first, counted; the newest stays. */
static void test_caps_drop_oldest_video(void **st) {
  (void)st;
  hd_pacer_cfg_t cfg;
  hd_pacer_cfg_default(&cfg);
  cfg.max_packets = 32;
  cfg.max_bytes = 30000;
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, &cfg, 0), 0);
  hd_pacer_set_estimate(&p, 300000);
  int sent_now = 0;
  for (int i = 0; i < 40; i++)
    if (hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 500, (uint32_t)i, 0) == 1) sent_now++;
  /* packet cap: 32 wait, the oldest (40 - sent_now - 32) were dropped */
  assert_int_equal(hd_pacer_queued_packets(&p), 32);
  assert_int_equal(p.dropped, (uint64_t)(40 - sent_now - 32));
  assert_int_equal(p.dropped_bytes, p.dropped * 500);
  const hd_pacer_pkt_t *k = hd_pacer_peek(&p, HD_MS(100));
  assert_non_null(k);
  assert_int_equal(k->tag, 8); /* 0 went at once, 1..7 were dropped */
  /* byte cap: two big packets push out older small ones */
  hd_pacer_clear(&p);
  sent_now = 0;
  for (int i = 0; i < 26; i++)
    sent_now += hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, (uint32_t)(100 + i), HD_MS(100));
  assert_int_equal(hd_pacer_queued_bytes(&p), 30000); /* 25 x 1200 fit exactly */
  assert_int_equal(hd_pacer_queued_packets(&p), 25);
  assert_int_equal(sent_now, 1);
  uint64_t d0 = p.dropped;
  hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1400, 200, HD_MS(100));
  assert_true(hd_pacer_queued_bytes(&p) <= 30000);
  assert_int_equal(p.dropped, d0 + 2);
  /* padding never pushes out video, and goes first when video needs room */
  hd_pacer_clear(&p);
  for (int i = 0; i < 100 && hd_pacer_queued_packets(&p) < 32; i++)
    hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 100, (uint32_t)i, HD_MS(150));
  uint64_t vd = p.dropped;
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_PADDING, pkt, 100, 500, HD_MS(150)), HD_ENOSPC);
  assert_int_equal(p.padding_refused, 1);
  assert_int_equal(p.dropped, vd);
  hd_pacer_clear(&p);
  for (int i = 0; i < 100 && hd_pacer_queued_packets(&p) < 32; i++)
    hd_pacer_enqueue(&p, HD_PACE_PADDING, pkt, 100, (uint32_t)i, HD_MS(160));
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 100, 600, HD_MS(160)), 0);
  assert_int_equal(p.padding_refused, 2);
  assert_int_equal(p.dropped, vd);
  /* a retransmission that cannot fit once no video is left is refused */
  hd_pacer_clear(&p);
  for (int i = 0; i < 100 && hd_pacer_queued_packets(&p) < 32; i++)
    hd_pacer_enqueue(&p, HD_PACE_RTX, pkt, 100, (uint32_t)i, HD_MS(200));
  assert_int_equal(hd_pacer_queued_packets(&p), 32);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_RTX, pkt, 100, 99, HD_MS(200)), HD_ENOSPC);
  /* bad input */
  assert_int_equal(hd_pacer_enqueue(&p, 9, pkt, 100, 0, HD_MS(200)), HD_EINVAL);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, HD_PACER_PKT_MAX + 1, 0, HD_MS(200)), HD_EINVAL);
  cfg.factor_pct = 90;
  assert_int_equal(hd_pacer_init(&p, &cfg, 0), HD_EINVAL);
  hd_pacer_free(&p);
}

/* More than the rate moves in max_delay: the release speeds up so that no
 * packet waits longer than the bound. */
static void test_queue_delay_bound(void **st) {
  (void)st;
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, NULL, 0), 0);
  hd_pacer_set_estimate(&p, 1000000);
  rec_t r = {0};
  hd_time_t now = 0;
  /* 60-packet keyframes every 100 ms at a 1 Mbit/s estimate: 5.8 Mbit/s offered */
  for (int f = 0; f < 10; f++) {
    hd_time_t t = HD_MS(100) * f;
    now = run(&p, now, t, &r);
    if (t > now) now = t;
    for (int i = 0; i < 60; i++)
      if (hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, (uint32_t)(f * 100 + i), now) == 1) r.n++;
  }
  run(&p, now, HD_SEC(5), &r);
  assert_int_equal(hd_pacer_queued_packets(&p), 0);
  /* the bound (250 ms) and one wake-up of slack */
  assert_true(p.max_wait <= HD_PACER_DEFAULT_MAX_DELAY + HD_MS(1));
  assert_true(p.max_wait >= HD_MS(200));
  assert_true(p.delay_drains > 0);
  hd_pacer_free(&p);
}

/* A busy queue wakes the caller once per burst window, not once per packet. */
static void test_wakes_once_per_window(void **st) {
  (void)st;
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, NULL, 0), 0);
  hd_pacer_set_estimate(&p, 10000000); /* 15 Mbit/s: ~7.8 packets per 5 ms */
  rec_t r = {0};
  int now_cnt = 0;
  for (int i = 0; i < 200; i++)
    if (hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, (uint32_t)i, 0) == 1) now_cnt++;
  run(&p, 0, HD_SEC(1), &r);
  assert_int_equal(r.n + now_cnt, 200);
  /* 240,000 bytes at 15 Mbit/s = 128 ms = ~26 windows */
  assert_true(r.wakes <= 30);
  assert_true(r.at[r.n - 1] >= HD_MS(120) && r.at[r.n - 1] <= HD_MS(130));
  hd_pacer_free(&p);
}

/* Without an estimate nothing is paced by default; with a start rate the
 * pacer assumes it, and never paces below 1.5 x what it is fed: a viewer that
 * sends no feedback is not throttled. */
static void test_no_estimate_follows_feed(void **st) {
  (void)st;
  hd_pacer_t p;
  assert_int_equal(hd_pacer_init(&p, NULL, 0), 0);
  assert_int_equal(hd_pacer_rate(&p, 0), 0);
  for (int i = 0; i < 100; i++) /* a keyframe burst goes at once */
    assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, (uint32_t)i, 0), 1);
  assert_int_equal(hd_pacer_next_timeout(&p), HD_TIME_NEVER);
  hd_pacer_set_estimate(&p, 1000000); /* the first estimate: paced from now on, owing nothing */
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, 100, HD_MS(1)), 1);
  assert_int_equal(hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1200, 101, HD_MS(1)), 0);
  assert_true(hd_pacer_next_timeout(&p) <= HD_MS(8));
  hd_pacer_clear(&p);
  hd_pacer_free(&p);
  hd_pacer_cfg_t cfg;
  hd_pacer_cfg_default(&cfg);
  cfg.start_bps = 1000000;
  assert_int_equal(hd_pacer_init(&p, &cfg, 0), 0);
  assert_int_equal(hd_pacer_rate(&p, 0), 1500000);
  rec_t r = {0};
  hd_time_t now = 0;
  /* 3 Mbit/s fed for 2 s as 1000-byte packets every 2.67 ms */
  for (int i = 0; i < 750; i++) {
    hd_time_t t = (hd_time_t)i * 8000 / 3;
    now = run(&p, now, t, &r);
    if (t > now) now = t;
    hd_pacer_enqueue(&p, HD_PACE_VIDEO, pkt, 1000, (uint32_t)i, now);
  }
  assert_true(hd_pacer_rate(&p, now) >= 4400000);
  run(&p, now, HD_SEC(5), &r);
  /* once the rate is learned nothing waits long */
  assert_true(hd_pacer_oldest_age(&p, now) == 0);
  assert_int_equal(p.dropped, 0);
  hd_pacer_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keyframe_spread_at_pacing_rate),
      cmocka_unit_test(test_audio_passes_and_rtx_first),
      cmocka_unit_test(test_caps_drop_oldest_video),
      cmocka_unit_test(test_queue_delay_bound),
      cmocka_unit_test(test_wakes_once_per_window),
      cmocka_unit_test(test_no_estimate_follows_feed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
