/* RTM broker (src/rtm/broker.h) on a virtual clock with the in-memory store:
 * ordering, acks and the window, resume + replay, client-side dedupe, overflow
 * policy, presence timeout, attribute CAS, lock TTL, peer receipts, bad input,
 * flood. Outputs are captured per connection and parsed back with jansson. */
#include "hd_test.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/err.h"
#include "rtm/broker.h"
#include "rtm/client.h"

#define SECRET "test-secret-0123456789"
#define MAXOUT 16384

typedef struct {
  uint64_t conn;
  char *text;
} out_t;

static out_t outs[MAXOUT];
static int n_out;
static struct {
  uint64_t conn;
  int code;
} closes[64];
static int n_close;

static void cb_send(void *ud, uint64_t conn, const char *t, size_t len) {
  assert_true(n_out < MAXOUT);
  outs[n_out].conn = conn;
  outs[n_out].text = strndup(t, len);
  n_out++;
}
static void cb_close(void *ud, uint64_t conn, int code, const char *reason) {
  if (n_close < 64) {
    closes[n_close].conn = conn;
    closes[n_close].code = code;
    n_close++;
  }
}
static const char *lookup(void *ud, const char *key) {
  return strcmp(key, "app") && strcmp(key, "app2") ? NULL : SECRET;
}

static void reset_out(void) {
  for (int i = 0; i < n_out; i++)
    free(outs[i].text);
  n_out = 0;
  n_close = 0;
}

static hd_rtm_store_t *store;
static hd_time_t now;

static hd_rtm_broker_t *mk(size_t window, double rate) {
  hd_rtm_config_t c = {.send = cb_send,
                       .close = cb_close,
                       .secret_lookup = lookup,
                       .store = store,
                       .wall_offset = HD_SEC(1700000000),
                       .window_msgs = window,
                       .rate = rate,
                       .burst = rate};
  hd_rtm_broker_t *b;
  assert_int_equal(hd_rtm_broker_new(&b, &c, now), 0);
  return b;
}

static char *token(const char *user, int rtm, int admin, int64_t exp_in) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, "app");
  strcpy(c.identity, user);
  c.rtm = rtm;
  c.room_admin = admin;
  c.exp = 1700000000 + now / 1000000 + exp_in;
  static char buf[8][HD_TOKEN_MAX];
  static int k;
  char *o = buf[k++ % 8];
  assert_true(hd_token_mint(&c, SECRET, o, HD_TOKEN_MAX) > 0);
  return o;
}

/* A token of any app / room (room "" = not room-scoped). */
static char *token_x(const char *app, const char *user, const char *room, int admin) {
  hd_token_claims_t c;
  memset(&c, 0, sizeof c);
  strcpy(c.key, app);
  strcpy(c.identity, user);
  strcpy(c.room, room);
  c.rtm = 1;
  c.room_admin = admin;
  c.exp = 1700000000 + now / 1000000 + 600;
  static char buf[8][HD_TOKEN_MAX];
  static int k;
  char *o = buf[k++ % 8];
  assert_true(hd_token_mint(&c, SECRET, o, HD_TOKEN_MAX) > 0);
  return o;
}

/* A broker with the defaults except what over sets (callbacks are filled in). */
static hd_rtm_broker_t *mk_cfg(hd_rtm_config_t over) {
  over.send = cb_send;
  over.close = cb_close;
  over.secret_lookup = lookup;
  if (!over.store) over.store = store;
  over.wall_offset = HD_SEC(1700000000);
  hd_rtm_broker_t *b;
  assert_int_equal(hd_rtm_broker_new(&b, &over, now), 0);
  return b;
}

