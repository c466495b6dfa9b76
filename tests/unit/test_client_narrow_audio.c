/* Audio on a narrow link, in virtual time (issue 11 item 3: "audio first and
 * never dropped"; issue 13 item 2): the SDK publisher pc (client/pc.h) sends
 * 20 ms audio packets and one VP8 stream that follows its send-side estimate
 * (the SDK's encoder: 90% of the target less audio) through an in-process
 * node to an SDK subscriber pc, both legs through `hudong netem --delay 25
 * --rate 300 --queue 200` (bench/weak_network --rates 300). The subscriber
 * plays audio through the NetEQ-class buffer (media/audio_jitter.h) on a
 * 20 ms clock as client_media.c does, and measures each audio packet's
 * capture -> arrival delay. Audio goes around every pacer queue; what it must
 * not do is wait behind video in the link's own queue, which only what the
 * senders put on the wire decides. The publisher's rates come from the SDK's
 * own policy (client_media.c: cl_local_init's start plan, cl_apply_send_rate
 * on each estimate, cl_audio_adapt on each receiver report), its payloads are
 * synthetic. The world (node, links, signaling) is tests/support/client_world.h's
 * with the SDK policy (.sdk) and the subscriber's audio (.sub_audio) on. */
#include "hd_test.h"

#include <stdlib.h>

#include "client/client_internal.h" /* the SDK's send budget (client_media.c) */
#include "client/pc_internal.h"     /* the publisher's estimator, for the trace */
#include "netem/link.h"
#include "support/client_world.h"

typedef struct {
  hd_time_t a_p50, a_p95, a_max; /* audio capture -> arrival */
  hd_time_t a_target;            /* the audio buffer's target at the end */
  double a_concealed_pct;        /* concealed over played, watched part */
  uint64_t a_longest_run_ms;
  hd_time_t v_p50, v_p95; /* video capture -> render */
  double stall_pct, fps;
} aud_outcome_t;

/* Runs `secs` seconds, counting from `watch_from_s`. */
static void watch_audio(cw_t *w, int secs, int watch_from_s, aud_outcome_t *o, const char *label) {
  cw_ep_t *sub = &w->ep[1];
  hd_time_t t0 = w->now;
  memset(o, 0, sizeof *o);
  cw_run_until(w, t0 + HD_SEC(watch_from_s));
  sub->watch_from = w->now;
  sub->n_adelays = sub->n_delays = 0;
  sub->rendered = 0;
  memset(&sub->fz, 0, sizeof sub->fz);
  uint64_t conc0 = sub->ajb.stats.concealed_ms, played0 = sub->ajb.stats.played_ms;
  hd_time_t from = w->now;
  for (int s = watch_from_s * 10 + 1; s <= secs * 10; s++) {
    cw_run_until(w, t0 + HD_MS(100) * s);
    uint64_t est = 0;
    if (getenv("HD_TEST_TRACE")) {
      est = cw_estimate(w, NULL);
      hd_netem_stats_t a, b2;
      hd_netem_link_stats(w->nl[0][CW_NODE], &a);
      hd_netem_link_stats(w->nl[CW_NODE][1], &b2);
      printf("   in up %llu B down %llu B; node est %llu; pub RED depth %d, video %llu\n",
             (unsigned long long)a.bytes_in, (unsigned long long)b2.bytes_in, (unsigned long long)est,
             w->ep[0].sdk ? w->ep[0].sdk->local[0].red_depth : -1,
             (unsigned long long)(w->ep[0].sdk ? w->ep[0].sdk->local[1].target_bps : 0));
      if (w->ep[0].pc->bwe) {
        hd_bwe_stats_t bs;
        hd_bwe_stats(w->ep[0].pc->bwe, &bs);
        printf("   pub bwe: target %llu delay %llu loss %llu acked %llu sent %llu usage %d thr %.1f fb %llu "
               "overuses %llu rtt %lld\n",
               (unsigned long long)bs.target_bps, (unsigned long long)bs.delay_bps,
               (unsigned long long)bs.loss_bps, (unsigned long long)bs.acked_bps,
               (unsigned long long)bs.sent_bps, (int)bs.usage, bs.threshold, (unsigned long long)bs.feedbacks,
               (unsigned long long)bs.overuses, (long long)bs.rtt);
      }
    }
    if (getenv("HD_TEST_TRACE"))
      printf("%s t=%4.1f pub_rate=%7llu held up %zu down %zu, audio target %lld ms last %lld ms\n", label,
             s / 10.0, (unsigned long long)w->ep[0].send_rate, hd_netem_link_held(w->nl[0][CW_NODE]),
             hd_netem_link_held(w->nl[CW_NODE][1]), (long long)(sub->ajb.stats.target_delay / 1000),
             (long long)(sub->n_adelays ? sub->adelays[sub->n_adelays - 1] / 1000 : -1));
  }
  hd_netem_stats_t up, down;
  hd_netem_link_stats(w->nl[0][CW_NODE], &up);
  hd_netem_link_stats(w->nl[CW_NODE][1], &down);
  printf("%s: link queueing delay p95 up %.0f ms, down %.0f ms; queue drops up %llu down %llu\n", label,
         (double)up.qdelay_p95 / 1e3, (double)down.qdelay_p95 / 1e3, (unsigned long long)up.drop_queue,
         (unsigned long long)down.drop_queue);
  double watched = (double)(w->now - from) / 1e6;
  o->stall_pct = watched > 0 ? 100.0 * sub->fz.freeze_us / 1e6 / watched : 0;
  o->fps = watched > 0 ? (double)sub->rendered / watched : 0;
  uint64_t played = sub->ajb.stats.played_ms - played0;
  o->a_concealed_pct = played ? 100.0 * (double)(sub->ajb.stats.concealed_ms - conc0) / (double)played : 100;
  o->a_longest_run_ms = sub->ajb.stats.max_concealed_run_ms;
  o->a_target = sub->ajb.stats.target_delay;
  o->a_p50 = cw_pctl(sub->adelays, sub->n_adelays, 50);
  o->a_p95 = cw_pctl(sub->adelays, sub->n_adelays, 95);
  o->a_max = cw_pctl(sub->adelays, sub->n_adelays, 100);
  o->v_p50 = cw_pctl(sub->delays, sub->n_delays, 50);
  o->v_p95 = cw_pctl(sub->delays, sub->n_delays, 95);
  printf("%s: audio capture->arrival p50 %.0f p95 %.0f max %.0f ms, buffer target %.0f ms, concealed %.2f%% "
         "(longest run %llu ms); video capture->render p50 %.0f p95 %.0f ms, stall %.2f%%, %.1f fps\n",
         label, (double)o->a_p50 / 1e3, (double)o->a_p95 / 1e3, (double)o->a_max / 1e3,
         (double)o->a_target / 1e3, o->a_concealed_pct, (unsigned long long)o->a_longest_run_ms,
         (double)o->v_p50 / 1e3, (double)o->v_p95 / 1e3, o->stall_pct, o->fps);
}

