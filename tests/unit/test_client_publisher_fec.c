/* FlexFEC from an SDK publisher to the node across renegotiations (issue 13
 * item 4, the publisher -> node direction), in virtual time: the SDK
 * publisher pc (client/pc.h, FlexFEC on, src/client/pc_fec.h) sends one
 * stream of synthetic VP8 and audio over a `hudong netem` uplink that loses
 * 15% with 100 ms each way (a round trip for which FEC pays from 2% loss,
 * rtc/flexfec.h hd_flexfec_plan), to an in-process node that rebuilds from
 * its repair packets (sfu/fec_in.h). The publisher renegotiates: FlexFEC
 * left out of its offer, taken up by a re-offer, declined by an answer,
 * taken again, left out again, and the camera unpublished and published
 * again as the SDK client does it (a new transceiver). What goes on the
 * uplink is watched per repair SSRC (support/client_world.h pub_fec_out),
 * what the node does from its publisher session and counters. The other
 * direction (node -> SDK viewer) is test_client_viewer_fec. */
#include "hd_test.h"

#include <stdlib.h>

#include "client/pc_internal.h" /* a kept section's repair SSRC changed (test_node_follows_repair_ssrc) */
#include "client/pc_fec.h"      /* the encoder's open group (test_publisher_fec_plan_while_declined) */
#include "rtc/nack_gen.h"
#include "sfu/fec_in.h"
#include "sfu/session.h"
#include "support/client_world.h"

static const char *const UP[] = {"--delay", "100", "--loss", "15"};
static const char *const PDOWN[] = {"--delay", "100"};

static cw_t *pub_world_paced(uint64_t seed, int fec_later, int paced) {
  cw_cfg_t rc = {.up = UP,
                 .nup = 4,
                 .pdown = PDOWN,
                 .npdown = 2,
                 .pub_fec = 1,
                 .pub_fec_later = fec_later,
                 .adapt = paced, /* paced: repair packets wait in the pc's pacer queue like media */
                 .adapt_max = 1100000,
                 .n_layers = 1,
                 .untagged = 1,
                 .seed = seed};
  return cw_new(&rc);
}

static cw_t *pub_world(uint64_t seed, int fec_later) { return pub_world_paced(seed, fec_later, 1); }

/* The node's publisher track for the publisher's current camera section. */
static hd_in_track_t *node_cam(cw_t *w) {
  hd_session_t *s = w->part[0] ? w->part[0]->pub_sess : NULL;
  int i = s ? hd_session_track_by_mid(s, hd_pc_track_mid(w->ep[0].pc, w->ep[0].vtrack)) : -1;
  return i >= 0 ? &s->in[i] : NULL;
}

/* The repair SSRC the publisher's last offer names for its camera's media
 * SSRC (a=ssrc-group:FEC-FR media repair, RFC 8627 §5.1.3), 0 if none. */
static uint32_t offered_fec_ssrc(cw_t *w) {
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(w->ep[0].pc, ps);
  uint32_t media = ps->tracks[w->ep[0].vtrack].send_ssrc;
  free(ps);
  char key[64];
  snprintf(key, sizeof key, "a=ssrc-group:FEC-FR %u ", media);
  const char *g = strstr(w->pub_offer, key);
  return g ? (uint32_t)strtoul(g + strlen(key), NULL, 10) : 0;
}

static hd_pc_track_stats_t cam_stats(cw_t *w) {
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(w->ep[0].pc, ps);
  hd_pc_track_stats_t t = ps->tracks[w->ep[0].vtrack];
  free(ps);
  return t;
}

static int has_fec(const char *sdp) { return strstr(sdp, "a=rtpmap:118 flexfec/90000") != NULL; }

/* Packets put on the uplink, over all repair SSRCs, that did not go past
 * their SSRC's highest seq (an SRTP index sent again). */
static uint64_t seqs_not_ahead(const cw_t *w) {
  uint64_t n = 0;
  for (int k = 0; k < w->n_pub_fec_out; k++)
    n += w->pub_fec_out[k].not_ahead;
  return n;
}

typedef struct {
  uint64_t sent, delivered, node_received, node_recovered;
} snap_t;

/* Repair packets on fec_ssrc put on the uplink and delivered to the node,
 * and the node's counters (repair packets taken, media packets rebuilt). */
