/* Unit tests for src/rtc/rtp_cache: eviction by ring position, age limit,
 * per-seq resend rate limit, late packets, wrap, bad input. Virtual time. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/rtp.h"
#include "rtc/rtp_cache.h"

static size_t mk(uint8_t *out, uint16_t seq, size_t payload) {
  hd_rtp_build_t b = {.pt = 96, .seq = seq, .ts = seq * 10u, .ssrc = 0xabc};
  uint8_t pl[1500];
  memset(pl, (int)(seq & 0xff), sizeof pl);
  int n = hd_rtp_build(&b, pl, payload, out, 1600);
  assert_true(n > 0);
  return (size_t)n;
}

static void test_init_args(void **st) {
  (void)st;
  hd_rtp_cache_t c;
  assert_int_equal(hd_rtp_cache_init(&c, 0), HD_EINVAL);
  assert_int_equal(hd_rtp_cache_init(&c, 3), HD_EINVAL);
  assert_int_equal(hd_rtp_cache_init(&c, 2048), HD_EINVAL);
  assert_int_equal(hd_rtp_cache_init(&c, 1024), 0);
  hd_rtp_cache_free(&c);
  hd_rtp_cache_free(&c); /* idempotent */
}

static void test_put_get_evict(void **st) {
  (void)st;
  hd_rtp_cache_t c;
  assert_int_equal(hd_rtp_cache_init(&c, 8), 0);
  uint8_t pkt[1600];
  for (uint16_t s = 0; s < 10; s++) {
    size_t n = mk(pkt, s, 100 + s);
    assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_MS(s)), 0);
  }
  const uint8_t *p;
  size_t l;
  /* 0 and 1 were overwritten by 8 and 9. */
  assert_int_equal(hd_rtp_cache_get(&c, 0, HD_MS(20), &p, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_cache_get(&c, 1, HD_MS(20), &p, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_cache_get(&c, 100, HD_MS(20), &p, &l), HD_ENOTFOUND); /* never */
  for (uint16_t s = 2; s < 10; s++) {
    assert_int_equal(hd_rtp_cache_get(&c, s, HD_MS(20), &p, &l), 0);
    assert_int_equal(l, 12 + 100 + s);
    hd_rtp_hdr_t h;
    assert_int_equal(hd_rtp_parse(p, l, &h), 0);
    assert_int_equal(h.seq, s);
    assert_int_equal(h.payload[0], s);
  }
  /* A late packet does not evict the newer one in its slot. */
  size_t n = mk(pkt, 1, 10);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_MS(30)), 0);
  assert_int_equal(hd_rtp_cache_peek(&c, 1, HD_MS(30), &p, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_cache_peek(&c, 9, HD_MS(30), &p, &l), 0);
  /* Clear forgets everything. */
  hd_rtp_cache_clear(&c);
  assert_int_equal(hd_rtp_cache_peek(&c, 9, HD_MS(30), &p, &l), HD_ENOTFOUND);
  hd_rtp_cache_free(&c);
}

static void test_age_and_rate_limit(void **st) {
  (void)st;
  hd_rtp_cache_t c;
  assert_int_equal(hd_rtp_cache_init(&c, 16), 0);
  uint8_t pkt[1600];
  size_t n = mk(pkt, 500, 50);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_SEC(10)), 0);
  const uint8_t *p;
  size_t l;
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(10) + HD_MS(100), &p, &l), 0);
  /* Same seq within 10 ms: refused; peek still works. */
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(10) + HD_MS(105), &p, &l), HD_EAGAIN);
  assert_int_equal(hd_rtp_cache_peek(&c, 500, HD_SEC(10) + HD_MS(105), &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(10) + HD_MS(110), &p, &l), 0);
  /* Exactly at max age still served, past it gone. */
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(11), &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(11) + 1, &p, &l), HD_ENOTFOUND);
  /* Custom limits. */
  hd_rtp_cache_set_limits(&c, HD_MS(200), HD_MS(50));
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_SEC(20)), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(20), &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(20) + HD_MS(49), &p, &l), HD_EAGAIN);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(20) + HD_MS(50), &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(20) + HD_MS(201), &p, &l), HD_ENOTFOUND);
  /* Re-put resets the resend mark. */
  hd_rtp_cache_set_limits(&c, HD_SEC(1), HD_MS(10));
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_SEC(30)), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(30), &p, &l), 0);
  /* Stale occupant of a slot (past max age) is replaced even if "newer". */
  n = mk(pkt, 516, 5); /* same slot as 500 (mod 16) */
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_SEC(40)), 0);
  n = mk(pkt, 500, 5);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, HD_SEC(50)), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 500, HD_SEC(50), &p, &l), 0);
  hd_rtp_cache_free(&c);
}

static void test_wrap_and_bad_input(void **st) {
  (void)st;
  hd_rtp_cache_t c;
  assert_int_equal(hd_rtp_cache_init(&c, 4), 0);
  uint8_t pkt[1600];
  for (uint32_t s = 65533; s < 65539; s++) {
    size_t n = mk(pkt, (uint16_t)s, 20);
    assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), 0);
  }
  const uint8_t *p;
  size_t l;
  assert_int_equal(hd_rtp_cache_get(&c, 65534, 0, &p, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_cache_get(&c, 65535, 0, &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 0, 0, &p, &l), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 2, 0, &p, &l), 0);
  /* 3 shares slot 3 with 65535 and is newer across the wrap: it evicts it. */
  size_t n = mk(pkt, 3, 20);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), 0);
  assert_int_equal(hd_rtp_cache_peek(&c, 65535, 0, &p, &l), HD_ENOTFOUND);
  n = mk(pkt, 1, 1489);
  assert_int_equal(n, 1501);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), HD_EINVAL);
  n = mk(pkt, 1, 1488);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), 0);
  assert_int_equal(hd_rtp_cache_get(&c, 1, 0, &p, &l), 0);
  assert_int_equal(l, 1500);
  assert_memory_equal(p, pkt, 1500);
  pkt[0] = 0x40;
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), HD_EPROTO);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, 5, 0), HD_EPROTO);
  hd_rtp_cache_free(&c);
  /* Using a freed cache is an error, not a crash. */
  assert_int_equal(hd_rtp_cache_get(&c, 1, 0, &p, &l), HD_ENOTFOUND);
  assert_int_equal(hd_rtp_cache_put(&c, pkt, n, 0), HD_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_init_args),
      cmocka_unit_test(test_put_get_evict),
      cmocka_unit_test(test_age_and_rate_limit),
      cmocka_unit_test(test_wrap_and_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
