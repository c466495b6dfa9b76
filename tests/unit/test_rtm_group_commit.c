/* RTM group commit (cfg.group_commit, docs/rtm.md "Storage"): the stored
 * publishes of one loop turn share one SQLite transaction on a real database
 * file. Checked here: no ok and no delivery of a stored message is sent
 * before it is committed (a second connection to the file must see it at the
 * moment the broker sends it), the outputs keep the order of a broker
 * without group commit, quota accounting inside a batch equals the one-by-one
 * result, and a batch that cannot commit publishes none of its messages. */
#include "hd_test.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "rtm/broker.h"
#include "support/check.h"
#include "support/rtm_world.h"

static char dir[64], path[256];
static sqlite3 *peek;            /* another connection to the database: sees only what is committed */
static int checked, uncommitted; /* stored oks / deliveries seen by on_send, and those not in the file */

static int committed(const char *ch, int64_t cseq) {
  sqlite3_stmt *q;
  CHECK(sqlite3_prepare_v2(peek, "SELECT count(*) FROM msg WHERE ch=?1 AND cseq=?2", -1, &q, NULL) ==
        SQLITE_OK);
  sqlite3_bind_text(q, 1, ch, -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, 2, cseq);
  int n = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
  sqlite3_finalize(q);
  return n == 1;
}

/* At the moment an ok with a cseq or a channel message leaves the broker,
 * its message must be in the database for any reader (every publish of
 * these tests is stored). */
static void on_send(uint64_t conn, const char *text, size_t len) {
  json_t *o = json_loadb(text, len, 0, NULL);
  CHECK(o != NULL);
  const char *type = sval(o, "type"), *ch = sval(o, "ch");
  if (ch && ival(o, "cseq") > 0 && (!strcmp(type, "ok") || !strcmp(type, "msg"))) {
    checked++;
    if (!committed(ch, ival(o, "cseq"))) uncommitted++;
  }
  json_decref(o);
}

static hd_rtm_store_t *open_db(void) {
  snprintf(dir, sizeof dir, "/tmp/hd-rtm-gc-XXXXXX");
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/rtm.db", dir);
  hd_rtm_store_t *sq;
  char err[200];
  CHECK(hd_rtm_store_sqlite_new(&sq, path, err, sizeof err) == 0);
  CHECK(sqlite3_open(path, &peek) == SQLITE_OK);
  checked = uncommitted = 0;
  return sq;
}

static void close_db(hd_rtm_store_t *sq) {
  hd_rtm_store_free(sq);
  sqlite3_close(peek);
  peek = NULL;
  char p[300];
  const char *sfx[3] = {"", "-wal", "-shm"};
  for (int i = 0; i < 3; i++) {
    snprintf(p, sizeof p, "%s%s", path, sfx[i]);
    unlink(p);
  }
  rmdir(dir);
}

/* The oks and deliveries of stored publishes wait for the turn's commit;
 * what comes after them in the turn stays after them. */