static void feed(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void feed(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) {
  char t[40000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t, sizeof t, fmt, ap);
  va_end(ap);
  assert_int_equal(hd_rtm_conn_message(b, conn, t, strlen(t), now), 0);
}

/* The i-th output to conn whose type is `type` (NULL: any), parsed; NULL if none. */
static json_t *nth(uint64_t conn, const char *type, int i) {
  for (int k = 0; k < n_out; k++) {
    if (outs[k].conn != conn) continue;
    json_t *o = json_loads(outs[k].text, 0, NULL);
    assert_non_null(o);
    if (!type || !strcmp(json_string_value(json_object_get(o, "type")), type)) {
      if (i-- == 0) return o;
    }
    json_decref(o);
  }
  return NULL;
}
__attribute__((unused)) static void dump(uint64_t conn) {
  for (int k = 0; k < n_out; k++)
    if (outs[k].conn == conn) fprintf(stderr, "  %llu: %s\n", (unsigned long long)conn, outs[k].text);
}
static int count(uint64_t conn, const char *type) {
  int n = 0;
  json_t *o;
  while ((o = nth(conn, type, n))) {
    json_decref(o);
    n++;
  }
  return n;
}
static int64_t ival(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }
static const char *sval(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* Opens conn, logs in as user; returns the welcome's resume token (static). */
static const char *login(hd_rtm_broker_t *b, uint64_t conn, const char *user, int admin) {
  static char resume[8][64];
  static int k;
  assert_int_equal(hd_rtm_conn_open(b, conn, now), 0);
  feed(b, conn, "{\"type\":\"login\",\"id\":\"L\",\"token\":\"%s\"}", token(user, 1, admin, 600));
  json_t *w = nth(conn, "welcome", count(conn, "welcome") - 1);
  assert_non_null(w);
  char *r = resume[k++ % 8];
  strcpy(r, sval(w, "resume"));
  json_decref(w);
  return r;
}

/* The last output to conn, parsed (NULL if none). */
static json_t *last_out(uint64_t conn) {
  for (int k = n_out - 1; k >= 0; k--)
    if (outs[k].conn == conn) return json_loads(outs[k].text, 0, NULL);
  return NULL;
}

static int closed_with(uint64_t conn, int code) {
  for (int i = 0; i < n_close; i++)
    if (closes[i].conn == conn && closes[i].code == code) return 1;
  return 0;
}

/* Opens conn and logs in with token tk; returns the reply (welcome or error). */
static json_t *login_tok(hd_rtm_broker_t *b, uint64_t conn, const char *tk) {
  assert_int_equal(hd_rtm_conn_open(b, conn, now), 0);
  feed(b, conn, "{\"type\":\"login\",\"id\":\"L\",\"token\":\"%s\"}", tk);
  json_t *o = last_out(conn);
  assert_non_null(o);
  return o;
}

/* A request on conn; returns its reply (the last output), parsed. */
static json_t *req(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *req(hd_rtm_broker_t *b, uint64_t conn, const char *fmt, ...) {
  static char t[40000];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t, sizeof t, fmt, ap);
  va_end(ap);
  int before = n_out;
  assert_int_equal(hd_rtm_conn_message(b, conn, t, strlen(t), now), 0);
  for (int k = before; k < n_out; k++) /* the reply: ok/error, not an event */
    if (outs[k].conn == conn &&
        (strstr(outs[k].text, "\"type\":\"ok\"") || strstr(outs[k].text, "\"type\":\"error\"")))
      return json_loads(outs[k].text, 0, NULL);
  return NULL;
}

static void ack_all(hd_rtm_broker_t *b, uint64_t conn) {
  json_t *o = last_out(conn);
  if (o && json_object_get(o, "s")) feed(b, conn, "{\"type\":\"ack\",\"s\":%lld}", (long long)ival(o, "s"));
  json_decref(o);
}

static int setup(void **st) {
  now = HD_SEC(1000);
  assert_int_equal(hd_rtm_store_mem_new(&store), 0);
  reset_out();
  return 0;
}
static int teardown(void **st) {
  reset_out();
  hd_rtm_store_free(store);
  return 0;
}

static void test_order_and_ack(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  feed(b, 1, "{\"type\":\"sub\",\"id\":\"a\",\"ch\":\"room\"}");
  feed(b, 2, "{\"type\":\"sub\",\"id\":\"b\",\"ch\":\"room\"}");
  for (int i = 0; i < 20; i++)
    feed(b, 1, "{\"type\":\"pub\",\"id\":\"p%d\",\"ch\":\"room\",\"data\":\"m%d\"}", i, i);
  assert_int_equal(count(1, "ok"), 21); /* sub + 20 publish acks */
  for (int who = 1; who <= 2; who++) {
    assert_int_equal(count(who, "msg"), 20);
    for (int i = 0; i < 20; i++) {
      json_t *m = nth(who, "msg", i);
      assert_int_equal(ival(m, "cseq"), i + 1);
      char want[8];
      snprintf(want, sizeof want, "m%d", i);
      assert_string_equal(sval(m, "data"), want);
      json_decref(m);
    }
    /* session seqs are contiguous from 1 over every sequenced message */
    int64_t expect = 1;
    json_t *o;
    for (int i = 0; (o = nth(who, NULL, i)); i++) {
      if (strcmp(sval(o, "type"), "welcome")) assert_int_equal(ival(o, "s"), expect++);
      json_decref(o);
    }
  }
  json_t *ok = nth(1, "ok", 20);
  assert_int_equal(ival(ok, "cseq"), 20);
  assert_string_equal(sval(ok, "id"), "p19");
  json_decref(ok);
  /* a bad ack (beyond what was sent) is an error; a good one is silent */
  int before = n_out;
  feed(b, 2, "{\"type\":\"ack\",\"s\":10}");
  assert_int_equal(n_out, before);
  feed(b, 2, "{\"type\":\"ack\",\"s\":100000}");
  json_t *e = nth(2, "error", 0);
  assert_int_equal(ival(e, "code"), 400);
  json_decref(e);
  /* the ack fast path (broker.c ack_fast) leaves anything but the plain form
   * to the JSON parser: a leading zero is no JSON number (400), other
   * spacing is a valid ack (silent) */
  feed(b, 2, "{\"type\":\"ack\",\"s\":011}");
  assert_int_equal(count(2, "error"), 2);
  before = n_out;
  feed(b, 2, "{ \"type\": \"ack\", \"s\": 12 }");
  assert_int_equal(n_out, before);
  hd_rtm_stats_t s;
  hd_rtm_stats(b, &s);
  assert_int_equal(s.published, 20);
  assert_int_equal(s.sessions, 2);
  hd_rtm_broker_free(b);
}

/* The window ring's capacity is a power of two (broker.c WIN_AT, issue 17):
 * with window_messages 20 it grows 16 -> 32, but the cap stays 20 unacked;
 * a session acking in steps of 7 wraps the ring many times and still gets
 * every message in order, and a resume replays exactly the unacked ones. */
static void test_window_ring_cap_and_wrap(void **st) {
  hd_rtm_broker_t *b = mk(20, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);                    /* never acks */
  const char *rc = login(b, 3, "carol", 0); /* acks every 7 */
  for (int c = 1; c <= 3; c++)
    feed(b, (uint64_t)c, "{\"type\":\"sub\",\"ch\":\"c\"}"); /* each: an ok with "s" 1 in its window */
  ack_all(b, 1);
  int w0 = 0; /* bob's window before the messages: his sub's ok, carol's presence join */
  json_t *o;
  for (int i = 0; (o = nth(2, NULL, i)); i++) {
    w0 += json_object_get(o, "s") != NULL;
    json_decref(o);
  }
  assert_true(w0 >= 1 && w0 < 20);
  int64_t carol_acked = 0;
  for (int i = 1; i <= 60; i++) {
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"m%d\"}", i);
    ack_all(b, 1);
    /* bob's window: w0 + i entries; the 20th unacked entry is the cap, one
     * more ends the session with 4008 */
    assert_int_equal(closed_with(2, HD_RTM_CLOSE_OVERFLOW), w0 + i > 20);
    o = last_out(3);
    if (i % 7 == 0 && o) {
      carol_acked = ival(o, "s");
      feed(b, 3, "{\"type\":\"ack\",\"s\":%lld}", (long long)carol_acked);
    }
    json_decref(o);
  }
  assert_int_equal(count(2, "msg"), 20 - w0);
  assert_int_equal(count(3, "msg"), 60);
  for (int i = 0; i < 60; i++) {
    json_t *m = nth(3, "msg", i);
    assert_int_equal(ival(m, "cseq"), i + 1);
    json_decref(m);
  }
  /* carol acked up to message 56: 4 unacked, replayed in order on resume */
  json_t *m56 = nth(3, "msg", 55);
  assert_int_equal(carol_acked, ival(m56, "s"));
  json_decref(m56);
  hd_rtm_conn_closed(b, 3, now);
  reset_out();
  assert_int_equal(hd_rtm_conn_open(b, 4, now), 0);
  feed(b, 4, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":%lld}", rc, (long long)carol_acked);
  assert_int_equal(count(4, "msg"), 4);
  for (int i = 0; i < 4; i++) {
    json_t *m = nth(4, "msg", i);
    assert_int_equal(ival(m, "cseq"), 57 + i);
    assert_int_equal(ival(m, "s"), carol_acked + 1 + i);
    json_decref(m);
  }
  hd_rtm_broker_free(b);
}

static void test_resume_replay_dedupe(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  const char *rb = login(b, 2, "bob", 0);
  feed(b, 1, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  hd_rtm_client_t cl;
  hd_rtm_client_init(&cl);
  for (int i = 0; i < 5; i++)
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"x\"}");
  /* bob's client app sees everything sent so far */
  int delivered = 0;
  json_t *o;
  for (int i = 0; (o = nth(2, NULL, i)); i++) {
    if (json_object_get(o, "s") && hd_rtm_client_on_seq(&cl, ival(o, "s"), now) == HD_RTM_DELIVER &&
        !strcmp(sval(o, "type"), "msg") &&
        hd_rtm_client_on_channel_msg(&cl, "c", ival(o, "cseq")) == HD_RTM_DELIVER)
      delivered++;
    json_decref(o);
  }
  assert_int_equal(delivered, 5);
  int64_t last = hd_rtm_client_resume_last(&cl);
  /* the connection drops; messages keep queueing for the session */
  hd_rtm_conn_closed(b, 2, now);
  assert_int_equal(hd_rtm_next_timeout(b), now + HD_RTM_DEFAULT_RESUME_GRACE);
  for (int i = 0; i < 5; i++)
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"y\"}");
  now += HD_SEC(10);
  hd_rtm_tick(b, now);
  /* resume claiming less than it saw: the overlap is replayed and deduped */
  reset_out();
  assert_int_equal(hd_rtm_conn_open(b, 3, now), 0);
  feed(b, 3, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":%lld}", rb, (long long)(last - 2));
  json_t *w = nth(3, "welcome", 0);
  assert_non_null(w);
  assert_true(json_is_true(json_object_get(w, "resumed")));
  json_decref(w);
  int dup = 0;
  for (int i = 0; (o = nth(3, NULL, i)); i++) {
    if (json_object_get(o, "s")) {
      hd_rtm_verdict_t v = hd_rtm_client_on_seq(&cl, ival(o, "s"), now);
      if (v == HD_RTM_DUPLICATE) dup++;
      if (v == HD_RTM_DELIVER && !strcmp(sval(o, "type"), "msg") &&
          hd_rtm_client_on_channel_msg(&cl, "c", ival(o, "cseq")) == HD_RTM_DELIVER)
        delivered++;
      assert_int_not_equal(v, HD_RTM_GAP);
    }
    json_decref(o);
  }
  assert_int_equal(dup, 2);
  assert_int_equal(delivered, 10);
  assert_int_equal(cl.last_cseq[0], 10);
  /* unknown resume token: 410 session_gone */
  assert_int_equal(hd_rtm_conn_open(b, 4, now), 0);
  feed(b, 4, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"nope\",\"last\":0}");
  json_t *e = nth(4, "error", 0);
  assert_int_equal(ival(e, "code"), 410);
  assert_string_equal(sval(e, "reason"), "session_gone");
  json_decref(e);
  /* resuming on a new connection while attached closes the old one with 4009 */
  n_close = 0;
  assert_int_equal(hd_rtm_conn_open(b, 5, now), 0);
  feed(b, 5, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":%lld}", rb, (long long)cl.last_s);
  assert_int_equal(n_close, 1);
  assert_int_equal(closes[0].conn, 3);
  assert_int_equal(closes[0].code, HD_RTM_CLOSE_REPLACED);
  hd_rtm_stats_t s;
  hd_rtm_stats(b, &s);
  assert_int_equal(s.resumes, 2);
  hd_rtm_broker_free(b);
}

