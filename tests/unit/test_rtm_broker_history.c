/* RTM broker (src/rtm/broker.h), channel history and its stores, on a
 * virtual clock (tests/support/rtm_world.h): hist queries and cursors, pages
 * that fit the window, the exact history_keep cap, per-app storage quotas,
 * the SQLite store's disk floor, usage and upgrade of an older database. */
#include "hd_test.h"

#include <sqlite3.h>
#include <unistd.h>

#include "base/err.h"
#include "rtm/broker.h"
#include "support/rtm_world.h"

static void test_history(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  for (int i = 0; i < 10; i++) {
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"h\",\"data\":\"%d\",\"store\":%s}", i, i % 2 ? "true" : "false");
    now += HD_SEC(1);
  }
  feed(b, 1, "{\"type\":\"hist\",\"id\":\"a\",\"ch\":\"h\",\"limit\":3}");
  json_t *ok = nth(1, "ok", 10);
  json_t *m = json_object_get(ok, "msgs");
  assert_int_equal(json_array_size(m), 3);
  assert_int_equal(ival(json_array_get(m, 0), "cseq"), 6);
  assert_int_equal(ival(json_array_get(m, 2), "cseq"), 10);
  json_decref(ok);
  feed(b, 1, "{\"type\":\"hist\",\"id\":\"b\",\"ch\":\"h\",\"after\":4,\"limit\":2}");
  ok = nth(1, "ok", 11);
  m = json_object_get(ok, "msgs");
  assert_int_equal(json_array_size(m), 2);
  assert_int_equal(ival(json_array_get(m, 0), "cseq"), 6);
  assert_true(json_is_true(json_object_get(ok, "more")));
  json_decref(ok);
  int64_t t0 = 1700000000LL * 1000 + 1000 * 1000 + 8000; /* wall ms of the 9th publish (not stored) */
  feed(b, 1, "{\"type\":\"hist\",\"id\":\"c\",\"ch\":\"h\",\"since\":%lld}", (long long)t0);
  ok = nth(1, "ok", 12);
  m = json_object_get(ok, "msgs");
  assert_int_equal(json_array_size(m), 1);
  assert_int_equal(ival(json_array_get(m, 0), "cseq"), 10);
  json_decref(ok);
  hd_rtm_broker_free(b);
  /* the channel sequence continues above everything assigned before a restart */
  b = mk(0, 0);
  login(b, 2, "alice", 0);
  feed(b, 2, "{\"type\":\"pub\",\"ch\":\"h\",\"data\":\"after\"}");
  ok = nth(2, "ok", 0);
  assert_true(ival(ok, "cseq") > 10);
  json_decref(ok);
  hd_rtm_broker_free(b);
}

/* Issue 12 item 5: after:0 is a cursor (from the first message), not "not given". */
static void test_hist_after_zero(void **st) {
  hd_rtm_broker_t *b = mk(0, 1000);
  login(b, 1, "alice", 0);
  for (int i = 1; i <= 150; i++) {
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"g\",\"data\":\"m%d\",\"store\":true}", i);
    if (i % 50 == 0) ack_all(b, 1);
  }
  ack_all(b, 1);
  json_t *ok = req(b, 1, "{\"type\":\"hist\",\"id\":\"h\",\"ch\":\"g\",\"after\":0,\"limit\":100}");
  json_t *m = json_object_get(ok, "msgs");
  assert_int_equal(json_array_size(m), 100);
  assert_int_equal(ival(json_array_get(m, 0), "cseq"), 1);
  assert_int_equal(ival(json_array_get(m, 99), "cseq"), 100);
  assert_true(json_is_true(json_object_get(ok, "more")));
  assert_int_equal(ival(ok, "next"), 100);
  json_decref(ok);
  ok = req(b, 1, "{\"type\":\"hist\",\"id\":\"h2\",\"ch\":\"g\",\"after\":100,\"limit\":100}");
  m = json_object_get(ok, "msgs");
  assert_int_equal(json_array_size(m), 50);
  assert_int_equal(ival(json_array_get(m, 0), "cseq"), 101);
  assert_false(json_is_true(json_object_get(ok, "more")));
  json_decref(ok);
  /* since:0 is a cursor too: from the oldest; no cursor: the newest */
  ok = req(b, 1, "{\"type\":\"hist\",\"id\":\"h3\",\"ch\":\"g\",\"since\":0,\"limit\":10}");
  assert_int_equal(ival(json_array_get(json_object_get(ok, "msgs"), 0), "cseq"), 1);
  json_decref(ok);
  ok = req(b, 1, "{\"type\":\"hist\",\"id\":\"h4\",\"ch\":\"g\",\"limit\":10}");
  assert_int_equal(ival(json_array_get(json_object_get(ok, "msgs"), 0), "cseq"), 141);
  json_decref(ok);
  ok = req(b, 1, "{\"type\":\"hist\",\"id\":\"h5\",\"ch\":\"g\",\"after\":0,\"since\":0}");
  assert_int_equal(ival(ok, "code"), 400);
  json_decref(ok);
  hd_rtm_broker_free(b);
}