static void test_gc_ok_after_commit(void **st) {
  hd_rtm_store_t *sq = open_db();
  rtm_world_on_send = on_send;
  hd_rtm_config_t c = {.store = sq, .rate = 100000, .burst = 100000, .group_commit = 1};
  hd_rtm_broker_t *b = mk_cfg(c);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"g\"}");
  hd_rtm_turn_end(b);
  json_t *l = last_out(2);
  int64_t bob_s = ival(l, "s");
  json_decref(l);
  reset_out();
  checked = uncommitted = 0;
  for (int i = 0; i < 5; i++)
    feed(b, 1, "{\"type\":\"pub\",\"id\":\"p%d\",\"ch\":\"g\",\"data\":\"m%d\",\"store\":true}", i, i);
  feed(b, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)bob_s); /* an ack does not end the batch */
  assert_int_equal(hd_rtm_pending(b), 5);
  assert_int_equal(count(1, NULL) + count(2, NULL), 0); /* held: nothing sent yet */
  hd_rtm_turn_end(b);
  assert_int_equal(hd_rtm_pending(b), 0);
  assert_int_equal(count(1, "ok"), 5);
  assert_int_equal(count(2, "msg"), 5);
  assert_int_equal(checked, 10);
  assert_int_equal(uncommitted, 0);
  for (int i = 0; i < 5; i++) {
    json_t *ok = nth(1, "ok", i), *m = nth(2, "msg", i);
    char id[8];
    snprintf(id, sizeof id, "p%d", i);
    assert_string_equal(sval(ok, "id"), id);
    assert_int_equal(ival(ok, "cseq"), i + 1);
    assert_int_equal(ival(m, "cseq"), i + 1);
    json_decref(ok);
    json_decref(m);
  }
  /* a stored publish, then anything else in the same turn: the held one is answered first */
  reset_out();
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"s\",\"ch\":\"g\",\"data\":\"stored\",\"store\":true}");
  assert_int_equal(count(1, NULL), 0);
  feed(b, 1,
       "{\"type\":\"pub\",\"id\":\"s\",\"ch\":\"g\",\"data\":\"stored\",\"store\":true}"); /* a resend */
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"bad\",\"ch\":\"bad channel\",\"data\":\"x\",\"store\":true}");
  json_t *o0 = nth(1, NULL, 0), *o1 = nth(1, NULL, 1), *o2 = nth(1, NULL, 2);
  assert_string_equal(sval(o0, "type"), "ok");
  assert_int_equal(ival(o0, "cseq"), 6);
  assert_string_equal(sval(o1, "type"), "ok"); /* the resend: the same cseq, once */
  assert_int_equal(ival(o1, "cseq"), 6);
  assert_true(json_is_true(json_object_get(o1, "dup")));
  assert_string_equal(sval(o2, "type"), "error");
  json_decref(o0);
  json_decref(o1);
  json_decref(o2);
  assert_int_equal(count(2, "msg"), 1);
  hd_rtm_turn_end(b);
  hd_rtm_broker_free(b);
  close_db(sq);
  /* the broker never sent a stored message the file did not have */
  assert_int_equal(uncommitted, 0);
}

/* What each publish of a scripted sequence got: "ok <cseq>" or "<code> <message>". */
static void answers(char out[][200], int n) {
  for (int i = 0; i < n; i++) {
    out[i][0] = 0;
    for (int k = 0; k < n_out; k++) {
      if (outs[k].conn != 1) continue;
      json_t *o = json_loads(outs[k].text, 0, NULL);
      char id[16];
      snprintf(id, sizeof id, "q%d", i);
      if (sval(o, "id") && !strcmp(sval(o, "id"), id)) {
        if (!strcmp(sval(o, "type"), "ok"))
          snprintf(out[i], 200, "ok %lld", (long long)ival(o, "cseq"));
        else
          snprintf(out[i], 200, "%lld %s", (long long)ival(o, "code"), sval(o, "message"));
      }
      json_decref(o);
    }
  }
}

#define NQ 60
/* Quotas are exact inside a batch: the same publishes one by one (no group
 * commit) and in batches of 7 and of all 60 get the same answers, the same
 * usage and the same stored history. */