static snap_t snap(cw_t *w, uint32_t fec_ssrc) {
  const hd_node_stats_t *ns = hd_node_stats(w->node);
  snap_t s = {cw_pub_fec_out(w, fec_ssrc), cw_pub_fec_delivered(w, fec_ssrc), ns->media.fec_received,
              ns->media.fec_recovered};
  return s;
}

static void print_step(const char *what, const snap_t *a, const snap_t *b, uint32_t fec_ssrc) {
  printf("%s: publisher sent %llu repair packets on %08x, %llu reached the node, which took %llu and rebuilt "
         "%llu media packets\n",
         what, (unsigned long long)(b->sent - a->sent), fec_ssrc,
         (unsigned long long)(b->delivered - a->delivered),
         (unsigned long long)(b->node_received - a->node_received),
         (unsigned long long)(b->node_recovered - a->node_recovered));
}

/* Every repair packet that reached the node between a and b was taken (none
 * dropped as a replayed SRTP index, RFC 3711 §3.3.2, nor as of an unknown
 * stream); b - a counts one repair stream. */
static void assert_all_taken(const snap_t *a, const snap_t *b) {
  assert_true(b->delivered > a->delivered);
  assert_int_equal(b->node_received - a->node_received, b->delivered - a->delivered);
}

/* FlexFEC repair packets waiting in pc's pacer queue (pc_internal.h). */
static int queued_repair(const hd_pc_t *pc) {
  int n = 0;
  for (size_t i = 0; i < pc->pq_count; i++) {
    const pc_dgram_t *d = &pc->pq[(pc->pq_head + i) % pc->q_cap];
    n += d->len > 12 && (d->data[0] & 0xc0) == 0x80 && (d->data[1] & 0x7f) == HD_PC_PT_FLEXFEC;
  }
  return n;
}

