/* A viewer's layer under random loss of its own downlink (issue 11 goal:
 * "at 20% random loss: stall rate < 2%"), in virtual time: an SDK publisher
 * sends three simulcast layers (~1.7 Mbit/s, support/client_world.h) through
 * an in-process node to an SDK subscriber whose downlink is a `hudong netem`
 * link model with 20% random loss and a little one-sided delay noise (Pareto
 * jitter of scale 5 ms, order kept: a loaded host's scheduling, which is
 * what the netem relay and Chromium of e2e/simulcast_chromium run on).
 *
 * In e2e/simulcast_chromium's "20% random loss" case every run over 2% stall
 * had the viewer switching layers (540p -> 270p or 135p and back, each switch
 * waiting for a keyframe). The cause was the node's delay-based estimate
 * (rtc/bwe.c): a delay spike that it takes for noise when the path delivers
 * about what was sent ("lone" over-use: cut 15% of the estimate) was compared
 * with the acknowledged rate, which 20% random loss keeps at 0.7-0.8x what
 * is sent; every spike then read as a link narrower than the send rate and
 * cut to 0.85 x the acknowledged rate (1.7 -> 1.04 Mbit/s): the top layer
 * went. Random loss that NACK/RTX repairs is not congestion; a narrow link
 * (its queue grows, its losses are queue drops) still is, and the viewer must
 * still go down promptly there. */
#include "hd_test.h"

#include <stdlib.h>

#include "base/err.h"
#include "netem/link.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "support/client_world.h"
#include "support/netem_world.h"

typedef struct {
  int switches;      /* layer changes of the viewer's video while watched */
  int layer_end;     /* allocator's layer at the end (-1 paused) */
  hd_time_t down_at; /* first time the layer went below the top after the watch started; -1 never */
  double stall_pct;
} watch_t;

/* The allocator's layer of the subscriber's video track (-1 paused, -3 none). */
static int viewer_layer(cw_t *w) {
  hd_session_t *ss = w->part[1] ? w->part[1]->sub_sess : NULL;
  if (!ss) return -3;
  for (int i = 0; i < ss->n_out; i++)
    if (ss->out[i].kind == HD_TRACK_VIDEO) return ss->out[i].alloc.cur;
  return -3;
}

/* Runs `secs` seconds from now, sampling the layer every 100 ms; the stall
 * counted over those seconds. */
static void watch(cw_t *w, int secs, watch_t *o, const char *label) {
  hd_time_t t0 = w->now;
  w->ep[1].watch_from = t0;
  memset(&w->ep[1].fz, 0, sizeof w->ep[1].fz);
  memset(o, 0, sizeof *o);
  o->down_at = -1;
  int last = viewer_layer(w), trace = getenv("HD_TEST_TRACE") != NULL;
  for (int k = 1; k <= secs * 10; k++) {
    cw_run_until(w, t0 + HD_MS(100) * k);
    int cur = viewer_layer(w);
    if (cur != last) o->switches++;
    if (cur < CW_LAYERS - 1 && o->down_at < 0) o->down_at = w->now - t0;
    if (trace && (cur != last || k % 10 == 0))
      printf("%s t=%.1f layer %d estimate %llu\n", label, (double)(w->now - t0) / 1e6, cur,
             (unsigned long long)cw_estimate(w, NULL));
    last = cur;
  }
  o->layer_end = last;
  o->stall_pct = cw_stall_pct(w);
  printf("%s: %d layer switches, layer at the end %d, first below the top after %.1f s, stall %.2f%%\n",
         label, o->switches, o->layer_end, o->down_at < 0 ? -1.0 : (double)o->down_at / 1e6, o->stall_pct);
}

/* the viewer's downlink: 25 ms, 2.5 Mbit/s with a 300 ms queue (as in
 * e2e/simulcast_chromium), 20% random loss, 5 ms Pareto delay noise */
static const char *const LOSSY[] = {"--delay",       "25",     "--rate",      "2500",     "--queue",
                                    "300",           "--loss", "20",          "--jitter", "5",
                                    "--jitter-dist", "pareto", "--keep-order"};
