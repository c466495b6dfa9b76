/* Tests for the RFC 6184 H.264 depacketiser (media/h264_depay.h): single
 * NAL, STAP-A and FU-A packets into AVCC access units; SPS/PPS into avcC;
 * start at an IDR; loss drops to the next IDR with a keyframe request; a lost
 * marker packet; malformed and mode-0/interleaved payloads rejected; caps. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "media/h264_depay.h"

static const uint8_t SPS[] = {0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8};
static const uint8_t PPS[] = {0x68, 0xce, 0x3c, 0x80};

/* STAP-A of SPS + PPS (§5.7.1) */
static size_t stap(uint8_t *p) {
  size_t o = 0;
  p[o++] = 0x78; /* NRI 3, type 24 */
  p[o++] = 0;
  p[o++] = sizeof SPS;
  memcpy(p + o, SPS, sizeof SPS);
  o += sizeof SPS;
  p[o++] = 0;
  p[o++] = sizeof PPS;
  memcpy(p + o, PPS, sizeof PPS);
  return o + sizeof PPS;
}

/* pushes an IDR of `n` payload bytes as three FU-A packets after a STAP-A */
static int push_idr(hd_h264_depay_t *d, uint16_t *seq, uint32_t ts, hd_h264_au_t *au) {
  uint8_t p[64];
  size_t n = stap(p);
  int rc = hd_h264_depay_push(d, (*seq)++, ts, 0, p, n, au);
  if (rc != 0) return -100 + rc;
  for (int k = 0; k < 3; k++) {
    p[0] = 0x7c;                                               /* NRI 3, FU-A */
    p[1] = (uint8_t)((k == 0 ? 0x80 : k == 2 ? 0x40 : 0) | 5); /* S/E, IDR */
    memset(p + 2, 0x10 + k, 10);
    rc = hd_h264_depay_push(d, (*seq)++, ts, k == 2, p, 12, au);
    if (k < 2 && rc != 0) return -200 + rc;
  }
  return rc;
}

static int push_p(hd_h264_depay_t *d, uint16_t seq, uint32_t ts, int marker, hd_h264_au_t *au) {
  const uint8_t p[] = {0x41, 0x9a, 0x01, 0x02, 0x03};
  return hd_h264_depay_push(d, seq, ts, marker, p, sizeof p, au);
}

static void test_idr_stap_fua(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_h264_au_t au;
  uint16_t seq = 65530; /* wraps inside */
  assert_int_equal(push_idr(&d, &seq, 3000, &au), 1);
  assert_true(au.keyframe);
  assert_int_equal(au.nals, 3);
  assert_int_equal(au.ts, 3000);
  /* AVCC: [len SPS][len PPS][len IDR] */
  size_t idr_len = 1 + 30;
  assert_int_equal(au.len, 4 + sizeof SPS + 4 + sizeof PPS + 4 + idr_len);
  assert_int_equal(au.data[3], sizeof SPS);
  assert_memory_equal(au.data + 4, SPS, sizeof SPS);
  const uint8_t *idr = au.data + 8 + sizeof SPS + sizeof PPS + 4;
  assert_int_equal(idr[-1], idr_len);
  assert_int_equal(idr[0], 0x65); /* F 0, NRI 3 from the indicator, type 5 */
  assert_int_equal(idr[1], 0x10);
  assert_int_equal(idr[11], 0x11);
  assert_int_equal(idr[30], 0x12);
  uint8_t avcc[64];
  int n = hd_h264_depay_avcc(&d, avcc, sizeof avcc);
  assert_int_equal(n, 6 + 2 + sizeof SPS + 1 + 2 + sizeof PPS);
  assert_int_equal(avcc[0], 1);
  assert_int_equal(avcc[1], 0x42);
  assert_int_equal(avcc[3], 0x1f);
  assert_int_equal(avcc[4], 0xff);
  assert_int_equal(avcc[5], 0xe1);
  assert_int_equal(hd_h264_depay_avcc(&d, avcc, 10), HD_ENOSPC);
  /* a single-NAL P frame */
  assert_int_equal(push_p(&d, seq++, 6000, 1, &au), 1);
  assert_false(au.keyframe);
  assert_int_equal(au.len, 4 + 5);
  assert_int_equal(au.data[4], 0x41);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 0);
  assert_int_equal(d.stats.aus, 2);
  hd_h264_depay_free(&d);
}

static void test_starts_at_idr(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_h264_au_t au;
  uint8_t avcc[64];
  assert_int_equal(hd_h264_depay_avcc(&d, avcc, sizeof avcc), HD_ENOTFOUND);
  assert_int_equal(push_p(&d, 1, 100, 1, &au), 0); /* joined mid-GOP */
  assert_int_equal(hd_h264_depay_take_key_request(&d), 1);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 0);
  /* an IDR without SPS/PPS ever seen is no start either */
  const uint8_t idr[] = {0x65, 0x88, 0x80};
  assert_int_equal(hd_h264_depay_push(&d, 2, 200, 1, idr, sizeof idr, &au), 0);
  uint16_t seq = 3;
  assert_int_equal(push_idr(&d, &seq, 300, &au), 1);
  assert_true(au.keyframe);
  assert_int_equal(d.stats.aus_dropped, 2);
  hd_h264_depay_free(&d);
}

