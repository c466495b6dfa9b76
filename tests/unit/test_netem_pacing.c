/* Pacing at the forwarding node (issue 11 item 5), end to end in virtual
 * time: one publisher whose keyframes are bursts of tens of packets, four
 * viewers behind `hudong netem` downlinks of 1, 1, 2.5 Mbit/s and unlimited,
 * each reporting its capacity as REMB (as a browser's estimate would). Run
 * once with the node's per-subscriber pacer and once without
 * (hd_session_set_pacer, HUDONG_PACER=0): on the 1 Mbit/s links the keyframe
 * no longer overflows the bottleneck queue, and its queueing delay is lower;
 * the unlimited viewer is not slowed down. Deterministic (fixed seeds). */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "base/log.h"
#include "netem/link.h"
#include "netem/profile.h"
#include "sfu/node.h"
#include "sfu/session.h"
#include "support/netem_world.h"
#include "support/node_world.h"
#include "support/rtc_client.h"

#define NV 4 /* viewers */
#define NP (NV + 1)

typedef struct {
  hd_netem_stats_t down[NP]; /* each viewer's downlink over the measured part */
  hd_rtc_video_quality_t q[NP];
  uint64_t keyframes;
  hd_session_counters_t m;
} pace_result_t;

/* The viewers' links and what they report as their estimate. */
static const char *const g_view_args[NV][8] = {
    {"--delay", "25", "--down-rate", "1000", "--down-queue", "100", "--seed", "2"},
    {"--delay", "25", "--down-rate", "1000", "--down-queue", "100", "--seed", "3"},
    {"--delay", "25", "--down-rate", "2500", "--down-queue", "100", "--seed", "4"},
    {"--delay", "25", "--seed", "5", NULL, NULL, NULL, NULL},
};
static const uint64_t g_view_bps[NV] = {1000000, 1000000, 2500000, 20000000};

static void keyframe_bursts(int pacer, pace_result_t *r) {
  hd_session_set_twcc(0); /* the estimate is each viewer's REMB, exactly its capacity */
  hd_session_set_pacer(pacer, 150);
  memset(r, 0, sizeof *r);
  netem_world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  netem_world_init(w);
  static const char *const pub_args[] = {"--delay", "25", "--seed", "1"};
  hd_netem_opts_t o;
  netem_opts_from(&o, pub_args, 4);
  /* ~500 kbit/s of video (2 x 1000-byte packets, 30 fps) and keyframes of 18 packets (~19 kB) */
  hd_rtc_client_config_t pub = {.video_payload = 1000, .video_pkts_per_frame = 2, .key_factor = 9};
  netem_world_join(w, 0, HD_SESSION_PUBLISH, &o, &pub);
  hd_rtc_client_config_t view = {.auto_nack = 1, .nack_interval = HD_MS(60)};
  for (int v = 0; v < NV; v++) {
    netem_opts_from(&o, g_view_args[v], g_view_args[v][4] ? 8 : 4);
    netem_world_join(w, 1 + v, HD_SESSION_PLAY, &o, &view);
  }
  assert_true(netem_world_connect(w, NP));
  hd_netem_stats_t d0[NP];
  /* 20 s: every viewer reports its capacity every 250 ms (as REMB), the
   * widest one asks for a keyframe every 2 s */
  for (int tick = 0; tick < 80; tick++) {
    for (int v = 0; v < NV; v++)
      hd_rtc_client_send_remb(w->p[1 + v].c, g_view_bps[v]);
    if (tick % 8 == 4) hd_rtc_client_send_pli(w->p[NV].c);
    if (tick == 8) /* measured from 2 s on: the estimates are in */
      for (int v = 1; v < NP; v++)
        hd_netem_link_stats(w->p[v].link[HD_NETEM_DOWN], &d0[v]);
    netem_world_run_until(w, w->now + HD_MS(250));
  }
  hd_rtc_client_set_sending(w->p[0].c, 0);
  netem_world_run_until(w, w->now + HD_SEC(2));
  for (int v = 1; v < NP; v++) {
    hd_netem_link_stats(w->p[v].link[HD_NETEM_DOWN], &r->down[v]);
    r->down[v].drop_queue -= d0[v].drop_queue;
    r->down[v].pkts_in -= d0[v].pkts_in;
    assert_int_equal(hd_rtc_client_video_quality(w->p[v].c, HD_MS(200), &r->q[v]), 0);
    assert_int_equal(hd_rtc_client_rx(w->p[v].c, HD_RTC_VIDEO)->rtx_bad, 0);
  }
  r->keyframes = hd_rtc_client_rx(w->p[NV].c, HD_RTC_VIDEO)->keyframes;
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  r->m = nm.stats.media;
  netem_world_free(w);
  free(w);
  hd_session_set_pacer(1, 150);
  hd_session_set_twcc(1);
}