/* The steps (each after a renegotiation the node answered): */
static void test_publisher_fec_renegotiated(void **st) {
  (void)st;
  cw_t *w = pub_world(11, 1);
  hd_pc_t *pc = w->ep[0].pc;

  /* 1. the first offer leaves FlexFEC out: the node's answer has none,
   * nothing is sent or rebuilt */
  assert_false(has_fec(w->pub_offer));
  assert_false(has_fec(w->pub_answer));
  assert_non_null(node_cam(w));
  assert_int_equal(node_cam(w)->fec_pt, 0);
  cw_run_until(w, w->now + HD_SEC(6));
  assert_int_equal(w->n_pub_fec_out, 0);
  assert_int_equal(hd_node_stats(w->node)->media.fec_received, 0);

  /* 2. a re-offer with FlexFEC on the kept camera section: the node's answer
   * takes it and so must its publisher track (before, a kept track had
   * FlexFEC as the first offer said: the repair packets were dropped as of
   * an unknown stream, and the publisher paid 1/(g+1) of its video rate
   * for nothing) */
  cw_publish(w, "cam");
  uint32_t fec = offered_fec_ssrc(w);
  assert_true(fec != 0);
  assert_true(has_fec(w->pub_answer));
  assert_int_equal(node_cam(w)->fec_pt, HD_PC_PT_FLEXFEC);
  assert_int_equal(node_cam(w)->fec_ssrc, fec);
  snap_t s0 = snap(w, fec);
  cw_run_until(w, w->now + HD_SEC(12));
  snap_t s1 = snap(w, fec);
  print_step("FlexFEC taken up by a re-offer", &s0, &s1, fec);
  assert_true(s1.sent > 0);
  assert_all_taken(&s0, &s1);
  assert_true(s1.node_recovered > s0.node_recovered);

  /* 3. an answer that declines FlexFEC (RFC 3264 §6.1: it may take fewer
   * formats): the pc stops its repair packets, also those waiting in its
   * pacer, and the node's NACKs stop waiting for FEC within
   * HD_NACK_FEC_HOLD */
  int waits = 0;
  while (!queued_repair(pc) && waits++ < 2000) /* the answer comes while one waits */
    cw_run_until(w, w->now + HD_MS(1));
  int queued = queued_repair(pc);
  printf("%d repair packets wait in the publisher's pacer when the answer comes\n", queued);
  assert_true(queued > 0);
  w->pub_answer_drop_fec = 1;
  cw_publish(w, "cam");
  w->pub_answer_drop_fec = 0;
  assert_false(has_fec(w->pub_answer));
  assert_int_equal(pc->tr[w->ep[0].vtrack].fec_pt, 0);
  assert_int_equal(cam_stats(w).fec_group, 0);
  snap_t s2 = snap(w, fec);
  cw_run_until(w, w->now); /* what may leave now leaves */
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(pc, ps);
  assert_int_equal(ps->drop_unnegotiated, queued); /* the waiting repair packets, dropped unsent */
  free(ps);
  cw_run_until(w, w->now + HD_SEC(8));
  snap_t s3 = snap(w, fec);
  print_step("an answer without FlexFEC", &s2, &s3, fec);
  assert_int_equal(s3.sent, s2.sent);
  assert_int_equal(hd_nack_gen_first_wait(&node_cam(w)->nack, w->now), node_cam(w)->nack.reorder_wait);
  assert_true(node_cam(w)->nack.reorder_wait < HD_FEC_IN_NACK_WAIT);

  /* 4. the next answer takes it again: repair packets again on the same
   * SSRC, its seq going on (an index sent again would be dropped by the
   * node's SRTP replay check, RFC 3711 §3.3.2), and the node rebuilds */
  cw_publish(w, "cam");
  assert_true(has_fec(w->pub_answer));
  assert_int_equal(offered_fec_ssrc(w), fec);
  snap_t s4 = snap(w, fec);
  cw_run_until(w, w->now + HD_SEC(12));
  snap_t s5 = snap(w, fec);
  print_step("an answer with FlexFEC again", &s4, &s5, fec);
  assert_true(s5.sent > s4.sent);
  assert_int_equal(seqs_not_ahead(w), 0);
  assert_all_taken(&s4, &s5);
  assert_true(s5.node_recovered > s4.node_recovered);

  /* 5. a re-offer that leaves FlexFEC out: the node's answer has none and
   * its publisher track drops it (before, it kept the first answer's) */
  w->pub_offer_drop_fec = 1;
  cw_publish(w, "cam");
  w->pub_offer_drop_fec = 0;
  assert_false(has_fec(w->pub_offer));
  assert_false(has_fec(w->pub_answer));
  assert_int_equal(node_cam(w)->fec_pt, 0);
  assert_null(node_cam(w)->fec);
  snap_t s6 = snap(w, fec);
  cw_run_until(w, w->now + HD_SEC(6));
  snap_t s7 = snap(w, fec);
  print_step("a re-offer without FlexFEC", &s6, &s7, fec);
  assert_int_equal(s7.sent, s6.sent);

  /* 6. the camera unpublished and published again as the SDK client does
   * (client.c: the old transceiver stops sending and stays; a new one, with
   * a new mid, SSRCs and repair SSRC): the node learns the new repair SSRC
   * from the new section and rebuilds from it; the old one stays silent */
  cw_unpublish_camera(w);
  cw_run_until(w, w->now + HD_SEC(2));
  snap_t s8 = snap(w, fec);
  int old_track = w->ep[0].vtrack;
  cw_republish_camera(w, "cam2");
  assert_true(w->ep[0].vtrack != old_track);
  uint32_t fec2 = offered_fec_ssrc(w);
  assert_true(fec2 != 0 && fec2 != fec);
  assert_int_equal(node_cam(w)->fec_pt, HD_PC_PT_FLEXFEC);
  assert_int_equal(node_cam(w)->fec_ssrc, fec2);
  snap_t s9 = snap(w, fec2);
  cw_run_until(w, w->now + HD_SEC(12));
  snap_t s10 = snap(w, fec2);
  print_step("the camera published again", &s9, &s10, fec2);
  assert_int_equal(cw_pub_fec_out(w, fec), s8.sent); /* nothing more on the old repair SSRC */
  assert_true(s10.sent > 0);
  assert_all_taken(&s9, &s10);
  assert_true(s10.node_recovered > s9.node_recovered);
  assert_int_equal(seqs_not_ahead(w), 0);
  cw_free(w);
}

/* A re-offer naming another repair SSRC for a kept section (RFC 8627
 * §5.1.3 FEC-FR; the SDK keeps its own for a transceiver's life, another
 * publisher may not): the node takes the new one and rebuilds from it, and
 * nothing from the old one is taken for it. Before, the node kept the first
 * offer's repair SSRC and dropped the new stream. */
