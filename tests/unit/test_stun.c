/* Unit tests for src/proto/stun: RFC 5769 test vectors (§2.1-2.4), builder ->
 * parser round trips, integrity/fingerprint failures, malformed input. */
#include "hd_test.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "base/err.h"
#include "proto/stun.h"

/* RFC 5769 §2.1 Sample Request (password "VOkJxbRl1RmTxUk/WvJxBt"). */
static const uint8_t req_5769[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* §2.2 Sample IPv4 Response: 192.0.2.1:32853. */
static const uint8_t resp4_5769[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

/* §2.3 Sample IPv6 Response: [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
static const uint8_t resp6_5769[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

/* §2.4 Sample Request with Long-Term Authentication. */
static const uint8_t req_lt_5769[] = {
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29,
    0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83, 0xaa, 0xe3,
    0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00, 0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f,
    0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46,
    0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73, 0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70,
    0x6c, 0x65, 0x2e, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6,
    0x4a, 0x3e, 0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66};

static const char *pwd_5769 = "VOkJxbRl1RmTxUk/WvJxBt";

static int check_mi(const hd_stun_msg_t *m, const uint8_t *buf, size_t len, const char *pwd) {
  return hd_stun_check_integrity(m, buf, len, (const uint8_t *)pwd, strlen(pwd));
}

static void test_crc32(void **st) {
  (void)st;
  assert_int_equal(hd_stun_crc32((const uint8_t *)"123456789", 9), 0xCBF43926u);
  assert_int_equal(hd_stun_crc32(NULL, 0), 0);
}

static void test_is_stun(void **st) {
  (void)st;
  assert_true(hd_stun_is_stun(req_5769, sizeof req_5769));
  assert_true(hd_stun_is_stun(resp4_5769, sizeof resp4_5769));
  assert_false(hd_stun_is_stun(req_5769, 19));
  assert_false(hd_stun_is_stun(NULL, 100));
  uint8_t b[sizeof req_5769];
  memcpy(b, req_5769, sizeof b);
  b[0] = 0x16; /* DTLS handshake */
  assert_false(hd_stun_is_stun(b, sizeof b));
  memcpy(b, req_5769, sizeof b);
  b[0] = 0x80; /* RTP */
  assert_false(hd_stun_is_stun(b, sizeof b));
  memcpy(b, req_5769, sizeof b);
  b[5] ^= 1; /* cookie */
  assert_false(hd_stun_is_stun(b, sizeof b));
  memcpy(b, req_5769, sizeof b);
  b[3] = 0x57; /* length not a multiple of 4 */
  assert_false(hd_stun_is_stun(b, sizeof b));
}

static void test_rfc5769_request(void **st) {
  (void)st;
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, req_5769, sizeof req_5769), 0);
  assert_int_equal(m.type, HD_STUN_BINDING_REQUEST);
  assert_int_equal(m.cls, HD_STUN_CLASS_REQUEST);
  assert_int_equal(m.method, HD_STUN_METHOD_BINDING);
  assert_int_equal(m.len, sizeof req_5769);
  assert_memory_equal(m.txid, req_5769 + 8, 12);
  assert_true(m.present & HD_STUN_HAS_SOFTWARE);
  assert_int_equal(m.software_len, 16);
  assert_memory_equal(m.software, "STUN test client", 16);
  assert_true(m.present & HD_STUN_HAS_PRIORITY);
  assert_int_equal(m.priority, 0x6e0001ffu);
  assert_true(m.present & HD_STUN_HAS_ICE_CONTROLLED);
  assert_false(m.present & HD_STUN_HAS_ICE_CONTROLLING);
  assert_true(m.ice_controlled == 0x932ff9b151263b36ull);
  assert_int_equal(m.username_len, 9);
  assert_memory_equal(m.username, "evtj:h6vY", 9);
  assert_int_equal(m.integrity_off, 76);
  assert_true(m.present & HD_STUN_HAS_FINGERPRINT);
  assert_int_equal(m.fingerprint_off, 100);
  assert_true(m.fingerprint_ok);
  assert_int_equal(hd_stun_check_fingerprint(&m), 0);
  assert_int_equal(m.n_unknown, 0);
  assert_int_equal(check_mi(&m, req_5769, sizeof req_5769, pwd_5769), 0);
  assert_int_equal(check_mi(&m, req_5769, sizeof req_5769, "VOkJxbRl1RmTxUk/WvJxBu"), HD_EAUTH);

  const char *l, *r;
  size_t ll, rl;
  assert_int_equal(hd_stun_username_split(&m, &l, &ll, &r, &rl), 0);
  assert_int_equal(ll, 4);
  assert_memory_equal(l, "evtj", 4);
  assert_int_equal(rl, 4);
  assert_memory_equal(r, "h6vY", 4);
}