/* Follows the pages of a refill from after = 0 as the bundled clients do
 * (ack, then ask with "next"); returns the messages received. */
static int follow_pages(hd_rtm_broker_t *b, uint64_t conn, const char *ch, int limit, int64_t *cseqs,
                        int cap) {
  int64_t after = 0;
  int got = 0, pages = 0;
  for (;;) {
    ack_all(b, conn);
    json_t *ok = req(b, conn, "{\"type\":\"hist\",\"id\":\"p%d\",\"ch\":\"%s\",\"after\":%lld,\"limit\":%d}",
                     pages++, ch, (long long)after, limit);
    assert_non_null(ok);
    assert_string_equal(sval(ok, "type"), "ok");
    json_t *m = json_object_get(ok, "msgs");
    for (size_t i = 0; i < json_array_size(m) && got < cap; i++)
      cseqs[got++] = ival(json_array_get(m, i), "cseq");
    int more = json_is_true(json_object_get(ok, "more"));
    if (more) after = ival(ok, "next");
    json_decref(ok);
    if (!more || pages > 50) break;
  }
  return got;
}

/* Issue 12 item 4: 100 stored 30 KB messages, hist limit 100 / 70: paged replies that
 * fit the window (no 4008), and following the pages gets all 100 in order. */
static void test_hist_pages_fit_window(void **st) {
  hd_rtm_broker_t *b = mk(0, 1000);
  login(b, 1, "alice", 0);
  static char big[30 * 1024 + 1];
  memset(big, 'x', sizeof big - 1);
  for (int i = 0; i < 100; i++) {
    big[0] = (char)('a' + i % 26);
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"big\",\"data\":\"%s\",\"store\":true}", big);
    ack_all(b, 1);
  }
  int limits[2] = {100, 70};
  for (int k = 0; k < 2; k++) {
    reset_out();
    int64_t cs[200];
    int n = follow_pages(b, 1, "big", limits[k], cs, 200);
    assert_int_equal(n_close, 0); /* never 4008 */
    assert_int_equal(n, 100);
    for (int i = 0; i < n; i++)
      assert_int_equal(cs[i], i + 1);
    for (int i = 0; i < n_out; i++) /* each reply at most half the window */
      assert_true(strlen(outs[i].text) <= HD_RTM_DEFAULT_WINDOW_BYTES / 2);
  }
  /* a window full of unacked messages: an empty page, more, next = the same cursor */
  login(b, 2, "bob", 0);
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"big\"}");
  for (int i = 0; i < 55; i++) /* 55 x 30 KB unacked in bob's window: 1.6 of 2 MiB */
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"big\",\"data\":\"%s\"}", big);
  json_t *ok = req(b, 2, "{\"type\":\"hist\",\"id\":\"f\",\"ch\":\"big\",\"after\":10}");
  assert_string_equal(sval(ok, "type"), "ok");
  assert_int_equal(json_array_size(json_object_get(ok, "msgs")), 0);
  assert_true(json_is_true(json_object_get(ok, "more")));
  assert_int_equal(ival(ok, "next"), 10);
  json_decref(ok);
  assert_false(closed_with(2, HD_RTM_CLOSE_OVERFLOW));
  ack_all(b, 2);
  ok = req(b, 2, "{\"type\":\"hist\",\"id\":\"g\",\"ch\":\"big\",\"after\":10}");
  assert_true(json_array_size(json_object_get(ok, "msgs")) > 0);
  assert_int_equal(ival(json_array_get(json_object_get(ok, "msgs"), 0), "cseq"), 11);
  json_decref(ok);
  hd_rtm_broker_free(b);
  /* a stored message no page of a small window can carry (control characters
   * escape to 6 bytes): 413 with next, and the page after it is served */
  hd_rtm_config_t c = {.window_bytes = 65536, .max_msg = 65536, .rate = 1000, .burst = 1000};
  b = mk_cfg(c);
  login(b, 3, "carol", 0);
  static char esc[6 * 6000 + 1];
  for (int i = 0; i < 6000; i++)
    memcpy(esc + 6 * i, "\\u0001", 6);
  feed(b, 3, "{\"type\":\"pub\",\"ch\":\"odd\",\"data\":\"%s\",\"store\":true}", esc);
  feed(b, 3, "{\"type\":\"pub\",\"ch\":\"odd\",\"data\":\"plain\",\"store\":true}");
  ack_all(b, 3);
  ok = req(b, 3, "{\"type\":\"hist\",\"id\":\"o\",\"ch\":\"odd\",\"after\":0}");
  assert_int_equal(ival(ok, "code"), 413);
  assert_int_equal(ival(ok, "next"), 1);
  assert_non_null(strstr(sval(ok, "message"), "after=1"));
  json_decref(ok);
  ok = req(b, 3, "{\"type\":\"hist\",\"id\":\"p\",\"ch\":\"odd\",\"after\":1}");
  assert_string_equal(sval(json_array_get(json_object_get(ok, "msgs"), 0), "data"), "plain");
  json_decref(ok);
  assert_int_equal(n_close, 0);
  hd_rtm_broker_free(b);
}

