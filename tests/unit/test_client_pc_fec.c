/* FlexFEC (RFC 8627) and video repair of the client PeerConnection
 * (src/client/pc.h) on a virtual clock (tests/support/pc_world.h): two pcs
 * directly and a publisher through an in-process node, with and without FEC
 * on lossy links; the SDK's video jitter buffer and freeze rule on the
 * weak-network bench's path; the NACK hold ends. */
#include "hd_test.h"

#include <stdlib.h>

#include "client/pc_internal.h" /* the NACK hold of a track (test_fec_nack_hold_ends) */
#include "rtc/flexfec.h"
#include "support/pc_world.h"

/* FlexFEC between two SDK pcs (issue 13 item 2): a sends 20 s of video to b
 * with `loss` on each of the four link directions; NACK off, so what FEC
 * does not rebuild stays lost. */
static void direct_fec(double loss, int fec, int64_t *lost, hd_pc_track_stats_t *as,
                       hd_pc_track_stats_t *bs) {
  pw_t *w = pw_new();
  w->no_nack = 1;
  w->no_fec = !fec;
  pw_connect_direct(w, loss, HD_PC_SENDONLY, 0);
  pw_ep_t *a = &w->ep[0], *b = &w->ep[1];
  char line[64];
  snprintf(line, sizeof line, "a=rtpmap:%u flexfec/90000\r\n", HD_PC_PT_FLEXFEC);
  assert_int_equal(strstr(w->offer, line) != NULL, fec);
  assert_int_equal(strstr(w->answer, line) != NULL, fec);
  assert_int_equal(strstr(w->offer, "a=ssrc-group:FEC-FR ") != NULL, fec);
  a->sending = 1;
  pw_run_until(w, w->now + HD_SEC(20));
  *lost = pw_holes(&b->app, HD_PC_VIDEO, 50);
  hd_pc_stats_t s;
  hd_pc_stats(a->pc, &s);
  *as = s.tracks[0];
  hd_pc_stats(b->pc, &s);
  *bs = s.tracks[0];
  printf(
      "%.0f%% per link, FEC %s: %llu video packets sent, %lld lost after FEC (%.2f%%), repair packets %llu "
      "sent / %llu received, %llu rebuilt, group %d (reported loss %.3f)\n",
      loss * 100, fec ? "on" : "off", (unsigned long long)as->packets_sent, (long long)*lost,
      100.0 * (double)*lost / (double)as->packets_sent, (unsigned long long)as->fec_sent,
      (unsigned long long)bs->fec_received, (unsigned long long)bs->fec_recovered, as->fec_group,
      as->fraction_lost);
  pw_free(w);
}

static void test_flexfec_direct(void **st) {
  /* 36% and 43% a -> b: b's answer still lists video NACK and the path's
   * round trip is short (80 ms), so a plans FEC only from
   * HD_FLEXFEC_NACK_LOSS (30%) */
  const double losses[] = {0.20, 0.25};
  for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
    int64_t off, on;
    hd_pc_track_stats_t as_off, bs_off, as_on, bs_on;
    direct_fec(losses[i], 0, &off, &as_off, &bs_off);
    direct_fec(losses[i], 1, &on, &as_on, &bs_on);
    assert_int_equal(as_off.fec_sent, 0);
    assert_int_equal(bs_off.fec_recovered, 0);
    assert_true(as_on.fec_sent > 0 && bs_on.fec_received > 0);
    assert_true(as_on.fec_group >= 2 && as_on.fec_group <= HD_FLEXFEC_MAX_GROUP);
    assert_true(bs_on.fec_recovered > 0);
    /* residual loss cut by at least a fifth (FEC starts once the smoothed
     * reports pass 30%, and two of a small group lost is frequent at these
     * losses: 610 -> 466 at 36%) */
    assert_true(off > 0);
    assert_true(on * 5 <= off * 4);
  }
}

/* FlexFEC through the node (issue 13 item 2): alice publishes video with
 * `loss` on both directions of her leg, bob's leg is clean; the node rebuilds
 * from alice's repair packets what her leg lost before (or instead of)
 * NACKing her. Returns alice's video stats, bob's holes, the node's counters. */
