/* Bandwidth per node link (src/overlay/link_bwe), in virtual time over the
 * `hudong netem` link model (src/netem/link): node A's worker sends datagrams
 * numbered as link datagrams are (one lane, numbers skipped for datagrams
 * that went to other peers) at a fixed rate to B's worker, which reports
 * arrivals back every 50 ms; A's estimator (rtc/bwe) gives the link's
 * estimate. A 2 Mbit/s link carrying 3 Mbit/s reads about 2 Mbit/s; a wide
 * clean link never reads below what it carries. Deterministic (fixed seeds). */
#include "hd_test.h"

#include <string.h>

#include "base/bytes.h"
#include "base/err.h"
#include "netem/link.h"
#include "overlay/link.h"
#include "overlay/link_bwe.h"

typedef struct {
  hd_link_bwe_t *a, *b;    /* A (sender, lane 3), B (receiver, worker 1) */
  hd_netem_link_t *dir[2]; /* dir[0]: A -> B, dir[1]: B -> A */
  hd_time_t now, next_send;
  uint64_t lseq; /* A's lane: next link sequence number */
  uint32_t rng;
  uint64_t sent, fb_msgs, fb_max_n;
} bed_t;

#define A_LANE 3
#define B_WORKER 1

static void bed_init(bed_t *t, const hd_netem_params_t *ab, const hd_netem_params_t *ba) {
  memset(t, 0, sizeof *t);
  t->now = HD_SEC(1000);
  t->a = test_malloc(sizeof *t->a);
  t->b = test_malloc(sizeof *t->b);
  hd_link_bwe_init(t->a, A_LANE);
  hd_link_bwe_init(t->b, B_WORKER);
  assert_int_equal(hd_netem_link_new(&t->dir[0], ab, 11, t->now), 0);
  assert_int_equal(hd_netem_link_new(&t->dir[1], ba, 22, t->now), 0);
  t->lseq = ((uint64_t)A_LANE << HD_LINK_LANE_SHIFT) | 1;
  t->rng = 12345;
  t->next_send = t->now;
}

static void bed_free(bed_t *t) {
  hd_netem_link_free(t->dir[0]);
  hd_netem_link_free(t->dir[1]);
  hd_link_bwe_free(t->a);
  hd_link_bwe_free(t->b);
  test_free(t->a);
  test_free(t->b);
}

static uint32_t rnd(bed_t *t) {
  t->rng = t->rng * 1103515245u + 12345u;
  return t->rng >> 16;
}

