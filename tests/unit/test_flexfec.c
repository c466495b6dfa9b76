/* Unit tests for rtc/flexfec (RFC 8627): a repair packet rebuilds any one lost
 * packet of its set byte for byte (marker, extension, CSRCs, lengths), masks
 * of 15/46/109 bits and seq wrap, malformed input rejected, the decoder's caps,
 * the protection plan, and a stream on the link model (tests/support/link.h):
 * residual loss with and without FEC at 10 % and 20 % random loss. */
#include "hd_test.h"

#include <stdlib.h>

#include "base/err.h"
#include "rtc/flexfec.h"
#include "support/link.h"

#define SSRC 0x11223344u
#define FEC_SSRC 0x55667788u
#define FEC_PT 118

/* An RTP packet with seq, a payload of plen bytes derived from seq; every
 * third one with a CSRC and a header extension, every fourth with the marker. */
static size_t mkpkt(uint8_t *p, uint16_t seq, size_t plen) {
  size_t off = 12;
  int ext = seq % 3 == 0;
  p[0] = (uint8_t)(0x80 | (ext ? 0x10 | 1 : 0));
  p[1] = (uint8_t)((seq % 4 == 0 ? 0x80 : 0) | 96);
  p[2] = (uint8_t)(seq >> 8);
  p[3] = (uint8_t)seq;
  uint32_t ts = 90000u + seq * 3000u;
  p[4] = (uint8_t)(ts >> 24), p[5] = (uint8_t)(ts >> 16), p[6] = (uint8_t)(ts >> 8), p[7] = (uint8_t)ts;
  p[8] = 0x11, p[9] = 0x22, p[10] = 0x33, p[11] = 0x44;
  if (ext) {
    memcpy(p + off, "\xaa\xbb\xcc\xdd", 4); /* CSRC */
    off += 4;
    memcpy(p + off, "\xbe\xde\x00\x01\x10\x07\x00\x00", 8); /* one-byte extension, one word */
    off += 8;
  }
  for (size_t i = 0; i < plen; i++)
    p[off + i] = (uint8_t)(seq * 7 + i);
  return off + plen;
}

typedef struct {
  int n;
  uint8_t last[HD_FLEXFEC_PKT_MAX];
  size_t last_len;
} got_t;

static void on_rec(void *ud, const uint8_t *pkt, size_t len) {
  got_t *g = ud;
  g->n++;
  memcpy(g->last, pkt, len);
  g->last_len = len;
}

static void test_recovers_any_one(void **st) {
  (void)st;
  uint8_t pk[6][HD_FLEXFEC_PKT_MAX];
  size_t ln[6];
  const uint8_t *pp[6];
  for (int i = 0; i < 6; i++) {
    ln[i] = mkpkt(pk[i], (uint16_t)(1000 + i), 100 + (size_t)i * 97);
    pp[i] = pk[i];
  }
  uint8_t fec[HD_FLEXFEC_PKT_MAX + 64];
  int fl = hd_flexfec_encode(pp, ln, 6, FEC_PT, 7, 1234, FEC_SSRC, fec, sizeof fec);
  assert_true(fl > 0);
  hd_flexfec_hdr_t h;
  assert_int_equal(hd_flexfec_parse(fec, (size_t)fl, &h), 0);
  assert_int_equal(h.protected_ssrc, SSRC);
  assert_int_equal(h.sn_base, 1000);
  assert_int_equal(h.mask_bits, 15);
  assert_true(hd_flexfec_covers(&h, 1005));
  assert_false(hd_flexfec_covers(&h, 1006));
  assert_false(hd_flexfec_covers(&h, 999));
  hd_flexfec_dec_t *d = malloc(sizeof *d);
  assert_non_null(d);
  for (int lost = 0; lost < 6; lost++) {
    for (int fec_first = 0; fec_first < 2; fec_first++) {
      hd_flexfec_dec_init(d, SSRC);
      got_t g = {0};
      if (fec_first) assert_int_equal(hd_flexfec_dec_fec(d, fec, (size_t)fl, on_rec, &g), 0);
      for (int i = 0; i < 6; i++)
        if (i != lost) assert_true(hd_flexfec_dec_media(d, pk[i], ln[i], on_rec, &g) >= 0);
      if (!fec_first) assert_int_equal(hd_flexfec_dec_fec(d, fec, (size_t)fl, on_rec, &g), 1);
      assert_int_equal(g.n, 1);
      assert_int_equal(g.last_len, ln[lost]);
      assert_memory_equal(g.last, pk[lost], ln[lost]);
      /* the original arriving late (RTX) is a duplicate now */
      assert_int_equal(hd_flexfec_dec_media(d, pk[lost], ln[lost], on_rec, &g), 0);
      assert_int_equal(g.n, 1);
    }
  }
  /* two lost of one set: nothing to rebuild, and nothing wrong rebuilt */
  hd_flexfec_dec_init(d, SSRC);
  got_t g = {0};
  for (int i = 2; i < 6; i++)
    hd_flexfec_dec_media(d, pk[i], ln[i], on_rec, &g);
  assert_int_equal(hd_flexfec_dec_fec(d, fec, (size_t)fl, on_rec, &g), 0);
  /* ... until a retransmission brings one back: then the other follows */
  assert_int_equal(hd_flexfec_dec_media(d, pk[0], ln[0], on_rec, &g), 1);
  assert_memory_equal(g.last, pk[1], ln[1]);
  free(d);
}

