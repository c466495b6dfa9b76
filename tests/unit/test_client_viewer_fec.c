/* FlexFEC from the node to an SDK viewer (issue 13 item 4), in virtual time:
 * an SDK publisher pc (client/pc.h, its own FEC off) sends one stream of
 * synthetic VP8 (~450 kbit/s) and audio through an in-process node to an
 * SDK viewer pc that joined with "flexfec" (as client/rtc_signal.c does):
 * the node offers flexfec/90000 and FEC-FR on the video, and computes repair
 * packets over what it sends that viewer (sfu/session_fec.h). The viewer's
 * downlink is a `hudong netem` link model (src/netem) with loss and a long
 * round trip, where NACK alone costs a round trip per hole; the viewer's
 * frames go through the SDK's video jitter buffer (media/video_jitter.h) as
 * client_media.c drives it. Same seeds with FEC on and off.
 *
 * Also the SDK publisher's own FlexFEC on an unlimited uplink (item 4's
 * estimator bug): its repair packets carry a transport-wide seq, so its
 * send-side estimate holds with FEC on. */
#include "hd_test.h"

#include <stdlib.h>

#include "proto/sdp_offer.h"
#include "rtc/flexfec.h"
#include "rtc/flexfec_send.h"
#include "sfu/session.h"
#include "support/client_world.h"

/* This file's world: one 450 kbit/s stream (or one that follows the
 * publisher's estimate up to 2.5 Mbit/s) of plain VP8, the viewer's jitter
 * buffer on the track's repair RTT only. */
static cw_t *fec_world(cw_cfg_t rc) {
  rc.n_layers = 1;
  rc.untagged = 1;
  rc.rtt_track_only = 1;
  rc.adapt_max = 2500000;
  return cw_new(&rc);
}

/* The viewer's video out track at the node. */
static hd_out_track_t *viewer_video(cw_t *w) {
  hd_session_t *ss = w->part[1] ? w->part[1]->sub_sess : NULL;
  for (int i = 0; ss && i < ss->n_out; i++)
    if (ss->out[i].active && ss->out[i].kind == HD_TRACK_VIDEO) return &ss->out[i];
  return NULL;
}

typedef struct {
  uint64_t node_fec_sent, fec_received, fec_recovered, nack_seqs, keyreqs, rendered, video_pkts;
  int64_t holes; /* video seqs never delivered (after repair and FEC), the last second left out */
  double stall_pct, fps;
  int group;                 /* the node's FEC plan for the viewer at the end */
  long long metric_fec_sent; /* hudong_fec_sent_total on the node's /metrics, -1 absent */
  uint64_t est;              /* the node's estimate of the viewer's downlink at the end */
} outcome_t;

