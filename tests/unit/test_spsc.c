/* Unit tests for the bounded SPSC ring (src/base/spsc.h): cap rounding, full
 * and empty, FIFO order across the wrap, and one producer and one consumer
 * thread handing over 50,000 slots with every slot's bytes intact and in
 * order (run under TSan by tools/test.sh). */
#include "hd_test.h"

#include <pthread.h>
#include <string.h>

#include "base/err.h"
#include "base/spsc.h"

static void test_bad_args(void **st) {
  (void)st;
  hd_spsc_t q;
  assert_int_equal(hd_spsc_init(&q, 0, 8), HD_EINVAL);
  assert_int_equal(hd_spsc_init(&q, 8, 0), HD_EINVAL);
  assert_int_equal(hd_spsc_init(&q, ((size_t)1 << 24) + 1, 8), HD_EINVAL);
}

static void test_full_empty_order_wrap(void **st) {
  (void)st;
  hd_spsc_t q;
  assert_int_equal(hd_spsc_init(&q, 5, 12), 0); /* rounded up: 8 slots of 16 bytes */
  assert_int_equal(q.cap, 8);
  assert_int_equal(q.slot_size, 16);
  assert_null(hd_spsc_peek(&q));
  uint32_t next_in = 0, next_out = 0;
  for (int round = 0; round < 50; round++) { /* many wraps of the 8 slots */
    int push = 1 + round % 8;
    for (int i = 0; i < push; i++) {
      uint32_t *p = hd_spsc_reserve(&q);
      assert_non_null(p);
      *p = next_in++;
      hd_spsc_commit(&q);
    }
    assert_int_equal(hd_spsc_count(&q), (size_t)push);
    for (int i = 0; i < push; i++) {
      uint32_t *p = hd_spsc_peek(&q);
      assert_non_null(p);
      assert_int_equal(*p, next_out);
      next_out++;
      hd_spsc_pop(&q);
    }
    assert_null(hd_spsc_peek(&q));
  }
  /* full: the ninth reserve is refused, nothing is overwritten */
  for (uint32_t i = 0; i < 8; i++) {
    uint32_t *p = hd_spsc_reserve(&q);
    assert_non_null(p);
    *p = 1000 + i;
    hd_spsc_commit(&q);
  }
  assert_null(hd_spsc_reserve(&q));
  uint32_t *p = hd_spsc_peek(&q);
  assert_int_equal(*p, 1000);
  hd_spsc_pop(&q);
  p = hd_spsc_reserve(&q); /* one slot free again */
  assert_non_null(p);
  *p = 2000;
  hd_spsc_commit(&q);
  for (uint32_t i = 1; i < 8; i++) {
    p = hd_spsc_peek(&q);
    assert_int_equal(*p, 1000 + i);
    hd_spsc_pop(&q);
  }
  assert_int_equal(*(uint32_t *)hd_spsc_peek(&q), 2000);
  hd_spsc_free(&q);
}

#define N_ITEMS 50000u
#define SLOT_WORDS 8
static hd_spsc_t g_q;
static uint64_t g_full; /* producer only */

static void *producer(void *arg) {
  (void)arg;
  for (uint32_t i = 0; i < N_ITEMS;) {
    uint32_t *p = hd_spsc_reserve(&g_q);
    if (!p) {
      g_full++;
      continue; /* the consumer is behind: try again */
    }
    for (int w = 0; w < SLOT_WORDS; w++)
      p[w] = i * 31u + (uint32_t)w; /* every word, so a torn slot shows */
    hd_spsc_commit(&g_q);
    i++;
  }
  return NULL;
}

static void test_two_threads(void **st) {
  (void)st;
  assert_int_equal(hd_spsc_init(&g_q, 64, SLOT_WORDS * sizeof(uint32_t)), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, producer, NULL), 0);
  uint32_t next = 0;
  int bad = 0;
  while (next < N_ITEMS) {
    uint32_t *p = hd_spsc_peek(&g_q);
    if (!p) continue;
    for (int w = 0; w < SLOT_WORDS; w++)
      if (p[w] != next * 31u + (uint32_t)w) bad++;
    hd_spsc_pop(&g_q);
    next++;
  }
  pthread_join(th, NULL);
  assert_int_equal(bad, 0);
  assert_null(hd_spsc_peek(&g_q));
  hd_spsc_free(&g_q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_full_empty_order_wrap),
      cmocka_unit_test(test_two_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
