/* The whiteboard on the RTM broker (src/rtm/broker.h publish hook +
 * src/board/board_server.h), in process on a virtual clock: a room-scoped
 * writer and reader on wb:<room>:main, entries fanned out as channel
 * messages in board order, a reader's change refused 403 with nothing
 * published (the channel sequence has no hole), a cursor passed on
 * unchanged, another room's board out of scope, a retried publish id not
 * applied twice, and nothing of a board channel in the RTM history. */
#include "hd_test.h"

#include <jansson.h>

#include "base/err.h"
#include "board/board_server.h"
#include "rtm/broker.h"

#define SECRET "board-rtm-secret-0123456789"

static struct {
  uint64_t conn;
  char *text;
} outs[4096];
static int n_out;

static void cb_send(void *ud, uint64_t conn, const char *t, size_t len) {
  (void)ud;
  assert_true(n_out < 4096);
  outs[n_out].conn = conn;
  outs[n_out++].text = strndup(t, len);
}
static void cb_close(void *ud, uint64_t conn, int code, const char *reason) {
  (void)ud, (void)conn, (void)code, (void)reason;
}
static const char *lookup(void *ud, const char *key) {
  (void)ud;
  return strcmp(key, "app") ? NULL : SECRET;
}

static char *token(const char *user, const char *room, int writer) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, "app");
  strcpy(c.identity, user);
  strcpy(c.room, room);
  c.rtm = 1;
  c.can_publish_data = writer;
  c.exp = 1700000000 + 600;
  static char buf[4][HD_TOKEN_MAX];
  static int k;
  char *o = buf[k++ % 4];
  assert_true(hd_token_mint(&c, SECRET, o, HD_TOKEN_MAX) > 0);
  return o;
}

static void feed(hd_rtm_broker_t *b, uint64_t conn, const char *t) {
  assert_int_equal(hd_rtm_conn_message(b, conn, t, strlen(t), 0), 0);
}

/* The messages of type `type` to conn, parsed (caller decref's). */
static int all(uint64_t conn, const char *type, json_t **out, int max) {
  int n = 0;
  for (int k = 0; k < n_out && n < max; k++) {
    if (outs[k].conn != conn) continue;
    json_t *o = json_loads(outs[k].text, 0, NULL);
    if (!strcmp(json_string_value(json_object_get(o, "type")), type))
      out[n++] = o;
    else
      json_decref(o);
  }
  return n;
}

static json_t *last(uint64_t conn) {
  for (int k = n_out - 1; k >= 0; k--)
    if (outs[k].conn == conn) return json_loads(outs[k].text, 0, NULL);
  return NULL;
}

