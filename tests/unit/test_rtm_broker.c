/* RTM broker (src/rtm/broker.h), sessions and delivery, on a virtual clock
 * with the in-memory store (tests/support/rtm_world.h): ordering, acks and
 * the window, resume + replay, client-side dedupe, overflow policy, peer
 * receipts, timers, bad input, flood, session caps, room-scoped tokens and
 * the delivery counters. Channel state (presence, attributes, locks) is in
 * test_rtm_broker_state.c, history and its stores in test_rtm_broker_history.c. */
#include "hd_test.h"

#include "base/err.h"
#include "rtm/broker.h"
#include "rtm/client.h"
#include "support/rtm_world.h"

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

/* Issue 12 item 3: an identity looping login + cut holds at most its cap (each new
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

/* Issue 12 item 8: a room-scoped token (grants.room = "stage") with rtm and roomAdmin
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

/* Issue 12 item 10: a client flooding bad input without acking is never closed
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

/* The shell's part of a resume this node cannot answer: it asks the other
 * nodes; here the test hands the other node's export to hd_rtm_cluster_import. */
static int cl_resume(void *ud, uint64_t conn, const char *resume) { return 0; }

/* A session that moves across nodes (hd_rtm_cluster_export on A, import on
 * B) brings its window of unacked messages; B keeps at most its own
 * window_messages of them (broker.c import_session: the ring may be up to the
 * next power of two, the count cap is window_messages). Below and at the cap
 * all are replayed; above it the oldest window_messages are, the rest is not,
 * and the next message shows the client a gap in "s" (docs/rtm.md: a gap is
 * session loss, the client logs in again). */
static void test_import_window_cap(void **st) {
  hd_rtm_cluster_t ca = {.node = "node-a"}, cb = {.node = "node-b", .resume = cl_resume};
  const int cap = 20, unacked[3] = {12, 20, 25}; /* below, at, above B's cap */
  for (int k = 0; k < 3; k++) {
    int n = unacked[k], want = n < cap ? n : cap;
    hd_rtm_broker_t *a =
        mk_cfg((hd_rtm_config_t){.window_msgs = 64, .rate = 1000, .burst = 1000, .cluster = &ca});
    hd_rtm_broker_t *b =
        mk_cfg((hd_rtm_config_t){.window_msgs = (size_t)cap, .rate = 1000, .burst = 1000, .cluster = &cb});
    login(a, 1, "alice", 0);
    char rb[64];
    snprintf(rb, sizeof rb, "%s", login(a, 2, "bob", 0));
    for (int i = 1; i <= n; i++)
      feed(a, 1, "{\"type\":\"peer\",\"id\":\"q%d\",\"to\":\"bob\",\"data\":\"m%d\"}", i, i);
    assert_int_equal(count(2, "peer"), n);
    assert_int_equal(last_s(2), n); /* bob's window on A: s 1..n, none acked */
    hd_rtm_conn_closed(a, 2, now);
    /* bob resumes on B, which asks the cluster; A's export is the answer */
    assert_int_equal(hd_rtm_conn_open(b, 3, now), 0);
    feed(b, 3, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":0}", rb);
    assert_int_equal(count(3, NULL), 0);
    char *state;
    size_t len;
    assert_int_equal(hd_rtm_cluster_export(a, rb, "node-b", &state, &len, now), 0);
    assert_int_equal(hd_rtm_cluster_import(b, 3, state, len, now), 0);
    free(state);
    json_t *w = nth(3, "welcome", 0);
    assert_non_null(w);
    assert_true(json_is_true(json_object_get(w, "resumed")));
    json_decref(w);
    hd_rtm_client_t cl;
    hd_rtm_client_init(&cl);
    assert_int_equal(count(3, "peer"), want);
    for (int i = 0; i < want; i++) {
      json_t *m = nth(3, "peer", i);
      assert_int_equal(ival(m, "s"), i + 1);
      char d[16];
      snprintf(d, sizeof d, "m%d", i + 1);
      assert_string_equal(sval(m, "data"), d);
      assert_int_equal(hd_rtm_client_on_seq(&cl, ival(m, "s"), now), HD_RTM_DELIVER);
      json_decref(m);
    }
    hd_rtm_stats_t sst;
    hd_rtm_stats(b, &sst);
    assert_int_equal(sst.resumes, 1);
    assert_int_equal(sst.sessions, 1);
    /* bob acks what he got; the next message (from carol on B) continues
     * the session's "s": contiguous within the cap, a gap above it */
    feed(b, 3, "{\"type\":\"ack\",\"s\":%d}", want);
    login(b, 4, "carol", 0);
    feed(b, 4, "{\"type\":\"peer\",\"id\":\"c1\",\"to\":\"bob\",\"data\":\"next\"}");
    json_t *m = nth(3, "peer", want);
    assert_non_null(m);
    assert_string_equal(sval(m, "data"), "next");
    assert_int_equal(ival(m, "s"), n + 1);
    assert_int_equal(hd_rtm_client_on_seq(&cl, ival(m, "s"), now), n > cap ? HD_RTM_GAP : HD_RTM_DELIVER);
    json_decref(m);
    assert_false(closed_with(3, HD_RTM_CLOSE_OVERFLOW));
    hd_rtm_broker_free(a);
    hd_rtm_broker_free(b);
    reset_out();
  }
}

