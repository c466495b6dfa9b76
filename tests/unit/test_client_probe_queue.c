/* The node's start-up probe for a new viewer leg (issue 11 item 2, rtc/bwe.c
 * hd_bwe_next_probe), in virtual time with the client world
 * (tests/support/client_world.h): an SDK publisher, the node, an SDK
 * subscriber answering with transport-cc, each leg a `hudong netem` link.
 *
 * On a viewer leg as narrow as the publisher's uplink the media already
 * fills it: a start-up cluster (3x the 300 kbit/s start rate, 40 ms) adds a
 * queue that cannot drain. The cluster goes only when the first feedback
 * does not show the queue growing under the media alone; a wide leg still
 * gets it and reaches the top layer as soon as before. */
#include "hd_test.h"

#include <stdio.h>

#include "netem/link.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "support/client_world.h"

/* Largest capture -> arrival delay (before the jitter buffer) of the frames
 * the subscriber got in the first `secs` seconds. */
static hd_time_t early_queue(cw_t *w, int secs) {
  cw_ep_t *sub = &w->ep[1];
  hd_time_t t0 = w->now, worst = 0;
  sub->watch_from = t0;
  for (int s = 1; s <= secs; s++) {
    sub->tr_lo = INT64_MAX, sub->tr_hi = 0;
    cw_run_until(w, t0 + HD_SEC(s));
    printf("  t=%d before the jitter buffer %lld..%lld ms\n", s, (long long)(sub->tr_lo / 1000),
           (long long)(sub->tr_hi / 1000));
    if (sub->tr_hi > worst) worst = sub->tr_hi;
  }
  return worst;
}

/* 300 kbit/s each way with 200 ms queues (bench/weak_network --rates 300):
 * 50 ms of propagation on the two legs plus one frame's serialisation on
 * each; before the fix the start-up cluster's 4.5 KB (120 ms at 300 kbit/s)
 * stacked on the media's queue: 294, 336 and 248 ms in seconds 1-3. */
static void test_narrow_leg_no_startup_queue(void **st) {
  (void)st;
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  cw_cfg_t rc = {.up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1};
  cw_t *w = cw_new(&rc);
  hd_time_t worst = early_queue(w, 3);
  hd_bwe_stats_t bs;
  assert_non_null(w->part[1] && w->part[1]->sub_sess && w->part[1]->sub_sess->bwe);
  hd_bwe_stats(w->part[1]->sub_sess->bwe, &bs);
  printf("300k both legs: worst delay before the jitter buffer in seconds 1-3 %lld ms, start-up clusters "
         "skipped %llu, probes %llu\n",
         (long long)(worst / 1000), (unsigned long long)bs.probes_skipped,
         (unsigned long long)bs.probes_started);
  assert_true(bs.probes_skipped > 0);
  assert_true(worst < HD_MS(230));
  cw_free(w);
}

/* A 5 Mbit/s viewer leg (50 ms queue) under a three-layer publisher: the
 * start-up clusters still go and the viewer reaches the top layer as soon as
 * before the rule (3.45 s in this world, with or without it). */
static void test_wide_leg_ramps(void **st) {
  (void)st;
  const char *down[] = {"--delay", "25", "--rate", "5000", "--queue", "50"};
  cw_cfg_t rc = {.down = down, .ndown = 6, .n_layers = CW_LAYERS};
  cw_t *w = cw_new(&rc);
  hd_time_t t0 = w->now, top_at = -1;
  for (int i = 1; i <= 100 && top_at < 0; i++) {
    cw_run_until(w, t0 + HD_MS(50) * i);
    if (w->ep[1].last_layer == CW_LAYERS - 1) top_at = w->now - t0;
  }
  hd_bwe_stats_t bs;
  hd_bwe_stats(w->part[1]->sub_sess->bwe, &bs);
  printf("5 Mbit/s leg: top layer after %lld ms, start-up clusters skipped %llu, probes %llu\n",
         (long long)(top_at / 1000), (unsigned long long)bs.probes_skipped,
         (unsigned long long)bs.probes_started);
  assert_true(top_at > 0);
  assert_int_equal(bs.probes_skipped, 0);
  assert_true(top_at <= HD_MS(4000)); /* 3450 ms before the rule, + margin */
  cw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_narrow_leg_no_startup_queue),
      cmocka_unit_test(test_wide_leg_ramps),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
