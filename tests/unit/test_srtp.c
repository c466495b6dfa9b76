/* Unit tests for proto/srtp: libsrtp's reference vectors (AES-CM/HMAC-SHA1-80 for
 * SRTP and SRTCP, AES-128-GCM for SRTP), round trips keyed from a real DTLS-SRTP
 * handshake (proto/dtls) and from fixed keys, and the failure paths. */
#include "hd_test.h"

#include "base/err.h"
#include "proto/dtls.h"
#include "proto/srtp.h"

/* libsrtp test/srtp_driver.c srtp_validate(): master key||salt for the default
 * AES_CM_128_HMAC_SHA1_80 policy, SSRC 0xcafebabe, seq 0x1234. The session keys
 * come from the RFC 3711 §4.3 KDF, so this also pins the key derivation. */
static const uint8_t kat_cm_key[30] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f,
                                       0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39, 0x0e, 0xc6, 0x75, 0xad,
                                       0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};
static const uint8_t kat_rtp_plain[28] = {0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe,
                                          0xba, 0xbe, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
                                          0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab};
static const uint8_t kat_cm_srtp[38] = {0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe,
                                        0xba, 0xbe, 0x4e, 0x55, 0xdc, 0x4c, 0xe7, 0x99, 0x78, 0xd8,
                                        0x8c, 0xa4, 0xd2, 0x15, 0x94, 0x9d, 0x24, 0x02, 0xb7, 0x8d,
                                        0x6a, 0xcc, 0x99, 0xea, 0x17, 0x9b, 0x8d, 0xbb};
static const uint8_t kat_rtcp_plain[24] = {0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe,
                                           0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
                                           0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab};
static const uint8_t kat_cm_srtcp[38] = {0x81, 0xc8, 0x00, 0x0b, 0xca, 0xfe, 0xba, 0xbe, 0x71, 0x28,
                                         0x03, 0x5b, 0xe4, 0x87, 0xb9, 0xbd, 0xbe, 0xf8, 0x90, 0x41,
                                         0xf9, 0x77, 0xa5, 0xa8, 0x80, 0x00, 0x00, 0x01, 0x99, 0x3e,
                                         0x08, 0xcd, 0x54, 0xd6, 0xc1, 0x23, 0x07, 0x98};
/* libsrtp srtp_validate_gcm(): AEAD_AES_128_GCM (RFC 7714), same RTP packet. */
static const uint8_t kat_gcm_key[28] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                                        0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xa0, 0xa1, 0xa2, 0xa3,
                                        0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab};
static const uint8_t kat_gcm_srtp[44] = {0x80, 0x0f, 0x12, 0x34, 0xde, 0xca, 0xfb, 0xad, 0xca, 0xfe, 0xba,
                                         0xbe, 0xc5, 0x00, 0x2e, 0xde, 0x04, 0xcf, 0xdd, 0x2e, 0xb9, 0x11,
                                         0x59, 0xe0, 0x88, 0x0a, 0xa0, 0x6e, 0xd2, 0x97, 0x68, 0x26, 0xf7,
                                         0x96, 0xb2, 0x01, 0xdf, 0x31, 0x31, 0xa1, 0x27, 0xe8, 0xa3, 0x92};

/* A 12-byte RTP header + payload; returns the length. */
static size_t make_rtp(uint8_t *p, uint16_t seq, uint32_t ssrc, size_t payload) {
  p[0] = 0x80;
  p[1] = 96;
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  uint32_t ts = (uint32_t)seq * 3000u;
  p[4] = (uint8_t)(ts >> 24);
  p[5] = (uint8_t)(ts >> 16);
  p[6] = (uint8_t)(ts >> 8);
  p[7] = (uint8_t)ts;
  p[8] = (uint8_t)(ssrc >> 24);
  p[9] = (uint8_t)(ssrc >> 16);
  p[10] = (uint8_t)(ssrc >> 8);
  p[11] = (uint8_t)ssrc;
  for (size_t i = 0; i < payload; i++)
    p[12 + i] = (uint8_t)(seq + i);
  return 12 + payload;
}

