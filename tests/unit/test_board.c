/* Whiteboard operation model (src/board/board.h): operations and their
 * normalised entries, the conflict rule (node order, field-wise merge,
 * delete wins, compare-and-set with "if"), caps and roles with their errors,
 * per-user undo/redo, snapshots, and the property that matters: replicas that
 * apply the node's entries hold the node's state (equal hashes) after any
 * interleaving of writers, a late joiner from snapshot + tail too. */
#include "hd_test.h"

#include <jansson.h>

#include "base/err.h"
#include "board/board.h"

static char *last_entry;

/* Runs op on the node board n; on commit applies the entry to every replica. */
static int op(hd_board_t *n, hd_board_t **reps, int nrep, const char *user, int writer, const char *text,
              hd_board_err_t *e) {
  char *entry = NULL;
  hd_board_err_t tmp;
  int rc = hd_board_op(n, user, writer, text, strlen(text), 1000, &entry, e ? e : &tmp);
  if (rc == HD_BOARD_COMMITTED) {
    for (int i = 0; i < nrep; i++)
      assert_int_equal(hd_board_apply_entry(reps[i], entry, strlen(entry)), 0);
    free(last_entry);
    last_entry = entry;
  } else
    assert_null(entry);
  return rc;
}

static const char *RECT =
    "{\"op\":\"add\",\"cid\":\"c1\",\"page\":\"p1\",\"el\":{\"id\":\"r1\",\"k\":\"rect\","
    "\"x\":10,\"y\":20,\"w\":100,\"h\":50,\"c\":\"#ff0000\",\"fill\":\"#00ff00\"}}";

static void test_add_entry_and_replica(void **st) {
  (void)st;
  hd_board_t *n, *r;
  assert_int_equal(hd_board_new(&n, NULL), 0);
  assert_int_equal(hd_board_new(&r, NULL), 0);
  assert_int_equal(op(n, &r, 1, "alice", 1, RECT, NULL), HD_BOARD_COMMITTED);
  json_t *e = json_loads(last_entry, 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(e, "seq")), 1);
  assert_string_equal(json_string_value(json_object_get(e, "by")), "alice");
  assert_string_equal(json_string_value(json_object_get(e, "cid")), "c1");
  json_t *el = json_object_get(json_array_get(json_object_get(e, "do"), 0), "el");
  assert_string_equal(json_string_value(json_object_get(el, "by")), "alice");
  assert_int_equal(json_integer_value(json_object_get(el, "v")), 1);
  assert_int_equal(json_integer_value(json_object_get(el, "sw")), 2); /* default filled in */
  json_decref(e);
  assert_int_equal(hd_board_seq(n), 1);
  assert_int_equal(hd_board_seq(r), 1);
  assert_true(hd_board_hash(n) == hd_board_hash(r));
  int pages, els;
  hd_board_count(r, &pages, &els);
  assert_int_equal(pages, 1);
  assert_int_equal(els, 1);
  /* a stroke: points relative to x, y; its frame pw/ph set by the node */
  assert_int_equal(
      op(n, &r, 1, "alice", 1,
         "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"s1\",\"k\":\"stroke\",\"x\":0,\"y\":0,\"w\":"
         "30,\"h\":30,\"pts\":[0,0,50,0,10,10,60,16,30,30,70,33],\"hl\":true}}",
         NULL),
      HD_BOARD_COMMITTED);
  assert_non_null(strstr(last_entry, "\"pw\":30"));
  /* the same entry again is a duplicate: refused, nothing applied */
  assert_int_equal(hd_board_apply_entry(r, last_entry, strlen(last_entry)), HD_ESTATE);
  assert_true(hd_board_hash(n) == hd_board_hash(r));
  hd_board_free(n);
  hd_board_free(r);
}