static void test_pub_dedupe(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  feed(b, 1, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"same\",\"ch\":\"c\",\"data\":\"x\"}");
  feed(b, 1, "{\"type\":\"pub\",\"id\":\"same\",\"ch\":\"c\",\"data\":\"x\"}");
  assert_int_equal(count(1, "msg"), 1);
  json_t *ok = nth(1, "ok", 2);
  assert_true(json_is_true(json_object_get(ok, "dup")));
  assert_int_equal(ival(ok, "cseq"), 1);
  json_decref(ok);
  hd_rtm_broker_free(b);
}

static void test_overflow_and_timeout(void **st) {
  hd_rtm_broker_t *b = mk(16, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  login(b, 3, "carol", 0);
  feed(b, 1, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 3, "{\"type\":\"sub\",\"ch\":\"c\"}");
  /* alice and carol ack as they go, bob never does */
  for (int i = 0; i < 30; i++) {
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"x\"}");
    feed(b, 1, "{\"type\":\"ack\",\"s\":%d}", 2 * i + 3 > 0 ? (int)(count(1, NULL) - 1) : 0);
    feed(b, 3, "{\"type\":\"ack\",\"s\":%d}", (int)(count(3, NULL) - 1));
  }
  int closed = 0;
  for (int i = 0; i < n_close; i++)
    if (closes[i].conn == 2 && closes[i].code == HD_RTM_CLOSE_OVERFLOW) closed++;
  assert_int_equal(closed, 1);
  assert_int_equal(count(3, "msg"), 30); /* others unaffected */
  json_t *p;
  int timeouts = 0;
  for (int i = 0; (p = nth(3, "pres", i)); i++) {
    timeouts += !strcmp(sval(p, "ev"), "timeout") && !strcmp(sval(p, "user"), "bob");
    json_decref(p);
  }
  assert_int_equal(timeouts, 1);
  hd_rtm_stats_t s;
  hd_rtm_stats(b, &s);
  assert_int_equal(s.drops, 1);
  assert_int_equal(s.sessions, 2);
  /* carol's connection drops and she never resumes: presence timeout after the grace */
  hd_rtm_conn_closed(b, 3, now);
  now += HD_RTM_DEFAULT_RESUME_GRACE - 1;
  hd_rtm_tick(b, now);
  hd_rtm_stats(b, &s);
  assert_int_equal(s.sessions, 2);
  now += 1;
  assert_true(hd_rtm_next_timeout(b) <= now);
  hd_rtm_tick(b, now);
  hd_rtm_stats(b, &s);
  assert_int_equal(s.sessions, 1);
  assert_int_equal(s.expired, 1);
  timeouts = 0;
  for (int i = 0; (p = nth(1, "pres", i)); i++) {
    timeouts += !strcmp(sval(p, "ev"), "timeout") && !strcmp(sval(p, "user"), "carol");
    json_decref(p);
  }
  assert_int_equal(timeouts, 1);
  assert_int_equal(hd_rtm_next_timeout(b), HD_TIME_NEVER);
  hd_rtm_broker_free(b);
}

static void test_presence_who_state(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  login(b, 3, "bob", 0); /* a second device of bob */
  feed(b, 1, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 3, "{\"type\":\"sub\",\"ch\":\"c\"}");
  assert_int_equal(count(1, "pres"), 2); /* alice, bob once */
  feed(b, 2, "{\"type\":\"state\",\"ch\":\"c\",\"state\":\"mic=on\"}");
  feed(b, 1, "{\"type\":\"who\",\"id\":\"w\",\"ch\":\"c\"}");
  json_t *ok = nth(1, "ok", 1);
  json_t *users = json_object_get(ok, "users");
  assert_int_equal(json_array_size(users), 2);
  int found = 0;
  for (size_t i = 0; i < 2; i++) {
    json_t *u = json_array_get(users, i);
    if (!strcmp(sval(u, "user"), "bob")) found = !strcmp(sval(u, "state"), "mic=on");
  }
  assert_true(found);
  json_decref(ok);
  feed(b, 2, "{\"type\":\"unsub\",\"ch\":\"c\"}");
  assert_int_equal(count(1, "pres"), 3); /* state event; bob still present on device 2 */
  feed(b, 3, "{\"type\":\"logout\"}");
  json_t *p = nth(1, "pres", 3);
  assert_string_equal(sval(p, "ev"), "leave");
  assert_string_equal(sval(p, "user"), "bob");
  json_decref(p);
  hd_rtm_broker_free(b);
}

/* rtm.presence_max (docs/rtm.md "Presence"): join/leave events only while
 * the channel has at most that many members; who still lists everyone. */
static void test_presence_max(void **st) {
  hd_rtm_broker_t *b = mk_cfg((hd_rtm_config_t){.presence_max = 3});
  const char *users[5] = {"u1", "u2", "u3", "u4", "u5"};
  for (int i = 0; i < 5; i++) {
    login(b, (uint64_t)(i + 1), users[i], 0);
    feed(b, (uint64_t)(i + 1), "{\"type\":\"sub\",\"ch\":\"big\"}");
  }
  assert_int_equal(count(1, "pres"), 3); /* u1..u3 joined while the channel had <= 3 members */
  assert_int_equal(count(5, "pres"), 0); /* u4, u5 joined a channel of 4, 5: no event */
  feed(b, 1, "{\"type\":\"who\",\"id\":\"w\",\"ch\":\"big\"}");
  json_t *ok = nth(1, "ok", 1);
  assert_int_equal(json_array_size(json_object_get(ok, "users")), 5);
  json_decref(ok);
  feed(b, 5, "{\"type\":\"unsub\",\"ch\":\"big\"}"); /* 5 -> 4 members: quiet */
  feed(b, 4, "{\"type\":\"unsub\",\"ch\":\"big\"}"); /* 4 -> 3: quiet (it had 4) */
  assert_int_equal(count(1, "pres"), 3);
  feed(b, 3, "{\"type\":\"unsub\",\"ch\":\"big\"}"); /* 3 -> 2: "leave" */
  assert_int_equal(count(1, "pres"), 4);
  json_t *p = nth(1, "pres", 3);
  assert_string_equal(sval(p, "ev"), "leave");
  assert_string_equal(sval(p, "user"), "u3");
  json_decref(p);
  hd_rtm_stats_t sst;
  hd_rtm_stats(b, &sst);
  assert_true(sst.presence_quiet >= 4);
  hd_rtm_broker_free(b);
}