/* Runs `secs` seconds (the first 3 not watched) and collects the outcome. */
static void run_watch(cw_t *w, int secs, outcome_t *o, const char *label) {
  cw_ep_t *sub = &w->ep[1];
  hd_time_t t0 = w->now;
  sub->watch_from = t0 + HD_SEC(3);
  cw_run_until(w, t0 + HD_SEC(secs));
  memset(o, 0, sizeof *o);
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(sub->pc, ps);
  for (int i = 0; i < ps->n_tracks; i++)
    if (hd_pc_track_kind(sub->pc, i) == HD_PC_VIDEO) {
      o->fec_received = ps->tracks[i].fec_received;
      o->fec_recovered = ps->tracks[i].fec_recovered;
      o->nack_seqs = ps->tracks[i].nack_seqs_sent;
    }
  free(ps);
  o->node_fec_sent = hd_node_stats(w->node)->media.fec_sent;
  char *text = malloc(1 << 17);
  assert_non_null(text);
  assert_true(hd_node_metrics_text(w->node, text, 1 << 17) > 0);
  const char *mline = strstr(text, "\nhudong_fec_sent_total ");
  o->metric_fec_sent = mline ? atoll(mline + strlen("\nhudong_fec_sent_total ")) : -1;
  assert_non_null(strstr(text, "# TYPE hudong_fec_sent_total counter\n"));
  assert_non_null(strstr(text, "\nhudong_resent_exact_total "));
  assert_non_null(strstr(text, "\nhudong_same_index_refused_total "));
  free(text);
  hd_out_track_t *vt = viewer_video(w);
  o->video_pkts = vt ? vt->packets : 0;
  hd_session_t *ss = w->part[1]->sub_sess;
  o->est = ss ? ss->estimate_bps : 0;
  o->group = vt && vt->fec ? hd_flexfec_send_group(vt->fec, ss->rtt_samples ? ss->rtt : 0, vt->nack) : 0;
  int64_t tail = 30 * 6; /* about the last second's packets may still be under repair */
  for (int64_t i = 0; i <= sub->max_ext - sub->first_ext - tail && i < CW_MAXSEQ; i++)
    o->holes += !sub->got[i];
  hd_time_t watched = w->now - sub->watch_from;
  o->stall_pct = cw_stall_pct(w);
  o->fps = (double)sub->rendered / ((double)watched / 1e6);
  o->keyreqs = sub->keyreqs;
  o->rendered = sub->rendered;
  printf("%s: %.1f fps, stall %.2f%%, video packets %llu, node FEC sent %llu (group %d), viewer FEC received "
         "%llu, recovered %llu, NACKed seqs %llu, holes left %lld, keyframe requests %llu, estimate %llu\n",
         label, o->fps, o->stall_pct, (unsigned long long)o->video_pkts, (unsigned long long)o->node_fec_sent,
         o->group, (unsigned long long)o->fec_received, (unsigned long long)o->fec_recovered,
         (unsigned long long)o->nack_seqs, (long long)o->holes, (unsigned long long)o->keyreqs,
         (unsigned long long)o->est);
}

/* A viewer that joins with "flexfec" is offered it on video (RFC 8627 §5.1:
 * flexfec/90000, a=ssrc-group:FEC-FR media repair), the SDK's answer takes
 * it and the node's out track has it; one that does not (Chromium by
 * default) is not offered it at all. */
static void test_viewer_fec_negotiated(void **st) {
  (void)st;
  for (int fec = 0; fec < 2; fec++) {
    cw_cfg_t rc = {.sub_fec = fec, .seed = 1};
    cw_t *w = fec_world(rc);
    char line[64];
    snprintf(line, sizeof line, "a=rtpmap:%d flexfec/90000", HD_SDP_OFFER_PT_FLEXFEC);
    assert_int_equal(strstr(w->offer, line) != NULL, fec);
    assert_int_equal(strstr(w->offer, "a=ssrc-group:FEC-FR ") != NULL, fec);
    assert_int_equal(strstr(w->answer, line) != NULL, fec);
    cw_run_until(w, w->now + HD_SEC(2));
    hd_out_track_t *vt = viewer_video(w);
    assert_non_null(vt);
    assert_int_equal(vt->fec_pt, fec ? HD_SDP_OFFER_PT_FLEXFEC : 0);
    assert_int_equal(vt->fec_ssrc != 0, fec);
    if (fec) { /* the offer's FEC-FR group names the out track's SSRCs */
      char grp[64];
      snprintf(grp, sizeof grp, "a=ssrc-group:FEC-FR %u %u", vt->ssrc, vt->fec_ssrc);
      assert_non_null(strstr(w->offer, grp));
    }
    assert_true(vt->packets > 0);
    cw_free(w);
  }
}

/* The viewer's downlink loses 15% with 100 ms each way (RTT ~225 ms with the
 * 25 ms uplink): NACK costs a round trip per hole and often two, FEC pays.
 * Same seeds with the viewer's FlexFEC on and off: with it the node sends
 * repair packets (one per round(1/(2 x 15%)) = 3 packets once the smoothed
 * reports reach 15%), the viewer rebuilds holes from them, NACKs fewer
 * seqs and is left with no more holes. */