static void node_fec(double loss, hd_time_t delay, int fec, hd_pc_track_stats_t *ps, int64_t *holes_out,
                     int *keyframes, hd_session_counters_t *nc) {
  pw_t *w = pw_new();
  w->no_fec = !fec;
  hd_netem_params_t np, clean;
  hd_netem_params_init(&np);
  hd_netem_params_init(&clean);
  np.delay = delay;
  clean.delay = HD_MS(25);
  np.loss = loss;
  assert_int_equal(hd_netem_link_new(&w->nl[0][PW_NODE], &np, 7100, w->now), 0);
  assert_int_equal(hd_netem_link_new(&w->nl[PW_NODE][0], &np, 7101, w->now), 0);
  assert_int_equal(hd_netem_link_new(&w->nl[1][PW_NODE], &clean, 7102, w->now), 0);
  assert_int_equal(hd_netem_link_new(&w->nl[PW_NODE][1], &clean, 7103, w->now), 0);
  pw_room_start(w, 0, 20);
  hd_pc_stats_t s;
  hd_pc_stats(w->ep[0].pc, &s);
  *ps = s.tracks[1];
  *holes_out = pw_holes(&w->ep[1].app, HD_PC_VIDEO, 100);
  *keyframes = w->ep[0].app.keyframes;
  *nc = hd_node_stats(w->node)->media;
  printf(
      "alice's leg %.0f%% each way, FEC %s: video %llu sent, node NACKed %llu, alice resent %llu, FEC %llu "
      "sent (group %d), node rebuilt %llu of %llu repair packets, keyframe requests %d, bob's holes %lld\n",
      loss * 100, fec ? "on" : "off", (unsigned long long)ps->packets_sent,
      (unsigned long long)ps->nack_received, (unsigned long long)ps->rtx_sent,
      (unsigned long long)ps->fec_sent, ps->fec_group, (unsigned long long)nc->fec_recovered,
      (unsigned long long)nc->fec_received, *keyframes, (long long)*holes_out);
  pw_free(w);
}

static void test_flexfec_through_node(void **st) {
  const double losses[] = {0.10, 0.20};
  for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
    hd_pc_track_stats_t off, on;
    int64_t h_off, h_on;
    int k_off, k_on;
    hd_session_counters_t c_off, c_on;
    /* 60 ms each way on alice's leg: a round trip too long for NACK alone
     * (rtc/flexfec.h hd_flexfec_plan), so her FEC is on from 2% loss */
    node_fec(losses[i], HD_MS(60), 0, &off, &h_off, &k_off, &c_off);
    node_fec(losses[i], HD_MS(60), 1, &on, &h_on, &k_on, &c_on);
    assert_int_equal(off.fec_sent, 0);
    assert_int_equal(c_off.fec_recovered, 0);
    /* the node negotiated FlexFEC with alice, got her repair packets and rebuilt */
    assert_true(on.fec_sent > 0 && c_on.fec_received > 0 && c_on.fec_recovered > 0);
    assert_true(c_on.fec_received <= on.fec_sent);
    /* what FEC rebuilt is not asked for again: fewer repairs cross alice's
     * leg (60 ms each way: 10% 688 -> 324, 20% 1468 -> 756) */
    assert_true(on.rtx_sent * 10 < off.rtx_sent * 9);
    /* and bob misses no more than without it */
    assert_true(h_on <= h_off);
  }
}

/* Video at 50% loss on the publisher's leg (issue 13 item 3): a repair
 * round succeeds only when both the NACK and a copy of the repair get
 * through; the node gives up on a hole after 500 ms and asks for a keyframe. */
static void test_video_half_loss_publisher_leg(void **st) {
  hd_pc_track_stats_t ps;
  int64_t h;
  int k;
  hd_session_counters_t nc;
  node_fec(0.5, HD_MS(25), 0, &ps, &h, &k, &nc);
  printf("50%%: %llu NACK messages sent twice; holes given up (keyframe asked) %llu, keyframe requests %d\n",
         (unsigned long long)nc.nacks_doubled, (unsigned long long)nc.pli_unrepairable, k);
  /* the node's NACKs go twice on this leg (its reports show ~50% loss) */
  assert_true(nc.nacks_doubled > 0);
  /* holes given up at the 500 ms deadline: 82 with single NACKs, 29-48 now;
   * bob misses at most half of the 12 packets he missed before (0 before
   * room subscribers negotiated transport-cc and got a pacer, 4 since) */
  assert_true(nc.pli_unrepairable < 50);
  assert_true(h <= 6);
}