static void test_attrs_cas(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 1, "{\"type\":\"attr_set\",\"ch\":\"c\",\"key\":\"topic\",\"value\":\"a\",\"rev\":0}");
  feed(b, 1, "{\"type\":\"attr_set\",\"ch\":\"c\",\"key\":\"topic\",\"value\":\"b\",\"rev\":0}");
  json_t *e = nth(1, "error", 0);
  assert_int_equal(ival(e, "code"), 409);
  assert_int_equal(ival(e, "rev"), 1);
  json_decref(e);
  feed(b, 1, "{\"type\":\"attr_set\",\"ch\":\"c\",\"key\":\"topic\",\"value\":\"b\",\"rev\":1}");
  feed(b, 1, "{\"type\":\"attr_del\",\"ch\":\"c\",\"key\":\"topic\",\"rev\":2}");
  feed(b, 1, "{\"type\":\"attr_set\",\"ch\":\"c\",\"key\":\"topic\",\"value\":\"c\",\"rev\":0}");
  json_t *ok = nth(1, "ok", 3);
  assert_int_equal(ival(ok, "rev"), 4); /* revisions keep counting across a delete */
  json_decref(ok);
  assert_int_equal(count(2, "attr"), 4);
  json_t *ev = nth(2, "attr", 2);
  assert_true(json_is_null(json_object_get(ev, "value")));
  json_decref(ev);
  feed(b, 1, "{\"type\":\"attr_get\",\"id\":\"g\",\"ch\":\"c\"}");
  ok = nth(1, "ok", 4);
  json_t *a = json_array_get(json_object_get(ok, "attrs"), 0);
  assert_string_equal(sval(a, "value"), "c");
  json_decref(ok);
  /* user attributes: own yes, others' no (without admin) */
  feed(b, 1, "{\"type\":\"attr_set\",\"user\":\"alice\",\"key\":\"k\",\"value\":\"v\"}");
  feed(b, 1, "{\"type\":\"attr_set\",\"user\":\"bob\",\"key\":\"k\",\"value\":\"v\"}");
  e = nth(1, "error", 1);
  assert_int_equal(ival(e, "code"), 403);
  json_decref(e);
  feed(b, 1, "{\"type\":\"attr_del\",\"ch\":\"c\",\"key\":\"nokey\"}");
  e = nth(1, "error", 2);
  assert_int_equal(ival(e, "code"), 404);
  json_decref(e);
  hd_rtm_broker_free(b);
}

static void test_lock_ttl(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  login(b, 3, "admin", 1);
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  feed(b, 1, "{\"type\":\"lock_acquire\",\"ch\":\"c\",\"name\":\"seat1\",\"ttl\":1000}");
  feed(b, 2, "{\"type\":\"lock_acquire\",\"ch\":\"c\",\"name\":\"seat1\",\"ttl\":1000}");
  json_t *e = nth(2, "error", 0);
  assert_int_equal(ival(e, "code"), 409);
  assert_string_equal(sval(e, "owner"), "alice");
  json_decref(e);
  assert_int_equal(hd_rtm_next_timeout(b), now + HD_MS(1000));
  now += HD_MS(999);
  hd_rtm_tick(b, now);
  assert_int_equal(count(2, "lock"), 1);
  now += HD_MS(1);
  hd_rtm_tick(b, now);
  json_t *ev = nth(2, "lock", 1);
  assert_string_equal(sval(ev, "ev"), "expired");
  json_decref(ev);
  feed(b, 2, "{\"type\":\"lock_acquire\",\"ch\":\"c\",\"name\":\"seat1\",\"ttl\":5000}");
  feed(b, 1, "{\"type\":\"lock_steal\",\"ch\":\"c\",\"name\":\"seat1\"}");
  e = nth(1, "error", 0);
  assert_int_equal(ival(e, "code"), 403);
  json_decref(e);
  feed(b, 1, "{\"type\":\"lock_release\",\"ch\":\"c\",\"name\":\"seat1\"}");
  e = nth(1, "error", 1);
  assert_int_equal(ival(e, "code"), 403);
  json_decref(e);
  feed(b, 3, "{\"type\":\"lock_steal\",\"ch\":\"c\",\"name\":\"seat1\"}");
  ev = nth(2, "lock", 3);
  assert_string_equal(sval(ev, "ev"), "stolen");
  assert_string_equal(sval(ev, "owner"), "admin");
  json_decref(ev);
  feed(b, 2, "{\"type\":\"lock_get\",\"id\":\"g\",\"ch\":\"c\"}");
  json_t *ok = nth(2, "ok", 2);
  assert_string_equal(sval(json_array_get(json_object_get(ok, "locks"), 0), "owner"), "admin");
  json_decref(ok);
  hd_rtm_broker_free(b);
  /* locks come back from the store in a new broker (a restart) */
  b = mk(0, 0);
  hd_rtm_stats_t s;
  hd_rtm_stats(b, &s);
  assert_int_equal(s.locks, 1);
  hd_rtm_broker_free(b);
}

static void test_peer(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  login(b, 1, "alice", 0);
  login(b, 2, "bob", 0);
  feed(b, 1, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
  json_t *p = nth(2, "peer", 0);
  assert_string_equal(sval(p, "from"), "alice");
  assert_string_equal(sval(p, "data"), "hi");
  int64_t s = ival(p, "s");
  json_decref(p);
  assert_int_equal(count(1, "receipt"), 0);
  feed(b, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)s);
  json_t *r = nth(1, "receipt", 0);
  assert_string_equal(sval(r, "id"), "q1");
  json_decref(r);
  feed(b, 1, "{\"type\":\"peer\",\"id\":\"q2\",\"to\":\"nobody\",\"data\":\"hi\"}");
  json_t *e = nth(1, "error", 0);
  assert_string_equal(sval(e, "reason"), "user_offline");
  json_decref(e);
  /* not acked in time: 504 not_delivered */
  feed(b, 1, "{\"type\":\"peer\",\"id\":\"q3\",\"to\":\"bob\",\"data\":\"hi\"}");
  now += HD_RTM_DEFAULT_PEER_TIMEOUT;
  hd_rtm_tick(b, now);
  e = nth(1, "error", 1);
  assert_int_equal(ival(e, "code"), 504);
  assert_string_equal(sval(e, "id"), "q3");
  json_decref(e);
  hd_rtm_broker_free(b);
}

/* The timer structures: detached sessions expire in the order they were
 * detached, a resumed one leaves the queue; peer messages find every session
 * of a user (and only live ones); a receipt settled early leaves the timer
 * queue, so next_timeout follows the earliest pending one. */