/* Issue 12 item 6: per-app quotas on stored history stop growth; others unaffected. */
static void test_store_quota(void **st) {
  hd_rtm_config_t c = {.quota_channels = 5, .quota_bytes = 20000, .history_keep = 10};
  hd_rtm_broker_t *b = mk_cfg(c);
  login(b, 1, "alice", 0);
  json_t *e = login_tok(b, 2, token_x("app2", "bob", "", 0));
  json_decref(e);
  int refused = 0;
  for (int i = 0; i < 20; i++) { /* stored messages across channels: 5 get history, then 507 */
    json_t *r =
        req(b, 1, "{\"type\":\"pub\",\"id\":\"c%d\",\"ch\":\"ch%d\",\"data\":\"x\",\"store\":true}", i, i);
    if (!strcmp(sval(r, "type"), "error")) {
      assert_int_equal(ival(r, "code"), 507);
      assert_string_equal(sval(r, "reason"), "storage_full");
      assert_non_null(strstr(sval(r, "message"), "rtm.quota_channels"));
      refused++;
    }
    json_decref(r);
    ack_all(b, 1);
  }
  assert_int_equal(refused, 15);
  hd_rtm_usage_t u;
  assert_int_equal(store->ops->usage(store, "app", &u), 0);
  assert_int_equal(u.channels, 5);
  /* a refused publish is not published; without store it is */
  json_t *r = req(b, 1, "{\"type\":\"pub\",\"id\":\"ns\",\"ch\":\"ch9\",\"data\":\"x\"}");
  assert_string_equal(sval(r, "type"), "ok");
  json_decref(r);
  /* bytes: 1 KB messages into an existing channel until 20000 bytes */
  static char kb[1001];
  memset(kb, 'k', 1000);
  refused = 0;
  for (int i = 0; i < 40; i++) {
    r = req(b, 1, "{\"type\":\"pub\",\"id\":\"b%d\",\"ch\":\"ch%d\",\"data\":\"%s\",\"store\":true}", i,
            i % 5, kb);
    if (!strcmp(sval(r, "type"), "error")) {
      assert_int_equal(ival(r, "code"), 507);
      assert_non_null(strstr(sval(r, "message"), "rtm.quota_mb"));
      refused++;
    }
    json_decref(r);
    ack_all(b, 1);
  }
  assert_true(refused > 0);
  assert_int_equal(store->ops->usage(store, "app", &u), 0);
  assert_true(u.bytes <= 20000);
  int64_t stuck = u.bytes;
  for (int i = 0; i < 10; i++) {
    r = req(b, 1, "{\"type\":\"pub\",\"id\":\"z%d\",\"ch\":\"ch1\",\"data\":\"%s\",\"store\":true}", i, kb);
    json_decref(r);
    ack_all(b, 1);
  }
  assert_int_equal(store->ops->usage(store, "app", &u), 0);
  assert_int_equal(u.bytes, stuck); /* growth stopped */
  /* the other app stores as usual */
  for (int i = 0; i < 5; i++) {
    r = req(b, 2, "{\"type\":\"pub\",\"id\":\"o%d\",\"ch\":\"o%d\",\"data\":\"%s\",\"store\":true}", i, i,
            kb);
    assert_string_equal(sval(r, "type"), "ok");
    json_decref(r);
    ack_all(b, 2);
  }
  hd_rtm_stats_t sst;
  hd_rtm_stats(b, &sst);
  assert_true(sst.store_refused >= 16);
  hd_rtm_broker_free(b);
}

