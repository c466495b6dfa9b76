/* FlexFEC send side (rtc/flexfec_send.h): the plan from smoothed reports and
 * the RTT, the grouping, and a repair packet that carries a transport-wide
 * seq extension yet still rebuilds a lost packet at an RFC 8627 receiver. */
#include "hd_test.h"

#include <stdlib.h>

#include "base/err.h"
#include "proto/rtp.h"
#include "rtc/flexfec.h"
#include "rtc/flexfec_send.h"

#define TWCC_ID 3

/* A media packet with a transport-wide seq (tw) and a payload of len bytes
 * filled from seq. */
static int media(uint8_t *out, uint16_t seq, uint16_t tw, int marker, size_t len) {
  uint8_t pl[1200], t[2];
  for (size_t i = 0; i < len; i++)
    pl[i] = (uint8_t)(seq * 7 + i);
  hd_rtp_twcc_seq_write(t, tw);
  hd_rtp_ext_t ext = {TWCC_ID, 2, t};
  hd_rtp_build_t b = {.pt = 96,
                      .marker = (uint8_t)marker,
                      .seq = seq,
                      .ts = seq * 90u,
                      .ssrc = 0xAAAA,
                      .exts = &ext,
                      .ext_count = 1};
  return hd_rtp_build(&b, pl, len, out, 1500);
}

/* No report, little loss, or NACK with a short (or no) RTT: no FEC; the
 * smoothing moves half way per report from 0; without NACK no RTT
 * exemption. */
static void test_plan(void **st) {
  (void)st;
  hd_flexfec_send_t *s = malloc(sizeof *s);
  assert_non_null(s);
  hd_flexfec_send_init(s, 100);
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(300), 1), 0); /* no report yet */
  hd_flexfec_send_on_report(s, 0.2);
  assert_true(s->loss > 0.099 && s->loss < 0.101); /* half way from 0 */
  hd_flexfec_send_on_report(s, 0.2);
  assert_int_equal(hd_flexfec_send_group(s, 0, 1), 0);          /* NACK, no RTT measured */
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(50), 1), 0);  /* NACK repairs in time */
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(300), 1), 3); /* round(1 / (2 x 0.15)) */
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(50), 0), 3);  /* no NACK: FEC is the repair */
  hd_flexfec_send_on_report(s, -1);                             /* ignored */
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(300), 1), 3);
  for (int i = 0; i < 10; i++)
    hd_flexfec_send_on_report(s, 0);
  assert_int_equal(hd_flexfec_send_group(s, HD_MS(300), 1), 0); /* under 2% */
  free(s);
}

static int g_rebuilt;
static uint8_t g_got[1500];
static size_t g_got_len;
static void on_rebuilt(void *ud, const uint8_t *pkt, size_t len) {
  (void)ud;
  g_rebuilt++;
  memcpy(g_got, pkt, len);
  g_got_len = len;
}

/* A group of 3 closes with a repair packet carrying a (zero) transport-wide
 * seq extension; an RFC 8627 receiver that lost one of the three rebuilds
 * it (with its transport-wide seq zeroed, as both ends XOR it); a frame end
 * closes a group half full; an older packet is left out of the group. */
