/* The quality store (src/quality/store.h): one suite run against SQLite and
 * against a real PostgreSQL server started here (tests/support/pg_server.h):
 * the same rows in, the same answers out, tenants kept apart, retention. */
#include "hd_test.h"

#include <jansson.h>
#include <math.h>
#include <unistd.h>

#include "base/err.h"
#include "support/pg_server.h"
#include "quality/store.h"
#include "quality/writer.h"

#define T0 INT64_C(1800000000000) /* unix ms */

static hd_qrow_t key(int kind, const char *app, const char *id, const char *psid, int64_t ts) {
  hd_qrow_t r;
  memset(&r, 0, sizeof r);
  r.kind = kind;
  r.k.ts = ts;
  snprintf(r.k.app, sizeof r.k.app, "%s", app);
  snprintf(r.k.room, sizeof r.k.room, "r1");
  snprintf(r.k.room_sid, sizeof r.k.room_sid, "RM_1");
  snprintf(r.k.identity, sizeof r.k.identity, "%s", id);
  snprintf(r.k.participant_sid, sizeof r.k.participant_sid, "%s", psid);
  return r;
}

static hd_qrow_t video(const char *id, const char *psid, int64_t ts, int64_t freezes, int64_t freeze_ms,
                       int64_t watched, double rtt) {
  hd_qrow_t r = key(HD_QROW_CLIENT, "a1", id, psid, ts);
  snprintf(r.u.client.track_sid, sizeof r.u.client.track_sid, "TR_v");
  snprintf(r.u.client.kind, sizeof r.u.client.kind, "video");
  snprintf(r.u.client.candidate, sizeof r.u.client.candidate, "host");
  r.u.client.interval_ms = 5000;
  r.u.client.freezes = freezes, r.u.client.freeze_ms = freeze_ms, r.u.client.watched_ms = watched;
  r.u.client.packets = 900, r.u.client.lost = 100;
  r.u.client.jb_delay_ms = 40, r.u.client.rtt_ms = rtt;
  return r;
}

static hd_qrow_t join(const char *id, int64_t ts, const char *outcome, int64_t first_ms) {
  hd_qrow_t r = key(HD_QROW_JOIN, "a1", id, "", ts);
  snprintf(r.u.join.attempt_id, sizeof r.u.join.attempt_id, "ja_%lld", (long long)ts);
  snprintf(r.u.join.outcome, sizeof r.u.join.outcome, "%s", outcome);
  r.u.join.join_ms = first_ms >= 0 ? first_ms / 2 : -1;
  r.u.join.first_media_ms = first_ms;
  return r;
}

static hd_qrow_t node(const char *id, const char *psid, int64_t ts, const char *dir, int64_t packets,
                      int64_t lost, int64_t after, double rtt) {
  hd_qrow_t r = key(HD_QROW_NODE, "a1", id, psid, ts);
  snprintf(r.u.node.dir, sizeof r.u.node.dir, "%s", dir);
  snprintf(r.u.node.track_sid, sizeof r.u.node.track_sid, "TR_v");
  snprintf(r.u.node.kind, sizeof r.u.node.kind, "video");
  r.u.node.interval_ms = 5000, r.u.node.packets = packets, r.u.node.lost = lost,
  r.u.node.lost_after_repair = after;
  r.u.node.bitrate_bps = 800000, r.u.node.rtt_ms = rtt, r.u.node.jitter_ms = -1;
  return r;
}

static double dnum(json_t *o, const char *path) {
  json_t *v = o;
  char buf[128];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
    v = json_object_get(v, k);
  if (!json_is_number(v)) {
    fprintf(stderr, "%s is not a number\n", path);
    fail();
  }
  return json_number_value(v);
}