static void test_gc_quota_equals_one_by_one(void **st) {
  static char want[NQ][200], got[NQ][200];
  int64_t want_ch = 0, want_bytes = 0;
  int per_turn[3] = {0, 7, NQ}; /* 0: group commit off */
  for (int k = 0; k < 3; k++) {
    hd_rtm_store_t *sq = open_db();
    hd_rtm_config_t c = {.store = sq,
                         .rate = 100000,
                         .burst = 100000,
                         .history_keep = 3,
                         .quota_channels = 3,
                         .quota_bytes = 400,
                         .group_commit = per_turn[k] > 0};
    hd_rtm_broker_t *b = mk_cfg(c);
    login(b, 1, "alice", 0);
    hd_rtm_turn_end(b);
    reset_out();
    for (int i = 0; i < NQ; i++) {
      /* channels c0..c4 (two over the channel quota), sizes 5..69 bytes: over the bytes quota
       * now and then, and under it again when a smaller message pushes a larger one out */
      int len = 5 + (i * 37) % 65;
      char data[80];
      memset(data, 'a' + i % 26, (size_t)len);
      data[len] = 0;
      feed(b, 1, "{\"type\":\"pub\",\"id\":\"q%d\",\"ch\":\"c%d\",\"data\":\"%s\",\"store\":true}", i,
           (i * 7) % 5, data);
      if (per_turn[k] && (i + 1) % per_turn[k] == 0) hd_rtm_turn_end(b);
    }
    hd_rtm_turn_end(b);
    answers(k ? got : want, NQ);
    hd_rtm_usage_t u;
    assert_int_equal(sq->ops->usage(sq, "app", &u), 0);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(peek, "SELECT count(*), total(length(data)+length(sender)) FROM msg",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t rows_bytes = (int64_t)sqlite3_column_double(q, 1);
    sqlite3_finalize(q);
    assert_int_equal(rows_bytes, u.bytes); /* the cached usage is what the file holds */
    if (!k) {
      want_ch = u.channels;
      want_bytes = u.bytes;
      int oks = 0, refused = 0;
      for (int i = 0; i < NQ; i++) {
        oks += !strncmp(want[i], "ok ", 3);
        refused += !strncmp(want[i], "507 ", 4);
      }
      assert_true(oks > 10 && refused > 10); /* the script does reach both quotas */
    } else {
      for (int i = 0; i < NQ; i++)
        if (strcmp(want[i], got[i]))
          fail_msg("publish %d: one by one \"%s\", %d per turn \"%s\"", i, want[i], per_turn[k], got[i]);
      assert_int_equal(u.channels, want_ch);
      assert_int_equal(u.bytes, want_bytes);
    }
    hd_rtm_broker_free(b);
    reset_out();
    close_db(sq);
  }
}

/* A batch that cannot start its transaction (another process holds the
 * database's write lock) publishes none of its messages: each gets 500,
 * the channel's sequence does not move, and the next turn works. */
static void test_gc_batch_fails_whole(void **st) {
  hd_rtm_store_t *sq = open_db();
  hd_rtm_config_t c = {.store = sq, .rate = 100000, .burst = 100000, .group_commit = 1};
  hd_rtm_broker_t *b = mk_cfg(c);
  login(b, 1, "alice", 0);
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"a\",\"ch\":\"g\",\"data\":\"one\",\"store\":true}");
  hd_rtm_turn_end(b);
  reset_out();
  assert_int_equal(sqlite3_exec(peek, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  for (int i = 0; i < 3; i++)
    feed(b, 1, "{\"type\":\"pub\",\"id\":\"f%d\",\"ch\":\"g\",\"data\":\"x\",\"store\":true}", i);
  hd_rtm_turn_end(b); /* waits for the lock up to the store's busy timeout (2 s), then fails */
  assert_int_equal(sqlite3_exec(peek, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(count(1, "ok"), 0);
  assert_int_equal(count(1, "error"), 3);
  json_t *e = nth(1, "error", 0);
  assert_int_equal(ival(e, "code"), 500);
  json_decref(e);
  reset_out();
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"b\",\"ch\":\"g\",\"data\":\"two\",\"store\":true}");
  hd_rtm_turn_end(b);
  json_t *ok = nth(1, "ok", 0);
  assert_int_equal(ival(ok, "cseq"), 2); /* the failed ones took no sequence number */
  json_decref(ok);
  hd_rtm_broker_free(b);
  close_db(sq);
}

/* The 257th held stored publish of a turn flushes the 256 before it; that
 * flush frees their channel (no subscriber, nothing pending) — the 257th
 * must not be held on the freed channel (review finding: heap use after
 * free, ASan). Every ok in order, cseq 1..257. */
static void test_gc_cap_frees_channel(void **st) {
  (void)st;
  hd_rtm_store_t *sq = open_db();
  hd_rtm_config_t c = {.store = sq, .rate = 100000, .burst = 100000, .group_commit = 1};
  hd_rtm_broker_t *b = mk_cfg(c);
  login(b, 1, "alice", 0);
  reset_out();
  for (int i = 0; i < HD_RTM_GC_MAX + 1; i++)
    feed(b, 1, "{\"type\":\"pub\",\"id\":\"p%d\",\"ch\":\"g\",\"data\":\"m\",\"store\":true}", i);
  hd_rtm_turn_end(b);
  for (int i = 0; i < HD_RTM_GC_MAX + 1; i++) {
    json_t *ok = nth(1, "ok", i);
    assert_non_null(ok);
    assert_int_equal(ival(ok, "cseq"), i + 1);
    json_decref(ok);
  }
  hd_rtm_broker_free(b);
  close_db(sq);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_gc_ok_after_commit, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_gc_quota_equals_one_by_one, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_gc_batch_fails_whole, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_gc_cap_frees_channel, rtm_world_setup, rtm_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
