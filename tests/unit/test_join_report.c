/* Join attempt reports of the C clients (src/client/join_report.h, issue 14
 * item 7 "a join-success figure under load"): the text the node's own parser
 * takes (src/quality/report.h hd_qjoins_parse, field by field), the refusals,
 * and the tally with the node API's definition at its 1 s / 5 s edges. */
#include "hd_test.h"

#include <jansson.h>

#include "base/err.h"
#include "client/join_report.h"
#include "quality/report.h"

static hd_join_attempt_t att(const char *id, int ok, int64_t join_ms, int64_t media_ms) {
  hd_join_attempt_t a;
  memset(&a, 0, sizeof a);
  snprintf(a.id, sizeof a.id, "%s", id);
  snprintf(a.room, sizeof a.room, "load-0");
  a.started_at_ms = INT64_C(1800000000000);
  a.ok = ok;
  if (!ok) snprintf(a.reason, sizeof a.reason, "signaling error 403 \"forbidden\"");
  a.join_ms = join_ms;
  a.first_media_ms = media_ms;
  return a;
}

static void test_node_parses_it(void **st) {
  hd_join_attempt_t a[3] = {att("ja_1", 1, 40, 900), att("ja_2", 0, -1, -1), att("ja_3", 1, 60, 5000)};
  char buf[4096];
  int n = hd_join_report_json(a, 3, "qj", buf, sizeof buf);
  assert_true(n > 0);
  json_error_t je;
  json_t *o = json_loads(buf, 0, &je);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "type")), "quality_join");
  assert_string_equal(json_string_value(json_object_get(o, "id")), "qj");
  hd_qjoins_t j;
  char err[200] = "";
  assert_int_equal(hd_qjoins_parse(o, &j, err, sizeof err), 0);
  assert_int_equal(j.n, 3);
  assert_string_equal(j.a[0].id, "ja_1");
  assert_string_equal(j.a[0].room, "load-0");
  assert_string_equal(j.a[0].outcome, "ok");
  assert_int_equal(j.a[0].started_at, INT64_C(1800000000000));
  assert_int_equal(j.a[0].join_ms, 40);
  assert_int_equal(j.a[0].first_media_ms, 900);
  assert_string_equal(j.a[1].outcome, "failed");
  assert_string_equal(j.a[1].reason, "signaling error 403 \"forbidden\"");
  assert_int_equal(j.a[1].join_ms, -1);
  assert_int_equal(j.a[1].first_media_ms, -1);
  assert_int_equal(j.a[2].first_media_ms, 5000);
  json_decref(o);
}

static void test_refusals(void **st) {
  hd_join_attempt_t a[HD_JOIN_REPORT_MAX + 1];
  for (int i = 0; i <= HD_JOIN_REPORT_MAX; i++)
    a[i] = att("ja_x", 1, 1, 1);
  char buf[16384];
  assert_int_equal(hd_join_report_json(a, 0, NULL, buf, sizeof buf), HD_EINVAL);
  assert_int_equal(hd_join_report_json(a, HD_JOIN_REPORT_MAX + 1, NULL, buf, sizeof buf), HD_EINVAL);
  assert_true(hd_join_report_json(a, HD_JOIN_REPORT_MAX, NULL, buf, sizeof buf) > 0);
  assert_int_equal(hd_join_report_json(a, 2, NULL, buf, 40), HD_ENOSPC);
  a[0].id[0] = 0;
  assert_int_equal(hd_join_report_json(a, 1, NULL, buf, sizeof buf), HD_EINVAL);
  a[0] = att("ja_y", 1, 1, 1);
  a[0].started_at_ms = 0;
  assert_int_equal(hd_join_report_json(a, 1, NULL, buf, sizeof buf), HD_EINVAL);
}

static void test_tally_edges(void **st) {
  hd_join_tally_t t = {0};
  hd_join_attempt_t a[] = {att("a", 1, 10, 1000), att("b", 1, 10, 1001), att("c", 1, 10, 5000),
                           att("d", 1, 10, 5001), att("e", 1, 10, -1),   att("f", 0, -1, -1)};
  for (size_t i = 0; i < sizeof a / sizeof a[0]; i++)
    hd_join_tally_add(&t, &a[i]);
  assert_int_equal(t.attempts, 6);
  assert_int_equal(t.succeeded_1s, 1);
  assert_int_equal(t.succeeded_5s, 3);
  assert_int_equal(t.failed, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_parses_it),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_tally_edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