/* What the shell of node A was asked to send to other nodes' inboxes. */
static struct {
  char node[64], sid[64], id[64];
  int delivered, n;
} g_prc;

static void cl_peer_result(void *ud, const char *node, const char *sid, const char *id, int delivered) {
  (void)ud;
  snprintf(g_prc.node, sizeof g_prc.node, "%s", node);
  snprintf(g_prc.sid, sizeof g_prc.sid, "%s", sid);
  snprintf(g_prc.id, sizeof g_prc.id, "%s", id);
  g_prc.delivered = delivered;
  g_prc.n++;
}

/* Issue 15 review: alice (node A) sends bob a peer message; before bob
 * acks, alice's connection drops and her session moves to node B. The
 * outcome follows her: A forwards it to B (peer_result to node-b), where
 * her session gets the receipt, and her retry of the same id on B is not
 * sent twice. Before, A settled the receipt, found no session of hers and
 * dropped it, and B took the retry as "on its way": she never heard. A
 * failure (bob never acks) reaches her on B as 504 the same way. */
static void test_outcome_follows_moved_sender(void **st) {
  hd_rtm_cluster_t ca = {.node = "node-a", .peer_result = cl_peer_result},
                   cb = {.node = "node-b", .resume = cl_resume, .peer_result = cl_peer_result};
  for (int acked = 1; acked >= 0; acked--) {
    memset(&g_prc, 0, sizeof g_prc);
    hd_rtm_broker_t *a = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &ca});
    hd_rtm_broker_t *b = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &cb});
    char ra[64];
    snprintf(ra, sizeof ra, "%s", login(a, 1, "alice", 0));
    json_t *w = nth(1, "welcome", 0);
    char sid[64];
    snprintf(sid, sizeof sid, "%s", sval(w, "session"));
    json_decref(w);
    login(a, 2, "bob", 0);
    feed(a, 1, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
    json_t *p = nth(2, "peer", 0);
    int64_t s = ival(p, "s");
    json_decref(p);
    /* alice moves to B before bob acks */
    hd_rtm_conn_closed(a, 1, now);
    assert_int_equal(hd_rtm_conn_open(b, 3, now), 0);
    feed(b, 3, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":0}", ra);
    char *state;
    size_t len;
    assert_int_equal(hd_rtm_cluster_export(a, ra, "node-b", &state, &len, now), 0);
    assert_int_equal(hd_rtm_cluster_import(b, 3, state, len, now), 0);
    free(state);
    w = nth(3, "welcome", 0);
    assert_true(json_is_true(json_object_get(w, "resumed")));
    json_decref(w);
    /* her retry on B: already on its way, not sent again, no error */
    feed(b, 3, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
    assert_int_equal(count(3, "error"), 0);
    if (acked) {
      feed(a, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)s);
    } else {
      now += HD_RTM_DEFAULT_PEER_TIMEOUT;
      hd_rtm_tick(a, now);
    }
    assert_int_equal(g_prc.n, 1); /* A sends the outcome to B's inbox */
    assert_string_equal(g_prc.node, "node-b");
    assert_string_equal(g_prc.sid, sid);
    assert_string_equal(g_prc.id, "q1");
    assert_int_equal(g_prc.delivered, acked);
    assert_int_equal(count(3, "receipt"), 0);
    hd_rtm_cluster_peer_result(b, g_prc.sid, g_prc.id, g_prc.delivered, now); /* B reads it */
    if (acked) {
      json_t *r = nth(3, "receipt", 0);
      assert_non_null(r);
      assert_string_equal(sval(r, "id"), "q1");
      assert_string_equal(sval(r, "to"), "bob");
      json_decref(r);
      assert_int_equal(count(3, "error"), 0);
    } else {
      json_t *e = nth(3, "error", 0);
      assert_non_null(e);
      assert_int_equal(ival(e, "code"), 504);
      assert_string_equal(sval(e, "id"), "q1");
      json_decref(e);
      assert_int_equal(count(3, "receipt"), 0);
    }
    /* answered once: B's own deadline passes without a second answer */
    now += 2 * HD_RTM_DEFAULT_PEER_TIMEOUT;
    hd_rtm_tick(b, now);
    assert_int_equal(count(3, "receipt") + count(3, "error"), 1);
    hd_rtm_broker_free(a);
    hd_rtm_broker_free(b);
    reset_out();
  }
}