/* RTCP receiver report with one report block (RFC 3550 §6.4.2). */
static size_t make_rtcp(uint8_t *p, uint32_t ssrc) {
  memset(p, 0, 32);
  p[0] = 0x81;
  p[1] = 201;
  p[3] = 7; /* length in words - 1 */
  p[4] = (uint8_t)(ssrc >> 24);
  p[5] = (uint8_t)(ssrc >> 16);
  p[6] = (uint8_t)(ssrc >> 8);
  p[7] = (uint8_t)ssrc;
  for (int i = 8; i < 32; i++)
    p[i] = (uint8_t)(i * 7);
  return 32;
}

static void test_kat_cm_rtp_and_rtcp(void **st) {
  (void)st;
  hd_srtp_t *s;
  assert_int_equal(hd_srtp_new(&s, HD_SRTP_AES128_CM_SHA1_80, kat_cm_key, kat_cm_key, 30), 0);
  uint8_t buf[64];
  memcpy(buf, kat_rtp_plain, 28);
  assert_int_equal(hd_srtp_protect(s, buf, 28, sizeof buf), 38);
  assert_memory_equal(buf, kat_cm_srtp, 38);
  assert_int_equal(hd_srtp_unprotect(s, buf, 38), 28);
  assert_memory_equal(buf, kat_rtp_plain, 28);

  memcpy(buf, kat_rtcp_plain, 24);
  assert_int_equal(hd_srtp_protect_rtcp(s, buf, 24, sizeof buf), 38);
  assert_memory_equal(buf, kat_cm_srtcp, 38);
  assert_int_equal(hd_srtp_unprotect_rtcp(s, buf, 38), 24);
  assert_memory_equal(buf, kat_rtcp_plain, 24);
  hd_srtp_free(s);
}

static void test_kat_gcm_rtp(void **st) {
  (void)st;
  hd_srtp_t *s;
  assert_int_equal(hd_srtp_new(&s, HD_SRTP_AEAD_AES_128_GCM, kat_gcm_key, kat_gcm_key, 28), 0);
  uint8_t buf[64];
  memcpy(buf, kat_rtp_plain, 28);
  assert_int_equal(hd_srtp_protect(s, buf, 28, sizeof buf), 44);
  assert_memory_equal(buf, kat_gcm_srtp, 44);
  assert_int_equal(hd_srtp_unprotect(s, buf, 44), 28);
  assert_memory_equal(buf, kat_rtp_plain, 28);

  /* GCM SRTCP: round trip (index + 16-byte tag appended). */
  uint8_t r[64];
  size_t n = make_rtcp(r, 0x11223344);
  uint8_t orig[32];
  memcpy(orig, r, n);
  int m = hd_srtp_protect_rtcp(s, r, n, sizeof r);
  assert_int_equal(m, (int)n + 4 + 16);
  assert_memory_not_equal(r + 8, orig + 8, n - 8); /* encrypted after the SSRC */
  assert_int_equal(hd_srtp_unprotect_rtcp(s, r, (size_t)m), (int)n);
  assert_memory_equal(r, orig, n);
  hd_srtp_free(s);
}

/* Runs a DTLS handshake and returns the keys of both ends. */
static void dtls_keys(const char *server_profiles, hd_dtls_srtp_keys_t *kc, hd_dtls_srtp_keys_t *ks) {
  hd_dtls_cert_t *cc, *cs;
  assert_int_equal(hd_dtls_cert_generate(&cc), 0);
  assert_int_equal(hd_dtls_cert_generate(&cs), 0);
  hd_dtls_t *c, *s;
  assert_int_equal(hd_dtls_new(&s, cs, 1, hd_dtls_cert_fingerprint(cc), 0), 0);
  assert_int_equal(hd_dtls_new(&c, cc, 0, hd_dtls_cert_fingerprint(cs), 0), 0);
  if (server_profiles) assert_int_equal(hd_dtls_set_srtp_profiles(s, server_profiles), 0);
  uint8_t buf[HD_DTLS_MAX_DATAGRAM];
  int n, moved = 1;
  for (int guard = 0; moved && guard < 50; guard++) {
    moved = 0;
    while ((n = hd_dtls_poll(c, buf, sizeof buf)) > 0) {
      assert_int_equal(hd_dtls_feed(s, buf, (size_t)n, 0), 0);
      moved = 1;
    }
    while ((n = hd_dtls_poll(s, buf, sizeof buf)) > 0) {
      assert_int_equal(hd_dtls_feed(c, buf, (size_t)n, 0), 0);
      moved = 1;
    }
  }
  assert_int_equal(hd_dtls_state(c), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_state(s), HD_DTLS_CONNECTED);
  assert_int_equal(hd_dtls_srtp_keys(c, kc), 0);
  assert_int_equal(hd_dtls_srtp_keys(s, ks), 0);
  hd_dtls_free(c);
  hd_dtls_free(s);
  hd_dtls_cert_free(cc);
  hd_dtls_cert_free(cs);
}