static void test_rfc5769_ipv4_response(void **st) {
  (void)st;
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, resp4_5769, sizeof resp4_5769), 0);
  assert_int_equal(m.type, HD_STUN_BINDING_SUCCESS);
  assert_int_equal(m.cls, HD_STUN_CLASS_SUCCESS);
  assert_int_equal(m.method, HD_STUN_METHOD_BINDING);
  assert_memory_equal(m.software, "test vector", 11);
  assert_true(m.present & HD_STUN_HAS_XOR_MAPPED_ADDRESS);
  const struct sockaddr_in *sin = (const struct sockaddr_in *)&m.xor_mapped;
  assert_int_equal(m.xor_mapped_len, sizeof *sin);
  assert_int_equal(sin->sin_family, AF_INET);
  assert_int_equal(ntohs(sin->sin_port), 32853);
  char s[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET, &sin->sin_addr, s, sizeof s);
  assert_string_equal(s, "192.0.2.1");
  assert_true(m.fingerprint_ok);
  assert_int_equal(check_mi(&m, resp4_5769, sizeof resp4_5769, pwd_5769), 0);
  assert_int_equal(hd_stun_username_split(&m, NULL, NULL, NULL, NULL), HD_ENOTFOUND);
}

static void test_rfc5769_ipv6_response(void **st) {
  (void)st;
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, resp6_5769, sizeof resp6_5769), 0);
  const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&m.xor_mapped;
  assert_int_equal(m.xor_mapped_len, sizeof *sin6);
  assert_int_equal(sin6->sin6_family, AF_INET6);
  assert_int_equal(ntohs(sin6->sin6_port), 32853);
  char s[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, &sin6->sin6_addr, s, sizeof s);
  assert_string_equal(s, "2001:db8:1234:5678:11:2233:4455:6677");
  assert_true(m.fingerprint_ok);
  assert_int_equal(check_mi(&m, resp6_5769, sizeof resp6_5769, pwd_5769), 0);
}

static void test_rfc5769_long_term(void **st) {
  (void)st;
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, req_lt_5769, sizeof req_lt_5769), 0);
  /* USERNAME is U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9 in UTF-8. */
  static const char user[] = "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
  assert_int_equal(m.username_len, 18);
  assert_memory_equal(m.username, user, 18);
  assert_int_equal(m.nonce_len, 28);
  assert_memory_equal(m.nonce, "f//499k954d6OL34oL9FSTvy64sA", 28);
  assert_int_equal(m.realm_len, 11);
  assert_memory_equal(m.realm, "example.org", 11);
  assert_false(m.present & HD_STUN_HAS_FINGERPRINT);
  assert_int_equal(hd_stun_check_fingerprint(&m), HD_EAUTH);
  /* Password "The<U+00AD>M<U+00AA>tr<U+2168>" after SASLprep is "TheMatrIX". */
  uint8_t key[16];
  assert_int_equal(hd_stun_long_term_key(user, 18, "example.org", 11, "TheMatrIX", 9, key), 0);
  assert_int_equal(hd_stun_check_integrity(&m, req_lt_5769, sizeof req_lt_5769, key, 16), 0);
  key[0] ^= 1;
  assert_int_equal(hd_stun_check_integrity(&m, req_lt_5769, sizeof req_lt_5769, key, 16), HD_EAUTH);
}