static void suite(const char *url) {
  hd_qstore_t *s = NULL;
  char err[256] = "";
  int rc = hd_qstore_open(&s, url, err, sizeof err);
  if (rc < 0) fprintf(stderr, "open %s: %s\n", url, err);
  assert_int_equal(rc, 0);
  hd_qrow_t rows[32];
  size_t n = 0;
  rows[n++] = video("bob", "PA_b", T0 + 5000, 1, 500, 5000, 100);
  rows[n++] = video("bob", "PA_b", T0 + 10000, 0, 0, 5000, 120);
  rows[n++] = video("bob", "PA_b", T0 + 15000, 2, 300, 5000, 110);
  rows[n++] = video("alice", "PA_a", T0 + 5000, 0, 0, 5000, 2);
  hd_qrow_t au = key(HD_QROW_CLIENT, "a1", "alice", "PA_a", T0 + 5000);
  snprintf(au.u.client.track_sid, sizeof au.u.client.track_sid, "TR_a");
  snprintf(au.u.client.kind, sizeof au.u.client.kind, "audio");
  au.u.client.concealed_samples = 4800, au.u.client.total_samples = 240000, au.u.client.jb_delay_ms = -1,
  au.u.client.rtt_ms = -1;
  rows[n++] = au;
  rows[n++] = join("bob", T0 + 1000, "ok", 800);
  rows[n++] = join("bob", T0 + 2000, "ok", 3000);
  rows[n++] = join("alice", T0 + 3000, "ok", 7000);
  rows[n++] = join("alice", T0 + 500, "failed", -1);
  rows[n++] = node("bob", "PA_b", T0 + 5000, "up", 1000, 100, 5, -1);
  rows[n++] = node("bob", "PA_b", T0 + 5000, "down", 1000, 0, -1, 100);
  rows[n++] = node("alice", "PA_a", T0 + 5000, "down", 1000, 0, -1, 120);
  hd_qrow_t ev = key(HD_QROW_EVENT, "a1", "bob", "PA_b", T0);
  snprintf(ev.u.event.type, sizeof ev.u.event.type, "joined");
  rows[n++] = ev;
  hd_qrow_t al = key(HD_QROW_ALERT, "a1", "", "", T0 + 20000);
  snprintf(al.u.alert.rule, sizeof al.u.alert.rule, "stall");
  snprintf(al.u.alert.metric, sizeof al.u.alert.metric, "video_stall_rate");
  al.u.alert.value = 0.05, al.u.alert.threshold = 0.02, al.u.alert.window_s = 60;
  rows[n++] = al;
  /* RTM delivery per app (issue 14 item 1): 27 acked at 20 ms, 3 given up; then 10 at 80 ms */
  hd_qrow_t d1 = key(HD_QROW_DELIVERY, "a1", "", "", T0 + 5000);
  d1.u.delivery = (hd_qdelivery_t){.interval_ms = 5000,
                                   .sent = 10,
                                   .owed = 30,
                                   .acked = 27,
                                   .overflow = 1,
                                   .gone = 1,
                                   .expired = 1,
                                   .lat_sum_us = 27 * 20000};
  d1.u.delivery.lat[1] = 27;
  rows[n++] = d1;
  hd_qrow_t d2 = key(HD_QROW_DELIVERY, "a1", "", "", T0 + 15000);
  d2.u.delivery =
      (hd_qdelivery_t){.interval_ms = 5000, .sent = 5, .owed = 10, .acked = 10, .lat_sum_us = 10 * 80000};
  d2.u.delivery.lat[3] = 10;
  rows[n++] = d2;
  hd_qrow_t d3 = key(HD_QROW_DELIVERY, "a2", "", "", T0 + 5000);
  d3.u.delivery = (hd_qdelivery_t){.interval_ms = 5000, .sent = 99, .owed = 99, .acked = 99};
  d3.u.delivery.lat[0] = 99;
  rows[n++] = d3;
  /* another tenant, same room and call names: never in a1's answers */
  hd_qrow_t other = video("bob", "PA_b", T0 + 5000, 50, 50000, 5000, 999);
  snprintf(other.k.app, sizeof other.k.app, "a2");
  rows[n++] = other;
  /* an old row for the retention */
  rows[n] = video("old", "PA_o", T0 - 86400000, 0, 0, 5000, 1);
  snprintf(rows[n++].k.room_sid, sizeof rows[0].k.room_sid, "RM_old");
  /* through the writer thread, as the node does */
  hd_qwriter_t *w = NULL;
  assert_int_equal(hd_qwriter_start(&w, s, &(hd_qwriter_config_t){.batch = 4}), 0);
  assert_int_equal(hd_qwriter_push(w, rows, n), (int)n);
  assert_int_equal(hd_qwriter_flush(w, 60000), 0);
  hd_qwriter_stats_t st;
  hd_qwriter_stats(w, &st);
  assert_int_equal(st.written, n);
  assert_int_equal(st.failed, 0);
  hd_qwriter_stop(w);

  json_t *sum = hd_qstore_summary(s, "a1", T0, T0 + 60000, 10000);
  assert_non_null(sum);
  assert_int_equal((int)dnum(sum, "join.attempts"), 4);
  assert_int_equal((int)dnum(sum, "join.succeeded_5s"), 2);
  assert_int_equal((int)dnum(sum, "join.succeeded_1s"), 1);
  assert_int_equal((int)dnum(sum, "join.failed"), 1);
  assert_true(dnum(sum, "join.success_rate_5s") == 0.5);
  assert_int_equal((int)dnum(sum, "stall.video_frozen_ms"), 800);
  assert_int_equal((int)dnum(sum, "stall.video_watched_ms"), 20000);
  assert_true(dnum(sum, "stall.video_stall_rate") == 0.04);
  assert_int_equal((int)dnum(sum, "stall.freezes"), 3);
  assert_true(dnum(sum, "stall.audio_stall_rate") == 0.02);
  assert_true(dnum(sum, "latency.client_rtt_ms") > 82.9 && dnum(sum, "latency.client_rtt_ms") < 83.1);
  assert_true(dnum(sum, "latency.node_downlink_rtt_ms") == 110);
  assert_int_equal((int)dnum(sum, "network.uplink_lost_after_repair"), 5);
  assert_int_equal((int)dnum(sum, "delivery.sent"), 15);
  assert_int_equal((int)dnum(sum, "delivery.owed"), 40);
  assert_int_equal((int)dnum(sum, "delivery.delivered"), 37);
  assert_int_equal((int)dnum(sum, "delivery.given_up"), 3);
  assert_int_equal((int)dnum(sum, "delivery.given_up_expired"), 1);
  assert_true(dnum(sum, "delivery.delivery_rate") == 37.0 / 40);
  assert_true(fabs(dnum(sum, "delivery.latency_ms.mean") - 1340.0 / 37) < 1e-6);
  assert_true(fabs(dnum(sum, "delivery.latency_ms.p50") - (10 + 15 * 18.5 / 27)) < 1e-6);
  assert_true(fabs(dnum(sum, "delivery.latency_ms.p95") - (50 + 50 * (0.95 * 37 - 27) / 10)) < 1e-6);
  json_t *series = json_object_get(sum, "series");
  assert_int_equal(json_array_size(series), 2); /* buckets T0 and T0 + 10 s */
  assert_true(dnum(json_array_get(series, 0), "video_stall_rate") == 500.0 / 10000);
  assert_true(dnum(json_array_get(series, 0), "delivery_rate") == 0.9);
  assert_true(dnum(json_array_get(series, 1), "delivery_rate") == 1.0);
  assert_true(dnum(json_array_get(series, 1), "delivery_latency_ms") == 80.0);
  json_decref(sum);

  json_t *calls = hd_qstore_calls(s, "a1", T0 - 1000, T0 + 60000, 10);
  assert_non_null(calls);
  json_t *c0 = json_array_get(json_object_get(calls, "calls"), 0);
  assert_string_equal(json_string_value(json_object_get(c0, "room_sid")), "RM_1");
  assert_int_equal((int)dnum(c0, "participants"), 2);
  assert_int_equal((int)dnum(c0, "stall.video_frozen_ms"), 800);
  json_decref(calls);

  json_t *call = hd_qstore_call(s, "a1", "RM_1");
  assert_non_null(call);
  json_t *ppl = json_object_get(call, "participants");
  assert_int_equal(json_array_size(ppl), 2);
  json_t *bob = NULL;
  for (size_t i = 0; i < json_array_size(ppl); i++)
    if (!strcmp(json_string_value(json_object_get(json_array_get(ppl, i), "identity")), "bob"))
      bob = json_array_get(ppl, i);
  assert_non_null(bob);
  assert_int_equal((int)dnum(bob, "stall.freezes"), 3);
  assert_int_equal(json_array_size(json_object_get(bob, "joins")), 2);
  assert_int_equal(json_array_size(json_object_get(bob, "events")), 1);
  json_t *tracks = json_object_get(bob, "tracks");
  size_t client_points = 0;
  for (size_t i = 0; i < json_array_size(tracks); i++) {
    json_t *t = json_array_get(tracks, i);
    if (!strcmp(json_string_value(json_object_get(t, "source")), "client"))
      client_points += json_array_size(json_object_get(t, "points"));
  }
  assert_int_equal(client_points, 3);
  json_decref(call);
  assert_null(hd_qstore_call(s, "a2", "RM_404"));

  json_t *user = hd_qstore_user(s, "a1", "bob", T0 - 1000, T0 + 60000);
  assert_non_null(user);
  assert_int_equal((int)dnum(user, "join.attempts"), 2);
  assert_int_equal(json_array_size(json_object_get(user, "calls")), 1);
  json_decref(user);

  json_t *worst = hd_qstore_worst(s, "a1", T0 - 1000, T0 + 60000, 5);
  assert_non_null(worst);
  json_t *w0 = json_array_get(json_object_get(worst, "sessions"), 0);
  assert_string_equal(json_string_value(json_object_get(w0, "identity")), "bob");
  json_decref(worst);

  json_t *alerts = hd_qstore_alerts(s, "a1", T0, T0 + 60000);
  assert_int_equal(json_array_size(json_object_get(alerts, "alerts")), 1);
  json_decref(alerts);

  /* the other tenant sees its own row only */
  sum = hd_qstore_summary(s, "a2", T0, T0 + 60000, 10000);
  assert_int_equal((int)dnum(sum, "stall.freezes"), 50);
  assert_int_equal((int)dnum(sum, "join.attempts"), 0);
  assert_int_equal((int)dnum(sum, "delivery.sent"), 99);
  json_decref(sum);

  /* retention: only the day-old row goes */
  assert_int_equal(hd_qstore_prune(s, T0 - 3600000), 1);
  hd_qstore_close(s);
}

