/* Tests for the RFC 6184 H.264 packetiser (media/h264_pay.h): Annex B
 * access units into single NAL / STAP-A / FU-A payloads, and the round trip
 * packetise -> depacketise (media/h264_depay.h) gives back every NAL unit
 * byte for byte, with the marker on the last packet; malformed input is
 * refused. */
#include "hd_test.h"

#include <string.h>

#include "base/err.h"
#include "media/h264_depay.h"
#include "media/h264_pay.h"

static const uint8_t SPS[] = {0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8};
static const uint8_t PPS[] = {0x68, 0xce, 0x3c, 0x80};

typedef struct {
  uint8_t b[20000];
  size_t len;
  const uint8_t *nal[16];
  size_t nal_len[16];
  int n;
} au_t;

/* appends a NAL unit behind a 4- or 3-byte start code */
static void add(au_t *a, const uint8_t *nal, size_t len, int long_sc) {
  if (long_sc) a->b[a->len++] = 0;
  a->b[a->len++] = 0;
  a->b[a->len++] = 0;
  a->b[a->len++] = 1;
  memcpy(a->b + a->len, nal, len);
  a->nal[a->n] = a->b + a->len;
  a->nal_len[a->n++] = len;
  a->len += len;
}

/* a slice NAL of `len` bytes: header then bytes that never form a start code */
static void slice(uint8_t *s, size_t len, uint8_t hdr) {
  s[0] = hdr;
  for (size_t i = 1; i < len; i++)
    s[i] = (uint8_t)(0x10 + i % 200);
}

/* packetises, checks the payload shapes, depacketises; returns the AU */
static int round_trip(const au_t *a, size_t mtu, hd_h264_depay_t *d, uint16_t *seq, uint32_t ts, int *types,
                      hd_h264_au_t *out) {
  hd_h264_pay_t p;
  assert_int_equal(hd_h264_pay_init(&p, mtu), 0);
  int n = hd_h264_pay_begin(&p, a->b, a->len);
  assert_true(n > 0);
  uint8_t pkt[1500];
  int marker, len, k = 0, got = 0;
  while ((len = hd_h264_pay_next(&p, pkt, sizeof pkt, &marker)) > 0) {
    assert_true((size_t)len <= mtu);
    types[k] = pkt[0] & 0x1f;
    k++;
    assert_int_equal(marker, k == n);
    int rc = hd_h264_depay_push(d, (*seq)++, ts, marker, pkt, (size_t)len, out);
    assert_true(rc == 0 || rc == 1);
    if (rc == 1) got = 1;
  }
  assert_int_equal(len, 0);
  assert_int_equal(k, n);
  return got;
}

static void check_avcc(const hd_h264_au_t *o, const au_t *a) {
  size_t off = 0;
  for (int i = 0; i < a->n; i++) {
    size_t n = (size_t)o->data[off] << 24 | (size_t)o->data[off + 1] << 16 | (size_t)o->data[off + 2] << 8 |
               o->data[off + 3];
    assert_int_equal(n, a->nal_len[i]);
    assert_memory_equal(o->data + off + 4, a->nal[i], n);
    off += 4 + n;
  }
  assert_int_equal(off, o->len);
}

