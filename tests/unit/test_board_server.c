/* The node's whiteboards (src/board/board_server.h) with the SQLite board
 * store in a temp file: the RTM publish hook (entries, ephemeral pass-through,
 * refusals mapped to RTM error codes), snapshots every N entries with the
 * tail after them, loads with and without a cursor, the replay log, eviction
 * of the least recently used board (snapshotted first) and its reload, a
 * restart (a new server on the same file) that continues the sequence, and
 * the sharing with the cluster that lets another node take a board over. */
#include "hd_test.h"

#include <jansson.h>
#include <unistd.h>

#include "base/err.h"
#include "board/board_server.h"

static char dbpath[64];
static hd_board_store_t *st;
static hd_board_server_t *srv;

static void start(int every, int max_boards) {
  char err[256];
  assert_int_equal(hd_board_store_open(&st, dbpath, err, sizeof err), 0);
  hd_board_server_config_t c = {.store = st, .snapshot_every = every, .max_boards = max_boards};
  assert_int_equal(hd_board_server_new(&srv, &c), 0);
}

static void stop(void) {
  hd_board_server_free(srv);
  hd_board_store_free(st);
}

/* Publishes op on ch through the hook; returns the hook's code; *seq the entry's seq. */
static int pub(const char *ch, const char *user, int writer, const char *op, int64_t *seq) {
  hd_rtm_hook_pub_t p = {"app", user, ch, op, strlen(op), writer, 1000};
  char *out = NULL, msg[256] = "";
  int rc = hd_board_server_pub_hook(srv, &p, &out, msg, sizeof msg);
  if (seq) *seq = -1;
  if (out) {
    json_t *o = json_loads(out, 0, NULL);
    if (seq) *seq = json_integer_value(json_object_get(o, "seq"));
    json_decref(o);
    free(out);
  }
  return rc;
}

static void add(const char *ch, int i) {
  char op[200];
  int64_t seq;
  snprintf(op, sizeof op,
           "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"e%d\",\"k\":\"rect\",\"x\":%d,\"y\":0,\"w\":5,"
           "\"h\":5}}",
           i, i);
  assert_int_equal(pub(ch, "w", 1, op, &seq), 0);
  assert_true(seq > 0);
}

static json_t *load(const char *ch, int64_t after) {
  char *j = NULL;
  assert_int_equal(hd_board_server_load(srv, "app", ch, after, &j), 0);
  json_t *o = json_loads(j, 0, NULL);
  free(j);
  assert_non_null(o);
  return o;
}

static void setup_path(void) {
  snprintf(dbpath, sizeof dbpath, "/tmp/hd-board-test-%d.db", (int)getpid());
  unlink(dbpath);
}

static void cleanup_path(void) {
  char p[80];
  unlink(dbpath);
  snprintf(p, sizeof p, "%s-wal", dbpath);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", dbpath);
  unlink(p);
}

static void test_hook_snapshots_log(void **state) {
  (void)state;
  setup_path();
  start(10, 0);
  const char *ch = "wb:r:main";
  for (int i = 0; i < 25; i++)
    add(ch, i);
  /* ephemeral: passed on unchanged (no out), no seq */
  const char *cur = "{\"op\":\"cur\",\"x\":1,\"y\":2}";
  hd_rtm_hook_pub_t p = {"app", "r", ch, cur, strlen(cur), 0, 1};
  char *out = NULL, msg[256];
  assert_int_equal(hd_board_server_pub_hook(srv, &p, &out, msg, sizeof msg), 0);
  assert_null(out);
  /* refusals carry the RTM code and the model's message */
  assert_int_equal(pub(ch, "r", 0, "{\"op\":\"del\",\"ids\":[\"e1\"]}", NULL), HD_RTM_ERR_FORBIDDEN);
  assert_int_equal(pub(ch, "w", 1, "{\"op\":\"del\",\"ids\":[\"zz\"]}", NULL), HD_RTM_ERR_NOT_FOUND);
  assert_int_equal(pub(ch, "w", 1, "{bad", NULL), HD_RTM_ERR_BAD_REQUEST);
  assert_int_equal(pub("wb:nocolon", "w", 1, "{\"op\":\"undo\"}", NULL), HD_RTM_ERR_BAD_REQUEST);
  /* snapshot at 20, tail 21..25 */
  json_t *o = load(ch, -1);
  assert_int_equal(json_integer_value(json_object_get(o, "seq")), 25);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "snapshot"), "seq")), 20);
  assert_int_equal(json_array_size(json_object_get(o, "ops")), 5);
  json_decref(o);
  /* after=22: 23..25 from memory; after=3: 4..25 from the log */
  o = load(ch, 22);
  assert_int_equal(json_array_size(json_object_get(o, "ops")), 3);
  assert_null(json_object_get(o, "snapshot"));
  json_decref(o);
  o = load(ch, 3);
  json_t *ops = json_object_get(o, "ops");
  assert_int_equal(json_array_size(ops), 22);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(ops, 0), "seq")), 4);
  json_decref(o);
  /* the replay log pages */
  char *j;
  assert_int_equal(hd_board_server_log(srv, "app", ch, 0, -1, 10, &j), 0);
  o = json_loads(j, 0, NULL);
  free(j);
  assert_true(json_is_true(json_object_get(o, "more")));
  assert_int_equal(json_integer_value(json_object_get(o, "next")), 10);
  json_decref(o);
  assert_int_equal(hd_board_server_log(srv, "app", ch, 20, -1, 10, &j), 0);
  o = json_loads(j, 0, NULL);
  free(j);
  assert_int_equal(json_array_size(json_object_get(o, "ops")), 5);
  assert_true(json_is_false(json_object_get(o, "more")));
  json_decref(o);
  /* another app never sees this board */
  char *other;
  assert_int_equal(hd_board_server_load(srv, "app2", ch, -1, &other), 0);
  assert_non_null(strstr(other, "\"seq\":0"));
  free(other);
  stop();
  /* restart on the same file: snapshot 20 + log 21..25, then seq 26 */
  start(10, 0);
  o = load(ch, -1);
  assert_int_equal(json_integer_value(json_object_get(o, "seq")), 25);
  json_decref(o);
  int64_t seq;
  assert_int_equal(pub(ch, "w", 1, "{\"op\":\"del\",\"ids\":[\"e0\"]}", &seq), 0);
  assert_int_equal(seq, 26);
  stop();
  cleanup_path();
}