static void test_bad_integrity_and_fingerprint(void **st) {
  (void)st;
  uint8_t b[sizeof req_5769];
  hd_stun_msg_t m;
  /* Flip a bit in PRIORITY: both MI and FINGERPRINT must catch it. */
  memcpy(b, req_5769, sizeof b);
  b[44] ^= 0x01;
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), 0);
  assert_false(m.fingerprint_ok);
  assert_int_equal(hd_stun_check_fingerprint(&m), HD_EAUTH);
  assert_int_equal(check_mi(&m, b, sizeof b, pwd_5769), HD_EAUTH);
  /* Flip a bit in the MAC itself. */
  memcpy(b, req_5769, sizeof b);
  b[90] ^= 0x80;
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), 0);
  assert_int_equal(check_mi(&m, b, sizeof b, pwd_5769), HD_EAUTH);
  /* No MESSAGE-INTEGRITY at all. */
  hd_stun_builder_t bl;
  uint8_t out[64];
  assert_int_equal(hd_stun_build_start(&bl, out, sizeof out, HD_STUN_BINDING_REQUEST, NULL), 0);
  int n = hd_stun_build_finish(&bl, NULL, 0, 0);
  assert_int_equal(n, 20);
  assert_int_equal(hd_stun_parse(&m, out, (size_t)n), 0);
  assert_int_equal(check_mi(&m, out, (size_t)n, "x"), HD_EAUTH);
  /* Buffer that m was not parsed from (too short). */
  assert_int_equal(hd_stun_parse(&m, req_5769, sizeof req_5769), 0);
  assert_int_equal(check_mi(&m, req_5769, 90, pwd_5769), HD_EINVAL);
}

static void test_truncated_and_garbage(void **st) {
  (void)st;
  hd_stun_msg_t m;
  /* Every proper prefix of a valid message is rejected. */
  for (size_t i = 0; i < sizeof req_5769; i++)
    assert_true(hd_stun_parse(&m, req_5769, i) < 0);
  assert_int_equal(hd_stun_parse(&m, req_5769, 10), HD_ETRUNC);
  assert_int_equal(hd_stun_parse(&m, req_5769, 50), HD_ETRUNC);
  /* Trailing bytes after the message are ignored; m.len tells the size. */
  uint8_t big[sizeof req_5769 + 8];
  memcpy(big, req_5769, sizeof req_5769);
  memset(big + sizeof req_5769, 0xAA, 8);
  assert_int_equal(hd_stun_parse(&m, big, sizeof big), 0);
  assert_int_equal(m.len, sizeof req_5769);

  uint8_t b[sizeof req_5769];
  /* Attribute length running past the message. */
  memcpy(b, req_5769, sizeof b);
  b[22] = 0x01; /* SOFTWARE length 0x110 */
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), HD_EPROTO);
  /* Wrong fixed-size attribute lengths. */
  memcpy(b, req_5769, sizeof b);
  b[43] = 0x00; /* PRIORITY length 0 */
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), HD_EPROTO);
  /* Header sanity: class/method high bits, cookie, length % 4. */
  memcpy(b, req_5769, sizeof b);
  b[0] = 0xC0;
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), HD_EPROTO);
  memcpy(b, req_5769, sizeof b);
  b[4] = 0;
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), HD_EPROTO);
  memcpy(b, req_5769, sizeof b);
  b[3] = 0x59;
  assert_int_equal(hd_stun_parse(&m, b, sizeof b), HD_EPROTO);

  /* Pseudo-random garbage with a valid header never crashes and never
   * reports success with inconsistent offsets. */
  uint32_t x = 12345;
  for (int it = 0; it < 2000; it++) {
    uint8_t g[96];
    for (size_t i = 0; i < sizeof g; i++) {
      x = x * 1103515245u + 12345u;
      g[i] = (uint8_t)(x >> 16);
    }
    g[0] &= 0x3F;
    hd_put_u16(g + 2, (uint16_t)(4 * (x % 20)));
    hd_put_u32(g + 4, HD_STUN_MAGIC_COOKIE);
    if (hd_stun_parse(&m, g, sizeof g) == 0) {
      assert_true(m.len <= sizeof g);
      if (m.present & HD_STUN_HAS_MESSAGE_INTEGRITY) assert_true(m.integrity_off + 24 <= m.len);
      (void)hd_stun_check_integrity(&m, g, sizeof g, (const uint8_t *)"k", 1);
    }
  }
}

static void test_attr_after_fingerprint(void **st) {
  (void)st;
  uint8_t buf[128];
  hd_stun_builder_t b;
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL), 0);
  assert_int_equal(hd_stun_add_fingerprint(&b), 0);
  assert_int_equal(hd_stun_add_priority(&b, 7), 0);
  int n = hd_stun_build_finish(&b, NULL, 0, 0);
  assert_true(n > 0);
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), HD_EPROTO);
}

