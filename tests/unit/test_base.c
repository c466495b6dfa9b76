/* Unit tests for src/base: byte reader/writer, base64, hex, errors. */
#include "hd_test.h"

#include "base/base64.h"
#include "base/bytes.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/rand.h"

static void test_reader_truncation_is_sticky(void **st) {
  (void)st;
  const uint8_t buf[] = {1, 2, 3};
  hd_reader_t r;
  hd_reader_init(&r, buf, sizeof buf);
  assert_int_equal(hd_rd_u16(&r), 0x0102);
  assert_int_equal(hd_rd_u16(&r), 0);
  assert_int_equal(r.err, HD_ETRUNC);
  assert_int_equal(hd_rd_u8(&r), 0);
  assert_null(hd_rd_bytes(&r, 1));
}

static void test_writer_cap(void **st) {
  (void)st;
  uint8_t buf[6];
  hd_writer_t w;
  hd_writer_init(&w, buf, sizeof buf);
  hd_wr_u32(&w, 0xdeadbeef);
  hd_wr_u16(&w, 0x1234);
  assert_int_equal(w.err, 0);
  hd_wr_u8(&w, 1);
  assert_int_equal(w.err, HD_ENOSPC);
  assert_int_equal(w.len, 6);
  assert_int_equal(hd_get_u32(buf), 0xdeadbeef);
}

/* RFC 4648 §10 test vectors. */
static void test_base64_rfc4648(void **st) {
  (void)st;
  const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    char enc[32];
    uint8_t dec[32];
    int n = hd_base64_encode(in[i], strlen(in[i]), enc, sizeof enc, 0);
    assert_int_equal(n, (int)strlen(out[i]));
    assert_string_equal(enc, out[i]);
    n = hd_base64_decode(enc, strlen(enc), dec, sizeof dec);
    assert_int_equal(n, (int)strlen(in[i]));
    assert_memory_equal(dec, in[i], (size_t)n);
  }
  char enc[8];
  assert_int_equal(hd_base64_encode("\xfb\xff", 2, enc, sizeof enc, 1), 3);
  assert_string_equal(enc, "-_8");
  uint8_t d[4];
  assert_int_equal(hd_base64_decode("a$==", 4, d, sizeof d), HD_EPROTO);
  assert_int_equal(hd_base64_decode("Zm9vYmFy", 8, d, sizeof d), HD_ENOSPC);
}

static void test_hex(void **st) {
  (void)st;
  uint8_t b[3] = {0xab, 0x01, 0xff};
  char s[16];
  hd_hex_encode(b, 3, ':', s);
  assert_string_equal(s, "AB:01:FF");
  uint8_t o[3];
  assert_int_equal(hd_hex_decode("ab:01:Ff", 8, o, 3), 3);
  assert_memory_equal(o, b, 3);
  assert_int_equal(hd_hex_decode("zz", 2, o, 3), HD_EPROTO);
}

static void test_random_token(void **st) {
  (void)st;
  char a[17], b[17];
  hd_random_token(a, 16);
  hd_random_token(b, 16);
  assert_int_equal(strlen(a), 16);
  assert_string_not_equal(a, b);
  assert_string_equal(hd_strerror(HD_EPROTO), "malformed input");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reader_truncation_is_sticky),
      cmocka_unit_test(test_writer_cap),
      cmocka_unit_test(test_base64_rfc4648),
      cmocka_unit_test(test_hex),
      cmocka_unit_test(test_random_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