static void test_eviction(void **state) {
  (void)state;
  setup_path();
  start(100, 2);
  add("wb:r:a", 1);
  add("wb:r:a", 2);
  add("wb:r:b", 1);
  add("wb:r:c", 1); /* evicts a (least recently used), snapshotted at seq 2 */
  hd_board_stats_t s;
  hd_board_server_stats(srv, &s);
  assert_int_equal(s.boards, 2);
  assert_int_equal(s.evictions, 1);
  assert_int_equal(s.snapshots, 1);
  /* a comes back from its snapshot; its next entry is 3 */
  json_t *o = load("wb:r:a", -1);
  assert_int_equal(json_integer_value(json_object_get(o, "seq")), 2);
  json_t *els =
      json_object_get(json_array_get(json_object_get(json_object_get(o, "snapshot"), "pages"), 0), "els");
  assert_int_equal(json_array_size(els), 2);
  json_decref(o);
  int64_t seq;
  assert_int_equal(pub("wb:r:a", "w", 1, "{\"op\":\"del\",\"ids\":[\"e1\"]}", &seq), 0);
  assert_int_equal(seq, 3);
  /* undo history does not survive an eviction: documented */
  hd_board_server_stats(srv, &s);
  assert_int_equal(s.evictions, 2);
  stop();
  cleanup_path();
}

/* ---- sharing with the cluster (hd_board_share_t): the Redis hash of
 * io/board_redis.c as a struct, with its rule (an older snapshot never
 * replaces a newer one) ---- */
static struct {
  int64_t seq;
  char *text;
  int puts, refused, gets;
} shared = {-1, NULL, 0, 0, 0};

static int sh_get(void *ud, const char *app, const char *ch, int64_t have, int64_t *seq, char **text) {
  (void)ud, (void)app, (void)ch;
  shared.gets++;
  if (!shared.text || shared.seq <= have) return HD_ENOTFOUND;
  *seq = shared.seq;
  *text = strdup(shared.text);
  return 0;
}

static int sh_put(void *ud, const char *app, const char *ch, int64_t seq, const char *text, size_t len) {
  (void)ud, (void)app, (void)ch;
  if (seq < shared.seq) return shared.refused++, 0;
  free(shared.text);
  shared.text = strndup(text, len);
  shared.seq = seq;
  shared.puts++;
  return 1;
}

static int pub_at(hd_board_server_t *s, int i, int64_t wall_ms, int64_t *seq) {
  char op[200];
  snprintf(op, sizeof op,
           "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"e%d\",\"k\":\"rect\",\"x\":%d,\"y\":0,\"w\":5,"
           "\"h\":5}}",
           i, i);
  hd_rtm_hook_pub_t p = {"app", "w", "wb:r:main", op, strlen(op), 1, wall_ms};
  char *out = NULL, msg[256] = "";
  int rc = hd_board_server_pub_hook(s, &p, &out, msg, sizeof msg);
  json_t *o = out ? json_loads(out, 0, NULL) : NULL;
  *seq = o ? json_integer_value(json_object_get(o, "seq")) : -1;
  json_decref(o);
  free(out);
  return rc;
}

