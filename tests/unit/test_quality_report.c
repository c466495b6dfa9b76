/* Client quality reports (src/quality/report.h) and the collector that turns
 * them into rows (src/quality/collector.h): the freeze rule and the stall and
 * concealment computations on recorded timelines, counter deltas and resets,
 * the caps (rate, node budget, malformed input), node sample deltas and the
 * /metrics text; and the alert rules (src/quality/alerts.h) on a virtual clock. */
#include "hd_test.h"

#include <jansson.h>

#include "base/err.h"
#include "quality/alerts.h"
#include "quality/collector.h"
#include "quality/report.h"

/* A 30 fps timeline with a 400 ms and a 150 ms gap: only the first is a
 * freeze (threshold max(3 x 33.3, 33.3 + 150) = 183 ms). */
static void test_freeze_rule_timeline(void **state) {
  (void)state;
  hd_qfreeze_t f;
  memset(&f, 0, sizeof f);
  int64_t t = 1000000;
  int froze = 0;
  for (int i = 0; i < 60; i++, t += 33333)
    froze += hd_qfreeze_frame(&f, t);
  assert_int_equal(froze, 0);
  t += 400000 - 33333;
  assert_int_equal(hd_qfreeze_frame(&f, t), 1);
  for (int i = 0; i < 30; i++)
    froze += hd_qfreeze_frame(&f, t += 33333);
  assert_int_equal(hd_qfreeze_frame(&f, t += 150000), 0);
  assert_int_equal(f.freezes, 1);
  assert_int_equal(f.freeze_us, 400000);
  /* at 5 fps (200 ms), the threshold is 3 x 200 = 600 ms: a 500 ms gap is no freeze */
  hd_qfreeze_t g;
  memset(&g, 0, sizeof g);
  t = 0;
  for (int i = 0; i < 40; i++)
    hd_qfreeze_frame(&g, t += 200000);
  assert_int_equal(hd_qfreeze_frame(&g, t += 500000), 0);
  assert_int_equal(hd_qfreeze_frame(&g, t += 700000), 1);
  /* no judgement before a few intervals are averaged */
  hd_qfreeze_t h;
  memset(&h, 0, sizeof h);
  hd_qfreeze_frame(&h, 1);
  assert_int_equal(hd_qfreeze_frame(&h, 5000000), 0);
}

static hd_qtrack_counters_t vc(uint64_t packets, uint64_t freezes, uint64_t freeze_ms, uint64_t watched,
                               uint64_t frames) {
  hd_qtrack_counters_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.sid, sizeof c.sid, "TR_v");
  c.video = 1, c.packets = packets, c.freezes = freezes, c.freeze_ms = freeze_ms, c.watched_ms = watched;
  c.frames_decoded = frames;
  return c;
}

static void test_delta_and_reset(void **state) {
  (void)state;
  hd_qtrack_counters_t a = vc(100, 1, 300, 5000, 150), b = vc(250, 3, 900, 10000, 290);
  a.jb_delay_s = 3.0, a.jb_emitted = 150, b.jb_delay_s = 9.0, b.jb_emitted = 250;
  hd_qdelta_t d;
  hd_qtrack_delta(NULL, &a, &d);
  assert_int_equal(d.freeze_ms, 300);
  assert_true(d.jb_delay_ms == 20.0);
  hd_qtrack_delta(&a, &b, &d);
  assert_int_equal(d.packets, 150);
  assert_int_equal(d.freezes, 2);
  assert_int_equal(d.freeze_ms, 600);
  assert_int_equal(d.watched_ms, 5000);
  assert_true(d.jb_delay_ms == 60.0);
  /* a new receiver under the same track: counted from zero, not negative */
  hd_qtrack_counters_t c = vc(10, 0, 0, 1000, 20);
  hd_qtrack_delta(&b, &c, &d);
  assert_int_equal(d.packets, 10);
  assert_int_equal(d.watched_ms, 1000);
  assert_int_equal(d.freezes, 0);
}

