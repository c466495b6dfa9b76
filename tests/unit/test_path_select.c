/* Route selection over the overlay (src/overlay/path_select): on issue 16's
 * test topology (A-C direct 150 ms one way with 10% loss, A-B-C 2 x 20 ms with
 * 0.5% loss) the stream goes through B; a direct path as good as a relayed one
 * stays direct; loaded relays and dead links are avoided; a second, disjoint
 * path exists for duplicate audio; and the router's hysteresis gives zero
 * route changes over 10 minutes of noisy but stable measurements while a dead
 * link is routed around at the next update. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "overlay/path_select.h"

enum { A, B, C, D, E };

/* A fixed-seed xorshift64 for the measurement noise: same run every time. */
static uint64_t g_rng = 42;
static double noise01(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (double)(g_rng >> 11) / (double)(1ull << 53);
}

static void set_link(hd_ovl_graph_t *g, int a, int b, double owd_ms, double loss, double jitter_ms) {
  hd_ovl_link_t l = {.up = 1, .owd_ms = owd_ms, .rtt_ms = 2 * owd_ms, .loss = loss, .jitter_ms = jitter_ms};
  g->link[a][b] = l;
  g->link[b][a] = l;
}

/* issue 16 item 5: the direct A-C path is bad, A-B-C is good; D is a third
 * relay, worse than B; E is only reachable through D. */
static void topology(hd_ovl_graph_t *g) {
  hd_ovl_graph_init(g, 5);
  set_link(g, A, C, 150, 0.10, 5);
  set_link(g, A, B, 20, 0.005, 1);
  set_link(g, B, C, 20, 0.005, 1);
  set_link(g, A, D, 40, 0.01, 2);
  set_link(g, D, C, 40, 0.01, 2);
  set_link(g, B, D, 30, 0.0, 1);
  set_link(g, D, E, 10, 0.0, 1);
}

static void test_bad_direct_goes_through_relay(void **st) {
  (void)st;
  hd_ovl_graph_t g;
  topology(&g);
  hd_ovl_path_t p;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), 0);
  assert_int_equal(p.n_hops, 2);
  assert_int_equal(p.node[1], B);
  /* 2 x (20 + 0.005 * 40 + 2 * 1) */
  assert_true(p.delay_ms > 44.0 && p.delay_ms < 44.5);
  assert_true(p.residual_loss < 1e-6);
  hd_ovl_path_t direct = {.n_hops = 1, .node = {A, C}};
  assert_int_equal(hd_ovl_path_price(&g, &direct), 0);
  print_message("A->C direct: delay %.1f ms, residual %.4f%%, cost %.1f; via B: delay %.1f, cost %.1f\n",
                direct.delay_ms, direct.residual_loss * 100, direct.cost, p.delay_ms, p.cost);
  assert_true(direct.cost > 3 * p.cost);
  /* with no relays allowed, the direct path is all there is */
  assert_int_equal(hd_ovl_best_path(&g, A, C, 0, NULL, &p), 0);
  assert_int_equal(p.n_hops, 1);
  /* E: two relays needed from C (C-D-E is one relay; from A: A-D-E) */
  assert_int_equal(hd_ovl_best_path(&g, C, E, 2, NULL, &p), 0);
  assert_int_equal(p.n_hops, 2);
  assert_int_equal(p.node[1], D);
}

/* A direct path no worse than two hops stays direct (the relay tie-break). */
static void test_equal_paths_prefer_direct(void **st) {
  (void)st;
  hd_ovl_graph_t g;
  hd_ovl_graph_init(&g, 3);
  set_link(&g, A, C, 40, 0, 0);
  set_link(&g, A, B, 20, 0, 0);
  set_link(&g, B, C, 20, 0, 0);
  hd_ovl_path_t p;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), 0);
  assert_int_equal(p.n_hops, 1);
}

static void test_loaded_relay_and_dead_links(void **st) {
  (void)st;
  hd_ovl_graph_t g;
  topology(&g);
  hd_ovl_path_t p;
  g.load[B] = 0.85; /* above the knee: +50 ms, D now wins */
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), 0);
  assert_int_equal(p.node[1], D);
  g.load[B] = 0.97; /* past the maximum: never */
  g.load[D] = 0.97;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), 0);
  assert_int_equal(p.n_hops, 1);
  g.link[A][C].up = 0;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), HD_ENOTFOUND);
  assert_int_equal(p.n_hops, 0);
  g.load[B] = g.load[D] = 0;
  g.link[B][C].up = 0;
  g.link[A][D].up = 0; /* only A-B-D-C is left: two relays */
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &p), 0);
  assert_int_equal(p.n_hops, 3);
  assert_int_equal(p.node[1], B);
  assert_int_equal(p.node[2], D);
  assert_int_equal(hd_ovl_best_path(&g, A, A, 2, NULL, &p), HD_EINVAL);
  assert_int_equal(hd_ovl_best_path(&g, A, 9, 2, NULL, &p), HD_EINVAL);
}