/* bench/weak_network --rates 300 in virtual time: 300 kbit/s each way, a
 * 200 ms queue on both legs, watched from the start as the bench does. The
 * SDK started its video at the configured 300 kbit/s beside audio at its
 * start-up RED depth (5 x ~26 kbit/s): ~430 kbit/s into the uplink until the
 * first feedback, both queues filled, audio arrived up to 380 ms after
 * capture and played a 380 ms concealment run (the bench's "longest audio
 * gap" of 380-420 ms); now video starts at what the estimator's start rate
 * leaves after audio (client_media.c cl_local_init). */
static void test_audio_300k_start(void **st) {
  (void)st;
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  cw_cfg_t rc = {
      .up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1, .sdk = 1, .sub_audio = 1};
  cw_t *w = cw_new(&rc);
  /* the budget before any estimate: video + audio with its RED copies within 90% of the start rate */
  const cl_local_t *a = &w->ep[0].sdk->local[0], *v = &w->ep[0].sdk->local[1];
  uint64_t audio = a->target_bps * (uint64_t)(1 + a->red_depth);
  printf("start plan: video %llu bit/s, audio %llu bit/s x %d\n", (unsigned long long)v->target_bps,
         (unsigned long long)a->target_bps, 1 + a->red_depth);
  uint64_t planned = v->target_bps + audio;
  aud_outcome_t o;
  watch_audio(w, 15, 0, &o, "300k both legs, from the start");
  assert_true(o.a_longest_run_ms <= 200);
  assert_true(o.a_p95 < HD_MS(300));
  assert_true(o.stall_pct < 2.0);
  assert_true(o.fps > 25);
  assert_true(planned <= 300000 * 9 / 10 + 1000);
  cw_free(w);
}

/* The same link once settled (from 5 s to 30 s): audio goes around both
 * pacers and its arrival stays within ~60 ms of the propagation delay at the
 * 95th percentile, nothing is concealed, video keeps its frame rate. */
static void test_audio_300k_steady(void **st) {
  (void)st;
  const char *lim[] = {"--delay", "25", "--rate", "300", "--queue", "200"};
  cw_cfg_t rc = {
      .up = lim, .nup = 6, .down = lim, .ndown = 6, .n_layers = 1, .adapt = 1, .sdk = 1, .sub_audio = 1};
  cw_t *w = cw_new(&rc);
  aud_outcome_t o;
  watch_audio(w, 30, 5, &o, "300k both legs, 5-30 s");
  assert_true(o.a_p95 < HD_MS(150));
  assert_true(o.a_concealed_pct < 0.5);
  assert_true(o.stall_pct < 2.0);
  assert_true(o.fps > 25);
  cw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_audio_300k_start),
      cmocka_unit_test(test_audio_300k_steady),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