typedef struct {
  hd_qrow_t rows[64];
  size_t n;
  int refuse;
} sink_t;

static int sink_push(void *ud, const hd_qrow_t *rows, size_t n) {
  sink_t *s = ud;
  if (s->refuse || s->n + n > 64) return HD_ENOSPC;
  memcpy(&s->rows[s->n], rows, n * sizeof *rows);
  s->n += n;
  return (int)n;
}

static hd_qcollector_t *mk(sink_t *s, double rows_per_s) {
  hd_qcollector_config_t c = {.push = sink_push, .ud = s, .max_rows_per_s = rows_per_s};
  hd_qcollector_t *col = NULL;
  assert_int_equal(hd_qcollector_new(&col, &c, HD_SEC(100)), 0);
  hd_qkey_t k;
  memset(&k, 0, sizeof k);
  snprintf(k.app, sizeof k.app, "app1");
  snprintf(k.room, sizeof k.room, "r1");
  snprintf(k.room_sid, sizeof k.room_sid, "RM_1");
  snprintf(k.identity, sizeof k.identity, "bob");
  snprintf(k.participant_sid, sizeof k.participant_sid, "PA_b");
  assert_int_equal(hd_qcollector_joined(col, 7, &k), 0);
  return col;
}

static int msg(hd_qcollector_t *c, const char *type, const char *json, hd_time_t now, int64_t ms, char *err) {
  json_t *o = json_loads(json, 0, NULL);
  assert_non_null(o);
  int rc = hd_qcollector_message(c, 7, type, o, now, ms, err, 256);
  json_decref(o);
  return rc;
}

/* A recorded timeline of one viewer's reports (cumulative, as rtc.js sends
 * them): the stored intervals add up to the page's own totals, and the stall
 * and concealment figures are the ratios of those sums. */
