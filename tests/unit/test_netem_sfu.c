/* The forwarding node behind the netem link model (src/netem) on a virtual
 * clock: the in-process use of issue 4 (DESIGN §3 rule 2). A publisher and a
 * viewer (tests/support/rtc_client.h) reach the node through a pair of
 * hd_netem_link_t each, configured with the same options `hudong netem`
 * takes on its command line (src/netem/profile.h), so a result here reads as
 * "with `hudong netem --delay 50 --up-burst-loss 5,20,100,0`, X happens" and
 * is reproducible bit for bit (fixed seeds). */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "base/log.h"
#include "netem/link.h"
#include "netem/profile.h"
#include "sfu/node.h"
#include "support/netem_world.h"
#include "support/node_world.h"
#include "support/rtc_client.h"

typedef struct {
  uint64_t up_lost, span, unique, nack_seqs, rtx_sent;
  hd_time_t connect_time;
} result_t;

/* Publisher and viewer connect over `clean`, then the publisher's path turns
 * into `bad` for 20 s of media; returns what the viewer got. */
static void scenario(const hd_netem_opts_t *clean, const hd_netem_opts_t *bad, result_t *r) {
  netem_world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  netem_world_init(w);
  hd_time_t t0 = w->now;
  netem_world_join(w, 0, HD_SESSION_PUBLISH, clean, NULL);
  netem_world_join(w, 1, HD_SESSION_PLAY, clean, NULL);
  netem_world_connect(w, 2);
  assert_true(hd_rtc_client_connected(w->p[0].c));
  assert_true(hd_rtc_client_connected(w->p[1].c));
  r->connect_time = w->now - t0;
  netem_world_run_until(w, w->now + HD_SEC(1));
  netem_world_set_links(w, 0, bad);
  hd_netem_stats_t s0;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &s0);
  netem_world_run_until(w, w->now + HD_SEC(20));
  netem_world_set_links(w, 0, clean); /* the last repairs get through */
  hd_rtc_client_set_sending(w->p[0].c, 0);
  netem_world_run_until(w, w->now + HD_SEC(2));
  hd_netem_stats_t s1;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &s1);
  const hd_rtc_stream_stats_t *v = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO);
  const hd_rtc_client_stats_t *ps = hd_rtc_client_stats(w->p[0].c);
  r->up_lost = s1.drop_loss - s0.drop_loss;
  r->span = (uint64_t)(v->max_ext - v->first_ext + 1);
  r->unique = v->unique;
  r->nack_seqs = ps->nack_seqs_rx;
  r->rtx_sent = ps->rtx_sent;
  assert_int_equal(v->rtx_bad, 0);
  assert_int_equal(v->wrong_pt, 0);
  assert_true(hd_rtc_client_connected(w->p[1].c));
  netem_world_free(w);
  free(w);
}

/* "At 20% Gilbert-Elliott loss and 100 ms RTT": the publisher's uplink loses
 * 20% in bursts of 5 packets on average (P 5%, R 20%, K 100%, H 0%), 50 ms
 * each way. The node NACKs the publisher, which answers with RTX; the viewer
 * behind a clean 50 ms path must see almost every video packet (measured:
 * all of them, with 20% bursty loss one way and both ways). */
static void test_ge_uplink_repaired(void **st) {
  (void)st;
  static const char *const clean_args[] = {"--delay", "50", "--seed", "1"};
  static const char *const bad_args[] = {"--delay", "50", "--up-burst-loss", "5,20,100,0", "--seed", "1"};
  hd_netem_opts_t clean, bad;
  netem_opts_from(&clean, clean_args, 4);
  netem_opts_from(&bad, bad_args, 6);
  assert_true(bad.dir[HD_NETEM_UP].ge.enabled);
  assert_false(bad.dir[HD_NETEM_DOWN].ge.enabled);
  result_t a, b;
  scenario(&clean, &bad, &a);
  print_message("GE 20%% uplink, 100 ms RTT: connected in %lld ms; %llu lost on the link, %llu seqs NACKed, "
                "%llu RTX; viewer got %llu of %llu video seqs (%.2f%%)\n",
                (long long)(a.connect_time / 1000), (unsigned long long)a.up_lost,
                (unsigned long long)a.nack_seqs, (unsigned long long)a.rtx_sent, (unsigned long long)a.unique,
                (unsigned long long)a.span, 100.0 * (double)a.unique / (double)a.span);
  /* ~20% of 20 s of media (~90 video + 50 audio packets/s) */
  assert_true(a.up_lost > 300);
  assert_true(a.nack_seqs > 0 && a.rtx_sent > 0);
  assert_true(a.unique * 100 >= a.span * 99);
  /* the same seeds give the same run */
  scenario(&clean, &bad, &b);
  assert_int_equal(a.up_lost, b.up_lost);
  assert_int_equal(a.unique, b.unique);
  assert_int_equal(a.rtx_sent, b.rtx_sent);

  /* both ways on the publisher's path: NACKs and their RTX are lost too */
  static const char *const both_args[] = {"--delay", "50", "--burst-loss", "5,20,100,0", "--seed", "1"};
  netem_opts_from(&bad, both_args, 6);
  scenario(&clean, &bad, &b);
  print_message("GE 20%% both ways: %llu lost upstream, %llu seqs NACKed, %llu RTX; viewer got %llu of %llu "
                "(%.2f%%)\n",
                (unsigned long long)b.up_lost, (unsigned long long)b.nack_seqs,
                (unsigned long long)b.rtx_sent, (unsigned long long)b.unique, (unsigned long long)b.span,
                100.0 * (double)b.unique / (double)b.span);
  assert_true(b.unique * 100 >= b.span * 99);
}