static void test_viewer_fec_recovers(void **st) {
  (void)st;
  const char *down[] = {"--delay", "100", "--loss", "15"};
  const char *vup[] = {"--delay", "100"};
  outcome_t off, on;
  uint64_t sum_nack_off = 0, sum_nack_on = 0;
  int64_t sum_holes_off = 0, sum_holes_on = 0;
  double stall_off = 0, stall_on = 0;
  for (uint64_t seed = 1; seed <= 2; seed++) {
    for (int fec = 0; fec < 2; fec++) {
      cw_cfg_t rc = {.down = down, .ndown = 4, .vup = vup, .nvup = 2, .sub_fec = fec, .seed = seed};
      cw_t *w = fec_world(rc);
      char label[64];
      snprintf(label, sizeof label, "15%% loss, 100 ms each way, seed %llu, FEC %s", (unsigned long long)seed,
               fec ? "on " : "off");
      run_watch(w, 20, fec ? &on : &off, label);
      cw_free(w);
    }
    assert_int_equal(off.node_fec_sent, 0);
    assert_int_equal(off.fec_received, 0);
    assert_true(on.node_fec_sent > 0);
    assert_true(on.fec_received > 0 && on.fec_received <= on.node_fec_sent);
    assert_true(on.fec_recovered > 0);
    assert_true(on.group >= 2 && on.group <= HD_FLEXFEC_MAX_GROUP);
    assert_true(on.metric_fec_sent == (long long)on.node_fec_sent); /* on /metrics as hudong_fec_sent_total */
    /* what FEC rebuilt is not asked for again */
    assert_true(on.nack_seqs < off.nack_seqs);
    sum_nack_off += off.nack_seqs, sum_nack_on += on.nack_seqs;
    sum_holes_off += off.holes, sum_holes_on += on.holes;
    stall_off += off.stall_pct / 2, stall_on += on.stall_pct / 2;
  }
  printf("2 seeds: NACKed seqs %llu -> %llu, holes left %lld -> %lld, mean stall %.2f%% -> %.2f%%\n",
         (unsigned long long)sum_nack_off, (unsigned long long)sum_nack_on, (long long)sum_holes_off,
         (long long)sum_holes_on, stall_off, stall_on);
  /* half the NACKed seqs at most (FEC rebuilds a good part of the 15% lost
   * before their NACK is due), no more holes left than NACK alone leaves,
   * and no more stall */
  assert_true(sum_nack_on * 2 < sum_nack_off);
  assert_true(sum_holes_on <= sum_holes_off);
  assert_true(stall_on <= stall_off);
}

/* Where NACK repairs in time the node sends no FEC: 10% loss on a 25 ms
 * downlink (RTT ~50 ms, under HD_FLEXFEC_NACK_RTT), and no loss on a long
 * one; the planner is the SDK publisher's (rtc/flexfec_send.h). */
static void test_viewer_fec_only_where_it_pays(void **st) {
  (void)st;
  const char *short_lossy[] = {"--delay", "25", "--loss", "10"};
  const char *long_clean[] = {"--delay", "100"};
  const char *vup[] = {"--delay", "100"};
  outcome_t o;
  cw_cfg_t a = {.down = short_lossy, .ndown = 4, .sub_fec = 1, .seed = 3};
  cw_t *w = fec_world(a);
  run_watch(w, 12, &o, "10% loss, 25 ms each way, FEC allowed");
  assert_int_equal(o.node_fec_sent, 0);
  assert_int_equal(o.fec_received, 0);
  assert_true(o.nack_seqs > 0); /* NACK did the repair */
  cw_free(w);
  cw_cfg_t b = {.down = long_clean, .ndown = 2, .vup = vup, .nvup = 2, .sub_fec = 1, .seed = 3};
  w = fec_world(b);
  run_watch(w, 12, &o, "no loss, 100 ms each way, FEC allowed");
  assert_int_equal(o.node_fec_sent, 0);
  assert_true(o.fps > 25);
  cw_free(w);
}