/* Issue 12 item 10: history keeps exactly history_keep messages per channel, in both stores. */
static void test_history_exact_cap(void **st) {
  hd_rtm_store_t *sq;
  char err[200];
  assert_int_equal(hd_rtm_store_sqlite_new(&sq, ":memory:", err, sizeof err), 0);
  hd_rtm_store_t *stores[2] = {store, sq};
  for (int k = 0; k < 2; k++) {
    hd_rtm_config_t c = {.store = stores[k], .rate = 100000, .burst = 100000};
    hd_rtm_broker_t *b = mk_cfg(c);
    login(b, 1, "alice", 0);
    for (int i = 1; i <= 1100; i++) {
      feed(b, 1, "{\"type\":\"pub\",\"ch\":\"cap\",\"data\":\"m%d\",\"store\":true}", i);
      ack_all(b, 1);
      if (n_out > MAXOUT - 100) reset_out();
    }
    int64_t cs[1200];
    int n = follow_pages(b, 1, "cap", 100, cs, 1200);
    assert_int_equal(n, HD_RTM_DEFAULT_HISTORY_KEEP);
    assert_int_equal(cs[0], 101);
    assert_int_equal(cs[n - 1], 1100);
    hd_rtm_broker_free(b);
    reset_out();
  }
  hd_rtm_store_free(sq);
}

/* Removes the SQLite database at path (with its -wal and -shm files) and
 * its folder dir. */
static void rm_db(const char *dir, const char *path) {
  char p[300];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
  rmdir(dir);
}

/* Issue 12 item 6: the SQLite store refuses stored appends under the disk floor and
 * keeps the usage it reports in step with trims. */
