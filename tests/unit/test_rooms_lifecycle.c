/* Unit tests for the lifetime of rooms (docs/protocol.md "Rooms", issue 3): a
 * room is created on the first join or by the admin API, keeps its sid and
 * settings while empty for its empty timeout, is reused by a join within that
 * time (no second room_started), and is closed (room_finished) and freed after
 * it; rooms created by the admin API carry their own timeout, participant cap
 * and metadata, per tenant. Virtual clock, no sockets: messages the node sends
 * are captured per connection. */
#include "hd_test.h"

#include <jansson.h>

#include "base/err.h"
#include "base/log.h"
#include "proto/dtls.h"
#include "proto/token.h"
#include "sfu/node.h"

#define NCONN 4
#define MAX_MSGS 32

typedef struct {
  char *msgs[MAX_MSGS];
  int n;
  int closed;
  hd_participant_t *p;
} conn_t;

static conn_t g_conn[NCONN];
static hd_node_t *g_node;
static hd_dtls_cert_t *g_cert;
static int g_events[8];
static char g_finished_sid[24];
static hd_time_t g_now;
static const int64_t UNIX_NOW = 1800000000;

static void on_send(void *ud, void *c, const char *text, size_t len) {
  conn_t *k = c;
  if (k->n < MAX_MSGS) k->msgs[k->n++] = strndup(text, len);
}
static void on_close(void *ud, void *c, int code, const char *reason) {
  conn_t *k = c;
  k->closed = code;
  k->p = NULL;
}
static void on_event(void *ud, const hd_webhook_event_t *ev) {
  g_events[ev->type]++;
  if (ev->type == HD_WEBHOOK_ROOM_FINISHED)
    snprintf(g_finished_sid, sizeof g_finished_sid, "%s", ev->room_sid);
}
static const char *lookup(void *ud, const char *key) {
  return !strcmp(key, "appA") ? "secretA" : !strcmp(key, "appB") ? "secretB" : NULL;
}

static void clear(conn_t *k) {
  for (int i = 0; i < k->n; i++)
    free(k->msgs[i]);
  k->n = 0;
}

static void node_new(hd_time_t empty_timeout) {
  memset(g_conn, 0, sizeof g_conn);
  memset(g_events, 0, sizeof g_events);
  g_finished_sid[0] = 0;
  g_now = HD_SEC(100);
  hd_node_config_t cfg = {.rtc_ip = "127.0.0.1",
                          .rtc_port = 7881,
                          .max_participants = 4,
                          .room_empty_timeout = empty_timeout,
                          .signal_send = on_send,
                          .signal_close = on_close,
                          .on_event = on_event};
  assert_int_equal(hd_node_new(&g_node, &cfg, g_cert), 0);
}

static int setup(void **st) {
  (void)st;
  hd_log_set_level(HD_LOG_WARN);
  if (!g_cert && hd_dtls_cert_generate(&g_cert) < 0) return -1;
  node_new(HD_SEC(20));
  return 0;
}

static int teardown(void **st) {
  (void)st;
  hd_node_free(g_node);
  g_node = NULL;
  for (int i = 0; i < NCONN; i++)
    clear(&g_conn[i]);
  return 0;
}

static const char *token(const char *app, const char *room, const char *id) {
  static char out[HD_TOKEN_MAX];
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  snprintf(c.key, sizeof c.key, "%s", app);
  snprintf(c.room, sizeof c.room, "%s", room);
  snprintf(c.identity, sizeof c.identity, "%s", id);
  c.room_join = c.can_subscribe = 1;
  c.iat = UNIX_NOW - 10;
  c.exp = UNIX_NOW + 3600;
  assert_true(hd_token_mint(&c, !strcmp(app, "appA") ? "secretA" : "secretB", out, sizeof out) > 0);
  return out;
}

/* Joins connection i; returns the node's result and the room sid from "joined". */
static int join(int i, const char *app, const char *room, const char *id, char sid[24]) {
  char buf[6000];
  conn_t *k = &g_conn[i];
  clear(k);
  k->closed = 0;
  snprintf(buf, sizeof buf, "{\"type\":\"join\",\"id\":\"j\",\"token\":\"%s\"}", token(app, room, id));
  int rc = hd_node_rtc_message(g_node, k, &k->p, buf, strlen(buf), lookup, NULL, UNIX_NOW, g_now);
  if (sid) {
    sid[0] = 0;
    json_t *j = k->n ? json_loads(k->msgs[0], 0, NULL) : NULL;
    const char *s = json_string_value(json_object_get(json_object_get(j, "room"), "sid"));
    if (s) snprintf(sid, 24, "%s", s);
    json_decref(j);
  }
  return rc;
}