/* Sends 1200-byte datagrams at rate_bps until `end` on 1 ms steps, B reports. */
static void run(bed_t *t, uint64_t rate_bps, hd_time_t end) {
  uint8_t pkt[1200], fb[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  memset(pkt, 0xab, sizeof pkt);
  hd_time_t gap = (hd_time_t)(1200 * 8 * 1000000ull / rate_bps);
  for (; t->now < end; t->now += HD_MS(1)) {
    while (t->next_send <= t->now) {
      /* a worker seals for every peer from one counter: 0-2 numbers went elsewhere */
      t->lseq += rnd(t) % 3;
      hd_put_be64(pkt, t->lseq);
      assert_int_equal(hd_link_bwe_on_sent(t->a, B_WORKER, t->lseq, sizeof pkt, t->now), 0);
      hd_netem_link_send(t->dir[0], pkt, sizeof pkt, t->now);
      t->lseq++;
      t->sent++;
      t->next_send += gap;
    }
    const uint8_t *in;
    int n;
    while ((n = hd_netem_link_poll(t->dir[0], t->now, &in)) > 0)
      hd_link_bwe_on_received(t->b, hd_get_be64(in), t->now, "A", 1);
    if (hd_link_bwe_next_timeout(t->b) <= t->now) {
      const void *ret;
      size_t rl;
      while ((n = hd_link_bwe_poll(t->b, t->now, fb, sizeof fb, &ret, &rl)) > 0) {
        assert_int_equal(rl, 1);
        assert_memory_equal(ret, "A", 1);
        uint16_t cnt = hd_get_be16(fb + 2);
        if (cnt > t->fb_max_n) t->fb_max_n = cnt;
        t->fb_msgs++;
        hd_netem_link_send(t->dir[1], fb, (size_t)n, t->now);
      }
      assert_true(n == 0);
    }
    while ((n = hd_netem_link_poll(t->dir[1], t->now, &in)) > 0)
      assert_true(hd_link_bwe_on_feedback(t->a, in, (size_t)n, t->now) >= 0);
  }
}

static void params(hd_netem_params_t *x, int delay_ms, uint64_t rate_bps, double loss) {
  hd_netem_params_init(x);
  x->delay = HD_MS(delay_ms);
  x->rate_bps = rate_bps;
  x->queue_time = rate_bps ? HD_MS(200) : 0;
  x->loss = loss;
}

/* A 2 Mbit/s link (200 ms drop-tail queue, 20 ms each way) carrying 3 Mbit/s:
 * from 10 s on the estimate stays within 1.5-2.5 Mbit/s and the link reads
 * congested. */
static void test_limited_link_converges(void **st) {
  (void)st;
  bed_t t;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 2000000, 0);
  params(&ba, 20, 0, 0);
  bed_init(&t, &ab, &ba);
  hd_time_t start = t.now;
  run(&t, 3000000, start + HD_SEC(10));
  double lo = 1e12, hi = 0, sum = 0;
  int k = 0, congested = 0;
  for (int s = 0; s < 20; s++) {
    run(&t, 3000000, t.now + HD_SEC(1));
    hd_link_bwe_stats_t bs;
    hd_link_bwe_stats(t.a, t.now, &bs);
    double e = (double)bs.estimate_bps;
    if (s == 19)
      print_message("  at 30 s: estimate %.0f, estimator's target %.0f, acked %.0f, sent %.0f kbit/s\n",
                    e / 1000, (double)bs.target_bps / 1000, (double)bs.acked_bps / 1000,
                    (double)bs.sent_bps / 1000);
    if (e < lo) lo = e;
    if (e > hi) hi = e;
    sum += e;
    k++;
    congested += bs.congested;
    assert_int_equal(bs.flows, 1);
  }
  print_message("2 Mbit/s link, 3 Mbit/s sent: estimate %.0f..%.0f kbit/s (mean %.0f), congested %d/20\n",
                lo / 1000, hi / 1000, sum / k / 1000, congested);
  assert_true(lo >= 1500000 && hi <= 2500000);
  assert_true(congested >= 10);
  bed_free(&t);
}

/* 100 Mbit/s, 20 ms each way, 3 Mbit/s sent: after the first second the
 * estimate never reads below what is sent, nothing is counted lost (the
 * numbers skipped for other peers are not losses) and the link is not
 * congested. */
static void test_wide_link_not_low(void **st) {
  (void)st;
  bed_t t;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 100000000, 0);
  params(&ba, 20, 0, 0);
  bed_init(&t, &ab, &ba);
  run(&t, 3000000, t.now + HD_SEC(1));
  double lo = 1e12;
  for (int s = 0; s < 30; s++) {
    run(&t, 3000000, t.now + HD_SEC(1));
    hd_link_bwe_stats_t bs;
    hd_link_bwe_stats(t.a, t.now, &bs);
    if ((double)bs.estimate_bps < lo) lo = (double)bs.estimate_bps;
    assert_int_equal(bs.congested, 0);
    assert_int_equal(bs.lost, 0);
  }
  hd_link_bwe_stats_t bs;
  hd_link_bwe_stats(t.a, t.now, &bs);
  print_message(
      "100 Mbit/s link, 3 Mbit/s sent: lowest estimate %.0f kbit/s; at 31 s the estimator's target is "
      "%.0f kbit/s\n",
      lo / 1000, (double)bs.target_bps / 1000);
  assert_true(lo >= 3000000);
  /* caps: reports of at most HD_LINK_BWE_FB_MAX, about one per 50 ms */
  assert_true(t.fb_max_n <= HD_LINK_BWE_FB_MAX);
  assert_true(t.fb_msgs >= 31 * 18 && t.fb_msgs <= 31 * 21);
  bed_free(&t);
}