static void test_sqlite_floor_and_usage(void **st) {
  char dir[] = "/tmp/hd-rtm-floor-XXXXXX", path[256], err[200];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/rtm.db", dir);
  hd_rtm_store_t *sq;
  assert_int_equal(hd_rtm_store_sqlite_new(&sq, path, err, sizeof err), 0);
  hd_rtm_stored_msg_t m = {1, 1, "al", "12345678"};
  hd_rtm_store_limits_t lim = {3, 0, 0, 0};
  hd_rtm_usage_t u;
  for (int i = 1; i <= 5; i++) {
    m.cseq = i;
    assert_int_equal(sq->ops->msg_append(sq, "app", "c", &m, &lim, &u), 0);
  }
  assert_int_equal(u.channels, 1);
  assert_int_equal(u.bytes, 3 * 10); /* exactly 3 kept, 10 bytes each */
  lim.min_free_bytes = INT64_MAX;    /* no disk has that much free */
  m.cseq = 6;
  assert_int_equal(sq->ops->msg_append(sq, "app", "c", &m, &lim, &u), HD_ENOSPC);
  assert_int_equal(u.refused, HD_RTM_STORE_DISK_FLOOR);
  assert_true(u.disk_free > 0);
  lim.min_free_bytes = 1;
  assert_int_equal(sq->ops->msg_append(sq, "app", "c", &m, &lim, &u), 0);
  hd_rtm_store_free(sq);
  /* the usage survives a reopen */
  assert_int_equal(hd_rtm_store_sqlite_new(&sq, path, err, sizeof err), 0);
  assert_int_equal(sq->ops->usage(sq, "app", &u), 0);
  assert_int_equal(u.channels, 1);
  assert_int_equal(u.bytes, 30);
  hd_rtm_store_free(sq);
  rm_db(dir, path);
}

/* Issue 12 item 10 on an existing database: one written before the exact cap (1019
 * messages in a channel, no chan_stat table) gets its usage from the messages
 * at open, and the next append trims the channel to exactly 1000. */
static void test_sqlite_upgrade(void **st) {
  char dir[] = "/tmp/hd-rtm-upg-XXXXXX", path[256], err[200];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/rtm.db", dir);
  sqlite3 *db;
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  assert_int_equal(
      sqlite3_exec(db,
                   "CREATE TABLE msg(app TEXT, ch TEXT, cseq INTEGER, ts INTEGER, sender TEXT, data "
                   "TEXT, PRIMARY KEY(app,ch,cseq));"
                   "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<1019) "
                   "INSERT INTO msg SELECT 'app','old',i,i,'al','12345678' FROM n;",
                   NULL, NULL, NULL),
      SQLITE_OK);
  sqlite3_close(db);
  hd_rtm_store_t *sq;
  assert_int_equal(hd_rtm_store_sqlite_new(&sq, path, err, sizeof err), 0);
  hd_rtm_usage_t u;
  assert_int_equal(sq->ops->usage(sq, "app", &u), 0);
  assert_int_equal(u.channels, 1);
  assert_int_equal(u.bytes, 1019 * 10);
  hd_rtm_stored_msg_t m = {1020, 1020, "al", "12345678"};
  hd_rtm_store_limits_t lim = {1000, 0, 0, 0};
  assert_int_equal(sq->ops->msg_append(sq, "app", "old", &m, &lim, &u), 0);
  assert_int_equal(u.bytes, 1000 * 10);
  hd_rtm_store_free(sq);
  assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
  sqlite3_stmt *stt;
  assert_int_equal(
      sqlite3_prepare_v2(db, "SELECT count(*), min(cseq) FROM msg WHERE ch='old'", -1, &stt, NULL),
      SQLITE_OK);
  assert_int_equal(sqlite3_step(stt), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(stt, 0), 1000);
  assert_int_equal(sqlite3_column_int(stt, 1), 21);
  sqlite3_finalize(stt);
  sqlite3_close(db);
  rm_db(dir, path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_history, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_hist_after_zero, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_hist_pages_fit_window, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_store_quota, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_history_exact_cap, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_sqlite_floor_and_usage, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_sqlite_upgrade, rtm_world_setup, rtm_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