static void test_conflicts(void **st) {
  (void)st;
  hd_board_t *n, *r;
  hd_board_err_t e;
  hd_board_new(&n, NULL);
  hd_board_new(&r, NULL);
  op(n, &r, 1, "alice", 1, RECT, NULL);
  /* alice moves r1 while bob recolours it and moves it too: the node's order
   * decides each field; fields only one of them set are kept from both */
  assert_int_equal(op(n, &r, 1, "alice", 1,
                      "{\"op\":\"upd\",\"items\":[{\"id\":\"r1\",\"set\":{\"x\":1,\"y\":2}}]}", NULL),
                   HD_BOARD_COMMITTED);
  assert_int_equal(op(n, &r, 1, "bob", 1,
                      "{\"op\":\"upd\",\"items\":[{\"id\":\"r1\",\"set\":{\"x\":7,\"c\":\"#0000ff\"}}]}",
                      NULL),
                   HD_BOARD_COMMITTED);
  char *s = hd_board_snapshot(r);
  assert_non_null(strstr(s, "\"x\":7"));
  assert_non_null(strstr(s, "\"y\":2"));
  assert_non_null(strstr(s, "\"c\":\"#0000ff\""));
  assert_non_null(strstr(s, "\"v\":3"));
  free(s);
  /* compare-and-set: an update based on version 1 is refused now (v 3) */
  assert_int_equal(
      op(n, &r, 1, "alice", 1, "{\"op\":\"upd\",\"items\":[{\"id\":\"r1\",\"if\":1,\"set\":{\"x\":0}}]}", &e),
      HD_EPROTO);
  assert_int_equal(e.status, 409);
  assert_non_null(strstr(e.msg, "version 3"));
  /* delete wins: an update that arrives after the delete is refused, 404 */
  assert_int_equal(op(n, &r, 1, "bob", 1, "{\"op\":\"del\",\"ids\":[\"r1\"]}", NULL), HD_BOARD_COMMITTED);
  assert_int_equal(
      op(n, &r, 1, "alice", 1, "{\"op\":\"upd\",\"items\":[{\"id\":\"r1\",\"set\":{\"x\":5}}]}", &e),
      HD_EPROTO);
  assert_int_equal(e.status, 404);
  /* a second add of an existing id is a conflict */
  op(n, &r, 1, "alice", 1, RECT, NULL);
  assert_int_equal(op(n, &r, 1, "bob", 1, RECT, &e), HD_EPROTO);
  assert_int_equal(e.status, 409);
  assert_true(hd_board_hash(n) == hd_board_hash(r));
  assert_int_equal(hd_board_seq(n), hd_board_seq(r));
  hd_board_free(n);
  hd_board_free(r);
}