/* The weak-network bench's path in virtual time (issue 13): alice publishes
 * audio and VP8-framed video sized by her send-rate target, bob receives it
 * through the node into the SDK's video jitter buffer; random `loss` on all
 * four link directions, 25 ms each way. What bob's renderer sees: */
typedef struct {
  double fps, stall_pct;
  hd_time_t delay_p50, delay_p95;
  uint64_t plis, fec_sent, rtx_sent, target_bps, bytes_sent;
  int fec_group;
} vq_t;

static int cmp_time(const void *a, const void *b) {
  hd_time_t x = *(const hd_time_t *)a, y = *(const hd_time_t *)b;
  return x < y ? -1 : x > y;
}

static void room_video_quality(double loss, int fec, int secs, uint64_t seed, vq_t *q) {
  pw_t *w = pw_new();
  w->no_fec = !fec;
  w->adapt = 1;
  w->vp8 = 1;
  hd_netem_params_t np;
  hd_netem_params_init(&np);
  np.delay = HD_MS(25);
  np.loss = loss;
  for (int i = 0; i < 2; i++) {
    assert_int_equal(hd_netem_link_new(&w->nl[i][PW_NODE], &np, seed * 10 + 7200 + (uint64_t)i, w->now), 0);
    assert_int_equal(hd_netem_link_new(&w->nl[PW_NODE][i], &np, seed * 10 + 7300 + (uint64_t)i, w->now), 0);
  }
  pw_ep_t *bob = &w->ep[1];
  bob->vjb = calloc(1, sizeof *bob->vjb);
  assert_non_null(bob->vjb);
  assert_int_equal(hd_video_jb_init(bob->vjb, NULL), 0);
  pw_room_start(w, 0, secs);
  memset(q, 0, sizeof *q);
  hd_time_t span = bob->v_last_render - bob->v_first_render;
  q->fps = span > 0 ? (double)bob->v_rendered * 1e6 / (double)HD_SEC(secs) : 0;
  q->stall_pct = span > 0 ? 100.0 * bob->freeze.freeze_us / (double)span : 100;
  if (bob->v_delay_n) {
    qsort(bob->v_delay, bob->v_delay_n, sizeof bob->v_delay[0], cmp_time);
    q->delay_p50 = bob->v_delay[bob->v_delay_n / 2];
    q->delay_p95 = bob->v_delay[bob->v_delay_n * 95 / 100];
  }
  q->plis = bob->v_plis;
  hd_pc_stats_t s;
  hd_pc_stats(w->ep[0].pc, &s);
  q->fec_sent = s.tracks[1].fec_sent;
  q->rtx_sent = s.tracks[1].rtx_sent;
  q->fec_group = s.tracks[1].fec_group;
  q->bytes_sent = s.tracks[1].bytes_sent;
  q->target_bps = w->ep[0].app.last_remb;
  printf(
      "%4.0f%% loss all legs, FEC %-3s: %5.1f fps rendered, stall %5.2f%%, capture->render p50 %3lld ms p95 "
      "%3lld ms, PLIs %llu; alice: video %llu kbit/s, target %llu kbit/s, FEC %llu (group now %d), RTX "
      "%llu\n",
      loss * 100, fec ? "on" : "off", q->fps, q->stall_pct, (long long)(q->delay_p50 / 1000),
      (long long)(q->delay_p95 / 1000), (unsigned long long)q->plis,
      (unsigned long long)(q->bytes_sent * 8 / 1000 / (uint64_t)secs),
      (unsigned long long)(q->target_bps / 1000), (unsigned long long)q->fec_sent, q->fec_group,
      (unsigned long long)q->rtx_sent);
  pw_free(w);
}

/* The regression of issue 13 after FlexFEC landed (bench/weak_network, SDK
 * -> node -> SDK at 25 ms each way): FEC from 10% loss cost the publisher's
 * estimate its repair packets' share and its video half the frame rate at
 * 20% (mean of 4 seeds: 27.4 fps without FEC, 19.2 with), and at 5% an
 * unlucky loss report turned it on and delayed every later repair (p50 191
 * -> 212 ms). On this path NACK repairs in time: FEC stays off, and
 * allowing it costs nothing. */