static void test_timers_and_user_index(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  const char *r1 = login(b, 1, "u1", 0);
  login(b, 2, "u2", 0);
  login(b, 3, "u3", 0);
  login(b, 4, "bob", 0);
  login(b, 5, "bob", 0); /* a second session of bob */
  assert_int_equal(hd_rtm_next_timeout(b), HD_TIME_NEVER);
  hd_time_t t1 = now;
  hd_rtm_conn_closed(b, 1, now);
  now += HD_SEC(1);
  hd_rtm_conn_closed(b, 2, now);
  now += HD_SEC(1);
  hd_rtm_conn_closed(b, 3, now);
  assert_int_equal(hd_rtm_next_timeout(b), t1 + HD_RTM_DEFAULT_RESUME_GRACE);
  /* u1 resumes: the next deadline is u2's */
  assert_int_equal(hd_rtm_conn_open(b, 11, now), 0);
  feed(b, 11, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":0}", r1);
  assert_int_equal(count(11, "welcome"), 1);
  assert_int_equal(hd_rtm_next_timeout(b), t1 + HD_SEC(1) + HD_RTM_DEFAULT_RESUME_GRACE);
  hd_rtm_stats_t sst;
  now = t1 + HD_SEC(1) + HD_RTM_DEFAULT_RESUME_GRACE;
  hd_rtm_tick(b, now);
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.sessions, 4); /* u2 gone */
  assert_int_equal(sst.expired, 1);
  assert_int_equal(hd_rtm_next_timeout(b), t1 + HD_SEC(2) + HD_RTM_DEFAULT_RESUME_GRACE);
  now += HD_SEC(1);
  hd_rtm_tick(b, now);
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.sessions, 3);
  assert_int_equal(hd_rtm_next_timeout(b), HD_TIME_NEVER);

  /* a peer message reaches both sessions of bob; one ack settles the receipt */
  feed(b, 11, "{\"type\":\"peer\",\"id\":\"p1\",\"to\":\"bob\",\"data\":\"x\"}");
  assert_int_equal(count(4, "peer"), 1);
  assert_int_equal(count(5, "peer"), 1);
  assert_int_equal(hd_rtm_next_timeout(b), now + HD_RTM_DEFAULT_PEER_TIMEOUT);
  json_t *p = nth(5, "peer", 0);
  feed(b, 5, "{\"type\":\"ack\",\"s\":%lld}", (long long)ival(p, "s"));
  json_decref(p);
  assert_int_equal(count(11, "receipt"), 1);
  assert_int_equal(hd_rtm_next_timeout(b), HD_TIME_NEVER);
  /* bob's sessions log out one by one; then bob is offline */
  feed(b, 4, "{\"type\":\"logout\"}");
  hd_rtm_conn_closed(b, 4, now);
  feed(b, 11, "{\"type\":\"peer\",\"id\":\"p2\",\"to\":\"bob\",\"data\":\"y\"}");
  assert_int_equal(count(5, "peer"), 2);
  feed(b, 5, "{\"type\":\"logout\"}");
  hd_rtm_conn_closed(b, 5, now);
  /* the pending p2 receipt fails: the recipient's session ended */
  json_t *e = nth(11, "error", 0);
  assert_non_null(e);
  assert_int_equal(ival(e, "code"), 504);
  json_decref(e);
  feed(b, 11, "{\"type\":\"peer\",\"id\":\"p3\",\"to\":\"bob\",\"data\":\"z\"}");
  e = nth(11, "error", 1);
  assert_string_equal(sval(e, "reason"), "user_offline");
  json_decref(e);
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.sessions, 1); /* u1 */
  hd_rtm_broker_free(b);
}

static void test_bad_input(void **st) {
  hd_rtm_broker_t *b = mk(0, 0);
  assert_int_equal(hd_rtm_conn_open(b, 1, now), 0);
  feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"x\"}");
  json_t *e = nth(1, "error", 0);
  assert_int_equal(ival(e, "code"), 401);
  json_decref(e);
  feed(b, 1, "{\"type\":\"login\",\"token\":\"%s\"}", token("u", 0, 0, 600)); /* no rtm grant */
  e = nth(1, "error", 1);
  assert_int_equal(ival(e, "code"), 403);
  json_decref(e);
  assert_int_equal(closes[0].code, HD_RTM_CLOSE_LOGIN_FAILED);
  assert_int_equal(hd_rtm_conn_open(b, 2, now), 0);
  feed(b, 2, "{\"type\":\"login\",\"token\":\"%s\"}", token("u", 1, 0, -100)); /* expired */
  e = nth(2, "error", 0);
  assert_string_equal(sval(e, "reason"), "token_expired");
  json_decref(e);
  reset_out();
  login(b, 3, "alice", 0);
  const char *bad[] = {"not json",
                       "[1,2]",
                       "{\"type\":\"nope\",\"id\":\"x\"}",
                       "{\"id\":\"x\"}",
                       "{\"type\":\"pub\",\"ch\":\"bad channel\",\"data\":\"x\"}",
                       "{\"type\":\"pub\",\"ch\":\"c\"}",
                       "{\"type\":\"pub\",\"ch\":\"c\",\"data\":5}",
                       "{\"type\":\"hist\",\"ch\":\"c\",\"limit\":1000}",
                       "{\"type\":\"sub\",\"ch\":\"c\",\"ch\":\"d\"}",
                       "{\"type\":\"pub\",\"id\":7}",
                       "{\"type\":\"login\",\"token\":\"x\"}",
                       "{\"type\":\"unsub\",\"ch\":\"c\"}"};
  int codes[] = {400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 409, 404};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    feed(b, 3, "%s", bad[i]);
    e = nth(3, "error", (int)i);
    assert_non_null(e);
    assert_int_equal(ival(e, "code"), codes[i]);
    json_decref(e);
  }
  e = nth(3, "error", 2);
  assert_string_equal(sval(e, "id"), "x");
  json_decref(e);
  /* over the size cap: 413, the connection stays */
  char *big = malloc(40000);
  memset(big, 'a', 39999);
  big[39999] = 0;
  feed(b, 3, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"%s\"}", big);
  free(big);
  e = nth(3, "error", 12);
  assert_int_equal(ival(e, "code"), 413);
  json_decref(e);
  assert_int_equal(n_close, 0);
  hd_rtm_broker_free(b);
}

static void test_flood(void **st) {
  hd_rtm_broker_t *b = mk(0, 10);
  login(b, 1, "alice", 0);
  for (int i = 0; i < 15; i++)
    feed(b, 1, "{\"type\":\"pub\",\"id\":\"f%d\",\"ch\":\"c\",\"data\":\"x\"}", i);
  /* login took one token of the burst of 10 */
  assert_int_equal(count(1, "ok"), 9);
  assert_int_equal(count(1, "error"), 6);
  json_t *e = nth(1, "error", 0);
  assert_int_equal(ival(e, "code"), 429);
  assert_string_equal(sval(e, "id"), "f9");
  json_decref(e);
  now += HD_SEC(1); /* refills */
  feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"x\"}");
  assert_int_equal(count(1, "ok"), 10);
  hd_rtm_broker_free(b);
}

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