static void test_errors_and_caps(void **st) {
  (void)st;
  hd_board_limits_t lim = {.max_pages = 2, .max_elements = 2, .max_points = 3};
  hd_board_t *n;
  hd_board_err_t e;
  hd_board_new(&n, &lim);
  struct {
    const char *text;
    int status;
    const char *msg;
  } cases[] = {
      {"not json", 400, "JSON object"},
      {"[1]", 400, "not an object"},
      {"{\"op\":\"fly\"}", 400, "unknown operation"},
      {"{\"x\":1}", 400, "\"op\""},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"rect\",\"x\":1.5,\"y\":0,\"w\":1,\"h\":"
       "1}}",
       400, "integer"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a "
       "b\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1,\"h\":1}}",
       400, "el.id"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"blob\",\"x\":1,\"y\":0,\"w\":1,\"h\":1}"
       "}",
       400, "el.k"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1}}", 400,
       "el.h"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1,\"h\":1,"
       "\"c\":\"red\"}}",
       400, "#rrggbb"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1,\"h\":1,"
       "\"txt\":\"hi\"}}",
       400, "unknown field"},
      {"{\"op\":\"add\",\"page\":\"p9\",\"el\":{\"id\":\"a\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1,\"h\":1}"
       "}",
       404, "no page"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"stroke\",\"x\":1,\"y\":0,\"w\":1,\"h\":"
       "1,"
       "\"pts\":[0,0,0,0,1,1,0,1,2,2,0,2,3,3,0,3]}}",
       413, "board.max_points"},
      {"{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a\",\"k\":\"image\",\"x\":1,\"y\":0,\"w\":1,\"h\":1,"
       "\"src\":\"http://evil/x.png\"}}",
       400, "POST /api/board/image"},
      {"{\"op\":\"undo\"}", 404, "nothing to undo"},
      {"{\"op\":\"page_del\",\"page\":\"p1\"}", 409, "at least one page"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    memset(&e, 0, sizeof e);
    char *entry = NULL;
    int rc = hd_board_op(n, "u", 1, cases[i].text, strlen(cases[i].text), 0, &entry, &e);
    if (rc >= 0 || e.status != cases[i].status || !strstr(e.msg, cases[i].msg))
      fail_msg("case %zu (%s): rc %d status %d msg %s", i, cases[i].text, rc, e.status, e.msg);
    assert_null(entry);
  }
  assert_int_equal(hd_board_seq(n), 0);
  /* a reader may show a cursor, nothing else */
  const char *cur = "{\"op\":\"cur\",\"x\":5,\"y\":6,\"page\":\"p1\"}";
  char *entry = NULL;
  assert_int_equal(hd_board_op(n, "r", 0, cur, strlen(cur), 0, &entry, &e), HD_BOARD_EPHEMERAL);
  assert_int_equal(hd_board_op(n, "r", 0, RECT, strlen(RECT), 0, &entry, &e), HD_EFORBIDDEN);
  assert_int_equal(e.status, 403);
  assert_non_null(strstr(e.msg, "canPublishData"));
  const char *live = "{\"op\":\"live\",\"id\":\"s9\",\"page\":\"p1\",\"pts\":[1,2,50,0]}";
  assert_int_equal(hd_board_op(n, "r", 0, live, strlen(live), 0, &entry, &e), HD_EFORBIDDEN);
  assert_int_equal(hd_board_op(n, "w", 1, live, strlen(live), 0, &entry, &e), HD_BOARD_EPHEMERAL);
  assert_int_equal(hd_board_seq(n), 0);
  /* elements per page: the third is refused with 503 and the cap's key */
  for (int i = 0; i < 3; i++) {
    char t[200];
    snprintf(
        t, sizeof t,
        "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"e%d\",\"k\":\"ellipse\",\"x\":1,\"y\":0,\"w\":1,"
        "\"h\":1}}",
        i);
    int rc = hd_board_op(n, "w", 1, t, strlen(t), 0, &entry, &e);
    if (i < 2) {
      assert_int_equal(rc, HD_BOARD_COMMITTED);
      free(entry);
    } else {
      assert_int_equal(rc, HD_EPROTO);
      assert_int_equal(e.status, 503);
      assert_non_null(strstr(e.msg, "board.max_elements"));
    }
  }
  /* the board's bytes: a board of 200 bytes takes two small rects (88 bytes each), not a third */
  hd_board_limits_t small = {.max_bytes = 200};
  hd_board_t *sb;
  hd_board_new(&sb, &small);
  for (int i = 0; i < 3; i++) {
    char t[200];
    snprintf(t, sizeof t,
             "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"e%d\",\"k\":\"rect\",\"x\":1,\"y\":0,\"w\":1,"
             "\"h\":1}}",
             i);
    int rc = hd_board_op(sb, "w", 1, t, strlen(t), 0, &entry, &e);
    if (i < 2) {
      assert_int_equal(rc, HD_BOARD_COMMITTED);
      free(entry);
    } else {
      assert_int_equal(e.status, 503);
      assert_non_null(strstr(e.msg, "board.max_board_mb"));
    }
  }
  assert_true(hd_board_bytes(sb) > 150 && hd_board_bytes(sb) <= 200);
  const char *cl = "{\"op\":\"clear\",\"page\":\"p1\"}";
  assert_int_equal(hd_board_op(sb, "w", 1, cl, strlen(cl), 0, &entry, &e), HD_BOARD_COMMITTED);
  free(entry);
  assert_int_equal(hd_board_bytes(sb), 0);
  hd_board_free(sb);
  /* pages */
  const char *pa = "{\"op\":\"page_add\",\"page\":{\"id\":\"p2\",\"name\":\"Two\"}}";
  const char *pb = "{\"op\":\"page_add\",\"page\":{\"id\":\"p3\",\"name\":\"Three\"}}";
  assert_int_equal(hd_board_op(n, "w", 1, pa, strlen(pa), 0, &entry, &e), HD_BOARD_COMMITTED);
  free(entry);
  assert_int_equal(hd_board_op(n, "w", 1, pb, strlen(pb), 0, &entry, &e), HD_EPROTO);
  assert_int_equal(e.status, 503);
  assert_non_null(strstr(e.msg, "board.max_pages"));
  hd_board_free(n);
}