#define N_LOSSY (sizeof LOSSY / sizeof LOSSY[0])

/* 20% random loss on a leg wide enough for the top layer and its repairs:
 * the viewer keeps the top layer for 30 s (before: 2 switches in each of
 * these seeds, the estimate cut from ~1.7 to ~1.0 Mbit/s by a delay spike). */
static void test_random_loss_keeps_layer(void **st) {
  (void)st;
  for (uint64_t seed = 1; seed <= 3; seed++) {
    cw_cfg_t rc = {.down = LOSSY, .ndown = N_LOSSY, .n_layers = CW_LAYERS, .seed = seed};
    cw_t *w = cw_new(&rc);
    cw_run_until(w, w->now + HD_SEC(8)); /* connected, started, at the top layer */
    assert_int_equal(viewer_layer(w), CW_LAYERS - 1);
    char label[96];
    snprintf(label, sizeof label, "20%% random loss on a 2.5 Mbit/s leg, seed %llu",
             (unsigned long long)seed);
    watch_t o;
    watch(w, 30, &o, label);
    assert_int_equal(o.switches, 0);
    assert_int_equal(o.layer_end, CW_LAYERS - 1);
    assert_true(o.stall_pct < 2.0);
    cw_free(w);
  }
}

/* The same leg (20% random loss and all) narrowed to 600 kbit/s: real
 * congestion (the queue grows, its drops add to the random loss). The viewer
 * goes down from the top layer within 2 s and keeps watching a layer that
 * fits. */
static void test_narrowed_lossy_leg_goes_down(void **st) {
  (void)st;
  cw_cfg_t rc = {.down = LOSSY, .ndown = N_LOSSY, .n_layers = CW_LAYERS, .seed = 1};
  cw_t *w = cw_new(&rc);
  cw_run_until(w, w->now + HD_SEC(10));
  assert_int_equal(viewer_layer(w), CW_LAYERS - 1);
  const char *narrow[N_LOSSY];
  memcpy(narrow, LOSSY, sizeof narrow);
  narrow[3] = "600";
  hd_netem_opts_t o;
  netem_opts_from(&o, narrow, N_LOSSY);
  assert_int_equal(hd_netem_link_set(w->nl[CW_NODE][1], &o.dir[0], w->now), 0);
  watch_t r;
  watch(w, 20, &r, "20% random loss, leg narrowed to 600 kbit/s");
  assert_true(r.down_at >= 0 && r.down_at <= HD_SEC(2));
  assert_true(r.layer_end >= 0 && r.layer_end < CW_LAYERS - 1);
  cw_free(w);
}

/* Without the random loss the narrowing goes the same way (the control). */
static void test_narrowed_leg_goes_down(void **st) {
  (void)st;
  cw_cfg_t rc = {.down = LOSSY, .ndown = N_LOSSY, .n_layers = CW_LAYERS, .seed = 1};
  const char *clean[N_LOSSY];
  memcpy(clean, LOSSY, sizeof clean);
  clean[7] = "0";
  rc.down = clean;
  cw_t *w = cw_new(&rc);
  cw_run_until(w, w->now + HD_SEC(10));
  assert_int_equal(viewer_layer(w), CW_LAYERS - 1);
  clean[3] = "600";
  hd_netem_opts_t o;
  netem_opts_from(&o, clean, N_LOSSY);
  assert_int_equal(hd_netem_link_set(w->nl[CW_NODE][1], &o.dir[0], w->now), 0);
  watch_t r;
  watch(w, 20, &r, "no random loss, leg narrowed to 600 kbit/s");
  assert_true(r.down_at >= 0 && r.down_at <= HD_SEC(2));
  assert_true(r.layer_end >= 0 && r.layer_end < CW_LAYERS - 1);
  cw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_loss_keeps_layer),
      cmocka_unit_test(test_narrowed_lossy_leg_goes_down),
      cmocka_unit_test(test_narrowed_leg_goes_down),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