static void test_node_follows_repair_ssrc(void **st) {
  (void)st;
  cw_t *w = pub_world(12, 0);
  uint32_t fec = offered_fec_ssrc(w);
  assert_true(fec != 0);
  assert_int_equal(node_cam(w)->fec_ssrc, fec);
  cw_run_until(w, w->now + HD_SEC(10));
  snap_t s0 = snap(w, fec);
  assert_true(s0.sent > 0 && s0.node_recovered > 0);
  w->ep[0].pc->tr[w->ep[0].vtrack].fec_ssrc = fec ^ 0x10000; /* the stream goes on under a new SSRC */
  cw_publish(w, "cam");
  uint32_t fec2 = offered_fec_ssrc(w);
  assert_int_equal(fec2, fec ^ 0x10000);
  assert_int_equal(node_cam(w)->fec_ssrc, fec2);
  snap_t s1 = snap(w, fec2);
  cw_run_until(w, w->now + HD_SEC(10));
  snap_t s2 = snap(w, fec2);
  print_step("a new repair SSRC for the kept camera", &s1, &s2, fec2);
  assert_true(s2.sent > 0);
  assert_all_taken(&s1, &s2);
  assert_true(s2.node_recovered > s1.node_recovered);
  cw_free(w);
}

/* A re-offer that leaves FlexFEC out after a first one that had it: the
 * node's publisher track drops it with its receiver, and what repair packets
 * of the old stream still arrive are not taken (before, the track kept the
 * first offer's FlexFEC). Step 5 of test_publisher_fec_renegotiated on its
 * own. */
static void test_node_drops_fec_on_reoffer(void **st) {
  (void)st;
  cw_t *w = pub_world(13, 0);
  uint32_t fec = offered_fec_ssrc(w);
  cw_run_until(w, w->now + HD_SEC(8));
  assert_non_null(node_cam(w)->fec);
  /* the node's NACKs wait for the repair packets (rtc/nack_gen.h) */
  hd_time_t at = w->now;
  assert_int_equal(hd_nack_gen_first_wait(&node_cam(w)->nack, w->now), node_cam(w)->nack.fec_wait);
  assert_true(node_cam(w)->nack.fec_wait > node_cam(w)->nack.reorder_wait);
  w->pub_offer_drop_fec = 1;
  cw_publish(w, "cam");
  w->pub_offer_drop_fec = 0;
  assert_false(has_fec(w->pub_answer));
  assert_int_equal(node_cam(w)->fec_pt, 0);
  assert_int_equal(node_cam(w)->fec_ssrc, 0);
  assert_null(node_cam(w)->fec);
  /* ... and stop waiting with the answer, not HD_NACK_FEC_HOLD after the
   * last repair packet (before, a new gap waited fec_wait for up to 1 s) */
  print_message("the re-offer took %lld us; NACK hold after it: %lld us\n", (long long)(w->now - at),
                (long long)hd_nack_gen_first_wait(&node_cam(w)->nack, w->now));
  assert_true(w->now - at < HD_NACK_FEC_HOLD);
  assert_int_equal(hd_nack_gen_first_wait(&node_cam(w)->nack, w->now), node_cam(w)->nack.reorder_wait);
  snap_t s0 = snap(w, fec);
  cw_run_until(w, w->now + HD_SEC(4));
  snap_t s1 = snap(w, fec);
  print_step("a re-offer without FlexFEC after one with it", &s0, &s1, fec);
  assert_int_equal(s1.sent, s0.sent);
  assert_int_equal(s1.node_received, s0.node_received);
  cw_free(w);
}

/* While an answer has declined FlexFEC the plan keeps following the node's
 * reports, so the answer that takes it again starts from the loss as it is
 * then: FEC on at 15% loss, declined, the uplink clean for 6 s, taken again:
 * no repair packet on the clean link. Before, the reports were not read
 * while it was declined, and the plan came back at the stale 15%: one repair
 * packet per 3 media packets on a clean link until reports wore it down. */
