/* RFC 4571 framing (src/proto/rfc4571): frame/deframe round trips, frames split
 * at every byte boundary of a stream, and the lengths that end a connection. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "proto/rfc4571.h"

static void test_frame_layout(void **st) {
  (void)st;
  uint8_t pkt[300], out[302];
  for (size_t i = 0; i < sizeof pkt; i++)
    pkt[i] = (uint8_t)i;
  assert_int_equal(hd_rfc4571_frame(pkt, 300, out, sizeof out), 302);
  assert_int_equal(out[0], 0x01); /* 300 = 0x012c, big-endian (RFC 4571 §2) */
  assert_int_equal(out[1], 0x2c);
  assert_memory_equal(out + 2, pkt, 300);
  /* caps */
  assert_int_equal(hd_rfc4571_frame(pkt, 300, out, 301), HD_ENOSPC);
  assert_int_equal(hd_rfc4571_frame(pkt, 0, out, sizeof out), HD_EINVAL);
  assert_int_equal(hd_rfc4571_frame(pkt, 65536, out, sizeof out), HD_EINVAL);
  /* framing in place: the packet already sits 2 bytes into the buffer */
  uint8_t inplace[10] = {0, 0, 'h', 'e', 'l', 'l', 'o'};
  assert_int_equal(hd_rfc4571_frame(inplace + 2, 5, inplace, sizeof inplace), 7);
  assert_memory_equal(inplace, "\x00\x05hello", 7);
}

static void test_next_complete_and_partial(void **st) {
  (void)st;
  const uint8_t *p = NULL;
  size_t n = 0;
  const uint8_t two[] = {0x00, 0x03, 'a', 'b', 'c', 0x00, 0x01, 'z', 0x00};
  assert_int_equal(hd_rfc4571_next(two, 0, 1500, &p, &n), 0);
  assert_int_equal(hd_rfc4571_next(two, 1, 1500, &p, &n), 0);
  assert_int_equal(hd_rfc4571_next(two, 4, 1500, &p, &n), 0); /* 2 of 3 bytes */
  assert_int_equal(hd_rfc4571_next(two, sizeof two, 1500, &p, &n), 5);
  assert_ptr_equal(p, two + 2);
  assert_int_equal(n, 3);
  assert_int_equal(hd_rfc4571_next(two + 5, sizeof two - 5, 1500, &p, &n), 3);
  assert_int_equal(n, 1);
  assert_int_equal(p[0], 'z');
  assert_int_equal(hd_rfc4571_next(two + 8, 1, 1500, &p, &n), 0); /* a lone length byte: wait */
}

static void test_next_bad_lengths(void **st) {
  (void)st;
  const uint8_t *p;
  size_t n;
  const uint8_t zero[] = {0x00, 0x00, 0x01};
  assert_int_equal(hd_rfc4571_next(zero, sizeof zero, 1500, &p, &n), HD_EPROTO);
  const uint8_t big[] = {0x05, 0xdd}; /* 1501 > max 1500: known from the header alone */
  assert_int_equal(hd_rfc4571_next(big, sizeof big, 1500, &p, &n), HD_EPROTO);
  const uint8_t ok[] = {0x05, 0xdc}; /* 1500 = max: wait for it */
  assert_int_equal(hd_rfc4571_next(ok, sizeof ok, 1500, &p, &n), 0);
  /* an HTTP request or a TLS ClientHello on the port reads as a huge length */
  assert_int_equal(hd_rfc4571_next((const uint8_t *)"GET / HTTP/1.1", 14, 1500, &p, &n), HD_EPROTO);
  const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00};
  assert_int_equal(hd_rfc4571_next(tls, sizeof tls, 1500, &p, &n), HD_EPROTO);
}

/* A stream of frames of many sizes, delivered in chunks of every size from 1
 * byte up, comes out as the same packets in the same order. */
static void test_stream_any_split(void **st) {
  (void)st;
  static uint8_t stream[65536];
  size_t slen = 0, sizes[40];
  for (int i = 0; i < 40; i++) {
    uint8_t pkt[1500];
    sizes[i] = 1 + (size_t)(i * 37 % 1500);
    memset(pkt, i + 1, sizes[i]);
    int rc = hd_rfc4571_frame(pkt, sizes[i], stream + slen, sizeof stream - slen);
    assert_int_equal(rc, (int)sizes[i] + 2);
    slen += (size_t)rc;
  }
  for (size_t chunk = 1; chunk <= 1600; chunk += chunk < 8 ? 1 : 97) {
    uint8_t buf[1502]; /* what a connection buffers: one frame at most */
    size_t have = 0, fed = 0;
    size_t got = 0;
    while (fed < slen) {
      size_t take = slen - fed < chunk ? slen - fed : chunk;
      if (take > sizeof buf - have) take = sizeof buf - have;
      memcpy(buf + have, stream + fed, take);
      have += take;
      fed += take;
      size_t off = 0;
      for (;;) {
        const uint8_t *p;
        size_t n;
        int rc = hd_rfc4571_next(buf + off, have - off, 1500, &p, &n);
        assert_true(rc >= 0);
        if (rc == 0) break;
        assert_true(got < 40);
        assert_int_equal(n, sizes[got]);
        assert_int_equal(p[0], got + 1);
        assert_int_equal(p[n - 1], got + 1);
        got++;
        off += (size_t)rc;
      }
      memmove(buf, buf + off, have - off);
      have -= off;
    }
    assert_int_equal(got, 40);
    assert_int_equal(have, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_layout),
      cmocka_unit_test(test_next_complete_and_partial),
      cmocka_unit_test(test_next_bad_lengths),
      cmocka_unit_test(test_stream_any_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