/* The same wide link losing 3% at random (a lossy long path): random loss is
 * not congestion, the estimate stays at or above what is sent; the losses
 * are seen. */
static void test_random_loss_not_low(void **st) {
  (void)st;
  bed_t t;
  hd_netem_params_t ab, ba;
  params(&ab, 20, 100000000, 0.03);
  params(&ba, 20, 0, 0);
  bed_init(&t, &ab, &ba);
  run(&t, 3000000, t.now + HD_SEC(10));
  hd_link_bwe_stats_t bs;
  double lo = 1e12;
  for (int s = 0; s < 20; s++) {
    run(&t, 3000000, t.now + HD_SEC(1));
    hd_link_bwe_stats(t.a, t.now, &bs);
    if ((double)bs.estimate_bps < lo) lo = (double)bs.estimate_bps;
  }
  print_message("3%% random loss: lowest estimate %.0f kbit/s, lost %llu of %llu\n", lo / 1000,
                (unsigned long long)bs.lost, (unsigned long long)t.sent);
  assert_true(lo >= 2700000);
  assert_true(bs.lost > t.sent / 50 && bs.lost < t.sent / 20);
  bed_free(&t);
}

/* The sending rate drops from 8 to 1 Mbit/s on a 4 Mbit/s link: the estimate
 * leaves the congested value and ... stays where the link is not full; a
 * link that stops carrying anything has no estimate after HD_LINK_BWE_STALE. */
static void test_idle_link_goes_stale(void **st) {
  (void)st;
  bed_t t;
  hd_netem_params_t ab, ba;
  params(&ab, 10, 4000000, 0);
  params(&ba, 10, 0, 0);
  bed_init(&t, &ab, &ba);
  run(&t, 8000000, t.now + HD_SEC(15));
  hd_link_bwe_stats_t bs;
  hd_link_bwe_stats(t.a, t.now, &bs);
  assert_true(bs.estimate_bps >= 3000000 && bs.estimate_bps <= 5000000);
  /* nothing sent: reports stop, the estimate goes with them */
  for (hd_time_t end = t.now + HD_LINK_BWE_STALE + HD_SEC(1); t.now < end; t.now += HD_MS(1)) {
    const uint8_t *in;
    int n;
    while ((n = hd_netem_link_poll(t.dir[0], t.now, &in)) > 0)
      hd_link_bwe_on_received(t.b, hd_get_be64(in), t.now, "A", 1);
  }
  hd_link_bwe_stats(t.a, t.now, &bs);
  assert_int_equal(bs.flows, 0);
  assert_int_equal(bs.estimate_bps, 0);
  bed_free(&t);
}