static void test_publisher_fec_plan_while_declined(void **st) {
  (void)st;
  cw_t *w = pub_world(14, 0);
  uint32_t fec = offered_fec_ssrc(w);
  cw_run_until(w, w->now + HD_SEC(10));
  assert_true(cam_stats(w).fec_group >= 2);
  /* the declining answer comes while the encoder has a group open: it drops
   * it (before, the group stayed open through the decline while the media
   * seq went on, and once that was half the seq space the packets after
   * FEC was taken again read as late: no repair packets for up to 32,768
   * packets, rtc/flexfec_send.c) */
  const pc_fec_t *enc = w->ep[0].pc->tr[w->ep[0].vtrack].fec;
  assert_non_null(enc);
  for (int waits = 0; enc->send.n == 0 && waits < 2000; waits++)
    cw_run_until(w, w->now + HD_MS(1));
  assert_true(enc->send.n > 0);
  w->pub_answer_drop_fec = 1;
  cw_publish(w, "cam");
  w->pub_answer_drop_fec = 0;
  assert_int_equal(w->ep[0].pc->tr[w->ep[0].vtrack].fec_pt, 0);
  assert_int_equal(enc->send.n, 0);
  hd_netem_params_t clean;
  hd_netem_params_init(&clean);
  clean.delay = HD_MS(100);
  assert_int_equal(hd_netem_link_set(w->nl[0][CW_NODE], &clean, w->now), 0);
  cw_run_until(w, w->now + HD_SEC(6));
  cw_publish(w, "cam");
  assert_true(has_fec(w->pub_answer));
  int group = cam_stats(w).fec_group;
  snap_t s0 = snap(w, fec);
  cw_run_until(w, w->now + HD_SEC(3));
  snap_t s1 = snap(w, fec);
  printf(
      "FlexFEC taken again after 6 s of a clean uplink: group %d (reported loss %.3f), %llu repair packets "
      "in the next 3 s\n",
      group, cam_stats(w).fraction_lost, (unsigned long long)(s1.sent - s0.sent));
  assert_int_equal(group, 0);
  assert_int_equal(s1.sent, s0.sent);
  cw_free(w);
}

/* Repair packets waiting in the publisher's unpaced queue (pacing off:
 * they go in send order, client/pc.c enqueue) when an answer declines
 * FlexFEC: dropped unsent, as those in the pacer queue are (RFC 3264 §6.1).
 * Before, only the pacer queue was filtered. */
static struct {
  uint32_t fec;
  int repair;       /* repair packets in the unpaced queue as the answer comes */
  uint64_t dropped; /* the pc's drop_unnegotiated then */
  snap_t at;
} g_unpaced;

static void fill_unpaced_repair(cw_t *w) {
  hd_pc_t *pc = w->ep[0].pc;
  uint8_t pl[1000];
  memset(pl, 0x5A, sizeof pl);
  int n = 0;
  for (int k = 0; k < 2 * HD_FLEXFEC_MAX_GROUP && !n; k++) {
    hd_pc_rtp_send_t p = {.track = w->ep[0].vtrack,
                          .ts = 90000u * 100 + (uint32_t)k * 3000,
                          .marker = 1,
                          .payload = pl,
                          .len = 900,
                          .audio_level = -1};
    assert_int_equal(hd_pc_send_rtp(pc, &p, w->now), 0);
    for (size_t j = 0; j < pc->q_count; j++) {
      const pc_dgram_t *d = &pc->q[(pc->q_head + j) % pc->q_cap];
      n += d->len > 12 && (d->data[0] & 0xc0) == 0x80 && (d->data[1] & 0x7f) == HD_PC_PT_FLEXFEC;
    }
  }
  g_unpaced.repair = n;
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(pc, ps);
  g_unpaced.dropped = ps->drop_unnegotiated;
  assert_int_equal(ps->pacing_bps, 0);
  free(ps);
  g_unpaced.at = snap(w, g_unpaced.fec);
}

static void test_unpaced_repair_dropped_on_decline(void **st) {
  (void)st;
  cw_t *w = pub_world_paced(16, 0, 0);
  g_unpaced.fec = offered_fec_ssrc(w);
  cw_run_until(w, w->now + HD_SEC(10));
  assert_true(cam_stats(w).fec_group >= 2);
  w->pub_before_answer = fill_unpaced_repair;
  w->pub_answer_drop_fec = 1;
  cw_publish(w, "cam");
  w->pub_answer_drop_fec = 0;
  w->pub_before_answer = NULL;
  print_message("%d repair packets wait in the unpaced queue when the answer comes\n", g_unpaced.repair);
  assert_true(g_unpaced.repair > 0);
  cw_run_until(w, w->now + HD_SEC(2));
  snap_t s1 = snap(w, g_unpaced.fec);
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(w->ep[0].pc, ps);
  assert_int_equal(s1.sent, g_unpaced.at.sent);
  assert_int_equal(ps->drop_unnegotiated - g_unpaced.dropped, (uint64_t)g_unpaced.repair);
  free(ps);
  cw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_publisher_fec_renegotiated),
      cmocka_unit_test(test_node_follows_repair_ssrc),
      cmocka_unit_test(test_node_drops_fec_on_reoffer),
      cmocka_unit_test(test_publisher_fec_plan_while_declined),
      cmocka_unit_test(test_unpaced_repair_dropped_on_decline),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