static void test_loss_waits_for_idr(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_h264_au_t au;
  uint16_t seq = 10;
  assert_int_equal(push_idr(&d, &seq, 0, &au), 1);
  /* a P frame in two FU-A packets, the second lost */
  uint8_t p[] = {0x5c, 0x81, 1, 2, 3};
  assert_int_equal(hd_h264_depay_push(&d, seq++, 3000, 0, p, sizeof p, &au), 0);
  seq++;                                                /* lost: its end */
  assert_int_equal(push_p(&d, seq++, 6000, 1, &au), 0); /* damaged AU dropped; this P too */
  assert_int_equal(hd_h264_depay_take_key_request(&d), 1);
  assert_int_equal(push_p(&d, seq++, 9000, 1, &au), 0);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 0);
  assert_int_equal(push_idr(&d, &seq, 12000, &au), 1);
  assert_true(au.keyframe);
  assert_int_equal(push_p(&d, seq++, 15000, 1, &au), 1);
  /* a whole single-packet AU lost between two complete ones */
  seq++;
  assert_int_equal(push_p(&d, seq++, 21000, 1, &au), 0);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 1);
  /* duplicates and late repairs are ignored */
  assert_int_equal(push_p(&d, (uint16_t)(seq - 1), 21000, 1, &au), 0);
  assert_int_equal(d.stats.late, 1);
  assert_int_equal(d.stats.gaps, 2);
  hd_h264_depay_free(&d);
}

static void test_lost_marker(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_h264_au_t au;
  uint16_t seq = 0;
  assert_int_equal(push_idr(&d, &seq, 0, &au), 1);
  /* a P frame whose last packet came without the marker (a sender that sets
   * none): it goes out when the next timestamp starts */
  assert_int_equal(push_p(&d, seq++, 3000, 0, &au), 0);
  assert_int_equal(push_p(&d, seq++, 6000, 1, &au), 1);
  assert_int_equal(au.ts, 3000);
  assert_int_equal(hd_h264_depay_flush(&d, &au), 1);
  assert_int_equal(au.ts, 6000);
  assert_int_equal(hd_h264_depay_flush(&d, &au), 0);
  hd_h264_depay_free(&d);
}

static void test_malformed(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  hd_h264_au_t au;
  const uint8_t stap_b[] = {0x79, 0, 0, 0, 1, 0x41};
  const uint8_t fbit[] = {0xc1, 1};
  const uint8_t fu_se[] = {0x7c, 0xc5, 1};
  const uint8_t fu_b[] = {0x7d, 0x85, 0, 0, 1};
  const uint8_t stap_short[] = {0x78, 0, 9, 0x67};
  const uint8_t fu_mid[] = {0x7c, 0x05, 1};
  const uint8_t nal0[] = {0x00, 1};
  const uint8_t stap_nested[] = {0x78, 0, 2, 0x7c, 0x85}; /* a FU-A inside a STAP-A (fuzz find) */
  assert_int_equal(hd_h264_depay_push(&d, 0, 0, 0, stap_b, sizeof stap_b, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 1, 0, 0, fbit, sizeof fbit, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 2, 0, 0, fu_se, sizeof fu_se, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 3, 0, 0, fu_b, sizeof fu_b, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 4, 0, 0, stap_short, sizeof stap_short, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 5, 1, 0, fu_mid, sizeof fu_mid, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 6, 2, 0, nal0, sizeof nal0, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 7, 3, 0, NULL, 0, &au), HD_EPROTO);
  assert_int_equal(hd_h264_depay_push(&d, 8, 4, 0, stap_nested, sizeof stap_nested, &au), HD_EPROTO);
  assert_int_equal(d.stats.malformed, 9);
  assert_int_equal(hd_h264_depay_push(NULL, 0, 0, 0, nal0, 2, &au), HD_EINVAL);
  hd_h264_depay_free(&d);
  hd_h264_depay_t tiny; /* init clears its struct first: a fresh one, not d */
  assert_int_equal(hd_h264_depay_init(&tiny, 10), HD_EINVAL);
  hd_h264_depay_free(&tiny);
}

static void test_oversize(void **state) {
  (void)state;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 64), 0);
  hd_h264_au_t au;
  uint16_t seq = 0;
  assert_int_equal(push_idr(&d, &seq, 0, &au), 1); /* 4+9+4+4+4+31 = 56 bytes: fits */
  uint8_t big[80] = {0x41};
  assert_int_equal(hd_h264_depay_push(&d, seq++, 3000, 1, big, sizeof big, &au), 0);
  assert_int_equal(d.stats.oversize, 1);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 1);
  hd_h264_depay_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idr_stap_fua),       cmocka_unit_test(test_starts_at_idr),
      cmocka_unit_test(test_loss_waits_for_idr), cmocka_unit_test(test_lost_marker),
      cmocka_unit_test(test_malformed),          cmocka_unit_test(test_oversize),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
