/* Unit tests for the cross-node dedupe table (src/rtm/seen.h): first sight
 * delivers, a repeat is recognised with its outcome, a repeat from another
 * node while the outcome is pending is answered when it settles, the oldest
 * key goes at the cap (and only it), bad keys are refused rather than
 * swallowed. */
#include <stdio.h>
#include <string.h>

#include "hd_test.h"

#include "base/err.h"
#include "rtm/seen.h"

static int check(hd_rtm_seen_t *s, const char *k, int *out) {
  return hd_rtm_seen_check(s, k, strlen(k), "n1", out);
}

static int settle(hd_rtm_seen_t *s, const char *k, size_t len, int outcome) {
  return hd_rtm_seen_settle(s, k, len, outcome, "n1", NULL, NULL);
}

/* The nodes hd_rtm_seen_settle asked to answer, in order. */
typedef struct {
  char got[8][64];
  int n;
} answers_t;

static void answer(void *ud, const char *origin) {
  answers_t *a = ud;
  if (a->n < 8) snprintf(a->got[a->n++], sizeof a->got[0], "%s", origin);
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
  assert_int_equal(settle(&s, "n1\nS1\npm1", 9, HD_RTM_SEEN_DELIVERED), 1);
  assert_int_equal(check(&s, "n1\nS1\npm1", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_DELIVERED);
  assert_int_equal(settle(&s, "n1\nS2\npm1", 9, HD_RTM_SEEN_FAILED), 1);
  assert_int_equal(check(&s, "n1\nS2\npm1", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_FAILED);
  assert_int_equal(settle(&s, "never", 5, HD_RTM_SEEN_FAILED), 0);
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
  assert_int_equal(hd_rtm_seen_check(&s, "", 0, "n1", &o), HD_EINVAL);
  assert_int_equal(hd_rtm_seen_check(&s, big, sizeof big, "n1", &o), HD_EINVAL);
  assert_int_equal(hd_rtm_seen_check(&s, big, HD_RTM_SEEN_KEY_MAX, "n1", &o), 0);
  assert_int_equal(hd_rtm_seen_check(&s, big, HD_RTM_SEEN_KEY_MAX, "n1", &o), 1);
  hd_rtm_seen_free(&s);
  hd_rtm_seen_free(&s); /* twice is fine */
}

/* Issue 15 review: a peer message's first copy came from n1 (the sender's
 * node; its call timed out, the client got 503), the session then moved to
 * n2 and the client retried the same id from there while the recipient had
 * not acked yet. The outcome goes to n1 (the broker answers the first copy's
 * node) and to n2 — before, only to n1, and n2 answered 504 at its
 * deadline although the message was delivered. Each node once, n1 not twice;
 * a repeat after the outcome is known is answered by the caller at once and
 * not remembered; the table's cap forgets waiting origins with their key. */
static void test_retry_from_another_origin(void **st) {
  (void)st;
  hd_rtm_seen_t s;
  int o = 99;
  const char *k = "S1\npm1";
  size_t kl = strlen(k);
  assert_int_equal(hd_rtm_seen_init(&s, 4), 0);
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n1", &o), 0); /* first copy: delivered by the caller */
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n2", &o), 1); /* the retry from the session's new node */
  assert_int_equal(o, HD_RTM_SEEN_PENDING);
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n2", &o), 1); /* n2 again: remembered once */
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n1", &o), 1); /* n1 retried too: the broker answers it */
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n3", &o), 1);
  answers_t a = {0};
  assert_int_equal(hd_rtm_seen_settle(&s, k, kl, HD_RTM_SEEN_DELIVERED, "n1", answer, &a), 1);
  assert_int_equal(a.n, 2);
  assert_string_equal(a.got[0], "n2");
  assert_string_equal(a.got[1], "n3");
  /* answered once: settling again (or a late repeat) asks for nobody */
  a.n = 0;
  assert_int_equal(hd_rtm_seen_settle(&s, k, kl, HD_RTM_SEEN_DELIVERED, "n1", answer, &a), 1);
  assert_int_equal(a.n, 0);
  assert_int_equal(hd_rtm_seen_check(&s, k, kl, "n4", &o), 1);
  assert_int_equal(o, HD_RTM_SEEN_DELIVERED); /* known: the caller answers n4 at once */
  assert_int_equal(hd_rtm_seen_settle(&s, k, kl, HD_RTM_SEEN_DELIVERED, "n1", answer, &a), 1);
  assert_int_equal(a.n, 0);

  /* at most HD_RTM_SEEN_WAITERS origins wait on one key; more are counted */
  const char *k2 = "S2\npm1";
  assert_int_equal(hd_rtm_seen_check(&s, k2, strlen(k2), "a0", &o), 0);
  char on[16];
  for (int i = 1; i <= HD_RTM_SEEN_WAITERS + 2; i++) {
    snprintf(on, sizeof on, "a%d", i);
    assert_int_equal(hd_rtm_seen_check(&s, k2, strlen(k2), on, &o), 1);
  }
  assert_int_equal(s.unanswered, 2);
  a.n = 0;
  assert_int_equal(hd_rtm_seen_settle(&s, k2, strlen(k2), HD_RTM_SEEN_FAILED, "a0", answer, &a), 1);
  assert_int_equal(a.n, HD_RTM_SEEN_WAITERS);
  assert_string_equal(a.got[0], "a1");

  /* a pending key with a waiting origin pushed out at the cap: nothing left to answer */
  const char *k3 = "S3\npm1";
  assert_int_equal(hd_rtm_seen_check(&s, k3, strlen(k3), "n1", &o), 0);
  assert_int_equal(hd_rtm_seen_check(&s, k3, strlen(k3), "n2", &o), 1);
  for (int i = 0; i < 4; i++) {
    char kk[16];
    snprintf(kk, sizeof kk, "x%d", i);
    assert_int_equal(hd_rtm_seen_check(&s, kk, strlen(kk), "n1", &o), 0);
  }
  a.n = 0;
  assert_int_equal(hd_rtm_seen_settle(&s, k3, strlen(k3), HD_RTM_SEEN_DELIVERED, "n1", answer, &a), 0);
  assert_int_equal(a.n, 0);
  assert_int_equal(s.unanswered, 3); /* n2 counted: nobody answers it now */
  hd_rtm_seen_free(&s);
}

static int g_evict_calls;
static char g_evict_last[200];
/* An answer whose sending adds keys: with cap 2, the settled entry itself
 * is pushed out while its waiters are being answered. */
static void evicting_fn(void *ud, const char *o) {
  hd_rtm_seen_t *s = ud;
  g_evict_calls++;
  snprintf(g_evict_last, sizeof g_evict_last, "%s", o);
  int out;
  char k[32];
  snprintf(k, sizeof k, "evict-%d", g_evict_calls);
  hd_rtm_seen_check(s, k, strlen(k), "x", &out);
}

/* The first copy's origin takes no waiter slot (its retries are answered by
 * the caller); origins past HD_RTM_SEEN_WAITERS and the waiters of a pending
 * key pushed out are counted in `unanswered` (exported to /metrics). */
static void test_waiters_exclude_first_and_count_unanswered(void **st) {
  (void)st;
  hd_rtm_seen_t s;
  assert_int_equal(hd_rtm_seen_init(&s, 2), 0);
  int out;
  assert_int_equal(hd_rtm_seen_check(&s, "k", 1, "n0", &out), 0);
  char o[200];
  for (int i = 0; i < 8; i++) { /* n0..n5, n0, n1: n1..n4 fit, n5 does not */
    snprintf(o, sizeof o, "n%d", i % 6);
    assert_int_equal(hd_rtm_seen_check(&s, "k", 1, o, &out), 1);
    assert_int_equal(out, HD_RTM_SEEN_PENDING);
  }
  assert_int_equal(s.unanswered, 1);
  memset(o, 'a', HD_RTM_SEEN_ORIGIN_MAX); /* an origin over the limit */
  o[HD_RTM_SEEN_ORIGIN_MAX] = 0;
  assert_int_equal(hd_rtm_seen_check(&s, "k", 1, o, &out), 1);
  assert_int_equal(s.unanswered, 2);
  g_evict_calls = 0;
  assert_int_equal(hd_rtm_seen_settle(&s, "k", 1, HD_RTM_SEEN_DELIVERED, "n0", evicting_fn, &s), 1);
  assert_int_equal(g_evict_calls, HD_RTM_SEEN_WAITERS); /* n1..n4, never n0 */
  assert_string_equal(g_evict_last, "n4");
  assert_int_equal(s.unanswered, 2);
  /* a pending key with a waiter pushed out: that waiter is never answered */
  assert_int_equal(hd_rtm_seen_check(&s, "p", 1, "n0", &out), 0);
  assert_int_equal(hd_rtm_seen_check(&s, "p", 1, "n1", &out), 1);
  assert_int_equal(hd_rtm_seen_check(&s, "q", 1, "n0", &out), 0);
  assert_int_equal(hd_rtm_seen_check(&s, "r", 1, "n0", &out), 0);
  assert_int_equal(s.unanswered, 3);
  assert_int_equal(hd_rtm_seen_settle(&s, "p", 1, HD_RTM_SEEN_DELIVERED, "n0", evicting_fn, &s), 0);
  hd_rtm_seen_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_then_repeat),
      cmocka_unit_test(test_cap_evicts_oldest),
      cmocka_unit_test(test_bad_keys),
      cmocka_unit_test(test_retry_from_another_origin),
      cmocka_unit_test(test_waiters_exclude_first_and_count_unanswered),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
