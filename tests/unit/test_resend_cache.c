/* Unit tests for the per-track record of what went out on a media SSRC
 * (src/sfu/resend_cache.h): a packet comes back byte for byte while its
 * bytes are in the arena and it is younger than HD_RESEND_CACHE_MAX_AGE;
 * packets never straddle the arena's end; a seq whose bytes are gone still
 * reads as sent (so no other bytes go under it); the caps hold. */
#include "hd_test.h"

#include "base/err.h"
#include "sfu/resend_cache.h"

static void fill(uint8_t *p, size_t len, uint16_t seq) {
  for (size_t i = 0; i < len; i++)
    p[i] = (uint8_t)(seq * 7u + i);
}

static void test_exact_bytes_back(void **st) {
  (void)st;
  hd_resend_cache_t c;
  assert_int_equal(hd_resend_cache_init(&c, 128, 16384), 0);
  assert_int_equal(hd_resend_cache_footprint(&c), 128 * sizeof(hd_resend_slot_t) + 16384);
  uint8_t p[1500];
  for (uint16_t s = 65500; s != 40; s++) { /* across the seq wrap */
    fill(p, 100 + s % 50, s);
    assert_int_equal(hd_resend_cache_put(&c, s, p, 100 + s % 50, HD_SEC(1)), 0);
  }
  for (uint16_t s = 65500; s != 40; s++) {
    const uint8_t *got;
    size_t len;
    assert_int_equal(hd_resend_cache_get(&c, s, HD_SEC(1) + HD_MS(500), &got, &len), 0);
    fill(p, 100 + s % 50, s);
    assert_int_equal(len, 100 + s % 50);
    assert_memory_equal(got, p, len);
  }
  const uint8_t *got;
  size_t len;
  assert_int_equal(hd_resend_cache_get(&c, 41, HD_SEC(1), &got, &len), HD_ENOTFOUND); /* never sent */
  assert_int_equal(hd_resend_cache_sent(&c, 41, HD_SEC(1)), 0);
  /* too old: neither resent nor remembered */
  assert_int_equal(hd_resend_cache_get(&c, 10, HD_SEC(1) + HD_RESEND_CACHE_MAX_AGE + 1, &got, &len),
                   HD_ENOTFOUND);
  assert_int_equal(hd_resend_cache_sent(&c, 10, HD_SEC(1) + HD_RESEND_CACHE_MAX_AGE + 1), 0);
  hd_resend_cache_clear(&c);
  assert_int_equal(hd_resend_cache_sent(&c, 10, HD_SEC(1)), 0);
  hd_resend_cache_free(&c);
}

/* The arena is the cap: big packets push the oldest bytes out (their seqs
 * still read as sent); what is returned is never a mix of two packets. */
static void test_arena_wraps(void **st) {
  (void)st;
  hd_resend_cache_t c;
  assert_int_equal(hd_resend_cache_init(&c, 64, 4000), 0);
  uint8_t p[1500];
  for (uint16_t s = 0; s < 40; s++) {
    fill(p, 700 + s * 13 % 500, s);
    assert_int_equal(hd_resend_cache_put(&c, s, p, 700 + s * 13 % 500, HD_SEC(2)), 0);
    size_t kept = 0;
    for (uint16_t q = 0; q <= s; q++) {
      const uint8_t *got;
      size_t len;
      if (hd_resend_cache_get(&c, q, HD_SEC(2), &got, &len) == 0) {
        uint8_t want[1500];
        fill(want, 700 + q * 13 % 500, q);
        assert_int_equal(len, 700 + q * 13 % 500);
        assert_memory_equal(got, want, len);
        assert_true(got >= c.arena && got + len <= c.arena + c.arena_cap);
        kept += len;
      } else {
        assert_true(s - q >= 2); /* at least the newest two (<= 1200 bytes each) fit in 4000 */
        assert_int_equal(hd_resend_cache_sent(&c, q, HD_SEC(2)), 1);
      }
    }
    assert_true(kept <= c.arena_cap);
  }
  /* slots are the other cap: seq 40 + 64 = 104 takes seq 40's slot */
  fill(p, 10, 40);
  hd_resend_cache_put(&c, 40, p, 10, HD_SEC(2));
  hd_resend_cache_put(&c, 104, p, 10, HD_SEC(2));
  assert_int_equal(hd_resend_cache_sent(&c, 40, HD_SEC(2)), 0);
  assert_int_equal(hd_resend_cache_sent(&c, 104, HD_SEC(2)), 1);
  hd_resend_cache_free(&c);
}

/* keep_seqs (FlexFEC tracks): a seq whose bytes are gone (its slot taken by
 * a newer one) still "went out"; one the sender skipped (dropped before it
 * left) did not -- across the seq wrap, and after the whole space went round
 * again with other seqs skipped. */
static void test_went_out(void **st) {
  (void)st;
  hd_resend_cache_t c;
  assert_int_equal(hd_resend_cache_init(&c, 128, 16384), 0);
  assert_int_equal(hd_resend_cache_went_out(&c, 1), 0); /* off: 0 */
  assert_int_equal(hd_resend_cache_keep_seqs(&c), 0);
  assert_int_equal(hd_resend_cache_footprint(&c), 128 * sizeof(hd_resend_slot_t) + 16384 + 8192);
  uint8_t p[200];
  fill(p, sizeof p, 0);
  for (uint32_t i = 0; i < 65536 + 700; i++) {
    uint16_t s = (uint16_t)(65000 + i);
    if ((i < 65536 ? i % 10 : i % 7) == 3) continue; /* skipped: another pattern the second time round */
    assert_int_equal(hd_resend_cache_put(&c, s, p, sizeof p, HD_SEC(1)), 0);
  }
  const uint8_t *b;
  size_t bl;
  for (uint32_t i = 65536; i < 65536 + 700; i++) {
    uint16_t s = (uint16_t)(65000 + i);
    assert_int_equal(hd_resend_cache_went_out(&c, s), i % 7 != 3);
  }
  uint16_t old = (uint16_t)(65000 + 65536 + 10); /* 690 seqs back: its slot taken */
  assert_int_equal(hd_resend_cache_get(&c, old, HD_SEC(1), &b, &bl), HD_ENOTFOUND);
  assert_int_equal(hd_resend_cache_went_out(&c, old), 1);
  hd_resend_cache_clear(&c);
  assert_int_equal(hd_resend_cache_went_out(&c, old), 0);
  hd_resend_cache_free(&c);
}

static void test_bad_arguments(void **st) {
  (void)st;
  hd_resend_cache_t c;
  assert_int_equal(hd_resend_cache_init(&c, 100, 16384), HD_EINVAL); /* not a power of two */
  assert_int_equal(hd_resend_cache_init(&c, 64, 100), HD_EINVAL);    /* smaller than a datagram */
  assert_int_equal(hd_resend_cache_init(&c, 64, 2000), 0);
  uint8_t p[2100] = {0};
  assert_int_equal(hd_resend_cache_put(&c, 1, p, 0, 1), HD_EINVAL);
  assert_int_equal(hd_resend_cache_put(&c, 1, p, 2001, 1), HD_EINVAL); /* above the arena */
  assert_int_equal(hd_resend_cache_sent(&c, 1, 1), 0);
  hd_resend_cache_free(&c);
  hd_resend_cache_free(&c); /* twice is harmless */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_bytes_back),
      cmocka_unit_test(test_arena_wraps),
      cmocka_unit_test(test_went_out),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