static void test_group_and_repair(void **st) {
  (void)st;
  hd_flexfec_send_t *s = malloc(sizeof *s);
  hd_flexfec_dec_t *d = malloc(sizeof *d);
  assert_true(s && d);
  hd_flexfec_send_init(s, 500);
  hd_flexfec_dec_init(d, 0xAAAA);
  uint8_t pkts[3][1500], rep[1500];
  int lens[3];
  for (int i = 0; i < 3; i++) {
    lens[i] = media(pkts[i], (uint16_t)(10 + i), (uint16_t)(900 + i), 0, (size_t)(300 + 100 * i));
    int n = hd_flexfec_send_add(s, 3, pkts[i], (size_t)lens[i], 0, TWCC_ID, 118, 0xFECC, rep, sizeof rep);
    assert_int_equal(n > 0, i == 2);
    if (i < 2) continue;
    /* RTP on the repair SSRC with the transport-wide seq extension (zero) */
    hd_rtp_hdr_t h;
    const uint8_t *x;
    size_t xl;
    uint16_t tw;
    assert_int_equal(hd_rtp_parse(rep, (size_t)n, &h), 0);
    assert_int_equal(h.ssrc, 0xFECC);
    assert_int_equal(h.pt, 118);
    assert_int_equal(h.seq, 500);
    assert_int_equal(hd_rtp_ext_find(&h, TWCC_ID, &x, &xl), 0);
    assert_int_equal(hd_rtp_twcc_seq_parse(x, xl, &tw), 0);
    assert_int_equal(tw, 0);
    hd_flexfec_hdr_t fh;
    assert_int_equal(hd_flexfec_parse(rep, (size_t)n, &fh), 0);
    assert_int_equal(fh.protected_ssrc, 0xAAAA);
    assert_int_equal(fh.sn_base, 10);
    /* the receiver got 10 and 12 (their seqs zeroed as pc_fec / fec_in do) and the repair */
    for (int k = 0; k < 3; k += 2) {
      uint8_t c[1500];
      memcpy(c, pkts[k], (size_t)lens[k]);
      hd_flexfec_zero_ext(c, (size_t)lens[k], TWCC_ID);
      assert_int_equal(hd_flexfec_dec_media(d, c, (size_t)lens[k], on_rebuilt, NULL), 0);
    }
    assert_int_equal(hd_flexfec_dec_fec(d, rep, (size_t)n, on_rebuilt, NULL), 1);
    assert_int_equal(g_rebuilt, 1);
    uint8_t want[1500];
    memcpy(want, pkts[1], (size_t)lens[1]);
    hd_flexfec_zero_ext(want, (size_t)lens[1], TWCC_ID);
    assert_int_equal(g_got_len, (size_t)lens[1]);
    assert_memory_equal(g_got, want, g_got_len);
  }
  assert_int_equal(s->seq, 501);
  assert_int_equal(s->sent, 1);
  /* group 4: a frame end closes it at 2 (half full), not at 1 */
  uint8_t p[1500];
  int n = media(p, 13, 903, 1, 200);
  assert_int_equal(hd_flexfec_send_add(s, 4, p, (size_t)n, 1, TWCC_ID, 118, 0xFECC, rep, sizeof rep), 0);
  n = media(p, 11, 904, 0, 200); /* older: left out */
  assert_int_equal(hd_flexfec_send_add(s, 4, p, (size_t)n, 0, TWCC_ID, 118, 0xFECC, rep, sizeof rep), 0);
  assert_int_equal(s->n, 1);
  n = media(p, 14, 905, 1, 200);
  n = hd_flexfec_send_add(s, 4, p, (size_t)n, 1, TWCC_ID, 118, 0xFECC, rep, sizeof rep);
  assert_true(n > 0);
  hd_flexfec_hdr_t fh;
  assert_int_equal(hd_flexfec_parse(rep, (size_t)n, &fh), 0);
  assert_int_equal(fh.sn_base, 13);
  assert_true(hd_flexfec_covers(&fh, 13) && hd_flexfec_covers(&fh, 14) && !hd_flexfec_covers(&fh, 11));
  /* plan 0 drops an open group; no extension id: none added */
  n = media(p, 15, 906, 0, 200);
  assert_int_equal(hd_flexfec_send_add(s, 2, p, (size_t)n, 0, TWCC_ID, 118, 0xFECC, rep, sizeof rep), 0);
  assert_int_equal(hd_flexfec_send_add(s, 0, p, (size_t)n, 0, TWCC_ID, 118, 0xFECC, rep, sizeof rep), 0);
  assert_int_equal(s->n, 0);
  for (uint16_t q = 16; q <= 17; q++) {
    n = media(p, q, 0, 0, 200);
    n = hd_flexfec_send_add(s, 2, p, (size_t)n, 0, 0, 118, 0xFECC, rep, sizeof rep);
  }
  assert_true(n > 0);
  assert_int_equal(rep[0] & 0x10, 0); /* X = 0 */
  /* bad input */
  assert_int_equal(hd_flexfec_send_add(s, 2, p, 8, 0, 0, 118, 0xFECC, rep, sizeof rep), HD_EINVAL);
  free(s);
  free(d);
}

/* A packet with RTP padding (a placeholder the node sends for a seq of a
 * temporal layer the viewer does not get) is left out of the groups: its RTX
 * copy drops the padding (RFC 4588 §4), so a receiver holding that copy would
 * rebuild the group's lost packet wrong. The group goes on around it. */
