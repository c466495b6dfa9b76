/* Unit tests for the hash map: put/get/replace/delete, growth, cap, deletion
 * keeping probe chains intact. */
#include "hd_test.h"

#include "base/err.h"
#include "base/map.h"

static void test_basic(void **st) {
  (void)st;
  hd_map_t m;
  assert_int_equal(hd_map_init(&m, 0), 0);
  int a = 1, b = 2;
  assert_int_equal(hd_map_put(&m, "alpha", 5, &a), 0);
  assert_int_equal(hd_map_put(&m, "beta", 4, &b), 0);
  assert_ptr_equal(hd_map_get(&m, "alpha", 5), &a);
  assert_ptr_equal(hd_map_get(&m, "beta", 4), &b);
  assert_null(hd_map_get(&m, "gamma", 5));
  assert_int_equal(hd_map_put(&m, "alpha", 5, &b), 0);
  assert_ptr_equal(hd_map_get(&m, "alpha", 5), &b);
  assert_int_equal(hd_map_count(&m), 2);
  assert_int_equal(hd_map_del(&m, "alpha", 5), 1);
  assert_int_equal(hd_map_del(&m, "alpha", 5), 0);
  assert_null(hd_map_get(&m, "alpha", 5));
  assert_int_equal(hd_map_put(&m, "", 0, &a), HD_EINVAL);
  hd_map_free(&m);
}

static void test_many_and_cap(void **st) {
  (void)st;
  hd_map_t m;
  assert_int_equal(hd_map_init(&m, 5000), 0);
  static int vals[6000];
  char k[16];
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(hd_map_put(&m, k, (size_t)n, &vals[i]), 0);
  }
  assert_int_equal(hd_map_put(&m, "overflow", 8, &vals[0]), HD_ENOSPC);
  /* delete every third, then all remaining must still be found */
  for (int i = 0; i < 5000; i += 3) {
    int n = snprintf(k, sizeof k, "k%d", i);
    assert_int_equal(hd_map_del(&m, k, (size_t)n), 1);
  }
  for (int i = 0; i < 5000; i++) {
    int n = snprintf(k, sizeof k, "k%d", i);
    if (i % 3 == 0)
      assert_null(hd_map_get(&m, k, (size_t)n));
    else
      assert_ptr_equal(hd_map_get(&m, k, (size_t)n), &vals[i]);
  }
  hd_map_free(&m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic), cmocka_unit_test(test_many_and_cap)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