static void test_undo_redo(void **st) {
  (void)st;
  hd_board_t *n, *r;
  hd_board_err_t e;
  hd_board_new(&n, NULL);
  hd_board_new(&r, NULL);
  op(n, &r, 1, "alice", 1, RECT, NULL);
  op(n, &r, 1, "bob", 1,
     "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"b1\",\"k\":\"text\",\"x\":0,\"y\":0,\"w\":50,\"h\":20,"
     "\"txt\":\"hi\"}}",
     NULL);
  uint64_t both = hd_board_hash(n);
  op(n, &r, 1, "alice", 1, "{\"op\":\"upd\",\"items\":[{\"id\":\"r1\",\"set\":{\"x\":500,\"fill\":null}}]}",
     NULL);
  /* alice's undo reverts alice's move (fill comes back), not bob's text */
  assert_int_equal(op(n, &r, 1, "alice", 1, "{\"op\":\"undo\"}", NULL), HD_BOARD_COMMITTED);
  char *s = hd_board_snapshot(r);
  assert_non_null(strstr(s, "\"x\":10"));
  assert_non_null(strstr(s, "\"fill\":\"#00ff00\""));
  assert_non_null(strstr(s, "\"txt\":\"hi\""));
  free(s);
  /* content equal to before the move (versions differ: v counts every change) */
  assert_int_equal(op(n, &r, 1, "alice", 1, "{\"op\":\"redo\"}", NULL), HD_BOARD_COMMITTED);
  s = hd_board_snapshot(r);
  assert_non_null(strstr(s, "\"x\":500"));
  assert_null(strstr(s, "\"fill\""));
  free(s);
  assert_int_equal(op(n, &r, 1, "alice", 1, "{\"op\":\"undo\"}", NULL), HD_BOARD_COMMITTED);
  assert_int_equal(op(n, &r, 1, "alice", 1, "{\"op\":\"undo\"}", NULL), HD_BOARD_COMMITTED); /* the add */
  s = hd_board_snapshot(r);
  assert_null(strstr(s, "\"r1\""));
  free(s);
  /* bob deletes his text; his undo brings it back at its z index */
  op(n, &r, 1, "bob", 1, "{\"op\":\"del\",\"ids\":[\"b1\"]}", NULL);
  op(n, &r, 1, "bob", 1, "{\"op\":\"undo\"}", NULL);
  s = hd_board_snapshot(r);
  assert_non_null(strstr(s, "\"b1\""));
  free(s);
  /* redo after undo, then a new operation clears the redo history */
  op(n, &r, 1, "alice", 1, "{\"op\":\"redo\"}", NULL); /* re-adds r1 */
  op(n, &r, 1, "alice", 1,
     "{\"op\":\"add\",\"page\":\"p1\",\"el\":{\"id\":\"a2\",\"k\":\"line\",\"x\":0,\"y\":0,\"w\":5,\"h\":5,"
     "\"pts\":[0,0,5,5]}}",
     NULL);
  assert_int_equal(op(n, &r, 1, "alice", 1, "{\"op\":\"redo\"}", &e), HD_EPROTO);
  assert_int_equal(e.status, 404);
  /* undo skips what others already undid: bob deletes a2, alice's undo of the
   * add has nothing to do and goes on to her previous operation (the redo of r1) */
  op(n, &r, 1, "bob", 1, "{\"op\":\"del\",\"ids\":[\"a2\"]}", NULL);
  op(n, &r, 1, "alice", 1, "{\"op\":\"undo\"}", NULL);
  s = hd_board_snapshot(r);
  assert_null(strstr(s, "\"r1\""));
  free(s);
  (void)both;
  /* clear + undo: every element back in order; page delete + undo: the page and its elements */
  op(n, &r, 1, "alice", 1, RECT, NULL);
  uint64_t before = hd_board_hash(n);
  char *s0 = hd_board_snapshot(n);
  op(n, &r, 1, "alice", 1, "{\"op\":\"clear\",\"page\":\"p1\"}", NULL);
  hd_board_count(r, NULL, &(int){0});
  op(n, &r, 1, "alice", 1, "{\"op\":\"undo\"}", NULL);
  char *s1 = hd_board_snapshot(n);
  /* same elements in the same order; only versions moved */
  json_t *a = json_loads(s0, 0, NULL), *b = json_loads(s1, 0, NULL);
  json_t *ea = json_object_get(json_array_get(json_object_get(a, "pages"), 0), "els");
  json_t *eb = json_object_get(json_array_get(json_object_get(b, "pages"), 0), "els");
  assert_int_equal(json_array_size(ea), json_array_size(eb));
  for (size_t i = 0; i < json_array_size(ea); i++)
    assert_string_equal(json_string_value(json_object_get(json_array_get(ea, i), "id")),
                        json_string_value(json_object_get(json_array_get(eb, i), "id")));
  json_decref(a);
  json_decref(b);
  free(s0);
  free(s1);
  (void)before;
  op(n, &r, 1, "alice", 1, "{\"op\":\"page_add\",\"page\":{\"id\":\"p2\",\"name\":\"Two\"},\"at\":0}", NULL);
  op(n, &r, 1, "alice", 1,
     "{\"op\":\"add\",\"page\":\"p2\",\"el\":{\"id\":\"q\",\"k\":\"rect\",\"x\":0,\"y\":0,\"w\":5,\"h\":5}}",
     NULL);
  uint64_t with_p2 = hd_board_hash(n);
  op(n, &r, 1, "bob", 1, "{\"op\":\"page_del\",\"page\":\"p2\"}", NULL);
  op(n, &r, 1, "bob", 1, "{\"op\":\"undo\"}", NULL);
  int pages, els;
  hd_board_count(r, &pages, &els);
  assert_int_equal(pages, 2);
  assert_true(hd_board_hash(n) != with_p2); /* q's version moved */
  s = hd_board_snapshot(r);
  assert_non_null(strstr(s, "\"pages\":[{\"els\":[{"));
  assert_non_null(strstr(s, "\"id\":\"q\""));
  free(s);
  op(n, &r, 1, "alice", 1, "{\"op\":\"page_move\",\"page\":\"p2\",\"to\":1}", NULL);
  assert_true(hd_board_hash(n) == hd_board_hash(r));
  hd_board_free(n);
  hd_board_free(r);
}