static void test_long_masks_and_wrap(void **st) {
  (void)st;
  const uint16_t offs[][4] = {{0, 3, 20, 45}, {0, 46, 80, 108}};
  const int bits[] = {46, 109};
  for (int c = 0; c < 2; c++) {
    uint8_t pk[4][HD_FLEXFEC_PKT_MAX];
    size_t ln[4];
    const uint8_t *pp[4];
    for (int i = 0; i < 4; i++) {
      ln[i] = mkpkt(pk[i], (uint16_t)(65500 + offs[c][i]), 50); /* wraps past 65535 */
      pp[i] = pk[i];
    }
    /* out of order in: the base is still the oldest */
    const uint8_t *rp[4] = {pp[2], pp[0], pp[3], pp[1]};
    size_t rl[4] = {ln[2], ln[0], ln[3], ln[1]};
    uint8_t fec[HD_FLEXFEC_PKT_MAX + 64];
    int fl = hd_flexfec_encode(rp, rl, 4, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec);
    assert_true(fl > 0);
    hd_flexfec_hdr_t h;
    assert_int_equal(hd_flexfec_parse(fec, (size_t)fl, &h), 0);
    assert_int_equal(h.mask_bits, bits[c]);
    assert_int_equal(h.sn_base, 65500);
    for (int i = 0; i < 4; i++)
      assert_true(hd_flexfec_covers(&h, (uint16_t)(65500 + offs[c][i])));
    assert_false(hd_flexfec_covers(&h, 65501));
    hd_flexfec_dec_t *d = malloc(sizeof *d);
    assert_non_null(d);
    hd_flexfec_dec_init(d, 0); /* learns the SSRC from the repair packet */
    got_t g = {0};
    assert_int_equal(hd_flexfec_dec_fec(d, fec, (size_t)fl, on_rec, &g), 0);
    for (int i = 0; i < 3; i++)
      hd_flexfec_dec_media(d, pk[i], ln[i], on_rec, &g);
    assert_int_equal(g.n, 1);
    assert_memory_equal(g.last, pk[3], ln[3]);
    free(d);
  }
}