/* Wire format: round trip, and every malformed body refused. */
static void test_wire(void **st) {
  (void)st;
  hd_link_bwe_fb_t f, g;
  memset(&f, 0, sizeof f);
  f.lane = 2;
  f.rx_worker = 5;
  f.n = 3;
  f.ref_us = 1000000;
  uint64_t base = ((uint64_t)2 << HD_LINK_LANE_SHIFT) | 77;
  f.e[0].seq = base;
  f.e[0].arrival_us = 1000500;
  f.e[1].seq = base + 3;
  f.e[1].arrival_us = 1000000;
  f.e[2].seq = base + 0xffff + 3;
  f.e[2].arrival_us = 1000000 + 0xffffffffll;
  uint8_t b[HD_LINK_BWE_FB_HDR + 3 * HD_LINK_BWE_FB_ENTRY];
  assert_int_equal(hd_link_bwe_fb_write(&f, b, sizeof b - 1), HD_ENOSPC);
  assert_int_equal(hd_link_bwe_fb_write(&f, b, sizeof b), (int)sizeof b);
  assert_int_equal(hd_link_bwe_fb_parse(b, sizeof b, &g), 0);
  assert_int_equal(g.lane, 2);
  assert_int_equal(g.rx_worker, 5);
  assert_int_equal(g.n, 3);
  for (int i = 0; i < 3; i++) {
    assert_true(g.e[i].seq == f.e[i].seq);
    assert_true(g.e[i].arrival_us == f.e[i].arrival_us);
  }
  assert_int_equal(hd_link_bwe_fb_parse(b, sizeof b - 1, &g), HD_EPROTO); /* length */
  assert_int_equal(hd_link_bwe_fb_parse(b, 10, &g), HD_EPROTO);
  uint8_t c[sizeof b];
  memcpy(c, b, sizeof b);
  c[0] = 1; /* a lane other than the base's */
  assert_int_equal(hd_link_bwe_fb_parse(c, sizeof c, &g), HD_EPROTO);
  memcpy(c, b, sizeof b);
  hd_put_be16(c + HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_ENTRY, 0); /* a repeated number */
  assert_int_equal(hd_link_bwe_fb_parse(c, sizeof c, &g), HD_EPROTO);
  memcpy(c, b, sizeof b);
  hd_put_be16(c + 2, 0); /* n = 0 */
  assert_int_equal(hd_link_bwe_fb_parse(c, HD_LINK_BWE_FB_HDR, &g), HD_EPROTO);
  /* writer: not ascending, delta or offset out of range, n out of range */
  g = f;
  g.e[2].seq = base + 0x10000 + 3;
  assert_int_equal(hd_link_bwe_fb_write(&g, b, sizeof b), HD_EINVAL);
  g = f;
  g.e[2].arrival_us = 1000000 + 0x100000000ll;
  assert_int_equal(hd_link_bwe_fb_write(&g, b, sizeof b), HD_EINVAL);
  g = f;
  g.e[1].seq = base;
  assert_int_equal(hd_link_bwe_fb_write(&g, b, sizeof b), HD_EINVAL);
  g = f;
  g.n = 0;
  assert_int_equal(hd_link_bwe_fb_write(&g, b, sizeof b), HD_EINVAL);
  g.n = HD_LINK_BWE_FB_MAX + 1;
  assert_int_equal(hd_link_bwe_fb_write(&g, b, sizeof b), HD_EINVAL);
}

/* Caps on the receiving side: a burst of 1000 arrivals goes out in reports of
 * at most HD_LINK_BWE_FB_MAX, each sent at once when full; a fifth sending
 * lane finds no slot (counted) until one is idle for HD_LINK_BWE_RX_IDLE;
 * arrivals whose numbers are too far apart for one report are split. A
 * report about another lane, or malformed, is refused and counted. */