/* Random writers, random interleavings: every replica (and a late joiner
 * from a snapshot taken half-way plus the tail) ends with the node's hash. */
static void test_random_interleavings(void **st) {
  (void)st;
  srand(1234);
  for (int round = 0; round < 20; round++) {
    hd_board_t *n, *reps[3], *late = NULL;
    hd_board_new(&n, NULL);
    for (int i = 0; i < 3; i++)
      hd_board_new(&reps[i], NULL);
    char **entries = calloc(400, sizeof *entries);
    int ne = 0;
    char *snap = NULL;
    for (int step = 0; step < 300; step++) {
      const char *user = (const char *[]){"a", "b", "c"}[rand() % 3];
      char t[512];
      int id = rand() % 20, kind = rand() % 9;
      switch (kind) {
      case 0:
      case 1:
        snprintf(t, sizeof t,
                 "{\"op\":\"add\",\"page\":\"%s\",\"el\":{\"id\":\"e%d\",\"k\":\"stroke\",\"x\":%d,\"y\":%d,"
                 "\"w\":9,\"h\":9,\"pts\":[0,0,50,0,9,9,50,16]}}",
                 rand() % 2 ? "p1" : "p2", id, rand() % 500, rand() % 500);
        break;
      case 2:
      case 3:
        snprintf(t, sizeof t, "{\"op\":\"upd\",\"items\":[{\"id\":\"e%d\",\"set\":{\"x\":%d,\"sw\":%d}}]}",
                 id, rand() % 500, 1 + rand() % 9);
        break;
      case 4: snprintf(t, sizeof t, "{\"op\":\"del\",\"ids\":[\"e%d\",\"e%d\"]}", id, rand() % 20); break;
      case 5: snprintf(t, sizeof t, "{\"op\":\"%s\"}", rand() % 3 ? "undo" : "redo"); break;
      case 6:
        snprintf(t, sizeof t, "{\"op\":\"z\",\"id\":\"e%d\",\"to\":%s}", id, rand() % 2 ? "\"front\"" : "0");
        break;
      case 7:
        snprintf(t, sizeof t, "{\"op\":\"page_add\",\"page\":{\"id\":\"p2\",\"name\":\"x\"},\"at\":%d}",
                 rand() % 2);
        break;
      default:
        snprintf(t, sizeof t, "{\"op\":\"%s\",\"page\":\"p%d\"}", rand() % 2 ? "clear" : "page_del",
                 1 + rand() % 2);
      }
      char *entry = NULL;
      hd_board_err_t e;
      if (hd_board_op(n, user, 1, t, strlen(t), step, &entry, &e) == HD_BOARD_COMMITTED)
        entries[ne++] = entry;
      if (step == 150) {
        snap = hd_board_snapshot(n);
        hd_board_new(&late, NULL);
        assert_int_equal(hd_board_load_snapshot(late, snap, strlen(snap)), 0);
      }
    }
    /* each replica applies the node's entries (the order is the node's) */
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < ne; k++)
        assert_int_equal(hd_board_apply_entry(reps[i], entries[k], strlen(entries[k])), 0);
    for (int k = 0; k < ne; k++) {
      json_t *o = json_loads(entries[k], 0, NULL);
      int64_t seq = json_integer_value(json_object_get(o, "seq"));
      json_decref(o);
      if (seq > hd_board_seq(late))
        assert_int_equal(hd_board_apply_entry(late, entries[k], strlen(entries[k])), 0);
    }
    uint64_t h = hd_board_hash(n);
    for (int i = 0; i < 3; i++)
      assert_true(hd_board_hash(reps[i]) == h);
    for (int i = 0; i < 3; i++)
      assert_int_equal(hd_board_bytes(reps[i]), hd_board_bytes(n));
    assert_true(hd_board_hash(late) == h);
    char *a = hd_board_snapshot(n), *b = hd_board_snapshot(late);
    assert_string_equal(a, b);
    free(a);
    free(b);
    for (int k = 0; k < ne; k++)
      free(entries[k]);
    free(entries);
    free(snap);
    hd_board_free(late);
    for (int i = 0; i < 3; i++)
      hd_board_free(reps[i]);
    hd_board_free(n);
  }
}

