/* Unit tests for the per-app / per-identity session counts (src/sfu/quota.h):
 * caps, give-back by session id, and exact counts when several threads (media
 * workers) take and give back at once. */
#include "hd_test.h"

#include <pthread.h>
#include <stdatomic.h>

#include "base/err.h"
#include "sfu/quota.h"

static void test_caps_and_release(void **st) {
  (void)st;
  hd_quota_t *q;
  hd_quota_limit_t which;
  assert_int_equal(hd_quota_new(&q, 3, 2, 100), 0);
  assert_int_equal(hd_quota_take(q, "a", "u", "s1", &which), 0);
  assert_int_equal(hd_quota_take(q, "a", "u", "s2", &which), 0);
  assert_int_equal(hd_quota_take(q, "a", "u", "s3", &which), HD_ENOSPC);
  assert_int_equal(which, HD_QUOTA_IDENTITY);
  assert_int_equal(hd_quota_take(q, "a", "u", "s1", &which), HD_EINVAL); /* already counted */
  /* identities are per app: "u" of app b is someone else */
  assert_int_equal(hd_quota_take(q, "b", "u", "s4", &which), 0);
  assert_int_equal(hd_quota_take(q, "a", NULL, "s5", &which), 0); /* not counted per identity */
  assert_int_equal(hd_quota_check(q, "a", "v", &which), HD_ENOSPC);
  assert_int_equal(which, HD_QUOTA_APP);
  assert_int_equal(hd_quota_take(q, "a", "v", "s6", &which), HD_ENOSPC);
  assert_int_equal(hd_quota_app_count(q, "a"), 3);
  /* ("ab","c") and ("a","bc") are different identities */
  assert_int_equal(hd_quota_identity_count(q, "a", "u"), 2);
  assert_int_equal(hd_quota_identity_count(q, "au", ""), 0);
  hd_quota_release(q, "s1");
  hd_quota_release(q, "s1"); /* twice: a no-op */
  hd_quota_release(q, "nope");
  assert_int_equal(hd_quota_app_count(q, "a"), 2);
  assert_int_equal(hd_quota_identity_count(q, "a", "u"), 1);
  assert_int_equal(hd_quota_take(q, "a", "v", "s6", &which), 0);
  hd_quota_release(q, "s2");
  hd_quota_release(q, "s4");
  hd_quota_release(q, "s5");
  hd_quota_release(q, "s6");
  assert_int_equal(hd_quota_app_count(q, "a"), 0);
  assert_int_equal(hd_quota_app_count(q, "b"), 0);
  hd_quota_free(q);
  /* 0 = no cap */
  assert_int_equal(hd_quota_new(&q, 0, 0, 10), 0);
  char sid[16];
  for (int i = 0; i < 10; i++) {
    snprintf(sid, sizeof sid, "s%d", i);
    assert_int_equal(hd_quota_take(q, "a", "u", sid, &which), 0);
  }
  hd_quota_free(q); /* frees what is still held */
}

/* Four threads (as four media workers) take and give back sessions of one
 * app under a cap of 8: the count never goes past the cap and ends at 0. */
#define THREADS 4
#define ROUNDS 5000
static hd_quota_t *g_q;
static atomic_int g_held, g_max;

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  char sid[4][32];
  for (int i = 0; i < ROUNDS; i++) {
    int got[4] = {0};
    /* each thread wants 4 at once: 16 wanted, 8 allowed */
    for (int k = 0; k < 4; k++) {
      snprintf(sid[k], sizeof sid[k], "t%d-%d-%d", t, i, k);
      if (hd_quota_take(g_q, "app", t & 1 ? "odd" : "even", sid[k], NULL) == 0) {
        got[k] = 1;
        int h = atomic_fetch_add(&g_held, 1) + 1;
        int m = atomic_load(&g_max);
        while (h > m && !atomic_compare_exchange_weak(&g_max, &m, h)) {
        }
      }
    }
    for (int k = 0; k < 4; k++)
      if (got[k]) {
        atomic_fetch_sub(&g_held, 1);
        hd_quota_release(g_q, sid[k]);
      }
  }
  return NULL;
}

static void test_threads(void **st) {
  (void)st;
  assert_int_equal(hd_quota_new(&g_q, 8, 0, 64), 0);
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  assert_true(atomic_load(&g_max) <= 8);
  assert_true(atomic_load(&g_max) >= 4); /* the cap was actually contended */
  assert_int_equal(hd_quota_app_count(g_q, "app"), 0);
  assert_int_equal(hd_quota_identity_count(g_q, "app", "odd"), 0);
  hd_quota_free(g_q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_caps_and_release),
      cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