/* ---- repair across two lossy legs (issue 11 item 0) ---- */

typedef struct {
  hd_rtc_video_quality_t q;
  uint64_t lost_up, lost_down; /* video+audio+RTCP datagrams lost on the publisher's / viewer's leg */
  hd_session_counters_t m;
} two_legs_t;

/* Publisher and viewer connect over a clean 25 ms leg each, then the
 * publisher's leg turns into `pub_bad` and the viewer's into `view_bad` for
 * `secs` of media. The viewer NACKs like a browser does: at once on a gap,
 * again every `viewer_nack_iv`. */
static void two_legs(const hd_netem_opts_t *pub_bad, const hd_netem_opts_t *view_bad, int secs,
                     hd_time_t viewer_nack_iv, hd_time_t playout, two_legs_t *r) {
  static const char *const clean_args[] = {"--delay", "25", "--seed", "1"};
  hd_netem_opts_t clean;
  netem_opts_from(&clean, clean_args, 4);
  netem_world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  netem_world_init(w);
  hd_rtc_client_config_t pub = {.video_payload = 1000, .video_pkts_per_frame = 4};
  hd_rtc_client_config_t view = {.auto_nack = 1, .nack_interval = viewer_nack_iv, .nack_max_tries = 10};
  netem_world_join(w, 0, HD_SESSION_PUBLISH, &clean, &pub);
  netem_world_join(w, 1, HD_SESSION_PLAY, &clean, &view);
  netem_world_connect(w, 2);
  assert_true(hd_rtc_client_connected(w->p[0].c) && hd_rtc_client_connected(w->p[1].c));
  netem_world_run_until(w, w->now + HD_SEC(2)); /* RTCP exchanged on both legs: RTTs known */
  netem_world_set_links(w, 0, pub_bad);
  netem_world_set_links(w, 1, view_bad);
  hd_netem_stats_t u0, d0, u1, d1;
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &u0);
  hd_netem_link_stats(w->p[1].link[HD_NETEM_DOWN], &d0);
  netem_world_run_until(w, w->now + HD_SEC(secs));
  hd_rtc_client_set_sending(w->p[0].c, 0);
  netem_world_run_until(w, w->now + HD_SEC(2));
  hd_netem_link_stats(w->p[0].link[HD_NETEM_UP], &u1);
  hd_netem_link_stats(w->p[1].link[HD_NETEM_DOWN], &d1);
  r->lost_up = u1.drop_loss - u0.drop_loss;
  r->lost_down = d1.drop_loss - d0.drop_loss;
  assert_int_equal(hd_rtc_client_video_quality(w->p[1].c, playout, &r->q), 0);
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  r->m = nm.stats.media;
  assert_int_equal(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->rtx_bad, 0);
  netem_world_free(w);
  free(w);
}

static void print_two_legs(const char *what, const two_legs_t *r) {
  print_message(
      "%-34s lost up/down %4llu/%4llu | frames %llu complete %llu decoded %llu late %llu | "
      "delay p50/p95/p99/max %lld/%lld/%lld/%lld ms | freezes %llu, stall %.2f%% | "
      "repairs fwd %llu (twice %llu), deferred NACKs %llu, unrepairable %llu, PLI %llu (+%llu repeated)\n",
      what, (unsigned long long)r->lost_up, (unsigned long long)r->lost_down, (unsigned long long)r->q.frames,
      (unsigned long long)r->q.complete, (unsigned long long)r->q.decoded, (unsigned long long)r->q.late,
      (long long)(r->q.delay_p50 / 1000), (long long)(r->q.delay_p95 / 1000),
      (long long)(r->q.delay_p99 / 1000), (long long)(r->q.delay_max / 1000),
      (unsigned long long)r->q.freezes, 100.0 * r->q.stall_rate, (unsigned long long)r->m.repair_forwarded,
      (unsigned long long)r->m.repairs_doubled, (unsigned long long)r->m.nack_deferred,
      (unsigned long long)r->m.nack_unrepairable, (unsigned long long)r->m.pli_unrepairable,
      (unsigned long long)r->m.pli_retried);
}

/* Random loss p% each way on both legs (25 ms each way, 50 ms RTT per leg),
 * against the same end-to-end path as one hop: 50 ms each way and the two
 * legs' combined loss on the publisher's side, the viewer next to the node, so
 * one repair loop spans the whole path as between two browsers connected
 * directly. Through the node every frame must arrive whole, and the viewer
 * must stall no more than over the one-hop path. */