static void test_snapshot_bad_input(void **st) {
  (void)st;
  hd_board_t *n;
  hd_board_new(&n, NULL);
  op(n, NULL, 0, "a", 1, RECT, NULL);
  uint64_t h = hd_board_hash(n);
  const char *bad[] = {
      "",
      "{}",
      "{\"seq\":1,\"pages\":[]}",
      "{\"seq\":1,\"pages\":[{\"id\":\"p1\"}]}",
      "{\"seq\":1,\"pages\":[{\"id\":\"p1\",\"name\":\"\",\"els\":[{\"id\":\"x\"}]}]}",
      "{\"seq\":1,\"pages\":[{\"id\":\"p1\",\"name\":\"\",\"els\":[{\"id\":\"x\",\"k\":\"rect\","
      "\"v\":1},{\"id\":\"x\",\"k\":\"rect\",\"v\":1}]}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(hd_board_load_snapshot(n, bad[i], strlen(bad[i])), HD_EPROTO);
  assert_true(hd_board_hash(n) == h); /* unchanged */
  const char *e1 = "{\"seq\":2,\"do\":[{\"a\":\"del\",\"id\":\"r1\"},{\"a\":\"zz\"}]}",
             *e2 = "{\"seq\":5,\"do\":[]}";
  assert_int_equal(hd_board_apply_entry(n, e1, strlen(e1)), HD_EPROTO);
  assert_true(hd_board_hash(n) == h); /* nothing of it applied */
  assert_int_equal(hd_board_apply_entry(n, e2, strlen(e2)), HD_ESTATE);
  assert_int_equal(hd_board_seq(n), 1);
  hd_board_free(n);
  free(last_entry);
  last_entry = NULL;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_entry_and_replica), cmocka_unit_test(test_conflicts),
      cmocka_unit_test(test_errors_and_caps),       cmocka_unit_test(test_undo_redo),
      cmocka_unit_test(test_random_interleavings),  cmocka_unit_test(test_snapshot_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