static void test_padding_not_protected(void **st) {
  (void)st;
  hd_flexfec_send_t *s = malloc(sizeof *s);
  assert_non_null(s);
  hd_flexfec_send_init(s, 7);
  uint8_t pk[4][1500], pad[64], out[1600];
  size_t lens[4];
  for (uint16_t q = 0; q < 4; q++)
    lens[q] = (size_t)media(pk[q], (uint16_t)(200 + q), 0, 0, 50 + q * 10);
  hd_rtp_build_t b = {.pt = 96, .seq = 202, .ts = 202 * 90u, .ssrc = 0xAAAA, .pad_len = 4};
  int pl = hd_rtp_build(&b, NULL, 0, pad, sizeof pad);
  assert_true(pl > 0 && (pad[0] & 0x20));
  /* 200, 201, then 202 as a padding-only placeholder, 203, 204: a group of 4 */
  assert_int_equal(hd_flexfec_send_add(s, 4, pk[0], lens[0], 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  assert_int_equal(hd_flexfec_send_add(s, 4, pk[1], lens[1], 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  assert_int_equal(hd_flexfec_send_add(s, 4, pad, (size_t)pl, 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  assert_int_equal(s->n, 2);
  uint8_t p203[1500], p204[1500];
  size_t l203 = (size_t)media(p203, 203, 0, 0, 80), l204 = (size_t)media(p204, 204, 0, 0, 90);
  assert_int_equal(hd_flexfec_send_add(s, 4, p203, l203, 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  int n = hd_flexfec_send_add(s, 4, p204, l204, 0, TWCC_ID, 118, 0xF00D, out, sizeof out);
  assert_true(n > 0);
  hd_flexfec_hdr_t h;
  assert_int_equal(hd_flexfec_parse(out, (size_t)n, &h), 0);
  assert_true(hd_flexfec_covers(&h, 200) && hd_flexfec_covers(&h, 201));
  assert_false(hd_flexfec_covers(&h, 202));
  assert_true(hd_flexfec_covers(&h, 203) && hd_flexfec_covers(&h, 204));
  free(s);
}

/* A long stretch the encoder did not see (FlexFEC declined by an answer
 * while the media seq went on): the packets after it are far ahead of the
 * open group, not late. With 2 packets open and 40,000 seqs skipped (more
 * than half the seq space), the next 30,000 packets in groups of 4 make
 * ~7,500 repair packets. Before, (int16_t)(q - last) <= 0 held for every
 * one of them until the seq wrapped: each was taken as late and dropped
 * from FEC, 1,116 repair packets. */
static void test_far_ahead_not_late(void **st) {
  (void)st;
  hd_flexfec_send_t *s = malloc(sizeof *s);
  assert_non_null(s);
  hd_flexfec_send_init(s, 1);
  uint8_t p[1500], out[1600];
  uint16_t q = 1000;
  for (int i = 0; i < 2; i++, q++) {
    int n = media(p, q, 0, 0, 100);
    assert_int_equal(hd_flexfec_send_add(s, 4, p, (size_t)n, 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  }
  assert_int_equal(s->n, 2);
  q = (uint16_t)(q + 40000);
  for (int i = 0; i < 30000; i++, q++) {
    int n = media(p, q, 0, 0, 100);
    assert_true(hd_flexfec_send_add(s, 4, p, (size_t)n, 0, TWCC_ID, 118, 0xF00D, out, sizeof out) >= 0);
  }
  print_message("after a 40,000-seq gap: %llu repair packets for 30,000 media packets in groups of 4\n",
                (unsigned long long)s->sent);
  assert_true(s->sent >= 7499);
  /* a packet a little late is still left out, the group going on */
  int open = s->n;
  int n = media(p, q, 0, 0, 100);
  assert_int_equal(hd_flexfec_send_add(s, 4, p, (size_t)n, 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  n = media(p, (uint16_t)(q - 2), 0, 0, 100);
  assert_int_equal(hd_flexfec_send_add(s, 4, p, (size_t)n, 0, TWCC_ID, 118, 0xF00D, out, sizeof out), 0);
  assert_int_equal(s->n, open + 1);
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_group_and_repair),
      cmocka_unit_test(test_padding_not_protected),
      cmocka_unit_test(test_far_ahead_not_late),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