static void test_roundtrip(void **st) {
  (void)st;
  uint8_t buf[512];
  const uint8_t txid[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  struct sockaddr_in6 a6;
  memset(&a6, 0, sizeof a6);
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(5004);
  inet_pton(AF_INET6, "2001:db8::42", &a6.sin6_addr);
  struct sockaddr_in a4;
  memset(&a4, 0, sizeof a4);
  a4.sin_family = AF_INET;
  a4.sin_port = htons(65000);
  inet_pton(AF_INET, "203.0.113.7", &a4.sin_addr);
  const uint16_t unk[2] = {0x0031, 0x0077};

  hd_stun_builder_t b;
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_ERROR, txid), 0);
  assert_int_equal(hd_stun_add_username(&b, "srv1:cli2", 9), 0);
  assert_int_equal(hd_stun_add_priority(&b, 0x7e7f00ffu), 0);
  assert_int_equal(hd_stun_add_use_candidate(&b), 0);
  assert_int_equal(hd_stun_add_ice_controlling(&b, 0x0102030405060708ull), 0);
  assert_int_equal(hd_stun_add_ice_controlled(&b, 0xfffffffffffffffeull), 0);
  assert_int_equal(hd_stun_add_xor_mapped_address(&b, (struct sockaddr *)&a6, sizeof a6), 0);
  assert_int_equal(hd_stun_add_mapped_address(&b, (struct sockaddr *)&a4, sizeof a4), 0);
  assert_int_equal(hd_stun_add_error_code(&b, 487, NULL), 0);
  assert_int_equal(hd_stun_add_unknown_attributes(&b, unk, 2), 0);
  assert_int_equal(hd_stun_add_software(&b, "hudong"), 0);
  assert_int_equal(hd_stun_add_attr(&b, 0xC057, "\x00\x01\x00\x0a", 4), 0); /* GOOG-NETWORK-INFO */
  int n = hd_stun_build_finish(&b, (const uint8_t *)"secretpass", 10, 1);
  assert_true(n > 0);
  assert_int_equal(n % 4, 0);
  assert_true(hd_stun_is_stun(buf, (size_t)n));

  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(m.len, (size_t)n);
  assert_int_equal(m.type, HD_STUN_BINDING_ERROR);
  assert_int_equal(m.cls, HD_STUN_CLASS_ERROR);
  assert_int_equal(m.method, HD_STUN_METHOD_BINDING);
  assert_memory_equal(m.txid, txid, 12);
  assert_memory_equal(m.username, "srv1:cli2", 9);
  assert_int_equal(m.priority, 0x7e7f00ffu);
  assert_true(m.present & HD_STUN_HAS_USE_CANDIDATE);
  assert_true(m.ice_controlling == 0x0102030405060708ull);
  assert_true(m.ice_controlled == 0xfffffffffffffffeull);
  assert_int_equal(m.error_code, 487);
  assert_int_equal(m.error_reason_len, 13);
  assert_memory_equal(m.error_reason, "Role Conflict", 13);
  assert_int_equal(m.xor_mapped_len, sizeof a6);
  const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)&m.xor_mapped;
  assert_int_equal(p6->sin6_port, a6.sin6_port);
  assert_memory_equal(&p6->sin6_addr, &a6.sin6_addr, 16);
  const struct sockaddr_in *p4 = (const struct sockaddr_in *)&m.mapped;
  assert_int_equal(m.mapped_len, sizeof a4);
  assert_int_equal(p4->sin_port, a4.sin_port);
  assert_int_equal(p4->sin_addr.s_addr, a4.sin_addr.s_addr);
  assert_memory_equal(m.software, "hudong", 6);
  assert_int_equal(m.n_unknown, 0); /* 0xC057 is comprehension-optional */
  assert_true(m.fingerprint_ok);
  assert_int_equal(check_mi(&m, buf, (size_t)n, "secretpass"), 0);
  assert_int_equal(check_mi(&m, buf, (size_t)n, "secretpasS"), HD_EAUTH);

  /* Random txid when NULL. */
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL), 0);
  n = hd_stun_build_finish(&b, NULL, 0, 1);
  assert_int_equal(n, 28);
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), 0);
  assert_true(m.fingerprint_ok);
}

