/* Tests for the C SDK's quality_report builder (src/client/quality_report.{h,c}):
 * remote tracks the node named, in the fields docs/quality.md gives, counters
 * as they are (cumulative); local and unnamed tracks left out. */
#include "hd_test.h"

#include <jansson.h>

#include "client/quality_report.h"

static void test_report(void **st) {
  (void)st;
  static hd_client_stats_t s;
  memset(&s, 0, sizeof s);
  static char out[8192];
  assert_int_equal(hd_quality_report_json(&s, out, sizeof out), 0); /* nothing to report */
  s.n_tracks = 4;
  hd_client_track_stats_t *v = &s.tracks[0], *a = &s.tracks[1], *l = &s.tracks[2], *u = &s.tracks[3];
  snprintf(v->track_sid, sizeof v->track_sid, "TR_v");
  v->kind = HD_CLIENT_VIDEO;
  v->packets = 900;
  v->packets_lost = 12;
  v->freeze_count = 2;
  v->total_freezes_duration = 0.75;
  v->total_watched = 30.0;
  v->frames_decoded = 880;
  v->frames_dropped = 3;
  v->jitter_buffer_delay = 44.0;
  v->jitter_buffer_emitted_count = 880;
  v->round_trip_time = 0.052;
  snprintf(a->track_sid, sizeof a->track_sid, "TR_a");
  a->kind = HD_CLIENT_AUDIO;
  a->packets = 1500;
  a->audio.concealed_samples = 4800;
  a->audio.total_samples_received = 1440000;
  a->round_trip_time = -1;
  snprintf(l->track_sid, sizeof l->track_sid, "TR_local");
  l->kind = HD_CLIENT_VIDEO;
  l->local = 1;
  u->kind = HD_CLIENT_AUDIO; /* not named by the node yet */
  int n = hd_quality_report_json(&s, out, sizeof out);
  assert_true(n > 0);
  json_t *m = json_loads(out, 0, NULL);
  assert_non_null(m);
  assert_string_equal(json_string_value(json_object_get(m, "type")), "quality_report");
  assert_int_equal(json_integer_value(json_object_get(m, "rtt_ms")), 52);
  json_t *t = json_object_get(m, "tracks");
  assert_int_equal(json_array_size(t), 2);
  json_t *tv = json_array_get(t, 0), *ta = json_array_get(t, 1);
  assert_string_equal(json_string_value(json_object_get(tv, "sid")), "TR_v");
  assert_int_equal(json_integer_value(json_object_get(tv, "freezes")), 2);
  assert_int_equal(json_integer_value(json_object_get(tv, "freeze_ms")), 750);
  assert_int_equal(json_integer_value(json_object_get(tv, "watched_ms")), 30000);
  assert_int_equal(json_integer_value(json_object_get(tv, "lost")), 12);
  assert_string_equal(json_string_value(json_object_get(ta, "kind")), "audio");
  assert_int_equal(json_integer_value(json_object_get(ta, "concealed")), 4800);
  assert_int_equal(json_integer_value(json_object_get(ta, "samples")), 1440000);
  assert_null(json_object_get(ta, "freezes"));
  json_decref(m);
  char small[32];
  assert_true(hd_quality_report_json(&s, small, sizeof small) < 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_report)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