static void test_sqlite(void **state) {
  (void)state;
  char path[] = "/tmp/hdq.XXXXXX";
  assert_non_null(mkdtemp(path));
  char db[64];
  snprintf(db, sizeof db, "%s/q.db", path);
  suite(db);
  /* reopening an existing file keeps the schema and the rows */
  hd_qstore_t *s = NULL;
  char err[128];
  assert_int_equal(hd_qstore_open(&s, db, err, sizeof err), 0);
  json_t *sum = hd_qstore_summary(s, "a1", T0, T0 + 60000, 10000);
  assert_int_equal((int)dnum(sum, "join.attempts"), 4);
  json_decref(sum);
  hd_qstore_close(s);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", path);
  assert_int_equal(system(cmd), 0);
}

static void test_postgres(void **state) {
  (void)state;
  hd_pg_server_t pg;
  char why[256];
  if (hd_pg_server_start(&pg, why, sizeof why) < 0) {
    hd_pg_server_stop(&pg);
    fprintf(stderr, "SKIP PostgreSQL half of the store suite: %s\n", why);
    skip();
  }
  suite(pg.url);
  hd_pg_server_stop(&pg);
}

static void test_bad_url(void **state) {
  (void)state;
  hd_qstore_t *s = NULL;
  char err[256] = "";
  /* nothing listens on port 1 */
  assert_int_equal(
      hd_qstore_open(&s, "postgres://hd@127.0.0.1:1/postgres?connect_timeout=2", err, sizeof err), HD_EIO);
  assert_non_null(strstr(err, "cannot connect"));
  assert_int_equal(hd_qstore_open(&s, "/nonexistent-dir/q.db", err, sizeof err), HD_EIO);
  assert_non_null(strstr(err, "cannot open"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sqlite),
      cmocka_unit_test(test_postgres),
      cmocka_unit_test(test_bad_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