static void test_client_helper(void **st) {
  hd_rtm_client_t c;
  hd_rtm_client_init(&c);
  assert_int_equal(hd_rtm_client_next_timeout(&c), HD_TIME_NEVER);
  assert_int_equal(hd_rtm_client_on_seq(&c, 1, 100), HD_RTM_DELIVER);
  assert_int_equal(hd_rtm_client_on_seq(&c, 1, 100), HD_RTM_DUPLICATE);
  assert_int_equal(hd_rtm_client_on_seq(&c, 3, 100), HD_RTM_GAP);
  assert_int_equal(hd_rtm_client_ack_due(&c, 100), 0);
  assert_int_equal(hd_rtm_client_next_timeout(&c), 100 + HD_MS(100));
  assert_int_equal(hd_rtm_client_ack_due(&c, 100 + HD_MS(100)), 1);
  for (int i = 2; i <= 33; i++)
    assert_int_equal(hd_rtm_client_on_seq(&c, i, 200), HD_RTM_DELIVER);
  assert_int_equal(hd_rtm_client_ack_due(&c, 200), 33); /* 32 unacked: ack now */
  assert_int_equal(hd_rtm_client_on_channel_msg(&c, "a", 5), HD_RTM_DELIVER);
  assert_int_equal(hd_rtm_client_on_channel_msg(&c, "a", 5), HD_RTM_DUPLICATE);
  assert_int_equal(hd_rtm_client_on_channel_msg(&c, "b", 1), HD_RTM_DELIVER);
  hd_rtm_client_new_session(&c);
  assert_int_equal(hd_rtm_client_on_seq(&c, 1, 300), HD_RTM_DELIVER);
  assert_int_equal(hd_rtm_client_on_channel_msg(&c, "a", 4), HD_RTM_DUPLICATE); /* from history overlap */
}

/* ---- issue 12 hardening ---- */

/* Item 5: after:0 is a cursor (from the first message), not "not given". */
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

/* Item 4: 100 stored 30 KB messages, hist limit 100 / 70: paged replies that
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

/* Item 3: an identity looping login + cut holds at most its cap (each new
 * login replaces its oldest resumable session); a tenant holds at most its
 * cap; the other tenant logs in all along; clear 503 messages. */
static void test_session_caps(void **st) {
  hd_rtm_config_t c = {.max_sessions = 30, .max_sessions_per_app = 20, .max_sessions_per_user = 3};
  hd_rtm_broker_t *b = mk_cfg(c);
  const char *first_resume = NULL;
  char keep[64] = "";
  for (uint64_t i = 1; i <= 500; i++) { /* the reproducer: one token, login and cut in a loop */
    json_t *w = login_tok(b, i, token_x("app", "looper", "", 0));
    assert_string_equal(sval(w, "type"), "welcome");
    if (i == 1) {
      snprintf(keep, sizeof keep, "%s", sval(w, "resume"));
      first_resume = keep;
    }
    json_decref(w);
    hd_rtm_conn_closed(b, i, now); /* resumable for the grace period */
    now += HD_MS(10);
  }
  hd_rtm_stats_t sst;
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.sessions, 3);
  assert_int_equal(sst.replaced, 497);
  /* the replaced session is gone: its resume gets 410 */
  assert_int_equal(hd_rtm_conn_open(b, 1000, now), 0);
  feed(b, 1000, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":0}", first_resume);
  json_t *e = last_out(1000);
  assert_int_equal(ival(e, "code"), 410);
  json_decref(e);
  /* an identity with all its sessions connected: 503 that says what to do */
  for (uint64_t i = 1001; i <= 1003; i++) {
    json_t *w = login_tok(b, i, token_x("app", "tabs", "", 0));
    assert_string_equal(sval(w, "type"), "welcome");
    json_decref(w);
  }
  e = login_tok(b, 1004, token_x("app", "tabs", "", 0));
  assert_int_equal(ival(e, "code"), 503);
  assert_non_null(strstr(sval(e, "message"), "rtm.max_sessions_per_user"));
  assert_true(closed_with(1004, HD_RTM_CLOSE_LOGIN_FAILED));
  json_decref(e);
  /* many identities of one app: capped at 20, the other app still logs in */
  int ok1 = 0, full1 = 0;
  for (uint64_t i = 2000; i < 2040; i++) {
    char u[32];
    snprintf(u, sizeof u, "u%d", (int)i);
    json_t *w = login_tok(b, i, token_x("app", u, "", 0));
    if (!strcmp(sval(w, "type"), "welcome"))
      ok1++;
    else {
      assert_int_equal(ival(w, "code"), 503);
      assert_non_null(strstr(sval(w, "message"), "rtm.max_sessions_per_app"));
      full1++;
    }
    json_decref(w);
  }
  assert_int_equal(ok1, 20 - 6); /* looper 3 + tabs 3 */
  assert_int_equal(full1, 40 - ok1);
  for (uint64_t i = 3000; i < 3010; i++) {
    char u[32];
    snprintf(u, sizeof u, "v%d", (int)i);
    json_t *w = login_tok(b, i, token_x("app2", u, "", 0));
    assert_string_equal(sval(w, "type"), "welcome");
    json_decref(w);
  }
  /* the node cap (30) is next: app2's 11th gets 503 naming rtm.max_sessions */
  e = login_tok(b, 3100, token_x("app2", "late", "", 0));
  assert_int_equal(ival(e, "code"), 503);
  assert_non_null(strstr(sval(e, "message"), "rtm.max_sessions"));
  json_decref(e);
  /* ... but the looper's new login replaces its own resumable session even at the caps */
  e = login_tok(b, 3101, token_x("app", "looper", "", 0));
  assert_string_equal(sval(e, "type"), "welcome");
  json_decref(e);
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.sessions, 30);
  hd_rtm_broker_free(b);
}

/* Item 6: per-app quotas on stored history stop growth; others unaffected. */
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

/* Item 8: a room-scoped token (grants.room = "stage") with rtm and roomAdmin
 * acts only on its room's channels and its own user. */