static uint64_t receipts_of(hd_rtm_broker_t *b) {
  hd_rtm_stats_t st;
  hd_rtm_stats(b, &st);
  return st.receipts;
}

/* Review 2 F2: a receipt adopted from a moved sender's session whose old
 * node never answers: B's deadline answers 504 and the receipt is freed (it
 * held the old node's reference, refs 1, forever before: a leak per message;
 * LeakSanitizer in the ASan build, the hudong_rtm_receipts gauge here). */
static void test_adopted_receipt_freed_at_deadline(void **st) {
  hd_rtm_cluster_t ca = {.node = "node-a", .peer_result = cl_peer_result},
                   cb = {.node = "node-b", .resume = cl_resume, .peer_result = cl_peer_result};
  memset(&g_prc, 0, sizeof g_prc);
  hd_rtm_broker_t *a = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &ca});
  hd_rtm_broker_t *b = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &cb});
  char ra[64];
  snprintf(ra, sizeof ra, "%s", login(a, 1, "alice", 0));
  login(a, 2, "bob", 0);
  feed(a, 1, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
  hd_rtm_conn_closed(a, 1, now);
  assert_int_equal(hd_rtm_conn_open(b, 3, now), 0);
  feed(b, 3, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":0}", ra);
  char *state;
  size_t len;
  assert_int_equal(hd_rtm_cluster_export(a, ra, "node-b", &state, &len, now), 0);
  assert_int_equal(hd_rtm_cluster_import(b, 3, state, len, now), 0);
  free(state);
  assert_int_equal(receipts_of(b), 1); /* adopted, waiting for A */
  /* A's answer is lost (A crashed / Redis did not take it): B's deadline */
  now += 2 * HD_RTM_DEFAULT_PEER_TIMEOUT;
  hd_rtm_tick(b, now);
  json_t *e = nth(3, "error", 0);
  assert_non_null(e);
  assert_int_equal(ival(e, "code"), 504);
  json_decref(e);
  assert_int_equal(receipts_of(b), 0);
  /* A's answer after all, late: finds nothing, frees nothing twice */
  json_t *w = nth(3, "welcome", 0);
  char sid[64];
  snprintf(sid, sizeof sid, "%s", sval(w, "session"));
  json_decref(w);
  hd_rtm_cluster_peer_result(b, sid, "q1", 1, now);
  assert_int_equal(count(3, "receipt"), 0);
  hd_rtm_broker_free(a);
  hd_rtm_broker_free(b);
  reset_out();
}