static void test_bad_input(void **st) {
  (void)st;
  uint8_t pk[3][HD_FLEXFEC_PKT_MAX];
  size_t ln[3];
  const uint8_t *pp[3];
  for (int i = 0; i < 3; i++) {
    ln[i] = mkpkt(pk[i], (uint16_t)(10 + i), 40);
    pp[i] = pk[i];
  }
  uint8_t fec[256];
  /* encode: cap, repeated seq, span, foreign SSRC, not RTP */
  assert_int_equal(hd_flexfec_encode(pp, ln, 3, FEC_PT, 1, 0, FEC_SSRC, fec, 40), HD_ENOSPC);
  const uint8_t *dup[2] = {pp[0], pp[0]};
  assert_int_equal(hd_flexfec_encode(dup, ln, 2, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec), HD_EINVAL);
  uint8_t far[HD_FLEXFEC_PKT_MAX];
  size_t farl = mkpkt(far, 10 + HD_FLEXFEC_MAX_MASK, 40);
  const uint8_t *span[2] = {pp[0], far};
  size_t spanl[2] = {ln[0], farl};
  assert_int_equal(hd_flexfec_encode(span, spanl, 2, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec), HD_EINVAL);
  pk[1][8] ^= 1;
  assert_int_equal(hd_flexfec_encode(pp, ln, 3, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec), HD_EINVAL);
  pk[1][8] ^= 1;
  uint8_t b0 = pk[2][0];
  pk[2][0] = 0x40;
  assert_int_equal(hd_flexfec_encode(pp, ln, 3, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec), HD_EINVAL);
  pk[2][0] = b0;
  assert_int_equal(hd_flexfec_encode(pp, ln, 0, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec), HD_EINVAL);
  int fl = hd_flexfec_encode(pp, ln, 3, FEC_PT, 1, 0, FEC_SSRC, fec, sizeof fec);
  assert_true(fl > 0);
  hd_flexfec_hdr_t h;
  /* parse: truncated, R bit, F bit, no CSRC, empty mask, a 46-bit mask cut short */
  for (int cut = 0; cut < 28; cut++) /* 16 RTP + 8 + 4 */
    assert_int_equal(hd_flexfec_parse(fec, (size_t)cut, &h), HD_EPROTO);
  uint8_t bad[256];
  memcpy(bad, fec, (size_t)fl);
  bad[16] |= 0x80;
  assert_int_equal(hd_flexfec_parse(bad, (size_t)fl, &h), HD_EPROTO);
  memcpy(bad, fec, (size_t)fl);
  bad[16] |= 0x40;
  assert_int_equal(hd_flexfec_parse(bad, (size_t)fl, &h), HD_EPROTO);
  memcpy(bad, fec, (size_t)fl);
  bad[0] = 0x80;
  assert_int_equal(hd_flexfec_parse(bad, (size_t)fl, &h), HD_EPROTO);
  memcpy(bad, fec, (size_t)fl);
  bad[26] = 0x80, bad[27] = 0; /* k = 1, no bit set */
  assert_int_equal(hd_flexfec_parse(bad, (size_t)fl, &h), HD_EPROTO);
  memcpy(bad, fec, (size_t)fl);
  bad[26] &= 0x7f; /* k = 0: 4 more mask bytes, which a 28-byte packet lacks */
  assert_int_equal(hd_flexfec_parse(bad, 28, &h), HD_EPROTO);
  /* a decoder counts what it refuses and keeps working */
  hd_flexfec_dec_t *d = malloc(sizeof *d);
  assert_non_null(d);
  hd_flexfec_dec_init(d, SSRC);
  assert_int_equal(hd_flexfec_dec_fec(d, bad, 20, NULL, NULL), HD_EPROTO);
  assert_int_equal(d->fec_malformed, 1);
  uint8_t other[256];
  memcpy(other, fec, (size_t)fl);
  other[12] ^= 0xff; /* protects another stream */
  assert_int_equal(hd_flexfec_dec_fec(d, other, (size_t)fl, NULL, NULL), HD_EPROTO);
  assert_int_equal(hd_flexfec_dec_media(d, pk[0], 5, NULL, NULL), HD_EPROTO);
  /* a repair packet whose length recovery does not fit its payload rebuilds nothing */
  memcpy(bad, fec, (size_t)fl);
  bad[18] ^= 0x40; /* length recovery, high byte */
  got_t g = {0};
  hd_flexfec_dec_media(d, pk[0], ln[0], on_rec, &g);
  hd_flexfec_dec_media(d, pk[1], ln[1], on_rec, &g);
  assert_int_equal(hd_flexfec_dec_fec(d, bad, (size_t)fl, on_rec, &g), 0);
  assert_int_equal(g.n, 0);
  assert_int_equal(d->fec_malformed, 3);
  free(d);
}

static void test_caps(void **st) {
  (void)st;
  hd_flexfec_dec_t *d = malloc(sizeof *d);
  assert_non_null(d);
  hd_flexfec_dec_init(d, SSRC);
  uint8_t pk[2][HD_FLEXFEC_PKT_MAX];
  size_t ln[2];
  const uint8_t *pp[2];
  uint8_t fec[HD_FLEXFEC_PKT_MAX + 64];
  /* 40 repair packets, each missing two: only HD_FLEXFEC_DEC_FEC are kept */
  for (int i = 0; i < 40; i++) {
    for (int k = 0; k < 2; k++) {
      ln[k] = mkpkt(pk[k], (uint16_t)(3 * i + k), 30);
      pp[k] = pk[k];
    }
    int fl = hd_flexfec_encode(pp, ln, 2, FEC_PT, (uint16_t)i, 0, FEC_SSRC, fec, sizeof fec);
    assert_int_equal(hd_flexfec_dec_fec(d, fec, (size_t)fl, NULL, NULL), 0);
  }
  assert_int_equal(d->fec_received, 40);
  assert_int_equal(d->unrecoverable_dropped, 40 - HD_FLEXFEC_DEC_FEC);
  /* media far ahead: the kept ones protect packets that left the ring */
  uint8_t m[HD_FLEXFEC_PKT_MAX];
  size_t ml = mkpkt(m, 1000, 30);
  hd_flexfec_dec_media(d, m, ml, NULL, NULL);
  assert_int_equal(d->unrecoverable_dropped, 40);
  for (int i = 0; i < HD_FLEXFEC_DEC_FEC; i++)
    assert_int_equal(d->fec[i].len, 0);
  free(d);
}