static void test_caps(void **st) {
  (void)st;
  hd_link_bwe_t *b = test_malloc(sizeof *b);
  hd_link_bwe_init(b, 0);
  uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  const void *ret;
  size_t rl;
  hd_time_t now = HD_SEC(10);
  uint64_t s = ((uint64_t)1 << HD_LINK_LANE_SHIFT) | 1;
  int total = 0, msgs = 0, n;
  for (int i = 0; i < 1000; i++) {
    if (hd_link_bwe_on_received(b, s + (uint64_t)i, now, "x", 1) == 1) {
      assert_int_equal(hd_link_bwe_next_timeout(b), now);
      while ((n = hd_link_bwe_poll(b, now, out, sizeof out, &ret, &rl)) > 0) {
        assert_int_equal(hd_get_be16(out + 2), HD_LINK_BWE_FB_MAX);
        total += hd_get_be16(out + 2);
        msgs++;
      }
    }
  }
  assert_int_equal(hd_link_bwe_poll(b, now, out, sizeof out, &ret, &rl), 0); /* the rest waits */
  assert_int_equal(hd_link_bwe_next_timeout(b), now + HD_LINK_BWE_FB_INTERVAL);
  while ((n = hd_link_bwe_poll(b, now + HD_LINK_BWE_FB_INTERVAL, out, sizeof out, &ret, &rl)) > 0) {
    total += hd_get_be16(out + 2);
    msgs++;
  }
  assert_int_equal(total, 1000);
  assert_int_equal(msgs, 8);
  /* lanes 1 (above), 2 .. HD_LINK_BWE_RX_LANES take the slots; the next is not noted */
  now += HD_SEC(1);
  for (int l = 2; l <= HD_LINK_BWE_RX_LANES + 1; l++)
    hd_link_bwe_on_received(b, ((uint64_t)l << HD_LINK_LANE_SHIFT) | 1, now, "x", 1);
  assert_int_equal(b->rx_unnoted, 1);
  /* numbers 70000 apart: two reports */
  while (hd_link_bwe_poll(b, now + HD_SEC(1), out, sizeof out, &ret, &rl) > 0)
    ;
  hd_link_bwe_on_received(b, ((uint64_t)2 << HD_LINK_LANE_SHIFT) | 10, now + HD_SEC(2), "x", 1);
  hd_link_bwe_on_received(b, ((uint64_t)2 << HD_LINK_LANE_SHIFT) | 70010, now + HD_SEC(2), "x", 1);
  msgs = 0;
  while ((n = hd_link_bwe_poll(b, now + HD_SEC(3), out, sizeof out, &ret, &rl)) > 0) {
    assert_int_equal(hd_get_be16(out + 2), 1);
    msgs++;
  }
  assert_int_equal(msgs, 2);
  /* after the other lanes were idle long enough, the refused lane gets a slot */
  hd_link_bwe_on_received(b, ((uint64_t)(HD_LINK_BWE_RX_LANES + 1) << HD_LINK_LANE_SHIFT) | 1,
                          now + HD_SEC(9), "x", 1);
  assert_int_equal(b->rx_unnoted, 1);
  assert_int_equal(b->rx_noted, 1000 + (HD_LINK_BWE_RX_LANES - 1) + 2 + 1);
  /* the sending side refuses a report about another lane (this one is 0) */
  hd_link_bwe_fb_t f;
  memset(&f, 0, sizeof f);
  f.lane = 1;
  f.n = 1;
  f.e[0].seq = s;
  int l = hd_link_bwe_fb_write(&f, out, sizeof out);
  assert_true(l > 0);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, (size_t)l, now), HD_EPROTO);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, 3, now), HD_EPROTO);
  assert_int_equal(b->bad, 2);
  /* a report for a flow nothing was sent to: ignored */
  f.lane = 0;
  f.e[0].seq = 1;
  l = hd_link_bwe_fb_write(&f, out, sizeof out);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, (size_t)l, now), 0);
  /* a destination out of range is not a flow */
  assert_int_equal(hd_link_bwe_on_sent(b, HD_LINK_BWE_FLOWS, 1, 100, now), 0);
  assert_int_equal(hd_link_bwe_on_sent(b, -1, 1, 100, now), 0);
  hd_link_bwe_free(b);
  test_free(b);
}

/* Reports that do not fit the flow: numbers above anything sent (the
 * reporter still held notes of this node's previous run, whose numbers were
 * higher) are not losses; after 70000 datagrams with no report (a peer that
 * does not report) one report counts at most the history as lost, and the
 * 16-bit transport-wide numbers do not wrap into old entries. */
/* A sequence number noted twice (a peer restarted: its new epoch numbers from
 * 1 again while the old notes wait) is reported once, the report goes out and
 * the lane is not due for ever (before: every poll failed and the worker's
 * timer was re-armed at 0 ms in a loop). */