/* Protect on a, unprotect on b, many packets, two SSRCs; RTCP too. */
static void round_trip(hd_srtp_t *a, hd_srtp_t *b, size_t tag) {
  uint8_t pkt[1500], orig[1500];
  for (int i = 0; i < 300; i++) {
    uint32_t ssrc = (i & 1) ? 0x01020304u : 0xa0b0c0d0u;
    size_t n = make_rtp(pkt, (uint16_t)(65500 + i), ssrc, 100 + (size_t)i); /* wraps seq */
    memcpy(orig, pkt, n);
    int m = hd_srtp_protect(a, pkt, n, sizeof pkt);
    assert_int_equal(m, (int)(n + tag));
    assert_memory_equal(pkt, orig, 12); /* header stays clear */
    assert_memory_not_equal(pkt + 12, orig + 12, n - 12);
    assert_int_equal(hd_srtp_unprotect(b, pkt, (size_t)m), (int)n);
    assert_memory_equal(pkt, orig, n);
  }
  for (int i = 0; i < 5; i++) {
    size_t n = make_rtcp(pkt, 0x55667788u);
    memcpy(orig, pkt, n);
    int m = hd_srtp_protect_rtcp(a, pkt, n, sizeof pkt);
    assert_int_equal(m, (int)(n + 4 + tag));
    assert_int_equal(hd_srtp_unprotect_rtcp(b, pkt, (size_t)m), (int)n);
    assert_memory_equal(pkt, orig, n);
  }
}

static void check_dtls_keyed(const char *server_profiles, int want_profile, size_t tag) {
  hd_dtls_srtp_keys_t kc, ks;
  dtls_keys(server_profiles, &kc, &ks);
  assert_int_equal(kc.profile, want_profile);
  hd_srtp_t *c, *s;
  assert_int_equal(hd_srtp_new(&c, kc.profile, kc.local_key, kc.remote_key, kc.key_len), 0);
  assert_int_equal(hd_srtp_new(&s, ks.profile, ks.local_key, ks.remote_key, ks.key_len), 0);
  round_trip(c, s, tag);
  round_trip(s, c, tag);
  /* Each direction has its own key: a packet a protects is not accepted by a. */
  uint8_t pkt[200];
  size_t n = make_rtp(pkt, 7, 0x99, 50);
  int m = hd_srtp_protect(c, pkt, n, sizeof pkt);
  assert_true(m > 0);
  assert_int_equal(hd_srtp_unprotect(c, pkt, (size_t)m), HD_EAUTH);
  hd_srtp_free(c);
  hd_srtp_free(s);
}

static void test_dtls_keyed_gcm(void **st) {
  (void)st;
  check_dtls_keyed(NULL, HD_SRTP_AEAD_AES_128_GCM, 16);
}

static void test_dtls_keyed_cm(void **st) {
  (void)st;
  check_dtls_keyed("SRTP_AES128_CM_SHA1_80", HD_SRTP_AES128_CM_SHA1_80, 10);
}

static void pair_fixed(int profile, hd_srtp_t **a, hd_srtp_t **b) {
  uint8_t k1[30], k2[30];
  for (int i = 0; i < 30; i++) {
    k1[i] = (uint8_t)(i + 1);
    k2[i] = (uint8_t)(0xf0 - i);
  }
  size_t kl = (size_t)hd_srtp_key_len(profile);
  assert_int_equal(hd_srtp_new(a, profile, k1, k2, kl), 0);
  assert_int_equal(hd_srtp_new(b, profile, k2, k1, kl), 0);
}