static void print_result(const char *what, const pace_result_t *r) {
  for (int v = 1; v < NP; v++)
    print_message("%s viewer %d (%s kbit/s): queue drops %llu of %llu, queue delay p95 %lld ms max %lld ms; "
                  "frames %llu/%llu decoded, delay p95 %lld ms, stall %.2f%%\n",
                  what, v, g_view_args[v - 1][2][2] == 'd' ? g_view_args[v - 1][3] : "unlimited",
                  (unsigned long long)r->down[v].drop_queue, (unsigned long long)r->down[v].pkts_in,
                  (long long)(r->down[v].qdelay_p95 / 1000), (long long)(r->down[v].qdelay_max / 1000),
                  (unsigned long long)r->q[v].decoded, (unsigned long long)r->q[v].frames,
                  (long long)(r->q[v].delay_p95 / 1000), r->q[v].stall_rate * 100);
  print_message(
      "%s node: %llu packets waited in a pacer, %llu dropped by one, %llu retransmitted, %llu keyframes "
      "seen by the unlimited viewer\n",
      what, (unsigned long long)r->m.paced, (unsigned long long)r->m.pacer_dropped,
      (unsigned long long)r->m.retransmitted, (unsigned long long)r->keyframes);
}

static void test_keyframe_bursts_paced(void **st) {
  (void)st;
  pace_result_t *off = calloc(1, sizeof *off), *on = calloc(1, sizeof *on);
  assert_non_null(off);
  assert_non_null(on);
  keyframe_bursts(0, off);
  print_result("pacer off:", off);
  keyframe_bursts(1, on);
  print_result("pacer on: ", on);
  assert_true(off->keyframes >= 8 && on->keyframes >= 8);
  assert_int_equal(off->m.paced, 0);
  assert_true(on->m.paced > 0);
  for (int v = 1; v <= 2; v++) { /* the 1 Mbit/s viewers */
    /* without pacing each keyframe overflows the 100 ms bottleneck queue */
    assert_true(off->down[v].drop_queue > 50);
    assert_true(on->down[v].drop_queue * 10 <= off->down[v].drop_queue);
    assert_true(on->down[v].qdelay_p95 < off->down[v].qdelay_p95);
    assert_true(on->q[v].stall_rate <= off->q[v].stall_rate);
  }
  /* the unlimited viewer pays at most a few ms for it */
  assert_true(on->q[NV].delay_p95 <= off->q[NV].delay_p95 + HD_MS(10));
  assert_int_equal(on->down[NV].drop_queue, 0);
  /* the same seeds give the same run */
  pace_result_t *again = calloc(1, sizeof *again);
  assert_non_null(again);
  keyframe_bursts(1, again);
  assert_int_equal(again->down[1].drop_queue, on->down[1].drop_queue);
  assert_int_equal(again->m.paced, on->m.paced);
  free(again);
  free(off);
  free(on);
}

/* A packet that waited in the pacer gets its transport-wide seq when it
 * leaves: on an in-order path the viewer sees every seq follow the previous
 * one, audio (which never waits) interleaved with paced video included. A seq
 * stamped when the packet was forwarded would come out of order and make the
 * subscriber's feedback describe the wrong packets. */
static void test_transport_seq_in_send_order(void **st) {
  (void)st;
  hd_session_set_pacer(1, 150);
  netem_world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  netem_world_init(w);
  static const char *const args[] = {"--delay", "25", "--seed", "7"};
  hd_netem_opts_t o;
  netem_opts_from(&o, args, 4);
  hd_rtc_client_config_t pub = {.video_payload = 1000, .video_pkts_per_frame = 2, .key_factor = 9};
  hd_rtc_client_config_t view = {.auto_nack = 1, .nack_interval = HD_MS(60)};
  netem_world_join(w, 0, HD_SESSION_PUBLISH, &o, &pub);
  netem_world_join(w, 1, HD_SESSION_PLAY, &o, &view);
  netem_world_connect(w, 2);
  assert_true(hd_rtc_client_connected(w->p[1].c));
  for (int tick = 0; tick < 40; tick++) {
    hd_rtc_client_send_remb(w->p[1].c, 1000000);
    if (tick % 8 == 4) hd_rtc_client_send_pli(w->p[1].c);
    netem_world_run_until(w, w->now + HD_MS(250));
  }
  const hd_rtc_client_stats_t *vs = hd_rtc_client_stats(w->p[1].c);
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  print_message(
      "transport-wide seqs: %llu received, %llu not following the previous one; %llu packets waited in "
      "the pacer\n",
      (unsigned long long)vs->tw_rx, (unsigned long long)vs->tw_not_next,
      (unsigned long long)nm.stats.media.paced);
  assert_true(nm.stats.media.paced > 100);
  assert_true(vs->tw_rx > 1000);
  assert_int_equal(vs->tw_not_next, 0);
  netem_world_free(w);
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keyframe_bursts_paced),
      cmocka_unit_test(test_transport_seq_in_send_order),
  };
  return cmocka_run_group_tests(tests, node_world_setup_all, node_world_teardown_all);
}