static void check_two_legs(int loss_pct) {
  char loss[16], combined[16];
  snprintf(loss, sizeof loss, "%d", loss_pct);
  snprintf(combined, sizeof combined, "%.2f",
           100.0 * (1.0 - (1.0 - loss_pct / 100.0) * (1.0 - loss_pct / 100.0)));
  const char *const leg_args[] = {"--delay", "25", "--loss", loss, "--seed", "7"};
  const char *const hop_args[] = {"--delay", "50", "--loss", combined, "--seed", "7"};
  const char *const near_args[] = {"--delay", "0", "--seed", "7"};
  hd_netem_opts_t leg, hop, near;
  netem_opts_from(&leg, leg_args, 6);
  netem_opts_from(&hop, hop_args, 6);
  netem_opts_from(&near, near_args, 4);
  two_legs_t a, ref;
  const hd_time_t playout = HD_MS(200);
  two_legs(&leg, &leg, 30, HD_MS(60), playout, &a);
  two_legs(&hop, &near, 30, HD_MS(110), playout, &ref);
  char what[64];
  snprintf(what, sizeof what, "%d%% both legs, via node:", loss_pct);
  print_two_legs(what, &a);
  snprintf(what, sizeof what, "%s%% one hop (direct reference):", combined);
  print_two_legs(what, &ref);
  assert_true(a.lost_up > 0 && a.lost_down > 0);
  /* every loss repaired: all frames whole and decoded */
  assert_int_equal(a.q.complete, a.q.frames);
  assert_int_equal(a.q.decoded, a.q.frames);
  assert_true(a.q.stall_rate <= ref.q.stall_rate);
  assert_true(a.q.delay_p99 <= ref.q.delay_p99);
  assert_true(a.m.repair_forwarded > 0);
  assert_true(a.m.repairs_doubled > 0); /* the viewer's RRs report its leg's loss */
}

static void test_two_lossy_legs_5(void **st) {
  (void)st;
  check_two_legs(5);
}

static void test_two_lossy_legs_10(void **st) {
  (void)st;
  check_two_legs(10);
}

/* A keyframe request lost on the way to the publisher (PLI is never
 * acknowledged, RFC 4585 §6.3.1) is repeated until a keyframe starts arriving:
 * the viewer asks once while everything the node sends the publisher is lost
 * for 1.5 s; once the path is back the viewer gets its keyframe without
 * asking again. */
static void test_lost_keyframe_request_repeated(void **st) {
  (void)st;
  static const char *const clean_args[] = {"--delay", "25", "--seed", "3"};
  static const char *const cut_args[] = {"--delay", "25", "--down-loss", "100", "--seed", "3"};
  hd_netem_opts_t clean, cut;
  netem_opts_from(&clean, clean_args, 4);
  netem_opts_from(&cut, cut_args, 6);
  netem_world_t *w = calloc(1, sizeof *w);
  assert_non_null(w);
  netem_world_init(w);
  netem_world_join(w, 0, HD_SESSION_PUBLISH, &clean, NULL);
  netem_world_join(w, 1, HD_SESSION_PLAY, &clean, NULL);
  netem_world_connect(w, 2);
  netem_world_run_until(w, w->now + HD_SEC(2));
  uint64_t keys0 = hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes;
  uint64_t pli0 = hd_rtc_client_stats(w->p[0].c)->pli_rx;
  netem_world_set_links(w, 0, &cut);
  assert_int_equal(hd_rtc_client_send_pli(w->p[1].c), 0);
  netem_world_run_until(w, w->now + HD_MS(1500));
  assert_int_equal(hd_rtc_client_stats(w->p[0].c)->pli_rx, pli0); /* nothing got through */
  netem_world_set_links(w, 0, &clean);
  netem_world_run_until(w, w->now + HD_SEC(1));
  hd_node_metrics_t nm;
  hd_node_metrics(w->node, &nm);
  print_message(
      "PLI lost for 1.5 s: publisher got %llu PLI after the cut, node repeated %llu, viewer keyframes "
      "%llu -> %llu\n",
      (unsigned long long)(hd_rtc_client_stats(w->p[0].c)->pli_rx - pli0),
      (unsigned long long)nm.stats.media.pli_retried, (unsigned long long)keys0,
      (unsigned long long)hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes);
  assert_true(hd_rtc_client_stats(w->p[0].c)->pli_rx > pli0);
  assert_true(nm.stats.media.pli_retried >= 1);
  assert_true(hd_rtc_client_rx(w->p[1].c, HD_RTC_VIDEO)->keyframes > keys0);
  /* and once the keyframe came, no more requests */
  uint64_t pli1 = hd_rtc_client_stats(w->p[0].c)->pli_rx;
  netem_world_run_until(w, w->now + HD_SEC(3));
  assert_int_equal(hd_rtc_client_stats(w->p[0].c)->pli_rx, pli1);
  netem_world_free(w);
  free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ge_uplink_repaired),
      cmocka_unit_test(test_two_lossy_legs_5),
      cmocka_unit_test(test_two_lossy_legs_10),
      cmocka_unit_test(test_lost_keyframe_request_repeated),
  };
  return cmocka_run_group_tests(tests, node_world_setup_all, node_world_teardown_all);
}