/* Node A owns a board and shares it (rate-limited: the first change at once,
 * the rest of a burst by the flush once share.every_ms passed); node B, whose
 * store knows nothing, takes the board over: its first operation starts from
 * A's shared state (seq 3 -> 4, every element there), and B shares on. A
 * board over share.max_bytes is not shared. */
static void test_share_takeover(void **state) {
  (void)state;
  char pa[80], pb[80], err[256];
  snprintf(pa, sizeof pa, "/tmp/hd-board-share-a-%d.db", (int)getpid());
  snprintf(pb, sizeof pb, "/tmp/hd-board-share-b-%d.db", (int)getpid());
  unlink(pa);
  unlink(pb);
  hd_board_store_t *sa, *sb;
  hd_board_server_t *a, *b;
  assert_int_equal(hd_board_store_open(&sa, pa, err, sizeof err), 0);
  assert_int_equal(hd_board_store_open(&sb, pb, err, sizeof err), 0);
  hd_board_share_t sh = {.get = sh_get, .put = sh_put, .every_ms = 500, .max_bytes = 1 << 20};
  hd_board_server_config_t c = {.store = sa, .share = sh};
  assert_int_equal(hd_board_server_new(&a, &c), 0);
  c.store = sb;
  assert_int_equal(hd_board_server_new(&b, &c), 0);

  int64_t seq;
  assert_int_equal(pub_at(a, 0, 10000, &seq), 0);
  assert_int_equal(seq, 1);
  assert_int_equal(shared.puts, 1); /* the first change goes at once */
  assert_int_equal(shared.seq, 1);
  assert_int_equal(pub_at(a, 1, 10100, &seq), 0);
  assert_int_equal(pub_at(a, 2, 10200, &seq), 0);
  assert_int_equal(seq, 3);
  assert_int_equal(shared.puts, 1); /* within share.every_ms: waits */
  hd_board_server_share_flush(a, 10400);
  assert_int_equal(shared.puts, 1);
  hd_board_server_share_flush(a, 10500);
  assert_int_equal(shared.puts, 2);
  assert_int_equal(shared.seq, 3);
  hd_board_server_share_flush(a, 20000); /* nothing changed since */
  assert_int_equal(shared.puts, 2);

  /* B takes over: its first operation continues A's board */
  assert_int_equal(pub_at(b, 3, 30000, &seq), 0);
  assert_int_equal(seq, 4);
  hd_board_stats_t st_b;
  hd_board_server_stats(b, &st_b);
  assert_int_equal(st_b.adopted, 1);
  assert_int_equal(shared.seq, 4); /* and B shares now */
  char *j = NULL;
  assert_int_equal(hd_board_server_load(b, "app", "wb:r:main", -1, &j), 0);
  json_t *o = json_loads(j, 0, NULL);
  free(j);
  assert_int_equal(json_integer_value(json_object_get(o, "seq")), 4);
  json_t *els =
      json_object_get(json_array_get(json_object_get(json_object_get(o, "snapshot"), "pages"), 0), "els");
  size_t n = json_array_size(els) + json_array_size(json_object_get(o, "ops"));
  assert_int_equal(n, 4); /* e0..e2 from A's snapshot, e3 B's own entry */
  json_decref(o);
  /* looked at most once a second: the next operation does not ask again */
  int gets = shared.gets;
  assert_int_equal(pub_at(b, 4, 30500, &seq), 0);
  assert_int_equal(shared.gets, gets);
  assert_int_equal(seq, 5);
  assert_int_equal(shared.seq, 5);       /* 500 ms after B's last share: at once */
  hd_board_server_share_flush(a, 40000); /* A, stale, has nothing unshared: B's state stays */
  assert_int_equal(shared.seq, 5);

  hd_board_server_free(a);
  hd_board_server_free(b);
  hd_board_store_free(sa);
  hd_board_store_free(sb);

  /* a board over share.max_bytes is not shared (a fresh cluster) */
  free(shared.text);
  shared.text = NULL;
  shared.seq = -1;
  unlink(pa);
  assert_int_equal(hd_board_store_open(&sa, pa, err, sizeof err), 0);
  c.store = sa;
  c.share.max_bytes = 16;
  assert_int_equal(hd_board_server_new(&a, &c), 0);
  int puts = shared.puts;
  assert_int_equal(pub_at(a, 0, 50000, &seq), 0);
  assert_int_equal(shared.puts, puts);
  hd_board_server_free(a);
  hd_board_store_free(sa);
  free(shared.text);
  shared.text = NULL;
  const char *paths[2] = {pa, pb};
  for (int i = 0; i < 2; i++) {
    char p[96];
    unlink(paths[i]);
    snprintf(p, sizeof p, "%s-wal", paths[i]);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", paths[i]);
    unlink(p);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hook_snapshots_log),
      cmocka_unit_test(test_eviction),
      cmocka_unit_test(test_share_takeover),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