static void leave(int i) {
  const char *m = "{\"type\":\"leave\"}";
  conn_t *k = &g_conn[i];
  assert_true(hd_node_rtc_message(g_node, k, &k->p, m, strlen(m), lookup, NULL, UNIX_NOW, g_now) < 0);
  k->p = NULL;
}

/* Advances the virtual clock to t, running the node's timers as the shell would. */
static void run_until(hd_time_t t) {
  for (;;) {
    hd_time_t due = hd_node_next_timeout(g_node);
    if (due > t) break;
    if (due > g_now) g_now = due;
    hd_node_handle_timeout(g_node, g_now);
  }
  g_now = t;
}

static json_t *rooms(const char *app) {
  char *s = hd_node_admin_rooms_json(g_node, app);
  json_t *j = json_loads(s, 0, NULL);
  free(s);
  return j;
}

static json_t *room_entry(json_t *list, const char *name) {
  json_t *r;
  size_t i;
  json_array_foreach(json_object_get(list, "rooms"), i, r) {
    if (!strcmp(json_string_value(json_object_get(r, "name")), name)) return r;
  }
  return NULL;
}

static void test_rejoin_within_timeout_reuses_room(void **st) {
  (void)st;
  char sid[24], sid2[24];
  assert_int_equal(join(0, "appA", "r", "alice", sid), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 1);
  leave(0);
  hd_time_t left_at = g_now;
  /* empty: kept, no room_finished yet, its timer is the node's next deadline */
  assert_int_equal(hd_node_room_count(g_node), 1);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 0);
  assert_int_equal(hd_node_next_timeout(g_node), left_at + HD_SEC(20));
  /* a page reload 19 s later: same room, same sid, no second room_started */
  run_until(left_at + HD_SEC(19));
  assert_int_equal(join(1, "appA", "r", "alice", sid2), 0);
  assert_string_equal(sid2, sid);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 1);
  assert_int_equal(g_events[HD_WEBHOOK_PARTICIPANT_JOINED], 2);
  /* in use: the old deadline passes without effect */
  run_until(left_at + HD_SEC(30));
  assert_int_equal(hd_node_room_count(g_node), 1);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 0);
  /* the last one leaves by closing its socket: the timer starts from then */
  hd_node_rtc_closed(g_node, g_conn[1].p, g_now);
  g_conn[1].p = NULL;
  left_at = g_now;
  run_until(left_at + HD_SEC(20) - 1);
  assert_int_equal(hd_node_room_count(g_node), 1);
  run_until(left_at + HD_SEC(20));
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 1);
  assert_string_equal(g_finished_sid, sid);
  assert_int_equal(hd_node_next_timeout(g_node), HD_TIME_NEVER);
  /* afterwards the name starts a new room */
  assert_int_equal(join(2, "appA", "r", "bob", sid2), 0);
  assert_string_not_equal(sid2, sid);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 2);
}

static void test_zero_timeout_closes_at_once(void **st) {
  (void)st;
  hd_node_free(g_node);
  node_new(0);
  char sid[24];
  assert_int_equal(join(0, "appA", "r", "alice", sid), 0);
  leave(0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 1);
  /* admin-created rooms need a timeout of their own then */
  hd_room_opts_t o = {.empty_timeout = -1};
  char *js = NULL;
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "pre", &o, UNIX_NOW, g_now, &js), HD_EINVAL);
  assert_null(js);
  o.empty_timeout = HD_SEC(2);
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "pre", &o, UNIX_NOW, g_now, &js), 0);
  free(js);
  run_until(g_now + HD_SEC(2));
  assert_int_equal(hd_node_room_count(g_node), 0);
}