/* The SDK publisher's own FlexFEC on an unlimited uplink (no rate limit)
 * with 20% loss and 100 ms each way (its FEC is on, one repair packet per 2-3
 * media packets: RTT over 100 ms): its repair packets carry a
 * transport-wide seq like media, so the node's feedback acknowledges their
 * bytes and the send-side estimate holds as with FEC off. Before, they
 * carried none: the estimator saw only the media part acknowledged, its
 * increase bound (1.5 x acked, rtc/bwe.c) fell below the target with the
 * encoder at g/(g+1) of it, and the target fell: 1.96 -> 1.24 Mbit/s here,
 * the video to 0.93 Mbit/s. */
static void test_publisher_fec_estimate_holds(void **st) {
  (void)st;
  const char *up[] = {"--delay", "100", "--loss", "20"};
  const char *pdown[] = {"--delay", "100"};
  uint64_t target[2], fec_sent[2];
  for (int fec = 0; fec < 2; fec++) {
    cw_cfg_t rc = {.up = up, .nup = 4, .pdown = pdown, .npdown = 2, .pub_fec = fec, .adapt = 1, .seed = 5};
    cw_t *w = fec_world(rc);
    cw_run_until(w, w->now + HD_SEC(25));
    hd_pc_stats_t *ps = malloc(sizeof *ps);
    assert_non_null(ps);
    hd_pc_stats(w->ep[0].pc, ps);
    target[fec] = ps->bwe_bps;
    fec_sent[fec] = ps->tracks[w->ep[0].vtrack].fec_sent;
    printf(
        "publisher, 20%% loss, 100 ms each way, no rate limit, FEC %s: estimate %llu bit/s, FEC sent %llu, "
        "group %d, send rate %llu\n",
        fec ? "on " : "off", (unsigned long long)target[fec], (unsigned long long)fec_sent[fec],
        ps->tracks[w->ep[0].vtrack].fec_group, (unsigned long long)w->ep[0].send_rate);
    free(ps);
    cw_free(w);
  }
  assert_int_equal(fec_sent[0], 0);
  assert_true(fec_sent[1] > 0);
  /* FEC on keeps at least 90% of the estimate FEC off reaches */
  assert_true(target[1] * 10 >= target[0] * 9);
}

/* Viewer video FEC-protected right now: the node's out track's FlexFEC SSRC
 * (0 = no FlexFEC on its video), its SSRC in *media. */
static uint32_t viewer_fec_ssrc(cw_t *w, uint32_t *media) {
  hd_out_track_t *vt = viewer_video(w);
  if (media) *media = vt ? vt->ssrc : 0;
  return vt && vt->fec_pt ? vt->fec_ssrc : 0;
}

/* Packets the viewer rebuilt from FlexFEC, over all its video tracks. */
static uint64_t viewer_recovered(cw_t *w) {
  hd_pc_stats_t *ps = malloc(sizeof *ps);
  assert_non_null(ps);
  hd_pc_stats(w->ep[1].pc, ps);
  uint64_t n = 0;
  for (int i = 0; i < ps->n_tracks; i++)
    if (hd_pc_track_kind(w->ep[1].pc, i) == HD_PC_VIDEO) n += ps->tracks[i].fec_recovered;
  free(ps);
  return n;
}

/* The subscriber's offer and answer both carry FlexFEC for media SSRC ssrc
 * with repair SSRC fec (RFC 8627 §5.1.3 FEC-FR group). */
static void assert_fec_negotiated(cw_t *w, uint32_t ssrc, uint32_t fec) {
  char line[64], grp[64];
  snprintf(line, sizeof line, "a=rtpmap:%d flexfec/90000", HD_SDP_OFFER_PT_FLEXFEC);
  snprintf(grp, sizeof grp, "a=ssrc-group:FEC-FR %u %u", ssrc, fec);
  assert_non_null(strstr(w->offer, line));
  assert_non_null(strstr(w->offer, grp));
  assert_non_null(strstr(w->answer, line));
}

