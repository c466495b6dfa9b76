/* Unit tests for the cross-node dedupe table (src/rtm/seen.h): first sight
 * delivers, a repeat is recognised with its outcome, the oldest key goes at
 * the cap (and only it), bad keys are refused rather than swallowed. */
#include <stdio.h>
#include <string.h>

#include "hd_test.h"

#include "base/err.h"
#include "rtm/seen.h"

static int check(hd_rtm_seen_t *s, const char *k, int *out) {
  return hd_rtm_seen_check(s, k, strlen(k), out);
}

static void test_first_then_repeat(void **st) {
  (void)st;
  hd_rtm_seen_t s;
  int o = 99;
  assert_int_equal(hd_rtm_seen_init(&s, 8), 0);
  assert_int_equal(check(&s, "n1\nS1\npm1", &o), 0);
  assert_int_equal(o, 99); /* untouched on first sight */
  assert_int_equal(check(&s, "n1\nS1\npm1", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_PENDING);
  /* another node, session or id is another message */
  assert_int_equal(check(&s, "n2\nS1\npm1", &o), 0);
  assert_int_equal(check(&s, "n1\nS2\npm1", &o), 0);
  assert_int_equal(check(&s, "n1\nS1\npm2", &o), 0);
  assert_int_equal(hd_rtm_seen_settle(&s, "n1\nS1\npm1", 9, HD_RTM_SEEN_DELIVERED), 1);
  assert_int_equal(check(&s, "n1\nS1\npm1", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_DELIVERED);
  assert_int_equal(hd_rtm_seen_settle(&s, "n1\nS2\npm1", 9, HD_RTM_SEEN_FAILED), 1);
  assert_int_equal(check(&s, "n1\nS2\npm1", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_FAILED);
  assert_int_equal(hd_rtm_seen_settle(&s, "never", 5, HD_RTM_SEEN_FAILED), 0);
  assert_int_equal(s.dropped, 3);
  hd_rtm_seen_free(&s);
}

static void test_cap_evicts_oldest(void **st) {
  (void)st;
  hd_rtm_seen_t s;
  int o;
  char k[32];
  assert_int_equal(hd_rtm_seen_init(&s, 4), 0);
  for (int i = 0; i < 4; i++) {
    snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(check(&s, k, &o), 0);
  }
  assert_int_equal(check(&s, "k4", &o), 0); /* k0 goes */
  assert_int_equal(s.n, 4);
  for (int i = 1; i <= 4; i++) { /* the four newest are still known */
    snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(check(&s, k, &o), 1);
  }
  assert_int_equal(check(&s, "k0", &o), 0); /* forgotten: taken as new (k1 goes) */
  assert_int_equal(check(&s, "k1", &o), 0);
  /* many rounds over the cap: never more than cap entries, always the newest known */
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "r%d", i);
    assert_int_equal(check(&s, k, &o), 0);
    assert_true(s.n <= 4);
    assert_true(hd_map_count(&s.map) <= 4);
  }
  assert_int_equal(check(&s, "r999", &o), 1);
  assert_int_equal(check(&s, "r996", &o), 1);
  assert_int_equal(check(&s, "r995", &o), 0);
  hd_rtm_seen_free(&s);
}

static void test_bad_keys(void **st) {
  (void)st;
  hd_rtm_seen_t s;
  int o;
  char big[HD_RTM_SEEN_KEY_MAX + 2];
  memset(big, 'x', sizeof big);
  assert_int_equal(hd_rtm_seen_init(&s, 0), HD_EINVAL);
  assert_int_equal(hd_rtm_seen_init(&s, 2), 0);
  assert_int_equal(hd_rtm_seen_check(&s, "", 0, &o), HD_EINVAL);
  assert_int_equal(hd_rtm_seen_check(&s, big, sizeof big, &o), HD_EINVAL);
  assert_int_equal(hd_rtm_seen_check(&s, big, HD_RTM_SEEN_KEY_MAX, &o), 0);
  assert_int_equal(hd_rtm_seen_check(&s, big, HD_RTM_SEEN_KEY_MAX, &o), 1);
  hd_rtm_seen_free(&s);
  hd_rtm_seen_free(&s); /* twice is fine */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_then_repeat),
      cmocka_unit_test(test_cap_evicts_oldest),
      cmocka_unit_test(test_bad_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