/* Duplicate audio needs a second path that shares no relay and no link. */
static void test_disjoint_second_path(void **st) {
  (void)st;
  hd_ovl_graph_t g;
  topology(&g);
  hd_ovl_path_t first, second;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, NULL, &first), 0);
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, &first, &second), 0);
  assert_false(hd_ovl_path_same(&first, &second));
  for (int i = 1; i < second.n_hops; i++)
    assert_int_not_equal(second.node[i], B);
  assert_int_equal(second.n_hops, 2); /* A-D-C beats the lossy direct path */
  assert_int_equal(second.node[1], D);
  hd_ovl_path_t third;
  assert_int_equal(hd_ovl_best_path(&g, A, C, 2, &second, &third), 0);
  assert_true(hd_ovl_path_same(&third, &first));
}

/* Measurements with +-10% noise on every delay and loss, one update a second
 * for 10 minutes, where A-C through B and through D are within a few percent
 * of each other: no route ever changes after the first. Then B-C dies: the
 * next update moves A->C off it. Then B-C comes back better than before:
 * the route returns only after HD_OVL_HOLD. */
static void test_router_hysteresis(void **st) {
  (void)st;
  hd_ovl_graph_t base, g;
  hd_ovl_graph_init(&base, 4);
  set_link(&base, A, C, 150, 0.10, 5);
  set_link(&base, A, B, 20, 0.005, 2);
  set_link(&base, B, C, 20, 0.005, 2);
  set_link(&base, A, D, 21, 0.005, 2);
  set_link(&base, D, C, 21, 0.005, 2);
  set_link(&base, B, D, 5, 0, 0);
  hd_ovl_router_t r;
  hd_ovl_router_init(&r, A);
  hd_time_t now = HD_SEC(1);
  int first = -1;
  for (int s = 0; s < 600; s++, now += HD_SEC(1)) {
    g = base;
    for (int i = 0; i < g.n; i++)
      for (int j = 0; j < g.n; j++) {
        double f = 0.9 + 0.2 * noise01();
        g.link[i][j].owd_ms *= f;
        g.link[i][j].rtt_ms *= f;
        g.link[i][j].loss *= 0.9 + 0.2 * noise01();
        g.link[i][j].jitter_ms *= 0.9 + 0.2 * noise01();
      }
    int ch = hd_ovl_router_update(&r, &g, now);
    if (s == 0) {
      assert_int_equal(ch, 3); /* B, C, D get routes */
      first = r.cur[C].node[1];
      assert_true(first == B || first == D);
    } else {
      assert_int_equal(ch, 0);
    }
  }
  assert_int_equal(r.changes, 3);
  assert_int_equal(r.changes_new, 3); /* each change is counted by why */
  assert_int_equal(r.changes_broken + r.changes_cost + r.changes_gone, 0);
  assert_int_equal(r.cur[C].node[1], first);
  /* the first path's second link dies */
  int other = first == B ? D : B;
  g = base;
  g.link[first][C].up = 0;
  assert_int_equal(hd_ovl_router_update(&r, &g, now), 1);
  assert_int_equal(r.cur[C].n_hops, 2);
  assert_int_equal(r.cur[C].node[1], other);
  assert_int_equal(r.changes_broken, 1);
  assert_int_equal(r.last_why[C], HD_OVL_WHY_BROKEN);
  assert_string_equal(hd_ovl_why_name(r.last_why[C]), "broken");
  /* it comes back much better: held for HD_OVL_HOLD before switching back */
  g = base;
  set_link(&g, first, C, 5, 0, 0);
  set_link(&g, A, first, 5, 0, 0);
  hd_time_t back = now + HD_SEC(1);
  assert_int_equal(hd_ovl_router_update(&r, &g, back), 0);
  assert_int_equal(hd_ovl_router_update(&r, &g, back + HD_OVL_HOLD / 2), 0);
  assert_int_equal(r.cur[C].node[1], other);
  assert_true(hd_ovl_router_update(&r, &g, back + HD_OVL_HOLD) >= 1);
  assert_int_equal(r.cur[C].node[1], first);
  assert_int_equal(r.last_why[C], HD_OVL_WHY_COST);
  assert_true(r.changes_cost >= 1);
  /* everything to C dies: the route is gone */
  for (int i = 0; i < g.n; i++)
    g.link[i][C].up = 0;
  assert_true(hd_ovl_router_update(&r, &g, back + 2 * HD_OVL_HOLD) >= 1);
  assert_int_equal(r.cur[C].n_hops, 0);
  assert_int_equal(r.last_why[C], HD_OVL_WHY_GONE);
  assert_int_equal(r.changes, r.changes_broken + r.changes_cost + r.changes_new + r.changes_gone);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_direct_goes_through_relay),
      cmocka_unit_test(test_equal_paths_prefer_direct),
      cmocka_unit_test(test_loaded_relay_and_dead_links),
      cmocka_unit_test(test_disjoint_second_path),
      cmocka_unit_test(test_router_hysteresis),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