static void test_plan(void **st) {
  (void)st;
  assert_int_equal(hd_flexfec_plan(0.0, HD_MS(300)), 0);
  assert_int_equal(hd_flexfec_plan(0.01, HD_MS(300)), 0);  /* NACK copes */
  assert_int_equal(hd_flexfec_plan(0.05, HD_MS(50)), 0);   /* short RTT: NACK alone */
  assert_int_equal(hd_flexfec_plan(0.05, HD_MS(300)), 10); /* long RTT: 1 in 10 */
  assert_int_equal(hd_flexfec_plan(0.20, HD_MS(50)), 0);   /* short RTT: NACK alone up to 30% */
  assert_int_equal(hd_flexfec_plan(0.20, HD_MS(150)), 3);  /* long RTT: FEC */
  assert_int_equal(hd_flexfec_plan(0.35, HD_MS(50)), 2);   /* heavy loss: FEC whatever the RTT */
  assert_int_equal(hd_flexfec_plan(0.03, HD_MS(300)), HD_FLEXFEC_MAX_GROUP);
  assert_int_equal(hd_flexfec_plan(0.5, 0), 2);
}

/* A 30 fps stream of ~4 packets per frame for 60 s through one link with
 * random loss (the netem model), repair packets after every group of
 * hd_flexfec_plan(loss, 200 ms) media packets, lost at the same rate. */
static void run_link(double loss, uint64_t seed, double *residual_off, double *residual_on) {
  hd_link_params_t lp = {.delay = HD_MS(25), .loss = loss};
  hd_link_t link;
  hd_link_init(&link, &lp, seed);
  hd_flexfec_dec_t *d = malloc(sizeof *d);
  assert_non_null(d);
  hd_flexfec_dec_init(d, SSRC);
  int group = hd_flexfec_plan(loss, HD_MS(200));
  assert_true(group >= 2);
  static uint8_t pk[HD_FLEXFEC_MAX_GROUP][HD_FLEXFEC_PKT_MAX];
  size_t ln[HD_FLEXFEC_MAX_GROUP];
  const uint8_t *pp[HD_FLEXFEC_MAX_GROUP];
  int n = 0, sent = 0, lost = 0;
  uint16_t fseq = 0;
  got_t g = {0};
  hd_time_t now = 0, at;
  for (int i = 0; i < 30 * 60 * 4; i++, now += HD_MS(8)) {
    ln[n] = mkpkt(pk[n], (uint16_t)(60000 + i), 200 + (size_t)(i * 37) % 900);
    pp[n] = pk[n];
    sent++;
    if (hd_link_send(&link, now, &at))
      hd_flexfec_dec_media(d, pk[n], ln[n], on_rec, &g);
    else
      lost++;
    if (++n == group) {
      uint8_t fec[HD_FLEXFEC_PKT_MAX + 64];
      int fl = hd_flexfec_encode(pp, ln, (size_t)n, FEC_PT, fseq++, 0, FEC_SSRC, fec, sizeof fec);
      assert_true(fl > 0);
      if (hd_link_send(&link, now, &at)) assert_true(hd_flexfec_dec_fec(d, fec, (size_t)fl, on_rec, &g) >= 0);
      n = 0;
    }
  }
  *residual_off = 100.0 * lost / sent;
  *residual_on = 100.0 * (lost - g.n) / sent;
  assert_int_equal((uint64_t)g.n, d->recovered);
  print_message("flexfec %2.0f%% loss, 1 repair per %d: residual loss %.2f%% -> %.2f%% (%d recovered)\n",
                loss * 100, group, *residual_off, *residual_on, g.n);
  free(d);
}

static void test_link_model(void **st) {
  (void)st;
  double off, on;
  /* one XOR repair packet per group fixes one loss in the group: a packet
   * stays lost when another of its group (or the repair) is lost too,
   * p x (1 - (1 - p)^group) -- 4.1 % at 10 % with 5, 9.8 % at 20 % with 3.
   * The rest is for NACK (FEC takes the round trips, not all of them). */
  run_link(0.10, 7, &off, &on); /* 1 repair per 5 */
  assert_true(off > 8 && off < 12);
  assert_true(on < off * 0.5);
  run_link(0.20, 8, &off, &on); /* 1 repair per 3 (2.5 rounded up) */
  assert_true(off > 17 && off < 23);
  assert_true(on < off * 0.6);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recovers_any_one),
      cmocka_unit_test(test_long_masks_and_wrap),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_caps),
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_link_model),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