static void check_tamper_and_replay(int profile) {
  hd_srtp_t *a, *b;
  pair_fixed(profile, &a, &b);
  uint8_t pkt[300], copy[300];
  size_t n = make_rtp(pkt, 1000, 0x1234, 160);
  int m = hd_srtp_protect(a, pkt, n, sizeof pkt);
  assert_true(m > (int)n);
  memcpy(copy, pkt, (size_t)m);

  /* A flipped bit in payload, header or tag fails authentication. */
  const size_t spots[] = {20, 3, (size_t)m - 1};
  for (size_t i = 0; i < 3; i++) {
    memcpy(pkt, copy, (size_t)m);
    pkt[spots[i]] ^= 0x01;
    assert_int_equal(hd_srtp_unprotect(b, pkt, (size_t)m), HD_EAUTH);
  }
  /* The genuine packet still goes through (failed ones did not touch the window). */
  memcpy(pkt, copy, (size_t)m);
  assert_int_equal(hd_srtp_unprotect(b, pkt, (size_t)m), (int)n);
  /* Replay of the same packet. */
  memcpy(pkt, copy, (size_t)m);
  assert_int_equal(hd_srtp_unprotect(b, pkt, (size_t)m), HD_EREPLAY);

  /* Same for SRTCP. */
  uint8_t r[100], rc[100];
  size_t rn = make_rtcp(r, 0x1234);
  int rm = hd_srtp_protect_rtcp(a, r, rn, sizeof r);
  assert_true(rm > (int)rn);
  memcpy(rc, r, (size_t)rm);
  r[10] ^= 0x80;
  assert_int_equal(hd_srtp_unprotect_rtcp(b, r, (size_t)rm), HD_EAUTH);
  memcpy(r, rc, (size_t)rm);
  assert_int_equal(hd_srtp_unprotect_rtcp(b, r, (size_t)rm), (int)rn);
  memcpy(r, rc, (size_t)rm);
  assert_int_equal(hd_srtp_unprotect_rtcp(b, r, (size_t)rm), HD_EREPLAY);
  hd_srtp_free(a);
  hd_srtp_free(b);
}

static void test_tamper_and_replay_cm(void **st) {
  (void)st;
  check_tamper_and_replay(HD_SRTP_AES128_CM_SHA1_80);
}

static void test_tamper_and_replay_gcm(void **st) {
  (void)st;
  check_tamper_and_replay(HD_SRTP_AEAD_AES_128_GCM);
}

static void test_replay_window_is_1024(void **st) {
  (void)st;
  hd_srtp_t *a, *b;
  pair_fixed(HD_SRTP_AEAD_AES_128_GCM, &a, &b);
  /* Protect seq 0..1199, keep three of them, deliver newest first. */
  static uint8_t keep[3][100];
  int klen[3] = {0};
  const uint16_t want[3] = {1199, 200, 100};
  uint8_t pkt[100];
  for (uint16_t seq = 0; seq < 1200; seq++) {
    size_t n = make_rtp(pkt, seq, 42, 20);
    int m = hd_srtp_protect(a, pkt, n, sizeof pkt);
    assert_true(m > 0);
    for (int i = 0; i < 3; i++)
      if (seq == want[i]) {
        memcpy(keep[i], pkt, (size_t)m);
        klen[i] = m;
      }
  }
  assert_int_equal(hd_srtp_unprotect(b, keep[0], (size_t)klen[0]), 32);
  /* 999 behind the newest: inside a 1024 window (libsrtp's default 128 would refuse). */
  assert_int_equal(hd_srtp_unprotect(b, keep[1], (size_t)klen[1]), 32);
  /* 1099 behind: too old. */
  assert_int_equal(hd_srtp_unprotect(b, keep[2], (size_t)klen[2]), HD_EREPLAY);
  hd_srtp_free(a);
  hd_srtp_free(b);
}