static void test_room_video_weak(void **st) {
  const double losses[] = {0.05, 0.20};
  const int seeds = 4;
  for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
    double fps[2] = {0, 0}, d50[2] = {0, 0};
    uint64_t fec_sent = 0;
    for (int fec = 0; fec < 2; fec++)
      for (int k = 0; k < seeds; k++) {
        vq_t q;
        room_video_quality(losses[i], fec, 20, (uint64_t)k, &q);
        fps[fec] += q.fps / seeds;
        d50[fec] += (double)q.delay_p50 / 1000 / seeds;
        if (fec) fec_sent += q.fec_sent;
      }
    printf("%.0f%% loss, mean of %d seeds: FEC off %.1f fps, p50 %.0f ms; FEC allowed %.1f fps, p50 %.0f ms, "
           "%llu "
           "repair packets\n",
           losses[i] * 100, seeds, fps[0], d50[0], fps[1], d50[1], (unsigned long long)fec_sent);
    assert_true(fps[0] > 20);
    assert_true(fps[1] >= fps[0] - 0.5);
    assert_true(d50[1] <= d50[0] + 5);
  }
}

/* The SDK receiver's wait for FEC before NACKing (review of issue 13):
 * while repair packets come, a hole waits up to min(35 ms, rtt/2) for its
 * group's repair; once the sender stops FEC the wait ends within
 * HD_NACK_FEC_HOLD (it used to stay at 35 ms for good). */
static void test_fec_nack_hold_ends(void **st) {
  pw_t *w = pw_new();
  w->no_nack = 1;                                /* b's reports then show the loss before repair */
  pw_connect_direct(w, 0.20, HD_PC_SENDONLY, 0); /* 36% a -> b: a plans FEC (rtc/flexfec.h) */
  pw_ep_t *a = &w->ep[0], *b = &w->ep[1];
  a->sending = 1;
  pw_run_until(w, w->now + HD_SEC(15));
  pc_trx_t *bt = &b->pc->tr[0], *at = &a->pc->tr[0];
  assert_int_equal(bt->kind, HD_PC_VIDEO);
  hd_pc_stats_t s;
  hd_pc_stats(a->pc, &s);
  printf("a: FEC %llu sent, group %d, reported loss %.3f, rtt %lld\n",
         (unsigned long long)s.tracks[0].fec_sent, s.tracks[0].fec_group, s.tracks[0].fraction_lost,
         (long long)a->pc->rtt);
  hd_pc_stats(b->pc, &s);
  assert_true(s.tracks[0].fec_received > 0);
  hd_time_t hold = hd_nack_gen_first_wait(&bt->ng, w->now);
  hd_time_t rtt = bt->ng.rtt_samples ? bt->ng.rtt : b->pc->rtt;
  printf("FEC coming: a hole waits %lld ms (rtt %lld ms)\n", (long long)(hold / 1000),
         (long long)(rtt / 1000));
  assert_true(hold > HD_MS(5) && hold <= PC_FEC_NACK_WAIT && (rtt <= 0 || hold <= rtt / 2 + 1));
  /* the sender stops FEC */
  at->fec_pt = 0;
  pw_run_until(w, w->now + HD_MS(500)); /* what was in flight arrives */
  hd_pc_stats(b->pc, &s);
  uint64_t fec_before = s.tracks[0].fec_received;
  pw_run_until(w, w->now + HD_MS(1500));
  hd_pc_stats(b->pc, &s);
  assert_int_equal(s.tracks[0].fec_received, fec_before);
  assert_int_equal(bt->ng.reorder_wait, HD_MS(5));
  assert_int_equal(hd_nack_gen_first_wait(&bt->ng, w->now), HD_MS(5));
  pw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_flexfec_direct),
      cmocka_unit_test(test_flexfec_through_node),
      cmocka_unit_test(test_room_video_weak),
      cmocka_unit_test(test_fec_nack_hold_ends),
      cmocka_unit_test(test_video_half_loss_publisher_leg),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