static void test_room_scope(void **st) {
  hd_rtm_broker_t *b = mk(0, 1000);
  login(b, 1, "owner", 0); /* an unscoped user with a lock and attributes elsewhere */
  json_t *r = req(b, 1, "{\"type\":\"lock_acquire\",\"id\":\"a\",\"ch\":\"lobby\",\"name\":\"seat\"}");
  assert_string_equal(sval(r, "type"), "ok");
  json_decref(r);
  r = req(b, 1, "{\"type\":\"sub\",\"id\":\"s\",\"ch\":\"room:stage\"}");
  json_decref(r);
  json_t *w = login_tok(b, 2, token_x("app", "mod", "stage", 1));
  assert_string_equal(sval(w, "type"), "welcome");
  json_decref(w);
  const char *outside[] = {
      "{\"type\":\"lock_steal\",\"id\":\"x\",\"ch\":\"lobby\",\"name\":\"seat\",\"ttl\":1000}",
      "{\"type\":\"lock_release\",\"id\":\"x\",\"ch\":\"lobby\",\"name\":\"seat\"}",
      "{\"type\":\"attr_set\",\"id\":\"x\",\"user\":\"owner\",\"key\":\"k\",\"value\":\"v\"}",
      "{\"type\":\"attr_del\",\"id\":\"x\",\"user\":\"owner\",\"key\":\"k\"}",
      "{\"type\":\"attr_get\",\"id\":\"x\",\"user\":\"owner\"}",
      "{\"type\":\"attr_set\",\"id\":\"x\",\"ch\":\"lobby\",\"key\":\"k\",\"value\":\"v\"}",
      "{\"type\":\"sub\",\"id\":\"x\",\"ch\":\"lobby\"}",
      "{\"type\":\"pub\",\"id\":\"x\",\"ch\":\"lobby\",\"data\":\"d\"}",
      "{\"type\":\"hist\",\"id\":\"x\",\"ch\":\"lobby\"}",
      "{\"type\":\"who\",\"id\":\"x\",\"ch\":\"lobby\"}",
      "{\"type\":\"lock_get\",\"id\":\"x\",\"ch\":\"lobby\"}",
      "{\"type\":\"sub\",\"id\":\"x\",\"ch\":\"stagehand\"}",  /* a prefix is not the room */
      "{\"type\":\"sub\",\"id\":\"x\",\"ch\":\"stage:chat\"}", /* nor a channel under it */
      "{\"type\":\"sub\",\"id\":\"x\",\"ch\":\"room:stage2\"}",
      "{\"type\":\"peer\",\"id\":\"x\",\"to\":\"elsewhere\",\"data\":\"d\"}",
  };
  login(b, 3, "elsewhere", 0);
  for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
    r = req(b, 2, "%s", outside[i]);
    assert_non_null(r);
    if (ival(r, "code") != 403) fprintf(stderr, "not refused: %s\n", outside[i]);
    assert_int_equal(ival(r, "code"), 403);
    assert_non_null(strstr(sval(r, "message"), "room"));
    json_decref(r);
  }
  r = req(b, 1, "{\"type\":\"lock_get\",\"id\":\"g\",\"ch\":\"lobby\"}");
  assert_string_equal(sval(json_array_get(json_object_get(r, "locks"), 0), "owner"), "owner");
  json_decref(r);
  /* inside its scope the admin acts: its room's channels, its own user, peers in the room */
  const char *inside[] = {
      "{\"type\":\"sub\",\"id\":\"y\",\"ch\":\"room:stage\"}",
      "{\"type\":\"sub\",\"id\":\"y\",\"ch\":\"stage\"}",
      "{\"type\":\"pub\",\"id\":\"y1\",\"ch\":\"stage\",\"data\":\"d\"}",
      "{\"type\":\"lock_steal\",\"id\":\"y\",\"ch\":\"room:stage\",\"name\":\"mic\",\"ttl\":1000}",
      "{\"type\":\"attr_set\",\"id\":\"y\",\"user\":\"mod\",\"key\":\"k\",\"value\":\"v\"}",
      "{\"type\":\"attr_set\",\"id\":\"y\",\"ch\":\"room:stage\",\"key\":\"k\",\"value\":\"v\"}",
  };
  for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++) {
    r = req(b, 2, "%s", inside[i]);
    assert_string_equal(sval(r, "type"), "ok");
    json_decref(r);
  }
  feed(b, 2,
       "{\"type\":\"peer\",\"id\":\"p\",\"to\":\"owner\",\"data\":\"hi\"}"); /* owner is in room:stage */
  json_t *pm = nth(1, "peer", 0);
  assert_non_null(pm);
  json_decref(pm);
  /* distinct rooms never share a channel: a room named "room:stage" does not
   * get room stage's "room:stage" (a room with ':' has no bare channel), and a
   * room whose name is no channel name gets none (no lossy mapping) */
  w = login_tok(b, 4, token_x("app", "guest", "room:stage", 0));
  json_decref(w);
  r = req(b, 4, "{\"type\":\"sub\",\"id\":\"z\",\"ch\":\"room:stage\"}");
  assert_int_equal(ival(r, "code"), 403);
  json_decref(r);
  r = req(b, 4, "{\"type\":\"sub\",\"id\":\"z\",\"ch\":\"room:room:stage\"}");
  assert_string_equal(sval(r, "type"), "ok");
  json_decref(r);
  w = login_tok(b, 5, token_x("app", "guest2", "my room", 0));
  json_decref(w);
  r = req(b, 5, "{\"type\":\"sub\",\"id\":\"z\",\"ch\":\"room:my_room\"}");
  assert_int_equal(ival(r, "code"), 403);
  assert_non_null(strstr(sval(r, "message"), "no channel"));
  json_decref(r);
  hd_rtm_broker_free(b);
}

/* Item 10: a client flooding bad input without acking is never closed
 * (its error replies are capped in the window, the rest suppressed). */
static void test_error_flood_not_closed(void **st) {
  hd_rtm_broker_t *b = mk(0, 100);
  login(b, 1, "flooder", 0);
  login(b, 2, "calm", 0);
  feed(b, 2, "{\"type\":\"sub\",\"ch\":\"c\"}");
  for (int i = 0; i < 5000; i++) {
    feed(b, 1, i % 2 ? "{not json" : "{\"type\":\"teleport\"}");
    if (i % 100 == 0) now += HD_MS(200);
    if (n_out > MAXOUT - 200) reset_out();
  }
  assert_false(closed_with(1, HD_RTM_CLOSE_OVERFLOW));
  hd_rtm_stats_t sst;
  hd_rtm_stats(b, &sst);
  assert_int_equal(sst.drops, 0);
  assert_true(sst.errors_suppressed > 0);
  assert_int_equal(sst.sessions, 2);
  /* after an ack the flooder gets its errors again, and valid requests work */
  reset_out();
  json_t *o = NULL;
  feed(b, 1, "{\"type\":\"ack\",\"s\":%d}", 256);
  now += HD_SEC(5);
  o = req(b, 1, "{\"type\":\"pub\",\"id\":\"v\",\"ch\":\"c\",\"data\":\"ok now\"}");
  assert_string_equal(sval(o, "type"), "ok");
  json_decref(o);
  o = req(b, 1, "{\"type\":\"teleport\",\"id\":\"t\"}");
  assert_int_equal(ival(o, "code"), 400);
  json_decref(o);
  assert_non_null((o = nth(2, "msg", 0)));
  json_decref(o);
  hd_rtm_broker_free(b);
}

/* Item 10: history keeps exactly history_keep messages per channel, in both stores. */
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

/* Item 6: the SQLite store refuses stored appends under the disk floor and
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
  unlink(path);
  char p2[300];
  snprintf(p2, sizeof p2, "%s-wal", path);
  unlink(p2);
  snprintf(p2, sizeof p2, "%s-shm", path);
  unlink(p2);
  rmdir(dir);
}

/* Item 10 on an existing database: one written before the exact cap (1019
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
  char p2[300];
  unlink(path);
  snprintf(p2, sizeof p2, "%s-wal", path);
  unlink(p2);
  snprintf(p2, sizeof p2, "%s-shm", path);
  unlink(p2);
  rmdir(dir);
}

/* The delivery counters of app (broker.h hd_rtm_delivery_t); zeros if unseen. */
static hd_rtm_delivery_t dl_of(hd_rtm_broker_t *b, const char *app) {
  char apps[8][64];
  hd_rtm_delivery_t d[8], z;
  memset(&z, 0, sizeof z);
  int n = hd_rtm_delivery(b, apps, d, 8);
  for (int i = 0; i < n; i++)
    if (!strcmp(apps[i], app)) return d[i];
  return z;
}

static int64_t last_s(uint64_t conn) {
  json_t *o = last_out(conn);
  int64_t v = o ? ival(o, "s") : 0;
  json_decref(o);
  return v;
}

/* Issue 14 item 1: each delivery (one message to one recipient session) is
 * counted acked once — not again on a duplicate ack, a stale resume or a
 * replay — or given up once, with why (expired, overflow, logout). */