static void test_bounds_and_bad_input(void **st) {
  (void)st;
  hd_srtp_t *a, *b;
  pair_fixed(HD_SRTP_AES128_CM_SHA1_80, &a, &b);
  uint8_t buf[64];
  memset(buf, 0xee, sizeof buf);
  size_t n = make_rtp(buf, 1, 2, 20); /* 32 bytes */
  /* cap too small for the tag: nothing written, nothing past cap. */
  assert_int_equal(hd_srtp_protect(a, buf, n, n + 9), HD_ENOSPC);
  assert_int_equal(buf[32], 0xee);
  assert_int_equal(hd_srtp_protect(a, buf, n, n - 1), HD_EINVAL);
  assert_int_equal(hd_srtp_protect(a, buf, n, n + 10), (int)n + 10);
  assert_int_equal(buf[42], 0xee);
  uint8_t r[40];
  size_t rn = make_rtcp(r, 5);
  assert_int_equal(hd_srtp_protect_rtcp(a, r, rn, rn + 13), HD_ENOSPC);

  /* Shorter than a header, wrong version, CSRC count or extension past the end. */
  uint8_t tiny[11] = {0x80};
  assert_int_equal(hd_srtp_protect(a, tiny, sizeof tiny, sizeof tiny + 32), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect(b, tiny, sizeof tiny), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect(b, tiny, 0), HD_EPROTO);
  assert_int_equal(hd_srtp_protect_rtcp(a, tiny, 7, 64), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect_rtcp(b, tiny, sizeof tiny), HD_EPROTO);
  uint8_t bad[64];
  make_rtp(bad, 1, 2, 20);
  bad[0] = 0x40; /* version 1 */
  assert_int_equal(hd_srtp_protect(a, bad, 32, sizeof bad), HD_EPROTO);
  make_rtp(bad, 1, 2, 20);
  bad[0] = 0x8f; /* 15 CSRCs = 72 bytes of header in a 32-byte packet */
  assert_int_equal(hd_srtp_protect(a, bad, 32, sizeof bad), HD_EPROTO);
  assert_int_equal(hd_srtp_unprotect(b, bad, 42), HD_EPROTO);
  make_rtp(bad, 1, 2, 20);
  bad[0] = 0x90; /* extension, length 0x4040 words */
  bad[12] = 0xbe;
  bad[13] = 0xde;
  bad[14] = 0x40;
  bad[15] = 0x40;
  assert_int_equal(hd_srtp_protect(a, bad, 32, sizeof bad), HD_EPROTO);
  /* Random bytes that look like RTP: authentication fails, no crash. */
  uint8_t junk[60];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (uint8_t)(i * 13 + 7);
  junk[0] = 0x80;
  assert_int_equal(hd_srtp_unprotect(b, junk, sizeof junk), HD_EAUTH);
  junk[0] = 0x81;
  junk[sizeof junk - 14] |= 0x80; /* SRTCP E flag set: tag check fails */
  assert_int_equal(hd_srtp_unprotect_rtcp(b, junk, sizeof junk), HD_EAUTH);
  junk[sizeof junk - 14] &= 0x7f; /* E clear: unencrypted SRTCP is refused */
  assert_int_equal(hd_srtp_unprotect_rtcp(b, junk, sizeof junk), HD_EPROTO);

  /* Construction errors. */
  hd_srtp_t *x = NULL;
  assert_int_equal(hd_srtp_new(&x, HD_SRTP_AES128_CM_SHA1_80, kat_cm_key, kat_cm_key, 28), HD_EINVAL);
  assert_int_equal(hd_srtp_new(&x, 2, kat_cm_key, kat_cm_key, 30), HD_EUNSUPPORTED);
  assert_int_equal(hd_srtp_new(&x, HD_SRTP_AES128_CM_SHA1_80, NULL, kat_cm_key, 30), HD_EINVAL);
  assert_null(x);
  assert_int_equal(hd_srtp_key_len(HD_SRTP_AES128_CM_SHA1_80), 30);
  assert_int_equal(hd_srtp_key_len(HD_SRTP_AEAD_AES_128_GCM), 28);
  assert_int_equal(hd_srtp_global_init(), 0);
  hd_srtp_free(a);
  hd_srtp_free(b);
  hd_srtp_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kat_cm_rtp_and_rtcp),   cmocka_unit_test(test_kat_gcm_rtp),
      cmocka_unit_test(test_dtls_keyed_gcm),        cmocka_unit_test(test_dtls_keyed_cm),
      cmocka_unit_test(test_tamper_and_replay_cm),  cmocka_unit_test(test_tamper_and_replay_gcm),
      cmocka_unit_test(test_replay_window_is_1024), cmocka_unit_test(test_bounds_and_bad_input),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