static void test_unknown_attributes(void **st) {
  (void)st;
  uint8_t buf[256];
  hd_stun_builder_t b;
  hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_attr(&b, 0x0031, "abc", 3);
  hd_stun_add_attr(&b, 0x0031, "abc", 3); /* duplicate listed once */
  hd_stun_add_attr(&b, 0x7001, NULL, 0);
  hd_stun_add_attr(&b, 0x8001, "x", 1); /* optional: not listed */
  hd_stun_add_integrity(&b, (const uint8_t *)"k", 1);
  hd_stun_add_attr(&b, 0x0032, NULL, 0); /* after MI: ignored */
  int n = hd_stun_build_finish(&b, NULL, 0, 1);
  assert_true(n > 0);
  hd_stun_msg_t m;
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(m.n_unknown, 2);
  assert_int_equal(m.unknown[0], 0x0031);
  assert_int_equal(m.unknown[1], 0x7001);
  /* MI was computed before 0x0032 was appended: still verifies (§14.5). */
  assert_int_equal(check_mi(&m, buf, (size_t)n, "k"), 0);
  assert_true(m.fingerprint_ok);
}

static void test_builder_caps(void **st) {
  (void)st;
  uint8_t buf[40];
  hd_stun_builder_t b;
  assert_int_equal(hd_stun_build_start(&b, buf, 19, HD_STUN_BINDING_REQUEST, NULL), HD_ENOSPC);
  assert_int_equal(hd_stun_build_finish(&b, NULL, 0, 0), HD_ENOSPC);
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, 0xC001, NULL), HD_EINVAL);
  /* 20 header + 8 priority + 8 fingerprint = 36 fits; integrity (24) does not. */
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL), 0);
  assert_int_equal(hd_stun_add_priority(&b, 1), 0);
  assert_int_equal(hd_stun_build_finish(&b, (const uint8_t *)"k", 1, 1), HD_ENOSPC);
  /* Sticky: later calls keep failing. */
  assert_int_equal(hd_stun_add_use_candidate(&b), HD_ENOSPC);
  assert_int_equal(hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL), 0);
  assert_int_equal(hd_stun_add_priority(&b, 1), 0);
  assert_int_equal(hd_stun_build_finish(&b, NULL, 0, 1), 36);
  /* Bad arguments. */
  uint8_t big[2048];
  char longname[600];
  memset(longname, 'a', sizeof longname);
  assert_int_equal(hd_stun_build_start(&b, big, sizeof big, HD_STUN_BINDING_REQUEST, NULL), 0);
  assert_int_equal(hd_stun_add_username(&b, longname, sizeof longname), HD_EINVAL);
  assert_int_equal(hd_stun_build_start(&b, big, sizeof big, HD_STUN_BINDING_REQUEST, NULL), 0);
  assert_int_equal(hd_stun_add_error_code(&b, 200, NULL), HD_EINVAL);
  assert_int_equal(hd_stun_build_start(&b, big, sizeof big, HD_STUN_BINDING_REQUEST, NULL), 0);
  struct sockaddr sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_family = AF_UNIX;
  assert_int_equal(hd_stun_add_xor_mapped_address(&b, &sa, sizeof sa), HD_EINVAL);
}

static void test_username_split_edge(void **st) {
  (void)st;
  uint8_t buf[128];
  hd_stun_builder_t b;
  hd_stun_msg_t m;
  const char *l, *r;
  size_t ll, rl;
  hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_username(&b, "nocolon", 7);
  int n = hd_stun_build_finish(&b, NULL, 0, 0);
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(hd_stun_username_split(&m, &l, &ll, &r, &rl), HD_EPROTO);
  hd_stun_build_start(&b, buf, sizeof buf, HD_STUN_BINDING_REQUEST, NULL);
  hd_stun_add_username(&b, "ab:", 3);
  n = hd_stun_build_finish(&b, NULL, 0, 0);
  assert_int_equal(hd_stun_parse(&m, buf, (size_t)n), 0);
  assert_int_equal(hd_stun_username_split(&m, &l, &ll, &r, &rl), 0);
  assert_int_equal(ll, 2);
  assert_int_equal(rl, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc32),
      cmocka_unit_test(test_is_stun),
      cmocka_unit_test(test_rfc5769_request),
      cmocka_unit_test(test_rfc5769_ipv4_response),
      cmocka_unit_test(test_rfc5769_ipv6_response),
      cmocka_unit_test(test_rfc5769_long_term),
      cmocka_unit_test(test_bad_integrity_and_fingerprint),
      cmocka_unit_test(test_truncated_and_garbage),
      cmocka_unit_test(test_attr_after_fingerprint),
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_unknown_attributes),
      cmocka_unit_test(test_builder_caps),
      cmocka_unit_test(test_username_split_edge),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