static int cl_peer_one(void *ud, const char *app, const char *to, const char *sid, const char *id,
                       const char *body, int *nodes) {
  (void)ud, (void)app, (void)to, (void)sid, (void)id, (void)body;
  *nodes = 1;
  return 0;
}

/* Review 2 F3: bob has sessions on A and on another node; his session on A
 * acks first and the receipt is done. The other node's answer comes after and
 * finds nothing (only pending receipts are looked at): before, its reference
 * was never dropped and the receipt was never freed (a leak per message to a
 * multi-device user); now the nodes' references go when it is done. Also a
 * receipt settled while a window still holds it lives until that entry goes,
 * and one the deadline ends with a node silent is freed. */
static void test_receipt_freed_when_done_before_other_nodes_answer(void **st) {
  hd_rtm_cluster_t ca = {.node = "node-a", .peer = cl_peer_one, .peer_result = cl_peer_result};
  hd_rtm_broker_t *a = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &ca});
  login(a, 1, "alice", 0);
  json_t *w = nth(1, "welcome", 0);
  char sid[64];
  snprintf(sid, sizeof sid, "%s", sval(w, "session"));
  json_decref(w);
  login(a, 2, "bob", 0);
  feed(a, 1, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
  assert_int_equal(receipts_of(a), 1);
  json_t *p = nth(2, "peer", 0);
  int64_t s = ival(p, "s");
  json_decref(p);
  feed(a, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)s);
  assert_int_equal(count(1, "receipt"), 1);
  assert_int_equal(receipts_of(a), 0);              /* the other node's reference went with it */
  hd_rtm_cluster_peer_result(a, sid, "q1", 1, now); /* the other node's answer, after */
  assert_int_equal(count(1, "receipt"), 1);

  /* the other node answers first: the receipt is done, bob's window entry
   * still holds it until he acks */
  feed(a, 1, "{\"type\":\"peer\",\"id\":\"q2\",\"to\":\"bob\",\"data\":\"hi\"}");
  p = nth(2, "peer", 1);
  s = ival(p, "s");
  json_decref(p);
  hd_rtm_cluster_peer_result(a, sid, "q2", 1, now);
  assert_int_equal(count(1, "receipt"), 2);
  assert_int_equal(receipts_of(a), 1);
  feed(a, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)s);
  assert_int_equal(count(1, "receipt"), 2);
  assert_int_equal(receipts_of(a), 0);

  /* bob does not ack and the other node never answers: the deadline's 504,
   * then bob's ack drops the last reference */
  feed(a, 1, "{\"type\":\"peer\",\"id\":\"q3\",\"to\":\"bob\",\"data\":\"hi\"}");
  p = nth(2, "peer", 2);
  s = ival(p, "s");
  json_decref(p);
  now += 2 * HD_RTM_DEFAULT_PEER_TIMEOUT;
  hd_rtm_tick(a, now);
  assert_int_equal(count(1, "error"), 1);
  assert_int_equal(receipts_of(a), 1);
  feed(a, 2, "{\"type\":\"ack\",\"s\":%lld}", (long long)s);
  assert_int_equal(receipts_of(a), 0);
  assert_int_equal(count(1, "receipt"), 2);
  hd_rtm_broker_free(a);
  reset_out();
}

/* Review 2 (adjacent): the recipient's session moves before it acks: the
 * message goes with its window and is delivered on B; its receipt goes too.
 * Before, A settled the receipt as failed at the export and alice got 504
 * for a message bob had. Now bob's ack on B is answered to A (node A's
 * inbox), whose receipt then reaches alice; bob never acking on B fails it
 * the same way (504 once, no leak on either node). */