static void test_round_trip(void **st) {
  (void)st;
  hd_h264_depay_t d;
  assert_int_equal(hd_h264_depay_init(&d, 0), 0);
  static au_t a;
  static uint8_t idr[5000], p1[300], p2[1200];
  uint16_t seq = 65533;
  int types[64];
  hd_h264_au_t o;
  /* IDR AU: [AUD] SPS PPS IDR(5000): STAP-A(SPS,PPS) + FU-A x 5 at mtu 1100 */
  memset(&a, 0, sizeof a);
  const uint8_t aud[] = {0x09, 0xf0};
  add(&a, aud, sizeof aud, 1);
  a.n = 0; /* the AUD is dropped: not expected back */
  add(&a, SPS, sizeof SPS, 1);
  add(&a, PPS, sizeof PPS, 0);
  slice(idr, sizeof idr, 0x65);
  add(&a, idr, sizeof idr, 1);
  a.b[a.len++] = 0; /* trailing_zero_8bits */
  assert_int_equal(round_trip(&a, 1100, &d, &seq, 0, types, &o), 1);
  assert_int_equal(types[0], 24);
  for (int i = 1; i <= 5; i++)
    assert_int_equal(types[i], 28);
  assert_true(o.keyframe);
  check_avcc(&o, &a);
  /* P AU of two slices that fit together: one STAP-A */
  memset(&a, 0, sizeof a);
  slice(p1, sizeof p1, 0x41);
  add(&a, p1, sizeof p1, 1);
  add(&a, p1, 200, 0);
  assert_int_equal(round_trip(&a, 1100, &d, &seq, 3000, types, &o), 1);
  assert_int_equal(types[0], 24);
  assert_false(o.keyframe);
  check_avcc(&o, &a);
  /* two slices that do not fit together: two single NAL packets */
  memset(&a, 0, sizeof a);
  slice(p2, sizeof p2, 0x41);
  add(&a, p2, 1000, 1);
  add(&a, p2, 900, 1);
  assert_int_equal(round_trip(&a, 1100, &d, &seq, 6000, types, &o), 1);
  assert_int_equal(types[0], 1);
  assert_int_equal(types[1], 1);
  check_avcc(&o, &a);
  /* a NAL unit exactly one payload long stays whole; one byte more is FU-A */
  memset(&a, 0, sizeof a);
  add(&a, p2, 1100, 1);
  assert_int_equal(round_trip(&a, 1100, &d, &seq, 9000, types, &o), 1);
  assert_int_equal(types[0], 1);
  memset(&a, 0, sizeof a);
  add(&a, p2, 1101, 1);
  assert_int_equal(round_trip(&a, 1100, &d, &seq, 12000, types, &o), 1);
  assert_int_equal(types[0], 28);
  assert_int_equal(types[1], 28);
  check_avcc(&o, &a);
  /* small MTU: every FU-A size */
  for (size_t mtu = 16; mtu < 64; mtu++) {
    memset(&a, 0, sizeof a);
    add(&a, SPS, sizeof SPS, 1);
    add(&a, PPS, sizeof PPS, 1);
    add(&a, idr, 700, 1);
    assert_int_equal(round_trip(&a, mtu, &d, &seq, (uint32_t)(15000 + mtu * 3000), types, &o), 1);
    check_avcc(&o, &a);
  }
  assert_int_equal(d.stats.gaps, 0);
  assert_int_equal(d.stats.malformed, 0);
  assert_int_equal(hd_h264_depay_take_key_request(&d), 0);
  hd_h264_depay_free(&d);
}

static void test_rejects(void **st) {
  (void)st;
  hd_h264_pay_t p;
  assert_int_equal(hd_h264_pay_init(&p, 8), HD_EINVAL);
  assert_int_equal(hd_h264_pay_init(&p, 1100), 0);
  const uint8_t no_sc[] = {0x65, 1, 2};
  const uint8_t empty_nal[] = {0, 0, 1, 0, 0, 1, 0x41, 1};
  const uint8_t fbit[] = {0, 0, 1, 0xc1, 1};
  const uint8_t stap[] = {0, 0, 0, 1, 0x78, 0, 1};
  const uint8_t only_aud[] = {0, 0, 0, 1, 0x09, 0xf0};
  const uint8_t one_zero[] = {0, 1, 0x41};
  assert_int_equal(hd_h264_pay_begin(&p, no_sc, sizeof no_sc), HD_EPROTO);
  assert_int_equal(hd_h264_pay_begin(&p, empty_nal, sizeof empty_nal), HD_EPROTO);
  assert_int_equal(hd_h264_pay_begin(&p, fbit, sizeof fbit), HD_EPROTO);
  assert_int_equal(hd_h264_pay_begin(&p, stap, sizeof stap), HD_EPROTO);
  assert_int_equal(hd_h264_pay_begin(&p, one_zero, sizeof one_zero), HD_EPROTO);
  assert_int_equal(hd_h264_pay_begin(&p, only_aud, sizeof only_aud), HD_EINVAL);
  assert_int_equal(hd_h264_pay_begin(&p, NULL, 0), HD_EINVAL);
  int marker;
  uint8_t out[2000];
  assert_int_equal(hd_h264_pay_next(&p, out, sizeof out, &marker), 0); /* nothing begun */
  const uint8_t ok[] = {0, 0, 1, 0x41, 0x9a, 1};
  assert_int_equal(hd_h264_pay_begin(&p, ok, sizeof ok), 1);
  assert_int_equal(hd_h264_pay_next(&p, out, 100, &marker), HD_ENOSPC);
  assert_int_equal(hd_h264_pay_next(&p, out, sizeof out, &marker), 3);
  assert_int_equal(marker, 1);
  assert_int_equal(hd_h264_annexb_has_idr(ok, sizeof ok), 0);
  const uint8_t key[] = {0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x65, 0x88};
  assert_int_equal(hd_h264_annexb_has_idr(key, sizeof key), 1);
  assert_int_equal(hd_h264_annexb_has_idr(no_sc, sizeof no_sc), HD_EPROTO);
  /* too many packets for one access unit */
  static uint8_t huge[3 + 200000];
  huge[2] = 1;
  slice(huge + 3, sizeof huge - 3, 0x65);
  assert_int_equal(hd_h264_pay_init(&p, 16), 0);
  assert_int_equal(hd_h264_pay_begin(&p, huge, sizeof huge), HD_ENOSPC);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_rejects),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