static void test_collector_timeline(void **state) {
  (void)state;
  sink_t s = {0};
  hd_qcollector_t *c = mk(&s, 0);
  char err[256];
  static const char *const reports[] = {
      "{\"candidate\":\"host\",\"rtt_ms\":100,\"tracks\":[{\"sid\":\"TR_v\",\"kind\":\"video\",\"bytes\":"
      "500000,"
      "\"packets\":500,\"lost\":50,\"freezes\":1,\"freeze_ms\":400,\"watched_ms\":4000,\"frames_decoded\":"
      "110},"
      "{\"sid\":\"TR_a\",\"kind\":\"audio\",\"packets\":200,\"concealed\":9600,\"samples\":192000}]}",
      "{\"candidate\":\"host\",\"rtt_ms\":110,\"tracks\":[{\"sid\":\"TR_v\",\"kind\":\"video\",\"bytes\":"
      "1100000,"
      "\"packets\":1100,\"lost\":120,\"freezes\":1,\"freeze_ms\":400,\"watched_ms\":9000,\"frames_decoded\":"
      "260},"
      "{\"sid\":\"TR_a\",\"kind\":\"audio\",\"packets\":450,\"concealed\":9600,\"samples\":432000}]}",
      "{\"candidate\":\"host\",\"rtt_ms\":90,\"tracks\":[{\"sid\":\"TR_v\",\"kind\":\"video\",\"bytes\":"
      "1700000,"
      "\"packets\":1700,\"lost\":160,\"freezes\":3,\"freeze_ms\":1000,\"watched_ms\":14000,\"frames_"
      "decoded\":390},"
      "{\"sid\":\"TR_a\",\"kind\":\"audio\",\"packets\":700,\"concealed\":24000,\"samples\":672000}]}",
  };
  for (int i = 0; i < 3; i++)
    assert_int_equal(msg(c, "quality_report", reports[i], HD_SEC(100 + 5 * i), 1000000 + 5000 * i, err), 0);
  assert_int_equal(s.n, 6);
  uint64_t freezes = 0, frozen = 0, watched = 0, concealed = 0, samples = 0;
  for (size_t i = 0; i < s.n; i++) {
    const hd_qclient_t *q = &s.rows[i].u.client;
    assert_int_equal(s.rows[i].kind, HD_QROW_CLIENT);
    assert_string_equal(s.rows[i].k.room_sid, "RM_1");
    freezes += q->freezes, frozen += q->freeze_ms, watched += q->watched_ms;
    concealed += q->concealed_samples, samples += q->total_samples;
  }
  assert_int_equal(freezes, 3);
  assert_int_equal(frozen, 1000);
  assert_int_equal(watched, 14000);
  assert_int_equal(concealed, 24000);
  assert_int_equal(samples, 672000);
  /* the second video interval: 600000 bytes in 5 s */
  assert_int_equal(s.rows[2].u.client.bitrate_bps, 960000);
  assert_int_equal(s.rows[2].u.client.interval_ms, 5000);
  char text[16384];
  int n = hd_qcollector_metrics_text(c, text, sizeof text);
  assert_true(n > 0);
  assert_non_null(strstr(text, "hudong_quality_video_frozen_seconds_total 1.000\n"));
  assert_non_null(strstr(text, "hudong_quality_video_freezes_total 3\n"));
  assert_non_null(strstr(text, "hudong_quality_rtt_seconds_count{source=\"client\"} 3\n"));
  assert_non_null(strstr(text, "hudong_quality_rtt_seconds_bucket{source=\"client\",le=\"0.1\"} 2\n"));
  assert_non_null(strstr(text, "hudong_quality_freeze_seconds_count 3\n"));

  /* join attempts: one within 1 s, one within 5 s, one later, one failed before the socket opened */
  assert_int_equal(
      msg(c, "quality_join",
          "{\"attempts\":[{\"id\":\"a\",\"room\":\"r1\",\"started_at\":990000,\"outcome\":\"ok\","
          "\"join_ms\":300,\"first_media_ms\":700},{\"id\":\"b\",\"started_at\":991000,\"outcome\":"
          "\"ok\",\"first_media_ms\":4000},{\"id\":\"c\",\"started_at\":992000,\"outcome\":\"ok\","
          "\"first_media_ms\":6000},{\"id\":\"d\",\"room\":\"other\",\"started_at\":900000,"
          "\"outcome\":\"failed\",\"reason\":\"WebSocket failed\"}]}",
          HD_SEC(200), 1100000, err),
      0);
  assert_int_equal(s.n, 10);
  assert_string_equal(s.rows[9].k.room, "other");
  assert_string_equal(s.rows[9].k.room_sid, ""); /* another room: not this call */
  assert_string_equal(s.rows[9].u.join.reason, "WebSocket failed");
  n = hd_qcollector_metrics_text(c, text, sizeof text);
  assert_non_null(strstr(text, "hudong_quality_join_attempts_total 4\n"));
  assert_non_null(strstr(text, "hudong_quality_join_success_total{within=\"5s\"} 2\n"));
  assert_non_null(strstr(text, "hudong_quality_join_success_total{within=\"1s\"} 1\n"));
  assert_non_null(strstr(text, "hudong_quality_join_seconds_bucket{le=\"1\"} 1\n"));
  hd_qcollector_free(c);
}