static void test_repeated_seq_reported_once(void **st) {
  (void)st;
  hd_link_bwe_t *b = test_malloc(sizeof *b);
  hd_link_bwe_init(b, 0);
  uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  const void *ret;
  size_t rl;
  hd_time_t now = HD_SEC(10);
  uint64_t s = ((uint64_t)1 << HD_LINK_LANE_SHIFT) | 5;
  hd_link_bwe_on_received(b, s, now, "x", 1);
  hd_link_bwe_on_received(b, s + 1, now + 1000, "x", 1);
  hd_link_bwe_on_received(b, s, now + 2000, "x", 1);
  hd_time_t t = now + HD_LINK_BWE_FB_INTERVAL;
  int n = hd_link_bwe_poll(b, t, out, sizeof out, &ret, &rl);
  assert_true(n > 0);
  assert_int_equal(hd_get_be16(out + 2), 2); /* 5 and 6, 5 once */
  assert_int_equal(hd_link_bwe_poll(b, t, out, sizeof out, &ret, &rl), 0);
  assert_true(hd_link_bwe_next_timeout(b) > t); /* nothing due: no busy timer */
  assert_int_equal(b->rx_unnoted, 1);
  hd_link_bwe_free(b);
  test_free(b);
}

static void test_reports_out_of_flow(void **st) {
  (void)st;
  hd_link_bwe_t *b = test_malloc(sizeof *b);
  hd_link_bwe_init(b, 0);
  hd_time_t now = HD_SEC(10);
  for (uint64_t s = 1; s <= 100; s++)
    assert_int_equal(hd_link_bwe_on_sent(b, 0, s, 1000, now), 0);
  hd_link_bwe_fb_t f;
  memset(&f, 0, sizeof f);
  f.n = 2;
  f.ref_us = 5;
  f.e[0].seq = 5000;
  f.e[1].seq = 5001;
  f.e[0].arrival_us = f.e[1].arrival_us = 5;
  uint8_t out[HD_LINK_BWE_FB_HDR + HD_LINK_BWE_FB_MAX * HD_LINK_BWE_FB_ENTRY];
  int l = hd_link_bwe_fb_write(&f, out, sizeof out);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, (size_t)l, now + HD_MS(30)), 0);
  hd_link_bwe_stats_t bs;
  hd_link_bwe_stats(b, now + HD_MS(30), &bs);
  assert_int_equal(bs.lost, 0);
  assert_int_equal(bs.late, 2);
  /* number 50 reported: 1..49 are lost, 50 matched */
  f.n = 1;
  f.e[0].seq = 50;
  l = hd_link_bwe_fb_write(&f, out, sizeof out);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, (size_t)l, now + HD_MS(40)), 1);
  hd_link_bwe_stats(b, now + HD_MS(40), &bs);
  assert_int_equal(bs.lost, 49);
  /* 70000 more without a report, then the last one reported */
  for (uint64_t s = 101; s <= 70100; s++)
    hd_link_bwe_on_sent(b, 0, s, 1000, now + HD_MS(50) + (hd_time_t)s);
  f.e[0].seq = 70100;
  l = hd_link_bwe_fb_write(&f, out, sizeof out);
  assert_int_equal(hd_link_bwe_on_feedback(b, out, (size_t)l, now + HD_SEC(1)), 1);
  hd_link_bwe_stats(b, now + HD_SEC(1), &bs);
  assert_true(bs.lost >= 49 + HD_BWE_HISTORY - 1 && bs.lost <= 49 + HD_BWE_HISTORY);
  hd_link_bwe_free(b);
  test_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wire),
      cmocka_unit_test(test_caps),
      cmocka_unit_test(test_reports_out_of_flow),
      cmocka_unit_test(test_repeated_seq_reported_once),
      cmocka_unit_test(test_limited_link_converges),
      cmocka_unit_test(test_wide_link_not_low),
      cmocka_unit_test(test_random_loss_not_low),
      cmocka_unit_test(test_idle_link_goes_stale),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