static void test_board_on_rtm(void **state) {
  (void)state;
  hd_rtm_store_t *rs;
  hd_board_store_t *bs;
  hd_board_server_t *srv;
  char err[200];
  assert_int_equal(hd_rtm_store_mem_new(&rs), 0);
  assert_int_equal(hd_board_store_open(&bs, ":memory:", err, sizeof err), 0);
  hd_board_server_config_t bc = {.store = bs};
  assert_int_equal(hd_board_server_new(&srv, &bc), 0);
  hd_rtm_config_t c = {.send = cb_send,
                       .close = cb_close,
                       .secret_lookup = lookup,
                       .store = rs,
                       .wall_offset = HD_SEC(1700000000),
                       .hook_prefix = HD_BOARD_PREFIX,
                       .pub_hook = hd_board_server_pub_hook,
                       .hook_ud = srv};
  hd_rtm_broker_t *b;
  assert_int_equal(hd_rtm_broker_new(&b, &c, 0), 0);
  char t[HD_TOKEN_MAX + 100];
  const uint64_t W = 1, R = 2, O = 3;
  hd_rtm_conn_open(b, W, 0);
  hd_rtm_conn_open(b, R, 0);
  hd_rtm_conn_open(b, O, 0);
  snprintf(t, sizeof t, "{\"type\":\"login\",\"token\":\"%s\"}", token("wendy", "lesson", 1));
  feed(b, W, t);
  snprintf(t, sizeof t, "{\"type\":\"login\",\"token\":\"%s\"}", token("rita", "lesson", 0));
  feed(b, R, t);
  snprintf(t, sizeof t, "{\"type\":\"login\",\"token\":\"%s\"}", token("olga", "other", 1));
  feed(b, O, t);
  feed(b, W, "{\"type\":\"sub\",\"id\":\"s\",\"ch\":\"wb:lesson:main\"}");
  feed(b, R, "{\"type\":\"sub\",\"id\":\"s\",\"ch\":\"wb:lesson:main\"}");
  json_t *o = last(R);
  assert_string_equal(json_string_value(json_object_get(o, "type")),
                      "pres"); /* subscribed: presence follows ok */
  json_decref(o);
  /* another room's token: its scope does not reach this board */
  feed(b, O, "{\"type\":\"sub\",\"id\":\"s\",\"ch\":\"wb:lesson:main\"}");
  o = last(O);
  assert_int_equal(json_integer_value(json_object_get(o, "code")), 403);
  json_decref(o);
  /* the writer adds twice (the second publish repeats the first id: a retry) */
  const char *add = "{\"type\":\"pub\",\"id\":\"p1\",\"ch\":\"wb:lesson:main\",\"data\":\"{\\\"op\\\":"
                    "\\\"add\\\",\\\"cid\\\":"
                    "\\\"c1\\\",\\\"page\\\":\\\"p1\\\",\\\"el\\\":{\\\"id\\\":\\\"r1\\\",\\\"k\\\":"
                    "\\\"rect\\\",\\\"x\\\":1,"
                    "\\\"y\\\":2,\\\"w\\\":3,\\\"h\\\":4}}\"}";
  feed(b, W, add);
  feed(b, W, add);
  o = last(W);
  assert_true(json_is_true(json_object_get(o, "dup")));
  json_decref(o);
  /* the reader's change: 403, nothing published */
  feed(b, R,
       "{\"type\":\"pub\",\"id\":\"x\",\"ch\":\"wb:lesson:main\",\"data\":\"{\\\"op\\\":\\\"del\\\","
       "\\\"ids\\\":[\\\"r1\\\"]}\"}");
  o = last(R);
  assert_int_equal(json_integer_value(json_object_get(o, "code")), 403);
  assert_non_null(strstr(json_string_value(json_object_get(o, "message")), "canPublishData"));
  json_decref(o);
  /* the reader's cursor passes unchanged */
  feed(b, R,
       "{\"type\":\"pub\",\"id\":\"y\",\"ch\":\"wb:lesson:main\",\"data\":\"{\\\"op\\\":\\\"cur\\\","
       "\\\"x\\\":5,\\\"y\\\":6}\"}");
  feed(b, W,
       "{\"type\":\"pub\",\"id\":\"p2\",\"ch\":\"wb:lesson:main\",\"data\":\"{\\\"op\\\":\\\"upd\\\","
       "\\\"items\\\":[{"
       "\\\"id\\\":\\\"r1\\\",\\\"set\\\":{\\\"x\\\":9}}]}\",\"store\":true}");
  /* the reader got: entry 1 (cseq 1), its cursor (cseq 2), entry 2 (cseq 3) */
  json_t *m[8];
  int n = all(R, "msg", m, 8);
  assert_int_equal(n, 3);
  for (int i = 0; i < n; i++)
    assert_int_equal(json_integer_value(json_object_get(m[i], "cseq")), i + 1);
  json_t *e1 = json_loads(json_string_value(json_object_get(m[0], "data")), 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(e1, "seq")), 1);
  assert_string_equal(json_string_value(json_object_get(e1, "by")), "wendy");
  assert_string_equal(json_string_value(json_object_get(e1, "cid")), "c1");
  json_decref(e1);
  assert_string_equal(json_string_value(json_object_get(m[1], "data")), "{\"op\":\"cur\",\"x\":5,\"y\":6}");
  json_t *e2 = json_loads(json_string_value(json_object_get(m[2], "data")), 0, NULL);
  assert_int_equal(json_integer_value(json_object_get(e2, "seq")), 2);
  json_decref(e2);
  for (int i = 0; i < n; i++)
    json_decref(m[i]);
  /* a board channel's messages are never in the RTM history ("store" ignored) */
  feed(b, W, "{\"type\":\"hist\",\"id\":\"h\",\"ch\":\"wb:lesson:main\"}");
  o = last(W);
  assert_int_equal(json_array_size(json_object_get(o, "msgs")), 0);
  json_decref(o);
  /* the board's load has both entries */
  char *j;
  assert_int_equal(hd_board_server_load(srv, "app", "wb:lesson:main", -1, &j), 0);
  assert_non_null(strstr(j, "\"seq\":2"));
  free(j);
  hd_rtm_broker_free(b);
  hd_board_server_free(srv);
  hd_board_store_free(bs);
  hd_rtm_store_free(rs);
  for (int i = 0; i < n_out; i++)
    free(outs[i].text);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_board_on_rtm)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