static void test_collector_caps(void **state) {
  (void)state;
  sink_t s = {0};
  hd_qcollector_t *c = mk(&s, 2); /* 2 rows per second, burst 4 */
  char err[256];
  const char *one =
      "{\"tracks\":[{\"sid\":\"TR_v\",\"kind\":\"video\"},{\"sid\":\"TR_a\",\"kind\":\"audio\"}]}";
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(100), 1, err), 0);
  /* too soon after the previous one */
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(100) + HD_MS(500), 2, err), HD_EAGAIN);
  assert_non_null(strstr(err, "at most one every 1000 ms"));
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(101), 3, err), 0);
  /* the node budget is spent (4 rows in 1 s, refilled 2) */
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(102), 4, err), 0);
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(103) + HD_MS(100), 5, err), 0);
  assert_int_equal(msg(c, "quality_report", one, HD_SEC(104) + HD_MS(200), 6, err), 0);
  json_t *big = json_loads("{\"tracks\":[]}", 0, NULL);
  for (int i = 0; i < 16; i++)
    json_array_append_new(json_object_get(big, "tracks"),
                          json_pack("{s:s, s:s}", "sid", "TR_x", "kind", "video"));
  assert_int_equal(hd_qcollector_message(c, 7, "quality_report", big, HD_SEC(106), 7, err, sizeof err),
                   HD_ENOSPC);
  assert_non_null(strstr(err, "at most 2 quality rows per second"));
  json_decref(big);
  /* malformed input: a clear reason */
  assert_int_equal(msg(c, "quality_report",
                       "{\"tracks\":[{\"sid\":\"TR_v\",\"kind\":\"video\",\"packets\":-1}]}", HD_SEC(200), 8,
                       err),
                   HD_EPROTO);
  assert_non_null(strstr(err, "'packets' must be a non-negative number"));
  assert_int_equal(msg(c, "quality_report", "{\"tracks\":[{\"kind\":\"data\"}]}", HD_SEC(300), 9, err),
                   HD_EPROTO);
  /* join reports have their own pace */
  const char *j1 = "{\"attempts\":[{\"id\":\"x\",\"outcome\":\"ok\",\"started_at\":1}]}";
  assert_int_equal(msg(c, "quality_join", j1, HD_SEC(350), 10, err), 0);
  assert_int_equal(msg(c, "quality_join", j1, HD_SEC(350) + HD_MS(10), 10, err), HD_EAGAIN);
  assert_non_null(strstr(err, "quality_join too frequent"));
  assert_int_equal(msg(c, "quality_join",
                       "{\"attempts\":[{\"id\":\"x\",\"outcome\":\"maybe\",\"started_at\":1}]}", HD_SEC(400),
                       10, err),
                   HD_EPROTO);
  assert_non_null(strstr(err, "outcome"));
  /* before join */
  json_t *o = json_loads(one, 0, NULL);
  assert_int_equal(hd_qcollector_message(c, 8, "quality_report", o, HD_SEC(500), 11, err, sizeof err),
                   HD_ESTATE);
  /* a full store queue is an error the client sees */
  s.refuse = 1;
  assert_int_equal(hd_qcollector_message(c, 7, "quality_report", o, HD_SEC(600), 12, err, sizeof err),
                   HD_ENOSPC);
  assert_non_null(strstr(err, "queue is full"));
  json_decref(o);
  hd_qcollector_stats_t st;
  hd_qcollector_stats(c, &st);
  assert_int_equal(st.refused_rate, 2);
  assert_int_equal(st.refused_budget, 1);
  assert_int_equal(st.refused_bad, 3);
  assert_int_equal(st.refused_state, 1);
  hd_qcollector_free(c);
}

static void test_collector_node_samples(void **state) {
  (void)state;
  sink_t s = {0};
  hd_qcollector_t *c = mk(&s, 0);
  hd_node_qsample_t q[2];
  memset(q, 0, sizeof q);
  for (int i = 0; i < 2; i++) {
    snprintf(q[i].app, sizeof q[i].app, "app1");
    snprintf(q[i].room_sid, sizeof q[i].room_sid, "RM_1");
    snprintf(q[i].psid, sizeof q[i].psid, "PA_b");
    snprintf(q[i].track_sid, sizeof q[i].track_sid, "TR_v");
    q[i].video = 1;
  }
  q[1].down = 1;
  q[0].packets = 1000, q[0].lost = 100, q[0].lost_after = 2, q[0].bytes = 100000;
  q[1].packets = 900, q[1].loss_frac = 0.1, q[1].rtt_ms = 100;
  hd_qcollector_node(c, q, 2, HD_SEC(100), 10000);
  hd_qcollector_node_round_end(c);
  assert_int_equal(s.n, 0); /* a first sample is a baseline */
  q[0].packets = 1500, q[0].lost = 160, q[0].lost_after = 3, q[0].bytes = 725000;
  q[1].packets = 1400;
  hd_qcollector_node(c, q, 2, HD_SEC(105), 15000);
  hd_qcollector_node_round_end(c);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.rows[0].u.node.dir, "up");
  assert_int_equal(s.rows[0].u.node.packets, 500);
  assert_int_equal(s.rows[0].u.node.lost, 60);
  assert_int_equal(s.rows[0].u.node.lost_after_repair, 1);
  assert_int_equal(s.rows[0].u.node.bitrate_bps, 1000000);
  assert_int_equal(s.rows[1].u.node.lost, 50);
  assert_true(s.rows[1].u.node.rtt_ms == 100);
  /* a leg missing from a round is forgotten: it starts over as a baseline */
  hd_qcollector_node(c, q, 1, HD_SEC(110), 20000);
  hd_qcollector_node_round_end(c);
  hd_qcollector_node(c, q, 2, HD_SEC(115), 25000);
  hd_qcollector_node_round_end(c);
  assert_int_equal(s.n, 4); /* the up leg twice more, the down leg only as a new baseline */
  hd_qcollector_free(c);
}