/* FlexFEC across subscriber renegotiations (the node offers on the viewer's
 * subscriber pc): the publisher starts with its microphone only, so the
 * viewer's first offer has no video; the camera published later comes in a
 * re-offer and gets FlexFEC like a first track; unpublished, its repair
 * packets stop with it (none for an SSRC no longer sent); published again
 * (a recycled m= section, new SSRCs, a fresh transceiver at the viewer), it
 * gets FlexFEC afresh and repair packets go on the new repair SSRC only,
 * from which the viewer rebuilds; a later answer that drops FlexFEC from the
 * kept camera section stops its repair packets, and the next one that takes
 * it turns them on again (before, a kept track had FlexFEC as its first
 * answer said, whatever later answers did). Lossy long downlink as in
 * test_viewer_fec_recovers. */
static void test_viewer_fec_renegotiated(void **st) {
  (void)st;
  const char *down[] = {"--delay", "100", "--loss", "15"};
  const char *vup[] = {"--delay", "100"};
  cw_cfg_t rc = {
      .down = down, .ndown = 4, .vup = vup, .nvup = 2, .sub_fec = 1, .seed = 4, .mic_only_first = 1};
  cw_t *w = fec_world(rc);
  char line[64];
  snprintf(line, sizeof line, "a=rtpmap:%d flexfec/90000", HD_SDP_OFFER_PT_FLEXFEC);
  assert_null(strstr(w->offer, "m=video")); /* audio only so far */
  assert_null(strstr(w->offer, line));
  cw_run_until(w, w->now + HD_SEC(2));
  assert_null(viewer_video(w));

  /* 1. the camera, published later: a re-offer with FlexFEC on its section */
  cw_publish(w, "cam");
  uint32_t media1, fec1 = viewer_fec_ssrc(w, &media1);
  assert_true(fec1 != 0);
  assert_fec_negotiated(w, media1, fec1);
  cw_run_until(w, w->now + HD_SEC(12));
  uint64_t sent1 = cw_fec_out(w, fec1), rec1 = viewer_recovered(w);
  printf("camera published after the first offer: %llu repair packets on %08x, viewer rebuilt %llu\n",
         (unsigned long long)sent1, fec1, (unsigned long long)rec1);
  assert_true(sent1 > 0);
  assert_true(rec1 > 0);

  /* 2. unpublished: its section rejected in the re-offer, its repair
   * packets stop at once (what is still on the link arrives) */
  cw_publish(w, NULL);
  assert_null(viewer_video(w));
  uint64_t at_removal = cw_fec_out(w, fec1);
  cw_run_until(w, w->now + HD_SEC(3));
  assert_int_equal(cw_fec_out(w, fec1), at_removal);

  /* 3. published again: a recycled section, new SSRCs, FlexFEC afresh */
  cw_publish(w, "cam");
  uint32_t media2, fec2 = viewer_fec_ssrc(w, &media2);
  assert_true(fec2 != 0);
  assert_true(fec2 != fec1 && media2 != media1);
  assert_fec_negotiated(w, media2, fec2);
  cw_run_until(w, w->now + HD_SEC(12));
  uint64_t sent2 = cw_fec_out(w, fec2), rec2 = viewer_recovered(w);
  printf("camera published again: %llu repair packets on %08x (%llu on the old %08x), viewer rebuilt %llu\n",
         (unsigned long long)sent2, fec2, (unsigned long long)cw_fec_out(w, fec1), fec1,
         (unsigned long long)(rec2 - rec1));
  assert_true(sent2 > 0);
  assert_int_equal(cw_fec_out(w, fec1), at_removal); /* nothing more on the old repair SSRC */
  assert_true(rec2 > rec1);
  for (int k = 0; k < w->n_fec_out; k++) /* repair packets on these two SSRCs only */
    assert_true(w->fec_out[k].ssrc == fec1 || w->fec_out[k].ssrc == fec2);

  /* 4. a re-offer that keeps the camera (the microphone unpublished) whose
   * answer drops FlexFEC from the camera's section (RFC 3264 §8: an answer
   * may take fewer formats): the node stops its repair packets */
  w->answer_drop_fec = 1;
  cw_publish2(w, NULL, "cam");
  w->answer_drop_fec = 0;
  assert_null(strstr(w->answer, line));
  uint32_t media4, fec4 = viewer_fec_ssrc(w, &media4);
  assert_int_equal(media4, media2); /* the same track */
  assert_int_equal(fec4, 0);
  uint64_t at_drop = cw_fec_out(w, fec2);
  cw_run_until(w, w->now + HD_SEC(8));
  printf("answer without FlexFEC: %llu repair packets on %08x after it\n",
         (unsigned long long)(cw_fec_out(w, fec2) - at_drop), fec2);
  assert_int_equal(cw_fec_out(w, fec2), at_drop);

  /* 5. the next re-offer (the microphone back) answered with it: taken up again */
  cw_publish2(w, "mic", "cam");
  assert_non_null(strstr(w->answer, line));
  uint32_t media5, fec5 = viewer_fec_ssrc(w, &media5);
  assert_int_equal(media5, media2);
  assert_int_equal(fec5, fec2);
  uint64_t rec5 = viewer_recovered(w);
  cw_run_until(w, w->now + HD_SEC(12));
  printf("answer with FlexFEC again: %llu repair packets on %08x, viewer rebuilt %llu\n",
         (unsigned long long)(cw_fec_out(w, fec2) - at_drop), fec2,
         (unsigned long long)(viewer_recovered(w) - rec5));
  assert_true(cw_fec_out(w, fec2) > at_drop);
  assert_true(viewer_recovered(w) > rec5);
  cw_free(w);
}