static void test_receipt_follows_moved_recipient(void **st) {
  hd_rtm_cluster_t ca = {.node = "node-a", .peer_result = cl_peer_result},
                   cb = {.node = "node-b", .resume = cl_resume, .peer_result = cl_peer_result};
  for (int acked = 1; acked >= 0; acked--) {
    memset(&g_prc, 0, sizeof g_prc);
    hd_rtm_broker_t *a = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &ca});
    hd_rtm_broker_t *b = mk_cfg((hd_rtm_config_t){.rate = 1000, .burst = 1000, .cluster = &cb});
    login(a, 1, "alice", 0);
    json_t *w = nth(1, "welcome", 0);
    char sid[64];
    snprintf(sid, sizeof sid, "%s", sval(w, "session"));
    json_decref(w);
    char rb[64];
    snprintf(rb, sizeof rb, "%s", login(a, 2, "bob", 0));
    feed(a, 1, "{\"type\":\"peer\",\"id\":\"q1\",\"to\":\"bob\",\"data\":\"hi\"}");
    hd_rtm_conn_closed(a, 2, now);
    assert_int_equal(hd_rtm_conn_open(b, 3, now), 0);
    feed(b, 3, "{\"type\":\"login\",\"id\":\"r\",\"resume\":\"%s\",\"last\":0}", rb);
    char *state;
    size_t len;
    assert_int_equal(hd_rtm_cluster_export(a, rb, "node-b", &state, &len, now), 0);
    assert_int_equal(hd_rtm_cluster_import(b, 3, state, len, now), 0);
    free(state);
    assert_int_equal(count(1, "error"), 0); /* not failed at the export */
    assert_int_equal(receipts_of(a), 1);
    assert_int_equal(receipts_of(b), 1);
    json_t *m = nth(3, "peer", 0);
    assert_non_null(m);
    if (acked) {
      feed(b, 3, "{\"type\":\"ack\",\"s\":%lld}", (long long)ival(m, "s"));
    } else { /* bob's session on B ends without acking */
      feed(b, 3, "{\"type\":\"logout\"}");
      hd_rtm_conn_closed(b, 3, now);
    }
    json_decref(m);
    assert_int_equal(g_prc.n, 1); /* B answers A */
    assert_string_equal(g_prc.node, "node-a");
    assert_string_equal(g_prc.sid, sid);
    assert_string_equal(g_prc.id, "q1");
    assert_int_equal(g_prc.delivered, acked);
    assert_int_equal(count(1, "receipt") + count(1, "error"), 0);
    hd_rtm_cluster_peer_result(a, g_prc.sid, g_prc.id, g_prc.delivered, now); /* A reads it */
    if (acked) {
      json_t *r = nth(1, "receipt", 0);
      assert_non_null(r);
      assert_string_equal(sval(r, "id"), "q1");
      assert_string_equal(sval(r, "to"), "bob");
      json_decref(r);
      assert_int_equal(count(1, "error"), 0);
    } else {
      json_t *e = nth(1, "error", 0);
      assert_non_null(e);
      assert_int_equal(ival(e, "code"), 504);
      json_decref(e);
      assert_int_equal(count(1, "receipt"), 0);
    }
    assert_int_equal(receipts_of(a), 0);
    assert_int_equal(receipts_of(b), 0);
    /* answered once: the deadlines pass without a second answer */
    now += 2 * HD_RTM_DEFAULT_PEER_TIMEOUT;
    hd_rtm_tick(a, now);
    hd_rtm_tick(b, now);
    assert_int_equal(count(1, "receipt") + count(1, "error"), 1);
    assert_int_equal(g_prc.n, 1);
    hd_rtm_broker_free(a);
    hd_rtm_broker_free(b);
    reset_out();
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_order_and_ack, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_window_ring_cap_and_wrap, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_resume_replay_dedupe, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_pub_dedupe, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_overflow_and_timeout, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_peer, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_bad_input, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_flood, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_timers_and_user_index, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test(test_client_helper),
      cmocka_unit_test_setup_teardown(test_session_caps, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_room_scope, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_error_flood_not_closed, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_delivery_exactly_once, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_import_window_cap, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_outcome_follows_moved_sender, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_receipt_follows_moved_recipient, rtm_world_setup,
                                      rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_adopted_receipt_freed_at_deadline, rtm_world_setup,
                                      rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_receipt_freed_when_done_before_other_nodes_answer, rtm_world_setup,
                                      rtm_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