static void test_alert_rules(void **state) {
  (void)state;
  hd_qrule_t r = {.metric = HD_QM_VIDEO_STALL,
                  .threshold = 0.05,
                  .window = HD_SEC(10),
                  .windows = 2,
                  .silence = HD_SEC(60),
                  .min_den = 1000};
  snprintf(r.name, sizeof r.name, "stall");
  hd_qalerts_t a;
  assert_int_equal(hd_qalerts_init(&a, &r, 1, 0), 0);
  hd_qfired_t f[4];
  /* window 1: 10% stall; window 2: 10% again -> fires at its end */
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(10), f, 4), 0);
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  hd_qalerts_feed(&a, "app2", HD_QM_VIDEO_STALL, 0, 10000); /* another app, fine */
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(20), f, 4), 1);
  assert_string_equal(f[0].app, "app1");
  assert_true(f[0].value == 0.1);
  /* still bad, but silenced for 60 s (until 80 s) */
  for (int w = 3; w <= 7; w++) {
    hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
    assert_int_equal(hd_qalerts_poll(&a, HD_SEC(10 * w), f, 4), 0);
  }
  /* still bad when the silence ends: it fires again */
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(80), f, 4), 1);
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(90), f, 4), 0);
  /* the second bad window in a row (empty windows between are not judged), silence over */
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(200), f, 4), 1);
  /* a good window breaks the streak; too little data is not judged */
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(205), f, 4), 0);
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 0, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(210), f, 4), 0);
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 100, 500);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(220), f, 4), 0);
  hd_qalerts_feed(&a, "app1", HD_QM_VIDEO_STALL, 1000, 10000);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(230), f, 4), 0);
  assert_true(hd_qalerts_next_timeout(&a) == HD_SEC(240));
  /* join success fires below its threshold */
  hd_qrule_t j = {
      .metric = HD_QM_JOIN_SUCCESS, .below = 1, .threshold = 0.9, .window = HD_SEC(60), .windows = 1};
  assert_int_equal(hd_qalerts_init(&a, &j, 1, 0), 0);
  hd_qalerts_feed(&a, "app1", HD_QM_JOIN_SUCCESS, 8, 10);
  assert_int_equal(hd_qalerts_poll(&a, HD_SEC(60), f, 4), 1);
  assert_int_equal(hd_qmetric_parse("join_success_rate"), HD_QM_JOIN_SUCCESS);
  assert_int_equal(hd_qmetric_parse("nope"), -1);
  hd_qrule_t bad = {.metric = HD_QM_RTT_MS, .window = 0, .windows = 1};
  assert_int_equal(hd_qalerts_init(&a, &bad, 1, 0), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_freeze_rule_timeline),   cmocka_unit_test(test_delta_and_reset),
      cmocka_unit_test(test_collector_timeline),     cmocka_unit_test(test_collector_caps),
      cmocka_unit_test(test_collector_node_samples), cmocka_unit_test(test_alert_rules),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