/* A layer change is no renegotiation: a simulcast camera (three layers) to a
 * FlexFEC viewer on a lossy long downlink; the node switches layers on the
 * same out track (its SSRC, its seq continued), whose repair packets go on
 * across each switch on the one repair SSRC and keep rebuilding. */
static void test_viewer_fec_across_layer_switches(void **st) {
  (void)st;
  const char *down[] = {"--delay", "100", "--loss", "15"};
  const char *vup[] = {"--delay", "100"};
  cw_cfg_t rc = {
      .down = down, .ndown = 4, .vup = vup, .nvup = 2, .sub_fec = 1, .seed = 6, .n_layers = CW_LAYERS};
  cw_t *w = cw_new(&rc);
  cw_run_until(w, w->now + HD_SEC(20));
  uint32_t media, fec = viewer_fec_ssrc(w, &media);
  uint64_t switches = hd_node_stats(w->node)->media.layer_switches;
  const cw_ep_t *sub = &w->ep[1];
  printf("simulcast to a FlexFEC viewer: %llu layer switches, frames by layer %llu/%llu/%llu, %llu repair "
         "packets "
         "on %08x, viewer rebuilt %llu\n",
         (unsigned long long)switches, (unsigned long long)sub->layer_frames[0],
         (unsigned long long)sub->layer_frames[1], (unsigned long long)sub->layer_frames[2],
         (unsigned long long)cw_fec_out(w, fec), fec, (unsigned long long)viewer_recovered(w));
  assert_true(fec != 0);
  assert_true(switches >= 1);
  assert_int_equal(w->n_fec_out, 1); /* one repair SSRC throughout */
  assert_true(cw_fec_out(w, fec) > 0);
  assert_true(viewer_recovered(w) > 0);
  cw_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_viewer_fec_negotiated),
      cmocka_unit_test(test_viewer_fec_recovers),
      cmocka_unit_test(test_viewer_fec_only_where_it_pays),
      cmocka_unit_test(test_viewer_fec_renegotiated),
      cmocka_unit_test(test_viewer_fec_across_layer_switches),
      cmocka_unit_test(test_publisher_fec_estimate_holds),
  };
  return cmocka_run_group_tests(tests, cw_setup_all, cw_teardown_all);
}
