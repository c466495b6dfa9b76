/* RTM broker (src/rtm/broker.h), channel state, on a virtual clock with the
 * in-memory store (tests/support/rtm_world.h): presence (who, state, the
 * presence_max quiet mode), attribute compare-and-set, lock TTL, steal and
 * restore from the store. */
#include "hd_test.h"

#include "base/err.h"
#include "rtm/broker.h"
#include "support/rtm_world.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_presence_who_state, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_presence_max, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_attrs_cas, rtm_world_setup, rtm_world_teardown),
      cmocka_unit_test_setup_teardown(test_lock_ttl, rtm_world_setup, rtm_world_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