static void test_delivery_exactly_once(void **st) {
  hd_rtm_broker_t *b = mk(16, 0);
  login(b, 1, "alice", 0);
  const char *rb = login(b, 2, "bob", 0);
  char bob_resume[64];
  strcpy(bob_resume, rb);
  login(b, 3, "carol", 0);
  for (uint64_t c = 1; c <= 3; c++)
    feed(b, c, "{\"type\":\"sub\",\"ch\":\"c\"}");
  for (int i = 0; i < 3; i++)
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"m%d\"}", i);
  hd_rtm_delivery_t d = dl_of(b, "app");
  assert_int_equal(d.sent, 3);
  assert_int_equal(d.owed, 9); /* 3 subscribers, the publisher included; presence events are not counted */
  assert_int_equal(d.acked, 0);
  now += HD_MS(20);
  ack_all(b, 1);
  ack_all(b, 2);
  d = dl_of(b, "app");
  assert_int_equal(d.acked, 6);
  assert_int_equal(d.lat_sum_us, 6 * 20000);
  assert_int_equal(d.lat_hist[1], 6); /* 20 ms: in (10, 25] */
  /* a duplicate ack and an older ack count nothing */
  int64_t bob_last = last_s(2);
  feed(b, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)bob_last);
  feed(b, 2, "{\"type\":\"ack\",\"s\":1}");
  assert_int_equal(dl_of(b, "app").acked, 6);
  /* bob's connection drops; two more messages queue in his window */
  hd_rtm_conn_closed(b, 2, now);
  for (int i = 3; i < 5; i++)
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"m%d\"}", i);
  now += HD_MS(40);
  assert_int_equal(hd_rtm_conn_open(b, 5, now), 0);
  feed(b, 5, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":%lld}", bob_resume, (long long)bob_last);
  assert_int_equal(count(5, "msg"), 2); /* replayed */
  assert_int_equal(dl_of(b, "app").acked, 6);
  ack_all(b, 5);
  d = dl_of(b, "app");
  assert_int_equal(d.acked, 8);
  assert_int_equal(d.lat_hist[2], 2); /* 40 ms: in (25, 50] */
  /* cut again and resume with the same (stale) "last": nothing replayed, nothing counted */
  int64_t bob_last2 = last_s(5);
  hd_rtm_conn_closed(b, 5, now);
  assert_int_equal(hd_rtm_conn_open(b, 6, now), 0);
  feed(b, 6, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":%lld}", bob_resume, (long long)bob_last2);
  feed(b, 6, "{\"type\":\"ack\",\"s\":%lld}", (long long)bob_last2);
  assert_int_equal(dl_of(b, "app").acked, 8);
  /* a resume whose "last" covers messages acks them (the client had them) */
  feed(b, 1, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"m5\"}");
  int64_t got = last_s(6);
  hd_rtm_conn_closed(b, 6, now);
  assert_int_equal(hd_rtm_conn_open(b, 7, now), 0);
  feed(b, 7, "{\"type\":\"login\",\"resume\":\"%s\",\"last\":%lld}", bob_resume, (long long)got);
  assert_int_equal(count(7, "msg"), 0);
  assert_int_equal(dl_of(b, "app").acked, 9);
  /* a peer message to bob: one more delivery, acked once */
  feed(b, 1, "{\"type\":\"peer\",\"id\":\"p1\",\"to\":\"bob\",\"data\":\"hi\"}");
  ack_all(b, 7);
  ack_all(b, 7);
  assert_int_equal(count(1, "receipt"), 1);
  d = dl_of(b, "app");
  assert_int_equal(d.sent, 7);
  assert_int_equal(d.owed, 19); /* 6 messages x 3 + 1 peer */
  assert_int_equal(d.acked, 10);
  /* carol never acks and never resumes: her 6 are given up as expired */
  hd_rtm_conn_closed(b, 3, now);
  now += HD_RTM_DEFAULT_RESUME_GRACE;
  hd_rtm_tick(b, now);
  ack_all(b, 1);
  d = dl_of(b, "app");
  assert_int_equal(d.expired, 6);
  assert_int_equal(d.acked, 13); /* + alice's last 3 */
  assert_int_equal(d.overflow + d.gone, 0);
  assert_int_equal(d.acked + d.expired, d.owed); /* nothing pending, nothing counted twice */
  /* overflow: dave never acks a window of 16 (sub ok + join event + 14 messages) */
  login(b, 8, "dave", 0);
  feed(b, 8, "{\"type\":\"sub\",\"ch\":\"d\"}");
  for (int i = 0; i < 20; i++) { /* alice acks her replies as she goes */
    feed(b, 1, "{\"type\":\"pub\",\"ch\":\"d\",\"data\":\"x\"}");
    ack_all(b, 1);
  }
  assert_true(closed_with(8, HD_RTM_CLOSE_OVERFLOW));
  d = dl_of(b, "app");
  assert_int_equal(d.sent, 27);
  assert_int_equal(d.overflow, 15); /* 14 in the window + the one that did not fit; then no subscriber */
  assert_int_equal(d.owed, 19 + 15);
  /* logout with a message unacked: given up as gone */
  login(b, 9, "erin", 0);
  feed(b, 9, "{\"type\":\"sub\",\"ch\":\"e\"}");
  feed(b, 1, "{\"type\":\"pub\",\"ch\":\"e\",\"data\":\"x\"}");
  ack_all(b, 1);
  feed(b, 9, "{\"type\":\"logout\"}");
  d = dl_of(b, "app");
  assert_int_equal(d.gone, 1);
  assert_int_equal(d.acked + d.expired + d.overflow + d.gone, d.owed);
  /* per app: another tenant's publish is its own */
  json_t *w = login_tok(b, 10, token_x("app2", "zed", "", 0));
  json_decref(w);
  feed(b, 10, "{\"type\":\"pub\",\"ch\":\"c\",\"data\":\"x\"}");
  assert_int_equal(dl_of(b, "app2").sent, 1);
  assert_int_equal(dl_of(b, "app").sent, 28);
  /* /metrics carries the sums and the histogram */
  char buf[16384];
  assert_true(hd_rtm_metrics_text(b, buf, sizeof buf) > 0);
  assert_non_null(strstr(buf, "hudong_rtm_delivery_sent_total 29\n"));
  assert_non_null(strstr(buf, "hudong_rtm_delivery_acked_total 13\n"));
  assert_non_null(strstr(buf, "hudong_rtm_delivery_given_up_total{reason=\"overflow\"} 15\n"));
  assert_non_null(strstr(buf, "hudong_rtm_delivery_seconds_bucket{le=\"0.025\"} 8\n")); /* + 2 at 0 ms */
  assert_non_null(strstr(buf, "hudong_rtm_delivery_seconds_bucket{le=\"10\"} 10\n"));   /* alice: 30 s */
  assert_non_null(strstr(buf, "hudong_rtm_delivery_seconds_bucket{le=\"+Inf\"} 13\n"));
  assert_non_null(strstr(buf, "hudong_rtm_delivery_seconds_count 13\n"));
  hd_rtm_broker_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_and_ack, setup, teardown),
      cmocka_unit_test_setup_teardown(test_window_ring_cap_and_wrap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resume_replay_dedupe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pub_dedupe, setup, teardown),
      cmocka_unit_test_setup_teardown(test_overflow_and_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_presence_who_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_presence_max, setup, teardown),
      cmocka_unit_test_setup_teardown(test_attrs_cas, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_ttl, setup, teardown),
      cmocka_unit_test_setup_teardown(test_peer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
      cmocka_unit_test_setup_teardown(test_flood, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timers_and_user_index, setup, teardown),
      cmocka_unit_test(test_client_helper),
      cmocka_unit_test_setup_teardown(test_hist_after_zero, setup, teardown),
      cmocka_unit_test_setup_teardown(test_hist_pages_fit_window, setup, teardown),
      cmocka_unit_test_setup_teardown(test_session_caps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_store_quota, setup, teardown),
      cmocka_unit_test_setup_teardown(test_room_scope, setup, teardown),
      cmocka_unit_test_setup_teardown(test_error_flood_not_closed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_history_exact_cap, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sqlite_floor_and_usage, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sqlite_upgrade, setup, teardown),
      cmocka_unit_test_setup_teardown(test_delivery_exactly_once, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