static void test_admin_created_room(void **st) {
  (void)st;
  hd_room_opts_t o = {.empty_timeout = HD_SEC(5), .max_participants = 2, .metadata = "{\"topic\":\"x\"}"};
  char *js = NULL, sid[24];
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "pre", &o, UNIX_NOW, g_now, &js), 0);
  json_t *j = json_loads(js, 0, NULL);
  free(js);
  assert_string_equal(json_string_value(json_object_get(j, "name")), "pre");
  assert_int_equal(json_integer_value(json_object_get(j, "empty_timeout_s")), 5);
  assert_int_equal(json_integer_value(json_object_get(j, "max_participants")), 2);
  assert_int_equal(json_integer_value(json_object_get(j, "created_at")), UNIX_NOW);
  assert_int_equal(json_integer_value(json_object_get(j, "participants")), 0);
  assert_string_equal(json_string_value(json_object_get(j, "metadata")), "{\"topic\":\"x\"}");
  char created_sid[24];
  snprintf(created_sid, sizeof created_sid, "%s", json_string_value(json_object_get(j, "sid")));
  json_decref(j);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 1);
  /* again: exists; another tenant's room of the same name is its own */
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "pre", &o, UNIX_NOW, g_now, &js), HD_ESTATE);
  o.metadata = NULL;
  assert_int_equal(hd_node_admin_create_room(g_node, "appB", "pre", &o, UNIX_NOW, g_now, &js), 0);
  free(js);
  j = rooms("appA");
  assert_int_equal(json_array_size(json_object_get(j, "rooms")), 1);
  json_decref(j);
  j = rooms("appB");
  json_t *rb = room_entry(j, "pre");
  assert_non_null(rb);
  assert_string_not_equal(json_string_value(json_object_get(rb, "sid")), created_sid);
  json_decref(j);
  /* metadata over the cap */
  char big[HD_NODE_ROOM_METADATA_MAX + 1];
  memset(big, 'm', sizeof big - 1);
  big[sizeof big - 1] = 0;
  o.metadata = big;
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "other", &o, UNIX_NOW, g_now, &js), HD_EINVAL);
  /* joins get the created room (its sid), and its own cap of 2 */
  run_until(g_now + HD_SEC(4)); /* nobody yet: still there after 4 of its 5 s */
  assert_int_equal(join(0, "appA", "pre", "alice", sid), 0);
  assert_string_equal(sid, created_sid);
  assert_non_null(strstr(g_conn[0].msgs[0], "\"max_participants\":2"));
  assert_int_equal(join(1, "appA", "pre", "bob", NULL), 0);
  assert_true(join(2, "appA", "pre", "carol", NULL) < 0);
  assert_non_null(strstr(g_conn[2].msgs[0], "room_full"));
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_STARTED], 2); /* appA's and appB's "pre", nothing else */
  /* empty again: its own 5 s, not the node's 20 */
  leave(0);
  leave(1);
  hd_time_t left_at = g_now;
  j = rooms("appA");
  assert_int_equal(json_integer_value(json_object_get(room_entry(j, "pre"), "closes_in_s")), 5);
  json_decref(j);
  run_until(left_at + HD_SEC(5));
  j = rooms("appA");
  assert_null(room_entry(j, "pre"));
  json_decref(j);
  assert_string_equal(g_finished_sid, created_sid);
  /* app B's room was never joined: it went at 5 s after its creation */
  j = rooms("appB");
  assert_null(room_entry(j, "pre"));
  json_decref(j);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 2);
}

static void test_admin_close_empty_room(void **st) {
  (void)st;
  hd_room_opts_t o = {.empty_timeout = HD_SEC(600)};
  char *js = NULL;
  assert_int_equal(hd_node_admin_create_room(g_node, "appA", "pre", &o, UNIX_NOW, g_now, &js), 0);
  free(js);
  assert_int_equal(hd_node_admin_close_room(g_node, "appB", "pre", g_now), HD_ENOTFOUND);
  assert_int_equal(hd_node_admin_close_room(g_node, "appA", "pre", g_now), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_events[HD_WEBHOOK_ROOM_FINISHED], 1);
  /* a room with people: they get left room_closed and the room goes at once */
  assert_int_equal(join(0, "appA", "q", "alice", NULL), 0);
  assert_int_equal(hd_node_admin_close_room(g_node, "appA", "q", g_now), 0);
  assert_int_equal(hd_node_room_count(g_node), 0);
  assert_int_equal(g_conn[0].closed, 1000);
  /* shutdown frees rooms waiting for their timeout (teardown, under ASan) */
  assert_int_equal(join(1, "appA", "z", "bob", NULL), 0);
  leave(1);
  assert_int_equal(hd_node_room_count(g_node), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_rejoin_within_timeout_reuses_room, setup, teardown),
      cmocka_unit_test_setup_teardown(test_zero_timeout_closes_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_admin_created_room, setup, teardown),
      cmocka_unit_test_setup_teardown(test_admin_close_empty_room, setup, teardown),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  hd_dtls_cert_free(g_cert);
  return rc;
}
